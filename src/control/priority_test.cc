#include "control/priority.h"

#include <gtest/gtest.h>

#include "common/error.h"

namespace pbm::control {
namespace {

AgentStatus Agent(const std::string& node, const std::string& state, bool hidden = false,
                  int64_t hb = 100) {
  AgentStatus a;
  a.replset = "rs0";
  a.node = node;
  a.state = state;
  a.hidden = hidden;
  a.heartbeat = hb;
  return a;
}

TEST(BackupPriority, DefaultsFollowPbm) {
  BackupPriorities none;
  EXPECT_EQ(BackupPriority(none, Agent("a:1", "PRIMARY")), 0.5);
  EXPECT_EQ(BackupPriority(none, Agent("b:1", "SECONDARY")), 1.0);
  EXPECT_EQ(BackupPriority(none, Agent("c:1", "SECONDARY", true)), 2.0);
}

TEST(BackupPriority, ConfiguredMapAndUnlistedMembersGetOne) {
  Json cfg = Json::parse(R"({"storage": {}, "backup": {"priority": {"a:1": 3, "b:1": 0.25}}})");
  auto p = ParseBackupPriorities(cfg);
  ASSERT_EQ(p.size(), 2u);
  EXPECT_EQ(BackupPriority(p, Agent("a:1", "PRIMARY")), 3.0);
  EXPECT_EQ(BackupPriority(p, Agent("b:1", "SECONDARY", true)), 0.25);
  EXPECT_EQ(BackupPriority(p, Agent("c:1", "SECONDARY", true)), 1.0);
  EXPECT_TRUE(ParseBackupPriorities(Json::parse(R"({"storage": {}})")).empty());
  // From a YAML file the numbers arrive as strings.
  auto y = ParseBackupPriorities(Json::parse(R"({"backup": {"priority": {"a:1": "2.5"}}})"));
  EXPECT_EQ(y.at("a:1"), 2.5);
}

TEST(BackupPriority, BadEntriesAreRefusedByName) {
  for (const char* bad : {R"({"backup": {"priority": {"a:1": 0}}})",
                          R"({"backup": {"priority": {"a:1": -2}}})",
                          R"({"backup": {"priority": {"a:1": "high"}}})",
                          R"({"backup": {"priority": {"a:1": "2x"}}})",
                          R"({"backup": {"priority": {"a:1": "nan"}}})",
                          R"({"backup": {"priority": {"nohost": 1}}})",
                          R"({"backup": {"priority": [1, 2]}})"}) {
    try {
      ParseBackupPriorities(Json::parse(bad));
      ADD_FAILURE() << "accepted " << bad;
    } catch (const Error& e) {
      EXPECT_EQ(e.kind(), ErrorKind::kInvalidArgument) << bad;
      EXPECT_NE(std::string(e.what()).find("backup.priority"), std::string::npos) << e.what();
    }
  }
}

TEST(BackupPriorityRank, CountsHealthyHigherTiersOnly) {
  BackupPriorities none;
  std::vector<AgentStatus> agents = {Agent("p:1", "PRIMARY"), Agent("s:1", "SECONDARY"),
                                     Agent("s:2", "SECONDARY"), Agent("h:1", "SECONDARY", true)};
  int64_t now = 110;
  EXPECT_EQ(BackupPriorityRank(none, agents, "rs0", 2.0, now), 0);  // the hidden one
  EXPECT_EQ(BackupPriorityRank(none, agents, "rs0", 1.0, now), 1);  // secondaries: hidden first
  EXPECT_EQ(BackupPriorityRank(none, agents, "rs0", 0.5, now), 2);  // the primary: both tiers
  // Stale, unhealthy, recovering or other-replset agents do not make anyone wait.
  agents[3].heartbeat = now - kAgentStaleSecs - 1;
  agents[1].error = "cannot reach mongod";
  agents[2].state = "RECOVERING";
  AgentStatus other = Agent("x:1", "SECONDARY", true);
  other.replset = "rs1";
  agents.push_back(other);
  EXPECT_EQ(BackupPriorityRank(none, agents, "rs0", 0.5, now), 0);
}

}  // namespace
}  // namespace pbm::control
