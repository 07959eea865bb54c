// A physical restore's status lives on the backup storage, because every mongod of the cluster
// is down while it runs (as PBM does):
//   .pbm.restore/<restore>/meta.json                   what is restored where (written by pbm)
//   .pbm.restore/<restore>/rs.<rs>/node.<host>.<phase>  each member's progress
//   .pbm.restore/<restore>/rs.<rs>/node.<host>.hb       each member's agent heartbeat
// Phases, in order: preflight (checks passed), staged (the backup's files downloaded and
// verified into the staging directory, mongod still running), down (mongod stopped, entrypoint
// hidden), ready (new data recovered, old data kept aside), done (committed, member healthy),
// or error (with the reason; the member's old data and entrypoint are back).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "control/control.h"
#include "storage/storage.h"

namespace pbm::control {

struct RestoreMember {
  std::string replset;
  std::string host;
};

struct RestorePlanMeta {
  std::string name;    // the restore's name (its start time)
  std::string backup;  // the backup restored
  std::string opid;
  int64_t start_ts = 0;
  std::vector<RestoreMember> members;
};

struct NodeRestoreStatus {
  std::string replset;
  std::string host;
  std::string phase;  // "" (nothing yet), preflight, staged, down, ready, done, error
  std::string error;
  // Set when this member stopped because another one failed: that member ("rs/host"), whose
  // own error is the cause.
  std::string caused_by;
  int64_t heartbeat = 0;
  int64_t phase_ts = 0;
  // Download progress (bytes of the backup's files written into the staging directory).
  int64_t bytes_done = 0;
  int64_t bytes_total = 0;

  std::string id() const { return replset + "/" + host; }
  // Failed (or silent) and not done.
  bool failed() const { return phase == "error" || (!error.empty() && phase != "done"); }
  // The member whose failure this one's comes from: caused_by, or this member itself.
  std::string cause() const { return caused_by.empty() ? id() : caused_by; }
};

struct RestoreStatus {
  RestorePlanMeta meta;
  std::string status;  // starting | running | done | error
  std::string error;   // one line: each cause with its members, then the members that followed
  std::vector<NodeRestoreStatus> nodes;
};

std::string RestorePrefix(const std::string& restore);

void WriteRestorePlan(storage::Storage& st, const RestorePlanMeta& m);
RestorePlanMeta ReadRestorePlan(const storage::Storage& st, const std::string& restore);

// Records a member's phase (and error; caused_by names the member whose failure it follows) and
// its heartbeat.
void WriteNodePhase(storage::Storage& st, const std::string& restore, const RestoreMember& me,
                    const std::string& phase, const std::string& error = "",
                    const std::string& caused_by = "");
// The member's liveness without new progress: keeps the download progress its last heartbeat
// carried.
void TouchNodeHeartbeat(storage::Storage& st, const std::string& restore, const RestoreMember& me);
// The heartbeat carries the member's download progress when known (bytes_total > 0).
void WriteNodeHeartbeat(storage::Storage& st, const std::string& restore, const RestoreMember& me,
                        int64_t bytes_done = 0, int64_t bytes_total = 0);

// A member whose agent has not taken a physical restore up this long after it began fails it
// (the restore's start is the clock of the pbm or operator that started it: clocks are assumed
// in sync, within a margin this wide).
inline constexpr int kRestorePickupSecs = 120;

// The whole restore as the files say. A member whose agent has not heartbeaten for
// kLockStaleSecs counts as failed (and, before `ready`, settled); so does one whose agent never
// took the restore up within kRestorePickupSecs.
RestoreStatus ReadRestoreStatus(const storage::Storage& st, const std::string& restore);

// Phase order for comparisons: "" < preflight < staged < down < ready < done; error is terminal.
int PhaseRank(const std::string& phase);

// Restore names on the storage, newest first.
std::vector<std::string> ListRestores(const storage::Storage& st);

}  // namespace pbm::control

namespace pbm::control {
// Rebuilds the cluster's backup list (pbmBackups) from the `<name>.pbm.json` objects on the
// storage: after a physical restore the cluster holds the admin database of the backup's time.
// Returns the number of backups found. With keep_running, a backup still starting or running
// (its metadata object is written last) stays listed while its heartbeat is fresh: `pbm config`
// resyncs while a backup may run.
int ResyncBackupsFromStorage(const Control& ctl, const storage::Storage& st,
                             bool keep_running = false);
}  // namespace pbm::control
