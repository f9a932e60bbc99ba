#include "model/endpoints.h"

#include <algorithm>
#include <set>

namespace ferry {

namespace {

// The address families a service's endpoints may use: those of its
// ClusterIPs; any family when it has none (headless).
struct Families {
  bool v4 = true, v6 = true;
  explicit Families(const Service& s) {
    if (s.clusterIPs.empty()) {
      // Headless: the families spec.ipFamilies names (both with a dual-stack policy).
      bool dual = s.ipFamilyPolicy && *s.ipFamilyPolicy != IpFamilyPolicy::SingleStack;
      if (s.ipFamilies.empty() || dual) return;
      v4 = s.ipFamilies[0];
      v6 = !s.ipFamilies[0];
      return;
    }
    v4 = v6 = false;
    for (const auto& ip : s.clusterIPs) (ip.isV4() ? v4 : v6) = true;
  }
  bool allows(const IpAddr& ip) const { return ip.isV4() ? v4 : v6; }
};

const EndpointPort* matchPort(const std::vector<EndpointPort>& ports, const ServicePort& sp) {
  for (const auto& p : ports)
    if (p.name == sp.name && p.protocol == sp.protocol) return &p;
  return nullptr;
}

void fromSlices(const std::vector<const EndpointSlice*>& slices, const Families& fam,
                ServicePort& sp) {
  size_t n = 0;
  for (const EndpointSlice* slice : slices)
    if (matchPort(slice->ports, sp)) n += slice->endpoints.size();
  sp.endpoints.reserve(n);
  for (const EndpointSlice* slice : slices) {
    const EndpointPort* port = matchPort(slice->ports, sp);
    if (!port) continue;
    for (const SliceEndpoint& e : slice->endpoints) {
      // Slice addresses are fungible; consumers use the first one.
      const IpAddr& ip = e.addresses.front();
      if (!fam.allows(ip)) continue;
      sp.endpoints.push_back({ip, port->port, e.ready, e.serving, e.terminating, e.nodeName,
                              e.targetRef, e.hostname, e.zoneHints, e.nodeHints});
    }
  }
}

void addAddresses(const std::vector<EndpointAddress>& addrs, bool ready, uint16_t port,
                  const Families& fam, ServicePort& sp) {
  for (const EndpointAddress& a : addrs)
    if (fam.allows(a.ip))
      sp.endpoints.push_back(
          {a.ip, port, ready, ready, false, a.nodeName, a.targetRef, a.hostname, {}, {}});
}

void fromEndpoints(const EndpointsObject& eo, const Families& fam, ServicePort& sp) {
  size_t n = 0;
  for (const EndpointSubset& sub : eo.subsets)
    if (matchPort(sub.ports, sp)) n += sub.addresses.size() + sub.notReadyAddresses.size();
  sp.endpoints.reserve(n);
  for (const EndpointSubset& sub : eo.subsets) {
    const EndpointPort* port = matchPort(sub.ports, sp);
    if (!port) continue;
    addAddresses(sub.addresses, true, port->port, fam, sp);
    addAddresses(sub.notReadyAddresses, false, port->port, fam, sp);
  }
}

// The pod's first address of each family the service has (a dual-stack
// pod behind a dual-stack service is an endpoint in both, as the
// EndpointSlice controller makes one slice per family).
std::vector<const IpAddr*> podAddresses(const Pod& pod, const Families& fam) {
  std::vector<const IpAddr*> out;
  bool seen[2] = {false, false};
  for (const auto& ip : pod.podIPs)
    if (fam.allows(ip) && !seen[ip.isV4()]) seen[ip.isV4()] = true, out.push_back(&ip);
  return out;
}

// 0 when a named port is missing on the pod.
uint16_t podTargetPort(const Pod& pod, const ServicePort& sp) {
  if (sp.targetPortName.empty()) return sp.targetPortNumber;
  for (const PodPort& p : pod.ports)
    if (p.name == sp.targetPortName && p.protocol == sp.protocol) return p.containerPort;
  return 0;
}

// What the endpoints controller does: terminal pods and pods without an
// IP are left out; the rest are in, ready only when Ready and not deleting.
std::vector<const Pod*> selectedPods(const Service& s, const EndpointLookup& src) {
  std::vector<const Pod*> out;
  if (s.selector.empty()) return out;
  for (const Pod* pod : src.selectPods(s.ns, s.selector))
    if (pod->phase != "Succeeded" && pod->phase != "Failed") out.push_back(pod);
  return out;
}

void fromPods(const Service& s, const std::vector<const Pod*>& pods, const Families& fam,
              ServicePort& sp, std::vector<std::string>* missing) {
  for (const Pod* pod : pods) {
    std::vector<const IpAddr*> ips = podAddresses(*pod, fam);
    if (ips.empty()) continue;
    uint16_t port = podTargetPort(*pod, sp);
    if (!port) {
      missing->push_back(pod->key());
      continue;
    }
    bool named = !pod->hostname.empty() && pod->subdomain == s.name;
    // The EndpointSlice controller's conditions: serving is the pod's
    // readiness, ready also needs it not terminating, and
    // publishNotReadyAddresses makes every endpoint ready.
    bool ready = s.publishNotReadyAddresses || (pod->ready && !pod->deleting);
    for (const IpAddr* ip : ips)
      sp.endpoints.push_back({*ip, port, ready, pod->ready, pod->deleting, pod->nodeName,
                              "Pod " + pod->key(), named ? pod->hostname : "", {}, {}});
  }
}

// One entry per ip:port; if sources disagree, the most usable one wins.
void sortUnique(std::vector<Endpoint>& eps) {
  std::sort(eps.begin(), eps.end(), [](const Endpoint& a, const Endpoint& b) {
    if (a.ip != b.ip || a.port != b.port) return a.ip != b.ip ? a.ip < b.ip : a.port < b.port;
    if (a.ready != b.ready || a.serving != b.serving)
      return a.ready != b.ready ? a.ready : a.serving;
    return a < b;
  });
  eps.erase(std::unique(eps.begin(), eps.end(),
                        [](const Endpoint& a, const Endpoint& b) {
                          return a.ip == b.ip && a.port == b.port;
                        }),
            eps.end());
}

void reportMissing(const Service& s, size_t i, const std::vector<std::string>& missing,
                   std::vector<ManifestError>* errors) {
  if (missing.empty() || !errors) return;
  std::string msg = "named port \"" + s.ports[i].targetPortName + "\" not found on pod " +
                    missing.front();
  if (missing.size() > 1) msg += " (and " + std::to_string(missing.size() - 1) + " more pods)";
  errors->push_back({s.file, "Service " + s.key(),
                     "spec.ports[" + std::to_string(i) + "].targetPort", msg});
}

}  // namespace

bool selectorMatches(const std::map<std::string, std::string>& selector, const Pod& pod) {
  for (const auto& [k, v] : selector) {
    auto it = pod.labels.find(k);
    if (it == pod.labels.end() || it->second != v) return false;
  }
  return true;
}

EndpointSources EndpointSources::index(const Manifests& m) {
  EndpointSources src;
  for (const auto& p : m.pods) src.podsByNamespace[p.ns].push_back(&p);
  for (const auto& e : m.endpoints) src.endpoints[e.ns + "/" + e.name] = &e;
  for (const auto& s : m.slices)
    if (!s.serviceName.empty()) src.slicesByService[s.ns + "/" + s.serviceName].push_back(&s);
  return src;
}

std::vector<const Pod*> EndpointSources::selectPods(
    const std::string& ns, const std::map<std::string, std::string>& selector) const {
  std::vector<const Pod*> out;
  auto it = podsByNamespace.find(ns);
  if (it == podsByNamespace.end()) return out;
  for (const Pod* pod : it->second)
    if (selectorMatches(selector, *pod)) out.push_back(pod);
  return out;
}

const EndpointsObject* EndpointSources::endpointsFor(const std::string& key) const {
  auto it = endpoints.find(key);
  return it == endpoints.end() ? nullptr : it->second;
}

std::vector<const EndpointSlice*> EndpointSources::slicesFor(const std::string& key) const {
  auto it = slicesByService.find(key);
  return it == slicesByService.end() ? std::vector<const EndpointSlice*>{} : it->second;
}

void resolveEndpoints(Service& s, const EndpointLookup& src, std::vector<ManifestError>* errors) {
  for (auto& sp : s.ports) sp.endpoints.clear();
  if (s.type == ServiceType::ExternalName) return;
  Families fam(s);
  std::vector<const EndpointSlice*> slices = src.slicesFor(s.key());
  const EndpointsObject* eo = slices.empty() ? src.endpointsFor(s.key()) : nullptr;
  std::vector<const Pod*> pods;
  if (slices.empty() && !eo) pods = selectedPods(s, src);
  for (size_t i = 0; i < s.ports.size(); ++i) {
    ServicePort& sp = s.ports[i];
    std::vector<std::string> missing;
    if (!slices.empty())
      fromSlices(slices, fam, sp);
    else if (eo)
      fromEndpoints(*eo, fam, sp);
    else
      fromPods(s, pods, fam, sp, &missing);
    sortUnique(sp.endpoints);
    sp.endpoints.shrink_to_fit();  // kept in the snapshot: no spare capacity
    reportMissing(s, i, missing, errors);
  }
}

}  // namespace ferry
