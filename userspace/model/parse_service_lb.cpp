// How a Service's new flows choose an endpoint: spec.sessionAffinity with
// sessionAffinityConfig.clientIP.timeoutSeconds (the apiserver's rules:
// ClientIP or None; timeout 1-86400, default 10800), and ferry's
// service.ferry.io/lb-algorithm annotation (maglev | random).
#include "model/object_parsers.h"

namespace ferry {

using nlohmann::json;

void parseLoadBalancing(ObjectContext& c, const json& spec, Service& s) {
  auto affinity = optString(c, spec, "sessionAffinity", "spec.sessionAffinity").value_or("None");
  const json* cfg = optObject(c, spec, "sessionAffinityConfig", "spec.sessionAffinityConfig");
  if (affinity != "None" && affinity != "ClientIP") {
    c.error("spec.sessionAffinity", "must be \"ClientIP\" or \"None\", got \"" + affinity + "\"");
  } else if (affinity == "ClientIP") {
    int64_t timeout = kDefaultAffinityTimeoutSeconds;
    const json* ip = cfg ? optObject(c, *cfg, "clientIP", "spec.sessionAffinityConfig.clientIP")
                         : nullptr;
    if (ip) {
      const char* path = "spec.sessionAffinityConfig.clientIP.timeoutSeconds";
      if (auto t = optInt(c, *ip, "timeoutSeconds", path)) {
        if (*t < 1 || *t > kMaxAffinityTimeoutSeconds)
          c.error(path, "must be between 1 and 86400 seconds, got " + std::to_string(*t));
        else
          timeout = *t;
      }
    }
    s.sessionAffinityTimeout = static_cast<uint32_t>(timeout);
  } else if (cfg && optField(*cfg, "clientIP")) {
    c.error("spec.sessionAffinityConfig", "must not be set when spec.sessionAffinity is None");
  }
  auto it = s.annotations.find(kLbAlgorithmAnnotation);
  if (it != s.annotations.end() && it->second != "maglev" && it->second != "random")
    c.error(std::string("metadata.annotations[") + kLbAlgorithmAnnotation + "]",
            "must be \"maglev\" or \"random\", got \"" + it->second + "\"");
}

}  // namespace ferry
