#include "agent/health.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include <nlohmann/json.hpp>

#include "model/endpoint_sets.h"

namespace ferry {

namespace {
constexpr auto kClientDeadline = std::chrono::seconds(2);
constexpr size_t kMaxConns = 64;
constexpr size_t kMaxRequest = 4096;
}  // namespace

std::map<uint16_t, HealthTarget> healthTargets(const ClusterSnapshot& snap,
                                               const std::string& nodeName) {
  std::map<uint16_t, HealthTarget> out;
  for (const auto& [key, svc] : snap.services) {
    if (!svc.healthCheckNodePort || !svc.externalTrafficLocal) continue;
    HealthTarget t{svc.ns, svc.name, 0};
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
    out[svc.healthCheckNodePort] = t;
  }
  return out;
}

std::string healthResponse(const HealthTarget& t) {
  nlohmann::json body = {{"service", {{"namespace", t.ns}, {"name", t.name}}},
                         {"localEndpoints", t.localEndpoints},
                         {"serviceProxyHealthy", true}};
  std::string b = body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
  bool ok = t.localEndpoints > 0;
  return std::string("HTTP/1.1 ") + (ok ? "200 OK" : "503 Service Unavailable") +
         "\r\nContent-Type: application/json\r\nX-Content-Type-Options: nosniff\r\n"
         "Content-Length: " + std::to_string(b.size()) + "\r\nConnection: close\r\n\r\n" + b;
}

HealthServer::~HealthServer() {
  for (auto& [fd, c] : conns_) close(fd);
  for (auto& [port, l] : listeners_) close(l.fd);
}

std::vector<std::string> HealthServer::update(const std::map<uint16_t, HealthTarget>& targets) {
  std::vector<std::string> errors;
  for (auto it = listeners_.begin(); it != listeners_.end();) {
    if (targets.count(it->first)) {
      ++it;
      continue;
    }
    close(it->second.fd);
    it = listeners_.erase(it);
  }
  for (const auto& [port, target] : targets) {
    auto it = listeners_.find(port);
    if (it != listeners_.end()) {
      it->second.target = target;
      continue;
    }
    int fd = socket(AF_INET6, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int off = 0, on = 1;
    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof off);  // v4 and v6
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
    sockaddr_in6 a{};
    a.sin6_family = AF_INET6;
    a.sin6_port = htons(port);
    if (fd < 0 || bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) || listen(fd, 64)) {
      errors.push_back("healthCheckNodePort " + std::to_string(port) + " of " + target.ns + "/" +
                       target.name + ": " + std::strerror(errno));
      if (fd >= 0) close(fd);
      continue;
    }
    listeners_[port] = Listener{fd, target};
  }
  return errors;
}

std::vector<int> HealthServer::pollFds() const {
  std::vector<int> fds;
  for (const auto& [port, l] : listeners_) fds.push_back(l.fd);
  for (const auto& [fd, c] : conns_) fds.push_back(fd);
  return fds;
}

void HealthServer::onReadable(int fd) {
  for (const auto& [port, l] : listeners_)
    if (l.fd == fd) return accept(port, fd);
  if (conns_.count(fd)) read(fd);
}

void HealthServer::accept(uint16_t port, int listenFd) {
  for (;;) {
    int c = accept4(listenFd, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (c < 0) return;
    if (conns_.size() >= kMaxConns) {
      // the oldest waiting client makes room
      auto oldest = std::min_element(conns_.begin(), conns_.end(), [](auto& a, auto& b) {
        return a.second.deadline < b.second.deadline;
      });
      drop(oldest->first);
    }
    conns_[c] = Conn{port, {}, Clock::now() + kClientDeadline};
  }
}

void HealthServer::read(int fd) {
  Conn& c = conns_.at(fd);
  char buf[1024];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n > 0) {
      c.request.append(buf, n);
      // A probe is a GET without a body: answer at the end of its headers.
      if (c.request.find("\r\n\r\n") != std::string::npos ||
          c.request.find("\n\n") != std::string::npos || c.request.size() >= kMaxRequest)
        return answer(fd, c.port);
      continue;
    }
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
    return drop(fd);  // closed before asking, or an error
  }
}

void HealthServer::answer(int fd, uint16_t port) {
  auto l = listeners_.find(port);
  if (l != listeners_.end()) {
    std::string r = healthResponse(l->second.target);
    (void)!send(fd, r.data(), r.size(), MSG_NOSIGNAL);  // small: fits the socket buffer
  }
  shutdown(fd, SHUT_WR);
  drop(fd);
}

void HealthServer::drop(int fd) {
  close(fd);
  conns_.erase(fd);
}

int HealthServer::timeoutMs() const {
  if (conns_.empty()) return -1;
  auto next = std::min_element(conns_.begin(), conns_.end(), [](auto& a, auto& b) {
                return a.second.deadline < b.second.deadline;
              })->second.deadline;
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(next - Clock::now()).count();
  return static_cast<int>(std::max<long>(0, ms));
}

void HealthServer::onTimer() {
  auto now = Clock::now();
  std::vector<int> expired;
  for (const auto& [fd, c] : conns_)
    if (c.deadline <= now) expired.push_back(fd);
  for (int fd : expired) drop(fd);
}

}  // namespace ferry
