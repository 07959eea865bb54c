// Streaming checksums: SHA-256 (OpenSSL EVP) for backup objects and CRC-32C for the snappy
// framing format.
//
// Thread safety: an object may not be used by two threads at once.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

struct evp_md_ctx_st;

namespace pbm::codec {

// SHA-256 over a stream of bytes.
class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(Sha256&& other) noexcept;
  Sha256& operator=(Sha256&& other) noexcept;
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;

  // Adds bytes. Throws pbm::Error(kInternal) after HexDigest() was called.
  void Update(const void* data, size_t n);
  void Update(std::string_view data) { Update(data.data(), data.size()); }
  // Finishes and returns the 64 lower-case hex digits; later calls return the same value.
  std::string HexDigest();

  // The hex SHA-256 of `data`.
  static std::string Of(std::string_view data);

 private:
  evp_md_ctx_st* ctx_;
  std::string digest_;  // set once finished
};

// CRC-32C (Castagnoli, as iSCSI, ext4 and the snappy framing format use). Written by hand
// (hardware crc32 instruction when the CPU has SSE4.2, else a table): none of the libraries we
// depend on exports CRC-32C (zlib and libdeflate have only CRC-32).
class Crc32c {
 public:
  void Update(const void* data, size_t n) { crc_ = Extend(crc_, data, n); }
  uint32_t Value() const { return crc_; }

  // CRC-32C of `crc` (a previous value, 0 to start) extended by `data`.
  static uint32_t Extend(uint32_t crc, const void* data, size_t n);
  static uint32_t Of(const void* data, size_t n) { return Extend(0, data, n); }
  // The snappy framing format's masked form: ((crc >> 15) | (crc << 17)) + 0xa282ead8.
  static uint32_t Mask(uint32_t crc) { return ((crc >> 15) | (crc << 17)) + 0xa282ead8u; }

 private:
  uint32_t crc_ = 0;
};

}  // namespace pbm::codec
