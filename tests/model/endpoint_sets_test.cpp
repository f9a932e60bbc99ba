// Endpoint categorization (model/endpoint_sets.h), case by case against
// kube-proxy's CategorizeEndpoints (pkg/proxy/topology.go) and its tests.
#include <gtest/gtest.h>

#include "model/endpoint_sets.h"
#include "test_util.h"

namespace ferry {
namespace {

using test::ip;

struct Ep {
  const char* addr;
  const char* node;
  bool ready = true, serving = true, terminating = false;
  std::vector<std::string> zones = {}, nodes = {};
};

struct Fixture {
  std::vector<Endpoint> eps;
  std::vector<const Endpoint*> ptrs;
  std::map<std::string, Node> nodes;
  Service svc;
  explicit Fixture(const std::vector<Ep>& in) {
    for (const Ep& e : in)
      eps.push_back({ip(e.addr), 80, e.ready, e.serving, e.terminating, e.node, "", "", e.zones,
                     e.nodes});
    for (const Endpoint& e : eps) ptrs.push_back(&e);
    nodes["n1"].name = "n1";
    nodes["n1"].zone = "za";
    nodes["n2"].name = "n2";
    nodes["n2"].zone = "zb";
  }
  EndpointSets run(const char* node = "n1") {
    return categorizeEndpoints(ptrs, svc, NodeTopology::of(node, nodes));
  }
};

std::vector<std::string> addrs(const std::vector<const Endpoint*>& v) {
  std::vector<std::string> out;
  for (const Endpoint* e : v) out.push_back(e->ip.str());
  return out;
}

using V = std::vector<std::string>;

TEST(EndpointSets, ReadyEndpointsOnlyWhileAnyIsReady) {
  Fixture f({{"10.0.0.1", "n1"},
             {"10.0.0.2", "n2", false, true, true},     // serving, terminating
             {"10.0.0.3", "n2", false, false, false}}); // not ready
  EndpointSets s = f.run();
  EXPECT_EQ(addrs(s.cluster), V({"10.0.0.1"}));
  EXPECT_EQ(addrs(s.local), V({"10.0.0.1"}));
  EXPECT_TRUE(s.hasAny);
}

TEST(EndpointSets, FallBackToServingTerminatingWhenNoneIsReady) {
  Fixture f({{"10.0.0.1", "n1", false, true, true},
             {"10.0.0.2", "n2", false, true, true},
             {"10.0.0.3", "n2", false, false, true},    // terminating, not serving
             {"10.0.0.4", "n1", false, false, false}}); // not ready
  EndpointSets s = f.run();
  EXPECT_EQ(addrs(s.cluster), V({"10.0.0.1", "10.0.0.2"}));
  EXPECT_EQ(addrs(s.local), V({"10.0.0.1"}));
  EXPECT_TRUE(s.hasAny);
}

TEST(EndpointSets, LocalFallsBackOnItsOwnWhileRemoteOnesAreReady) {
  Fixture f({{"10.0.0.1", "n1", false, true, true}, {"10.0.0.2", "n2"}});
  EndpointSets s = f.run();
  EXPECT_EQ(addrs(s.cluster), V({"10.0.0.2"}));
  EXPECT_EQ(addrs(s.local), V({"10.0.0.1"}));
}

TEST(EndpointSets, NothingUsableAnywhere) {
  Fixture f({{"10.0.0.1", "n1", false, false, true}, {"10.0.0.2", "n2", false, false, false}});
  EndpointSets s = f.run();
  EXPECT_TRUE(s.cluster.empty());
  EXPECT_TRUE(s.local.empty());
  EXPECT_FALSE(s.hasAny);
}

TEST(EndpointSets, NoLocalEndpointButSomeElsewhere) {
  Fixture f(std::vector<Ep>{{"10.0.0.2", "n2"}});
  EndpointSets s = f.run();
  EXPECT_TRUE(s.local.empty());
  EXPECT_TRUE(s.hasAny) << "Local policy drops rather than rejects";
}

TEST(EndpointSets, PublishNotReadyAddressesMakesEveryEndpointReady) {
  Fixture f({{"10.0.0.1", "n1", false, false, false}, {"10.0.0.2", "n2", false, false, true}});
  f.svc.publishNotReadyAddresses = true;
  EndpointSets s = f.run();
  EXPECT_EQ(addrs(s.cluster), V({"10.0.0.1", "10.0.0.2"}));
  EXPECT_EQ(addrs(s.local), V({"10.0.0.1"}));
}

TEST(EndpointSets, ZoneHintsForThisZoneArePreferred) {
  Fixture f({{"10.0.0.1", "n1", true, true, false, {"za"}},
             {"10.0.0.2", "n2", true, true, false, {"zb"}},
             {"10.0.0.3", "n2", true, true, false, {"za"}}});
  EXPECT_EQ(addrs(f.run("n1").cluster), V({"10.0.0.1", "10.0.0.3"}));
  EXPECT_EQ(f.run("n1").topology, "PreferSameZone");
  EXPECT_EQ(addrs(f.run("n2").cluster), V({"10.0.0.2"}));
}

TEST(EndpointSets, HintsIgnoredUnlessEveryReadyEndpointHasThem) {
  Fixture f({{"10.0.0.1", "n1", true, true, false, {"za"}},
             {"10.0.0.2", "n2"},
             {"10.0.0.3", "n2", false, false, false}});  // not ready: not counted
  EXPECT_EQ(addrs(f.run().cluster), V({"10.0.0.1", "10.0.0.2"}));
  EXPECT_EQ(f.run().topology, "");
  Fixture g({{"10.0.0.1", "n1", true, true, false, {"za"}},
             {"10.0.0.2", "n2", true, true, false, {"zb"}},
             {"10.0.0.3", "n2", false, false, false}});  // a not-ready one without hints
  EXPECT_EQ(addrs(g.run().cluster), V({"10.0.0.1"}));
}

TEST(EndpointSets, HintsIgnoredWhenNoneIsForThisZoneOrTheNodeHasNoZone) {
  Fixture f({{"10.0.0.1", "n1", true, true, false, {"zc"}},
             {"10.0.0.2", "n2", true, true, false, {"zb"}}});
  EXPECT_EQ(addrs(f.run("n1").cluster), V({"10.0.0.1", "10.0.0.2"}));
  f.nodes["n1"].zone = "";
  EXPECT_EQ(addrs(f.run("n1").cluster), V({"10.0.0.1", "10.0.0.2"}));
}

TEST(EndpointSets, NodeHintsForThisNodeWinOverZoneHints) {
  Fixture f({{"10.0.0.1", "n1", true, true, false, {"za"}, {"n1"}},
             {"10.0.0.2", "n2", true, true, false, {"za"}, {"n2"}}});
  EndpointSets s = f.run("n1");
  EXPECT_EQ(s.topology, "PreferSameNode");
  EXPECT_EQ(addrs(s.cluster), V({"10.0.0.1"}));
  f.nodes["n3"].zone = "za";
  EXPECT_EQ(addrs(f.run("n3").cluster), V({"10.0.0.1", "10.0.0.2"})) << "no node hint for n3: zone";
}

TEST(EndpointSets, TerminatingFallbackIgnoresTopology) {
  Fixture f({{"10.0.0.1", "n1", false, true, true, {"zb"}},
             {"10.0.0.2", "n2", false, true, true, {"zb"}}});
  EXPECT_EQ(addrs(f.run("n1").cluster), V({"10.0.0.1", "10.0.0.2"}));
}

TEST(EndpointSets, TrafficDistributionWritesHintsWhenEndpointsCarryNone) {
  Fixture f({{"10.0.0.1", "n1"}, {"10.0.0.2", "n2"}, {"10.0.0.3", "n2"}});
  f.svc.trafficDistribution = "PreferClose";
  EXPECT_EQ(addrs(f.run("n1").cluster), V({"10.0.0.1"}));
  EXPECT_EQ(addrs(f.run("n2").cluster), V({"10.0.0.2", "10.0.0.3"}));
  f.nodes["n2"].zone = "za";  // a Node label change
  EXPECT_EQ(addrs(f.run("n1").cluster).size(), 3u);
  f.svc.trafficDistribution = "PreferSameNode";
  EXPECT_EQ(addrs(f.run("n2").cluster), V({"10.0.0.2", "10.0.0.3"}));
  f.nodes.erase("n1");  // an endpoint's node without a zone: no zone hints
  EXPECT_EQ(f.run("n3").cluster.size(), 3u);
}

TEST(EndpointSets, UsesTopology) {
  Service s;
  EXPECT_FALSE(usesTopology(s));
  s.trafficDistribution = "PreferClose";
  EXPECT_TRUE(usesTopology(s));
  s.trafficDistribution = "";
  ServicePort sp;
  sp.endpoints.push_back({ip("10.0.0.1"), 80, true, true, false, "n1", "", "", {"za"}, {}});
  s.ports = {sp};
  EXPECT_TRUE(usesTopology(s));
}

}  // namespace
}  // namespace ferry
