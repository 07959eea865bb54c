#include "supervisor.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <map>
#include <set>

extern char** environ;

namespace devcluster {
namespace {

using Clock = std::chrono::steady_clock;

Millis Since(Clock::time_point t) { return std::chrono::duration_cast<Millis>(Clock::now() - t); }

sigset_t SupervisorSignals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGCHLD);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGHUP);
  return set;
}

std::string SignalName(int sig) {
  const char* abbrev = sigabbrev_np(sig);
  return abbrev ? abbrev : std::to_string(sig);
}

// What the child reports through the close-on-exec pipe when it cannot exec.
struct ChildFailure {
  int stage;  // 0: chdir, 1: exec
  int err;
};

// Environment for the child: the supervisor's, with `overrides` ("KEY=VALUE") replacing or adding.
std::vector<std::string> MergeEnv(const std::vector<std::string>& overrides) {
  std::set<std::string> keys;
  for (const std::string& kv : overrides) keys.insert(kv.substr(0, kv.find('=')));
  std::vector<std::string> out;
  for (char** e = environ; e && *e; ++e) {
    std::string kv = *e;
    if (!keys.count(kv.substr(0, kv.find('=')))) out.push_back(kv);
  }
  out.insert(out.end(), overrides.begin(), overrides.end());
  return out;
}

std::vector<char*> CStrings(std::vector<std::string>& v) {
  std::vector<char*> out;
  for (std::string& s : v) out.push_back(s.data());
  out.push_back(nullptr);
  return out;
}

}  // namespace

const char* ContainerStateName(ContainerState s) {
  switch (s) {
    case ContainerState::kPending:
      return "pending";
    case ContainerState::kRunning:
      return "running";
    case ContainerState::kBackOff:
      return "back-off";
    case ContainerState::kTerminated:
      return "terminated";
  }
  return "unknown";
}

void BlockSupervisorSignals() {
  sigset_t set = SupervisorSignals();
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
}

Supervisor::Supervisor(BackOffPolicy policy, EventLog* log, Millis grace)
    : policy_(policy), log_(log), grace_(grace) {}

void Supervisor::AddPod(PodSpec pod) {
  for (ContainerSpec& spec : pod.containers) {
    Container c{std::move(spec), BackOff(policy_), {}};
    c.status.pod = pod.name;
    c.status.name = c.spec.name;
    containers_.push_back(std::move(c));
  }
}

std::vector<ContainerStatus> Supervisor::Snapshot() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<ContainerStatus> out;
  for (const Container& c : containers_) out.push_back(c.status);
  return out;
}

void Supervisor::Changed() {
  if (on_change_) on_change_();
}

void Supervisor::Start(Container& c) {
  const std::string who = fmt::format("pod {} container {}", c.status.pod, c.spec.name);
  // Everything the child needs is prepared before fork(): after it, only async-signal-safe calls.
  std::vector<std::string> argv_s = c.spec.argv;
  std::vector<std::string> env_s = MergeEnv(c.spec.env);
  std::vector<char*> argv = CStrings(argv_s);
  std::vector<char*> envp = CStrings(env_s);
  const std::string out_path = c.spec.output.empty() ? "/dev/null" : c.spec.output;
  int out_fd = open(out_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  int in_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
  int pipefd[2] = {-1, -1};
  std::string failure;
  pid_t pid = -1;
  if (argv_s.empty()) {
    failure = "no command";
  } else if (out_fd < 0) {
    failure = fmt::format("open {}: {}", out_path, std::strerror(errno));
  } else if (in_fd < 0 || pipe2(pipefd, O_CLOEXEC) != 0) {
    failure = fmt::format("pipe: {}", std::strerror(errno));
  } else {
    pid = fork();
    if (pid < 0) failure = fmt::format("fork: {}", std::strerror(errno));
  }
  if (pid == 0) {
    setpgid(0, 0);
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    struct sigaction dfl {};
    dfl.sa_handler = SIG_DFL;
    sigaction(SIGPIPE, &dfl, nullptr);
    ChildFailure f{0, 0};
    if (!c.spec.cwd.empty() && chdir(c.spec.cwd.c_str()) != 0) {
      f.err = errno;
    } else {
      dup2(in_fd, 0);
      dup2(out_fd, 1);
      dup2(out_fd, 2);
      // Descriptors other threads opened without O_CLOEXEC (driver sockets) stay out of the
      // container; the failure pipe is close-on-exec already. Best effort on old kernels.
      close_range(3, ~0U, CLOSE_RANGE_CLOEXEC);
      execve(argv[0], argv.data(), envp.data());
      f = {1, errno};
    }
    ssize_t n = write(pipefd[1], &f, sizeof f);
    (void)n;
    _exit(127);
  }
  if (out_fd >= 0) close(out_fd);
  if (in_fd >= 0) close(in_fd);
  if (pid > 0) {
    close(pipefd[1]);
    ChildFailure f{};
    ssize_t n;
    do {
      n = read(pipefd[0], &f, sizeof f);
    } while (n < 0 && errno == EINTR);
    if (n == static_cast<ssize_t>(sizeof f)) {
      failure = f.stage == 0 ? fmt::format("chdir {}: {}", c.spec.cwd, std::strerror(f.err))
                             : fmt::format("exec {}: {}", argv_s[0], std::strerror(f.err));
      int st;
      while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
      }
    }
  }
  if (pipefd[0] >= 0) close(pipefd[0]);
  if (pipefd[1] >= 0 && pid <= 0) close(pipefd[1]);

  const bool restart = c.starts > 0;
  ++c.starts;
  if (!failure.empty()) {
    Millis delay = c.backoff.Next(Millis{0});
    {
      std::lock_guard<std::mutex> lock(mu_);
      c.status.state = ContainerState::kBackOff;
      c.status.pid = 0;
      c.status.restarts = c.starts - 1;
      c.status.last_exit = "start failed: " + failure;
      c.status.back_off = delay;
    }
    c.next_start = Clock::now() + delay;
    log_->Writef("{}: start failed: {}; back-off {}", who, failure, FormatDuration(delay));
    Changed();
    return;
  }
  c.started_at = Clock::now();
  {
    std::lock_guard<std::mutex> lock(mu_);
    c.status.state = ContainerState::kRunning;
    c.status.pid = pid;
    c.status.restarts = c.starts - 1;
    c.status.back_off = Millis{0};
  }
  std::string cmd;
  for (const std::string& a : argv_s) cmd += (cmd.empty() ? "" : " ") + a;
  log_->Writef("{}: {} pid {}: {}", who,
               restart ? fmt::format("restart #{}", c.starts - 1) : "start", pid, cmd);
  Changed();
}

void Supervisor::HandleExit(Container& c, int wait_status) {
  const std::string who = fmt::format("pod {} container {}", c.status.pod, c.spec.name);
  std::string how;
  if (WIFEXITED(wait_status)) {
    how = fmt::format("exited with code {}", WEXITSTATUS(wait_status));
  } else if (WIFSIGNALED(wait_status)) {
    int sig = WTERMSIG(wait_status);
    how = fmt::format("killed by signal {} ({})", sig, SignalName(sig));
  } else {
    how = fmt::format("ended with wait status {}", wait_status);
  }
  Millis ran = Since(c.started_at);
  const pid_t pid = c.status.pid;
  if (stop_) {
    std::lock_guard<std::mutex> lock(mu_);
    c.status.state = ContainerState::kTerminated;
    c.status.pid = 0;
    c.status.last_exit = how;
  } else {
    Millis delay = c.backoff.Next(ran);
    {
      std::lock_guard<std::mutex> lock(mu_);
      c.status.state = ContainerState::kBackOff;
      c.status.pid = 0;
      c.status.last_exit = how;
      c.status.back_off = delay;
    }
    c.next_start = Clock::now() + delay;
    log_->Writef("{}: pid {} {} after {}; back-off {}", who, pid, how, FormatDuration(ran),
                 FormatDuration(delay));
    Changed();
    return;
  }
  log_->Writef("{}: pid {} {} after {} (stopped)", who, pid, how, FormatDuration(ran));
  Changed();
}

void Supervisor::ReapExited() {
  for (Container& c : containers_) {
    if (c.status.state != ContainerState::kRunning) continue;
    int st = 0;
    pid_t r = waitpid(c.status.pid, &st, WNOHANG);
    if (r == c.status.pid) HandleExit(c, st);
  }
}

void Supervisor::Run() {
  const sigset_t signals = SupervisorSignals();
  {
    auto now = Clock::now();
    for (Container& c : containers_) c.next_start = now;
  }
  while (!stop_) {
    auto now = Clock::now();
    Millis wait{100};  // also bounds how long Stop() from another thread takes to be seen
    for (Container& c : containers_) {
      if (stop_) break;
      if (c.status.state != ContainerState::kPending && c.status.state != ContainerState::kBackOff)
        continue;
      if (now >= c.next_start) {
        Start(c);
        now = Clock::now();
      }
      if (c.status.state == ContainerState::kBackOff)
        wait = std::min(wait, std::max(Millis{1}, std::chrono::duration_cast<Millis>(
                                                      c.next_start - now + Millis{1})));
    }
    if (stop_) break;
    timespec ts{static_cast<time_t>(wait.count() / 1000),
                static_cast<long>((wait.count() % 1000) * 1000000)};
    siginfo_t info;
    int sig = sigtimedwait(&signals, &info, &ts);
    if (sig == SIGTERM || sig == SIGINT || sig == SIGHUP) {
      log_->Writef("supervisor: received SIG{}; stopping all pods", SignalName(sig));
      stop_ = true;
    }
    ReapExited();
  }
  StopAll();
}

void Supervisor::StopAll() {
  std::map<int, std::vector<Container*>, std::greater<int>> by_order;
  for (Container& c : containers_) {
    if (c.status.state == ContainerState::kRunning) {
      by_order[c.spec.stop_order].push_back(&c);
    } else {
      std::lock_guard<std::mutex> lock(mu_);
      c.status.state = ContainerState::kTerminated;
      c.status.back_off = Millis{0};
    }
  }
  Changed();
  const sigset_t chld = [] {
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, SIGCHLD);
    return s;
  }();
  for (auto& [order, group] : by_order) {
    for (Container* c : group) {
      log_->Writef("pod {} container {}: stopping pid {} (SIGTERM)", c->status.pod, c->spec.name,
                   c->status.pid);
      kill(c->status.pid, SIGTERM);
    }
    auto deadline = Clock::now() + grace_;
    bool killed = false;
    for (;;) {
      ReapExited();
      bool any = std::any_of(group.begin(), group.end(), [](Container* c) {
        return c->status.state == ContainerState::kRunning;
      });
      if (!any) break;
      if (!killed && Clock::now() >= deadline) {
        for (Container* c : group) {
          if (c->status.state != ContainerState::kRunning) continue;
          log_->Writef("pod {} container {}: pid {} did not stop within {}; SIGKILL", c->status.pod,
                       c->spec.name, c->status.pid, FormatDuration(grace_));
          kill(c->status.pid, SIGKILL);
        }
        killed = true;
      }
      timespec ts{0, 50 * 1000000};
      siginfo_t info;
      sigtimedwait(&chld, &info, &ts);
    }
  }
}

}  // namespace devcluster
