// The agent's control plane with a loaded (unpinned) dataplane: a delta
// over the sliced-write threshold is written over several passes
// (ControlPlane::allowSlicedWrite / continueWrite, as Agent::sync drives
// it) and ends with the maps holding what the planner programmed; the
// drift check reads the maps in rounds of slices and repairs what was
// changed behind the agent's back.
// Needs root (BPF), as every test of scripts/test.sh.
#include <gtest/gtest.h>

#include <memory>
#include <optional>
#include <string>

#include "agent/control_plane.h"
#include "dataplane/bpf.h"
#include "model/allocation.h"
#include "model/file_tracker.h"

namespace ferry {
namespace {

// `n` ClusterIP services with `perService` endpoints each (Endpoints objects).
std::string manifests(int n, int perService) {
  std::string out;
  for (int s = 0; s < n; ++s) {
    std::string name = "s" + std::to_string(s);
    out += "---\napiVersion: v1\nkind: Service\nmetadata:\n  name: " + name +
           "\n  namespace: default\nspec:\n  ports: [{port: 80, targetPort: 8080}]\n";
    out += "---\napiVersion: v1\nkind: Endpoints\nmetadata:\n  name: " + name +
           "\n  namespace: default\nsubsets:\n- addresses:\n";
    for (int e = 0; e < perService; ++e) {
      int i = s * perService + e;
      out += "  - ip: 198.18." + std::to_string(100 + i / 250) + "." + std::to_string(i % 250 + 2) + "\n";
    }
    out += "  ports: [{port: 8080}]\n";
  }
  return out;
}

// A control plane over a loaded (unpinned) dataplane, as the agent has it.
class LoadedControlPlane : public ::testing::Test {
 protected:
  void SetUp() override {
    auto loaded = Datapath::load(DatapathOptions{});
    ASSERT_TRUE(loaded) << loaded.status().message();
    dp = std::move(*loaded);
    writer = std::make_unique<MapWriter>(*dp);
    BuildOptions opts;
    opts.serviceCidrs = {*IpPrefix::parse("198.19.0.0/16")};
    cpp = std::make_unique<ControlPlane>(opts, store, *writer, "node1");
  }
  std::unique_ptr<Datapath> dp;
  std::unique_ptr<MapWriter> writer;
  MemoryAllocationStore store;
  std::unique_ptr<ControlPlane> cpp;
  FileTracker tracker;
};

TEST_F(LoadedControlPlane, LargeDeltaIsWrittenOverSeveralPasses) {
  ControlPlane& cp = *cpp;
  SourceUpdate u = tracker.apply({FileChange{"m.yaml", manifests(200, 5)}});
  cp.allowSlicedWrite(100);
  ChangeReport first = cp.apply(u, ControlPlane::Clock::now(), true);
  ASSERT_TRUE(cp.writing()) << "a delta of about 2,200 entries over a threshold of 100";
  EXPECT_EQ(first.mapEntries, 0u) << "the report comes with the last slice";
  int passes = 0;
  std::optional<ChangeReport> done;
  // One chunk per pass (a deadline already past), bounded.
  while (!(done = cp.continueWrite(ControlPlane::Clock::now()))) ASSERT_LT(++passes, 10000);
  EXPECT_FALSE(cp.writing());
  EXPECT_GE(passes, 3);
  EXPECT_TRUE(done->failures.empty());
  EXPECT_EQ(done->changes.services.size(), 200u);
  EXPECT_GT(done->mapEntries, 2000u);
  ProgrammedState inMaps = writer->readBack();
  EXPECT_EQ(inMaps.frontends.size(), 200u);
  EXPECT_TRUE(inMaps.frontends == cp.programmed().frontends);
  EXPECT_TRUE(inMaps.backends == cp.programmed().backends);
  EXPECT_TRUE(inMaps.members == cp.programmed().members);
  nlohmann::json v = cp.verify(nullptr, "cluster.local");
  EXPECT_TRUE(v["ok"].get<bool>()) << v.dump();
  // A small change afterwards is written at once (no threshold given).
  SourceUpdate gone = tracker.apply({FileChange{"m.yaml", manifests(199, 5)}});
  ChangeReport r = cp.apply(gone, ControlPlane::Clock::now(), true);
  EXPECT_FALSE(cp.writing());
  EXPECT_GT(r.mapEntries, 0u);
  EXPECT_EQ(writer->readBack().frontends.size(), 199u);
}

// The drift check as the agent drives it (Agent::checkDrift): a round is
// read over several passes, never while a sliced write goes on, finds
// nothing on maps as programmed, and on an entry deleted behind the
// agent's back runs the full repair, which puts it back.
TEST_F(LoadedControlPlane, DriftRoundsAreReadInSlicesAndRepairWhatWasDeleted) {
  ControlPlane& cp = *cpp;
  std::string found = "unset";
  EXPECT_FALSE(cp.driftStep(ControlPlane::Clock::now(), &found)) << "nothing planned yet";
  cp.allowSlicedWrite(100);
  cp.apply(tracker.apply({FileChange{"m.yaml", manifests(200, 5)}}), ControlPlane::Clock::now(), true);
  ASSERT_TRUE(cp.writing());
  EXPECT_FALSE(cp.driftStep(ControlPlane::Clock::now(), &found)) << "a sliced write is not drift";
  EXPECT_EQ(cp.driftEntriesRead(), 0u);
  int passes = 0;
  while (!cp.continueWrite(ControlPlane::Clock::now())) ASSERT_LT(++passes, 10000);
  // One chunk per pass (a deadline already past), bounded.
  auto round = [&](int* passes) {
    *passes = 0;
    while (!cp.driftStep(ControlPlane::Clock::now(), &found))
      if (++*passes > 10000) return false;
    return true;
  };
  ASSERT_TRUE(round(&passes));
  EXPECT_EQ(found, "");
  EXPECT_GE(passes, 2) << "about 2,200 entries in chunks of " << DriftScan::kChunk;
  size_t read = cp.driftEntriesRead();
  EXPECT_GT(read, 2000u);
  // A master and a backend deleted behind the agent's back.
  ferry_svc_key master{};
  dp->services().forEach([&](const ferry_svc_key& k, const ferry_svc_value&) {
    if (k.slot == 0) master = k;
  });
  ASSERT_TRUE(dp->services().erase(master));
  ASSERT_TRUE(round(&passes));
  EXPECT_NE(found.find("services: "), std::string::npos) << found;
  EXPECT_NE(found.find("1 frontends missing or changed"), std::string::npos) << found;
  ferry_svc_value v{};
  EXPECT_TRUE(dp->services().lookup(master, &v)) << "the master was not written again";
  nlohmann::json verify = cp.verify(nullptr, "cluster.local");
  EXPECT_TRUE(verify["ok"].get<bool>()) << verify.dump();
  ASSERT_TRUE(round(&passes));
  EXPECT_EQ(found, "") << "a second round after the repair";
}

}  // namespace
}  // namespace ferry
