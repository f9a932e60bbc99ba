// Golden-packet tests of the external path (NodePort, externalIPs) through
// XDP and tc, with the same cases on both. FIB lookups need a device and
// routes: the test process moves into a private network namespace of its
// own with one veth and static neighbours, so nothing else is touched.
#include <net/if.h>
#include <sched.h>

#include <cstdlib>

#include "fixture.h"

namespace ferry {
namespace {

constexpr const char* kClient4 = "198.18.0.100";
constexpr const char* kNode2 = "198.18.0.12";
constexpr const char* kLocalPod = "198.18.129.2";
constexpr const char* kRemotePod = "198.18.130.2";
constexpr const char* kExternalIp = "198.18.0.200";
constexpr std::array<uint8_t, 6> kNodeMac{0x02, 0, 0, 0, 0, 0x11};
constexpr std::array<uint8_t, 6> kNode2Mac{0x02, 0, 0, 0, 0, 0x12};
constexpr std::array<uint8_t, 6> kClientMac{0x02, 0, 0, 0, 0x01, 0x00};
constexpr uint16_t kNodePort = 30080;

// One private netns for the whole binary (BPF_PROG_TEST_RUN's FIB lookups
// happen in the caller's namespace).
class PrivateNetns : public ::testing::Environment {
 public:
  void SetUp() override {
    ASSERT_EQ(unshare(CLONE_NEWNET), 0) << "unshare(CLONE_NEWNET): " << strerror(errno);
    const char* cmds[] = {
        "ip link set lo up",
        "ip link add t0 address 02:00:00:00:00:11 type veth peer name t1",
        "ip addr add 198.18.0.11/24 dev t0",
        "ip link set t0 up",
        "ip link set t1 up",
        "ip neigh replace 198.18.0.12 lladdr 02:00:00:00:00:12 dev t0 nud permanent",
        "ip neigh replace 198.18.0.100 lladdr 02:00:00:00:01:00 dev t0 nud permanent",
        "ip neigh replace 198.18.0.101 lladdr 02:00:00:00:01:01 dev t0 nud permanent",
        "ip route add 198.18.130.0/24 via 198.18.0.12",
        "sysctl -qw net.ipv4.ip_forward=1",
    };
    for (const char* c : cmds) ASSERT_EQ(std::system(c), 0) << c;
    ifindex = if_nametoindex("t0");
    ASSERT_NE(ifindex, 0u);
  }
  static inline uint32_t ifindex = 0;
};

[[maybe_unused]] auto* const kEnv = ::testing::AddGlobalTestEnvironment(new PrivateNetns);

enum class Path { Xdp, Tc };

class NodePortTest : public DatapathTest, public ::testing::WithParamInterface<Path> {
 protected:
  void SetUp() override {
    DatapathTest::SetUp();
    ferry_node_addr na{};
    ASSERT_TRUE(dp_->nodeAddrs().update(abiAddr(kNode), na));
  }

  Program prog() const { return GetParam() == Path::Xdp ? Program::ExtXdp : Program::ExtIn; }
  bool xdp() const { return GetParam() == Path::Xdp; }
  ferry_hook hook() const { return xdp() ? FERRY_HOOK_EXT_XDP : FERRY_HOOK_EXT_TC_IN; }
  uint32_t pass() const { return xdp() ? XDP_PASS : TC_ACT_OK; }
  uint32_t drop() const { return xdp() ? XDP_DROP : TC_ACT_SHOT; }

  Result ingress(const Pkt& p) { return run(prog(), build(p), PrivateNetns::ifindex); }

  static Pkt fromClient(const char* daddr = kNode, uint16_t dport = kNodePort) {
    Pkt p;
    p.saddr = kClient4;
    p.daddr = daddr;
    p.sport = 40000;
    p.dport = dport;
    p.srcMac = kClientMac;
    p.dstMac = kNodeMac;
    return p;
  }
};

TEST_P(NodePortTest, LocalEndpointIsDestinationNatedOnlyAndReplyRestored) {
  addBackend(1, kLocalPod, 8080, 6, FERRY_BE_F_LOCAL);
  addService("", kNodePort, 6, {1}, FERRY_SCOPE_EXTERNAL);
  Pkt in = fromClient();
  Pkt want = in;
  want.daddr = kLocalPod;
  want.dport = 8080;
  Result r = ingress(in);
  EXPECT_EQ(r.verdict, pass());
  EXPECT_BYTES(build(want), r.out);
  EXPECT_EQ(stat(hook(), FERRY_STAT_FWD_NEW), 1u);

  // The pod's reply leaves through the external device's tc egress.
  Pkt reply;
  reply.saddr = kLocalPod;
  reply.sport = 8080;
  reply.daddr = kClient4;
  reply.dport = 40000;
  reply.tcpFlags = 0x12;
  Pkt wantReply = reply;
  wantReply.saddr = kNode;
  wantReply.sport = kNodePort;
  r = run(Program::ExtOut, build(reply));
  EXPECT_EQ(r.verdict, TC_ACT_OK);
  EXPECT_BYTES(build(wantReply), r.out);
  EXPECT_EQ(checkChecksums(r.out), "");
}

TEST_P(NodePortTest, RemoteEndpointIsSourceNatedAndSentToItsNode) {
  addBackend(1, kRemotePod, 8080);
  addService("", kNodePort, 6, {1}, FERRY_SCOPE_EXTERNAL);
  Pkt in = fromClient();
  in.payload = {'x', 'y', 'z'};
  Result r = ingress(in);
  EXPECT_EQ(r.verdict, xdp() ? uint32_t(XDP_TX) : uint32_t(TC_ACT_REDIRECT));

  ferry_ct_value fwd{};
  ASSERT_TRUE(ctLookup(in, FERRY_CT_FWD, &fwd));
  EXPECT_TRUE(fwd.flags & FERRY_CT_F_SNAT);
  uint16_t snatPort = ntohs(fwd.alt_port);
  EXPECT_EQ(snatPort, 40000) << "the client's port is kept when it is free";
  Pkt want = in;
  want.saddr = kNode;
  want.sport = snatPort;
  want.daddr = kRemotePod;
  want.dport = 8080;
  want.srcMac = kNodeMac;
  want.dstMac = kNode2Mac;
  EXPECT_BYTES(build(want), r.out);
  EXPECT_EQ(checkChecksums(r.out), "");

  // The endpoint's node answers to us; the client gets it from the
  // NodePort.
  Pkt reply;
  reply.saddr = kRemotePod;
  reply.sport = 8080;
  reply.daddr = kNode;
  reply.dport = snatPort;
  reply.tcpFlags = 0x12;
  reply.srcMac = kNode2Mac;
  reply.dstMac = kNodeMac;
  Pkt wantReply = reply;
  wantReply.saddr = kNode;
  wantReply.sport = kNodePort;
  wantReply.daddr = kClient4;
  wantReply.dport = 40000;
  wantReply.srcMac = kNodeMac;
  wantReply.dstMac = kClientMac;
  r = ingress(reply);
  EXPECT_EQ(r.verdict, xdp() ? uint32_t(XDP_TX) : uint32_t(TC_ACT_REDIRECT));
  EXPECT_BYTES(build(wantReply), r.out);
  EXPECT_EQ(stat(hook(), FERRY_STAT_REVNAT), 1u);
}

TEST_P(NodePortTest, SecondClientWithTheSamePortGetsAnotherSnatPort) {
  addBackend(1, kRemotePod, 8080);
  addService("", kNodePort, 6, {1}, FERRY_SCOPE_EXTERNAL);
  Pkt first = fromClient();
  ingress(first);
  Pkt second = fromClient();
  second.saddr = "198.18.0.101";  // same source port 40000
  Result r = ingress(second);
  EXPECT_EQ(r.verdict, xdp() ? uint32_t(XDP_TX) : uint32_t(TC_ACT_REDIRECT));
  ferry_ct_value a{}, b{};
  ASSERT_TRUE(ctLookup(first, FERRY_CT_FWD, &a));
  ASSERT_TRUE(ctLookup(second, FERRY_CT_FWD, &b));
  EXPECT_EQ(ntohs(a.alt_port), 40000);
  EXPECT_GE(ntohs(b.alt_port), 61000);
  // each reply finds its own client
  Pkt reply;
  reply.saddr = kRemotePod;
  reply.sport = 8080;
  reply.daddr = kNode;
  reply.dport = ntohs(b.alt_port);
  reply.tcpFlags = 0x12;
  r = ingress(reply);
  EXPECT_EQ(r.out[14 + 16 + 3], 101) << "reply went to the wrong client";
}

TEST_P(NodePortTest, UdpToRemoteEndpoint) {
  addBackend(1, kRemotePod, 5353, 17);
  addService("", kNodePort, 17, {1}, FERRY_SCOPE_EXTERNAL);
  Pkt in = fromClient();
  in.proto = 17;
  in.payload = {'q'};
  Result r = ingress(in);
  ferry_ct_value fwd{};
  ASSERT_TRUE(ctLookup(in, FERRY_CT_FWD, &fwd));
  Pkt want = in;
  want.saddr = kNode;
  want.sport = ntohs(fwd.alt_port);
  want.daddr = kRemotePod;
  want.dport = 5353;
  want.srcMac = kNodeMac;
  want.dstMac = kNode2Mac;
  EXPECT_BYTES(build(want), r.out);
}

TEST_P(NodePortTest, EstablishedFlowStaysOnItsEndpoint) {
  addBackend(1, kLocalPod, 8080, 6, FERRY_BE_F_LOCAL);
  addService("", kNodePort, 6, {1}, FERRY_SCOPE_EXTERNAL);
  Pkt in = fromClient();
  ingress(in);
  addBackend(2, "198.18.129.3", 8080, 6, FERRY_BE_F_LOCAL);
  addService("", kNodePort, 6, {1, 2}, FERRY_SCOPE_EXTERNAL);
  in.tcpFlags = 0x10;
  for (int i = 0; i < 8; ++i) {
    Result r = ingress(in);
    EXPECT_EQ(r.out[33], 2) << "moved to another endpoint";
  }
  EXPECT_EQ(stat(hook(), FERRY_STAT_FWD_ESTABLISHED), 8u);
}

TEST_P(NodePortTest, PolicyLocalWithoutLocalEndpointDrops) {
  addService("", kNodePort, 6, {}, FERRY_SCOPE_EXTERNAL, FERRY_SVC_F_LOCAL);
  Result r = ingress(fromClient());
  EXPECT_EQ(r.verdict, drop());
  EXPECT_EQ(stat(hook(), FERRY_STAT_DROP_NO_LOCAL), 1u);
}

TEST_P(NodePortTest, PolicyLocalKeepsClientAddress) {
  addBackend(1, kLocalPod, 8080, 6, FERRY_BE_F_LOCAL);
  addService("", kNodePort, 6, {1}, FERRY_SCOPE_EXTERNAL, FERRY_SVC_F_LOCAL);
  Pkt in = fromClient();
  Pkt want = in;
  want.daddr = kLocalPod;
  want.dport = 8080;
  Result r = ingress(in);
  EXPECT_EQ(r.verdict, pass());
  EXPECT_BYTES(build(want), r.out);
}

TEST_P(NodePortTest, NoEndpointsRejectedByTcAfterXdpPassesIt) {
  addService("", kNodePort, 6, {}, FERRY_SCOPE_EXTERNAL);
  auto in = build(fromClient());
  Result r = run(prog(), in, PrivateNetns::ifindex);
  if (xdp()) {
    EXPECT_EQ(r.verdict, uint32_t(XDP_PASS));
    EXPECT_EQ(hex(in), hex(r.out));
    EXPECT_EQ(stat(FERRY_HOOK_EXT_XDP, FERRY_STAT_TO_TC), 1u);
    r = run(Program::ExtIn, in, PrivateNetns::ifindex);
  }
  EXPECT_EQ(r.verdict, uint32_t(TC_ACT_REDIRECT));
  ASSERT_EQ(r.out.size(), 70u);
  EXPECT_EQ(r.out[14 + 9], 1);  // ICMP
  EXPECT_EQ(r.out[14 + 20], 3);
  EXPECT_EQ(r.out[14 + 21], 3);
  EXPECT_EQ(checkChecksums(r.out), "");
}

TEST_P(NodePortTest, ExternalIpIsServedOnTheServicePort) {
  addBackend(1, kLocalPod, 8080, 6, FERRY_BE_F_LOCAL);
  addService(kExternalIp, 80, 6, {1}, FERRY_SCOPE_EXTERNAL);
  Pkt in = fromClient(kExternalIp, 80);
  Pkt want = in;
  want.daddr = kLocalPod;
  want.dport = 8080;
  Result r = ingress(in);
  EXPECT_EQ(r.verdict, pass());
  EXPECT_BYTES(build(want), r.out);
}

TEST_P(NodePortTest, EverythingElsePassesUntouched) {
  addBackend(1, kLocalPod, 8080, 6, FERRY_BE_F_LOCAL);
  addService("", kNodePort, 6, {1}, FERRY_SCOPE_EXTERNAL);
  addService(kVip, 80, 6, {1});  // a ClusterIP: internal only
  std::vector<Pkt> cases = {
      fromClient(kVip, 80),             // ClusterIP from outside
      fromClient("198.18.0.99"),        // NodePort on another address
      fromClient(kNode, kNodePort + 1), // other port
      fromClient(kNode, 22),
  };
  cases.push_back(fromClient());
  cases.back().proto = 17;  // NodePort is TCP only here
  for (const Pkt& p : cases) {
    auto in = build(p);
    Result r = ingress(p);
    EXPECT_EQ(r.verdict, pass());
    EXPECT_EQ(hex(in), hex(r.out));
  }
  auto truncated = build(fromClient());
  truncated.resize(40);
  Result r = run(prog(), truncated, PrivateNetns::ifindex);
  EXPECT_EQ(r.verdict, pass());
  EXPECT_EQ(hex(truncated), hex(r.out));
  EXPECT_EQ(stat(hook(), FERRY_STAT_MALFORMED), 1u);
}

TEST_P(NodePortTest, LoadBalancerSourceRangesAdmitOnlyListedClients) {
  addBackend(1, kLocalPod, 8080, 6, FERRY_BE_F_LOCAL);
  addService("198.18.0.201", 80, 6, {1}, FERRY_SCOPE_EXTERNAL, FERRY_SVC_F_SRC_RANGES);
  ferry_src_range_key k{};
  k.prefixlen = 32 + 96 + 30;  // svc id 7, 198.18.0.100/30
  k.svc_id = 7;
  k.addr = abiAddr("198.18.0.100");
  ASSERT_TRUE(dp_->srcRanges().update(k, 1));

  Pkt in = fromClient("198.18.0.201", 80);  // 198.18.0.100: listed
  Pkt want = in;
  want.daddr = kLocalPod;
  want.dport = 8080;
  Result r = ingress(in);
  EXPECT_EQ(r.verdict, pass());
  EXPECT_BYTES(build(want), r.out);

  Pkt other = in;
  other.saddr = "198.18.0.120";  // outside 198.18.0.100/30
  r = ingress(other);
  EXPECT_EQ(r.verdict, drop());
  EXPECT_EQ(stat(hook(), FERRY_STAT_DROP_SRC_RANGE), 1u);
}

INSTANTIATE_TEST_SUITE_P(Paths, NodePortTest, ::testing::Values(Path::Xdp, Path::Tc),
                         [](const auto& info) { return info.param == Path::Xdp ? "xdp" : "tc"; });

TEST_F(DatapathTest, PodReachesNodePortOfItsOwnNode) {
  ferry_node_addr na{};
  ASSERT_TRUE(dp_->nodeAddrs().update(abiAddr(kNode), na));
  addBackend(1, kBackendB, 8080);
  addService("", kNodePort, 6, {1}, FERRY_SCOPE_EXTERNAL);
  Pkt in;
  in.daddr = kNode;
  in.dport = kNodePort;
  Pkt want = in;
  want.daddr = kBackendB;
  want.dport = 8080;
  Result r = run(Program::FromPod, build(in));
  EXPECT_EQ(r.verdict, uint32_t(TC_ACT_OK));
  EXPECT_BYTES(build(want), r.out);

  Pkt reply;
  reply.saddr = kBackendB;
  reply.sport = 8080;
  reply.daddr = kClient;
  reply.dport = 40000;
  Pkt wantReply = reply;
  wantReply.saddr = kNode;
  wantReply.sport = kNodePort;
  r = run(Program::ToPod, build(reply));
  EXPECT_BYTES(build(wantReply), r.out);
}

}  // namespace
}  // namespace ferry
