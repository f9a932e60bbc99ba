// ClusterIP datapath end to end: load balancing, client IP preservation, remote
// and host-network endpoints, multi-port, named ports, UDP, no endpoints,
// hairpin, node processes, and the ClusterIP being unreachable from outside.
#include <future>
#include <iostream>
#include <map>
#include <set>

#include "cluster_fixture.h"

namespace e2e {
namespace {

const std::map<std::string, std::string> kPodIp = {
    {"pod-a", kPodA}, {"pod-b", kPodB}, {"pod-c", kPodC}};
const std::map<std::string, std::string> kPodIp6 = {
    {"pod-a", kPodA6}, {"pod-b", kPodB6}, {"pod-c", kPodC6}};

bool isPod(const std::string& name) { return kPodIp.count(name) != 0; }

// Checks an answer from a backend pod to a client in pod a (node1): the client
// IP is pod a's (preserved) unless pod a answered itself (hairpin: node1's IP),
// in the family f the service was reached over.
void expectFromPodA(const Answer& a, int targetPort, const FamilyAddrs& f = kFamily4) {
  ASSERT_TRUE(isPod(a.name)) << a;
  EXPECT_EQ(a.clientIp, a.name == "pod-a" ? f.node1 : f.podA) << a;
  EXPECT_EQ(a.localIp, f.podIp(a.name)) << a;
  EXPECT_EQ(a.localPort, targetPort) << a;
}

Answer waitAnswered(const std::string& where, const std::string& proto, const std::string& vip,
                    int port) {
  return askUntil(where, proto, vip, port, [](const Answer& a) { return a.ok(); });
}

TEST_P(ClusterFamilyTest, BasicClusterIPBalancesAndPreservesClientIP) {
  const std::string vip = fam().vip(1, 1);
  writeManifest("t01-basic.yaml",
                serviceYaml("t01-basic", vip, "app: web",
                            "[{name: http, port: 80, targetPort: 8080, protocol: TCP}]"));
  Answer first = waitAnswered("a", "tcp", vip, 80);
  ASSERT_TRUE(first.ok()) << "service never answered: " << first;

  auto [answers, rc] = askMany("a", "tcp", vip, 80, 30);
  // An answer through ask's connected socket at all means the reply came from the
  // ClusterIP: a reply from the pod IP would not match the socket.
  ASSERT_EQ(rc, 0);
  ASSERT_EQ(answers.size(), 30u);
  std::set<std::string> who;
  for (const auto& a : answers) {
    expectFromPodA(a, 8080, fam());
    who.insert(a.name);
  }
  EXPECT_GE(who.size(), 2u) << "30 connections all went to one endpoint";
}

TEST_P(ClusterFamilyTest, EndpointOnOtherNode) {
  const std::string vip = fam().vip(1, 2);
  writeManifest("t02-remote.yaml",
                serviceYaml("t02-remote", vip, "name: c", "[{port: 80, targetPort: 8080}]"));
  ASSERT_TRUE(waitAnswered("a", "tcp", vip, 80).ok());
  auto [answers, rc] = askMany("a", "tcp", vip, 80, 15);
  ASSERT_EQ(rc, 0);
  ASSERT_EQ(answers.size(), 15u);
  for (const auto& a : answers) {
    EXPECT_EQ(a.name, "pod-c") << a;
    EXPECT_EQ(a.clientIp, fam().podA) << a;
    EXPECT_EQ(a.localIp, fam().podC) << a;
    EXPECT_EQ(a.localPort, 8080) << a;
  }
}

// A selector-less Service whose (legacy) Endpoints object names node2's
// own address in the case's family (a host-network server).
TEST_P(ClusterFamilyTest, HostNetworkEndpointFromEndpointsObject) {
  const std::string vip = fam().vip(1, 3);
  writeManifest("t03-hostnet.yaml",
                serviceYaml("t03-hostnet", "\"" + vip + "\"", "",
                            "[{port: 80, targetPort: 7070}]") +
                    "---\n"
                    "apiVersion: v1\n"
                    "kind: Endpoints\n"
                    "metadata: {name: t03-hostnet, namespace: default}\n"
                    "subsets:\n"
                    "- addresses: [{ip: \"" + std::string(fam().node2) + "\", nodeName: node2}]\n"
                    "  ports: [{port: 7070, protocol: TCP}]\n");
  Answer a = waitAnswered("a", "tcp", vip, 80);
  ASSERT_TRUE(a.ok()) << a;
  EXPECT_EQ(a.name, "node2-host") << a;
  EXPECT_EQ(a.clientIp, fam().podA) << a;
  EXPECT_EQ(a.localIp, fam().node2) << a;
  EXPECT_EQ(a.localPort, 7070) << a;
  auto [more, rc] = askMany("a", "tcp", vip, 80, 5);
  ASSERT_EQ(rc, 0);
  ASSERT_EQ(more.size(), 5u);
  for (const auto& m : more) {
    EXPECT_EQ(m.name, "node2-host") << m;
    EXPECT_EQ(m.clientIp, fam().podA) << m;
    EXPECT_EQ(m.localIp, fam().node2) << m;
  }
}

TEST_P(ClusterFamilyTest, MultiPortService) {
  const std::string vip = fam().vip(1, 4);
  writeManifest("t04-multi.yaml",
                serviceYaml("t04-multi", vip, "app: web",
                            "[{name: web, port: 80, targetPort: 8080},"
                            " {name: alt, port: 90, targetPort: 9090}]"));
  ASSERT_TRUE(waitAnswered("a", "tcp", vip, 80).ok());
  ASSERT_TRUE(waitAnswered("a", "tcp", vip, 90).ok());
  for (auto [port, target] : {std::pair{80, 8080}, std::pair{90, 9090}}) {
    auto [answers, rc] = askMany("a", "tcp", vip, port, 10);
    ASSERT_EQ(rc, 0) << "port " << port;
    ASSERT_EQ(answers.size(), 10u);
    for (const auto& a : answers) expectFromPodA(a, target, fam());
  }
}

TEST_P(ClusterFamilyTest, NamedTargetPortResolvesPerPod) {
  const std::string vip = fam().vip(1, 5);
  writeManifest("t05-named.yaml",
                serviceYaml("t05-named", vip, "app: web",
                            "[{name: web, port: 80, targetPort: http, protocol: TCP}]"));
  ASSERT_TRUE(waitAnswered("c", "tcp", vip, 80).ok());
  // from pod c (node2) until both node1 pods have answered
  std::map<std::string, std::set<int>> ports;
  waitFor(
      [&] {
        Answer a = ask("c", "tcp", vip, 80, 1000);
        if (a.ok()) ports[a.name].insert(a.localPort);
        return ports.count("pod-a") && ports.count("pod-b");
      },
      Ms(8000), Ms(10));
  ASSERT_TRUE(ports.count("pod-a")) << "pod a never answered";
  ASSERT_TRUE(ports.count("pod-b")) << "pod b never answered";
  EXPECT_EQ(ports["pod-a"], std::set<int>{8080});
  EXPECT_EQ(ports["pod-b"], std::set<int>{9090}) << "named port 'http' of pod b is 9090";
  if (ports.count("pod-c")) {
    EXPECT_EQ(ports["pod-c"], std::set<int>{8080});
  }
  for (const auto& [name, _] : ports) EXPECT_TRUE(isPod(name)) << name;
  // and each saw pod c as the client (no SNAT to a ClusterIP's endpoint)
  for (int i = 0; i < 3; ++i) {
    Answer a = ask("c", "tcp", vip, 80, 1000);
    ASSERT_TRUE(a.ok()) << a;
    EXPECT_EQ(a.clientIp, a.name == "pod-c" ? fam().node2 : fam().podC) << a;
    EXPECT_EQ(a.localIp, fam().podIp(a.name)) << a;
  }

  // ferryctl shows the per-pod ports too
  nlohmann::json eps = ferryctlJson("node1", "endpoints");
  ASSERT_TRUE(eps.is_object()) << "ferryctl get endpoints -o json failed";
  std::map<std::string, std::set<int>> listed;
  for (const auto& it : eps["items"]) {
    if (it["metadata"].value("name", "") != "t05-named") continue;
    for (const auto& ss : it.value("subsets", nlohmann::json::array()))
      for (const auto& ad : ss.value("addresses", nlohmann::json::array()))
        for (const auto& p : ss.value("ports", nlohmann::json::array()))
          listed[ad.value("ip", "")].insert(p.value("port", 0));
  }
  EXPECT_EQ(listed.size(), 3u) << "only the family's pod addresses: " << eps.dump();
  EXPECT_EQ(listed[fam().podA], std::set<int>{8080}) << eps.dump();
  EXPECT_EQ(listed[fam().podB], std::set<int>{9090}) << eps.dump();
  EXPECT_EQ(listed[fam().podC], std::set<int>{8080}) << eps.dump();
}

TEST_P(ClusterFamilyTest, UdpService) {
  const std::string vip = fam().vip(1, 6);
  writeManifest("t06-udp.yaml",
                serviceYaml("t06-udp", vip, "app: web",
                            "[{name: dns, port: 53, targetPort: 5353, protocol: UDP}]"));
  ASSERT_TRUE(waitAnswered("a", "udp", vip, 53).ok());
  auto [answers, rc] = askMany("a", "udp", vip, 53, 20);
  ASSERT_EQ(rc, 0);
  ASSERT_EQ(answers.size(), 20u);
  std::set<std::string> who;
  for (const auto& a : answers) {
    expectFromPodA(a, 5353, fam());
    who.insert(a.name);
  }
  EXPECT_GE(who.size(), 2u);
  // the TCP port of the same number is not part of the service
  Answer t = ask("a", "tcp", vip, 53, 300);
  EXPECT_FALSE(t.ok()) << t;
}

// The ClusterIP of the case's family: the socket hooks (connect4/6,
// sendmsg4/6) refuse at once; pods' packets get an ICMP (ICMPv6) port
// unreachable from tc.
TEST_P(ClusterFamilyTest, NoEndpointsIsRefusedFast) {
  const std::string vip = fam().vip(1, 8);
  writeManifest("t08-empty.yaml",
                serviceYaml("t08-empty", "\"" + vip + "\"", "app: nothing-matches",
                            "[{name: web, port: 80, targetPort: 8080, protocol: TCP},"
                            " {name: dns, port: 53, targetPort: 5353, protocol: UDP}]"));
  for (const char* where : {"a", "node1"}) {
    for (const char* proto : {"tcp", "udp"}) {
      int port = std::string(proto) == "tcp" ? 80 : 53;
      // IPv6 TCP: the ICMPv6 error reaches the pod while connect() still
      // holds its socket (the refusal is built on the SYN's own path), and
      // Linux's tcp_v6_err keeps it as a soft error (TcpExtLockDroppedIcmps)
      // until the SYN is retransmitted after 1 s and refused again; IPv4
      // reports the same soft error at once. Still far from a timeout.
      bool synRetry = fam().v6() && port == 80 && std::string(where) == "a";
      int limitMs = synRetry ? 2000 : 1000;
      // wait until programmed (before that, the ClusterIP is unknown: timeout)
      Answer w = askUntil(where, proto, vip, port, [](const Answer& a) { return a.rc == 3; },
                          Ms(5000 + limitMs), synRetry ? 1500 : 300);
      ASSERT_EQ(w.rc, 3) << where << " " << proto << ": " << w;
      auto t0 = std::chrono::steady_clock::now();
      Answer a = ask(where, proto, vip, port, 3000);
      auto ms = std::chrono::duration_cast<Ms>(std::chrono::steady_clock::now() - t0).count();
      EXPECT_EQ(a.rc, 3) << where << " " << proto << ": " << a;
      EXPECT_NE(a.raw.find("refused"), std::string::npos) << a;
      EXPECT_LT(ms, limitMs) << where << " " << proto << " took " << ms << " ms to be refused";
    }
  }
}

TEST_P(ClusterFamilyTest, HairpinSeesNodeIP) {
  const std::string vipSel = fam().vip(1, 9), vipEp = fam().vip(1, 19);
  writeManifest("t09-hairpin.yaml",
                serviceYaml("t09-sel", vipSel, "name: a", "[{port: 80, targetPort: 8080}]") +
                    "---\n" +
                    serviceYaml("t09-ep", vipEp, "", "[{port: 80, targetPort: 8080}]") +
                    "---\n"
                    "apiVersion: v1\n"
                    "kind: Endpoints\n"
                    "metadata: {name: t09-ep, namespace: default}\n"
                    "subsets:\n"
                    "- addresses: [{ip: \"" + std::string(fam().podA) + "\", nodeName: node1}]\n"
                    "  ports: [{port: 8080}]\n");
  for (const std::string& vip : {vipSel, vipEp}) {
    Answer a = waitAnswered("a", "tcp", vip, 80);
    ASSERT_TRUE(a.ok()) << vip << ": " << a;
    EXPECT_EQ(a.name, "pod-a") << a;
    EXPECT_EQ(a.clientIp, fam().node1) << "hairpin: the pod must see the node IP as client: " << a;
    EXPECT_EQ(a.localIp, fam().podA) << a;
    EXPECT_EQ(a.localPort, 8080) << a;
    auto [more, rc] = askMany("a", "tcp", vip, 80, 5);
    ASSERT_EQ(rc, 0);
    for (const auto& m : more) {
      EXPECT_EQ(m.name, "pod-a") << m;
      EXPECT_EQ(m.clientIp, fam().node1) << m;
    }
  }
}

// The node's own processes (socket hooks connect4/6, getpeername4/6):
// the pod sees the node's address of the family, getpeername() shows the
// ClusterIP.
TEST_P(ClusterFamilyTest, NodeProcessesReachClusterIP) {
  const std::string vip = v4v6<std::string>("198.19.1.10", "2001:db8:ffff::110");
  const auto& podIp = v4v6(&kPodIp, &kPodIp6);
  writeManifest("t10-node.yaml",
                serviceYaml("t10-node", "\"" + vip + "\"", "app: web",
                            "[{name: web, port: 80, targetPort: 8080, protocol: TCP},"
                            " {name: dns, port: 53, targetPort: 5353, protocol: UDP}]"));
  for (auto [node, nodeIp] : {std::pair{"node1", v4v6(kNode1, kNode1v6)},
                              std::pair{"node2", v4v6(kNode2, kNode2v6)}}) {
    for (auto [proto, port, target] :
         {std::tuple{"tcp", 80, 8080}, std::tuple{"udp", 53, 5353}}) {
      Answer a = askUntil(node, proto, vip, port, [](const Answer& x) { return x.ok(); });
      ASSERT_TRUE(a.ok()) << node << " " << proto << ": " << a;
      for (int i = 0; i < 5; ++i) {
        Answer b = ask(node, proto, vip, port, 1000, "--show-peer");
        // UDP is lossy by contract: one datagram lost on a loaded machine
        // (seen once in a fresh-Debian run) gets one more try; a dataplane
        // that does not translate fails both.
        if (!b.ok() && std::string(proto) == "udp") {
          std::cerr << node << " udp ask " << i << " failed once (" << b << "), retrying\n";
          b = ask(node, proto, vip, port, 2000, "--show-peer");
        }
        ASSERT_TRUE(b.ok()) << node << " " << proto << ": " << b;
        EXPECT_TRUE(isPod(b.name)) << b;
        EXPECT_EQ(b.peer, hostPort(vip, port)) << node << " " << proto << ": " << b;
        EXPECT_EQ(b.clientIp, nodeIp) << b;
        EXPECT_EQ(b.localPort, target) << b;
        if (isPod(b.name)) {
          EXPECT_EQ(b.localIp, podIp->at(b.name)) << b;
        }
      }
    }
  }
}

// A node process's unconnected UDP socket (sendmsg4/6, recvmsg4/6): the
// datagram goes to an endpoint, and recvfrom() reports the answer as
// coming from the ClusterIP and service port, not the pod.
TEST_P(ClusterFamilyTest, NodeUdpRecvfromSeesClusterIP) {
  const std::string vip = v4v6<std::string>("198.19.15.11", "2001:db8:ffff::f11");
  writeManifest("t15-sendto.yaml",
                serviceYaml("t15-sendto", "\"" + vip + "\"", "app: web",
                            "[{name: dns, port: 53, targetPort: 5353, protocol: UDP}]"));
  Answer a = askUntil("node1", "udp", vip, 53, [](const Answer& x) { return x.ok(); });
  ASSERT_TRUE(a.ok()) << a;
  for (int i = 0; i < 8; ++i) {
    Answer b = ask("node1", "udp", vip, 53, 1000, "--sendto --show-peer");
    if (!b.ok()) b = ask("node1", "udp", vip, 53, 2000, "--sendto --show-peer");  // lossy
    ASSERT_TRUE(b.ok()) << b;
    ASSERT_TRUE(isPod(b.name)) << b;
    EXPECT_EQ(b.peer, hostPort(vip, 53)) << "recvfrom() source: " << b;
    EXPECT_EQ(b.clientIp, v4v6(kNode1, kNode1v6)) << b;
    EXPECT_EQ(b.localIp, v4v6(&kPodIp, &kPodIp6)->at(b.name)) << b;
    EXPECT_EQ(b.localPort, 5353) << b;
  }
}

// The node's own processes dialing one of the node's own addresses at a
// nodePort, or an externalIP: the socket hooks translate these frontends
// as the tc/XDP paths do (a frontend named by the node address the
// process dialed, which getpeername() shows again).
TEST_P(ClusterFamilyTest, NodeProcessesReachOwnNodePortAndExternalIP) {
  const std::string vip = v4v6<std::string>("198.19.15.13", "2001:db8:ffff::f13");
  const std::string eip = v4v6<std::string>("198.18.0.216", "2001:db8::216");
  writeManifest("t15-nodeport.yaml",
                "apiVersion: v1\nkind: Service\nmetadata: {name: t15-nodeport, namespace: default}\n"
                "spec:\n  type: NodePort\n  clusterIP: \"" + vip + "\"\n  selector: {app: web}\n"
                "  externalIPs: [\"" + eip + "\"]\n"
                "  ports: [{name: web, port: 80, targetPort: 8080, protocol: TCP, nodePort: 30050},"
                " {name: dns, port: 53, targetPort: 5353, protocol: UDP, nodePort: 30051}]\n");
  for (auto [node, nodeIp] : {std::pair{"node1", v4v6(kNode1, kNode1v6)},
                              std::pair{"node2", v4v6(kNode2, kNode2v6)}}) {
    for (auto [proto, port, nodePort, target] :
         {std::tuple{"tcp", 80, 30050, 8080}, std::tuple{"udp", 53, 30051, 5353}}) {
      for (auto [dst, dport] : {std::pair<std::string, int>{nodeIp, nodePort},
                                std::pair<std::string, int>{eip, port}}) {
        SCOPED_TRACE(std::string(node) + " " + proto + " " + hostPort(dst, dport));
        Answer a = askUntil(node, proto, dst, dport, [](const Answer& x) { return x.ok(); });
        ASSERT_TRUE(a.ok()) << a;
        for (int i = 0; i < 3; ++i) {
          Answer b = ask(node, proto, dst, dport, 1000, "--show-peer");
          if (!b.ok() && std::string(proto) == "udp")  // lossy
            b = ask(node, proto, dst, dport, 2000, "--show-peer");
          ASSERT_TRUE(b.ok()) << b;
          ASSERT_TRUE(isPod(b.name)) << b;
          EXPECT_EQ(b.peer, hostPort(dst, dport)) << b;
          EXPECT_EQ(b.clientIp, nodeIp) << b;
          EXPECT_EQ(b.localIp, v4v6(&kPodIp, &kPodIp6)->at(b.name)) << b;
          EXPECT_EQ(b.localPort, target) << b;
        }
      }
    }
  }
}

// A dual-stack application on the node reaching an IPv4 ClusterIP through
// an AF_INET6 socket and the IPv4-mapped address ::ffff:a.b.c.d (connect6,
// getpeername6; sendmsg to a mapped address runs sendmsg4, the answer
// recvmsg6): it is the IPv4 service, with the node's IPv4 address as
// client. ferry-echo prints mapped addresses as plain IPv4.
TEST_F(ClusterTest, NodeDualStackSocketReachesIPv4ClusterIPByMappedAddress) {
  const std::string vip = "198.19.15.12", mapped = "::ffff:198.19.15.12";
  writeManifest("t15-mapped.yaml",
                serviceYaml("t15-mapped", vip, "app: web",
                            "[{name: web, port: 80, targetPort: 8080, protocol: TCP},"
                            " {name: dns, port: 53, targetPort: 5353, protocol: UDP}]"));
  ASSERT_TRUE(waitAnswered("node1", "tcp", vip, 80).ok()) << "the IPv4 ClusterIP itself";
  for (auto [proto, port, target, extra] :
       {std::tuple{"tcp", 80, 8080, ""}, std::tuple{"udp", 53, 5353, ""},
        std::tuple{"udp", 53, 5353, "--sendto"}}) {
    Answer a = askUntil("node1", proto, mapped, port, [](const Answer& x) { return x.ok(); },
                        Ms(3000), 500);
    ASSERT_TRUE(a.ok()) << proto << " " << extra << ": " << a;
    for (int i = 0; i < 3; ++i) {
      Answer b = ask("node1", proto, mapped, port, 1000, std::string("--show-peer ") + extra);
      if (!b.ok() && std::string(proto) == "udp")  // lossy
        b = ask("node1", proto, mapped, port, 2000, std::string("--show-peer ") + extra);
      ASSERT_TRUE(b.ok()) << proto << " " << extra << ": " << b;
      ASSERT_TRUE(isPod(b.name)) << b;
      EXPECT_EQ(b.peer, vip + ":" + std::to_string(port)) << proto << " " << extra << ": " << b;
      EXPECT_EQ(b.clientIp, kNode1) << b;
      EXPECT_EQ(b.localIp, kPodIp.at(b.name)) << b;
      EXPECT_EQ(b.localPort, target) << b;
    }
  }
}

// A 3 s stream through a 3-endpoint service only survives if every packet of
// the flow goes to the same endpoint (conntrack), from both nodes' pods: each
// stream's bytes all come back echoed by the one pod that greeted it, which
// saw the client pod's address (its node's, when it reached itself).
TEST_P(ClusterFamilyTest, LongFlowsStayOnTheirEndpoint) {
  const std::string vip = fam().vip(1, 20);
  writeManifest("t16-long.yaml",
                serviceYaml("t16-long", "\"" + vip + "\"", "app: web",
                            "[{port: 80, targetPort: 8080}]"));
  ASSERT_TRUE(waitAnswered("a", "tcp", vip, 80).ok());
  ASSERT_TRUE(waitAnswered("c", "tcp", vip, 80).ok());
  const std::vector<std::string> froms = {"a", "b", "c", "a", "c"};
  std::vector<std::future<ShResult>> holds;
  for (const std::string& from : froms)
    holds.push_back(std::async(std::launch::async, [from, vip] {
      return exec(from, q(echoBin()) + " hold tcp " + vip + " 80 --seconds 3", 30);
    }));
  for (size_t i = 0; i < holds.size(); ++i) {
    const std::string& from = froms[i];
    ShResult r = holds[i].get();
    SCOPED_TRACE("from pod-" + from + ": " + r.out);
    EXPECT_EQ(r.rc, 0);
    // stderr "ferry-echo: hold: <server line>", stdout "ok <bytes echoed>"
    const std::string tag = "ferry-echo: hold: ";
    auto g = r.out.find(tag);
    ASSERT_NE(g, std::string::npos);
    Answer who = parseAnswer(r.out.substr(g + tag.size(), r.out.find('\n', g) - g - tag.size()));
    ASSERT_TRUE(isPod(who.name));
    EXPECT_EQ(who.localIp, fam().podIp(who.name));
    EXPECT_EQ(who.localPort, 8080);
    const bool self = who.name == "pod-" + from;
    EXPECT_EQ(who.clientIp, self ? (from == "c" ? fam().node2 : fam().node1)
                                 : fam().podIp("pod-" + from));
    auto ok = r.out.rfind("ok ", 0) == 0 ? 0 : r.out.find("\nok ");
    ASSERT_NE(ok, std::string::npos);
    long bytes = std::atol(r.out.c_str() + ok + (ok == 0 ? 3 : 4));
    // 1 KiB every 10 ms for 3 s: 300 KiB (a chunk less if the last tick is late)
    EXPECT_GE(bytes, 290 * 1024);
    EXPECT_LE(bytes, 300 * 1024);
  }
}

// The ClusterIP range of the case's family, routed by the external client to
// node1: node1 must not translate it (kube-proxy's ClusterIPs are internal).
TEST_P(ClusterFamilyTest, ClusterIPIsNotReachableFromOutside) {
  const std::string vip = fam().vip(1, 16);
  const std::string range = v4v6<std::string>("198.19.0.0/16", "2001:db8:ffff::/112");
  const std::string extIp = v4v6<std::string>("198.18.0.100", "2001:db8::100");
  writeManifest("t13-internal.yaml",
                serviceYaml("t13-internal", "\"" + vip + "\"", "app: web",
                            "[{name: web, port: 80, targetPort: 8080, protocol: TCP},"
                            " {name: dns, port: 53, targetPort: 5353, protocol: UDP}]"));
  ASSERT_TRUE(waitAnswered("a", "tcp", vip, 80).ok()) << "service must work from a pod";
  std::string ext = "ip netns exec " + prefix() + "-ext ";
  ShResult r = sh(ext + "ip route replace " + range + " via " + fam().node1, 10);
  ASSERT_EQ(r.rc, 0) << r.out;
  struct RouteGuard {
    std::string cmd;
    ~RouteGuard() { sh(cmd, 10); }
  } guard{ext + "ip route del " + range};
  // sanity: ext reaches the nodes at all (so a missing answer below means something)
  ShResult direct =
      sh(ext + q(echoBin()) + " ask tcp " + fam().node2 + " 7070 --timeout-ms 2000", 15);
  ASSERT_EQ(direct.rc, 0) << direct.out;
  std::string seenExt = hostPort(extIp, 0);
  seenExt.pop_back();  // "198.18.0.100:" or "[2001:db8::100]:"
  ASSERT_NE(direct.out.find("node2-host " + seenExt), std::string::npos) << direct.out;
  ShResult ping = sh(ext + "ping -c1 -W2 " + fam().node1, 10);
  ASSERT_EQ(ping.rc, 0) << ping.out;
  for (auto [proto, port] : {std::pair{"tcp", 80}, std::pair{"udp", 53}}) {
    ShResult o = sh(ext + q(echoBin()) + " ask " + proto + " " + vip + " " +
                        std::to_string(port) + " --timeout-ms 500",
                    15);
    EXPECT_NE(o.rc, 0) << proto << ": answered from outside: " << o.out;
    EXPECT_EQ(o.out.find("pod-"), std::string::npos) << proto << ": " << o.out;
    // node1 forwards it to its default router, which does not exist: a timeout, or
    // "No route to host" once node1's ARP (NDP) for the router has failed
    if (std::string(proto) == "tcp") {
      EXPECT_TRUE(o.rc == 4 || o.rc == 3 ||
                  (o.rc == 1 && o.out.find("No route to host") != std::string::npos))
          << "expected timeout: rc " << o.rc << " " << o.out;
    }
  }
}

}  // namespace
}  // namespace e2e
