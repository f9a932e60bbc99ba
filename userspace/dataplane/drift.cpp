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

DriftScan::Result DriftScan::step(const Datapath& dp, const ProgrammedState& want,
                                  uint64_t generation, Clock::time_point deadline) {
  bool ok = true;  // false: drift found (detail_)
  auto mapStart = [&] {
    if (!cursor_.started) generation_ = generation;
  };
  auto quiet = [&] { return generation_ == generation; };
  do {
    switch (phase_) {
      case Services: {
        mapStart();
        bool more = dp.services().scan(&cursor_, kChunk, [&](const ferry_svc_key& k,
                                                              const ferry_svc_value& v) {
          if (!ok) return;
          FrontendKey fk = fromSvcKey(k);
          auto it = want.frontends.find(fk);
          if (it == want.frontends.end()) {
            ok = drift("services: unknown frontend " + fk.str());
            return;
          }
          const ProgrammedFrontend& pf = it->second;
          if (k.slot == 0) {
            if (v.svc_id != pf.svcId || v.count != pf.count || v.flags != pf.flags ||
                v.affinity_timeout_s != pf.affinity)
              ok = drift("services: frontend " + fk.str() + " changed");
          } else if (k.slot > pf.slots.size() || pf.slots[k.slot - 1] != v.backend_id) {
            ok = drift("services: frontend " + fk.str() + " slot " + std::to_string(k.slot) +
                       " changed or unknown");
          }
          ++matched_;
          ++read_;
        });
        if (!ok) return Result::Drifted;
        if (more) break;
        if (!quiet()) {
          ++countsSkipped_;
          goTo(Backends);
          break;
        }
        phase_ = ServicesCount;  // matched_ carried into the count
        wanted_ = 0;
        countAfter_.reset();
        break;
      }
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
      case Backends: {
        mapStart();
        bool more = dp.backends().scan(&cursor_, kChunk, [&](const uint32_t& id,
                                                              const ferry_backend& b) {
          if (!ok) return;
          BackendKey bk = fromBackend(b);
          auto it = want.backends.find(bk);
          if (it == want.backends.end() || it->second.id != id || it->second.flags != b.flags)
            ok = drift("backends: id " + std::to_string(id) + " unknown or changed");
          ++matched_;
          ++read_;
        });
        if (!ok) return Result::Drifted;
        if (more) break;
        if (quiet() && !finishCount(matched_, want.backends.size(), "backends"))
          return Result::Drifted;
        if (!quiet()) ++countsSkipped_;
        goTo(Members);
        break;
      }
      case Members: {
        mapStart();
        bool more = dp.members().scan(&cursor_, kChunk, [&](const ferry_member_key& k,
                                                             const uint8_t& v) {
          if (!ok) return;
          std::pair<uint32_t, uint32_t> m{k.svc_id, k.backend_id};
          bool kept = want.keptOnly.count(m) > 0;
          if (!want.members.count(m) || bool(v & FERRY_MEMBER_NEW) == kept)
            ok = drift("members: (" + std::to_string(k.svc_id) + ", " +
                       std::to_string(k.backend_id) + ") unknown or changed");
          ++matched_;
          ++read_;
        });
        if (!ok) return Result::Drifted;
        if (more) break;
        if (quiet() && !finishCount(matched_, want.members.size(), "members"))
          return Result::Drifted;
        if (!quiet()) ++countsSkipped_;
        goTo(SrcRanges);
        break;
      }
      case SrcRanges: {
        mapStart();
        bool more = dp.srcRanges().scan(&cursor_, kChunk, [&](const ferry_src_range_key& k,
                                                               const uint8_t&) {
          if (!ok) return;
          if (!want.srcRanges.count(fromSrcRangeKey(k)))
            ok = drift("source ranges: unknown entry of service id " +
                       std::to_string(fromSrcRangeKey(k).first));
          ++matched_;
          ++read_;
        });
        if (!ok) return Result::Drifted;
        // The LPM trie is walked by key: a key deleted between chunks
        // restarts the walk, so it is bounded; a cut walk proves nothing.
        bool cut = cursor_.visited > 2 * want.srcRanges.size() + kChunk;
        if (more && !cut) break;
        if (cut || !quiet()) {
          ++countsSkipped_;
        } else if (!finishCount(matched_, want.srcRanges.size(), "source ranges")) {
          return Result::Drifted;
        }
        goTo(Maglev);
        maglevAfter_.reset();
        break;
      }
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
  } while (phase_ != Done && Clock::now() < deadline);
  return phase_ == Done ? Result::Clean : Result::More;
}

}  // namespace ferry
