#include "server/repl.h"

#include <mongoc/mongoc.h>
#include <ifaddrs.h>
#include <netdb.h>
#include <netinet/in.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <set>

#include "common/error.h"
#include "common/log.h"
#include "server/node.h"

namespace wtm {
namespace {

constexpr const char* kOplogNs = "local.oplog.rs";

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

int64_t ToMs(std::chrono::system_clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}

std::string Str(const bson_t* b, const char* key) {
  bson_iter_t it;
  if (bson_iter_init_find(&it, b, key) && BSON_ITER_HOLDS_UTF8(&it)) return bson_iter_utf8(&it, nullptr);
  return "";
}

int64_t Int(const bson_t* b, const char* key, int64_t dflt) {
  bson_iter_t it;
  if (bson_iter_init_find(&it, b, key) && BSON_ITER_HOLDS_NUMBER(&it)) return bson_iter_as_int64(&it);
  return dflt;
}

uint64_t OpTimeTs(const bson_t* b, const char* path) {
  bson_iter_t it;
  if (bson_iter_init(&it, b) && bson_iter_find_descendant(&it, path, &it)) return TsOf(&it);
  return 0;
}

// A direct connection to one member, with short timeouts. With a key file, it authenticates as
// __system@local with the key as the password (mongod's internal authentication; the mechanism
// is negotiated through saslSupportedMechs, so SCRAM-SHA-256).
struct Client {
  mongoc_client_t* c = nullptr;
  std::string host;
  Client(const std::string& h, const Node& node, int socket_timeout_ms = 5000) : host(h) {
    std::string text = "mongodb://" + h +
                       "/?directConnection=true&connectTimeoutMS=1000&serverSelectionTimeoutMS=1500"
                       "&socketTimeoutMS=" +
                       std::to_string(socket_timeout_ms);
    mongoc_uri_t* uri = mongoc_uri_new(text.c_str());
    if (!uri) return;
    if (!node.internal_keys().empty()) {
      mongoc_uri_set_username(uri, "__system");
      mongoc_uri_set_password(uri, node.internal_keys().front().c_str());
      mongoc_uri_set_auth_source(uri, "local");
    }
    c = mongoc_client_new_from_uri(uri);
    mongoc_uri_destroy(uri);
    if (c) mongoc_client_set_error_api(c, MONGOC_ERROR_API_VERSION_2);
  }
  ~Client() {
    if (c) mongoc_client_destroy(c);
  }
  // Runs a command; returns false with `err` set on failure (network or {ok: 0}).
  bool Run(const char* db, const bson_t* cmd, bson_t* reply, std::string* err) {
    bson_error_t e;
    if (!c) {
      *err = "bad host " + host;
      bson_init(reply);
      return false;
    }
    bool ok = mongoc_client_command_simple(c, db, cmd, nullptr, reply, &e);
    if (!ok) *err = e.message;
    return ok;
  }
};

}  // namespace

const char* StateStr(MemberState s) {
  switch (s) {
    case MemberState::kStartup:
      return "STARTUP";
    case MemberState::kPrimary:
      return "PRIMARY";
    case MemberState::kSecondary:
      return "SECONDARY";
    case MemberState::kRecovering:
      return "RECOVERING";
    case MemberState::kStartup2:
      return "STARTUP2";
    case MemberState::kUnknown:
      return "UNKNOWN";
    case MemberState::kArbiter:
      return "ARBITER";
    case MemberState::kDown:
      return "(not reachable/healthy)";
    case MemberState::kRollback:
      return "ROLLBACK";
    case MemberState::kRemoved:
      return "REMOVED";
  }
  return "UNKNOWN";
}

ReplConfig ParseReplConfig(const bson_t* doc, const std::string& expected_set) {
  ReplConfig cfg;
  cfg.set_name = Str(doc, "_id");
  if (cfg.set_name.empty()) {
    throw MongoError(ErrorCode::kInvalidReplicaSetConfig, "replica set configuration must have a string _id");
  }
  if (!expected_set.empty() && cfg.set_name != expected_set) {
    throw MongoError(ErrorCode::kInvalidReplicaSetConfig,
                     "Rejecting initiate with a set name that differs from command line set name, "
                     "initiate set name: " + cfg.set_name + ", command line set name: " + expected_set);
  }
  cfg.version = Int(doc, "version", 1);
  cfg.term = Int(doc, "term", 0);
  if (cfg.version < 1) throw MongoError(ErrorCode::kInvalidReplicaSetConfig, "version field value of " + std::to_string(cfg.version) + " is out of range");
  bson_iter_t it, m;
  if (!bson_iter_init_find(&it, doc, "members") || !BSON_ITER_HOLDS_ARRAY(&it)) {
    throw MongoError(ErrorCode::kInvalidReplicaSetConfig, "replica set configuration must have a members array");
  }
  bson_iter_recurse(&it, &m);
  std::set<int> ids;
  std::set<std::string> hosts;
  while (bson_iter_next(&m)) {
    if (!BSON_ITER_HOLDS_DOCUMENT(&m)) throw MongoError(ErrorCode::kInvalidReplicaSetConfig, "members must be documents");
    uint32_t len;
    const uint8_t* data;
    bson_iter_document(&m, &len, &data);
    bson_t md;
    bson_init_static(&md, data, len);
    MemberConfig mc;
    mc.id = static_cast<int>(Int(&md, "_id", -1));
    mc.host = Str(&md, "host");
    bson_iter_t f;
    if (bson_iter_init_find(&f, &md, "priority") && BSON_ITER_HOLDS_NUMBER(&f)) mc.priority = bson_iter_as_double(&f);
    mc.votes = static_cast<int>(Int(&md, "votes", 1));
    if (bson_iter_init_find(&f, &md, "hidden")) mc.hidden = bson_iter_as_bool(&f);
    if (bson_iter_init_find(&f, &md, "arbiterOnly")) mc.arbiter_only = bson_iter_as_bool(&f);
    mc.secondary_delay_secs = Int(&md, "secondaryDelaySecs", 0);
    if (mc.id < 0) throw MongoError(ErrorCode::kInvalidReplicaSetConfig, "member _id must be a non-negative number");
    if (mc.host.empty()) throw MongoError(ErrorCode::kInvalidReplicaSetConfig, "member " + std::to_string(mc.id) + " has no host");
    if (mc.host.find(':') == std::string::npos) mc.host += ":27017";
    if (!ids.insert(mc.id).second) {
      throw MongoError(ErrorCode::kInvalidReplicaSetConfig, "Found two member configurations with same _id field, members.0._id == members.1._id == " + std::to_string(mc.id));
    }
    if (!hosts.insert(mc.host).second) {
      throw MongoError(ErrorCode::kInvalidReplicaSetConfig, "Found two member configurations with same host field: " + mc.host);
    }
    if (mc.hidden && mc.priority > 0) {
      throw MongoError(ErrorCode::kInvalidReplicaSetConfig, "priority must be 0 when hidden=true");
    }
    cfg.members.push_back(mc);
  }
  if (cfg.members.empty()) throw MongoError(ErrorCode::kInvalidReplicaSetConfig, "Replica set configuration must have at least one member");
  if (cfg.members.size() > 50) throw MongoError(ErrorCode::kInvalidReplicaSetConfig, "Replica set configuration contains more than 50 members");
  cfg.raw = Doc::Copy(doc);
  return cfg;
}

Repl::Repl(Node& node) : node_(node), enabled_(!node.options().repl_set.empty()), set_name_(node.options().repl_set) {}

Repl::~Repl() { Shutdown(); }

std::string Repl::SelfHost() const {
  std::lock_guard<std::mutex> l(mu_);
  if (config_ && self_ >= 0) return config_->members[self_].host;
  return node_.host_port();
}

namespace {
bool IsSelf(const std::string& host, int port) {
  auto colon = host.rfind(':');
  if (colon == std::string::npos) return false;
  if (std::to_string(port) != host.substr(colon + 1)) return false;
  std::string h = host.substr(0, colon);
  char me[256] = {0};
  gethostname(me, sizeof me - 1);
  if (h == "127.0.0.1" || h == "localhost" || h == me || h == "::1" || h == "[::1]") return true;
  // As mongod's isSelf: a name is this node when one of the addresses it resolves to belongs to
  // one of this host's interfaces (a pod's DNS name resolving to the pod's IP).
  if (h.size() > 2 && h.front() == '[' && h.back() == ']') h = h.substr(1, h.size() - 2);
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  if (getaddrinfo(h.c_str(), nullptr, &hints, &res) != 0) return false;
  ifaddrs* ifs = nullptr;
  bool self = false;
  if (getifaddrs(&ifs) == 0) {
    for (addrinfo* a = res; a && !self; a = a->ai_next) {
      for (ifaddrs* i = ifs; i && !self; i = i->ifa_next) {
        if (!i->ifa_addr || i->ifa_addr->sa_family != a->ai_family) continue;
        if (a->ai_family == AF_INET) {
          self = reinterpret_cast<sockaddr_in*>(a->ai_addr)->sin_addr.s_addr ==
                 reinterpret_cast<sockaddr_in*>(i->ifa_addr)->sin_addr.s_addr;
        } else if (a->ai_family == AF_INET6) {
          self = std::memcmp(&reinterpret_cast<sockaddr_in6*>(a->ai_addr)->sin6_addr,
                             &reinterpret_cast<sockaddr_in6*>(i->ifa_addr)->sin6_addr,
                             sizeof(in6_addr)) == 0;
        }
      }
    }
    freeifaddrs(ifs);
  }
  freeaddrinfo(res);
  return self;
}
}  // namespace

void Repl::Startup() {
  if (!enabled_) return;
  last_ts_ = node_.TopOfOplog();
  last_applied_ = last_ts_;
  last_durable_ = last_ts_;
  commit_point_ = std::min<uint64_t>(node_.engine().stable_timestamp(), last_ts_);
  if (auto oplog = node_.catalog().Get(kOplogNs)) {
    storage::Txn txn(node_.engine());
    RecordCursor rc(txn, *oplog, INT64_MAX, true);
    int64_t rid;
    bson_t doc;
    if (rc.Next(&rid, &doc)) term_ = std::max<int64_t>(term_, Int(&doc, "t", 1));
  }
  if (auto c = node_.catalog().Get("local.system.replset")) {
    storage::Txn txn(node_.engine());
    RecordCursor rc(txn, *c, INT64_MIN);
    int64_t rid;
    bson_t doc;
    if (rc.Next(&rid, &doc)) {
      try {
        ReplConfig cfg = ParseReplConfig(&doc, "");
        if (cfg.set_name != set_name_) {
          Log(Severity::kError, "REPL", "The stored replica set config names another set; ignoring it",
              "{\"stored\":" + JsonQuote(cfg.set_name) + ",\"commandLine\":" + JsonQuote(set_name_) + "}");
        } else {
          term_ = std::max(term_, cfg.term);
          InstallConfig(cfg, false);
        }
      } catch (const std::exception& e) {
        Log(Severity::kError, "REPL", "Invalid stored replica set config", "{\"error\":" + JsonQuote(e.what()) + "}");
      }
    }
  }
  threads_.emplace_back([this] { HeartbeatLoop(); });
  threads_.emplace_back([this] { SyncLoop(); });
  threads_.emplace_back([this] { CommitPointLoop(); });
}

void Repl::Shutdown() {
  if (stopping_.exchange(true)) return;
  cv_.notify_all();
  durable_cv_.notify_all();
  for (auto& t : threads_) {
    if (t.joinable()) t.join();
  }
  threads_.clear();
}

bool Repl::IsWritablePrimary() const {
  if (!enabled_) return true;
  std::lock_guard<std::mutex> l(mu_);
  return state_ == MemberState::kPrimary;
}

MemberState Repl::state() const {
  std::lock_guard<std::mutex> l(mu_);
  return state_;
}

int64_t Repl::term() const {
  std::lock_guard<std::mutex> l(mu_);
  return term_;
}

std::optional<ReplConfig> Repl::config() const {
  std::lock_guard<std::mutex> l(mu_);
  return config_;
}

int Repl::self_index() const {
  std::lock_guard<std::mutex> l(mu_);
  return self_;
}

uint64_t Repl::NextTimestamp() {
  uint32_t now = static_cast<uint32_t>(time(nullptr));
  uint64_t ts = now > TsSecs(last_ts_) ? MakeTs(now, 1) : last_ts_ + 1;
  last_ts_ = ts;
  return ts;
}

void Repl::OnLocalWrite(uint64_t ts) {
  uint64_t cur = last_applied_.load();
  while (ts > cur && !last_applied_.compare_exchange_weak(cur, ts)) {
  }
  if (ts > last_ts_) last_ts_ = ts;
}

void Repl::SetLastApplied(uint64_t ts) {
  last_applied_ = ts;
  if (ts > last_ts_) last_ts_ = ts;
}

void Repl::FlushDurable() {
  static std::mutex flush_mu;
  std::lock_guard<std::mutex> l(flush_mu);
  uint64_t target = last_applied_.load();
  if (target <= last_durable_.load() && target != 0) return;
  node_.engine().FlushJournal();
  if (target > last_durable_.load()) last_durable_ = target;
  UpdateCommitPoint();
  node_.NotifyOplogWrite();
}

void Repl::UpdateCommitPoint() {
  uint64_t cp = 0;
  {
    std::lock_guard<std::mutex> l(mu_);
    if (!config_ || self_ < 0) return;
    if (state_ != MemberState::kPrimary) return;
    std::vector<uint64_t> durable;
    int voters = 0;
    for (size_t i = 0; i < config_->members.size(); ++i) {
      if (config_->members[i].votes <= 0) continue;
      ++voters;
      if (static_cast<int>(i) == self_) {
        durable.push_back(last_durable_.load());
      } else if (members_[i].healthy || members_[i].durable > 0) {
        durable.push_back(members_[i].durable);
      } else {
        durable.push_back(0);
      }
    }
    int majority = voters / 2 + 1;
    std::sort(durable.rbegin(), durable.rend());
    if (static_cast<int>(durable.size()) >= majority) cp = durable[majority - 1];
  }
  uint64_t cur = commit_point_.load();
  if (cp > cur) {
    commit_point_ = cp;
    try {
      node_.engine().SetStableTimestamp(cp);
    } catch (const std::exception& e) {
      Log(Severity::kWarning, "REPL", "could not set the stable timestamp", "{\"error\":" + JsonQuote(e.what()) + "}");
    }
    durable_cv_.notify_all();
    cv_.notify_all();
  }
}

void Repl::WaitForWriteConcern(uint64_t ts, const bson_t* cmd) {
  bson_iter_t it, wc;
  std::string w_mode;
  int64_t w_num = -1;
  bool j = false;
  int64_t wtimeout = 0;
  bool explicit_wc = false;
  if (bson_iter_init_find(&it, cmd, "writeConcern") && BSON_ITER_HOLDS_DOCUMENT(&it) &&
      bson_iter_recurse(&it, &wc)) {
    explicit_wc = true;
    while (bson_iter_next(&wc)) {
      std::string k = bson_iter_key(&wc);
      if (k == "w") {
        if (BSON_ITER_HOLDS_UTF8(&wc)) {
          w_mode = bson_iter_utf8(&wc, nullptr);
        } else if (BSON_ITER_HOLDS_NUMBER(&wc)) {
          w_num = bson_iter_as_int64(&wc);
        }
      } else if (k == "j") {
        j = bson_iter_as_bool(&wc);
      } else if (k == "wtimeout") {
        wtimeout = bson_iter_as_int64(&wc);
      } else if (k == "fsync") {
        j = j || bson_iter_as_bool(&wc);
      }
    }
  }
  if (!w_mode.empty() && w_mode != "majority") {
    throw MongoError(79, "Unrecognized write concern mode: " + w_mode);
  }
  if (!explicit_wc || (w_mode.empty() && w_num < 0)) {
    // The implicit default since 5.0: majority on replica sets, w:1 on standalones.
    if (enabled_) w_mode = "majority";
    else w_num = 1;
  }
  if (w_num == 0) return;
  if (!enabled_) {
    if (w_num > 1) throw MongoError(ErrorCode::kBadValue, "cannot use 'w' > 1 with a standalone");
    if (j || w_mode == "majority") node_.engine().FlushJournal();
    return;
  }
  if (ts == 0) return;
  if (w_num == 1 && w_mode.empty()) {
    if (j) FlushDurable();
    return;
  }
  FlushDurable();
  auto deadline = wtimeout > 0 ? std::chrono::steady_clock::now() + std::chrono::milliseconds(wtimeout)
                               : std::chrono::steady_clock::time_point::max();
  std::unique_lock<std::mutex> l(mu_);
  auto satisfied = [&] {
    if (stopping_) return true;
    if (w_mode == "majority") return commit_point_.load() >= ts;
    int n = 0;
    for (size_t i = 0; config_ && i < config_->members.size(); ++i) {
      if (static_cast<int>(i) == self_) {
        if (last_applied_.load() >= ts) ++n;
      } else if (members_[i].applied >= ts) {
        ++n;
      }
    }
    return n >= w_num;
  };
  if (w_num > 0 && config_ && w_num > static_cast<int64_t>(config_->members.size())) {
    throw MongoError(100, "Not enough data-bearing nodes");
  }
  while (!satisfied()) {
    if (deadline == std::chrono::steady_clock::time_point::max()) {
      durable_cv_.wait_for(l, std::chrono::milliseconds(100));
    } else if (durable_cv_.wait_until(l, std::min(deadline, std::chrono::steady_clock::now() +
                                                                 std::chrono::milliseconds(100))) ==
                   std::cv_status::timeout &&
               std::chrono::steady_clock::now() >= deadline) {
      if (satisfied()) break;
      throw MongoError(ErrorCode::kWriteConcernFailed, "waiting for replication timed out");
    }
  }
  if (stopping_) throw MongoError(ErrorCode::kInterruptedAtShutdown, "interrupted at shutdown");
}

std::string Repl::PrimaryHost() const {
  std::lock_guard<std::mutex> l(mu_);
  if (!config_) return "";
  if (state_ == MemberState::kPrimary && self_ >= 0) return config_->members[self_].host;
  for (size_t i = 0; i < members_.size(); ++i) {
    if (static_cast<int>(i) != self_ && members_[i].healthy && members_[i].state == MemberState::kPrimary) {
      return config_->members[i].host;
    }
  }
  return "";
}

void Repl::ComputeRole() {
  // Caller holds mu_.
  if (!config_) return;
  if (self_ < 0) {
    state_ = MemberState::kRemoved;
    return;
  }
  int best = -1;
  for (size_t i = 0; i < config_->members.size(); ++i) {
    const auto& m = config_->members[i];
    if (m.arbiter_only || m.priority <= 0) continue;
    if (best < 0 || m.priority > config_->members[best].priority) best = static_cast<int>(i);
  }
  MemberState next = best == self_ ? MemberState::kPrimary : MemberState::kSecondary;
  if (state_ == MemberState::kStartup2 || state_ == MemberState::kRecovering) {
    if (next != MemberState::kPrimary) return;  // the sync loop moves us on
  }
  if (next == MemberState::kPrimary && state_ != MemberState::kPrimary) {
    term_ += 1;
    election_time_ = std::chrono::system_clock::now();
    state_ = next;
    Log(Severity::kInfo, "REPL", "Transition to PRIMARY", "{\"term\":" + std::to_string(term_) + "}");
    // Write the "new primary" no-op outside the lock.
    std::thread([this] {
      try {
        WriteUnit wu(node_);
        bson_t o = BSON_INITIALIZER;
        BSON_APPEND_UTF8(&o, "msg", "new primary");
        wu.LogNoop(&o);
        bson_destroy(&o);
        wu.Commit();
        FlushDurable();
      } catch (const std::exception& e) {
        Log(Severity::kWarning, "REPL", "could not write the new-primary no-op", "{\"error\":" + JsonQuote(e.what()) + "}");
      }
    }).detach();
  } else if (next == MemberState::kSecondary && state_ != MemberState::kSecondary) {
    state_ = next;
    Log(Severity::kInfo, "REPL", "Transition to SECONDARY", "{}");
  }
}

void Repl::PersistConfig(const ReplConfig& cfg) {
  WriteUnit wu(node_);
  auto c = wu.GetOrCreate("local.system.replset");
  std::vector<std::pair<int64_t, Doc>> old;
  {
    RecordCursor rc(wu.txn(), *c, INT64_MIN);
    int64_t rid;
    bson_t doc;
    while (rc.Next(&rid, &doc)) old.emplace_back(rid, Doc::Copy(&doc));
  }
  for (auto& [rid, d] : old) wu.Delete(*c, rid, d.get());
  wu.Insert(*c, cfg.raw.get());
  wu.Commit();
}

void Repl::InstallConfig(const ReplConfig& cfg, bool persist) {
  if (persist) PersistConfig(cfg);
  if (!node_.catalog().Get(kOplogNs)) {
    WriteUnit wu(node_);
    bson_t opts = BSON_INITIALIZER;
    BSON_APPEND_BOOL(&opts, "capped", true);
    int64_t mb = node_.options().oplog_size_mb > 0 ? node_.options().oplog_size_mb : 1024;
    BSON_APPEND_INT64(&opts, "size", mb * 1024 * 1024);
    node_.catalog().Create(wu.txn(), kOplogNs, &opts);
    bson_destroy(&opts);
    wu.Commit();
  }
  std::lock_guard<std::mutex> l(mu_);
  int self = -1;
  for (size_t i = 0; i < cfg.members.size(); ++i) {
    if (IsSelf(cfg.members[i].host, node_.options().port)) self = static_cast<int>(i);
  }
  std::vector<MemberStatus> ms(cfg.members.size());
  if (config_) {
    for (size_t i = 0; i < cfg.members.size(); ++i) {
      for (size_t j = 0; j < config_->members.size(); ++j) {
        if (config_->members[j].host == cfg.members[i].host && j < members_.size()) ms[i] = members_[j];
      }
    }
  }
  config_ = cfg;
  self_ = self;
  members_ = std::move(ms);
  Log(Severity::kInfo, "REPL", "New replica set config in use",
      "{\"config\":" + cfg.raw.ToJson() + ",\"self\":" + std::to_string(self) + "}");
  if (state_ == MemberState::kStartup) state_ = MemberState::kStartup2;
  // A member with data resumes as secondary; an empty one syncs first (SyncLoop).
  if (state_ == MemberState::kStartup2 && last_applied_.load() > 0) state_ = MemberState::kSecondary;
  ComputeRole();
  cv_.notify_all();
}

Doc Repl::Initiate(const bson_t* cmd) {
  if (!enabled_) {
    throw MongoError(ErrorCode::kNoReplicationEnabled, "This node was not started with replication enabled.");
  }
  {
    std::lock_guard<std::mutex> l(mu_);
    if (config_) throw MongoError(ErrorCode::kAlreadyInitialized, "already initialized");
  }
  bson_iter_t it;
  Doc cfg_doc;
  if (bson_iter_init_find(&it, cmd, "replSetInitiate") && BSON_ITER_HOLDS_DOCUMENT(&it)) {
    uint32_t len;
    const uint8_t* data;
    bson_iter_document(&it, &len, &data);
    cfg_doc = Doc::FromData(data, len);
  }
  if (cfg_doc.empty()) {
    bson_t* d = bson_new();
    BSON_APPEND_UTF8(d, "_id", set_name_.c_str());
    BSON_APPEND_INT32(d, "version", 1);
    bson_t arr, m;
    BSON_APPEND_ARRAY_BEGIN(d, "members", &arr);
    BSON_APPEND_DOCUMENT_BEGIN(&arr, "0", &m);
    BSON_APPEND_INT32(&m, "_id", 0);
    BSON_APPEND_UTF8(&m, "host", node_.host_port().c_str());
    bson_append_document_end(&arr, &m);
    bson_append_array_end(d, &arr);
    cfg_doc = Doc(d);
  }
  ReplConfig cfg = ParseReplConfig(cfg_doc.get(), set_name_);
  bool self_found = false;
  for (auto& m : cfg.members) self_found |= IsSelf(m.host, node_.options().port);
  if (!self_found) {
    throw MongoError(ErrorCode::kInvalidReplicaSetConfig,
                     "No host described in new configuration with {version: " + std::to_string(cfg.version) +
                         ", term: 0} for replica set " + cfg.set_name + " maps to this node");
  }
  // Normalize: the stored config carries protocolVersion, term and settings like mongod's.
  bson_t* norm = bson_new();
  BSON_APPEND_UTF8(norm, "_id", cfg.set_name.c_str());
  BSON_APPEND_INT32(norm, "version", static_cast<int32_t>(cfg.version));
  BSON_APPEND_INT32(norm, "term", static_cast<int32_t>(term_));
  BSON_APPEND_INT64(norm, "protocolVersion", 1);
  BSON_APPEND_BOOL(norm, "writeConcernMajorityJournalDefault", true);
  bson_t arr;
  BSON_APPEND_ARRAY_BEGIN(norm, "members", &arr);
  for (size_t i = 0; i < cfg.members.size(); ++i) {
    const auto& m = cfg.members[i];
    bson_t md;
    char k[8];
    snprintf(k, sizeof k, "%zu", i);
    BSON_APPEND_DOCUMENT_BEGIN(&arr, k, &md);
    BSON_APPEND_INT32(&md, "_id", m.id);
    BSON_APPEND_UTF8(&md, "host", m.host.c_str());
    BSON_APPEND_BOOL(&md, "arbiterOnly", m.arbiter_only);
    BSON_APPEND_BOOL(&md, "buildIndexes", true);
    BSON_APPEND_BOOL(&md, "hidden", m.hidden);
    BSON_APPEND_DOUBLE(&md, "priority", m.priority);
    bson_t tags;
    BSON_APPEND_DOCUMENT_BEGIN(&md, "tags", &tags);
    bson_append_document_end(&md, &tags);
    BSON_APPEND_INT64(&md, "secondaryDelaySecs", m.secondary_delay_secs);
    BSON_APPEND_INT32(&md, "votes", m.votes);
    bson_append_document_end(&arr, &md);
  }
  bson_append_array_end(norm, &arr);
  bson_t settings;
  BSON_APPEND_DOCUMENT_BEGIN(norm, "settings", &settings);
  BSON_APPEND_BOOL(&settings, "chainingAllowed", true);
  BSON_APPEND_INT32(&settings, "heartbeatIntervalMillis", 2000);
  BSON_APPEND_INT32(&settings, "heartbeatTimeoutSecs", 10);
  BSON_APPEND_INT32(&settings, "electionTimeoutMillis", 10000);
  bson_append_document_end(norm, &settings);
  cfg.raw = Doc(norm);
  // The oplog starts with the "initiating set" no-op.
  InstallConfig(cfg, true);
  {
    WriteUnit wu(node_);
    bson_t o = BSON_INITIALIZER;
    BSON_APPEND_UTF8(&o, "msg", "initiating set");
    wu.LogNoop(&o);
    bson_destroy(&o);
    wu.Commit();
  }
  FlushDurable();
  bson_t* r = bson_new();
  BSON_APPEND_DOUBLE(r, "ok", 1.0);
  return Doc(r);
}

Doc Repl::GetConfig() {
  if (!enabled_) throw MongoError(ErrorCode::kNoReplicationEnabled, "not running with --replSet");
  std::lock_guard<std::mutex> l(mu_);
  if (!config_) throw MongoError(ErrorCode::kNotYetInitialized, "no replset config has been received");
  bson_t* r = bson_new();
  BSON_APPEND_DOCUMENT(r, "config", config_->raw.get());
  BSON_APPEND_DOUBLE(r, "ok", 1.0);
  return Doc(r);
}

Doc Repl::Reconfig(const bson_t* cmd) {
  if (!enabled_) throw MongoError(ErrorCode::kNoReplicationEnabled, "not running with --replSet");
  bson_iter_t it;
  if (!bson_iter_init_find(&it, cmd, "replSetReconfig") || !BSON_ITER_HOLDS_DOCUMENT(&it)) {
    throw MongoError(ErrorCode::kTypeMismatch, "replSetReconfig requires a config document");
  }
  bool force = false;
  bson_iter_t f;
  if (bson_iter_init_find(&f, cmd, "force")) force = bson_iter_as_bool(&f);
  uint32_t len;
  const uint8_t* data;
  bson_iter_document(&it, &len, &data);
  Doc d = Doc::FromData(data, len);
  ReplConfig cfg = ParseReplConfig(d.get(), set_name_);
  {
    std::lock_guard<std::mutex> l(mu_);
    if (!config_) throw MongoError(ErrorCode::kNotYetInitialized, "no replset config has been received");
    if (!force && state_ != MemberState::kPrimary) {
      throw MongoError(ErrorCode::kNotWritablePrimary, "replSetReconfig should only be run on a writable PRIMARY. Current state " + std::string(StateStr(state_)) + ";");
    }
    if (force) {
      cfg.version = std::max(cfg.version, config_->version + 10000);
    } else if (cfg.version <= config_->version) {
      throw MongoError(ErrorCode::kNewReplicaSetConfigurationIncompatible,
                       "New config is rejected :: caused by :: version field value of " + std::to_string(cfg.version) +
                           " is not greater than the current version " + std::to_string(config_->version));
    }
  }
  bool self_found = false;
  for (auto& m : cfg.members) self_found |= IsSelf(m.host, node_.options().port);
  if (!self_found) throw MongoError(ErrorCode::kInvalidReplicaSetConfig, "the new config does not contain this node");
  // Keep the version (maybe raised by force) in the stored document.
  bson_t* norm = bson_new();
  bson_iter_t di;
  bson_iter_init(&di, d.get());
  while (bson_iter_next(&di)) {
    if (strcmp(bson_iter_key(&di), "version") == 0 || strcmp(bson_iter_key(&di), "term") == 0) continue;
    bson_append_value(norm, bson_iter_key(&di), -1, bson_iter_value(&di));
  }
  BSON_APPEND_INT32(norm, "version", static_cast<int32_t>(cfg.version));
  BSON_APPEND_INT32(norm, "term", static_cast<int32_t>(term()));
  cfg.raw = Doc(norm);
  InstallConfig(cfg, true);
  bson_t* r = bson_new();
  BSON_APPEND_DOUBLE(r, "ok", 1.0);
  return Doc(r);
}

void Repl::AppendHelloFields(bson_t* reply, bool hello_cmd) {
  std::lock_guard<std::mutex> l(mu_);
  const char* primary_key = hello_cmd ? "isWritablePrimary" : "ismaster";
  if (!config_) {
    BSON_APPEND_BOOL(reply, primary_key, false);
    BSON_APPEND_BOOL(reply, "secondary", false);
    BSON_APPEND_UTF8(reply, "info", "Does not have a valid replica set config");
    BSON_APPEND_BOOL(reply, "isreplicaset", true);
    return;
  }
  bson_t hosts, passives;
  BSON_APPEND_ARRAY_BEGIN(reply, "hosts", &hosts);
  int hi = 0, pi = 0;
  std::vector<std::string> passive;
  for (const auto& m : config_->members) {
    if (m.hidden || m.arbiter_only) continue;
    if (m.priority == 0) {
      passive.push_back(m.host);
      continue;
    }
    char k[8];
    snprintf(k, sizeof k, "%d", hi++);
    BSON_APPEND_UTF8(&hosts, k, m.host.c_str());
  }
  bson_append_array_end(reply, &hosts);
  if (!passive.empty()) {
    BSON_APPEND_ARRAY_BEGIN(reply, "passives", &passives);
    for (auto& h : passive) {
      char k[8];
      snprintf(k, sizeof k, "%d", pi++);
      BSON_APPEND_UTF8(&passives, k, h.c_str());
    }
    bson_append_array_end(reply, &passives);
  }
  BSON_APPEND_UTF8(reply, "setName", config_->set_name.c_str());
  BSON_APPEND_INT32(reply, "setVersion", static_cast<int32_t>(config_->version));
  bool primary = state_ == MemberState::kPrimary;
  BSON_APPEND_BOOL(reply, primary_key, primary);
  BSON_APPEND_BOOL(reply, "secondary", state_ == MemberState::kSecondary);
  std::string primary_host;
  if (primary && self_ >= 0) {
    primary_host = config_->members[self_].host;
  } else {
    for (size_t i = 0; i < members_.size(); ++i) {
      if (static_cast<int>(i) != self_ && members_[i].healthy && members_[i].state == MemberState::kPrimary) {
        primary_host = config_->members[i].host;
      }
    }
  }
  if (!primary_host.empty()) BSON_APPEND_UTF8(reply, "primary", primary_host.c_str());
  if (self_ >= 0) {
    const auto& me = config_->members[self_];
    if (me.hidden) BSON_APPEND_BOOL(reply, "hidden", true);
    if (me.priority == 0) BSON_APPEND_BOOL(reply, "passive", true);
    BSON_APPEND_UTF8(reply, "me", me.host.c_str());
  }
  if (primary) {
    uint8_t raw[12] = {0x7f, 0xff, 0xff, 0xff};
    for (int i = 0; i < 8; ++i) raw[4 + i] = static_cast<uint8_t>(term_ >> (8 * (7 - i)));
    bson_oid_t oid;
    bson_oid_init_from_data(&oid, raw);
    BSON_APPEND_OID(reply, "electionId", &oid);
  }
  bson_t lw;
  BSON_APPEND_DOCUMENT_BEGIN(reply, "lastWrite", &lw);
  AppendOpTime(&lw, "opTime", last_applied_.load(), term_);
  BSON_APPEND_DATE_TIME(&lw, "lastWriteDate", static_cast<int64_t>(TsSecs(last_applied_.load())) * 1000);
  AppendOpTime(&lw, "majorityOpTime", commit_point_.load(), term_);
  BSON_APPEND_DATE_TIME(&lw, "majorityWriteDate", static_cast<int64_t>(TsSecs(commit_point_.load())) * 1000);
  bson_append_document_end(reply, &lw);
}

void Repl::AppendReplData(bson_t* reply) {
  bson_t d;
  BSON_APPEND_DOCUMENT_BEGIN(reply, "$replData", &d);
  BSON_APPEND_INT64(&d, "term", term());
  AppendOpTime(&d, "lastOpCommitted", commit_point_.load(), term());
  AppendOpTime(&d, "lastOpVisible", fetch_limit(), term());
  BSON_APPEND_INT32(&d, "configVersion", config() ? static_cast<int32_t>(config()->version) : -1);
  BSON_APPEND_INT32(&d, "primaryIndex", -1);
  bson_append_document_end(reply, &d);
}

uint64_t Repl::fetch_limit() const {
  if (!enabled_) return UINT64_MAX;
  std::lock_guard<std::mutex> l(mu_);
  return state_ == MemberState::kPrimary ? last_durable_.load() : last_applied_.load();
}

Doc Repl::GetStatus() {
  if (!enabled_) throw MongoError(ErrorCode::kNoReplicationEnabled, "not running with --replSet");
  std::lock_guard<std::mutex> l(mu_);
  if (!config_) throw MongoError(ErrorCode::kNotYetInitialized, "no replset config has been received");
  bson_t* r = bson_new();
  BSON_APPEND_UTF8(r, "set", config_->set_name.c_str());
  BSON_APPEND_DATE_TIME(r, "date", NowMs());
  BSON_APPEND_INT32(r, "myState", static_cast<int32_t>(state_));
  BSON_APPEND_INT64(r, "term", term_);
  BSON_APPEND_UTF8(r, "syncSourceHost", sync_source_.c_str());
  BSON_APPEND_INT32(r, "syncSourceId", -1);
  BSON_APPEND_INT64(r, "heartbeatIntervalMillis", ParameterInt(node_.options(), "heartbeatIntervalMillis", 500));
  int voters = 0;
  for (auto& m : config_->members) voters += m.votes > 0;
  BSON_APPEND_INT32(r, "majorityVoteCount", voters / 2 + 1);
  BSON_APPEND_INT32(r, "writeMajorityCount", voters / 2 + 1);
  BSON_APPEND_INT32(r, "votingMembersCount", voters);
  BSON_APPEND_INT32(r, "writableVotingMembersCount", voters);
  bson_t op;
  BSON_APPEND_DOCUMENT_BEGIN(r, "optimes", &op);
  AppendOpTime(&op, "lastCommittedOpTime", commit_point_.load(), term_);
  BSON_APPEND_DATE_TIME(&op, "lastCommittedWallTime", static_cast<int64_t>(TsSecs(commit_point_.load())) * 1000);
  AppendOpTime(&op, "readConcernMajorityOpTime", commit_point_.load(), term_);
  AppendOpTime(&op, "appliedOpTime", last_applied_.load(), term_);
  AppendOpTime(&op, "durableOpTime", last_durable_.load(), term_);
  BSON_APPEND_DATE_TIME(&op, "lastAppliedWallTime", static_cast<int64_t>(TsSecs(last_applied_.load())) * 1000);
  BSON_APPEND_DATE_TIME(&op, "lastDurableWallTime", static_cast<int64_t>(TsSecs(last_durable_.load())) * 1000);
  bson_append_document_end(r, &op);
  AppendTs(r, "lastStableRecoveryTimestamp", node_.engine().LastCheckpointTimestamp());
  bson_t arr;
  BSON_APPEND_ARRAY_BEGIN(r, "members", &arr);
  int64_t uptime = time(nullptr) - node_.start_time();
  for (size_t i = 0; i < config_->members.size(); ++i) {
    const auto& mc = config_->members[i];
    bson_t m;
    char k[8];
    snprintf(k, sizeof k, "%zu", i);
    BSON_APPEND_DOCUMENT_BEGIN(&arr, k, &m);
    BSON_APPEND_INT32(&m, "_id", mc.id);
    BSON_APPEND_UTF8(&m, "name", mc.host.c_str());
    bool self = static_cast<int>(i) == self_;
    const MemberStatus& st = members_[i];
    bool healthy = self || st.healthy;
    MemberState state = self ? state_ : (st.healthy ? st.state : (st.ever_seen || !st.last_error.empty() ? MemberState::kDown : MemberState::kUnknown));
    BSON_APPEND_DOUBLE(&m, "health", healthy ? 1.0 : 0.0);
    BSON_APPEND_INT32(&m, "state", static_cast<int32_t>(state));
    BSON_APPEND_UTF8(&m, "stateStr", StateStr(state));
    BSON_APPEND_INT64(&m, "uptime", self ? uptime : 0);
    uint64_t applied = self ? last_applied_.load() : st.applied;
    uint64_t durable = self ? last_durable_.load() : st.durable;
    AppendOpTime(&m, "optime", applied, term_);
    AppendOpTime(&m, "optimeDurable", durable, term_);
    BSON_APPEND_DATE_TIME(&m, "optimeDate", static_cast<int64_t>(TsSecs(applied)) * 1000);
    BSON_APPEND_DATE_TIME(&m, "optimeDurableDate", static_cast<int64_t>(TsSecs(durable)) * 1000);
    if (!self) {
      BSON_APPEND_DATE_TIME(&m, "lastHeartbeat", ToMs(st.last_heartbeat));
      BSON_APPEND_DATE_TIME(&m, "lastHeartbeatRecv", ToMs(st.last_heartbeat_recv));
      BSON_APPEND_INT64(&m, "pingMs", st.ping_ms);
      BSON_APPEND_UTF8(&m, "lastHeartbeatMessage", st.last_error.c_str());
    } else {
      BSON_APPEND_UTF8(&m, "syncSourceHost", sync_source_.c_str());
      if (state_ == MemberState::kPrimary) BSON_APPEND_DATE_TIME(&m, "electionDate", ToMs(election_time_));
      BSON_APPEND_BOOL(&m, "self", true);
    }
    BSON_APPEND_INT32(&m, "configVersion", static_cast<int32_t>(self ? config_->version : st.config_version));
    BSON_APPEND_INT64(&m, "configTerm", term_);
    bson_append_document_end(&arr, &m);
  }
  bson_append_array_end(r, &arr);
  BSON_APPEND_DOUBLE(r, "ok", 1.0);
  return Doc(r);
}

Doc Repl::Heartbeat(const bson_t* cmd) {
  if (!enabled_) throw MongoError(ErrorCode::kNoReplicationEnabled, "not running with --replSet");
  std::string set = Str(cmd, "replSetHeartbeat");
  if (set != set_name_) {
    throw MongoError(ErrorCode::kInconsistentReplicaSetNames,
                     "Our set name of " + set_name_ + " does not match name " + set + " reported by remote node");
  }
  int64_t their_version = Int(cmd, "configVersion", -1);
  bson_iter_t it;
  bool have_newer = false;
  {
    std::lock_guard<std::mutex> l(mu_);
    have_newer = !config_ || their_version > config_->version;
    std::string from = Str(cmd, "from");
    if (config_) {
      for (size_t i = 0; i < config_->members.size(); ++i) {
        if (config_->members[i].host == from) members_[i].last_heartbeat_recv = std::chrono::system_clock::now();
      }
    }
  }
  if (have_newer && bson_iter_init_find(&it, cmd, "config") && BSON_ITER_HOLDS_DOCUMENT(&it)) {
    uint32_t len;
    const uint8_t* data;
    bson_iter_document(&it, &len, &data);
    bson_t d;
    bson_init_static(&d, data, len);
    try {
      ReplConfig cfg = ParseReplConfig(&d, set_name_);
      InstallConfig(cfg, true);
    } catch (const std::exception& e) {
      Log(Severity::kWarning, "REPL", "rejected the config sent with a heartbeat", "{\"error\":" + JsonQuote(e.what()) + "}");
    }
  }
  bson_t* r = bson_new();
  std::lock_guard<std::mutex> l(mu_);
  BSON_APPEND_UTF8(r, "set", set_name_.c_str());
  BSON_APPEND_INT32(r, "state", static_cast<int32_t>(state_));
  BSON_APPEND_INT64(r, "v", config_ ? config_->version : -2);
  BSON_APPEND_INT64(r, "term", term_);
  AppendOpTime(r, "opTime", last_applied_.load(), term_);
  AppendOpTime(r, "durableOpTime", last_durable_.load(), term_);
  BSON_APPEND_UTF8(r, "syncingTo", sync_source_.c_str());
  BSON_APPEND_DOUBLE(r, "ok", 1.0);
  return Doc(r);
}

Doc Repl::UpdatePosition(const bson_t* cmd) {
  if (!enabled_) throw MongoError(ErrorCode::kNoReplicationEnabled, "not running with --replSet");
  bson_iter_t it, arr;
  if (bson_iter_init_find(&it, cmd, "optimes") && bson_iter_recurse(&it, &arr)) {
    std::lock_guard<std::mutex> l(mu_);
    while (bson_iter_next(&arr)) {
      uint32_t len;
      const uint8_t* data;
      bson_iter_document(&arr, &len, &data);
      bson_t d;
      bson_init_static(&d, data, len);
      int id = static_cast<int>(Int(&d, "memberId", -1));
      for (size_t i = 0; config_ && i < config_->members.size(); ++i) {
        if (config_->members[i].id != id) continue;
        members_[i].applied = std::max(members_[i].applied, OpTimeTs(&d, "appliedOpTime.ts"));
        members_[i].durable = std::max(members_[i].durable, OpTimeTs(&d, "durableOpTime.ts"));
      }
    }
  }
  UpdateCommitPoint();
  durable_cv_.notify_all();
  bson_t* r = bson_new();
  BSON_APPEND_DOUBLE(r, "ok", 1.0);
  return Doc(r);
}

// ---------------------------------------------------------------------------------------------
// Background loops

void Repl::HeartbeatLoop() {
  SetThreadName("ReplCoord-hb");
  std::map<std::string, std::unique_ptr<Client>> clients;
  auto interval = std::chrono::milliseconds(ParameterInt(node_.options(), "heartbeatIntervalMillis", 500));
  while (!stopping_) {
    std::optional<ReplConfig> cfg;
    int self;
    std::vector<int64_t> known_versions;
    {
      std::unique_lock<std::mutex> l(mu_);
      cv_.wait_for(l, interval, [&] { return stopping_.load(); });
      if (stopping_) break;
      cfg = config_;
      self = self_;
      for (auto& m : members_) known_versions.push_back(m.config_version);
    }
    if (!cfg) continue;
    for (size_t i = 0; i < cfg->members.size() && !stopping_; ++i) {
      if (static_cast<int>(i) == self) continue;
      const std::string& host = cfg->members[i].host;
      auto& cl = clients[host];
      if (!cl) cl = std::make_unique<Client>(host, node_, 3000);
      bson_t cmd = BSON_INITIALIZER;
      BSON_APPEND_UTF8(&cmd, "replSetHeartbeat", cfg->set_name.c_str());
      BSON_APPEND_INT64(&cmd, "configVersion", cfg->version);
      BSON_APPEND_INT32(&cmd, "hbv", 1);
      BSON_APPEND_UTF8(&cmd, "from", self >= 0 ? cfg->members[self].host.c_str() : "");
      BSON_APPEND_INT32(&cmd, "fromId", self >= 0 ? cfg->members[self].id : -1);
      BSON_APPEND_INT64(&cmd, "term", term());
      if (i < known_versions.size() && known_versions[i] < cfg->version) {
        BSON_APPEND_DOCUMENT(&cmd, "config", cfg->raw.get());
      }
      bson_t reply;
      std::string err;
      auto t0 = std::chrono::steady_clock::now();
      bool ok = cl->Run("admin", &cmd, &reply, &err);
      auto ping = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0).count();
      bson_destroy(&cmd);
      {
        std::lock_guard<std::mutex> l(mu_);
        if (!config_ || i >= members_.size() || config_->members[i].host != host) {
          bson_destroy(&reply);
          continue;
        }
        MemberStatus& st = members_[i];
        st.last_heartbeat = std::chrono::system_clock::now();
        if (ok) {
          bool was_healthy = st.healthy;
          st.healthy = true;
          st.ever_seen = true;
          st.state = static_cast<MemberState>(Int(&reply, "state", 0));
          st.applied = OpTimeTs(&reply, "opTime.ts");
          st.durable = std::max(st.durable, OpTimeTs(&reply, "durableOpTime.ts"));
          st.config_version = Int(&reply, "v", -2);
          st.ping_ms = ping;
          st.last_error.clear();
          int64_t their_term = Int(&reply, "term", 0);
          if (their_term > term_ && state_ != MemberState::kPrimary) term_ = their_term;
          if (!was_healthy) {
            Log(Severity::kInfo, "REPL", "Member is now in state " + std::string(StateStr(st.state)),
                "{\"hostAndPort\":" + JsonQuote(host) + "}");
          }
        } else {
          if (st.healthy) {
            Log(Severity::kInfo, "REPL", "Heartbeat failed; member is down",
                "{\"hostAndPort\":" + JsonQuote(host) + ",\"error\":" + JsonQuote(err) + "}");
          }
          st.healthy = false;
          st.state = MemberState::kDown;
          st.last_error = err;
          // Reconnect from scratch next time.
          cl.reset();
        }
      }
      bson_destroy(&reply);
    }
    UpdateCommitPoint();
  }
}

void Repl::CommitPointLoop() {
  SetThreadName("JournalFlusher-repl");
  while (!stopping_) {
    {
      std::unique_lock<std::mutex> l(mu_);
      cv_.wait_for(l, std::chrono::milliseconds(100), [&] { return stopping_.load(); });
    }
    if (stopping_) break;
    try {
      FlushDurable();
    } catch (const std::exception& e) {
      Log(Severity::kError, "REPL", "journal flush failed", "{\"error\":" + JsonQuote(e.what()) + "}");
    }
  }
}

void Repl::ReportPosition(const std::string& source) {
  // Sent on the fetcher's own connection by FetchAndApply.
  (void)source;
}

bool Repl::InitialSync(const std::string& source) {
  Log(Severity::kInfo, "INITSYNC", "Initial sync started", "{\"syncSource\":" + JsonQuote(source) + "}");
  Client cl(source, node_, 60000);
  std::string err;
  // 1. Where the sync starts: the source's newest oplog entry.
  Doc begin;
  {
    mongoc_collection_t* oplog = mongoc_client_get_collection(cl.c, "local", "oplog.rs");
    bson_t filter = BSON_INITIALIZER;
    bson_t* opts = BCON_NEW("sort", "{", "$natural", BCON_INT32(-1), "}", "limit", BCON_INT64(1));
    mongoc_cursor_t* cur = mongoc_collection_find_with_opts(oplog, &filter, opts, nullptr);
    const bson_t* d;
    bool got = mongoc_cursor_next(cur, &d);
    if (got) begin = Doc::Copy(d);
    bson_error_t e;
    bool failed = mongoc_cursor_error(cur, &e);
    mongoc_cursor_destroy(cur);
    bson_destroy(opts);
    mongoc_collection_destroy(oplog);
    if (!got || failed) {
      Log(Severity::kWarning, "INITSYNC", "cannot read the sync source's oplog", "{\"error\":" + JsonQuote(failed ? e.message : "empty oplog") + "}");
      return false;
    }
  }
  // 2. Clone every database but local.
  bson_t ld = BSON_INITIALIZER;
  BSON_APPEND_INT32(&ld, "listDatabases", 1);
  BSON_APPEND_BOOL(&ld, "nameOnly", true);
  bson_t reply;
  if (!cl.Run("admin", &ld, &reply, &err)) {
    bson_destroy(&ld);
    bson_destroy(&reply);
    Log(Severity::kWarning, "INITSYNC", "listDatabases failed", "{\"error\":" + JsonQuote(err) + "}");
    return false;
  }
  bson_destroy(&ld);
  std::vector<std::string> dbs;
  bson_iter_t it, arr;
  if (bson_iter_init_find(&it, &reply, "databases") && bson_iter_recurse(&it, &arr)) {
    while (bson_iter_next(&arr)) {
      bson_iter_t n;
      if (bson_iter_recurse(&arr, &n) && bson_iter_find(&n, "name")) dbs.push_back(bson_iter_utf8(&n, nullptr));
    }
  }
  bson_destroy(&reply);
  for (const auto& db : dbs) {
    if (db == "local") continue;
    mongoc_database_t* mdb = mongoc_client_get_database(cl.c, db.c_str());
    mongoc_cursor_t* colls = mongoc_database_find_collections_with_opts(mdb, nullptr);
    const bson_t* info;
    std::vector<Doc> infos;
    while (mongoc_cursor_next(colls, &info)) infos.push_back(Doc::Copy(info));
    mongoc_cursor_destroy(colls);
    for (auto& ci : infos) {
      std::string name = Str(ci.get(), "name");
      std::string ns = db + "." + name;
      bson_t opts = BSON_INITIALIZER;
      bson_iter_t o, oi;
      if (bson_iter_init_find(&o, ci.get(), "options") && bson_iter_recurse(&o, &oi)) {
        while (bson_iter_next(&oi)) bson_append_value(&opts, bson_iter_key(&oi), -1, bson_iter_value(&oi));
      }
      if (bson_iter_init(&o, ci.get()) && bson_iter_find_descendant(&o, "info.uuid", &o)) {
        bson_append_value(&opts, "uuid", -1, bson_iter_value(&o));
      }
      {
        std::lock_guard<std::mutex> l(node_.write_mutex());
        storage::Txn txn(node_.engine());
        if (node_.catalog().Get(ns)) node_.catalog().Drop(txn, ns);
        node_.catalog().Create(txn, ns, &opts);
        txn.Commit();
      }
      bson_destroy(&opts);
      mongoc_collection_t* coll = mongoc_client_get_collection(cl.c, db.c_str(), name.c_str());
      // Indexes first (unique ones included), then the documents.
      mongoc_cursor_t* ic = mongoc_collection_find_indexes_with_opts(coll, nullptr);
      const bson_t* spec;
      std::vector<Doc> specs;
      while (mongoc_cursor_next(ic, &spec)) specs.push_back(Doc::Copy(spec));
      mongoc_cursor_destroy(ic);
      {
        std::lock_guard<std::mutex> l(node_.write_mutex());
        storage::Txn txn(node_.engine());
        for (auto& s : specs) {
          if (Str(s.get(), "name") == "_id_") continue;
          node_.catalog().CreateIndex(txn, ns, s.get());
        }
        txn.Commit();
      }
      bson_t filter = BSON_INITIALIZER;
      bson_t* fopts = BCON_NEW("batchSize", BCON_INT32(1000));
      mongoc_cursor_t* dc = mongoc_collection_find_with_opts(coll, &filter, fopts, nullptr);
      const bson_t* d;
      std::vector<Doc> batch;
      auto flush = [&] {
        if (batch.empty()) return;
        std::lock_guard<std::mutex> l(node_.write_mutex());
        storage::Txn txn(node_.engine());
        auto c = node_.catalog().Get(ns);
        for (auto& doc : batch) InsertRecord(txn, *c, doc.get());
        txn.Commit();
        batch.clear();
      };
      while (mongoc_cursor_next(dc, &d)) {
        batch.push_back(Doc::Copy(d));
        if (batch.size() >= 1000) flush();
      }
      flush();
      bson_error_t e;
      bool failed = mongoc_cursor_error(dc, &e);
      mongoc_cursor_destroy(dc);
      bson_destroy(fopts);
      bson_destroy(&filter);
      mongoc_collection_destroy(coll);
      if (failed) {
        mongoc_database_destroy(mdb);
        Log(Severity::kWarning, "INITSYNC", "cloning failed", "{\"ns\":" + JsonQuote(ns) + ",\"error\":" + JsonQuote(e.message) + "}");
        return false;
      }
    }
    mongoc_database_destroy(mdb);
  }
  // 3. Our oplog starts at the source's entry we began from; the fetcher continues after it.
  bson_iter_t ti;
  uint64_t ts = bson_iter_init_find(&ti, begin.get(), "ts") ? TsOf(&ti) : 0;
  {
    std::lock_guard<std::mutex> l(node_.write_mutex());
    storage::Txn txn(node_.engine());
    txn.SetCommitTimestamp(ts);
    InsertRecord(txn, *node_.catalog().Get(kOplogNs), begin.get(), static_cast<int64_t>(ts));
    txn.Commit();
  }
  SetLastApplied(ts);
  last_durable_ = ts;
  node_.engine().FlushJournal();
  Log(Severity::kInfo, "INITSYNC", "Initial sync done", "{\"beginTimestamp\":" + std::to_string(ts) + "}");
  return true;
}

bool Repl::FetchAndApply(const std::string& source) {
  Client cl(source, node_, 10000);
  std::string err;
  uint64_t from = last_applied_.load();
  bson_t* cmd = bson_new();
  BSON_APPEND_UTF8(cmd, "find", "oplog.rs");
  bson_t filter, ts;
  BSON_APPEND_DOCUMENT_BEGIN(cmd, "filter", &filter);
  BSON_APPEND_DOCUMENT_BEGIN(&filter, "ts", &ts);
  AppendTs(&ts, "$gte", from);
  bson_append_document_end(&filter, &ts);
  bson_append_document_end(cmd, &filter);
  BSON_APPEND_BOOL(cmd, "tailable", true);
  BSON_APPEND_BOOL(cmd, "awaitData", true);
  int64_t batch_size = ParameterInt(node_.options(), "oplogFetcherBatchSize", 5000);
  BSON_APPEND_INT64(cmd, "batchSize", batch_size);
  bson_t reply;
  bool ok = cl.Run("local", cmd, &reply, &err);
  bson_destroy(cmd);
  if (!ok) {
    bson_destroy(&reply);
    Log(Severity::kInfo, "REPL", "oplog fetch failed", "{\"syncSource\":" + JsonQuote(source) + ",\"error\":" + JsonQuote(err) + "}");
    return false;
  }
  bool first_batch = true;
  int64_t cursor_id = 0;
  while (!stopping_) {
    bson_iter_t it;
    int64_t id = 0;
    if (bson_iter_init(&it, &reply) && bson_iter_find_descendant(&it, "cursor.id", &it)) id = bson_iter_as_int64(&it);
    cursor_id = id;
    std::vector<Doc> entries;
    bson_iter_t b, arr;
    if (bson_iter_init(&b, &reply) &&
        (bson_iter_find_descendant(&b, first_batch ? "cursor.firstBatch" : "cursor.nextBatch", &b)) &&
        bson_iter_recurse(&b, &arr)) {
      while (bson_iter_next(&arr)) {
        uint32_t len;
        const uint8_t* data;
        bson_iter_document(&arr, &len, &data);
        entries.push_back(Doc::FromData(data, len));
      }
    }
    uint64_t commit = OpTimeTs(&reply, "$replData.lastOpCommitted.ts");
    bson_destroy(&reply);
    size_t start = 0;
    if (first_batch) {
      first_batch = false;
      bson_iter_t ti;
      uint64_t first_ts = (!entries.empty() && bson_iter_init_find(&ti, entries[0].get(), "ts")) ? TsOf(&ti) : 0;
      if (first_ts != from) {
        {
          std::lock_guard<std::mutex> l(mu_);
          state_ = MemberState::kRecovering;
        }
        Log(Severity::kError, "REPL",
            "Our last applied optime is not in the sync source's oplog: we are too stale or have "
            "diverged; this member needs a resync",
            "{\"lastApplied\":" + std::to_string(from) + ",\"sourceFirst\":" + std::to_string(first_ts) + "}");
        return false;
      }
      start = 1;
      {
        std::lock_guard<std::mutex> l(mu_);
        if (state_ == MemberState::kRecovering || state_ == MemberState::kStartup2) state_ = MemberState::kSecondary;
        sync_source_ = source;
      }
    }
    if (entries.size() > start) {
      uint64_t last = 0;
      {
        std::lock_guard<std::mutex> l(node_.write_mutex());
        auto oplog = node_.catalog().Get(kOplogNs);
        for (size_t i = start; i < entries.size(); i += 200) {
          storage::Txn txn(node_.engine());
          for (size_t j = i; j < entries.size() && j < i + 200; ++j) {
            bson_iter_t ti;
            uint64_t ets = bson_iter_init_find(&ti, entries[j].get(), "ts") ? TsOf(&ti) : 0;
            txn.SetCommitTimestamp(ets);
            node_.ApplyOplogEntry(txn, entries[j].get());
            InsertRecord(txn, *oplog, entries[j].get(), static_cast<int64_t>(ets));
            EnforceCap(txn, *oplog);
            last = ets;
          }
          txn.Commit();
        }
      }
      OnLocalWrite(last);
      node_.engine().FlushJournal();
      last_durable_ = last;
      node_.NotifyOplogWrite();
    }
    if (commit) {
      uint64_t cp = std::min(commit, last_applied_.load());
      if (cp > commit_point_.load()) {
        commit_point_ = cp;
        try {
          node_.engine().SetStableTimestamp(cp);
        } catch (...) {
        }
      }
    }
    // Report our position to the primary.
    int my_id = -1;
    int64_t version = 0;
    {
      std::lock_guard<std::mutex> l(mu_);
      if (config_ && self_ >= 0) {
        my_id = config_->members[self_].id;
        version = config_->version;
      }
    }
    bson_t up = BSON_INITIALIZER, arr2, o;
    BSON_APPEND_INT32(&up, "replSetUpdatePosition", 1);
    BSON_APPEND_ARRAY_BEGIN(&up, "optimes", &arr2);
    BSON_APPEND_DOCUMENT_BEGIN(&arr2, "0", &o);
    AppendOpTime(&o, "appliedOpTime", last_applied_.load(), term());
    AppendOpTime(&o, "durableOpTime", last_durable_.load(), term());
    BSON_APPEND_INT32(&o, "memberId", my_id);
    BSON_APPEND_INT64(&o, "cfgver", version);
    bson_append_document_end(&arr2, &o);
    bson_append_array_end(&up, &arr2);
    bson_t upr;
    cl.Run("admin", &up, &upr, &err);
    bson_destroy(&up);
    bson_destroy(&upr);
    if (cursor_id == 0) return true;
    if (PrimaryHost() != source) return true;
    bson_t gm = BSON_INITIALIZER;
    BSON_APPEND_INT64(&gm, "getMore", cursor_id);
    BSON_APPEND_UTF8(&gm, "collection", "oplog.rs");
    BSON_APPEND_INT64(&gm, "batchSize", batch_size);
    BSON_APPEND_INT64(&gm, "maxTimeMS", 1000);
    ok = cl.Run("local", &gm, &reply, &err);
    bson_destroy(&gm);
    if (!ok) {
      bson_destroy(&reply);
      Log(Severity::kInfo, "REPL", "oplog getMore failed", "{\"syncSource\":" + JsonQuote(source) + ",\"error\":" + JsonQuote(err) + "}");
      return false;
    }
  }
  return true;
}

void Repl::SyncLoop() {
  SetThreadName("OplogFetcher");
  while (!stopping_) {
    MemberState st;
    {
      std::unique_lock<std::mutex> l(mu_);
      cv_.wait_for(l, std::chrono::milliseconds(200), [&] { return stopping_.load(); });
      st = state_;
    }
    if (stopping_) break;
    if (st == MemberState::kPrimary || st == MemberState::kRemoved || st == MemberState::kStartup) continue;
    std::string src = PrimaryHost();
    if (src.empty() || src == SelfHost()) {
      std::lock_guard<std::mutex> l(mu_);
      sync_source_.clear();
      continue;
    }
    if (last_applied_.load() == 0) {
      {
        std::lock_guard<std::mutex> l(mu_);
        state_ = MemberState::kStartup2;
      }
      if (!InitialSync(src)) {
        std::this_thread::sleep_for(std::chrono::seconds(1));
        continue;
      }
    }
    if (!FetchAndApply(src)) {
      std::unique_lock<std::mutex> l(mu_);
      cv_.wait_for(l, std::chrono::milliseconds(500), [&] { return stopping_.load(); });
    }
  }
}

}  // namespace wtm
