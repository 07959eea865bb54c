#include "backup/source_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <new>

#include "common/error.h"

namespace pbm::backup {

AlignedBuffer::AlignedBuffer(size_t n) : p_(static_cast<char*>(std::aligned_alloc(kDirectAlign, n))) {
  if (!p_) throw std::bad_alloc();
}

void AlignedBuffer::Free::operator()(char* p) const { std::free(p); }

SourceFile::SourceFile(const std::string& path) : path_(path) {
  fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_DIRECT);
  direct_ = fd_ >= 0;
  if (!direct_) Buffered();
}

SourceFile::~SourceFile() {
  if (fd_ >= 0) ::close(fd_);
}

size_t SourceFile::ReadAt(char* buf, size_t want, int64_t off) {
  size_t got = 0;
  while (got < want) {
    size_t ask = want - got;
    if (direct_) {
      auto at = reinterpret_cast<uintptr_t>(buf + got);
      if ((off + static_cast<int64_t>(got)) % kDirectAlign != 0 || at % kDirectAlign != 0) {
        Buffered();  // the end of the file came before a block's end, or an unaligned caller
        continue;
      }
      ask = (ask + kDirectAlign - 1) / kDirectAlign * kDirectAlign;
    }
    ssize_t n = ::pread(fd_, buf + got, ask, off + static_cast<int64_t>(got));
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EINVAL && direct_) {
        Buffered();
        continue;
      }
      FailErrno("backup: read " + path_, errno);
    }
    if (n == 0) break;
    got += static_cast<size_t>(n);
  }
  return std::min(got, want);  // a direct read may go past `want` to its block's end
}

void SourceFile::Buffered() {
  if (fd_ >= 0) ::close(fd_);
  direct_ = false;
  fd_ = ::open(path_.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd_ < 0) FailErrno("backup: open " + path_, errno);
  ::posix_fadvise(fd_, 0, 0, POSIX_FADV_SEQUENTIAL);
}

}  // namespace pbm::backup
