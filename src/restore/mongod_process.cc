// Process control is hand-written over fork/exec/waitpid: no library we depend on spawns and
// supervises a child (Boost.Process is not among them), and we need PR_SET_PDEATHSIG.
#include "restore/mongod_process.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <deque>
#include <filesystem>
#include <fstream>
#include <thread>

#include "common/error.h"

namespace pbm::restore {
namespace {

using Clock = std::chrono::steady_clock;

constexpr int kExitNetError = 48;  // mongod's exit code when it cannot listen on its port

bool CanConnect(int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  ::close(fd);
  return ok;
}

std::string Tail(const std::string& path, int lines) {
  std::ifstream in(path);
  if (!in) return "";
  std::deque<std::string> last;
  std::string line;
  while (std::getline(in, line)) {
    last.push_back(line);
    if (static_cast<int>(last.size()) > lines) last.pop_front();
  }
  std::string out;
  for (const auto& l : last) out += (out.empty() ? "" : "\n") + l;
  return out;
}

std::string DescribeStatus(int status) {
  if (WIFEXITED(status)) return fmt::format("exit code {}", WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return fmt::format("signal {}", WTERMSIG(status));
  return fmt::format("status {}", status);
}

std::string ReadSmall(const std::string& path) {
  std::ifstream in(path);
  std::string s((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

}  // namespace

int FreeLocalPort() {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) FailErrno("pick a free port: socket", errno);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = 0;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
    int e = errno;
    ::close(fd);
    FailErrno("pick a free port on 127.0.0.1", e);
  }
  ::close(fd);
  return ntohs(a.sin_port);
}

LockState MongodLockState(const std::string& dbpath) {
  std::string lock = dbpath + "/mongod.lock";
  int fd = ::open(lock.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return LockState::kFree;
    FailErrno("open " + lock, errno);
  }
  LockState state;
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    state = LockState::kHeld;  // EWOULDBLOCK: a process holds it
  } else {
    struct stat st;
    state = ::fstat(fd, &st) == 0 && st.st_size > 0 ? LockState::kDirty : LockState::kFree;
    ::flock(fd, LOCK_UN);
  }
  ::close(fd);
  return state;
}

void WaitMongodLockFree(const std::string& dbpath, std::chrono::milliseconds timeout,
                        bool allow_dirty) {
  auto deadline = Clock::now() + timeout;
  while (true) {
    LockState s = MongodLockState(dbpath);
    if (s == LockState::kFree || (allow_dirty && s == LockState::kDirty)) return;
    if (Clock::now() >= deadline) {
      std::string pid = ReadSmall(dbpath + "/mongod.lock");
      long secs =
          static_cast<long>(std::chrono::duration_cast<std::chrono::seconds>(timeout).count());
      if (s == LockState::kHeld) {
        Fail(ErrorKind::kTimeout,
             "wait for mongod on {} to stop: a process{} still holds mongod.lock after {} s",
             dbpath, pid.empty() ? "" : " (pid " + pid + ")", secs);
      }
      Fail(ErrorKind::kTimeout,
           "wait for mongod on {} to stop: mongod.lock still holds pid {} after {} s but no "
           "process locks it: that mongod did not shut down cleanly; start it and shut it down "
           "cleanly first",
           dbpath, pid, secs);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

MongodProcess::MongodProcess(Options options) : options_(std::move(options)) {}

MongodProcess::~MongodProcess() { Kill(); }

std::string MongodProcess::LogTail(int lines) const {
  std::string log = Tail(options_.logpath, lines);
  std::string err = Tail(options_.logpath + ".stderr", lines);
  if (!err.empty()) log += (log.empty() ? "" : "\n") + err;
  return log;
}

bool MongodProcess::Reap(int* status, bool block) {
  if (pid_ <= 0) return false;
  while (true) {
    pid_t r = ::waitpid(pid_, status, block ? 0 : WNOHANG);
    if (r == pid_) {
      pid_ = -1;
      return true;
    }
    if (r == 0) return false;
    if (errno == EINTR) continue;
    pid_ = -1;  // ECHILD: someone else reaped it
    *status = 0;
    return true;
  }
}

void MongodProcess::Start() {
  if (running()) Fail(ErrorKind::kInternal, "mongod on {} is already running", options_.dbpath);
  // A port the kernel called free may be taken by the time our mongod binds it (other agents
  // on this host start temporary mongods too; bind to port 0 hands one port out twice): our
  // child then fails to bind while the other process answers on the port. StartOnce tells the
  // two apart (IsOurs), and a free port is tried again.
  constexpr int kAttempts = 5;
  for (int attempt = 1;; ++attempt) {
    port_ = options_.port ? options_.port : options_.choose_port();
    std::string port_problem = StartOnce();
    if (port_problem.empty()) return;
    if (options_.port || attempt == kAttempts) {
      Fail(ErrorKind::kUnavailable, "temporary mongod on {}: {} ({} port{} tried); {}",
           options_.dbpath, port_problem, attempt, attempt == 1 ? "" : "s",
           options_.port ? "choose a free port"
                         : "free ports on this host are taken as fast as they are found: retry "
                           "the restore");
    }
  }
}

bool MongodProcess::IsOurs(const mongo::Client& c) const {
  // Our child's pid; or, if the binary is a wrapper that forked it, our dbpath (only when
  // absolute: a relative one is relative to that process's directory, not ours). A server that
  // refuses the commands (one that wants authentication, say) is not the mongod we started;
  // any other failure (a timeout under load) is retried by the caller.
  std::string dbpath;
  try {
    mongo::Json status = c.RunCommand("admin", {{"serverStatus", 1}});
    auto pid = status.find("pid");
    if (pid != status.end() && pid->is_number_integer() && pid->get<int64_t>() == pid_) {
      return true;
    }
    mongo::Json opts = c.RunCommand("admin", {{"getCmdLineOpts", 1}});
    const mongo::Json::json_pointer at("/parsed/storage/dbPath");
    if (opts.contains(at) && opts[at].is_string()) dbpath = opts[at].get<std::string>();
  } catch (const mongo::CommandError&) {
    return false;
  }
  std::error_code ec;
  return !dbpath.empty() && dbpath[0] == '/' &&
         std::filesystem::equivalent(dbpath, options_.dbpath, ec) && !ec;
}

std::string MongodProcess::StartOnce() {
  std::vector<std::string> argv = {
      options_.binary, "--dbpath",  options_.dbpath, "--port",         std::to_string(port_),
      "--bind_ip",     "127.0.0.1", "--logpath",     options_.logpath, "--logappend"};
  argv.insert(argv.end(), options_.args.begin(), options_.args.end());
  std::vector<char*> cargv;
  for (auto& a : argv) cargv.push_back(a.data());
  cargv.push_back(nullptr);
  std::string err_path = options_.logpath + ".stderr";
  int errfd = ::open(err_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (errfd < 0) FailErrno("open " + err_path, errno);
  pid_t parent = ::getpid();
  pid_t pid = ::fork();
  if (pid < 0) {
    int e = errno;
    ::close(errfd);
    FailErrno("start mongod: fork", e);
  }
  if (pid == 0) {
    // Only async-signal-safe calls from here to exec.
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(127);
    int nullfd = ::open("/dev/null", O_RDONLY);
    if (nullfd >= 0) ::dup2(nullfd, 0);
    ::dup2(errfd, 1);
    ::dup2(errfd, 2);
    ::execv(cargv[0], cargv.data());
    const char msg[] = "exec of mongod failed\n";
    ssize_t ignored = ::write(2, msg, sizeof msg - 1);
    (void)ignored;
    ::_exit(127);
  }
  ::close(errfd);
  pid_ = pid;
  auto deadline = Clock::now() + options_.start_timeout;
  std::string last_error;
  while (true) {
    int status = 0;
    if (Reap(&status, false)) {
      // mongod's exit code when it cannot listen (EXIT_NET_ERROR): the port was taken, most
      // likely; the log says.
      if (WIFEXITED(status) && WEXITSTATUS(status) == kExitNetError) {
        return fmt::format("it could not listen on 127.0.0.1:{}: {}", port_, LogTail(3));
      }
      Fail(ErrorKind::kUnavailable, "temporary mongod on {} exited at startup ({}): {}",
           options_.dbpath, DescribeStatus(status), LogTail());
    }
    if (CanConnect(port_)) {
      try {
        auto c = std::make_unique<mongo::Client>(
            fmt::format("mongodb://127.0.0.1:{}/?directConnection=true", port_), 5000);
        c->RunCommand("admin", {{"ping", 1}});
        if (!IsOurs(*c)) {
          // Ours cannot bind the port and exits on its own (mongod binds after opening its
          // storage: it is not cut off in the middle of a recovery); SIGKILL if it does not.
          auto exit_deadline = Clock::now() + std::chrono::seconds(30);
          while (!Reap(&status, false) && Clock::now() < exit_deadline) {
            std::this_thread::sleep_for(std::chrono::milliseconds(30));
          }
          Kill();
          return fmt::format("another process answers on 127.0.0.1:{}", port_);
        }
        client_ = std::move(c);
        return "";
      } catch (const Error& e) {
        last_error = e.what();
      }
    }
    if (Clock::now() >= deadline) {
      Kill();
      Fail(ErrorKind::kTimeout, "temporary mongod on {} did not answer on port {} within {} s{}{}",
           options_.dbpath, port_,
           std::chrono::duration_cast<std::chrono::seconds>(options_.start_timeout).count(),
           last_error.empty() ? "" : ": " + last_error, "\n" + LogTail());
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(30));
  }
}

const mongo::Client& MongodProcess::client() {
  if (!client_) Fail(ErrorKind::kInternal, "mongod on {} is not running", options_.dbpath);
  return *client_;
}

void MongodProcess::Shutdown() {
  if (!running()) return;
  if (client_) {
    try {
      client_->RunCommand("admin", {{"shutdown", 1}, {"force", true}});
    } catch (const Error&) {
      // The connection drops as the server exits: expected.
    }
    client_.reset();
  } else {
    ::kill(pid_, SIGTERM);
  }
  auto deadline = Clock::now() + options_.stop_timeout;
  int status = 0;
  while (!Reap(&status, false)) {
    if (Clock::now() >= deadline) {
      std::string tail = LogTail();
      Kill();
      Fail(ErrorKind::kTimeout, "temporary mongod on {} did not stop within {} s: {}",
           options_.dbpath,
           std::chrono::duration_cast<std::chrono::seconds>(options_.stop_timeout).count(), tail);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    Fail(ErrorKind::kInternal, "temporary mongod on {} stopped with {}: {}", options_.dbpath,
         DescribeStatus(status), LogTail());
  }
  WaitMongodLockFree(options_.dbpath, options_.stop_timeout);
}

void MongodProcess::Kill() {
  client_.reset();
  if (!running()) return;
  ::kill(pid_, SIGKILL);
  int status = 0;
  Reap(&status, true);
}

}  // namespace pbm::restore
