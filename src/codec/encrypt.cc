#include "codec/encrypt.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/kdf.h>
#include <openssl/rand.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <vector>

#include "common/error.h"

namespace pbm::codec {
namespace {

constexpr char kMagic[8] = {'P', 'B', 'M', 'E', 'N', 'C', '1', '\n'};
constexpr size_t kSaltSize = 16;
constexpr size_t kPrefixSize = 7;
constexpr char kHkdfInfo[] = "pbm backup object v1";
constexpr uint32_t kMaxChunk = 64u << 20;

struct CipherCtx {
  EVP_CIPHER_CTX* c = EVP_CIPHER_CTX_new();
  ~CipherCtx() { EVP_CIPHER_CTX_free(c); }
};

EncryptionKey DeriveObjectKey(const EncryptionKey& master, const unsigned char* salt) {
  EncryptionKey out;
  EVP_PKEY_CTX* ctx = EVP_PKEY_CTX_new_id(EVP_PKEY_HKDF, nullptr);
  size_t len = out.size();
  bool ok = ctx && EVP_PKEY_derive_init(ctx) > 0 &&
            EVP_PKEY_CTX_set_hkdf_md(ctx, EVP_sha256()) > 0 &&
            EVP_PKEY_CTX_set1_hkdf_salt(ctx, salt, kSaltSize) > 0 &&
            EVP_PKEY_CTX_set1_hkdf_key(ctx, master.data(), master.size()) > 0 &&
            EVP_PKEY_CTX_add1_hkdf_info(ctx, reinterpret_cast<const unsigned char*>(kHkdfInfo),
                                        sizeof(kHkdfInfo) - 1) > 0 &&
            EVP_PKEY_derive(ctx, out.data(), &len) > 0 && len == out.size();
  EVP_PKEY_CTX_free(ctx);
  if (!ok) Fail(ErrorKind::kInternal, "encryption: HKDF key derivation failed");
  return out;
}

void ChunkNonce(const unsigned char* prefix, uint32_t index, bool last, unsigned char* nonce) {
  std::memcpy(nonce, prefix, kPrefixSize);
  nonce[7] = static_cast<unsigned char>(index >> 24);
  nonce[8] = static_cast<unsigned char>(index >> 16);
  nonce[9] = static_cast<unsigned char>(index >> 8);
  nonce[10] = static_cast<unsigned char>(index);
  nonce[11] = last ? 1 : 0;
}

// Seals (encrypt=true) or opens one chunk; returns false when opening fails to authenticate.
bool Crypt(bool encrypt, const EncryptionKey& key, const unsigned char* nonce,
           const unsigned char* aad, size_t aad_len, const unsigned char* in, size_t n,
           unsigned char* out, unsigned char* tag) {
  CipherCtx ctx;
  int len = 0;
  if (!ctx.c || EVP_CipherInit_ex(ctx.c, EVP_aes_256_gcm(), nullptr, nullptr, nullptr, encrypt) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx.c, EVP_CTRL_GCM_SET_IVLEN, 12, nullptr) != 1 ||
      EVP_CipherInit_ex(ctx.c, nullptr, nullptr, key.data(), nonce, encrypt) != 1 ||
      EVP_CipherUpdate(ctx.c, nullptr, &len, aad, static_cast<int>(aad_len)) != 1 ||
      (n > 0 && EVP_CipherUpdate(ctx.c, out, &len, in, static_cast<int>(n)) != 1)) {
    Fail(ErrorKind::kInternal, "encryption: AES-256-GCM setup failed");
  }
  if (encrypt) {
    if (EVP_CipherFinal_ex(ctx.c, out + (n > 0 ? len : 0), &len) != 1 ||
        EVP_CIPHER_CTX_ctrl(ctx.c, EVP_CTRL_GCM_GET_TAG, kEncryptTagSize, tag) != 1) {
      Fail(ErrorKind::kInternal, "encryption: AES-256-GCM failed");
    }
    return true;
  }
  if (EVP_CIPHER_CTX_ctrl(ctx.c, EVP_CTRL_GCM_SET_TAG, kEncryptTagSize, tag) != 1) {
    Fail(ErrorKind::kInternal, "encryption: AES-256-GCM setup failed");
  }
  return EVP_CipherFinal_ex(ctx.c, out + (n > 0 ? len : 0), &len) == 1;
}

class Encryptor : public Sink {
 public:
  Encryptor(const EncryptionKey& master, Sink* out, uint32_t chunk) : out_(out), chunk_(chunk) {
    if (chunk == 0 || chunk > kMaxChunk) {
      Fail(ErrorKind::kInvalidArgument, "encryption chunk size {} is out of range", chunk);
    }
    std::memcpy(header_, kMagic, 8);
    for (int i = 0; i < 4; ++i) header_[8 + i] = static_cast<unsigned char>(chunk >> (8 * i));
    if (RAND_bytes(header_ + 12, kSaltSize + kPrefixSize) != 1) {
      Fail(ErrorKind::kInternal, "encryption: no random bytes for the salt");
    }
    key_ = DeriveObjectKey(master, header_ + 12);
    plain_.reserve(chunk);
    sealed_.resize(chunk + kEncryptTagSize);
  }
  ~Encryptor() override { OPENSSL_cleanse(key_.data(), key_.size()); }

  void Write(const void* data, size_t n) override {
    if (closed_) Fail(ErrorKind::kInternal, "encryption: write after close");
    auto p = static_cast<const char*>(data);
    while (n > 0) {
      // A full chunk is sealed only once more bytes arrive: the final chunk must be flagged.
      if (plain_.size() == chunk_) Seal(false);
      size_t take = std::min(n, chunk_ - plain_.size());
      plain_.insert(plain_.end(), p, p + take);
      p += take;
      n -= take;
    }
  }

  void Close() override {
    if (closed_) return;
    Seal(true);
    closed_ = true;
    out_->Close();
  }

 private:
  void Seal(bool last) {
    if (!header_written_) {
      out_->Write(header_, sizeof header_);
      header_written_ = true;
    }
    unsigned char nonce[12];
    ChunkNonce(header_ + 12 + kSaltSize, index_, last, nonce);
    Crypt(true, key_, nonce, header_, sizeof header_,
          reinterpret_cast<const unsigned char*>(plain_.data()), plain_.size(), sealed_.data(),
          sealed_.data() + plain_.size());
    out_->Write(sealed_.data(), plain_.size() + kEncryptTagSize);
    plain_.clear();
    if (++index_ == 0) Fail(ErrorKind::kInvalidArgument, "encryption: object too large");
  }

  Sink* out_;
  size_t chunk_;
  unsigned char header_[kEncryptHeaderSize];
  EncryptionKey key_;
  std::vector<char> plain_;
  std::vector<unsigned char> sealed_;
  uint32_t index_ = 0;
  bool header_written_ = false;
  bool closed_ = false;
};

class Decryptor : public Source {
 public:
  Decryptor(const EncryptionKey& master, Source* in) : master_(master), in_(in) {}
  ~Decryptor() override {
    OPENSSL_cleanse(master_.data(), master_.size());
    OPENSSL_cleanse(key_.data(), key_.size());
  }

  size_t Read(void* buf, size_t n) override {
    if (failed_) Fail(ErrorKind::kCorrupt, "encrypted object: an earlier chunk failed");
    if (n == 0) return 0;
    try {
      if (!started_) Start();
      while (pos_ == plain_.size()) {
        if (done_) return 0;
        NextChunk();
      }
    } catch (...) {
      failed_ = true;
      throw;
    }
    size_t take = std::min(n, plain_.size() - pos_);
    std::memcpy(buf, plain_.data() + pos_, take);
    pos_ += take;
    return take;
  }

 private:
  void Start() {
    started_ = true;
    if (ReadFull(*in_, header_, sizeof header_) != sizeof header_ ||
        std::memcmp(header_, kMagic, 8) != 0) {
      Fail(ErrorKind::kCorrupt,
           "not an encrypted backup object (no PBMENC1 header): the object was modified, or the "
           "backup was not made with client-side encryption");
    }
    chunk_ = 0;
    for (int i = 0; i < 4; ++i) chunk_ |= static_cast<uint32_t>(header_[8 + i]) << (8 * i);
    if (chunk_ == 0 || chunk_ > kMaxChunk) {
      Fail(ErrorKind::kCorrupt, "encrypted object: bad chunk size {} in its header", chunk_);
    }
    key_ = DeriveObjectKey(master_, header_ + 12);
    // One sealed chunk plus one byte of look-ahead tells whether a chunk is the last.
    sealed_.resize(chunk_ + kEncryptTagSize + 1);
    plain_.reserve(chunk_);
  }

  void NextChunk() {
    size_t want = chunk_ + kEncryptTagSize + 1;
    have_ += ReadFull(*in_, sealed_.data() + have_, want - have_);
    bool last = have_ < want;
    size_t len = last ? have_ : want - 1;
    if (len < kEncryptTagSize) {
      Fail(ErrorKind::kCorrupt, "encrypted object is truncated (chunk {})", index_);
    }
    size_t n = len - kEncryptTagSize;
    plain_.resize(n);
    unsigned char nonce[12];
    ChunkNonce(header_ + 12 + kSaltSize, index_, last, nonce);
    if (!Crypt(false, key_, nonce, header_, sizeof header_, sealed_.data(), n,
               reinterpret_cast<unsigned char*>(plain_.data()), sealed_.data() + n)) {
      plain_.clear();
      Fail(ErrorKind::kCorrupt,
           "encrypted object does not authenticate at chunk {}: it was made with another key, "
           "or it was modified or truncated",
           index_);
    }
    pos_ = 0;
    if (last) {
      done_ = true;
      have_ = 0;
    } else {
      sealed_[0] = sealed_[want - 1];  // the look-ahead byte starts the next chunk
      have_ = 1;
      ++index_;
    }
  }

  EncryptionKey master_;
  EncryptionKey key_{};
  Source* in_;
  unsigned char header_[kEncryptHeaderSize];
  uint32_t chunk_ = 0;
  std::vector<unsigned char> sealed_;
  size_t have_ = 0;
  std::vector<char> plain_;
  size_t pos_ = 0;
  uint32_t index_ = 0;
  bool started_ = false;
  bool done_ = false;
  bool failed_ = false;
};

}  // namespace

EncryptionKey ParseKey(std::string_view base64, const std::string& what) {
  std::string b64;
  for (char c : base64) {
    if (!std::isspace(static_cast<unsigned char>(c))) b64 += c;
  }
  std::vector<unsigned char> raw(b64.size() + 3);
  int n = b64.empty() ? -1
                      : EVP_DecodeBlock(raw.data(), reinterpret_cast<const unsigned char*>(b64.data()),
                                        static_cast<int>(b64.size()));
  if (n < 0 || b64.size() % 4 != 0) {
    Fail(ErrorKind::kInvalidArgument, "{} does not hold a base64 key (make one with: openssl rand -base64 32)", what);
  }
  for (size_t i = b64.size(); i > 0 && b64[i - 1] == '='; --i) --n;
  if (n != 32) {
    Fail(ErrorKind::kInvalidArgument,
         "{} holds a {}-byte key; a 256-bit key is needed (make one with: openssl rand -base64 32)",
         what, n);
  }
  EncryptionKey key;
  std::memcpy(key.data(), raw.data(), key.size());
  OPENSSL_cleanse(raw.data(), raw.size());
  return key;
}

EncryptionKey ReadKeyFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    Fail(ErrorKind::kIo, "cannot read the key file {}: {}", path, std::strerror(errno));
  }
  std::stringstream ss;
  ss << in.rdbuf();
  std::string text = ss.str();
  EncryptionKey key = ParseKey(text, "key file " + path);
  OPENSSL_cleanse(text.data(), text.size());
  return key;
}

std::string KeyCheckValue(const EncryptionKey& key) {
  static constexpr char kLabel[] = "psmdb key check value";
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int mac_len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(kLabel), sizeof(kLabel) - 1, mac, &mac_len);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (int i = 0; i < 8; ++i) {
    out.push_back(kHex[mac[i] >> 4]);
    out.push_back(kHex[mac[i] & 0xf]);
  }
  return out;
}

std::unique_ptr<Sink> NewEncryptor(const EncryptionKey& key, Sink* out, uint32_t chunk_size) {
  return std::make_unique<Encryptor>(key, out, chunk_size);
}

std::unique_ptr<Source> NewDecryptor(const EncryptionKey& key, Source* in) {
  return std::make_unique<Decryptor>(key, in);
}

}  // namespace pbm::codec
