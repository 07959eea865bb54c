// The WiredTiger storage engine under wtmongod: the dbpath as mongod lays it out, sessions and
// transactions, timestamps, checkpoints and the journal.
#pragma once

#include <wiredtiger.h>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace wtm::storage {

// A failure to open or use the dbpath, as one line naming what is wrong and what to do.
class StorageError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct EngineOptions {
  std::string dbpath;
  bool directory_per_db = false;
  bool directory_for_indexes = false;
  std::string block_compressor = "snappy";    // none | snappy | zlib | zstd
  std::string journal_compressor = "snappy";  // none | snappy | zlib | zstd
  bool prefix_compression = true;
  bool enable_encryption = false;
  std::string encryption_key_file;
  std::string cipher_mode = "AES256-CBC";  // or AES256-GCM
  double cache_size_gb = 0;                // 0: 256 MiB
  int sync_period_secs = 60;               // checkpoint interval
  // Replica-set mode: replicated tables are checkpoint-durable (not journaled) and writes carry
  // commit timestamps; local.* and the catalog stay journaled, as in mongod.
  bool replicated = false;
};

class Engine;

// One WiredTiger session with one transaction. Single-threaded; destroyed = rolled back unless
// committed. Cursors opened through it are cached for the session's next user.
class Txn {
 public:
  explicit Txn(Engine& engine);
  ~Txn();
  Txn(const Txn&) = delete;
  Txn& operator=(const Txn&) = delete;

  WT_SESSION* session() { return session_->session; }
  // A cursor on `uri` ("table:collection-1-..."), positioned nowhere. Valid until the Txn ends.
  WT_CURSOR* Cursor(const std::string& uri);
  // Timestamp for every write of this transaction (replica-set mode); 0 = none.
  void SetCommitTimestamp(uint64_t ts);
  void Commit();
  void Abort();
  Engine& engine() { return engine_; }

  struct PooledSession {
    WT_SESSION* session = nullptr;
    std::map<std::string, WT_CURSOR*> cursors;
  };

 private:
  Engine& engine_;
  PooledSession* session_;
  bool open_ = false;
};

class Engine {
 public:
  // Opens the dbpath, creating it when empty. Takes mongod.lock, checks storage.bson, the key file
  // and encryption settings; throws StorageError with one clear line otherwise.
  static std::unique_ptr<Engine> Open(const EngineOptions& options);
  ~Engine();

  // Clean shutdown: final checkpoint (stable, or of everything when `unstable_checkpoint`), close
  // WiredTiger, empty mongod.lock. Idempotent.
  void Shutdown(bool unstable_checkpoint = false);

  const EngineOptions& options() const { return options_; }
  WT_CONNECTION* conn() { return conn_; }
  // mongod.lock held a pid when we started: the last run did not shut down cleanly.
  bool unclean_start() const { return unclean_start_; }

  // A new ident ("collection-7-3485982348" / "index-8-3485982348"), placed in the database's
  // directory with directoryPerDB and in collection/ or index/ with directoryForIndexes.
  std::string NewIdent(const std::string& kind, const std::string& db);
  // Creates the WiredTiger table for an ident: a record store (int64 keys, BSON values) or an
  // index (byte-string keys and values). `logged`: journaled rather than checkpoint-durable.
  void CreateRecordStore(Txn& txn, const std::string& ident, bool logged);
  void CreateIndexTable(Txn& txn, const std::string& ident, bool logged);
  // Drops a table now, or as soon as no cursor holds it (retried at each checkpoint).
  void DropIdent(const std::string& ident);
  // Switches journaling of a table (done at startup when the node changes between standalone
  // and replica-set mode).
  void SetTableLogging(const std::string& ident, bool logged);

  // Timestamps; 0 means none.
  void SetStableTimestamp(uint64_t ts);
  uint64_t stable_timestamp() const { return stable_ts_.load(); }
  // The stable timestamp of the checkpoint this start recovered from (0: none or standalone).
  uint64_t recovery_timestamp() const { return recovery_ts_; }
  uint64_t LastCheckpointTimestamp();

  // A checkpoint now (stable unless `unstable`).
  void Checkpoint(bool unstable = false);
  // Makes every committed write durable in the journal.
  void FlushJournal();

  // Pool of sessions handed to Txn.
  Txn::PooledSession* AcquireSession();
  void ReleaseSession(Txn::PooledSession* s);

  // Runs `fn` after every checkpoint (the size storer flushes its counts there).
  void AddCheckpointHook(std::function<void(Txn&)> fn);

  // Opening a WiredTiger backup cursor blocks checkpoints from removing files; the server's
  // $backupCursor uses these through a dedicated session.
  std::mutex& checkpoint_mutex() { return checkpoint_mu_; }

 private:
  explicit Engine(const EngineOptions& options);
  void OpenWiredTiger();
  void LockDbpath();
  void CheckStorageBson();
  void WriteStorageBson();
  void CheckpointLoop();
  void JournalFlushLoop();
  void ProcessDrops(WT_SESSION* s);

  EngineOptions options_;
  WT_CONNECTION* conn_ = nullptr;
  int lock_fd_ = -1;
  bool unclean_start_ = false;
  // A refused start must leave the dbpath as it found it: mongod.lock is removed again when this
  // process created it and Open() failed; storage.bson is written only once WiredTiger is open.
  bool created_lock_file_ = false;
  std::string lock_original_;  // mongod.lock's content when this process found it
  bool opened_ = false;
  bool write_storage_bson_ = false;
  bool shut_down_ = false;
  uint64_t recovery_ts_ = 0;
  std::atomic<uint64_t> stable_ts_{0};
  std::atomic<int64_t> next_ident_{1};
  uint64_t ident_salt_ = 0;

  std::mutex pool_mu_;
  std::vector<std::unique_ptr<Txn::PooledSession>> all_sessions_;
  std::vector<Txn::PooledSession*> free_sessions_;

  std::mutex checkpoint_mu_;
  std::mutex drop_mu_;
  std::vector<std::string> pending_drops_;
  std::vector<std::function<void(Txn&)>> checkpoint_hooks_;

  std::mutex bg_mu_;
  std::condition_variable bg_cv_;
  bool stopping_ = false;
  std::thread checkpoint_thread_;
  std::thread journal_thread_;
};

// Timestamp helpers: WiredTiger takes timestamps as hex strings.
std::string TsHex(uint64_t ts);
uint64_t TsFromHex(const char* hex);

// Throws StorageError("<what>: <wiredtiger_strerror(ret)>") when ret != 0.
void CheckWt(int ret, const std::string& what);

}  // namespace wtm::storage
