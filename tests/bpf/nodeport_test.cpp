// Golden-packet tests of the external path (NodePort, externalIPs) through
// XDP and tc, with the same cases on both. FIB lookups need a device and
// routes: the test process moves into a private network namespace of its
// own with one veth and static neighbours, so nothing else is touched.
#include <net/if.h>
#include <sched.h>

#include <cstdlib>

#include "conntrack_util.h"

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

// Issue 10 case 4, NodePort to another node's endpoint (SNAT): the
// endpoint's node says "fragmentation needed" to us about our SNATed
// packet; the client gets it about its own packet to the NodePort.
TEST_P(NodePortTest, FragNeededAboutSnatedFlowGoesBackToTheClient) {
  addBackend(1, kRemotePod, 8080);
  addService("", kNodePort, 6, {1}, FERRY_SCOPE_EXTERNAL);
  Pkt in = fromClient();
  ingress(in);
  ferry_ct_value fwd{};
  ASSERT_TRUE(ctLookup(in, FERRY_CT_FWD, &fwd));
  Pkt data = in;
  data.tcpFlags = 0x18;
  data.payload = std::vector<uint8_t>(100, 1);
  Pkt sent = data;
  sent.saddr = kNode;
  sent.sport = ntohs(fwd.alt_port);
  sent.daddr = kRemotePod;
  sent.dport = 8080;
  auto err = test::icmpError(3, 4, kNode2, kNode, build(sent), 48, 1400);
  std::copy(kNode2Mac.begin(), kNode2Mac.end(), err.begin() + 6);
  std::copy(kNodeMac.begin(), kNodeMac.end(), err.begin());
  Result r = run(prog(), err, PrivateNetns::ifindex);
  if (xdp()) {  // XDP leaves ICMP errors to tc
    EXPECT_EQ(r.verdict, uint32_t(XDP_PASS));
    EXPECT_EQ(hex(err), hex(r.out));
    r = run(Program::ExtIn, err, PrivateNetns::ifindex);
  }
  EXPECT_EQ(r.verdict, uint32_t(TC_ACT_REDIRECT));
  auto want = test::icmpError(3, 4, kNode, kClient4, build(data), 48, 1400);
  std::copy(kClientMac.begin(), kClientMac.end(), want.begin());
  std::copy(kNodeMac.begin(), kNodeMac.end(), want.begin() + 6);
  EXPECT_BYTES(want, r.out);
  EXPECT_EQ(checkChecksums(r.out), "");
  EXPECT_EQ(test::checkEmbedded(r.out), "");
  EXPECT_EQ(stat(FERRY_HOOK_EXT_TC_IN, FERRY_STAT_ICMP_RELATED), 1u);
}

// NodePort to a local endpoint: the node's own "fragmentation needed"
// (the pod's veth has the smaller MTU) leaves through the external
// device about the translated packet; the client gets it about the
// NodePort.
TEST_P(NodePortTest, FragNeededAboutLocalEndpointFlowNamesTheNodePort) {
  addBackend(1, kLocalPod, 8080, 6, FERRY_BE_F_LOCAL);
  addService("", kNodePort, 6, {1}, FERRY_SCOPE_EXTERNAL);
  Pkt in = fromClient();
  ingress(in);
  Pkt sent = in;
  sent.daddr = kLocalPod;
  sent.dport = 8080;
  auto err = test::icmpError(3, 4, kNode, kClient4, build(sent), 48, 1400);
  Result r = run(Program::ExtOut, err);
  EXPECT_EQ(r.verdict, uint32_t(TC_ACT_OK));
  EXPECT_BYTES(test::icmpError(3, 4, kNode, kClient4, build(in), 48, 1400), r.out);
  // The endpoint's own port unreachable (UDP) likewise.
  addBackend(2, kLocalPod, 5353, 17, FERRY_BE_F_LOCAL);
  addService("", kNodePort, 17, {2}, FERRY_SCOPE_EXTERNAL);
  Pkt u = fromClient();
  u.proto = 17;
  u.payload = {'x'};
  ingress(u);
  Pkt usent = u;
  usent.daddr = kLocalPod;
  usent.dport = 5353;
  r = run(Program::ExtOut, test::icmpError(3, 3, kLocalPod, kClient4, build(usent), 29));
  EXPECT_BYTES(test::icmpError(3, 3, kNode, kClient4, build(u), 29), r.out);
  EXPECT_EQ(checkChecksums(r.out), "");
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

// A frame built by a local stack with TX checksum offload (a veth from a
// container's netns) carries a partial checksum: only the folded
// pseudo-header sum. XDP must not rewrite and send it on (the result
// would be a bad checksum on the wire): it leaves it to tc untouched.
TEST_F(DatapathTest, XdpLeavesFramesWithPartialChecksumToTc) {
  ferry_node_addr na{};
  ASSERT_TRUE(dp_->nodeAddrs().update(abiAddr(kNode), na));
  addBackend(1, kRemotePod, 8080);
  addService("", kNodePort, 6, {1}, FERRY_SCOPE_EXTERNAL);
  Pkt in;
  in.saddr = kClient4;
  in.daddr = kNode;
  in.dport = kNodePort;
  in.payload = {'p', 'a', 'r', 't'};
  auto frame = build(in);
  // the partial form: ~checksum of the pseudo-header only
  uint8_t* ip = &frame[14];
  uint16_t l4len = frame.size() - 34;
  uint8_t pseudo[12];
  std::memcpy(pseudo, ip + 12, 8);
  pseudo[8] = 0;
  pseudo[9] = 6;
  pseudo[10] = l4len >> 8;
  pseudo[11] = l4len & 0xff;
  uint16_t partial = ~test::inetChecksum(pseudo, 12);
  frame[34 + 16] = partial >> 8;
  frame[34 + 17] = partial & 0xff;
  Result r = run(Program::ExtXdp, frame, PrivateNetns::ifindex);
  EXPECT_EQ(r.verdict, uint32_t(XDP_PASS));
  EXPECT_EQ(hex(frame), hex(r.out));
  EXPECT_EQ(stat(FERRY_HOOK_EXT_XDP, FERRY_STAT_TO_TC), 1u);
  ferry_ct_value v{};
  Pkt key = in;
  EXPECT_FALSE(ctLookup(key, FERRY_CT_FWD, &v)) << "tc decides and records the flow";
  // the same frame with a complete checksum is XDP's
  r = run(Program::ExtXdp, build(in), PrivateNetns::ifindex);
  EXPECT_EQ(r.verdict, uint32_t(XDP_TX));
}

}  // namespace
}  // namespace ferry
