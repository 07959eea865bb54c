#include "backup/physical.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <cstring>
#include <filesystem>
#include <functional>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "backup/object_io.h"
#include "backup/source_file.h"
#include "codec/checksum.h"
#include "codec/encrypt.h"
#include "codec/stream.h"

namespace pbm::backup {
namespace {

// mongod's code for "The existing backup cursor must be closed before $backupCursor can succeed".
constexpr int kBackupCursorAlreadyOpen = 50886;

using mongo::Json;

const Json* Path(const Json& j, std::initializer_list<const char*> keys) {
  const Json* cur = &j;
  for (const char* k : keys) {
    if (!cur->is_object() || !cur->contains(k)) return nullptr;
    cur = &(*cur)[k];
  }
  return cur;
}

ClusterTime FromTs(const Json& j) {
  auto ts = mongo::Timestamp::FromJson(j);
  return {ts.t, ts.i};
}

struct FileToCopy {
  std::string path;  // absolute
  std::string rel;   // relative to the dbpath
  int64_t size;
};

// One file's copy as three stages on their own threads, joined by queues of buffers: read
// (the caller's thread), hash (SHA-256), write (compress, encrypt, store). A buffer goes
// free -> read -> hashed -> written -> free, so the disk read of the next megabytes overlaps the
// hashing of this one and the compression of the one before (SHA-256 alone runs at about
// 1.6 GB/s on one core, and a large collection file is one object). Bounded: kBuffers buffers
// of kBufferSize per file in flight.
class CopyPipe {
 public:
  static constexpr size_t kBuffers = 8;
  static constexpr size_t kBufferSize = 1 << 20;
  static constexpr int kStages = 2;  // after the read: 0 hashes, 1 writes

  CopyPipe() {
    for (size_t i = 0; i < kBuffers; ++i) free_.push_back(AlignedBuffer(kBufferSize));
  }

  // Reader: an empty buffer (blocks while all are in flight); throws a later stage's error.
  AlignedBuffer TakeFree() {
    std::unique_lock<std::mutex> l(mu_);
    cv_.wait(l, [&] { return !free_.empty() || error_; });
    if (error_) std::rethrow_exception(error_);
    auto b = std::move(free_.back());
    free_.pop_back();
    return b;
  }
  void PutRead(AlignedBuffer b, size_t n) {
    std::lock_guard<std::mutex> l(mu_);
    queue_[0].push_back({std::move(b), n});
    cv_.notify_all();
  }
  // No more buffers: each stage ends once it handled what is queued for it.
  void Finish() {
    std::lock_guard<std::mutex> l(mu_);
    ended_[0] = true;
    cv_.notify_all();
  }

  // Stage `k`'s loop: `fn` on every buffer queued for it, in order, until the stage before it
  // ended; a failure is kept for the reader to rethrow and stops every stage.
  void Run(int k, const std::function<void(const char*, size_t)>& fn) {
    while (true) {
      std::pair<AlignedBuffer, size_t> item;
      {
        std::unique_lock<std::mutex> l(mu_);
        cv_.wait(l, [&] { return !queue_[k].empty() || ended_[k] || error_; });
        if (error_ || queue_[k].empty()) {
          ended_[k + 1] = true;
          cv_.notify_all();
          return;
        }
        item = std::move(queue_[k].front());
        queue_[k].pop_front();
      }
      try {
        fn(item.first.data(), item.second);
      } catch (...) {
        std::lock_guard<std::mutex> l(mu_);
        if (!error_) error_ = std::current_exception();
        ended_[k + 1] = true;
        cv_.notify_all();
        return;
      }
      std::lock_guard<std::mutex> l(mu_);
      if (k + 1 < kStages) {
        queue_[k + 1].push_back(std::move(item));
      } else {
        free_.push_back(std::move(item.first));
      }
      cv_.notify_all();
    }
  }
  // After the stages ended: the first error, if any.
  void RethrowError() {
    std::lock_guard<std::mutex> l(mu_);
    if (error_) std::rethrow_exception(error_);
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<AlignedBuffer> free_;
  std::deque<std::pair<AlignedBuffer, size_t>> queue_[kStages];
  bool ended_[kStages + 1] = {};  // ended_[k]: nothing more will be queued for stage k
  std::exception_ptr error_;
};

// `on_read(n)` is told of every buffer read.
FileEntry CopyFile(storage::Storage& st, const PhysicalBackupRequest& req, const FileToCopy& f,
                   const BackupHooks& hooks, const std::function<void(int64_t)>& on_read) {
  FileEntry e;
  e.name = f.rel;
  e.size = f.size;
  e.object = req.name + "/" + req.replset + "/" + f.rel + std::string(codec::CodecSuffix(req.codec));
  SourceFile src(f.path);
  ObjectWriter out(st, e.object, req.codec, req.level, req.encryption_key);
  codec::Sha256 sha;
  CopyPipe pipe;
  std::thread hasher, writer;
  auto join = [&] {
    pipe.Finish();
    if (hasher.joinable()) hasher.join();
    if (writer.joinable()) writer.join();
  };
  int64_t left = f.size;
  try {
    hasher = std::thread([&] { pipe.Run(0, [&](const char* p, size_t n) { sha.Update(p, n); }); });
    writer = std::thread([&] { pipe.Run(1, [&](const char* p, size_t n) { out.Write(p, n); }); });
    while (left > 0) {
      if (hooks.cancelled && hooks.cancelled()) Fail(ErrorKind::kCancelled, "backup cancelled");
      AlignedBuffer buf = pipe.TakeFree();
      size_t want = static_cast<size_t>(std::min<int64_t>(left, CopyPipe::kBufferSize));
      int64_t off = f.size - left;
      size_t got = src.ReadAt(buf.data(), want, off);
      if (got < want) {
        Fail(ErrorKind::kCorrupt,
             "backup: {} is shorter ({} bytes) than the backup cursor listed ({} bytes)", f.path,
             off + static_cast<int64_t>(got), f.size);
      }
      pipe.PutRead(std::move(buf), got);
      on_read(static_cast<int64_t>(got));
      left -= static_cast<int64_t>(got);
    }
    join();
    pipe.RethrowError();
    out.Close();
  } catch (...) {
    join();
    throw;
  }
  e.sha256 = sha.HexDigest();
  e.stored_size = out.stored_bytes();
  return e;
}

// Copies files with `parallel` workers; returns entries in the input's order.
std::vector<FileEntry> CopyAll(storage::Storage& st, const PhysicalBackupRequest& req,
                               const std::vector<FileToCopy>& files, const BackupHooks& hooks,
                               ReplsetMeta& meta, std::mutex& meta_mu) {
  std::vector<FileEntry> out(files.size());
  std::atomic<size_t> next{0};
  std::exception_ptr first_error;
  std::mutex err_mu;
  std::atomic<bool> failed{false};
  // Progress: bytes read so far, reported at most twice a second.
  auto last_report = std::chrono::steady_clock::now();
  auto on_read = [&](int64_t n) {
    std::lock_guard<std::mutex> l(meta_mu);
    meta.progress_bytes += n;
    auto now = std::chrono::steady_clock::now();
    if (hooks.on_progress && now - last_report >= std::chrono::milliseconds(500)) {
      last_report = now;
      hooks.on_progress(meta);
    }
  };
  auto worker = [&] {
    while (!failed) {
      size_t i = next++;
      if (i >= files.size()) return;
      try {
        out[i] = CopyFile(st, req, files[i], hooks, on_read);
        std::lock_guard<std::mutex> l(meta_mu);
        meta.size += out[i].stored_size;
        meta.size_uncompressed += out[i].size;
        meta.files += 1;
        if (hooks.on_progress) hooks.on_progress(meta);
      } catch (...) {
        std::lock_guard<std::mutex> l(err_mu);
        if (!first_error) first_error = std::current_exception();
        failed = true;
      }
    }
  };
  int n = std::max(1, std::min<int>(req.parallel, static_cast<int>(files.size())));
  std::vector<std::thread> threads;
  for (int i = 0; i < n; ++i) threads.emplace_back(worker);
  for (auto& t : threads) t.join();
  if (first_error) std::rethrow_exception(first_error);
  return out;
}

std::vector<FileToCopy> ToCopy(const std::vector<Json>& docs, const std::string& dbpath) {
  std::vector<FileToCopy> out;
  for (const auto& d : docs) {
    if (!d.contains("filename")) continue;
    std::string path = d["filename"].get<std::string>();
    std::string rel = std::filesystem::path(path).lexically_relative(dbpath).string();
    if (rel.empty() || rel.rfind("..", 0) == 0) {
      Fail(ErrorKind::kInternal, "backup cursor listed {} outside the dbpath {}", path, dbpath);
    }
    out.push_back({path, rel, d.value("fileSize", int64_t{0})});
  }
  return out;
}

// Reads every document of a command cursor that the server sends before it has nothing more
// right now (the backup cursor stays open, returning empty batches).
std::vector<Json> DrainAvailable(const mongo::Client& node, mongo::CursorBatch b) {
  std::vector<Json> docs = std::move(b.docs);
  while (b.id != 0) {
    b = node.GetMore("admin", b.ns, b.id);
    if (b.docs.empty()) break;
    for (auto& d : b.docs) docs.push_back(std::move(d));
  }
  return docs;
}

}  // namespace

std::string KeyCheckValueOfFile(const std::string& path) {
  try {
    return codec::KeyCheckValue(codec::ReadKeyFile(path));
  } catch (const Error& e) {
    if (e.kind() != ErrorKind::kIo) throw;
    Fail(ErrorKind::kIo,
         "{}; the backup agent needs the node's encryption key file mounted at that path (or "
         "--encryption-key-file)",
         e.what());
  }
}

MongodOptions ReadMongodOptions(const mongo::Client& node, const std::string& key_file_override) {
  Json r = node.RunCommand("admin", {{"getCmdLineOpts", 1}});
  const Json& p = r.contains("parsed") ? r["parsed"] : Json::object();
  MongodOptions o;
  auto str = [&](std::initializer_list<const char*> keys, const std::string& dflt) {
    const Json* v = Path(p, keys);
    return v && v->is_string() ? v->get<std::string>() : dflt;
  };
  auto boolean = [&](std::initializer_list<const char*> keys, bool dflt) {
    const Json* v = Path(p, keys);
    if (!v) return dflt;
    if (v->is_boolean()) return v->get<bool>();
    if (v->is_string()) return *v == "true";
    return dflt;
  };
  o.dbpath = str({"storage", "dbPath"}, "/data/db");
  o.directory_per_db = boolean({"storage", "directoryPerDB"}, false);
  o.directory_for_indexes =
      boolean({"storage", "wiredTiger", "engineConfig", "directoryForIndexes"}, false);
  o.journal_compressor = str({"storage", "wiredTiger", "engineConfig", "journalCompressor"}, "snappy");
  o.block_compressor = str({"storage", "wiredTiger", "collectionConfig", "blockCompressor"}, "snappy");
  o.prefix_compression = boolean({"storage", "wiredTiger", "indexConfig", "prefixCompression"}, true);
  o.encryption = boolean({"security", "enableEncryption"}, false);
  if (o.encryption) {
    o.cipher_mode = str({"security", "encryptionCipherMode"}, "AES256-CBC");
    o.key_file = str({"security", "encryptionKeyFile"}, "");
    std::string path = key_file_override.empty() ? o.key_file : key_file_override;
    if (path.empty()) {
      Fail(ErrorKind::kInvalidArgument,
           "the node encrypts its data but names no key file (vault/KMIP are not supported)");
    }
    o.key_check = KeyCheckValueOfFile(path);
  }
  return o;
}

ReplsetMeta RunPhysicalBackup(const mongo::Client& node, const mongo::Client& cluster,
                              storage::Storage& st, const PhysicalBackupRequest& req,
                              const BackupHooks& hooks) {
  ReplsetMeta meta;
  std::mutex meta_mu;
  meta.name = req.replset;
  meta.node = req.node;
  meta.status = "running";
  auto now = [] {
    return std::chrono::duration_cast<std::chrono::seconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
  };
  meta.conditions.push_back({now(), "running", ""});
  meta.mongod_opts = ReadMongodOptions(node, req.key_file);
  meta.mongodb_version = node.RunCommand("admin", {{"buildInfo", 1}}).value("version", std::string());
  try {
    Json fcv = node.RunCommand("admin", {{"getParameter", 1}, {"featureCompatibilityVersion", 1}});
    meta.fcv = fcv["featureCompatibilityVersion"].value("version", std::string());
  } catch (const Error&) {
    meta.fcv = meta.mongodb_version.substr(0, 3);
  }
  if (hooks.on_progress) hooks.on_progress(meta);

  auto open_cursor = [&] {
    return node.Aggregate("admin", 1, Json::array({{{"$backupCursor", Json::object()}}}));
  };
  mongo::CursorBatch first;
  try {
    first = open_cursor();
  } catch (const mongo::CommandError& e) {
    // A leftover backup cursor (its agent died): closed by the hook, then one retry.
    if (e.code() != kBackupCursorAlreadyOpen || !hooks.on_backup_cursor_busy ||
        !hooks.on_backup_cursor_busy()) {
      throw;
    }
    first = open_cursor();
  }
  std::string ns = first.ns;
  int64_t cursor_id = first.id;
  // Recorded at once (on_progress), so that a successor can close it if this agent dies.
  meta.backup_cursor_id = cursor_id;
  if (hooks.on_progress) hooks.on_progress(meta);
  std::vector<Json> docs = DrainAvailable(node, std::move(first));
  if (docs.empty() || !docs[0].contains("metadata")) {
    Fail(ErrorKind::kInternal, "$backupCursor returned no metadata document");
  }
  Json cm = docs[0]["metadata"];
  docs.erase(docs.begin());
  std::string dbpath = cm.value("dbpath", meta.mongod_opts.dbpath);

  // Keep the cursor alive while copying (the server times idle cursors out).
  std::mutex ka_mu;
  std::condition_variable ka_cv;
  bool ka_stop = false;
  std::thread keepalive([&] {
    std::unique_lock<std::mutex> l(ka_mu);
    while (!ka_cv.wait_for(l, std::chrono::seconds(req.keepalive_secs), [&] { return ka_stop; })) {
      l.unlock();
      try {
        node.GetMore("admin", ns, cursor_id, 1);
      } catch (const Error&) {
        // The copy will fail if the cursor is really gone; nothing to do here.
      }
      l.lock();
    }
  });
  auto stop_keepalive = [&] {
    {
      std::lock_guard<std::mutex> l(ka_mu);
      ka_stop = true;
    }
    ka_cv.notify_all();
    if (keepalive.joinable()) keepalive.join();
  };
  auto close_cursor = [&] {
    stop_keepalive();
    try {
      node.KillCursor("admin", ns, cursor_id);
    } catch (const Error&) {
    }
    std::lock_guard<std::mutex> l(meta_mu);
    meta.backup_cursor_id = 0;
  };

  FileList list;
  list.backup = req.name;
  list.replset = req.replset;
  list.codec = std::string(codec::CodecName(req.codec));
  try {
    meta.first_write_ts = FromTs(cm["oplogEnd"]["ts"]);
    meta.checkpoint_ts = FromTs(cm["checkpointTimestamp"]);
    std::vector<FileToCopy> all = ToCopy(docs, dbpath);
    std::vector<FileToCopy> data, journal;
    for (auto& f : all) (f.rel.rfind("journal/", 0) == 0 ? journal : data).push_back(f);
    // WiredTiger writes only its newest log file; older ones are closed for good (and the open
    // backup cursor keeps them from being removed). Those are copied with the data files, so
    // that only the active file and any newer ones wait for $backupCursorExtend.
    std::sort(journal.begin(), journal.end(),
              [](const FileToCopy& a, const FileToCopy& b) { return a.rel < b.rel; });
    std::set<std::string> journal_done;
    for (size_t i = 0; i + 1 < journal.size(); ++i) {
      data.push_back(journal[i]);
      journal_done.insert(journal[i].rel);
    }
    {
      std::lock_guard<std::mutex> l(meta_mu);
      for (const auto& f : all) meta.progress_total += f.size;
      meta.copy_start_ts = now();
    }
    // storage.bson is not in the cursor's list; it is small and never changes.
    std::string sb = (std::filesystem::path(dbpath) / "storage.bson").string();
    std::error_code ec;
    if (std::filesystem::exists(sb, ec)) {
      data.push_back({sb, "storage.bson", static_cast<int64_t>(std::filesystem::file_size(sb))});
      std::lock_guard<std::mutex> l(meta_mu);
      meta.progress_total += data.back().size;
    }
    for (auto& e : CopyAll(st, req, data, hooks, meta, meta_mu)) list.files.push_back(e);

    // Extend to the replset's majority point: the consistent point of the backup.
    Json hello = cluster.RunCommand("admin", {{"hello", 1}});
    const Json* maj = Path(hello, {"lastWrite", "majorityOpTime", "ts"});
    if (!maj) Fail(ErrorKind::kInternal, "the primary reports no majority optime");
    ClusterTime target = FromTs(*maj);
    if (target < meta.first_write_ts) target = meta.first_write_ts;
    Json ext_stage = {{"$backupCursorExtend",
                       {{"backupId", cm["backupId"]},
                        {"timestamp", mongo::Timestamp{target.t, target.i}.ToJson()}}}};
    mongo::CursorBatch ext = node.Aggregate("admin", 1, Json::array({ext_stage}));
    std::vector<Json> ext_docs = ext.docs;
    while (ext.id != 0) {
      ext = node.GetMore("admin", ext.ns, ext.id);
      for (auto& d : ext.docs) ext_docs.push_back(d);
    }
    // The extended list supersedes the journal files listed at open (same names, longer).
    // Files already copied (closed at the open) are skipped; the active one is copied again at
    // its extended length.
    std::map<std::string, FileToCopy> jmap;
    if (!journal.empty()) jmap[journal.back().rel] = journal.back();
    for (auto& f : ToCopy(ext_docs, dbpath)) {
      if (!journal_done.count(f.rel)) jmap[f.rel] = f;
    }
    std::vector<FileToCopy> jfiles;
    for (auto& [k, f] : jmap) jfiles.push_back(f);
    {
      std::lock_guard<std::mutex> l(meta_mu);
      if (!journal.empty()) meta.progress_total -= journal.back().size;
      for (const auto& f : jfiles) meta.progress_total += f.size;
    }
    for (auto& e : CopyAll(st, req, jfiles, hooks, meta, meta_mu)) list.files.push_back(e);
    meta.last_write_ts = target;
  } catch (...) {
    close_cursor();
    throw;
  }
  close_cursor();
  Json lj = list;
  st.WriteAll(FileListObjectName(req.name, req.replset), lj.dump(1));
  meta.status = "done";
  meta.conditions.push_back({now(), "done", ""});
  if (hooks.on_progress) hooks.on_progress(meta);
  return meta;
}

}  // namespace pbm::backup
