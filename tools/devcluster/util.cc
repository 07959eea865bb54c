#include "util.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace devcluster {

void WriteFileAtomic(const std::string& path, const std::string& content, unsigned mode) {
  std::string tmp = path + ".tmp." + std::to_string(getpid());
  int fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  if (fd < 0) Fail("write {}: {}", path, std::strerror(errno));
  size_t off = 0;
  while (off < content.size()) {
    ssize_t n = write(fd, content.data() + off, content.size() - off);
    if (n < 0) {
      if (errno == EINTR) continue;
      int e = errno;
      close(fd);
      unlink(tmp.c_str());
      Fail("write {}: {}", path, std::strerror(e));
    }
    off += static_cast<size_t>(n);
  }
  // open() applies the umask; the caller asked for an exact mode (0755 for the entrypoint).
  if (fchmod(fd, mode) != 0 || close(fd) != 0) {
    int e = errno;
    unlink(tmp.c_str());
    Fail("write {}: {}", path, std::strerror(e));
  }
  if (rename(tmp.c_str(), path.c_str()) != 0) {
    int e = errno;
    unlink(tmp.c_str());
    Fail("write {}: rename from {}: {}", path, tmp, std::strerror(e));
  }
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) Fail("read {}: {}", path, std::strerror(errno));
  std::ostringstream os;
  os << in.rdbuf();
  return os.str();
}

void MakeDirs(const std::string& path) {
  std::error_code ec;
  std::filesystem::create_directories(path, ec);
  if (ec) Fail("create directory {}: {}", path, ec.message());
}

std::string AbsolutePath(const std::string& path) {
  return std::filesystem::absolute(path).lexically_normal().string();
}

EventLog::EventLog(const std::string& path, bool echo) : path_(path), echo_(echo) {
  fd_ = open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd_ < 0) Fail("open supervisor log {}: {}", path, std::strerror(errno));
}

EventLog::~EventLog() {
  if (fd_ >= 0) close(fd_);
}

void EventLog::set_echo(bool echo) {
  std::lock_guard<std::mutex> lock(mu_);
  echo_ = echo;
}

void EventLog::Write(const std::string& line) {
  auto now = std::chrono::system_clock::now();
  std::time_t t = std::chrono::system_clock::to_time_t(now);
  int ms = static_cast<int>(
      std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char stamp[32];
  std::strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &tm);
  std::string out = fmt::format("{}.{:03d}Z {}\n", stamp, ms, line);
  std::lock_guard<std::mutex> lock(mu_);
  // One write per line; a short write to a local file is not expected, and a log line must not
  // stop the supervisor, so errors are ignored.
  ssize_t n = write(fd_, out.data(), out.size());
  (void)n;
  if (echo_) {
    n = write(STDERR_FILENO, out.data(), out.size());
    (void)n;
  }
}

}  // namespace devcluster
