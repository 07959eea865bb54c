// The mongod processes of a restore: the temporary mongod that a node restore starts from the
// agent's own image on localhost and a free port, and the checks that the node's own mongod is
// down (its mongod.lock empty or absent and not flock-ed by any process).
//
// Thread safety: a MongodProcess is used by one thread at a time. The free functions are
// thread-safe.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "mongo/client.h"

namespace pbm::restore {

// A TCP port on 127.0.0.1 that was free a moment ago (the kernel's choice for port 0).
// Throws kIo if no socket can be bound.
int FreeLocalPort();

// The state of mongod.lock in a dbpath.
enum class LockState {
  kFree,   // absent, or empty and not locked: mongod is down after a clean shutdown
  kHeld,   // some process holds its flock: a mongod is running on the dbpath
  kDirty,  // not locked but not empty (holds a pid): the last mongod did not shut down cleanly
};
// Probes mongod.lock with a non-blocking flock that is released at once. Throws kIo if the file
// exists but cannot be opened.
LockState MongodLockState(const std::string& dbpath);

// Waits until MongodLockState(dbpath) is kFree (or, with allow_dirty, not kHeld). Throws
// kTimeout naming the dbpath and the lock's state (and the pid it holds) when the timeout passes.
void WaitMongodLockFree(const std::string& dbpath, std::chrono::milliseconds timeout,
                        bool allow_dirty = false);

// One mongod child process: started with Start(), stopped with Shutdown() or Kill().
// The child gets SIGKILL if the thread that started it dies (PR_SET_PDEATHSIG), so a killed
// agent never leaves a temporary mongod running on a half-restored dbpath; call Start() and
// Shutdown() from the same long-lived thread.
class MongodProcess {
 public:
  struct Options {
    std::string binary;  // the mongod executable
    std::string dbpath;
    int port = 0;  // 0: choose_port(), tried again (up to 5 times) when another process has it
    std::function<int()> choose_port = FreeLocalPort;
    std::vector<std::string> args;  // more arguments (storage, security, --setParameter ...)
    std::string logpath;            // --logpath; stdout and stderr go to <logpath>.stderr
    std::chrono::milliseconds start_timeout{std::chrono::seconds(120)};
    std::chrono::milliseconds stop_timeout{std::chrono::seconds(120)};
  };

  explicit MongodProcess(Options options);
  // Kills (SIGKILL) and reaps a child that is still running.
  ~MongodProcess();
  MongodProcess(const MongodProcess&) = delete;
  MongodProcess& operator=(const MongodProcess&) = delete;

  // Starts `binary --dbpath D --port P --bind_ip 127.0.0.1 --logpath L --logappend args...`
  // and waits until it answers ping as our child (another process may have taken the free
  // port first: then another port is tried, up to 5). Throws kUnavailable
  // (it exited: the message has its exit status and the last lines of its log; or the port
  // stayed taken) or kTimeout; the child is then gone.
  void Start();

  // A client of the running mongod (direct connection to 127.0.0.1:port). Valid until Shutdown.
  const mongo::Client& client();

  // {shutdown: 1, force: true}, then waits for the process to exit (SIGKILL after
  // stop_timeout → kTimeout) and for mongod.lock to be empty. Throws kInternal if it exited with
  // a non-zero status (with the log's last lines). No-op if not running.
  void Shutdown();

  // SIGKILL and reap; no-op if not running.
  void Kill();

  bool running() const { return pid_ > 0; }
  pid_t pid() const { return pid_; }
  int port() const { return port_; }
  // The last `lines` lines of the log and of the captured stderr, for error messages.
  std::string LogTail(int lines = 8) const;

 private:
  // One start on port_: "" once it answers, else what is wrong with the port (another process
  // answers there, or our child could not listen; the child is gone then).
  std::string StartOnce();
  // Whether the mongod behind `c` is our child (its pid, or our dbpath; false if it refuses
  // serverStatus or getCmdLineOpts); throws what the client throws when it could not ask.
  bool IsOurs(const mongo::Client& c) const;
  // Reaps the child if it exited; returns true (with the status in *status) if so.
  bool Reap(int* status, bool block);

  Options options_;
  int port_ = 0;
  pid_t pid_ = -1;
  std::unique_ptr<mongo::Client> client_;
};

}  // namespace pbm::restore
