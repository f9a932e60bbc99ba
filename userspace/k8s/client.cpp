#include "k8s/client.h"

namespace ferry::k8s {

namespace resources {
const Resource Services{"", "v1", "services", "Service", true};
const Resource Endpoints{"", "v1", "endpoints", "Endpoints", true};
const Resource Nodes{"", "v1", "nodes", "Node", false};
const Resource Pods{"", "v1", "pods", "Pod", true};
const Resource Namespaces{"", "v1", "namespaces", "Namespace", false};
const Resource EndpointSlices{"discovery.k8s.io", "v1", "endpointslices", "EndpointSlice", true};
const Resource Leases{"coordination.k8s.io", "v1", "leases", "Lease", true};
const Resource IPAddressPools{"metallb.io", "v1beta1", "ipaddresspools", "IPAddressPool", true};
const Resource ServiceCIDRs{"networking.k8s.io", "v1", "servicecidrs", "ServiceCIDR", false};
}  // namespace resources

std::string Resource::groupVersionPath() const {
  return group.empty() ? "/api/" + version : "/apis/" + group + "/" + version;
}

std::string Resource::collectionPath(const std::string& ns) const {
  if (namespaced && !ns.empty()) return groupVersionPath() + "/namespaces/" + ns + "/" + plural;
  return groupVersionPath() + "/" + plural;
}

std::string Resource::objectPath(const std::string& ns, const std::string& name,
                                 const std::string& sub) const {
  std::string p = collectionPath(ns) + "/" + name;
  return sub.empty() ? p : p + "/" + sub;
}

Status apiError(const std::string& what, const HttpResponse& r, const std::string& origin) {
  std::string reason, message;
  try {
    auto j = nlohmann::json::parse(r.body);
    if (j.is_object() && j.value("kind", "") == "Status") {
      reason = j.value("reason", "");
      message = j.value("message", "");
    }
  } catch (const nlohmann::json::exception&) {
  }
  if (message.empty()) {
    message = r.body.substr(0, 200);
    while (!message.empty() && (message.back() == '\n' || message.back() == '\r')) message.pop_back();
  }
  std::string m = what + ": " + std::to_string(r.code);
  if (!reason.empty()) m += " " + reason;
  if (!message.empty()) m += ": " + message;
  if (r.code == 401)
    m += " (the apiserver rejected the credentials" + (origin.empty() ? "" : " of " + origin) +
         ": wrong, expired or revoked token, or a client certificate it does not trust)";
  if (r.code == 404 && reason.empty()) m += " (resource not served by this apiserver)";
  return Status::error(m);
}

Client::Client(ClientConfig cfg) : cfg_(std::move(cfg)), session_(cfg_) {}

Expected<HttpResponse> Client::request(const HttpRequest& req) {
  std::lock_guard lk(mu_);
  return session_.perform(req);
}

Expected<nlohmann::json> Client::call(const std::string& method, const std::string& path,
                                      const nlohmann::json* body, const std::string& contentType) {
  HttpRequest req;
  req.method = method;
  req.path = path;
  if (body) {
    req.body = body->dump();
    req.contentType = contentType;
  }
  auto r = request(req);
  if (!r) return r.status();
  if (r->code < 200 || r->code >= 300) return apiError(method + " " + path, *r, cfg_.origin);
  try {
    return nlohmann::json::parse(r->body);
  } catch (const nlohmann::json::exception& e) {
    return Status::error(method + " " + path + ": the answer is not JSON: " + e.what());
  }
}

Expected<bool> Client::hasResource(const Resource& res) {
  HttpRequest req;
  req.path = res.groupVersionPath();
  auto r = request(req);
  if (!r) return r.status().context("discovery of " + res.id());
  if (r->code == 404) return false;
  if (r->code != 200) return apiError("discovery GET " + req.path, *r, cfg_.origin);
  try {
    auto j = nlohmann::json::parse(r->body);
    for (const auto& x : j.value("resources", nlohmann::json::array()))
      if (x.value("name", "") == res.plural) return true;
    return false;
  } catch (const nlohmann::json::exception& e) {
    return Status::error("discovery GET " + req.path + ": not an APIResourceList: " + e.what());
  }
}

Expected<nlohmann::json> Client::patchServiceStatus(const std::string& ns, const std::string& name,
                                                    const nlohmann::json& status) {
  nlohmann::json patch = {{"status", status}};
  auto r = call("PATCH", resources::Services.objectPath(ns, name, "status"), &patch,
                "application/merge-patch+json");
  if (!r) return r.status().context("status of service " + ns + "/" + name);
  return r;
}

LeaseResult Client::leaseCall(const std::string& what, const HttpRequest& req) {
  LeaseResult out;
  auto r = request(req);
  if (!r) {
    out.error = r.status().context(what);
    return out;
  }
  if (r->code >= 200 && r->code < 300) {
    try {
      out.lease = nlohmann::json::parse(r->body);
      out.outcome = LeaseResult::Ok;
    } catch (const nlohmann::json::exception& e) {
      out.error = Status::error(what + ": the answer is not JSON: " + e.what());
    }
    return out;
  }
  out.error = apiError(what, *r, cfg_.origin);
  if (r->code == 404) out.outcome = LeaseResult::NotFound;
  else if (r->code == 409) {
    std::string reason;
    try {
      reason = nlohmann::json::parse(r->body).value("reason", "");
    } catch (const nlohmann::json::exception&) {
    }
    out.outcome = reason == "AlreadyExists" ? LeaseResult::AlreadyExists : LeaseResult::Conflict;
  }
  return out;
}

LeaseResult Client::getLease(const std::string& ns, const std::string& name) {
  HttpRequest req;
  req.path = resources::Leases.objectPath(ns, name);
  return leaseCall("get lease " + ns + "/" + name, req);
}

LeaseResult Client::createLease(const std::string& ns, const nlohmann::json& lease) {
  HttpRequest req;
  req.method = "POST";
  req.path = resources::Leases.collectionPath(ns);
  nlohmann::json l = lease;
  l["apiVersion"] = resources::Leases.apiVersion();
  l["kind"] = "Lease";
  req.body = l.dump();
  req.contentType = "application/json";
  std::string name = lease.contains("metadata") ? lease["metadata"].value("name", "") : "";
  return leaseCall("create lease " + ns + "/" + name, req);
}

LeaseResult Client::updateLease(const std::string& ns, const nlohmann::json& lease) {
  std::string name = lease.contains("metadata") ? lease["metadata"].value("name", "") : "";
  std::string what = "update lease " + ns + "/" + name;
  if (name.empty() || lease["metadata"].value("resourceVersion", "").empty()) {
    LeaseResult out;
    out.error = Status::error(what + ": metadata.name and metadata.resourceVersion are required "
                              "(the update is conditional on the resourceVersion read)");
    return out;
  }
  HttpRequest req;
  req.method = "PUT";
  req.path = resources::Leases.objectPath(ns, name);
  nlohmann::json l = lease;
  l["apiVersion"] = resources::Leases.apiVersion();
  l["kind"] = "Lease";
  req.body = l.dump();
  req.contentType = "application/json";
  return leaseCall(what, req);
}

}  // namespace ferry::k8s
