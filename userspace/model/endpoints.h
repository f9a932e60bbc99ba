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

// Lookup tables over parsed objects; points into the Manifests it was
// built from, which must outlive it.
struct EndpointSources {
  std::map<std::string /*ns*/, std::vector<const Pod*>> podsByNamespace;
  std::map<std::string /*ns/name*/, const EndpointsObject*> endpoints;
  std::map<std::string /*ns/service*/, std::vector<const EndpointSlice*>> slicesByService;

  static EndpointSources index(const Manifests& m);
};

// Fills every port's endpoint list (sorted, one entry per ip:port).
// Pods lacking a named targetPort are skipped and reported in *errors.
void resolveEndpoints(Service& s, const EndpointSources& src, std::vector<ManifestError>* errors);

}  // namespace ferry
