#include "model/snapshot.h"

#include <tuple>

namespace ferry {

const char* protocolName(Protocol p) {
  switch (p) {
    case Protocol::TCP: return "TCP";
    case Protocol::UDP: return "UDP";
    case Protocol::SCTP: return "SCTP";
  }
  return "?";
}

const char* serviceTypeName(ServiceType t) {
  switch (t) {
    case ServiceType::ClusterIP: return "ClusterIP";
    case ServiceType::NodePort: return "NodePort";
    case ServiceType::LoadBalancer: return "LoadBalancer";
    case ServiceType::ExternalName: return "ExternalName";
  }
  return "?";
}

const char* ipFamilyPolicyName(IpFamilyPolicy p) {
  switch (p) {
    case IpFamilyPolicy::SingleStack: return "SingleStack";
    case IpFamilyPolicy::PreferDualStack: return "PreferDualStack";
    case IpFamilyPolicy::RequireDualStack: return "RequireDualStack";
  }
  return "?";
}

std::string ManifestError::str() const {
  // Empty parts are skipped so file-level errors read naturally.
  std::string out = warning() ? "warning: " : "";
  for (const std::string* part : {&file, &object, &field}) {
    if (part->empty()) continue;
    out += *part;
    out += ": ";
  }
  return out + message;
}

bool Service::operator==(const Service& o) const {
  // `object` is deliberately left out: it is presentation only, and json
  // comparison would make formatting-only edits look like changes.
  return std::tie(ns, name, type, headless, clusterIPs, ipFamilies, ipFamilyPolicy, externalName, ports, selector,
                  externalTrafficLocal, internalTrafficLocal, trafficDistribution,
                  publishNotReadyAddresses, healthCheckNodePort, externalIPs,
                  allocateLoadBalancerNodePorts, loadBalancerIP, loadBalancerSourceRanges,
                  annotations, sessionAffinityTimeout, requestedLoadBalancerIPs, addressPool,
                  sharedIPKey, loadBalancerIgnored, loadBalancerIngress, loadBalancerPending, creationTimestamp, file) ==
         std::tie(o.ns, o.name, o.type, o.headless, o.clusterIPs, o.ipFamilies, o.ipFamilyPolicy, o.externalName, o.ports,
                  o.selector, o.externalTrafficLocal, o.internalTrafficLocal,
                  o.trafficDistribution, o.publishNotReadyAddresses, o.healthCheckNodePort,
                  o.externalIPs,
                  o.allocateLoadBalancerNodePorts, o.loadBalancerIP, o.loadBalancerSourceRanges,
                  o.annotations, o.sessionAffinityTimeout, o.requestedLoadBalancerIPs,
                  o.addressPool, o.sharedIPKey, o.loadBalancerIgnored,
                  o.loadBalancerIngress, o.loadBalancerPending, o.creationTimestamp, o.file);
}

bool AddressRange::contains(const IpAddr& a) const {
  return a.isV4() == first.isV4() && first <= a && a <= last;
}

bool AddressPool::contains(const IpAddr& a) const {
  if (avoidBuggyIPs && a.isV4() && (a.bytes[15] == 0 || a.bytes[15] == 255)) return false;
  for (const auto& r : ranges)
    if (r.contains(a)) return true;
  return false;
}

bool AddressPool::hasFamily(bool v4) const {
  for (const auto& r : ranges)
    if (r.first.isV4() == v4) return true;
  return false;
}

bool Service::externallyAccessible() const {
  return type == ServiceType::NodePort || type == ServiceType::LoadBalancer ||
         (type == ServiceType::ClusterIP && !externalIPs.empty());
}

}  // namespace ferry
