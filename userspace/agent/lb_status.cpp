#include "agent/lb_status.h"

#include <ctime>

#include "agent/log.h"

namespace ferry {

using nlohmann::json;

namespace {

// metav1.MicroTime: RFC 3339 with microseconds, UTC.
std::string microNow() {
  auto now = std::chrono::system_clock::now();
  auto us = std::chrono::duration_cast<std::chrono::microseconds>(now.time_since_epoch()).count();
  std::time_t secs = static_cast<std::time_t>(us / 1000000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[64];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  char out[80];
  std::snprintf(out, sizeof out, "%s.%06lldZ", buf, static_cast<long long>(us % 1000000));
  return out;
}

}  // namespace

LbStatusWriter::LbStatusWriter(std::shared_ptr<k8s::Client> client, std::string ns,
                               std::string identity, std::chrono::milliseconds leaseDuration,
                               std::chrono::milliseconds renew)
    : client_(std::move(client)),
      ns_(std::move(ns)),
      id_(std::move(identity)),
      duration_(leaseDuration),
      renew_(renew) {
  thread_ = std::thread([this] { run(); });
}

LbStatusWriter::~LbStatusWriter() {
  {
    std::lock_guard lk(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void LbStatusWriter::update(std::map<std::string, LbStatusWant> want) {
  std::lock_guard lk(mu_);
  if (want == want_) return;
  want_ = std::move(want);
  dirty_ = true;
  cv_.notify_all();
}

bool LbStatusWriter::leader() const {
  std::lock_guard lk(mu_);
  return leader_;
}

json LbStatusWriter::status() const {
  std::lock_guard lk(mu_);
  return {{"lease", ns_ + "/" + kLeaseName},
          {"leader", leader_},
          {"holder", holder_},
          {"writes", writes_},
          {"lastError", lastError_}};
}

void LbStatusWriter::setError(const std::string& e) {
  std::lock_guard lk(mu_);
  if (e != lastError_ && !e.empty()) logWarn("LoadBalancer status writer: " + e);
  lastError_ = e;
}

void LbStatusWriter::run() {
  bool backoff = false;
  for (;;) {
    {
      std::unique_lock lk(mu_);
      // after a failed write: wait the whole period (no busy retry)
      cv_.wait_for(lk, renew_ / 2, [&] { return stop_ || (!backoff && dirty_ && leader_); });
      if (stop_) return;
    }
    elect();
    backoff = leader() && !write();
  }
}

void LbStatusWriter::elect() {
  auto now = std::chrono::steady_clock::now();
  bool wasLeader = leader();
  if (wasLeader && now - renewedAt_ < renew_) return;
  k8s::LeaseResult got = client_->getLease(ns_, kLeaseName);
  json spec = json::object();
  std::string holder;
  if (got.outcome == k8s::LeaseResult::Ok) {
    lease_ = got.lease;
    spec = lease_.value("spec", json::object());
    holder = spec.value("holderIdentity", "");
    std::string renew = spec.value("renewTime", "");
    if (renew != seenRenew_) seenRenew_ = renew, seenAt_ = now;
  } else if (got.outcome != k8s::LeaseResult::NotFound) {
    setError(got.error.message());
    std::lock_guard lk(mu_);
    leader_ = false;  // cannot renew: another node may take over
    return;
  }
  bool mine = got.outcome == k8s::LeaseResult::Ok && holder == id_;
  bool free = got.outcome == k8s::LeaseResult::NotFound || holder.empty() ||
              now - seenAt_ >= std::chrono::milliseconds(
                                   spec.value("leaseDurationSeconds", 15) * 1000);
  k8s::LeaseResult put;
  std::string ts = microNow();
  if (got.outcome == k8s::LeaseResult::NotFound) {
    json l = {{"metadata", {{"name", kLeaseName}, {"namespace", ns_}}},
              {"spec",
               {{"holderIdentity", id_},
                {"leaseDurationSeconds", duration_.count() / 1000},
                {"acquireTime", ts},
                {"renewTime", ts},
                {"leaseTransitions", 0}}}};
    put = client_->createLease(ns_, l);
  } else if (mine || free) {
    json l = lease_;
    l["spec"]["holderIdentity"] = id_;
    l["spec"]["leaseDurationSeconds"] = duration_.count() / 1000;
    l["spec"]["renewTime"] = ts;
    if (!mine) {
      l["spec"]["acquireTime"] = ts;
      l["spec"]["leaseTransitions"] = spec.value("leaseTransitions", 0) + 1;
    }
    put = client_->updateLease(ns_, l);
  } else {
    std::lock_guard lk(mu_);
    if (leader_) logInfo("LoadBalancer status writer: " + holder + " holds the lease now");
    leader_ = false;
    holder_ = holder;
    return;
  }
  std::lock_guard lk(mu_);
  if (put.outcome == k8s::LeaseResult::Ok) {
    lease_ = put.lease;
    renewedAt_ = now;
    if (!leader_) {
      logInfo("LoadBalancer status writer: this node (" + id_ + ") holds lease " + ns_ + "/" +
              kLeaseName + ": writing status.loadBalancer");
      dirty_ = true;
      written_.clear();
    }
    leader_ = true;
    holder_ = id_;
    lastError_.clear();
  } else {
    // Conflict / AlreadyExists: another node won the race.
    leader_ = false;
    if (put.outcome == k8s::LeaseResult::Failed) {
      if (put.error.message() != lastError_) logWarn("LoadBalancer status writer: " + put.error.message());
      lastError_ = put.error.message();
    }
  }
}

bool LbStatusWriter::write() {
  std::map<std::string, LbStatusWant> want;
  {
    std::lock_guard lk(mu_);
    want = want_;
    dirty_ = false;
  }
  bool failed = false;
  for (const auto& [key, w] : want) {
    if (w.ingress == w.observed) {
      written_[key] = w.ingress;
      continue;
    }
    auto it = written_.find(key);
    // Written already, the watch has not shown it yet: not again.
    if (it != written_.end() && it->second == w.ingress) continue;
    json ingress = json::array();
    for (const std::string& ip : w.ingress) ingress.push_back({{"ip", ip}, {"ipMode", "VIP"}});
    size_t slash = key.find('/');
    auto r = client_->patchServiceStatus(key.substr(0, slash), key.substr(slash + 1),
                                         {{"loadBalancer", {{"ingress", ingress}}}});
    if (!r) {
      setError(r.status().message());
      failed = true;
      continue;
    }
    written_[key] = w.ingress;
    std::lock_guard lk(mu_);
    ++writes_;
  }
  for (auto it = written_.begin(); it != written_.end();)
    it = want.count(it->first) ? std::next(it) : written_.erase(it);
  if (failed) {
    std::lock_guard lk(mu_);
    dirty_ = true;  // retried at the next pass
    return false;
  }
  setError("");
  return true;
}

}  // namespace ferry
