#include "agent/k8s_lease_store.h"

#include <algorithm>

#include "agent/log.h"

namespace ferry {

using nlohmann::json;

KubeLeaseStore::KubeLeaseStore(std::shared_ptr<k8s::Client> client, std::string ns,
                               std::chrono::seconds duration)
    : client_(std::move(client)), ns_(std::move(ns)), duration_(duration) {
  thread_ = std::thread([this] { run(); });
}

KubeLeaseStore::~KubeLeaseStore() {
  {
    std::lock_guard lk(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

Status KubeLeaseStore::renew(const std::string& node, WallTime now) {
  std::lock_guard lk(mu_);
  bool first = node_.empty();
  node_ = node;
  wantAt_ = now;
  released_ = false;
  if (first) cv_.notify_all();
  return lastError_.empty() ? Status::ok() : Status::error(lastError_);
}

Status KubeLeaseStore::release(const std::string& node) {
  {
    std::lock_guard lk(mu_);
    released_ = true;
  }
  k8s::HttpRequest req;
  req.method = "DELETE";
  req.path = k8s::resources::Leases.objectPath(ns_, objectName(node));
  req.timeout = std::chrono::seconds(2);  // at stop: an unreachable apiserver must not hold it up
  auto r = client_->request(req);
  if (!r) return r.status();
  if (r->code >= 300 && r->code != 404) return k8s::apiError("delete lease " + objectName(node), *r);
  return Status::ok();
}

LeaseRead KubeLeaseStore::readAll() {
  std::lock_guard lk(mu_);
  return read_;
}

void KubeLeaseStore::renewNow(const std::string& node, WallTime now) {
  Lease l;
  l.holder = node;
  l.durationSeconds = static_cast<int>(duration_.count());
  l.renewTime = l.acquireTime = now;
  json obj = l.toJson();
  obj["metadata"]["name"] = objectName(node);
  obj["metadata"]["namespace"] = ns_;
  obj["metadata"]["labels"] = {{kLabel, kLabelValue}};
  k8s::LeaseResult r;
  if (!mine_.is_null()) {
    // keep acquireTime while our lease is still live
    std::string why;
    if (auto prev = Lease::fromJson(mine_, &why); prev && prev->holder == node && prev->liveAt(now))
      obj["spec"]["acquireTime"] = formatMicroTime(prev->acquireTime);
    obj["metadata"]["resourceVersion"] = mine_["metadata"].value("resourceVersion", "");
    r = client_->updateLease(ns_, obj);
  } else {
    r = client_->createLease(ns_, obj);
    if (r.outcome == k8s::LeaseResult::AlreadyExists) {
      // a previous run's: take it over with its resourceVersion
      k8s::LeaseResult got = client_->getLease(ns_, objectName(node));
      if (got.outcome == k8s::LeaseResult::Ok) {
        obj["metadata"]["resourceVersion"] = got.lease["metadata"].value("resourceVersion", "");
        r = client_->updateLease(ns_, obj);
      }
    }
  }
  std::lock_guard lk(mu_);
  if (r.outcome == k8s::LeaseResult::Ok) {
    mine_ = r.lease;
    if (!lastError_.empty()) logInfo("L2 announcement lease " + objectName(node) + ": renewed again");
    lastError_.clear();
    return;
  }
  if (r.outcome == k8s::LeaseResult::Conflict || r.outcome == k8s::LeaseResult::NotFound)
    mine_ = nullptr;  // read again next time
  std::string e = "L2 announcement lease " + ns_ + "/" + objectName(node) + ": " + r.error.message();
  if (e != lastError_) logWarn(e);
  lastError_ = e;
}

void KubeLeaseStore::list() {
  std::string path = k8s::resources::Leases.collectionPath(ns_) + "?labelSelector=" + kLabel +
                     "%3D" + kLabelValue;
  auto r = client_->call("GET", path);
  if (!r) return;  // the last list stays; renew() reports the error
  LeaseRead out;
  if (r->contains("items") && (*r)["items"].is_array()) {
    for (json item : (*r)["items"]) {
      item["apiVersion"] = "coordination.k8s.io/v1";
      item["kind"] = "Lease";
      std::string why;
      if (auto l = Lease::fromJson(item, &why)) out.leases.push_back(*l);
      else out.errors.push_back("Lease " + ns_ + "/" + item["metadata"].value("name", "?") + ": " + why);
    }
  }
  std::sort(out.leases.begin(), out.leases.end(),
            [](const Lease& a, const Lease& b) { return a.holder < b.holder; });
  std::lock_guard lk(mu_);
  read_ = std::move(out);
}

void KubeLeaseStore::run() {
  auto period = std::max<std::chrono::milliseconds>(std::chrono::milliseconds(200), duration_ / 4);
  for (;;) {
    std::string node;
    {
      std::unique_lock lk(mu_);
      cv_.wait_for(lk, period, [this] { return stop_; });
      if (stop_) return;
      if (!released_) node = node_;
    }
    if (!node.empty()) renewNow(node, std::chrono::system_clock::now());
    list();
  }
}

}  // namespace ferry
