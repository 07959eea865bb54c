#include "server/main.h"

#include <mongoc/mongoc.h>
#include <signal.h>

#include <condition_variable>
#include <cstdio>
#include <iostream>
#include <mutex>
#include <thread>

#include "auth/security_file.h"
#include "common/error.h"
#include "common/log.h"
#include "server/commands.h"
#include "server/node.h"
#include "server/options.h"
#include "server/repl.h"
#include "wire/server.h"

namespace wtm {
namespace {

std::mutex g_mu;
std::condition_variable g_cv;
bool g_shutdown = false;

void RequestShutdown() {
  {
    std::lock_guard<std::mutex> l(g_mu);
    g_shutdown = true;
  }
  g_cv.notify_all();
}

// Exit codes as mongod's: 48 network error, 100 uncaught storage/data error.
constexpr int kExitFailure = 1;
constexpr int kExitNetError = 48;
constexpr int kExitDataError = 100;

}  // namespace

int ServerMain(int argc, char** argv) {
  ParseOutcome outcome = ParseServerOptions(argc, argv);
  if (outcome.action == ParseOutcome::Action::kPrintAndExit) {
    std::cout << outcome.message << std::flush;
    return outcome.exit_code;
  }
  if (outcome.action == ParseOutcome::Action::kError) {
    std::cerr << outcome.message << std::flush;
    return outcome.exit_code;
  }
  const ServerOptions& opts = outcome.options;
  InitLog(opts.logpath, opts.log_append);

  // Signals are taken by one thread with sigwait; every other thread has them blocked.
  sigset_t sigs;
  sigemptyset(&sigs);
  sigaddset(&sigs, SIGTERM);
  sigaddset(&sigs, SIGINT);
  sigaddset(&sigs, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &sigs, nullptr);
  signal(SIGPIPE, SIG_IGN);

  Log(Severity::kInfo, "CONTROL", "MongoDB starting",
      "{\"pid\":" + std::to_string(getpid()) + ",\"port\":" + std::to_string(opts.port) +
          ",\"dbPath\":" + JsonQuote(opts.dbpath) + ",\"version\":" + JsonQuote(kServerVersion) + "}");
  // The key file is read before anything else starts, as mongod does; a file mongod would refuse
  // stops the process with mongod's two log lines and exit code 1.
  std::vector<std::string> internal_keys;
  if (!opts.key_file.empty()) {
    try {
      internal_keys = auth::ReadSecurityFile(opts.key_file);
    } catch (const auth::SecurityFileError& e) {
      Log(Severity::kInfo, "ACCESS", "Read security file failed",
          "{\"error\":{\"code\":" + std::to_string(e.code()) +
              ",\"codeName\":" + JsonQuote(CodeName(static_cast<ErrorCode>(e.code()))) +
              ",\"errmsg\":" + JsonQuote(e.what()) + "}}");
      Log(Severity::kFatal, "CONTROL", "Error creating service context",
          "{\"error\":\"Location5579201: Unable to acquire security key[s]\"}");
      std::cerr << "wtmongod: " << e.what() << "\n"
                << "wtmongod: Location5579201: Unable to acquire security key[s]" << std::endl;
      return kExitFailure;
    }
  }
  mongoc_init();
  auto node = std::make_unique<Node>(opts);
  node->set_internal_keys(std::move(internal_keys));
  try {
    node->Startup();
  } catch (const std::exception& e) {
    Log(Severity::kFatal, "STORAGE", "Fatal error during startup", "{\"error\":" + JsonQuote(e.what()) + "}");
    std::cerr << "wtmongod: " << e.what() << std::endl;
    node.reset();
    mongoc_cleanup();
    return kExitDataError;
  }

  Node* np = node.get();
  wire::Server server(opts.bind_ip, opts.port, [np](const wire::Request& req, const wire::Connection& conn) {
    if (req.legacy) {
      // mongod 6.0 answers only the handshake over OP_QUERY.
      bson_iter_t it;
      std::string name;
      if (bson_iter_init(&it, req.body.get()) && bson_iter_next(&it)) name = bson_iter_key(&it);
      if (name != "isMaster" && name != "ismaster" && name != "hello") {
        throw MongoError(352, "Unsupported OP_QUERY command: " + name +
                                  ". The client driver may require an upgrade.");
      }
    }
    return RunCommand(*np, req, conn, RequestShutdown);
  });
  SetConnectionCounter([&server] { return server.open_connections(); });
  try {
    server.Start();
  } catch (const std::exception& e) {
    Log(Severity::kFatal, "NETWORK", "Failed to set up listener", "{\"error\":" + JsonQuote(e.what()) + "}");
    std::cerr << "wtmongod: " << e.what() << std::endl;
    node->Shutdown();
    mongoc_cleanup();
    return kExitNetError;
  }
  Log(Severity::kInfo, "NETWORK", "Waiting for connections",
      "{\"port\":" + std::to_string(server.port()) + ",\"ssl\":\"off\"}");

  std::thread signal_thread([&sigs] {
    SetThreadName("signalProcessingThread");
    int sig = 0;
    while (sigwait(&sigs, &sig) == 0) {
      if (sig == SIGHUP) continue;  // log rotation is not supported; ignore
      Log(Severity::kInfo, "CONTROL", "Received signal",
          "{\"signal\":" + std::to_string(sig) + ",\"error\":" + JsonQuote(strsignal(sig)) + "}");
      RequestShutdown();
      return;
    }
  });
  {
    std::unique_lock<std::mutex> l(g_mu);
    g_cv.wait(l, [] { return g_shutdown; });
  }
  Log(Severity::kInfo, "CONTROL", "Shutting down", "{}");
  // Give the shutdown command's reply a moment to leave.
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  node->repl().Shutdown();
  server.Stop();
  node->Shutdown();
  node.reset();
  mongoc_cleanup();
  Log(Severity::kInfo, "CONTROL", "Now exiting", "{}");
  // Wake the signal thread if it is still waiting, then leave.
  pthread_kill(signal_thread.native_handle(), SIGTERM);
  signal_thread.join();
  return 0;
}

}  // namespace wtm
