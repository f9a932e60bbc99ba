// The drift check in slices: the maps compared with what the planner
// believes it programmed, a few thousand entries per pass of the event
// loop, so that at 100,000 services (3 million entries) the loop never
// stops for the seconds a whole read takes.
//
//   DriftScan scan;
//   switch (scan.step(dp, planner.programmed(), writer.generation(), deadline)) ...
//
// It is a detector only: on the first entry that differs the caller runs
// the full repair (MapWriter::readBack, ServicePlanner::reset), which is
// also what decides what to write.
#pragma once

#include <chrono>
#include <optional>
#include <string>

#include "dataplane/bpf.h"
#include "dataplane/planner.h"

namespace ferry {

class DriftScan {
 public:
  using Clock = std::chrono::steady_clock;
  enum class Result {
    More,     // not done: call step() again on a later pass
    Clean,    // done, every entry as programmed (`how` below)
    Drifted,  // an entry differs (detail()): run the full repair
  };

  // Reads on from where the last step stopped until `deadline` (at least
  // one chunk of kChunk entries), checking each entry against `want`:
  //   services  master fields (svc id, count, flags, affinity) and each
  //             slot's backend id; unknown frontends and slots drift
  //   backends  id -> the backend key and flags the planner gave that id
  //   members   (svc id, backend id) known, and NEW vs KEEP as programmed
  //   source ranges  (svc id, prefix) known
  //   Maglev    each programmed table holds exactly its backends' ids
  // Entries missing from a map are found by count: a map read through with
  // no write by this agent in between (`generation`, MapWriter::generation,
  // unchanged since that map's first chunk) must hold as many matching
  // entries as `want` names. When the agent wrote meanwhile, entries seen
  // are still checked one by one, and only the count is skipped for that
  // map in this round. `want` may change between steps (the lookups are
  // by key), never during one.
  Result step(const Datapath& dp, const ProgrammedState& want, uint64_t generation,
              Clock::time_point deadline);
  // Back to the start (after a repair, or to abandon a round).
  void reset() { *this = DriftScan{}; }
  // What differed, for the log ("" unless step() returned Drifted).
  const std::string& detail() const { return detail_; }
  // Entries read in this round so far.
  size_t entriesRead() const { return read_; }
  // Maps whose count was skipped in this round because the agent wrote.
  size_t countsSkipped() const { return countsSkipped_; }

  static constexpr size_t kChunk = 1024;

 private:
  enum Phase { Services, ServicesCount, Backends, Members, SrcRanges, Maglev, Done };
  bool drift(std::string what) {
    detail_ = std::move(what);
    return false;
  }
  void goTo(Phase p);
  // One chunk of a map's walk, `check` returning what differs ("" when the
  // entry is as programmed). More: not through; Clean: read through and
  // its count held (or was skipped; or `wanted` is empty: the caller
  // counts); Drifted.
  template <typename K, typename V, typename Check>
  Result walk(const Map<K, V>& map, std::optional<size_t> wanted, const char* name, bool bounded,
              uint64_t generation, Check check);
  bool finishCount(size_t matched, size_t wanted, const char* map);

  Phase phase_ = Services;
  MapCursor cursor_;
  uint64_t generation_ = 0;  // at the current map's first chunk
  size_t matched_ = 0;       // entries of the current map that matched
  size_t wanted_ = 0;        // ServicesCount: entries `want` names so far
  std::optional<FrontendKey> countAfter_;  // ServicesCount: the last frontend summed
  std::optional<uint32_t> maglevAfter_;    // Maglev: the last table checked
  size_t read_ = 0, countsSkipped_ = 0;
  std::string detail_;
};

}  // namespace ferry
