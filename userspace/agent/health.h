// healthCheckNodePort, served as kube-proxy does: for each LoadBalancer
// service with externalTrafficPolicy Local, an HTTP listener on its
// healthCheckNodePort answering 200 with the number of this node's ready
// endpoints, or 503 when there are none, so an outside load balancer
// sends traffic only to nodes that can serve it locally.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "model/snapshot.h"

namespace ferry {

struct HealthTarget {
  std::string ns, name;
  int localEndpoints = 0;
  bool operator==(const HealthTarget&) const = default;
};

// port -> service, from a snapshot, for this node.
std::map<uint16_t, HealthTarget> healthTargets(const ClusterSnapshot& snap,
                                               const std::string& nodeName);

// The HTTP response for a target (pure, for tests).
std::string healthResponse(const HealthTarget& t);

// Non-blocking, driven by the agent's poll loop: a slow or silent client
// never stalls the agent; it is dropped after a deadline.
class HealthServer {
 public:
  ~HealthServer();
  // Opens listeners for new ports, closes those no longer wanted.
  // Returns one message per port that could not be opened.
  std::vector<std::string> update(const std::map<uint16_t, HealthTarget>& targets);
  std::vector<int> pollFds() const;
  void onReadable(int fd);
  int timeoutMs() const;  // -1: nothing pending
  void onTimer();

 private:
  using Clock = std::chrono::steady_clock;
  struct Listener {
    int fd;
    HealthTarget target;
  };
  struct Conn {
    uint16_t port;
    std::string request;
    Clock::time_point deadline;
  };
  void accept(uint16_t port, int listenFd);
  void read(int fd);
  void answer(int fd, uint16_t port);
  void drop(int fd);
  std::map<uint16_t, Listener> listeners_;
  std::map<int, Conn> conns_;
};

}  // namespace ferry
