#include "operator/controller.h"

#include <spdlog/spdlog.h>

namespace pbm::op {

using Clock = std::chrono::steady_clock;

Controller::Controller(kube::Client& kc, ControllerOptions o)
    : kc_(kc), o_(std::move(o)), rec_(kc, o_.reconciler) {}

void Controller::Enqueue(const Key& k, int after_secs) {
  auto when = Clock::now() + std::chrono::seconds(after_secs);
  {
    std::lock_guard<std::mutex> l(mu_);
    auto it = due_.find(k);
    if (it == due_.end() || when < it->second) due_[k] = when;
  }
  cv_.notify_all();
}

void Controller::WatchLoop(const kube::Resource& r, const std::string& kind,
                           const std::atomic<bool>& stop) {
  auto key_of = [&](const Json& obj) -> std::string {
    if (kind != "statefulset") return obj["metadata"].value("name", "");
    // A StatefulSet's changes (pods becoming ready) concern the cluster that owns it.
    return obj["metadata"].value("labels", Json::object()).value("app.kubernetes.io/instance", "");
  };
  std::string target = kind == "statefulset" ? "cluster" : kind;
  kube::ListOptions lo;
  if (kind == "statefulset")
    lo.label_selector = std::string("app.kubernetes.io/managed-by=") + kManagedBy;
  while (!stop) {
    std::string rv;
    try {
      Json list = kc_.List(r, o_.ns, lo);
      for (const auto& obj : list.value("items", Json::array())) {
        std::string k = key_of(obj);
        if (!k.empty()) Enqueue({target, k});
      }
      rv = list["metadata"].value("resourceVersion", "");
      while (!stop) {
        rv = kc_.Watch(
            r, o_.ns, rv, o_.watch_timeout_secs,
            [&](const kube::WatchEvent& ev) {
              if (ev.type == "BOOKMARK") return true;
              std::string k = key_of(ev.object);
              if (!k.empty()) Enqueue({target, k});
              return true;
            },
            &stop, lo);
      }
    } catch (const kube::ApiError& e) {
      if (e.code() == 410) {
        spdlog::info("watch of {}: resourceVersion {} is too old; listing again", r.plural, rv);
        continue;
      }
      spdlog::warn("watch of {}: {}", r.plural, e.what());
    } catch (const Error& e) {
      spdlog::warn("watch of {}: {}", r.plural, e.what());
    }
    for (int i = 0; i < 20 && !stop; ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
}

void Controller::Work(const std::atomic<bool>& stop) {
  while (!stop) {
    Key k;
    {
      std::unique_lock<std::mutex> l(mu_);
      auto next = [&] {
        auto best = due_.end();
        for (auto it = due_.begin(); it != due_.end(); ++it) {
          if (best == due_.end() || it->second < best->second) best = it;
        }
        return best;
      };
      auto it = next();
      if (it == due_.end() || it->second > Clock::now()) {
        auto until = it == due_.end()
                         ? Clock::now() + std::chrono::milliseconds(500)
                         : std::min(it->second, Clock::now() + std::chrono::milliseconds(500));
        cv_.wait_until(l, until);
        continue;
      }
      k = it->first;
      due_.erase(it);
    }
    int again = 0;
    try {
      if (k.kind == "cluster") again = rec_.ReconcileCluster(o_.ns, k.name);
      if (k.kind == "backup") again = rec_.ReconcileBackup(o_.ns, k.name);
      if (k.kind == "restore") again = rec_.ReconcileRestore(o_.ns, k.name);
      if (k.kind == "schedule") {
        rec_.RunSchedules(o_.ns, control::NowUnix());
        again = o_.schedule_every_secs;
      }
    } catch (const std::exception& e) {
      // A failure of the API or of the cluster: try again soon (the reconcilers record their
      // users' errors in status themselves).
      spdlog::warn("reconcile {} {}/{}: {}", k.kind, o_.ns, k.name, e.what());
      again = 5;
    }
    if (again > 0) Enqueue(k, again);
  }
}

bool Controller::Run(const std::atomic<bool>& stop) {
  kube::LeaderElector elector(kc_, o_.lease);
  if (o_.leader_elect) {
    spdlog::info("waiting to lead (Lease {}/{} as {})", o_.lease.ns, o_.lease.name,
                 o_.lease.identity);
    while (!stop) {
      try {
        if (elector.TryAcquireOrRenew()) break;
      } catch (const Error& e) {
        spdlog::warn("leader election: {}", e.what());
      }
      std::this_thread::sleep_for(std::chrono::seconds(2));
    }
    if (stop) return true;
    spdlog::info("leading as {}", o_.lease.identity);
  }
  // The watches and the worker stop on `halt`: on `stop`, or when the lease is lost.
  std::atomic<bool> halt{false};
  std::vector<std::thread> threads;
  auto watch = [&](const kube::Resource& r, const std::string& kind) {
    threads.emplace_back([this, &r, kind, &halt] { WatchLoop(r, kind, halt); });
  };
  watch(crd::kClusters, "cluster");
  watch(crd::kBackups, "backup");
  watch(crd::kRestores, "restore");
  watch(kube::resources::kStatefulSets, "statefulset");
  Enqueue({"schedule", ""}, 1);
  threads.emplace_back([this, &halt] { Work(halt); });

  bool lost = false;
  auto last_renew = Clock::now();
  while (!stop && !halt) {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    if (o_.leader_elect && Clock::now() - last_renew > std::chrono::seconds(2)) {
      bool ok = false;
      try {
        ok = elector.TryAcquireOrRenew();
      } catch (const Error& e) {
        spdlog::warn("renewing the lease: {}", e.what());
      }
      if (ok) {
        last_renew = Clock::now();
      } else if (Clock::now() - last_renew >
                 std::chrono::seconds(o_.lease.lease_duration_secs - 2)) {
        spdlog::error("lost the lease {}/{}; stopping", o_.lease.ns, o_.lease.name);
        lost = true;
        halt = true;
      }
    }
  }
  halt = true;
  cv_.notify_all();
  for (auto& t : threads) t.join();
  if (o_.leader_elect && !lost) elector.Release();
  return !lost;
}

}  // namespace pbm::op
