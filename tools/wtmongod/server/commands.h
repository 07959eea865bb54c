// The command layer: one handler per mongod command, with mongod's reply shapes and error codes.
#pragma once

#include <functional>

#include "common/doc.h"
#include "wire/message.h"
#include "wire/server.h"

namespace wtm {

class Node;

// Runs one command request and returns the reply ({ok: 1, ...} or {ok: 0, errmsg, code,
// codeName}). `request_shutdown` is called by the shutdown command.
Doc RunCommand(Node& node, const wire::Request& req, const wire::Connection& conn,
               const std::function<void()>& request_shutdown);

// Number of client connections, for serverStatus (set by the server main loop).
void SetConnectionCounter(std::function<size_t()> fn);

}  // namespace wtm
