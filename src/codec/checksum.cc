#include "codec/checksum.h"

#include <openssl/evp.h>

#include <array>
#include <cstring>
#include <utility>

#include "codec/codec_internal.h"
#include "common/error.h"

#if defined(__x86_64__)
#include <nmmintrin.h>
#endif

namespace pbm::codec {

// ---- Sha256 ----

Sha256::Sha256() : ctx_(EVP_MD_CTX_new()) {
  if (ctx_ == nullptr || EVP_DigestInit_ex(ctx_, EVP_sha256(), nullptr) != 1) {
    EVP_MD_CTX_free(ctx_);
    Fail(ErrorKind::kInternal, "sha256: cannot initialize the OpenSSL digest");
  }
}

Sha256::~Sha256() { EVP_MD_CTX_free(ctx_); }

Sha256::Sha256(Sha256&& other) noexcept
    : ctx_(std::exchange(other.ctx_, nullptr)), digest_(std::move(other.digest_)) {}

Sha256& Sha256::operator=(Sha256&& other) noexcept {
  if (this != &other) {
    EVP_MD_CTX_free(ctx_);
    ctx_ = std::exchange(other.ctx_, nullptr);
    digest_ = std::move(other.digest_);
  }
  return *this;
}

void Sha256::Update(const void* data, size_t n) {
  if (!digest_.empty() || ctx_ == nullptr) {
    Fail(ErrorKind::kInternal, "sha256: update after the digest was finished");
  }
  if (n > 0 && EVP_DigestUpdate(ctx_, data, n) != 1) {
    Fail(ErrorKind::kInternal, "sha256: OpenSSL digest update failed");
  }
}

std::string Sha256::HexDigest() {
  if (!digest_.empty()) return digest_;
  if (ctx_ == nullptr) Fail(ErrorKind::kInternal, "sha256: digest of a moved-from object");
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (EVP_DigestFinal_ex(ctx_, md, &len) != 1) {
    Fail(ErrorKind::kInternal, "sha256: OpenSSL digest final failed");
  }
  static constexpr char kHex[] = "0123456789abcdef";
  digest_.resize(2 * len);
  for (unsigned int i = 0; i < len; ++i) {
    digest_[2 * i] = kHex[md[i] >> 4];
    digest_[2 * i + 1] = kHex[md[i] & 0xf];
  }
  return digest_;
}

std::string Sha256::Of(std::string_view data) {
  Sha256 sha;
  sha.Update(data);
  return sha.HexDigest();
}

// ---- Crc32c ----

namespace {

constexpr uint32_t kCastagnoliReflected = 0x82f63b78u;

// Slicing-by-8 tables, built at compile time.
struct Tables {
  std::array<std::array<uint32_t, 256>, 8> t{};
  constexpr Tables() {
    for (uint32_t i = 0; i < 256; ++i) {
      uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = (c & 1) ? (c >> 1) ^ kCastagnoliReflected : c >> 1;
      t[0][i] = c;
    }
    for (uint32_t i = 0; i < 256; ++i) {
      for (int s = 1; s < 8; ++s) t[s][i] = (t[s - 1][i] >> 8) ^ t[0][t[s - 1][i] & 0xff];
    }
  }
};
constexpr Tables kTables;

uint32_t ExtendPortable(uint32_t crc, const uint8_t* p, size_t n) {
  const auto& t = kTables.t;
  while (n >= 8) {
    uint32_t lo;
    uint32_t hi;
    std::memcpy(&lo, p, 4);  // little-endian host (x86-64, arm64)
    std::memcpy(&hi, p + 4, 4);
    lo ^= crc;
    crc = t[7][lo & 0xff] ^ t[6][(lo >> 8) & 0xff] ^ t[5][(lo >> 16) & 0xff] ^ t[4][lo >> 24] ^
          t[3][hi & 0xff] ^ t[2][(hi >> 8) & 0xff] ^ t[1][(hi >> 16) & 0xff] ^ t[0][hi >> 24];
    p += 8;
    n -= 8;
  }
  while (n-- > 0) crc = (crc >> 8) ^ t[0][(crc ^ *p++) & 0xff];
  return crc;
}

#if defined(__x86_64__)
__attribute__((target("sse4.2"))) uint32_t ExtendSse42(uint32_t crc, const uint8_t* p, size_t n) {
  uint64_t c = crc;
  while (n >= 8) {
    uint64_t v;
    std::memcpy(&v, p, 8);
    c = _mm_crc32_u64(c, v);
    p += 8;
    n -= 8;
  }
  uint32_t c32 = static_cast<uint32_t>(c);
  while (n-- > 0) c32 = _mm_crc32_u8(c32, *p++);
  return c32;
}

// __builtin_cpu_init: this initializer may run before libgcc's own CPU-model constructor.
const bool kHaveSse42 = [] {
  __builtin_cpu_init();
  return __builtin_cpu_supports("sse4.2") != 0;
}();
#endif

}  // namespace

namespace internal {
uint32_t Crc32cPortable(uint32_t crc, const void* data, size_t n) {
  return ~ExtendPortable(~crc, static_cast<const uint8_t*>(data), n);
}
}  // namespace internal

uint32_t Crc32c::Extend(uint32_t crc, const void* data, size_t n) {
  const auto* p = static_cast<const uint8_t*>(data);
  crc = ~crc;
#if defined(__x86_64__)
  crc = kHaveSse42 ? ExtendSse42(crc, p, n) : ExtendPortable(crc, p, n);
#else
  crc = ExtendPortable(crc, p, n);
#endif
  return ~crc;
}

}  // namespace pbm::codec
