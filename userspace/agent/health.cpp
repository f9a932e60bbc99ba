#include "agent/health.h"

#include <netinet/in.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include <nlohmann/json.hpp>

#include "model/endpoint_sets.h"

namespace ferry {

namespace {
// Probes come from a load balancer's few health checkers; an idle or slow
// client holds a slot for at most kIdleSeconds.
constexpr unsigned kMaxConns = 64;
constexpr unsigned kMaxPerClient = 32;
constexpr unsigned kIdleSeconds = 2;
}  // namespace

std::map<uint16_t, HealthTarget> healthTargets(const ClusterSnapshot& snap,
                                               const std::string& nodeName) {
  std::map<uint16_t, HealthTarget> out;
  for (const auto& [key, svc] : snap.services) {
    if (!svc.healthCheckNodePort || !svc.externalTrafficLocal) continue;
    HealthTarget t{svc.ns, svc.name};
    // kube-proxy counts ready local endpoints once per address, not per
    // port: serving-but-terminating ones do not count, so a node with only
    // those answers 503 while still serving them (KEP-1669).
    std::vector<IpAddr> seen;
    for (const ServicePort& sp : svc.ports)
      for (const Endpoint& ep : sp.endpoints)
        if (endpointReady(ep, svc) && ep.nodeName == nodeName &&
            std::find(seen.begin(), seen.end(), ep.ip) == seen.end())
          seen.push_back(ep.ip);
    t.localEndpoints = static_cast<int>(seen.size());
    for (const IpAddr& ip : seen) ++(ip.isV4() ? t.local4 : t.local6);
    bool has4 = false, has6 = false;
    for (const IpAddr& ip : svc.clusterIPs) (ip.isV4() ? has4 : has6) = true;
    t.dualStack = has4 && has6;
    out[svc.healthCheckNodePort] = t;
  }
  return out;
}

HttpReply healthReply(const HealthTarget& t, bool probeV6) {
  int n = t.countFor(probeV6);
  nlohmann::json body = {{"service", {{"namespace", t.ns}, {"name", t.name}}},
                         {"localEndpoints", n},
                         {"serviceProxyHealthy", true}};
  return {n > 0 ? 200u : 503u, "application/json",
          body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n"};
}

std::vector<std::string> HealthServer::update(const std::map<uint16_t, HealthTarget>& targets) {
  std::vector<std::string> errors;
  for (auto it = ports_.begin(); it != ports_.end();)
    it = targets.count(it->first) ? std::next(it) : ports_.erase(it);
  for (const auto& [port, target] : targets) {
    auto it = ports_.find(port);
    if (it != ports_.end()) {
      *it->second.target = target;
      continue;
    }
    auto shared = std::make_shared<HealthTarget>(target);
    sockaddr_in6 any{};
    any.sin6_family = AF_INET6;
    any.sin6_port = htons(port);
    auto http = HttpListener::open(
        "healthCheckNodePort " + std::to_string(port) + " of " + target.ns + "/" + target.name, any,
        [shared](const HttpRequest& req) {
          if (req.method != "GET" && req.method != "HEAD")
            return HttpReply{405, "text/plain; charset=utf-8", "GET only\n"};
          return healthReply(*shared, req.fromIpv6);  // any path, as kube-proxy
        },
        HttpLimits{kMaxConns, kMaxPerClient, kIdleSeconds});
    if (!http) {
      errors.push_back(http.status().message());
      continue;
    }
    ports_[port] = Port{std::move(*http), shared};
  }
  return errors;
}

std::vector<int> HealthServer::pollFds() const {
  std::vector<int> fds;
  for (const auto& [port, p] : ports_) fds.push_back(p.http->pollFd());
  return fds;
}

void HealthServer::onReadable(int fd) {
  for (auto& [port, p] : ports_)
    if (p.http->pollFd() == fd) return p.http->run();
}

int HealthServer::timeoutMs() const {
  int best = -1;
  for (const auto& [port, p] : ports_) {
    int t = p.http->timeoutMs();
    if (t >= 0 && (best < 0 || t < best)) best = t;
  }
  return best;
}

void HealthServer::onTimer() {
  for (auto& [port, p] : ports_)
    if (p.http->timeoutMs() == 0) p.http->run();
}

}  // namespace ferry
