// When to send the gratuitous ARPs / unsolicited NAs for an address just
// taken over (pure): a few, spaced out, so one lost frame does not leave
// neighbours pointing at the previous owner until their cache expires.
#pragma once

#include <chrono>
#include <map>
#include <optional>
#include <vector>

#include "announce/clock.h"
#include "model/ip.h"

namespace ferry {

class GratuitousSchedule {
 public:
  // Offsets from taking over: 0, 0.2 s, 0.5 s.
  static constexpr std::chrono::milliseconds kOffsets[] = {
      std::chrono::milliseconds(0), std::chrono::milliseconds(200), std::chrono::milliseconds(500)};

  // Starts (or restarts) the series for addr.
  void start(const IpAddr& addr, MonoTime now);
  void stop(const IpAddr& addr) { pending_.erase(addr); }
  void clear() { pending_.clear(); }
  // The addresses with a frame due at `now` (each at most once per call),
  // advancing their series.
  std::vector<IpAddr> takeDue(MonoTime now);
  std::optional<MonoTime> next() const;

 private:
  struct Series {
    MonoTime start;
    size_t sent = 0;
  };
  std::map<IpAddr, Series> pending_;
};

}  // namespace ferry
