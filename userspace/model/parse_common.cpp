// Sub-structures shared by several kinds.
#include "model/object_parsers.h"

namespace ferry {

using nlohmann::json;

std::string parseTargetRef(ObjectContext& c, const json& parent, const std::string& path,
                           const std::string& defaultNs) {
  const json* ref = optObject(c, parent, "targetRef", path);
  if (!ref) return "";
  // Hand-written manifests often omit the kind; endpoints are pods.
  auto kind = optString(c, *ref, "kind", path + ".kind").value_or("Pod");
  auto ns = optString(c, *ref, "namespace", path + ".namespace").value_or(defaultNs);
  auto name = optString(c, *ref, "name", path + ".name").value_or("");
  if (name.empty()) return "";
  return kind + " " + (ns.empty() ? name : ns + "/" + name);
}

std::vector<EndpointPort> parseEndpointPorts(ObjectContext& c, const json& parent,
                                             const std::string& path) {
  std::vector<EndpointPort> out;
  const json* ports = optArray(c, parent, "ports", path);
  if (!ports) return out;
  for (size_t i = 0; i < ports->size(); ++i) {
    const json& p = (*ports)[i];
    std::string at = indexPath(path, i);
    EndpointPort ep;
    ep.name = optString(c, p, "name", at + ".name").value_or("");
    auto proto = optProtocol(c, p, at + ".protocol");
    if (!optField(p, "port")) c.error(at + ".port", "is required");
    ep.port = optPort(c, p, "port", at + ".port");
    if (!proto || !ep.port) continue;  // reported; the rest is still usable
    ep.protocol = *proto;
    out.push_back(ep);
  }
  return out;
}

std::optional<bool> conditionStatus(ObjectContext& c, const json& status,
                                    const std::string& path, const char* type) {
  const json* conds = optArray(c, status, "conditions", path);
  if (!conds) return std::nullopt;
  for (const json& cond : *conds) {
    const json* t = optField(cond, "type");
    if (!t || *t != type) continue;
    const json* s = optField(cond, "status");
    return s && *s == "True";
  }
  return std::nullopt;
}

}  // namespace ferry
