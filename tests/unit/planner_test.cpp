// The map planner: desired entries from a snapshot and minimal, ordered
// deltas between programmed and desired state.
#include <gtest/gtest.h>

#include "dataplane/planner.h"
#include "dataplane/service_planner.h"

namespace ferry {
namespace {

IpAddr ip(const char* s) { return *IpAddr::parse(s); }

Desired oneService(std::vector<const char*> backends, const char* vip = "198.19.0.10") {
  Desired d;
  FrontendKey fk{ip(vip), 80, 6, FERRY_SCOPE_CLUSTER};
  auto& fe = d.frontends[fk];
  fe.owner = "Service default/web port (80/TCP)";
  for (const char* b : backends) {
    BackendKey bk{ip(b), 8080, 6};
    fe.backends.push_back(bk);
    d.backendFlags[bk] = 0;
  }
  std::sort(fe.backends.begin(), fe.backends.end());
  return d;
}

TEST(RelayoutSlots, KeepsSurvivorsInPlace) {
  struct Case {
    std::vector<uint32_t> old, wanted, expect;
  } cases[] = {
      {{}, {1, 2, 3}, {1, 2, 3}},
      {{1, 2, 3}, {1, 2, 3}, {1, 2, 3}},
      {{1, 2, 3}, {1, 3}, {1, 3}},        // tail moves into the hole
      {{1, 2, 3, 4}, {2, 3, 4}, {4, 2, 3}},
      {{1, 2, 3}, {1, 3, 9}, {1, 9, 3}},  // new one fills the hole
      {{1, 2, 3}, {1, 2, 3, 9}, {1, 2, 3, 9}},
      {{1, 2, 3}, {}, {}},
      {{1, 0, 3}, {1, 3}, {1, 3}},        // hole left by a crash
      {{1, 3, 3}, {1, 3}, {1, 3}},        // duplicate left by a crash
  };
  for (const auto& c : cases) EXPECT_EQ(relayoutSlots(c.old, c.wanted), c.expect);
}

TEST(PlanDelta, NewServiceWritesBackendsSlotsThenMaster) {
  ProgrammedState cur, next;
  MapDelta d = planDelta(cur, oneService({"198.18.129.2", "198.18.129.3"}), &next);
  EXPECT_EQ(d.backendUpserts.size(), 2u);
  ASSERT_EQ(d.slotUpserts.size(), 2u);
  EXPECT_EQ(d.slotUpserts[0].key.slot, 1);
  EXPECT_EQ(d.slotUpserts[1].key.slot, 2);
  ASSERT_EQ(d.masterUpserts.size(), 1u);
  EXPECT_EQ(d.masterUpserts[0].value.count, 2);
  EXPECT_EQ(d.masterUpserts[0].key.slot, 0);
  EXPECT_EQ(d.masterUpserts[0].owner, "Service default/web port (80/TCP)");
  EXPECT_TRUE(d.masterDeletes.empty() && d.slotDeletes.empty() && d.backendDeletes.empty());
  EXPECT_EQ(next.backends.size(), 2u);
  EXPECT_EQ(next.nextBackendId, 3u);
}

TEST(PlanDelta, SameInputGivesEmptyDelta) {
  ProgrammedState s0, s1, s2;
  Desired want = oneService({"198.18.129.2", "198.18.129.3"});
  planDelta(s0, want, &s1);
  MapDelta d = planDelta(s1, want, &s2);
  EXPECT_EQ(d.size(), 0u);
  EXPECT_EQ(s1, s2);
}

TEST(PlanDelta, RemovingOneEndpointTouchesOnlyWhatDiffers) {
  ProgrammedState s0, s1, s2;
  planDelta(s0, oneService({"198.18.129.2", "198.18.129.3", "198.18.129.4"}), &s1);
  MapDelta d = planDelta(s1, oneService({"198.18.129.2", "198.18.129.4"}), &s2);
  // slot 2 (.3) gets .4 from slot 3; count 3 -> 2; slot 3 and backend .3 go.
  ASSERT_EQ(d.slotUpserts.size(), 1u);
  EXPECT_EQ(d.slotUpserts[0].key.slot, 2);
  EXPECT_EQ(d.slotUpserts[0].value.backend_id, s1.backends.at({ip("198.18.129.4"), 8080, 6}).id);
  ASSERT_EQ(d.masterUpserts.size(), 1u);
  EXPECT_EQ(d.masterUpserts[0].value.count, 2);
  ASSERT_EQ(d.slotDeletes.size(), 1u);
  EXPECT_EQ(d.slotDeletes[0].slot, 3);
  ASSERT_EQ(d.backendDeletes.size(), 1u);
  EXPECT_EQ(d.backendDeletes[0], s1.backends.at({ip("198.18.129.3"), 8080, 6}).id);
  EXPECT_TRUE(d.backendUpserts.empty());
}

TEST(PlanDelta, AddingAnEndpointKeepsIdsAndSlots) {
  ProgrammedState s0, s1, s2;
  planDelta(s0, oneService({"198.18.129.2"}), &s1);
  MapDelta d = planDelta(s1, oneService({"198.18.129.2", "198.18.129.9"}), &s2);
  EXPECT_EQ(d.backendUpserts.size(), 1u);
  ASSERT_EQ(d.slotUpserts.size(), 1u);
  EXPECT_EQ(d.slotUpserts[0].key.slot, 2);
  EXPECT_EQ(s2.backends.at({ip("198.18.129.2"), 8080, 6}).id,
            s1.backends.at({ip("198.18.129.2"), 8080, 6}).id);
}

TEST(PlanDelta, RemovedServiceDeletesMasterBeforeSlots) {
  ProgrammedState s0, s1, s2;
  planDelta(s0, oneService({"198.18.129.2"}), &s1);
  MapDelta d = planDelta(s1, Desired{}, &s2);
  ASSERT_EQ(d.masterDeletes.size(), 1u);
  ASSERT_EQ(d.slotDeletes.size(), 1u);
  EXPECT_EQ(d.backendDeletes.size(), 1u);
  EXPECT_TRUE(s2.frontends.empty() && s2.backends.empty());
}

TEST(PlanDelta, NoEndpointsStillProgramsAMasterWithCountZero) {
  ProgrammedState s0, s1;
  MapDelta d = planDelta(s0, oneService({}), &s1);
  ASSERT_EQ(d.masterUpserts.size(), 1u);
  EXPECT_EQ(d.masterUpserts[0].value.count, 0);
}

TEST(PlanDelta, RepairsMasterCountLeftBehindByACrash) {
  ProgrammedState s0, s1, s2;
  Desired want = oneService({"198.18.129.2", "198.18.129.3"});
  planDelta(s0, want, &s1);
  s1.frontends.begin()->second.count = 1;  // slots written, master not
  MapDelta d = planDelta(s1, want, &s2);
  ASSERT_EQ(d.masterUpserts.size(), 1u);
  EXPECT_EQ(d.masterUpserts[0].value.count, 2);
}

TEST(DesiredFromSnapshot, UsesReadyEndpointsOfTheFamilyAndMarksLocalOnes) {
  ClusterSnapshot snap;
  Service svc;
  svc.ns = "default";
  svc.name = "web";
  svc.clusterIPs = {ip("198.19.0.10")};
  ServicePort sp;
  sp.name = "http";
  sp.port = 80;
  sp.endpoints = {
      {ip("198.18.129.2"), 8080, true, true, false, "node1", "", "", {}, {}},
      {ip("198.18.130.2"), 8080, true, true, false, "node2", "", "", {}, {}},
      {ip("198.18.129.3"), 8080, false, false, false, "node1", "", "", {}, {}},  // not ready
      {ip("2001:db8:1:1::2"), 8080, true, true, false, "node1", "", "", {}, {}},  // other family
  };
  svc.ports = {sp};
  snap.services["default/web"] = svc;
  Service headless = svc;
  headless.name = "db";
  headless.headless = true;
  snap.services["default/db"] = headless;

  Desired d = desiredFromSnapshot(snap, "node1");
  ASSERT_EQ(d.frontends.size(), 1u);
  const auto& fe = d.frontends.begin()->second;
  ASSERT_EQ(fe.backends.size(), 2u);
  EXPECT_EQ(fe.owner, "Service default/web port http (80/TCP)");
  EXPECT_EQ(d.backendFlags.at({ip("198.18.129.2"), 8080, 6}), FERRY_BE_F_LOCAL);
  EXPECT_EQ(d.backendFlags.at({ip("198.18.130.2"), 8080, 6}), 0);
}

}  // namespace
}  // namespace ferry

namespace ferry {
namespace {

Service nodePortService(bool local) {
  Service svc;
  svc.ns = "default";
  svc.name = "web";
  svc.type = ServiceType::NodePort;
  svc.externalTrafficLocal = local;
  svc.clusterIPs = {ip("198.19.0.10")};
  svc.externalIPs = {ip("198.18.0.210")};
  ServicePort sp;
  sp.name = "http";
  sp.port = 8080;
  sp.nodePort = 32618;
  sp.endpoints = {
      {ip("198.18.129.2"), 8080, true, true, false, "node1", "", "", {}, {}},
      {ip("198.18.130.2"), 8080, true, true, false, "node2", "", "", {}, {}},
  };
  svc.ports = {sp};
  return svc;
}

TEST(DesiredFromSnapshot, NodePortAndExternalIpFrontendsUnderPolicyCluster) {
  ClusterSnapshot snap;
  snap.services["default/web"] = nodePortService(false);
  Desired d = desiredFromSnapshot(snap, "node1");
  ASSERT_EQ(d.frontends.size(), 3u);
  FrontendKey np{nodePortAddr(true), 32618, 6, FERRY_SCOPE_EXTERNAL};
  FrontendKey ext{ip("198.18.0.210"), 8080, 6, FERRY_SCOPE_EXTERNAL};
  ASSERT_TRUE(d.frontends.count(np));
  ASSERT_TRUE(d.frontends.count(ext));
  EXPECT_EQ(d.frontends.at(np).backends.size(), 2u);
  EXPECT_EQ(d.frontends.at(np).flags, 0);
  EXPECT_EQ(d.frontends.at(np).owner,
            "Service default/web port http (8080/TCP) nodePort 32618");
  EXPECT_EQ(nodePortAddr(true).str(), "0.0.0.0");
}

TEST(DesiredFromSnapshot, PolicyLocalKeepsOnlyThisNodesEndpointsOnExternalFrontends) {
  ClusterSnapshot snap;
  snap.services["default/web"] = nodePortService(true);
  Desired d = desiredFromSnapshot(snap, "node2");
  FrontendKey np{nodePortAddr(true), 32618, 6, FERRY_SCOPE_EXTERNAL};
  FrontendKey cip{ip("198.19.0.10"), 8080, 6, FERRY_SCOPE_CLUSTER};
  ASSERT_EQ(d.frontends.at(np).backends.size(), 1u);
  EXPECT_EQ(d.frontends.at(np).backends[0].addr, ip("198.18.130.2"));
  EXPECT_EQ(d.frontends.at(np).flags, FERRY_SVC_F_LOCAL);
  EXPECT_EQ(d.frontends.at(cip).backends.size(), 2u) << "the ClusterIP keeps every endpoint";
}

TEST(PlanDelta, PolicyChangeRewritesTheMasterFlags) {
  ClusterSnapshot snap;
  snap.services["default/web"] = nodePortService(false);
  ProgrammedState s0, s1, s2;
  planDelta(s0, desiredFromSnapshot(snap, "node1"), &s1);
  snap.services["default/web"] = nodePortService(true);
  MapDelta d = planDelta(s1, desiredFromSnapshot(snap, "node1"), &s2);
  bool sawLocalMaster = false;
  for (const auto& u : d.masterUpserts)
    if (u.value.flags == FERRY_SVC_F_LOCAL && u.value.count == 1) sawLocalMaster = true;
  EXPECT_TRUE(sawLocalMaster);
}

}  // namespace
}  // namespace ferry

namespace ferry {
namespace {

TEST(PlanDelta, SourceRangesAreWrittenBeforeTheirFlagAndRemovedAfter) {
  Desired want = oneService({"198.18.129.2"}, "198.18.0.201");
  auto& fe = want.frontends.begin()->second;
  fe.sourceRanges = {*IpPrefix::parse("198.18.0.100/30")};
  ProgrammedState s0, s1, s2;
  MapDelta d = planDelta(s0, want, &s1);
  ASSERT_EQ(d.srcRangeUpserts.size(), 1u);
  EXPECT_EQ(d.srcRangeUpserts[0].prefixlen, 32u + 96 + 30);
  EXPECT_EQ(d.srcRangeUpserts[0].svc_id, d.masterUpserts[0].value.svc_id);
  EXPECT_EQ(d.masterUpserts[0].value.flags, FERRY_SVC_F_SRC_RANGES);
  auto back = fromSrcRangeKey(d.srcRangeUpserts[0]);
  EXPECT_EQ(back.second.str(), "198.18.0.100/30");

  fe.sourceRanges.clear();
  d = planDelta(s1, want, &s2);
  EXPECT_EQ(d.srcRangeDeletes.size(), 1u);
  ASSERT_EQ(d.masterUpserts.size(), 1u);
  EXPECT_EQ(d.masterUpserts[0].value.flags, 0);
}

}  // namespace
}  // namespace ferry

namespace ferry {
namespace {

TEST(DesiredFromSnapshot, LoadBalancerAddressIsAnExternalFrontendWithSourceRanges) {
  ClusterSnapshot snap;
  Service svc = nodePortService(true);
  svc.type = ServiceType::LoadBalancer;
  svc.externalIPs.clear();
  svc.loadBalancerIngress = {ip("198.18.0.201")};
  svc.loadBalancerSourceRanges = {*IpPrefix::parse("198.18.0.100/32")};
  snap.services["default/web"] = svc;
  Desired d = desiredFromSnapshot(snap, "node1");
  FrontendKey lb{ip("198.18.0.201"), 8080, 6, FERRY_SCOPE_EXTERNAL};
  ASSERT_TRUE(d.frontends.count(lb));
  EXPECT_EQ(d.frontends.at(lb).flags, FERRY_SVC_F_LOCAL);
  ASSERT_EQ(d.frontends.at(lb).sourceRanges.size(), 1u);
  ASSERT_EQ(d.frontends.at(lb).backends.size(), 1u);
  FrontendKey np{nodePortAddr(true), 32618, 6, FERRY_SCOPE_EXTERNAL};
  EXPECT_TRUE(d.frontends.at(np).sourceRanges.empty()) << "source ranges apply to the LB address";
}

// Memberships follow slots per frontend: a backend that leaves one
// service but stays in another keeps its id (and its backend entry) and
// loses only that service's membership, which is what conntrack checks.
TEST(PlanDelta, MembershipFollowsEachFrontendsBackends) {
  Desired both = oneService({"198.18.129.2"}, "198.19.0.10");
  Desired keep = oneService({"198.18.129.2"}, "198.19.0.11");
  both.frontends.insert(keep.frontends.begin(), keep.frontends.end());
  ProgrammedState s0, s1, s2;
  MapDelta d = planDelta(s0, both, &s1);
  ASSERT_EQ(d.memberUpserts.size(), 2u);
  EXPECT_EQ(s1.members.size(), 2u);
  EXPECT_NE(d.memberUpserts[0].svc_id, d.memberUpserts[1].svc_id);
  EXPECT_EQ(d.memberUpserts[0].backend_id, d.memberUpserts[1].backend_id);

  Desired left = both;  // the first service's endpoint list empties
  left.frontends.begin()->second.backends.clear();
  d = planDelta(s1, left, &s2);
  EXPECT_TRUE(d.backendDeletes.empty()) << "the backend stays (the other service has it)";
  ASSERT_EQ(d.memberDeletes.size(), 1u);
  EXPECT_EQ(d.memberDeletes[0].svc_id, s1.frontends.begin()->second.svcId);
  EXPECT_TRUE(d.memberUpserts.empty());
  EXPECT_EQ(s2.members.size(), 1u);
}

}  // namespace
}  // namespace ferry

namespace ferry {
namespace {

// issue 14: which endpoints fill a frontend's slots and which only keep
// their established flows (ferry_members).
Service conditionsService() {
  Service svc;
  svc.ns = "default";
  svc.name = "web";
  svc.type = ServiceType::NodePort;
  svc.clusterIPs = {ip("198.19.0.10")};
  ServicePort sp;
  sp.port = 80;
  sp.nodePort = 30080;
  sp.endpoints = {
      {ip("198.18.129.2"), 8080, true, true, false, "node1", "", "", {}, {}},
      {ip("198.18.129.3"), 8080, false, true, true, "node1", "", "", {}, {}},    // terminating
      {ip("198.18.130.2"), 8080, true, true, false, "node2", "", "", {}, {}},
      {ip("198.18.130.3"), 8080, false, false, false, "node2", "", "", {}, {}},  // not ready
  };
  svc.ports = {sp};
  return svc;
}

std::vector<std::string> keys(const std::vector<BackendKey>& v) {
  std::vector<std::string> out;
  for (const BackendKey& b : v) out.push_back(b.addr.str());
  return out;
}

const FrontendKey kVip{ip("198.19.0.10"), 80, 6, FERRY_SCOPE_CLUSTER};
const FrontendKey kNodePort{nodePortAddr(true), 30080, 6, FERRY_SCOPE_EXTERNAL};
using V = std::vector<std::string>;

TEST(EndpointConditions, TerminatingEndpointsKeepFlowsButGetNoSlot) {
  ClusterSnapshot snap;
  snap.services["default/web"] = conditionsService();
  Desired d = desiredFromSnapshot(snap, "node1");
  EXPECT_EQ(keys(d.frontends.at(kVip).backends), V({"198.18.129.2", "198.18.130.2"}));
  EXPECT_EQ(keys(d.frontends.at(kVip).keep), V({"198.18.129.3"}));
  ProgrammedState s0, s1;
  planDelta(s0, d, &s1);
  uint32_t svcId = s1.frontends.at(kVip).svcId;
  EXPECT_EQ(s1.frontends.at(kVip).slots.size(), 2u);
  uint32_t term = s1.backends.at({ip("198.18.129.3"), 8080, 6}).id;
  EXPECT_TRUE(s1.members.count({svcId, term})) << "established flows stay";
  EXPECT_FALSE(s1.backends.count({ip("198.18.130.3"), 8080, 6})) << "not ready: no flows kept";
  EXPECT_EQ(s1.members.size(), 2u * 3u) << "ClusterIP and NodePort: two slots and one kept";
  // Affinity and Maglev must not send new flows to a kept-only member:
  // its ferry_members value is FERRY_MEMBER_KEEP, the slots' NEW.
  EXPECT_EQ(s1.keptOnly, (std::set<std::pair<uint32_t, uint32_t>>{
                             {svcId, term}, {s1.frontends.at(kNodePort).svcId, term}}));
}

// An endpoint that goes terminating keeps its membership but its value
// flips from NEW to KEEP (one upsert each), and back when it is ready again.
TEST(EndpointConditions, MemberValueFollowsSlotAndKeptTransitions) {
  ClusterSnapshot snap;
  snap.services["default/web"] = conditionsService();
  ServicePlanner p("node1");
  ProgrammedState empty;
  p.reset(snap, empty);
  auto& eps = snap.services["default/web"].ports[0].endpoints;
  eps[0].ready = false;  // 198.18.129.2 terminating: leaves the slots, stays a member
  eps[0].terminating = true;
  MapDelta d = p.update(snap, {"default/web"});
  uint32_t id = p.programmed().backends.at({ip("198.18.129.2"), 8080, 6}).id;
  size_t flipped = 0;
  for (size_t i = 0; i < d.memberUpserts.size(); ++i)
    if (d.memberUpserts[i].backend_id == id) {
      EXPECT_EQ(d.memberValues.at(i), FERRY_MEMBER_KEEP);
      ++flipped;
    }
  EXPECT_EQ(flipped, 2u) << "ClusterIP and NodePort";
  EXPECT_TRUE(d.memberDeletes.empty());
  eps[0].ready = true;
  eps[0].terminating = false;
  d = p.update(snap, {"default/web"});
  flipped = 0;
  for (size_t i = 0; i < d.memberUpserts.size(); ++i)
    if (d.memberUpserts[i].backend_id == id) {
      EXPECT_EQ(d.memberValues.at(i), FERRY_MEMBER_NEW);
      ++flipped;
    }
  EXPECT_EQ(flipped, 2u);
  ProgrammedState check;
  planDelta(p.programmed(), desiredFromSnapshot(snap, "node1"), &check);
  EXPECT_EQ(check.keptOnly, p.programmed().keptOnly);
}

TEST(EndpointConditions, IncrementalMembersFollowKeptBackends) {
  ClusterSnapshot snap;
  snap.services["default/web"] = conditionsService();
  ProgrammedState empty;
  ServicePlanner p("node1");
  p.reset(snap, empty);
  ProgrammedState full;
  planDelta(ProgrammedState{}, desiredFromSnapshot(snap, "node1"), &full);
  EXPECT_EQ(p.programmed().members.size(), full.members.size());
  // The terminating endpoint goes away: its membership is deleted.
  snap.services["default/web"].ports[0].endpoints.erase(
      snap.services["default/web"].ports[0].endpoints.begin() + 1);
  MapDelta d = p.update(snap, {"default/web"});
  EXPECT_EQ(d.memberDeletes.size(), 2u);  // the ClusterIP and NodePort frontends
  EXPECT_TRUE(d.slotUpserts.empty() && d.slotDeletes.empty());
  // Every ready endpoint goes terminating: they fill the slots.
  for (Endpoint& e : snap.services["default/web"].ports[0].endpoints)
    if (e.ready) e.ready = false, e.terminating = true;
  p.update(snap, {"default/web"});
  EXPECT_EQ(p.programmed().frontends.at(kVip).slots.size(), 2u);
  Desired want = desiredFromSnapshot(snap, "node1");
  ProgrammedState check;
  planDelta(p.programmed(), want, &check);
  EXPECT_EQ(check.members, p.programmed().members);
}

TEST(EndpointConditions, ExternalTrafficPolicyLocalFallsBackToLocalTerminating) {
  ClusterSnapshot snap;
  Service svc = conditionsService();
  svc.externalTrafficLocal = true;
  svc.ports[0].endpoints[0].ready = false;  // node1's ready one goes not ready
  snap.services["default/web"] = svc;
  Desired d = desiredFromSnapshot(snap, "node1");
  EXPECT_EQ(keys(d.frontends.at(kNodePort).backends), V({"198.18.129.3"}));
  EXPECT_EQ(d.frontends.at(kNodePort).flags, FERRY_SVC_F_LOCAL);
  EXPECT_EQ(keys(d.frontends.at(kVip).backends), V({"198.18.130.2"}));
}

TEST(InternalTrafficPolicy, LocalUsesThisNodesEndpointsAndDropsWithoutThem) {
  ClusterSnapshot snap;
  Service svc = conditionsService();
  svc.internalTrafficLocal = true;
  snap.services["default/web"] = svc;
  Desired d1 = desiredFromSnapshot(snap, "node1");
  EXPECT_EQ(keys(d1.frontends.at(kVip).backends), V({"198.18.129.2"}));
  EXPECT_EQ(d1.frontends.at(kVip).flags, FERRY_SVC_F_LOCAL);
  EXPECT_EQ(keys(d1.frontends.at(kNodePort).backends).size(), 2u) << "external: Cluster policy";
  Desired d3 = desiredFromSnapshot(snap, "node3");
  EXPECT_TRUE(d3.frontends.at(kVip).backends.empty());
  EXPECT_EQ(d3.frontends.at(kVip).flags, FERRY_SVC_F_LOCAL) << "drop: endpoints exist elsewhere";
  for (Endpoint& e : snap.services["default/web"].ports[0].endpoints) e.ready = e.serving = false;
  Desired none = desiredFromSnapshot(snap, "node3");
  EXPECT_EQ(none.frontends.at(kVip).flags, 0) << "no endpoint anywhere: reject, as kube-proxy";
}

TEST(Topology, NodeZoneLabelChangeReplansHintedServices) {
  ClusterSnapshot snap;
  Service svc = conditionsService();
  auto& eps = svc.ports[0].endpoints;
  eps[0].zoneHints = {"za"};
  eps[2].zoneHints = {"zb"};
  snap.services["default/web"] = svc;
  snap.nodes["node1"].name = "node1";
  ServicePlanner p("node1");
  p.reset(snap, ProgrammedState{});
  EXPECT_EQ(p.programmed().frontends.at(kVip).slots.size(), 2u) << "no zone label yet";
  snap.nodes["node1"].zone = "zb";
  MapDelta d = p.update(snap, {});
  EXPECT_EQ(p.programmed().frontends.at(kVip).slots.size(), 1u);
  EXPECT_EQ(p.programmed().frontends.at(kVip).slots[0],
            p.programmed().backends.at({ip("198.18.130.2"), 8080, 6}).id);
  EXPECT_FALSE(d.masterUpserts.empty());
}

}  // namespace
}  // namespace ferry
