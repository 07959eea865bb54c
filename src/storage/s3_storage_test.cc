// Unit tests of the S3 driver's pieces that need no server: the SigV4 signer (published AWS
// vectors and the npm package aws4), the XML scanner and the config parser. The driver itself is
// tested against s3rver by tests/e2e/test_s3.py.
#include "storage/s3_storage.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>

#include "common/error.h"
#include "storage/s3_sign.h"
#include "storage/s3_xml.h"

namespace pbm::storage {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

// --- SigV4: the AWS SigV4 test suite (aws-sig-v4-test-suite, as vendored in
// awslabs/aws-c-auth tests/aws-signing-test-suite/v4/<case>/header-signed-request.txt):
// credentials AKIDEXAMPLE / wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY, us-east-1, service
// "service", 20150830T123600Z.
constexpr char kSuiteKey[] = "AKIDEXAMPLE";
constexpr char kSuiteSecret[] = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
constexpr char kSuiteDate[] = "20150830T123600Z";
constexpr char kEmptySha[] = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

std::string SuiteAuth(const s3::SigV4Request& r) {
  return s3::AuthorizationHeader(r, kSuiteKey, kSuiteSecret, "us-east-1", "service", kSuiteDate);
}

TEST(SigV4Test, GetVanilla) {
  s3::SigV4Request r{
      "GET", "/", {}, {{"Host", "example.amazonaws.com"}, {"X-Amz-Date", kSuiteDate}}, kEmptySha};
  // get-vanilla/header-canonical-request.txt
  EXPECT_EQ(s3::CanonicalRequest(r),
            "GET\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\n"
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(SuiteAuth(r),
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "
            "SignedHeaders=host;x-amz-date, "
            "Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31");
}

TEST(SigV4Test, GetVanillaQueryOrderKeyCase) {
  s3::SigV4Request r{"GET",
                     "/",
                     {{"Param2", "value2"}, {"Param1", "value1"}},
                     {{"Host", "example.amazonaws.com"}, {"X-Amz-Date", kSuiteDate}},
                     kEmptySha};
  EXPECT_EQ(SuiteAuth(r),
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "
            "SignedHeaders=host;x-amz-date, "
            "Signature=b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500");
}

TEST(SigV4Test, PostXWwwFormUrlencoded) {
  const std::string body = "Param1=value1";
  const std::string hash = s3::Sha256Hex(body);
  EXPECT_EQ(hash, "9095672bbd1f56dfc5b65f3e153adc8731a4a654192329106275f4c7b24d0b6e");
  s3::SigV4Request r{"POST",
                     "/",
                     {},
                     {{"Content-Type", "application/x-www-form-urlencoded"},
                      {"Host", "example.amazonaws.com"},
                      {"Content-Length", "13"},
                      {"x-amz-content-sha256", hash},
                      {"X-Amz-Date", kSuiteDate}},
                     hash};
  EXPECT_EQ(SuiteAuth(r),
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "
            "SignedHeaders=content-length;content-type;host;x-amz-content-sha256;x-amz-date, "
            "Signature=d3875051da38690788ef43de4db0d8f280229d82040bfac253562e56c3f20e0b");
}

// The S3 GetObject example of the S3 API reference, "Authenticating Requests: Using the
// Authorization Header (AWS Signature Version 4)" → "Example: GET Object".
TEST(SigV4Test, S3DocumentationGetObject) {
  s3::SigV4Request r{"GET",
                     "/test.txt",
                     {},
                     {{"Host", "examplebucket.s3.amazonaws.com"},
                      {"Range", "bytes=0-9"},
                      {"x-amz-content-sha256", kEmptySha},
                      {"x-amz-date", "20130524T000000Z"}},
                     kEmptySha};
  EXPECT_EQ(
      s3::AuthorizationHeader(r, "AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
                              "us-east-1", "s3", "20130524T000000Z"),
      "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, "
      "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, "
      "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41");
}

TEST(SigV4Test, UriEncode) {
  EXPECT_EQ(s3::UriEncode("a b/c~d_e.f-g", false), "a%20b/c~d_e.f-g");
  EXPECT_EQ(s3::UriEncode("a b/c", true), "a%20b%2Fc");
  EXPECT_EQ(s3::UriEncode("ü+=&*", true), "%C3%BC%2B%3D%26%2A");
  EXPECT_EQ(s3::CanonicalQueryString({{"uploads", ""}, {"b", "x y"}, {"a", "2"}, {"a", "1"}}),
            "a=1&a=2&b=x%20y&uploads=");
}

TEST(SigV4Test, Base64AndMd5) {
  EXPECT_EQ(s3::Base64Encode(""), "");
  EXPECT_EQ(s3::Base64Encode("ab"), "YWI=");
  std::string out;
  ASSERT_TRUE(s3::Base64Decode("YWI=", &out));
  EXPECT_EQ(out, "ab");
  ASSERT_TRUE(s3::Base64Decode("YWJj", &out));
  EXPECT_EQ(out, "abc");
  EXPECT_FALSE(s3::Base64Decode("YWJ", &out));
  EXPECT_EQ(s3::Md5Base64(""), "1B2M2Y8AsgTpgAmY7PhCfg==");  // RFC 1864 style Content-MD5
}

// Runs tests/s3/aws4_sign.js over the same requests our signer signs.
std::vector<std::string> Aws4Sign(const nlohmann::json& requests) {
  const std::string dir = PBM_SOURCE_DIR "/tests/s3";
  std::string in_path = testing::TempDir() + "/aws4_in.json";
  std::ofstream(in_path) << requests.dump();
  std::string cmd = "cd " + dir + " && node aws4_sign.js < " + in_path + " 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  std::string out;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof(buf), p)) > 0) out.append(buf, n);
  int rc = pclose(p);
  if (rc != 0 || out.empty() || out[0] != '[') {
    ADD_FAILURE() << "node aws4_sign.js failed (run scripts/setup.sh to install tests/s3's npm "
                     "packages): "
                  << out;
    return {};
  }
  return nlohmann::json::parse(out).get<std::vector<std::string>>();
}

TEST(SigV4Test, AgreesWithAws4OnS3Requests) {
  struct Case {
    std::string method, uri;
    std::vector<std::pair<std::string, std::string>> query;
    std::string body;
    std::vector<std::pair<std::string, std::string>> extra;
  };
  const std::vector<Case> cases = {
      {"GET", "/bucket", {{"list-type", "2"}, {"prefix", "pre fix/ü+a=b&c"}}, "", {}},
      {"GET",
       "/bucket",
       {{"list-type", "2"},
        {"continuation-token", "1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM="}},
       "",
       {}},
      {"PUT", "/bucket/" + s3::UriEncode("dir/a b+c=ü~.txt", false), {}, "hello", {}},
      {"PUT", "/bucket/k", {{"partNumber", "3"}, {"uploadId", "VXBsb2FkIElE/+="}}, "part", {}},
      {"POST",
       "/bucket/k",
       {{"uploads", ""}},
       "",
       {{"x-amz-server-side-encryption", "aws:kms"}, {"x-amz-security-token", "TOKEN/+="}}},
      {"POST",
       "/bucket",
       {{"delete", ""}},
       "<Delete/>",
       {{"Content-MD5", s3::Md5Base64("<Delete/>")}}},
      {"DELETE", "/bucket/k", {{"uploadId", "abc"}}, "", {}},
  };
  nlohmann::json reqs = nlohmann::json::array();
  std::vector<std::string> ours;
  for (const auto& c : cases) {
    s3::SigV4Request r;
    r.method = c.method;
    r.canonical_uri = c.uri;
    r.query = c.query;
    r.payload_hash = s3::Sha256Hex(c.body);
    r.headers = {{"host", "127.0.0.1:9000"},
                 {"x-amz-date", "20260102T030405Z"},
                 {"x-amz-content-sha256", r.payload_hash}};
    for (const auto& h : c.extra) r.headers.push_back(h);
    if (!c.body.empty()) {  // aws4 signs these for a body; so may we
      r.headers.emplace_back("content-type", "application/octet-stream");
      r.headers.emplace_back("content-length", std::to_string(c.body.size()));
    }
    ours.push_back(
        s3::AuthorizationHeader(r, "AKID", "SECRET/+key", "eu-west-3", "s3", "20260102T030405Z"));
    nlohmann::json headers = nlohmann::json::object();
    for (const auto& [k, v] : r.headers) headers[k] = v;
    std::string path = c.uri;
    if (!c.query.empty()) path += "?" + s3::CanonicalQueryString(c.query);
    reqs.push_back({{"method", c.method},
                    {"host", "127.0.0.1:9000"},
                    {"path", path},
                    {"headers", headers},
                    {"body", c.body},
                    {"region", "eu-west-3"},
                    {"service", "s3"},
                    {"accessKeyId", "AKID"},
                    {"secretAccessKey", "SECRET/+key"}});
  }
  std::vector<std::string> theirs = Aws4Sign(reqs);
  ASSERT_EQ(theirs.size(), ours.size());
  for (size_t i = 0; i < ours.size(); ++i) {
    EXPECT_EQ(ours[i], theirs[i]) << "case " << i << " " << cases[i].method << " " << cases[i].uri;
  }
}

// --- XML

TEST(S3XmlTest, ListObjectsV2) {
  const std::string body = R"(<?xml version="1.0" encoding="UTF-8"?>
<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
  <Name>b</Name><Prefix>p/</Prefix><KeyCount>2</KeyCount><MaxKeys>1000</MaxKeys>
  <IsTruncated>true</IsTruncated>
  <Contents><Key>p/a&amp;b &lt;c&gt; &#228;&#x20AC;</Key><LastModified>2026-01-02T03:04:05.000Z</LastModified>
    <ETag>&quot;x&quot;</ETag><Size>12</Size><StorageClass>STANDARD</StorageClass></Contents>
  <Contents><Key>p/IsTruncated</Key><LastModified>2026-01-02T03:04:06Z</LastModified><Size>0</Size></Contents>
  <NextContinuationToken>tok/+=</NextContinuationToken>
</ListBucketResult>)";
  s3::ListPage page = s3::ParseListObjectsV2(body);
  ASSERT_EQ(page.objects.size(), 2u);
  EXPECT_EQ(page.objects[0].key, "p/a&b <c> \xC3\xA4\xE2\x82\xAC");
  EXPECT_EQ(page.objects[0].size, 12);
  EXPECT_EQ(page.objects[0].mtime_unix, 1767323045);
  EXPECT_EQ(page.objects[1].key, "p/IsTruncated");
  EXPECT_EQ(page.objects[1].mtime_unix, 1767323046);
  EXPECT_TRUE(page.truncated);
  EXPECT_EQ(page.next_token, "tok/+=");

  s3::ListPage last = s3::ParseListObjectsV2(
      "<ListBucketResult><IsTruncated>false</IsTruncated><KeyCount>0</KeyCount></"
      "ListBucketResult>");
  EXPECT_TRUE(last.objects.empty());
  EXPECT_FALSE(last.truncated);
}

TEST(S3XmlTest, MalformedResponses) {
  EXPECT_THROW(s3::ParseListObjectsV2("<Error><Code>NoSuchBucket</Code></Error>"), Error);
  EXPECT_THROW(s3::ParseListObjectsV2("<ListBucketResult><Contents><Key>a</Key></Contents>"
                                      "</ListBucketResult>"),
               Error);  // no Size
  EXPECT_THROW(s3::ParseListObjectsV2("<ListBucketResult><Contents><Key>a</Key><Size>-1</Size>"
                                      "</Contents></ListBucketResult>"),
               Error);
  EXPECT_THROW(s3::ParseListObjectsV2("<ListBucketResult><IsTruncated>true</IsTruncated>"
                                      "</ListBucketResult>"),
               Error);  // truncated without a token
  EXPECT_THROW(s3::XmlElements("<a><Key>x</a>", "Key"), Error);
  EXPECT_FALSE(s3::XmlUnescape("a &bogus; b"));
  EXPECT_FALSE(s3::XmlUnescape("a & b"));
  EXPECT_EQ(s3::XmlText("<E><Code>SlowDown</Code><Message>m</Message></E>", "Code"), "SlowDown");
  EXPECT_EQ(s3::XmlText("<R><UploadId/></R>", "UploadId"), "");
  EXPECT_EQ(s3::XmlText("<R><KeyCount>1</KeyCount></R>", "Key"), std::nullopt);
  EXPECT_EQ(s3::XmlEscape("a<&>\"'"), "a&lt;&amp;&gt;&quot;&apos;");
}

TEST(S3XmlTest, Dates) {
  EXPECT_EQ(s3::ParseHttpDate("Fri, 02 Jan 2026 03:04:05 GMT"), 1767323045);
  EXPECT_EQ(s3::ParseHttpDate("yesterday"), std::nullopt);
  EXPECT_EQ(s3::ParseIso8601("2026-01-02T03:04:05Z"), 1767323045);
  EXPECT_EQ(s3::ParseIso8601("2026-01-02 03:04:05"), std::nullopt);
}

// --- Config

std::optional<std::string> NoEnv(const char*) { return std::nullopt; }

nlohmann::json MinimalS3() {
  return {{"bucket", "b"}, {"credentials", {{"access-key-id", "AK"}, {"secret-access-key", "SK"}}}};
}

std::string InvalidArgument(const nlohmann::json& s3,
                            std::function<std::optional<std::string>(const char*)> env = NoEnv) {
  try {
    ParseS3Config(s3, env);
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kInvalidArgument) << e.what();
    return e.what();
  }
  ADD_FAILURE() << "no error for " << s3.dump();
  return "";
}

TEST(S3ConfigTest, DefaultsLikePbm) {
  S3Config c = ParseS3Config(MinimalS3(), NoEnv);
  EXPECT_EQ(c.region, "us-east-1");
  EXPECT_TRUE(c.force_path_style);
  EXPECT_EQ(c.upload_part_size, 10 << 20);
  EXPECT_EQ(c.max_upload_parts, 10000);
  EXPECT_EQ(c.num_max_retries, 3);
  EXPECT_EQ(c.min_retry_delay_ms, 30);
  EXPECT_EQ(c.max_retry_delay_ms, 300000);
  EXPECT_EQ(c.max_parts_in_flight, 4);
}

TEST(S3ConfigTest, AllFields) {
  nlohmann::json s3 = MinimalS3();
  s3["region"] = "eu-west-3";
  s3["prefix"] = "/pbm/backups/";
  s3["endpointUrl"] = "http://127.0.0.1:9000";
  s3["forcePathStyle"] = false;
  s3["credentials"]["session-token"] = "ST";
  s3["uploadPartSize"] = 1 << 20;  // raised to S3's minimum, as PBM does
  s3["maxUploadParts"] = 500;
  s3["insecureSkipTLSVerify"] = true;
  s3["serverSideEncryption"] = {{"sseCustomerAlgorithm", "AES256"},
                                {"sseCustomerKey", s3::Base64Encode(std::string(32, 'k'))}};
  s3["retryer"] = {{"numMaxRetries", 5}, {"minRetryDelay", "10ms"}, {"maxRetryDelay", 2000000000}};
  s3["maxPartsInFlight"] = 8;
  s3["stallTimeout"] = "2s";
  S3Config c = ParseS3Config(s3, NoEnv);
  EXPECT_EQ(c.region, "eu-west-3");
  EXPECT_EQ(c.prefix, "pbm/backups");
  EXPECT_EQ(c.endpoint_url, "http://127.0.0.1:9000");
  EXPECT_FALSE(c.force_path_style);
  EXPECT_EQ(c.session_token, "ST");
  EXPECT_EQ(c.upload_part_size, 5 << 20);
  EXPECT_EQ(c.max_upload_parts, 500);
  EXPECT_TRUE(c.insecure_skip_tls_verify);
  EXPECT_EQ(c.sse_customer_key, std::string(32, 'k'));
  EXPECT_EQ(c.num_max_retries, 5);
  EXPECT_EQ(c.min_retry_delay_ms, 10);
  EXPECT_EQ(c.max_retry_delay_ms, 2000);
  EXPECT_EQ(c.max_parts_in_flight, 8);
  EXPECT_EQ(c.stall_timeout_ms, 2000);
}

TEST(S3ConfigTest, CredentialsAndRegionFromEnvironment) {
  std::map<std::string, std::string> env = {{"AWS_ACCESS_KEY_ID", "EK"},
                                            {"AWS_SECRET_ACCESS_KEY", "ES"},
                                            {"AWS_SESSION_TOKEN", "ET"},
                                            {"AWS_REGION", "ap-south-1"}};
  auto getenv = [&](const char* n) -> std::optional<std::string> {
    auto it = env.find(n);
    if (it == env.end()) return std::nullopt;
    return it->second;
  };
  S3Config c = ParseS3Config({{"bucket", "b"}}, getenv);
  EXPECT_EQ(c.access_key_id, "EK");
  EXPECT_EQ(c.secret_access_key, "ES");
  EXPECT_EQ(c.session_token, "ET");
  EXPECT_EQ(c.region, "ap-south-1");
  // The config wins over the environment.
  c = ParseS3Config(MinimalS3(), getenv);
  EXPECT_EQ(c.access_key_id, "AK");
  EXPECT_EQ(c.session_token, "");
}

TEST(S3ConfigTest, ClearErrors) {
  EXPECT_THAT(InvalidArgument({{"credentials", MinimalS3()["credentials"]}}),
              HasSubstr("s3.bucket"));
  EXPECT_THAT(InvalidArgument({{"bucket", "b"}}), HasSubstr("credentials are missing"));
  EXPECT_THAT(InvalidArgument({{"bucket", "b"}, {"credentials", {{"access-key-id", "AK"}}}}),
              HasSubstr("credentials are missing"));
  auto with = [](const char* k, nlohmann::json v) {
    nlohmann::json s3 = MinimalS3();
    s3[k] = std::move(v);
    return s3;
  };
  EXPECT_THAT(InvalidArgument(with("bucket", 7)), HasSubstr("\"s3.bucket\" must be a string"));
  EXPECT_THAT(InvalidArgument(with("bucket", "a/b")), HasSubstr("s3.prefix"));
  EXPECT_THAT(InvalidArgument(with("forcePathStyle", "yes")), HasSubstr("s3.forcePathStyle"));
  EXPECT_THAT(InvalidArgument(with("uploadPartSize", -1)), HasSubstr("s3.uploadPartSize"));
  EXPECT_THAT(InvalidArgument(with("uploadPartSize", "10MB")), HasSubstr("must be an integer"));
  EXPECT_THAT(InvalidArgument(with("maxUploadParts", 20000)), HasSubstr("s3.maxUploadParts"));
  EXPECT_THAT(InvalidArgument(with("endpointUrl", "ftp://x")), HasSubstr("s3.endpointUrl"));
  EXPECT_THAT(InvalidArgument(with("prefix", "a/../b")), HasSubstr("\"..\""));
  EXPECT_THAT(InvalidArgument(with("retryer", {{"minRetryDelay", "soon"}})),
              HasSubstr("s3.retryer.minRetryDelay"));
  EXPECT_THAT(InvalidArgument(with("retryer", {{"numMaxRetries", -1}})),
              HasSubstr("numMaxRetries"));
  EXPECT_THAT(InvalidArgument(with("serverSideEncryption", {{"sseAlgorithm", "rot13"}})),
              HasSubstr("sseAlgorithm"));
  EXPECT_THAT(InvalidArgument(with("serverSideEncryption", {{"sseCustomerAlgorithm", "AES256"},
                                                            {"sseCustomerKey", "short"}})),
              HasSubstr("sseCustomerKey"));
  EXPECT_THAT(InvalidArgument(with("credentials", "AK:SK")), HasSubstr("s3.credentials"));
}

TEST(S3ConfigTest, ErrorsNeverShowTheSecret) {
  nlohmann::json s3 = MinimalS3();
  s3["credentials"]["secret-access-key"] = "TOPSECRET-1234";
  s3["credentials"]["session-token"] = "TOKEN-5678";
  s3["uploadPartSize"] = "big";
  std::string msg = InvalidArgument(s3);
  EXPECT_THAT(msg, Not(HasSubstr("TOPSECRET")));
  EXPECT_THAT(msg, Not(HasSubstr("TOKEN-5678")));
}

TEST(S3ConfigTest, GoDurations) {
  EXPECT_EQ(ParseGoDurationMs("30ms"), 30);
  EXPECT_EQ(ParseGoDurationMs("1.5s"), 1500);
  EXPECT_EQ(ParseGoDurationMs("5m"), 300000);
  EXPECT_EQ(ParseGoDurationMs("1h2m3s"), 3723000);
  EXPECT_EQ(ParseGoDurationMs("0"), 0);
  EXPECT_EQ(ParseGoDurationMs(30000000), 30);  // nanoseconds, as BSON stores time.Duration
  EXPECT_EQ(ParseGoDurationMs("5"), std::nullopt);
  EXPECT_EQ(ParseGoDurationMs("5 minutes"), std::nullopt);
  EXPECT_EQ(ParseGoDurationMs(-1), std::nullopt);
}

TEST(S3StorageTest, DescribeNamesBucketAndPrefixNeverCredentials) {
  nlohmann::json s3 = MinimalS3();
  s3["prefix"] = "pbm";
  s3["credentials"]["secret-access-key"] = "TOPSECRET-1234";
  s3["endpointUrl"] = "http://127.0.0.1:1";
  auto st = NewStorageFromConfig(nlohmann::json{{"type", "s3"}, {"s3", s3}});
  EXPECT_EQ(st->Describe(), "s3://b/pbm");
  // Nothing listens on port 1: the error names the operation and the storage, not the secret.
  s3["retryer"] = {{"numMaxRetries", 1}, {"minRetryDelay", "1ms"}};
  st = NewStorageFromConfig(nlohmann::json{{"type", "s3"}, {"s3", s3}});
  try {
    st->Stat("x/y");
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kIo);
    EXPECT_THAT(e.what(), HasSubstr("stat of x/y on s3://b/pbm failed after 2 attempt(s)"));
    EXPECT_THAT(e.what(), Not(HasSubstr("TOPSECRET")));
    EXPECT_THAT(e.what(), Not(HasSubstr("AK")));
  }
}

TEST(S3StorageTest, MaskStorageSecrets) {
  nlohmann::ordered_json cfg = {
      {"storage",
       {{"type", "s3"},
        {"s3",
         {{"bucket", "b"},
          {"credentials", {{"access-key-id", "AK1"}, {"secret-access-key", "SK1"}}},
          {"serverSideEncryption", {{"sseCustomerKey", "KEY1"}}}}}}},
      {"backup", {{"compression", "zstd"}}}};
  std::string shown = MaskStorageSecrets(cfg).dump();
  for (const char* secret : {"AK1", "SK1", "KEY1"}) EXPECT_THAT(shown, Not(HasSubstr(secret)));
  EXPECT_THAT(shown, HasSubstr("\"bucket\":\"b\""));
  EXPECT_THAT(shown, HasSubstr("zstd"));
  EXPECT_EQ(cfg["storage"]["s3"]["credentials"]["secret-access-key"], "SK1");  // a copy
}

}  // namespace
}  // namespace pbm::storage
