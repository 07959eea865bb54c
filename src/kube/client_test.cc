#include "kube/client.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "common/base64.h"

namespace pbm::kube {
namespace {

namespace fs = std::filesystem;

class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/kube-test-XXXXXX";
    path_ = mkdtemp(tmpl);
  }
  ~TempDir() { fs::remove_all(path_); }
  std::string Write(const std::string& name, const std::string& text) const {
    std::string p = path_ + "/" + name;
    std::ofstream(p) << text;
    return p;
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

const char* kKubeconfig = R"(apiVersion: v1
kind: Config
current-context: dev
clusters:
- name: local
  cluster:
    server: https://127.0.0.1:6443/
    certificate-authority: ca.pem
- name: other
  cluster:
    server: http://10.0.0.1:8080
    insecure-skip-tls-verify: true
users:
- name: admin
  user:
    client-certificate-data: {CERT}
    client-key: keys/admin.key
- name: robot
  user:
    token: s3cr3t
contexts:
- name: dev
  context: {cluster: local, user: admin, namespace: psmdb}
- name: ci
  context: {cluster: other, user: robot}
)";

std::string Kubeconfig() {
  std::string s = kKubeconfig;
  s.replace(s.find("{CERT}"), 6, Base64Encode("CERT PEM"));
  return s;
}

TEST(Kubeconfig, CurrentContextWithInlineDataAndRelativeFiles) {
  TempDir d;
  d.Write("ca.pem", "CA PEM");
  fs::create_directories(d.path() + "/keys");
  d.Write("keys/admin.key", "KEY PEM");
  Config c = LoadKubeconfig(d.Write("config", Kubeconfig()));
  EXPECT_EQ(c.server, "https://127.0.0.1:6443/");
  EXPECT_EQ(c.ca_pem, "CA PEM");
  EXPECT_EQ(c.client_cert_pem, "CERT PEM");
  EXPECT_EQ(c.client_key_pem, "KEY PEM");
  EXPECT_EQ(c.ns, "psmdb");
  EXPECT_TRUE(c.token.empty());
}

TEST(Kubeconfig, NamedContextWithToken) {
  TempDir d;
  d.Write("ca.pem", "CA PEM");
  Config c = LoadKubeconfig(d.Write("config", Kubeconfig()), "ci");
  EXPECT_EQ(c.server, "http://10.0.0.1:8080");
  EXPECT_TRUE(c.insecure_skip_tls_verify);
  EXPECT_EQ(c.token, "s3cr3t");
  EXPECT_EQ(c.ns, "default");
}

TEST(Kubeconfig, ErrorsNameWhatIsWrong) {
  TempDir d;
  std::string p = d.Write("config", Kubeconfig());
  try {
    LoadKubeconfig(p, "nope");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("no context named 'nope'"), std::string::npos) << e.what();
  }
  try {
    LoadKubeconfig(p);  // ca.pem is missing
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("ca.pem"), std::string::npos) << e.what();
  }
  std::string bad = d.Write("bad", "clusters: [\n");
  EXPECT_THROW(LoadKubeconfig(bad), Error);
  std::string exec = Kubeconfig();
  exec.replace(exec.find("token: s3cr3t"), 13, "exec: {command: aws}");
  try {
    LoadKubeconfig(d.Write("exec", exec), "ci");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("exec or auth-provider plugin"), std::string::npos);
  }
}

TEST(InCluster, ServiceAccountFiles) {
  TempDir d;
  d.Write("token", "tok\n");
  d.Write("ca.crt", "CA");
  d.Write("namespace", "ops\n");
  setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1", 1);
  setenv("KUBERNETES_SERVICE_PORT", "443", 1);
  Config c = InClusterConfig(d.path());
  unsetenv("KUBERNETES_SERVICE_HOST");
  unsetenv("KUBERNETES_SERVICE_PORT");
  EXPECT_EQ(c.server, "https://10.96.0.1:443");
  EXPECT_EQ(c.token_file, d.path() + "/token");
  EXPECT_EQ(c.ca_pem, "CA");
  EXPECT_EQ(c.ns, "ops");
  EXPECT_THROW(InClusterConfig(d.path()), Error);  // no service host any more
}

TEST(Resource, Paths) {
  EXPECT_EQ(resources::kPods.Path("ns1"), "/api/v1/namespaces/ns1/pods");
  EXPECT_EQ(resources::kStatefulSets.Path("ns1", "db-rs0", "status"),
            "/apis/apps/v1/namespaces/ns1/statefulsets/db-rs0/status");
  EXPECT_EQ(resources::kNamespaces.Path("ignored", "x"), "/api/v1/namespaces/x");
  Resource backups{"psmdb.percona.com", "v1", "perconaservermongodbbackups",
                   "PerconaServerMongoDBBackup"};
  EXPECT_EQ(backups.ApiVersion(), "psmdb.percona.com/v1");
  EXPECT_EQ(backups.Path("", ""), "/apis/psmdb.percona.com/v1/perconaservermongodbbackups");
}

TEST(Time, RoundTrips) {
  EXPECT_EQ(FormatTime(0), "1970-01-01T00:00:00Z");
  EXPECT_EQ(FormatTime(1795000000), "2026-11-18T11:06:40Z");
  EXPECT_EQ(ParseTime("2026-11-18T11:06:40Z"), 1795000000);
  EXPECT_EQ(FormatMicroTime(1795000000123456), "2026-11-18T11:06:40.123456Z");
  EXPECT_EQ(ParseTime("2026-11-18T11:06:40.123456Z"), 1795000000);
  EXPECT_EQ(ParseTime("yesterday"), -1);
  EXPECT_EQ(ParseTime("2026-11-18T11:06:40+01:00"), -1);
}

TEST(ApiError, KindsFollowTheStatusCode) {
  EXPECT_EQ(ApiError(404, "NotFound", "x").kind(), ErrorKind::kNotFound);
  EXPECT_EQ(ApiError(409, "AlreadyExists", "x").kind(), ErrorKind::kAlreadyExists);
  EXPECT_EQ(ApiError(409, "Conflict", "x").kind(), ErrorKind::kConflict);
  EXPECT_EQ(ApiError(422, "Invalid", "x").kind(), ErrorKind::kInvalidArgument);
  EXPECT_EQ(ApiError(503, "ServiceUnavailable", "x").kind(), ErrorKind::kUnavailable);
}

TEST(RetryOnConflict, RetriesConflictsOnly) {
  int calls = 0;
  int v = RetryOnConflict([&] {
    if (++calls < 3) throw ApiError(409, "Conflict", "stale");
    return 7;
  });
  EXPECT_EQ(v, 7);
  EXPECT_EQ(calls, 3);
  calls = 0;
  EXPECT_THROW(RetryOnConflict([&]() -> int {
                 ++calls;
                 throw ApiError(409, "AlreadyExists", "exists");
               }),
               ApiError);
  EXPECT_EQ(calls, 1);
  calls = 0;
  EXPECT_THROW(RetryOnConflict(
                   [&]() -> int {
                     ++calls;
                     throw ApiError(409, "Conflict", "stale");
                   },
                   4),
               ApiError);
  EXPECT_EQ(calls, 4);
}

}  // namespace
}  // namespace pbm::kube
