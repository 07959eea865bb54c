#include "storage/key_file.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>

namespace wtm::storage {
namespace {

namespace fs = std::filesystem;

// base64 of the bytes 0x00..0x1f.
constexpr char kKey0to31[] = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

class KeyFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (fs::temp_directory_path() / "wtm_keyfile_XXXXXX").string();
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string Write(const std::string& name, const std::string& text, mode_t mode) {
    std::string path = dir_ + "/" + name;
    std::ofstream(path) << text;
    EXPECT_EQ(chmod(path.c_str(), mode), 0);
    return path;
  }

  // The message LoadKeyFile throws, or "" if it did not throw.
  static std::string ErrorOf(const std::string& path) {
    try {
      LoadKeyFile(path);
    } catch (const std::runtime_error& e) {
      return e.what();
    }
    return "";
  }

  std::string dir_;
};

TEST_F(KeyFileTest, LoadsKeyWithSurroundingWhitespace) {
  std::string path = Write("key", std::string("  ") + kKey0to31 + "\n\n", 0600);
  EncryptionKey key = LoadKeyFile(path);
  for (int i = 0; i < 32; ++i) EXPECT_EQ(key[i], i);
}

TEST_F(KeyFileTest, AcceptsOwnerReadOnly) {
  std::string path = Write("key", kKey0to31, 0400);
  EXPECT_EQ(LoadKeyFile(path)[31], 31);
}

TEST_F(KeyFileTest, FollowsSymlinkAndChecksTarget) {
  std::string target = Write("real", kKey0to31, 0600);
  std::string link = dir_ + "/link";
  fs::create_symlink(target, link);
  EXPECT_EQ(LoadKeyFile(link)[1], 1);
}

TEST_F(KeyFileTest, MissingFile) {
  std::string path = dir_ + "/nope";
  EXPECT_EQ(ErrorOf(path),
            "encryption key file " + path + ": cannot open: No such file or directory");
}

TEST_F(KeyFileTest, PermissionsTooOpen) {
  std::string path = Write("key", kKey0to31, 0644);
  EXPECT_EQ(ErrorOf(path), "encryption key file " + path +
                               ": permissions are too open (0644); it must be readable by the "
                               "owner only (chmod 600)");
  path = Write("key2", kKey0to31, 0640);
  EXPECT_NE(ErrorOf(path).find("(0640)"), std::string::npos);
  path = Write("key3", kKey0to31, 0601);
  EXPECT_NE(ErrorOf(path).find("(0601)"), std::string::npos);
}

TEST_F(KeyFileTest, RefusesDirectory) {
  std::string path = dir_ + "/sub";
  fs::create_directory(path);
  chmod(path.c_str(), 0700);
  EXPECT_EQ(ErrorOf(path), "encryption key file " + path + ": not a regular file");
}

TEST_F(KeyFileTest, RefusesBadBase64) {
  for (const char* text : {"not base64 at all!", "AAEC=AwQ",
                           "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8", "", "===="}) {
    SCOPED_TRACE(text);
    std::string path = Write("key", text, 0600);
    EXPECT_EQ(ErrorOf(path), "encryption key file " + path +
                                 ": not a base64-encoded 32-byte key (not valid base64)");
  }
}

TEST_F(KeyFileTest, RefusesWrongLength) {
  // 20 bytes: 28 characters with one '=' of padding.
  std::string path = Write("key", "AAECAwQFBgcICQoLDA0ODxAREhM=", 0600);
  EXPECT_EQ(ErrorOf(path), "encryption key file " + path +
                               ": not a base64-encoded 32-byte key (decoded 20 bytes)");
  // 33 bytes: no padding.
  path = Write("key2", "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8g", 0600);
  EXPECT_NE(ErrorOf(path).find("(decoded 33 bytes)"), std::string::npos);
  // 31 bytes: two '=' of padding.
  path = Write("key3", "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHg==", 0600);
  EXPECT_NE(ErrorOf(path).find("(decoded 31 bytes)"), std::string::npos);
}

TEST(KeyCheckValueTest, KnownValues) {
  // HMAC-SHA256(key, "psmdb key check value"), first 8 bytes, computed independently.
  EncryptionKey zeros{};
  EXPECT_EQ(KeyCheckValue(zeros), "b1c32c51abc9ba86");
  EncryptionKey seq;
  for (int i = 0; i < 32; ++i) seq[i] = static_cast<uint8_t>(i);
  EXPECT_EQ(KeyCheckValue(seq), "d1bde11ac68063c8");
}

TEST(KeyCheckValueTest, StableAndDistinct) {
  EncryptionKey a{}, b{};
  b[31] = 1;
  EXPECT_EQ(KeyCheckValue(a), KeyCheckValue(a));
  EXPECT_NE(KeyCheckValue(a), KeyCheckValue(b));
  EXPECT_EQ(KeyCheckValue(b).size(), 16u);
}

}  // namespace
}  // namespace wtm::storage
