// Dual-stack family resolution and service CIDR checks (allocation.h).
#include "model/allocation.h"

namespace ferry {

namespace {

const char* familyName(bool v4) { return v4 ? "IPv4" : "IPv6"; }

std::string clusterIPPath(size_t i) {
  return i == 0 ? "spec.clusterIP" : "spec.clusterIPs[" + std::to_string(i) + "]";
}

}  // namespace

std::string validateServiceCidrs(const std::vector<IpPrefix>& cidrs) {
  if (cidrs.size() > 2) return "at most two CIDRs, one per IP family";
  if (cidrs.size() == 2 && cidrs[0].addr.isV4() == cidrs[1].addr.isV4())
    return "the two CIDRs " + cidrs[0].str() + " and " + cidrs[1].str() +
           " must be of different IP families";
  for (const IpPrefix& c : cidrs) {
    int bits = c.addr.isV4() ? 32 : 128;
    if (bits - c.len > 20)
      return c.str() + " is too large: at most 2^20 addresses (" +
             (c.addr.isV4() ? "/12" : "/108") + " or longer), as kube-apiserver allows";
  }
  return "";
}

FamilyChoice resolveIpFamilies(const AllocationRequest& r, const std::vector<IpPrefix>& cidrs) {
  FamilyChoice out;
  bool have[2] = {false, false};  // [0] IPv6, [1] IPv4
  std::string configured;
  for (const IpPrefix& c : cidrs) {
    have[c.addr.isV4()] = true;
    configured += (configured.empty() ? "" : ", ") + c.str();
  }
  if (cidrs.empty()) {
    out.field = "spec.clusterIP";
    out.error = "no service CIDR is configured";
    return out;
  }
  IpFamilyPolicy policy = r.ipFamilyPolicy.value_or(
      r.ipFamilies.size() == 2 || r.requested.size() == 2 ? IpFamilyPolicy::RequireDualStack
                                                          : IpFamilyPolicy::SingleStack);
  // What the manifest names, slot by slot: a requested address fixes its
  // slot's family, else spec.ipFamilies does.
  std::vector<std::pair<bool, std::string>> named;  // family, field
  for (size_t i = 0; i < 2; ++i) {
    if (i < r.requested.size())
      named.push_back({r.requested[i].isV4(), clusterIPPath(i)});
    else if (i < r.ipFamilies.size())
      named.push_back({r.ipFamilies[i], "spec.ipFamilies[" + std::to_string(i) + "]"});
  }
  for (size_t i = 0; i < named.size(); ++i) {
    if (have[named[i].first]) continue;
    if (i == 1 && policy == IpFamilyPolicy::PreferDualStack) {
      named.resize(1);
      break;
    }
    out.field = named[i].second;
    out.error = std::string(familyName(named[i].first)) +
                " is not configured on this cluster (service CIDRs, --service-cidr: " +
                configured + ")";
    return out;
  }
  bool primary = named.empty() ? cidrs.front().addr.isV4() : named[0].first;
  out.families = {primary};
  bool dual = have[0] && have[1];
  if (policy == IpFamilyPolicy::RequireDualStack && !dual) {
    out.families.clear();
    out.field = "spec.ipFamilyPolicy";
    out.error = "RequireDualStack needs service CIDRs of both IP families, but only " +
                std::string(familyName(primary)) + " is configured (--service-cidr: " +
                configured + ")";
    return out;
  }
  if (policy != IpFamilyPolicy::SingleStack && dual) out.families.push_back(!primary);
  return out;
}

}  // namespace ferry
