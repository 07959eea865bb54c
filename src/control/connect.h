// How the programs reach MongoDB: --mongodb-uri or PBM_MONGODB_URI, as PBM's.
#pragma once

#include <memory>
#include <string>

#include "mongo/client.h"

namespace pbm::control {

// The URI from the flag, else $PBM_MONGODB_URI; throws kInvalidArgument naming both when unset.
std::string ResolveMongoUri(const std::string& flag_value);

// The URI of the whole replica set the node at `node` belongs to, from the node's hello (setName,
// hosts) and the original URI's credentials.
std::string ClusterUri(const mongo::Client& node, const std::string& node_uri);

// A connection to the whole replica set the node at `node` belongs to (its primary for writes),
// built from the node's hello (setName, hosts) and the original URI's credentials and options.
std::unique_ptr<mongo::Client> ConnectCluster(const mongo::Client& node, const std::string& node_uri);

}  // namespace pbm::control
