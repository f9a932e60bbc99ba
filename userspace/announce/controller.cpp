#include "announce/controller.h"

#include <algorithm>
#include <cstdio>

namespace ferry {

AnnounceController::AnnounceController(std::string nodeName, std::unique_ptr<LeaseStore> store,
                                       std::chrono::seconds leaseDuration, AnnounceClocks clocks,
                                       LogFn log, OpenFn open)
    : node_(std::move(nodeName)),
      store_(std::move(store)),
      interval_(std::max<std::chrono::milliseconds>(
          std::chrono::duration_cast<std::chrono::milliseconds>(leaseDuration) / 3,
          std::chrono::milliseconds(1))),
      clocks_(std::move(clocks)),
      log_(std::move(log)),
      open_(open ? std::move(open) : OpenFn([mono = clocks_.mono](const std::string& n) {
        return L2Announcer::open(n, mono);
      })),
      state_(node_) {}

AnnounceController::~AnnounceController() = default;

void AnnounceController::update(const ClusterSnapshot& snap) {
  if (stopped_) return;
  state_.setSnapshot(snap);
  recompute();
}

void AnnounceController::update(std::vector<Announceable> addrs,
                                std::map<std::string, Node> nodes) {
  if (stopped_) return;
  state_.setInputs(std::move(addrs), std::move(nodes));
  recompute();
}

void AnnounceController::setDevices(const std::vector<std::string>& ifnames) {
  if (stopped_) return;
  wanted_ = std::set<std::string>(ifnames.begin(), ifnames.end());
  for (auto it = devices_.begin(); it != devices_.end();) {
    if (wanted_.count(it->first)) {
      ++it;
      continue;
    }
    log(Level::Info, "L2 announcement: no longer answering on " + it->first);
    it = devices_.erase(it);
  }
  std::erase_if(openErrors_, [&](const auto& e) { return !wanted_.count(e.first); });
  reopenDevices();
}

// Opens wanted devices that are not open, replaces ones whose name now
// names another device.
void AnnounceController::reopenDevices() {
  for (const std::string& name : wanted_) {
    auto it = devices_.find(name);
    if (it != devices_.end()) {
      if (it->second->refresh()) continue;
      log(Level::Info, "L2 announcement: " + name + " changed, reopening");
      devices_.erase(it);
    }
    auto a = open_(name);
    if (!a) {
      std::string& last = openErrors_[name];
      if (last != a.status().message())
        log(Level::Warn,
            "L2 announcement on " + name + ": " + a.status().message() + " (retrying)");
      last = a.status().message();
      continue;
    }
    openErrors_.erase(name);
    (*a)->setOwned(announced_);
    log(Level::Info, "L2 announcement: answering ARP/NDP on " + name);
    devices_[name] = std::move(*a);
  }
}

std::set<IpAddr> AnnounceController::announceable() const {
  if (claimFrom_ && clocks_.mono() < *claimFrom_) return {};
  return state_.owned();
}

void AnnounceController::recompute() {
  std::set<IpAddr> before = announced_;
  state_.compute(leases_, clocks_.wall());
  std::set<IpAddr> now = announceable();
  for (const IpAddr& a : now)
    if (!before.count(a)) log(Level::Info, "L2 announcement: this node now owns " + a.str());
  for (const IpAddr& a : before)
    if (!now.count(a)) log(Level::Info, "L2 announcement: " + a.str() + " no longer owned here");
  std::vector<IpAddr> unowned = state_.unowned();
  if (unowned != lastUnowned_) {
    for (const IpAddr& a : unowned)
      if (std::find(lastUnowned_.begin(), lastUnowned_.end(), a) == lastUnowned_.end())
        log(Level::Warn, "L2 announcement: no eligible node for " + a.str() +
                             " (no Ready node with a live lease, or with a local endpoint)");
    lastUnowned_ = std::move(unowned);
  }
  announced_ = now;
  if (now != before)
    for (auto& [name, dev] : devices_) dev->setOwned(now);
}

void AnnounceController::tick() {
  Status s = store_->renew(node_, clocks_.wall());
  std::string err = s ? "" : s.message();
  if (err != renewError_) {
    if (!err.empty())
      log(Level::Warn, "L2 announcement: renewing the lease of " + node_ + ": " + err);
    else
      log(Level::Info, "L2 announcement: lease of " + node_ + " renewed again");
    renewError_ = err;
  }
  LeaseRead r = store_->readAll();
  std::string errs;
  for (const std::string& e : r.errors) errs += (errs.empty() ? "" : "; ") + e;
  if (errs != readErrors_ && !errs.empty()) log(Level::Warn, "L2 announcement: leases: " + errs);
  readErrors_ = errs;
  leases_ = std::move(r.leases);
  recompute();
  reopenDevices();
}

std::vector<int> AnnounceController::pollFds() const {
  std::vector<int> fds;
  for (const auto& [name, dev] : devices_)
    for (int fd : dev->pollFds()) fds.push_back(fd);
  return fds;
}

void AnnounceController::onReadable(int fd) {
  for (auto& [name, dev] : devices_) {
    auto fds = dev->pollFds();
    if (std::find(fds.begin(), fds.end(), fd) == fds.end()) continue;
    dev->onReadable(fd);
    return;
  }
}

int AnnounceController::timeoutMs() const {
  if (stopped_) return -1;
  int t = 0;
  if (nextTick_) {
    auto left = std::chrono::ceil<std::chrono::milliseconds>(*nextTick_ - clocks_.mono());
    t = std::max<int>(0, static_cast<int>(left.count()));
  }
  if (claimFrom_ && announced_.empty() && !state_.owned().empty()) {
    auto left = std::chrono::ceil<std::chrono::milliseconds>(*claimFrom_ - clocks_.mono());
    t = std::min(t, std::max<int>(0, static_cast<int>(left.count())));
  }
  for (const auto& [name, dev] : devices_) {
    int d = dev->timeoutMs();
    if (d >= 0) t = std::min(t, d);
  }
  return t;
}

void AnnounceController::onTimer() {
  if (stopped_) return;
  MonoTime now = clocks_.mono();
  if (!claimFrom_) claimFrom_ = now + interval_ + std::chrono::milliseconds(100);
  bool holdOver = announced_.empty() && now >= *claimFrom_ && !state_.owned().empty();
  if (!nextTick_ || now >= *nextTick_) {
    // From now, not from the due time: a stalled loop does not catch up
    // with a burst of renewals.
    nextTick_ = now + interval_;
    tick();
  } else if (holdOver) {
    recompute();
  }
  for (auto& [name, dev] : devices_) dev->onTimer();
}

void AnnounceController::stop() {
  if (stopped_) return;
  stopped_ = true;
  devices_.clear();
  Status s = store_->release(node_);
  if (!s) log(Level::Warn, "L2 announcement: releasing the lease of " + node_ + ": " + s.message());
}

std::map<std::string, AnnouncerStats> AnnounceController::deviceStats() const {
  std::map<std::string, AnnouncerStats> out;
  for (const auto& [name, dev] : devices_) out[name] = dev->stats();
  return out;
}

nlohmann::json AnnounceController::statusJson() const {
  nlohmann::json j;
  j["node"] = node_;
  j["owners"] = nlohmann::json::object();
  for (const auto& [addr, node] : state_.owners()) j["owners"][addr.str()] = node;
  j["owned"] = nlohmann::json::array();
  for (const IpAddr& a : announced_) j["owned"].push_back(a.str());
  j["unowned"] = nlohmann::json::array();
  for (const IpAddr& a : state_.unowned()) j["unowned"].push_back(a.str());
  j["devices"] = nlohmann::json::object();
  for (const auto& [name, dev] : devices_) {
    const AnnouncerStats& st = dev->stats();
    char mac[18];
    const MacAddr& m = dev->mac();
    std::snprintf(mac, sizeof mac, "%02x:%02x:%02x:%02x:%02x:%02x", m[0], m[1], m[2], m[3], m[4],
                  m[5]);
    j["devices"][name] = {{"mac", mac},
                          {"arpReplies", st.arpReplies},
                          {"naReplies", st.naReplies},
                          {"gratuitous", st.gratuitous},
                          {"sendErrors", st.sendErrors},
                          {"lastError", st.lastError}};
  }
  j["leases"] = nlohmann::json::array();
  WallTime now = clocks_.wall();
  for (const Lease& l : leases_)
    j["leases"].push_back({{"holder", l.holder},
                           {"renewTime", formatMicroTime(l.renewTime)},
                           {"live", l.liveAt(now)}});
  return j;
}

}  // namespace ferry
