// Service validation follows the apiserver's rules where ferry depends on
// them (port naming, uniqueness, clusterIP forms), so a manifest that works
// here also works in a real cluster.
#include <set>

#include "common/limits.h"
#include "model/names.h"
#include "model/object_parsers.h"

namespace ferry {

using nlohmann::json;

namespace {

std::optional<ServiceType> parseType(ObjectContext& c, const json& spec) {
  auto t = optString(c, spec, "type", "spec.type");
  if (!t) return ServiceType::ClusterIP;
  for (auto type : {ServiceType::ClusterIP, ServiceType::NodePort, ServiceType::LoadBalancer,
                    ServiceType::ExternalName})
    if (*t == serviceTypeName(type)) return type;
  c.error("spec.type", "unsupported type \"" + *t +
                           "\": must be ClusterIP, NodePort, LoadBalancer or ExternalName");
  return std::nullopt;
}

// targetPort: a number (0 or absent = same as port) or an IANA service name.
void parseTargetPort(ObjectContext& c, const json& p, const std::string& path, ServicePort& sp) {
  const json* t = optField(p, "targetPort");
  if (t && t->is_string()) {
    std::string name = t->get<std::string>();
    if (auto why = checkIanaSvcName(name); !why.empty()) c.error(path, why);
    sp.targetPortName = name;
    return;
  }
  auto n = optInt(c, p, "targetPort", path);
  if (n && (*n < 0 || *n > 65535)) {
    c.error(path, "must be between 1 and 65535, got " + std::to_string(*n));
    return;
  }
  sp.targetPortNumber = n && *n ? uint16_t(*n) : sp.port;
}

std::optional<ServicePort> parsePort(ObjectContext& c, const json& p, const std::string& path,
                                     ServiceType type) {
  if (!p.is_object()) {
    c.error(path, "must be an object, got " + limits::dumpSafe(p));
    return std::nullopt;
  }
  ServicePort sp;
  if (const json* pr = optField(p, "protocol"); pr && *pr == "SCTP") {
    // Rejected per port (the service's other ports are served): the
    // dataplane translates TCP and UDP only.
    std::string what = "port";
    if (const json* num = optField(p, "port"); num && num->is_number_integer())
      what += " " + std::to_string(num->get<long long>());
    if (const json* nm = optField(p, "name"); nm && nm->is_string() && !nm->get<std::string>().empty())
      what += " (" + nm->get<std::string>() + ")";
    c.warning(path + ".protocol", "SCTP is not supported by ferry: " + what +
                                      "/SCTP is rejected and not served; the service's TCP and "
                                      "UDP ports are");
    return std::nullopt;
  }
  sp.name = optString(c, p, "name", path + ".name").value_or("");
  if (!sp.name.empty())
    if (auto why = checkDns1123Label(sp.name); !why.empty()) c.error(path + ".name", why);
  auto proto = optProtocol(c, p, path + ".protocol");
  if (proto) sp.protocol = *proto;
  if (!optField(p, "port")) c.error(path + ".port", "is required");
  sp.port = optPort(c, p, "port", path + ".port");
  parseTargetPort(c, p, path + ".targetPort", sp);
  // 0, like absent, asks for a dynamic one (as in the API).
  if (auto np = optField(p, "nodePort"); !(np && *np == 0))
    sp.nodePort = optPort(c, p, "nodePort", path + ".nodePort");
  if (sp.nodePort && type != ServiceType::NodePort && type != ServiceType::LoadBalancer)
    c.error(path + ".nodePort", std::string("may not be used when type is '") +
                                    serviceTypeName(type) + "'");
  return sp;
}

// Kubernetes: with several ports every one needs a unique name, and no
// port+protocol nor nodePort+protocol may repeat.
void checkPortSet(ObjectContext& c, const std::vector<ServicePort>& ports,
                  const std::vector<std::string>& paths) {
  std::map<std::string, size_t> names;
  std::map<std::pair<uint16_t, Protocol>, size_t> numbers, nodePorts;
  for (size_t i = 0; i < ports.size(); ++i) {
    const ServicePort& p = ports[i];
    if (ports.size() > 1 && p.name.empty())
      c.error(paths[i] + ".name", "is required when the service has more than one port");
    if (!p.name.empty() && !names.emplace(p.name, i).second)
      c.error(paths[i] + ".name",
              "duplicate port name \"" + p.name + "\" (also " + paths[names[p.name]] + ")");
    auto key = std::pair(p.port, p.protocol);
    if (p.port && !numbers.emplace(key, i).second)
      c.error(paths[i], "duplicate port " + std::to_string(p.port) + "/" +
                            protocolName(p.protocol) + " (also " + paths[numbers[key]] + ")");
    // One number may serve a TCP and a UDP port, never two of one protocol.
    auto nodeKey = std::pair(p.nodePort, p.protocol);
    if (p.nodePort && !nodePorts.emplace(nodeKey, i).second)
      c.error(paths[i] + ".nodePort", "duplicate nodePort " + std::to_string(p.nodePort) + "/" +
                                          protocolName(p.protocol) + " (also " +
                                          paths[nodePorts[nodeKey]] + ".nodePort)");
  }
}

void parsePorts(ObjectContext& c, const json& spec, Service& s) {
  const json* ports = optArray(c, spec, "ports", "spec.ports");
  std::vector<std::string> paths;
  if (ports) {
    for (size_t i = 0; i < ports->size(); ++i) {
      std::string path = indexPath("spec.ports", i);
      if (auto sp = parsePort(c, (*ports)[i], path, s.type)) {
        s.ports.push_back(*sp);
        paths.push_back(path);
      }
    }
  }
  checkPortSet(c, s.ports, paths);
  bool needsPorts = s.type != ServiceType::ExternalName && !s.headless;
  if (needsPorts && (!ports || ports->empty())) c.error("spec.ports", "must have at least one port");
}

// Returns false for "None"; otherwise adds the parsed address (if valid).
bool addClusterIP(ObjectContext& c, const std::string& text, const std::string& path,
                  Service& s) {
  if (text == "None") return false;
  auto ip = IpAddr::parse(text);
  if (!ip)
    c.error(path, "must be a valid IP address or \"None\", got \"" + text + "\"");
  else
    s.clusterIPs.push_back(*ip);
  return true;
}

void parseClusterIPList(ObjectContext& c, const json& list, Service& s) {
  int none = 0;
  for (size_t i = 0; i < list.size(); ++i) {
    std::string path = indexPath("spec.clusterIPs", i);
    if (!list[i].is_string()) {
      c.error(path, "must be a string, got " + limits::dumpSafe(list[i]));
      continue;
    }
    if (!addClusterIP(c, list[i].get<std::string>(), path, s)) ++none;
  }
  if (none && list.size() > 1) c.error("spec.clusterIPs", "\"None\" must be the only entry");
  s.headless = none > 0;
  if (list.size() > 2) c.error("spec.clusterIPs", "may hold at most two addresses (one per family)");
  if (s.clusterIPs.size() == 2 && s.clusterIPs[0].isV4() == s.clusterIPs[1].isV4())
    c.error("spec.clusterIPs", "the two addresses must be of different IP families");
}

// spec.ipFamilies: "IPv4" / "IPv6", at most two, no repeats; the first must
// be the family of spec.clusterIP when one is given (the apiserver's
// validation). The builder checks it against the service CIDRs.
void parseIpFamilies(ObjectContext& c, const json& spec, Service& s) {
  const json* list = optArray(c, spec, "ipFamilies", "spec.ipFamilies");
  if (!list) return;
  for (size_t i = 0; i < list->size(); ++i) {
    const json& v = (*list)[i];
    std::string path = indexPath("spec.ipFamilies", i);
    if (!v.is_string() || (v != "IPv4" && v != "IPv6")) {
      c.error(path, "must be \"IPv4\" or \"IPv6\", got " + limits::dumpSafe(v));
      return;
    }
    bool v4 = v == "IPv4";
    if (!s.ipFamilies.empty() && s.ipFamilies[0] == v4) {
      c.error(path, "duplicate family " + v.get<std::string>());
      return;
    }
    if (s.ipFamilies.size() == 2) {
      c.error(path, "at most two families");
      return;
    }
    s.ipFamilies.push_back(v4);
  }
  for (size_t i = 0; i < s.ipFamilies.size() && i < s.clusterIPs.size(); ++i)
    if (s.clusterIPs[i].isV4() != s.ipFamilies[i])
      c.error(indexPath("spec.ipFamilies", i),
              "must be the family of " + std::string(i ? "spec.clusterIPs[1] " : "spec.clusterIP ") +
                  s.clusterIPs[i].str());
}

// spec.ipFamilyPolicy, with kube-apiserver's checks that need no cluster
// configuration (the allocator checks the families against the CIDRs).
void parseIpFamilyPolicy(ObjectContext& c, const json& spec, Service& s) {
  auto p = optString(c, spec, "ipFamilyPolicy", "spec.ipFamilyPolicy");
  if (!p || p->empty()) return;
  for (auto policy : {IpFamilyPolicy::SingleStack, IpFamilyPolicy::PreferDualStack,
                      IpFamilyPolicy::RequireDualStack})
    if (*p == ipFamilyPolicyName(policy)) s.ipFamilyPolicy = policy;
  if (!s.ipFamilyPolicy) {
    c.error("spec.ipFamilyPolicy", "must be SingleStack, PreferDualStack or RequireDualStack, "
                                   "got \"" + *p + "\"");
    return;
  }
  if (*s.ipFamilyPolicy != IpFamilyPolicy::SingleStack) return;
  if (s.ipFamilies.size() > 1)
    c.error("spec.ipFamilies", "must hold one family when spec.ipFamilyPolicy is SingleStack");
  if (s.clusterIPs.size() > 1)
    c.error("spec.clusterIPs", "must hold one address when spec.ipFamilyPolicy is SingleStack");
}

// clusterIP / clusterIPs: both optional; when both are set they must agree.
void parseClusterIPs(ObjectContext& c, const json& spec, Service& s) {
  auto single = optString(c, spec, "clusterIP", "spec.clusterIP");
  const json* list = optArray(c, spec, "clusterIPs", "spec.clusterIPs");
  if (list && !list->empty()) {
    parseClusterIPList(c, *list, s);
    const json& first = (*list)[0];
    if (single && !single->empty() && first.is_string() && first.get<std::string>() != *single)
      c.error("spec.clusterIPs[0]",
              "must match spec.clusterIP \"" + *single + "\", got " + limits::dumpSafe(first));
  } else if (single && !single->empty()) {
    s.headless = !addClusterIP(c, *single, "spec.clusterIP", s);
  }
}

void checkTypeRules(ObjectContext& c, const json& spec, Service& s) {
  auto ext = optString(c, spec, "externalName", "spec.externalName");
  if (s.type != ServiceType::ExternalName) return;
  if (!ext || ext->empty()) {
    c.error("spec.externalName", "is required for type ExternalName");
  } else {
    std::string host = ext->back() == '.' ? ext->substr(0, ext->size() - 1) : *ext;
    if (auto why = checkDns1123Subdomain(host); !why.empty()) c.error("spec.externalName", why);
    s.externalName = *ext;
  }
  if (s.headless || !s.clusterIPs.empty())
    c.error("spec.clusterIP", "must be empty for type ExternalName");
}

// internalTrafficPolicy (Cluster | Local), trafficDistribution (the
// values kube-proxy knows; others are legal API values it ignores, as
// kube-proxy does, with a warning) and publishNotReadyAddresses.
void parseEndpointPolicy(ObjectContext& c, const json& spec, Service& s) {
  if (auto p = optString(c, spec, "internalTrafficPolicy", "spec.internalTrafficPolicy")) {
    if (*p == "Local")
      s.internalTrafficLocal = s.type != ServiceType::ExternalName;
    else if (!p->empty() && *p != "Cluster")
      c.error("spec.internalTrafficPolicy",
              "unsupported value \"" + *p + "\": must be Cluster or Local");
  }
  if (auto d = optString(c, spec, "trafficDistribution", "spec.trafficDistribution")) {
    if (*d == "PreferClose" || *d == "PreferSameZone" || *d == "PreferSameNode")
      s.trafficDistribution = *d;
    else if (!d->empty())
      c.warning("spec.trafficDistribution",
                "unknown value \"" + *d + "\" is ignored: must be PreferClose, PreferSameZone "
                "or PreferSameNode");
  }
  s.publishNotReadyAddresses =
      optBool(c, spec, "publishNotReadyAddresses", "spec.publishNotReadyAddresses").value_or(false);
}

}  // namespace

Service parseService(ObjectContext& c, const json& o, const ObjectMeta& m) {
  Service s;
  s.ns = m.ns;
  s.name = m.name;
  s.file = m.file;
  // s.object (the manifest as read) is set by the caller, which may give
  // its tree away instead of copying it.
  s.creationTimestamp = m.creationTimestamp;
  if (const json* meta = optField(o, "metadata"))
    s.annotations = optStringMap(c, *meta, "annotations", "metadata.annotations");
  static const json kEmpty = json::object();
  const json* specPtr = optObject(c, o, "spec", "spec");
  const json& spec = specPtr ? *specPtr : kEmpty;
  if (auto t = parseType(c, spec)) s.type = *t;
  parseClusterIPs(c, spec, s);
  if (s.headless && (s.type == ServiceType::NodePort || s.type == ServiceType::LoadBalancer))
    c.error("spec.clusterIP", std::string("may not be \"None\" for type ") +
                                  serviceTypeName(s.type));
  checkTypeRules(c, spec, s);
  parseIpFamilies(c, spec, s);
  parseIpFamilyPolicy(c, spec, s);
  s.selector = optStringMap(c, spec, "selector", "spec.selector");
  parsePorts(c, spec, s);
  parseExternalFields(c, spec, s);
  parseLoadBalancing(c, spec, s);
  parseEndpointPolicy(c, spec, s);
  return s;
}

}  // namespace ferry
