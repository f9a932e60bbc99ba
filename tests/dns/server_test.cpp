// The I/O half on real sockets, in a private network namespace of this test
// process (198.18.0.53 on its loopback; the namespace goes away with the
// process): UDP and TCP answers, forwarding, upstream timeout -> SERVFAIL,
// TCP pipelining across partial reads, and the connection limit.
#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <functional>

#include "dns/server.h"
#include "dns_test_util.h"
#include "../common/needs.h"

namespace ferry {
namespace {

using namespace dnstest;
using namespace std::chrono_literals;

constexpr const char* kAddr = "198.18.0.53";
constexpr uint16_t kPort = 5353, kUpstreamPort = 5354;

bool g_netnsReady = false;

bool setIfAddr(const char* ifname, const char* addr, bool up) {
  int fd = socket(AF_INET, SOCK_DGRAM, 0);
  if (fd < 0) return false;
  ifreq ifr{};
  std::strncpy(ifr.ifr_name, ifname, IFNAMSIZ - 1);
  bool ok = true;
  if (addr) {
    auto* sin = reinterpret_cast<sockaddr_in*>(&ifr.ifr_addr);
    sin->sin_family = AF_INET;
    inet_pton(AF_INET, addr, &sin->sin_addr);
    ok = ioctl(fd, SIOCSIFADDR, &ifr) == 0;
  }
  if (ok && up) {
    ok = ioctl(fd, SIOCGIFFLAGS, &ifr) == 0;
    ifr.ifr_flags |= IFF_UP;
    ok = ok && ioctl(fd, SIOCSIFFLAGS, &ifr) == 0;
  }
  close(fd);
  return ok;
}

sockaddr_in sa(const char* addr, uint16_t port) {
  sockaddr_in s{};
  s.sin_family = AF_INET;
  s.sin_port = htons(port);
  inet_pton(AF_INET, addr, &s.sin_addr);
  return s;
}

int udpSocket(uint16_t bindPort = 0) {
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
  if (bindPort) {
    sockaddr_in s = sa(kAddr, bindPort);
    bind(fd, reinterpret_cast<sockaddr*>(&s), sizeof s);
  }
  return fd;
}

class DnsServerIo : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (g_netnsReady) return;
    // only this (single-threaded) test process moves; needs CAP_SYS_ADMIN
    g_netnsReady = unshare(CLONE_NEWNET) == 0 && setIfAddr("lo", nullptr, true) &&
                   setIfAddr("lo:0", kAddr, true);
  }

  void SetUp() override {
    if (!g_netnsReady) FERRY_CANNOT_RUN("needs root for a private network namespace");
    upstream_ = udpSocket(kUpstreamPort);
    ASSERT_GE(upstream_, 0);
    DnsConfig cfg;
    cfg.listen = {*DnsAddr::parse(std::string(kAddr) + ":" + std::to_string(kPort))};
    cfg.upstreams = {*DnsAddr::parse(std::string(kAddr) + ":" + std::to_string(kUpstreamPort))};
    DnsServer::Limits lim;
    lim.upstreamTimeout = 100ms;
    lim.maxConns = 4;
    auto s = DnsServer::create(cfg, lim);
    ASSERT_TRUE(s) << s.status().message();
    server_ = std::move(*s);
    server_->update(snapshot({service("default", "web", {"198.19.0.20"})}));
  }

  void TearDown() override {
    server_.reset();
    if (upstream_ >= 0) close(upstream_);
  }

  // Runs the server's loop until done() or the timeout.
  bool pump(const std::function<bool()>& done, std::chrono::milliseconds timeout = 2000ms) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
      if (done()) return true;
      std::vector<pollfd> fds = server_->pollFds();
      int t = server_->timeoutMs();
      poll(fds.data(), fds.size(), t < 0 || t > 10 ? 10 : t);
      for (const pollfd& p : fds)
        if (p.revents) server_->onReady(p.fd, p.revents);
      server_->onTimer();
    }
    return done();
  }

  std::vector<uint8_t> udpAsk(const std::vector<uint8_t>& q, const std::function<void()>& meanwhile = {}) {
    int fd = udpSocket();
    sockaddr_in to = sa(kAddr, kPort);
    sendto(fd, q.data(), q.size(), 0, reinterpret_cast<sockaddr*>(&to), sizeof to);
    std::vector<uint8_t> buf(65535), got;
    pump([&] {
      if (meanwhile) meanwhile();
      ssize_t n = recv(fd, buf.data(), buf.size(), 0);
      if (n > 0) got.assign(buf.begin(), buf.begin() + n);
      return !got.empty();
    });
    close(fd);
    return got;
  }

  std::unique_ptr<DnsServer> server_;
  int upstream_ = -1;
};

TEST_F(DnsServerIo, UdpAnswer) {
  Reply r = read(udpAsk(query("web.default.svc.cluster.local.", LDNS_RR_TYPE_A)));
  ASSERT_TRUE(r.ok);
  EXPECT_EQ(r.answer, std::vector<std::string>{"web.default.svc.cluster.local. 5 IN A 198.19.0.20"});
}

TEST_F(DnsServerIo, UpdateChangesAnswersAtOnce) {
  server_->update(snapshot({externalName("default", "web", "web.example.test")}));
  Reply r = read(udpAsk(query("web.default.svc.cluster.local.", LDNS_RR_TYPE_CNAME)));
  EXPECT_EQ(r.answer,
            std::vector<std::string>{"web.default.svc.cluster.local. 5 IN CNAME web.example.test."});
}

TEST_F(DnsServerIo, ForwardsOutsideNamesAndRelaysTheAnswer) {
  std::vector<uint8_t> q = query("www.example.test.", LDNS_RR_TYPE_A, 1232, 0x4242);
  bool answered = false;
  std::vector<uint8_t> got = udpAsk(q, [&] {
    if (answered) return;
    uint8_t buf[2048];
    sockaddr_in from{};
    socklen_t len = sizeof from;
    ssize_t n = recvfrom(upstream_, buf, sizeof buf, 0, reinterpret_cast<sockaddr*>(&from), &len);
    if (n <= 0) return;
    std::vector<uint8_t> reply(buf, buf + n);
    EXPECT_EQ(reply.size(), q.size());  // the client's query, with another id
    reply[2] |= 0x80;                   // QR: an (empty) answer
    sendto(upstream_, reply.data(), reply.size(), 0, reinterpret_cast<sockaddr*>(&from), len);
    answered = true;
  });
  Reply r = read(got);
  ASSERT_TRUE(r.ok);
  EXPECT_TRUE(answered);
  EXPECT_EQ(r.id, 0x4242);
  EXPECT_EQ(r.rcode, LDNS_RCODE_NOERROR);
}

TEST_F(DnsServerIo, SilentUpstreamGivesServfail) {
  auto t0 = std::chrono::steady_clock::now();
  Reply r = read(udpAsk(query("www.example.test.", LDNS_RR_TYPE_A)));
  auto took = std::chrono::steady_clock::now() - t0;
  ASSERT_TRUE(r.ok);
  EXPECT_EQ(r.rcode, LDNS_RCODE_SERVFAIL);
  EXPECT_GE(took, 190ms);  // two attempts of 100 ms
  EXPECT_EQ(server_->timeoutMs(), -1);  // nothing left pending
}

TEST_F(DnsServerIo, TcpPipelinedQueriesInPieces) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in to = sa(kAddr, kPort);
  ASSERT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&to), sizeof to), 0);
  std::vector<uint8_t> stream;
  for (uint16_t id : {1, 2}) {
    std::vector<uint8_t> q = query("web.default.svc.cluster.local.", LDNS_RR_TYPE_A, 0, id);
    stream.push_back(static_cast<uint8_t>(q.size() >> 8));
    stream.push_back(static_cast<uint8_t>(q.size()));
    stream.insert(stream.end(), q.begin(), q.end());
  }
  // one byte, then the rest: the server keeps partial messages
  ASSERT_EQ(send(fd, stream.data(), 1, 0), 1);
  pump([] { return false; }, 50ms);
  ASSERT_EQ(send(fd, stream.data() + 1, stream.size() - 1, 0), static_cast<ssize_t>(stream.size() - 1));
  std::vector<uint8_t> in;
  auto answers = [&] {
    std::vector<std::vector<uint8_t>> out;
    for (size_t off = 0; in.size() - off >= 2;) {
      size_t len = static_cast<size_t>(in[off] << 8 | in[off + 1]);
      if (in.size() - off < 2 + len) break;
      out.emplace_back(in.begin() + off + 2, in.begin() + off + 2 + len);
      off += 2 + len;
    }
    return out;
  };
  pump([&] {
    uint8_t buf[4096];
    ssize_t n = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
    if (n > 0) in.insert(in.end(), buf, buf + n);
    return answers().size() == 2;
  });
  auto got = answers();
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(read(got[0]).id, 1);
  EXPECT_EQ(read(got[1]).id, 2);
  EXPECT_EQ(read(got[1]).answer.size(), 1u);
  close(fd);
}

TEST_F(DnsServerIo, TcpConnectionsAreBounded) {
  std::vector<int> fds;
  for (int i = 0; i < 10; ++i) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in to = sa(kAddr, kPort);
    ASSERT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&to), sizeof to), 0);
    fds.push_back(fd);
    pump([] { return false; }, 20ms);
  }
  size_t listeners = 2, upstream = 1;
  EXPECT_LE(server_->pollFds().size(), listeners + upstream + 4);
  // the oldest were closed: reading them gives EOF
  char c;
  EXPECT_EQ(recv(fds[0], &c, 1, MSG_DONTWAIT), 0);
  for (int fd : fds) close(fd);
}

// Answers over IPv6 too: a second server on [::1] (lo in the private
// namespace), asked over UDP and TCP for a dual-stack service's AAAA.
TEST_F(DnsServerIo, AnswersOverIpv6UdpAndTcp) {
  DnsConfig cfg;
  cfg.listen = {*DnsAddr::parse("[::1]:5355")};
  auto s = DnsServer::create(cfg, DnsServer::Limits{});
  ASSERT_TRUE(s) << s.status().message();
  server_ = std::move(*s);
  server_->update(snapshot({service("default", "dual", {"198.19.0.21", "2001:db8:ffff::21"})}));
  sockaddr_in6 to{};
  to.sin6_family = AF_INET6;
  to.sin6_port = htons(5355);
  to.sin6_addr = in6addr_loopback;
  auto q = query("dual.default.svc.cluster.local.", LDNS_RR_TYPE_AAAA);
  int fd = socket(AF_INET6, SOCK_DGRAM | SOCK_NONBLOCK, 0);
  ASSERT_EQ(sendto(fd, q.data(), q.size(), 0, reinterpret_cast<sockaddr*>(&to), sizeof to),
            ssize_t(q.size()));
  std::vector<uint8_t> buf(4096), got;
  pump([&] {
    ssize_t n = recv(fd, buf.data(), buf.size(), 0);
    if (n > 0) got.assign(buf.begin(), buf.begin() + n);
    return !got.empty();
  });
  close(fd);
  ASSERT_FALSE(got.empty()) << "no UDP answer over IPv6";
  EXPECT_EQ(read(got).answer,
            std::vector<std::string>{"dual.default.svc.cluster.local. 5 IN AAAA 2001:db8:ffff::21"});

  fd = socket(AF_INET6, SOCK_STREAM | SOCK_NONBLOCK, 0);
  connect(fd, reinterpret_cast<sockaddr*>(&to), sizeof to);
  std::vector<uint8_t> framed = {uint8_t(q.size() >> 8), uint8_t(q.size())};
  framed.insert(framed.end(), q.begin(), q.end());
  bool sent = false;
  std::vector<uint8_t> in;
  pump([&] {
    if (!sent) sent = send(fd, framed.data(), framed.size(), MSG_NOSIGNAL) == ssize_t(framed.size());
    uint8_t b[4096];
    ssize_t n = recv(fd, b, sizeof b, MSG_DONTWAIT);
    if (n > 0) in.insert(in.end(), b, b + n);
    return in.size() >= 2 && in.size() >= 2u + (size_t(in[0]) << 8 | in[1]);
  });
  close(fd);
  ASSERT_GE(in.size(), 2u) << "no TCP answer over IPv6";
  EXPECT_EQ(read(std::vector<uint8_t>(in.begin() + 2, in.end())).answer,
            std::vector<std::string>{"dual.default.svc.cluster.local. 5 IN AAAA 2001:db8:ffff::21"});
}

}  // namespace
}  // namespace ferry
