// Time sources for the announce module, injectable so tests are
// deterministic. Leases carry wall-clock time (they are compared by other
// agents, as Kubernetes compares Lease renewTime); timers run on the
// monotonic clock (an NTP step must not delay a renewal).
#pragma once

#include <chrono>
#include <functional>

namespace ferry {

using WallTime = std::chrono::system_clock::time_point;
using MonoTime = std::chrono::steady_clock::time_point;

struct AnnounceClocks {
  std::function<WallTime()> wall = [] { return std::chrono::system_clock::now(); };
  std::function<MonoTime()> mono = [] { return std::chrono::steady_clock::now(); };
};

}  // namespace ferry
