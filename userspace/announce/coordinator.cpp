#include "announce/coordinator.h"

namespace ferry {

std::vector<Announceable> announceables(const ClusterSnapshot& snap) {
  std::vector<Announceable> out;
  for (const auto& [key, svc] : snap.services) {
    if (svc.type != ServiceType::LoadBalancer) continue;
    if (svc.loadBalancerIngress.empty()) continue;  // pending: no address assigned
    std::set<std::string> local;
    if (svc.externalTrafficLocal)
      for (const ServicePort& sp : svc.ports)
        for (const Endpoint& ep : sp.endpoints)
          if (ep.ready && !ep.nodeName.empty()) local.insert(ep.nodeName);
    for (const IpAddr& a : svc.loadBalancerIngress)
      out.push_back({a, svc.externalTrafficLocal, local, key});
  }
  return out;
}

const std::set<IpAddr>& LbAnnouncement::compute(const std::vector<Lease>& leases, WallTime now) {
  owners_ = chooseOwners(addrs_, nodeCandidates(nodes_, leases, now));
  owned_.clear();
  for (const auto& [addr, node] : owners_)
    if (node == node_) owned_.insert(addr);
  return owned_;
}

std::vector<IpAddr> LbAnnouncement::unowned() const {
  std::set<IpAddr> out;
  for (const Announceable& a : addrs_)
    if (!owners_.count(a.addr)) out.insert(a.addr);
  return {out.begin(), out.end()};
}

}  // namespace ferry
