// Randomized differential test of connection tracking: seeded sequences
// of connects (through two ClusterIPs, and directly to the backends),
// data, replies, FIN and RST closes and endpoint changes between a small
// set of tuples, run through BPF_PROG_TEST_RUN and checked against a
// small reference model of netfilter's behaviour (nf_conntrack + nf_nat
// as kube-proxy uses them):
//  - a connection to a ClusterIP goes to a current member of its service,
//    or is refused when it has none; it stays on its backend while the
//    backend is a member, else it is re-balanced (refused when none);
//  - every live connection has a reply tuple of its own (a clash remaps
//    the source port; a closed holder may be replaced);
//  - every reply of a live connection reaches the client exactly as its
//    socket expects it: from the address it connected to, to its own port.
// Any difference is a mistranslation and fails the test with the step.
#include <random>

#include "conntrack_util.h"

namespace ferry {
namespace {

constexpr const char* kVips[2] = {"198.19.0.10", "198.19.0.11"};
constexpr const char* kBackends[2] = {"198.18.129.3", "198.18.130.2"};
constexpr uint16_t kPorts[3] = {40000, 40001, 40002};
constexpr int kSteps = 100000;

struct Conn {
  int port;    // index into kPorts
  int target;  // 0, 1: ClusterIP; 2, 3: backend 0, 1 directly
  int backend = -1;
  uint16_t wirePort = 0;  // source port the backend sees
};

uint32_t ip4(const std::vector<uint8_t>& f, size_t off) {
  return (uint32_t(f[off]) << 24) | (f[off + 1] << 16) | (f[off + 2] << 8) | f[off + 3];
}
uint16_t port16(const std::vector<uint8_t>& f, size_t off) { return (f[off] << 8) | f[off + 1]; }
uint32_t ip4(const std::string& s) {
  in_addr a{};
  inet_pton(AF_INET, s.c_str(), &a);
  return ntohl(a.s_addr);
}

class DifferentialTest : public DatapathTest {
 protected:
  std::mt19937 rng{20261129};
  std::vector<Conn> live;
  std::set<int> members[2] = {{0}, {0, 1}};
  uint64_t now = 1000ull * 1000000000ull;
  int step = 0;

  int pick(int n) { return std::uniform_int_distribution<int>(0, n - 1)(rng); }

  void setMembers(int svc) {
    std::vector<uint32_t> ids;
    for (int b : members[svc]) ids.push_back(b + 1);
    addService(kVips[svc], 80, 6, ids, FERRY_SCOPE_CLUSTER, 0, 7 + svc);
  }

  Pkt clientPkt(const Conn& c, uint8_t flags) {
    Pkt p;
    p.saddr = kClient;
    p.sport = kPorts[c.port];
    p.daddr = c.target < 2 ? kVips[c.target] : kBackends[c.target - 2];
    p.dport = c.target < 2 ? 80 : 8080;
    p.tcpFlags = flags;
    p.seq = step;
    return p;
  }

  bool heldByLive(int backend, uint16_t wirePort, const Conn* except) {
    for (const Conn& o : live)
      if (&o != except && o.backend == backend && o.wirePort == wirePort) return true;
    return false;
  }

  std::string where() const { return "step " + std::to_string(step); }

  // The client's packet of connection c through from_pod; checks the
  // translation. Returns false when the connection was refused.
  bool forward(Conn& c, uint8_t flags, bool opening) {
    Result r = run(Program::FromPod, build(clientPkt(c, flags)));
    if (r.verdict == TC_ACT_REDIRECT) {
      EXPECT_TRUE(c.target < 2 && members[c.target].empty()) << where() << ": refused with endpoints";
      return false;
    }
    EXPECT_EQ(r.verdict, uint32_t(TC_ACT_OK)) << where();
    EXPECT_EQ(checkChecksums(r.out), "") << where();
    EXPECT_EQ(ip4(r.out, 26), ip4(kClient)) << where();
    uint32_t dst = ip4(r.out, 30);
    int be = dst == ip4(kBackends[0]) ? 0 : dst == ip4(kBackends[1]) ? 1 : -1;
    uint16_t wire = port16(r.out, 34);
    if (c.target >= 2) {
      EXPECT_EQ(be, c.target - 2) << where() << ": direct flow redirected";
    } else {
      EXPECT_TRUE(c.target < 2 && members[c.target].count(be))
          << where() << ": sent to backend " << be << ", not a member of service " << c.target;
      EXPECT_TRUE(c.target < 2 && !members[c.target].empty()) << where() << ": not refused";
    }
    EXPECT_EQ(port16(r.out, 36), 8080) << where();
    bool moved = !opening && (be != c.backend || wire != c.wirePort);
    if (moved) {
      // only a backend that left its service may move a flow
      EXPECT_TRUE(c.target < 2 && !members[c.target].count(c.backend))
          << where() << ": established flow moved from " << c.backend << "/" << c.wirePort
          << " to " << be << "/" << wire;
    }
    if (opening || moved) {
      EXPECT_FALSE(heldByLive(be, wire, &c))
          << where() << ": reply tuple " << be << "/" << wire << " already held by a live flow";
    }
    c.backend = be;
    c.wirePort = wire;
    return true;
  }

  // A reply of live connection c, as the backend sends it.
  void reply(const Conn& c, uint8_t flags) {
    Pkt p;
    p.saddr = kBackends[c.backend];
    p.sport = 8080;
    p.daddr = kClient;
    p.dport = c.wirePort;
    p.tcpFlags = flags;
    Result r = run(Program::ToPod, build(p));
    EXPECT_EQ(r.verdict, uint32_t(TC_ACT_OK)) << where();
    Pkt want = clientPkt(c, 0);
    EXPECT_EQ(ip4(r.out, 26), ip4(want.daddr)) << where() << ": reply from the wrong address";
    EXPECT_EQ(port16(r.out, 34), want.dport) << where();
    EXPECT_EQ(port16(r.out, 36), kPorts[c.port]) << where() << ": reply to the wrong port";
    EXPECT_EQ(checkChecksums(r.out), "") << where();
  }
};

TEST_F(DifferentialTest, ConntrackMatchesNetfilterModelOver100kSteps) {
  for (int b = 0; b < 2; ++b) addBackend(b + 1, kBackends[b], 8080);
  setMembers(0);
  setMembers(1);
  for (step = 0; step < kSteps && !HasFailure(); ++step) {
    now += 1000000;  // 1 ms a step: closed entries (10 s) expire along the way
    setNow(now);
    int what = pick(100);
    if (what < 25) {  // connect
      Conn c{pick(3), pick(4)};
      bool dup = false;
      for (const Conn& o : live) dup |= o.port == c.port && o.target == c.target;
      if (dup) continue;  // the client's socket would refuse it (EADDRINUSE)
      if (forward(c, 0x02, true)) {
        live.push_back(c);
        reply(c, 0x12);
      }
    } else if (what < 60 && !live.empty()) {  // data
      size_t i = pick(live.size());
      if (!forward(live[i], 0x18, false)) live.erase(live.begin() + i);
    } else if (what < 85 && !live.empty()) {  // reply
      reply(live[pick(live.size())], 0x18);
    } else if (what < 95 && !live.empty()) {  // close: FIN both ways, or RST
      size_t i = pick(live.size());
      Conn c = live[i];
      bool rst = pick(2);
      if (c.target < 2 && !members[c.target].count(c.backend)) {
        // The flow's backend left: its FIN or RST is not sent to the old
        // backend (kube-proxy's iptables would, through the stale entry),
        // nor to another one: it passes untranslated.
        auto in = build(clientPkt(c, rst ? 0x14 : 0x11));
        Result r = run(Program::FromPod, in);
        EXPECT_EQ(hex(in), hex(r.out)) << where();
        live.erase(live.begin() + i);
        continue;
      }
      if (forward(live[i], rst ? 0x14 : 0x11, false)) {
        c = live[i];
        if (!rst) reply(c, 0x11);
      }
      live.erase(live.begin() + i);
    } else {  // endpoint change
      int svc = pick(2);
      members[svc].clear();
      int mask = pick(4);
      for (int b = 0; b < 2; ++b)
        if (mask & (1 << b)) members[svc].insert(b);
      setMembers(svc);
    }
  }
  EXPECT_EQ(step, kSteps);
  RecordProperty("steps", step);
}

}  // namespace
}  // namespace ferry
