#include "operator/cron.h"

#include <gtest/gtest.h>

#include "common/error.h"
#include "kube/client.h"

namespace pbm::op {
namespace {

int64_t T(const char* s) { return kube::ParseTime(s); }
std::string S(int64_t t) { return t < 0 ? "none" : kube::FormatTime(t); }

TEST(Cron, PrevFiring) {
  EXPECT_EQ(S(Cron::Parse("0 3 * * *").Prev(T("2026-11-24T10:33:12Z"))), "2026-11-24T03:00:00Z");
  EXPECT_EQ(S(Cron::Parse("0 3 * * *").Prev(T("2026-11-24T02:59:59Z"))), "2026-11-23T03:00:00Z");
  EXPECT_EQ(S(Cron::Parse("0 3 * * *").Prev(T("2026-11-24T03:00:00Z"))), "2026-11-24T03:00:00Z");
  EXPECT_EQ(S(Cron::Parse("*/15 * * * *").Prev(T("2026-11-24T10:44:59Z"))), "2026-11-24T10:30:00Z");
  EXPECT_EQ(S(Cron::Parse("* * * * *").Prev(T("2026-11-24T10:44:59Z"))), "2026-11-24T10:44:00Z");
  // Sunday 05:00 ("0 5 * * 0" as upstream's weekly task); 2026-11-22 is a Sunday.
  EXPECT_EQ(S(Cron::Parse("0 5 * * 0").Prev(T("2026-11-24T10:00:00Z"))), "2026-11-22T05:00:00Z");
  EXPECT_EQ(S(Cron::Parse("0 5 * * sun").Prev(T("2026-11-24T10:00:00Z"))), "2026-11-22T05:00:00Z");
  EXPECT_EQ(S(Cron::Parse("0 5 * * 7").Prev(T("2026-11-24T10:00:00Z"))), "2026-11-22T05:00:00Z");
  EXPECT_EQ(S(Cron::Parse("30 1 1 jan,jul *").Prev(T("2026-11-24T10:00:00Z"))),
            "2026-07-01T01:30:00Z");
  EXPECT_EQ(S(Cron::Parse("0 0 29 2 *").Prev(T("2026-11-24T10:00:00Z"))), "2024-02-29T00:00:00Z");
  EXPECT_EQ(S(Cron::Parse("0 0 30 2 *").Prev(T("2026-11-24T10:00:00Z"))), "none");
  // Both day fields restricted: either matches (the 1st, or any Monday).
  EXPECT_EQ(S(Cron::Parse("0 12 1 * mon").Prev(T("2026-11-24T10:00:00Z"))), "2026-11-23T12:00:00Z");
  EXPECT_EQ(S(Cron::Parse("0 8-18/5 * * *").Prev(T("2026-11-24T17:00:00Z"))),
            "2026-11-24T13:00:00Z");
}

TEST(Cron, RefusesWithTheField) {
  auto msg = [](const char* e) {
    try {
      Cron::Parse(e);
    } catch (const Error& err) {
      return std::string(err.what());
    }
    return std::string("accepted");
  };
  EXPECT_NE(msg("0 3 * *").find("want five fields"), std::string::npos);
  EXPECT_NE(msg("61 3 * * *").find("minute '61' is not a value from 0 to 59"), std::string::npos);
  EXPECT_NE(msg("0 3 * foo *").find("month 'foo'"), std::string::npos);
  EXPECT_NE(msg("0 5-2 * * *").find("runs backwards"), std::string::npos);
  EXPECT_NE(msg("0 3 ,1 * *").find("empty item"), std::string::npos);
  EXPECT_NE(msg("*/0 * * * *").find("step"), std::string::npos);
}

}  // namespace
}  // namespace pbm::op
