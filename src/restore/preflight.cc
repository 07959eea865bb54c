#include "restore/preflight.h"

#include <fmt/format.h>

#include <set>

#include "codec/codec.h"
#include "common/error.h"

namespace pbm::restore {
namespace {

std::string OnOff(bool b) { return b ? "on" : "off"; }

std::string EncryptionDesc(const backup::MongodOptions& o) {
  if (!o.encryption) return "off";
  return o.cipher_mode.empty() ? "on" : fmt::format("on ({})", o.cipher_mode);
}

bool IsHex64(const std::string& s) {
  if (s.size() != 64) return false;
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'))) {
      return false;
    }
  }
  return true;
}

}  // namespace

std::string MajorMinor(const std::string& version) {
  size_t first = version.find('.');
  if (first == std::string::npos) return version.substr(0, version.find_first_of("-+ "));
  size_t second = version.find_first_of(".-+ ", first + 1);
  return version.substr(0, second);
}

bool IsSafeRelativePath(const std::string& name) {
  if (name.empty() || name.front() == '/' || name.find('\0') != std::string::npos) return false;
  size_t start = 0;
  while (true) {
    size_t slash = name.find('/', start);
    std::string_view part(name.data() + start,
                          (slash == std::string::npos ? name.size() : slash) - start);
    if (part.empty() || part == "." || part == "..") return false;
    if (slash == std::string::npos) return true;
    start = slash + 1;
  }
}

std::vector<std::string> CompareNodeOptions(const backup::ReplsetMeta& backup,
                                            const backup::MongodOptions& node,
                                            const std::string& node_version) {
  std::vector<std::string> out;
  const backup::MongodOptions& b = backup.mongod_opts;
  std::string bv = MajorMinor(backup.mongodb_version);
  std::string nv = MajorMinor(node_version);
  if (!bv.empty() && !nv.empty() && bv != nv) {
    out.push_back(fmt::format("version: backup {}, node {} (major.minor must match)", bv, nv));
  }
  if (b.encryption != node.encryption) {
    out.push_back(
        fmt::format("encryption: the backup was taken with encryption {}, this node has it {}",
                    EncryptionDesc(b), EncryptionDesc(node)));
  } else if (b.encryption) {
    if (!b.cipher_mode.empty() && !node.cipher_mode.empty() && b.cipher_mode != node.cipher_mode) {
      out.push_back(fmt::format("encryption cipher mode: backup {}, node {}", b.cipher_mode,
                                node.cipher_mode));
    }
    if (!b.key_check.empty() && !node.key_check.empty() && b.key_check != node.key_check) {
      out.push_back(fmt::format(
          "encryption key: the backup's key check value {} differs from this node's key ({})",
          b.key_check, node.key_check));
    }
  }
  if (b.block_compressor != node.block_compressor) {
    out.push_back(fmt::format("block compressor: backup {}, node {}", b.block_compressor,
                              node.block_compressor));
  }
  if (b.journal_compressor != node.journal_compressor) {
    out.push_back(fmt::format("journal compressor: backup {}, node {}", b.journal_compressor,
                              node.journal_compressor));
  }
  if (b.prefix_compression != node.prefix_compression) {
    out.push_back(fmt::format("prefix compression: backup {}, node {}", OnOff(b.prefix_compression),
                              OnOff(node.prefix_compression)));
  }
  if (b.directory_per_db != node.directory_per_db) {
    out.push_back(fmt::format("directoryPerDB: backup {}, node {}", OnOff(b.directory_per_db),
                              OnOff(node.directory_per_db)));
  }
  if (b.directory_for_indexes != node.directory_for_indexes) {
    out.push_back(fmt::format("directoryForIndexes: backup {}, node {}",
                              OnOff(b.directory_for_indexes), OnOff(node.directory_for_indexes)));
  }
  return out;
}

void CheckCompatible(const std::string& backup_name, const backup::ReplsetMeta& backup,
                     const backup::MongodOptions& node, const std::string& node_version,
                     const std::string& node_name) {
  std::vector<std::string> diffs = CompareNodeOptions(backup, node, node_version);
  if (diffs.empty()) return;
  Fail(ErrorKind::kIncompatible, "backup {} cannot be restored on node {}: {}", backup_name,
       node_name, fmt::join(diffs, "; "));
}

RestorableBackup LoadRestorableBackup(const storage::Storage& storage,
                                      const std::string& backup_name, const std::string& replset) {
  RestorableBackup rb;
  std::string meta_name = backup::MetaObjectName(backup_name);
  if (!storage.Stat(meta_name)) {
    Fail(ErrorKind::kNotFound, "backup {} not found on {} (no {})", backup_name, storage.Describe(),
         meta_name);
  }
  try {
    rb.meta = backup::Json::parse(storage.ReadAll(meta_name)).get<backup::BackupMeta>();
  } catch (const backup::Json::exception& e) {
    Fail(ErrorKind::kCorrupt, "read backup metadata {} on {}: {}", meta_name, storage.Describe(),
         e.what());
  }
  if (rb.meta.type != "physical") {
    Fail(ErrorKind::kInvalidArgument,
         "backup {} is a {} backup; a physical restore needs a physical backup", backup_name,
         rb.meta.type.empty() ? "untyped" : rb.meta.type);
  }
  if (rb.meta.status != "done") {
    Fail(ErrorKind::kInvalidArgument,
         "backup {} is not complete (status \"{}\"{}); only a backup with status \"done\" can be "
         "restored",
         backup_name, rb.meta.status, rb.meta.error.empty() ? "" : ": " + rb.meta.error);
  }
  bool found = false;
  for (const auto& r : rb.meta.replsets) {
    if (r.name == replset) {
      rb.replset = r;
      found = true;
    }
  }
  if (!found) {
    std::vector<std::string> names;
    for (const auto& r : rb.meta.replsets) names.push_back(r.name);
    Fail(ErrorKind::kNotFound, "backup {} has no replset {} (it has: {})", backup_name, replset,
         fmt::join(names, ", "));
  }
  if (rb.replset.last_write_ts.empty()) {
    Fail(ErrorKind::kCorrupt, "backup {} replset {}: no consistent point (last_write_ts)",
         backup_name, replset);
  }
  std::string list_name = backup::FileListObjectName(backup_name, replset);
  if (!storage.Stat(list_name)) {
    Fail(ErrorKind::kNotFound, "backup {} replset {}: file list {} not found on {}", backup_name,
         replset, list_name, storage.Describe());
  }
  try {
    rb.files = backup::Json::parse(storage.ReadAll(list_name)).get<backup::FileList>();
  } catch (const backup::Json::exception& e) {
    Fail(ErrorKind::kCorrupt, "read file list {} on {}: {}", list_name, storage.Describe(),
         e.what());
  }
  if (rb.files.backup != backup_name || rb.files.replset != replset) {
    Fail(ErrorKind::kCorrupt, "file list {} belongs to backup {} replset {}, not {} {}", list_name,
         rb.files.backup, rb.files.replset, backup_name, replset);
  }
  try {
    codec::ParseCodec(rb.files.codec);
  } catch (const Error& e) {
    Fail(ErrorKind::kCorrupt, "file list {}: {}", list_name, e.what());
  }
  if (rb.files.files.empty()) {
    Fail(ErrorKind::kCorrupt, "file list {} lists no files", list_name);
  }
  std::set<std::string> seen;
  for (const auto& f : rb.files.files) {
    if (!IsSafeRelativePath(f.name)) {
      Fail(ErrorKind::kCorrupt,
           "file list {}: file name \"{}\" is not a relative path inside "
           "the dbpath",
           list_name, f.name);
    }
    if (!seen.insert(f.name).second) {
      Fail(ErrorKind::kCorrupt, "file list {}: file {} is listed twice", list_name, f.name);
    }
    if (f.size < 0) {
      Fail(ErrorKind::kCorrupt, "file list {}: file {} has a negative size", list_name, f.name);
    }
    if (!IsHex64(f.sha256)) {
      Fail(ErrorKind::kCorrupt, "file list {}: file {} has no valid SHA-256 (\"{}\")", list_name,
           f.name, f.sha256);
    }
    auto info = storage.Stat(f.object);
    if (!info) {
      Fail(ErrorKind::kCorrupt, "backup {}: object {} of file {} is missing on {}", backup_name,
           f.object, f.name, storage.Describe());
    }
    if (f.stored_size > 0 && info->size != f.stored_size) {
      Fail(ErrorKind::kCorrupt,
           "backup {}: object {} of file {} has {} bytes, the file list says {}", backup_name,
           f.object, f.name, info->size, f.stored_size);
    }
  }
  return rb;
}

}  // namespace pbm::restore
