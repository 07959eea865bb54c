// What a devcluster replica set looks like on disk and which containers each pod runs: the
// one-machine mirror of the operator's StatefulSet (init container + mongod + backup-agent).
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "backoff.h"
#include "supervisor.h"

namespace devcluster {

// Everything `devcluster up` was asked for. Paths are absolute.
struct ClusterSpec {
  std::string dir;  // D
  std::string replset = "rs0";
  int members = 3;
  std::vector<int> ports;           // one per member
  std::string mongod;               // the mongod binary the entrypoint execs
  std::string agent;                // the pbm-agent binary; empty: pods have no agent container
  std::string encryption_key_file;  // empty: encryption off
  std::string cipher_mode = "AES256-CBC";  // AES256-CBC | AES256-GCM
  std::string block_compressor;            // empty: the server's default
  std::string journal_compressor;          // empty: the server's default
  std::vector<std::string> mongod_args;    // extra args of the mongod container (after the command)
  BackOffPolicy backoff;
};

// Saved as D/spec.json so that a later `up` on the same D reuses ports and storage options.
void to_json(nlohmann::json& j, const ClusterSpec& s);
// Throws nlohmann::json::exception on a malformed document.
void from_json(const nlohmann::json& j, ClusterSpec& s);

// "AES256-CBC", "AES256-GCM"; also accepts "CBC", "GCM" (any case). Throws Error otherwise.
std::string NormalizeCipherMode(const std::string& mode);

// Where member `index` of `spec` lives.
struct MemberLayout {
  std::string name;        // "<replset>-<index>", the pod name
  std::string pod_dir;     // D/<name>
  std::string dbpath;      // D/<name>/data (the data volume)
  std::string conf_path;   // D/<name>/mongod.conf
  std::string log_dir;     // D/<name>/logs (outside the dbpath)
  std::string entrypoint;  // D/<name>/data/ps-entry.sh
  int port = 0;
  std::string host;  // 127.0.0.1:<port>
};
MemberLayout LayoutFor(const ClusterSpec& spec, int index);

// The member's mongod.conf in mongod's YAML layout: storage (dbPath, wiredTiger compressors),
// net (port, bindIp 127.0.0.1), replication.replSetName, security (encryption) and systemLog
// (file D/<name>/logs/mongod.log, appended).
std::string MongodConfigYaml(const ClusterSpec& spec, const MemberLayout& m);

// The entrypoint script: `exec <mongod> --config <conf> "$@"` with both paths shell-quoted.
std::string EntrypointScript(const std::string& mongod, const std::string& conf_path);

// Quotes `s` for POSIX sh with single quotes.
std::string ShellQuote(const std::string& s);

// mongodb://127.0.0.1:<port>/?directConnection=true
std::string AgentMongoUri(const MemberLayout& m);

// mongodb://<host>,<host>,.../?replicaSet=<replset>
std::string ReplicaSetUri(const ClusterSpec& spec);

// The pod's containers: "mongod" (command: the entrypoint on the data volume, args: the extra
// mongod args) and, when spec.agent is set, "backup-agent" (pbm-agent --mongodb-uri <uri>
// --mongod-path <mongod>; env PBM_MONGODB_URI, PBM_DBPATH, PBM_MONGOD_PATH and, with encryption,
// PBM_ENCRYPTION_KEY_FILE), stopped before mongod. Output goes to D/<name>/logs/<container>.out.
PodSpec PodFor(const ClusterSpec& spec, const MemberLayout& m);

// Prepares the pod's directories and mongod.conf and runs the init step: (re)installs the
// entrypoint at <dbpath>/ps-entry.sh with mode 0755, as the init container does on every pod
// start. Logs what it did. Throws Error naming the file on failure.
void InitPod(const ClusterSpec& spec, const MemberLayout& m, EventLog* log);

}  // namespace devcluster
