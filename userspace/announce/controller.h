// L2 announcement for the agent, in one object for its poll loop: renews
// this node's lease, reads everyone's, works out the owner of every
// LoadBalancer address (LbAnnouncement) and has an L2Announcer per
// external device answer ARP/NDP for the addresses this node owns.
//
//   Agent::create   announce_ = std::make_unique<AnnounceController>(node, store)
//   after sync()    announce_->update(snapshot_)
//   after devices   announce_->setDevices({external device names})
//   poll loop       pollFds() -> onReadable(fd); timeoutMs(); onTimer() every pass
//   on SIGTERM      announce_->stop()   (releases the lease: others take over at once)
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "announce/announcer.h"
#include "announce/clock.h"
#include "announce/coordinator.h"
#include "announce/lease.h"
#include "model/snapshot.h"

namespace ferry {

class AnnounceController {
 public:
  enum class Level { Info, Warn };
  using LogFn = std::function<void(Level, const std::string&)>;
  using OpenFn = std::function<Expected<std::unique_ptr<L2Announcer>>(const std::string& ifname)>;

  // The lease is renewed every leaseDuration / 3 (so two lost renewals
  // still leave it live), and all leases are re-read at the same pace:
  // an owner that dies is replaced within leaseDuration + leaseDuration/3.
  AnnounceController(
      std::string nodeName, std::unique_ptr<LeaseStore> store,
      std::chrono::seconds leaseDuration = std::chrono::seconds(kDefaultLeaseSeconds),
      AnnounceClocks clocks = {}, LogFn log = {}, OpenFn open = {});
  ~AnnounceController();

  // After every snapshot build; owners are recomputed with the leases as
  // last read.
  void update(const ClusterSnapshot& snap);
  // The same from parts (tests; a source other than a snapshot).
  void update(std::vector<Announceable> addrs, std::map<std::string, Node> nodes);
  // The devices to answer on (the node's external devices). Opens the new
  // ones, closes the ones gone from the list; one that cannot be opened
  // (not there yet) is retried at every lease tick.
  void setDevices(const std::vector<std::string>& ifnames);

  std::vector<int> pollFds() const;
  void onReadable(int fd);
  // Milliseconds until onTimer has work (lease tick or gratuitous ARPs).
  int timeoutMs() const;
  // Cheap when nothing is due: call on every pass of the loop.
  void onTimer();
  // Clean stop: stop answering and delete this node's lease.
  void stop();

  const LbAnnouncement& state() const { return state_; }
  std::map<std::string, AnnouncerStats> deviceStats() const;
  // For the control socket: {"node", "owners": {addr: node}, "owned": [addr],
  // "unowned": [addr], "devices": {name: {mac, arpReplies, naReplies,
  // gratuitous, sendErrors, lastError}}, "leases": [{holder, renewTime, live}]}.
  nlohmann::json statusJson() const;

 private:
  void tick();
  void recompute();
  void reopenDevices();
  void log(Level l, const std::string& m) const {
    if (log_) log_(l, m);
  }

  std::string node_;
  std::unique_ptr<LeaseStore> store_;
  std::chrono::milliseconds interval_;
  AnnounceClocks clocks_;
  LogFn log_;
  OpenFn open_;
  LbAnnouncement state_;
  std::vector<Lease> leases_;
  std::optional<MonoTime> nextTick_;  // nullopt: tick at the next onTimer
  bool stopped_ = false;
  std::set<std::string> wanted_;
  std::map<std::string, std::unique_ptr<L2Announcer>> devices_;
  std::map<std::string, std::string> openErrors_;  // last failure per device, logged once
  std::string renewError_, readErrors_;
  std::vector<IpAddr> lastUnowned_;
  // A starting agent announces nothing until the others have had one
  // lease read to see its lease (and to release what it takes over):
  // otherwise two nodes answer ARP for the same address for up to one
  // read interval.
  std::optional<MonoTime> claimFrom_;
  std::set<IpAddr> announced_;  // what the devices answer for
  std::set<IpAddr> announceable() const;
};

}  // namespace ferry
