#include "dataplane/writer.h"

#include <algorithm>
#include <set>

#include "dataplane/maglev.h"

namespace ferry {

std::vector<std::string> MapWriter::apply(const MapDelta& d) {
  std::vector<std::string> errors;
  auto note = [&](const Status& s, const std::string& what) {
    if (!s) errors.push_back(what + ": " + s.message());
  };
  auto svc = dp_.services();
  auto be = dp_.backends();
  auto ranges = dp_.srcRanges();
  {
    std::vector<uint32_t> ids;
    std::vector<ferry_backend> values;
    for (const auto& [id, b] : d.backendUpserts) {
      ids.push_back(id);
      values.push_back(b);
    }
    size_t failedAt = 0;
    Status s = be.updateMany(ids, values, &failedAt);
    if (!s) note(s, "backend " + std::to_string(ids[failedAt]));
  }
  auto members = dp_.members();
  for (const auto& k : d.srcRangeUpserts) note(ranges.update(k, 1), "source range");
  {
    size_t failedAt = 0;
    Status s = members.updateMany(d.memberUpserts, d.memberValues, &failedAt);
    if (!s)
      note(s, "membership of backend " + std::to_string(d.memberUpserts[failedAt].backend_id) +
                  " in service id " + std::to_string(d.memberUpserts[failedAt].svc_id));
  }
  for (const auto& u : d.maglevUpserts) {
    uint32_t m = dp_.maglevTableSize();
    if (warn_ && uint64_t(u.backends.size()) * 100 >= m)
      warn_(u.owner + ": Maglev table size " + std::to_string(m) + " is not more than 100 x its " +
            std::to_string(u.backends.size()) +
            " endpoints: an endpoint change may move more than 1/N of the flows "
            "(raise --maglev-table-size)");
    note(dp_.maglevUpdate(u.svcId, maglevTable(u.backends, m)), u.owner);
  }
  // Slots and masters go in batches (a full resync of 10,000 services is
  // 200,000 entries); slots strictly before masters, as the delta orders.
  for (const auto* list : {&d.slotUpserts, &d.masterUpserts}) {
    std::vector<ferry_svc_key> keys;
    std::vector<ferry_svc_value> values;
    keys.reserve(list->size());
    values.reserve(list->size());
    for (const auto& u : *list) {
      keys.push_back(u.key);
      values.push_back(u.value);
    }
    size_t failedAt = 0;
    Status s = svc.updateMany(keys, values, &failedAt);
    if (!s) {
      note(s, (*list)[failedAt].owner);
      // the rest of this list, one by one, so every failure is named
      for (size_t i = failedAt + 1; i < list->size(); ++i)
        note(svc.update((*list)[i].key, (*list)[i].value), (*list)[i].owner);
    }
  }
  for (const auto& k : d.masterDeletes) note(svc.erase(k), "frontend " + fromSvcKey(k).str());
  for (const auto& k : d.slotDeletes) note(svc.erase(k), "frontend " + fromSvcKey(k).str());
  for (uint32_t id : d.maglevDeletes)
    note(dp_.maglevErase(id), "Maglev table of service id " + std::to_string(id));
  for (const auto& k : d.memberDeletes) note(members.erase(k), "membership");
  for (uint32_t id : d.backendDeletes) note(be.erase(id), "backend " + std::to_string(id));
  for (const auto& k : d.srcRangeDeletes) note(ranges.erase(k), "source range");
  // Connected UDP sockets of the node pinned to a backend that left
  // (kubernetes#125467); without bpf_sock_destroy they stay until the
  // application reconnects (documented in the README).
  if ((!d.memberDeletes.empty() || !d.masterDeletes.empty()) && Datapath::canDestroySockets()) {
    auto n = dp_.sweepStaleUdpSockets();
    // Not a map failure (that would replan everything): kept apart.
    if (n)
      destroyed_ += *n;
    else
      sweepError_ = n.status().message();
  }
  return errors;
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
