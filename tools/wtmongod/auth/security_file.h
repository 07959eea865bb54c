// The internal-authentication key file (security.keyFile / --keyFile), read as mongod reads it.
#pragma once

#include <stdexcept>
#include <string>
#include <vector>

namespace wtm::auth {

// A key file mongod would refuse; what() is mongod's message ("permissions on <file> are too
// open", "invalid char in key file <file>: <c>", ...).
class SecurityFileError : public std::runtime_error {
 public:
  SecurityFileError(int code, const std::string& msg) : std::runtime_error(msg), code_(code) {}
  int code() const { return code_; }  // mongod's error code (30 InvalidPath, 12 UnsupportedFormat)

 private:
  int code_;
};

// Reads the keys of a key file: a YAML string (one key) or a YAML list of strings (several keys,
// for rotation; the first is the one this member sends). Whitespace anywhere in a key is removed.
// The file must not be readable, writable or executable by group or others; each key must be
// 6..1024 base64 characters ([A-Za-z0-9+/=]). Throws SecurityFileError.
std::vector<std::string> ReadSecurityFile(const std::string& path);

}  // namespace wtm::auth
