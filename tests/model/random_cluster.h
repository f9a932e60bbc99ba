// A random cluster generator for the incremental-vs-full tests (model and
// planner): manifest files with services of every type, pods, slices,
// Endpoints, nodes and pools, some invalid, some broken mid-edit, drawn
// from a small universe of names so that edits collide.
#pragma once

#include <cstdlib>
#include <map>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "model/file_tracker.h"
#include "test_util.h"

namespace ferry::test {

using nlohmann::json;

class Gen {
 public:
  explicit Gen(uint64_t seed) : rng_(seed) {}
  // Dual-stack draws (ipFamilyPolicy, IPv6 ClusterIPs, pools and
  // LoadBalancer addresses): off by default, so that the sequences of the
  // single-stack seeds stay what they were.
  bool dualStack = false;
  int pick(int n) { return std::uniform_int_distribution<int>(0, n - 1)(rng_); }
  bool coin(int pct = 50) { return pick(100) < pct; }

  json labels() {
    json l = json::object();
    l["app"] = coin() ? "x" : "y";
    if (coin(30)) l["tier"] = "fe";
    return l;
  }

  json service(int i) {
    json s = {{"apiVersion", "v1"}, {"kind", "Service"},
              {"metadata", {{"name", "s" + std::to_string(i)}, {"namespace", ns(i)}}}};
    json spec = json::object();
    int type = pick(6);
    const char* types[] = {"ClusterIP", "NodePort", "LoadBalancer", "ExternalName", "ClusterIP",
                           "LoadBalancer"};
    spec["type"] = types[type];
    if (type == 3) {
      spec["externalName"] = "example.org";
    } else {
      if (type == 4 && coin(40)) spec["clusterIP"] = "None";
      if (coin(20)) spec["clusterIP"] = "198.19.0." + std::to_string(1 + pick(6));
      if (dualStack && coin(60)) {
        const char* policies[] = {"SingleStack", "PreferDualStack", "RequireDualStack"};
        spec["ipFamilyPolicy"] = policies[pick(3)];
        if (coin(40)) spec["ipFamilies"] = coin() ? json::array({"IPv6", "IPv4"}) : json::array({"IPv6"});
        if (coin(20)) spec["clusterIP"] = "2001:db8:ffff::" + std::to_string(1 + pick(6));
      }
      if (coin(70)) spec["selector"] = coin(30) ? json{{"app", "x"}, {"tier", "fe"}} : json{{"app", coin() ? "x" : "y"}};
      json ports = json::array();
      int n = 1 + pick(2);
      for (int p = 0; p < n; ++p) {
        json port = {{"port", 80 + p}, {"protocol", coin(80) ? "TCP" : "UDP"}};
        if (n > 1) port["name"] = "p" + std::to_string(p);
        if (coin(30)) port["targetPort"] = "http"; else port["targetPort"] = 8080 + p;
        if ((type == 1 || type == 2) && coin(20)) port["nodePort"] = 30000 + pick(4);
        ports.push_back(port);
      }
      spec["ports"] = ports;
      if ((type == 1 || type == 2) && coin(40)) spec["externalTrafficPolicy"] = "Local";
      if (coin(10)) spec["externalIPs"] = json::array({"198.18.5." + std::to_string(pick(3))});
      if (type == 2 || type == 5) {
        json ann = json::object();
        if (coin(20)) ann["metallb.universe.tf/address-pool"] = "pool" + std::to_string(pick(3));
        if (coin(30)) ann["metallb.universe.tf/allow-shared-ip"] = "k";
        if (coin(15)) spec["loadBalancerIP"] = "198.18.2." + std::to_string(pick(6));
        if (dualStack && coin(20))
          ann["metallb.universe.tf/loadBalancerIPs"] =
              "198.18.2." + std::to_string(pick(6)) + ",2001:db8:2::" + std::to_string(pick(6));
        if (coin(30)) spec["loadBalancerSourceRanges"] = json::array({"198.18.0.0/" + std::to_string(16 + pick(3))});
        if (!ann.empty()) s["metadata"]["annotations"] = ann;
      }
      if (coin(15)) {  // sessionAffinity and the selection algorithm (bpf/lib/lb.h)
        spec["sessionAffinity"] = "ClientIP";
        if (coin()) spec["sessionAffinityConfig"]["clientIP"]["timeoutSeconds"] = 1 + pick(100);
      }
      if (coin(15)) s["metadata"]["annotations"]["service.ferry.io/lb-algorithm"] = coin() ? "maglev" : "random";
    }
    if (coin(8)) spec["ports"] = "not a list";  // invalid
    s["spec"] = spec;
    return s;
  }

  json pod(int i) {
    json p = {{"apiVersion", "v1"}, {"kind", "Pod"},
              {"metadata", {{"name", "p" + std::to_string(i)}, {"namespace", ns(i)}, {"labels", labels()}}}};
    json container = {{"name", "c"}};
    if (coin(60)) container["ports"] = json::array({{{"name", "http"}, {"containerPort", 9000 + pick(3)}}});
    p["spec"] = {{"nodeName", "n" + std::to_string(pick(3))}, {"containers", json::array({container})}};
    std::string ip = coin(5) ? "bogus" : "198.18.100." + std::to_string(pick(12));
    p["status"] = {{"phase", coin(90) ? "Running" : "Failed"},
                   {"podIP", ip},
                   {"conditions", json::array({{{"type", "Ready"}, {"status", coin(80) ? "True" : "False"}}})}};
    return p;
  }

  json slice(int i) {
    int svc = pick(kServices);
    json eps = json::array();
    for (int e = 0, n = pick(4); e < n; ++e)
      eps.push_back({{"addresses", json::array({"198.18.101." + std::to_string(pick(10))})},
                     {"nodeName", "n" + std::to_string(pick(3))},
                     {"conditions", {{"ready", coin(80)}}}});
    if (coin(5)) eps.push_back({{"addresses", json::array({"nope"})}});  // invalid
    json ports = json::array({{{"port", 7000 + pick(2)}, {"protocol", "TCP"}}});
    if (coin(50)) ports[0]["name"] = "p" + std::to_string(pick(2));
    return {{"apiVersion", "discovery.k8s.io/v1"}, {"kind", "EndpointSlice"},
            {"metadata", {{"name", "sl" + std::to_string(i)}, {"namespace", ns(svc)},
                          {"labels", {{"kubernetes.io/service-name", "s" + std::to_string(svc)}}}}},
            {"addressType", "IPv4"}, {"endpoints", eps}, {"ports", ports}};
  }

  json endpoints(int i) {
    json addrs = json::array();
    for (int e = 0, n = pick(3); e < n; ++e) addrs.push_back({{"ip", "198.18.102." + std::to_string(pick(10))}});
    json ports = json::array({{{"port", 6000 + pick(2)}}});
    return {{"apiVersion", "v1"}, {"kind", "Endpoints"},
            {"metadata", {{"name", "s" + std::to_string(i)}, {"namespace", ns(i)}}},
            {"subsets", json::array({{{"addresses", addrs}, {"ports", ports}}})}};
  }

  json node(int i) {
    return {{"apiVersion", "v1"}, {"kind", "Node"}, {"metadata", {{"name", "n" + std::to_string(i)}}},
            {"status", {{"addresses", json::array({{{"type", "InternalIP"}, {"address", "198.18.0." + std::to_string(10 + i)}}})},
                        {"conditions", json::array({{{"type", "Ready"}, {"status", coin(80) ? "True" : "False"}}})}}}};
  }

  json pool(int i) {
    json addrs = json::array({"198.18.2." + std::to_string(pick(3)) + "-198.18.2." + std::to_string(3 + pick(3))});
    if (coin(10)) addrs.push_back("garbage");
    if (dualStack && coin(70))
      addrs.push_back("2001:db8:2::" + std::to_string(pick(3)) + "-2001:db8:2::" + std::to_string(3 + pick(3)));
    return {{"apiVersion", "metallb.io/v1beta1"}, {"kind", "IPAddressPool"},
            {"metadata", {{"name", "pool" + std::to_string(i)}}},
            {"spec", {{"addresses", addrs}, {"autoAssign", coin(80)}}}};
  }

  json object() {
    switch (pick(8)) {
      case 0: case 1: return service(pick(kServices));
      case 2: case 3: return pod(pick(10));
      case 4: return slice(pick(6));
      case 5: return endpoints(pick(kServices));
      case 6: return node(pick(3));
      default: return pool(pick(3));
    }
  }

  std::string file() {
    json items = json::array();
    for (int i = 0, n = pick(5); i < n; ++i) items.push_back(object());
    // dump() sorts keys ("items" before "kind": the ordinary parse); every
    // other file puts "kind" first, the order the streamed reader takes
    // (streamJsonList), so both paths meet every sequence.
    std::string list = items.dump();
    std::string text = list.size() % 2
                           ? json{{"apiVersion", "v1"}, {"kind", "List"}, {"items", items}}.dump()
                           : R"({"apiVersion":"v1","kind":"List","items":)" + list + "}";
    if (coin(5)) text += "\n{broken";  // a file mid-edit
    return text;
  }

  static constexpr int kServices = 8;
  static std::string ns(int i) { return i % 2 ? "b" : "a"; }

 private:
  std::mt19937_64 rng_;
};

// One random step: the file changes (a write, delete, rename or several
// writes in one batch) applied to `files` (path -> content).
inline std::vector<FileChange> randomStep(Gen& g, std::map<std::string, std::string>& files) {
  std::vector<FileChange> changes;
  std::string path = "f" + std::to_string(g.pick(5)) + ".json";
  int op = g.pick(10);
  if (op < 6) {
    files[path] = g.file();
    changes.push_back({path, files[path]});
  } else if (op < 7 && files.count(path)) {
    files.erase(path);
    changes.push_back({path, std::nullopt});
  } else if (op < 9 && files.count(path)) {  // rename, in one batch
    std::string to = "f" + std::to_string(g.pick(5)) + ".json";
    if (to == path) return changes;
    files[to] = files[path];
    files.erase(path);
    changes.push_back({path, std::nullopt});
    changes.push_back({to, files[to]});
  } else {  // several files in one batch
    for (int k = 0; k < 3; ++k) {
      std::string p = "f" + std::to_string(g.pick(5)) + ".json";
      bool dup = false;
      for (const auto& c : changes) dup |= c.path == p;
      if (dup) continue;
      files[p] = g.file();
      changes.push_back({p, files[p]});
    }
  }
  return changes;
}

inline uint64_t envOr(const char* name, uint64_t dflt) {
  const char* v = std::getenv(name);
  return v ? std::strtoull(v, nullptr, 10) : dflt;
}

}  // namespace ferry::test
