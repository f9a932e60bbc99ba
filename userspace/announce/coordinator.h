// From the cluster state to "what this node announces" (pure): the
// LoadBalancer addresses, the nodes that may own them, the owner of each.
#pragma once

#include <map>
#include <set>
#include <string>
#include <vector>

#include "announce/lease.h"
#include "announce/owner.h"
#include "model/snapshot.h"

namespace ferry {

// One Announceable per assigned address (status.loadBalancer.ingress) of
// every LoadBalancer service. For externalTrafficPolicy: Local the nodes
// with a ready endpoint (kube-proxy's healthCheckNodePort rule); for
// Cluster every node qualifies, endpoints or not: the owner then answers
// for a service without endpoints as the dataplane does (a reject), which
// tells a client more than an ARP timeout. (MetalLB withdraws instead.)
std::vector<Announceable> announceables(const ClusterSnapshot& snap);

// Keeps what ownership depends on from the last snapshot (the addresses
// and the Node objects, not the whole snapshot), and recomputes owners
// when the snapshot or the leases change.
class LbAnnouncement {
 public:
  explicit LbAnnouncement(std::string nodeName) : node_(std::move(nodeName)) {}

  void setSnapshot(const ClusterSnapshot& snap) { setInputs(announceables(snap), snap.nodes); }
  // The same from parts (tests; a source other than a snapshot).
  void setInputs(std::vector<Announceable> addrs, std::map<std::string, Node> nodes) {
    addrs_ = std::move(addrs);
    nodes_ = std::move(nodes);
  }
  // Recomputes every owner; returns the addresses this node must announce.
  const std::set<IpAddr>& compute(const std::vector<Lease>& leases, WallTime now);

  // Address -> owning node, for every address with an owner (status).
  const std::map<IpAddr, std::string>& owners() const { return owners_; }
  // Addresses without an eligible node: no Ready node with a live lease,
  // or, for Local, none of those has a ready endpoint.
  std::vector<IpAddr> unowned() const;
  const std::set<IpAddr>& owned() const { return owned_; }
  const std::vector<Announceable>& addresses() const { return addrs_; }
  const std::string& nodeName() const { return node_; }

 private:
  std::string node_;
  std::vector<Announceable> addrs_;
  std::map<std::string, Node> nodes_;
  std::map<IpAddr, std::string> owners_;
  std::set<IpAddr> owned_;
};

}  // namespace ferry
