// ICMP error frames for the conntrack golden tests: an outer IPv4 header
// and ICMP header around the first bytes of a quoted frame, with correct
// checksums, and a checker for the embedded headers' checksums.
#pragma once

#include "fixture.h"

namespace ferry::test {

// type/code from `src` to `dst`, quoting `quoteLen` bytes of `quoted`'s IP
// packet (from its IP header on); `mtu` goes in the next-hop MTU field
// (IPv4, RFC 1191) or the MTU field (ICMPv6 packet too big). The family
// is the addresses': an IPv6 `src` makes an ICMPv6 message (RFC 4443),
// its checksum over the pseudo-header.
inline std::vector<uint8_t> icmpError(uint8_t type, uint8_t code, const std::string& src,
                                      const std::string& dst, const std::vector<uint8_t>& quoted,
                                      size_t quoteLen, uint16_t mtu = 0) {
  const bool v6 = src.find(':') != std::string::npos;
  const size_t ipLen = v6 ? 40 : 20;
  Pkt outer;
  outer.proto = 6;
  outer.saddr = src;
  outer.daddr = dst;
  auto frame = build(outer);  // for the Ethernet + IP header layout
  frame.resize(14 + ipLen);
  std::vector<uint8_t> icmp(8, 0);
  icmp[0] = type;
  icmp[1] = code;
  icmp[6] = mtu >> 8;
  icmp[7] = mtu & 0xff;
  size_t n = std::min(quoteLen, quoted.size() - 14);
  icmp.insert(icmp.end(), quoted.begin() + 14, quoted.begin() + 14 + n);
  uint8_t* ip = &frame[14];
  uint32_t seed = 0;
  if (v6) {
    ip[4] = icmp.size() >> 8;
    ip[5] = icmp.size() & 0xff;
    ip[6] = 58;
    for (size_t i = 8; i < 40; i += 2) seed += (ip[i] << 8) | ip[i + 1];
    seed += icmp.size() + 58;
  }
  uint16_t c = inetChecksum(icmp.data(), icmp.size(), seed);
  icmp[2] = c >> 8;
  icmp[3] = c & 0xff;
  if (!v6) {
    ip[0] = 0x45;
    ip[1] = 0xc0;
    size_t total = 20 + icmp.size();
    ip[2] = total >> 8;
    ip[3] = total & 0xff;
    ip[6] = 0;
    ip[7] = 0;
    ip[9] = 1;
    ip[10] = ip[11] = 0;
    c = inetChecksum(ip, 20);
    ip[10] = c >> 8;
    ip[11] = c & 0xff;
  }
  frame.insert(frame.end(), icmp.begin(), icmp.end());
  return frame;
}

// The embedded IP header's checksum (IPv4), and the embedded TCP/UDP
// checksum when the whole quoted segment is there ("" when right).
inline std::string checkEmbedded(const std::vector<uint8_t>& f) {
  const bool v6 = f.size() >= 14 && f[12] == 0x86 && f[13] == 0xdd;
  const size_t ipLen = v6 ? 40 : 20;
  if (f.size() < 14 + ipLen + 8 + ipLen) return "too short";
  std::vector<uint8_t> inner(14, 0);
  inner[12] = v6 ? 0x86 : 0x08;
  inner[13] = v6 ? 0xdd : 0x00;
  inner.insert(inner.end(), f.begin() + 14 + ipLen + 8, f.end());
  const uint8_t* ip = &inner[14];
  if (!v6 && inetChecksum(ip, 20) != 0) return "bad embedded IP checksum";
  size_t total = v6 ? 40 + ((ip[4] << 8) | ip[5]) : (ip[2] << 8) | ip[3];
  if (14 + total > inner.size()) return "";  // segment cut short: not checkable
  std::string s = checkChecksums(inner);
  return s.empty() ? "" : "embedded: " + s;
}

}  // namespace ferry::test
