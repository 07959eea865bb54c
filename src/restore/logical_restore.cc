#include "restore/logical_restore.h"

#include <atomic>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <map>
#include <mutex>
#include <thread>

#include "backup/logical.h"
#include "backup/object_io.h"
#include "codec/checksum.h"
#include "common/error.h"
#include "common/parallel.h"
#include "restore/node_restore.h"

namespace pbm::restore {
namespace {

using backup::Json;

constexpr size_t kMaxDocBytes = (16 << 20) + (16 << 10);
constexpr size_t kBatchBytes = 8 << 20;
constexpr size_t kBatchDocs = 1000;

// Reads a stream of BSON documents; calls fn(doc) for each. Throws kCorrupt on a malformed one.
void ForEachDoc(codec::Source& in, const std::string& what,
                const std::function<void(std::string&&)>& fn) {
  while (true) {
    unsigned char len_bytes[4];
    size_t got = codec::ReadFull(in, len_bytes, 4);
    if (got == 0) return;
    if (got < 4) Fail(ErrorKind::kCorrupt, "{}: truncated document", what);
    uint32_t len = len_bytes[0] | (len_bytes[1] << 8) | (len_bytes[2] << 16) |
                   (static_cast<uint32_t>(len_bytes[3]) << 24);
    if (len < 5 || len > kMaxDocBytes) {
      Fail(ErrorKind::kCorrupt, "{}: a document claims {} bytes", what, len);
    }
    std::string doc(len, '\0');
    std::memcpy(doc.data(), len_bytes, 4);
    if (codec::ReadFull(in, doc.data() + 4, len - 4) != len - 4) {
      Fail(ErrorKind::kCorrupt, "{}: truncated document", what);
    }
    fn(std::move(doc));
  }
}

// The namespace ("db.coll") of a raw oplog entry, its op, and whether to replay it.
bool ShouldReplay(const std::string& raw) {
  Json e = mongo::BsonBytesToJson(reinterpret_cast<const uint8_t*>(raw.data()), raw.size());
  std::string op = e.value("op", std::string());
  if (op == "n") return false;
  std::string ns = e.value("ns", std::string());
  auto dot = ns.find('.');
  std::string db = ns.substr(0, dot);
  std::string coll = dot == std::string::npos ? "" : ns.substr(dot + 1);
  if (op == "c") return db != "local" && db != "config";
  return backup::IsBackedUpNamespace(db, coll);
}

// A bounded queue of document batches between the reader and the insertion workers.
class BatchQueue {
 public:
  explicit BatchQueue(size_t cap) : cap_(cap) {}
  // False once the queue failed (a worker's insert failed).
  bool Push(std::vector<std::string>&& b) {
    std::unique_lock<std::mutex> l(mu_);
    cv_.wait(l, [&] { return q_.size() < cap_ || failed_; });
    if (failed_) return false;
    q_.push_back(std::move(b));
    cv_.notify_all();
    return true;
  }
  // False when closed and drained, or failed.
  bool Pop(std::vector<std::string>* b) {
    std::unique_lock<std::mutex> l(mu_);
    cv_.wait(l, [&] { return !q_.empty() || closed_ || failed_; });
    if (failed_ || q_.empty()) return false;
    *b = std::move(q_.front());
    q_.pop_front();
    cv_.notify_all();
    return true;
  }
  void Close() {
    std::lock_guard<std::mutex> l(mu_);
    closed_ = true;
    cv_.notify_all();
  }
  void Fail() {
    std::lock_guard<std::mutex> l(mu_);
    failed_ = true;
    cv_.notify_all();
  }

 private:
  size_t cap_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::vector<std::string>> q_;
  bool closed_ = false;
  bool failed_ = false;
};

}  // namespace

LogicalRestoreResult RunLogicalRestore(const mongo::Client& primary,
                                       const LogicalRestoreRequest& req) {
  const storage::Storage& st = *req.storage;
  auto report = [&](const std::string& step, int64_t done, int64_t total) {
    if (req.progress) req.progress(step, done, total);
  };
  // 1. The backup, checked whole before anything is touched.
  std::string meta_name = backup::MetaObjectName(req.backup_name);
  if (!st.Stat(meta_name)) {
    Fail(ErrorKind::kNotFound, "backup {} not found on {}", req.backup_name, st.Describe());
  }
  backup::BackupMeta meta;
  try {
    meta = Json::parse(st.ReadAll(meta_name)).get<backup::BackupMeta>();
  } catch (const Json::exception& e) {
    Fail(ErrorKind::kCorrupt, "backup metadata {}: {}", meta_name, e.what());
  }
  if (meta.type != "logical") {
    Fail(ErrorKind::kInvalidArgument, "backup {} is a {} backup, not a logical one",
         req.backup_name, meta.type);
  }
  if (meta.status != "done") {
    Fail(ErrorKind::kInvalidArgument,
         "backup {} is not complete (status \"{}\"); only a backup with status \"done\" can be "
         "restored",
         req.backup_name, meta.status);
  }
  const backup::ReplsetMeta* rs = nullptr;
  for (const auto& r : meta.replsets) {
    if (r.name == req.replset || meta.replsets.size() == 1) rs = &r;
  }
  if (!rs) Fail(ErrorKind::kNotFound, "backup {} has no replset {}", req.backup_name, req.replset);
  CheckEncryptionKey(meta, req.encryption_key);
  std::optional<codec::EncryptionKey> key =
      meta.encryption.empty() ? std::nullopt : req.encryption_key;
  backup::FileList list;
  std::vector<backup::NamespaceEntry> nss;
  try {
    list = Json::parse(st.ReadAll(backup::FileListObjectName(req.backup_name, rs->name)))
               .get<backup::FileList>();
    for (const auto& n : Json::parse(st.ReadAll(backup::NamespacesObjectName(req.backup_name, rs->name)))) {
      nss.push_back(n.get<backup::NamespaceEntry>());
    }
  } catch (const Json::exception& e) {
    Fail(ErrorKind::kCorrupt, "backup {}: unreadable file list or namespaces: {}", req.backup_name,
         e.what());
  }
  codec::Codec codec = codec::ParseCodec(list.codec);
  std::map<std::string, backup::FileEntry> files;
  int64_t total = 0;
  for (const auto& f : list.files) {
    files[f.name] = f;
    total += f.size;
  }
  if (!files.count(backup::kOplogFileName)) {
    Fail(ErrorKind::kCorrupt, "backup {}: the file list has no oplog", req.backup_name);
  }
  {
    std::mutex mu;
    int64_t done = 0;
    ParallelFor(list.files.size(), req.parallel, [&](size_t i) {
      const auto& f = list.files[i];
      try {
        auto info = st.Stat(f.object);
        if (!info) Fail(ErrorKind::kCorrupt, "object {} is missing", f.object);
        if (f.stored_size && info->size != f.stored_size) {
          Fail(ErrorKind::kCorrupt, "object {} holds {} bytes, the file list says {}", f.object,
               info->size, f.stored_size);
        }
        auto d = backup::DigestObject(st, f.object, codec, key);
        if (d.size != f.size || d.sha256 != f.sha256) {
          Fail(ErrorKind::kCorrupt, "object {} does not match the file list ({} bytes, SHA-256 {})",
               f.object, d.size, d.size == f.size ? "differs" : "not checked");
        }
        std::lock_guard<std::mutex> l(mu);
        done += f.size;
        report("verify", done, total);
      } catch (const Error& e) {
        bool named = std::string(e.what()).find(f.object) != std::string::npos;
        throw Error(e.kind(), fmt::format("backup {} cannot be restored, nothing was changed: {}{}",
                                          req.backup_name, e.what(),
                                          named ? "" : " (object " + f.object + ")"));
      }
    });
  }

  // 2. Collections.
  LogicalRestoreResult result;
  std::mutex mu;
  int64_t done = 0;
  auto restore_one = [&](const backup::NamespaceEntry& n) {
    bool system = n.coll.rfind("system.", 0) == 0;
    if (system) {
      primary.Delete(n.db, n.coll, Json::object());
    } else {
      try {
        primary.RunCommand(n.db, {{"drop", n.coll}});
      } catch (const mongo::CommandError& e) {
        if (e.code() != 26) throw;  // NamespaceNotFound: nothing to drop
      }
      Json create = {{"create", n.coll}};
      for (auto& [k, v] : n.options.items()) create[k] = v;
      primary.RunCommand(n.db, create);
    }
    if (n.type != "collection") return;
    // Batches go to insertion workers through a bounded queue (one worker for a capped
    // collection, whose natural order is its content).
    int workers = n.options.value("capped", false) ? 1 : std::max(1, req.insertion_workers);
    BatchQueue q(static_cast<size_t>(workers) * 2);
    std::atomic<int64_t> docs{0};
    std::vector<std::thread> inserters;
    std::exception_ptr insert_error;
    std::mutex insert_mu;
    for (int w = 0; w < workers; ++w) {
      inserters.emplace_back([&] {
        std::vector<std::string> b;
        while (q.Pop(&b)) {
          try {
            primary.InsertRaw(n.db, n.coll, b);
            docs += static_cast<int64_t>(b.size());
          } catch (...) {
            std::lock_guard<std::mutex> l(insert_mu);
            if (!insert_error) insert_error = std::current_exception();
            q.Fail();
          }
        }
      });
    }
    try {
      std::vector<std::string> batch;
      size_t batch_bytes = 0;
      for (const auto& name : n.files) {
        const auto& f = files.at(name);
        auto in = backup::OpenObjectReader(st, f.object, codec, key);
        ForEachDoc(*in, "object " + f.object, [&](std::string&& doc) {
          batch_bytes += doc.size();
          batch.push_back(std::move(doc));
          if (batch.size() >= kBatchDocs || batch_bytes >= kBatchBytes) {
            if (!q.Push(std::move(batch))) Fail(ErrorKind::kInternal, "insertion stopped");
            batch.clear();
            batch_bytes = 0;
          }
        });
        std::lock_guard<std::mutex> l(mu);
        done += f.size;
        report("collections", done, total);
      }
      if (!batch.empty()) q.Push(std::move(batch));
    } catch (...) {
      q.Close();
      for (auto& t : inserters) t.join();
      if (insert_error) std::rethrow_exception(insert_error);
      throw;
    }
    q.Close();
    for (auto& t : inserters) t.join();
    if (insert_error) std::rethrow_exception(insert_error);
    Json indexes = Json::array();
    for (auto ix : n.indexes) {
      if (ix.value("name", std::string()) == "_id_") continue;
      ix.erase("v");
      ix.erase("ns");
      indexes.push_back(ix);
    }
    if (!indexes.empty()) {
      primary.RunCommand(n.db, {{"createIndexes", n.coll}, {"indexes", indexes}});
    }
    std::lock_guard<std::mutex> l(mu);
    result.collections += 1;
    result.documents += docs.load();
  };
  ParallelFor(nss.size(), req.parallel, [&](size_t i) {
    const auto& n = nss[i];
    if (n.type != "collection") return;
    try {
      restore_one(n);
    } catch (const Error& e) {
      throw Error(e.kind(), fmt::format("restore {}.{}: {}", n.db, n.coll, e.what()));
    }
  });
  for (const auto& n : nss) {
    if (n.type == "collection") continue;
    try {
      restore_one(n);  // views, once the collections they read exist
    } catch (const Error& e) {
      throw Error(e.kind(), fmt::format("restore view {}.{}: {}", n.db, n.coll, e.what()));
    }
  }

  // 3. The oplog up to the consistent point.
  const auto& of = files.at(backup::kOplogFileName);
  auto in = backup::OpenObjectReader(st, of.object, codec, key);
  std::vector<std::string> ops;
  size_t ops_bytes = 0;
  auto apply = [&] {
    if (ops.empty()) return;
    try {
      primary.ApplyOpsRaw(ops);
    } catch (const Error& e) {
      throw Error(e.kind(), fmt::format("replay the oplog ({} entries from entry {}): {}",
                                        ops.size(), result.oplog_entries, e.what()));
    }
    result.oplog_entries += static_cast<int64_t>(ops.size());
    ops.clear();
    ops_bytes = 0;
  };
  ForEachDoc(*in, "object " + of.object, [&](std::string&& e) {
    if (!ShouldReplay(e)) return;
    ops_bytes += e.size();
    ops.push_back(std::move(e));
    if (ops.size() >= kBatchDocs || ops_bytes >= kBatchBytes) apply();
  });
  apply();
  report("oplog", total, total);
  result.restored_to = rs->last_write_ts;
  return result;
}

}  // namespace pbm::restore
