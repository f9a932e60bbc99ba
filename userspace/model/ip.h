// IP addresses and prefixes, IPv4 and IPv6, in one 16-byte form
// (IPv4 as IPv4-mapped ::ffff:a.b.c.d), the same form as the BPF ABI.
#pragma once

#include <endian.h>

#include <array>
#include <compare>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>

namespace ferry {

struct IpAddr {
  std::array<uint8_t, 16> bytes{};  // network byte order

  static std::optional<IpAddr> parse(std::string_view text);
  static IpAddr fromV4(uint32_t hostOrder);
  bool isV4() const;
  uint32_t v4() const;  // host order; only when isV4()
  std::string str() const;
  // Byte-wise order (the defaulted one), as two big-endian 64-bit words:
  // the default called memcmp for every compare, 12-15% of the agent's CPU
  // in the planner's and the model's ordered maps at 100,000 services.
  std::strong_ordering operator<=>(const IpAddr& o) const {
    uint64_t a = hi(), b = o.hi();
    if (a != b) return a <=> b;
    return lo() <=> o.lo();
  }
  bool operator==(const IpAddr& o) const { return hi() == o.hi() && lo() == o.lo(); }

 private:
  uint64_t word(size_t at) const {
    uint64_t w;
    std::memcpy(&w, bytes.data() + at, sizeof w);
    return be64toh(w);
  }
  uint64_t hi() const { return word(0); }
  uint64_t lo() const { return word(8); }
};

struct IpPrefix {
  IpAddr addr;  // network address (host bits zero)
  int len = 0;  // prefix length in the address's own family (0-32 / 0-128)

  static std::optional<IpPrefix> parse(std::string_view text);
  // Like parse, but host bits are cleared instead of rejected, as Go's
  // net.ParseCIDR (and so Kubernetes) accepts "10.0.0.1/24".
  static std::optional<IpPrefix> parseMasked(std::string_view text);
  bool contains(const IpAddr& a) const;
  // Number of addresses, saturated at 2^63.
  uint64_t size() const;
  // The n-th address of the prefix (n < size()).
  IpAddr nth(uint64_t n) const;
  // Offset of a in the prefix (a must be contained).
  uint64_t offsetOf(const IpAddr& a) const;
  std::string str() const;
  auto operator<=>(const IpPrefix&) const = default;
  bool operator==(const IpPrefix&) const = default;
};

}  // namespace ferry
