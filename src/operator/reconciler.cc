#include "operator/reconciler.h"

#include <openssl/rand.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <set>

#include "backup/format.h"
#include "common/base64.h"
#include "control/connect.h"
#include "control/control.h"
#include "control/operations.h"
#include "operator/cron.h"
#include "storage/storage.h"

namespace pbm::op {

namespace crd {
const kube::Resource kClusters{kGroup, kVersion, "perconaservermongodbs", "PerconaServerMongoDB"};
const kube::Resource kBackups{kGroup, kVersion, "perconaservermongodbbackups",
                              "PerconaServerMongoDBBackup"};
const kube::Resource kRestores{kGroup, kVersion, "perconaservermongodbrestores",
                               "PerconaServerMongoDBRestore"};
}  // namespace crd

namespace {

// The users Secret's keys (upstream's names) and the roles each user gets.
struct SystemUser {
  const char* user_key;
  const char* password_key;
  const char* default_name;
  std::vector<std::string> roles;  // admin database roles
};
const std::vector<SystemUser> kSystemUsers = {
    {"MONGODB_BACKUP_USER",
     "MONGODB_BACKUP_PASSWORD",
     "backup",
     {"backup", "restore", "clusterMonitor", "readWrite"}},
    {"MONGODB_CLUSTER_ADMIN_USER",
     "MONGODB_CLUSTER_ADMIN_PASSWORD",
     "clusterAdmin",
     {"clusterAdmin", "readWriteAnyDatabase"}},
    {"MONGODB_CLUSTER_MONITOR_USER",
     "MONGODB_CLUSTER_MONITOR_PASSWORD",
     "clusterMonitor",
     {"clusterMonitor"}},
    {"MONGODB_USER_ADMIN_USER",
     "MONGODB_USER_ADMIN_PASSWORD",
     "userAdmin",
     {"userAdminAnyDatabase"}},
};

std::string RandomBytes(size_t n) {
  std::string out(n, '\0');
  if (RAND_bytes(reinterpret_cast<unsigned char*>(out.data()), static_cast<int>(n)) != 1) {
    Fail(ErrorKind::kInternal, "no random bytes from OpenSSL");
  }
  return out;
}

// A password of URL-safe characters (it also travels in connection strings).
std::string RandomPassword() {
  std::string p;
  for (char ch : Base64Encode(RandomBytes(24))) {
    if (std::isalnum(static_cast<unsigned char>(ch))) p.push_back(ch);
  }
  return p;
}

std::string Now() { return kube::FormatTime(control::NowUnix()); }

std::string State(const Json& cr) {
  if (!cr.contains("status") || !cr["status"].is_object()) return "";
  return cr["status"].value("state", "");
}

bool Terminal(const std::string& state) { return state == "ready" || state == "error"; }

bool HasFinalizer(const Json& cr, const std::string& f) {
  for (const auto& x : cr["metadata"].value("finalizers", Json::array())) {
    if (x == f) return true;
  }
  return false;
}

bool Deleting(const Json& cr) { return cr["metadata"].contains("deletionTimestamp"); }

// A stable hash of what the operator wants an object to be: it updates only what changed.
std::string SpecHash(const Json& obj) {
  size_t h = std::hash<std::string>{}(obj.value("spec", Json::object()).dump() +
                                      obj["metadata"].value("labels", Json::object()).dump());
  return fmt::format("{:016x}", h);
}

control::Json ToControl(const Json& j) { return control::Json::parse(j.dump()); }

}  // namespace

Reconciler::Reconciler(kube::Client& kc, ReconcilerOptions o) : kc_(kc), o_(std::move(o)) {}

std::string Reconciler::UserSecret(const ClusterSpec& c, const std::string& key) {
  auto s = kc_.TryGet(kube::resources::kSecrets, c.ns, c.users_secret);
  if (!s || !s->contains("data") || !(*s)["data"].contains(key)) return "";
  std::string out;
  if (!Base64Decode((*s)["data"][key].get<std::string>(), &out)) return "";
  return out;
}

std::unique_ptr<mongo::Client> Reconciler::Connect(const ClusterSpec& c, const ReplsetSpec& rs,
                                                   bool direct, Identity as) {
  std::string hosts;
  for (int i = 0; i < (direct ? 1 : rs.size); ++i) {
    hosts += (hosts.empty() ? "" : ",") + MemberHost(c, rs, i, o_.cluster_domain);
  }
  std::string uri = "mongodb://" + hosts + "/?" +
                    (direct ? std::string("directConnection=true") : "replicaSet=" + rs.name) +
                    "&serverSelectionTimeoutMS=" + std::to_string(o_.mongo_timeout_ms);
  if (as == Identity::kClusterAdmin) {
    uri = control::WithCredentials(uri, UserSecret(c, "MONGODB_CLUSTER_ADMIN_USER"),
                                   UserSecret(c, "MONGODB_CLUSTER_ADMIN_PASSWORD"));
  } else if (as == Identity::kInternal) {
    // Before any user exists: the members' internal identity, __system@local with the key file
    // as its password (mongod's keyFile authentication), which needs no exec into a pod.
    std::string key;
    auto s = kc_.TryGet(kube::resources::kSecrets, c.ns, c.keyfile_secret);
    if (!s || !Base64Decode((*s)["data"].value(kKeyFileKey, std::string()), &key) || key.empty()) {
      Fail(ErrorKind::kNotFound, "Secret {}/{}: no {}", c.ns, c.keyfile_secret, kKeyFileKey);
    }
    key.erase(
        std::remove_if(key.begin(), key.end(), [](unsigned char ch) { return std::isspace(ch); }),
        key.end());
    uri = control::WithCredentials(uri, "__system", key) + "&authSource=local";
  }
  return std::make_unique<mongo::Client>(uri, o_.mongo_timeout_ms);
}

void Reconciler::EnsureSecrets(const ClusterSpec& c) {
  // As upstream: missing Secrets are generated (random passwords, a random 256-bit key), and
  // never owned by the CR, so that deleting the cluster keeps what its data needs.
  if (!kc_.TryGet(kube::resources::kSecrets, c.ns, c.users_secret)) {
    Json data = Json::object();
    for (const auto& u : kSystemUsers) {
      data[u.user_key] = Base64Encode(u.default_name);
      data[u.password_key] = Base64Encode(RandomPassword());
    }
    kc_.Create(kube::resources::kSecrets, c.ns,
               {{"apiVersion", "v1"},
                {"kind", "Secret"},
                {"metadata", {{"name", c.users_secret}, {"namespace", c.ns}}},
                {"type", "Opaque"},
                {"data", data}});
  }
  if (!kc_.TryGet(kube::resources::kSecrets, c.ns, c.keyfile_secret)) {
    // 768 base64 characters, as upstream's generated key files.
    kc_.Create(kube::resources::kSecrets, c.ns,
               {{"apiVersion", "v1"},
                {"kind", "Secret"},
                {"metadata", {{"name", c.keyfile_secret}, {"namespace", c.ns}}},
                {"type", "Opaque"},
                {"data", {{kKeyFileKey, Base64Encode(Base64Encode(RandomBytes(576)))}}}});
  }
  if (c.enable_encryption &&
      !kc_.TryGet(kube::resources::kSecrets, c.ns, c.encryption_key_secret)) {
    kc_.Create(kube::resources::kSecrets, c.ns,
               {{"apiVersion", "v1"},
                {"kind", "Secret"},
                {"metadata", {{"name", c.encryption_key_secret}, {"namespace", c.ns}}},
                {"type", "Opaque"},
                {"data", {{kEncryptionKeyKey, Base64Encode(Base64Encode(RandomBytes(32)))}}}});
  }
}

void Reconciler::ApplyObjects(const ClusterSpec& c) {
  for (Json want : DesiredObjects(c)) {
    const kube::Resource& r =
        want["kind"] == "StatefulSet" ? kube::resources::kStatefulSets : kube::resources::kServices;
    std::string name = want["metadata"]["name"];
    std::string hash = SpecHash(want);
    want["metadata"]["annotations"]["psmdb.percona.com/spec-hash"] = hash;
    kube::RetryOnConflict([&] {
      auto have = kc_.TryGet(r, c.ns, name);
      if (!have) {
        kc_.Create(r, c.ns, want);
        spdlog::info("created {} {}/{}", r.kind, c.ns, name);
        return 0;
      }
      Json& md = (*have)["metadata"];
      if (md.value("annotations", Json::object()).value("psmdb.percona.com/spec-hash", "") ==
          hash) {
        return 0;
      }
      // Fields the API refuses to change stay as they are (a StatefulSet's selector, service
      // name and claim templates; a Service's cluster IP).
      Json spec = want["spec"];
      const Json& old = (*have)["spec"];
      for (const char* keep : {"selector", "serviceName", "volumeClaimTemplates", "clusterIP",
                               "podManagementPolicy"}) {
        if (r.kind == "Service" && std::string(keep) == "selector") continue;
        if (old.contains(keep)) spec[keep] = old[keep];
      }
      (*have)["spec"] = spec;
      md["labels"] = want["metadata"]["labels"];
      md["annotations"]["psmdb.percona.com/spec-hash"] = hash;
      kc_.Update(r, c.ns, *have);
      spdlog::info("updated {} {}/{}", r.kind, c.ns, name);
      return 0;
    });
  }
}

bool Reconciler::InitReplset(const ClusterSpec& c, const ReplsetSpec& rs, std::string* message) {
  auto first = Connect(c, rs, /*direct=*/true, Identity::kInternal);
  control::Json hello = first->RunCommand("admin", {{"hello", 1}});
  if (!hello.contains("setName")) {
    control::Json members = control::Json::array();
    for (int i = 0; i < rs.size; ++i) {
      members.push_back({{"_id", i},
                         {"host", MemberHost(c, rs, i, o_.cluster_domain)},
                         {"priority", i == 0 ? 2 : 1}});
    }
    try {
      first->RunCommand("admin", {{"replSetInitiate", {{"_id", rs.name}, {"members", members}}}});
      spdlog::info("replset {} of {}/{} initiated with {} members", rs.name, c.ns, c.name, rs.size);
    } catch (const mongo::CommandError& e) {
      if (e.code() != 23) throw;  // AlreadyInitialized: a previous attempt got through
    }
  }
  // The users are created on the primary, once it is elected.
  auto set = Connect(c, rs, /*direct=*/false, Identity::kInternal);
  control::Json h = set->RunCommand("admin", {{"hello", 1}});
  if (!h.value("isWritablePrimary", false) && h.value("primary", std::string()).empty()) {
    *message = "replset " + rs.name + ": waiting for a primary";
    return false;
  }
  for (const auto& u : kSystemUsers) {
    std::string user = UserSecret(c, u.user_key), pwd = UserSecret(c, u.password_key);
    if (user.empty() || pwd.empty()) continue;
    control::Json roles = control::Json::array();
    for (const auto& role : u.roles) roles.push_back({{"role", role}, {"db", "admin"}});
    try {
      set->RunCommand("admin", {{"createUser", user}, {"pwd", pwd}, {"roles", roles}});
    } catch (const mongo::CommandError& e) {
      if (e.code() != 51003) throw;  // exists: make its password the Secret's
      set->RunCommand("admin", {{"updateUser", user}, {"pwd", pwd}, {"roles", roles}});
    }
  }
  return true;
}

bool Reconciler::SetStatus(const kube::Resource& r, const Json& cr, const Json& status) {
  Json merged = cr.value("status", Json::object());
  merged.merge_patch(status);
  if (merged == cr.value("status", Json::object())) return true;
  // A merge patch of the status subresource; fields set to null are removed.
  try {
    kc_.MergePatch(r, cr["metadata"].value("namespace", ""), cr["metadata"]["name"],
                   {{"status", status}}, /*status=*/true);
  } catch (const kube::ApiError& e) {
    if (e.code() == 404) return false;
    throw;
  }
  return true;
}

int Reconciler::EndInError(const kube::Resource& r, const Json& cr, const std::string& reason,
                           const std::string& why) {
  kc_.RecordEvent(cr, "Warning", reason, why, o_.component);
  SetStatus(r, cr, {{"state", "error"}, {"error", why}, {"lastTransition", Now()}});
  return 0;
}

int Reconciler::Waiting(const kube::Resource& r, const Json& cr, const std::string& why) {
  SetStatus(r, cr, {{"state", "waiting"}, {"error", why}});
  return 5;
}

int Reconciler::ReconcileCluster(const std::string& ns, const std::string& name) {
  auto cr = kc_.TryGet(crd::kClusters, ns, name);
  if (!cr || Deleting(*cr)) return 0;  // owned objects go by garbage collection
  ClusterSpec c;
  try {
    c = ParseCluster(*cr);
  } catch (const Error& e) {
    if (State(*cr) != "error" || (*cr)["status"].value("message", "") != e.what()) {
      kc_.RecordEvent(*cr, "Warning", "InvalidSpec", e.what(), o_.component);
    }
    SetStatus(crd::kClusters, *cr, {{"state", "error"}, {"message", e.what()}});
    return 0;
  }
  Json status = {
      {"observedGeneration", (*cr)["metadata"].value("generation", 0)},
      {"host",
       c.replsets[0].name.empty() ? "" : MemberHost(c, c.replsets[0], 0, o_.cluster_domain)}};
  try {
    EnsureSecrets(c);
    ApplyObjects(c);
  } catch (const Error& e) {
    SetStatus(crd::kClusters, *cr, {{"state", "error"}, {"message", e.what()}});
    return 10;
  }
  bool all_ready = true;
  std::string message;
  int ready_total = 0, size_total = 0;
  Json replsets = Json::object();
  Json old_rs = cr->value("status", Json::object()).value("replsets", Json::object());
  for (const auto& rs : c.replsets) {
    auto sts = kc_.TryGet(kube::resources::kStatefulSets, c.ns, StatefulSetName(c, rs));
    int ready = sts ? sts->value("status", Json::object()).value("readyReplicas", 0) : 0;
    bool initialized = old_rs.value(rs.name, Json::object()).value("initialized", false);
    ready_total += ready;
    size_total += rs.size;
    Json rstat = {{"size", rs.size}, {"ready", ready}, {"initialized", initialized}};
    if (ready == rs.size && !initialized) {
      std::string why;
      try {
        initialized = InitReplset(c, rs, &why);
      } catch (const std::exception& e) {
        why = std::string("replset ") + rs.name + ": " + e.what();
      }
      rstat["initialized"] = initialized;
      if (!why.empty()) {
        rstat["message"] = why;
        message = why;
      }
    }
    bool rs_ready = ready == rs.size && initialized;
    rstat["status"] = rs_ready ? "ready" : "initializing";
    if (rs_ready) rstat["message"] = nullptr;
    all_ready = all_ready && rs_ready;
    replsets[rs.name] = rstat;
  }
  status["replsets"] = replsets;
  status["ready"] = ready_total;
  status["size"] = size_total;
  std::string state = all_ready ? "ready" : "initializing";
  if (all_ready && c.backup.enabled && !c.backup.storages.empty()) {
    // The agents need a storage before the first backup: the main one (or the first).
    std::string main = c.backup.storages.begin()->first;
    for (const auto& [n, s] : c.backup.storages) {
      if (s.main) main = n;
    }
    try {
      auto cl = Connect(c, c.replsets[0], false, Identity::kClusterAdmin);
      control::Control ctl(*cl);
      if (!ctl.GetConfig()) UseStorage(ctl, c, main);
    } catch (const Error& e) {
      // A member still starting is not the user's error; a storage that cannot be used is.
      state = e.kind() == ErrorKind::kUnavailable ? "initializing" : "error";
      message = std::string("backup storage ") + main + ": " + e.what();
    }
  }
  status["state"] = state;
  status["message"] = message.empty() ? Json(nullptr) : Json(message);
  // One Ready condition, as the API conventions have it; its transition time moves only when
  // its status does.
  Json old_cond;
  for (const auto& x : cr->value("status", Json::object()).value("conditions", Json::array())) {
    if (x.value("type", "") == "Ready") old_cond = x;
  }
  std::string ready = state == "ready" ? "True" : "False";
  Json cond = {{"type", "Ready"},
               {"status", ready},
               {"reason", state == "ready"   ? "Ready"
                          : state == "error" ? "Error"
                                             : "Initializing"},
               {"message", message},
               {"lastTransitionTime", old_cond.is_object() && old_cond.value("status", "") == ready
                                          ? old_cond.value("lastTransitionTime", Now())
                                          : Now()}};
  status["conditions"] = Json::array({cond});
  if (State(*cr) != state) {
    kc_.RecordEvent(*cr, state == "error" ? "Warning" : "Normal", "State",
                    "cluster is " + state + (message.empty() ? "" : ": " + message), o_.component);
  }
  SetStatus(crd::kClusters, *cr, status);
  return state == "ready" ? 30 : 3;
}

Json Reconciler::StorageConfig(const ClusterSpec& c, const std::string& storage_name) {
  const StorageSpec& s = c.backup.storages.at(storage_name);
  Json secret;
  std::string cred = s.s3.value("credentialsSecret", "");
  if (s.type == "s3" && !cred.empty()) {
    if (auto got = kc_.TryGet(kube::resources::kSecrets, c.ns, cred)) secret = *got;
  }
  return PbmConfigFor(s, secret, c);
}

void Reconciler::UseStorage(const control::Control& ctl, const ClusterSpec& c,
                            const std::string& storage_name) {
  Json want = StorageConfig(c, storage_name);
  auto have = ctl.GetConfig();
  if (have && have->contains("storage") &&
      Json::parse((*have)["storage"].dump()) == want["storage"]) {
    return;
  }
  control::Json cfg = have ? *have : control::Json::object();
  cfg["storage"] = ToControl(want["storage"]);
  control::ApplyConfig(ctl, cfg, "PerconaServerMongoDB " + c.name + " storage " + storage_name);
}

std::unique_ptr<storage::Storage> Reconciler::OpenStorage(const ClusterSpec& c,
                                                          const std::string& storage_name) {
  return storage::NewStorageFromConfig(ToControl(StorageConfig(c, storage_name)["storage"]));
}

namespace {

// The cluster a backup or restore names, parsed; throws Error with the reason for the status.
ClusterSpec ClusterOf(kube::Client& kc, const std::string& ns, const std::string& name, Json* cr) {
  if (name.empty()) Fail(ErrorKind::kInvalidArgument, "spec.clusterName: required");
  auto got = kc.TryGet(crd::kClusters, ns, name);
  if (!got) {
    Fail(ErrorKind::kNotFound, "PerconaServerMongoDB {} not found in namespace {}", name, ns);
  }
  *cr = *got;
  try {
    return ParseCluster(*got);
  } catch (const Error& e) {
    Fail(ErrorKind::kInvalidArgument, "PerconaServerMongoDB {}: {}", name, e.what());
  }
}

std::string StorageNameFor(const ClusterSpec& c, const std::string& requested) {
  std::string names;
  for (const auto& [n, s] : c.backup.storages) names += (names.empty() ? "" : ", ") + n;
  if (requested.empty()) {
    if (c.backup.storages.size() == 1) return c.backup.storages.begin()->first;
    Fail(ErrorKind::kInvalidArgument, "spec.storageName: required (PerconaServerMongoDB {} has {})",
         c.name, names.empty() ? "no storages" : "storages " + names);
  }
  if (!c.backup.storages.count(requested)) {
    Fail(ErrorKind::kNotFound,
         "storage '{}' is not in PerconaServerMongoDB {} spec.backup.storages ({})", requested,
         c.name, names.empty() ? "it has none" : "it has " + names);
  }
  return requested;
}

}  // namespace

int Reconciler::ReconcileBackup(const std::string& ns, const std::string& name) {
  auto cr = kc_.TryGet(crd::kBackups, ns, name);
  if (!cr) return 0;
  const Json spec = cr->value("spec", Json::object());
  const Json st = cr->value("status", Json::object());
  std::string state = State(*cr);
  std::string pbm_name = st.value("pbmName", "");

  if (Deleting(*cr)) {
    if (!HasFinalizer(*cr, kBackupFinalizer)) return 0;
    // The finalizer deletes the backup's data from its storage, then lets the CR go.
    if (!pbm_name.empty() && state == "ready") {
      try {
        Json ccr;
        ClusterSpec c = ClusterOf(kc_, ns, spec.value("clusterName", ""), &ccr);
        auto cl = Connect(c, c.replsets[0], false, Identity::kClusterAdmin);
        control::Control ctl(*cl);
        UseStorage(ctl, c, st.value("storageName", spec.value("storageName", "")));
        control::DeleteBackup(ctl, pbm_name);
        kc_.RecordEvent(*cr, "Normal", "Deleted", "backup " + pbm_name + " deleted from storage",
                        o_.component);
      } catch (const Error& e) {
        if (e.kind() != ErrorKind::kNotFound) {
          kc_.RecordEvent(*cr, "Warning", "DeleteFailed",
                          "deleting backup " + pbm_name + " from storage: " + e.what() +
                              " (retrying; remove the finalizer to give up)",
                          o_.component);
          return 15;
        }
      }
    }
    kube::RetryOnConflict([&] {
      Json fresh = kc_.Get(crd::kBackups, ns, name);
      Json fins = Json::array();
      for (const auto& f : fresh["metadata"].value("finalizers", Json::array())) {
        if (f != kBackupFinalizer) fins.push_back(f);
      }
      fresh["metadata"]["finalizers"] = fins;
      kc_.Update(crd::kBackups, ns, fresh);
      return 0;
    });
    return 0;
  }
  if (Terminal(state)) return 0;  // never re-run

  auto fail = [&](const std::string& why) {
    return EndInError(crd::kBackups, *cr, "BackupFailed", why);
  };
  Json ccr;
  ClusterSpec c;
  std::string storage_name, type;
  try {
    c = ClusterOf(kc_, ns, spec.value("clusterName", ""), &ccr);
    if (!c.backup.enabled) {
      Fail(ErrorKind::kInvalidArgument,
           "backups are disabled in PerconaServerMongoDB {} (spec.backup.enabled)", c.name);
    }
    storage_name = StorageNameFor(c, spec.value("storageName", ""));
    type = spec.value("type", "");
    if (type.empty()) type = c.backup.type;
  } catch (const Error& e) {
    return fail(e.what());
  }
  if (!HasFinalizer(*cr, kBackupFinalizer)) {
    kube::RetryOnConflict([&] {
      Json fresh = kc_.Get(crd::kBackups, ns, name);
      fresh["metadata"]["finalizers"].push_back(kBackupFinalizer);
      kc_.Update(crd::kBackups, ns, fresh);
      return 0;
    });
    cr = kc_.Get(crd::kBackups, ns, name);
  }

  if (pbm_name.empty()) {
    if (State(ccr) != "ready") {
      return Waiting(crd::kBackups, *cr, "cluster " + c.name + " is not ready yet");
    }
    try {
      auto cl = Connect(c, c.replsets[0], false, Identity::kClusterAdmin);
      control::Control ctl(*cl);
      UseStorage(ctl, c, storage_name);
      control::BackupStart req;
      req.type = type;
      std::string comp = spec.value("compressionType", "");
      if (comp == "pgzip") comp = "gzip";  // PBM's parallel gzip: the same format
      if (!comp.empty()) req.compression = comp;
      if (spec.contains("compressionLevel"))
        req.compression_level = spec["compressionLevel"].get<int>();
      auto started = control::StartBackup(ctl, req);
      SetStatus(crd::kBackups, *cr,
                {{"state", "requested"},
                 {"pbmName", started.name},
                 {"type", type},
                 {"storageName", storage_name},
                 {"destination", started.storage + "/" + started.name},
                 {"start", Now()},
                 {"error", nullptr},
                 {"lastTransition", Now()}});
      kc_.RecordEvent(*cr, "Normal", "Started", type + " backup " + started.name + " requested",
                      o_.component);
    } catch (const Error& e) {
      if (e.kind() == ErrorKind::kConflict || e.kind() == ErrorKind::kUnavailable) {
        return Waiting(crd::kBackups, *cr, e.what());
      }
      return fail(e.what());
    }
    return 2;
  }

  std::optional<backup::BackupMeta> meta;
  try {
    auto cl = Connect(c, c.replsets[0], false, Identity::kClusterAdmin);
    control::Control ctl(*cl);
    meta = ctl.GetBackup(pbm_name);
  } catch (const Error& e) {
    spdlog::warn("backup {}/{}: cannot read {} from the cluster yet: {}", ns, name, pbm_name,
                 e.what());
    return 5;
  }
  if (!meta) return fail("backup " + pbm_name + " disappeared from the cluster's metadata");
  Json patch;
  if (meta->status == "done") {
    Json rs = Json::array();
    for (const auto& r : meta->replsets) rs.push_back(r.name);
    patch = {{"state", "ready"},
             {"size", backup::HumanBytes(meta->size)},
             {"completed", kube::FormatTime(meta->last_transition_ts)},
             {"lastWriteAt", kube::FormatTime(meta->last_write_ts.t)},
             {"replsetNames", rs},
             {"progress", "100%"},
             {"error", nullptr},
             {"lastTransition", Now()}};
    kc_.RecordEvent(*cr, "Normal", "Ready",
                    "backup " + pbm_name + " done (" + backup::HumanBytes(meta->size) + ")",
                    o_.component);
  } else if (meta->status == "error" || meta->status == "canceled") {
    return fail("backup " + pbm_name + " " + meta->status +
                (meta->error.empty() ? "" : ": " + meta->error));
  } else {
    auto p = backup::BackupProgress(*meta, control::NowUnix());
    std::string progress =
        p.bytes_total > 0 ? fmt::format("{}%", p.bytes_done * 100 / p.bytes_total) : "0%";
    patch = {{"state", meta->status == "running" ? "running" : "requested"},
             {"progress", progress}};
  }
  SetStatus(crd::kBackups, *cr, patch);
  return Terminal(patch.value("state", "")) ? 0 : 2;
}

int Reconciler::ReconcileRestore(const std::string& ns, const std::string& name) {
  auto cr = kc_.TryGet(crd::kRestores, ns, name);
  if (!cr || Deleting(*cr)) return 0;
  std::string state = State(*cr);
  if (Terminal(state)) return 0;  // never re-run
  const Json spec = cr->value("spec", Json::object());
  const Json st = cr->value("status", Json::object());
  auto fail = [&](const std::string& why) {
    return EndInError(crd::kRestores, *cr, "RestoreFailed", why);
  };
  Json ccr;
  ClusterSpec c;
  std::string backup_name, storage_name;
  try {
    c = ClusterOf(kc_, ns, spec.value("clusterName", ""), &ccr);
    std::string bname = spec.value("backupName", "");
    Json source = spec.value("backupSource", Json::object());
    if (bname.empty() == source.empty()) {
      Fail(ErrorKind::kInvalidArgument, "spec: give backupName or backupSource, exactly one");
    }
    if (!bname.empty()) {
      auto b = kc_.TryGet(crd::kBackups, ns, bname);
      if (!b)
        Fail(ErrorKind::kNotFound, "PerconaServerMongoDBBackup {} not found in namespace {}", bname,
             ns);
      if (State(*b) != "ready") {
        Fail(ErrorKind::kInvalidArgument, "PerconaServerMongoDBBackup {} is '{}', not ready", bname,
             State(*b));
      }
      backup_name = (*b)["status"].value("pbmName", "");
      storage_name = (*b)["status"].value("storageName", (*b)["spec"].value("storageName", ""));
    } else {
      std::string dest = source.value("destination", "");
      while (!dest.empty() && dest.back() == '/') dest.pop_back();
      backup_name = dest.substr(dest.find_last_of('/') + 1);
      if (!backup::IsValidBackupName(backup_name)) {
        Fail(ErrorKind::kInvalidArgument,
             "spec.backupSource.destination: '{}' does not end with a backup name (like "
             "2026-11-23T10:00:00Z)",
             dest);
      }
      storage_name = spec.value("storageName", "");
    }
    storage_name = StorageNameFor(c, spec.value("storageName", storage_name));
  } catch (const Error& e) {
    return fail(e.what());
  }

  std::string pbm_name = st.value("pbmName", "");
  if (pbm_name.empty()) {
    if (State(ccr) != "ready") {
      return Waiting(crd::kRestores, *cr, "cluster " + c.name + " is not ready yet");
    }
    try {
      auto cl = Connect(c, c.replsets[0], false, Identity::kClusterAdmin);
      control::Control ctl(*cl);
      UseStorage(ctl, c, storage_name);
      if (!ctl.GetBackup(backup_name)) {
        // A backup this cluster has no record of (another cluster's, or from before a resync):
        // the list follows the storage, as after pbm config --force-resync.
        auto stg = OpenStorage(c, storage_name);
        control::ResyncBackupsFromStorage(ctl, *stg, /*keep_running=*/true);
      }
      auto started = control::StartRestore(ctl, *cl, backup_name);
      SetStatus(crd::kRestores, *cr,
                {{"state", "requested"},
                 {"pbmName", started.name},
                 {"error", nullptr},
                 {"lastTransition", Now()}});
      kc_.RecordEvent(
          *cr, "Normal", "Started",
          started.type + " restore " + started.name + " of " + backup_name + " requested",
          o_.component);
    } catch (const Error& e) {
      if (e.kind() == ErrorKind::kConflict || e.kind() == ErrorKind::kUnavailable) {
        return Waiting(crd::kRestores, *cr, e.what());
      }
      return fail(e.what());
    }
    return 2;
  }

  // A physical restore takes the cluster down: its status lives on the storage.
  control::RestoreState rs;
  try {
    auto stg = OpenStorage(c, storage_name);
    std::unique_ptr<mongo::Client> cl;
    std::unique_ptr<control::Control> ctl;
    try {
      cl = Connect(c, c.replsets[0], false, Identity::kClusterAdmin);
      ctl = std::make_unique<control::Control>(*cl);
    } catch (const Error&) {
    }
    rs = control::GetRestoreState(ctl.get(), *stg, pbm_name);
  } catch (const Error& e) {
    spdlog::warn("restore {}/{}: status of {} not readable yet: {}", ns, name, pbm_name, e.what());
    return 5;
  }
  if (rs.status == "done") {
    kc_.RecordEvent(*cr, "Normal", "Ready", "restore " + pbm_name + " done", o_.component);
    SetStatus(crd::kRestores, *cr,
              {{"state", "ready"},
               {"completed", Now()},
               {"progress", "100%"},
               {"lastTransition", Now()}});
    return 0;
  }
  if (rs.status == "error") return fail("restore " + pbm_name + ": " + rs.error);
  Json patch = {{"state", rs.status == "starting" ? "requested" : "running"}};
  if (rs.bytes_total > 0) {
    patch["progress"] = fmt::format("downloaded {} of {}", backup::HumanBytes(rs.bytes_done),
                                    backup::HumanBytes(rs.bytes_total));
  }
  SetStatus(crd::kRestores, *cr, patch);
  return 2;
}

void Reconciler::RunSchedules(const std::string& ns, int64_t now) {
  Json list = kc_.List(crd::kClusters, ns);
  for (const auto& cr : list.value("items", Json::array())) {
    ClusterSpec c;
    try {
      c = ParseCluster(cr);
    } catch (const Error&) {
      continue;  // its reconcile reports the error
    }
    if (!c.backup.enabled) continue;
    for (const auto& t : c.backup.tasks) {
      if (!t.enabled) continue;
      std::string key = c.ns + "/" + c.name + "/" + t.name;
      int64_t fired;
      try {
        fired = Cron::Parse(t.schedule).Prev(now);
      } catch (const Error& e) {
        spdlog::warn("{}: task {}: {}", key, t.name, e.what());
        continue;
      }
      auto it = last_fired_.find(key);
      if (it == last_fired_.end()) {
        last_fired_[key] = fired;  // not what fired before the operator started
        continue;
      }
      if (fired > it->second) {
        it->second = fired;
        std::string stamp = kube::FormatTime(fired);
        std::string compact;
        for (char ch : stamp) {
          if (std::isdigit(static_cast<unsigned char>(ch))) compact.push_back(ch);
        }
        Json spec = {{"clusterName", c.name}, {"storageName", t.storage_name}};
        if (!t.type.empty()) spec["type"] = t.type;
        if (!t.compression_type.empty()) spec["compressionType"] = t.compression_type;
        if (t.compression_level) spec["compressionLevel"] = *t.compression_level;
        Json b = {
            {"apiVersion", kApiVersion},
            {"kind", "PerconaServerMongoDBBackup"},
            {"metadata",
             {{"name", "cron-" + c.name.substr(0, 16) + "-" + compact.substr(0, 12) + "-" +
                           fmt::format("{:05x}", std::hash<std::string>{}(t.name) & 0xfffff)},
              {"namespace", c.ns},
              {"labels",
               {{kLabelCluster, c.name}, {kLabelAncestor, t.name}, {kLabelBackupType, "cron"}}}}},
            {"spec", spec}};
        try {
          kc_.Create(crd::kBackups, c.ns, b);
          spdlog::info("{}: scheduled backup {} created", key,
                       b["metadata"]["name"].get<std::string>());
        } catch (const kube::ApiError& e) {
          if (e.code() != 409) spdlog::warn("{}: creating the scheduled backup: {}", key, e.what());
        }
      }
      try {
        Retain(c, t);
      } catch (const Error& e) {
        spdlog::warn("{}: retention: {}", key, e.what());
      }
    }
  }
}

void Reconciler::Retain(const ClusterSpec& c, const TaskSpec& t) {
  if (t.keep <= 0) return;
  kube::ListOptions lo;
  lo.label_selector =
      std::string(kLabelCluster) + "=" + c.name + "," + kLabelAncestor + "=" + t.name;
  Json items = kc_.List(crd::kBackups, c.ns, lo).value("items", Json::array());
  std::vector<Json> done;
  for (const auto& b : items) {
    if (!Deleting(b) && State(b) == "ready") done.push_back(b);
  }
  std::sort(done.begin(), done.end(), [](const Json& a, const Json& b) {
    return a["metadata"].value("creationTimestamp", "") >
           b["metadata"].value("creationTimestamp", "");
  });
  for (size_t i = static_cast<size_t>(t.keep); i < done.size(); ++i) {
    std::string n = done[i]["metadata"]["name"];
    kc_.Delete(crd::kBackups, c.ns, n);  // its finalizer removes the data
    spdlog::info("{}/{}: retention (keep {}) deleted backup {}", c.ns, c.name, t.keep, n);
  }
}

}  // namespace pbm::op
