#include "control/operations.h"

#include <chrono>
#include <thread>

#include "backup/format.h"
#include "codec/codec.h"
#include "control/client_encryption.h"
#include "control/priority.h"
#include "storage/storage.h"

namespace pbm::control {

namespace {

void RefuseWhileRunning(const Control& ctl, int64_t now) {
  for (const auto& l : ctl.Locks()) {
    if (!l.stale(now)) {
      Fail(ErrorKind::kConflict,
           "another operation is running: {} {} on {} ({}); wait for it to finish", l.type, l.opid,
           l.node, l.replset);
    }
  }
}

std::unique_ptr<storage::Storage> ConfiguredStorage(const Control& ctl) {
  auto cfg = ctl.GetConfig();
  if (!cfg) {
    Fail(ErrorKind::kInvalidArgument,
         "storage is not configured: run pbm config --file <pbm.yaml> first");
  }
  return storage::NewStorageFromConfig((*cfg)["storage"]);
}

}  // namespace

void ApplyConfig(const Control& ctl, const Json& cfg, const std::string& origin) {
  if (!cfg.is_object() || !cfg.contains("storage")) {
    Fail(ErrorKind::kInvalidArgument, "{}: no storage section (storage.type: filesystem|s3)",
         origin);
  }
  for (auto& [k, v] : cfg.items()) {
    if (k != "storage" && k != "backup" && k != "restore" && k != "pitr") {
      Fail(ErrorKind::kInvalidArgument,
           "{}: unknown section '{}' (allowed: storage, backup, restore, pitr)", origin, k);
    }
  }
  if (cfg.contains("backup")) {
    if (!cfg["backup"].is_object()) {
      Fail(ErrorKind::kInvalidArgument, "{}: backup must be a map", origin);
    }
    for (auto& [k, v] : cfg["backup"].items()) {
      if (k != "priority" && k != "compression" && k != "compressionLevel" && k != "encryption") {
        Fail(ErrorKind::kInvalidArgument,
             "{}: unknown key backup.{} (allowed: priority, compression, compressionLevel, "
             "encryption)",
             origin, k);
      }
    }
  }
  // The storage must be usable before anyone relies on it.
  auto st = storage::NewStorageFromConfig(cfg["storage"]);
  st->List("");
  if (cfg.contains("backup") && cfg["backup"].contains("compression")) {
    codec::ParseCodec(cfg["backup"]["compression"].get<std::string>());
  }
  ParseBackupPriorities(cfg);
  ParseClientEncryption(cfg);
  ctl.EnsureSetup();
  ctl.SetConfig(cfg);
  // As PBM does when the storage is (re)configured: the backup list follows the storage, so a
  // cluster pointed at a storage holding other clusters' backups can restore them.
  ResyncBackupsFromStorage(ctl, *st, /*keep_running=*/true);
}

StartedBackup StartBackup(const Control& ctl, const BackupStart& req) {
  if (req.type != "physical" && req.type != "logical") {
    Fail(ErrorKind::kInvalidArgument, "unknown backup type '{}' (physical or logical)", req.type);
  }
  codec::Codec c = codec::ParseCodec(req.compression);
  int level = codec::ResolveLevel(c, req.compression_level);
  auto st = ConfiguredStorage(ctl);
  int64_t now = NowUnix();
  RefuseWhileRunning(ctl, now);
  for (const auto& b : ctl.Backups()) {
    if ((b.status == "starting" || b.status == "running") &&
        now - std::max(b.heartbeat, b.start_ts) <= kLockStaleSecs) {
      Fail(ErrorKind::kConflict, "backup {} is still running; wait for it to finish", b.name);
    }
  }
  // Names are UTC seconds, as PBM's: a second backup within the same second waits for the next.
  std::string name = backup::BackupNameFor(now);
  while (ctl.GetBackup(name)) {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    name = backup::BackupNameFor(NowUnix());
  }
  backup::BackupMeta m;
  m.name = name;
  m.type = req.type;
  m.status = "starting";
  m.compression = std::string(codec::CodecName(c));
  // ResolveLevel gives 0 for the codecs without levels (none, snappy): record no level for them,
  // or the agent's ResolveLevel refuses "level 0" and every none/snappy backup fails.
  if (level != 0) m.compression_level = level;
  m.start_ts = NowUnix();
  m.last_transition_ts = m.start_ts;
  m.pbm_version = backup::kPbmVersion;
  m.storage = st->Describe();
  m.conditions.push_back({m.start_ts, "starting", ""});
  ctl.EnsureSetup();
  // The metadata first: an agent that sees the command reads it at once (and drops a command
  // whose backup it cannot find).
  m.opid = NewOpId();
  ctl.PutBackup(m);
  ctl.SendCommand("backup",
                  {{"name", name},
                   {"type", req.type},
                   {"compression", m.compression},
                   {"compression_level", level}},
                  m.opid);
  return {name, m.storage};
}

StartedRestore StartRestore(const Control& ctl, const mongo::Client& cluster,
                            const std::string& backup_name) {
  if (!backup::IsValidBackupName(backup_name)) {
    Fail(ErrorKind::kInvalidArgument, "'{}' is not a backup name (like 2026-11-23T10:00:00Z)",
         backup_name);
  }
  auto b = ctl.GetBackup(backup_name);
  if (!b) {
    Fail(ErrorKind::kNotFound, "backup {} not found (pbm list shows the backups)", backup_name);
  }
  if (b->status != "done") {
    Fail(ErrorKind::kInvalidArgument,
         "backup {} is {}, not done; only a complete backup can be restored", backup_name,
         b->status);
  }
  if (b->type != "physical" && b->type != "logical") {
    Fail(ErrorKind::kInvalidArgument, "backup {} has an unknown type '{}'", backup_name, b->type);
  }
  auto st = ConfiguredStorage(ctl);
  if (!st->Stat(backup::MetaObjectName(backup_name))) {
    Fail(ErrorKind::kNotFound,
         "backup {} is not on the storage {} (its metadata object is missing)", backup_name,
         st->Describe());
  }
  int64_t now = NowUnix();
  RefuseWhileRunning(ctl, now);

  if (b->type == "logical") {
    // A logical restore runs on the running cluster: its primary's agent does it and records
    // the status in pbmRestores.
    std::string name = backup::BackupNameFor(now);
    while (ctl.GetRestore(name)) {
      std::this_thread::sleep_for(std::chrono::milliseconds(300));
      name = backup::BackupNameFor(NowUnix());
    }
    std::string opid = NewOpId();
    ctl.PutRestore({{"name", name},
                    {"backup", backup_name},
                    {"opid", opid},
                    {"type", "logical"},
                    {"status", "starting"},
                    {"start_ts", NowUnix()}});
    ctl.SendCommand("restore", {{"name", name}, {"backup", backup_name}, {"type", "logical"}});
    return {name, "logical"};
  }

  int64_t healthy = 0;
  for (const auto& ag : ctl.Agents()) healthy += ag.healthy(now);
  Json rs_config = cluster.RunCommand("admin", {{"replSetGetConfig", 1}})["config"];
  std::string set = rs_config.value("_id", std::string());
  RestorePlanMeta m;
  m.name = backup::BackupNameFor(now);
  m.backup = backup_name;
  m.start_ts = now;
  for (const auto& mem : rs_config["members"]) {
    m.members.push_back({set, mem.value("host", std::string())});
  }
  if (healthy < static_cast<int64_t>(m.members.size())) {
    Fail(ErrorKind::kUnavailable,
         "a physical restore needs a healthy pbm-agent beside every member: {} of {} are (pbm "
         "status)",
         healthy, m.members.size());
  }
  while (st->Stat(RestorePrefix(m.name) + "meta.json")) {
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    m.name = backup::BackupNameFor(NowUnix());
  }
  m.opid = NewOpId();
  WriteRestorePlan(*st, m);
  ctl.PutRestore({{"name", m.name},
                  {"backup", m.backup},
                  {"opid", m.opid},
                  {"status", "starting"},
                  {"start_ts", m.start_ts}});
  ctl.SendCommand("restore", {{"name", m.name}, {"backup", m.backup}});
  return {m.name, "physical"};
}

void RemoveBackup(const Control& ctl, storage::Storage& st, const std::string& name) {
  st.RemovePrefix(name + "/");
  st.Remove(backup::MetaObjectName(name));
  ctl.DeleteBackup(name);
  ctl.Log("I", "", "", "delete", "", "backup " + name + " deleted from " + st.Describe());
}

void DeleteBackup(const Control& ctl, const std::string& name) {
  auto b = ctl.GetBackup(name);
  int64_t now = NowUnix();
  if (b && (b->status == "starting" || b->status == "running") &&
      now - std::max(b->heartbeat, b->start_ts) <= kLockStaleSecs) {
    Fail(ErrorKind::kConflict, "backup {} is still running: cancel it first", name);
  }
  auto st = ConfiguredStorage(ctl);
  RemoveBackup(ctl, *st, name);
}

RestoreState GetRestoreState(const Control* ctl, const storage::Storage& st,
                             const std::string& name) {
  RestoreState out;
  if (st.Stat(RestorePrefix(name) + "meta.json")) {
    RestoreStatus s = ReadRestoreStatus(st, name);
    out.status = s.status;
    out.error = s.error;
    for (const auto& n : s.nodes) {
      out.bytes_done += n.bytes_done;
      out.bytes_total += n.bytes_total;
    }
    out.physical = std::move(s);
    return out;
  }
  std::optional<Json> r;
  if (ctl) r = ctl->GetRestore(name);
  if (!r) Fail(ErrorKind::kNotFound, "restore {} not found on {}", name, st.Describe());
  out.status = r->value("status", std::string());
  out.error = r->value("error", std::string());
  return out;
}

}  // namespace pbm::control
