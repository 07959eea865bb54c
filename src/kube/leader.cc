#include "kube/leader.h"

#include <chrono>

namespace pbm::kube {

namespace {
int64_t NowMicros() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}
}  // namespace

LeaderElector::LeaderElector(Client& c, LeaseOptions o) : c_(c), o_(std::move(o)) {}

bool LeaderElector::TryAcquireOrRenew() {
  std::string now = FormatMicroTime(NowMicros());
  auto lease = c_.TryGet(resources::kLeases, o_.ns, o_.name);
  if (!lease) {
    Json l = {{"apiVersion", "coordination.k8s.io/v1"},
              {"kind", "Lease"},
              {"metadata", {{"name", o_.name}, {"namespace", o_.ns}}},
              {"spec",
               {{"holderIdentity", o_.identity},
                {"leaseDurationSeconds", o_.lease_duration_secs},
                {"acquireTime", now},
                {"renewTime", now},
                {"leaseTransitions", 0}}}};
    try {
      c_.Create(resources::kLeases, o_.ns, l);
      return true;
    } catch (const ApiError& e) {
      if (e.code() == 409) return false;  // another candidate created it first
      throw;
    }
  }
  Json& spec = (*lease)["spec"];
  std::string holder = spec.value("holderIdentity", "");
  int64_t renew = ParseTime(spec.value("renewTime", ""));
  int duration = spec.value("leaseDurationSeconds", o_.lease_duration_secs);
  bool ours = holder == o_.identity;
  bool expired =
      holder.empty() || renew < 0 || renew + duration < static_cast<int64_t>(NowMicros() / 1000000);
  if (!ours && !expired) return false;
  if (!ours) {
    spec["leaseTransitions"] = spec.value("leaseTransitions", 0) + 1;
    spec["acquireTime"] = now;
  }
  spec["holderIdentity"] = o_.identity;
  spec["leaseDurationSeconds"] = o_.lease_duration_secs;
  spec["renewTime"] = now;
  try {
    c_.Update(resources::kLeases, o_.ns, *lease);  // stale resourceVersion: someone else won
    return true;
  } catch (const ApiError& e) {
    if (e.code() == 409) return false;
    throw;
  }
}

void LeaderElector::Release() {
  try {
    auto lease = c_.TryGet(resources::kLeases, o_.ns, o_.name);
    if (!lease || (*lease)["spec"].value("holderIdentity", "") != o_.identity) return;
    (*lease)["spec"]["holderIdentity"] = "";
    c_.Update(resources::kLeases, o_.ns, *lease);
  } catch (const Error&) {
    // The lease expires by itself.
  }
}

}  // namespace pbm::kube
