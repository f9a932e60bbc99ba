// The announcer on real sockets: in a network namespace this test
// process creates for itself (never the root namespace), a veth pair
// ann0 <-> ann1; the announcer answers on ann0, a raw "client" socket on
// ann1 asks and listens. Skipped without root.
#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <poll.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <functional>

#include "announce/announcer.h"
#include "test_util.h"
#include "../common/needs.h"

namespace ferry {
namespace {

using testing::ip;
using testing::toHexMac;
using namespace std::chrono;

bool g_ready = false;
std::string g_why;

// Loop bounds: an answer comes within milliseconds; waiting for one that
// must not come is bounded too.
constexpr auto kAnswerWait = milliseconds(2000);
constexpr auto kSilenceWait = milliseconds(300);

MacAddr macOf(const char* ifname) {
  MacAddr m{};
  int fd = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, 0);
  ifreq ifr{};
  std::strncpy(ifr.ifr_name, ifname, IFNAMSIZ - 1);
  if (fd >= 0 && ioctl(fd, SIOCGIFHWADDR, &ifr) == 0)
    std::memcpy(m.data(), ifr.ifr_hwaddr.sa_data, 6);
  if (fd >= 0) close(fd);
  return m;
}

class NetnsTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (g_ready || !g_why.empty()) return;
    if (geteuid() != 0) {
      g_why = "needs root for a private network namespace";
      return;
    }
    if (unshare(CLONE_NEWNET) != 0) {
      g_why = std::string("unshare(CLONE_NEWNET): ") + std::strerror(errno);
      return;
    }
    // From here on this process (and the ip commands it runs) is in the
    // new, empty namespace.
    int rc = std::system(
        "ip link add ann0 type veth peer name ann1 && ip link set ann0 up && ip link set ann1 up");
    if (rc != 0) {
      g_why = "creating the veth pair failed";
      return;
    }
    g_ready = true;
  }

  void SetUp() override {
    if (!g_ready) FERRY_CANNOT_RUN(g_why);
    auto a = L2Announcer::open("ann0");
    ASSERT_TRUE(a) << a.status().message();
    ann_ = std::move(*a);
    client_ = socket(AF_PACKET, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, htons(ETH_P_ALL));
    ASSERT_GE(client_, 0) << std::strerror(errno);
    sockaddr_ll sll{};
    sll.sll_family = AF_PACKET;
    sll.sll_protocol = htons(ETH_P_ALL);
    sll.sll_ifindex = static_cast<int>(if_nametoindex("ann1"));
    ASSERT_EQ(bind(client_, reinterpret_cast<sockaddr*>(&sll), sizeof sll), 0)
        << std::strerror(errno);
    clientMac_ = macOf("ann1");
    EXPECT_EQ(ann_->mac(), macOf("ann0"));
  }

  void TearDown() override {
    ann_.reset();
    if (client_ >= 0) close(client_);
  }

  void clientSend(const Frame& f) {
    ASSERT_EQ(send(client_, f.data(), f.size(), 0), static_cast<ssize_t>(f.size()))
        << std::strerror(errno);
  }

  // Runs the announcer as the agent's loop would until match() accepts a
  // frame arriving on ann1, or `wait` passes. Returns the frame.
  std::optional<Frame> runUntil(const std::function<bool(const Frame&)>& match, milliseconds wait) {
    auto deadline = steady_clock::now() + wait;
    while (steady_clock::now() < deadline) {
      std::vector<pollfd> fds = {{client_, POLLIN, 0}};
      for (int fd : ann_->pollFds()) fds.push_back({fd, POLLIN, 0});
      int left =
          static_cast<int>(duration_cast<milliseconds>(deadline - steady_clock::now()).count());
      int t = ann_->timeoutMs();
      if (t < 0 || t > left) t = std::max(left, 0);
      if (poll(fds.data(), fds.size(), t) < 0 && errno != EINTR) return std::nullopt;
      for (size_t i = 1; i < fds.size(); ++i)
        if (fds[i].revents) ann_->onReadable(fds[i].fd);
      ann_->onTimer();
      if (!fds[0].revents) continue;
      uint8_t buf[2048];
      for (;;) {
        sockaddr_ll from{};
        socklen_t len = sizeof from;
        ssize_t n = recvfrom(client_, buf, sizeof buf, 0, reinterpret_cast<sockaddr*>(&from), &len);
        if (n <= 0) break;
        if (from.sll_pkttype == PACKET_OUTGOING) continue;
        Frame f(buf, buf + n);
        if (match(f)) return f;
      }
    }
    return std::nullopt;
  }

  Frame arpRequest(const IpAddr& target) {
    // the same frame a Linux client sends: who-has target tell 198.18.0.100
    Frame f = buildGratuitousArp(ip("198.18.0.100"), clientMac_);  // request layout, broadcast
    std::memcpy(f.data() + 38, target.bytes.data() + 12, 4);
    return f;
  }

  static bool isArp(const Frame& f, uint8_t op, const IpAddr& sender) {
    return f.size() >= 42 && f[12] == 0x08 && f[13] == 0x06 && f[21] == op &&
           std::memcmp(f.data() + 28, sender.bytes.data() + 12, 4) == 0;
  }
  static bool isNa(const Frame& f, const IpAddr& target) {
    return f.size() >= 86 && f[12] == 0x86 && f[13] == 0xdd && f[20] == 58 && f[54] == 136 &&
           std::memcmp(f.data() + 62, target.bytes.data(), 16) == 0;
  }

  std::unique_ptr<L2Announcer> ann_;
  int client_ = -1;
  MacAddr clientMac_{};
};

TEST_F(NetnsTest, AnswersArpForOwnedAddressWithDeviceMac) {
  IpAddr lb = ip("198.18.0.200");
  ann_->setOwned({lb});
  // the takeover announcement comes first
  auto garp = runUntil([&](const Frame& f) { return isArp(f, 1, lb); }, kAnswerWait);
  ASSERT_TRUE(garp) << "no gratuitous ARP";
  EXPECT_EQ(toHexMac(*garp, 22), toHexMac(ann_->mac()));

  clientSend(arpRequest(lb));
  auto reply = runUntil([&](const Frame& f) { return isArp(f, 2, lb); }, kAnswerWait);
  ASSERT_TRUE(reply) << "no ARP reply";
  EXPECT_EQ(toHexMac(*reply, 0), toHexMac(clientMac_)) << "unicast to the asker";
  EXPECT_EQ(toHexMac(*reply, 22), toHexMac(ann_->mac())) << "sender hardware address";
  EXPECT_EQ(toHexMac(*reply, 32), toHexMac(clientMac_)) << "target hardware address";
  EXPECT_EQ(ann_->stats().arpReplies, 1u);
  EXPECT_EQ(ann_->stats().sendErrors, 0u) << ann_->stats().lastError;
}

TEST_F(NetnsTest, SilentForAddressesNotOwned) {
  IpAddr lb = ip("198.18.0.201");
  ann_->setOwned({ip("198.18.0.202")});
  clientSend(arpRequest(lb));
  EXPECT_FALSE(runUntil([&](const Frame& f) { return isArp(f, 2, lb); }, kSilenceWait));

  // owned, then given up: no answer any more
  ann_->setOwned({lb});
  ann_->setOwned({});
  clientSend(arpRequest(lb));
  EXPECT_FALSE(runUntil([&](const Frame& f) { return isArp(f, 2, lb); }, kSilenceWait));
  EXPECT_EQ(ann_->stats().arpReplies, 0u);
}

TEST_F(NetnsTest, AnswersNeighborSolicitation) {
  IpAddr lb = ip("2001:db8::200");
  ann_->setOwned({lb});
  auto una = runUntil([&](const Frame& f) { return isNa(f, lb); }, kAnswerWait);
  ASSERT_TRUE(una) << "no unsolicited NA";
  EXPECT_EQ((*una)[58] & 0x40, 0) << "unsolicited: S flag clear";

  // NS from 2001:db8::100 to the solicited-node group, as a client sends it
  NeighborSolicitation ns{clientMac_, ip("2001:db8::100"), lb, clientMac_};
  Frame na = buildNeighborAdvertisement(ns, clientMac_);  // borrow the layout, then make it an NS
  IpAddr group = ip("ff02::1:ff00:200");
  MacAddr gmac = solicitedNodeMac(lb);
  std::memcpy(na.data(), gmac.data(), 6);
  std::memcpy(na.data() + 22, ns.source.bytes.data(), 16);
  std::memcpy(na.data() + 38, group.bytes.data(), 16);
  na[54] = 135;
  na[58] = 0;
  na[78] = 1;  // source link-layer address option
  na[56] = na[57] = 0;
  uint16_t c = icmp6Checksum(ns.source, group, std::span<const uint8_t>(na.data() + 54, 32));
  na[56] = uint8_t(c >> 8);
  na[57] = uint8_t(c);
  ASSERT_TRUE(parseNeighborSolicitation(na)) << "test frame is a valid NS";
  clientSend(na);

  auto reply = runUntil([&](const Frame& f) { return isNa(f, lb) && (f[58] & 0x40); }, kAnswerWait);
  ASSERT_TRUE(reply) << "no solicited NA";
  EXPECT_EQ(toHexMac(*reply, 0), toHexMac(clientMac_));
  EXPECT_EQ(toHexMac(*reply, 80), toHexMac(ann_->mac())) << "target link-layer address option";
  IpAddr dst;
  std::memcpy(dst.bytes.data(), reply->data() + 38, 16);
  EXPECT_EQ(dst, ns.source);
  EXPECT_EQ(icmp6Checksum(lb, dst, std::span<const uint8_t>(reply->data() + 54, 32)), 0);
  EXPECT_EQ(ann_->stats().naReplies, 1u);
}

TEST_F(NetnsTest, ThreeGratuitousArpsOnTakeover) {
  IpAddr lb = ip("198.18.0.203");
  ann_->setOwned({lb});
  int seen = 0;
  auto start = steady_clock::now();
  runUntil([&](const Frame& f) { return isArp(f, 1, lb) && ++seen == 3; }, milliseconds(1500));
  EXPECT_EQ(seen, 3);
  EXPECT_GE(steady_clock::now() - start, milliseconds(450));
  EXPECT_EQ(ann_->timeoutMs(), -1) << "nothing more scheduled";
}

TEST_F(NetnsTest, OpenFailsForMissingDeviceAndRefreshNoticesDeletion) {
  auto missing = L2Announcer::open("nosuchdev0");
  EXPECT_FALSE(missing);
  ASSERT_EQ(
      std::system("ip link add anntmp0 type veth peer name anntmp1 && ip link set anntmp0 up"), 0);
  auto a = L2Announcer::open("anntmp0");
  ASSERT_TRUE(a) << a.status().message();
  EXPECT_TRUE((*a)->refresh());
  ASSERT_EQ(std::system("ip link del anntmp0"), 0);
  EXPECT_FALSE((*a)->refresh()) << "gone: the controller reopens";
}

}  // namespace
}  // namespace ferry
