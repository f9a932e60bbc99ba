// The incremental model: object events in, the ClusterSnapshot kept up to
// date by recomputing only the services an event reaches (the role of
// kube-proxy's change trackers), with a from-scratch build as the checker.
//
//   SourceUpdate -> ObjectStore (+ indexes) -> per-service recompute -> ChangeSet
//
// Per event, what is recomputed:
//   Service added / modified / deleted   that service: allocation (one
//                                        transaction for the batch) and endpoints
//   Pod                                  services whose selector may pick it
//                                        (old and new labels): endpoints only
//   EndpointSlice / Endpoints            the service they belong to: endpoints only
//   Node                                 snapshot.nodes (L2 owners read them)
//   IPAddressPool                        the pools, and every LoadBalancer's address
// Services whose allocation failed or whose LoadBalancer address is
// pending are retried with every allocation transaction, as a full build
// would. Every allocation transaction also re-evaluates every
// LoadBalancer service's address (few; the shared-address rules need all).
#pragma once

#include <exception>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "model/allocation.h"
#include "model/builder.h"
#include "model/object_store.h"
#include "model/snapshot.h"

namespace ferry {

// What one apply() changed.
struct ChangeSet {
  std::set<std::string> services;  // snapshot services added, changed or removed (ns/name)
  bool nodes = false;              // snapshot.nodes changed
  bool pools = false;              // snapshot.pools changed
  bool errors = false;             // snapshot.errors changed
  size_t events = 0;               // object events applied
  size_t recomputed = 0;           // services recomputed (changed or not)
  bool allocated = false;          // an allocation transaction ran
};

class ClusterModel {
 public:
  ClusterModel(BuildOptions opts, AllocationStore& store) : opts_(std::move(opts)), alloc_(store) {}

  // Applies a source's update. Never throws (an internal error keeps the
  // previous state of what it was computing and is reported in errors).
  ChangeSet apply(const SourceUpdate& u);
  // Runs the allocation transaction again for the services that wait on
  // it (the record was locked, unreadable or unwritable: issue 11's retry
  // on a timer). Nothing when none wait.
  ChangeSet retryAllocations();
  // Before a large update is applied in slices: one allocation transaction
  // for the Services it adds or modifies (the last event of each), so that
  // the slices' transactions find their entries and the record is written
  // once, not once per slice. Only allocates (never releases); nothing
  // else moves. Failures are left to the slices' own transactions.
  void preallocate(const std::vector<ObjectEvent>& events);
  // New service CIDRs (Kubernetes mode: the ServiceCIDR objects changed):
  // every live service's allocation is checked again against them, as a
  // full build with the new options would (a ClusterIP outside every CIDR
  // is an error; the service keeps its last good programming).
  ChangeSet setServiceCidrs(std::vector<IpPrefix> cidrs);
  // The allocation record could not be used in the last transaction.
  bool recordFailed() const { return !recordErrors_.empty(); }

  const ClusterSnapshot& snapshot() const { return snap_; }
  const ObjectStore& objects() const { return store_; }
  const BuildOptions& options() const { return opts_; }

  // The from-scratch check: builds a snapshot from the store's objects
  // (on a copy of the allocation record, so nothing is written) and lists
  // every difference from the incremental snapshot, empty when equal.
  // *full receives the from-scratch snapshot.
  std::vector<std::string> verify(ClusterSnapshot* full = nullptr) const;

 private:
  void recompute(const Touched& t, ChangeSet* cs);
  void allocate(const std::set<std::string>& keys, ChangeSet* cs);
  void refreshEndpoints(const std::string& key, ChangeSet* cs);
  void setService(const std::string& key, std::optional<Service> s, ChangeSet* cs);
  void rebuildPools(ChangeSet* cs);
  void rebuildErrors();
  // Runs `step` (a recompute or an allocation pass); an exception (only
  // resource exhaustion gets one) becomes the model's one "internal error"
  // and what was computed so far stays. Rebuilds the error list when
  // anything set cs->errors.
  template <typename Step>
  void guarded(ChangeSet* cs, Step&& step) {
    try {
      step();
    } catch (const std::exception& e) {
      recordErrors_ = {{"", "", "", std::string("internal error applying changes: ") + e.what()}};
      cs->errors = true;
    }
    if (cs->errors) rebuildErrors();
  }

  BuildOptions opts_;
  AllocationStore& alloc_;
  ObjectStore store_;
  ClusterSnapshot snap_;
  std::map<std::string, std::vector<ManifestError>> sourceErrors_;  // by origin
  std::map<std::string, std::vector<ManifestError>> serviceErrors_;  // allocation / LB
  std::map<std::string, std::vector<ManifestError>> endpointErrors_;
  std::vector<ManifestError> poolErrors_, recordErrors_;
  std::set<std::string> retry_;  // allocation failed, or LoadBalancer pending
  std::set<std::string> loadBalancers_;  // LoadBalancer services in the snapshot
};

// Differences between two snapshots ("Service default/web: ports differ"),
// errors compared as sets; empty when equal.
std::vector<std::string> diffSnapshots(const ClusterSnapshot& incremental,
                                       const ClusterSnapshot& full);

}  // namespace ferry
