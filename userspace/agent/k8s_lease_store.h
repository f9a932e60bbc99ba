// L2 announcement leases as coordination.k8s.io/v1 Lease objects (Kubernetes
// mode, issue 13): node N's lease is Lease "ferry-l2-N" in --namespace,
// labelled app.kubernetes.io/component=ferry-l2-announcement; the file
// leases (announce/lease.h DirectoryLeaseStore) stay for directory mode.
//
// The announce controller calls renew() and readAll() from the event loop,
// which must never wait on the apiserver: here they only record the wish
// and return the last list. A thread of the store's own renews the lease
// (create, else a conditional update) and lists every node's lease, about
// four times per lease duration. While the apiserver is unreachable the
// last list stays (leases then expire by their own renewTime, so the
// owners seen stay as they were until then). release() deletes the lease,
// blocking (bounded by the client's timeout): it is called once, at stop.
#pragma once

#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "announce/lease.h"
#include "k8s/client.h"

namespace ferry {

class KubeLeaseStore : public LeaseStore {
 public:
  static constexpr char kLabel[] = "app.kubernetes.io/component";
  static constexpr char kLabelValue[] = "ferry-l2-announcement";

  KubeLeaseStore(std::shared_ptr<k8s::Client> client, std::string ns, std::chrono::seconds duration);
  ~KubeLeaseStore() override;
  Status renew(const std::string& node, WallTime now) override;
  Status release(const std::string& node) override;
  LeaseRead readAll() override;
  static std::string objectName(const std::string& node) { return "ferry-l2-" + node; }

 private:
  void run();
  void renewNow(const std::string& node, WallTime now);
  void list();

  std::shared_ptr<k8s::Client> client_;
  std::string ns_;
  std::chrono::seconds duration_;
  std::thread thread_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false, released_ = false;
  std::string node_;      // whose lease to renew ("" before the first renew())
  WallTime wantAt_{};     // renew() asked at
  std::string lastError_;
  LeaseRead read_;        // the last list
  // thread-owned
  nlohmann::json mine_;   // this node's Lease as stored
};

}  // namespace ferry
