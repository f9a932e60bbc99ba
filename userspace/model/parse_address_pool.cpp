// MetalLB's IPAddressPool: spec.addresses, spec.autoAssign,
// spec.avoidBuggyIPs. Other spec fields (serviceAllocation) are ignored.
#include "common/limits.h"
#include "model/address_pool.h"
#include "model/object_parsers.h"

namespace ferry {

using nlohmann::json;

AddressPool parseAddressPool(ObjectContext& c, const json& o, const ObjectMeta& m) {
  AddressPool pool;
  pool.name = m.name;
  pool.file = m.file;
  static const json kEmpty = json::object();
  const json* specPtr = optObject(c, o, "spec", "spec");
  const json& spec = specPtr ? *specPtr : kEmpty;
  const json* list = optArray(c, spec, "addresses", "spec.addresses");
  if (!list || list->empty()) {
    if (!optField(spec, "addresses") || list)
      c.error("spec.addresses", "must list at least one CIDR or range");
  } else {
    for (size_t i = 0; i < list->size(); ++i) {
      const json& v = (*list)[i];
      std::string path = indexPath("spec.addresses", i);
      if (!v.is_string()) {
        c.error(path, "must be a string, got " + limits::dumpSafe(v));
        continue;
      }
      std::string why;
      auto range = parseAddressRange(v.get<std::string>(), &why);
      if (!range) {
        c.error(path, why);
        continue;
      }
      range->index = i;
      pool.ranges.push_back(*range);
    }
  }
  pool.autoAssign = optBool(c, spec, "autoAssign", "spec.autoAssign").value_or(true);
  pool.avoidBuggyIPs = optBool(c, spec, "avoidBuggyIPs", "spec.avoidBuggyIPs").value_or(false);
  return pool;
}

}  // namespace ferry
