#include "announce/owner.h"

#include <optional>

namespace ferry {

uint64_t ownerScore(const std::string& node, const IpAddr& addr) {
  std::string key = node + "#" + addr.str();
  uint64_t h = 0xcbf29ce484222325ull;
  for (unsigned char c : key) {
    h ^= c;
    h *= 0x100000001b3ull;
  }
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdull;
  h ^= h >> 33;
  h *= 0xc4ceb9fe1a85ec53ull;
  h ^= h >> 33;
  return h;
}

std::map<IpAddr, std::string> chooseOwners(const std::vector<Announceable>& addrs,
                                           const std::vector<NodeCandidate>& nodes) {
  // Per address: nullopt = any live Ready node; a set = only those nodes.
  std::map<IpAddr, std::optional<std::set<std::string>>> constraint;
  for (const Announceable& a : addrs) {
    auto [it, fresh] = constraint.try_emplace(a.addr);
    if (!a.localOnly) continue;
    if (!it->second) {
      it->second = a.localNodes;
      continue;
    }
    std::erase_if(*it->second, [&](const std::string& n) { return !a.localNodes.count(n); });
  }

  std::map<IpAddr, std::string> owners;
  for (const auto& [addr, only] : constraint) {
    const NodeCandidate* best = nullptr;
    uint64_t bestScore = 0;
    for (const NodeCandidate& n : nodes) {
      if (!n.ready || !n.leaseLive || (only && !only->count(n.name))) continue;
      uint64_t s = ownerScore(n.name, addr);
      if (!best || s < bestScore || (s == bestScore && n.name < best->name)) {
        best = &n;
        bestScore = s;
      }
    }
    if (best) owners[addr] = best->name;
  }
  return owners;
}

std::vector<NodeCandidate> nodeCandidates(const std::map<std::string, Node>& nodes,
                                          const std::vector<Lease>& leases, WallTime now) {
  std::map<std::string, NodeCandidate> all;
  for (const Lease& l : leases) {
    NodeCandidate& c = all[l.holder];
    c.name = l.holder;
    c.leaseLive = c.leaseLive || l.liveAt(now);
    c.ready = c.leaseLive;
  }
  for (const auto& [name, node] : nodes) {
    NodeCandidate& c = all[name];
    c.name = name;
    c.ready = node.ready;
  }
  std::vector<NodeCandidate> out;
  for (auto& [name, c] : all) out.push_back(std::move(c));
  return out;
}

}  // namespace ferry
