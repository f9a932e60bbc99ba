// Helpers shared by the model tests.
#pragma once

#include <string>
#include <vector>

#include "model/builder.h"

namespace ferry::test {

inline std::string errorsText(const std::vector<ManifestError>& errors) {
  std::string out;
  for (const auto& e : errors) out += e.str() + "\n";
  return out;
}

inline std::vector<std::string> errorStrings(const std::vector<ManifestError>& errors) {
  std::vector<std::string> out;
  for (const auto& e : errors) out.push_back(e.str());
  return out;
}

inline IpAddr ip(const char* s) { return *IpAddr::parse(s); }
inline IpPrefix cidr(const char* s) { return *IpPrefix::parse(s); }

inline BuildOptions options(const char* serviceCidr = "198.19.0.0/16") {
  BuildOptions o;
  o.serviceCidrs = {cidr(serviceCidr)};
  o.now = [] { return std::string("2024-05-01T12:00:00Z"); };
  return o;
}

// A Service manifest with the given spec body (YAML, indented by 2).
inline std::string serviceYaml(const std::string& name, const std::string& spec,
                               const std::string& ns = "default") {
  return "apiVersion: v1\nkind: Service\nmetadata:\n  name: " + name + "\n  namespace: " + ns +
         "\nspec:\n" + spec;
}

// A running pod with one IP and optional container ports (YAML flow list).
inline std::string podYaml(const std::string& name, const std::string& ip,
                           const std::string& labels, bool ready = true,
                           const std::string& ports = "[]", const std::string& extraStatus = "",
                           const std::string& node = "node-a") {
  return "apiVersion: v1\nkind: Pod\nmetadata:\n  name: " + name + "\n  labels: " + labels +
         "\nspec:\n  nodeName: " + node + "\n  containers:\n  - name: c\n    ports: " + ports +
         "\nstatus:\n" +
         // extraStatus may set the phase itself (duplicate keys are errors)
         (extraStatus.find("phase:") == std::string::npos ? "  phase: Running\n" : "") +
         "  podIP: " + ip +
         "\n  conditions:\n  - type: Ready\n    status: \"" + (ready ? "True" : "False") + "\"\n" +
         extraStatus;
}

inline std::string docs(const std::vector<std::string>& parts) {
  std::string out;
  for (const auto& p : parts) out += "---\n" + p;
  return out;
}

}  // namespace ferry::test
