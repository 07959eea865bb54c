// The S3 driver (storage.type: s3), over libcurl with our own SigV4 signer (s3_sign.h).
//
// Layout: object "a/b" is the key "<prefix>/a/b" in the bucket (PBM's path.Join(prefix, name)).
// Create buffers one part (uploadPartSize) and does a single PutObject for objects up to one
// part, else a multipart upload with up to maxPartsInFlight parts uploading at once; nothing is
// visible before Commit, and a Writer that fails or is destroyed without Commit aborts its
// upload. Open/OpenRange read with ranged GETs of uploadPartSize, up to maxPartsInFlight ahead,
// so memory per Reader or Writer is bounded by (maxPartsInFlight + 1) × uploadPartSize.
// Every request is retried on 5xx, 429, connection failures, resets and stalls (no byte for
// stallTimeout) with exponential back-off between retryer.minRetryDelay and maxRetryDelay.
// Credentials never appear in Describe(), errors or logs.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <string>

#include "storage/storage.h"

namespace pbm::storage {

struct S3Config {
  std::string region;        // default AWS_REGION, else us-east-1
  std::string bucket;        // required
  std::string prefix;        // without leading or trailing '/'
  std::string endpoint_url;  // "http://127.0.0.1:9000"; empty: https://s3.<region>.amazonaws.com
  bool force_path_style = true;  // PBM's default
  std::string access_key_id;
  std::string secret_access_key;
  std::string session_token;
  int64_t upload_part_size = 10 << 20;  // raised to S3's minimum of 5 MiB like PBM
  int max_upload_parts = 10000;
  std::string storage_class;  // passed as x-amz-storage-class when set
  std::string sse_algorithm;  // "", "AES256" or "aws:kms"
  std::string kms_key_id;
  std::string sse_customer_algorithm;  // "AES256" (SSE-C)
  std::string sse_customer_key;        // raw key bytes (config has base64)
  bool insecure_skip_tls_verify = false;
  int num_max_retries = 3;
  int64_t min_retry_delay_ms = 30;
  int64_t max_retry_delay_ms = 300'000;
  // Our additions (not in PBM): parts uploading or downloading at once per Writer/Reader, and
  // how long a transfer may make no progress before it counts as failed (and is retried).
  int max_parts_in_flight = 4;
  int64_t stall_timeout_ms = 60'000;
  int64_t connect_timeout_ms = 10'000;
};

// Parses storage.s3 (PBM's field names). `getenv` supplies AWS_ACCESS_KEY_ID,
// AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN and AWS_REGION when the config lacks them (tests pass
// their own). Throws kInvalidArgument with one line naming the field.
S3Config ParseS3Config(const nlohmann::json& s3_section,
                       const std::function<std::optional<std::string>(const char*)>& getenv);

// Go's time.Duration as PBM's YAML/BSON carries it: an integer (nanoseconds) or a string such as
// "30ms", "1.5s", "5m", "1h2m". Returns milliseconds, nullopt if malformed or negative.
std::optional<int64_t> ParseGoDurationMs(const nlohmann::json& value);

std::unique_ptr<Storage> NewS3Storage(const S3Config& config);

}  // namespace pbm::storage
