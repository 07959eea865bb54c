#include "storage/storage.h"

#include <cstdlib>
#include <nlohmann/json.hpp>

#include "common/error.h"
#include "storage/s3_storage.h"

namespace pbm::storage {

std::string Storage::ReadAll(const std::string& name) const {
  std::unique_ptr<Reader> reader = Open(name);
  std::string out;
  char buf[64 * 1024];
  for (;;) {
    size_t n = reader->Read(buf, sizeof(buf));
    if (n == 0) break;
    out.append(buf, n);
  }
  return out;
}

void Storage::WriteAll(const std::string& name, std::string_view data) {
  std::unique_ptr<Writer> writer = Create(name);
  writer->Write(data.data(), data.size());
  writer->Commit();
}

namespace {

// Checks the components of `s`; the last one may be empty only if `allow_empty_last`.
void ValidateComponents(std::string_view what, std::string_view kind, std::string_view s,
                        bool allow_empty_last) {
  if (s.find('\0') != std::string_view::npos) {
    Fail(ErrorKind::kInvalidArgument, "{}: {} contains a NUL byte", what, kind);
  }
  if (s.find(kTempMarker) != std::string_view::npos) {
    Fail(ErrorKind::kInvalidArgument, "{} {}: {} must not contain \"{}\" (reserved)", what, s, kind,
         kTempMarker);
  }
  if (!s.empty() && s.front() == '/') {
    Fail(ErrorKind::kInvalidArgument, "{} {}: {} must be relative to the storage root", what, s,
         kind);
  }
  size_t start = 0;
  for (;;) {
    size_t slash = s.find('/', start);
    bool last = slash == std::string_view::npos;
    std::string_view component = s.substr(start, last ? std::string_view::npos : slash - start);
    if (component.empty() && !(last && allow_empty_last)) {
      Fail(ErrorKind::kInvalidArgument, "{} \"{}\": {} has an empty path component", what, s, kind);
    }
    if (component == "." || component == "..") {
      Fail(ErrorKind::kInvalidArgument, "{} {}: {} must not contain \"{}\" components", what, s,
           kind, component);
    }
    if (last) break;
    start = slash + 1;
  }
}

}  // namespace

void ValidateObjectName(std::string_view what, std::string_view name) {
  if (name.empty()) Fail(ErrorKind::kInvalidArgument, "{}: empty object name", what);
  ValidateComponents(what, "object name", name, /*allow_empty_last=*/false);
}

void ValidatePrefix(std::string_view what, std::string_view prefix) {
  if (prefix.empty()) return;
  ValidateComponents(what, "prefix", prefix, /*allow_empty_last=*/true);
}

std::unique_ptr<Storage> NewStorageFromConfig(const nlohmann::ordered_json& section) {
  return NewStorageFromConfig(nlohmann::json::parse(section.dump()));
}

std::unique_ptr<Storage> NewStorageFromConfig(const nlohmann::json& section) {
  if (!section.is_object()) {
    Fail(ErrorKind::kInvalidArgument, "storage config: expected a mapping with \"type\", got {}",
         section.type_name());
  }
  auto type_it = section.find("type");
  if (type_it == section.end() || !type_it->is_string()) {
    Fail(ErrorKind::kInvalidArgument,
         "storage config: \"type\" is missing or not a string (expected filesystem or s3)");
  }
  const std::string type = type_it->get<std::string>();
  if (type == "filesystem") {
    auto fs = section.find("filesystem");
    if (fs == section.end() || !fs->is_object()) {
      Fail(ErrorKind::kInvalidArgument,
           "storage config: type filesystem needs a \"filesystem\" section with \"path\"");
    }
    auto path = fs->find("path");
    if (path == fs->end() || !path->is_string() || path->get<std::string>().empty()) {
      Fail(ErrorKind::kInvalidArgument,
           "storage config: \"filesystem.path\" is missing, empty or not a string");
    }
    return NewFilesystemStorage(path->get<std::string>());
  }
  if (type == "s3") {
    auto s3 = section.find("s3");
    if (s3 == section.end() || !s3->is_object()) {
      Fail(ErrorKind::kInvalidArgument,
           "storage config: type s3 needs an \"s3\" section with at least \"bucket\"");
    }
    return NewS3Storage(ParseS3Config(*s3, [](const char* name) -> std::optional<std::string> {
      const char* v = std::getenv(name);
      if (v == nullptr) return std::nullopt;
      return std::string(v);
    }));
  }
  // The other storage types PBM knows.
  if (type == "minio" || type == "azure" || type == "gcs" || type == "oss") {
    Fail(ErrorKind::kInvalidArgument, "storage type {} is not supported yet", type);
  }
  Fail(ErrorKind::kInvalidArgument,
       "storage config: unknown storage type \"{}\" (expected "
       "filesystem or s3)",
       type);
}

nlohmann::ordered_json MaskStorageSecrets(const nlohmann::ordered_json& config) {
  nlohmann::ordered_json out = config;
  if (!out.is_object() || !out.contains("storage") || !out["storage"].is_object()) return out;
  auto& st = out["storage"];
  if (!st.contains("s3") || !st["s3"].is_object()) return out;
  auto& s3 = st["s3"];
  if (s3.contains("credentials") && s3["credentials"].is_object()) {
    for (auto& [k, v] : s3["credentials"].items()) {
      if (v.is_string() && !v.get<std::string>().empty()) v = "***";
    }
  }
  if (s3.contains("serverSideEncryption") && s3["serverSideEncryption"].is_object() &&
      s3["serverSideEncryption"].contains("sseCustomerKey")) {
    s3["serverSideEncryption"]["sseCustomerKey"] = "***";
  }
  return out;
}

}  // namespace pbm::storage
