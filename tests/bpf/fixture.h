// Shared fixture of the BPF packet tests: a freshly loaded, unpinned
// dataplane per test, map helpers, and BPF_PROG_TEST_RUN.
#pragma once

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <linux/bpf.h>
#include <linux/pkt_cls.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <memory>
#include <ostream>
#include <string>
#include <vector>

#include "dataplane/bpf.h"
#include "model/ip.h"
#include "packet.h"

namespace ferry {

using test::build;
using test::checkChecksums;
using test::hex;
using test::Pkt;

constexpr const char* kVip = "198.19.0.10";
constexpr const char* kClient = "198.18.129.2";
constexpr const char* kBackendA = "198.18.129.3";
constexpr const char* kBackendB = "198.18.130.2";
constexpr const char* kNode = "198.18.0.11";
// IPv6 addresses of the same roles (TESTNET plan).
constexpr const char* kVip6 = "2001:db8:ffff::a";
constexpr const char* kClient6 = "2001:db8:1:1::2";
constexpr const char* kBackendA6 = "2001:db8:1:1::3";
constexpr const char* kBackendB6 = "2001:db8:1:2::2";
constexpr const char* kNode6 = "2001:db8::11";

// The addresses of one IP family, for cases parametrized by family.
struct Family {
  const char* name;  // test name suffix
  const char* vip;
  const char* client;
  const char* backendA;
  const char* backendB;
  const char* node;
};
// gtest prints a case's parameter (and CTest names carry it): the name.
inline void PrintTo(const Family& f, std::ostream* os) { *os << f.name; }
inline const Family kFamily4{"IPv4", kVip, kClient, kBackendA, kBackendB, kNode};
inline const Family kFamily6{"IPv6", kVip6, kClient6, kBackendA6, kBackendB6, kNode6};

inline ferry_addr abiAddr(const std::string& s) {
  ferry_addr a{};
  auto ip = IpAddr::parse(s);
  std::memcpy(a.b, ip->bytes.data(), 16);
  return a;
}

class DatapathTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto dp = Datapath::load(DatapathOptions{});
    ASSERT_TRUE(dp) << dp.status().message();
    dp_ = std::move(*dp);
    ferry_config cfg{};
    cfg.snat4 = abiAddr(kNode);
    cfg.snat6 = abiAddr(kNode6);
    ASSERT_TRUE(dp_->config().update(0, cfg));
  }

  void setNow(uint64_t ns) {
    ferry_config cfg{};
    dp_->config().lookup(0, &cfg);
    cfg.now_override_ns = ns;
    ASSERT_TRUE(dp_->config().update(0, cfg));
  }

  void addBackend(uint32_t id, const std::string& ip, uint16_t port, uint8_t proto = 6,
                  uint8_t flags = 0) {
    ferry_backend be{};
    be.flags = flags;
    be.addr = abiAddr(ip);
    be.port = htons(port);
    be.proto = proto;
    ASSERT_TRUE(dp_->backends().update(id, be));
  }

  // vip "" is the IPv4 NodePort frontend (address 0.0.0.0).
  ferry_svc_key svcKey(const std::string& vip, uint16_t port, uint8_t proto, uint16_t slot,
                       uint8_t scope = FERRY_SCOPE_CLUSTER) {
    ferry_svc_key k{};
    k.addr = abiAddr(vip.empty() ? "0.0.0.0" : vip);
    k.port = htons(port);
    k.proto = proto;
    k.scope = scope;
    k.slot = slot;
    return k;
  }

  // A service whose slots name `ids` (backends added separately), with
  // its memberships (as the planner writes them: added before the slots,
  // stale ones removed after).
  void addService(const std::string& vip, uint16_t port, uint8_t proto,
                  const std::vector<uint32_t>& ids, uint8_t scope = FERRY_SCOPE_CLUSTER,
                  uint16_t flags = 0, uint32_t svcId = 7) {
    for (uint32_t id : ids) ASSERT_TRUE(dp_->members().update(ferry_member_key{svcId, id}, 1));
    for (size_t i = 0; i < ids.size(); ++i) {
      ferry_svc_value v{};
      v.backend_id = ids[i];
      v.svc_id = svcId;
      ASSERT_TRUE(dp_->services().update(svcKey(vip, port, proto, i + 1, scope), v));
    }
    ferry_svc_value master{};
    master.count = ids.size();
    master.svc_id = svcId;
    master.flags = flags;
    ASSERT_TRUE(dp_->services().update(svcKey(vip, port, proto, 0, scope), master));
    std::string fe = vip + "/" + std::to_string(port) + "/" + std::to_string(proto) + "/" +
                     std::to_string(scope);
    for (uint32_t old : members_[fe])
      if (std::find(ids.begin(), ids.end(), old) == ids.end())
        ASSERT_TRUE(dp_->members().erase(ferry_member_key{svcId, old}));
    members_[fe] = ids;
  }
  std::map<std::string, std::vector<uint32_t>> members_;

  struct Result {
    uint32_t verdict;
    std::vector<uint8_t> out;
  };

  Result run(Program prog, const std::vector<uint8_t>& in, uint32_t ifindex = 0) {
    Result r{};
    Status s = dp_->testRun(prog, in, &r.out, &r.verdict, 1, nullptr, ifindex);
    EXPECT_TRUE(s) << s.message();
    return r;
  }

  // A counter summed over every hook, or of one hook.
  uint64_t stat(ferry_stat s) {
    uint64_t sum = 0;
    auto all = dp_->stats();
    for (int h = 0; h < FERRY_HOOK_MAX; ++h) sum += all[h * FERRY_STAT_MAX + s];
    return sum;
  }
  uint64_t stat(ferry_hook h, ferry_stat s) { return dp_->stats()[h * FERRY_STAT_MAX + s]; }

  bool ctLookup(const Pkt& p, uint8_t dir, ferry_ct_value* v) {
    ferry_ct_key k{};
    k.saddr = abiAddr(p.saddr);
    k.daddr = abiAddr(p.daddr);
    k.sport = htons(p.sport);
    k.dport = htons(p.dport);
    k.proto = p.proto;
    k.dir = dir;
    return dp_->conntrack().lookup(k, v);
  }

  std::unique_ptr<Datapath> dp_;
};

// A DatapathTest case run once per IP family (GetParam()).
class DatapathFamilyTest : public DatapathTest, public ::testing::WithParamInterface<Family> {
 protected:
  const Family& fam() const { return GetParam(); }
  // The client's packet to the service address, port 40000 -> 80.
  Pkt toVip() const {
    Pkt p;
    p.saddr = fam().client;
    p.daddr = fam().vip;
    return p;
  }
  // A backend's packet to the client, port `sport` -> 40000.
  Pkt fromBackend(const char* backend, uint16_t sport) const {
    Pkt p;
    p.saddr = backend;
    p.sport = sport;
    p.daddr = fam().client;
    p.dport = 40000;
    return p;
  }
};

#define EXPECT_BYTES(expected, actual) \
  EXPECT_EQ(hex(expected), hex(actual)) << "checksums: " << checkChecksums(actual)

}  // namespace ferry
