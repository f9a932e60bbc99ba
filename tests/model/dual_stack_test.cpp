// Dual-stack services (KEP-563): spec.ipFamilyPolicy, spec.ipFamilies and
// spec.clusterIPs against service CIDRs of one or two families.
#include <gtest/gtest.h>

#include "model/builder.h"
#include "test_util.h"

namespace ferry {
namespace {

using test::cidr;
using test::docs;
using test::errorStrings;
using test::ip;
using test::podYaml;
using test::serviceYaml;

const std::vector<IpPrefix> kDual = {cidr("198.19.0.0/16"), cidr("2001:db8:ffff::/112")};

BuildOptions dualOptions(std::vector<IpPrefix> cidrs = kDual) {
  BuildOptions o = test::options();
  o.serviceCidrs = std::move(cidrs);
  return o;
}

struct Build {
  MemoryAllocationStore store;
  BuildOptions opts = dualOptions();
  ClusterSnapshot snap;
  ClusterSnapshot& run(const std::string& content) {
    ClusterSnapshot prev = snap;
    snap = buildSnapshot({{"m.yaml", content}}, opts, store, &prev);
    return snap;
  }
  const Service& svc(const std::string& key) { return snap.services.at(key); }
  std::vector<bool> families(const std::string& key) {
    std::vector<bool> out;
    for (const IpAddr& a : svc(key).clusterIPs) out.push_back(a.isV4());
    return out;
  }
};

// Errors only: IPv6 services carry a warning until the BPF path serves them.
std::vector<std::string> errorsOnly(const std::vector<ManifestError>& all) {
  std::vector<std::string> out;
  for (const ManifestError& e : all)
    if (!e.warning()) out.push_back(e.str());
  return out;
}

std::string svcSpec(const std::string& families) {
  return families + "  selector: {app: web}\n  ports: [{port: 80, targetPort: 8080}]\n";
}

// resolveIpFamilies: the table of KEP-563's cases.
FamilyChoice choose(std::optional<IpFamilyPolicy> policy, std::vector<bool> families,
                    std::vector<IpAddr> requested, const std::vector<IpPrefix>& cidrs) {
  AllocationRequest r{"default/web", true, requested};
  r.ipFamilies = families;
  r.ipFamilyPolicy = policy;
  return resolveIpFamilies(r, cidrs);
}

constexpr bool V4 = true, V6 = false;
using P = IpFamilyPolicy;

TEST(IpFamilies, PolicyTable) {
  const std::vector<IpPrefix> v4only = {cidr("198.19.0.0/16")};
  const std::vector<IpPrefix> v6first = {kDual[1], kDual[0]};
  EXPECT_EQ(choose({}, {}, {}, kDual).families, std::vector<bool>{V4});
  EXPECT_EQ(choose({}, {}, {}, v6first).families, std::vector<bool>{V6});
  EXPECT_EQ(choose(P::SingleStack, {V6}, {}, kDual).families, std::vector<bool>{V6});
  EXPECT_EQ(choose(P::PreferDualStack, {}, {}, kDual).families, (std::vector<bool>{V4, V6}));
  EXPECT_EQ(choose(P::PreferDualStack, {}, {}, v6first).families, (std::vector<bool>{V6, V4}));
  EXPECT_EQ(choose(P::PreferDualStack, {V6}, {}, kDual).families, (std::vector<bool>{V6, V4}));
  EXPECT_EQ(choose(P::PreferDualStack, {}, {}, v4only).families, std::vector<bool>{V4});
  EXPECT_EQ(choose(P::PreferDualStack, {V4, V6}, {}, v4only).families, std::vector<bool>{V4});
  EXPECT_EQ(choose(P::RequireDualStack, {}, {}, kDual).families, (std::vector<bool>{V4, V6}));
  // Unset policy with two families or two addresses is RequireDualStack.
  EXPECT_EQ(choose({}, {V6, V4}, {}, kDual).families, (std::vector<bool>{V6, V4}));
  EXPECT_EQ(choose({}, {}, {ip("2001:db8:ffff::5"), ip("198.19.0.5")}, kDual).families,
            (std::vector<bool>{V6, V4}));
  // A requested address fixes the primary family.
  EXPECT_EQ(choose(P::RequireDualStack, {}, {ip("2001:db8:ffff::5")}, kDual).families,
            (std::vector<bool>{V6, V4}));
}

TEST(IpFamilies, FamiliesTheClusterLacksAreErrors) {
  const std::vector<IpPrefix> v4only = {cidr("198.19.0.0/16")};
  FamilyChoice c = choose(P::RequireDualStack, {}, {}, v4only);
  EXPECT_EQ(c.field + ": " + c.error,
            "spec.ipFamilyPolicy: RequireDualStack needs service CIDRs of both IP families, but "
            "only IPv4 is configured (--service-cidr: 198.19.0.0/16)");
  c = choose(P::SingleStack, {V6}, {}, v4only);
  EXPECT_EQ(c.field + ": " + c.error,
            "spec.ipFamilies[0]: IPv6 is not configured on this cluster (service CIDRs, "
            "--service-cidr: 198.19.0.0/16)");
  c = choose({}, {V4, V6}, {}, v4only);  // RequireDualStack by default
  EXPECT_EQ(c.field, "spec.ipFamilies[1]");
  c = choose(P::PreferDualStack, {V6, V4}, {}, v4only);  // the primary may not be dropped
  EXPECT_EQ(c.field, "spec.ipFamilies[0]");
}

TEST(IpFamilies, ServiceCidrRulesOfKubeApiserver) {
  EXPECT_EQ(validateServiceCidrs(kDual), "");
  EXPECT_EQ(validateServiceCidrs({cidr("2001:db8:ffff::/108")}), "");
  EXPECT_EQ(validateServiceCidrs({cidr("2001:db8:ffff::/107")}),
            "2001:db8:ffff::/107 is too large: at most 2^20 addresses (/108 or longer), as "
            "kube-apiserver allows");
  EXPECT_EQ(validateServiceCidrs({cidr("10.0.0.0/11")}).substr(0, 25), "10.0.0.0/11 is too large:");
  EXPECT_EQ(validateServiceCidrs({cidr("198.19.0.0/16"), cidr("10.96.0.0/12")}),
            "the two CIDRs 198.19.0.0/16 and 10.96.0.0/12 must be of different IP families");
  EXPECT_NE(validateServiceCidrs({kDual[0], kDual[1], kDual[0]}), "");
}

TEST(DualStack, PoliciesAllocateOneAddressPerFamilyPrimaryFirst) {
  Build b;
  b.run(docs({serviceYaml("single", svcSpec("")),
              serviceYaml("prefer", svcSpec("  ipFamilyPolicy: PreferDualStack\n")),
              serviceYaml("v6first", svcSpec("  ipFamilyPolicy: RequireDualStack\n"
                                             "  ipFamilies: [IPv6, IPv4]\n")),
              serviceYaml("v6only", svcSpec("  ipFamilies: [IPv6]\n"))}));
  EXPECT_EQ(errorsOnly(b.snap.errors), std::vector<std::string>{});
  EXPECT_EQ(b.families("default/single"), std::vector<bool>{V4});
  EXPECT_EQ(b.families("default/prefer"), (std::vector<bool>{V4, V6}));
  EXPECT_EQ(b.families("default/v6first"), (std::vector<bool>{V6, V4}));
  EXPECT_EQ(b.families("default/v6only"), std::vector<bool>{V6});
  for (const char* key : {"default/prefer", "default/v6first", "default/v6only"})
    for (const IpAddr& a : b.svc(key).clusterIPs)
      EXPECT_TRUE(kDual[0].contains(a) || kDual[1].contains(a)) << key << " " << a.str();
}

TEST(DualStack, SameAddressesOnEveryNodeWhateverTheOrder) {
  std::vector<std::string> svcs;
  for (int i = 0; i < 20; ++i)
    svcs.push_back(serviceYaml("s" + std::to_string(i), svcSpec("  ipFamilyPolicy: PreferDualStack\n")));
  Build node1, node2;
  node1.run(docs(svcs));
  std::reverse(svcs.begin(), svcs.end());
  node2.run(docs(svcs));
  for (int i = 0; i < 20; ++i) {
    std::string key = "default/s" + std::to_string(i);
    ASSERT_EQ(node1.svc(key).clusterIPs.size(), 2u);
    EXPECT_EQ(node1.svc(key).clusterIPs, node2.svc(key).clusterIPs) << key;
  }
}

TEST(DualStack, RequestedPrimaryGetsADynamicSecondary) {
  Build b;
  b.run(serviceYaml("web", svcSpec("  clusterIP: 198.19.0.20\n  ipFamilyPolicy: RequireDualStack\n")));
  ASSERT_EQ(b.svc("default/web").clusterIPs.size(), 2u);
  EXPECT_EQ(b.svc("default/web").clusterIPs[0], ip("198.19.0.20"));
  EXPECT_TRUE(kDual[1].contains(b.svc("default/web").clusterIPs[1]));
  IpAddr second = b.svc("default/web").clusterIPs[1];
  b.run(serviceYaml("web", "  clusterIP: 198.19.0.20\n  ipFamilyPolicy: RequireDualStack\n"
                          "  ports: [{port: 81}]\n"));
  EXPECT_EQ(b.svc("default/web").clusterIPs[1], second) << "the secondary stays across edits";
}

TEST(DualStack, AddingAndDroppingTheSecondaryKeepsThePrimary) {
  Build b;
  b.run(serviceYaml("web", svcSpec("")));
  IpAddr primary = b.svc("default/web").clusterIPs.at(0);
  b.run(serviceYaml("web", svcSpec("  ipFamilyPolicy: PreferDualStack\n")));
  ASSERT_EQ(b.svc("default/web").clusterIPs.size(), 2u);
  EXPECT_EQ(b.svc("default/web").clusterIPs[0], primary);
  b.run(serviceYaml("web", svcSpec("  ipFamilyPolicy: SingleStack\n")));
  EXPECT_EQ(b.svc("default/web").clusterIPs, std::vector<IpAddr>{primary});
  // The released IPv6 address is free for another service to request.
  EXPECT_TRUE(b.store.record.services.at("default/web").clusterIPs == std::vector<IpAddr>{primary});
}

TEST(DualStack, ErrorsNameFileObjectAndField) {
  Build b;
  b.opts = dualOptions({cidr("198.19.0.0/16")});
  b.run(docs({serviceYaml("req", svcSpec("  ipFamilyPolicy: RequireDualStack\n")),
              serviceYaml("v6", svcSpec("  ipFamilies: [IPv6]\n")),
              serviceYaml("single2", svcSpec("  ipFamilyPolicy: SingleStack\n  ipFamilies: [IPv4, IPv6]\n")),
              serviceYaml("badpolicy", svcSpec("  ipFamilyPolicy: DualStack\n")),
              serviceYaml("prefer", svcSpec("  ipFamilyPolicy: PreferDualStack\n"))}));
  EXPECT_EQ(
      errorsOnly(b.snap.errors),
      (std::vector<std::string>{
          "m.yaml: Service default/single2: spec.ipFamilies: must hold one family when "
          "spec.ipFamilyPolicy is SingleStack",
          "m.yaml: Service default/badpolicy: spec.ipFamilyPolicy: must be SingleStack, "
          "PreferDualStack or RequireDualStack, got \"DualStack\"",
          "m.yaml: Service default/req: spec.ipFamilyPolicy: RequireDualStack needs service CIDRs "
          "of both IP families, but only IPv4 is configured (--service-cidr: 198.19.0.0/16)",
          "m.yaml: Service default/v6: spec.ipFamilies[0]: IPv6 is not configured on this cluster "
          "(service CIDRs, --service-cidr: 198.19.0.0/16)"}));
  EXPECT_EQ(b.snap.services.count("default/req"), 0u);
  EXPECT_EQ(b.snap.services.count("default/v6"), 0u);
  EXPECT_EQ(b.families("default/prefer"), std::vector<bool>{V4});  // PreferDualStack degrades
}

TEST(DualStack, DualStackPodsAreEndpointsOfEachFamily) {
  Build b;
  std::string pod = podYaml("web-1", "198.18.129.2", "{app: web}", true, "[]",
                            "  podIPs: [{ip: 198.18.129.2}, {ip: \"2001:db8:1:1::2\"}]\n");
  b.run(docs({serviceYaml("dual", svcSpec("  ipFamilyPolicy: PreferDualStack\n")),
              serviceYaml("v4", svcSpec("")), serviceYaml("v6", svcSpec("  ipFamilies: [IPv6]\n")),
              pod}));
  auto eps = [&](const std::string& key) {
    std::vector<std::string> out;
    for (const Endpoint& e : b.svc(key).ports.at(0).endpoints)
      out.push_back(e.ip.str() + ":" + std::to_string(e.port));
    return out;
  };
  EXPECT_EQ(eps("default/dual"), (std::vector<std::string>{"198.18.129.2:8080", "2001:db8:1:1::2:8080"}));
  EXPECT_EQ(eps("default/v4"), std::vector<std::string>{"198.18.129.2:8080"});
  EXPECT_EQ(eps("default/v6"), std::vector<std::string>{"2001:db8:1:1::2:8080"});
}

TEST(DualStack, Ipv6EndpointSlicesServeTheIpv6Family) {
  Build b;
  std::string slice =
      "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata:\n  name: dual-v6\n"
      "  labels: {kubernetes.io/service-name: dual}\naddressType: IPv6\n"
      "ports: [{port: 8080}]\nendpoints:\n- addresses: [\"2001:db8:1:2::5\"]\n"
      "  conditions: {ready: true}\n";
  std::string slice4 =
      "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata:\n  name: dual-v4\n"
      "  labels: {kubernetes.io/service-name: dual}\naddressType: IPv4\n"
      "ports: [{port: 8080}]\nendpoints:\n- addresses: [198.18.130.5]\n"
      "  conditions: {ready: true}\n";
  b.run(docs({serviceYaml("dual", "  ipFamilyPolicy: RequireDualStack\n  ports: [{port: 80, targetPort: 8080}]\n"),
              slice, slice4}));
  EXPECT_EQ(errorsOnly(b.snap.errors), std::vector<std::string>{});
  std::vector<std::string> got;
  for (const Endpoint& e : b.svc("default/dual").ports.at(0).endpoints) got.push_back(e.ip.str());
  EXPECT_EQ(got, (std::vector<std::string>{"198.18.130.5", "2001:db8:1:2::5"}));
}

TEST(DualStack, ServiceJsonShowsTheFamiliesAndPolicyAsTheApiserverStoresThem) {
  Build b;
  b.run(docs({serviceYaml("prefer", svcSpec("  ipFamilyPolicy: PreferDualStack\n")),
              serviceYaml("plain", svcSpec(""))}));
  nlohmann::json j = serviceToJson(b.svc("default/prefer"));
  EXPECT_EQ(j["spec"]["ipFamilies"], nlohmann::json::parse(R"(["IPv4","IPv6"])"));
  EXPECT_EQ(j["spec"]["ipFamilyPolicy"], "PreferDualStack");
  EXPECT_EQ(j["spec"]["clusterIPs"].size(), 2u);
  EXPECT_EQ(j["spec"]["clusterIP"], j["spec"]["clusterIPs"][0]);
  nlohmann::json p = serviceToJson(b.svc("default/plain"));
  EXPECT_EQ(p["spec"]["ipFamilies"], nlohmann::json::parse(R"(["IPv4"])"));
  EXPECT_EQ(p["spec"]["ipFamilyPolicy"], "SingleStack");
}

}  // namespace
}  // namespace ferry
