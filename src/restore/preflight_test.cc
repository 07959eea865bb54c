#include "restore/preflight.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>

#include "codec/checksum.h"
#include "common/error.h"

namespace pbm::restore {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

backup::ReplsetMeta BackupRs() {
  backup::ReplsetMeta rs;
  rs.name = "rs0";
  rs.mongodb_version = "6.0.19-16";
  rs.mongod_opts.encryption = true;
  rs.mongod_opts.cipher_mode = "AES256-GCM";
  rs.mongod_opts.key_check = "1a2b3c4d5e6f7a8b";
  rs.mongod_opts.block_compressor = "zstd";
  rs.mongod_opts.journal_compressor = "zstd";
  rs.mongod_opts.prefix_compression = true;
  return rs;
}

TEST(CompareNodeOptionsTest, SameOptionsNoDifference) {
  backup::ReplsetMeta rs = BackupRs();
  backup::MongodOptions node = rs.mongod_opts;
  node.dbpath = "/elsewhere";  // the path and the key file's path do not matter
  node.key_file = "/etc/other-key";
  EXPECT_TRUE(CompareNodeOptions(rs, node, "6.0.2-1").empty());
  EXPECT_NO_THROW(CheckCompatible("b", rs, node, "6.0.2-1", "n"));
}

TEST(CompareNodeOptionsTest, EveryDifferenceListedAtOnce) {
  backup::ReplsetMeta rs = BackupRs();
  rs.mongod_opts.encryption = false;
  rs.mongod_opts.cipher_mode.clear();
  backup::MongodOptions node;
  node.encryption = true;
  node.cipher_mode = "AES256-CBC";
  node.block_compressor = "snappy";
  node.journal_compressor = "none";
  node.prefix_compression = false;
  node.directory_per_db = true;
  node.directory_for_indexes = true;
  EXPECT_THAT(
      CompareNodeOptions(rs, node, "7.0.2"),
      ElementsAre("version: backup 6.0, node 7.0 (major.minor must match)",
                  "encryption: the backup was taken with encryption off, this node has it on "
                  "(AES256-CBC)",
                  "block compressor: backup zstd, node snappy",
                  "journal compressor: backup zstd, node none",
                  "prefix compression: backup on, node off", "directoryPerDB: backup off, node on",
                  "directoryForIndexes: backup off, node on"));
}

TEST(CompareNodeOptionsTest, EncryptionOnInBackupOffOnNode) {
  backup::ReplsetMeta rs = BackupRs();
  backup::MongodOptions node = rs.mongod_opts;
  node.encryption = false;
  node.cipher_mode.clear();
  node.key_check.clear();
  EXPECT_THAT(CompareNodeOptions(rs, node, "6.0.3"),
              ElementsAre("encryption: the backup was taken with encryption on (AES256-GCM), "
                          "this node has it off"));
}

TEST(CompareNodeOptionsTest, CipherModeAndKeyDiffer) {
  backup::ReplsetMeta rs = BackupRs();
  backup::MongodOptions node = rs.mongod_opts;
  node.cipher_mode = "AES256-CBC";
  node.key_check = "ffffffffffffffff";
  EXPECT_THAT(CompareNodeOptions(rs, node, "6.0.3"),
              ElementsAre("encryption cipher mode: backup AES256-GCM, node AES256-CBC",
                          "encryption key: the backup's key check value 1a2b3c4d5e6f7a8b differs "
                          "from this node's key (ffffffffffffffff)"));
}

TEST(CompareNodeOptionsTest, UnknownVersionOrKeyIsNotCompared) {
  backup::ReplsetMeta rs = BackupRs();
  backup::MongodOptions node = rs.mongod_opts;
  node.key_check.clear();
  EXPECT_TRUE(CompareNodeOptions(rs, node, "").empty());
  rs.mongodb_version.clear();
  EXPECT_TRUE(CompareNodeOptions(rs, node, "8.0.1").empty());
}

TEST(CheckCompatibleTest, OneMessageWithAllDifferences) {
  backup::ReplsetMeta rs = BackupRs();
  backup::MongodOptions node = rs.mongod_opts;
  node.encryption = false;
  node.block_compressor = "snappy";
  try {
    CheckCompatible("2026-01-02T03:04:05Z", rs, node, "7.0.1", "db-0:27017");
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kIncompatible);
    EXPECT_EQ(std::string(e.what()),
              "backup 2026-01-02T03:04:05Z cannot be restored on node db-0:27017: version: "
              "backup 6.0, node 7.0 (major.minor must match); encryption: the backup was taken "
              "with encryption on (AES256-GCM), this node has it off; block compressor: backup "
              "zstd, node snappy");
  }
}

TEST(MajorMinorTest, Versions) {
  EXPECT_EQ(MajorMinor("6.0.19-16"), "6.0");
  EXPECT_EQ(MajorMinor("7.0"), "7.0");
  EXPECT_EQ(MajorMinor("8"), "8");
  EXPECT_EQ(MajorMinor("8.0-rc1"), "8.0");
  EXPECT_EQ(MajorMinor(""), "");
}

TEST(IsSafeRelativePathTest, RefusesEscapes) {
  EXPECT_TRUE(IsSafeRelativePath("collection-7-1.wt"));
  EXPECT_TRUE(IsSafeRelativePath("journal/WiredTigerLog.0000000001"));
  EXPECT_FALSE(IsSafeRelativePath(""));
  EXPECT_FALSE(IsSafeRelativePath("/etc/passwd"));
  EXPECT_FALSE(IsSafeRelativePath("../x"));
  EXPECT_FALSE(IsSafeRelativePath("a/../../x"));
  EXPECT_FALSE(IsSafeRelativePath("a//b"));
  EXPECT_FALSE(IsSafeRelativePath("./a"));
  EXPECT_FALSE(IsSafeRelativePath("a/"));
}

// A hand-made backup on a filesystem storage, to break in each test.
class LoadRestorableBackupTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = std::filesystem::temp_directory_path() / "pbm-preflight-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
    storage_ = storage::NewFilesystemStorage(dir_);
    meta_.name = "2026-01-02T03:04:05Z";
    meta_.type = "physical";
    meta_.status = "done";
    backup::ReplsetMeta rs;
    rs.name = "rs0";
    rs.last_write_ts = {1700000000, 3};
    meta_.replsets.push_back(rs);
    list_.backup = meta_.name;
    list_.replset = "rs0";
    list_.codec = "none";
    for (std::string name : {"WiredTiger", "journal/WiredTigerLog.0000000001"}) {
      backup::FileEntry f;
      f.name = name;
      f.object = meta_.name + "/rs0/" + name;
      std::string data = "data of " + name;
      storage_->WriteAll(f.object, data);
      f.size = f.stored_size = static_cast<int64_t>(data.size());
      f.sha256 = codec::Sha256::Of(data);
      list_.files.push_back(f);
    }
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  void Write() {
    storage_->WriteAll(backup::MetaObjectName(meta_.name), backup::Json(meta_).dump());
    storage_->WriteAll(backup::FileListObjectName(meta_.name, "rs0"), backup::Json(list_).dump());
  }
  // The error of LoadRestorableBackup after Write().
  Error Load() {
    Write();
    try {
      LoadRestorableBackup(*storage_, meta_.name, "rs0");
    } catch (const Error& e) {
      return e;
    }
    return Error(ErrorKind::kInternal, "no error");
  }

  std::string dir_;
  std::unique_ptr<storage::Storage> storage_;
  backup::BackupMeta meta_;
  backup::FileList list_;
};

TEST_F(LoadRestorableBackupTest, CompleteBackupLoads) {
  Write();
  RestorableBackup rb = LoadRestorableBackup(*storage_, meta_.name, "rs0");
  EXPECT_EQ(rb.replset.last_write_ts, (backup::ClusterTime{1700000000, 3}));
  ASSERT_EQ(rb.files.files.size(), 2u);
  EXPECT_EQ(rb.files.files[1].name, "journal/WiredTigerLog.0000000001");
}

TEST_F(LoadRestorableBackupTest, MissingBackupReplsetOrList) {
  try {
    LoadRestorableBackup(*storage_, "2030-01-01T00:00:00Z", "rs0");
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kNotFound);
    EXPECT_THAT(e.what(), HasSubstr("backup 2030-01-01T00:00:00Z not found"));
  }
  Write();
  try {
    LoadRestorableBackup(*storage_, meta_.name, "rs9");
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kNotFound);
    EXPECT_THAT(e.what(), HasSubstr("has no replset rs9 (it has: rs0)"));
  }
  storage_->Remove(backup::FileListObjectName(meta_.name, "rs0"));
  try {
    LoadRestorableBackup(*storage_, meta_.name, "rs0");
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kNotFound);
    EXPECT_THAT(e.what(), HasSubstr("filelist.pbm not found"));
  }
}

TEST_F(LoadRestorableBackupTest, NotDoneOrNotPhysicalRefused) {
  meta_.status = "error";
  meta_.error = "node down";
  Error e = Load();
  EXPECT_EQ(e.kind(), ErrorKind::kInvalidArgument);
  EXPECT_THAT(e.what(), HasSubstr("is not complete (status \"error\": node down)"));
  meta_.status = "done";
  meta_.type = "logical";
  e = Load();
  EXPECT_EQ(e.kind(), ErrorKind::kInvalidArgument);
  EXPECT_THAT(e.what(), HasSubstr("is a logical backup"));
}

TEST_F(LoadRestorableBackupTest, BadFileEntriesAreCorrupt) {
  auto saved = list_;
  list_.files[0].name = "../../etc/passwd";
  Error e = Load();
  EXPECT_EQ(e.kind(), ErrorKind::kCorrupt);
  EXPECT_THAT(e.what(), HasSubstr("\"../../etc/passwd\" is not a relative path"));

  list_ = saved;
  list_.files[1].sha256 = "";
  e = Load();
  EXPECT_EQ(e.kind(), ErrorKind::kCorrupt);
  EXPECT_THAT(e.what(), HasSubstr("file journal/WiredTigerLog.0000000001 has no valid SHA-256"));

  list_ = saved;
  list_.files.push_back(list_.files[0]);
  e = Load();
  EXPECT_EQ(e.kind(), ErrorKind::kCorrupt);
  EXPECT_THAT(e.what(), HasSubstr("listed twice"));

  list_ = saved;
  storage_->Remove(list_.files[0].object);
  e = Load();
  EXPECT_EQ(e.kind(), ErrorKind::kCorrupt);
  EXPECT_THAT(e.what(), HasSubstr("of file WiredTiger is missing"));

  list_ = saved;
  storage_->WriteAll(list_.files[0].object, "short");
  e = Load();
  EXPECT_EQ(e.kind(), ErrorKind::kCorrupt);
  EXPECT_THAT(e.what(), HasSubstr("has 5 bytes, the file list says"));

  list_ = saved;
  list_.codec = "s2";
  e = Load();
  EXPECT_EQ(e.kind(), ErrorKind::kCorrupt);
  EXPECT_THAT(e.what(), HasSubstr("s2 is not supported"));
}

TEST_F(LoadRestorableBackupTest, UnreadableMetadataIsCorrupt) {
  storage_->WriteAll(backup::MetaObjectName(meta_.name), "{not json");
  try {
    LoadRestorableBackup(*storage_, meta_.name, "rs0");
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kCorrupt);
    EXPECT_THAT(e.what(), HasSubstr("read backup metadata"));
  }
}

}  // namespace
}  // namespace pbm::restore
