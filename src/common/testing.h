// Helpers for the unit tests only (not linked into any program).
#pragma once

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <random>
#include <stdexcept>
#include <string>

namespace pbm::testing {

// A fresh directory under the system's temp directory, removed with everything in it.
class ScratchDir {
 public:
  explicit ScratchDir(const std::string& prefix = "pbm-test") {
    std::string tmpl = (std::filesystem::temp_directory_path() / (prefix + "-XXXXXX")).string();
    if (mkdtemp(tmpl.data()) == nullptr) throw std::runtime_error("mkdtemp " + tmpl);
    path_ = tmpl;
  }
  ~ScratchDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// n pseudo-random bytes (a linear congruential sequence from `seed`): data that neither
// compresses nor contains runs of zeros.
inline std::string Pattern(size_t n, uint32_t seed) {
  std::string s(n, '\0');
  uint32_t x = seed;
  for (char& c : s) {
    x = x * 1664525u + 1013904223u;
    c = static_cast<char>(x >> 24);
  }
  return s;
}

// A loopback port for a test's server, held for this process until it exits: the registry of
// tests/e2e/harness.py (one flock-ed file per port in <tmp>/psmdb-test-ports), so that no other
// test process gets it while a server restarts on it, and below the kernel's ephemeral range
// (32768 and up), where port-0 binds (the restore's temporary mongods, say) never land. If the
// registry cannot be used (another user's directory), ports are only checked to be bindable.
inline int ClaimPort() {
  std::filesystem::path dir = std::filesystem::temp_directory_path() / "psmdb-test-ports";
  std::error_code ec;
  if (std::filesystem::create_directories(dir, ec)) {
    std::filesystem::permissions(
        dir, std::filesystem::perms::all | std::filesystem::perms::sticky_bit, ec);
  }
  std::mt19937 rng(std::random_device{}());
  std::uniform_int_distribution<int> pick(20000, 32000);
  for (int attempt = 0; attempt < 2000; ++attempt) {
    int port = pick(rng);
    // Read-only: flock needs no write access, so any user can lock another's file.
    int fd = ::open((dir / std::to_string(port)).c_str(), O_CREAT | O_RDONLY | O_CLOEXEC, 0644);
    if (fd >= 0 && ::flock(fd, LOCK_EX | LOCK_NB) != 0) {
      ::close(fd);
      continue;
    }
    int s = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bool free = s >= 0 && ::bind(s, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
    if (s >= 0) ::close(s);
    if (free) return port;  // fd stays open: the claim lasts until the process exits
    if (fd >= 0) ::close(fd);
  }
  throw std::runtime_error("no free loopback port in 20000-32000");
}

}  // namespace pbm::testing
