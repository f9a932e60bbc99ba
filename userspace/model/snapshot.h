// The pure model: Kubernetes objects in, an immutable ClusterSnapshot out.
// Nothing here touches the kernel; everything is unit-testable.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "model/ip.h"
#include "model/shared_string.h"
#include "model/shared_json.h"

namespace ferry {

enum class Protocol : uint8_t { TCP = 6, UDP = 17, SCTP = 132 };
const char* protocolName(Protocol p);

enum class ServiceType { ClusterIP, NodePort, LoadBalancer, ExternalName };
const char* serviceTypeName(ServiceType t);

// spec.ipFamilyPolicy (KEP-563 dual-stack).
enum class IpFamilyPolicy { SingleStack, PreferDualStack, RequireDualStack };
const char* ipFamilyPolicyName(IpFamilyPolicy p);

// One problem with the input, always naming where it is.
struct ManifestError {
  std::string file;    // path of the manifest file
  std::string object;  // "Service default/web" (or "document 3" if unnamed)
  std::string field;   // "spec.ports[1].targetPort"
  std::string message; // "named port \"http\" not found on pod default/web-1"
  // "" for an error (the object is rejected); "Warning" for a field ferry
  // does not implement yet (the object is programmed without it).
  std::string severity = {};
  bool warning() const { return !severity.empty(); }
  std::string str() const;  // "file: object: field: message" ("warning: " first for warnings)
  bool operator==(const ManifestError&) const = default;
};

// A resolved endpoint for one service port.
struct Endpoint {
  IpAddr ip;
  uint16_t port = 0;          // target port, resolved to a number
  bool ready = true;
  bool serving = true;
  bool terminating = false;
  // Shared, interned strings (model/shared_string.h): one endpoint is in
  // every port of its service and in the parsed object it came from.
  SharedString nodeName;      // "" if unknown
  SharedString targetRef;     // "Pod ns/name" or ""
  SharedString hostname;
  // EndpointSlice hints.forZones / hints.forNodes (names; empty = none).
  SharedList<std::string> zoneHints, nodeHints;
  bool operator==(const Endpoint&) const = default;
  auto operator<=>(const Endpoint&) const = default;
};

struct ServicePort {
  std::string name;
  Protocol protocol = Protocol::TCP;
  uint16_t port = 0;
  // 0 = none. Parsed: the requested nodePort; in a snapshot: the one
  // allocated (NodePort / LoadBalancer services only).
  uint16_t nodePort = 0;
  // targetPort as written: a number, or a name resolved per endpoint.
  uint16_t targetPortNumber = 0;
  std::string targetPortName;
  std::vector<Endpoint> endpoints;  // sorted, ready and not-ready both
  bool operator==(const ServicePort&) const = default;
};

// sessionAffinityConfig.clientIP.timeoutSeconds: default and maximum
// (k8s.io/api core/v1 DefaultClientIPServiceAffinitySeconds, validation).
constexpr uint32_t kDefaultAffinityTimeoutSeconds = 10800;
constexpr uint32_t kMaxAffinityTimeoutSeconds = 86400;
// Per-service choice of the external frontends' algorithm: maglev|random.
constexpr const char* kLbAlgorithmAnnotation = "service.ferry.io/lb-algorithm";

struct Service {
  std::string ns, name;
  ServiceType type = ServiceType::ClusterIP;
  bool headless = false;                 // clusterIP: None
  std::vector<IpAddr> clusterIPs;        // empty for headless / ExternalName
  // spec.ipFamilies as requested (true = IPv4), in order; empty = any.
  std::vector<bool> ipFamilies;
  // spec.ipFamilyPolicy as requested; unset means SingleStack, or
  // RequireDualStack when two families or two ClusterIPs are given (as
  // kube-apiserver defaults it). In a snapshot, clusterIPs hold one
  // address per family that the policy and the service CIDRs give.
  std::optional<IpFamilyPolicy> ipFamilyPolicy;
  std::string externalName;
  std::vector<ServicePort> ports;
  std::map<std::string, std::string> selector;
  // spec.externalTrafficPolicy: Local (true) keeps external traffic (node
  // ports, external IPs, load balancer IPs) on this node's endpoints.
  bool externalTrafficLocal = false;
  // spec.internalTrafficPolicy: Local (true) keeps traffic from pods and
  // the node to the ClusterIPs on this node's endpoints.
  bool internalTrafficLocal = false;
  // spec.trafficDistribution as written ("" = none): PreferClose,
  // PreferSameZone or PreferSameNode (KEP-4444, KEP-3015).
  std::string trafficDistribution;
  // spec.publishNotReadyAddresses: not-ready endpoints count as ready.
  bool publishNotReadyAddresses = false;
  // LoadBalancer + Local only. Parsed: requested (0 = dynamic); in a
  // snapshot: the allocated one.
  uint16_t healthCheckNodePort = 0;
  std::vector<IpAddr> externalIPs;       // spec.externalIPs
  bool allocateLoadBalancerNodePorts = true;  // LoadBalancer only
  std::optional<IpAddr> loadBalancerIP;  // spec.loadBalancerIP (deprecated field)
  // spec.loadBalancerSourceRanges, or else (as Kubernetes does) the
  // annotation service.beta.kubernetes.io/load-balancer-source-ranges.
  std::vector<IpPrefix> loadBalancerSourceRanges;
  std::map<std::string, std::string> annotations;  // metadata.annotations
  // spec.sessionAffinity ClientIP: its timeoutSeconds (1-86400); 0: None.
  uint32_t sessionAffinityTimeout = 0;
  // MetalLB's annotations, read for LoadBalancer services only:
  // metallb.universe.tf/loadBalancerIPs (comma-separated; the first of the
  // service's IP family is requested; exclusive with spec.loadBalancerIP),
  std::vector<IpAddr> requestedLoadBalancerIPs;
  // metallb.universe.tf/address-pool (assign from this pool only),
  std::string addressPool;
  // metallb.universe.tf/allow-shared-ip (services with the same key and
  // disjoint ports may share an address; "" = never shared).
  std::string sharedIPKey;
  // spec.loadBalancerClass names another implementation (not ferry's
  // --load-balancer-class): no address is assigned or announced for it;
  // its ClusterIP and node ports are still served. Set by the Kubernetes
  // source (agent/k8s_source.h).
  bool loadBalancerIgnored = false;
  // In a snapshot (LoadBalancer only): the assigned address, at most one,
  // of the first ClusterIP's family (status.loadBalancer.ingress) ...
  std::vector<IpAddr> loadBalancerIngress;
  // ... or, when there is none, why ("no available IPs in pool(s) ...").
  std::string loadBalancerPending;
  // Interned (model/shared_string.h): a file's services share its path,
  // and the allocation record stamps many with one time.
  SharedString creationTimestamp;        // RFC 3339, from manifest or allocation record
  SharedString file;                     // where it was defined
  SharedJson object;                     // the manifest as read (for -o json), shared by copies
  bool operator==(const Service& o) const;  // compares everything but `object`
  std::string key() const { return ns + "/" + name; }
  // NodePort and LoadBalancer services, and ClusterIP ones with external
  // IPs: the ones externalTrafficPolicy applies to.
  bool externallyAccessible() const;
};

// An inclusive range of addresses of one family: a CIDR or "a-b" range.
struct AddressRange {
  IpAddr first, last;
  std::string text;   // as written
  size_t index = 0;   // position in spec.addresses, for messages
  bool contains(const IpAddr& a) const;
  bool operator==(const AddressRange&) const = default;
};

// A MetalLB IPAddressPool (metallb.io/v1beta1), the addresses that
// LoadBalancer services are assigned from. Pools are cluster-wide here:
// metadata.namespace is ignored.
struct AddressPool {
  std::string name;
  std::vector<AddressRange> ranges;  // spec.addresses, in order
  bool autoAssign = true;            // spec.autoAssign
  bool avoidBuggyIPs = false;        // spec.avoidBuggyIPs: no IPv4 x.x.x.0 / x.x.x.255
  std::string file;
  // In a range and, with avoidBuggyIPs, not an IPv4 .0 or .255 address.
  bool contains(const IpAddr& a) const;
  bool hasFamily(bool v4) const;
  bool operator==(const AddressPool&) const = default;
};

struct Node {
  std::string name;
  std::vector<IpAddr> addresses;  // InternalIP / ExternalIP
  bool ready = true;
  std::string zone;  // label topology.kubernetes.io/zone ("" = none)
  bool operator==(const Node&) const = default;
};

// What the agent programs. Immutable once built.
struct ClusterSnapshot {
  std::map<std::string, Service> services;  // key: ns/name
  std::map<std::string, Node> nodes;
  std::map<std::string, AddressPool> pools;  // key: name
  std::vector<ManifestError> errors;
};

}  // namespace ferry
