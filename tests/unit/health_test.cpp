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

}  // namespace
}  // namespace ferry
