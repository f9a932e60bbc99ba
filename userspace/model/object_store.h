// The object store: the cluster's objects as the sources last delivered
// them (the role of client-go's informer cache), keyed by kind, namespace
// and name, with the secondary indexes the incremental model needs
// (cluster_model.h):
//   pods by namespace and label        -> which pods a selector picks
//   selector label -> services         -> which services a pod event reaches
//   EndpointSlices / Endpoints by service
//
// Sources (agent/source.h) deliver ObjectEvents: added / modified /
// deleted, with the source's resourceVersion when it has one. The
// directory source turns file edits into events by diffing each changed
// file's objects against what the file held before; a Kubernetes API
// source delivers watch events as they come. Both feed the same store.
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <variant>
#include <vector>

#include "model/endpoints.h"
#include "model/manifest.h"

namespace ferry {

enum class ObjectKind : uint8_t { Service, Pod, Endpoints, EndpointSlice, Node, IPAddressPool };
const char* objectKindName(ObjectKind k);
// "v1", "discovery.k8s.io/v1", "metallb.io/v1beta1".
const char* objectApiVersion(ObjectKind k);

// (apiVersion/kind, namespace, name); ns is "" for cluster-scoped kinds.
// Interned strings (model/shared_string.h): the source, the file tracker
// and the store each key every object, and a namespace compares by pointer.
struct ObjectKey {
  ObjectKind kind = ObjectKind::Service;
  SharedString ns, name;
  auto operator<=>(const ObjectKey&) const = default;
  bool operator==(const ObjectKey&) const = default;
  // "Service default/web", "Node n1": the label errors use.
  std::string str() const;
  // "default/web" (or "n1"): the key snapshots use.
  std::string nsName() const { return ns.empty() ? name.str() : ns + "/" + name; }
  // Back from str(); false when `label` is not of that form.
  static bool parse(const std::string& label, ObjectKey* out);
};

using ObjectValue =
    std::variant<Service, Pod, EndpointsObject, EndpointSlice, NodeObject, AddressPool>;
using ObjectPtr = std::shared_ptr<const ObjectValue>;

ObjectKey keyOf(const ObjectValue& v);
// Equal objects make no event; Service's `object` (the manifest as read)
// counts here, as DNS reads publishNotReadyAddresses from it.
bool sameObject(const ObjectValue& a, const ObjectValue& b);

struct ObjectEvent {
  enum class Type : uint8_t {
    Added,
    Modified,
    Deleted,
    // Present at the source but invalid, with no good version to keep (a
    // new object with an error): not in the store, but its name stays
    // taken (a Service keeps its ClusterIP reserved, a pool its name).
    // Cleared by a later Added / Modified / Deleted of the key.
    Invalid,
  };
  Type type = Type::Added;
  ObjectKey key;
  ObjectPtr object;             // null for Deleted / Invalid
  std::string resourceVersion;  // "" when the source has none (directory)
};
const char* eventTypeName(ObjectEvent::Type t);

// What a source hands over per change: object events in order, and the
// source's current errors for every origin (file) they changed for
// (an empty list clears that origin's errors).
struct SourceUpdate {
  std::vector<ObjectEvent> events;
  std::map<std::string /*origin*/, std::vector<ManifestError>> errors;
  bool relist = false;  // a full re-list (start, inotify overflow), still diffed
  // When the source first heard of this change (zero: unknown); the
  // agent measures event-to-map time from it.
  std::chrono::steady_clock::time_point notified{};
  bool empty() const { return events.empty() && errors.empty(); }
};

// What applying events reached, for the incremental model.
struct Touched {
  std::set<std::string> services;   // Service objects changed (ns/name)
  std::set<std::string> endpoints;  // services whose endpoint inputs may have changed
  std::set<std::string> nodes;      // Node names changed
  std::set<std::string> podNamespaces;  // namespaces where a Pod changed
  bool pools = false;               // an IPAddressPool changed
};

class ObjectStore : public EndpointLookup {
 public:
  // Applies one event, recording in *t what it reaches (over-approximated
  // for pods: every service whose selector shares a label with the pod).
  void apply(const ObjectEvent& ev, Touched* t);

  const Service* service(const std::string& key) const;
  const std::map<std::string, ObjectPtr>& services() const { return services_; }
  // Service keys present at the source: valid ones and Invalid ones.
  const std::set<std::string>& liveServices() const { return live_; }
  const std::set<std::string>& invalidServices() const { return invalidServices_; }
  const std::set<std::string>& invalidPools() const { return invalidPools_; }
  const std::map<std::string, ObjectPtr>& nodes() const { return nodes_; }
  const std::map<std::string, ObjectPtr>& pools() const { return pools_; }
  size_t size() const;

  // Everything, in key order, as parseManifests would return it (the
  // input of a from-scratch build).
  Manifests toManifests() const;

  std::vector<const Pod*> selectPods(
      const std::string& ns, const std::map<std::string, std::string>& selector) const override;
  const EndpointsObject* endpointsFor(const std::string& key) const override;
  std::vector<const EndpointSlice*> slicesFor(const std::string& key) const override;

 private:
  void put(const ObjectKey& key, ObjectPtr obj, Touched* t);
  void remove(const ObjectKey& key, Touched* t);
  void indexService(const std::string& key, const Service& s, bool add);
  void indexPod(const Pod& p, bool add);
  void touchPodServices(const Pod& p, Touched* t) const;

  std::map<std::string, ObjectPtr> services_;  // ns/name
  std::set<std::string> live_, invalidServices_, invalidPools_;
  std::set<ObjectKey> invalidOther_;
  // ns -> "k=v" (a selector's first label) -> services
  std::map<std::string, std::map<std::string, std::set<std::string>>> selectorIndex_;
  std::map<std::string, std::map<std::string, ObjectPtr>> pods_;  // ns -> name
  // ns -> "k=v" -> pod names
  std::map<std::string, std::map<std::string, std::set<std::string>>> podLabels_;
  std::map<std::string, ObjectPtr> endpoints_;  // ns/name
  std::map<std::string, ObjectPtr> slices_;     // ns/name of the slice
  std::map<std::string, std::map<std::string, const EndpointSlice*>> slicesByService_;
  std::map<std::string, ObjectPtr> nodes_;  // name
  std::map<std::string, ObjectPtr> pools_;  // name
};

}  // namespace ferry
