#include "control/connect.h"

#include <cstdlib>

namespace pbm::control {

std::string ResolveMongoUri(const std::string& flag_value) {
  if (!flag_value.empty()) return flag_value;
  const char* env = std::getenv("PBM_MONGODB_URI");
  if (env && *env) return env;
  Fail(ErrorKind::kInvalidArgument,
       "no MongoDB connection: pass --mongodb-uri or set PBM_MONGODB_URI "
       "(e.g. mongodb://127.0.0.1:27017/?replicaSet=rs0)");
}

std::string ClusterUri(const mongo::Client& node, const std::string& node_uri) {
  mongo::Json hello = node.RunCommand("admin", {{"hello", 1}});
  std::string set = hello.value("setName", std::string());
  if (set.empty()) {
    Fail(ErrorKind::kInvalidArgument,
         "the node at {} is not a replica set member (no setName); pbm needs a replica set",
         node.redacted_uri());
  }
  std::string hosts;
  for (const auto& h : hello.value("hosts", mongo::Json::array())) {
    if (!hosts.empty()) hosts += ",";
    hosts += h.get<std::string>();
  }
  // Keep user info (credentials) from the node URI; replace hosts and options.
  std::string userinfo;
  auto scheme = node_uri.find("://");
  auto at = node_uri.find('@');
  auto slash = node_uri.find('/', scheme == std::string::npos ? 0 : scheme + 3);
  if (scheme != std::string::npos && at != std::string::npos && (slash == std::string::npos || at < slash)) {
    userinfo = node_uri.substr(scheme + 3, at - scheme - 2);
  }
  return "mongodb://" + userinfo + hosts + "/?replicaSet=" + set;
}

std::unique_ptr<mongo::Client> ConnectCluster(const mongo::Client& node, const std::string& node_uri) {
  return std::make_unique<mongo::Client>(ClusterUri(node, node_uri));
}

}  // namespace pbm::control
