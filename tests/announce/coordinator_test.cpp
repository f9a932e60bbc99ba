#include "announce/coordinator.h"

#include <gtest/gtest.h>

#include "test_util.h"

namespace ferry {
namespace {

using testing::ip;
using namespace std::chrono;

const WallTime kT0 = WallTime(seconds(1714564800));

Lease lease(const std::string& n, WallTime renewed) { return {n, 2, renewed, renewed}; }

std::map<std::string, Node> nodes(std::initializer_list<std::pair<const char*, bool>> l) {
  std::map<std::string, Node> out;
  for (auto& [n, ready] : l) out[n] = Node{n, {}, ready};
  return out;
}

// Which of the nodes owns addr, asking each node's own LbAnnouncement:
// every node must come to the same answer, and exactly one (or none)
// claims it.
std::vector<std::string> claimants(const IpAddr& addr, const std::vector<Announceable>& addrs,
                                   const std::map<std::string, Node>& ns,
                                   const std::vector<Lease>& leases, WallTime now) {
  std::vector<std::string> out;
  std::map<IpAddr, std::string> first;
  bool firstSet = false;
  for (const auto& [name, node] : ns) {
    LbAnnouncement a(name);
    a.setInputs(addrs, ns);
    if (a.compute(leases, now).count(addr)) out.push_back(name);
    if (firstSet) {
      EXPECT_EQ(a.owners(), first) << "node " << name << " disagrees";
    }
    first = a.owners();
    firstSet = true;
  }
  return out;
}

TEST(LbAnnouncementTest, EveryNodeAgreesOnOneOwner) {
  auto ns = nodes({{"node1", true}, {"node2", true}, {"node3", true}});
  std::vector<Lease> leases = {lease("node1", kT0), lease("node2", kT0), lease("node3", kT0)};
  std::vector<Announceable> addrs;
  for (int i = 0; i < 20; ++i) addrs.push_back({IpAddr::fromV4(0xc61200c8u + i), false, {}, ""});
  for (const Announceable& a : addrs)
    EXPECT_EQ(claimants(a.addr, addrs, ns, leases, kT0 + seconds(1)).size(), 1u) << a.addr.str();
}

TEST(LbAnnouncementTest, FailsOverWhenTheOwnersLeaseExpires) {
  auto ns = nodes({{"node1", true}, {"node2", true}});
  IpAddr a = ip("198.18.0.200");
  std::vector<Announceable> addrs = {{a, false, {}, "default/web"}};
  std::vector<Lease> leases = {lease("node1", kT0), lease("node2", kT0)};
  auto owner = claimants(a, addrs, ns, leases, kT0 + seconds(1));
  ASSERT_EQ(owner.size(), 1u);
  std::string other = owner[0] == "node1" ? "node2" : "node1";
  // the owner stops renewing; the other keeps going
  WallTime later = kT0 + seconds(3);
  std::vector<Lease> renewed = {lease(other, later), lease(owner[0], kT0)};
  EXPECT_EQ(claimants(a, addrs, ns, renewed, later), std::vector<std::string>{other});
  // and takes it back once it renews again
  renewed = {lease(other, later), lease(owner[0], later)};
  EXPECT_EQ(claimants(a, addrs, ns, renewed, later), owner);
}

TEST(LbAnnouncementTest, NotReadyNodeAndLocalPolicy) {
  auto ns = nodes({{"node1", true}, {"node2", false}, {"node3", true}});
  IpAddr a = ip("2001:db8::200");
  std::vector<Lease> leases = {lease("node1", kT0), lease("node2", kT0), lease("node3", kT0)};
  std::vector<Announceable> local = {{a, true, {"node2", "node3"}, "default/web"}};
  EXPECT_EQ(claimants(a, local, ns, leases, kT0), std::vector<std::string>{"node3"});
  local[0].localNodes = {"node2"};
  LbAnnouncement n1("node1");
  n1.setInputs(local, ns);
  n1.compute(leases, kT0);
  EXPECT_TRUE(n1.owners().empty());
  EXPECT_EQ(n1.unowned(), std::vector<IpAddr>{a});
}

TEST(AnnounceablesTest, FromSnapshot) {
  ClusterSnapshot snap;
  Service web;
  web.ns = "default";
  web.name = "web";
  web.type = ServiceType::LoadBalancer;
  web.externalTrafficLocal = true;
  web.loadBalancerIngress = {ip("198.18.0.200"), ip("2001:db8::200")};
  ServicePort p;
  p.port = 80;
  Endpoint e1, e2, e3;
  e1.ip = ip("198.18.129.2"), e1.nodeName = "node1";
  e2.ip = ip("198.18.130.2"), e2.nodeName = "node2", e2.ready = false;
  e3.ip = ip("198.18.131.2"), e3.nodeName = "node3";
  p.endpoints = {e1, e2, e3};
  web.ports = {p};
  snap.services["default/web"] = web;
  Service cip = web;
  cip.name = "internal";
  cip.type = ServiceType::ClusterIP;
  snap.services["default/internal"] = cip;
  auto out = announceables(snap);
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0].addr, ip("198.18.0.200"));
  EXPECT_TRUE(out[0].localOnly);
  EXPECT_EQ(out[0].localNodes, (std::set<std::string>{"node1", "node3"}));
  EXPECT_EQ(out[0].service, "default/web");
  EXPECT_EQ(out[1].addr, ip("2001:db8::200"));
}

TEST(AnnounceablesTest, NothingWithoutLoadBalancers) {
  ClusterSnapshot snap;
  Service s;
  s.ns = "default";
  s.name = "web";
  s.type = ServiceType::LoadBalancer;  // no address assigned yet
  snap.services["default/web"] = s;
  EXPECT_TRUE(announceables(snap).empty());
}

}  // namespace
}  // namespace ferry
