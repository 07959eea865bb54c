// psmdb-operator: reconciles PerconaServerMongoDB, PerconaServerMongoDBBackup and
// PerconaServerMongoDBRestore resources in one namespace.
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <atomic>
#include <csignal>
#include <cstdlib>
#include <iostream>

#include "kube/client.h"
#include "operator/controller.h"

namespace {
std::atomic<bool> g_stop{false};
void OnSignal(int) { g_stop = true; }

std::string Env(const char* name, const std::string& def = "") {
  const char* v = std::getenv(name);
  return v && *v ? v : def;
}
}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"psmdb-operator: backups and restores of MongoDB from Kubernetes custom resources"};
  std::string kubeconfig, ns = Env("WATCH_NAMESPACE"), identity = Env("POD_NAME");
  std::string lease_name = "psmdb-operator-lock", domain = "cluster.local", log_level = "info";
  bool leader_elect = true;
  int watch_timeout = 60;
  app.add_option("--kubeconfig", kubeconfig,
                 "kubeconfig file (default: $KUBECONFIG, in-cluster, ~/.kube/config)");
  app.add_option("--namespace", ns,
                 "namespace to watch (default: $WATCH_NAMESPACE, else the config's)");
  app.add_option("--identity", identity,
                 "leader-election identity (default: $POD_NAME, else host-pid)");
  app.add_option("--lease-name", lease_name, "Lease used for leader election");
  app.add_flag("--leader-elect,!--no-leader-elect", leader_elect,
               "elect one active replica (default on)");
  app.add_option("--cluster-domain", domain, "cluster DNS domain of the pods' names");
  app.add_option("--watch-timeout", watch_timeout, "seconds per watch request")
      ->check(CLI::Range(1, 3600));
  app.add_option("--log-level", log_level, "debug, info, warn or error")
      ->check(CLI::IsMember({"debug", "info", "warn", "error"}));
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  spdlog::set_level(spdlog::level::from_str(log_level));
  try {
    pbm::kube::Client kc(pbm::kube::DefaultConfig(kubeconfig));
    if (ns.empty()) ns = kc.config().ns;
    if (identity.empty()) {
      char host[256] = {0};
      gethostname(host, sizeof(host) - 1);
      identity = std::string(host) + "-" + std::to_string(getpid());
    }
    // The API server must answer before anything else is tried.
    kc.List(pbm::op::crd::kClusters, ns);
    pbm::op::ControllerOptions o;
    o.ns = ns;
    o.leader_elect = leader_elect;
    o.lease.ns = ns;
    o.lease.name = lease_name;
    o.lease.identity = identity;
    o.watch_timeout_secs = watch_timeout;
    o.reconciler.cluster_domain = domain;
    std::signal(SIGTERM, OnSignal);
    std::signal(SIGINT, OnSignal);
    spdlog::info("psmdb-operator watching namespace {} on {}", ns, kc.config().server);
    pbm::op::Controller ctl(kc, o);
    return ctl.Run(g_stop) ? 0 : 1;
  } catch (const std::exception& e) {
    std::cerr << "psmdb-operator: " << e.what() << "\n";
    return 1;
  }
}
