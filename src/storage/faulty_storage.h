// FaultyStorage: a Storage decorator for tests of the modules above storage (backup, restore,
// control). It forwards every call to a wrapped storage and, when armed, makes one chosen call
// fail or corrupts the bytes read of one object, so a test can check that a failed upload leaves
// no object, that a failed download is reported, and that a checksum catches corruption.
//
//   auto base = std::shared_ptr<Storage>(NewFilesystemStorage(dir));
//   FaultyStorage faulty(base);
//   faulty.FailNthWrite(3);            // the 3rd Writer::Write from now throws kIo
//   faulty.CorruptByte("bk/rs0/a.wt", 100);  // byte 100 of that object reads inverted
//
// Counting: each FailNth* counts calls of that kind across all Readers/Writers made by this
// FaultyStorage from the moment it is armed; the nth call (1-based) throws instead of being
// forwarded, then the fault disarms itself (later calls succeed). Arming again replaces it.
// The injected error is pbm::Error(kind, "<op> <object> (<describe>): injected fault"), kind kIo
// unless given.
//
// Thread safety: like any Storage; arming and counters may be used from any thread. The
// FaultyStorage must outlive the Readers/Writers it makes; it shares ownership of the base.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "common/error.h"
#include "storage/storage.h"

namespace pbm::storage {

class FaultyStorage : public Storage {
 public:
  // base must not be null.
  explicit FaultyStorage(std::shared_ptr<Storage> base);

  // The nth Writer::Write call from now throws (the Writer is then failed, as in a real driver:
  // its later Write/Commit calls throw too, and destroying it leaves no object).
  void FailNthWrite(int64_t n, ErrorKind kind = ErrorKind::kIo);
  // The nth Writer::Commit call from now throws; the object is not published.
  void FailNthCommit(int64_t n, ErrorKind kind = ErrorKind::kIo);
  // The nth Reader::Read call from now throws.
  void FailNthRead(int64_t n, ErrorKind kind = ErrorKind::kIo);
  // Every read of object `name` (Open, OpenRange, ReadAll) returns the byte at `offset` with all
  // bits inverted; the stored object is unchanged. Several corruptions may be armed at once.
  void CorruptByte(const std::string& name, int64_t offset);
  // Disarms all faults and zeroes the counters.
  void Reset();

  // Calls seen since construction or Reset (including the failed ones).
  int64_t write_calls() const;
  int64_t commit_calls() const;
  int64_t read_calls() const;

  // The wrapped storage.
  Storage& base() const { return *base_; }

  // Storage: forwards to the base. Describe() is "faulty:" + the base's description.
  std::string Describe() const override;
  std::vector<ObjectInfo> List(const std::string& prefix) const override;
  std::optional<ObjectInfo> Stat(const std::string& name) const override;
  std::unique_ptr<Reader> Open(const std::string& name) const override;
  std::unique_ptr<Reader> OpenRange(const std::string& name, int64_t offset,
                                    int64_t length) const override;
  std::unique_ptr<Writer> Create(const std::string& name) override;
  void Remove(const std::string& name) override;
  void RemovePrefix(const std::string& prefix) override;

 private:
  class FaultyReader;
  class FaultyWriter;
  enum class Op { kWrite, kCommit, kRead };
  struct Counter {
    int64_t calls = 0;
    int64_t fail_at = 0;  // the call number that fails; 0 = disarmed
    ErrorKind kind = ErrorKind::kIo;
  };

  void Arm(Op op, int64_t n, ErrorKind kind);
  // Counts one call of op on object name; throws the injected error if it is the armed call.
  void OnCall(Op op, const std::string& name) const;
  // Offsets (ascending) of the corrupted bytes of object name.
  std::vector<int64_t> CorruptOffsets(const std::string& name) const;

  std::shared_ptr<Storage> base_;
  mutable std::mutex mu_;
  mutable Counter counters_[3];                          // guarded by mu_, by Op
  std::map<std::string, std::vector<int64_t>> corrupt_;  // guarded by mu_
};

}  // namespace pbm::storage
