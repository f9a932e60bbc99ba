// Golden-packet tests of the conntrack rules that follow netfilter: flows
// follow service membership, reply tuples stay unique (source port
// remapped on a clash), a SYN on a closed tuple is a new flow, direct
// flows are kept apart from translated ones, and ICMP errors about
// tracked flows are translated with every checksum. Exact bytes in, exact
// bytes out, through BPF_PROG_TEST_RUN.
#include "conntrack_util.h"

namespace ferry {
namespace {

using test::icmpError;

constexpr const char* kVipB = "198.19.0.11";

// A TCP/UDP packet from backend to client (a reply as it leaves the
// backend).
Pkt replyFrom(const char* baddr, uint16_t bport, const char* daddr, uint16_t dport,
              uint8_t proto = 6, uint8_t flags = 0x12) {
  Pkt r;
  r.proto = proto;
  r.saddr = baddr;
  r.sport = bport;
  r.daddr = daddr;
  r.dport = dport;
  r.tcpFlags = flags;
  return r;
}

class ConntrackTest : public DatapathTest {};

// Issue 10 case 1: the endpoint leaves uz's slice but stays in uzkeep.
TEST_F(ConntrackTest, FlowLeavesBackendThatLeftItsServiceButStaysInAnother) {
  addBackend(1, kBackendA, 5353, 17);
  addService(kVip, 53, 17, {1}, FERRY_SCOPE_CLUSTER, 0, 7);   // uz
  addService(kVipB, 53, 17, {1}, FERRY_SCOPE_CLUSTER, 0, 8);  // uzkeep
  Pkt p;
  p.proto = 17;
  p.dport = 53;
  p.payload = {'q'};
  Result r = run(Program::FromPod, build(p));
  EXPECT_EQ(r.out[30 + 3], 3) << "first packet goes to the endpoint";

  addService(kVip, 53, 17, {}, FERRY_SCOPE_CLUSTER, 0, 7);  // uz: endpoints: []
  r = run(Program::FromPod, build(p));
  EXPECT_EQ(r.verdict, uint32_t(TC_ACT_REDIRECT)) << "must be refused, not sent to the old endpoint";
  EXPECT_EQ(r.out[14 + 9], 1) << "ICMP port unreachable";
  EXPECT_EQ(r.out[14 + 20], 3);
  EXPECT_EQ(r.out[14 + 21], 3);
  EXPECT_EQ(stat(FERRY_STAT_REJECT_NO_BACKEND), 1u);
  ferry_ct_value v{};
  EXPECT_FALSE(ctLookup(p, FERRY_CT_FWD, &v)) << "the stale flow is gone";
}

TEST_F(ConntrackTest, FlowMovesToTheServicesNewEndpoint) {
  addBackend(1, kBackendA, 5353, 17);
  addBackend(2, kBackendB, 5353, 17);
  addService(kVip, 53, 17, {1}, FERRY_SCOPE_CLUSTER, 0, 7);
  addService(kVipB, 53, 17, {1}, FERRY_SCOPE_CLUSTER, 0, 8);
  Pkt p;
  p.proto = 17;
  p.dport = 53;
  run(Program::FromPod, build(p));
  addService(kVip, 53, 17, {2}, FERRY_SCOPE_CLUSTER, 0, 7);  // a -> c
  Result r = run(Program::FromPod, build(p));
  Pkt want = p;
  want.daddr = kBackendB;
  want.dport = 5353;
  EXPECT_BYTES(build(want), r.out);
  EXPECT_EQ(stat(FERRY_STAT_FWD_RESELECT), 1u);
  // the old reply translation went with it
  Pkt oldReply = replyFrom(kBackendA, 5353, kClient, 40000, 17);
  r = run(Program::ToPod, build(oldReply));
  EXPECT_EQ(hex(build(oldReply)), hex(r.out));
}

// Issue 10 case 2: one client port, two ClusterIPs, one backend.
TEST_F(ConntrackTest, ClashingReplyTupleGetsARemappedSourcePort) {
  addBackend(1, kBackendB, 8080);
  addService(kVip, 80, 6, {1}, FERRY_SCOPE_CLUSTER, 0, 7);   // va
  addService(kVipB, 80, 6, {1}, FERRY_SCOPE_CLUSTER, 0, 8);  // vb
  Pkt a;  // 198.18.129.2:40000 -> va
  Pkt b = a;
  b.daddr = kVipB;
  Result ra = run(Program::FromPod, build(a));
  Pkt wantA = a;
  wantA.daddr = kBackendB;
  wantA.dport = 8080;
  EXPECT_BYTES(build(wantA), ra.out);

  Result rb = run(Program::FromPod, build(b));
  ferry_ct_value fb{};
  ASSERT_TRUE(ctLookup(b, FERRY_CT_FWD, &fb));
  uint16_t remapped = ntohs(fb.alt_port);
  EXPECT_NE(remapped, 40000);
  EXPECT_GE(remapped, 61000);
  EXPECT_TRUE(fb.flags & FERRY_CT_F_REMAP);
  Pkt wantB = b;
  wantB.daddr = kBackendB;
  wantB.dport = 8080;
  wantB.sport = remapped;
  EXPECT_BYTES(build(wantB), rb.out);
  EXPECT_EQ(checkChecksums(rb.out), "");

  // Each reply finds its own flow, and the client sees its own port.
  Pkt repA = replyFrom(kBackendB, 8080, kClient, 40000);
  repA.payload = {'A'};
  Pkt wantRepA = repA;
  wantRepA.saddr = kVip;
  wantRepA.sport = 80;
  EXPECT_BYTES(build(wantRepA), run(Program::ToPod, build(repA)).out);
  Pkt repB = replyFrom(kBackendB, 8080, kClient, remapped);
  repB.payload = {'B'};
  Pkt wantRepB = repB;
  wantRepB.saddr = kVipB;
  wantRepB.sport = 80;
  wantRepB.dport = 40000;
  Result r = run(Program::ToPod, build(repB));
  EXPECT_BYTES(build(wantRepB), r.out);
  EXPECT_EQ(checkChecksums(r.out), "");

  // Later packets of b keep the remapped port.
  b.tcpFlags = 0x10;
  wantB.tcpFlags = 0x10;
  EXPECT_BYTES(build(wantB), run(Program::FromPod, build(b)).out);
}

// A SYN on a closed (FIN or RST) tuple is a new connection: it is
// balanced afresh and gets full-length entries.
TEST_F(ConntrackTest, SynOnClosedTupleStartsANewFlow) {
  const uint64_t sec = 1000000000ull;
  setNow(1000 * sec);
  addBackend(1, kBackendA, 8080);
  addService(kVip, 80, 6, {1});
  for (uint8_t close : {uint8_t(0x14) /* RST-ACK */, uint8_t(0x11) /* FIN-ACK */}) {
    Pkt p;
    run(Program::FromPod, build(p));
    p.tcpFlags = close;
    run(Program::FromPod, build(p));
    ferry_ct_value v{};
    ASSERT_TRUE(ctLookup(p, FERRY_CT_FWD, &v));
    EXPECT_TRUE(v.flags & FERRY_CT_F_CLOSING);
    Pkt syn;
    Result r = run(Program::FromPod, build(syn));
    Pkt want = syn;
    want.daddr = kBackendA;
    want.dport = 8080;
    EXPECT_BYTES(build(want), r.out);
    ASSERT_TRUE(ctLookup(syn, FERRY_CT_FWD, &v));
    EXPECT_FALSE(v.flags & FERRY_CT_F_CLOSING);
    EXPECT_EQ(v.expires_ns, 1000 * sec + 6 * 3600 * sec);
    // and the reply direction is the new flow's too
    Pkt reply = replyFrom(kBackendA, 8080, kClient, 40000);
    ASSERT_TRUE(ctLookup(reply, FERRY_CT_REV, &v));
    EXPECT_FALSE(v.flags & FERRY_CT_F_CLOSING);
    EXPECT_EQ(v.expires_ns, 1000 * sec + 6 * 3600 * sec);
    // close it for the next round
    syn.tcpFlags = close;
    run(Program::FromPod, build(syn));
  }
  EXPECT_EQ(stat(FERRY_STAT_CT_REPLACED), 3u);  // each round opens on the last round's closed tuple too
}

// Issue 10 case 3: through the ClusterIP, closed, then directly to the
// pod from the same port: the direct flow's replies are its own. Both
// families (IPv6: ct6_direct).
class ConntrackFamilyTest : public DatapathFamilyTest {};

TEST_P(ConntrackFamilyTest, DirectConnectionAfterClosedTranslatedFlowIsUntouched) {
  addBackend(1, fam().backendB, 8080);
  addService(fam().vip, 80, 6, {1});
  for (uint8_t close : {uint8_t(0x14), uint8_t(0x11)}) {
    Pkt p = toVip();
    run(Program::FromPod, build(p));
    if (close == 0x11) {  // FIN from both sides
      p.tcpFlags = 0x11;
      run(Program::FromPod, build(p));
      run(Program::ToPod, build(replyFrom(fam().backendB, 8080, fam().client, 40000, 6, 0x11)));
    } else {
      p.tcpFlags = close;
      run(Program::FromPod, build(p));
    }
    Pkt direct = toVip();
    direct.daddr = fam().backendB;
    direct.dport = 8080;
    auto in = build(direct);
    Result r = run(Program::FromPod, in);
    EXPECT_EQ(hex(in), hex(r.out));
    Pkt synack = replyFrom(fam().backendB, 8080, fam().client, 40000);
    auto rin = build(synack);
    r = run(Program::ToPod, rin);
    EXPECT_EQ(hex(rin), hex(r.out)) << "the direct flow's SYN-ACK was translated to the ClusterIP";
  }
  // the first round replaced the closed flow; in the second the translated
  // flow got a remapped port beside the direct flow's live identity entries
  EXPECT_EQ(stat(FERRY_HOOK_FROM_POD, FERRY_STAT_CT_REPLACED), 1u);
}

// The same while the translated flow is still open: the direct flow gets
// a null binding (its own source port), and both flows' replies are
// right; the direct flow's next packets keep that port.
TEST_P(ConntrackFamilyTest, DirectConnectionBesideALiveTranslatedFlowIsRemapped) {
  addBackend(1, fam().backendB, 8080);
  addService(fam().vip, 80, 6, {1});
  Pkt p = toVip();
  run(Program::FromPod, build(p));
  Pkt direct = toVip();
  direct.daddr = fam().backendB;
  direct.dport = 8080;
  Result r = run(Program::FromPod, build(direct));
  EXPECT_EQ(r.verdict, uint32_t(TC_ACT_OK));
  ferry_ct_value v{};
  ASSERT_TRUE(ctLookup(direct, FERRY_CT_FWD, &v));
  EXPECT_TRUE(v.flags & FERRY_CT_F_NULLBIND);
  uint16_t port = ntohs(v.alt_port);
  EXPECT_GE(port, 61000);
  Pkt want = direct;
  want.sport = port;
  EXPECT_BYTES(build(want), r.out);
  EXPECT_EQ(checkChecksums(r.out), "");
  EXPECT_EQ(stat(FERRY_STAT_NULLBIND), 1u);

  Pkt rep = replyFrom(fam().backendB, 8080, fam().client, port);
  Pkt wantRep = rep;
  wantRep.dport = 40000;
  EXPECT_BYTES(build(wantRep), run(Program::ToPod, build(rep)).out);
  Pkt repSvc = replyFrom(fam().backendB, 8080, fam().client, 40000);
  Pkt wantSvc = repSvc;
  wantSvc.saddr = fam().vip;
  wantSvc.sport = 80;
  EXPECT_BYTES(build(wantSvc), run(Program::ToPod, build(repSvc)).out);

  Pkt ack = direct;
  ack.tcpFlags = 0x10;
  ack.payload = {'d'};
  Pkt wantAck = ack;
  wantAck.sport = port;
  EXPECT_BYTES(build(wantAck), run(Program::FromPod, build(ack)).out);
  EXPECT_EQ(stat(FERRY_STAT_NULLBIND), 2u);
}

INSTANTIATE_TEST_SUITE_P(Families, ConntrackFamilyTest, ::testing::Values(kFamily4, kFamily6),
                         [](const auto& info) { return std::string(info.param.name); });

// A FIN or RST of a flow nobody tracks does not start one (it would
// claim a reply tuple for a connection that ended).
TEST_F(ConntrackTest, StrayRstStartsNoFlow) {
  addBackend(1, kBackendA, 8080);
  addService(kVip, 80, 6, {1});
  Pkt p;
  p.tcpFlags = 0x14;
  auto in = build(p);
  Result r = run(Program::FromPod, in);
  EXPECT_EQ(hex(in), hex(r.out));
  ferry_ct_value v{};
  EXPECT_FALSE(ctLookup(p, FERRY_CT_FWD, &v));
}

// --- ICMP errors ---------------------------------------------------------

// Issue 10 case 4: "fragmentation needed" from a node on the path about
// the client's translated packet (TCP, the whole header quoted): outer
// and embedded headers name the ClusterIP again, every checksum right.
TEST_F(ConntrackTest, FragNeededAboutTcpFlowIsTranslatedBack) {
  addBackend(1, kBackendA, 8080);
  addService(kVip, 80, 6, {1});
  Pkt p;
  p.tcpFlags = 0x18;
  p.seq = 0x01020304;
  p.payload = std::vector<uint8_t>(40, 0x5a);
  run(Program::FromPod, build(Pkt{}));  // SYN: creates the flow
  Pkt sent = p;  // as it left the node: translated
  sent.daddr = kBackendA;
  sent.dport = 8080;
  auto in = icmpError(3, 4, kNode, kClient, build(sent), 28 + 20 + 8, 1400);
  ASSERT_EQ(checkChecksums(in), "");
  Result r = run(Program::ToPod, in);
  EXPECT_EQ(r.verdict, uint32_t(TC_ACT_OK));
  auto want = icmpError(3, 4, kVip, kClient, build(p), 28 + 20 + 8, 1400);
  EXPECT_BYTES(want, r.out);
  EXPECT_EQ(checkChecksums(r.out), "");
  EXPECT_EQ(test::checkEmbedded(r.out), "");
  EXPECT_EQ(stat(FERRY_HOOK_TO_POD, FERRY_STAT_ICMP_RELATED), 1u);
}

// Only 8 bytes of TCP quoted (RFC 792's minimum): the embedded TCP
// checksum is not there, the rest is translated.
TEST_F(ConntrackTest, FragNeededWithShortQuoteIsTranslated) {
  addBackend(1, kBackendA, 8080);
  addService(kVip, 80, 6, {1});
  run(Program::FromPod, build(Pkt{}));
  Pkt sent;
  sent.daddr = kBackendA;
  sent.dport = 8080;
  auto in = icmpError(3, 4, kNode, kClient, build(sent), 28, 1400);
  Result r = run(Program::ToPod, in);
  auto want = icmpError(3, 4, kVip, kClient, build(Pkt{}), 28, 1400);
  EXPECT_BYTES(want, r.out);
  EXPECT_EQ(checkChecksums(r.out), "");
}

// UDP to a targetPort without a listener: the backend pod's own port
// unreachable leaves it through its veth (from_pod) and reaches the
// client as coming from the ClusterIP.
TEST_F(ConntrackTest, PortUnreachableAboutUdpFlowIsTranslatedBack) {
  addBackend(1, kBackendA, 5353, 17);
  addService(kVip, 53, 17, {1});
  Pkt q;
  q.proto = 17;
  q.dport = 53;
  q.payload = {'q', 'u', 'e', 'r', 'y'};
  run(Program::FromPod, build(q));
  Pkt sent = q;
  sent.daddr = kBackendA;
  sent.dport = 5353;
  auto in = icmpError(3, 3, kBackendA, kClient, build(sent), 28 + 5);
  for (Program prog : {Program::FromPod, Program::ToPod}) {
    Result r = run(prog, in);
    EXPECT_EQ(r.verdict, uint32_t(TC_ACT_OK));
    auto want = icmpError(3, 3, kVip, kClient, build(q), 28 + 5);
    EXPECT_BYTES(want, r.out);
    EXPECT_EQ(checkChecksums(r.out), "");
    EXPECT_EQ(test::checkEmbedded(r.out), "");
  }
}

// The client's own port unreachable about a reply (UDP from the
// ClusterIP to a closed socket): to the backend, in its terms.
TEST_F(ConntrackTest, ClientsErrorAboutAReplyReachesTheBackendInItsTerms) {
  addBackend(1, kBackendB, 5353, 17);
  addService(kVip, 53, 17, {1});
  Pkt q;
  q.proto = 17;
  q.dport = 53;
  run(Program::FromPod, build(q));
  Pkt seen = replyFrom(kVip, 53, kClient, 40000, 17);  // the reply as the client got it
  seen.payload = {'a'};
  auto in = icmpError(3, 3, kClient, kVip, build(seen), 28 + 1);
  Result r = run(Program::FromPod, in);
  Pkt orig = replyFrom(kBackendB, 5353, kClient, 40000, 17);
  orig.payload = {'a'};
  auto want = icmpError(3, 3, kClient, kBackendB, build(orig), 28 + 1);
  EXPECT_BYTES(want, r.out);
  EXPECT_EQ(checkChecksums(r.out), "");
}

// The remapped flow of a clash: the error names the client's own port.
TEST_F(ConntrackTest, IcmpAboutRemappedFlowNamesTheClientsPort) {
  addBackend(1, kBackendB, 8080);
  addService(kVip, 80, 6, {1}, FERRY_SCOPE_CLUSTER, 0, 7);
  addService(kVipB, 80, 6, {1}, FERRY_SCOPE_CLUSTER, 0, 8);
  Pkt a, b;
  b.daddr = kVipB;
  run(Program::FromPod, build(a));
  run(Program::FromPod, build(b));
  ferry_ct_value fb{};
  ASSERT_TRUE(ctLookup(b, FERRY_CT_FWD, &fb));
  Pkt sent = b;
  sent.daddr = kBackendB;
  sent.dport = 8080;
  sent.sport = ntohs(fb.alt_port);
  Result r = run(Program::ToPod, icmpError(3, 4, "198.18.0.12", kClient, build(sent), 48, 1400));
  EXPECT_BYTES(icmpError(3, 4, kVipB, kClient, build(b), 48, 1400), r.out);
}

TEST_F(ConntrackTest, IcmpAboutUnknownFlowsAndNonErrorsPassUntouched) {
  addBackend(1, kBackendA, 8080);
  addService(kVip, 80, 6, {1});
  Pkt sent;
  sent.daddr = kBackendA;
  sent.dport = 8080;
  auto unknown = icmpError(3, 4, kNode, kClient, build(sent), 48, 1400);
  EXPECT_EQ(hex(unknown), hex(run(Program::ToPod, unknown).out));
  run(Program::FromPod, build(Pkt{}));
  auto echo = icmpError(8, 0, kNode, kClient, build(sent), 48);  // echo request
  EXPECT_EQ(hex(echo), hex(run(Program::ToPod, echo).out));
  auto shortErr = icmpError(3, 4, kNode, kClient, build(sent), 24, 1400);  // < 8 bytes of L4
  EXPECT_EQ(hex(shortErr), hex(run(Program::ToPod, shortErr).out));
}

}  // namespace
}  // namespace ferry
