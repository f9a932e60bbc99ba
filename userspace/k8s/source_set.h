// The resources ferry's Kubernetes source follows, one Reflector each:
// Services, EndpointSlices and Nodes always; MetalLB IPAddressPools
// (metallb.io/v1beta1) and ServiceCIDRs (networking.k8s.io/v1) only when
// discovery lists them (issue 13). Discovery runs on the set's own thread
// and is retried with backoff, so start() never blocks; the queue reports
// synced only once discovery has answered and every chosen resource has
// completed its first list.
#pragma once

#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "k8s/client.h"
#include "k8s/event_queue.h"
#include "k8s/reflector.h"

namespace ferry::k8s {

struct SourceSetOptions {
  ReflectorOptions reflector;          // for every resource (log, timeouts, backoff)
  bool followIPAddressPools = true;    // when served
  bool followServiceCIDRs = true;      // when served
};

class SourceSet {
 public:
  SourceSet(std::shared_ptr<Client> client, EventQueue& queue, SourceSetOptions opts = {});
  ~SourceSet();  // stop()
  SourceSet(const SourceSet&) = delete;
  SourceSet& operator=(const SourceSet&) = delete;

  void start();
  void stop();

  // One entry per followed resource (empty until discovery answered).
  std::vector<ReflectorStatus> status() const;
  // The discovery error while it fails, else empty.
  std::string discoveryError() const;
  // The ids of the followed resources ("services", "ipaddresspools.metallb.io").
  std::vector<std::string> followed() const;

 private:
  void run();
  std::shared_ptr<Client> client_;
  EventQueue& queue_;
  SourceSetOptions opts_;
  int discoverySource_;
  std::thread thread_;
  std::atomic<bool> stopping_{false};
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::unique_ptr<Reflector>> reflectors_;
  std::string discoveryError_;
};

}  // namespace ferry::k8s
