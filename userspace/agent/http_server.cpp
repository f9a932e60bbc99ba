#include "agent/http_server.h"

#include <microhttpd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "model/ip.h"

namespace ferry {

struct HttpListenerCallbacks {
  // libmicrohttpd calls this first when a request's headers are in, then
  // once per piece of body, then once with no body left: the answer goes
  // out on that last call (a body is read and ignored).
  static MHD_Result onRequest(void* cls, MHD_Connection* conn, const char* url, const char* method,
                              const char* /*version*/, const char* /*upload*/, size_t* uploadSize,
                              void** reqCls) {
    static int headersSeen;
    if (*reqCls == nullptr) {
      *reqCls = &headersSeen;
      return MHD_YES;
    }
    if (*uploadSize != 0) {
      *uploadSize = 0;
      return MHD_YES;
    }
    auto* self = static_cast<HttpListener*>(cls);
    HttpRequest req{method ? method : "", url ? url : "", false};
    // the listening socket is dual-stack: IPv4 clients come as ::ffff:a.b.c.d
    const MHD_ConnectionInfo* ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    if (ci && ci->client_addr && ci->client_addr->sa_family == AF_INET6) {
      const auto* a6 = reinterpret_cast<const sockaddr_in6*>(ci->client_addr);
      req.fromIpv6 = !IN6_IS_ADDR_V4MAPPED(&a6->sin6_addr);
    }
    HttpReply r = self->handler_(req);
    MHD_Response* resp =
        MHD_create_response_from_buffer(r.body.size(), r.body.data(), MHD_RESPMEM_MUST_COPY);
    if (!resp) return MHD_NO;
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, r.contentType.c_str());
    MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
    // one request per connection: probes do not reuse them, and a closed
    // connection frees its slot at once
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close");
    MHD_Result ret = MHD_queue_response(conn, r.status, resp);
    MHD_destroy_response(resp);
    return ret;
  }
};

Expected<std::unique_ptr<HttpListener>> HttpListener::open(const std::string& what,
                                                           const sockaddr_in6& addr,
                                                           HttpHandler handler, HttpLimits limits) {
  int fd = socket(AF_INET6, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return Status::sys(what + ": socket", errno);
  int off = 0, on = 1;
  setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof off);  // IPv4 too
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
  if (bind(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0 || listen(fd, 64) != 0) {
    int err = errno;
    close(fd);
    return Status::error(what + ": " + std::strerror(err), err);
  }
  std::unique_ptr<HttpListener> l(new HttpListener());
  l->handler_ = std::move(handler);
  // MHD_USE_EPOLL without a polling thread: the agent's loop polls the
  // daemon's epoll fd and calls MHD_run (libmicrohttpd manual, "external
  // select"). The daemon owns the listening socket from here on.
  l->daemon_ = MHD_start_daemon(
      MHD_USE_EPOLL, 0, nullptr, nullptr, &HttpListenerCallbacks::onRequest, l.get(),
      MHD_OPTION_LISTEN_SOCKET, static_cast<MHD_socket>(fd), MHD_OPTION_CONNECTION_LIMIT,
      static_cast<unsigned>(limits.maxConnections), MHD_OPTION_PER_IP_CONNECTION_LIMIT,
      static_cast<unsigned>(limits.maxPerClientIp), MHD_OPTION_CONNECTION_TIMEOUT,
      static_cast<unsigned>(limits.idleTimeoutSeconds), MHD_OPTION_END);
  if (!l->daemon_) {
    // Not closed here: a failed start may have closed it already, and a
    // second close could hit an fd another thread has opened since.
    return Status::error(what + ": libmicrohttpd did not start");
  }
  const MHD_DaemonInfo* info = MHD_get_daemon_info(l->daemon_, MHD_DAEMON_INFO_EPOLL_FD);
  if (!info) return Status::error(what + ": libmicrohttpd has no epoll fd");
  l->pollFd_ = info->epoll_fd;
  return l;
}

HttpListener::~HttpListener() {
  if (daemon_) MHD_stop_daemon(daemon_);  // closes its connections and the listening socket
}

void HttpListener::run() { MHD_run(daemon_); }

int HttpListener::timeoutMs() const {
  MHD_UNSIGNED_LONG_LONG ms = 0;
  if (MHD_get_timeout(daemon_, &ms) != MHD_YES) return -1;
  return ms > 60000 ? 60000 : static_cast<int>(ms);
}

Expected<sockaddr_in6> parseListenAddress(const std::string& flag, const std::string& listen) {
  size_t colon = listen.rfind(':');
  unsigned port = 0;
  char extra = 0;
  if (colon == std::string::npos ||
      std::sscanf(listen.c_str() + colon + 1, "%u%c", &port, &extra) != 1 || port == 0 ||
      port > 65535)
    return Status::error(flag + " \"" + listen + "\": want :PORT or ADDR:PORT like :10256");
  std::string host = listen.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']')
    host = host.substr(1, host.size() - 2);
  sockaddr_in6 a{};
  a.sin6_family = AF_INET6;
  a.sin6_port = htons(static_cast<uint16_t>(port));
  if (!host.empty()) {
    auto ip = IpAddr::parse(host);
    if (!ip) return Status::error(flag + " \"" + listen + "\": \"" + host + "\" is not an IP address");
    std::memcpy(&a.sin6_addr, ip->bytes.data(), 16);  // v4-mapped for IPv4
  }
  return a;
}

}  // namespace ferry
