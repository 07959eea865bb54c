#include "storage/faulty_storage.h"

#include <algorithm>

namespace pbm::storage {

class FaultyStorage::FaultyReader : public Reader {
 public:
  // Reads `base`, whose first byte is byte `start` of object `name`.
  FaultyReader(const FaultyStorage& owner, std::string name, std::unique_ptr<Reader> base,
               int64_t start)
      : owner_(owner),
        name_(std::move(name)),
        base_(std::move(base)),
        pos_(start),
        corrupt_(owner.CorruptOffsets(name_)) {}

  size_t Read(void* buf, size_t n) override {
    owner_.OnCall(Op::kRead, name_);
    size_t got = base_->Read(buf, n);
    auto* bytes = static_cast<unsigned char*>(buf);
    for (int64_t off : corrupt_) {
      if (off >= pos_ && off < pos_ + static_cast<int64_t>(got)) bytes[off - pos_] ^= 0xFF;
    }
    pos_ += static_cast<int64_t>(got);
    return got;
  }

 private:
  const FaultyStorage& owner_;
  std::string name_;
  std::unique_ptr<Reader> base_;
  int64_t pos_;
  std::vector<int64_t> corrupt_;
};

class FaultyStorage::FaultyWriter : public Writer {
 public:
  FaultyWriter(const FaultyStorage& owner, std::string name, std::unique_ptr<Writer> base)
      : owner_(owner), name_(std::move(name)), base_(std::move(base)) {}

  void Write(const void* data, size_t n) override {
    CheckNotFailed("write");
    Guard([&] {
      owner_.OnCall(Op::kWrite, name_);
      base_->Write(data, n);
    });
  }

  void Commit() override {
    CheckNotFailed("commit");
    Guard([&] {
      owner_.OnCall(Op::kCommit, name_);
      base_->Commit();
    });
  }

 private:
  void CheckNotFailed(const char* op) const {
    if (failed_) {
      Fail(ErrorKind::kIo, "{} {} ({}): an earlier write of this object failed", op, name_,
           owner_.Describe());
    }
  }

  template <typename F>
  void Guard(F f) {
    try {
      f();
    } catch (...) {
      failed_ = true;
      throw;
    }
  }

  const FaultyStorage& owner_;
  std::string name_;
  std::unique_ptr<Writer> base_;  // destroyed uncommitted on failure: leaves nothing behind
  bool failed_ = false;
};

FaultyStorage::FaultyStorage(std::shared_ptr<Storage> base) : base_(std::move(base)) {
  if (base_ == nullptr) Fail(ErrorKind::kInternal, "FaultyStorage: null base storage");
}

void FaultyStorage::Arm(Op op, int64_t n, ErrorKind kind) {
  if (n < 1) Fail(ErrorKind::kInvalidArgument, "FaultyStorage: n must be >= 1, got {}", n);
  std::lock_guard lock(mu_);
  Counter& c = counters_[static_cast<int>(op)];
  c.fail_at = c.calls + n;
  c.kind = kind;
}

void FaultyStorage::FailNthWrite(int64_t n, ErrorKind kind) { Arm(Op::kWrite, n, kind); }
void FaultyStorage::FailNthCommit(int64_t n, ErrorKind kind) { Arm(Op::kCommit, n, kind); }
void FaultyStorage::FailNthRead(int64_t n, ErrorKind kind) { Arm(Op::kRead, n, kind); }

void FaultyStorage::CorruptByte(const std::string& name, int64_t offset) {
  std::lock_guard lock(mu_);
  std::vector<int64_t>& offsets = corrupt_[name];
  offsets.insert(std::upper_bound(offsets.begin(), offsets.end(), offset), offset);
}

void FaultyStorage::Reset() {
  std::lock_guard lock(mu_);
  for (Counter& c : counters_) c = Counter{};
  corrupt_.clear();
}

int64_t FaultyStorage::write_calls() const {
  std::lock_guard lock(mu_);
  return counters_[static_cast<int>(Op::kWrite)].calls;
}

int64_t FaultyStorage::commit_calls() const {
  std::lock_guard lock(mu_);
  return counters_[static_cast<int>(Op::kCommit)].calls;
}

int64_t FaultyStorage::read_calls() const {
  std::lock_guard lock(mu_);
  return counters_[static_cast<int>(Op::kRead)].calls;
}

void FaultyStorage::OnCall(Op op, const std::string& name) const {
  ErrorKind kind;
  {
    std::lock_guard lock(mu_);
    Counter& c = counters_[static_cast<int>(op)];
    ++c.calls;
    if (c.fail_at == 0 || c.calls != c.fail_at) return;
    c.fail_at = 0;
    kind = c.kind;
  }
  const char* what = op == Op::kWrite ? "write" : op == Op::kCommit ? "commit" : "read";
  Fail(kind, "{} {} ({}): injected fault", what, name, Describe());
}

std::vector<int64_t> FaultyStorage::CorruptOffsets(const std::string& name) const {
  std::lock_guard lock(mu_);
  auto it = corrupt_.find(name);
  return it == corrupt_.end() ? std::vector<int64_t>{} : it->second;
}

std::string FaultyStorage::Describe() const { return "faulty:" + base_->Describe(); }

std::vector<ObjectInfo> FaultyStorage::List(const std::string& prefix) const {
  return base_->List(prefix);
}

std::optional<ObjectInfo> FaultyStorage::Stat(const std::string& name) const {
  return base_->Stat(name);
}

std::unique_ptr<Reader> FaultyStorage::Open(const std::string& name) const {
  return std::make_unique<FaultyReader>(*this, name, base_->Open(name), 0);
}

std::unique_ptr<Reader> FaultyStorage::OpenRange(const std::string& name, int64_t offset,
                                                 int64_t length) const {
  return std::make_unique<FaultyReader>(*this, name, base_->OpenRange(name, offset, length),
                                        offset);
}

std::unique_ptr<Writer> FaultyStorage::Create(const std::string& name) {
  return std::make_unique<FaultyWriter>(*this, name, base_->Create(name));
}

void FaultyStorage::Remove(const std::string& name) { base_->Remove(name); }

void FaultyStorage::RemovePrefix(const std::string& prefix) { base_->RemovePrefix(prefix); }

}  // namespace pbm::storage
