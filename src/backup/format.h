// What a backup looks like on storage, shared by the backup and restore engines, the CLI and
// the operator:
//   <name>.pbm.json                         the metadata (BackupMeta), written last
//   <name>/<replset>/<path><suffix>         each data file, compressed (suffix per codec)
//   <name>/<replset>/filelist.pbm           the file list (FileList) of that replset
// Names follow PBM: a backup is named by its start time in UTC, "2026-11-23T10:00:00Z".
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace pbm::backup {

// Ordered: a command's name must stay its first field.
using Json = nlohmann::ordered_json;

// A cluster timestamp as PBM writes it in JSON: {"T": seconds, "I": increment}.
struct ClusterTime {
  uint32_t t = 0;
  uint32_t i = 0;
  auto operator<=>(const ClusterTime&) const = default;
  bool empty() const { return t == 0 && i == 0; }
};
void to_json(Json& j, const ClusterTime& ts);
void from_json(const Json& j, ClusterTime& ts);

// One data file of a replset's backup.
struct FileEntry {
  std::string name;           // path relative to the dbpath ("collection-7-1.wt", "journal/WiredTigerLog.0000000001")
  int64_t size = 0;           // bytes of the original (the backup cursor's fileSize)
  int64_t stored_size = 0;    // bytes of the object on storage (compressed)
  std::string sha256;         // hex digest of the original bytes
  std::string object;         // storage object name: "<backup>/<rs>/<name><suffix>"
};
void to_json(Json& j, const FileEntry& f);
void from_json(const Json& j, FileEntry& f);

struct FileList {
  std::string backup;
  std::string replset;
  std::string codec;  // "none" | "gzip" | "zstd" | "lz4" | "snappy"
  std::vector<FileEntry> files;
};
void to_json(Json& j, const FileList& l);
void from_json(const Json& j, FileList& l);

// The node options a physical restore must match (from getCmdLineOpts.parsed, with mongod's
// defaults filled in). Never the key itself: `key_check` identifies it.
struct MongodOptions {
  std::string dbpath;
  bool directory_per_db = false;
  bool directory_for_indexes = false;
  std::string block_compressor = "snappy";
  std::string journal_compressor = "snappy";
  bool prefix_compression = true;
  bool encryption = false;
  std::string cipher_mode;  // "AES256-CBC" | "AES256-GCM" when encrypted
  std::string key_file;     // path on the node (informational)
  std::string key_check;    // key check value of the key (hex), "" when unknown
};
void to_json(Json& j, const MongodOptions& o);
void from_json(const Json& j, MongodOptions& o);

struct Condition {
  int64_t timestamp = 0;  // unix seconds
  std::string status;
  std::string error;
};
void to_json(Json& j, const Condition& c);
void from_json(const Json& j, Condition& c);

struct ReplsetMeta {
  std::string name;
  std::string node;             // host:port the files came from
  std::string status;           // starting | running | dumpDone | done | error
  std::string error;
  ClusterTime first_write_ts;   // the backup cursor's oplogEnd
  ClusterTime last_write_ts;    // the consistent point (extend timestamp)
  ClusterTime checkpoint_ts;
  std::string mongodb_version;  // "6.0.19-16"
  std::string fcv;              // "6.0"
  MongodOptions mongod_opts;
  int64_t files = 0;
  int64_t size = 0;              // stored bytes
  int64_t size_uncompressed = 0;
  // Progress of the copy: bytes of the original files read so far (files in progress included)
  // of the bytes the backup cursor listed, and when the copy began (unix seconds).
  int64_t progress_bytes = 0;
  int64_t progress_total = 0;
  int64_t copy_start_ts = 0;
  std::vector<Condition> conditions;
  // The node's $backupCursor id while the copy runs (0 once it is closed). Recorded so that a
  // later backup can kill the cursor of an agent that died (kill -9) holding it: mongod keeps
  // it open until its idle timeout (10 min) and refuses a second $backupCursor meanwhile.
  int64_t backup_cursor_id = 0;
};
void to_json(Json& j, const ReplsetMeta& r);
void from_json(const Json& j, ReplsetMeta& r);

struct BackupMeta {
  std::string name;
  std::string opid;
  std::string type;  // "physical" | "logical"
  std::string status;
  std::string error;
  std::string compression;
  std::optional<int> compression_level;
  std::string storage;        // the storage's description
  // Client-side encryption of the objects (codec/encrypt.h): "" or "AES256-GCM", and the key
  // check value of the key used (never the key).
  std::string encryption;
  std::string encryption_key_check;
  int64_t start_ts = 0;       // unix seconds
  int64_t last_transition_ts = 0;
  int64_t heartbeat = 0;      // unix seconds, while running
  ClusterTime last_write_ts;  // the consistent point of the whole backup
  std::string mongodb_version;
  std::string fcv;
  std::string pbm_version;
  int64_t size = 0;
  int64_t size_uncompressed = 0;
  std::vector<ReplsetMeta> replsets;
  std::vector<Condition> conditions;
};
void to_json(Json& j, const BackupMeta& b);

// How far a running operation got: bytes done of total, the rate since it began and the time
// left at that rate (-1 when unknown).
struct Progress {
  int64_t bytes_done = 0;
  int64_t bytes_total = 0;
  double bytes_per_sec = 0;
  int64_t eta_secs = -1;
};
// The progress of a backup (its replsets summed) at `now` (unix seconds).
Progress BackupProgress(const BackupMeta& b, int64_t now);
Json ProgressJson(const Progress& p);
// "1.2 GiB of 2.0 GiB (61%), 412 MiB/s, about 3 s left"
std::string ProgressLine(const Progress& p);
std::string HumanBytes(int64_t n);
void from_json(const Json& j, BackupMeta& b);

// Object names.
std::string MetaObjectName(const std::string& backup);  // "<name>.pbm.json"
std::string FileListObjectName(const std::string& backup, const std::string& replset);
// A backup name for a time: "2026-11-23T10:00:00Z".
std::string BackupNameFor(int64_t unix_seconds);
// Whether `name` is a valid backup name (refuses path tricks); for CLI input.
bool IsValidBackupName(const std::string& name);

// A new ObjectId-like id: 24 hex characters, the current unix time then 64 random bits.
std::string NewObjectIdHex();

inline constexpr const char* kPbmVersion = "0.1.0";

}  // namespace pbm::backup
