// Free-slot search for the allocators (ClusterIPs, node ports): one bit per
// offset plus one summary bit per 64-offset word that is full, so finding
// the first free offset at or after a start skips 4,096 taken offsets per
// summary word: a nearly full service CIDR costs about what an empty one
// does (/16: at most 16 summary words and 2 words read per search).
#pragma once

#include <bit>
#include <cstdint>
#include <optional>
#include <vector>

namespace ferry {

class OffsetBitmap {
 public:
  explicit OffsetBitmap(uint64_t n) : n_(n), words_((n + 63) / 64), full_((words_.size() + 63) / 64) {}

  uint64_t size() const { return n_; }
  bool test(uint64_t i) const { return words_[i / 64] >> (i % 64) & 1; }
  void set(uint64_t i) {
    uint64_t& w = words_[i / 64];
    w |= uint64_t(1) << (i % 64);
    if (w == ~uint64_t(0)) full_[i / 4096] |= uint64_t(1) << (i / 64 % 64);
  }
  void clear(uint64_t i) {
    words_[i / 64] &= ~(uint64_t(1) << (i % 64));
    full_[i / 4096] &= ~(uint64_t(1) << (i / 64 % 64));
  }

  // The first free offset in [start, hi), else in [lo, start): the order a
  // linear probe from `start` wrapping inside [lo, hi) visits them.
  std::optional<uint64_t> firstFree(uint64_t lo, uint64_t hi, uint64_t start) const {
    if (auto i = scan(start, hi)) return i;
    return scan(lo, start);
  }

 private:
  // First free offset in [a, b).
  std::optional<uint64_t> scan(uint64_t a, uint64_t b) const {
    while (a < b) {
      uint64_t wi = a / 64;
      uint64_t free = ~words_[wi] & (~uint64_t(0) << (a % 64));
      if (free) {
        uint64_t i = wi * 64 + uint64_t(std::countr_zero(free));
        return i < b ? std::optional<uint64_t>(i) : std::nullopt;
      }
      // Next word that is not full, via the summary.
      uint64_t next = wi + 1;
      while (next * 64 < b) {
        uint64_t si = next / 64;
        uint64_t notFull = ~full_[si] & (~uint64_t(0) << (next % 64));
        if (notFull) {
          next = si * 64 + uint64_t(std::countr_zero(notFull));
          break;
        }
        next = (si + 1) * 64;
      }
      a = next * 64;
    }
    return std::nullopt;
  }

  uint64_t n_;
  std::vector<uint64_t> words_;
  std::vector<uint64_t> full_;
};

}  // namespace ferry
