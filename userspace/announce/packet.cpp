#include "announce/packet.h"

#include <algorithm>
#include <cstring>

namespace ferry {

namespace {

constexpr size_t kEthLen = 14;
constexpr size_t kArpLen = 28;
constexpr size_t kIp6Len = 40;
constexpr uint16_t kEthArp = 0x0806, kEthIp6 = 0x86dd;
constexpr uint8_t kIcmp6 = 58, kNs = 135, kNa = 136;
constexpr uint8_t kOptSourceLl = 1, kOptTargetLl = 2;
constexpr uint8_t kNaSolicited = 0x40, kNaOverride = 0x20;

const IpAddr kAllNodes = *IpAddr::parse("ff02::1");

uint16_t get16(std::span<const uint8_t> b, size_t off) {
  return uint16_t(b[off] << 8 | b[off + 1]);
}

void put16(Frame& f, uint16_t v) {
  f.push_back(uint8_t(v >> 8));
  f.push_back(uint8_t(v));
}
void putBytes(Frame& f, const uint8_t* p, size_t n) { f.insert(f.end(), p, p + n); }
void putMac(Frame& f, const MacAddr& m) { putBytes(f, m.data(), m.size()); }
void putV4(Frame& f, const IpAddr& a) { putBytes(f, a.bytes.data() + 12, 4); }
void putV6(Frame& f, const IpAddr& a) { putBytes(f, a.bytes.data(), 16); }

MacAddr macAt(std::span<const uint8_t> b, size_t off) {
  MacAddr m;
  std::copy_n(b.begin() + off, 6, m.begin());
  return m;
}
IpAddr v6At(std::span<const uint8_t> b, size_t off) {
  IpAddr a;
  std::copy_n(b.begin() + off, 16, a.bytes.begin());
  return a;
}
IpAddr v4At(std::span<const uint8_t> b, size_t off) {
  return IpAddr::fromV4(uint32_t(b[off]) << 24 | uint32_t(b[off + 1]) << 16 |
                        uint32_t(b[off + 2]) << 8 | b[off + 3]);
}

void putEth(Frame& f, const MacAddr& dst, const MacAddr& src, uint16_t type) {
  putMac(f, dst);
  putMac(f, src);
  put16(f, type);
}

Frame arpFrame(uint16_t op, const MacAddr& ethDst, const MacAddr& sha, const IpAddr& spa,
               const MacAddr& tha, const IpAddr& tpa) {
  Frame f;
  f.reserve(kEthLen + kArpLen);
  putEth(f, ethDst, sha, kEthArp);
  put16(f, 1);       // hardware: Ethernet
  put16(f, 0x0800);  // protocol: IPv4
  f.push_back(6);
  f.push_back(4);
  put16(f, op);
  putMac(f, sha);
  putV4(f, spa);
  putMac(f, tha);
  putV4(f, tpa);
  return f;
}

bool isMulticast6(const IpAddr& a) { return !a.isV4() && a.bytes[0] == 0xff; }

MacAddr multicastMac(const IpAddr& group) {
  return {0x33, 0x33, group.bytes[12], group.bytes[13], group.bytes[14], group.bytes[15]};
}

Frame naFrame(const MacAddr& ethDst, const IpAddr& dst, const IpAddr& target, const MacAddr& mac,
              uint8_t flags) {
  Frame icmp;
  icmp.push_back(kNa);
  icmp.push_back(0);
  put16(icmp, 0);  // checksum, below
  icmp.push_back(flags);
  icmp.insert(icmp.end(), 3, 0);
  putV6(icmp, target);
  icmp.push_back(kOptTargetLl);
  icmp.push_back(1);  // length in units of 8 bytes
  putMac(icmp, mac);
  uint16_t sum = icmp6Checksum(target, dst, icmp);
  icmp[2] = uint8_t(sum >> 8);
  icmp[3] = uint8_t(sum);

  Frame f;
  f.reserve(kEthLen + kIp6Len + icmp.size());
  putEth(f, ethDst, mac, kEthIp6);
  put16(f, 0x6000);  // version 6, traffic class 0, flow label 0
  put16(f, 0);
  put16(f, uint16_t(icmp.size()));
  f.push_back(kIcmp6);
  f.push_back(255);  // hop limit: receivers drop NDP with anything else
  putV6(f, target);
  putV6(f, dst);
  f.insert(f.end(), icmp.begin(), icmp.end());
  return f;
}

}  // namespace

std::optional<ArpRequest> parseArpRequest(std::span<const uint8_t> b) {
  if (b.size() < kEthLen + kArpLen || get16(b, 12) != kEthArp) return std::nullopt;
  auto arp = b.subspan(kEthLen);
  if (get16(arp, 0) != 1 || get16(arp, 2) != 0x0800 || arp[4] != 6 || arp[5] != 4 ||
      get16(arp, 6) != 1)
    return std::nullopt;
  ArpRequest r;
  r.senderMac = macAt(arp, 8);
  r.senderIp = v4At(arp, 14);
  r.targetIp = v4At(arp, 24);
  if (r.senderIp == r.targetIp) return std::nullopt;
  return r;
}

Frame buildArpReply(const ArpRequest& req, const MacAddr& mac) {
  return arpFrame(2, req.senderMac, mac, req.targetIp, req.senderMac, req.senderIp);
}

Frame buildGratuitousArp(const IpAddr& ip, const MacAddr& mac) {
  return arpFrame(1, kBroadcastMac, mac, ip, MacAddr{}, ip);
}

uint16_t icmp6Checksum(const IpAddr& src, const IpAddr& dst, std::span<const uint8_t> icmp) {
  uint32_t sum = 0;
  auto add = [&](std::span<const uint8_t> d) {
    for (size_t i = 0; i + 1 < d.size(); i += 2) sum += uint32_t(d[i] << 8 | d[i + 1]);
    if (d.size() % 2) sum += uint32_t(d.back() << 8);
  };
  add(src.bytes);
  add(dst.bytes);
  sum += uint32_t(icmp.size() >> 16) + uint32_t(icmp.size() & 0xffff);
  sum += kIcmp6;
  add(icmp);
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return uint16_t(~sum);
}

std::optional<NeighborSolicitation> parseNeighborSolicitation(std::span<const uint8_t> b) {
  if (b.size() < kEthLen + kIp6Len || get16(b, 12) != kEthIp6) return std::nullopt;
  auto ip = b.subspan(kEthLen);
  size_t plen = get16(ip, 4);
  // Extension headers before ICMPv6 would be legal but never carry NDP
  // in practice; the socket filter lets none through either.
  if ((ip[0] >> 4) != 6 || ip[6] != kIcmp6 || ip[7] != 255 || plen < 24 ||
      ip.size() < kIp6Len + plen)
    return std::nullopt;
  auto icmp = ip.subspan(kIp6Len, plen);
  NeighborSolicitation ns;
  ns.source = v6At(ip, 8);
  IpAddr dst = v6At(ip, 24);
  if (icmp[0] != kNs || icmp[1] != 0 || icmp6Checksum(ns.source, dst, icmp) != 0)
    return std::nullopt;
  ns.ethSource = macAt(b, 6);
  ns.target = v6At(icmp, 8);
  if (isMulticast6(ns.target)) return std::nullopt;
  for (size_t off = 24; off < icmp.size();) {
    if (icmp.size() - off < 8 || icmp[off + 1] == 0) return std::nullopt;
    size_t len = size_t(icmp[off + 1]) * 8;
    if (off + len > icmp.size()) return std::nullopt;
    if (icmp[off] == kOptSourceLl) ns.sourceLinkAddr = macAt(icmp, off + 2);
    off += len;
  }
  if (ns.source == IpAddr{} && ns.sourceLinkAddr) return std::nullopt;
  return ns;
}

Frame buildNeighborAdvertisement(const NeighborSolicitation& ns, const MacAddr& mac) {
  if (ns.source == IpAddr{})  // someone probing (DAD) an address we hold: defend it
    return naFrame(multicastMac(kAllNodes), kAllNodes, ns.target, mac, kNaOverride);
  MacAddr to = ns.sourceLinkAddr.value_or(ns.ethSource);
  return naFrame(to, ns.source, ns.target, mac, kNaSolicited | kNaOverride);
}

Frame buildUnsolicitedNa(const IpAddr& target, const MacAddr& mac) {
  return naFrame(multicastMac(kAllNodes), kAllNodes, target, mac, kNaOverride);
}

std::optional<Frame> answerFor(std::span<const uint8_t> frame, const std::set<IpAddr>& owned,
                               const MacAddr& mac) {
  if (frame.size() < kEthLen) return std::nullopt;
  uint16_t type = get16(frame, 12);
  if (type == kEthArp) {
    auto req = parseArpRequest(frame);
    if (req && owned.count(req->targetIp)) return buildArpReply(*req, mac);
  } else if (type == kEthIp6) {
    auto ns = parseNeighborSolicitation(frame);
    if (ns && owned.count(ns->target)) return buildNeighborAdvertisement(*ns, mac);
  }
  return std::nullopt;
}

MacAddr solicitedNodeMac(const IpAddr& target) {
  return {0x33, 0x33, 0xff, target.bytes[13], target.bytes[14], target.bytes[15]};
}

}  // namespace ferry
