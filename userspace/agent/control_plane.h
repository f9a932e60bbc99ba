// The agent's incremental control plane, in one object for the event
// loop: object events -> ClusterModel (per-service recompute) ->
// ServicePlanner (per-service map delta) -> MapWriter. It also keeps a
// record of what each change did, and runs the from-scratch check.
//
//   ControlPlane cp(opts, allocationStore, writer, node);
//   ChangeReport r = cp.apply(source.collect(), arrival);   // per change
//   cp.verify(dns)                                           // ferryctl debug verify
#pragma once

#include <chrono>
#include <deque>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "dataplane/drift.h"
#include "dataplane/service_planner.h"
#include "dataplane/writer.h"
#include "dns/records.h"
#include "model/cluster_model.h"

namespace ferry {

// What one change did (logged, and kept for `ferryctl get errors -o wide`).
struct ChangeReport {
  ChangeSet changes;
  size_t mapEntries = 0;     // map entries written or deleted
  int64_t waitUs = 0;        // from the first notification to the start of the work
  int64_t modelUs = 0, planUs = 0, mapsUs = 0;
  int64_t totalUs = 0;       // from the first notification to the last map write
  std::vector<std::string> failures;  // map writes that failed (then re-planned in full)
  bool loadBalancers = false;  // a LoadBalancer service or a node changed (announce, health)
  std::string at;              // RFC 3339 UTC
  nlohmann::json toJson() const;
  std::string summary() const;  // for the log
};

class ControlPlane {
 public:
  using Clock = std::chrono::steady_clock;

  // Nothing is read or written before the first apply(), which plans
  // everything against what the maps hold.
  ControlPlane(BuildOptions opts, AllocationStore& store, MapWriter& writer, std::string nodeName);

  // Applies one source update and writes the resulting map delta.
  // `arrival`: when the first notification of this change arrived.
  // With plan false (a slice of a larger update with more to come) only
  // the model moves; the services it changed are planned with the next
  // apply that plans, so the maps never see half of the initial list.
  ChangeReport apply(const SourceUpdate& u, Clock::time_point arrival, bool plan = true);
  // Deltas of more than `minEntries` map entries (0: none) planned by the
  // next apply() are written in slices (MapWriter::begin/step) instead of
  // at once: apply() returns with writing() true and the report
  // unfinished; continueWrite() writes on each pass of the event loop.
  void allowSlicedWrite(size_t minEntries) { slicedMin_ = minEntries; }
  bool writing() const { return writing_.has_value(); }
  // The map entries of the sliced write going on (0 if none).
  size_t writingEntries() const { return writing_ ? writing_->report.mapEntries : 0; }
  // Writes on until `deadline` (at least one chunk); once everything is
  // written (a failed entry re-plans everything against the maps, written
  // at once, as apply() does) returns the change's finished report.
  std::optional<ChangeReport> continueWrite(Clock::time_point deadline);
  // The allocation transaction again for services waiting on the record
  // (ClusterModel::retryAllocations), planned like any change (`plan` as
  // for apply()).
  ChangeReport retryAllocations(Clock::time_point arrival, bool plan = true);
  // The service CIDRs changed (ClusterModel::setServiceCidrs), planned like
  // any change.
  ChangeReport setServiceCidrs(std::vector<IpPrefix> cidrs, Clock::time_point arrival);
  bool recordFailed() const { return model_.recordFailed(); }
  // See ClusterModel::preallocate (before a large update goes in slices).
  void preallocate(const std::vector<ObjectEvent>& events) { model_.preallocate(events); }
  bool planned() const { return planned_; }
  // Re-reads the maps; when they differ from what the planner believes it
  // programmed (a second agent, bpftool, a failed write), plans everything
  // against what they hold and writes the difference. Returns what was
  // found ("" when nothing drifted).
  std::string repairDrift();
  // The drift check in slices (DriftScan): reads the maps on until
  // `deadline`; on the first entry that differs runs repairDrift(). Returns
  // true when a round is over, with *found what the repair found ("" when
  // the maps were as programmed); false when more is to read (nothing is
  // read while a sliced write goes on, or before the first plan).
  bool driftStep(Clock::time_point deadline, std::string* found);
  // Entries read by the drift rounds so far (for the log and tests).
  size_t driftEntriesRead() const { return driftRead_; }
  const ObjectStore& objects() const { return model_.objects(); }

  const ClusterSnapshot& snapshot() const { return model_.snapshot(); }
  const ProgrammedState& programmed() const { return planner_.programmed(); }
  // The LoadBalancer services and the nodes: all that L2 announcement and
  // healthCheckNodePort serving read.
  ClusterSnapshot loadBalancerView() const;
  // The latest changes, oldest first (at most kRecent).
  const std::deque<ChangeReport>& recent() const { return recent_; }
  static constexpr size_t kRecent = 32;

  // The from-scratch check: rebuilds the snapshot from the object store,
  // the desired map state from it, reads the maps back, and (with `dns`)
  // rebuilds the DNS records; every difference from the incremental state
  // is listed. {"ok": bool, "differences": [...], "services": n, ...}
  nlohmann::json verify(const DnsRecords* dns, const std::string& clusterDomain) const;

 private:
  const std::string& node() const { return node_; }
  ChangeReport finish(ChangeSet cs, Clock::time_point arrival, Clock::time_point t0, bool plan);

  std::string node_;
  ClusterModel model_;
  ServicePlanner planner_;
  MapWriter& writer_;
  bool planned_ = false;
  std::deque<ChangeReport> recent_;
  std::set<std::string> lbSeen_;  // LoadBalancer services after the last change
  std::set<std::string> unplanned_;  // changed by apply(plan = false)
  size_t slicedMin_ = 0;             // allowSlicedWrite, for the next apply only
  struct Writing {
    ChangeReport report;
    Clock::time_point arrival, planned;
  };
  std::optional<Writing> writing_;   // a delta being written in slices
  DriftScan drift_;                  // the drift round going on
  size_t driftRead_ = 0;
  void complete(ChangeReport& r, Clock::time_point arrival, Clock::time_point planned);
};

}  // namespace ferry
