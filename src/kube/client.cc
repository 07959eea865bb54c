#include "kube/client.h"

#include <curl/curl.h>
#include <yaml-cpp/yaml.h>

#include <chrono>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <sstream>
#include <thread>

#include "common/base64.h"

namespace pbm::kube {

namespace {

std::string ReadFile(const std::string& path, const std::string& what) {
  std::ifstream in(path, std::ios::binary);
  if (!in) Fail(ErrorKind::kInvalidArgument, "{}: cannot read {}", what, path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string Trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) s.pop_back();
  size_t i = 0;
  while (i < s.size() && (s[i] == ' ' || s[i] == '\n')) ++i;
  return s.substr(i);
}

// A kubeconfig value that is either inline base64 (`<field>-data`) or a file path.
std::string DataOrFile(const YAML::Node& n, const std::string& field, const std::string& dir,
                       const std::string& where) {
  if (n[field + "-data"]) {
    std::string out;
    if (!Base64Decode(n[field + "-data"].as<std::string>(), &out)) {
      Fail(ErrorKind::kInvalidArgument, "kubeconfig {}: {}-data is not valid base64", where, field);
    }
    return out;
  }
  if (n[field]) {
    std::filesystem::path p = n[field].as<std::string>();
    if (p.is_relative()) p = std::filesystem::path(dir) / p;
    return ReadFile(p.string(), "kubeconfig " + where + " " + field);
  }
  return "";
}

YAML::Node FindNamed(const YAML::Node& list, const std::string& name, const std::string& what,
                     const std::string& path) {
  if (list && list.IsSequence()) {
    for (const auto& e : list) {
      if (e["name"] && e["name"].as<std::string>() == name) return e;
    }
  }
  Fail(ErrorKind::kInvalidArgument, "kubeconfig {}: no {} named '{}'", path, what, name);
}

// Status objects carry the reason and a message; other bodies are reported as they are.
ApiError ErrorFrom(long code, const std::string& body, const std::string& what) {
  std::string reason = "Unknown", message;
  try {
    Json j = Json::parse(body);
    if (j.value("kind", "") == "Status") {
      reason = j.value("reason", reason);
      message = j.value("message", "");
    }
  } catch (const std::exception&) {
  }
  if (message.empty()) message = body.substr(0, 300);
  return ApiError(static_cast<int>(code), reason,
                  fmt::format("{}: {} ({} {})", what, message, code, reason));
}

size_t AppendBody(char* ptr, size_t size, size_t nmemb, void* userdata) {
  static_cast<std::string*>(userdata)->append(ptr, size * nmemb);
  return size * nmemb;
}

std::string Query(const ListOptions& o, bool first) {
  std::string q;
  auto add = [&](const std::string& k, const std::string& v) {
    if (v.empty()) return;
    char* enc = curl_easy_escape(nullptr, v.c_str(), static_cast<int>(v.size()));
    q += (q.empty() && first ? "?" : "&") + k + "=" + enc;
    curl_free(enc);
  };
  add("labelSelector", o.label_selector);
  add("fieldSelector", o.field_selector);
  return q;
}

struct CurlGlobal {
  CurlGlobal() { curl_global_init(CURL_GLOBAL_DEFAULT); }
};

}  // namespace

Config LoadKubeconfig(const std::string& path, const std::string& context) {
  YAML::Node root;
  try {
    root = YAML::LoadFile(path);
  } catch (const YAML::Exception& e) {
    Fail(ErrorKind::kInvalidArgument, "kubeconfig {}: {}", path, e.what());
  }
  std::string dir = std::filesystem::absolute(path).parent_path().string();
  std::string ctx_name = context;
  if (ctx_name.empty() && root["current-context"])
    ctx_name = root["current-context"].as<std::string>();
  if (ctx_name.empty()) {
    Fail(ErrorKind::kInvalidArgument, "kubeconfig {}: no current-context; pass a context", path);
  }
  try {
    YAML::Node ctx = FindNamed(root["contexts"], ctx_name, "context", path)["context"];
    Config c;
    if (ctx["namespace"]) c.ns = ctx["namespace"].as<std::string>();
    YAML::Node cluster =
        FindNamed(root["clusters"], ctx["cluster"].as<std::string>(""), "cluster", path)["cluster"];
    c.server = cluster["server"].as<std::string>("");
    if (c.server.empty())
      Fail(ErrorKind::kInvalidArgument, "kubeconfig {}: cluster has no server", path);
    c.ca_pem = DataOrFile(cluster, "certificate-authority", dir, path);
    c.insecure_skip_tls_verify = cluster["insecure-skip-tls-verify"].as<bool>(false);
    if (ctx["user"]) {
      YAML::Node user =
          FindNamed(root["users"], ctx["user"].as<std::string>(), "user", path)["user"];
      c.client_cert_pem = DataOrFile(user, "client-certificate", dir, path);
      c.client_key_pem = DataOrFile(user, "client-key", dir, path);
      c.token = user["token"].as<std::string>("");
      if (user["tokenFile"]) {
        std::filesystem::path p = user["tokenFile"].as<std::string>();
        if (p.is_relative()) p = std::filesystem::path(dir) / p;
        c.token_file = p.string();
      }
      if (user["exec"] || user["auth-provider"]) {
        Fail(ErrorKind::kInvalidArgument,
             "kubeconfig {}: user of context '{}' uses an exec or auth-provider plugin, which "
             "psmdb-operator does not run; use a token, tokenFile or client certificate",
             path, ctx_name);
      }
    }
    return c;
  } catch (const YAML::Exception& e) {
    Fail(ErrorKind::kInvalidArgument, "kubeconfig {}: {}", path, e.what());
  }
}

Config InClusterConfig(const std::string& sa_dir) {
  const char* host = std::getenv("KUBERNETES_SERVICE_HOST");
  const char* port = std::getenv("KUBERNETES_SERVICE_PORT");
  if (!host || !port || !*host || !*port) {
    Fail(ErrorKind::kInvalidArgument,
         "not running in a pod (KUBERNETES_SERVICE_HOST/PORT unset): pass --kubeconfig");
  }
  Config c;
  std::string h = host;
  if (h.find(':') != std::string::npos) h = "[" + h + "]";  // IPv6
  c.server = "https://" + h + ":" + port;
  c.token_file = sa_dir + "/token";
  c.ca_pem = ReadFile(sa_dir + "/ca.crt", "service account CA");
  std::error_code ec;
  if (std::filesystem::exists(sa_dir + "/namespace", ec)) {
    c.ns = Trim(ReadFile(sa_dir + "/namespace", "service account namespace"));
  }
  return c;
}

Config DefaultConfig(const std::string& kubeconfig) {
  if (!kubeconfig.empty()) return LoadKubeconfig(kubeconfig);
  if (const char* env = std::getenv("KUBECONFIG"); env && *env) {
    std::string first = env;
    first = first.substr(0, first.find(':'));
    return LoadKubeconfig(first);
  }
  if (const char* h = std::getenv("KUBERNETES_SERVICE_HOST"); h && *h) return InClusterConfig();
  if (const char* home = std::getenv("HOME")) {
    std::string p = std::string(home) + "/.kube/config";
    std::error_code ec;
    if (std::filesystem::exists(p, ec)) return LoadKubeconfig(p);
  }
  Fail(ErrorKind::kInvalidArgument,
       "no Kubernetes configuration: pass --kubeconfig, set KUBECONFIG, or run in a pod");
}

std::string Resource::Path(const std::string& ns, const std::string& name,
                           const std::string& subresource) const {
  std::string p = group.empty() ? "/api/" + version : "/apis/" + group + "/" + version;
  if (namespaced && !ns.empty()) p += "/namespaces/" + ns;
  p += "/" + plural;
  if (!name.empty()) p += "/" + name;
  if (!subresource.empty()) p += "/" + subresource;
  return p;
}

namespace resources {
const Resource kNamespaces{"", "v1", "namespaces", "Namespace", false};
const Resource kPods{"", "v1", "pods", "Pod"};
const Resource kServices{"", "v1", "services", "Service"};
const Resource kSecrets{"", "v1", "secrets", "Secret"};
const Resource kConfigMaps{"", "v1", "configmaps", "ConfigMap"};
const Resource kEvents{"", "v1", "events", "Event"};
const Resource kPersistentVolumeClaims{"", "v1", "persistentvolumeclaims", "PersistentVolumeClaim"};
const Resource kStatefulSets{"apps", "v1", "statefulsets", "StatefulSet"};
const Resource kLeases{"coordination.k8s.io", "v1", "leases", "Lease"};
}  // namespace resources

ApiError::ApiError(int code, std::string reason, const std::string& message)
    : Error(code == 404 ? ErrorKind::kNotFound
            : code == 409
                ? (reason == "AlreadyExists" ? ErrorKind::kAlreadyExists : ErrorKind::kConflict)
            : code == 400 || code == 422 ? ErrorKind::kInvalidArgument
            : code >= 500 || code == 429 ? ErrorKind::kUnavailable
                                         : ErrorKind::kIo,
            message),
      code_(code),
      reason_(std::move(reason)) {}

struct Client::Impl {
  std::mutex mu;  // one request at a time on `h` (its connection is reused)
  CURL* h = nullptr;
};

Client::Client(Config config) : cfg_(std::move(config)), impl_(std::make_unique<Impl>()) {
  static CurlGlobal global;
  while (!cfg_.server.empty() && cfg_.server.back() == '/') cfg_.server.pop_back();
  impl_->h = curl_easy_init();
}

Client::~Client() { curl_easy_cleanup(impl_->h); }

std::string Client::Token() const {
  if (!cfg_.token_file.empty()) return Trim(ReadFile(cfg_.token_file, "token file"));
  return cfg_.token;
}

namespace {

// The options every request shares: TLS material and authentication.
curl_slist* Prepare(CURL* h, const Config& cfg, const std::string& token, const std::string& url,
                    const std::string& accept, char* errbuf) {
  curl_easy_reset(h);
  curl_easy_setopt(h, CURLOPT_URL, url.c_str());
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
  curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, 10000L);
  if (!cfg.ca_pem.empty()) {
    curl_blob ca{const_cast<char*>(cfg.ca_pem.data()), cfg.ca_pem.size(), CURL_BLOB_COPY};
    curl_easy_setopt(h, CURLOPT_CAINFO_BLOB, &ca);
  }
  if (cfg.insecure_skip_tls_verify) {
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 0L);
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 0L);
  }
  if (!cfg.client_cert_pem.empty()) {
    curl_blob cert{const_cast<char*>(cfg.client_cert_pem.data()), cfg.client_cert_pem.size(),
                   CURL_BLOB_COPY};
    curl_blob key{const_cast<char*>(cfg.client_key_pem.data()), cfg.client_key_pem.size(),
                  CURL_BLOB_COPY};
    curl_easy_setopt(h, CURLOPT_SSLCERT_BLOB, &cert);
    curl_easy_setopt(h, CURLOPT_SSLCERTTYPE, "PEM");
    curl_easy_setopt(h, CURLOPT_SSLKEY_BLOB, &key);
    curl_easy_setopt(h, CURLOPT_SSLKEYTYPE, "PEM");
  }
  curl_slist* list = nullptr;
  list = curl_slist_append(list, ("Accept: " + accept).c_str());
  list = curl_slist_append(list, "User-Agent: psmdb-operator");
  if (!token.empty()) list = curl_slist_append(list, ("Authorization: Bearer " + token).c_str());
  return list;
}

}  // namespace

Client::Response Client::Do(const std::string& method, const std::string& path,
                            const std::string& body, const std::string& content_type) {
  std::string url = cfg_.server + path;
  std::string token = Token();
  // Transient failures (connection refused while the API server restarts, 429, 5xx) are tried
  // again a few times with a growing pause, as client-go does for idempotent reads.
  const int attempts = method == "GET" ? 5 : 3;
  for (int attempt = 1;; ++attempt) {
    Response resp;
    char errbuf[CURL_ERROR_SIZE] = {0};
    CURLcode rc;
    {
      std::lock_guard<std::mutex> l(impl_->mu);
      CURL* h = impl_->h;
      curl_slist* list = Prepare(h, cfg_, token, url, "application/json", errbuf);
      if (!content_type.empty())
        list = curl_slist_append(list, ("Content-Type: " + content_type).c_str());
      curl_easy_setopt(h, CURLOPT_HTTPHEADER, list);
      curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 60000L);
      curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, AppendBody);
      curl_easy_setopt(h, CURLOPT_WRITEDATA, &resp.body);
      if (method == "GET") {
        curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
      } else {
        curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method.c_str());
        if (method != "DELETE" || !body.empty()) {
          curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size()));
          curl_easy_setopt(h, CURLOPT_POSTFIELDS, body.c_str());
        }
      }
      rc = curl_easy_perform(h);
      curl_slist_free_all(list);
      if (rc == CURLE_OK) curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &resp.code);
    }
    bool transient = rc != CURLE_OK || resp.code == 429 || resp.code == 503 || resp.code == 502 ||
                     resp.code == 504;
    if (!transient || attempt >= attempts) {
      if (rc != CURLE_OK) {
        Fail(ErrorKind::kUnavailable, "Kubernetes API {} {}: {}", method, url,
             errbuf[0] ? errbuf : curl_easy_strerror(rc));
      }
      return resp;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(200 * attempt * attempt));
  }
}

Json Client::Expect(const Response& resp, const std::string& what) {
  if (resp.code < 200 || resp.code >= 300) throw ErrorFrom(resp.code, resp.body, what);
  try {
    return resp.body.empty() ? Json::object() : Json::parse(resp.body);
  } catch (const std::exception& e) {
    Fail(ErrorKind::kIo, "{}: the API server's answer is not JSON: {}", what, e.what());
  }
}

namespace {
std::string Describe(const Resource& r, const std::string& ns, const std::string& name) {
  std::string g = r.group.empty() ? r.plural : r.plural + "." + r.group;
  return ns.empty() || !r.namespaced ? fmt::format("{} {}", g, name)
                                     : fmt::format("{} {}/{}", g, ns, name);
}
}  // namespace

Json Client::Get(const Resource& r, const std::string& ns, const std::string& name) {
  return Expect(Do("GET", r.Path(ns, name), "", ""), "get " + Describe(r, ns, name));
}

std::optional<Json> Client::TryGet(const Resource& r, const std::string& ns,
                                   const std::string& name) {
  Response resp = Do("GET", r.Path(ns, name), "", "");
  if (resp.code == 404) return std::nullopt;
  return Expect(resp, "get " + Describe(r, ns, name));
}

Json Client::List(const Resource& r, const std::string& ns, const ListOptions& o) {
  return Expect(Do("GET", r.Path(ns) + Query(o, true), "", ""), "list " + Describe(r, ns, "*"));
}

Json Client::Create(const Resource& r, const std::string& ns, const Json& obj) {
  std::string name = obj.contains("metadata") ? obj["metadata"].value("name", "") : "";
  return Expect(Do("POST", r.Path(ns), obj.dump(), "application/json"),
                "create " + Describe(r, ns, name));
}

Json Client::Update(const Resource& r, const std::string& ns, const Json& obj) {
  std::string name = obj["metadata"].value("name", "");
  return Expect(Do("PUT", r.Path(ns, name), obj.dump(), "application/json"),
                "update " + Describe(r, ns, name));
}

Json Client::UpdateStatus(const Resource& r, const std::string& ns, const Json& obj) {
  std::string name = obj["metadata"].value("name", "");
  return Expect(Do("PUT", r.Path(ns, name, "status"), obj.dump(), "application/json"),
                "update status of " + Describe(r, ns, name));
}

Json Client::MergePatch(const Resource& r, const std::string& ns, const std::string& name,
                        const Json& patch, bool status) {
  return Expect(Do("PATCH", r.Path(ns, name, status ? "status" : ""), patch.dump(),
                   "application/merge-patch+json"),
                std::string(status ? "patch status of " : "patch ") + Describe(r, ns, name));
}

bool Client::Delete(const Resource& r, const std::string& ns, const std::string& name) {
  Response resp = Do("DELETE", r.Path(ns, name), "", "");
  if (resp.code == 404) return false;
  Expect(resp, "delete " + Describe(r, ns, name));
  return true;
}

namespace {

struct WatchState {
  const std::function<bool(const WatchEvent&)>* on_event;
  const std::atomic<bool>* stop;
  std::string buf;
  std::string last_rv;
  bool stopped_by_caller = false;
  std::optional<ApiError> expired;
  long http_code = 0;
  std::string error_body;  // a non-2xx answer's body
  CURL* h = nullptr;
};

size_t WatchWrite(char* ptr, size_t size, size_t nmemb, void* userdata) {
  auto* s = static_cast<WatchState*>(userdata);
  size_t n = size * nmemb;
  if (s->http_code == 0) curl_easy_getinfo(s->h, CURLINFO_RESPONSE_CODE, &s->http_code);
  if (s->http_code != 200) {
    s->error_body.append(ptr, n);
    return n;
  }
  s->buf.append(ptr, n);
  size_t pos;
  while ((pos = s->buf.find('\n')) != std::string::npos) {
    std::string line = s->buf.substr(0, pos);
    s->buf.erase(0, pos + 1);
    if (Trim(line).empty()) continue;
    Json j;
    try {
      j = Json::parse(line);
    } catch (const std::exception&) {
      continue;  // a torn line cannot happen with chunked JSON lines; ignore garbage
    }
    WatchEvent ev{j.value("type", ""), j.value("object", Json::object())};
    if (ev.type == "ERROR") {
      int code = ev.object.value("code", 500);
      s->expired = ApiError(code, ev.object.value("reason", "Unknown"),
                            "watch: " + ev.object.value("message", std::string("error event")));
      return 0;  // abort the transfer
    }
    if (ev.object.contains("metadata")) {
      s->last_rv = ev.object["metadata"].value("resourceVersion", s->last_rv);
    }
    if (!(*s->on_event)(ev)) {
      s->stopped_by_caller = true;
      return 0;
    }
  }
  return n;
}

int WatchProgress(void* userdata, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
  auto* s = static_cast<WatchState*>(userdata);
  if (s->stop && s->stop->load()) {
    s->stopped_by_caller = true;
    return 1;
  }
  return 0;
}

}  // namespace

std::string Client::Watch(const Resource& r, const std::string& ns,
                          const std::string& resource_version, int timeout_secs,
                          const std::function<bool(const WatchEvent&)>& on_event,
                          const std::atomic<bool>* stop, const ListOptions& o) {
  std::string path = r.Path(ns) + "?watch=true&allowWatchBookmarks=true&timeoutSeconds=" +
                     std::to_string(timeout_secs) + Query(o, false);
  if (!resource_version.empty()) path += "&resourceVersion=" + resource_version;
  std::string url = cfg_.server + path;
  // A watch holds its connection for minutes: it gets a handle of its own.
  CURL* h = curl_easy_init();
  char errbuf[CURL_ERROR_SIZE] = {0};
  curl_slist* list = Prepare(h, cfg_, Token(), url, "application/json", errbuf);
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, list);
  // The server ends the stream after timeoutSeconds; this is only a guard against a dead peer.
  curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, static_cast<long>(timeout_secs + 30) * 1000L);
  WatchState s{&on_event, stop, "", resource_version};
  s.h = h;
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, WatchWrite);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, &s);
  curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
  curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, WatchProgress);
  curl_easy_setopt(h, CURLOPT_XFERINFODATA, &s);
  CURLcode rc = curl_easy_perform(h);
  if (s.http_code == 0) curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &s.http_code);
  curl_slist_free_all(list);
  curl_easy_cleanup(h);
  std::string what = "watch " + Describe(r, ns, "*");
  if (s.expired) throw *s.expired;
  if (s.http_code != 0 && s.http_code != 200) throw ErrorFrom(s.http_code, s.error_body, what);
  if (rc != CURLE_OK && !s.stopped_by_caller && rc != CURLE_OPERATION_TIMEDOUT) {
    Fail(ErrorKind::kUnavailable, "{}: {}", what, errbuf[0] ? errbuf : curl_easy_strerror(rc));
  }
  return s.last_rv;
}

void Client::RecordEvent(const Json& involved, const std::string& type, const std::string& reason,
                         const std::string& message, const std::string& component) {
  try {
    const Json& md = involved.at("metadata");
    std::string ns = md.value("namespace", cfg_.ns);
    int64_t now = std::time(nullptr);
    Json ev = {
        {"apiVersion", "v1"},
        {"kind", "Event"},
        {"metadata", {{"generateName", md.value("name", "obj") + "."}, {"namespace", ns}}},
        {"involvedObject",
         {{"apiVersion", involved.value("apiVersion", "")},
          {"kind", involved.value("kind", "")},
          {"name", md.value("name", "")},
          {"namespace", ns},
          {"uid", md.value("uid", "")},
          {"resourceVersion", md.value("resourceVersion", "")}}},
        {"type", type},
        {"reason", reason},
        {"message", message},
        {"source", {{"component", component}}},
        {"firstTimestamp", FormatTime(now)},
        {"lastTimestamp", FormatTime(now)},
        {"count", 1},
        {"reportingComponent", component},
    };
    Create(resources::kEvents, ns, ev);
  } catch (const std::exception&) {
    // Events are advisory: a failure to record one never fails a reconcile.
  }
}

std::string FormatTime(int64_t unix_secs) {
  std::time_t t = static_cast<std::time_t>(unix_secs);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::string FormatMicroTime(int64_t unix_micros) {
  std::time_t t = static_cast<std::time_t>(unix_micros / 1000000);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm);
  return fmt::format("{}.{:06d}Z", buf, unix_micros % 1000000);
}

int64_t ParseTime(const std::string& s) {
  std::tm tm{};
  const char* end = strptime(s.c_str(), "%Y-%m-%dT%H:%M:%S", &tm);
  if (!end) return -1;
  if (*end == '.') {
    ++end;
    while (*end >= '0' && *end <= '9') ++end;
  }
  if (*end != 'Z' || end[1] != '\0') return -1;
  return static_cast<int64_t>(timegm(&tm));
}

}  // namespace pbm::kube
