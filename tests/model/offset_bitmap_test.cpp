// OffsetBitmap's search equals the linear probe it replaces.
#include <gtest/gtest.h>

#include <random>
#include <set>

#include "model/offset_bitmap.h"

namespace ferry {
namespace {

std::optional<uint64_t> probe(const std::set<uint64_t>& used, uint64_t lo, uint64_t hi,
                              uint64_t start) {
  uint64_t count = hi - lo;
  for (uint64_t i = 0; i < count; ++i) {
    uint64_t o = lo + (start - lo + i) % count;
    if (!used.count(o)) return o;
  }
  return std::nullopt;
}

TEST(OffsetBitmap, FindsWhatALinearProbeFinds) {
  std::mt19937_64 rng(5);
  for (uint64_t n : {1u, 63u, 64u, 65u, 4096u, 5000u, 70000u}) {
    OffsetBitmap bits(n);
    std::set<uint64_t> used;
    for (int step = 0; step < 3000; ++step) {
      uint64_t i = rng() % n;
      // mostly fill, sometimes free: reach nearly full states
      if (rng() % 4) {
        bits.set(i);
        used.insert(i);
      } else {
        bits.clear(i);
        used.erase(i);
      }
      uint64_t lo = rng() % n, hi = lo + 1 + rng() % (n - lo), start = lo + rng() % (hi - lo);
      ASSERT_EQ(bits.firstFree(lo, hi, start), probe(used, lo, hi, start))
          << "n " << n << " step " << step << " [" << lo << "," << hi << ") from " << start;
    }
  }
}

}  // namespace
}  // namespace ferry
