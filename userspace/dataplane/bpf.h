// The only part of ferry that talks to libbpf: the loaded dataplane
// (skeleton, pinned maps), typed map handles, tc and cgroup attachment,
// and BPF_PROG_TEST_RUN for tests. Nothing else sees fds or void*.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <ferry/abi.h>

#include "common/status.h"

struct ferry_bpf;  // generated skeleton

namespace ferry {

// Where a resumable walk over a map stands (Map::scan). Default: the start.
struct MapCursor {
  bool started = false, done = false;
  bool perEntry = false;       // the map refused BPF_MAP_LOOKUP_BATCH: get_next_key
  std::vector<uint8_t> token;  // batch: the kernel's out_batch; per entry: the last key
  size_t visited = 0;          // entries handed out so far
};

// A typed view of one map (the Datapath owns the fd).
template <typename K, typename V>
class Map {
 public:
  // `batch`: the map takes BPF_MAP_UPDATE_BATCH / BPF_MAP_DELETE_BATCH
  // (probed once at load, Datapath::batchWrites); false: one call per entry.
  explicit Map(int fd = -1, bool batch = false) : fd_(fd), batch_(batch) {}
  Status update(const K& k, const V& v) const;
  // keys[from, to) with values[from, to): in batches of up to 4,096 entries
  // per system call when the map takes them (in order: a batch is applied
  // entry by entry in array order, kernel/bpf/syscall.c
  // generic_map_update_batch and htab's batch, so the result equals the
  // per-entry loop); on failure falls back to one call per entry so the
  // error names the entry that failed (*failedAt, an index into keys).
  // to == SIZE_MAX: to the end.
  Status updateMany(const std::vector<K>& keys, const std::vector<V>& values,
                    size_t* failedAt, size_t from = 0, size_t to = SIZE_MAX) const;
  Status erase(const K& k) const;  // missing key is not an error
  // keys[from, to) erased; missing keys are not an error (a batch stops at
  // one: the rest of that batch goes one by one). *failedAt as above.
  Status eraseMany(const std::vector<K>& keys, size_t* failedAt, size_t from = 0,
                   size_t to = SIZE_MAX) const;
  bool lookup(const K& k, V* v) const;
  // Visits every entry (scan() to the end: batched lookups where the map
  // takes them).
  void forEach(const std::function<void(const K&, const V&)>& fn) const;
  // Visits up to about `max` entries from `*cursor` (a batch may hand out a
  // whole hash bucket more) and returns false once the map is done
  // (cursor->done). Hash maps are read with BPF_MAP_LOOKUP_BATCH, whose
  // cursor is a bucket index (kernel/bpf/hashtab.c
  // __htab_map_lookup_and_delete_batch): entries written or deleted between
  // calls never restart the walk, each entry present throughout is seen
  // exactly once. Other map types (the LPM trie) go by
  // bpf_map_get_next_key from the last key; a key deleted in between
  // restarts the walk from the first key, so callers bound it by `visited`.
  bool scan(MapCursor* cursor, size_t max, const std::function<void(const K&, const V&)>& fn) const;
  int fd() const { return fd_; }
  bool batch() const { return batch_; }

 private:
  int fd_;
  bool batch_;
};

struct DatapathOptions {
  std::string pinDir;  // empty: maps are not pinned (tests)
  uint32_t svcMapSize = 262144;
  uint32_t backendMapSize = 262144;
  uint32_t ctMapSize = 262144;
  uint64_t ctTimeoutTcpNs = 0;    // 0: program default
  uint64_t ctTimeoutOtherNs = 0;  // 0: program default
  uint16_t snatPortMin = 0;       // 0: program default (61000-65535)
  uint16_t snatPortMax = 0;
  // Maglev table size M (a prime; --maglev-table-size): the value size of
  // ferry_maglev: a pinned map of another size is replaced at load.
  uint32_t maglevTableSize = FERRY_MAGLEV_TABLE_DEFAULT;
};

// A pinned map whose type, key, value, flags or capacity differ from the
// loaded programs' (an upgrade, or a new --*-map-size): it is unpinned and
// replaced at load. Flow maps (conntrack, socket reverse NAT) keep their
// entries when only the capacity changed; any other map is refilled by the
// agent from its model.
struct PinnedMapChange {
  std::string name;    // map name, e.g. "ferry_ct"
  std::string reason;  // old -> new type/key/value/entries
  bool flowsLost = false;  // a flow map with a new layout: its flows are gone
  size_t flowsKept = 0;    // entries carried over into the new map
  int oldFd = -1;          // internal: the old map while loading
};

enum class TcDirection { Ingress, Egress };
enum class Program { FromPod, ToPod, ExtIn, ExtOut, ExtXdp };
enum class XdpMode { Native, Generic };

class Datapath {
 public:
  // Opens and loads the programs; with a pinDir, reuses the maps pinned
  // there (so conntrack and services survive agent restarts) or pins new
  // ones. Pinned maps that no longer match the programs are replaced
  // (see PinnedMapChange) instead of failing the load.
  static Expected<std::unique_ptr<Datapath>> load(const DatapathOptions& opts);
  // What load() replaced, for the agent to log.
  const std::vector<PinnedMapChange>& replacedMaps() const { return replacedMaps_; }
  ~Datapath();
  Datapath(const Datapath&) = delete;
  Datapath& operator=(const Datapath&) = delete;

  Map<ferry_svc_key, ferry_svc_value> services() const;
  Map<uint32_t, ferry_backend> backends() const;
  Map<ferry_ct_key, ferry_ct_value> conntrack() const;
  Map<uint32_t, ferry_config> config() const;
  Map<ferry_addr, ferry_node_addr> nodeAddrs() const;
  Map<ferry_src_range_key, uint8_t> srcRanges() const;
  // (service id, backend id) pairs: which backends a flow may stay on.
  Map<ferry_member_key, uint8_t> members() const;
  // sessionAffinity: ClientIP entries.
  Map<ferry_affinity_key, ferry_affinity_value> affinity() const;
  // Whether the maps the writer fills (services, backends, members, source
  // ranges) take batched updates and deletes: probed once at load with an
  // empty BPF_MAP_UPDATE_BATCH (ENOTSUPP/EINVAL on a kernel or map type
  // without it, e.g. LPM tries before generic batch ops). Tests turn it off
  // to compare against the per-entry path.
  bool batchWrites() const { return batchOn_ && batchOk_; }
  void setBatchWrites(bool on) { batchOn_ = on; }
  // Maglev tables by service id (each exactly maglevTableSize() ids).
  Status maglevUpdate(uint32_t svcId, const std::vector<uint32_t>& table) const;
  Status maglevErase(uint32_t svcId) const;  // missing is not an error
  std::map<uint32_t, std::vector<uint32_t>> maglevTables() const;
  // One service's table (false when it has none).
  bool maglevTable(uint32_t svcId, std::vector<uint32_t>* table) const;
  uint32_t maglevTableSize() const { return maglevTableSize_; }
  // Counters summed over CPUs, indexed by hook * FERRY_STAT_MAX + stat.
  std::vector<uint64_t> stats() const;

  // tc: attaches (or atomically replaces) ferry's filter on the device.
  // The clsact qdisc is created when missing; `createdQdisc` says so.
  Status attachTc(int ifindex, TcDirection dir, Program prog, bool* createdQdisc = nullptr);
  static Status detachTc(int ifindex, TcDirection dir);
  static Status destroyClsact(int ifindex);

  // XDP on an external device (replaces what is attached).
  Status attachXdp(int ifindex, XdpMode mode, Program prog = Program::ExtXdp);
  // Detaches XDP from the device if the attached program is ferry's.
  static Status detachXdpIfOurs(int ifindex);

  // cgroup socket hooks, as links pinned in pinDir: they stay attached
  // when the agent exits, and a restarted agent swaps in its programs.
  Status attachCgroup(const std::string& cgroupPath);
  // Unpins the links (detaching the hooks) and the maps of a pin dir.
  static Status unpinAll(const std::string& pinDir);

  // Destroys the node's connected UDP sockets that the socket hooks
  // pinned to a backend no longer a member of its frontend (an iterator
  // over the netns's UDP sockets calling bpf_sock_destroy, Linux >= 6.5;
  // bpf/entry/sock_iter.c). Returns how many; an error naming the reason
  // when the kernel cannot (then nothing is loaded for it).
  Expected<size_t> sweepStaleUdpSockets() const;
  // The kernel has bpf_sock_destroy (vmlinux BTF), so the sweep is loaded.
  static bool canDestroySockets();

  // BPF_PROG_TEST_RUN. `out` is resized to the output. For XDP,
  // `ingressIfindex` is the device the frame pretends to arrive on.
  Status testRun(Program prog, const std::vector<uint8_t>& in, std::vector<uint8_t>* out,
                 uint32_t* retval, uint32_t repeat = 1, uint32_t* durationNs = nullptr,
                 uint32_t ingressIfindex = 0) const;

  // BPF_PROG_TEST_RUN of an empty program (XDP_PASS or TC_ACT_OK), the
  // baseline of per-packet benchmarks.
  static Status testRunBaseline(bool xdp, const std::vector<uint8_t>& in, uint32_t repeat,
                                uint32_t* durationNs);

 private:
  explicit Datapath(::ferry_bpf* skel, std::string pinDir) : skel_(skel), pinDir_(std::move(pinDir)) {}
  int progFd(Program p) const;
  ::ferry_bpf* skel_;
  std::string pinDir_;
  std::vector<PinnedMapChange> replacedMaps_;
  uint32_t maglevTableSize_ = FERRY_MAGLEV_TABLE_DEFAULT;
  bool batchOk_ = false;  // every written map took the probe
  bool batchOn_ = true;
};

// Is `path` on a bpf filesystem? (statfs magic)
bool isBpffs(const std::string& path);

}  // namespace ferry
