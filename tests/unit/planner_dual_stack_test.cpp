// The planner with dual-stack services: each family's frontends get that
// family's backends, in the same maps (16-byte keys, IPv4 mapped).
#include <gtest/gtest.h>

#include "dataplane/planner.h"

namespace ferry {
namespace {

IpAddr ip6(const char* s) { return *IpAddr::parse(s); }

Service dualNodePort(std::vector<IpAddr> vips) {
  Service svc;
  svc.ns = "default";
  svc.name = "dual";
  svc.type = ServiceType::NodePort;
  svc.clusterIPs = std::move(vips);
  ServicePort sp;
  sp.port = 80;
  sp.nodePort = 30080;
  sp.endpoints = {
      {ip6("198.18.129.2"), 8080, true, true, false, "node1", "", ""},
      {ip6("2001:db8:1:1::2"), 8080, true, true, false, "node1", "", ""},
      {ip6("2001:db8:1:2::2"), 8080, true, true, false, "node2", "", ""},
  };
  svc.ports = {sp};
  return svc;
}

std::vector<std::string> backends(const Desired& d, const FrontendKey& fk) {
  std::vector<std::string> out;
  for (const BackendKey& b : d.frontends.at(fk).backends) out.push_back(b.addr.str());
  return out;
}

TEST(DesiredFromSnapshotDualStack, EachFamilysFrontendsGetThatFamilysBackends) {
  ClusterSnapshot snap;
  snap.services["default/dual"] = dualNodePort({ip6("198.19.0.10"), ip6("2001:db8:ffff::10")});
  Desired d = desiredFromSnapshot(snap, "node1");
  FrontendKey v4{ip6("198.19.0.10"), 80, 6, FERRY_SCOPE_CLUSTER};
  FrontendKey v6{ip6("2001:db8:ffff::10"), 80, 6, FERRY_SCOPE_CLUSTER};
  FrontendKey np4{nodePortAddr(true), 30080, 6, FERRY_SCOPE_EXTERNAL};
  FrontendKey np6{nodePortAddr(false), 30080, 6, FERRY_SCOPE_EXTERNAL};
  ASSERT_EQ(d.frontends.size(), 4u);
  EXPECT_EQ(backends(d, v4), std::vector<std::string>{"198.18.129.2"});
  EXPECT_EQ(backends(d, v6), (std::vector<std::string>{"2001:db8:1:1::2", "2001:db8:1:2::2"}));
  EXPECT_EQ(backends(d, np4), std::vector<std::string>{"198.18.129.2"});
  EXPECT_EQ(backends(d, np6), (std::vector<std::string>{"2001:db8:1:1::2", "2001:db8:1:2::2"}));
  EXPECT_EQ(nodePortAddr(false).str(), "::");
}

TEST(DesiredFromSnapshotDualStack, SingleStackIpv6ServiceHasNoIpv4NodePort) {
  ClusterSnapshot snap;
  snap.services["default/dual"] = dualNodePort({ip6("2001:db8:ffff::10")});
  Desired d = desiredFromSnapshot(snap, "node1");
  EXPECT_EQ(d.frontends.size(), 2u);
  EXPECT_FALSE(d.frontends.count({nodePortAddr(true), 30080, 6, FERRY_SCOPE_EXTERNAL}));
  EXPECT_TRUE(d.frontends.count({nodePortAddr(false), 30080, 6, FERRY_SCOPE_EXTERNAL}));
}

}  // namespace
}  // namespace ferry
