// A Kubernetes REST client over libcurl: no maintained C++ client is packaged, so the few verbs
// an operator needs are written here, following the API conventions (Status errors,
// resourceVersion, watch streams, the status subresource).
#pragma once

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "common/error.h"

namespace pbm::kube {

using Json = nlohmann::json;

// Where the API server is and how to authenticate to it.
struct Config {
  std::string server;  // https://host:port (or http:// for tests)
  std::string ca_pem;  // PEM of the CA that signs the server certificate ("" = system CAs)
  std::string client_cert_pem, client_key_pem;
  std::string token;       // bearer token
  std::string token_file;  // re-read on every request (service-account tokens rotate)
  bool insecure_skip_tls_verify = false;
  std::string ns = "default";  // the context's namespace, or the pod's own
};

// The kubeconfig at `path` (its current context unless `context` is given): server, CA, client
// certificate and key, token or tokenFile, namespace; *-data fields and file paths (relative
// paths are relative to the kubeconfig's directory).
Config LoadKubeconfig(const std::string& path, const std::string& context = "");

// Inside a pod: KUBERNETES_SERVICE_HOST/PORT and the service account's token, CA and namespace
// under `sa_dir` (/var/run/secrets/kubernetes.io/serviceaccount).
Config InClusterConfig(const std::string& sa_dir = "/var/run/secrets/kubernetes.io/serviceaccount");

// The usual order: an explicit kubeconfig, $KUBECONFIG, in-cluster, ~/.kube/config.
Config DefaultConfig(const std::string& kubeconfig);

// A resource type: /api/v1 or /apis/<group>/<version>, its plural, and whether it is namespaced.
struct Resource {
  std::string group;  // "" = core
  std::string version;
  std::string plural;
  std::string kind;
  bool namespaced = true;

  std::string ApiVersion() const { return group.empty() ? version : group + "/" + version; }
  // The URL path of the collection (name "") or of one object, optionally a subresource.
  std::string Path(const std::string& ns, const std::string& name = "",
                   const std::string& subresource = "") const;
};

namespace resources {
extern const Resource kNamespaces, kPods, kServices, kSecrets, kConfigMaps, kEvents,
    kPersistentVolumeClaims, kStatefulSets, kLeases;
}  // namespace resources

// An error answered by the API server: its Status code, reason and message.
class ApiError : public Error {
 public:
  ApiError(int code, std::string reason, const std::string& message);
  int code() const { return code_; }
  const std::string& reason() const { return reason_; }

 private:
  int code_;
  std::string reason_;
};

struct ListOptions {
  std::string label_selector;
  std::string field_selector;
};

struct WatchEvent {
  std::string type;  // ADDED, MODIFIED, DELETED, BOOKMARK
  Json object;
};

class Client {
 public:
  explicit Client(Config config);
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  const Config& config() const { return cfg_; }

  Json Get(const Resource& r, const std::string& ns, const std::string& name);
  // nullopt on 404.
  std::optional<Json> TryGet(const Resource& r, const std::string& ns, const std::string& name);
  // The List object (items and metadata.resourceVersion).
  Json List(const Resource& r, const std::string& ns, const ListOptions& o = {});
  Json Create(const Resource& r, const std::string& ns, const Json& obj);
  // PUT: optimistic concurrency through obj.metadata.resourceVersion (409 Conflict if stale).
  Json Update(const Resource& r, const std::string& ns, const Json& obj);
  Json UpdateStatus(const Resource& r, const std::string& ns, const Json& obj);
  // application/merge-patch+json (RFC 7386), on the object or on its status subresource.
  Json MergePatch(const Resource& r, const std::string& ns, const std::string& name,
                  const Json& patch, bool status = false);
  // false when it was already gone.
  bool Delete(const Resource& r, const std::string& ns, const std::string& name);

  // Streams watch events from `resource_version` to `on_event` until it returns false, `stop`
  // becomes true, the server closes the stream or `timeout_secs` pass. Returns the last
  // resourceVersion seen (to resume from). A too-old version throws ApiError with code 410, as
  // does an ERROR event carrying a 410 Status: the caller lists again.
  std::string Watch(const Resource& r, const std::string& ns, const std::string& resource_version,
                    int timeout_secs, const std::function<bool(const WatchEvent&)>& on_event,
                    const std::atomic<bool>* stop = nullptr, const ListOptions& o = {});

  // A core/v1 Event about `involved` (Normal or Warning). Never throws: events are advisory.
  void RecordEvent(const Json& involved, const std::string& type, const std::string& reason,
                   const std::string& message, const std::string& component);

 private:
  struct Response {
    long code = 0;
    std::string body;
  };
  Response Do(const std::string& method, const std::string& path, const std::string& body,
              const std::string& content_type);
  Json Expect(const Response& resp, const std::string& what);
  std::string Token() const;

  Config cfg_;
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Runs `fn` again (up to `attempts` times) while it throws a 409 Conflict: the caller re-reads
// the object inside `fn` each time, as client-go's RetryOnConflict.
template <typename F>
auto RetryOnConflict(F&& fn, int attempts = 8) -> decltype(fn()) {
  for (int i = 1;; ++i) {
    try {
      return fn();
    } catch (const ApiError& e) {
      if (e.code() != 409 || e.reason() == "AlreadyExists" || i >= attempts) throw;
    }
  }
}

// RFC 3339 with seconds ("2026-11-24T10:00:00Z") and MicroTime ("...T10:00:00.000000Z").
std::string FormatTime(int64_t unix_secs);
std::string FormatMicroTime(int64_t unix_micros);
// Parses either form; -1 when it is not a timestamp.
int64_t ParseTime(const std::string& s);

}  // namespace pbm::kube
