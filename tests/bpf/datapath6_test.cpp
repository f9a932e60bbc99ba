// Golden-packet tests of what only IPv6 has on the pod path: extension
// headers, the fragment header, its truncations, the forbidden zero UDP
// checksum, and the ICMPv6 refusal. The cases both families share
// (forward, reply, UDP, hairpin) are DatapathFamilyTest in
// datapath_test.cpp.
#include "conntrack_util.h"
#include "fixture.h"

namespace ferry {
namespace {

class Datapath6Test : public DatapathTest {
 protected:
  void SetUp() override {
    DatapathTest::SetUp();
    addBackend(1, kBackendA6, 8080);
    addService(kVip6, 80, 6, {1});
  }
  static Pkt toVip() {
    Pkt p;
    p.saddr = kClient6;
    p.daddr = kVip6;
    return p;
  }
  // An 8-byte options header (hop-by-hop or destination options): PadN.
  static Pkt::Ext6 opts8(uint8_t type) { return {type, {0, 0, 1, 4, 0, 0, 0, 0}}; }
  static Pkt::Ext6 frag(uint16_t offsetAndM) {
    return {44, {0, 0, uint8_t(offsetAndM >> 8), uint8_t(offsetAndM), 0, 0, 0x12, 0x34}};
  }
};

TEST_F(Datapath6Test, ExtensionHeadersAreSkippedAndTheTupleTranslated) {
  // hop-by-hop, a 24-byte routing header (type 0 segments left 0, which
  // the stack ignores), destination options, an atomic fragment (RFC 6946)
  Pkt::Ext6 routing{43, std::vector<uint8_t>(24, 0)};
  routing.bytes[1] = 2;
  for (const auto& chain : std::vector<std::vector<Pkt::Ext6>>{
           {opts8(0)}, {opts8(0), routing, opts8(60)}, {opts8(60), frag(0)}}) {
    Pkt in = toVip();
    in.ext6 = chain;
    in.payload = {'x', 'y'};
    in.sport = 40000 + chain.size();
    Pkt want = in;
    want.daddr = kBackendA6;
    want.dport = 8080;
    Result r = run(Program::FromPod, build(in));
    EXPECT_EQ(r.verdict, TC_ACT_OK);
    EXPECT_BYTES(build(want), r.out);
    EXPECT_EQ(checkChecksums(r.out), "");
  }
  EXPECT_EQ(stat(FERRY_STAT_FWD_NEW), 3u);
}

TEST_F(Datapath6Test, TooManyExtensionHeadersPassUntouched) {
  Pkt in = toVip();
  for (int i = 0; i < 7; ++i) in.ext6.push_back(opts8(60));
  auto frame = build(in);
  Result r = run(Program::FromPod, frame);
  EXPECT_EQ(r.verdict, TC_ACT_OK);
  EXPECT_EQ(hex(frame), hex(r.out));
  EXPECT_EQ(stat(FERRY_STAT_PASS), 1u);
}

// Fragments are tracked (DatapathFamilyTest's fragment cases); later
// fragments of a datagram whose first fragment was not seen pass
// untouched, as does an ICMPv6 first fragment. A first fragment is
// found behind other extension headers.
TEST_F(Datapath6Test, UnknownLaterFragmentsPassUntouchedAndFirstOnesAreFoundBehindOptions) {
  for (uint16_t fo : {0x0008 /* offset 1, last */, 0x0009 /* offset 1, M */}) {
    Pkt in = toVip();
    in.ext6 = {frag(fo)};
    auto frame = build(in);
    for (Program prog : {Program::FromPod, Program::ToPod}) {
      Result r = run(prog, frame);
      EXPECT_EQ(r.verdict, TC_ACT_OK);
      EXPECT_EQ(hex(frame), hex(r.out));
    }
  }
  EXPECT_EQ(stat(FERRY_STAT_FRAGMENT), 4u);
  EXPECT_EQ(stat(FERRY_STAT_FWD_NEW), 0u);
  auto icmp = test::icmpError(2, 0, kNode6, kClient6, build(toVip()), 48, 1400);
  std::vector<uint8_t> fh{58, 0, 0, 1, 0, 0, 0x12, 0x34};  // first fragment (M)
  icmp.insert(icmp.begin() + 14 + 40, fh.begin(), fh.end());
  icmp[14 + 6] = 44;
  icmp[14 + 5] += 8;
  Result r = run(Program::ToPod, icmp);
  EXPECT_EQ(hex(icmp), hex(r.out));
  EXPECT_EQ(stat(FERRY_STAT_FRAGMENT), 5u);
  // hop-by-hop, then the first fragment (M set): translated
  Pkt in = toVip();
  in.ext6 = {opts8(0), frag(0x0001)};
  Pkt want = in;
  want.daddr = kBackendA6;
  want.dport = 8080;
  r = run(Program::FromPod, build(in));
  EXPECT_BYTES(build(want), r.out);
  EXPECT_EQ(stat(FERRY_STAT_FWD_NEW), 1u);
}

TEST_F(Datapath6Test, TruncatedHeadersPassUntouched) {
  Pkt in = toVip();
  in.ext6 = {opts8(0)};
  auto full = build(in);  // 14 + 40 + 8 + 20
  std::vector<std::vector<uint8_t>> cases;
  // Cut inside the extension header and the TCP header. (BPF_PROG_TEST_RUN
  // refuses frames that end inside the IPv6 header, so those are checked
  // by the verifier's bounds checks alone, as for IPv4.)
  for (size_t len : {58, 64, 70, 81}) cases.emplace_back(full.begin(), full.begin() + len);
  auto shortPayload = full;  // payload length ends inside the TCP header
  shortPayload[14 + 5] = 8 + 12;
  cases.push_back(shortPayload);
  auto longExt = full;  // hop-by-hop length beyond the payload
  longExt[14 + 40 + 1] = 4;
  cases.push_back(longExt);
  auto badVersion = full;
  badVersion[14] = 0x40;
  cases.push_back(badVersion);
  auto badDoff = full;
  badDoff[14 + 48 + 12] = 0x40;
  cases.push_back(badDoff);
  Pkt udp = toVip();  // a UDP checksum of 0 is not allowed in IPv6
  udp.proto = 17;
  udp.udpNoChecksum = true;
  cases.push_back(build(udp));
  for (const auto& frame : cases) {
    for (Program prog : {Program::FromPod, Program::ToPod}) {
      Result r = run(prog, frame);
      EXPECT_EQ(r.verdict, TC_ACT_OK);
      EXPECT_EQ(hex(frame), hex(r.out));
    }
  }
  EXPECT_EQ(stat(FERRY_STAT_MALFORMED), 2 * cases.size());
  EXPECT_EQ(stat(FERRY_STAT_FWD_NEW), 0u);
}

TEST_F(Datapath6Test, NoEndpointsRejectsWithIcmpv6PortUnreachable) {
  addService(kVip6, 81, 6, {});
  Pkt in = toVip();
  in.dport = 81;
  in.payload = std::vector<uint8_t>(30, 0xab);
  auto frame = build(in);
  Result r = run(Program::FromPod, frame);
  EXPECT_EQ(r.verdict, TC_ACT_REDIRECT);
  EXPECT_EQ(stat(FERRY_STAT_REJECT_NO_BACKEND), 1u);

  // Expected: MACs swapped, IPv6 VIP -> client, ICMPv6 1/4 quoting the
  // original IPv6 header and the first 8 bytes of TCP.
  std::vector<uint8_t> want(14 + 40 + 8 + 40 + 8, 0);
  std::memcpy(&want[0], &frame[6], 6);
  std::memcpy(&want[6], &frame[0], 6);
  want[12] = 0x86;
  want[13] = 0xdd;
  uint8_t* ip = &want[14];
  ip[0] = 0x60;
  ip[5] = 56;  // payload length
  ip[6] = 58;  // ICMPv6
  ip[7] = 64;
  std::memcpy(ip + 8, &frame[14 + 24], 16);  // src = VIP
  std::memcpy(ip + 24, &frame[14 + 8], 16);  // dst = client
  uint8_t* icmp = ip + 40;
  icmp[0] = 1;
  icmp[1] = 4;
  std::memcpy(icmp + 8, &frame[14], 48);
  uint32_t pseudo = 56 + 58;
  for (int i = 8; i < 40; i += 2) pseudo += (ip[i] << 8) | ip[i + 1];
  uint16_t c = test::inetChecksum(icmp, 56, pseudo);
  icmp[2] = c >> 8;
  icmp[3] = c & 0xff;
  EXPECT_BYTES(want, r.out);
  EXPECT_EQ(checkChecksums(r.out), "");

  // UDP too; with extension headers the quote would be incomplete: drop
  addService(kVip6, 53, 17, {});
  Pkt udp = toVip();
  udp.proto = 17;
  udp.dport = 53;
  r = run(Program::FromPod, build(udp));
  EXPECT_EQ(r.verdict, TC_ACT_REDIRECT);
  ASSERT_EQ(r.out.size(), 110u);
  EXPECT_EQ(r.out[14 + 6], 58);
  EXPECT_EQ(checkChecksums(r.out), "");
  udp.ext6 = {opts8(60)};
  r = run(Program::FromPod, build(udp));
  EXPECT_EQ(r.verdict, TC_ACT_SHOT);
  EXPECT_EQ(stat(FERRY_STAT_DROP_NO_BACKEND), 1u);
}

TEST_F(Datapath6Test, EstablishedFlowStaysAndFinClosesIt) {
  addBackend(2, kBackendB6, 8080);
  addService(kVip6, 80, 6, {1, 2});
  Pkt p = toVip();
  Result first = run(Program::FromPod, build(p));
  std::vector<uint8_t> dst(first.out.begin() + 38, first.out.begin() + 54);
  p.tcpFlags = 0x10;
  for (int i = 0; i < 4; ++i) {
    Result r = run(Program::FromPod, build(p));
    EXPECT_EQ(hex(std::vector<uint8_t>(r.out.begin() + 38, r.out.begin() + 54)), hex(dst));
  }
  EXPECT_EQ(stat(FERRY_STAT_FWD_ESTABLISHED), 4u);
  p.tcpFlags = 0x11;  // FIN-ACK
  run(Program::FromPod, build(p));
  ferry_ct_value v{};
  ASSERT_TRUE(ctLookup(p, FERRY_CT_FWD, &v));
  EXPECT_TRUE(v.flags & FERRY_CT_F_CLOSING);
}

// ICMPv6 errors translated back are the IPv6 instances of
// DatapathFamilyTest's ICMP cases; what only IPv6 has: the quoted packet
// carried extension headers (hop-by-hop, routing, destination options, a
// first fragment's header): they are skipped as the outer parser skips
// them and the quote translated back, every checksum right, the
// extension headers as they were.
TEST_F(Datapath6Test, IcmpErrorsQuotingExtensionHeadersAreTranslatedBack) {
  Pkt::Ext6 routing{43, std::vector<uint8_t>(24, 0)};
  routing.bytes[1] = 2;
  const std::vector<std::vector<Pkt::Ext6>> chains{
      {opts8(0)}, {routing}, {opts8(60)}, {frag(0x0001)}, {opts8(0), routing, opts8(60)}};
  uint16_t sport = 41000;
  for (const auto& chain : chains) {
    size_t extLen = 0;
    for (const auto& e : chain) extLen += e.bytes.size();
    Pkt p = toVip();
    p.sport = sport++;
    p.ext6 = chain;
    run(Program::FromPod, build(p));  // SYN through the same headers: the flow
    Pkt sent = p;
    sent.daddr = kBackendA6;
    sent.dport = 8080;
    // a whole TCP header quoted (its checksum kept right), and 8 bytes
    for (size_t l4 : {20, 8}) {
      auto in = test::icmpError(2, 0, kNode6, kClient6, build(sent), 40 + extLen + l4, 1400);
      ASSERT_EQ(checkChecksums(in), "");
      Result r = run(Program::ToPod, in);
      EXPECT_EQ(r.verdict, TC_ACT_OK);
      auto want = test::icmpError(2, 0, kVip6, kClient6, build(p), 40 + extLen + l4, 1400);
      EXPECT_BYTES(want, r.out) << chain.size() << " headers, " << l4 << " bytes of TCP";
      EXPECT_EQ(checkChecksums(r.out), "");
    }
  }
  EXPECT_EQ(stat(FERRY_HOOK_TO_POD, FERRY_STAT_ICMP_RELATED), 2 * chains.size());
}

// An outer extension header before the ICMPv6 header leaves the error
// untouched (only the quote's are skipped), as do a quote with more
// extension headers than parse6 walks, one cut inside an extension
// header, and a quote of the IPv6 header cut short. The same error
// without them is translated.
TEST_F(Datapath6Test, IcmpErrorsWithOuterExtensionHeadersOrCutQuotesPassUntouched) {
  run(Program::FromPod, build(toVip()));
  Pkt sent = toVip();
  sent.daddr = kBackendA6;
  sent.dport = 8080;
  auto plain = test::icmpError(2, 0, kNode6, kClient6, build(sent), 40 + 20, 1400);
  // outer: a destination options header between IPv6 and ICMPv6 (the
  // ICMPv6 checksum's upper-layer length is unchanged)
  auto outerExt = plain;
  std::vector<uint8_t> opts{58, 0, 1, 4, 0, 0, 0, 0};
  outerExt.insert(outerExt.begin() + 14 + 40, opts.begin(), opts.end());
  outerExt[14 + 6] = 60;
  outerExt[14 + 5] += 8;
  // embedded: 7 destination options headers (parse6 walks 6)
  Pkt sentLong = sent;
  for (int i = 0; i < 7; ++i) sentLong.ext6.push_back(opts8(60));
  auto innerLong = test::icmpError(2, 0, kNode6, kClient6, build(sentLong), 40 + 56 + 20, 1400);
  // embedded: a hop-by-hop header cut after 4 of its 8 bytes
  Pkt sentExt = sent;
  sentExt.ext6 = {opts8(0)};
  auto innerCut = test::icmpError(2, 0, kNode6, kClient6, build(sentExt), 40 + 4, 1400);
  auto cut = test::icmpError(2, 0, kNode6, kClient6, build(sent), 40, 1400);
  for (const auto& frame : {outerExt, innerLong, innerCut, cut}) {
    ASSERT_EQ(checkChecksums(frame), "");
    Result r = run(Program::ToPod, frame);
    EXPECT_EQ(r.verdict, TC_ACT_OK);
    EXPECT_EQ(hex(frame), hex(r.out));
  }
  EXPECT_EQ(stat(FERRY_STAT_ICMP_RELATED), 0u);
  Result r = run(Program::ToPod, plain);
  EXPECT_EQ(r.out[14 + 8 + 15], 0x0a) << "outer source: the service address";
  EXPECT_EQ(stat(FERRY_STAT_ICMP_RELATED), 1u);
}

TEST_F(Datapath6Test, Ipv4MappedBackendOfIpv6FrontendIsNotUsed) {
  addBackend(3, kBackendA, 8080);  // an IPv4 address: would need NAT64
  addService(kVip6, 82, 6, {3});
  Pkt in = toVip();
  in.dport = 82;
  Result r = run(Program::FromPod, build(in));
  EXPECT_EQ(r.verdict, TC_ACT_SHOT);
  EXPECT_EQ(stat(FERRY_STAT_DROP_NO_BACKEND), 1u);
}

}  // namespace
}  // namespace ferry
