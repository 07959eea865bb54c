// Internal to pbm_codec: the shared state handling of compressors and decompressors, and the
// per-codec factories that codec.cc dispatches to. Not for use outside src/codec.
#pragma once

#include <cstddef>
#include <cstdint>
#include <exception>
#include <memory>
#include <string_view>

#include "codec/stream.h"
#include "common/error.h"

namespace pbm::codec::internal {

// Enforces the Sink contract for every codec: no Write after Close, Close idempotent, and after
// any exception the compressor refuses further use (its library state is unknown).
class CompressorBase : public Sink {
 public:
  CompressorBase(std::string_view codec, Sink* out) : codec_(codec), out_(out) {}
  void Write(const void* data, size_t n) final;
  void Close() final;

 protected:
  virtual void DoWrite(const uint8_t* data, size_t n) = 0;
  // Writes the end of the stream to out_ (out_ is closed by Close() afterwards).
  virtual void DoFinish() = 0;

  std::string_view codec_;
  Sink* out_;

 private:
  enum class State { kOpen, kClosed, kFailed };
  State state_ = State::kOpen;
};

// Enforces the Source contract for every decompressor: n == 0 reads nothing, the end is sticky,
// and after an exception every Read() throws it again.
class DecompressorBase : public Source {
 public:
  DecompressorBase(std::string_view codec, Source* in) : codec_(codec), in_(in) {}
  size_t Read(void* buf, size_t n) final;

 protected:
  // Returns > 0 bytes, or 0 at the verified end of the stream.
  virtual size_t DoRead(uint8_t* buf, size_t n) = 0;
  [[noreturn]] void Corrupt(std::string_view detail) const;

  std::string_view codec_;
  Source* in_;

 private:
  bool ended_ = false;
  std::exception_ptr error_;
};

// A fixed input buffer over a Source, for the decompressors.
class InputBuffer {
 public:
  explicit InputBuffer(size_t capacity)
      : buf_(std::make_unique<uint8_t[]>(capacity)), capacity_(capacity) {}
  const uint8_t* data() const { return buf_.get() + pos_; }
  size_t size() const { return end_ - pos_; }
  bool empty() const { return pos_ == end_; }
  bool eof() const { return eof_; }
  void Consume(size_t n) { pos_ += n; }
  // When empty and not at the end: reads more from `in` (sets eof() when it returned 0).
  void Refill(Source* in);

 private:
  std::unique_ptr<uint8_t[]> buf_;
  size_t capacity_;
  size_t pos_ = 0;
  size_t end_ = 0;
  bool eof_ = false;
};

std::unique_ptr<Sink> NewGzipCompressor(int level, Sink* out);
std::unique_ptr<Source> NewGzipDecompressor(Source* in);
size_t GzipMemory(int level);

std::unique_ptr<Sink> NewZstdCompressor(int level, Sink* out);
std::unique_ptr<Source> NewZstdDecompressor(Source* in);
size_t ZstdMemory(int level);

std::unique_ptr<Sink> NewLz4Compressor(int level, Sink* out);
std::unique_ptr<Source> NewLz4Decompressor(Source* in);
size_t Lz4Memory(int level);

std::unique_ptr<Sink> NewSnappyCompressor(Sink* out);
std::unique_ptr<Source> NewSnappyDecompressor(Source* in);
size_t SnappyMemory();

// The table-driven CRC-32C, exposed so tests can compare it with the hardware path.
uint32_t Crc32cPortable(uint32_t crc, const void* data, size_t n);

}  // namespace pbm::codec::internal
