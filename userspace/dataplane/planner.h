// From a ClusterSnapshot to BPF map entries, as a pure computation:
// what the maps should hold (desired), what they hold (ProgrammedState,
// read back from pinned maps at start), and the ordered delta between the
// two. Only the MapWriter applies deltas; nothing here touches the kernel.
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

#include <ferry/abi.h>

#include "model/ip.h"
#include "model/snapshot.h"

namespace ferry {

struct FrontendKey {
  IpAddr addr;
  uint16_t port = 0;  // host order
  uint8_t proto = 0;
  uint8_t scope = FERRY_SCOPE_CLUSTER;
  auto operator<=>(const FrontendKey&) const = default;
  bool operator==(const FrontendKey&) const = default;
  std::string str() const;
};

struct BackendKey {
  IpAddr addr;
  uint16_t port = 0;  // host order
  uint8_t proto = 0;
  auto operator<=>(const BackendKey&) const = default;
  bool operator==(const BackendKey&) const = default;
};

// Hash of a BackendKey, for the planner's unordered indexes (where key
// order is not part of the result).
struct BackendKeyHash {
  size_t operator()(const BackendKey& k) const noexcept;
};

struct DesiredFrontend {
  std::string owner;                  // "Service default/web port http (80/TCP)"
  std::vector<BackendKey> backends;   // for new flows (endpoint_sets.h), sorted
  // Not for new flows, but their established flows stay (members, no
  // slot): terminating endpoints, and usable ones topology left out.
  std::vector<BackendKey> keep;       // sorted, disjoint from backends
  uint16_t flags = 0;                 // FERRY_SVC_F_*
  std::vector<IpPrefix> sourceRanges;  // loadBalancerSourceRanges (LB addresses)
  uint32_t affinityTimeout = 0;        // sessionAffinity ClientIP seconds; 0: none
};

struct Desired {
  std::map<FrontendKey, DesiredFrontend> frontends;
  std::map<BackendKey, uint8_t> backendFlags;  // FERRY_BE_F_*
};

// The dataplane's view of the cluster for this node: ClusterIPs, and the
// external frontends (NodePorts on the family's unspecified address,
// externalIPs) with externalTrafficPolicy applied.
// Node labels (topology zone) come from snap.nodes.
Desired desiredFromSnapshot(const ClusterSnapshot& snap, const std::string& nodeName);

// One service's frontends and backend flags added to `d` (what
// desiredFromSnapshot does per service, in key order). A frontend key
// already in `d` is replaced whole: of two services claiming one
// frontend, the later in key order wins.
// `nodes`: the snapshot's nodes, for topology (null: no node has a zone).
void addServiceFrontends(Desired& d, const std::string& key, const Service& svc,
                         const std::string& nodeName,
                         const std::map<std::string, Node>* nodes = nullptr);

// The selection algorithm of external frontends when a service has no
// service.ferry.io/lb-algorithm annotation (--lb-algorithm): Maglev when
// true. Process-wide, set once at start before any planning.
void setDefaultMaglev(bool maglev);

// The unspecified address of a family as stored in NodePort frontends.
IpAddr nodePortAddr(bool v4);

struct ProgrammedFrontend {
  uint32_t svcId = 0;
  uint16_t count = 0;           // the master entry's count
  uint16_t flags = 0;           // the master entry's flags
  uint32_t affinity = 0;        // the master entry's affinity_timeout_s
  std::vector<uint32_t> slots;  // slot i+1 -> backend id
  bool operator==(const ProgrammedFrontend&) const = default;
};

struct ProgrammedBackend {
  uint32_t id = 0;
  uint8_t flags = 0;
  bool operator==(const ProgrammedBackend&) const = default;
};

// What the maps hold. Rebuilt from the maps on start, so ids survive
// restarts and nothing is flushed.
struct ProgrammedState {
  std::map<FrontendKey, ProgrammedFrontend> frontends;
  std::map<BackendKey, ProgrammedBackend> backends;
  std::set<std::pair<uint32_t, IpPrefix>> srcRanges;  // (svc id, allowed prefix)
  // (svc id, backend id) of every slot and kept backend: ferry_members, what conntrack
  // entries are checked against (a flow leaves a backend that left its
  // frontend, even when the backend stays in another service).
  std::set<std::pair<uint32_t, uint32_t>> members;
  // The members kept only for established flows (a terminating endpoint
  // without a slot): value FERRY_MEMBER_KEEP, which affinity and Maglev
  // skip; every other member is FERRY_MEMBER_NEW. A subset of `members`.
  std::set<std::pair<uint32_t, uint32_t>> keptOnly;
  // Maglev tables (ferry_maglev): svc id -> the backend ids the table was
  // built from, in backend key order (what the table is a function of).
  std::map<uint32_t, std::vector<uint32_t>> maglev;
  uint32_t nextBackendId = 1;
  uint32_t nextSvcId = 1;
  bool operator==(const ProgrammedState&) const = default;
};

// Ordered so that a reader never sees a dangling reference: backends,
// memberships, then slots, then masters are written; then removed
// masters, stale slots, memberships and unused backends are deleted.
struct MapDelta {
  struct Upsert {
    ferry_svc_key key;
    ferry_svc_value value;
    std::string owner;
  };
  std::vector<std::pair<uint32_t, ferry_backend>> backendUpserts;
  std::vector<ferry_src_range_key> srcRangeUpserts;  // before masters name them
  std::vector<ferry_src_range_key> srcRangeDeletes;  // after masters dropped them
  std::vector<ferry_member_key> memberUpserts;        // before slots name them
  std::vector<uint8_t> memberValues;                  // FERRY_MEMBER_*, one per upsert
  std::vector<ferry_member_key> memberDeletes;        // after slots dropped them
  // A Maglev table to (re)build from these backends (key order, with ids):
  // after memberships, before the masters that set FERRY_SVC_F_MAGLEV.
  struct MaglevUpsert {
    uint32_t svcId = 0;
    std::vector<std::pair<BackendKey, uint32_t>> backends;
    std::string owner;
  };
  std::vector<MaglevUpsert> maglevUpserts;
  std::vector<uint32_t> maglevDeletes;  // after masters, before memberships
  std::vector<Upsert> slotUpserts;
  std::vector<Upsert> masterUpserts;
  std::vector<ferry_svc_key> masterDeletes;
  std::vector<ferry_svc_key> slotDeletes;
  std::vector<uint32_t> backendDeletes;
  size_t size() const {
    return backendUpserts.size() + srcRangeUpserts.size() + srcRangeDeletes.size() +
           memberUpserts.size() + memberDeletes.size() + maglevUpserts.size() +
           maglevDeletes.size() +
           slotUpserts.size() + masterUpserts.size() +
           masterDeletes.size() + slotDeletes.size() + backendDeletes.size();
  }
};

// Computes the delta from `cur` to `want`; `next` receives the state the
// maps hold once the delta is applied.
MapDelta planDelta(const ProgrammedState& cur, const Desired& want, ProgrammedState* next);

// Plans one frontend (want == null: remove it) against `st`, whose
// backends must already hold every backend `want` names; updates `st` to
// what the maps hold once the delta is applied. The same per-frontend
// steps as planDelta, for the incremental planner (service_planner.h).
void planFrontend(ProgrammedState& st, const FrontendKey& fk, const DesiredFrontend* want,
                  MapDelta& delta);

// Slot layout that keeps surviving backends where they are: removed ones
// leave holes filled by new ones first, then by the tail.
std::vector<uint32_t> relayoutSlots(const std::vector<uint32_t>& old,
                                    const std::vector<uint32_t>& wanted);

// ABI conversions (the one place for byte order).
ferry_svc_key toSvcKey(const FrontendKey& f, uint16_t slot);
FrontendKey fromSvcKey(const ferry_svc_key& k);
ferry_backend toBackend(const BackendKey& b, uint8_t flags);
BackendKey fromBackend(const ferry_backend& b);
ferry_addr toAbiAddr(const IpAddr& a);
ferry_src_range_key toSrcRangeKey(uint32_t svcId, const IpPrefix& p);
std::pair<uint32_t, IpPrefix> fromSrcRangeKey(const ferry_src_range_key& k);

}  // namespace ferry
