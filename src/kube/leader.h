// Leader election over a coordination.k8s.io/v1 Lease, as client-go's leaderelection: the
// holder renews the lease; another candidate takes it once renewTime + leaseDurationSeconds has
// passed. Optimistic concurrency (resourceVersion) decides races.
#pragma once

#include <string>

#include "kube/client.h"

namespace pbm::kube {

struct LeaseOptions {
  std::string ns;
  std::string name = "psmdb-operator-lock";
  std::string identity;  // unique per candidate (pod name, or host-pid)
  int lease_duration_secs = 15;
};

class LeaderElector {
 public:
  LeaderElector(Client& c, LeaseOptions o);
  // One attempt: true when this candidate holds the lease afterwards.
  bool TryAcquireOrRenew();
  // Gives the lease up (holderIdentity cleared) so that another candidate need not wait.
  void Release();
  const LeaseOptions& options() const { return o_; }

 private:
  Client& c_;
  LeaseOptions o_;
};

}  // namespace pbm::kube
