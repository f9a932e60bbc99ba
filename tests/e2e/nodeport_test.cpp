// NodePort, LoadBalancer health checks and externalIPs end to end, from the
// external client netns P-ext (198.18.0.100) across the LAN to the nodes'
// eth0, where XDP (or tc with `ferryd --xdp off`) handles the traffic.
//
// Every test uses its own services: ClusterIPs 198.19.3.x and fixed nodePorts
// in 30000-30085, the lower band of the default range that ferry (like
// kube-apiserver) keeps for requested ports, so no dynamically allocated
// nodePort of another test can take them.
#include <algorithm>
#include <fstream>
#include <future>
#include <map>
#include <set>
#include <sstream>
#include <thread>

#include "cluster_fixture.h"

namespace e2e {
namespace {

const char* kExt = "198.18.0.100";
const char* kExt6 = "2001:db8::100";
const std::map<std::string, std::string> kPodIp = {
    {"pod-a", kPodA}, {"pod-b", kPodB}, {"pod-c", kPodC}};
const std::map<std::string, std::string> kNodeIp = {{"node1", kNode1}, {"node2", kNode2}};
const std::map<std::string, std::string> kPodIp6 = {
    {"pod-a", kPodA6}, {"pod-b", kPodB6}, {"pod-c", kPodC6}};
const std::map<std::string, std::string> kNodeIp6 = {{"node1", kNode1v6}, {"node2", kNode2v6}};

// The external client's, pods' and nodes' addresses of one family.
struct ExtView {
  const char* ext;
  const std::map<std::string, std::string>& podIp;
  const std::map<std::string, std::string>& nodeIp;
};
const ExtView kView4{kExt, kPodIp, kNodeIp};
const ExtView kView6{kExt6, kPodIp6, kNodeIp6};

bool isPod(const std::string& name) { return kPodIp.count(name) != 0; }

// pods scheduled on node
bool localTo(const std::string& pod, const std::string& node) {
  return node == "node1" ? (pod == "pod-a" || pod == "pod-b") : pod == "pod-c";
}

// A Service manifest of any type; extra is appended to spec (indented "  key: v\n").
std::string svcYaml(const std::string& name, const std::string& type, const std::string& vip,
                    const std::string& selector, const std::string& ports,
                    const std::string& extra = "") {
  std::string y = "apiVersion: v1\nkind: Service\nmetadata:\n  name: " + name +
                  "\n  namespace: default\nspec:\n  type: " + type + "\n";
  if (!vip.empty()) y += "  clusterIP: " + vip + "\n";
  if (!selector.empty()) y += "  selector: {" + selector + "}\n";
  y += "  ports: " + ports + "\n" + extra;
  return y;
}

bool answered(const Answer& a) { return a.ok() && a.byPod(); }

// Waits until the ext client gets an answer from a pod via ip:port.
Answer extWait(const std::string& proto, const std::string& ip, int port) {
  return askUntil("ext", proto, ip, port, answered, Ms(6000), 500);
}

// An answer under externalTrafficPolicy Cluster, through node `via`: a local
// endpoint sees the real client, a remote one the node's address (SNAT), in
// the family of view.
void expectClusterPolicy(const Answer& a, const std::string& via, int target,
                         const ExtView& view = kView4) {
  ASSERT_TRUE(isPod(a.name)) << a;
  EXPECT_EQ(a.localIp, view.podIp.at(a.name)) << a;
  EXPECT_EQ(a.localPort, target) << a;
  if (localTo(a.name, via)) {
    EXPECT_EQ(a.clientIp, view.ext) << "local endpoint via " << via << " must see the client: "
                                    << a;
  } else {
    EXPECT_EQ(a.clientIp, view.nodeIp.at(via)) << "remote endpoint via " << via
                                                << " must see the node (SNAT): " << a;
    // SNAT keeps the client's own (ephemeral, >= 32768) port when free,
    // else takes one from 61000-65535; the golden-packet tests pin which.
    EXPECT_GE(a.clientPort, 32768) << "SNAT source port via " << via << ": " << a;
  }
}

// The service's entry in `get services -o json` of node (null if absent).
nlohmann::json serviceOn(const std::string& node, const std::string& name) {
  nlohmann::json j = ferryctlJson(node, "services");
  if (!j.is_object() || !j.contains("items")) return nlohmann::json();
  for (auto& it : j["items"])
    if (it.value(nlohmann::json::json_pointer("/metadata/name"), std::string()) == name &&
        it.value(nlohmann::json::json_pointer("/metadata/namespace"), std::string()) == "default")
      return it;
  return nlohmann::json();
}

// spec.ports[i].nodePort as node reports it (0 if none)
int nodePortOf(const std::string& node, const std::string& name, size_t i = 0) {
  nlohmann::json s = serviceOn(node, name);
  if (!s.is_object()) return 0;
  auto ports = s.value(nlohmann::json::json_pointer("/spec/ports"), nlohmann::json::array());
  if (i >= ports.size()) return 0;
  return ports[i].value("nodePort", 0);
}

std::vector<nlohmann::json> errorsFor(const std::string& node, const std::string& file) {
  std::vector<nlohmann::json> out;
  nlohmann::json j = ferryctlJson(node, "errors");
  nlohmann::json arr = j.is_array() ? j : j.value("items", nlohmann::json::array());
  for (const auto& e : arr) {
    std::string f = e.value("file", "");
    if (f.size() >= file.size() && f.compare(f.size() - file.size(), file.size(), file) == 0)
      out.push_back(e);
  }
  return out;
}

// The error for (file, object, field), null if none.
nlohmann::json errorOf(const std::string& node, const std::string& file,
                       const std::string& object, const std::string& field) {
  for (const auto& e : errorsFor(node, file))
    if (e.value("object", "") == object && e.value("field", "") == field) return e;
  return nlohmann::json();
}

// `ferryctl stats` of node: NAME VALUE lines.
std::map<std::string, long> statsOf(const std::string& node) {
  std::map<std::string, long> m;
  ShResult r = ferryctl(node, "stats", false);
  std::istringstream is(r.out);
  std::string line;
  while (std::getline(is, line)) {
    std::istringstream ls(line);
    std::string name, value;
    if (!(ls >> name >> value)) continue;
    try {
      size_t used = 0;
      long v = std::stol(value, &used);
      if (used == value.size()) m[name] = v;
    } catch (...) {
    }
  }
  return m;
}

long sumPrefix(const std::map<std::string, long>& m, const std::string& prefix) {
  long s = 0;
  for (const auto& [k, v] : m)
    if (k.rfind(prefix, 0) == 0) s += v;
  return s;
}

long stat(const std::map<std::string, long>& m, const std::string& k) {
  auto it = m.find(k);
  return it == m.end() ? 0 : it->second;
}

std::string dump(const std::map<std::string, long>& m) {
  std::string s;
  for (const auto& [k, v] : m) s += k + "=" + std::to_string(v) + " ";
  return s;
}

// HTTP GET /healthz from P-ext with bash's /dev/tcp (no curl needed); the raw
// response (stdout only). The request goes out in one write (dd collects it);
// with splitMs > 0 it goes out line by line, splitMs apart, as some clients do.
ShResult httpGetFromExt(const std::string& ip, int port, int splitMs = 0) {
  std::string host = ip.find(':') == std::string::npos ? ip : "[" + ip + "]";
  std::string req = "GET /healthz HTTP/1.1\\r\\nHost: " + host +
                    "\\r\\nUser-Agent: e2e\\r\\nConnection: close\\r\\n\\r\\n";
  std::string send = splitMs > 0
                         ? "for l in 'GET /healthz HTTP/1.1' 'Host: " + host +
                               "' 'User-Agent: e2e' 'Connection: close' ''; do printf '%s\\r\\n' "
                               "\"$l\" >&3 || exit 8; sleep " +
                               std::to_string(splitMs / 1000.0) + "; done"
                         : "printf '" + req + "' | dd bs=4096 iflag=fullblock status=none >&3";
  std::string script = "exec 2>/dev/null 3<>/dev/tcp/" + ip + "/" + std::to_string(port) + " || exit 7; " +
                       send + "; timeout 2 cat <&3";
  return sh("ip netns exec " + prefix() + "-ext timeout 5 bash -c " + q(script), 10,
            /*mergeStderr=*/false);
}

int httpStatus(const std::string& resp) {
  // "HTTP/1.1 200 OK"
  if (resp.rfind("HTTP/1.", 0) != 0) return 0;
  auto sp = resp.find(' ');
  if (sp == std::string::npos) return 0;
  try {
    return std::stoi(resp.substr(sp + 1, 3));
  } catch (...) {
    return 0;
  }
}

nlohmann::json httpBody(const std::string& resp) {
  auto p = resp.find("\r\n\r\n");
  if (p == std::string::npos) return nlohmann::json();
  try {
    return nlohmann::json::parse(resp.substr(p + 4));
  } catch (...) {
    return nlohmann::json();
  }
}

// P-ext route for a destination, removed on scope exit.
struct ExtRoute {
  std::string dst;
  ShResult set(const std::string& via) {
    return sh("ip netns exec " + prefix() + "-ext ip route replace " + dst + " via " + via, 10);
  }
  ~ExtRoute() { sh("ip netns exec " + prefix() + "-ext ip route del " + dst, 10); }
};

// ------------------------------------------------------------------------

// 1. externalTrafficPolicy Cluster through each node, TCP and UDP on one nodePort number.
TEST_P(ClusterFamilyTest, NodePortReachesLocalAndRemoteEndpointsViaEachNode) {
  const int np = 30001;
  const ExtView& view = v4v6(kView4, kView6);
  const auto& kNodeIp = view.nodeIp;
  writeManifest("np01-basic.yaml",
                svcYaml("np01-basic", "NodePort", fam().vip(3, 1), "app: web",
                        "[{name: web, port: 80, targetPort: 8080, protocol: TCP, nodePort: 30001},"
                        " {name: dns, port: 53, targetPort: 5353, protocol: UDP, nodePort: 30001}]"));
  for (const std::string via : {"node1", "node2"}) {
    for (auto [proto, target] : {std::pair{"tcp", 8080}, std::pair{"udp", 5353}}) {
      SCOPED_TRACE(via + " " + proto);
      Answer first = extWait(proto, kNodeIp.at(via), np);
      ASSERT_TRUE(answered(first)) << "nodePort never answered: " << first;
      auto [answers, rc] = askMany("ext", proto, kNodeIp.at(via), np, 30, 1000);
      EXPECT_EQ(rc, 0);
      EXPECT_EQ(answers.size(), 30u);
      std::set<std::string> who;
      for (const auto& a : answers) {
        expectClusterPolicy(a, via, target, view);
        who.insert(a.name);
      }
      bool local = false, remote = false;
      for (const auto& w : who) (localTo(w, via) ? local : remote) = true;
      EXPECT_TRUE(local && remote) << "30 requests must reach pods on both nodes; got "
                                   << who.size() << " distinct pods";
    }
  }
  // A pod (pod-a, on node1) reaching the nodePort on its own node's
  // address (translated by its veth's tc) and on the other node's.
  for (const std::string via : {"node1", "node2"}) {
    SCOPED_TRACE("from pod-a via " + via);
    Answer a = askUntil("a", "tcp", kNodeIp.at(via), np, answered, Ms(6000), 500);
    ASSERT_TRUE(answered(a)) << a;
    EXPECT_EQ(a.localIp, view.podIp.at(a.name)) << a;
    EXPECT_EQ(a.localPort, 8080) << a;
  }
}

// 2. externalTrafficPolicy Local: only the node's own endpoints, client IP kept;
// a node without local endpoints drops.
TEST_P(ClusterFamilyTest, NodePortLocalPolicyKeepsClientAndDropsWithoutLocalEndpoints) {
  const ExtView& view = v4v6(kView4, kView6);
  const auto& kNodeIp = view.nodeIp;
  const char* kExt = view.ext;
  const std::string local = "  externalTrafficPolicy: Local\n";
  writeManifest("np02-local.yaml",
                svcYaml("np02-local", "NodePort", fam().vip(3, 2), "app: web",
                        "[{name: web, port: 80, targetPort: 8080, protocol: TCP, nodePort: 30002},"
                        " {name: dns, port: 53, targetPort: 5353, protocol: UDP, nodePort: 30002}]",
                        local) +
                    "---\n" +
                    svcYaml("np02-onlyc", "NodePort", fam().vip(3, 3), "name: c",
                            "[{name: web, port: 80, targetPort: 8080, protocol: TCP, nodePort: 30003},"
                            " {name: dns, port: 53, targetPort: 5353, protocol: UDP, nodePort: 30003}]",
                            local));
  for (const std::string via : {"node1", "node2"}) {
    for (auto [proto, target] : {std::pair{"tcp", 8080}, std::pair{"udp", 5353}}) {
      SCOPED_TRACE(via + " " + proto);
      ASSERT_TRUE(answered(extWait(proto, kNodeIp.at(via), 30002)));
      auto [answers, rc] = askMany("ext", proto, kNodeIp.at(via), 30002, 20, 1000);
      EXPECT_EQ(rc, 0);
      EXPECT_EQ(answers.size(), 20u);
      std::set<std::string> who;
      for (const auto& a : answers) {
        ASSERT_TRUE(isPod(a.name)) << a;
        EXPECT_TRUE(localTo(a.name, via)) << "Local policy: only " << via << "'s pods: " << a;
        EXPECT_EQ(a.clientIp, kExt) << "Local policy preserves the client IP: " << a;
        EXPECT_EQ(a.localPort, target) << a;
        who.insert(a.name);
      }
      if (via == "node1") {
        EXPECT_EQ(who.size(), 2u) << "both pod a and pod b should answer";
      }
    }
  }
  // only pod c (node2): node2 serves, node1 drops (timeout, not refused)
  for (auto [proto, target] : {std::pair{"tcp", 8080}, std::pair{"udp", 5353}}) {
    SCOPED_TRACE(proto);
    Answer a = extWait(proto, fam().node2, 30003);
    ASSERT_TRUE(answered(a)) << a;
    EXPECT_EQ(a.name, "pod-c") << a;
    EXPECT_EQ(a.clientIp, kExt) << a;
    EXPECT_EQ(a.localPort, target) << a;
  }
  ASSERT_TRUE(waitFor([] { return nodePortOf("node1", "np02-onlyc") == 30003; }))
      << serviceOn("node1", "np02-onlyc").dump();
  for (const char* proto : {"tcp", "udp"}) {
    SCOPED_TRACE(proto);
    // until node1 has programmed it (before: refused by node1's kernel)
    Answer w = askUntil("ext", proto, fam().node1, 30003, [](const Answer& a) { return a.rc == 4; },
                        Ms(4000), 300);
    EXPECT_EQ(w.rc, 4) << "node1 has no local endpoint: expected a drop (timeout): " << w;
    for (int i = 0; i < 2; ++i) {
      Answer a = ask("ext", proto, fam().node1, 30003, 300);
      EXPECT_FALSE(a.byPod()) << a;
      EXPECT_EQ(a.rc, 4) << "expected timeout: " << a;
    }
  }
}

// 3. healthCheckNodePort of a LoadBalancer service with externalTrafficPolicy
// Local, probed on the nodes' addresses of the case's family. In IPv6 the
// service is dual-stack (pod c has an address in each family): each
// family's probe counts pod c once, as kube-proxy's proxier of that family.
TEST_P(ClusterFamilyTest, NodePortHealthCheckNodePortServedPerNode) {
  writeManifest("np03-hc.yaml",
                svcYaml("np03-hc", "LoadBalancer", v6() ? "" : "198.19.3.4", "name: c",
                        "[{name: web, port: 80, targetPort: 8080, protocol: TCP, nodePort: 30005}]",
                        "  externalTrafficPolicy: Local\n  healthCheckNodePort: 30004\n" +
                            std::string(v6() ? "  ipFamilyPolicy: RequireDualStack\n"
                                               "  ipFamilies: [IPv6, IPv4]\n"
                                             : "")));
  for (const char* node : {"node1", "node2"}) {
    nlohmann::json s;
    EXPECT_TRUE(waitFor([&] {
      s = serviceOn(node, "np03-hc");
      return s.is_object() && s["spec"].value("healthCheckNodePort", 0) == 30004;
    })) << node << ": " << s.dump();
  }
  ShResult r2, r1;
  EXPECT_TRUE(waitFor([&] {
    r2 = httpGetFromExt(fam().node2, 30004);
    return httpStatus(r2.out) == 200;
  })) << "node2 (pod c local) must answer 200: rc " << r2.rc << " " << r2.out;
  nlohmann::json b2 = httpBody(r2.out);
  ASSERT_TRUE(b2.is_object()) << r2.out;
  EXPECT_EQ(b2.value(nlohmann::json::json_pointer("/service/namespace"), std::string()), "default")
      << r2.out;
  EXPECT_EQ(b2.value(nlohmann::json::json_pointer("/service/name"), std::string()), "np03-hc")
      << r2.out;
  EXPECT_EQ(b2.value("localEndpoints", -1), 1) << r2.out;

  EXPECT_TRUE(waitFor([&] {
    r1 = httpGetFromExt(fam().node1, 30004);
    return httpStatus(r1.out) == 503;
  })) << "node1 (no local endpoint) must answer 503: rc " << r1.rc << " " << r1.out;
  nlohmann::json b1 = httpBody(r1.out);
  ASSERT_TRUE(b1.is_object()) << r1.out;
  EXPECT_EQ(b1.value(nlohmann::json::json_pointer("/service/name"), std::string()), "np03-hc")
      << r1.out;
  EXPECT_EQ(b1.value("localEndpoints", -1), 0) << r1.out;

  if (v6()) {
    // the dual-stack service's IPv4 probe counts pod c once as well
    ShResult r4 = httpGetFromExt(kNode2, 30004);
    EXPECT_EQ(httpStatus(r4.out), 200) << r4.out;
    EXPECT_EQ(httpBody(r4.out).value("localEndpoints", -1), 1) << r4.out;
    return;  // the IPv6 NodePort itself: the NodePort cases of that family
  }
  // and the nodePort itself: node2 serves it
  Answer a = extWait("tcp", kNode2, 30005);
  EXPECT_TRUE(answered(a)) << a;
  EXPECT_EQ(a.name, "pod-c") << a;
  EXPECT_EQ(a.clientIp, kExt) << a;
}

// 3b. The health check port is open to anyone on the LAN, and probes come from
// many HTTP clients:
//  * a client may send its request line and headers in separate writes: the
//    server must read up to the blank line before it answers, else it closes
//    with unread data, which resets the connection (the client's next write
//    fails with EPIPE and it never reads the answer);
//  * clients that connect and stay silent must not stall the agent (its control
//    socket, manifest reloads) for the server's per-request read timeout each.
// IPv4 only on purpose: this is the HTTP server's reading and scheduling, and
// one AF_INET6 dual-stack listener per port (agent/http_server.cpp) serves
// both families, IPv4 probes as v4-mapped peers, through the same code; each
// family's probe is covered by NodePortHealthCheckNodePortServedPerNode.
TEST_F(ClusterTest, NodePortHealthCheckServerHandlesSplitAndIdleClients) {
  writeManifest("np03b-hc.yaml",
                svcYaml("np03b-hc", "LoadBalancer", "198.19.3.15", "name: c",
                        "[{name: web, port: 80, targetPort: 8080, protocol: TCP, nodePort: 30014}]",
                        "  externalTrafficPolicy: Local\n  healthCheckNodePort: 30013\n"));
  ShResult whole;
  ASSERT_TRUE(waitFor([&] {
    whole = httpGetFromExt(kNode2, 30013);
    return httpStatus(whole.out) == 200;
  })) << "rc " << whole.rc << " " << whole.out;
  // 25 idle connections to node2's health check port, held 2 s
  auto idle = std::async(std::launch::async, [] {
    std::string script = "for i in $(seq 10 34); do eval \"exec $i<>/dev/tcp/" +
                         std::string(kNode2) + "/30013\" || exit 7; done; sleep 2";
    return sh("ip netns exec " + prefix() + "-ext timeout 6 bash -c " + q(script), 10);
  });
  // all 25 connected before the control socket is asked
  EXPECT_TRUE(waitFor([] { return established("node2", 30013, "198.18.0.100") >= 25; },
                      Ms(4000), Ms(50)))
      << exec("node2", "ss -Htn state established").out;
  auto t0 = std::chrono::steady_clock::now();
  ShResult ctl = ferryctl("node2", "get services np03b-hc");
  long ms = std::chrono::duration_cast<Ms>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_EQ(ctl.rc, 0) << ctl.out;
  EXPECT_LT(ms, 1000) << "ferryctl on node2 took " << ms
                      << " ms while 25 idle clients were connected to the health check port";
  ShResult idleRc = idle.get();
  EXPECT_EQ(idleRc.rc, 0) << "idle connections: " << idleRc.out;

  for (const char* node : {kNode2, kNode1}) {
    ShResult r = httpGetFromExt(node, 30013, /*splitMs=*/30);
    EXPECT_EQ(r.rc, 0) << node << ": request sent in 5 writes 30 ms apart: rc " << r.rc
                       << " (141: SIGPIPE, the server reset the connection) output:\n"
                       << r.out;
    EXPECT_EQ(httpStatus(r.out), std::string(node) == kNode2 ? 200 : 503) << node << ": " << r.out;
  }
}

// 4. Requested nodePorts: collision, out of range, release on delete, TCP+UDP sharing.
// nodePort numbers are one space for both families (as kube-apiserver's
// allocator); the family shows in the traffic, checked in the case's family.
TEST_P(ClusterFamilyTest, NodePortCollisionRangeAndRelease) {
  const ExtView& view = v4v6(kView4, kView6);
  const std::string web = "{name: web, port: 80, targetPort: 8080, protocol: TCP, nodePort: ";
  const std::string node1 = fam().node1;
  // the owner selects pods a and b, the second service pod c: who answers tells them apart
  writeManifest("np04-owner.yaml", svcYaml("np04-owner", "NodePort", fam().vip(3, 5), "tier: front",
                                           "[" + web + "30006}]"));
  ASSERT_TRUE(answered(extWait("tcp", node1, 30006)));
  writeManifest("np04-second.yaml", svcYaml("np04-second", "NodePort", fam().vip(3, 6), "name: c",
                                            "[" + web + "30006}]"));
  writeManifest("np04-far.yaml",
                svcYaml("np04-far", "NodePort", fam().vip(3, 7), "name: c", "[" + web + "40000}]"));
  writeManifest("np04-dual.yaml",
                svcYaml("np04-dual", "NodePort", fam().vip(3, 8), "name: c",
                        "[" + web + "30007}, {name: dns, port: 53, targetPort: 5353, protocol: UDP,"
                        " nodePort: 30007}]"));
  for (const char* node : {"node1", "node2"}) {
    SCOPED_TRACE(node);
    nlohmann::json e;
    EXPECT_TRUE(waitFor([&] {
      e = errorOf(node, "/np04-second.yaml", "Service default/np04-second",
                  "spec.ports[0].nodePort");
      return e.is_object();
    })) << ferryctl(node, "get errors -o json").out;
    if (e.is_object()) {
      std::string msg = e.value("message", "");
      EXPECT_NE(msg.find("30006"), std::string::npos) << msg;
      EXPECT_NE(msg.find("default/np04-owner"), std::string::npos)
          << "the collision error must name the other service: " << msg;
    }
    EXPECT_TRUE(waitFor([&] {
      e = errorOf(node, "/np04-far.yaml", "Service default/np04-far", "spec.ports[0].nodePort");
      return e.is_object();
    })) << ferryctl(node, "get errors -o json").out;
    if (e.is_object()) {
      std::string msg = e.value("message", "");
      EXPECT_NE(msg.find("40000"), std::string::npos) << msg;
      EXPECT_NE(msg.find("30000-32767"), std::string::npos) << msg;
    }
    EXPECT_TRUE(errorsFor(node, "/np04-dual.yaml").empty())
        << "one number for a TCP and a UDP port of one service is valid: "
        << ferryctl(node, "get errors -o json").out;
    EXPECT_EQ(nodePortOf(node, "np04-owner"), 30006);
  }
  ShResult plain = ferryctl("node1", "get errors");
  EXPECT_NE(plain.out.find("np04-second.yaml"), std::string::npos) << plain.out;
  EXPECT_NE(plain.out.find("default/np04-owner"), std::string::npos) << plain.out;

  // the owner keeps its port: only pods a and b answer on 30006 (local to
  // node1: they see the client)
  auto [owned, rc] = askMany("ext", "tcp", node1, 30006, 10, 1000);
  EXPECT_EQ(rc, 0);
  EXPECT_EQ(owned.size(), 10u);
  for (const auto& a : owned) {
    EXPECT_TRUE(a.name == "pod-a" || a.name == "pod-b") << "30006 belongs to np04-owner: " << a;
    expectClusterPolicy(a, "node1", 8080, view);
  }
  // TCP and UDP on the shared number both work (pod c, remote: node1's SNAT)
  for (auto [proto, target] : {std::pair{"tcp", 8080}, std::pair{"udp", 5353}}) {
    Answer a = extWait(proto, node1, 30007);
    EXPECT_TRUE(answered(a)) << proto << ": " << a;
    EXPECT_EQ(a.name, "pod-c") << a;
    expectClusterPolicy(a, "node1", target, view);
  }

  // the owner is deleted: the port is free, the re-saved second service gets it
  removeManifest("np04-owner.yaml");
  EXPECT_TRUE(waitFor([] { return !serviceOn("node1", "np04-owner").is_object(); }));
  writeManifest("np04-second.yaml", svcYaml("np04-second", "NodePort", fam().vip(3, 6), "name: c",
                                            "[" + web + "30006}]"));
  for (const char* node : {"node1", "node2"}) {
    EXPECT_TRUE(waitFor([&] { return nodePortOf(node, "np04-second") == 30006; }))
        << node << ": " << serviceOn(node, "np04-second").dump() << "\nerrors: "
        << ferryctl(node, "get errors -o json").out;
    EXPECT_TRUE(waitFor([&] { return errorsFor(node, "/np04-second.yaml").empty(); }))
        << node << ": " << ferryctl(node, "get errors -o json").out;
  }
  Answer now = askUntil("ext", "tcp", node1, 30006,
                        [](const Answer& a) { return a.name == "pod-c"; }, Ms(5000), 500);
  EXPECT_EQ(now.name, "pod-c") << "30006 must now be np04-second's: " << now;
  auto [after, rc2] = askMany("ext", "tcp", node1, 30006, 5, 1000);
  EXPECT_EQ(rc2, 0);
  EXPECT_EQ(after.size(), 5u);
  for (const auto& a : after) {
    EXPECT_EQ(a.name, "pod-c") << a;
    expectClusterPolicy(a, "node1", 8080, view);
  }
}

// 5. A nodePort chosen by the agents: in range, the same on both nodes, served by both.
TEST_P(ClusterFamilyTest, NodePortDynamicAllocationSameOnBothNodes) {
  const ExtView& view = v4v6(kView4, kView6);
  writeManifest("np05-dyn.yaml",
                svcYaml("np05-dyn", "NodePort", fam().vip(3, 9), "app: web",
                        "[{name: web, port: 80, targetPort: 8080, protocol: TCP}]"));
  int p1 = 0, p2 = 0;
  EXPECT_TRUE(waitFor([&] {
    p1 = nodePortOf("node1", "np05-dyn");
    p2 = nodePortOf("node2", "np05-dyn");
    return p1 != 0 && p2 != 0;
  })) << serviceOn("node1", "np05-dyn").dump() << "\n" << serviceOn("node2", "np05-dyn").dump();
  ASSERT_NE(p1, 0);
  EXPECT_EQ(p1, p2) << "both nodes must allocate the same nodePort";
  EXPECT_GE(p1, 30000);
  EXPECT_LE(p1, 32767);
  ShResult plain = ferryctl("node1", "get services np05-dyn");
  EXPECT_NE(plain.out.find("80:" + std::to_string(p1) + "/TCP"), std::string::npos) << plain.out;
  for (const std::string via : {"node1", "node2"}) {
    Answer a = extWait("tcp", view.nodeIp.at(via), p1);
    ASSERT_TRUE(answered(a)) << via << ": " << a;
    expectClusterPolicy(a, via, 8080, view);
    auto [more, rc] = askMany("ext", "tcp", view.nodeIp.at(via), p1, 5, 1000);
    EXPECT_EQ(rc, 0);
    EXPECT_EQ(more.size(), 5u);
    for (const auto& m : more) expectClusterPolicy(m, via, 8080, view);
  }
}

// 6. spec.externalIPs of a ClusterIP service, reached through either node.
TEST_P(ClusterFamilyTest, NodePortExternalIPsViaEitherNode) {
  const std::string eip = v4v6<std::string>("198.18.0.210", "2001:db8::210");
  const ExtView& view = v4v6(kView4, kView6);
  writeManifest("np06-extip.yaml",
                svcYaml("np06-extip", "ClusterIP", fam().vip(3, 10), "app: web",
                        "[{name: web, port: 80, targetPort: 8080, protocol: TCP},"
                        " {name: dns, port: 53, targetPort: 5353, protocol: UDP}]",
                        "  externalIPs: [\"" + eip + "\"]\n"));
  ExtRoute route{eip + v4v6<std::string>("/32", "/128")};
  for (const std::string via : {"node1", "node2"}) {
    SCOPED_TRACE(via);
    ShResult r = route.set(view.nodeIp.at(via));
    ASSERT_EQ(r.rc, 0) << r.out;
    for (auto [proto, port, target] :
         {std::tuple{"tcp", 80, 8080}, std::tuple{"udp", 53, 5353}}) {
      SCOPED_TRACE(proto);
      Answer first = extWait(proto, eip, port);
      ASSERT_TRUE(answered(first)) << first;
      auto [answers, rc] = askMany("ext", proto, eip, port, 10, 1000);
      EXPECT_EQ(rc, 0);
      EXPECT_EQ(answers.size(), 10u);
      for (const auto& a : answers) expectClusterPolicy(a, via, target, view);
    }
  }
}

// 7. The ClusterIP of a NodePort service stays internal.
TEST_P(ClusterFamilyTest, NodePortServiceClusterIPNotReachableFromOutside) {
  const ExtView& view = v4v6(kView4, kView6);
  const std::string vip = fam().vip(3, 11);
  writeManifest("np07-internal.yaml",
                svcYaml("np07-internal", "NodePort", vip, "app: web",
                        "[{name: web, port: 80, targetPort: 8080, protocol: TCP, nodePort: 30008}]"));
  Answer np = extWait("tcp", fam().node1, 30008);
  ASSERT_TRUE(answered(np)) << "the nodePort itself must work: " << np;
  expectClusterPolicy(np, "node1", 8080, view);
  Answer in = askUntil("a", "tcp", vip, 80, answered);
  ASSERT_TRUE(answered(in)) << "and the ClusterIP from a pod: " << in;
  EXPECT_EQ(in.clientIp, in.name == "pod-a" ? fam().node1 : fam().podA) << in;
  ExtRoute route{vip + v4v6<std::string>("/32", "/128")};
  ShResult r = route.set(fam().node1);
  ASSERT_EQ(r.rc, 0) << r.out;
  for (int port : {80, 30008}) {
    Answer a = ask("ext", "tcp", vip, port, 500);
    EXPECT_FALSE(a.byPod()) << "ClusterIP " << vip << ":" << port << " answered from outside: " << a;
    EXPECT_NE(a.rc, 0) << a;
  }
}

// Restarts both agents with extra ferryd args (empty: the defaults).
void restartAgents(const std::string& args) {
  for (const char* node : {"node1", "node2"}) {
    std::string P = prefix(), cs = q(clusterSh()) + " ";
    ShResult r = sh(cs + "stop-agent " + P + " " + node, 30);
    EXPECT_EQ(r.rc, 0) << node << ": " << r.out;
    r = sh(cs + "start-agent " + P + " " + node + " " + args + " >/dev/null", 30);
    EXPECT_EQ(r.rc, 0) << node << " start-agent " << args << ": " << r.out;
  }
}

// XDP programs attached to eth0 of node (ip link's "prog/xdp")
bool xdpAttached(const std::string& node) {
  ShResult r = sh("ip -n " + prefix() + "-" + node + " link show dev eth0", 10);
  return r.out.find("xdp") != std::string::npos;
}

// 8. The same NodePort traffic handled by XDP (default) and by tc (--xdp off),
// in the case's family: the per-hook counters (not per family) move only for
// the hook in use, and only the case's family runs traffic meanwhile.
TEST_P(ClusterFamilyTest, NodePortXdpAndTcPaths) {
  const int np = 30009;
  const ExtView& view = v4v6(kView4, kView6);
  writeManifest("np08-path.yaml",
                svcYaml("np08-path", "NodePort", fam().vip(3, 12), "app: web",
                        "[{name: web, port: 80, targetPort: 8080, protocol: TCP, nodePort: 30009},"
                        " {name: dns, port: 53, targetPort: 5353, protocol: UDP, nodePort: 30009}]"));
  auto traffic = [&](const char* label) {
    for (const std::string via : {"node1", "node2"}) {
      for (auto [proto, target] : {std::pair{"tcp", 8080}, std::pair{"udp", 5353}}) {
        SCOPED_TRACE(std::string(label) + " " + via + " " + proto);
        ASSERT_TRUE(answered(extWait(proto, view.nodeIp.at(via), np)));
        // 30 requests: the chance that uniform balancing over 3 pods never
        // picks the 1 local (or remote) one is (2/3)^30, about 5e-6.
        auto [answers, rc] = askMany("ext", proto, view.nodeIp.at(via), np, 30, 1000);
        EXPECT_EQ(rc, 0);
        EXPECT_EQ(answers.size(), 30u);
        bool local = false, remote = false;
        for (const auto& a : answers) {
          expectClusterPolicy(a, via, target, view);
          if (isPod(a.name)) (localTo(a.name, via) ? local : remote) = true;
        }
        EXPECT_TRUE(local && remote) << "30 requests should reach local and remote pods";
      }
    }
  };

  EXPECT_TRUE(xdpAttached("node1")) << "default agents attach XDP on eth0";
  auto s0 = statsOf("node1");
  traffic("xdp");
  auto s1 = statsOf("node1");
  // 62 new flows through node1 (2 first asks and 60 of askMany, TCP and
  // UDP): XDP takes them, save the few it may leave to tc (ext_xdp/to_tc,
  // e.g. while a neighbour entry is missing)
  EXPECT_GE(stat(s1, "ext_xdp/fwd_new") - stat(s0, "ext_xdp/fwd_new"), 40)
      << "before: " << dump(s0) << "\nafter: " << dump(s1);
  EXPECT_LE(stat(s1, "ext_tc_in/fwd_new") - stat(s0, "ext_tc_in/fwd_new"),
            stat(s1, "ext_xdp/to_tc") - stat(s0, "ext_xdp/to_tc"))
      << "with XDP on, tc only takes the new flows XDP left to it\nbefore: " << dump(s0)
      << "\nafter: " << dump(s1);

  struct Restore {
    bool armed = true;
    ~Restore() {
      if (armed) restartAgents("");
    }
  } restore;
  restartAgents("--xdp off");
  EXPECT_FALSE(xdpAttached("node1")) << "ferryd --xdp off must detach its XDP program: "
                                     << sh("ip -n " + prefix() + "-node1 link show dev eth0").out;
  EXPECT_FALSE(xdpAttached("node2"));
  ASSERT_TRUE(waitFor([] { return nodePortOf("node1", "np08-path") == 30009; }));
  auto t0 = statsOf("node1");
  traffic("tc");
  auto t1 = statsOf("node1");
  EXPECT_GE(stat(t1, "ext_tc_in/fwd_new") - stat(t0, "ext_tc_in/fwd_new"), 60)
      << "before: " << dump(t0) << "\nafter: " << dump(t1);
  EXPECT_EQ(sumPrefix(t1, "ext_xdp/"), sumPrefix(t0, "ext_xdp/"))
      << "XDP is off: no ext_xdp counter may move\nbefore: " << dump(t0) << "\nafter: " << dump(t1);

  restore.armed = false;
  restartAgents("");
  EXPECT_TRUE(xdpAttached("node1")) << "default agent re-attaches XDP";
  EXPECT_TRUE(xdpAttached("node2"));
  auto u0 = statsOf("node1");
  Answer again = extWait("tcp", fam().node1, np);
  EXPECT_TRUE(answered(again)) << again;
  if (answered(again)) expectClusterPolicy(again, "node1", 8080, view);
  EXPECT_GT(stat(statsOf("node1"), "ext_xdp/fwd_new"), stat(u0, "ext_xdp/fwd_new"));
}

std::string readFile(const std::string& path) {
  std::ifstream f(path);
  return std::string((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
}

// 9. node1's agent stopped and restarted, then killed and restarted, during an
// iperf3 stream from P-ext through node1's nodePort to pod c on node2
// (source-NATed to node1's address of the case's family).
TEST_P(ClusterFamilyTest, NodePortSurvivesAgentRestartDuringIperf) {
  const std::string node1 = fam().node1;
  writeManifest("np09-iperf.yaml",
                svcYaml("np09-iperf", "NodePort", fam().vip(3, 13), "name: c",
                        "[{name: iperf, port: 5201, targetPort: 5201, protocol: TCP, nodePort: 30010},"
                        " {name: web, port: 80, targetPort: 8080, protocol: TCP, nodePort: 30011}]"));
  Answer first = extWait("tcp", node1, 30011);
  ASSERT_TRUE(answered(first)) << first;
  ASSERT_EQ(first.name, "pod-c");
  EXPECT_EQ(first.clientIp, node1) << first;

  const std::string cs = q(clusterSh()) + " ";
  const std::string P = prefix();
  // whatever fails below, node1 gets its (default) agent back for the next tests
  struct AgentBack {
    std::string cmd;
    ~AgentBack() { sh(cmd, 30); }
  } back{cs + "start-agent " + P + " node1 >/dev/null 2>&1 || true"};
  auto iperf = std::async(std::launch::async, [&] {
    return exec("ext",
                "iperf3 -J -c " + node1 + " -p 30010 -t 8 -b 2G --connect-timeout 3000 2>/dev/null",
                40);
  });
  // the stream is live at pod c (source-NATed to node1) before the agent goes:
  // iperf3's control and data connections
  auto streamLive = [&] { return established("c", 5201, node1) >= 2; };
  ASSERT_TRUE(waitFor(streamLive, Ms(5000), Ms(100)))
      << "iperf3 never connected through node1's nodePort: "
      << exec("c", "ss -Htn state established").out;
  ShResult r = sh(cs + "stop-agent " + P + " node1", 30);
  EXPECT_EQ(r.rc, 0) << r.out;
  r = sh(cs + "start-agent " + P + " node1 >/dev/null", 30);
  ASSERT_EQ(r.rc, 0) << r.out;
  // the restarted agent serves the nodePort again, and the stream survived
  EXPECT_TRUE(waitFor([] { return nodePortOf("node1", "np09-iperf") == 30010; }))
      << ferryctl("node1", "get services").out;
  EXPECT_TRUE(streamLive()) << "stream lost across the graceful restart: "
                            << exec("c", "ss -Htn state established").out;
  int pid = std::atoi(readFile(runDir() + "/node1.pid").c_str());
  ASSERT_GT(pid, 0);
  r = killHard(pid);
  EXPECT_EQ(r.rc, 0) << r.out;
  r = sh(cs + "start-agent " + P + " node1 >/dev/null", 30);
  ASSERT_EQ(r.rc, 0) << r.out;

  ShResult ip = iperf.get();
  EXPECT_EQ(ip.rc, 0) << "iperf3 through node1's nodePort failed during agent restarts:\n" << ip.out;
  double received = 0;
  std::vector<double> perSecond;  // bytes of each 1 s interval
  try {
    nlohmann::json j = nlohmann::json::parse(ip.out);
    received = j.value(nlohmann::json::json_pointer("/end/sum_received/bytes"), 0.0);
    for (const auto& iv : j.value("intervals", nlohmann::json::array()))
      perSecond.push_back(iv.value(nlohmann::json::json_pointer("/sum/bytes"), 0.0));
  } catch (...) {
  }
  // The stream must not stall across the restarts: every second of the 8
  // carries at least a tenth of the median second (a stall of two seconds
  // leaves one near zero). The rate itself depends on the machine's load (the
  // restarting agent verifies its programs on the same cores; about 1 Gbit/s
  // idle, 0.4-0.6 with four test runs on two cores, IPv6 some 15% below
  // IPv4), so the total is only held to a floor far above a stalled stream's.
  EXPECT_GT(received, 150e6) << "bytes received by pod c: " << received << "\n" << ip.out;
  ASSERT_GE(perSecond.size(), 7u) << ip.out;
  std::vector<double> sorted = perSecond;
  std::sort(sorted.begin(), sorted.end());
  const double median = sorted[sorted.size() / 2];
  for (size_t i = 0; i < perSecond.size(); ++i)
    EXPECT_GE(perSecond[i], median / 10) << "second " << i << " of the stream (median " << median
                                          << " bytes) stalled:\n" << ip.out;
  Answer after = extWait("tcp", node1, 30011);
  EXPECT_EQ(after.name, "pod-c") << after;
  EXPECT_EQ(after.clientIp, node1) << after;
}

// 10. Deleting the Service releases its nodePort.
TEST_P(ClusterFamilyTest, NodePortReleasedOnDelete) {
  const std::vector<std::string> nodes = {fam().node1, fam().node2};
  writeManifest("np10-del.yaml",
                svcYaml("np10-del", "NodePort", fam().vip(3, 14), "app: web",
                        "[{name: web, port: 80, targetPort: 8080, protocol: TCP, nodePort: 30012},"
                        " {name: dns, port: 53, targetPort: 5353, protocol: UDP, nodePort: 30012}]"));
  for (const char* proto : {"tcp", "udp"})
    for (const std::string& ip : nodes)
      ASSERT_TRUE(answered(extWait(proto, ip, 30012))) << proto << " " << ip;
  removeManifest("np10-del.yaml");
  for (const char* proto : {"tcp", "udp"}) {
    for (const std::string& ip : nodes) {
      SCOPED_TRACE(std::string(proto) + " " + ip);
      Answer gone = askUntil("ext", proto, ip, 30012, [](const Answer& a) { return !a.byPod(); },
                             Ms(5000), 300);
      EXPECT_FALSE(gone.byPod()) << "still answered after the Service was deleted: " << gone;
      for (int i = 0; i < 2; ++i) {
        Answer a = ask("ext", proto, ip, 30012, 300);
        EXPECT_FALSE(a.byPod()) << a;
        EXPECT_NE(a.rc, 0) << a;
      }
    }
  }
  EXPECT_EQ(nodePortOf("node1", "np10-del"), 0);
}

}  // namespace
}  // namespace e2e
