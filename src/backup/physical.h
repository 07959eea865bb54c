// The physical backup of one replset, run by the agent beside the chosen node: $backupCursor on
// its own mongod, each listed file (its first fileSize bytes) streamed through
// read → SHA-256 → compress → storage, several at once, then $backupCursorExtend to the
// replset's majority point and the journal files it needs, then the file list.
#pragma once

#include <functional>
#include <optional>
#include <string>

#include "backup/format.h"
#include "codec/codec.h"
#include "codec/encrypt.h"
#include "mongo/client.h"
#include "storage/storage.h"

namespace pbm::backup {

struct PhysicalBackupRequest {
  std::string name;      // "2026-11-23T10:00:00Z"
  std::string replset;
  std::string node;      // host:port of the node (for the metadata)
  codec::Codec codec = codec::Codec::kZstd;
  int level = 3;
  int parallel = 4;      // files copied at once
  std::string key_file;  // where the agent reads the node's key file ("" = the node's own path)
  int keepalive_secs = 60;  // getMore on the backup cursor at this interval
  // Client-side encryption of every object (after compression); none when empty.
  std::optional<codec::EncryptionKey> encryption_key;
};

struct BackupHooks {
  std::function<void(const ReplsetMeta&)> on_progress;  // after each phase and file
  std::function<bool()> cancelled;                      // checked between chunks
  // Called when the node refuses $backupCursor because a backup cursor is already open (mongod
  // allows one; error 50886), e.g. the one of an agent killed mid-backup, which mongod keeps
  // until its idle timeout. Returns true when it closed a leftover cursor: the open is retried
  // once. Without the hook, or when it returns false, the backup fails with mongod's error.
  std::function<bool()> on_backup_cursor_busy;
};

// Reads the node's storage and security options (getCmdLineOpts, mongod's defaults filled in)
// and the key check value of its encryption key. Throws kIo when encryption is on and the key
// file cannot be read by the agent (it must be mounted beside it, per the ADR).
MongodOptions ReadMongodOptions(const mongo::Client& node, const std::string& key_file_override);

// Key check value of a Percona key file (base64 of 32 bytes): hex of the first 8 bytes of
// HMAC-SHA256(key, "psmdb key check value"). Identifies the key without revealing it.
std::string KeyCheckValueOfFile(const std::string& path);

// Runs the backup. `node` is a direct connection to the node, `cluster` reaches the primary.
// Returns the replset's metadata (status "done"); throws pbm::Error on any failure, after
// closing the backup cursor. Objects already written stay; the caller marks the backup failed.
ReplsetMeta RunPhysicalBackup(const mongo::Client& node, const mongo::Client& cluster,
                              storage::Storage& storage, const PhysicalBackupRequest& req,
                              const BackupHooks& hooks);

}  // namespace pbm::backup
