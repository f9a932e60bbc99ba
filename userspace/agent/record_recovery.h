// Rebuilding a lost allocation record (corrupt or truncated
// allocations.json) from what is programmed, so that a restart never moves
// or drops a working service (issue 11, item 8).
//
// Sources, in order of authority:
//  1. the manifests' explicit addresses (spec.clusterIP / clusterIPs) and
//     node ports (spec.ports[].nodePort, spec.healthCheckNodePort);
//  2. the pinned maps: a ClusterIP frontend (cluster scope, inside a
//     service CIDR) whose set of (port, protocol) equals exactly one
//     remaining service's is given to that service; when several services
//     share a port set, each takes the candidate closest above the address
//     the allocator would pick for it, so that the assignment is stable.
// Everything else (dynamic node ports, LoadBalancer addresses) is left to
// the allocator, whose picks are deterministic (hash of ns/name), so they
// come back the same unless a collision had moved them.
#pragma once

#include <string>
#include <vector>

#include "dataplane/planner.h"
#include "model/allocation.h"
#include "model/snapshot.h"

namespace ferry {

// A record seeded from `pinned` and the valid `services` (as parsed:
// clusterIPs and nodePorts hold what the manifests request).
AllocationRecord recoverRecord(const ProgrammedState& pinned, const std::vector<Service>& services,
                               const std::vector<IpPrefix>& cidrs, const std::string& now);

}  // namespace ferry
