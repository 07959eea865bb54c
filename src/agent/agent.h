// pbm-agent: runs beside one mongod (same pod, same data volume). Heartbeats into the control
// plane, polls the command queue, takes the replset lock and runs backups (and, later,
// restores) on its own node.
#pragma once

#include <atomic>
#include <string>

namespace pbm::agent {

struct AgentOptions {
  std::string mongodb_uri;        // the node beside it (directConnection)
  std::string mongod_path;        // its own mongod binary (restores): flag, else PATH, else wtmongod
  std::string dbpath;             // the node's data volume as mounted in the agent (restores)
  std::string encryption_key_file;  // where the node's key file is mounted ("" = the node's path)
  int parallel = 4;               // files copied at once
  int poll_ms = 100;
  int heartbeat_secs = 5;
  // Backup election: each priority tier below the highest waits this much longer before
  // competing for the lock (see control/priority.h), so that a higher-priority member takes it.
  int priority_step_secs = 5;
};

// The mongod binary for restores: `flag`, else `mongod` on PATH, else `wtmongod` beside this
// program; throws kNotFound naming what was tried.
std::string ResolveMongodPath(const std::string& flag);

// Runs until `stop` becomes true. Throws only for bad options; connection trouble is logged
// and retried.
void RunAgent(const AgentOptions& opts, const std::atomic<bool>& stop);

}  // namespace pbm::agent
