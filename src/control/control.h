// The control plane in the cluster's admin database, as PBM keeps it: the config, a command
// queue, one lock per replset with heartbeats, agent heartbeats, backup and restore metadata,
// and a log. The CLI, the agents and the operator are all clients of this one class.
#pragma once

#include <nlohmann/json.hpp>

#include <optional>
#include <string>
#include <vector>

#include "backup/format.h"
#include "mongo/client.h"

namespace pbm::control {

// Ordered: a command's name must stay its first field.
using Json = nlohmann::ordered_json;

inline constexpr const char* kDb = "admin";
inline constexpr const char* kConfigColl = "pbmConfig";
inline constexpr const char* kCmdColl = "pbmCmd";
inline constexpr const char* kLockColl = "pbmLock";
inline constexpr const char* kAgentsColl = "pbmAgents";
inline constexpr const char* kBackupsColl = "pbmBackups";
inline constexpr const char* kRestoresColl = "pbmRestores";
inline constexpr const char* kLogColl = "pbmLog";

// Lock heartbeats every 5 s; a lock whose heartbeat is older than 30 s is stale and may be taken.
inline constexpr int kLockHeartbeatSecs = 5;
inline constexpr int kLockStaleSecs = 30;
// An agent is healthy when its heartbeat is at most this old.
inline constexpr int kAgentStaleSecs = 30;

int64_t NowUnix();

struct Command {
  std::string opid;  // unique id of the operation (hex)
  std::string cmd;   // "backup" | "restore" | "cancelBackup" | "resync" | "deleteBackup"
  Json args;         // e.g. {name, type, compression, compression_level}
  int64_t ts = 0;    // unix seconds when issued
};

struct Lock {
  std::string replset;
  std::string node;
  std::string type;  // the command holding it ("backup", "restore")
  std::string opid;
  int64_t heartbeat = 0;
  bool stale(int64_t now) const { return now - heartbeat > kLockStaleSecs; }
};

struct AgentStatus {
  std::string replset;
  std::string node;            // host:port of its mongod
  std::string state;           // its mongod's member state: PRIMARY, SECONDARY, ...
  bool hidden = false;
  int64_t heartbeat = 0;       // unix seconds
  std::string version;         // agent version
  std::string mongod_version;
  std::string error;           // last problem the agent reports ("" when fine)
  bool healthy(int64_t now) const { return error.empty() && now - heartbeat <= kAgentStaleSecs; }
};

class Control {
 public:
  // `cluster` must reach the replset's primary (a replicaSet URI, or the primary directly).
  explicit Control(const mongo::Client& cluster);

  // Indexes: a unique lock per replset, unique backup and restore names.
  void EnsureSetup() const;

  // The config (pbmConfig): {storage: {...}, backup: {...}, restore: {...}}.
  std::optional<Json> GetConfig() const;
  void SetConfig(const Json& config) const;

  // Appends a command; returns its opid (`with_opid`, or a new one). Whatever the agents read
  // for the command (its metadata) must be stored before it is sent.
  std::string SendCommand(const std::string& cmd, const Json& args,
                          const std::string& with_opid = "") const;
  // Commands issued at or after `since_unix`, oldest first.
  std::vector<Command> CommandsSince(int64_t since_unix) const;

  // Takes the replset's lock for `opid`: true when taken (or already ours). A stale lock of
  // another operation is taken over, and the takeover logged.
  bool AcquireLock(const Lock& want) const;
  // Refreshes the heartbeat; false when the lock is no longer ours.
  bool HeartbeatLock(const std::string& replset, const std::string& opid) const;
  void ReleaseLock(const std::string& replset, const std::string& opid) const;
  std::vector<Lock> Locks() const;
  // Removes every lock (after a physical restore the data holds the locks of the backup's time).
  void ClearLocks() const;

  void PutAgent(const AgentStatus& a) const;
  std::vector<AgentStatus> Agents() const;

  // Backup metadata (pbmBackups), keyed by name.
  void PutBackup(const backup::BackupMeta& b) const;
  std::optional<backup::BackupMeta> GetBackup(const std::string& name) const;
  std::vector<backup::BackupMeta> Backups() const;  // newest first
  void DeleteBackup(const std::string& name) const;

  // Restore metadata (pbmRestores): free-form JSON with name, status, replsets...
  void PutRestore(const Json& r) const;
  std::optional<Json> GetRestore(const std::string& name) const;
  std::vector<Json> Restores() const;

  // pbmLog: {ts, level, rs, node, event, opid, msg}.
  void Log(const std::string& level, const std::string& replset, const std::string& node,
           const std::string& event, const std::string& opid, const std::string& msg) const;
  std::vector<Json> Logs(int64_t limit) const;

 private:
  const mongo::Client& c_;
};

// A new operation id (24 hex chars, ObjectId-like).
std::string NewOpId();

}  // namespace pbm::control
