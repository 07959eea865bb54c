#include "control/restore_status.h"

#include <gtest/gtest.h>

#include <memory>

#include "common/error.h"
#include "common/testing.h"

namespace pbm::control {
namespace {

// A physical restore's status files on a scratch filesystem storage, with a three-member plan
// that started `age` seconds ago.
class RestoreStatusTest : public ::testing::Test {
 protected:
  void SetUp() override { st_ = storage::NewFilesystemStorage(dir_.path()); }

  void Plan(int64_t age) {
    RestorePlanMeta m;
    m.name = "2026-12-06T10:00:00Z";
    m.backup = "2026-12-06T09:00:00Z";
    m.opid = "op";
    m.start_ts = NowUnix() - age;
    m.members = {a_, b_, c_};
    WriteRestorePlan(*st_, m);
  }
  RestoreStatus Read() { return ReadRestoreStatus(*st_, "2026-12-06T10:00:00Z"); }
  // A heartbeat `age` seconds old.
  void OldHeartbeat(const RestoreMember& m, int64_t age) {
    st_->WriteAll(
        RestorePrefix("2026-12-06T10:00:00Z") + "rs." + m.replset + "/node." + m.host + ".hb",
        Json{{"ts", NowUnix() - age}}.dump());
  }

  testing::ScratchDir dir_{"restore-status"};
  std::unique_ptr<storage::Storage> st_;
  RestoreMember a_{"rs0", "a:27017"}, b_{"rs0", "b:27017"}, c_{"rs0", "c:27017"};
};

TEST_F(RestoreStatusTest, StartingThenRunningThenDone) {
  Plan(1);
  EXPECT_EQ(Read().status, "starting");
  WriteNodePhase(*st_, "2026-12-06T10:00:00Z", a_, "preflight");
  EXPECT_EQ(Read().status, "running");
  for (const auto& m : {a_, b_, c_}) WriteNodePhase(*st_, "2026-12-06T10:00:00Z", m, "done");
  auto s = Read();
  EXPECT_EQ(s.status, "done");
  EXPECT_EQ(s.error, "");
}

TEST_F(RestoreStatusTest, ErrorOnlyOnceEveryMemberSettled) {
  Plan(1);
  WriteNodePhase(*st_, "2026-12-06T10:00:00Z", a_, "error", "pre-flight: key differs");
  WriteNodePhase(*st_, "2026-12-06T10:00:00Z", b_, "staged");
  WriteNodePhase(*st_, "2026-12-06T10:00:00Z", c_, "error", "pre-flight: key differs");
  EXPECT_EQ(Read().status, "running");  // b is still removing its staging copy
  WriteNodePhase(*st_, "2026-12-06T10:00:00Z", b_, "error", "not started: a failed");
  auto s = Read();
  EXPECT_EQ(s.status, "error");
  // Members with the same reason are named together: one readable line.
  EXPECT_EQ(s.error,
            "rs0/a:27017, rs0/c:27017: pre-flight: key differs; rs0/b:27017: not started: a "
            "failed");
}

// The cause comes first and once, however many members followed it and in whatever order
// they wrote (a member that follows a follower names the cause too).
TEST_F(RestoreStatusTest, CauseFirstThenTheMembersThatFollowedIt) {
  Plan(1);
  const std::string follow = "rolled back (rs0/c:27017 failed); old data back";
  WriteNodePhase(*st_, "2026-12-06T10:00:00Z", a_, "error", follow, "rs0/c:27017");
  WriteNodePhase(*st_, "2026-12-06T10:00:00Z", b_, "error", follow, "rs0/c:27017");
  WriteNodePhase(*st_, "2026-12-06T10:00:00Z", c_, "error", "Recover: disk full; old data back");
  auto s = Read();
  EXPECT_EQ(s.status, "error");
  EXPECT_EQ(s.error,
            "rs0/c:27017: Recover: disk full; old data back; rs0/a:27017, rs0/b:27017: " + follow);
  ASSERT_EQ(s.nodes.size(), 3u);
  EXPECT_EQ(s.nodes[0].caused_by, "rs0/c:27017");
  EXPECT_EQ(s.nodes[2].caused_by, "");
}

// A member whose agent never took the restore up must not keep the restore (and a user's
// `pbm restore --wait`) running forever.
TEST_F(RestoreStatusTest, MemberThatNeverStartedFailsTheRestore) {
  Plan(kRestorePickupSecs - 5);
  WriteNodePhase(*st_, "2026-12-06T10:00:00Z", a_, "error", "pre-flight: key differs");
  WriteNodePhase(*st_, "2026-12-06T10:00:00Z", b_, "error", "pre-flight: key differs");
  EXPECT_EQ(Read().status, "running");  // c may still come
  Plan(kRestorePickupSecs + 5);
  auto s = Read();
  EXPECT_EQ(s.status, "error");
  ASSERT_EQ(s.nodes.size(), 3u);
  EXPECT_EQ(s.nodes[2].phase, "");
  EXPECT_NE(s.nodes[2].error.find("did not take the restore up"), std::string::npos)
      << s.nodes[2].error;
}

// A member whose agent went silent (killed, its pod gone) counts as failed and settled.
TEST_F(RestoreStatusTest, SilentMemberFailsTheRestore) {
  Plan(100);
  WriteNodePhase(*st_, "2026-12-06T10:00:00Z", a_, "error", "not started: c went silent");
  WriteNodePhase(*st_, "2026-12-06T10:00:00Z", b_, "error", "not started: c went silent");
  WriteNodePhase(*st_, "2026-12-06T10:00:00Z", c_, "staged");
  OldHeartbeat(c_, 5);
  EXPECT_EQ(Read().status, "running");
  OldHeartbeat(c_, kLockStaleSecs + 5);
  auto s = Read();
  EXPECT_EQ(s.status, "error");
  EXPECT_NE(s.nodes[2].error.find("no heartbeat from its pbm-agent"), std::string::npos);
}

// From `ready` on a silent member may have committed (its agent completes the commit when it
// restarts): its silence is shown, but the restore is not ended for it.
TEST_F(RestoreStatusTest, SilentMemberAfterReadyKeepsTheRestoreRunning) {
  Plan(100);
  WriteNodePhase(*st_, "2026-12-06T10:00:00Z", a_, "done");
  WriteNodePhase(*st_, "2026-12-06T10:00:00Z", b_, "done");
  WriteNodePhase(*st_, "2026-12-06T10:00:00Z", c_, "ready");
  OldHeartbeat(c_, kLockStaleSecs + 5);
  auto s = Read();
  EXPECT_EQ(s.status, "running");
  EXPECT_NE(s.error.find("rs0/c:27017: no heartbeat"), std::string::npos) << s.error;
  WriteNodePhase(*st_, "2026-12-06T10:00:00Z", c_, "done");  // its agent came back
  EXPECT_EQ(Read().status, "done");
}

}  // namespace
}  // namespace pbm::control
