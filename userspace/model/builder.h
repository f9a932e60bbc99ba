// Manifest files -> ClusterSnapshot: parse, allocate ClusterIPs and node
// ports, resolve endpoints. The only entry point the agent needs besides the JSON views.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "model/allocation.h"
#include "model/manifest.h"
#include "model/service_json.h"
#include "model/snapshot.h"

namespace ferry {

struct BuildOptions {
  std::vector<IpPrefix> serviceCidrs;  // first = primary family; IPv4 only for now
  std::function<std::string()> now;    // RFC 3339 UTC; empty = system clock
  uint16_t nodePortMin = 30000, nodePortMax = 32767;  // inclusive
  // Kubernetes mode: LoadBalancer addresses are seeded from each Service's
  // stored status.loadBalancer.ingress (load_balancer.h step 2b), the
  // cluster-wide record every node reads; the directory mode's shared
  // record file plays that role there.
  bool loadBalancerFromStatus = false;
};

// Never throws; every problem ends up in snapshot.errors.
//  * A Service that is invalid (parse or allocation error) keeps its last
//    good version from `previous` (its endpoints re-resolved from the
//    current objects); without one it is left out. Its ClusterIP stays
//    reserved either way.
//  * Services from a file with an unidentifiable document (YAML syntax
//    error, missing kind/name) are kept from `previous` when they vanished
//    from the manifests: the file is probably mid-edit.
//  * A service whose object was deleted disappears and releases its IP
//    and node ports.
//  * In the snapshot, ServicePort::nodePort and Service::healthCheckNodePort
//    are the allocated ports (0 = none).
//  * IPAddressPools become snapshot.pools (address_pool.h resolvePools);
//    LoadBalancer services get Service::loadBalancerIngress from them, or
//    Service::loadBalancerPending saying why not (load_balancer.h). A bad
//    requested address or pool annotation is an error in snapshot.errors,
//    but the service is still served (ClusterIP, node ports) without one.
ClusterSnapshot buildSnapshot(const std::vector<SourceFile>& files, const BuildOptions& opts,
                              AllocationStore& store, const ClusterSnapshot* previous);
// The same from objects already parsed (the object store's contents, for
// the from-scratch check of the incremental model, cluster_model.h).
ClusterSnapshot buildSnapshot(Manifests manifests, const BuildOptions& opts,
                              AllocationStore& store, const ClusterSnapshot* previous);

}  // namespace ferry
