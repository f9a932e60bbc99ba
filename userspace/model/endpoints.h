// Endpoint resolution for a Service's ports, in the order Kubernetes
// consumers see them: EndpointSlices for the service when any exist, else
// an Endpoints object of the same name, else what the endpoints controller
// would compute from the service's selector over Pods in its namespace.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "model/manifest.h"

namespace ferry {

// Where a service's endpoint inputs are looked up: the whole-manifest
// tables below (from-scratch builds) or the object store's indexes
// (incremental builds, object_store.h).
class EndpointLookup {
 public:
  virtual ~EndpointLookup() = default;
  // Pods of namespace `ns` carrying every label of `selector` (not empty),
  // in ns/name order for the store, manifest order for EndpointSources.
  virtual std::vector<const Pod*> selectPods(
      const std::string& ns, const std::map<std::string, std::string>& selector) const = 0;
  // The Endpoints object named like the service (key ns/name), or null.
  virtual const EndpointsObject* endpointsFor(const std::string& key) const = 0;
  // The EndpointSlices labelled kubernetes.io/service-name for the service.
  virtual std::vector<const EndpointSlice*> slicesFor(const std::string& key) const = 0;
};

// Lookup tables over parsed objects; points into the Manifests it was
// built from, which must outlive it.
struct EndpointSources : EndpointLookup {
  std::map<std::string /*ns*/, std::vector<const Pod*>> podsByNamespace;
  std::map<std::string /*ns/name*/, const EndpointsObject*> endpoints;
  std::map<std::string /*ns/service*/, std::vector<const EndpointSlice*>> slicesByService;

  static EndpointSources index(const Manifests& m);
  std::vector<const Pod*> selectPods(
      const std::string& ns, const std::map<std::string, std::string>& selector) const override;
  const EndpointsObject* endpointsFor(const std::string& key) const override;
  std::vector<const EndpointSlice*> slicesFor(const std::string& key) const override;
};

// True when the pod carries every label of the selector.
bool selectorMatches(const std::map<std::string, std::string>& selector, const Pod& pod);

// Fills every port's endpoint list (sorted, one entry per ip:port).
// Pods lacking a named targetPort are skipped and reported in *errors.
void resolveEndpoints(Service& s, const EndpointLookup& src, std::vector<ManifestError>* errors);

}  // namespace ferry
