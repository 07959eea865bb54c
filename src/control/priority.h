// Which member of a replset makes a backup, as PBM chooses it: every agent with a healthy
// PRIMARY or SECONDARY node may take the replset's lock, and agents of a lower priority tier wait
// a while first so that a higher one takes it. Priorities come from the config
// (`backup.priority: {"host:port": 2.5, ...}`, numbers > 0; members not listed get 1.0), else
// PBM's defaults: hidden secondary 2.0, secondary 1.0, primary 0.5.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "control/control.h"

namespace pbm::control {

using BackupPriorities = std::map<std::string, double>;

// The `backup.priority` map of a config (the whole config document); empty when not set.
// Throws kInvalidArgument, naming the entry, unless it is an object of "host:port" → number > 0.
BackupPriorities ParseBackupPriorities(const Json& config);

// The priority of agent `a` under `prio` (the defaults when `prio` is empty).
double BackupPriority(const BackupPriorities& prio, const AgentStatus& a);

// How many distinct priority tiers of healthy (at `now`) PRIMARY/SECONDARY agents of `replset`
// rank above `me` (its priority given): 0 means `me` competes for the lock at once. `me` need not
// be among `agents`.
int BackupPriorityRank(const BackupPriorities& prio, const std::vector<AgentStatus>& agents,
                       const std::string& replset, double me, int64_t now);

}  // namespace pbm::control
