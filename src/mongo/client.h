// A MongoDB client over the official C driver (libmongoc), with documents as JSON (relaxed
// Extended JSON: Timestamps are {"$timestamp": {t, i}}, UUIDs {"$binary": ...}, dates {"$date"}).
// Only what the product needs: commands, a few CRUD calls, and command cursors kept alive by hand
// (the backup cursor).
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/error.h"

namespace pbm::mongo {

// Ordered: a command's name must stay its first field.
using Json = nlohmann::ordered_json;

// A command the server answered with {ok: 0}: kind from the code (e.g. 11000 → kAlreadyExists).
class CommandError : public Error {
 public:
  CommandError(int code, std::string code_name, const std::string& message);
  int code() const { return code_; }
  const std::string& code_name() const { return code_name_; }

 private:
  int code_;
  std::string code_name_;
};

// A server-side cursor from a command ({cursor: {id, ns, firstBatch}}).
struct CursorBatch {
  int64_t id = 0;  // 0: exhausted
  std::string ns;
  std::vector<Json> docs;
};

class Client {
 public:
  // `uri` as mongodb://...; throws Error(kInvalidArgument) naming what is wrong with it. The
  // password never appears in errors or logs (see redacted_uri()). Thread-safe: a pool.
  explicit Client(const std::string& uri, int timeout_ms = 10000);
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // The URI with any password replaced by "***".
  const std::string& redacted_uri() const { return redacted_; }

  // Runs a command; returns the reply. Throws CommandError for {ok: 0}, Error(kUnavailable) when
  // no server can be reached.
  Json RunCommand(const std::string& db, const Json& cmd) const;

  std::vector<Json> Find(const std::string& db, const std::string& coll, const Json& filter,
                         const Json& options = Json::object()) const;  // sort, limit, projection
  std::optional<Json> FindOne(const std::string& db, const std::string& coll,
                              const Json& filter, const Json& options = Json::object()) const;
  void Insert(const std::string& db, const std::string& coll, const Json& doc) const;
  // Returns the number of documents matched.
  int64_t Update(const std::string& db, const std::string& coll, const Json& filter,
                 const Json& update, bool upsert = false, bool multi = false) const;
  int64_t Delete(const std::string& db, const std::string& coll, const Json& filter,
                 bool multi = true) const;
  // findAndModify returning the new document (nullopt when none matched and no upsert).
  std::optional<Json> FindAndModify(const std::string& db, const std::string& coll,
                                    const Json& filter, const Json& update, bool upsert,
                                    const Json& sort = Json::object()) const;
  void CreateIndex(const std::string& db, const std::string& coll, const Json& keys,
                   const std::string& name, bool unique = false) const;

  // Raw BSON, for logical backups (documents pass through untouched, every BSON type kept).
  // Streams every document of `coll` matching `filter` (find options such as sort, hint,
  // batchSize in `options`) to fn(bytes, length), in the server's order; the bytes are valid
  // only during the call. Throws like RunCommand.
  void FindRaw(const std::string& db, const std::string& coll, const Json& filter,
               const Json& options,
               const std::function<void(const uint8_t*, size_t)>& fn) const;
  // Inserts raw BSON documents in order (w: majority when `majority`); throws CommandError on
  // the first write error.
  void InsertRaw(const std::string& db, const std::string& coll,
                 const std::vector<std::string>& docs, bool majority = false) const;
  // Runs {applyOps: [ops...]} on admin with raw BSON oplog entries; returns the reply.
  Json ApplyOpsRaw(const std::vector<std::string>& ops) const;

  // Command cursors (aggregate with cursor: {}): the first batch, then getMore / killCursors.
  CursorBatch Aggregate(const std::string& db, const Json& aggregate_target,
                        const Json& pipeline) const;
  CursorBatch GetMore(const std::string& db, const std::string& ns, int64_t id,
                      int64_t max_time_ms = 1000) const;
  void KillCursor(const std::string& db, const std::string& ns, int64_t id) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  std::string redacted_;
};

// Timestamps as (seconds, increment), ordered; Json form {"$timestamp": {"t": s, "i": i}}.
struct Timestamp {
  uint32_t t = 0;
  uint32_t i = 0;
  auto operator<=>(const Timestamp&) const = default;
  Json ToJson() const;
  static Timestamp FromJson(const Json& j);  // throws kInvalidArgument when not a timestamp
  std::string ToString() const;             // "1700000000:12"
};

// Relaxed Extended JSON ↔ BSON bytes (exposed for tests and for writing raw BSON files).
std::string JsonToBsonBytes(const Json& j);
Json BsonBytesToJson(const uint8_t* data, size_t len);

}  // namespace pbm::mongo
