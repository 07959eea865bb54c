// Standard base64 (RFC 4648, with padding), over OpenSSL's EVP_EncodeBlock/EVP_DecodeBlock.
#pragma once

#include <string>
#include <string_view>

namespace pbm {

std::string Base64Encode(std::string_view raw);
// false when `b64` is not valid padded base64 (whitespace is not skipped).
bool Base64Decode(std::string_view b64, std::string* out);

}  // namespace pbm
