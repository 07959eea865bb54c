#include "storage/engine.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <bson/bson.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <regex>
#include <sstream>

#include "common/log.h"
#include "storage/key_file.h"
#include "storage/wt_extensions.h"

namespace fs = std::filesystem;

namespace wtm::storage {
namespace {

// WiredTiger's messages go to our log; the last error is kept to explain a failed open.
std::mutex g_wt_err_mu;
std::string g_wt_last_error;
// The first error since OpenWiredTiger began: a failed open reports its root cause (say, a
// checksum error in WiredTiger.wt), not the "library panic" WiredTiger logs last.
std::string g_wt_first_error;

int HandleError(WT_EVENT_HANDLER*, WT_SESSION*, int error, const char* message) {
  {
    std::lock_guard<std::mutex> l(g_wt_err_mu);
    g_wt_last_error = message ? message : "";
    if (g_wt_first_error.empty()) g_wt_first_error = g_wt_last_error;
  }
  wtm::Log(Severity::kError, "WT", "WiredTiger error",
           "{\"error\":" + std::to_string(error) + ",\"message\":" + JsonQuote(message ? message : "") +
               "}");
  return 0;
}

int HandleMessage(WT_EVENT_HANDLER*, WT_SESSION*, const char* message) {
  wtm::Log(Severity::kInfo, "WTRECOV", "WiredTiger message",
           "{\"message\":" + JsonQuote(message ? message : "") + "}");
  return 0;
}

WT_EVENT_HANDLER g_event_handler = {HandleError, HandleMessage, nullptr, nullptr};

std::string ReadFile(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace

std::string TsHex(uint64_t ts) {
  char buf[24];
  snprintf(buf, sizeof buf, "%llx", static_cast<unsigned long long>(ts));
  return buf;
}

uint64_t TsFromHex(const char* hex) { return strtoull(hex, nullptr, 16); }

void CheckWt(int ret, const std::string& what) {
  if (ret != 0) throw StorageError(what + ": " + wiredtiger_strerror(ret));
}

// ---------------------------------------------------------------------------------------------
// Txn

Txn::Txn(Engine& engine) : engine_(engine), session_(engine.AcquireSession()) {
  CheckWt(session_->session->begin_transaction(session_->session, "isolation=snapshot"),
          "begin_transaction");
  open_ = true;
}

Txn::~Txn() {
  if (open_) Abort();
  for (auto& [uri, c] : session_->cursors) c->reset(c);
  engine_.ReleaseSession(session_);
}

WT_CURSOR* Txn::Cursor(const std::string& uri) {
  auto it = session_->cursors.find(uri);
  if (it != session_->cursors.end()) return it->second;
  WT_CURSOR* c = nullptr;
  CheckWt(session_->session->open_cursor(session_->session, uri.c_str(), nullptr, nullptr, &c),
          "open cursor on " + uri);
  session_->cursors[uri] = c;
  return c;
}

void Txn::SetCommitTimestamp(uint64_t ts) {
  if (ts == 0) return;
  std::string cfg = "commit_timestamp=" + TsHex(ts);
  CheckWt(session_->session->timestamp_transaction(session_->session, cfg.c_str()),
          "timestamp_transaction");
}

void Txn::Commit() {
  if (!open_) return;
  open_ = false;
  for (auto& [uri, c] : session_->cursors) c->reset(c);
  CheckWt(session_->session->commit_transaction(session_->session, nullptr), "commit_transaction");
}

void Txn::Abort() {
  if (!open_) return;
  open_ = false;
  for (auto& [uri, c] : session_->cursors) c->reset(c);
  session_->session->rollback_transaction(session_->session, nullptr);
}

// ---------------------------------------------------------------------------------------------
// Engine

Engine::Engine(const EngineOptions& options) : options_(options) {}

std::unique_ptr<Engine> Engine::Open(const EngineOptions& options) {
  std::unique_ptr<Engine> e(new Engine(options));
  std::error_code ec;
  if (!fs::is_directory(options.dbpath, ec)) {
    throw StorageError("Data directory " + options.dbpath +
                       " not found. Create the missing directory or specify another path using "
                       "--dbpath or storage.dbPath in the configuration file.");
  }
  e->LockDbpath();
  e->CheckStorageBson();
  e->OpenWiredTiger();
  // Only a dbpath WiredTiger accepted gets storage.bson: a failed first start (say, a missing
  // key file) must not pin options the user then corrects.
  if (e->write_storage_bson_) {
    // A new dbpath: checkpoint at once so that WiredTiger.wt holds a block showing whether the
    // files are encrypted. Otherwise a node killed before its first periodic checkpoint leaves
    // no such block, CheckDbpathEncryption cannot tell, and a restart with the other encryption
    // setting would be let in.
    e->Checkpoint(true);
    e->WriteStorageBson();
  }
  e->opened_ = true;
  return e;
}

void Engine::LockDbpath() {
  fs::path lock = fs::path(options_.dbpath) / "mongod.lock";
  lock_fd_ = open(lock.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (lock_fd_ >= 0) {
    created_lock_file_ = true;
  } else if (errno == EEXIST) {
    lock_fd_ = open(lock.c_str(), O_RDWR | O_CLOEXEC);
  }
  if (lock_fd_ < 0) {
    throw StorageError("Unable to create/open the lock file: " + lock.string() + " (" +
                       strerror(errno) + "). Ensure the user executing mongod is the owner of "
                       "the lock file and has the appropriate permissions.");
  }
  if (flock(lock_fd_, LOCK_EX | LOCK_NB) != 0) {
    int err = errno;
    close(lock_fd_);
    lock_fd_ = -1;
    created_lock_file_ = false;  // another process holds it now
    throw StorageError("Unable to lock the lock file: " + lock.string() + " (" + strerror(err) +
                       "). Another mongod instance is already running on the " + options_.dbpath +
                       " directory");
  }
  struct stat st;
  if (fstat(lock_fd_, &st) == 0 && st.st_size > 0) {
    // Kept to put back if this start is refused: a dead process's pid marks an unclean shutdown.
    lock_original_.resize(std::min<off_t>(st.st_size, 4096));
    ssize_t n = pread(lock_fd_, lock_original_.data(), lock_original_.size(), 0);
    lock_original_.resize(n > 0 ? static_cast<size_t>(n) : 0);
    unclean_start_ = true;
    Log(Severity::kWarning, "STORAGE",
        "Detected unclean shutdown - Lock file is not empty",
        "{\"lockFile\":" + JsonQuote(lock.string()) + "}");
  }
  std::string pid = std::to_string(getpid()) + "\n";
  if (ftruncate(lock_fd_, 0) != 0 || pwrite(lock_fd_, pid.data(), pid.size(), 0) < 0 ||
      fsync(lock_fd_) != 0) {
    throw StorageError("Unable to write the pid to the lock file " + lock.string() + ": " +
                       strerror(errno));
  }
}

void Engine::CheckStorageBson() {
  fs::path dbpath(options_.dbpath);
  fs::path sb = dbpath / "storage.bson";
  bool has_wt = fs::exists(dbpath / "WiredTiger");
  if (fs::exists(sb)) {
    std::string bytes = ReadFile(sb);
    bson_t b;
    if (!bson_init_static(&b, reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size())) {
      throw StorageError("storage.bson in " + options_.dbpath +
                         " is corrupt; this dbpath was not written by a compatible mongod");
    }
    bson_iter_t it;
    std::string engine;
    if (bson_iter_init(&it, &b) && bson_iter_find_descendant(&it, "storage.engine", &it) &&
        BSON_ITER_HOLDS_UTF8(&it)) {
      engine = bson_iter_utf8(&it, nullptr);
    }
    if (engine != "wiredTiger") {
      throw StorageError("Unable to start up mongod due to missing featureCompatibilityVersion "
                         "or storage engine mismatch: the dbpath " + options_.dbpath +
                         " holds data of storage engine '" + engine +
                         "', not 'wiredTiger'; point --dbpath at a wiredTiger data directory");
    }
    auto check_bool = [&](const char* key, bool requested, const char* name) {
      bson_iter_t i2;
      bool current = false;
      if (bson_iter_init(&i2, &b) && bson_iter_find_descendant(&i2, key, &i2) &&
          BSON_ITER_HOLDS_BOOL(&i2)) {
        current = bson_iter_bool(&i2);
      }
      if (current != requested) {
        throw StorageError(std::string("Requested option conflicts with the current storage "
                                       "engine option for ") +
                           name + "; you requested " + (requested ? "true" : "false") +
                           " but the current server storage is already set to " +
                           (current ? "true" : "false") + " and cannot be changed");
      }
    };
    check_bool("storage.options.directoryPerDB", options_.directory_per_db, "directoryPerDB");
    check_bool("storage.options.directoryForIndexes", options_.directory_for_indexes,
               "directoryForIndexes");
    if (!has_wt) {
      throw StorageError("the dbpath " + options_.dbpath +
                         " has storage.bson but no WiredTiger files; it is incomplete. Restore "
                         "the missing files or point --dbpath at an empty directory");
    }
    return;
  }
  if (has_wt) {
    // An older dbpath without storage.bson: take it as it is.
    return;
  }
  for (const auto& entry : fs::directory_iterator(dbpath)) {
    std::string name = entry.path().filename().string();
    if (name == "mongod.lock" || name == "diagnostic.data" || name == "journal") continue;
    if (name.rfind("WiredTiger", 0) == 0 || name.ends_with(".wt")) {
      throw StorageError("the dbpath " + options_.dbpath + " holds WiredTiger files (" + name +
                         ") but not the WiredTiger metadata; it is damaged or not a mongod "
                         "dbpath. Restore it from a backup or use an empty directory");
    }
  }
  write_storage_bson_ = true;
}

void Engine::WriteStorageBson() {
  fs::path dbpath(options_.dbpath);
  fs::path sb = dbpath / "storage.bson";
  bson_t b = BSON_INITIALIZER;
  bson_t storage, opts;
  BSON_APPEND_DOCUMENT_BEGIN(&b, "storage", &storage);
  BSON_APPEND_UTF8(&storage, "engine", "wiredTiger");
  BSON_APPEND_DOCUMENT_BEGIN(&storage, "options", &opts);
  BSON_APPEND_BOOL(&opts, "directoryPerDB", options_.directory_per_db);
  BSON_APPEND_BOOL(&opts, "directoryForIndexes", options_.directory_for_indexes);
  bson_append_document_end(&storage, &opts);
  bson_append_document_end(&b, &storage);
  fs::path tmp = dbpath / "storage.bson.tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(bson_get_data(&b)), b.len);
    if (!out) throw StorageError("cannot write " + tmp.string());
  }
  bson_destroy(&b);
  fs::rename(tmp, sb);
}

void Engine::OpenWiredTiger() {
  fs::path dbpath(options_.dbpath);
  if (options_.enable_encryption) {
    if (options_.encryption_key_file.empty()) {
      throw StorageError("--enableEncryption requires --encryptionKeyFile");
    }
    EncryptionKey key;
    try {
      key = LoadKeyFile(options_.encryption_key_file);
    } catch (const std::exception& e) {
      throw StorageError(e.what());
    }
    CipherMode mode;
    if (options_.cipher_mode == "AES256-CBC") {
      mode = CipherMode::kCbc;
    } else if (options_.cipher_mode == "AES256-GCM") {
      mode = CipherMode::kGcm;
    } else {
      throw StorageError("encryptionCipherMode must be AES256-CBC or AES256-GCM, not '" +
                         options_.cipher_mode + "'");
    }
    SetEncryption(key, mode);
  } else {
    ClearEncryption();
  }
  ClearLastEncryptionError();
  // Refuse a dbpath whose encryption differs from ours before WiredTiger reads anything.
  std::string mismatch = CheckDbpathEncryption(options_.dbpath, options_.enable_encryption);
  if (!mismatch.empty()) {
    throw StorageError("cannot open the data files in " + options_.dbpath + ": " + mismatch);
  }

  std::error_code ec;
  fs::create_directories(dbpath / "journal", ec);
  std::string journal = options_.journal_compressor == "none" ? "none" : options_.journal_compressor;
  int64_t cache_mb = options_.cache_size_gb > 0
                         ? static_cast<int64_t>(options_.cache_size_gb * 1024)
                         : 256;
  if (cache_mb < 256) cache_mb = 256;
  std::string cfg = "create,cache_size=" + std::to_string(cache_mb) +
                    "M,session_max=33000,eviction=(threads_min=2,threads_max=2),"
                    "config_base=false,statistics=(fast),"
                    "log=(enabled=true,archive=true,path=journal,prealloc=false,compressor=" +
                    journal +
                    "),file_manager=(close_idle_time=100000,close_scan_interval=10,"
                    "close_handle_minimum=250),statistics_log=(wait=0),"
                    "verbose=[recovery_progress,checkpoint_progress]," +
                    ExtensionsConfig() + "," + ConnectionEncryptionConfig(options_.enable_encryption);
  {
    std::lock_guard<std::mutex> l(g_wt_err_mu);
    g_wt_first_error.clear();
  }
  int ret = wiredtiger_open(options_.dbpath.c_str(), &g_event_handler, cfg.c_str(), &conn_);
  if (ret != 0) {
    conn_ = nullptr;
    std::string why = LastEncryptionError();
    if (why.empty()) {
      std::lock_guard<std::mutex> l(g_wt_err_mu);
      why = g_wt_first_error.empty() ? wiredtiger_strerror(ret) : g_wt_first_error;
      // Drop WiredTiger's "[time][pid:tid], file:X, connection: __function, line: " prefix.
      static const std::regex kPrefix(R"(^\[[^\]]*\]\[[^\]]*\].*?: __\w+, \d+: )");
      why = std::regex_replace(why, kPrefix, "");
    }
    throw StorageError("cannot open the WiredTiger data files in " + options_.dbpath + ": " + why);
  }
  char hex[64] = {0};
  if (conn_->query_timestamp(conn_, hex, "get=recovery") == 0) recovery_ts_ = TsFromHex(hex);
  std::random_device rd;
  ident_salt_ = (static_cast<uint64_t>(rd()) << 20 | rd()) % 9000000000000000000ULL;
  if (recovery_ts_ != 0) {
    stable_ts_ = recovery_ts_;
  }
  checkpoint_thread_ = std::thread([this] { CheckpointLoop(); });
  journal_thread_ = std::thread([this] { JournalFlushLoop(); });
}

Engine::~Engine() { Shutdown(false); }

void Engine::Shutdown(bool unstable_checkpoint) {
  if (shut_down_) return;
  shut_down_ = true;
  {
    std::lock_guard<std::mutex> l(bg_mu_);
    stopping_ = true;
  }
  bg_cv_.notify_all();
  if (checkpoint_thread_.joinable()) checkpoint_thread_.join();
  if (journal_thread_.joinable()) journal_thread_.join();
  if (conn_) {
    try {
      Checkpoint(unstable_checkpoint);
    } catch (const std::exception& e) {
      Log(Severity::kError, "STORAGE", "final checkpoint failed",
          "{\"error\":" + JsonQuote(e.what()) + "}");
    }
    std::string cfg = unstable_checkpoint ? "use_timestamp=false" : "use_timestamp=true";
    {
      std::lock_guard<std::mutex> l(pool_mu_);
      free_sessions_.clear();
      all_sessions_.clear();  // sessions are closed by conn->close
    }
    conn_->close(conn_, cfg.c_str());
    conn_ = nullptr;
    Log(Severity::kInfo, "STORAGE", "WiredTiger closed", "{}");
  }
  if (lock_fd_ >= 0) {
    if (ftruncate(lock_fd_, 0) == 0) {
      // A refused start restores what it found; unlinked while still locked, so no other process
      // can take it in between.
      if (!opened_ && !lock_original_.empty()) {
        ssize_t n = pwrite(lock_fd_, lock_original_.data(), lock_original_.size(), 0);
        (void)n;
      }
      fsync(lock_fd_);
    }
    if (!opened_ && created_lock_file_) unlink((fs::path(options_.dbpath) / "mongod.lock").c_str());
    flock(lock_fd_, LOCK_UN);
    close(lock_fd_);
    lock_fd_ = -1;
  }
}

Txn::PooledSession* Engine::AcquireSession() {
  {
    std::lock_guard<std::mutex> l(pool_mu_);
    if (!free_sessions_.empty()) {
      auto* s = free_sessions_.back();
      free_sessions_.pop_back();
      return s;
    }
  }
  auto s = std::make_unique<Txn::PooledSession>();
  CheckWt(conn_->open_session(conn_, nullptr, "isolation=snapshot", &s->session), "open_session");
  std::lock_guard<std::mutex> l(pool_mu_);
  all_sessions_.push_back(std::move(s));
  return all_sessions_.back().get();
}

void Engine::ReleaseSession(Txn::PooledSession* s) {
  std::lock_guard<std::mutex> l(pool_mu_);
  free_sessions_.push_back(s);
}

std::string Engine::NewIdent(const std::string& kind, const std::string& db) {
  std::string name = kind + "-" + std::to_string(next_ident_++) + "-" + std::to_string(ident_salt_);
  std::string dir;
  if (options_.directory_per_db) dir = db + "/";
  if (options_.directory_for_indexes) dir += kind + "/";
  if (!dir.empty()) {
    std::error_code ec;
    fs::create_directories(fs::path(options_.dbpath) / dir, ec);
  }
  return dir + name;
}

namespace {
std::string TableConfig(const EngineOptions& o, bool index, bool logged) {
  std::string cfg = "type=file,memory_page_max=10m,split_pct=90,leaf_value_max=64MB,checksum=on,";
  cfg += "block_compressor=" + (o.block_compressor == "none" ? std::string("none") : o.block_compressor);
  std::string enc = TableEncryptionConfig(o.enable_encryption);
  if (!enc.empty()) cfg += "," + enc;
  if (index) {
    cfg += ",key_format=u,value_format=u,internal_page_max=16k,leaf_page_max=16k,";
    cfg += std::string("prefix_compression=") + (o.prefix_compression ? "true" : "false");
    cfg += ",app_metadata=(formatVersion=8)";
  } else {
    cfg += ",key_format=q,value_format=u,app_metadata=(formatVersion=1)";
  }
  cfg += std::string(",log=(enabled=") + (logged ? "true" : "false") + ")";
  return cfg;
}
}  // namespace

void Engine::CreateRecordStore(Txn& txn, const std::string& ident, bool logged) {
  std::string cfg = TableConfig(options_, false, logged);
  CheckWt(txn.session()->create(txn.session(), ("table:" + ident).c_str(), cfg.c_str()),
          "create table " + ident);
}

void Engine::CreateIndexTable(Txn& txn, const std::string& ident, bool logged) {
  std::string cfg = TableConfig(options_, true, logged);
  CheckWt(txn.session()->create(txn.session(), ("table:" + ident).c_str(), cfg.c_str()),
          "create table " + ident);
}

void Engine::DropIdent(const std::string& ident) {
  std::lock_guard<std::mutex> l(drop_mu_);
  pending_drops_.push_back(ident);
}

void Engine::SetTableLogging(const std::string& ident, bool logged) {
  WT_SESSION* s = nullptr;
  CheckWt(conn_->open_session(conn_, nullptr, nullptr, &s), "open_session");
  std::string cfg = std::string("log=(enabled=") + (logged ? "true" : "false") + ")";
  int ret = s->alter(s, ("table:" + ident).c_str(), cfg.c_str());
  s->close(s, nullptr);
  CheckWt(ret, "alter logging of " + ident);
}

void Engine::SetStableTimestamp(uint64_t ts) {
  if (ts == 0 || ts <= stable_ts_.load()) return;
  stable_ts_ = ts;
  std::string cfg = "stable_timestamp=" + TsHex(ts) + ",oldest_timestamp=" + TsHex(ts);
  CheckWt(conn_->set_timestamp(conn_, cfg.c_str()), "set_timestamp");
}

uint64_t Engine::LastCheckpointTimestamp() {
  char hex[64] = {0};
  if (conn_->query_timestamp(conn_, hex, "get=last_checkpoint") == 0) return TsFromHex(hex);
  return 0;
}

void Engine::Checkpoint(bool unstable) {
  std::lock_guard<std::mutex> cl(checkpoint_mu_);
  WT_SESSION* s = nullptr;
  CheckWt(conn_->open_session(conn_, nullptr, nullptr, &s), "open_session");
  int ret = 0;
  {
    std::vector<std::function<void(Txn&)>> hooks;
    {
      std::lock_guard<std::mutex> l(drop_mu_);
      hooks = checkpoint_hooks_;
    }
    if (!hooks.empty()) {
      Txn txn(*this);
      for (auto& h : hooks) h(txn);
      txn.Commit();
    }
  }
  ret = s->checkpoint(s, unstable ? "use_timestamp=false" : "use_timestamp=true");
  ProcessDrops(s);
  s->close(s, nullptr);
  CheckWt(ret, "checkpoint");
}

void Engine::ProcessDrops(WT_SESSION* s) {
  std::vector<std::string> drops;
  {
    std::lock_guard<std::mutex> l(drop_mu_);
    drops.swap(pending_drops_);
  }
  std::vector<std::string> still;
  for (const auto& ident : drops) {
    std::string uri = "table:" + ident;
    {
      // Idle sessions may still cache a cursor on the table; close those first.
      std::lock_guard<std::mutex> l(pool_mu_);
      for (auto* ps : free_sessions_) {
        auto it = ps->cursors.find(uri);
        if (it != ps->cursors.end()) {
          it->second->close(it->second);
          ps->cursors.erase(it);
        }
      }
    }
    int r = s->drop(s, uri.c_str(), "force=true");
    if (r == EBUSY) still.push_back(ident);
  }
  if (!still.empty()) {
    std::lock_guard<std::mutex> l(drop_mu_);
    pending_drops_.insert(pending_drops_.end(), still.begin(), still.end());
  }
}

void Engine::AddCheckpointHook(std::function<void(Txn&)> fn) {
  std::lock_guard<std::mutex> l(drop_mu_);
  checkpoint_hooks_.push_back(std::move(fn));
}

void Engine::FlushJournal() {
  WT_SESSION* s = nullptr;
  CheckWt(conn_->open_session(conn_, nullptr, nullptr, &s), "open_session");
  int ret = s->log_flush(s, "sync=on");
  s->close(s, nullptr);
  CheckWt(ret, "log_flush");
}

void Engine::CheckpointLoop() {
  SetThreadName("Checkpointer");
  auto period = std::chrono::seconds(options_.sync_period_secs > 0 ? options_.sync_period_secs : 60);
  auto drop_period = std::chrono::seconds(1);
  auto next = std::chrono::steady_clock::now() + period;
  std::unique_lock<std::mutex> l(bg_mu_);
  while (!stopping_) {
    bg_cv_.wait_for(l, drop_period);
    if (stopping_) break;
    bool due = std::chrono::steady_clock::now() >= next;
    bool drops;
    {
      std::lock_guard<std::mutex> dl(drop_mu_);
      drops = !pending_drops_.empty();
    }
    if (!due && !drops) continue;
    l.unlock();
    try {
      if (due) {
        Checkpoint(false);
      } else {
        // Only pending drops: retry them without a full checkpoint.
        WT_SESSION* s = nullptr;
        if (conn_->open_session(conn_, nullptr, nullptr, &s) == 0) {
          ProcessDrops(s);
          s->close(s, nullptr);
        }
      }
    } catch (const std::exception& e) {
      Log(Severity::kError, "STORAGE", "checkpoint failed", "{\"error\":" + JsonQuote(e.what()) + "}");
    }
    if (due) next = std::chrono::steady_clock::now() + period;
    l.lock();
  }
}

void Engine::JournalFlushLoop() {
  SetThreadName("JournalFlusher");
  std::unique_lock<std::mutex> l(bg_mu_);
  while (!stopping_) {
    bg_cv_.wait_for(l, std::chrono::milliseconds(100));
    if (stopping_) break;
    l.unlock();
    try {
      FlushJournal();
    } catch (const std::exception& e) {
      Log(Severity::kError, "STORAGE", "journal flush failed",
          "{\"error\":" + JsonQuote(e.what()) + "}");
    }
    l.lock();
  }
}

}  // namespace wtm::storage
