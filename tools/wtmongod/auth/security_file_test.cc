#include "auth/security_file.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>

namespace wtm::auth {
namespace {

class TempKey {
 public:
  TempKey(const std::string& text, mode_t mode) {
    char tmpl[] = "/tmp/wtm_keyfile_XXXXXX";
    int fd = mkstemp(tmpl);
    close(fd);
    path_ = tmpl;
    std::ofstream(path_) << text;
    chmod(path_.c_str(), mode);
  }
  ~TempKey() { unlink(path_.c_str()); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

std::string ErrorOf(const std::string& path) {
  try {
    ReadSecurityFile(path);
  } catch (const SecurityFileError& e) {
    return e.what();
  }
  return "";
}

TEST(SecurityFileTest, WhitespaceIsStripped) {
  TempKey k("  abc def\nGHI+/=\n\n", 0600);
  EXPECT_EQ(ReadSecurityFile(k.path()), std::vector<std::string>{"abcdefGHI+/="});
  TempKey ro("secret1\n", 0400);
  EXPECT_EQ(ReadSecurityFile(ro.path()), std::vector<std::string>{"secret1"});
}

TEST(SecurityFileTest, ListOfKeys) {
  TempKey k("- firstkey\n- 'second key'\n", 0600);
  EXPECT_EQ(ReadSecurityFile(k.path()), (std::vector<std::string>{"firstkey", "secondkey"}));
}

TEST(SecurityFileTest, PermissionsTooOpen) {
  for (mode_t mode : {0644, 0640, 0604, 0660, 0700 | 0010}) {
    TempKey k("secretkey\n", mode);
    EXPECT_EQ(ErrorOf(k.path()), "permissions on " + k.path() + " are too open") << mode;
  }
}

TEST(SecurityFileTest, BadContents) {
  TempKey shortkey("abc\n", 0600);
  EXPECT_EQ(ErrorOf(shortkey.path()), "security key in " + shortkey.path() +
                                          " has length 3, must be between 6 and 1024 chars");
  TempKey badchar("abcdef!gh\n", 0600);
  EXPECT_EQ(ErrorOf(badchar.path()), "invalid char in key file " + badchar.path() + ": !");
  TempKey longkey(std::string(1025, 'a'), 0600);
  EXPECT_NE(ErrorOf(longkey.path()).find("has length 1025"), std::string::npos);
  TempKey map("a: b\n", 0600);
  EXPECT_NE(ErrorOf(map.path()).find("must contain a string"), std::string::npos);
  EXPECT_EQ(ErrorOf("/nonexistent/key"),
            "Error reading file /nonexistent/key: No such file or directory");
}

}  // namespace
}  // namespace wtm::auth
