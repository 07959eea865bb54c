// wtmongod entry point; the server lives in server/.
#include "server/main.h"

int main(int argc, char** argv) { return wtm::ServerMain(argc, argv); }
