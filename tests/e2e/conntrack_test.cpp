// Connection tracking and NAT correctness end to end (issue 10): flows
// follow service membership, two ClusterIPs with one backend and one
// client port, a direct connection after a translated one from the same
// port, ICMP errors about translated flows (PMTU discovery, UDP port
// unreachable) on the ClusterIP and NodePort paths, and XDP with a
// client whose TX checksum offload is on.
//
// Services use EndpointSlices without selectors so membership is exact.
// The client pod "cl" (node1, kCl / kCl6) is added to the shared cluster on
// first use. Clients are small Python socket programs (connected UDP with a
// fixed source port, two SO_REUSEADDR sockets on one port, an upload), of
// the family of the address they are given, written to the run directory.
// The cases of ConntrackFamilyE2E run in both families
// (ByFamily/ConntrackFamilyE2E.<case>/IPv4|IPv6); in IPv6 the ICMP errors
// are ICMPv6 ("packet too big", port unreachable).
#include <unistd.h>

#include <fstream>
#include <sstream>

#include "cluster_fixture.h"

namespace e2e {
namespace {

constexpr const char* kPy = "/usr/bin/python3";

const char* const kClientPy = R"PY(
import socket, sys, time
mode = sys.argv[1]

def family(ip):
    return socket.AF_INET6 if ":" in ip else socket.AF_INET

def greet(s, t=3.0):
    s.settimeout(t)
    buf = b""
    try:
        while not buf.endswith(b"\n"):
            d = s.recv(256)
            if not d:
                return "eof"
            buf += d
    except socket.timeout:
        return "timeout"
    except OSError as e:
        return "error %s" % e.strerror
    return buf.decode().strip()

def tcp_from(port, peer="0.0.0.0"):  # a socket of peer's family bound to port
    s = socket.socket(family(peer), socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("::" if ":" in peer else "0.0.0.0", port))
    return s

if mode == "udpflow":  # ip port srcport count interval_ms
    ip, port, sport, n, iv = sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6]) / 1000
    s = socket.socket(family(ip), socket.SOCK_DGRAM)
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
elif mode == "twoconn":  # ip1 ip2 port srcport [port2]
    ip1, ip2, port, sport = sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
    port2 = int(sys.argv[6]) if len(sys.argv) > 6 else port
    a = tcp_from(sport, ip1)
    a.settimeout(3)
    a.connect((ip1, port))
    b = tcp_from(sport, ip2)
    b.settimeout(3)
    b.connect((ip2, port2))
    print("1", greet(a), flush=True)
    print("2", greet(b), flush=True)
    for s in (a, b):
        s.sendall(b"more\n")
    time.sleep(0.3)
    for s in (a, b):
        s.close()
elif mode == "reuse":  # vip vport direct dport srcport rst|fin
    vip, vport, dip, dport, sport, how = sys.argv[2], int(sys.argv[3]), sys.argv[4], int(sys.argv[5]), int(sys.argv[6]), sys.argv[7]
    s = tcp_from(sport, vip)
    s.settimeout(3)
    s.connect((vip, vport))
    print("svc", greet(s), flush=True)
    if how == "rst":
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        s.close()
    else:
        s.shutdown(socket.SHUT_WR)
        greet(s)  # until the server's FIN
        s.close()
    time.sleep(0.2)
    d = tcp_from(sport, vip)
    d.settimeout(3)
    t0 = time.monotonic()
    try:
        d.connect((dip, dport))
        print("direct", greet(d), "%.2f" % (time.monotonic() - t0), flush=True)
    except socket.timeout:
        print("direct timeout", flush=True)
    except OSError as e:
        print("direct error", e.strerror, flush=True)
elif mode == "upload":  # ip port bytes timeout_s
    ip, port, n, t = sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5])
    s = socket.socket(family(ip), socket.SOCK_STREAM)
    s.settimeout(t)
    t0 = time.monotonic()
    try:
        s.connect((ip, port))
        g = greet(s, t)
        chunk = b"x" * 65536
        sent = 0
        while sent < n:
            sent += s.send(chunk[: min(len(chunk), n - sent)])
        s.shutdown(socket.SHUT_WR)
        greet(s, t)
        print("ok %.2f %s" % (time.monotonic() - t0, g), flush=True)
    except socket.timeout:
        print("timeout after %.2f" % (time.monotonic() - t0), flush=True)
)PY";

std::string clientPy() { return runDir() + "/ct_client.py"; }

// Adds the client pod cl once, and the client program.
bool ensureClient(std::string* err) {
  static bool done = false;
  if (done) return true;
  std::ofstream(clientPy()) << kClientPy;
  done = ensureClientPod(err);
  return done;
}

std::vector<std::string> lines(const std::string& s) {
  std::vector<std::string> out;
  std::istringstream in(s);
  for (std::string l; std::getline(in, l);)
    if (!l.empty()) out.push_back(l);
  return out;
}

// A selector-less Service (ports: YAML flow sequence) and its one
// EndpointSlice listing `ips` (on `node`) with one port, of the ClusterIP's family.
std::string sliceService(const std::string& name, const std::string& vip, const std::string& ports,
                         const std::vector<std::string>& ips, const std::string& node,
                         int targetPort, const std::string& proto, const std::string& extra = "") {
  std::string y = "apiVersion: v1\nkind: Service\nmetadata: {name: " + name +
                  ", namespace: default}\nspec:\n  clusterIP: \"" + vip + "\"\n" + extra +
                  "  ports: " + ports + "\n---\n" +
                  "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata:\n  name: " +
                  name + "-1\n  namespace: default\n  labels: {kubernetes.io/service-name: " + name +
                  "}\naddressType: " + (vip.find(':') != std::string::npos ? "IPv6" : "IPv4") +
                  "\nports: [{name: p, port: " + std::to_string(targetPort) +
                  ", protocol: " + proto + "}]\nendpoints:";
  if (ips.empty()) return y + " []\n";
  y += "\n";
  for (const auto& ip : ips)
    y += "- {addresses: [\"" + ip + "\"], conditions: {ready: true}, nodeName: " + node + "}\n";
  return y;
}

std::string hostIf(const std::string& pod) {
  std::ifstream in(runDir() + "/pods/" + pod);
  for (std::string l; std::getline(in, l);)
    if (l.rfind("host=", 0) == 0) return l.substr(5);
  return "";
}

// Lowers the MTU of a pod's host-side veth for the test's life.
struct MtuGuard {
  std::string node, dev;
  MtuGuard(const std::string& n, const std::string& pod) : node(n), dev(hostIf(pod)) {
    sh("ip -n " + prefix() + "-" + node + " link set " + dev + " mtu 1400");
  }
  ~MtuGuard() { sh("ip -n " + prefix() + "-" + node + " link set " + dev + " mtu 1500"); }
};

class ConntrackE2E : public ClusterTest {
 protected:
  void SetUp() override {
    ClusterTest::SetUp();
    std::string err;
    if (!ensureClient(&err)) GTEST_FAIL() << err;
  }
  ShResult py(const std::string& where, const std::string& args, int timeoutSec = 30) {
    return exec(where, std::string(kPy) + " " + q(clientPy()) + " " + args, timeoutSec);
  }
  Answer waitUp(const std::string& where, const std::string& proto, const std::string& ip,
                int port) {
    return askUntil(where, proto, ip, port, [](const Answer& a) { return a.ok(); }, Ms(6000));
  }
};

// Cases run in both families: ClusterIPs 198.19.10.x or 2001:db8:ffff::a<xx>,
// endpoints, client and nodes' addresses of the family.
class ConntrackFamilyE2E : public ConntrackE2E, public ::testing::WithParamInterface<Family> {
 protected:
  bool v6() const { return GetParam() == Family::IPv6; }
  const FamilyAddrs& fam() const { return v6() ? kFamily6 : kFamily4; }
  std::string cl() const { return v6() ? kCl6 : kCl; }
  std::string ext() const { return v6() ? "2001:db8::100" : "198.18.0.100"; }
  // The start of ferry-echo's "NAME <client>:<port> ..." for the client ip.
  std::string answerFrom(const std::string& name, const std::string& ip) const {
    return name + " " + (v6() ? "[" + ip + "]" : ip) + ":";
  }
  // Runs the udpflow client in pod cl in the background (output to `out`).
  void udpflowInBackground(const std::string& vip, int sport, const std::string& out) {
    std::string cmd = std::string(kPy) + " " + q(clientPy()) + " udpflow " + vip + " 53 " +
                      std::to_string(sport) + " 24 250";
    sh(q(clusterSh()) + " pod-exec " + prefix() + " cl " + cmd + " >" + q(out) + " 2>&1 &");
  }
  // An upload of 4 MB from `where` to ip:port while `pod`'s host-side veth
  // (on `node`) has the smaller MTU: it completes, and `where` learnt the
  // path MTU towards ip (the ICMP "fragmentation needed" / ICMPv6 "packet
  // too big" reached it about its own flow). What it learnt before (route
  // exceptions live 10 minutes) is forgotten first, so a rerun needs the
  // error again.
  void expectUploadLearnsPathMtu(const std::string& where, const std::string& ip, int port,
                                 const std::string& node, const std::string& pod,
                                 const std::string& what) {
    const std::string ipr = v6() ? "ip -6 route" : "ip route";
    exec(where, ipr + " flush cache");
    MtuGuard g(node, pod);
    ShResult r = py(where, "upload " + ip + " " + std::to_string(port) + " 4000000 8", 20);
    EXPECT_EQ(r.out.rfind("ok ", 0), 0u) << what << ": " << r.out;
    ShResult cache = exec(where, ipr + " get " + ip);
    EXPECT_NE(cache.out.find("mtu 1400"), std::string::npos)
        << what << ": " << where << " never learnt the path MTU towards " << ip << ":\n" << cache.out;
  }
};
INSTANTIATE_TEST_SUITE_P(ByFamily, ConntrackFamilyE2E, kFamilies, familyName);

// Case 1: a UDP flow stays on an endpoint that left its service while the
// endpoint is still in another service. Expected: refused at once.
TEST_P(ConntrackFamilyE2E, UdpFlowIsRefusedWhenItsEndpointLeavesTheService) {
  const std::string ports = "[{name: p, port: 53, targetPort: 5353, protocol: UDP}]";
  const std::string vip = fam().vip(10, 1), keep = fam().vip(10, 2);
  writeManifest("ct-uz.yaml", sliceService("uz", vip, ports, {fam().podA}, "node1", 5353, "UDP"));
  writeManifest("ct-uzkeep.yaml",
                sliceService("uzkeep", keep, ports, {fam().podA}, "node1", 5353, "UDP"));
  ASSERT_TRUE(waitUp("cl", "udp", vip, 53).ok());
  ASSERT_TRUE(waitUp("cl", "udp", keep, 53).ok());
  // 24 packets, 250 ms apart; uz's slice empties after 2 s
  std::string out = runDir() + "/ct-udpflow.out";
  udpflowInBackground(vip, 41053, out);
  std::this_thread::sleep_for(2s);
  writeManifest("ct-uz.yaml", sliceService("uz", vip, ports, {}, "node1", 5353, "UDP"));
  std::this_thread::sleep_for(5s);
  std::ifstream in(out);
  std::stringstream ss;
  ss << in.rdbuf();
  auto got = lines(ss.str());
  ASSERT_EQ(got.size(), 24u) << ss.str();
  EXPECT_EQ(got[0], "pod-a") << ss.str();
  // allow a second for the agent to sync; after that, every packet refused
  for (size_t i = 14; i < got.size(); ++i) EXPECT_EQ(got[i], "refused") << "packet " << i << "\n" << ss.str();
  // and a fresh socket agrees
  EXPECT_EQ(ask("cl", "udp", vip, 53, 1000).rc, 3);
}

// Case 1, variant: uz's endpoint changes from a to c; the flow moves to c.
TEST_P(ConntrackFamilyE2E, UdpFlowMovesToTheServicesNewEndpoint) {
  const std::string ports = "[{name: p, port: 53, targetPort: 5353, protocol: UDP}]";
  const std::string vip = fam().vip(10, 3);
  writeManifest("ct-uz2.yaml", sliceService("uz2", vip, ports, {fam().podA}, "node1", 5353, "UDP"));
  writeManifest("ct-uzkeep2.yaml",
                sliceService("uzkeep2", fam().vip(10, 4), ports, {fam().podA}, "node1", 5353, "UDP"));
  ASSERT_TRUE(waitUp("cl", "udp", vip, 53).ok());
  std::string out = runDir() + "/ct-udpmove.out";
  udpflowInBackground(vip, 41054, out);
  std::this_thread::sleep_for(2s);
  writeManifest("ct-uz2.yaml", sliceService("uz2", vip, ports, {fam().podC}, "node2", 5353, "UDP"));
  std::this_thread::sleep_for(5s);
  std::ifstream in(out);
  std::stringstream ss;
  ss << in.rdbuf();
  auto got = lines(ss.str());
  ASSERT_EQ(got.size(), 24u) << ss.str();
  EXPECT_EQ(got[0], "pod-a") << ss.str();
  for (size_t i = 14; i < got.size(); ++i) EXPECT_EQ(got[i], "pod-c") << "packet " << i << "\n" << ss.str();
}

// Case 2: two ClusterIPs, one backend, one client source port: both
// connections work (the second one's reply tuple is remapped).
TEST_P(ConntrackFamilyE2E, TwoClusterIPsOneBackendOneSourcePort) {
  const std::string ports = "[{name: p, port: 80, targetPort: 8080, protocol: TCP}]";
  const std::string va = fam().vip(10, 5), vb = fam().vip(10, 6);
  writeManifest("ct-va.yaml", sliceService("va", va, ports, {fam().podC}, "node2", 8080, "TCP"));
  writeManifest("ct-vb.yaml", sliceService("vb", vb, ports, {fam().podC}, "node2", 8080, "TCP"));
  ASSERT_TRUE(waitUp("cl", "tcp", va, 80).ok());
  ASSERT_TRUE(waitUp("cl", "tcp", vb, 80).ok());
  ShResult r = py("cl", "twoconn " + va + " " + vb + " 80 42080");
  auto got = lines(r.out);
  ASSERT_EQ(got.size(), 2u) << r.out;
  EXPECT_EQ(got[0].rfind("1 " + answerFrom("pod-c", cl()), 0), 0u) << r.out;
  EXPECT_EQ(got[1].rfind("2 " + answerFrom("pod-c", cl()), 0), 0u) << r.out;
}

// Case 3: through a ClusterIP, closed (RST, then FIN), then directly to
// the pod from the same source port: connects at once, from that port
// (the closed flow's reply tuple is taken over, not remapped).
TEST_P(ConntrackFamilyE2E, DirectConnectionFromThePortOfAClosedServiceConnection) {
  const std::string ports = "[{name: p, port: 80, targetPort: 8080, protocol: TCP}]";
  const std::string vip = fam().vip(10, 7);
  writeManifest("ct-vd.yaml", sliceService("vd", vip, ports, {fam().podC}, "node2", 8080, "TCP"));
  ASSERT_TRUE(waitUp("cl", "tcp", vip, 80).ok());
  int port = 43080;
  for (const char* how : {"rst", "fin"}) {
    ShResult r = py("cl", "reuse " + vip + " 80 " + fam().podC + " 8080 " + std::to_string(port) +
                              " " + how);
    auto got = lines(r.out);
    ASSERT_EQ(got.size(), 2u) << how << ": " << r.out;
    EXPECT_EQ(got[0].rfind("svc pod-c", 0), 0u) << how << ": " << r.out;
    EXPECT_EQ(got[1].rfind("direct pod-c " + hostPort(cl(), port) + " ", 0), 0u)
        << how << ": the direct connection must connect at once, from its own port: " << r.out;
    ++port;
  }
}

// The same while the service connection is still open: the direct
// connection's reply tuple is the open one's, so it gets a null binding
// (another source port, as nf_nat gives it) and both connections work.
TEST_P(ConntrackFamilyE2E, DirectConnectionBesideAnOpenServiceConnectionFromOnePort) {
  const std::string ports = "[{name: p, port: 80, targetPort: 8080, protocol: TCP}]";
  const std::string vip = fam().vip(10, 20);
  writeManifest("ct-vn.yaml", sliceService("vn", vip, ports, {fam().podC}, "node2", 8080, "TCP"));
  ASSERT_TRUE(waitUp("cl", "tcp", vip, 80).ok());
  ShResult r = py("cl", "twoconn " + vip + " " + fam().podC + " 80 44080 8080");
  auto got = lines(r.out);
  ASSERT_EQ(got.size(), 2u) << r.out;
  EXPECT_EQ(got[0].rfind("1 pod-c " + hostPort(cl(), 44080) + " ", 0), 0u) << r.out;
  const std::string host = hostPort(cl(), 0);
  EXPECT_EQ(got[1].rfind("2 pod-c " + host.substr(0, host.size() - 1), 0), 0u)
      << "the direct connection must connect: " << r.out;
  EXPECT_EQ(got[1].find(hostPort(cl(), 44080)), std::string::npos)
      << "its source port must be remapped: " << r.out;
}

// Case 4: PMTU discovery through a ClusterIP: the endpoint's host-side
// veth has a smaller MTU; the client's "fragmentation needed" must name
// its own flow, or the upload stalls.
TEST_P(ConntrackFamilyE2E, PathMtuDiscoveryThroughClusterIPSameNodeAndCrossNode) {
  const std::string ports = "[{name: p, port: 80, targetPort: 8080, protocol: TCP}]";
  const std::string big = fam().vip(10, 8), big2 = fam().vip(10, 9);
  writeManifest("ct-big.yaml", sliceService("big", big, ports, {fam().podA}, "node1", 8080, "TCP"));
  writeManifest("ct-big2.yaml", sliceService("big2", big2, ports, {fam().podC}, "node2", 8080, "TCP"));
  ASSERT_TRUE(waitUp("cl", "tcp", big, 80).ok());
  ASSERT_TRUE(waitUp("cl", "tcp", big2, 80).ok());
  expectUploadLearnsPathMtu("cl", big, 80, "node1", "a", "same node");
  expectUploadLearnsPathMtu("cl", big2, 80, "node2", "c", "cross node");
}

// Case 4, UDP form: a targetPort without a listener gives ECONNREFUSED
// through the ClusterIP as it does directly (not a timeout).
TEST_P(ConntrackFamilyE2E, UdpToTargetPortWithoutListenerIsRefused) {
  const std::string ports = "[{name: p, port: 53, targetPort: 5399, protocol: UDP}]";
  const std::string vip = fam().vip(10, 10), vip2 = fam().vip(10, 11);
  writeManifest("ct-nolisten.yaml",
                sliceService("nolisten", vip, ports, {fam().podA}, "node1", 5399, "UDP"));
  writeManifest("ct-nolisten2.yaml",
                sliceService("nolisten2", vip2, ports, {fam().podC}, "node2", 5399, "UDP"));
  EXPECT_EQ(ask("cl", "udp", fam().podA, 5399, 2000).rc, 3) << "directly";
  EXPECT_EQ(askUntil("cl", "udp", vip, 53, [](const Answer& a) { return a.rc == 3; },
                     Ms(6000), 1500).rc,
            3)
      << "same node, through the ClusterIP";
  EXPECT_EQ(askUntil("cl", "udp", vip2, 53, [](const Answer& a) { return a.rc == 3; },
                     Ms(6000), 1500).rc,
            3)
      << "cross node, through the ClusterIP";
}

std::string nodePortService(const std::string& name, const std::string& vip, int nodePort,
                            const std::string& ip, const std::string& node) {
  return sliceService(name, vip,
                      "[{name: p, port: 80, targetPort: 8080, protocol: TCP, nodePort: " +
                          std::to_string(nodePort) + "}]",
                      {ip}, node, 8080, "TCP", "  type: NodePort\n");
}

// Case 4 on the NodePort path: local endpoint (DNAT only) and remote
// endpoint (SNAT), the endpoint's veth with a smaller MTU.
TEST_P(ConntrackFamilyE2E, PathMtuDiscoveryThroughNodePortLocalAndRemote) {
  const std::string node1 = fam().node1;
  writeManifest("ct-npl.yaml", nodePortService("npl", fam().vip(10, 12), 30090, fam().podA, "node1"));
  writeManifest("ct-npr.yaml", nodePortService("npr", fam().vip(10, 13), 30091, fam().podC, "node2"));
  Answer local = waitUp("ext", "tcp", node1, 30090);
  ASSERT_EQ(local.name, "pod-a") << local;
  EXPECT_EQ(local.clientIp, ext()) << "a local endpoint sees the client: " << local;
  Answer remote = waitUp("ext", "tcp", node1, 30091);
  ASSERT_EQ(remote.name, "pod-c") << remote;
  EXPECT_EQ(remote.clientIp, node1) << "a remote endpoint sees node1 (SNAT): " << remote;
  expectUploadLearnsPathMtu("ext", node1, 30090, "node1", "a", "local endpoint");
  expectUploadLearnsPathMtu("ext", node1, 30091, "node2", "c", "remote endpoint (SNAT)");
}

// XDP and partial checksums: the external client's link with TX checksum
// offload on (as a container's veth on a kind node) sends CHECKSUM_PARTIAL
// frames; NodePort to another node's endpoint (XDP's SNAT + XDP_TX path)
// must still deliver good checksums.
TEST_P(ConntrackFamilyE2E, NodePortToRemoteEndpointWithClientTxOffloadOn) {
  const std::string node1 = fam().node1;
  writeManifest("ct-npo.yaml", nodePortService("npo", fam().vip(10, 14), 30092, fam().podC, "node2"));
  struct Offload {
    Offload() { sh("ip netns exec " + prefix() + "-ext ethtool -K eth0 tx on"); }
    ~Offload() { sh("ip netns exec " + prefix() + "-ext ethtool -K eth0 tx off"); }
  } offload;
  ShResult k = sh("ip netns exec " + prefix() + "-ext ethtool -k eth0 | grep -q 'tx-checksum-ip-generic: on'");
  ASSERT_EQ(k.rc, 0) << "could not turn TX offload on in the client netns";
  Answer a = waitUp("ext", "tcp", node1, 30092);
  ASSERT_TRUE(a.ok()) << a;
  EXPECT_EQ(a.name, "pod-c") << a;
  EXPECT_EQ(a.clientIp, node1) << "SNAT to node1: " << a;
  auto [more, rc] = askMany("ext", "tcp", node1, 30092, 10);
  EXPECT_EQ(rc, 0);
  EXPECT_EQ(more.size(), 10u);
  for (const Answer& m : more) EXPECT_EQ(m.name, "pod-c") << m;
  ShResult r = py("ext", "upload " + node1 + " 30092 1000000 8", 20);
  EXPECT_EQ(r.out.rfind("ok ", 0), 0u) << r.out;
}

// Unsupported Service fields are not silent: `ferryctl get errors` lists
// them under WARNINGS with file, object and field, and the service still
// answers.
TEST_F(ConntrackE2E, UnsupportedFieldsAreWarningsAndTheServiceIsProgrammed) {
  writeManifest("ct-warn.yaml",
                sliceService("warned", "198.19.10.15",
                             "[{name: p, port: 80, targetPort: 8080, protocol: TCP}]", {kPodA},
                             "node1", 8080, "TCP",
                             "  trafficDistribution: PreferFar\n"));
  Answer a = waitUp("cl", "tcp", "198.19.10.15", 80);
  EXPECT_TRUE(a.ok()) << a;
  EXPECT_EQ(a.name, "pod-a") << a;
  ShResult r;
  bool seen = waitFor([&] {
    r = ferryctl("node1", "get errors");
    return r.out.find("WARNINGS") != std::string::npos;
  });
  ASSERT_TRUE(seen) << r.out;
  std::string warnings = r.out.substr(r.out.find("WARNINGS"));
  for (const char* want : {"ct-warn.yaml", "Service default/warned", "spec.trafficDistribution"})
    EXPECT_NE(warnings.find(want), std::string::npos) << want << " in:\n" << r.out;
  ShResult log = sh("grep -c 'warning: .*ct-warn.yaml: Service default/warned: spec.trafficDistribution' " +
                    q(runDir() + "/node1.log"));
  EXPECT_EQ(log.rc, 0) << "the agent's log names it too";
}

}  // namespace
}  // namespace e2e
