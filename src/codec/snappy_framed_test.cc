// The snappy framing format, checked against streams assembled here byte by byte from the spec
// (snappy's framing_format.txt), since no snappy-framing tool is installed to compare with.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <snappy.h>

#include "codec/checksum.h"
#include "codec/codec.h"
#include "codec/codec_test_util.h"
#include "common/error.h"

namespace pbm::codec {
namespace {

using ::testing::HasSubstr;

std::string Le(uint64_t v, int bytes) {
  std::string s;
  for (int i = 0; i < bytes; ++i) s += static_cast<char>(v >> (8 * i));
  return s;
}

std::string Chunk(uint8_t type, const std::string& payload) {
  return std::string(1, static_cast<char>(type)) + Le(payload.size(), 3) + payload;
}

const std::string kStreamId = Chunk(0xff, "sNaPpY");

std::string Crc(const std::string& data) {
  return Le(Crc32c::Mask(Crc32c::Of(data.data(), data.size())), 4);
}

std::string Uncompressed(const std::string& data) { return Chunk(0x01, Crc(data) + data); }

std::string Compressed(const std::string& data) {
  std::string block;
  snappy::Compress(data.data(), data.size(), &block);
  return Chunk(0x00, Crc(data) + block);
}

std::string End(uint64_t count) { return Chunk(0xfd, "pbmEOS" + Le(count, 8)); }

ErrorKind KindOf(const std::string& stream, std::string* message = nullptr) {
  try {
    DecompressBuffer(Codec::kSnappy, stream);
  } catch (const Error& e) {
    if (message) *message = e.what();
    return e.kind();
  }
  return ErrorKind::kInternal;  // "nothing thrown" in these tests
}

TEST(SnappyFraming, OurOutputIsTheSpecFormat) {
  // "123456789" does not compress, so it is stored; the masked CRC is of the data.
  EXPECT_EQ(
      CompressBuffer(Codec::kSnappy, 0, "123456789"),
      kStreamId + Chunk(0x01, Le(0xc78ab0e5 /* masked 0xe3069283 */, 4) + "123456789") + End(9));
  // Compressible data goes into compressed chunks of at most 65536 input bytes.
  const std::string data(150000, 'a');
  const std::string expect = kStreamId + Compressed(data.substr(0, 65536)) +
                             Compressed(data.substr(65536, 65536)) +
                             Compressed(data.substr(131072)) + End(data.size());
  EXPECT_EQ(CompressBuffer(Codec::kSnappy, 0, data), expect);
  EXPECT_EQ(CompressBuffer(Codec::kSnappy, 0, ""), kStreamId + End(0));
}

TEST(SnappyFraming, ReadsSpecStreamsWithPaddingAndSkippableChunks) {
  const std::string a = testing::DocumentLike(70000, 1);
  const std::string b = "tail";
  std::string stream = kStreamId + Compressed(a.substr(0, 65536)) + Chunk(0xfe, std::string(9, 0)) +
                       Chunk(0x80, "skip me") + Uncompressed(a.substr(65536)) + kStreamId +
                       Uncompressed(b) + End(a.size() + b.size());
  EXPECT_EQ(DecompressBuffer(Codec::kSnappy, stream), a + b);
}

TEST(SnappyFraming, RejectsSpecViolations) {
  std::string msg;
  EXPECT_EQ(KindOf(Uncompressed("x") + End(1), &msg), ErrorKind::kCorrupt);
  EXPECT_THAT(msg, HasSubstr("missing stream identifier"));
  EXPECT_EQ(KindOf(Chunk(0xff, "sNaPpX") + End(0), &msg), ErrorKind::kCorrupt);
  EXPECT_THAT(msg, HasSubstr("bad stream identifier"));
  EXPECT_EQ(KindOf(kStreamId + Chunk(0x02, "x") + End(0), &msg), ErrorKind::kCorrupt);
  EXPECT_THAT(msg, HasSubstr("unskippable"));
  EXPECT_EQ(KindOf(kStreamId + Uncompressed(std::string(65537, 'x')) + End(65537), &msg),
            ErrorKind::kCorrupt);
  EXPECT_THAT(msg, HasSubstr("chunk length"));
  std::string bad_crc = kStreamId + Uncompressed("hello") + End(5);
  bad_crc[kStreamId.size() + 4] ^= 1;
  EXPECT_EQ(KindOf(bad_crc, &msg), ErrorKind::kCorrupt);
  EXPECT_THAT(msg, HasSubstr("CRC-32C mismatch"));
  EXPECT_EQ(KindOf(kStreamId + Uncompressed("hello") + End(4), &msg), ErrorKind::kCorrupt);
  EXPECT_THAT(msg, HasSubstr("end-of-stream chunk counts 4 bytes but 5"));
  EXPECT_EQ(KindOf(kStreamId + End(0) + Uncompressed("late"), &msg), ErrorKind::kCorrupt);
  EXPECT_THAT(msg, HasSubstr("after the end-of-stream"));
}

TEST(SnappyFraming, StreamWithoutEndChunkIsTruncated) {
  // A stream cut exactly at a chunk boundary is valid by the spec; the end chunk catches it.
  std::string msg;
  EXPECT_EQ(KindOf(kStreamId + Uncompressed("hello"), &msg), ErrorKind::kCorrupt);
  EXPECT_THAT(msg, HasSubstr("truncated (no end-of-stream chunk"));
  EXPECT_EQ(KindOf(kStreamId, &msg), ErrorKind::kCorrupt);
}

}  // namespace
}  // namespace pbm::codec
