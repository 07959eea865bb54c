// One wtmongod node: the storage engine, the catalog, replication and client cursors, and the
// write path that keeps data and oplog in one transaction.
#pragma once

#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "common/doc.h"
#include "server/catalog.h"
#include "server/options.h"
#include "storage/engine.h"

namespace wtm {

class Repl;
class CursorManager;
class BackupCursors;

class Node {
 public:
  explicit Node(ServerOptions options);
  ~Node();

  // Opens the dbpath, recovers (oplog truncation and replay when in replica-set mode or with
  // recoverFromOplogAsStandalone) and starts replication. Throws on failure.
  void Startup();
  // Clean shutdown; `force` skips waiting for secondaries.
  void Shutdown();

  const ServerOptions& options() const { return options_; }
  storage::Engine& engine() { return *engine_; }
  Catalog& catalog() { return *catalog_; }
  Repl& repl() { return *repl_; }
  CursorManager& cursors() { return *cursors_; }
  BackupCursors& backup() { return *backup_; }
  // Writes are serialized: one writer at a time keeps oplog timestamps free of holes.
  std::mutex& write_mutex() { return write_mu_; }
  // The keys of security.keyFile (none without one); this member authenticates to the others as
  // __system@local with the first, and accepts __system@local with it.
  void set_internal_keys(std::vector<std::string> keys) { internal_keys_ = std::move(keys); }
  const std::vector<std::string>& internal_keys() const { return internal_keys_; }
  // Read-only: recoverFromOplogAsStandalone without takeUnstableCheckpointOnShutdown.
  bool read_only() const { return read_only_; }
  int64_t start_time() const { return start_time_; }
  std::string host_port() const;

  // Applies one oplog entry to the data (no new oplog entry), idempotently, in `txn`.
  void ApplyOplogEntry(storage::Txn& txn, const bson_t* entry);
  // Signals oplog tailers (awaitData getMores) and waiters that the oplog or its durable point
  // moved.
  void NotifyOplogWrite();
  uint64_t OplogGeneration();
  // Waits until NotifyOplogWrite has been called since `seen` was read, or the deadline.
  void WaitForOplogGeneration(uint64_t seen, std::chrono::steady_clock::time_point deadline);
  // Highest ts in the oplog (0 when empty), read from storage.
  uint64_t TopOfOplog();

 private:
  void ReplicationRecovery();

  ServerOptions options_;
  std::unique_ptr<storage::Engine> engine_;
  std::unique_ptr<Catalog> catalog_;
  std::unique_ptr<Repl> repl_;
  std::unique_ptr<CursorManager> cursors_;
  std::unique_ptr<BackupCursors> backup_;
  std::mutex write_mu_;
  bool read_only_ = false;
  std::vector<std::string> internal_keys_;
  int64_t start_time_ = 0;

  std::mutex oplog_mu_;
  std::condition_variable oplog_cv_;
  uint64_t oplog_gen_ = 0;
};

// A write unit: holds the node's write lock and one transaction; every replicated change also
// writes its oplog entry (with its own timestamp) in the same transaction.
class WriteUnit {
 public:
  explicit WriteUnit(Node& node);
  ~WriteUnit();

  storage::Txn& txn() { return *txn_; }
  // The collection, created (and logged) when missing.
  CollectionPtr GetOrCreate(const std::string& ns);
  int64_t Insert(const Collection& c, const bson_t* doc);
  // `replacement`: logged as the whole new document; otherwise as a $v:2 diff.
  void Update(const Collection& c, int64_t rid, const bson_t* old_doc, const bson_t* new_doc,
              bool replacement);
  void Delete(const Collection& c, int64_t rid, const bson_t* doc);
  // A command entry (op "c") on "<db>.$cmd"; `ui` is the collection's UUID or empty.
  void LogCommand(const std::string& db, const bson_t* o, const std::string& ui = "");
  // A no-op entry (op "n").
  void LogNoop(const bson_t* o);
  void Commit();
  // Timestamp of the last oplog entry written (0: none).
  uint64_t last_ts() const { return last_ts_; }

 private:
  uint64_t Stamp(const std::string& ns);
  void WriteOplog(uint64_t ts, const char* op, const std::string& ns, const std::string& ui,
                  const bson_t* o, const bson_t* o2);

  Node& node_;
  std::unique_lock<std::mutex> lock_;
  std::unique_ptr<storage::Txn> txn_;
  uint64_t last_ts_ = 0;
  bool committed_ = false;
};

// Builds the $v:2 update description of old → new (top-level fields).
Doc DiffDocuments(const bson_t* old_doc, const bson_t* new_doc);

// Timestamp as BSON: (seconds << 32) | increment.
inline uint32_t TsSecs(uint64_t ts) { return static_cast<uint32_t>(ts >> 32); }
inline uint32_t TsInc(uint64_t ts) { return static_cast<uint32_t>(ts & 0xffffffff); }
inline uint64_t MakeTs(uint32_t secs, uint32_t inc) {
  return (static_cast<uint64_t>(secs) << 32) | inc;
}
uint64_t TsOf(const bson_iter_t* it);  // reads a BSON Timestamp
void AppendTs(bson_t* b, const char* key, uint64_t ts);
// {ts: Timestamp, t: NumberLong}
void AppendOpTime(bson_t* b, const char* key, uint64_t ts, int64_t term);

}  // namespace wtm
