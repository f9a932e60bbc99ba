// Per-kind parsers used by parseManifests. Internal to the model.
// Each reads one object whose identity (kind, apiVersion, metadata) is
// already checked, reporting problems through the ObjectContext.
#pragma once

#include <map>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "model/fields.h"
#include "model/manifest.h"

namespace ferry {

struct ObjectMeta {
  std::string kind, apiVersion;
  std::string ns, name;  // ns is "" for cluster-scoped kinds
  std::string file;
  std::map<std::string, std::string> labels;
  std::string creationTimestamp;
  bool deleting = false;  // deletionTimestamp set
};

// Objects with errors are still returned; callers decide by ctx.failed().
// parseService leaves Service::object (the manifest) to the caller.
Service parseService(ObjectContext& c, const nlohmann::json& o, const ObjectMeta& m);
Pod parsePod(ObjectContext& c, const nlohmann::json& o, const ObjectMeta& m);
EndpointsObject parseEndpoints(ObjectContext& c, const nlohmann::json& o, const ObjectMeta& m);
EndpointSlice parseEndpointSlice(ObjectContext& c, const nlohmann::json& o, const ObjectMeta& m);
Node parseNode(ObjectContext& c, const nlohmann::json& o, const ObjectMeta& m);
AddressPool parseAddressPool(ObjectContext& c, const nlohmann::json& o, const ObjectMeta& m);

// externalTrafficPolicy, healthCheckNodePort, externalIPs and the
// LoadBalancer fields of a Service spec; s.type must already be set.
void parseExternalFields(ObjectContext& c, const nlohmann::json& spec, Service& s);

// spec.sessionAffinity(+Config) into s.sessionAffinityTimeout, and the
// check of the service.ferry.io/lb-algorithm annotation (s.annotations
// must be set). parse_service_lb.cpp.
void parseLoadBalancing(ObjectContext& c, const nlohmann::json& spec, Service& s);

// "Pod ns/name" from a targetRef object; ns defaults to the owner's.
std::string parseTargetRef(ObjectContext& c, const nlohmann::json& parent,
                           const std::string& path, const std::string& defaultNs);
// Endpoints / EndpointSlice ports (name, port, protocol); bad ones skipped.
std::vector<EndpointPort> parseEndpointPorts(ObjectContext& c, const nlohmann::json& parent,
                                             const std::string& path);
// True when conditions[] has {type: <type>, status: "True"}; nullopt when
// there is no condition of that type.
std::optional<bool> conditionStatus(ObjectContext& c, const nlohmann::json& status,
                                    const std::string& path, const char* type);

}  // namespace ferry
