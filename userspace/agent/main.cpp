// ferryd: flags -> AgentConfig -> Agent. Nothing else lives here.
#include <boost/program_options.hpp>

#include <csignal>
#include <cstdio>
#include <malloc.h>
#include <iostream>

#include "agent/agent.h"
#include "agent/log.h"
#include "model/allocation.h"

namespace po = boost::program_options;
using namespace ferry;

namespace {

struct Flags {
  AgentConfig cfg;
  bool cleanup = false;
};

// Returns 0 to go on, else the exit code.
int parseFlags(int argc, char** argv, Flags* f) {
  std::string cidrs, nodeIp, externalDevices, nodePortRange, xdp;
  std::vector<std::string> dnsListen, dnsUpstreams;
  po::options_description desc(
      "ferryd: Kubernetes Service dataplane agent (eBPF kube-proxy replacement)\n\n"
      "Usage: ferryd --manifests DIR --node-name NAME --bpffs DIR --socket PATH --state-dir DIR "
      "[options]\n       ferryd --cleanup --bpffs DIR [--state-dir DIR]\n\nOptions");
  desc.add_options()
      ("help,h", "print this help")
      ("manifests", po::value(&f->cfg.manifestsDir),
       "directory of Kubernetes manifests (*.yaml, *.yml, *.json; watched with inotify)")
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
       "cgroup v2 directory whose processes (the node's own) reach ClusterIPs via socket hooks")
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
       "<manifests>/.ferry/leases); the owner of a LoadBalancer address is chosen among "
       "Ready nodes with a live lease")
      ("lease-seconds", po::value(&f->cfg.leaseSeconds)->default_value(2),
       "lease duration; a crashed owner is replaced within about this plus a third")
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
  if (!need("manifests", f->cfg.manifestsDir) || !need("node-name", f->cfg.nodeName) ||
      !need("bpffs", f->cfg.bpffs) || !need("state-dir", f->cfg.stateDir))
    return 2;
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
  if (f->cfg.leaseDir.empty()) f->cfg.leaseDir = f->cfg.manifestsDir + "/.ferry/leases";
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
