// The pbm command line: each subcommand is a function over the control plane.
#pragma once

#include <iosfwd>
#include <optional>
#include <string>
#include <vector>

#include "control/control.h"

namespace pbm::cli {

using Json = control::Json;

struct Output {
  bool json = false;  // --out json
  std::ostream* out;
};

// pbm config --file F: validates (the storage must be usable) and stores it; prints it.
void ConfigSet(const control::Control& ctl, const std::string& file, const Output& o);
void ConfigShow(const control::Control& ctl, const Output& o);
// Validates a whole config (the storage must be usable) and stores it; `origin` names it in
// errors ("config file pbm.yaml").
void StoreConfig(const control::Control& ctl, const Json& cfg, const std::string& origin,
                 const Output& o);
// A YAML scalar or document as JSON ("3" → "3" as YAML gives it, "[a, b]" → array).
Json ParseYamlValue(const std::string& text);

// pbm config --set key=value... (dotted keys into the stored config, validated as a whole).
void ConfigSetKeys(const control::Control& ctl, const std::vector<std::string>& assignments,
                   const Output& o);
// pbm config <key>: one value of the stored config.
void ConfigGet(const control::Control& ctl, const std::string& key, const Output& o);
// pbm config --force-resync: the backup list rebuilt from the storage.
void ForceResync(const control::Control& ctl, const Output& o);

struct DeleteArgs {
  std::string name;        // one backup, or
  std::string older_than;  // every backup started before this time or age ("2026-11-23T10:00:00Z", "7d", "12h")
  bool yes = false;        // no confirmation prompt
};
// pbm delete-backup: removes the backups' objects from the storage and their metadata from the
// cluster; refuses running backups. Returns the names deleted.
std::vector<std::string> DeleteBackups(const control::Control& ctl, const DeleteArgs& a,
                                       const Output& o);
// pbm cancel-backup: asks the agent running the backup to stop; it removes what it wrote.
void CancelBackup(const control::Control& ctl, const Output& o);

struct LogsArgs {
  int64_t tail = 20;  // 0: all
  std::string event;  // "backup", "backup/<name>", "restore", ...
  std::string node;   // "rs" or "rs/host:port"
  std::string severity = "D";  // D, I, W, E, F: at or above
  std::string opid;
  bool extra = false;  // show the opid too
};
void Logs(const control::Control& ctl, const LogsArgs& a, const Output& o);

// pbm verify: reads every object of the backup and checks it against the file lists and the
// metadata; prints every problem, object by object. Returns true when the backup is sound.
bool Verify(const control::Control& ctl, const std::string& name, const Output& o);

struct BackupArgs {
  std::string type = "logical";  // as PBM: logical unless --type says otherwise
  std::string compression = "zstd";
  std::optional<int> compression_level;
  bool wait = false;
  int wait_timeout_secs = 0;  // 0: no limit
};
// Starts a backup; with `wait`, returns once it ended (throws when it failed). Returns its name.
std::string Backup(const control::Control& ctl, const BackupArgs& a, const Output& o);

struct RestoreArgs {
  std::string backup;
  bool wait = false;
  int wait_timeout_secs = 0;
};
// Starts a physical restore of every member; with `wait`, follows its status on the storage
// (the cluster is down meanwhile) and throws when it failed. Returns the restore's name.
std::string Restore(const control::Control& ctl, const mongo::Client& cluster, const RestoreArgs& a,
                    const Output& o);
// The restore's status from the storage. `ctl` gives the storage config; when the cluster is
// unreachable, `config_file` (pbm.yaml) does.
void DescribeRestore(const control::Control* ctl, const std::string& config_file,
                     const std::string& name, const Output& o);

void List(const control::Control& ctl, const Output& o);
void DescribeBackup(const control::Control& ctl, const std::string& name, const Output& o);
void Status(const control::Control& ctl, const Output& o);

}  // namespace pbm::cli
