#include "agent/control.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "agent/log.h"
#include "common/limits.h"
#include "model/yaml_json.h"

namespace ferry {

namespace {

constexpr auto kClientTime = std::chrono::milliseconds(limits::kControlClientMs);
// A request is a small object: ferryctl's are one level deep.
constexpr size_t kRequestDepth = 16;

std::string errorReply(const std::string& why) {
  // `why` may quote the request's bytes: never throw on invalid UTF-8.
  return limits::dumpSafe(nlohmann::json{{"error", limits::truncate(why)}}, SIZE_MAX);
}

}  // namespace

std::string controlCommand(const nlohmann::json& req, std::string* error) {
  if (!req.is_object()) {
    *error = "request must be a JSON object like {\"cmd\": \"snapshot\"}";
    return "";
  }
  auto it = req.find("cmd");
  if (it == req.end() || !it->is_string()) {
    *error = "request member \"cmd\" must be a string, like {\"cmd\": \"snapshot\"}";
    return "";
  }
  const std::string& cmd = it->get_ref<const std::string&>();
  if (cmd != "snapshot" && cmd != "verify" && cmd != "service" && cmd != "status" &&
      cmd != "cluster-info") {
    *error = "unknown command \"" + limits::truncate(cmd, limits::kQuotedValueBytes) + "\"";
    return "";
  }
  return cmd;
}

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
  // SOMAXCONN: a burst of ferryctl calls waits in the backlog while the
  // clients being served are at the limit, instead of being refused.
  if (rc < 0 || chmod(path.c_str(), 0600) < 0 || ::listen(fd, SOMAXCONN) < 0) {
    int err = errno;
    close(fd);
    return Status::sys("control socket " + path, err);
  }
  return std::unique_ptr<ControlServer>(new ControlServer(path, fd, std::move(h)));
}

ControlServer::~ControlServer() {
  for (const auto& [fd, c] : clients_) close(fd);
  close(fd_);
  unlink(path_.c_str());
}

std::vector<pollfd> ControlServer::pollFds() const {
  std::vector<pollfd> out;
  if (clients_.size() < limits::kControlClients) out.push_back({fd_, POLLIN, 0});
  for (const auto& [fd, c] : clients_)
    out.push_back({fd, static_cast<short>(c.replying ? POLLOUT : POLLIN), 0});
  return out;
}

void ControlServer::onReady(int fd, short revents) {
  if (fd == fd_) return acceptAll();
  auto it = clients_.find(fd);
  if (it == clients_.end()) return;
  Client& c = it->second;
  if (!c.replying) {
    readFrom(fd, c);
    return;
  }
  if (revents & (POLLOUT | POLLERR | POLLHUP))
    if (!writeTo(fd, c)) drop(fd);
}

void ControlServer::acceptAll() {
  while (clients_.size() < limits::kControlClients) {
    int conn = accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (conn < 0) return;  // EAGAIN, or a client gone already
    clients_[conn].deadline = Clock::now() + kClientTime;
  }
}

void ControlServer::readFrom(int fd, Client& c) {
  char buf[4096];
  for (;;) {
    ssize_t n = read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;  // wait for more
    if (n <= 0) {
      // Closed: a request without its newline is still served (old clients
      // shut down their side after writing); an empty one is just gone.
      if (n == 0 && !c.in.empty()) return startReply(fd, c);
      return drop(fd);
    }
    c.in.append(buf, size_t(n));
    if (c.in.find('\n') != std::string::npos) return startReply(fd, c);
    if (c.in.size() > limits::kControlRequestBytes) {
      logWarn("control client sent more than " + std::to_string(limits::kControlRequestBytes) +
              " bytes without a newline: cut (limit kControlRequestBytes)");
      c.out = errorReply("request longer than " + std::to_string(limits::kControlRequestBytes) +
                         " bytes (limit kControlRequestBytes)") + "\n";
      c.in.clear();
      c.replying = true;
      c.deadline = Clock::now() + kClientTime;
      if (!writeTo(fd, c)) drop(fd);
      return;
    }
  }
}

void ControlServer::startReply(int fd, Client& c) {
  std::string line = c.in.substr(0, c.in.find('\n'));
  c.in.clear();
  c.out = replyTo(line, handler_) + "\n";
  c.replying = true;
  c.deadline = Clock::now() + kClientTime;
  if (!writeTo(fd, c)) drop(fd);
}

std::string ControlServer::replyTo(const std::string& line, const Handler& h) {
  if (line.size() > limits::kControlRequestBytes)
    return errorReply("request longer than " + std::to_string(limits::kControlRequestBytes) +
                      " bytes (limit kControlRequestBytes)");
  nlohmann::json req;
  std::string why;
  if (!parseJsonStrict(line, kRequestDepth, &req, &why))
    return errorReply("request is not JSON: " + why);
  try {
    // Replies may quote manifests: invalid UTF-8 there is replaced, never
    // thrown (json type_error 316).
    return h(req).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  } catch (const std::exception& e) {
    return errorReply(std::string("internal error: ") + e.what());
  }
}

bool ControlServer::writeTo(int fd, Client& c) {
  while (c.sent < c.out.size()) {
    ssize_t n = send(fd, c.out.data() + c.sent, c.out.size() - c.sent, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return true;  // wait for POLLOUT
    if (n <= 0) return false;  // EPIPE, ECONNRESET: the client left early
    c.sent += size_t(n);
    c.deadline = Clock::now() + kClientTime;  // a large reply: deadline per progress
  }
  return false;  // all sent
}

void ControlServer::drop(int fd) {
  close(fd);
  clients_.erase(fd);
}

void ControlServer::onTimer() {
  auto now = Clock::now();
  for (auto it = clients_.begin(); it != clients_.end();) {
    if (it->second.deadline > now) {
      ++it;
      continue;
    }
    logWarn(std::string("control client cut after ") + std::to_string(limits::kControlClientMs) +
            " ms without " + (it->second.replying ? "reading its reply" : "a complete request") +
            " (limit kControlClientMs)");
    close(it->first);
    it = clients_.erase(it);
  }
}

int ControlServer::timeoutMs() const {
  if (clients_.empty()) return -1;
  auto next = Clock::time_point::max();
  for (const auto& [fd, c] : clients_) next = std::min(next, c.deadline);
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(next - Clock::now()).count();
  return left < 0 ? 0 : static_cast<int>(left) + 1;
}

}  // namespace ferry
