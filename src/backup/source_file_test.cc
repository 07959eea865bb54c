#include "backup/source_file.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <string>

#include "common/error.h"
#include "common/testing.h"

namespace pbm::backup {
namespace {

constexpr size_t kMiB = 1 << 20;

class SourceFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = dir_.path() + "/collection-1.wt";
    data_ = testing::Pattern(3 * kMiB + 123, 12345);
    std::ofstream(path_, std::ios::binary).write(data_.data(), static_cast<long>(data_.size()));
  }

  testing::ScratchDir dir_{"source-file"};
  std::string path_, data_;
};

// Whole megabytes, then the file's unaligned end: the same bytes as the file, and the end says
// how many there were.
TEST_F(SourceFileTest, ReadsTheFileInAlignedChunksAndItsUnalignedEnd) {
  SourceFile f(path_);
  AlignedBuffer buf(kMiB);
  std::string back;
  for (int64_t off = 0;; off += kMiB) {
    size_t got = f.ReadAt(buf.data(), kMiB, off);
    back.append(buf.data(), got);
    if (got < kMiB) break;
  }
  EXPECT_EQ(back.size(), data_.size());
  EXPECT_TRUE(back == data_);
}

// The backup cursor lists a size smaller than the file has now (WiredTiger extended it since):
// exactly the listed bytes come back, even where a direct read had to take the whole block.
TEST_F(SourceFileTest, ReadsNoMoreThanAsked) {
  SourceFile f(path_);
  AlignedBuffer buf(kMiB);
  std::memset(buf.data(), 'z', kMiB);
  EXPECT_EQ(f.ReadAt(buf.data(), 1000, 2 * kMiB), 1000u);
  EXPECT_EQ(std::memcmp(buf.data(), data_.data() + 2 * kMiB, 1000), 0);
}

// A caller's unaligned buffer (or offset) cannot go through O_DIRECT: the page cache serves it,
// with the same bytes.
TEST_F(SourceFileTest, UnalignedReadsFallBackToThePageCache) {
  SourceFile f(path_);
  AlignedBuffer buf(2 * kMiB);
  EXPECT_EQ(f.ReadAt(buf.data() + 1, 5000, 77), 5000u);
  EXPECT_FALSE(f.direct());
  EXPECT_EQ(std::memcmp(buf.data() + 1, data_.data() + 77, 5000), 0);
  EXPECT_EQ(f.ReadAt(buf.data(), kMiB, 0), kMiB);
  EXPECT_EQ(std::memcmp(buf.data(), data_.data(), kMiB), 0);
}

// A file shorter than asked returns what it has; reading past its end returns nothing.
TEST_F(SourceFileTest, ShortFileReturnsWhatItHas) {
  SourceFile f(path_);
  AlignedBuffer buf(kMiB);
  EXPECT_EQ(f.ReadAt(buf.data(), kMiB, 3 * kMiB), 123u);
  EXPECT_EQ(f.ReadAt(buf.data(), kMiB, 4 * kMiB), 0u);
}

TEST_F(SourceFileTest, MissingFileIsAnIoErrorNamingIt) {
  try {
    SourceFile f(dir_.path() + "/gone.wt");
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kIo) << e.what();
    EXPECT_NE(std::string(e.what()).find("gone.wt: No such file"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace pbm::backup
