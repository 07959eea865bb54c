#include "supervisor.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <filesystem>
#include <functional>
#include <thread>

#include "util.h"

namespace devcluster {
namespace {

namespace fs = std::filesystem;

class SupervisorTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { BlockSupervisorSignals(); }

  void SetUp() override {
    std::string tmpl = (fs::temp_directory_path() / "devcluster-sup-XXXXXX").string();
    dir_ = mkdtemp(tmpl.data());
    log_ = std::make_unique<EventLog>(dir_ + "/devcluster.log", false);
  }
  void TearDown() override {
    if (runner_.joinable()) {
      sup_->Stop();
      runner_.join();
    }
    fs::remove_all(dir_);
  }

  void Start(std::vector<PodSpec> pods, BackOffPolicy policy, Millis grace = Millis{5000}) {
    sup_ = std::make_unique<Supervisor>(policy, log_.get(), grace);
    for (PodSpec& p : pods) sup_->AddPod(std::move(p));
    runner_ = std::thread([this] { sup_->Run(); });
  }
  void StopAndJoin() {
    sup_->Stop();
    runner_.join();
  }

  std::string Log() { return ReadFile(log_->path()); }
  size_t Count(const std::string& needle) {
    std::string s = Log();
    size_t n = 0;
    for (size_t p = s.find(needle); p != std::string::npos; p = s.find(needle, p + 1)) ++n;
    return n;
  }
  std::string Script(const std::string& name, const std::string& body) {
    std::string p = dir_ + "/" + name;
    WriteFileAtomic(p, "#!/bin/sh\n" + body + "\n", 0755);
    return p;
  }
  static bool WaitUntil(const std::function<bool()>& pred, Millis timeout = Millis{10000}) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
      if (pred()) return true;
      std::this_thread::sleep_for(Millis{20});
    }
    return pred();
  }
  ContainerStatus Status(size_t i) { return sup_->Snapshot().at(i); }

  std::string dir_;
  std::unique_ptr<EventLog> log_;
  std::unique_ptr<Supervisor> sup_;
  std::thread runner_;
};

TEST_F(SupervisorTest, RestartsAnExitingContainerWithGrowingBackOff) {
  std::string crash = Script("crash.sh", "exit 3");
  Start({{"p0", {{"c", {crash}}}}}, {Millis{50}, Millis{200}, Millis{10000}});
  ASSERT_TRUE(WaitUntil([&] { return Count("exited with code 3") >= 5; })) << Log();
  StopAndJoin();
  std::string log = Log();
  EXPECT_NE(log.find("pod p0 container c: start pid "), std::string::npos) << log;
  EXPECT_NE(log.find("pod p0 container c: restart #1 pid "), std::string::npos) << log;
  EXPECT_NE(log.find("exited with code 3 after "), std::string::npos) << log;
  // 50ms, then doubling, capped at 200ms.
  size_t b50 = log.find("; back-off 50ms"), b100 = log.find("; back-off 100ms"),
         b200 = log.find("; back-off 200ms");
  ASSERT_NE(b50, std::string::npos) << log;
  ASSERT_NE(b100, std::string::npos) << log;
  ASSERT_NE(b200, std::string::npos) << log;
  EXPECT_LT(b50, b100);
  EXPECT_LT(b100, b200);
  EXPECT_EQ(log.find("back-off 400ms"), std::string::npos) << log;
  ContainerStatus st = Status(0);
  EXPECT_GE(st.restarts, 4);
  EXPECT_EQ(st.state, ContainerState::kTerminated);
  EXPECT_EQ(st.last_exit, "exited with code 3");
}

TEST_F(SupervisorTest, MissingCommandFailsToStartUntilItIsBack) {
  const std::string entry = dir_ + "/ps-entry.sh";  // not there yet: a hidden entrypoint
  Start({{"rs0-1", {{"mongod", {entry}}}}}, {Millis{50}, Millis{100}, Millis{10000}});
  const std::string failed = "pod rs0-1 container mongod: start failed: exec " + entry +
                             ": No such file or directory; back-off ";
  ASSERT_TRUE(WaitUntil([&] { return Count(failed) >= 3; })) << Log();
  ContainerStatus st = Status(0);
  EXPECT_NE(st.state, ContainerState::kRunning);
  EXPECT_EQ(st.pid, 0);
  EXPECT_EQ(st.last_exit, "start failed: exec " + entry + ": No such file or directory");

  Script("ps-entry.sh", "exec sleep 30");
  ASSERT_TRUE(WaitUntil([&] { return Status(0).state == ContainerState::kRunning; })) << Log();
  pid_t pid = Status(0).pid;
  EXPECT_GT(pid, 0);
  EXPECT_EQ(kill(pid, 0), 0);
  StopAndJoin();
  EXPECT_NE(kill(pid, 0), 0);  // stopped and reaped
  std::string log = Log();
  EXPECT_NE(
      log.find("pod rs0-1 container mongod: stopping pid " + std::to_string(pid) + " (SIGTERM)"),
      std::string::npos)
      << log;
  EXPECT_NE(log.find("pid " + std::to_string(pid) + " killed by signal 15 (TERM)"),
            std::string::npos)
      << log;
  EXPECT_EQ(Status(0).state, ContainerState::kTerminated);
}

TEST_F(SupervisorTest, NotExecutableIsAFailedStart) {
  std::string entry = dir_ + "/ps-entry.sh";
  WriteFileAtomic(entry, "#!/bin/sh\nexec sleep 30\n", 0644);
  Start({{"p", {{"mongod", {entry}}}}}, {Millis{50}, Millis{50}, Millis{10000}});
  ASSERT_TRUE(WaitUntil([&] {
    return Count("start failed: exec " + entry + ": Permission denied") >= 1;
  })) << Log();
}

TEST_F(SupervisorTest, KilledContainerIsRestartedWithANewPid) {
  std::string run = Script("run.sh", "exec sleep 30");
  Start({{"p", {{"mongod", {run}}}}}, {Millis{50}, Millis{1000}, Millis{10000}});
  ASSERT_TRUE(WaitUntil([&] { return Status(0).state == ContainerState::kRunning; }));
  pid_t first = Status(0).pid;
  ASSERT_EQ(kill(first, SIGKILL), 0);
  ASSERT_TRUE(WaitUntil([&] {
    ContainerStatus s = Status(0);
    return s.state == ContainerState::kRunning && s.pid != first;
  })) << Log();
  EXPECT_EQ(Status(0).restarts, 1);
  EXPECT_NE(Log().find("pod p container mongod: pid " + std::to_string(first) +
                       " killed by signal 9 (KILL) after "),
            std::string::npos)
      << Log();
}

TEST_F(SupervisorTest, EnvironmentWorkingDirectoryAndOutput) {
  std::string run =
      Script("env.sh", "echo \"uri=$PBM_MONGODB_URI cwd=$(pwd) args=$*\"; exec sleep 30");
  fs::create_directories(dir_ + "/pod");
  ContainerSpec c{"backup-agent",
                  {run, "--mongodb-uri", "x"},
                  {"PBM_MONGODB_URI=mongodb://h/"},
                  dir_ + "/pod",
                  dir_ + "/agent.out"};
  Start({{"p", {c}}}, {Millis{50}, Millis{50}, Millis{10000}});
  ASSERT_TRUE(WaitUntil(
      [&] { return fs::exists(dir_ + "/agent.out") && fs::file_size(dir_ + "/agent.out") > 0; }));
  EXPECT_EQ(ReadFile(dir_ + "/agent.out"),
            "uri=mongodb://h/ cwd=" + dir_ + "/pod args=--mongodb-uri x\n");
}

TEST_F(SupervisorTest, StopsHigherStopOrderFirst) {
  const std::string order = dir_ + "/order";
  auto body = [&](const std::string& name) {
    return "trap 'echo " + name + " >> " + order + "; exit 0' TERM\nwhile :; do sleep 0.05; done";
  };
  ContainerSpec mongod{"mongod", {Script("m.sh", body("mongod"))}};
  ContainerSpec agent{"backup-agent", {Script("a.sh", body("agent"))}};
  agent.stop_order = 1;
  ContainerSpec mongod2{"mongod", {Script("m2.sh", body("mongod"))}};
  Start({{"p0", {mongod, agent}}, {"p1", {mongod2}}}, {Millis{50}, Millis{50}, Millis{10000}});
  ASSERT_TRUE(WaitUntil([&] {
    for (const ContainerStatus& s : sup_->Snapshot())
      if (s.state != ContainerState::kRunning) return false;
    return true;
  }));
  StopAndJoin();
  EXPECT_EQ(ReadFile(order), "agent\nmongod\nmongod\n");
  for (const ContainerStatus& s : sup_->Snapshot()) {
    EXPECT_EQ(s.state, ContainerState::kTerminated);
    EXPECT_EQ(s.last_exit, "exited with code 0");
  }
}

TEST_F(SupervisorTest, SigkillAfterGrace) {
  std::string stubborn = Script("stubborn.sh", "trap '' TERM\nwhile :; do sleep 0.05; done");
  Start({{"p", {{"mongod", {stubborn}}}}}, {Millis{50}, Millis{50}, Millis{10000}}, Millis{300});
  ASSERT_TRUE(WaitUntil([&] { return Status(0).state == ContainerState::kRunning; }));
  auto t0 = std::chrono::steady_clock::now();
  StopAndJoin();
  EXPECT_GE(std::chrono::steady_clock::now() - t0, Millis{300});
  EXPECT_NE(Log().find("did not stop within 300ms; SIGKILL"), std::string::npos) << Log();
  EXPECT_EQ(Status(0).last_exit, "killed by signal 9 (KILL)");
}

TEST_F(SupervisorTest, SigtermToTheProcessStopsEverything) {
  std::string run = Script("run.sh", "exec sleep 30");
  Start({{"p", {{"mongod", {run}}}}}, {Millis{50}, Millis{50}, Millis{10000}});
  ASSERT_TRUE(WaitUntil([&] { return Status(0).state == ContainerState::kRunning; }));
  pid_t pid = Status(0).pid;
  ASSERT_EQ(kill(getpid(), SIGTERM), 0);  // blocked everywhere; Run() takes it
  runner_.join();
  EXPECT_TRUE(sup_->stopping());
  EXPECT_NE(kill(pid, 0), 0);
  EXPECT_NE(Log().find("supervisor: received SIGTERM; stopping all pods"), std::string::npos)
      << Log();
}

}  // namespace
}  // namespace devcluster
