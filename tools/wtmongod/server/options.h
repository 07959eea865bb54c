// mongod-compatible command line and YAML config file parsing for wtmongod.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "common/doc.h"

namespace wtm {

// The version wtmongod reports (--version, buildInfo): Percona Server for MongoDB 6.0.
inline constexpr const char* kServerVersion = "6.0.19-16";

// Every option wtmongod understands. Config paths follow mongod.conf; see ParseServerOptions.
struct ServerOptions {
  std::vector<std::string> argv;    // as given (for getCmdLineOpts.argv)
  std::string config_file;          // -f / --config
  std::string dbpath = "/data/db";  // --dbpath, storage.dbPath
  int port = 27017;                 // --port, net.port
  // --bind_ip, net.bindIp; --bind_ip_all / net.bindIpAll give "0.0.0.0".
  std::string bind_ip = "127.0.0.1";
  std::string repl_set;             // --replSet, replication.replSetName
  int64_t oplog_size_mb = 0;        // --oplogSize, replication.oplogSizeMB (0 = default)
  std::string logpath;              // --logpath, systemLog.path (empty = log to stdout)
  bool log_append = false;          // --logappend, systemLog.logAppend
  bool enable_encryption = false;   // --enableEncryption, security.enableEncryption
  std::string encryption_key_file;  // --encryptionKeyFile, security.encryptionKeyFile
  std::string encryption_cipher_mode =
      "AES256-CBC";  // --encryptionCipherMode AES256-CBC|AES256-GCM
  // --auth / --noauth, security.authorization enabled|disabled.
  bool authorization = false;
  // --keyFile, security.keyFile: members authenticate to each other as __system@local with its
  // contents; implies authorization (as mongod).
  std::string key_file;
  std::string cluster_auth_mode;  // --clusterAuthMode, security.clusterAuthMode (keyFile only)
  // Whether clients must authenticate: authorization enabled or a key file set.
  bool auth_enabled() const { return authorization || !key_file.empty(); }
  // --wiredTigerCollectionBlockCompressor none|snappy|zlib|zstd,
  // storage.wiredTiger.collectionConfig.blockCompressor
  std::string block_compressor = "snappy";
  // --wiredTigerJournalCompressor, storage.wiredTiger.engineConfig.journalCompressor
  std::string journal_compressor = "snappy";
  // --wiredTigerIndexPrefixCompression true|false, storage.wiredTiger.indexConfig.prefixCompression
  bool prefix_compression = true;
  bool directory_per_db = false;  // --directoryperdb, storage.directoryPerDB
  // --wiredTigerDirectoryForIndexes, storage.wiredTiger.engineConfig.directoryForIndexes
  bool directory_for_indexes = false;
  // --wiredTigerCacheSizeGB, storage.wiredTiger.engineConfig.cacheSizeGB (0 = auto)
  double cache_size_gb = 0;
  int sync_period_secs = 60;  // --syncdelay, storage.syncPeriodSecs (checkpoint interval)
  // --setParameter k=v (repeatable), setParameter: {k: v}; names checked against the accepted list.
  std::map<std::string, std::string> set_parameters;
  // getCmdLineOpts "parsed": options set by file or command line, nested by config path, keys
  // sorted.
  wtm::Doc parsed;
};

struct ParseOutcome {
  enum class Action { kRun, kPrintAndExit, kError } action = Action::kRun;
  std::string
      message;  // text to print: --version / --help output, or the error (with a trailing hint)
  int exit_code = 0;      // 0 for version/help; 2 (mongod's EXIT_BADOPTIONS) for option errors
  ServerOptions options;  // filled when action == kRun
};

// Parses argv like mongod 6.0: `--opt value` and `--opt=value`, switches without a value,
// -f/--config FILE (YAML in mongod.conf layout), --setParameter name=value (repeatable), --help/-h,
// --version. Command-line values override the config file's. Errors never throw: they come back as
// kError with mongod's wording, e.g. "Error parsing command line: unrecognised option '--foo'" and
// a second line "try 'mongod --help' for more information" (argv[0] stands for mongod).
ParseOutcome ParseServerOptions(int argc, const char* const* argv);

// A setParameter as a bool ("true"/"false"/"1"/"0"); `dflt` when it was not set.
// Throws MongoError(kBadValue) when the stored value is not a bool.
bool ParameterBool(const ServerOptions& opts, const std::string& name, bool dflt);
// A setParameter as an integer; `dflt` when it was not set.
// Throws MongoError(kBadValue) when the stored value is not an integer.
int64_t ParameterInt(const ServerOptions& opts, const std::string& name, int64_t dflt);
// True when `name` is an accepted setParameter whose values are bools (the others are integers).
// getParameter uses it to report a set value with its type, as mongod does (not as the string).
bool ParameterIsBool(const std::string& name);

// The --version text: "db version v<kServerVersion>\nBuild Info: {...}\n".
std::string VersionText();

}  // namespace wtm
