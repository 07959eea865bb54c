#include "operator/cluster.h"

#include <set>

#include "common/base64.h"
#include "common/error.h"

namespace pbm::op {

namespace {

const Json* Find(const Json& j, std::initializer_list<const char*> path) {
  const Json* cur = &j;
  for (const char* k : path) {
    if (!cur->is_object() || !cur->contains(k)) return nullptr;
    cur = &(*cur)[k];
  }
  return cur;
}

template <typename T>
T Get(const Json& j, std::initializer_list<const char*> path, T def, const std::string& field) {
  const Json* v = Find(j, path);
  if (!v || v->is_null()) return def;
  try {
    return v->get<T>();
  } catch (const std::exception&) {
    Fail(ErrorKind::kInvalidArgument, "{}: wrong type ({})", field, v->dump());
  }
}

Json OwnerRef(const ClusterSpec& c) {
  return Json::array({{{"apiVersion", kApiVersion},
                       {"kind", "PerconaServerMongoDB"},
                       {"name", c.name},
                       {"uid", c.uid},
                       {"controller", true},
                       {"blockOwnerDeletion", true}}});
}

Json Meta(const ClusterSpec& c, const std::string& name, const std::string& replset) {
  return {{"name", name},
          {"namespace", c.ns},
          {"labels", Labels(c, replset)},
          {"ownerReferences", OwnerRef(c)}};
}

// The mongod command line: what the node runs with (and what a physical restore must match).
Json MongodArgs(const ClusterSpec& c, const ReplsetSpec& rs) {
  Json a = Json::array({"--bind_ip_all", "--port=" + std::to_string(c.port), "--replSet=" + rs.name,
                        "--storageEngine=wiredTiger", std::string("--dbpath=") + kDataDir,
                        "--wiredTigerCollectionBlockCompressor=" + c.block_compressor,
                        "--wiredTigerJournalCompressor=" + c.journal_compressor,
                        std::string("--wiredTigerIndexPrefixCompression=") +
                            (c.prefix_compression ? "true" : "false"),
                        std::string("--keyFile=") + kKeyFilePath});
  if (c.directory_for_indexes) a.push_back("--wiredTigerDirectoryForIndexes");
  if (c.enable_encryption) {
    a.push_back("--enableEncryption");
    a.push_back(std::string("--encryptionKeyFile=") + kEncryptionKeyFile);
    a.push_back("--encryptionCipherMode=" + c.encryption_cipher_mode);
  }
  return a;
}

Json SecretEnv(const std::string& name, const std::string& secret, const std::string& key) {
  return {{"name", name},
          {"valueFrom", {{"secretKeyRef", {{"name", secret}, {"key", key}, {"optional", false}}}}}};
}

Json DataMount() { return {{"name", kDataVolume}, {"mountPath", kDataDir}}; }
Json KeyMount() {
  return {{"name", kEncryptionKeyVolume}, {"mountPath", kEncryptionKeyDir}, {"readOnly", true}};
}

Json BackupAgent(const ClusterSpec& c, const ReplsetSpec& rs) {
  // Credentials come from the users Secret as environment; pbm-agent puts them into the URI
  // itself (escaped), so they never appear in arguments or in the pod spec.
  Json env = Json::array({
      SecretEnv("PBM_AGENT_MONGODB_USERNAME", c.users_secret, "MONGODB_BACKUP_USER"),
      SecretEnv("PBM_AGENT_MONGODB_PASSWORD", c.users_secret, "MONGODB_BACKUP_PASSWORD"),
      {{"name", "PBM_MONGODB_REPLSET"}, {"value", rs.name}},
      {{"name", "PBM_MONGODB_PORT"}, {"value", std::to_string(c.port)}},
      {{"name", "PBM_MONGODB_URI"},
       {"value", "mongodb://localhost:$(PBM_MONGODB_PORT)/?directConnection=true"}},
      {{"name", "PBM_DBPATH"}, {"value", kDataDir}},
  });
  Json mounts = Json::array({DataMount()});
  if (c.enable_encryption) {
    env.push_back({{"name", "PBM_ENCRYPTION_KEY_FILE"}, {"value", kEncryptionKeyFile}});
    mounts.push_back(KeyMount());
  }
  for (const auto& m : c.backup.volume_mounts) mounts.push_back(m);
  Json agent = {{"name", "backup-agent"},
                {"image", c.backup.image},
                {"command", Json::array({"pbm-agent"})},
                {"env", env},
                {"volumeMounts", mounts}};
  if (!c.image_pull_policy.empty()) agent["imagePullPolicy"] = c.image_pull_policy;
  if (c.backup.resources.is_object() && !c.backup.resources.empty()) {
    agent["resources"] = c.backup.resources;
  }
  return agent;
}

Json StatefulSet(const ClusterSpec& c, const ReplsetSpec& rs) {
  std::string name = StatefulSetName(c, rs);
  Json init = {{"name", "mongo-init"},
               {"image", c.image},
               {"command", Json::array({kEntrypointInstaller})},
               {"volumeMounts", Json::array({DataMount()})}};
  Json mounts = Json::array(
      {DataMount(), {{"name", kKeyFileVolume}, {"mountPath", kKeyFileDir}, {"readOnly", true}}});
  if (c.enable_encryption) mounts.push_back(KeyMount());
  Json mongod = {
      {"name", "mongod"},
      {"image", c.image},
      {"command", Json::array({kEntrypoint})},
      {"args", MongodArgs(c, rs)},
      {"workingDir", kDataDir},
      {"ports", Json::array({{{"name", "mongodb"}, {"containerPort", c.port}}})},
      {"readinessProbe",
       {{"tcpSocket", {{"port", c.port}}},
        {"initialDelaySeconds", 1},
        {"periodSeconds", 3},
        {"failureThreshold", 3}}},
      {"volumeMounts", mounts},
  };
  if (!c.image_pull_policy.empty()) {
    init["imagePullPolicy"] = c.image_pull_policy;
    mongod["imagePullPolicy"] = c.image_pull_policy;
  }
  if (rs.resources.is_object() && !rs.resources.empty()) mongod["resources"] = rs.resources;
  Json containers = Json::array({mongod});
  if (c.backup.enabled) containers.push_back(BackupAgent(c, rs));

  // mongod refuses a key file that others may read: 0400.
  Json volumes = Json::array(
      {{{"name", kKeyFileVolume},
        {"secret",
         {{"secretName", c.keyfile_secret}, {"defaultMode", 0400}, {"optional", false}}}}});
  if (c.enable_encryption) {
    volumes.push_back(
        {{"name", kEncryptionKeyVolume},
         {"secret",
          {{"secretName", c.encryption_key_secret}, {"defaultMode", 0400}, {"optional", false}}}});
  }
  for (const auto& v : rs.sidecar_volumes) volumes.push_back(v);
  Json claims = Json::array();
  const Json& vs = rs.volume_spec;
  if (vs.contains("persistentVolumeClaim")) {
    Json pvc = vs["persistentVolumeClaim"];
    Json spec = {{"accessModes", pvc.value("accessModes", Json::array({"ReadWriteOnce"}))},
                 {"resources", pvc.value("resources", Json{{"requests", {{"storage", "3Gi"}}}})}};
    if (pvc.contains("storageClassName")) spec["storageClassName"] = pvc["storageClassName"];
    Json md = {{"name", kDataVolume}};
    if (pvc.contains("labels")) md["labels"] = pvc["labels"];
    if (pvc.contains("annotations")) md["annotations"] = pvc["annotations"];
    claims.push_back({{"metadata", md}, {"spec", spec}});
  } else if (vs.contains("emptyDir")) {
    volumes.push_back({{"name", kDataVolume}, {"emptyDir", vs["emptyDir"]}});
  } else if (vs.contains("hostPath")) {
    volumes.push_back({{"name", kDataVolume}, {"hostPath", vs["hostPath"]}});
  }

  Json pod_spec = {{"initContainers", Json::array({init})},
                   {"containers", containers},
                   {"restartPolicy", "Always"},
                   {"terminationGracePeriodSeconds", 60}};
  pod_spec["volumes"] = volumes;
  Json spec = {
      {"serviceName", ServiceName(c, rs)},
      {"replicas", rs.size},
      {"podManagementPolicy", "Parallel"},
      // Pods change only when deleted: the operator never restarts members behind a backup's or
      // a restore's back (a restore replaces data under running pods, never the pods).
      {"updateStrategy", {{"type", "OnDelete"}}},
      {"selector", {{"matchLabels", Labels(c, rs.name)}}},
      {"template", {{"metadata", {{"labels", Labels(c, rs.name)}}}, {"spec", pod_spec}}},
  };
  if (!claims.empty()) spec["volumeClaimTemplates"] = claims;
  return {{"apiVersion", "apps/v1"},
          {"kind", "StatefulSet"},
          {"metadata", Meta(c, name, rs.name)},
          {"spec", spec}};
}

Json HeadlessService(const ClusterSpec& c, const ReplsetSpec& rs) {
  return {
      {"apiVersion", "v1"},
      {"kind", "Service"},
      {"metadata", Meta(c, ServiceName(c, rs), rs.name)},
      {"spec",
       {{"clusterIP", "None"},
        // Members must find each other before they are ready (the replset forms first).
        {"publishNotReadyAddresses", true},
        {"ports", Json::array({{{"name", "mongodb"}, {"port", c.port}, {"targetPort", c.port}}})},
        {"selector", Labels(c, rs.name)}}}};
}

const std::set<std::string> kCompressors = {"none", "snappy", "zlib", "zstd"};

}  // namespace

ClusterSpec ParseCluster(const Json& cr) {
  ClusterSpec c;
  c.name = Get<std::string>(cr, {"metadata", "name"}, "", "metadata.name");
  c.ns = Get<std::string>(cr, {"metadata", "namespace"}, "default", "metadata.namespace");
  c.uid = Get<std::string>(cr, {"metadata", "uid"}, "", "metadata.uid");
  const Json& spec = cr.contains("spec") ? cr["spec"] : Json::object();
  c.image = Get<std::string>(spec, {"image"}, "", "spec.image");
  if (c.image.empty()) Fail(ErrorKind::kInvalidArgument, "spec.image: required (the mongod image)");
  c.image_pull_policy = Get<std::string>(spec, {"imagePullPolicy"}, "", "spec.imagePullPolicy");
  c.users_secret =
      Get<std::string>(spec, {"secrets", "users"}, c.name + "-secrets", "spec.secrets.users");
  c.encryption_key_secret =
      Get<std::string>(spec, {"secrets", "encryptionKey"}, c.name + "-mongodb-encryption-key",
                       "spec.secrets.encryptionKey");
  c.keyfile_secret = Get<std::string>(spec, {"secrets", "keyFile"}, c.name + "-mongodb-keyfile",
                                      "spec.secrets.keyFile");
  c.port = Get<int>(spec, {"mongod", "net", "port"}, 27017, "spec.mongod.net.port");
  c.enable_encryption = Get<bool>(spec, {"mongod", "security", "enableEncryption"}, true,
                                  "spec.mongod.security.enableEncryption");
  c.encryption_cipher_mode =
      Get<std::string>(spec, {"mongod", "security", "encryptionCipherMode"}, "AES256-CBC",
                       "spec.mongod.security.encryptionCipherMode");
  if (c.encryption_cipher_mode != "AES256-CBC" && c.encryption_cipher_mode != "AES256-GCM") {
    Fail(ErrorKind::kInvalidArgument,
         "spec.mongod.security.encryptionCipherMode: '{}' is not AES256-CBC or AES256-GCM",
         c.encryption_cipher_mode);
  }
  const char* wt = "spec.mongod.storage.wiredTiger";
  c.block_compressor = Get<std::string>(
      spec, {"mongod", "storage", "wiredTiger", "collectionConfig", "blockCompressor"}, "snappy",
      std::string(wt) + ".collectionConfig.blockCompressor");
  c.journal_compressor = Get<std::string>(
      spec, {"mongod", "storage", "wiredTiger", "engineConfig", "journalCompressor"}, "snappy",
      std::string(wt) + ".engineConfig.journalCompressor");
  c.prefix_compression =
      Get<bool>(spec, {"mongod", "storage", "wiredTiger", "indexConfig", "prefixCompression"}, true,
                std::string(wt) + ".indexConfig.prefixCompression");
  c.directory_for_indexes =
      Get<bool>(spec, {"mongod", "storage", "wiredTiger", "engineConfig", "directoryForIndexes"},
                false, std::string(wt) + ".engineConfig.directoryForIndexes");
  for (const auto& [field, v] :
       {std::pair{"collectionConfig.blockCompressor", c.block_compressor},
        std::pair{"engineConfig.journalCompressor", c.journal_compressor}}) {
    if (!kCompressors.count(v)) {
      Fail(ErrorKind::kInvalidArgument, "{}.{}: '{}' is not none, snappy, zlib or zstd", wt, field,
           v);
    }
  }

  const Json* rss = Find(spec, {"replsets"});
  if (!rss || !rss->is_array() || rss->empty()) {
    Fail(ErrorKind::kInvalidArgument, "spec.replsets: at least one replica set is required");
  }
  std::set<std::string> rs_names;
  for (size_t i = 0; i < rss->size(); ++i) {
    const Json& r = (*rss)[i];
    std::string field = fmt::format("spec.replsets[{}]", i);
    ReplsetSpec rs;
    rs.name = Get<std::string>(r, {"name"}, "", field + ".name");
    if (rs.name.empty()) Fail(ErrorKind::kInvalidArgument, "{}.name: required", field);
    if (!rs_names.insert(rs.name).second) {
      Fail(ErrorKind::kInvalidArgument, "{}.name: '{}' is used twice", field, rs.name);
    }
    rs.size = Get<int>(r, {"size"}, 3, field + ".size");
    if (rs.size < 1) Fail(ErrorKind::kInvalidArgument, "{}.size: must be at least 1", field);
    rs.resources = r.value("resources", Json::object());
    rs.volume_spec = r.value("volumeSpec", Json::object());
    rs.sidecar_volumes = r.value("sidecarVolumes", Json::array());
    if (rs.volume_spec.empty()) {
      rs.volume_spec = {
          {"persistentVolumeClaim", {{"resources", {{"requests", {{"storage", "3Gi"}}}}}}}};
    }
    c.replsets.push_back(rs);
  }

  const Json b = spec.value("backup", Json::object());
  // As the CRD defaults it: a backup section without `enabled` is enabled.
  c.backup.enabled = Get<bool>(b, {"enabled"}, spec.contains("backup"), "spec.backup.enabled");
  c.backup.image = Get<std::string>(b, {"image"}, "", "spec.backup.image");
  c.backup.type = Get<std::string>(b, {"type"}, "logical", "spec.backup.type");
  c.backup.resources = b.value("resources", Json::object());
  c.backup.volume_mounts = b.value("volumeMounts", Json::array());
  if (c.backup.type != "logical" && c.backup.type != "physical") {
    Fail(ErrorKind::kInvalidArgument, "spec.backup.type: '{}' is not logical or physical",
         c.backup.type);
  }
  if (c.backup.enabled && c.backup.image.empty()) {
    Fail(ErrorKind::kInvalidArgument,
         "spec.backup.image: required when backups are enabled (pbm, pbm-agent and mongod)");
  }
  const Json storages = b.value("storages", Json::object());
  for (const auto& [name, s] : storages.items()) {
    std::string field = "spec.backup.storages." + name;
    StorageSpec st;
    st.name = name;
    st.type = Get<std::string>(s, {"type"}, "", field + ".type");
    st.main = Get<bool>(s, {"main"}, false, field + ".main");
    if (st.type == "filesystem") {
      st.filesystem_path =
          Get<std::string>(s, {"filesystem", "path"}, "", field + ".filesystem.path");
      if (st.filesystem_path.empty()) {
        Fail(ErrorKind::kInvalidArgument, "{}.filesystem.path: required", field);
      }
    } else if (st.type == "s3") {
      st.s3 = s.value("s3", Json::object());
      if (st.s3.value("bucket", "").empty()) {
        Fail(ErrorKind::kInvalidArgument, "{}.s3.bucket: required", field);
      }
    } else {
      Fail(ErrorKind::kInvalidArgument, "{}.type: '{}' is not filesystem or s3", field, st.type);
    }
    c.backup.storages[name] = st;
  }
  const Json tasks = b.value("tasks", Json::array());
  std::set<std::string> task_names;
  for (size_t i = 0; i < tasks.size(); ++i) {
    const Json& t = tasks[i];
    std::string field = fmt::format("spec.backup.tasks[{}]", i);
    TaskSpec ts;
    ts.name = Get<std::string>(t, {"name"}, "", field + ".name");
    if (ts.name.empty()) Fail(ErrorKind::kInvalidArgument, "{}.name: required", field);
    if (!task_names.insert(ts.name).second) {
      Fail(ErrorKind::kInvalidArgument, "{}.name: '{}' is used twice", field, ts.name);
    }
    ts.enabled = Get<bool>(t, {"enabled"}, true, field + ".enabled");
    ts.schedule = Get<std::string>(t, {"schedule"}, "", field + ".schedule");
    ts.keep = Get<int>(t, {"keep"}, 0, field + ".keep");
    ts.storage_name = Get<std::string>(t, {"storageName"}, "", field + ".storageName");
    ts.type = Get<std::string>(t, {"type"}, "", field + ".type");
    ts.compression_type = Get<std::string>(t, {"compressionType"}, "", field + ".compressionType");
    if (t.contains("compressionLevel"))
      ts.compression_level = Get<int>(t, {"compressionLevel"}, 0, field + ".compressionLevel");
    if (!ts.storage_name.empty() && !c.backup.storages.count(ts.storage_name)) {
      Fail(ErrorKind::kInvalidArgument, "{}.storageName: no storage '{}' in spec.backup.storages",
           field, ts.storage_name);
    }
    c.backup.tasks.push_back(ts);
  }
  return c;
}

std::string StatefulSetName(const ClusterSpec& c, const ReplsetSpec& rs) {
  return c.name + "-" + rs.name;
}

std::string ServiceName(const ClusterSpec& c, const ReplsetSpec& rs) {
  return c.name + "-" + rs.name;
}

std::string MemberHost(const ClusterSpec& c, const ReplsetSpec& rs, int i,
                       const std::string& cluster_domain) {
  return fmt::format("{}-{}.{}.{}.svc.{}:{}", StatefulSetName(c, rs), i, ServiceName(c, rs), c.ns,
                     cluster_domain, c.port);
}

Json Labels(const ClusterSpec& c, const std::string& replset) {
  Json l = {{"app.kubernetes.io/name", "percona-server-mongodb"},
            {"app.kubernetes.io/instance", c.name},
            {"app.kubernetes.io/managed-by", kManagedBy},
            {"app.kubernetes.io/part-of", "percona-server-mongodb"}};
  if (!replset.empty()) {
    l["app.kubernetes.io/component"] = "mongod";
    l["app.kubernetes.io/replset"] = replset;
  }
  return l;
}

std::vector<Json> DesiredObjects(const ClusterSpec& c) {
  std::vector<Json> out;
  for (const auto& rs : c.replsets) {
    out.push_back(HeadlessService(c, rs));
    out.push_back(StatefulSet(c, rs));
  }
  return out;
}

Json PbmConfigFor(const StorageSpec& s, const Json& secret, const ClusterSpec& c) {
  if (s.type == "filesystem") {
    return {{"storage", {{"type", "filesystem"}, {"filesystem", {{"path", s.filesystem_path}}}}}};
  }
  Json s3 = s.s3;
  std::string cred_secret = s3.value("credentialsSecret", "");
  s3.erase("credentialsSecret");
  if (!cred_secret.empty()) {
    if (secret.is_null()) {
      Fail(ErrorKind::kNotFound,
           "spec.backup.storages.{}.s3.credentialsSecret: Secret {}/{} not found", s.name, c.ns,
           cred_secret);
    }
    auto field = [&](const char* key) {
      std::string raw;
      const Json* v = Find(secret, {"data", key});
      if (!v || !v->is_string() || !Base64Decode(v->get<std::string>(), &raw) || raw.empty()) {
        Fail(ErrorKind::kInvalidArgument, "Secret {}/{}: no {} (the S3 credentials of storage {})",
             c.ns, cred_secret, key, s.name);
      }
      return raw;
    };
    s3["credentials"] = {{"access-key-id", field("AWS_ACCESS_KEY_ID")},
                         {"secret-access-key", field("AWS_SECRET_ACCESS_KEY")}};
  }
  return {{"storage", {{"type", "s3"}, {"s3", s3}}}};
}

}  // namespace pbm::op
