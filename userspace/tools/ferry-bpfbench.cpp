// ferry-bpfbench: per-packet cost of ferry's BPF programs through
// BPF_PROG_TEST_RUN, next to an empty XDP and an empty tc program, with the
// service map filled to a given number of services.
//
//   ferry-bpfbench [--services N] [--endpoints E] [--packets M] [--scale-label L]
//
// Fills an unpinned dataplane with N services of E endpoints each (the
// measured ClusterIP and NodePort services are written last), then runs
// each case M times with repeat=1 (a tc program's rewrite would change the
// packet seen by the next repetition, so every call starts from the
// crafted packet) and prints one TSV row per case:
//   case  services  median_ns  mean_ns  p99_ns  ok
// `ok` is 1 when the case's counter moved by M (the packet took the path
// the case names). The NodePort cases need routes and neighbours for the
// FIB lookup: the process moves into a private network namespace of its
// own (unshare), as tests/bpf/nodeport_test.cpp does.
#include <arpa/inet.h>
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <net/if.h>
#include <sched.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "dataplane/bpf.h"
#include "model/ip.h"
#include "packet.h"

namespace ferry {
namespace {

using test::build;
using test::Pkt;

constexpr const char* kClusterIp = "198.19.255.250";  // outside the filler range
constexpr uint16_t kSvcPort = 80;
constexpr uint16_t kNodePort = 30080;
constexpr const char* kClient = "198.18.129.2";
constexpr const char* kExtClient = "198.18.0.100";
constexpr const char* kNode = "198.18.0.11";
constexpr std::array<uint8_t, 6> kNodeMac{0x02, 0, 0, 0, 0, 0x11};
constexpr std::array<uint8_t, 6> kClientMac{0x02, 0, 0, 0, 0x01, 0x00};
constexpr uint32_t kV4Services = 60000;  // 198.19.0.0/16 minus reserved; the rest are IPv6

struct Opts {
  uint32_t services = 1;
  uint32_t endpoints = 10;
  uint32_t packets = 5000;
};

[[noreturn]] void die(const std::string& m) {
  std::fprintf(stderr, "ferry-bpfbench: %s\n", m.c_str());
  std::exit(1);
}

void check(const Status& s, const std::string& what) {
  if (!s) die(what + ": " + s.message());
}

ferry_addr abiAddr(const std::string& s) {
  auto ip = IpAddr::parse(s);
  if (!ip) die("bad address " + s);
  ferry_addr a{};
  std::memcpy(a.b, ip->bytes.data(), 16);
  return a;
}

std::string v4(uint32_t host) {
  in_addr a{htonl(host)};
  char buf[INET_ADDRSTRLEN];
  inet_ntop(AF_INET, &a, buf, sizeof buf);
  return buf;
}

ferry_addr fillerVip(uint32_t i) {
  if (i < kV4Services) return abiAddr(v4((198u << 24) | (19u << 16) | (256u + i)));
  char buf[64];
  std::snprintf(buf, sizeof buf, "2001:db8:ffff::%x", 256 + (i - kV4Services));
  return abiAddr(buf);
}

// Filler endpoints: unique address:port pairs in pod CIDRs of nodes that do
// not exist (198.18.131.0 and up; 2001:db8:1:3::/64).
ferry_backend fillerBackend(uint32_t k, bool v6) {
  ferry_backend b{};
  if (v6) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "2001:db8:1:3::%x:%x", k >> 16, k & 0xffff);
    b.addr = abiAddr(buf);
    b.port = htons(8080);
  } else {
    b.addr = abiAddr(v4((198u << 24) | (18u << 16) | (131u << 8) | (k % 32000)));
    b.port = htons(static_cast<uint16_t>(8000 + k / 32000));
  }
  b.proto = IPPROTO_TCP;
  return b;
}

ferry_svc_key svcKey(const ferry_addr& a, uint16_t port, uint16_t slot, uint8_t scope) {
  ferry_svc_key k{};
  k.addr = a;
  k.port = htons(port);
  k.proto = IPPROTO_TCP;
  k.scope = scope;
  k.slot = slot;
  return k;
}

class Bench {
 public:
  explicit Bench(const Opts& o) : o_(o) {}

  void setUpNetns() {
    if (unshare(CLONE_NEWNET) != 0) die(std::string("unshare(CLONE_NEWNET): ") + strerror(errno));
    const char* cmds[] = {
        "ip link set lo up",
        "ip link add t0 address 02:00:00:00:00:11 type veth peer name t1",
        "ip addr add 198.18.0.11/24 dev t0",
        "ip link set t0 up",
        "ip link set t1 up",
        "ip neigh replace 198.18.0.12 lladdr 02:00:00:00:00:12 dev t0 nud permanent",
        "ip neigh replace 198.18.0.100 lladdr 02:00:00:00:01:00 dev t0 nud permanent",
        "ip route add 198.18.130.0/24 via 198.18.0.12",
        "sysctl -qw net.ipv4.ip_forward=1",
    };
    for (const char* c : cmds)
      if (std::system(c) != 0) die(std::string("setup failed: ") + c);
    ifindex_ = if_nametoindex("t0");
    if (!ifindex_) die("no t0");
  }

  void load() {
    DatapathOptions d;
    d.svcMapSize = o_.services * (o_.endpoints + 1) + 1024;
    d.backendMapSize = o_.services * o_.endpoints + 1024;
    d.ctMapSize = 4 * o_.packets + 4096;
    d.snatPortMin = 1024;  // room for every new NodePort flow of a case
    d.snatPortMax = 65535;
    auto dp = Datapath::load(d);
    if (!dp) die("load: " + dp.status().message());
    dp_ = std::move(*dp);
    ferry_config cfg{};
    cfg.snat4 = abiAddr(kNode);
    check(dp_->config().update(0, cfg), "config");
    check(dp_->nodeAddrs().update(abiAddr(kNode), ferry_node_addr{}), "node address");
  }

  // N-1 filler services, then the measured ClusterIP (same-node endpoints)
  // and NodePort (other-node endpoints) frontends of the last service.
  void fill() {
    uint32_t nextId = 1;
    for (uint32_t i = 0; i + 1 < o_.services; ++i) {
      bool v6 = i >= kV4Services;
      ferry_addr vip = fillerVip(i);
      for (uint32_t e = 0; e < o_.endpoints; ++e) {
        uint32_t id = nextId++;
        check(dp_->backends().update(id, fillerBackend(id, v6)), "backend");
        check(dp_->members().update(ferry_member_key{i + 1, id}, 1), "membership");
        ferry_svc_value v{};
        v.backend_id = id;
        check(dp_->services().update(svcKey(vip, kSvcPort, e + 1, FERRY_SCOPE_CLUSTER), v), "slot");
      }
      ferry_svc_value m{};
      m.count = o_.endpoints;
      m.svc_id = i + 1;
      check(dp_->services().update(svcKey(vip, kSvcPort, 0, FERRY_SCOPE_CLUSTER), m), "master");
    }
    auto measured = [&](const ferry_addr& vip, uint16_t port, uint8_t scope, int podNet,
                        uint8_t flags) {
      for (uint32_t e = 0; e < o_.endpoints; ++e) {
        uint32_t id = nextId++;
        ferry_backend b{};
        b.addr = abiAddr(v4((198u << 24) | (18u << 16) | (uint32_t(podNet) << 8) | (10 + e)));
        b.port = htons(8080);
        b.proto = IPPROTO_TCP;
        b.flags = flags;
        check(dp_->backends().update(id, b), "backend");
        check(dp_->members().update(ferry_member_key{o_.services, id}, 1), "membership");
        ferry_svc_value v{};
        v.backend_id = id;
        check(dp_->services().update(svcKey(vip, port, e + 1, scope), v), "slot");
      }
      ferry_svc_value m{};
      m.count = o_.endpoints;
      m.svc_id = o_.services;
      check(dp_->services().update(svcKey(vip, port, 0, scope), m), "master");
    };
    measured(abiAddr(kClusterIp), kSvcPort, FERRY_SCOPE_CLUSTER, 129, FERRY_BE_F_LOCAL);
    measured(abiAddr("0.0.0.0"), kNodePort, FERRY_SCOPE_EXTERNAL, 130, 0);
  }

  void run() {
    runEmpty("empty_xdp", true);
    runEmpty("empty_tc", false);

    // ClusterIP from a pod (tc ingress of its veth).
    clearCt();
    runCase("clusterip_new", Program::FromPod, FERRY_HOOK_FROM_POD, FERRY_STAT_FWD_NEW,
            [&](uint32_t i) { return podSyn(uint16_t(1024 + i)); });
    clearCt();
    Pkt syn = podSynPkt(40000);
    runOnce(Program::FromPod, build(syn));
    Pkt ack = syn;
    ack.tcpFlags = 0x10;
    std::vector<uint8_t> ackFrame = build(ack);
    runCase("clusterip_established", Program::FromPod, FERRY_HOOK_FROM_POD,
            FERRY_STAT_FWD_ESTABLISHED, [&](uint32_t) { return ackFrame; });
    ferry_ct_value fwd{};
    if (!ctLookup(syn, &fwd)) die("no conntrack entry after the ClusterIP SYN");
    Pkt reply;
    IpAddr backend;
    std::memcpy(backend.bytes.data(), fwd.nat_addr.b, 16);
    reply.saddr = backend.str();
    reply.sport = ntohs(fwd.nat_port);
    reply.daddr = kClient;
    reply.dport = 40000;
    reply.tcpFlags = 0x10;
    std::vector<uint8_t> replyFrame = build(reply);
    runCase("clusterip_reply", Program::ToPod, FERRY_HOOK_TO_POD, FERRY_STAT_REVNAT,
            [&](uint32_t) { return replyFrame; });

    // NodePort from outside, endpoints on another node (SNAT + XDP_TX / redirect).
    for (bool xdp : {true, false}) {
      Program p = xdp ? Program::ExtXdp : Program::ExtIn;
      ferry_hook h = xdp ? FERRY_HOOK_EXT_XDP : FERRY_HOOK_EXT_TC_IN;
      std::string name = xdp ? "nodeport_xdp" : "nodeport_tc";
      clearCt();
      runCase(name + "_new", p, h, FERRY_STAT_FWD_NEW,
              [&](uint32_t i) { return build(extSyn(uint16_t(1024 + i))); });
      clearCt();
      Pkt s = extSyn(40000);
      runOnce(p, build(s));
      s.tcpFlags = 0x10;
      std::vector<uint8_t> f = build(s);
      runCase(name + "_established", p, h, FERRY_STAT_FWD_ESTABLISHED,
              [&](uint32_t) { return f; });
    }
  }

 private:
  Pkt podSynPkt(uint16_t sport) const {
    Pkt p;
    p.saddr = kClient;
    p.daddr = kClusterIp;
    p.sport = sport;
    p.dport = kSvcPort;
    return p;
  }
  std::vector<uint8_t> podSyn(uint16_t sport) const { return build(podSynPkt(sport)); }
  Pkt extSyn(uint16_t sport) const {
    Pkt p;
    p.saddr = kExtClient;
    p.daddr = kNode;
    p.sport = sport;
    p.dport = kNodePort;
    p.srcMac = kClientMac;
    p.dstMac = kNodeMac;
    return p;
  }

  bool ctLookup(const Pkt& p, ferry_ct_value* v) const {
    ferry_ct_key k{};
    k.saddr = abiAddr(p.saddr);
    k.daddr = abiAddr(p.daddr);
    k.sport = htons(p.sport);
    k.dport = htons(p.dport);
    k.proto = p.proto;
    k.dir = FERRY_CT_FWD;
    return dp_->conntrack().lookup(k, v);
  }

  void clearCt() {
    std::vector<ferry_ct_key> keys;
    dp_->conntrack().forEach([&](const ferry_ct_key& k, const ferry_ct_value&) { keys.push_back(k); });
    for (const auto& k : keys) (void)dp_->conntrack().erase(k);
  }

  uint32_t runOnce(Program p, const std::vector<uint8_t>& in) {
    std::vector<uint8_t> out;
    uint32_t verdict = 0, ns = 0;
    check(dp_->testRun(p, in, &out, &verdict, 1, &ns, ifindex_), "test run");
    return ns;
  }

  uint64_t counter(ferry_hook h, ferry_stat s) const { return dp_->stats()[int(h) * int(FERRY_STAT_MAX) + int(s)]; }

  template <typename Gen>
  void runCase(const std::string& name, Program p, ferry_hook h, ferry_stat s, Gen gen) {
    uint64_t before = counter(h, s);
    std::vector<uint32_t> ns;
    ns.reserve(o_.packets);
    for (uint32_t i = 0; i < o_.packets; ++i) {
      std::vector<uint8_t> in = gen(i);
      ns.push_back(runOnce(p, in));
    }
    bool ok = counter(h, s) - before == o_.packets;
    report(name, ns, ok);
  }

  void runEmpty(const std::string& name, bool xdp) {
    std::vector<uint8_t> in = podSyn(uint16_t(40000));
    std::vector<uint32_t> ns;
    for (uint32_t i = 0; i < o_.packets; ++i) {
      uint32_t d = 0;
      check(Datapath::testRunBaseline(xdp, in, 1, &d), "empty program");
      ns.push_back(d);
    }
    report(name, ns, true);
  }

  void report(const std::string& name, std::vector<uint32_t> ns, bool ok) const {
    std::sort(ns.begin(), ns.end());
    double sum = 0;
    for (uint32_t v : ns) sum += v;
    auto pct = [&](double q) { return ns[std::min<size_t>(ns.size() - 1, size_t(q * ns.size()))]; };
    std::printf("%s\t%u\t%u\t%.1f\t%u\t%d\n", name.c_str(), o_.services, pct(0.5),
                sum / double(ns.size()), pct(0.99), ok ? 1 : 0);
    std::fflush(stdout);
  }

  Opts o_;
  std::unique_ptr<Datapath> dp_;
  uint32_t ifindex_ = 0;
};

uint32_t parseU32(const char* s, const char* what) {
  char* end = nullptr;
  unsigned long v = std::strtoul(s, &end, 10);
  if (!*s || *end || v == 0 || v > 10000000) die(std::string("bad ") + what + " '" + s + "'");
  return static_cast<uint32_t>(v);
}

}  // namespace
}  // namespace ferry

int main(int argc, char** argv) {
  using namespace ferry;
  Opts o;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto val = [&]() -> const char* {
      if (i + 1 >= argc) die("missing value for " + a);
      return argv[++i];
    };
    if (a == "--services") o.services = parseU32(val(), "--services");
    else if (a == "--endpoints") o.endpoints = parseU32(val(), "--endpoints");
    else if (a == "--packets") o.packets = parseU32(val(), "--packets");
    else if (a == "-h" || a == "--help") {
      std::printf("usage: ferry-bpfbench [--services N] [--endpoints E] [--packets M]\n"
                  "prints: case services median_ns mean_ns p99_ns ok\n");
      return 0;
    } else die("unknown argument " + a);
  }
  if (o.packets > 60000) die("--packets at most 60000 (one source port per new flow)");
  Bench b(o);
  b.setUpNetns();
  b.load();
  b.fill();
  b.run();
  return 0;
}
