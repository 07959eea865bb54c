// The pre-flight checks of a physical restore, run before anything on the node is touched:
//  - the backup is a complete physical backup of the replset, and its file list is whole
//    (every file has a size, a SHA-256 and an object that exists with the listed stored size);
//  - the node can read the backup's data files: the same encryption (on/off, cipher mode, key),
//    the same storage layout and compressors, and the same MongoDB major.minor version.
// PBM compares only versions; a mismatch in encryption or compression then shows as a temporary
// mongod that fails to start halfway through the restore. We refuse up front instead, listing
// every difference at once so the user fixes them in one go.
//
// Thread safety: the functions are pure (LoadRestorableBackup reads the storage, which is itself
// thread-safe); they may be called from any thread.
#pragma once

#include <string>
#include <vector>

#include "backup/format.h"
#include "storage/storage.h"

namespace pbm::restore {

// One human-readable line per difference between what the backup's data files need and what
// the node has, in a fixed order (version, encryption, cipher mode, encryption key, block
// compressor, journal compressor, prefix compression, directoryPerDB, directoryForIndexes):
//   "version: backup 6.0, node 7.0 (major.minor must match)"
//   "encryption: the backup was taken with encryption on (AES256-GCM), this node has it off"
//   "block compressor: backup zstd, node snappy"
//   "encryption key: the backup's key check value 1a2b… differs from this node's key (3c4d…)"
// Empty when the node can restore the backup. A version or key check value that is unknown
// ("") on either side is not compared. `backup.mongod_opts` and `backup.mongodb_version` are
// what is compared; `node_version` is the node's full version ("7.0.2-1").
std::vector<std::string> CompareNodeOptions(const backup::ReplsetMeta& backup,
                                            const backup::MongodOptions& node,
                                            const std::string& node_version);

// Throws pbm::Error(kIncompatible) listing ALL differences of CompareNodeOptions in one message:
//   "backup 2026-01-02T03:04:05Z cannot be restored on node host:27017: encryption: ...;
//    block compressor: ..."
// Returns normally when there are none.
void CheckCompatible(const std::string& backup_name, const backup::ReplsetMeta& backup,
                     const backup::MongodOptions& node, const std::string& node_version,
                     const std::string& node_name);

// What a node restore needs from the storage, read and checked.
struct RestorableBackup {
  backup::BackupMeta meta;
  backup::ReplsetMeta replset;  // the entry of `replset` in meta.replsets
  backup::FileList files;       // that replset's file list
};

// Reads <backup>.pbm.json and <backup>/<replset>/filelist.pbm and checks that the backup can be
// restored: a physical backup with status "done", the replset present with a consistent point
// (last_write_ts), a file list for that backup and replset with a known codec and at least one
// file, each file named by a safe relative path (no "..", not absolute) and listed once, with a
// size >= 0 and a 64-digit SHA-256, and its object present on the storage with the listed
// stored size (when one is listed).
// Throws kNotFound (no such backup, replset or file list), kInvalidArgument (not physical,
// not done), kCorrupt (unreadable metadata or file list, or any problem with a listed file:
// the message names the file).
RestorableBackup LoadRestorableBackup(const storage::Storage& storage,
                                      const std::string& backup_name, const std::string& replset);

// "6.0.19-16" → "6.0"; "7" → "7"; "" → "".
std::string MajorMinor(const std::string& version);

// Whether `name` is a safe path of a file inside a dbpath: non-empty, relative, '/'-separated,
// no empty, "." or ".." components, no NUL. File lists are input from the storage; a name that
// fails this could write outside the dbpath.
bool IsSafeRelativePath(const std::string& name);

}  // namespace pbm::restore
