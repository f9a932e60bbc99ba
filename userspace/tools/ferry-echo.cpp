// ferry-echo: test backend and client for ferry's tests (plain POSIX sockets).
//
//   ferry-echo serve --name NAME [--tcp PORT]... [--udp PORT]... [--bind ADDR]
//       TCP: on accept, sends "NAME <client-ip>:<client-port> <local-ip>:<local-port>\n",
//       then reads and discards until the peer closes; if the first line the client
//       sends is "STREAM", every later byte is echoed back until EOF.
//       UDP: answers every datagram with the same kind of line (sent from the
//       address the datagram was sent to); a datagram starting "ECHO\n" gets the
//       line followed by the rest of the datagram. IPv6 addresses are printed as [ip]:port.
//       Without --bind, listens on 0.0.0.0 and [::] (v6only). Exits 0 on SIGTERM/SIGINT.
//   ferry-echo ask tcp|udp IP PORT [--timeout-ms N] [--count N] [--src-port P]
//                                  [--src ADDR] [--show-peer] [--sendto] [--size N]
//       Prints the server's line (after "peer <ip>:<port>" with --show-peer:
//       getpeername(), or with --sendto the source recvfrom() reports).
//       --sendto (UDP): an unconnected socket, sendto() and recvfrom().
//       --size N (UDP): an N-byte datagram ("ECHO\n" and a pattern) whose echo
//       must come back whole (larger than the MTU, both travel fragmented);
//       prints the line, then "echo N".
//       Exit 0 ok, 3 "refused", 4 "timeout", 1 other errors (message on stderr).
//       With --count N, stops at the first failure.
//   ferry-echo hold tcp IP PORT --seconds S [--timeout-ms N] [--stall-ms N]
//       One connection: sends "STREAM\n", then 1 KiB every 10 ms for S seconds,
//       verifying the echo. Prints "ok <bytes>" (exit 0) or "error: ..." (exit 1).
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace {

constexpr int kExitOk = 0, kExitErr = 1, kExitUsage = 2, kExitRefused = 3, kExitTimeout = 4;

using Clock = std::chrono::steady_clock;

[[noreturn]] void usage(int rc) {
  std::fprintf(rc == 0 ? stdout : stderr,
               "usage:\n"
               "  ferry-echo serve --name NAME [--tcp PORT]... [--udp PORT]... [--bind ADDR]\n"
               "  ferry-echo ask tcp|udp IP PORT [--timeout-ms N] [--count N] [--src-port P]\n"
               "                                 [--src ADDR] [--show-peer] [--sendto] [--size N]\n"
               "  ferry-echo hold tcp IP PORT --seconds S [--timeout-ms N] [--stall-ms N]\n"
               "exit codes: 0 ok, 1 error, 2 usage, 3 refused, 4 timeout\n");
  std::exit(rc);
}

[[noreturn]] void die(const std::string& msg) {
  std::fprintf(stderr, "ferry-echo: %s\n", msg.c_str());
  std::exit(kExitErr);
}

std::string errstr(int e) { return std::strerror(e); }

struct Addr {
  sockaddr_storage ss{};
  socklen_t len = 0;
  int family() const { return ss.ss_family; }
};

std::optional<Addr> parse_addr(const std::string& ip, uint16_t port) {
  Addr a;
  std::string s = ip;
  if (s.size() > 2 && s.front() == '[' && s.back() == ']') s = s.substr(1, s.size() - 2);
  auto* v4 = reinterpret_cast<sockaddr_in*>(&a.ss);
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&a.ss);
  if (inet_pton(AF_INET, s.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(port);
    a.len = sizeof(sockaddr_in);
    return a;
  }
  a.ss = {};
  if (inet_pton(AF_INET6, s.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(port);
    a.len = sizeof(sockaddr_in6);
    return a;
  }
  return std::nullopt;
}

std::string fmt_addr(const sockaddr* sa) {
  char buf[INET6_ADDRSTRLEN] = "?";
  if (sa->sa_family == AF_INET) {
    auto* v4 = reinterpret_cast<const sockaddr_in*>(sa);
    inet_ntop(AF_INET, &v4->sin_addr, buf, sizeof buf);
    return std::string(buf) + ":" + std::to_string(ntohs(v4->sin_port));
  }
  if (sa->sa_family == AF_INET6) {
    auto* v6 = reinterpret_cast<const sockaddr_in6*>(sa);
    if (IN6_IS_ADDR_V4MAPPED(&v6->sin6_addr)) {
      inet_ntop(AF_INET, &v6->sin6_addr.s6_addr[12], buf, sizeof buf);
      return std::string(buf) + ":" + std::to_string(ntohs(v6->sin6_port));
    }
    inet_ntop(AF_INET6, &v6->sin6_addr, buf, sizeof buf);
    return "[" + std::string(buf) + "]:" + std::to_string(ntohs(v6->sin6_port));
  }
  return "?";
}

uint16_t parse_port(const std::string& s) {
  char* end = nullptr;
  long v = std::strtol(s.c_str(), &end, 10);
  if (s.empty() || *end || v < 0 || v > 65535) die("bad port '" + s + "'");
  return static_cast<uint16_t>(v);
}

long parse_num(const std::string& s, const char* what) {
  char* end = nullptr;
  long v = std::strtol(s.c_str(), &end, 10);
  if (s.empty() || *end || v < 0) die(std::string("bad ") + what + " '" + s + "'");
  return v;
}

void set_nonblock(int fd) { fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK); }

int64_t ms_since(Clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t).count();
}

// ------------------------------------------------------------------ serve
volatile sig_atomic_t g_stop = 0;
void on_term(int) { g_stop = 1; }

struct Conn {
  int fd = -1;
  bool decided = false;  // first line seen
  bool stream = false;   // echo mode
  bool eof = false;      // peer closed its side
  std::string line;      // first-line accumulator
  std::string out;       // pending output
};

enum class Kind { TcpListen, Udp, Tcp };

struct Serve {
  std::string name;
  int ep = -1;
  std::unordered_map<int, Kind> kinds;
  std::unordered_map<int, Conn> conns;

  void add(int fd, Kind k, uint32_t ev) {
    epoll_event e{};
    e.events = ev;
    e.data.fd = fd;
    if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &e) < 0) die("epoll_ctl: " + errstr(errno));
    kinds[fd] = k;
  }
  void mod(int fd, uint32_t ev) {
    epoll_event e{};
    e.events = ev;
    e.data.fd = fd;
    epoll_ctl(ep, EPOLL_CTL_MOD, fd, &e);
  }
  void close_conn(int fd) {
    epoll_ctl(ep, EPOLL_CTL_DEL, fd, nullptr);
    close(fd);
    conns.erase(fd);
    kinds.erase(fd);
  }

  bool open_listener(bool tcp, const Addr& a) {
    int fd = socket(a.family(), (tcp ? SOCK_STREAM : SOCK_DGRAM) | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return false;
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (a.family() == AF_INET6) setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
    if (!tcp) {
      if (a.family() == AF_INET)
        setsockopt(fd, IPPROTO_IP, IP_PKTINFO, &one, sizeof one);
      else
        setsockopt(fd, IPPROTO_IPV6, IPV6_RECVPKTINFO, &one, sizeof one);
    }
    if (bind(fd, reinterpret_cast<const sockaddr*>(&a.ss), a.len) < 0) {
      int e = errno;
      close(fd);
      errno = e;
      return false;
    }
    if (tcp && listen(fd, 4096) < 0) {
      int e = errno;
      close(fd);
      errno = e;
      return false;
    }
    add(fd, tcp ? Kind::TcpListen : Kind::Udp, EPOLLIN);
    std::printf("listening %s %s\n", tcp ? "tcp" : "udp", fmt_addr(reinterpret_cast<const sockaddr*>(&a.ss)).c_str());
    std::fflush(stdout);
    return true;
  }

  std::string hello(const sockaddr* peer, const sockaddr* local) {
    return name + " " + fmt_addr(peer) + " " + fmt_addr(local) + "\n";
  }

  void flush(Conn& c) {
    while (!c.out.empty()) {
      ssize_t n = send(c.fd, c.out.data(), c.out.size(), MSG_NOSIGNAL);
      if (n > 0) {
        c.out.erase(0, static_cast<size_t>(n));
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
      close_conn(c.fd);  // peer gone
      return;
    }
    if (c.out.empty() && c.eof) {
      close_conn(c.fd);
      return;
    }
    // stop reading while a lot of echo is pending (backpressure)
    uint32_t ev = 0;
    if (c.out.size() < (1u << 20) && !c.eof) ev |= EPOLLIN;
    if (!c.out.empty()) ev |= EPOLLOUT;
    mod(c.fd, ev ? ev : EPOLLOUT);
  }

  void on_accept(int lfd) {
    for (int i = 0; i < 256; i++) {
      sockaddr_storage peer{};
      socklen_t pl = sizeof peer;
      int fd = accept4(lfd, reinterpret_cast<sockaddr*>(&peer), &pl, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd < 0) return;  // EAGAIN or transient error
      sockaddr_storage local{};
      socklen_t ll = sizeof local;
      getsockname(fd, reinterpret_cast<sockaddr*>(&local), &ll);
      add(fd, Kind::Tcp, EPOLLIN);
      Conn& c = conns[fd];
      c.fd = fd;
      c.out = hello(reinterpret_cast<sockaddr*>(&peer), reinterpret_cast<sockaddr*>(&local));
      flush(c);
    }
  }

  void on_tcp(int fd, uint32_t events) {
    auto it = conns.find(fd);
    if (it == conns.end()) return;
    Conn& c = it->second;
    if (events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
      char buf[65536];
      for (int round = 0; round < 16 && !c.eof; round++) {
        ssize_t n = recv(fd, buf, sizeof buf, 0);
        if (n > 0) {
          std::string_view data(buf, static_cast<size_t>(n));
          if (!c.decided) {
            auto nl = data.find('\n');
            size_t take = nl == std::string_view::npos ? data.size() : nl + 1;
            c.line.append(data.substr(0, take));
            data.remove_prefix(take);
            if (nl != std::string_view::npos) {
              c.decided = true;
              std::string l = c.line;
              while (!l.empty() && (l.back() == '\n' || l.back() == '\r')) l.pop_back();
              c.stream = (l == "STREAM");
              c.line.clear();
            } else if (c.line.size() > 4096) {
              c.decided = true;  // not a STREAM request: discard from now on
              c.line.clear();
            }
          }
          if (c.stream) c.out.append(data);
          if (c.out.size() >= (1u << 20)) break;
          continue;
        }
        if (n == 0) {
          c.eof = true;
          break;
        }
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) break;
        close_conn(fd);  // reset
        return;
      }
    }
    flush(c);
  }

  void on_udp(int fd) {
    for (int i = 0; i < 256; i++) {
      char buf[65536];
      sockaddr_storage peer{};
      iovec iov{buf, sizeof buf};
      alignas(cmsghdr) char cbuf[256];
      msghdr m{};
      m.msg_name = &peer;
      m.msg_namelen = sizeof peer;
      m.msg_iov = &iov;
      m.msg_iovlen = 1;
      m.msg_control = cbuf;
      m.msg_controllen = sizeof cbuf;
      ssize_t n = recvmsg(fd, &m, 0);
      if (n < 0) return;
      // local address: the destination of this datagram, port from getsockname
      sockaddr_storage local{};
      socklen_t ll = sizeof local;
      getsockname(fd, reinterpret_cast<sockaddr*>(&local), &ll);
      alignas(cmsghdr) char obuf[256];
      size_t olen = 0;
      for (cmsghdr* c = CMSG_FIRSTHDR(&m); c; c = CMSG_NXTHDR(&m, c)) {
        if (c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_PKTINFO) {
          in_pktinfo pi;
          std::memcpy(&pi, CMSG_DATA(c), sizeof pi);
          reinterpret_cast<sockaddr_in*>(&local)->sin_addr = pi.ipi_addr;
          in_pktinfo rep{};
          rep.ipi_spec_dst = pi.ipi_addr;  // reply from the address that was asked
          auto* oc = reinterpret_cast<cmsghdr*>(obuf);
          oc->cmsg_level = IPPROTO_IP;
          oc->cmsg_type = IP_PKTINFO;
          oc->cmsg_len = CMSG_LEN(sizeof rep);
          std::memcpy(CMSG_DATA(oc), &rep, sizeof rep);
          olen = CMSG_SPACE(sizeof rep);
        } else if (c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_PKTINFO) {
          in6_pktinfo pi;
          std::memcpy(&pi, CMSG_DATA(c), sizeof pi);
          reinterpret_cast<sockaddr_in6*>(&local)->sin6_addr = pi.ipi6_addr;
          in6_pktinfo rep{};
          rep.ipi6_addr = pi.ipi6_addr;
          auto* oc = reinterpret_cast<cmsghdr*>(obuf);
          oc->cmsg_level = IPPROTO_IPV6;
          oc->cmsg_type = IPV6_PKTINFO;
          oc->cmsg_len = CMSG_LEN(sizeof rep);
          std::memcpy(CMSG_DATA(oc), &rep, sizeof rep);
          olen = CMSG_SPACE(sizeof rep);
        }
      }
      std::string reply = hello(reinterpret_cast<sockaddr*>(&peer), reinterpret_cast<sockaddr*>(&local));
      if (n >= 5 && std::memcmp(buf, "ECHO\n", 5) == 0) reply.append(buf + 5, static_cast<size_t>(n) - 5);
      iovec oiov{reply.data(), reply.size()};
      msghdr om{};
      om.msg_name = &peer;
      om.msg_namelen = m.msg_namelen;
      om.msg_iov = &oiov;
      om.msg_iovlen = 1;
      if (olen) {
        om.msg_control = obuf;
        om.msg_controllen = olen;
      }
      if (sendmsg(fd, &om, MSG_DONTWAIT) < 0 && olen) {
        om.msg_control = nullptr;  // e.g. non-local destination: let the kernel pick
        om.msg_controllen = 0;
        sendmsg(fd, &om, MSG_DONTWAIT);
      }
    }
  }
};

int cmd_serve(int argc, char** argv) {
  Serve s;
  std::vector<uint16_t> tcp, udp;
  std::string bind_addr;
  for (int i = 0; i < argc; i++) {
    std::string a = argv[i];
    auto val = [&]() -> std::string {
      if (i + 1 >= argc) usage(kExitUsage);
      return argv[++i];
    };
    if (a == "--name") s.name = val();
    else if (a == "--tcp") tcp.push_back(parse_port(val()));
    else if (a == "--udp") udp.push_back(parse_port(val()));
    else if (a == "--bind") bind_addr = val();
    else if (a == "-h" || a == "--help") usage(0);
    else usage(kExitUsage);
  }
  if (s.name.empty() || (tcp.empty() && udp.empty())) usage(kExitUsage);

  struct sigaction sa{};
  sa.sa_handler = on_term;
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGINT, &sa, nullptr);
  signal(SIGPIPE, SIG_IGN);

  s.ep = epoll_create1(EPOLL_CLOEXEC);
  if (s.ep < 0) die("epoll_create1: " + errstr(errno));

  auto open_all = [&](bool is_tcp, uint16_t port) {
    if (!bind_addr.empty()) {
      auto a = parse_addr(bind_addr, port);
      if (!a) die("bad --bind address '" + bind_addr + "'");
      if (!s.open_listener(is_tcp, *a))
        die(std::string("bind ") + (is_tcp ? "tcp " : "udp ") + bind_addr + ":" + std::to_string(port) + ": " +
            errstr(errno));
      return;
    }
    auto v4 = parse_addr("0.0.0.0", port);
    auto v6 = parse_addr("::", port);
    if (!s.open_listener(is_tcp, *v4))
      die(std::string("bind ") + (is_tcp ? "tcp" : "udp") + " 0.0.0.0:" + std::to_string(port) + ": " + errstr(errno));
    if (!s.open_listener(is_tcp, *v6))
      std::fprintf(stderr, "ferry-echo: warning: no IPv6 listener on port %u: %s\n", port, errstr(errno).c_str());
  };
  for (auto p : tcp) open_all(true, p);
  for (auto p : udp) open_all(false, p);

  std::vector<epoll_event> evs(256);
  while (!g_stop) {
    int n = epoll_wait(s.ep, evs.data(), static_cast<int>(evs.size()), 500);
    if (n < 0) {
      if (errno == EINTR) continue;
      die("epoll_wait: " + errstr(errno));
    }
    for (int i = 0; i < n; i++) {
      int fd = evs[i].data.fd;
      auto k = s.kinds.find(fd);
      if (k == s.kinds.end()) continue;
      switch (k->second) {
        case Kind::TcpListen: s.on_accept(fd); break;
        case Kind::Udp: s.on_udp(fd); break;
        case Kind::Tcp: s.on_tcp(fd, evs[i].events); break;
      }
    }
  }
  return kExitOk;
}

// ------------------------------------------------------------------ client side
struct ClientOpts {
  bool tcp = true;
  std::string ip;
  uint16_t port = 0;
  int timeout_ms = 2000;
  long count = 1;
  int src_port = -1;
  std::string src;
  bool show_peer = false;
  bool sendto = false;  // UDP: unconnected, sendto()/recvfrom()
  long size = 0;        // UDP: datagram size to send and get echoed (0: "ask\n")
  long seconds = -1;
  int stall_ms = 5000;
};

struct Fail {
  int rc;
  std::string what;  // printed to stdout for refused/timeout, stderr otherwise
};

// A client socket for dst's family, bound with --src/--src-port; fd or sets fail.
int open_client(const ClientOpts& o, const Addr* dst, Fail& f) {
  int fd = socket(dst->family(), (o.tcp ? SOCK_STREAM : SOCK_DGRAM) | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    f = {kExitErr, "socket: " + errstr(errno)};
    return -1;
  }
  if (o.src_port >= 0 || !o.src.empty()) {
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    std::string sip = o.src.empty() ? (dst->family() == AF_INET ? "0.0.0.0" : "::") : o.src;
    auto sa = parse_addr(sip, static_cast<uint16_t>(o.src_port < 0 ? 0 : o.src_port));
    if (!sa || sa->family() != dst->family()) die("bad --src address '" + sip + "'");
    if (bind(fd, reinterpret_cast<sockaddr*>(&sa->ss), sa->len) < 0) {
      f = {kExitErr, "bind " + fmt_addr(reinterpret_cast<sockaddr*>(&sa->ss)) + ": " + errstr(errno)};
      close(fd);
      return -1;
    }
  }
  return fd;
}

// connect with a timeout; returns fd or sets fail
int connect_to(const ClientOpts& o, Fail& f) {
  auto dst = parse_addr(o.ip, o.port);
  if (!dst) die("bad address '" + o.ip + "'");
  int fd = open_client(o, &*dst, f);
  if (fd < 0) return -1;
  set_nonblock(fd);
  int r = connect(fd, reinterpret_cast<sockaddr*>(&dst->ss), dst->len);
  if (r < 0 && errno == EINPROGRESS) {
    pollfd p{fd, POLLOUT, 0};
    int pr;
    do pr = poll(&p, 1, o.timeout_ms);
    while (pr < 0 && errno == EINTR);
    if (pr == 0) {
      f = {kExitTimeout, "timeout"};
      close(fd);
      return -1;
    }
    int err = 0;
    socklen_t el = sizeof err;
    getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el);
    r = err ? -1 : 0;
    errno = err;
  }
  if (r < 0) {
    int e = errno;
    close(fd);
    if (e == ECONNREFUSED) f = {kExitRefused, "refused"};
    else if (e == ETIMEDOUT) f = {kExitTimeout, "timeout"};
    else f = {kExitErr, "connect " + fmt_addr(reinterpret_cast<sockaddr*>(&dst->ss)) + ": " + errstr(e)};
    return -1;
  }
  return fd;
}

// read until '\n' (or datagram) within the deadline
bool read_line(int fd, bool tcp, int timeout_ms, std::string& line, Fail& f) {
  auto start = Clock::now();
  line.clear();
  for (;;) {
    int left = timeout_ms - static_cast<int>(ms_since(start));
    if (left <= 0) {
      f = {kExitTimeout, "timeout"};
      return false;
    }
    pollfd p{fd, POLLIN, 0};
    int pr = poll(&p, 1, left);
    if (pr < 0 && errno == EINTR) continue;
    if (pr == 0) {
      f = {kExitTimeout, "timeout"};
      return false;
    }
    static char buf[65536];
    ssize_t n = recv(fd, buf, tcp ? 1 : sizeof buf, 0);  // byte-wise for TCP: leave the rest unread
    if (n < 0) {
      if (errno == EINTR || errno == EAGAIN) continue;
      if (errno == ECONNREFUSED) f = {kExitRefused, "refused"};
      else f = {kExitErr, "recv: " + errstr(errno)};
      return false;
    }
    if (n == 0) {
      if (!line.empty()) return true;
      f = {kExitErr, "connection closed before a reply"};
      return false;
    }
    line.append(buf, static_cast<size_t>(n));
    if (!tcp) {
      while (!line.empty() && line.back() == '\n') line.pop_back();
      return true;
    }
    if (line.back() == '\n') {
      line.pop_back();
      return true;
    }
    if (line.size() > 65536) {
      f = {kExitErr, "reply line too long"};
      return false;
    }
  }
}

int report(const Fail& f) {
  if (f.rc == kExitRefused || f.rc == kExitTimeout) std::printf("%s\n", f.what.c_str());
  else std::fprintf(stderr, "ferry-echo: %s\n", f.what.c_str());
  std::fflush(stdout);
  return f.rc;
}

// ask --sendto: one datagram with sendto() on an unconnected socket, the
// answer with recvfrom() (the source address the kernel reports).
int ask_sendto(const ClientOpts& o) {
  Fail f{};
  auto dst = parse_addr(o.ip, o.port);
  if (!dst) die("bad address '" + o.ip + "'");
  int fd = open_client(o, &*dst, f);
  if (fd < 0) return report(f);
  const char msg[] = "ask\n";
  if (sendto(fd, msg, sizeof msg - 1, 0, reinterpret_cast<sockaddr*>(&dst->ss), dst->len) < 0) {
    int e = errno;
    close(fd);
    return report(e == ECONNREFUSED ? Fail{kExitRefused, "refused"} : Fail{kExitErr, "sendto: " + errstr(e)});
  }
  pollfd p{fd, POLLIN, 0};
  int pr;
  do pr = poll(&p, 1, o.timeout_ms);
  while (pr < 0 && errno == EINTR);
  if (pr == 0) {
    close(fd);
    return report(Fail{kExitTimeout, "timeout"});
  }
  char buf[4096];
  sockaddr_storage from{};
  socklen_t fl = sizeof from;
  ssize_t n = recvfrom(fd, buf, sizeof buf, MSG_DONTWAIT, reinterpret_cast<sockaddr*>(&from), &fl);
  int e = errno;
  close(fd);
  if (n < 0) return report(e == ECONNREFUSED ? Fail{kExitRefused, "refused"} : Fail{kExitErr, "recvfrom: " + errstr(e)});
  std::string line(buf, static_cast<size_t>(n));
  while (!line.empty() && line.back() == '\n') line.pop_back();
  if (o.show_peer) std::printf("peer %s\n", fmt_addr(reinterpret_cast<sockaddr*>(&from)).c_str());
  std::printf("%s\n", line.c_str());
  std::fflush(stdout);
  return kExitOk;
}

inline char pattern(uint64_t off) { return static_cast<char>('a' + off % 23); }

int ask_once(const ClientOpts& o) {
  if (o.sendto) return ask_sendto(o);
  Fail f{};
  int fd = connect_to(o, f);
  if (fd < 0) return report(f);
  std::string echo;  // --size: what must come back after the line
  if (!o.tcp) {
    std::string msg = "ask\n";
    if (o.size > 0) {
      msg = "ECHO\n";
      for (long i = 5; i < o.size; i++) echo += pattern(static_cast<uint64_t>(i));
      msg += echo;
    }
    if (send(fd, msg.data(), msg.size(), 0) < 0) {
      int e = errno;
      close(fd);
      return report(e == ECONNREFUSED ? Fail{kExitRefused, "refused"} : Fail{kExitErr, "send: " + errstr(e)});
    }
  }
  std::string line;
  bool ok = read_line(fd, o.tcp, o.timeout_ms, line, f);
  if (ok && o.show_peer) {
    sockaddr_storage peer{};
    socklen_t pl = sizeof peer;
    if (getpeername(fd, reinterpret_cast<sockaddr*>(&peer), &pl) == 0)
      std::printf("peer %s\n", fmt_addr(reinterpret_cast<sockaddr*>(&peer)).c_str());
  }
  close(fd);
  if (!ok) return report(f);
  if (o.size > 0) {
    // the line, then the echo (read_line kept the datagram whole, minus
    // trailing newlines, which the pattern never ends with)
    auto nl = line.find('\n');
    std::string got = nl == std::string::npos ? "" : line.substr(nl + 1);
    if (nl != std::string::npos) line.resize(nl);
    if (got != echo)
      return report(Fail{kExitErr, "echo of " + std::to_string(echo.size()) + " bytes came back as " +
                                       std::to_string(got.size()) + " different bytes"});
    std::printf("%s\necho %zu\n", line.c_str(), got.size());
  } else {
    std::printf("%s\n", line.c_str());
  }
  std::fflush(stdout);
  return kExitOk;
}

ClientOpts parse_client(int argc, char** argv, bool hold) {
  if (argc < 3) usage(kExitUsage);
  ClientOpts o;
  std::string proto = argv[0];
  if (proto == "tcp") o.tcp = true;
  else if (proto == "udp" && !hold) o.tcp = false;
  else usage(kExitUsage);
  o.ip = argv[1];
  o.port = parse_port(argv[2]);
  for (int i = 3; i < argc; i++) {
    std::string a = argv[i];
    auto val = [&]() -> std::string {
      if (i + 1 >= argc) usage(kExitUsage);
      return argv[++i];
    };
    if (a == "--timeout-ms") o.timeout_ms = static_cast<int>(parse_num(val(), "--timeout-ms"));
    else if (a == "--count" && !hold) o.count = parse_num(val(), "--count");
    else if (a == "--src-port") o.src_port = parse_port(val());
    else if (a == "--src") o.src = val();
    else if (a == "--show-peer" && !hold) o.show_peer = true;
    else if (a == "--sendto" && !hold && !o.tcp) o.sendto = true;
    else if (a == "--size" && !hold && !o.tcp) o.size = parse_num(val(), "--size");
    else if (a == "--seconds" && hold) o.seconds = parse_num(val(), "--seconds");
    else if (a == "--stall-ms" && hold) o.stall_ms = static_cast<int>(parse_num(val(), "--stall-ms"));
    else if (a == "-h" || a == "--help") usage(0);
    else usage(kExitUsage);
  }
  if (hold && o.seconds < 0) usage(kExitUsage);
  return o;
}

int cmd_ask(int argc, char** argv) {
  ClientOpts o = parse_client(argc, argv, false);
  signal(SIGPIPE, SIG_IGN);
  for (long i = 0; i < o.count; i++) {
    int rc = ask_once(o);
    if (rc != kExitOk) return rc;
  }
  return kExitOk;
}

int cmd_hold(int argc, char** argv) {
  ClientOpts o = parse_client(argc, argv, true);
  signal(SIGPIPE, SIG_IGN);
  Fail f{};
  int fd = connect_to(o, f);
  if (fd < 0) return report(f);
  std::string greeting;
  if (!read_line(fd, true, o.timeout_ms, greeting, f)) return report(f);
  std::fprintf(stderr, "ferry-echo: hold: %s\n", greeting.c_str());

  auto fail = [&](const std::string& msg, uint64_t sent, uint64_t got) {
    std::printf("error: %s (sent %llu, echoed %llu)\n", msg.c_str(), static_cast<unsigned long long>(sent),
                static_cast<unsigned long long>(got));
    std::fflush(stdout);
    close(fd);
    return kExitErr;
  };

  std::string pending = "STREAM\n";
  const size_t header = pending.size();  // not echoed (it is the mode switch)
  uint64_t queued = 0;                   // payload bytes generated
  uint64_t sent_payload = 0;             // payload bytes handed to the kernel
  uint64_t got = 0;                      // echoed bytes verified
  size_t header_left = header;
  const auto start = Clock::now();
  const auto end = start + std::chrono::seconds(o.seconds);
  auto next_chunk = start;
  auto last_progress = Clock::now();
  bool shut = false;
  char buf[65536];

  for (;;) {
    auto now = Clock::now();
    if (now < end) {
      while (next_chunk <= now) {  // 1 KiB per 10 ms
        for (int i = 0; i < 1024; i++) pending.push_back(pattern(queued + i));
        queued += 1024;
        next_chunk += std::chrono::milliseconds(10);
      }
    } else if (pending.empty() && !shut) {
      shutdown(fd, SHUT_WR);
      shut = true;
    }
    if (got == queued && now >= end && pending.empty()) break;
    if (got < sent_payload && ms_since(last_progress) > o.stall_ms)
      return fail("no echo for " + std::to_string(o.stall_ms) + " ms", sent_payload, got);
    if (got == sent_payload) last_progress = Clock::now();

    int wait_ms = 50;
    if (now < end)
      wait_ms = std::max<int64_t>(0, std::chrono::duration_cast<std::chrono::milliseconds>(next_chunk - now).count());
    pollfd p{fd, static_cast<short>(POLLIN | (pending.empty() ? 0 : POLLOUT)), 0};
    int pr = poll(&p, 1, wait_ms);
    if (pr < 0 && errno != EINTR) return fail("poll: " + errstr(errno), sent_payload, got);
    if (pr <= 0) continue;
    if (p.revents & POLLOUT) {
      ssize_t n = send(fd, pending.data(), pending.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
      if (n < 0 && errno != EAGAIN && errno != EINTR) return fail("send: " + errstr(errno), sent_payload, got);
      if (n > 0) {
        size_t h = std::min<size_t>(header_left, static_cast<size_t>(n));
        header_left -= h;
        sent_payload += static_cast<uint64_t>(n) - h;
        pending.erase(0, static_cast<size_t>(n));
      }
    }
    if (p.revents & (POLLIN | POLLHUP | POLLERR)) {
      ssize_t n = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
      if (n < 0 && errno != EAGAIN && errno != EINTR) return fail("recv: " + errstr(errno), sent_payload, got);
      if (n == 0) return fail("connection closed by peer", sent_payload, got);
      for (ssize_t i = 0; i < n; i++) {
        if (buf[i] != pattern(got))
          return fail("mismatch at byte " + std::to_string(got), sent_payload, got);
        got++;
      }
      if (n > 0) last_progress = Clock::now();
      if (got > sent_payload) return fail("received more than sent", sent_payload, got);
    }
  }
  close(fd);
  std::printf("ok %llu\n", static_cast<unsigned long long>(got));
  std::fflush(stdout);
  return kExitOk;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) usage(kExitUsage);
  std::string cmd = argv[1];
  if (cmd == "serve") return cmd_serve(argc - 2, argv + 2);
  if (cmd == "ask") return cmd_ask(argc - 2, argv + 2);
  if (cmd == "hold") return cmd_hold(argc - 2, argv + 2);
  if (cmd == "-h" || cmd == "--help" || cmd == "help") usage(0);
  usage(kExitUsage);
}
