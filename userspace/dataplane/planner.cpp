#include "dataplane/planner.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cstring>
#include <optional>
#include <set>

namespace ferry {

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

// Adds one frontend with the service port's ready endpoints of its family
// (only this node's with `localOnly`).
void addFrontend(Desired& d, const FrontendKey& fk, const std::string& owner,
                 const ServicePort& sp, const std::string& nodeName, bool localOnly) {
  DesiredFrontend& fe = d.frontends[fk];
  fe = DesiredFrontend{};  // a frontend two services claim: the later one (key order) wins whole
  fe.owner = owner;
  fe.flags = localOnly ? FERRY_SVC_F_LOCAL : 0;
  std::set<BackendKey> uniq;
  for (const Endpoint& ep : sp.endpoints) {
    if (!ep.ready || ep.ip.isV4() != fk.addr.isV4() || ep.port == 0) continue;
    bool local = !nodeName.empty() && ep.nodeName == nodeName;
    if (localOnly && !local) continue;
    BackendKey bk{ep.ip, ep.port, fk.proto};
    uniq.insert(bk);
    d.backendFlags[bk] |= local ? FERRY_BE_F_LOCAL : 0;
  }
  fe.backends.assign(uniq.begin(), uniq.end());
}

}  // namespace

void addServiceFrontends(Desired& d, const std::string& key, const Service& svc,
                         const std::string& nodeName) {
  if (svc.type == ServiceType::ExternalName) return;
  bool local = svc.externalTrafficLocal &&
               (svc.type == ServiceType::NodePort || svc.type == ServiceType::LoadBalancer);
  for (const ServicePort& sp : svc.ports) {
    if (sp.protocol != Protocol::TCP && sp.protocol != Protocol::UDP) continue;
    uint8_t proto = static_cast<uint8_t>(sp.protocol);
    std::string owner = "Service " + key + " port " + (sp.name.empty() ? "" : sp.name + " ") +
                        "(" + std::to_string(sp.port) + "/" + protocolName(sp.protocol) + ")";
    if (!svc.headless) {
      for (const IpAddr& vip : svc.clusterIPs)
        addFrontend(d, {vip, sp.port, proto, FERRY_SCOPE_CLUSTER}, owner, sp, nodeName, false);
    }
    if (sp.nodePort) {
      // One per family the service has (the datapath serves IPv4 ones so far).
      bool fam[2] = {false, svc.clusterIPs.empty()};  // [0] IPv6, [1] IPv4
      for (const IpAddr& vip : svc.clusterIPs) fam[vip.isV4()] = true;
      for (bool v4 : {true, false}) {
        if (!fam[v4]) continue;
        addFrontend(d, {nodePortAddr(v4), sp.nodePort, proto, FERRY_SCOPE_EXTERNAL},
                    owner + " nodePort " + std::to_string(sp.nodePort), sp, nodeName, local);
      }
    }
    for (const IpAddr& ext : svc.externalIPs)
      addFrontend(d, {ext, sp.port, proto, FERRY_SCOPE_EXTERNAL},
                  owner + " externalIP " + ext.str(), sp, nodeName, local);
    if (svc.type != ServiceType::LoadBalancer) continue;
    for (const IpAddr& lb : svc.loadBalancerIngress) {
      FrontendKey fk{lb, sp.port, proto, FERRY_SCOPE_EXTERNAL};
      addFrontend(d, fk, owner + " loadBalancer " + lb.str(), sp, nodeName, local);
      for (const IpPrefix& r : svc.loadBalancerSourceRanges)
        if (r.addr.isV4() == lb.isV4()) d.frontends[fk].sourceRanges.push_back(r);
    }
  }
}

Desired desiredFromSnapshot(const ClusterSnapshot& snap, const std::string& nodeName) {
  Desired d;
  for (const auto& [key, svc] : snap.services) addServiceFrontends(d, key, svc, nodeName);
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

// The (service id, backend id) pairs of one frontend follow its slots:
// ferry_members is what established flows are checked against.
static void planMembers(ProgrammedState& st, uint32_t svcId, const std::vector<uint32_t>& oldSlots,
                 const std::vector<uint32_t>& newSlots, MapDelta& delta) {
  std::set<uint32_t> before(oldSlots.begin(), oldSlots.end());
  std::set<uint32_t> after(newSlots.begin(), newSlots.end());
  for (uint32_t id : after)
    if (!before.count(id) && st.members.insert({svcId, id}).second)
      delta.memberUpserts.push_back({svcId, id});
  for (uint32_t id : before)
    if (!after.count(id) && st.members.erase({svcId, id}))
      delta.memberDeletes.push_back({svcId, id});
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
    planMembers(st, it->second.svcId, it->second.slots, {}, delta);
    st.frontends.erase(it);
    return;
  }
  std::vector<uint32_t> ids;
  for (const BackendKey& bk : fe->backends) ids.push_back(st.backends.at(bk).id);
  ProgrammedFrontend pf;
  std::vector<uint32_t> oldSlots;
  uint16_t oldCount = 0, oldFlags = 0;
  if (existed) {
    pf.svcId = it->second.svcId;
    oldSlots = it->second.slots;
    oldCount = it->second.count;
    oldFlags = it->second.flags;
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
  if (!existed || oldCount != pf.count || oldFlags != pf.flags) {
    ferry_svc_value master{};
    master.svc_id = pf.svcId;
    master.count = pf.count;
    master.flags = pf.flags;
    delta.masterUpserts.push_back({toSvcKey(fk, 0), master, fe->owner});
  }
  for (size_t i = pf.slots.size(); i < oldSlots.size(); ++i)
    delta.slotDeletes.push_back(toSvcKey(fk, i + 1));
  planMembers(st, pf.svcId, oldSlots, pf.slots, delta);
  st.frontends[fk] = std::move(pf);
}

MapDelta planDelta(const ProgrammedState& cur, const Desired& want, ProgrammedState* next) {
  MapDelta delta;
  // Read from `cur`, build the new state beside it: copying a state of
  // 100,000 entries per sync would cost more than the diff itself.
  const ProgrammedState& st = cur;
  uint32_t nextBackendId = cur.nextBackendId, nextSvcId = cur.nextSvcId;

  // Backends: keep ids of those that stay; new ones get fresh ids.
  std::map<BackendKey, ProgrammedBackend> backends;
  for (const auto& [bk, flags] : want.backendFlags) {
    auto it = st.backends.find(bk);
    ProgrammedBackend pb;
    if (it != st.backends.end()) {
      pb = it->second;
    } else {
      pb.id = nextBackendId++;
    }
    bool changed = it == st.backends.end() || pb.flags != flags;
    pb.flags = flags;
    if (changed) delta.backendUpserts.emplace_back(pb.id, toBackend(bk, flags));
    backends[bk] = pb;
  }
  for (const auto& [bk, pb] : st.backends)
    if (!backends.count(bk)) delta.backendDeletes.push_back(pb.id);

  std::map<FrontendKey, ProgrammedFrontend> frontends;
  std::set<std::pair<uint32_t, IpPrefix>> srcRanges;
  for (const auto& [fk, fe] : want.frontends) {
    std::vector<uint32_t> ids;
    for (const BackendKey& bk : fe.backends) ids.push_back(backends.at(bk).id);
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
    for (const IpPrefix& r : fe.sourceRanges) srcRanges.insert({pf.svcId, r});
    if (!existed || oldCount != pf.count || it->second.flags != pf.flags) {
      ferry_svc_value master{};
      master.svc_id = pf.svcId;
      master.count = pf.count;
      master.flags = pf.flags;
      delta.masterUpserts.push_back({toSvcKey(fk, 0), master, fe.owner});
    }
    for (size_t i = pf.slots.size(); i < oldSlots.size(); ++i)
      delta.slotDeletes.push_back(toSvcKey(fk, i + 1));
    frontends[fk] = pf;
  }
  for (const auto& [fk, pf] : st.frontends) {
    if (frontends.count(fk)) continue;
    delta.masterDeletes.push_back(toSvcKey(fk, 0));
    for (size_t i = 0; i < pf.slots.size(); ++i) delta.slotDeletes.push_back(toSvcKey(fk, i + 1));
  }

  for (const auto& r : srcRanges)
    if (!st.srcRanges.count(r)) delta.srcRangeUpserts.push_back(toSrcRangeKey(r.first, r.second));
  for (const auto& r : st.srcRanges)
    if (!srcRanges.count(r)) delta.srcRangeDeletes.push_back(toSrcRangeKey(r.first, r.second));

  std::set<std::pair<uint32_t, uint32_t>> members;
  for (const auto& [fk, pf] : frontends)
    for (uint32_t id : pf.slots) members.insert({pf.svcId, id});
  for (const auto& m : members)
    if (!st.members.count(m)) delta.memberUpserts.push_back({m.first, m.second});
  for (const auto& m : st.members)
    if (!members.count(m)) delta.memberDeletes.push_back({m.first, m.second});

  next->members = std::move(members);
  next->backends = std::move(backends);
  next->frontends = std::move(frontends);
  next->srcRanges = std::move(srcRanges);
  next->nextBackendId = nextBackendId;
  next->nextSvcId = nextSvcId;
  return delta;
}

}  // namespace ferry
