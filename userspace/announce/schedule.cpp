#include "announce/schedule.h"

#include <iterator>

namespace ferry {

constexpr std::chrono::milliseconds GratuitousSchedule::kOffsets[];

void GratuitousSchedule::start(const IpAddr& addr, MonoTime now) {
  pending_[addr] = Series{now, 0};
}

std::vector<IpAddr> GratuitousSchedule::takeDue(MonoTime now) {
  std::vector<IpAddr> due;
  for (auto it = pending_.begin(); it != pending_.end();) {
    Series& s = it->second;
    if (now < s.start + kOffsets[s.sent]) {
      ++it;
      continue;
    }
    due.push_back(it->first);
    // A late timer does not send a burst: skip the offsets already past.
    while (s.sent < std::size(kOffsets) && now >= s.start + kOffsets[s.sent]) ++s.sent;
    it = s.sent == std::size(kOffsets) ? pending_.erase(it) : std::next(it);
  }
  return due;
}

std::optional<MonoTime> GratuitousSchedule::next() const {
  std::optional<MonoTime> n;
  for (const auto& [addr, s] : pending_) {
    MonoTime t = s.start + kOffsets[s.sent];
    if (!n || t < *n) n = t;
  }
  return n;
}

}  // namespace ferry
