#include "server/backup_cursor.h"

#include <sys/stat.h>

#include <filesystem>
#include <random>

#include "common/error.h"
#include "common/log.h"
#include "server/node.h"
#include "server/repl.h"

namespace wtm {

BackupCursors::BackupCursors(Node& node) : node_(node) {}

BackupCursors::~BackupCursors() { CloseAll(); }

bool BackupCursors::is_open() const {
  std::lock_guard<std::mutex> l(mu_);
  return cursor_ != nullptr;
}

std::vector<Doc> BackupCursors::ListFiles(WT_CURSOR* c) {
  std::vector<Doc> out;
  std::filesystem::path dbpath = std::filesystem::absolute(node_.options().dbpath);
  int ret;
  while ((ret = c->next(c)) == 0) {
    const char* name;
    c->get_key(c, &name);
    // WiredTiger names journal files without their directory (log=(path=journal)).
    std::string n = name;
    std::filesystem::path p = (n.rfind("WiredTigerLog.", 0) == 0 ? dbpath / "journal" / n : dbpath / n)
                                  .lexically_normal();
    struct stat st;
    int64_t size = 0;
    if (stat(p.c_str(), &st) == 0) size = st.st_size;
    bson_t* d = bson_new();
    BSON_APPEND_UTF8(d, "filename", p.c_str());
    BSON_APPEND_INT64(d, "fileSize", size);
    out.emplace_back(d);
  }
  if (ret != WT_NOTFOUND) {
    throw MongoError(ErrorCode::kInternalError,
                     std::string("listing backup files: ") + wiredtiger_strerror(ret));
  }
  return out;
}

std::vector<Doc> BackupCursors::Open() {
  std::lock_guard<std::mutex> l(mu_);
  if (cursor_) {
    throw MongoError(50886,
                     "The existing backup cursor must be closed before $backupCursor can succeed.");
  }
  auto& engine = node_.engine();
  bool replicated = node_.repl().enabled();
  if (replicated && engine.LastCheckpointTimestamp() == 0) {
    if (engine.stable_timestamp() == 0) {
      throw MongoError(ErrorCode::kBackupCursorOpenConflictWithCheckpoint,
                       "Cannot open a backup cursor: no stable checkpoint yet; retry once the "
                       "replica set has a majority commit point");
    }
    engine.Checkpoint(false);
  }
  // Everything written so far is in the journal the cursor lists.
  if (replicated) {
    node_.repl().FlushDurable();
  } else {
    engine.FlushJournal();
  }
  WT_CONNECTION* conn = engine.conn();
  int ret = conn->open_session(conn, nullptr, nullptr, &session_);
  if (ret != 0) throw MongoError(ErrorCode::kInternalError, "open_session for backup failed");
  uint64_t checkpoint_ts;
  {
    std::lock_guard<std::mutex> cl(engine.checkpoint_mutex());
    ret = session_->open_cursor(session_, "backup:", nullptr, nullptr, &cursor_);
    checkpoint_ts = engine.LastCheckpointTimestamp();
  }
  if (ret != 0) {
    session_->close(session_, nullptr);
    session_ = nullptr;
    cursor_ = nullptr;
    if (ret == EBUSY || ret == EINVAL) {
      throw MongoError(50886,
                       "The existing backup cursor must be closed before $backupCursor can "
                       "succeed.");
    }
    throw MongoError(ErrorCode::kInternalError,
                     std::string("opening the backup cursor: ") + wiredtiger_strerror(ret));
  }
  std::vector<Doc> files = ListFiles(cursor_);
  std::random_device rd;
  backup_id_.assign(16, '\0');
  for (auto& ch : backup_id_) ch = static_cast<char>(rd() & 0xff);
  backup_id_[6] = static_cast<char>((backup_id_[6] & 0x0f) | 0x40);
  backup_id_[8] = static_cast<char>((backup_id_[8] & 0x3f) | 0x80);

  uint64_t oplog_start = 0, oplog_end = 0;
  int64_t start_t = -1, end_t = -1;
  if (auto oplog = node_.catalog().Get("local.oplog.rs")) {
    storage::Txn txn(engine);
    for (int dir = 0; dir < 2; ++dir) {
      RecordCursor rc(txn, *oplog, dir == 0 ? INT64_MIN : INT64_MAX, dir == 1);
      int64_t rid;
      bson_t doc;
      if (rc.Next(&rid, &doc)) {
        bson_iter_t it;
        int64_t t = -1;
        if (bson_iter_init_find(&it, &doc, "t")) t = bson_iter_as_int64(&it);
        if (dir == 0) {
          oplog_start = rid;
          start_t = t;
        } else {
          oplog_end = rid;
          end_t = t;
        }
      }
    }
  }
  if (replicated && node_.repl().last_durable() && oplog_end > node_.repl().last_durable()) {
    oplog_end = node_.repl().last_durable();
  }
  bson_t* meta = bson_new();
  bson_t m;
  BSON_APPEND_DOCUMENT_BEGIN(meta, "metadata", &m);
  BSON_APPEND_BINARY(&m, "backupId", BSON_SUBTYPE_UUID,
                     reinterpret_cast<const uint8_t*>(backup_id_.data()), 16);
  BSON_APPEND_UTF8(&m, "dbpath",
                   std::filesystem::absolute(node_.options().dbpath).lexically_normal().c_str());
  bson_t op;
  BSON_APPEND_DOCUMENT_BEGIN(&m, "oplogStart", &op);
  AppendTs(&op, "ts", oplog_start);
  BSON_APPEND_INT64(&op, "t", start_t);
  bson_append_document_end(&m, &op);
  BSON_APPEND_DOCUMENT_BEGIN(&m, "oplogEnd", &op);
  AppendTs(&op, "ts", oplog_end);
  BSON_APPEND_INT64(&op, "t", end_t);
  bson_append_document_end(&m, &op);
  AppendTs(&m, "checkpointTimestamp", checkpoint_ts);
  BSON_APPEND_BOOL(&m, "disableIncrementalBackup", false);
  BSON_APPEND_BOOL(&m, "incrementalBackup", false);
  BSON_APPEND_INT32(&m, "blockSize", 16);
  bson_append_document_end(meta, &m);
  std::vector<Doc> out;
  out.emplace_back(meta);
  for (auto& f : files) out.push_back(std::move(f));
  Log(Severity::kInfo, "STORAGE", "Opened backup cursor",
      "{\"files\":" + std::to_string(files.size()) + ",\"checkpointTimestamp\":" +
          std::to_string(checkpoint_ts) + "}");
  return out;
}

std::vector<Doc> BackupCursors::Extend(const bson_t* spec) {
  bson_iter_t it;
  std::string id;
  uint64_t ts = 0;
  if (bson_iter_init_find(&it, spec, "backupId") && BSON_ITER_HOLDS_BINARY(&it)) {
    bson_subtype_t st;
    uint32_t len;
    const uint8_t* data;
    bson_iter_binary(&it, &st, &len, &data);
    id.assign(reinterpret_cast<const char*>(data), len);
  } else {
    throw MongoError(ErrorCode::kFailedToParse,
                     "$backupCursorExtend requires backupId (UUID) and timestamp (Timestamp)");
  }
  if (bson_iter_init_find(&it, spec, "timestamp") && BSON_ITER_HOLDS_TIMESTAMP(&it)) {
    ts = TsOf(&it);
  } else {
    throw MongoError(ErrorCode::kFailedToParse,
                     "$backupCursorExtend requires backupId (UUID) and timestamp (Timestamp)");
  }
  {
    std::lock_guard<std::mutex> l(mu_);
    if (!cursor_ || id != backup_id_) {
      throw MongoError(51011, "Cannot extend the backup cursor: backupId does not match the "
                              "open backup cursor (was it closed or timed out?)");
    }
  }
  // Wait until the node has applied `ts`.
  auto deadline = std::chrono::steady_clock::now() + std::chrono::minutes(10);
  while (node_.repl().last_applied() < ts) {
    if (std::chrono::steady_clock::now() > deadline) {
      throw MongoError(ErrorCode::kMaxTimeMSExpired,
                       "$backupCursorExtend: timed out waiting for the node to reach the timestamp");
    }
    uint64_t gen = node_.OplogGeneration();
    if (node_.repl().last_applied() >= ts) break;
    node_.WaitForOplogGeneration(gen,
                                 std::chrono::steady_clock::now() + std::chrono::milliseconds(100));
  }
  if (node_.repl().enabled()) {
    node_.repl().FlushDurable();
  } else {
    node_.engine().FlushJournal();
  }
  std::lock_guard<std::mutex> l(mu_);
  if (!cursor_) throw MongoError(51011, "the backup cursor was closed while extending it");
  WT_CURSOR* dup = nullptr;
  int ret = session_->open_cursor(session_, nullptr, cursor_, "target=(\"log:\")", &dup);
  if (ret != 0) {
    throw MongoError(ErrorCode::kInternalError,
                     std::string("listing journal files: ") + wiredtiger_strerror(ret));
  }
  std::vector<Doc> files;
  try {
    files = ListFiles(dup);
  } catch (...) {
    dup->close(dup);
    throw;
  }
  dup->close(dup);
  return files;
}

void BackupCursors::Close(const std::string& backup_id) {
  std::lock_guard<std::mutex> l(mu_);
  if (!cursor_ || backup_id != backup_id_) return;
  cursor_->close(cursor_);
  session_->close(session_, nullptr);
  cursor_ = nullptr;
  session_ = nullptr;
  backup_id_.clear();
  Log(Severity::kInfo, "STORAGE", "Closed backup cursor", "{}");
}

void BackupCursors::CloseAll() {
  std::string id;
  {
    std::lock_guard<std::mutex> l(mu_);
    id = backup_id_;
  }
  if (!id.empty()) Close(id);
}

}  // namespace wtm
