// How the programs reach MongoDB: --mongodb-uri or PBM_MONGODB_URI, as PBM's.
#pragma once

#include <memory>
#include <string>

#include "mongo/client.h"

namespace pbm::control {

// The URI from the flag, else $PBM_MONGODB_URI; throws kInvalidArgument naming both when unset.
std::string ResolveMongoUri(const std::string& flag_value);
// `uri` with user:password (percent-encoded) as its userinfo, unless it names a user already or
// `user` is empty. (PBM_AGENT_MONGODB_USERNAME / _PASSWORD, as the operator's pods set them.)
std::string WithCredentials(const std::string& uri, const std::string& user,
                            const std::string& password);

// The URI of the whole replica set the node at `node` belongs to, from the node's hello (setName,
// hosts) and the original URI's credentials.
std::string ClusterUri(const mongo::Client& node, const std::string& node_uri);

// A connection to the whole replica set the node at `node` belongs to (its primary for writes),
// built from the node's hello (setName, hosts) and the original URI's credentials and options.
std::unique_ptr<mongo::Client> ConnectCluster(const mongo::Client& node, const std::string& node_uri);

}  // namespace pbm::control
