// The Kubernetes API as a definition source (issue 13): Services,
// EndpointSlices, Nodes, and, when the apiserver serves them, MetalLB
// IPAddressPools and ServiceCIDRs, listed and watched by k8s::SourceSet
// (one Reflector thread per resource), turned into the object store's
// events here, on the agent's loop.
//
//   * Nothing is handed over before every initial list is complete:
//     ready() is false until then and the agent plans nothing (no flap at
//     start, and a restart against pinned maps deletes nothing early).
//   * While the apiserver is unreachable no event arrives, so the store,
//     and with it the dataplane, stays exactly as it was; a 410 relist is
//     diffed by the reflector, so objects that did not change make no event.
//   * Each object is parsed as a manifest document is (model/manifest.h
//     parseObject), its errors named by the object's API path; an invalid
//     new version keeps the last good one (issue 11), a new invalid object
//     keeps its name taken (ObjectEvent::Invalid).
//   * kube-proxy's labels (pkg/proxy, cmd/kube-proxy server.go): a Service
//     labelled service.kubernetes.io/service-proxy-name is skipped unless
//     the label names ferry's --service-proxy-name; a Service labelled
//     service.kubernetes.io/headless is served as headless (DNS only, no
//     frontend); EndpointSlices carry on as usual (DNS needs them).
//   * spec.loadBalancerClass other than --load-balancer-class ("" = only
//     class-less services): the service is served (ClusterIP, node ports)
//     but no LoadBalancer address is assigned or announced for it.
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "agent/source.h"
#include "k8s/client.h"
#include "k8s/event_queue.h"
#include "k8s/source_set.h"
#include "model/ip.h"

namespace ferry {

struct KubernetesSourceOptions {
  std::string serviceProxyName;   // --service-proxy-name ("" = only unlabelled services)
  std::string loadBalancerClass;  // --load-balancer-class ("" = only class-less services)
  k8s::SourceSetOptions set;      // timeouts, backoff; log is set by open()
};

inline constexpr char kServiceProxyNameLabel[] = "service.kubernetes.io/service-proxy-name";
inline constexpr char kHeadlessLabel[] = "service.kubernetes.io/headless";

// The pure half: ObjectEvents as the reflectors deliver them -> store
// events and per-object errors. No I/O; tested without an apiserver.
class KubeObjectTracker {
 public:
  explicit KubeObjectTracker(KubernetesSourceOptions opts = {}) : opts_(std::move(opts)) {}
  // Appends the store events (and errors by origin) for `ev` to *out.
  void apply(const k8s::ObjectEvent& ev, SourceUpdate* out);
  // ServiceCIDR objects (networking.k8s.io/v1) seen: name -> spec.cidrs.
  const std::map<std::string, std::vector<IpPrefix>>& serviceCidrs() const { return cidrs_; }
  // Why an object is not used (filtered by a label or class), for status.
  size_t skipped() const { return skipped_.size(); }
  // The origin naming an object in errors: its API path.
  static std::string origin(const k8s::ObjectEvent& ev);

 private:
  void remove(const ObjectKey& key, const std::string& origin, SourceUpdate* out);
  // The object as ferry should see it; false when it is not ferry's.
  bool admit(const k8s::ObjectEvent& ev, nlohmann::json* obj, std::string* why) const;

  KubernetesSourceOptions opts_;
  std::map<ObjectKey, ObjectPtr> delivered_;
  std::set<ObjectKey> deliveredInvalid_;
  std::map<std::string, ObjectKey> keyByOrigin_;
  std::map<std::string, std::string> skipped_;  // origin -> why
  std::set<std::string> erroredOrigins_;         // origins with errors handed over
  std::map<std::string, std::vector<IpPrefix>> cidrs_;
};

class KubernetesSource : public DefinitionSource {
 public:
  static Expected<std::unique_ptr<KubernetesSource>> open(k8s::ClientConfig cfg,
                                                          KubernetesSourceOptions opts);
  ~KubernetesSource() override;
  int pollFd() const override { return queue_.fd(); }
  bool drain() override;
  SourceUpdate collect() override;
  bool ready() const override { return synced_; }
  std::string describe() const override;

  // Served ServiceCIDRs with their CIDRs (empty when none or not served).
  std::vector<IpPrefix> serviceCidrs() const;
  bool servesServiceCidrs() const;
  // For `ferryctl status`: the source, connection, resources and errors.
  nlohmann::json statusJson() const;
  std::shared_ptr<k8s::Client> client() const { return client_; }

 private:
  KubernetesSource(std::shared_ptr<k8s::Client> client, KubernetesSourceOptions opts);

  std::shared_ptr<k8s::Client> client_;
  k8s::EventQueue queue_;
  KubeObjectTracker tracker_;
  std::unique_ptr<k8s::SourceSet> set_;
  bool synced_ = false;
  std::chrono::system_clock::time_point syncedAt_{};
  uint64_t applied_ = 0;  // store events handed over
  SourceUpdate pending_;
  std::chrono::steady_clock::time_point pendingSince_{};
};

}  // namespace ferry
