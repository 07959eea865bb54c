#include "backup/object_io.h"

#include <vector>

#include "codec/checksum.h"

namespace pbm::backup {

class ObjectWriter::StorageSink : public codec::Sink {
 public:
  explicit StorageSink(std::unique_ptr<storage::Writer> w) : w_(std::move(w)) {}
  void Write(const void* data, size_t n) override {
    w_->Write(data, n);
    bytes_ += static_cast<int64_t>(n);
  }
  void Close() override { w_->Commit(); }
  int64_t bytes() const { return bytes_; }

 private:
  std::unique_ptr<storage::Writer> w_;
  int64_t bytes_ = 0;
};

ObjectWriter::ObjectWriter(storage::Storage& st, const std::string& object, codec::Codec codec,
                           int level, const std::optional<codec::EncryptionKey>& key)
    : sink_(std::make_unique<StorageSink>(st.Create(object))) {
  if (key) enc_ = codec::NewEncryptor(*key, sink_.get());
  comp_ = codec::NewCompressor(codec, level, enc_ ? enc_.get() : sink_.get());
}

ObjectWriter::~ObjectWriter() = default;

void ObjectWriter::Write(const void* data, size_t n) { comp_->Write(data, n); }
void ObjectWriter::Close() { comp_->Close(); }
int64_t ObjectWriter::stored_bytes() const { return sink_->bytes(); }

namespace {
class ObjectSource : public codec::Source {
 public:
  ObjectSource(std::unique_ptr<storage::Reader> r, codec::Codec codec,
               const std::optional<codec::EncryptionKey>& key)
      : raw_(std::move(r)), in_(raw_.get()) {
    if (key) dec_ = codec::NewDecryptor(*key, &in_);
    plain_ = codec::NewDecompressor(codec, dec_ ? dec_.get() : &in_);
  }
  size_t Read(void* buf, size_t n) override { return plain_->Read(buf, n); }

 private:
  struct ReaderSource : codec::Source {
    explicit ReaderSource(storage::Reader* r) : r(r) {}
    size_t Read(void* buf, size_t n) override { return r->Read(buf, n); }
    storage::Reader* r;
  };
  std::unique_ptr<storage::Reader> raw_;
  ReaderSource in_;
  std::unique_ptr<codec::Source> dec_;
  std::unique_ptr<codec::Source> plain_;
};
}  // namespace

std::unique_ptr<codec::Source> OpenObjectReader(const storage::Storage& st, const std::string& object,
                                                codec::Codec codec,
                                                const std::optional<codec::EncryptionKey>& key) {
  return std::make_unique<ObjectSource>(st.Open(object), codec, key);
}

ObjectDigest DigestObject(const storage::Storage& st, const std::string& object,
                          codec::Codec codec, const std::optional<codec::EncryptionKey>& key) {
  auto in = OpenObjectReader(st, object, codec, key);
  codec::Sha256 sha;
  std::vector<char> buf(1 << 20);
  ObjectDigest d;
  while (size_t got = in->Read(buf.data(), buf.size())) {
    sha.Update(buf.data(), got);
    d.size += static_cast<int64_t>(got);
  }
  d.sha256 = sha.HexDigest();
  return d;
}

}  // namespace pbm::backup
