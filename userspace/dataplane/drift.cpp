#include "dataplane/drift.h"

#include <algorithm>
#include <set>

namespace ferry {

void DriftScan::goTo(Phase p) {
  phase_ = p;
  cursor_ = MapCursor{};
  matched_ = 0;
}

// A map read through: its matching entries must be as many as `want`
// names, unless the agent wrote to the maps since the map's first chunk.
bool DriftScan::finishCount(size_t matched, size_t wanted, const char* map) {
  if (matched == wanted) return true;
  return drift(std::string(map) + ": " + std::to_string(matched) + " entries as programmed, " +
               std::to_string(wanted) + " expected");
}

template <typename K, typename V, typename Check>
DriftScan::Result DriftScan::walk(const Map<K, V>& map, std::optional<size_t> wanted,
                                  const char* name, bool bounded, uint64_t generation,
                                  Check check) {
  if (!cursor_.started) generation_ = generation;
  std::string what;
  bool more = map.scan(&cursor_, kChunk, [&](const K& k, const V& v) {
    if (!what.empty()) return;
    what = check(k, v);
    ++matched_;
    ++read_;
  });
  if (!what.empty()) return drift(std::string(name) + ": " + what), Result::Drifted;
  // A walk by key (the LPM trie) restarts when its key was deleted in
  // between: bounded, and a cut walk proves nothing about the count.
  bool cut = bounded && cursor_.visited > 2 * wanted.value_or(0) + kChunk;
  if (more && !cut) return Result::More;
  if (!wanted) return Result::Clean;  // counted by the caller
  if (cut || generation_ != generation)
    ++countsSkipped_;
  else if (!finishCount(matched_, *wanted, name))
    return Result::Drifted;
  return Result::Clean;
}

DriftScan::Result DriftScan::step(const Datapath& dp, const ProgrammedState& want,
                                  uint64_t generation, Clock::time_point deadline) {
  auto quiet = [&] { return generation_ == generation; };
  do {
    Result r = Result::More;
    switch (phase_) {
      case Services:
        r = walk(dp.services(), std::nullopt, "services", false, generation,
                 [&](const ferry_svc_key& k, const ferry_svc_value& v) -> std::string {
                   FrontendKey fk = fromSvcKey(k);
                   auto it = want.frontends.find(fk);
                   if (it == want.frontends.end()) return "unknown frontend " + fk.str();
                   const ProgrammedFrontend& pf = it->second;
                   if (k.slot == 0) {
                     if (v.svc_id != pf.svcId || v.count != pf.count || v.flags != pf.flags ||
                         v.affinity_timeout_s != pf.affinity)
                       return "frontend " + fk.str() + " changed";
                   } else if (k.slot > pf.slots.size() || pf.slots[k.slot - 1] != v.backend_id) {
                     return "frontend " + fk.str() + " slot " + std::to_string(k.slot) +
                            " changed or unknown";
                   }
                   return "";
                 });
        if (r != Result::Clean) break;
        if (!quiet()) {
          ++countsSkipped_;
          goTo(Backends);
          break;
        }
        phase_ = ServicesCount;  // matched_ carried into the count
        wanted_ = 0;
        countAfter_.reset();
        r = Result::More;
        break;
      case ServicesCount: {
        // Sums what `want` names in chunks too (300,000 frontends at 100,000
        // services): the same generation, so `want` is the one just read.
        if (!quiet()) {
          ++countsSkipped_;
          goTo(Backends);
          break;
        }
        auto it = countAfter_ ? want.frontends.upper_bound(*countAfter_) : want.frontends.begin();
        for (size_t n = 0; n < kChunk && it != want.frontends.end(); ++n, ++it) {
          wanted_ += 1 + it->second.slots.size();
          countAfter_ = it->first;
        }
        if (it != want.frontends.end()) break;
        if (!finishCount(matched_, wanted_, "services")) return Result::Drifted;
        goTo(Backends);
        break;
      }
      case Backends:
        r = walk(dp.backends(), want.backends.size(), "backends", false, generation,
                 [&](const uint32_t& id, const ferry_backend& b) -> std::string {
                   auto it = want.backends.find(fromBackend(b));
                   if (it == want.backends.end() || it->second.id != id || it->second.flags != b.flags)
                     return "id " + std::to_string(id) + " unknown or changed";
                   return "";
                 });
        if (r == Result::Clean) goTo(Members);
        break;
      case Members:
        r = walk(dp.members(), want.members.size(), "members", false, generation,
                 [&](const ferry_member_key& k, const uint8_t& v) -> std::string {
                   std::pair<uint32_t, uint32_t> m{k.svc_id, k.backend_id};
                   bool kept = want.keptOnly.count(m) > 0;
                   if (!want.members.count(m) || bool(v & FERRY_MEMBER_NEW) == kept)
                     return "(" + std::to_string(k.svc_id) + ", " + std::to_string(k.backend_id) +
                            ") unknown or changed";
                   return "";
                 });
        if (r == Result::Clean) goTo(SrcRanges);
        break;
      case SrcRanges:
        r = walk(dp.srcRanges(), want.srcRanges.size(), "source ranges", true, generation,
                 [&](const ferry_src_range_key& k, const uint8_t&) -> std::string {
                   auto e = fromSrcRangeKey(k);
                   if (!want.srcRanges.count(e))
                     return "unknown entry of service id " + std::to_string(e.first);
                   return "";
                 });
        if (r == Result::Clean) {
          goTo(Maglev);
          maglevAfter_.reset();
        }
        break;
      case Maglev: {
        // By the planner's tables (each a lookup of M ids); a table of no
        // programmed service is never read by the programs and not looked for.
        auto it = maglevAfter_ ? want.maglev.upper_bound(*maglevAfter_) : want.maglev.begin();
        std::vector<uint32_t> table;
        for (size_t n = 0; n < 4 && it != want.maglev.end(); ++n, ++it) {
          maglevAfter_ = it->first;
          if (!dp.maglevTable(it->first, &table))
            return drift("Maglev: no table for service id " + std::to_string(it->first)),
                   Result::Drifted;
          std::set<uint32_t> ids(table.begin(), table.end());
          std::set<uint32_t> expected(it->second.begin(), it->second.end());
          if (ids != expected)
            return drift("Maglev: the table of service id " + std::to_string(it->first) +
                         " holds other backends"),
                   Result::Drifted;
          read_ += table.size() / 64;
        }
        if (it == want.maglev.end()) goTo(Done);
        break;
      }
      case Done:
        return Result::Clean;
    }
    if (r == Result::Drifted) return r;
  } while (phase_ != Done && Clock::now() < deadline);
  return phase_ == Done ? Result::Clean : Result::More;
}

}  // namespace ferry
