#include "server/catalog.h"

#include <algorithm>
#include <cstring>
#include <random>
#include <set>

#include "common/error.h"
#include "common/log.h"
#include "query/keygen.h"
#include "query/keystring.h"

namespace wtm {
namespace {

constexpr const char* kCatalogUri = "table:_mdb_catalog";
constexpr const char* kSizeStorerUri = "table:sizeStorer";

std::string Be64(int64_t v) {
  uint64_t u = static_cast<uint64_t>(v) ^ (1ULL << 63);
  std::string out(8, '\0');
  for (int i = 7; i >= 0; --i) {
    out[i] = static_cast<char>(u & 0xff);
    u >>= 8;
  }
  return out;
}

int64_t FromBe64(const uint8_t* p) {
  uint64_t u = 0;
  for (int i = 0; i < 8; ++i) u = (u << 8) | p[i];
  return static_cast<int64_t>(u ^ (1ULL << 63));
}

std::string RandomUuid() {
  std::random_device rd;
  std::string u(16, '\0');
  for (auto& c : u) c = static_cast<char>(rd() & 0xff);
  u[6] = static_cast<char>((u[6] & 0x0f) | 0x40);
  u[8] = static_cast<char>((u[8] & 0x3f) | 0x80);
  return u;
}

void CheckRet(int ret, const std::string& what) {
  if (ret != 0 && ret != WT_NOTFOUND) {
    if (ret == WT_ROLLBACK) {
      throw MongoError(112, "WriteConflict during " + what);
    }
    throw MongoError(ErrorCode::kInternalError, what + ": " + wiredtiger_strerror(ret));
  }
}

std::string KeyPatternString(const bson_t* key) {
  std::string s = "{ ";
  bson_iter_t it;
  bool first = true;
  if (bson_iter_init(&it, key)) {
    while (bson_iter_next(&it)) {
      if (!first) s += ", ";
      first = false;
      s += bson_iter_key(&it);
      s += ": ";
      const bson_value_t* v = bson_iter_value(&it);
      bson_t tmp = BSON_INITIALIZER;
      bson_append_value(&tmp, "v", 1, v);
      std::string j = ToJson(&tmp);
      bson_destroy(&tmp);
      // {"v" : X} → X
      auto pos = j.find(':');
      s += j.substr(pos + 2, j.size() - pos - 4);
    }
  }
  return s + " }";
}

std::vector<int> Directions(const bson_t* key) {
  std::vector<int> d;
  bson_iter_t it;
  if (bson_iter_init(&it, key)) {
    while (bson_iter_next(&it)) {
      double v = 1;
      if (BSON_ITER_HOLDS_NUMBER(&it)) v = bson_iter_as_double(&it);
      d.push_back(v < 0 ? -1 : 1);
    }
  }
  return d;
}

std::vector<std::string> IndexKeys(const IndexDesc& idx, const bson_t* doc) {
  auto keys = query::GetIndexKeys(idx.key.get(), doc);
  auto dirs = Directions(idx.key.get());
  std::vector<std::string> out;
  out.reserve(keys.size());
  for (auto& k : keys) {
    std::vector<bson_value_t> vals;
    vals.reserve(k.size());
    for (auto& v : k) vals.push_back(v.get());
    out.push_back(query::EncodeIndexKey(vals, dirs));
  }
  return out;
}

std::string DupKeyMessage(const Collection& c, const IndexDesc& idx, const bson_t* doc) {
  // "E11000 duplicate key error collection: db.c index: a_1 dup key: { a: 1 }"
  auto keys = query::GetIndexKeys(idx.key.get(), doc);
  std::string dup = "{ ";
  bson_iter_t it;
  size_t i = 0;
  if (!keys.empty() && bson_iter_init(&it, idx.key.get())) {
    while (bson_iter_next(&it) && i < keys[0].size()) {
      if (i) dup += ", ";
      // mongod prints the field name unquoted ("{ a: 1 }"), so render only the value as JSON:
      // with an empty key ToJson gives `{ "" : <value> }`.
      bson_t tmp = BSON_INITIALIZER;
      bson_append_value(&tmp, "", 0, &keys[0][i].get());
      std::string j = ToJson(&tmp);
      bson_destroy(&tmp);
      dup += std::string(bson_iter_key(&it)) + ": " + j.substr(7, j.size() - 9);
      ++i;
    }
  }
  dup += " }";
  return "E11000 duplicate key error collection: " + c.ns + " index: " + idx.name +
         " dup key: " + dup;
}

void InsertIndexKeys(Txn& txn, const Collection& c, const IndexDesc& idx, const bson_t* doc,
                     int64_t rid) {
  WT_CURSOR* cur = txn.Cursor("table:" + idx.ident);
  std::string rid_be = Be64(rid);
  for (const auto& key : IndexKeys(idx, doc)) {
    if (idx.unique) {
      WT_ITEM k{key.data(), key.size()};
      cur->set_key(cur, &k);
      int ret = cur->search(cur);
      if (ret == 0) {
        WT_ITEM v;
        cur->get_value(cur, &v);
        if (v.size == 8 && FromBe64(static_cast<const uint8_t*>(v.data)) == rid) {
          cur->reset(cur);
          continue;
        }
        cur->reset(cur);
        throw MongoError(ErrorCode::kDuplicateKey, DupKeyMessage(c, idx, doc));
      }
      CheckRet(ret, "index search");
      cur->set_key(cur, &k);
      WT_ITEM v{rid_be.data(), rid_be.size()};
      cur->set_value(cur, &v);
      CheckRet(cur->insert(cur), "index insert");
    } else {
      std::string full = query::AppendRecordId(key, rid);
      WT_ITEM k{full.data(), full.size()};
      WT_ITEM v{"", 0};
      cur->set_key(cur, &k);
      cur->set_value(cur, &v);
      CheckRet(cur->insert(cur), "index insert");
    }
  }
  cur->reset(cur);
}

void RemoveIndexKeys(Txn& txn, const IndexDesc& idx, const bson_t* doc, int64_t rid) {
  WT_CURSOR* cur = txn.Cursor("table:" + idx.ident);
  for (const auto& key : IndexKeys(idx, doc)) {
    std::string full = idx.unique ? key : query::AppendRecordId(key, rid);
    WT_ITEM k{full.data(), full.size()};
    cur->set_key(cur, &k);
    int ret = cur->remove(cur);
    CheckRet(ret, "index remove");
  }
  cur->reset(cur);
}

Doc BuildCatalogEntry(const Collection& c) {
  bson_t* b = bson_new();
  bson_t md, indexes, idx_ident;
  BSON_APPEND_DOCUMENT_BEGIN(b, "md", &md);
  BSON_APPEND_UTF8(&md, "ns", c.ns.c_str());
  BSON_APPEND_DOCUMENT(&md, "options", c.options.get());
  BSON_APPEND_ARRAY_BEGIN(&md, "indexes", &indexes);
  int i = 0;
  for (const auto& idx : c.indexes) {
    bson_t e;
    std::string key = std::to_string(i++);
    BSON_APPEND_DOCUMENT_BEGIN(&indexes, key.c_str(), &e);
    BSON_APPEND_DOCUMENT(&e, "spec", idx.spec.get());
    BSON_APPEND_BOOL(&e, "ready", true);
    BSON_APPEND_BOOL(&e, "multikey", false);
    BSON_APPEND_INT64(&e, "head", 0);
    BSON_APPEND_BOOL(&e, "backgroundSecondary", false);
    bson_append_document_end(&indexes, &e);
  }
  bson_append_array_end(&md, &indexes);
  bson_append_document_end(b, &md);
  BSON_APPEND_DOCUMENT_BEGIN(b, "idxIdent", &idx_ident);
  for (const auto& idx : c.indexes) BSON_APPEND_UTF8(&idx_ident, idx.name.c_str(), idx.ident.c_str());
  bson_append_document_end(b, &idx_ident);
  BSON_APPEND_UTF8(b, "ns", c.ns.c_str());
  BSON_APPEND_UTF8(b, "ident", c.ident.c_str());
  return Doc(b);
}

std::shared_ptr<Collection> ParseCatalogEntry(const bson_t* entry, int64_t catalog_id) {
  auto c = std::make_shared<Collection>();
  c->catalog_id = catalog_id;
  bson_iter_t it;
  if (bson_iter_init_find(&it, entry, "ns") && BSON_ITER_HOLDS_UTF8(&it)) c->ns = bson_iter_utf8(&it, nullptr);
  if (bson_iter_init_find(&it, entry, "ident") && BSON_ITER_HOLDS_UTF8(&it)) {
    c->ident = bson_iter_utf8(&it, nullptr);
  }
  c->db = DbOf(c->ns);
  std::map<std::string, std::string> idents;
  bson_iter_t child;
  if (bson_iter_init_find(&it, entry, "idxIdent") && bson_iter_recurse(&it, &child)) {
    while (bson_iter_next(&child)) {
      if (BSON_ITER_HOLDS_UTF8(&child)) idents[bson_iter_key(&child)] = bson_iter_utf8(&child, nullptr);
    }
  }
  bson_iter_t md;
  if (bson_iter_init_find(&it, entry, "md") && bson_iter_recurse(&it, &md)) {
    while (bson_iter_next(&md)) {
      std::string k = bson_iter_key(&md);
      if (k == "options" && BSON_ITER_HOLDS_DOCUMENT(&md)) {
        uint32_t len;
        const uint8_t* data;
        bson_iter_document(&md, &len, &data);
        c->options = Doc::FromData(data, len);
      } else if (k == "indexes" && BSON_ITER_HOLDS_ARRAY(&md)) {
        bson_iter_t arr;
        bson_iter_recurse(&md, &arr);
        while (bson_iter_next(&arr)) {
          bson_iter_t e;
          if (!bson_iter_recurse(&arr, &e) || !bson_iter_find(&e, "spec")) continue;
          uint32_t len;
          const uint8_t* data;
          bson_iter_document(&e, &len, &data);
          IndexDesc idx;
          idx.spec = Doc::FromData(data, len);
          bson_iter_t s;
          if (bson_iter_init_find(&s, idx.spec.get(), "name")) idx.name = bson_iter_utf8(&s, nullptr);
          if (bson_iter_init_find(&s, idx.spec.get(), "key") && BSON_ITER_HOLDS_DOCUMENT(&s)) {
            bson_iter_document(&s, &len, &data);
            idx.key = Doc::FromData(data, len);
          }
          if (bson_iter_init_find(&s, idx.spec.get(), "unique")) idx.unique = bson_iter_as_bool(&s);
          if (idx.name == "_id_") idx.unique = true;
          idx.ident = idents[idx.name];
          c->indexes.push_back(std::move(idx));
        }
      }
    }
  }
  bson_iter_t o;
  if (bson_iter_init_find(&o, c->options.get(), "uuid") && BSON_ITER_HOLDS_BINARY(&o)) {
    bson_subtype_t st;
    uint32_t len;
    const uint8_t* data;
    bson_iter_binary(&o, &st, &len, &data);
    c->uuid.assign(reinterpret_cast<const char*>(data), len);
  }
  if (bson_iter_init_find(&o, c->options.get(), "capped")) c->capped = bson_iter_as_bool(&o);
  if (bson_iter_init_find(&o, c->options.get(), "size")) c->capped_size = bson_iter_as_int64(&o);
  if (bson_iter_init_find(&o, c->options.get(), "max")) c->capped_max = bson_iter_as_int64(&o);
  c->oplog = c->ns == "local.oplog.rs";
  return c;
}

}  // namespace

std::string DbOf(const std::string& ns) { return ns.substr(0, ns.find('.')); }
std::string CollOf(const std::string& ns) {
  auto p = ns.find('.');
  return p == std::string::npos ? "" : ns.substr(p + 1);
}

bool IsReplicatedNs(const std::string& ns) {
  std::string db = DbOf(ns);
  if (db == "local") return false;
  if (ns == "config.system.sessions" || ns.rfind("config.cache.", 0) == 0) return false;
  return true;
}

const IndexDesc* Collection::FindIndex(const std::string& name) const {
  for (const auto& i : indexes) {
    if (i.name == name) return &i;
  }
  return nullptr;
}

const IndexDesc* Collection::FindIndexByKey(const bson_t* key) const {
  for (const auto& i : indexes) {
    if (bson_equal(i.key.get(), key)) return &i;
  }
  return nullptr;
}

// ---------------------------------------------------------------------------------------------

Catalog::Catalog(storage::Engine& engine, bool replicated, bool recount)
    : engine_(engine), replicated_(replicated) {
  Txn txn(engine_);
  WT_SESSION* s = txn.session();
  storage::CheckWt(s->create(s, kCatalogUri, "key_format=q,value_format=u,type=file,"
                                             "log=(enabled=true)"),
                   "create _mdb_catalog");
  storage::CheckWt(s->create(s, kSizeStorerUri, "key_format=u,value_format=u,type=file,"
                                                 "log=(enabled=true)"),
                   "create sizeStorer");
  std::vector<std::shared_ptr<Collection>> loaded;
  WT_CURSOR* cur = txn.Cursor(kCatalogUri);
  int ret;
  while ((ret = cur->next(cur)) == 0) {
    int64_t id;
    WT_ITEM v;
    cur->get_key(cur, &id);
    cur->get_value(cur, &v);
    bson_t entry;
    if (!bson_init_static(&entry, static_cast<const uint8_t*>(v.data), v.size)) continue;
    auto c = ParseCatalogEntry(&entry, id);
    next_catalog_id_ = std::max<int64_t>(next_catalog_id_.load(), id + 1);
    loaded.push_back(c);
  }
  cur->reset(cur);
  // Switch journaling of tables to this mode (standalone: journal everything).
  std::set<std::string> unlogged;
  {
    WT_CURSOR* meta = nullptr;
    if (s->open_cursor(s, "metadata:", nullptr, nullptr, &meta) == 0) {
      while (meta->next(meta) == 0) {
        const char* k;
        const char* v;
        meta->get_key(meta, &k);
        meta->get_value(meta, &v);
        std::string key = k;
        if (key.rfind("file:", 0) == 0 && strstr(v, "log=(enabled=false)")) {
          unlogged.insert(key.substr(5, key.size() - 8));  // strip "file:" and ".wt"
        }
      }
      meta->close(meta);
    }
  }
  txn.Commit();
  for (auto& c : loaded) {
    c->logged = !replicated_ || !IsReplicatedNs(c->ns);
    std::vector<std::string> idents = {c->ident};
    for (auto& i : c->indexes) idents.push_back(i.ident);
    for (auto& ident : idents) {
      bool is_unlogged = unlogged.count(ident) > 0;
      if (is_unlogged == !c->logged) continue;
      try {
        engine_.SetTableLogging(ident, c->logged);
      } catch (const std::exception& e) {
        Log(Severity::kWarning, "STORAGE", "could not switch table journaling",
            "{\"ident\":" + JsonQuote(ident) + ",\"error\":" + JsonQuote(e.what()) + "}");
      }
    }
  }
  Txn t2(engine_);
  for (auto& c : loaded) {
    LoadCounters(t2, *c, recount);
    by_ns_[c->ns] = c;
  }
  t2.Commit();
  engine_.AddCheckpointHook([this](Txn& t) { FlushSizes(t); });
}

void Catalog::LoadCounters(Txn& txn, Collection& c, bool recount) {
  c.next_rid = std::make_shared<std::atomic<int64_t>>(1);
  c.num_records = std::make_shared<std::atomic<int64_t>>(0);
  c.data_size = std::make_shared<std::atomic<int64_t>>(0);
  WT_CURSOR* cur = txn.Cursor(c.uri());
  if (cur->prev(cur) == 0) {
    int64_t last;
    cur->get_key(cur, &last);
    *c.next_rid = last + 1;
  }
  cur->reset(cur);
  bool have = false;
  if (!recount) {
    WT_CURSOR* ss = txn.Cursor(kSizeStorerUri);
    std::string key = c.uri();
    WT_ITEM k{key.data(), key.size()};
    ss->set_key(ss, &k);
    if (ss->search(ss) == 0) {
      WT_ITEM v;
      ss->get_value(ss, &v);
      bson_t b;
      if (bson_init_static(&b, static_cast<const uint8_t*>(v.data), v.size)) {
        bson_iter_t it;
        if (bson_iter_init_find(&it, &b, "numRecords")) *c.num_records = bson_iter_as_int64(&it);
        if (bson_iter_init_find(&it, &b, "dataSize")) *c.data_size = bson_iter_as_int64(&it);
        have = true;
      }
    }
    ss->reset(ss);
  }
  if (!have) {
    int64_t n = 0, size = 0;
    while (cur->next(cur) == 0) {
      WT_ITEM v;
      cur->get_value(cur, &v);
      ++n;
      size += v.size;
    }
    cur->reset(cur);
    *c.num_records = n;
    *c.data_size = size;
  }
}

void Catalog::FlushSizes(Txn& txn) {
  WT_CURSOR* ss = txn.Cursor(kSizeStorerUri);
  for (const auto& c : List()) {
    bson_t b = BSON_INITIALIZER;
    BSON_APPEND_INT64(&b, "numRecords", c->num_records->load());
    BSON_APPEND_INT64(&b, "dataSize", c->data_size->load());
    std::string key = c->uri();
    WT_ITEM k{key.data(), key.size()};
    WT_ITEM v{bson_get_data(&b), b.len};
    ss->set_key(ss, &k);
    ss->set_value(ss, &v);
    ss->insert(ss);
    bson_destroy(&b);
  }
  ss->reset(ss);
}

CollectionPtr Catalog::Get(const std::string& ns) const {
  std::shared_lock<std::shared_mutex> l(mu_);
  auto it = by_ns_.find(ns);
  return it == by_ns_.end() ? nullptr : it->second;
}

std::vector<CollectionPtr> Catalog::List(const std::string& db) const {
  std::shared_lock<std::shared_mutex> l(mu_);
  std::vector<CollectionPtr> out;
  for (const auto& [ns, c] : by_ns_) {
    if (db.empty() || c->db == db) out.push_back(c);
  }
  return out;
}

std::vector<std::string> Catalog::Databases() const {
  std::set<std::string> dbs;
  std::shared_lock<std::shared_mutex> l(mu_);
  for (const auto& [ns, c] : by_ns_) dbs.insert(c->db);
  return {dbs.begin(), dbs.end()};
}

void Catalog::Persist(Txn& txn, const Collection& c) {
  Doc entry = BuildCatalogEntry(c);
  WT_CURSOR* cur = txn.Cursor(kCatalogUri);
  cur->set_key(cur, c.catalog_id);
  WT_ITEM v{entry.data(), entry.size()};
  cur->set_value(cur, &v);
  CheckRet(cur->insert(cur), "write _mdb_catalog");
  cur->reset(cur);
}

void Catalog::Publish(std::shared_ptr<Collection> c) {
  std::unique_lock<std::shared_mutex> l(mu_);
  by_ns_[c->ns] = std::move(c);
}

CollectionPtr Catalog::Create(Txn& txn, const std::string& ns, const bson_t* options) {
  if (Get(ns)) throw MongoError(ErrorCode::kNamespaceExists, "Collection " + ns + " already exists.");
  auto c = std::make_shared<Collection>();
  c->ns = ns;
  c->db = DbOf(ns);
  c->oplog = ns == "local.oplog.rs";
  c->logged = !replicated_ || !IsReplicatedNs(ns);
  c->catalog_id = next_catalog_id_++;
  bson_iter_t it;
  if (options && bson_iter_init_find(&it, options, "uuid") && BSON_ITER_HOLDS_BINARY(&it)) {
    bson_subtype_t st;
    uint32_t len;
    const uint8_t* data;
    bson_iter_binary(&it, &st, &len, &data);
    c->uuid.assign(reinterpret_cast<const char*>(data), len);
  } else {
    c->uuid = RandomUuid();
  }
  bson_t* opts = bson_new();
  BSON_APPEND_BINARY(opts, "uuid", BSON_SUBTYPE_UUID,
                     reinterpret_cast<const uint8_t*>(c->uuid.data()), 16);
  if (options && bson_iter_init(&it, options)) {
    while (bson_iter_next(&it)) {
      std::string k = bson_iter_key(&it);
      if (k == "uuid") continue;
      bson_append_value(opts, k.c_str(), -1, bson_iter_value(&it));
      if (k == "capped") c->capped = bson_iter_as_bool(&it);
      if (k == "size") c->capped_size = bson_iter_as_int64(&it);
      if (k == "max") c->capped_max = bson_iter_as_int64(&it);
    }
  }
  c->options = Doc(opts);
  c->ident = engine_.NewIdent("collection", c->db);
  engine_.CreateRecordStore(txn, c->ident, c->logged);
  c->next_rid = std::make_shared<std::atomic<int64_t>>(1);
  c->num_records = std::make_shared<std::atomic<int64_t>>(0);
  c->data_size = std::make_shared<std::atomic<int64_t>>(0);
  {
    // Every collection but the oplog gets an _id index (capped ones too, as since mongod 4.0).
    if (!c->oplog) {
      IndexDesc idx;
      idx.name = "_id_";
      idx.key = Doc::FromJson(R"({"_id": 1})");
      bson_t* spec = bson_new();
      BSON_APPEND_INT32(spec, "v", 2);
      BSON_APPEND_DOCUMENT(spec, "key", idx.key.get());
      BSON_APPEND_UTF8(spec, "name", "_id_");
      idx.spec = Doc(spec);
      idx.unique = true;
      idx.ident = engine_.NewIdent("index", c->db);
      engine_.CreateIndexTable(txn, idx.ident, c->logged);
      c->indexes.push_back(std::move(idx));
    }
  }
  Persist(txn, *c);
  Publish(c);
  return c;
}

void Catalog::Drop(Txn& txn, const std::string& ns) {
  auto c = Get(ns);
  if (!c) throw MongoError(ErrorCode::kNamespaceNotFound, "ns not found");
  WT_CURSOR* cur = txn.Cursor(kCatalogUri);
  cur->set_key(cur, c->catalog_id);
  CheckRet(cur->remove(cur), "remove from _mdb_catalog");
  cur->reset(cur);
  WT_CURSOR* ss = txn.Cursor(kSizeStorerUri);
  std::string key = c->uri();
  WT_ITEM k{key.data(), key.size()};
  ss->set_key(ss, &k);
  ss->remove(ss);
  ss->reset(ss);
  {
    std::unique_lock<std::shared_mutex> l(mu_);
    by_ns_.erase(ns);
  }
  engine_.DropIdent(c->ident);
  for (const auto& i : c->indexes) engine_.DropIdent(i.ident);
}

CollectionPtr Catalog::CreateIndex(Txn& txn, const std::string& ns, const bson_t* spec) {
  auto old = Get(ns);
  if (!old) throw MongoError(ErrorCode::kNamespaceNotFound, "ns not found: " + ns);
  IndexDesc idx;
  bson_iter_t it;
  if (!bson_iter_init_find(&it, spec, "key") || !BSON_ITER_HOLDS_DOCUMENT(&it)) {
    throw MongoError(ErrorCode::kFailedToParse, "The 'key' field is a required property of an index specification");
  }
  uint32_t len;
  const uint8_t* data;
  bson_iter_document(&it, &len, &data);
  idx.key = Doc::FromData(data, len);
  if (idx.key.empty()) throw MongoError(ErrorCode::kCannotCreateIndex, "Index keys cannot be an empty field.");
  bson_iter_t kit;
  bson_iter_init(&kit, idx.key.get());
  while (bson_iter_next(&kit)) {
    if (!BSON_ITER_HOLDS_NUMBER(&kit) || bson_iter_as_double(&kit) == 0) {
      if (BSON_ITER_HOLDS_UTF8(&kit)) {
        throw MongoError(ErrorCode::kCannotCreateIndex,
                         std::string("Unknown index plugin '") + bson_iter_utf8(&kit, nullptr) + "'");
      }
      throw MongoError(ErrorCode::kCannotCreateIndex,
                       "Values in the index key pattern can only be positive or negative numbers");
    }
  }
  if (!bson_iter_init_find(&it, spec, "name") || !BSON_ITER_HOLDS_UTF8(&it)) {
    throw MongoError(ErrorCode::kFailedToParse, "The 'name' field is a required property of an index specification");
  }
  idx.name = bson_iter_utf8(&it, nullptr);
  if (bson_iter_init_find(&it, spec, "unique")) idx.unique = bson_iter_as_bool(&it);
  if (const IndexDesc* same = old->FindIndexByKey(idx.key.get())) {
    if (same->name != idx.name) {
      throw MongoError(ErrorCode::kIndexOptionsConflict,
                       "Index already exists with a different name: " + same->name);
    }
    if (same->unique != idx.unique) {
      throw MongoError(ErrorCode::kIndexKeySpecsConflict,
                       "An existing index has the same name as the requested index. When index "
                       "names are not specified, they are auto generated and can cause conflicts. "
                       "Please refer to our documentation. Requested index: " + ToJson(spec) +
                           ", existing index: " + same->spec.ToJson());
    }
    return old;  // already there: a no-op, as mongod
  }
  if (old->FindIndex(idx.name)) {
    throw MongoError(ErrorCode::kIndexKeySpecsConflict,
                     "An existing index has the same name as the requested index. Requested "
                     "index: " + ToJson(spec) + ", existing index: " +
                         old->FindIndex(idx.name)->spec.ToJson());
  }
  // Normalize the spec as mongod stores it: {v: 2, key, name, ...rest}.
  bson_t* norm = bson_new();
  BSON_APPEND_INT32(norm, "v", 2);
  BSON_APPEND_DOCUMENT(norm, "key", idx.key.get());
  BSON_APPEND_UTF8(norm, "name", idx.name.c_str());
  bson_iter_init(&it, spec);
  while (bson_iter_next(&it)) {
    std::string k = bson_iter_key(&it);
    if (k == "v" || k == "key" || k == "name" || k == "ns") continue;
    bson_append_value(norm, k.c_str(), -1, bson_iter_value(&it));
  }
  idx.spec = Doc(norm);
  idx.ident = engine_.NewIdent("index", old->db);
  engine_.CreateIndexTable(txn, idx.ident, old->logged);
  auto c = std::make_shared<Collection>(*old);
  // Fill from existing documents.
  RecordCursor rc(txn, *c, 1);
  int64_t rid;
  bson_t doc;
  while (rc.Next(&rid, &doc)) InsertIndexKeys(txn, *c, idx, &doc, rid);
  c->indexes.push_back(std::move(idx));
  Persist(txn, *c);
  Publish(c);
  return c;
}

CollectionPtr Catalog::DropIndex(Txn& txn, const std::string& ns, const std::string& name) {
  auto old = Get(ns);
  if (!old) throw MongoError(ErrorCode::kNamespaceNotFound, "ns not found " + ns);
  if (name == "_id_") throw MongoError(ErrorCode::kInvalidOptions, "cannot drop _id index");
  auto c = std::make_shared<Collection>(*old);
  auto it = std::find_if(c->indexes.begin(), c->indexes.end(),
                         [&](const IndexDesc& i) { return i.name == name; });
  if (it == c->indexes.end()) {
    throw MongoError(ErrorCode::kIndexNotFound, "index not found with name [" + name + "]");
  }
  std::string ident = it->ident;
  c->indexes.erase(it);
  Persist(txn, *c);
  Publish(c);
  engine_.DropIdent(ident);
  return c;
}

void Catalog::Rename(Txn& txn, const std::string& from, const std::string& to) {
  auto old = Get(from);
  if (!old) throw MongoError(ErrorCode::kNamespaceNotFound, "source namespace does not exist");
  if (Get(to)) throw MongoError(ErrorCode::kNamespaceExists, "target namespace exists");
  auto c = std::make_shared<Collection>(*old);
  c->ns = to;
  c->db = DbOf(to);
  Persist(txn, *c);
  {
    std::unique_lock<std::shared_mutex> l(mu_);
    by_ns_.erase(from);
    by_ns_[to] = c;
  }
}

// ---------------------------------------------------------------------------------------------
// Records

int64_t InsertRecord(Txn& txn, const Collection& c, const bson_t* doc, int64_t rid) {
  if (rid <= 0) rid = c.next_rid->fetch_add(1);
  else {
    int64_t cur = c.next_rid->load();
    while (cur <= rid && !c.next_rid->compare_exchange_weak(cur, rid + 1)) {
    }
  }
  WT_CURSOR* cur = txn.Cursor(c.uri());
  cur->set_key(cur, rid);
  WT_ITEM v{bson_get_data(doc), doc->len};
  cur->set_value(cur, &v);
  CheckRet(cur->insert(cur), "insert into " + c.ns);
  cur->reset(cur);
  for (const auto& idx : c.indexes) InsertIndexKeys(txn, c, idx, doc, rid);
  *c.num_records += 1;
  *c.data_size += doc->len;
  return rid;
}

void UpdateRecord(Txn& txn, const Collection& c, int64_t rid, const bson_t* old_doc,
                  const bson_t* new_doc) {
  for (const auto& idx : c.indexes) {
    auto old_keys = IndexKeys(idx, old_doc);
    auto new_keys = IndexKeys(idx, new_doc);
    if (old_keys == new_keys) continue;
    RemoveIndexKeys(txn, idx, old_doc, rid);
    InsertIndexKeys(txn, c, idx, new_doc, rid);
  }
  WT_CURSOR* cur = txn.Cursor(c.uri());
  cur->set_key(cur, rid);
  WT_ITEM v{bson_get_data(new_doc), new_doc->len};
  cur->set_value(cur, &v);
  CheckRet(cur->update(cur), "update in " + c.ns);
  cur->reset(cur);
  *c.data_size += static_cast<int64_t>(new_doc->len) - static_cast<int64_t>(old_doc->len);
}

void DeleteRecord(Txn& txn, const Collection& c, int64_t rid, const bson_t* doc) {
  for (const auto& idx : c.indexes) RemoveIndexKeys(txn, idx, doc, rid);
  WT_CURSOR* cur = txn.Cursor(c.uri());
  cur->set_key(cur, rid);
  CheckRet(cur->remove(cur), "delete from " + c.ns);
  cur->reset(cur);
  *c.num_records -= 1;
  *c.data_size -= doc->len;
}

std::optional<Doc> GetRecord(Txn& txn, const Collection& c, int64_t rid) {
  WT_CURSOR* cur = txn.Cursor(c.uri());
  cur->set_key(cur, rid);
  int ret = cur->search(cur);
  if (ret == WT_NOTFOUND) {
    cur->reset(cur);
    return std::nullopt;
  }
  CheckRet(ret, "read " + c.ns);
  WT_ITEM v;
  cur->get_value(cur, &v);
  Doc d = Doc::FromData(static_cast<const uint8_t*>(v.data), v.size);
  cur->reset(cur);
  return d;
}

std::vector<int64_t> LookupIndex(Txn& txn, const Collection& c, const IndexDesc& index,
                                 const std::vector<query::OwnedValue>& values) {
  std::vector<bson_value_t> vals;
  for (auto& v : values) vals.push_back(v.get());
  std::string key = query::EncodeIndexKey(vals, Directions(index.key.get()));
  std::vector<int64_t> out;
  WT_CURSOR* cur = txn.Cursor("table:" + index.ident);
  if (index.unique) {
    WT_ITEM k{key.data(), key.size()};
    cur->set_key(cur, &k);
    if (cur->search(cur) == 0) {
      WT_ITEM v;
      cur->get_value(cur, &v);
      if (v.size == 8) out.push_back(FromBe64(static_cast<const uint8_t*>(v.data)));
    }
  } else {
    WT_ITEM k{key.data(), key.size()};
    cur->set_key(cur, &k);
    int exact;
    int ret = cur->search_near(cur, &exact);
    if (ret == 0 && exact < 0) ret = cur->next(cur);
    while (ret == 0) {
      WT_ITEM got;
      cur->get_key(cur, &got);
      if (got.size != key.size() + 8 || memcmp(got.data, key.data(), key.size()) != 0) break;
      out.push_back(query::DecodeRecordIdSuffix(
          std::string_view(static_cast<const char*>(got.data), got.size)));
      ret = cur->next(cur);
    }
  }
  cur->reset(cur);
  return out;
}

std::optional<std::pair<int64_t, Doc>> FindById(Txn& txn, const Collection& c,
                                                const bson_value_t& id) {
  const IndexDesc* idx = c.FindIndex("_id_");
  if (!idx) return std::nullopt;
  std::vector<query::OwnedValue> vals;
  vals.emplace_back(id);
  auto rids = LookupIndex(txn, c, *idx, vals);
  if (rids.empty()) return std::nullopt;
  auto d = GetRecord(txn, c, rids[0]);
  if (!d) return std::nullopt;
  return std::make_pair(rids[0], std::move(*d));
}

std::vector<Doc> EnforceCap(Txn& txn, const Collection& c) {
  std::vector<Doc> removed;
  if (!c.capped) return removed;
  while ((c.capped_size > 0 && c.data_size->load() > c.capped_size) ||
         (c.capped_max > 0 && c.num_records->load() > c.capped_max)) {
    RecordCursor rc(txn, c, INT64_MIN);
    int64_t rid;
    bson_t doc;
    if (!rc.Next(&rid, &doc)) break;
    Doc copy = Doc::Copy(&doc);
    DeleteRecord(txn, c, rid, copy.get());
    removed.push_back(std::move(copy));
  }
  return removed;
}

UniqueIndexCursor::UniqueIndexCursor(Txn& txn, const IndexDesc& index, std::string after_key,
                                     bool reverse)
    : cur_(txn.Cursor("table:" + index.ident)), after_(std::move(after_key)), reverse_(reverse) {
  cur_->reset(cur_);
}

bool UniqueIndexCursor::Next(std::string* key, int64_t* rid) {
  int ret;
  if (first_ && !after_.empty()) {
    WT_ITEM k{after_.data(), after_.size()};
    cur_->set_key(cur_, &k);
    int exact = 0;
    ret = cur_->search_near(cur_, &exact);
    // Step past the last key already returned (and past a neighbour on the wrong side).
    if (ret == 0 && (exact == 0 || (!reverse_ && exact < 0) || (reverse_ && exact > 0))) {
      ret = reverse_ ? cur_->prev(cur_) : cur_->next(cur_);
    }
  } else {
    ret = reverse_ ? cur_->prev(cur_) : cur_->next(cur_);
  }
  first_ = false;
  if (ret == WT_NOTFOUND) {
    cur_->reset(cur_);
    return false;
  }
  CheckRet(ret, "index scan");
  WT_ITEM k, v;
  cur_->get_key(cur_, &k);
  cur_->get_value(cur_, &v);
  key->assign(static_cast<const char*>(k.data), k.size);
  *rid = v.size == 8 ? FromBe64(static_cast<const uint8_t*>(v.data)) : 0;
  return true;
}

RecordCursor::RecordCursor(Txn& txn, const Collection& c, int64_t start, bool reverse)
    : cur_(txn.Cursor(c.uri())), start_(start), reverse_(reverse) {
  cur_->reset(cur_);
}

bool RecordCursor::Next(int64_t* rid, bson_t* doc) {
  int ret;
  if (first_) {
    first_ = false;
    if (reverse_ && start_ == INT64_MAX) {
      ret = cur_->prev(cur_);
    } else if (!reverse_ && start_ == INT64_MIN) {
      ret = cur_->next(cur_);
    } else {
      cur_->set_key(cur_, start_);
      int exact = 0;
      ret = cur_->search_near(cur_, &exact);
      if (ret == 0) {
        if (!reverse_ && exact < 0) ret = cur_->next(cur_);
        if (reverse_ && exact > 0) ret = cur_->prev(cur_);
      }
    }
  } else {
    ret = reverse_ ? cur_->prev(cur_) : cur_->next(cur_);
  }
  if (ret == WT_NOTFOUND) {
    cur_->reset(cur_);
    return false;
  }
  CheckRet(ret, "scan");
  WT_ITEM v;
  cur_->get_key(cur_, rid);
  cur_->get_value(cur_, &v);
  if (!bson_init_static(doc, static_cast<const uint8_t*>(v.data), v.size)) {
    throw MongoError(ErrorCode::kInvalidBSON, "corrupt record in collection");
  }
  return true;
}

}  // namespace wtm
