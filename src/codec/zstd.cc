// zstd over libzstd's streaming API, frames with a content checksum (XXH64) so that the
// decompressor detects corruption. Single-threaded per stream: the backup already compresses
// several files in parallel, and ZSTD_c_nbWorkers would multiply the per-stream memory.
#define ZSTD_STATIC_LINKING_ONLY  // ZSTD_estimate*StreamSize, exported by libzstd.so
#include <zstd.h>

#include <algorithm>

#include "codec/codec_internal.h"

namespace pbm::codec::internal {

namespace {

[[noreturn]] void ZstdInternal(std::string_view what, size_t code) {
  Fail(ErrorKind::kInternal, "zstd {}: {}", what, ZSTD_getErrorName(code));
}

class ZstdCompressor : public CompressorBase {
 public:
  ZstdCompressor(int level, Sink* out)
      : CompressorBase("zstd", out),
        cctx_(ZSTD_createCCtx()),
        out_size_(ZSTD_CStreamOutSize()),
        out_buf_(std::make_unique<uint8_t[]>(out_size_)) {
    if (cctx_ == nullptr) Fail(ErrorKind::kInternal, "zstd compress: cannot create a context");
    size_t rc = ZSTD_CCtx_setParameter(cctx_, ZSTD_c_compressionLevel, level);
    if (ZSTD_isError(rc)) ZstdInternal("compress: set level", rc);
    rc = ZSTD_CCtx_setParameter(cctx_, ZSTD_c_checksumFlag, 1);
    if (ZSTD_isError(rc)) ZstdInternal("compress: enable checksum", rc);
  }
  ~ZstdCompressor() override { ZSTD_freeCCtx(cctx_); }

 protected:
  void DoWrite(const uint8_t* data, size_t n) override {
    ZSTD_inBuffer in{data, n, 0};
    while (in.pos < in.size) Compress(&in, ZSTD_e_continue);
  }

  void DoFinish() override {
    ZSTD_inBuffer in{nullptr, 0, 0};
    while (Compress(&in, ZSTD_e_end) != 0) {
    }
  }

 private:
  // One call of ZSTD_compressStream2; writes what it produced. Returns its hint (0 = done).
  size_t Compress(ZSTD_inBuffer* in, ZSTD_EndDirective mode) {
    ZSTD_outBuffer out{out_buf_.get(), out_size_, 0};
    size_t rc = ZSTD_compressStream2(cctx_, &out, in, mode);
    if (ZSTD_isError(rc)) ZstdInternal("compress", rc);
    if (out.pos > 0) out_->Write(out_buf_.get(), out.pos);
    return rc;
  }

  ZSTD_CCtx* cctx_;
  size_t out_size_;
  std::unique_ptr<uint8_t[]> out_buf_;
};

class ZstdDecompressor : public DecompressorBase {
 public:
  explicit ZstdDecompressor(Source* in)
      : DecompressorBase("zstd", in), dctx_(ZSTD_createDCtx()), in_buf_(ZSTD_DStreamInSize()) {
    if (dctx_ == nullptr) Fail(ErrorKind::kInternal, "zstd decompress: cannot create a context");
  }
  ~ZstdDecompressor() override { ZSTD_freeDCtx(dctx_); }

 protected:
  size_t DoRead(uint8_t* buf, size_t n) override {
    while (true) {
      in_buf_.Refill(in_);
      // frame_done_: the last frame was decoded, verified and fully returned.
      if (in_buf_.empty() && in_buf_.eof() && frame_done_) return 0;
      ZSTD_inBuffer in{in_buf_.data(), in_buf_.size(), 0};
      ZSTD_outBuffer out{buf, n, 0};
      size_t rc = ZSTD_decompressStream(dctx_, &out, &in);
      if (ZSTD_isError(rc)) Corrupt(ZSTD_getErrorName(rc));
      in_buf_.Consume(in.pos);
      if (in.pos > 0 || out.pos > 0) frame_done_ = rc == 0;
      if (in.pos > 0) started_ = true;
      if (out.pos > 0) return out.pos;
      if (in_buf_.empty() && in_buf_.eof()) {
        if (frame_done_) return 0;
        Corrupt(started_ ? "truncated (the input ends inside a zstd frame)"
                         : "empty input (no zstd frame)");
      }
      if (in.pos == 0) Fail(ErrorKind::kInternal, "zstd decompress: no progress");
    }
  }

 private:
  ZSTD_DCtx* dctx_;
  InputBuffer in_buf_;
  bool frame_done_ = false;
  bool started_ = false;
};

}  // namespace

std::unique_ptr<Sink> NewZstdCompressor(int level, Sink* out) {
  return std::make_unique<ZstdCompressor>(level, out);
}

std::unique_ptr<Source> NewZstdDecompressor(Source* in) {
  return std::make_unique<ZstdDecompressor>(in);
}

size_t ZstdMemory(int level) {
  // ZSTD_estimateCStreamSize covers the context with its internal buffers for an unknown source
  // size; a decompressor needs the level's window plus its buffers.
  size_t compress = ZSTD_estimateCStreamSize(level) + ZSTD_CStreamOutSize();
  ZSTD_compressionParameters params = ZSTD_getCParams(level, 0, 0);
  size_t decompress =
      ZSTD_estimateDStreamSize(size_t{1} << params.windowLog) + ZSTD_DStreamInSize();
  return std::max(compress, decompress);
}

}  // namespace pbm::codec::internal
