#include "cluster.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <mongoc/mongoc.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <thread>

#include "util.h"

namespace devcluster {
namespace {

using Clock = std::chrono::steady_clock;

// The outcome of one command: `replied` when the server answered (ok or not).
struct CommandResult {
  bool ok = false;
  bool replied = false;
  int code = 0;
  std::string message;
  nlohmann::json reply;
};

// Runs `cmd` (extended JSON) on admin of one node (direct connection, short timeouts).
// mongoc holds no state between calls here: a client per command keeps this simple, and these
// commands are rare.
CommandResult RunCommand(const std::string& host, const nlohmann::json& cmd) {
  CommandResult r;
  std::string uri = fmt::format(
      "mongodb://{}/?directConnection=true&serverSelectionTimeoutMS=2000&connectTimeoutMS=1000"
      "&socketTimeoutMS=10000",
      host);
  bson_error_t err;
  mongoc_client_t* client = mongoc_client_new(uri.c_str());
  if (!client) {
    r.message = "bad uri " + uri;
    return r;
  }
  mongoc_client_set_error_api(client, MONGOC_ERROR_API_VERSION_2);
  std::string text = cmd.dump();
  bson_t* b = bson_new_from_json(reinterpret_cast<const uint8_t*>(text.data()),
                                 static_cast<ssize_t>(text.size()), &err);
  if (!b) {
    mongoc_client_destroy(client);
    r.message = err.message;
    return r;
  }
  bson_t reply;
  r.ok = mongoc_client_command_simple(client, "admin", b, nullptr, &reply, &err);
  char* json = bson_as_relaxed_extended_json(&reply, nullptr);
  if (json) {
    r.reply = nlohmann::json::parse(json, nullptr, false);
    bson_free(json);
  }
  bson_destroy(&reply);
  bson_destroy(b);
  mongoc_client_destroy(client);
  if (r.reply.is_object() && r.reply.contains("ok")) {
    r.replied = true;
    if (r.reply.contains("code") && r.reply["code"].is_number()) r.code = r.reply["code"];
  }
  if (!r.ok) r.message = err.message;
  return r;
}

bool PortOpen(int port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bool ok = connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  close(fd);
  return ok;
}

// Polls `pred` every 200 ms until it returns true; false on timeout or when the supervisor stops.
template <typename Pred>
bool WaitFor(Supervisor& sup, Clock::time_point deadline, Pred pred) {
  while (!sup.stopping()) {
    if (pred()) return true;
    if (Clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  return false;
}

// Count of PRIMARY and SECONDARY members as one member reports them; "" if none answered.
std::string HealthSummary(const ClusterSpec& spec, bool* healthy) {
  *healthy = false;
  for (int i = 0; i < spec.members; ++i) {
    CommandResult r = RunCommand(LayoutFor(spec, i).host, {{"replSetGetStatus", 1}});
    if (!r.ok || !r.reply.contains("members")) continue;
    int primaries = 0, secondaries = 0;
    std::string states;
    for (const auto& m : r.reply["members"]) {
      std::string s = m.value("stateStr", "?");
      primaries += s == "PRIMARY";
      secondaries += s == "SECONDARY";
      states += (states.empty() ? "" : ", ") + m.value("name", "?") + " " + s;
    }
    *healthy = primaries == 1 && secondaries == spec.members - 1 &&
               static_cast<int>(r.reply["members"].size()) == spec.members;
    return states;
  }
  return "";
}

// replSetInitiate on the first member unless the set already has a config (a reused D).
void InitiateOnce(const ClusterSpec& spec, Supervisor& sup, Clock::time_point deadline,
                  EventLog* log) {
  const MemberLayout first = LayoutFor(spec, 0);
  std::string last;
  bool done = WaitFor(sup, deadline, [&] {
    CommandResult st = RunCommand(first.host, {{"replSetGetStatus", 1}});
    if (st.ok) {
      log->Writef("replica set {} already initiated; skipping replSetInitiate", spec.replset);
      return true;
    }
    if (!st.replied) {
      last = st.message;
      return false;
    }
    if (st.code != 94) {  // anything but NotYetInitialized: the node has a config
      log->Writef("replica set {} already initiated ({}); skipping replSetInitiate", spec.replset,
                  st.message);
      return true;
    }
    nlohmann::json members = nlohmann::json::array();
    for (int i = 0; i < spec.members; ++i)
      members.push_back(
          {{"_id", i}, {"host", LayoutFor(spec, i).host}, {"priority", i == 0 ? 2 : 1}});
    nlohmann::json cfg = {{"_id", spec.replset}, {"members", members}};
    CommandResult r = RunCommand(first.host, {{"replSetInitiate", cfg}});
    if (r.ok || r.code == 23) {  // 23: AlreadyInitialized (a retry after a lost reply)
      log->Writef("replSetInitiate {} on {}: {}", spec.replset, first.host, cfg.dump());
      return true;
    }
    last = r.message;
    return false;
  });
  if (!done)
    Fail("replSetInitiate {} on {}: {}", spec.replset, first.host,
         sup.stopping() ? "interrupted" : "timed out: " + last);
}

// Owns D/devcluster.pid while this process supervises D: an exclusive flock on it tells `down`
// and `status` whether a supervisor runs, and is released by the kernel when the process exits.
class PidLock {
 public:
  explicit PidLock(const std::string& path) : path_(path) {
    fd_ = open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd_ < 0) Fail("open {}: {}", path, std::strerror(errno));
    if (flock(fd_, LOCK_EX | LOCK_NB) != 0) {
      std::string pid = ReadFile(path);
      while (!pid.empty() && std::isspace(static_cast<unsigned char>(pid.back()))) pid.pop_back();
      close(fd_);
      Fail("{}: already supervised by pid {} (run devcluster down first)",
           std::filesystem::path(path).parent_path().string(), pid);
    }
    std::string text = std::to_string(getpid()) + "\n";
    if (ftruncate(fd_, 0) != 0 || pwrite(fd_, text.data(), text.size(), 0) < 0)
      Fail("write {}: {}", path, std::strerror(errno));
  }
  ~PidLock() {
    unlink(path_.c_str());
    close(fd_);
  }

 private:
  std::string path_;
  int fd_;
};

// Keeps D/cluster.json current; called from the supervisor thread and the main thread.
class ClusterFile {
 public:
  ClusterFile(const ClusterSpec& spec, Supervisor* sup) : spec_(spec), sup_(sup) {}
  void Update() {
    std::lock_guard<std::mutex> lock(mu_);
    nlohmann::ordered_json j = ClusterJson(spec_, sup_->Snapshot(), ready_, getpid());
    j["log"] = spec_.dir + "/devcluster.log";
    try {
      WriteFileAtomic(spec_.dir + "/cluster.json", j.dump(2) + "\n");
    } catch (const Error&) {
      // The supervisor keeps running; status shows the previous state.
    }
  }
  void SetReady(bool ready) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      ready_ = ready;
    }
    Update();
  }

 private:
  const ClusterSpec& spec_;
  Supervisor* sup_;
  std::mutex mu_;
  bool ready_ = false;
};

// With --detach: forks; the parent waits for the child's word on `fd` and exits with it. The
// child (returned true) supervises in its own session with stdio on /dev/null.
bool Daemonize(int* report_fd) {
  int p[2];
  if (pipe2(p, O_CLOEXEC) != 0) Fail("devcluster up --detach: pipe: {}", std::strerror(errno));
  std::cout.flush();
  std::cerr.flush();
  pid_t pid = fork();
  if (pid < 0) Fail("devcluster up --detach: fork: {}", std::strerror(errno));
  if (pid > 0) {
    close(p[1]);
    std::string msg;
    char buf[512];
    ssize_t n;
    while ((n = read(p[0], buf, sizeof buf)) != 0) {
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) break;
      msg.append(buf, static_cast<size_t>(n));
    }
    if (msg.rfind("ok ", 0) == 0) {
      std::cout << msg.substr(3) << std::flush;
      _exit(0);
    }
    std::cerr << (msg.empty()
                      ? "devcluster up: the supervisor exited before the cluster was ready\n"
                      : msg)
              << std::flush;
    _exit(1);
  }
  close(p[0]);
  setsid();
  int null = open("/dev/null", O_RDWR);
  if (null >= 0) {
    dup2(null, 0);
    dup2(null, 1);
    dup2(null, 2);
    if (null > 2) close(null);
  }
  *report_fd = p[1];
  return true;
}

void Report(int fd, const std::string& msg) {
  if (fd < 0) return;
  ssize_t n = write(fd, msg.data(), msg.size());
  (void)n;
  close(fd);
}

}  // namespace

nlohmann::ordered_json ClusterJson(const ClusterSpec& spec,
                                   const std::vector<ContainerStatus>& containers, bool ready,
                                   int supervisor_pid) {
  nlohmann::ordered_json members = nlohmann::ordered_json::array();
  for (int i = 0; i < spec.members; ++i) {
    MemberLayout m = LayoutFor(spec, i);
    nlohmann::ordered_json member = {
        {"name", m.name},       {"host", m.host},
        {"port", m.port},       {"dbpath", m.dbpath},
        {"pod_dir", m.pod_dir}, {"mongod_pid", nullptr},
        {"agent_pid", nullptr}, {"containers", nlohmann::ordered_json::object()}};
    for (const ContainerStatus& c : containers) {
      if (c.pod != m.name) continue;
      nlohmann::ordered_json pid =
          c.pid > 0 ? nlohmann::ordered_json(c.pid) : nlohmann::ordered_json(nullptr);
      if (c.name == "mongod") member["mongod_pid"] = pid;
      if (c.name == "backup-agent") member["agent_pid"] = pid;
      member["containers"][c.name] = {{"state", ContainerStateName(c.state)},
                                      {"pid", pid},
                                      {"restarts", c.restarts},
                                      {"last_exit", c.last_exit},
                                      {"back_off_ms", c.back_off.count()}};
    }
    members.push_back(std::move(member));
  }
  return nlohmann::ordered_json{{"replset", spec.replset},
                                {"uri", ReplicaSetUri(spec)},
                                {"ready", ready},
                                {"supervisor_pid", supervisor_pid},
                                {"members", members}};
}

std::vector<int> ChoosePorts(int n, int base) {
  std::vector<int> ports;
  if (base > 0) {
    for (int i = 0; i < n; ++i) ports.push_back(base + i);
    return ports;
  }
  // Hold every socket until all are chosen so the kernel hands out distinct ports.
  std::vector<int> fds;
  for (int i = 0; i < n; ++i) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    if (fd < 0 || bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
        getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
      int e = errno;
      for (int f : fds) close(f);
      if (fd >= 0) close(fd);
      Fail("choose a free port: {}", std::strerror(e));
    }
    fds.push_back(fd);
    ports.push_back(ntohs(a.sin_port));
  }
  for (int f : fds) close(f);
  return ports;
}

int Up(const ClusterSpec& spec, const UpOptions& opts) {
  int report_fd = -1;
  try {
    MakeDirs(spec.dir);
    if (opts.detach) Daemonize(&report_fd);
    PidLock lock(spec.dir + "/devcluster.pid");
    EventLog log(spec.dir + "/devcluster.log", !opts.detach);
    WriteFileAtomic(spec.dir + "/spec.json", nlohmann::json(spec).dump(2) + "\n");
    log.Writef("supervisor pid {}: up {} ({} members, mongod {}, agent {})", getpid(), spec.replset,
               spec.members, spec.mongod, spec.agent.empty() ? "none" : spec.agent);

    BlockSupervisorSignals();
    mongoc_init();
    Supervisor sup(spec.backoff, &log, opts.grace);
    for (int i = 0; i < spec.members; ++i) {
      MemberLayout m = LayoutFor(spec, i);
      InitPod(spec, m, &log);
      sup.AddPod(PodFor(spec, m));
    }
    ClusterFile file(spec, &sup);
    sup.OnChange([&file] { file.Update(); });
    file.Update();
    std::thread runner([&sup] { sup.Run(); });

    std::string error;
    try {
      const auto deadline = Clock::now() + opts.start_timeout;
      for (int i = 0; i < spec.members; ++i) {
        MemberLayout m = LayoutFor(spec, i);
        if (!WaitFor(sup, deadline, [&] { return PortOpen(m.port); }))
          Fail(
              "pod {}: mongod is not listening on {} ({}; see {}/mongod.log, {}/mongod.out and {})",
              m.name, m.host, sup.stopping() ? "interrupted" : "timed out", m.log_dir, m.log_dir,
              log.path());
      }
      InitiateOnce(spec, sup, deadline, &log);
      std::string states;
      bool healthy = false;
      if (!WaitFor(sup, deadline, [&] {
            states = HealthSummary(spec, &healthy);
            return healthy;
          }))
        Fail("replica set {}: not healthy ({}; members: {})", spec.replset,
             sup.stopping() ? "interrupted" : "timed out", states.empty() ? "no answer" : states);
      log.Writef("replica set {} healthy: {}", spec.replset, states);
    } catch (const std::exception& e) {
      error = e.what();
    }
    if (error.empty()) {
      file.SetReady(true);
      const std::string uri = ReplicaSetUri(spec);
      log.Writef("cluster ready: {} (status in {}/cluster.json)", uri, spec.dir);
      Report(report_fd, "ok " + uri + "\n");
      report_fd = -1;
      if (!opts.detach) std::cout << uri << std::endl;
    } else {
      log.Writef("devcluster up failed: {}; stopping", error);
      sup.Stop();
    }
    runner.join();
    file.SetReady(false);
    log.Write("supervisor: all containers stopped; exiting");
    mongoc_cleanup();
    if (!error.empty()) {
      std::string msg = "devcluster up: " + error + "\n";
      if (report_fd >= 0) Report(report_fd, msg);
      std::cerr << msg;
      return 1;
    }
    return 0;
  } catch (const std::exception& e) {
    std::string msg = std::string("devcluster up: ") + e.what() + "\n";
    if (report_fd >= 0) Report(report_fd, msg);
    std::cerr << msg;
    return 1;
  }
}

namespace {

// Whether a supervisor holds D/devcluster.pid; its pid via `pid`.
bool SupervisorRunning(const std::string& dir, int* pid) {
  std::string path = dir + "/devcluster.pid";
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  bool held = flock(fd, LOCK_SH | LOCK_NB) != 0 && errno == EWOULDBLOCK;
  close(fd);
  if (held && pid) {
    try {
      *pid = std::stoi(ReadFile(path));
    } catch (const std::exception&) {
      *pid = 0;
    }
  }
  return held;
}

}  // namespace

int Down(const std::string& dir, Millis timeout) {
  std::string path = dir + "/devcluster.pid";
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0 || flock(fd, LOCK_SH | LOCK_NB) == 0) {
    if (fd >= 0) close(fd);
    std::cout << "devcluster down: no supervisor runs for " << dir << "\n";
    return 0;
  }
  int pid = 0;
  try {
    pid = std::stoi(ReadFile(path));
  } catch (const std::exception&) {
  }
  if (pid <= 0 || kill(pid, SIGTERM) != 0) {
    close(fd);
    std::cerr << "devcluster down --dir " << dir << ": cannot signal supervisor pid " << pid << ": "
              << std::strerror(errno) << "\n";
    return 1;
  }
  // The supervisor's lock goes away when it exits, after it stopped every container; waiting on
  // the lock rather than the pid also works when the supervisor is a not-yet-reaped child.
  const auto deadline = Clock::now() + timeout;
  while (flock(fd, LOCK_SH | LOCK_NB) != 0) {
    if (Clock::now() >= deadline) {
      close(fd);
      std::cerr << "devcluster down --dir " << dir << ": supervisor pid " << pid
                << " still running after " << FormatDuration(timeout) << "\n";
      return 1;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  close(fd);
  std::cout << "devcluster down: supervisor pid " << pid << " stopped\n";
  return 0;
}

int Status(const std::string& dir) {
  nlohmann::ordered_json j;
  try {
    j = nlohmann::ordered_json::parse(ReadFile(dir + "/cluster.json"));
  } catch (const std::exception& e) {
    std::cerr << "devcluster status --dir " << dir << ": no cluster: " << e.what() << "\n";
    return 1;
  }
  int pid = 0;
  bool running = SupervisorRunning(dir, &pid);
  j["supervisor_running"] = running;
  if (!running) j["ready"] = false;
  mongoc_init();
  for (auto& m : j["members"]) {
    std::string state = running ? "unreachable" : "not running";
    if (running) {
      CommandResult r = RunCommand(m.value("host", ""), {{"hello", 1}});
      if (r.ok) {
        state = r.reply.value("isWritablePrimary", r.reply.value("ismaster", false)) ? "PRIMARY"
                : r.reply.value("secondary", false)                                  ? "SECONDARY"
                                                                                     : "NOT_READY";
      }
    }
    m["member_state"] = state;
  }
  mongoc_cleanup();
  std::cout << j.dump(2) << std::endl;
  return 0;
}

}  // namespace devcluster
