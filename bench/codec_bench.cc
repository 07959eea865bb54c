// Throughput of the backup codecs (compress and decompress, MB/s of plain data) on 64 MiB of
// realistic data: 75% document-like text (as in collection files) and 25% random bytes (as in
// already-compressed WiredTiger blocks). Not part of CTest. Run:
//   cmake --build <build> --target codec_bench && <build>/bin/codec_bench
#include <benchmark/benchmark.h>

#include <string>
#include <vector>

#include "codec/codec.h"
#include "codec/codec_test_util.h"

namespace pbm::codec {
namespace {

const std::string& Data() {
  static const std::string data = [] {
    constexpr size_t kTotal = 64 << 20;
    constexpr size_t kPiece = 4 << 20;  // alternate 3 MiB documents, 1 MiB random
    std::string s;
    s.reserve(kTotal);
    for (uint64_t i = 0; s.size() < kTotal; ++i) {
      s += testing::DocumentLike(kPiece * 3 / 4, 100 + i);
      s += testing::RandomBytes(kPiece / 4, 200 + i);
    }
    s.resize(kTotal);
    return s;
  }();
  return data;
}

// A sink that only counts, so that the benchmark measures the codec, not memory copies.
class NullSink : public Sink {
 public:
  void Write(const void*, size_t n) override { bytes += n; }
  void Close() override {}
  size_t bytes = 0;
};

void BM_Compress(benchmark::State& state) {
  const Codec codec = static_cast<Codec>(state.range(0));
  const int level = static_cast<int>(state.range(1));
  const std::string& data = Data();
  constexpr size_t kWrite = 1 << 20;  // the backup's read size
  size_t out = 0;
  for (auto _ : state) {
    NullSink sink;
    auto w = NewCompressor(codec, level, &sink);
    for (size_t pos = 0; pos < data.size(); pos += kWrite) {
      w->Write(data.data() + pos, std::min(kWrite, data.size() - pos));
    }
    w->Close();
    out = sink.bytes;
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * data.size()));
  state.counters["ratio"] = static_cast<double>(data.size()) / static_cast<double>(out);
  state.counters["mem_MiB"] = static_cast<double>(MaxStreamMemory(codec, level)) / (1 << 20);
  state.SetLabel(std::string(CodecName(codec)) + "/" + std::to_string(level));
}

void BM_Decompress(benchmark::State& state) {
  const Codec codec = static_cast<Codec>(state.range(0));
  const int level = static_cast<int>(state.range(1));
  const std::string& data = Data();
  const std::string packed = CompressBuffer(codec, level, data);
  std::vector<char> buf(1 << 20);
  for (auto _ : state) {
    StringSource source(packed);
    auto r = NewDecompressor(codec, &source);
    size_t total = 0;
    while (size_t n = r->Read(buf.data(), buf.size())) total += n;
    if (total != data.size()) state.SkipWithError("size mismatch");
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * data.size()));
  state.SetLabel(std::string(CodecName(codec)) + "/" + std::to_string(level));
}

// Codec "none" is only read back (a copy); compressing with it would time virtual calls only.
template <bool kWithNone>
void Levels(benchmark::internal::Benchmark* b) {
  const std::pair<Codec, std::vector<int>> kCases[] = {
      {Codec::kNone, {0}},      {Codec::kGzip, {1, 6, 9}}, {Codec::kZstd, {1, 3, 6, 9}},
      {Codec::kLz4, {1, 3, 9}}, {Codec::kSnappy, {0}},
  };
  for (const auto& [codec, levels] : kCases) {
    if (codec == Codec::kNone && !kWithNone) continue;
    for (int level : levels) b->Args({static_cast<int64_t>(codec), level});
  }
  b->ArgNames({"codec", "level"})->Unit(benchmark::kMillisecond)->UseRealTime();
}

BENCHMARK(BM_Compress)->Apply(Levels<false>);
BENCHMARK(BM_Decompress)->Apply(Levels<true>);

}  // namespace
}  // namespace pbm::codec

BENCHMARK_MAIN();
