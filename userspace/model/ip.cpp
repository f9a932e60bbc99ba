#include "model/ip.h"

#include <arpa/inet.h>

#include <charconv>
#include <cstring>

namespace ferry {

namespace {
constexpr std::array<uint8_t, 12> kV4Mapped{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
}

std::optional<IpAddr> IpAddr::parse(std::string_view text) {
  std::string s(text);
  IpAddr a;
  in_addr v4{};
  if (inet_pton(AF_INET, s.c_str(), &v4) == 1) {
    std::memcpy(a.bytes.data(), kV4Mapped.data(), 12);
    std::memcpy(a.bytes.data() + 12, &v4, 4);
    return a;
  }
  in6_addr v6{};
  if (inet_pton(AF_INET6, s.c_str(), &v6) == 1) {
    std::memcpy(a.bytes.data(), &v6, 16);
    return a;
  }
  return std::nullopt;
}

IpAddr IpAddr::fromV4(uint32_t h) {
  IpAddr a;
  std::memcpy(a.bytes.data(), kV4Mapped.data(), 12);
  a.bytes[12] = h >> 24;
  a.bytes[13] = h >> 16;
  a.bytes[14] = h >> 8;
  a.bytes[15] = h;
  return a;
}

bool IpAddr::isV4() const { return std::memcmp(bytes.data(), kV4Mapped.data(), 12) == 0; }

uint32_t IpAddr::v4() const {
  return (uint32_t(bytes[12]) << 24) | (uint32_t(bytes[13]) << 16) | (uint32_t(bytes[14]) << 8) |
         bytes[15];
}

std::string IpAddr::str() const {
  char buf[INET6_ADDRSTRLEN] = {};
  if (isV4())
    inet_ntop(AF_INET, bytes.data() + 12, buf, sizeof buf);
  else
    inet_ntop(AF_INET6, bytes.data(), buf, sizeof buf);
  return buf;
}

namespace {

// "addr/len" with the host bits of addr cleared; *hostBits tells whether
// any were set.
std::optional<IpPrefix> parsePrefix(std::string_view text, bool* hostBits) {
  auto slash = text.find('/');
  if (slash == std::string_view::npos) return std::nullopt;
  auto addr = IpAddr::parse(text.substr(0, slash));
  if (!addr) return std::nullopt;
  int len = -1;
  auto lenText = text.substr(slash + 1);
  auto [p, ec] = std::from_chars(lenText.data(), lenText.data() + lenText.size(), len);
  if (ec != std::errc() || p != lenText.data() + lenText.size()) return std::nullopt;
  int maxLen = addr->isV4() ? 32 : 128;
  if (len < 0 || len > maxLen) return std::nullopt;
  IpPrefix pfx;
  pfx.len = len;
  pfx.addr = *addr;
  int bits = addr->isV4() ? 96 + len : len;  // bits to keep in the 128-bit form
  for (int i = 0; i < 16; ++i) {
    int keep = bits - i * 8;
    if (keep >= 8) continue;
    pfx.addr.bytes[i] &= keep <= 0 ? 0 : uint8_t(0xff << (8 - keep));
  }
  *hostBits = pfx.addr != *addr;
  return pfx;
}

}  // namespace

std::optional<IpPrefix> IpPrefix::parse(std::string_view text) {
  bool hostBits = false;
  auto pfx = parsePrefix(text, &hostBits);
  if (hostBits) return std::nullopt;  // host bits set: ambiguous
  return pfx;
}

std::optional<IpPrefix> IpPrefix::parseMasked(std::string_view text) {
  bool hostBits = false;
  return parsePrefix(text, &hostBits);
}

bool IpPrefix::contains(const IpAddr& a) const {
  if (a.isV4() != addr.isV4()) return false;
  int bits = addr.isV4() ? 96 + len : len;
  for (int i = 0; i < 16; ++i) {
    int keep = bits - i * 8;
    if (keep <= 0) break;
    uint8_t mask = keep >= 8 ? 0xff : uint8_t(0xff << (8 - keep));
    if ((a.bytes[i] & mask) != addr.bytes[i]) return false;
  }
  return true;
}

uint64_t IpPrefix::size() const {
  int hostBits = (addr.isV4() ? 32 : 128) - len;
  if (hostBits >= 63) return uint64_t(1) << 63;
  return uint64_t(1) << hostBits;
}

IpAddr IpPrefix::nth(uint64_t n) const {
  IpAddr a = addr;
  uint64_t carry = n;
  for (int i = 15; i >= 0 && carry; --i) {
    uint64_t sum = a.bytes[i] + (carry & 0xff);
    a.bytes[i] = uint8_t(sum);
    carry = (carry >> 8) + (sum >> 8);
  }
  return a;
}

uint64_t IpPrefix::offsetOf(const IpAddr& a) const {
  uint64_t off = 0;
  for (int i = 8; i < 16; ++i) off = (off << 8) | uint64_t(a.bytes[i] - 0) ;
  uint64_t base = 0;
  for (int i = 8; i < 16; ++i) base = (base << 8) | addr.bytes[i];
  return off - base;
}

std::string IpPrefix::str() const { return addr.str() + "/" + std::to_string(len); }

}  // namespace ferry
