#include "agent/agent.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>

#include "agent/agent_lock.h"
#include "agent/k8s_lease_store.h"
#include "agent/log.h"
#include "common/limits.h"
#include "agent/record_recovery.h"
#include "model/builder.h"
#include "model/service_json.h"

namespace ferry {

namespace {

using Clock = std::chrono::steady_clock;
// Notifications drained in one pass of the loop are one change; those
// that arrive while it is applied are batched into the next one. Only
// completed writes and renames are notified (source.cpp), so no wait.
constexpr auto kDebounce = std::chrono::milliseconds(0);
const char* const kStatNames[] = {FERRY_STAT_NAMES};
const char* const kHookNames[] = {FERRY_HOOK_NAMES};
static_assert(std::size(kStatNames) == FERRY_STAT_MAX, "FERRY_STAT_NAMES out of step");
static_assert(std::size(kHookNames) == FERRY_HOOK_MAX, "FERRY_HOOK_NAMES out of step");

std::string qdiscRecord(const std::string& stateDir) { return stateDir + "/created-qdiscs"; }
// How often the maps are compared with what the agent believes it
// programmed: a round starts kDriftCheck after the last one ended and reads
// every entry in slices of kDriftSlice, one slice every kDriftPace (so at
// most 1/20 of a core while a round goes on: 1,000-2,000 entries per
// slice, so a round takes about 3 s at 10,000 services x 10 endpoints and
// about a minute at 100,000, 3.1 million entries). A whole read at once
// stopped the loop for 4-6 s every 10 s at that scale; it is left for the
// repair, when a round found a difference.
constexpr auto kDriftCheck = std::chrono::seconds(10);
constexpr auto kDriftSlice = std::chrono::milliseconds(1);
constexpr auto kDriftPace = std::chrono::milliseconds(20);
// A failed use of the allocation record (locked, disk full) is retried
// after this, whether or not a manifest changes.
constexpr auto kRecordRetry = std::chrono::seconds(1);

}  // namespace

Agent::~Agent() {
  if (stateLockFd_ >= 0) close(stateLockFd_);
  if (pinLockFd_ >= 0) close(pinLockFd_);
}

Expected<std::unique_ptr<Agent>> Agent::create(const AgentConfig& cfg) {
  // SIGTERM and SIGINT are taken by run()'s signalfd: blocked before any
  // thread starts (the Kubernetes source's reflectors), so that none of
  // them receives one and dies with the default action.
  sigset_t stopSignals;
  sigemptyset(&stopSignals);
  sigaddset(&stopSignals, SIGTERM);
  sigaddset(&stopSignals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stopSignals, nullptr);
  std::unique_ptr<Agent> a(new Agent(cfg));
  std::error_code ec;
  std::filesystem::create_directories(cfg.stateDir, ec);
  if (ec) return Status::error("--state-dir " + cfg.stateDir + ": " + ec.message());
  // Before anything is loaded or attached: a second agent on the same pin
  // directory would overwrite the first one's maps.
  if (Status s = lockAgent(cfg.bpffs, cfg.stateDir, &a->pinLockFd_, &a->stateLockFd_); !s) return s;

  DatapathOptions dpo = cfg.datapath;
  dpo.pinDir = cfg.bpffs;
  auto dp = Datapath::load(dpo);
  if (!dp) return dp.status();
  a->dp_ = std::move(*dp);
  for (const PinnedMapChange& c : a->dp_->replacedMaps()) {
    std::string what = "pinned map " + c.name + " replaced (" + c.reason + ")";
    if (c.flowsLost) what += ": its layout changed, the flows it held are lost";
    else if (c.flowsKept) what += ": " + std::to_string(c.flowsKept) + " flows carried over";
    else what += ": refilled from the model";
    logWarn(what);
  }
  a->writer_ = std::make_unique<MapWriter>(*a->dp_);
  a->writer_->setWarn([](const std::string& w) { logWarn(w); });
  // Reuse what a previous run programmed: the next sync applies only the
  // difference, so established flows never see a gap.
  ProgrammedState pinned = a->writer_->readBack();
  logInfo("dataplane loaded; pinned state has " + std::to_string(pinned.frontends.size()) +
          " frontends, " + std::to_string(pinned.backends.size()) + " backends");

  if (!cfg.cgroupPath.empty()) {
    Status s = a->dp_->attachCgroup(cfg.cgroupPath);
    if (!s) return s.context("socket hooks for the node's processes");
  }

  if (cfg.source == AgentConfig::Source::Kubernetes) {
    auto kc = cfg.kubeconfig.empty() ? k8s::inClusterConfig()
                                     : k8s::loadKubeconfig(cfg.kubeconfig, cfg.kubeContext);
    if (!kc) return kc.status().context("--source kubernetes");
    KubernetesSourceOptions ko;
    ko.serviceProxyName = cfg.serviceProxyName;
    ko.loadBalancerClass = cfg.loadBalancerClass;
    auto src = KubernetesSource::open(std::move(*kc), std::move(ko));
    if (!src) return src.status();
    a->kube_ = src->get();
    a->lbStatus_ = std::make_unique<LbStatusWriter>(a->kube_->client(), cfg.ns, cfg.nodeName);
    a->source_ = std::move(*src);
    // The apiserver owns ClusterIP and NodePort allocation: its values are
    // used as given (still validated), the shared record is never written.
    a->store_ = std::make_unique<MemoryAllocationStore>();
  } else {
    auto src = DirectorySource::open(cfg.manifestsDir, cfg.stateDir + "/last-good-services.json");
    if (!src) return src.status();
    a->source_ = std::move(*src);
    auto file = std::make_unique<FileAllocationStore>(cfg.allocationFile);
    a->fileStore_ = file.get();
    file->setRecovery([self = a.get()] { return self->recoverAllocations(); });
    a->store_ = std::move(file);
  }
  BuildOptions opts;
  opts.serviceCidrs = cfg.serviceCidrs;
  opts.nodePortMin = cfg.nodePortMin;
  opts.nodePortMax = cfg.nodePortMax;
  opts.loadBalancerFromStatus = a->kube_ != nullptr;  // the stored status is the shared record
  a->buildOpts_ = opts;
  a->flagCidrs_ = cfg.serviceCidrs;
  a->cp_ = std::make_unique<ControlPlane>(opts, *a->store_, *a->writer_, cfg.nodeName);
  if (!cfg.healthzListen.empty()) {
    Agent* me = a.get();
    auto hz = HealthzServer::listen(cfg.healthzListen, [me] {
      if (me->planned_) return std::string();
      return me->source_->ready() ? std::string("first sync not programmed yet")
                                  : std::string("initial lists not complete");
    });
    if (!hz) return hz.status();
    a->healthz_ = std::move(*hz);
  }
  std::unique_ptr<LeaseStore> leases;
  if (a->kube_ && cfg.leaseDir.empty())
    leases = std::make_unique<KubeLeaseStore>(a->kube_->client(), cfg.ns,
                                              std::chrono::seconds(cfg.leaseSeconds));
  else
    leases = std::make_unique<DirectoryLeaseStore>(cfg.leaseDir, std::chrono::seconds(cfg.leaseSeconds));
  a->announce_ = std::make_unique<AnnounceController>(
      cfg.nodeName, std::move(leases),
      std::chrono::seconds(cfg.leaseSeconds), AnnounceClocks{},
      [](AnnounceController::Level l, const std::string& m) {
        if (l == AnnounceController::Level::Warn) logWarn(m);
        else logInfo(m);
      });

  auto links = LinkWatcher::open();
  if (!links) return links.status();
  a->links_ = std::move(*links);

  Agent* self = a.get();
  auto ctl = ControlServer::listen(cfg.socketPath,
                                   [self](const nlohmann::json& r) { return self->handle(r); });
  if (!ctl) return ctl.status();
  a->control_ = std::move(*ctl);

  if (cfg.dns.enabled()) {
    auto dns = DnsServer::create(cfg.dns);
    if (!dns) return dns.status().context("cluster DNS");
    a->dns_ = std::move(*dns);
    std::string on, up;
    for (const DnsAddr& d : cfg.dns.listen) on += " " + d.str();
    for (const DnsAddr& u : a->dns_->upstreams()) up += " " + u.str();
    logInfo("cluster DNS for " + cfg.dns.clusterDomain + " on" + on + "; upstream" +
            (up.empty() ? std::string(" none (outside names get SERVFAIL)") : up));
  }
  return a;
}

// A large update (the initial list, a re-list, a big file) is applied in
// slices, one slice per pass of the loop, so that DNS, health checks and
// control requests are served in between: the slicing is how the loop
// never stalls (the work stays on the loop's thread). A slice's size is
// adapted after each slice so that applying it (model, plan, map writes,
// DNS) takes about kSliceBudget. Slices keep the events' order; an
// object's later event is never applied first.
constexpr auto kSliceBudget = std::chrono::microseconds(3000);
constexpr size_t kMinEventsPerPass = 32, kMaxEventsPerPass = 20000;
// A map delta of more entries than this (the initial programming, a
// re-list, a large file) is written in slices of kSliceBudget, one per
// pass of the loop (ControlPlane::continueWrite); nothing else is applied
// until it is done, so deltas stay in order. Smaller deltas (an endpoint
// edit) are written at once: their latency is what a change costs.
constexpr size_t kSlicedWriteMin = 2048;

void Agent::sync(ControlPlane::Clock::time_point arrival) {
  if (cp_->writing()) {
    std::optional<ChangeReport> done = cp_->continueWrite(Clock::now() + kSliceBudget);
    if (done) finishSync(std::move(*done), writingFirst_);
    return;
  }
  if (!planned_ && !source_->ready()) return;  // nothing planned before every initial list
  if (!planned_ && kube_ && !cidrsChosen_) {
    cidrsChosen_ = true;
    // The apiserver's ServiceCIDRs (networking.k8s.io/v1) replace
    // --service-cidr; nothing is in the model yet.
    std::vector<IpPrefix> cidrs = kube_->serviceCidrs();
    if (!cidrs.empty() && cidrs != buildOpts_.serviceCidrs) {
      std::string text;
      for (const IpPrefix& p : cidrs) text += (text.empty() ? "" : ",") + p.str();
      logInfo("service CIDRs from the apiserver's ServiceCIDR objects: " + text);
      buildOpts_.serviceCidrs = cidrs;
      cfg_.serviceCidrs = cidrs;
      cp_ = std::make_unique<ControlPlane>(buildOpts_, *store_, *writer_, cfg_.nodeName);
    } else if (!kube_->servesServiceCidrs()) {
      logInfo("the apiserver serves no ServiceCIDR objects: service CIDRs from --service-cidr");
    }
  }
  size_t taken = 0;
  auto started = Clock::now();
  struct Adapt {
    Agent* self;
    const size_t& taken;
    Clock::time_point started;
    ~Adapt() {
      if (taken < self->sliceEvents_) return;  // a short update says little
      auto us = std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - started).count();
      double perEvent = double(std::max<int64_t>(us, 1)) / double(taken);
      size_t next = size_t(double(kSliceBudget.count()) / perEvent);
      self->sliceEvents_ = std::clamp(next, kMinEventsPerPass, kMaxEventsPerPass);
    }
  } adapt{this, taken, started};
  SourceUpdate update;
  if (backlog_.events.empty()) {
    update = source_->collect();
    if (update.events.size() > sliceEvents_) {
      // The errors and the arrival go with the first slice.
      backlog_.events = std::move(update.events);
      update.events.clear();
      backlogAt_ = 0;
      // one record write for the whole update, not one per slice
      cp_->preallocate(backlog_.events);
    }
  }
  if (!backlog_.events.empty()) {
    auto& all = backlog_.events;
    size_t end = std::min(all.size(), backlogAt_ + sliceEvents_);
    update.events.assign(std::make_move_iterator(all.begin() + backlogAt_),
                         std::make_move_iterator(all.begin() + end));
    backlogAt_ = end;
    if (end == all.size()) backlog_ = SourceUpdate{}, backlogAt_ = 0;
  }
  taken = update.events.size();
  bool first = !planned_;
  bool retry = retryAt_ && ControlPlane::Clock::now() >= *retryAt_;
  // The ServiceCIDR objects changed after the start: applied in place, no
  // restart (none left: --service-cidr again).
  std::optional<std::vector<IpPrefix>> newCidrs;
  if (!first && kube_ && kube_->servesServiceCidrs()) {
    std::vector<IpPrefix> c = kube_->serviceCidrs();
    if (c.empty()) c = flagCidrs_;
    if (c != buildOpts_.serviceCidrs) newCidrs = std::move(c);
  }
  if (update.empty() && !first && !retry && !newCidrs) return;
  if (update.notified != ControlPlane::Clock::time_point{}) arrival = update.notified;
  // The first list is planned whole, once its last slice is in the model:
  // a restart must not delete pinned entries of services in later slices.
  bool plan = !first || backlog_.events.empty();
  ChangeReport r;
  if (first) {
    // Model only; planned below once the whole list is in and the
    // allocation record was usable.
    cp_->apply(update, arrival, false);
    if (!plan) return;
    // Still nothing planned: a retry of the record moves the model only.
    if (retry) cp_->retryAllocations(arrival, false);
  } else {
    ChangeReport cidrs;
    if (newCidrs) {
      // Before the update: its services are checked against the new CIDRs.
      std::string text;
      for (const IpPrefix& p : *newCidrs) text += (text.empty() ? "" : ",") + p.str();
      logInfo("service CIDRs changed (ServiceCIDR objects): " + text);
      buildOpts_.serviceCidrs = *newCidrs;
      cfg_.serviceCidrs = *newCidrs;
      cidrs = cp_->setServiceCidrs(*newCidrs, arrival);
    }
    if (!update.empty()) {
      if (!newCidrs && !retry) cp_->allowSlicedWrite(kSlicedWriteMin);
      r = cp_->apply(update, arrival, true);
    }
    if (newCidrs) {
      r.changes.services.insert(cidrs.changes.services.begin(), cidrs.changes.services.end());
      r.mapEntries += cidrs.mapEntries;
      r.loadBalancers |= cidrs.loadBalancers;
      for (auto& f : cidrs.failures) r.failures.push_back(std::move(f));
    }
  }
  if (std::string n = fileStore_ ? fileStore_->takeNotice() : ""; !n.empty()) logError(n);
  if (first && cp_->recordFailed()) {
    // At start with an unusable record the model lacks every service whose
    // addresses are unknown: planning it (maps, DNS, announcements) would
    // take down what is pinned. The pinned state stays, the errors are
    // reported, and the record is retried.
    for (const ManifestError& e : cp_->snapshot().errors) {
      std::string text = e.str();
      if (knownErrors_.insert(text).second) logError(text);
    }
    logWarn("allocation record unusable since start: keeping the pinned state, retrying in 1 s");
    retryAt_ = ControlPlane::Clock::now() + kRecordRetry;
    return;
  }
  if (first) {
    cp_->allowSlicedWrite(kSlicedWriteMin);
    r = cp_->apply(SourceUpdate{}, arrival, true);  // everything, against the pinned maps
  } else if (retry) {
    ChangeReport again = cp_->retryAllocations(arrival);
    if (update.empty()) {
      r = std::move(again);
    } else {
      r.changes.services.insert(again.changes.services.begin(), again.changes.services.end());
      r.mapEntries += again.mapEntries;
      r.loadBalancers |= again.loadBalancers;
      for (auto& f : again.failures) r.failures.push_back(std::move(f));
    }
  }
  if (cp_->writing()) {  // finished by the next passes of the loop
    writingFirst_ = first;
    logInfo("writing " + std::to_string(cp_->writingEntries()) +
            " map entries in slices, one per pass of the loop");
    return;
  }
  finishSync(std::move(r), first);
}

void Agent::finishSync(ChangeReport r, bool first) {
  // A record locked by another process, unwritable or on a full disk:
  // retried on a timer, not only at the next manifest change.
  if (cp_->recordFailed())
    retryAt_ = ControlPlane::Clock::now() + kRecordRetry;
  else
    retryAt_.reset();
  planned_ = true;
  const ClusterSnapshot& snap = cp_->snapshot();
  std::set<std::string> now;
  for (const ManifestError& e : snap.errors) {
    std::string text = e.str();
    if (!knownErrors_.count(text)) logError(text);
    now.insert(std::move(text));
  }
  knownErrors_ = std::move(now);
  for (const auto& f : r.failures) logError(f);
  // After the maps: names change without map changes too (ExternalName
  // targets, hostnames, not-ready endpoints).
  if (dns_ && first) dns_->update(snap);
  else if (dns_) dns_->updateServices(snap, r.changes.services);
  if (first || r.loadBalancers) {
    ClusterSnapshot lb = cp_->loadBalancerView();
    announce_->update(lb);
    for (const std::string& e : health_.update(healthTargets(lb, cfg_.nodeName))) logError(e);
    if (lbStatus_) lbStatus_->update(lbWant());
  }
  if (r.changes.events == 0 && r.mapEntries == 0 && !first) return;
  logInfo("synced " + std::to_string(snap.services.size()) + " services: " + r.summary());
}

// Called by the store, under its lock, when the record is corrupt: the
// services as the source gave them (explicit addresses) and the pinned maps.
AllocationRecord Agent::recoverAllocations() {
  std::vector<Service> services;
  const ObjectStore& objs = cp_->objects();
  for (const auto& [key, o] : objs.services())
    if (const Service* s = objs.service(key)) services.push_back(*s);
  ProgrammedState pinned = cp_->planned() ? cp_->programmed() : writer_->readBack();
  return recoverRecord(pinned, services, cfg_.serviceCidrs, rfc3339Now());
}

// Someone else (a second agent before the pin lock existed, bpftool, a
// crashed write) changed the maps: they are read back and what is missing
// is written again.
// One slice of the drift round; returns true when the round is over.
bool Agent::checkDrift() {
  std::string what;
  bool over = cp_->driftStep(Clock::now() + kDriftSlice, &what);
  if (!what.empty()) logWarn("maps drifted from what this agent programmed, repaired: " + what);
  return over;
}

void Agent::recordQdisc(const std::string& ifname) {
  std::ofstream(qdiscRecord(cfg_.stateDir), std::ios::app) << ifname << "\n";
}

bool Agent::isExternalDevice(const Link& link) const {
  if (link.loopback || isPodDevice(link, cfg_.externalDevices)) return false;
  if (!cfg_.externalDevices.empty())
    return std::find(cfg_.externalDevices.begin(), cfg_.externalDevices.end(), link.name) !=
           cfg_.externalDevices.end();
  return !link.addrs.empty();
}

// NodePorts and externalIPs arrive here: XDP where possible, tc always
// (the path when XDP is off or unsupported, and for what XDP leaves to it).
void Agent::attachExternal(const Link& link) {
  Status s = dp_->attachTc(link.ifindex, TcDirection::Ingress, Program::ExtIn);
  if (s) s = dp_->attachTc(link.ifindex, TcDirection::Egress, Program::ExtOut);
  if (!s) {
    logWarn("attach external device " + link.name + ": " + s.message());
    return;
  }
  std::string path = "tc";
  if (cfg_.xdp != AgentConfig::Xdp::Off) {
    XdpMode mode = cfg_.xdp == AgentConfig::Xdp::Native ? XdpMode::Native : XdpMode::Generic;
    Status x = dp_->attachXdp(link.ifindex, mode);
    if (x)
      path = std::string("XDP (") + (mode == XdpMode::Native ? "native" : "generic") + ") + tc";
    else
      logWarn(link.name + ": " + x.message() + "; NodePorts use the tc path");
  } else {
    Datapath::detachXdpIfOurs(link.ifindex);
  }
  extAttached_.insert(link.ifindex);
  logInfo("attached to external device " + link.name + ": " + path);
}

void Agent::syncNodeAddrs() {
  std::set<IpAddr> want;
  for (const auto& [ifindex, link] : links_->links())
    if (isExternalDevice(link)) want.insert(link.addrs.begin(), link.addrs.end());
  auto map = dp_->nodeAddrs();
  for (const IpAddr& a : want) {
    if (nodeAddrs_.count(a)) continue;
    Status s = map.update(toAbiAddr(a), ferry_node_addr{});
    if (s) nodeAddrs_.insert(a);
    else logError("node address " + a.str() + ": " + s.message());
  }
  for (auto it = nodeAddrs_.begin(); it != nodeAddrs_.end();) {
    if (want.count(*it)) {
      ++it;
      continue;
    }
    map.erase(toAbiAddr(*it));
    it = nodeAddrs_.erase(it);
  }
}

void Agent::syncDevices() {
  std::set<int> present, external;
  for (const auto& [ifindex, link] : links_->links()) {
    if (isExternalDevice(link)) {
      external.insert(ifindex);
      if (!extAttached_.count(ifindex)) attachExternal(link);
      continue;
    }
    if (!isPodDevice(link, cfg_.externalDevices)) continue;
    present.insert(ifindex);
    if (attached_.count(ifindex)) continue;
    bool created = false;
    Status s = dp_->attachTc(ifindex, TcDirection::Ingress, Program::FromPod, &created);
    if (s) s = dp_->attachTc(ifindex, TcDirection::Egress, Program::ToPod);
    if (!s) {
      // The device may be gone already (pod deleted): the next event
      // tells; nothing to undo.
      logWarn("attach " + link.name + ": " + s.message());
      continue;
    }
    if (created) recordQdisc(link.name);
    attached_.insert(ifindex);
    logInfo("attached to pod device " + link.name);
  }
  std::erase_if(attached_, [&](int i) { return !present.count(i); });
  std::erase_if(extAttached_, [&](int i) { return !external.count(i); });
  syncNodeAddrs();
  updateNodeIp();
  std::vector<std::string> externalNames;
  for (int ifindex : extAttached_) externalNames.push_back(links_->links().at(ifindex).name);
  announce_->setDevices(externalNames);
}

void Agent::updateNodeIp() {
  std::optional<IpAddr> ip = cfg_.nodeIp;
  // IPv6 (hairpin of IPv6 services): the first global address of an
  // external device; link-local fe80::/10 cannot be a flow's source.
  std::optional<IpAddr> ip6;
  for (const auto& [ifindex, link] : links_->links()) {
    if (!isExternalDevice(link)) continue;
    for (const IpAddr& a : link.addrs) {
      if (a.isV4() && !ip && !cfg_.nodeIp) ip = a;
      bool linkLocal = a.bytes[0] == 0xfe && (a.bytes[1] & 0xc0) == 0x80;
      if (!a.isV4() && !linkLocal && !ip6) ip6 = a;
    }
  }
  if (ip == snatIp_ && ip6 == snatIp6_) return;
  ferry_config c{};
  dp_->config().lookup(0, &c);
  c.snat4 = ip ? toAbiAddr(*ip) : ferry_addr{};
  c.snat6 = ip6 ? toAbiAddr(*ip6) : ferry_addr{};
  Status s = dp_->config().update(0, c);
  if (!s) {
    logError("node address for SNAT: " + s.message());
    return;
  }
  snatIp_ = ip;
  snatIp6_ = ip6;
  logInfo("node address for SNAT (hairpin, NodePort to other nodes): " +
          (ip ? ip->str() : std::string("none")) + ", IPv6 (hairpin): " +
          (ip6 ? ip6->str() : std::string("none")));
}

// Total over any JSON value: a request of the wrong shape ("snapshot", [],
// {"cmd": 5}) gets an error reply.
nlohmann::json Agent::handle(const nlohmann::json& req) const {
  std::string why;
  std::string cmd = controlCommand(req, &why);
  if (cmd.empty()) return {{"error", why}};
  if (cmd == "service") {
    // One service and its endpoints (cheap at any scale; benchmarks poll it).
    auto ns = req.find("namespace"), name = req.find("name");
    if (ns == req.end() || name == req.end() || !ns->is_string() || !name->is_string())
      return {{"error", "service: namespace and name (strings) are required"}};
    auto it = cp_->snapshot().services.find(ns->get<std::string>() + "/" + name->get<std::string>());
    if (it == cp_->snapshot().services.end()) return {{"error", "not found"}};
    return {{"service", serviceToJson(it->second)}, {"endpoints", endpointsToJson(it->second)}};
  }
  if (cmd == "status") return sourceStatus();
  if (cmd == "cluster-info") return clusterInfo();
  nlohmann::json out;
  out["node"] = cfg_.nodeName;
  out["services"] = nlohmann::json::array();
  out["endpoints"] = nlohmann::json::array();
  if (cmd == "verify") {
    const DnsRecords* dns = dns_ ? &dns_->currentRecords() : nullptr;
    return cp_->verify(dns, dns_ ? dns_->config().clusterDomain : "");
  }
  const ClusterSnapshot& snapshot = cp_->snapshot();
  for (const auto& [key, svc] : snapshot.services) {
    out["services"].push_back(serviceToJson(svc));
    if (svc.type != ServiceType::ExternalName) out["endpoints"].push_back(endpointsToJson(svc));
  }
  out["errors"] = nlohmann::json::array();
  for (const ManifestError& e : snapshot.errors)
    out["errors"].push_back({{"file", e.file},
                             {"object", e.object},
                             {"field", e.field},
                             {"message", e.message},
                             {"severity", e.warning() ? e.severity : "Error"}});
  std::vector<uint64_t> stats = dp_->stats();
  // "<hook>/<reason>", non-zero only: which path handled what.
  out["stats"] = nlohmann::json::object();
  for (size_t i = 0; i < stats.size(); ++i)
    if (stats[i])
      out["stats"][std::string(kHookNames[i / FERRY_STAT_MAX]) + "/" +
                   kStatNames[i % FERRY_STAT_MAX]] = stats[i];
  out["announce"] = announce_->statusJson();
  out["changes"] = nlohmann::json::array();
  for (const ChangeReport& c : cp_->recent()) out["changes"].push_back(c.toJson());
  out["programmed"] = {{"frontends", cp_->programmed().frontends.size()},
                       {"backends", cp_->programmed().backends.size()},
                       {"devices", attached_.size()}};
  return out;
}

// What status.loadBalancer.ingress of each LoadBalancer service ferry
// serves should be, and what the apiserver last showed.
std::map<std::string, LbStatusWant> Agent::lbWant() const {
  std::map<std::string, LbStatusWant> out;
  const ObjectStore& objs = cp_->objects();
  for (const auto& [key, svc] : cp_->snapshot().services) {
    if (svc.type != ServiceType::LoadBalancer || svc.loadBalancerIgnored) continue;
    LbStatusWant& w = out[key];
    for (const IpAddr& ip : svc.loadBalancerIngress) w.ingress.push_back(ip.str());
    const Service* o = objs.service(key);
    if (!o || !o->object.is_object()) continue;
    const nlohmann::json* st = &o->object.get();
    for (const char* k : {"status", "loadBalancer", "ingress"}) {
      st = st->is_object() && st->contains(k) ? &(*st)[k] : nullptr;
      if (!st) break;
    }
    if (st && st->is_array())
      for (const auto& in : *st)
        if (in.is_object() && in.contains("ip") && in["ip"].is_string())
          w.observed.push_back(in["ip"].get<std::string>());
  }
  return out;
}

// `ferryctl status`: where definitions come from and how that is going.
nlohmann::json Agent::sourceStatus() const {
  nlohmann::json out;
  if (kube_) {
    out = kube_->statusJson();
    if (lbStatus_) out["loadBalancerStatus"] = lbStatus_->status();
  } else {
    out = {{"source", "directory"}, {"directory", cfg_.manifestsDir}, {"synced", true},
           {"connected", true}, {"lastError", ""}};
  }
  out["node"] = cfg_.nodeName;
  out["programmed"] = planned_;
  return out;
}

// `ferryctl cluster-info`: the cluster-wide settings this agent uses, with
// kube-apiserver's flag names where there is one.
nlohmann::json Agent::clusterInfo() const {
  nlohmann::json out;
  std::string cidrs;
  for (const IpPrefix& p : cfg_.serviceCidrs) cidrs += (cidrs.empty() ? "" : ",") + p.str();
  out["service-cluster-ip-range"] = cidrs;
  out["service-cidrs-from"] =
      kube_ && kube_->servesServiceCidrs() && !kube_->serviceCidrs().empty()
          ? "ServiceCIDR objects (networking.k8s.io/v1)"
          : "--service-cidr";
  out["service-node-port-range"] =
      std::to_string(cfg_.nodePortMin) + "-" + std::to_string(cfg_.nodePortMax);
  out["cluster-domain"] = cfg_.dns.clusterDomain;
  nlohmann::json dns = nlohmann::json::array();
  for (const DnsAddr& d : cfg_.dns.listen) dns.push_back(d.str());
  out["dns-listen"] = dns;
  // The cluster DNS Service's address, as pods are told (kube-system/kube-dns).
  nlohmann::json dnsIPs = nlohmann::json::array();
  auto it = cp_->snapshot().services.find("kube-system/kube-dns");
  if (it != cp_->snapshot().services.end())
    for (const IpAddr& ip : it->second.clusterIPs) dnsIPs.push_back(ip.str());
  out["cluster-dns"] = dnsIPs;
  out["source"] = kube_ ? "kubernetes" : "directory";
  out["source-detail"] = source_->describe();
  out["node"] = cfg_.nodeName;
  return out;
}

Status Agent::run() {
  sigset_t mask;
  sigemptyset(&mask);
  sigaddset(&mask, SIGTERM);
  sigaddset(&mask, SIGINT);
  sigprocmask(SIG_BLOCK, &mask, nullptr);
  int sfd = signalfd(-1, &mask, SFD_CLOEXEC);
  if (sfd < 0) return Status::sys("signalfd", errno);

  syncDevices();
  sync(Clock::now());
  if (source_->ready())
    logInfo("ferryd ready on node " + cfg_.nodeName + ", watching " + source_->describe());
  else
    logInfo("ferryd on node " + cfg_.nodeName + " waiting for the initial lists of " +
            source_->describe() + "; the dataplane stays as it is until then");

  std::optional<Clock::time_point> pending;
  // The first sync may have begun a sliced map write or left a backlog:
  // continued by the loop's next passes.
  if (cp_->writing() || !backlog_.events.empty()) pending = Clock::now();
  Clock::time_point arrival = Clock::now();
  Clock::time_point nextDriftCheck = Clock::now() + kDriftCheck;
  for (;;) {
    std::vector<pollfd> fds = {{sfd, POLLIN, 0},
                               {source_->pollFd(), POLLIN, 0},
                               {links_->pollFd(), POLLIN, 0}};
    constexpr size_t kControlFirst = 3;  // control listener and clients follow the fixed ones
    for (const pollfd& p : control_->pollFds()) fds.push_back(p);
    const size_t dnsFirst = fds.size();  // then DNS sockets
    if (dns_)
      for (const pollfd& p : dns_->pollFds()) fds.push_back(p);
    const size_t healthFirst = fds.size();  // then healthCheckNodePort listeners
    for (int fd : health_.pollFds()) fds.push_back({fd, POLLIN, 0});
    const size_t announceFirst = fds.size();  // then ARP/NDP sockets
    for (int fd : announce_->pollFds()) fds.push_back({fd, POLLIN, 0});
    const size_t healthzFirst = fds.size();  // then /healthz, /readyz
    if (healthz_) fds.push_back({healthz_->pollFd(), POLLIN, 0});
    int timeout = -1;
    for (auto due : {pending, retryAt_, std::optional<Clock::time_point>(nextDriftCheck)}) {
      if (!due) continue;
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(*due - Clock::now());
      int t = std::max<int>(0, static_cast<int>(left.count()) + 1);
      timeout = timeout < 0 ? t : std::min(timeout, t);
    }
    if (dns_ && dns_->timeoutMs() >= 0)
      timeout = timeout < 0 ? dns_->timeoutMs() : std::min(timeout, dns_->timeoutMs());
    for (int t : {health_.timeoutMs(), announce_->timeoutMs(), control_->timeoutMs(),
                  healthz_ ? healthz_->timeoutMs() : -1, logTick()})
      if (t >= 0) timeout = timeout < 0 ? t : std::min(timeout, t);
    int n = poll(fds.data(), fds.size(), timeout);
    if (n < 0 && errno != EINTR) return Status::sys("poll", errno);
    if (fds[0].revents) break;
    if (fds[1].revents && source_->drain() && !pending) {
      arrival = Clock::now();
      pending = arrival + kDebounce;
    }
    if (fds[2].revents && links_->drain()) syncDevices();
    for (size_t i = kControlFirst; n > 0 && i < dnsFirst; ++i)
      if (fds[i].revents) control_->onReady(fds[i].fd, fds[i].revents);
    control_->onTimer();
    if (dns_) {
      for (size_t i = dnsFirst; n > 0 && i < healthFirst; ++i)
        if (fds[i].revents) dns_->onReady(fds[i].fd, fds[i].revents);
      dns_->onTimer();
    }
    for (size_t i = healthFirst; n > 0 && i < announceFirst; ++i)
      if (fds[i].revents) health_.onReadable(fds[i].fd);
    health_.onTimer();
    for (size_t i = announceFirst; n > 0 && i < healthzFirst; ++i)
      if (fds[i].revents) announce_->onReadable(fds[i].fd);
    if (healthz_) {
      if (n > 0 && fds[healthzFirst].revents) healthz_->run();
      else if (healthz_->timeoutMs() == 0) healthz_->run();
    }
    announce_->onTimer();  // renews this node's lease when due
    if (retryAt_ && Clock::now() >= *retryAt_ && !pending) pending = Clock::now();
    if (pending && Clock::now() >= *pending) {
      pending.reset();
      sync(arrival);
      if (!backlog_.events.empty() || source_->more() || cp_->writing())
        pending = Clock::now();  // the next slice, after one pass of the loop
    }
    if (Clock::now() >= nextDriftCheck) {
      // Not while a change is being applied (a backlog of slices, a sliced
      // write): the round waits, the change's passes go first.
      bool busy = pending || !backlog_.events.empty();
      bool over = !planned_ || (!busy && checkDrift());
      nextDriftCheck = Clock::now() + (over && !busy ? kDriftCheck : kDriftPace);
    }
  }
  close(sfd);
  // A clean stop releases the lease: another node takes the addresses over
  // at its next lease read, not after the lease expires.
  announce_->stop();
  logInfo("ferryd stopping; the dataplane stays in place");
  return Status::ok();
}

Status Agent::cleanup(const std::string& bpffs, const std::string& stateDir) {
  // Never under a running agent.
  int pinFd = -1, stateFd = -1;
  if (Status s = lockAgent(bpffs, stateDir, &pinFd, &stateFd, /*create=*/false); !s) return s;
  struct Unlock {
    int a, b;
    ~Unlock() {
      if (a >= 0) close(a);
      if (b >= 0) close(b);
    }
  } unlock{pinFd, stateFd};
  auto links = LinkWatcher::list();
  if (!links) return links.status();
  std::set<std::string> created;
  if (!stateDir.empty()) {
    std::ifstream in(qdiscRecord(stateDir));
    for (std::string name; std::getline(in, name);) created.insert(name);
  }
  for (const auto& [ifindex, link] : *links) {
    Datapath::detachTc(ifindex, TcDirection::Ingress);
    Datapath::detachTc(ifindex, TcDirection::Egress);
    Datapath::detachXdpIfOurs(ifindex);
    if (created.count(link.name)) Datapath::destroyClsact(ifindex);
  }
  Status s = Datapath::unpinAll(bpffs);
  if (!s) return s;
  if (!stateDir.empty()) std::filesystem::remove(qdiscRecord(stateDir));
  return Status::ok();
}

}  // namespace ferry
