#include "control/control.h"

#include <chrono>
#include <algorithm>
#include <mutex>
#include <random>

namespace pbm::control {

int64_t NowUnix() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string NewOpId() { return backup::NewObjectIdHex(); }

Control::Control(const mongo::Client& cluster) : c_(cluster) {}

void Control::EnsureSetup() const {
  c_.CreateIndex(kDb, kLockColl, {{"replset", 1}}, "replset", true);
  c_.CreateIndex(kDb, kBackupsColl, {{"name", 1}}, "name", true);
  c_.CreateIndex(kDb, kRestoresColl, {{"name", 1}}, "name", true);
}

std::optional<Json> Control::GetConfig() const {
  auto d = c_.FindOne(kDb, kConfigColl, {{"_id", "config"}});
  if (!d) return std::nullopt;
  Json cfg = *d;
  cfg.erase("_id");
  return cfg;
}

void Control::SetConfig(const Json& config) const {
  Json doc = config;
  doc["_id"] = "config";
  c_.Update(kDb, kConfigColl, {{"_id", "config"}}, doc, /*upsert=*/true);
}

std::string Control::SendCommand(const std::string& cmd, const Json& args,
                                 const std::string& with_opid) const {
  std::string opid = with_opid.empty() ? NewOpId() : with_opid;
  c_.Insert(kDb, kCmdColl, {{"_id", opid}, {"cmd", cmd}, {"args", args}, {"ts", NowUnix()}});
  return opid;
}

std::vector<Command> Control::CommandsSince(int64_t since_unix) const {
  std::vector<Command> out;
  for (auto& d : c_.Find(kDb, kCmdColl, {{"ts", {{"$gte", since_unix}}}}, {{"sort", {{"ts", 1}}}})) {
    Command c;
    c.opid = d.value("_id", std::string());
    c.cmd = d.value("cmd", std::string());
    c.args = d.value("args", Json::object());
    c.ts = d.value("ts", int64_t{0});
    out.push_back(std::move(c));
  }
  return out;
}

namespace {
Json LockDoc(const Lock& l) {
  return {{"replset", l.replset}, {"node", l.node}, {"type", l.type}, {"opid", l.opid},
          {"hb", l.heartbeat}};
}
Lock LockFrom(const Json& d) {
  return {d.value("replset", std::string()), d.value("node", std::string()),
          d.value("type", std::string()), d.value("opid", std::string()),
          d.value("hb", int64_t{0})};
}
}  // namespace

bool Control::AcquireLock(const Lock& want) const {
  Lock l = want;
  l.heartbeat = NowUnix();
  try {
    c_.Insert(kDb, kLockColl, LockDoc(l));
    return true;
  } catch (const mongo::CommandError& e) {
    if (e.code() != 11000) throw;
  }
  auto cur = c_.FindOne(kDb, kLockColl, {{"replset", want.replset}});
  if (!cur) return AcquireLock(want);  // released meanwhile
  Lock held = LockFrom(*cur);
  if (held.opid == want.opid) return held.node == want.node;
  if (!held.stale(NowUnix())) return false;
  // Take over a stale lock: only if it is still the same stale one.
  int64_t n = c_.Update(kDb, kLockColl, {{"replset", want.replset}, {"opid", held.opid}, {"hb", held.heartbeat}},
                        LockDoc(l));
  if (n == 1) {
    Log("W", want.replset, want.node, "lock", want.opid,
        "took over the stale lock of operation " + held.opid + " (" + held.type + " on " + held.node +
            ", last heartbeat " + std::to_string(NowUnix() - held.heartbeat) + " s ago)");
  }
  return n == 1;
}

bool Control::HeartbeatLock(const std::string& replset, const std::string& opid) const {
  return c_.Update(kDb, kLockColl, {{"replset", replset}, {"opid", opid}},
                   {{"$set", {{"hb", NowUnix()}}}}) == 1;
}

void Control::ReleaseLock(const std::string& replset, const std::string& opid) const {
  c_.Delete(kDb, kLockColl, {{"replset", replset}, {"opid", opid}});
}

void Control::ClearLocks() const { c_.Delete(kDb, kLockColl, Json::object()); }

std::vector<Lock> Control::Locks() const {
  std::vector<Lock> out;
  for (auto& d : c_.Find(kDb, kLockColl, Json::object())) out.push_back(LockFrom(d));
  return out;
}

void Control::PutAgent(const AgentStatus& a) const {
  Json doc = {{"_id", a.replset + "/" + a.node}, {"rs", a.replset}, {"n", a.node},
              {"s", a.state},  {"hidden", a.hidden}, {"hb", a.heartbeat},
              {"v", a.version}, {"mongov", a.mongod_version}, {"err", a.error}};
  c_.Update(kDb, kAgentsColl, {{"_id", doc["_id"]}}, doc, /*upsert=*/true);
}

std::vector<AgentStatus> Control::Agents() const {
  std::vector<AgentStatus> out;
  for (auto& d : c_.Find(kDb, kAgentsColl, Json::object(), {{"sort", {{"_id", 1}}}})) {
    AgentStatus a;
    a.replset = d.value("rs", std::string());
    a.node = d.value("n", std::string());
    a.state = d.value("s", std::string());
    a.hidden = d.value("hidden", false);
    a.heartbeat = d.value("hb", int64_t{0});
    a.version = d.value("v", std::string());
    a.mongod_version = d.value("mongov", std::string());
    a.error = d.value("err", std::string());
    out.push_back(std::move(a));
  }
  return out;
}

void Control::PutBackup(const backup::BackupMeta& b) const {
  Json doc = b;
  c_.Update(kDb, kBackupsColl, {{"name", b.name}}, doc, /*upsert=*/true);
}

std::optional<backup::BackupMeta> Control::GetBackup(const std::string& name) const {
  auto d = c_.FindOne(kDb, kBackupsColl, {{"name", name}});
  if (!d) return std::nullopt;
  d->erase("_id");
  return d->get<backup::BackupMeta>();
}

std::vector<backup::BackupMeta> Control::Backups() const {
  std::vector<backup::BackupMeta> out;
  for (auto& d : c_.Find(kDb, kBackupsColl, Json::object(), {{"sort", {{"start_ts", -1}, {"name", -1}}}})) {
    d.erase("_id");
    out.push_back(d.get<backup::BackupMeta>());
  }
  return out;
}

void Control::DeleteBackup(const std::string& name) const {
  c_.Delete(kDb, kBackupsColl, {{"name", name}});
}

void Control::PutRestore(const Json& r) const {
  c_.Update(kDb, kRestoresColl, {{"name", r.at("name")}}, r, /*upsert=*/true);
}

std::optional<Json> Control::GetRestore(const std::string& name) const {
  auto d = c_.FindOne(kDb, kRestoresColl, {{"name", name}});
  if (d) d->erase("_id");
  return d;
}

std::vector<Json> Control::Restores() const {
  auto v = c_.Find(kDb, kRestoresColl, Json::object(), {{"sort", {{"start_ts", -1}}}});
  for (auto& d : v) d.erase("_id");
  return v;
}

void Control::Log(const std::string& level, const std::string& replset, const std::string& node,
                  const std::string& event, const std::string& opid, const std::string& msg) const {
  c_.Insert(kDb, kLogColl, {{"ts", NowUnix()}, {"level", level}, {"rs", replset}, {"node", node},
                            {"event", event}, {"opid", opid}, {"msg", msg}});
}

std::vector<Json> Control::Logs(int64_t limit) const {
  auto v = c_.Find(kDb, kLogColl, Json::object(), {{"sort", {{"$natural", -1}}}, {"limit", limit}});
  for (auto& d : v) d.erase("_id");
  std::reverse(v.begin(), v.end());
  return v;
}

}  // namespace pbm::control
