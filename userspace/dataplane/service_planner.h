// The incremental planner: per-service map deltas. It keeps each
// service's desired frontends, who claims every frontend key, and a
// reference count per backend, so a change to a few services plans only
// their frontends and the backends whose references changed (Cilium's
// load-balancer reconciler writes only changed rows the same way).
//
//   reset(snapshot, readBack())    full plan (start, after a failed write)
//   update(snapshot, changed keys) the per-service delta
//
// Both return a MapDelta in the writer's safe order (planner.h) and move
// the programmed state to what the maps hold once it is applied.
#pragma once

#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "dataplane/planner.h"

namespace ferry {

class ServicePlanner {
 public:
  explicit ServicePlanner(std::string nodeName) : node_(std::move(nodeName)) {}

  // Plans every service of `snap` against `programmed` (the maps' content).
  MapDelta reset(const ClusterSnapshot& snap, ProgrammedState programmed);
  // Plans the services in `changed` (ns/name; gone from snap = removed).
  MapDelta update(const ClusterSnapshot& snap, const std::set<std::string>& changed);

  const ProgrammedState& programmed() const { return st_; }
  // The desired state assembled from the per-service pieces (equal to
  // desiredFromSnapshot of the same snapshot; for the checker).
  Desired desired() const;

 private:
  struct BackendRef {
    uint32_t refs = 0, local = 0;
  };
  // One service's part of the desired state (what addServiceFrontends
  // gives), in sorted vectors rather than map nodes: 100,000 services x 10
  // backends made the per-service maps a large part of the planner's memory.
  struct Piece {
    std::vector<std::pair<FrontendKey, DesiredFrontend>> frontends;  // by key
    std::vector<std::pair<BackendKey, uint8_t>> backendFlags;        // by key
    const DesiredFrontend& at(const FrontendKey& fk) const;
  };
  void add(const std::string& key, const Service& svc, std::set<FrontendKey>* fks,
           std::set<BackendKey>* bks);
  void drop(const std::string& key, std::set<FrontendKey>* fks, std::set<BackendKey>* bks);
  const DesiredFrontend* winner(const FrontendKey& fk) const;

  std::string node_;
  ProgrammedState st_;
  std::map<std::string, Piece> pieces_;  // per service (ns/name)
  // The services claiming a frontend: pieces_' keys, sorted by name (the
  // last one wins).
  std::map<FrontendKey, std::vector<const std::string*>> owners_;
  std::map<BackendKey, BackendRef> refs_;
  // Topology: the snapshot's nodes while planning, the zone of every node
  // last planned with, and the services whose sets depend on them (a
  // Node label change re-plans those).
  const std::map<std::string, Node>* nodes_ = nullptr;
  std::map<std::string, std::string> zones_;
  std::set<std::string> topology_;
};

}  // namespace ferry
