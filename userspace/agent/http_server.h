// A small HTTP/1.1 server for the agent's probe endpoints (healthCheckNodePort,
// --healthz-listen), on libmicrohttpd driven by the agent's poll loop:
// no thread, no blocking call. libmicrohttpd parses the requests and
// writes the responses; a slow or silent client is dropped after an
// inactivity timeout, and the number of connections is capped.
#pragma once

#include <netinet/in.h>

#include <functional>
#include <memory>
#include <string>

#include "common/status.h"

struct MHD_Daemon;

namespace ferry {

/// One response: status code (RFC 9110), Content-Type and body.
struct HttpReply {
  unsigned status = 200;
  std::string contentType = "text/plain; charset=utf-8";
  std::string body;
};

/// What a handler sees of one request.
struct HttpRequest {
  std::string method;     // "GET", "HEAD", ...
  std::string path;       // without the query
  bool fromIpv6 = false;  // the client came over IPv6 (not as an IPv4-mapped address)
};

/// Called once per complete request, from HttpListener::run (the loop's
/// thread). libmicrohttpd omits the body of a HEAD reply.
using HttpHandler = std::function<HttpReply(const HttpRequest& req)>;

/// Limits of one listener.
struct HttpLimits {
  unsigned maxConnections = 64;       // beyond this, new connections are refused
  unsigned maxPerClientIp = 16;       // one client cannot take them all
  unsigned idleTimeoutSeconds = 2;    // a silent client is dropped after this
};

/// One listening socket and its connections.
class HttpListener {
 public:
  /// Listens on `addr` (IPv6 socket, dual stack: a v4-mapped address or
  /// :: serves IPv4 as well). Error: socket/bind/listen errno, or
  /// libmicrohttpd refusing to start; `what` names the listener in it.
  static Expected<std::unique_ptr<HttpListener>> open(const std::string& what, const sockaddr_in6& addr,
                                                      HttpHandler handler, HttpLimits limits = {});
  ~HttpListener();
  HttpListener(const HttpListener&) = delete;
  HttpListener& operator=(const HttpListener&) = delete;

  /// The fd to poll for POLLIN (libmicrohttpd's epoll set).
  int pollFd() const { return pollFd_; }
  /// Accepts, reads, answers and times out what is ready; never blocks.
  void run();
  /// Milliseconds until run() must be called for a timeout; -1: none pending.
  int timeoutMs() const;

 private:
  friend struct HttpListenerCallbacks;
  HttpListener() = default;
  MHD_Daemon* daemon_ = nullptr;
  int pollFd_ = -1;
  HttpHandler handler_;
};

/// Parses ":PORT", "ADDR:PORT" or "[V6]:PORT" (PORT 1..65535; no ADDR: every
/// address) into a dual-stack socket address; the error names `flag`.
Expected<sockaddr_in6> parseListenAddress(const std::string& flag, const std::string& listen);

}  // namespace ferry
