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

constexpr std::array<uint8_t, 6> kNodeMac{0x02, 0, 0, 0, 0, 0x11};
constexpr std::array<uint8_t, 6> kNode2Mac{0x02, 0, 0, 0, 0, 0x12};
constexpr std::array<uint8_t, 6> kClientMac{0x02, 0, 0, 0, 0x01, 0x00};
constexpr uint16_t kNodePort = 30080;

// The addresses of one family for the external path (TESTNET.md plan).
struct ExtFamily {
  const char* name;  // test name suffix
  const char* client;
  const char* client2;  // another external client
  const char* node;     // this node (ferry_config.snat4/6, a node address)
  const char* node2;    // the remote endpoint's node
  const char* localPod;
  const char* localPod2;
  const char* remotePod;
  const char* externalIp;
  const char* lbIp;
  const char* notNode;     // an address on the LAN that is not this node
  const char* nodePortFe;  // the NodePort frontend's address in ferry_svc
  const char* vip;         // a ClusterIP
  const char* range;       // a source range holding client, length rangeLen
  uint32_t rangeBits;      // its prefixlen in ferry_src_range_key
  const char* outside;     // a client outside it
  bool v6;
};
inline void PrintTo(const ExtFamily& f, std::ostream* os) { *os << f.name; }
const ExtFamily kExt4{"IPv4",           "198.18.0.100", "198.18.0.101", kNode,
                      "198.18.0.12",    "198.18.129.2", "198.18.129.3", "198.18.130.2",
                      "198.18.0.200",   "198.18.0.201", "198.18.0.99",  "",
                      kVip,             "198.18.0.100", 32 + 96 + 30,   "198.18.0.120",
                      false};
const ExtFamily kExt6{"IPv6",           "2001:db8::100",    "2001:db8::101",   kNode6,
                      "2001:db8::12",   "2001:db8:1:1::2",  "2001:db8:1:1::3", "2001:db8:1:2::2",
                      "2001:db8::200",  "2001:db8::201",    "2001:db8::99",    "::",
                      kVip6,            "2001:db8::100",    32 + 126,          "2001:db8::120",
                      true};

// One private netns for the whole binary (BPF_PROG_TEST_RUN's FIB lookups
// happen in the caller's namespace).
class PrivateNetns : public ::testing::Environment {
 public:
  void SetUp() override {
    ASSERT_EQ(unshare(CLONE_NEWNET), 0) << "unshare(CLONE_NEWNET): " << strerror(errno);
    const char* cmds[] = {
        "ip link set lo up",
        "sysctl -qw net.ipv4.ip_forward=1",
        "sysctl -qw net.ipv6.conf.all.forwarding=1",
        "ip link add t0 address 02:00:00:00:00:11 type veth peer name t1",
        "ip addr add 198.18.0.11/24 dev t0",
        "ip addr add 2001:db8::11/64 dev t0 nodad",
        "ip link set t0 up",
        "ip link set t1 up",
        "ip neigh replace 198.18.0.12 lladdr 02:00:00:00:00:12 dev t0 nud permanent",
        "ip neigh replace 198.18.0.100 lladdr 02:00:00:00:01:00 dev t0 nud permanent",
        "ip neigh replace 198.18.0.101 lladdr 02:00:00:00:01:01 dev t0 nud permanent",
        "ip route add 198.18.130.0/24 via 198.18.0.12",
        "ip neigh replace 2001:db8::12 lladdr 02:00:00:00:00:12 dev t0 nud permanent",
        "ip neigh replace 2001:db8::100 lladdr 02:00:00:00:01:00 dev t0 nud permanent",
        "ip neigh replace 2001:db8::101 lladdr 02:00:00:00:01:01 dev t0 nud permanent",
        "ip route add 2001:db8:1:2::/64 via 2001:db8::12",
    };
    for (const char* c : cmds) ASSERT_EQ(std::system(c), 0) << c;
    ifindex = if_nametoindex("t0");
    ASSERT_NE(ifindex, 0u);
  }
  static inline uint32_t ifindex = 0;
};

[[maybe_unused]] auto* const kEnv = ::testing::AddGlobalTestEnvironment(new PrivateNetns);

enum class Path { Xdp, Tc };
inline void PrintTo(Path p, std::ostream* os) { *os << (p == Path::Xdp ? "xdp" : "tc"); }

// Every case through XDP and through tc, in each family.
class NodePortTest : public DatapathTest,
                     public ::testing::WithParamInterface<std::tuple<Path, ExtFamily>> {
 protected:
  void SetUp() override {
    DatapathTest::SetUp();
    ferry_node_addr na{};
    ASSERT_TRUE(dp_->nodeAddrs().update(abiAddr(fam().node), na));
  }

  const ExtFamily& fam() const { return std::get<1>(GetParam()); }
  bool xdp() const { return std::get<0>(GetParam()) == Path::Xdp; }
  Program prog() const { return xdp() ? Program::ExtXdp : Program::ExtIn; }
  ferry_hook hook() const { return xdp() ? FERRY_HOOK_EXT_XDP : FERRY_HOOK_EXT_TC_IN; }
  uint32_t pass() const { return xdp() ? XDP_PASS : TC_ACT_OK; }
  uint32_t drop() const { return xdp() ? XDP_DROP : TC_ACT_SHOT; }
  // The last byte of a frame's destination address.
  uint8_t lastDaddrByte(const std::vector<uint8_t>& f) const {
    return f.at(fam().v6 ? 14 + 39 : 14 + 19);
  }

  Result ingress(const Pkt& p) { return run(prog(), build(p), PrivateNetns::ifindex); }

  Pkt fromClient(const char* daddr = nullptr, uint16_t dport = kNodePort) const {
    Pkt p;
    p.saddr = fam().client;
    p.daddr = daddr ? daddr : fam().node;
    p.sport = 40000;
    p.dport = dport;
    p.srcMac = kClientMac;
    p.dstMac = kNodeMac;
    return p;
  }
};

std::string pathFamilyName(const ::testing::TestParamInfo<std::tuple<Path, ExtFamily>>& info) {
  return std::string(std::get<0>(info.param) == Path::Xdp ? "xdp" : "tc") + "_" +
         std::get<1>(info.param).name;
}

TEST_P(NodePortTest, LocalEndpointIsDestinationNatedOnlyAndReplyRestored) {
  addBackend(1, fam().localPod, 8080, 6, FERRY_BE_F_LOCAL);
  addService(fam().nodePortFe, kNodePort, 6, {1}, FERRY_SCOPE_EXTERNAL);
  Pkt in = fromClient();
  Pkt want = in;
  want.daddr = fam().localPod;
  want.dport = 8080;
  Result r = ingress(in);
  EXPECT_EQ(r.verdict, pass());
  EXPECT_BYTES(build(want), r.out);
  EXPECT_EQ(stat(hook(), FERRY_STAT_FWD_NEW), 1u);

  // The pod's reply leaves through the external device's tc egress.
  Pkt reply;
  reply.saddr = fam().localPod;
  reply.sport = 8080;
  reply.daddr = fam().client;
  reply.dport = 40000;
  reply.tcpFlags = 0x12;
  Pkt wantReply = reply;
  wantReply.saddr = fam().node;
  wantReply.sport = kNodePort;
  r = run(Program::ExtOut, build(reply));
  EXPECT_EQ(r.verdict, TC_ACT_OK);
  EXPECT_BYTES(build(wantReply), r.out);
  EXPECT_EQ(checkChecksums(r.out), "");
}

TEST_P(NodePortTest, RemoteEndpointIsSourceNatedAndSentToItsNode) {
  addBackend(1, fam().remotePod, 8080);
  addService(fam().nodePortFe, kNodePort, 6, {1}, FERRY_SCOPE_EXTERNAL);
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
  want.saddr = fam().node;
  want.sport = snatPort;
  want.daddr = fam().remotePod;
  want.dport = 8080;
  want.srcMac = kNodeMac;
  want.dstMac = kNode2Mac;
  EXPECT_BYTES(build(want), r.out);
  EXPECT_EQ(checkChecksums(r.out), "");

  // The endpoint's node answers to us; the client gets it from the
  // NodePort.
  Pkt reply;
  reply.saddr = fam().remotePod;
  reply.sport = 8080;
  reply.daddr = fam().node;
  reply.dport = snatPort;
  reply.tcpFlags = 0x12;
  reply.srcMac = kNode2Mac;
  reply.dstMac = kNodeMac;
  Pkt wantReply = reply;
  wantReply.saddr = fam().node;
  wantReply.sport = kNodePort;
  wantReply.daddr = fam().client;
  wantReply.dport = 40000;
  wantReply.srcMac = kNodeMac;
  wantReply.dstMac = kClientMac;
  r = ingress(reply);
  EXPECT_EQ(r.verdict, xdp() ? uint32_t(XDP_TX) : uint32_t(TC_ACT_REDIRECT));
  EXPECT_BYTES(build(wantReply), r.out);
  EXPECT_EQ(stat(hook(), FERRY_STAT_REVNAT), 1u);
}

TEST_P(NodePortTest, SecondClientWithTheSamePortGetsAnotherSnatPort) {
  addBackend(1, fam().remotePod, 8080);
  addService(fam().nodePortFe, kNodePort, 6, {1}, FERRY_SCOPE_EXTERNAL);
  Pkt first = fromClient();
  ingress(first);
  Pkt second = fromClient();
  second.saddr = fam().client2;  // same source port 40000
  Result r = ingress(second);
  EXPECT_EQ(r.verdict, xdp() ? uint32_t(XDP_TX) : uint32_t(TC_ACT_REDIRECT));
  ferry_ct_value a{}, b{};
  ASSERT_TRUE(ctLookup(first, FERRY_CT_FWD, &a));
  ASSERT_TRUE(ctLookup(second, FERRY_CT_FWD, &b));
  EXPECT_EQ(ntohs(a.alt_port), 40000);
  EXPECT_GE(ntohs(b.alt_port), 61000);
  // each reply finds its own client
  Pkt reply;
  reply.saddr = fam().remotePod;
  reply.sport = 8080;
  reply.daddr = fam().node;
  reply.dport = ntohs(b.alt_port);
  reply.tcpFlags = 0x12;
  r = ingress(reply);
  EXPECT_EQ(lastDaddrByte(r.out), fam().v6 ? 0x01 : 101) << "reply went to the wrong client";
}

TEST_P(NodePortTest, UdpToRemoteEndpoint) {
  addBackend(1, fam().remotePod, 5353, 17);
  addService(fam().nodePortFe, kNodePort, 17, {1}, FERRY_SCOPE_EXTERNAL);
  Pkt in = fromClient();
  in.proto = 17;
  in.payload = {'q'};
  Result r = ingress(in);
  ferry_ct_value fwd{};
  ASSERT_TRUE(ctLookup(in, FERRY_CT_FWD, &fwd));
  Pkt want = in;
  want.saddr = fam().node;
  want.sport = ntohs(fwd.alt_port);
  want.daddr = fam().remotePod;
  want.dport = 5353;
  want.srcMac = kNodeMac;
  want.dstMac = kNode2Mac;
  EXPECT_BYTES(build(want), r.out);
}

// A UDP datagram in two fragments to a remote endpoint: the first
// fragment's translation (SNAT) applies to the later one too, whose ports
// come from frag.h; the endpoint's fragmented answer goes back to the
// client likewise. XDP leaves fragments to tc.
TEST_P(NodePortTest, FragmentedUdpToRemoteEndpointIsTranslatedInBothDirections) {
  addBackend(1, fam().remotePod, 5353, 17);
  addService(fam().nodePortFe, kNodePort, 17, {1}, FERRY_SCOPE_EXTERNAL);
  std::vector<uint8_t> payload(200);
  for (size_t i = 0; i < payload.size(); ++i) payload[i] = uint8_t(i * 7 + 3);
  Pkt in = fromClient();
  in.proto = 17;
  in.payload = payload;
  auto frags = test::fragment(build(in), 104, 0x4242);
  std::vector<Result> rs;
  for (int i = 0; i < 2; ++i) {
    Result r = run(prog(), frags[i], PrivateNetns::ifindex);
    if (xdp()) {
      EXPECT_EQ(r.verdict, uint32_t(XDP_PASS)) << "fragment " << i;
      EXPECT_EQ(hex(frags[i]), hex(r.out)) << "fragment " << i;
      r = run(Program::ExtIn, frags[i], PrivateNetns::ifindex);
    }
    EXPECT_EQ(r.verdict, uint32_t(TC_ACT_REDIRECT)) << "fragment " << i;
    rs.push_back(r);
  }
  ferry_ct_value fwd{};
  ASSERT_TRUE(ctLookup(in, FERRY_CT_FWD, &fwd));
  Pkt want = in;
  want.saddr = fam().node;
  want.sport = ntohs(fwd.alt_port);
  want.daddr = fam().remotePod;
  want.dport = 5353;
  want.srcMac = kNodeMac;
  want.dstMac = kNode2Mac;
  auto wantFrags = test::fragment(build(want), 104, 0x4242);
  for (int i = 0; i < 2; ++i) EXPECT_BYTES(wantFrags[i], rs[i].out) << "fragment " << i;

  Pkt reply;
  reply.proto = 17;
  reply.saddr = fam().remotePod;
  reply.sport = 5353;
  reply.daddr = fam().node;
  reply.dport = ntohs(fwd.alt_port);
  reply.payload = payload;
  reply.srcMac = kNode2Mac;
  reply.dstMac = kNodeMac;
  Pkt wantReply = reply;
  wantReply.saddr = fam().node;
  wantReply.sport = kNodePort;
  wantReply.daddr = fam().client;
  wantReply.dport = 40000;
  wantReply.srcMac = kNodeMac;
  wantReply.dstMac = kClientMac;
  auto rf = test::fragment(build(reply), 96, 7);
  auto wantRf = test::fragment(build(wantReply), 96, 7);
  for (int i = 0; i < 2; ++i) {
    Result r = run(Program::ExtIn, rf[i], PrivateNetns::ifindex);
    EXPECT_EQ(r.verdict, uint32_t(TC_ACT_REDIRECT)) << "reply fragment " << i;
    EXPECT_BYTES(wantRf[i], r.out) << "reply fragment " << i;
  }
  EXPECT_EQ(stat(FERRY_HOOK_EXT_TC_IN, FERRY_STAT_REVNAT), 2u);
}

// The same to a local endpoint: the fragmented request gets the
// endpoint as destination, and the endpoint's fragmented answer leaves
// through the external device's egress with the NodePort as source.
TEST_P(NodePortTest, FragmentedUdpToLocalEndpointIsTranslatedInBothDirections) {
  addBackend(1, fam().localPod, 5353, 17, FERRY_BE_F_LOCAL);
  addService(fam().nodePortFe, kNodePort, 17, {1}, FERRY_SCOPE_EXTERNAL);
  std::vector<uint8_t> payload(200);
  for (size_t i = 0; i < payload.size(); ++i) payload[i] = uint8_t(i * 5 + 1);
  Pkt in = fromClient();
  in.proto = 17;
  in.payload = payload;
  Pkt want = in;
  want.daddr = fam().localPod;
  want.dport = 5353;
  auto frags = test::fragment(build(in), 104, 0x5151);
  auto wantFrags = test::fragment(build(want), 104, 0x5151);
  for (int i = 0; i < 2; ++i) {
    Result r = run(prog(), frags[i], PrivateNetns::ifindex);
    if (xdp()) {
      EXPECT_EQ(r.verdict, uint32_t(XDP_PASS)) << "fragment " << i;
      EXPECT_EQ(hex(frags[i]), hex(r.out)) << "fragment " << i;
      r = run(Program::ExtIn, frags[i], PrivateNetns::ifindex);
    }
    EXPECT_EQ(r.verdict, uint32_t(TC_ACT_OK)) << "fragment " << i;
    EXPECT_BYTES(wantFrags[i], r.out) << "fragment " << i;
  }

  Pkt reply;
  reply.proto = 17;
  reply.saddr = fam().localPod;
  reply.sport = 5353;
  reply.daddr = fam().client;
  reply.dport = 40000;
  reply.payload = payload;
  Pkt wantReply = reply;
  wantReply.saddr = fam().node;
  wantReply.sport = kNodePort;
  auto rf = test::fragment(build(reply), 96, 9);
  auto wantRf = test::fragment(build(wantReply), 96, 9);
  for (int i = 0; i < 2; ++i) {
    Result r = run(Program::ExtOut, rf[i]);
    EXPECT_EQ(r.verdict, uint32_t(TC_ACT_OK)) << "reply fragment " << i;
    EXPECT_BYTES(wantRf[i], r.out) << "reply fragment " << i;
  }
  EXPECT_EQ(stat(FERRY_HOOK_EXT_TC_OUT, FERRY_STAT_REVNAT), 2u);
}

TEST_P(NodePortTest, EstablishedFlowStaysOnItsEndpoint) {
  addBackend(1, fam().localPod, 8080, 6, FERRY_BE_F_LOCAL);
  addService(fam().nodePortFe, kNodePort, 6, {1}, FERRY_SCOPE_EXTERNAL);
  Pkt in = fromClient();
  ingress(in);
  addBackend(2, fam().localPod2, 8080, 6, FERRY_BE_F_LOCAL);
  addService(fam().nodePortFe, kNodePort, 6, {1, 2}, FERRY_SCOPE_EXTERNAL);
  in.tcpFlags = 0x10;
  for (int i = 0; i < 8; ++i) {
    Result r = ingress(in);
    EXPECT_EQ(lastDaddrByte(r.out), 2) << "moved to another endpoint";
  }
  EXPECT_EQ(stat(hook(), FERRY_STAT_FWD_ESTABLISHED), 8u);
}

TEST_P(NodePortTest, PolicyLocalWithoutLocalEndpointDrops) {
  addService(fam().nodePortFe, kNodePort, 6, {}, FERRY_SCOPE_EXTERNAL, FERRY_SVC_F_LOCAL);
  Result r = ingress(fromClient());
  EXPECT_EQ(r.verdict, drop());
  EXPECT_EQ(stat(hook(), FERRY_STAT_DROP_NO_LOCAL), 1u);
}

TEST_P(NodePortTest, PolicyLocalKeepsClientAddress) {
  addBackend(1, fam().localPod, 8080, 6, FERRY_BE_F_LOCAL);
  addService(fam().nodePortFe, kNodePort, 6, {1}, FERRY_SCOPE_EXTERNAL, FERRY_SVC_F_LOCAL);
  Pkt in = fromClient();
  Pkt want = in;
  want.daddr = fam().localPod;
  want.dport = 8080;
  Result r = ingress(in);
  EXPECT_EQ(r.verdict, pass());
  EXPECT_BYTES(build(want), r.out);
}

TEST_P(NodePortTest, NoEndpointsRejectedByTcAfterXdpPassesIt) {
  addService(fam().nodePortFe, kNodePort, 6, {}, FERRY_SCOPE_EXTERNAL);
  auto in = build(fromClient());
  Result r = run(prog(), in, PrivateNetns::ifindex);
  if (xdp()) {
    EXPECT_EQ(r.verdict, uint32_t(XDP_PASS));
    EXPECT_EQ(hex(in), hex(r.out));
    EXPECT_EQ(stat(FERRY_HOOK_EXT_XDP, FERRY_STAT_TO_TC), 1u);
    r = run(Program::ExtIn, in, PrivateNetns::ifindex);
  }
  EXPECT_EQ(r.verdict, uint32_t(TC_ACT_REDIRECT));
  if (fam().v6) {  // ICMPv6 1/4 quoting the IPv6 header and 8 bytes of TCP
    ASSERT_EQ(r.out.size(), 14u + 40 + 8 + 40 + 8);
    EXPECT_EQ(r.out[14 + 6], 58);
    EXPECT_EQ(r.out[14 + 40], 1);
    EXPECT_EQ(r.out[14 + 41], 4);
  } else {
    ASSERT_EQ(r.out.size(), 70u);
    EXPECT_EQ(r.out[14 + 9], 1);  // ICMP
    EXPECT_EQ(r.out[14 + 20], 3);
    EXPECT_EQ(r.out[14 + 21], 3);
  }
  EXPECT_EQ(checkChecksums(r.out), "");
}

TEST_P(NodePortTest, ExternalIpIsServedOnTheServicePort) {
  addBackend(1, fam().localPod, 8080, 6, FERRY_BE_F_LOCAL);
  addService(fam().externalIp, 80, 6, {1}, FERRY_SCOPE_EXTERNAL);
  Pkt in = fromClient(fam().externalIp, 80);
  Pkt want = in;
  want.daddr = fam().localPod;
  want.dport = 8080;
  Result r = ingress(in);
  EXPECT_EQ(r.verdict, pass());
  EXPECT_BYTES(build(want), r.out);
}

TEST_P(NodePortTest, EverythingElsePassesUntouched) {
  addBackend(1, fam().localPod, 8080, 6, FERRY_BE_F_LOCAL);
  addService(fam().nodePortFe, kNodePort, 6, {1}, FERRY_SCOPE_EXTERNAL);
  addService(fam().vip, 80, 6, {1});  // a ClusterIP: internal only
  std::vector<Pkt> cases = {
      fromClient(fam().vip, 80),        // ClusterIP from outside
      fromClient(fam().notNode),        // NodePort on another address
      fromClient(fam().node, kNodePort + 1), // other port
      fromClient(fam().node, 22),
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
  truncated.resize(fam().v6 ? 14 + 40 + 10 : 40);  // inside TCP / the IPv4 header
  Result r = run(prog(), truncated, PrivateNetns::ifindex);
  EXPECT_EQ(r.verdict, pass());
  EXPECT_EQ(hex(truncated), hex(r.out));
  EXPECT_EQ(stat(hook(), FERRY_STAT_MALFORMED), 1u);
}

TEST_P(NodePortTest, LoadBalancerSourceRangesAdmitOnlyListedClients) {
  addBackend(1, fam().localPod, 8080, 6, FERRY_BE_F_LOCAL);
  addService(fam().lbIp, 80, 6, {1}, FERRY_SCOPE_EXTERNAL, FERRY_SVC_F_SRC_RANGES);
  ferry_src_range_key k{};
  k.prefixlen = fam().rangeBits;  // svc id 7, 198.18.0.100/30 or 2001:db8::100/126
  k.svc_id = 7;
  k.addr = abiAddr(fam().range);
  ASSERT_TRUE(dp_->srcRanges().update(k, 1));

  Pkt in = fromClient(fam().lbIp, 80);  // the client: listed
  Pkt want = in;
  want.daddr = fam().localPod;
  want.dport = 8080;
  Result r = ingress(in);
  EXPECT_EQ(r.verdict, pass());
  EXPECT_BYTES(build(want), r.out);

  Pkt other = in;
  other.saddr = fam().outside;
  r = ingress(other);
  EXPECT_EQ(r.verdict, drop());
  EXPECT_EQ(stat(hook(), FERRY_STAT_DROP_SRC_RANGE), 1u);
}

// ICMP errors about external flows, in each family: IPv4 "fragmentation
// needed" (RFC 1191) and port unreachable; ICMPv6 packet too big and
// port unreachable (RFC 4443).
class NodePortIcmpTest : public NodePortTest {
 protected:
  // The MTU error of the family: type, code, MTU, and a quote holding
  // the whole TCP header.
  std::vector<uint8_t> tooBig(const std::string& src, const std::string& dst,
                              const std::vector<uint8_t>& quoted) const {
    return fam().v6 ? test::icmpError(2, 0, src, dst, quoted, 40 + 28, 1280)
                    : test::icmpError(3, 4, src, dst, quoted, 48, 1400);
  }
  // Port unreachable quoting a one-byte UDP datagram whole.
  std::vector<uint8_t> portUnreach(const std::string& src, const std::string& dst,
                                   const std::vector<uint8_t>& quoted) const {
    return fam().v6 ? test::icmpError(1, 4, src, dst, quoted, 40 + 9)
                    : test::icmpError(3, 3, src, dst, quoted, 29);
  }
};

// Issue 10 case 4, NodePort to another node's endpoint (SNAT): the
// endpoint's node says "fragmentation needed" to us about our SNATed
// packet; the client gets it about its own packet to the NodePort.
TEST_P(NodePortIcmpTest, FragNeededAboutSnatedFlowGoesBackToTheClient) {
  addBackend(1, fam().remotePod, 8080);
  addService(fam().nodePortFe, kNodePort, 6, {1}, FERRY_SCOPE_EXTERNAL);
  Pkt in = fromClient();
  ingress(in);
  ferry_ct_value fwd{};
  ASSERT_TRUE(ctLookup(in, FERRY_CT_FWD, &fwd));
  Pkt data = in;
  data.tcpFlags = 0x18;
  data.payload = std::vector<uint8_t>(100, 1);
  Pkt sent = data;
  sent.saddr = fam().node;
  sent.sport = ntohs(fwd.alt_port);
  sent.daddr = fam().remotePod;
  sent.dport = 8080;
  auto err = tooBig(fam().node2, fam().node, build(sent));
  std::copy(kNode2Mac.begin(), kNode2Mac.end(), err.begin() + 6);
  std::copy(kNodeMac.begin(), kNodeMac.end(), err.begin());
  Result r = run(prog(), err, PrivateNetns::ifindex);
  if (xdp()) {  // XDP leaves ICMP errors to tc
    EXPECT_EQ(r.verdict, uint32_t(XDP_PASS));
    EXPECT_EQ(hex(err), hex(r.out));
    r = run(Program::ExtIn, err, PrivateNetns::ifindex);
  }
  EXPECT_EQ(r.verdict, uint32_t(TC_ACT_REDIRECT));
  auto want = tooBig(fam().node, fam().client, build(data));
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
TEST_P(NodePortIcmpTest, FragNeededAboutLocalEndpointFlowNamesTheNodePort) {
  addBackend(1, fam().localPod, 8080, 6, FERRY_BE_F_LOCAL);
  addService(fam().nodePortFe, kNodePort, 6, {1}, FERRY_SCOPE_EXTERNAL);
  Pkt in = fromClient();
  ingress(in);
  Pkt sent = in;
  sent.daddr = fam().localPod;
  sent.dport = 8080;
  auto err = tooBig(fam().node, fam().client, build(sent));
  Result r = run(Program::ExtOut, err);
  EXPECT_EQ(r.verdict, uint32_t(TC_ACT_OK));
  EXPECT_BYTES(tooBig(fam().node, fam().client, build(in)), r.out);
  // The endpoint's own port unreachable (UDP) likewise.
  addBackend(2, fam().localPod, 5353, 17, FERRY_BE_F_LOCAL);
  addService(fam().nodePortFe, kNodePort, 17, {2}, FERRY_SCOPE_EXTERNAL);
  Pkt u = fromClient();
  u.proto = 17;
  u.payload = {'x'};
  ingress(u);
  Pkt usent = u;
  usent.daddr = fam().localPod;
  usent.dport = 5353;
  r = run(Program::ExtOut, portUnreach(fam().localPod, fam().client, build(usent)));
  EXPECT_EQ(r.verdict, uint32_t(TC_ACT_OK));
  EXPECT_BYTES(portUnreach(fam().node, fam().client, build(u)), r.out);
  EXPECT_EQ(checkChecksums(r.out), "");
}

INSTANTIATE_TEST_SUITE_P(Paths, NodePortTest,
                         ::testing::Combine(::testing::Values(Path::Xdp, Path::Tc),
                                            ::testing::Values(kExt4, kExt6)),
                         pathFamilyName);
INSTANTIATE_TEST_SUITE_P(Paths, NodePortIcmpTest,
                         ::testing::Combine(::testing::Values(Path::Xdp, Path::Tc),
                                            ::testing::Values(kExt4, kExt6)),
                         pathFamilyName);

// Cases of one program at a time, in each family.
class NodePortFamilyTest : public DatapathTest, public ::testing::WithParamInterface<ExtFamily> {
 protected:
  const ExtFamily& fam() const { return GetParam(); }
};

TEST_P(NodePortFamilyTest, PodReachesNodePortOfItsOwnNode) {
  const char* client = fam().v6 ? kClient6 : kClient;
  const char* backend = fam().v6 ? kBackendB6 : kBackendB;
  ferry_node_addr na{};
  ASSERT_TRUE(dp_->nodeAddrs().update(abiAddr(fam().node), na));
  addBackend(1, backend, 8080);
  addService(fam().nodePortFe, kNodePort, 6, {1}, FERRY_SCOPE_EXTERNAL);
  Pkt in;
  in.saddr = client;
  in.daddr = fam().node;
  in.dport = kNodePort;
  Pkt want = in;
  want.daddr = backend;
  want.dport = 8080;
  Result r = run(Program::FromPod, build(in));
  EXPECT_EQ(r.verdict, uint32_t(TC_ACT_OK));
  EXPECT_BYTES(build(want), r.out);

  Pkt reply;
  reply.saddr = backend;
  reply.sport = 8080;
  reply.daddr = client;
  reply.dport = 40000;
  Pkt wantReply = reply;
  wantReply.saddr = fam().node;
  wantReply.sport = kNodePort;
  r = run(Program::ToPod, build(reply));
  EXPECT_BYTES(build(wantReply), r.out);
}

// A frame built by a local stack with TX checksum offload (a veth from a
// container's netns) carries a partial checksum: only the folded
// pseudo-header sum. XDP must not rewrite and send it on (the result
// would be a bad checksum on the wire): it leaves it to tc untouched.
TEST_P(NodePortFamilyTest, XdpLeavesFramesWithPartialChecksumToTc) {
  ferry_node_addr na{};
  ASSERT_TRUE(dp_->nodeAddrs().update(abiAddr(fam().node), na));
  addBackend(1, fam().remotePod, 8080);
  addService(fam().nodePortFe, kNodePort, 6, {1}, FERRY_SCOPE_EXTERNAL);
  Pkt in;
  in.saddr = fam().client;
  in.daddr = fam().node;
  in.dport = kNodePort;
  in.payload = {'p', 'a', 'r', 't'};
  auto frame = build(in);
  // the partial form: ~checksum of the pseudo-header only
  // (RFC 793: addresses, 0, protocol, length; RFC 8200 8.1 likewise)
  size_t l3 = 14, alen = fam().v6 ? 16 : 4, l4 = l3 + (fam().v6 ? 40 : 20);
  uint16_t l4len = frame.size() - l4;
  std::vector<uint8_t> pseudo(frame.begin() + l3 + (fam().v6 ? 8 : 12),
                              frame.begin() + l3 + (fam().v6 ? 8 : 12) + 2 * alen);
  for (uint8_t b : {uint8_t(0), uint8_t(6), uint8_t(l4len >> 8), uint8_t(l4len & 0xff)})
    pseudo.push_back(b);
  uint16_t partial = ~test::inetChecksum(pseudo.data(), pseudo.size());
  frame[l4 + 16] = partial >> 8;
  frame[l4 + 17] = partial & 0xff;
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

INSTANTIATE_TEST_SUITE_P(Families, NodePortFamilyTest, ::testing::Values(kExt4, kExt6),
                         [](const auto& info) { return std::string(info.param.name); });

}  // namespace
}  // namespace ferry
