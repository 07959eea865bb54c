// The S3 driver (see s3_storage.h for the contract and the layout).
#include "storage/s3_storage.h"

#include <curl/curl.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <ctime>
#include <deque>
#include <future>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <random>
#include <thread>

#include "common/error.h"
#include "storage/s3_sign.h"
#include "storage/s3_xml.h"

namespace pbm::storage {

// ---------------------------------------------------------------------------------------------
// Config

namespace {

constexpr int64_t kMinPartSize = 5 << 20;  // S3's minimum for every part but the last
constexpr int kMaxUploadParts = 10000;     // S3's maximum

const nlohmann::json* Field(const nlohmann::json& obj, const char* name) {
  auto it = obj.find(name);
  if (it == obj.end() || it->is_null()) return nullptr;
  return &*it;
}

std::string StringField(const nlohmann::json& obj, const char* name, const char* path) {
  const nlohmann::json* v = Field(obj, name);
  if (v == nullptr) return "";
  if (!v->is_string()) {
    Fail(ErrorKind::kInvalidArgument, "storage config: \"{}\" must be a string, got {}", path,
         v->type_name());
  }
  return v->get<std::string>();
}

std::optional<bool> BoolField(const nlohmann::json& obj, const char* name, const char* path) {
  const nlohmann::json* v = Field(obj, name);
  if (v == nullptr) return std::nullopt;
  if (!v->is_boolean()) {
    Fail(ErrorKind::kInvalidArgument, "storage config: \"{}\" must be true or false, got {}", path,
         v->type_name());
  }
  return v->get<bool>();
}

std::optional<int64_t> IntField(const nlohmann::json& obj, const char* name, const char* path) {
  const nlohmann::json* v = Field(obj, name);
  if (v == nullptr) return std::nullopt;
  if (!v->is_number_integer()) {
    Fail(ErrorKind::kInvalidArgument, "storage config: \"{}\" must be an integer, got {}", path,
         v->type_name());
  }
  return v->get<int64_t>();
}

std::optional<int64_t> DurationField(const nlohmann::json& obj, const char* name,
                                     const char* path) {
  const nlohmann::json* v = Field(obj, name);
  if (v == nullptr) return std::nullopt;
  auto ms = ParseGoDurationMs(*v);
  if (!ms) {
    Fail(ErrorKind::kInvalidArgument,
         "storage config: \"{}\" must be a duration such as \"30ms\", \"2s\" or \"5m\" (or "
         "nanoseconds), got {}",
         path, v->dump());
  }
  return ms;
}

const nlohmann::json* ObjectField(const nlohmann::json& obj, const char* name, const char* path) {
  const nlohmann::json* v = Field(obj, name);
  if (v != nullptr && !v->is_object()) {
    Fail(ErrorKind::kInvalidArgument, "storage config: \"{}\" must be a mapping, got {}", path,
         v->type_name());
  }
  return v;
}

std::string TrimSlashes(std::string s) {
  while (!s.empty() && s.front() == '/') s.erase(s.begin());
  while (!s.empty() && s.back() == '/') s.pop_back();
  return s;
}

}  // namespace

std::optional<int64_t> ParseGoDurationMs(const nlohmann::json& value) {
  if (value.is_number_integer()) {
    int64_t ns = value.get<int64_t>();
    if (ns < 0) return std::nullopt;
    return ns / 1'000'000;
  }
  if (!value.is_string()) return std::nullopt;
  std::string s = value.get<std::string>();
  if (s == "0") return 0;
  if (s.empty()) return std::nullopt;
  double total_ms = 0;
  size_t i = 0;
  while (i < s.size()) {
    size_t start = i;
    while (i < s.size() && (std::isdigit(static_cast<unsigned char>(s[i])) || s[i] == '.')) ++i;
    if (i == start) return std::nullopt;
    double number = 0;
    try {
      number = std::stod(s.substr(start, i - start));
    } catch (...) {
      return std::nullopt;
    }
    size_t ustart = i;
    while (i < s.size() && !std::isdigit(static_cast<unsigned char>(s[i])) && s[i] != '.') ++i;
    std::string unit = s.substr(ustart, i - ustart);
    double factor;
    if (unit == "ns")
      factor = 1e-6;
    else if (unit == "us" || unit == "\xC2\xB5s")
      factor = 1e-3;
    else if (unit == "ms")
      factor = 1;
    else if (unit == "s")
      factor = 1e3;
    else if (unit == "m")
      factor = 60e3;
    else if (unit == "h")
      factor = 3600e3;
    else
      return std::nullopt;
    total_ms += number * factor;
  }
  return static_cast<int64_t>(std::llround(total_ms));
}

S3Config ParseS3Config(const nlohmann::json& s3,
                       const std::function<std::optional<std::string>(const char*)>& getenv) {
  if (!s3.is_object()) {
    Fail(ErrorKind::kInvalidArgument,
         "storage config: type s3 needs an \"s3\" section with at least \"bucket\"");
  }
  S3Config c;
  c.bucket = StringField(s3, "bucket", "s3.bucket");
  if (c.bucket.empty()) {
    Fail(ErrorKind::kInvalidArgument, "storage config: \"s3.bucket\" is missing or empty");
  }
  if (c.bucket.find('/') != std::string::npos) {
    Fail(ErrorKind::kInvalidArgument,
         "storage config: \"s3.bucket\" must be a bucket name without '/' (put paths in "
         "\"s3.prefix\")");
  }
  c.region = StringField(s3, "region", "s3.region");
  if (c.region.empty()) c.region = getenv("AWS_REGION").value_or("");
  if (c.region.empty()) c.region = "us-east-1";
  c.prefix = TrimSlashes(StringField(s3, "prefix", "s3.prefix"));
  if (!c.prefix.empty()) ValidatePrefix("storage config s3.prefix", c.prefix);
  c.endpoint_url = StringField(s3, "endpointUrl", "s3.endpointUrl");
  if (!c.endpoint_url.empty() && c.endpoint_url.find("://") == std::string::npos) {
    c.endpoint_url = "https://" + c.endpoint_url;
  }
  if (!c.endpoint_url.empty() && c.endpoint_url.rfind("http://", 0) != 0 &&
      c.endpoint_url.rfind("https://", 0) != 0) {
    Fail(ErrorKind::kInvalidArgument,
         "storage config: \"s3.endpointUrl\" must be an http:// or https:// URL");
  }
  c.force_path_style = BoolField(s3, "forcePathStyle", "s3.forcePathStyle").value_or(true);
  c.insecure_skip_tls_verify =
      BoolField(s3, "insecureSkipTLSVerify", "s3.insecureSkipTLSVerify").value_or(false);
  c.storage_class = StringField(s3, "storageClass", "s3.storageClass");

  if (const nlohmann::json* cred = ObjectField(s3, "credentials", "s3.credentials")) {
    c.access_key_id = StringField(*cred, "access-key-id", "s3.credentials.access-key-id");
    c.secret_access_key =
        StringField(*cred, "secret-access-key", "s3.credentials.secret-access-key");
    c.session_token = StringField(*cred, "session-token", "s3.credentials.session-token");
  }
  if (c.access_key_id.empty() && c.secret_access_key.empty()) {
    c.access_key_id = getenv("AWS_ACCESS_KEY_ID").value_or("");
    c.secret_access_key = getenv("AWS_SECRET_ACCESS_KEY").value_or("");
    c.session_token = getenv("AWS_SESSION_TOKEN").value_or("");
  }
  if (c.access_key_id.empty() || c.secret_access_key.empty()) {
    Fail(ErrorKind::kInvalidArgument,
         "storage config: S3 credentials are missing: set s3.credentials.access-key-id and "
         "secret-access-key, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY");
  }

  if (auto v = IntField(s3, "uploadPartSize", "s3.uploadPartSize")) {
    if (*v < 0) {
      Fail(ErrorKind::kInvalidArgument, "storage config: \"s3.uploadPartSize\" must be >= 0");
    }
    if (*v > 0) c.upload_part_size = std::max(*v, kMinPartSize);  // as PBM does
  }
  if (c.upload_part_size > (int64_t{5} << 30)) {
    Fail(ErrorKind::kInvalidArgument, "storage config: \"s3.uploadPartSize\" exceeds S3's 5 GiB");
  }
  if (auto v = IntField(s3, "maxUploadParts", "s3.maxUploadParts")) {
    if (*v > kMaxUploadParts) {
      Fail(ErrorKind::kInvalidArgument,
           "storage config: \"s3.maxUploadParts\" must be at most {} (S3's limit)",
           kMaxUploadParts);
    }
    if (*v > 0) c.max_upload_parts = static_cast<int>(*v);
  }
  if (auto v = IntField(s3, "maxPartsInFlight", "s3.maxPartsInFlight")) {
    if (*v < 1 || *v > 64) {
      Fail(ErrorKind::kInvalidArgument,
           "storage config: \"s3.maxPartsInFlight\" must be between 1 and 64");
    }
    c.max_parts_in_flight = static_cast<int>(*v);
  }
  if (auto v = DurationField(s3, "stallTimeout", "s3.stallTimeout")) {
    if (*v < 1000) {
      Fail(ErrorKind::kInvalidArgument, "storage config: \"s3.stallTimeout\" must be >= 1s");
    }
    c.stall_timeout_ms = *v;
  }
  if (auto v = DurationField(s3, "connectTimeout", "s3.connectTimeout")) {
    c.connect_timeout_ms = std::max<int64_t>(*v, 1);
  }

  if (const nlohmann::json* sse =
          ObjectField(s3, "serverSideEncryption", "s3.serverSideEncryption")) {
    c.sse_algorithm = StringField(*sse, "sseAlgorithm", "s3.serverSideEncryption.sseAlgorithm");
    c.kms_key_id = StringField(*sse, "kmsKeyID", "s3.serverSideEncryption.kmsKeyID");
    c.sse_customer_algorithm =
        StringField(*sse, "sseCustomerAlgorithm", "s3.serverSideEncryption.sseCustomerAlgorithm");
    std::string key_b64 =
        StringField(*sse, "sseCustomerKey", "s3.serverSideEncryption.sseCustomerKey");
    if (!c.sse_algorithm.empty() && c.sse_algorithm != "AES256" && c.sse_algorithm != "aws:kms") {
      Fail(ErrorKind::kInvalidArgument,
           "storage config: \"s3.serverSideEncryption.sseAlgorithm\" must be AES256 or aws:kms");
    }
    if (!c.sse_customer_algorithm.empty()) {
      if (!c.sse_algorithm.empty()) {
        Fail(ErrorKind::kInvalidArgument,
             "storage config: set either serverSideEncryption.sseAlgorithm or "
             "sseCustomerAlgorithm, not both");
      }
      if (!s3::Base64Decode(key_b64, &c.sse_customer_key) || c.sse_customer_key.size() != 32) {
        Fail(ErrorKind::kInvalidArgument,
             "storage config: \"s3.serverSideEncryption.sseCustomerKey\" must be the base64 of "
             "a 32-byte key");
      }
    } else if (!key_b64.empty()) {
      Fail(ErrorKind::kInvalidArgument,
           "storage config: \"s3.serverSideEncryption.sseCustomerKey\" needs "
           "sseCustomerAlgorithm: AES256");
    }
  }

  if (const nlohmann::json* r = ObjectField(s3, "retryer", "s3.retryer")) {
    if (auto v = IntField(*r, "numMaxRetries", "s3.retryer.numMaxRetries")) {
      if (*v < 0 || *v > 100) {
        Fail(ErrorKind::kInvalidArgument,
             "storage config: \"s3.retryer.numMaxRetries\" must be between 0 and 100");
      }
      c.num_max_retries = static_cast<int>(*v);
    }
    // Zero means the SDK default, as in PBM.
    if (auto v = DurationField(*r, "minRetryDelay", "s3.retryer.minRetryDelay"); v && *v > 0) {
      c.min_retry_delay_ms = *v;
    }
    if (auto v = DurationField(*r, "maxRetryDelay", "s3.retryer.maxRetryDelay"); v && *v > 0) {
      c.max_retry_delay_ms = *v;
    }
    if (c.max_retry_delay_ms < c.min_retry_delay_ms) {
      Fail(ErrorKind::kInvalidArgument,
           "storage config: \"s3.retryer.maxRetryDelay\" is less than minRetryDelay");
    }
  }
  return c;
}

// ---------------------------------------------------------------------------------------------
// HTTP

namespace {

struct HttpRequest {
  std::string method;
  std::string key;  // full key in the bucket; "" for bucket operations
  std::vector<std::pair<std::string, std::string>> query;
  // Sent as given; x-amz-* and content-md5 are signed.
  std::vector<std::pair<std::string, std::string>> headers;
  std::string_view body;
};

struct HttpResponse {
  long status = 0;
  std::string body;
  std::map<std::string, std::string> headers;  // lower-case names
};

// One easy handle per thread, kept for its connection cache.
struct CurlHandle {
  CURL* h = nullptr;
  CurlHandle() : h(curl_easy_init()) {}
  ~CurlHandle() { curl_easy_cleanup(h); }
};

size_t WriteBody(char* ptr, size_t size, size_t nmemb, void* userdata) {
  static_cast<HttpResponse*>(userdata)->body.append(ptr, size * nmemb);
  return size * nmemb;
}

size_t WriteHeader(char* ptr, size_t size, size_t nmemb, void* userdata) {
  auto* resp = static_cast<HttpResponse*>(userdata);
  std::string_view line(ptr, size * nmemb);
  if (line.rfind("HTTP/", 0) == 0) {  // a new response (after 100 Continue): start over
    resp->headers.clear();
    return size * nmemb;
  }
  size_t colon = line.find(':');
  if (colon == std::string_view::npos) return size * nmemb;
  std::string name;
  for (char c : line.substr(0, colon)) name.push_back(static_cast<char>(std::tolower(c)));
  std::string_view value = line.substr(colon + 1);
  while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) value.remove_prefix(1);
  while (!value.empty() && (value.back() == '\r' || value.back() == '\n' || value.back() == ' '))
    value.remove_suffix(1);
  resp->headers[name] = std::string(value);
  return size * nmemb;
}

struct StallWatch {
  int64_t timeout_ms;
  curl_off_t down, up;
  std::chrono::steady_clock::time_point last;
  bool stalled;
};

int StallCheck(void* p, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
               curl_off_t ulnow) {
  auto* w = static_cast<StallWatch*>(p);
  auto now = std::chrono::steady_clock::now();
  if (dlnow != w->down || ulnow != w->up) {
    w->down = dlnow;
    w->up = ulnow;
    w->last = now;
    return 0;
  }
  if (now - w->last > std::chrono::milliseconds(w->timeout_ms)) {
    w->stalled = true;
    return 1;  // aborts the transfer (CURLE_ABORTED_BY_CALLBACK), which Do() retries
  }
  return 0;
}

std::string AmzDate() {
  std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y%m%dT%H%M%SZ", &tm);
  return buf;
}

bool IsRetryableCurlError(CURLcode code) {
  switch (code) {
    case CURLE_URL_MALFORMAT:
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_OUT_OF_MEMORY:
      return false;
    default:
      return true;
  }
}

}  // namespace

class S3Storage : public Storage {
 public:
  explicit S3Storage(S3Config cfg) : cfg_(std::move(cfg)) {
    static std::once_flag once;
    std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
    std::string endpoint = cfg_.endpoint_url;
    if (endpoint.empty()) endpoint = "https://s3." + cfg_.region + ".amazonaws.com";
    size_t scheme_end = endpoint.find("://");
    scheme_ = endpoint.substr(0, scheme_end);
    std::string rest = endpoint.substr(scheme_end + 3);
    size_t slash = rest.find('/');
    authority_ = rest.substr(0, slash);
    if (slash != std::string::npos && TrimSlashes(rest.substr(slash)) != "") {
      Fail(ErrorKind::kInvalidArgument,
           "storage config: \"s3.endpointUrl\" must not have a path (put it in \"s3.prefix\")");
    }
    if (authority_.empty()) {
      Fail(ErrorKind::kInvalidArgument, "storage config: \"s3.endpointUrl\" has no host");
    }
    key_prefix_ = cfg_.prefix.empty() ? "" : cfg_.prefix + "/";
    describe_ = "s3://" + cfg_.bucket + (cfg_.prefix.empty() ? "" : "/" + cfg_.prefix);
  }

  std::string Describe() const override { return describe_; }

  std::vector<ObjectInfo> List(const std::string& prefix) const override {
    ValidatePrefix("list", prefix);
    std::vector<ObjectInfo> out;
    for (auto& obj : ListKeys(key_prefix_ + prefix, "list", prefix)) {
      std::string name = obj.key.substr(key_prefix_.size());
      if (name.empty() || name.back() == '/' || name.find(kTempMarker) != std::string::npos) {
        continue;  // folder markers made by consoles; our names never end in '/'
      }
      out.push_back({std::move(name), obj.size, obj.mtime_unix});
    }
    std::sort(out.begin(), out.end(),
              [](const ObjectInfo& a, const ObjectInfo& b) { return a.name < b.name; });
    return out;
  }

  std::optional<ObjectInfo> Stat(const std::string& name) const override {
    ValidateObjectName("stat", name);
    HttpRequest req{"HEAD", Key(name), {}, {}, {}};
    AddSseCustomerHeaders(&req);
    HttpResponse resp = Do("stat", name, req, {200, 404});
    if (resp.status == 404) return std::nullopt;
    ObjectInfo info{name, 0, 0};
    auto len = resp.headers.find("content-length");
    if (len == resp.headers.end() ||
        std::from_chars(len->second.data(), len->second.data() + len->second.size(), info.size)
                .ec != std::errc()) {
      Fail(ErrorKind::kIo, "S3 stat of {} on {}: the response has no valid Content-Length", name,
           describe_);
    }
    if (auto lm = resp.headers.find("last-modified"); lm != resp.headers.end()) {
      info.mtime_unix = s3::ParseHttpDate(lm->second).value_or(0);
    }
    return info;
  }

  std::unique_ptr<Reader> Open(const std::string& name) const override {
    ValidateObjectName("open", name);
    return OpenAt("open", name, 0, -1);
  }

  std::unique_ptr<Reader> OpenRange(const std::string& name, int64_t offset,
                                    int64_t length) const override {
    ValidateObjectName("open", name);
    if (offset < 0 || length < 0) {
      Fail(ErrorKind::kInvalidArgument, "open {} on {}: negative offset {} or length {}", name,
           describe_, offset, length);
    }
    return OpenAt("open", name, offset, length);
  }

  std::unique_ptr<Writer> Create(const std::string& name) override;

  void Remove(const std::string& name) override {
    ValidateObjectName("remove", name);
    Do("remove", name, HttpRequest{"DELETE", Key(name), {}, {}, {}}, {200, 204, 404});
  }

  void RemovePrefix(const std::string& prefix) override {
    ValidatePrefix("remove", prefix);
    std::vector<s3::ListedObject> objs = ListKeys(key_prefix_ + prefix, "remove", prefix);
    // One DELETE per object, as PBM does. Not DeleteObjects: s3rver (our test server) deletes a
    // batch in parallel and removes directories from under itself, failing the batch and
    // corrupting its listing.
    for (const auto& obj : objs) {
      Do("remove", obj.key.substr(key_prefix_.size()), HttpRequest{"DELETE", obj.key, {}, {}, {}},
         {200, 204, 404});
    }
    AbortUploads(key_prefix_ + prefix);
  }

  // Performs one S3 request with retries. Returns the response if its status is in `ok`;
  // otherwise throws kNotFound (404), or kIo naming the operation, object, status and S3 code.
  HttpResponse Do(std::string_view op, std::string_view name, const HttpRequest& req,
                  std::initializer_list<long> ok) const {
    std::string cause;
    const int max_attempts = cfg_.num_max_retries + 1;
    int attempts = 0;
    for (int attempt = 0; attempt < max_attempts; ++attempt) {
      if (attempt > 0) {
        int64_t delay = cfg_.min_retry_delay_ms;
        for (int i = 1; i < attempt && delay < cfg_.max_retry_delay_ms; ++i) delay *= 2;
        delay = std::min(delay, cfg_.max_retry_delay_ms);
        thread_local std::mt19937 rng(std::random_device{}());
        delay = delay / 2 + std::uniform_int_distribution<int64_t>(0, delay / 2)(rng);
        spdlog::warn("s3: {} {} on {}: {}; retry {}/{} in {} ms", op, name, describe_, cause,
                     attempt, cfg_.num_max_retries, delay);
        std::this_thread::sleep_for(std::chrono::milliseconds(delay));
      }
      HttpResponse resp;
      ++attempts;
      CURLcode code = PerformOnce(req, &resp, &cause);
      if (code != CURLE_OK) {
        if (!IsRetryableCurlError(code)) break;
        continue;
      }
      if (std::find(ok.begin(), ok.end(), resp.status) != ok.end()) {
        // CompleteMultipartUpload may fail with 200 and an <Error> body; retried.
        if (resp.status != 200 || req.method != "POST" ||
            resp.body.find("<Error>") == std::string::npos) {
          return resp;
        }
      }
      std::string s3code, s3msg;
      try {  // the body of an error may be anything (a proxy's HTML page, nothing for HEAD)
        s3code = s3::XmlText(resp.body, "Code").value_or("");
        s3msg = s3::XmlText(resp.body, "Message").value_or("");
      } catch (const Error&) {
      }
      cause = fmt::format("HTTP {}{}{}{}", resp.status, s3code.empty() ? "" : " ", s3code,
                          s3msg.empty() ? "" : ": " + s3msg);
      // RequestTimeout (400): S3 gave up waiting for our body; the next attempt may be faster.
      if (resp.status >= 500 || resp.status == 429 || resp.status == 200 ||
          s3code == "RequestTimeout") {
        continue;
      }
      if (s3code == "NoSuchBucket") {
        Fail(ErrorKind::kIo, "S3 {} of {} on {}: the bucket does not exist ({})", op, name,
             describe_, cause);
      }
      if (resp.status == 404) {
        Fail(ErrorKind::kNotFound, "S3 {} of {} on {}: no such object ({})", op, name, describe_,
             cause);
      }
      if (resp.status == 403) {
        Fail(ErrorKind::kIo,
             "S3 {} of {} on {}: access denied, check the credentials and the "
             "bucket policy ({})",
             op, name, describe_, cause);
      }
      Fail(ErrorKind::kIo, "S3 {} of {} on {}: {}", op, name, describe_, cause);
    }
    Fail(ErrorKind::kIo, "S3 {} of {} on {} failed after {} attempt(s): {}", op, name, describe_,
         attempts, cause);
  }

  const S3Config& config() const { return cfg_; }
  std::string Key(std::string_view name) const { return key_prefix_ + std::string(name); }

  // SSE-C headers, needed on every request that reads or writes object data.
  void AddSseCustomerHeaders(HttpRequest* req) const {
    if (cfg_.sse_customer_algorithm.empty()) return;
    req->headers.emplace_back("x-amz-server-side-encryption-customer-algorithm",
                              cfg_.sse_customer_algorithm);
    req->headers.emplace_back("x-amz-server-side-encryption-customer-key",
                              s3::Base64Encode(cfg_.sse_customer_key));
    req->headers.emplace_back("x-amz-server-side-encryption-customer-key-MD5",
                              s3::Md5Base64(cfg_.sse_customer_key));
  }
  // Headers for PutObject and CreateMultipartUpload.
  void AddNewObjectHeaders(HttpRequest* req) const {
    if (!cfg_.sse_algorithm.empty()) {
      req->headers.emplace_back("x-amz-server-side-encryption", cfg_.sse_algorithm);
      if (cfg_.sse_algorithm == "aws:kms" && !cfg_.kms_key_id.empty()) {
        req->headers.emplace_back("x-amz-server-side-encryption-aws-kms-key-id", cfg_.kms_key_id);
      }
    }
    if (!cfg_.storage_class.empty()) {
      req->headers.emplace_back("x-amz-storage-class", cfg_.storage_class);
    }
    AddSseCustomerHeaders(req);
  }

 private:
  std::unique_ptr<Reader> OpenAt(std::string_view op, const std::string& name, int64_t offset,
                                 int64_t length) const;

  std::vector<s3::ListedObject> ListKeys(const std::string& full_prefix, std::string_view op,
                                         const std::string& prefix) const {
    std::vector<s3::ListedObject> out;
    std::string token;
    for (;;) {
      HttpRequest req{"GET", "", {{"list-type", "2"}}, {}, {}};
      if (!full_prefix.empty()) req.query.emplace_back("prefix", full_prefix);
      if (!token.empty()) req.query.emplace_back("continuation-token", token);
      HttpResponse resp = Do(op, prefix.empty() ? "all objects" : prefix + "*", req, {200});
      s3::ListPage page = s3::ParseListObjectsV2(resp.body);
      for (auto& obj : page.objects) {
        if (obj.key.rfind(full_prefix, 0) == 0) out.push_back(std::move(obj));
      }
      if (!page.truncated) break;
      if (page.next_token == token) {
        Fail(ErrorKind::kIo, "S3 {} of {} on {}: the listing repeats its continuation token", op,
             prefix, describe_);
      }
      token = std::move(page.next_token);
    }
    return out;
  }

  // Aborts multipart uploads left under the prefix by writers that died before aborting.
  // Best effort: servers without ListMultipartUploads are skipped.
  void AbortUploads(const std::string& full_prefix) const {
    HttpRequest req{"GET", "", {{"uploads", ""}}, {}, {}};
    if (!full_prefix.empty()) req.query.emplace_back("prefix", full_prefix);
    HttpResponse resp;
    try {
      resp = Do("list uploads", full_prefix, req, {200, 400, 404, 405, 501});
    } catch (const Error& e) {
      spdlog::warn("s3: cannot list pending uploads on {}: {}", describe_, e.what());
      return;
    }
    if (resp.status != 200) return;
    for (std::string_view up : s3::XmlElements(resp.body, "Upload")) {
      auto key = s3::XmlText(up, "Key");
      auto id = s3::XmlText(up, "UploadId");
      if (!key || !id || key->rfind(full_prefix, 0) != 0) continue;
      Do("abort upload", *key, HttpRequest{"DELETE", *key, {{"uploadId", *id}}, {}, {}},
         {200, 204, 404});
    }
  }

  // One attempt. Returns the curl code; on failure `cause` says why (never with credentials).
  CURLcode PerformOnce(const HttpRequest& req, HttpResponse* resp, std::string* cause) const {
    thread_local CurlHandle handle;
    CURL* h = handle.h;
    curl_easy_reset(h);

    std::string host = cfg_.force_path_style ? authority_ : cfg_.bucket + "." + authority_;
    std::string uri = cfg_.force_path_style ? "/" + s3::UriEncode(cfg_.bucket, false) : "";
    if (!req.key.empty() || !cfg_.force_path_style) uri += "/" + s3::UriEncode(req.key, false);
    std::string url = scheme_ + "://" + host + uri;
    if (!req.query.empty()) url += "?" + s3::CanonicalQueryString(req.query);

    s3::SigV4Request sig;
    sig.method = req.method;
    sig.canonical_uri = uri;
    sig.query = req.query;
    sig.payload_hash = s3::Sha256Hex(req.body);
    std::string date = AmzDate();
    sig.headers = {
        {"host", host}, {"x-amz-date", date}, {"x-amz-content-sha256", sig.payload_hash}};
    if (!cfg_.session_token.empty())
      sig.headers.emplace_back("x-amz-security-token", cfg_.session_token);
    for (const auto& [k, v] : req.headers) {
      std::string lower;
      for (char c : k) lower.push_back(static_cast<char>(std::tolower(c)));
      if (lower.rfind("x-amz-", 0) == 0 || lower == "content-md5") sig.headers.emplace_back(k, v);
    }
    std::string auth = s3::AuthorizationHeader(sig, cfg_.access_key_id, cfg_.secret_access_key,
                                               cfg_.region, "s3", date);

    struct curl_slist* list = nullptr;
    auto add = [&](const std::string& k, const std::string& v) {
      list = curl_slist_append(list, (k + ": " + v).c_str());
    };
    for (const auto& [k, v] : sig.headers) add(k, v);
    for (const auto& [k, v] : req.headers) {
      if (std::find(sig.headers.begin(), sig.headers.end(), std::make_pair(k, v)) ==
          sig.headers.end()) {
        add(k, v);
      }
    }
    add("Authorization", auth);
    list = curl_slist_append(list, "Expect:");
    bool has_body = req.method == "PUT" || req.method == "POST";
    bool has_type = std::any_of(req.headers.begin(), req.headers.end(),
                                [](const auto& kv) { return kv.first == "Content-Type"; });
    if (has_body && !has_type)
      list = curl_slist_append(list, "Content-Type: application/octet-stream");

    char errbuf[CURL_ERROR_SIZE] = {0};
    curl_easy_setopt(h, CURLOPT_URL, url.c_str());
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, list);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(cfg_.connect_timeout_ms));
    // A transfer that moves no byte either way for stallTimeout has stalled. (Not
    // CURLOPT_LOW_SPEED_*: its moving average over several seconds hides a stall that follows
    // an upload.)
    StallWatch watch{cfg_.stall_timeout_ms, 0, 0, std::chrono::steady_clock::now(), false};
    curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, StallCheck);
    curl_easy_setopt(h, CURLOPT_XFERINFODATA, &watch);
    if (cfg_.insecure_skip_tls_verify) {
      curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 0L);
      curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 0L);
    }
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, WriteBody);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, resp);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, WriteHeader);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, resp);
    if (req.method == "GET") {
      curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
    } else if (req.method == "HEAD") {
      curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
    } else {
      curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, req.method.c_str());
      if (has_body) {
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(req.body.size()));
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, req.body.data() ? req.body.data() : "");
      }
    }
    CURLcode code = curl_easy_perform(h);
    curl_slist_free_all(list);
    if (code != CURLE_OK) {
      if (watch.stalled) {
        *cause = fmt::format("no data moved for {} ms (stalled; s3.stallTimeout)",
                             cfg_.stall_timeout_ms);
        return code;
      }
      *cause = errbuf[0] ? fmt::format("{} ({})", curl_easy_strerror(code), errbuf)
                         : std::string(curl_easy_strerror(code));
      return code;
    }
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &resp->status);
    return CURLE_OK;
  }

  S3Config cfg_;
  std::string scheme_;
  std::string authority_;
  std::string key_prefix_;
  std::string describe_;
};

// ---------------------------------------------------------------------------------------------
// Reader: ranged GETs of one part size, up to max_parts_in_flight fetched ahead.

namespace {

class S3Reader : public Reader {
 public:
  S3Reader(const S3Storage* s, std::string name, int64_t begin, int64_t end)
      : s_(s), name_(std::move(name)), next_(begin), end_(end) {}
  ~S3Reader() override {
    for (auto& f : pending_) {
      try {
        f.get();
      } catch (...) {
      }
    }
  }

  size_t Read(void* buf, size_t n) override {
    if (failed_)
      Fail(ErrorKind::kIo, "read of {} on {}: an earlier read failed", name_, s_->Describe());
    while (pos_ == cur_.size()) {
      Fill();
      if (pending_.empty()) return 0;
      try {
        cur_ = pending_.front().get();
      } catch (...) {
        pending_.pop_front();
        failed_ = true;
        throw;
      }
      pending_.pop_front();
      pos_ = 0;
    }
    size_t k = std::min(n, cur_.size() - pos_);
    std::memcpy(buf, cur_.data() + pos_, k);
    pos_ += k;
    return k;
  }

 private:
  void Fill() {
    const int64_t chunk = s_->config().upload_part_size;
    while (static_cast<int>(pending_.size()) < s_->config().max_parts_in_flight && next_ < end_) {
      int64_t a = next_;
      int64_t len = std::min(chunk, end_ - a);
      next_ += len;
      pending_.push_back(std::async(std::launch::async, [this, a, len] { return Get(a, len); }));
    }
  }

  std::string Get(int64_t a, int64_t len) const {
    HttpRequest req{
        "GET", s_->Key(name_), {}, {{"Range", fmt::format("bytes={}-{}", a, a + len - 1)}}, {}};
    s_->AddSseCustomerHeaders(&req);
    HttpResponse resp = s_->Do("read", name_, req, {200, 206});
    std::string body = std::move(resp.body);
    if (resp.status == 200) {  // the server ignored Range and sent everything
      if (static_cast<int64_t>(body.size()) < a + len)
        body.clear();
      else
        body = body.substr(a, len);
    }
    if (static_cast<int64_t>(body.size()) != len) {
      Fail(ErrorKind::kIo,
           "S3 read of {} on {}: got {} bytes at offset {} instead of {} (was the "
           "object replaced?)",
           name_, s_->Describe(), body.size(), a, len);
    }
    return body;
  }

  const S3Storage* s_;
  std::string name_;
  int64_t next_;
  int64_t end_;
  std::deque<std::future<std::string>> pending_;
  std::string cur_;
  size_t pos_ = 0;
  bool failed_ = false;
};

// An empty range.
class EmptyReader : public Reader {
 public:
  size_t Read(void*, size_t) override { return 0; }
};

}  // namespace

std::unique_ptr<Reader> S3Storage::OpenAt(std::string_view op, const std::string& name,
                                          int64_t offset, int64_t length) const {
  std::optional<ObjectInfo> info = Stat(name);
  if (!info) {
    Fail(ErrorKind::kNotFound, "{} {} on {}: no such object", op, name, describe_);
  }
  if (offset > info->size) {
    Fail(ErrorKind::kInvalidArgument, "{} {} on {}: offset {} is past the end ({} bytes)", op, name,
         describe_, offset, info->size);
  }
  int64_t end = length < 0 ? info->size : std::min(info->size, offset + length);
  if (end == offset) return std::make_unique<EmptyReader>();
  return std::make_unique<S3Reader>(this, name, offset, end);
}

// ---------------------------------------------------------------------------------------------
// Writer: a single PutObject up to one part, else a multipart upload.

namespace {

class S3Writer : public Writer {
 public:
  S3Writer(S3Storage* s, std::string name) : s_(s), name_(std::move(name)), key_(s->Key(name_)) {
    part_size_ = static_cast<size_t>(s_->config().upload_part_size);
  }

  ~S3Writer() override {
    if (committed_) return;
    WaitAll(/*rethrow=*/false);
    if (!upload_id_.empty()) {
      try {
        s_->Do("abort upload of", name_,
               HttpRequest{"DELETE", key_, {{"uploadId", upload_id_}}, {}, {}}, {200, 204, 404});
      } catch (const std::exception& e) {
        spdlog::warn("s3: {} (the bucket's lifecycle rules or RemovePrefix clean it up)", e.what());
      }
    }
  }

  void Write(const void* data, size_t n) override {
    CheckUsable();
    const char* p = static_cast<const char*>(data);
    try {
      while (n > 0) {
        if (buf_.size() == part_size_) FlushPart();
        if (buf_.capacity() < part_size_) buf_.reserve(part_size_);
        size_t k = std::min(n, part_size_ - buf_.size());
        buf_.append(p, k);
        p += k;
        n -= k;
      }
    } catch (...) {
      failed_ = true;
      throw;
    }
  }

  void Commit() override {
    CheckUsable();
    try {
      if (upload_id_.empty()) {
        HttpRequest req{"PUT", key_, {}, {}, buf_};
        s_->AddNewObjectHeaders(&req);
        s_->Do("write", name_, req, {200});
      } else {
        if (!buf_.empty()) FlushPart();
        WaitAll(/*rethrow=*/true);
        std::string body = "<?xml version=\"1.0\" encoding=\"UTF-8\"?><CompleteMultipartUpload>";
        for (const auto& [n, etag] : etags_) {
          body += fmt::format("<Part><PartNumber>{}</PartNumber><ETag>{}</ETag></Part>", n,
                              s3::XmlEscape(etag));
        }
        body += "</CompleteMultipartUpload>";
        HttpRequest req{
            "POST", key_, {{"uploadId", upload_id_}}, {{"Content-Type", "application/xml"}}, body};
        s_->Do("complete upload of", name_, req, {200});
      }
      committed_ = true;
      std::string().swap(buf_);
    } catch (...) {
      failed_ = true;
      throw;
    }
  }

 private:
  void CheckUsable() const {
    if (committed_)
      Fail(ErrorKind::kIo, "write {} on {}: already committed", name_, s_->Describe());
    if (failed_) {
      Fail(ErrorKind::kIo, "write {} on {}: an earlier write failed", name_, s_->Describe());
    }
  }

  void FlushPart() {
    if (upload_id_.empty()) {
      HttpRequest req{"POST", key_, {{"uploads", ""}}, {}, {}};
      s_->AddNewObjectHeaders(&req);
      HttpResponse resp = s_->Do("start upload of", name_, req, {200});
      upload_id_ = s3::XmlText(resp.body, "UploadId").value_or("");
      if (upload_id_.empty()) {
        Fail(ErrorKind::kIo, "S3 start upload of {} on {}: the response has no UploadId", name_,
             s_->Describe());
      }
    }
    if (next_part_ > s_->config().max_upload_parts) {
      Fail(ErrorKind::kIo,
           "write {} on {}: the object needs more than maxUploadParts ({}) parts of {} bytes; "
           "raise s3.uploadPartSize",
           name_, s_->Describe(), s_->config().max_upload_parts, part_size_);
    }
    while (static_cast<int>(inflight_.size()) >= s_->config().max_parts_in_flight) {
      etags_.emplace_back(inflight_.front().first, inflight_.front().second.get());
      inflight_.pop_front();
    }
    int part = next_part_++;
    auto upload = [this, part, data = std::move(buf_)]() {
      HttpRequest req{
          "PUT", key_, {{"partNumber", std::to_string(part)}, {"uploadId", upload_id_}}, {}, data};
      s_->AddSseCustomerHeaders(&req);
      HttpResponse resp = s_->Do("write part of", name_, req, {200});
      auto etag = resp.headers.find("etag");
      if (etag == resp.headers.end() || etag->second.empty()) {
        Fail(ErrorKind::kIo, "S3 write part {} of {} on {}: the response has no ETag", part, name_,
             s_->Describe());
      }
      return etag->second;
    };
    inflight_.emplace_back(part, std::async(std::launch::async, std::move(upload)));
    buf_ = std::string();
  }

  void WaitAll(bool rethrow) {
    std::exception_ptr first;
    while (!inflight_.empty()) {
      try {
        etags_.emplace_back(inflight_.front().first, inflight_.front().second.get());
      } catch (...) {
        if (!first) first = std::current_exception();
      }
      inflight_.pop_front();
    }
    if (first && rethrow) std::rethrow_exception(first);
  }

  S3Storage* s_;
  std::string name_;
  std::string key_;
  size_t part_size_;
  std::string buf_;
  std::string upload_id_;
  int next_part_ = 1;
  std::deque<std::pair<int, std::future<std::string>>> inflight_;
  std::vector<std::pair<int, std::string>> etags_;
  bool committed_ = false;
  bool failed_ = false;
};

}  // namespace

std::unique_ptr<Writer> S3Storage::Create(const std::string& name) {
  ValidateObjectName("create", name);
  return std::make_unique<S3Writer>(this, name);
}

std::unique_ptr<Storage> NewS3Storage(const S3Config& config) {
  return std::make_unique<S3Storage>(config);
}

}  // namespace pbm::storage
