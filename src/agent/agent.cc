#include "agent/agent.h"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <deque>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <set>
#include <thread>
#include <utility>

#include "backup/format.h"
#include "backup/logical.h"
#include "backup/physical.h"
#include "codec/codec.h"
#include "control/client_encryption.h"
#include "control/connect.h"
#include "control/control.h"
#include "control/priority.h"
#include "control/restore_status.h"
#include "mongo/client.h"
#include "restore/logical_restore.h"
#include "restore/node_restore.h"
#include "restore/preflight.h"
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
    // A restore that died with this agent (kill -9, OOM) is finished first: before the commit
    // the node's old data and entrypoint go back, after it the restore completes.
    if (!o_.dbpath.empty() && std::filesystem::is_directory(o_.dbpath)) {
      auto r = restore::RecoverInterruptedRestore(o_.dbpath);
      if (r == restore::InterruptedRestore::kRolledBack) {
        spdlog::warn(
            "an interrupted restore on {} was rolled back: the old data and the "
            "entrypoint are back",
            o_.dbpath);
        ReportInterruptedRestore(
            "the agent stopped during the restore; this member's old data "
            "and entrypoint were put back");
      } else if (r == restore::InterruptedRestore::kStagingRemoved) {
        spdlog::warn(
            "an interrupted restore on {} was downloading: its staging copy was "
            "removed, the node was not touched",
            o_.dbpath);
        ReportInterruptedRestore(
            "the agent stopped while downloading the backup; its staging "
            "copy was removed, this member's mongod and old data were not "
            "touched");
      } else if (r == restore::InterruptedRestore::kCompleted) {
        spdlog::info("an interrupted restore on {} was completed", o_.dbpath);
        // The member committed before its agent stopped: the restore waits for its `done`.
        interrupted_phase_ = "done";
      }
    }
    node_ = std::make_unique<mongo::Client>(o_.mongodb_uri, 5000);
    int64_t started = NowUnix();
    int64_t last_hb = 0, last_stale_check = 0;
    std::set<std::string> seen;
    while (!stop_) {
      try {
        if (!cluster_) Connect();
        FlushInterruptedRestore();
        while (!deferred_.empty() && StartWorker(deferred_.front().first, deferred_.front().second))
          deferred_.pop_front();
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
          if (seen.count(cmd.opid)) continue;
          // A command that arrives while this agent is busy waits for the next poll.
          bool taken = true;
          if (cmd.cmd == "backup")
            taken = StartWorker(cmd, [this](const auto& c) { RunBackup(c); });
          if (cmd.cmd == "restore")
            taken = StartWorker(cmd, [this](const auto& c) { RunRestore(c); });
          if (cmd.cmd == "cancelBackup") {
            std::lock_guard<std::mutex> l(mu_);
            cancel_.insert(cmd.args.value("name", std::string()));
          }
          if (taken) seen.insert(cmd.opid);
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
    NodeInfo n = Describe(*node_);
    {
      std::lock_guard<std::mutex> l(mu_);
      info_ = n;
    }
    cluster_ = control::ConnectCluster(*node_, o_.mongodb_uri);
    ctl_ = std::make_unique<Control>(*cluster_);
    ctl_->EnsureSetup();
    spdlog::info("agent for {} in replset {} connected to the cluster", n.me, n.replset);
  }

  // The node as of the last heartbeat (or FreshInfo).
  NodeInfo Info() {
    std::lock_guard<std::mutex> l(mu_);
    return info_;
  }

  // The node as it is now (a command must not be judged on a heartbeat-old state: a secondary
  // still in STARTUP2 at its last heartbeat would let a backup pass it by); the last known
  // state if the node does not answer.
  NodeInfo FreshInfo() {
    try {
      NodeInfo n = Describe(*node_);
      std::lock_guard<std::mutex> l(mu_);
      info_ = n;
      return n;
    } catch (const Error& e) {
      spdlog::warn("describing the node: {} (using its state of the last heartbeat)", e.what());
      std::lock_guard<std::mutex> l(mu_);
      return info_;
    }
  }

  void Heartbeat() {
    NodeInfo n = Describe(*node_);
    {
      // All of it: an agent that connected while its node was still joining the set saw no
      // set name and no host of its own (hello has neither before the config arrives).
      std::lock_guard<std::mutex> l(mu_);
      info_ = n;
    }
    control::AgentStatus a;
    a.replset = n.replset;
    a.node = n.me;
    a.state = n.state;
    a.hidden = n.hidden;
    a.heartbeat = NowUnix();
    a.version = backup::kPbmVersion;
    try {
      a.mongod_version =
          node_->RunCommand("admin", {{"buildInfo", 1}}).value("version", std::string());
    } catch (const Error& e) {
      a.error = e.what();
    }
    ctl_->PutAgent(a);
  }

  // A backup whose agent stopped heartbeating can never finish: mark it failed. Unless the
  // storage holds its final metadata: then the cluster's copy is out of date (after a physical
  // restore the admin database holds the backup list of the backup's own time, where the backup
  // was still running) and the storage's version replaces it.
  void FailStaleBackups() {
    int64_t now = NowUnix();
    std::unique_ptr<storage::Storage> st;
    for (auto b : ctl_->Backups()) {
      if (b.status != "starting" && b.status != "running") continue;
      int64_t last = std::max(b.heartbeat, b.start_ts);
      if (now - last <= control::kLockStaleSecs) continue;
      try {
        if (!st) {
          auto cfg = ctl_->GetConfig();
          if (cfg && cfg->contains("storage"))
            st = storage::NewStorageFromConfig((*cfg)["storage"]);
        }
        if (st && st->Stat(backup::MetaObjectName(b.name))) {
          auto stored =
              Json::parse(st->ReadAll(backup::MetaObjectName(b.name))).get<backup::BackupMeta>();
          if (stored.status == "done" || stored.status == "error") {
            ctl_->PutBackup(stored);
            continue;
          }
        }
      } catch (const std::exception& e) {
        spdlog::warn("backup {}: reading its metadata on the storage: {}", b.name, e.what());
      }
      b.status = "error";
      b.error = "no heartbeat from the agent running this backup for " +
                std::to_string(now - last) +
                " s (the agent or its node stopped); the backup is incomplete";
      b.last_transition_ts = now;
      b.conditions.push_back({now, "error", b.error});
      ctl_->PutBackup(b);
      NodeInfo self = Info();
      ctl_->Log("E", self.replset, self.me, "backup", b.opid, b.error);
      spdlog::error("backup {}: {}", b.name, b.error);
    }
  }

  // The node refused $backupCursor: one is open already. This agent holds the replset's lock,
  // so no other backup is alive; a cursor recorded by an unfinished backup on this node belongs
  // to an agent that died (kill -9) and mongod would keep it until its idle timeout (10 min).
  // Kills those cursors; true when one was closed.
  bool CloseLeftoverBackupCursors(const Control& ctl, const std::string& current,
                                  const NodeInfo& n) {
    bool closed = false;
    for (const auto& b : ctl.Backups()) {
      if (b.name == current || b.status == "done") continue;
      for (const auto& r : b.replsets) {
        if (r.node != n.me || r.backup_cursor_id == 0) continue;
        Json reply = node_->RunCommand(
            "admin",
            {{"killCursors", "$cmd.aggregate"},
             {"cursors", Json::array({{{"$numberLong", std::to_string(r.backup_cursor_id)}}})}});
        if (reply.value("cursorsKilled", Json::array()).empty()) continue;
        closed = true;
        std::string msg = "closed the backup cursor " + std::to_string(r.backup_cursor_id) +
                          " left open on " + n.me + " by the unfinished backup " + b.name;
        ctl.Log("W", n.replset, n.me, "backup", b.opid, msg);
        spdlog::warn("{}", msg);
      }
    }
    return closed;
  }

  // Runs `fn` on the worker thread; false when the agent is busy with another operation.
  bool StartWorker(const control::Command& cmd, std::function<void(const control::Command&)> fn) {
    if (busy_) return false;
    if (worker_.joinable()) worker_.join();
    busy_ = true;
    worker_ = std::thread([this, cmd, fn] {
      try {
        fn(cmd);
      } catch (const std::exception& e) {
        spdlog::error("{} {}: {}", cmd.cmd, cmd.args.value("name", std::string()), e.what());
      }
      busy_ = false;
    });
    return true;
  }

  // After a rollback at startup: once the cluster is reachable again, the restores on the
  // storage that still wait for this member get its error (the others saw its heartbeat stop).
  void ReportInterruptedRestore(const std::string& msg) {
    spdlog::error("restore: {}", msg);
    interrupted_phase_ = "error";
    interrupted_msg_ = msg;
  }

  void FlushInterruptedRestore() {
    // Until the node knows its own name in the set (the next heartbeat), the report waits.
    if (interrupted_phase_.empty() || !ctl_) return;
    NodeInfo self = Info();
    if (self.me.empty()) return;
    auto cfg = ctl_->GetConfig();
    if (!cfg || !cfg->contains("storage")) return;
    auto st = storage::NewStorageFromConfig((*cfg)["storage"]);
    control::RestoreMember me{self.replset, self.me};
    for (const auto& r : control::ListRestores(*st)) {
      auto s = control::ReadRestoreStatus(*st, r);
      for (const auto& n : s.nodes) {
        if (n.host != me.host || n.replset != me.replset) continue;
        // A completed commit answers the restore its member was committing (at `ready`); a
        // rollback, every restore still waiting for this member.
        bool waiting = interrupted_phase_ == "done" ? n.phase == "ready"
                                                    : n.phase != "done" && n.phase != "error";
        if (!waiting) continue;
        control::WriteNodePhase(*st, r, me, interrupted_phase_, interrupted_msg_);
        // This agent died after its member committed, before it could record the result (if it
        // is the member that does): it records it now, on the worker (it waits for the others)
        // as soon as the worker is free.
        if (interrupted_phase_ == "done" && IsRecorder(s.meta, me)) {
          control::Command c;
          c.cmd = "recordRestore";
          c.opid = s.meta.opid;
          c.args = {{"name", r}};
          deferred_.emplace_back(
              c, [this, storage_cfg = (*cfg)["storage"], name = r, meta = s.meta](const auto&) {
                auto st2 = storage::NewStorageFromConfig(storage_cfg);
                RecordRestoreResult(*st2, name, meta);
              });
        }
      }
    }
    interrupted_phase_.clear();
    interrupted_msg_.clear();
  }

  // Test-only failpoint, as MongoDB has them: with the environment variable `var` set to N,
  // the agent holds still here for N seconds so that a test can kill it at this exact step.
  // Unset (always, outside tests) it costs a getenv.
  static void PauseAtFailpoint(const char* var) {
    const char* v = std::getenv(var);
    if (v == nullptr) return;
    int secs = std::atoi(v);
    spdlog::warn("failpoint {}: pausing {} s", var, secs);
    std::this_thread::sleep_for(std::chrono::seconds(secs));
  }

  // Waits until every member reached `phase` (true) or one failed / went silent (false: *cause
  // is the member whose failure started it, "rs/host"; empty when the wait itself failed, with
  // the reason in *why).
  bool WaitAll(storage::Storage& st, const std::string& restore, const std::string& phase,
               const control::RestoreMember& me, std::string* why, std::string* cause,
               int timeout_secs) {
    cause->clear();
    int64_t deadline = NowUnix() + timeout_secs;
    while (!stop_) {
      control::TouchNodeHeartbeat(st, restore, me);
      auto s = control::ReadRestoreStatus(st, restore);
      bool all = true;
      for (const auto& n : s.nodes) {
        if (n.failed()) {
          // Name the cause, not the chain: a member that followed another's failure points
          // at it.
          *cause = n.cause();
          *why = *cause + " failed";
          return false;
        }
        if (control::PhaseRank(n.phase) < control::PhaseRank(phase)) all = false;
      }
      if (all) return true;
      if (NowUnix() > deadline) {
        *why = "timed out after " + std::to_string(timeout_secs) +
               " s waiting for every member to reach '" + phase + "'";
        return false;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(500));
    }
    *why = "the agent is stopping";
    return false;
  }

  // A logical restore: the agent beside the primary runs it against the running cluster.
  void RunLogicalRestore(const control::Command& cmd) {
    std::string name = cmd.args.value("name", std::string());
    std::string backup_name = cmd.args.value("backup", std::string());
    NodeInfo n = FreshInfo();
    if (n.state != "PRIMARY") return;
    mongo::Client cluster_client(control::ClusterUri(*node_, o_.mongodb_uri), 10000);
    Control ctl(cluster_client);
    if (!ctl.AcquireLock({n.replset, n.me, "restore", cmd.opid, 0})) return;
    auto rec = ctl.GetRestore(name).value_or(Json{{"name", name}, {"backup", backup_name}});
    auto put = [&](const std::string& status, const std::string& err) {
      rec["status"] = status;
      rec["type"] = "logical";
      rec["node"] = n.me;
      if (!err.empty()) rec["error"] = err;
      if (status == "done" || status == "error") rec["finish_ts"] = NowUnix();
      ctl.PutRestore(rec);
    };
    std::atomic<bool> done{false};
    std::mutex rec_mu;
    std::thread hb([&] {
      while (!done) {
        for (int i = 0; i < control::kLockHeartbeatSecs * 20 && !done; ++i) {
          std::this_thread::sleep_for(std::chrono::milliseconds(50));
        }
        try {
          ctl.HeartbeatLock(n.replset, cmd.opid);
          std::lock_guard<std::mutex> l(rec_mu);
          if (!done) ctl.PutRestore(rec);
        } catch (const Error&) {
        }
      }
    });
    // Stops the heartbeat and frees the replset's lock, once.
    bool released = false;
    auto release = [&] {
      if (released) return;
      released = true;
      done = true;
      hb.join();
      try {
        ctl.ReleaseLock(n.replset, cmd.opid);
      } catch (const Error&) {
      }
    };
    try {
      {
        std::lock_guard<std::mutex> l(rec_mu);
        put("running", "");
      }
      ctl.Log("I", n.replset, n.me, "restore", cmd.opid,
              "logical restore " + name + " of backup " + backup_name + " started");
      spdlog::info("logical restore {} of backup {} on {}", name, backup_name, n.me);
      auto cfg = ctl.GetConfig();
      if (!cfg || !cfg->contains("storage")) {
        Fail(ErrorKind::kInvalidArgument, "no storage configured; run pbm config --file");
      }
      auto st = storage::NewStorageFromConfig((*cfg)["storage"]);
      restore::LogicalRestoreRequest req;
      req.storage = st.get();
      req.backup_name = backup_name;
      req.replset = n.replset;
      req.parallel = o_.parallel;
      // PBM's restore options.
      if (cfg->contains("restore") && (*cfg)["restore"].is_object()) {
        const Json& rc = (*cfg)["restore"];
        if (rc.contains("numParallelCollections") &&
            rc["numParallelCollections"].is_number_integer()) {
          req.parallel = std::max(1, rc["numParallelCollections"].get<int>());
        }
        if (rc.contains("numInsertionWorkers") && rc["numInsertionWorkers"].is_number_integer()) {
          req.insertion_workers = std::max(1, rc["numInsertionWorkers"].get<int>());
        }
      }
      if (auto enc = control::ParseClientEncryption(*cfg); enc.enabled()) {
        req.encryption_key = control::LoadClientKey(enc);
      }
      req.progress = [&](const std::string& step, int64_t d, int64_t t) {
        std::lock_guard<std::mutex> l(rec_mu);
        rec["progress"] = {{"step", step}, {"bytes_done", d}, {"bytes_total", t}};
      };
      auto r = restore::RunLogicalRestore(cluster_client, req);
      release();  // before the record says done (and before rec_mu: the heartbeat takes it)
      std::lock_guard<std::mutex> l(rec_mu);
      rec["collections"] = r.collections;
      rec["documents"] = r.documents;
      rec["oplog_entries"] = r.oplog_entries;
      put("done", "");
      ctl.Log("I", n.replset, n.me, "restore", cmd.opid, "logical restore " + name + " done");
      spdlog::info("logical restore {} done: {} collections, {} documents, {} oplog entries", name,
                   r.collections, r.documents, r.oplog_entries);
    } catch (const std::exception& e) {
      release();
      std::lock_guard<std::mutex> l(rec_mu);
      try {
        put("error", e.what());
        ctl.Log("E", n.replset, n.me, "restore", cmd.opid,
                "logical restore " + name + " failed: " + e.what());
      } catch (const std::exception& e2) {
        spdlog::error("restore {}: recording the failure: {}", name, e2.what());
      }
      spdlog::error("logical restore {} failed: {}", name, e.what());
    }
    release();
  }

  void RunRestore(const control::Command& cmd) {
    if (cmd.args.value("type", std::string()) == "logical") return RunLogicalRestore(cmd);
    std::string name = cmd.args.value("name", std::string());
    std::string backup_name = cmd.args.value("backup", std::string());
    NodeInfo n = FreshInfo();
    control::RestoreMember me{n.replset, n.me};
    mongo::Client cluster_client(control::ClusterUri(*node_, o_.mongodb_uri), 10000);
    Control ctl(cluster_client);
    auto cfg = ctl.GetConfig();
    if (!cfg || !cfg->contains("storage")) return;
    auto st = storage::NewStorageFromConfig((*cfg)["storage"]);
    auto plan_meta = control::ReadRestorePlan(*st, name);
    bool member = false;
    for (const auto& m : plan_meta.members) member |= m.host == me.host && m.replset == me.replset;
    if (!member) {
      spdlog::info("restore {}: this node ({} in replset '{}') is not in its plan", name, me.host,
                   me.replset);
      return;
    }
    // A restarted agent sees the commands of its last moments again: a restore this member
    // already took part in (its agent rolled it back at startup) or one that has ended is not
    // taken up twice.
    try {
      auto s = control::ReadRestoreStatus(*st, name);
      for (const auto& x : s.nodes) {
        if (x.host == me.host && x.replset == me.replset && !x.phase.empty()) {
          spdlog::info("restore {}: this member took part already (phase {}): not taken up again",
                       name, x.phase);
          return;
        }
      }
      if (s.status == "done" || s.status == "error") {
        spdlog::info("restore {} has ended ({}): not taken up", name, s.status);
        return;
      }
    } catch (const std::exception& e) {
      // Taken up: the pre-flight below reads the storage again and reports what fails.
      spdlog::warn("restore {}: reading its status: {}", name, e.what());
    }
    bool was_primary = n.state == "PRIMARY";
    spdlog::info("restore {} of backup {} on {}", name, backup_name, me.host);
    // Taken up: from now on silence, not absence, is what fails this member.
    control::TouchNodeHeartbeat(*st, name, me);

    std::atomic<int64_t> dl_done{0}, dl_total{0};  // the download's progress
    // 1. Pre-flight, before anything is touched.
    std::unique_ptr<restore::NodeRestore> nr;
    try {
      auto meta =
          Json::parse(st->ReadAll(backup::MetaObjectName(backup_name))).get<backup::BackupMeta>();
      const backup::ReplsetMeta* src = nullptr;
      for (const auto& r : meta.replsets) {
        if (r.name == me.replset || meta.replsets.size() == 1) src = &r;
      }
      if (!src) Fail(ErrorKind::kNotFound, "backup {} has no replset {}", backup_name, me.replset);
      backup::MongodOptions node_opts = backup::ReadMongodOptions(*node_, o_.encryption_key_file);
      std::string version =
          node_->RunCommand("admin", {{"buildInfo", 1}}).value("version", std::string());
      Json rs_config = node_->RunCommand("admin", {{"replSetGetConfig", 1}})["config"];
      if (o_.dbpath.empty()) {
        Fail(ErrorKind::kInvalidArgument,
             "the agent does not know where the node's data volume is mounted: start it with "
             "--dbpath (or PBM_DBPATH)");
      }
      restore::RestorePlan p;
      p.storage = st.get();
      p.backup_name = backup_name;
      p.source_replset = src->name;
      p.dbpath = o_.dbpath;
      p.mongod_binary = ResolveMongodPath(o_.mongod_path);
      p.security_args = restore::SecurityArgs(node_opts);
      if (!o_.encryption_key_file.empty()) {
        for (size_t i = 0; i + 1 < p.security_args.size(); ++i) {
          if (p.security_args[i] == "--encryptionKeyFile")
            p.security_args[i + 1] = o_.encryption_key_file;
        }
      }
      p.storage_args = restore::StorageArgs(src->mongod_opts);
      p.restore_to = src->last_write_ts;
      p.replset_config = rs_config;
      p.work_dir = (std::filesystem::temp_directory_path() /
                    ("pbm-restore-" + name + "-" + std::to_string(getpid())))
                       .string();
      p.node_uri = o_.mongodb_uri;
      p.node_options = node_opts;
      p.node_version = version;
      p.node_name = me.host;
      p.progress = [&](const restore::Progress& pr) {
        if (pr.step != "Download" || pr.bytes_total <= 0) return;
        dl_done = pr.bytes_done;
        dl_total = pr.bytes_total;
      };
      p.parallelism = o_.parallel;
      if (!meta.encryption.empty()) {
        auto enc = control::ParseClientEncryption(*cfg);
        if (!enc.enabled()) {
          Fail(ErrorKind::kInvalidArgument,
               "backup {} is encrypted ({}, key check {}): configure backup.encryption (keyFile "
               "or keyEnv) with its key",
               backup_name, meta.encryption, meta.encryption_key_check);
        }
        p.encryption_key = control::LoadClientKey(enc);
      }
      nr = std::make_unique<restore::NodeRestore>(std::move(p));
      nr->Validate();
    } catch (const std::exception& e) {
      control::WriteNodePhase(*st, name, me, "error", std::string("pre-flight: ") + e.what());
      spdlog::error("restore {}: pre-flight failed, nothing was changed: {}", name, e.what());
      return;
    }
    control::WriteNodePhase(*st, name, me, "preflight");
    std::string why, cause;
    if (!WaitAll(*st, name, "preflight", me, &why, &cause, 120)) {
      control::WriteNodePhase(*st, name, me, "error", "not started (" + why + "); nothing changed",
                              cause);
      return;
    }

    // The member's heartbeat while it downloads and while its mongod is down, with the
    // download's progress.
    std::atomic<bool> hb_stop{false};
    // Serializes the heartbeat writes: a write that read the counters before the download
    // ended must not land after the final one below.
    std::mutex hb_mu;
    std::thread hb([&] {
      while (!hb_stop) {
        try {
          std::lock_guard<std::mutex> l(hb_mu);
          control::WriteNodeHeartbeat(*st, name, me, dl_done.load(), dl_total.load());
        } catch (const std::exception&) {
        }
        for (int i = 0; i < 40 && !hb_stop; ++i)
          std::this_thread::sleep_for(std::chrono::milliseconds(50));
      }
    });
    auto stop_hb = [&] {
      hb_stop = true;
      if (hb.joinable()) hb.join();
    };

    // 2. Download into the staging directory while mongod runs untouched; every member must
    // hold the whole backup, verified, before any mongod stops. A failure removes the staging
    // copy only.
    try {
      nr->Download();
    } catch (const std::exception& e) {
      std::string err = std::string("download: ") + e.what();
      try {
        nr->Rollback();
        err += "; the staging copy was removed, this member was not touched";
      } catch (const std::exception& e2) {
        err += std::string("; removing the staging copy failed: ") + e2.what();
      }
      control::WriteNodePhase(*st, name, me, "error", err);
      stop_hb();
      spdlog::error("restore {}: {}", name, err);
      return;
    }
    // The final download progress, before the phase (a small backup downloads between two
    // heartbeats).
    {
      std::lock_guard<std::mutex> l(hb_mu);
      control::WriteNodeHeartbeat(*st, name, me, dl_done.load(), dl_total.load());
    }
    control::WriteNodePhase(*st, name, me, "staged");
    // Liveness comes from the heartbeats (a dead member fails the wait within kLockStaleSecs);
    // the timeout only bounds the slowest member's download.
    if (!WaitAll(*st, name, "staged", me, &why, &cause, 24 * 3600)) {
      std::string err = "not started (" + why + "); mongod not touched";
      try {
        nr->Rollback();
        err += "; the staging copy was removed";
      } catch (const std::exception& e2) {
        err += std::string("; removing the staging copy failed: ") + e2.what();
      }
      control::WriteNodePhase(*st, name, me, "error", err, cause);
      stop_hb();
      return;
    }

    // 3. Hide the entrypoint, stop mongod (secondaries first), move the staged data in, recover.
    const char* step = "HideEntrypoint";
    try {
      nr->HideEntrypoint();
      step = "WaitSecondariesDown";
      if (was_primary) {
        // The primary goes last, once every other member is down.
        int64_t deadline = NowUnix() + 300;
        while (true) {
          auto s = control::ReadRestoreStatus(*st, name);
          bool others_down = true;
          for (const auto& x : s.nodes) {
            if (x.host == me.host) continue;
            if (x.failed()) {  // failed, or silent
              cause = x.cause();
              Fail(ErrorKind::kUnavailable, "stopped ({} failed)", cause);
            }
            if (control::PhaseRank(x.phase) < control::PhaseRank("down")) others_down = false;
          }
          if (others_down) break;
          if (NowUnix() > deadline)
            Fail(ErrorKind::kTimeout, "the secondaries did not stop within 300 s");
          std::this_thread::sleep_for(std::chrono::milliseconds(300));
        }
      }
      step = "ShutdownMongod";
      nr->ShutdownMongod();
      step = "WaitMongodDown";
      nr->WaitMongodDown();
      control::WriteNodePhase(*st, name, me, "down");
      step = "MoveDataAside";
      nr->MoveDataAside();
      step = "MoveStagedIn";
      nr->MoveStagedIn();
      step = "Recover";
      nr->Recover();
      control::WriteNodePhase(*st, name, me, "ready");
      step = "WaitOthersReady";
      if (!WaitAll(*st, name, "ready", me, &why, &cause, 3600)) {
        Fail(ErrorKind::kUnavailable, "rolled back ({})", why);
      }
      step = "Commit";
      nr->Commit();
      PauseAtFailpoint("PBM_FAILPOINT_PAUSE_AFTER_COMMIT_SECS");
    } catch (const std::exception& e) {
      // Its own failure names the step; one that follows another member's names that member.
      std::string err = cause.empty() ? fmt::format("{}: {}", step, e.what()) : e.what();
      try {
        nr->Rollback();
        err += "; this member's old data and entrypoint are back";
      } catch (const std::exception& e2) {
        err += std::string("; ROLLBACK FAILED: ") + e2.what();
      }
      control::WriteNodePhase(*st, name, me, "error", err, cause);
      stop_hb();
      spdlog::error("restore {}: {}", name, err);
      return;
    }
    // 4. Committed: the entrypoint comes back, the container restarts mongod on the new data.
    try {
      nr->RestoreEntrypoint();
      nr->DropFallback();
      // The temporary mongods' logs are kept only when the restore failed.
      std::error_code ec;
      std::filesystem::remove_all(nr->plan().work_dir, ec);
      int64_t deadline = NowUnix() + 600;
      while (!stop_) {
        try {
          // Our member, healthy: another server could answer on the port while ours is down.
          NodeInfo now = Describe(*node_);
          if ((now.state == "PRIMARY" || now.state == "SECONDARY") && now.replset == me.replset &&
              now.me == me.host) {
            break;
          }
        } catch (const Error&) {
        }
        if (NowUnix() > deadline)
          Fail(ErrorKind::kTimeout, "the node did not come back healthy within 600 s");
        std::this_thread::sleep_for(std::chrono::milliseconds(500));
      }
      control::WriteNodePhase(*st, name, me, "done");
    } catch (const std::exception& e) {
      control::WriteNodePhase(*st, name, me, "error", std::string("after the commit: ") + e.what());
      stop_hb();
      return;
    }
    stop_hb();
    if (IsRecorder(plan_meta, me)) RecordRestoreResult(*st, name, plan_meta);
    spdlog::info("restore {} done on {}", name, me.host);
  }

  // The first member of the plan records a physical restore's result in the cluster.
  static bool IsRecorder(const control::RestorePlanMeta& plan, const control::RestoreMember& me) {
    return !plan.members.empty() && plan.members[0].host == me.host &&
           plan.members[0].replset == me.replset;
  }

  // Once every member is done (or the restore failed), records the result in the cluster: the
  // restored admin database holds the locks and backup list of the backup's time, so the locks
  // are cleared and the list is rebuilt from the storage.
  void RecordRestoreResult(storage::Storage& st, const std::string& name,
                           const control::RestorePlanMeta& plan) {
    int64_t deadline = NowUnix() + 600;
    while (NowUnix() < deadline && !stop_) {
      auto s = control::ReadRestoreStatus(st, name);
      if (s.status == "done" || s.status == "error") {
        try {
          mongo::Client c2(control::ClusterUri(*node_, o_.mongodb_uri), 30000);
          Control ctl2(c2);
          ctl2.ClearLocks();
          control::ResyncBackupsFromStorage(ctl2, st);
          ctl2.PutRestore({{"name", name},
                           {"backup", plan.backup},
                           {"opid", plan.opid},
                           {"status", s.status},
                           {"error", s.error},
                           {"start_ts", plan.start_ts},
                           {"finish_ts", NowUnix()}});
        } catch (const std::exception& e) {
          spdlog::warn("restore {}: recording the result in the cluster: {}", name, e.what());
        }
        return;
      }
      std::this_thread::sleep_for(std::chrono::seconds(1));
    }
  }

  void RunBackup(const control::Command& cmd) {
    std::string name = cmd.args.value("name", std::string());
    std::string type = cmd.args.value("type", std::string());
    if (type != "physical" && type != "logical") return;
    NodeInfo n = FreshInfo();
    if (n.state != "PRIMARY" && n.state != "SECONDARY") return;
    mongo::Client cluster_client(control::ClusterUri(*node_, o_.mongodb_uri), 10000);
    Control ctl(cluster_client);
    // Who makes the backup, as PBM decides it: the highest priority tier among the healthy
    // agents competes at once, each lower tier waits one more step first.
    control::BackupPriorities prio;
    if (auto cfg = ctl.GetConfig()) prio = control::ParseBackupPriorities(*cfg);
    control::AgentStatus self;
    self.node = n.me;
    self.state = n.state;
    self.hidden = n.hidden;
    int rank = control::BackupPriorityRank(prio, ctl.Agents(), n.replset,
                                           control::BackupPriority(prio, self), NowUnix());
    int wait = rank * o_.priority_step_secs;
    // Someone took it already: another member, or this one before its agent restarted (a
    // restarted agent sees the commands of its first second again).
    auto taken = [&] {
      for (const auto& l : ctl.Locks()) {
        if (l.opid == cmd.opid) return true;
      }
      // Done, failed or canceled already (an agent that was paused sees old commands late):
      // no lock is taken for it, not even for a moment.
      auto b = ctl.GetBackup(name);
      return !b || b->status != "starting";
    };
    if (taken()) return;
    for (int i = 0; i < wait * 4 && !stop_; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(250));
      if (taken()) return;
    }
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
    // Stops the heartbeat and frees the replset's lock, once.
    bool released = false;
    auto release = [&] {
      if (released) return;
      released = true;
      done = true;
      hb.join();
      try {
        ctl.ReleaseLock(n.replset, cmd.opid);
      } catch (const Error&) {
      }
    };
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
      if (auto enc = control::ParseClientEncryption(*cfg); enc.enabled()) {
        req.encryption_key = control::LoadClientKey(enc);
        std::lock_guard<std::mutex> l(meta_mu);
        meta.encryption = codec::kEncryptionAlgorithm;
        meta.encryption_key_check = codec::KeyCheckValue(*req.encryption_key);
      }
      backup::BackupHooks hooks;
      int64_t published_cursor = 0;
      int64_t published_at = 0;
      hooks.on_progress = [&](const backup::ReplsetMeta& rs) {
        std::lock_guard<std::mutex> l(meta_mu);
        meta.replsets = {rs};
        meta.size = rs.size;
        meta.size_uncompressed = rs.size_uncompressed;
        int64_t now = NowUnix();
        if (rs.backup_cursor_id != 0 && rs.backup_cursor_id != published_cursor) {
          // In the cluster at once (not at the next heartbeat): if this agent dies now, the
          // next backup on this node must find the cursor to close it.
          published_cursor = rs.backup_cursor_id;
          ctl.PutBackup(meta);
          published_at = now;
        } else if (now != published_at) {
          // Progress for pbm status and pbm backup --wait, once a second.
          try {
            ctl.PutBackup(meta);
            published_at = now;
          } catch (const Error& e) {
            spdlog::warn("backup {}: publishing progress: {}", name, e.what());
          }
        }
      };
      hooks.cancelled = [&] { return stop_.load() || lost_lock.load() || CancelRequested(name); };
      hooks.on_backup_cursor_busy = [&] { return CloseLeftoverBackupCursors(ctl, name, n); };
      backup::ReplsetMeta rs;
      if (type == "logical") {
        backup::LogicalBackupRequest lr;
        lr.name = name;
        lr.replset = n.replset;
        lr.node = n.me;
        lr.codec = req.codec;
        lr.level = req.level;
        lr.parallel = o_.parallel;
        lr.encryption_key = req.encryption_key;
        rs = backup::RunLogicalBackup(*node_, cluster_client, *st, lr, hooks.on_progress,
                                      hooks.cancelled);
      } else {
        rs = backup::RunPhysicalBackup(*node_, cluster_client, *st, req, hooks);
      }
      {
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
      }
      // The lock goes before the record says done: whoever sees "done" (pbm backup --wait, the
      // operator) may start the next operation at once.
      release();
      ctl.PutBackup(meta);
      ctl.Log("I", n.replset, n.me, "backup", cmd.opid, "backup " + name + " done");
      spdlog::info("backup {} done: {} files, {} bytes stored", name, rs.files, rs.size);
    } catch (const std::exception& e) {
      if (CancelRequested(name)) {
        // Canceled by pbm cancel-backup: nothing of it stays on the storage.
        try {
          if (st) {
            st->RemovePrefix(name + "/");
            st->Remove(backup::MetaObjectName(name));
          }
        } catch (const std::exception& e2) {
          spdlog::error("backup {}: removing the canceled backup's objects: {}", name, e2.what());
        }
        release();  // before taking meta_mu: the heartbeat thread takes it too
        std::lock_guard<std::mutex> l(meta_mu);
        set_status("canceled", "canceled by pbm cancel-backup");
        try {
          ctl.PutBackup(meta);
          ctl.Log("I", n.replset, n.me, "backup", cmd.opid,
                  "backup " + name + " canceled; its objects were removed");
        } catch (const std::exception& e2) {
          spdlog::error("backup {}: recording the cancellation: {}", name, e2.what());
        }
        spdlog::info("backup {} canceled", name);
        return;
      }
      std::string why = lost_lock
                            ? std::string("the lock was lost (taken over as stale): ") + e.what()
                            : e.what();
      release();  // before taking meta_mu: the heartbeat thread takes it too
      std::lock_guard<std::mutex> l(meta_mu);
      set_status("error", why);
      // The cluster first: the storage may be what failed.
      try {
        ctl.PutBackup(meta);
        ctl.Log("E", n.replset, n.me, "backup", cmd.opid, "backup " + name + " failed: " + why);
      } catch (const std::exception& e2) {
        spdlog::error("backup {}: recording the failure in the cluster: {}", name, e2.what());
      }
      try {
        if (st) {
          Json mj = meta;
          st->WriteAll(backup::MetaObjectName(name), mj.dump(2));
        }
      } catch (const std::exception& e2) {
        spdlog::error("backup {}: recording the failure on the storage: {}", name, e2.what());
      }
      spdlog::error("backup {} failed: {}", name, why);
    }
    release();
  }

  bool CancelRequested(const std::string& backup) {
    std::lock_guard<std::mutex> l(mu_);
    return cancel_.count(backup) > 0;
  }

  AgentOptions o_;
  const std::atomic<bool>& stop_;
  std::set<std::string> cancel_;  // backups pbm cancel-backup asked to stop; guarded by mu_
  std::unique_ptr<mongo::Client> node_;
  std::unique_ptr<mongo::Client> cluster_;
  std::unique_ptr<Control> ctl_;
  std::mutex mu_;
  NodeInfo info_;
  std::atomic<bool> busy_{false};
  // A restore this agent finished at startup, to report once the cluster is reachable: the
  // member's phase ("error" after a rollback, "done" after a completed commit; "" for none)
  // and, for an error, why.
  std::string interrupted_phase_;
  std::string interrupted_msg_;
  // Work for the worker thread that waits until it is free (main thread only).
  std::deque<std::pair<control::Command, std::function<void(const control::Command&)>>> deferred_;
  std::thread worker_;
};

}  // namespace

std::string ResolveMongodPath(const std::string& flag) {
  namespace fs = std::filesystem;
  if (!flag.empty()) {
    if (access(flag.c_str(), X_OK) != 0) {
      Fail(ErrorKind::kNotFound,
           "mongod binary {} is not executable; the backup-agent image must "
           "carry mongod (--mongod-path)",
           flag);
    }
    return flag;
  }
  if (const char* path = std::getenv("PATH")) {
    std::string p = path;
    size_t start = 0;
    while (start <= p.size()) {
      size_t colon = p.find(':', start);
      std::string dir =
          p.substr(start, colon == std::string::npos ? std::string::npos : colon - start);
      if (!dir.empty() && access((fs::path(dir) / "mongod").c_str(), X_OK) == 0) {
        return (fs::path(dir) / "mongod").string();
      }
      if (colon == std::string::npos) break;
      start = colon + 1;
    }
  }
  std::error_code ec;
  fs::path self = fs::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    fs::path w = self.parent_path() / "wtmongod";
    if (access(w.c_str(), X_OK) == 0) return w.string();
  }
  Fail(ErrorKind::kNotFound,
       "no mongod binary for restores: not given with --mongod-path, no mongod on PATH, no "
       "wtmongod beside pbm-agent; the backup-agent image must carry mongod");
}

void RunAgent(const AgentOptions& opts, const std::atomic<bool>& stop) { Agent(opts, stop).Run(); }

}  // namespace pbm::agent
