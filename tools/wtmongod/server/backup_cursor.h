// $backupCursor and $backupCursorExtend, as Percona Server for MongoDB has them: a WiredTiger
// backup cursor pins the last checkpoint's files while the client copies them.
#pragma once

#include <wiredtiger.h>

#include <mutex>
#include <string>
#include <vector>

#include "common/doc.h"

namespace wtm {

class Node;

class BackupCursors {
 public:
  explicit BackupCursors(Node& node);
  ~BackupCursors();

  // Opens the backup cursor. Returns {metadata: {backupId, dbpath, oplogStart, oplogEnd,
  // checkpointTimestamp, ...}} followed by {filename, fileSize} per file to copy. Throws
  // MongoError(50886) when one is already open.
  std::vector<Doc> Open();
  // {backupId: UUID, timestamp: Timestamp}: waits until the node has applied `timestamp`, makes
  // the journal durable, and returns the journal files ({filename, fileSize}) to copy.
  std::vector<Doc> Extend(const bson_t* spec);
  // Releases the pinned checkpoint (killCursors or timeout).
  void Close(const std::string& backup_id);
  void CloseAll();
  bool is_open() const;

 private:
  std::vector<Doc> ListFiles(WT_CURSOR* c);

  Node& node_;
  mutable std::mutex mu_;
  WT_SESSION* session_ = nullptr;
  WT_CURSOR* cursor_ = nullptr;
  std::string backup_id_;  // 16 raw bytes
};

}  // namespace wtm
