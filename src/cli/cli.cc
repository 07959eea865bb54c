#include "cli/cli.h"

#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <chrono>
#include <ctime>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <memory>
#include <thread>

#include "backup/format.h"
#include "common/yaml_json.h"
#include "codec/codec.h"
#include "control/client_encryption.h"
#include "control/operations.h"
#include "control/priority.h"
#include "control/restore_status.h"
#include "storage/storage.h"

namespace pbm::cli {
namespace {

using control::Json;
using control::NowUnix;

using ::pbm::YamlToJson;

std::string TimeStr(int64_t unix) {
  if (unix <= 0) return "-";
  return backup::BackupNameFor(unix);
}

using backup::HumanBytes;

Json ListEntry(const backup::BackupMeta& b) {
  Json j = {{"name", b.name},
            {"type", b.type},
            {"status", b.status},
            {"size", b.size},
            {"restoreTo", b.last_write_ts.t},
            {"pbmVersion", b.pbm_version},
            {"compression", b.compression}};
  if (!b.error.empty()) j["error"] = b.error;
  return j;
}

}  // namespace

Json ParseYamlValue(const std::string& text) {
  try {
    return YamlToJson(YAML::Load(text));
  } catch (const YAML::Exception& e) {
    Fail(ErrorKind::kInvalidArgument, "'{}' is not a YAML value: {}", text, e.what());
  }
}

void ConfigSet(const control::Control& ctl, const std::string& file, const Output& o) {
  YAML::Node y;
  try {
    y = YAML::LoadFile(file);
  } catch (const YAML::BadFile&) {
    Fail(ErrorKind::kInvalidArgument, "config file {}: cannot be read", file);
  } catch (const YAML::Exception& e) {
    Fail(ErrorKind::kInvalidArgument, "config file {}: {}", file, e.what());
  }
  StoreConfig(ctl, YamlToJson(y), "config file " + file, o);
}

void StoreConfig(const control::Control& ctl, const Json& cfg, const std::string& origin,
                 const Output& o) {
  control::ApplyConfig(ctl, cfg, origin);
  ConfigShow(ctl, o);
}

void ConfigShow(const control::Control& ctl, const Output& o) {
  auto cfg = ctl.GetConfig();
  if (!cfg) Fail(ErrorKind::kNotFound, "no config yet: run pbm config --file <pbm.yaml>");
  cfg = storage::MaskStorageSecrets(*cfg);  // never print S3 credentials
  if (o.json) {
    *o.out << cfg->dump(2) << "\n";
    return;
  }
  YAML::Emitter em;
  em << YAML::Load(cfg->dump());
  *o.out << em.c_str() << "\n";
}

std::string Backup(const control::Control& ctl, const BackupArgs& a, const Output& o) {
  control::StartedBackup started =
      control::StartBackup(ctl, {a.type, a.compression, a.compression_level});
  const std::string& name = started.name;
  if (!o.json) *o.out << "Starting backup '" << name << "'" << std::flush;
  if (!a.wait) {
    if (o.json) {
      *o.out << Json{{"name", name}, {"storage", started.storage}}.dump() << "\n";
    } else {
      *o.out << ". Backup '" << name << "' to remote store '" << started.storage << "'\n";
    }
    return name;
  }
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(a.wait_timeout_secs);
  int polls = 0;
  bool tty = !o.json && o.out == &std::cout && isatty(STDOUT_FILENO);
  size_t last_len = 0;
  while (true) {
    auto b = ctl.GetBackup(name);
    int64_t t = NowUnix();
    if (b && b->status == "done") break;
    if (b && b->status == "canceled") {
      if (!o.json) *o.out << "\n";
      Fail(ErrorKind::kCancelled, "backup {} was canceled{}", name,
           b->error.empty() ? "" : ": " + b->error);
    }
    if (b && b->status == "error") {
      if (!o.json) *o.out << "\n";
      Fail(ErrorKind::kIo, "backup {} failed: {}", name, b->error);
    }
    if (b && t - std::max(b->heartbeat, b->start_ts) > control::kLockStaleSecs) {
      if (!o.json) *o.out << "\n";
      Fail(ErrorKind::kUnavailable,
           "backup {} has had no agent heartbeat for {} s: is a pbm-agent running beside each "
           "mongod? (pbm status)", name, t - std::max(b->heartbeat, b->start_ts));
    }
    if (a.wait_timeout_secs > 0 && std::chrono::steady_clock::now() > deadline) {
      Fail(ErrorKind::kTimeout, "backup {} still {} after {} s", name, b ? b->status : "unknown",
           a.wait_timeout_secs);
    }
    // Polls 10 times a second (a find by _id: the wait ends soon after the operation does). On
    // a terminal the progress line is redrawn twice a second; otherwise a dot a second.
    ++polls;
    if (tty && b && polls % 5 == 0) {
      std::string line = "\r" + b->status + ": " + backup::ProgressLine(backup::BackupProgress(*b, t));
      *o.out << line << std::string(line.size() < last_len ? last_len - line.size() : 0, ' ')
             << std::flush;
      last_len = line.size();
    } else if (!o.json && !tty && polls % 10 == 0) {
      *o.out << "." << std::flush;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  auto b = *ctl.GetBackup(name);
  if (o.json) {
    *o.out << ListEntry(b).dump() << "\n";
  } else {
    *o.out << "\nBackup '" << name << "' to remote store '" << b.storage << "' done ("
           << HumanBytes(b.size) << ")\n";
  }
  return name;
}

namespace {

Json RestoreJson(const control::RestoreStatus& s) {
  Json nodes = Json::array();
  for (const auto& n : s.nodes) {
    Json j = {{"rs", n.replset}, {"host", n.host}, {"status", n.phase.empty() ? "starting" : n.phase}};
    if (!n.error.empty()) j["error"] = n.error;
    if (n.bytes_total > 0) {
      j["download"] = {{"bytes_done", n.bytes_done}, {"bytes_total", n.bytes_total}};
    }
    nodes.push_back(j);
  }
  Json j = {{"name", s.meta.name}, {"backup", s.meta.backup}, {"type", "physical"},
            {"status", s.status}, {"start_ts", s.meta.start_ts}, {"nodes", nodes}};
  if (!s.error.empty()) j["error"] = s.error;
  return j;
}

void PrintRestore(const control::RestoreStatus& s, const Output& o) {
  if (o.json) {
    *o.out << RestoreJson(s).dump(2) << "\n";
    return;
  }
  *o.out << "name: " << s.meta.name << "\nbackup: " << s.meta.backup << "\ntype: physical\nstatus: "
         << s.status << "\n";
  if (!s.error.empty()) *o.out << "error: " << s.error << "\n";
  *o.out << "started: " << TimeStr(s.meta.start_ts) << "\nnodes:\n";
  for (const auto& n : s.nodes) {
    *o.out << "  - " << n.replset << "/" << n.host << ": " << (n.phase.empty() ? "starting" : n.phase);
    if (!n.error.empty()) *o.out << " (" << n.error << ")";
    if (n.bytes_total > 0 && control::PhaseRank(n.phase) < control::PhaseRank("staged")) {
      *o.out << ", downloaded " << HumanBytes(n.bytes_done) << " of " << HumanBytes(n.bytes_total);
    }
    *o.out << "\n";
  }
}

}  // namespace

// A logical restore runs on the running cluster: its primary's agent does it and records the
// status in pbmRestores.
std::string RestoreLogical(const control::Control& ctl, const std::string& name,
                           const RestoreArgs& a, const Output& o) {
  if (!o.json) *o.out << "Starting restore " << name << " from '" << a.backup << "'" << std::flush;
  if (!a.wait) {
    if (o.json) {
      *o.out << Json{{"name", name}, {"backup", a.backup}}.dump() << "\n";
    } else {
      *o.out << ".\nRestore of the snapshot from '" << a.backup << "' has started.\n"
             << "Check its status with: pbm describe-restore " << name << "\n";
    }
    return name;
  }
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(a.wait_timeout_secs);
  bool tty = !o.json && o.out == &std::cout && isatty(STDOUT_FILENO);
  int polls = 0;
  size_t last_len = 0;
  while (true) {
    auto r = ctl.GetRestore(name);
    std::string status = r ? r->value("status", std::string()) : "";
    if (status == "done") {
      if (o.json) {
        *o.out << r->dump(2) << "\n";
      } else {
        *o.out << "\nRestore " << name << " done: the cluster holds the data of '" << a.backup
               << "' (as of its consistent point)\n";
      }
      return name;
    }
    if (status == "error") {
      if (!o.json) *o.out << "\n";
      Fail(ErrorKind::kIo, "restore {} failed: {}", name, r->value("error", std::string()));
    }
    int64_t t = NowUnix();
    if (r && status == "starting" && t - r->value("start_ts", t) > control::kLockStaleSecs) {
      if (!o.json) *o.out << "\n";
      Fail(ErrorKind::kUnavailable,
           "restore {} was not taken by the primary's agent within {} s: is a pbm-agent running "
           "beside the primary? (pbm status)", name, control::kLockStaleSecs);
    }
    if (a.wait_timeout_secs > 0 && std::chrono::steady_clock::now() > deadline) {
      Fail(ErrorKind::kTimeout, "restore {} still {} after {} s", name, status, a.wait_timeout_secs);
    }
    ++polls;
    if (tty && r && polls % 2 == 0) {
      std::string line = "\r" + status;
      if (r->contains("progress")) {
        const Json& p = (*r)["progress"];
        line += " (" + p.value("step", std::string()) + "): " +
                HumanBytes(p.value("bytes_done", int64_t{0})) + " of " +
                HumanBytes(p.value("bytes_total", int64_t{0}));
      }
      *o.out << line << std::string(line.size() < last_len ? last_len - line.size() : 0, ' ')
             << std::flush;
      last_len = line.size();
    } else if (!o.json && !tty && polls % 4 == 0) {
      *o.out << "." << std::flush;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(250));
  }
}

std::string Restore(const control::Control& ctl, const mongo::Client& cluster, const RestoreArgs& a,
                    const Output& o) {
  control::StartedRestore started = control::StartRestore(ctl, cluster, a.backup);
  if (started.type == "logical") return RestoreLogical(ctl, started.name, a, o);
  auto cfg = ctl.GetConfig();
  auto st = storage::NewStorageFromConfig((*cfg)["storage"]);
  control::RestorePlanMeta m = control::ReadRestorePlan(*st, started.name);
  if (!o.json) *o.out << "Starting restore " << m.name << " from '" << a.backup << "'" << std::flush;
  if (!a.wait) {
    if (o.json) {
      *o.out << Json{{"name", m.name}, {"backup", m.backup}}.dump() << "\n";
    } else {
      *o.out << ".\nRestore of the snapshot from '" << a.backup << "' has started.\n"
             << "Check its status with: pbm describe-restore " << m.name << "\n";
    }
    return m.name;
  }
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(a.wait_timeout_secs);
  int polls = 0;
  bool tty = !o.json && o.out == &std::cout && isatty(STDOUT_FILENO);
  size_t last_len = 0;
  while (true) {
    auto s = control::ReadRestoreStatus(*st, m.name);
    if (s.status == "done") {
      // The members are up; the first one records the result and resyncs the backup list.
      auto rec_deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
      while (std::chrono::steady_clock::now() < rec_deadline) {
        try {
          auto rec = ctl.GetRestore(m.name);
          if (rec && rec->value("status", std::string()) == "done") break;
        } catch (const Error&) {
          // The cluster is still electing or starting.
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(500));
      }
      if (o.json) {
        *o.out << RestoreJson(s).dump(2) << "\n";
      } else {
        *o.out << "\nRestore " << m.name << " done: every member runs on the data of '" << a.backup << "'\n";
      }
      return m.name;
    }
    if (s.status == "error") {
      if (!o.json) *o.out << "\n";
      Fail(ErrorKind::kIo, "restore {} failed: {}", m.name, s.error);
    }
    if (a.wait_timeout_secs > 0 && std::chrono::steady_clock::now() > deadline) {
      Fail(ErrorKind::kTimeout, "restore {} still {} after {} s", m.name, s.status, a.wait_timeout_secs);
    }
    // Polls 4 times a second (the wait ends soon after the operation does), a dot a second.
    ++polls;
    if (tty && polls % 2 == 0) {
      int64_t done = 0, total = 0;
      std::string phases;
      for (const auto& n : s.nodes) {
        done += n.bytes_done;
        total += n.bytes_total;
        phases += (phases.empty() ? "" : ", ") + (n.phase.empty() ? std::string("starting") : n.phase);
      }
      std::string line = "\r" + s.status + " [" + phases + "]";
      if (total > 0) line += ": downloaded " + HumanBytes(done) + " of " + HumanBytes(total);
      *o.out << line << std::string(line.size() < last_len ? last_len - line.size() : 0, ' ')
             << std::flush;
      last_len = line.size();
    } else if (!o.json && !tty && polls % 4 == 0) {
      *o.out << "." << std::flush;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(250));
  }
}

void DescribeRestore(const control::Control* ctl, const std::string& config_file,
                     const std::string& name, const Output& o) {
  std::unique_ptr<storage::Storage> st;
  if (!config_file.empty()) {
    YAML::Node y = YAML::LoadFile(config_file);
    st = storage::NewStorageFromConfig(YamlToJson(y)["storage"]);
  } else {
    auto cfg = ctl ? ctl->GetConfig() : std::nullopt;
    if (!cfg) Fail(ErrorKind::kInvalidArgument, "no storage config: pass -c <pbm.yaml>");
    st = storage::NewStorageFromConfig((*cfg)["storage"]);
  }
  if (!st->Stat(control::RestorePrefix(name) + "meta.json")) {
    // A logical restore keeps its status in the cluster, which stays up.
    std::optional<Json> r;
    try {
      if (ctl) r = ctl->GetRestore(name);
    } catch (const Error&) {
    }
    if (r && r->value("type", std::string()) == "logical") {
      if (o.json) {
        *o.out << r->dump(2) << "\n";
      } else {
        *o.out << "name: " << name << "\nbackup: " << r->value("backup", std::string())
               << "\ntype: logical\nstatus: " << r->value("status", std::string()) << "\n";
        if (!r->value("error", std::string()).empty()) {
          *o.out << "error: " << r->value("error", std::string()) << "\n";
        }
      }
      return;
    }
    Fail(ErrorKind::kNotFound, "restore {} not found on {}", name, st->Describe());
  }
  PrintRestore(control::ReadRestoreStatus(*st, name), o);
}

void List(const control::Control& ctl, const Output& o) {
  auto backups = ctl.Backups();
  if (o.json) {
    Json snaps = Json::array();
    for (auto it = backups.rbegin(); it != backups.rend(); ++it) snaps.push_back(ListEntry(*it));
    *o.out << Json{{"snapshots", snaps}}.dump(2) << "\n";
    return;
  }
  *o.out << "Backup snapshots:\n";
  for (auto it = backups.rbegin(); it != backups.rend(); ++it) {
    const auto& b = *it;
    *o.out << "  " << b.name << " <" << b.type << "> [" << b.status;
    if (b.status == "done") *o.out << ", restore_to_time: " << TimeStr(b.last_write_ts.t);
    if (!b.error.empty()) *o.out << ": " << b.error;
    *o.out << "]\n";
  }
}

void DescribeBackup(const control::Control& ctl, const std::string& name, const Output& o) {
  if (!backup::IsValidBackupName(name)) {
    Fail(ErrorKind::kInvalidArgument, "'{}' is not a backup name (like 2026-11-23T10:00:00Z)", name);
  }
  auto b = ctl.GetBackup(name);
  if (!b) Fail(ErrorKind::kNotFound, "backup {} not found (pbm list shows the backups)", name);
  Json j = *b;
  auto progress = backup::BackupProgress(*b, NowUnix());
  bool running = b->status == "starting" || b->status == "running";
  if (running) j["progress"] = backup::ProgressJson(progress);
  if (o.json) {
    *o.out << j.dump(2) << "\n";
    return;
  }
  *o.out << "name: " << b->name << "\ntype: " << b->type << "\nstatus: " << b->status << "\n";
  if (running) *o.out << "progress: " << backup::ProgressLine(progress) << "\n";
  if (!b->error.empty()) *o.out << "error: " << b->error << "\n";
  *o.out << "size: " << HumanBytes(b->size) << " (uncompressed " << HumanBytes(b->size_uncompressed)
         << ")\ncompression: " << b->compression
         << (b->compression_level ? " level " + std::to_string(*b->compression_level) : "")
         << "\nstorage: " << b->storage << "\nstarted: " << TimeStr(b->start_ts)
         << "\nlast_transition: " << TimeStr(b->last_transition_ts)
         << "\nconsistent point (last_write_ts): " << b->last_write_ts.t << ":" << b->last_write_ts.i
         << " (" << TimeStr(b->last_write_ts.t) << ")\nmongodb_version: " << b->mongodb_version
         << "\nfcv: " << b->fcv << "\nreplsets:\n";
  for (const auto& rs : b->replsets) {
    const auto& mo = rs.mongod_opts;
    *o.out << "  - name: " << rs.name << "\n    node: " << rs.node << "\n    status: " << rs.status
           << "\n    files: " << rs.files << "\n    first_write_ts: " << rs.first_write_ts.t << ":"
           << rs.first_write_ts.i << "\n    last_write_ts: " << rs.last_write_ts.t << ":"
           << rs.last_write_ts.i << "\n    checkpoint_ts: " << rs.checkpoint_ts.t << ":"
           << rs.checkpoint_ts.i << "\n    storage: {blockCompressor: " << mo.block_compressor
           << ", journalCompressor: " << mo.journal_compressor
           << ", prefixCompression: " << (mo.prefix_compression ? "true" : "false")
           << ", directoryPerDB: " << (mo.directory_per_db ? "true" : "false")
           << ", directoryForIndexes: " << (mo.directory_for_indexes ? "true" : "false")
           << "}\n    encryption: "
           << (mo.encryption ? mo.cipher_mode + " (key check " + mo.key_check + ")" : "off") << "\n";
  }
}

void Status(const control::Control& ctl, const Output& o) {
  int64_t now = NowUnix();
  auto agents = ctl.Agents();
  auto locks = ctl.Locks();
  auto backups = ctl.Backups();
  if (o.json) {
    Json cluster = Json::array();
    for (const auto& a : agents) {
      cluster.push_back({{"rs", a.replset}, {"host", a.node}, {"role", a.state},
                         {"agent", a.version}, {"ok", a.healthy(now)},
                         {"lastHeartbeat", now - a.heartbeat}, {"error", a.error}});
    }
    Json running = Json::array();
    for (const auto& l : locks) {
      running.push_back({{"type", l.type}, {"opid", l.opid}, {"rs", l.replset}, {"node", l.node},
                         {"stale", l.stale(now)}});
      for (const auto& b : backups) {
        if (b.opid == l.opid) {
          running.back()["name"] = b.name;
          running.back()["progress"] = backup::ProgressJson(backup::BackupProgress(b, now));
        }
      }
    }
    Json snaps = Json::array();
    for (const auto& b : backups) snaps.push_back(ListEntry(b));
    *o.out << Json{{"cluster", cluster}, {"running", running}, {"backups", {{"snapshot", snaps}}}}.dump(2)
           << "\n";
    return;
  }
  *o.out << "Cluster:\n========\n";
  std::string last_rs;
  for (const auto& a : agents) {
    if (a.replset != last_rs) *o.out << a.replset << ":\n";
    last_rs = a.replset;
    *o.out << "  - " << a.node << " [" << (a.state == "PRIMARY" ? "P" : a.state == "SECONDARY" ? "S" : "?")
           << "]: pbm-agent v" << a.version << " "
           << (a.healthy(now) ? "OK" : "FAILED (" + (a.error.empty() ? "no heartbeat for " + std::to_string(now - a.heartbeat) + " s" : a.error) + ")")
           << "\n";
  }
  *o.out << "\nCurrently running:\n==================\n";
  if (locks.empty()) *o.out << "(none)\n";
  for (const auto& l : locks) {
    *o.out << l.type << " on " << l.replset << "/" << l.node << " [opid: " << l.opid << "]"
           << (l.stale(now) ? " (stale)" : "") << "\n";
    for (const auto& b : backups) {
      if (b.opid == l.opid) {
        *o.out << "  " << b.name << ": " << backup::ProgressLine(backup::BackupProgress(b, now))
               << "\n";
      }
    }
  }
  *o.out << "\nBackups:\n========\n";
  for (const auto& b : backups) {
    *o.out << "  " << b.name << " " << HumanBytes(b.size) << " <" << b.type << "> [" << b.status;
    if (b.status == "done") *o.out << ": " << TimeStr(b.last_write_ts.t);
    if (!b.error.empty()) *o.out << ": " << b.error;
    *o.out << "]\n";
  }
}

}  // namespace pbm::cli
