// What the Kubernetes API source delivers: one event per object change, as
// client-go's informers see them (added / modified / deleted, the object as
// the apiserver sent it). Kept apart from the store's own event type (issue
// 12) on purpose: mapping one to the other is a field-by-field copy.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace ferry::k8s {

// One object change. `object` is the full object with apiVersion and kind
// filled in (the apiserver omits them on list items). For Deleted it is the
// last state the source knew (the watch's DELETED object, or, after a 410
// relist, the last version seen before the object disappeared).
struct ObjectEvent {
  enum Type { Added, Modified, Deleted };
  Type type = Added;
  std::string apiVersion;  // "v1", "discovery.k8s.io/v1"
  std::string kind;        // "Service", "EndpointSlice"
  std::string ns;          // empty for cluster-scoped objects (Node, ServiceCIDR)
  std::string name;
  std::string resourceVersion;
  nlohmann::json object;
};

// What EventQueue::drain() hands over: events in order, and `synced` when
// every registered resource has completed its initial list; the batch that
// first says synced already holds (or follows) every initial-list event, so
// a consumer may program the dataplane from then on without a flap.
struct EventBatch {
  std::vector<ObjectEvent> events;
  bool synced = false;
};

const char* eventTypeName(ObjectEvent::Type t);

}  // namespace ferry::k8s
