// Answers ARP requests and IPv6 neighbour solicitations for the addresses
// this node owns, on one Ethernet device, with that device's MAC; the
// addresses are configured on no interface (the kernel does not answer
// for them). Two AF_PACKET sockets bound to the device, each behind a
// classic BPF filter so only ARP requests and ICMPv6 neighbour
// solicitations reach userspace; non-blocking, driven by the agent's
// poll loop.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "announce/clock.h"
#include "announce/packet.h"
#include "announce/schedule.h"
#include "common/status.h"
#include "model/ip.h"

namespace ferry {

struct AnnouncerStats {
  uint64_t arpReplies = 0;
  uint64_t naReplies = 0;
  uint64_t gratuitous = 0;  // gratuitous ARPs + unsolicited NAs
  uint64_t sendErrors = 0;
  std::string lastError;
};

class L2Announcer {
 public:
  // Fails when the device does not exist (yet) or is not Ethernet.
  static Expected<std::unique_ptr<L2Announcer>> open(const std::string& ifname,
                                                     std::function<MonoTime()> mono = {});
  ~L2Announcer();
  L2Announcer(const L2Announcer&) = delete;
  L2Announcer& operator=(const L2Announcer&) = delete;

  // The addresses to answer for (IPv4 and IPv6 mixed). Newly owned ones
  // get gratuitous ARPs / unsolicited NAs at once and twice more (see
  // GratuitousSchedule); ones no longer owned stop being answered at once.
  void setOwned(const std::set<IpAddr>& owned);
  const std::set<IpAddr>& owned() const { return owned_; }

  std::vector<int> pollFds() const { return {arpFd_, ndFd_}; }
  // Answers what is queued on fd (a bounded batch; poll says if more).
  void onReadable(int fd);
  // Milliseconds until onTimer has something to send; -1 = nothing.
  int timeoutMs() const;
  void onTimer();

  // Re-reads the device: false when it is gone or its name now belongs to
  // another ifindex (then open a new announcer). A changed MAC is taken
  // over in place and announced again.
  bool refresh();

  const std::string& ifname() const { return ifname_; }
  int ifindex() const { return ifindex_; }
  const MacAddr& mac() const { return mac_; }
  const AnnouncerStats& stats() const { return stats_; }

 private:
  L2Announcer() = default;
  void send(int fd, const Frame& f, uint64_t* counter);
  void syncMulticast();
  void restartAll();

  std::string ifname_;
  int ifindex_ = 0;
  MacAddr mac_{};
  int arpFd_ = -1, ndFd_ = -1;
  std::function<MonoTime()> mono_;
  std::set<IpAddr> owned_;
  std::set<MacAddr> joined_;  // solicited-node multicast MACs we receive
  GratuitousSchedule schedule_;
  AnnouncerStats stats_;
};

}  // namespace ferry
