#include "model/service_json.h"

#include <set>
#include <tuple>

namespace ferry {

using nlohmann::json;

namespace {

json& objectMember(json& j, const char* key) {
  json& v = j[key];
  if (!v.is_object()) v = json::object();
  return v;
}

json portToJson(const ServicePort& p) {
  json j = json::object();
  if (!p.name.empty()) j["name"] = p.name;
  j["protocol"] = protocolName(p.protocol);
  j["port"] = p.port;
  if (p.targetPortName.empty())
    j["targetPort"] = p.targetPortNumber;
  else
    j["targetPort"] = p.targetPortName;
  if (p.nodePort) j["nodePort"] = p.nodePort;
  return j;
}

void fillAddresses(json& spec, const Service& s) {
  if (s.type == ServiceType::ExternalName) {
    spec.erase("clusterIP");
    spec.erase("clusterIPs");
    spec["externalName"] = s.externalName;
    return;
  }
  json ips = json::array();
  json families = json::array();
  for (const auto& ip : s.clusterIPs) {
    ips.push_back(ip.str());
    families.push_back(ip.isV4() ? "IPv4" : "IPv6");
  }
  if (s.headless) ips = json::array({"None"});
  spec["clusterIP"] = ips.empty() ? json("") : ips[0];
  spec["clusterIPs"] = ips;
  // As the apiserver stores them: the families allocated, and the policy
  // as given or defaulted (resolveIpFamilies).
  if (!families.empty()) spec["ipFamilies"] = families;
  if (s.ipFamilyPolicy)
    spec["ipFamilyPolicy"] = ipFamilyPolicyName(*s.ipFamilyPolicy);
  else if (!families.empty())
    spec["ipFamilyPolicy"] = families.size() == 1 ? "SingleStack" : "RequireDualStack";
  if (!spec.contains("internalTrafficPolicy")) spec["internalTrafficPolicy"] = "Cluster";
}

// What the apiserver fills in (or drops) for external traffic.
void fillExternal(json& spec, const Service& s) {
  if (s.externallyAccessible())
    spec["externalTrafficPolicy"] = s.externalTrafficLocal ? "Local" : "Cluster";
  else
    spec.erase("externalTrafficPolicy");
  if (s.healthCheckNodePort)
    spec["healthCheckNodePort"] = s.healthCheckNodePort;
  else
    spec.erase("healthCheckNodePort");
  if (!s.externalIPs.empty()) {
    json ips = json::array();
    for (const auto& ip : s.externalIPs) ips.push_back(ip.str());
    spec["externalIPs"] = ips;
  }
  if (s.type == ServiceType::LoadBalancer)
    spec["allocateLoadBalancerNodePorts"] = s.allocateLoadBalancerNodePorts;
}

void fillSpec(json& spec, const Service& s) {
  spec["type"] = serviceTypeName(s.type);
  fillAddresses(spec, s);
  json ports = json::array();
  for (const auto& p : s.ports) ports.push_back(portToJson(p));
  if (!ports.empty() || spec.contains("ports")) spec["ports"] = ports;
  if (!s.selector.empty()) spec["selector"] = s.selector;
  if (!spec.contains("sessionAffinity")) spec["sessionAffinity"] = "None";
  fillExternal(spec, s);
}

json metadata(const Service& s, json meta) {
  if (!meta.is_object()) meta = json::object();
  meta["name"] = s.name;
  meta["namespace"] = s.ns;
  if (!s.creationTimestamp.empty()) meta["creationTimestamp"] = s.creationTimestamp;
  return meta;
}

// An endpoint address as Endpoints lists it; ready-ness decides the list.
struct Address {
  IpAddr ip;
  std::string nodeName, hostname, targetRef;
  bool ready;
  auto operator<=>(const Address&) const = default;
};

using PortTuple = std::tuple<std::string, uint16_t, Protocol>;

json addressToJson(const Address& a) {
  json j = {{"ip", a.ip.str()}};
  if (!a.nodeName.empty()) j["nodeName"] = a.nodeName;
  if (!a.hostname.empty()) j["hostname"] = a.hostname;
  auto space = a.targetRef.find(' ');
  if (space != std::string::npos) {
    std::string kind = a.targetRef.substr(0, space), rest = a.targetRef.substr(space + 1);
    auto slash = rest.find('/');
    json ref = {{"kind", kind}, {"name", rest.substr(slash == std::string::npos ? 0 : slash + 1)}};
    if (slash != std::string::npos) ref["namespace"] = rest.substr(0, slash);
    j["targetRef"] = ref;
  }
  return j;
}

json subsetToJson(const std::set<PortTuple>& ports, const std::vector<Address>& addrs) {
  json ready = json::array(), notReady = json::array(), pj = json::array();
  for (const auto& a : addrs) (a.ready ? ready : notReady).push_back(addressToJson(a));
  for (const auto& [name, port, proto] : ports) {
    json p = {{"port", port}, {"protocol", protocolName(proto)}};
    if (!name.empty()) p["name"] = name;
    pj.push_back(p);
  }
  json sub = json::object();
  if (!ready.empty()) sub["addresses"] = ready;
  if (!notReady.empty()) sub["notReadyAddresses"] = notReady;
  sub["ports"] = pj;
  return sub;
}

// Like the endpoints controller's repacking: addresses that serve the same
// set of ports share one subset.
json subsetsToJson(const Service& s) {
  std::map<Address, std::set<PortTuple>> portsOf;
  for (const auto& sp : s.ports)
    for (const auto& e : sp.endpoints)
      portsOf[{e.ip, e.nodeName, e.hostname, e.targetRef, e.ready}].insert(
          {sp.name, e.port, sp.protocol});
  std::map<std::set<PortTuple>, std::vector<Address>> groups;
  for (const auto& [addr, ports] : portsOf) groups[ports].push_back(addr);
  json subsets = json::array();
  for (const auto& [ports, addrs] : groups) subsets.push_back(subsetToJson(ports, addrs));
  return subsets;
}

}  // namespace

json serviceToJson(const Service& s) {
  json j = s.object.is_object() ? s.object.get() : json::object();
  j["apiVersion"] = "v1";
  j["kind"] = "Service";
  j["metadata"] = metadata(s, j.value("metadata", json::object()));
  fillSpec(objectMember(j, "spec"), s);
  json lb = json::object();
  if (!s.loadBalancerIngress.empty()) {
    json ingress = json::array();
    for (const auto& ip : s.loadBalancerIngress) ingress.push_back({{"ip", ip.str()}});
    lb["ingress"] = ingress;
  }
  j["status"] = {{"loadBalancer", lb}};
  // Why a LoadBalancer service has no address (yet), for ferryctl -o wide.
  if (!s.loadBalancerPending.empty())
    j["status"]["conditions"] = json::array({{{"type", "ferry.io/LoadBalancerAddress"},
                                              {"status", "False"},
                                              {"reason", "Pending"},
                                              {"message", s.loadBalancerPending}}});
  return j;
}

json endpointsToJson(const Service& s) {
  json meta = metadata(s, json::object());
  json j = {{"apiVersion", "v1"}, {"kind", "Endpoints"}, {"metadata", meta}};
  json subsets = subsetsToJson(s);
  if (!subsets.empty()) j["subsets"] = subsets;
  return j;
}

}  // namespace ferry
