// lz4 over liblz4's frame API (lz4frame.h): the format of the `lz4` tool, with 1 MiB linked
// blocks, a checksum per block (corruption is found before the block is returned) and a content
// checksum at the end of each frame.
#include <lz4frame.h>

#include <algorithm>

#include "codec/codec_internal.h"

namespace pbm::codec::internal {

namespace {

constexpr size_t kBlockSize = 1 << 20;  // LZ4F_max1MB
constexpr size_t kInSize = 64 * 1024;
constexpr int kHcMinLevel = 3;  // LZ4HC_CLEVEL_MIN: levels below use the fast compressor

LZ4F_preferences_t Preferences(int level) {
  LZ4F_preferences_t prefs = LZ4F_INIT_PREFERENCES;
  prefs.frameInfo.blockSizeID = LZ4F_max1MB;
  prefs.frameInfo.blockMode = LZ4F_blockLinked;
  prefs.frameInfo.contentChecksumFlag = LZ4F_contentChecksumEnabled;
  prefs.frameInfo.blockChecksumFlag = LZ4F_blockChecksumEnabled;
  prefs.compressionLevel = level;
  prefs.autoFlush = 0;
  return prefs;
}

[[noreturn]] void Lz4Internal(std::string_view what, size_t code) {
  Fail(ErrorKind::kInternal, "lz4 {}: {}", what, LZ4F_getErrorName(code));
}

class Lz4Compressor : public CompressorBase {
 public:
  Lz4Compressor(int level, Sink* out) : CompressorBase("lz4", out), prefs_(Preferences(level)) {
    size_t rc = LZ4F_createCompressionContext(&cctx_, LZ4F_VERSION);
    if (LZ4F_isError(rc)) Lz4Internal("compress: create context", rc);
    out_size_ = std::max<size_t>(LZ4F_compressBound(kBlockSize, &prefs_), LZ4F_HEADER_SIZE_MAX);
    out_buf_ = std::make_unique<uint8_t[]>(out_size_);
  }
  ~Lz4Compressor() override { LZ4F_freeCompressionContext(cctx_); }

 protected:
  void DoWrite(const uint8_t* data, size_t n) override {
    Begin();
    while (n > 0) {
      // At most one block per call keeps the output within LZ4F_compressBound(kBlockSize).
      size_t k = std::min(n, kBlockSize);
      size_t rc = LZ4F_compressUpdate(cctx_, out_buf_.get(), out_size_, data, k, nullptr);
      if (LZ4F_isError(rc)) Lz4Internal("compress", rc);
      if (rc > 0) out_->Write(out_buf_.get(), rc);
      data += k;
      n -= k;
    }
  }

  void DoFinish() override {
    Begin();
    size_t rc = LZ4F_compressEnd(cctx_, out_buf_.get(), out_size_, nullptr);
    if (LZ4F_isError(rc)) Lz4Internal("compress: end frame", rc);
    out_->Write(out_buf_.get(), rc);
  }

 private:
  // Writes the frame header once, before the first data or the end.
  void Begin() {
    if (begun_) return;
    size_t rc = LZ4F_compressBegin(cctx_, out_buf_.get(), out_size_, &prefs_);
    if (LZ4F_isError(rc)) Lz4Internal("compress: begin frame", rc);
    out_->Write(out_buf_.get(), rc);
    begun_ = true;
  }

  LZ4F_preferences_t prefs_;
  LZ4F_cctx* cctx_ = nullptr;
  size_t out_size_ = 0;
  std::unique_ptr<uint8_t[]> out_buf_;
  bool begun_ = false;
};

class Lz4Decompressor : public DecompressorBase {
 public:
  explicit Lz4Decompressor(Source* in) : DecompressorBase("lz4", in), in_buf_(kInSize) {
    size_t rc = LZ4F_createDecompressionContext(&dctx_, LZ4F_VERSION);
    if (LZ4F_isError(rc)) Lz4Internal("decompress: create context", rc);
  }
  ~Lz4Decompressor() override { LZ4F_freeDecompressionContext(dctx_); }

 protected:
  size_t DoRead(uint8_t* buf, size_t n) override {
    while (true) {
      in_buf_.Refill(in_);
      // frame_done_: the last frame was decoded, verified and fully returned.
      if (in_buf_.empty() && in_buf_.eof() && frame_done_) return 0;
      size_t produced = n;
      size_t consumed = in_buf_.size();
      size_t rc = LZ4F_decompress(dctx_, buf, &produced, in_buf_.data(), &consumed, nullptr);
      if (LZ4F_isError(rc)) Corrupt(LZ4F_getErrorName(rc));
      in_buf_.Consume(consumed);
      if (consumed > 0 || produced > 0) frame_done_ = rc == 0;
      if (consumed > 0) started_ = true;
      if (produced > 0) return produced;
      if (in_buf_.empty() && in_buf_.eof()) {
        if (frame_done_) return 0;
        Corrupt(started_ ? "truncated (the input ends inside an lz4 frame)"
                         : "empty input (no lz4 frame)");
      }
      if (consumed == 0) Fail(ErrorKind::kInternal, "lz4 decompress: no progress");
    }
  }

 private:
  LZ4F_dctx* dctx_ = nullptr;
  InputBuffer in_buf_;
  bool frame_done_ = false;
  bool started_ = false;
};

}  // namespace

std::unique_ptr<Sink> NewLz4Compressor(int level, Sink* out) {
  return std::make_unique<Lz4Compressor>(level, out);
}

std::unique_ptr<Source> NewLz4Decompressor(Source* in) {
  return std::make_unique<Lz4Decompressor>(in);
}

size_t Lz4Memory(int level) {
  // lz4frame.c: the compression context keeps a block buffer plus 128 KiB of linked-block
  // history and the LZ4 (16 KiB) or LZ4HC (~256 KiB) state; our output buffer holds one
  // compressed block. The decompression context keeps an input block and an output block plus
  // 128 KiB of history; our input buffer adds 64 KiB. 64 KiB of slack covers the small structs.
  LZ4F_preferences_t prefs = Preferences(level);
  size_t state = level >= kHcMinLevel ? 256 * 1024 + 16 * 1024 : 16 * 1024;
  size_t compress = kBlockSize + 128 * 1024 + state + LZ4F_compressBound(kBlockSize, &prefs);
  size_t decompress = 2 * kBlockSize + 128 * 1024 + 16 + kInSize;
  return std::max(compress, decompress) + 64 * 1024;
}

}  // namespace pbm::codec::internal
