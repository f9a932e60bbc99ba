// LoadBalancer addresses on bare metal, MetalLB-style: every LoadBalancer
// service gets one address per family of its ClusterIPs (dual-stack: one
// IPv4 and one IPv6, each family assigned as below on its own) from the
// address pools (snapshot.h AddressPool), recorded in the shared
// allocation record (ServiceAllocation::loadBalancerIPs) so that every
// node's agent arrives at the same answer, stable across restarts.
//
// Policy (allocateLoadBalancerIPs), requests in ns/name order throughout:
//  1. Release: a service that no longer needs an address (type changed
//     away from LoadBalancer) drops it; deleted services are already gone
//     from the record (allocateClusterIPs). Released addresses are free
//     for everyone in the same pass.
//  2. Held: services present but invalid (holdOnly, or without a request
//     at all) keep their recorded addresses while those are still in a
//     pool; they get nothing new.
//  2b. Seeded (Kubernetes mode, BuildOptions::loadBalancerFromStatus):
//     before any recorded address is kept, a service takes the address of
//     each family that its stored status.loadBalancer.ingress names (the
//     first of the family), written by this or another node's status
//     writer, when that address passes the checks of step 3 (in a pool,
//     of its pool annotation, equal to its request, free or shareable).
//     So a restarted node, whose record starts empty, arrives at the
//     assignment the long-running nodes hold even after deletions changed
//     the ns/name order; the status is the cluster's shared record (as
//     MetalLB's controller keeps a service's stored ingress IP). Services
//     are seeded in creationTimestamp order, then ns/name: of two services
//     whose status claims the same address, the older one keeps it, the
//     other is assigned anew and gets a warning naming both.
//  3. Kept: a service keeps its recorded address while it is still in a
//     pool, of its family, in the pool its address-pool annotation names
//     (if any), equal to its requested address (if any), and shareable
//     with the addresses' other holders. Otherwise it is dropped.
//  4. Requested (spec.loadBalancerIP, or the first address of each of the
//     service's families in the metallb.universe.tf/loadBalancerIPs
//     annotation, which must name one per family; spec.loadBalancerIP names
//     the primary family's only): granted when the address is in a pool (the annotated
//     one, if any; auto-assign or not) and free or shareable; otherwise an
//     error on that field, and the service has no address.
//  5. Dynamic: from the pool the metallb.universe.tf/address-pool
//     annotation names (auto-assign or not; unknown = error), else from the
//     auto-assign pools in name order. A service with a sharing key first
//     takes an address already held by services it may share with (pools
//     in order, addresses ascending); otherwise the first free address
//     (entries in the order written, addresses ascending; IPv4 .0 / .255
//     skipped with avoidBuggyIPs). None left: no address, `pending` says
//     why; a later pass retries. A dual-stack service short of either
//     family's address gets none (pending says which is missing).
// Sharing (MetalLB's rules): an address may be held by several services
// only when all carry the same non-empty metallb.universe.tf/allow-shared-ip
// key, no port+protocol is used by two of them, and they agree on the
// backend key (externalTrafficPolicy Local services must have the same
// selector; Local and Cluster ones do not mix), as one node announces the
// address for all of them.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "model/allocation.h"
#include "model/snapshot.h"

namespace ferry {

// The annotations read for LoadBalancer services.
inline constexpr char kLoadBalancerIPsAnnotation[] = "metallb.universe.tf/loadBalancerIPs";
inline constexpr char kAddressPoolAnnotation[] = "metallb.universe.tf/address-pool";
inline constexpr char kSharedIPAnnotation[] = "metallb.universe.tf/allow-shared-ip";
inline constexpr char kSourceRangesAnnotation[] =
    "service.beta.kubernetes.io/load-balancer-source-ranges";
// As Kubernetes writes annotation paths (keys hold dots and slashes):
// "metadata.annotations[metallb.universe.tf/address-pool]".
std::string annotationPath(const std::string& key);

// One service's needs, as the builder sees them.
struct LoadBalancerRequest {
  std::string key;             // ns/name
  bool needsAddress = false;   // type LoadBalancer (false releases its address)
  bool holdOnly = false;       // present but invalid: keep what is recorded, nothing new
  bool v4 = true;              // the primary family: its first ClusterIP's
  bool dualStack = false;      // also the other family (a ClusterIP of each)
  std::vector<bool> families() const { return dualStack ? std::vector<bool>{v4, !v4} : std::vector<bool>{v4}; }
  // Candidates for the requested address: spec.loadBalancerIP, or the
  // annotation's list (the first of the family is used). Empty = dynamic.
  std::vector<IpAddr> requested{};
  std::string requestedField{};  // "spec.loadBalancerIP" or the annotation's path
  std::string pool{};            // metallb.universe.tf/address-pool ("" = any auto-assign)
  std::string sharingKey{};      // metallb.universe.tf/allow-shared-ip ("" = exclusive)
  std::string backendKey{};      // externalTrafficPolicy Local: the selector; else ""
  std::vector<std::pair<uint16_t, Protocol>> ports{};
  // status.loadBalancer.ingress[].ip as stored (step 2b; empty unless the
  // caller seeds from status), and metadata.creationTimestamp (RFC 3339,
  // "" = unknown, sorted last) that orders the seeds.
  std::vector<IpAddr> statusIPs{};
  std::string created{};
};

struct LoadBalancerResult {
  std::vector<IpAddr> ips;   // at most one per family, the primary family's first
  std::string pending;       // why there is no address (needsAddress only)
  std::string field, error;  // a manifest problem, also summarised in pending
  // Not an error: the stored status named an address another service's
  // status claims first (step 2b); reported on kStatusIngressField.
  std::string warning{};
};

inline constexpr char kStatusIngressField[] = "status.loadBalancer.ingress";

// status.loadBalancer.ingress[].ip of a Service object as read (entries
// without an IP address, e.g. hostname-only, skipped).
std::vector<IpAddr> statusIngressIPs(const nlohmann::json& object);

// The request for a valid service whose ClusterIPs are of `families`
// (true = IPv4; primary first; empty = IPv4). With fromStatus, statusIPs
// is filled from the object's stored status (step 2b).
LoadBalancerRequest loadBalancerRequest(const Service& s, const std::vector<bool>& families,
                                        bool fromStatus = false);
// The request for a service present but invalid, from its last good
// version (null: unknown; its addresses are then held exclusively).
LoadBalancerRequest heldLoadBalancerRequest(const std::string& key, const Service* lastGood);

// Applies the policy above to `record`, whose entries of deleted services
// must already be gone. `requests` must be sorted by key and unique.
// Results are keyed by ns/name, for requests that need an address.
std::map<std::string, LoadBalancerResult> allocateLoadBalancerIPs(
    AllocationRecord& record, const std::vector<LoadBalancerRequest>& requests,
    const std::map<std::string, AddressPool>& pools);

}  // namespace ferry
