#include "server/node.h"

#include <unistd.h>

#include <ctime>

#include "common/error.h"
#include "common/log.h"
#include "query/compare.h"
#include "server/backup_cursor.h"
#include "server/cursors.h"
#include "server/repl.h"

namespace wtm {

uint64_t TsOf(const bson_iter_t* it) {
  if (!BSON_ITER_HOLDS_TIMESTAMP(it)) return 0;
  uint32_t t, i;
  bson_iter_timestamp(it, &t, &i);
  return MakeTs(t, i);
}

void AppendTs(bson_t* b, const char* key, uint64_t ts) {
  bson_append_timestamp(b, key, -1, TsSecs(ts), TsInc(ts));
}

void AppendOpTime(bson_t* b, const char* key, uint64_t ts, int64_t term) {
  bson_t d;
  bson_append_document_begin(b, key, -1, &d);
  AppendTs(&d, "ts", ts);
  BSON_APPEND_INT64(&d, "t", ts == 0 ? -1 : term);
  bson_append_document_end(b, &d);
}

Doc DiffDocuments(const bson_t* old_doc, const bson_t* new_doc) {
  bson_t* out = bson_new();
  BSON_APPEND_INT32(out, "$v", 2);
  bson_t diff, u, i, d;
  BSON_APPEND_DOCUMENT_BEGIN(out, "diff", &diff);
  bool any_d = false, any_u = false, any_i = false;
  bson_t dd = BSON_INITIALIZER, uu = BSON_INITIALIZER, ii = BSON_INITIALIZER;
  bson_iter_t it, other;
  bson_iter_init(&it, old_doc);
  while (bson_iter_next(&it)) {
    if (!bson_iter_init_find(&other, new_doc, bson_iter_key(&it))) {
      BSON_APPEND_BOOL(&dd, bson_iter_key(&it), false);
      any_d = true;
    }
  }
  bson_iter_init(&it, new_doc);
  while (bson_iter_next(&it)) {
    if (bson_iter_init_find(&other, old_doc, bson_iter_key(&it))) {
      const bson_value_t* a = bson_iter_value(&it);
      const bson_value_t* b = bson_iter_value(&other);
      if (a->value_type != b->value_type || query::CompareValues(*a, *b) != 0) {
        bson_append_value(&uu, bson_iter_key(&it), -1, a);
        any_u = true;
      }
    } else {
      bson_append_value(&ii, bson_iter_key(&it), -1, bson_iter_value(&it));
      any_i = true;
    }
  }
  if (any_d) {
    BSON_APPEND_DOCUMENT_BEGIN(&diff, "d", &d);
    bson_concat(&d, &dd);
    bson_append_document_end(&diff, &d);
  }
  if (any_u) {
    BSON_APPEND_DOCUMENT_BEGIN(&diff, "u", &u);
    bson_concat(&u, &uu);
    bson_append_document_end(&diff, &u);
  }
  if (any_i) {
    BSON_APPEND_DOCUMENT_BEGIN(&diff, "i", &i);
    bson_concat(&i, &ii);
    bson_append_document_end(&diff, &i);
  }
  bson_destroy(&dd);
  bson_destroy(&uu);
  bson_destroy(&ii);
  bson_append_document_end(out, &diff);
  return Doc(out);
}

// ---------------------------------------------------------------------------------------------

Node::Node(ServerOptions options) : options_(std::move(options)) {}

Node::~Node() { Shutdown(); }

std::string Node::host_port() const {
  char host[256] = {0};
  gethostname(host, sizeof host - 1);
  return std::string(host) + ":" + std::to_string(options_.port);
}

void Node::Startup() {
  start_time_ = time(nullptr);
  storage::EngineOptions eo;
  eo.dbpath = options_.dbpath;
  eo.directory_per_db = options_.directory_per_db;
  eo.directory_for_indexes = options_.directory_for_indexes;
  eo.block_compressor = options_.block_compressor;
  eo.journal_compressor = options_.journal_compressor;
  eo.prefix_compression = options_.prefix_compression;
  eo.enable_encryption = options_.enable_encryption;
  eo.encryption_key_file = options_.encryption_key_file;
  eo.cipher_mode = options_.encryption_cipher_mode;
  eo.cache_size_gb = options_.cache_size_gb;
  eo.sync_period_secs = options_.sync_period_secs;
  eo.replicated = !options_.repl_set.empty();
  engine_ = storage::Engine::Open(eo);
  catalog_ = std::make_unique<Catalog>(*engine_, eo.replicated, engine_->unclean_start());
  cursors_ = std::make_unique<CursorManager>(*this);
  backup_ = std::make_unique<BackupCursors>(*this);
  repl_ = std::make_unique<Repl>(*this);
  bool recover_standalone = ParameterBool(options_, "recoverFromOplogAsStandalone", false);
  if (eo.replicated || recover_standalone) ReplicationRecovery();
  if (!eo.replicated && recover_standalone) {
    read_only_ = true;
    uint64_t top = TopOfOplog();
    if (top) engine_->SetStableTimestamp(top);
    Log(Severity::kInfo, "REPL",
        "Recovered from the oplog as a standalone; the node is read-only",
        "{\"topOfOplog\":" + std::to_string(top) + "}");
  }
  repl_->Startup();
}

void Node::Shutdown() {
  if (!engine_) return;
  if (repl_) repl_->Shutdown();
  if (cursors_) cursors_->KillAll();
  if (backup_) backup_->CloseAll();
  bool unstable = ParameterBool(options_, "takeUnstableCheckpointOnShutdown", false);
  {
    std::lock_guard<std::mutex> l(write_mu_);
    engine_->Shutdown(unstable);
  }
  repl_.reset();
  backup_.reset();
  cursors_.reset();
  catalog_.reset();
  engine_.reset();
}

uint64_t Node::TopOfOplog() {
  auto oplog = catalog_->Get("local.oplog.rs");
  if (!oplog) return 0;
  storage::Txn txn(*engine_);
  RecordCursor rc(txn, *oplog, INT64_MAX, true);
  int64_t rid;
  bson_t doc;
  if (!rc.Next(&rid, &doc)) return 0;
  return static_cast<uint64_t>(rid);
}

void Node::ReplicationRecovery() {
  auto oplog = catalog_->Get("local.oplog.rs");
  if (!oplog) return;
  uint64_t truncate_after = 0;
  auto tap = catalog_->Get("local.replset.oplogTruncateAfterPoint");
  if (tap) {
    storage::Txn txn(*engine_);
    RecordCursor rc(txn, *tap, INT64_MIN);
    int64_t rid;
    bson_t doc;
    while (rc.Next(&rid, &doc)) {
      bson_iter_t it;
      if (bson_iter_init_find(&it, &doc, "oplogTruncateAfterPoint")) {
        truncate_after = std::max(truncate_after, TsOf(&it));
      }
    }
  }
  uint64_t stable = engine_->recovery_timestamp();
  if (truncate_after) {
    if (stable > truncate_after) {
      throw storage::StorageError(
          "local.replset.oplogTruncateAfterPoint is Timestamp(" +
          std::to_string(TsSecs(truncate_after)) + ", " + std::to_string(TsInc(truncate_after)) +
          "), before the data files' stable checkpoint Timestamp(" + std::to_string(TsSecs(stable)) +
          ", " + std::to_string(TsInc(stable)) +
          "): writes after the point are already in the data and cannot be undone; use a "
          "truncate point at or after the checkpoint");
    }
    std::lock_guard<std::mutex> l(write_mu_);
    storage::Txn txn(*engine_);
    int64_t n = 0;
    {
      std::vector<std::pair<int64_t, Doc>> doomed;
      RecordCursor rc(txn, *oplog, static_cast<int64_t>(truncate_after) + 1);
      int64_t rid;
      bson_t doc;
      while (rc.Next(&rid, &doc)) doomed.emplace_back(rid, Doc::Copy(&doc));
      for (auto& [rid2, d] : doomed) {
        DeleteRecord(txn, *oplog, rid2, d.get());
        ++n;
      }
    }
    // The point is consumed: clear it, as mongod does after recovery.
    {
      std::vector<std::pair<int64_t, Doc>> docs;
      RecordCursor rc(txn, *tap, INT64_MIN);
      int64_t rid;
      bson_t doc;
      while (rc.Next(&rid, &doc)) docs.emplace_back(rid, Doc::Copy(&doc));
      for (auto& [rid2, d] : docs) DeleteRecord(txn, *tap, rid2, d.get());
    }
    txn.Commit();
    Log(Severity::kInfo, "REPL", "Truncated the oplog after the oplogTruncateAfterPoint",
        "{\"truncateAfter\":{\"$timestamp\":{\"t\":" + std::to_string(TsSecs(truncate_after)) +
            ",\"i\":" + std::to_string(TsInc(truncate_after)) + "}},\"removed\":" +
            std::to_string(n) + "}");
  }
  // Replay the oplog after the stable checkpoint: the data tables hold the state as of that
  // checkpoint, the (journaled) oplog holds what came after.
  uint64_t start = stable;
  if (stable == 0) {
    // No stable checkpoint (an unstable one, e.g. takeUnstableCheckpointOnShutdown). mongod then
    // reads appliedThrough (the `begin` optime of local.replset.minvalid): null means the data
    // is consistent with the top of the oplog and nothing is replayed; otherwise it replays from
    // there. mongod always keeps a minvalid document; wtmongod writes none itself, so when there
    // is none (a node that crashed before its first stable checkpoint) it replays the whole
    // oplog, which is idempotent. A minvalid document written by a restore tool (as PBM's
    // physical restore does) gets mongod's rule.
    auto minvalid = catalog_->Get("local.replset.minvalid");
    bool have_minvalid = false;
    uint64_t applied_through = 0;
    if (minvalid) {
      storage::Txn txn(*engine_);
      RecordCursor rc(txn, *minvalid, INT64_MIN);
      int64_t rid;
      bson_t doc;
      while (rc.Next(&rid, &doc)) {
        have_minvalid = true;
        bson_iter_t it, sub;
        if (bson_iter_init_find(&it, &doc, "begin") && BSON_ITER_HOLDS_DOCUMENT(&it) &&
            bson_iter_recurse(&it, &sub) && bson_iter_find(&sub, "ts")) {
          applied_through = std::max(applied_through, TsOf(&sub));
        }
      }
    }
    if (have_minvalid && applied_through == 0) {
      Log(Severity::kInfo, "REPL", "No oplog entries to apply for recovery. appliedThrough is null",
          "{\"topOfOplog\":" + std::to_string(TopOfOplog()) + "}");
      return;
    }
    start = applied_through;
  }
  std::vector<Doc> entries;
  {
    storage::Txn txn(*engine_);
    RecordCursor rc(txn, *oplog, static_cast<int64_t>(start) + 1);
    int64_t rid;
    bson_t doc;
    while (rc.Next(&rid, &doc)) entries.push_back(Doc::Copy(&doc));
  }
  std::lock_guard<std::mutex> l(write_mu_);
  size_t applied = 0;
  for (size_t i = 0; i < entries.size(); i += 500) {
    storage::Txn txn(*engine_);
    for (size_t j = i; j < entries.size() && j < i + 500; ++j) {
      bson_iter_t it;
      uint64_t ts = 0;
      if (bson_iter_init_find(&it, entries[j].get(), "ts")) ts = TsOf(&it);
      txn.SetCommitTimestamp(ts);
      ApplyOplogEntry(txn, entries[j].get());
      ++applied;
    }
    txn.Commit();
  }
  Log(Severity::kInfo, "REPL", "Replication recovery done",
      "{\"stableTimestamp\":" + std::to_string(stable) + ",\"startPoint\":" +
          std::to_string(start) + ",\"applied\":" +
          std::to_string(applied) + "}");
}

void Node::NotifyOplogWrite() {
  {
    std::lock_guard<std::mutex> l(oplog_mu_);
    ++oplog_gen_;
  }
  oplog_cv_.notify_all();
}

uint64_t Node::OplogGeneration() {
  std::lock_guard<std::mutex> l(oplog_mu_);
  return oplog_gen_;
}

void Node::WaitForOplogGeneration(uint64_t seen, std::chrono::steady_clock::time_point deadline) {
  std::unique_lock<std::mutex> l(oplog_mu_);
  oplog_cv_.wait_until(l, deadline, [&] { return oplog_gen_ != seen; });
}

namespace {

bool GetIdValue(const bson_t* doc, bson_value_t* out) {
  bson_iter_t it;
  if (!bson_iter_init_find(&it, doc, "_id")) return false;
  *out = *bson_iter_value(&it);
  return true;
}

// Applies a $v:2 diff (or a $v:1 {$set, $unset}) to `doc`, top-level fields.
Doc ApplyDiff(const bson_t* doc, const bson_t* o) {
  bson_iter_t it;
  const bson_t* empty = nullptr;
  (void)empty;
  bson_t set = BSON_INITIALIZER, unset = BSON_INITIALIZER;
  auto take = [&](const char* path, bson_t* into) {
    bson_iter_t f, child;
    if (bson_iter_init(&f, o) && bson_iter_find_descendant(&f, path, &f) &&
        bson_iter_recurse(&f, &child)) {
      while (bson_iter_next(&child)) {
        bson_append_value(into, bson_iter_key(&child), -1, bson_iter_value(&child));
      }
    }
  };
  if (bson_iter_init_find(&it, o, "diff")) {
    take("diff.u", &set);
    take("diff.i", &set);
    take("diff.d", &unset);
  } else {
    take("$set", &set);
    take("$unset", &unset);
  }
  bson_t* out = bson_new();
  bson_iter_t d, x;
  bson_iter_init(&d, doc);
  while (bson_iter_next(&d)) {
    const char* k = bson_iter_key(&d);
    if (bson_iter_init_find(&x, &unset, k)) continue;
    if (bson_iter_init_find(&x, &set, k)) {
      bson_append_value(out, k, -1, bson_iter_value(&x));
    } else {
      bson_append_value(out, k, -1, bson_iter_value(&d));
    }
  }
  bson_iter_init(&x, &set);
  while (bson_iter_next(&x)) {
    bson_iter_t y;
    if (!bson_iter_init_find(&y, doc, bson_iter_key(&x))) {
      bson_append_value(out, bson_iter_key(&x), -1, bson_iter_value(&x));
    }
  }
  bson_destroy(&set);
  bson_destroy(&unset);
  return Doc(out);
}

Doc SubDoc(const bson_t* b, const char* key) {
  bson_iter_t it;
  if (bson_iter_init_find(&it, b, key) && (BSON_ITER_HOLDS_DOCUMENT(&it) || BSON_ITER_HOLDS_ARRAY(&it))) {
    uint32_t len;
    const uint8_t* data;
    if (BSON_ITER_HOLDS_DOCUMENT(&it)) {
      bson_iter_document(&it, &len, &data);
    } else {
      bson_iter_array(&it, &len, &data);
    }
    return Doc::FromData(data, len);
  }
  return Doc();
}

std::string Utf8(const bson_t* b, const char* key) {
  bson_iter_t it;
  if (bson_iter_init_find(&it, b, key) && BSON_ITER_HOLDS_UTF8(&it)) return bson_iter_utf8(&it, nullptr);
  return "";
}

}  // namespace

void Node::ApplyOplogEntry(storage::Txn& txn, const bson_t* entry) {
  std::string op = Utf8(entry, "op");
  std::string ns = Utf8(entry, "ns");
  Doc o = SubDoc(entry, "o");
  if (op == "n" || op.empty()) return;
  if (op == "c") {
    std::string db = DbOf(ns);
    bson_iter_t it;
    if (!bson_iter_init(&it, o.get()) || !bson_iter_next(&it)) return;
    std::string cmd = bson_iter_key(&it);
    std::string coll = BSON_ITER_HOLDS_UTF8(&it) ? bson_iter_utf8(&it, nullptr) : "";
    if (cmd == "create") {
      if (catalog_->Get(db + "." + coll)) return;
      bson_t opts = BSON_INITIALIZER;
      bson_iter_t f;
      bson_iter_init(&f, o.get());
      while (bson_iter_next(&f)) {
        if (strcmp(bson_iter_key(&f), "create") == 0 || strcmp(bson_iter_key(&f), "idIndex") == 0) continue;
        bson_append_value(&opts, bson_iter_key(&f), -1, bson_iter_value(&f));
      }
      bson_iter_t ui;
      if (bson_iter_init_find(&ui, entry, "ui")) bson_append_value(&opts, "uuid", -1, bson_iter_value(&ui));
      catalog_->Create(txn, db + "." + coll, &opts);
      bson_destroy(&opts);
    } else if (cmd == "drop") {
      if (catalog_->Get(db + "." + coll)) catalog_->Drop(txn, db + "." + coll);
    } else if (cmd == "createIndexes") {
      if (!catalog_->Get(db + "." + coll)) return;
      bson_t spec = BSON_INITIALIZER;
      bson_iter_t f;
      bson_iter_init(&f, o.get());
      while (bson_iter_next(&f)) {
        if (strcmp(bson_iter_key(&f), "createIndexes") == 0) continue;
        bson_append_value(&spec, bson_iter_key(&f), -1, bson_iter_value(&f));
      }
      try {
        catalog_->CreateIndex(txn, db + "." + coll, &spec);
      } catch (const MongoError& e) {
        Log(Severity::kWarning, "REPL", "createIndexes from the oplog failed",
            "{\"error\":" + JsonQuote(e.what()) + "}");
      }
      bson_destroy(&spec);
    } else if (cmd == "dropIndexes") {
      auto c = catalog_->Get(db + "." + coll);
      std::string name = Utf8(o.get(), "index");
      if (c && c->FindIndex(name)) catalog_->DropIndex(txn, db + "." + coll, name);
    } else if (cmd == "dropDatabase") {
      for (const auto& c : catalog_->List(db)) catalog_->Drop(txn, c->ns);
    } else if (cmd == "renameCollection") {
      std::string to = Utf8(o.get(), "to");
      if (catalog_->Get(coll) && !catalog_->Get(to)) catalog_->Rename(txn, coll, to);
    } else if (cmd == "applyOps") {
      bson_iter_t ops, e;
      if (bson_iter_init_find(&ops, o.get(), "applyOps") && bson_iter_recurse(&ops, &e)) {
        while (bson_iter_next(&e)) {
          uint32_t len;
          const uint8_t* data;
          bson_iter_document(&e, &len, &data);
          bson_t sub;
          bson_init_static(&sub, data, len);
          ApplyOplogEntry(txn, &sub);
        }
      }
    }
    return;
  }
  auto c = catalog_->Get(ns);
  if (!c) {
    if (op != "i") return;
    bson_t opts = BSON_INITIALIZER;
    bson_iter_t ui;
    if (bson_iter_init_find(&ui, entry, "ui")) bson_append_value(&opts, "uuid", -1, bson_iter_value(&ui));
    c = catalog_->Create(txn, ns, &opts);
    bson_destroy(&opts);
  }
  if (op == "i") {
    bson_value_t id;
    if (GetIdValue(o.get(), &id)) {
      auto existing = FindById(txn, *c, id);
      if (existing) {
        UpdateRecord(txn, *c, existing->first, existing->second.get(), o.get());
        return;
      }
    }
    InsertRecord(txn, *c, o.get());
    EnforceCap(txn, *c);
  } else if (op == "u") {
    Doc o2 = SubDoc(entry, "o2");
    bson_value_t id;
    if (!GetIdValue(o2.get(), &id)) return;
    auto existing = FindById(txn, *c, id);
    bson_iter_t it;
    bool is_diff = bson_iter_init_find(&it, o.get(), "$v") || bson_iter_init_find(&it, o.get(), "$set") ||
                   bson_iter_init_find(&it, o.get(), "$unset");
    if (!existing) {
      if (!is_diff) InsertRecord(txn, *c, o.get());
      return;
    }
    if (is_diff) {
      Doc updated = ApplyDiff(existing->second.get(), o.get());
      UpdateRecord(txn, *c, existing->first, existing->second.get(), updated.get());
    } else {
      UpdateRecord(txn, *c, existing->first, existing->second.get(), o.get());
    }
  } else if (op == "d") {
    bson_value_t id;
    if (!GetIdValue(o.get(), &id)) return;
    auto existing = FindById(txn, *c, id);
    if (existing) DeleteRecord(txn, *c, existing->first, existing->second.get());
  }
}

// ---------------------------------------------------------------------------------------------

WriteUnit::WriteUnit(Node& node) : node_(node), lock_(node.write_mutex()) {
  if (node.read_only()) {
    throw MongoError(ErrorCode::kIllegalOperation,
                     "Operation not permitted in read-only mode (recoverFromOplogAsStandalone)");
  }
  txn_ = std::make_unique<storage::Txn>(node.engine());
}

WriteUnit::~WriteUnit() {
  if (!committed_) txn_->Abort();
  txn_.reset();
}

uint64_t WriteUnit::Stamp(const std::string& ns) {
  if (!node_.repl().enabled() || !IsReplicatedNs(ns)) return 0;
  if (!node_.repl().IsWritablePrimary()) {
    throw MongoError(ErrorCode::kNotWritablePrimary, "not primary");
  }
  uint64_t ts = node_.repl().NextTimestamp();
  txn_->SetCommitTimestamp(ts);
  last_ts_ = ts;
  return ts;
}

void WriteUnit::WriteOplog(uint64_t ts, const char* op, const std::string& ns,
                           const std::string& ui, const bson_t* o, const bson_t* o2) {
  auto oplog = node_.catalog().Get("local.oplog.rs");
  if (!oplog) return;
  bson_t* e = bson_new();
  BSON_APPEND_UTF8(e, "op", op);
  BSON_APPEND_UTF8(e, "ns", ns.c_str());
  if (ui.size() == 16) {
    BSON_APPEND_BINARY(e, "ui", BSON_SUBTYPE_UUID, reinterpret_cast<const uint8_t*>(ui.data()), 16);
  }
  BSON_APPEND_DOCUMENT(e, "o", o);
  if (o2) BSON_APPEND_DOCUMENT(e, "o2", o2);
  AppendTs(e, "ts", ts);
  BSON_APPEND_INT64(e, "t", node_.repl().term());
  BSON_APPEND_INT64(e, "v", 2);
  struct timeval tv;
  gettimeofday(&tv, nullptr);
  BSON_APPEND_DATE_TIME(e, "wall", static_cast<int64_t>(tv.tv_sec) * 1000 + tv.tv_usec / 1000);
  Doc entry(e);
  InsertRecord(*txn_, *oplog, entry.get(), static_cast<int64_t>(ts));
  EnforceCap(*txn_, *oplog);
}

CollectionPtr WriteUnit::GetOrCreate(const std::string& ns) {
  auto c = node_.catalog().Get(ns);
  if (c) return c;
  if (CollOf(ns).empty() || DbOf(ns).empty()) {
    throw MongoError(ErrorCode::kInvalidNamespace, "Invalid namespace specified '" + ns + "'");
  }
  uint64_t ts = Stamp(ns);
  c = node_.catalog().Create(*txn_, ns, nullptr);
  if (ts) {
    bson_t o = BSON_INITIALIZER;
    BSON_APPEND_UTF8(&o, "create", CollOf(ns).c_str());
    WriteOplog(ts, "c", DbOf(ns) + ".$cmd", c->uuid, &o, nullptr);
    bson_destroy(&o);
  }
  return c;
}

int64_t WriteUnit::Insert(const Collection& c, const bson_t* doc) {
  uint64_t ts = Stamp(c.ns);
  int64_t rid = InsertRecord(*txn_, c, doc);
  if (ts) WriteOplog(ts, "i", c.ns, c.uuid, doc, nullptr);
  EnforceCap(*txn_, c);
  return rid;
}

void WriteUnit::Update(const Collection& c, int64_t rid, const bson_t* old_doc,
                       const bson_t* new_doc, bool replacement) {
  uint64_t ts = Stamp(c.ns);
  UpdateRecord(*txn_, c, rid, old_doc, new_doc);
  if (ts) {
    bson_t o2 = BSON_INITIALIZER;
    bson_iter_t it;
    if (bson_iter_init_find(&it, new_doc, "_id")) bson_append_value(&o2, "_id", 3, bson_iter_value(&it));
    if (replacement) {
      WriteOplog(ts, "u", c.ns, c.uuid, new_doc, &o2);
    } else {
      Doc diff = DiffDocuments(old_doc, new_doc);
      WriteOplog(ts, "u", c.ns, c.uuid, diff.get(), &o2);
    }
    bson_destroy(&o2);
  }
}

void WriteUnit::Delete(const Collection& c, int64_t rid, const bson_t* doc) {
  uint64_t ts = Stamp(c.ns);
  DeleteRecord(*txn_, c, rid, doc);
  if (ts) {
    bson_t o = BSON_INITIALIZER;
    bson_iter_t it;
    if (bson_iter_init_find(&it, doc, "_id")) bson_append_value(&o, "_id", 3, bson_iter_value(&it));
    WriteOplog(ts, "d", c.ns, c.uuid, &o, nullptr);
    bson_destroy(&o);
  }
}

void WriteUnit::LogCommand(const std::string& db, const bson_t* o, const std::string& ui) {
  uint64_t ts = Stamp(db + ".$cmd");
  if (ts) WriteOplog(ts, "c", db + ".$cmd", ui, o, nullptr);
}

void WriteUnit::LogNoop(const bson_t* o) {
  if (!node_.repl().enabled()) return;
  uint64_t ts = node_.repl().NextTimestamp();
  txn_->SetCommitTimestamp(ts);
  last_ts_ = ts;
  WriteOplog(ts, "n", "", "", o, nullptr);
}

void WriteUnit::Commit() {
  txn_->Commit();
  committed_ = true;
  if (last_ts_) {
    node_.repl().OnLocalWrite(last_ts_);
    node_.NotifyOplogWrite();
  }
}

}  // namespace wtm
