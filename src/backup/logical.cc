#include "backup/logical.h"

#include <chrono>
#include <mutex>
#include <thread>

#include "backup/object_io.h"
#include "codec/checksum.h"
#include "common/parallel.h"

namespace pbm::backup {
namespace {

int64_t Now() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string Escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '%') {
      out += "%25";
    } else if (c == '/') {
      out += "%2F";
    } else {
      out += c;
    }
  }
  return out;
}

ClusterTime TsOf(const Json& j) {
  auto ts = mongo::Timestamp::FromJson(j);
  return {ts.t, ts.i};
}

Json TsJson(const ClusterTime& t) { return mongo::Timestamp{t.t, t.i}.ToJson(); }

// Every document of a command cursor reply ({cursor: {id, ns, firstBatch}}).
std::vector<Json> AllOf(const mongo::Client& c, const std::string& db, Json reply) {
  std::vector<Json> out;
  for (auto& d : reply["cursor"]["firstBatch"]) out.push_back(d);
  int64_t id = reply["cursor"].value("id", int64_t{0});
  std::string ns = reply["cursor"].value("ns", std::string());
  while (id != 0) {
    auto b = c.GetMore(db, ns, id);
    for (auto& d : b.docs) out.push_back(std::move(d));
    id = b.id;
  }
  return out;
}

ClusterTime LastApplied(const mongo::Client& node) {
  Json h = node.RunCommand("admin", {{"hello", 1}});
  if (!h.contains("lastWrite") || !h["lastWrite"].contains("opTime")) {
    Fail(ErrorKind::kInternal, "the node reports no last applied optime (hello.lastWrite)");
  }
  return TsOf(h["lastWrite"]["opTime"]["ts"]);
}

ClusterTime MajorityPoint(const mongo::Client& cluster) {
  Json h = cluster.RunCommand("admin", {{"hello", 1}});
  if (!h.contains("lastWrite") || !h["lastWrite"].contains("majorityOpTime")) {
    Fail(ErrorKind::kInternal, "the primary reports no majority optime (hello.lastWrite)");
  }
  return TsOf(h["lastWrite"]["majorityOpTime"]["ts"]);
}

// Writes a stream of BSON documents into objects of at most kPartBytes (original bytes).
class PartWriter {
 public:
  PartWriter(storage::Storage& st, const LogicalBackupRequest& req, std::string base_name,
             bool split)
      : st_(st), req_(req), base_(std::move(base_name)), split_(split) {}

  void Add(const uint8_t* data, size_t n) {
    if (!out_ || (split_ && bytes_ >= kPartBytes)) Roll();
    out_->Write(data, n);
    sha_->Update(data, n);
    bytes_ += static_cast<int64_t>(n);
    ++docs_;
  }

  // Closes the last part (an empty collection still gets one, empty, part).
  std::vector<FileEntry> Finish() {
    if (!out_) Roll();
    Seal();
    return std::move(entries_);
  }
  int64_t docs() const { return docs_; }

 private:
  void Roll() {
    if (out_) Seal();
    FileEntry e;
    e.name = split_ ? fmt::format("{}.{:04d}.bson", base_, entries_.size()) : base_;
    e.object = req_.name + "/" + req_.replset + "/" + e.name +
               std::string(codec::CodecSuffix(req_.codec));
    out_ = std::make_unique<ObjectWriter>(st_, e.object, req_.codec, req_.level,
                                          req_.encryption_key);
    sha_ = std::make_unique<codec::Sha256>();
    bytes_ = 0;
    entries_.push_back(e);
  }
  void Seal() {
    out_->Close();
    FileEntry& e = entries_.back();
    e.size = bytes_;
    e.stored_size = out_->stored_bytes();
    e.sha256 = sha_->HexDigest();
    out_.reset();
  }

  storage::Storage& st_;
  const LogicalBackupRequest& req_;
  std::string base_;
  bool split_;
  std::unique_ptr<ObjectWriter> out_;
  std::unique_ptr<codec::Sha256> sha_;
  int64_t bytes_ = 0;
  int64_t docs_ = 0;
  std::vector<FileEntry> entries_;
};

}  // namespace

void to_json(Json& j, const NamespaceEntry& n) {
  j = Json{{"db", n.db},           {"coll", n.coll},       {"type", n.type},
           {"options", n.options}, {"indexes", n.indexes}, {"docs", n.docs},
           {"files", n.files}};
}
void from_json(const Json& j, NamespaceEntry& n) {
  n.db = j.at("db").get<std::string>();
  n.coll = j.at("coll").get<std::string>();
  n.type = j.value("type", std::string("collection"));
  n.options = j.value("options", Json::object());
  n.indexes = j.value("indexes", Json::array());
  n.docs = j.value("docs", int64_t{0});
  n.files = j.value("files", std::vector<std::string>());
}

std::string NamespacesObjectName(const std::string& backup, const std::string& replset) {
  return backup + "/" + replset + "/namespaces.pbm.json";
}

bool IsBackedUpNamespace(const std::string& db, const std::string& coll) {
  if (db == "local" || db == "config") return false;
  if (db == "admin" && (coll.rfind("pbm", 0) == 0 || coll == "system.version" ||
                        coll == "system.keys")) {
    return false;
  }
  if (coll == "system.profile" || coll == "system.js" || coll.rfind("system.buckets.", 0) == 0) {
    return coll == "system.js";  // stored functions are data; the others are not
  }
  return true;
}

ReplsetMeta RunLogicalBackup(const mongo::Client& node, const mongo::Client& cluster,
                             storage::Storage& st, const LogicalBackupRequest& req,
                             const std::function<void(const ReplsetMeta&)>& on_progress,
                             const std::function<bool()>& cancelled) {
  ReplsetMeta meta;
  std::mutex mu;  // guards meta and the file list while collections are dumped in parallel
  meta.name = req.replset;
  meta.node = req.node;
  meta.status = "running";
  meta.conditions.push_back({Now(), "running", ""});
  meta.mongodb_version =
      node.RunCommand("admin", {{"buildInfo", 1}}).value("version", std::string());
  meta.fcv = meta.mongodb_version.substr(0, meta.mongodb_version.find('.', 2));
  meta.first_write_ts = LastApplied(node);
  meta.copy_start_ts = Now();
  if (on_progress) on_progress(meta);

  // What to dump.
  std::vector<NamespaceEntry> nss;
  Json dbs = node.RunCommand("admin", {{"listDatabases", 1}, {"nameOnly", true}});
  for (const auto& d : dbs["databases"]) {
    std::string db = d.value("name", std::string());
    if (db == "local" || db == "config") continue;
    for (auto& c : AllOf(node, db, node.RunCommand(db, {{"listCollections", 1}}))) {
      NamespaceEntry n;
      n.db = db;
      n.coll = c.value("name", std::string());
      n.type = c.value("type", std::string("collection"));
      n.options = c.value("options", Json::object());
      if (!IsBackedUpNamespace(db, n.coll)) continue;
      if (n.type == "collection") {
        n.indexes = Json::array();
        for (auto& ix : AllOf(node, db, node.RunCommand(db, {{"listIndexes", n.coll}}))) {
          n.indexes.push_back(ix);
        }
      }
      nss.push_back(std::move(n));
    }
  }

  FileList list;
  list.backup = req.name;
  list.replset = req.replset;
  list.codec = std::string(codec::CodecName(req.codec));
  auto last_report = std::chrono::steady_clock::now();
  ParallelFor(nss.size(), req.parallel, [&](size_t i) {
    NamespaceEntry& n = nss[i];
    if (n.type != "collection") return;  // views are recreated from their options
    try {
      PartWriter pw(st, req, n.db + "/" + Escape(n.coll), true);
      int64_t since_report = 0;
      node.FindRaw(n.db, n.coll, Json::object(), {{"batchSize", 1000}},
                   [&](const uint8_t* data, size_t len) {
                     if (cancelled && cancelled()) Fail(ErrorKind::kCancelled, "backup cancelled");
                     pw.Add(data, len);
                     since_report += static_cast<int64_t>(len);
                     if (since_report < (8 << 20)) return;
                     std::lock_guard<std::mutex> l(mu);
                     meta.progress_bytes += since_report;
                     since_report = 0;
                     auto now = std::chrono::steady_clock::now();
                     if (on_progress && now - last_report >= std::chrono::milliseconds(500)) {
                       last_report = now;
                       on_progress(meta);
                     }
                   });
      auto entries = pw.Finish();
      std::lock_guard<std::mutex> l(mu);
      meta.progress_bytes += since_report;
      n.docs = pw.docs();
      for (auto& e : entries) {
        n.files.push_back(e.name);
        meta.size += e.stored_size;
        meta.size_uncompressed += e.size;
        meta.files += 1;
        list.files.push_back(std::move(e));
      }
    } catch (const Error& e) {
      throw Error(e.kind(), fmt::format("dump {}.{}: {}", n.db, n.coll, e.what()));
    }
  });

  // The consistent point: the replset's majority point once the dump is done. The node must
  // hold the oplog up to it.
  ClusterTime end = MajorityPoint(cluster);
  if (end < meta.first_write_ts) end = meta.first_write_ts;
  for (int i = 0; LastApplied(node) < end; ++i) {
    if (i > 600) {
      Fail(ErrorKind::kTimeout, "the node {} did not apply the oplog up to the consistent point "
           "within 60 s", req.node);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  {
    PartWriter pw(st, req, kOplogFileName, false);
    node.FindRaw("local", "oplog.rs",
                 {{"ts", {{"$gt", TsJson(meta.first_write_ts)}, {"$lte", TsJson(end)}}}}, Json::object(),
                 [&](const uint8_t* data, size_t len) { pw.Add(data, len); });
    for (auto& e : pw.Finish()) {
      meta.size += e.stored_size;
      meta.size_uncompressed += e.size;
      meta.files += 1;
      list.files.push_back(std::move(e));
    }
  }
  meta.last_write_ts = end;
  Json nj = Json::array();
  for (const auto& n : nss) nj.push_back(n);
  st.WriteAll(NamespacesObjectName(req.name, req.replset), nj.dump(1));
  Json lj = list;
  st.WriteAll(FileListObjectName(req.name, req.replset), lj.dump(1));
  meta.status = "done";
  meta.progress_total = meta.progress_bytes;
  meta.conditions.push_back({Now(), "done", ""});
  if (on_progress) on_progress(meta);
  return meta;
}

}  // namespace pbm::backup
