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
//
// Node ports (NodePort and LoadBalancer services) live in the same entry,
// keyed "<port name, or index when unnamed>/<PROTOCOL>", from one range
// (default 30000-32767):
//  * A node port number belongs to one service. Within it, one number may
//    serve one TCP and one UDP port (never two ports of one protocol).
//    The health check node port (LoadBalancer with externalTrafficPolicy
//    Local) is a number of its own.
//  * Recorded ports out of range, or recorded twice, are dropped (first
//    owner by ns/name keeps it) and re-allocated.
//  * Ports a service no longer needs are released before any request is
//    looked at: the port is gone, the type is no longer NodePort /
//    LoadBalancer, a LoadBalancer with allocateLoadBalancerNodePorts
//    false did not ask for it, the health check port is no longer needed.
//  * A requested port (spec.ports[i].nodePort, spec.healthCheckNodePort)
//    must be in the range and not held by another service, else the
//    service gets an error and its entry keeps its node ports as they were.
//    A service's requests are checked and granted together, after its
//    ClusterIP request and before any dynamic allocation.
//  * A port without a request keeps its recorded number; otherwise it
//    shares the number of a port of the same service with the same port
//    number and the other protocol (as kube-apiserver does for e.g. DNS
//    53/TCP + 53/UDP), otherwise it gets a dynamic one: like kube-apiserver,
//    the lower band of min(max(16, size/32), 128) ports (none when the
//    range has at most 16) is kept for requests; picks start in the upper
//    band at FNV-1a-64("ns/name/<port key>") mod (band size) and probe
//    upward, wrapping, then the lower band the same way. A full range is
//    an error on that port's field.
//
// LoadBalancer addresses live in the same entry (loadBalancerIPs), assigned
// in the same transaction by allocateLoadBalancerIPs (load_balancer.h).
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "model/ip.h"
#include "model/snapshot.h"

namespace ferry {

struct ServiceAllocation {
  std::vector<IpAddr> clusterIPs;
  std::string created;  // RFC 3339 UTC
  std::map<std::string /*nodePortKey()*/, uint16_t> nodePorts{};  // omitted from JSON when empty
  uint16_t healthCheckNodePort = 0;                             // 0 = none (omitted)
  nlohmann::json extra = nlohmann::json::object();  // unknown members, kept as read
  // LoadBalancer addresses from the address pools (load_balancer.h);
  // omitted from JSON when empty.
  std::vector<IpAddr> loadBalancerIPs{};
  bool operator==(const ServiceAllocation&) const = default;
};

class OffsetBitmap;

// Derived from a record's services, never saved: who holds each ClusterIP
// and node port, and which entries hold LoadBalancer addresses. Kept up to
// date by the allocators, so that a record held across transactions (the
// agent's) is not walked again per transaction.
struct AllocationIndex {
  std::map<IpAddr, std::string> ipOwner;
  std::map<uint16_t, std::string> portOwner;
  // Taken offsets, once built: of each service CIDR (one per family), and
  // of the node port range.
  std::map<IpPrefix, std::shared_ptr<OffsetBitmap>> ipBits;
  std::shared_ptr<OffsetBitmap> portBits;
  std::set<std::string> lbHolders;  // entries with loadBalancerIPs
  bool lbValid = false;             // lbHolders derived
  std::string config;               // the CIDRs and node port range it was derived for
  bool tracked = false;             // kept across calls (allocateClusterIPs' mayHaveLeft)
};

// Holds an AllocationIndex; a copy of a record copies it (deep), so that
// copies never share one.
struct AllocationIndexHolder {
  std::unique_ptr<AllocationIndex> p;
  AllocationIndexHolder() = default;
  AllocationIndexHolder(AllocationIndexHolder&&) = default;
  AllocationIndexHolder& operator=(AllocationIndexHolder&&) = default;
  AllocationIndexHolder(const AllocationIndexHolder& o);
  AllocationIndexHolder& operator=(const AllocationIndexHolder& o);
};

struct AllocationRecord {
  std::map<std::string /*ns/name*/, ServiceAllocation> services;
  // Unknown members (top-level here, per service in ServiceAllocation),
  // e.g. written by a newer agent, are preserved so that an older agent
  // does not erase them.
  nlohmann::json extra = nlohmann::json::object();

  // Not part of the record (neither saved nor compared): the allocators
  // bump it with every change they make, so that a tracked transaction
  // (AllocationStore::transactTracked) knows whether to save without
  // copying and comparing the whole record.
  uint64_t edits = 0;
  // Not part of the record either: derived by allocateClusterIPs when
  // null (O(services)), then kept up to date (O(requests) per allocation).
  AllocationIndexHolder index;

  nlohmann::json toJson() const;
  // False (with *error set) when `j` is not a well-formed record.
  static bool fromJson(const nlohmann::json& j, AllocationRecord* out, std::string* error);
  bool operator==(const AllocationRecord& o) const {
    return services == o.services && extra == o.extra;
  }
};

class AllocationStore {
 public:
  virtual ~AllocationStore() = default;
  // Runs fn on the record under an exclusive lock, then saves it if fn
  // changed it. False (with *error set) if the record could not be read,
  // locked or saved; fn is not run when reading fails.
  virtual bool transact(const std::function<void(AllocationRecord&)>& fn,
                        std::string* error) = 0;
  // As transact(), for a function that bumps record.edits with every change
  // it makes (allocateClusterIPs, allocateLoadBalancerIPs): the file store
  // runs it on the record it holds in memory, without copying or comparing
  // the record (O(changes), not O(services)), and saves only when edits
  // moved. A function that throws leaves the file as it was (the copy in
  // memory is dropped and read again).
  virtual bool transactTracked(const std::function<void(AllocationRecord&)>& fn,
                               std::string* error) {
    return transact(fn, error);
  }
};

// For tests and single-process use.
class MemoryAllocationStore : public AllocationStore {
 public:
  bool transact(const std::function<void(AllocationRecord&)>& fn, std::string* error) override;
  // Also checks the function's promise: a change without an edit fails
  // the transaction ("changed without noting it"), so tests catch it.
  bool transactTracked(const std::function<void(AllocationRecord&)>& fn,
                       std::string* error) override;
  AllocationRecord record;
};

// JSON file shared by all agents: flock(2) on `path + ".lock"`, written to
// a temporary file and renamed into place so readers never see half a file.
// The lock is waited for at most 100 ms (another process holding it fails
// the transaction: "allocation record locked by another process,
// retrying"). A corrupt file is reported, never overwritten: without a
// recovery function the transaction fails; with one, the file is renamed to
// `path.corrupt-<unix time>` and the record the function returns replaces
// it (under the lock, so one agent of many does it).
// The record read last (or written) is kept in memory with the file's
// identity (device, inode, size, modification time): while no other agent
// has replaced the file, a transaction skips reading and parsing it.
class FileAllocationStore : public AllocationStore {
 public:
  explicit FileAllocationStore(std::string path) : path_(std::move(path)) {}
  bool transact(const std::function<void(AllocationRecord&)>& fn, std::string* error) override;
  bool transactTracked(const std::function<void(AllocationRecord&)>& fn,
                       std::string* error) override;
  const std::string& path() const { return path_; }
  void setRecovery(std::function<AllocationRecord()> f) { recovery_ = std::move(f); }
  // What the last recovery did ("" if none since the last call), for the log.
  std::string takeNotice() { return std::exchange(notice_, std::string()); }

  struct FileIdentity {
    uint64_t dev = 0, ino = 0, size = 0, mtimeNs = 0;
    bool operator==(const FileIdentity&) const = default;
  };

 private:
  std::string path_;
  std::optional<FileIdentity> cachedId_;  // of the file cached_ was read from / written to
  AllocationRecord cached_;
  std::function<AllocationRecord()> recovery_;
  std::string notice_;
};

struct NodePortRange {
  uint16_t min = 30000, max = 32767;  // inclusive
  bool contains(uint16_t port) const { return port >= min && port <= max; }
  std::string str() const { return std::to_string(min) + "-" + std::to_string(max); }
};

// The record key of a service port's node port: "http/TCP", or "0/UDP" for
// an unnamed port (only a service's single port may be unnamed).
std::string nodePortKey(const std::string& portName, size_t index, Protocol protocol);

// One service port that needs a node port.
struct NodePortRequest {
  std::string key;                   // nodePortKey()
  std::string field;                 // "spec.ports[0].nodePort", for errors
  uint16_t port = 0;                 // the service port (ports sharing it may share a node port)
  Protocol protocol = Protocol::TCP;
  uint16_t requested = 0;            // 0 = dynamic
};

// One service's needs, as the builder sees them.
struct AllocationRequest {
  std::string key;                 // ns/name
  bool needsIP = true;             // false for headless and ExternalName
  std::vector<IpAddr> requested;   // from the manifest; empty = dynamic
  // spec.ipFamilies (true = IPv4) and spec.ipFamilyPolicy as requested;
  // resolveIpFamilies turns them into the families allocated.
  std::vector<bool> ipFamilies{};
  std::optional<IpFamilyPolicy> ipFamilyPolicy{};
  // The ports that need a node port; the service's other recorded node
  // ports are released.
  std::vector<NodePortRequest> nodePorts{};
  bool needsHealthCheckNodePort = false;
  uint16_t requestedHealthCheckNodePort = 0;  // 0 = dynamic
};

struct AllocationResult {
  std::vector<IpAddr> clusterIPs;
  std::string created;
  std::string field, error;        // set when the service could not be served
  std::map<std::string, uint16_t> nodePorts{};  // by NodePortRequest::key
  uint16_t healthCheckNodePort = 0;
};

// Applies the policy above to `record`. `live` holds every service key
// present in the manifests (valid or not); everything else is released.
// `requests` must be sorted by key and unique. Results are keyed by ns/name.
// Despite the name, node ports are allocated too.
// `mayHaveLeft` (the agent's path, with AllocationStore::transactTracked):
// the record's index is kept and used across calls, and only these keys
// are looked at for release: the ones that can have left `live` since the
// last call (the index is derived again, O(services), when the record has
// none). Null: the index is derived from the record on every call.
std::map<std::string, AllocationResult> allocateClusterIPs(
    AllocationRecord& record, const std::vector<AllocationRequest>& requests,
    const std::set<std::string>& live, const std::vector<IpPrefix>& cidrs,
    const std::string& now, const NodePortRange& nodePortRange = {},
    const std::set<std::string>* mayHaveLeft = nullptr);

// The families a service's ClusterIPs are allocated in, primary first
// (true = IPv4), by kube-apiserver's dual-stack rules (KEP-563):
//  * the primary family is that of the first requested ClusterIP, else
//    spec.ipFamilies[0], else the first service CIDR's;
//  * an unset policy is RequireDualStack when two families or two
//    ClusterIPs are given, else SingleStack;
//  * SingleStack gets the primary family; RequireDualStack both (an error
//    on spec.ipFamilyPolicy when the CIDRs have only one family);
//  * PreferDualStack gets both when the CIDRs have both, else the primary;
//  * a family asked for by spec.ipFamilies[i] or spec.clusterIPs[i] that no
//    service CIDR has is an error on that field (the secondary of
//    PreferDualStack is dropped instead).
// `cidrs` may hold one CIDR per family (validateServiceCidrs).
struct FamilyChoice {
  std::vector<bool> families;  // 1 or 2 entries when error is empty
  std::string field, error;
};
FamilyChoice resolveIpFamilies(const AllocationRequest& r, const std::vector<IpPrefix>& cidrs);

// kube-apiserver's rules for --service-cluster-ip-range: one or two CIDRs,
// of different families, each of at most 2^20 addresses (IPv6 /108 or
// longer, IPv4 /12 or longer). "" when valid, else why not.
std::string validateServiceCidrs(const std::vector<IpPrefix>& cidrs);

// The current time as RFC 3339 UTC ("2024-05-01T12:00:00Z").
std::string rfc3339Now();

}  // namespace ferry
