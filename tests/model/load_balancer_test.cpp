// LoadBalancer addresses from the address pools: assignment, sharing,
// stability, release, and what the snapshot and JSON views show.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>

#include "lb_test_util.h"
#include "model/load_balancer.h"
#include "model/manifest.h"

namespace ferry {
namespace {

using test::cidr;
using test::docs;
using test::errorStrings;
using test::errorsText;
using test::ip;
using test::lbYaml;
using test::options;
using test::poolYaml;
using test::serviceYaml;

const std::string kPool = poolYaml("default-pool", "[198.18.0.200/29]");

struct LbBuild {
  MemoryAllocationStore store;
  BuildOptions opts = options();
  ClusterSnapshot snap;
  ClusterSnapshot& run(const std::vector<std::string>& objects) {
    ClusterSnapshot prev = snap;
    snap = buildSnapshot({{"m.yaml", docs(objects)}}, opts, store, &prev);
    return snap;
  }
  // "198.18.0.200", "" (none) or "pending: <reason>".
  std::string lb(const std::string& name) {
    const Service& s = snap.services.at("default/" + name);
    if (!s.loadBalancerPending.empty()) {
      EXPECT_TRUE(s.loadBalancerIngress.empty());
      return "pending: " + s.loadBalancerPending;
    }
    std::string out;
    for (const auto& a : s.loadBalancerIngress) out += (out.empty() ? "" : ",") + a.str();
    return out;
  }
  std::vector<IpAddr> recorded(const std::string& name) {
    return store.record.services.at("default/" + name).loadBalancerIPs;
  }
};

TEST(LoadBalancer, FirstFreeAddressInServiceOrder) {
  LbBuild b;
  b.run({kPool, lbYaml("b"), lbYaml("a"), serviceYaml("plain", "  ports: [{port: 80}]\n"),
         serviceYaml("np", "  type: NodePort\n  ports: [{port: 80}]\n")});
  EXPECT_EQ(errorsText(b.snap.errors), "");
  EXPECT_EQ(b.lb("a"), "198.18.0.200");
  EXPECT_EQ(b.lb("b"), "198.18.0.201");
  EXPECT_EQ(b.lb("plain"), "");
  EXPECT_EQ(b.lb("np"), "");
  EXPECT_EQ(b.recorded("a"), std::vector<IpAddr>{ip("198.18.0.200")});
  EXPECT_TRUE(b.recorded("plain").empty());
  // A LoadBalancer keeps its ClusterIP and node ports.
  const Service& a = b.snap.services.at("default/a");
  EXPECT_EQ(a.clusterIPs.size(), 1u);
  EXPECT_NE(a.ports[0].nodePort, 0);
}

TEST(LoadBalancer, AvoidBuggyIPsSkipsDotZeroAndDot255) {
  LbBuild b;
  b.run({poolYaml("p", "[\"198.18.0.254-198.18.1.1\"]", "  avoidBuggyIPs: true\n"), lbYaml("a"),
         lbYaml("b"), lbYaml("c"),
         lbYaml("d", "", "  loadBalancerIP: 198.18.0.255\n")});
  EXPECT_EQ(b.lb("a"), "198.18.0.254");
  EXPECT_EQ(b.lb("b"), "198.18.1.1");
  EXPECT_EQ(b.lb("c"), "pending: no available IPs in pool(s) p");
  EXPECT_EQ(b.lb("d"),
            "pending: spec.loadBalancerIP: 198.18.0.255 is excluded from address pool p by "
            "avoidBuggyIPs");
}

TEST(LoadBalancer, RequestedFromFieldAndAnnotation) {
  LbBuild b;
  b.run({kPool, lbYaml("a"), lbYaml("field", "", "  loadBalancerIP: 198.18.0.200\n"),
         lbYaml("ann", "{metallb.universe.tf/loadBalancerIPs: \"2001:db8::1, 198.18.0.203\"}")});
  EXPECT_EQ(errorsText(b.snap.errors), "");
  // Requests are granted before dynamic picks, whatever the name order.
  EXPECT_EQ(b.lb("field"), "198.18.0.200");
  EXPECT_EQ(b.lb("ann"), "198.18.0.203");
  EXPECT_EQ(b.lb("a"), "198.18.0.201");
  const Service& ann = b.snap.services.at("default/ann");
  EXPECT_EQ(ann.requestedLoadBalancerIPs, (std::vector<IpAddr>{ip("2001:db8::1"), ip("198.18.0.203")}));
}

TEST(LoadBalancer, RequestErrorsLeaveTheServiceServedWithoutAddress) {
  LbBuild b;
  b.run({kPool, lbYaml("other", "", "  loadBalancerIP: 198.18.0.201\n"),
         lbYaml("out", "", "  loadBalancerIP: 198.18.0.99\n"),
         lbYaml("taken", "", "  loadBalancerIP: 198.18.0.201\n"),
         lbYaml("v6", "", "  loadBalancerIP: \"2001:db8::1\"\n"),
         lbYaml("v6ann", "{metallb.universe.tf/loadBalancerIPs: \"2001:db8::1,2001:db8::2\"}"),
         lbYaml("nopool", "{metallb.universe.tf/address-pool: nope}")});
  EXPECT_EQ(errorStrings(b.snap.errors),
            (std::vector<std::string>{
                "m.yaml: Service default/out: spec.loadBalancerIP: 198.18.0.99 is not in any "
                "address pool",
                "m.yaml: Service default/taken: spec.loadBalancerIP: 198.18.0.201 is already "
                "assigned to default/other",
                "m.yaml: Service default/v6: spec.loadBalancerIP: 2001:db8::1 is not an IPv4 "
                "address (the service's IP family)",
                "m.yaml: Service default/v6ann: metadata.annotations[metallb.universe.tf/"
                "loadBalancerIPs]: has no IPv4 address (the service's IP family)",
                "m.yaml: Service default/nopool: metadata.annotations[metallb.universe.tf/"
                "address-pool]: unknown address pool \"nope\""}));
  EXPECT_EQ(b.lb("other"), "198.18.0.201");
  EXPECT_EQ(b.lb("out"), "pending: spec.loadBalancerIP: 198.18.0.99 is not in any address pool");
  EXPECT_EQ(b.lb("taken"),
            "pending: spec.loadBalancerIP: 198.18.0.201 is already assigned to default/other");
  EXPECT_EQ(b.snap.services.at("default/taken").clusterIPs.size(), 1u);
  EXPECT_TRUE(b.recorded("taken").empty());
}

TEST(LoadBalancer, PoolChosenByAnnotationAndNonAutoAssignPools) {
  LbBuild b;
  std::string manual = poolYaml("manual", "[198.18.1.0/30]", "  autoAssign: false\n");
  b.run({kPool, manual, lbYaml("auto"),
         lbYaml("chosen", "{metallb.universe.tf/address-pool: manual}"),
         lbYaml("wrongpool", "{metallb.universe.tf/address-pool: manual}",
                "  loadBalancerIP: 198.18.0.205\n"),
         lbYaml("req", "", "  loadBalancerIP: 198.18.1.3\n")});
  EXPECT_EQ(b.lb("auto"), "198.18.0.200");
  EXPECT_EQ(b.lb("chosen"), "198.18.1.0");
  // Requests may name any pool's address.
  EXPECT_EQ(b.lb("req"), "198.18.1.3");
  EXPECT_EQ(b.lb("wrongpool"),
            "pending: spec.loadBalancerIP: 198.18.0.205 is in address pool default-pool, not in "
            "manual (annotation metallb.universe.tf/address-pool)");
  // Only non-auto-assign pools: nothing for services that do not choose one.
  LbBuild only;
  only.run({manual, lbYaml("auto"), lbYaml("chosen", "{metallb.universe.tf/address-pool: manual}")});
  EXPECT_EQ(only.lb("auto"), "pending: no auto-assign address pool has IPv4 addresses");
  EXPECT_EQ(only.lb("chosen"), "198.18.1.0");
  LbBuild none;
  none.run({lbYaml("a")});
  EXPECT_EQ(none.lb("a"), "pending: no auto-assign address pool has IPv4 addresses");
  // No ingress; the reason travels as a condition (ferryctl -o wide REASON).
  nlohmann::json status = serviceToJson(none.snap.services.at("default/a"))["status"];
  EXPECT_EQ(status["loadBalancer"], nlohmann::json::object());
  EXPECT_EQ(status["conditions"],
            nlohmann::json::parse(R"([{"type": "ferry.io/LoadBalancerAddress", "status": "False",
              "reason": "Pending", "message": "no auto-assign address pool has IPv4 addresses"}])"));
}

TEST(LoadBalancer, ExhaustionIsPendingUntilThePoolGrows) {
  LbBuild b;
  b.run({poolYaml("default-pool", "[198.18.0.200/31]"), lbYaml("a"), lbYaml("b"), lbYaml("c")});
  EXPECT_EQ(errorsText(b.snap.errors), "");  // not a manifest problem
  EXPECT_EQ(b.lb("a"), "198.18.0.200");
  EXPECT_EQ(b.lb("b"), "198.18.0.201");
  EXPECT_EQ(b.lb("c"), "pending: no available IPs in pool(s) default-pool");
  b.run({poolYaml("default-pool", "[198.18.0.200/31]"), poolYaml("more", "[\"2001:db8::/64\"]"),
         lbYaml("a"), lbYaml("b"), lbYaml("c")});
  EXPECT_EQ(b.lb("c"), "pending: no available IPs in pool(s) default-pool");
  b.run({poolYaml("default-pool", "[198.18.0.200/30]"), lbYaml("a"), lbYaml("b"), lbYaml("c")});
  EXPECT_EQ(b.lb("a"), "198.18.0.200");
  EXPECT_EQ(b.lb("b"), "198.18.0.201");
  EXPECT_EQ(b.lb("c"), "198.18.0.202");
}

TEST(LoadBalancer, PendingGetsTheAddressOfADeletedService) {
  LbBuild b;
  std::string pool = poolYaml("one", "[198.18.0.200/32]");
  b.run({pool, lbYaml("a"), lbYaml("b")});
  EXPECT_EQ(b.lb("a"), "198.18.0.200");
  EXPECT_EQ(b.lb("b"), "pending: no available IPs in pool(s) one");
  b.run({pool, lbYaml("b")});
  EXPECT_EQ(b.lb("b"), "198.18.0.200");
}

TEST(LoadBalancer, TypeChangeReleasesTheAddressInTheSamePass) {
  LbBuild b;
  std::string pool = poolYaml("one", "[198.18.0.200/32]");
  b.run({pool, lbYaml("a"), lbYaml("z")});
  EXPECT_EQ(b.lb("z"), "pending: no available IPs in pool(s) one");
  b.run({pool, serviceYaml("a", "  ports: [{port: 80}]\n"), lbYaml("z")});
  EXPECT_EQ(b.lb("a"), "");
  EXPECT_TRUE(b.recorded("a").empty());
  EXPECT_EQ(b.lb("z"), "198.18.0.200");
  EXPECT_EQ(b.recorded("z"), std::vector<IpAddr>{ip("198.18.0.200")});
}

TEST(LoadBalancer, SharedAddresses) {
  LbBuild b;
  auto shared = [](const char* key) {
    return std::string("{metallb.universe.tf/allow-shared-ip: ") + key + "}";
  };
  auto sharedAt = [](const char* key, const char* addr) {
    return std::string("{metallb.universe.tf/allow-shared-ip: ") + key +
           ", metallb.universe.tf/loadBalancerIPs: \"" + addr + "\"}";
  };
  b.run({kPool,
         lbYaml("dns-tcp", shared("dns"), "", "[{port: 53}]"),
         // Same key, other protocol: prefers the address dns-tcp holds.
         lbYaml("dns-udp", shared("dns"), "", "[{port: 53, protocol: UDP}]"),
         // Same key but the same port: another address.
         lbYaml("dns-tcp2", shared("dns"), "", "[{port: 53}]"),
         // Requested shared addresses.
         lbYaml("web", sharedAt("web", "198.18.0.205"), "", "[{port: 80}]"),
         lbYaml("web2", sharedAt("web", "198.18.0.205"), "", "[{port: 443}]"),
         lbYaml("web3", sharedAt("web", "198.18.0.205"), "", "[{name: a, port: 8080}, {name: b, port: 443}]"),
         lbYaml("xweb", sharedAt("other", "198.18.0.205"), "", "[{port: 81}]"),
         lbYaml("yweb", "{metallb.universe.tf/loadBalancerIPs: 198.18.0.205}", "", "[{port: 82}]")});
  EXPECT_EQ(b.lb("dns-tcp"), "198.18.0.200");
  EXPECT_EQ(b.lb("dns-udp"), "198.18.0.200");
  EXPECT_EQ(b.lb("dns-tcp2"), "198.18.0.201");
  EXPECT_EQ(b.lb("web"), "198.18.0.205");
  EXPECT_EQ(b.lb("web2"), "198.18.0.205");
  const std::string ann = "metadata.annotations[metallb.universe.tf/loadBalancerIPs]: ";
  EXPECT_EQ(b.lb("web3"), "pending: " + ann +
                              "198.18.0.205 is already assigned to default/web2, which also "
                              "uses port 443/TCP");
  EXPECT_EQ(b.lb("xweb"), "pending: " + ann + "198.18.0.205 is already assigned to default/web");
  EXPECT_EQ(b.lb("yweb"), "pending: " + ann + "198.18.0.205 is already assigned to default/web");
  // Kept across passes; a service that changes its key loses the address.
  b.run({kPool, lbYaml("dns-tcp", shared("dns"), "", "[{port: 53}]"),
         lbYaml("dns-udp", shared("dns2"), "", "[{port: 53, protocol: UDP}]")});
  EXPECT_EQ(b.lb("dns-tcp"), "198.18.0.200");
  EXPECT_EQ(b.lb("dns-udp"), "198.18.0.201");
}

TEST(LoadBalancer, SharingNeedsTheSameTrafficPolicyBackends) {
  LbBuild b;
  std::string ann = "{metallb.universe.tf/allow-shared-ip: k, metallb.universe.tf/loadBalancerIPs: 198.18.0.200}";
  b.run({kPool, lbYaml("a", ann, "  externalTrafficPolicy: Local\n  selector: {app: x}\n", "[{port: 80}]"),
         lbYaml("b", ann, "  externalTrafficPolicy: Local\n  selector: {app: x}\n", "[{port: 81}]"),
         lbYaml("c", ann, "  externalTrafficPolicy: Local\n  selector: {app: y}\n", "[{port: 82}]"),
         lbYaml("d", ann, "", "[{port: 83}]")});
  EXPECT_EQ(b.lb("a"), "198.18.0.200");
  EXPECT_EQ(b.lb("b"), "198.18.0.200");
  const std::string why =
      "pending: metadata.annotations[metallb.universe.tf/loadBalancerIPs]: 198.18.0.200 is "
      "already assigned to default/a, and sharing needs the same externalTrafficPolicy (and "
      "with Local, the same selector)";
  EXPECT_EQ(b.lb("c"), why);
  EXPECT_EQ(b.lb("d"), why);
}

TEST(LoadBalancer, StableWhileOtherServicesComeAndGo) {
  LbBuild b;
  std::string pool = poolYaml("p", "[198.18.0.0/24]");
  b.run({pool, lbYaml("b"), lbYaml("d"), lbYaml("f")});
  EXPECT_EQ(b.lb("b"), "198.18.0.0");
  EXPECT_EQ(b.lb("d"), "198.18.0.1");
  EXPECT_EQ(b.lb("f"), "198.18.0.2");
  b.run({pool, lbYaml("a"), lbYaml("b"), lbYaml("c"), lbYaml("d"), lbYaml("f")});
  EXPECT_EQ(b.lb("a"), "198.18.0.3");
  EXPECT_EQ(b.lb("b"), "198.18.0.0");
  EXPECT_EQ(b.lb("c"), "198.18.0.4");
  EXPECT_EQ(b.lb("d"), "198.18.0.1");
  EXPECT_EQ(b.lb("f"), "198.18.0.2");
  b.run({pool, lbYaml("a"), lbYaml("c"), lbYaml("f"), lbYaml("g")});  // b and d deleted
  EXPECT_EQ(b.lb("a"), "198.18.0.3");
  EXPECT_EQ(b.lb("c"), "198.18.0.4");
  EXPECT_EQ(b.lb("f"), "198.18.0.2");
  EXPECT_EQ(b.lb("g"), "198.18.0.0");
  // A pool edit that drops an address moves only its holder.
  b.run({poolYaml("p", "[\"198.18.0.0-198.18.0.3\", \"198.18.0.5-198.18.0.9\"]"), lbYaml("a"),
         lbYaml("c"), lbYaml("f"), lbYaml("g")});
  EXPECT_EQ(b.lb("a"), "198.18.0.3");
  EXPECT_EQ(b.lb("c"), "198.18.0.1");
  EXPECT_EQ(b.lb("f"), "198.18.0.2");
  EXPECT_EQ(b.lb("g"), "198.18.0.0");
}

TEST(LoadBalancer, SameManifestsSameAnswerFromIndependentStores) {
  std::vector<std::string> objects = {
      kPool, poolYaml("v6", "[\"2001:db8::/120\"]"),
      lbYaml("c", "{metallb.universe.tf/allow-shared-ip: k}", "", "[{port: 53}]"),
      lbYaml("a", "{metallb.universe.tf/allow-shared-ip: k}", "", "[{port: 54}]"),
      lbYaml("b", "", "  loadBalancerIP: 198.18.0.202\n"), lbYaml("d")};
  LbBuild one, two;
  one.run(objects);
  two.run({objects.rbegin(), objects.rend()});  // order within the file does not matter
  for (const char* name : {"a", "b", "c", "d"}) EXPECT_EQ(one.lb(name), two.lb(name)) << name;
  EXPECT_EQ(one.store.record, two.store.record);
  // Restart: a new agent (no previous snapshot) reads the record.
  ClusterSnapshot again = buildSnapshot({{"m.yaml", docs(objects)}}, one.opts, one.store, nullptr);
  for (const char* name : {"a", "b", "c", "d"})
    EXPECT_EQ(again.services.at(std::string("default/") + name).loadBalancerIngress,
              one.snap.services.at(std::string("default/") + name).loadBalancerIngress);
}

TEST(LoadBalancer, SharedFileRecordAcrossAgents) {
  auto dir = std::filesystem::temp_directory_path() / ("ferry-lb-" + std::to_string(getpid()));
  std::filesystem::remove_all(dir);
  std::string path = (dir / "alloc.json").string();
  std::vector<SourceFile> files = {{"m.yaml", docs({kPool, lbYaml("a"), lbYaml("b")})}};
  FileAllocationStore node1(path), node2(path);
  ClusterSnapshot s1 = buildSnapshot(files, options(), node1, nullptr);
  files[0].content = docs({kPool, lbYaml("a"), lbYaml("b"), lbYaml("a0")});
  ClusterSnapshot s2 = buildSnapshot(files, options(), node2, nullptr);
  EXPECT_EQ(s2.services.at("default/a").loadBalancerIngress, s1.services.at("default/a").loadBalancerIngress);
  EXPECT_EQ(s2.services.at("default/b").loadBalancerIngress, s1.services.at("default/b").loadBalancerIngress);
  EXPECT_EQ(s2.services.at("default/a0").loadBalancerIngress, std::vector<IpAddr>{ip("198.18.0.202")});
  std::filesystem::remove_all(dir);
}

TEST(LoadBalancer, InvalidServiceHoldsItsAddress) {
  LbBuild b;
  std::string pool = poolYaml("one", "[198.18.0.200/32]");
  b.run({pool, lbYaml("a")});
  EXPECT_EQ(b.lb("a"), "198.18.0.200");
  b.run({pool, lbYaml("a", "", "", "[{port: 0}]"), lbYaml("b")});
  EXPECT_EQ(b.lb("a"), "198.18.0.200");  // last good version
  EXPECT_EQ(b.lb("b"), "pending: no available IPs in pool(s) one");
  // Even without a previous version (restart), the address stays held.
  ClusterSnapshot fresh = buildSnapshot(
      {{"m.yaml", docs({pool, lbYaml("a", "", "", "[{port: 0}]"), lbYaml("b")})}}, b.opts, b.store,
      nullptr);
  EXPECT_EQ(fresh.services.at("default/b").loadBalancerPending,
            "no available IPs in pool(s) one");
  b.run({pool, lbYaml("a"), lbYaml("b")});
  EXPECT_EQ(b.lb("a"), "198.18.0.200");
}

TEST(LoadBalancer, IPv6ServicesGetIPv6Addresses) {
  LbBuild b;
  b.opts = options("fd00::/108");
  b.run({kPool, poolYaml("v6", "[\"2001:db8::10-2001:db8::11\"]"), lbYaml("a"),
         lbYaml("b", "{metallb.universe.tf/loadBalancerIPs: \"198.18.0.201,2001:db8::11\"}"),
         lbYaml("c")});
  EXPECT_EQ(errorsText(b.snap.errors), "");
  EXPECT_EQ(b.lb("a"), "2001:db8::10");
  EXPECT_EQ(b.lb("b"), "2001:db8::11");
  EXPECT_EQ(b.lb("c"), "pending: no available IPs in pool(s) v6");
  LbBuild noV6;
  noV6.opts = options("fd00::/108");
  noV6.run({kPool, lbYaml("a")});
  EXPECT_EQ(noV6.lb("a"), "pending: no auto-assign address pool has IPv6 addresses");
  LbBuild chosen;
  chosen.opts = options("fd00::/108");
  chosen.run({kPool, lbYaml("a", "{metallb.universe.tf/address-pool: default-pool}")});
  EXPECT_EQ(chosen.lb("a"), "pending: address pool default-pool has no IPv6 addresses");
}

TEST(LoadBalancer, ChangedRequestMovesTheAddress) {
  LbBuild b;
  b.run({kPool, lbYaml("a")});
  EXPECT_EQ(b.lb("a"), "198.18.0.200");
  b.run({kPool, lbYaml("a", "", "  loadBalancerIP: 198.18.0.204\n")});
  EXPECT_EQ(b.lb("a"), "198.18.0.204");
  b.run({kPool, lbYaml("a", "", "  loadBalancerIP: 198.18.0.99\n"), lbYaml("b")});
  EXPECT_EQ(b.lb("a"), "pending: spec.loadBalancerIP: 198.18.0.99 is not in any address pool");
  EXPECT_EQ(b.lb("b"), "198.18.0.200");
  b.run({kPool, lbYaml("a"), lbYaml("b")});
  EXPECT_EQ(b.lb("a"), "198.18.0.201");
  // Moving to another pool by annotation.
  b.run({kPool, poolYaml("x", "[198.18.5.0/30]", "  autoAssign: false\n"),
         lbYaml("a", "{metallb.universe.tf/address-pool: x}"), lbYaml("b")});
  EXPECT_EQ(b.lb("a"), "198.18.5.0");
  EXPECT_EQ(b.lb("b"), "198.18.0.200");
}

TEST(LoadBalancer, ServiceJsonShowsTheIngress) {
  LbBuild b;
  b.run({kPool, lbYaml("a")});
  auto j = serviceToJson(b.snap.services.at("default/a"));
  EXPECT_EQ(j["status"], nlohmann::json::parse(R"({"loadBalancer": {"ingress": [{"ip": "198.18.0.200"}]}})"));
  EXPECT_EQ(j["spec"]["type"], "LoadBalancer");
}

TEST(LoadBalancer, AnnotationParsing) {
  auto parse = [](const std::string& yaml) { return parseManifests({{"m.yaml", yaml}}); };
  Manifests m = parse(lbYaml(
      "a",
      "{metallb.universe.tf/address-pool: \" p \", metallb.universe.tf/allow-shared-ip: k1, "
      "service.beta.kubernetes.io/load-balancer-source-ranges: \"10.0.0.0/8, 192.168.1.7/24\"}"));
  ASSERT_EQ(errorsText(m.errors), "");
  const Service& s = m.services.at(0);
  EXPECT_EQ(s.addressPool, "p");
  EXPECT_EQ(s.sharedIPKey, "k1");
  EXPECT_EQ(s.loadBalancerSourceRanges,
            (std::vector<IpPrefix>{cidr("10.0.0.0/8"), cidr("192.168.1.0/24")}));
  // The field wins over the annotation.
  m = parse(lbYaml("a", "{service.beta.kubernetes.io/load-balancer-source-ranges: bad}",
                   "  loadBalancerSourceRanges: [10.1.0.0/16]\n"));
  ASSERT_EQ(errorsText(m.errors), "");
  EXPECT_EQ(m.services.at(0).loadBalancerSourceRanges, std::vector<IpPrefix>{cidr("10.1.0.0/16")});
  // Other types ignore the annotations.
  m = parse(serviceYaml("a", "  ports: [{port: 80}]\n",
                        "default\n  annotations: {service.beta.kubernetes.io/load-balancer-source-"
                        "ranges: bad, metallb.universe.tf/loadBalancerIPs: bad, "
                        "metallb.universe.tf/address-pool: p}"));
  ASSERT_EQ(errorsText(m.errors), "");
  EXPECT_TRUE(m.services.at(0).loadBalancerSourceRanges.empty());
  EXPECT_TRUE(m.services.at(0).addressPool.empty());
  // Errors make the service invalid, as the apiserver / MetalLB refuse it.
  m = parse(lbYaml("a",
                   "{service.beta.kubernetes.io/load-balancer-source-ranges: \"10.0.0.0/8,x\", "
                   "metallb.universe.tf/loadBalancerIPs: \"198.18.0.1, nope\"}",
                   "  loadBalancerIP: 198.18.0.2\n"));
  EXPECT_EQ(errorStrings(m.errors),
            (std::vector<std::string>{
                "m.yaml: Service default/a: metadata.annotations[service.beta.kubernetes.io/"
                "load-balancer-source-ranges]: must be a list of CIDRs such as "
                "10.240.0.0/24,10.250.0.0/24, got \"10.0.0.0/8,x\"",
                "m.yaml: Service default/a: metadata.annotations[metallb.universe.tf/"
                "loadBalancerIPs]: \"nope\" is not a valid IP address",
                "m.yaml: Service default/a: spec.loadBalancerIP: may not be set together with "
                "the annotation metallb.universe.tf/loadBalancerIPs"}));
  EXPECT_EQ(m.invalidServices, std::set<std::string>{"default/a"});
}

TEST(LoadBalancer, RecordJsonRoundTripAndOldRecords) {
  AllocationRecord rec;
  rec.services["default/a"] = {{ip("198.19.0.10")}, "2024-05-01T12:00:00Z", {{"0/TCP", 30080}}};
  rec.services["default/a"].loadBalancerIPs = {ip("198.18.0.200")};
  auto j = rec.toJson();
  EXPECT_EQ(j["services"]["default/a"]["loadBalancerIPs"], nlohmann::json::array({"198.18.0.200"}));
  AllocationRecord back;
  std::string err;
  ASSERT_TRUE(AllocationRecord::fromJson(j, &back, &err)) << err;
  EXPECT_EQ(back, rec);
  // Records written before LoadBalancer addresses existed still load.
  auto old = nlohmann::json::parse(
      R"({"services": {"default/web": {"clusterIPs": ["198.19.0.10"], "created": "x"}}})");
  ASSERT_TRUE(AllocationRecord::fromJson(old, &back, &err)) << err;
  EXPECT_TRUE(back.services["default/web"].loadBalancerIPs.empty());
  EXPECT_FALSE(back.toJson()["services"]["default/web"].contains("loadBalancerIPs"));
  auto bad = nlohmann::json::parse(R"({"services": {"default/a": {"loadBalancerIPs": [5]}}})");
  EXPECT_FALSE(AllocationRecord::fromJson(bad, &back, &err));
  EXPECT_EQ(err, "services[\"default/a\"].loadBalancerIPs: not an IP address: 5");
  bad = nlohmann::json::parse(R"({"services": {"default/a": {"loadBalancerIPs": "x"}}})");
  EXPECT_FALSE(AllocationRecord::fromJson(bad, &back, &err));
  EXPECT_EQ(err, "services[\"default/a\"].loadBalancerIPs must be a list");
}

TEST(LoadBalancer, DirectAllocationApi) {
  AllocationRecord rec;
  std::map<std::string, AddressPool> pools;
  pools["p"] = {"p", {{ip("198.18.0.1"), ip("198.18.0.2"), "198.18.0.1-198.18.0.2", 0}}, true, false, "f"};
  LoadBalancerRequest a;
  a.key = "default/a";
  a.needsAddress = true;
  LoadBalancerRequest b = a;
  b.key = "default/b";
  b.requested = {ip("198.18.0.1")};
  b.requestedField = "spec.loadBalancerIP";
  auto res = allocateLoadBalancerIPs(rec, {a, b}, pools);
  EXPECT_EQ(res["default/a"].ips, std::vector<IpAddr>{ip("198.18.0.2")});
  EXPECT_EQ(res["default/b"].ips, std::vector<IpAddr>{ip("198.18.0.1")});
  // An entry without any request (e.g. written by another agent for a
  // service this one does not know) is held exclusively.
  res = allocateLoadBalancerIPs(rec, {a}, pools);
  EXPECT_EQ(res["default/a"].ips, std::vector<IpAddr>{ip("198.18.0.2")});
  EXPECT_EQ(rec.services["default/b"].loadBalancerIPs, std::vector<IpAddr>{ip("198.18.0.1")});
}

}  // namespace
}  // namespace ferry
