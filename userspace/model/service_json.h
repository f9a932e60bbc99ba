// Services as the Kubernetes API would return them, for
// `ferryctl get services -o json` and `ferryctl get endpoints`.
#pragma once

#include <nlohmann/json.hpp>

#include "model/snapshot.h"

namespace ferry {

// The manifest object with what the apiserver would fill in: namespace,
// creationTimestamp, allocated clusterIP/clusterIPs ("None" when
// headless), defaulted ports and type, allocated nodePorts and
// healthCheckNodePort, externalTrafficPolicy (for NodePort, LoadBalancer
// and services with externalIPs), and `status: {loadBalancer: {}}`, with
// `ingress: [{ip: ...}]` when a load balancer address is assigned, and
// `status.conditions: [{type: ferry.io/LoadBalancerAddress, status: "False",
// reason: Pending, message: <why>}]` when a LoadBalancer service has none.
nlohmann::json serviceToJson(const Service& s);

// A v1 Endpoints object for the service: subsets of addresses /
// notReadyAddresses sharing the same ports.
nlohmann::json endpointsToJson(const Service& s);

}  // namespace ferry
