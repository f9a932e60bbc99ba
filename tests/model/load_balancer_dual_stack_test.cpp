// Dual-stack LoadBalancer services: one address per family from the pools,
// the loadBalancerIPs annotation's comma list, all or nothing.
#include <gtest/gtest.h>

#include "lb_test_util.h"
#include "model/builder.h"
#include "model/load_balancer.h"

namespace ferry {
namespace {

using test::cidr;
using test::docs;
using test::ip;
using test::lbYaml;
using test::poolYaml;

const std::string kDualPool = poolYaml("dual", "[198.18.0.200-198.18.0.201, \"2001:db8::200-2001:db8::201\"]");

std::vector<std::string> errorsOnly(const std::vector<ManifestError>& all) {
  std::vector<std::string> out;
  for (const ManifestError& e : all)
    if (!e.warning()) out.push_back(e.str());
  return out;
}

struct DualLb {
  MemoryAllocationStore store;
  BuildOptions opts = [] {
    BuildOptions o = test::options();
    o.serviceCidrs = {cidr("198.19.0.0/16"), cidr("2001:db8:ffff::/112")};
    return o;
  }();
  ClusterSnapshot snap;
  void run(const std::vector<std::string>& objects) {
    ClusterSnapshot prev = snap;
    snap = buildSnapshot({{"m.yaml", docs(objects)}}, opts, store, &prev);
  }
  std::string lb(const std::string& name) {
    const Service& s = snap.services.at("default/" + name);
    if (!s.loadBalancerPending.empty()) return "pending: " + s.loadBalancerPending;
    std::string out;
    for (const auto& a : s.loadBalancerIngress) out += (out.empty() ? "" : ",") + a.str();
    return out;
  }
};

const std::string kPrefer = "  ipFamilyPolicy: PreferDualStack\n";

TEST(LoadBalancerDualStack, OneAddressPerFamilyPrimaryFirst) {
  DualLb b;
  b.run({kDualPool, lbYaml("a", "", kPrefer),
         lbYaml("b", "", "  ipFamilyPolicy: RequireDualStack\n  ipFamilies: [IPv6, IPv4]\n"),
         lbYaml("v4")});
  EXPECT_EQ(errorsOnly(b.snap.errors), std::vector<std::string>{});
  EXPECT_EQ(b.lb("a"), "198.18.0.200,2001:db8::200");
  EXPECT_EQ(b.lb("b"), "2001:db8::201,198.18.0.201");
  EXPECT_EQ(b.lb("v4"), "pending: no available IPs in pool(s) dual");
  // Stable across passes, and the JSON shows both as status.loadBalancer.ingress.
  b.run({kDualPool, lbYaml("a", "", kPrefer),
         lbYaml("b", "", "  ipFamilyPolicy: RequireDualStack\n  ipFamilies: [IPv6, IPv4]\n"),
         lbYaml("v4")});
  EXPECT_EQ(b.lb("a"), "198.18.0.200,2001:db8::200");
  nlohmann::json j = serviceToJson(b.snap.services.at("default/a"));
  EXPECT_EQ(j["status"]["loadBalancer"]["ingress"].size(), 2u) << j.dump();
}

TEST(LoadBalancerDualStack, AnnotationListsOneAddressPerFamily) {
  DualLb b;
  b.run({kDualPool,
         lbYaml("a", "{metallb.universe.tf/loadBalancerIPs: \"2001:db8::201,198.18.0.201\"}", kPrefer),
         lbYaml("short", "{metallb.universe.tf/loadBalancerIPs: \"2001:db8::200\"}", kPrefer),
         lbYaml("legacy", "", kPrefer + "  loadBalancerIP: 198.18.0.200\n")});
  EXPECT_EQ(b.lb("a"), "198.18.0.201,2001:db8::201");
  EXPECT_EQ(b.lb("short"),
            "pending: metadata.annotations[metallb.universe.tf/loadBalancerIPs]: has no IPv4 "
            "address (one of the service's IP families)");
  // spec.loadBalancerIP names the primary family; the other is dynamic.
  EXPECT_EQ(b.lb("legacy"), "198.18.0.200,2001:db8::200");
  EXPECT_EQ(errorsOnly(b.snap.errors),
            std::vector<std::string>{
                "m.yaml: Service default/short: metadata.annotations[metallb.universe.tf/"
                "loadBalancerIPs]: has no IPv4 address (one of the service's IP families)"});
}

TEST(LoadBalancerDualStack, AllOrNothingWhenAFamilyRunsOut) {
  DualLb b;
  b.run({poolYaml("p", "[198.18.0.200/32, \"2001:db8::200/128\"]"),
         lbYaml("a", "", "  ipFamilies: [IPv6]\n"), lbYaml("b", "", kPrefer)});
  EXPECT_EQ(b.lb("a"), "2001:db8::200");
  EXPECT_EQ(b.lb("b"), "pending: no available IPv6 IPs in pool(s) p");
  EXPECT_TRUE(b.store.record.services.at("default/b").loadBalancerIPs.empty())
      << "the IPv4 address is not held while the service is pending";
  // The IPv6 holder goes: b gets both.
  b.run({poolYaml("p", "[198.18.0.200/32, \"2001:db8::200/128\"]"), lbYaml("b", "", kPrefer)});
  EXPECT_EQ(b.lb("b"), "198.18.0.200,2001:db8::200");
}

TEST(LoadBalancerDualStack, DroppingTheSecondaryFamilyReleasesItsAddress) {
  DualLb b;
  b.run({kDualPool, lbYaml("a", "", kPrefer)});
  EXPECT_EQ(b.lb("a"), "198.18.0.200,2001:db8::200");
  b.run({kDualPool, lbYaml("a", "", "  ipFamilyPolicy: SingleStack\n")});
  EXPECT_EQ(b.lb("a"), "198.18.0.200");
  b.run({kDualPool, lbYaml("a", "", "  ipFamilyPolicy: SingleStack\n"),
         lbYaml("b", "", "  ipFamilies: [IPv6]\n")});
  EXPECT_EQ(b.lb("b"), "2001:db8::200");
}

// Found by the randomized equality test (dual-stack, seed 21 step 930): a
// RequireDualStack service whose pools no longer auto-assign either family
// was pending with a text that depended on the address it still held (the
// pass that held its IPv6 address named IPv4, a build from scratch named
// IPv6). Under all or nothing the text is the from-scratch one.
TEST(LoadBalancerDualStack, PendingTextDoesNotDependOnHeldAddresses) {
  const std::string require = "  ipFamilyPolicy: RequireDualStack\n  ipFamilies: [IPv4, IPv6]\n";
  const std::string p4 = poolYaml("p4", "[198.18.0.200-198.18.0.201]");
  const std::string p6 = poolYaml("p6", "[\"2001:db8::200-2001:db8::201\"]");
  const std::string p6Manual =
      poolYaml("p6", "[\"2001:db8::200-2001:db8::201\"]", "  autoAssign: false\n");
  DualLb held;
  held.run({p4, p6, lbYaml("a", "", require)});
  ASSERT_EQ(held.lb("a"), "198.18.0.200,2001:db8::200");
  // p4 gone (its address released), p6 manual only (its address still held
  // when the pass starts).
  held.run({p6Manual, lbYaml("a", "", require)});
  DualLb fresh;
  fresh.run({p6Manual, lbYaml("a", "", require)});
  EXPECT_EQ(fresh.lb("a"), "pending: no auto-assign address pool has IPv6 addresses");
  EXPECT_EQ(held.lb("a"), fresh.lb("a"));
  EXPECT_TRUE(held.store.record.services["default/a"].loadBalancerIPs.empty());
}

// Found by the randomized equality test (dual-stack, seed 25 step 336): a
// service that became dual-stack while its pools stopped auto-assigning
// kept its IPv4 address through the pass, so another service's request for
// that address was turned away, although the service ended pending and gave
// the address back (a build from scratch gives it to the request). Services
// that end pending whatever happens are decided first and hold nothing.
TEST(LoadBalancerDualStack, SurelyPendingServiceHoldsNothingDuringThePass) {
  const std::string single = "  ipFamilyPolicy: SingleStack\n";
  const std::string manual = poolYaml("dual", "[198.18.0.200-198.18.0.201, \"2001:db8::200-2001:db8::201\"]",
                                      "  autoAssign: false\n");
  const std::string wants = "{metallb.universe.tf/loadBalancerIPs: \"198.18.0.200\"}";
  DualLb held;
  held.run({kDualPool, lbYaml("a", "", single)});
  ASSERT_EQ(held.lb("a"), "198.18.0.200");
  held.run({manual, lbYaml("a", "", kPrefer), lbYaml("b", wants)});
  DualLb fresh;
  fresh.run({manual, lbYaml("a", "", kPrefer), lbYaml("b", wants)});
  EXPECT_EQ(fresh.lb("a"), "pending: no auto-assign address pool has IPv6 addresses");
  EXPECT_EQ(fresh.lb("b"), "198.18.0.200");
  EXPECT_EQ(held.lb("a"), fresh.lb("a"));
  EXPECT_EQ(held.lb("b"), fresh.lb("b"));
  EXPECT_TRUE(held.store.record.services["default/a"].loadBalancerIPs.empty());
}

}  // namespace
}  // namespace ferry
