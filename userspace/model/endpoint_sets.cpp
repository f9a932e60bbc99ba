#include "model/endpoint_sets.h"

#include <algorithm>

namespace ferry {

namespace {

bool has(const std::vector<std::string>& v, const std::string& x) {
  return !x.empty() && std::find(v.begin(), v.end(), x) != v.end();
}

// An endpoint's hints: its own, or (trafficDistribution set and no
// endpoint of the port carrying any) the ones the EndpointSlice
// controller would write: the zone of the endpoint's node, and for
// PreferSameNode the node itself.
struct Hints {
  std::vector<std::string> zones, nodes;
};

Hints hintsFor(const Endpoint& e, const Service& s, const NodeTopology& node, bool synthesize) {
  if (!synthesize) return {e.zoneHints, e.nodeHints};
  Hints h;
  if (node.nodes && !e.nodeName.empty()) {
    auto it = node.nodes->find(e.nodeName);
    if (it != node.nodes->end() && !it->second.zone.empty()) h.zones.push_back(it->second.zone);
  }
  if (s.trafficDistribution == "PreferSameNode" && !e.nodeName.empty())
    h.nodes.push_back(e.nodeName);
  return h;
}

}  // namespace

NodeTopology NodeTopology::of(const std::string& name, const std::map<std::string, Node>& nodes) {
  NodeTopology t;
  t.name = name;
  t.nodes = &nodes;
  if (auto it = nodes.find(name); it != nodes.end()) t.zone = it->second.zone;
  return t;
}

bool endpointReady(const Endpoint& e, const Service& s) {
  return e.ready || s.publishNotReadyAddresses;
}

bool endpointServing(const Endpoint& e, const Service& s) {
  return e.serving || e.ready || s.publishNotReadyAddresses;
}

bool usesTopology(const Service& svc) {
  if (!svc.trafficDistribution.empty()) return true;
  for (const ServicePort& sp : svc.ports)
    for (const Endpoint& e : sp.endpoints)
      if (!e.zoneHints.empty() || !e.nodeHints.empty()) return true;
  return false;
}

EndpointSets categorizeEndpoints(const std::vector<const Endpoint*>& eps, const Service& svc,
                                 const NodeTopology& node) {
  EndpointSets out;
  auto ready = [&](const Endpoint* e) { return endpointReady(*e, svc); };
  auto servingTerminating = [&](const Endpoint* e) {
    return !ready(e) && e->terminating && endpointServing(*e, svc);
  };
  auto local = [&](const Endpoint* e) { return !node.name.empty() && e->nodeName == node.name; };

  // Topology mode from the ready endpoints' hints (topologyModeFromHints).
  bool anyHints = false;
  for (const Endpoint* e : eps) anyHints |= !e->zoneHints.empty() || !e->nodeHints.empty();
  bool synthesize = !anyHints && !svc.trafficDistribution.empty();
  std::vector<Hints> hints;
  if (anyHints || synthesize) {  // else no mode: skip the copies (the common case)
    hints.reserve(eps.size());
    for (const Endpoint* e : eps) hints.push_back(hintsFor(*e, svc, node, synthesize));
  }
  bool anyReady = false, allNode = true, forNode = false, allZone = true, forZone = false;
  for (size_t i = 0; i < hints.size(); ++i) {
    if (!ready(eps[i])) continue;
    anyReady = true;
    if (hints[i].nodes.empty()) allNode = false;
    else if (has(hints[i].nodes, node.name)) forNode = true;
    if (hints[i].zones.empty()) allZone = false;
    else if (has(hints[i].zones, node.zone)) forZone = true;
  }
  if (anyReady && allNode && forNode)
    out.topology = "PreferSameNode";
  else if (anyReady && allZone && forZone)
    out.topology = "PreferSameZone";

  for (size_t i = 0; i < eps.size(); ++i) {
    if (!ready(eps[i])) continue;
    if (out.topology == "PreferSameNode" && !has(hints[i].nodes, node.name)) continue;
    if (out.topology == "PreferSameZone" && !has(hints[i].zones, node.zone)) continue;
    out.cluster.push_back(eps[i]);
  }
  // No ready endpoint anywhere (topology never empties the set: a mode is
  // chosen only when an endpoint is hinted for us): fall back, without
  // topology, to the serving-and-terminating ones.
  if (out.cluster.empty())
    for (const Endpoint* e : eps)
      if (servingTerminating(e)) out.cluster.push_back(e);
  out.hasAny = !out.cluster.empty();

  bool localReady = false, localST = false;
  for (const Endpoint* e : eps) {
    if (!local(e)) continue;
    localReady |= ready(e);
    localST |= servingTerminating(e);
  }
  for (const Endpoint* e : eps) {
    if (!local(e)) continue;
    if (localReady ? ready(e) : (localST && servingTerminating(e))) out.local.push_back(e);
  }
  return out;
}

}  // namespace ferry
