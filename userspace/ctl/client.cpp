#include "ctl/client.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>

namespace ferry::ctl {

namespace {

struct Fd {
  int fd = -1;
  ~Fd() {
    if (fd >= 0) close(fd);
  }
};

}  // namespace

nlohmann::json request(const std::string& path, const nlohmann::json& req, int timeout_ms) {
  const std::string where = "cannot connect to ferryd at " + path + ": ";
  sockaddr_un sa{};
  sa.sun_family = AF_UNIX;
  if (path.size() >= sizeof sa.sun_path) throw ClientError(where + std::strerror(ENAMETOOLONG));
  std::memcpy(sa.sun_path, path.c_str(), path.size() + 1);

  Fd s;
  s.fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (s.fd < 0) throw ClientError(where + std::strerror(errno));
  if (connect(s.fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) < 0) throw ClientError(where + std::strerror(errno));

  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  auto left_ms = [&] {
    auto d = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now()).count();
    return static_cast<int>(d < 0 ? 0 : d);
  };

  std::string line = req.dump() + "\n";
  size_t off = 0;
  while (off < line.size()) {
    pollfd p{s.fd, POLLOUT, 0};
    if (poll(&p, 1, left_ms()) <= 0) {
      if (errno == EINTR) continue;
      throw ClientError("timed out sending the request to ferryd at " + path);
    }
    ssize_t n = send(s.fd, line.data() + off, line.size() - off, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n < 0) {
      if (errno == EINTR || errno == EAGAIN) continue;
      throw ClientError("sending the request to ferryd at " + path + ": " + std::strerror(errno));
    }
    off += static_cast<size_t>(n);
  }

  std::string reply;
  char buf[65536];
  for (;;) {
    pollfd p{s.fd, POLLIN, 0};
    int pr = poll(&p, 1, left_ms());
    if (pr < 0 && errno == EINTR) continue;
    if (pr <= 0) throw ClientError("timed out waiting for ferryd's reply at " + path);
    ssize_t n = recv(s.fd, buf, sizeof buf, MSG_DONTWAIT);
    if (n < 0) {
      if (errno == EINTR || errno == EAGAIN) continue;
      throw ClientError("reading ferryd's reply at " + path + ": " + std::strerror(errno));
    }
    if (n == 0) break;
    reply.append(buf, static_cast<size_t>(n));
    // The reply ends at EOF; a complete document followed by a newline also ends
    // it, so an agent that keeps the connection open does not stall us.
    if (reply.back() == '\n') {
      auto j = nlohmann::json::parse(reply, nullptr, /*allow_exceptions=*/false);
      if (!j.is_discarded()) return j;
    }
  }
  if (reply.empty()) throw ClientError("ferryd at " + path + " closed the connection without a reply");
  try {
    return nlohmann::json::parse(reply);
  } catch (const nlohmann::json::exception& e) {
    throw ClientError("ferryd at " + path + " sent a reply that is not JSON: " + e.what());
  }
}

}  // namespace ferry::ctl
