// Small shared pieces of devcluster: its error type, file helpers and the supervisor log.
#pragma once

#include <fmt/format.h>

#include <mutex>
#include <stdexcept>
#include <string>

namespace devcluster {

// Every failure devcluster reports: one line naming the operation, the object and the cause.
class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

template <typename... Args>
[[noreturn]] void Fail(fmt::format_string<Args...> f, Args&&... args) {
  throw Error(fmt::format(f, std::forward<Args>(args)...));
}

// Writes `content` to `path` through a temporary file in the same directory and rename(), so
// readers see the old or the new file, never a partial one. Sets the file's mode to `mode`.
// Throws Error naming the path on failure.
void WriteFileAtomic(const std::string& path, const std::string& content, unsigned mode = 0644);

// Reads a whole file; throws Error naming the path on failure.
std::string ReadFile(const std::string& path);

// mkdir -p; throws Error naming the path on failure.
void MakeDirs(const std::string& path);

// The absolute, lexically normal form of `path` (relative paths are resolved against the cwd).
std::string AbsolutePath(const std::string& path);

// The supervisor log <dir>/devcluster.log: one line per event, each prefixed with a UTC
// timestamp ("2024-05-01T12:00:00.123Z "). Thread-safe; every line is written with one write()
// on an O_APPEND descriptor, so lines never interleave.
class EventLog {
 public:
  // Opens (creates) `path` for appending; with `echo`, every line also goes to stderr.
  // Throws Error if the file cannot be opened.
  EventLog(const std::string& path, bool echo);
  ~EventLog();
  EventLog(const EventLog&) = delete;
  EventLog& operator=(const EventLog&) = delete;

  void Write(const std::string& line);
  template <typename... Args>
  void Writef(fmt::format_string<Args...> f, Args&&... args) {
    Write(fmt::format(f, std::forward<Args>(args)...));
  }
  void set_echo(bool echo);
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  int fd_ = -1;
  bool echo_;
  std::mutex mu_;
};

}  // namespace devcluster
