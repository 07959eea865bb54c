// The PerconaServerMongoDB custom resource as psmdb-operator reads it, and the Kubernetes
// objects it makes from it (pure functions: the reconcile loop applies them; golden tests
// check them).
#pragma once

#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

namespace pbm::op {

using Json = nlohmann::json;

inline constexpr const char* kGroup = "psmdb.percona.com";
inline constexpr const char* kVersion = "v1";
inline constexpr const char* kApiVersion = "psmdb.percona.com/v1";
inline constexpr const char* kManagedBy = "percona-server-mongodb-operator";

// Where files live inside the pods (the images are built for these; see deploy/).
inline constexpr const char* kDataVolume = "mongod-data";
inline constexpr const char* kDataDir = "/data/db";
inline constexpr const char* kEntrypoint = "/data/db/ps-entry.sh";
inline constexpr const char* kEntrypointInstaller = "/opt/psmdb/install-entrypoint.sh";
inline constexpr const char* kEncryptionKeyVolume = "encryption-key";
inline constexpr const char* kEncryptionKeyDir = "/etc/mongodb-encryption";
inline constexpr const char* kEncryptionKeyFile = "/etc/mongodb-encryption/encryption-key";
inline constexpr const char* kEncryptionKeyKey = "encryption-key";  // the key in the Secret
// Internal authentication between members (and access control: a key file implies --auth).
inline constexpr const char* kKeyFileVolume = "mongodb-keyfile";
inline constexpr const char* kKeyFileDir = "/etc/mongodb-secrets";
inline constexpr const char* kKeyFilePath = "/etc/mongodb-secrets/mongodb-key";
inline constexpr const char* kKeyFileKey = "mongodb-key";

struct StorageSpec {
  std::string name;
  std::string type;   // filesystem | s3
  bool main = false;  // the storage the cluster's agents start with
  std::string filesystem_path;
  Json s3 =
      Json::object();  // bucket, prefix, region, endpointUrl, credentialsSecret, ... as in the CR
};

struct TaskSpec {
  std::string name;
  bool enabled = true;
  std::string schedule;  // cron, five fields
  int keep = 0;          // retention: backups of this task kept (0 = all)
  std::string storage_name;
  std::string type;  // "" = the cluster's spec.backup.type
  std::string compression_type;
  std::optional<int> compression_level;
};

struct ReplsetSpec {
  std::string name;
  int size = 3;
  Json resources;    // corev1 ResourceRequirements, as given
  Json volume_spec;  // {persistentVolumeClaim: {...}} | {emptyDir: {}} | {hostPath: {...}}
  Json sidecar_volumes = Json::array();  // extra pod volumes (e.g. the NFS of a filesystem storage)
};

struct ClusterSpec {
  std::string name, ns, uid;
  std::string image;  // the mongod image (ps-entry.sh and mongod)
  std::string image_pull_policy;
  std::string users_secret;
  std::string encryption_key_secret;
  std::string keyfile_secret;
  int port = 27017;
  // mongod options (spec.mongod): what a physical restore must match.
  bool enable_encryption = false;
  std::string encryption_cipher_mode = "AES256-CBC";
  std::string block_compressor = "snappy";
  std::string journal_compressor = "snappy";
  bool prefix_compression = true;
  bool directory_for_indexes = false;
  std::vector<ReplsetSpec> replsets;
  struct Backup {
    bool enabled = false;
    std::string image;             // pbm, pbm-agent and mongod
    std::string type = "logical";  // this cluster's default backup type
    std::map<std::string, StorageSpec> storages;
    std::vector<TaskSpec> tasks;
    Json resources;
    Json volume_mounts = Json::array();  // extra mounts of the backup-agent (a filesystem storage)
  } backup;
};

// Reads and checks the CR (the API server's schema already refused wrong types and enums;
// this checks what a schema cannot: references between fields). Throws Error(kInvalidArgument)
// with one line naming the field.
ClusterSpec ParseCluster(const Json& cr);

std::string StatefulSetName(const ClusterSpec& c, const ReplsetSpec& rs);
// The headless Service of a replset (one per StatefulSet): pods are <sts>-<i>.<svc>.<ns>.svc.
std::string ServiceName(const ClusterSpec& c, const ReplsetSpec& rs);
// <sts>-<i>.<svc>.<ns>.svc.<domain>:<port>
std::string MemberHost(const ClusterSpec& c, const ReplsetSpec& rs, int i,
                       const std::string& cluster_domain = "cluster.local");
Json Labels(const ClusterSpec& c, const std::string& replset = "");

// Every object the cluster needs, in apply order: per replset a headless Service and a
// StatefulSet. Each carries an ownerReference to the CR.
std::vector<Json> DesiredObjects(const ClusterSpec& c);

// The PBM config (storage section as `pbm config` takes it) for a storage of the CR, with S3
// credentials read from its credentialsSecret's data (base64-decoded AWS_ACCESS_KEY_ID and
// AWS_SECRET_ACCESS_KEY). `secret` is that Secret object (null when there is none).
Json PbmConfigFor(const StorageSpec& s, const Json& secret, const ClusterSpec& c);

}  // namespace pbm::op
