#include "agent/healthz.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "model/ip.h"

namespace ferry {

namespace {
constexpr auto kClientDeadline = std::chrono::seconds(2);
constexpr size_t kMaxConns = 16;
constexpr size_t kMaxRequest = 4096;

std::string reply(const char* code, const std::string& body) {
  return std::string("HTTP/1.1 ") + code +
         "\r\nContent-Type: text/plain; charset=utf-8\r\nX-Content-Type-Options: nosniff\r\n"
         "Content-Length: " + std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" + body;
}
}  // namespace

std::string healthzResponse(const std::string& request, bool ready, const std::string& detail) {
  // "GET /readyz HTTP/1.1": the path is the second word, without a query.
  size_t sp = request.find(' ');
  size_t end = sp == std::string::npos ? sp : request.find_first_of(" ?\r\n", sp + 1);
  std::string path = sp == std::string::npos ? "" : request.substr(sp + 1, end - sp - 1);
  bool head = request.rfind("HEAD ", 0) == 0;
  if (request.rfind("GET ", 0) != 0 && !head) return reply("405 Method Not Allowed", "GET only\n");
  std::string r;
  if (path == "/healthz" || path == "/livez") r = reply("200 OK", "ok\n");
  else if (path == "/readyz") r = ready ? reply("200 OK", "ok\n")
                                        : reply("503 Service Unavailable", "not ready: " + detail + "\n");
  else r = reply("404 Not Found", "paths: /healthz /readyz\n");
  if (head) r.resize(r.find("\r\n\r\n") + 4);
  return r;
}

Expected<std::unique_ptr<HealthzServer>> HealthzServer::listen(
    const std::string& listen, std::function<std::string()> notReady) {
  size_t colon = listen.rfind(':');
  unsigned port = 0;
  char extra = 0;
  if (colon == std::string::npos ||
      std::sscanf(listen.c_str() + colon + 1, "%u%c", &port, &extra) != 1 || port == 0 ||
      port > 65535)
    return Status::error("--healthz-listen \"" + listen + "\": want :PORT or ADDR:PORT like :10256");
  std::string host = listen.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  sockaddr_in6 a{};
  a.sin6_family = AF_INET6;
  a.sin6_port = htons(uint16_t(port));
  if (!host.empty()) {
    auto ip = IpAddr::parse(host);
    if (!ip) return Status::error("--healthz-listen \"" + listen + "\": \"" + host + "\" is not an IP address");
    std::memcpy(&a.sin6_addr, ip->bytes.data(), 16);  // v4-mapped for IPv4
  }
  int fd = socket(AF_INET6, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return Status::sys("healthz socket", errno);
  int off = 0, on = 1;
  setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof off);
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
  if (bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) || ::listen(fd, 16)) {
    int err = errno;
    close(fd);
    return Status::sys("--healthz-listen " + listen, err);
  }
  return std::unique_ptr<HealthzServer>(new HealthzServer(fd, std::move(notReady)));
}

HealthzServer::~HealthzServer() {
  for (auto& [fd, c] : conns_) close(fd);
  close(fd_);
}

std::vector<int> HealthzServer::pollFds() const {
  std::vector<int> fds{fd_};
  for (const auto& [fd, c] : conns_) fds.push_back(fd);
  return fds;
}

void HealthzServer::onReadable(int fd) {
  if (fd != fd_) {
    if (conns_.count(fd)) read(fd);
    return;
  }
  for (;;) {
    int c = accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (c < 0) return;
    if (conns_.size() >= kMaxConns) {
      auto oldest = std::min_element(conns_.begin(), conns_.end(), [](auto& x, auto& y) {
        return x.second.deadline < y.second.deadline;
      });
      drop(oldest->first);
    }
    conns_[c] = Conn{{}, Clock::now() + kClientDeadline};
  }
}

void HealthzServer::read(int fd) {
  Conn& c = conns_.at(fd);
  char buf[1024];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n > 0) {
      c.request.append(buf, size_t(n));
      if (c.request.find("\r\n\r\n") == std::string::npos &&
          c.request.find("\n\n") == std::string::npos && c.request.size() < kMaxRequest)
        continue;
      std::string why = notReady_ ? notReady_() : "";
      std::string r = healthzResponse(c.request, why.empty(), why);
      (void)!send(fd, r.data(), r.size(), MSG_NOSIGNAL);  // small: fits the socket buffer
      shutdown(fd, SHUT_WR);
      return drop(fd);
    }
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
    return drop(fd);
  }
}

void HealthzServer::drop(int fd) {
  close(fd);
  conns_.erase(fd);
}

int HealthzServer::timeoutMs() const {
  if (conns_.empty()) return -1;
  auto next = std::min_element(conns_.begin(), conns_.end(), [](auto& x, auto& y) {
                return x.second.deadline < y.second.deadline;
              })->second.deadline;
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(next - Clock::now()).count();
  return static_cast<int>(std::max<long>(0, ms));
}

void HealthzServer::onTimer() {
  auto now = Clock::now();
  std::vector<int> expired;
  for (const auto& [fd, c] : conns_)
    if (c.deadline <= now) expired.push_back(fd);
  for (int fd : expired) drop(fd);
}

}  // namespace ferry
