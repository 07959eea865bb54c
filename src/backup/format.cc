#include "backup/format.h"

#include <fmt/format.h>

#include <chrono>
#include <ctime>
#include <mutex>
#include <random>
#include <regex>

namespace pbm::backup {

void to_json(Json& j, const ClusterTime& ts) { j = Json{{"T", ts.t}, {"I", ts.i}}; }
void from_json(const Json& j, ClusterTime& ts) {
  ts.t = j.value("T", 0u);
  ts.i = j.value("I", 0u);
}

void to_json(Json& j, const FileEntry& f) {
  j = Json{{"name", f.name}, {"size", f.size}, {"stored_size", f.stored_size},
           {"sha256", f.sha256}, {"object", f.object}};
}
void from_json(const Json& j, FileEntry& f) {
  f.name = j.at("name").get<std::string>();
  f.size = j.at("size").get<int64_t>();
  f.stored_size = j.value("stored_size", int64_t{0});
  f.sha256 = j.at("sha256").get<std::string>();
  f.object = j.at("object").get<std::string>();
}

void to_json(Json& j, const FileList& l) {
  j = Json{{"backup", l.backup}, {"replset", l.replset}, {"codec", l.codec}, {"files", l.files}};
}
void from_json(const Json& j, FileList& l) {
  l.backup = j.at("backup").get<std::string>();
  l.replset = j.at("replset").get<std::string>();
  l.codec = j.at("codec").get<std::string>();
  l.files = j.at("files").get<std::vector<FileEntry>>();
}

void to_json(Json& j, const MongodOptions& o) {
  j = Json{{"dbpath", o.dbpath},
           {"directory_per_db", o.directory_per_db},
           {"directory_for_indexes", o.directory_for_indexes},
           {"block_compressor", o.block_compressor},
           {"journal_compressor", o.journal_compressor},
           {"prefix_compression", o.prefix_compression},
           {"encryption", o.encryption},
           {"cipher_mode", o.cipher_mode},
           {"key_file", o.key_file},
           {"key_check", o.key_check}};
}
void from_json(const Json& j, MongodOptions& o) {
  o.dbpath = j.value("dbpath", std::string());
  o.directory_per_db = j.value("directory_per_db", false);
  o.directory_for_indexes = j.value("directory_for_indexes", false);
  o.block_compressor = j.value("block_compressor", std::string("snappy"));
  o.journal_compressor = j.value("journal_compressor", std::string("snappy"));
  o.prefix_compression = j.value("prefix_compression", true);
  o.encryption = j.value("encryption", false);
  o.cipher_mode = j.value("cipher_mode", std::string());
  o.key_file = j.value("key_file", std::string());
  o.key_check = j.value("key_check", std::string());
}

void to_json(Json& j, const Condition& c) {
  j = Json{{"timestamp", c.timestamp}, {"status", c.status}};
  if (!c.error.empty()) j["error"] = c.error;
}
void from_json(const Json& j, Condition& c) {
  c.timestamp = j.value("timestamp", int64_t{0});
  c.status = j.value("status", std::string());
  c.error = j.value("error", std::string());
}

void to_json(Json& j, const ReplsetMeta& r) {
  j = Json{{"name", r.name},
           {"node", r.node},
           {"status", r.status},
           {"first_write_ts", r.first_write_ts},
           {"last_write_ts", r.last_write_ts},
           {"checkpoint_ts", r.checkpoint_ts},
           {"mongodb_version", r.mongodb_version},
           {"fcv", r.fcv},
           {"mongod_opts", r.mongod_opts},
           {"files", r.files},
           {"size", r.size},
           {"size_uncompressed", r.size_uncompressed},
           {"progress_bytes", r.progress_bytes},
           {"progress_total", r.progress_total},
           {"copy_start_ts", r.copy_start_ts},
           {"conditions", r.conditions}};
  if (!r.error.empty()) j["error"] = r.error;
  if (r.backup_cursor_id != 0) j["backup_cursor_id"] = r.backup_cursor_id;
}
void from_json(const Json& j, ReplsetMeta& r) {
  r.name = j.value("name", std::string());
  r.node = j.value("node", std::string());
  r.status = j.value("status", std::string());
  r.error = j.value("error", std::string());
  if (j.contains("first_write_ts")) r.first_write_ts = j["first_write_ts"].get<ClusterTime>();
  if (j.contains("last_write_ts")) r.last_write_ts = j["last_write_ts"].get<ClusterTime>();
  if (j.contains("checkpoint_ts")) r.checkpoint_ts = j["checkpoint_ts"].get<ClusterTime>();
  r.mongodb_version = j.value("mongodb_version", std::string());
  r.fcv = j.value("fcv", std::string());
  if (j.contains("mongod_opts")) r.mongod_opts = j["mongod_opts"].get<MongodOptions>();
  r.files = j.value("files", int64_t{0});
  r.size = j.value("size", int64_t{0});
  r.size_uncompressed = j.value("size_uncompressed", int64_t{0});
  r.progress_bytes = j.value("progress_bytes", int64_t{0});
  r.progress_total = j.value("progress_total", int64_t{0});
  r.copy_start_ts = j.value("copy_start_ts", int64_t{0});
  if (j.contains("conditions")) r.conditions = j["conditions"].get<std::vector<Condition>>();
  r.backup_cursor_id = j.value("backup_cursor_id", int64_t{0});
}

void to_json(Json& j, const BackupMeta& b) {
  j = Json{{"name", b.name},
           {"opid", b.opid},
           {"type", b.type},
           {"status", b.status},
           {"compression", b.compression},
           {"storage", b.storage},
           {"start_ts", b.start_ts},
           {"last_transition_ts", b.last_transition_ts},
           {"hb", b.heartbeat},
           {"last_write_ts", b.last_write_ts},
           {"mongodb_version", b.mongodb_version},
           {"fcv", b.fcv},
           {"pbm_version", b.pbm_version},
           {"size", b.size},
           {"size_uncompressed", b.size_uncompressed},
           {"replsets", b.replsets},
           {"conditions", b.conditions}};
  if (b.compression_level) j["compression_level"] = *b.compression_level;
  if (!b.error.empty()) j["error"] = b.error;
  if (!b.encryption.empty()) {
    j["encryption"] = {{"algorithm", b.encryption}, {"key_check", b.encryption_key_check}};
  }
}
void from_json(const Json& j, BackupMeta& b) {
  b.name = j.at("name").get<std::string>();
  b.opid = j.value("opid", std::string());
  b.type = j.value("type", std::string());
  b.status = j.value("status", std::string());
  b.error = j.value("error", std::string());
  b.compression = j.value("compression", std::string());
  if (j.contains("compression_level") && !j["compression_level"].is_null()) {
    b.compression_level = j["compression_level"].get<int>();
  }
  b.storage = j.value("storage", std::string());
  if (j.contains("encryption") && j["encryption"].is_object()) {
    b.encryption = j["encryption"].value("algorithm", std::string());
    b.encryption_key_check = j["encryption"].value("key_check", std::string());
  }
  b.start_ts = j.value("start_ts", int64_t{0});
  b.last_transition_ts = j.value("last_transition_ts", int64_t{0});
  b.heartbeat = j.value("hb", int64_t{0});
  if (j.contains("last_write_ts")) b.last_write_ts = j["last_write_ts"].get<ClusterTime>();
  b.mongodb_version = j.value("mongodb_version", std::string());
  b.fcv = j.value("fcv", std::string());
  b.pbm_version = j.value("pbm_version", std::string());
  b.size = j.value("size", int64_t{0});
  b.size_uncompressed = j.value("size_uncompressed", int64_t{0});
  if (j.contains("replsets")) b.replsets = j["replsets"].get<std::vector<ReplsetMeta>>();
  if (j.contains("conditions")) b.conditions = j["conditions"].get<std::vector<Condition>>();
}

std::string MetaObjectName(const std::string& backup) { return backup + ".pbm.json"; }

std::string FileListObjectName(const std::string& backup, const std::string& replset) {
  return backup + "/" + replset + "/filelist.pbm";
}

std::string BackupNameFor(int64_t unix_seconds) {
  time_t t = static_cast<time_t>(unix_seconds);
  tm tmv;
  gmtime_r(&t, &tmv);
  char buf[32];
  strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tmv);
  return buf;
}

bool IsValidBackupName(const std::string& name) {
  static const std::regex re(R"(^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z$)");
  return std::regex_match(name, re);
}

std::string NewObjectIdHex() {
  static std::mt19937_64 rng{std::random_device{}()};
  static std::mutex mu;
  std::lock_guard<std::mutex> l(mu);
  auto now = std::chrono::duration_cast<std::chrono::seconds>(
                 std::chrono::system_clock::now().time_since_epoch())
                 .count();
  return fmt::format("{:08x}{:016x}", static_cast<uint32_t>(now), rng());
}

Progress BackupProgress(const BackupMeta& b, int64_t now) {
  Progress p;
  int64_t start = 0;
  for (const auto& r : b.replsets) {
    p.bytes_done += r.progress_bytes;
    p.bytes_total += r.progress_total;
    if (r.copy_start_ts && (!start || r.copy_start_ts < start)) start = r.copy_start_ts;
  }
  if (b.status == "done") p.bytes_done = p.bytes_total;
  if (start && now > start) p.bytes_per_sec = static_cast<double>(p.bytes_done) / (now - start);
  if (p.bytes_per_sec > 0 && p.bytes_total >= p.bytes_done) {
    p.eta_secs = static_cast<int64_t>((p.bytes_total - p.bytes_done) / p.bytes_per_sec + 0.5);
  }
  return p;
}

Json ProgressJson(const Progress& p) {
  return Json{{"bytes_done", p.bytes_done},
              {"bytes_total", p.bytes_total},
              {"bytes_per_sec", static_cast<int64_t>(p.bytes_per_sec)},
              {"eta_secs", p.eta_secs}};
}

std::string HumanBytes(int64_t n) {
  static const char* kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(n);
  int u = 0;
  while (v >= 1024 && u < 4) {
    v /= 1024;
    ++u;
  }
  return u == 0 ? fmt::format("{} B", n) : fmt::format("{:.2f} {}", v, kUnits[u]);
}

std::string ProgressLine(const Progress& p) {
  std::string s = HumanBytes(p.bytes_done);
  if (p.bytes_total > 0) {
    s += fmt::format(" of {} ({}%)", HumanBytes(p.bytes_total),
                     std::min<int64_t>(100, p.bytes_done * 100 / p.bytes_total));
  }
  if (p.bytes_per_sec > 0) s += ", " + HumanBytes(static_cast<int64_t>(p.bytes_per_sec)) + "/s";
  if (p.eta_secs >= 0) s += fmt::format(", about {} s left", p.eta_secs);
  return s;
}

}  // namespace pbm::backup
