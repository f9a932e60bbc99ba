// The Maglev table (userspace/dataplane/maglev.*) and how the planner
// programs selection: permutations, balance, determinism, ~1/N disruption;
// affinity timeouts and Maglev tables in the map delta.
#include <gtest/gtest.h>

#include <map>
#include <set>

#include "dataplane/maglev.h"
#include "dataplane/planner.h"

namespace ferry {
namespace {

constexpr uint32_t kM = FERRY_MAGLEV_TABLE_DEFAULT;

std::vector<std::pair<BackendKey, uint32_t>> backends(int n, uint32_t firstId = 1) {
  std::vector<std::pair<BackendKey, uint32_t>> out;
  for (int i = 0; i < n; ++i)
    out.emplace_back(BackendKey{IpAddr::fromV4(0xc6128100u + i), 8080, 6}, firstId + i);
  std::sort(out.begin(), out.end());
  return out;
}

TEST(Maglev, SizesArePrimes) {
  for (uint32_t m : {3u, 251u, 1021u, 16381u, 65521u, 131071u}) EXPECT_TRUE(maglevSizeValid(m)) << m;
  for (uint32_t m : {0u, 1u, 2u, 16384u, 16383u, 131073u, 262139u}) EXPECT_FALSE(maglevSizeValid(m)) << m;
}

// Each backend's preference list (offset + j * skip) % M visits every
// position once: skip is in [1, M) and M is prime.
TEST(Maglev, PreferenceListIsAPermutation) {
  const uint32_t m = 251;
  for (const auto& [bk, id] : backends(5)) {
    auto [offset, skip] = maglevOffsetSkip(bk, m);
    ASSERT_LT(offset, m);
    ASSERT_GE(skip, 1u);
    ASSERT_LT(skip, m);
    std::set<uint32_t> seen;
    for (uint32_t j = 0; j < m; ++j) seen.insert((offset + uint64_t(j) * skip) % m);
    EXPECT_EQ(seen.size(), m);
  }
}

// Every position is filled; each backend gets within 1 of M/N... the
// paper's loop gives each backend floor or ceil of M/N positions.
TEST(Maglev, TableIsFullAndBalanced) {
  for (int n : {1, 2, 3, 7, 50}) {
    auto t = maglevTable(backends(n), kM);
    ASSERT_EQ(t.size(), kM);
    std::map<uint32_t, uint32_t> count;
    for (uint32_t id : t) count[id]++;
    ASSERT_EQ(count.size(), size_t(n));
    for (const auto& [id, c] : count) {
      EXPECT_GE(c, kM / n) << "n " << n << " id " << id;
      EXPECT_LE(c, kM / n + 1) << "n " << n << " id " << id;
    }
  }
  EXPECT_TRUE(maglevTable({}, kM).empty());
}

// Another node has other local ids for the same endpoints: the table maps
// each position to the same endpoint (address:port), whatever the ids.
TEST(Maglev, DeterministicAcrossNodesWhateverTheIds) {
  auto a = backends(10, 1), b = backends(10, 500);
  auto ta = maglevTable(a, kM), tb = maglevTable(b, kM);
  std::map<uint32_t, BackendKey> keyA, keyB;
  for (const auto& [k, id] : a) keyA[id] = k;
  for (const auto& [k, id] : b) keyB[id] = k;
  for (uint32_t j = 0; j < kM; ++j) ASSERT_EQ(keyA[ta[j]], keyB[tb[j]]) << "position " << j;
  EXPECT_EQ(maglevTable(a, kM), ta) << "same input, same table";
}

// Removing one of N backends moves its own 1/N of the positions and only
// a little more (the paper: M >> N keeps the extra small).
TEST(Maglev, RemovingOneOfNMovesAboutOneNth) {
  for (int n : {5, 10, 40}) {
    auto all = backends(n);
    auto before = maglevTable(all, kM);
    auto fewer = all;
    uint32_t removed = fewer[n / 2].second;
    fewer.erase(fewer.begin() + n / 2);
    auto after = maglevTable(fewer, kM);
    uint32_t moved = 0, ownMoved = 0;
    for (uint32_t j = 0; j < kM; ++j) {
      if (before[j] == after[j]) continue;
      moved++;
      if (before[j] == removed) ownMoved++;
    }
    double share = double(moved) / kM;
    EXPECT_EQ(ownMoved, kM / n + (ownMoved > kM / n)) << "all of the removed one's positions";
    EXPECT_LE(moved - ownMoved, kM / n / 2) << "n " << n << ": others' positions moved";
    EXPECT_GE(share, 1.0 / n * 0.9) << "n " << n;
    EXPECT_LE(share, 1.0 / n * 1.6) << "n " << n << ": " << moved << " of " << kM << " moved";
  }
}

// ---- the planner -----------------------------------------------------------

Desired oneFrontend(uint16_t flags, uint32_t affinity, int n, uint8_t scope = FERRY_SCOPE_EXTERNAL) {
  Desired d;
  FrontendKey fk{nodePortAddr(true), 30080, 6, scope};
  DesiredFrontend fe;
  fe.owner = "Service default/web port (80/TCP) nodePort 30080";
  fe.flags = flags;
  fe.affinityTimeout = affinity;
  for (const auto& [bk, id] : backends(n)) {
    fe.backends.push_back(bk);
    d.backendFlags[bk] = 0;
  }
  d.frontends[fk] = fe;
  return d;
}

TEST(SelectionPlan, AffinityTimeoutIsInTheMasterAndChangesRewriteIt) {
  ProgrammedState st, next;
  MapDelta d = planDelta(st, oneFrontend(0, 10800, 2), &next);
  ASSERT_EQ(d.masterUpserts.size(), 1u);
  EXPECT_EQ(d.masterUpserts[0].value.affinity_timeout_s, 10800u);
  ProgrammedState again;
  MapDelta d2 = planDelta(next, oneFrontend(0, 60, 2), &again);
  ASSERT_EQ(d2.masterUpserts.size(), 1u) << "a new timeout reaches the live service";
  EXPECT_EQ(d2.masterUpserts[0].value.affinity_timeout_s, 60u);
  EXPECT_TRUE(d2.slotUpserts.empty());
  ProgrammedState off;
  MapDelta d3 = planDelta(again, oneFrontend(0, 0, 2), &off);
  ASSERT_EQ(d3.masterUpserts.size(), 1u) << "switching affinity off too";
  EXPECT_EQ(d3.masterUpserts[0].value.affinity_timeout_s, 0u);
}

TEST(SelectionPlan, MaglevTableFollowsTheBackends) {
  ProgrammedState st, next;
  MapDelta d = planDelta(st, oneFrontend(FERRY_SVC_F_MAGLEV, 0, 3), &next);
  ASSERT_EQ(d.maglevUpserts.size(), 1u);
  EXPECT_EQ(d.maglevUpserts[0].backends.size(), 3u);
  EXPECT_EQ(d.masterUpserts[0].value.flags & FERRY_SVC_F_MAGLEV, FERRY_SVC_F_MAGLEV);
  uint32_t svcId = d.maglevUpserts[0].svcId;
  // unchanged: nothing; one backend fewer: rebuilt; Maglev off: deleted
  ProgrammedState s2, s3, s4;
  EXPECT_EQ(planDelta(next, oneFrontend(FERRY_SVC_F_MAGLEV, 0, 3), &s2).size(), 0u);
  MapDelta shrink = planDelta(next, oneFrontend(FERRY_SVC_F_MAGLEV, 0, 2), &s3);
  ASSERT_EQ(shrink.maglevUpserts.size(), 1u);
  EXPECT_EQ(shrink.maglevUpserts[0].backends.size(), 2u);
  MapDelta off = planDelta(s3, oneFrontend(0, 0, 2), &s4);
  EXPECT_EQ(off.maglevDeletes, std::vector<uint32_t>{svcId});
  EXPECT_TRUE(s4.maglev.empty());
  // the incremental path: the frontend removed takes its table along
  ProgrammedState s5 = s3;
  MapDelta gone;
  planFrontend(s5, FrontendKey{nodePortAddr(true), 30080, 6, FERRY_SCOPE_EXTERNAL}, nullptr, gone);
  EXPECT_EQ(gone.maglevDeletes, std::vector<uint32_t>{svcId});
}

// The algorithm: --lb-algorithm (setDefaultMaglev) for services without
// the annotation, the annotation otherwise; only external frontends;
// the affinity timeout on every frontend of the service.
TEST(SelectionPlan, AlgorithmByFlagAndAnnotationOnExternalFrontendsOnly) {
  Service svc;
  svc.ns = "default";
  svc.name = "web";
  svc.type = ServiceType::NodePort;
  svc.clusterIPs = {IpAddr::fromV4(0xc6130001u)};
  svc.sessionAffinityTimeout = 30;
  ServicePort sp;
  sp.port = 80;
  sp.nodePort = 30080;
  sp.endpoints.push_back(Endpoint{IpAddr::fromV4(0xc6128102u), 8080});
  svc.ports = {sp};
  auto flagsOf = [&](bool defaultMaglev) {
    setDefaultMaglev(defaultMaglev);
    Desired d;
    addServiceFrontends(d, "default/web", svc, "n1");
    setDefaultMaglev(false);
    std::map<uint8_t, uint16_t> out;  // scope -> flags
    for (const auto& [fk, fe] : d.frontends) {
      out[fk.scope] = fe.flags;
      EXPECT_EQ(fe.affinityTimeout, 30u) << fk.str();
    }
    return out;
  };
  EXPECT_EQ(flagsOf(false)[FERRY_SCOPE_EXTERNAL] & FERRY_SVC_F_MAGLEV, 0);
  EXPECT_EQ(flagsOf(true)[FERRY_SCOPE_EXTERNAL] & FERRY_SVC_F_MAGLEV, FERRY_SVC_F_MAGLEV);
  EXPECT_EQ(flagsOf(true)[FERRY_SCOPE_CLUSTER] & FERRY_SVC_F_MAGLEV, 0);
  svc.annotations[kLbAlgorithmAnnotation] = "random";
  EXPECT_EQ(flagsOf(true)[FERRY_SCOPE_EXTERNAL] & FERRY_SVC_F_MAGLEV, 0);
  svc.annotations[kLbAlgorithmAnnotation] = "maglev";
  EXPECT_EQ(flagsOf(false)[FERRY_SCOPE_EXTERNAL] & FERRY_SVC_F_MAGLEV, FERRY_SVC_F_MAGLEV);
}

}  // namespace
}  // namespace ferry
