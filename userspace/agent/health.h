// healthCheckNodePort, served as kube-proxy does: for each LoadBalancer
// service with externalTrafficPolicy Local, an HTTP listener on its
// healthCheckNodePort answering 200 with the number of this node's ready
// endpoints, or 503 when there are none, so an outside load balancer
// sends traffic only to nodes that can serve it locally.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "agent/http_server.h"
#include "model/snapshot.h"

namespace ferry {

/// What one healthCheckNodePort answers. kube-proxy runs one proxier per
/// IP family, each counting the endpoints of its own family, so a
/// dual-stack service's probe is answered with the count of the family it
/// came in by (a dual-stack pod counts once in each, not twice).
struct HealthTarget {
  std::string ns, name;
  int localEndpoints = 0;  // ready local endpoints (distinct addresses), every family
  bool dualStack = false;  // clusterIPs of both families: count per family
  int local4 = 0, local6 = 0;
  /// The count a probe that came over IPv6 (else IPv4) is answered with.
  int countFor(bool probeV6) const {
    return dualStack ? (probeV6 ? local6 : local4) : localEndpoints;
  }
  bool operator==(const HealthTarget&) const = default;
};

// port -> service, from a snapshot, for this node.
std::map<uint16_t, HealthTarget> healthTargets(const ClusterSnapshot& snap,
                                               const std::string& nodeName);

/// The reply for a target (pure, for tests): 200 with the count of ready
/// local endpoints (HealthTarget::countFor the probe's family) as
/// kube-proxy's JSON, 503 when there are none.
HttpReply healthReply(const HealthTarget& t, bool probeV6 = false);

/// One HttpListener per healthCheckNodePort, on every address of the node
/// in both families (as kube-proxy's two proxiers of a dual-stack node), driven by the agent's poll loop: a slow or silent
/// client never stalls the agent; it is dropped after 2 s of silence.
class HealthServer {
 public:
  /// Opens listeners for new ports, closes those no longer wanted, and
  /// points kept ones at their new target. Returns one message per port
  /// that could not be opened (naming the port and the service).
  std::vector<std::string> update(const std::map<uint16_t, HealthTarget>& targets);
  std::vector<int> pollFds() const;
  /// Runs the listener that owns `fd` (one of pollFds()).
  void onReadable(int fd);
  int timeoutMs() const;  // -1: nothing pending
  /// Runs the listeners whose timeout is due.
  void onTimer();

 private:
  struct Port {
    std::unique_ptr<HttpListener> http;
    std::shared_ptr<HealthTarget> target;  // read by the listener's handler
  };
  std::map<uint16_t, Port> ports_;
};

}  // namespace ferry
