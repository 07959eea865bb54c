// devcluster: replica sets of Kubernetes-like pods (mongod + pbm-agent containers) on one
// machine. See cluster.h for the commands and pod.h for what a pod is.
#include <fmt/ranges.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstdlib>
#include <filesystem>
#include <iostream>

#include "cluster.h"
#include "pod.h"
#include "util.h"

namespace devcluster {
namespace {

namespace fs = std::filesystem;

std::string SelfDir() {
  std::error_code ec;
  fs::path p = fs::read_symlink("/proc/self/exe", ec);
  return ec ? std::string() : p.parent_path().string();
}

bool Executable(const std::string& p) { return !p.empty() && access(p.c_str(), X_OK) == 0; }

// `name` on $PATH; "" if not found.
std::string FindOnPath(const std::string& name) {
  const char* path = std::getenv("PATH");
  if (!path) return "";
  std::string all = path;
  size_t start = 0;
  while (start <= all.size()) {
    size_t end = all.find(':', start);
    if (end == std::string::npos) end = all.size();
    std::string dir = all.substr(start, end - start);
    if (!dir.empty() && Executable(dir + "/" + name)) return AbsolutePath(dir + "/" + name);
    start = end + 1;
  }
  return "";
}

// A binary given by the user: a path, or a bare name looked up on $PATH.
std::string ResolveBinary(const std::string& flag, const std::string& value) {
  std::string p = value.find('/') == std::string::npos ? FindOnPath(value) : AbsolutePath(value);
  if (!Executable(p)) Fail("{} {}: not an executable file", flag, value);
  return p;
}

int Main(int argc, char** argv) {
  CLI::App app{"devcluster: MongoDB replica sets as Kubernetes-like pods on one machine"};
  app.require_subcommand(1);

  std::string dir;
  ClusterSpec flags;
  int base_port = 0;
  std::string mongod, agent, key_file, cipher;
  bool no_agents = false, detach = false;
  int64_t backoff_initial = 1000, backoff_max = 10000, backoff_reset = 10000, grace_ms = 30000;
  int start_timeout_s = 120, down_timeout_s = 120;
  std::vector<std::string> mongod_args;

  CLI::App* up = app.add_subcommand(
      "up",
      "create (or reuse) D, start the pods, initiate the replica set, wait until it is healthy and "
      "supervise until SIGTERM/SIGINT. An existing D reuses its data and the options saved in "
      "D/spec.json (flags given now override them).");
  up->add_option("--dir", dir, "cluster directory D")->required();
  auto* o_replset = up->add_option("--replset", flags.replset, "replica set name (rs0)");
  auto* o_members =
      up->add_option("--members", flags.members, "number of members (3)")->check(CLI::Range(1, 50));
  auto* o_base = up->add_option("--base-port", base_port,
                                "port of the first member; the others follow "
                                "(default: free ports chosen by the kernel)")
                     ->check(CLI::Range(1, 65535));
  auto* o_mongod =
      up->add_option("--mongod", mongod,
                     "mongod binary (default: mongod on PATH, else wtmongod next to devcluster)");
  auto* o_agent = up->add_option(
      "--agent", agent, "pbm-agent binary (default: pbm-agent next to devcluster, else on PATH)");
  auto* o_no_agents =
      up->add_flag("--no-agents", no_agents, "pods without a backup-agent container");
  o_agent->excludes(o_no_agents);
  auto* o_key = up->add_option("--encryption-key-file", key_file,
                               "enable encryption at rest with this key file");
  auto* o_cipher = up->add_option("--cipher", cipher, "AES256-CBC (default) or AES256-GCM");
  auto* o_block = up->add_option("--block-compressor", flags.block_compressor,
                                 "storage.wiredTiger.collectionConfig.blockCompressor");
  auto* o_journal = up->add_option("--journal-compressor", flags.journal_compressor,
                                   "storage.wiredTiger.engineConfig.journalCompressor");
  auto* o_bi = up->add_option("--backoff-initial-ms", backoff_initial,
                              "first restart delay (1000; the kubelet uses 10s)")
                   ->check(CLI::Range(int64_t{1}, int64_t{3600000}));
  auto* o_bm = up->add_option("--backoff-max-ms", backoff_max,
                              "longest restart delay (10000; the kubelet uses 5m)")
                   ->check(CLI::Range(int64_t{1}, int64_t{3600000}));
  auto* o_br = up->add_option("--backoff-reset-ms", backoff_reset,
                              "a container that ran this long starts its back-off over (10000)")
                   ->check(CLI::Range(int64_t{1}, int64_t{86400000}));
  up->add_option("--grace-ms", grace_ms, "SIGTERM to SIGKILL delay when stopping (30000)")
      ->check(CLI::Range(int64_t{0}, int64_t{3600000}));
  up->add_option("--start-timeout", start_timeout_s,
                 "seconds to wait for a healthy replica set (120)")
      ->check(CLI::Range(1, 86400));
  up->add_flag("--detach", detach,
               "return once the replica set is healthy (printing its URI) and supervise in the "
               "background; stop it with devcluster down");
  auto* o_args = up->add_option("mongod_args", mongod_args, "extra mongod arguments, after --");

  CLI::App* down = app.add_subcommand("down", "stop the supervisor of D and wait until it exited");
  down->add_option("--dir", dir, "cluster directory D")->required();
  down->add_option("--timeout", down_timeout_s, "seconds to wait (120)")
      ->check(CLI::Range(1, 86400));

  CLI::App* status = app.add_subcommand("status", "print pods, containers, restarts and states");
  status->add_option("--dir", dir, "cluster directory D")->required();

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  dir = AbsolutePath(dir);
  if (*down) return Down(dir, Millis{int64_t{down_timeout_s} * 1000});
  if (*status) return Status(dir);

  // up: the saved spec of an existing D, then the flags given now.
  ClusterSpec spec;
  bool saved = false;
  const std::string spec_path = dir + "/spec.json";
  if (fs::exists(spec_path)) {
    try {
      spec = nlohmann::json::parse(ReadFile(spec_path)).get<ClusterSpec>();
      saved = true;
    } catch (const std::exception& e) {
      Fail("read {}: {}", spec_path, e.what());
    }
  }
  spec.dir = dir;
  // An existing set keeps its name, its members and their ports: its data and its config name
  // them, and devcluster does not reconfigure a set.
  if (saved && o_replset->count() && flags.replset != spec.replset) {
    Fail(
        "devcluster up: {} holds replica set {}; it cannot be renamed {}: drop --replset, or "
        "use a new --dir",
        dir, spec.replset, flags.replset);
  }
  if (saved && o_members->count() && flags.members != spec.members) {
    Fail(
        "devcluster up: {} holds replica set {} of {} members; it cannot become {} members: "
        "drop --members, or use a new --dir",
        dir, spec.replset, spec.members, flags.members);
  }
  if (o_replset->count()) spec.replset = flags.replset;
  if (o_members->count()) spec.members = flags.members;
  if (saved && o_base->count() && spec.ports.size() == static_cast<size_t>(spec.members) &&
      spec.ports != ChoosePorts(spec.members, base_port)) {
    // The set's config names its members by host:port: moved, they would never find each other.
    Fail(
        "devcluster up: {} holds replica set {} on ports {}; its members cannot move to "
        "--base-port {}: drop --base-port, or use a new --dir",
        dir, spec.replset, fmt::join(spec.ports, ","), base_port);
  }
  if (o_base->count() || !saved || spec.ports.size() != static_cast<size_t>(spec.members))
    spec.ports = ChoosePorts(spec.members, base_port);
  if (o_mongod->count()) {
    spec.mongod = ResolveBinary("--mongod", mongod);
  } else if (!saved) {
    spec.mongod = FindOnPath("mongod");
    if (spec.mongod.empty()) spec.mongod = SelfDir() + "/wtmongod";
    if (!Executable(spec.mongod))
      Fail("devcluster up: no mongod on PATH and no wtmongod next to devcluster; pass --mongod");
  }
  if (no_agents) {
    spec.agent.clear();
  } else if (o_agent->count()) {
    spec.agent = ResolveBinary("--agent", agent);
  } else if (!saved) {
    spec.agent = SelfDir() + "/pbm-agent";
    if (!Executable(spec.agent)) spec.agent = FindOnPath("pbm-agent");
    if (spec.agent.empty())
      Fail(
          "devcluster up: no pbm-agent next to devcluster or on PATH; pass --agent or "
          "--no-agents");
  }
  if (o_key->count()) {
    spec.encryption_key_file = key_file.empty() ? "" : AbsolutePath(key_file);
    if (!spec.encryption_key_file.empty() && !fs::exists(spec.encryption_key_file))
      Fail("--encryption-key-file {}: no such file", key_file);
  }
  if (o_cipher->count()) spec.cipher_mode = NormalizeCipherMode(cipher);
  if (o_block->count()) spec.block_compressor = flags.block_compressor;
  if (o_journal->count()) spec.journal_compressor = flags.journal_compressor;
  if (o_bi->count()) spec.backoff.initial = Millis{backoff_initial};
  if (o_bm->count()) spec.backoff.max = Millis{backoff_max};
  if (o_br->count()) spec.backoff.reset_after = Millis{backoff_reset};
  if (spec.backoff.initial > spec.backoff.max)
    Fail("--backoff-initial-ms {} is larger than --backoff-max-ms {}", spec.backoff.initial.count(),
         spec.backoff.max.count());
  if (o_args->count()) spec.mongod_args = mongod_args;

  UpOptions opts;
  opts.detach = detach;
  opts.grace = Millis{grace_ms};
  opts.start_timeout = Millis{int64_t{start_timeout_s} * 1000};
  return Up(spec, opts);
}

}  // namespace
}  // namespace devcluster

int main(int argc, char** argv) {
  try {
    return devcluster::Main(argc, argv);
  } catch (const std::exception& e) {
    std::cerr << e.what() << "\n";
    return 1;
  }
}
