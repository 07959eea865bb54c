#include "server/options.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include "common/error.h"

namespace wtm {
namespace {

ParseOutcome Parse(std::vector<std::string> args) {
  args.insert(args.begin(), "mongod");
  std::vector<const char*> argv;
  for (const std::string& a : args) argv.push_back(a.c_str());
  return ParseServerOptions(static_cast<int>(argv.size()), argv.data());
}

ServerOptions Ok(std::vector<std::string> args) {
  ParseOutcome out = Parse(std::move(args));
  EXPECT_EQ(out.action, ParseOutcome::Action::kRun) << out.message;
  return out.options;
}

std::string Err(std::vector<std::string> args) {
  ParseOutcome out = Parse(std::move(args));
  EXPECT_EQ(out.action, ParseOutcome::Action::kError);
  EXPECT_EQ(out.exit_code, 2);
  return out.message;
}

// A YAML file that lives as long as the object.
class TempConfig {
 public:
  explicit TempConfig(const std::string& yaml) {
    char tmpl[] = "/tmp/wtm_options_XXXXXX";
    int fd = mkstemp(tmpl);
    path_ = tmpl;
    close(fd);
    std::ofstream(path_) << yaml;
  }
  ~TempConfig() { unlink(path_.c_str()); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

TEST(ServerOptionsTest, Defaults) {
  ServerOptions o = Ok({});
  EXPECT_EQ(o.dbpath, "/data/db");
  EXPECT_EQ(o.port, 27017);
  EXPECT_EQ(o.bind_ip, "127.0.0.1");
  EXPECT_EQ(o.block_compressor, "snappy");
  EXPECT_EQ(o.journal_compressor, "snappy");
  EXPECT_TRUE(o.prefix_compression);
  EXPECT_FALSE(o.directory_per_db);
  EXPECT_FALSE(o.directory_for_indexes);
  EXPECT_EQ(o.sync_period_secs, 60);
  EXPECT_EQ(o.cache_size_gb, 0);
  EXPECT_EQ(o.encryption_cipher_mode, "AES256-CBC");
  EXPECT_TRUE(o.repl_set.empty());
  EXPECT_TRUE(o.parsed.empty());
  EXPECT_EQ(o.argv, std::vector<std::string>{"mongod"});
}

// Every valued option, as "--opt value" and as "--opt=value".
TEST(ServerOptionsTest, ValuedOptionsBothWays) {
  for (bool inline_form : {false, true}) {
    std::vector<std::pair<std::string, std::string>> kv = {
        {"dbpath", "/d"},
        {"port", "28001"},
        {"bind_ip", "10.0.0.1,127.0.0.1"},
        {"replSet", "rs0"},
        {"oplogSize", "990"},
        {"logpath", "/tmp/x.log"},
        {"enableEncryption", ""},
        {"encryptionKeyFile", "/k"},
        {"encryptionCipherMode", "AES256-GCM"},
        {"wiredTigerCollectionBlockCompressor", "zstd"},
        {"wiredTigerJournalCompressor", "zlib"},
        {"wiredTigerIndexPrefixCompression", "false"},
        {"wiredTigerCacheSizeGB", "0.5"},
        {"syncdelay", "15"},
        {"setParameter", "ttlMonitorEnabled=false"},
        {"storageEngine", "wiredTiger"},
    };
    std::vector<std::string> args;
    for (auto& [k, v] : kv) {
      if (v.empty()) {
        args.push_back("--" + k);
      } else if (inline_form) {
        args.push_back("--" + k + "=" + v);
      } else {
        args.push_back("--" + k);
        args.push_back(v);
      }
    }
    ServerOptions o = Ok(args);
    EXPECT_EQ(o.dbpath, "/d");
    EXPECT_EQ(o.port, 28001);
    EXPECT_EQ(o.bind_ip, "10.0.0.1,127.0.0.1");
    EXPECT_EQ(o.repl_set, "rs0");
    EXPECT_EQ(o.oplog_size_mb, 990);
    EXPECT_EQ(o.logpath, "/tmp/x.log");
    EXPECT_TRUE(o.enable_encryption);
    EXPECT_EQ(o.encryption_key_file, "/k");
    EXPECT_EQ(o.encryption_cipher_mode, "AES256-GCM");
    EXPECT_EQ(o.block_compressor, "zstd");
    EXPECT_EQ(o.journal_compressor, "zlib");
    EXPECT_FALSE(o.prefix_compression);
    EXPECT_DOUBLE_EQ(o.cache_size_gb, 0.5);
    EXPECT_EQ(o.sync_period_secs, 15);
    EXPECT_EQ(o.set_parameters.at("ttlMonitorEnabled"), "false");
    EXPECT_EQ(o.argv.size(), args.size() + 1);
  }
}

TEST(ServerOptionsTest, Switches) {
  ServerOptions o =
      Ok({"--directoryperdb", "--wiredTigerDirectoryForIndexes", "--logappend", "--logpath", "/l"});
  EXPECT_TRUE(o.directory_per_db);
  EXPECT_TRUE(o.directory_for_indexes);
  EXPECT_TRUE(o.log_append);
  EXPECT_EQ(Ok({"--bind_ip_all"}).bind_ip, "0.0.0.0");
  EXPECT_TRUE(Ok({"--wiredTigerIndexPrefixCompression", "1"}).prefix_compression);
  EXPECT_NE(Err({"--directoryperdb=true"}).find("option '--directoryperdb' does not take any"),
            std::string::npos);
}

TEST(ServerOptionsTest, ShortConfigFlag) {
  TempConfig cfg("net:\n  port: 29000\n");
  EXPECT_EQ(Ok({"-f", cfg.path()}).port, 29000);
  EXPECT_EQ(Ok({"-f" + cfg.path()}).port, 29000);
  EXPECT_EQ(Ok({"--config=" + cfg.path()}).config_file, cfg.path());
}

TEST(ServerOptionsTest, HelpAndVersion) {
  ParseOutcome v = Parse({"--version"});
  EXPECT_EQ(v.action, ParseOutcome::Action::kPrintAndExit);
  EXPECT_EQ(v.exit_code, 0);
  EXPECT_EQ(v.message.rfind("db version v6.0.19-16\nBuild Info: {", 0), 0u) << v.message;
  EXPECT_NE(v.message.find("\"version\": \"6.0.19-16\""), std::string::npos);
  for (const char* h : {"--help", "-h"}) {
    ParseOutcome out = Parse({h});
    EXPECT_EQ(out.action, ParseOutcome::Action::kPrintAndExit);
    EXPECT_EQ(out.exit_code, 0);
    EXPECT_NE(out.message.find("--wiredTigerCollectionBlockCompressor arg"), std::string::npos);
    EXPECT_NE(out.message.find("--enableEncryption"), std::string::npos);
  }
}

TEST(ServerOptionsTest, CommandLineErrors) {
  EXPECT_EQ(Err({"--foo"}),
            "Error parsing command line: unrecognised option '--foo'\n"
            "try 'mongod --help' for more information\n");
  EXPECT_EQ(Err({"--foo=1"}).rfind("Error parsing command line: unrecognised option '--foo'\n", 0),
            0u);
  EXPECT_NE(Err({"-x"}).find("unrecognised option '-x'"), std::string::npos);
  EXPECT_NE(Err({"stray"}).find("too many positional options"), std::string::npos);
  EXPECT_EQ(Err({"--wiredTigerCollectionBlockCompressor", "lz5"}),
            "Error parsing command line: the argument ('lz5') for option "
            "'--wiredTigerCollectionBlockCompressor' is invalid: allowed values are none, snappy, "
            "zlib, zstd\ntry 'mongod --help' for more information\n");
  EXPECT_NE(Err({"--wiredTigerJournalCompressor=lz4"}).find("allowed values are none, snappy"),
            std::string::npos);
  EXPECT_NE(Err({"--port", "abc"})
                .find("Error parsing command line: the argument ('abc') for option '--port' is "
                      "invalid\n"),
            std::string::npos);
  EXPECT_NE(Err({"--port=70000"})
                .find("the argument ('70000') for option '--port' is invalid: must be between 0 "
                      "and 65535"),
            std::string::npos);
  EXPECT_NE(Err({"--port"}).find("the required argument for option '--port' is missing"),
            std::string::npos);
  EXPECT_NE(Err({"--dbpath", "--port", "1"})
                .find("the required argument for option '--dbpath' is missing"),
            std::string::npos);
  EXPECT_NE(Err({"--port", "1", "--port", "2"})
                .find("option '--port' cannot be specified more than once"),
            std::string::npos);
  EXPECT_NE(Err({"--wiredTigerIndexPrefixCompression", "maybe"}).find("expected true or false"),
            std::string::npos);
  EXPECT_NE(Err({"--encryptionCipherMode", "AES128"}).find("allowed values are AES256-CBC, "),
            std::string::npos);
  EXPECT_NE(Err({"--wiredTigerCacheSizeGB", "0.1"}).find("must be 0 or at least 0.25"),
            std::string::npos);
  EXPECT_NE(Err({"--oplogSize", "0"}).find("for option '--oplogSize' is invalid"),
            std::string::npos);
  EXPECT_NE(Err({"--fork"}).find("fork is not supported"), std::string::npos);
  EXPECT_NE(Err({"--storageEngine", "inMemory"}).find("allowed values are wiredTiger"),
            std::string::npos);
  EXPECT_NE(Err({"--bind_ip", "1.2.3.4", "--bind_ip_all"}).find("mutually exclusive"),
            std::string::npos);
}

TEST(ServerOptionsTest, EncryptionRules) {
  EXPECT_EQ(Err({"--encryptionKeyFile", "/k"}),
            "--encryptionKeyFile requires --enableEncryption\n"
            "try 'mongod --help' for more information\n");
  EXPECT_NE(Err({"--enableEncryption"}).find("--enableEncryption requires --encryptionKeyFile"),
            std::string::npos);
  ServerOptions o = Ok({"--enableEncryption", "--encryptionKeyFile", "/k"});
  EXPECT_EQ(o.encryption_cipher_mode, "AES256-CBC");
}

TEST(ServerOptionsTest, AuthOptions) {
  ServerOptions o = Ok({});
  EXPECT_FALSE(o.auth_enabled());
  o = Ok({"--auth"});
  EXPECT_TRUE(o.authorization);
  EXPECT_TRUE(o.auth_enabled());
  // As mongod, --auth is reported as security.authorization: "enabled".
  EXPECT_EQ(o.parsed.ToJson(),
            Doc::FromJson(R"({"security": {"authorization": "enabled"}})").ToJson());
  o = Ok({"--noauth"});
  EXPECT_FALSE(o.auth_enabled());
  o = Ok({"--keyFile", "/etc/k"});
  EXPECT_EQ(o.key_file, "/etc/k");
  EXPECT_FALSE(o.authorization);
  EXPECT_TRUE(o.auth_enabled());  // a key file implies authorization
  EXPECT_NE(Err({"--auth", "--noauth"}).find("cannot be specified with"), std::string::npos);
  EXPECT_NE(Err({"--clusterAuthMode", "x509"}).find("allowed values are keyFile"),
            std::string::npos);
  TempConfig cfg(
      "security:\n  authorization: enabled\n  keyFile: /k\n  clusterAuthMode: keyFile\n");
  o = Ok({"-f", cfg.path()});
  EXPECT_TRUE(o.authorization);
  EXPECT_EQ(o.key_file, "/k");
  EXPECT_EQ(o.cluster_auth_mode, "keyFile");
  TempConfig off("security:\n  authorization: disabled\n");
  EXPECT_FALSE(Ok({"-f", off.path()}).auth_enabled());
  TempConfig bad("security:\n  authorization: yes\n");
  EXPECT_NE(Err({"-f", bad.path()}).find("allowed values are enabled, disabled"),
            std::string::npos);
}

TEST(ServerOptionsTest, SetParameter) {
  ServerOptions o = Ok({"--setParameter", "recoverFromOplogAsStandalone=true", "--setParameter",
                        "takeUnstableCheckpointOnShutdown=1", "--setParameter=enableTestCommands=0",
                        "--setParameter", "heartbeatIntervalMillis=250", "--setParameter",
                        "oplogFetcherBatchSize=100"});
  EXPECT_TRUE(ParameterBool(o, "recoverFromOplogAsStandalone", false));
  EXPECT_TRUE(ParameterBool(o, "takeUnstableCheckpointOnShutdown", false));
  EXPECT_FALSE(ParameterBool(o, "enableTestCommands", true));
  EXPECT_TRUE(ParameterBool(o, "ttlMonitorEnabled", true));
  EXPECT_EQ(ParameterInt(o, "heartbeatIntervalMillis", 500), 250);
  EXPECT_EQ(ParameterInt(o, "oplogFetcherBatchSize", 0), 100);
  EXPECT_EQ(ParameterInt(o, "cursorTimeoutMillis", 600000), 600000);
  EXPECT_THROW(ParameterInt(o, "recoverFromOplogAsStandalone", 0), MongoError);

  EXPECT_EQ(Err({"--setParameter", "foo=1"}),
            "Error parsing command line: Unknown --setParameter 'foo'\n"
            "try 'mongod --help' for more information\n");
  EXPECT_NE(Err({"--setParameter", "ttlMonitorEnabled=maybe"}).find("is not a bool"),
            std::string::npos);
  EXPECT_NE(Err({"--setParameter", "logLevel=9"}).find("at most 5"), std::string::npos);
  EXPECT_NE(Err({"--setParameter", "cursorTimeoutMillis=x"}).find("is not an integer"),
            std::string::npos);
  EXPECT_NE(Err({"--setParameter", "logLevel"}).find("Illegal option assignment: \"logLevel\""),
            std::string::npos);
}

TEST(ServerOptionsTest, ConfigFileEveryOption) {
  TempConfig cfg(R"(
storage:
  dbPath: /var/lib/m
  directoryPerDB: true
  syncPeriodSecs: 30
  engine: wiredTiger
  wiredTiger:
    engineConfig:
      cacheSizeGB: 1.5
      journalCompressor: zstd
      directoryForIndexes: true
    collectionConfig:
      blockCompressor: zlib
    indexConfig:
      prefixCompression: false
systemLog:
  destination: file
  path: /var/log/m.log
  logAppend: true
net:
  port: 27018
  bindIp: 0.0.0.0
replication:
  replSetName: rsA
  oplogSizeMB: 2048
security:
  enableEncryption: true
  encryptionKeyFile: /etc/key
  encryptionCipherMode: AES256-GCM
processManagement:
  fork: false
setParameter:
  ttlMonitorEnabled: false
  logLevel: 2
)");
  ServerOptions o = Ok({"--config", cfg.path()});
  EXPECT_EQ(o.config_file, cfg.path());
  EXPECT_EQ(o.dbpath, "/var/lib/m");
  EXPECT_TRUE(o.directory_per_db);
  EXPECT_EQ(o.sync_period_secs, 30);
  EXPECT_DOUBLE_EQ(o.cache_size_gb, 1.5);
  EXPECT_EQ(o.journal_compressor, "zstd");
  EXPECT_TRUE(o.directory_for_indexes);
  EXPECT_EQ(o.block_compressor, "zlib");
  EXPECT_FALSE(o.prefix_compression);
  EXPECT_EQ(o.logpath, "/var/log/m.log");
  EXPECT_TRUE(o.log_append);
  EXPECT_EQ(o.port, 27018);
  EXPECT_EQ(o.bind_ip, "0.0.0.0");
  EXPECT_EQ(o.repl_set, "rsA");
  EXPECT_EQ(o.oplog_size_mb, 2048);
  EXPECT_TRUE(o.enable_encryption);
  EXPECT_EQ(o.encryption_key_file, "/etc/key");
  EXPECT_EQ(o.encryption_cipher_mode, "AES256-GCM");
  EXPECT_FALSE(ParameterBool(o, "ttlMonitorEnabled", true));
  EXPECT_EQ(ParameterInt(o, "logLevel", 0), 2);
  Doc want = Doc::FromJson(R"({
    "config": ")" + cfg.path() +
                           R"(",
    "net": {"bindIp": "0.0.0.0", "port": 27018},
    "processManagement": {"fork": false},
    "replication": {"oplogSizeMB": 2048, "replSetName": "rsA"},
    "security": {"enableEncryption": true, "encryptionCipherMode": "AES256-GCM",
                 "encryptionKeyFile": "/etc/key"},
    "setParameter": {"logLevel": "2", "ttlMonitorEnabled": "false"},
    "storage": {"dbPath": "/var/lib/m", "directoryPerDB": true, "engine": "wiredTiger",
                "syncPeriodSecs": 30.0,
                "wiredTiger": {"collectionConfig": {"blockCompressor": "zlib"},
                               "engineConfig": {"cacheSizeGB": 1.5, "directoryForIndexes": true,
                                                "journalCompressor": "zstd"},
                               "indexConfig": {"prefixCompression": false}}},
    "systemLog": {"destination": "file", "logAppend": true, "path": "/var/log/m.log"}})");
  EXPECT_EQ(o.parsed.ToJson(), want.ToJson());
}

TEST(ServerOptionsTest, CommandLineOverridesConfigFile) {
  TempConfig cfg(
      "net:\n  port: 27018\n  bindIp: 10.1.1.1\nstorage.dbPath: /file\n"
      "replication:\n  replSetName: fromfile\n"
      "storage:\n  wiredTiger:\n    collectionConfig:\n      blockCompressor: zlib\n"
      "setParameter:\n  logLevel: 1\n");
  ServerOptions o = Ok({"-f", cfg.path(), "--port", "27019", "--dbpath=/cli", "--replSet", "rs9",
                        "--bind_ip_all", "--setParameter", "logLevel=3"});
  EXPECT_EQ(o.port, 27019);
  EXPECT_EQ(o.dbpath, "/cli");
  EXPECT_EQ(o.repl_set, "rs9");
  EXPECT_EQ(o.bind_ip, "0.0.0.0");
  EXPECT_EQ(o.block_compressor, "zlib");
  EXPECT_EQ(ParameterInt(o, "logLevel", 0), 3);
  Doc want = Doc::FromJson(R"({"config": ")" + cfg.path() + R"(",
    "net": {"bindIpAll": true, "port": 27019},
    "replication": {"replSet": "rs9"},
    "setParameter": {"logLevel": "3"},
    "storage": {"dbPath": "/cli", "wiredTiger": {"collectionConfig": {"blockCompressor": "zlib"}}}})");
  EXPECT_EQ(o.parsed.ToJson(), want.ToJson());
}

TEST(ServerOptionsTest, ConfigFileErrors) {
  auto err_for = [](const std::string& yaml) {
    TempConfig cfg(yaml);
    return Err({"-f", cfg.path()});
  };
  EXPECT_EQ(err_for("storage:\n  dbPath: /d\n  bogus: 1\n"),
            "Error parsing YAML config file: unrecognised option 'storage.bogus'\n"
            "try 'mongod --help' for more information\n");
  EXPECT_NE(err_for("net:\n  port: abc\n")
                .find("Error parsing YAML config file: the argument ('abc') for option 'net.port' "
                      "is invalid"),
            std::string::npos);
  EXPECT_NE(err_for("storage:\n  wiredTiger:\n    collectionConfig:\n      blockCompressor: lz5\n")
                .find("'storage.wiredTiger.collectionConfig.blockCompressor' is invalid: allowed "
                      "values are none, snappy, zlib, zstd"),
            std::string::npos);
  EXPECT_NE(err_for("processManagement:\n  fork: true\n").find("fork is not supported"),
            std::string::npos);
  EXPECT_NE(err_for("setParameter:\n  nope: 1\n").find("Unknown --setParameter 'nope'"),
            std::string::npos);
  EXPECT_NE(err_for("net: [1, 2\n").find("Error parsing YAML config file: "), std::string::npos);
  EXPECT_NE(
      err_for("replication:\n  replSet: rs0\n").find("unrecognised option 'replication.replSet'"),
      std::string::npos);
  EXPECT_NE(err_for("systemLog:\n  destination: file\n")
                .find("systemLog.path is required if systemLog.destination is to a file"),
            std::string::npos);
  EXPECT_NE(err_for("systemLog:\n  destination: syslog\n").find("'syslog' is not supported"),
            std::string::npos);
  EXPECT_NE(err_for("security:\n  enableEncryption: true\n")
                .find("--enableEncryption requires --encryptionKeyFile"),
            std::string::npos);
  EXPECT_NE(Err({"-f", "/nonexistent/mongod.conf"}).find("Error reading config file: "),
            std::string::npos);
}

// The example shape from getCmdLineOpts of a fully configured node.
TEST(ServerOptionsTest, ParsedShapeFromCommandLine) {
  ServerOptions o = Ok({"--dbpath",
                        "/d",
                        "--port",
                        "27017",
                        "--bind_ip",
                        "127.0.0.1",
                        "--replSet",
                        "rs0",
                        "--enableEncryption",
                        "--encryptionKeyFile",
                        "/k",
                        "--encryptionCipherMode",
                        "AES256-GCM",
                        "--directoryperdb",
                        "--wiredTigerCollectionBlockCompressor",
                        "zstd",
                        "--wiredTigerJournalCompressor",
                        "zstd",
                        "--wiredTigerDirectoryForIndexes",
                        "--wiredTigerIndexPrefixCompression",
                        "false",
                        "--setParameter",
                        "recoverFromOplogAsStandalone=true",
                        "--logpath",
                        "/x",
                        "--syncdelay",
                        "5",
                        "--oplogSize",
                        "100",
                        "--wiredTigerCacheSizeGB",
                        "2"});
  Doc want = Doc::FromJson(R"({
    "net": {"bindIp": "127.0.0.1", "port": 27017},
    "replication": {"oplogSizeMB": 100, "replSet": "rs0"},
    "security": {"enableEncryption": true, "encryptionCipherMode": "AES256-GCM",
                 "encryptionKeyFile": "/k"},
    "setParameter": {"recoverFromOplogAsStandalone": "true"},
    "storage": {"dbPath": "/d", "directoryPerDB": true, "syncPeriodSecs": 5.0,
                "wiredTiger": {"collectionConfig": {"blockCompressor": "zstd"},
                               "engineConfig": {"cacheSizeGB": 2.0, "directoryForIndexes": true,
                                                "journalCompressor": "zstd"},
                               "indexConfig": {"prefixCompression": false}}},
    "systemLog": {"destination": "file", "path": "/x"}})");
  EXPECT_EQ(o.parsed.ToJson(), want.ToJson());
  // Types as mongod reports them: port int32, booleans, doubles.
  bson_iter_t it;
  ASSERT_TRUE(bson_iter_init(&it, o.parsed.get()));
  ASSERT_TRUE(bson_iter_find_descendant(&it, "net.port", &it));
  EXPECT_EQ(bson_iter_type(&it), BSON_TYPE_INT32);
  ASSERT_TRUE(bson_iter_init(&it, o.parsed.get()));
  ASSERT_TRUE(bson_iter_find_descendant(&it, "storage.syncPeriodSecs", &it));
  EXPECT_EQ(bson_iter_type(&it), BSON_TYPE_DOUBLE);
}

}  // namespace
}  // namespace wtm
