#include "dataplane/maglev.h"

#include <cstring>

#include <ferry/jhash.h>

namespace ferry {

namespace {
// Two independent hashes of a backend's key (the paper's h1 and h2).
constexpr uint32_t kOffsetSeed = 0x4f464653;  // "OFFS"
constexpr uint32_t kSkipSeed = 0x534b4950;    // "SKIP"

void keyWords(const BackendKey& b, uint32_t w[5]) {
  std::memcpy(w, b.addr.bytes.data(), 16);
  w[4] = b.port;  // host order: the same on every node
}
}  // namespace

bool maglevSizeValid(uint32_t m) {
  if (m < 3 || m > FERRY_MAGLEV_TABLE_MAX) return false;
  for (uint32_t d = 2; d * d <= m; ++d)
    if (m % d == 0) return false;
  return true;
}

std::pair<uint32_t, uint32_t> maglevOffsetSkip(const BackendKey& b, uint32_t m) {
  uint32_t w[5];
  keyWords(b, w);
  uint32_t offset = ferry_jhash2(w, 5, kOffsetSeed) % m;
  uint32_t skip = ferry_jhash2(w, 5, kSkipSeed) % (m - 1) + 1;
  return {offset, skip};
}

std::vector<uint32_t> maglevTable(const std::vector<std::pair<BackendKey, uint32_t>>& backends,
                                  uint32_t m) {
  std::vector<uint32_t> table;
  size_t n = backends.size();
  if (n == 0 || m < 3) return table;
  std::vector<uint32_t> offset(n), skip(n), next(n, 0);
  for (size_t i = 0; i < n; ++i)
    std::tie(offset[i], skip[i]) = maglevOffsetSkip(backends[i].first, m);
  // The paper's population loop: backends take turns claiming their next
  // preferred free position until every position is taken. Each preference
  // list is a permutation of [0, m) (m prime), so every turn terminates.
  std::vector<int64_t> owner(m, -1);
  uint32_t filled = 0;
  while (filled < m) {
    for (size_t i = 0; i < n && filled < m; ++i) {
      uint64_t c;
      do {
        c = (offset[i] + uint64_t(next[i]) * skip[i]) % m;
        next[i]++;
      } while (owner[c] >= 0);
      owner[c] = static_cast<int64_t>(i);
      filled++;
    }
  }
  table.resize(m);
  for (uint32_t j = 0; j < m; ++j) table[j] = backends[owner[j]].second;
  return table;
}

}  // namespace ferry
