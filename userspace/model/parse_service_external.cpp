// Service fields about traffic from outside the cluster: node ports'
// traffic policy, external IPs and the LoadBalancer settings. Validation
// follows the apiserver's (pkg/apis/core/validation) where ferry can.
#include "common/limits.h"
#include "model/load_balancer.h"
#include "model/object_parsers.h"

namespace ferry {

using nlohmann::json;

namespace {

bool isLoadBalancer(const Service& s) { return s.type == ServiceType::LoadBalancer; }

// "" when ip may be an external IP; else why not (ValidateNonSpecialIP).
std::string specialIpReason(const IpAddr& ip) {
  struct Range {
    const char* v4;
    const char* v6;
    const char* what;
  };
  static const Range kRanges[] = {
      {"0.0.0.0/32", "::/128", "unspecified (0.0.0.0, ::)"},
      {"127.0.0.0/8", "::1/128", "in the loopback range (127.0.0.0/8, ::1/128)"},
      {"169.254.0.0/16", "fe80::/10", "in the link-local range (169.254.0.0/16, fe80::/10)"},
      {"224.0.0.0/24", "ff02::/16",
       "in the link-local multicast range (224.0.0.0/24, ff02::/16)"},
  };
  for (const Range& r : kRanges)
    if (IpPrefix::parse(ip.isV4() ? r.v4 : r.v6)->contains(ip))
      return std::string("may not be ") + r.what;
  return "";
}

// externalTrafficPolicy: Cluster (default; "Global" is its old name) or
// Local. Like the apiserver after a type change, it is ignored for
// services it cannot apply to (see Service::externallyAccessible).
void parseTrafficPolicy(ObjectContext& c, const json& spec, Service& s) {
  const std::string path = "spec.externalTrafficPolicy";
  auto p = optString(c, spec, "externalTrafficPolicy", path);
  if (!p || p->empty() || *p == "Cluster" || *p == "Global") return;
  if (*p != "Local") {
    c.error(path, "unsupported value \"" + *p + "\": must be Cluster or Local");
    return;
  }
  s.externalTrafficLocal = s.externallyAccessible();
}

// 0 (or absent) asks for a dynamic port when one is needed.
void parseHealthCheckNodePort(ObjectContext& c, const json& spec, Service& s) {
  const std::string path = "spec.healthCheckNodePort";
  auto n = optInt(c, spec, "healthCheckNodePort", path);
  if (!n || *n == 0) return;
  if (*n < 0 || *n > 65535) {
    c.error(path, "must be between 1 and 65535, got " + std::to_string(*n));
    return;
  }
  if (!isLoadBalancer(s) || !s.externalTrafficLocal) {
    c.error(path,
            "may only be set when type is 'LoadBalancer' and externalTrafficPolicy is 'Local'");
    return;
  }
  s.healthCheckNodePort = uint16_t(*n);
}

void parseExternalIPs(ObjectContext& c, const json& spec, Service& s) {
  const json* list = optArray(c, spec, "externalIPs", "spec.externalIPs");
  if (!list) return;
  for (size_t i = 0; i < list->size(); ++i) {
    const json& v = (*list)[i];
    std::string path = indexPath("spec.externalIPs", i);
    auto ip = v.is_string() ? IpAddr::parse(v.get<std::string>()) : std::nullopt;
    if (!ip) {
      c.error(path, "must be a valid IP address, got " + limits::dumpSafe(v));
      continue;
    }
    if (auto why = specialIpReason(*ip); !why.empty()) {
      c.error(path, why + ", got " + limits::dumpSafe(v));
      continue;
    }
    s.externalIPs.push_back(*ip);
  }
}

void parseSourceRanges(ObjectContext& c, const json& spec, Service& s) {
  const std::string path = "spec.loadBalancerSourceRanges";
  const json* list = optArray(c, spec, "loadBalancerSourceRanges", path);
  if (!list || list->empty()) return;
  if (!isLoadBalancer(s)) c.error(path, "may only be used when type is 'LoadBalancer'");
  for (size_t i = 0; i < list->size(); ++i) {
    const json& v = (*list)[i];
    std::optional<IpPrefix> pfx;
    if (v.is_string()) {
      std::string text = v.get<std::string>();
      auto first = text.find_first_not_of(" \t");
      auto last = text.find_last_not_of(" \t");
      if (first != std::string::npos)
        pfx = IpPrefix::parseMasked(text.substr(first, last - first + 1));
    }
    if (!pfx)
      c.error(indexPath(path, i), "must be a CIDR such as 10.240.0.0/24, got " + limits::dumpSafe(v));
    else
      s.loadBalancerSourceRanges.push_back(*pfx);
  }
}

std::string trimmed(const std::string& text) {
  auto first = text.find_first_not_of(" \t");
  if (first == std::string::npos) return "";
  return text.substr(first, text.find_last_not_of(" \t") - first + 1);
}

// "a, b,c" -> {"a", "b", "c"}; "" -> {}.
std::vector<std::string> commaList(const std::string& text) {
  std::vector<std::string> out;
  if (trimmed(text).empty()) return out;
  size_t start = 0;
  for (;;) {
    auto comma = text.find(',', start);
    out.push_back(trimmed(text.substr(start, comma == std::string::npos ? comma : comma - start)));
    if (comma == std::string::npos) return out;
    start = comma + 1;
  }
}

const std::string* annotation(const Service& s, const char* key) {
  auto it = s.annotations.find(key);
  return it == s.annotations.end() ? nullptr : &it->second;
}

// Kubernetes reads the annotation when the field is empty (LoadBalancer only).
void parseSourceRangesAnnotation(ObjectContext& c, Service& s) {
  const std::string* text = annotation(s, kSourceRangesAnnotation);
  if (!text || !s.loadBalancerSourceRanges.empty()) return;
  std::vector<IpPrefix> ranges;
  for (const auto& part : commaList(*text)) {
    auto pfx = IpPrefix::parseMasked(part);
    if (!pfx) {
      c.error(annotationPath(kSourceRangesAnnotation),
              "must be a list of CIDRs such as 10.240.0.0/24,10.250.0.0/24, got \"" + *text + "\"");
      return;
    }
    ranges.push_back(*pfx);
  }
  s.loadBalancerSourceRanges = ranges;
}

// MetalLB's annotations; other controllers' ones are left alone.
void parseMetalLBAnnotations(ObjectContext& c, Service& s) {
  if (const std::string* text = annotation(s, kLoadBalancerIPsAnnotation)) {
    for (const auto& part : commaList(*text)) {
      auto ip = IpAddr::parse(part);
      if (!ip) {
        c.error(annotationPath(kLoadBalancerIPsAnnotation),
                "\"" + part + "\" is not a valid IP address");
        continue;
      }
      s.requestedLoadBalancerIPs.push_back(*ip);
    }
    if (s.loadBalancerIP && !s.requestedLoadBalancerIPs.empty())
      c.error("spec.loadBalancerIP", std::string("may not be set together with the annotation ") +
                                         kLoadBalancerIPsAnnotation);
  }
  if (const std::string* pool = annotation(s, kAddressPoolAnnotation))
    s.addressPool = trimmed(*pool);
  if (const std::string* key = annotation(s, kSharedIPAnnotation)) s.sharedIPKey = *key;
}

void parseLoadBalancer(ObjectContext& c, const json& spec, Service& s) {
  const std::string allocPath = "spec.allocateLoadBalancerNodePorts";
  if (auto alloc = optBool(c, spec, "allocateLoadBalancerNodePorts", allocPath)) {
    if (!isLoadBalancer(s))
      c.error(allocPath, "may only be used when type is 'LoadBalancer'");
    else
      s.allocateLoadBalancerNodePorts = *alloc;
  }
  s.loadBalancerIP = optIp(c, spec, "loadBalancerIP", "spec.loadBalancerIP");
  parseSourceRanges(c, spec, s);
  if (!isLoadBalancer(s)) return;
  parseSourceRangesAnnotation(c, s);
  parseMetalLBAnnotations(c, s);
}

}  // namespace

void parseExternalFields(ObjectContext& c, const json& spec, Service& s) {
  parseExternalIPs(c, spec, s);  // first: they make a ClusterIP service externally accessible
  parseTrafficPolicy(c, spec, s);
  parseHealthCheckNodePort(c, spec, s);
  parseLoadBalancer(c, spec, s);
}

}  // namespace ferry
