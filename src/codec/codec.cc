#include "codec/codec.h"

#include <algorithm>

#include "codec/codec_internal.h"
#include "common/error.h"

namespace pbm::codec {

namespace {

constexpr std::string_view kAllowed = "none, gzip, zstd, lz4, snappy";

struct LevelRange {
  int min;
  int max;
  int def;
};

std::optional<LevelRange> Levels(Codec c) {
  switch (c) {
    case Codec::kGzip:
      return LevelRange{1, 9, 6};
    case Codec::kZstd:
      return LevelRange{1, 22, 3};
    case Codec::kLz4:
      return LevelRange{1, 12, 1};
    case Codec::kNone:
    case Codec::kSnappy:
      return std::nullopt;
  }
  return std::nullopt;
}

// "none" codec: bytes pass through unchanged.
class PassThroughCompressor : public internal::CompressorBase {
 public:
  explicit PassThroughCompressor(Sink* out) : CompressorBase("none", out) {}

 protected:
  void DoWrite(const uint8_t* data, size_t n) override { out_->Write(data, n); }
  void DoFinish() override {}
};

class PassThroughDecompressor : public internal::DecompressorBase {
 public:
  explicit PassThroughDecompressor(Source* in) : DecompressorBase("none", in) {}

 protected:
  size_t DoRead(uint8_t* buf, size_t n) override { return in_->Read(buf, n); }
};

}  // namespace

Codec ParseCodec(std::string_view name) {
  if (name == "none") return Codec::kNone;
  if (name == "gzip") return Codec::kGzip;
  if (name == "zstd") return Codec::kZstd;
  if (name == "lz4") return Codec::kLz4;
  if (name == "snappy") return Codec::kSnappy;
  if (name == "s2") Fail(ErrorKind::kInvalidArgument, "s2 is not supported; use zstd or lz4");
  Fail(ErrorKind::kInvalidArgument, "unknown compression \"{}\": expected one of {}", name,
       kAllowed);
}

std::string_view CodecName(Codec c) {
  switch (c) {
    case Codec::kNone:
      return "none";
    case Codec::kGzip:
      return "gzip";
    case Codec::kZstd:
      return "zstd";
    case Codec::kLz4:
      return "lz4";
    case Codec::kSnappy:
      return "snappy";
  }
  Fail(ErrorKind::kInvalidArgument, "invalid codec value {}", static_cast<int>(c));
}

std::string_view CodecSuffix(Codec c) {
  switch (c) {
    case Codec::kNone:
      return "";
    case Codec::kGzip:
      return ".gz";
    case Codec::kZstd:
      return ".zst";
    case Codec::kLz4:
      return ".lz4";
    case Codec::kSnappy:
      return ".snappy";
  }
  Fail(ErrorKind::kInvalidArgument, "invalid codec value {}", static_cast<int>(c));
}

int ResolveLevel(Codec c, std::optional<int> level) {
  std::string_view name = CodecName(c);
  std::optional<LevelRange> range = Levels(c);
  if (!range) {
    if (level) {
      Fail(ErrorKind::kInvalidArgument,
           "compression level {} is invalid for {}: {} has no compression levels", *level, name,
           name);
    }
    return 0;
  }
  if (!level) return range->def;
  if (*level < range->min || *level > range->max) {
    Fail(ErrorKind::kInvalidArgument,
         "compression level {} is invalid for {}: expected {}..{} (default {})", *level, name,
         range->min, range->max, range->def);
  }
  return *level;
}

namespace {
// A level passed to the stream factories: 0 for codecs without levels, else validated.
int CheckLevel(Codec c, int level) {
  if (!Levels(c) && level == 0) return 0;
  return ResolveLevel(c, level);
}
}  // namespace

std::unique_ptr<Sink> NewCompressor(Codec c, int level, Sink* out) {
  level = CheckLevel(c, level);
  switch (c) {
    case Codec::kNone:
      return std::make_unique<PassThroughCompressor>(out);
    case Codec::kGzip:
      return internal::NewGzipCompressor(level, out);
    case Codec::kZstd:
      return internal::NewZstdCompressor(level, out);
    case Codec::kLz4:
      return internal::NewLz4Compressor(level, out);
    case Codec::kSnappy:
      return internal::NewSnappyCompressor(out);
  }
  Fail(ErrorKind::kInvalidArgument, "invalid codec value {}", static_cast<int>(c));
}

std::unique_ptr<Source> NewDecompressor(Codec c, Source* in) {
  switch (c) {
    case Codec::kNone:
      return std::make_unique<PassThroughDecompressor>(in);
    case Codec::kGzip:
      return internal::NewGzipDecompressor(in);
    case Codec::kZstd:
      return internal::NewZstdDecompressor(in);
    case Codec::kLz4:
      return internal::NewLz4Decompressor(in);
    case Codec::kSnappy:
      return internal::NewSnappyDecompressor(in);
  }
  Fail(ErrorKind::kInvalidArgument, "invalid codec value {}", static_cast<int>(c));
}

std::string CompressBuffer(Codec c, int level, std::string_view data) {
  StringSink sink;
  std::unique_ptr<Sink> compressor = NewCompressor(c, level, &sink);
  compressor->Write(data.data(), data.size());
  compressor->Close();
  return sink.Take();
}

std::string DecompressBuffer(Codec c, std::string_view data) {
  StringSource source(data);
  std::unique_ptr<Source> decompressor = NewDecompressor(c, &source);
  std::string out;
  size_t chunk = std::max<size_t>(64 * 1024, data.size() * 2);
  while (true) {
    size_t old = out.size();
    out.resize(old + chunk);
    size_t r = ReadFull(*decompressor, out.data() + old, chunk);
    out.resize(old + r);
    if (r < chunk) break;
    chunk = std::min<size_t>(chunk * 2, 64 << 20);
  }
  return out;
}

size_t MaxStreamMemory(Codec c, int level) {
  level = CheckLevel(c, level);
  // Our compressor/decompressor objects and the libraries' small structs.
  constexpr size_t kObjects = 4 * 1024;
  switch (c) {
    case Codec::kNone:
      return 0;
    case Codec::kGzip:
      return internal::GzipMemory(level) + kObjects;
    case Codec::kZstd:
      return internal::ZstdMemory(level) + kObjects;
    case Codec::kLz4:
      return internal::Lz4Memory(level) + kObjects;
    case Codec::kSnappy:
      return internal::SnappyMemory() + kObjects;
  }
  Fail(ErrorKind::kInvalidArgument, "invalid codec value {}", static_cast<int>(c));
}

// ---- shared base classes ----

namespace internal {

void CompressorBase::Write(const void* data, size_t n) {
  if (state_ == State::kClosed)
    Fail(ErrorKind::kInternal, "{} compress: write after close", codec_);
  if (state_ == State::kFailed) {
    Fail(ErrorKind::kInternal, "{} compress: write after an earlier error", codec_);
  }
  if (n == 0) return;
  try {
    DoWrite(static_cast<const uint8_t*>(data), n);
  } catch (...) {
    state_ = State::kFailed;
    throw;
  }
}

void CompressorBase::Close() {
  if (state_ == State::kClosed) return;
  if (state_ == State::kFailed) {
    Fail(ErrorKind::kInternal, "{} compress: close after an earlier error", codec_);
  }
  try {
    DoFinish();
    out_->Close();
  } catch (...) {
    state_ = State::kFailed;
    throw;
  }
  state_ = State::kClosed;
}

size_t DecompressorBase::Read(void* buf, size_t n) {
  if (error_) std::rethrow_exception(error_);
  if (n == 0 || ended_) return 0;
  try {
    size_t r = DoRead(static_cast<uint8_t*>(buf), n);
    if (r == 0) ended_ = true;
    return r;
  } catch (...) {
    error_ = std::current_exception();
    throw;
  }
}

void DecompressorBase::Corrupt(std::string_view detail) const {
  Fail(ErrorKind::kCorrupt, "{} decompress: corrupt stream: {}", codec_, detail);
}

void InputBuffer::Refill(Source* in) {
  if (!empty() || eof_) return;
  pos_ = 0;
  end_ = in->Read(buf_.get(), capacity_);
  if (end_ == 0) eof_ = true;
}

}  // namespace internal

}  // namespace pbm::codec
