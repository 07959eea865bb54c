#include "server/auth.h"

#include <algorithm>
#include <memory>
#include <mutex>
#include <set>
#include <stdexcept>
#include <vector>

#include "auth/scram.h"
#include "common/error.h"
#include "common/log.h"
#include "server/catalog.h"
#include "server/node.h"
#include "server/repl.h"

namespace wtm {
namespace {

using auth::Mechanism;
using RoleName = std::pair<std::string, std::string>;  // {role, db}

constexpr int kIdlMissingField = 40414;
constexpr int kUserAlreadyExists = 51003;
constexpr int kRoleAlreadyExists = 51002;
constexpr const char* kAuthFailed = "Authentication failed.";

// ---- per-connection state ----

struct Session {
  std::optional<std::pair<std::string, std::string>> user;  // {user, db}
  std::unique_ptr<auth::ScramServer> conv;                  // a conversation in progress
  std::string conv_db;
  bool conv_speculative = false;
};

Session& SessionOf(const wire::Connection& conn) {
  if (!conn.session) conn.session = std::make_shared<Session>();
  return *std::static_pointer_cast<Session>(conn.session);
}

// ---- small BSON helpers ----

std::string Str(const bson_t* b, const char* key) {
  bson_iter_t it;
  if (bson_iter_init_find(&it, b, key) && BSON_ITER_HOLDS_UTF8(&it)) {
    return bson_iter_utf8(&it, nullptr);
  }
  return "";
}

bool Has(const bson_t* b, const char* key) {
  bson_iter_t it;
  return bson_iter_init_find(&it, b, key);
}

std::optional<Doc> SubDoc(const bson_t* b, const char* key) {
  bson_iter_t it;
  if (!bson_iter_init_find(&it, b, key)) return std::nullopt;
  uint32_t len;
  const uint8_t* data;
  if (BSON_ITER_HOLDS_DOCUMENT(&it)) {
    bson_iter_document(&it, &len, &data);
  } else if (BSON_ITER_HOLDS_ARRAY(&it)) {
    bson_iter_array(&it, &len, &data);
  } else {
    return std::nullopt;
  }
  return Doc::FromData(data, len);
}

void MissingField(const std::string& cmd, const std::string& field) {
  throw MongoError(kIdlMissingField,
                   "BSON field '" + cmd + "." + field + "' is missing but a required field");
}

Doc Ok(bson_t* b) {
  BSON_APPEND_DOUBLE(b, "ok", 1.0);
  return Doc(b);
}

bson_value_t StringValue(const std::string& s) {
  bson_value_t v;
  v.value_type = BSON_TYPE_UTF8;
  v.value.v_utf8.str = const_cast<char*>(s.c_str());
  v.value.v_utf8.len = static_cast<uint32_t>(s.size());
  return v;
}

bool IsLocalhost(const std::string& remote) {
  return remote.rfind("127.", 0) == 0 || remote.rfind("[::1]", 0) == 0;
}

// ---- built-in roles ----

bool IsBuiltinRole(const std::string& role, const std::string& db) {
  static const std::set<std::string> kAnyDb = {"read",    "readWrite", "dbAdmin",
                                               "dbOwner", "userAdmin", "enableSharding"};
  static const std::set<std::string> kAdminOnly = {"readAnyDatabase",
                                                   "readWriteAnyDatabase",
                                                   "userAdminAnyDatabase",
                                                   "dbAdminAnyDatabase",
                                                   "clusterAdmin",
                                                   "clusterManager",
                                                   "clusterMonitor",
                                                   "hostManager",
                                                   "backup",
                                                   "restore",
                                                   "root",
                                                   "__system",
                                                   "__queryableBackup",
                                                   "directShardOperations"};
  if (kAnyDb.count(role)) return true;
  return db == "admin" && kAdminOnly.count(role);
}

bool IsBuiltinRoleName(const std::string& role) { return IsBuiltinRole(role, "admin"); }

// ---- reading users and roles ----

CollectionPtr Coll(Node& node, const char* ns) { return node.catalog().Get(ns); }

std::optional<std::pair<int64_t, Doc>> FindDoc(storage::Txn& txn, const CollectionPtr& c,
                                               const std::string& id) {
  if (!c) return std::nullopt;
  bson_value_t v = StringValue(id);
  return FindById(txn, *c, v);
}

std::optional<Doc> ReadUser(Node& node, const std::string& db, const std::string& user) {
  auto c = Coll(node, kUsersNs);
  if (!c) return std::nullopt;
  storage::Txn txn(node.engine());
  auto f = FindDoc(txn, c, db + "." + user);
  if (!f) return std::nullopt;
  return std::move(f->second);
}

bool RoleExists(Node& node, storage::Txn& txn, const RoleName& r) {
  if (IsBuiltinRole(r.first, r.second)) return true;
  return FindDoc(txn, Coll(node, kRolesNs), r.second + "." + r.first).has_value();
}

// Whether admin.system.users or admin.system.roles holds anything (ends the localhost exception).
bool AnyUserOrRole(Node& node) {
  for (const char* ns : {kUsersNs, kRolesNs}) {
    auto c = Coll(node, ns);
    if (!c) continue;
    storage::Txn txn(node.engine());
    RecordCursor rc(txn, *c, INT64_MIN);
    int64_t rid;
    bson_t doc;
    if (rc.Next(&rid, &doc)) return true;
  }
  return false;
}

std::vector<Doc> AllDocs(Node& node, const char* ns) {
  std::vector<Doc> out;
  auto c = Coll(node, ns);
  if (!c) return out;
  storage::Txn txn(node.engine());
  RecordCursor rc(txn, *c, INT64_MIN);
  int64_t rid;
  bson_t doc;
  while (rc.Next(&rid, &doc)) out.push_back(Doc::Copy(&doc));
  return out;
}

std::optional<auth::Credential> CredentialFromDoc(const bson_t* user, Mechanism m) {
  bson_iter_t it, cred;
  std::string path = std::string("credentials.") + auth::MechanismName(m);
  if (!bson_iter_init(&it, user) || !bson_iter_find_descendant(&it, path.c_str(), &cred) ||
      !BSON_ITER_HOLDS_DOCUMENT(&cred)) {
    return std::nullopt;
  }
  uint32_t len;
  const uint8_t* data;
  bson_iter_document(&cred, &len, &data);
  bson_t d;
  bson_init_static(&d, data, len);
  auth::Credential c;
  bson_iter_t f;
  if (bson_iter_init_find(&f, &d, "iterationCount") && BSON_ITER_HOLDS_NUMBER(&f)) {
    c.iteration_count = static_cast<int>(bson_iter_as_int64(&f));
  }
  c.salt = Str(&d, "salt");
  c.stored_key = Str(&d, "storedKey");
  c.server_key = Str(&d, "serverKey");
  return c;
}

// __system@local's credentials, derived from the first key of the key file (computed once: the
// salt is random, as in mongod, so every conversation of this process sees the same one).
std::optional<auth::Credential> InternalCredential(Node& node, Mechanism m) {
  const auto& keys = node.internal_keys();
  if (keys.empty()) return std::nullopt;
  static std::mutex mu;
  static std::map<Mechanism, auth::Credential> cache;
  std::lock_guard<std::mutex> l(mu);
  auto it = cache.find(m);
  if (it == cache.end()) {
    it = cache.emplace(m, auth::NewCredential(m, kInternalUser, keys.front())).first;
  }
  return it->second;
}

std::optional<auth::Credential> LookupCredential(Node& node, Mechanism m, const std::string& db,
                                                 const std::string& user) {
  if (db == kInternalDb && user == kInternalUser) return InternalCredential(node, m);
  auto d = ReadUser(node, db, user);
  if (!d) return std::nullopt;
  return CredentialFromDoc(d->get(), m);
}

// The mechanisms a user has credentials for, in mongod's order.
std::vector<std::string> MechanismsOf(Node& node, const std::string& db, const std::string& user) {
  std::vector<std::string> out;
  for (Mechanism m : {Mechanism::kScramSha1, Mechanism::kScramSha256}) {
    if (LookupCredential(node, m, db, user)) out.push_back(auth::MechanismName(m));
  }
  return out;
}

std::vector<RoleName> RolesOfDoc(const bson_t* doc) {
  std::vector<RoleName> out;
  bson_iter_t it, arr;
  if (!bson_iter_init_find(&it, doc, "roles") || !BSON_ITER_HOLDS_ARRAY(&it)) return out;
  bson_iter_recurse(&it, &arr);
  while (bson_iter_next(&arr)) {
    if (!BSON_ITER_HOLDS_DOCUMENT(&arr)) continue;
    uint32_t len;
    const uint8_t* data;
    bson_iter_document(&arr, &len, &data);
    bson_t r;
    bson_init_static(&r, data, len);
    out.emplace_back(Str(&r, "role"), Str(&r, "db"));
  }
  return out;
}

void AppendRoles(bson_t* b, const char* key, const std::vector<RoleName>& roles) {
  bson_t arr;
  bson_append_array_begin(b, key, -1, &arr);
  for (size_t i = 0; i < roles.size(); ++i) {
    bson_t r;
    std::string k = std::to_string(i);
    bson_append_document_begin(&arr, k.c_str(), -1, &r);
    BSON_APPEND_UTF8(&r, "role", roles[i].first.c_str());
    BSON_APPEND_UTF8(&r, "db", roles[i].second.c_str());
    bson_append_document_end(&arr, &r);
  }
  bson_append_array_end(b, &arr);
}

// Parses a roles array of a command: "name" (a role of `dflt_db`) or {role, db}.
std::vector<RoleName> ParseRoles(const bson_t* cmd, const std::string& cmd_name, const char* field,
                                 const std::string& dflt_db, bool required) {
  bson_iter_t it, arr;
  if (!bson_iter_init_find(&it, cmd, field)) {
    if (required) MissingField(cmd_name, field);
    return {};
  }
  if (!BSON_ITER_HOLDS_ARRAY(&it)) {
    throw MongoError(ErrorCode::kTypeMismatch, "BSON field '" + cmd_name + "." + field +
                                                   "' is the wrong type, expected type 'array'");
  }
  std::vector<RoleName> out;
  bson_iter_recurse(&it, &arr);
  while (bson_iter_next(&arr)) {
    RoleName r;
    if (BSON_ITER_HOLDS_UTF8(&arr)) {
      r = {bson_iter_utf8(&arr, nullptr), dflt_db};
    } else if (BSON_ITER_HOLDS_DOCUMENT(&arr)) {
      uint32_t len;
      const uint8_t* data;
      bson_iter_document(&arr, &len, &data);
      bson_t d;
      bson_init_static(&d, data, len);
      r = {Str(&d, "role"), Str(&d, "db")};
      if (r.first.empty() || r.second.empty()) {
        throw MongoError(ErrorCode::kBadValue,
                         "Role names must be either strings or objects with 'role' and 'db' "
                         "string fields");
      }
    } else {
      throw MongoError(ErrorCode::kBadValue, "Role names must be either strings or objects");
    }
    if (std::find(out.begin(), out.end(), r) == out.end()) out.push_back(r);
  }
  return out;
}

void CheckRolesExist(Node& node, storage::Txn& txn, const std::vector<RoleName>& roles) {
  for (const auto& r : roles) {
    if (!RoleExists(node, txn, r)) {
      throw MongoError(ErrorCode::kRoleNotFound,
                       "Could not find role: " + r.first + "@" + r.second);
    }
  }
}

// ---- writes ----

void CheckCanWrite(Node& node) {
  if (node.read_only()) {
    throw MongoError(ErrorCode::kIllegalOperation,
                     "Operation not permitted in read-only mode (recoverFromOplogAsStandalone)");
  }
  if (node.repl().enabled() && !node.repl().IsWritablePrimary()) {
    throw MongoError(ErrorCode::kNotWritablePrimary, "not primary");
  }
}

// Waits for the command's write concern; a timeout becomes writeConcernError, as mongod.
void ApplyWriteConcern(Node& node, const bson_t* cmd, uint64_t ts, bson_t* reply) {
  if (ts == 0) return;
  try {
    node.repl().WaitForWriteConcern(ts, cmd);
  } catch (const MongoError& e) {
    bson_t wce;
    BSON_APPEND_DOCUMENT_BEGIN(reply, "writeConcernError", &wce);
    BSON_APPEND_INT32(&wce, "code", e.numeric());
    BSON_APPEND_UTF8(&wce, "codeName", CodeName(e.code()));
    BSON_APPEND_UTF8(&wce, "errmsg", e.what());
    bson_append_document_end(reply, &wce);
  }
}

// The collection (created with mongod's unique index on {<name_field>: 1, db: 1} when missing).
CollectionPtr AuthCollection(WriteUnit& wu, Node& node, const char* ns, const char* name_field) {
  if (auto c = node.catalog().Get(ns)) return c;
  auto c = wu.GetOrCreate(ns);
  std::string index_name = std::string(name_field) + "_1_db_1";
  bson_t spec = BSON_INITIALIZER, key;
  BSON_APPEND_INT32(&spec, "v", 2);
  BSON_APPEND_DOCUMENT_BEGIN(&spec, "key", &key);
  BSON_APPEND_INT32(&key, name_field, 1);
  BSON_APPEND_INT32(&key, "db", 1);
  bson_append_document_end(&spec, &key);
  BSON_APPEND_UTF8(&spec, "name", index_name.c_str());
  BSON_APPEND_BOOL(&spec, "unique", true);
  c = node.catalog().CreateIndex(wu.txn(), ns, &spec);
  bson_destroy(&spec);
  bson_t o = BSON_INITIALIZER;
  BSON_APPEND_UTF8(&o, "createIndexes", CollOf(ns).c_str());
  bson_iter_t s;
  bson_iter_init(&s, c->indexes.back().spec.get());
  while (bson_iter_next(&s)) bson_append_value(&o, bson_iter_key(&s), -1, bson_iter_value(&s));
  wu.LogCommand("admin", &o, c->uuid);
  bson_destroy(&o);
  return c;
}

std::string NewUuid() {
  std::string u = auth::RandomBytes(16);
  u[6] = static_cast<char>((u[6] & 0x0f) | 0x40);
  u[8] = static_cast<char>((u[8] & 0x3f) | 0x80);
  return u;
}

// ---- credentials of a command ----

std::vector<Mechanism> ParseMechanisms(const bson_t* cmd) {
  bson_iter_t it, arr;
  if (!bson_iter_init_find(&it, cmd, "mechanisms")) {
    return {Mechanism::kScramSha1, Mechanism::kScramSha256};
  }
  if (!BSON_ITER_HOLDS_ARRAY(&it)) {
    throw MongoError(ErrorCode::kTypeMismatch, "mechanisms field must be an array of strings");
  }
  std::vector<Mechanism> out;
  bson_iter_recurse(&it, &arr);
  while (bson_iter_next(&arr)) {
    std::string name = BSON_ITER_HOLDS_UTF8(&arr) ? bson_iter_utf8(&arr, nullptr) : "";
    auto m = auth::ParseMechanism(name);
    if (!m) throw MongoError(ErrorCode::kBadValue, "Unknown auth mechanism '" + name + "'");
    if (std::find(out.begin(), out.end(), *m) == out.end()) out.push_back(*m);
  }
  if (out.empty()) throw MongoError(ErrorCode::kBadValue, "mechanisms field must not be empty");
  std::sort(out.begin(), out.end());
  return out;
}

// {SCRAM-SHA-1: {...}, SCRAM-SHA-256: {...}} for a cleartext (or, digestPassword: false,
// pre-digested SCRAM-SHA-1) password.
void AppendCredentials(bson_t* b, const std::string& user, const std::string& pwd,
                       const std::vector<Mechanism>& mechs, bool digest) {
  bson_t creds;
  BSON_APPEND_DOCUMENT_BEGIN(b, "credentials", &creds);
  for (Mechanism m : mechs) {
    auth::Credential c;
    try {
      if (m == Mechanism::kScramSha1 && !digest) {
        c = auth::MakeCredential(m, pwd, auth::RandomBytes(auth::SaltLength(m)),
                                 auth::kDefaultIterationsSha1);
      } else {
        c = auth::NewCredential(m, user, pwd);
      }
    } catch (const std::invalid_argument& e) {
      throw MongoError(ErrorCode::kBadValue, e.what());
    }
    bson_t d;
    BSON_APPEND_DOCUMENT_BEGIN(&creds, auth::MechanismName(m), &d);
    BSON_APPEND_INT32(&d, "iterationCount", c.iteration_count);
    BSON_APPEND_UTF8(&d, "salt", c.salt.c_str());
    BSON_APPEND_UTF8(&d, "storedKey", c.stored_key.c_str());
    BSON_APPEND_UTF8(&d, "serverKey", c.server_key.c_str());
    bson_append_document_end(&creds, &d);
  }
  bson_append_document_end(b, &creds);
}

// The password of createUser/updateUser; nullopt when absent. `digest`: digestPassword.
std::optional<std::string> ParsePassword(const bson_t* cmd, const std::string& db,
                                         const std::vector<Mechanism>& mechs, bool* digest) {
  bson_iter_t it;
  *digest = true;
  if (bson_iter_init_find(&it, cmd, "digestPassword")) *digest = bson_iter_as_bool(&it);
  if (!bson_iter_init_find(&it, cmd, "pwd")) return std::nullopt;
  if (db == "$external") {
    throw MongoError(ErrorCode::kBadValue,
                     "Cannot set the password for users defined on the '$external' database");
  }
  if (!BSON_ITER_HOLDS_UTF8(&it)) {
    throw MongoError(ErrorCode::kTypeMismatch,
                     "BSON field 'pwd' is the wrong type, expected type 'string'");
  }
  std::string pwd = bson_iter_utf8(&it, nullptr);
  if (pwd.empty()) throw MongoError(ErrorCode::kBadValue, "User passwords must not be empty");
  if (!*digest && std::find(mechs.begin(), mechs.end(), Mechanism::kScramSha256) != mechs.end()) {
    throw MongoError(ErrorCode::kBadValue, "Use of SCRAM-SHA-256 requires undigested passwords");
  }
  return pwd;
}

std::string UserArg(const bson_t* cmd, const char* name) {
  std::string user = Str(cmd, name);
  if (user.empty()) {
    throw MongoError(ErrorCode::kBadValue, std::string(name) + " must be a non-empty string");
  }
  return user;
}

void CheckUserDb(const std::string& db) {
  if (db == "local") {
    throw MongoError(ErrorCode::kBadValue, "Cannot create users in the local database");
  }
}

// ---- SASL ----

// The payload of saslStart/saslContinue: BinData, or a string holding base64.
std::string PayloadOf(const bson_t* cmd, const std::string& cmd_name, bool* as_b64) {
  bson_iter_t it;
  if (!bson_iter_init_find(&it, cmd, "payload")) MissingField(cmd_name, "payload");
  if (BSON_ITER_HOLDS_BINARY(&it)) {
    bson_subtype_t st;
    uint32_t len;
    const uint8_t* data;
    bson_iter_binary(&it, &st, &len, &data);
    *as_b64 = false;
    return std::string(reinterpret_cast<const char*>(data), len);
  }
  if (BSON_ITER_HOLDS_UTF8(&it)) {
    std::string out;
    if (!auth::Base64Decode(bson_iter_utf8(&it, nullptr), &out)) {
      throw MongoError(ErrorCode::kBadValue, "Invalid base64 in SASL payload");
    }
    *as_b64 = true;
    return out;
  }
  throw MongoError(ErrorCode::kTypeMismatch, "BSON field '" + cmd_name +
                                                 ".payload' is the wrong type, expected BinData or "
                                                 "string");
}

std::string UserString(const std::pair<std::string, std::string>& u) {
  return u.first + "@" + u.second;
}

void LogAuth(bool ok, const Session& s, const std::string& user, const wire::Connection& conn,
             const std::string& error) {
  std::string attr =
      "{\"mechanism\":" + JsonQuote(s.conv ? auth::MechanismName(s.conv->mechanism()) : "") +
      ",\"speculative\":" + (s.conv_speculative ? "true" : "false") +
      ",\"principalName\":" + JsonQuote(user) +
      ",\"authenticationDatabase\":" + JsonQuote(s.conv_db) +
      ",\"remote\":" + JsonQuote(conn.remote) + ",\"extraInfo\":{}";
  if (!ok) attr += ",\"error\":" + JsonQuote(error);
  attr += "}";
  Log(Severity::kInfo, "ACCESS", ok ? "Authentication succeeded" : "Authentication failed", attr);
}

// mongod lets a connection authenticate once: again as the same user, never as another.
void AuthorizeUser(Session& s, const std::string& user, const std::string& db) {
  std::pair<std::string, std::string> u{user, db};
  if (s.user) {
    if (*s.user == u) return;
    std::string prev = UserString(*s.user);
    if (s.user->second != db) {
      throw MongoError(5626701,
                       "Each client connection may only be authenticated once. Previously "
                       "authenticated as: " +
                           prev);
    }
    throw MongoError(5626702,
                     "Client has attempted to authenticate on multiple databases.Already "
                     "authenticated as: " +
                         prev);
  }
  s.user = u;
}

// Runs one step of the session's conversation; returns {conversationId, done, payload}. The
// payload goes back in the form this step's came (base64 string or BinData), as mongod does.
Doc SaslStep(Node& node, const wire::Connection& conn, Session& s, const std::string& payload,
             bool b64) {
  std::string out;
  try {
    out = s.conv->Step(payload);
  } catch (const std::exception& e) {
    LogAuth(false, s, s.conv->user(), conn, e.what());
    s.conv.reset();
    throw MongoError(ErrorCode::kAuthenticationFailed, kAuthFailed);
  }
  bool done = s.conv->done();
  bson_t* r = bson_new();
  BSON_APPEND_INT32(r, "conversationId", 1);
  BSON_APPEND_BOOL(r, "done", done);
  if (b64) {
    BSON_APPEND_UTF8(r, "payload", auth::Base64Encode(out).c_str());
  } else {
    BSON_APPEND_BINARY(r, "payload", BSON_SUBTYPE_BINARY,
                       reinterpret_cast<const uint8_t*>(out.data()),
                       static_cast<uint32_t>(out.size()));
  }
  if (done) {
    std::string user = s.conv->user();
    try {
      AuthorizeUser(s, user, s.conv_db);
    } catch (...) {
      bson_destroy(r);
      s.conv.reset();
      throw;
    }
    LogAuth(true, s, user, conn, "");
    s.conv.reset();
  }
  return Doc(r);
}

Doc StartConversation(Node& node, const wire::Connection& conn, Session& s, const std::string& db,
                      const bson_t* cmd, bool speculative) {
  bson_iter_t it;
  if (!bson_iter_init_find(&it, cmd, "mechanism")) MissingField("saslStart", "mechanism");
  std::string mech_name = BSON_ITER_HOLDS_UTF8(&it) ? bson_iter_utf8(&it, nullptr) : "";
  auto mech = auth::ParseMechanism(mech_name);
  if (!mech || db == "$external") {
    throw MongoError(ErrorCode::kBadValue, "Unsupported mechanism '" + mech_name +
                                               "' on authentication database '" + db + "'");
  }
  bool b64 = false;
  std::string payload = PayloadOf(cmd, "saslStart", &b64);
  bool skip_empty = false;
  if (auto opts = SubDoc(cmd, "options")) {
    bson_iter_t o;
    if (bson_iter_init_find(&o, opts->get(), "skipEmptyExchange")) {
      if (!BSON_ITER_HOLDS_BOOL(&o)) {
        throw MongoError(ErrorCode::kBadValue, "skipEmptyExchange must be boolean");
      }
      skip_empty = bson_iter_bool(&o);
    }
  }
  Node* np = &node;
  Mechanism m = *mech;
  s.conv = std::make_unique<auth::ScramServer>(
      m, [np, m, db](const std::string& user) { return LookupCredential(*np, m, db, user); });
  s.conv->set_skip_empty_exchange(skip_empty);
  s.conv_db = db;
  s.conv_speculative = speculative;
  return SaslStep(node, conn, s, payload, b64);
}

Doc CmdSaslStart(Node& node, const wire::Request& req, const bson_t* cmd,
                 const wire::Connection& conn) {
  Session& s = SessionOf(conn);
  Doc step = StartConversation(node, conn, s, req.db, cmd, false);
  bson_t* r = bson_copy(step.get());
  return Ok(r);
}

Doc CmdSaslContinue(Node& node, const wire::Request& req, const bson_t* cmd,
                    const wire::Connection& conn) {
  Session& s = SessionOf(conn);
  if (!s.conv) throw MongoError(ErrorCode::kProtocolError, "No SASL session state found");
  bson_iter_t it;
  if (!bson_iter_init_find(&it, cmd, "conversationId")) {
    MissingField("saslContinue", "conversationId");
  }
  if (!BSON_ITER_HOLDS_NUMBER(&it) || bson_iter_as_int64(&it) != 1) {
    throw MongoError(ErrorCode::kProtocolError, "sasl: Mismatched conversation id");
  }
  if (req.db != s.conv_db) {
    std::string from = s.conv_db;
    s.conv.reset();
    throw MongoError(ErrorCode::kProtocolError,
                     "Attempt to switch database target during SASL authentication from " + from +
                         " to " + req.db);
  }
  bool b64 = false;
  std::string payload = PayloadOf(cmd, "saslContinue", &b64);
  Doc step = SaslStep(node, conn, s, payload, b64);
  return Ok(bson_copy(step.get()));
}

Doc CmdLogout(Node&, const wire::Request& req, const bson_t*, const wire::Connection& conn) {
  Session& s = SessionOf(conn);
  if (s.user && s.user->second == req.db) s.user.reset();
  return Ok(bson_new());
}

std::vector<RoleName> RolesOfUser(Node& node, const std::pair<std::string, std::string>& u) {
  if (u.first == kInternalUser && u.second == kInternalDb) return {{"__system", "admin"}};
  auto d = ReadUser(node, u.second, u.first);
  return d ? RolesOfDoc(d->get()) : std::vector<RoleName>{};
}

Doc CmdConnectionStatus(Node& node, const wire::Request&, const bson_t* cmd,
                        const wire::Connection& conn) {
  Session& s = SessionOf(conn);
  bson_t* r = bson_new();
  bson_t info, users;
  BSON_APPEND_DOCUMENT_BEGIN(r, "authInfo", &info);
  BSON_APPEND_ARRAY_BEGIN(&info, "authenticatedUsers", &users);
  std::vector<RoleName> roles;
  if (s.user) {
    bson_t u;
    BSON_APPEND_DOCUMENT_BEGIN(&users, "0", &u);
    BSON_APPEND_UTF8(&u, "user", s.user->first.c_str());
    BSON_APPEND_UTF8(&u, "db", s.user->second.c_str());
    bson_append_document_end(&users, &u);
    roles = RolesOfUser(node, *s.user);
  }
  bson_append_array_end(&info, &users);
  AppendRoles(&info, "authenticatedUserRoles", roles);
  bson_iter_t it;
  if (bson_iter_init_find(&it, cmd, "showPrivileges") && bson_iter_as_bool(&it)) {
    bson_t privs;
    BSON_APPEND_ARRAY_BEGIN(&info, "authenticatedUserPrivileges", &privs);
    bson_append_array_end(&info, &privs);
  }
  bson_append_document_end(r, &info);
  return Ok(r);
}

// ---- user management ----

Doc CmdCreateUser(Node& node, const wire::Request& req, const bson_t* cmd,
                  const wire::Connection&) {
  const std::string& db = req.db;
  std::string user = UserArg(cmd, "createUser");
  CheckUserDb(db);
  std::vector<RoleName> roles = ParseRoles(cmd, "createUser", "roles", db, true);
  std::vector<Mechanism> mechs = ParseMechanisms(cmd);
  bool digest = true;
  std::optional<std::string> pwd = ParsePassword(cmd, db, mechs, &digest);
  if (!pwd && db != "$external") {
    throw MongoError(ErrorCode::kBadValue,
                     "Must provide a 'pwd' field for all user documents, except those with "
                     "'$external' as the user's source db");
  }
  auto custom = SubDoc(cmd, "customData");
  CheckCanWrite(node);

  // Build the document before taking the write lock: PBKDF2 takes a while.
  std::string id = db + "." + user;
  std::string uuid = NewUuid();
  bson_t* d = bson_new();
  BSON_APPEND_UTF8(d, "_id", id.c_str());
  BSON_APPEND_BINARY(d, "userId", BSON_SUBTYPE_UUID, reinterpret_cast<const uint8_t*>(uuid.data()),
                     16);
  BSON_APPEND_UTF8(d, "user", user.c_str());
  BSON_APPEND_UTF8(d, "db", db.c_str());
  if (pwd) AppendCredentials(d, user, *pwd, mechs, digest);
  if (custom) BSON_APPEND_DOCUMENT(d, "customData", custom->get());
  AppendRoles(d, "roles", roles);
  Doc doc(d);

  WriteUnit wu(node);
  CheckCanWrite(node);
  CheckRolesExist(node, wu.txn(), roles);
  auto c = AuthCollection(wu, node, kUsersNs, "user");
  if (FindDoc(wu.txn(), c, id)) {
    throw MongoError(kUserAlreadyExists, "User \"" + user + "@" + db + "\" already exists");
  }
  wu.Insert(*c, doc.get());
  wu.Commit();
  Log(Severity::kInfo, "ACCESS", "Created user", "{\"user\":" + JsonQuote(user + "@" + db) + "}");
  bson_t* r = bson_new();
  ApplyWriteConcern(node, cmd, wu.last_ts(), r);
  return Ok(r);
}

[[noreturn]] void UserNotFound(const std::string& user, const std::string& db) {
  throw MongoError(ErrorCode::kUserNotFound,
                   "Could not find user \"" + user + "\" for db \"" + db + "\"");
}

// Rewrites one user document: `edit` gets the old document and appends the new one's fields.
Doc RewriteUser(Node& node, const bson_t* cmd, const std::string& db, const std::string& user,
                const std::function<void(const bson_t* old_doc, bson_t* out)>& edit,
                const std::vector<RoleName>& roles_to_check) {
  CheckCanWrite(node);
  WriteUnit wu(node);
  CheckCanWrite(node);
  auto c = Coll(node, kUsersNs);
  auto found = FindDoc(wu.txn(), c, db + "." + user);
  if (!found) UserNotFound(user, db);
  CheckRolesExist(node, wu.txn(), roles_to_check);
  bson_t* nd = bson_new();
  edit(found->second.get(), nd);
  Doc new_doc(nd);
  wu.Update(*c, found->first, found->second.get(), new_doc.get(), true);
  wu.Commit();
  bson_t* r = bson_new();
  ApplyWriteConcern(node, cmd, wu.last_ts(), r);
  return Ok(r);
}

// Copies `old_doc`, replacing the fields in `replace` (their values come from `with`, or the
// field is dropped when `with` lacks it), keeping mongod's field order.
void CopyReplacing(const bson_t* old_doc, bson_t* out, const std::set<std::string>& replace,
                   const std::function<void(const std::string& field, bson_t* out)>& with) {
  std::set<std::string> done;
  bson_iter_t it;
  bson_iter_init(&it, old_doc);
  while (bson_iter_next(&it)) {
    std::string k = bson_iter_key(&it);
    if (replace.count(k)) {
      with(k, out);
      done.insert(k);
    } else {
      bson_append_value(out, k.c_str(), -1, bson_iter_value(&it));
    }
  }
  for (const auto& k : replace) {
    if (!done.count(k)) with(k, out);
  }
}

Doc CmdUpdateUser(Node& node, const wire::Request& req, const bson_t* cmd,
                  const wire::Connection&) {
  const std::string& db = req.db;
  std::string user = UserArg(cmd, "updateUser");
  bool has_roles = Has(cmd, "roles");
  bool has_mechs = Has(cmd, "mechanisms");
  auto custom = SubDoc(cmd, "customData");
  std::vector<RoleName> roles =
      has_roles ? ParseRoles(cmd, "updateUser", "roles", db, false) : std::vector<RoleName>{};
  std::vector<Mechanism> mechs = has_mechs ? ParseMechanisms(cmd) : std::vector<Mechanism>{};
  bool digest = true;
  std::optional<std::string> pwd = ParsePassword(
      cmd, db, has_mechs ? mechs : std::vector<Mechanism>{Mechanism::kScramSha1}, &digest);
  if (!pwd && !has_roles && !custom && !has_mechs) {
    throw MongoError(ErrorCode::kBadValue,
                     "Must specify at least one field to update in updateUser");
  }
  auto existing = ReadUser(node, db, user);
  if (!existing) UserNotFound(user, db);
  std::vector<Mechanism> had;
  for (Mechanism m : {Mechanism::kScramSha1, Mechanism::kScramSha256}) {
    if (CredentialFromDoc(existing->get(), m)) had.push_back(m);
  }
  if (has_mechs && !pwd) {
    for (Mechanism m : mechs) {
      if (std::find(had.begin(), had.end(), m) == had.end()) {
        throw MongoError(ErrorCode::kBadValue,
                         "mechanisms field must be a subset of previously set mechanisms");
      }
    }
  }
  if (!has_mechs)
    mechs =
        had.empty() ? std::vector<Mechanism>{Mechanism::kScramSha1, Mechanism::kScramSha256} : had;
  if (pwd && !digest &&
      std::find(mechs.begin(), mechs.end(), Mechanism::kScramSha256) != mechs.end()) {
    throw MongoError(ErrorCode::kBadValue, "Use of SCRAM-SHA-256 requires undigested passwords");
  }
  // New credentials are computed outside the write lock.
  Doc creds;
  if (pwd) {
    bson_t* b = bson_new();
    AppendCredentials(b, user, *pwd, mechs, digest);
    creds = Doc(b);
  }
  std::set<std::string> replace;
  if (pwd || has_mechs) replace.insert("credentials");
  if (has_roles) replace.insert("roles");
  if (custom) replace.insert("customData");
  return RewriteUser(
      node, cmd, db, user,
      [&](const bson_t* old_doc, bson_t* out) {
        CopyReplacing(old_doc, out, replace, [&](const std::string& f, bson_t* o) {
          if (f == "roles") {
            AppendRoles(o, "roles", roles);
          } else if (f == "customData") {
            BSON_APPEND_DOCUMENT(o, "customData", custom->get());
          } else if (f == "credentials" && pwd) {
            bson_iter_t it;
            bson_iter_init_find(&it, creds.get(), "credentials");
            bson_append_value(o, "credentials", -1, bson_iter_value(&it));
          } else if (f == "credentials") {
            // Only a subset of the mechanisms: drop the others' credentials.
            bson_t c;
            BSON_APPEND_DOCUMENT_BEGIN(o, "credentials", &c);
            for (Mechanism m : mechs) {
              bson_iter_t it;
              std::string path = std::string("credentials.") + auth::MechanismName(m);
              if (bson_iter_init(&it, old_doc) &&
                  bson_iter_find_descendant(&it, path.c_str(), &it)) {
                bson_append_value(&c, auth::MechanismName(m), -1, bson_iter_value(&it));
              }
            }
            bson_append_document_end(o, &c);
          }
        });
      },
      roles);
}

Doc ChangeRoles(Node& node, const wire::Request& req, const bson_t* cmd, const char* name,
                bool grant) {
  const std::string& db = req.db;
  std::string user = UserArg(cmd, name);
  std::vector<RoleName> roles = ParseRoles(cmd, name, "roles", db, true);
  if (roles.empty()) {
    throw MongoError(ErrorCode::kBadValue,
                     std::string(name) + " command requires a non-empty \"roles\" array");
  }
  return RewriteUser(
      node, cmd, db, user,
      [&](const bson_t* old_doc, bson_t* out) {
        std::vector<RoleName> now = RolesOfDoc(old_doc);
        for (const auto& r : roles) {
          auto pos = std::find(now.begin(), now.end(), r);
          if (grant && pos == now.end()) now.push_back(r);
          if (!grant && pos != now.end()) now.erase(pos);
        }
        CopyReplacing(old_doc, out, {"roles"},
                      [&](const std::string&, bson_t* o) { AppendRoles(o, "roles", now); });
      },
      grant ? roles : std::vector<RoleName>{});
}

Doc CmdGrantRolesToUser(Node& node, const wire::Request& req, const bson_t* cmd,
                        const wire::Connection&) {
  return ChangeRoles(node, req, cmd, "grantRolesToUser", true);
}

Doc CmdRevokeRolesFromUser(Node& node, const wire::Request& req, const bson_t* cmd,
                           const wire::Connection&) {
  return ChangeRoles(node, req, cmd, "revokeRolesFromUser", false);
}

// Deletes the documents of `ns` whose _id is `id`, or (id empty) whose db field is `db`.
int DeleteAuthDocs(Node& node, const bson_t* cmd, const char* ns, const std::string& id,
                   const std::string& db, bson_t* reply) {
  CheckCanWrite(node);
  WriteUnit wu(node);
  CheckCanWrite(node);
  auto c = Coll(node, ns);
  int n = 0;
  if (c) {
    std::vector<std::pair<int64_t, Doc>> victims;
    if (!id.empty()) {
      if (auto f = FindDoc(wu.txn(), c, id)) victims.push_back(std::move(*f));
    } else {
      RecordCursor rc(wu.txn(), *c, INT64_MIN);
      int64_t rid;
      bson_t doc;
      while (rc.Next(&rid, &doc)) {
        if (Str(&doc, "db") == db) victims.emplace_back(rid, Doc::Copy(&doc));
      }
    }
    for (auto& [rid, doc] : victims) {
      wu.Delete(*c, rid, doc.get());
      ++n;
    }
  }
  wu.Commit();
  ApplyWriteConcern(node, cmd, wu.last_ts(), reply);
  return n;
}

Doc CmdDropUser(Node& node, const wire::Request& req, const bson_t* cmd, const wire::Connection&) {
  std::string user = UserArg(cmd, "dropUser");
  bson_t* r = bson_new();
  if (DeleteAuthDocs(node, cmd, kUsersNs, req.db + "." + user, "", r) == 0) {
    bson_destroy(r);
    throw MongoError(ErrorCode::kUserNotFound, "User '" + user + "@" + req.db + "' not found");
  }
  return Ok(r);
}

Doc CmdDropAllUsersFromDatabase(Node& node, const wire::Request& req, const bson_t* cmd,
                                const wire::Connection&) {
  bson_t* r = bson_new();
  int n = DeleteAuthDocs(node, cmd, kUsersNs, "", req.db, r);
  BSON_APPEND_INT32(r, "n", n);
  return Ok(r);
}

// The {user, db} pairs a usersInfo / rolesInfo argument names; nullopt means "all of `db`"
// (value 1), and `all_dbs` is set for {forAllDBs: true}.
std::optional<std::vector<std::pair<std::string, std::string>>> ParseNames(const bson_t* cmd,
                                                                           const char* cmd_name,
                                                                           const char* name_field,
                                                                           const std::string& db,
                                                                           bool* all_dbs) {
  *all_dbs = false;
  bson_iter_t it;
  bson_iter_init_find(&it, cmd, cmd_name);
  auto one = [&](bson_iter_t* e) -> std::pair<std::string, std::string> {
    if (BSON_ITER_HOLDS_UTF8(e)) return {bson_iter_utf8(e, nullptr), db};
    if (BSON_ITER_HOLDS_DOCUMENT(e)) {
      uint32_t len;
      const uint8_t* data;
      bson_iter_document(e, &len, &data);
      bson_t d;
      bson_init_static(&d, data, len);
      std::string n = Str(&d, name_field), ndb = Str(&d, "db");
      if (!n.empty() && !ndb.empty()) return {n, ndb};
    }
    throw MongoError(ErrorCode::kBadValue, std::string(cmd_name) + " must be 1, a name, {" +
                                               name_field + ": ..., db: ...} or an array of those");
  };
  if (BSON_ITER_HOLDS_NUMBER(&it)) return std::nullopt;
  if (BSON_ITER_HOLDS_DOCUMENT(&it)) {
    uint32_t len;
    const uint8_t* data;
    bson_iter_document(&it, &len, &data);
    bson_t d;
    bson_init_static(&d, data, len);
    bson_iter_t f;
    if (bson_iter_init_find(&f, &d, "forAllDBs")) {
      *all_dbs = bson_iter_as_bool(&f);
      if (*all_dbs) return std::nullopt;
    }
  }
  std::vector<std::pair<std::string, std::string>> out;
  if (BSON_ITER_HOLDS_ARRAY(&it)) {
    bson_iter_t a;
    bson_iter_recurse(&it, &a);
    while (bson_iter_next(&a)) out.push_back(one(&a));
  } else {
    out.push_back(one(&it));
  }
  return out;
}

Doc CmdUsersInfo(Node& node, const wire::Request& req, const bson_t* cmd, const wire::Connection&) {
  bool all_dbs = false;
  auto names = ParseNames(cmd, "usersInfo", "user", req.db, &all_dbs);
  bson_iter_t it;
  bool show_creds = bson_iter_init_find(&it, cmd, "showCredentials") && bson_iter_as_bool(&it);
  bool show_custom = !(bson_iter_init_find(&it, cmd, "showCustomData") && !bson_iter_as_bool(&it));
  std::vector<Doc> users;
  if (names) {
    for (const auto& [u, db] : *names) {
      if (auto d = ReadUser(node, db, u)) users.push_back(std::move(*d));
    }
  } else {
    for (Doc& d : AllDocs(node, kUsersNs)) {
      if (all_dbs || Str(d.get(), "db") == req.db) users.push_back(std::move(d));
    }
    std::sort(users.begin(), users.end(), [](const Doc& a, const Doc& b) {
      return std::make_pair(Str(a.get(), "db"), Str(a.get(), "user")) <
             std::make_pair(Str(b.get(), "db"), Str(b.get(), "user"));
    });
  }
  bson_t* r = bson_new();
  bson_t arr;
  BSON_APPEND_ARRAY_BEGIN(r, "users", &arr);
  for (size_t i = 0; i < users.size(); ++i) {
    const bson_t* u = users[i].get();
    bson_t d;
    std::string k = std::to_string(i);
    bson_append_document_begin(&arr, k.c_str(), -1, &d);
    bson_iter_t f;
    bson_iter_init(&f, u);
    while (bson_iter_next(&f)) {
      std::string key = bson_iter_key(&f);
      if (key == "credentials" && !show_creds) continue;
      if (key == "customData" && !show_custom) continue;
      bson_append_value(&d, key.c_str(), -1, bson_iter_value(&f));
    }
    bson_t mechs;
    BSON_APPEND_ARRAY_BEGIN(&d, "mechanisms", &mechs);
    int n = 0;
    for (Mechanism m : {Mechanism::kScramSha1, Mechanism::kScramSha256}) {
      if (CredentialFromDoc(u, m)) {
        std::string idx = std::to_string(n++);
        BSON_APPEND_UTF8(&mechs, idx.c_str(), auth::MechanismName(m));
      }
    }
    bson_append_array_end(&d, &mechs);
    bson_append_document_end(&arr, &d);
  }
  bson_append_array_end(r, &arr);
  return Ok(r);
}

// ---- roles ----

Doc CmdCreateRole(Node& node, const wire::Request& req, const bson_t* cmd,
                  const wire::Connection&) {
  const std::string& db = req.db;
  std::string role = UserArg(cmd, "createRole");
  if (IsBuiltinRoleName(role)) {
    throw MongoError(ErrorCode::kBadValue,
                     "Cannot create roles with the same name as a built-in role");
  }
  auto privileges = SubDoc(cmd, "privileges");
  if (!privileges) MissingField("createRole", "privileges");
  std::vector<RoleName> roles = ParseRoles(cmd, "createRole", "roles", db, true);
  auto restrictions = SubDoc(cmd, "authenticationRestrictions");
  CheckCanWrite(node);
  WriteUnit wu(node);
  CheckCanWrite(node);
  CheckRolesExist(node, wu.txn(), roles);
  auto c = AuthCollection(wu, node, kRolesNs, "role");
  std::string id = db + "." + role;
  if (FindDoc(wu.txn(), c, id)) {
    throw MongoError(kRoleAlreadyExists, "Role \"" + role + "@" + db + "\" already exists");
  }
  bson_t* d = bson_new();
  BSON_APPEND_UTF8(d, "_id", id.c_str());
  BSON_APPEND_UTF8(d, "role", role.c_str());
  BSON_APPEND_UTF8(d, "db", db.c_str());
  BSON_APPEND_ARRAY(d, "privileges", privileges->get());
  AppendRoles(d, "roles", roles);
  if (restrictions) BSON_APPEND_ARRAY(d, "authenticationRestrictions", restrictions->get());
  Doc doc(d);
  wu.Insert(*c, doc.get());
  wu.Commit();
  bson_t* r = bson_new();
  ApplyWriteConcern(node, cmd, wu.last_ts(), r);
  return Ok(r);
}

Doc CmdUpdateRole(Node& node, const wire::Request& req, const bson_t* cmd,
                  const wire::Connection&) {
  const std::string& db = req.db;
  std::string role = UserArg(cmd, "updateRole");
  auto privileges = SubDoc(cmd, "privileges");
  bool has_roles = Has(cmd, "roles");
  std::vector<RoleName> roles =
      has_roles ? ParseRoles(cmd, "updateRole", "roles", db, false) : std::vector<RoleName>{};
  if (!privileges && !has_roles) {
    throw MongoError(ErrorCode::kBadValue,
                     "Must specify at least one field to update in updateRole");
  }
  CheckCanWrite(node);
  WriteUnit wu(node);
  CheckCanWrite(node);
  auto c = Coll(node, kRolesNs);
  auto found = FindDoc(wu.txn(), c, db + "." + role);
  if (!found) throw MongoError(ErrorCode::kRoleNotFound, "Role " + role + "@" + db + " not found");
  CheckRolesExist(node, wu.txn(), roles);
  std::set<std::string> replace;
  if (privileges) replace.insert("privileges");
  if (has_roles) replace.insert("roles");
  bson_t* nd = bson_new();
  CopyReplacing(found->second.get(), nd, replace, [&](const std::string& f, bson_t* o) {
    if (f == "privileges") BSON_APPEND_ARRAY(o, "privileges", privileges->get());
    if (f == "roles") AppendRoles(o, "roles", roles);
  });
  Doc new_doc(nd);
  wu.Update(*c, found->first, found->second.get(), new_doc.get(), true);
  wu.Commit();
  bson_t* r = bson_new();
  ApplyWriteConcern(node, cmd, wu.last_ts(), r);
  return Ok(r);
}

Doc CmdDropRole(Node& node, const wire::Request& req, const bson_t* cmd, const wire::Connection&) {
  std::string role = UserArg(cmd, "dropRole");
  bson_t* r = bson_new();
  if (DeleteAuthDocs(node, cmd, kRolesNs, req.db + "." + role, "", r) == 0) {
    bson_destroy(r);
    throw MongoError(ErrorCode::kRoleNotFound, "Role " + role + "@" + req.db + " not found");
  }
  return Ok(r);
}

Doc CmdRolesInfo(Node& node, const wire::Request& req, const bson_t* cmd, const wire::Connection&) {
  bool all_dbs = false;
  auto names = ParseNames(cmd, "rolesInfo", "role", req.db, &all_dbs);
  bson_iter_t it;
  bool show_privs = bson_iter_init_find(&it, cmd, "showPrivileges") && bson_iter_as_bool(&it);
  bool show_builtin = bson_iter_init_find(&it, cmd, "showBuiltinRoles") && bson_iter_as_bool(&it);
  std::vector<Doc> custom = AllDocs(node, kRolesNs);
  bson_t* r = bson_new();
  bson_t arr;
  BSON_APPEND_ARRAY_BEGIN(r, "roles", &arr);
  int n = 0;
  auto emit = [&](const std::string& role, const std::string& db, const bson_t* doc) {
    bson_t d;
    std::string k = std::to_string(n++);
    bson_append_document_begin(&arr, k.c_str(), -1, &d);
    BSON_APPEND_UTF8(&d, "role", role.c_str());
    BSON_APPEND_UTF8(&d, "db", db.c_str());
    BSON_APPEND_BOOL(&d, "isBuiltin", doc == nullptr);
    std::vector<RoleName> roles = doc ? RolesOfDoc(doc) : std::vector<RoleName>{};
    AppendRoles(&d, "roles", roles);
    AppendRoles(&d, "inheritedRoles", roles);
    if (show_privs) {
      bson_iter_t p;
      if (doc && bson_iter_init_find(&p, doc, "privileges")) {
        bson_append_value(&d, "privileges", -1, bson_iter_value(&p));
      } else {
        bson_t empty;
        BSON_APPEND_ARRAY_BEGIN(&d, "privileges", &empty);
        bson_append_array_end(&d, &empty);
      }
    }
    bson_append_document_end(&arr, &d);
  };
  if (names) {
    for (const auto& [role, db] : *names) {
      if (IsBuiltinRole(role, db)) {
        emit(role, db, nullptr);
        continue;
      }
      for (const Doc& d : custom) {
        if (Str(d.get(), "role") == role && Str(d.get(), "db") == db) emit(role, db, d.get());
      }
    }
  } else {
    for (const Doc& d : custom) {
      if (all_dbs || Str(d.get(), "db") == req.db) {
        emit(Str(d.get(), "role"), Str(d.get(), "db"), d.get());
      }
    }
    if (show_builtin) {
      for (const char* b : {"read", "readWrite", "dbAdmin", "dbOwner", "userAdmin"}) {
        emit(b, req.db, nullptr);
      }
    }
  }
  bson_append_array_end(r, &arr);
  return Ok(r);
}

// ---- enforcement ----

// Commands mongod runs for clients that have not authenticated (requiresAuth() false).
bool RequiresAuth(const std::string& name) {
  static const std::set<std::string> kOpen = {
      "hello",        "isMaster",  "ismaster",     "ping",      "buildInfo",
      "buildinfo",    "saslStart", "saslContinue", "logout",    "connectionStatus",
      "authenticate", "getnonce",  "listCommands", "whatsmyuri"};
  return !kOpen.count(name);
}

// mongod's command text in "not authorized" errors, passwords snipped.
std::string CommandForLog(const bson_t* cmd) {
  bson_t* copy = bson_new();
  bson_iter_t it;
  bson_iter_init(&it, cmd);
  while (bson_iter_next(&it)) {
    std::string k = bson_iter_key(&it);
    if (k == "pwd") {
      BSON_APPEND_UTF8(copy, "pwd", "xxx");
    } else if (k != "$db" && k != "lsid" && k != "$clusterTime" && k != "$readPreference") {
      bson_append_value(copy, k.c_str(), -1, bson_iter_value(&it));
    }
  }
  Doc d(copy);
  return d.ToJson();
}

// What the localhost exception lets an unauthenticated loopback client do before any user
// exists (mongod's default privileges then: createUser and grantRole on admin, createUser on
// $external, replSetConfigure and replSetGetStatus on the cluster).
bool AllowedByLocalhostException(const wire::Request& req, const std::string& name) {
  if (name == "replSetInitiate" || name == "replSetReconfig" || name == "replSetGetStatus") {
    return true;
  }
  if (name != "createUser") return false;
  if (req.db != "admin" && req.db != "$external") return false;
  bson_iter_t it, arr;
  if (bson_iter_init_find(&it, req.body.get(), "roles") && BSON_ITER_HOLDS_ARRAY(&it)) {
    bson_iter_recurse(&it, &arr);
    while (bson_iter_next(&arr)) {
      std::string db = req.db;
      if (BSON_ITER_HOLDS_DOCUMENT(&arr)) {
        uint32_t len;
        const uint8_t* data;
        bson_iter_document(&arr, &len, &data);
        bson_t d;
        bson_init_static(&d, data, len);
        db = Str(&d, "db");
      }
      if (db != "admin") return false;  // grantRole is granted on admin only
    }
  }
  return true;
}

}  // namespace

const std::map<std::string, AuthHandler>& AuthCommands() {
  static const std::map<std::string, AuthHandler> h = {
      {"saslStart", CmdSaslStart},
      {"saslContinue", CmdSaslContinue},
      {"logout", CmdLogout},
      {"connectionStatus", CmdConnectionStatus},
      {"createUser", CmdCreateUser},
      {"updateUser", CmdUpdateUser},
      {"dropUser", CmdDropUser},
      {"dropAllUsersFromDatabase", CmdDropAllUsersFromDatabase},
      {"usersInfo", CmdUsersInfo},
      {"grantRolesToUser", CmdGrantRolesToUser},
      {"revokeRolesFromUser", CmdRevokeRolesFromUser},
      {"createRole", CmdCreateRole},
      {"updateRole", CmdUpdateRole},
      {"dropRole", CmdDropRole},
      {"rolesInfo", CmdRolesInfo},
  };
  return h;
}

void AppendHelloAuthFields(Node& node, const wire::Connection& conn, const bson_t* cmd,
                           bson_t* reply) {
  bson_iter_t it;
  if (bson_iter_init_find(&it, cmd, "saslSupportedMechs") && BSON_ITER_HOLDS_UTF8(&it)) {
    std::string name = bson_iter_utf8(&it, nullptr);
    size_t dot = name.find('.');
    if (dot == std::string::npos) {
      throw MongoError(ErrorCode::kBadValue,
                       "UserName must contain a '.' separated database.user pair");
    }
    std::string db = name.substr(0, dot), user = name.substr(dot + 1);
    bool exists = (db == kInternalDb && user == kInternalUser)
                      ? !node.internal_keys().empty()
                      : ReadUser(node, db, user).has_value();
    if (exists) {
      bson_t arr;
      BSON_APPEND_ARRAY_BEGIN(reply, "saslSupportedMechs", &arr);
      int n = 0;
      for (const std::string& m : MechanismsOf(node, db, user)) {
        std::string k = std::to_string(n++);
        BSON_APPEND_UTF8(&arr, k.c_str(), m.c_str());
      }
      bson_append_array_end(reply, &arr);
    }
  }
  if (bson_iter_init_find(&it, cmd, "speculativeAuthenticate") && BSON_ITER_HOLDS_DOCUMENT(&it)) {
    uint32_t len;
    const uint8_t* data;
    bson_iter_document(&it, &len, &data);
    bson_t spec;
    bson_init_static(&spec, data, len);
    std::string db = Str(&spec, "db");
    if (!Has(&spec, "saslStart") || db.empty()) return;  // X509 or malformed: as if absent
    try {
      Doc step = StartConversation(node, conn, SessionOf(conn), db, &spec, true);
      BSON_APPEND_DOCUMENT(reply, "speculativeAuthenticate", step.get());
    } catch (const std::exception&) {
      // mongod treats a failed speculative step as if none had been sent.
    }
  }
}

void CheckAuthorized(Node& node, const wire::Connection& conn, const wire::Request& req,
                     const std::string& name) {
  if (!node.options().auth_enabled() || !RequiresAuth(name)) return;
  Session& s = SessionOf(conn);
  if (s.user && s.user->first == kInternalUser && s.user->second == kInternalDb) return;
  // As mongod, a user dropped (or dropped on the primary and replicated) since it logged in is
  // no longer authenticated on the connections that used it.
  if (s.user && !ReadUser(node, s.user->second, s.user->first)) {
    Log(Severity::kInfo, "ACCESS", "Removed deleted user from session cache of user information",
        "{\"user\":" + JsonQuote(UserString(*s.user)) + "}");
    s.user.reset();
  }
  if (s.user) return;  // any authenticated user may run anything (roles are not enforced)
  if (IsLocalhost(conn.remote) && !AnyUserOrRole(node)) {
    if (AllowedByLocalhostException(req, name)) return;
    throw MongoError(
        ErrorCode::kUnauthorized,
        "not authorized on " + req.db + " to execute command " + CommandForLog(req.body.get()));
  }
  throw MongoError(ErrorCode::kUnauthorized, "Command " + name + " requires authentication");
}

std::optional<std::pair<std::string, std::string>> AuthenticatedUser(const wire::Connection& conn) {
  if (!conn.session) return std::nullopt;
  return SessionOf(conn).user;
}

}  // namespace wtm
