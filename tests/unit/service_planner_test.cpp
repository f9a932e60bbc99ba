// The incremental planner against the full planner: random cluster edits
// (tests/model/random_cluster.h) go through FileTracker -> ClusterModel ->
// ServicePlanner::update, each delta is applied to in-memory maps, and
// after every step the maps must hold exactly what a full plan of a
// from-scratch snapshot asks for.
#include <gtest/gtest.h>

#include <cstring>

#include "../model/random_cluster.h"
#include "dataplane/service_planner.h"
#include "dns/records.h"
#include "model/cluster_model.h"

namespace ferry {
namespace {

// The BPF maps as plain maps, keyed by bytes (the kernel compares keys bytewise).
struct FakeMaps {
  std::map<std::string, ferry_svc_value> svc;
  std::map<uint32_t, ferry_backend> backends;
  std::set<std::string> ranges;
  std::map<std::pair<uint32_t, uint32_t>, uint8_t> members;  // ferry_members
  std::map<uint32_t, std::vector<uint32_t>> maglev;  // svc id -> the table's backend ids

  template <typename T>
  static std::string bytes(const T& v) {
    return std::string(reinterpret_cast<const char*>(&v), sizeof v);
  }
  void apply(const MapDelta& d) {
    for (const auto& [id, b] : d.backendUpserts) backends[id] = b;
    for (const auto& k : d.srcRangeUpserts) ranges.insert(bytes(k));
    for (size_t i = 0; i < d.memberUpserts.size(); ++i) {
      const auto& k = d.memberUpserts[i];
      members[{k.svc_id, k.backend_id}] = d.memberValues.at(i);
    }
    for (const auto& u : d.maglevUpserts) {
      auto& ids = maglev[u.svcId];
      ids.clear();
      for (const auto& [bk, id] : u.backends) ids.push_back(id);
    }
    for (const auto& u : d.slotUpserts) svc[bytes(u.key)] = u.value;
    for (const auto& u : d.masterUpserts) svc[bytes(u.key)] = u.value;
    for (const auto& k : d.masterDeletes) svc.erase(bytes(k));
    for (const auto& k : d.slotDeletes) svc.erase(bytes(k));
    for (uint32_t id : d.maglevDeletes) maglev.erase(id);
    for (uint32_t id : d.backendDeletes) backends.erase(id);
    for (const auto& k : d.srcRangeDeletes) ranges.erase(bytes(k));
    for (const auto& k : d.memberDeletes) members.erase({k.svc_id, k.backend_id});
  }
  // What MapWriter::readBack would return.
  ProgrammedState readBack() const {
    ProgrammedState st;
    std::map<FrontendKey, std::map<uint16_t, uint32_t>> slots;
    for (const auto& [kb, v] : svc) {
      ferry_svc_key k;
      std::memcpy(&k, kb.data(), sizeof k);
      FrontendKey fk = fromSvcKey(k);
      if (k.slot == 0) {
        st.frontends[fk].svcId = v.svc_id;
        st.frontends[fk].count = v.count;
        st.frontends[fk].flags = v.flags;
        st.frontends[fk].affinity = v.affinity_timeout_s;
      } else {
        slots[fk][k.slot] = v.backend_id;
        st.frontends[fk];
      }
    }
    for (auto& [fk, pf] : st.frontends) {
      auto& s = slots[fk];
      uint16_t last = s.empty() ? 0 : s.rbegin()->first;
      for (uint16_t i = 1; i <= last; ++i) pf.slots.push_back(s.count(i) ? s[i] : 0);
    }
    for (const auto& kb : ranges) {
      ferry_src_range_key k;
      std::memcpy(&k, kb.data(), sizeof k);
      st.srcRanges.insert(fromSrcRangeKey(k));
    }
    for (const auto& [id, b] : backends) st.backends[fromBackend(b)] = ProgrammedBackend{id, b.flags};
    for (const auto& [m, v] : members) {
      st.members.insert(m);
      if (!(v & FERRY_MEMBER_NEW)) st.keptOnly.insert(m);
    }
    st.maglev = maglev;
    return st;
  }
};

bool sameDesired(const Desired& a, const Desired& b, std::string* why) {
  if (a.backendFlags != b.backendFlags) return *why = "backend flags differ", false;
  if (a.frontends.size() != b.frontends.size()) return *why = "frontend count differs", false;
  for (const auto& [fk, fe] : a.frontends) {
    auto it = b.frontends.find(fk);
    if (it == b.frontends.end()) return *why = "frontend " + fk.str() + " missing", false;
    if (fe.backends != it->second.backends || fe.flags != it->second.flags ||
        fe.sourceRanges != it->second.sourceRanges || fe.owner != it->second.owner ||
        fe.affinityTimeout != it->second.affinityTimeout)
      return *why = "frontend " + fk.str() + " differs", false;
  }
  return true;
}

// DNS records kept per service are checked against a full rebuild too.
TEST(ServicePlanner, RandomSequencesProgramWhatAFullPlanWould) {
  uint64_t seed = test::envOr("FERRY_RANDOM_SEED", 7);
  int steps = int(test::envOr("FERRY_RANDOM_STEPS", 300));
  for (uint64_t s = seed; s < seed + 10; ++s) {
    test::Gen g(s);
    MemoryAllocationStore store;
    BuildOptions opts = test::options("198.19.0.0/28");
    opts.nodePortMin = 30000;
    opts.nodePortMax = 30009;
    ClusterModel model(opts, store);
    FileTracker tracker;
    ServicePlanner planner("n1");
    FakeMaps maps;
    maps.apply(planner.reset(model.snapshot(), {}));
    auto dns = DnsRecords::buildIncremental(model.snapshot(), "cluster.local", 5, 1);
    std::map<std::string, std::string> files;
    for (int step = 0; step < steps; ++step) {
      ChangeSet cs = model.apply(tracker.apply(test::randomStep(g, files)));
      maps.apply(planner.update(model.snapshot(), cs.services));
      for (const std::string& key : cs.services) {
        auto it = model.snapshot().services.find(key);
        dns->setService(key, it == model.snapshot().services.end() ? nullptr : &it->second);
      }
      ASSERT_TRUE(DnsRecords::build(model.snapshot(), "cluster.local", 5, 1)->sameContent(*dns))
          << "DNS records, seed " << s << " step " << step;
      ClusterSnapshot full;
      ASSERT_TRUE(model.verify(&full).empty()) << "seed " << s << " step " << step;
      Desired want = desiredFromSnapshot(full, "n1");
      std::string why;
      ASSERT_TRUE(sameDesired(planner.desired(), want, &why))
          << "seed " << s << " step " << step << ": " << why;
      ProgrammedState inMaps = maps.readBack();
      ASSERT_EQ(inMaps.frontends, planner.programmed().frontends) << "seed " << s << " step " << step;
      ASSERT_EQ(inMaps.backends, planner.programmed().backends) << "seed " << s << " step " << step;
      ASSERT_EQ(inMaps.srcRanges, planner.programmed().srcRanges) << "seed " << s << " step " << step;
      ASSERT_EQ(inMaps.members, planner.programmed().members) << "seed " << s << " step " << step;
      ASSERT_EQ(inMaps.keptOnly, planner.programmed().keptOnly) << "seed " << s << " step " << step;
      ASSERT_EQ(inMaps.maglev, planner.programmed().maglev) << "seed " << s << " step " << step;
      ProgrammedState after;
      ASSERT_EQ(planDelta(inMaps, want, &after).size(), 0u) << "seed " << s << " step " << step;
    }
  }
}

}  // namespace
}  // namespace ferry
