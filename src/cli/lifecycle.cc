// The backup lifecycle commands of pbm: config --set / <key> / --force-resync, delete-backup,
// cancel-backup, logs, verify.
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <iostream>
#include <map>
#include <mutex>
#include <regex>
#include <set>
#include <thread>

#include "backup/format.h"
#include "backup/logical.h"
#include "backup/object_io.h"
#include "cli/cli.h"
#include "codec/checksum.h"
#include "common/parallel.h"
#include "control/client_encryption.h"
#include "control/operations.h"
#include "control/restore_status.h"
#include "storage/storage.h"

namespace pbm::cli {
namespace {

using control::NowUnix;

std::unique_ptr<storage::Storage> StorageOf(const control::Control& ctl) {
  auto cfg = ctl.GetConfig();
  if (!cfg || !cfg->contains("storage")) {
    Fail(ErrorKind::kInvalidArgument,
         "storage is not configured: run pbm config --file <pbm.yaml> first");
  }
  return storage::NewStorageFromConfig((*cfg)["storage"]);
}

bool Running(const backup::BackupMeta& b, int64_t now) {
  return (b.status == "starting" || b.status == "running") &&
         now - std::max(b.heartbeat, b.start_ts) <= control::kLockStaleSecs;
}

// "2026-11-23T10:00:00Z" or an age like "7d", "12h", "30m", "90s": the unix time it names.
int64_t ParseCutoff(const std::string& s) {
  std::smatch m;
  static const std::regex age(R"(^(\d+)([smhd])$)");
  if (std::regex_match(s, m, age)) {
    int64_t n = std::stoll(m[1]);
    int64_t unit = m[2] == "s" ? 1 : m[2] == "m" ? 60 : m[2] == "h" ? 3600 : 86400;
    return NowUnix() - n * unit;
  }
  std::tm tm{};
  if (strptime(s.c_str(), "%Y-%m-%dT%H:%M:%SZ", &tm) && s.size() == 20) return timegm(&tm);
  Fail(ErrorKind::kInvalidArgument,
       "--older-than '{}' is neither a time like 2026-11-23T10:00:00Z nor an age like 7d, 12h, "
       "30m",
       s);
}

bool Confirm(const std::string& question, bool yes) {
  if (yes) return true;
  if (!isatty(STDIN_FILENO)) {
    Fail(ErrorKind::kInvalidArgument,
         "{}: not confirmed; pbm asks on a terminal, elsewhere pass --yes", question);
  }
  std::cout << question << " [y/N] " << std::flush;
  std::string answer;
  std::getline(std::cin, answer);
  return answer == "y" || answer == "Y" || answer == "yes";
}

}  // namespace

void ConfigSetKeys(const control::Control& ctl, const std::vector<std::string>& assignments,
                   const Output& o) {
  auto cfg = ctl.GetConfig();
  if (!cfg) Fail(ErrorKind::kNotFound, "no config yet: run pbm config --file <pbm.yaml> first");
  Json next = *cfg;
  for (const auto& a : assignments) {
    auto eq = a.find('=');
    if (eq == std::string::npos || eq == 0) {
      Fail(ErrorKind::kInvalidArgument,
           "--set '{}': expected key=value (e.g. backup.compression=zstd)", a);
    }
    std::string key = a.substr(0, eq);
    Json* cur = &next;
    size_t start = 0;
    while (true) {
      size_t dot = key.find('.', start);
      std::string part =
          key.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
      if (part.empty()) Fail(ErrorKind::kInvalidArgument, "--set '{}': empty key component", a);
      if (!cur->is_object()) {
        Fail(ErrorKind::kInvalidArgument, "--set '{}': {} is not a map", a,
             key.substr(0, start - 1));
      }
      if (dot == std::string::npos) {
        (*cur)[part] = ParseYamlValue(a.substr(eq + 1));
        break;
      }
      if (!cur->contains(part)) (*cur)[part] = Json::object();
      cur = &(*cur)[part];
      start = dot + 1;
    }
  }
  StoreConfig(ctl, next, "pbm config --set", o);
}

void ConfigGet(const control::Control& ctl, const std::string& key, const Output& o) {
  auto cfg = ctl.GetConfig();
  if (!cfg) Fail(ErrorKind::kNotFound, "no config yet: run pbm config --file <pbm.yaml> first");
  Json masked = storage::MaskStorageSecrets(*cfg);
  const Json* cur = &masked;
  size_t start = 0;
  while (true) {
    size_t dot = key.find('.', start);
    std::string part =
        key.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
    if (!cur->is_object() || !cur->contains(part)) {
      Fail(ErrorKind::kNotFound, "the config has no {}", key);
    }
    cur = &(*cur)[part];
    if (dot == std::string::npos) break;
    start = dot + 1;
  }
  if (o.json || !cur->is_string()) {
    *o.out << cur->dump() << "\n";
  } else {
    *o.out << cur->get<std::string>() << "\n";
  }
}

void ForceResync(const control::Control& ctl, const Output& o) {
  auto st = StorageOf(ctl);
  int n = control::ResyncBackupsFromStorage(ctl, *st, /*keep_running=*/true);
  if (o.json) {
    *o.out << Json{{"backups", n}, {"storage", st->Describe()}}.dump() << "\n";
  } else {
    *o.out << "Backup list resynced from " << st->Describe() << ": " << n << " backup(s)\n";
  }
}

std::vector<std::string> DeleteBackups(const control::Control& ctl, const DeleteArgs& a,
                                       const Output& o) {
  if (a.name.empty() == a.older_than.empty()) {
    Fail(ErrorKind::kInvalidArgument,
         "delete-backup needs a backup name or --older-than, not both");
  }
  auto st = StorageOf(ctl);
  int64_t now = NowUnix();
  std::vector<backup::BackupMeta> doomed;
  if (!a.name.empty()) {
    if (!backup::IsValidBackupName(a.name)) {
      Fail(ErrorKind::kInvalidArgument, "'{}' is not a backup name (like 2026-11-23T10:00:00Z)",
           a.name);
    }
    auto b = ctl.GetBackup(a.name);
    if (!b && !st->Stat(backup::MetaObjectName(a.name)) && st->List(a.name + "/").empty()) {
      Fail(ErrorKind::kNotFound, "backup {} not found in the cluster nor on {}", a.name,
           st->Describe());
    }
    if (b && Running(*b, now)) {
      Fail(ErrorKind::kConflict, "backup {} is still running: cancel it first (pbm cancel-backup)",
           a.name);
    }
    backup::BackupMeta m;
    m.name = a.name;
    doomed.push_back(b.value_or(m));
  } else {
    int64_t cutoff = ParseCutoff(a.older_than);
    for (const auto& b : ctl.Backups()) {
      if (b.start_ts < cutoff && !Running(b, now)) doomed.push_back(b);
    }
  }
  std::vector<std::string> names;
  for (const auto& b : doomed) names.push_back(b.name);
  if (!names.empty()) {
    std::string list;
    for (const auto& n : names) list += (list.empty() ? "" : ", ") + n;
    if (!Confirm("Delete backup(s) " + list + " from " + st->Describe() + "?", a.yes)) {
      Fail(ErrorKind::kCancelled, "nothing deleted");
    }
  }
  for (const auto& n : names) control::RemoveBackup(ctl, *st, n);
  if (o.json) {
    *o.out << Json{{"deleted", names}}.dump() << "\n";
  } else if (names.empty()) {
    *o.out << "No backup matched; nothing deleted\n";
  } else {
    for (const auto& n : names) *o.out << "Deleted backup " << n << "\n";
  }
  return names;
}

void CancelBackup(const control::Control& ctl, const Output& o) {
  int64_t now = NowUnix();
  std::vector<std::string> names;
  for (const auto& b : ctl.Backups()) {
    if (Running(b, now)) names.push_back(b.name);
  }
  if (names.empty()) Fail(ErrorKind::kNotFound, "no backup is running");
  for (const auto& n : names) ctl.SendCommand("cancelBackup", {{"name", n}});
  if (o.json) {
    *o.out << Json{{"canceling", names}}.dump() << "\n";
  } else {
    for (const auto& n : names) *o.out << "Backup " << n << " is being canceled\n";
  }
}

void Logs(const control::Control& ctl, const LogsArgs& a, const Output& o) {
  static const std::string kLevels = "DIWEF";
  auto rank = [&](const std::string& l) {
    auto p = kLevels.find(l.empty() ? '?' : l[0]);
    return p == std::string::npos ? -1 : static_cast<int>(p);
  };
  if (a.severity.size() != 1 || rank(a.severity) < 0) {
    Fail(ErrorKind::kInvalidArgument, "--severity '{}': one of D, I, W, E, F", a.severity);
  }
  std::string ev_type = a.event.substr(0, a.event.find('/'));
  std::string ev_name =
      a.event.find('/') == std::string::npos ? "" : a.event.substr(a.event.find('/') + 1);
  std::string node_rs = a.node.substr(0, a.node.find('/'));
  std::string node_host =
      a.node.find('/') == std::string::npos ? "" : a.node.substr(a.node.find('/') + 1);
  std::vector<Json> out;
  for (auto& e : ctl.Logs(1000000)) {
    if (rank(e.value("level", std::string())) < rank(a.severity)) continue;
    if (!ev_type.empty() && e.value("event", std::string()) != ev_type) continue;
    if (!ev_name.empty() && e.value("msg", std::string()).find(ev_name) == std::string::npos)
      continue;
    if (!node_rs.empty() && e.value("rs", std::string()) != node_rs) continue;
    if (!node_host.empty() && e.value("node", std::string()) != node_host) continue;
    if (!a.opid.empty() && e.value("opid", std::string()) != a.opid) continue;
    out.push_back(std::move(e));
  }
  if (a.tail > 0 && static_cast<int64_t>(out.size()) > a.tail) {
    out.erase(out.begin(), out.end() - a.tail);
  }
  if (o.json) {
    *o.out << Json(out).dump(2) << "\n";
    return;
  }
  for (const auto& e : out) {
    std::string where = e.value("rs", std::string());
    if (!e.value("node", std::string()).empty()) where += "/" + e.value("node", std::string());
    *o.out << backup::BackupNameFor(e.value("ts", int64_t{0})) << " "
           << e.value("level", std::string()) << " [" << where << "] ["
           << e.value("event", std::string());
    if (a.extra && !e.value("opid", std::string()).empty())
      *o.out << "/" << e.value("opid", std::string());
    *o.out << "] " << e.value("msg", std::string()) << "\n";
  }
}

bool Verify(const control::Control& ctl, const std::string& name, const Output& o) {
  if (!backup::IsValidBackupName(name)) {
    Fail(ErrorKind::kInvalidArgument, "'{}' is not a backup name (like 2026-11-23T10:00:00Z)",
         name);
  }
  auto cfg = ctl.GetConfig();
  auto st = StorageOf(ctl);
  struct Problem {
    std::string object, problem;
  };
  std::vector<Problem> problems;
  std::mutex mu;
  auto problem = [&](const std::string& obj, const std::string& what) {
    std::lock_guard<std::mutex> l(mu);
    problems.push_back({obj, what});
  };
  std::string meta_obj = backup::MetaObjectName(name);
  backup::BackupMeta meta;
  if (!st->Stat(meta_obj)) {
    Fail(ErrorKind::kNotFound, "backup {} has no metadata object {} on {}", name, meta_obj,
         st->Describe());
  }
  try {
    meta = Json::parse(st->ReadAll(meta_obj)).get<backup::BackupMeta>();
  } catch (const std::exception& e) {
    Fail(ErrorKind::kCorrupt, "backup {}: its metadata {} is unreadable: {}", name, meta_obj,
         e.what());
  }
  if (meta.status != "done")
    problem(meta_obj, "the backup's status is " + meta.status + ", not done");
  if (auto c = ctl.GetBackup(name)) {
    if (c->status != meta.status || c->last_write_ts != meta.last_write_ts ||
        c->size != meta.size) {
      problem(meta_obj, "the cluster's copy of the metadata differs (status " + c->status +
                            ", size " + std::to_string(c->size) +
                            "); pbm config --force-resync "
                            "takes the storage's");
    }
  }
  std::optional<codec::EncryptionKey> key;
  if (!meta.encryption.empty()) {
    auto enc = cfg ? control::ParseClientEncryption(*cfg) : control::ClientEncryption{};
    if (!enc.enabled()) {
      Fail(ErrorKind::kInvalidArgument,
           "backup {} is encrypted ({}, key check {}): verifying its content needs its key "
           "(backup.encryption in the config)",
           name, meta.encryption, meta.encryption_key_check);
    }
    key = control::LoadClientKey(enc);
    if (codec::KeyCheckValue(*key) != meta.encryption_key_check) {
      Fail(ErrorKind::kIncompatible,
           "backup {} was encrypted with another key (key check {}, the configured key's is {})",
           name, meta.encryption_key_check, codec::KeyCheckValue(*key));
    }
  }
  std::vector<std::pair<backup::FileEntry, codec::Codec>> files;
  std::set<std::string> known = {meta_obj};
  for (const auto& rs : meta.replsets) {
    std::string fl = backup::FileListObjectName(name, rs.name);
    known.insert(fl);
    known.insert(backup::NamespacesObjectName(name, rs.name));
    try {
      auto list = Json::parse(st->ReadAll(fl)).get<backup::FileList>();
      codec::Codec c = codec::ParseCodec(list.codec);
      for (auto& f : list.files) {
        known.insert(f.object);
        files.emplace_back(f, c);
      }
    } catch (const std::exception& e) {
      problem(fl, std::string("the file list is missing or unreadable: ") + e.what());
    }
  }
  for (const auto& obj : st->List(name + "/")) {
    if (!known.count(obj.name)) problem(obj.name, "not named by the backup's file lists");
  }
  std::atomic<int64_t> bytes{0};
  ParallelFor(files.size(), 4, [&](size_t i) {
    const auto& [f, c] = files[i];
    auto info = st->Stat(f.object);
    if (!info) {
      problem(f.object, "missing");
      return;
    }
    if (f.stored_size && info->size != f.stored_size) {
      problem(f.object, fmt::format("stored size {} bytes, the file list says {}", info->size,
                                    f.stored_size));
    }
    try {
      auto d = backup::DigestObject(*st, f.object, c, key);
      bytes += d.size;
      if (d.size != f.size) {
        problem(f.object,
                fmt::format("{} bytes of content, the file list says {}", d.size, f.size));
      } else if (d.sha256 != f.sha256) {
        problem(f.object, "SHA-256 of the content differs from the file list's");
      }
    } catch (const Error& e) {
      problem(f.object, std::string("cannot be read back: ") + e.what());
    }
  });
  // One line per object, its problems joined.
  std::map<std::string, std::string> by_object;
  for (const auto& p : problems) {
    auto& line = by_object[p.object];
    line += (line.empty() ? "" : "; ") + p.problem;
  }
  problems.clear();
  for (auto& [obj, what] : by_object) problems.push_back({obj, what});
  if (o.json) {
    Json pj = Json::array();
    for (const auto& p : problems) pj.push_back({{"object", p.object}, {"problem", p.problem}});
    *o.out << Json{{"name", name},
                   {"ok", problems.empty()},
                   {"objects", files.size()},
                   {"bytes", bytes.load()},
                   {"problems", pj}}
                  .dump(2)
           << "\n";
  } else {
    for (const auto& p : problems) *o.out << p.object << ": " << p.problem << "\n";
    *o.out << "Backup " << name << ": " << files.size() << " objects, "
           << backup::HumanBytes(bytes.load()) << " read; "
           << (problems.empty() ? std::string("OK")
                                : std::to_string(problems.size()) + " problem(s)")
           << "\n";
  }
  return problems.empty();
}

}  // namespace pbm::cli
