#include "dataplane/service_planner.h"

#include <algorithm>
#include <stdexcept>

#include "model/endpoint_sets.h"

namespace ferry {

namespace {

std::map<std::string, std::string> zonesOf(const std::map<std::string, Node>& nodes) {
  std::map<std::string, std::string> out;
  for (const auto& [name, n] : nodes)
    if (!n.zone.empty()) out[name] = n.zone;
  return out;
}

}  // namespace

const DesiredFrontend& ServicePlanner::Piece::at(const FrontendKey& fk) const {
  auto it = std::lower_bound(frontends.begin(), frontends.end(), fk,
                             [](const auto& e, const FrontendKey& k) { return e.first < k; });
  if (it == frontends.end() || it->first != fk) throw std::out_of_range("ServicePlanner: no frontend");
  return it->second;
}

namespace {

bool byName(const std::string* a, const std::string* b) { return *a < *b; }

}  // namespace

void ServicePlanner::add(const std::string& key, const Service& svc, std::set<FrontendKey>* fks,
                         std::set<BackendKey>* bks) {
  Desired d;
  addServiceFrontends(d, key, svc, node_, nodes_);
  if (usesTopology(svc)) topology_.insert(key);
  if (d.frontends.empty() && d.backendFlags.empty()) return;
  auto [pit, inserted] = pieces_.try_emplace(key);
  Piece& piece = pit->second;
  const std::string* name = &pit->first;  // stable while the piece lives
  piece.frontends.reserve(d.frontends.size());
  for (auto& [fk, fe] : d.frontends) {
    std::vector<const std::string*>& o = owners_[fk];
    o.insert(std::upper_bound(o.begin(), o.end(), name, byName), name);
    if (fks) fks->insert(fk);
    piece.frontends.emplace_back(fk, std::move(fe));
  }
  piece.backendFlags.reserve(d.backendFlags.size());
  for (const auto& [bk, flags] : d.backendFlags) {
    BackendRef& r = refs_[bk];
    r.refs++;
    if (flags & FERRY_BE_F_LOCAL) r.local++;
    if (bks) bks->insert(bk);
    piece.backendFlags.emplace_back(bk, flags);
  }
}

void ServicePlanner::drop(const std::string& key, std::set<FrontendKey>* fks,
                          std::set<BackendKey>* bks) {
  topology_.erase(key);
  auto it = pieces_.find(key);
  if (it == pieces_.end()) return;
  for (const auto& [fk, fe] : it->second.frontends) {
    auto o = owners_.find(fk);
    std::erase(o->second, &it->first);
    if (o->second.empty()) owners_.erase(o);
    fks->insert(fk);
  }
  for (const auto& [bk, flags] : it->second.backendFlags) {
    auto r = refs_.find(bk);
    r->second.refs--;
    if (flags & FERRY_BE_F_LOCAL) r->second.local--;
    if (!r->second.refs) refs_.erase(r);
    bks->insert(bk);
  }
  pieces_.erase(it);
}

const DesiredFrontend* ServicePlanner::winner(const FrontendKey& fk) const {
  auto o = owners_.find(fk);
  if (o == owners_.end()) return nullptr;
  return &pieces_.at(*o->second.back()).at(fk);
}

Desired ServicePlanner::desired() const {
  Desired d;
  // both in key order: appended at the end, no search
  for (const auto& [fk, owners] : owners_) d.frontends.emplace_hint(d.frontends.end(), fk, *winner(fk));
  for (const auto& [bk, r] : refs_)
    d.backendFlags.emplace_hint(d.backendFlags.end(), bk, r.local ? FERRY_BE_F_LOCAL : 0);
  return d;
}

MapDelta ServicePlanner::reset(const ClusterSnapshot& snap, ProgrammedState programmed) {
  pieces_.clear();
  owners_.clear();
  refs_.clear();
  topology_.clear();
  nodes_ = &snap.nodes;
  zones_ = zonesOf(snap.nodes);
  for (const auto& [key, svc] : snap.services) add(key, svc, nullptr, nullptr);
  MapDelta delta = planDelta(programmed, desired(), &st_);
  return delta;
}

MapDelta ServicePlanner::update(const ClusterSnapshot& snap, const std::set<std::string>& given) {
  std::set<FrontendKey> fks;
  std::set<BackendKey> bks;
  nodes_ = &snap.nodes;
  const std::set<std::string>* todo = &given;
  std::set<std::string> more;
  if (auto zones = zonesOf(snap.nodes); zones != zones_) {
    // A zone label changed: the services using topology are planned again.
    zones_ = std::move(zones);
    more = given;
    more.insert(topology_.begin(), topology_.end());
    todo = &more;
  }
  const std::set<std::string>& changed = *todo;
  for (const std::string& key : changed) {
    drop(key, &fks, &bks);
    auto it = snap.services.find(key);
    if (it != snap.services.end()) add(key, it->second, &fks, &bks);
  }
  MapDelta delta;
  std::vector<uint32_t> unused;
  for (const BackendKey& bk : bks) {
    auto r = refs_.find(bk);
    auto have = st_.backends.find(bk);
    if (r == refs_.end()) {
      if (have != st_.backends.end()) {
        unused.push_back(have->second.id);
        st_.backends.erase(have);
      }
      continue;
    }
    uint8_t flags = r->second.local ? FERRY_BE_F_LOCAL : 0;
    if (have == st_.backends.end()) {
      ProgrammedBackend pb{st_.nextBackendId++, flags};
      st_.backends[bk] = pb;
      delta.backendUpserts.emplace_back(pb.id, toBackend(bk, flags));
    } else if (have->second.flags != flags) {
      have->second.flags = flags;
      delta.backendUpserts.emplace_back(have->second.id, toBackend(bk, flags));
    }
  }
  for (const FrontendKey& fk : fks) planFrontend(st_, fk, winner(fk), delta);
  delta.backendDeletes = std::move(unused);  // after every slot naming them is gone
  return delta;
}

}  // namespace ferry
