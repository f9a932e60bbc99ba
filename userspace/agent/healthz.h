// The agent's own health endpoint (--healthz-listen, kube-proxy's
// --healthz-bind-address, port 10256 by convention), for the kubelet's
// probes of the DaemonSet (deploy/daemonset.yaml):
//   GET /healthz  200 while the event loop runs (it answers from the loop,
//                 so a stuck loop fails the liveness probe);
//   GET /readyz   200 once the first complete list is programmed, else 503
//                 (Kubernetes mode: every initial list synced).
// Anything else is 404. Non-blocking, driven by the agent's poll loop; a
// slow or silent client is dropped after a deadline.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "common/status.h"

namespace ferry {

// The response to one request text (pure, for tests).
std::string healthzResponse(const std::string& request, bool ready, const std::string& detail);

class HealthzServer {
 public:
  // `listen`: ":PORT", "ADDR:PORT" or "[V6]:PORT". `ready` is asked per
  // /readyz request and returns the reason when not ready ("" = ready).
  static Expected<std::unique_ptr<HealthzServer>> listen(const std::string& listen,
                                                         std::function<std::string()> notReady);
  ~HealthzServer();
  std::vector<int> pollFds() const;
  void onReadable(int fd);
  int timeoutMs() const;  // -1: nothing pending
  void onTimer();

 private:
  using Clock = std::chrono::steady_clock;
  struct Conn {
    std::string request;
    Clock::time_point deadline;
  };
  HealthzServer(int fd, std::function<std::string()> notReady)
      : fd_(fd), notReady_(std::move(notReady)) {}
  void read(int fd);
  void drop(int fd);
  int fd_;
  std::function<std::string()> notReady_;
  std::map<int, Conn> conns_;
};

}  // namespace ferry
