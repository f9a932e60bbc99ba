// Golden frames for ARP and NDP. Expected checksums were computed
// independently (Python, RFC 4443 pseudo-header).
#include "announce/packet.h"

#include <gtest/gtest.h>

#include "test_util.h"

namespace ferry {
namespace {

using testing::hex;
using testing::ip;
using testing::toHex;

const MacAddr kOurs{0x02, 0, 0, 0, 0, 0x01};
const MacAddr kClient{0x02, 0, 0, 0, 0, 0x64};

// who-has 198.18.0.200 tell 198.18.0.100 (02:00:00:00:00:64)
const Frame kArpRequest =
    hex("ff ff ff ff ff ff  02 00 00 00 00 64  08 06"
        "00 01  08 00  06 04  00 01"
        "02 00 00 00 00 64  c6 12 00 64"
        "00 00 00 00 00 00  c6 12 00 c8");

// NS from 2001:db8::100 for 2001:db8::200, with a source link-layer option.
const Frame kNs =
    hex("33 33 ff 00 02 00  02 00 00 00 00 64  86 dd"
        "60 00 00 00  00 20  3a  ff"
        "20 01 0d b8 00 00 00 00 00 00 00 00 00 00 01 00"
        "ff 02 00 00 00 00 00 00 00 00 00 01 ff 00 02 00"
        "87 00 16 c9  00 00 00 00"
        "20 01 0d b8 00 00 00 00 00 00 00 00 00 00 02 00"
        "01 01  02 00 00 00 00 64");

// DAD probe for 2001:db8::200: from ::, no options.
const Frame kDadNs =
    hex("33 33 ff 00 02 00  02 00 00 00 00 64  86 dd"
        "60 00 00 00  00 18  3a  ff"
        "00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00"
        "ff 02 00 00 00 00 00 00 00 00 00 01 ff 00 02 00"
        "87 00 48 ef  00 00 00 00"
        "20 01 0d b8 00 00 00 00 00 00 00 00 00 00 02 00");

TEST(ArpTest, ReplyBytes) {
  auto req = parseArpRequest(kArpRequest);
  ASSERT_TRUE(req);
  EXPECT_EQ(req->senderMac, kClient);
  EXPECT_EQ(req->senderIp, ip("198.18.0.100"));
  EXPECT_EQ(req->targetIp, ip("198.18.0.200"));
  Frame want =
      hex("02 00 00 00 00 64  02 00 00 00 00 01  08 06"
          "00 01  08 00  06 04  00 02"
          "02 00 00 00 00 01  c6 12 00 c8"
          "02 00 00 00 00 64  c6 12 00 64");
  EXPECT_EQ(toHex(buildArpReply(*req, kOurs)), toHex(want));
}

TEST(ArpTest, GratuitousIsAnAnnouncementRequest) {
  Frame want =
      hex("ff ff ff ff ff ff  02 00 00 00 00 01  08 06"
          "00 01  08 00  06 04  00 01"
          "02 00 00 00 00 01  c6 12 00 c8"
          "00 00 00 00 00 00  c6 12 00 c8");
  EXPECT_EQ(toHex(buildGratuitousArp(ip("198.18.0.200"), kOurs)), toHex(want));
}

TEST(ArpTest, ProbeFromZeroAddressIsAnswered) {
  Frame probe = kArpRequest;
  probe[28] = probe[29] = probe[30] = probe[31] = 0;  // sender 0.0.0.0 (RFC 5227 probe)
  auto req = parseArpRequest(probe);
  ASSERT_TRUE(req);
  Frame reply = buildArpReply(*req, kOurs);
  EXPECT_EQ(toHex(Frame(reply.begin() + 38, reply.end())), "00 00 00 00");
}

TEST(ArpTest, RejectsWhatIsNotARequest) {
  Frame reply = kArpRequest;
  reply[21] = 2;
  EXPECT_FALSE(parseArpRequest(reply));
  Frame garp = buildGratuitousArp(ip("198.18.0.200"), kClient);
  EXPECT_FALSE(parseArpRequest(garp)) << "someone else's announcement gets no answer";
  Frame shortFrame(kArpRequest.begin(), kArpRequest.end() - 1);
  EXPECT_FALSE(parseArpRequest(shortFrame));
  Frame notIp = kArpRequest;
  notIp[16] = 0x86;  // protocol type 0x86dd
  EXPECT_FALSE(parseArpRequest(notIp));
  Frame padded = kArpRequest;
  padded.resize(60, 0);  // Ethernet minimum: trailing padding is fine
  EXPECT_TRUE(parseArpRequest(padded));
}

TEST(NdpTest, ChecksumOfGoldenNsVerifies) {
  IpAddr src = ip("2001:db8::100"), dst = ip("ff02::1:ff00:200");
  std::span<const uint8_t> icmp(kNs.data() + 54, kNs.size() - 54);
  EXPECT_EQ(icmp6Checksum(src, dst, icmp), 0);
  Frame zeroed(icmp.begin(), icmp.end());
  zeroed[2] = zeroed[3] = 0;
  EXPECT_EQ(icmp6Checksum(src, dst, zeroed), 0x16c9);
}

TEST(NdpTest, ParsesSolicitation) {
  auto ns = parseNeighborSolicitation(kNs);
  ASSERT_TRUE(ns);
  EXPECT_EQ(ns->source, ip("2001:db8::100"));
  EXPECT_EQ(ns->target, ip("2001:db8::200"));
  EXPECT_EQ(ns->ethSource, kClient);
  ASSERT_TRUE(ns->sourceLinkAddr);
  EXPECT_EQ(*ns->sourceLinkAddr, kClient);
}

TEST(NdpTest, SolicitedAdvertisementBytes) {
  auto ns = parseNeighborSolicitation(kNs);
  ASSERT_TRUE(ns);
  Frame want =
      hex("02 00 00 00 00 64  02 00 00 00 00 01  86 dd"
          "60 00 00 00  00 20  3a  ff"
          "20 01 0d b8 00 00 00 00 00 00 00 00 00 00 02 00"
          "20 01 0d b8 00 00 00 00 00 00 00 00 00 00 01 00"
          "88 00 85 77  60 00 00 00"  // Solicited + Override
          "20 01 0d b8 00 00 00 00 00 00 00 00 00 00 02 00"
          "02 01  02 00 00 00 00 01");
  Frame na = buildNeighborAdvertisement(*ns, kOurs);
  EXPECT_EQ(toHex(na), toHex(want));
  std::span<const uint8_t> icmp(na.data() + 54, na.size() - 54);
  EXPECT_EQ(icmp6Checksum(ip("2001:db8::200"), ip("2001:db8::100"), icmp), 0);
}

TEST(NdpTest, DadProbeIsDefendedToAllNodes) {
  auto ns = parseNeighborSolicitation(kDadNs);
  ASSERT_TRUE(ns);
  EXPECT_EQ(ns->source, IpAddr{});
  Frame want =
      hex("33 33 00 00 00 01  02 00 00 00 00 01  86 dd"
          "60 00 00 00  00 20  3a  ff"
          "20 01 0d b8 00 00 00 00 00 00 00 00 00 00 02 00"
          "ff 02 00 00 00 00 00 00 00 00 00 00 00 00 00 01"
          "88 00 f5 2c  20 00 00 00"  // Override only
          "20 01 0d b8 00 00 00 00 00 00 00 00 00 00 02 00"
          "02 01  02 00 00 00 00 01");
  EXPECT_EQ(toHex(buildNeighborAdvertisement(*ns, kOurs)), toHex(want));
  EXPECT_EQ(toHex(buildUnsolicitedNa(ip("2001:db8::200"), kOurs)), toHex(want));
}

TEST(NdpTest, WithoutSourceOptionRepliesToEthernetSource) {
  NeighborSolicitation ns;
  ns.ethSource = kClient;
  ns.source = ip("2001:db8::100");
  ns.target = ip("2001:db8::200");
  Frame na = buildNeighborAdvertisement(ns, kOurs);
  EXPECT_EQ((MacAddr{na[0], na[1], na[2], na[3], na[4], na[5]}), kClient);
}

TEST(NdpTest, RejectsInvalidSolicitations) {
  auto mutate = [](size_t off, uint8_t v) {
    Frame f = kNs;
    f[off] = v;
    return f;
  };
  EXPECT_FALSE(parseNeighborSolicitation(mutate(21, 64))) << "hop limit not 255: from off-link";
  EXPECT_FALSE(parseNeighborSolicitation(mutate(57, 0x00))) << "bad checksum";
  EXPECT_FALSE(parseNeighborSolicitation(mutate(55, 1))) << "code not 0";
  EXPECT_FALSE(parseNeighborSolicitation(mutate(20, 17))) << "not ICMPv6";
  EXPECT_FALSE(parseNeighborSolicitation(Frame(kNs.begin(), kNs.end() - 1))) << "truncated";
  // a zero-length option would loop forever: rejected (checksum fixed up)
  Frame zeroOpt = kNs;
  zeroOpt[79] = 0;
  zeroOpt[56] = zeroOpt[57] = 0;
  uint16_t c = icmp6Checksum(ip("2001:db8::100"), ip("ff02::1:ff00:200"),
                             std::span<const uint8_t>(zeroOpt.data() + 54, zeroOpt.size() - 54));
  zeroOpt[56] = uint8_t(c >> 8);
  zeroOpt[57] = uint8_t(c);
  EXPECT_FALSE(parseNeighborSolicitation(zeroOpt));
}

TEST(AnswerTest, OnlyForOwnedAddresses) {
  std::set<IpAddr> owned = {ip("198.18.0.200"), ip("2001:db8::200")};
  EXPECT_TRUE(answerFor(kArpRequest, owned, kOurs));
  EXPECT_TRUE(answerFor(kNs, owned, kOurs));
  EXPECT_TRUE(answerFor(kDadNs, owned, kOurs));
  std::set<IpAddr> other = {ip("198.18.0.201"), ip("2001:db8::201")};
  EXPECT_FALSE(answerFor(kArpRequest, other, kOurs));
  EXPECT_FALSE(answerFor(kNs, other, kOurs));
  EXPECT_FALSE(answerFor(Frame{}, owned, kOurs));
  EXPECT_FALSE(answerFor(Frame(10, 0), owned, kOurs));
}

TEST(NdpTest, SolicitedNodeMac) {
  EXPECT_EQ(solicitedNodeMac(ip("2001:db8::1:2:3:4")),
            (MacAddr{0x33, 0x33, 0xff, 0x03, 0x00, 0x04}));
}

}  // namespace
}  // namespace ferry
