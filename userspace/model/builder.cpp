#include "model/builder.h"

#include "model/address_pool.h"
#include "model/build_steps.h"
#include "model/endpoints.h"
#include "model/load_balancer.h"

namespace ferry {

namespace {

bool needsNodePorts(const Service& s) {
  return s.type == ServiceType::NodePort || s.type == ServiceType::LoadBalancer;
}

// LoadBalancers without allocateLoadBalancerNodePorts get only the ones
// they ask for.
std::vector<NodePortRequest> nodePortRequests(const Service& s) {
  std::vector<NodePortRequest> out;
  if (!needsNodePorts(s)) return out;
  for (size_t i = 0; i < s.ports.size(); ++i) {
    const ServicePort& p = s.ports[i];
    if (!p.nodePort && !s.allocateLoadBalancerNodePorts) continue;
    out.push_back({nodePortKey(p.name, i, p.protocol),
                   "spec.ports[" + std::to_string(i) + "].nodePort", p.port, p.protocol,
                   p.nodePort});
  }
  return out;
}

}  // namespace

AllocationRequest allocationRequest(const Service& s) {
  AllocationRequest r;
  r.key = s.key();
  r.needsIP = s.type != ServiceType::ExternalName && !s.headless;
  r.requested = s.clusterIPs;
  r.ipFamilies = s.ipFamilies;
  r.ipFamilyPolicy = s.ipFamilyPolicy;
  r.nodePorts = nodePortRequests(s);
  r.needsHealthCheckNodePort = s.type == ServiceType::LoadBalancer && s.externalTrafficLocal;
  r.requestedHealthCheckNodePort = s.healthCheckNodePort;
  return r;
}

namespace {

std::vector<AllocationRequest> allocationRequests(const std::vector<Service>& services) {
  std::map<std::string, AllocationRequest> byKey;  // sorted by key, as required
  for (const Service& s : services) byKey[s.key()] = allocationRequest(s);
  std::vector<AllocationRequest> out;
  for (auto& [k, r] : byKey) out.push_back(std::move(r));
  return out;
}

// The previous version's node ports, when they satisfy the request.
bool keepsNodePorts(const AllocationRequest& r, const Service& old, AllocationResult* out) {
  std::map<std::string, uint16_t> had;
  for (size_t i = 0; i < old.ports.size(); ++i)
    if (old.ports[i].nodePort)
      had[nodePortKey(old.ports[i].name, i, old.ports[i].protocol)] = old.ports[i].nodePort;
  for (const auto& np : r.nodePorts) {
    auto it = had.find(np.key);
    if (it == had.end() || (np.requested && np.requested != it->second)) return false;
    out->nodePorts[np.key] = it->second;
  }
  if (!r.needsHealthCheckNodePort) return true;
  uint16_t hc = old.healthCheckNodePort;
  out->healthCheckNodePort = hc;
  return hc && (!r.requestedHealthCheckNodePort || r.requestedHealthCheckNodePort == hc);
}

}  // namespace

// Without the record, services can only keep what they already had.
Results fallbackResults(const std::vector<AllocationRequest>& reqs, const ClusterSnapshot* prev,
                        const std::string& why) {
  Results out;
  for (const auto& r : reqs) {
    const Service* old = nullptr;
    if (prev) {
      auto it = prev->services.find(r.key);
      if (it != prev->services.end()) old = &it->second;
    }
    AllocationResult res;
    bool keeps = old && (r.requested.empty() || r.requested == old->clusterIPs) &&
                 r.needsIP == !old->clusterIPs.empty();
    if (keeps && keepsNodePorts(r, *old, &res)) {
      res.clusterIPs = old->clusterIPs;
      res.created = old->creationTimestamp;
      out[r.key] = res;
    } else {
      out[r.key] = {{}, "", "spec.clusterIP", "cannot allocate: " + why, {}, 0};
    }
  }
  return out;
}

// Without the record, LoadBalancers can only keep the address (or the
// pending reason) they had.
LbResults lbFallback(const std::vector<const Service*>& services, const ClusterSnapshot* prev,
                     const std::string& why) {
  LbResults out;
  for (const Service* sp : services) {
    const Service& s = *sp;
    if (s.type != ServiceType::LoadBalancer) continue;
    const Service* old = nullptr;
    if (prev) {
      auto it = prev->services.find(s.key());
      if (it != prev->services.end()) old = &it->second;
    }
    if (old && old->type == ServiceType::LoadBalancer)
      out[s.key()] = {old->loadBalancerIngress, old->loadBalancerPending, "", ""};
    else
      out[s.key()].pending = "cannot allocate: " + why;
  }
  return out;
}

bool applyAllocation(Service& s, const AllocationResult& r, const LoadBalancerResult* lb,
                     std::vector<ManifestError>* errors) {
  if (!r.error.empty()) {
    errors->push_back({s.file, "Service " + s.key(), r.field, r.error});
    return false;
  }
  // ipFamilies [IPv6] must not silently get an IPv4 address (and the
  // LoadBalancer address that follows its family).
  if (!s.ipFamilies.empty() && !r.clusterIPs.empty() && r.clusterIPs[0].isV4() != s.ipFamilies[0]) {
    errors->push_back({s.file, "Service " + s.key(), "spec.ipFamilies[0]",
                       std::string(s.ipFamilies[0] ? "IPv4" : "IPv6") +
                           " requested but the service CIDRs (--service-cidr) give " +
                           (r.clusterIPs[0].isV4() ? "IPv4" : "IPv6") + " first"});
    return false;
  }
  s.clusterIPs = r.clusterIPs;
  for (size_t i = 0; i < s.ports.size(); ++i) {
    auto it = r.nodePorts.find(nodePortKey(s.ports[i].name, i, s.ports[i].protocol));
    s.ports[i].nodePort = it == r.nodePorts.end() ? 0 : it->second;
  }
  s.healthCheckNodePort = r.healthCheckNodePort;
  if (lb) {
    s.loadBalancerIngress = lb->ips;
    s.loadBalancerPending = lb->pending;
    if (!lb->error.empty()) errors->push_back({s.file, "Service " + s.key(), lb->field, lb->error});
    if (!lb->warning.empty())
      errors->push_back({s.file, "Service " + s.key(), kStatusIngressField, lb->warning, "Warning"});
  }
  if (s.creationTimestamp.empty()) s.creationTimestamp = r.created;
  return true;
}

std::vector<bool> lbFamilies(const AllocationResult& r, const BuildOptions& opts) {
  std::vector<bool> out;
  for (const IpAddr& ip : r.clusterIPs) out.push_back(ip.isV4());
  if (out.empty()) out.push_back(opts.serviceCidrs.empty() || opts.serviceCidrs[0].addr.isV4());
  return out;
}

namespace {

class Builder {
 public:
  Builder(Manifests m, const BuildOptions& opts, AllocationStore& store,
          const ClusterSnapshot* previous)
      : m_(std::move(m)), opts_(opts), store_(store), prev_(previous),
        src_(EndpointSources::index(m_)) {}

  ClusterSnapshot build();

 private:
  std::set<std::string> retainedFromBrokenFiles() const;
  Results allocate(const std::set<std::string>& live);
  std::vector<LoadBalancerRequest> lbRequests(const Results& results,
                                              const std::set<std::string>& live) const;
  const Service* previous(const std::string& key) const;
  bool addValid(Service s, const AllocationResult& r);
  void keepPrevious(const std::string& key);

  Manifests m_;
  const BuildOptions& opts_;
  AllocationStore& store_;
  const ClusterSnapshot* prev_;
  EndpointSources src_;
  ClusterSnapshot snap_;
  LbResults lb_;
};

const Service* Builder::previous(const std::string& key) const {
  if (!prev_) return nullptr;
  auto it = prev_->services.find(key);
  return it == prev_->services.end() ? nullptr : &it->second;
}

// Valid services (allocation included) ask for an address or release it;
// the other live ones hold theirs, described by their last good version.
std::vector<LoadBalancerRequest> Builder::lbRequests(const Results& results,
                                                     const std::set<std::string>& live) const {
  std::map<std::string, LoadBalancerRequest> byKey;
  for (const Service& s : m_.services) {
    auto it = results.find(s.key());
    if (it == results.end() || !it->second.error.empty()) continue;
    byKey[s.key()] =
        loadBalancerRequest(s, lbFamilies(it->second, opts_), opts_.loadBalancerFromStatus);
  }
  for (const auto& key : live)
    if (!byKey.count(key)) byKey[key] = heldLoadBalancerRequest(key, previous(key));
  std::vector<LoadBalancerRequest> out;
  for (auto& [k, r] : byKey) out.push_back(std::move(r));
  return out;
}

std::set<std::string> Builder::retainedFromBrokenFiles() const {
  std::set<std::string> keys;
  if (!prev_) return keys;
  std::set<std::string> present = m_.invalidServices;
  for (const auto& s : m_.services) present.insert(s.key());
  for (const auto& [key, s] : prev_->services)
    if (m_.brokenFiles.count(s.file) && !present.count(key)) keys.insert(key);
  return keys;
}

Results Builder::allocate(const std::set<std::string>& live) {
  auto reqs = allocationRequests(m_.services);
  std::string now = opts_.now ? opts_.now() : rfc3339Now();
  Results results;
  std::string error;
  bool ok = store_.transact(
      [&](AllocationRecord& rec) {
        results = allocateClusterIPs(rec, reqs, live, opts_.serviceCidrs, now,
                                     {opts_.nodePortMin, opts_.nodePortMax});
        lb_ = allocateLoadBalancerIPs(rec, lbRequests(results, live), snap_.pools);
      },
      &error);
  if (ok) return results;
  snap_.errors.push_back({"", "", "", "ClusterIP allocation record: " + error});
  std::vector<const Service*> svcs;
  for (const Service& s : m_.services) svcs.push_back(&s);
  lb_ = lbFallback(svcs, prev_, error);
  return fallbackResults(reqs, prev_, error);
}

bool Builder::addValid(Service s, const AllocationResult& r) {
  auto lb = lb_.find(s.key());
  if (!applyAllocation(s, r, lb == lb_.end() ? nullptr : &lb->second, &snap_.errors)) return false;
  resolveEndpoints(s, src_, &snap_.errors);
  snap_.services[s.key()] = std::move(s);
  return true;
}

// The last good programming stays; endpoints follow the current objects.
void Builder::keepPrevious(const std::string& key) {
  if (!prev_) return;
  auto it = prev_->services.find(key);
  if (it == prev_->services.end()) return;
  Service s = it->second;
  resolveEndpoints(s, src_, &snap_.errors);
  snap_.services[key] = std::move(s);
}

ClusterSnapshot Builder::build() {
  snap_.errors = m_.errors;
  for (const auto& n : m_.nodes) snap_.nodes[n.node.name] = n.node;
  snap_.pools = resolvePools(m_, prev_, &snap_.errors);
  std::set<std::string> retained = retainedFromBrokenFiles();
  std::set<std::string> live = m_.invalidServices;
  live.insert(retained.begin(), retained.end());
  for (const auto& s : m_.services) live.insert(s.key());
  Results results = allocate(live);
  for (auto& s : m_.services)
    if (!addValid(s, results[s.key()])) retained.insert(s.key());
  retained.insert(m_.invalidServices.begin(), m_.invalidServices.end());
  for (const auto& key : retained) keepPrevious(key);
  return std::move(snap_);
}

}  // namespace

ClusterSnapshot buildSnapshot(const std::vector<SourceFile>& files, const BuildOptions& opts,
                              AllocationStore& store, const ClusterSnapshot* previous) {
  try {
    return buildSnapshot(parseManifests(files), opts, store, previous);
  } catch (const std::exception& e) {
    ClusterSnapshot snap = previous ? *previous : ClusterSnapshot{};
    snap.errors = {{"", "", "", std::string("internal error building snapshot: ") + e.what()}};
    return snap;
  }
}

ClusterSnapshot buildSnapshot(Manifests manifests, const BuildOptions& opts,
                              AllocationStore& store, const ClusterSnapshot* previous) {
  try {
    return Builder(std::move(manifests), opts, store, previous).build();
  } catch (const std::exception& e) {
    // Only resource exhaustion gets here; keep serving what we had.
    ClusterSnapshot snap = previous ? *previous : ClusterSnapshot{};
    snap.errors = {{"", "", "", std::string("internal error building snapshot: ") + e.what()}};
    return snap;
  }
}

}  // namespace ferry
