// Batched and sliced map writes (issue 12): a delta written with
// BPF_MAP_UPDATE_BATCH / BPF_MAP_DELETE_BATCH leaves exactly the map
// contents the per-entry path leaves, and a delta written in slices
// (MapWriter::begin/step) never shows a reader a dangling reference
// between two slices.
#include <gtest/gtest.h>

#include <arpa/inet.h>

#include <algorithm>
#include <cstring>
#include <functional>
#include <set>
#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <tuple>
#include <vector>

#include "dataplane/bpf.h"
#include "dataplane/drift.h"
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

// Runs a drift round to its end, one chunk per step (the agent's slices,
// with a deadline already past); `between` runs after every step.
DriftScan::Result runScan(DriftScan& scan, const Datapath& dp, const ProgrammedState& want,
                          const MapWriter& w, int* steps = nullptr,
                          const std::function<void(int)>& between = nullptr) {
  auto past = std::chrono::steady_clock::now();
  DriftScan::Result r;
  int n = 0;
  while ((r = scan.step(dp, want, w.generation(), past)) == DriftScan::Result::More) {
    if (between) between(n);
    if (++n > 100000) break;  // bounded: a walk that never ends fails below
  }
  if (steps) *steps = n;
  return r;
}

size_t entries(const Contents& c) { return c.svc.size() + c.backends.size() + c.members.size() + c.ranges.size(); }

// The drift check reads the maps in slices (issue 12: a whole read stopped
// the loop for seconds at 100,000 services) and finds nothing on maps as
// programmed: every entry read once.
TEST_P(BatchWritesTest, DriftScanInSlicesFindsNothingOnProgrammedMaps) {
  bool v6 = GetParam();
  for (Datapath* dp : {batched_.get(), single_.get()}) {
    MapWriter w(*dp);
    ProgrammedState st;
    ASSERT_TRUE(w.apply(planDelta(w.readBack(), makeDesired(300, 8, 0, v6), &st)).empty());
    DriftScan scan;
    int steps = 0;
    EXPECT_EQ(runScan(scan, *dp, st, w, &steps), DriftScan::Result::Clean) << scan.detail();
    Contents c = read(*dp);
    EXPECT_GT(steps, 2);
    // Maglev tables count M / 64 each in entriesRead().
    size_t maglev = c.maglev.size() * (dp->maglevTableSize() / 64);
    EXPECT_EQ(scan.entriesRead(), entries(c) + maglev);
    EXPECT_EQ(scan.countsSkipped(), 0u);
  }
}

// Each kind of change behind the agent's back is found: a changed,
// missing or unknown entry in every map the writer fills.
TEST_P(BatchWritesTest, DriftScanFindsEachKindOfDrift) {
  bool v6 = GetParam();
  Datapath& dp = *batched_;
  struct Case {
    const char* name;
    const char* detail;  // in DriftScan::detail()
    std::function<void(const Contents&)> tamper;
  };
  auto firstSlot = [](const Contents& c) {
    for (const auto& [k, v] : c.svc)
      if (std::get<1>(k) != 0) {
        ferry_svc_key key;
        std::memcpy(&key, std::get<0>(k).data(), sizeof key);
        key.slot = std::get<1>(k);
        return key;
      }
    return ferry_svc_key{};
  };
  std::vector<Case> cases = {
      {"slot names another backend", "slot",
       [&](const Contents& c) {
         ferry_svc_key k = firstSlot(c);
         ferry_svc_value v{};
         ASSERT_TRUE(dp.services().lookup(k, &v));
         v.backend_id += 1;
         ASSERT_TRUE(dp.services().update(k, v));
       }},
      {"master deleted", "services:",
       [&](const Contents& c) {
         ferry_svc_key k = firstSlot(c);
         k.slot = 0;
         ASSERT_TRUE(dp.services().erase(k));
       }},
      {"slot deleted", "services:",
       [&](const Contents& c) { ASSERT_TRUE(dp.services().erase(firstSlot(c))); }},
      {"unknown frontend", "unknown frontend",
       [&](const Contents& c) {
         ferry_svc_key k = firstSlot(c);
         k.slot = 0;
         k.port = htons(9);
         ASSERT_TRUE(dp.services().update(k, ferry_svc_value{}));
       }},
      {"backend flags changed", "backends:",
       [&](const Contents& c) {
         uint32_t id = c.backends.begin()->first;
         ferry_backend b{};
         ASSERT_TRUE(dp.backends().lookup(id, &b));
         b.flags ^= FERRY_BE_F_LOCAL;
         ASSERT_TRUE(dp.backends().update(id, b));
       }},
      {"backend deleted", "backends:",
       [&](const Contents& c) { ASSERT_TRUE(dp.backends().erase(c.backends.rbegin()->first)); }},
      {"membership turned keep-only", "members:",
       [&](const Contents& c) {
         auto [m, v] = *c.members.begin();
         ASSERT_TRUE(dp.members().update(ferry_member_key{m.first, m.second}, uint8_t(FERRY_MEMBER_KEEP)));
       }},
      {"membership deleted", "members:",
       [&](const Contents& c) {
         auto m = c.members.rbegin()->first;
         ASSERT_TRUE(dp.members().erase(ferry_member_key{m.first, m.second}));
       }},
      {"Maglev table deleted", "Maglev",
       [&](const Contents& c) { ASSERT_TRUE(dp.maglevErase(c.maglev.begin()->first)); }},
      {"Maglev table names another backend", "Maglev",
       [&](const Contents& c) {
         auto [svc, table] = *c.maglev.begin();
         table[0] = 0xfffffff0;
         ASSERT_TRUE(dp.maglevUpdate(svc, table));
       }},
  };
  if (!v6) {
    cases.push_back({"source range deleted", "source ranges:", [&](const Contents& c) {
                       ferry_src_range_key k;
                       std::memcpy(&k, c.ranges.begin()->first.data(), sizeof k);
                       ASSERT_TRUE(dp.srcRanges().erase(k));
                     }});
    cases.push_back({"unknown source range", "source ranges:", [&](const Contents& c) {
                       ferry_src_range_key k;
                       std::memcpy(&k, c.ranges.begin()->first.data(), sizeof k);
                       k.svc_id = 0xffff;
                       ASSERT_TRUE(dp.srcRanges().update(k, 1));
                     }});
  }
  for (const Case& t : cases) {
    SCOPED_TRACE(t.name);
    SetUp();  // empty maps
    MapWriter w(dp);
    ProgrammedState st;
    ASSERT_TRUE(w.apply(planDelta(w.readBack(), makeDesired(300, 8, 0, v6), &st)).empty());
    Contents c = read(dp);
    ASSERT_FALSE(c.maglev.empty());
    t.tamper(c);
    DriftScan scan;
    EXPECT_EQ(runScan(scan, dp, st, w), DriftScan::Result::Drifted);
    EXPECT_NE(scan.detail().find(t.detail), std::string::npos) << scan.detail();
  }
}

// The agent writes between slices of a round: entries are still checked
// one by one against what it programmed last (a stray one is found), the
// walk neither loops nor fails, and only the count of a map written
// meanwhile is skipped (a missing entry waits for a round without writes).
TEST_P(BatchWritesTest, DriftScanAcrossTheAgentsOwnWrites) {
  bool v6 = GetParam();
  Datapath& dp = *batched_;
  MapWriter w(dp);
  ProgrammedState a, b;
  ASSERT_TRUE(w.apply(planDelta(w.readBack(), makeDesired(300, 8, 0, v6), &a)).empty());
  // A round in which, after its first step, the agent writes `change`
  // (its state moving from *from to *to) and `behind` runs.
  auto round = [&](ProgrammedState* from, ProgrammedState* to, const Desired& next,
                   const std::function<void()>& behind) {
    MapDelta change = planDelta(*from, next, to);
    const ProgrammedState* want = from;
    DriftScan scan;
    auto past = std::chrono::steady_clock::now();
    DriftScan::Result r;
    int n = 0;
    while ((r = scan.step(dp, *want, w.generation(), past)) == DriftScan::Result::More) {
      if (n++ == 0) {
        EXPECT_TRUE(w.apply(change).empty());
        want = to;
        if (behind) behind();
      }
      if (n > 100000) break;
    }
    return std::make_pair(r, scan);
  };
  auto [r1, s1] = round(&a, &b, makeDesired(300, 8, 3, v6), nullptr);
  EXPECT_EQ(r1, DriftScan::Result::Clean) << s1.detail();
  EXPECT_GT(s1.countsSkipped(), 0u);
  // A master deleted behind the agent's back in a round with writes: the
  // count that would find it is skipped; the next round without writes
  // finds it.
  ferry_svc_key master{};
  auto [r2, s2] = round(&b, &a, makeDesired(300, 8, 0, v6), [&] {
    bool found = false;
    dp.services().forEach([&](const ferry_svc_key& k, const ferry_svc_value&) {
      if (!found && k.slot == 0) master = k, found = true;
    });
    ASSERT_TRUE(dp.services().erase(master));
  });
  EXPECT_EQ(r2, DriftScan::Result::Clean) << s2.detail();
  DriftScan quiet;
  EXPECT_EQ(runScan(quiet, dp, a, w), DriftScan::Result::Drifted);
  EXPECT_NE(quiet.detail().find("expected"), std::string::npos) << quiet.detail();
  ASSERT_TRUE(w.apply(planDelta(w.readBack(), makeDesired(300, 8, 0, v6), &a)).empty());
  // A stray entry present through a round with writes is found (one
  // added during the round may fall in a bucket already read: the next
  // round finds it).
  ferry_svc_key stray{};
  stray.port = htons(9);
  stray.proto = 17;
  ASSERT_TRUE(dp.services().update(stray, ferry_svc_value{}));
  auto [r3, s3] = round(&a, &b, makeDesired(300, 8, 3, v6), nullptr);
  EXPECT_EQ(r3, DriftScan::Result::Drifted);
  EXPECT_NE(s3.detail().find("unknown frontend"), std::string::npos) << s3.detail();
}

// Map::scan on a hash map: entries deleted or added between chunks never
// restart the walk (the cursor is a bucket index); every entry present
// throughout is seen exactly once.
TEST_P(BatchWritesTest, MapScanSurvivesDeletesBetweenChunks) {
  Datapath& dp = GetParam() ? *batched_ : *single_;
  auto members = dp.members();
  constexpr uint32_t kN = 5000;
  for (uint32_t i = 0; i < kN; ++i) ASSERT_TRUE(members.update(ferry_member_key{i / 10 + 1, i + 1}, 1));
  std::map<uint32_t, int> seen;
  MapCursor cur;
  int chunks = 0;
  while (members.scan(&cur, 64, [&](const ferry_member_key& k, const uint8_t&) { ++seen[k.backend_id]; })) {
    // Between chunks: delete every 7th entry (seen or not) and add some.
    if (chunks < 40)
      for (uint32_t i = chunks; i < kN; i += 40 * 7) ASSERT_TRUE(members.erase(ferry_member_key{i / 10 + 1, i + 1}));
    if (chunks < 5) ASSERT_TRUE(members.update(ferry_member_key{9999, 100000u + chunks}, 1));
    ASSERT_LT(++chunks, 10000);
  }
  EXPECT_TRUE(cur.done);
  std::set<uint32_t> deleted;
  for (int ch = 0; ch < 40; ++ch)
    for (uint32_t i = ch; i < kN; i += 40 * 7) deleted.insert(i + 1);
  for (uint32_t id = 1; id <= kN; ++id) {
    if (deleted.count(id)) {
      EXPECT_LE(seen[id], 1) << id;
      continue;
    }
    EXPECT_EQ(seen[id], 1) << "backend id " << id;
  }
  for (const auto& [id, n] : seen) EXPECT_LE(n, 1) << id;
}

INSTANTIATE_TEST_SUITE_P(Family, BatchWritesTest, ::testing::Values(false, true),
                         [](const ::testing::TestParamInfo<bool>& i) { return i.param ? "IPv6" : "IPv4"; });

}  // namespace
}  // namespace ferry
