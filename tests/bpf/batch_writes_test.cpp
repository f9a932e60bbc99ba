// Batched and sliced map writes (issue 12): a delta written with
// BPF_MAP_UPDATE_BATCH / BPF_MAP_DELETE_BATCH leaves exactly the map
// contents the per-entry path leaves, and a delta written in slices
// (MapWriter::begin/step) never shows a reader a dangling reference
// between two slices.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <tuple>
#include <vector>

#include "dataplane/bpf.h"
#include "dataplane/planner.h"
#include "dataplane/writer.h"

namespace ferry {
namespace {

IpAddr ip(const std::string& s) { return *IpAddr::parse(s); }

// `services` frontends of `perService` backends each, some of them with
// source ranges, kept (terminating) backends and a Maglev table. `shift`
// moves every backend list by that many addresses (a second state that
// deletes, keeps and adds entries).
Desired makeDesired(int services, int perService, int shift, bool v6) {
  Desired d;
  for (int s = 0; s < services; ++s) {
    FrontendKey fk;
    fk.addr = v6 ? ip("2001:db8:ffff::" + std::to_string(s + 1))
                 : IpAddr::fromV4((198u << 24) | (19u << 16) | uint32_t(s + 1));
    fk.port = 80;
    fk.proto = 6;
    DesiredFrontend fe;
    fe.owner = "Service default/s" + std::to_string(s) + " port (80/TCP)";
    for (int b = 0; b < perService + 1; ++b) {
      int n = s * 7 + b + shift;
      BackendKey bk;
      bk.addr = v6 ? ip("2001:db8:1:" + std::to_string(n / 200 + 1) + "::" + std::to_string(n % 200 + 2))
                   : IpAddr::fromV4((198u << 24) | (18u << 16) | uint32_t(n + 2));
      bk.port = 8080;
      bk.proto = 6;
      d.backendFlags[bk] = (n % 3 == 0) ? FERRY_BE_F_LOCAL : 0;
      if (b < perService) fe.backends.push_back(bk);
      else if (s % 4 == 0) fe.keep.push_back(bk);
    }
    std::sort(fe.backends.begin(), fe.backends.end());
    if (s % 5 == 0) {
      fe.flags |= FERRY_SVC_F_MAGLEV;
    }
    if (s % 3 == 0 && !v6) fe.sourceRanges.push_back(*IpPrefix::parse("198.18.0.0/" + std::to_string(16 + (s + shift) % 8)));
    if (s % 6 == 0) fe.affinityTimeout = 10800;
    if (s == services - 1 && shift) continue;  // gone in the second state
    d.frontends[fk] = std::move(fe);
  }
  return d;
}

// Every map the writer fills, as sorted raw bytes.
struct Contents {
  std::map<std::tuple<std::string, uint16_t>, std::tuple<uint32_t, uint32_t, uint16_t, uint16_t, uint32_t>> svc;
  std::map<uint32_t, std::string> backends;
  std::map<std::pair<uint32_t, uint32_t>, uint8_t> members;
  std::map<std::string, uint8_t> ranges;
  std::map<uint32_t, std::vector<uint32_t>> maglev;
  bool operator==(const Contents&) const = default;
};

// Field by field, so a failure says which part differs.
void expectState(const ProgrammedState& got, const ProgrammedState& want) {
  EXPECT_TRUE(got.frontends == want.frontends);
  EXPECT_TRUE(got.backends == want.backends);
  EXPECT_TRUE(got.srcRanges == want.srcRanges);
  EXPECT_TRUE(got.members == want.members);
  EXPECT_TRUE(got.keptOnly == want.keptOnly);
  EXPECT_TRUE(got.maglev == want.maglev);
  // next*Id are not compared: the maps only show the ids in use (the id
  // of a frontend deleted last is not in them).
}

std::string bytes(const void* p, size_t n) { return std::string(static_cast<const char*>(p), n); }

Contents read(const Datapath& dp) {
  Contents c;
  dp.services().forEach([&](const ferry_svc_key& k, const ferry_svc_value& v) {
    ferry_svc_key key = k;
    uint16_t slot = key.slot;
    key.slot = 0;
    c.svc[{bytes(&key, sizeof key), slot}] = {v.backend_id, v.svc_id, v.count, v.flags,
                                              v.affinity_timeout_s};
  });
  dp.backends().forEach([&](const uint32_t& id, const ferry_backend& b) { c.backends[id] = bytes(&b, sizeof b); });
  dp.members().forEach([&](const ferry_member_key& k, const uint8_t& v) { c.members[{k.svc_id, k.backend_id}] = v; });
  dp.srcRanges().forEach([&](const ferry_src_range_key& k, const uint8_t& v) { c.ranges[bytes(&k, sizeof k)] = v; });
  c.maglev = dp.maglevTables();
  return c;
}

// Two dataplanes for the whole suite (a load costs seconds of verifier
// time): one writing in batches, one entry by entry.
class BatchWritesTest : public ::testing::TestWithParam<bool> {
 protected:
  static void SetUpTestSuite() {
    for (bool batch : {true, false}) {
      auto dp = Datapath::load(DatapathOptions{});
      ASSERT_TRUE(dp) << dp.status().message();
      (*dp)->setBatchWrites(batch);
      (batch ? batched_ : single_) = std::move(*dp);
    }
  }
  static void TearDownTestSuite() {
    batched_.reset();
    single_.reset();
  }
  // Every test starts from empty maps.
  void SetUp() override {
    ASSERT_TRUE(batched_ && single_);
    for (Datapath* dp : {batched_.get(), single_.get()}) {
      MapWriter w(*dp);
      ProgrammedState none;
      ASSERT_TRUE(w.apply(planDelta(w.readBack(), Desired{}, &none)).empty());
    }
  }
  static std::unique_ptr<Datapath> batched_, single_;
};
std::unique_ptr<Datapath> BatchWritesTest::batched_, BatchWritesTest::single_;

TEST_P(BatchWritesTest, BatchedDeltaLeavesWhatPerEntryLeaves) {
  bool v6 = GetParam();
  Datapath* batched = batched_.get();
  Datapath* single = single_.get();
  // Linux 6.18: hash maps and LPM tries take batches (generic batch ops).
  ASSERT_TRUE(batched->batchWrites()) << "the batch probe failed on this kernel";
  ASSERT_FALSE(single->batchWrites());
  MapWriter wb(*batched), ws(*single);
  ProgrammedState st, next;
  // 1,500 frontends x 8 backends: more than one 4,096-entry batch per map.
  MapDelta first = planDelta(st, makeDesired(1500, 8, 0, v6), &next);
  ASSERT_GT(first.backendUpserts.size(), 4096u);
  EXPECT_TRUE(wb.apply(first).empty());
  EXPECT_TRUE(ws.apply(first).empty());
  Contents a = read(*batched), b = read(*single);
  EXPECT_EQ(a.svc.size(), 1500u * 9);
  EXPECT_FALSE(a.ranges.empty() && !v6);
  EXPECT_TRUE(a == b);
  expectState(wb.readBack(), next);
  // The second state deletes a frontend, moves every backend list (deletes
  // of slots, members, backends and ranges) and changes flags.
  ProgrammedState after;
  MapDelta second = planDelta(next, makeDesired(1500, 8, 3, v6), &after);
  ASSERT_FALSE(second.backendDeletes.empty());
  ASSERT_FALSE(second.memberDeletes.empty());
  ASSERT_FALSE(second.slotDeletes.empty());
  EXPECT_TRUE(wb.apply(second).empty());
  EXPECT_TRUE(ws.apply(second).empty());
  a = read(*batched), b = read(*single);
  EXPECT_TRUE(a == b);
  expectState(wb.readBack(), after);
  expectState(ws.readBack(), after);
}

// A large delta written one chunk per step (the agent's slices): between
// any two steps every slot names a backend and a membership that are in
// the maps, and every master's slots are there (the order planner.h
// promises a reader); at the end the maps equal a write at once.
TEST_P(BatchWritesTest, SlicedDeltaNeverDangles) {
  bool v6 = GetParam();
  // The per-entry dataplane takes the whole writes here: the two paths
  // leave the same contents (the case above).
  Datapath* sliced = batched_.get();
  Datapath* whole = single_.get();
  MapWriter w(*sliced), ww(*whole);
  ProgrammedState st, next, after;
  MapDelta first = planDelta(st, makeDesired(300, 8, 0, v6), &next);
  MapDelta second = planDelta(next, makeDesired(300, 8, 3, v6), &after);
  for (const MapDelta* d : {&first, &second}) {
    EXPECT_TRUE(ww.apply(*d).empty());
    w.begin(*d);
    int steps = 0;
    auto past = std::chrono::steady_clock::now();
    while (!w.step(past)) {
      ++steps;
      ASSERT_TRUE(w.writing());
      Contents c = read(*sliced);
      for (const auto& [k, v] : c.svc) {
        auto [backend, svcId, count, flags, aff] = v;
        if (std::get<1>(k) == 0) {
          for (uint16_t i = 1; i <= count; ++i)
            ASSERT_TRUE(c.svc.count({std::get<0>(k), i})) << "master without slot " << i << " at step " << steps;
          continue;
        }
        ASSERT_TRUE(c.backends.count(backend)) << "slot names a missing backend at step " << steps;
        ASSERT_TRUE(c.members.count({svcId, backend})) << "slot without membership at step " << steps;
      }
    }
    EXPECT_FALSE(w.writing());
    EXPECT_GT(steps, 2) << "a delta of " << d->size() << " entries in one step";
    EXPECT_TRUE(w.takeFailures().empty());
    EXPECT_TRUE(read(*sliced) == read(*whole));
  }
  expectState(w.readBack(), after);
}

INSTANTIATE_TEST_SUITE_P(Family, BatchWritesTest, ::testing::Values(false, true),
                         [](const ::testing::TestParamInfo<bool>& i) { return i.param ? "IPv6" : "IPv4"; });

}  // namespace
}  // namespace ferry
