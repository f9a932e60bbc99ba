// ferryd's /healthz and /readyz (--healthz-listen, issue 13), and the HTTP
// listener under them and under healthCheckNodePort (libmicrohttpd).
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <thread>

#include "agent/healthz.h"

namespace ferry {
namespace {

TEST(Healthz, ReadyzIs503UntilTheFirstSyncThen200) {
  HttpReply notYet = healthzReply("GET", "/readyz", false, "initial lists not complete");
  EXPECT_EQ(notYet.status, 503u);
  EXPECT_NE(notYet.body.find("initial lists not complete"), std::string::npos);
  EXPECT_EQ(healthzReply("GET", "/readyz", true, "").status, 200u);
}

TEST(Healthz, HealthzIsAliveEvenBeforeSyncAndOtherPathsAre404) {
  EXPECT_EQ(healthzReply("GET", "/healthz", false, "x").status, 200u);
  EXPECT_EQ(healthzReply("GET", "/livez", false, "x").status, 200u);
  EXPECT_EQ(healthzReply("HEAD", "/healthz", false, "x").status, 200u);
  EXPECT_EQ(healthzReply("GET", "/metrics", true, "").status, 404u);
  EXPECT_EQ(healthzReply("POST", "/healthz", true, "").status, 405u);
}

TEST(Healthz, ListenRejectsBadAddresses) {
  EXPECT_FALSE(HealthzServer::listen("10256", nullptr));
  EXPECT_FALSE(HealthzServer::listen(":0", nullptr));
  EXPECT_FALSE(HealthzServer::listen("nothost:10256", nullptr));
  EXPECT_FALSE(HealthzServer::listen("127.0.0.1:65536", nullptr));
}

// A client on loopback talking to a listener driven as the agent drives it:
// poll its fd, run it. Returns what the client read before EOF.
struct LoopClient {
  int fd = -1;
  explicit LoopClient(uint16_t port) {
    fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
      close(fd);
      fd = -1;
    }
  }
  ~LoopClient() {
    if (fd >= 0) close(fd);
  }
  void send(const std::string& s) const { ASSERT_EQ(::send(fd, s.data(), s.size(), MSG_NOSIGNAL), ssize_t(s.size())); }
};

// Drives `srv` until `client` reads EOF or 3 s pass; returns what it read.
std::string exchange(HealthzServer& srv, LoopClient& client) {
  std::string got;
  auto end = std::chrono::steady_clock::now() + std::chrono::seconds(3);
  while (std::chrono::steady_clock::now() < end) {
    pollfd p[2] = {{srv.pollFd(), POLLIN, 0}, {client.fd, POLLIN, 0}};
    poll(p, 2, 50);
    srv.run();
    if (p[1].revents) {
      char buf[4096];
      ssize_t n = read(client.fd, buf, sizeof buf);
      if (n <= 0) break;
      got.append(buf, size_t(n));
    }
  }
  return got;
}

uint16_t freePort() {
  int s = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(s, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  getsockname(s, reinterpret_cast<sockaddr*>(&a), &len);
  close(s);
  return ntohs(a.sin_port);
}

TEST(Healthz, ServesOverTheLoopbackFromThePollLoop) {
  uint16_t port = freePort();
  bool ready = false;
  auto srv = HealthzServer::listen("127.0.0.1:" + std::to_string(port),
                                   [&] { return ready ? std::string() : "lists not synced"; });
  ASSERT_TRUE(srv) << srv.status().message();
  {
    LoopClient c(port);
    ASSERT_GE(c.fd, 0);
    c.send("GET /readyz?verbose HTTP/1.1\r\nHost: x\r\n\r\n");
    std::string r = exchange(**srv, c);
    EXPECT_EQ(r.rfind("HTTP/1.1 503 ", 0), 0u) << r;
    EXPECT_NE(r.find("not ready: lists not synced"), std::string::npos) << r;
  }
  ready = true;
  {
    // headers in pieces, as some clients write them
    LoopClient c(port);
    ASSERT_GE(c.fd, 0);
    c.send("GET /readyz HTTP/1.1\r\n");
    c.send("Host: x\r\n");
    c.send("\r\n");
    std::string r = exchange(**srv, c);
    EXPECT_EQ(r.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << r;
    EXPECT_NE(r.find("Connection: close"), std::string::npos) << r;
  }
  {
    LoopClient c(port);
    ASSERT_GE(c.fd, 0);
    c.send("HEAD /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
    std::string r = exchange(**srv, c);
    EXPECT_EQ(r.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << r;
    EXPECT_EQ(r.substr(r.size() - 4), "\r\n\r\n") << "HEAD has no body: " << r;
  }
  {
    LoopClient c(port);
    ASSERT_GE(c.fd, 0);
    // not HTTP: refused (libmicrohttpd closes it, or answers 400) ...
    c.send("garbage\r\n\r\n");
    std::string r = exchange(**srv, c);
    EXPECT_TRUE(r.empty() || r.rfind("HTTP/1.1 400", 0) == 0) << r;
  }
  {
    // ... and the next client is served as before
    LoopClient c(port);
    ASSERT_GE(c.fd, 0);
    c.send("GET /livez HTTP/1.0\r\n\r\n");
    std::string r = exchange(**srv, c);
    EXPECT_EQ(r.rfind("HTTP/1.", 0), 0u) << r;
    EXPECT_NE(r.find(" 200 OK\r\n"), std::string::npos) << r;
  }
}

TEST(Healthz, SilentClientIsDroppedAndDoesNotBlock) {
  uint16_t port = freePort();
  auto srv = HealthzServer::listen("127.0.0.1:" + std::to_string(port), nullptr);
  ASSERT_TRUE(srv) << srv.status().message();
  LoopClient silent(port);
  ASSERT_GE(silent.fd, 0);
  // a second client is answered while the first says nothing
  LoopClient c(port);
  ASSERT_GE(c.fd, 0);
  c.send("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
  std::string r = exchange(**srv, c);
  EXPECT_EQ(r.rfind("HTTP/1.1 200 OK", 0), 0u) << r;
  // and the silent one is closed by the server within its idle timeout (2 s)
  std::string s = exchange(**srv, silent);
  EXPECT_EQ(s, "");
  char b;
  EXPECT_EQ(read(silent.fd, &b, 1), 0) << "the silent client was not closed";
}

}  // namespace
}  // namespace ferry
