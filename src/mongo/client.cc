#include "mongo/client.h"

#include <mongoc/mongoc.h>

#include <cstdio>
#include <mutex>

namespace pbm::mongo {
namespace {

std::once_flag g_init;

struct BsonPtr {
  bson_t* b;
  explicit BsonPtr(bson_t* p) : b(p) {}
  ~BsonPtr() {
    if (b) bson_destroy(b);
  }
};

bson_t* ToBson(const Json& j) {
  std::string s = j.dump();
  bson_error_t err;
  bson_t* b = bson_new_from_json(reinterpret_cast<const uint8_t*>(s.data()),
                                 static_cast<ssize_t>(s.size()), &err);
  if (!b) Fail(ErrorKind::kInternal, "cannot encode a document as BSON: {}", err.message);
  return b;
}

Json FromBson(const bson_t* b) {
  size_t n = 0;
  char* s = bson_as_relaxed_extended_json(b, &n);
  if (!s) Fail(ErrorKind::kCorrupt, "a reply is not valid BSON");
  Json j = Json::parse(s, s + n);
  bson_free(s);
  return j;
}

ErrorKind KindForCode(int code) {
  switch (code) {
    case 11000:
      return ErrorKind::kAlreadyExists;
    case 26:
    case 43:
      return ErrorKind::kNotFound;
    case 50:
    case 262:
      return ErrorKind::kTimeout;
    case 6:
    case 7:
    case 89:
    case 91:
    case 189:
    case 10107:
    case 13435:
    case 13436:
    case 11600:
    case 11602:
      return ErrorKind::kUnavailable;
    default:
      return ErrorKind::kInternal;
  }
}

std::string Redact(const std::string& uri) {
  // mongodb://user:pass@host → mongodb://user:***@host
  auto scheme = uri.find("://");
  if (scheme == std::string::npos) return uri;
  auto at = uri.find('@', scheme + 3);
  if (at == std::string::npos) return uri;
  auto colon = uri.find(':', scheme + 3);
  if (colon == std::string::npos || colon > at) return uri;
  return uri.substr(0, colon + 1) + "***" + uri.substr(at);
}

}  // namespace

CommandError::CommandError(int code, std::string code_name, const std::string& message)
    : Error(KindForCode(code), message), code_(code), code_name_(std::move(code_name)) {}

struct Client::Impl {
  mongoc_client_pool_t* pool = nullptr;
  mongoc_uri_t* uri = nullptr;

  struct Lease {
    mongoc_client_pool_t* pool;
    mongoc_client_t* c;
    ~Lease() { mongoc_client_pool_push(pool, c); }
  };
  Lease Pop() const { return Lease{pool, mongoc_client_pool_pop(pool)}; }
};

Client::Client(const std::string& uri, int timeout_ms) : impl_(std::make_unique<Impl>()) {
  std::call_once(g_init, [] {
    mongoc_init();
    // The driver's own chatter (monitor retries, debug lines) is not the user's business:
    // failures reach callers as errors. Keep only its errors.
    mongoc_log_set_handler(
        [](mongoc_log_level_t level, const char* domain, const char* message, void*) {
          if (level <= MONGOC_LOG_LEVEL_ERROR) fprintf(stderr, "mongoc %s: %s\n", domain, message);
        },
        nullptr);
  });
  redacted_ = Redact(uri);
  bson_error_t err;
  impl_->uri = mongoc_uri_new_with_error(uri.c_str(), &err);
  if (!impl_->uri) {
    Fail(ErrorKind::kInvalidArgument, "invalid MongoDB URI {}: {}", redacted_, err.message);
  }
  if (!mongoc_uri_has_option(impl_->uri, MONGOC_URI_SERVERSELECTIONTIMEOUTMS)) {
    mongoc_uri_set_option_as_int32(impl_->uri, MONGOC_URI_SERVERSELECTIONTIMEOUTMS, timeout_ms);
  }
  if (!mongoc_uri_has_option(impl_->uri, MONGOC_URI_CONNECTTIMEOUTMS)) {
    mongoc_uri_set_option_as_int32(impl_->uri, MONGOC_URI_CONNECTTIMEOUTMS, 3000);
  }
  impl_->pool = mongoc_client_pool_new(impl_->uri);
  if (!impl_->pool) Fail(ErrorKind::kInvalidArgument, "cannot use MongoDB URI {}", redacted_);
  mongoc_client_pool_set_error_api(impl_->pool, MONGOC_ERROR_API_VERSION_2);
  mongoc_client_pool_set_appname(impl_->pool, "pbm");
}

Client::~Client() {
  if (impl_->pool) mongoc_client_pool_destroy(impl_->pool);
  if (impl_->uri) mongoc_uri_destroy(impl_->uri);
}

Json Client::RunCommand(const std::string& db, const Json& cmd) const {
  BsonPtr c(ToBson(cmd));
  bson_t reply;
  bson_error_t err;
  bool ok;
  {
    auto lease = impl_->Pop();
    ok = mongoc_client_command_simple(lease.c, db.c_str(), c.b, nullptr, &reply, &err);
  }
  Json r = FromBson(&reply);
  bson_destroy(&reply);
  if (!ok) {
    if (err.domain == MONGOC_ERROR_SERVER || err.domain == MONGOC_ERROR_WRITE_CONCERN) {
      std::string name = r.contains("codeName") ? r["codeName"].get<std::string>() : "";
      throw CommandError(static_cast<int>(err.code), name, err.message);
    }
    Fail(ErrorKind::kUnavailable, "cannot reach MongoDB at {}: {}", redacted_, err.message);
  }
  if (r.contains("writeErrors") && !r["writeErrors"].empty()) {
    const Json& we = r["writeErrors"][0];
    throw CommandError(we.value("code", 0), "", we.value("errmsg", std::string("write error")));
  }
  if (r.contains("writeConcernError")) {
    const Json& wce = r["writeConcernError"];
    throw CommandError(wce.value("code", 64), wce.value("codeName", std::string()),
                       wce.value("errmsg", std::string("write concern error")));
  }
  return r;
}

namespace {
std::vector<Json> Batch(const Json& reply, const char* field) {
  std::vector<Json> out;
  if (reply.contains("cursor") && reply["cursor"].contains(field)) {
    for (const auto& d : reply["cursor"][field]) out.push_back(d);
  }
  return out;
}
}  // namespace

std::vector<Json> Client::Find(const std::string& db, const std::string& coll, const Json& filter,
                               const Json& options) const {
  Json cmd = {{"find", coll}, {"filter", filter}};
  for (auto& [k, v] : options.items()) cmd[k] = v;
  Json r = RunCommand(db, cmd);
  std::vector<Json> out = Batch(r, "firstBatch");
  int64_t id = r["cursor"].value("id", int64_t{0});
  std::string ns = r["cursor"].value("ns", db + "." + coll);
  while (id != 0) {
    CursorBatch b = GetMore(db, ns, id);
    for (auto& d : b.docs) out.push_back(std::move(d));
    id = b.id;
  }
  return out;
}

std::optional<Json> Client::FindOne(const std::string& db, const std::string& coll,
                                    const Json& filter, const Json& options) const {
  Json o = options;
  o["limit"] = 1;
  o["singleBatch"] = true;
  auto docs = Find(db, coll, filter, o);
  if (docs.empty()) return std::nullopt;
  return docs[0];
}

void Client::Insert(const std::string& db, const std::string& coll, const Json& doc) const {
  RunCommand(db, {{"insert", coll}, {"documents", Json::array({doc})},
                  {"writeConcern", {{"w", "majority"}}}});
}

int64_t Client::Update(const std::string& db, const std::string& coll, const Json& filter,
                       const Json& update, bool upsert, bool multi) const {
  Json r = RunCommand(db, {{"update", coll},
                           {"updates", Json::array({{{"q", filter},
                                                     {"u", update},
                                                     {"upsert", upsert},
                                                     {"multi", multi}}})},
                           {"writeConcern", {{"w", "majority"}}}});
  return r.value("n", int64_t{0});
}

int64_t Client::Delete(const std::string& db, const std::string& coll, const Json& filter,
                       bool multi) const {
  Json r = RunCommand(db, {{"delete", coll},
                           {"deletes", Json::array({{{"q", filter}, {"limit", multi ? 0 : 1}}})},
                           {"writeConcern", {{"w", "majority"}}}});
  return r.value("n", int64_t{0});
}

std::optional<Json> Client::FindAndModify(const std::string& db, const std::string& coll,
                                          const Json& filter, const Json& update, bool upsert,
                                          const Json& sort) const {
  Json cmd = {{"findAndModify", coll}, {"query", filter}, {"update", update},
              {"upsert", upsert},      {"new", true},      {"writeConcern", {{"w", "majority"}}}};
  if (!sort.empty()) cmd["sort"] = sort;
  Json r = RunCommand(db, cmd);
  if (!r.contains("value") || r["value"].is_null()) return std::nullopt;
  return r["value"];
}

void Client::CreateIndex(const std::string& db, const std::string& coll, const Json& keys,
                         const std::string& name, bool unique) const {
  Json idx = {{"key", keys}, {"name", name}};
  if (unique) idx["unique"] = true;
  RunCommand(db, {{"createIndexes", coll}, {"indexes", Json::array({idx})}});
}

CursorBatch Client::Aggregate(const std::string& db, const Json& target,
                              const Json& pipeline) const {
  Json r = RunCommand(db, {{"aggregate", target}, {"pipeline", pipeline}, {"cursor", Json::object()}});
  CursorBatch b;
  b.id = r["cursor"].value("id", int64_t{0});
  b.ns = r["cursor"].value("ns", std::string());
  b.docs = Batch(r, "firstBatch");
  return b;
}

CursorBatch Client::GetMore(const std::string& db, const std::string& ns, int64_t id,
                            int64_t max_time_ms) const {
  std::string coll = ns.substr(ns.find('.') + 1);
  // The cursor id must travel as int64 ("long"), whatever its value.
  Json r = RunCommand(db, {{"getMore", {{"$numberLong", std::to_string(id)}}},
                           {"collection", coll},
                           {"maxTimeMS", max_time_ms}});
  CursorBatch b;
  b.id = r["cursor"].value("id", int64_t{0});
  b.ns = ns;
  b.docs = Batch(r, "nextBatch");
  return b;
}

void Client::KillCursor(const std::string& db, const std::string& ns, int64_t id) const {
  std::string coll = ns.substr(ns.find('.') + 1);
  RunCommand(db, {{"killCursors", coll},
                  {"cursors", Json::array({{{"$numberLong", std::to_string(id)}}})}});
}

Json Timestamp::ToJson() const { return {{"$timestamp", {{"t", t}, {"i", i}}}}; }

Timestamp Timestamp::FromJson(const Json& j) {
  if (!j.is_object() || !j.contains("$timestamp")) {
    Fail(ErrorKind::kInvalidArgument, "not a BSON timestamp: {}", j.dump());
  }
  return {j["$timestamp"]["t"].get<uint32_t>(), j["$timestamp"]["i"].get<uint32_t>()};
}

std::string Timestamp::ToString() const { return std::to_string(t) + ":" + std::to_string(i); }

std::string JsonToBsonBytes(const Json& j) {
  BsonPtr b(ToBson(j));
  return std::string(reinterpret_cast<const char*>(bson_get_data(b.b)), b.b->len);
}

Json BsonBytesToJson(const uint8_t* data, size_t len) {
  bson_t b;
  if (!bson_init_static(&b, data, len)) Fail(ErrorKind::kCorrupt, "not a BSON document");
  return FromBson(&b);
}

namespace {
// Throws for a failed driver call, as RunCommand does.
[[noreturn]] void ThrowDriverError(const bson_error_t& err, const std::string& where) {
  if (err.domain == MONGOC_ERROR_SERVER || err.domain == MONGOC_ERROR_WRITE_CONCERN ||
      err.domain == MONGOC_ERROR_COMMAND) {
    throw CommandError(static_cast<int>(err.code), "", err.message);
  }
  Fail(ErrorKind::kUnavailable, "cannot reach MongoDB at {}: {}", where, err.message);
}
}  // namespace

void Client::FindRaw(const std::string& db, const std::string& coll, const Json& filter,
                     const Json& options,
                     const std::function<void(const uint8_t*, size_t)>& fn) const {
  BsonPtr f(ToBson(filter));
  BsonPtr o(ToBson(options));
  auto lease = impl_->Pop();
  mongoc_collection_t* c = mongoc_client_get_collection(lease.c, db.c_str(), coll.c_str());
  mongoc_cursor_t* cur = mongoc_collection_find_with_opts(c, f.b, o.b, nullptr);
  const bson_t* doc;
  bson_error_t err;
  try {
    while (mongoc_cursor_next(cur, &doc)) fn(bson_get_data(doc), doc->len);
    if (mongoc_cursor_error(cur, &err)) ThrowDriverError(err, redacted_);
  } catch (...) {
    mongoc_cursor_destroy(cur);
    mongoc_collection_destroy(c);
    throw;
  }
  mongoc_cursor_destroy(cur);
  mongoc_collection_destroy(c);
}

void Client::InsertRaw(const std::string& db, const std::string& coll,
                       const std::vector<std::string>& docs, bool majority) const {
  if (docs.empty()) return;
  std::vector<bson_t> owned(docs.size());
  std::vector<const bson_t*> ptrs(docs.size());
  for (size_t i = 0; i < docs.size(); ++i) {
    if (!bson_init_static(&owned[i], reinterpret_cast<const uint8_t*>(docs[i].data()),
                          docs[i].size())) {
      Fail(ErrorKind::kCorrupt, "insert into {}.{}: document {} is not valid BSON", db, coll, i);
    }
    ptrs[i] = &owned[i];
  }
  BsonPtr opts(ToBson(majority ? Json{{"writeConcern", {{"w", "majority"}}}} : Json::object()));
  auto lease = impl_->Pop();
  mongoc_collection_t* c = mongoc_client_get_collection(lease.c, db.c_str(), coll.c_str());
  bson_t reply;
  bson_error_t err;
  bool ok = mongoc_collection_insert_many(c, ptrs.data(), ptrs.size(), opts.b, &reply, &err);
  mongoc_collection_destroy(c);
  bson_destroy(&reply);
  if (!ok) ThrowDriverError(err, redacted_);
}

Json Client::ApplyOpsRaw(const std::vector<std::string>& ops) const {
  bson_t cmd, arr;
  bson_init(&cmd);
  bson_append_array_begin(&cmd, "applyOps", -1, &arr);
  for (size_t i = 0; i < ops.size(); ++i) {
    bson_t op;
    if (!bson_init_static(&op, reinterpret_cast<const uint8_t*>(ops[i].data()), ops[i].size())) {
      bson_destroy(&cmd);
      Fail(ErrorKind::kCorrupt, "applyOps: oplog entry {} is not valid BSON", i);
    }
    std::string key = std::to_string(i);
    bson_append_document(&arr, key.c_str(), -1, &op);
  }
  bson_append_array_end(&cmd, &arr);
  bson_t reply;
  bson_error_t err;
  bool ok;
  {
    auto lease = impl_->Pop();
    ok = mongoc_client_command_simple(lease.c, "admin", &cmd, nullptr, &reply, &err);
  }
  bson_destroy(&cmd);
  Json r = FromBson(&reply);
  bson_destroy(&reply);
  if (!ok) ThrowDriverError(err, redacted_);
  return r;
}

}  // namespace pbm::mongo
