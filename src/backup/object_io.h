// The byte path of one backup object, shared by every engine:
//   write: original bytes → compress → [encrypt] → storage object (published on Close)
//   read:  storage object → [decrypt] → decompress → original bytes
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "codec/codec.h"
#include "codec/encrypt.h"
#include "storage/storage.h"

namespace pbm::backup {

class ObjectWriter {
 public:
  // Starts writing `object`; nothing is visible until Close().
  ObjectWriter(storage::Storage& st, const std::string& object, codec::Codec codec, int level,
               const std::optional<codec::EncryptionKey>& key);
  ~ObjectWriter();
  void Write(const void* data, size_t n);
  // Flushes the codecs and publishes the object.
  void Close();
  int64_t stored_bytes() const;  // bytes written to the storage so far

 private:
  class StorageSink;
  std::unique_ptr<StorageSink> sink_;
  std::unique_ptr<codec::Sink> enc_;
  std::unique_ptr<codec::Sink> comp_;
};

// Opens `object` for reading its original bytes. Throws kNotFound for a missing object; reads
// throw kCorrupt for a stream that does not decode (or decrypt).
std::unique_ptr<codec::Source> OpenObjectReader(const storage::Storage& st, const std::string& object,
                                                codec::Codec codec,
                                                const std::optional<codec::EncryptionKey>& key);

// Reads the whole object back: its original bytes' count and SHA-256 (hex). Throws like the
// reader (kCorrupt for a stream that does not decode or decrypt).
struct ObjectDigest {
  int64_t size = 0;
  std::string sha256;
};
ObjectDigest DigestObject(const storage::Storage& st, const std::string& object,
                          codec::Codec codec, const std::optional<codec::EncryptionKey>& key);

}  // namespace pbm::backup
