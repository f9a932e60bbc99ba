// The LoadBalancer address policy documented in load_balancer.h.
#include <algorithm>
#include <set>
#include <utility>
#include <tuple>

#include "model/address_pool.h"
#include "model/load_balancer.h"

namespace ferry {

std::string annotationPath(const std::string& key) { return "metadata.annotations[" + key + "]"; }

std::vector<IpAddr> statusIngressIPs(const nlohmann::json& object) {
  std::vector<IpAddr> out;
  const nlohmann::json* j = &object;
  for (const char* k : {"status", "loadBalancer", "ingress"}) {
    if (!j->is_object()) return out;
    auto it = j->find(k);
    if (it == j->end()) return out;
    j = &*it;
  }
  if (!j->is_array()) return out;
  for (const auto& in : *j) {
    if (!in.is_object()) continue;
    auto ip = in.find("ip");
    if (ip == in.end() || !ip->is_string()) continue;
    if (auto a = IpAddr::parse(ip->get<std::string>())) out.push_back(*a);
  }
  return out;
}

LoadBalancerRequest loadBalancerRequest(const Service& s, const std::vector<bool>& families,
                                        bool fromStatus) {
  LoadBalancerRequest r;
  if (fromStatus) r.statusIPs = statusIngressIPs(s.object.get());
  r.created = s.creationTimestamp;
  r.key = s.key();
  r.needsAddress = s.type == ServiceType::LoadBalancer && !s.loadBalancerIgnored;
  if (!families.empty()) r.v4 = families[0];
  if (families.size() > 1) r.dualStack = true;
  if (s.loadBalancerIP) {
    r.requested = {*s.loadBalancerIP};
    r.requestedField = "spec.loadBalancerIP";
  } else if (!s.requestedLoadBalancerIPs.empty()) {
    r.requested = s.requestedLoadBalancerIPs;
    r.requestedField = annotationPath(kLoadBalancerIPsAnnotation);
  }
  r.pool = s.addressPool;
  r.sharingKey = s.sharedIPKey;
  if (s.externalTrafficLocal) {
    r.backendKey = "Local:";
    for (const auto& [k, v] : s.selector) r.backendKey += k + "=" + v + ",";
  }
  for (const auto& p : s.ports) r.ports.push_back({p.port, p.protocol});
  return r;
}

LoadBalancerRequest heldLoadBalancerRequest(const std::string& key, const Service* lastGood) {
  LoadBalancerRequest r;
  if (lastGood) r = loadBalancerRequest(*lastGood, std::vector<bool>{true});
  r.key = key;
  r.needsAddress = false;
  r.holdOnly = true;
  return r;
}

namespace {

const char* familyName(bool v4) { return v4 ? "IPv4" : "IPv6"; }

// What a request asks for, checked before anything is assigned.
struct Plan {
  std::optional<IpAddr> want;  // the requested address
  std::string field, error;
};

struct Holder {
  std::string key;
  const LoadBalancerRequest* req;  // null: unknown, never shared
};

class LbAllocator {
 public:
  LbAllocator(AllocationRecord& rec, const std::vector<LoadBalancerRequest>& reqs,
              const std::map<std::string, AddressPool>& pools)
      : rec_(rec), reqs_(reqs), pools_(pools) {
    for (const auto& r : reqs_) byKey_[r.key] = &r;
  }

  std::map<std::string, LoadBalancerResult> run();

 private:
  const LoadBalancerRequest* find(const std::string& key) const;
  Plan plan(const LoadBalancerRequest& r, bool v4) const;
  const AddressPool* poolOf(const IpAddr& ip) const;
  std::string notInPool(const IpAddr& ip) const;
  std::string conflict(const IpAddr& ip, const LoadBalancerRequest* r) const;
  bool owned(const IpAddr& ip) const;
  void take(const IpAddr& ip, const std::string& key, const LoadBalancerRequest* r);
  void hold(const std::string& key, ServiceAllocation& a, const LoadBalancerRequest* r);
  void keep(const LoadBalancerRequest& r, const std::map<bool, Plan>& plans, ServiceAllocation& a);
  void seed(const LoadBalancerRequest& r, const std::map<bool, Plan>& plans, LoadBalancerResult* res);
  void assign(const LoadBalancerRequest& r, const IpAddr& ip);
  void requested(const LoadBalancerRequest& r, const Plan& p, LoadBalancerResult* res,
                 bool dry = false);
  // dry: only the pending text, nothing taken (a service decided pending).
  void dynamic(const LoadBalancerRequest& r, bool v4, LoadBalancerResult* res, bool dry = false);
  // A dual-stack request that ends pending whatever the other services
  // hold (see run()).
  bool surelyPending(const LoadBalancerRequest& r, const std::map<bool, Plan>& plans,
                     const ServiceAllocation* held) const;
  std::optional<IpAddr> shared(const AddressPool& pool, const LoadBalancerRequest& r,
                               bool v4) const;
  std::optional<IpAddr> firstFree(const AddressPool& pool, bool v4) const;
  // The pools a dynamic pick of family v4 may use (auto-assign ones, or the
  // one the annotation names), in name order.
  std::vector<const AddressPool*> candidates(const LoadBalancerRequest& r, bool v4) const;
  // The pending text when candidates(r, v4) is empty.
  static std::string noPool(const LoadBalancerRequest& r, bool v4);

  AllocationRecord& rec_;
  const std::vector<LoadBalancerRequest>& reqs_;
  const std::map<std::string, AddressPool>& pools_;
  std::map<std::string, const LoadBalancerRequest*> byKey_;
  std::map<IpAddr, std::vector<Holder>> owners_;
};

const LoadBalancerRequest* LbAllocator::find(const std::string& key) const {
  auto it = byKey_.find(key);
  return it == byKey_.end() ? nullptr : it->second;
}

Plan LbAllocator::plan(const LoadBalancerRequest& r, bool v4) const {
  Plan p;
  if (!r.pool.empty() && !pools_.count(r.pool)) {
    p.field = annotationPath(kAddressPoolAnnotation);
    p.error = "unknown address pool \"" + r.pool + "\"";
    return p;
  }
  if (r.requested.empty()) return p;
  for (const auto& ip : r.requested)
    if (ip.isV4() == v4) return p.want = ip, p;
  // spec.loadBalancerIP holds one address: a dual-stack service's other
  // family is assigned dynamically.
  if (v4 != r.v4 && r.requestedField == "spec.loadBalancerIP") return p;
  p.field = r.requestedField;
  std::string family = std::string(familyName(v4)) + " address (" +
                       (r.dualStack ? "one of the service's IP families)" : "the service's IP family)");
  p.error = r.requested.size() == 1 && !r.dualStack ? r.requested[0].str() + " is not an " + family
                                    : "has no " + family;
  return p;
}

// Pools are in name order; resolvePools makes them disjoint.
const AddressPool* LbAllocator::poolOf(const IpAddr& ip) const {
  for (const auto& [name, pool] : pools_)
    if (pool.contains(ip)) return &pool;
  return nullptr;
}

std::string LbAllocator::notInPool(const IpAddr& ip) const {
  for (const auto& [name, pool] : pools_)
    for (const auto& range : pool.ranges)
      if (range.contains(ip))
        return ip.str() + " is excluded from address pool " + name + " by avoidBuggyIPs";
  return ip.str() + " is not in any address pool";
}

// "" when r may hold ip along with its current holders.
std::string LbAllocator::conflict(const IpAddr& ip, const LoadBalancerRequest* r) const {
  auto it = owners_.find(ip);
  if (it == owners_.end()) return "";
  for (const Holder& h : it->second) {
    if (r && h.key == r->key) continue;
    std::string taken = ip.str() + " is already assigned to " + h.key;
    if (!r || !h.req || r->sharingKey.empty() || r->sharingKey != h.req->sharingKey) return taken;
    if (r->backendKey != h.req->backendKey)
      return taken + ", and sharing needs the same externalTrafficPolicy (and with Local, "
                     "the same selector)";
    for (const auto& port : r->ports)
      if (std::find(h.req->ports.begin(), h.req->ports.end(), port) != h.req->ports.end())
        return taken + ", which also uses port " + std::to_string(port.first) + "/" +
               protocolName(port.second);
  }
  return "";
}

bool LbAllocator::owned(const IpAddr& ip) const {
  auto it = owners_.find(ip);
  return it != owners_.end() && !it->second.empty();
}

void LbAllocator::take(const IpAddr& ip, const std::string& key, const LoadBalancerRequest* r) {
  std::vector<Holder>& hs = owners_[ip];
  for (const Holder& h : hs)
    if (h.key == key) return;
  hs.push_back({key, r});
}

// Invalid services keep what they have while it is still in a pool.
void LbAllocator::hold(const std::string& key, ServiceAllocation& a, const LoadBalancerRequest* r) {
  if (std::erase_if(a.loadBalancerIPs, [&](const IpAddr& ip) {
        if (!poolOf(ip) || !conflict(ip, r).empty()) return true;
        take(ip, key, r);
        return false;
      }))
    rec_.edits++;
}

// At most one address per family of the request, primary family first.
void LbAllocator::keep(const LoadBalancerRequest& r, const std::map<bool, Plan>& plans,
                       ServiceAllocation& a) {
  std::vector<IpAddr> kept;
  for (const auto& ip : a.loadBalancerIPs) {
    const AddressPool* pool = poolOf(ip);
    auto pit = plans.find(ip.isV4());
    if (pit == plans.end()) continue;  // a family the service no longer has
    const Plan& p = pit->second;
    bool dup = std::any_of(kept.begin(), kept.end(), [&](const IpAddr& k) { return k.isV4() == ip.isV4(); });
    bool ok = p.error.empty() && !dup && pool &&
              (r.pool.empty() || pool->name == r.pool) && (!p.want || *p.want == ip) &&
              conflict(ip, &r).empty();
    if (!ok) continue;
    kept.push_back(ip);
    take(ip, r.key, &r);
  }
  std::stable_sort(kept.begin(), kept.end(),
                   [&](const IpAddr& x, const IpAddr& y) { return (x.isV4() == r.v4) > (y.isV4() == r.v4); });
  if (a.loadBalancerIPs != kept) rec_.edits++;
  a.loadBalancerIPs = kept;
}

// Step 2b: the stored status's address of each family, when it passes the
// checks of keep(); it replaces a recorded address of that family.
void LbAllocator::seed(const LoadBalancerRequest& r, const std::map<bool, Plan>& plans,
                       LoadBalancerResult* res) {
  for (bool v4 : r.families()) {
    auto ip = std::find_if(r.statusIPs.begin(), r.statusIPs.end(),
                           [&](const IpAddr& a) { return a.isV4() == v4; });
    if (ip == r.statusIPs.end()) continue;
    auto pit = plans.find(v4);
    if (pit == plans.end() || !pit->second.error.empty()) continue;
    const Plan& p = pit->second;
    const AddressPool* pool = poolOf(*ip);
    if (!pool || (!r.pool.empty() && pool->name != r.pool) || (p.want && *p.want != *ip)) continue;
    std::string why = conflict(*ip, &r);
    if (!why.empty()) {
      // Another service's status (seeded earlier: older, or as old and
      // first by ns/name) or a held invalid service has it.
      res->warning += (res->warning.empty() ? "" : "; ") + ip->str() +
                      " is also claimed by another service: " + why +
                      " (older creationTimestamp, then ns/name, keeps it)";
      continue;
    }
    std::vector<IpAddr>& ips = rec_.services[r.key].loadBalancerIPs;
    if (std::find(ips.begin(), ips.end(), *ip) != ips.end()) {
      take(*ip, r.key, &r);  // holds it already: claimed, no edit
      continue;
    }
    if (std::erase_if(ips, [&](const IpAddr& a) { return a.isV4() == v4; })) rec_.edits++;
    assign(r, *ip);
  }
}

// Adds ip to the service's addresses, the primary family's first.
void LbAllocator::assign(const LoadBalancerRequest& r, const IpAddr& ip) {
  std::vector<IpAddr>& ips = rec_.services[r.key].loadBalancerIPs;
  if (ip.isV4() == r.v4)
    ips.insert(ips.begin(), ip);
  else
    ips.push_back(ip);
  rec_.edits++;
  take(ip, r.key, &r);
}

void LbAllocator::requested(const LoadBalancerRequest& r, const Plan& p, LoadBalancerResult* res,
                            bool dry) {
  const IpAddr& ip = *p.want;
  const AddressPool* pool = poolOf(ip);
  res->field = r.requestedField;
  if (!pool) {
    res->error = notInPool(ip);
  } else if (!r.pool.empty() && pool->name != r.pool) {
    res->error = ip.str() + " is in address pool " + pool->name + ", not in " + r.pool +
                 " (annotation " + kAddressPoolAnnotation + ")";
  } else {
    res->error = conflict(ip, &r);
  }
  if (!res->error.empty()) return;
  res->field.clear();
  if (!dry) assign(r, ip);
}

std::optional<IpAddr> LbAllocator::shared(const AddressPool& pool, const LoadBalancerRequest& r,
                                          bool v4) const {
  for (const auto& [ip, holders] : owners_)
    if (!holders.empty() && ip.isV4() == v4 && poolOf(ip) == &pool && conflict(ip, &r).empty())
      return ip;
  return std::nullopt;
}

// Stops at the first address not held, so it costs at most the number of
// held (and skipped) addresses, whatever the size of the range.
std::optional<IpAddr> LbAllocator::firstFree(const AddressPool& pool, bool v4) const {
  for (const auto& range : pool.ranges) {
    if (range.first.isV4() != v4) continue;
    for (IpAddr ip = range.first;; ip = nextAddress(ip)) {
      if (pool.contains(ip) && !owned(ip) && poolOf(ip) == &pool) return ip;
      if (ip == range.last) break;
    }
  }
  return std::nullopt;
}

std::vector<const AddressPool*> LbAllocator::candidates(const LoadBalancerRequest& r,
                                                        bool v4) const {
  std::vector<const AddressPool*> out;
  for (const auto& [name, pool] : pools_) {
    bool eligible = r.pool.empty() ? pool.autoAssign : name == r.pool;
    if (eligible && pool.hasFamily(v4)) out.push_back(&pool);
  }
  return out;
}

std::string LbAllocator::noPool(const LoadBalancerRequest& r, bool v4) {
  return r.pool.empty() ? std::string("no auto-assign address pool has ") + familyName(v4) + " addresses"
                        : "address pool " + r.pool + " has no " + familyName(v4) + " addresses";
}

void LbAllocator::dynamic(const LoadBalancerRequest& r, bool v4, LoadBalancerResult* res,
                          bool dry) {
  std::vector<const AddressPool*> candidates = this->candidates(r, v4);
  std::string names;
  for (const AddressPool* pool : candidates) names += (names.empty() ? "" : ", ") + pool->name;
  if (candidates.empty()) {
    res->pending = noPool(r, v4);
    return;
  }
  std::optional<IpAddr> ip;
  if (!r.sharingKey.empty())
    for (const AddressPool* pool : candidates)
      if (!ip) ip = shared(*pool, r, v4);
  for (const AddressPool* pool : candidates)
    if (!ip) ip = firstFree(*pool, v4);
  if (!ip) {
    res->pending = std::string("no available ") + (r.dualStack ? familyName(v4) : "") +
                   (r.dualStack ? " " : "") + "IPs in pool(s) " + names;
    return;
  }
  if (!dry) assign(r, *ip);
}

// Dual-stack is all or nothing: a family with an error in its request, or
// with no requested address, no candidate pool and no address of its own
// (recorded, or in the stored status) in a pool the service may use, can
// never be assigned, so the service ends pending whatever else happens.
bool LbAllocator::surelyPending(const LoadBalancerRequest& r, const std::map<bool, Plan>& plans,
                                const ServiceAllocation* held) const {
  if (!r.dualStack || !r.needsAddress) return false;
  for (bool v4 : r.families()) {
    const Plan& p = plans.at(v4);
    if (!p.error.empty()) return true;
    if (p.want || !candidates(r, v4).empty()) continue;
    auto usable = [&](const IpAddr& ip) {
      const AddressPool* pool = poolOf(ip);
      return ip.isV4() == v4 && pool && (r.pool.empty() || pool->name == r.pool);
    };
    bool own = std::any_of(r.statusIPs.begin(), r.statusIPs.end(), usable) ||
               (held && std::any_of(held->loadBalancerIPs.begin(), held->loadBalancerIPs.end(), usable));
    if (!own) return true;
  }
  return false;
}

std::map<std::string, LoadBalancerResult> LbAllocator::run() {
  // Per service, a plan per family (primary first in families()).
  std::map<std::string, std::map<bool, Plan>> plans;
  for (const auto& r : reqs_)
    if (r.needsAddress)
      for (bool v4 : r.families()) plans[r.key][v4] = plan(r, v4);
  // Entries without LoadBalancer addresses and without a request are left
  // as they are by the passes below: with the record's index kept across
  // calls (the agent's), only the holders and the requests are visited.
  AllocationIndex* ix = rec_.index.p && rec_.index.p->tracked ? rec_.index.p.get() : nullptr;
  if (ix && !ix->lbValid) {
    ix->lbHolders.clear();
    for (const auto& [key, a] : rec_.services)
      if (!a.loadBalancerIPs.empty()) ix->lbHolders.insert(key);
    ix->lbValid = true;
  }
  // Services that end pending whatever the others hold are decided first
  // and hold nothing during the pass: an address they held from before
  // (or would take from their status, a request or a pool) and give back
  // at the end would turn away another service's request or pick in this
  // pass but not in the next one, so the result would depend on history
  // (randomized equality test, dual-stack seed 25 step 336).
  std::set<std::string> decided;
  for (const auto& r : reqs_) {
    if (!r.needsAddress || !r.dualStack) continue;
    auto it = rec_.services.find(r.key);
    if (surelyPending(r, plans[r.key], it == rec_.services.end() ? nullptr : &it->second)) {
      decided.insert(r.key);
      if (it != rec_.services.end() && !it->second.loadBalancerIPs.empty())
        it->second.loadBalancerIPs.clear(), rec_.edits++;
    }
  }
  std::vector<std::pair<const std::string, ServiceAllocation>*> visit;
  if (ix) {
    std::set<std::string> keys = ix->lbHolders;
    for (const auto& r : reqs_) keys.insert(r.key);
    for (const std::string& key : keys) {
      auto it = rec_.services.find(key);
      if (it != rec_.services.end()) visit.push_back(&*it);
    }
  } else {
    for (auto& kv : rec_.services) visit.push_back(&kv);
  }
  for (auto* kv : visit) {
    auto& [key, a] = *kv;
    const LoadBalancerRequest* r = find(key);
    if (r && !r->needsAddress && !r->holdOnly && !a.loadBalancerIPs.empty())
      a.loadBalancerIPs.clear(), rec_.edits++;
  }
  for (auto* kv : visit) {
    auto& [key, a] = *kv;
    const LoadBalancerRequest* r = find(key);
    if (!r || r->holdOnly) hold(key, a, r);
  }
  std::map<std::string, LoadBalancerResult> out;
  std::vector<const LoadBalancerRequest*> seeds;
  for (const auto& r : reqs_)
    if (r.needsAddress && !r.statusIPs.empty() && !decided.count(r.key)) seeds.push_back(&r);
  std::stable_sort(seeds.begin(), seeds.end(), [](const LoadBalancerRequest* x, const LoadBalancerRequest* y) {
    return std::make_tuple(x->created.empty(), x->created, x->key) <
           std::make_tuple(y->created.empty(), y->created, y->key);
  });
  for (const LoadBalancerRequest* r : seeds) seed(*r, plans[r->key], &out[r->key]);
  for (auto* kv : visit) {
    auto& [key, a] = *kv;
    const LoadBalancerRequest* r = find(key);
    if (r && r->needsAddress && !decided.count(key)) keep(*r, plans[key], a);
  }
  auto unassigned = [&](const LoadBalancerRequest& r, bool v4) {
    auto it = rec_.services.find(r.key);
    if (it == rec_.services.end()) return true;
    const auto& ips = it->second.loadBalancerIPs;
    return std::none_of(ips.begin(), ips.end(), [&](const IpAddr& a) { return a.isV4() == v4; });
  };
  // Requests of every service and family before any dynamic pick.
  for (const auto& r : reqs_) {
    if (!r.needsAddress || decided.count(r.key)) continue;
    LoadBalancerResult& res = out[r.key];
    for (bool v4 : r.families()) {
      const Plan& p = plans[r.key][v4];
      if (!res.error.empty()) break;
      if (!p.error.empty()) {
        res.field = p.field;
        res.error = p.error;
      } else if (p.want && unassigned(r, v4)) {
        requested(r, p, &res);
      }
    }
  }
  for (const auto& r : reqs_) {
    if (!r.needsAddress || decided.count(r.key)) continue;
    LoadBalancerResult& res = out[r.key];
    // The pending text names the last family that failed. Under all or
    // nothing a family held from before but out of every candidate pool
    // counts as failed when the service ends pending anyway: a build from
    // scratch holds nothing of a pending service and fails there too, so
    // the text does not depend on what was held.
    std::string last;
    for (bool v4 : r.families()) {
      if (!res.error.empty() || plans[r.key][v4].want) continue;
      if (unassigned(r, v4)) {
        std::string prev = std::exchange(res.pending, "");
        dynamic(r, v4, &res);
        if (res.pending.empty()) res.pending = prev;
        else last = res.pending;
      } else if (r.dualStack && candidates(r, v4).empty()) {
        last = noPool(r, v4);
      }
    }
    if (!res.pending.empty()) res.pending = last;
  }
  // The decided services' texts, as the passes above would give them with
  // nothing held, against what every other service holds now.
  for (const auto& r : reqs_) {
    if (!decided.count(r.key)) continue;
    LoadBalancerResult& res = out[r.key];
    for (bool v4 : r.families()) {
      const Plan& p = plans[r.key][v4];
      if (!res.error.empty()) break;
      if (!p.error.empty()) {
        res.field = p.field;
        res.error = p.error;
      } else if (p.want) {
        requested(r, p, &res, true);
      }
    }
    std::string last;
    for (bool v4 : r.families()) {
      if (!res.error.empty() || plans[r.key][v4].want) continue;
      std::string prev = std::exchange(res.pending, "");
      dynamic(r, v4, &res, true);
      if (res.pending.empty()) res.pending = prev;
      else last = res.pending;
    }
    if (!res.pending.empty()) res.pending = last;
  }
  for (auto& [key, res] : out) {
    if (!res.error.empty()) res.pending = res.field + ": " + res.error;
    auto it = rec_.services.find(key);
    // Dual-stack is all or nothing, as in MetalLB: one family short leaves
    // the service pending, its other address released.
    const LoadBalancerRequest* r = find(key);
    if (it != rec_.services.end() && r && r->dualStack && !res.pending.empty() &&
        !it->second.loadBalancerIPs.empty())
      it->second.loadBalancerIPs.clear(), rec_.edits++;
    if (it != rec_.services.end()) res.ips = it->second.loadBalancerIPs;
  }
  if (ix) {
    // Entries created below (requested, dynamic) are among the requests.
    auto holds = [&](const std::string& key) {
      auto it = rec_.services.find(key);
      if (it != rec_.services.end() && !it->second.loadBalancerIPs.empty())
        ix->lbHolders.insert(key);
      else
        ix->lbHolders.erase(key);
    };
    for (auto* kv : visit) holds(kv->first);
    for (const auto& r : reqs_) holds(r.key);
  } else if (rec_.index.p) {
    rec_.index.p->lbValid = false;
  }
  return out;
}

}  // namespace

std::map<std::string, LoadBalancerResult> allocateLoadBalancerIPs(
    AllocationRecord& record, const std::vector<LoadBalancerRequest>& requests,
    const std::map<std::string, AddressPool>& pools) {
  return LbAllocator(record, requests, pools).run();
}

}  // namespace ferry
