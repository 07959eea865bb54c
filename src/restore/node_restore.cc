#include "restore/node_restore.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <set>
#include <thread>

#include "backup/object_io.h"
#include "codec/checksum.h"
#include "codec/codec.h"
#include "common/error.h"
#include "mongo/client.h"
#include "restore/mongod_process.h"

namespace pbm::restore {
namespace fs = std::filesystem;
using Json = backup::Json;

namespace {

// ---- small POSIX helpers -------------------------------------------------------------------

// Fsyncs a directory so that entries created, renamed or removed in it are durable.
void SyncDir(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) FailErrno("open directory " + path + " to fsync it", errno);
  int rc = ::fsync(fd);
  int e = errno;
  ::close(fd);
  if (rc != 0 && e != EINVAL && e != ENOTSUP) FailErrno("fsync directory " + path, e);
}

void Rename(const std::string& from, const std::string& to) {
  if (::rename(from.c_str(), to.c_str()) != 0) FailErrno("rename " + from + " to " + to, errno);
}

bool Exists(const std::string& path) {
  struct stat st;
  return ::lstat(path.c_str(), &st) == 0;
}

void RemoveAll(const std::string& path) {
  std::error_code ec;
  fs::remove_all(path, ec);
  if (ec) Fail(ErrorKind::kIo, "remove {}: {}", path, ec.message());
}

std::string Parent(const std::string& path) {
  std::string p = fs::path(path).parent_path().string();
  return p.empty() ? "." : p;
}

std::string Basename(const std::string& path) { return fs::path(path).filename().string(); }

// The entrypoint's hidden name: same directory (so the same volume: rename is atomic).
std::string HiddenName(const std::string& entrypoint) {
  return Parent(entrypoint) + "/." + Basename(entrypoint) + ".pbm-hidden";
}

std::string StatePath(const std::string& dbpath) { return dbpath + "/" + kStateFileName; }
std::string StateTmpPath(const std::string& dbpath) { return StatePath(dbpath) + ".tmp"; }
std::string FallbackPath(const std::string& dbpath) { return dbpath + "/" + kFallbackDirName; }
std::string StagingPath(const std::string& dbpath) { return dbpath + "/" + kStagingDirName; }

// ---- the state file ------------------------------------------------------------------------

// Phases, in the order a restore passes them. Rollback phases come after kCommitted only in
// number; a rollback never starts from kCommitted. In kStaging and kStaged mongod runs and only
// the staging directory is ours; from kHidden on, the entrypoint may be hidden.
enum class Phase {
  kStaging,  // downloading into the staging directory
  kStaged,   // the staging directory holds every file, verified and fsynced
  kHidden,
  kMoving,    // old data → fallback
  kMovingIn,  // staging → dbpath
  kRecovering,
  kCommitted,
  kDiscarding,
  kRestoringOld
};

constexpr Phase kAllPhases[] = {Phase::kStaging,   Phase::kStaged,     Phase::kHidden,
                                Phase::kMoving,    Phase::kMovingIn,   Phase::kRecovering,
                                Phase::kCommitted, Phase::kDiscarding, Phase::kRestoringOld};

const char* PhaseName(Phase p) {
  switch (p) {
    case Phase::kStaging:
      return "staging";
    case Phase::kStaged:
      return "staged";
    case Phase::kHidden:
      return "hidden";
    case Phase::kMoving:
      return "moving";
    case Phase::kMovingIn:
      return "moving_in";
    case Phase::kRecovering:
      return "recovering";
    case Phase::kCommitted:
      return "committed";
    case Phase::kDiscarding:
      return "discarding";
    case Phase::kRestoringOld:
      return "restoring_old";
  }
  return "?";
}

struct State {
  std::string backup;
  std::string replset;
  Phase phase = Phase::kStaging;
  std::string entrypoint;
  std::string hidden;
};

void WriteState(const std::string& dbpath, const State& s) {
  Json j = {{"version", 1},
            {"backup", s.backup},
            {"replset", s.replset},
            {"phase", PhaseName(s.phase)},
            {"entrypoint", s.entrypoint},
            {"hidden_entrypoint", s.hidden},
            {"pid", static_cast<int64_t>(::getpid())},
            {"updated", static_cast<int64_t>(::time(nullptr))}};
  std::string data = j.dump(2) + "\n";
  std::string tmp = StateTmpPath(dbpath);
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) FailErrno("write restore state " + tmp, errno);
  size_t off = 0;
  while (off < data.size()) {
    ssize_t n = ::write(fd, data.data() + off, data.size() - off);
    if (n < 0) {
      if (errno == EINTR) continue;
      int e = errno;
      ::close(fd);
      FailErrno("write restore state " + tmp, e);
    }
    off += static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0) {
    int e = errno;
    ::close(fd);
    FailErrno("fsync restore state " + tmp, e);
  }
  ::close(fd);
  Rename(tmp, StatePath(dbpath));
  SyncDir(dbpath);
}

std::optional<State> ReadState(const std::string& dbpath) {
  std::string path = StatePath(dbpath);
  if (!Exists(path)) return std::nullopt;
  std::ifstream in(path);
  if (!in) FailErrno("read restore state " + path, errno);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  try {
    Json j = Json::parse(text);
    State s;
    s.backup = j.at("backup").get<std::string>();
    s.replset = j.value("replset", std::string());
    s.entrypoint = j.at("entrypoint").get<std::string>();
    s.hidden = j.at("hidden_entrypoint").get<std::string>();
    std::string phase = j.at("phase").get<std::string>();
    bool known = false;
    // "downloading" is the phase of state files written before the download moved into the
    // staging directory: new files in the dbpath, old data aside. kMovingIn undoes it the same.
    if (phase == "downloading") phase = PhaseName(Phase::kMovingIn);
    for (Phase p : kAllPhases) {
      if (phase == PhaseName(p)) {
        s.phase = p;
        known = true;
      }
    }
    if (!known) Fail(ErrorKind::kCorrupt, "unknown phase \"{}\"", phase);
    return s;
  } catch (const Json::exception& e) {
    Fail(ErrorKind::kCorrupt, "read restore state {}: {}", path, e.what());
  } catch (const Error& e) {
    Fail(ErrorKind::kCorrupt, "read restore state {}: {}", path, e.what());
  }
}

void RemoveState(const std::string& dbpath) {
  for (const std::string& p : {StateTmpPath(dbpath), StatePath(dbpath)}) {
    if (::unlink(p.c_str()) != 0 && errno != ENOENT) FailErrno("remove " + p, errno);
  }
  SyncDir(dbpath);
}

// Entries of the dbpath that belong to the restore (never moved aside, never discarded).
bool IsOwnEntry(const std::string& name, const State& s, const std::string& dbpath) {
  if (name == kStateFileName || name == std::string(kStateFileName) + ".tmp" ||
      name == kFallbackDirName || name == kStagingDirName) {
    return true;
  }
  for (const std::string& p : {s.entrypoint, s.hidden}) {
    if (Parent(p) == dbpath && Basename(p) == name) return true;
  }
  return false;
}

std::vector<std::string> Entries(const std::string& dir) {
  std::vector<std::string> out;
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    out.push_back(it->path().filename().string());
  }
  if (ec) Fail(ErrorKind::kIo, "list {}: {}", dir, ec.message());
  return out;
}

void UnhideEntrypoint(const State& s) {
  if (!Exists(s.hidden)) return;
  if (Exists(s.entrypoint)) {
    // Something (an init container) put a fresh entrypoint back meanwhile: it wins.
    if (::unlink(s.hidden.c_str()) != 0 && errno != ENOENT) FailErrno("remove " + s.hidden, errno);
  } else {
    Rename(s.hidden, s.entrypoint);
  }
  SyncDir(Parent(s.entrypoint));
}

// Removes the staging directory (a partial or complete download: never the node's data).
void RemoveStaging(const std::string& dbpath) {
  if (!Exists(StagingPath(dbpath))) return;
  RemoveAll(StagingPath(dbpath));
  SyncDir(dbpath);
}

// Puts the old data and the entrypoint back; resumable from any phase before kCommitted.
void RollbackFromState(const std::string& dbpath, State s) {
  if (s.phase == Phase::kCommitted) {
    Fail(ErrorKind::kInternal, "roll back the restore on {}: it is already committed", dbpath);
  }
  // Whatever was staged goes first: it is never the node's data, in any phase.
  RemoveStaging(dbpath);
  if (s.phase == Phase::kStaging || s.phase == Phase::kStaged) {
    // mongod was never stopped nor its entrypoint hidden: nothing else to undo.
    RemoveState(dbpath);
    return;
  }
  if (s.phase == Phase::kMovingIn || s.phase == Phase::kRecovering ||
      s.phase == Phase::kDiscarding) {
    s.phase = Phase::kDiscarding;
    WriteState(dbpath, s);
    for (const std::string& name : Entries(dbpath)) {
      if (!IsOwnEntry(name, s, dbpath)) RemoveAll(dbpath + "/" + name);
    }
    SyncDir(dbpath);
    s.phase = Phase::kRestoringOld;
    WriteState(dbpath, s);
  }
  if (s.phase == Phase::kMoving || s.phase == Phase::kRestoringOld) {
    std::string fallback = FallbackPath(dbpath);
    if (Exists(fallback)) {
      for (const std::string& name : Entries(fallback)) {
        Rename(fallback + "/" + name, dbpath + "/" + name);
      }
      SyncDir(fallback);
      SyncDir(dbpath);
      if (::rmdir(fallback.c_str()) != 0) FailErrno("remove " + fallback, errno);
    }
  }
  UnhideEntrypoint(s);
  RemoveState(dbpath);
}

// Finishes a committed restore: entrypoint back, old data removed, state removed.
void CompleteFromState(const std::string& dbpath, const State& s) {
  UnhideEntrypoint(s);
  RemoveStaging(dbpath);  // gone before the commit; a leftover is harmless
  RemoveAll(FallbackPath(dbpath));
  SyncDir(dbpath);
  RemoveState(dbpath);
}

// ---- streams -------------------------------------------------------------------------------

// A storage Reader as a codec Source.
class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  int get() const { return fd_; }
  int Release() {
    int f = fd_;
    fd_ = -1;
    return f;
  }

 private:
  int fd_;
};

void MkdirAll(const std::string& dbpath, const std::string& rel_dir,
              std::set<std::string>* created) {
  std::string path = dbpath;
  size_t start = 0;
  while (start < rel_dir.size()) {
    size_t slash = rel_dir.find('/', start);
    if (slash == std::string::npos) slash = rel_dir.size();
    path += "/" + rel_dir.substr(start, slash - start);
    if (::mkdir(path.c_str(), 0700) == 0) {
      if (created) created->insert(path);
    } else if (errno != EEXIST) {
      FailErrno("create directory " + path, errno);
    }
    start = slash + 1;
  }
}

Json TimestampJson(const backup::ClusterTime& t) {
  return Json{{"$timestamp", {{"t", t.t}, {"i", t.i}}}};
}

std::string TsString(const backup::ClusterTime& t) { return fmt::format("{}:{}", t.t, t.i); }

bool IsInside(const std::string& path, const std::string& dir) {
  std::error_code ec;
  fs::path p = fs::weakly_canonical(fs::absolute(path), ec);
  fs::path d = fs::weakly_canonical(fs::absolute(dir), ec);
  auto [dend, pit] = std::mismatch(d.begin(), d.end(), p.begin(), p.end());
  return dend == d.end();
}

}  // namespace

// ---- options -------------------------------------------------------------------------------

std::vector<std::string> StorageArgs(const backup::MongodOptions& o) {
  std::vector<std::string> a = {
      "--wiredTigerCollectionBlockCompressor", o.block_compressor,
      "--wiredTigerJournalCompressor",         o.journal_compressor,
      "--wiredTigerIndexPrefixCompression",    o.prefix_compression ? "true" : "false"};
  if (o.directory_per_db) a.push_back("--directoryperdb");
  if (o.directory_for_indexes) a.push_back("--wiredTigerDirectoryForIndexes");
  return a;
}

std::vector<std::string> SecurityArgs(const backup::MongodOptions& o) {
  if (!o.encryption) return {};
  std::vector<std::string> a = {"--enableEncryption", "--encryptionKeyFile", o.key_file};
  if (!o.cipher_mode.empty()) {
    a.push_back("--encryptionCipherMode");
    a.push_back(o.cipher_mode);
  }
  return a;
}

// ---- NodeRestore ---------------------------------------------------------------------------

NodeRestore::NodeRestore(RestorePlan plan) : plan_(std::move(plan)) {
  while (plan_.dbpath.size() > 1 && plan_.dbpath.back() == '/') plan_.dbpath.pop_back();
  if (plan_.entrypoint.empty()) plan_.entrypoint = plan_.dbpath + "/" + kDefaultEntrypointName;
}

void NodeRestore::Report(const std::string& step, const std::string& message) {
  if (!plan_.progress) return;
  Progress p;
  p.step = step;
  p.message = message;
  std::lock_guard<std::mutex> l(progress_mu_);
  plan_.progress(p);
}

void NodeRestore::RequireValidated(const char* step) const {
  if (!validated_) Fail(ErrorKind::kInternal, "{} before Validate", step);
}

void CheckEncryptionKey(const backup::BackupMeta& meta,
                        const std::optional<codec::EncryptionKey>& key) {
  if (meta.encryption.empty()) return;
  if (meta.encryption != codec::kEncryptionAlgorithm) {
    Fail(ErrorKind::kIncompatible, "backup {} is encrypted with {}, which this pbm cannot read",
         meta.name, meta.encryption);
  }
  if (!key) {
    Fail(ErrorKind::kInvalidArgument,
         "backup {} is encrypted ({}, key check {}): the restore needs its key (backup.encryption "
         "in the config)",
         meta.name, meta.encryption, meta.encryption_key_check);
  }
  std::string check = codec::KeyCheckValue(*key);
  if (check != meta.encryption_key_check) {
    Fail(ErrorKind::kIncompatible,
         "backup {} was encrypted with another key (key check {}); the configured key's check "
         "value is {}: configure the key the backup was made with",
         meta.name, meta.encryption_key_check, check);
  }
}

void NodeRestore::Validate() {
  const RestorePlan& p = plan_;
  auto bad = [&](const std::string& what) {
    Fail(ErrorKind::kInvalidArgument, "restore plan for {}: {}", p.dbpath, what);
  };
  if (!p.storage) bad("no storage");
  if (p.dbpath.empty() || p.dbpath.front() != '/') bad("the dbpath must be an absolute path");
  struct stat st;
  if (::stat(p.dbpath.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
    Fail(ErrorKind::kNotFound, "restore on {}: the dbpath is not a directory", p.dbpath);
  }
  if (p.entrypoint.front() != '/') bad("the entrypoint must be an absolute path");
  if (p.mongod_binary.empty() || ::access(p.mongod_binary.c_str(), X_OK) != 0) {
    bad(fmt::format("mongod binary \"{}\" is not an executable file", p.mongod_binary));
  }
  if (p.work_dir.empty()) bad("no work directory");
  if (IsInside(p.work_dir, p.dbpath)) {
    bad(fmt::format("the work directory {} must be outside the dbpath", p.work_dir));
  }
  if (!p.replset_config.is_object() || !p.replset_config.contains("_id") ||
      !p.replset_config["_id"].is_string() || !p.replset_config.contains("members") ||
      !p.replset_config["members"].is_array() || p.replset_config["members"].empty()) {
    bad("the replset config needs a string _id and a non-empty members array");
  }
  if (p.parallelism < 1) bad("parallelism must be at least 1");
  if (auto s = ReadState(p.dbpath)) {
    Fail(ErrorKind::kConflict,
         "restore on {}: a restore of backup {} that did not finish is pending (phase {}); "
         "RecoverInterruptedRestore (run by pbm-agent at startup) must undo it first",
         p.dbpath, s->backup, PhaseName(s->phase));
  }
  for (const std::string& dir : {FallbackPath(p.dbpath), StagingPath(p.dbpath)}) {
    if (Exists(dir)) {
      Fail(ErrorKind::kConflict,
           "restore on {}: {} exists but no restore is pending; it is not ours to remove: "
           "inspect it and remove it",
           p.dbpath, dir);
    }
  }
  backup_ = LoadRestorableBackup(*p.storage, p.backup_name, p.source_replset);
  // A file named like the restore's own entries would be clobbered by (or clobber) them.
  for (const auto& f : backup_.files.files) {
    std::string top = f.name.substr(0, f.name.find('/'));
    State own;
    own.entrypoint = p.entrypoint;
    own.hidden = HiddenName(p.entrypoint);
    if (IsOwnEntry(top, own, p.dbpath)) {
      Fail(ErrorKind::kCorrupt,
           "restore on {}: the backup's file list names {}, a name the restore itself uses",
           p.dbpath, f.name);
    }
  }
  if (plan_.restore_to.empty()) plan_.restore_to = backup_.replset.last_write_ts;
  CheckEncryptionKey(backup_.meta, p.encryption_key);
  if (p.node_options) {
    CheckCompatible(p.backup_name, backup_.replset, *p.node_options, p.node_version,
                    p.node_name.empty() ? p.dbpath : p.node_name);
  }
  int64_t need = 0;
  for (const auto& f : backup_.files.files) need += f.size;
  struct statvfs vfs;
  if (::statvfs(p.dbpath.c_str(), &vfs) == 0) {
    int64_t avail = static_cast<int64_t>(vfs.f_bavail) * static_cast<int64_t>(vfs.f_frsize);
    // The staging copy sits beside the node's data, which stays in place (moving it aside
    // and the staging copy in are renames): the backup's files need that much free space.
    if (avail < need) {
      Fail(ErrorKind::kIo,
           "restore on {}: not enough space for the staging copy: the backup's files need {} "
           "bytes, {} are free (the old data stays until the restore succeeded)",
           p.dbpath, need, avail);
    }
  }
  validated_ = true;
  Report("Validate", fmt::format("backup {} replset {}: {} files, {} bytes, restore to {}",
                                 p.backup_name, p.source_replset, backup_.files.files.size(), need,
                                 TsString(plan_.restore_to)));
}

void NodeRestore::HideEntrypoint() {
  RequireValidated("HideEntrypoint");
  auto s = ReadState(plan_.dbpath);
  if (!s || s->phase == Phase::kStaging) {
    // The node stops only once the whole backup is downloaded and verified.
    Fail(ErrorKind::kInternal, "HideEntrypoint before Download finished");
  }
  if (s->phase == Phase::kStaged) {
    s->phase = Phase::kHidden;
    WriteState(plan_.dbpath, *s);  // before the rename, so a crash right after it is undone
  } else if (s->phase != Phase::kHidden) {
    return;  // already past this step
  }
  if (Exists(s->entrypoint)) {
    Rename(s->entrypoint, s->hidden);
    SyncDir(Parent(s->entrypoint));
    Report("HideEntrypoint", fmt::format("{} hidden as {}", s->entrypoint, s->hidden));
  } else if (Exists(s->hidden)) {
    Report("HideEntrypoint", fmt::format("{} already hidden", s->entrypoint));
  } else {
    Report("HideEntrypoint", fmt::format("no entrypoint {}: nothing to hide", s->entrypoint));
  }
}

void NodeRestore::ShutdownMongod() {
  if (plan_.node_uri.empty()) return;
  if (MongodLockState(plan_.dbpath) != LockState::kHeld) return;  // already down
  try {
    mongo::Client c(plan_.node_uri, 5000);
    c.RunCommand("admin", {{"shutdown", 1}, {"force", true}});
  } catch (const Error& e) {
    // The connection drops as the server exits; a server that is already gone is fine too.
    // WaitMongodDown decides whether it went down.
    Report("ShutdownMongod", fmt::format("shutdown sent ({})", e.what()));
    return;
  }
  Report("ShutdownMongod", "shutdown sent");
}

void NodeRestore::WaitMongodDown() {
  WaitMongodLockFree(plan_.dbpath, plan_.mongod_down_timeout);
  Report("WaitMongodDown", "mongod is down");
}

void NodeRestore::MoveDataAside() {
  RequireValidated("MoveDataAside");
  auto s = ReadState(plan_.dbpath);
  if (!s || s->phase == Phase::kStaging || s->phase == Phase::kStaged) {
    Fail(ErrorKind::kInternal, "MoveDataAside before HideEntrypoint");
  }
  if (s->phase != Phase::kHidden && s->phase != Phase::kMoving) return;
  // The node must be down before its files move; WaitMongodDown checked, check again.
  if (MongodLockState(plan_.dbpath) == LockState::kHeld) {
    Fail(ErrorKind::kConflict, "move the data of {} aside: a mongod is running on it",
         plan_.dbpath);
  }
  s->phase = Phase::kMoving;
  WriteState(plan_.dbpath, *s);
  std::string fallback = FallbackPath(plan_.dbpath);
  if (::mkdir(fallback.c_str(), 0700) != 0 && errno != EEXIST) {
    FailErrno("create " + fallback, errno);
  }
  SyncDir(plan_.dbpath);
  int moved = 0;
  for (const std::string& name : Entries(plan_.dbpath)) {
    if (IsOwnEntry(name, *s, plan_.dbpath)) continue;  // the staging copy stays
    Rename(plan_.dbpath + "/" + name, fallback + "/" + name);
    ++moved;
  }
  SyncDir(fallback);
  SyncDir(plan_.dbpath);
  Report("MoveDataAside", fmt::format("{} entries moved to {}", moved, fallback));
}

void NodeRestore::DownloadOne(const backup::FileEntry& f) {
  std::string path = StagingPath(plan_.dbpath) + "/" + f.name;
  try {
    codec::Codec c = codec::ParseCodec(backup_.files.codec);
    auto plain = backup::OpenObjectReader(
        *plan_.storage, f.object, c,
        backup_.meta.encryption.empty() ? std::nullopt : plan_.encryption_key);
    Fd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
    if (fd.get() < 0) FailErrno("create " + path, errno);
    codec::Sha256 sha;
    std::vector<char> buf(1 << 20);
    int64_t total = 0;
    while (true) {
      size_t n = plain->Read(buf.data(), buf.size());
      if (n == 0) break;
      total += static_cast<int64_t>(n);
      if (total > f.size) {
        Fail(ErrorKind::kCorrupt, "the object holds more than the {} bytes the file list says",
             f.size);
      }
      sha.Update(buf.data(), n);
      size_t off = 0;
      while (off < n) {
        ssize_t w = ::write(fd.get(), buf.data() + off, n - off);
        if (w < 0) {
          if (errno == EINTR) continue;
          FailErrno("write " + path, errno);
        }
        off += static_cast<size_t>(w);
      }
    }
    if (total != f.size) {
      Fail(ErrorKind::kCorrupt, "size mismatch: {} bytes, the file list says {}", total, f.size);
    }
    std::string digest = sha.HexDigest();
    if (digest != f.sha256) {
      Fail(ErrorKind::kCorrupt, "SHA-256 mismatch: {}, the file list says {}", digest, f.sha256);
    }
    if (::fsync(fd.get()) != 0) FailErrno("fsync " + path, errno);
    if (::close(fd.Release()) != 0) FailErrno("close " + path, errno);
  } catch (const Error& e) {
    throw Error(e.kind(), fmt::format("file {} (object {} on {}): {}", f.name, f.object,
                                      plan_.storage->Describe(), e.what()));
  }
}

void NodeRestore::Download() {
  RequireValidated("Download");
  State s;
  if (auto existing = ReadState(plan_.dbpath)) {
    s = *existing;
    if (s.phase != Phase::kStaging) {
      if (s.phase == Phase::kStaged) return;  // done already
      Fail(ErrorKind::kInternal, "Download after the node was stopped (phase {})",
           PhaseName(s.phase));
    }
  } else {
    s.backup = plan_.backup_name;
    s.replset = plan_.source_replset;
    s.entrypoint = plan_.entrypoint;
    s.hidden = HiddenName(plan_.entrypoint);
    s.phase = Phase::kStaging;
    WriteState(plan_.dbpath, s);  // before the staging directory exists
  }
  // Files of an earlier attempt of this step are not trusted: start from an empty directory.
  // Only the staging directory is written: the node's mongod keeps running on its data.
  std::string staging = StagingPath(plan_.dbpath);
  RemoveAll(staging);
  if (::mkdir(staging.c_str(), 0700) != 0) FailErrno("create " + staging, errno);
  const auto& files = backup_.files.files;
  std::set<std::string> dirs = {staging};
  for (const auto& f : files) {
    std::string dir = Parent(f.name);
    if (dir != ".") MkdirAll(staging, dir, &dirs);
    if (dir != ".") dirs.insert(staging + "/" + dir);
  }
  int64_t bytes_total = 0;
  for (const auto& f : files) bytes_total += f.size;

  std::atomic<size_t> next{0};
  std::atomic<bool> failed{false};
  std::mutex mu;  // guards first_error, done, bytes_done
  std::exception_ptr first_error;
  int64_t done = 0;
  int64_t bytes_done = 0;
  auto worker = [&] {
    while (!failed.load()) {
      size_t i = next.fetch_add(1);
      if (i >= files.size()) return;
      try {
        DownloadOne(files[i]);
      } catch (...) {
        std::lock_guard<std::mutex> l(mu);
        if (!first_error) first_error = std::current_exception();
        failed = true;
        return;
      }
      Progress p;
      {
        std::lock_guard<std::mutex> l(mu);
        p.files_done = ++done;
        bytes_done += files[i].size;
        p.bytes_done = bytes_done;
      }
      if (plan_.progress) {
        p.step = "Download";
        p.message = files[i].name;
        p.files_total = static_cast<int64_t>(files.size());
        p.bytes_total = bytes_total;
        std::lock_guard<std::mutex> l(progress_mu_);
        plan_.progress(p);
      }
    }
  };
  size_t n = std::min<size_t>(static_cast<size_t>(plan_.parallelism), files.size());
  std::vector<std::thread> threads;
  for (size_t i = 1; i < n; ++i) threads.emplace_back(worker);
  worker();
  for (auto& t : threads) t.join();
  if (first_error) std::rethrow_exception(first_error);
  for (const auto& d : dirs) SyncDir(d);
  SyncDir(plan_.dbpath);
  s.phase = Phase::kStaged;
  WriteState(plan_.dbpath, s);  // only now may the node be stopped
  Report("Download",
         fmt::format("{} files, {} bytes staged in {}", files.size(), bytes_total, staging));
}

void NodeRestore::MoveStagedIn() {
  RequireValidated("MoveStagedIn");
  auto s = ReadState(plan_.dbpath);
  if (!s || (s->phase != Phase::kMoving && s->phase != Phase::kMovingIn)) {
    if (s && (s->phase == Phase::kRecovering || s->phase == Phase::kCommitted)) return;
    Fail(ErrorKind::kInternal, "MoveStagedIn before MoveDataAside");
  }
  std::string staging = StagingPath(plan_.dbpath);
  if (s->phase == Phase::kMoving) {
    for (const std::string& name : Entries(plan_.dbpath)) {
      if (!IsOwnEntry(name, *s, plan_.dbpath)) {
        // Old data still in place: MoveDataAside did not finish. Never overwrite it.
        Fail(ErrorKind::kInternal, "MoveStagedIn: {} still holds {} (MoveDataAside did not finish)",
             plan_.dbpath, name);
      }
    }
    if (!Exists(staging)) Fail(ErrorKind::kInternal, "MoveStagedIn: {} is missing", staging);
    s->phase = Phase::kMovingIn;
    WriteState(plan_.dbpath, *s);  // before the first new file is in the dbpath
  }
  // Resumable: what an earlier attempt moved is in the dbpath already, the rest still staged.
  int moved = 0;
  if (Exists(staging)) {
    for (const std::string& name : Entries(staging)) {
      Rename(staging + "/" + name, plan_.dbpath + "/" + name);
      ++moved;
    }
    SyncDir(staging);
    SyncDir(plan_.dbpath);
    if (::rmdir(staging.c_str()) != 0) FailErrno("remove " + staging, errno);
    SyncDir(plan_.dbpath);
  }
  Report("MoveStagedIn",
         fmt::format("{} entries moved from {} into {}", moved, staging, plan_.dbpath));
}

void NodeRestore::Recover() {
  RequireValidated("Recover");
  auto s = ReadState(plan_.dbpath);
  if (!s || (s->phase != Phase::kMovingIn && s->phase != Phase::kRecovering) ||
      Exists(StagingPath(plan_.dbpath))) {
    Fail(ErrorKind::kInternal, "Recover before MoveStagedIn");
  }
  s->phase = Phase::kRecovering;
  WriteState(plan_.dbpath, *s);
  std::error_code ec;
  fs::create_directories(plan_.work_dir, ec);
  if (ec) Fail(ErrorKind::kIo, "create work directory {}: {}", plan_.work_dir, ec.message());

  std::vector<std::string> base_args = plan_.storage_args;
  base_args.insert(base_args.end(), plan_.security_args.begin(), plan_.security_args.end());
  auto make = [&](const std::string& stage, std::vector<std::string> extra) {
    MongodProcess::Options o;
    o.binary = plan_.mongod_binary;
    o.dbpath = plan_.dbpath;
    o.args = base_args;
    o.args.insert(o.args.end(), extra.begin(), extra.end());
    o.logpath = fmt::format("{}/mongod-restore-{}.log", plan_.work_dir, stage);
    o.start_timeout = plan_.mongod_start_timeout;
    o.stop_timeout = plan_.mongod_down_timeout;
    return std::make_unique<MongodProcess>(std::move(o));
  };
  auto clear = [](const mongo::Client& c, const std::string& coll) {
    c.RunCommand("local", {{"delete", coll},
                           {"deletes", Json::array({{{"q", Json::object()}, {"limit", 0}}})}});
  };

  // 1. Standalone: clear stale replication state, set the truncate point.
  {
    auto m = make("1-prepare", {});
    m->Start();
    const mongo::Client& c = m->client();
    for (const char* coll : {"replset.minvalid", "replset.oplogTruncateAfterPoint",
                             "replset.election", "system.replset"}) {
      clear(c, coll);
    }
    c.RunCommand("local",
                 {{"insert", "replset.oplogTruncateAfterPoint"},
                  {"documents",
                   Json::array({{{"_id", "oplogTruncateAfterPoint"},
                                 {"oplogTruncateAfterPoint", TimestampJson(plan_.restore_to)}}})}});
    m->Shutdown();
    Report("Recover", fmt::format("oplog truncate point set to {}", TsString(plan_.restore_to)));
  }
  // 2. Replay the oplog up to the point as a standalone; checkpoint on shutdown.
  {
    auto m = make("2-recover", {"--setParameter", "recoverFromOplogAsStandalone=true",
                                "--setParameter", "takeUnstableCheckpointOnShutdown=true"});
    m->Start();
    auto top =
        m->client().FindOne("local", "oplog.rs", Json::object(), {{"sort", {{"$natural", -1}}}});
    if (!top || !top->contains("ts")) {
      Fail(ErrorKind::kCorrupt, "the restored data has no oplog; cannot reach {}",
           TsString(plan_.restore_to));
    }
    mongo::Timestamp ts = mongo::Timestamp::FromJson((*top)["ts"]);
    backup::ClusterTime got{ts.t, ts.i};
    if (got != plan_.restore_to) {
      Fail(ErrorKind::kCorrupt,
           "after recovery the oplog ends at {}, not at the restore point {}{}", TsString(got),
           TsString(plan_.restore_to),
           got < plan_.restore_to ? " (the backup's journal does not reach it)" : "");
    }
    m->Shutdown();
    Report("Recover", fmt::format("oplog replayed up to {}", TsString(got)));
  }
  // 3. Standalone again: install the replset config, and a fresh minvalid document without
  // appliedThrough (as PBM writes it): the checkpoint taken on shutdown above is unstable, and
  // mongod then takes the data as consistent with the top of the oplog instead of replaying it.
  {
    auto m = make("3-config", {});
    m->Start();
    const mongo::Client& c = m->client();
    clear(c, "system.replset");
    c.RunCommand("local", {{"insert", "system.replset"},
                           {"documents", Json::array({plan_.replset_config})}});
    clear(c, "replset.minvalid");
    c.RunCommand("local",
                 {{"insert", "replset.minvalid"},
                  {"documents", Json::array({{{"_id", {{"$oid", backup::NewObjectIdHex()}}},
                                              {"t", {{"$numberLong", "-1"}}},
                                              {"ts", TimestampJson({0, 1})}}})}});
    m->Shutdown();
    Report("Recover", fmt::format("replset config {} installed",
                                  plan_.replset_config["_id"].get<std::string>()));
  }
}

void NodeRestore::Commit() {
  auto s = ReadState(plan_.dbpath);
  if (!s || s->phase != Phase::kRecovering) {
    if (s && s->phase == Phase::kCommitted) return;
    Fail(ErrorKind::kInternal, "Commit before Recover");
  }
  s->phase = Phase::kCommitted;
  WriteState(plan_.dbpath, *s);
  Report("Commit", "the restored data passed recovery; the old data will be dropped");
}

void NodeRestore::RestoreEntrypoint() {
  State s;
  if (auto existing = ReadState(plan_.dbpath)) {
    s = *existing;
  } else {
    s.entrypoint = plan_.entrypoint;
    s.hidden = HiddenName(plan_.entrypoint);
  }
  UnhideEntrypoint(s);
  Report("RestoreEntrypoint", fmt::format("{} is back", s.entrypoint));
}

void NodeRestore::DropFallback() {
  auto s = ReadState(plan_.dbpath);
  if (s && s->phase != Phase::kCommitted) {
    Fail(ErrorKind::kInternal, "DropFallback before Commit (phase {})", PhaseName(s->phase));
  }
  RemoveAll(FallbackPath(plan_.dbpath));
  SyncDir(plan_.dbpath);
  RemoveState(plan_.dbpath);
  Report("DropFallback", "old data removed");
}

void NodeRestore::Rollback() {
  auto s = ReadState(plan_.dbpath);
  if (!s) return;
  bool staging_only = s->phase == Phase::kStaging || s->phase == Phase::kStaged;
  RollbackFromState(plan_.dbpath, *s);
  Report("Rollback", staging_only ? "staging copy removed" : "old data and entrypoint are back");
}

void NodeRestore::Run() {
  auto wrap = [&](const char* step, const std::string& cause) {
    return fmt::format("restore {} on {}: {}: {}", plan_.backup_name, plan_.dbpath, step, cause);
  };
  try {
    Validate();
  } catch (const Error& e) {
    throw Error(e.kind(), wrap("Validate", e.what()));
  }
  const char* step = "Download";
  try {
    Download();  // mongod untouched: a bad backup is refused before the node stops
    step = "HideEntrypoint";
    HideEntrypoint();
    step = "ShutdownMongod";
    ShutdownMongod();
    step = "WaitMongodDown";
    WaitMongodDown();
    step = "MoveDataAside";
    MoveDataAside();
    step = "MoveStagedIn";
    MoveStagedIn();
    step = "Recover";
    Recover();
    step = "Commit";
    Commit();
  } catch (const std::exception& e) {
    const Error* pe = dynamic_cast<const Error*>(&e);
    ErrorKind kind = pe ? pe->kind() : ErrorKind::kInternal;
    std::string msg = wrap(step, e.what());
    bool staging_only = std::string(step) == "Download";
    try {
      Rollback();
      msg += staging_only ? "; the staging copy was removed, the node was not touched"
                          : "; the old data and the entrypoint are back";
    } catch (const std::exception& re) {
      msg += fmt::format("; ROLLBACK FAILED: {} (RecoverInterruptedRestore retries it)", re.what());
    }
    throw Error(kind, msg);
  }
  try {
    RestoreEntrypoint();
  } catch (const Error& e) {
    throw Error(e.kind(), wrap("RestoreEntrypoint", std::string(e.what()) +
                                                        " (the restored data is in place; "
                                                        "RecoverInterruptedRestore retries it)"));
  }
  try {
    DropFallback();
  } catch (const Error& e) {
    Report("DropFallback", fmt::format("warning: the old data in {} could not be removed: {} "
                                       "(RecoverInterruptedRestore retries it)",
                                       FallbackPath(plan_.dbpath), e.what()));
  }
}

InterruptedRestore RecoverInterruptedRestore(const std::string& dbpath_in,
                                             std::chrono::milliseconds lock_timeout) {
  std::string dbpath = dbpath_in;
  while (dbpath.size() > 1 && dbpath.back() == '/') dbpath.pop_back();
  auto s = ReadState(dbpath);
  if (!s) {
    // A state write that died before its rename: nothing had happened yet.
    if (::unlink(StateTmpPath(dbpath).c_str()) != 0 && errno != ENOENT) {
      FailErrno("remove " + StateTmpPath(dbpath), errno);
    }
    return InterruptedRestore::kNone;
  }
  try {
    if (s->phase == Phase::kCommitted) {
      CompleteFromState(dbpath, *s);
      return InterruptedRestore::kCompleted;
    }
    if (s->phase == Phase::kStaging || s->phase == Phase::kStaged) {
      // Died while downloading: the node's mongod may be running on the dbpath right now; it
      // is neither waited for nor touched, only the staging directory goes.
      RollbackFromState(dbpath, *s);
      return InterruptedRestore::kStagingRemoved;
    }
    if (s->phase != Phase::kHidden) {
      // The dead restore's temporary mongod dies with it (PR_SET_PDEATHSIG) but may take a
      // moment. A kill -9 of it leaves its pid in mongod.lock: that is fine, its files go.
      WaitMongodLockFree(dbpath, lock_timeout, /*allow_dirty=*/true);
    }
    RollbackFromState(dbpath, *s);
    return InterruptedRestore::kRolledBack;
  } catch (const Error& e) {
    throw Error(e.kind(), fmt::format("recover the interrupted restore of backup {} on {}: {}",
                                      s->backup, dbpath, e.what()));
  }
}

}  // namespace pbm::restore
