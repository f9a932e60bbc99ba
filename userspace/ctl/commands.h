// ferryctl commands: pure functions from an agent snapshot to output text.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>

namespace ferry::ctl {

struct GetOptions {
  std::string resource;           // services | endpoints | errors (aliases resolved by canonical_resource)
  std::string name;               // optional object name
  std::string ns = "default";     // -n
  bool all_namespaces = false;    // -A
  std::string output;             // "" | wide | json | name
  bool no_headers = false;
  int64_t now = 0;                // Unix seconds, for AGE
};

struct Result {
  std::string out;  // stdout
  std::string err;  // stderr
  int rc = 0;
};

// "svc" -> "services", "ep" -> "endpoints", ...; "" when unknown.
std::string canonical_resource(const std::string& r);

Result cmd_get(const nlohmann::json& snapshot, const GetOptions& o);
Result cmd_stats(const nlohmann::json& snapshot, const std::string& output, bool no_headers);
// `ferryctl debug verify`: the agent's from-scratch check ({"ok",
// "differences", ...}); rc 1 when it found differences.
Result cmd_verify(const nlohmann::json& reply, const std::string& output);

// `ferryctl status`: the agent's definition source (directory or the
// Kubernetes API: connected or not, last resourceVersion per resource,
// watch age, events applied, last error). rc 1 when the source is not
// connected or not synced, so scripts can wait on it.
Result cmd_status(const nlohmann::json& reply, const std::string& output);
// `ferryctl cluster-info [dump]`: service-cluster-ip-range, the node-port
// range, cluster domain, DNS address and the source; dump prints all of it
// as JSON (one "key": value per line, for grep as with kubectl's dump).
Result cmd_cluster_info(const nlohmann::json& reply, const std::string& output, bool dump);

}  // namespace ferry::ctl
