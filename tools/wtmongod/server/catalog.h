// Collections and indexes as mongod keeps them: the _mdb_catalog table, one WiredTiger table per
// collection (int64 record id → BSON) and per index (KeyString → record id), and sizeStorer.wt.
#pragma once

#include <bson/bson.h>

#include <atomic>
#include <map>
#include <memory>
#include <optional>
#include <shared_mutex>
#include <string>
#include <vector>

#include "common/doc.h"
#include "query/value.h"
#include "storage/engine.h"

namespace wtm {

using storage::Txn;

struct IndexDesc {
  std::string name;
  Doc spec;  // {v: 2, key: {...}, name: "...", unique: true, ...}
  Doc key;
  bool unique = false;
  std::string ident;
};

// One collection; the descriptor is immutable once published (changes publish a new one).
struct Collection {
  std::string ns;
  std::string db;
  std::string ident;
  Doc options;       // {uuid: UUID, capped: true, size: N, max: N, ...}
  std::string uuid;  // 16 raw bytes
  bool capped = false;
  int64_t capped_size = 0;
  int64_t capped_max = 0;
  bool logged = false;  // journaled (local.* always; everything in standalone mode)
  bool oplog = false;   // local.oplog.rs: record id = the entry's ts
  std::vector<IndexDesc> indexes;
  int64_t catalog_id = 0;

  // Counters kept in memory and flushed to sizeStorer.wt at checkpoints.
  std::shared_ptr<std::atomic<int64_t>> next_rid;
  std::shared_ptr<std::atomic<int64_t>> num_records;
  std::shared_ptr<std::atomic<int64_t>> data_size;

  std::string uri() const { return "table:" + ident; }
  const IndexDesc* FindIndex(const std::string& name) const;
  const IndexDesc* FindIndexByKey(const bson_t* key) const;
};
using CollectionPtr = std::shared_ptr<const Collection>;

class Catalog {
 public:
  // Loads _mdb_catalog and sizeStorer (creating them in a new dbpath). With `replicated`, tables
  // of replicated collections are checkpoint-durable; journaling is switched to match when the
  // node changed mode since the last start. `recount`: recount documents (unclean shutdown).
  Catalog(storage::Engine& engine, bool replicated, bool recount);

  CollectionPtr Get(const std::string& ns) const;
  std::vector<CollectionPtr> List(const std::string& db = "") const;  // sorted by ns
  std::vector<std::string> Databases() const;

  // Schema changes; the caller holds the node's write lock and commits `txn`.
  CollectionPtr Create(Txn& txn, const std::string& ns, const bson_t* options);
  void Drop(Txn& txn, const std::string& ns);
  // Adds an index and fills it from the existing documents (throws DuplicateKey).
  CollectionPtr CreateIndex(Txn& txn, const std::string& ns, const bson_t* spec);
  CollectionPtr DropIndex(Txn& txn, const std::string& ns, const std::string& name);
  // Renames within the catalog (used by applyOps/renameCollection).
  void Rename(Txn& txn, const std::string& from, const std::string& to);

  // Writes the counters of every collection to sizeStorer.wt.
  void FlushSizes(Txn& txn);

 private:
  void Persist(Txn& txn, const Collection& c);
  void Publish(std::shared_ptr<Collection> c);
  void LoadCounters(Txn& txn, Collection& c, bool recount);

  storage::Engine& engine_;
  bool replicated_;
  mutable std::shared_mutex mu_;
  std::map<std::string, CollectionPtr> by_ns_;
  std::atomic<int64_t> next_catalog_id_{1};
};

// Whether a namespace is replicated (not local.*, not config.system.sessions...).
bool IsReplicatedNs(const std::string& ns);
std::string DbOf(const std::string& ns);
std::string CollOf(const std::string& ns);

// ---- Documents of one collection (caller holds the write lock for writes). ----

// Inserts; returns the record id. Maintains every index; throws MongoError(DuplicateKey).
// `rid` > 0 forces the record id (the oplog uses its ts).
int64_t InsertRecord(Txn& txn, const Collection& c, const bson_t* doc, int64_t rid = 0);
void UpdateRecord(Txn& txn, const Collection& c, int64_t rid, const bson_t* old_doc,
                  const bson_t* new_doc);
void DeleteRecord(Txn& txn, const Collection& c, int64_t rid, const bson_t* doc);
// Point lookups.
std::optional<Doc> GetRecord(Txn& txn, const Collection& c, int64_t rid);
std::optional<std::pair<int64_t, Doc>> FindById(Txn& txn, const Collection& c,
                                                const bson_value_t& id);
// Record ids whose key in `index` equals `values` (one per key field).
std::vector<int64_t> LookupIndex(Txn& txn, const Collection& c, const IndexDesc& index,
                                 const std::vector<query::OwnedValue>& values);
// Capped collections: removes the oldest documents beyond size/max. Returns the removed.
std::vector<Doc> EnforceCap(Txn& txn, const Collection& c);

// Iterates a unique index (the _id index) in key order, forward or backward, starting after
// `after_key` ("" = from the start): yields each key and its record id. Serves sorts on _id.
class UniqueIndexCursor {
 public:
  UniqueIndexCursor(Txn& txn, const IndexDesc& index, std::string after_key, bool reverse);
  bool Next(std::string* key, int64_t* rid);

 private:
  WT_CURSOR* cur_;
  std::string after_;
  bool reverse_;
  bool first_ = true;
};

// Iterates records in record-id order from `start` (inclusive), forward or backward.
class RecordCursor {
 public:
  RecordCursor(Txn& txn, const Collection& c, int64_t start, bool reverse = false);
  // Next record; `doc` views memory valid until the next call.
  bool Next(int64_t* rid, bson_t* doc);

 private:
  WT_CURSOR* cur_;
  int64_t start_;
  bool reverse_;
  bool first_ = true;
};

}  // namespace wtm
