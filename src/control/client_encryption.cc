#include "control/client_encryption.h"

#include <cstdlib>

#include "common/error.h"

namespace pbm::control {

ClientEncryption ParseClientEncryption(const Json& config) {
  ClientEncryption e;
  if (!config.is_object() || !config.contains("backup") || !config["backup"].is_object() ||
      !config["backup"].contains("encryption") || config["backup"]["encryption"].is_null()) {
    return e;
  }
  const Json& j = config["backup"]["encryption"];
  if (!j.is_object()) {
    Fail(ErrorKind::kInvalidArgument,
         "backup.encryption must be a map with keyFile (a path) or keyEnv (a variable name)");
  }
  for (const auto& [k, v] : j.items()) {
    if (k != "keyFile" && k != "keyEnv") {
      Fail(ErrorKind::kInvalidArgument,
           "backup.encryption: unknown key '{}' (allowed: keyFile, keyEnv)", k);
    }
    if (!v.is_string() || v.get<std::string>().empty()) {
      Fail(ErrorKind::kInvalidArgument, "backup.encryption.{} must be a non-empty string", k);
    }
  }
  e.key_file = j.value("keyFile", std::string());
  e.key_env = j.value("keyEnv", std::string());
  if (!e.key_file.empty() && !e.key_env.empty()) {
    Fail(ErrorKind::kInvalidArgument, "backup.encryption: give keyFile or keyEnv, not both");
  }
  if (!e.enabled()) {
    Fail(ErrorKind::kInvalidArgument, "backup.encryption: give keyFile or keyEnv");
  }
  return e;
}

codec::EncryptionKey LoadClientKey(const ClientEncryption& e) {
  if (!e.key_file.empty()) return codec::ReadKeyFile(e.key_file);
  const char* v = std::getenv(e.key_env.c_str());
  if (!v || !*v) {
    Fail(ErrorKind::kInvalidArgument,
         "backup.encryption.keyEnv names {}, which is not set in this pbm-agent's environment",
         e.key_env);
  }
  return codec::ParseKey(v, "environment variable " + e.key_env);
}

}  // namespace pbm::control
