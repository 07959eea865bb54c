// gzip (RFC 1952) over zlib's streaming deflate/inflate. libdeflate is faster but has no
// streaming API, so it cannot keep memory bounded for large files.
#include <zlib.h>

#include <algorithm>
#include <climits>

#include "codec/codec_internal.h"

namespace pbm::codec::internal {

namespace {

constexpr int kGzipWindowBits = 15 + 16;  // 32 KiB window, gzip wrapper
constexpr int kMemLevel = 8;              // zlib's default
constexpr size_t kOutSize = 64 * 1024;
constexpr size_t kInSize = 64 * 1024;
constexpr size_t kMaxZlibChunk = 1u << 30;  // avail_in/avail_out are 32-bit

class GzipCompressor : public CompressorBase {
 public:
  GzipCompressor(int level, Sink* out)
      : CompressorBase("gzip", out), out_buf_(std::make_unique<uint8_t[]>(kOutSize)) {
    int rc = deflateInit2(&zs_, level, Z_DEFLATED, kGzipWindowBits, kMemLevel, Z_DEFAULT_STRATEGY);
    if (rc != Z_OK) Fail(ErrorKind::kInternal, "gzip compress: deflateInit2 failed ({})", rc);
  }
  ~GzipCompressor() override { deflateEnd(&zs_); }

 protected:
  void DoWrite(const uint8_t* data, size_t n) override {
    while (n > 0) {
      size_t k = std::min(n, kMaxZlibChunk);
      zs_.next_in = const_cast<Bytef*>(data);
      zs_.avail_in = static_cast<uInt>(k);
      Deflate(Z_NO_FLUSH);
      data += k;
      n -= k;
    }
  }

  void DoFinish() override {
    zs_.next_in = nullptr;
    zs_.avail_in = 0;
    Deflate(Z_FINISH);
  }

 private:
  // Runs deflate until all input is consumed (Z_NO_FLUSH) or the member is complete (Z_FINISH).
  void Deflate(int flush) {
    while (true) {
      zs_.next_out = out_buf_.get();
      zs_.avail_out = kOutSize;
      int rc = deflate(&zs_, flush);
      if (rc == Z_STREAM_ERROR) Fail(ErrorKind::kInternal, "gzip compress: deflate failed");
      size_t have = kOutSize - zs_.avail_out;
      if (have > 0) out_->Write(out_buf_.get(), have);
      if (flush == Z_FINISH) {
        if (rc == Z_STREAM_END) return;
      } else if (zs_.avail_in == 0 && zs_.avail_out != 0) {
        return;
      }
    }
  }

  z_stream zs_{};
  std::unique_ptr<uint8_t[]> out_buf_;
};

class GzipDecompressor : public DecompressorBase {
 public:
  explicit GzipDecompressor(Source* in) : DecompressorBase("gzip", in), in_buf_(kInSize) {
    int rc = inflateInit2(&zs_, kGzipWindowBits);
    if (rc != Z_OK) Fail(ErrorKind::kInternal, "gzip decompress: inflateInit2 failed ({})", rc);
  }
  ~GzipDecompressor() override { inflateEnd(&zs_); }

 protected:
  size_t DoRead(uint8_t* buf, size_t n) override {
    n = std::min(n, kMaxZlibChunk);
    while (true) {
      in_buf_.Refill(in_);
      if (member_done_) {
        if (in_buf_.empty()) return 0;  // at the end of input, after a complete member
        inflateReset(&zs_);             // another member follows (concatenated gzip)
        member_done_ = false;
      }
      zs_.next_in = const_cast<Bytef*>(in_buf_.data());
      zs_.avail_in = static_cast<uInt>(in_buf_.size());
      zs_.next_out = buf;
      zs_.avail_out = static_cast<uInt>(n);
      int rc = inflate(&zs_, Z_NO_FLUSH);
      size_t consumed = in_buf_.size() - zs_.avail_in;
      size_t produced = n - zs_.avail_out;
      in_buf_.Consume(consumed);
      if (consumed > 0) started_ = true;
      switch (rc) {
        case Z_OK:
        case Z_BUF_ERROR:  // no progress possible without more input
          break;
        case Z_STREAM_END:
          member_done_ = true;
          break;
        case Z_NEED_DICT:
          Corrupt("the stream needs a preset dictionary");
        case Z_DATA_ERROR:
          Corrupt(zs_.msg != nullptr ? zs_.msg : "invalid deflate data");
        case Z_MEM_ERROR:
          Fail(ErrorKind::kInternal, "gzip decompress: out of memory");
        default:
          Fail(ErrorKind::kInternal, "gzip decompress: inflate failed ({})", rc);
      }
      if (produced > 0) return produced;
      if (member_done_) continue;
      if (in_buf_.empty() && in_buf_.eof()) {
        Corrupt(started_ ? "truncated (the input ends inside a gzip member)"
                         : "empty input (no gzip member)");
      }
      if (consumed == 0) Fail(ErrorKind::kInternal, "gzip decompress: inflate made no progress");
    }
  }

 private:
  z_stream zs_{};
  InputBuffer in_buf_;
  bool member_done_ = false;
  bool started_ = false;
};

}  // namespace

std::unique_ptr<Sink> NewGzipCompressor(int level, Sink* out) {
  return std::make_unique<GzipCompressor>(level, out);
}

std::unique_ptr<Source> NewGzipDecompressor(Source* in) {
  return std::make_unique<GzipDecompressor>(in);
}

size_t GzipMemory(int /*level*/) {
  // zlib.h / zconf.h: deflate needs (1 << (windowBits + 2)) + (1 << (memLevel + 9)) plus a few
  // KiB of state; inflate needs 1 << windowBits plus ~7 KiB. Our buffers add 64 KiB each way.
  size_t deflate_mem = (size_t{1} << 17) + (size_t{1} << (kMemLevel + 9)) + 8 * 1024 + kOutSize;
  size_t inflate_mem = (size_t{1} << 15) + 8 * 1024 + kInSize;
  return std::max(deflate_mem, inflate_mem);
}

}  // namespace pbm::codec::internal
