// NodeRestore end to end on wtmongod: a 1-member replset is backed up into a filesystem storage
// the way the backup engine does it ($backupCursor, each file's first fileSize bytes compressed
// with zstd, storage.bson, $backupCursorExtend to the majority point, file list, metadata), its
// data is changed, and each test restores a copy of its dbpath.
//
// wtmongod comes from $PSMDB_BIN, else the test binary's own directory (build/bin), else
// <source>/build/bin.
#include "restore/node_restore.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <thread>

#include "codec/checksum.h"
#include "codec/codec.h"
#include "common/error.h"
#include "common/testing.h"
#include "mongo/client.h"
#include "restore/mongod_process.h"
#include "storage/faulty_storage.h"

namespace pbm::restore {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using Json = backup::Json;

std::string FindWtmongod() {
  std::vector<std::string> candidates;
  if (const char* b = std::getenv("PSMDB_BIN")) candidates.push_back(std::string(b) + "/wtmongod");
  std::error_code ec;
  fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (!ec) candidates.push_back((exe.parent_path() / "wtmongod").string());
  fs::path src = fs::path(__FILE__).parent_path().parent_path().parent_path();
  candidates.push_back((src / "build" / "bin" / "wtmongod").string());
  for (const auto& c : candidates) {
    if (::access(c.c_str(), X_OK) == 0) return c;
  }
  return "";
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

void WriteFile(const std::string& path, const std::string& data) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << data;
}

// SHA-256 of every regular file under dir, by relative path.
std::map<std::string, std::string> HashTree(const std::string& dir) {
  std::map<std::string, std::string> out;
  for (const auto& e : fs::recursive_directory_iterator(dir)) {
    if (e.is_regular_file()) {
      out[fs::relative(e.path(), dir).string()] = codec::Sha256::Of(ReadFile(e.path()));
    }
  }
  return out;
}

// A codec Sink that writes into a storage Writer.
class WriterSink : public codec::Sink {
 public:
  explicit WriterSink(storage::Writer* w) : w_(w) {}
  void Write(const void* d, size_t n) override {
    w_->Write(d, n);
    bytes_ += static_cast<int64_t>(n);
  }
  void Close() override { w_->Commit(); }
  int64_t bytes() const { return bytes_; }

 private:
  storage::Writer* w_;
  int64_t bytes_ = 0;
};

// Uploads the first `size` bytes of `path` as `object`, zstd-compressed, as the backup engine
// does; returns the file list entry.
backup::FileEntry Upload(storage::Storage& st, const std::string& path, const std::string& name,
                         int64_t size, const std::string& object) {
  auto w = st.Create(object);
  WriterSink sink(w.get());
  auto comp = codec::NewCompressor(codec::Codec::kZstd, 3, &sink);
  codec::Sha256 sha;
  std::ifstream in(path, std::ios::binary);
  std::vector<char> buf(1 << 20);
  int64_t left = size;
  while (left > 0) {
    in.read(buf.data(), std::min<int64_t>(left, buf.size()));
    std::streamsize n = in.gcount();
    if (n <= 0) break;
    comp->Write(buf.data(), n);
    sha.Update(buf.data(), n);
    left -= n;
  }
  comp->Close();
  backup::FileEntry f;
  f.name = name;
  f.size = size - left;
  f.stored_size = sink.bytes();
  f.sha256 = sha.HexDigest();
  f.object = object;
  return f;
}

MongodProcess::Options NodeOptions(const std::string& bin, const std::string& dbpath, int port,
                                   bool replset) {
  MongodProcess::Options o;
  o.binary = bin;
  o.dbpath = dbpath;
  o.port = port;
  o.logpath = dbpath + ".log";
  if (replset) o.args = {"--replSet", "rs0"};
  o.start_timeout = std::chrono::seconds(30);
  o.stop_timeout = std::chrono::seconds(30);
  return o;
}

void WaitPrimary(MongodProcess& m) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (true) {
    Json h = m.client().RunCommand("admin", {{"hello", 1}});
    if (h.value("isWritablePrimary", false)) return;
    ASSERT_LT(std::chrono::steady_clock::now(), deadline) << "not PRIMARY: " << h.dump();
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

std::vector<int> Ids(const mongo::Client& c, const std::string& coll) {
  std::vector<int> ids;
  for (const auto& d : c.Find("test", coll, Json::object(), {{"sort", {{"_id", 1}}}})) {
    ids.push_back(d["_id"].get<int>());
  }
  return ids;
}

std::vector<int> Range(int from, int to) {
  std::vector<int> v;
  for (int i = from; i < to; ++i) v.push_back(i);
  return v;
}

class NodeRestoreTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    bin_ = FindWtmongod();
    if (bin_.empty()) return;
    const char* tmp = std::getenv("TEST_TMPDIR");
    std::string tmpl =
        (fs::path(tmp ? tmp : fs::temp_directory_path().string()) / "pbm-restore-XXXXXX").string();
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    root_ = tmpl;
    base_storage_ =
        std::shared_ptr<storage::Storage>(storage::NewFilesystemStorage(root_ + "/storage"));
    template_db_ = root_ + "/template/db";
    fs::create_directories(template_db_);
    port_ = pbm::testing::ClaimPort();

    MongodProcess node(NodeOptions(bin_, template_db_, port_, true));
    node.Start();
    const mongo::Client& c = node.client();
    c.RunCommand(
        "admin",
        {{"replSetInitiate",
          {{"_id", "rs0"}, {"members", Json::array({{{"_id", 0}, {"host", Host(port_)}}})}}}});
    WaitPrimary(node);
    Json docs = Json::array();
    for (int i = 0; i < 100; ++i) docs.push_back({{"_id", i}, {"pad", std::string(300, 'x')}});
    c.RunCommand("test",
                 {{"insert", "c"}, {"documents", docs}, {"writeConcern", {{"w", "majority"}}}});

    // The backup, as the backup engine takes it.
    backup_name_ = backup::BackupNameFor(1767225600);  // 2026-01-01T00:00:00Z
    auto batch = c.Aggregate("admin", 1, Json::array({{{"$backupCursor", Json::object()}}}));
    std::vector<Json> docs_out = batch.docs;
    while (batch.id != 0) {  // the rest of the list; an empty batch means the list is done
      batch = c.GetMore("admin", batch.ns, batch.id, 200);
      if (batch.docs.empty()) break;
      docs_out.insert(docs_out.end(), batch.docs.begin(), batch.docs.end());
    }
    int64_t cursor_id = batch.id;
    std::string cursor_ns = batch.ns;
    ASSERT_FALSE(docs_out.empty());
    Json meta = docs_out[0]["metadata"];
    std::string dbpath = meta["dbpath"].get<std::string>();
    std::map<std::string, backup::FileEntry> files;
    auto upload = [&](const Json& d) {
      std::string path = d["filename"].get<std::string>();
      std::string rel = fs::relative(path, dbpath).string();
      files[rel] = Upload(*base_storage_, path, rel, d["fileSize"].get<int64_t>(),
                          backup_name_ + "/rs0/" + rel + ".zst");
    };
    for (size_t i = 1; i < docs_out.size(); ++i) upload(docs_out[i]);
    upload({{"filename", dbpath + "/storage.bson"},
            {"fileSize", static_cast<int64_t>(fs::file_size(dbpath + "/storage.bson"))}});
    Json hello = c.RunCommand("admin", {{"hello", 1}});
    Json ts_json = hello["lastWrite"]["majorityOpTime"]["ts"];
    mongo::Timestamp ts = mongo::Timestamp::FromJson(ts_json);
    auto ext = c.Aggregate(
        "admin", 1,
        Json::array(
            {{{"$backupCursorExtend", {{"backupId", meta["backupId"]}, {"timestamp", ts_json}}}}}));
    for (const auto& d : ext.docs) upload(d);
    c.KillCursor("admin", cursor_ns, cursor_id);

    backup::FileList list;
    list.backup = backup_name_;
    list.replset = "rs0";
    list.codec = "zstd";
    for (auto& [name, f] : files) list.files.push_back(f);
    base_storage_->WriteAll(backup::FileListObjectName(backup_name_, "rs0"), Json(list).dump());
    Json build = c.RunCommand("admin", {{"buildInfo", 1}});
    backup::BackupMeta bm;
    bm.name = backup_name_;
    bm.type = "physical";
    bm.status = "done";
    bm.compression = "zstd";
    backup::ReplsetMeta rs;
    rs.name = "rs0";
    rs.node = Host(port_);
    rs.status = "done";
    rs.last_write_ts = {ts.t, ts.i};
    rs.mongodb_version = build.value("version", std::string());
    rs.mongod_opts.dbpath = dbpath;
    bm.replsets.push_back(rs);
    bm.last_write_ts = rs.last_write_ts;
    base_storage_->WriteAll(backup::MetaObjectName(backup_name_), Json(bm).dump());
    restore_to_ = rs.last_write_ts;

    // The data changes after the backup.
    Json more = Json::array();
    for (int i = 100; i < 150; ++i) more.push_back({{"_id", i}});
    c.RunCommand("test", {{"insert", "c"}, {"documents", more}});
    c.RunCommand("test",
                 {{"delete", "c"},
                  {"deletes", Json::array({{{"q", {{"_id", {{"$lt", 10}}}}}, {"limit", 0}}})}});
    c.RunCommand("test", {{"insert", "after"}, {"documents", Json::array({{{"x", 1}}})}});
    node.Shutdown();
  }

  static void TearDownTestSuite() {
    base_storage_.reset();
    if (!root_.empty() && !std::getenv("KEEP_TMP")) fs::remove_all(root_);
  }

  static std::string Host(int port) { return fmt::format("127.0.0.1:{}", port); }

  void SetUp() override {
    if (bin_.empty()) GTEST_SKIP() << "wtmongod not found (set PSMDB_BIN)";
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = root_ + "/" + info->name();
    db_ = dir_ + "/db";
    fs::create_directories(dir_);
    fs::copy(template_db_, db_, fs::copy_options::recursive);
    entry_ = db_ + "/ps-entry.sh";
    WriteFile(entry_, kEntry);
    fs::permissions(entry_, fs::perms::owner_all);
    before_ = HashTree(db_);
  }

  RestorePlan Plan(int port) {
    RestorePlan p;
    p.storage = base_storage_.get();
    p.backup_name = backup_name_;
    p.source_replset = "rs0";
    p.dbpath = db_;
    p.mongod_binary = bin_;
    p.storage_args = StorageArgs(backup::MongodOptions{});
    p.replset_config = {{"_id", "rs0"},
                        {"version", 1},
                        {"term", 1},
                        {"protocolVersion", 1},
                        {"members", Json::array({{{"_id", 0}, {"host", Host(port)}}})}};
    p.work_dir = dir_ + "/work";
    p.parallelism = 3;
    p.mongod_down_timeout = std::chrono::seconds(30);
    p.mongod_start_timeout = std::chrono::seconds(30);
    p.progress = [this](const Progress& pr) {
      std::lock_guard<std::mutex> l(steps_mu_);
      steps_.push_back(pr.step);
    };
    return p;
  }

  // The dbpath is exactly as before the restore, and the entrypoint is back.
  void ExpectUntouched() {
    EXPECT_EQ(HashTree(db_), before_);
    EXPECT_EQ(ReadFile(entry_), kEntry);
    EXPECT_FALSE(fs::exists(db_ + "/" + kStateFileName));
    EXPECT_FALSE(fs::exists(db_ + "/" + kFallbackDirName));
    EXPECT_FALSE(fs::exists(db_ + "/" + kStagingDirName));
    EXPECT_FALSE(fs::exists(db_ + "/.ps-entry.sh.pbm-hidden"));
  }

  bool Saw(const std::string& step) {
    std::lock_guard<std::mutex> l(steps_mu_);
    return std::find(steps_.begin(), steps_.end(), step) != steps_.end();
  }

  // The steps in the order they were first reported.
  size_t FirstIndex(const std::string& step) {
    std::lock_guard<std::mutex> l(steps_mu_);
    return std::find(steps_.begin(), steps_.end(), step) - steps_.begin();
  }

  // Starts the restored node as a member of rs0 and checks that it holds the backup's data.
  void ExpectRestoredData(int port) {
    MongodProcess m(NodeOptions(bin_, db_, port, true));
    m.Start();
    WaitPrimary(m);
    EXPECT_EQ(Ids(m.client(), "c"), Range(0, 100));
    EXPECT_TRUE(Ids(m.client(), "after").empty());
    m.client().RunCommand("test", {{"insert", "c"},
                                   {"documents", Json::array({{{"_id", 100}}})},
                                   {"writeConcern", {{"w", "majority"}}}});
    EXPECT_EQ(Ids(m.client(), "c").size(), 101u);
    m.Shutdown();
  }

  static constexpr const char* kEntry = "#!/bin/sh\nexec mongod \"$@\"\n";
  static inline std::string bin_;
  static inline std::string root_;
  static inline std::string template_db_;
  static inline std::string backup_name_;
  static inline int port_ = 0;
  static inline backup::ClusterTime restore_to_;
  static inline std::shared_ptr<storage::Storage> base_storage_;

  std::string dir_, db_, entry_;
  std::map<std::string, std::string> before_;
  std::mutex steps_mu_;
  std::vector<std::string> steps_;
};

TEST_F(NodeRestoreTest, RestoresTheBackupAndPutsTheEntrypointBack) {
  // The node is running; the restore shuts it down itself (plan.node_uri).
  int port = pbm::testing::ClaimPort();
  MongodProcess node(NodeOptions(bin_, db_, port, true));
  node.Start();
  RestorePlan p = Plan(port);
  p.node_uri = fmt::format("mongodb://{}/?directConnection=true", Host(port));
  NodeRestore r(std::move(p));
  r.Run();
  node.Kill();  // reaps the exited process
  EXPECT_EQ(r.backup().replset.last_write_ts, restore_to_);
  EXPECT_EQ(ReadFile(entry_), kEntry);
  EXPECT_FALSE(fs::exists(db_ + "/" + kStateFileName));
  EXPECT_FALSE(fs::exists(db_ + "/" + kFallbackDirName));
  EXPECT_FALSE(fs::exists(db_ + "/.ps-entry.sh.pbm-hidden"));
  EXPECT_FALSE(fs::exists(db_ + "/" + kStagingDirName));
  EXPECT_TRUE(fs::exists(dir_ + "/work/mongod-restore-2-recover.log"));
  // Every step ran, in this order: the whole download before the node is stopped.
  std::vector<std::string> order = {"Validate",          "Download",       "HideEntrypoint",
                                    "ShutdownMongod",    "WaitMongodDown", "MoveDataAside",
                                    "MoveStagedIn",      "Recover",        "Commit",
                                    "RestoreEntrypoint", "DropFallback"};
  for (size_t i = 0; i < order.size(); ++i) {
    EXPECT_TRUE(Saw(order[i])) << order[i];
    if (i > 0) {
      EXPECT_LT(FirstIndex(order[i - 1]), FirstIndex(order[i])) << order[i];
    }
  }
  {
    // The last Download report comes before the node is stopped too.
    std::lock_guard<std::mutex> l(steps_mu_);
    auto last_download = std::find(steps_.rbegin(), steps_.rend(), "Download");
    EXPECT_LT(static_cast<size_t>(steps_.rend() - last_download - 1),
              static_cast<size_t>(std::find(steps_.begin(), steps_.end(), "HideEntrypoint") -
                                  steps_.begin()));
  }
  ExpectRestoredData(port);
}

// The name of the object of a collection file, and the storage that serves it corrupted.
std::string CollectionObject(storage::Storage& st, const std::string& backup_name) {
  auto files = backup::Json::parse(st.ReadAll(backup::FileListObjectName(backup_name, "rs0")))
                   .get<backup::FileList>();
  std::string victim;
  for (const auto& f : files.files) {
    if (f.name.rfind("collection-", 0) == 0) victim = f.object;
  }
  return victim;
}

TEST_F(NodeRestoreTest, CorruptObjectIsRefusedBeforeTheNodeIsTouched) {
  // The node's mongod is down (the caller would stop it): the dbpath stays byte-identical.
  std::string victim = CollectionObject(*base_storage_, backup_name_);
  ASSERT_FALSE(victim.empty());
  storage::FaultyStorage faulty(base_storage_);
  faulty.CorruptByte(victim, 20);
  RestorePlan p = Plan(pbm::testing::ClaimPort());
  p.storage = &faulty;
  try {
    NodeRestore(std::move(p)).Run();
    FAIL() << "the corrupt object was not noticed";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kCorrupt) << e.what();
    EXPECT_THAT(e.what(), HasSubstr(": Download: "));
    EXPECT_THAT(e.what(), HasSubstr(victim));
    EXPECT_THAT(e.what(), HasSubstr("the staging copy was removed, the node was not touched"));
  }
  ExpectUntouched();
  EXPECT_FALSE(Saw("HideEntrypoint"));
  EXPECT_FALSE(Saw("MoveDataAside"));
}

TEST_F(NodeRestoreTest, CorruptObjectLeavesTheRunningNodeAlone) {
  // The node's mongod runs and the restore would shut it down itself (plan.node_uri): a corrupt
  // object is found while downloading, before that; the same mongod keeps serving, untouched.
  // Standalone: a replset member would write (noops, elections) and change its files.
  int port = pbm::testing::ClaimPort();
  MongodProcess node(NodeOptions(bin_, db_, port, false));
  node.Start();
  std::vector<int> ids_before = Ids(node.client(), "c");
  ASSERT_EQ(ids_before.size(), 140u);  // the data changed after the backup
  // Idle: wtmongod checkpoints every 60 s (--syncdelay), far beyond this test.
  auto running_before = HashTree(db_);
  Json status_before = node.client().RunCommand("admin", {{"serverStatus", 1}});

  std::string victim = CollectionObject(*base_storage_, backup_name_);
  ASSERT_FALSE(victim.empty());
  storage::FaultyStorage faulty(base_storage_);
  faulty.CorruptByte(victim, 20);
  RestorePlan p = Plan(port);
  p.storage = &faulty;
  p.node_uri = fmt::format("mongodb://{}/?directConnection=true", Host(port));
  try {
    NodeRestore(std::move(p)).Run();
    FAIL() << "the corrupt object was not noticed";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kCorrupt) << e.what();
    EXPECT_THAT(e.what(), HasSubstr(": Download: "));
    EXPECT_THAT(e.what(), HasSubstr(victim));
  }
  EXPECT_FALSE(Saw("HideEntrypoint"));
  EXPECT_FALSE(Saw("ShutdownMongod"));
  // The same process, never restarted, still the primary with the same data.
  Json status_after = node.client().RunCommand("admin", {{"serverStatus", 1}});
  EXPECT_EQ(status_after.value("pid", Json()), status_before.value("pid", Json()));
  EXPECT_GE(status_after.value("uptime", 0.0), status_before.value("uptime", 0.0));
  EXPECT_EQ(Ids(node.client(), "c"), ids_before);
  EXPECT_EQ(HashTree(db_), running_before);
  EXPECT_EQ(ReadFile(entry_), kEntry);
  EXPECT_FALSE(fs::exists(db_ + "/" + kStateFileName));
  EXPECT_FALSE(fs::exists(db_ + "/" + kStagingDirName));
  EXPECT_FALSE(fs::exists(db_ + "/" + kFallbackDirName));
  node.Shutdown();
}

TEST_F(NodeRestoreTest, ChecksumMismatchFailsNamingTheFile) {
  // A second backup whose file list has one wrong digest (the objects are the first's).
  std::string name = backup::BackupNameFor(1767225601);
  auto list =
      backup::Json::parse(base_storage_->ReadAll(backup::FileListObjectName(backup_name_, "rs0")))
          .get<backup::FileList>();
  list.backup = name;
  std::string& sha = list.files.back().sha256;
  sha[0] = sha[0] == '0' ? '1' : '0';
  std::string victim = list.files.back().name;
  base_storage_->WriteAll(backup::FileListObjectName(name, "rs0"), Json(list).dump());
  auto meta = backup::Json::parse(base_storage_->ReadAll(backup::MetaObjectName(backup_name_)))
                  .get<backup::BackupMeta>();
  meta.name = name;
  base_storage_->WriteAll(backup::MetaObjectName(name), Json(meta).dump());
  RestorePlan p = Plan(pbm::testing::ClaimPort());
  p.backup_name = name;
  try {
    NodeRestore(std::move(p)).Run();
    FAIL() << "the digest mismatch was not noticed";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kCorrupt) << e.what();
    EXPECT_THAT(e.what(), HasSubstr("file " + victim));
    EXPECT_THAT(e.what(), HasSubstr("SHA-256 mismatch"));
  }
  ExpectUntouched();
  EXPECT_FALSE(Saw("HideEntrypoint"));
}

TEST_F(NodeRestoreTest, RecoverFailureRollsBack) {
  // A truncate point before the backup's checkpoint: the recovering mongod refuses to start.
  RestorePlan p = Plan(pbm::testing::ClaimPort());
  p.restore_to = {1, 1};
  try {
    NodeRestore(std::move(p)).Run();
    FAIL() << "recovery to an impossible point succeeded";
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), HasSubstr(": Recover: "));
    EXPECT_THAT(e.what(), HasSubstr("oplogTruncateAfterPoint"));
    EXPECT_THAT(e.what(), HasSubstr("the old data and the entrypoint are back"));
  }
  ExpectUntouched();
}

// Runs NodeRestore(plan).Run() in a child process and kills it (SIGKILL) once `at` returns true
// for a progress report.
void RunAndKill(RestorePlan p, std::function<bool(const Progress&)> at) {
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  int wfd = fds[1];
  p.progress = [wfd, at](const Progress& pr) {
    if (at(pr)) {
      ssize_t n = write(wfd, "x", 1);
      (void)n;
      sleep(60);  // killed here
    }
  };
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    close(fds[0]);
    try {
      NodeRestore(std::move(p)).Run();
    } catch (...) {
      _exit(2);
    }
    _exit(3);
  }
  close(fds[1]);
  pollfd pfd{fds[0], POLLIN, 0};
  int ready = poll(&pfd, 1, 30000);
  kill(child, SIGKILL);
  int status = 0;
  waitpid(child, &status, 0);
  close(fds[0]);
  ASSERT_EQ(ready, 1) << "the child never reached the point to be killed at";
  ASSERT_TRUE(WIFSIGNALED(status));
}

TEST_F(NodeRestoreTest, KilledDuringStagingOnlyLosesTheStaging) {
  // The node's mongod runs (the restore would stop it itself) while the agent dies in the
  // middle of the download: at startup only the staging directory goes, mongod is not waited
  // for (it still holds mongod.lock) nor touched.
  int port = pbm::testing::ClaimPort();
  MongodProcess node(NodeOptions(bin_, db_, port, false));  // standalone: no writes of its own
  node.Start();
  auto running_before = HashTree(db_);  // idle: no checkpoint within 60 s
  RestorePlan p = Plan(port);
  p.node_uri = fmt::format("mongodb://{}/?directConnection=true", Host(port));
  p.parallelism = 1;
  RunAndKill(std::move(p),
             [](const Progress& pr) { return pr.step == "Download" && pr.files_done == 2; });
  // Midway: some files staged, the state file says so, the node untouched.
  EXPECT_THAT(ReadFile(db_ + "/" + kStateFileName), HasSubstr("\"staging\""));
  EXPECT_TRUE(fs::is_directory(db_ + "/" + kStagingDirName));
  EXPECT_FALSE(fs::is_empty(db_ + "/" + kStagingDirName));
  EXPECT_EQ(ReadFile(entry_), kEntry);
  EXPECT_FALSE(fs::exists(db_ + "/" + kFallbackDirName));
  // A new restore refuses to start over it.
  try {
    NodeRestore(Plan(pbm::testing::ClaimPort())).Run();
    FAIL() << "a restore started over a pending one";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kConflict);
  }

  auto t0 = std::chrono::steady_clock::now();
  EXPECT_EQ(RecoverInterruptedRestore(db_, std::chrono::seconds(20)),
            InterruptedRestore::kStagingRemoved);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(5))
      << "waited for the running mongod";
  EXPECT_FALSE(fs::exists(db_ + "/" + kStagingDirName));
  EXPECT_FALSE(fs::exists(db_ + "/" + kStateFileName));
  EXPECT_EQ(ReadFile(entry_), kEntry);
  EXPECT_EQ(HashTree(db_), running_before);
  EXPECT_EQ(Ids(node.client(), "c").size(), 140u);
  EXPECT_EQ(RecoverInterruptedRestore(db_), InterruptedRestore::kNone);
  node.Shutdown();
}

TEST_F(NodeRestoreTest, KilledAfterTheNodeStoppedIsUndoneAtStartup) {
  // Killed once the staged files are in the dbpath and the old data is aside.
  RunAndKill(Plan(pbm::testing::ClaimPort()),
             [](const Progress& pr) { return pr.step == "MoveStagedIn"; });
  EXPECT_FALSE(fs::exists(entry_));
  EXPECT_TRUE(fs::exists(db_ + "/" + kFallbackDirName + "/WiredTiger"));
  EXPECT_TRUE(fs::exists(db_ + "/WiredTiger"));
  EXPECT_FALSE(fs::exists(db_ + "/" + kStagingDirName));
  EXPECT_THAT(ReadFile(db_ + "/" + kStateFileName), HasSubstr("\"moving_in\""));
  EXPECT_EQ(RecoverInterruptedRestore(db_, std::chrono::seconds(10)),
            InterruptedRestore::kRolledBack);
  ExpectUntouched();
  EXPECT_EQ(RecoverInterruptedRestore(db_), InterruptedRestore::kNone);
}

TEST_F(NodeRestoreTest, StateFileOfTheOldProtocolIsStillRolledBack) {
  // A state file written before the download moved into the staging directory ("downloading":
  // new files in the dbpath, the old data aside) is rolled back as before.
  NodeRestore r(Plan(pbm::testing::ClaimPort()));
  r.Validate();
  r.Download();
  r.HideEntrypoint();
  r.WaitMongodDown();
  r.MoveDataAside();
  r.MoveStagedIn();
  std::string state = ReadFile(db_ + "/" + kStateFileName);
  size_t at = state.find("\"moving_in\"");
  ASSERT_NE(at, std::string::npos) << state;
  state.replace(at, 11, "\"downloading\"");
  WriteFile(db_ + "/" + kStateFileName, state);
  EXPECT_EQ(RecoverInterruptedRestore(db_, std::chrono::seconds(10)),
            InterruptedRestore::kRolledBack);
  ExpectUntouched();
}

TEST_F(NodeRestoreTest, CommittedRestoreInterruptedIsCompletedAtStartup) {
  // The steps one by one, as a coordinating caller runs them; the process "dies" after Commit.
  int port = pbm::testing::ClaimPort();
  {
    NodeRestore r(Plan(port));
    r.Validate();
    EXPECT_THROW(r.HideEntrypoint(), Error);  // never before the download
    EXPECT_EQ(ReadFile(entry_), kEntry);
    r.Download();
    EXPECT_TRUE(fs::exists(db_ + "/" + kStagingDirName + "/WiredTiger"));
    EXPECT_EQ(ReadFile(entry_), kEntry);
    EXPECT_THROW(r.MoveStagedIn(), Error);  // never before the old data is aside
    r.HideEntrypoint();
    r.HideEntrypoint();  // idempotent
    r.ShutdownMongod();  // no node_uri: no-op
    r.WaitMongodDown();
    r.MoveDataAside();
    EXPECT_TRUE(fs::exists(db_ + "/" + kStagingDirName + "/WiredTiger"));  // not moved aside
    EXPECT_FALSE(fs::exists(db_ + "/" + kFallbackDirName + "/" + kStagingDirName));
    r.MoveStagedIn();
    EXPECT_FALSE(fs::exists(db_ + "/" + kStagingDirName));
    r.Recover();
    r.Commit();
  }
  EXPECT_FALSE(fs::exists(entry_));
  EXPECT_EQ(RecoverInterruptedRestore(db_), InterruptedRestore::kCompleted);
  EXPECT_EQ(ReadFile(entry_), kEntry);
  EXPECT_FALSE(fs::exists(db_ + "/" + kStateFileName));
  EXPECT_FALSE(fs::exists(db_ + "/" + kFallbackDirName));
  ExpectRestoredData(port);
}

TEST_F(NodeRestoreTest, RunningNodeTimesOutAndIsLeftRunning) {
  // The node's mongod does not stop (no node_uri, nobody stops it): WaitMongodDown times out,
  // the entrypoint comes back, the data was never touched.
  int port = pbm::testing::ClaimPort();
  MongodProcess node(NodeOptions(bin_, db_, port, true));
  node.Start();
  RestorePlan p = Plan(port);
  p.mongod_down_timeout = std::chrono::milliseconds(300);
  try {
    NodeRestore(std::move(p)).Run();
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kTimeout);
    EXPECT_THAT(e.what(), HasSubstr("WaitMongodDown"));
    EXPECT_THAT(e.what(), HasSubstr("still holds mongod.lock"));
  }
  EXPECT_EQ(ReadFile(entry_), kEntry);
  EXPECT_FALSE(fs::exists(db_ + "/" + kStateFileName));
  EXPECT_FALSE(fs::exists(db_ + "/" + kStagingDirName));
  EXPECT_NO_THROW(node.client().RunCommand("admin", {{"ping", 1}}));
  node.Shutdown();
}

TEST_F(NodeRestoreTest, PlanAndBackupCheckedBeforeAnythingIsTouched) {
  auto expect_refused = [&](RestorePlan p, ErrorKind kind, const std::string& text) {
    try {
      NodeRestore(std::move(p)).Run();
      ADD_FAILURE() << "accepted: " << text;
    } catch (const Error& e) {
      EXPECT_EQ(e.kind(), kind) << e.what();
      EXPECT_THAT(e.what(), HasSubstr(text));
      EXPECT_THAT(e.what(), HasSubstr(": Validate: "));
    }
    ExpectUntouched();
  };
  RestorePlan p = Plan(pbm::testing::ClaimPort());
  p.work_dir = db_ + "/logs";
  expect_refused(p, ErrorKind::kInvalidArgument, "must be outside the dbpath");
  p = Plan(pbm::testing::ClaimPort());
  p.replset_config = Json::object();
  expect_refused(p, ErrorKind::kInvalidArgument, "replset config");
  p = Plan(pbm::testing::ClaimPort());
  p.mongod_binary = "/nonexistent/mongod";
  expect_refused(p, ErrorKind::kInvalidArgument, "not an executable");
  p = Plan(pbm::testing::ClaimPort());
  p.backup_name = "2031-01-01T00:00:00Z";
  expect_refused(p, ErrorKind::kNotFound, "not found");
  p = Plan(pbm::testing::ClaimPort());
  backup::MongodOptions node;
  node.block_compressor = "zstd";
  node.encryption = true;
  p.node_options = node;
  p.node_name = "db-0";
  expect_refused(p, ErrorKind::kIncompatible,
                 "cannot be restored on node db-0: encryption: the backup was taken with "
                 "encryption off, this node has it on; block compressor: backup snappy, node "
                 "zstd");
  // A leftover fallback or staging directory is not silently overwritten.
  for (const char* dir : {kFallbackDirName, kStagingDirName}) {
    fs::create_directory(db_ + "/" + dir);
    WriteFile(db_ + "/" + dir + "/mine", "x");
    try {
      NodeRestore(Plan(pbm::testing::ClaimPort())).Run();
      ADD_FAILURE() << "accepted a leftover " << dir;
    } catch (const Error& e) {
      EXPECT_EQ(e.kind(), ErrorKind::kConflict);
      EXPECT_THAT(e.what(), HasSubstr(dir));
    }
    EXPECT_EQ(ReadFile(db_ + "/" + dir + "/mine"), "x");
    fs::remove_all(db_ + "/" + dir);
  }
  // Not enough free space for the staging copy is refused up front. (A backup larger than any
  // disk: its file list claims one enormous file.)
  {
    std::string name = backup::BackupNameFor(1767225602);
    auto list =
        backup::Json::parse(base_storage_->ReadAll(backup::FileListObjectName(backup_name_, "rs0")))
            .get<backup::FileList>();
    list.backup = name;
    list.files.back().size = int64_t{1} << 60;
    base_storage_->WriteAll(backup::FileListObjectName(name, "rs0"), Json(list).dump());
    auto meta = backup::Json::parse(base_storage_->ReadAll(backup::MetaObjectName(backup_name_)))
                    .get<backup::BackupMeta>();
    meta.name = name;
    base_storage_->WriteAll(backup::MetaObjectName(name), Json(meta).dump());
    p = Plan(pbm::testing::ClaimPort());
    p.backup_name = name;
    expect_refused(p, ErrorKind::kIo, "not enough space for the staging copy");
  }
}

TEST_F(NodeRestoreTest, RollbackAfterMoveAsideRestoresEverything) {
  NodeRestore r(Plan(pbm::testing::ClaimPort()));
  r.Validate();
  r.Download();
  r.HideEntrypoint();
  r.WaitMongodDown();
  r.MoveDataAside();
  ASSERT_FALSE(fs::exists(db_ + "/WiredTiger"));
  ASSERT_TRUE(fs::exists(db_ + "/" + kFallbackDirName + "/WiredTiger"));
  ASSERT_TRUE(fs::exists(db_ + "/" + kStagingDirName + "/WiredTiger"));
  r.Rollback();
  ExpectUntouched();
  r.Rollback();  // idempotent
  ExpectUntouched();
}

// Agents on one host start temporary mongods at once, and the kernel's free port can be handed
// to two of them: the one whose mongod loses the race must not talk to the other's.
TEST(MongodProcessTest, APortTakenByAnotherMongodIsNotMistakenForOurs) {
  std::string bin = FindWtmongod();
  if (bin.empty()) GTEST_SKIP() << "wtmongod not built";
  pbm::testing::ScratchDir dir("pbm-mongod-port");
  std::string a_db = dir.path() + "/a", b_db = dir.path() + "/b", c_db = dir.path() + "/c";
  for (const auto& d : {a_db, b_db, c_db}) fs::create_directories(d);
  MongodProcess a(NodeOptions(bin, a_db, pbm::testing::ClaimPort(), false));
  a.Start();

  // A fixed port that is taken: one clear error, no retry. (Which comes first, our mongod
  // failing to listen or the other answering, is a race; both name the port.)
  MongodProcess fixed(NodeOptions(bin, c_db, a.port(), false));
  try {
    fixed.Start();
    FAIL() << "started on a port another mongod serves";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kUnavailable);
    EXPECT_THAT(e.what(), HasSubstr(fmt::format("127.0.0.1:{}", a.port())));
    EXPECT_THAT(e.what(), HasSubstr("(1 port tried); choose a free port"));
  }
  EXPECT_FALSE(fixed.running());

  // A chosen port that turns out taken: the next one is tried.
  MongodProcess::Options o = NodeOptions(bin, b_db, 0, false);
  int calls = 0;
  o.choose_port = [&] { return ++calls == 1 ? a.port() : pbm::testing::ClaimPort(); };
  MongodProcess b(std::move(o));
  b.Start();
  EXPECT_EQ(calls, 2);
  EXPECT_NE(b.port(), a.port());
  Json opts = b.client().RunCommand("admin", {{"getCmdLineOpts", 1}});
  EXPECT_EQ(opts["parsed"]["storage"]["dbPath"], b_db);
  b.Shutdown();
  // The other mongod was left alone.
  EXPECT_EQ(a.client().RunCommand("admin", {{"ping", 1}})["ok"], 1.0);
  a.Shutdown();
}

TEST(RecoverInterruptedRestoreTest, NothingPendingIsNoop) {
  std::string tmpl = (fs::temp_directory_path() / "pbm-rir-XXXXXX").string();
  ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
  WriteFile(tmpl + "/WiredTiger", "x");
  EXPECT_EQ(RecoverInterruptedRestore(tmpl), InterruptedRestore::kNone);
  EXPECT_EQ(ReadFile(tmpl + "/WiredTiger"), "x");
  WriteFile(tmpl + "/" + kStateFileName, "{garbage");
  try {
    RecoverInterruptedRestore(tmpl);
    ADD_FAILURE();
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kCorrupt);
  }
  fs::remove_all(tmpl);
}

TEST(StorageArgsTest, MatchBackupOptions) {
  backup::MongodOptions o;
  o.block_compressor = "zstd";
  o.journal_compressor = "none";
  o.prefix_compression = false;
  o.directory_per_db = true;
  o.directory_for_indexes = true;
  EXPECT_EQ(StorageArgs(o),
            (std::vector<std::string>{"--wiredTigerCollectionBlockCompressor", "zstd",
                                      "--wiredTigerJournalCompressor", "none",
                                      "--wiredTigerIndexPrefixCompression", "false",
                                      "--directoryperdb", "--wiredTigerDirectoryForIndexes"}));
  EXPECT_TRUE(SecurityArgs(o).empty());
  o.encryption = true;
  o.key_file = "/etc/mongod/key";
  o.cipher_mode = "AES256-GCM";
  EXPECT_EQ(SecurityArgs(o),
            (std::vector<std::string>{"--enableEncryption", "--encryptionKeyFile",
                                      "/etc/mongod/key", "--encryptionCipherMode", "AES256-GCM"}));
}

}  // namespace
}  // namespace pbm::restore
