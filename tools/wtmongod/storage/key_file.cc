#include "storage/key_file.h"

#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

namespace wtm::storage {
namespace {

[[noreturn]] void Fail(const std::string& path, const std::string& problem) {
  throw std::runtime_error("encryption key file " + path + ": " + problem);
}

// Decodes standard base64 with '=' padding; false when malformed.
bool DecodeBase64(const std::string& text, std::vector<uint8_t>* out) {
  if (text.empty() || text.size() % 4 != 0) return false;
  for (char c : text) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '+' || c == '/' || c == '=')) {
      return false;
    }
  }
  size_t pad = 0;
  if (text[text.size() - 1] == '=') ++pad;
  if (text[text.size() - 2] == '=') ++pad;
  // '=' is only allowed as trailing padding.
  if (text.find('=') < text.size() - pad) return false;
  out->assign(text.size() / 4 * 3, 0);
  int n = EVP_DecodeBlock(out->data(), reinterpret_cast<const unsigned char*>(text.data()),
                          static_cast<int>(text.size()));
  if (n < 0) return false;
  // EVP_DecodeBlock counts padding bytes as decoded zeros; drop them.
  out->resize(static_cast<size_t>(n) - pad);
  return true;
}

}  // namespace

EncryptionKey LoadKeyFile(const std::string& path) {
  // Symlinks are followed (Kubernetes mounts secrets through them); the target is checked.
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) Fail(path, std::string("cannot open: ") + std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    int e = errno;
    ::close(fd);
    Fail(path, std::string("cannot stat: ") + std::strerror(e));
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    Fail(path, "not a regular file");
  }
  if ((st.st_mode & (S_IRWXG | S_IRWXO)) != 0) {
    ::close(fd);
    char mode[8];
    std::snprintf(mode, sizeof(mode), "%04o", static_cast<unsigned>(st.st_mode & 07777));
    Fail(path, std::string("permissions are too open (") + mode +
                   "); it must be readable by the owner only (chmod 600)");
  }
  std::string text;
  char buf[4096];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof(buf));
    if (n < 0) {
      if (errno == EINTR) continue;
      int e = errno;
      ::close(fd);
      OPENSSL_cleanse(buf, sizeof(buf));
      Fail(path, std::string("cannot read: ") + std::strerror(e));
    }
    if (n == 0) break;
    text.append(buf, static_cast<size_t>(n));
    if (text.size() > 64 * 1024) break;  // far larger than any key; rejected below
  }
  ::close(fd);
  OPENSSL_cleanse(buf, sizeof(buf));

  size_t b = 0, e = text.size();
  while (b < e && std::isspace(static_cast<unsigned char>(text[b]))) ++b;
  while (e > b && std::isspace(static_cast<unsigned char>(text[e - 1]))) --e;
  std::string trimmed = text.substr(b, e - b);
  OPENSSL_cleanse(text.data(), text.size());

  std::vector<uint8_t> raw;
  bool ok = DecodeBase64(trimmed, &raw);
  OPENSSL_cleanse(trimmed.data(), trimmed.size());
  if (!ok) Fail(path, "not a base64-encoded 32-byte key (not valid base64)");
  if (raw.size() != 32) {
    size_t got = raw.size();
    OPENSSL_cleanse(raw.data(), raw.size());
    Fail(path, "not a base64-encoded 32-byte key (decoded " + std::to_string(got) + " bytes)");
  }
  EncryptionKey key;
  std::memcpy(key.data(), raw.data(), key.size());
  OPENSSL_cleanse(raw.data(), raw.size());
  return key;
}

std::string KeyCheckValue(const EncryptionKey& key) {
  static constexpr char kLabel[] = "psmdb key check value";
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int mac_len = 0;
  if (HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
           reinterpret_cast<const unsigned char*>(kLabel), sizeof(kLabel) - 1, mac,
           &mac_len) == nullptr) {
    throw std::runtime_error("key check value: HMAC-SHA256 failed");
  }
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (int i = 0; i < 8; ++i) {
    out.push_back(kHex[mac[i] >> 4]);
    out.push_back(kHex[mac[i] & 0xf]);
  }
  return out;
}

}  // namespace wtm::storage
