// Streaming compression codecs for backup objects: a compressing Sink and a decompressing Source
// per codec, with bounded memory, so that many files can stream at once.
//
// Formats (each readable by the usual command-line tool):
//   none    raw bytes ("")
//   gzip    RFC 1952 via zlib ("gzip -d"); the member's CRC-32 and size are checked
//   zstd    zstd frames with content checksum ("zstd -d")
//   lz4     LZ4 frame format, 1 MiB linked blocks, block and content checksums ("lz4 -d")
//   snappy  the snappy framing format ("sNaPpY" stream identifier, chunks with masked CRC-32C)
//           plus one skippable end-of-stream chunk (see below)
// PBM's s2 is not supported (no C/C++ implementation worth depending on); ParseCodec says so.
//
// Errors: every function throws pbm::Error. Bad names and levels are kInvalidArgument; a corrupt
// or truncated compressed stream is kCorrupt; errors of the underlying Sink/Source propagate as
// they are. Bytes a decompressor returned before it threw may be wrong: discard the output of a
// stream that throws. After a compressor or decompressor threw, every further call throws.
//
// Truncation: gzip, zstd and lz4 streams end with a trailer the decompressor requires, so a
// stream cut anywhere is reported as kCorrupt. The snappy framing format has no end marker, so our
// compressor appends a skippable chunk (type 0xfd, "pbmEOS" + uint64 LE byte count) that other
// readers skip and our reader requires; a snappy-framed stream from another writer therefore reads
// as truncated. "none" cannot detect truncation: rely on the object's size and checksum.
// Every compressed stream holds at least one frame; an empty input is corrupt, not empty.
// Concatenated frames/members (as zstd, lz4, pigz and `cat a.gz b.gz` make) are read as one stream.
//
// Thread safety: a compressor or decompressor is used by one thread at a time; any number of them
// may run in parallel. The free functions are thread-safe.
#pragma once

#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "codec/stream.h"

namespace pbm::codec {

enum class Codec { kNone, kGzip, kZstd, kLz4, kSnappy };

// "none" | "gzip" | "zstd" | "lz4" | "snappy" (exact, lower case). PBM's "s2" throws
// kInvalidArgument "s2 is not supported; use zstd or lz4"; anything else throws kInvalidArgument
// naming the allowed values.
Codec ParseCodec(std::string_view name);
// The name ParseCodec accepts.
std::string_view CodecName(Codec c);
// File-name suffix as PBM uses: "" | ".gz" | ".zst" | ".lz4" | ".snappy".
std::string_view CodecSuffix(Codec c);

// Validates a level for a codec and returns the level to use (nullopt = the codec's default):
//   none, snappy: no levels (0; any given level is rejected)
//   gzip: 1..9, default 6
//   zstd: 1..22, default 3
//   lz4:  1..12, default 1 (1-2 fast mode, 3..12 high-compression mode)
// Throws kInvalidArgument naming the codec and its range.
int ResolveLevel(Codec c, std::optional<int> level);

// Compressing writer: Write() plain bytes, the compressed stream goes to `out` (not owned; must
// outlive the compressor). Close() writes the end of the stream and then closes `out`; without
// Close() the stream is incomplete and `out` is left open. `level` must be valid for the codec
// (see ResolveLevel; throws kInvalidArgument otherwise).
std::unique_ptr<Sink> NewCompressor(Codec c, int level, Sink* out);

// Decompressing reader over a compressed stream `in` (not owned; must outlive the decompressor).
// Read() returns plain bytes and 0 only after the whole stream was read and verified; a corrupt or
// truncated stream throws pbm::Error(kCorrupt). Reads `in` until its end: trailing bytes after the
// last frame are corrupt.
std::unique_ptr<Source> NewDecompressor(Codec c, Source* in);

// Whole-buffer helpers for tests and small objects (same formats and errors as the streams).
std::string CompressBuffer(Codec c, int level, std::string_view data);
std::string DecompressBuffer(Codec c, std::string_view data);

// Upper bound of the heap memory one compressor at `level`, or one decompressor of a stream
// written at `level`, holds (library state plus our buffers); used to bound parallel transfers.
// Per codec: none 0; gzip 0.33 MiB; zstd from ZSTD_estimate{C,D}StreamSize: 1.5 MiB at level 1,
// 3.7 MiB at 3, 17 MiB at 9, 90 MiB at 19, 780 MiB at 22; lz4 2.3 MiB (fast) / 2.5 MiB (HC);
// snappy 0.31 MiB. The unit test checks these bounds against the heap.
// A zstd stream from another writer may declare a window of up to 128 MiB (zstd's default limit).
// Throws kInvalidArgument for an invalid level.
size_t MaxStreamMemory(Codec c, int level);

}  // namespace pbm::codec
