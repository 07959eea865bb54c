#include "pod.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>

#include "util.h"

namespace devcluster {

void to_json(nlohmann::json& j, const ClusterSpec& s) {
  j = nlohmann::json{{"dir", s.dir},
                     {"replset", s.replset},
                     {"members", s.members},
                     {"ports", s.ports},
                     {"mongod", s.mongod},
                     {"agent", s.agent},
                     {"encryption_key_file", s.encryption_key_file},
                     {"cipher_mode", s.cipher_mode},
                     {"block_compressor", s.block_compressor},
                     {"journal_compressor", s.journal_compressor},
                     {"mongod_args", s.mongod_args},
                     {"backoff_initial_ms", s.backoff.initial.count()},
                     {"backoff_max_ms", s.backoff.max.count()},
                     {"backoff_reset_ms", s.backoff.reset_after.count()}};
}

void from_json(const nlohmann::json& j, ClusterSpec& s) {
  j.at("dir").get_to(s.dir);
  j.at("replset").get_to(s.replset);
  j.at("members").get_to(s.members);
  j.at("ports").get_to(s.ports);
  j.at("mongod").get_to(s.mongod);
  j.at("agent").get_to(s.agent);
  j.at("encryption_key_file").get_to(s.encryption_key_file);
  j.at("cipher_mode").get_to(s.cipher_mode);
  j.at("block_compressor").get_to(s.block_compressor);
  j.at("journal_compressor").get_to(s.journal_compressor);
  j.at("mongod_args").get_to(s.mongod_args);
  s.backoff.initial = Millis{j.at("backoff_initial_ms").get<int64_t>()};
  s.backoff.max = Millis{j.at("backoff_max_ms").get<int64_t>()};
  s.backoff.reset_after = Millis{j.at("backoff_reset_ms").get<int64_t>()};
}

std::string NormalizeCipherMode(const std::string& mode) {
  std::string up = mode;
  std::transform(up.begin(), up.end(), up.begin(), [](unsigned char c) { return std::toupper(c); });
  if (up == "CBC" || up == "AES256-CBC") return "AES256-CBC";
  if (up == "GCM" || up == "AES256-GCM") return "AES256-GCM";
  Fail("--cipher {}: unknown cipher mode (use AES256-CBC or AES256-GCM)", mode);
}

MemberLayout LayoutFor(const ClusterSpec& spec, int index) {
  MemberLayout m;
  m.name = fmt::format("{}-{}", spec.replset, index);
  m.pod_dir = spec.dir + "/" + m.name;
  m.dbpath = m.pod_dir + "/data";
  m.conf_path = m.pod_dir + "/mongod.conf";
  m.log_dir = m.pod_dir + "/logs";
  m.entrypoint = m.dbpath + "/ps-entry.sh";
  m.port = index < static_cast<int>(spec.ports.size()) ? spec.ports[index] : 0;
  m.host = fmt::format("127.0.0.1:{}", m.port);
  return m;
}

std::string MongodConfigYaml(const ClusterSpec& spec, const MemberLayout& m) {
  YAML::Emitter out;
  out << YAML::Comment(
      fmt::format("mongod.conf of devcluster pod {} (written by devcluster up)", m.name));
  out << YAML::BeginMap;
  out << YAML::Key << "storage" << YAML::Value << YAML::BeginMap;
  out << YAML::Key << "dbPath" << YAML::Value << m.dbpath;
  if (!spec.block_compressor.empty() || !spec.journal_compressor.empty()) {
    out << YAML::Key << "wiredTiger" << YAML::Value << YAML::BeginMap;
    if (!spec.journal_compressor.empty()) {
      out << YAML::Key << "engineConfig" << YAML::Value << YAML::BeginMap;
      out << YAML::Key << "journalCompressor" << YAML::Value << spec.journal_compressor;
      out << YAML::EndMap;
    }
    if (!spec.block_compressor.empty()) {
      out << YAML::Key << "collectionConfig" << YAML::Value << YAML::BeginMap;
      out << YAML::Key << "blockCompressor" << YAML::Value << spec.block_compressor;
      out << YAML::EndMap;
    }
    out << YAML::EndMap;
  }
  out << YAML::EndMap;
  out << YAML::Key << "net" << YAML::Value << YAML::BeginMap;
  out << YAML::Key << "port" << YAML::Value << m.port;
  out << YAML::Key << "bindIp" << YAML::Value << "127.0.0.1";
  out << YAML::EndMap;
  out << YAML::Key << "replication" << YAML::Value << YAML::BeginMap;
  out << YAML::Key << "replSetName" << YAML::Value << spec.replset;
  out << YAML::EndMap;
  if (!spec.encryption_key_file.empty()) {
    out << YAML::Key << "security" << YAML::Value << YAML::BeginMap;
    out << YAML::Key << "enableEncryption" << YAML::Value << true;
    out << YAML::Key << "encryptionKeyFile" << YAML::Value << spec.encryption_key_file;
    out << YAML::Key << "encryptionCipherMode" << YAML::Value << spec.cipher_mode;
    out << YAML::EndMap;
  }
  out << YAML::Key << "systemLog" << YAML::Value << YAML::BeginMap;
  out << YAML::Key << "destination" << YAML::Value << "file";
  out << YAML::Key << "path" << YAML::Value << m.log_dir + "/mongod.log";
  out << YAML::Key << "logAppend" << YAML::Value << true;
  out << YAML::EndMap;
  out << YAML::EndMap;
  return std::string(out.c_str()) + "\n";
}

std::string ShellQuote(const std::string& s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\'')
      out += "'\\''";
    else
      out += c;
  }
  return out + "'";
}

std::string EntrypointScript(const std::string& mongod, const std::string& conf_path) {
  return fmt::format(
      "#!/bin/sh\n"
      "# Entrypoint of the mongod container, installed on the data volume by the pod's init "
      "step.\n"
      "# While this file is missing (hidden by a physical restore) the container cannot start.\n"
      "exec {} --config {} \"$@\"\n",
      ShellQuote(mongod), ShellQuote(conf_path));
}

std::string AgentMongoUri(const MemberLayout& m) {
  return fmt::format("mongodb://{}/?directConnection=true", m.host);
}

std::string ReplicaSetUri(const ClusterSpec& spec) {
  std::string hosts;
  for (int i = 0; i < spec.members; ++i) hosts += (i ? "," : "") + LayoutFor(spec, i).host;
  return fmt::format("mongodb://{}/?replicaSet={}", hosts, spec.replset);
}

PodSpec PodFor(const ClusterSpec& spec, const MemberLayout& m) {
  PodSpec pod;
  pod.name = m.name;
  ContainerSpec mongod;
  mongod.name = "mongod";
  mongod.argv = {m.entrypoint};
  mongod.argv.insert(mongod.argv.end(), spec.mongod_args.begin(), spec.mongod_args.end());
  mongod.cwd = m.dbpath;
  mongod.output = m.log_dir + "/mongod.out";
  mongod.stop_order = 0;
  pod.containers.push_back(std::move(mongod));
  if (!spec.agent.empty()) {
    ContainerSpec agent;
    agent.name = "backup-agent";
    const std::string uri = AgentMongoUri(m);
    agent.argv = {spec.agent, "--mongodb-uri", uri, "--mongod-path", spec.mongod};
    agent.env = {"PBM_MONGODB_URI=" + uri, "PBM_DBPATH=" + m.dbpath,
                 "PBM_MONGOD_PATH=" + spec.mongod};
    if (!spec.encryption_key_file.empty())
      agent.env.push_back("PBM_ENCRYPTION_KEY_FILE=" + spec.encryption_key_file);
    agent.cwd = m.pod_dir;
    agent.output = m.log_dir + "/backup-agent.out";
    agent.stop_order = 1;
    pod.containers.push_back(std::move(agent));
  }
  return pod;
}

void InitPod(const ClusterSpec& spec, const MemberLayout& m, EventLog* log) {
  MakeDirs(m.dbpath);
  MakeDirs(m.log_dir);
  WriteFileAtomic(m.conf_path, MongodConfigYaml(spec, m), 0644);
  // The init container's copy: a fresh entrypoint on every pod start, replacing whatever is
  // on the volume (a restore hides it only while the pod is running).
  WriteFileAtomic(m.entrypoint, EntrypointScript(spec.mongod, m.conf_path), 0755);
  log->Writef("pod {} init: installed {} (mode 0755; execs {} --config {})", m.name, m.entrypoint,
              spec.mongod, m.conf_path);
}

}  // namespace devcluster
