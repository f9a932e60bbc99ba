#include "model/object_parsers.h"

namespace ferry {

using nlohmann::json;

Node parseNode(ObjectContext& c, const json& o, const ObjectMeta& m) {
  Node node;
  node.name = m.name;
  if (auto z = m.labels.find("topology.kubernetes.io/zone"); z != m.labels.end())
    node.zone = z->second;
  const json* status = optObject(c, o, "status", "status");
  if (!status) return node;
  if (const json* addrs = optArray(c, *status, "addresses", "status.addresses")) {
    for (size_t i = 0; i < addrs->size(); ++i) {
      std::string at = indexPath("status.addresses", i);
      auto type = optString(c, (*addrs)[i], "type", at + ".type").value_or("");
      if (type != "InternalIP" && type != "ExternalIP") continue;  // Hostname, DNS names
      if (auto ip = optIp(c, (*addrs)[i], "address", at + ".address"))
        node.addresses.push_back(*ip);
    }
  }
  // A node without conditions (hand-written manifest) counts as Ready.
  node.ready = conditionStatus(c, *status, "status.conditions", "Ready").value_or(true);
  return node;
}

}  // namespace ferry
