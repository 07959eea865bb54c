// Reading a node's data files for a physical backup.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

namespace pbm::backup {

// The alignment O_DIRECT asks of buffers, offsets and lengths (the largest logical block size
// in common use).
inline constexpr size_t kDirectAlign = 4096;

// A heap buffer aligned to kDirectAlign.
class AlignedBuffer {
 public:
  AlignedBuffer() = default;
  explicit AlignedBuffer(size_t n);  // n: a multiple of kDirectAlign
  char* data() const { return p_.get(); }

 private:
  struct Free {
    void operator()(char* p) const;
  };
  std::unique_ptr<char, Free> p_;
};

// A data file read with O_DIRECT where the filesystem allows it: the disk's DMA fills our
// buffer, with no copy out of the page cache (a fifth of the agent's CPU in an uncompressed
// backup) and without evicting the node's working set from it. Falls back to the page cache
// when O_DIRECT is refused (tmpfs, some network filesystems) or a read is not aligned. The
// kernel writes dirty cached pages of a range back before a direct read of it, so the bytes
// are the same either way.
class SourceFile {
 public:
  explicit SourceFile(const std::string& path);  // throws kIo naming the file
  ~SourceFile();
  SourceFile(const SourceFile&) = delete;
  SourceFile& operator=(const SourceFile&) = delete;

  // Reads [off, off + want) into `buf`, which has room for `want` rounded up to kDirectAlign;
  // returns the bytes read, fewer than `want` only where the file ends.
  size_t ReadAt(char* buf, size_t want, int64_t off);
  bool direct() const { return direct_; }

 private:
  void Buffered();

  std::string path_;
  int fd_ = -1;
  bool direct_ = false;
};

}  // namespace pbm::backup
