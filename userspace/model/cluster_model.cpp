#include "model/cluster_model.h"

#include <algorithm>

#include "model/address_pool.h"
#include "model/build_steps.h"
#include "model/load_balancer.h"

namespace ferry {

namespace {

bool sameService(const Service& a, const Service& b) { return a == b && a.object == b.object; }

std::vector<bool> v4Of(const std::vector<IpAddr>& ips, const BuildOptions& opts) {
  AllocationResult r;
  r.clusterIPs = ips;
  return lbFamilies(r, opts);
}

std::string errorKey(const ManifestError& e) { return e.str(); }

// The per-service error maps hold only services with errors, so that
// rebuildErrors() costs O(errors), not O(services), per change.
void prune(std::map<std::string, std::vector<ManifestError>>& m, const std::string& key) {
  auto it = m.find(key);
  if (it != m.end() && it->second.empty()) m.erase(it);
}

}  // namespace

ChangeSet ClusterModel::apply(const SourceUpdate& u) {
  ChangeSet cs;
  Touched t;
  for (const ObjectEvent& ev : u.events) store_.apply(ev, &t);
  cs.events = u.events.size();
  for (const auto& [origin, errs] : u.errors) {
    if (errs.empty())
      cs.errors |= sourceErrors_.erase(origin) > 0;
    else
      sourceErrors_[origin] = errs, cs.errors = true;
  }
  guarded(&cs, [&] { recompute(t, &cs); });
  return cs;
}

ChangeSet ClusterModel::retryAllocations() {
  ChangeSet cs;
  if (retry_.empty() && recordErrors_.empty()) return cs;
  guarded(&cs, [&] {
    std::set<std::string> keys = retry_;
    allocate(keys, &cs);
  });
  return cs;
}

void ClusterModel::preallocate(const std::vector<ObjectEvent>& events) {
  std::map<std::string, const Service*> last;
  for (const ObjectEvent& ev : events) {
    if (ev.key.kind != ObjectKind::Service) continue;
    bool put = ev.type == ObjectEvent::Type::Added || ev.type == ObjectEvent::Type::Modified;
    if (put && ev.object)
      last[ev.key.nsName()] = &std::get<Service>(*ev.object);
    else
      last.erase(ev.key.nsName());
  }
  if (last.empty()) return;
  std::vector<AllocationRequest> reqs;
  std::set<std::string> live = store_.liveServices();
  for (const auto& [key, s] : last) {
    reqs.push_back(allocationRequest(*s));
    live.insert(key);
  }
  const std::set<std::string> none;
  std::string now = opts_.now ? opts_.now() : rfc3339Now(), error;
  try {
    alloc_.transactTracked(
        [&](AllocationRecord& rec) {
          allocateClusterIPs(rec, reqs, live, opts_.serviceCidrs, now,
                             {opts_.nodePortMin, opts_.nodePortMax}, &none);
        },
        &error);
  } catch (const std::exception&) {
    // the slices' transactions report what goes wrong
  }
}

ChangeSet ClusterModel::setServiceCidrs(std::vector<IpPrefix> cidrs) {
  ChangeSet cs;
  if (cidrs == opts_.serviceCidrs) return cs;
  opts_.serviceCidrs = std::move(cidrs);
  guarded(&cs, [&] {
    std::set<std::string> keys = store_.liveServices();
    keys.insert(retry_.begin(), retry_.end());
    allocate(keys, &cs);
  });
  return cs;
}

void ClusterModel::recompute(const Touched& t, ChangeSet* cs) {
  for (const std::string& n : t.nodes) {
    auto it = store_.nodes().find(n);
    if (it != store_.nodes().end())
      snap_.nodes[n] = std::get<NodeObject>(*it->second).node;
    else
      snap_.nodes.erase(n);
    cs->nodes = true;
  }
  if (t.pools) rebuildPools(cs);
  std::set<std::string> keys = t.services;
  if (!keys.empty() || cs->pools) {
    keys.insert(retry_.begin(), retry_.end());
    allocate(keys, cs);
    // A request processed before a release in the same pass (another
    // service's type change) failed: one more pass reaches what a full
    // build on the new record gives.
    if (!retry_.empty()) {
      std::set<std::string> again = retry_;
      allocate(again, cs);
      keys.insert(again.begin(), again.end());
    }
  }
  // A service held at its last good programming (its current object is
  // invalid, or waits for an allocation) follows pods through the held
  // version's selector, which the store's selector index does not know.
  if (!t.podNamespaces.empty()) {
    std::set<std::string> held = retry_;
    held.insert(store_.invalidServices().begin(), store_.invalidServices().end());
    for (const std::string& key : held) {
      if (keys.count(key) || t.endpoints.count(key)) continue;
      auto it = snap_.services.find(key);
      if (it == snap_.services.end() || it->second.selector.empty() ||
          !t.podNamespaces.count(it->second.ns))
        continue;
      refreshEndpoints(key, cs);
    }
  }
  for (const std::string& key : t.endpoints)
    if (!keys.count(key)) refreshEndpoints(key, cs);
}

void ClusterModel::rebuildPools(ChangeSet* cs) {
  Manifests pm;
  for (const auto& [name, o] : store_.pools()) pm.pools.push_back(std::get<AddressPool>(*o));
  pm.invalidPools = store_.invalidPools();
  std::vector<ManifestError> errs;
  auto pools = resolvePools(pm, &snap_, &errs);
  if (pools != snap_.pools) {
    snap_.pools = std::move(pools);
    cs->pools = true;
  }
  if (errs != poolErrors_) {
    poolErrors_ = std::move(errs);
    cs->errors = true;
  }
}

void ClusterModel::allocate(const std::set<std::string>& keys, ChangeSet* cs) {
  cs->allocated = true;
  std::vector<AllocationRequest> reqs;
  std::vector<const Service*> parsed;
  for (const std::string& key : keys) {
    if (store_.invalidServices().count(key)) continue;
    if (const Service* s = store_.service(key)) {
      reqs.push_back(allocationRequest(*s));
      parsed.push_back(s);
    }
  }
  auto previous = [&](const std::string& key) -> const Service* {
    auto it = snap_.services.find(key);
    return it == snap_.services.end() ? nullptr : &it->second;
  };
  // Every service that may hold a LoadBalancer address gets a request, as
  // in a full build: the sharing rules look at all holders.
  std::set<std::string> lbKeys = keys;
  lbKeys.insert(loadBalancers_.begin(), loadBalancers_.end());
  lbKeys.insert(store_.invalidServices().begin(), store_.invalidServices().end());
  const std::set<std::string>& live = store_.liveServices();
  std::string now = opts_.now ? opts_.now() : rfc3339Now();
  Results results;
  LbResults lb;
  std::string error;
  bool ok = alloc_.transactTracked(
      [&](AllocationRecord& rec) {
        results = allocateClusterIPs(rec, reqs, live, opts_.serviceCidrs, now,
                                     {opts_.nodePortMin, opts_.nodePortMax}, &keys);
        std::vector<LoadBalancerRequest> lbReqs;
        for (const std::string& key : lbKeys) {
          if (!live.count(key)) continue;
          auto r = results.find(key);
          const Service* s = store_.invalidServices().count(key) ? nullptr : store_.service(key);
          if (r != results.end() && r->second.error.empty()) {
            lbReqs.push_back(loadBalancerRequest(*s, lbFamilies(r->second, opts_),
                                                 opts_.loadBalancerFromStatus));
          } else if (s && !keys.count(key) && previous(key)) {
            lbReqs.push_back(loadBalancerRequest(*s, v4Of(previous(key)->clusterIPs, opts_),
                                                 opts_.loadBalancerFromStatus));
          } else {
            lbReqs.push_back(heldLoadBalancerRequest(key, previous(key)));
          }
        }
        lb = allocateLoadBalancerIPs(rec, lbReqs, snap_.pools);
      },
      &error);
  if (ok) {
    recordErrors_.clear();
  } else {
    recordErrors_ = {{"", "", "", "ClusterIP allocation record: " + error}};
    lb = lbFallback(parsed, &snap_, error);
    results = fallbackResults(reqs, &snap_, error);
  }
  cs->errors = true;
  for (const std::string& key : keys) {
    cs->recomputed++;
    retry_.erase(key);
    serviceErrors_.erase(key);
    const Service* s = store_.invalidServices().count(key) ? nullptr : store_.service(key);
    if (s) {
      Service built = *s;
      auto l = lb.find(key);
      if (applyAllocation(built, results[key], l == lb.end() ? nullptr : &l->second,
                          &serviceErrors_[key])) {
        std::vector<ManifestError>& ee = endpointErrors_[key];
        ee.clear();
        resolveEndpoints(built, store_, &ee);
        setService(key, std::move(built), cs);
        continue;
      }
      retry_.insert(key);
    }
    if (live.count(key) && previous(key)) {
      refreshEndpoints(key, cs);  // the last good programming stays
    } else {
      setService(key, std::nullopt, cs);
    }
  }
  for (const std::string& key : keys) {
    prune(serviceErrors_, key);
    prune(endpointErrors_, key);
  }
  // LoadBalancers not recomputed above: their address may have moved
  // (pools changed, an address freed).
  for (const std::string& key : std::set<std::string>(loadBalancers_)) {
    if (keys.count(key)) continue;
    const Service* s = store_.invalidServices().count(key) ? nullptr : store_.service(key);
    const Service* cur = previous(key);
    auto l = lb.find(key);
    if (!s || !cur || l == lb.end()) continue;
    Service next = *cur;
    next.loadBalancerIngress = l->second.ips;
    next.loadBalancerPending = l->second.pending;
    serviceErrors_.erase(key);
    if (!l->second.error.empty())
      serviceErrors_[key].push_back({next.file, "Service " + key, l->second.field, l->second.error});
    if (!l->second.warning.empty())
      serviceErrors_[key].push_back(
          {next.file, "Service " + key, kStatusIngressField, l->second.warning, "Warning"});
    setService(key, std::move(next), cs);
  }
}

void ClusterModel::refreshEndpoints(const std::string& key, ChangeSet* cs) {
  auto it = snap_.services.find(key);
  if (it == snap_.services.end()) return;
  cs->recomputed++;
  Service next = it->second;
  std::vector<ManifestError> errs;
  resolveEndpoints(next, store_, &errs);
  std::vector<ManifestError>& ee = endpointErrors_[key];
  if (errs != ee) {
    ee = std::move(errs);
    cs->errors = true;
  }
  prune(endpointErrors_, key);
  setService(key, std::move(next), cs);
}

void ClusterModel::setService(const std::string& key, std::optional<Service> s, ChangeSet* cs) {
  auto it = snap_.services.find(key);
  if (!s) {
    endpointErrors_.erase(key);
    loadBalancers_.erase(key);
    if (it == snap_.services.end()) return;
    snap_.services.erase(it);
    cs->services.insert(key);
    return;
  }
  if (s->type == ServiceType::LoadBalancer)
    loadBalancers_.insert(key);
  else
    loadBalancers_.erase(key);
  if (it != snap_.services.end() && sameService(it->second, *s)) return;
  snap_.services[key] = std::move(*s);
  cs->services.insert(key);
}

void ClusterModel::rebuildErrors() {
  std::vector<ManifestError> out;
  for (const auto& [origin, errs] : sourceErrors_) out.insert(out.end(), errs.begin(), errs.end());
  out.insert(out.end(), recordErrors_.begin(), recordErrors_.end());
  out.insert(out.end(), poolErrors_.begin(), poolErrors_.end());
  for (const auto* byKey : {&serviceErrors_, &endpointErrors_})
    for (const auto& [key, errs] : *byKey) out.insert(out.end(), errs.begin(), errs.end());
  snap_.errors = std::move(out);
}

std::vector<std::string> ClusterModel::verify(ClusterSnapshot* fullOut) const {
  MemoryAllocationStore mem;
  std::string error;
  if (!alloc_.transact([&](AllocationRecord& r) { mem.record = r; }, &error))
    return {"cannot read the allocation record: " + error};
  AllocationRecord before = mem.record;
  ClusterSnapshot full = buildSnapshot(store_.toManifests(), opts_, mem, &snap_);
  std::vector<std::string> out = diffSnapshots(snap_, full);
  if (!(mem.record == before)) out.push_back("a full build would change the allocation record");
  // Errors the model derives (not the sources' parse errors) as multisets.
  std::multiset<std::string> inc, fromScratch;
  for (const auto* byKey : {&serviceErrors_, &endpointErrors_})
    for (const auto& [key, errs] : *byKey)
      for (const auto& e : errs) inc.insert(errorKey(e));
  for (const auto& e : poolErrors_) inc.insert(errorKey(e));
  for (const auto& e : full.errors)
    if (e.message.rfind("ClusterIP allocation record: ", 0) != 0) fromScratch.insert(errorKey(e));
  for (const auto& e : inc)
    if (!fromScratch.count(e)) out.push_back("error only in the incremental state: " + e);
  for (const auto& e : fromScratch)
    if (!inc.count(e)) out.push_back("error only in the full build: " + e);
  if (fullOut) *fullOut = std::move(full);
  return out;
}

std::vector<std::string> diffSnapshots(const ClusterSnapshot& a, const ClusterSnapshot& b) {
  std::vector<std::string> out;
  for (const auto& [key, s] : a.services) {
    auto it = b.services.find(key);
    if (it == b.services.end()) {
      out.push_back("Service " + key + ": only in the incremental state");
      continue;
    }
    const Service& f = it->second;
    if (sameService(s, f)) continue;
    std::string what;
    if (s.clusterIPs != f.clusterIPs) what += " clusterIPs";
    if (s.ports != f.ports) {
      what += " ports/endpoints";
      // name the first differing endpoint, so a failure is debuggable
      auto epText = [](const Endpoint& e) {
        return e.ip.str() + ":" + std::to_string(e.port) + (e.ready ? " ready" : "") +
               (e.serving ? " serving" : "") + (e.terminating ? " terminating" : "") +
               " node=" + e.nodeName.str() + " ref=" + e.targetRef.str();
      };
      for (size_t i = 0; i < std::min(s.ports.size(), f.ports.size()); ++i) {
        const auto& a = s.ports[i].endpoints;
        const auto& b = f.ports[i].endpoints;
        if (a == b) continue;
        what += " (port " + std::to_string(s.ports[i].port) + ": incremental";
        for (const Endpoint& e : a) what += " [" + epText(e) + "]";
        what += "; full";
        for (const Endpoint& e : b) what += " [" + epText(e) + "]";
        what += ")";
        break;
      }
    }
    if (s.loadBalancerIngress != f.loadBalancerIngress) what += " loadBalancerIngress";
    if (s.loadBalancerPending != f.loadBalancerPending)
      what += " loadBalancerPending (incremental \"" + s.loadBalancerPending + "\"; full \"" +
              f.loadBalancerPending + "\")";
    if (s.healthCheckNodePort != f.healthCheckNodePort) what += " healthCheckNodePort";
    if (s.file != f.file) what += " file";
    if (s.object != f.object) what += " object";
    if (what.empty()) what = " other fields";
    out.push_back("Service " + key + ": differs in" + what);
  }
  for (const auto& [key, s] : b.services)
    if (!a.services.count(key)) out.push_back("Service " + key + ": only in the full build");
  if (a.nodes != b.nodes) out.push_back("nodes differ");
  if (a.pools != b.pools) out.push_back("address pools differ");
  return out;
}

}  // namespace ferry
