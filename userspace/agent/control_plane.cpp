#include "agent/control_plane.h"

#include <utility>

namespace ferry {

namespace {

int64_t usBetween(ControlPlane::Clock::time_point a, ControlPlane::Clock::time_point b) {
  return std::chrono::duration_cast<std::chrono::microseconds>(b - a).count();
}

}  // namespace

nlohmann::json ChangeReport::toJson() const {
  return {{"at", at},
          {"events", changes.events},
          {"servicesChanged", changes.services.size()},
          {"servicesRecomputed", changes.recomputed},
          {"mapEntries", mapEntries},
          {"allocated", changes.allocated},
          {"us", totalUs},
          {"waitUs", waitUs},
          {"modelUs", modelUs},
          {"planUs", planUs},
          {"mapsUs", mapsUs},
          {"failures", failures.size()}};
}

std::string ChangeReport::summary() const {
  auto n = [](auto v) { return std::to_string(v); };
  return n(changes.events) + " objects changed, " + n(changes.services.size()) +
         " services touched (" + n(changes.recomputed) + " recomputed" +
         (changes.allocated ? ", allocation" : "") + "), " + n(mapEntries) +
         " map entries written in " + n(totalUs) + " us (wait " + n(waitUs) + ", model " +
         n(modelUs) + ", plan " + n(planUs) + ", maps " + n(mapsUs) + ")";
}

ControlPlane::ControlPlane(BuildOptions opts, AllocationStore& store, MapWriter& writer,
                           std::string nodeName)
    : node_(nodeName), model_(std::move(opts), store), planner_(std::move(nodeName)), writer_(writer) {}

ChangeReport ControlPlane::apply(const SourceUpdate& u, Clock::time_point arrival, bool plan) {
  auto t0 = Clock::now();
  ChangeSet cs = model_.apply(u);
  return finish(std::move(cs), arrival, t0, plan);
}

ChangeReport ControlPlane::retryAllocations(Clock::time_point arrival, bool plan) {
  auto t0 = Clock::now();
  ChangeSet cs = model_.retryAllocations();
  return finish(std::move(cs), arrival, t0, plan);
}

ChangeReport ControlPlane::setServiceCidrs(std::vector<IpPrefix> cidrs, Clock::time_point arrival) {
  auto t0 = Clock::now();
  ChangeSet cs = model_.setServiceCidrs(std::move(cidrs));
  return finish(std::move(cs), arrival, t0, true);
}

std::string ControlPlane::repairDrift() {
  if (!planned_ || writing_) return "";  // a sliced write is not drift
  ProgrammedState now = writer_.readBack();
  const ProgrammedState& want = planner_.programmed();
  if (now.frontends == want.frontends && now.backends == want.backends &&
      now.srcRanges == want.srcRanges && now.members == want.members &&
      now.keptOnly == want.keptOnly)
    return "";
  size_t lostF = 0, strayF = 0, lostB = 0;
  for (const auto& [k, v] : want.frontends) {
    auto it = now.frontends.find(k);
    if (it == now.frontends.end() || !(it->second == v)) ++lostF;
  }
  for (const auto& [k, v] : now.frontends)
    if (!want.frontends.count(k)) ++strayF;
  for (const auto& [k, v] : want.backends) {
    auto it = now.backends.find(k);
    if (it == now.backends.end() || !(it->second == v)) ++lostB;
  }
  now.nextBackendId = std::max(now.nextBackendId, want.nextBackendId);
  now.nextSvcId = std::max(now.nextSvcId, want.nextSvcId);
  MapDelta delta = planner_.reset(model_.snapshot(), std::move(now));
  std::vector<std::string> failures = writer_.apply(delta);
  std::string out = std::to_string(lostF) + " frontends missing or changed, " +
                    std::to_string(strayF) + " unknown, " + std::to_string(lostB) +
                    " backends missing or changed: " + std::to_string(delta.size()) +
                    " map changes written";
  for (const auto& f : failures) out += "; " + f;
  return out;
}

bool ControlPlane::driftStep(Clock::time_point deadline, std::string* found) {
  found->clear();
  if (!planned_ || writing_) return false;
  size_t before = drift_.entriesRead();
  DriftScan::Result r =
      drift_.step(writer_.dataplane(), planner_.programmed(), writer_.generation(), deadline);
  driftRead_ += drift_.entriesRead() - before;
  if (r == DriftScan::Result::More) return false;
  if (r == DriftScan::Result::Drifted) {
    // The scan only detects; the full read decides and repairs.
    *found = repairDrift();
    if (!found->empty()) *found = drift_.detail() + "; " + *found;
  }
  drift_.reset();
  return true;
}

ChangeReport ControlPlane::finish(ChangeSet cs, Clock::time_point arrival, Clock::time_point t0,
                                  bool plan) {
  ChangeReport r;
  r.changes = std::move(cs);
  auto tModel = Clock::now();
  MapDelta delta;
  if (!plan) {
    unplanned_.insert(r.changes.services.begin(), r.changes.services.end());
  } else if (!planned_) {
    // The first change plans everything against what the maps hold (the
    // pinned state of a previous run): only the difference is written.
    delta = planner_.reset(model_.snapshot(), writer_.readBack());
    planned_ = true;
  } else if (!unplanned_.empty()) {
    unplanned_.insert(r.changes.services.begin(), r.changes.services.end());
    delta = planner_.update(model_.snapshot(), unplanned_);
    unplanned_.clear();
  } else {
    delta = planner_.update(model_.snapshot(), r.changes.services);
  }
  auto tPlanned = Clock::now();
  r.mapEntries = delta.size();
  size_t sliced = std::exchange(slicedMin_, 0);
  if (writing_) {
    // A sliced write still going (not expected: the agent waits for it):
    // finished at once before this delta, its failures reported here.
    writer_.step(Clock::time_point::max());
    for (auto& f : writer_.takeFailures()) r.failures.push_back(std::move(f));
    writing_.reset();
  }
  r.waitUs = usBetween(arrival, t0);
  r.modelUs = usBetween(t0, tModel);
  r.planUs = usBetween(tModel, tPlanned);
  if (sliced && delta.size() > sliced && r.failures.empty()) {
    writer_.begin(std::move(delta));
    writing_ = Writing{std::move(r), arrival, tPlanned};
    return ChangeReport{};
  }
  if (delta.size())
    for (auto& f : writer_.apply(std::move(delta))) r.failures.push_back(std::move(f));
  complete(r, arrival, tPlanned);
  return r;
}

std::optional<ChangeReport> ControlPlane::continueWrite(Clock::time_point deadline) {
  if (!writing_) return std::nullopt;
  if (!writer_.step(deadline)) return std::nullopt;
  Writing w = std::move(*writing_);
  writing_.reset();
  w.report.failures = writer_.takeFailures();
  complete(w.report, w.arrival, w.planned);
  return std::move(w.report);
}

void ControlPlane::complete(ChangeReport& r, Clock::time_point arrival,
                            Clock::time_point tPlanned) {
  if (!r.failures.empty()) {
    // Some entries are not what the planner believes: start over from the maps.
    MapDelta again = planner_.reset(model_.snapshot(), writer_.readBack());
    r.mapEntries += again.size();
    for (auto& f : writer_.apply(std::move(again))) r.failures.push_back(f);
  }
  auto done = Clock::now();
  r.mapsUs = usBetween(tPlanned, done);
  r.totalUs = usBetween(arrival, done);
  r.at = rfc3339Now();
  r.loadBalancers = r.changes.nodes || r.changes.pools;
  for (const std::string& key : r.changes.services) {
    auto it = model_.snapshot().services.find(key);
    bool lb = it != model_.snapshot().services.end() && it->second.type == ServiceType::LoadBalancer;
    r.loadBalancers |= lb || lbSeen_.count(key);
    if (lb)
      lbSeen_.insert(key);
    else
      lbSeen_.erase(key);
  }
  recent_.push_back(r);
  if (recent_.size() > kRecent) recent_.pop_front();
}

ClusterSnapshot ControlPlane::loadBalancerView() const {
  ClusterSnapshot v;
  for (const std::string& key : lbSeen_) v.services[key] = model_.snapshot().services.at(key);
  v.nodes = model_.snapshot().nodes;
  v.pools = model_.snapshot().pools;
  return v;
}

nlohmann::json ControlPlane::verify(const DnsRecords* dns, const std::string& domain) const {
  auto t0 = Clock::now();
  ClusterSnapshot full;
  std::vector<std::string> diffs = model_.verify(&full);
  // Map contents: what a full plan of the from-scratch snapshot wants,
  // against what the maps hold now.
  Desired want = desiredFromSnapshot(full, node());
  Desired have = planner_.desired();
  size_t desiredDiffs = 0;
  for (const auto& [fk, fe] : want.frontends) {
    auto it = have.frontends.find(fk);
    if (it == have.frontends.end() || it->second.backends != fe.backends ||
        it->second.keep != fe.keep || it->second.flags != fe.flags ||
        it->second.sourceRanges != fe.sourceRanges ||
        it->second.affinityTimeout != fe.affinityTimeout) {
      if (desiredDiffs++ < 20) diffs.push_back("frontend " + fk.str() + " (" + fe.owner + "): differs or missing in the incremental plan");
    }
  }
  for (const auto& [fk, fe] : have.frontends)
    if (!want.frontends.count(fk) && desiredDiffs++ < 20)
      diffs.push_back("frontend " + fk.str() + " (" + fe.owner + "): only in the incremental plan");
  if (writing_)
    diffs.push_back("maps: a large delta is still being written in slices (check again when the "
                    "agent logs \"synced\")");
  ProgrammedState inMaps = writer_.readBack();
  ProgrammedState after;
  MapDelta missing = planDelta(inMaps, want, &after);
  if (missing.size())
    diffs.push_back("maps: " + std::to_string(missing.size()) +
                    " entries differ from a full plan of the from-scratch snapshot");
  if (inMaps.frontends != planner_.programmed().frontends ||
      inMaps.backends != planner_.programmed().backends ||
      inMaps.srcRanges != planner_.programmed().srcRanges ||
      inMaps.maglev != planner_.programmed().maglev)
    diffs.push_back("maps: content differs from what the planner believes it programmed");
  if (dns) {
    auto fresh = DnsRecords::build(full, domain, dns->ttl(), dns->serial());
    if (!fresh->sameContent(*dns)) diffs.push_back("DNS records differ from a rebuild");
  }
  return {{"ok", diffs.empty()},
          {"differences", diffs},
          {"services", model_.snapshot().services.size()},
          {"objects", model_.objects().size()},
          {"frontends", inMaps.frontends.size()},
          {"backends", inMaps.backends.size()},
          {"us", usBetween(t0, Clock::now())}};
}

}  // namespace ferry
