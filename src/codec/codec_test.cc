#include "codec/codec.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <malloc.h>

#include <algorithm>
#include <vector>

#include "codec/codec_test_util.h"
#include "common/error.h"

namespace pbm::codec {
namespace {

using testing::DocumentLike;
using ::testing::HasSubstr;
using testing::RandomBytes;

const Codec kAllCodecs[] = {Codec::kNone, Codec::kGzip, Codec::kZstd, Codec::kLz4, Codec::kSnappy};
const Codec kCompressing[] = {Codec::kGzip, Codec::kZstd, Codec::kLz4, Codec::kSnappy};

// Runs `f` and returns the pbm::Error it throws; fails the test if it throws nothing.
template <typename F>
Error CatchError(F&& f) {
  try {
    f();
  } catch (const Error& e) {
    return e;
  }
  ADD_FAILURE() << "expected a pbm::Error";
  return Error(ErrorKind::kInternal, "none thrown");
}

// Writes `data` through a compressor in chunks of cycling odd sizes.
std::string CompressInOddChunks(Codec c, int level, const std::string& data) {
  static const size_t kSizes[] = {1, 7, 4093, 65537, (1 << 20) + 3, 13, 300000};
  StringSink sink;
  auto compressor = NewCompressor(c, level, &sink);
  size_t pos = 0;
  for (size_t i = 0; pos < data.size(); ++i) {
    size_t k = std::min(kSizes[i % std::size(kSizes)], data.size() - pos);
    compressor->Write(data.data() + pos, k);
    pos += k;
  }
  compressor->Write(data.data(), 0);
  EXPECT_FALSE(sink.closed());
  compressor->Close();
  EXPECT_TRUE(sink.closed());
  return sink.Take();
}

// Reads a decompressor in chunks of cycling odd sizes until it reports the end.
std::string DecompressInOddChunks(Codec c, const std::string& compressed) {
  static const size_t kSizes[] = {3, 1, 70000, 8191, (1 << 20) + 1};
  StringSource source(compressed);
  auto decompressor = NewDecompressor(c, &source);
  std::string out;
  std::vector<char> buf((1 << 20) + 1);
  for (size_t i = 0;; ++i) {
    size_t n = kSizes[i % std::size(kSizes)];
    size_t r = decompressor->Read(buf.data(), n);
    EXPECT_LE(r, n);
    if (r == 0) break;
    out.append(buf.data(), r);
  }
  EXPECT_EQ(decompressor->Read(buf.data(), 10), 0u) << "the end must be sticky";
  return out;
}

// ---- names and levels ----

TEST(CodecNames, ParseNameAndSuffixRoundTrip) {
  for (Codec c : kAllCodecs) EXPECT_EQ(ParseCodec(CodecName(c)), c);
  EXPECT_EQ(CodecSuffix(Codec::kNone), "");
  EXPECT_EQ(CodecSuffix(Codec::kGzip), ".gz");
  EXPECT_EQ(CodecSuffix(Codec::kZstd), ".zst");
  EXPECT_EQ(CodecSuffix(Codec::kLz4), ".lz4");
  EXPECT_EQ(CodecSuffix(Codec::kSnappy), ".snappy");
}

TEST(CodecNames, S2IsRejectedWithAnAlternative) {
  Error e = CatchError([] { ParseCodec("s2"); });
  EXPECT_EQ(e.kind(), ErrorKind::kInvalidArgument);
  EXPECT_STREQ(e.what(), "s2 is not supported; use zstd or lz4");
}

TEST(CodecNames, UnknownNameListsAllowedValues) {
  for (std::string_view bad : {"", "ZSTD", "gz", "zstd ", "brotli"}) {
    Error e = CatchError([&] { ParseCodec(bad); });
    EXPECT_EQ(e.kind(), ErrorKind::kInvalidArgument);
    EXPECT_THAT(e.what(), HasSubstr("none, gzip, zstd, lz4, snappy")) << bad;
  }
}

TEST(CodecLevels, DefaultsPerCodec) {
  EXPECT_EQ(ResolveLevel(Codec::kGzip, std::nullopt), 6);
  EXPECT_EQ(ResolveLevel(Codec::kZstd, std::nullopt), 3);
  EXPECT_EQ(ResolveLevel(Codec::kLz4, std::nullopt), 1);
  EXPECT_EQ(ResolveLevel(Codec::kSnappy, std::nullopt), 0);
  EXPECT_EQ(ResolveLevel(Codec::kNone, std::nullopt), 0);
}

TEST(CodecLevels, RangeEndsAreAccepted) {
  EXPECT_EQ(ResolveLevel(Codec::kGzip, 1), 1);
  EXPECT_EQ(ResolveLevel(Codec::kGzip, 9), 9);
  EXPECT_EQ(ResolveLevel(Codec::kZstd, 1), 1);
  EXPECT_EQ(ResolveLevel(Codec::kZstd, 22), 22);
  EXPECT_EQ(ResolveLevel(Codec::kLz4, 1), 1);
  EXPECT_EQ(ResolveLevel(Codec::kLz4, 12), 12);
}

TEST(CodecLevels, OutOfRangeNamesTheRange) {
  struct Case {
    Codec c;
    int level;
    const char* range;
  };
  for (Case k : {Case{Codec::kGzip, 0, "1..9"}, Case{Codec::kGzip, 10, "1..9"},
                 Case{Codec::kZstd, 0, "1..22"}, Case{Codec::kZstd, 23, "1..22"},
                 Case{Codec::kZstd, -1, "1..22"}, Case{Codec::kLz4, 13, "1..12"},
                 Case{Codec::kLz4, 0, "1..12"}}) {
    Error e = CatchError([&] { ResolveLevel(k.c, k.level); });
    EXPECT_EQ(e.kind(), ErrorKind::kInvalidArgument);
    EXPECT_THAT(e.what(), HasSubstr(k.range));
    EXPECT_THAT(e.what(), HasSubstr(std::string(CodecName(k.c))));
    // The stream factories and the memory bound validate the same way.
    StringSink sink;
    EXPECT_EQ(CatchError([&] { NewCompressor(k.c, k.level, &sink); }).kind(),
              ErrorKind::kInvalidArgument);
    EXPECT_EQ(CatchError([&] { MaxStreamMemory(k.c, k.level); }).kind(),
              ErrorKind::kInvalidArgument);
  }
}

TEST(CodecLevels, CodecsWithoutLevelsRejectOne) {
  for (Codec c : {Codec::kNone, Codec::kSnappy}) {
    Error e = CatchError([&] { ResolveLevel(c, 1); });
    EXPECT_EQ(e.kind(), ErrorKind::kInvalidArgument);
    EXPECT_THAT(e.what(), HasSubstr("has no compression levels"));
    StringSink sink;
    EXPECT_NO_THROW(NewCompressor(c, 0, &sink));
  }
}

// ---- round trips ----

struct RoundTripCase {
  Codec codec;
  int level;
  size_t big;  // size of the random and compressible inputs
};

std::string CaseName(const ::testing::TestParamInfo<RoundTripCase>& info) {
  return fmt::format("{}_{}", CodecName(info.param.codec), info.param.level);
}

class RoundTrip : public ::testing::TestWithParam<RoundTripCase> {};

TEST_P(RoundTrip, EmptyOneByteRandomAndCompressible) {
  const RoundTripCase& p = GetParam();
  const std::string random = RandomBytes(p.big, 11);
  const std::string docs = DocumentLike(p.big, 12);
  const std::string empty;
  const std::string one = "x";
  for (const std::string* data : {&empty, &one, &random, &docs}) {
    std::string compressed = CompressInOddChunks(p.codec, p.level, *data);
    std::string back = DecompressInOddChunks(p.codec, compressed);
    ASSERT_EQ(back.size(), data->size());
    ASSERT_TRUE(back == *data) << "content differs for an input of " << data->size() << " bytes";
    if (data->empty() && p.codec != Codec::kNone) {
      EXPECT_FALSE(compressed.empty()) << "an empty input still makes a complete stream";
    }
    if (data == &docs && p.codec != Codec::kNone) {
      EXPECT_LT(compressed.size(), docs.size() / 2) << "document-like data must compress";
    }
    if (data == &random) {
      // Incompressible data must not grow by more than the framing overhead.
      EXPECT_LT(compressed.size(), random.size() + random.size() / 50 + 1024);
    }
  }
}

constexpr size_t kTenMiB = 10 << 20;
constexpr size_t kOneMiB = 1 << 20;

INSTANTIATE_TEST_SUITE_P(Codecs, RoundTrip,
                         ::testing::Values(RoundTripCase{Codec::kNone, 0, kTenMiB},
                                           RoundTripCase{Codec::kGzip, 1, kOneMiB},
                                           RoundTripCase{Codec::kGzip, 6, kTenMiB},
                                           RoundTripCase{Codec::kGzip, 9, kOneMiB},
                                           RoundTripCase{Codec::kZstd, 1, kOneMiB},
                                           RoundTripCase{Codec::kZstd, 3, kTenMiB},
                                           RoundTripCase{Codec::kZstd, 19, kOneMiB},
                                           RoundTripCase{Codec::kLz4, 1, kTenMiB},
                                           RoundTripCase{Codec::kLz4, 3, kOneMiB},
                                           RoundTripCase{Codec::kLz4, 12, kOneMiB},
                                           RoundTripCase{Codec::kSnappy, 0, kTenMiB}),
                         CaseName);

TEST(CodecBuffers, HelpersRoundTrip) {
  const std::string data = DocumentLike(300000);
  for (Codec c : kAllCodecs) {
    int level = ResolveLevel(c, std::nullopt);
    EXPECT_EQ(DecompressBuffer(c, CompressBuffer(c, level, data)), data) << CodecName(c);
  }
}

TEST(CodecBuffers, HigherLevelsCompressBetter) {
  const std::string data = DocumentLike(1 << 20);
  EXPECT_LT(CompressBuffer(Codec::kGzip, 9, data).size(),
            CompressBuffer(Codec::kGzip, 1, data).size());
  EXPECT_LT(CompressBuffer(Codec::kZstd, 19, data).size(),
            CompressBuffer(Codec::kZstd, 1, data).size());
  EXPECT_LT(CompressBuffer(Codec::kLz4, 9, data).size(),
            CompressBuffer(Codec::kLz4, 1, data).size());
}

TEST(CodecStreams, ConcatenatedStreamsReadAsOne) {
  const std::string a = DocumentLike(100000, 3);
  const std::string b = RandomBytes(70000, 4);
  for (Codec c : kAllCodecs) {
    int level = ResolveLevel(c, std::nullopt);
    std::string both = CompressBuffer(c, level, a) + CompressBuffer(c, level, b);
    EXPECT_EQ(DecompressBuffer(c, both), a + b) << CodecName(c);
    std::string with_empty = CompressBuffer(c, level, "") + CompressBuffer(c, level, a);
    EXPECT_EQ(DecompressBuffer(c, with_empty), a) << CodecName(c);
  }
}

// ---- corruption and truncation ----

TEST(CodecCorruption, EmptyInputIsNotAStream) {
  for (Codec c : kCompressing) {
    Error e = CatchError([&] { DecompressBuffer(c, ""); });
    EXPECT_EQ(e.kind(), ErrorKind::kCorrupt) << CodecName(c);
    EXPECT_THAT(e.what(), HasSubstr("empty input")) << CodecName(c);
  }
  EXPECT_EQ(DecompressBuffer(Codec::kNone, ""), "");
}

TEST(CodecCorruption, TruncationAnywhereIsDetected) {
  const std::string data = DocumentLike(200000, 5) + RandomBytes(100000, 6);
  for (Codec c : kCompressing) {
    const std::string full = CompressBuffer(c, ResolveLevel(c, std::nullopt), data);
    std::vector<size_t> cuts = {1, 2, 4, 10, full.size() / 3, full.size() / 2};
    for (size_t k = 1; k <= 40 && k < full.size(); ++k) cuts.push_back(full.size() - k);
    for (size_t cut : cuts) {
      Error e = CatchError([&] { DecompressBuffer(c, std::string_view(full).substr(0, cut)); });
      EXPECT_EQ(e.kind(), ErrorKind::kCorrupt)
          << CodecName(c) << " cut at " << cut << " of " << full.size() << ": " << e.what();
      EXPECT_THAT(e.what(), HasSubstr(std::string(CodecName(c)) + " decompress"));
    }
    // Also at every chunk boundary of a stream of many small chunks/blocks.
    const std::string small = CompressBuffer(c, ResolveLevel(c, std::nullopt), "abc");
    for (size_t cut = 0; cut < small.size(); ++cut) {
      EXPECT_EQ(CatchError([&] { DecompressBuffer(c, small.substr(0, cut)); }).kind(),
                ErrorKind::kCorrupt)
          << CodecName(c) << " cut at " << cut;
    }
  }
}

TEST(CodecCorruption, TruncationIsDetectedWhileStreaming) {
  // The reader gets the good prefix first and the error at the end, never a silent end.
  const std::string data = DocumentLike(3 << 20, 7);
  for (Codec c : kCompressing) {
    std::string full = CompressBuffer(c, ResolveLevel(c, std::nullopt), data);
    StringSource source(std::string_view(full).substr(0, full.size() * 3 / 4));
    auto d = NewDecompressor(c, &source);
    std::vector<char> buf(65536);
    size_t total = 0;
    bool threw = false;
    try {
      while (size_t r = d->Read(buf.data(), buf.size())) total += r;
    } catch (const Error& e) {
      threw = true;
      EXPECT_EQ(e.kind(), ErrorKind::kCorrupt);
      EXPECT_THAT(e.what(), HasSubstr("truncated")) << e.what();
    }
    EXPECT_TRUE(threw) << CodecName(c);
    EXPECT_GT(total, 0u) << CodecName(c);
    // The error is sticky.
    EXPECT_EQ(CatchError([&] { d->Read(buf.data(), buf.size()); }).kind(), ErrorKind::kCorrupt);
  }
}

TEST(CodecCorruption, BitFlipsNeverPassSilently) {
  const std::string data = DocumentLike(30000, 8) + RandomBytes(3000, 9);
  for (Codec c : kCompressing) {
    const std::string good = CompressBuffer(c, ResolveLevel(c, std::nullopt), data);
    int detected = 0;
    for (size_t pos = 0; pos < good.size(); ++pos) {
      std::string bad = good;
      bad[pos] = static_cast<char>(bad[pos] ^ (1 << (pos % 8)));
      try {
        std::string out = DecompressBuffer(c, bad);
        // A flip in a field that does not affect the data (e.g. gzip's MTIME) may pass, but the
        // data must then be exactly right.
        ASSERT_TRUE(out == data) << CodecName(c) << ": flip at " << pos << " gave wrong data";
      } catch (const Error& e) {
        ASSERT_EQ(e.kind(), ErrorKind::kCorrupt) << e.what();
        ++detected;
      }
    }
    // Every flip in the payload (past a 32-byte header) must be detected.
    EXPECT_GE(detected, static_cast<int>(good.size()) - 32) << CodecName(c);
  }
}

TEST(CodecCorruption, TrailingGarbageIsCorrupt) {
  for (Codec c : kCompressing) {
    std::string s = CompressBuffer(c, ResolveLevel(c, std::nullopt), "hello") + "garbage!";
    EXPECT_EQ(CatchError([&] { DecompressBuffer(c, s); }).kind(), ErrorKind::kCorrupt)
        << CodecName(c);
  }
}

TEST(CodecCorruption, WrongCodecIsCorrupt) {
  std::string gz = CompressBuffer(Codec::kGzip, 6, "hello world");
  for (Codec c : {Codec::kZstd, Codec::kLz4, Codec::kSnappy}) {
    Error e = CatchError([&] { DecompressBuffer(c, gz); });
    EXPECT_EQ(e.kind(), ErrorKind::kCorrupt) << CodecName(c);
  }
}

// ---- stream contract ----

class FailingSink : public Sink {
 public:
  explicit FailingSink(size_t fail_after) : fail_after_(fail_after) {}
  void Write(const void*, size_t n) override {
    if (written_ + n > fail_after_) Fail(ErrorKind::kIo, "upload x: disk full");
    written_ += n;
  }
  void Close() override { Fail(ErrorKind::kIo, "upload x: close failed"); }

 private:
  size_t fail_after_;
  size_t written_ = 0;
};

TEST(CodecStreams, SinkErrorsPropagateAndPoisonTheCompressor) {
  const std::string data = RandomBytes(3 << 20);
  for (Codec c : kAllCodecs) {
    FailingSink sink(1000);
    auto w = NewCompressor(c, ResolveLevel(c, std::nullopt), &sink);
    Error e = CatchError([&] {
      w->Write(data.data(), data.size());
      w->Close();
    });
    EXPECT_EQ(e.kind(), ErrorKind::kIo) << CodecName(c);
    EXPECT_STREQ(e.what(), "upload x: disk full");
    EXPECT_EQ(CatchError([&] { w->Write("a", 1); }).kind(), ErrorKind::kInternal);
    EXPECT_EQ(CatchError([&] { w->Close(); }).kind(), ErrorKind::kInternal);
  }
}

TEST(CodecStreams, CloseErrorOfTheSinkPropagates) {
  for (Codec c : kAllCodecs) {
    FailingSink sink(1 << 30);
    auto w = NewCompressor(c, ResolveLevel(c, std::nullopt), &sink);
    w->Write("abc", 3);
    EXPECT_EQ(CatchError([&] { w->Close(); }).kind(), ErrorKind::kIo) << CodecName(c);
  }
}

TEST(CodecStreams, WriteAfterCloseFailsAndCloseIsIdempotent) {
  for (Codec c : kAllCodecs) {
    StringSink sink;
    auto w = NewCompressor(c, ResolveLevel(c, std::nullopt), &sink);
    w->Write("abc", 3);
    w->Close();
    std::string once = sink.data();
    EXPECT_NO_THROW(w->Close());
    EXPECT_EQ(sink.data(), once) << "a second Close writes nothing";
    Error e = CatchError([&] { w->Write("d", 1); });
    EXPECT_EQ(e.kind(), ErrorKind::kInternal);
    EXPECT_THAT(e.what(), HasSubstr("after close"));
  }
}

TEST(CodecStreams, AbandonedCompressorLeavesAnIncompleteStream) {
  for (Codec c : kCompressing) {
    StringSink sink;
    {
      auto w = NewCompressor(c, ResolveLevel(c, std::nullopt), &sink);
      w->Write("some data that is never closed", 30);
    }
    EXPECT_FALSE(sink.closed());
    EXPECT_EQ(CatchError([&] { DecompressBuffer(c, sink.data()); }).kind(), ErrorKind::kCorrupt)
        << CodecName(c);
  }
}

TEST(CodecStreams, ZeroLengthReadReturnsZeroWithoutEnding) {
  for (Codec c : kAllCodecs) {
    std::string s = CompressBuffer(c, ResolveLevel(c, std::nullopt), "hello");
    StringSource source(s);
    auto r = NewDecompressor(c, &source);
    char buf[16];
    EXPECT_EQ(r->Read(buf, 0), 0u);
    EXPECT_EQ(ReadFull(*r, buf, sizeof(buf)), 5u) << CodecName(c);
    EXPECT_EQ(std::string(buf, 5), "hello");
  }
}

// ---- memory bound ----

size_t HeapInUse() {
  struct mallinfo2 mi = mallinfo2();
  return mi.uordblks + mi.hblkhd;
}

TEST(CodecMemory, StreamsStayWithinTheirBound) {
  const std::string data = DocumentLike(2 << 20, 10) + RandomBytes(1 << 20, 11);
  struct Case {
    Codec c;
    int level;
  };
  for (Case k : {Case{Codec::kGzip, 6}, Case{Codec::kGzip, 9}, Case{Codec::kZstd, 1},
                 Case{Codec::kZstd, 3}, Case{Codec::kZstd, 9}, Case{Codec::kLz4, 1},
                 Case{Codec::kLz4, 9}, Case{Codec::kSnappy, 0}}) {
    const size_t bound = MaxStreamMemory(k.c, k.level);
    CountingSink counter(nullptr);
    size_t before = HeapInUse();
    auto w = NewCompressor(k.c, k.level, &counter);
    w->Write(data.data(), data.size());
    EXPECT_LE(HeapInUse() - before, bound) << CodecName(k.c) << " " << k.level << " compress";
    w->Close();
    w.reset();

    std::string compressed = CompressBuffer(k.c, k.level, data);
    StringSource source(compressed);
    before = HeapInUse();
    auto r = NewDecompressor(k.c, &source);
    std::vector<char> buf(4096);
    for (int i = 0; i < 200; ++i) ASSERT_GT(r->Read(buf.data(), buf.size()), 0u);
    buf.shrink_to_fit();
    EXPECT_LE(HeapInUse() - before, bound + buf.capacity())
        << CodecName(k.c) << " " << k.level << " decompress";
  }
  EXPECT_EQ(MaxStreamMemory(Codec::kNone, 0), 0u);
  EXPECT_LT(MaxStreamMemory(Codec::kZstd, 1), MaxStreamMemory(Codec::kZstd, 19));
  EXPECT_LT(MaxStreamMemory(Codec::kLz4, 1), MaxStreamMemory(Codec::kLz4, 9));
}

}  // namespace
}  // namespace pbm::codec
