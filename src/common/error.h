// Errors of the product: one type, a kind for callers that branch on it, and a message that
// names the operation, the object and the cause ("upload 2026-...Z/rs0/x.wt.zst: disk full").
#pragma once

#include <fmt/format.h>

#include <stdexcept>
#include <string>

namespace pbm {

enum class ErrorKind {
  kInvalidArgument,  // bad flag, config value, CR field: the user fixes the input
  kNotFound,         // backup, object, node that does not exist
  kAlreadyExists,    // an object or operation that must not exist yet
  kConflict,         // another operation holds the lock
  kIncompatible,     // backup and node settings differ (encryption, compression, version)
  kCorrupt,          // checksum or size mismatch, unreadable metadata
  kIo,               // local or remote I/O failure
  kUnavailable,      // a node or service cannot be reached (may succeed later)
  kTimeout,
  kCancelled,
  kInternal,
};

const char* ErrorKindName(ErrorKind kind);

class Error : public std::runtime_error {
 public:
  Error(ErrorKind kind, const std::string& message) : std::runtime_error(message), kind_(kind) {}
  ErrorKind kind() const { return kind_; }

 private:
  ErrorKind kind_;
};

// Throws Error(kind, fmt::format(...)).
template <typename... Args>
[[noreturn]] void Fail(ErrorKind kind, fmt::format_string<Args...> f, Args&&... args) {
  throw Error(kind, fmt::format(f, std::forward<Args>(args)...));
}

// "<what>: <strerror(errno_value)>" as an kIo error.
[[noreturn]] void FailErrno(const std::string& what, int errno_value);

}  // namespace pbm
