// ferryd: flags -> AgentConfig -> Agent. Nothing else lives here.
#include <boost/program_options.hpp>

#include <csignal>
#include <cstdio>
#include <malloc.h>
#include <cstdlib>
#include <fstream>
#include <iostream>

#include "agent/agent.h"
#include "agent/log.h"
#include "dataplane/maglev.h"
#include "model/allocation.h"

namespace po = boost::program_options;
using namespace ferry;

namespace {

// The cgroup2 mount point from /proc/mounts ("" when none): where a real
// node's processes all live, so every one of them reaches ClusterIPs.
std::string cgroup2Root() {
  std::ifstream in("/proc/mounts");
  for (std::string dev, dir, type, rest; in >> dev >> dir >> type && std::getline(in, rest);)
    if (type == "cgroup2") return dir;
  return "";
}

struct Flags {
  AgentConfig cfg;
  bool cleanup = false;
};

// Returns 0 to go on, else the exit code.
int parseFlags(int argc, char** argv, Flags* f) {
  std::string cidrs, nodeIp, externalDevices, nodePortRange, xdp, lbAlgorithm, source;
  std::vector<std::string> dnsListen, dnsUpstreams;
  po::options_description desc(
      "ferryd: Kubernetes Service dataplane agent (eBPF kube-proxy replacement)\n\n"
      "Usage: ferryd --manifests DIR --node-name NAME --bpffs DIR --socket PATH --state-dir DIR "
      "[options]\n       ferryd --source kubernetes [--kubeconfig FILE [--context NAME]] "
      "--node-name NAME --bpffs DIR --state-dir DIR [options]\n       ferryd --cleanup --bpffs DIR [--state-dir DIR]\n\nOptions");
  desc.add_options()
      ("help,h", "print this help")
      ("source", po::value(&source)->default_value("directory"),
       "where Services, EndpointSlices, Nodes and IPAddressPools come from: directory "
       "(--manifests) or kubernetes (list+watch of the API; --kubeconfig, else in-cluster)")
      ("manifests", po::value(&f->cfg.manifestsDir),
       "directory of Kubernetes manifests (*.yaml, *.yml, *.json; watched with inotify)")
      ("kubeconfig", po::value(&f->cfg.kubeconfig),
       "--source kubernetes: kubeconfig file (default: in-cluster service account, else $KUBECONFIG)")
      ("context", po::value(&f->cfg.kubeContext), "kubeconfig context (default: current-context)")
      ("namespace", po::value(&f->cfg.ns)->default_value("kube-system"),
       "namespace of ferry's own objects (Leases)")
      ("service-proxy-name", po::value(&f->cfg.serviceProxyName),
       "serve Services labelled service.kubernetes.io/service-proxy-name=NAME (default: only "
       "Services without that label, as kube-proxy)")
      ("load-balancer-class", po::value(&f->cfg.loadBalancerClass),
       "assign and announce LoadBalancer addresses for Services of this spec.loadBalancerClass "
       "(default: only class-less Services)")
      ("healthz-listen", po::value(&f->cfg.healthzListen),
       "serve GET /healthz and /readyz (ready once the first full sync is programmed) on "
       "[ADDR]:PORT, e.g. :10256; default: none")
      ("node-name", po::value(&f->cfg.nodeName), "this node's name (as in Node / nodeName)")
      ("service-cidr", po::value(&cidrs)->default_value("10.96.0.0/12"),
       "ClusterIP ranges: one CIDR, or two of different families (the first is the primary family)")
      ("bpffs", po::value(&f->cfg.bpffs),
       "pin directory on a bpf filesystem; maps and hooks pinned here survive agent restarts")
      ("socket", po::value(&f->cfg.socketPath)->default_value("/run/ferry/ferryd.sock"),
       "control socket for ferryctl (mode 0600)")
      ("state-dir", po::value(&f->cfg.stateDir), "directory for the agent's own state")
      ("allocations", po::value(&f->cfg.allocationFile),
       "shared ClusterIP allocation record (default: <manifests>/.ferry/allocations.json)")
      ("cgroup", po::value(&f->cfg.cgroupPath),
       "cgroup v2 directory whose processes (the node's own) reach ClusterIPs via socket hooks; "
       "none = no socket hooks (default: none with --source directory, the cgroup2 root "
       "from /proc/mounts with --source kubernetes, as on a real node)")
      ("external-device", po::value(&externalDevices),
       "the node's external device(s), comma-separated; never treated as pod devices")
      ("node-ip", po::value(&nodeIp),
       "node address used as SNAT source (hairpin flows, NodePort traffic sent to other nodes; default: first global IPv4 address of the external devices)")
      ("ct-size", po::value(&f->cfg.datapath.ctMapSize)->default_value(262144),
       "connection tracking entries (two per flow)")
      ("svc-map-size", po::value(&f->cfg.datapath.svcMapSize)->default_value(262144),
       "service map entries (one per frontend plus one per backend slot)")
      ("backend-map-size", po::value(&f->cfg.datapath.backendMapSize)->default_value(262144),
       "backend map entries")
      ("dns-listen", po::value(&dnsListen)->composing(),
       "serve cluster DNS (UDP and TCP) on ADDR:PORT ([v6]:PORT); repeatable; none = no DNS")
      ("cluster-domain", po::value(&f->cfg.dns.clusterDomain)->default_value("cluster.local"),
       "the cluster's DNS domain")
      ("dns-upstream", po::value(&dnsUpstreams)->composing(),
       "resolver for names outside the cluster, ADDR[:PORT]; repeatable "
       "(default: the nameservers of /etc/resolv.conf)")
      ("dns-ttl", po::value(&f->cfg.dns.ttl)->default_value(5), "TTL of cluster DNS answers, seconds")
      ("node-port-range", po::value(&nodePortRange)->default_value("30000-32767"),
       "NodePort range, MIN-MAX")
      ("xdp", po::value(&xdp)->default_value("native"),
       "NodePort/externalIP fast path on external devices: native, generic or off "
       "(tc only); native falls back to tc where the driver lacks XDP")
      ("lease-dir", po::value(&f->cfg.leaseDir),
       "directory of the agents' leases (shared by every node; default: "
       "<manifests>/.ferry/leases; with --source kubernetes: Lease objects ferry-l2-<node> in "
       "--namespace); the owner of a LoadBalancer address is chosen among "
       "Ready nodes with a live lease")
      ("lease-seconds", po::value(&f->cfg.leaseSeconds)->default_value(2),
       "lease duration; a crashed owner is replaced within about this plus a third")
      ("lb-algorithm", po::value(&lbAlgorithm)->default_value("random"),
       "how external frontends (NodePort, externalIPs, LoadBalancer) pick an endpoint for a new "
       "flow: random, or maglev (consistent hashing: every node picks the same); a service's "
       "service.ferry.io/lb-algorithm annotation overrides it")
      ("maglev-table-size", po::value(&f->cfg.datapath.maglevTableSize)->default_value(16381),
       "Maglev lookup table size, a prime; more than 100 x the largest endpoint count")
      ("cleanup", po::bool_switch(&f->cleanup),
       "detach and unpin everything an agent with this --bpffs created, then exit");
  po::variables_map vm;
  try {
    po::store(po::parse_command_line(argc, argv, desc), vm);
    po::notify(vm);
  } catch (const po::error& e) {
    std::cerr << "ferryd: " << e.what() << "\n";
    return 2;
  }
  if (vm.count("help")) {
    std::cout << desc << "\n";
    return 1;
  }
  auto need = [&](const char* flag, const std::string& v) {
    if (!v.empty()) return true;
    std::cerr << "ferryd: --" << flag << " is required (see --help)\n";
    return false;
  };
  if (f->cleanup) return need("bpffs", f->cfg.bpffs) ? 0 : 2;
  bool kube = source == "kubernetes";
  if (!kube && source != "directory") {
    std::cerr << "ferryd: --source: \"" << source << "\" is not directory or kubernetes\n";
    return 2;
  }
  f->cfg.source = kube ? AgentConfig::Source::Kubernetes : AgentConfig::Source::Directory;
  if ((!kube && !need("manifests", f->cfg.manifestsDir)) || !need("node-name", f->cfg.nodeName) ||
      !need("bpffs", f->cfg.bpffs) || !need("state-dir", f->cfg.stateDir))
    return 2;
  if (kube && f->cfg.kubeconfig.empty() && !std::getenv("KUBERNETES_SERVICE_HOST")) {
    if (const char* env = std::getenv("KUBECONFIG"); env && *env) f->cfg.kubeconfig = env;
    else {
      std::cerr << "ferryd: --source kubernetes needs --kubeconfig, $KUBECONFIG or an in-cluster "
                   "service account (KUBERNETES_SERVICE_HOST)\n";
      return 2;
    }
  }
  if (!f->cfg.kubeContext.empty() && f->cfg.kubeconfig.empty()) {
    std::cerr << "ferryd: --context needs --kubeconfig\n";
    return 2;
  }
  if (f->cfg.cgroupPath == "none") {
    f->cfg.cgroupPath.clear();
  } else if (f->cfg.cgroupPath.empty() && kube) {
    f->cfg.cgroupPath = cgroup2Root();
    if (f->cfg.cgroupPath.empty()) {
      std::cerr << "ferryd: no cgroup2 mount in /proc/mounts: pass --cgroup DIR (or none)\n";
      return 2;
    }
  }
  for (size_t pos = 0; pos <= cidrs.size();) {
    size_t end = cidrs.find(',', pos);
    std::string one = cidrs.substr(pos, end == std::string::npos ? std::string::npos : end - pos);
    auto p = IpPrefix::parse(one);
    if (!p) {
      std::cerr << "ferryd: --service-cidr: \"" << one << "\" is not a CIDR like 10.96.0.0/12\n";
      return 2;
    }
    f->cfg.serviceCidrs.push_back(*p);
    if (end == std::string::npos) break;
    pos = end + 1;
  }
  if (auto why = validateServiceCidrs(f->cfg.serviceCidrs); !why.empty()) {
    std::cerr << "ferryd: --service-cidr: " << why << "\n";
    return 2;
  }
  for (size_t pos = 0; !externalDevices.empty() && pos <= externalDevices.size();) {
    size_t end = externalDevices.find(',', pos);
    f->cfg.externalDevices.push_back(externalDevices.substr(pos, end == std::string::npos ? end : end - pos));
    if (end == std::string::npos) break;
    pos = end + 1;
  }
  if (!nodeIp.empty()) {
    f->cfg.nodeIp = IpAddr::parse(nodeIp);
    if (!f->cfg.nodeIp) {
      std::cerr << "ferryd: --node-ip: \"" << nodeIp << "\" is not an IP address\n";
      return 2;
    }
  }
  for (const std::string& l : dnsListen) {
    auto a = DnsAddr::parse(l);
    if (!a) {
      std::cerr << "ferryd: --dns-listen: \"" << l << "\" is not ADDR:PORT like 198.18.0.11:53\n";
      return 2;
    }
    f->cfg.dns.listen.push_back(*a);
  }
  for (const std::string& u : dnsUpstreams) {
    auto a = DnsAddr::parse(u, 53);
    if (!a) {
      std::cerr << "ferryd: --dns-upstream: \"" << u << "\" is not ADDR[:PORT]\n";
      return 2;
    }
    f->cfg.dns.upstreams.push_back(*a);
  }
  if (!validClusterDomain(f->cfg.dns.clusterDomain)) {
    std::cerr << "ferryd: --cluster-domain: want a domain like cluster.local\n";
    return 2;
  }
  unsigned lo = 0, hi = 0;
  char dash = 0;
  if (std::sscanf(nodePortRange.c_str(), "%u%c%u", &lo, &dash, &hi) != 3 || dash != '-' ||
      lo == 0 || lo > hi || hi > 65535) {
    std::cerr << "ferryd: --node-port-range: \"" << nodePortRange
              << "\" is not a range like 30000-32767\n";
    return 2;
  }
  f->cfg.nodePortMin = static_cast<uint16_t>(lo);
  f->cfg.nodePortMax = static_cast<uint16_t>(hi);
  if (xdp == "native") f->cfg.xdp = AgentConfig::Xdp::Native;
  else if (xdp == "generic") f->cfg.xdp = AgentConfig::Xdp::Generic;
  else if (xdp == "off") f->cfg.xdp = AgentConfig::Xdp::Off;
  else {
    std::cerr << "ferryd: --xdp: \"" << xdp << "\" is not native, generic or off\n";
    return 2;
  }
  if (lbAlgorithm != "random" && lbAlgorithm != "maglev") {
    std::cerr << "ferryd: --lb-algorithm: \"" << lbAlgorithm << "\" is not random or maglev\n";
    return 2;
  }
  setDefaultMaglev(lbAlgorithm == "maglev");
  if (!maglevSizeValid(f->cfg.datapath.maglevTableSize)) {
    std::cerr << "ferryd: --maglev-table-size: " << f->cfg.datapath.maglevTableSize
              << " is not a prime between 3 and " << FERRY_MAGLEV_TABLE_MAX
              << " (e.g. 251, 1021, 4093, 16381, 65521, 131071)\n";
    return 2;
  }
  // Kubernetes mode without --lease-dir: Lease objects in --namespace.
  if (f->cfg.leaseDir.empty() && !kube) f->cfg.leaseDir = f->cfg.manifestsDir + "/.ferry/leases";
  if (f->cfg.leaseSeconds < 1 || f->cfg.leaseSeconds > 3600) {
    std::cerr << "ferryd: --lease-seconds: want 1-3600\n";
    return 2;
  }
  if (f->cfg.allocationFile.empty())
    f->cfg.allocationFile = f->cfg.manifestsDir + "/.ferry/allocations.json";
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  // Every sync builds a snapshot of many small objects while the last one
  // is alive; glibc's fastbins then make each sync slower than the one
  // before (10,000 services: 0.6 s growing past 1.2 s in five syncs).
  // Without them it stays flat.
  mallopt(M_MXFAST, 0);
  // A peer that closes early (a control client, a DNS-over-TCP client, a
  // health checker) must cost an EPIPE on that socket, never the process.
  // Every socket write also passes MSG_NOSIGNAL; this covers the rest.
  signal(SIGPIPE, SIG_IGN);
  Flags f;
  if (int rc = parseFlags(argc, argv, &f)) return rc == 1 ? 0 : rc;
  if (f.cleanup) {
    Status s = Agent::cleanup(f.cfg.bpffs, f.cfg.stateDir);
    if (!s) {
      logError("cleanup: " + s.message());
      return 1;
    }
    logInfo("cleanup done: tc programs detached, " + f.cfg.bpffs + " unpinned");
    return 0;
  }
  auto agent = Agent::create(f.cfg);
  if (!agent) {
    logError(agent.status().message());
    return 1;
  }
  Status s = (*agent)->run();
  if (!s) {
    logError(s.message());
    return 1;
  }
  return 0;
}
