#include "model/builder.h"

#include "model/endpoints.h"

namespace ferry {

namespace {

using Results = std::map<std::string, AllocationResult>;

std::vector<AllocationRequest> allocationRequests(const std::vector<Service>& services) {
  std::map<std::string, AllocationRequest> byKey;  // sorted by key, as required
  for (const Service& s : services) {
    bool needsIP = s.type != ServiceType::ExternalName && !s.headless;
    byKey[s.key()] = {s.key(), needsIP, s.clusterIPs};
  }
  std::vector<AllocationRequest> out;
  for (auto& [k, r] : byKey) out.push_back(std::move(r));
  return out;
}

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
    bool keeps = old && (r.requested.empty() || r.requested == old->clusterIPs) &&
                 r.needsIP == !old->clusterIPs.empty();
    if (keeps)
      out[r.key] = {old->clusterIPs, old->creationTimestamp, "", ""};
    else
      out[r.key] = {{}, "", "spec.clusterIP", "cannot allocate: " + why};
  }
  return out;
}

class Builder {
 public:
  Builder(const std::vector<SourceFile>& files, const BuildOptions& opts, AllocationStore& store,
          const ClusterSnapshot* previous)
      : m_(parseManifests(files)), opts_(opts), store_(store), prev_(previous),
        src_(EndpointSources::index(m_)) {}

  ClusterSnapshot build();

 private:
  std::set<std::string> retainedFromBrokenFiles() const;
  Results allocate(const std::set<std::string>& live);
  bool addValid(Service s, const AllocationResult& r);
  void keepPrevious(const std::string& key);

  Manifests m_;
  const BuildOptions& opts_;
  AllocationStore& store_;
  const ClusterSnapshot* prev_;
  EndpointSources src_;
  ClusterSnapshot snap_;
};

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
        results = allocateClusterIPs(rec, reqs, live, opts_.serviceCidrs, now);
      },
      &error);
  if (ok) return results;
  snap_.errors.push_back({"", "", "", "ClusterIP allocation record: " + error});
  return fallbackResults(reqs, prev_, error);
}

bool Builder::addValid(Service s, const AllocationResult& r) {
  if (!r.error.empty()) {
    snap_.errors.push_back({s.file, "Service " + s.key(), r.field, r.error});
    return false;
  }
  s.clusterIPs = r.clusterIPs;
  if (s.creationTimestamp.empty()) s.creationTimestamp = r.created;
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
    return Builder(files, opts, store, previous).build();
  } catch (const std::exception& e) {
    // Only resource exhaustion gets here; keep serving what we had.
    ClusterSnapshot snap = previous ? *previous : ClusterSnapshot{};
    snap.errors = {{"", "", "", std::string("internal error building snapshot: ") + e.what()}};
    return snap;
  }
}

}  // namespace ferry
