// snappy in the snappy framing format (snappy's framing_format.txt, the "sNaPpY" stream that
// PBM's Go snappy writer and python-snappy produce). libsnappy only compresses whole buffers, so
// the framing is written here by hand over snappy::RawCompress / RawUncompress:
//
//   chunk  = type (1 byte) + length (3 bytes LE) + payload
//   0xff   stream identifier, payload "sNaPpY"; first in every stream, may repeat
//   0x00   compressed data: masked CRC-32C (LE) of the uncompressed data + snappy block
//   0x01   uncompressed data: masked CRC-32C (LE) + the bytes
//   0xfe   padding; 0x80..0xfd other skippable chunks; 0x02..0x7f unskippable (an error)
//   each data chunk holds at most 65536 uncompressed bytes
//
// The format has no end marker, so a stream cut between chunks would read as complete. Our
// writer therefore ends every stream with a skippable chunk 0xfd whose payload is "pbmEOS" and
// the uint64 LE count of uncompressed bytes since the start or the previous end chunk; other
// readers skip it, our reader requires it and checks the count (so a repeated stream identifier
// without an end chunk before it cannot hide a truncated first stream).
#include <snappy.h>

#include <algorithm>
#include <cstring>

#include "codec/checksum.h"
#include "codec/codec_internal.h"

namespace pbm::codec::internal {

namespace {

constexpr size_t kMaxBlock = 65536;  // uncompressed bytes per data chunk (spec)
constexpr uint8_t kCompressedChunk = 0x00;
constexpr uint8_t kUncompressedChunk = 0x01;
constexpr uint8_t kEndChunk = 0xfd;  // ours: in the skippable range
constexpr uint8_t kPaddingChunk = 0xfe;
constexpr uint8_t kStreamIdChunk = 0xff;
constexpr char kStreamId[] = "sNaPpY";
constexpr size_t kStreamIdSize = 6;
constexpr char kEndMagic[] = "pbmEOS";
constexpr size_t kEndMagicSize = 6;
constexpr size_t kEndPayloadSize = kEndMagicSize + 8;

void PutLe(uint8_t* p, uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) p[i] = static_cast<uint8_t>(v >> (8 * i));
}

uint64_t GetLe(const uint8_t* p, int bytes) {
  uint64_t v = 0;
  for (int i = 0; i < bytes; ++i) v |= uint64_t{p[i]} << (8 * i);
  return v;
}

class SnappyCompressor : public CompressorBase {
 public:
  explicit SnappyCompressor(Sink* out)
      : CompressorBase("snappy", out),
        in_buf_(std::make_unique<uint8_t[]>(kMaxBlock)),
        out_cap_(8 + snappy::MaxCompressedLength(kMaxBlock)),
        out_buf_(std::make_unique<uint8_t[]>(out_cap_)) {}

 protected:
  void DoWrite(const uint8_t* data, size_t n) override {
    while (n > 0) {
      size_t k = std::min(n, kMaxBlock - in_len_);
      std::memcpy(in_buf_.get() + in_len_, data, k);
      in_len_ += k;
      data += k;
      n -= k;
      if (in_len_ == kMaxBlock) EmitBlock();
    }
  }

  void DoFinish() override {
    if (in_len_ > 0) EmitBlock();
    EmitStreamIdOnce();
    uint8_t chunk[4 + kEndPayloadSize];
    chunk[0] = kEndChunk;
    PutLe(chunk + 1, kEndPayloadSize, 3);
    std::memcpy(chunk + 4, kEndMagic, kEndMagicSize);
    PutLe(chunk + 4 + kEndMagicSize, total_, 8);
    out_->Write(chunk, sizeof(chunk));
  }

 private:
  void EmitStreamIdOnce() {
    if (wrote_stream_id_) return;
    uint8_t chunk[4 + kStreamIdSize] = {kStreamIdChunk};
    PutLe(chunk + 1, kStreamIdSize, 3);
    std::memcpy(chunk + 4, kStreamId, kStreamIdSize);
    out_->Write(chunk, sizeof(chunk));
    wrote_stream_id_ = true;
  }

  // Writes the buffered bytes as one chunk: compressed, or stored when snappy saves < 12.5%
  // (as Go's snappy writer decides).
  void EmitBlock() {
    EmitStreamIdOnce();
    uint8_t* chunk = out_buf_.get();
    PutLe(chunk + 4, Crc32c::Mask(Crc32c::Of(in_buf_.get(), in_len_)), 4);
    size_t compressed = 0;
    snappy::RawCompress(reinterpret_cast<const char*>(in_buf_.get()), in_len_,
                        reinterpret_cast<char*>(chunk + 8), &compressed);
    size_t payload;
    if (compressed < in_len_ - in_len_ / 8) {
      chunk[0] = kCompressedChunk;
      payload = 4 + compressed;
    } else {
      chunk[0] = kUncompressedChunk;
      std::memcpy(chunk + 8, in_buf_.get(), in_len_);
      payload = 4 + in_len_;
    }
    PutLe(chunk + 1, payload, 3);
    out_->Write(chunk, 4 + payload);
    total_ += in_len_;
    in_len_ = 0;
  }

  std::unique_ptr<uint8_t[]> in_buf_;
  size_t in_len_ = 0;
  size_t out_cap_;
  std::unique_ptr<uint8_t[]> out_buf_;
  bool wrote_stream_id_ = false;
  uint64_t total_ = 0;
};

class SnappyDecompressor : public DecompressorBase {
 public:
  explicit SnappyDecompressor(Source* in)
      : DecompressorBase("snappy", in),
        max_payload_(4 + snappy::MaxCompressedLength(kMaxBlock)),
        chunk_(std::make_unique<uint8_t[]>(max_payload_)),
        block_(std::make_unique<uint8_t[]>(kMaxBlock)) {}

 protected:
  size_t DoRead(uint8_t* buf, size_t n) override {
    while (block_pos_ == block_len_) {
      if (!NextChunk()) return 0;
    }
    size_t k = std::min(n, block_len_ - block_pos_);
    std::memcpy(buf, block_.get() + block_pos_, k);
    block_pos_ += k;
    return k;
  }

 private:
  // Reads and handles one chunk; a data chunk fills block_. Returns false at the verified end.
  bool NextChunk() {
    uint8_t header[4];
    size_t got = ReadFull(*in_, header, sizeof(header));
    if (got == 0) {
      if (ended_) return false;
      Corrupt(started_ ? "truncated (no end-of-stream chunk; the input ends after " +
                             std::to_string(total_) + " bytes of data)"
                       : std::string("empty input (no snappy stream identifier)"));
    }
    if (got < sizeof(header)) Corrupt("truncated chunk header");
    started_ = true;
    uint8_t type = header[0];
    size_t len = GetLe(header + 1, 3);

    if (type == kStreamIdChunk) {
      if (len != kStreamIdSize) Corrupt("bad stream identifier length");
      ReadPayload(len);
      if (std::memcmp(chunk_.get(), kStreamId, kStreamIdSize) != 0) {
        Corrupt("bad stream identifier (not a snappy framed stream)");
      }
      in_stream_ = true;
      ended_ = false;
      return true;
    }
    if (!in_stream_) {
      Corrupt(ended_ ? "data after the end-of-stream chunk"
                     : "missing stream identifier (not a snappy framed stream)");
    }
    switch (type) {
      case kCompressedChunk: {
        if (len < 4 || len > max_payload_) Corrupt("bad compressed chunk length");
        ReadPayload(len);
        const char* data = reinterpret_cast<const char*>(chunk_.get() + 4);
        size_t ulen = 0;
        if (!snappy::GetUncompressedLength(data, len - 4, &ulen) || ulen > kMaxBlock) {
          Corrupt("bad compressed chunk");
        }
        if (!snappy::RawUncompress(data, len - 4, reinterpret_cast<char*>(block_.get()))) {
          Corrupt("bad compressed chunk");
        }
        SetBlock(ulen);
        return true;
      }
      case kUncompressedChunk: {
        if (len < 4 || len > 4 + kMaxBlock) Corrupt("bad uncompressed chunk length");
        ReadPayload(len);
        std::memcpy(block_.get(), chunk_.get() + 4, len - 4);
        SetBlock(len - 4);
        return true;
      }
      case kEndChunk: {
        if (len == kEndPayloadSize) {
          ReadPayload(len);
          if (std::memcmp(chunk_.get(), kEndMagic, kEndMagicSize) == 0) {
            uint64_t count = GetLe(chunk_.get() + kEndMagicSize, 8);
            if (count != total_) {
              Corrupt("end-of-stream chunk counts " + std::to_string(count) + " bytes but " +
                      std::to_string(total_) + " were read");
            }
            ended_ = true;
            in_stream_ = false;
            total_ = 0;
          }
          return true;
        }
        Skip(len);
        return true;
      }
      default:
        if (type < 0x80) Corrupt("reserved unskippable chunk type " + std::to_string(type));
        Skip(len);  // padding (0xfe) and reserved skippable chunks
        return true;
    }
  }

  void ReadPayload(size_t len) {
    if (ReadFull(*in_, chunk_.get(), len) != len) Corrupt("truncated chunk");
  }

  void Skip(size_t len) {
    while (len > 0) {
      size_t k = std::min(len, max_payload_);
      ReadPayload(k);
      len -= k;
    }
  }

  // Verifies the masked CRC-32C of the block just decoded and makes it readable.
  void SetBlock(size_t len) {
    uint32_t want = static_cast<uint32_t>(GetLe(chunk_.get(), 4));
    if (Crc32c::Mask(Crc32c::Of(block_.get(), len)) != want) Corrupt("CRC-32C mismatch");
    block_len_ = len;
    block_pos_ = 0;
    total_ += len;
  }

  size_t max_payload_;
  std::unique_ptr<uint8_t[]> chunk_;  // payload of the current chunk
  std::unique_ptr<uint8_t[]> block_;  // uncompressed data of the current chunk
  size_t block_len_ = 0;
  size_t block_pos_ = 0;
  bool started_ = false;
  bool in_stream_ = false;  // after a stream identifier, before our end chunk
  bool ended_ = false;      // our end chunk was read and matched
  uint64_t total_ = 0;      // uncompressed bytes since the start or the last end chunk
};

}  // namespace

std::unique_ptr<Sink> NewSnappyCompressor(Sink* out) {
  return std::make_unique<SnappyCompressor>(out);
}

std::unique_ptr<Source> NewSnappyDecompressor(Source* in) {
  return std::make_unique<SnappyDecompressor>(in);
}

size_t SnappyMemory() {
  // Compressor: 64 KiB input block + one output chunk; decompressor: one input chunk + 64 KiB
  // block. snappy::RawCompress also allocates transient working memory (hash table and scratch)
  // of about a block plus its compressed bound while it runs.
  size_t chunk = 8 + snappy::MaxCompressedLength(kMaxBlock);
  size_t compress = kMaxBlock + chunk + (kMaxBlock + chunk + 32 * 1024);
  size_t decompress = chunk + kMaxBlock;
  return std::max(compress, decompress);
}

}  // namespace pbm::codec::internal
