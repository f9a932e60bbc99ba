// Path MTU and fragments through a ClusterIP, in both families (issue 15):
// a path with a smaller MTU behind the service still carries a large TCP
// transfer, because the router's "fragmentation needed" (ICMP) or "packet
// too big" (ICMPv6) about the translated flow reaches the client in the
// flow's own terms (bpf/lib/icmp.h, icmp6.h) and the client lowers its
// path MTU; and a UDP datagram larger than the MTU, fragmented both ways,
// arrives whole (bpf/lib/frag.h).
#include "cluster_fixture.h"

namespace e2e {
namespace {

// node1's route towards node2's pods with a smaller MTU, for the case's
// lifetime: node1 forwards pod a's packets and answers the too-large
// ones with "fragmentation needed" / "packet too big".
class SmallerMtuToNode2 {
 public:
  SmallerMtuToNode2(bool v6, int mtu) : v6_(v6) {
    ok_ = exec("node1", route() + " mtu " + std::to_string(mtu)).rc == 0;
  }
  ~SmallerMtuToNode2() { exec("node1", route()); }
  bool ok() const { return ok_; }

 private:
  std::string route() const {
    return v6_ ? "ip -6 route change 2001:db8:1:2::/64 via 2001:db8::12 dev eth0"
               : "ip route change 198.18.130.0/24 via 198.18.0.12 dev eth0";
  }
  bool v6_;
  bool ok_ = false;
};

// iperf3 (pod c, node2) through a ClusterIP from pod a (node1), across a
// 1280-byte link: 4 MiB arrive, and pod a learnt the smaller path MTU for
// the ClusterIP itself (its route cache names the service address).
TEST_P(ClusterFamilyTest, LargeTcpTransferThroughClusterIPAcrossASmallerMtu) {
  const std::string vip = fam().vip(1, 60);
  writeManifest("t60-pmtu.yaml",
                serviceYaml("t60-pmtu", vip, "name: c",
                            "[{name: iperf, port: 5201, targetPort: 5201, protocol: TCP},"
                            " {name: echo, port: 80, targetPort: 8080, protocol: TCP}]"));
  ASSERT_EQ(askUntil("a", "tcp", vip, 80, [](const Answer& a) { return a.ok(); }).name, "pod-c");
  SmallerMtuToNode2 mtu(v6(), 1280);
  ASSERT_TRUE(mtu.ok());
  ShResult ip = exec("a", "iperf3 -c " + vip + " -p 5201 -n 4M --connect-timeout 3000", 40);
  EXPECT_EQ(ip.rc, 0) << "iperf3 through " << vip << " across a 1280-byte link:\n" << ip.out;
  ShResult cache = exec("a", std::string(v6() ? "ip -6" : "ip") + " route get " + vip);
  EXPECT_NE(cache.out.find("mtu 1280"), std::string::npos)
      << "pod a never learnt the path MTU towards " << vip << ":\n" << cache.out;
}

// A 3000-byte UDP datagram through a ClusterIP, echoed by pod c: both
// travel in fragments (pod a's and pod c's stacks fragment them on their
// 1500-byte links), and the echo comes back whole, from the service.
TEST_P(ClusterFamilyTest, FragmentedUdpDatagramArrivesWhole) {
  const std::string vip = fam().vip(1, 61);
  writeManifest("t61-frag.yaml",
                serviceYaml("t61-frag", vip, "name: c",
                            "[{name: dns, port: 53, targetPort: 5353, protocol: UDP}]"));
  ASSERT_TRUE(askUntil("a", "udp", vip, 53, [](const Answer& a) { return a.ok(); }).ok());
  for (int size : {3000, 9000}) {
    Answer a = ask("a", "udp", vip, 53, 2000, "--size " + std::to_string(size) + " --show-peer");
    EXPECT_TRUE(a.ok()) << size << " bytes: " << a;
    EXPECT_EQ(a.name, "pod-c") << a;
    EXPECT_EQ(a.clientIp, fam().podA) << a;
    EXPECT_EQ(a.peer, hostPort(vip, 53)) << a;
    EXPECT_NE(a.raw.find("echo " + std::to_string(size - 5)), std::string::npos) << a;
  }
}

}  // namespace
}  // namespace e2e
