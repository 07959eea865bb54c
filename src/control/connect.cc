#include "control/connect.h"

#include <cctype>

#include <cstdlib>

namespace pbm::control {

std::string WithCredentials(const std::string& uri, const std::string& user,
                            const std::string& password) {
  const std::string scheme = "mongodb://";
  if (user.empty() || uri.rfind(scheme, 0) != 0) return uri;
  size_t hosts_end = uri.find_first_of("/?", scheme.size());
  if (uri.substr(scheme.size(), hosts_end - scheme.size()).find('@') != std::string::npos) {
    return uri;  // the URI names its own user
  }
  // RFC 3986 userinfo: everything but unreserved characters is percent-encoded.
  auto escape = [](const std::string& s) {
    std::string out;
    for (unsigned char ch : s) {
      if (std::isalnum(ch) || ch == '-' || ch == '.' || ch == '_' || ch == '~') {
        out.push_back(static_cast<char>(ch));
      } else {
        out += fmt::format("%{:02X}", ch);
      }
    }
    return out;
  };
  return scheme + escape(user) + ":" + escape(password) + "@" + uri.substr(scheme.size());
}

std::string ResolveMongoUri(const std::string& flag_value) {
  std::string uri = flag_value;
  if (uri.empty()) {
    const char* env = std::getenv("PBM_MONGODB_URI");
    if (env && *env) uri = env;
  }
  if (uri.empty()) {
    Fail(ErrorKind::kInvalidArgument,
         "no MongoDB connection: pass --mongodb-uri or set PBM_MONGODB_URI "
         "(e.g. mongodb://127.0.0.1:27017/?replicaSet=rs0)");
  }
  // On Kubernetes the credentials arrive from a Secret as their own variables, never in the URI
  // or in arguments.
  const char* user = std::getenv("PBM_AGENT_MONGODB_USERNAME");
  const char* password = std::getenv("PBM_AGENT_MONGODB_PASSWORD");
  return WithCredentials(uri, user ? user : "", password ? password : "");
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
