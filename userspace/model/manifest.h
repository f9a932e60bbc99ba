// Manifest files in, typed Kubernetes objects out. Pure parsing and
// validation: no allocation, no endpoint resolution (see builder.h).
//
// Each file may hold several YAML documents (`---`), JSON, and `kind: List`.
// Recognised kinds: Service, Endpoints, Pod, Node (v1), EndpointSlice
// (discovery.k8s.io/v1) and IPAddressPool (metallb.io/v1beta1, its
// namespace ignored); other kinds are skipped silently. Every problem is
// a ManifestError naming file, object and field; one bad document never
// hides the others.
#pragma once

#include <map>
#include <set>
#include <string>
#include <vector>

#include "model/snapshot.h"

namespace ferry {

struct SourceFile {
  std::string path;
  std::string content;
  // Set when the file could not be read (too large, not a regular file):
  // reported as an error of the file, whose last good objects are kept.
  std::string error{};
};

struct PodPort {
  std::string name;
  uint16_t containerPort = 0;
  Protocol protocol = Protocol::TCP;
  bool operator==(const PodPort&) const = default;
};

struct Pod {
  std::string ns, name, file;
  std::map<std::string, std::string> labels;
  std::string nodeName;
  bool hostNetwork = false;
  std::vector<PodPort> ports;      // of all spec.containers
  std::vector<IpAddr> podIPs;      // status.podIPs, else status.podIP
  std::string phase;               // status.phase ("" when unknown)
  bool ready = false;              // condition Ready is "True"
  bool deleting = false;           // metadata.deletionTimestamp is set
  std::string hostname, subdomain;
  std::string key() const { return ns + "/" + name; }
  bool operator==(const Pod&) const = default;
};

struct EndpointPort {
  std::string name;
  uint16_t port = 0;
  Protocol protocol = Protocol::TCP;
  bool operator==(const EndpointPort&) const = default;
};

struct EndpointAddress {
  IpAddr ip;
  SharedString nodeName, hostname;  // model/shared_string.h
  SharedString targetRef;  // "Pod ns/name" or ""
  bool operator==(const EndpointAddress&) const = default;
};

struct EndpointSubset {
  std::vector<EndpointAddress> addresses, notReadyAddresses;
  std::vector<EndpointPort> ports;
  bool operator==(const EndpointSubset&) const = default;
};

// A v1 Endpoints object.
struct EndpointsObject {
  std::string ns, name;
  SharedString file;  // interned: a file's objects share its path
  std::vector<EndpointSubset> subsets;
  bool operator==(const EndpointsObject&) const = default;
};

struct SliceEndpoint {
  std::vector<IpAddr> addresses;
  bool ready = true, serving = true, terminating = false;  // nil = true/true/false
  SharedString nodeName, hostname, targetRef;  // model/shared_string.h
  // hints.forZones[].name / hints.forNodes[].name (topology-aware routing).
  SharedList<std::string> zoneHints, nodeHints;
  bool operator==(const SliceEndpoint&) const = default;
};

struct EndpointSlice {
  std::string ns, name;
  SharedString file;  // interned: a file's objects share its path
  std::string serviceName;  // label kubernetes.io/service-name ("" = not attached)
  std::string addressType;  // IPv4 / IPv6 / FQDN (FQDN endpoints are not used)
  std::vector<SliceEndpoint> endpoints;
  std::vector<EndpointPort> ports;
  bool operator==(const EndpointSlice&) const = default;
};

struct NodeObject {
  Node node;
  std::string file;
  bool operator==(const NodeObject&) const = default;
};

struct Manifests {
  // Valid Services; clusterIPs, ports[].nodePort and healthCheckNodePort
  // hold the *requested* values (if any).
  std::vector<Service> services;
  // Keys (ns/name) of Services present but invalid: they still hold their
  // ClusterIP and their last good version stays programmed.
  std::set<std::string> invalidServices;
  std::vector<Pod> pods;
  std::vector<EndpointsObject> endpoints;
  std::vector<EndpointSlice> slices;
  std::vector<NodeObject> nodes;
  std::vector<AddressPool> pools;  // valid ones
  // Names of IPAddressPools present but invalid: their last good version
  // stays in use.
  std::set<std::string> invalidPools;
  // Other objects present but invalid ("Pod default/web-1", "Node n1"):
  // excluded as a whole, never half-applied (their last good version, if
  // any, is the object store's business).
  std::set<std::string> invalidObjects;
  // Files holding a document that could not be identified (syntax error,
  // no kind or name): objects that vanished from them may just be
  // mid-edit, so the builder keeps their last good Services.
  std::set<std::string> brokenFiles;
  std::vector<ManifestError> errors;
};

// Files are processed in path order; for an object defined twice (same
// kind and ns/name), the first wins and the second is reported.
Manifests parseManifests(const std::vector<SourceFile>& files);

// One object already decoded (a Kubernetes API list item or watch event,
// with kind and apiVersion filled in), parsed exactly as a manifest
// document is; `origin` names it in errors (the object's API path).
Manifests parseObject(const std::string& origin, const nlohmann::json& object);

}  // namespace ferry
