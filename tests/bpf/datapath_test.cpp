// Golden-packet tests of the tc programs through BPF_PROG_TEST_RUN:
// crafted input, exact expected output bytes, verdicts and the conntrack
// state left behind.
#include "conntrack_util.h"
#include "fixture.h"

#include <set>

namespace ferry {
namespace {

TEST_P(DatapathFamilyTest, TcpForwardTranslatesToBackendAndTracksBothDirections) {
  addBackend(1, fam().backendA, 8080);
  addService(fam().vip, 80, 6, {1});
  Pkt in = toVip();
  in.payload = {'h', 'i'};
  Pkt want = in;
  want.daddr = fam().backendA;
  want.dport = 8080;

  Result r = run(Program::FromPod, build(in));
  EXPECT_EQ(r.verdict, TC_ACT_OK);
  EXPECT_BYTES(build(want), r.out);
  EXPECT_EQ(checkChecksums(r.out), "");
  EXPECT_EQ(stat(FERRY_STAT_FWD_NEW), 1u);

  ferry_ct_value fwd{}, rev{};
  ASSERT_TRUE(ctLookup(in, FERRY_CT_FWD, &fwd));
  EXPECT_EQ(fwd.backend_id, 1u);
  EXPECT_EQ(ntohs(fwd.nat_port), 8080);
  EXPECT_EQ(fwd.svc_id, 7u);
  ASSERT_TRUE(ctLookup(fromBackend(fam().backendA, 8080), FERRY_CT_REV, &rev));
  EXPECT_EQ(std::memcmp(rev.nat_addr.b, abiAddr(fam().vip).b, 16), 0);
  EXPECT_EQ(ntohs(rev.nat_port), 80);
}

TEST_P(DatapathFamilyTest, TcpReplyTranslatedBackToServiceAddress) {
  addBackend(1, fam().backendA, 8080);
  addService(fam().vip, 80, 6, {1});
  run(Program::FromPod, build(toVip()));

  Pkt reply = fromBackend(fam().backendA, 8080);
  reply.tcpFlags = 0x12;  // SYN-ACK
  reply.payload = {1, 2, 3};
  Pkt want = reply;
  want.saddr = fam().vip;
  want.sport = 80;

  Result r = run(Program::ToPod, build(reply));
  EXPECT_EQ(r.verdict, TC_ACT_OK);
  EXPECT_BYTES(build(want), r.out);
  EXPECT_EQ(checkChecksums(r.out), "");
  EXPECT_EQ(stat(FERRY_STAT_REVNAT), 1u);
}

TEST_P(DatapathFamilyTest, UdpForwardAndReply) {
  addBackend(1, fam().backendA, 5353, 17);
  addService(fam().vip, 53, 17, {1});
  Pkt in = toVip();
  in.proto = 17;
  in.dport = 53;
  in.payload = {'q', 'u', 'e', 'r', 'y'};
  Pkt want = in;
  want.daddr = fam().backendA;
  want.dport = 5353;
  Result r = run(Program::FromPod, build(in));
  EXPECT_EQ(r.verdict, TC_ACT_OK);
  EXPECT_BYTES(build(want), r.out);

  Pkt reply = fromBackend(fam().backendA, 5353);
  reply.proto = 17;
  reply.payload = {'a'};
  Pkt wantReply = reply;
  wantReply.saddr = fam().vip;
  wantReply.sport = 53;
  r = run(Program::ToPod, build(reply));
  EXPECT_BYTES(build(wantReply), r.out);
  EXPECT_EQ(checkChecksums(r.out), "");
  EXPECT_EQ(stat(FERRY_STAT_REVNAT), 1u);
}

TEST_F(DatapathTest, UdpWithoutChecksumKeepsNoChecksum) {
  addBackend(1, kBackendA, 5353, 17);
  addService(kVip, 53, 17, {1});
  Pkt in;
  in.proto = 17;
  in.dport = 53;
  in.udpNoChecksum = true;
  in.payload = {'x'};
  Pkt want = in;
  want.daddr = kBackendA;
  want.dport = 5353;
  Result r = run(Program::FromPod, build(in));
  EXPECT_BYTES(build(want), r.out);
}

TEST_F(DatapathTest, IpOptionsAreTranslatedAtTheRightOffset) {
  addBackend(1, kBackendA, 8080);
  addService(kVip, 80, 6, {1});
  Pkt in;
  in.ipOptions = {0x01, 0x01, 0x01, 0x00};  // NOP NOP NOP EOL
  Pkt want = in;
  want.daddr = kBackendA;
  want.dport = 8080;
  Result r = run(Program::FromPod, build(in));
  EXPECT_EQ(r.verdict, TC_ACT_OK);
  EXPECT_BYTES(build(want), r.out);
  EXPECT_EQ(checkChecksums(r.out), "");
}

TEST_F(DatapathTest, NonServiceTrafficPassesUntouched) {
  addBackend(1, kBackendA, 8080);
  addService(kVip, 80, 6, {1});
  std::vector<Pkt> cases(4);
  cases[0].daddr = kBackendB;                    // not a service address
  cases[1].dport = 81;                           // service address, other port
  cases[2].proto = 17;                           // other protocol
  cases[3].daddr = "198.19.0.11";                // other service address
  for (const Pkt& p : cases) {
    auto in = build(p);
    Result r = run(Program::FromPod, in);
    EXPECT_EQ(r.verdict, TC_ACT_OK);
    EXPECT_EQ(hex(in), hex(r.out));
    r = run(Program::ToPod, in);
    EXPECT_EQ(hex(in), hex(r.out));
  }
  EXPECT_EQ(stat(FERRY_STAT_PASS), 8u);
}

TEST_F(DatapathTest, MalformedAndTruncatedPacketsPassUntouched) {
  addBackend(1, kBackendA, 8080);
  addService(kVip, 80, 6, {1});
  auto full = build(Pkt{});
  std::vector<std::vector<uint8_t>> cases;
  // L4 header cut short. (BPF_PROG_TEST_RUN refuses IPv4 frames that end
  // inside the IP header, so those are checked by the verifier's bounds
  // checks alone.)
  for (size_t len : {34, 40, 53}) cases.emplace_back(full.begin(), full.begin() + len);
  auto badIhl = full;
  badIhl[14] = 0x44;  // ihl 4 < 5
  cases.push_back(badIhl);
  auto badVersion = full;
  badVersion[14] = 0x65;
  cases.push_back(badVersion);
  auto shortTotLen = full;
  shortTotLen[16] = 0;
  shortTotLen[17] = 10;  // total length below header length
  cases.push_back(shortTotLen);
  auto badDoff = full;
  badDoff[14 + 20 + 12] = 0x20;  // data offset 2 words
  cases.push_back(badDoff);
  for (const auto& in : cases) {
    for (Program prog : {Program::FromPod, Program::ToPod}) {
      Result r = run(prog, in);
      EXPECT_EQ(r.verdict, TC_ACT_OK);
      EXPECT_EQ(hex(in), hex(r.out));
    }
  }
  EXPECT_EQ(stat(FERRY_STAT_MALFORMED), 2 * cases.size());
}

// Fragments are tracked (DatapathFamilyTest's fragment cases); what
// passes untouched: later fragments of datagrams whose first fragment was
// not seen, and ICMP fragments.
TEST_F(DatapathTest, UnknownLaterFragmentsAndIcmpFragmentsPassUntouched) {
  addBackend(1, kBackendA, 8080);
  addService(kVip, 80, 6, {1});
  for (uint16_t frag : {0x0010 /* offset */, 0x2010 /* offset, MF */}) {
    Pkt p;
    p.fragOff = frag;
    auto in = build(p);
    Result r = run(Program::FromPod, in);
    EXPECT_EQ(r.verdict, TC_ACT_OK);
    EXPECT_EQ(hex(in), hex(r.out));
  }
  auto icmp = test::icmpError(3, 4, kNode, kClient, build(Pkt{}), 48, 1400);
  icmp[14 + 6] = 0x20;  // MF: a first fragment
  icmp[14 + 10] = icmp[14 + 11] = 0;
  uint16_t c = test::inetChecksum(&icmp[14], 20);
  icmp[14 + 10] = c >> 8;
  icmp[14 + 11] = c & 0xff;
  run(Program::FromPod, build(Pkt{}));
  Result r = run(Program::ToPod, icmp);
  EXPECT_EQ(hex(icmp), hex(r.out));
  EXPECT_EQ(stat(FERRY_STAT_FRAGMENT), 3u);
  EXPECT_EQ(stat(FERRY_STAT_ICMP_RELATED), 0u);
  Pkt df;
  df.sport = 40001;
  df.fragOff = 0x4000;  // DF alone is not a fragment
  run(Program::FromPod, build(df));
  EXPECT_EQ(stat(FERRY_STAT_FWD_NEW), 2u);
}

TEST_F(DatapathTest, NonIpv4FramesPass) {
  addService(kVip, 80, 6, {});
  auto arp = build(Pkt{});
  arp[12] = 0x08;
  arp[13] = 0x06;
  Result r = run(Program::FromPod, arp);
  EXPECT_EQ(r.verdict, TC_ACT_OK);
  EXPECT_EQ(hex(arp), hex(r.out));
}

TEST_F(DatapathTest, NoEndpointsRejectsWithIcmpPortUnreachable) {
  addService(kVip, 80, 6, {});
  Pkt in;
  in.payload = std::vector<uint8_t>(30, 0xab);
  auto frame = build(in);
  Result r = run(Program::FromPod, frame);
  EXPECT_EQ(r.verdict, TC_ACT_REDIRECT);
  EXPECT_EQ(stat(FERRY_STAT_REJECT_NO_BACKEND), 1u);

  // Expected: MACs swapped, IP VIP -> client, ICMP 3/3 quoting the
  // original IP header and the first 8 bytes of TCP.
  std::vector<uint8_t> want(14 + 20 + 8 + 20 + 8, 0);
  std::memcpy(&want[0], &frame[6], 6);
  std::memcpy(&want[6], &frame[0], 6);
  want[12] = 0x08;
  uint8_t* ip = &want[14];
  ip[0] = 0x45;
  ip[1] = 0xc0;
  ip[3] = 56;
  ip[8] = 64;
  ip[9] = 1;
  std::memcpy(ip + 12, &frame[14 + 16], 4);  // src = VIP
  std::memcpy(ip + 16, &frame[14 + 12], 4);  // dst = client
  uint16_t c = test::inetChecksum(ip, 20);
  ip[10] = c >> 8;
  ip[11] = c & 0xff;
  uint8_t* icmp = ip + 20;
  icmp[0] = 3;
  icmp[1] = 3;
  std::memcpy(icmp + 8, &frame[14], 28);
  c = test::inetChecksum(icmp, 36);
  icmp[2] = c >> 8;
  icmp[3] = c & 0xff;
  EXPECT_BYTES(want, r.out);
  EXPECT_EQ(checkChecksums(r.out), "");

  Pkt udp;
  udp.proto = 17;
  udp.dport = 53;
  addService(kVip, 53, 17, {});
  r = run(Program::FromPod, build(udp));
  EXPECT_EQ(r.verdict, TC_ACT_REDIRECT);
  ASSERT_EQ(r.out.size(), 70u);
  EXPECT_EQ(r.out[14 + 9], 1);  // ICMP
  EXPECT_EQ(checkChecksums(r.out), "");
}

TEST_P(DatapathFamilyTest, HairpinSourceNatsToNodeAndRedirectsBack) {
  addBackend(1, fam().client, 8080);  // the client is the only backend
  addService(fam().vip, 80, 6, {1});
  Pkt in = toVip();
  Pkt want = in;
  want.saddr = fam().node;
  want.daddr = fam().client;
  want.dport = 8080;
  std::swap(want.srcMac, want.dstMac);
  Result r = run(Program::FromPod, build(in));
  EXPECT_EQ(r.verdict, TC_ACT_REDIRECT);
  EXPECT_BYTES(build(want), r.out);
  EXPECT_EQ(stat(FERRY_STAT_HAIRPIN), 1u);

  // The pod answers its "client", the node address: back to VIP -> pod.
  Pkt reply = fromBackend(fam().client, 8080);
  reply.daddr = fam().node;
  reply.tcpFlags = 0x12;
  Pkt wantReply = reply;
  wantReply.saddr = fam().vip;
  wantReply.sport = 80;
  wantReply.daddr = fam().client;
  std::swap(wantReply.srcMac, wantReply.dstMac);
  r = run(Program::FromPod, build(reply));
  EXPECT_EQ(r.verdict, TC_ACT_REDIRECT);
  EXPECT_BYTES(build(wantReply), r.out);
  EXPECT_EQ(checkChecksums(r.out), "");
}

// --- ICMP / ICMPv6 errors about translated flows ---------------------------
// The same stories in both families: IPv4 (RFC 792) fragmentation needed,
// port unreachable, time exceeded; IPv6 (RFC 4443) packet too big,
// destination unreachable (port), time exceeded.

std::vector<uint8_t> pattern(size_t n);

struct IcmpKind {
  uint8_t type, code;
};
IcmpKind tooBig(const Family& f) { return f.vip == kVip6 ? IcmpKind{2, 0} : IcmpKind{3, 4}; }
IcmpKind portUnreach(const Family& f) { return f.vip == kVip6 ? IcmpKind{1, 4} : IcmpKind{3, 3}; }
IcmpKind timeExceeded(const Family& f) { return f.vip == kVip6 ? IcmpKind{3, 0} : IcmpKind{11, 0}; }
size_t ipLen(const Family& f) { return f.vip == kVip6 ? 40 : 20; }

// A router's "too big" about the client's translated TCP segment (the
// whole TCP header quoted): outer and embedded headers name the service
// address again, every checksum right, so the client lowers its PMTU.
TEST_P(DatapathFamilyTest, TooBigAboutTcpFlowIsTranslatedBack) {
  addBackend(1, fam().backendA, 8080);
  addService(fam().vip, 80, 6, {1});
  run(Program::FromPod, build(toVip()));  // SYN: creates the flow
  Pkt p = toVip();
  p.tcpFlags = 0x18;
  p.seq = 0x01020304;
  p.payload = std::vector<uint8_t>(40, 0x5a);
  Pkt sent = p;  // as it left the node: translated
  sent.daddr = fam().backendA;
  sent.dport = 8080;
  auto k = tooBig(fam());
  auto in = test::icmpError(k.type, k.code, fam().node, fam().client, build(sent),
                            ipLen(fam()) + 20 + 8, 1400);
  ASSERT_EQ(checkChecksums(in), "");
  ASSERT_EQ(test::checkEmbedded(in), "");
  Result r = run(Program::ToPod, in);
  EXPECT_EQ(r.verdict, uint32_t(TC_ACT_OK));
  auto want = test::icmpError(k.type, k.code, fam().vip, fam().client, build(p),
                              ipLen(fam()) + 20 + 8, 1400);
  EXPECT_BYTES(want, r.out);
  EXPECT_EQ(checkChecksums(r.out), "");
  EXPECT_EQ(test::checkEmbedded(r.out), "");
  EXPECT_EQ(stat(FERRY_HOOK_TO_POD, FERRY_STAT_ICMP_RELATED), 1u);
}

// UDP to a targetPort without a listener: the backend pod's own port
// unreachable (leaving through its veth, or arriving for the client)
// reaches the client as coming from the service address; the quoted UDP
// checksum follows the embedded addresses and ports.
TEST_P(DatapathFamilyTest, PortUnreachableAboutUdpFlowIsTranslatedBack) {
  addBackend(1, fam().backendA, 5353, 17);
  addService(fam().vip, 53, 17, {1});
  Pkt q = toVip();
  q.proto = 17;
  q.dport = 53;
  q.payload = {'q', 'u', 'e', 'r', 'y'};
  run(Program::FromPod, build(q));
  Pkt sent = q;
  sent.daddr = fam().backendA;
  sent.dport = 5353;
  auto k = portUnreach(fam());
  auto in = test::icmpError(k.type, k.code, fam().backendA, fam().client, build(sent),
                            ipLen(fam()) + 8 + 5);
  for (Program prog : {Program::FromPod, Program::ToPod}) {
    Result r = run(prog, in);
    EXPECT_EQ(r.verdict, uint32_t(TC_ACT_OK));
    auto want = test::icmpError(k.type, k.code, fam().vip, fam().client, build(q),
                                ipLen(fam()) + 8 + 5);
    EXPECT_BYTES(want, r.out);
    EXPECT_EQ(checkChecksums(r.out), "");
    EXPECT_EQ(test::checkEmbedded(r.out), "");
  }
  EXPECT_EQ(stat(FERRY_STAT_ICMP_RELATED), 2u);
}

// Time exceeded (traceroute through a service) quoting only 8 bytes of
// TCP: the embedded checksum is not there, the rest is translated.
TEST_P(DatapathFamilyTest, TimeExceededWithShortTcpQuoteIsTranslatedBack) {
  addBackend(1, fam().backendA, 8080);
  addService(fam().vip, 80, 6, {1});
  run(Program::FromPod, build(toVip()));
  Pkt sent = toVip();
  sent.daddr = fam().backendA;
  sent.dport = 8080;
  auto k = timeExceeded(fam());
  auto in = test::icmpError(k.type, k.code, fam().node, fam().client, build(sent),
                            ipLen(fam()) + 8);
  Result r = run(Program::ToPod, in);
  auto want = test::icmpError(k.type, k.code, fam().vip, fam().client, build(toVip()),
                              ipLen(fam()) + 8);
  EXPECT_BYTES(want, r.out);
  EXPECT_EQ(checkChecksums(r.out), "");
}

// The client's own port unreachable about a reply (UDP from the service
// address to a closed socket): to the backend, in the backend's terms.
TEST_P(DatapathFamilyTest, ClientsErrorAboutAReplyReachesTheBackendInItsTerms) {
  addBackend(1, fam().backendB, 5353, 17);
  addService(fam().vip, 53, 17, {1});
  Pkt q = toVip();
  q.proto = 17;
  q.dport = 53;
  run(Program::FromPod, build(q));
  Pkt seen = fromBackend(fam().vip, 53);  // the reply as the client got it
  seen.proto = 17;
  seen.payload = {'a'};
  auto k = portUnreach(fam());
  auto in = test::icmpError(k.type, k.code, fam().client, fam().vip, build(seen),
                            ipLen(fam()) + 8 + 1);
  Result r = run(Program::FromPod, in);
  Pkt orig = fromBackend(fam().backendB, 5353);
  orig.proto = 17;
  orig.payload = {'a'};
  auto want = test::icmpError(k.type, k.code, fam().client, fam().backendB, build(orig),
                              ipLen(fam()) + 8 + 1);
  EXPECT_BYTES(want, r.out);
  EXPECT_EQ(checkChecksums(r.out), "");
  EXPECT_EQ(test::checkEmbedded(r.out), "");
}

// Errors about no tracked flow, informational messages (echo request),
// and quotes cut short of 8 bytes of L4 pass untouched.
TEST_P(DatapathFamilyTest, IcmpAboutUnknownFlowsNonErrorsAndShortQuotesPassUntouched) {
  addBackend(1, fam().backendA, 8080);
  addService(fam().vip, 80, 6, {1});
  Pkt sent = toVip();
  sent.daddr = fam().backendA;
  sent.dport = 8080;
  auto k = tooBig(fam());
  auto unknown = test::icmpError(k.type, k.code, fam().node, fam().client, build(sent),
                                 ipLen(fam()) + 28, 1400);
  EXPECT_EQ(hex(unknown), hex(run(Program::ToPod, unknown).out));
  run(Program::FromPod, build(toVip()));
  uint8_t echo = fam().vip == kVip6 ? 128 : 8;
  auto echoReq = test::icmpError(echo, 0, fam().node, fam().client, build(sent), ipLen(fam()) + 28);
  EXPECT_EQ(hex(echoReq), hex(run(Program::ToPod, echoReq).out));
  for (size_t l4 : {0, 4, 7}) {
    auto shortErr = test::icmpError(k.type, k.code, fam().node, fam().client, build(sent),
                                    ipLen(fam()) + l4, 1400);
    for (Program prog : {Program::FromPod, Program::ToPod})
      EXPECT_EQ(hex(shortErr), hex(run(prog, shortErr).out)) << l4 << " bytes of L4";
  }
  EXPECT_EQ(stat(FERRY_STAT_ICMP_RELATED), 0u);
}

// An error quoting the first fragment of a translated datagram (offset 0,
// more fragments; IPv6: a fragment header in the quote) carries the UDP
// ports: translated back like any other quote. One quoting a later
// fragment has no ports and passes untouched (icmp.h, icmp6.h).
TEST_P(DatapathFamilyTest, ErrorQuotingAFirstFragmentIsTranslatedBackALaterOneIsNot) {
  addBackend(1, fam().backendA, 5353, 17);
  addService(fam().vip, 53, 17, {1});
  Pkt q = toVip();
  q.proto = 17;
  q.dport = 53;
  q.payload = pattern(200);
  auto in = test::fragment(build(q), 104, 0x4242);
  for (const auto& f : in) run(Program::FromPod, f);
  Pkt sent = q;
  sent.daddr = fam().backendA;
  sent.dport = 5353;
  auto wire = test::fragment(build(sent), 104, 0x4242);
  auto k = tooBig(fam());
  const size_t fragHdr = fam().vip == kVip6 ? 8 : 0;
  const size_t quote = ipLen(fam()) + fragHdr + 8 + 24;
  auto first = test::icmpError(k.type, k.code, fam().node, fam().client, wire[0], quote, 1280);
  ASSERT_EQ(checkChecksums(first), "");
  Result r = run(Program::ToPod, first);
  EXPECT_EQ(r.verdict, uint32_t(TC_ACT_OK));
  auto want = test::icmpError(k.type, k.code, fam().vip, fam().client, in[0], quote, 1280);
  EXPECT_BYTES(want, r.out);
  EXPECT_EQ(checkChecksums(r.out), "");
  EXPECT_EQ(stat(FERRY_HOOK_TO_POD, FERRY_STAT_ICMP_RELATED), 1u);

  auto later = test::icmpError(k.type, k.code, fam().node, fam().client, wire[1], quote, 1280);
  r = run(Program::ToPod, later);
  EXPECT_EQ(r.verdict, uint32_t(TC_ACT_OK));
  EXPECT_EQ(hex(later), hex(r.out));
  EXPECT_EQ(stat(FERRY_HOOK_TO_POD, FERRY_STAT_ICMP_RELATED), 1u);
}

// --- IP fragments -----------------------------------------------------------
// A datagram larger than the path's MTU arrives in fragments, and only the
// first carries the UDP header. The first is translated (its L4 checksum
// covers the whole datagram) and the later ones follow it through
// ferry_frags (addresses only), so the datagram reassembles whole.

std::vector<uint8_t> pattern(size_t n) {
  std::vector<uint8_t> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = uint8_t(i * 7 + 3);
  return v;
}

TEST_P(DatapathFamilyTest, FragmentedUdpDatagramIsTranslatedInBothDirections) {
  addBackend(1, fam().backendA, 5353, 17);
  addService(fam().vip, 53, 17, {1});
  Pkt q = toVip();
  q.proto = 17;
  q.dport = 53;
  q.payload = pattern(200);
  Pkt want = q;
  want.daddr = fam().backendA;
  want.dport = 5353;
  auto in = test::fragment(build(q), 104, 0x4242);
  auto out = test::fragment(build(want), 104, 0x4242);
  for (int i = 0; i < 2; ++i) {
    Result r = run(Program::FromPod, in[i]);
    EXPECT_EQ(r.verdict, TC_ACT_OK) << "fragment " << i;
    EXPECT_BYTES(out[i], r.out) << "fragment " << i;
  }
  EXPECT_EQ(stat(FERRY_STAT_FWD_NEW), 1u);
  EXPECT_EQ(stat(FERRY_STAT_FWD_ESTABLISHED), 1u);
  EXPECT_EQ(stat(FERRY_STAT_FRAGMENT), 0u);

  // The answer, fragmented by the backend's stack (3 fragments): back
  // from the service address, every fragment.
  Pkt a = fromBackend(fam().backendA, 5353);
  a.proto = 17;
  a.payload = pattern(300);
  Pkt wantA = a;
  wantA.saddr = fam().vip;
  wantA.sport = 53;
  auto first = test::fragment(build(a), 96, 7);
  auto firstWant = test::fragment(build(wantA), 96, 7);
  for (int i = 0; i < 2; ++i) {
    Result r = run(Program::ToPod, first[i]);
    EXPECT_EQ(r.verdict, TC_ACT_OK) << "fragment " << i;
    EXPECT_BYTES(firstWant[i], r.out) << "fragment " << i;
  }
  EXPECT_EQ(stat(FERRY_STAT_REVNAT), 2u);
}

// A later fragment whose first one was not seen (lost, reordered, or of
// another datagram) passes untouched and starts no flow.
TEST_P(DatapathFamilyTest, LaterFragmentOfAnUnknownDatagramPassesUntouched) {
  addBackend(1, fam().backendA, 5353, 17);
  addService(fam().vip, 53, 17, {1});
  Pkt q = toVip();
  q.proto = 17;
  q.dport = 53;
  q.payload = pattern(200);
  auto frags = test::fragment(build(q), 104, 0x4242);
  Result r = run(Program::FromPod, frags[1]);
  EXPECT_EQ(r.verdict, TC_ACT_OK);
  EXPECT_EQ(hex(frags[1]), hex(r.out));
  ferry_ct_value v{};
  EXPECT_FALSE(ctLookup(q, FERRY_CT_FWD, &v));
  // another datagram (identification) of the same flow does not lend it
  // its ports
  auto other = test::fragment(build(q), 104, 0x4243);
  run(Program::FromPod, other[0]);
  EXPECT_TRUE(ctLookup(q, FERRY_CT_FWD, &v));
  r = run(Program::FromPod, frags[1]);
  EXPECT_EQ(hex(frags[1]), hex(r.out));
  EXPECT_EQ(stat(FERRY_STAT_FRAGMENT), 2u);
  EXPECT_EQ(stat(FERRY_STAT_FWD_NEW), 1u);
}

TEST_F(DatapathTest, EstablishedFlowSticksAndNewFlowsSpread) {
  addBackend(1, kBackendA, 8080);
  addBackend(2, kBackendB, 8080);
  addService(kVip, 80, 6, {1, 2});
  std::set<std::string> seen;
  for (int i = 0; i < 64; ++i) {
    Pkt p;
    p.sport = 20000 + i;
    Result first = run(Program::FromPod, build(p));
    std::vector<uint8_t> dst(first.out.begin() + 30, first.out.begin() + 34);
    seen.insert(hex(dst));
    p.tcpFlags = 0x10;
    for (int j = 0; j < 3; ++j) {
      Result again = run(Program::FromPod, build(p));
      EXPECT_EQ(hex(std::vector<uint8_t>(again.out.begin() + 30, again.out.begin() + 34)),
                hex(dst));
    }
  }
  EXPECT_EQ(seen.size(), 2u) << "64 flows all went to one of two backends";
  EXPECT_EQ(stat(FERRY_STAT_FWD_NEW), 64u);
  EXPECT_EQ(stat(FERRY_STAT_FWD_ESTABLISHED), 192u);
}

TEST_F(DatapathTest, FlowMovesOnlyWhenItsBackendIsRemoved) {
  addBackend(1, kBackendA, 8080);
  addService(kVip, 80, 6, {1});
  Pkt p;
  run(Program::FromPod, build(p));
  // A second backend appears: the flow stays on A.
  addBackend(2, kBackendB, 8080);
  addService(kVip, 80, 6, {1, 2});
  p.tcpFlags = 0x10;
  for (int i = 0; i < 8; ++i) {
    Result r = run(Program::FromPod, build(p));
    EXPECT_EQ(r.out[30 + 2], 129) << "moved to another backend";
  }
  // A goes away: the flow is re-balanced onto B.
  addService(kVip, 80, 6, {2});
  ASSERT_TRUE(dp_->backends().erase(1));
  Result r = run(Program::FromPod, build(p));
  Pkt want = p;
  want.daddr = kBackendB;
  want.dport = 8080;
  EXPECT_BYTES(build(want), r.out);
  EXPECT_EQ(stat(FERRY_STAT_FWD_RESELECT), 1u);
}

TEST_F(DatapathTest, ExpiredEntryIsReplacedAndClosingShortensLife) {
  addBackend(1, kBackendA, 8080);
  addService(kVip, 80, 6, {1});
  const uint64_t sec = 1000000000ull;
  setNow(1000 * sec);
  Pkt p;
  p.proto = 17;
  addBackend(2, kBackendA, 8080, 17);
  addService(kVip, 80, 17, {2});
  run(Program::FromPod, build(p));
  ferry_ct_value v{};
  ASSERT_TRUE(ctLookup(p, FERRY_CT_FWD, &v));
  EXPECT_EQ(v.expires_ns, 1060 * sec);  // UDP: 60 s
  setNow(1061 * sec);
  run(Program::FromPod, build(p));
  EXPECT_EQ(stat(FERRY_STAT_FWD_NEW), 2u);

  Pkt t;  // TCP: 6 h, FIN -> 10 s
  run(Program::FromPod, build(t));
  ASSERT_TRUE(ctLookup(t, FERRY_CT_FWD, &v));
  EXPECT_EQ(v.expires_ns, 1061 * sec + 6 * 3600 * sec);
  t.tcpFlags = 0x11;  // FIN-ACK
  run(Program::FromPod, build(t));
  ASSERT_TRUE(ctLookup(t, FERRY_CT_FWD, &v));
  EXPECT_EQ(v.expires_ns, 1071 * sec);
  EXPECT_TRUE(v.flags & FERRY_CT_F_CLOSING);
}

INSTANTIATE_TEST_SUITE_P(Families, DatapathFamilyTest, ::testing::Values(kFamily4, kFamily6),
                         [](const auto& info) { return std::string(info.param.name); });

}  // namespace
}  // namespace ferry
