#include "operator/cluster.h"

#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "common/error.h"
#include "common/yaml_json.h"

namespace pbm::op {
namespace {

namespace fs = std::filesystem;

const fs::path kSource = PBM_SOURCE_DIR;
const fs::path kGolden = kSource / "tests" / "golden" / "operator";

Json LoadYaml(const fs::path& p) { return YamlToJson(YAML::LoadFile(p.string())); }

std::string ReadAll(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// The CR of a variant: its own cr.yaml, or the shipped deploy/cr.yaml for the first one.
Json VariantCr(const std::string& variant) {
  if (variant == "physical-encrypted-fs") {
    Json cr = LoadYaml(kSource / "deploy" / "cr.yaml");
    cr["metadata"]["namespace"] = "default";
    cr["metadata"]["uid"] = "00000000-0000-0000-0000-000000000001";
    return cr;
  }
  return LoadYaml(kGolden / variant / "cr.yaml");
}

// Everything the operator makes of a CR: the objects, and the PBM config of each storage.
Json Render(const std::string& variant) {
  ClusterSpec c = ParseCluster(VariantCr(variant));
  Json out = {{"objects", DesiredObjects(c)}, {"pbmConfigs", Json::object()}};
  Json secret;
  if (fs::exists(kGolden / variant / "secret.yaml"))
    secret = LoadYaml(kGolden / variant / "secret.yaml");
  for (const auto& [name, s] : c.backup.storages) {
    out["pbmConfigs"][name] = PbmConfigFor(s, secret, c);
  }
  return out;
}

class Golden : public ::testing::TestWithParam<std::string> {};

// Compares with tests/golden/operator/<variant>/expected.json; UPDATE_GOLDEN=1 rewrites it
// (review the diff before committing). The same files are validated against the Kubernetes
// models by tests/e2e/test_operator_objects.py.
TEST_P(Golden, ObjectsMatch) {
  std::string variant = GetParam();
  std::string got = Render(variant).dump(2) + "\n";
  fs::path want = kGolden / variant / "expected.json";
  if (const char* u = std::getenv("UPDATE_GOLDEN"); u && std::string(u) == "1") {
    std::ofstream(want) << got;
  }
  ASSERT_TRUE(fs::exists(want)) << want << " is missing: run with UPDATE_GOLDEN=1";
  EXPECT_EQ(got, ReadAll(want)) << "objects of " << variant << " differ from " << want;
}

INSTANTIATE_TEST_SUITE_P(Variants, Golden,
                         ::testing::Values("physical-encrypted-fs", "s3-no-encryption",
                                           "backup-disabled"));

const Json* Container(const Json& sts, const std::string& name) {
  for (const auto& c : sts["spec"]["template"]["spec"]["containers"]) {
    if (c["name"] == name) return &c;
  }
  return nullptr;
}

bool HasMount(const Json& c, const std::string& path, bool read_only) {
  for (const auto& m : c.value("volumeMounts", Json::array())) {
    if (m["mountPath"] == path) return m.value("readOnly", false) == read_only;
  }
  return false;
}

TEST(Objects, PodFollowsTheAdr) {
  ClusterSpec c = ParseCluster(VariantCr("physical-encrypted-fs"));
  auto objs = DesiredObjects(c);
  ASSERT_EQ(objs.size(), 2u);
  const Json& sts = objs[1];
  ASSERT_EQ(sts["kind"], "StatefulSet");
  const Json& pod = sts["spec"]["template"]["spec"];
  // The init container installs the entrypoint on the data volume; mongod runs that file.
  EXPECT_EQ(pod["initContainers"][0]["command"][0], kEntrypointInstaller);
  EXPECT_TRUE(HasMount(pod["initContainers"][0], kDataDir, false));
  const Json* mongod = Container(sts, "mongod");
  ASSERT_NE(mongod, nullptr);
  EXPECT_EQ((*mongod)["command"], Json::array({kEntrypoint}));
  EXPECT_EQ(pod["restartPolicy"], "Always");
  // The agent shares the data volume read-write and the key read-only.
  const Json* agent = Container(sts, "backup-agent");
  ASSERT_NE(agent, nullptr);
  EXPECT_TRUE(HasMount(*agent, kDataDir, false));
  EXPECT_TRUE(HasMount(*agent, kEncryptionKeyDir, true));
  // Credentials only through the environment, from the users Secret.
  std::string dump = agent->dump() + mongod->dump();
  EXPECT_EQ(dump.find("password\":\""), std::string::npos);
  bool from_secret = false;
  for (const auto& e : (*agent)["env"]) {
    if (e["name"] == "PBM_AGENT_MONGODB_PASSWORD") {
      from_secret = e["valueFrom"]["secretKeyRef"]["name"] == c.users_secret;
    }
  }
  EXPECT_TRUE(from_secret);
  EXPECT_FALSE(agent->contains("args"));
  // mongod runs with the options a physical restore checks.
  std::string args = (*mongod)["args"].dump();
  EXPECT_NE(args.find("--encryptionCipherMode=AES256-GCM"), std::string::npos);
  EXPECT_NE(args.find("--encryptionKeyFile=/etc/mongodb-encryption/encryption-key"),
            std::string::npos);
  // Every object belongs to the CR.
  for (const auto& o : objs) {
    EXPECT_EQ(o["metadata"]["ownerReferences"][0]["uid"], "00000000-0000-0000-0000-000000000001");
  }
}

TEST(Objects, NoEncryptionNoKeyAnywhere) {
  ClusterSpec c = ParseCluster(VariantCr("s3-no-encryption"));
  std::string dump = Json(DesiredObjects(c)).dump();
  EXPECT_EQ(dump.find("encryption"), std::string::npos) << dump;
}

TEST(Objects, BackupDisabledNoAgent) {
  ClusterSpec c = ParseCluster(VariantCr("backup-disabled"));
  auto objs = DesiredObjects(c);
  EXPECT_EQ(Container(objs[1], "backup-agent"), nullptr);
  EXPECT_NE(Container(objs[1], "mongod"), nullptr);
}

TEST(Objects, MemberHostIsThePodDnsName) {
  ClusterSpec c = ParseCluster(VariantCr("s3-no-encryption"));
  EXPECT_EQ(MemberHost(c, c.replsets[0], 2), "s3c-rs0-2.s3c-rs0.db.svc.cluster.local:27017");
}

void ExpectInvalid(Json cr, const std::string& fragment) {
  try {
    ParseCluster(cr);
    ADD_FAILURE() << "accepted: " << cr.dump();
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kInvalidArgument);
    EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos) << e.what();
  }
}

TEST(Parse, RefusesWhatNoSchemaCan) {
  Json base = VariantCr("physical-encrypted-fs");
  Json cr = base;
  cr["spec"].erase("image");
  ExpectInvalid(cr, "spec.image: required");
  cr = base;
  cr["spec"]["backup"]["tasks"][0]["storageName"] = "nowhere";
  ExpectInvalid(cr, "spec.backup.tasks[0].storageName: no storage 'nowhere'");
  cr = base;
  cr["spec"]["replsets"].push_back(cr["spec"]["replsets"][0]);
  ExpectInvalid(cr, "spec.replsets[1].name: 'rs0' is used twice");
  cr = base;
  cr["spec"]["backup"]["storages"]["fs-backups"]["type"] = "azure";
  ExpectInvalid(cr, "spec.backup.storages.fs-backups.type: 'azure' is not filesystem or s3");
  cr = base;
  cr["spec"]["backup"].erase("image");
  ExpectInvalid(cr, "spec.backup.image: required");
  cr = base;
  cr["spec"]["replsets"][0]["size"] = "three";
  ExpectInvalid(cr, "spec.replsets[0].size: wrong type");
}

TEST(PbmConfig, S3CredentialsComeFromTheSecret) {
  ClusterSpec c = ParseCluster(VariantCr("s3-no-encryption"));
  Json secret = LoadYaml(kGolden / "s3-no-encryption" / "secret.yaml");
  Json cfg = PbmConfigFor(c.backup.storages.at("s3-main"), secret, c);
  EXPECT_EQ(cfg["storage"]["s3"]["credentials"]["access-key-id"], "AKIAEXAMPLE");
  EXPECT_EQ(cfg["storage"]["s3"]["credentials"]["secret-access-key"], "secret-key");
  EXPECT_FALSE(cfg["storage"]["s3"].contains("credentialsSecret"));
  try {
    PbmConfigFor(c.backup.storages.at("s3-main"), nullptr, c);
    ADD_FAILURE();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("Secret db/s3c-backup-s3 not found"), std::string::npos)
        << e.what();
  }
  secret["data"].erase("AWS_SECRET_ACCESS_KEY");
  try {
    PbmConfigFor(c.backup.storages.at("s3-main"), secret, c);
    ADD_FAILURE();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("no AWS_SECRET_ACCESS_KEY"), std::string::npos)
        << e.what();
  }
}

}  // namespace
}  // namespace pbm::op
