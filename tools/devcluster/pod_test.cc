#include "pod.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <yaml-cpp/yaml.h>

#include <cstdlib>
#include <filesystem>

#include "util.h"

namespace devcluster {
namespace {

namespace fs = std::filesystem;

ClusterSpec TestSpec() {
  ClusterSpec s;
  s.dir = "/x";
  s.replset = "rs0";
  s.members = 3;
  s.ports = {27100, 27101, 27102};
  s.mongod = "/opt/bin/wtmongod";
  s.agent = "/opt/bin/pbm-agent";
  return s;
}

class TempDir {
 public:
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "devcluster-test-XXXXXX").string();
    path_ = mkdtemp(tmpl.data());
  }
  ~TempDir() { fs::remove_all(path_); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

TEST(LayoutTest, PodDirectoriesAndEntrypoint) {
  MemberLayout m = LayoutFor(TestSpec(), 1);
  EXPECT_EQ(m.name, "rs0-1");
  EXPECT_EQ(m.pod_dir, "/x/rs0-1");
  EXPECT_EQ(m.dbpath, "/x/rs0-1/data");
  EXPECT_EQ(m.conf_path, "/x/rs0-1/mongod.conf");
  EXPECT_EQ(m.log_dir, "/x/rs0-1/logs");
  EXPECT_EQ(m.entrypoint, "/x/rs0-1/data/ps-entry.sh");
  EXPECT_EQ(m.port, 27101);
  EXPECT_EQ(m.host, "127.0.0.1:27101");
}

TEST(MongodConfigTest, PlainMember) {
  ClusterSpec s = TestSpec();
  MemberLayout m = LayoutFor(s, 2);
  YAML::Node y = YAML::Load(MongodConfigYaml(s, m));
  EXPECT_EQ(y["storage"]["dbPath"].as<std::string>(), "/x/rs0-2/data");
  EXPECT_EQ(y["net"]["port"].as<int>(), 27102);
  EXPECT_EQ(y["net"]["bindIp"].as<std::string>(), "127.0.0.1");
  EXPECT_EQ(y["replication"]["replSetName"].as<std::string>(), "rs0");
  EXPECT_EQ(y["systemLog"]["destination"].as<std::string>(), "file");
  EXPECT_EQ(y["systemLog"]["path"].as<std::string>(), "/x/rs0-2/logs/mongod.log");
  EXPECT_TRUE(y["systemLog"]["logAppend"].as<bool>());
  // The log lives outside the dbpath, so a restore that wipes the dbpath never meets it.
  EXPECT_NE(y["systemLog"]["path"].as<std::string>().rfind("/x/rs0-2/data/", 0), 0u);
  EXPECT_FALSE(y["security"]);
  EXPECT_FALSE(y["storage"]["wiredTiger"]);
}

TEST(MongodConfigTest, EncryptionAndCompressors) {
  ClusterSpec s = TestSpec();
  s.encryption_key_file = "/keys/my key";
  s.cipher_mode = "AES256-GCM";
  s.block_compressor = "zstd";
  s.journal_compressor = "none";
  YAML::Node y = YAML::Load(MongodConfigYaml(s, LayoutFor(s, 0)));
  EXPECT_TRUE(y["security"]["enableEncryption"].as<bool>());
  EXPECT_EQ(y["security"]["encryptionKeyFile"].as<std::string>(), "/keys/my key");
  EXPECT_EQ(y["security"]["encryptionCipherMode"].as<std::string>(), "AES256-GCM");
  EXPECT_EQ(y["storage"]["wiredTiger"]["collectionConfig"]["blockCompressor"].as<std::string>(),
            "zstd");
  EXPECT_EQ(y["storage"]["wiredTiger"]["engineConfig"]["journalCompressor"].as<std::string>(),
            "none");
}

TEST(MongodConfigTest, CipherModeNames) {
  EXPECT_EQ(NormalizeCipherMode("gcm"), "AES256-GCM");
  EXPECT_EQ(NormalizeCipherMode("AES256-CBC"), "AES256-CBC");
  EXPECT_EQ(NormalizeCipherMode("CBC"), "AES256-CBC");
  EXPECT_THROW(NormalizeCipherMode("AES128-CBC"), Error);
}

TEST(EntrypointTest, ExecsMongodWithThePodConfig) {
  EXPECT_EQ(EntrypointScript("/opt/bin/mongod", "/x/rs0-0/mongod.conf"),
            "#!/bin/sh\n"
            "# Entrypoint of the mongod container, installed on the data volume by the pod's init "
            "step.\n"
            "# While this file is missing (hidden by a physical restore) the container cannot "
            "start.\n"
            "exec '/opt/bin/mongod' --config '/x/rs0-0/mongod.conf' \"$@\"\n");
  EXPECT_EQ(ShellQuote("it's"), "'it'\\''s'");
}

TEST(EntrypointTest, ScriptRunsTheBinaryWithConfigAndArgs) {
  TempDir t;
  // A stand-in "mongod" that records its argv.
  std::string fake = t.path() + "/fake mongod";
  WriteFileAtomic(fake, "#!/bin/sh\nfor a in \"$@\"; do echo \"$a\"; done > \"$OUT\"\n", 0755);
  std::string script = t.path() + "/ps-entry.sh";
  WriteFileAtomic(script, EntrypointScript(fake, "/conf dir/mongod.conf"), 0755);
  std::string out = t.path() + "/argv";
  std::string cmd = "OUT='" + out + "' '" + script + "' --setParameter x=1";
  ASSERT_EQ(std::system(cmd.c_str()), 0);
  EXPECT_EQ(ReadFile(out), "--config\n/conf dir/mongod.conf\n--setParameter\nx=1\n");
}

TEST(PodTest, ContainersMirrorTheStatefulSet) {
  ClusterSpec s = TestSpec();
  s.encryption_key_file = "/keys/k";
  s.mongod_args = {"--setParameter", "logLevel=1"};
  MemberLayout m = LayoutFor(s, 1);
  PodSpec pod = PodFor(s, m);
  EXPECT_EQ(pod.name, "rs0-1");
  ASSERT_EQ(pod.containers.size(), 2u);
  const ContainerSpec& mongod = pod.containers[0];
  EXPECT_EQ(mongod.name, "mongod");
  EXPECT_EQ(mongod.argv, (std::vector<std::string>{"/x/rs0-1/data/ps-entry.sh", "--setParameter",
                                                   "logLevel=1"}));
  const ContainerSpec& agent = pod.containers[1];
  EXPECT_EQ(agent.name, "backup-agent");
  EXPECT_EQ(agent.argv,
            (std::vector<std::string>{"/opt/bin/pbm-agent", "--mongodb-uri",
                                      "mongodb://127.0.0.1:27101/?directConnection=true",
                                      "--mongod-path", "/opt/bin/wtmongod"}));
  auto has = [&](const std::string& kv) {
    return std::find(agent.env.begin(), agent.env.end(), kv) != agent.env.end();
  };
  EXPECT_TRUE(has("PBM_MONGODB_URI=mongodb://127.0.0.1:27101/?directConnection=true"));
  EXPECT_TRUE(has("PBM_ENCRYPTION_KEY_FILE=/keys/k"));
  EXPECT_TRUE(has("PBM_DBPATH=/x/rs0-1/data"));
  EXPECT_GT(agent.stop_order, mongod.stop_order);  // agents stop first

  s.agent.clear();
  EXPECT_EQ(PodFor(s, m).containers.size(), 1u);
}

TEST(PodTest, ReplicaSetUri) {
  EXPECT_EQ(ReplicaSetUri(TestSpec()),
            "mongodb://127.0.0.1:27100,127.0.0.1:27101,127.0.0.1:27102/?replicaSet=rs0");
}

TEST(PodTest, InitInstallsTheEntrypointAgain) {
  TempDir t;
  ClusterSpec s = TestSpec();
  s.dir = t.path();
  MemberLayout m = LayoutFor(s, 0);
  EventLog log(t.path() + "/devcluster.log", false);
  InitPod(s, m, &log);
  struct stat st;
  ASSERT_EQ(stat(m.entrypoint.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0755u);
  EXPECT_EQ(ReadFile(m.entrypoint), EntrypointScript(s.mongod, m.conf_path));
  EXPECT_EQ(ReadFile(m.conf_path), MongodConfigYaml(s, m));
  EXPECT_TRUE(fs::is_directory(m.log_dir));
  // A hidden entrypoint (renamed away by a restore) is back after the next pod start.
  fs::rename(m.entrypoint, m.entrypoint + ".hidden");
  InitPod(s, m, &log);
  EXPECT_TRUE(fs::exists(m.entrypoint));
  EXPECT_NE(ReadFile(log.path()).find("pod rs0-0 init: installed " + m.entrypoint),
            std::string::npos);
}

TEST(SpecTest, JsonRoundTrip) {
  ClusterSpec s = TestSpec();
  s.encryption_key_file = "/k";
  s.mongod_args = {"--a"};
  s.backoff = {Millis{5}, Millis{50}, Millis{500}};
  ClusterSpec r = nlohmann::json(s).get<ClusterSpec>();
  EXPECT_EQ(nlohmann::json(r), nlohmann::json(s));
  EXPECT_EQ(r.backoff.max, Millis{50});
  EXPECT_EQ(r.ports, s.ports);
}

}  // namespace
}  // namespace devcluster
