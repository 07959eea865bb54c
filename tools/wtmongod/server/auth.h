// Authentication as mongod does it: SCRAM over saslStart/saslContinue (and speculatively inside
// hello), users and roles stored in admin.system.users / admin.system.roles (replicated like any
// other write), the user-management commands, the check that refuses commands to
// unauthenticated clients when authorization is on, mongod's localhost exception, and the
// __system@local user of internal (key-file) authentication.
//
// Authorization is all or nothing: an authenticated user may run every command, whatever its
// roles (roles are stored and reported, not enforced).
#pragma once

#include <functional>
#include <map>
#include <optional>
#include <string>

#include "common/doc.h"
#include "wire/message.h"
#include "wire/server.h"

namespace wtm {

class Node;

inline constexpr const char* kUsersNs = "admin.system.users";
inline constexpr const char* kRolesNs = "admin.system.roles";
inline constexpr const char* kInternalUser = "__system";
inline constexpr const char* kInternalDb = "local";

// A user-management or authentication command; `conn` is the client's connection.
using AuthHandler =
    std::function<Doc(Node&, const wire::Request&, const bson_t*, const wire::Connection&)>;

// saslStart, saslContinue, logout, connectionStatus, authenticate, createUser, updateUser,
// dropUser, dropAllUsersFromDatabase, usersInfo, grantRolesToUser, revokeRolesFromUser,
// createRole, updateRole, dropRole, rolesInfo.
const std::map<std::string, AuthHandler>& AuthCommands();

// Adds what hello/isMaster answers about authentication: saslSupportedMechs (when the command
// names a user as "<db>.<user>") and speculativeAuthenticate (the reply to an embedded
// saslStart; left out when that step fails, as mongod does).
void AppendHelloAuthFields(Node& node, const wire::Connection& conn, const bson_t* cmd,
                           bson_t* reply);

// Throws MongoError(Unauthorized) when `conn` may not run command `name`: with authorization
// enabled (--auth or a key file) an unauthenticated client may run only the handshake and
// authentication commands ("Command <name> requires authentication"), except, while no user or
// role exists, a client on a loopback address may also create the first user in admin (granting
// admin roles) and run replSetInitiate / replSetReconfig / replSetGetStatus (mongod's localhost
// exception); anything else it tries is "not authorized on <db> to execute command {...}".
void CheckAuthorized(Node& node, const wire::Connection& conn, const wire::Request& req,
                     const std::string& name);

// The users and roles that a connection is authenticated as (empty when none).
std::optional<std::pair<std::string, std::string>> AuthenticatedUser(const wire::Connection& conn);

}  // namespace wtm
