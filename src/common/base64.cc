#include "common/base64.h"

#include <openssl/evp.h>

namespace pbm {

std::string Base64Encode(std::string_view raw) {
  std::string out(4 * ((raw.size() + 2) / 3) + 1, '\0');
  int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(raw.data()),
                          static_cast<int>(raw.size()));
  out.resize(n);
  return out;
}

bool Base64Decode(std::string_view b64, std::string* out) {
  if (b64.size() % 4 != 0) return false;
  std::string buf(b64.size() / 4 * 3 + 1, '\0');
  int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(buf.data()),
                          reinterpret_cast<const unsigned char*>(b64.data()),
                          static_cast<int>(b64.size()));
  if (n < 0) return false;
  // EVP_DecodeBlock counts the padding as zero bytes.
  if (!b64.empty() && b64.back() == '=') --n;
  if (b64.size() >= 2 && b64[b64.size() - 2] == '=') --n;
  buf.resize(n);
  *out = std::move(buf);
  return true;
}

}  // namespace pbm
