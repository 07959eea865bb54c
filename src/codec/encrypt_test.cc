#include "codec/encrypt.h"

#include <gtest/gtest.h>
#include <openssl/evp.h>

#include <cstdio>
#include <fstream>
#include <random>
#include <string>

#include "codec/codec.h"
#include "common/error.h"

namespace pbm::codec {
namespace {

EncryptionKey TestKey(unsigned char seed) {
  EncryptionKey k;
  for (size_t i = 0; i < k.size(); ++i) k[i] = static_cast<unsigned char>(seed + i * 7);
  return k;
}

std::string Random(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::string s(n, '\0');
  for (auto& c : s) c = static_cast<char>(rng());
  return s;
}

std::string Encrypt(const EncryptionKey& k, std::string_view plain, uint32_t chunk,
                     size_t write_size = 4096) {
  StringSink out;
  auto enc = NewEncryptor(k, &out, chunk);
  for (size_t off = 0; off < plain.size(); off += write_size) {
    enc->Write(plain.data() + off, std::min(write_size, plain.size() - off));
  }
  enc->Close();
  EXPECT_TRUE(out.closed());
  return out.Take();
}

std::string Decrypt(const EncryptionKey& k, std::string_view sealed, size_t read_size = 3000) {
  StringSource in(sealed);
  auto dec = NewDecryptor(k, &in);
  std::string out, buf(read_size, '\0');
  while (size_t n = dec->Read(buf.data(), buf.size())) out.append(buf.data(), n);
  return out;
}

ErrorKind KindOf(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.kind();
  }
  return ErrorKind::kInternal;  // "no error"; no test expects kInternal
}

TEST(Encrypt, RoundTripsAtChunkBoundaries) {
  const uint32_t chunk = 1024;
  for (size_t n : {size_t{0}, size_t{1}, size_t{1023}, size_t{1024}, size_t{1025}, size_t{2048},
                   size_t{5000}, size_t{1} << 16}) {
    std::string plain = Random(n, static_cast<uint32_t>(n));
    std::string sealed = Encrypt(TestKey(1), plain, chunk);
    size_t chunks = n / chunk + 1;  // a full last chunk is followed by no empty one...
    if (n > 0 && n % chunk == 0) chunks = n / chunk;  // ...it is itself the flagged final chunk
    EXPECT_EQ(sealed.size(), kEncryptHeaderSize + n + chunks * kEncryptTagSize) << n;
    EXPECT_EQ(Decrypt(TestKey(1), sealed), plain) << n;
    EXPECT_EQ(Decrypt(TestKey(1), sealed, 1), plain) << n;  // tiny reads
  }
}

TEST(Encrypt, SameInputTwiceGivesDifferentObjects) {
  std::string plain(10000, 'a');
  std::string a = Encrypt(TestKey(1), plain, 4096), b = Encrypt(TestKey(1), plain, 4096);
  EXPECT_NE(a, b);  // fresh salt and nonce prefix per object
  EXPECT_EQ(a.find("aaaaaaaa"), std::string::npos);
}

TEST(Encrypt, WrongKeyIsRefused) {
  std::string sealed = Encrypt(TestKey(1), "secret documents", 1024);
  EXPECT_EQ(KindOf([&] { Decrypt(TestKey(2), sealed); }), ErrorKind::kCorrupt);
}

TEST(Encrypt, EverySingleByteChangeIsDetected) {
  std::string plain = Random(3000, 7);
  std::string sealed = Encrypt(TestKey(3), plain, 1024);
  for (size_t i = 0; i < sealed.size(); ++i) {
    std::string bad = sealed;
    bad[i] = static_cast<char>(bad[i] ^ 0x01);
    EXPECT_EQ(KindOf([&] { Decrypt(TestKey(3), bad); }), ErrorKind::kCorrupt) << "byte " << i;
  }
}

TEST(Encrypt, TruncationExtensionAndReorderingAreDetected) {
  std::string plain = Random(4096 * 3 + 100, 9);
  std::string sealed = Encrypt(TestKey(4), plain, 4096);
  const size_t c = 4096 + kEncryptTagSize;
  // Cut at a chunk boundary: the remaining last chunk is not flagged final.
  EXPECT_EQ(KindOf([&] { Decrypt(TestKey(4), sealed.substr(0, kEncryptHeaderSize + 2 * c)); }),
            ErrorKind::kCorrupt);
  EXPECT_EQ(KindOf([&] { Decrypt(TestKey(4), sealed.substr(0, sealed.size() - 1)); }),
            ErrorKind::kCorrupt);
  EXPECT_EQ(KindOf([&] { Decrypt(TestKey(4), sealed + "x"); }), ErrorKind::kCorrupt);
  std::string swapped = sealed;
  swapped.replace(kEncryptHeaderSize, c, sealed.substr(kEncryptHeaderSize + c, c));
  swapped.replace(kEncryptHeaderSize + c, c, sealed.substr(kEncryptHeaderSize, c));
  EXPECT_EQ(KindOf([&] { Decrypt(TestKey(4), swapped); }), ErrorKind::kCorrupt);
  EXPECT_EQ(KindOf([&] { Decrypt(TestKey(4), sealed.substr(0, 10)); }), ErrorKind::kCorrupt);
  EXPECT_EQ(KindOf([&] { Decrypt(TestKey(4), "plain zstd bytes, not encrypted"); }),
            ErrorKind::kCorrupt);
}

TEST(Encrypt, ComposesWithCompression) {
  std::string plain;
  for (int i = 0; i < 20000; ++i) plain += "document " + std::to_string(i % 97) + "\n";
  StringSink out;
  auto enc = NewEncryptor(TestKey(5), &out, 4096);
  auto comp = NewCompressor(Codec::kZstd, 3, enc.get());
  comp->Write(plain.data(), plain.size());
  comp->Close();
  ASSERT_TRUE(out.closed());
  StringSource in(out.data());
  auto dec = NewDecryptor(TestKey(5), &in);
  auto plain_in = NewDecompressor(Codec::kZstd, dec.get());
  std::string got, buf(8192, '\0');
  while (size_t n = plain_in->Read(buf.data(), buf.size())) got.append(buf.data(), n);
  EXPECT_EQ(got, plain);
}

TEST(EncryptKey, ParsesBase64AndRefusesOtherSizes) {
  EncryptionKey k = TestKey(6);
  std::string b64(64, '\0');
  b64.resize(EVP_EncodeBlock(reinterpret_cast<unsigned char*>(b64.data()), k.data(), 32));
  EXPECT_EQ(ParseKey(" " + b64 + "\n", "test"), k);
  EXPECT_EQ(KindOf([&] { ParseKey(b64.substr(0, 24), "test"); }), ErrorKind::kInvalidArgument);
  EXPECT_EQ(KindOf([&] { ParseKey("not base64 at all!", "test"); }), ErrorKind::kInvalidArgument);
  EXPECT_EQ(KindOf([&] { ParseKey("", "test"); }), ErrorKind::kInvalidArgument);
  try {
    ParseKey("AAAA", "key file /k");
    ADD_FAILURE();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("key file /k holds a 3-byte key"), std::string::npos)
        << e.what();
  }
  EXPECT_EQ(KindOf([] { ReadKeyFile("/nonexistent/key"); }), ErrorKind::kIo);
}

TEST(EncryptKey, CheckValueIdentifiesTheKeyWithoutRevealingIt) {
  std::string a = KeyCheckValue(TestKey(1)), b = KeyCheckValue(TestKey(2));
  EXPECT_EQ(a.size(), 16u);
  EXPECT_NE(a, b);
  EXPECT_EQ(a, KeyCheckValue(TestKey(1)));
}

}  // namespace
}  // namespace pbm::codec
