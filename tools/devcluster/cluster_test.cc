#include "cluster.h"

#include <gtest/gtest.h>

#include <set>

namespace devcluster {
namespace {

TEST(ClusterJsonTest, MembersPidsAndContainers) {
  ClusterSpec s;
  s.dir = "/d";
  s.members = 2;
  s.ports = {30000, 30001};
  ContainerStatus m0{"rs0-0", "mongod", ContainerState::kRunning, 111, 2, "exited with code 0"};
  ContainerStatus a0{"rs0-0", "backup-agent", ContainerState::kRunning, 112};
  ContainerStatus m1{"rs0-1",
                     "mongod",
                     ContainerState::kBackOff,
                     0,
                     3,
                     "start failed: exec /d/rs0-1/data/ps-entry.sh: No such file or directory",
                     Millis{4000}};
  auto j = ClusterJson(s, {m0, a0, m1}, true, 99);
  EXPECT_EQ(j["replset"], "rs0");
  EXPECT_EQ(j["uri"], "mongodb://127.0.0.1:30000,127.0.0.1:30001/?replicaSet=rs0");
  EXPECT_EQ(j["ready"], true);
  EXPECT_EQ(j["supervisor_pid"], 99);
  ASSERT_EQ(j["members"].size(), 2u);
  const auto& j0 = j["members"][0];
  EXPECT_EQ(j0["name"], "rs0-0");
  EXPECT_EQ(j0["host"], "127.0.0.1:30000");
  EXPECT_EQ(j0["port"], 30000);
  EXPECT_EQ(j0["dbpath"], "/d/rs0-0/data");
  EXPECT_EQ(j0["pod_dir"], "/d/rs0-0");
  EXPECT_EQ(j0["mongod_pid"], 111);
  EXPECT_EQ(j0["agent_pid"], 112);
  EXPECT_EQ(j0["containers"]["mongod"]["restarts"], 2);
  EXPECT_EQ(j0["containers"]["mongod"]["state"], "running");
  const auto& j1 = j["members"][1];
  EXPECT_TRUE(j1["mongod_pid"].is_null());
  EXPECT_TRUE(j1["agent_pid"].is_null());
  EXPECT_EQ(j1["containers"]["mongod"]["state"], "back-off");
  EXPECT_EQ(j1["containers"]["mongod"]["back_off_ms"], 4000);
  EXPECT_EQ(j1["containers"]["mongod"]["last_exit"],
            "start failed: exec /d/rs0-1/data/ps-entry.sh: No such file or directory");
}

TEST(ChoosePortsTest, BaseOrDistinctFreePorts) {
  EXPECT_EQ(ChoosePorts(3, 27017), (std::vector<int>{27017, 27018, 27019}));
  std::vector<int> free = ChoosePorts(5, 0);
  ASSERT_EQ(free.size(), 5u);
  EXPECT_EQ(std::set<int>(free.begin(), free.end()).size(), 5u);
  for (int p : free) EXPECT_GT(p, 0);
}

}  // namespace
}  // namespace devcluster
