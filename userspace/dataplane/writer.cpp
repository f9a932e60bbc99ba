#include "dataplane/writer.h"

#include <algorithm>
#include <set>
#include <utility>

#include "dataplane/maglev.h"

namespace ferry {

namespace {
// Entries per system call and per check of the deadline: about 1.5 ms of
// kernel time on the development VM (about 3 us per batched hash entry).
constexpr size_t kChunk = 512;
constexpr size_t kMaglevChunk = 8;  // a table is maglevTableSize ids (64 KiB by default)
}  // namespace

void MapWriter::begin(MapDelta delta) {
  ++generation_;
  d_ = std::move(delta);
  phase_ = 0;
  at_ = 0;
  errors_.clear();
  beIds_.clear();
  beValues_.clear();
  for (const auto& [id, b] : d_.backendUpserts) {
    beIds_.push_back(id);
    beValues_.push_back(b);
  }
  for (int i = 0; i < 2; ++i) {
    const auto& list = i == 0 ? d_.slotUpserts : d_.masterUpserts;
    svcKeys_[i].clear();
    svcValues_[i].clear();
    svcKeys_[i].reserve(list.size());
    svcValues_[i].reserve(list.size());
    for (const auto& u : list) {
      svcKeys_[i].push_back(u.key);
      svcValues_[i].push_back(u.value);
    }
  }
  srValues_.assign(d_.srcRangeUpserts.size(), 1);
  writing_ = true;
}

bool MapWriter::step(std::chrono::steady_clock::time_point deadline) {
  if (!writing_) return true;
  auto note = [&](const Status& s, const std::string& what) {
    if (!s) errors_.push_back(what + ": " + s.message());
  };
  auto svc = dp_.services();
  auto be = dp_.backends();
  auto ranges = dp_.srcRanges();
  auto members = dp_.members();
  // One chunk of phase_ from at_; returns the size of the phase.
  // The phases are the delta's order (planner.h MapDelta): every upsert
  // that something points at before what points at it, then the deletes.
  auto chunk = [&]() -> size_t {
    size_t from = at_;
    switch (phase_) {
      case 0: {  // backends; the first failure ends the phase (a full re-plan follows)
        size_t n = beIds_.size(), to = std::min(n, from + kChunk), failedAt = 0;
        at_ = to;
        if (Status s = be.updateMany(beIds_, beValues_, &failedAt, from, to); !s) {
          note(s, "backend " + std::to_string(beIds_[failedAt]));
          at_ = n;
        }
        return n;
      }
      case 1: {  // source ranges, before masters name them
        size_t n = d_.srcRangeUpserts.size(), to = std::min(n, from + kChunk), failedAt = 0;
        at_ = to;
        if (Status s = ranges.updateMany(d_.srcRangeUpserts, srValues_, &failedAt, from, to); !s) {
          note(s, "source range");
          at_ = failedAt + 1;
        }
        return n;
      }
      case 2: {  // memberships, before slots name them; the first failure ends the phase
        size_t n = d_.memberUpserts.size(), to = std::min(n, from + kChunk), failedAt = 0;
        at_ = to;
        if (Status s = members.updateMany(d_.memberUpserts, d_.memberValues, &failedAt, from, to);
            !s) {
          note(s, "membership of backend " + std::to_string(d_.memberUpserts[failedAt].backend_id) +
                      " in service id " + std::to_string(d_.memberUpserts[failedAt].svc_id));
          at_ = n;
        }
        return n;
      }
      case 3: {  // Maglev tables, before the masters that set FERRY_SVC_F_MAGLEV
        size_t n = d_.maglevUpserts.size(), to = std::min(n, from + kMaglevChunk);
        for (size_t i = from; i < to; ++i) {
          const auto& u = d_.maglevUpserts[i];
          uint32_t m = dp_.maglevTableSize();
          if (warn_ && uint64_t(u.backends.size()) * 100 >= m)
            warn_(u.owner + ": Maglev table size " + std::to_string(m) +
                  " is not more than 100 x its " + std::to_string(u.backends.size()) +
                  " endpoints: an endpoint change may move more than 1/N of the flows "
                  "(raise --maglev-table-size)");
          note(dp_.maglevUpdate(u.svcId, maglevTable(u.backends, m)), u.owner);
        }
        at_ = to;
        return n;
      }
      case 4:
      case 5: {  // slots strictly before masters; every failure is named
        int i = phase_ - 4;
        const auto& list = i == 0 ? d_.slotUpserts : d_.masterUpserts;
        size_t n = list.size(), to = std::min(n, from + kChunk), failedAt = 0;
        at_ = to;
        if (Status s = svc.updateMany(svcKeys_[i], svcValues_[i], &failedAt, from, to); !s) {
          note(s, list[failedAt].owner);
          at_ = failedAt + 1;
        }
        return n;
      }
      case 6:
      case 7: {  // removed masters, then stale slots
        const auto& keys = phase_ == 6 ? d_.masterDeletes : d_.slotDeletes;
        size_t n = keys.size(), to = std::min(n, from + kChunk), failedAt = 0;
        at_ = to;
        if (Status s = svc.eraseMany(keys, &failedAt, from, to); !s) {
          note(s, "frontend " + fromSvcKey(keys[failedAt]).str());
          at_ = failedAt + 1;
        }
        return n;
      }
      case 8: {
        size_t n = d_.maglevDeletes.size(), to = std::min(n, from + kChunk);
        for (size_t i = from; i < to; ++i)
          note(dp_.maglevErase(d_.maglevDeletes[i]),
               "Maglev table of service id " + std::to_string(d_.maglevDeletes[i]));
        at_ = to;
        return n;
      }
      case 9: {
        size_t n = d_.memberDeletes.size(), to = std::min(n, from + kChunk), failedAt = 0;
        at_ = to;
        if (Status s = members.eraseMany(d_.memberDeletes, &failedAt, from, to); !s) {
          note(s, "membership");
          at_ = failedAt + 1;
        }
        return n;
      }
      case 10: {
        size_t n = d_.backendDeletes.size(), to = std::min(n, from + kChunk), failedAt = 0;
        at_ = to;
        if (Status s = be.eraseMany(d_.backendDeletes, &failedAt, from, to); !s) {
          note(s, "backend " + std::to_string(d_.backendDeletes[failedAt]));
          at_ = failedAt + 1;
        }
        return n;
      }
      case 11: {
        size_t n = d_.srcRangeDeletes.size(), to = std::min(n, from + kChunk), failedAt = 0;
        at_ = to;
        if (Status s = ranges.eraseMany(d_.srcRangeDeletes, &failedAt, from, to); !s) {
          note(s, "source range");
          at_ = failedAt + 1;
        }
        return n;
      }
      default: {
        // Connected UDP sockets of the node pinned to a backend that left
        // (kubernetes#125467); without bpf_sock_destroy they stay until the
        // application reconnects (documented in the README).
        if ((!d_.memberDeletes.empty() || !d_.masterDeletes.empty()) &&
            Datapath::canDestroySockets()) {
          auto n = dp_.sweepStaleUdpSockets();
          // Not a map failure (that would replan everything): kept apart.
          if (n)
            destroyed_ += *n;
          else
            sweepError_ = n.status().message();
        }
        at_ = 1;
        return 1;
      }
    }
  };
  while (phase_ <= kLastPhase) {
    size_t n = chunk();
    if (at_ >= n) {
      ++phase_;
      at_ = 0;
    }
    // empty phases cost nothing: the deadline is looked at after real work
    if (n && phase_ <= kLastPhase && std::chrono::steady_clock::now() >= deadline) return false;
  }
  writing_ = false;
  d_ = MapDelta{};
  return true;
}

std::vector<std::string> MapWriter::takeFailures() { return std::exchange(errors_, {}); }

std::vector<std::string> MapWriter::apply(const MapDelta& d) { return apply(MapDelta(d)); }

std::vector<std::string> MapWriter::apply(MapDelta&& d) {
  begin(std::move(d));
  step(std::chrono::steady_clock::time_point::max());
  return takeFailures();
}
ProgrammedState MapWriter::readBack() const {
  ProgrammedState st;
  std::map<FrontendKey, std::map<uint16_t, uint32_t>> slots;
  dp_.services().forEach([&](const ferry_svc_key& k, const ferry_svc_value& v) {
    FrontendKey fk = fromSvcKey(k);
    if (k.slot == 0) {
      st.frontends[fk].svcId = v.svc_id;
      st.frontends[fk].count = v.count;
      st.frontends[fk].flags = v.flags;
      st.frontends[fk].affinity = v.affinity_timeout_s;
      st.nextSvcId = std::max(st.nextSvcId, v.svc_id + 1);
    } else {
      slots[fk][k.slot] = v.backend_id;
      st.frontends[fk];  // a slot without master is still ours to delete
    }
  });
  for (auto& [fk, pf] : st.frontends) {
    // Slots as found, holes included as id 0 (no backend has id 0), so
    // the next delta rewrites or deletes every stray entry left by a
    // crash in the middle of an update.
    auto& s = slots[fk];
    uint16_t last = s.empty() ? 0 : s.rbegin()->first;
    for (uint16_t i = 1; i <= last; ++i) pf.slots.push_back(s.count(i) ? s[i] : 0);
  }
  dp_.srcRanges().forEach([&](const ferry_src_range_key& k, const uint8_t&) {
    st.srcRanges.insert(fromSrcRangeKey(k));
  });
  dp_.members().forEach([&](const ferry_member_key& k, const uint8_t& v) {
    st.members.insert({k.svc_id, k.backend_id});
    if (!(v & FERRY_MEMBER_NEW)) st.keptOnly.insert({k.svc_id, k.backend_id});
  });
  dp_.backends().forEach([&](const uint32_t& id, const ferry_backend& b) {
    st.backends[fromBackend(b)] = ProgrammedBackend{id, b.flags};
    st.nextBackendId = std::max(st.nextBackendId, id + 1);
  });
  // A table is a function of its backends in key order: recover them from
  // the ids it holds (an id that names no backend forces a rebuild).
  std::map<uint32_t, const BackendKey*> byId;
  for (const auto& [bk, pb] : st.backends) byId[pb.id] = &bk;
  for (const auto& [svcId, table] : dp_.maglevTables()) {
    std::set<uint32_t> ids(table.begin(), table.end());
    std::vector<std::pair<BackendKey, uint32_t>> keyed;
    bool known = true;
    for (uint32_t id : ids) {
      auto b = byId.find(id);
      if (b == byId.end()) known = false;
      else keyed.emplace_back(*b->second, id);
    }
    std::sort(keyed.begin(), keyed.end());
    auto& out = st.maglev[svcId];
    for (const auto& [bk, id] : keyed) out.push_back(id);
    if (!known) out.push_back(0);
  }
  return st;
}

}  // namespace ferry
