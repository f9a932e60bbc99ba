// Cluster DNS end to end (issue 5): `dig` and real clients in pods, through
// the kube-dns ClusterIP whose endpoints are the agents' DNS listeners on
// the node addresses (host network), via ferry's own dataplane. kube-dns is
// dual-stack (198.19.0.10 and 2001:db8:ffff::a, an EndpointSlice per
// family); every case runs in both families (DnsTest/<case>/IPv4, /IPv6):
// the pods' resolver and dig ask the family's ClusterIP over that family,
// for A or AAAA records of services, headless endpoints and pods, and PTR
// in in-addr.arpa or ip6.arpa.
// The "outside world" netns P-out (cluster.sh outside-up) runs dnsmasq as
// the upstream resolver for zone example.test and an HTTP server for
// httpbin.example.test; pods get the kubelet's resolv.conf (pod-resolv).
#include <algorithm>
#include <fstream>
#include <sstream>

#include "cluster_fixture.h"

namespace e2e {
namespace {

constexpr const char* kDnsVip = "198.19.0.10";
constexpr const char* kDnsVip6 = "2001:db8:ffff::a";
constexpr const char* kOutDns = kOutsideDns;
constexpr const char* kOutHttp = kOutsideHttp;
constexpr const char* kKubeDnsFile = "zz-dns-kube-dns.yaml";
constexpr const char* kHttpBody = kOutsideHttpBody;

const char* kKubeDns = R"(apiVersion: v1
kind: Service
metadata: {name: kube-dns, namespace: kube-system}
spec:
  clusterIP: 198.19.0.10
  clusterIPs: [198.19.0.10, "2001:db8:ffff::a"]
  ipFamilyPolicy: RequireDualStack
  ipFamilies: [IPv4, IPv6]
  ports:
  - {name: dns, port: 53, protocol: UDP, targetPort: 53}
  - {name: dns-tcp, port: 53, protocol: TCP, targetPort: 53}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: kube-dns-v4, namespace: kube-system, labels: {kubernetes.io/service-name: kube-dns}}
addressType: IPv4
ports: [{name: dns, port: 53, protocol: UDP}, {name: dns-tcp, port: 53, protocol: TCP}]
endpoints:
- {addresses: [198.18.0.11], nodeName: node1}
- {addresses: [198.18.0.12], nodeName: node2}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: kube-dns-v6, namespace: kube-system, labels: {kubernetes.io/service-name: kube-dns}}
addressType: IPv6
ports: [{name: dns, port: 53, protocol: UDP}, {name: dns-tcp, port: 53, protocol: TCP}]
endpoints:
- {addresses: ["2001:db8::11"], nodeName: node1}
- {addresses: ["2001:db8::12"], nodeName: node2}
)";

std::string trimmed(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

std::vector<std::string> linesOf(const std::string& s) {
  std::vector<std::string> out;
  std::istringstream in(s);
  for (std::string l; std::getline(in, l);)
    if (!l.empty()) out.push_back(l);
  std::sort(out.begin(), out.end());
  return out;
}

// The kube-dns ClusterIP dig asks (each case's family: DnsTest::SetUp).
std::string g_dnsVip = kDnsVip;

// dig from a pod to kube-dns, one try; args e.g. "+short A web.default.svc.cluster.local".
ShResult dig(const std::string& pod, const std::string& args, int timeSec = 2,
             const std::string& server = g_dnsVip) {
  return exec(pod, "dig +time=" + std::to_string(timeSec) + " +tries=1 @" + server + " " + args,
              timeSec + 10);
}

std::vector<std::string> digShort(const std::string& pod, const std::string& args,
                                  const std::string& server = g_dnsVip) {
  return linesOf(dig(pod, "+short " + args, 2, server).out);
}

// Retries until the short answer equals want (answers follow manifest edits within ~100 ms).
std::vector<std::string> digUntil(const std::string& pod, const std::string& args,
                                  std::vector<std::string> want) {
  std::sort(want.begin(), want.end());
  std::vector<std::string> got;
  waitFor([&] { return (got = digShort(pod, args)) == want; }, Ms(5000), Ms(100));
  return got;
}

std::vector<std::string> sorted(std::vector<std::string> v) {
  std::sort(v.begin(), v.end());
  return v;
}

std::string status(const std::string& digOut) {
  auto p = digOut.find("status: ");
  if (p == std::string::npos) return "";
  auto e = digOut.find(',', p);
  return digOut.substr(p + 8, e - p - 8);
}

bool agentServesDns(const std::string& node, const std::string& ip) {
  return sh("ip netns exec " + prefix() + "-" + node + " ss -Hlun 'src = " + ip +
                " and sport = :53' | grep -q .", 10).rc == 0;
}

class DnsTest : public ClusterFamilyTest {
 protected:
  static inline std::string setupError;

  static void SetUpTestSuite() {
    ClusterTest::SetUpTestSuite();
    std::string err;
    if (!Cluster::ensureUp(&err)) return;
    auto step = [](const std::string& cmd, int timeout = 30) {
      if (!setupError.empty()) return;
      ShResult r = sh(cmd, timeout);
      if (r.rc != 0) setupError = "rc " + std::to_string(r.rc) + ": " + cmd + "\n" + r.out;
    };
    std::string cs = q(clusterSh()) + " ";
    const std::string P = prefix();
    // the outside world: dnsmasq for example.test, an HTTP server for httpbin.example.test
    // (up already when the e2e_cluster_up fixture made the cluster)
    if (std::string e; !Cluster::ensureOutside(&e)) setupError = e;
    // kube-dns: the agents' listeners on the node addresses
    {
      std::ofstream o(manifestsDir() + "/" + kKubeDnsFile);
      o << kKubeDns;
    }
    // (both families: cluster.sh start-agent's default; started here when
    // an earlier case left an agent with other flags)
    for (const char* node : {"node1", "node2"}) {
      bool one = node == std::string("node1");
      std::string ip = one ? kNode1 : kNode2, ip6 = one ? kNode1v6 : kNode2v6;
      if (agentServesDns(node, ip) && agentServesDns(node, "[" + ip6 + "]")) continue;
      step(cs + "stop-agent " + P + " " + node);
      step(cs + "start-agent " + P + " " + node + " --dns-listen " + ip + ":53 --dns-listen '[" +
           ip6 + "]:53' --dns-upstream " + kOutDns + " >/dev/null");
    }
    if (!setupError.empty()) return;
    for (const char* vip : {kDnsVip, kDnsVip6}) {
      std::string qtype = std::string(vip) == kDnsVip ? "A" : "AAAA";
      bool ready = waitFor([&] {
        return digShort("a", qtype + " kube-dns.kube-system.svc.cluster.local", vip) ==
               std::vector<std::string>{vip};
      }, Ms(8000), Ms(200));
      if (!ready) setupError += "kube-dns never answered through " + std::string(vip) + "\n";
    }
  }

  static void TearDownTestSuite() {
    // other suites see the cluster as before (the agents keep serving DNS; harmless)
    std::remove((manifestsDir() + "/" + kKubeDnsFile).c_str());
  }

  void SetUp() override {
    ClusterFamilyTest::SetUp();
    if (HasFatalFailure()) return;
    if (!setupError.empty()) GTEST_FAIL() << "DNS set-up failed: " << setupError;
    // the pods' resolver (the kubelet's resolv.conf) asks the family's address
    g_dnsVip = v4v6(kDnsVip, kDnsVip6);
    for (const char* pod : {"a", "b", "c"})
      ASSERT_EQ(sh(q(clusterSh()) + " pod-resolv " + prefix() + " " + pod + " " + g_dnsVip, 10).rc,
                0);
  }
  // A or AAAA: the address record of the case's family, and of the other.
  std::string addrType() const { return v4v6<std::string>("A", "AAAA"); }
  std::string otherType() const { return v4v6<std::string>("AAAA", "A"); }
  // The outside world's HTTP server (www / httpbin.example.test) in the family.
  std::string outHttp() const { return v4v6<std::string>(kOutHttp, kOutsideHttp6); }
  // A Service manifest of the case's family (clusterIP "" allocates one).
  std::string svcYaml(const std::string& name, const std::string& vip, const std::string& selector,
                      const std::string& ports) const {
    std::string y = serviceYaml(name, vip.empty() || vip == "None" ? vip : "\"" + vip + "\"",
                                selector, ports);
    return v6() ? y + "  ipFamilies: [IPv6]\n" : y;
  }
};

INSTANTIATE_TEST_SUITE_P(ByFamily, DnsTest, kFamilies, familyName);

// The dashed name of an address (pod and headless endpoint records):
// 198-18-130-2, or 2001-db8-1-2--2.
std::string dashed(std::string ip) {
  std::replace(ip.begin(), ip.end(), '.', '-');
  std::replace(ip.begin(), ip.end(), ':', '-');
  return ip;
}

// getent hosts' line: the address padded to 15 columns, a space, the name.
std::string getentLine(std::string ip, const std::string& name) {
  if (ip.size() < 15) ip.resize(15, ' ');
  return ip + " " + name;
}

TEST_P(DnsTest, EveryRecordKindThroughKubeDns) {
  const std::string vip = fam().vip(5, 1);
  const std::string ep1 = fam().podA, ep2 = fam().podC, notReady = fam().podB;
  writeManifest("dns-web.yaml",
                svcYaml("dnsweb", vip, "app: web",
                        "[{name: http, port: 80, targetPort: 8080, protocol: TCP}]"));
  writeManifest("dns-db.yaml",
                svcYaml("dnsdb", "None", "", "[{name: pg, port: 5432, protocol: TCP}]") +
                    "---\napiVersion: v1\nkind: Endpoints\n"
                    "metadata: {name: dnsdb, namespace: default}\n"
                    "subsets:\n"
                    "- addresses: [{ip: \"" + ep1 + "\", hostname: db-0}, {ip: \"" + ep2 + "\"}]\n"
                    "  notReadyAddresses: [{ip: \"" + notReady + "\"}]\n"
                    "  ports: [{name: pg, port: 5432, protocol: TCP}]\n");
  const std::string A = addrType() + " ";
  // A / AAAA, by FQDN and through the pod's search path
  EXPECT_EQ(digUntil("a", A + "dnsweb.default.svc.cluster.local", {vip}),
            std::vector<std::string>{vip});
  EXPECT_EQ(linesOf(exec("a", "dig +time=2 +tries=1 +search +short " + A + "dnsweb").out),
            std::vector<std::string>{vip});
  // the C library's resolver, over the family's transport (resolv.conf)
  EXPECT_EQ(trimmed(exec("b", "getent hosts dnsweb.default").out),
            getentLine(vip, "dnsweb.default.svc.cluster.local"));
  // SRV of a named port, PTR of the ClusterIP (in-addr.arpa / ip6.arpa)
  EXPECT_EQ(digShort("c", "SRV _http._tcp.dnsweb.default.svc.cluster.local"),
            std::vector<std::string>{"0 100 80 dnsweb.default.svc.cluster.local."});
  EXPECT_EQ(digShort("a", "-x " + vip), std::vector<std::string>{"dnsweb.default.svc.cluster.local."});
  // headless: ready endpoints only, hostname and dashed-IP names, PTR of an endpoint
  EXPECT_EQ(digUntil("a", A + "dnsdb.default.svc.cluster.local", {ep1, ep2}), sorted({ep1, ep2}));
  EXPECT_EQ(digShort("a", A + "db-0.dnsdb.default.svc.cluster.local"),
            std::vector<std::string>{ep1});
  EXPECT_EQ(digShort("a", A + dashed(ep2) + ".dnsdb.default.svc.cluster.local"),
            std::vector<std::string>{ep2});
  EXPECT_EQ(digShort("a", "SRV _pg._tcp.dnsdb.default.svc.cluster.local"),
            sorted({"0 50 5432 " + dashed(ep2) + ".dnsdb.default.svc.cluster.local.",
                    "0 50 5432 db-0.dnsdb.default.svc.cluster.local."}));
  EXPECT_EQ(digShort("a", "-x " + ep1), std::vector<std::string>{"db-0.dnsdb.default.svc.cluster.local."});
  // pods by dashed address
  EXPECT_EQ(digShort("c", A + dashed(ep2) + ".default.pod.cluster.local"),
            std::vector<std::string>{ep2});
  // NXDOMAIN with the SOA; NODATA for a name without that type
  ShResult nx = dig("a", A + "nope.default.svc.cluster.local");
  EXPECT_EQ(status(nx.out), "NXDOMAIN") << nx.out;
  EXPECT_NE(nx.out.find("IN\tSOA\tns.dns.cluster.local. hostmaster.cluster.local."),
            std::string::npos) << nx.out;
  ShResult nodata = dig("a", otherType() + " dnsweb.default.svc.cluster.local");
  EXPECT_EQ(status(nodata.out), "NOERROR") << nodata.out;
  EXPECT_NE(nodata.out.find("ANSWER: 0,"), std::string::npos) << nodata.out;
  // EDNS0 advertised back, and the server that answered is kube-dns in the family; TCP
  ShResult edns = dig("a", A + "dnsweb.default.svc.cluster.local");
  EXPECT_NE(edns.out.find("udp: 1232"), std::string::npos) << edns.out;
  EXPECT_NE(edns.out.find("SERVER: " + g_dnsVip + "#53(" + g_dnsVip + ")"), std::string::npos)
      << edns.out;
  EXPECT_EQ(digShort("a", "+tcp " + A + "dnsweb.default.svc.cluster.local"),
            std::vector<std::string>{vip});
  // each node's agent answers at its own address of the family, UDP and TCP
  for (const std::string node : {fam().node1, fam().node2})
    for (const char* tcp : {"", "+tcp "})
      EXPECT_EQ(digShort("a", tcp + A + "dnsweb.default.svc.cluster.local", node),
                std::vector<std::string>{vip}) << "@" << node << " " << tcp;
}

TEST_P(DnsTest, TruncatedOverUdpCompleteOverTcp) {
  std::string addrs;
  for (int i = 1; i <= 80; ++i)
    addrs += std::string(i > 1 ? ", " : "") + "{ip: \"" +
             v4v6<std::string>("198.18.140.", "2001:db8:1:40::") + std::to_string(i) + "\"}";
  const std::string A = addrType() + " ";
  writeManifest("dns-big.yaml",
                svcYaml("dnsbig", "None", "", "[{name: http, port: 80, protocol: TCP}]") +
                    "---\napiVersion: v1\nkind: Endpoints\n"
                    "metadata: {name: dnsbig, namespace: default}\n"
                    "subsets:\n- addresses: [" + addrs + "]\n"
                    "  ports: [{name: http, port: 80, protocol: TCP}]\n");
  std::vector<std::string> all;
  waitFor([&] { return (all = digShort("a", "+tcp " + A + "dnsbig.default.svc.cluster.local")).size() == 80; },
          Ms(5000), Ms(100));
  EXPECT_EQ(all.size(), 80u);
  ShResult udp = dig("a", "+noedns +ignore " + A + "dnsbig.default.svc.cluster.local");
  EXPECT_NE(udp.out.find("flags: qr aa tc"), std::string::npos) << udp.out;
  EXPECT_NE(udp.out.find("MSG SIZE  rcvd:"), std::string::npos);
  auto p = udp.out.find("MSG SIZE  rcvd: ");
  if (p != std::string::npos) EXPECT_LE(std::stoi(udp.out.substr(p + 16)), 512) << udp.out;
  // dig's default (EDNS 1232, falls back to TCP on TC): the full answer
  EXPECT_EQ(digShort("a", A + "dnsbig.default.svc.cluster.local").size(), 80u);
}

// The Kubernetes docs' scenario: ExternalName httpbin -> httpbin.example.test,
// fetched by short name from a pod; and a ClusterIP service by short name
// (over the family's transport: IPv6 when the names have only AAAA).
TEST_P(DnsTest, ShortNamesFromAPodExternalNameAndClusterIP) {
  writeManifest("dns-httpbin.yaml", "apiVersion: v1\nkind: Service\n"
                                    "metadata: {name: httpbin, namespace: default}\n"
                                    "spec: {type: ExternalName, externalName: httpbin.example.test}\n");
  writeManifest("dns-echo.yaml",
                svcYaml("echo", "", "app: web",
                        "[{name: http, port: 80, targetPort: 8080, protocol: TCP}]"));
  std::vector<std::string> want = sorted({outHttp(), "httpbin.example.test."});
  EXPECT_EQ(digUntil("a", addrType() + " httpbin.default.svc.cluster.local", want), want);
  EXPECT_EQ(digShort("a", "CNAME httpbin.default.svc.cluster.local"),
            std::vector<std::string>{"httpbin.example.test."});
  ShResult curl = exec("a", std::string("curl -sS ") + v4v6("-4", "-6") +
                                " --max-time 5 http://httpbin/get", 15);
  EXPECT_EQ(curl.rc, 0) << curl.out;
  EXPECT_EQ(trimmed(curl.out), kHttpBody);
  // ClusterIP service "echo" by short name: connect, read ferry-echo's
  // greeting and the address the name led to
  std::string py = "import socket; s = socket.create_connection(('echo', 80), timeout=3); "
                   "print(s.recv(200).decode().split()[0], s.getpeername()[0])";
  ShResult got;
  waitFor([&] {
    got = exec("c", "/usr/bin/python3 -c " + q(py), 15);
    return got.rc == 0;
  }, Ms(5000), Ms(200));
  EXPECT_EQ(got.rc, 0) << got.out;
  EXPECT_EQ(trimmed(got.out).rfind("pod-", 0), 0u) << got.out;
  std::string echoIp = clusterIPOf("node1", "echo");
  EXPECT_EQ(echoIp.find(':') != std::string::npos, v6()) << echoIp;
  EXPECT_EQ(trimmed(got.out).substr(trimmed(got.out).find(' ') + 1), echoIp) << got.out;
}

TEST_P(DnsTest, OutsideNamesAreForwardedAndFailuresAreServfail) {
  const std::string A = addrType() + " ";
  EXPECT_EQ(digShort("a", A + "www.example.test"), std::vector<std::string>{outHttp()});
  EXPECT_EQ(digShort("b", "+tcp " + A + "www.example.test"), std::vector<std::string>{outHttp()});
  ShResult nx = dig("a", A + "nope.example.test");
  EXPECT_EQ(status(nx.out), "NXDOMAIN") << nx.out;  // the upstream's answer, not ours
  EXPECT_EQ(nx.out.find("flags: qr aa"), std::string::npos) << nx.out;
  // a silent upstream: SERVFAIL within the agents' upstream timeout
  std::string pids = "$(ip netns pids " + prefix() + "-out | xargs -r ps -o pid= -o comm= -p | awk '$2 == \"dnsmasq\" {print $1}')";
  ASSERT_EQ(sh("kill -STOP " + pids, 10).rc, 0);
  ShResult sf = dig("a", A + "www.example.test", 8);
  sh("kill -CONT " + pids, 10);
  EXPECT_EQ(status(sf.out), "SERVFAIL") << sf.out;
  EXPECT_EQ(digShort("a", A + "www.example.test"), std::vector<std::string>{outHttp()});
}

// ExternalName <-> ClusterIP and ExternalName <-> NodePort without restart: the
// name changes kind, and the ClusterIP's dataplane entry appears / disappears.
TEST_P(DnsTest, ServiceTypeChangesTakeEffectLive) {
  const std::string name = "dnsflip.default.svc.cluster.local";
  const std::string ports = "[{name: http, port: 80, targetPort: 8080, protocol: TCP}]";
  auto external = [&] {
    writeManifest("dns-flip.yaml", "apiVersion: v1\nkind: Service\n"
                                   "metadata: {name: dnsflip, namespace: default}\n"
                                   "spec: {type: ExternalName, externalName: www.example.test}\n");
  };
  auto withIp = [&](const std::string& type, const std::string& vip) {
    std::string y = svcYaml("dnsflip", vip, "app: web", ports);
    y.replace(y.find("type: ClusterIP"), 15, "type: " + type);
    writeManifest("dns-flip.yaml", y);
  };
  auto served = [](const std::string& vip) {
    return askUntil("a", "tcp", vip, 80, [](const Answer& a) { return a.ok(); }).ok();
  };
  auto gone = [](const std::string& vip) {
    return !askUntil("a", "tcp", vip, 80, [](const Answer& a) { return !a.ok(); }).ok();
  };
  const std::vector<std::string> cname = sorted({outHttp(), "www.example.test."});
  const std::string A = addrType() + " ";

  external();
  EXPECT_EQ(digUntil("a", A + name, cname), cname);
  EXPECT_EQ(clusterIPOf("node1", "dnsflip"), "");

  for (auto [type, vip] : {std::pair<std::string, std::string>{"ClusterIP", fam().vip(5, 2)},
                           std::pair<std::string, std::string>{"NodePort", fam().vip(5, 3)}}) {
    SCOPED_TRACE(type);
    withIp(type, vip);  // ExternalName -> type
    EXPECT_EQ(digUntil("a", A + name, {vip}), std::vector<std::string>{vip});
    EXPECT_TRUE(served(vip)) << type << " " << vip << " not served after the change";
    external();  // type -> ExternalName
    EXPECT_EQ(digUntil("a", A + name, cname), cname);
    EXPECT_TRUE(gone(vip)) << vip << " still served after the change to ExternalName";
    EXPECT_EQ(clusterIPOf("node1", "dnsflip"), "");
  }
}

}  // namespace
}  // namespace e2e
