// The agent's control plane with a loaded (unpinned) dataplane: a delta
// over the sliced-write threshold is written over several passes
// (ControlPlane::allowSlicedWrite / continueWrite, as Agent::sync drives
// it) and ends with the maps holding what the planner programmed.
// Needs root (BPF), as every test of scripts/test.sh.
#include <gtest/gtest.h>

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

TEST(ControlPlaneSlicedWrite, LargeDeltaIsWrittenOverSeveralPasses) {
  auto dp = Datapath::load(DatapathOptions{});
  ASSERT_TRUE(dp) << dp.status().message();
  MapWriter writer(**dp);
  MemoryAllocationStore store;
  BuildOptions opts;
  opts.serviceCidrs = {*IpPrefix::parse("198.19.0.0/16")};
  ControlPlane cp(opts, store, writer, "node1");
  FileTracker tracker;
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
  ProgrammedState inMaps = writer.readBack();
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
  EXPECT_EQ(writer.readBack().frontends.size(), 199u);
}

}  // namespace
}  // namespace ferry
