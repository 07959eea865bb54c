// The node-local part of a physical restore (DESIGN.md "Physical restore, as the ADR decides",
// option A), run by the node's agent. The download happens first, into a staging directory,
// while the node's mongod still runs untouched; mongod is down only for renames and recovery:
//
//   Validate            check the plan and the backup (LoadRestorableBackup) and that the
//                       staging copy fits on the dbpath's volume; touch nothing
//   Download            every file of the file list: storage → decompress → SHA-256 → write into
//                       <dbpath>/.pbm-staging/ (same volume: moving it in is renames), in
//                       parallel; sizes and digests verified; fsynced. mongod keeps running
//   HideEntrypoint      rename <dbpath>/ps-entry.sh to a hidden name on the same volume, so the
//                       mongod container cannot restart while we work
//   ShutdownMongod      {shutdown: 1, force: true} to the node's mongod, when plan.node_uri is set
//   WaitMongodDown      mongod.lock empty or absent, and no process holds its flock
//   MoveDataAside       every entry of the dbpath → <dbpath>/.pbm-fallback/ (rename), except the
//                       restore's own (staging, state file, entrypoint)
//   MoveStagedIn        every entry of the staging directory → the dbpath (rename)
//   Recover             temporary mongod (localhost, free port): truncate the oplog at
//                       restore_to, replay it as a standalone, install the replset config
//   Commit              the commit point (see below)
//   RestoreEntrypoint   rename the entrypoint back: the container can start mongod again
//   DropFallback        remove <dbpath>/.pbm-fallback/ (the old data)
//
// Safety: the old data is never deleted until the new data passed Recover, and a backup that
// cannot be read back intact (a corrupt object, a digest mismatch, a storage error) is refused
// during Download, before mongod is stopped: the staging directory is removed and the dbpath is
// as it was. A state file, <dbpath>/.pbm-restore.json (written atomically and fsynced at each
// phase), records where the restore is. If Run fails anywhere, it removes the staging copy and
// whatever was moved in, moves the old data back, puts the entrypoint back and rethrows with the
// step named. If the process dies instead (kill -9, OOM, node reboot),
// RecoverInterruptedRestore(dbpath), which the agent calls at startup, does the same from the
// state file (a restore that died while staging only loses its staging directory). The commit
// point is the state "committed", written after Recover and before the entrypoint comes back: a
// restore interrupted after it is completed, not undone, because mongod may already be running
// on the restored data.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "backup/format.h"
#include "codec/encrypt.h"
#include "restore/preflight.h"
#include "storage/storage.h"

namespace pbm::restore {

// Names inside the dbpath that belong to the restore itself.
inline constexpr const char* kStateFileName = ".pbm-restore.json";
inline constexpr const char* kFallbackDirName = ".pbm-fallback";
inline constexpr const char* kStagingDirName = ".pbm-staging";
inline constexpr const char* kDefaultEntrypointName = "ps-entry.sh";

// A progress report. Calls come from the thread running Run and, during Download, from the
// download workers, one call at a time (serialized by NodeRestore).
struct Progress {
  std::string step;     // "HideEntrypoint", "Download", ...
  std::string message;  // one human line
  int64_t files_done = 0;
  int64_t files_total = 0;
  int64_t bytes_done = 0;  // uncompressed bytes written (Download)
  int64_t bytes_total = 0;
};

struct RestorePlan {
  // Where the backup is. Not owned; must outlive the NodeRestore. Used from several threads.
  storage::Storage* storage = nullptr;
  // The backup to restore: its name is what matters; Validate reloads the metadata and the file
  // list from the storage.
  std::string backup_name;
  // The replset of the backup whose files this node receives.
  std::string source_replset;
  // The node's dbpath (absolute, an existing directory).
  std::string dbpath;
  // The container entrypoint; "" = <dbpath>/ps-entry.sh. A missing entrypoint is allowed (no
  // Kubernetes): hiding and restoring it are then no-ops.
  std::string entrypoint;
  // The mongod binary of the agent's image.
  std::string mongod_binary;
  // The node's own security options for the temporary mongod (SecurityArgs()).
  std::vector<std::string> security_args;
  // The storage options matching the backup's mongod_opts (StorageArgs()).
  std::vector<std::string> storage_args;
  // The point to restore to; empty = the replset's last_write_ts from the backup.
  backup::ClusterTime restore_to;
  // The document written into local.system.replset (must have a string _id and members).
  backup::Json replset_config;
  // Directory for the temporary mongod's logs; must not be inside the dbpath. Created if missing.
  std::string work_dir;
  // When set, ShutdownMongod sends {shutdown: 1, force: true} to this URI after the entrypoint
  // is hidden. Otherwise the caller stops mongod; WaitMongodDown waits for it either way.
  std::string node_uri;
  // When set, Validate also runs CheckCompatible with these (the node's options and version).
  std::optional<backup::MongodOptions> node_options;
  std::string node_version;
  std::string node_name;  // for messages
  // Called at each step and per downloaded file; may be empty. Must not throw.
  std::function<void(const Progress&)> progress;
  // The key of a backup made with client-side encryption (codec/encrypt.h). Validate refuses an
  // encrypted backup without it, or with a key whose check value differs from the backup's.
  std::optional<codec::EncryptionKey> encryption_key;
  // Files downloaded at once (>= 1).
  int parallelism = 4;
  std::chrono::milliseconds mongod_down_timeout{std::chrono::seconds(300)};
  std::chrono::milliseconds mongod_start_timeout{std::chrono::seconds(300)};
};

// mongod options that make it read data files written with `backup_opts`:
// --wiredTigerCollectionBlockCompressor, --wiredTigerJournalCompressor,
// --wiredTigerIndexPrefixCompression, and --directoryperdb / --wiredTigerDirectoryForIndexes
// when set.
std::vector<std::string> StorageArgs(const backup::MongodOptions& backup_opts);
// The node's encryption options: --enableEncryption --encryptionKeyFile F
// [--encryptionCipherMode M]; empty when encryption is off.
std::vector<std::string> SecurityArgs(const backup::MongodOptions& node_opts);

// Throws unless `key` can read the objects of `meta`: kInvalidArgument when the backup is
// encrypted and there is no key, kIncompatible when the key check values differ (or the
// algorithm is unknown). Nothing to check for an unencrypted backup.
void CheckEncryptionKey(const backup::BackupMeta& meta,
                        const std::optional<codec::EncryptionKey>& key);

// Restores one node. Not thread-safe: one thread calls Run (or the steps) at a time; that
// thread must live until Run returns (the temporary mongod is tied to it, see MongodProcess).
class NodeRestore {
 public:
  explicit NodeRestore(RestorePlan plan);

  // All steps in order. On failure after Validate: rolls back (see Rollback) and throws
  // pbm::Error of the original kind, "restore <backup> on <dbpath>: <Step>: <cause>" (plus the
  // rollback's own failure, if any). A failure in Validate touches nothing; a failure in
  // Download only removes the staging directory (mongod was never stopped). After Commit there
  // is no rollback: a failure to put the entrypoint back throws (the restored data stays; the
  // state file lets RecoverInterruptedRestore finish), a failure to drop the fallback is only
  // reported through `progress` and also left to RecoverInterruptedRestore.
  void Run();

  // The steps, for callers that interleave their own (a cluster restore coordinating nodes).
  // Each throws pbm::Error naming what failed and leaves the state file telling how far it got.
  // Validate must come first (the later steps throw kInternal otherwise), and each step refuses
  // (kInternal) to run before the one it depends on, so old data is never overwritten.
  void Validate();           // kInvalidArgument / kNotFound / kCorrupt / kIncompatible / kConflict
                             // / kIo (not enough free space for the staging copy)
  void Download();           // into the staging directory, mongod untouched; kCorrupt naming the
                             // file on any size/digest/stream mismatch; kIo. Writes the state
                             // file first; a retry starts the staging directory over
  void HideEntrypoint();     // idempotent; after Download; writes the state file first
  void ShutdownMongod();     // no-op without node_uri; the node being down already is fine
  void WaitMongodDown();     // kTimeout
  void MoveDataAside();      // kIo; refuses (kConflict) while a mongod holds the dbpath
  void MoveStagedIn();       // kIo; renames only
  void Recover();            // kUnavailable/kTimeout/kInternal from the temporary mongod; kCorrupt
                             // when the oplog does not reach restore_to
  void Commit();             // marks the restore committed (no rollback after this)
  void RestoreEntrypoint();  // idempotent
  void DropFallback();       // removes the old data and the state file

  // Puts the node back as it was before Download: removes the staging directory and every entry
  // of the dbpath that is not the restore's own, moves the fallback's entries back, puts the
  // entrypoint back, removes the state file (each only as far as the restore got). Idempotent and
  // resumable (it records its progress in the state file). Must not be called after Commit.
  void Rollback();

  // The validated backup (after Validate).
  const RestorableBackup& backup() const { return backup_; }
  const RestorePlan& plan() const { return plan_; }

 private:
  void Report(const std::string& step, const std::string& message);
  void RequireValidated(const char* step) const;
  void DownloadOne(const backup::FileEntry& f);

  RestorePlan plan_;
  std::mutex progress_mu_;  // serializes plan_.progress calls
  RestorableBackup backup_;
  bool validated_ = false;
};

// What RecoverInterruptedRestore found and did.
enum class InterruptedRestore {
  kNone,            // no restore had been running on this dbpath
  kStagingRemoved,  // a restore died while downloading into the staging directory (mongod was
                    // never stopped): the staging directory was removed, nothing else touched
  kRolledBack,      // a restore died before its commit: the old data and the entrypoint are back
  kCompleted,       // a restore died after its commit: entrypoint back, old data removed
};

// Finishes a restore that died midway on `dbpath`, from its state file: while staging, the
// staging directory is removed (the running mongod is not waited for nor touched); before the
// commit it is rolled back (old data and entrypoint back, downloaded files removed), after it
// completed. Before touching data it waits (up to `lock_timeout`) until no process holds
// mongod.lock — the temporary mongod of the dead restore dies with it, but may take a moment; a
// restore that died right after hiding the entrypoint only gets its entrypoint back. Also removes a
// fallback directory left by a completed restore that died while dropping it. Throws kTimeout / kIo
// / kCorrupt (unreadable state file) naming the dbpath; calling it again after a failure is safe.
InterruptedRestore RecoverInterruptedRestore(
    const std::string& dbpath, std::chrono::milliseconds lock_timeout = std::chrono::seconds(120));

}  // namespace pbm::restore
