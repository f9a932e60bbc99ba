// Golden-packet tests of backend selection (bpf/lib/lb.h): session
// affinity (ClientIP, with its timeout on an overridden clock) on the pod
// path, and Maglev on the external path, each with the exact bytes the
// chosen backend gets. The binary's private netns comes from
// nodeport_test.cpp's environment.
#include <net/if.h>

#include <ferry/jhash.h>

#include "dataplane/maglev.h"
#include "fixture.h"

namespace ferry {
namespace {

constexpr uint64_t kSec = 1000000000ull;
constexpr uint32_t kSvcId = 7;

class SelectionTest : public DatapathTest {
 protected:
  // A master with sessionAffinity's timeout (addService writes none).
  void setAffinity(const std::string& vip, uint16_t port, uint32_t timeoutS,
                   uint8_t scope = FERRY_SCOPE_CLUSTER) {
    ferry_svc_value m{};
    ASSERT_TRUE(dp_->services().lookup(svcKey(vip, port, 6, 0, scope), &m));
    m.affinity_timeout_s = timeoutS;
    ASSERT_TRUE(dp_->services().update(svcKey(vip, port, 6, 0, scope), m));
  }
  ferry_affinity_key affKey(const std::string& client) {
    ferry_affinity_key k{};
    k.svc_id = kSvcId;
    k.client = abiAddr(client);
    return k;
  }
  void setAffinityEntry(const std::string& client, uint32_t backend, uint64_t lastNs) {
    ferry_affinity_value v{};
    v.backend_id = backend;
    v.last_used_ns = lastNs;
    ASSERT_TRUE(dp_->affinity().update(affKey(client), v));
  }
  ferry_affinity_value affinityEntry(const std::string& client) {
    ferry_affinity_value v{};
    EXPECT_TRUE(dp_->affinity().lookup(affKey(client), &v)) << "no affinity entry";
    return v;
  }

  // A new TCP flow from the client pod on `sport`: the bytes must be the
  // same packet sent to `backend`:8080.
  void expectFlowTo(uint16_t sport, const char* backend) {
    Pkt in;
    in.sport = sport;
    Pkt want = in;
    want.daddr = backend;
    want.dport = 8080;
    Result r = run(Program::FromPod, build(in));
    EXPECT_EQ(r.verdict, uint32_t(TC_ACT_OK));
    EXPECT_BYTES(build(want), r.out);
  }

  // ClusterIP with backends 1 (A) and 2 (B).
  void twoBackends() {
    addBackend(1, kBackendA, 8080);
    addBackend(2, kBackendB, 8080);
  }
};

// Every new flow of a client goes where its young entry points, and the
// entry's time is refreshed by each use (kube-proxy's `recent --set`).
TEST_F(SelectionTest, AffinityKeepsEveryNewFlowOfAClientOnItsBackend) {
  twoBackends();
  addService(kVip, 80, 6, {1, 2});
  setAffinity(kVip, 80, 10800);
  setNow(1000 * kSec);
  setAffinityEntry(kClient, 2, 999 * kSec);
  for (uint16_t sport = 40000; sport < 40016; ++sport) expectFlowTo(sport, kBackendB);
  EXPECT_EQ(affinityEntry(kClient).last_used_ns, 1000 * kSec);
  EXPECT_EQ(affinityEntry(kClient).backend_id, 2u);
}

// Without an entry the pick is recorded; later flows follow it.
TEST_F(SelectionTest, AffinityRecordsTheFirstPick) {
  twoBackends();
  addService(kVip, 80, 6, {1, 2});
  setAffinity(kVip, 80, 60);
  setNow(5 * kSec);
  Pkt in;
  run(Program::FromPod, build(in));
  ferry_affinity_value v = affinityEntry(kClient);
  EXPECT_EQ(v.last_used_ns, 5 * kSec);
  ASSERT_TRUE(v.backend_id == 1 || v.backend_id == 2) << v.backend_id;
  const char* chosen = v.backend_id == 1 ? kBackendA : kBackendB;
  for (uint16_t sport = 40001; sport < 40016; ++sport) expectFlowTo(sport, chosen);
}

// The timeout counts from the last use: an entry used at T, T+59 and
// T+118 (each younger than 60 s) holds; one idle for 60 s is ignored. The
// slots hold only A while B stays a member, so only the clock decides.
TEST_F(SelectionTest, AffinityExpiresAfterTimeoutSinceLastUse) {
  twoBackends();
  addService(kVip, 80, 6, {1});
  ASSERT_TRUE(dp_->members().update(ferry_member_key{kSvcId, 2}, 1));
  setAffinity(kVip, 80, 60);
  setAffinityEntry(kClient, 2, 100 * kSec);
  setNow(159 * kSec);
  expectFlowTo(41000, kBackendB);
  setNow(218 * kSec);
  expectFlowTo(41001, kBackendB);
  setNow(278 * kSec);  // 60 s idle: expired
  expectFlowTo(41002, kBackendA);
  EXPECT_EQ(affinityEntry(kClient).backend_id, 1u) << "the new pick replaces it";
  EXPECT_EQ(affinityEntry(kClient).last_used_ns, 278 * kSec);
}

// An entry naming a backend that left the service is ignored.
TEST_F(SelectionTest, AffinityEntryOfRemovedBackendIsIgnored) {
  twoBackends();
  addService(kVip, 80, 6, {1});
  setAffinity(kVip, 80, 10800);
  setNow(10 * kSec);
  setAffinityEntry(kClient, 2, 9 * kSec);
  expectFlowTo(42000, kBackendA);
  EXPECT_EQ(affinityEntry(kClient).backend_id, 1u);
}

// An entry naming a backend that is a member only for its established
// flows (FERRY_MEMBER_KEEP, e.g. terminating) is ignored for new flows.
TEST_F(SelectionTest, AffinityEntryOfAKeptOnlyBackendIsIgnored) {
  twoBackends();
  addService(kVip, 80, 6, {1});
  ASSERT_TRUE(dp_->members().update(ferry_member_key{kSvcId, 2}, FERRY_MEMBER_KEEP));
  setAffinity(kVip, 80, 10800);
  setNow(10 * kSec);
  setAffinityEntry(kClient, 2, 9 * kSec);
  expectFlowTo(42100, kBackendA);
  EXPECT_EQ(affinityEntry(kClient).backend_id, 1u);
}

// Affinity switched off (timeout 0 in the master): entries are not read
// or written, even a young one for a member.
TEST_F(SelectionTest, AffinityOffIgnoresEntries) {
  twoBackends();
  addService(kVip, 80, 6, {1});
  ASSERT_TRUE(dp_->members().update(ferry_member_key{kSvcId, 2}, 1));
  setNow(10 * kSec);
  setAffinityEntry(kClient, 2, 9 * kSec);
  expectFlowTo(43000, kBackendA);
  EXPECT_EQ(affinityEntry(kClient).last_used_ns, 9 * kSec) << "not refreshed";
  // and on again: the same entry is honoured
  setAffinity(kVip, 80, 10800);
  expectFlowTo(43001, kBackendB);
}

// Affinity is per frontend and per client: another client is balanced
// on its own.
TEST_F(SelectionTest, AffinityIsPerClient) {
  twoBackends();
  addService(kVip, 80, 6, {1});
  ASSERT_TRUE(dp_->members().update(ferry_member_key{kSvcId, 2}, 1));
  setAffinity(kVip, 80, 10800);
  setNow(10 * kSec);
  setAffinityEntry("198.18.129.9", 2, 9 * kSec);  // someone else's
  expectFlowTo(44000, kBackendA);
}

// ---- Maglev on the external path -------------------------------------------

constexpr const char* kExtClient = "198.18.0.100";
constexpr uint16_t kNodePort = 30080;
const char* const kPods[] = {"198.18.129.2", "198.18.129.3", "198.18.129.4", "198.18.129.5"};

class MaglevTest : public SelectionTest {
 protected:
  void SetUp() override {
    SelectionTest::SetUp();
    ferry_node_addr na{};
    ASSERT_TRUE(dp_->nodeAddrs().update(abiAddr(kNode), na));
    ifindex_ = if_nametoindex("t0");
    std::vector<uint32_t> ids;
    for (uint32_t i = 0; i < 4; ++i) {
      addBackend(i + 1, kPods[i], 8080, 6, FERRY_BE_F_LOCAL);
      keyed_.emplace_back(BackendKey{*IpAddr::parse(kPods[i]), 8080, 6}, i + 1);
      ids.push_back(i + 1);
    }
    addService("", kNodePort, 6, ids, FERRY_SCOPE_EXTERNAL, FERRY_SVC_F_MAGLEV);
    table_ = maglevTable(keyed_, dp_->maglevTableSize());
    ASSERT_TRUE(dp_->maglevUpdate(kSvcId, table_));
  }

  // The backend the table gives a client port (0: source port left out).
  uint32_t expected(uint16_t hashedSport) const {
    uint32_t h = ferry_flow_hash4(abiAddr(kExtClient).w[3], 0, htons(hashedSport),
                                  htons(kNodePort), 6);
    return table_[h % table_.size()];
  }

  Result send(uint16_t sport, Program prog) {
    Pkt p;
    p.saddr = kExtClient;
    p.daddr = kNode;
    p.sport = sport;
    p.dport = kNodePort;
    return run(prog, build(p), ifindex_);
  }

  void expectMaglev(uint16_t sport, uint16_t hashedSport, Program prog) {
    uint32_t id = expected(hashedSport);
    Pkt want;
    want.saddr = kExtClient;
    want.sport = sport;
    want.daddr = kPods[id - 1];
    want.dport = 8080;
    Result r = send(sport, prog);
    EXPECT_EQ(r.verdict, prog == Program::ExtXdp ? uint32_t(XDP_PASS) : uint32_t(TC_ACT_OK));
    EXPECT_BYTES(build(want), r.out);
  }

  uint32_t ifindex_ = 0;
  std::vector<std::pair<BackendKey, uint32_t>> keyed_;
  std::vector<uint32_t> table_;
};

// Each new flow lands where the table puts its hash, on XDP and on tc,
// and the flows spread over the backends.
TEST_F(MaglevTest, NewFlowsFollowTheTable) {
  std::set<uint32_t> used;
  for (uint16_t sport = 40000; sport < 40032; ++sport) {
    expectMaglev(sport, sport, sport % 2 ? Program::ExtXdp : Program::ExtIn);
    used.insert(expected(sport));
  }
  EXPECT_GE(used.size(), 3u) << "32 flows over 4 backends";
  EXPECT_EQ(stat(FERRY_STAT_FWD_NEW), 32u);
}

// With session affinity, the source port is not hashed: every flow of the
// client gets the same backend even before an affinity entry exists.
TEST_F(MaglevTest, WithAffinityTheSourcePortIsLeftOut) {
  setAffinity("", kNodePort, 10800, FERRY_SCOPE_EXTERNAL);
  for (uint16_t sport = 40000; sport < 40008; ++sport) {
    ASSERT_TRUE(dp_->affinity().erase(affKey(kExtClient)));
    expectMaglev(sport, 0, Program::ExtXdp);
  }
}

// A table position naming a backend that is no longer a member (agent
// mid-update) is not used: the flow is balanced over the slots.
TEST_F(MaglevTest, TablePositionOfARemovedBackendFallsBackToSlots) {
  uint32_t gone = expected(40000);
  uint32_t other = gone % 4 + 1;
  addService("", kNodePort, 6, {other}, FERRY_SCOPE_EXTERNAL, FERRY_SVC_F_MAGLEV);
  Pkt want;
  want.saddr = kExtClient;
  want.daddr = kPods[other - 1];
  want.dport = 8080;
  Result r = send(40000, Program::ExtIn);
  EXPECT_BYTES(build(want), r.out);
}

// The flag without a table (or the table without the flag) is random
// selection over the slots: no table is needed to serve.
TEST_F(MaglevTest, NoTableMeansSlots) {
  ASSERT_TRUE(dp_->maglevErase(kSvcId));
  addService("", kNodePort, 6, {3}, FERRY_SCOPE_EXTERNAL, FERRY_SVC_F_MAGLEV);
  Pkt want;
  want.saddr = kExtClient;
  want.daddr = kPods[2];
  want.dport = 8080;
  EXPECT_BYTES(build(want), send(40000, Program::ExtIn).out);
}

// ---- Maglev for IPv6: the whole 128-bit addresses are hashed ---------------

constexpr const char* kExtIp6 = "2001:db8::200";
const char* const kPods6[] = {"2001:db8:1:1::3", "2001:db8:1:1::4", "2001:db8:1:2::2",
                              "2001:db8:1:2::3"};

// The hash written out word by word is jhash2 over the nine words, and an
// IPv4 flow still hashes as before (its backends do not move).
TEST(MaglevHash, Ipv6IsJhash2OverBothAddressesAndPortsAndIpv4IsUnchanged) {
  ferry_addr s = abiAddr("2001:db8:1:1::2"), f = abiAddr(kExtIp6);
  uint32_t words[9];
  std::memcpy(words, s.w, 16);
  std::memcpy(words + 4, f.w, 16);
  words[8] = (uint32_t(htons(40000)) << 16) | htons(80);
  EXPECT_EQ(ferry_flow_hash6(s.w, f.w, htons(40000), htons(80), 6),
            ferry_jhash2(words, 9, FERRY_MAGLEV_SEED ^ 6));
  // the IPv4 value as released (198.18.0.100:40000 -> 0.0.0.0:30080/TCP)
  EXPECT_EQ(ferry_flow_hash4(abiAddr("198.18.0.100").w[3], 0, htons(40000), htons(30080), 6),
            2442865651u);
}

class Maglev6Test : public SelectionTest {
 protected:
  void SetUp() override {
    SelectionTest::SetUp();
    std::vector<uint32_t> ids;
    for (uint32_t i = 0; i < 4; ++i) {
      addBackend(i + 1, kPods6[i], 8080);
      keyed_.emplace_back(BackendKey{*IpAddr::parse(kPods6[i]), 8080, 6}, i + 1);
      ids.push_back(i + 1);
    }
    // an IPv6 externalIP, reached by pods through the tc program
    addService(kExtIp6, 80, 6, ids, FERRY_SCOPE_EXTERNAL, FERRY_SVC_F_MAGLEV);
    table_ = maglevTable(keyed_, dp_->maglevTableSize());
    ASSERT_TRUE(dp_->maglevUpdate(kSvcId, table_));
  }
  uint32_t expected(const std::string& client, uint16_t hashedSport) const {
    ferry_addr c = abiAddr(client), f = abiAddr(kExtIp6);
    return table_[ferry_flow_hash6(c.w, f.w, htons(hashedSport), htons(80), 6) % table_.size()];
  }
  // Sends the client's SYN; returns the backend id it went to (0: none).
  uint32_t sendFrom(const std::string& client, uint16_t sport) {
    Pkt in;
    in.saddr = client;
    in.daddr = kExtIp6;
    in.sport = sport;
    Result r = run(Program::FromPod, build(in));
    EXPECT_EQ(r.verdict, uint32_t(TC_ACT_OK));
    for (uint32_t i = 0; i < 4; ++i) {
      Pkt want = in;
      want.daddr = kPods6[i];
      want.dport = 8080;
      if (hex(build(want)) == hex(r.out)) return i + 1;
    }
    ADD_FAILURE() << "not translated to a backend: " << hex(r.out);
    return 0;
  }
  // Clients in 16 different /64s with the same low 64 bits (so the same
  // low 32 bits): they differ only in the upper 96 bits.
  static std::string client(int i) { return "2001:db8:1:" + std::to_string(i + 1) + "::2"; }

  std::vector<std::pair<BackendKey, uint32_t>> keyed_;
  std::vector<uint32_t> table_;
};

// Clients that share their low 32 bits spread over the backends, each
// where the table puts the hash of its whole address (hashing only the
// low word sent all of them to one backend).
TEST_F(Maglev6Test, ClientsDifferingOnlyInTheUpper96BitsAreSpread) {
  std::set<uint32_t> used;
  for (int i = 0; i < 16; ++i) {
    uint32_t got = sendFrom(client(i), 40000);
    EXPECT_EQ(got, expected(client(i), 40000)) << client(i);
    used.insert(got);
  }
  EXPECT_GE(used.size(), 3u) << "16 clients over 4 backends";
}

// With session affinity the source port is left out but the whole
// address still counts: the clients spread, each flow of one client stays.
TEST_F(Maglev6Test, WithAffinityClientsDifferingOnlyInTheUpper96BitsAreSpread) {
  setAffinity(kExtIp6, 80, 10800, FERRY_SCOPE_EXTERNAL);
  std::set<uint32_t> used;
  for (int i = 0; i < 16; ++i) {
    uint32_t first = sendFrom(client(i), 40000);
    EXPECT_EQ(first, expected(client(i), 0)) << client(i);
    ferry_affinity_key k{};
    k.svc_id = kSvcId;
    k.client = abiAddr(client(i));
    ASSERT_TRUE(dp_->affinity().erase(k)) << "the pick was remembered";
    EXPECT_EQ(sendFrom(client(i), 41000), first) << client(i);
    used.insert(first);
  }
  EXPECT_GE(used.size(), 3u) << "16 clients over 4 backends";
}

}  // namespace
}  // namespace ferry
