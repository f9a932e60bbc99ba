// IpAddr orders byte-wise, as the defaulted <=> over its 16 bytes did
// (sorted endpoints, the planner's maps and the snapshot depend on it); the
// compare now reads two big-endian words instead of calling memcmp.
#include <gtest/gtest.h>

#include <cstring>
#include <random>

#include "model/ip.h"

namespace ferry {
namespace {

TEST(IpAddrOrder, MatchesByteWiseOrder) {
  std::mt19937_64 rng(12);
  auto pick = [&] {
    IpAddr a;
    for (auto& b : a.bytes) b = static_cast<uint8_t>(rng() % 4 == 0 ? rng() : (rng() % 3) * 0x7f);
    return a;
  };
  for (int i = 0; i < 20000; ++i) {
    IpAddr a = pick(), b = i % 5 == 0 ? pick() : a;
    if (i % 5 == 1) b.bytes[rng() % 16] ^= static_cast<uint8_t>(1u << (rng() % 8));
    int want = std::memcmp(a.bytes.data(), b.bytes.data(), 16);
    auto got = a <=> b;
    EXPECT_EQ(got < 0, want < 0);
    EXPECT_EQ(got == 0, want == 0);
    EXPECT_EQ(a == b, want == 0);
  }
  EXPECT_LT(*IpAddr::parse("198.18.0.2"), *IpAddr::parse("198.18.0.10"));
  EXPECT_LT(*IpAddr::parse("198.18.255.255"), *IpAddr::parse("198.19.0.0"));
  EXPECT_LT(*IpAddr::parse("2001:db8::1"), *IpAddr::parse("2001:db8::1:0"));
}

}  // namespace
}  // namespace ferry
