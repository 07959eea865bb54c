#include "backoff.h"

#include <gtest/gtest.h>

namespace devcluster {
namespace {

TEST(BackOffTest, DoublesFromInitialUpToMax) {
  BackOff b({Millis{1000}, Millis{10000}, Millis{10000}});
  EXPECT_EQ(b.current(), Millis{0});
  EXPECT_EQ(b.Next(Millis{0}), Millis{1000});
  EXPECT_EQ(b.Next(Millis{0}), Millis{2000});
  EXPECT_EQ(b.Next(Millis{500}), Millis{4000});
  EXPECT_EQ(b.Next(Millis{0}), Millis{8000});
  EXPECT_EQ(b.Next(Millis{0}), Millis{10000});
  EXPECT_EQ(b.Next(Millis{0}), Millis{10000});
  EXPECT_EQ(b.current(), Millis{10000});
}

TEST(BackOffTest, KubeletDefaults) {
  BackOff b({Millis{10000}, Millis{300000}, Millis{600000}});
  const int64_t want[] = {10, 20, 40, 80, 160, 300, 300};
  for (int64_t s : want) EXPECT_EQ(b.Next(Millis{1000}), Millis{s * 1000});
}

TEST(BackOffTest, ResetsAfterALongEnoughRun) {
  BackOff b({Millis{1000}, Millis{10000}, Millis{10000}});
  b.Next(Millis{0});
  b.Next(Millis{0});
  EXPECT_EQ(b.Next(Millis{9999}), Millis{4000});   // just short of the reset: keeps doubling
  EXPECT_EQ(b.Next(Millis{10000}), Millis{1000});  // ran 10 s OK: starts over
  EXPECT_EQ(b.Next(Millis{0}), Millis{2000});
}

TEST(BackOffTest, InitialAboveMaxIsCapped) {
  BackOff b({Millis{5000}, Millis{2000}, Millis{10000}});
  EXPECT_EQ(b.Next(Millis{0}), Millis{2000});
  EXPECT_EQ(b.Next(Millis{0}), Millis{2000});
}

TEST(FormatDurationTest, HowDelaysAppearInTheLog) {
  EXPECT_EQ(FormatDuration(Millis{0}), "0ms");
  EXPECT_EQ(FormatDuration(Millis{250}), "250ms");
  EXPECT_EQ(FormatDuration(Millis{2000}), "2s");
  EXPECT_EQ(FormatDuration(Millis{1500}), "1.5s");
  EXPECT_EQ(FormatDuration(Millis{12345}), "12.345s");
  EXPECT_EQ(FormatDuration(Millis{300000}), "300s");
}

}  // namespace
}  // namespace devcluster
