// The agent's own health endpoint (--healthz-listen, kube-proxy's
// --healthz-bind-address, port 10256 by convention), for the kubelet's
// probes of the DaemonSet (deploy/daemonset.yaml):
//   GET /healthz  200 while the event loop runs (it answers from the loop,
//                 so a stuck loop fails the liveness probe); /livez alike;
//   GET /readyz   200 once the first complete list is programmed, else 503
//                 (Kubernetes mode: every initial list synced).
// Anything else is 404; a method other than GET or HEAD is 405. Served by
// HttpListener (libmicrohttpd) from the agent's poll loop.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "agent/http_server.h"
#include "common/status.h"

namespace ferry {

/// The reply to one request (pure, for tests): `ready` and, when not,
/// `detail` saying why.
HttpReply healthzReply(const std::string& method, const std::string& path, bool ready,
                       const std::string& detail);

class HealthzServer {
 public:
  /// `listen`: ":PORT", "ADDR:PORT" or "[V6]:PORT". `notReady` is asked per
  /// /readyz request and returns the reason when not ready ("" = ready).
  static Expected<std::unique_ptr<HealthzServer>> listen(const std::string& listen,
                                                         std::function<std::string()> notReady);
  int pollFd() const { return http_->pollFd(); }
  void run() { http_->run(); }
  int timeoutMs() const { return http_->timeoutMs(); }

 private:
  explicit HealthzServer(std::unique_ptr<HttpListener> http) : http_(std::move(http)) {}
  std::unique_ptr<HttpListener> http_;
};

}  // namespace ferry
