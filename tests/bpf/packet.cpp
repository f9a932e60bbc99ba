#include "packet.h"

#include <array>
#include <cstdio>
#include <cstring>

namespace ferry::test {

namespace {
void put16(std::vector<uint8_t>& b, size_t off, uint16_t v) {
  b[off] = v >> 8;
  b[off + 1] = v & 0xff;
}
void put32(std::vector<uint8_t>& b, size_t off, uint32_t v) {
  put16(b, off, v >> 16);
  put16(b, off + 2, v & 0xffff);
}
uint32_t addr(const std::string& s) {
  in_addr a{};
  inet_pton(AF_INET, s.c_str(), &a);
  return ntohl(a.s_addr);
}
uint32_t sumBytes(const uint8_t* d, size_t len, uint32_t sum) {
  for (size_t i = 0; i + 1 < len; i += 2) sum += (d[i] << 8) | d[i + 1];
  if (len & 1) sum += d[len - 1] << 8;
  return sum;
}
uint32_t pseudoSum(const uint8_t* ip, uint8_t proto, size_t l4len) {
  uint32_t sum = sumBytes(ip + 12, 8, 0);
  return sum + proto + l4len;
}
// RFC 8200 8.1: source, destination, upper-layer length, next header.
uint32_t pseudoSum6(const uint8_t* ip6, uint8_t proto, size_t l4len) {
  uint32_t sum = sumBytes(ip6 + 8, 32, 0);
  return sum + (l4len >> 16) + (l4len & 0xffff) + proto;
}
bool isV6(const std::string& a) { return a.find(':') != std::string::npos; }

std::vector<uint8_t> build6(const Pkt& p) {
  size_t exts = 0;
  for (const auto& e : p.ext6) exts += e.bytes.size();
  size_t l4hdr = p.proto == 6 ? 20 : 8;
  size_t l4len = l4hdr + p.payload.size();
  std::vector<uint8_t> b(14 + 40 + exts + l4len, 0);
  std::memcpy(&b[0], p.dstMac.data(), 6);
  std::memcpy(&b[6], p.srcMac.data(), 6);
  put16(b, 12, 0x86dd);
  size_t ip = 14;
  b[ip] = 0x60;
  put16(b, ip + 4, exts + l4len);
  b[ip + 6] = p.ext6.empty() ? p.proto : p.ext6[0].type;
  b[ip + 7] = p.ttl;
  inet_pton(AF_INET6, p.saddr.c_str(), &b[ip + 8]);
  inet_pton(AF_INET6, p.daddr.c_str(), &b[ip + 24]);
  size_t off = ip + 40;
  for (size_t i = 0; i < p.ext6.size(); ++i) {
    std::memcpy(&b[off], p.ext6[i].bytes.data(), p.ext6[i].bytes.size());
    b[off] = i + 1 < p.ext6.size() ? p.ext6[i + 1].type : p.proto;
    off += p.ext6[i].bytes.size();
  }
  size_t l4 = off;
  put16(b, l4, p.sport);
  put16(b, l4 + 2, p.dport);
  if (p.proto == 6) {
    put32(b, l4 + 4, p.seq);
    put32(b, l4 + 8, p.ack);
    b[l4 + 12] = 5 << 4;
    b[l4 + 13] = p.tcpFlags;
    put16(b, l4 + 14, 65535);
  } else {
    put16(b, l4 + 4, l4len);
  }
  std::memcpy(&b[l4 + l4hdr], p.payload.data(), p.payload.size());
  if (!(p.proto == 17 && p.udpNoChecksum)) {
    uint16_t c = inetChecksum(&b[l4], l4len, pseudoSum6(&b[ip], p.proto, l4len));
    if (p.proto == 17 && c == 0) c = 0xffff;
    put16(b, l4 + (p.proto == 6 ? 16 : 6), c);
  }
  return b;
}

std::string checkChecksums6(const std::vector<uint8_t>& f) {
  if (f.size() < 54) return "frame too short";
  const uint8_t* ip = &f[14];
  size_t end = 54 + ((ip[4] << 8) | ip[5]);
  if (end > f.size()) return "IPv6 payload length beyond frame";
  uint8_t nh = ip[6];
  size_t off = 54;
  while (nh == 0 || nh == 43 || nh == 44 || nh == 60) {
    if (off + 8 > end) return "extension header beyond payload";
    uint8_t next = f[off];
    off += nh == 44 ? 8 : (f[off + 1] + 1) * 8;
    nh = next;
  }
  if (off > end) return "extension header beyond payload";
  size_t l4len = end - off;
  const uint8_t* l4 = &f[off];
  if (nh == 17 && l4len >= 8 && l4[6] == 0 && l4[7] == 0) return "UDP checksum 0 in IPv6";
  if (nh == 6 || nh == 17 || nh == 58)
    return inetChecksum(l4, l4len, pseudoSum6(ip, nh, l4len)) == 0 ? "" : "bad L4 checksum";
  return "";
}
}  // namespace

uint16_t inetChecksum(const uint8_t* data, size_t len, uint32_t seed) {
  uint32_t sum = sumBytes(data, len, seed);
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<uint16_t>(~sum);
}

std::vector<uint8_t> build(const Pkt& p) {
  if (isV6(p.saddr)) return build6(p);
  size_t ihl = 20 + p.ipOptions.size();
  size_t l4hdr = p.proto == 6 ? 20 : 8;
  size_t l4len = l4hdr + p.payload.size();
  std::vector<uint8_t> b(14 + ihl + l4len, 0);
  std::memcpy(&b[0], p.dstMac.data(), 6);
  std::memcpy(&b[6], p.srcMac.data(), 6);
  put16(b, 12, 0x0800);
  size_t ip = 14;
  b[ip] = 0x40 | (ihl / 4);
  put16(b, ip + 2, ihl + l4len);
  put16(b, ip + 4, p.ipId);
  put16(b, ip + 6, p.fragOff);
  b[ip + 8] = p.ttl;
  b[ip + 9] = p.proto;
  put32(b, ip + 12, addr(p.saddr));
  put32(b, ip + 16, addr(p.daddr));
  std::memcpy(&b[ip + 20], p.ipOptions.data(), p.ipOptions.size());
  put16(b, ip + 10, inetChecksum(&b[ip], ihl));
  size_t l4 = ip + ihl;
  put16(b, l4, p.sport);
  put16(b, l4 + 2, p.dport);
  if (p.proto == 6) {
    put32(b, l4 + 4, p.seq);
    put32(b, l4 + 8, p.ack);
    b[l4 + 12] = 5 << 4;
    b[l4 + 13] = p.tcpFlags;
    put16(b, l4 + 14, 65535);
  } else {
    put16(b, l4 + 4, l4len);
  }
  std::memcpy(&b[l4 + l4hdr], p.payload.data(), p.payload.size());
  size_t csumOff = l4 + (p.proto == 6 ? 16 : 6);
  if (!(p.proto == 17 && p.udpNoChecksum)) {
    uint16_t c = inetChecksum(&b[l4], l4len, pseudoSum(&b[ip], p.proto, l4len));
    if (p.proto == 17 && c == 0) c = 0xffff;
    put16(b, csumOff, c);
  }
  return b;
}

std::string checkChecksums(const std::vector<uint8_t>& f) {
  if (f.size() >= 14 && f[12] == 0x86 && f[13] == 0xdd) return checkChecksums6(f);
  if (f.size() < 34) return "frame too short";
  const uint8_t* ip = &f[14];
  size_t ihl = (ip[0] & 0xf) * 4;
  if (inetChecksum(ip, ihl) != 0) return "bad IPv4 header checksum";
  size_t total = (ip[2] << 8) | ip[3];
  if (14 + total > f.size()) return "IPv4 total length beyond frame";
  size_t l4len = total - ihl;
  const uint8_t* l4 = ip + ihl;
  uint8_t proto = ip[9];
  if (proto == 1) return inetChecksum(l4, l4len) == 0 ? "" : "bad ICMP checksum";
  if (proto == 17 && l4[6] == 0 && l4[7] == 0) return "";  // no UDP checksum
  if (proto == 6 || proto == 17)
    return inetChecksum(l4, l4len, pseudoSum(ip, proto, l4len)) == 0 ? "" : "bad L4 checksum";
  return "";
}

std::vector<std::vector<uint8_t>> fragment(const std::vector<uint8_t>& frame, size_t firstLen,
                                           uint32_t id) {
  const bool v6 = frame[12] == 0x86 && frame[13] == 0xdd;
  const size_t hdr = v6 ? 40 : (frame[14] & 0xf) * 4;
  const size_t rest = frame.size() - 14 - hdr;
  std::vector<std::vector<uint8_t>> out;
  for (int i = 0; i < 2; ++i) {
    size_t from = i ? firstLen : 0, len = i ? rest - firstLen : firstLen;
    std::vector<uint8_t> f(frame.begin(), frame.begin() + 14 + hdr);
    if (v6) {
      f[14 + 6] = 44;
      put16(f, 14 + 4, 8 + len);
      std::vector<uint8_t> fh(8, 0);
      fh[0] = frame[14 + 6];
      put16(fh, 2, (from / 8) << 3 | (i ? 0 : 1));
      put32(fh, 4, id);
      f.insert(f.end(), fh.begin(), fh.end());
    } else {
      put16(f, 14 + 2, hdr + len);
      put16(f, 14 + 4, id);
      put16(f, 14 + 6, (from / 8) | (i ? 0 : 0x2000));
      put16(f, 14 + 10, 0);
      put16(f, 14 + 10, inetChecksum(&f[14], hdr));
    }
    f.insert(f.end(), frame.begin() + 14 + hdr + from, frame.begin() + 14 + hdr + from + len);
    out.push_back(std::move(f));
  }
  return out;
}

std::string hex(const std::vector<uint8_t>& bytes) {
  std::string s;
  char buf[4];
  for (size_t i = 0; i < bytes.size(); ++i) {
    std::snprintf(buf, sizeof buf, "%02x", bytes[i]);
    s += buf;
    if (i % 16 == 15) s += '\n';
    else if (i % 2 == 1) s += ' ';
  }
  return s;
}

}  // namespace ferry::test
