// AWS Signature Version 4 for the S3 driver, and the few encodings it needs.
//
// Written by hand over OpenSSL's SHA-256/HMAC because libcurl 7.88's CURLOPT_AWS_SIGV4 does not
// sort or encode query strings (fixed in curl 8.x), which ListObjectsV2 and the multipart calls
// need. Checked against the published AWS SigV4 test-suite vectors and the npm package aws4
// (s3_sign_test.cc).
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/base64.h"

namespace pbm::storage::s3 {

struct SigV4Request {
  std::string method;         // "GET"
  std::string canonical_uri;  // already URI-encoded path, e.g. "/bucket/a%20b" ("/" if empty)
  // Raw (unencoded) query parameters in any order; a parameter without value has "".
  std::vector<std::pair<std::string, std::string>> query;
  // The headers to sign (names in any case; must include host and x-amz-date).
  std::vector<std::pair<std::string, std::string>> headers;
  std::string payload_hash;  // hex SHA-256 of the body, or "UNSIGNED-PAYLOAD"
};

// RFC 3986 encoding as SigV4 wants it: unreserved characters (A-Z a-z 0-9 - _ . ~) stay,
// everything else becomes %XX (upper-case hex); '/' stays unless encode_slash.
std::string UriEncode(std::string_view s, bool encode_slash);

std::string Sha256Hex(std::string_view data);
std::string HmacSha256(std::string_view key, std::string_view data);  // raw 32 bytes
std::string HexEncode(std::string_view raw);
using ::pbm::Base64Decode;
using ::pbm::Base64Encode;
std::string Md5Base64(std::string_view data);  // Content-MD5 header value

// "param=value&..." sorted by encoded name then value.
std::string CanonicalQueryString(const std::vector<std::pair<std::string, std::string>>& query);
std::string CanonicalRequest(const SigV4Request& req);
std::string SignedHeaderList(const SigV4Request& req);  // "host;x-amz-date"
// amz_date is "YYYYMMDDTHHMMSSZ".
std::string StringToSign(std::string_view amz_date, std::string_view region,
                         std::string_view service, std::string_view canonical_request);
// The Authorization header value.
std::string AuthorizationHeader(const SigV4Request& req, std::string_view access_key,
                                std::string_view secret_key, std::string_view region,
                                std::string_view service, std::string_view amz_date);

}  // namespace pbm::storage::s3
