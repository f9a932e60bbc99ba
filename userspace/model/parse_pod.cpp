// Pods matter only as endpoint sources: labels, IPs, readiness and the
// named container ports a Service targetPort may refer to.
#include "model/object_parsers.h"

namespace ferry {

using nlohmann::json;

namespace {

void parseContainerPorts(ObjectContext& c, const json& container, const std::string& path,
                         Pod& pod) {
  const json* ports = optArray(c, container, "ports", path + ".ports");
  if (!ports) return;
  for (size_t i = 0; i < ports->size(); ++i) {
    const json& p = (*ports)[i];
    std::string at = indexPath(path + ".ports", i);
    PodPort pp;
    pp.name = optString(c, p, "name", at + ".name").value_or("");
    pp.containerPort = optPort(c, p, "containerPort", at + ".containerPort");
    // An SCTP container port is legal Kubernetes; it just can't be a
    // ferry backend, so it is skipped without an error.
    const json* proto = optField(p, "protocol");
    if (proto && *proto == "SCTP") continue;
    auto parsed = optProtocol(c, p, at + ".protocol");
    if (!parsed || !pp.containerPort) continue;
    pp.protocol = *parsed;
    pod.ports.push_back(pp);
  }
}

void parseSpec(ObjectContext& c, const json& spec, Pod& pod) {
  pod.nodeName = optString(c, spec, "nodeName", "spec.nodeName").value_or("");
  pod.hostNetwork = optBool(c, spec, "hostNetwork", "spec.hostNetwork").value_or(false);
  pod.hostname = optString(c, spec, "hostname", "spec.hostname").value_or("");
  pod.subdomain = optString(c, spec, "subdomain", "spec.subdomain").value_or("");
  const json* containers = optArray(c, spec, "containers", "spec.containers");
  if (!containers) return;
  for (size_t i = 0; i < containers->size(); ++i)
    parseContainerPorts(c, (*containers)[i], indexPath("spec.containers", i), pod);
}

// status.podIPs is authoritative; status.podIP is its first entry in
// older manifests.
void parseIPs(ObjectContext& c, const json& status, Pod& pod) {
  const json* list = optArray(c, status, "podIPs", "status.podIPs");
  if (list && !list->empty()) {
    for (size_t i = 0; i < list->size(); ++i) {
      std::string at = indexPath("status.podIPs", i);
      if (auto ip = optIp(c, (*list)[i], "ip", at + ".ip")) pod.podIPs.push_back(*ip);
    }
    return;
  }
  if (auto ip = optIp(c, status, "podIP", "status.podIP")) pod.podIPs.push_back(*ip);
}

}  // namespace

Pod parsePod(ObjectContext& c, const json& o, const ObjectMeta& m) {
  Pod pod;
  pod.ns = m.ns;
  pod.name = m.name;
  pod.file = m.file;
  pod.labels = m.labels;
  pod.deleting = m.deleting;
  if (const json* spec = optObject(c, o, "spec", "spec")) parseSpec(c, *spec, pod);
  if (const json* status = optObject(c, o, "status", "status")) {
    parseIPs(c, *status, pod);
    pod.phase = optString(c, *status, "phase", "status.phase").value_or("");
    pod.ready = conditionStatus(c, *status, "status.conditions", "Ready").value_or(false);
  }
  return pod;
}

}  // namespace ferry
