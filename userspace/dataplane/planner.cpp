#include "dataplane/planner.h"

#include <iterator>
#include <unordered_map>

#include <arpa/inet.h>

#include <algorithm>
#include <cstring>
#include <optional>
#include <set>

#include "model/endpoint_sets.h"

namespace ferry {

size_t BackendKeyHash::operator()(const BackendKey& k) const noexcept {
  // FNV-1a over the 19 bytes of the key, then a final mix.
  uint64_t h = 1469598103934665603ull;
  auto mix = [&h](uint8_t b) { h = (h ^ b) * 1099511628211ull; };
  for (uint8_t b : k.addr.bytes) mix(b);
  mix(uint8_t(k.port >> 8));
  mix(uint8_t(k.port));
  mix(k.proto);
  return size_t(h ^ (h >> 29));
}

std::string FrontendKey::str() const {
  return addr.str() + ":" + std::to_string(port) + "/" + (proto == 6 ? "TCP" : "UDP");
}

ferry_addr toAbiAddr(const IpAddr& a) {
  ferry_addr out{};
  std::memcpy(out.b, a.bytes.data(), 16);
  return out;
}

static IpAddr fromAbiAddr(const ferry_addr& a) {
  IpAddr out;
  std::memcpy(out.bytes.data(), a.b, 16);
  return out;
}

ferry_src_range_key toSrcRangeKey(uint32_t svcId, const IpPrefix& p) {
  ferry_src_range_key k{};
  k.prefixlen = 32 + (p.addr.isV4() ? 96 + p.len : p.len);
  k.svc_id = svcId;
  k.addr = toAbiAddr(p.addr);
  return k;
}

std::pair<uint32_t, IpPrefix> fromSrcRangeKey(const ferry_src_range_key& k) {
  IpPrefix p;
  p.addr = fromAbiAddr(k.addr);
  int bits = static_cast<int>(k.prefixlen) - 32;
  p.len = p.addr.isV4() ? bits - 96 : bits;
  return {k.svc_id, p};
}

ferry_svc_key toSvcKey(const FrontendKey& f, uint16_t slot) {
  ferry_svc_key k{};
  k.addr = toAbiAddr(f.addr);
  k.port = htons(f.port);
  k.proto = f.proto;
  k.scope = f.scope;
  k.slot = slot;
  return k;
}

FrontendKey fromSvcKey(const ferry_svc_key& k) {
  return FrontendKey{fromAbiAddr(k.addr), ntohs(k.port), k.proto, k.scope};
}

ferry_backend toBackend(const BackendKey& b, uint8_t flags) {
  ferry_backend v{};
  v.addr = toAbiAddr(b.addr);
  v.port = htons(b.port);
  v.proto = b.proto;
  v.flags = flags;
  return v;
}

BackendKey fromBackend(const ferry_backend& b) {
  return BackendKey{fromAbiAddr(b.addr), ntohs(b.port), b.proto};
}

IpAddr nodePortAddr(bool v4) { return v4 ? IpAddr::fromV4(0) : IpAddr{}; }

namespace {

bool gDefaultMaglev = false;

// FERRY_SVC_F_MAGLEV for the external frontends of `svc`.
uint16_t maglevFlag(const Service& svc) {
  auto it = svc.annotations.find(kLbAlgorithmAnnotation);
  bool on = it == svc.annotations.end() ? gDefaultMaglev : it->second == "maglev";
  return on ? FERRY_SVC_F_MAGLEV : 0;
}

}  // namespace

void setDefaultMaglev(bool maglev) { gDefaultMaglev = maglev; }

namespace {

// Adds one frontend: new flows go to `use`; the other endpoints of
// `keepFrom` that are ready or terminating keep their established flows.
void addFrontend(Desired& d, const FrontendKey& fk, const std::string& owner,
                 const std::vector<const Endpoint*>& use, const std::vector<const Endpoint*>& keepFrom,
                 const Service& svc, const std::string& nodeName, uint16_t flags) {
  DesiredFrontend& fe = d.frontends[fk];
  fe = DesiredFrontend{};  // a frontend two services claim: the later one (key order) wins whole
  fe.owner = owner;
  fe.flags = flags;
  if (fk.scope == FERRY_SCOPE_EXTERNAL) fe.flags |= maglevFlag(svc);
  fe.affinityTimeout = svc.sessionAffinityTimeout;
  std::set<BackendKey> uniq, kept;
  auto backend = [&](const Endpoint* ep) {
    BackendKey bk{ep->ip, ep->port, fk.proto};
    bool local = !nodeName.empty() && ep->nodeName == nodeName;
    d.backendFlags[bk] |= local ? FERRY_BE_F_LOCAL : 0;
    return bk;
  };
  for (const Endpoint* ep : use) uniq.insert(backend(ep));
  for (const Endpoint* ep : keepFrom) {
    if (!endpointReady(*ep, svc) && !ep->terminating) continue;
    BackendKey bk{ep->ip, ep->port, fk.proto};
    if (!uniq.count(bk)) kept.insert(backend(ep));
  }
  fe.backends.assign(uniq.begin(), uniq.end());
  fe.keep.assign(kept.begin(), kept.end());
}

// One port's endpoint sets for one family, with the frontends that use them.
struct PortSets {
  std::vector<const Endpoint*> all, local;
  EndpointSets sets;
};

PortSets portSets(const ServicePort& sp, bool v4, const Service& svc, const NodeTopology& node) {
  PortSets p;
  for (const Endpoint& ep : sp.endpoints) {
    if (ep.ip.isV4() != v4 || ep.port == 0) continue;
    p.all.push_back(&ep);
    if (!node.name.empty() && ep.nodeName == node.name) p.local.push_back(&ep);
  }
  p.sets = categorizeEndpoints(p.all, svc, node);
  return p;
}

}  // namespace

void addServiceFrontends(Desired& d, const std::string& key, const Service& svc,
                         const std::string& nodeName, const std::map<std::string, Node>* nodes) {
  if (svc.type == ServiceType::ExternalName) return;
  static const std::map<std::string, Node> kNoNodes;
  NodeTopology node = NodeTopology::of(nodeName, nodes ? *nodes : kNoNodes);
  bool extLocal = svc.externalTrafficLocal &&
                  (svc.type == ServiceType::NodePort || svc.type == ServiceType::LoadBalancer);
  for (const ServicePort& sp : svc.ports) {
    if (sp.protocol != Protocol::TCP && sp.protocol != Protocol::UDP) continue;
    uint8_t proto = static_cast<uint8_t>(sp.protocol);
    std::string owner = "Service " + key + " port " + (sp.name.empty() ? "" : sp.name + " ") +
                        "(" + std::to_string(sp.port) + "/" + protocolName(sp.protocol) + ")";
    // Each family's endpoint sets, computed when a frontend of it exists.
    std::optional<PortSets> sets[2];  // [0] IPv6, [1] IPv4
    auto famSets = [&](bool v4) -> const PortSets& {
      if (!sets[v4]) sets[v4] = portSets(sp, v4, svc, node);
      return *sets[v4];
    };
    // External frontends: Local keeps this node's endpoints and drops
    // where there are none.
    auto external = [&](const FrontendKey& fk, const std::string& what) {
      const PortSets& f = famSets(fk.addr.isV4());
      if (extLocal)
        addFrontend(d, fk, owner + what, f.sets.local, f.local, svc, nodeName, FERRY_SVC_F_LOCAL);
      else
        addFrontend(d, fk, owner + what, f.sets.cluster, f.all, svc, nodeName, 0);
    };
    if (!svc.headless) {
      for (const IpAddr& vip : svc.clusterIPs) {
        const PortSets& fam = famSets(vip.isV4());
        FrontendKey fk{vip, sp.port, proto, FERRY_SCOPE_CLUSTER};
        // internalTrafficPolicy Local: drop (not reject) without a local
        // endpoint while the service has endpoints elsewhere, as kube-proxy.
        if (svc.internalTrafficLocal)
          addFrontend(d, fk, owner, fam.sets.local, fam.local, svc, nodeName,
                      fam.sets.hasAny ? FERRY_SVC_F_LOCAL : 0);
        else
          addFrontend(d, fk, owner, fam.sets.cluster, fam.all, svc, nodeName, 0);
      }
    }
    if (sp.nodePort) {
      // One per family the service has (the datapath serves IPv4 ones so far).
      bool fam[2] = {false, svc.clusterIPs.empty()};  // [0] IPv6, [1] IPv4
      for (const IpAddr& vip : svc.clusterIPs) fam[vip.isV4()] = true;
      for (bool v4 : {true, false})
        if (fam[v4])
          external({nodePortAddr(v4), sp.nodePort, proto, FERRY_SCOPE_EXTERNAL},
                   " nodePort " + std::to_string(sp.nodePort));
    }
    for (const IpAddr& ext : svc.externalIPs)
      external({ext, sp.port, proto, FERRY_SCOPE_EXTERNAL}, " externalIP " + ext.str());
    if (svc.type != ServiceType::LoadBalancer) continue;
    for (const IpAddr& lb : svc.loadBalancerIngress) {
      FrontendKey fk{lb, sp.port, proto, FERRY_SCOPE_EXTERNAL};
      external(fk, " loadBalancer " + lb.str());
      for (const IpPrefix& r : svc.loadBalancerSourceRanges)
        if (r.addr.isV4() == lb.isV4()) d.frontends[fk].sourceRanges.push_back(r);
    }
  }
}

Desired desiredFromSnapshot(const ClusterSnapshot& snap, const std::string& nodeName) {
  Desired d;
  for (const auto& [key, svc] : snap.services)
    addServiceFrontends(d, key, svc, nodeName, &snap.nodes);
  return d;
}

std::vector<uint32_t> relayoutSlots(const std::vector<uint32_t>& old,
                                    const std::vector<uint32_t>& wanted) {
  std::set<uint32_t> want(wanted.begin(), wanted.end());
  std::vector<std::optional<uint32_t>> slots;
  std::set<uint32_t> placed;
  for (uint32_t id : old) {
    if (want.count(id) && !placed.count(id)) {
      slots.emplace_back(id);
      placed.insert(id);
    } else {
      slots.emplace_back(std::nullopt);
    }
  }
  std::vector<uint32_t> toAdd;
  for (uint32_t id : wanted)
    if (!placed.count(id)) toAdd.push_back(id);
  size_t next = 0;
  for (auto& s : slots)
    if (!s && next < toAdd.size()) s = toAdd[next++];
  while (next < toAdd.size()) slots.emplace_back(toAdd[next++]);
  // Fill remaining holes with the tail, then cut the tail off.
  for (size_t i = 0; i < slots.size(); ++i) {
    if (slots[i]) continue;
    while (!slots.empty() && !slots.back()) slots.pop_back();
    if (i >= slots.size()) break;
    slots[i] = slots.back();
    slots.pop_back();
  }
  while (!slots.empty() && !slots.back()) slots.pop_back();
  std::vector<uint32_t> out;
  for (auto& s : slots) out.push_back(*s);
  return out;
}

// The (service id, backend id) pairs of one frontend follow its slots
// and kept backends: ferry_members is what established flows are
// checked against. The old pairs are the ones `st` holds for the id.
static void planMembers(ProgrammedState& st, uint32_t svcId, const std::vector<uint32_t>& newSlots,
                        const std::vector<uint32_t>& kept, MapDelta& delta) {
  // backend id -> kept only (no slot: established flows, no new ones)
  std::map<uint32_t, bool> after;
  for (uint32_t id : kept) after[id] = true;
  for (uint32_t id : newSlots) after[id] = false;
  auto upsert = [&](uint32_t id, bool keepOnly) {
    delta.memberUpserts.push_back({svcId, id});
    delta.memberValues.push_back(keepOnly ? FERRY_MEMBER_KEEP : FERRY_MEMBER_NEW);
    if (keepOnly)
      st.keptOnly.insert({svcId, id});
    else
      st.keptOnly.erase({svcId, id});
  };
  for (auto m = st.members.lower_bound({svcId, 0}); m != st.members.end() && m->first == svcId;) {
    auto a = after.find(m->second);
    if (a != after.end()) {
      if (st.keptOnly.count(*m) != a->second) upsert(a->first, a->second);  // slot <-> kept
      after.erase(a);
      ++m;
      continue;
    }
    delta.memberDeletes.push_back({m->first, m->second});
    st.keptOnly.erase(*m);
    m = st.members.erase(m);
  }
  for (const auto& [id, keepOnly] : after) {
    st.members.insert({svcId, id});
    upsert(id, keepOnly);
  }
}

// A frontend's Maglev table follows its backends (ids in fe->backends'
// order, `ids`): rebuilt when that list changes, deleted when the frontend
// goes, has no backend or stops asking for Maglev. `cur` may be `next`.
static void planMaglev(const std::map<uint32_t, std::vector<uint32_t>>& cur, uint32_t svcId,
                       const DesiredFrontend* fe, const std::vector<uint32_t>& ids,
                       MapDelta& delta, std::map<uint32_t, std::vector<uint32_t>>& next) {
  bool want = fe && (fe->flags & FERRY_SVC_F_MAGLEV) && !ids.empty();
  auto it = cur.find(svcId);
  bool had = it != cur.end();
  if (!want) {
    if (had) delta.maglevDeletes.push_back(svcId);
    next.erase(svcId);
    return;
  }
  if (!had || it->second != ids) {
    MapDelta::MaglevUpsert u{svcId, {}, fe->owner};
    for (size_t i = 0; i < ids.size(); ++i) u.backends.emplace_back(fe->backends[i], ids[i]);
    delta.maglevUpserts.push_back(std::move(u));
  }
  next[svcId] = ids;
}

void planFrontend(ProgrammedState& st, const FrontendKey& fk, const DesiredFrontend* fe,
                  MapDelta& delta) {
  auto it = st.frontends.find(fk);
  bool existed = it != st.frontends.end();
  if (!fe) {
    if (!existed) return;
    delta.masterDeletes.push_back(toSvcKey(fk, 0));
    for (size_t i = 0; i < it->second.slots.size(); ++i)
      delta.slotDeletes.push_back(toSvcKey(fk, i + 1));
    for (auto r = st.srcRanges.lower_bound({it->second.svcId, IpPrefix{}});
         r != st.srcRanges.end() && r->first == it->second.svcId;) {
      delta.srcRangeDeletes.push_back(toSrcRangeKey(r->first, r->second));
      r = st.srcRanges.erase(r);
    }
    planMembers(st, it->second.svcId, {}, {}, delta);
    planMaglev(st.maglev, it->second.svcId, nullptr, {}, delta, st.maglev);
    st.frontends.erase(it);
    return;
  }
  std::vector<uint32_t> ids;
  for (const BackendKey& bk : fe->backends) ids.push_back(st.backends.at(bk).id);
  ProgrammedFrontend pf;
  std::vector<uint32_t> oldSlots;
  uint16_t oldCount = 0, oldFlags = 0;
  uint32_t oldAffinity = 0;
  if (existed) {
    pf.svcId = it->second.svcId;
    oldSlots = it->second.slots;
    oldCount = it->second.count;
    oldFlags = it->second.flags;
    oldAffinity = it->second.affinity;
  } else {
    pf.svcId = st.nextSvcId++;
  }
  pf.slots = relayoutSlots(oldSlots, ids);
  for (size_t i = 0; i < pf.slots.size(); ++i) {
    if (i < oldSlots.size() && oldSlots[i] == pf.slots[i]) continue;
    ferry_svc_value v{};
    v.backend_id = pf.slots[i];
    v.svc_id = pf.svcId;
    delta.slotUpserts.push_back({toSvcKey(fk, i + 1), v, fe->owner});
  }
  pf.count = static_cast<uint16_t>(pf.slots.size());
  pf.flags = fe->flags | (fe->sourceRanges.empty() ? 0 : FERRY_SVC_F_SRC_RANGES);
  std::set<IpPrefix> want(fe->sourceRanges.begin(), fe->sourceRanges.end());
  for (auto r = st.srcRanges.lower_bound({pf.svcId, IpPrefix{}});
       r != st.srcRanges.end() && r->first == pf.svcId;) {
    if (want.erase(r->second)) {
      ++r;
      continue;
    }
    delta.srcRangeDeletes.push_back(toSrcRangeKey(r->first, r->second));
    r = st.srcRanges.erase(r);
  }
  for (const IpPrefix& p : want) {
    delta.srcRangeUpserts.push_back(toSrcRangeKey(pf.svcId, p));
    st.srcRanges.insert({pf.svcId, p});
  }
  pf.affinity = fe->affinityTimeout;
  if (!existed || oldCount != pf.count || oldFlags != pf.flags || oldAffinity != pf.affinity) {
    ferry_svc_value master{};
    master.svc_id = pf.svcId;
    master.count = pf.count;
    master.flags = pf.flags;
    master.affinity_timeout_s = pf.affinity;
    delta.masterUpserts.push_back({toSvcKey(fk, 0), master, fe->owner});
  }
  for (size_t i = pf.slots.size(); i < oldSlots.size(); ++i)
    delta.slotDeletes.push_back(toSvcKey(fk, i + 1));
  std::vector<uint32_t> kept;
  for (const BackendKey& bk : fe->keep) kept.push_back(st.backends.at(bk).id);
  planMembers(st, pf.svcId, pf.slots, kept, delta);
  planMaglev(st.maglev, pf.svcId, fe, ids, delta, st.maglev);
  st.frontends[fk] = std::move(pf);
}

MapDelta planDelta(const ProgrammedState& cur, const Desired& want, ProgrammedState* next) {
  MapDelta delta;
  // Read from `cur`, build the new state beside it: copying a state of
  // 100,000 entries per sync would cost more than the diff itself.
  const ProgrammedState& st = cur;
  uint32_t nextBackendId = cur.nextBackendId, nextSvcId = cur.nextSvcId;

  // Backends: keep ids of those that stay; new ones get fresh ids. Both
  // maps are in key order: one merge, no lookups; ids are given in key
  // order as before.
  std::map<BackendKey, ProgrammedBackend> backends;
  std::unordered_map<BackendKey, uint32_t, BackendKeyHash> idOf;
  idOf.reserve(want.backendFlags.size());
  auto old = st.backends.begin();
  for (const auto& [bk, flags] : want.backendFlags) {
    for (; old != st.backends.end() && old->first < bk; ++old)
      delta.backendDeletes.push_back(old->second.id);
    bool had = old != st.backends.end() && old->first == bk;
    ProgrammedBackend pb;
    if (had) {
      pb = old->second;
      ++old;
    } else {
      pb.id = nextBackendId++;
    }
    bool changed = !had || pb.flags != flags;
    pb.flags = flags;
    if (changed) delta.backendUpserts.emplace_back(pb.id, toBackend(bk, flags));
    backends.emplace_hint(backends.end(), bk, pb);
    idOf.emplace(bk, pb.id);
  }
  for (; old != st.backends.end(); ++old) delta.backendDeletes.push_back(old->second.id);

  std::map<FrontendKey, ProgrammedFrontend> frontends;
  std::set<std::pair<uint32_t, IpPrefix>> srcRanges;
  std::map<uint32_t, std::vector<uint32_t>> maglev;
  std::set<uint32_t> liveSvcIds;
  std::vector<std::pair<uint32_t, uint32_t>> memberList, keptList;
  for (const auto& [fk, fe] : want.frontends) {
    std::vector<uint32_t> ids;
    ids.reserve(fe.backends.size());
    for (const BackendKey& bk : fe.backends) ids.push_back(idOf.at(bk));
    auto it = st.frontends.find(fk);
    ProgrammedFrontend pf;
    std::vector<uint32_t> oldSlots;
    bool existed = it != st.frontends.end();
    uint16_t oldCount = 0;
    if (existed) {
      pf.svcId = it->second.svcId;
      oldSlots = it->second.slots;
      oldCount = it->second.count;
    } else {
      pf.svcId = nextSvcId++;
    }
    pf.slots = relayoutSlots(oldSlots, ids);
    for (size_t i = 0; i < pf.slots.size(); ++i) {
      if (i < oldSlots.size() && oldSlots[i] == pf.slots[i]) continue;
      ferry_svc_value v{};
      v.backend_id = pf.slots[i];
      v.svc_id = pf.svcId;
      delta.slotUpserts.push_back({toSvcKey(fk, i + 1), v, fe.owner});
    }
    pf.count = static_cast<uint16_t>(pf.slots.size());
    pf.flags = fe.flags | (fe.sourceRanges.empty() ? 0 : FERRY_SVC_F_SRC_RANGES);
    pf.affinity = fe.affinityTimeout;
    for (const IpPrefix& r : fe.sourceRanges) srcRanges.insert({pf.svcId, r});
    if (!existed || oldCount != pf.count || it->second.flags != pf.flags ||
        it->second.affinity != pf.affinity) {
      ferry_svc_value master{};
      master.svc_id = pf.svcId;
      master.count = pf.count;
      master.flags = pf.flags;
      master.affinity_timeout_s = pf.affinity;
      delta.masterUpserts.push_back({toSvcKey(fk, 0), master, fe.owner});
    }
    for (size_t i = pf.slots.size(); i < oldSlots.size(); ++i)
      delta.slotDeletes.push_back(toSvcKey(fk, i + 1));
    planMaglev(st.maglev, pf.svcId, &fe, ids, delta, maglev);
    liveSvcIds.insert(pf.svcId);
    for (uint32_t id : pf.slots) memberList.emplace_back(pf.svcId, id);
    for (const BackendKey& bk : fe.keep) keptList.emplace_back(pf.svcId, idOf.at(bk));
    frontends.emplace_hint(frontends.end(), fk, std::move(pf));
  }
  for (const auto& [svcId, ids] : st.maglev)  // tables of frontends that went
    if (!liveSvcIds.count(svcId)) delta.maglevDeletes.push_back(svcId);
  for (const auto& [fk, pf] : st.frontends) {
    if (frontends.count(fk)) continue;
    delta.masterDeletes.push_back(toSvcKey(fk, 0));
    for (size_t i = 0; i < pf.slots.size(); ++i) delta.slotDeletes.push_back(toSvcKey(fk, i + 1));
  }

  for (const auto& r : srcRanges)
    if (!st.srcRanges.count(r)) delta.srcRangeUpserts.push_back(toSrcRangeKey(r.first, r.second));
  for (const auto& r : st.srcRanges)
    if (!srcRanges.count(r)) delta.srcRangeDeletes.push_back(toSrcRangeKey(r.first, r.second));

  // Members: the slots' pairs, then the kept pairs not among them (sorted
  // vectors, then sets built from sorted ranges in linear time).
  std::sort(memberList.begin(), memberList.end());
  memberList.erase(std::unique(memberList.begin(), memberList.end()), memberList.end());
  std::sort(keptList.begin(), keptList.end());
  keptList.erase(std::unique(keptList.begin(), keptList.end()), keptList.end());
  std::vector<std::pair<uint32_t, uint32_t>> keptOnlyList;
  std::set_difference(keptList.begin(), keptList.end(), memberList.begin(), memberList.end(),
                      std::back_inserter(keptOnlyList));
  std::set<std::pair<uint32_t, uint32_t>> keptOnly(keptOnlyList.begin(), keptOnlyList.end());
  std::vector<std::pair<uint32_t, uint32_t>> all;
  all.reserve(memberList.size() + keptOnlyList.size());
  std::merge(memberList.begin(), memberList.end(), keptOnlyList.begin(), keptOnlyList.end(),
             std::back_inserter(all));
  std::set<std::pair<uint32_t, uint32_t>> members(all.begin(), all.end());
  {
    auto o = st.members.begin();
    auto k = keptOnly.begin();
    for (const auto& m : all) {
      for (; o != st.members.end() && *o < m; ++o) delta.memberDeletes.push_back({o->first, o->second});
      bool had = o != st.members.end() && *o == m;
      if (had) ++o;
      while (k != keptOnly.end() && *k < m) ++k;
      bool keep = k != keptOnly.end() && *k == m;
      if (!had || st.keptOnly.count(m) != size_t(keep)) {
        delta.memberUpserts.push_back({m.first, m.second});
        delta.memberValues.push_back(keep ? FERRY_MEMBER_KEEP : FERRY_MEMBER_NEW);
      }
    }
    for (; o != st.members.end(); ++o) delta.memberDeletes.push_back({o->first, o->second});
  }

  next->members = std::move(members);
  next->keptOnly = std::move(keptOnly);
  next->backends = std::move(backends);
  next->frontends = std::move(frontends);
  next->srcRanges = std::move(srcRanges);
  next->maglev = std::move(maglev);
  next->nextBackendId = nextBackendId;
  next->nextSvcId = nextSvcId;
  return delta;
}

}  // namespace ferry
