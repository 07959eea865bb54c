// The "kubelet" of devcluster: runs the containers of pods as child processes with
// restartPolicy Always and CrashLoopBackOff-like delays, and stops them in order.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <mutex>
#include <string>
#include <vector>

#include "backoff.h"
#include "util.h"

namespace devcluster {

// One container: a program the supervisor starts and keeps running.
struct ContainerSpec {
  std::string name;  // "mongod", "backup-agent"
  std::vector<std::string>
      argv;  // argv[0] is exec'd as given (no PATH search), like a pod's command
  std::vector<std::string> env;  // "KEY=VALUE" entries added to (overriding) the supervisor's env
  std::string cwd;               // working directory; empty: the supervisor's
  std::string output;            // stdout and stderr are appended here; empty: /dev/null
  int stop_order = 0;  // on shutdown, higher stop_order stops first (agents before mongod)
};

struct PodSpec {
  std::string name;  // "rs0-1"
  std::vector<ContainerSpec> containers;
};

enum class ContainerState {
  kPending,     // not started yet
  kRunning,     // process alive
  kBackOff,     // exited or failed to start; waiting for the next attempt
  kTerminated,  // stopped by the supervisor (shutdown)
};
const char* ContainerStateName(ContainerState s);  // "pending", "running", "back-off", "terminated"

struct ContainerStatus {
  std::string pod;
  std::string name;
  ContainerState state = ContainerState::kPending;
  pid_t pid = 0;          // the running process; 0 otherwise
  int restarts = 0;       // start attempts after the first (failed ones included)
  std::string last_exit;  // "exited with code 1", "killed by signal 9 (KILL)", "start failed: ..."
  Millis back_off{0};     // the current back-off delay (state kBackOff)
};

// Blocks SIGCHLD, SIGTERM, SIGINT and SIGHUP in the calling thread. Call it in the main thread
// before any other thread is created, so that only Supervisor::Run consumes these signals.
void BlockSupervisorSignals();

// Starts and restarts containers. Lifetime: AddPod()/OnChange() before Run(); Run() on one
// thread; Stop() and Snapshot() from any thread. Children are started in their own process
// group with PR_SET_PDEATHSIG=SIGTERM, so they stop if the supervisor dies.
class Supervisor {
 public:
  // `log` is borrowed and must outlive the supervisor. `grace`: how long a container may take to
  // exit after SIGTERM before it gets SIGKILL (the kubelet's terminationGracePeriodSeconds).
  Supervisor(BackOffPolicy policy, EventLog* log, Millis grace = Millis{30000});

  void AddPod(PodSpec pod);

  // Called on the Run() thread after every change of a container's state or pid (not under any
  // lock: it may call Snapshot()).
  void OnChange(std::function<void()> fn) { on_change_ = std::move(fn); }

  // Starts every container, restarts each whenever it exits or fails to start (exec error) after
  // its back-off delay, and logs each start, exit, failed start and back-off as one line
  // ("pod rs0-1 container mongod: start failed: exec /x/ps-entry.sh: No such file or directory;
  // back-off 2s"). Returns after Stop() or SIGTERM/SIGINT/SIGHUP, once every container has been
  // stopped: by descending stop_order, SIGTERM, then SIGKILL after `grace`.
  // Requires BlockSupervisorSignals() in every thread of the process.
  void Run();

  // Asks Run() to stop everything and return. Thread-safe; returns at once.
  void Stop() { stop_ = true; }
  bool stopping() const { return stop_; }

  // The state of every container, pods in AddPod order. Thread-safe.
  std::vector<ContainerStatus> Snapshot() const;

 private:
  struct Container {
    ContainerSpec spec;
    BackOff backoff;
    ContainerStatus status;
    std::chrono::steady_clock::time_point started_at{};
    std::chrono::steady_clock::time_point next_start{};
    int starts = 0;
  };

  void Start(Container& c);
  void HandleExit(Container& c, int wait_status);
  void ReapExited();
  void StopAll();
  void Changed();

  BackOffPolicy policy_;
  EventLog* log_;
  Millis grace_;
  std::vector<Container> containers_;  // all pods' containers, in AddPod order
  std::function<void()> on_change_;
  std::atomic<bool> stop_{false};
  mutable std::mutex mu_;  // guards every Container::status
};

}  // namespace devcluster
