// The filesystem driver (see NewFilesystemStorage in storage.h).
//
// Hand-written over POSIX calls rather than std::filesystem because the contract needs what
// std::filesystem does not give: O_EXCL temp files with mode 0600, fsync of files and
// directories, and errno values (ENOSPC → "storage is full") for the messages.
//
// Layout: object "a/b/c" is the file <root>/a/b/c. An uncommitted write of it is the file
// <root>/a/b/c~pbmtmp.<16 hex digits>, renamed onto <root>/a/b/c by Commit.
// No state is shared between calls except the immutable root, so the driver is thread-safe.
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <functional>
#include <random>
#include <thread>

#include "common/error.h"
#include "storage/storage.h"

namespace pbm::storage {
namespace {

// Throws kIo "<what>: <cause>", saying plainly when the medium is out of space.
[[noreturn]] void FailIo(const std::string& what, int e) {
  switch (e) {
    case ENOSPC:
      Fail(ErrorKind::kIo, "{}: storage is full ({})", what, std::strerror(e));
    case EDQUOT:
      Fail(ErrorKind::kIo, "{}: storage quota exceeded ({})", what, std::strerror(e));
    case EFBIG:
      Fail(ErrorKind::kIo, "{}: object exceeds the largest file the storage allows ({})", what,
           std::strerror(e));
    default:
      FailErrno(what, e);
  }
}

// "a/b/c" → "a/b/", "c" → "".
std::string DirPart(std::string_view name) {
  size_t slash = name.rfind('/');
  return slash == std::string_view::npos ? std::string() : std::string(name.substr(0, slash + 1));
}

// Fsyncs a directory so that entries created or renamed in it are durable. Returns 0 or errno.
int SyncDir(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return errno;
  int rc = ::fsync(fd) == 0 ? 0 : errno;
  ::close(fd);
  // Some filesystems cannot fsync a directory; their renames are durable anyway.
  if (rc == EINVAL || rc == ENOTSUP) rc = 0;
  return rc;
}

std::string TempSuffix() {
  thread_local std::mt19937_64 rng([] {
    std::random_device rd;
    return (uint64_t{rd()} << 32) ^ rd() ^ static_cast<uint64_t>(::getpid()) ^
           std::hash<std::thread::id>()(std::this_thread::get_id());
  }());
  return fmt::format("{}.{:016x}", kTempMarker, rng());
}

class FsReader : public Reader {
 public:
  // Takes ownership of fd. remaining < 0: read to the end.
  FsReader(int fd, std::string path, int64_t offset, int64_t remaining)
      : fd_(fd), path_(std::move(path)), pos_(offset), remaining_(remaining) {}
  ~FsReader() override { ::close(fd_); }
  FsReader(const FsReader&) = delete;
  FsReader& operator=(const FsReader&) = delete;

  size_t Read(void* buf, size_t n) override {
    if (remaining_ >= 0) n = static_cast<size_t>(std::min<int64_t>(remaining_, n));
    if (n == 0) return 0;
    for (;;) {
      ssize_t r = ::pread(fd_, buf, n, pos_);
      if (r < 0 && errno == EINTR) continue;
      if (r < 0) FailIo("read " + path_, errno);
      pos_ += r;
      if (remaining_ >= 0) remaining_ -= r;
      return static_cast<size_t>(r);
    }
  }

 private:
  int fd_;
  std::string path_;
  int64_t pos_;
  int64_t remaining_;
};

class FsWriter : public Writer {
 public:
  // Takes ownership of fd, an open temp file at temp_path. on_abandon runs after the temp file
  // of an uncommitted write is removed (to prune directories it left empty).
  FsWriter(int fd, std::string temp_path, std::string path, std::string dir,
           std::function<void()> on_abandon)
      : fd_(fd),
        temp_path_(std::move(temp_path)),
        path_(std::move(path)),
        dir_(std::move(dir)),
        on_abandon_(std::move(on_abandon)) {}
  FsWriter(const FsWriter&) = delete;
  FsWriter& operator=(const FsWriter&) = delete;

  ~FsWriter() override {
    if (dfd_ >= 0) ::close(dfd_);
    if (fd_ >= 0) ::close(fd_);
    if (state_ != State::kCommitted) {
      ::unlink(temp_path_.c_str());
      on_abandon_();
    }
  }

  void Write(const void* data, size_t n) override {
    CheckOpen("write");
    const char* p = static_cast<const char*>(data);
    // Whole blocks of zeros (preallocated journal files, empty pages) become holes, as cp and
    // tar --sparse make them: the object reads back the same and costs no disk writes. Only
    // while the writes stay block-aligned (an uncompressed copy writes whole buffers); a
    // compressed stream, whose zeros are compressed away anyway, is written as it comes.
    if (written_ % static_cast<off_t>(kBlock) == 0) {
      size_t whole = n - n % kBlock;
      PutBlocks(p, whole);
      p += whole;
      n -= whole;
    }
    if (n > 0) {
      WriteAt(p, n);
      hole_at_end_ = false;
    }
    // Start the writeback of what is written so far, without waiting for it, so that the
    // fsync of Commit finds little left to do: the disk works while the copy goes on.
    if (written_ - flushed_ >= kWritebackChunk) {
      ::sync_file_range(fd_, flushed_, written_ - flushed_, SYNC_FILE_RANGE_WRITE);
      flushed_ = written_;
    }
  }

  void Commit() override {
    CheckOpen("commit");
    // A trailing hole has no byte written after it: the size comes from ftruncate.
    if (hole_at_end_ && ::ftruncate(fd_, written_) != 0) Failed("truncate " + path_, errno);
    if (::fsync(fd_) != 0) Failed("sync " + path_, errno);
    if (dfd_ >= 0) {
      ::close(dfd_);
      dfd_ = -1;
    }
    int fd = fd_;
    fd_ = -1;
    if (::close(fd) != 0) Failed("close " + path_, errno);
    if (::rename(temp_path_.c_str(), path_.c_str()) != 0) Failed("publish " + path_, errno);
    state_ = State::kCommitted;
    if (int e = SyncDir(dir_); e != 0)
      FailIo("sync directory " + dir_ + " after publishing " + path_, e);
  }

 private:
  enum class State { kOpen, kFailed, kCommitted };
  static constexpr off_t kWritebackChunk = 8 << 20;
  static constexpr size_t kBlock = 4096;
  // Runs of at least this many aligned bytes from aligned memory go through O_DIRECT.
  static constexpr size_t kDirectMin = 64 << 10;
  off_t written_ = 0;
  off_t flushed_ = 0;
  bool hole_at_end_ = false;
  // A second descriptor of the temp file with O_DIRECT, opened on the first large aligned run
  // (-1 before; -2 when the filesystem refuses it). An uncompressed backup hands over whole
  // aligned megabytes: written directly they skip the copy into the page cache, which was a
  // quarter of the agent's CPU in such a backup, and leave the node's cache alone.
  int dfd_ = -1;

  static bool IsZero(const char* p, size_t n) {
    // The first byte, then the block against itself shifted by one: zero iff all equal p[0].
    return p[0] == 0 && std::memcmp(p, p + 1, n - 1) == 0;
  }

  // `n` is a multiple of kBlock and the file offset is block-aligned: runs of zero blocks are
  // skipped (holes), the rest written in runs.
  void PutBlocks(const char* p, size_t n) {
    size_t i = 0;
    while (i < n) {
      size_t j = i;
      bool zero = IsZero(p + i, kBlock);
      while (j < n && IsZero(p + j, kBlock) == zero) j += kBlock;
      if (zero) {
        written_ += static_cast<off_t>(j - i);
      } else {
        PutRun(p + i, j - i);
      }
      hole_at_end_ = zero;
      i = j;
    }
  }

  // A run of whole blocks at a block-aligned offset.
  void PutRun(const char* p, size_t n) {
    if (n >= kDirectMin && reinterpret_cast<uintptr_t>(p) % kBlock == 0 && dfd_ != -2) {
      if (dfd_ == -1) {
        dfd_ = ::open(temp_path_.c_str(), O_WRONLY | O_DIRECT | O_CLOEXEC);
        if (dfd_ < 0) dfd_ = -2;  // EINVAL on tmpfs and some others: the page cache it is
      }
      if (dfd_ >= 0) {
        ssize_t w;
        do {
          w = ::pwrite(dfd_, p, n, written_);
        } while (w < 0 && errno == EINTR);
        if (w == static_cast<ssize_t>(n)) {
          written_ += w;
          return;
        }
        if (w < 0 && errno != EINVAL) Failed("write " + path_, errno);
        // Refused (or short): the rest of this object goes through the page cache.
        ::close(dfd_);
        dfd_ = -2;
        if (w > 0) {
          written_ += w;
          p += w;
          n -= static_cast<size_t>(w);
        }
      }
    }
    WriteAt(p, n);
  }

  // Through the page cache, at the current end.
  void WriteAt(const char* p, size_t n) {
    while (n > 0) {
      ssize_t w = ::pwrite(fd_, p, n, written_);
      if (w < 0 && errno == EINTR) continue;
      if (w < 0) Failed("write " + path_, errno);
      p += w;
      n -= static_cast<size_t>(w);
      written_ += w;
    }
  }

  void CheckOpen(const char* op) {
    if (state_ == State::kCommitted) {
      Fail(ErrorKind::kInternal, "{} {}: the object was already committed", op, path_);
    }
    if (state_ == State::kFailed) {
      Fail(ErrorKind::kIo, "{} {}: an earlier write of this object failed", op, path_);
    }
  }

  [[noreturn]] void Failed(const std::string& what, int e) {
    state_ = State::kFailed;
    FailIo(what, e);
  }

  int fd_;
  std::string temp_path_;
  std::string path_;
  std::string dir_;
  std::function<void()> on_abandon_;
  State state_ = State::kOpen;
};

class FsStorage : public Storage {
 public:
  explicit FsStorage(std::string root) : root_(std::move(root)) {}

  std::string Describe() const override { return "filesystem:" + root_; }

  std::vector<ObjectInfo> List(const std::string& prefix) const override {
    ValidatePrefix("list", prefix);
    Walk walk;
    WalkDir(DirPart(prefix), prefix, /*include_temp=*/false, walk);
    std::sort(walk.files.begin(), walk.files.end(),
              [](const ObjectInfo& a, const ObjectInfo& b) { return a.name < b.name; });
    return std::move(walk.files);
  }

  std::optional<ObjectInfo> Stat(const std::string& name) const override {
    ValidateObjectName("stat", name);
    struct stat st;
    if (::lstat(Path(name).c_str(), &st) != 0) {
      if (errno == ENOENT || errno == ENOTDIR) return std::nullopt;
      FailIo("stat " + Path(name), errno);
    }
    if (!S_ISREG(st.st_mode)) return std::nullopt;
    return ObjectInfo{name, static_cast<int64_t>(st.st_size), static_cast<int64_t>(st.st_mtime)};
  }

  std::unique_ptr<Reader> Open(const std::string& name) const override {
    ValidateObjectName("open", name);
    int64_t size = 0;
    int fd = OpenForRead("open", name, &size);
    return std::make_unique<FsReader>(fd, Path(name), 0, -1);
  }

  std::unique_ptr<Reader> OpenRange(const std::string& name, int64_t offset,
                                    int64_t length) const override {
    ValidateObjectName("open", name);
    if (offset < 0 || length < 0) {
      Fail(ErrorKind::kInvalidArgument, "open {} ({}): bad range offset {} length {}", name,
           Describe(), offset, length);
    }
    int64_t size = 0;
    int fd = OpenForRead("open", name, &size);
    if (offset > size) {
      ::close(fd);
      Fail(ErrorKind::kInvalidArgument, "open {} ({}): range offset {} is beyond its size {}", name,
           Describe(), offset, size);
    }
    return std::make_unique<FsReader>(fd, Path(name), offset, length);
  }

  std::unique_ptr<Writer> Create(const std::string& name) override {
    ValidateObjectName("create", name);
    const std::string dir_rel = DirPart(name);
    const std::string path = Path(name);
    // Retries cover a concurrent Remove pruning the (then empty) directory between our mkdir
    // and open, and the (astronomically unlikely) collision of two temp names.
    for (int attempt = 0;; ++attempt) {
      std::string temp = path + TempSuffix();
      int fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
      if (fd >= 0) {
        return std::make_unique<FsWriter>(fd, temp, path, Path(dir_rel),
                                          [this, dir_rel] { PruneDirs(dir_rel); });
      }
      int e = errno;
      if (attempt >= 5) FailIo("create " + path, e);
      if (e == ENOENT || e == ENOTDIR) {  // ENOTDIR: MakeDirs names the file in the way
        MakeDirs(name, dir_rel);
      } else if (e != EEXIST) {
        FailIo("create " + path, e);
      }
    }
  }

  void Remove(const std::string& name) override {
    ValidateObjectName("remove", name);
    if (::unlink(Path(name).c_str()) != 0) {
      if (errno == ENOENT || errno == ENOTDIR || errno == EISDIR) return;
      FailIo("remove " + Path(name), errno);
    }
    PruneDirs(DirPart(name));
  }

  void RemovePrefix(const std::string& prefix) override {
    ValidatePrefix("remove", prefix);
    Walk walk;
    WalkDir(DirPart(prefix), prefix, /*include_temp=*/true, walk);
    for (const ObjectInfo& f : walk.files) {
      if (::unlink(Path(f.name).c_str()) != 0 && errno != ENOENT) {
        FailIo("remove " + Path(f.name), errno);
      }
    }
    // Post-order: children before parents. Best effort: a directory a concurrent Create just
    // wrote into stays.
    for (const std::string& dir : walk.dirs) ::rmdir(Path(dir).c_str());
    PruneDirs(DirPart(prefix));
  }

 private:
  struct Walk {
    std::vector<ObjectInfo> files;
    std::vector<std::string> dirs;  // wholly under the prefix, post-order, no trailing '/'
  };

  // root_ + "/" + rel ("" → root_).
  std::string Path(std::string_view rel) const {
    if (rel.empty()) return root_;
    std::string p = root_;
    if (p.back() != '/') p += '/';
    p += rel;
    return p;
  }

  // Collects the regular files under rel_dir ("" or ending in '/') whose names start with
  // prefix, descending only into directories that can hold such names.
  void WalkDir(const std::string& rel_dir, const std::string& prefix, bool include_temp,
               Walk& walk) const {
    const std::string path = Path(rel_dir);
    DIR* dir = ::opendir(path.c_str());
    if (dir == nullptr) {
      // A missing directory holds no objects (also when a concurrent remove got there first).
      if (errno == ENOENT || errno == ENOTDIR) return;
      FailIo("list " + path, errno);
    }
    std::unique_ptr<DIR, int (*)(DIR*)> closer(dir, ::closedir);
    for (;;) {
      errno = 0;
      dirent* entry = ::readdir(dir);
      if (entry == nullptr) {
        if (errno != 0) FailIo("list " + path, errno);
        break;
      }
      std::string_view base = entry->d_name;
      if (base == "." || base == "..") continue;
      std::string rel = rel_dir + std::string(base);
      struct stat st;
      if (::fstatat(::dirfd(dir), entry->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
        if (errno == ENOENT) continue;
        FailIo("stat " + Path(rel), errno);
      }
      if (S_ISDIR(st.st_mode)) {
        std::string sub = rel + "/";
        bool whole = sub.starts_with(prefix);
        if (whole || prefix.starts_with(sub)) {
          WalkDir(sub, prefix, include_temp, walk);
          if (whole) walk.dirs.push_back(rel);
        }
      } else if (S_ISREG(st.st_mode) && rel.starts_with(prefix)) {
        if (!include_temp && base.find(kTempMarker) != std::string_view::npos) continue;
        walk.files.push_back(ObjectInfo{std::move(rel), static_cast<int64_t>(st.st_size),
                                        static_cast<int64_t>(st.st_mtime)});
      }
    }
  }

  // mkdir -p of rel_dir ("" or ending in '/') under the root, mode 0700; each new directory's
  // parent is fsynced so the new entry is durable.
  void MakeDirs(const std::string& name, const std::string& rel_dir) const {
    size_t pos = 0;
    while (pos < rel_dir.size()) {
      size_t slash = rel_dir.find('/', pos);
      std::string sub = rel_dir.substr(0, slash);
      const std::string path = Path(sub);
      if (::mkdir(path.c_str(), 0700) == 0) {
        if (int e = SyncDir(Path(DirPart(sub))); e != 0) FailIo("sync directory of " + path, e);
      } else if (errno == EEXIST) {
        struct stat st;
        if (::stat(path.c_str(), &st) == 0 && !S_ISDIR(st.st_mode)) {
          Fail(ErrorKind::kIo, "create {}: {} exists and is not a directory", Path(name), path);
        }
      } else if (errno != ENOENT) {  // ENOENT: a parent was pruned meanwhile; Create retries
        FailIo("create directory " + path, errno);
      }
      pos = slash + 1;
    }
  }

  // Removes rel_dir and its parents up to (not including) the root while they are empty.
  // Best effort: any failure (ENOTEMPTY above all) stops it.
  void PruneDirs(std::string rel_dir) const {
    while (!rel_dir.empty()) {
      if (rel_dir.back() == '/') rel_dir.pop_back();
      if (::rmdir(Path(rel_dir).c_str()) != 0) return;
      rel_dir = DirPart(rel_dir);
    }
  }

  // Opens name for reading; kNotFound unless it is a regular file.
  int OpenForRead(const char* op, const std::string& name, int64_t* size) const {
    const std::string path = Path(name);
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) {
      if (errno == ENOENT || errno == ENOTDIR || errno == ELOOP) {
        Fail(ErrorKind::kNotFound, "{} {} ({}): object not found", op, name, Describe());
      }
      FailIo(std::string(op) + " " + path, errno);
    }
    struct stat st;
    if (::fstat(fd, &st) != 0) {
      int e = errno;
      ::close(fd);
      FailIo(std::string("stat ") + path, e);
    }
    if (!S_ISREG(st.st_mode)) {
      ::close(fd);
      Fail(ErrorKind::kNotFound, "{} {} ({}): object not found (not a regular file)", op, name,
           Describe());
    }
    *size = st.st_size;
    return fd;
  }

  const std::string root_;  // absolute, normalized, no trailing '/' (unless it is "/")
};

}  // namespace

std::unique_ptr<Storage> NewFilesystemStorage(const std::string& root) {
  if (root.empty()) Fail(ErrorKind::kInvalidArgument, "filesystem storage: empty root path");
  std::error_code ec;
  std::filesystem::path abs = std::filesystem::absolute(root, ec);
  if (ec) FailIo("filesystem storage root " + root, ec.value());
  std::string norm = abs.lexically_normal().string();
  while (norm.size() > 1 && norm.back() == '/') norm.pop_back();

  // mkdir -p with 0700 for every directory we create.
  for (size_t pos = 1; pos <= norm.size(); ++pos) {
    if (pos != norm.size() && norm[pos] != '/') continue;
    std::string sub = norm.substr(0, pos);
    if (::mkdir(sub.c_str(), 0700) != 0 && errno != EEXIST) {
      FailIo("create filesystem storage root " + sub, errno);
    }
  }
  struct stat st;
  if (::stat(norm.c_str(), &st) != 0) FailIo("filesystem storage root " + norm, errno);
  if (!S_ISDIR(st.st_mode)) {
    Fail(ErrorKind::kIo, "filesystem storage root {}: not a directory", norm);
  }
  return std::make_unique<FsStorage>(std::move(norm));
}

}  // namespace pbm::storage
