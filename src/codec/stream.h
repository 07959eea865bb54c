// Byte streams: the Sink and Source interfaces that codecs and storage drivers implement, and a
// few small decorators (in-memory ends, byte counting, SHA-256 while passing through).
//
// Thread safety: none of these objects may be used by two threads at once; different objects
// may be used concurrently.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>

#include "codec/checksum.h"

namespace pbm::codec {

// A destination of bytes. Write() takes the bytes or throws pbm::Error; Close() completes the
// stream (flushes, finalizes, commits) and throws if that fails. Destroying a sink that was not
// closed abandons the stream: the destination must not treat it as complete.
class Sink {
 public:
  virtual ~Sink() = default;
  // Appends `n` bytes from `data` (n == 0 is allowed and does nothing).
  virtual void Write(const void* data, size_t n) = 0;
  // Completes the stream. Writing after Close() is an error.
  virtual void Close() = 0;
};

// An origin of bytes.
class Source {
 public:
  virtual ~Source() = default;
  // Reads up to `n` bytes into `buf`; returns how many were read, at least 1 when n > 0 and the
  // stream is not at its end, and 0 at the end (or when n == 0). Throws pbm::Error on failure.
  virtual size_t Read(void* buf, size_t n) = 0;
};

// Reads until `n` bytes are read or the source ends; returns how many were read.
size_t ReadFull(Source& in, void* buf, size_t n);

// Collects written bytes in memory.
class StringSink : public Sink {
 public:
  void Write(const void* data, size_t n) override;
  void Close() override;
  bool closed() const { return closed_; }
  const std::string& data() const { return data_; }
  std::string Take() { return std::move(data_); }

 private:
  std::string data_;
  bool closed_ = false;
};

// Reads from memory. The viewed bytes must outlive the source.
class StringSource : public Source {
 public:
  explicit StringSource(std::string_view data) : data_(data) {}
  size_t Read(void* buf, size_t n) override;

 private:
  std::string_view data_;
};

// Forwards every byte to `next` (not owned; may be null to only count) and counts them.
// Close() closes `next`.
class CountingSink : public Sink {
 public:
  explicit CountingSink(Sink* next) : next_(next) {}
  void Write(const void* data, size_t n) override;
  void Close() override;
  uint64_t bytes() const { return bytes_; }

 private:
  Sink* next_;
  uint64_t bytes_ = 0;
};

// Forwards every byte to `next` (not owned; may be null) while counting them and computing their
// SHA-256, e.g. of the compressed object on its way to storage. Close() closes `next`.
class ChecksumSink : public Sink {
 public:
  explicit ChecksumSink(Sink* next) : next_(next) {}
  void Write(const void* data, size_t n) override;
  void Close() override;
  uint64_t bytes() const { return bytes_; }
  // Lower-case hex SHA-256 of all bytes written; call after the last Write().
  std::string HexDigest() { return sha_.HexDigest(); }

 private:
  Sink* next_;
  Sha256 sha_;
  uint64_t bytes_ = 0;
};

// Reads from `in` (not owned) while counting the bytes and computing their SHA-256, e.g. to
// verify an object during a restore.
class ChecksumSource : public Source {
 public:
  explicit ChecksumSource(Source* in) : in_(in) {}
  size_t Read(void* buf, size_t n) override;
  uint64_t bytes() const { return bytes_; }
  // Lower-case hex SHA-256 of all bytes read; call after the source reported its end.
  std::string HexDigest() { return sha_.HexDigest(); }

 private:
  Source* in_;
  Sha256 sha_;
  uint64_t bytes_ = 0;
};

}  // namespace pbm::codec
