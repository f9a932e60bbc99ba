// Endpoints (v1) and EndpointSlice (discovery.k8s.io/v1): endpoint lists
// written by hand or by a controller. Every bad address or port is
// reported; an object with any error is then left out whole (manifest.cpp).
#include "common/limits.h"
#include "model/object_parsers.h"

namespace ferry {

using nlohmann::json;

namespace {

// The common shape of an address (string ip, nodeName, hostname; no
// targetRef), read without building the error paths the checks below need:
// a million addresses at 100,000 services. Anything else (or a bad ip)
// gives nullopt, and the checked path reads and reports it.
std::optional<EndpointAddress> plainAddress(const json& a) {
  if (!a.is_object()) return std::nullopt;
  EndpointAddress ea;
  bool hasIp = false;
  for (const auto& [k, v] : a.items()) {
    if (v.is_null()) continue;  // absent, as optField reads it
    if (!v.is_string()) return std::nullopt;
    const std::string& s = v.get_ref<const std::string&>();
    if (k == "ip") {
      auto ip = IpAddr::parse(s);
      if (!ip) return std::nullopt;
      ea.ip = *ip;
      hasIp = true;
    } else if (k == "nodeName") {
      ea.nodeName = s;
    } else if (k == "hostname") {
      ea.hostname = s;
    } else if (k == "targetRef") {
      return std::nullopt;
    }
  }
  if (!hasIp) return std::nullopt;
  return ea;
}

std::vector<EndpointAddress> parseAddresses(ObjectContext& c, const json& subset,
                                            const char* key, const std::string& path,
                                            const std::string& ns) {
  std::vector<EndpointAddress> out;
  const json* list = optArray(c, subset, key, path);
  if (!list) return out;
  out.reserve(list->size());
  for (size_t i = 0; i < list->size(); ++i) {
    const json& a = (*list)[i];
    if (auto plain = plainAddress(a)) {
      out.push_back(std::move(*plain));
      continue;
    }
    std::string at = indexPath(path, i);
    const json* given = optField(a, "ip");
    if (!given || *given == "") c.error(at + ".ip", "is required");
    auto ip = optIp(c, a, "ip", at + ".ip");
    EndpointAddress ea;
    ea.nodeName = optString(c, a, "nodeName", at + ".nodeName").value_or("");
    ea.hostname = optString(c, a, "hostname", at + ".hostname").value_or("");
    ea.targetRef = parseTargetRef(c, a, at + ".targetRef", ns);
    if (!ip) continue;
    ea.ip = *ip;
    out.push_back(ea);
  }
  return out;
}

std::optional<IpAddr> sliceAddress(ObjectContext& c, const json& v, const std::string& path,
                                   const std::string& addressType) {
  auto ip = v.is_string() ? IpAddr::parse(v.get<std::string>()) : std::nullopt;
  if (!ip) {
    c.error(path, "must be a valid IP address, got " + limits::dumpSafe(v));
  } else if (ip->isV4() != (addressType == "IPv4")) {
    c.error(path, "must be an " + addressType + " address (addressType), got " + limits::dumpSafe(v));
    return std::nullopt;
  }
  return ip;
}

// hints.forZones / hints.forNodes: lists of {name: ...}.
std::vector<std::string> parseHintNames(ObjectContext& c, const json& hints, const char* key,
                                        const std::string& path) {
  std::vector<std::string> out;
  std::string at = path + "." + key;
  const json* list = optArray(c, hints, key, at);
  if (!list) return out;
  for (size_t i = 0; i < list->size(); ++i) {
    std::string item = indexPath(at, i);
    if (!(*list)[i].is_object()) {
      c.error(item, "must be an object with a name, got " + limits::dumpSafe((*list)[i]));
      continue;
    }
    auto name = optString(c, (*list)[i], "name", item + ".name").value_or("");
    if (name.empty())
      c.error(item + ".name", "is required");
    else
      out.push_back(name);
  }
  return out;
}

std::optional<SliceEndpoint> parseSliceEndpoint(ObjectContext& c, const json& e,
                                                const std::string& at, const EndpointSlice& s) {
  SliceEndpoint se;
  if (const json* addrs = optArray(c, e, "addresses", at + ".addresses")) {
    for (size_t j = 0; j < addrs->size(); ++j)
      if (auto ip = sliceAddress(c, (*addrs)[j], indexPath(at + ".addresses", j), s.addressType))
        se.addresses.push_back(*ip);
  }
  if (const json* cond = optObject(c, e, "conditions", at + ".conditions")) {
    se.ready = optBool(c, *cond, "ready", at + ".conditions.ready").value_or(true);
    // nil serving defers to ready (the API's documented reading).
    se.serving = optBool(c, *cond, "serving", at + ".conditions.serving").value_or(se.ready);
    se.terminating =
        optBool(c, *cond, "terminating", at + ".conditions.terminating").value_or(false);
  }
  se.nodeName = optString(c, e, "nodeName", at + ".nodeName").value_or("");
  if (const json* hints = optObject(c, e, "hints", at + ".hints")) {
    se.zoneHints = parseHintNames(c, *hints, "forZones", at + ".hints");
    se.nodeHints = parseHintNames(c, *hints, "forNodes", at + ".hints");
  }
  se.hostname = optString(c, e, "hostname", at + ".hostname").value_or("");
  se.targetRef = parseTargetRef(c, e, at + ".targetRef", s.ns);
  if (se.addresses.empty()) return std::nullopt;
  return se;
}

}  // namespace

EndpointsObject parseEndpoints(ObjectContext& c, const json& o, const ObjectMeta& m) {
  EndpointsObject eo{m.ns, m.name, m.file, {}};
  const json* subsets = optArray(c, o, "subsets", "subsets");
  if (!subsets) return eo;
  eo.subsets.reserve(subsets->size());
  for (size_t i = 0; i < subsets->size(); ++i) {
    const json& s = (*subsets)[i];
    std::string at = indexPath("subsets", i);
    EndpointSubset sub;
    sub.addresses = parseAddresses(c, s, "addresses", at + ".addresses", m.ns);
    sub.notReadyAddresses = parseAddresses(c, s, "notReadyAddresses", at + ".notReadyAddresses", m.ns);
    sub.ports = parseEndpointPorts(c, s, at + ".ports");
    eo.subsets.push_back(std::move(sub));
  }
  return eo;
}

EndpointSlice parseEndpointSlice(ObjectContext& c, const json& o, const ObjectMeta& m) {
  EndpointSlice s;
  s.ns = m.ns;
  s.name = m.name;
  s.file = m.file;
  auto svc = m.labels.find("kubernetes.io/service-name");
  if (svc != m.labels.end()) s.serviceName = svc->second;
  s.addressType = optString(c, o, "addressType", "addressType").value_or("");
  if (s.addressType.empty()) c.error("addressType", "is required");
  else if (s.addressType != "IPv4" && s.addressType != "IPv6" && s.addressType != "FQDN")
    c.error("addressType", "must be IPv4, IPv6 or FQDN, got \"" + s.addressType + "\"");
  s.ports = parseEndpointPorts(c, o, "ports");
  // FQDN slices name hosts, not addresses: nothing ferry can program.
  if (s.addressType != "IPv4" && s.addressType != "IPv6") return s;
  const json* eps = optArray(c, o, "endpoints", "endpoints");
  if (!eps) return s;
  s.endpoints.reserve(eps->size());
  for (size_t i = 0; i < eps->size(); ++i)
    if (auto se = parseSliceEndpoint(c, (*eps)[i], indexPath("endpoints", i), s))
      s.endpoints.push_back(std::move(*se));
  return s;
}

}  // namespace ferry
