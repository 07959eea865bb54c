#include "server/commands.h"

#include <sys/sysinfo.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <deque>
#include <map>
#include <memory>
#include <set>
#include <thread>

#include "common/error.h"
#include "common/log.h"
#include "query/compare.h"
#include "query/matcher.h"
#include "query/pipeline.h"
#include "query/projection.h"
#include "query/sort.h"
#include "query/update.h"
#include "server/auth.h"
#include "server/backup_cursor.h"
#include "server/cursors.h"
#include "server/node.h"
#include "server/repl.h"

namespace wtm {
namespace {

using Handler = std::function<Doc(Node&, const wire::Request&, const bson_t*)>;

std::function<size_t()> g_connections;
std::function<void()> g_request_shutdown;
thread_local const wire::Connection* tl_conn = nullptr;

// ---- small BSON helpers ----

std::string FirstKey(const bson_t* b) {
  bson_iter_t it;
  if (bson_iter_init(&it, b) && bson_iter_next(&it)) return bson_iter_key(&it);
  return "";
}

bool Find(const bson_t* b, const char* key, bson_iter_t* it) { return bson_iter_init_find(it, b, key); }

std::string GetString(const bson_t* b, const char* key, const std::string& dflt = "") {
  bson_iter_t it;
  if (Find(b, key, &it) && BSON_ITER_HOLDS_UTF8(&it)) return bson_iter_utf8(&it, nullptr);
  return dflt;
}

int64_t GetInt(const bson_t* b, const char* key, int64_t dflt = 0) {
  bson_iter_t it;
  if (Find(b, key, &it) && BSON_ITER_HOLDS_NUMBER(&it)) return bson_iter_as_int64(&it);
  return dflt;
}

bool GetBool(const bson_t* b, const char* key, bool dflt = false) {
  bson_iter_t it;
  if (Find(b, key, &it)) return bson_iter_as_bool(&it);
  return dflt;
}

// A sub-document or array (empty Doc when absent); throws TypeMismatch when of another type.
std::optional<Doc> GetDoc(const bson_t* b, const char* key, bool array_ok = false) {
  bson_iter_t it;
  if (!Find(b, key, &it)) return std::nullopt;
  uint32_t len;
  const uint8_t* data;
  if (BSON_ITER_HOLDS_DOCUMENT(&it)) {
    bson_iter_document(&it, &len, &data);
  } else if (array_ok && BSON_ITER_HOLDS_ARRAY(&it)) {
    bson_iter_array(&it, &len, &data);
  } else if (BSON_ITER_HOLDS_NULL(&it)) {
    return std::nullopt;
  } else {
    throw MongoError(ErrorCode::kTypeMismatch,
                     std::string("BSON field '") + key + "' is the wrong type '" +
                         std::to_string(bson_iter_type(&it)) + "', expected type 'object'");
  }
  return Doc::FromData(data, len);
}

// The collection name of a command ({find: "c"}), validated.
std::string CollArg(const bson_t* cmd) {
  bson_iter_t it;
  if (!bson_iter_init(&it, cmd) || !bson_iter_next(&it)) return "";
  if (!BSON_ITER_HOLDS_UTF8(&it)) {
    throw MongoError(ErrorCode::kInvalidNamespace,
                     std::string("collection name has invalid type ") +
                         (BSON_ITER_HOLDS_NUMBER(&it) ? "double" : "non-string"));
  }
  std::string c = bson_iter_utf8(&it, nullptr);
  if (c.empty()) throw MongoError(ErrorCode::kInvalidNamespace, "Invalid namespace specified");
  return c;
}

std::string Ns(const wire::Request& req, const std::string& coll) {
  if (req.db.empty() || req.db.find_first_of("/\\. \"$") != std::string::npos) {
    throw MongoError(ErrorCode::kInvalidNamespace, "Invalid database name: '" + req.db + "'");
  }
  return req.db + "." + coll;
}

void AppendArray(bson_t* b, const char* key, const std::vector<Doc>& docs) {
  bson_t arr;
  bson_append_array_begin(b, key, -1, &arr);
  char buf[16];
  for (size_t i = 0; i < docs.size(); ++i) {
    const char* k;
    bson_uint32_to_string(static_cast<uint32_t>(i), &k, buf, sizeof buf);
    bson_append_document(&arr, k, -1, docs[i].get());
  }
  bson_append_array_end(b, &arr);
}

Doc Ok(bson_t* b) {
  BSON_APPEND_DOUBLE(b, "ok", 1.0);
  return Doc(b);
}

int64_t NowMillis() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// Reads are allowed on a secondary only with a non-primary read preference.
void CheckCanRead(Node& node, const wire::Request& req) {
  Repl& r = node.repl();
  if (!r.enabled() || r.IsWritablePrimary() || req.db == "local") return;
  bson_iter_t it;
  std::string mode = "primary";
  if (Find(req.body.get(), "$readPreference", &it) && BSON_ITER_HOLDS_DOCUMENT(&it)) {
    bson_iter_t m;
    if (bson_iter_recurse(&it, &m) && bson_iter_find(&m, "mode") && BSON_ITER_HOLDS_UTF8(&m)) {
      mode = bson_iter_utf8(&m, nullptr);
    }
  }
  if (mode == "primary") {
    throw MongoError(ErrorCode::kNotPrimaryNoSecondaryOk, "not primary and secondaryOk=false");
  }
  MemberState s = r.state();
  if (s != MemberState::kSecondary) {
    throw MongoError(13436, "node is not in primary or recovering state");
  }
}

void CheckCanWrite(Node& node, const std::string& db) {
  if (node.read_only()) {
    throw MongoError(ErrorCode::kIllegalOperation,
                     "Operation not permitted in read-only mode (recoverFromOplogAsStandalone)");
  }
  if (db == "local") return;
  if (node.repl().enabled() && !node.repl().IsWritablePrimary()) {
    throw MongoError(ErrorCode::kNotWritablePrimary, "not primary");
  }
}

// Waits for the write concern; a timeout becomes writeConcernError in the reply, as mongod.
void ApplyWriteConcern(Node& node, const bson_t* cmd, uint64_t ts, bson_t* reply) {
  try {
    node.repl().WaitForWriteConcern(ts, cmd);
  } catch (const MongoError& e) {
    bson_t wce;
    BSON_APPEND_DOCUMENT_BEGIN(reply, "writeConcernError", &wce);
    BSON_APPEND_INT32(&wce, "code", e.numeric());
    BSON_APPEND_UTF8(&wce, "codeName", CodeName(e.code()));
    BSON_APPEND_UTF8(&wce, "errmsg", e.what());
    bson_t info;
    BSON_APPEND_DOCUMENT_BEGIN(&wce, "errInfo", &info);
    BSON_APPEND_BOOL(&info, "wtimeout", e.numeric() == 64);
    bson_append_document_end(&wce, &info);
    bson_append_document_end(reply, &wce);
  }
}

// ---- documents of a collection ----

struct Match {
  int64_t rid;
  Doc doc;
};

// Documents matching `filter`, in record order or by `sort`; at most `limit` (0 = all).
std::vector<Match> FindMatches(Node& node, storage::Txn& txn, const Collection& c,
                               const query::Matcher& m, int64_t limit,
                               const query::SortSpec* sort = nullptr) {
  std::vector<Match> out;
  if (auto id = m.EqualityOn("_id")) {
    auto found = FindById(txn, c, *id);
    if (found && m.Matches(found->second.get())) out.push_back({found->first, std::move(found->second)});
    return out;
  }
  RecordCursor rc(txn, c, INT64_MIN);
  int64_t rid;
  bson_t doc;
  bool need_all = sort && !sort->empty();
  while (rc.Next(&rid, &doc)) {
    if (!m.Matches(&doc)) continue;
    out.push_back({rid, Doc::Copy(&doc)});
    if (!need_all && limit > 0 && static_cast<int64_t>(out.size()) >= limit) break;
  }
  if (need_all) {
    std::stable_sort(out.begin(), out.end(), [&](const Match& a, const Match& b) {
      return sort->Compare(a.doc.get(), b.doc.get()) < 0;
    });
    if (limit > 0 && static_cast<int64_t>(out.size()) > limit) out.resize(limit);
  }
  return out;
}

// A document stream read in chunks, each chunk in one short transaction; subclasses refill.
class ChunkedSource {
 public:
  virtual ~ChunkedSource() = default;
  bool operator()(Doc* out) {
    if (buf_.empty()) Refill();
    if (buf_.empty()) return false;
    *out = std::move(buf_.front());
    buf_.pop_front();
    return true;
  }

 protected:
  virtual void Refill() = 0;
  std::deque<Doc> buf_;
};

// Streams a collection scan in chunks, one short transaction per chunk.
class ScanSource : public ChunkedSource {
 public:
  ScanSource(Node& node, std::string ns, std::shared_ptr<query::Matcher> m,
             std::shared_ptr<query::Projection> p, int64_t start_rid, bool reverse, int64_t skip,
             int64_t limit)
      : node_(node), ns_(std::move(ns)), m_(std::move(m)), p_(std::move(p)), next_(start_rid),
        reverse_(reverse), skip_(skip), limit_(limit) {}

 private:
  void Refill() override {
    if (done_ || (limit_ > 0 && returned_ >= limit_)) return;
    auto c = node_.catalog().Get(ns_);
    if (!c) {
      done_ = true;
      return;
    }
    uint64_t fetch_limit = UINT64_MAX;
    if (c->oplog && node_.repl().enabled()) fetch_limit = node_.repl().fetch_limit();
    storage::Txn txn(node_.engine());
    RecordCursor rc(txn, *c, next_, reverse_);
    int64_t rid;
    bson_t doc;
    size_t bytes = 0;
    while (buf_.size() < 1000 && bytes < 8 * 1024 * 1024) {
      if (!rc.Next(&rid, &doc)) break;
      if (c->oplog && static_cast<uint64_t>(rid) > fetch_limit) {
        // Entries not yet visible to readers: a forward scan stops (a tailing cursor resumes
        // there later); a backward scan starts below them.
        if (!reverse_) break;
        next_ = rid - 1;
        continue;
      }
      next_ = reverse_ ? rid - 1 : rid + 1;
      if (m_ && !m_->Matches(&doc)) continue;
      if (skip_ > 0) {
        --skip_;
        continue;
      }
      buf_.push_back(p_ && !p_->empty() ? p_->Apply(&doc) : Doc::Copy(&doc));
      bytes += doc.len;
      if (limit_ > 0 && ++returned_ >= limit_) break;
    }
  }

  Node& node_;
  std::string ns_;
  std::shared_ptr<query::Matcher> m_;
  std::shared_ptr<query::Projection> p_;
  int64_t next_;
  bool reverse_;
  int64_t skip_;
  int64_t limit_;  // 0: no limit
  int64_t returned_ = 0;
  bool done_ = false;
};

// Streams a collection in _id order through the _id index (sorts on _id need no memory), in
// chunks of one short transaction each, resuming after the last index key.
class IdOrderSource : public ChunkedSource {
 public:
  IdOrderSource(Node& node, std::string ns, std::shared_ptr<query::Matcher> m,
                std::shared_ptr<query::Projection> p, bool reverse, int64_t skip, int64_t limit)
      : node_(node), ns_(std::move(ns)), m_(std::move(m)), p_(std::move(p)), reverse_(reverse),
        skip_(skip), limit_(limit) {}

 private:
  void Refill() override {
    if (done_ || (limit_ > 0 && returned_ >= limit_)) return;
    auto c = node_.catalog().Get(ns_);
    const IndexDesc* idx = c ? c->FindIndex("_id_") : nullptr;
    if (!idx) {
      done_ = true;
      return;
    }
    storage::Txn txn(node_.engine());
    UniqueIndexCursor ic(txn, *idx, last_key_, reverse_);
    std::string key;
    int64_t rid;
    size_t bytes = 0;
    while (buf_.size() < 1000 && bytes < 8 * 1024 * 1024) {
      if (!ic.Next(&key, &rid)) {
        done_ = true;
        break;
      }
      last_key_ = key;
      auto d = GetRecord(txn, *c, rid);
      if (!d || (m_ && !m_->Matches(d->get()))) continue;
      if (skip_ > 0) {
        --skip_;
        continue;
      }
      bytes += d->size();
      buf_.push_back(p_ && !p_->empty() ? p_->Apply(d->get()) : std::move(*d));
      if (limit_ > 0 && ++returned_ >= limit_) break;
    }
  }

  Node& node_;
  std::string ns_;
  std::shared_ptr<query::Matcher> m_;
  std::shared_ptr<query::Projection> p_;
  bool reverse_;
  int64_t skip_;
  int64_t limit_;  // 0: no limit
  int64_t returned_ = 0;
  bool done_ = false;
  std::string last_key_;
};

DocSource VectorSource(std::vector<Doc> docs) {
  auto v = std::make_shared<std::deque<Doc>>(std::make_move_iterator(docs.begin()),
                                             std::make_move_iterator(docs.end()));
  return [v](Doc* out) {
    if (v->empty()) return false;
    *out = std::move(v->front());
    v->pop_front();
    return true;
  };
}

Doc CursorReply(const std::string& ns, int64_t id, bson_t* batch, bool first, Node& node) {
  bson_t* r = bson_new();
  bson_t cur;
  BSON_APPEND_DOCUMENT_BEGIN(r, "cursor", &cur);
  BSON_APPEND_ARRAY(&cur, first ? "firstBatch" : "nextBatch", batch);
  BSON_APPEND_INT64(&cur, "id", id);
  BSON_APPEND_UTF8(&cur, "ns", ns.c_str());
  bson_append_document_end(r, &cur);
  if (ns == "local.oplog.rs" && node.repl().enabled()) node.repl().AppendReplData(r);
  return Ok(r);
}

Doc RunCursor(Node& node, const std::string& ns, std::unique_ptr<ClientCursor> cursor,
              int64_t batch_size) {
  bson_t batch = BSON_INITIALIZER;
  cursor->ns = ns;
  int64_t id = node.cursors().FirstBatch(std::move(cursor), batch_size, &batch);
  Doc r = CursorReply(ns, id, &batch, true, node);
  bson_destroy(&batch);
  return r;
}

int64_t BatchSizeArg(const bson_t* cmd, const char* key) {
  bson_iter_t it;
  if (!Find(cmd, key, &it)) return 0;
  if (!BSON_ITER_HOLDS_NUMBER(&it)) {
    throw MongoError(ErrorCode::kTypeMismatch, std::string("BSON field '") + key + "' is the wrong type");
  }
  int64_t v = bson_iter_as_int64(&it);
  if (v < 0) {
    throw MongoError(51024, std::string("BSON field '") + key + "' value must be >= 0, actual value '" +
                                std::to_string(v) + "'");
  }
  return v;
}

// ---- commands ----

Doc CmdPing(Node&, const wire::Request&, const bson_t*) { return Ok(bson_new()); }

Doc CmdHello(Node& node, const wire::Request& req, const bson_t* cmd) {
  bson_t* r = bson_new();
  std::string name = FirstKey(cmd);
  bool hello = name == "hello";
  if (node.repl().enabled()) {
    node.repl().AppendHelloFields(r, hello);
  } else {
    BSON_APPEND_BOOL(r, hello ? "isWritablePrimary" : "ismaster", true);
  }
  BSON_APPEND_INT32(r, "maxBsonObjectSize", wire::kMaxBsonObjectSize);
  BSON_APPEND_INT32(r, "maxMessageSizeBytes", wire::kMaxMessageSizeBytes);
  BSON_APPEND_INT32(r, "maxWriteBatchSize", 100000);
  BSON_APPEND_DATE_TIME(r, "localTime", NowMillis());
  BSON_APPEND_INT32(r, "logicalSessionTimeoutMinutes", 30);
  BSON_APPEND_INT64(r, "connectionId", tl_conn ? tl_conn->id : 0);
  BSON_APPEND_INT32(r, "minWireVersion", 0);
  BSON_APPEND_INT32(r, "maxWireVersion", 17);
  BSON_APPEND_BOOL(r, "readOnly", node.read_only());
  if (tl_conn) {
    try {
      AppendHelloAuthFields(node, *tl_conn, cmd, r);
    } catch (...) {
      bson_destroy(r);
      throw;
    }
  }
  return Ok(r);
}

Doc CmdBuildInfo(Node&, const wire::Request&, const bson_t*) {
  bson_t* r = bson_new();
  BSON_APPEND_UTF8(r, "version", kServerVersion);
  BSON_APPEND_UTF8(r, "gitVersion", "0000000000000000000000000000000000000000");
  BSON_APPEND_UTF8(r, "psmdbVersion", kServerVersion);
  bson_t arr;
  BSON_APPEND_ARRAY_BEGIN(r, "modules", &arr);
  bson_append_array_end(r, &arr);
  BSON_APPEND_UTF8(r, "allocator", "tcmalloc");
  BSON_APPEND_UTF8(r, "javascriptEngine", "mozjs");
  BSON_APPEND_UTF8(r, "sysInfo", "deprecated");
  BSON_APPEND_ARRAY_BEGIN(r, "versionArray", &arr);
  int va[4] = {6, 0, 19, 16};
  for (int i = 0; i < 4; ++i) {
    char k[4];
    snprintf(k, sizeof k, "%d", i);
    BSON_APPEND_INT32(&arr, k, va[i]);
  }
  bson_append_array_end(r, &arr);
  bson_t ssl;
  BSON_APPEND_DOCUMENT_BEGIN(r, "openssl", &ssl);
  BSON_APPEND_UTF8(&ssl, "running", "OpenSSL 3.0");
  bson_append_document_end(r, &ssl);
  BSON_APPEND_INT32(r, "bits", 64);
  BSON_APPEND_BOOL(r, "debug", false);
  BSON_APPEND_INT32(r, "maxBsonObjectSize", wire::kMaxBsonObjectSize);
  BSON_APPEND_ARRAY_BEGIN(r, "storageEngines", &arr);
  BSON_APPEND_UTF8(&arr, "0", "devnull");
  BSON_APPEND_UTF8(&arr, "1", "inMemory");
  BSON_APPEND_UTF8(&arr, "2", "wiredTiger");
  bson_append_array_end(r, &arr);
  return Ok(r);
}

Doc CmdGetCmdLineOpts(Node& node, const wire::Request& req, const bson_t*) {
  if (req.db != "admin") {
    throw MongoError(ErrorCode::kUnauthorized, "getCmdLineOpts may only be run against the admin database.");
  }
  bson_t* r = bson_new();
  bson_t arr;
  BSON_APPEND_ARRAY_BEGIN(r, "argv", &arr);
  char buf[16];
  for (size_t i = 0; i < node.options().argv.size(); ++i) {
    const char* k;
    bson_uint32_to_string(static_cast<uint32_t>(i), &k, buf, sizeof buf);
    BSON_APPEND_UTF8(&arr, k, node.options().argv[i].c_str());
  }
  bson_append_array_end(r, &arr);
  BSON_APPEND_DOCUMENT(r, "parsed", node.options().parsed.get());
  return Ok(r);
}

Doc CmdGetParameter(Node& node, const wire::Request& req, const bson_t* cmd) {
  bson_t* r = bson_new();
  bson_iter_t it;
  bson_iter_init(&it, cmd);
  bool all = false;
  bson_iter_t first;
  if (Find(cmd, "getParameter", &first) && BSON_ITER_HOLDS_UTF8(&first) &&
      std::string(bson_iter_utf8(&first, nullptr)) == "*") {
    all = true;
  }
  while (bson_iter_next(&it)) {
    std::string k = bson_iter_key(&it);
    if (k == "getParameter" || k[0] == '$' || k == "lsid") continue;
    if (k == "featureCompatibilityVersion") {
      bson_t f;
      BSON_APPEND_DOCUMENT_BEGIN(r, "featureCompatibilityVersion", &f);
      BSON_APPEND_UTF8(&f, "version", "6.0");
      bson_append_document_end(r, &f);
    } else if (node.options().set_parameters.count(k)) {
      // Typed like mongod's reply (cursorTimeoutMillis: NumberLong, ttlMonitorEnabled: bool),
      // not the string the command line gave; the values were validated at startup.
      if (ParameterIsBool(k)) {
        BSON_APPEND_BOOL(r, k.c_str(), ParameterBool(node.options(), k, false));
      } else {
        BSON_APPEND_INT64(r, k.c_str(), ParameterInt(node.options(), k, 0));
      }
    } else if (!all) {
      bson_destroy(r);
      throw MongoError(ErrorCode::kInvalidOptions, "no option found to get");
    }
  }
  if (all) {
    bson_t f;
    BSON_APPEND_DOCUMENT_BEGIN(r, "featureCompatibilityVersion", &f);
    BSON_APPEND_UTF8(&f, "version", "6.0");
    bson_append_document_end(r, &f);
  }
  return Ok(r);
}

Doc CmdServerStatus(Node& node, const wire::Request& req, const bson_t*) {
  bson_t* r = bson_new();
  char host[256] = {0};
  gethostname(host, sizeof host - 1);
  BSON_APPEND_UTF8(r, "host", (std::string(host) + ":" + std::to_string(node.options().port)).c_str());
  BSON_APPEND_UTF8(r, "version", kServerVersion);
  BSON_APPEND_UTF8(r, "process", "mongod");
  BSON_APPEND_INT64(r, "pid", getpid());
  int64_t up = time(nullptr) - node.start_time();
  BSON_APPEND_DOUBLE(r, "uptime", static_cast<double>(up));
  BSON_APPEND_INT64(r, "uptimeMillis", up * 1000);
  BSON_APPEND_INT64(r, "uptimeEstimate", up);
  BSON_APPEND_DATE_TIME(r, "localTime", NowMillis());
  bson_t d;
  BSON_APPEND_DOCUMENT_BEGIN(r, "connections", &d);
  BSON_APPEND_INT32(&d, "current", g_connections ? static_cast<int32_t>(g_connections()) : 0);
  BSON_APPEND_INT32(&d, "available", 838860);
  bson_append_document_end(r, &d);
  BSON_APPEND_DOCUMENT_BEGIN(r, "storageEngine", &d);
  BSON_APPEND_UTF8(&d, "name", "wiredTiger");
  BSON_APPEND_BOOL(&d, "supportsCommittedReads", true);
  BSON_APPEND_BOOL(&d, "oldestRequiredTimestampForCrashRecovery", false);
  BSON_APPEND_BOOL(&d, "supportsPendingDrops", true);
  BSON_APPEND_BOOL(&d, "dropPendingIdents", false);
  BSON_APPEND_BOOL(&d, "supportsSnapshotReadConcern", true);
  BSON_APPEND_BOOL(&d, "readOnly", node.read_only());
  BSON_APPEND_BOOL(&d, "persistent", true);
  BSON_APPEND_BOOL(&d, "backupCursorOpen", node.backup().is_open());
  bson_append_document_end(r, &d);
  if (node.repl().enabled()) {
    BSON_APPEND_DOCUMENT_BEGIN(r, "repl", &d);
    node.repl().AppendHelloFields(&d, true);
    bson_append_document_end(r, &d);
  }
  BSON_APPEND_DOCUMENT_BEGIN(r, "encryptionAtRest", &d);
  BSON_APPEND_BOOL(&d, "encryptionEnabled", node.options().enable_encryption);
  if (node.options().enable_encryption) {
    BSON_APPEND_UTF8(&d, "encryptionCipherMode", node.options().encryption_cipher_mode.c_str());
    BSON_APPEND_UTF8(&d, "encryptionKeyFile", node.options().encryption_key_file.c_str());
  }
  bson_append_document_end(r, &d);
  BSON_APPEND_DOCUMENT_BEGIN(r, "metrics", &d);
  bson_t cur;
  BSON_APPEND_DOCUMENT_BEGIN(&d, "cursor", &cur);
  bson_t open;
  BSON_APPEND_DOCUMENT_BEGIN(&cur, "open", &open);
  BSON_APPEND_INT64(&open, "total", static_cast<int64_t>(node.cursors().open_count()));
  bson_append_document_end(&cur, &open);
  bson_append_document_end(&d, &cur);
  bson_append_document_end(r, &d);
  return Ok(r);
}

Doc CmdHostInfo(Node&, const wire::Request&, const bson_t*) {
  bson_t* r = bson_new();
  char host[256] = {0};
  gethostname(host, sizeof host - 1);
  struct sysinfo si;
  sysinfo(&si);
  struct utsname un;
  uname(&un);
  bson_t d;
  BSON_APPEND_DOCUMENT_BEGIN(r, "system", &d);
  BSON_APPEND_DATE_TIME(&d, "currentTime", NowMillis());
  BSON_APPEND_UTF8(&d, "hostname", host);
  BSON_APPEND_INT32(&d, "cpuAddrSize", 64);
  BSON_APPEND_INT64(&d, "memSizeMB", static_cast<int64_t>(si.totalram / 1024 / 1024 * si.mem_unit));
  BSON_APPEND_INT64(&d, "memLimitMB", static_cast<int64_t>(si.totalram / 1024 / 1024 * si.mem_unit));
  BSON_APPEND_INT32(&d, "numCores", static_cast<int32_t>(std::thread::hardware_concurrency()));
  BSON_APPEND_UTF8(&d, "cpuArch", un.machine);
  BSON_APPEND_BOOL(&d, "numaEnabled", false);
  bson_append_document_end(r, &d);
  BSON_APPEND_DOCUMENT_BEGIN(r, "os", &d);
  BSON_APPEND_UTF8(&d, "type", "Linux");
  BSON_APPEND_UTF8(&d, "name", un.sysname);
  BSON_APPEND_UTF8(&d, "version", un.release);
  bson_append_document_end(r, &d);
  BSON_APPEND_DOCUMENT_BEGIN(r, "extra", &d);
  BSON_APPEND_UTF8(&d, "versionString", un.version);
  BSON_APPEND_INT64(&d, "pageSize", sysconf(_SC_PAGESIZE));
  bson_append_document_end(r, &d);
  return Ok(r);
}

Doc CmdFind(Node& node, const wire::Request& req, const bson_t* cmd) {
  std::string ns = Ns(req, CollArg(cmd));
  CheckCanRead(node, req);
  auto filter = GetDoc(cmd, "filter");
  auto sort_doc = GetDoc(cmd, "sort");
  auto proj_doc = GetDoc(cmd, "projection");
  int64_t skip = GetInt(cmd, "skip", 0);
  int64_t limit = GetInt(cmd, "limit", 0);
  if (skip < 0) throw MongoError(51024, "BSON field 'skip' value must be >= 0, actual value '" + std::to_string(skip) + "'");
  if (limit < 0) throw MongoError(51024, "BSON field 'limit' value must be >= 0, actual value '" + std::to_string(limit) + "'");
  int64_t batch_size = BatchSizeArg(cmd, "batchSize");
  bool single_batch = GetBool(cmd, "singleBatch");
  bool tailable = GetBool(cmd, "tailable");
  bool await_data = GetBool(cmd, "awaitData");
  auto m = std::make_shared<query::Matcher>(filter ? filter->get() : nullptr);
  auto p = std::make_shared<query::Projection>(proj_doc ? proj_doc->get() : nullptr);
  auto c = node.catalog().Get(ns);
  if (tailable && c && !c->capped) {
    throw MongoError(ErrorCode::kBadValue, "error processing query: ns=" + ns +
                                               " tailable cursor requested on non capped collection");
  }
  auto cursor = std::make_unique<ClientCursor>();
  cursor->tailable = tailable;
  cursor->await_data = await_data;
  bool natural_reverse = false;
  bool natural = false;
  if (sort_doc) {
    bson_iter_t it;
    if (Find(sort_doc->get(), "$natural", &it)) {
      natural = true;
      natural_reverse = bson_iter_as_int64(&it) < 0;
    }
  }
  int id_sort = 0;  // a sort on _id alone: served by the _id index, as mongod does
  if (sort_doc && bson_count_keys(sort_doc->get()) == 1) {
    bson_iter_t it;
    if (Find(sort_doc->get(), "_id", &it) && BSON_ITER_HOLDS_NUMBER(&it)) {
      id_sort = bson_iter_as_int64(&it) < 0 ? -1 : 1;
    }
  }
  if (!c) {
    cursor->source = VectorSource({});
  } else if (id_sort != 0 && !c->oplog && !m->EqualityOn("_id")) {
    auto src = std::make_shared<IdOrderSource>(node, ns, m, p, id_sort < 0, skip, limit);
    cursor->source = [src](Doc* out) { return (*src)(out); };
  } else if (sort_doc && !sort_doc->empty() && !natural) {
    query::SortSpec sort(sort_doc->get());
    storage::Txn txn(node.engine());
    auto matches = FindMatches(node, txn, *c, *m, 0, &sort);
    std::vector<Doc> docs;
    size_t bytes = 0;
    for (size_t i = skip; i < matches.size(); ++i) {
      if (limit > 0 && static_cast<int64_t>(docs.size()) >= limit) break;
      bytes += matches[i].doc.size();
      if (bytes > 100 * 1024 * 1024) {
        throw MongoError(ErrorCode::kQueryExceededMemoryLimitNoDiskUseAllowed,
                         "Executor error during find command :: caused by :: Sort exceeded memory "
                         "limit of 104857600 bytes, but did not opt in to external sorting.");
      }
      docs.push_back(p->empty() ? std::move(matches[i].doc) : p->Apply(matches[i].doc.get()));
    }
    cursor->source = VectorSource(std::move(docs));
  } else if (auto id = m->EqualityOn("_id"); id && !c->oplog) {
    storage::Txn txn(node.engine());
    std::vector<Doc> docs;
    auto found = FindById(txn, *c, *id);
    if (found && m->Matches(found->second.get()) && skip == 0) {
      docs.push_back(p->empty() ? std::move(found->second) : p->Apply(found->second.get()));
    }
    cursor->source = VectorSource(std::move(docs));
  } else {
    int64_t start = natural_reverse ? INT64_MAX : INT64_MIN;
    if (c->oplog && !natural_reverse) {
      auto b = m->BoundsOn("ts");
      if (b.lower && b.lower->value_type == BSON_TYPE_TIMESTAMP) {
        uint64_t ts = MakeTs(b.lower->value.v_timestamp.timestamp, b.lower->value.v_timestamp.increment);
        start = static_cast<int64_t>(b.lower_inclusive ? ts : ts + 1);
      }
    }
    auto src = std::make_shared<ScanSource>(node, ns, m, p, start, natural_reverse, skip, limit);
    cursor->source = [src](Doc* out) { return (*src)(out); };
  }
  if (single_batch || (limit > 0 && (batch_size == 0 || batch_size >= limit))) {
    // One batch answers it all.
    bson_t batch = BSON_INITIALIZER;
    cursor->ns = ns;
    int64_t n = limit > 0 ? limit : (batch_size > 0 ? batch_size : 101);
    if (single_batch && batch_size == 0 && limit == 0) n = INT64_MAX;
    int64_t id = node.cursors().FirstBatch(std::move(cursor), n, &batch);
    if (id) node.cursors().Kill(id);
    Doc r = CursorReply(ns, 0, &batch, true, node);
    bson_destroy(&batch);
    return r;
  }
  return RunCursor(node, ns, std::move(cursor), batch_size);
}

Doc CmdGetMore(Node& node, const wire::Request& req, const bson_t* cmd) {
  bson_iter_t it;
  if (!Find(cmd, "getMore", &it) || !BSON_ITER_HOLDS_INT64(&it)) {
    throw MongoError(ErrorCode::kTypeMismatch, "BSON field 'getMore.getMore' is the wrong type, expected type 'long'");
  }
  int64_t id = bson_iter_int64(&it);
  std::string coll = GetString(cmd, "collection");
  if (coll.empty()) throw MongoError(ErrorCode::kInvalidNamespace, "BSON field 'getMore.collection' is missing but a required field");
  std::string ns = Ns(req, coll);
  int64_t batch_size = BatchSizeArg(cmd, "batchSize");
  int64_t max_time = GetInt(cmd, "maxTimeMS", 1000);
  bson_t batch = BSON_INITIALIZER;
  int64_t next = node.cursors().NextBatch(id, ns, batch_size, max_time, &batch);
  Doc r = CursorReply(ns, next, &batch, false, node);
  bson_destroy(&batch);
  return r;
}

Doc CmdKillCursors(Node& node, const wire::Request& req, const bson_t* cmd) {
  CollArg(cmd);
  bson_iter_t it, arr;
  std::vector<int64_t> killed, not_found;
  if (!Find(cmd, "cursors", &it) || !BSON_ITER_HOLDS_ARRAY(&it)) {
    throw MongoError(ErrorCode::kFailedToParse, "BSON field 'killCursors.cursors' is missing but a required field");
  }
  bson_iter_recurse(&it, &arr);
  while (bson_iter_next(&arr)) {
    int64_t id = bson_iter_as_int64(&arr);
    (node.cursors().Kill(id) ? killed : not_found).push_back(id);
  }
  bson_t* r = bson_new();
  auto put = [&](const char* key, const std::vector<int64_t>& ids) {
    bson_t a;
    BSON_APPEND_ARRAY_BEGIN(r, key, &a);
    for (size_t i = 0; i < ids.size(); ++i) {
      char k[16];
      snprintf(k, sizeof k, "%zu", i);
      BSON_APPEND_INT64(&a, k, ids[i]);
    }
    bson_append_array_end(r, &a);
  };
  put("cursorsKilled", killed);
  put("cursorsNotFound", not_found);
  put("cursorsAlive", {});
  put("cursorsUnknown", {});
  return Ok(r);
}

// ---- writes ----

void AddWriteError(bson_t* errs, int index, const MongoError& e, int* count) {
  char k[16];
  snprintf(k, sizeof k, "%d", (*count)++);
  bson_t d;
  bson_append_document_begin(errs, k, -1, &d);
  BSON_APPEND_INT32(&d, "index", index);
  BSON_APPEND_INT32(&d, "code", e.numeric());
  BSON_APPEND_UTF8(&d, "errmsg", e.what());
  bson_append_document_end(errs, &d);
}

// A copy of `doc` with an _id first (an ObjectId when missing), validated for insertion.
Doc PrepareInsert(const bson_t* doc) {
  if (doc->len > static_cast<uint32_t>(wire::kMaxBsonObjectSize)) {
    throw MongoError(ErrorCode::kBadValue, "object to insert too large. size in bytes: " +
                                               std::to_string(doc->len) + ", max size: 16777216");
  }
  bson_iter_t it;
  bson_t* out = bson_new();
  if (bson_iter_init_find(&it, doc, "_id")) {
    if (BSON_ITER_HOLDS_ARRAY(&it)) {
      bson_destroy(out);
      throw MongoError(ErrorCode::kInvalidIdField, "The '_id' value cannot be of type array");
    }
    bson_append_value(out, "_id", 3, bson_iter_value(&it));
  } else {
    bson_oid_t oid;
    bson_oid_init(&oid, nullptr);
    BSON_APPEND_OID(out, "_id", &oid);
  }
  bson_iter_init(&it, doc);
  while (bson_iter_next(&it)) {
    const char* k = bson_iter_key(&it);
    if (strcmp(k, "_id") == 0) continue;
    bson_append_value(out, k, -1, bson_iter_value(&it));
  }
  return Doc(out);
}

Doc CmdInsert(Node& node, const wire::Request& req, const bson_t* cmd) {
  std::string ns = Ns(req, CollArg(cmd));
  CheckCanWrite(node, req.db);
  bool ordered = GetBool(cmd, "ordered", true);
  std::vector<Doc> docs;
  bson_iter_t it, arr;
  if (!Find(cmd, "documents", &it) || !BSON_ITER_HOLDS_ARRAY(&it)) {
    throw MongoError(ErrorCode::kFailedToParse, "BSON field 'insert.documents' is missing but a required field");
  }
  bson_iter_recurse(&it, &arr);
  while (bson_iter_next(&arr)) {
    if (!BSON_ITER_HOLDS_DOCUMENT(&arr)) {
      throw MongoError(ErrorCode::kTypeMismatch, "BSON field 'insert.documents.0' is the wrong type, expected type 'object'");
    }
    uint32_t len;
    const uint8_t* data;
    bson_iter_document(&arr, &len, &data);
    bson_t d;
    bson_init_static(&d, data, len);
    docs.push_back(Doc::Copy(&d));
  }
  if (docs.size() > 100000) {
    throw MongoError(ErrorCode::kInvalidLength, "Write batch sizes must be between 1 and 100000. Got " +
                                                    std::to_string(docs.size()) + " operations.");
  }
  int n = 0, nerr = 0;
  uint64_t last_ts = 0;
  bson_t errs = BSON_INITIALIZER;
  std::vector<Doc> prepared;
  std::vector<std::optional<MongoError>> prep_err(docs.size());
  for (size_t i = 0; i < docs.size(); ++i) {
    try {
      prepared.push_back(PrepareInsert(docs[i].get()));
    } catch (const MongoError& e) {
      prepared.emplace_back();
      prep_err[i] = e;
    }
  }
  bool all_ok = std::none_of(prep_err.begin(), prep_err.end(), [](auto& e) { return e.has_value(); });
  bool done = false;
  if (all_ok) {
    // Fast path: the whole batch in one transaction; on any error redo it one by one.
    try {
      WriteUnit wu(node);
      auto c = wu.GetOrCreate(ns);
      for (auto& d : prepared) wu.Insert(*c, d.get());
      wu.Commit();
      last_ts = wu.last_ts();
      n = static_cast<int>(prepared.size());
      done = true;
    } catch (const MongoError& e) {
      if (e.code() == ErrorCode::kNotWritablePrimary || e.code() == ErrorCode::kInvalidNamespace ||
          e.code() == ErrorCode::kIllegalOperation) {
        throw;
      }
    }
  }
  if (!done) {
    for (size_t i = 0; i < prepared.size(); ++i) {
      try {
        if (prep_err[i]) throw *prep_err[i];
        WriteUnit wu(node);
        auto c = wu.GetOrCreate(ns);
        wu.Insert(*c, prepared[i].get());
        wu.Commit();
        if (wu.last_ts()) last_ts = wu.last_ts();
        ++n;
      } catch (const MongoError& e) {
        if (e.code() == ErrorCode::kNotWritablePrimary) throw;
        AddWriteError(&errs, static_cast<int>(i), e, &nerr);
        if (ordered) break;
      }
    }
  }
  bson_t* r = bson_new();
  BSON_APPEND_INT32(r, "n", n);
  if (nerr) BSON_APPEND_ARRAY(r, "writeErrors", &errs);
  bson_destroy(&errs);
  ApplyWriteConcern(node, cmd, last_ts, r);
  return Ok(r);
}

struct UpdateResult {
  int64_t n = 0;
  int64_t modified = 0;
  std::optional<query::OwnedValue> upserted_id;
  std::optional<Doc> before;
  std::optional<Doc> after;
};

// One update statement in its own write unit.
UpdateResult UpdateOne(Node& node, const std::string& ns, const bson_t* q, const bson_t* u,
                       bool upsert, bool multi, const bson_t* sort, uint64_t* last_ts) {
  query::Update update(u);
  if (multi && update.is_replacement()) {
    throw MongoError(ErrorCode::kFailedToParse, "multi update is not supported for replacement-style update");
  }
  query::Matcher m(q);
  UpdateResult res;
  WriteUnit wu(node);
  auto c = node.catalog().Get(ns);
  std::vector<Match> matches;
  if (c) {
    std::optional<query::SortSpec> ss;
    if (sort) ss.emplace(sort);
    matches = FindMatches(node, wu.txn(), *c, m, multi ? 0 : 1, ss ? &*ss : nullptr);
  }
  if (matches.empty()) {
    if (!upsert) return res;
    Doc doc = PrepareInsert(update.ApplyUpsert(q).get());
    c = wu.GetOrCreate(ns);
    wu.Insert(*c, doc.get());
    bson_iter_t it;
    bson_iter_init_find(&it, doc.get(), "_id");
    res.upserted_id = query::OwnedValue(*bson_iter_value(&it));
    res.after = std::move(doc);
    wu.Commit();
    *last_ts = std::max(*last_ts, wu.last_ts());
    return res;
  }
  for (auto& mt : matches) {
    bool changed = false;
    Doc updated = update.Apply(mt.doc.get(), &changed);
    ++res.n;
    if (updated.size() > static_cast<size_t>(wire::kMaxBsonObjectSize)) {
      throw MongoError(17419, "Resulting document after update is larger than 16777216");
    }
    if (changed) {
      wu.Update(*c, mt.rid, mt.doc.get(), updated.get(), update.is_replacement());
      ++res.modified;
    }
    if (!multi) {
      res.before = std::move(mt.doc);
      res.after = std::move(updated);
    }
  }
  wu.Commit();
  *last_ts = std::max(*last_ts, wu.last_ts());
  return res;
}

Doc CmdUpdate(Node& node, const wire::Request& req, const bson_t* cmd) {
  std::string ns = Ns(req, CollArg(cmd));
  CheckCanWrite(node, req.db);
  bool ordered = GetBool(cmd, "ordered", true);
  bson_iter_t it, arr;
  if (!Find(cmd, "updates", &it) || !BSON_ITER_HOLDS_ARRAY(&it)) {
    throw MongoError(ErrorCode::kFailedToParse, "BSON field 'update.updates' is missing but a required field");
  }
  bson_iter_recurse(&it, &arr);
  int64_t n = 0, modified = 0;
  int index = 0, nerr = 0;
  uint64_t last_ts = 0;
  bson_t errs = BSON_INITIALIZER, upserted = BSON_INITIALIZER;
  int nup = 0;
  while (bson_iter_next(&arr)) {
    try {
      uint32_t len;
      const uint8_t* data;
      bson_iter_document(&arr, &len, &data);
      bson_t stmt;
      bson_init_static(&stmt, data, len);
      auto q = GetDoc(&stmt, "q");
      bson_iter_t ui;
      if (Find(&stmt, "u", &ui) && BSON_ITER_HOLDS_ARRAY(&ui)) {
        throw MongoError(ErrorCode::kFailedToParse, "pipeline-style updates are not supported by this server");
      }
      auto u = GetDoc(&stmt, "u");
      if (!q || !u) throw MongoError(ErrorCode::kFailedToParse, "BSON field 'update.updates.q' is missing but a required field");
      auto res = UpdateOne(node, ns, q->get(), u->get(), GetBool(&stmt, "upsert"), GetBool(&stmt, "multi"),
                           nullptr, &last_ts);
      if (res.upserted_id) {
        char k[16];
        snprintf(k, sizeof k, "%d", nup++);
        bson_t d;
        bson_append_document_begin(&upserted, k, -1, &d);
        BSON_APPEND_INT32(&d, "index", index);
        bson_append_value(&d, "_id", 3, &res.upserted_id->get());
        bson_append_document_end(&upserted, &d);
        n += 1;
      } else {
        n += res.n;
        modified += res.modified;
      }
    } catch (const MongoError& e) {
      if (e.code() == ErrorCode::kNotWritablePrimary) throw;
      AddWriteError(&errs, index, e, &nerr);
      if (ordered) break;
    }
    ++index;
  }
  bson_t* r = bson_new();
  BSON_APPEND_INT32(r, "n", static_cast<int32_t>(n));
  if (nup) BSON_APPEND_ARRAY(r, "upserted", &upserted);
  BSON_APPEND_INT32(r, "nModified", static_cast<int32_t>(modified));
  if (nerr) BSON_APPEND_ARRAY(r, "writeErrors", &errs);
  bson_destroy(&errs);
  bson_destroy(&upserted);
  ApplyWriteConcern(node, cmd, last_ts, r);
  return Ok(r);
}

Doc CmdDelete(Node& node, const wire::Request& req, const bson_t* cmd) {
  std::string ns = Ns(req, CollArg(cmd));
  CheckCanWrite(node, req.db);
  bool ordered = GetBool(cmd, "ordered", true);
  bson_iter_t it, arr;
  if (!Find(cmd, "deletes", &it) || !BSON_ITER_HOLDS_ARRAY(&it)) {
    throw MongoError(ErrorCode::kFailedToParse, "BSON field 'delete.deletes' is missing but a required field");
  }
  bson_iter_recurse(&it, &arr);
  int64_t n = 0;
  int index = 0, nerr = 0;
  uint64_t last_ts = 0;
  bson_t errs = BSON_INITIALIZER;
  while (bson_iter_next(&arr)) {
    try {
      uint32_t len;
      const uint8_t* data;
      bson_iter_document(&arr, &len, &data);
      bson_t stmt;
      bson_init_static(&stmt, data, len);
      auto q = GetDoc(&stmt, "q");
      if (!q) throw MongoError(ErrorCode::kFailedToParse, "BSON field 'delete.deletes.q' is missing but a required field");
      int64_t limit = GetInt(&stmt, "limit", 0);
      if (limit != 0 && limit != 1) throw MongoError(ErrorCode::kFailedToParse, "The limit field in delete objects must be 0 or 1. Got " + std::to_string(limit));
      query::Matcher m(q->get());
      WriteUnit wu(node);
      auto c = node.catalog().Get(ns);
      if (c) {
        auto matches = FindMatches(node, wu.txn(), *c, m, limit);
        for (auto& mt : matches) {
          wu.Delete(*c, mt.rid, mt.doc.get());
          ++n;
        }
      }
      wu.Commit();
      last_ts = std::max(last_ts, wu.last_ts());
    } catch (const MongoError& e) {
      if (e.code() == ErrorCode::kNotWritablePrimary) throw;
      AddWriteError(&errs, index, e, &nerr);
      if (ordered) break;
    }
    ++index;
  }
  bson_t* r = bson_new();
  BSON_APPEND_INT32(r, "n", static_cast<int32_t>(n));
  if (nerr) BSON_APPEND_ARRAY(r, "writeErrors", &errs);
  bson_destroy(&errs);
  ApplyWriteConcern(node, cmd, last_ts, r);
  return Ok(r);
}

Doc CmdFindAndModify(Node& node, const wire::Request& req, const bson_t* cmd) {
  std::string ns = Ns(req, CollArg(cmd));
  CheckCanWrite(node, req.db);
  auto q = GetDoc(cmd, "query");
  auto sort = GetDoc(cmd, "sort");
  auto fields = GetDoc(cmd, "fields");
  bool remove = GetBool(cmd, "remove");
  bool return_new = GetBool(cmd, "new");
  bool upsert = GetBool(cmd, "upsert");
  auto u = GetDoc(cmd, "update");
  if (remove && u) throw MongoError(ErrorCode::kFailedToParse, "Cannot specify both an update and remove=true");
  if (!remove && !u) throw MongoError(ErrorCode::kFailedToParse, "Either an update or remove=true must be specified");
  if (remove && (upsert || return_new)) throw MongoError(ErrorCode::kFailedToParse, "Cannot specify both upsert=true and remove=true");
  Doc empty;
  const bson_t* qb = q ? q->get() : empty.get();
  query::Projection proj(fields ? fields->get() : nullptr);
  uint64_t last_ts = 0;
  bson_t* r = bson_new();
  bson_t leo;
  if (remove) {
    query::Matcher m(qb);
    WriteUnit wu(node);
    auto c = node.catalog().Get(ns);
    std::optional<Doc> removed;
    if (c) {
      std::optional<query::SortSpec> ss;
      if (sort) ss.emplace(sort->get());
      auto matches = FindMatches(node, wu.txn(), *c, m, 1, ss ? &*ss : nullptr);
      if (!matches.empty()) {
        wu.Delete(*c, matches[0].rid, matches[0].doc.get());
        removed = std::move(matches[0].doc);
      }
    }
    wu.Commit();
    last_ts = wu.last_ts();
    BSON_APPEND_DOCUMENT_BEGIN(r, "lastErrorObject", &leo);
    BSON_APPEND_INT32(&leo, "n", removed ? 1 : 0);
    bson_append_document_end(r, &leo);
    if (removed) {
      BSON_APPEND_DOCUMENT(r, "value", proj.Apply(removed->get()).get());
    } else {
      BSON_APPEND_NULL(r, "value");
    }
  } else {
    auto res = UpdateOne(node, ns, qb, u->get(), upsert, false, sort ? sort->get() : nullptr, &last_ts);
    BSON_APPEND_DOCUMENT_BEGIN(r, "lastErrorObject", &leo);
    BSON_APPEND_INT32(&leo, "n", res.upserted_id ? 1 : static_cast<int32_t>(res.n));
    BSON_APPEND_BOOL(&leo, "updatedExisting", !res.upserted_id && res.n > 0);
    if (res.upserted_id) bson_append_value(&leo, "upserted", -1, &res.upserted_id->get());
    bson_append_document_end(r, &leo);
    std::optional<Doc>& v = return_new ? res.after : res.before;
    if (v) {
      BSON_APPEND_DOCUMENT(r, "value", proj.Apply(v->get()).get());
    } else {
      BSON_APPEND_NULL(r, "value");
    }
  }
  ApplyWriteConcern(node, cmd, last_ts, r);
  return Ok(r);
}

Doc CmdCount(Node& node, const wire::Request& req, const bson_t* cmd) {
  std::string ns = Ns(req, CollArg(cmd));
  CheckCanRead(node, req);
  auto q = GetDoc(cmd, "query");
  int64_t skip = GetInt(cmd, "skip", 0);
  int64_t limit = std::llabs(GetInt(cmd, "limit", 0));
  auto c = node.catalog().Get(ns);
  int64_t n = 0;
  if (c) {
    if (!q || q->empty()) {
      n = c->num_records->load();
    } else {
      query::Matcher m(q->get());
      storage::Txn txn(node.engine());
      n = static_cast<int64_t>(FindMatches(node, txn, *c, m, 0).size());
    }
  }
  n = std::max<int64_t>(0, n - skip);
  if (limit > 0) n = std::min(n, limit);
  bson_t* r = bson_new();
  BSON_APPEND_INT32(r, "n", static_cast<int32_t>(n));
  return Ok(r);
}

Doc CmdDistinct(Node& node, const wire::Request& req, const bson_t* cmd) {
  std::string ns = Ns(req, CollArg(cmd));
  CheckCanRead(node, req);
  std::string key = GetString(cmd, "key");
  if (key.empty()) throw MongoError(ErrorCode::kFailedToParse, "BSON field 'distinct.key' is missing but a required field");
  auto q = GetDoc(cmd, "query");
  std::vector<query::OwnedValue> values;
  if (auto c = node.catalog().Get(ns)) {
    query::Matcher m(q ? q->get() : nullptr);
    storage::Txn txn(node.engine());
    for (auto& mt : FindMatches(node, txn, *c, m, 0)) {
      for (const auto& v : query::GetPathValues(mt.doc.get(), key)) {
        if (v.value_type == BSON_TYPE_ARRAY) {
          bson_t arr = query::ViewDoc(v);
          bson_iter_t ai;
          bson_iter_init(&ai, &arr);
          while (bson_iter_next(&ai)) values.emplace_back(*bson_iter_value(&ai));
        } else {
          values.emplace_back(v);
        }
      }
    }
  }
  std::sort(values.begin(), values.end(), [](const query::OwnedValue& a, const query::OwnedValue& b) {
    return query::CompareValues(a.get(), b.get()) < 0;
  });
  values.erase(std::unique(values.begin(), values.end(),
                           [](const query::OwnedValue& a, const query::OwnedValue& b) {
                             return query::CompareValues(a.get(), b.get()) == 0;
                           }),
               values.end());
  bson_t* r = bson_new();
  bson_t arr;
  BSON_APPEND_ARRAY_BEGIN(r, "values", &arr);
  for (size_t i = 0; i < values.size(); ++i) {
    char k[16];
    snprintf(k, sizeof k, "%zu", i);
    bson_append_value(&arr, k, -1, &values[i].get());
  }
  bson_append_array_end(r, &arr);
  return Ok(r);
}

Doc CmdAggregate(Node& node, const wire::Request& req, const bson_t* cmd) {
  bson_iter_t it;
  Find(cmd, "aggregate", &it);
  bool collectionless = BSON_ITER_HOLDS_NUMBER(&it) && bson_iter_as_int64(&it) == 1;
  std::string coll = collectionless ? "$cmd.aggregate" : CollArg(cmd);
  std::string ns = Ns(req, coll);
  auto pipeline = GetDoc(cmd, "pipeline", true);
  if (!pipeline) throw MongoError(ErrorCode::kFailedToParse, "required parameter \"pipeline\" is missing");
  auto cursor_opt = GetDoc(cmd, "cursor");
  if (!cursor_opt && !GetBool(cmd, "explain")) {
    throw MongoError(ErrorCode::kFailedToParse, "The 'cursor' option is required, except for aggregate with the explain argument");
  }
  int64_t batch_size = cursor_opt ? BatchSizeArg(cursor_opt->get(), "batchSize") : 0;
  std::string first_stage;
  Doc stage_spec;
  bson_iter_t p;
  int nstages = 0;
  if (bson_iter_init(&p, pipeline->get())) {
    while (bson_iter_next(&p)) {
      if (nstages++ == 0 && BSON_ITER_HOLDS_DOCUMENT(&p)) {
        bson_iter_t s;
        bson_iter_recurse(&p, &s);
        if (bson_iter_next(&s)) {
          first_stage = bson_iter_key(&s);
          if (BSON_ITER_HOLDS_DOCUMENT(&s)) {
            uint32_t len;
            const uint8_t* data;
            bson_iter_document(&s, &len, &data);
            stage_spec = Doc::FromData(data, len);
          }
        }
      }
    }
  }
  if (first_stage == "$backupCursor" || first_stage == "$backupCursorExtend") {
    if (req.db != "admin" || !collectionless) {
      throw MongoError(ErrorCode::kInvalidNamespace, first_stage + " must be run against the 'admin' database with {aggregate: 1}");
    }
    if (nstages != 1) throw MongoError(40602, first_stage + " is only valid as the first and only stage");
    auto cursor = std::make_unique<ClientCursor>();
    if (first_stage == "$backupCursor") {
      auto docs = node.backup().Open();
      std::string id;
      bson_iter_t m;
      if (bson_iter_init(&m, docs[0].get()) && bson_iter_find_descendant(&m, "metadata.backupId", &m)) {
        bson_subtype_t st;
        uint32_t len;
        const uint8_t* data;
        bson_iter_binary(&m, &st, &len, &data);
        id.assign(reinterpret_cast<const char*>(data), len);
      }
      cursor->source = VectorSource(std::move(docs));
      // Stays open (pinning the checkpoint) until killCursors or the cursor timeout.
      cursor->tailable = true;
      BackupCursors* bc = &node.backup();
      cursor->on_close = [bc, id] { bc->Close(id); };
    } else {
      cursor->source = VectorSource(node.backup().Extend(stage_spec.get()));
    }
    return RunCursor(node, ns, std::move(cursor), batch_size);
  }
  CheckCanRead(node, req);
  query::Pipeline pl(pipeline->get());
  std::vector<Doc> results;
  if (!collectionless) {
    auto c = node.catalog().Get(ns);
    if (c) {
      ScanSource src(node, ns, std::make_shared<query::Matcher>(pl.leading_match()), nullptr,
                     INT64_MIN, false, 0, 0);
      results = pl.Run([&](Doc* out) { return src(out); });
    } else {
      results = pl.Run([](Doc*) { return false; });
    }
  } else {
    throw MongoError(ErrorCode::kInvalidNamespace, "{aggregate: 1} is not supported for this pipeline");
  }
  auto cursor = std::make_unique<ClientCursor>();
  cursor->source = VectorSource(std::move(results));
  return RunCursor(node, ns, std::move(cursor), batch_size);
}

// ---- catalog commands ----

Doc CmdCreate(Node& node, const wire::Request& req, const bson_t* cmd) {
  std::string coll = CollArg(cmd);
  std::string ns = Ns(req, coll);
  CheckCanWrite(node, req.db);
  bool capped = GetBool(cmd, "capped");
  int64_t size = GetInt(cmd, "size", 0);
  if (capped && size <= 0) throw MongoError(ErrorCode::kInvalidOptions, "the 'size' field is required when 'capped' is true");
  bson_t opts = BSON_INITIALIZER;
  bson_iter_t it;
  bson_iter_init(&it, cmd);
  bson_iter_next(&it);
  static const std::set<std::string> kIgnored = {"writeConcern", "lsid", "$db", "$readPreference",
                                                 "$clusterTime", "txnNumber", "autocommit", "comment",
                                                 "apiVersion", "apiStrict", "apiDeprecationErrors"};
  while (bson_iter_next(&it)) {
    std::string k = bson_iter_key(&it);
    if (kIgnored.count(k)) continue;
    if (k == "size" && capped) {
      // mongod rounds capped sizes up to a multiple of 256.
      int64_t s = (bson_iter_as_int64(&it) + 255) / 256 * 256;
      BSON_APPEND_INT64(&opts, "size", s);
      continue;
    }
    bson_append_value(&opts, k.c_str(), -1, bson_iter_value(&it));
  }
  WriteUnit wu(node);
  if (node.catalog().Get(ns)) {
    bson_destroy(&opts);
    throw MongoError(ErrorCode::kNamespaceExists, "Collection " + ns + " already exists.");
  }
  auto c = node.catalog().Create(wu.txn(), ns, &opts);
  bson_t o = BSON_INITIALIZER;
  BSON_APPEND_UTF8(&o, "create", coll.c_str());
  bson_concat(&o, &opts);
  wu.LogCommand(req.db, &o, c->uuid);
  bson_destroy(&o);
  bson_destroy(&opts);
  wu.Commit();
  bson_t* r = bson_new();
  ApplyWriteConcern(node, cmd, wu.last_ts(), r);
  return Ok(r);
}

Doc CmdDrop(Node& node, const wire::Request& req, const bson_t* cmd) {
  std::string coll = CollArg(cmd);
  std::string ns = Ns(req, coll);
  CheckCanWrite(node, req.db);
  WriteUnit wu(node);
  auto c = node.catalog().Get(ns);
  if (!c) throw MongoError(ErrorCode::kNamespaceNotFound, "ns not found");
  if (c->oplog && node.repl().enabled()) {
    throw MongoError(ErrorCode::kIllegalOperation, "can't drop live oplog while replicating");
  }
  size_t nidx = c->indexes.size();
  node.catalog().Drop(wu.txn(), ns);
  bson_t o = BSON_INITIALIZER;
  BSON_APPEND_UTF8(&o, "drop", coll.c_str());
  wu.LogCommand(req.db, &o, c->uuid);
  bson_destroy(&o);
  wu.Commit();
  bson_t* r = bson_new();
  BSON_APPEND_INT32(r, "nIndexesWas", static_cast<int32_t>(nidx));
  BSON_APPEND_UTF8(r, "ns", ns.c_str());
  ApplyWriteConcern(node, cmd, wu.last_ts(), r);
  return Ok(r);
}

Doc CmdDropDatabase(Node& node, const wire::Request& req, const bson_t* cmd) {
  CheckCanWrite(node, req.db);
  if (req.db == "local" && node.repl().enabled()) {
    throw MongoError(ErrorCode::kIllegalOperation, "Cannot drop 'local' database while replication is active");
  }
  WriteUnit wu(node);
  for (const auto& c : node.catalog().List(req.db)) {
    node.catalog().Drop(wu.txn(), c->ns);
    bson_t o = BSON_INITIALIZER;
    BSON_APPEND_UTF8(&o, "drop", CollOf(c->ns).c_str());
    wu.LogCommand(req.db, &o, c->uuid);
    bson_destroy(&o);
  }
  bson_t o = BSON_INITIALIZER;
  BSON_APPEND_INT32(&o, "dropDatabase", 1);
  wu.LogCommand(req.db, &o);
  bson_destroy(&o);
  wu.Commit();
  bson_t* r = bson_new();
  BSON_APPEND_UTF8(r, "dropped", req.db.c_str());
  ApplyWriteConcern(node, cmd, wu.last_ts(), r);
  return Ok(r);
}

int64_t SizeOnDisk(Node& node, const Collection& c) {
  int64_t total = 0;
  std::vector<std::string> idents = {c.ident};
  for (auto& i : c.indexes) idents.push_back(i.ident);
  for (auto& ident : idents) {
    struct stat st;
    std::string p = node.options().dbpath + "/" + ident + ".wt";
    if (stat(p.c_str(), &st) == 0) total += st.st_size;
  }
  return total;
}

Doc CmdListDatabases(Node& node, const wire::Request& req, const bson_t* cmd) {
  if (req.db != "admin") throw MongoError(ErrorCode::kUnauthorized, "listDatabases may only be run against the admin database.");
  bool name_only = GetBool(cmd, "nameOnly");
  auto filter = GetDoc(cmd, "filter");
  query::Matcher m(filter ? filter->get() : nullptr);
  bson_t* r = bson_new();
  bson_t arr;
  BSON_APPEND_ARRAY_BEGIN(r, "databases", &arr);
  int i = 0;
  int64_t total = 0;
  for (const auto& db : node.catalog().Databases()) {
    int64_t size = 0;
    for (auto& c : node.catalog().List(db)) size += SizeOnDisk(node, *c);
    bson_t d = BSON_INITIALIZER;
    BSON_APPEND_UTF8(&d, "name", db.c_str());
    if (!name_only) {
      BSON_APPEND_INT64(&d, "sizeOnDisk", size);
      BSON_APPEND_BOOL(&d, "empty", false);
    }
    if (m.Matches(&d)) {
      char k[16];
      snprintf(k, sizeof k, "%d", i++);
      BSON_APPEND_DOCUMENT(&arr, k, &d);
      total += size;
    }
    bson_destroy(&d);
  }
  bson_append_array_end(r, &arr);
  if (!name_only) {
    BSON_APPEND_INT64(r, "totalSize", total);
    BSON_APPEND_INT64(r, "totalSizeMb", total / (1024 * 1024));
  }
  return Ok(r);
}

Doc CmdListCollections(Node& node, const wire::Request& req, const bson_t* cmd) {
  auto filter = GetDoc(cmd, "filter");
  bool name_only = GetBool(cmd, "nameOnly");
  query::Matcher m(filter ? filter->get() : nullptr);
  std::vector<Doc> docs;
  for (const auto& c : node.catalog().List(req.db)) {
    bson_t* d = bson_new();
    BSON_APPEND_UTF8(d, "name", CollOf(c->ns).c_str());
    BSON_APPEND_UTF8(d, "type", "collection");
    if (!name_only) {
      bson_t opts = BSON_INITIALIZER;
      bson_iter_t it;
      bson_iter_init(&it, c->options.get());
      while (bson_iter_next(&it)) {
        if (strcmp(bson_iter_key(&it), "uuid") == 0) continue;
        bson_append_value(&opts, bson_iter_key(&it), -1, bson_iter_value(&it));
      }
      BSON_APPEND_DOCUMENT(d, "options", &opts);
      bson_destroy(&opts);
      bson_t info;
      BSON_APPEND_DOCUMENT_BEGIN(d, "info", &info);
      BSON_APPEND_BOOL(&info, "readOnly", node.read_only());
      BSON_APPEND_BINARY(&info, "uuid", BSON_SUBTYPE_UUID, reinterpret_cast<const uint8_t*>(c->uuid.data()),
                         static_cast<uint32_t>(c->uuid.size()));
      bson_append_document_end(d, &info);
      if (const IndexDesc* id = c->FindIndex("_id_")) BSON_APPEND_DOCUMENT(d, "idIndex", id->spec.get());
    }
    Doc doc(d);
    if (m.Matches(doc.get())) docs.push_back(std::move(doc));
  }
  auto cursor = std::make_unique<ClientCursor>();
  cursor->source = VectorSource(std::move(docs));
  auto copt = GetDoc(cmd, "cursor");
  return RunCursor(node, req.db + ".$cmd.listCollections", std::move(cursor),
                   copt ? BatchSizeArg(copt->get(), "batchSize") : 0);
}

Doc CmdCreateIndexes(Node& node, const wire::Request& req, const bson_t* cmd) {
  std::string coll = CollArg(cmd);
  std::string ns = Ns(req, coll);
  CheckCanWrite(node, req.db);
  bson_iter_t it, arr;
  if (!Find(cmd, "indexes", &it) || !BSON_ITER_HOLDS_ARRAY(&it)) {
    throw MongoError(ErrorCode::kFailedToParse, "BSON field 'createIndexes.indexes' is missing but a required field");
  }
  WriteUnit wu(node);
  bool created_coll = !node.catalog().Get(ns);
  auto c = wu.GetOrCreate(ns);
  size_t before = c->indexes.size();
  bson_iter_recurse(&it, &arr);
  while (bson_iter_next(&arr)) {
    uint32_t len;
    const uint8_t* data;
    if (!BSON_ITER_HOLDS_DOCUMENT(&arr)) throw MongoError(ErrorCode::kTypeMismatch, "index specification must be an object");
    bson_iter_document(&arr, &len, &data);
    bson_t spec;
    bson_init_static(&spec, data, len);
    size_t n_before = node.catalog().Get(ns)->indexes.size();
    c = node.catalog().CreateIndex(wu.txn(), ns, &spec);
    if (c->indexes.size() > n_before) {
      bson_t o = BSON_INITIALIZER;
      BSON_APPEND_UTF8(&o, "createIndexes", coll.c_str());
      bson_iter_t s;
      bson_iter_init(&s, c->indexes.back().spec.get());
      while (bson_iter_next(&s)) bson_append_value(&o, bson_iter_key(&s), -1, bson_iter_value(&s));
      wu.LogCommand(req.db, &o, c->uuid);
      bson_destroy(&o);
    }
  }
  wu.Commit();
  bson_t* r = bson_new();
  BSON_APPEND_INT32(r, "numIndexesBefore", static_cast<int32_t>(before));
  BSON_APPEND_INT32(r, "numIndexesAfter", static_cast<int32_t>(c->indexes.size()));
  if (before == c->indexes.size()) BSON_APPEND_UTF8(r, "note", "all indexes already exist");
  BSON_APPEND_BOOL(r, "createdCollectionAutomatically", created_coll);
  ApplyWriteConcern(node, cmd, wu.last_ts(), r);
  return Ok(r);
}

Doc CmdListIndexes(Node& node, const wire::Request& req, const bson_t* cmd) {
  std::string ns = Ns(req, CollArg(cmd));
  auto c = node.catalog().Get(ns);
  if (!c) throw MongoError(ErrorCode::kNamespaceNotFound, "ns does not exist: " + ns);
  std::vector<Doc> docs;
  for (const auto& i : c->indexes) docs.push_back(i.spec);
  auto cursor = std::make_unique<ClientCursor>();
  cursor->source = VectorSource(std::move(docs));
  auto copt = GetDoc(cmd, "cursor");
  return RunCursor(node, ns, std::move(cursor), copt ? BatchSizeArg(copt->get(), "batchSize") : 0);
}

Doc CmdDropIndexes(Node& node, const wire::Request& req, const bson_t* cmd) {
  std::string coll = CollArg(cmd);
  std::string ns = Ns(req, coll);
  CheckCanWrite(node, req.db);
  WriteUnit wu(node);
  auto c = node.catalog().Get(ns);
  if (!c) throw MongoError(ErrorCode::kNamespaceNotFound, "ns not found " + ns);
  size_t was = c->indexes.size();
  std::vector<std::string> names;
  bson_iter_t it;
  if (!Find(cmd, "index", &it)) throw MongoError(ErrorCode::kFailedToParse, "BSON field 'dropIndexes.index' is missing but a required field");
  if (BSON_ITER_HOLDS_UTF8(&it)) {
    std::string n = bson_iter_utf8(&it, nullptr);
    if (n == "*") {
      for (auto& i : c->indexes) {
        if (i.name != "_id_") names.push_back(i.name);
      }
    } else {
      names.push_back(n);
    }
  } else if (BSON_ITER_HOLDS_DOCUMENT(&it)) {
    uint32_t len;
    const uint8_t* data;
    bson_iter_document(&it, &len, &data);
    bson_t key;
    bson_init_static(&key, data, len);
    const IndexDesc* i = c->FindIndexByKey(&key);
    if (!i) throw MongoError(ErrorCode::kIndexNotFound, "can't find index with key: " + ToJson(&key));
    names.push_back(i->name);
  } else if (BSON_ITER_HOLDS_ARRAY(&it)) {
    bson_iter_t a;
    bson_iter_recurse(&it, &a);
    while (bson_iter_next(&a)) {
      if (BSON_ITER_HOLDS_UTF8(&a)) names.push_back(bson_iter_utf8(&a, nullptr));
    }
  }
  for (const auto& n : names) {
    c = node.catalog().DropIndex(wu.txn(), ns, n);
    bson_t o = BSON_INITIALIZER;
    BSON_APPEND_UTF8(&o, "dropIndexes", coll.c_str());
    BSON_APPEND_UTF8(&o, "index", n.c_str());
    wu.LogCommand(req.db, &o, c->uuid);
    bson_destroy(&o);
  }
  wu.Commit();
  bson_t* r = bson_new();
  BSON_APPEND_INT32(r, "nIndexesWas", static_cast<int32_t>(was));
  ApplyWriteConcern(node, cmd, wu.last_ts(), r);
  return Ok(r);
}

Doc CmdShutdown(Node& node, const wire::Request& req, const bson_t* cmd) {
  if (req.db != "admin") throw MongoError(ErrorCode::kUnauthorized, "shutdown must run from localhost when running db without auth");
  bool force = GetBool(cmd, "force");
  int64_t timeout = GetInt(cmd, "timeoutSecs", 15);
  if (!force && node.repl().enabled() && node.repl().IsWritablePrimary()) {
    auto cfg = node.repl().config();
    if (cfg && cfg->members.size() > 1) {
      // Wait for a secondary to catch up, as mongod does before stepping down.
      auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout);
      bool caught_up = false;
      while (std::chrono::steady_clock::now() < deadline) {
        Doc st = node.repl().GetStatus();
        bson_iter_t it, m;
        uint64_t top = node.repl().last_applied();
        if (Find(st.get(), "members", &it) && bson_iter_recurse(&it, &m)) {
          while (bson_iter_next(&m)) {
            bson_iter_t f;
            uint32_t len;
            const uint8_t* data;
            bson_iter_document(&m, &len, &data);
            bson_t md;
            bson_init_static(&md, data, len);
            if (GetInt(&md, "state", 0) == 2 && bson_iter_init(&f, &md) &&
                bson_iter_find_descendant(&f, "optime.ts", &f) && TsOf(&f) >= top) {
              caught_up = true;
            }
          }
        }
        if (caught_up) break;
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
      }
      if (!caught_up) {
        throw MongoError(262, "No electable secondaries caught up as of the shutdown deadline; use "
                              "force: true to shut down anyway");
      }
    }
  }
  Log(Severity::kInfo, "COMMAND", "Terminating via shutdown command", "{\"force\":" + std::string(force ? "true" : "false") + "}");
  if (g_request_shutdown) g_request_shutdown();
  return Ok(bson_new());
}

Doc CmdEndSessions(Node&, const wire::Request&, const bson_t*) { return Ok(bson_new()); }

Doc CmdWhatsMyUri(Node&, const wire::Request&, const bson_t*) {
  bson_t* r = bson_new();
  BSON_APPEND_UTF8(r, "you", tl_conn ? tl_conn->remote.c_str() : "");
  return Ok(r);
}

Doc CmdReplSetInitiate(Node& node, const wire::Request& req, const bson_t* cmd) { return node.repl().Initiate(cmd); }
Doc CmdReplSetGetStatus(Node& node, const wire::Request& req, const bson_t*) { return node.repl().GetStatus(); }
Doc CmdReplSetGetConfig(Node& node, const wire::Request& req, const bson_t*) { return node.repl().GetConfig(); }
Doc CmdReplSetReconfig(Node& node, const wire::Request& req, const bson_t* cmd) { return node.repl().Reconfig(cmd); }
Doc CmdReplSetHeartbeat(Node& node, const wire::Request& req, const bson_t* cmd) { return node.repl().Heartbeat(cmd); }
Doc CmdReplSetUpdatePosition(Node& node, const wire::Request& req, const bson_t* cmd) { return node.repl().UpdatePosition(cmd); }

Doc CmdApplyOps(Node& node, const wire::Request& req, const bson_t* cmd) {
  if (req.db != "admin") throw MongoError(ErrorCode::kUnauthorized, "applyOps must run against admin");
  CheckCanWrite(node, "admin");
  bson_iter_t it, arr;
  if (!Find(cmd, "applyOps", &it) || !BSON_ITER_HOLDS_ARRAY(&it)) {
    throw MongoError(ErrorCode::kFailedToParse, "applyOps requires an array of operations");
  }
  bson_iter_recurse(&it, &arr);
  int n = 0;
  uint64_t last_ts = 0;
  while (bson_iter_next(&arr)) {
    uint32_t len;
    const uint8_t* data;
    bson_iter_document(&arr, &len, &data);
    bson_t op;
    bson_init_static(&op, data, len);
    std::string o = GetString(&op, "op");
    std::string ns = GetString(&op, "ns");
    auto od = GetDoc(&op, "o");
    auto o2 = GetDoc(&op, "o2");
    WriteUnit wu(node);
    if (o == "i" && od) {
      auto c = wu.GetOrCreate(ns);
      Doc d = PrepareInsert(od->get());
      bson_iter_t idi;
      bson_iter_init_find(&idi, d.get(), "_id");
      auto existing = FindById(wu.txn(), *c, *bson_iter_value(&idi));
      if (existing) {
        wu.Update(*c, existing->first, existing->second.get(), d.get(), true);
      } else {
        wu.Insert(*c, d.get());
      }
    } else if ((o == "u" || o == "d") && od) {
      auto c = node.catalog().Get(ns);
      const bson_t* key = o == "u" ? (o2 ? o2->get() : nullptr) : od->get();
      bson_iter_t idi;
      if (c && key && bson_iter_init_find(&idi, key, "_id")) {
        auto existing = FindById(wu.txn(), *c, *bson_iter_value(&idi));
        if (existing && o == "d") {
          wu.Delete(*c, existing->first, existing->second.get());
        } else if (existing) {
          query::Update up(od->get());
          bool changed = false;
          Doc nd = up.Apply(existing->second.get(), &changed);
          if (changed) wu.Update(*c, existing->first, existing->second.get(), nd.get(), up.is_replacement());
        }
      }
    } else if (o == "c" || o == "n") {
      // Commands and no-ops: applied as the oplog applier does, and logged as given.
      node.ApplyOplogEntry(wu.txn(), &op);
      if (od && o == "c") wu.LogCommand(DbOf(ns), od->get());
    } else {
      throw MongoError(ErrorCode::kBadValue, "applyOps: unknown op '" + o + "'");
    }
    wu.Commit();
    last_ts = std::max(last_ts, wu.last_ts());
    ++n;
  }
  bson_t* r = bson_new();
  BSON_APPEND_INT32(r, "applied", n);
  ApplyWriteConcern(node, cmd, last_ts, r);
  return Ok(r);
}

Doc CmdDbStats(Node& node, const wire::Request& req, const bson_t*) {
  int64_t objects = 0, data = 0, storage = 0, indexes = 0;
  auto colls = node.catalog().List(req.db);
  for (auto& c : colls) {
    objects += c->num_records->load();
    data += c->data_size->load();
    storage += SizeOnDisk(node, *c);
    indexes += static_cast<int64_t>(c->indexes.size());
  }
  bson_t* r = bson_new();
  BSON_APPEND_UTF8(r, "db", req.db.c_str());
  BSON_APPEND_INT64(r, "collections", static_cast<int64_t>(colls.size()));
  BSON_APPEND_INT64(r, "objects", objects);
  BSON_APPEND_INT64(r, "dataSize", data);
  BSON_APPEND_INT64(r, "storageSize", storage);
  BSON_APPEND_INT64(r, "indexes", indexes);
  return Ok(r);
}

const std::map<std::string, Handler>& Handlers() {
  static const std::map<std::string, Handler> h = {
      {"ping", CmdPing},
      {"hello", CmdHello},
      {"isMaster", CmdHello},
      {"ismaster", CmdHello},
      {"buildInfo", CmdBuildInfo},
      {"buildinfo", CmdBuildInfo},
      {"getCmdLineOpts", CmdGetCmdLineOpts},
      {"getParameter", CmdGetParameter},
      {"serverStatus", CmdServerStatus},
      {"hostInfo", CmdHostInfo},
      {"find", CmdFind},
      {"getMore", CmdGetMore},
      {"killCursors", CmdKillCursors},
      {"insert", CmdInsert},
      {"update", CmdUpdate},
      {"delete", CmdDelete},
      {"findAndModify", CmdFindAndModify},
      {"findandmodify", CmdFindAndModify},
      {"count", CmdCount},
      {"distinct", CmdDistinct},
      {"aggregate", CmdAggregate},
      {"create", CmdCreate},
      {"drop", CmdDrop},
      {"dropDatabase", CmdDropDatabase},
      {"listDatabases", CmdListDatabases},
      {"listCollections", CmdListCollections},
      {"createIndexes", CmdCreateIndexes},
      {"listIndexes", CmdListIndexes},
      {"dropIndexes", CmdDropIndexes},
      {"deleteIndexes", CmdDropIndexes},
      {"shutdown", CmdShutdown},
      {"endSessions", CmdEndSessions},
      {"whatsmyuri", CmdWhatsMyUri},
      {"replSetInitiate", CmdReplSetInitiate},
      {"replSetGetStatus", CmdReplSetGetStatus},
      {"replSetGetConfig", CmdReplSetGetConfig},
      {"replSetReconfig", CmdReplSetReconfig},
      {"replSetHeartbeat", CmdReplSetHeartbeat},
      {"replSetUpdatePosition", CmdReplSetUpdatePosition},
      {"applyOps", CmdApplyOps},
      {"dbStats", CmdDbStats},
  };
  return h;
}

}  // namespace

void SetConnectionCounter(std::function<size_t()> fn) { g_connections = std::move(fn); }

Doc RunCommand(Node& node, const wire::Request& req, const wire::Connection& conn,
               const std::function<void()>& request_shutdown) {
  tl_conn = &conn;
  g_request_shutdown = request_shutdown;
  const bson_t* cmd = req.body.get();
  std::string name = FirstKey(cmd);
  auto& handlers = Handlers();
  auto it = handlers.find(name);
  auto& auth_handlers = AuthCommands();
  auto ait = auth_handlers.find(name);
  if (it == handlers.end() && ait == auth_handlers.end()) {
    throw MongoError(ErrorCode::kCommandNotFound, "no such command: '" + name + "'");
  }
  CheckAuthorized(node, conn, req, name);
  if (ait != auth_handlers.end()) return ait->second(node, req, cmd, conn);
  return it->second(node, req, cmd);
}

}  // namespace wtm
