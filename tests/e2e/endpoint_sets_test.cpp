// Which endpoints serve new flows, end to end (issue 14), ported from the
// Kubernetes e2e Services tests (test/e2e/network/service.go, conntrack.go):
// fallback to serving-and-terminating endpoints (internalTrafficPolicy
// Cluster and Local, externalTrafficPolicy Local), the health check node
// port with only terminating endpoints, internalTrafficPolicy Local pod to
// pod, and UDP traffic kept when the server pod cycles.
//
// Services are selector-less with one EndpointSlice whose endpoints carry
// explicit conditions (what the EndpointSlice controller writes while a
// pod terminates), so each state is exact. Every case runs in both
// families (ByFamily/EndpointSetsFamilyE2E.<case>/IPv4|IPv6): ClusterIPs
// 198.19.14.x or 2001:db8:ffff::e<xx>, node ports 30060-30069 on the nodes'
// addresses of the family. The client pod "cl" (node1, kCl / kCl6) is
// shared with the conntrack tests and added on first use.
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <sstream>
#include <thread>

#include "cluster_fixture.h"

namespace e2e {
namespace {

// One endpoint of the slice: address, node and conditions.
struct Ep {
  std::string ip, node;
  bool ready = true, serving = true, terminating = false;
};
Ep ready(const std::string& ip, const std::string& node) { return {ip, node, true, true, false}; }
Ep terminating(const std::string& ip, const std::string& node, bool serving = true) {
  return {ip, node, false, serving, true};
}

// A selector-less Service (`spec` lines after the ports) and its slice
// (addressType IPv6 when the ClusterIP is).
std::string service(const std::string& name, const std::string& vip, const std::string& ports,
                    const std::vector<Ep>& eps, int targetPort, const std::string& proto,
                    const std::string& spec = "") {
  auto b = [](bool v) { return v ? "true" : "false"; };
  const char* family = vip.find(':') != std::string::npos ? "IPv6" : "IPv4";
  std::string y = "apiVersion: v1\nkind: Service\nmetadata: {name: " + name +
                  ", namespace: default}\nspec:\n  clusterIP: \"" + vip + "\"\n  ports: " + ports +
                  "\n" + spec + "---\napiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\n" +
                  "metadata:\n  name: " + name + "-1\n  namespace: default\n" +
                  "  labels: {kubernetes.io/service-name: " + name + "}\naddressType: " + family + "\n" +
                  "ports: [{name: p, port: " + std::to_string(targetPort) + ", protocol: " + proto +
                  "}]\nendpoints:";
  if (eps.empty()) return y + " []\n";
  y += "\n";
  for (const Ep& e : eps)
    y += "- {addresses: [\"" + e.ip + "\"], nodeName: " + e.node + ", conditions: {ready: " +
         b(e.ready) + ", serving: " + b(e.serving) + ", terminating: " + b(e.terminating) + "}}\n";
  return y;
}

const std::string kTcp80 = "[{name: p, port: 80, targetPort: 8080, protocol: TCP}]";

class EndpointSetsE2E : public ClusterTest {
 protected:
  void SetUp() override {
    ClusterTest::SetUp();
    std::string err;
    if (!ensureClientPod(&err)) GTEST_FAIL() << err;
  }
  // Until `where` gets an answer from `who` (or the timeout).
  Answer until(const std::string& where, const std::string& proto, const std::string& ip,
               int port, const std::string& who) {
    return askUntil(where, proto, ip, port, [&](const Answer& a) { return a.name == who; },
                    Ms(6000), 500);
  }
  // Until a request times out (dropped; rc 4), not refused (rc 3).
  Answer untilDropped(const std::string& where, const std::string& ip, int port) {
    return askUntil(where, "tcp", ip, port, [](const Answer& a) { return a.rc == 4; }, Ms(6000),
                    700);
  }
  // `n` answers from `where`, all from `who`.
  void expectAll(const std::string& where, const std::string& ip, int port, const std::string& who,
                 int n = 6) {
    auto [answers, rc] = askMany(where, "tcp", ip, port, n);
    EXPECT_EQ(rc, 0);
    ASSERT_EQ(answers.size(), size_t(n));
    for (const Answer& a : answers) EXPECT_EQ(a.name, who) << a;
  }
};

// The cases in both families: addresses of the case's family.
class EndpointSetsFamilyE2E : public EndpointSetsE2E,
                              public ::testing::WithParamInterface<Family> {
 protected:
  bool v6() const { return GetParam() == Family::IPv6; }
  const FamilyAddrs& fam() const { return v6() ? kFamily6 : kFamily4; }
  std::string ext() const { return v6() ? "2001:db8::100" : "198.18.0.100"; }
};
INSTANTIATE_TEST_SUITE_P(ByFamily, EndpointSetsFamilyE2E, kFamilies, familyName);

// "should fallback to terminating endpoints when there are no ready
// endpoints with internalTrafficPolicy=Cluster"
TEST_P(EndpointSetsFamilyE2E, FallbackToTerminatingEndpointsWithInternalTrafficPolicyCluster) {
  const std::string vip = fam().vip(14, 1), podA = fam().podA, podC = fam().podC;
  writeManifest("es-itpc.yaml", service("es-itpc", vip, kTcp80, {ready(podC, "node2")}, 8080, "TCP"));
  ASSERT_EQ(until("cl", "tcp", vip, 80, "pod-c").name, "pod-c");
  // The pod terminates: not ready, still serving. New connections use it.
  writeManifest("es-itpc.yaml",
                service("es-itpc", vip, kTcp80, {terminating(podC, "node2")}, 8080, "TCP"));
  std::this_thread::sleep_for(1s);
  expectAll("cl", vip, 80, "pod-c");
  expectAll("node1", vip, 80, "pod-c");
  // A ready endpoint appears: it takes every new connection.
  writeManifest("es-itpc.yaml", service("es-itpc", vip, kTcp80,
                                        {terminating(podC, "node2"), ready(podA, "node1")}, 8080,
                                        "TCP"));
  ASSERT_EQ(until("cl", "tcp", vip, 80, "pod-a").name, "pod-a");
  expectAll("cl", vip, 80, "pod-a");
  // Not serving any more and nothing ready: no endpoints, refused. In IPv6
  // the refusal (ICMPv6 port unreachable) comes back while connect() still
  // holds its socket, and Linux's TCPv6 keeps it as a soft error until the
  // SYN's retransmission 1 s later, as it does with ip6tables' REJECT: each
  // ask waits 1.5 s, so a refusal is never mistaken for a timeout.
  writeManifest("es-itpc.yaml", service("es-itpc", vip, kTcp80,
                                        {terminating(podC, "node2", false)}, 8080, "TCP"));
  Answer a = askUntil("cl", "tcp", vip, 80, [](const Answer& x) { return x.rc == 3; }, Ms(6000),
                      1500);
  EXPECT_EQ(a.rc, 3) << "refused: " << a;
}

// "should fallback to local terminating endpoints when there are no ready
// endpoints with internalTrafficPolicy=Local"
TEST_P(EndpointSetsFamilyE2E, FallbackToLocalTerminatingEndpointsWithInternalTrafficPolicyLocal) {
  const std::string vip = fam().vip(14, 2), podA = fam().podA, podC = fam().podC;
  const std::string local = "  internalTrafficPolicy: Local\n";
  writeManifest("es-itpl.yaml", service("es-itpl", vip, kTcp80,
                                        {terminating(podA, "node1"), ready(podC, "node2")}, 8080,
                                        "TCP", local));
  // node1's only endpoint is terminating: it still serves node1's clients,
  // never node2's ready one.
  ASSERT_EQ(until("cl", "tcp", vip, 80, "pod-a").name, "pod-a");
  expectAll("cl", vip, 80, "pod-a");
  expectAll("node1", vip, 80, "pod-a");
  expectAll("c", vip, 80, "pod-c");
  // node1's endpoint stops serving: node1's clients are dropped, not refused.
  writeManifest("es-itpl.yaml", service("es-itpl", vip, kTcp80,
                                        {terminating(podA, "node1", false), ready(podC, "node2")},
                                        8080, "TCP", local));
  Answer a = untilDropped("cl", vip, 80);
  EXPECT_EQ(a.rc, 4) << "dropped (timeout), as kube-proxy: " << a;
  expectAll("c", vip, 80, "pod-c");
}

// "should fallback to local terminating endpoints when there are no ready
// endpoints with externalTrafficPolicy=Local"
TEST_P(EndpointSetsFamilyE2E, FallbackToLocalTerminatingEndpointsWithExternalTrafficPolicyLocal) {
  const std::string vip = fam().vip(14, 3), podA = fam().podA, podC = fam().podC;
  const std::string node1 = fam().node1, node2 = fam().node2;
  const std::string ports = "[{name: p, port: 80, targetPort: 8080, protocol: TCP, nodePort: 30060}]";
  const std::string spec = "  type: NodePort\n  externalTrafficPolicy: Local\n";
  writeManifest("es-etpl.yaml", service("es-etpl", vip, ports,
                                        {terminating(podA, "node1"), ready(podC, "node2")}, 8080,
                                        "TCP", spec));
  Answer a = until("ext", "tcp", node1, 30060, "pod-a");
  ASSERT_EQ(a.name, "pod-a") << a;
  EXPECT_EQ(a.clientIp, ext()) << "Local keeps the client address: " << a;
  expectAll("ext", node1, 30060, "pod-a");
  expectAll("ext", node2, 30060, "pod-c");
  // The ClusterIP (internal policy Cluster) prefers the ready endpoint.
  expectAll("cl", vip, 80, "pod-c");
}

// "should fail health check node port if there are only terminating endpoints"
TEST_P(EndpointSetsFamilyE2E, HealthCheckNodePortFailsWithOnlyTerminatingEndpoints) {
  const std::string vip = fam().vip(14, 4), podA = fam().podA, node1 = fam().node1;
  const std::string ports = "[{name: p, port: 80, targetPort: 8080, protocol: TCP, nodePort: 30062}]";
  const std::string spec =
      "  type: LoadBalancer\n  externalTrafficPolicy: Local\n  healthCheckNodePort: 30061\n";
  auto status = [&] {
    ShResult r = exec("ext", "timeout 3 bash -c " +
                                 q("exec 3<>/dev/tcp/" + node1 +
                                   "/30061 && printf 'GET /healthz HTTP/1.1\\r\\nHost: x\\r\\n"
                                   "Connection: close\\r\\n\\r\\n' >&3 && timeout 2 head -1 <&3"),
                       6);
    return r.out;
  };
  writeManifest("es-hc.yaml", service("es-hc", vip, ports, {ready(podA, "node1")}, 8080, "TCP", spec));
  std::string s;
  EXPECT_TRUE(waitFor([&] { return (s = status()).find(" 200 ") != std::string::npos; }, Ms(8000),
                      Ms(200)))
      << s;
  writeManifest("es-hc.yaml",
                service("es-hc", vip, ports, {terminating(podA, "node1")}, 8080, "TCP", spec));
  EXPECT_TRUE(waitFor([&] { return (s = status()).find(" 503 ") != std::string::npos; }, Ms(8000),
                      Ms(200)))
      << "only terminating endpoints: " << s;
  // ... while the terminating endpoint still serves the node port.
  expectAll("ext", node1, 30062, "pod-a");
}

// "should respect internalTrafficPolicy=Local Pod to Pod"
TEST_P(EndpointSetsFamilyE2E, InternalTrafficPolicyLocalPodToPod) {
  const std::string vip = fam().vip(14, 5), podA = fam().podA, podC = fam().podC;
  const std::string local = "  internalTrafficPolicy: Local\n";
  writeManifest("es-itp.yaml", service("es-itp", vip, kTcp80,
                                       {ready(podA, "node1"), ready(podC, "node2")}, 8080, "TCP",
                                       local));
  ASSERT_EQ(until("cl", "tcp", vip, 80, "pod-a").name, "pod-a");
  expectAll("cl", vip, 80, "pod-a", 12);
  expectAll("b", vip, 80, "pod-a", 12);
  expectAll("c", vip, 80, "pod-c", 12);
  // node1 has no endpoint left: its pods' packets are dropped, not refused.
  writeManifest("es-itp.yaml",
                service("es-itp", vip, kTcp80, {ready(podC, "node2")}, 8080, "TCP", local));
  Answer a = untilDropped("cl", vip, 80);
  EXPECT_EQ(a.rc, 4) << a;
  expectAll("c", vip, 80, "pod-c");
  // With Cluster again, node1 reaches node2's endpoint.
  writeManifest("es-itp.yaml", service("es-itp", vip, kTcp80, {ready(podC, "node2")}, 8080, "TCP"));
  EXPECT_EQ(until("cl", "tcp", vip, 80, "pod-c").name, "pod-c");
}

// "should be able to preserve UDP traffic when server pod cycles for a
// ClusterIP service": a client sends UDP from one source port all along;
// the server pod is deleted (its endpoint leaves) and a new one comes up
// on the same node. The client's packets reach the new pod at once, with
// no conntrack entry left pointing at the old one.
TEST_P(EndpointSetsFamilyE2E, PreserveUdpTrafficWhenServerPodCyclesForAClusterIPService) {
  const std::string vip = fam().vip(14, 6), podA = fam().podA, podB = fam().podB;
  const std::string ports = "[{name: p, port: 53, targetPort: 5353, protocol: UDP}]";
  writeManifest("es-udp.yaml", service("es-udp", vip, ports, {ready(podA, "node1")}, 5353, "UDP"));
  ASSERT_EQ(until("cl", "udp", vip, 53, "pod-a").name, "pod-a");
  const std::string py = runDir() + "/es_udp.py";
  std::ofstream(py) << R"PY(
import socket, sys, time
ip, port, sport, n, iv = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5])
s = socket.socket(socket.AF_INET6 if ":" in ip else socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("::" if ":" in ip else "0.0.0.0", sport))
s.connect((ip, port))
s.settimeout(iv)
for i in range(n):
    t0 = time.monotonic()
    try:
        s.send(b"q")
        r = s.recv(512).decode().split()[0]
    except ConnectionRefusedError:
        r = "refused"
    except socket.timeout:
        r = "timeout"
    print(r, flush=True)
    time.sleep(max(0, iv - (time.monotonic() - t0)))
)PY";
  const std::string out = runDir() + "/es-udp.out";
  sh(q(clusterSh()) + " pod-exec " + prefix() + " cl /usr/bin/python3 " + q(py) + " " + vip +
     " 53 41460 32 0.25 >" + q(out) + " 2>&1 &");
  std::this_thread::sleep_for(2s);
  // The server pod is deleted ...
  writeManifest("es-udp.yaml", service("es-udp", vip, ports, {}, 5353, "UDP"));
  std::this_thread::sleep_for(1s);
  // ... and its replacement (pod b, same node) becomes ready.
  writeManifest("es-udp.yaml", service("es-udp", vip, ports, {ready(podB, "node1")}, 5353, "UDP"));
  std::this_thread::sleep_for(6s);
  std::ifstream in(out);
  std::stringstream ss;
  ss << in.rdbuf();
  std::vector<std::string> got;
  for (std::string l; std::getline(ss, l);)
    if (!l.empty()) got.push_back(l);
  ASSERT_EQ(got.size(), 32u) << ss.str();
  EXPECT_EQ(got[0], "pod-a") << ss.str();
  // 8 packets before the deletion, 4 during the gap, a second for the
  // agent: from packet 18 on, every one reaches the new pod.
  for (size_t i = 18; i < got.size(); ++i) EXPECT_EQ(got[i], "pod-b") << "packet " << i << "\n" << ss.str();
  for (const std::string& g : got) EXPECT_NE(g, "timeout") << ss.str();
}

// The node's own connected UDP socket (socket hooks: connect() went
// straight to the backend, and no later packet passes a hook). When the
// backend leaves the service, the agent destroys the socket
// (bpf_sock_destroy from a UDP socket iterator): the application's next
// call fails (send: EDESTADDRREQ, the socket is disconnected; recv:
// ECONNABORTED), it connects again and reaches the live
// endpoint. The old endpoint (pod a) is still up here, so without the
// sweep the socket would keep getting answers from it.
// In both families (the sweep walks IPv4 and IPv6 UDP sockets).
TEST_P(EndpointSetsFamilyE2E, NodeConnectedUdpSocketPinnedToARemovedEndpointIsDestroyed) {
  const bool v6 = GetParam() == Family::IPv6;
  const std::string vip = v6 ? "2001:db8:ffff::e07" : "198.19.14.7";
  const std::string podA = v6 ? kPodA6 : kPodA, podC = v6 ? kPodC6 : kPodC;
  const std::string ports = "[{name: p, port: 53, targetPort: 5353, protocol: UDP}]";
  writeManifest("es-sock.yaml", service("es-sock", vip, ports, {ready(podA, "node1")}, 5353, "UDP"));
  ASSERT_EQ(until("node1", "udp", vip, 53, "pod-a").name, "pod-a");
  const std::string py = runDir() + "/es_sock.py";
  std::ofstream(py) << R"PY(
import errno, socket, sys, time
ip, port, n, iv = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
def conn():
    s = socket.socket(socket.AF_INET6 if ":" in ip else socket.AF_INET, socket.SOCK_DGRAM)
    s.connect((ip, port))
    s.settimeout(iv)
    return s
s = conn()
for i in range(n):
    t0 = time.monotonic()
    try:
        s.send(b"q")
        r = s.recv(512).decode().split()[0]
    except socket.timeout:
        r = "timeout"
    except OSError as e:
        # destroyed: disconnected (EDESTADDRREQ on send) with ECONNABORTED pending
        r = "aborted" if e.errno in (errno.ECONNABORTED, errno.EDESTADDRREQ) else "error-%d" % e.errno
        s.close()
        s = conn()
    print(r, flush=True)
    time.sleep(max(0, iv - (time.monotonic() - t0)))
)PY";
  const std::string out = runDir() + "/es-sock.out";
  sh(q(clusterSh()) + " node-exec " + prefix() + " node1 /usr/bin/python3 " + q(py) + " " + vip +
     " 53 24 0.25 >" + q(out) + " 2>&1 &");
  std::this_thread::sleep_for(2s);
  writeManifest("es-sock.yaml", service("es-sock", vip, ports, {ready(podC, "node2")}, 5353, "UDP"));
  std::this_thread::sleep_for(5s);
  std::ifstream in(out);
  std::stringstream ss;
  ss << in.rdbuf();
  std::vector<std::string> got;
  for (std::string l; std::getline(ss, l);)
    if (!l.empty()) got.push_back(l);
  ASSERT_EQ(got.size(), 24u) << ss.str();
  EXPECT_EQ(got[0], "pod-a") << ss.str();
  EXPECT_NE(std::find(got.begin(), got.end(), "aborted"), got.end()) << ss.str();
  for (size_t i = 14; i < got.size(); ++i) EXPECT_EQ(got[i], "pod-c") << "packet " << i << "\n" << ss.str();
}

}  // namespace
}  // namespace e2e
