// The ClusterIP allocation record: every node's agent reads the same
// manifests and must arrive at the same ClusterIPs, stable across restarts.
// In a real cluster the apiserver does this; ferry keeps a shared record
// file beside the manifests, changed only under an exclusive lock.
//
// Allocation policy (allocateClusterIPs):
//  * Entries of services gone from the manifests are released first, so
//    their addresses can be reused in the same pass.
//  * A service keeps its recorded address(es) for as long as it exists.
//    Recorded addresses outside the configured CIDRs, or recorded twice,
//    are dropped (the first owner by ns/name keeps it) and re-allocated.
//  * A requested address (spec.clusterIP / spec.clusterIPs) must lie in a
//    service CIDR and must not be held by another service; otherwise the
//    service gets an error and its record entry stays as it was.
//    Requests are processed before dynamic allocations, each in ns/name
//    order, so a request never loses against a dynamic pick made in the
//    same pass.
//  * Dynamic allocation (one address from the first CIDR, the primary
//    family) never hands out the network address nor, for IPv4, the
//    broadcast address. Like kube-apiserver, the lower band of
//    min(max(16, size/16), 256) addresses is kept for requested addresses:
//    picks start in the upper band at offset FNV-1a-64(ns/name) mod
//    (upper band size) and probe upward, wrapping, to the first free one;
//    only when the upper band is full is the lower band probed the same
//    way. Same record + same manifests => same addresses on every node.
//    A full range is an error for that service.
//  * Headless and ExternalName services get no address but still get a
//    record entry, which gives them a stable `created` time.
//  * `created` (RFC 3339, UTC) is set when the entry is first made, from
//    the injected clock.
#pragma once

#include <functional>
#include <map>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "model/ip.h"

namespace ferry {

struct ServiceAllocation {
  std::vector<IpAddr> clusterIPs;
  std::string created;  // RFC 3339 UTC
  nlohmann::json extra = nlohmann::json::object();  // unknown members, kept as read
  bool operator==(const ServiceAllocation&) const = default;
};

struct AllocationRecord {
  std::map<std::string /*ns/name*/, ServiceAllocation> services;
  // Unknown top-level members (e.g. nodePorts / loadBalancer IPs written by
  // a newer agent) are preserved so an older agent does not erase them.
  nlohmann::json extra = nlohmann::json::object();

  nlohmann::json toJson() const;
  // False (with *error set) when `j` is not a well-formed record.
  static bool fromJson(const nlohmann::json& j, AllocationRecord* out, std::string* error);
  bool operator==(const AllocationRecord&) const = default;
};

class AllocationStore {
 public:
  virtual ~AllocationStore() = default;
  // Runs fn on the record under an exclusive lock, then saves it if fn
  // changed it. False (with *error set) if the record could not be read,
  // locked or saved; fn is not run when reading fails.
  virtual bool transact(const std::function<void(AllocationRecord&)>& fn,
                        std::string* error) = 0;
};

// For tests and single-process use.
class MemoryAllocationStore : public AllocationStore {
 public:
  bool transact(const std::function<void(AllocationRecord&)>& fn, std::string* error) override;
  AllocationRecord record;
};

// JSON file shared by all agents: flock(2) on `path + ".lock"`, written to
// a temporary file and renamed into place so readers never see half a file.
// A corrupt file is reported, never overwritten.
class FileAllocationStore : public AllocationStore {
 public:
  explicit FileAllocationStore(std::string path) : path_(std::move(path)) {}
  bool transact(const std::function<void(AllocationRecord&)>& fn, std::string* error) override;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// One service's needs, as the builder sees them.
struct AllocationRequest {
  std::string key;                 // ns/name
  bool needsIP = true;             // false for headless and ExternalName
  std::vector<IpAddr> requested;   // from the manifest; empty = dynamic
};

struct AllocationResult {
  std::vector<IpAddr> clusterIPs;
  std::string created;
  std::string field, error;        // set when the service could not be served
};

// Applies the policy above to `record`. `live` holds every service key
// present in the manifests (valid or not); everything else is released.
// `requests` must be sorted by key and unique. Results are keyed by ns/name.
std::map<std::string, AllocationResult> allocateClusterIPs(
    AllocationRecord& record, const std::vector<AllocationRequest>& requests,
    const std::set<std::string>& live, const std::vector<IpPrefix>& cidrs,
    const std::string& now);

// The current time as RFC 3339 UTC ("2024-05-01T12:00:00Z").
std::string rfc3339Now();

}  // namespace ferry
