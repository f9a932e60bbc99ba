// Kubernetes API client: typed resource paths, errors as clear Status
// messages, discovery, the Service status subresource and Leases.
// Every call blocks (bounded by its timeout): call it from a worker thread,
// never from the agent's event loop. Thread-safe (calls are serialized on
// one kept-alive connection).
#pragma once

#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>

#include "common/status.h"
#include "k8s/config.h"
#include "k8s/http.h"

namespace ferry::k8s {

// One API resource (what discovery lists under a group/version).
struct Resource {
  std::string group;    // "" for the core group
  std::string version;  // "v1"
  std::string plural;   // "services"
  std::string kind;     // "Service"
  bool namespaced = true;

  std::string apiVersion() const { return group.empty() ? version : group + "/" + version; }
  // "/api/v1" or "/apis/<group>/<version>"
  std::string groupVersionPath() const;
  // The collection, in one namespace or (ns empty) across all.
  std::string collectionPath(const std::string& ns = "") const;
  std::string objectPath(const std::string& ns, const std::string& name,
                         const std::string& subresource = "") const;
  // "services" / "endpointslices.discovery.k8s.io", as RBAC and kubectl name it.
  std::string id() const { return group.empty() ? plural : plural + "." + group; }
};

// The resources ferry uses.
namespace resources {
extern const Resource Services;        // v1
extern const Resource Endpoints;       // v1
extern const Resource Nodes;           // v1
extern const Resource Pods;            // v1
extern const Resource Namespaces;      // v1
extern const Resource EndpointSlices;  // discovery.k8s.io/v1
extern const Resource Leases;          // coordination.k8s.io/v1
extern const Resource IPAddressPools;  // metallb.io/v1beta1
extern const Resource ServiceCIDRs;    // networking.k8s.io/v1
}  // namespace resources

// The Status for a non-2xx answer: "<what>: <code> <reason>: <message>",
// the message being the apiserver's (a 403 names the user, verb, resource
// and namespace: `services is forbidden: User "x" cannot list resource
// "services" in API group "" at the cluster scope`), with a hint for 401.
Status apiError(const std::string& what, const HttpResponse& r, const std::string& origin = "");

// Outcome of a Lease call, so leader election can tell a lost race
// (Conflict, AlreadyExists) from a missing object and from a failure.
struct LeaseResult {
  enum Outcome { Ok, NotFound, Conflict, AlreadyExists, Failed };
  Outcome outcome = Failed;
  nlohmann::json lease;  // the Lease as stored (Ok)
  Status error;          // why (every outcome but Ok)
};

class Client {
 public:
  explicit Client(ClientConfig cfg);
  const ClientConfig& config() const { return cfg_; }

  // A raw request: transport errors are Status, any HTTP code is returned.
  Expected<HttpResponse> request(const HttpRequest& req);
  // GET/POST/PUT/PATCH returning the decoded body; non-2xx -> apiError.
  Expected<nlohmann::json> call(const std::string& method, const std::string& path,
                                const nlohmann::json* body = nullptr,
                                const std::string& contentType = "application/json");

  // Discovery: is the resource served? false on 404 of its group/version.
  Expected<bool> hasResource(const Resource& r);

  // PATCH services/<name>/status with a JSON merge patch {"status": status}
  // (what kubectl and controllers send); returns the stored Service.
  Expected<nlohmann::json> patchServiceStatus(const std::string& ns, const std::string& name,
                                              const nlohmann::json& status);

  // coordination.k8s.io/v1 Leases, for leader election.
  LeaseResult getLease(const std::string& ns, const std::string& name);
  LeaseResult createLease(const std::string& ns, const nlohmann::json& lease);
  // PUT conditional on lease.metadata.resourceVersion (Conflict if stale).
  LeaseResult updateLease(const std::string& ns, const nlohmann::json& lease);

 private:
  LeaseResult leaseCall(const std::string& what, const HttpRequest& req);
  ClientConfig cfg_;
  std::mutex mu_;
  HttpSession session_;
};

}  // namespace ferry::k8s
