// Backend selection end to end: sessionAffinity ClientIP on ClusterIP and
// NodePort services (ported from the Kubernetes e2e Services tests
// "should have session affinity work / timeout work / be able to switch
// session affinity for service with type clusterIP|NodePort"), and Maglev
// on NodePorts (both nodes pick the same endpoint for a flow; removing one
// of N endpoints moves only the flows that were on it, about 1/N).
//
// Services: ClusterIPs 198.19.14.100-119 (IPv6 cases: 2001:db8:ffff::e64-e77),
// nodePorts 30070-30079 (the static band, see nodeport_test.cpp). Endpoints: pods a, b (node1) and c
// (node2), TCP 8080 and UDP 5353 (ferry-echo).
#include <iostream>
#include <map>
#include <set>
#include <thread>

#include "cluster_fixture.h"

namespace e2e {
namespace {

struct Ep {
  const char* ip;
  const char* node;
  const char* ip6;  // the pod's IPv6 address (EndpointSlice of addressType IPv6)
};
const Ep kA{kPodA, "node1", kPodA6}, kB{kPodB, "node1", kPodB6}, kC{kPodC, "node2", kPodC6};

// A selector-less Service with one port (TCP 80 -> 8080 and UDP 53 ->
// 5353 under the same name scheme) and its EndpointSlice. `spec` and
// `annotations` are extra lines (indented by 2 and 4). In IPv6 (family) the
// Service is SingleStack IPv6 (vip from the IPv6 service CIDR) and the slice
// of addressType IPv6 lists the pods' IPv6 addresses.
std::string service(const std::string& name, const std::string& type, const std::string& vip,
                    const std::string& proto, int nodePort, const std::vector<Ep>& eps,
                    const std::string& spec = "", const std::string& annotations = "",
                    Family family = Family::IPv4) {
  const bool v6 = family == Family::IPv6;
  int port = proto == "TCP" ? 80 : 53, target = proto == "TCP" ? 8080 : 5353;
  std::string y = "apiVersion: v1\nkind: Service\nmetadata:\n  name: " + name +
                  "\n  namespace: default\n";
  if (!annotations.empty()) y += "  annotations:\n" + annotations;
  y += "spec:\n  type: " + type + "\n  clusterIP: " + vip + "\n" + spec +
       "  ports: [{name: p, port: " + std::to_string(port) + ", targetPort: " +
       std::to_string(target) + ", protocol: " + proto +
       (nodePort ? ", nodePort: " + std::to_string(nodePort) : std::string()) + "}]\n---\n" +
       "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata:\n  name: " + name +
       "-1\n  namespace: default\n  labels: {kubernetes.io/service-name: " + name +
       "}\naddressType: " + (v6 ? "IPv6" : "IPv4") + "\nports: [{name: p, port: " + std::to_string(target) +
       ", protocol: " + proto + "}]\nendpoints:\n";
  for (const Ep& e : eps)
    y += std::string("- {addresses: [\"") + (v6 ? e.ip6 : e.ip) + "\"], conditions: {ready: true}, nodeName: " +
         e.node + "}\n";
  return y;
}

const std::string kAffinity = "  sessionAffinity: ClientIP\n";
std::string affinityTimeout(int s) {
  return kAffinity + "  sessionAffinityConfig: {clientIP: {timeoutSeconds: " + std::to_string(s) +
         "}}\n";
}

class SelectionE2E : public ClusterTest {
 protected:
  // Who answered `count` new connections from `where` (names, in order).
  std::vector<std::string> hosts(const std::string& where, const std::string& ip, int port,
                                 int count = 15) {
    auto [answers, rc] = askMany(where, "tcp", ip, port, count);
    std::vector<std::string> out;
    for (const auto& a : answers) {
      EXPECT_TRUE(a.ok() && a.byPod()) << a;
      out.push_back(a.name);
    }
    EXPECT_EQ(rc, 0) << "askMany " << where << " -> " << ip << ":" << port;
    return out;
  }
  static size_t distinct(const std::vector<std::string>& v) {
    return std::set<std::string>(v.begin(), v.end()).size();
  }
  // The e2e framework's checkAffinity: shouldHold waits until
  // AffinityConfirmCount (15) connections in a row reach one endpoint;
  // !shouldHold until they reach more than one.
  bool checkAffinity(const std::string& where, const std::string& ip, int port, bool shouldHold) {
    std::vector<std::string> last;
    bool ok = waitFor(
        [&] {
          last = hosts(where, ip, port);
          if (last.size() != 15) return false;
          return shouldHold ? distinct(last) == 1 : distinct(last) > 1;
        },
        Ms(10000), Ms(200));
    if (!ok) {
      std::string got;
      for (const auto& h : last) got += h + " ";
      ADD_FAILURE() << (shouldHold ? "affinity does not hold" : "affinity holds") << " for "
                    << where << " -> " << ip << ":" << port << ": " << got;
    }
    return ok;
  }
  // The framework's timeout check: after the timeout, new connections
  // reach another endpoint at some point (tries 10 times, sleeping the
  // timeout between tries).
  void expectAffinityExpires(const std::string& where, const std::string& ip, int port,
                             int timeoutS) {
    std::set<std::string> seen;
    for (int i = 0; i < 10 && seen.size() < 2; ++i) {
      Answer a = ask(where, "tcp", ip, port, 1000);
      if (a.ok()) seen.insert(a.name);
      if (seen.size() < 2) std::this_thread::sleep_for(std::chrono::seconds(timeoutS) + Ms(300));
    }
    EXPECT_GE(seen.size(), 2u) << "session is sticky after reaching the timeout";
  }
  void affinityWorks(const std::string& where, const std::string& ip, int port) {
    ASSERT_TRUE(askUntil(where, "tcp", ip, port, [](const Answer& a) { return a.ok(); }).ok());
    EXPECT_TRUE(checkAffinity(where, ip, port, true));
    // and it holds for a while: another 15 from the same client
    auto again = hosts(where, ip, port);
    EXPECT_EQ(distinct(again), 1u);
    std::cout << "[ affinity ] " << where << " -> " << ip << ":" << port << " stays on "
              << (again.empty() ? "?" : again[0]) << "\n";
  }
};

// SelectionE2E in one IP family: the cases below marked TEST_P run in both
// (ByFamily/SelectionFamilyE2E.<case>/IPv4|IPv6), their services and
// endpoints in the family, ClusterIPs 198.19.14.x or 2001:db8:ffff::e<x>.
class SelectionFamilyE2E : public SelectionE2E, public ::testing::WithParamInterface<Family> {
 protected:
  bool v6() const { return GetParam() == Family::IPv6; }
  const FamilyAddrs& fam() const { return v6() ? kFamily6 : kFamily4; }
  // service() in the case's family.
  std::string svc(const std::string& name, const std::string& type, const std::string& vip,
                  const std::string& proto, int nodePort, const std::vector<Ep>& eps,
                  const std::string& spec = "", const std::string& annotations = "") const {
    return service(name, type, vip, proto, nodePort, eps, spec, annotations, GetParam());
  }
};
INSTANTIATE_TEST_SUITE_P(ByFamily, SelectionFamilyE2E, kFamilies, familyName);

// ---- ClusterIP (client: pod a) ----------------------------------------------

TEST_P(SelectionFamilyE2E, SessionAffinityWorksForClusterIP) {
  const std::string vip = fam().vip(14, 100);
  writeManifest("sel-aff-cip.yaml",
                svc("aff-cip", "ClusterIP", vip, "TCP", 0, {kA, kB, kC}, kAffinity));
  affinityWorks("a", vip, 80);
}

TEST_P(SelectionFamilyE2E, SessionAffinityTimeoutWorksForClusterIP) {
  const std::string vip = fam().vip(14, 101);
  writeManifest("sel-aff-cip-to.yaml",
                svc("aff-cip-to", "ClusterIP", vip, "TCP", 0, {kA, kB, kC}, affinityTimeout(2)));
  ASSERT_TRUE(askUntil("a", "tcp", vip, 80, [](const Answer& a) { return a.ok(); }).ok());
  EXPECT_TRUE(checkAffinity("a", vip, 80, true));
  expectAffinityExpires("a", vip, 80, 2);
}

TEST_P(SelectionFamilyE2E, SessionAffinitySwitchesForClusterIP) {
  const std::string vip = fam().vip(14, 102);
  writeManifest("sel-aff-cip-sw.yaml", svc("aff-cip-sw", "ClusterIP", vip, "TCP", 0, {kA, kB, kC}));
  ASSERT_TRUE(askUntil("a", "tcp", vip, 80, [](const Answer& a) { return a.ok(); }).ok());
  EXPECT_TRUE(checkAffinity("a", vip, 80, false));
  writeManifest("sel-aff-cip-sw.yaml",
                svc("aff-cip-sw", "ClusterIP", vip, "TCP", 0, {kA, kB, kC}, kAffinity));
  EXPECT_TRUE(checkAffinity("a", vip, 80, true));
  writeManifest("sel-aff-cip-sw.yaml", svc("aff-cip-sw", "ClusterIP", vip, "TCP", 0, {kA, kB, kC}));
  EXPECT_TRUE(checkAffinity("a", vip, 80, false));
}

// The node's own processes: the client is the node's address.
TEST_P(SelectionFamilyE2E, SessionAffinityWorksForTheNodesOwnSockets) {
  const std::string vip = fam().vip(14, 103);
  writeManifest("sel-aff-node.yaml",
                svc("aff-node", "ClusterIP", vip, "TCP", 0, {kA, kB, kC}, kAffinity));
  affinityWorks("node2", vip, 80);
}

// An affinity entry whose endpoint left the service is not used: the
// client moves to a remaining endpoint and stays there.
TEST_P(SelectionFamilyE2E, SessionAffinityLeavesARemovedEndpoint) {
  const std::string vip = fam().vip(14, 104);
  writeManifest("sel-aff-rm.yaml",
                svc("aff-rm", "ClusterIP", vip, "TCP", 0, {kA, kB, kC}, kAffinity));
  ASSERT_TRUE(askUntil("a", "tcp", vip, 80, [](const Answer& a) { return a.ok(); }).ok());
  ASSERT_TRUE(checkAffinity("a", vip, 80, true));
  std::string pinned = hosts("a", vip, 80, 1).at(0);
  std::vector<Ep> rest;
  for (const Ep& e : {kA, kB, kC})
    if ("pod-" + std::string(e.ip == kPodA ? "a" : e.ip == kPodB ? "b" : "c") != pinned)
      rest.push_back(e);
  ASSERT_EQ(rest.size(), 2u) << pinned;
  writeManifest("sel-aff-rm.yaml", svc("aff-rm", "ClusterIP", vip, "TCP", 0, rest, kAffinity));
  std::vector<std::string> after;
  ASSERT_TRUE(waitFor([&] {
    after = hosts("a", vip, 80);
    return after.size() == 15 && std::find(after.begin(), after.end(), pinned) == after.end();
  }, Ms(8000), Ms(200))) << "still reaching " << pinned;
  EXPECT_EQ(distinct(after), 1u) << "a new affinity to one of the remaining endpoints";
}

// ---- NodePort (client: the external client, through node1) ----------------

TEST_P(SelectionFamilyE2E, SessionAffinityWorksForNodePort) {
  writeManifest("sel-aff-np.yaml", svc("aff-np", "NodePort", fam().vip(14, 110), "TCP", 30070,
                                           {kA, kB, kC}, kAffinity));
  affinityWorks("ext", fam().node1, 30070);
}

TEST_P(SelectionFamilyE2E, SessionAffinityTimeoutWorksForNodePort) {
  writeManifest("sel-aff-np-to.yaml", svc("aff-np-to", "NodePort", fam().vip(14, 111), "TCP",
                                              30071, {kA, kB, kC}, affinityTimeout(2)));
  ASSERT_TRUE(askUntil("ext", "tcp", fam().node1, 30071, [](const Answer& a) { return a.ok(); }).ok());
  EXPECT_TRUE(checkAffinity("ext", fam().node1, 30071, true));
  expectAffinityExpires("ext", fam().node1, 30071, 2);
}

TEST_P(SelectionFamilyE2E, SessionAffinitySwitchesForNodePort) {
  auto sw = [&](const std::string& extra) {
    return svc("aff-np-sw", "NodePort", fam().vip(14, 112), "TCP", 30072, {kA, kB, kC}, extra);
  };
  writeManifest("sel-aff-np-sw.yaml", sw(""));
  ASSERT_TRUE(askUntil("ext", "tcp", fam().node1, 30072, [](const Answer& a) { return a.ok(); }).ok());
  EXPECT_TRUE(checkAffinity("ext", fam().node1, 30072, false));
  writeManifest("sel-aff-np-sw.yaml", sw(kAffinity));
  EXPECT_TRUE(checkAffinity("ext", fam().node1, 30072, true));
  writeManifest("sel-aff-np-sw.yaml", sw(""));
  EXPECT_TRUE(checkAffinity("ext", fam().node1, 30072, false));
}

// ---- Maglev ------------------------------------------------------------------

const std::string kMaglev = "    service.ferry.io/lb-algorithm: maglev\n";

// Who answers one UDP flow from the external client's port `sport`.
std::string udpFlow(const std::string& node, int nodePort, int sport) {
  Answer a = ask("ext", "udp", node, nodePort, 1000, "--src-port " + std::to_string(sport));
  return a.ok() ? a.name : "(" + a.raw + ")";
}

// The same flow tuple reaches the same endpoint through either node (the
// NodePort is hashed as 0.0.0.0:port, so the node's address does not count).
TEST_P(SelectionFamilyE2E, MaglevBothNodesPickTheSameEndpointForAFlow) {
  const int np = 30075;
  writeManifest("sel-maglev.yaml", svc("maglev", "NodePort", fam().vip(14, 115), "UDP", np,
                                           {kA, kB, kC}, "", kMaglev));
  // both nodes serve the nodePort before the flows are compared (a node that
  // has not programmed it yet answers port unreachable: "refused")
  for (const char* node : {fam().node1, fam().node2})
    ASSERT_TRUE(askUntil("ext", "udp", node, np, [](const Answer& a) { return a.ok(); }).ok())
        << node;
  std::set<std::string> used;
  for (int sport = 42000; sport < 42030; ++sport) {
    std::string via1 = udpFlow(fam().node1, np, sport), via2 = udpFlow(fam().node2, np, sport);
    EXPECT_EQ(via1, via2) << "source port " << sport;
    used.insert(via1);
  }
  EXPECT_EQ(used.size(), 3u) << "30 flows over 3 endpoints";
}

// Flows recorded through node1; one endpoint removed; the same tuples
// replayed through node2 (no conntrack there, so the table decides): only
// the removed endpoint's flows move.
TEST_P(SelectionFamilyE2E, MaglevRemovingOneOfNEndpointsMovesOnlyItsFlows) {
  const int np = 30076;
  writeManifest("sel-maglev-rm.yaml", svc("maglev-rm", "NodePort", fam().vip(14, 116), "UDP", np,
                                              {kA, kB, kC}, "", kMaglev));
  ASSERT_TRUE(askUntil("ext", "udp", fam().node1, np, [](const Answer& a) { return a.ok(); }).ok());
  std::map<int, std::string> before;
  for (int sport = 43000; sport < 43060; ++sport) before[sport] = udpFlow(fam().node1, np, sport);
  writeManifest("sel-maglev-rm.yaml", svc("maglev-rm", "NodePort", fam().vip(14, 116), "UDP", np,
                                              {kA, kC}, "", kMaglev));
  // node2 has dropped pod b once 20 fresh flows in a row avoid it
  int probe = 44000;
  ASSERT_TRUE(waitFor([&] {
    for (int i = 0; i < 20; ++i)
      if (udpFlow(fam().node2, np, probe++) == "pod-b") return false;
    return true;
  }, Ms(8000), Ms(100)));
  int onRemoved = 0, moved = 0, movedOthers = 0;
  for (const auto& [sport, who] : before) {
    std::string now = udpFlow(fam().node2, np, sport);
    ASSERT_NE(now, "pod-b") << sport;
    if (who == "pod-b") onRemoved++;
    if (now != who) moved++;
    if (now != who && who != "pod-b") movedOthers++;
  }
  EXPECT_GT(onRemoved, 0);
  EXPECT_EQ(moved, onRemoved + movedOthers);
  // Random selection would move about half of the others (30 of 60).
  EXPECT_LE(movedOthers, 2) << moved << " of " << before.size() << " flows moved, " << onRemoved
                            << " of them from the removed endpoint";
}

// An agent restarted with another --maglev-table-size drops the pinned
// tables and rebuilds them (they are derived state), and one restarted
// with the default again does the same; `ferryctl debug verify` agrees.
TEST_P(SelectionFamilyE2E, MaglevTableSizeChangesAcrossAgentRestarts) {
  const int np = 30077;
  writeManifest("sel-maglev-size.yaml", svc("maglev-size", "NodePort", fam().vip(14, 117), "UDP",
                                                np, {kA, kB, kC}, "", kMaglev));
  ASSERT_TRUE(askUntil("ext", "udp", fam().node2, np, [](const Answer& a) { return a.ok(); }).ok());
  std::string cs = q(clusterSh()) + " ", P = q(prefix());
  auto restart = [&](const std::string& args, int base) {
    ShResult r = sh(cs + "stop-agent " + P + " node2", 30);
    EXPECT_EQ(r.rc, 0) << r.out;
    r = sh(cs + "start-agent " + P + " node2 " + args + " >/dev/null", 30);
    EXPECT_EQ(r.rc, 0) << "ferryd " << args << ": " << r.out;
    std::string out;
    EXPECT_TRUE(waitFor([&] {
      ShResult v = ferryctl("node2", "debug verify");
      out = v.out;
      return v.rc == 0 && v.out.rfind("OK:", 0) == 0;
    }, Ms(8000), Ms(200))) << out;
    std::set<std::string> who;
    for (int sport = base; sport < base + 30; ++sport) who.insert(udpFlow(fam().node2, np, sport));
    EXPECT_EQ(who, (std::set<std::string>{"pod-a", "pod-b", "pod-c"})) << args;
  };
  restart("--maglev-table-size 251", 45000);
  restart("", 45100);
}

}  // namespace
}  // namespace e2e
