// Replication: the replica-set config, member states, heartbeats, the oplog fetcher and applier
// of secondaries, the majority commit point and write-concern waits. The primary is chosen by
// priority (highest, then lowest index); there are no elections.
#pragma once

#include <bson/bson.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "common/doc.h"

namespace wtm {

class Node;

enum class MemberState {
  kStartup = 0,
  kPrimary = 1,
  kSecondary = 2,
  kRecovering = 3,
  kStartup2 = 5,
  kUnknown = 6,
  kArbiter = 7,
  kDown = 8,
  kRollback = 9,
  kRemoved = 10,
};
const char* StateStr(MemberState s);

struct MemberConfig {
  int id = 0;
  std::string host;
  double priority = 1;
  int votes = 1;
  bool hidden = false;
  bool arbiter_only = false;
  int64_t secondary_delay_secs = 0;
};

struct ReplConfig {
  std::string set_name;
  int64_t version = 0;
  int64_t term = 0;
  std::vector<MemberConfig> members;
  Doc raw;  // as stored in local.system.replset
};

// Parses and validates a replica-set config document; throws MongoError(InvalidReplicaSetConfig).
ReplConfig ParseReplConfig(const bson_t* doc, const std::string& expected_set);

class Repl {
 public:
  explicit Repl(Node& node);
  ~Repl();

  // Loads local.system.replset and starts heartbeats, the applier and the commit-point tracker.
  void Startup();
  void Shutdown();

  bool enabled() const { return enabled_; }
  bool IsWritablePrimary() const;
  MemberState state() const;
  int64_t term() const;
  // A new oplog timestamp, later than every earlier one (the caller holds the write lock).
  uint64_t NextTimestamp();
  // A write (or an applied batch) at `ts` committed on this node.
  void OnLocalWrite(uint64_t ts);
  void SetLastApplied(uint64_t ts);
  uint64_t last_applied() const { return last_applied_.load(); }
  uint64_t last_durable() const { return last_durable_.load(); }
  uint64_t commit_point() const { return commit_point_.load(); }
  // Waits for the command's writeConcern ({w: 1|"majority"|N, j, wtimeout}) to be satisfied for
  // a write at `ts`; throws MongoError(WriteConcernFailed / 64) on timeout.
  void WaitForWriteConcern(uint64_t ts, const bson_t* cmd);
  // Makes the journal durable up to the last applied write and advances the durable optime.
  void FlushDurable();

  // Fields of hello/isMaster.
  void AppendHelloFields(bson_t* reply, bool hello_cmd);
  // Commit point and more for the oplog readers ($replData), and the newest entry a secondary
  // may fetch (entries beyond it are not yet durable on the primary).
  void AppendReplData(bson_t* reply);
  uint64_t fetch_limit() const;

  Doc Initiate(const bson_t* cmd);
  Doc GetStatus();
  Doc GetConfig();
  Doc Reconfig(const bson_t* cmd);
  Doc Heartbeat(const bson_t* cmd);
  Doc UpdatePosition(const bson_t* cmd);
  // Whether this member is in the current config (set after install).
  std::optional<ReplConfig> config() const;
  int self_index() const;

 private:
  struct MemberStatus {
    bool healthy = false;
    bool ever_seen = false;
    MemberState state = MemberState::kUnknown;
    uint64_t applied = 0;
    uint64_t durable = 0;
    int64_t config_version = -1;
    std::chrono::system_clock::time_point last_heartbeat{};
    std::chrono::system_clock::time_point last_heartbeat_recv{};
    std::string last_error;
    int64_t ping_ms = 0;
  };

  void InstallConfig(const ReplConfig& cfg, bool persist);
  void PersistConfig(const ReplConfig& cfg);
  void ComputeRole();
  void HeartbeatLoop();
  void SyncLoop();
  void CommitPointLoop();
  void UpdateCommitPoint();
  bool InitialSync(const std::string& source);
  bool FetchAndApply(const std::string& source);
  void ReportPosition(const std::string& source);
  std::string PrimaryHost() const;  // from config and health ("" when none)
  std::string SelfHost() const;

  Node& node_;
  bool enabled_;
  std::string set_name_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::optional<ReplConfig> config_;
  int self_ = -1;
  MemberState state_ = MemberState::kStartup;
  int64_t term_ = 1;
  std::vector<MemberStatus> members_;
  uint64_t last_ts_ = 0;
  std::atomic<uint64_t> last_applied_{0};
  std::atomic<uint64_t> last_durable_{0};
  std::atomic<uint64_t> commit_point_{0};
  std::atomic<bool> stopping_{false};
  std::chrono::system_clock::time_point election_time_{};
  std::string sync_source_;
  std::vector<std::thread> threads_;
  std::condition_variable durable_cv_;
};

}  // namespace wtm
