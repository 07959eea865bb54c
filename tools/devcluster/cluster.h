// devcluster's commands: up (create or reuse, supervise), down and status of one replica set.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "pod.h"
#include "supervisor.h"

namespace devcluster {

struct UpOptions {
  bool detach = false;           // return once the set is healthy; supervise in the background
  Millis grace{30000};           // SIGTERM → SIGKILL delay when stopping a container
  Millis start_timeout{120000};  // for the ports, replSetInitiate and a healthy set
};

// Runs `devcluster up` for a resolved spec: lays out D (D/<rs>-<i>/{data,logs,mongod.conf}),
// saves D/spec.json, takes D/devcluster.pid (refuses if another supervisor holds it), runs each
// pod's init step, starts the containers, initiates the set once (first member priority 2) and
// waits for one PRIMARY and SECONDARYs, keeping D/cluster.json current. Then supervises until
// SIGTERM/SIGINT (or, with detach, returns 0 in the caller once healthy while a daemon child
// supervises). Returns the process exit code; prints one error line to stderr on failure.
int Up(const ClusterSpec& spec, const UpOptions& opts);

// Signals the supervisor of D (D/devcluster.pid) with SIGTERM and waits up to `timeout` for it
// to exit (after it stopped every container). Returns 0 when none runs (any more), 1 on timeout.
int Down(const std::string& dir, Millis timeout);

// Prints D/cluster.json with live facts added: whether the supervisor runs, and each member's
// replica-set state from `hello` ("PRIMARY", "SECONDARY", "NOT_READY", "unreachable", or
// "not running" when no supervisor runs).
// Returns 0, or 1 if D holds no cluster.
int Status(const std::string& dir);

// D/cluster.json: {replset, uri, ready, supervisor_pid, log, members: [{name, host, port, dbpath,
// pod_dir, mongod_pid, agent_pid (null when not running), containers: {<name>: {state, pid,
// restarts, last_exit, back_off_ms}}}]}.
nlohmann::ordered_json ClusterJson(const ClusterSpec& spec,
                                   const std::vector<ContainerStatus>& containers, bool ready,
                                   int supervisor_pid);

// Ports for `n` members: base, base+1, ... when base > 0; otherwise n distinct free loopback
// ports chosen by the kernel.
std::vector<int> ChoosePorts(int n, int base);

}  // namespace devcluster
