// IPAddressPool manifests (metallb.io/v1beta1) and the pools of a snapshot.
#include <gtest/gtest.h>

#include "lb_test_util.h"
#include "model/address_pool.h"
#include "model/builder.h"

namespace ferry {
namespace {

using test::docs;
using test::errorStrings;
using test::errorsText;
using test::ip;
using test::options;
using test::poolYaml;

Manifests parse(const std::string& yaml) { return parseManifests({{"pools.yaml", yaml}}); }

const AddressPool& onlyPool(const Manifests& m) {
  EXPECT_EQ(errorsText(m.errors), "");
  EXPECT_EQ(m.pools.size(), 1u);
  return m.pools.at(0);
}

std::vector<std::string> ranges(const AddressPool& p) {
  std::vector<std::string> out;
  for (const auto& r : p.ranges)
    out.push_back(std::to_string(r.index) + ":" + r.first.str() + "-" + r.last.str());
  return out;
}

TEST(AddressPool, CidrsRangesAndIPv6) {
  Manifests m = parse(poolYaml(
      "default-pool",
      "[198.18.0.200/29, \"198.18.1.10 - 198.18.1.20\", \"2001:db8::/126\", "
      "\"2001:db8:1::5-2001:db8:1::9\", 198.18.2.7/32]"));
  const AddressPool& p = onlyPool(m);
  EXPECT_EQ(p.name, "default-pool");
  EXPECT_EQ(p.file, "pools.yaml");
  EXPECT_TRUE(p.autoAssign);
  EXPECT_FALSE(p.avoidBuggyIPs);
  EXPECT_EQ(ranges(p), (std::vector<std::string>{
                           "0:198.18.0.200-198.18.0.207", "1:198.18.1.10-198.18.1.20",
                           "2:2001:db8::-2001:db8::3", "3:2001:db8:1::5-2001:db8:1::9",
                           "4:198.18.2.7-198.18.2.7"}));
  EXPECT_EQ(p.ranges[1].text, "198.18.1.10 - 198.18.1.20");
  EXPECT_TRUE(p.contains(ip("198.18.0.207")));
  EXPECT_FALSE(p.contains(ip("198.18.0.208")));
  EXPECT_TRUE(p.contains(ip("2001:db8:1::9")));
  EXPECT_FALSE(p.contains(ip("2001:db8:1::a")));
  EXPECT_TRUE(p.hasFamily(true));
  EXPECT_TRUE(p.hasFamily(false));
}

// As MetalLB's net.ParseCIDR, host bits are cleared.
TEST(AddressPool, CidrHostBitsAreCleared) {
  Manifests m = parse(poolYaml("p", "[198.18.0.201/29]"));
  const AddressPool& p = onlyPool(m);
  EXPECT_EQ(ranges(p), std::vector<std::string>{"0:198.18.0.200-198.18.0.207"});
}

TEST(AddressPool, AutoAssignAndAvoidBuggyIPs) {
  Manifests m = parse(poolYaml("p", "[198.18.0.0/23, \"10.0.0.255-10.0.1.0\", \"2001:db8::/120\"]",
                               "  autoAssign: false\n  avoidBuggyIPs: true\n"));
  const AddressPool& p = onlyPool(m);
  EXPECT_FALSE(p.autoAssign);
  EXPECT_TRUE(p.avoidBuggyIPs);
  EXPECT_FALSE(p.contains(ip("198.18.0.0")));
  EXPECT_TRUE(p.contains(ip("198.18.0.1")));
  EXPECT_FALSE(p.contains(ip("198.18.0.255")));
  EXPECT_FALSE(p.contains(ip("198.18.1.0")));
  EXPECT_TRUE(p.contains(ip("198.18.1.254")));
  EXPECT_FALSE(p.contains(ip("10.0.0.255")));
  EXPECT_FALSE(p.contains(ip("10.0.1.0")));
  EXPECT_TRUE(p.contains(ip("2001:db8::")));  // IPv6 is not affected
  EXPECT_TRUE(p.contains(ip("2001:db8::ff")));
}

TEST(AddressPool, NamespaceIsIgnoredAndListsWork) {
  Manifests m = parse(
      "apiVersion: v1\nkind: List\nitems:\n"
      "- {apiVersion: metallb.io/v1beta1, kind: IPAddressPool, metadata: {name: a}, "
      "spec: {addresses: [198.18.0.0/30]}}\n"
      "- {apiVersion: metallb.io/v1beta1, kind: IPAddressPool, metadata: {name: a, namespace: x}, "
      "spec: {addresses: [198.18.1.0/30]}}\n");
  ASSERT_EQ(m.pools.size(), 1u);
  EXPECT_EQ(ranges(m.pools[0]), std::vector<std::string>{"0:198.18.0.0-198.18.0.3"});
  EXPECT_EQ(errorStrings(m.errors),
            std::vector<std::string>{"pools.yaml: IPAddressPool a: metadata.name: duplicate "
                                     "IPAddressPool a, already defined in pools.yaml (that "
                                     "definition is used)"});
}

struct PoolErrorCase {
  const char* name;
  std::string yaml;
  std::vector<std::string> errors;
};

class PoolErrors : public testing::TestWithParam<PoolErrorCase> {};

TEST_P(PoolErrors, AreReportedWithTheirField) {
  const PoolErrorCase& tc = GetParam();
  Manifests m = parse(tc.yaml);
  EXPECT_EQ(errorStrings(m.errors), tc.errors);
  EXPECT_TRUE(m.pools.empty());
  EXPECT_EQ(m.invalidPools, std::set<std::string>{"p"});
}

const std::string kAt = "pools.yaml: IPAddressPool p: ";

INSTANTIATE_TEST_SUITE_P(
    Pool, PoolErrors,
    testing::Values(
        PoolErrorCase{"NotCidrOrRange", poolYaml("p", "[198.18.0.0/30, x, 198.18.0.300/30, 198.18.0.5]"),
                      {kAt + "spec.addresses[1]: \"x\" is not a CIDR or range",
                       kAt + "spec.addresses[2]: \"198.18.0.300/30\" is not a CIDR or range",
                       kAt + "spec.addresses[3]: \"198.18.0.5\" is not a CIDR or range"}},
        PoolErrorCase{"BadRangeEnds", poolYaml("p", "[\"198.18.0.1-\", \"a-198.18.0.1\"]"),
                      {kAt + "spec.addresses[0]: \"198.18.0.1-\" is not a CIDR or range",
                       kAt + "spec.addresses[1]: \"a-198.18.0.1\" is not a CIDR or range"}},
        PoolErrorCase{"Reversed", poolYaml("p", "[\"198.18.0.9-198.18.0.1\"]"),
                      {kAt + "spec.addresses[0]: \"198.18.0.9-198.18.0.1\" is not a valid "
                             "range: its start is after its end"}},
        PoolErrorCase{"MixedFamilies", poolYaml("p", "[\"198.18.0.1-2001:db8::1\"]"),
                      {kAt + "spec.addresses[0]: \"198.18.0.1-2001:db8::1\" is not a valid "
                             "range: it mixes IPv4 and IPv6"}},
        PoolErrorCase{"NotAString", poolYaml("p", "[5, {a: b}]"),
                      {kAt + "spec.addresses[0]: must be a string, got 5",
                       kAt + "spec.addresses[1]: must be a string, got {\"a\":\"b\"}"}},
        PoolErrorCase{"Empty", poolYaml("p", "[]"),
                      {kAt + "spec.addresses: must list at least one CIDR or range"}},
        PoolErrorCase{"Missing",
                      "apiVersion: metallb.io/v1beta1\nkind: IPAddressPool\nmetadata: {name: p}\n",
                      {kAt + "spec.addresses: must list at least one CIDR or range"}},
        PoolErrorCase{"NotAList", poolYaml("p", "198.18.0.0/30"),
                      {kAt + "spec.addresses: must be a list, got a string \"198.18.0.0/30\""}},
        PoolErrorCase{"Flags", poolYaml("p", "[198.18.0.0/30]", "  autoAssign: \"no\"\n  avoidBuggyIPs: 1\n"),
                      {kAt + "spec.autoAssign: must be true or false, got a string \"no\"",
                       kAt + "spec.avoidBuggyIPs: must be true or false, got a number 1"}},
        PoolErrorCase{"ApiVersion",
                      "apiVersion: metallb.io/v1alpha1\nkind: IPAddressPool\nmetadata: {name: p}\n"
                      "spec: {addresses: [198.18.0.0/30]}\n",
                      {kAt + "apiVersion: unsupported apiVersion \"metallb.io/v1alpha1\" for kind "
                             "IPAddressPool: must be metallb.io/v1beta1"}}),
    [](const auto& info) { return std::string(info.param.name); });

TEST(AddressPool, SnapshotHoldsPoolsAndReportsOverlaps) {
  MemoryAllocationStore store;
  ClusterSnapshot snap = buildSnapshot(
      {{"a.yaml", docs({poolYaml("b", "[198.18.0.4/30, \"198.18.0.0-198.18.0.2\"]"),
                        poolYaml("a", "[198.18.0.0/30, \"2001:db8::/64\"]")})},
       {"b.yaml", poolYaml("c", "[\"2001:db8::ffff-2001:db8:0:1::\", 198.18.0.5/32, 198.18.9.0/24]")}},
      options(), store, nullptr);
  EXPECT_EQ(errorStrings(snap.errors),
            (std::vector<std::string>{
                "a.yaml: IPAddressPool b: spec.addresses[1]: \"198.18.0.0-198.18.0.2\" overlaps "
                "\"198.18.0.0/30\" (pool a, spec.addresses[0]) and is ignored",
                "b.yaml: IPAddressPool c: spec.addresses[0]: \"2001:db8::ffff-2001:db8:0:1::\" "
                "overlaps \"2001:db8::/64\" (pool a, spec.addresses[1]) and is ignored",
                "b.yaml: IPAddressPool c: spec.addresses[1]: \"198.18.0.5/32\" overlaps "
                "\"198.18.0.4/30\" (pool b, spec.addresses[0]) and is ignored"}));
  ASSERT_EQ(snap.pools.size(), 3u);
  EXPECT_EQ(ranges(snap.pools.at("a")),
            (std::vector<std::string>{"0:198.18.0.0-198.18.0.3", "1:2001:db8::-2001:db8::ffff:ffff:ffff:ffff"}));
  EXPECT_EQ(ranges(snap.pools.at("b")), std::vector<std::string>{"0:198.18.0.4-198.18.0.7"});
  EXPECT_EQ(ranges(snap.pools.at("c")), std::vector<std::string>{"2:198.18.9.0-198.18.9.255"});
}

TEST(AddressPool, InvalidOrMidEditPoolKeepsItsLastGoodVersion) {
  MemoryAllocationStore store;
  BuildOptions opts = options();
  std::string good = poolYaml("p", "[198.18.0.0/30]");
  ClusterSnapshot first = buildSnapshot({{"p.yaml", good}, {"q.yaml", poolYaml("q", "[198.18.1.0/30]")}},
                                        opts, store, nullptr);
  ASSERT_EQ(errorsText(first.errors), "");
  // p gets a typo, q's file is mid-edit: both stay as they were.
  ClusterSnapshot second = buildSnapshot(
      {{"p.yaml", poolYaml("p", "[198.18.0.0/30, bad]")}, {"q.yaml", "kind: [\n"}}, opts, store, &first);
  EXPECT_EQ(second.pools, first.pools);
  // Without a previous version, an invalid pool is left out.
  ClusterSnapshot fresh =
      buildSnapshot({{"p.yaml", poolYaml("p", "[198.18.0.0/30, bad]")}}, opts, store, nullptr);
  EXPECT_TRUE(fresh.pools.empty());
  // A deleted pool is gone.
  ClusterSnapshot third = buildSnapshot({{"p.yaml", good}}, opts, store, &first);
  EXPECT_EQ(third.pools.count("q"), 0u);
  EXPECT_EQ(third.pools.count("p"), 1u);
}

TEST(AddressPool, ParseAddressRangeDirectly) {
  std::string why;
  auto r = parseAddressRange("0.0.0.0/0", &why);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->last, ip("255.255.255.255"));
  r = parseAddressRange("::/0", &why);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->last, ip("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"));
  EXPECT_FALSE(parseAddressRange("", &why));
  EXPECT_EQ(why, "\"\" is not a CIDR or range");
  EXPECT_EQ(nextAddress(ip("198.18.0.255")), ip("198.18.1.0"));
  EXPECT_EQ(nextAddress(ip("2001:db8::ffff")), ip("2001:db8::1:0"));
}

}  // namespace
}  // namespace ferry
