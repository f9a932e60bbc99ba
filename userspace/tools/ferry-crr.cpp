// ferry-crr: connection-rate benchmark, like netperf's TCP_CRR.
//
//   ferry-crr serve [--port P] [--bind ADDR]
//       Accepts connections (default: every address of both families);
//       for every request of up to 64 bytes answers with one byte; closes
//       when the client does. Exits on SIGTERM/SIGINT.
//   ferry-crr run IP PORT [--threads T] [--seconds S] [--timeout-ms N]
//       (IP: IPv4 or IPv6)
//       T threads each loop for S seconds (fractions allowed): connect, send one byte, read one
//       byte, close. Prints one line:
//         conns=C seconds=S rate=R connect_p50_us=A connect_p99_us=B
//         txn_p50_us=X txn_p99_us=Y errors=E
//       (connect: from connect() to the handshake done; txn: from connect()
//       to the response read). Exit 0 when at least one connection worked.
//
// The client closes first, so its side keeps TIME_WAIT sockets: run it
// with net.ipv4.tcp_tw_reuse=1 and a wide ip_local_port_range in its
// network namespace (scripts/bench.sh does).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <unordered_set>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

[[noreturn]] void usage(int rc) {
  std::fprintf(rc ? stderr : stdout,
               "usage:\n"
               "  ferry-crr serve [--port P] [--bind ADDR]\n"
               "  ferry-crr run IP PORT [--threads T] [--seconds S] [--timeout-ms N]\n");
  std::exit(rc);
}

[[noreturn]] void die(const std::string& m) {
  std::fprintf(stderr, "ferry-crr: %s\n", m.c_str());
  std::exit(1);
}

long num(const char* s, const char* what) {
  char* end = nullptr;
  long v = std::strtol(s, &end, 10);
  if (!*s || *end || v <= 0) die(std::string("bad ") + what + " '" + s + "'");
  return v;
}

// A socket address of either family.
struct Addr {
  sockaddr_storage ss{};
  socklen_t len = 0;
  int family() const { return ss.ss_family; }
  const sockaddr* sa() const { return reinterpret_cast<const sockaddr*>(&ss); }
};

Addr ipAddr(const std::string& ip, long port) {
  Addr a;
  auto* a4 = reinterpret_cast<sockaddr_in*>(&a.ss);
  auto* a6 = reinterpret_cast<sockaddr_in6*>(&a.ss);
  if (inet_pton(AF_INET, ip.c_str(), &a4->sin_addr) == 1) {
    a4->sin_family = AF_INET;
    a4->sin_port = htons(static_cast<uint16_t>(port));
    a.len = sizeof *a4;
  } else if (inet_pton(AF_INET6, ip.c_str(), &a6->sin6_addr) == 1) {
    a6->sin6_family = AF_INET6;
    a6->sin6_port = htons(static_cast<uint16_t>(port));
    a.len = sizeof *a6;
  } else {
    die("bad IP address '" + ip + "'");
  }
  return a;
}

// ------------------------------------------------------------------ server
volatile sig_atomic_t g_stop = 0;
void onTerm(int) { g_stop = 1; }

int serve(int argc, char** argv) {
  long port = 8080;
  std::string bindIp = "::";
  for (int i = 0; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--port" && i + 1 < argc) port = num(argv[++i], "--port");
    else if (a == "--bind" && i + 1 < argc) bindIp = argv[++i];
    else usage(2);
  }
  struct sigaction sa{};
  sa.sa_handler = onTerm;
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGINT, &sa, nullptr);
  signal(SIGPIPE, SIG_IGN);

  Addr a = ipAddr(bindIp, port);
  int lfd = socket(a.family(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  int one = 1, off = 0;
  setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (a.family() == AF_INET6) setsockopt(lfd, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof off);
  if (bind(lfd, a.sa(), a.len) < 0 || listen(lfd, 4096) < 0)
    die("listen on " + bindIp + ":" + std::to_string(port) + ": " + strerror(errno));
  int ep = epoll_create1(EPOLL_CLOEXEC);
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.fd = lfd;
  epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);
  std::printf("listening tcp %s:%ld\n", bindIp.c_str(), port);
  std::fflush(stdout);

  std::vector<epoll_event> evs(512);
  while (!g_stop) {
    int n = epoll_wait(ep, evs.data(), static_cast<int>(evs.size()), 500);
    for (int i = 0; i < n; ++i) {
      int fd = evs[i].data.fd;
      if (fd == lfd) {
        for (int k = 0; k < 256; ++k) {
          int c = accept4(lfd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
          if (c < 0) break;
          setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
          epoll_event ce{};
          ce.events = EPOLLIN | EPOLLRDHUP;
          ce.data.fd = c;
          epoll_ctl(ep, EPOLL_CTL_ADD, c, &ce);
        }
        continue;
      }
      char buf[64];
      ssize_t r = recv(fd, buf, sizeof buf, 0);
      if (r > 0) {
        (void)send(fd, "r", 1, MSG_NOSIGNAL);
        continue;
      }
      if (r < 0 && (errno == EAGAIN || errno == EINTR)) continue;
      epoll_ctl(ep, EPOLL_CTL_DEL, fd, nullptr);
      close(fd);
    }
  }
  return 0;
}

// ------------------------------------------------------------------ client
struct ThreadResult {
  uint64_t conns = 0;
  uint64_t errors = 0;
  std::vector<uint32_t> connectUs;
  std::vector<uint32_t> txnUs;
  std::string firstError;
};

uint32_t usSince(Clock::time_point t) {
  return static_cast<uint32_t>(
      std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - t).count());
}

bool waitFd(int fd, short events, int timeoutMs) {
  pollfd p{fd, events, 0};
  for (;;) {
    int r = poll(&p, 1, timeoutMs);
    if (r < 0 && errno == EINTR) continue;
    return r > 0;
  }
}

// One connect / request / response / close. Returns "" or the error.
std::string transact(const Addr& dst, int timeoutMs, ThreadResult& tr) {
  int fd = socket(dst.family(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return std::string("socket: ") + strerror(errno);
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  auto t0 = Clock::now();
  std::string err;
  if (connect(fd, dst.sa(), dst.len) < 0 && errno != EINPROGRESS) {
    err = std::string("connect: ") + strerror(errno);
  } else if (!waitFd(fd, POLLOUT, timeoutMs)) {
    err = "connect: timeout";
  } else {
    int soErr = 0;
    socklen_t l = sizeof soErr;
    getsockopt(fd, SOL_SOCKET, SO_ERROR, &soErr, &l);
    if (soErr) err = std::string("connect: ") + strerror(soErr);
  }
  if (err.empty()) {
    tr.connectUs.push_back(usSince(t0));
    char c = 'q';
    if (send(fd, &c, 1, MSG_NOSIGNAL) != 1) err = std::string("send: ") + strerror(errno);
    else if (!waitFd(fd, POLLIN, timeoutMs)) err = "response: timeout";
    else if (recv(fd, &c, 1, 0) != 1) err = "response: connection closed";
    else tr.txnUs.push_back(usSince(t0));
  }
  close(fd);
  return err;
}

uint32_t pct(std::vector<uint32_t>& v, double q) {
  if (v.empty()) return 0;
  size_t k = std::min(v.size() - 1, static_cast<size_t>(q * static_cast<double>(v.size())));
  std::nth_element(v.begin(), v.begin() + static_cast<long>(k), v.end());
  return v[k];
}

int run(int argc, char** argv) {
  if (argc < 2) usage(2);
  Addr dst = ipAddr(argv[0], num(argv[1], "port"));
  long threads = 4, timeoutMs = 1000;
  double seconds = 5;
  for (int i = 2; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--threads" && i + 1 < argc) threads = num(argv[++i], "--threads");
    else if (a == "--seconds" && i + 1 < argc) {
      char* end = nullptr;
      seconds = std::strtod(argv[++i], &end);
      if (*end || !(seconds > 0)) die(std::string("bad --seconds '") + argv[i] + "'");
    }
    else if (a == "--timeout-ms" && i + 1 < argc) timeoutMs = num(argv[++i], "--timeout-ms");
    else usage(2);
  }
  if (threads > 256 || seconds > 3600) die("--threads at most 256, --seconds at most 3600");
  signal(SIGPIPE, SIG_IGN);

  std::vector<ThreadResult> res(static_cast<size_t>(threads));
  std::vector<std::thread> ts;
  const auto start = Clock::now();
  const auto end = start + std::chrono::microseconds(static_cast<int64_t>(seconds * 1e6));
  for (long t = 0; t < threads; ++t) {
    ts.emplace_back([&, t] {
      ThreadResult& tr = res[static_cast<size_t>(t)];
      while (Clock::now() < end) {
        std::string e = transact(dst, static_cast<int>(timeoutMs), tr);
        if (e.empty()) {
          tr.conns++;
        } else {
          if (tr.firstError.empty()) tr.firstError = e;
          tr.errors++;
          // a refused or unreachable target must not spin through the port range
          std::this_thread::sleep_for(std::chrono::milliseconds(1));
        }
      }
    });
  }
  for (auto& t : ts) t.join();
  double secs = std::chrono::duration<double>(Clock::now() - start).count();

  ThreadResult all;
  for (auto& r : res) {
    all.conns += r.conns;
    all.errors += r.errors;
    all.connectUs.insert(all.connectUs.end(), r.connectUs.begin(), r.connectUs.end());
    all.txnUs.insert(all.txnUs.end(), r.txnUs.begin(), r.txnUs.end());
    if (all.firstError.empty()) all.firstError = r.firstError;
  }
  std::printf("conns=%llu seconds=%.2f rate=%.0f connect_p50_us=%u connect_p99_us=%u "
              "txn_p50_us=%u txn_p99_us=%u errors=%llu\n",
              static_cast<unsigned long long>(all.conns), secs, all.conns / secs,
              pct(all.connectUs, 0.5), pct(all.connectUs, 0.99), pct(all.txnUs, 0.5),
              pct(all.txnUs, 0.99), static_cast<unsigned long long>(all.errors));
  if (!all.firstError.empty()) std::fprintf(stderr, "ferry-crr: first error: %s\n", all.firstError.c_str());
  std::fflush(stdout);
  return all.conns > 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) usage(2);
  std::string cmd = argv[1];
  if (cmd == "serve") return serve(argc - 2, argv + 2);
  if (cmd == "run") return run(argc - 2, argv + 2);
  if (cmd == "-h" || cmd == "--help") usage(0);
  usage(2);
}
