// Which of a service port's endpoints new flows may use on this node, as
// kube-proxy decides it (pkg/proxy/topology.go CategorizeEndpoints):
//
//  - Ready endpoints; when none is ready, the serving-and-terminating
//    ones (KEP-1669), separately for Cluster and Local policy.
//  - Local policy (externalTrafficPolicy or internalTrafficPolicy
//    Local): only this node's endpoints.
//  - Cluster policy with topology hints (KEP-2433 hints.forZones,
//    KEP-3015 trafficDistribution, hints.forNodes for PreferSameNode):
//    only the endpoints hinted for this node's zone (or this node) when
//    every ready endpoint carries hints and one is for us; else all.
//
// Pure: unit-tested in tests/model/endpoint_sets_test.cpp.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "model/snapshot.h"

namespace ferry {

// This node as topology sees it.
struct NodeTopology {
  std::string name;  // this node's name ("" = unknown: no endpoint is local)
  std::string zone;  // its label topology.kubernetes.io/zone ("" = none)
  // Every node, for the zone of an endpoint's node when ferry writes the
  // hints itself (trafficDistribution on endpoints that carry none).
  const std::map<std::string, Node>* nodes = nullptr;

  // This node's entry of `nodes` (name and zone); an absent node has no zone.
  static NodeTopology of(const std::string& name, const std::map<std::string, Node>& nodes);
};

// "" (no topology), "PreferSameZone" or "PreferSameNode".
using TopologyMode = std::string;

struct EndpointSets {
  // New flows under Cluster policy (topology applied).
  std::vector<const Endpoint*> cluster;
  // New flows under Local policy: this node's ready endpoints, else its
  // serving-and-terminating ones.
  std::vector<const Endpoint*> local;
  // Some endpoint anywhere is ready or serving-and-terminating: with none,
  // traffic is rejected (kube-proxy's REJECT), else a Local frontend
  // without local endpoints drops.
  bool hasAny = false;
  TopologyMode topology;  // the mode the cluster set was filtered by
};

// Ready and serving as the dataplane reads them: publishNotReadyAddresses
// makes every endpoint both.
bool endpointReady(const Endpoint& e, const Service& s);
bool endpointServing(const Endpoint& e, const Service& s);

// Categorizes `eps` (one port's endpoints of one family) for `node`.
EndpointSets categorizeEndpoints(const std::vector<const Endpoint*>& eps, const Service& svc,
                                 const NodeTopology& node);

// True when `svc`'s endpoint sets on a node depend on node labels (any
// endpoint carries hints, or trafficDistribution is set).
bool usesTopology(const Service& svc);

}  // namespace ferry
