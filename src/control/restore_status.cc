#include "control/restore_status.h"

#include <algorithm>
#include <map>
#include <set>

namespace pbm::control {

std::string RestorePrefix(const std::string& restore) { return ".pbm.restore/" + restore + "/"; }

int PhaseRank(const std::string& phase) {
  if (phase == "preflight") return 1;
  if (phase == "staged") return 2;
  if (phase == "down") return 3;
  if (phase == "ready") return 4;
  if (phase == "done") return 5;
  if (phase == "error") return 6;
  return 0;
}

void WriteRestorePlan(storage::Storage& st, const RestorePlanMeta& m) {
  Json members = Json::array();
  for (const auto& x : m.members) members.push_back({{"rs", x.replset}, {"host", x.host}});
  Json j = {{"name", m.name}, {"backup", m.backup}, {"opid", m.opid}, {"start_ts", m.start_ts},
            {"members", members}};
  st.WriteAll(RestorePrefix(m.name) + "meta.json", j.dump(2));
}

RestorePlanMeta ReadRestorePlan(const storage::Storage& st, const std::string& restore) {
  Json j;
  try {
    j = Json::parse(st.ReadAll(RestorePrefix(restore) + "meta.json"));
  } catch (const nlohmann::json::exception& e) {
    Fail(ErrorKind::kCorrupt, "restore {}: unreadable meta.json: {}", restore, e.what());
  }
  RestorePlanMeta m;
  m.name = j.value("name", restore);
  m.backup = j.value("backup", std::string());
  m.opid = j.value("opid", std::string());
  m.start_ts = j.value("start_ts", int64_t{0});
  for (const auto& x : j.value("members", Json::array())) {
    m.members.push_back({x.value("rs", std::string()), x.value("host", std::string())});
  }
  return m;
}

namespace {
std::string NodePrefix(const std::string& restore, const RestoreMember& me) {
  return RestorePrefix(restore) + "rs." + me.replset + "/node." + me.host + ".";
}
}  // namespace

void WriteNodePhase(storage::Storage& st, const std::string& restore, const RestoreMember& me,
                    const std::string& phase, const std::string& error,
                    const std::string& caused_by) {
  Json j = {{"ts", NowUnix()}};
  if (!error.empty()) j["error"] = error;
  if (!caused_by.empty()) j["caused_by"] = caused_by;
  st.WriteAll(NodePrefix(restore, me) + phase, j.dump());
  TouchNodeHeartbeat(st, restore, me);
}

void TouchNodeHeartbeat(storage::Storage& st, const std::string& restore, const RestoreMember& me) {
  int64_t done = 0, total = 0;
  try {
    std::string hb = NodePrefix(restore, me) + "hb";
    if (st.Stat(hb)) {
      Json old = Json::parse(st.ReadAll(hb));
      done = old.value("bytes_done", int64_t{0});
      total = old.value("bytes_total", int64_t{0});
    }
  } catch (const std::exception&) {
    // An unreadable heartbeat is rewritten below.
  }
  WriteNodeHeartbeat(st, restore, me, done, total);
}

void WriteNodeHeartbeat(storage::Storage& st, const std::string& restore, const RestoreMember& me,
                        int64_t bytes_done, int64_t bytes_total) {
  Json j = {{"ts", NowUnix()}};
  if (bytes_total > 0) {
    j["bytes_done"] = bytes_done;
    j["bytes_total"] = bytes_total;
  }
  st.WriteAll(NodePrefix(restore, me) + "hb", j.dump());
}

RestoreStatus ReadRestoreStatus(const storage::Storage& st, const std::string& restore) {
  RestoreStatus s;
  s.meta = ReadRestorePlan(st, restore);
  int64_t now = NowUnix();
  bool all_done = !s.meta.members.empty();
  bool any_error = false;
  bool any_started = false;
  bool all_settled = true;  // every member done or error
  for (const auto& m : s.meta.members) {
    NodeRestoreStatus n;
    n.replset = m.replset;
    n.host = m.host;
    std::string prefix = RestorePrefix(restore) + "rs." + m.replset + "/node." + m.host + ".";
    for (const auto& obj : st.List(prefix)) {
      std::string suffix = obj.name.substr(prefix.size());
      Json j;
      try {
        j = Json::parse(st.ReadAll(obj.name));
      } catch (const std::exception&) {
        continue;
      }
      if (suffix == "hb") {
        n.heartbeat = j.value("ts", int64_t{0});
        n.bytes_done = j.value("bytes_done", int64_t{0});
        n.bytes_total = j.value("bytes_total", int64_t{0});
      } else if (PhaseRank(suffix) > PhaseRank(n.phase)) {
        n.phase = suffix;
        n.phase_ts = j.value("ts", int64_t{0});
        n.error = j.value("error", std::string());
        n.caused_by = j.value("caused_by", std::string());
      }
    }
    if (!n.phase.empty()) any_started = true;
    bool settled = n.phase == "done" || n.phase == "error";
    if (!settled && n.heartbeat > 0 && now - n.heartbeat > kLockStaleSecs) {
      n.error = "no heartbeat from its pbm-agent for over " + std::to_string(kLockStaleSecs) + " s";
      any_error = true;
      // Before `ready` a silent member's outcome can only be a failure: the others roll back on
      // its error, a waiting user gets an answer, and its agent, when it comes back, rolls its
      // node back (RecoverInterruptedRestore) before it takes new work. From `ready` on it may
      // have committed, and its agent completes the commit when it comes back: the restore
      // waits for it.
      if (PhaseRank(n.phase) < PhaseRank("ready")) settled = true;
    } else if (!settled && n.heartbeat == 0 && s.meta.start_ts > 0 &&
               now - s.meta.start_ts > kRestorePickupSecs) {
      // An agent takes a restore up within a poll (100 ms) and heartbeats from then on.
      n.error = "its pbm-agent did not take the restore up within " +
                std::to_string(kRestorePickupSecs) +
                " s: is a pbm-agent running beside this member? (pbm status)";
      any_error = true;
      settled = true;
    }
    if (n.phase == "error") any_error = true;
    if (n.phase != "done") all_done = false;
    if (!settled) all_settled = false;
    s.nodes.push_back(std::move(n));
  }
  if (all_done) {
    s.status = "done";
  } else if (any_error && all_settled) {
    s.status = "error";
  } else if (any_error) {
    s.status = "running";  // members are still rolling back
  } else {
    s.status = any_started ? "running" : "starting";
  }
  // One line: the causes first, then the members that stopped because of them; members with
  // the same error (every member refusing a backup taken with another key, say) are named
  // together before it.
  std::vector<std::pair<std::string, std::string>> reasons;  // (members, error), first seen first
  for (bool follow_ons : {false, true}) {
    for (const auto& n : s.nodes) {
      if (n.error.empty() || n.caused_by.empty() == follow_ons) continue;
      auto it = std::find_if(reasons.begin(), reasons.end(),
                             [&](const auto& r) { return r.second == n.error; });
      if (it == reasons.end()) {
        reasons.emplace_back(n.id(), n.error);
      } else {
        it->first += ", " + n.id();
      }
    }
  }
  for (const auto& [who, error] : reasons) {
    if (!s.error.empty()) s.error += "; ";
    s.error += who + ": " + error;
  }
  return s;
}

std::vector<std::string> ListRestores(const storage::Storage& st) {
  std::vector<std::string> out;
  const std::string root = ".pbm.restore/";
  for (const auto& o : st.List(root)) {
    std::string rest = o.name.substr(root.size());
    auto slash = rest.find('/');
    if (slash == std::string::npos) continue;
    if (rest.substr(slash + 1) == "meta.json") out.push_back(rest.substr(0, slash));
  }
  std::sort(out.rbegin(), out.rend());
  return out;
}

}  // namespace pbm::control

namespace pbm::control {

int ResyncBackupsFromStorage(const Control& ctl, const storage::Storage& st, bool keep_running) {
  int n = 0;
  std::set<std::string> on_storage;
  for (const auto& o : st.List("")) {
    if (o.name.find('/') != std::string::npos || !o.name.ends_with(".pbm.json")) continue;
    try {
      auto meta = Json::parse(st.ReadAll(o.name)).get<backup::BackupMeta>();
      ctl.PutBackup(meta);
      on_storage.insert(meta.name);
      ++n;
    } catch (const std::exception&) {
      // An unreadable metadata object is not a backup; `pbm list` will not show it.
    }
  }
  int64_t now = NowUnix();
  for (const auto& b : ctl.Backups()) {
    if (on_storage.count(b.name)) continue;
    if (keep_running && (b.status == "starting" || b.status == "running") &&
        now - std::max(b.heartbeat, b.start_ts) <= kLockStaleSecs) {
      continue;
    }
    ctl.DeleteBackup(b.name);
  }
  return n;
}

}  // namespace pbm::control
