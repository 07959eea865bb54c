#include "control/priority.h"

#include <cstdlib>
#include <set>

#include "common/error.h"

namespace pbm::control {

BackupPriorities ParseBackupPriorities(const Json& config) {
  BackupPriorities out;
  if (!config.is_object() || !config.contains("backup") || !config["backup"].is_object() ||
      !config["backup"].contains("priority") || config["backup"]["priority"].is_null()) {
    return out;
  }
  const Json& p = config["backup"]["priority"];
  if (!p.is_object()) {
    Fail(ErrorKind::kInvalidArgument,
         "backup.priority must be a map of \"host:port\": priority (e.g. \"db-1:27017\": 2.0)");
  }
  for (const auto& [node, v] : p.items()) {
    auto colon = node.rfind(':');
    if (node.empty() || colon == std::string::npos || colon == 0 || colon + 1 == node.size()) {
      Fail(ErrorKind::kInvalidArgument, "backup.priority: '{}' is not a host:port", node);
    }
    // YAML scalars may arrive as strings (the config file converts to JSON untyped).
    double d = 0;
    bool ok = v.is_number();
    if (ok) {
      d = v.get<double>();
    } else if (v.is_string()) {
      const std::string& str = v.get_ref<const std::string&>();
      char* end = nullptr;
      d = std::strtod(str.c_str(), &end);
      ok = !str.empty() && end == str.c_str() + str.size();
    }
    if (!ok || !(d > 0)) {
      Fail(ErrorKind::kInvalidArgument,
           "backup.priority of {} must be a number greater than 0 (got {}); to keep a node from "
           "making backups, give the others a higher priority",
           node, v.is_string() ? v.get<std::string>() : v.dump());
    }
    out[node] = d;
  }
  return out;
}

double BackupPriority(const BackupPriorities& prio, const AgentStatus& a) {
  if (!prio.empty()) {
    auto it = prio.find(a.node);
    return it == prio.end() ? 1.0 : it->second;
  }
  if (a.state == "PRIMARY") return 0.5;
  return a.hidden ? 2.0 : 1.0;
}

int BackupPriorityRank(const BackupPriorities& prio, const std::vector<AgentStatus>& agents,
                       const std::string& replset, double me, int64_t now) {
  std::set<double> higher;
  for (const auto& a : agents) {
    if (a.replset != replset || !a.healthy(now)) continue;
    if (a.state != "PRIMARY" && a.state != "SECONDARY") continue;
    double p = BackupPriority(prio, a);
    if (p > me) higher.insert(p);
  }
  return static_cast<int>(higher.size());
}

}  // namespace pbm::control
