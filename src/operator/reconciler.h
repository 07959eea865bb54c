// The reconcile functions of psmdb-operator: level-triggered, each reads the CR and the world and
// moves one step; they return how soon they want to run again. Backups and restores go through
// the control-plane library, exactly as the pbm CLI does; nothing is exec'd in pods, and no
// StatefulSet is ever deleted or rewritten by a restore.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "control/control.h"
#include "kube/client.h"
#include "mongo/client.h"
#include "operator/cluster.h"
#include "storage/storage.h"

namespace pbm::op {

namespace crd {
extern const kube::Resource kClusters, kBackups, kRestores;
}  // namespace crd

inline constexpr const char* kBackupFinalizer = "percona.com/delete-backup";
// Labels of scheduled backups (as upstream): the cluster, and the task they come from.
inline constexpr const char* kLabelCluster = "percona.com/cluster";
inline constexpr const char* kLabelAncestor = "percona.com/backup-ancestor";
inline constexpr const char* kLabelBackupType = "percona.com/backup-type";

struct ReconcilerOptions {
  std::string cluster_domain = "cluster.local";
  std::string component = "psmdb-operator";
  int mongo_timeout_ms = 5000;
};

class Reconciler {
 public:
  Reconciler(kube::Client& kc, ReconcilerOptions o);

  // Each returns the seconds after which it wants to run again (0: only when something changes).
  int ReconcileCluster(const std::string& ns, const std::string& name);
  int ReconcileBackup(const std::string& ns, const std::string& name);
  int ReconcileRestore(const std::string& ns, const std::string& name);
  // Creates the Backup CRs of the tasks whose schedule fired since the last call (not those that
  // fired before the operator started) and applies their retention.
  void RunSchedules(const std::string& ns, int64_t now);

 private:
  enum class Identity { kClusterAdmin, kInternal };
  // A connection to a replset: all members (replicaSet) or member 0 alone (direct), as the
  // clusterAdmin user of the users Secret or as the members' internal user (key file).
  std::unique_ptr<mongo::Client> Connect(const ClusterSpec& c, const ReplsetSpec& rs, bool direct,
                                         Identity as);
  // The users Secret's value for `key` ("" when the Secret or the key is missing).
  std::string UserSecret(const ClusterSpec& c, const std::string& key);
  void EnsureSecrets(const ClusterSpec& c);
  void ApplyObjects(const ClusterSpec& c);
  // Initiates the replset and creates the system users when that was never done.
  bool InitReplset(const ClusterSpec& c, const ReplsetSpec& rs, std::string* message);
  // The PBM config of one of the cluster's storages, S3 credentials read from their Secret.
  Json StorageConfig(const ClusterSpec& c, const std::string& storage_name);
  // Makes `storage_name` the cluster's PBM storage (PBM has one at a time).
  void UseStorage(const control::Control& ctl, const ClusterSpec& c,
                  const std::string& storage_name);
  // The storage itself (restores read its status files while the cluster is down).
  std::unique_ptr<storage::Storage> OpenStorage(const ClusterSpec& c,
                                                const std::string& storage_name);
  // Merge-patches the CR's status when it changed; false when the CR is gone.
  bool SetStatus(const kube::Resource& r, const Json& cr, const Json& status);
  void Retain(const ClusterSpec& c, const TaskSpec& t);
  // A Backup or Restore CR ends in error (one line in status, a Warning event); returns 0.
  int EndInError(const kube::Resource& r, const Json& cr, const std::string& reason,
                 const std::string& why);
  // It waits (for the cluster, or for another operation to end); returns the retry delay.
  int Waiting(const kube::Resource& r, const Json& cr, const std::string& why);

  kube::Client& kc_;
  ReconcilerOptions o_;
  std::map<std::string, int64_t> last_fired_;  // ns/cluster/task → schedule time handled
};

}  // namespace pbm::op
