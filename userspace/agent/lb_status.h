// The LoadBalancer status writer of Kubernetes mode (issue 13): every node
// computes the same LoadBalancer assignment, and exactly one of them, the
// holder of the coordination.k8s.io/v1 Lease "ferry-loadbalancer-status"
// in --namespace, writes it back to each Service's
// status.loadBalancer.ingress with a merge PATCH of the status subresource
// (so `kubectl get svc` shows EXTERNAL-IP). A new holder changes nothing:
// it writes only where the stored status differs from the assignment.
//
// Leader election as client-go's leaderelection does: a holder renews every
// kRenew; another node takes the lease over once it has seen the same
// renewTime for a whole leaseDurationSeconds (its own clock, never the
// holder's: no clock skew), with a conditional update (409: somebody else
// won). All API calls run on the writer's own thread; the agent's loop only
// hands over the wanted state (update()) and reads status().
#pragma once

#include <chrono>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "k8s/client.h"

namespace ferry {

struct LbStatusWant {
  std::vector<std::string> ingress;   // the assigned addresses (empty: none)
  std::vector<std::string> observed;  // status.loadBalancer.ingress[].ip as last seen
  bool operator==(const LbStatusWant&) const = default;
};

class LbStatusWriter {
 public:
  static constexpr char kLeaseName[] = "ferry-loadbalancer-status";
  static constexpr auto kLeaseDuration = std::chrono::seconds(15);
  static constexpr auto kRenew = std::chrono::seconds(5);

  LbStatusWriter(std::shared_ptr<k8s::Client> client, std::string ns, std::string identity,
                 std::chrono::milliseconds leaseDuration = kLeaseDuration,
                 std::chrono::milliseconds renew = kRenew);
  ~LbStatusWriter();  // stops the thread; the lease is left to expire

  // The wanted state of every LoadBalancer service ferry serves, keyed
  // ns/name (a service missing here is not written).
  void update(std::map<std::string, LbStatusWant> want);
  bool leader() const;
  // {"leader", "holder", "writes", "lastError"} for ferryctl status.
  nlohmann::json status() const;

 private:
  void run();
  void elect();
  bool write();  // false when a PATCH failed
  void setError(const std::string& e);

  std::shared_ptr<k8s::Client> client_;
  std::string ns_, id_;
  std::chrono::milliseconds duration_, renew_;
  std::thread thread_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false, dirty_ = true;
  std::map<std::string, LbStatusWant> want_;
  // thread-owned
  nlohmann::json lease_;
  std::string seenRenew_;
  std::chrono::steady_clock::time_point seenAt_{};
  std::chrono::steady_clock::time_point renewedAt_{};
  std::map<std::string, std::vector<std::string>> written_;
  // under mu_
  bool leader_ = false;
  std::string holder_, lastError_;
  uint64_t writes_ = 0;
};

}  // namespace ferry
