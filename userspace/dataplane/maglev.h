// Maglev consistent hashing (Eisenbud et al., "Maglev: A Fast and
// Reliable Software Network Load Balancer", NSDI 2016, section 3.4): the
// lookup table an external frontend's new flows are hashed into. A pure
// function of the backends' stable keys (address, port), so every node
// with the same endpoints builds the same table, and removing one of N
// backends moves about 1/N of the positions.
#pragma once

#include <cstdint>
#include <utility>
#include <vector>

#include "dataplane/planner.h"

namespace ferry {

// True for a prime in [3, FERRY_MAGLEV_TABLE_MAX]: the table sizes
// --maglev-table-size accepts (a prime makes every skip a generator).
bool maglevSizeValid(uint32_t m);

// The permutation parameters of one backend: offset in [0, m), skip in
// [1, m); position j of its preference list is (offset + j * skip) % m.
std::pair<uint32_t, uint32_t> maglevOffsetSkip(const BackendKey& b, uint32_t m);

// The table of size m (a prime): each position holds the id of one of
// `backends` (key, id). The order of `backends` breaks ties, so callers
// pass them in key order. Empty when `backends` is.
std::vector<uint32_t> maglevTable(const std::vector<std::pair<BackendKey, uint32_t>>& backends,
                                  uint32_t m);

}  // namespace ferry
