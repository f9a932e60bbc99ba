// ferryd's core: owns the definition source, the snapshot, the dataplane
// and the device watcher, and runs the event loop.
//
//   source events -> ControlPlane (ClusterModel -> ServicePlanner -> MapWriter)
//                 -> DNS records, healthCheckNodePort listeners, L2 announcement
//
// One owner per piece of state: the snapshot and error list (here), the
// programmed map state (here, mirrored from the maps), device attachment
// (here, from the LinkWatcher's view).
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "agent/control.h"
#include "agent/control_plane.h"
#include "announce/controller.h"
#include "agent/health.h"
#include "agent/healthz.h"
#include "agent/links.h"
#include "agent/source.h"
#include "agent/k8s_source.h"
#include "agent/lb_status.h"
#include "common/status.h"
#include "dataplane/bpf.h"
#include "dataplane/planner.h"
#include "dataplane/writer.h"
#include "dns/server.h"
#include "model/allocation.h"
#include "model/snapshot.h"

namespace ferry {

struct AgentConfig {
  // Where object definitions come from: a manifest directory (the demo
  // and tests) or the Kubernetes API (a real cluster, issue 13).
  enum class Source { Directory, Kubernetes } source = Source::Directory;
  std::string manifestsDir;
  // Kubernetes source: kubeconfig "" = in-cluster service account.
  std::string kubeconfig, kubeContext;
  std::string serviceProxyName;   // service.kubernetes.io/service-proxy-name served
  std::string loadBalancerClass;  // spec.loadBalancerClass served ("" = class-less only)
  std::string ns = "kube-system";  // ferry's own objects (Leases)
  std::string healthzListen;      // "" = no /healthz, /readyz
  std::string nodeName;
  std::vector<IpPrefix> serviceCidrs;
  std::string bpffs;
  std::string socketPath;
  std::string stateDir;
  std::string allocationFile;  // default: <manifests>/.ferry/allocations.json
  std::string cgroupPath;      // "" = no socket-level hooks for the node
  std::vector<std::string> externalDevices;
  std::optional<IpAddr> nodeIp;  // "" = first global IPv4 of the node
  DatapathOptions datapath;
  enum class Xdp { Native, Generic, Off } xdp = Xdp::Native;  // on external devices
  uint16_t nodePortMin = 30000, nodePortMax = 32767;
  std::string leaseDir;  // default: <manifests>/.ferry/leases (shared by the agents)
  int leaseSeconds = 2;
  DnsConfig dns;  // cluster DNS; off when dns.listen is empty
};

class Agent {
 public:
  static Expected<std::unique_ptr<Agent>> create(const AgentConfig& cfg);
  // Runs until SIGTERM/SIGINT. The dataplane stays in place on exit.
  Status run();

  // Removes everything an agent with these settings created.
  static Status cleanup(const std::string& bpffs, const std::string& stateDir);
  ~Agent();

 private:
  explicit Agent(AgentConfig cfg) : cfg_(std::move(cfg)) {}
  void sync(ControlPlane::Clock::time_point arrival);
  // The rest of a sync once its map writes are done (errors, DNS,
  // announcements, the log line); `first`: the initial programming.
  void finishSync(ChangeReport r, bool first);
  void syncDevices();
  void attachExternal(const Link& link);
  bool isExternalDevice(const Link& link) const;
  void syncNodeAddrs();
  void updateNodeIp();
  nlohmann::json handle(const nlohmann::json& req) const;
  void recordQdisc(const std::string& ifname);
  bool checkDrift();  // one slice of the drift round (true: the round is over)
  AllocationRecord recoverAllocations();

  AgentConfig cfg_;
  std::unique_ptr<Datapath> dp_;
  std::unique_ptr<MapWriter> writer_;
  std::unique_ptr<DefinitionSource> source_;
  std::unique_ptr<LinkWatcher> links_;
  std::unique_ptr<ControlServer> control_;
  std::unique_ptr<AllocationStore> store_;
  FileAllocationStore* fileStore_ = nullptr;  // directory mode: the shared record
  KubernetesSource* kube_ = nullptr;          // source_ in Kubernetes mode
  std::unique_ptr<HealthzServer> healthz_;    // --healthz-listen
  std::unique_ptr<LbStatusWriter> lbStatus_;  // Kubernetes mode: status.loadBalancer
  std::map<std::string, LbStatusWant> lbWant() const;
  BuildOptions buildOpts_;
  bool cidrsChosen_ = false;  // Kubernetes mode: ServiceCIDRs looked at
  std::vector<IpPrefix> flagCidrs_;  // --service-cidr (when no ServiceCIDR object is left)
  nlohmann::json sourceStatus() const;
  nlohmann::json clusterInfo() const;
  // Held for the agent's life: flock on the pin directory and on
  // <state-dir>/ferryd.lock (one agent per pin directory).
  int pinLockFd_ = -1, stateLockFd_ = -1;
  // The allocation record could not be used (locked by another process,
  // unwritable, full disk): the next sync is retried at this time.
  std::optional<std::chrono::steady_clock::time_point> retryAt_;
  std::unique_ptr<DnsServer> dns_;  // null when --dns-listen is not given
  std::unique_ptr<ControlPlane> cp_;  // the object store, snapshot and programmed state
  std::set<std::string> knownErrors_;  // logged already
  SourceUpdate backlog_;  // events of a large update not applied yet (Agent::sync)
  size_t backlogAt_ = 0;      // the next event of backlog_ to apply
  bool writingFirst_ = false;  // the sliced write going on is the initial programming
  size_t sliceEvents_ = 256;  // events per slice, adapted to a time budget (Agent::sync)
  bool planned_ = false;  // the first list is in the maps
  std::set<int> attached_;     // pod devices carrying our tc programs
  std::set<int> extAttached_;  // external devices carrying our programs
  std::set<IpAddr> nodeAddrs_;  // programmed in ferry_node_addrs
  HealthServer health_;
  std::unique_ptr<AnnounceController> announce_;  // L2 announcement of LB addresses
  std::optional<IpAddr> snatIp_;  // the node address in ferry_config (SNAT source)
  std::optional<IpAddr> snatIp6_;  // its IPv6 address (ferry_config.snat6)
};

}  // namespace ferry
