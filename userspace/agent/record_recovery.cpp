#include "agent/record_recovery.h"

#include <algorithm>
#include <map>
#include <set>

namespace ferry {

namespace {

using PortSet = std::set<std::pair<uint16_t, uint8_t>>;  // (port, IP protocol number)

uint8_t protoNumber(Protocol p) { return p == Protocol::UDP ? 17 : 6; }

PortSet portsOf(const Service& s) {
  PortSet out;
  for (const ServicePort& p : s.ports) out.insert({p.port, protoNumber(p.protocol)});
  return out;
}

bool inCidrs(const IpAddr& a, const std::vector<IpPrefix>& cidrs) {
  return std::any_of(cidrs.begin(), cidrs.end(), [&](const IpPrefix& c) { return c.contains(a); });
}

// Where the allocator would start for `key` with an empty record: its pick
// in a throw-away record.
std::optional<IpAddr> dynamicPick(const std::string& key, const std::vector<IpPrefix>& cidrs) {
  AllocationRecord scratch;
  AllocationRequest r;
  r.key = key;
  auto res = allocateClusterIPs(scratch, {r}, {key}, cidrs, "");
  auto it = res.find(key);
  if (it == res.end() || it->second.clusterIPs.empty()) return std::nullopt;
  return it->second.clusterIPs[0];
}

}  // namespace

AllocationRecord recoverRecord(const ProgrammedState& pinned, const std::vector<Service>& services,
                               const std::vector<IpPrefix>& cidrs, const std::string& now) {
  AllocationRecord rec;
  std::set<IpAddr> taken;
  for (const Service& s : services) {
    ServiceAllocation& a = rec.services[s.key()];
    a.created = s.creationTimestamp.empty() ? now : s.creationTimestamp.str();
    for (const IpAddr& ip : s.clusterIPs) {
      a.clusterIPs.push_back(ip);
      taken.insert(ip);
    }
    for (size_t i = 0; i < s.ports.size(); ++i)
      if (s.ports[i].nodePort)
        a.nodePorts[nodePortKey(s.ports[i].name, i, s.ports[i].protocol)] = s.ports[i].nodePort;
    a.healthCheckNodePort = s.healthCheckNodePort;
  }

  // Pinned ClusterIP frontends, by address.
  std::map<IpAddr, PortSet> programmed;
  for (const auto& [fk, f] : pinned.frontends)
    if (fk.scope == FERRY_SCOPE_CLUSTER && inCidrs(fk.addr, cidrs) && !taken.count(fk.addr))
      programmed[fk.addr].insert({fk.port, fk.proto});

  // Services that want a dynamic address, with their candidates.
  std::map<std::string, std::vector<IpAddr>> candidates;
  for (const Service& s : services) {
    if (!s.clusterIPs.empty() || s.headless || s.type == ServiceType::ExternalName) continue;
    PortSet want = portsOf(s);
    for (const auto& [addr, ports] : programmed)
      if (ports == want) candidates[s.key()].push_back(addr);
  }
  // Unambiguous ones first, repeatedly; then the rest by closeness to the
  // allocator's own pick.
  for (bool progress = true; progress;) {
    progress = false;
    for (auto it = candidates.begin(); it != candidates.end();) {
      std::erase_if(it->second, [&](const IpAddr& a) { return taken.count(a) > 0; });
      if (it->second.size() != 1) {
        it = it->second.empty() ? candidates.erase(it) : std::next(it);
        continue;
      }
      rec.services[it->first].clusterIPs = {it->second[0]};
      taken.insert(it->second[0]);
      it = candidates.erase(it);
      progress = true;
    }
  }
  for (auto& [key, cands] : candidates) {
    std::erase_if(cands, [&](const IpAddr& a) { return taken.count(a) > 0; });
    if (cands.empty()) continue;
    std::optional<IpAddr> start = dynamicPick(key, cidrs);
    IpAddr best = cands.front();
    if (start) {
      auto above = std::lower_bound(cands.begin(), cands.end(), *start);
      best = above != cands.end() ? *above : cands.front();  // probing wraps
    }
    rec.services[key].clusterIPs = {best};
    taken.insert(best);
  }
  return rec;
}

}  // namespace ferry
