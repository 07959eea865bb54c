#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <nlohmann/json.hpp>
#include <thread>

#include "common/error.h"
#include "common/testing.h"
#include "storage/storage.h"

namespace pbm::storage {
namespace {

namespace fs = std::filesystem;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

// Runs f, expects a pbm::Error of `kind`, returns its message.
std::string ErrorOf(ErrorKind kind, const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), kind) << e.what();
    return e.what();
  }
  ADD_FAILURE() << "no pbm::Error thrown";
  return "";
}

std::vector<std::string> Names(const std::vector<ObjectInfo>& infos) {
  std::vector<std::string> names;
  for (const auto& i : infos) names.push_back(i.name);
  return names;
}

// Every entry (files and directories) under dir, relative, sorted.
std::vector<std::string> DiskEntries(const std::string& dir) {
  std::vector<std::string> out;
  for (const auto& e : fs::recursive_directory_iterator(dir)) {
    out.push_back(fs::relative(e.path(), dir).string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

mode_t ModeOf(const std::string& path) {
  struct stat st;
  EXPECT_EQ(::stat(path.c_str(), &st), 0) << path;
  return st.st_mode & 07777;
}

using pbm::testing::Pattern;

class FsStorageTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/pbm-fs-test-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    root_ = dir_ + "/backups";
    storage_ = NewFilesystemStorage(root_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string dir_;
  std::string root_;
  std::unique_ptr<Storage> storage_;
};

TEST_F(FsStorageTest, WriteCommitReadRoundTrip) {
  int64_t before = ::time(nullptr);
  storage_->WriteAll("2026-01-02T03:04:05Z.pbm.json", R"({"name":"x"})");
  EXPECT_EQ(storage_->ReadAll("2026-01-02T03:04:05Z.pbm.json"), R"({"name":"x"})");

  auto info = storage_->Stat("2026-01-02T03:04:05Z.pbm.json");
  ASSERT_TRUE(info.has_value());
  EXPECT_EQ(info->name, "2026-01-02T03:04:05Z.pbm.json");
  EXPECT_EQ(info->size, 12);
  EXPECT_GE(info->mtime_unix, before - 1);
  EXPECT_LE(info->mtime_unix, ::time(nullptr) + 1);

  // Empty objects are objects too.
  storage_->WriteAll("empty", "");
  EXPECT_EQ(storage_->ReadAll("empty"), "");
  EXPECT_EQ(storage_->Stat("empty")->size, 0);
}

TEST_F(FsStorageTest, LargeObjectStreamedInChunks) {
  const std::string data = Pattern(20 * 1024 * 1024 + 123, 7);
  {
    auto w = storage_->Create("bk/rs0/collection-1.wt");
    for (size_t off = 0; off < data.size(); off += 1 << 20) {
      w->Write(data.data() + off, std::min<size_t>(1 << 20, data.size() - off));
    }
    w->Commit();
  }
  EXPECT_EQ(storage_->Stat("bk/rs0/collection-1.wt")->size, static_cast<int64_t>(data.size()));
  auto r = storage_->Open("bk/rs0/collection-1.wt");
  std::string back;
  std::vector<char> buf(7777);  // odd size: chunk boundaries differ from the writer's
  for (size_t n; (n = r->Read(buf.data(), buf.size())) > 0;) back.append(buf.data(), n);
  EXPECT_EQ(r->Read(buf.data(), buf.size()), 0u);  // stays at end
  EXPECT_TRUE(back == data);
}

TEST_F(FsStorageTest, ZeroBlocksBecomeHolesAndReadBackTheSame) {
  // Zeros in runs that straddle write calls and block boundaries, data with zeros inside a
  // block, and a file ending in zeros; written in aligned pieces (holes) and in 333-byte
  // pieces (written as they come). Every way reads back the same, at the right size.
  std::string data = Pattern(10000, 3);
  data += std::string(3 << 20, '\0');
  data += "x" + std::string(5000, '\0') + "y";
  data += Pattern(4096 * 3, 5);
  data += std::string(1 << 20, '\0');
  for (size_t piece : {size_t{1} << 20, size_t{64} << 10, size_t{333}}) {
    std::string name = "sparse-" + std::to_string(piece);
    auto w = storage_->Create(name);
    for (size_t off = 0; off < data.size(); off += piece) {
      w->Write(data.data() + off, std::min(piece, data.size() - off));
    }
    w->Commit();
    EXPECT_TRUE(storage_->ReadAll(name) == data) << piece;
    EXPECT_EQ(storage_->Stat(name)->size, static_cast<int64_t>(data.size()));
    struct stat st;
    ASSERT_EQ(::stat((root_ + "/" + name).c_str(), &st), 0);
    // With block-aligned writes, most of the 4 MiB of zeros take no blocks (st_blocks counts
    // 512-byte units); unaligned writes are written as they come.
    if (piece % 4096 == 0) EXPECT_LT(st.st_blocks * 512, 1 << 20) << piece;
  }
}

// Pages of `path` in the page cache.
size_t CachedPages(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  EXPECT_GE(fd, 0) << path;
  struct stat st;
  ::fstat(fd, &st);
  size_t page = static_cast<size_t>(::sysconf(_SC_PAGESIZE));
  size_t pages = (static_cast<size_t>(st.st_size) + page - 1) / page;
  void* m = ::mmap(nullptr, static_cast<size_t>(st.st_size), PROT_READ, MAP_SHARED, fd, 0);
  ::close(fd);
  EXPECT_NE(m, MAP_FAILED);
  std::vector<unsigned char> in(pages);
  EXPECT_EQ(::mincore(m, static_cast<size_t>(st.st_size), in.data()), 0);
  ::munmap(m, static_cast<size_t>(st.st_size));
  size_t n = 0;
  for (unsigned char c : in) n += c & 1;
  return n;
}

// An uncompressed backup hands the writer whole aligned megabytes from aligned memory: they go
// to the disk with O_DIRECT (not through the page cache), zero blocks still become holes, and
// an unaligned tail still lands; the object reads back the same.
TEST_F(FsStorageTest, AlignedWritesBypassThePageCache) {
  int probe = ::open((dir_ + "/probe").c_str(), O_WRONLY | O_CREAT | O_DIRECT | O_CLOEXEC, 0600);
  if (probe < 0) GTEST_SKIP() << "this filesystem refuses O_DIRECT; the page cache path is "
                                 "covered by the other tests";
  ::close(probe);
  constexpr size_t kMiB = 1 << 20;
  std::string data = Pattern(4 * kMiB, 7);
  std::memset(data.data() + kMiB, 0, kMiB);  // a megabyte of zeros: a hole
  data += Pattern(1000, 8);                  // an unaligned tail
  char* buf = static_cast<char*>(std::aligned_alloc(4096, kMiB));
  ASSERT_NE(buf, nullptr);
  auto w = storage_->Create("direct");
  for (size_t off = 0; off < data.size(); off += kMiB) {
    size_t n = std::min(kMiB, data.size() - off);
    std::memcpy(buf, data.data() + off, n);
    w->Write(buf, n);
  }
  w->Commit();
  std::free(buf);
  std::string path = root_ + "/direct";
  // The 3 MiB of data went around the cache; only the tail's page may be there.
  EXPECT_LE(CachedPages(path), 1u);
  struct stat st;
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_LT(st.st_blocks * 512, static_cast<blkcnt_t>(4 * kMiB));  // the hole takes no blocks
  EXPECT_TRUE(storage_->ReadAll("direct") == data);
  EXPECT_EQ(storage_->Stat("direct")->size, static_cast<int64_t>(data.size()));
}

TEST_F(FsStorageTest, UncommittedWriterIsInvisibleAndLeavesNothing) {
  {
    auto w = storage_->Create("bk/rs0/a.wt");
    w->Write("partial", 7);
    EXPECT_FALSE(storage_->Stat("bk/rs0/a.wt").has_value());
    EXPECT_TRUE(storage_->List("").empty());
    ErrorOf(ErrorKind::kNotFound, [&] { storage_->Open("bk/rs0/a.wt"); });
    // The data is on disk under a temp name only.
    auto entries = DiskEntries(root_);
    ASSERT_EQ(entries.size(), 3u);  // bk, bk/rs0, the temp file
    EXPECT_THAT(entries[2], HasSubstr("bk/rs0/a.wt~pbmtmp."));
  }
  EXPECT_TRUE(DiskEntries(root_).empty()) << "temp file or directories left behind";
}

TEST_F(FsStorageTest, CommitReplacesTheOldObjectAtomically) {
  storage_->WriteAll("meta.json", "old");
  auto w = storage_->Create("meta.json");
  w->Write("new-content", 11);
  EXPECT_EQ(storage_->ReadAll("meta.json"), "old");
  w->Commit();
  EXPECT_EQ(storage_->ReadAll("meta.json"), "new-content");
  EXPECT_THAT(DiskEntries(root_), ElementsAre("meta.json"));
  // A committed writer cannot be used again.
  ErrorOf(ErrorKind::kInternal, [&] { w->Write("x", 1); });
  ErrorOf(ErrorKind::kInternal, [&] { w->Commit(); });
}

TEST_F(FsStorageTest, FilesAre0600AndDirectories0700) {
  mode_t old_umask = ::umask(0);  // the modes must not depend on a restrictive umask
  auto nested = NewFilesystemStorage(dir_ + "/new/nested/root");
  nested->WriteAll("bk/rs0/a.wt", "data");
  ::umask(old_umask);

  EXPECT_EQ(ModeOf(dir_ + "/new"), 0700u);
  EXPECT_EQ(ModeOf(dir_ + "/new/nested"), 0700u);
  EXPECT_EQ(ModeOf(dir_ + "/new/nested/root"), 0700u);
  EXPECT_EQ(ModeOf(dir_ + "/new/nested/root/bk"), 0700u);
  EXPECT_EQ(ModeOf(dir_ + "/new/nested/root/bk/rs0"), 0700u);
  EXPECT_EQ(ModeOf(dir_ + "/new/nested/root/bk/rs0/a.wt"), 0600u);

  // An uncommitted write's temp file is 0600 as well.
  auto w = storage_->Create("x");
  for (const auto& e : DiskEntries(root_)) EXPECT_EQ(ModeOf(root_ + "/" + e), 0600u) << e;
}

TEST_F(FsStorageTest, ListIsSortedPrefixFilteredAndHidesTempFiles) {
  for (const char* name :
       {"2026-01-03T00:00:00Z.pbm.json", "2026-01-02T00:00:00Z/rs1/a.wt",
        "2026-01-02T00:00:00Z/rs0/b.wt", "2026-01-02T00:00:00Z.pbm.json",
        "2026-01-02T00:00:00Z/rs0/a.wt", ".pbm.restore/r1/rs.rs0/node.h:1.done"}) {
    storage_->WriteAll(name, name);
  }
  auto pending = storage_->Create("2026-01-02T00:00:00Z/rs0/c.wt");
  pending->Write("x", 1);
  ASSERT_EQ(::symlink("/etc/passwd", (root_ + "/link").c_str()), 0);  // not an object

  EXPECT_THAT(Names(storage_->List("")),
              ElementsAre(".pbm.restore/r1/rs.rs0/node.h:1.done", "2026-01-02T00:00:00Z.pbm.json",
                          "2026-01-02T00:00:00Z/rs0/a.wt", "2026-01-02T00:00:00Z/rs0/b.wt",
                          "2026-01-02T00:00:00Z/rs1/a.wt", "2026-01-03T00:00:00Z.pbm.json"));
  EXPECT_THAT(Names(storage_->List("2026-01-02T")),
              ElementsAre("2026-01-02T00:00:00Z.pbm.json", "2026-01-02T00:00:00Z/rs0/a.wt",
                          "2026-01-02T00:00:00Z/rs0/b.wt", "2026-01-02T00:00:00Z/rs1/a.wt"));
  EXPECT_THAT(Names(storage_->List("2026-01-02T00:00:00Z/rs0/")),
              ElementsAre("2026-01-02T00:00:00Z/rs0/a.wt", "2026-01-02T00:00:00Z/rs0/b.wt"));
  EXPECT_THAT(Names(storage_->List("2026-01-02T00:00:00Z/rs")),
              ElementsAre("2026-01-02T00:00:00Z/rs0/a.wt", "2026-01-02T00:00:00Z/rs0/b.wt",
                          "2026-01-02T00:00:00Z/rs1/a.wt"));
  EXPECT_THAT(Names(storage_->List("2026-01-02T00:00:00Z/rs0/a")),
              ElementsAre("2026-01-02T00:00:00Z/rs0/a.wt"));
  EXPECT_TRUE(storage_->List("nothing/").empty());
  EXPECT_TRUE(storage_->List("2026-01-02T00:00:00Z.pbm.json/").empty());

  auto infos = storage_->List("2026-01-03");
  ASSERT_EQ(infos.size(), 1u);
  EXPECT_EQ(infos[0].size, static_cast<int64_t>(std::strlen("2026-01-03T00:00:00Z.pbm.json")));
  EXPECT_GT(infos[0].mtime_unix, 0);
}

TEST_F(FsStorageTest, StatOnlySeesObjects) {
  storage_->WriteAll("bk/rs0/a.wt", "12345");
  EXPECT_EQ(storage_->Stat("bk/rs0/a.wt")->size, 5);
  EXPECT_FALSE(storage_->Stat("bk/rs0/b.wt").has_value());
  EXPECT_FALSE(storage_->Stat("bk/rs0").has_value());         // a directory
  EXPECT_FALSE(storage_->Stat("bk/rs0/a.wt/x").has_value());  // below a file
  EXPECT_FALSE(storage_->Stat("missing/dir/x").has_value());
}

TEST_F(FsStorageTest, OpenRangeReadsTheRequestedBytes) {
  storage_->WriteAll("obj", "0123456789");
  auto read = [&](int64_t off, int64_t len) {
    auto r = storage_->OpenRange("obj", off, len);
    std::string s;
    char buf[3];  // small buffer: several reads per range
    for (size_t n; (n = r->Read(buf, sizeof(buf))) > 0;) s.append(buf, n);
    return s;
  };
  EXPECT_EQ(read(0, 10), "0123456789");
  EXPECT_EQ(read(2, 3), "234");
  EXPECT_EQ(read(8, 100), "89");
  EXPECT_EQ(read(10, 5), "");
  EXPECT_EQ(read(4, 0), "");
  ErrorOf(ErrorKind::kInvalidArgument, [&] { storage_->OpenRange("obj", 11, 1); });
  ErrorOf(ErrorKind::kInvalidArgument, [&] { storage_->OpenRange("obj", -1, 1); });
  ErrorOf(ErrorKind::kInvalidArgument, [&] { storage_->OpenRange("obj", 0, -1); });
  ErrorOf(ErrorKind::kNotFound, [&] { storage_->OpenRange("nope", 0, 1); });
}

TEST_F(FsStorageTest, RemoveDeletesOneObjectAndPrunesEmptyDirectories) {
  storage_->WriteAll("bk/rs0/a.wt", "a");
  storage_->WriteAll("bk/rs0/b.wt", "b");
  storage_->WriteAll("bk/rs1/a.wt", "c");
  storage_->Remove("bk/rs0/a.wt");
  EXPECT_THAT(Names(storage_->List("")), ElementsAre("bk/rs0/b.wt", "bk/rs1/a.wt"));
  storage_->Remove("bk/rs0/a.wt");  // missing: no error
  storage_->Remove("no/such/obj");  // missing directories: no error
  storage_->Remove("bk");           // a directory is not an object: nothing happens
  EXPECT_THAT(Names(storage_->List("")), ElementsAre("bk/rs0/b.wt", "bk/rs1/a.wt"));
  storage_->Remove("bk/rs0/b.wt");
  storage_->Remove("bk/rs1/a.wt");
  EXPECT_TRUE(DiskEntries(root_).empty());
  EXPECT_TRUE(fs::is_directory(root_));  // the root itself stays
}

TEST_F(FsStorageTest, RemovePrefixDeletesEverythingUnderIt) {
  for (const char* name : {"2026-01-02T00:00:00Z.pbm.json", "2026-01-02T00:00:00Z/rs0/a.wt",
                           "2026-01-02T00:00:00Z/rs0/b.wt", "2026-01-02T00:00:00Z/rs1/a.wt",
                           "2026-01-03T00:00:00Z.pbm.json", "2026-01-03T00:00:00Z/rs0/a.wt"}) {
    storage_->WriteAll(name, "x");
  }
  // Leftover of a writer that crashed before Commit.
  std::ofstream(root_ + "/2026-01-02T00:00:00Z/rs0/c.wt~pbmtmp.0123456789abcdef") << "junk";

  storage_->RemovePrefix("2026-01-02T00:00:00Z");
  EXPECT_THAT(Names(storage_->List("")),
              ElementsAre("2026-01-03T00:00:00Z.pbm.json", "2026-01-03T00:00:00Z/rs0/a.wt"));
  EXPECT_THAT(DiskEntries(root_),
              ElementsAre("2026-01-03T00:00:00Z", "2026-01-03T00:00:00Z.pbm.json",
                          "2026-01-03T00:00:00Z/rs0", "2026-01-03T00:00:00Z/rs0/a.wt"));

  storage_->RemovePrefix("2026-01-03T00:00:00Z/rs0/");
  EXPECT_THAT(DiskEntries(root_), ElementsAre("2026-01-03T00:00:00Z.pbm.json"));
  storage_->RemovePrefix("does/not/exist/");  // no error
  storage_->RemovePrefix("");
  EXPECT_TRUE(DiskEntries(root_).empty());
}

TEST_F(FsStorageTest, BadNamesAreRefused) {
  const std::vector<std::string> bad = {
      "",           "/etc/passwd",         "a//b", "a/", "..", "../x", "a/../b", "./a", "a/.",
      "a~pbmtmp.1", std::string("a\0b", 3)};
  for (const std::string& name : bad) {
    SCOPED_TRACE(name);
    ErrorOf(ErrorKind::kInvalidArgument, [&] { storage_->Create(name); });
    ErrorOf(ErrorKind::kInvalidArgument, [&] { storage_->Open(name); });
    ErrorOf(ErrorKind::kInvalidArgument, [&] { storage_->OpenRange(name, 0, 1); });
    ErrorOf(ErrorKind::kInvalidArgument, [&] { storage_->Stat(name); });
    ErrorOf(ErrorKind::kInvalidArgument, [&] { storage_->Remove(name); });
  }
  for (const char* prefix : {"/", "/etc", "../", "a/../", "a//", "./"}) {
    SCOPED_TRACE(prefix);
    ErrorOf(ErrorKind::kInvalidArgument, [&] { storage_->List(prefix); });
    ErrorOf(ErrorKind::kInvalidArgument, [&] { storage_->RemovePrefix(prefix); });
  }
  EXPECT_THAT(ErrorOf(ErrorKind::kInvalidArgument, [&] { storage_->Create("a/../../etc/x"); }),
              HasSubstr("a/../../etc/x"));
  EXPECT_TRUE(DiskEntries(dir_) == std::vector<std::string>{"backups"});
}

TEST_F(FsStorageTest, MissingObjectIsNotFound) {
  std::string msg = ErrorOf(ErrorKind::kNotFound, [&] { storage_->Open("bk/rs0/gone.wt"); });
  EXPECT_THAT(msg, HasSubstr("bk/rs0/gone.wt"));
  EXPECT_THAT(msg, HasSubstr("filesystem:" + root_));
  ErrorOf(ErrorKind::kNotFound, [&] { storage_->ReadAll("gone"); });
  storage_->WriteAll("dir/x", "1");
  ErrorOf(ErrorKind::kNotFound, [&] { storage_->Open("dir"); });  // a directory is no object
}

TEST_F(FsStorageTest, DescribeAndRoot) {
  EXPECT_EQ(storage_->Describe(), "filesystem:" + root_);
  EXPECT_EQ(NewFilesystemStorage(root_ + "//")->Describe(), "filesystem:" + root_);
  EXPECT_EQ(NewFilesystemStorage(dir_ + "/./x/../backups")->Describe(), "filesystem:" + root_);

  std::string cwd = fs::current_path();
  fs::current_path(dir_);
  auto rel = NewFilesystemStorage("relative");
  fs::current_path(cwd);
  EXPECT_EQ(rel->Describe(), "filesystem:" + dir_ + "/relative");

  std::ofstream(dir_ + "/afile") << "x";
  EXPECT_THAT(ErrorOf(ErrorKind::kIo, [&] { NewFilesystemStorage(dir_ + "/afile"); }),
              HasSubstr("afile"));
  ErrorOf(ErrorKind::kInvalidArgument, [&] { NewFilesystemStorage(""); });
}

TEST_F(FsStorageTest, ObjectInPlaceOfADirectoryIsAnIoError) {
  storage_->WriteAll("bk", "a file");
  EXPECT_THAT(ErrorOf(ErrorKind::kIo, [&] { storage_->Create("bk/rs0/a.wt"); }),
              HasSubstr("not a directory"));
}

// Many threads writing, reading and removing objects in the same directories: exercises the
// race between pruning empty directories and creating objects in them.
TEST_F(FsStorageTest, ConcurrentUseFromManyThreads) {
  std::atomic<int> errors{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      try {
        for (int i = 0; i < 150; ++i) {
          std::string name = fmt::format("bk/rs{}/f{}-{}", i % 2, t, i);
          std::string data = fmt::format("{}:{}", t, i);
          storage_->WriteAll(name, data);
          if (storage_->ReadAll(name) != data) ++errors;
          storage_->List("bk/");
          storage_->Remove(name);
        }
      } catch (const std::exception& e) {
        ADD_FAILURE() << e.what();
        ++errors;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(errors.load(), 0);
  EXPECT_TRUE(storage_->List("").empty());
}

// A full disk: a 1 MiB tmpfs in a private mount namespace (we run as root in CI); without the
// privilege, RLIMIT_FSIZE makes writes fail with EFBIG instead.
TEST_F(FsStorageTest, FullDiskIsAnIoErrorAndPublishesNothing) {
  const std::string mnt = dir_ + "/small";
  fs::create_directory(mnt);
  bool mounted = ::unshare(CLONE_NEWNS) == 0 &&
                 ::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) == 0 &&
                 ::mount("tmpfs", mnt.c_str(), "tmpfs", 0, "size=1m,mode=0700") == 0;
  struct rlimit old_limit;
  ::getrlimit(RLIMIT_FSIZE, &old_limit);
  if (!mounted) {
    std::cerr << "cannot mount a tmpfs here; simulating a full disk with RLIMIT_FSIZE\n";
    ::signal(SIGXFSZ, SIG_IGN);
    struct rlimit small = {256 * 1024, old_limit.rlim_max};
    ASSERT_EQ(::setrlimit(RLIMIT_FSIZE, &small), 0);
  }
  auto storage = NewFilesystemStorage(mnt + "/backups");
  const std::string keep = Pattern(100 * 1024, 1);
  storage->WriteAll("bk/meta.json", keep);

  const std::string big = Pattern(2 * 1024 * 1024, 2);
  std::string msg;
  {
    auto w = storage->Create("bk/meta.json");  // an overwrite that cannot fit
    msg = ErrorOf(ErrorKind::kIo, [&] {
      for (size_t off = 0; off < big.size(); off += 64 * 1024)
        w->Write(big.data() + off, 64 * 1024);
    });
    ErrorOf(ErrorKind::kIo, [&] { w->Commit(); });  // a failed writer cannot publish
  }
  EXPECT_THAT(msg, HasSubstr(mnt + "/backups/bk/meta.json"));
  EXPECT_THAT(msg, HasSubstr(mounted ? "storage is full" : "largest file"));

  // The old object is intact, nothing partial is visible, no temp file remains.
  EXPECT_THAT(Names(storage->List("")), ElementsAre("bk/meta.json"));
  EXPECT_TRUE(storage->ReadAll("bk/meta.json") == keep);
  EXPECT_THAT(DiskEntries(mnt + "/backups"), ElementsAre("bk", "bk/meta.json"));
  // The space is free again: a new object fits.
  storage->WriteAll("bk/other", Pattern(200 * 1024, 3));

  if (mounted) {
    EXPECT_EQ(::umount2(mnt.c_str(), MNT_DETACH), 0);
  } else {
    ::setrlimit(RLIMIT_FSIZE, &old_limit);
  }
}

TEST(StorageConfigTest, FilesystemFromPbmLayout) {
  char tmpl[] = "/tmp/pbm-cfg-test-XXXXXX";
  ASSERT_NE(::mkdtemp(tmpl), nullptr);
  std::string dir = tmpl;
  auto s = NewStorageFromConfig(
      nlohmann::json{{"type", "filesystem"}, {"filesystem", {{"path", dir + "/b"}}}});
  EXPECT_EQ(s->Describe(), "filesystem:" + dir + "/b");
  s->WriteAll("x", "y");
  EXPECT_EQ(s->ReadAll("x"), "y");
  fs::remove_all(dir);
}

TEST(StorageConfigTest, ClearErrors) {
  using nlohmann::json;
  EXPECT_THAT(
      ErrorOf(ErrorKind::kInvalidArgument,
              [] {
                NewStorageFromConfig(json{{"type", "azure"}, {"azure", {{"container", "b"}}}});
              }),
      HasSubstr("storage type azure is not supported yet"));
  EXPECT_THAT(ErrorOf(ErrorKind::kInvalidArgument,
                      [] {
                        NewStorageFromConfig(json{{"type", "ftp"}});
                      }),
              HasSubstr("unknown storage type \"ftp\""));
  EXPECT_THAT(ErrorOf(ErrorKind::kInvalidArgument,
                      [] {
                        NewStorageFromConfig(json{{"filesystem", {{"path", "/x"}}}});
                      }),
              HasSubstr("\"type\""));
  EXPECT_THAT(ErrorOf(ErrorKind::kInvalidArgument,
                      [] {
                        NewStorageFromConfig(json{{"type", "filesystem"}});
                      }),
              HasSubstr("\"filesystem\""));
  EXPECT_THAT(
      ErrorOf(ErrorKind::kInvalidArgument,
              [] {
                NewStorageFromConfig(json{{"type", "filesystem"}, {"filesystem", {{"path", ""}}}});
              }),
      HasSubstr("filesystem.path"));
  ErrorOf(ErrorKind::kInvalidArgument, [] { NewStorageFromConfig(json("filesystem")); });
}

}  // namespace
}  // namespace pbm::storage
