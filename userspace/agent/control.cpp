#include "agent/control.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

namespace ferry {

Expected<std::unique_ptr<ControlServer>> ControlServer::listen(const std::string& path, Handler h) {
  sockaddr_un addr{};
  if (path.size() >= sizeof(addr.sun_path)) return Status::error("--socket path too long: " + path);
  std::error_code ec;
  std::filesystem::create_directories(std::filesystem::path(path).parent_path(), ec);
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return Status::sys("control socket", errno);
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, path.c_str(), sizeof(addr.sun_path) - 1);
  unlink(path.c_str());  // a stale socket of a killed agent
  mode_t old = umask(0077);
  int rc = bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  umask(old);
  if (rc < 0 || chmod(path.c_str(), 0600) < 0 || ::listen(fd, 16) < 0) {
    int err = errno;
    close(fd);
    return Status::sys("control socket " + path, err);
  }
  return std::unique_ptr<ControlServer>(new ControlServer(path, fd, std::move(h)));
}

ControlServer::~ControlServer() {
  close(fd_);
  unlink(path_.c_str());
}

void ControlServer::serve() {
  for (;;) {
    int conn = accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (conn < 0) return;
    serveOne(conn);
    close(conn);
  }
}

void ControlServer::serveOne(int conn) {
  // A client gets one second to send its request line: a stuck client
  // must not stall the agent.
  std::string line;
  char buf[4096];
  pollfd p{conn, POLLIN, 0};
  while (line.find('\n') == std::string::npos && line.size() < 65536) {
    if (poll(&p, 1, 1000) <= 0) return;
    ssize_t n = read(conn, buf, sizeof buf);
    if (n < 0 && errno == EAGAIN) continue;
    if (n <= 0) break;
    line.append(buf, n);
  }
  nlohmann::json req = nlohmann::json::parse(line, nullptr, false);
  nlohmann::json reply = req.is_discarded() ? nlohmann::json{{"error", "request is not JSON"}}
                                            : handler_(req);
  std::string out = reply.dump() + "\n";
  size_t off = 0;
  p.events = POLLOUT;
  while (off < out.size()) {
    if (poll(&p, 1, 1000) <= 0) return;
    ssize_t n = write(conn, out.data() + off, out.size() - off);
    if (n < 0 && errno == EAGAIN) continue;
    if (n <= 0) return;
    off += n;
  }
}

}  // namespace ferry
