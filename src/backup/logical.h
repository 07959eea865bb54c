// The logical backup of one replset, run by the agent beside the chosen node (as PBM and
// `mongodump --oplog` do it): note the node's last applied optime (the start), dump every
// collection of every database except local, config and the control collections, as raw BSON
// documents through the codec (and client-side encryption) into one object per collection part,
// with the collection's options and indexes; then capture the oplog from the start to the
// replset's majority point after the dump (the consistent point). Replaying that oplog over the
// dumped documents, which may reflect any moment in between, gives the data as of the
// consistent point.
//
// On storage, beside physical backups' layout (format.h):
//   <backup>/<rs>/<db>/<collection>.<NNNN>.bson<suffix>   documents, parts of kPartBytes
//   <backup>/<rs>/oplog.bson<suffix>                      the captured oplog entries
//   <backup>/<rs>/namespaces.pbm.json                     collections, options, indexes, parts
//   <backup>/<rs>/filelist.pbm                            every object: size, SHA-256 (FileList)
// Collection names are percent-encoded in object names ('%' and '/').
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "backup/format.h"
#include "codec/codec.h"
#include "codec/encrypt.h"
#include "mongo/client.h"
#include "storage/storage.h"

namespace pbm::backup {

inline constexpr int64_t kPartBytes = 512ll << 20;

struct LogicalBackupRequest {
  std::string name;
  std::string replset;
  std::string node;
  codec::Codec codec = codec::Codec::kZstd;
  int level = 3;
  int parallel = 4;  // collections dumped at once
  std::optional<codec::EncryptionKey> encryption_key;
};

// One collection (or view) of a logical backup.
struct NamespaceEntry {
  std::string db;
  std::string coll;
  std::string type;        // "collection" | "view"
  Json options;            // listCollections' options (capped, validator, viewOn...)
  Json indexes;            // listIndexes' specs
  int64_t docs = 0;
  std::vector<std::string> files;  // FileEntry names of its parts, in order
};
void to_json(Json& j, const NamespaceEntry& n);
void from_json(const Json& j, NamespaceEntry& n);

std::string NamespacesObjectName(const std::string& backup, const std::string& replset);
// The FileEntry name of the oplog.
inline constexpr const char* kOplogFileName = "oplog.bson";
// Whether a namespace belongs in a logical backup (not local, config, the control collections,
// system.profile or system.sessions-like internals).
bool IsBackedUpNamespace(const std::string& db, const std::string& coll);

// Dumps the replset through `node` (its agent's mongod) and `cluster` (for the majority point).
// Reports through hooks like the physical engine; returns the replset's metadata (status done,
// first_write_ts = the start, last_write_ts = the consistent point).
ReplsetMeta RunLogicalBackup(const mongo::Client& node, const mongo::Client& cluster,
                             storage::Storage& st, const LogicalBackupRequest& req,
                             const std::function<void(const ReplsetMeta&)>& on_progress,
                             const std::function<bool()>& cancelled);

}  // namespace pbm::backup
