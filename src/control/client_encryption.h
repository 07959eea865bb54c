// Client-side encryption of backup objects as the config asks for it:
//   backup:
//     encryption:
//       keyFile: /etc/pbm/backup.key   # base64 of 32 bytes, readable by every pbm-agent
//     # or keyEnv: PBM_BACKUP_KEY      # an environment variable of every pbm-agent, same format
// The key lives with the agents, never in the cluster or on the storage; backups record only
// its key check value (codec/encrypt.h), and restores refuse a key whose check value differs.
#pragma once

#include <string>

#include "codec/encrypt.h"
#include "control/control.h"

namespace pbm::control {

struct ClientEncryption {
  std::string key_file;
  std::string key_env;
  bool enabled() const { return !key_file.empty() || !key_env.empty(); }
};

// Reads backup.encryption of a config (the whole document); disabled when absent. Throws
// kInvalidArgument unless it names exactly one of keyFile and keyEnv, as a non-empty string.
ClientEncryption ParseClientEncryption(const Json& config);

// Loads the key on this host. Throws kIo (unreadable file) or kInvalidArgument (unset variable,
// not a base64 256-bit key), naming where it looked.
codec::EncryptionKey LoadClientKey(const ClientEncryption& e);

}  // namespace pbm::control
