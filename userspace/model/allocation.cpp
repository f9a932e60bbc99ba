// JSON form of the allocation record:
//   {"services": {"default/web": {"clusterIPs": ["198.19.0.10"],
//                                 "created": "2024-05-01T12:00:00Z",
//                                 "nodePorts": {"http/TCP": 30080},
//                                 "healthCheckNodePort": 31000,
//                                 "loadBalancerIPs": ["198.18.0.200"]}}}
// nodePorts, healthCheckNodePort and loadBalancerIPs are left out when
// there are none, so records of ClusterIP-only services read the same by
// older agents (which keep unknown members as they are).
#include "model/allocation.h"
#include "model/offset_bitmap.h"

#include <algorithm>
#include <ctime>

namespace ferry {

using nlohmann::json;

namespace {

json allocationToJson(const ServiceAllocation& a) {
  json j = a.extra.is_object() ? a.extra : json::object();
  json ips = json::array();
  for (const auto& ip : a.clusterIPs) ips.push_back(ip.str());
  j["clusterIPs"] = ips;
  j["created"] = a.created;
  if (!a.nodePorts.empty()) j["nodePorts"] = a.nodePorts;
  if (a.healthCheckNodePort) j["healthCheckNodePort"] = a.healthCheckNodePort;
  if (!a.loadBalancerIPs.empty()) {
    json lb = json::array();
    for (const auto& ip : a.loadBalancerIPs) lb.push_back(ip.str());
    j["loadBalancerIPs"] = lb;
  }
  return j;
}

bool portFromJson(const json& v, uint16_t* out) {
  if (!v.is_number_integer()) return false;
  int64_t n = v.is_number_unsigned() ? int64_t(std::min<uint64_t>(v.get<uint64_t>(), 1u << 20))
                                     : v.get<int64_t>();
  if (n < 0 || n > 65535) return false;
  *out = uint16_t(n);
  return true;
}

bool nodePortsFromJson(const std::string& at, const json& v, ServiceAllocation* out,
                       std::string* error) {
  if (!v.is_object()) return *error = at + ".nodePorts must be an object", false;
  for (const auto& [port, n] : v.items()) {
    uint16_t num = 0;
    if (!portFromJson(n, &num) || num == 0)
      return *error = at + ".nodePorts[\"" + port + "\"]: not a port number: " + n.dump(), false;
    out->nodePorts[port] = num;
  }
  return true;
}

bool ipsFromJson(const std::string& at, const char* member, const json& v,
                 std::vector<IpAddr>* out, std::string* error) {
  if (!v.is_array()) return *error = at + "." + member + " must be a list", false;
  for (const auto& s : v) {
    auto ip = s.is_string() ? IpAddr::parse(s.get<std::string>()) : std::nullopt;
    if (!ip) return *error = at + "." + member + ": not an IP address: " + s.dump(), false;
    out->push_back(*ip);
  }
  return true;
}

bool allocationFromJson(const std::string& key, const json& j, ServiceAllocation* out,
                        std::string* error) {
  std::string at = "services[\"" + key + "\"]";
  if (!j.is_object()) return *error = at + " must be an object", false;
  for (const auto& [member, v] : j.items()) {
    if (member == "clusterIPs") {
      if (!ipsFromJson(at, "clusterIPs", v, &out->clusterIPs, error)) return false;
    } else if (member == "loadBalancerIPs") {
      if (!ipsFromJson(at, "loadBalancerIPs", v, &out->loadBalancerIPs, error)) return false;
    } else if (member == "created") {
      if (!v.is_string()) return *error = at + ".created must be a string", false;
      out->created = v.get<std::string>();
    } else if (member == "nodePorts") {
      if (!nodePortsFromJson(at, v, out, error)) return false;
    } else if (member == "healthCheckNodePort") {
      if (!portFromJson(v, &out->healthCheckNodePort))
        return *error = at + ".healthCheckNodePort: not a port number: " + v.dump(), false;
    } else {
      out->extra[member] = v;
    }
  }
  return true;
}

}  // namespace

json AllocationRecord::toJson() const {
  json j = extra.is_object() ? extra : json::object();
  json svcs = json::object();
  for (const auto& [key, a] : services) svcs[key] = allocationToJson(a);
  j["services"] = svcs;
  return j;
}

bool AllocationRecord::fromJson(const json& j, AllocationRecord* out, std::string* error) {
  *out = AllocationRecord{};
  if (!j.is_object()) return *error = "the record must be a JSON object", false;
  for (const auto& [member, v] : j.items()) {
    if (member != "services") {
      out->extra[member] = v;
      continue;
    }
    if (!v.is_object()) return *error = "services must be an object", false;
    for (const auto& [key, a] : v.items())
      if (!allocationFromJson(key, a, &out->services[key], error)) return false;
  }
  return true;
}

std::string rfc3339Now() {
  std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

}  // namespace ferry

namespace ferry {

AllocationIndexHolder::AllocationIndexHolder(const AllocationIndexHolder& o) { *this = o; }

AllocationIndexHolder& AllocationIndexHolder::operator=(const AllocationIndexHolder& o) {
  if (this == &o) return *this;
  p = o.p ? std::make_unique<AllocationIndex>(*o.p) : nullptr;
  if (p)
    for (auto& [cidr, bits] : p->ipBits) bits = std::make_shared<OffsetBitmap>(*bits);
  if (p && p->portBits) p->portBits = std::make_shared<OffsetBitmap>(*p->portBits);
  return *this;
}

}  // namespace ferry
