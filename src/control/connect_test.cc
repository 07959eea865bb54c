#include "control/connect.h"

#include <gtest/gtest.h>

namespace pbm::control {
namespace {

TEST(WithCredentials, InsertsEscapedUserinfo) {
  EXPECT_EQ(
      WithCredentials("mongodb://localhost:27017/?directConnection=true", "backup", "p@ss:w/rd"),
      "mongodb://backup:p%40ss%3Aw%2Frd@localhost:27017/?directConnection=true");
  EXPECT_EQ(WithCredentials("mongodb://a:1,b:2/?replicaSet=rs0", "u", "x y"),
            "mongodb://u:x%20y@a:1,b:2/?replicaSet=rs0");
}

TEST(WithCredentials, KeepsWhatTheUriSays) {
  // A URI with its own user wins; no user means no change; other schemes are left alone.
  EXPECT_EQ(WithCredentials("mongodb://me:pw@h:1/", "backup", "x"), "mongodb://me:pw@h:1/");
  EXPECT_EQ(WithCredentials("mongodb://h:1/", "", "x"), "mongodb://h:1/");
  EXPECT_EQ(WithCredentials("mongodb+srv://h/", "u", "p"), "mongodb+srv://h/");
  // An '@' in the query (e.g. an email in appName) is not userinfo.
  EXPECT_EQ(WithCredentials("mongodb://h:1/?appName=a@b", "u", "p"),
            "mongodb://u:p@h:1/?appName=a@b");
}

}  // namespace
}  // namespace pbm::control
