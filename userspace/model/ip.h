// IP addresses and prefixes, IPv4 and IPv6, in one 16-byte form
// (IPv4 as IPv4-mapped ::ffff:a.b.c.d), the same form as the BPF ABI.
#pragma once

#include <array>
#include <compare>
#include <cstdint>
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
  auto operator<=>(const IpAddr&) const = default;
  bool operator==(const IpAddr&) const = default;
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
