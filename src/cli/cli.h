// The pbm command line: each subcommand is a function over the control plane.
#pragma once

#include <iosfwd>
#include <optional>
#include <string>

#include "control/control.h"

namespace pbm::cli {

struct Output {
  bool json = false;  // --out json
  std::ostream* out;
};

// pbm config --file F: validates (the storage must be usable) and stores it; prints it.
void ConfigSet(const control::Control& ctl, const std::string& file, const Output& o);
void ConfigShow(const control::Control& ctl, const Output& o);

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
