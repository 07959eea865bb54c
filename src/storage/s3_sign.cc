#include "storage/s3_sign.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>

#include <algorithm>
#include <cctype>
#include <map>

namespace pbm::storage::s3 {

std::string UriEncode(std::string_view s, bool encode_slash) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(s.size() * 3);
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~' ||
        (c == '/' && !encode_slash)) {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    }
  }
  return out;
}

std::string HexEncode(std::string_view raw) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(raw.size() * 2);
  for (unsigned char c : raw) {
    out.push_back(kHex[c >> 4]);
    out.push_back(kHex[c & 15]);
  }
  return out;
}

std::string Sha256Hex(std::string_view data) {
  unsigned char md[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(data.data()), data.size(), md);
  return HexEncode(std::string_view(reinterpret_cast<char*>(md), sizeof(md)));
}

std::string HmacSha256(std::string_view key, std::string_view data) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(data.data()), data.size(), md, &len);
  return std::string(reinterpret_cast<char*>(md), len);
}

std::string Md5Base64(std::string_view data) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(data.data(), data.size(), md, &len, EVP_md5(), nullptr);
  return Base64Encode(std::string_view(reinterpret_cast<char*>(md), len));
}

std::string CanonicalQueryString(const std::vector<std::pair<std::string, std::string>>& query) {
  std::vector<std::pair<std::string, std::string>> enc;
  enc.reserve(query.size());
  for (const auto& [k, v] : query) enc.emplace_back(UriEncode(k, true), UriEncode(v, true));
  std::sort(enc.begin(), enc.end());
  std::string out;
  for (const auto& [k, v] : enc) {
    if (!out.empty()) out.push_back('&');
    out += k;
    out.push_back('=');
    out += v;
  }
  return out;
}

namespace {

// Lower-cased names → trimmed values with inner runs of spaces collapsed; repeated names are
// joined with ',' in order.
std::map<std::string, std::string> CanonicalHeaders(const SigV4Request& req) {
  std::map<std::string, std::string> out;
  for (const auto& [name, value] : req.headers) {
    std::string n;
    for (char c : name) n.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
    std::string v;
    bool space = false;
    for (char c : value) {
      if (c == ' ' || c == '\t') {
        space = !v.empty();
        continue;
      }
      if (space) v.push_back(' ');
      space = false;
      v.push_back(c);
    }
    auto [it, inserted] = out.emplace(n, v);
    if (!inserted) it->second += "," + v;
  }
  return out;
}

}  // namespace

std::string SignedHeaderList(const SigV4Request& req) {
  std::string out;
  for (const auto& [name, value] : CanonicalHeaders(req)) {
    if (!out.empty()) out.push_back(';');
    out += name;
  }
  return out;
}

std::string CanonicalRequest(const SigV4Request& req) {
  std::string out = req.method + "\n";
  out += req.canonical_uri.empty() ? "/" : req.canonical_uri;
  out += "\n" + CanonicalQueryString(req.query) + "\n";
  for (const auto& [name, value] : CanonicalHeaders(req)) out += name + ":" + value + "\n";
  out += "\n" + SignedHeaderList(req) + "\n" + req.payload_hash;
  return out;
}

namespace {
std::string Scope(std::string_view amz_date, std::string_view region, std::string_view service) {
  std::string scope(amz_date.substr(0, 8));
  scope += "/";
  scope += region;
  scope += "/";
  scope += service;
  scope += "/aws4_request";
  return scope;
}
}  // namespace

std::string StringToSign(std::string_view amz_date, std::string_view region,
                         std::string_view service, std::string_view canonical_request) {
  std::string out = "AWS4-HMAC-SHA256\n";
  out += amz_date;
  out += "\n" + Scope(amz_date, region, service) + "\n" + Sha256Hex(canonical_request);
  return out;
}

std::string AuthorizationHeader(const SigV4Request& req, std::string_view access_key,
                                std::string_view secret_key, std::string_view region,
                                std::string_view service, std::string_view amz_date) {
  std::string key = HmacSha256("AWS4" + std::string(secret_key), amz_date.substr(0, 8));
  key = HmacSha256(key, region);
  key = HmacSha256(key, service);
  key = HmacSha256(key, "aws4_request");
  std::string signature =
      HexEncode(HmacSha256(key, StringToSign(amz_date, region, service, CanonicalRequest(req))));
  std::string out = "AWS4-HMAC-SHA256 Credential=";
  out += access_key;
  out += "/" + Scope(amz_date, region, service) + ", SignedHeaders=" + SignedHeaderList(req) +
         ", Signature=" + signature;
  return out;
}

}  // namespace pbm::storage::s3
