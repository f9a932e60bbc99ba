// Helpers for the LoadBalancer address pool tests.
#pragma once

#include <string>

#include "test_util.h"

namespace ferry::test {

// An IPAddressPool; `addresses` is a YAML flow list, `extra` more spec lines.
inline std::string poolYaml(const std::string& name, const std::string& addresses,
                            const std::string& extra = "") {
  return "apiVersion: metallb.io/v1beta1\nkind: IPAddressPool\nmetadata:\n  name: " + name +
         "\n  namespace: metallb-system\nspec:\n  addresses: " + addresses + "\n" + extra;
}

// A LoadBalancer Service; `annotations` is a YAML flow map ("" = none),
// `extra` more spec lines.
inline std::string lbYaml(const std::string& name, const std::string& annotations = "",
                          const std::string& extra = "",
                          const std::string& ports = "[{port: 80}]") {
  std::string meta = annotations.empty() ? "" : "  annotations: " + annotations + "\n";
  return "apiVersion: v1\nkind: Service\nmetadata:\n  name: " + name + "\n" + meta +
         "spec:\n  type: LoadBalancer\n  ports: " + ports + "\n" + extra;
}

}  // namespace ferry::test
