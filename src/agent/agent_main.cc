// pbm-agent: the backup agent beside each mongod.
#include <CLI/CLI.hpp>
#include <signal.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <cstdlib>
#include <iostream>
#include <thread>

#include "agent/agent.h"
#include "common/error.h"
#include "control/connect.h"

namespace {
std::atomic<bool> g_stop{false};
void OnSignal(int) { g_stop = true; }
}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"pbm-agent: runs backups and restores of the mongod beside it"};
  pbm::agent::AgentOptions o;
  std::string uri;
  app.add_option("--mongodb-uri", uri, "connection to the node beside the agent (or PBM_MONGODB_URI)");
  app.add_option("--mongod-path", o.mongod_path, "mongod binary for restores (default: mongod on PATH)");
  app.add_option("--dbpath", o.dbpath, "the node's data volume as mounted here (or PBM_DBPATH)");
  app.add_option("--encryption-key-file", o.encryption_key_file,
                 "the node's encryption key file as mounted in the agent (default: the node's path)");
  app.add_option("--parallel", o.parallel, "files copied at once")->check(CLI::Range(1, 64));
  app.add_option("--priority-step", o.priority_step_secs,
                 "seconds each backup priority tier waits for the tier above it to take a backup")
      ->check(CLI::Range(0, 600));
  CLI11_PARSE(app, argc, argv);
  auto env = [](const char* k) { const char* v = std::getenv(k); return std::string(v ? v : ""); };
  if (o.dbpath.empty()) o.dbpath = env("PBM_DBPATH");
  if (o.mongod_path.empty()) o.mongod_path = env("PBM_MONGOD_PATH");
  if (o.encryption_key_file.empty()) o.encryption_key_file = env("PBM_ENCRYPTION_KEY_FILE");
  try {
    o.mongodb_uri = pbm::control::ResolveMongoUri(uri);
  } catch (const pbm::Error& e) {
    std::cerr << "Error: " << e.what() << std::endl;
    return 1;
  }
  signal(SIGTERM, OnSignal);
  signal(SIGINT, OnSignal);
  signal(SIGPIPE, SIG_IGN);
  try {
    pbm::agent::RunAgent(o, g_stop);
  } catch (const pbm::Error& e) {
    std::cerr << "Error: " << e.what() << std::endl;
    return 1;
  }
  return 0;
}
