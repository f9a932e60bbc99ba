// Crafted packets for BPF_PROG_TEST_RUN: Ethernet + IPv4 or IPv6 (with
// extension headers) + TCP/UDP/ICMP with correct checksums, and an
// independent checksum verifier.
#pragma once

#include <arpa/inet.h>

#include <array>
#include <cstdint>
#include <string>
#include <vector>

namespace ferry::test {

struct Pkt {
  uint8_t proto = 6;  // IPPROTO_TCP / IPPROTO_UDP
  std::string saddr = "198.18.129.2";
  std::string daddr = "198.19.0.10";
  uint16_t sport = 40000;
  uint16_t dport = 80;
  uint8_t tcpFlags = 0x02;  // SYN
  uint32_t seq = 1000;
  uint32_t ack = 0;
  std::vector<uint8_t> payload;
  std::vector<uint8_t> ipOptions;  // multiple of 4 bytes
  uint16_t fragOff = 0;            // host order, flags included (0x4000 = DF)
  uint16_t ipId = 1;
  uint8_t ttl = 64;
  bool udpNoChecksum = false;
  // IPv6 (addresses with ':'): extension headers in order, each given
  // whole with its type; byte 0 (next header) is filled in by build().
  struct Ext6 {
    uint8_t type;  // 0 hop-by-hop, 43 routing, 44 fragment, 60 destination options
    std::vector<uint8_t> bytes;
  };
  std::vector<Ext6> ext6;
  std::array<uint8_t, 6> srcMac{0x02, 0, 0, 0, 0, 0x0a};
  std::array<uint8_t, 6> dstMac{0x02, 0, 0, 0, 0, 0x0b};
};

uint16_t inetChecksum(const uint8_t* data, size_t len, uint32_t seed = 0);
std::vector<uint8_t> build(const Pkt& p);
// Recomputes the IPv4 header checksum and the L4 (TCP/UDP/ICMP, or for
// IPv6 TCP/UDP/ICMPv6 past the extension headers) checksum of an
// Ethernet frame; "" when all are right, else what is wrong.
std::string checkChecksums(const std::vector<uint8_t>& frame);
std::string hex(const std::vector<uint8_t>& bytes);
// Splits the datagram of an Ethernet + IPv4 / IPv6 frame (IPv6 without
// extension headers) into two fragments with identification `id`: the
// first carries `firstLen` bytes (a multiple of 8) of what follows the IP
// header, the second the rest (RFC 791 3.2, RFC 8200 4.5).
std::vector<std::vector<uint8_t>> fragment(const std::vector<uint8_t>& frame, size_t firstLen,
                                           uint32_t id);

}  // namespace ferry::test
