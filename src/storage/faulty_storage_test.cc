#include "storage/faulty_storage.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>

namespace pbm::storage {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

class FaultyStorageTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/pbm-faulty-test-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    base_ = NewFilesystemStorage(dir_);
    faulty_ = std::make_unique<FaultyStorage>(base_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::string dir_;
  std::shared_ptr<Storage> base_;
  std::unique_ptr<FaultyStorage> faulty_;
};

TEST_F(FaultyStorageTest, PassesThroughWhenNotArmed) {
  faulty_->WriteAll("a/b", "hello");
  EXPECT_EQ(faulty_->ReadAll("a/b"), "hello");
  EXPECT_EQ(base_->ReadAll("a/b"), "hello");
  EXPECT_EQ(faulty_->Stat("a/b")->size, 5);
  EXPECT_EQ(faulty_->List("a/").size(), 1u);
  EXPECT_EQ(faulty_->Describe(), "faulty:filesystem:" + dir_);
  faulty_->Remove("a/b");
  EXPECT_TRUE(base_->List("").empty());
}

TEST_F(FaultyStorageTest, FailNthWriteFailsThatWriteAndPublishesNothing) {
  faulty_->FailNthWrite(2);
  {
    auto w = faulty_->Create("bk/x");
    w->Write("one", 3);
    try {
      w->Write("two", 3);
      FAIL() << "second write did not fail";
    } catch (const Error& e) {
      EXPECT_EQ(e.kind(), ErrorKind::kIo);
      EXPECT_THAT(e.what(), HasSubstr("write bk/x"));
      EXPECT_THAT(e.what(), HasSubstr("injected fault"));
    }
    EXPECT_THROW(w->Commit(), Error);  // a failed writer stays failed
  }
  EXPECT_TRUE(base_->List("").empty());
  EXPECT_TRUE(std::filesystem::is_empty(dir_));
  EXPECT_EQ(faulty_->write_calls(), 2);

  // The fault fired once; later writes succeed.
  faulty_->WriteAll("bk/y", "ok");
  EXPECT_EQ(base_->ReadAll("bk/y"), "ok");
}

TEST_F(FaultyStorageTest, CountsFromWhenArmedAcrossWriters) {
  faulty_->WriteAll("a", "1");
  faulty_->WriteAll("b", "2");
  faulty_->FailNthWrite(2, ErrorKind::kUnavailable);
  faulty_->WriteAll("c", "3");
  try {
    faulty_->WriteAll("d", "4");
    FAIL() << "no fault";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kUnavailable);
  }
  std::vector<std::string> names;
  for (const ObjectInfo& info : base_->List("")) names.push_back(info.name);
  EXPECT_THAT(names, ElementsAre("a", "b", "c"));
}

TEST_F(FaultyStorageTest, FailNthCommitDoesNotPublish) {
  faulty_->FailNthCommit(1);
  EXPECT_THROW(faulty_->WriteAll("x", "data"), Error);
  EXPECT_FALSE(base_->Stat("x").has_value());
  EXPECT_EQ(faulty_->commit_calls(), 1);
  faulty_->WriteAll("x", "data");
  EXPECT_EQ(base_->ReadAll("x"), "data");
}

TEST_F(FaultyStorageTest, FailNthReadFailsThatRead) {
  base_->WriteAll("x", "data");
  faulty_->FailNthRead(1);
  try {
    faulty_->ReadAll("x");
    FAIL() << "no fault";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kIo);
    EXPECT_THAT(e.what(), HasSubstr("read x"));
  }
  EXPECT_EQ(faulty_->ReadAll("x"), "data");
  EXPECT_EQ(faulty_->read_calls(), 3);  // the failed one, then a read and the end-of-object read
}

TEST_F(FaultyStorageTest, CorruptByteFlipsOneByteOfReadsOnly) {
  base_->WriteAll("obj", "0123456789");
  base_->WriteAll("other", "0123456789");
  faulty_->CorruptByte("obj", 4);
  std::string got = faulty_->ReadAll("obj");
  ASSERT_EQ(got.size(), 10u);
  for (size_t i = 0; i < got.size(); ++i) {
    if (i == 4) {
      EXPECT_EQ(static_cast<unsigned char>(got[i]), static_cast<unsigned char>('4' ^ 0xFF));
    } else {
      EXPECT_EQ(got[i], "0123456789"[i]) << i;
    }
  }
  EXPECT_EQ(base_->ReadAll("obj"), "0123456789");      // stored bytes unchanged
  EXPECT_EQ(faulty_->ReadAll("other"), "0123456789");  // other objects unaffected

  // Ranges map the offset: byte 4 is the second byte of range [3, 6).
  auto r = faulty_->OpenRange("obj", 3, 3);
  char buf[3];
  ASSERT_EQ(r->Read(buf, 3), 3u);
  EXPECT_EQ(buf[0], '3');
  EXPECT_EQ(static_cast<unsigned char>(buf[1]), static_cast<unsigned char>('4' ^ 0xFF));
  EXPECT_EQ(buf[2], '5');
  auto r2 = faulty_->OpenRange("obj", 5, 5);
  std::string tail(5, '\0');
  ASSERT_EQ(r2->Read(tail.data(), 5), 5u);
  EXPECT_EQ(tail, "56789");

  faulty_->Reset();
  EXPECT_EQ(faulty_->ReadAll("obj"), "0123456789");
  EXPECT_EQ(faulty_->read_calls(), 2);
}

TEST_F(FaultyStorageTest, RejectsBadArming) {
  EXPECT_THROW(faulty_->FailNthWrite(0), Error);
  EXPECT_THROW({ FaultyStorage f(nullptr); }, Error);
}

}  // namespace
}  // namespace pbm::storage
