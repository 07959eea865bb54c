#include "codec/stream.h"

#include <algorithm>
#include <cstring>

#include "common/error.h"

namespace pbm::codec {

size_t ReadFull(Source& in, void* buf, size_t n) {
  auto* p = static_cast<char*>(buf);
  size_t got = 0;
  while (got < n) {
    size_t r = in.Read(p + got, n - got);
    if (r == 0) break;
    got += r;
  }
  return got;
}

void StringSink::Write(const void* data, size_t n) {
  if (closed_) Fail(ErrorKind::kInternal, "write to a closed in-memory sink");
  data_.append(static_cast<const char*>(data), n);
}

void StringSink::Close() { closed_ = true; }

size_t StringSource::Read(void* buf, size_t n) {
  size_t k = std::min(n, data_.size());
  if (k > 0) std::memcpy(buf, data_.data(), k);
  data_.remove_prefix(k);
  return k;
}

void CountingSink::Write(const void* data, size_t n) {
  if (next_ != nullptr) next_->Write(data, n);
  bytes_ += n;
}

void CountingSink::Close() {
  if (next_ != nullptr) next_->Close();
}

void ChecksumSink::Write(const void* data, size_t n) {
  if (next_ != nullptr) next_->Write(data, n);
  sha_.Update(data, n);
  bytes_ += n;
}

void ChecksumSink::Close() {
  if (next_ != nullptr) next_->Close();
}

size_t ChecksumSource::Read(void* buf, size_t n) {
  size_t r = in_->Read(buf, n);
  sha_.Update(buf, r);
  bytes_ += r;
  return r;
}

}  // namespace pbm::codec
