// Which node answers ARP/NDP for each LoadBalancer address (pure).
//
// The rule, computed independently by every agent from the same inputs
// (services, Node readiness, leases), so all agree without talking:
//
//   eligible(addr) = nodes that are Ready and hold a live lease, and, for
//                    an address of an externalTrafficPolicy: Local service,
//                    have a ready endpoint of that service on the node;
//   owner(addr)    = the eligible node with the smallest
//                    ownerScore(node, addr), ties broken by name;
//                    none when no node is eligible.
//
// This is rendezvous (highest-random-weight) hashing, as MetalLB's L2 mode
// does with sha256(node + "#" + ip): addresses spread evenly over nodes,
// and an address moves only when its owner stops being eligible or a newly
// eligible node scores lower for it; nodes coming and going leave every
// other address where it is. ownerScore is part of the protocol between
// agents: changing it makes agents of different versions disagree.
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "announce/lease.h"
#include "model/ip.h"
#include "model/snapshot.h"

namespace ferry {

struct Announceable {
  IpAddr addr;
  bool localOnly = false;            // externalTrafficPolicy: Local
  std::set<std::string> localNodes;  // nodes with a ready endpoint (used when localOnly)
  std::string service;               // "ns/name", for messages
};

struct NodeCandidate {
  std::string name;
  bool ready = false;      // Node condition Ready
  bool leaseLive = false;  // its lease renewed within leaseDurationSeconds
  bool operator==(const NodeCandidate&) const = default;
};

// FNV-1a 64 of "<node>#<address text>", then the murmur3 64-bit finaliser
// (FNV alone mixes the last characters poorly, and node names differ in
// their last characters).
uint64_t ownerScore(const std::string& node, const IpAddr& addr);

// Several services may share an address (different ports): the address's
// eligible nodes are those eligible for every one of them.
std::map<IpAddr, std::string> chooseOwners(const std::vector<Announceable>& addrs,
                                           const std::vector<NodeCandidate>& nodes);

// Candidates from Node objects and leases: every node known from either.
// A node with a Node object takes its readiness from it; one without
// counts as ready when its lease is live (manifest mode without Node
// manifests).
std::vector<NodeCandidate> nodeCandidates(const std::map<std::string, Node>& nodes,
                                          const std::vector<Lease>& leases, WallTime now);

}  // namespace ferry
