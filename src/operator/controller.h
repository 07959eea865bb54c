// The operator's loop: list+watch of the CRs and of the StatefulSets it owns (re-listing after a
// 410), a work queue of keys with due times, one worker running the reconcilers, the backup
// schedules, and leader election so that only one replica acts.
#pragma once

#include <atomic>
#include <condition_variable>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "kube/client.h"
#include "kube/leader.h"
#include "operator/reconciler.h"

namespace pbm::op {

struct ControllerOptions {
  std::string ns;  // the namespace watched
  bool leader_elect = true;
  kube::LeaseOptions lease;
  int watch_timeout_secs = 60;
  int schedule_every_secs = 15;
  ReconcilerOptions reconciler;
};

class Controller {
 public:
  Controller(kube::Client& kc, ControllerOptions o);
  // Runs until `stop` becomes true (or leadership is lost: then returns false, and the process
  // should exit so that it starts over as a candidate, as controller-runtime does).
  bool Run(const std::atomic<bool>& stop);

 private:
  struct Key {
    std::string kind;  // cluster | backup | restore | schedule
    std::string name;
    bool operator<(const Key& o) const { return kind != o.kind ? kind < o.kind : name < o.name; }
  };
  void Enqueue(const Key& k, int after_secs = 0);
  void WatchLoop(const kube::Resource& r, const std::string& kind, const std::atomic<bool>& stop);
  void Work(const std::atomic<bool>& stop);

  kube::Client& kc_;
  ControllerOptions o_;
  Reconciler rec_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::map<Key, std::chrono::steady_clock::time_point> due_;
};

}  // namespace pbm::op
