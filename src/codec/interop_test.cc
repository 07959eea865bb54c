// Interoperability with the command-line tools users restore with by hand: our gzip, zstd and
// lz4 output must decompress with `gzip -d`, `zstd -d` and `lz4 -d`, and their output with ours.
// A test is skipped (with a message) when its tool is not installed.
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "codec/codec.h"
#include "codec/codec_test_util.h"
#include "common/error.h"

namespace pbm::codec {
namespace {

namespace fs = std::filesystem;

bool HaveTool(const std::string& tool) {
  return std::system(fmt::format("command -v {} >/dev/null 2>&1", tool).c_str()) == 0;
}

void WriteFile(const fs::path& p, const std::string& data) {
  std::ofstream f(p, std::ios::binary);
  f.write(data.data(), static_cast<std::streamsize>(data.size()));
  ASSERT_TRUE(f.good()) << p;
}

std::string ReadFile(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  std::ostringstream s;
  s << f.rdbuf();
  return s.str();
}

int Shell(const std::string& cmd) { return std::system(cmd.c_str()); }

struct Tool {
  Codec codec;
  const char* name;
  const char* decompress;  // reads {in}, writes {out}
  const char* compress;    // reads {in}, writes {out}
};

class Interop : public ::testing::TestWithParam<Tool> {
 protected:
  void SetUp() override {
    if (!HaveTool(GetParam().name)) {
      GTEST_SKIP() << GetParam().name << " is not installed (Debian package " << GetParam().name
                   << ")";
    }
    dir_ = fs::path(::testing::TempDir()) /
           fmt::format("codec_interop_{}_{}", GetParam().name, getpid());
    fs::create_directories(dir_);
    data_ = testing::DocumentLike(3 << 20, 21) + testing::RandomBytes(1 << 20, 22) +
            testing::DocumentLike(100000, 23);
  }
  void TearDown() override {
    if (!dir_.empty()) fs::remove_all(dir_);
  }

  std::string Run(const char* pattern, const fs::path& in, const fs::path& out) {
    return fmt::format(fmt::runtime(pattern), fmt::arg("in", in.string()),
                       fmt::arg("out", out.string()));
  }

  fs::path dir_;
  std::string data_;
};

TEST_P(Interop, ToolReadsOurOutput) {
  const Tool& t = GetParam();
  for (int level : {1, ResolveLevel(t.codec, std::nullopt), 9}) {
    fs::path packed = dir_ / fmt::format("ours{}", CodecSuffix(t.codec));
    fs::path plain = dir_ / "plain";
    WriteFile(packed, CompressBuffer(t.codec, level, data_));
    ASSERT_EQ(Shell(Run(t.decompress, packed, plain)), 0) << t.name << " level " << level;
    EXPECT_TRUE(ReadFile(plain) == data_) << t.name << " level " << level;
  }
  // An empty input makes a stream the tool reads as empty.
  fs::path packed = dir_ / fmt::format("empty{}", CodecSuffix(t.codec));
  fs::path plain = dir_ / "empty";
  WriteFile(packed, CompressBuffer(t.codec, ResolveLevel(t.codec, std::nullopt), ""));
  ASSERT_EQ(Shell(Run(t.decompress, packed, plain)), 0);
  EXPECT_EQ(ReadFile(plain), "");
}

TEST_P(Interop, WeReadToolOutput) {
  const Tool& t = GetParam();
  fs::path plain = dir_ / "plain.bin";
  fs::path packed = dir_ / fmt::format("tool{}", CodecSuffix(t.codec));
  WriteFile(plain, data_);
  ASSERT_EQ(Shell(Run(t.compress, plain, packed)), 0) << t.name;
  EXPECT_TRUE(DecompressBuffer(t.codec, ReadFile(packed)) == data_) << t.name;

  // ... and notice when the tool's file was cut short.
  std::string cut = ReadFile(packed);
  cut.resize(cut.size() - 3);
  try {
    DecompressBuffer(t.codec, cut);
    ADD_FAILURE() << "truncated " << t.name << " output was accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kCorrupt) << e.what();
  }
}

INSTANTIATE_TEST_SUITE_P(
    Tools, Interop,
    ::testing::Values(
        // `gzip -c file` stores the file name in the header (FNAME), which we must skip.
        Tool{Codec::kGzip, "gzip", "gzip -d -c < {in} > {out}", "gzip -c -6 {in} > {out}"},
        Tool{Codec::kZstd, "zstd", "zstd -q -d -c < {in} > {out}", "zstd -q -3 -c {in} > {out}"},
        // lz4's own defaults: 4 MiB independent blocks, content checksum.
        Tool{Codec::kLz4, "lz4", "lz4 -q -d -c < {in} > {out}", "lz4 -q -c {in} > {out}"}),
    [](const ::testing::TestParamInfo<Tool>& info) { return std::string(info.param.name); });

}  // namespace
}  // namespace pbm::codec
