// healthCheckNodePort: which ports are served and what they answer.
#include <gtest/gtest.h>

#include "agent/health.h"

namespace ferry {
namespace {

IpAddr ip(const char* s) { return *IpAddr::parse(s); }

ClusterSnapshot snapshotWithLocalLb() {
  ClusterSnapshot snap;
  Service svc;
  svc.ns = "default";
  svc.name = "lb";
  svc.type = ServiceType::LoadBalancer;
  svc.externalTrafficLocal = true;
  svc.healthCheckNodePort = 31000;
  ServicePort http, https;
  http.port = 80;
  https.port = 443;
  Endpoint a{ip("198.18.130.2"), 8080, true, true, false, "node2", "", "", {}, {}};
  Endpoint b{ip("198.18.129.2"), 8080, true, true, false, "node1", "", "", {}, {}};
  Endpoint notReady{ip("198.18.130.3"), 8080, false, false, false, "node2", "", "", {}, {}};
  http.endpoints = {a, b, notReady};
  https.endpoints = {a, b};
  svc.ports = {http, https};
  snap.services["default/lb"] = svc;
  return snap;
}

TEST(Health, CountsReadyLocalEndpointsOncePerAddress) {
  auto t = healthTargets(snapshotWithLocalLb(), "node2");
  ASSERT_EQ(t.size(), 1u);
  EXPECT_EQ(t.at(31000).localEndpoints, 1);
  EXPECT_EQ(healthTargets(snapshotWithLocalLb(), "node3").at(31000).localEndpoints, 0);
}

TEST(Health, AnswersOkWithEndpointsAndUnavailableWithout) {
  HttpReply ok = healthReply({"default", "lb", 2});
  EXPECT_EQ(ok.status, 200u);
  EXPECT_EQ(ok.contentType, "application/json");
  EXPECT_NE(ok.body.find("\"localEndpoints\":2"), std::string::npos);
  EXPECT_NE(ok.body.find("\"name\":\"lb\""), std::string::npos);
  HttpReply down = healthReply({"default", "lb", 0});
  EXPECT_EQ(down.status, 503u);
}

// "should fail health check node port if there are only terminating endpoints"
TEST(Health, OnlyTerminatingLocalEndpointsCountNone) {
  ClusterSnapshot snap = snapshotWithLocalLb();
  for (ServicePort& sp : snap.services["default/lb"].ports)
    for (Endpoint& e : sp.endpoints)
      if (e.nodeName == "node1") e.ready = false, e.serving = true, e.terminating = true;
  EXPECT_EQ(healthTargets(snap, "node1").at(31000).localEndpoints, 0);
  snap.services["default/lb"].publishNotReadyAddresses = true;
  EXPECT_EQ(healthTargets(snap, "node1").at(31000).localEndpoints, 1) << "every endpoint ready";
}

TEST(Health, OnlyPolicyLocalServicesWithAPort) {
  ClusterSnapshot snap = snapshotWithLocalLb();
  snap.services["default/lb"].externalTrafficLocal = false;
  EXPECT_TRUE(healthTargets(snap, "node2").empty());
}

// A dual-stack service: a dual-stack pod is one endpoint per family, and
// each family's probe gets its own family's count (kube-proxy's proxier of
// that family), never the two added up.
TEST(Health, DualStackCountsPerProbeFamily) {
  ClusterSnapshot snap = snapshotWithLocalLb();
  Service& svc = snap.services["default/lb"];
  svc.clusterIPs = {ip("198.19.0.20"), ip("2001:db8:ffff::20")};
  Endpoint a6{ip("2001:db8:1:2::2"), 8080, true, true, false, "node2", "", "", {}, {}};
  Endpoint d6{ip("2001:db8:1:2::4"), 8080, true, true, false, "node2", "", "", {}, {}};
  svc.ports[0].endpoints.push_back(a6);
  svc.ports[0].endpoints.push_back(d6);
  HealthTarget t = healthTargets(snap, "node2").at(31000);
  EXPECT_TRUE(t.dualStack);
  EXPECT_EQ(t.countFor(false), 1);
  EXPECT_EQ(t.countFor(true), 2);
  EXPECT_NE(healthReply(t, true).body.find("\"localEndpoints\":2"), std::string::npos);
  EXPECT_NE(healthReply(t, false).body.find("\"localEndpoints\":1"), std::string::npos);
  // IPv4 endpoints only on this node: the IPv6 probe says 503
  HealthTarget t1 = healthTargets(snap, "node1").at(31000);
  EXPECT_EQ(healthReply(t1, false).status, 200u);
  EXPECT_EQ(healthReply(t1, true).status, 503u);
}

// A single-stack service answers with its endpoints to a probe of either
// family (the node's IPv6 address serves an IPv6 service's probe too).
TEST(Health, SingleStackAnswersBothProbeFamilies) {
  ClusterSnapshot snap = snapshotWithLocalLb();
  Service& svc = snap.services["default/lb"];
  svc.clusterIPs = {ip("2001:db8:ffff::20")};
  for (ServicePort& sp : svc.ports)
    for (Endpoint& e : sp.endpoints)
      e.ip = *IpAddr::parse(e.ip.str() == "198.18.130.2" ? "2001:db8:1:2::2" : "2001:db8:1:1::2");
  HealthTarget t = healthTargets(snap, "node2").at(31000);
  EXPECT_FALSE(t.dualStack);
  EXPECT_EQ(healthReply(t, true).status, 200u);
  EXPECT_EQ(healthReply(t, false).status, 200u);
  EXPECT_NE(healthReply(t, true).body.find("\"localEndpoints\":1"), std::string::npos);
}

}  // namespace
}  // namespace ferry
