// Steps of a snapshot build shared by the from-scratch builder
// (builder.cpp) and the incremental model (cluster_model.cpp), so that
// both apply exactly the same rules. Internal to the model.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "model/allocation.h"
#include "model/builder.h"
#include "model/load_balancer.h"

namespace ferry {

using Results = std::map<std::string, AllocationResult>;
using LbResults = std::map<std::string, LoadBalancerResult>;

// One service's allocation needs (ClusterIPs, node ports, health check port).
AllocationRequest allocationRequest(const Service& s);
// Without the record, services can only keep what they already had.
Results fallbackResults(const std::vector<AllocationRequest>& reqs, const ClusterSnapshot* prev,
                        const std::string& why);
// Without the record, LoadBalancers keep the address (or pending reason) they had.
LbResults lbFallback(const std::vector<const Service*>& services, const ClusterSnapshot* prev,
                     const std::string& why);
// Copies allocation results into a parsed service; false (with the error
// appended to *errors) when its allocation failed.
bool applyAllocation(Service& s, const AllocationResult& r, const LoadBalancerResult* lb,
                     std::vector<ManifestError>* errors);
// The LoadBalancer address families of a service: its ClusterIPs', in
// order, else the primary service CIDR's.
std::vector<bool> lbFamilies(const AllocationResult& r, const BuildOptions& opts);

}  // namespace ferry
