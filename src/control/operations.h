// Starting backups and restores and storing the config: the checks and the commands that the
// pbm CLI and psmdb-operator share, so that a CR does exactly what the CLI does.
#pragma once

#include <optional>
#include <string>

#include "control/control.h"
#include "control/restore_status.h"
#include "mongo/client.h"

namespace pbm::control {

// Validates a whole config (the storage must be usable: it is listed) and stores it, then
// resyncs the backup list from that storage, as PBM does. `origin` names the config in errors
// ("config file pbm.yaml", "PerconaServerMongoDB demo").
void ApplyConfig(const Control& ctl, const Json& cfg, const std::string& origin);

struct BackupStart {
  std::string type = "logical";  // physical | logical
  std::string compression = "zstd";
  std::optional<int> compression_level;
};
struct StartedBackup {
  std::string name;
  std::string storage;  // where it goes, as the storage describes itself
};
// Refuses while another operation runs; otherwise records the backup ("starting") and sends the
// command to the agents.
StartedBackup StartBackup(const Control& ctl, const BackupStart& req);

struct StartedRestore {
  std::string name;
  std::string type;  // physical: status on the storage (the cluster goes down); logical: in it
};
// Checks the backup (exists, done, on the storage), that nothing else runs and, for a physical
// restore, that a healthy agent runs beside every member; then plans the restore and sends the
// command. `cluster` is a connection to the replica set.
StartedRestore StartRestore(const Control& ctl, const mongo::Client& cluster,
                            const std::string& backup);

// Removes a backup's objects from `st` and its metadata from the cluster, and logs it. The
// caller has checked that it is not running.
void RemoveBackup(const Control& ctl, storage::Storage& st, const std::string& name);
// The same from the configured storage, refusing a backup that is still running.
void DeleteBackup(const Control& ctl, const std::string& name);

// Where a restore stands, wherever its status lives.
struct RestoreState {
  std::string status;  // starting, running, done, error (physical restores: as ReadRestoreStatus)
  std::string error;
  int64_t bytes_done = 0, bytes_total = 0;  // physical: downloaded, over all members
  std::optional<RestoreStatus> physical;    // the members' phases
};
// `ctl` may be null while the cluster is down (physical restores only need the storage).
RestoreState GetRestoreState(const Control* ctl, const storage::Storage& st,
                             const std::string& name);

}  // namespace pbm::control
