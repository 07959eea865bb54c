#include "agent/agent.h"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <chrono>
#include <memory>
#include <mutex>
#include <set>
#include <thread>

#include "backup/format.h"
#include "backup/physical.h"
#include "codec/codec.h"
#include "control/connect.h"
#include "control/control.h"
#include "mongo/client.h"
#include "storage/storage.h"

namespace pbm::agent {
namespace {

using control::Control;
using control::NowUnix;
using mongo::Json;

struct NodeInfo {
  std::string replset;
  std::string me;
  std::string state;  // PRIMARY | SECONDARY | OTHER
  bool hidden = false;
  std::string version;
};

NodeInfo Describe(const mongo::Client& node) {
  Json h = node.RunCommand("admin", {{"hello", 1}});
  NodeInfo n;
  n.replset = h.value("setName", std::string());
  n.me = h.value("me", std::string());
  n.state = h.value("isWritablePrimary", false) ? "PRIMARY"
            : h.value("secondary", false)       ? "SECONDARY"
                                                : "OTHER";
  n.hidden = h.value("hidden", false);
  return n;
}

class Agent {
 public:
  Agent(const AgentOptions& o, const std::atomic<bool>& stop) : o_(o), stop_(stop) {}

  void Run() {
    node_ = std::make_unique<mongo::Client>(o_.mongodb_uri, 5000);
    int64_t started = NowUnix();
    int64_t last_hb = 0, last_stale_check = 0;
    std::set<std::string> seen;
    while (!stop_) {
      try {
        if (!cluster_) Connect();
        int64_t now = NowUnix();
        if (now - last_hb >= o_.heartbeat_secs) {
          Heartbeat();
          last_hb = now;
        }
        if (now - last_stale_check >= o_.heartbeat_secs) {
          FailStaleBackups();
          last_stale_check = now;
        }
        for (const auto& cmd : ctl_->CommandsSince(started - 1)) {
          if (!seen.insert(cmd.opid).second) continue;
          if (cmd.cmd == "backup") StartBackup(cmd);
        }
      } catch (const Error& e) {
        spdlog::warn("agent: {}", e.what());
        cluster_.reset();
        ctl_.reset();
      }
      for (int i = 0; i < o_.poll_ms / 50 && !stop_; ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
      }
    }
    if (worker_.joinable()) worker_.join();
  }

 private:
  void Connect() {
    info_ = Describe(*node_);
    cluster_ = control::ConnectCluster(*node_, o_.mongodb_uri);
    ctl_ = std::make_unique<Control>(*cluster_);
    ctl_->EnsureSetup();
    spdlog::info("agent for {} in replset {} connected to the cluster", info_.me, info_.replset);
  }

  void Heartbeat() {
    NodeInfo n = Describe(*node_);
    {
      std::lock_guard<std::mutex> l(mu_);
      info_.state = n.state;
      info_.hidden = n.hidden;
    }
    control::AgentStatus a;
    a.replset = n.replset;
    a.node = n.me;
    a.state = n.state;
    a.hidden = n.hidden;
    a.heartbeat = NowUnix();
    a.version = backup::kPbmVersion;
    try {
      a.mongod_version = node_->RunCommand("admin", {{"buildInfo", 1}}).value("version", std::string());
    } catch (const Error& e) {
      a.error = e.what();
    }
    ctl_->PutAgent(a);
  }

  // A backup whose agent stopped heartbeating can never finish: mark it failed.
  void FailStaleBackups() {
    int64_t now = NowUnix();
    for (auto b : ctl_->Backups()) {
      if (b.status != "starting" && b.status != "running") continue;
      int64_t last = std::max(b.heartbeat, b.start_ts);
      if (now - last <= control::kLockStaleSecs) continue;
      b.status = "error";
      b.error = "no heartbeat from the agent running this backup for " + std::to_string(now - last) +
                " s (the agent or its node stopped); the backup is incomplete";
      b.last_transition_ts = now;
      b.conditions.push_back({now, "error", b.error});
      ctl_->PutBackup(b);
      ctl_->Log("E", info_.replset, info_.me, "backup", b.opid, b.error);
      spdlog::error("backup {}: {}", b.name, b.error);
    }
  }

  void StartBackup(const control::Command& cmd) {
    if (busy_) return;
    if (worker_.joinable()) worker_.join();
    busy_ = true;
    worker_ = std::thread([this, cmd] {
      try {
        RunBackup(cmd);
      } catch (const std::exception& e) {
        spdlog::error("backup {}: {}", cmd.args.value("name", std::string()), e.what());
      }
      busy_ = false;
    });
  }

  void RunBackup(const control::Command& cmd) {
    std::string name = cmd.args.value("name", std::string());
    if (cmd.args.value("type", std::string()) != "physical") return;
    NodeInfo n;
    {
      std::lock_guard<std::mutex> l(mu_);
      n = info_;
    }
    if (n.state != "PRIMARY" && n.state != "SECONDARY") return;
    // Prefer a secondary (hidden first), as PBM does: the primary waits before competing.
    int wait = n.state == "PRIMARY" ? o_.primary_grace_secs : (n.hidden ? 0 : 1);
    for (int i = 0; i < wait * 20 && !stop_; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(50));
    mongo::Client cluster_client(control::ClusterUri(*node_, o_.mongodb_uri), 10000);
    Control ctl(cluster_client);
    if (!ctl.AcquireLock({n.replset, n.me, "backup", cmd.opid, 0})) return;
    auto meta_opt = ctl.GetBackup(name);
    if (!meta_opt || meta_opt->status != "starting") {
      ctl.ReleaseLock(n.replset, cmd.opid);
      return;
    }
    backup::BackupMeta meta = *meta_opt;
    std::mutex meta_mu;
    auto set_status = [&](const std::string& status, const std::string& err) {
      int64_t now = NowUnix();
      meta.status = status;
      meta.error = err;
      meta.last_transition_ts = now;
      meta.heartbeat = now;
      meta.conditions.push_back({now, status, err});
    };
    {
      std::lock_guard<std::mutex> l(meta_mu);
      set_status("running", "");
      ctl.PutBackup(meta);
    }
    ctl.Log("I", n.replset, n.me, "backup", cmd.opid, "backup " + name + " started on " + n.me);
    spdlog::info("backup {} started on {}", name, n.me);
    std::atomic<bool> done{false};
    std::atomic<bool> lost_lock{false};
    std::thread hb([&] {
      while (!done) {
        for (int i = 0; i < control::kLockHeartbeatSecs * 20 && !done; ++i) {
          std::this_thread::sleep_for(std::chrono::milliseconds(50));
        }
        if (done) break;
        try {
          if (!ctl.HeartbeatLock(n.replset, cmd.opid)) lost_lock = true;
          std::lock_guard<std::mutex> l(meta_mu);
          meta.heartbeat = NowUnix();
          ctl.PutBackup(meta);
        } catch (const Error& e) {
          spdlog::warn("backup {}: heartbeat: {}", name, e.what());
        }
      }
    });
    std::unique_ptr<storage::Storage> st;
    try {
      auto cfg = ctl.GetConfig();
      if (!cfg || !cfg->contains("storage")) {
        Fail(ErrorKind::kInvalidArgument, "no storage configured; run pbm config --file");
      }
      st = storage::NewStorageFromConfig((*cfg)["storage"]);
      backup::PhysicalBackupRequest req;
      req.name = name;
      req.replset = n.replset;
      req.node = n.me;
      req.codec = codec::ParseCodec(meta.compression);
      req.level = codec::ResolveLevel(req.codec, meta.compression_level);
      req.parallel = o_.parallel;
      req.key_file = o_.encryption_key_file;
      backup::BackupHooks hooks;
      hooks.on_progress = [&](const backup::ReplsetMeta& rs) {
        std::lock_guard<std::mutex> l(meta_mu);
        meta.replsets = {rs};
        meta.size = rs.size;
        meta.size_uncompressed = rs.size_uncompressed;
      };
      hooks.cancelled = [&] { return stop_.load() || lost_lock.load(); };
      backup::ReplsetMeta rs = backup::RunPhysicalBackup(*node_, cluster_client, *st, req, hooks);
      std::lock_guard<std::mutex> l(meta_mu);
      meta.replsets = {rs};
      meta.last_write_ts = rs.last_write_ts;
      meta.mongodb_version = rs.mongodb_version;
      meta.fcv = rs.fcv;
      meta.size = rs.size;
      meta.size_uncompressed = rs.size_uncompressed;
      meta.storage = st->Describe();
      set_status("done", "");
      // The metadata object is written last: a backup without it is incomplete.
      Json mj = meta;
      st->WriteAll(backup::MetaObjectName(name), mj.dump(2));
      ctl.PutBackup(meta);
      ctl.Log("I", n.replset, n.me, "backup", cmd.opid, "backup " + name + " done");
      spdlog::info("backup {} done: {} files, {} bytes stored", name, rs.files, rs.size);
    } catch (const std::exception& e) {
      std::string why = lost_lock ? std::string("the lock was lost (taken over as stale): ") + e.what()
                                  : e.what();
      std::lock_guard<std::mutex> l(meta_mu);
      set_status("error", why);
      try {
        if (st) {
          Json mj = meta;
          st->WriteAll(backup::MetaObjectName(name), mj.dump(2));
        }
        ctl.PutBackup(meta);
        ctl.Log("E", n.replset, n.me, "backup", cmd.opid, "backup " + name + " failed: " + why);
      } catch (const std::exception& e2) {
        spdlog::error("backup {}: recording the failure: {}", name, e2.what());
      }
      spdlog::error("backup {} failed: {}", name, why);
    }
    done = true;
    hb.join();
    try {
      ctl.ReleaseLock(n.replset, cmd.opid);
    } catch (const Error&) {
    }
  }

  AgentOptions o_;
  const std::atomic<bool>& stop_;
  std::unique_ptr<mongo::Client> node_;
  std::unique_ptr<mongo::Client> cluster_;
  std::unique_ptr<Control> ctl_;
  std::mutex mu_;
  NodeInfo info_;
  std::atomic<bool> busy_{false};
  std::thread worker_;
};

}  // namespace

void RunAgent(const AgentOptions& opts, const std::atomic<bool>& stop) {
  Agent(opts, stop).Run();
}

}  // namespace pbm::agent
