// wtmongod's main: options, logging, the node, the wire server, signals and shutdown.
#pragma once

namespace wtm {

int ServerMain(int argc, char** argv);

}  // namespace wtm
