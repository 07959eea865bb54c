#include "codec/checksum.h"

#include <gtest/gtest.h>

#include "codec/codec_internal.h"
#include "codec/codec_test_util.h"
#include "codec/stream.h"
#include "common/error.h"

namespace pbm::codec {
namespace {

TEST(Sha256, KnownAnswers) {
  EXPECT_EQ(Sha256::Of(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(Sha256::Of("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(Sha256::Of("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
}

TEST(Sha256, StreamingEqualsOneShotAndDigestIsStable) {
  const std::string data = testing::RandomBytes(1 << 20);
  Sha256 sha;
  for (size_t pos = 0, k = 1; pos < data.size(); pos += k, k = k * 3 + 1) {
    sha.Update(data.data() + pos, std::min(k, data.size() - pos));
  }
  std::string digest = sha.HexDigest();
  EXPECT_EQ(digest, Sha256::Of(data));
  EXPECT_EQ(sha.HexDigest(), digest);
  try {
    sha.Update("x", 1);
    FAIL() << "update after the digest must throw";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kInternal);
  }
  Sha256 moved = std::move(sha);
  EXPECT_EQ(moved.HexDigest(), digest);
}

TEST(Crc32c, KnownAnswers) {
  // RFC 3720 B.4 and the common check value.
  EXPECT_EQ(Crc32c::Of("123456789", 9), 0xe3069283u);
  std::string zeros(32, '\0');
  EXPECT_EQ(Crc32c::Of(zeros.data(), zeros.size()), 0x8a9136aau);
  std::string ones(32, '\xff');
  EXPECT_EQ(Crc32c::Of(ones.data(), ones.size()), 0x62a8ab43u);
  std::string inc(32, '\0');
  for (int i = 0; i < 32; ++i) inc[i] = static_cast<char>(i);
  EXPECT_EQ(Crc32c::Of(inc.data(), inc.size()), 0x46dd794eu);
  EXPECT_EQ(Crc32c::Of("", 0), 0u);
}

TEST(Crc32c, IncrementalAndPortableAgreeAtEveryAlignment) {
  const std::string data = testing::RandomBytes(10000, 5);
  const uint32_t whole = Crc32c::Of(data.data(), data.size());
  EXPECT_EQ(internal::Crc32cPortable(0, data.data(), data.size()), whole);
  for (size_t split = 0; split < 40; ++split) {
    Crc32c crc;
    crc.Update(data.data(), split);
    crc.Update(data.data() + split, data.size() - split);
    EXPECT_EQ(crc.Value(), whole) << split;
    size_t len = data.size() - 2 * split;
    EXPECT_EQ(Crc32c::Of(data.data() + split, len),
              internal::Crc32cPortable(0, data.data() + split, len));
  }
}

TEST(Crc32c, SnappyMask) {
  EXPECT_EQ(Crc32c::Mask(0), 0xa282ead8u);
  const uint32_t crc = 0xe3069283u;
  EXPECT_EQ(Crc32c::Mask(crc), ((crc >> 15) | (crc << 17)) + 0xa282ead8u);
}

TEST(Streams, ChecksumSinkAndSourceSeeTheSameBytes) {
  const std::string data = testing::DocumentLike(100000);
  StringSink store;
  ChecksumSink sink(&store);
  sink.Write(data.data(), 1000);
  sink.Write(data.data() + 1000, data.size() - 1000);
  sink.Close();
  EXPECT_TRUE(store.closed());
  EXPECT_EQ(store.data(), data);
  EXPECT_EQ(sink.bytes(), data.size());
  EXPECT_EQ(sink.HexDigest(), Sha256::Of(data));

  StringSource raw(data);
  ChecksumSource source(&raw);
  std::string buf(777, '\0');
  while (source.Read(buf.data(), buf.size()) > 0) {
  }
  EXPECT_EQ(source.bytes(), data.size());
  EXPECT_EQ(source.HexDigest(), Sha256::Of(data));
}

TEST(Streams, CountingSinkCountsWithoutATarget) {
  CountingSink sink(nullptr);
  sink.Write("abc", 3);
  sink.Write("", 0);
  sink.Close();
  EXPECT_EQ(sink.bytes(), 3u);
}

}  // namespace
}  // namespace pbm::codec
