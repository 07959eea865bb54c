// The restore of a logical backup onto a running replset, through its primary (as PBM does):
//   1. check the backup (logical, done, the replset present, the key for an encrypted one) and
//      read every object once, checking sizes and SHA-256 against the file list, so that a
//      corrupt or incomplete backup is refused before anything is touched;
//   2. for each collection of the backup, several at once: drop it, recreate it with its
//      options, insert its documents in batches (raw BSON) with several insertion workers,
//      build its indexes; views are recreated after the collections;
//   3. replay the captured oplog (applyOps in batches, idempotent) up to the consistent point,
//      skipping local, config and the control collections.
// Collections that are not in the backup are left as they are, as PBM does.
#pragma once

#include <functional>
#include <optional>
#include <string>

#include "backup/format.h"
#include "codec/encrypt.h"
#include "mongo/client.h"
#include "storage/storage.h"

namespace pbm::restore {

struct LogicalRestoreRequest {
  const storage::Storage* storage = nullptr;
  std::string backup_name;
  std::string replset;  // the replset of the backup to restore (the only one if there is one)
  std::optional<codec::EncryptionKey> encryption_key;
  int parallel = 4;           // collections restored at once
  int insertion_workers = 2;  // insert batches at once per collection (1 for capped ones)
  // step ("verify", "collections", "oplog"), bytes done and total of that step. May be empty.
  std::function<void(const std::string&, int64_t, int64_t)> progress;
};

struct LogicalRestoreResult {
  int64_t collections = 0;
  int64_t documents = 0;
  int64_t oplog_entries = 0;
  backup::ClusterTime restored_to;
};

// Throws pbm::Error: kNotFound / kInvalidArgument / kIncompatible / kCorrupt (naming the object)
// before anything is changed; later failures name the collection or the oplog batch.
LogicalRestoreResult RunLogicalRestore(const mongo::Client& primary,
                                       const LogicalRestoreRequest& req);

}  // namespace pbm::restore
