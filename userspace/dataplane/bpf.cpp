#include "dataplane/bpf.h"

#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include <fcntl.h>
#include <linux/if_link.h>
#include <linux/magic.h>
#include <net/if.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <cerrno>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <algorithm>
#include <filesystem>
#include <utility>

#include "ferry.skel.h"
#include "xdp_pass.skel.h"

namespace ferry {

namespace {

constexpr uint32_t kTcHandle = 0xfe;  // our filter's handle and priority
constexpr uint32_t kTcPriority = 0xfe;

struct CgroupHook {
  const char* name;  // pin name of the link
  bpf_program* (*prog)(::ferry_bpf*);
};

const CgroupHook kCgroupHooks[] = {
    {"link_sock4_connect", [](::ferry_bpf* s) { return s->progs.ferry_sock4_connect; }},
    {"link_sock4_sendmsg", [](::ferry_bpf* s) { return s->progs.ferry_sock4_sendmsg; }},
    {"link_sock4_recvmsg", [](::ferry_bpf* s) { return s->progs.ferry_sock4_recvmsg; }},
    {"link_sock4_getpeername", [](::ferry_bpf* s) { return s->progs.ferry_sock4_getpeername; }},
    {"link_sock6_connect", [](::ferry_bpf* s) { return s->progs.ferry_sock6_connect; }},
    {"link_sock6_sendmsg", [](::ferry_bpf* s) { return s->progs.ferry_sock6_sendmsg; }},
    {"link_sock6_recvmsg", [](::ferry_bpf* s) { return s->progs.ferry_sock6_recvmsg; }},
    {"link_sock6_getpeername", [](::ferry_bpf* s) { return s->progs.ferry_sock6_getpeername; }},
};

// Maps pinned by name under the pin dir.
std::vector<bpf_map*> pinnedMaps(::ferry_bpf* s) {
  return {s->maps.ferry_svc,         s->maps.ferry_backends, s->maps.ferry_ct,
          s->maps.ferry_sock_revnat, s->maps.ferry_config,   s->maps.ferry_stats,
          s->maps.ferry_node_addrs,  s->maps.ferry_src_ranges, s->maps.ferry_members,
          s->maps.ferry_affinity,    s->maps.ferry_maglev,   s->maps.ferry_frags};
}

bpf_tc_hook tcHook(int ifindex, TcDirection dir) {
  bpf_tc_hook h{};
  h.sz = sizeof(h);
  h.ifindex = ifindex;
  h.attach_point = dir == TcDirection::Ingress ? BPF_TC_INGRESS : BPF_TC_EGRESS;
  return h;
}

// libbpf reports expected conditions as warnings (an existing clsact
// qdisc); keep its real warnings, drop the noise and debug chatter.
int libbpfPrint(enum libbpf_print_level level, const char* fmt, va_list args) {
  if (level == LIBBPF_DEBUG) return 0;
  // Whole messages: a verifier log runs to many kilobytes, and its end
  // (the failing instruction) is what matters.
  std::vector<char> buf(1 << 16);
  vsnprintf(buf.data(), buf.size(), fmt, args);
  if (std::strstr(buf.data(), "Exclusivity flag on")) return 0;
  return std::fprintf(stderr, "libbpf: %s", buf.data());
}

}  // namespace

template <typename K, typename V>
Status Map<K, V>::update(const K& k, const V& v) const {
  if (bpf_map_update_elem(fd_, &k, &v, BPF_ANY)) return Status::sys("map update", errno);
  return Status::ok();
}

template <typename K, typename V>
Status Map<K, V>::updateMany(const std::vector<K>& keys, const std::vector<V>& values,
                             size_t* failedAt, size_t from, size_t to) const {
  constexpr size_t kChunk = 4096;
  to = std::min(to, keys.size());
  for (size_t off = from; off < to; off += kChunk) {
    size_t n = std::min(kChunk, to - off);
    if (batch_) {
      LIBBPF_OPTS(bpf_map_batch_opts, opts, .elem_flags = BPF_ANY);
      uint32_t count = static_cast<uint32_t>(n);
      if (bpf_map_update_batch(fd_, &keys[off], &values[off], &count, &opts) == 0) continue;
    }
    for (size_t i = off; i < off + n; ++i) {  // per entry; names the failing one
      Status s = update(keys[i], values[i]);
      if (!s) {
        if (failedAt) *failedAt = i;
        return s;
      }
    }
  }
  return Status::ok();
}

template <typename K, typename V>
Status Map<K, V>::eraseMany(const std::vector<K>& keys, size_t* failedAt, size_t from,
                            size_t to) const {
  constexpr size_t kChunk = 4096;
  to = std::min(to, keys.size());
  for (size_t off = from; off < to; off += kChunk) {
    size_t n = std::min(kChunk, to - off);
    size_t done = 0;
    if (batch_) {
      LIBBPF_OPTS(bpf_map_batch_opts, opts);
      uint32_t count = static_cast<uint32_t>(n);
      if (bpf_map_delete_batch(fd_, &keys[off], &count, &opts) == 0) continue;
      done = std::min<size_t>(count, n);  // deleted before the one that stopped it
    }
    for (size_t i = off + done; i < off + n; ++i) {
      Status s = erase(keys[i]);
      if (!s) {
        if (failedAt) *failedAt = i;
        return s;
      }
    }
  }
  return Status::ok();
}

template <typename K, typename V>
Status Map<K, V>::erase(const K& k) const {
  if (bpf_map_delete_elem(fd_, &k) && errno != ENOENT) return Status::sys("map delete", errno);
  return Status::ok();
}

template <typename K, typename V>
bool Map<K, V>::lookup(const K& k, V* v) const {
  return bpf_map_lookup_elem(fd_, &k, v) == 0;
}

template <typename K, typename V>
void Map<K, V>::forEach(const std::function<void(const K&, const V&)>& fn) const {
  MapCursor c;
  while (scan(&c, 4096, fn)) {
  }
}

template <typename K, typename V>
bool Map<K, V>::scan(MapCursor* c, size_t max, const std::function<void(const K&, const V&)>& fn) const {
  if (c->done) return false;
  max = std::max<size_t>(max, 1);
  if (!c->perEntry) {
    // The token is a u32 bucket index for hash maps and a key for the
    // generic batch ops: room for either.
    if (c->token.empty()) c->token.assign(std::max<size_t>(sizeof(K), 8), 0);
    std::vector<uint8_t> out(c->token.size());
    // A bucket is handed out whole: a call whose room is smaller than the
    // next bucket fails with ENOSPC and is retried with more room.
    size_t room = std::max<size_t>(max, 64);
    for (int tries = 0; tries < 8; ++tries, room *= 4) {
      std::vector<K> keys(room);
      std::vector<V> values(room);
      uint32_t count = static_cast<uint32_t>(room);
      LIBBPF_OPTS(bpf_map_batch_opts, opts);
      int r = bpf_map_lookup_batch(fd_, c->started ? c->token.data() : nullptr, out.data(),
                                   keys.data(), values.data(), &count, &opts);
      int err = r ? errno : 0;
      if (r == 0 || err == ENOENT) {
        c->started = true;
        c->token = out;
        for (uint32_t i = 0; i < count && i < room; ++i) fn(keys[i], values[i]);
        c->visited += count;
        if (err == ENOENT) c->done = true;  // the end (with the last entries, if any)
        return !c->done;
      }
      if (err == ENOSPC) continue;
      break;  // no batch lookup for this map (or the kernel): per entry
    }
    if (c->started) {  // a batch walk that failed midway: done, as far as it got
      c->done = true;
      return false;
    }
    c->perEntry = true;
    c->token.clear();
  }
  K next{};
  V value{};
  for (size_t n = 0; n < max; ++n) {
    const void* prev = c->token.empty() ? nullptr : c->token.data();
    if (bpf_map_get_next_key(fd_, prev, &next) != 0) {
      c->done = true;
      return false;
    }
    c->token.assign(reinterpret_cast<const uint8_t*>(&next),
                    reinterpret_cast<const uint8_t*>(&next) + sizeof(K));
    c->started = true;
    ++c->visited;
    if (bpf_map_lookup_elem(fd_, &next, &value) == 0) fn(next, value);
  }
  return true;
}

template class Map<ferry_svc_key, ferry_svc_value>;
template class Map<uint32_t, ferry_backend>;
template class Map<ferry_ct_key, ferry_ct_value>;
template class Map<uint32_t, ferry_config>;
template class Map<ferry_addr, ferry_node_addr>;
template class Map<ferry_src_range_key, uint8_t>;
template class Map<ferry_member_key, uint8_t>;
template class Map<ferry_affinity_key, ferry_affinity_value>;

namespace {

// Flow state: entries are carried over when only the capacity changed.
bool holdsFlows(const bpf_map* m) {
  std::string name = bpf_map__name(m);
  return name == "ferry_ct" || name == "ferry_sock_revnat" || name == "ferry_affinity";
}

// Copies every entry of `from` into `to` (same key and value sizes).
// Returns the number copied; stops quietly when `to` is full.
size_t copyEntries(int from, int to, uint32_t keySize, uint32_t valueSize, uint32_t type) {
  bool perCpu = type == BPF_MAP_TYPE_PERCPU_ARRAY || type == BPF_MAP_TYPE_PERCPU_HASH ||
                type == BPF_MAP_TYPE_LRU_PERCPU_HASH;
  if (perCpu) return 0;  // counters: starting from zero is fine
  std::vector<uint8_t> key(keySize), next(keySize), value(valueSize);
  size_t copied = 0;
  void* prev = nullptr;
  while (bpf_map_get_next_key(from, prev, next.data()) == 0) {
    if (bpf_map_lookup_elem(from, next.data(), value.data()) == 0 &&
        bpf_map_update_elem(to, next.data(), value.data(), BPF_ANY) == 0)
      ++copied;
    key = next;
    prev = key.data();
  }
  return copied;
}

Expected<std::vector<PinnedMapChange>> reconcilePinnedMaps(::ferry_bpf* skel,
                                                           const std::string& pinDir) {
  std::vector<PinnedMapChange> changes;
  for (bpf_map* m : pinnedMaps(skel)) {
    std::string path = pinDir + "/" + bpf_map__name(m);
    int fd = bpf_obj_get(path.c_str());
    if (fd < 0) {
      if (errno == ENOENT) continue;
      return Status::sys("open pinned map " + path, errno);
    }
    bpf_map_info info{};
    uint32_t len = sizeof(info);
    int err = bpf_obj_get_info_by_fd(fd, &info, &len);
    if (err) {
      close(fd);
      return Status::sys("inspect pinned map " + path, -err);
    }
    PinnedMapChange c;
    c.name = bpf_map__name(m);
    bool sameShape = info.type == bpf_map__type(m) && info.key_size == bpf_map__key_size(m) &&
                     info.value_size == bpf_map__value_size(m) &&
                     info.map_flags == bpf_map__map_flags(m);
    if (sameShape && info.max_entries == bpf_map__max_entries(m)) {
      close(fd);
      continue;
    }
    char why[160];
    std::snprintf(why, sizeof(why), "type %u key %u value %u entries %u -> %u/%u/%u/%u",
                  info.type, info.key_size, info.value_size, info.max_entries,
                  bpf_map__type(m), bpf_map__key_size(m), bpf_map__value_size(m),
                  bpf_map__max_entries(m));
    c.reason = why;
    if (sameShape && holdsFlows(m)) {
      // Same layout, new capacity: keep the old map open, load a fresh one
      // and carry the flows over after the load (see copyPinnedFlows).
      c.oldFd = fd;
    } else {
      close(fd);
      c.flowsLost = holdsFlows(m);
    }
    if (unlink(path.c_str()) != 0) {
      if (c.oldFd >= 0) close(c.oldFd);
      return Status::sys("replace pinned map " + path, errno);
    }
    changes.push_back(std::move(c));
  }
  return changes;
}

}  // namespace

bool isBpffs(const std::string& path) {
  struct statfs st {};
  return statfs(path.c_str(), &st) == 0 && st.f_type == BPF_FS_MAGIC;
}

Expected<std::unique_ptr<Datapath>> Datapath::load(const DatapathOptions& opts) {
  libbpf_set_strict_mode(LIBBPF_STRICT_ALL);
  libbpf_set_print(libbpfPrint);
  ::ferry_bpf* skel = ferry_bpf__open();
  if (!skel) return Status::sys("open BPF skeleton", errno);
  std::unique_ptr<::ferry_bpf, void (*)(::ferry_bpf*)> guard(skel, ferry_bpf__destroy);

  bpf_map__set_max_entries(skel->maps.ferry_svc, opts.svcMapSize);
  bpf_map__set_max_entries(skel->maps.ferry_backends, opts.backendMapSize);
  bpf_map__set_max_entries(skel->maps.ferry_ct, opts.ctMapSize);
  // one pair per (frontend, backend) slot: as many as service entries
  bpf_map__set_max_entries(skel->maps.ferry_members, opts.svcMapSize);
  if (opts.ctTimeoutTcpNs) skel->rodata->ct_timeout_tcp_ns = opts.ctTimeoutTcpNs;
  if (opts.ctTimeoutOtherNs) skel->rodata->ct_timeout_other_ns = opts.ctTimeoutOtherNs;
  if (opts.snatPortMin) skel->rodata->snat_port_min = opts.snatPortMin;
  if (opts.snatPortMax) skel->rodata->snat_port_max = opts.snatPortMax;
  skel->rodata->maglev_table_size = opts.maglevTableSize;
  bpf_map__set_value_size(skel->maps.ferry_maglev, sizeof(uint32_t) * opts.maglevTableSize);

  std::vector<PinnedMapChange> changes;
  if (!opts.pinDir.empty()) {
    std::error_code ec;
    std::filesystem::create_directories(opts.pinDir, ec);
    if (ec) return Status::error("create pin dir " + opts.pinDir + ": " + ec.message());
    if (!isBpffs(opts.pinDir))
      return Status::error("--bpffs " + opts.pinDir +
                           " is not on a bpf filesystem; mount one with: mount -t bpf bpf " +
                           opts.pinDir);
    auto reconciled = reconcilePinnedMaps(skel, opts.pinDir);
    if (!reconciled) return reconciled.status();
    changes = std::move(*reconciled);
    for (bpf_map* m : pinnedMaps(skel)) {
      std::string path = opts.pinDir + "/" + bpf_map__name(m);
      if (int err = bpf_map__set_pin_path(m, path.c_str()))
        return Status::sys("pin path " + path, err);
    }
  }
  bpf_program__set_autoload(skel->progs.ferry_sock_udp_sweep, canDestroySockets());
  auto closeOld = [&changes] {
    for (auto& c : changes)
      if (c.oldFd >= 0) close(std::exchange(c.oldFd, -1));
  };
  if (int err = ferry_bpf__load(skel)) {
    closeOld();
    return Status::sys("load BPF programs", err);
  }
  for (auto& c : changes) {
    if (c.oldFd < 0) continue;
    bpf_map* m = bpf_object__find_map_by_name(skel->obj, c.name.c_str());
    if (m)
      c.flowsKept = copyEntries(c.oldFd, bpf_map__fd(m), bpf_map__key_size(m),
                                bpf_map__value_size(m), bpf_map__type(m));
  }
  closeOld();
  guard.release();
  auto dp = std::unique_ptr<Datapath>(new Datapath(skel, opts.pinDir));
  dp->replacedMaps_ = std::move(changes);
  dp->maglevTableSize_ = opts.maglevTableSize;
  // Batched writes, probed once: an empty batch is refused by a map type
  // without batch ops (ENOTSUPP) and accepted otherwise.
  dp->batchOk_ = true;
  for (bpf_map* m : {skel->maps.ferry_svc, skel->maps.ferry_backends, skel->maps.ferry_members,
                     skel->maps.ferry_src_ranges}) {
    LIBBPF_OPTS(bpf_map_batch_opts, bo, .elem_flags = BPF_ANY);
    uint32_t count = 0;
    std::vector<uint8_t> k(bpf_map__key_size(m)), v(bpf_map__value_size(m));
    if (bpf_map_update_batch(bpf_map__fd(m), k.data(), v.data(), &count, &bo) != 0)
      dp->batchOk_ = false;
  }
  return dp;
}

Datapath::~Datapath() { ferry_bpf__destroy(skel_); }

bool Datapath::canDestroySockets() {
  static const bool can = [] {
    btf* vmlinux = btf__load_vmlinux_btf();
    if (!vmlinux) return false;
    bool found = btf__find_by_name_kind(vmlinux, "bpf_sock_destroy", BTF_KIND_FUNC) >= 0;
    btf__free(vmlinux);
    return found;
  }();
  return can;
}

Expected<size_t> Datapath::sweepStaleUdpSockets() const {
  bpf_program* prog = skel_->progs.ferry_sock_udp_sweep;
  if (!bpf_program__autoload(prog))
    return Status::error("stale UDP socket sweep: the kernel has no bpf_sock_destroy (Linux >= 6.5)");
  bpf_link* link = bpf_program__attach_iter(prog, nullptr);
  if (!link) return Status::sys("stale UDP socket sweep: attach the UDP socket iterator", errno);
  int fd = bpf_iter_create(bpf_link__fd(link));
  if (fd < 0) {
    int err = errno;
    bpf_link__destroy(link);
    return Status::sys("stale UDP socket sweep: create the iterator", err);
  }
  // One byte per destroyed socket; bounded (a netns has at most a few
  // hundred thousand UDP sockets).
  size_t destroyed = 0;
  char buf[4096];
  for (int i = 0; i < 100000; ++i) {
    ssize_t n = read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    destroyed += static_cast<size_t>(n);
  }
  close(fd);
  bpf_link__destroy(link);
  return destroyed;
}

Map<ferry_svc_key, ferry_svc_value> Datapath::services() const {
  return Map<ferry_svc_key, ferry_svc_value>(bpf_map__fd(skel_->maps.ferry_svc), batchWrites());
}
Map<uint32_t, ferry_backend> Datapath::backends() const {
  return Map<uint32_t, ferry_backend>(bpf_map__fd(skel_->maps.ferry_backends), batchWrites());
}
Map<ferry_ct_key, ferry_ct_value> Datapath::conntrack() const {
  return Map<ferry_ct_key, ferry_ct_value>(bpf_map__fd(skel_->maps.ferry_ct));
}
Map<uint32_t, ferry_config> Datapath::config() const {
  return Map<uint32_t, ferry_config>(bpf_map__fd(skel_->maps.ferry_config));
}
Map<ferry_src_range_key, uint8_t> Datapath::srcRanges() const {
  return Map<ferry_src_range_key, uint8_t>(bpf_map__fd(skel_->maps.ferry_src_ranges), batchWrites());
}
Map<ferry_member_key, uint8_t> Datapath::members() const {
  return Map<ferry_member_key, uint8_t>(bpf_map__fd(skel_->maps.ferry_members), batchWrites());
}

Map<ferry_affinity_key, ferry_affinity_value> Datapath::affinity() const {
  return Map<ferry_affinity_key, ferry_affinity_value>(bpf_map__fd(skel_->maps.ferry_affinity));
}

Status Datapath::maglevUpdate(uint32_t svcId, const std::vector<uint32_t>& table) const {
  if (table.size() != maglevTableSize_) return Status::error("Maglev table of the wrong size");
  if (bpf_map_update_elem(bpf_map__fd(skel_->maps.ferry_maglev), &svcId, table.data(), BPF_ANY))
    return Status::sys("Maglev table update", errno);
  return Status::ok();
}

Status Datapath::maglevErase(uint32_t svcId) const {
  if (bpf_map_delete_elem(bpf_map__fd(skel_->maps.ferry_maglev), &svcId) && errno != ENOENT)
    return Status::sys("Maglev table delete", errno);
  return Status::ok();
}

bool Datapath::maglevTable(uint32_t svcId, std::vector<uint32_t>* table) const {
  table->resize(maglevTableSize_);
  return bpf_map_lookup_elem(bpf_map__fd(skel_->maps.ferry_maglev), &svcId, table->data()) == 0;
}

std::map<uint32_t, std::vector<uint32_t>> Datapath::maglevTables() const {
  std::map<uint32_t, std::vector<uint32_t>> out;
  int fd = bpf_map__fd(skel_->maps.ferry_maglev);
  uint32_t key = 0, next = 0;
  uint32_t* prev = nullptr;
  std::vector<uint32_t> value(maglevTableSize_);
  while (bpf_map_get_next_key(fd, prev, &next) == 0) {
    if (bpf_map_lookup_elem(fd, &next, value.data()) == 0) out[next] = value;
    key = next;
    prev = &key;
  }
  return out;
}

Map<ferry_addr, ferry_node_addr> Datapath::nodeAddrs() const {
  return Map<ferry_addr, ferry_node_addr>(bpf_map__fd(skel_->maps.ferry_node_addrs));
}

std::vector<uint64_t> Datapath::stats() const {
  int ncpu = libbpf_num_possible_cpus();
  std::vector<uint64_t> out(FERRY_HOOK_MAX * FERRY_STAT_MAX, 0);
  if (ncpu <= 0) return out;
  std::vector<uint64_t> percpu(ncpu);
  int fd = bpf_map__fd(skel_->maps.ferry_stats);
  for (uint32_t i = 0; i < out.size(); ++i) {
    if (bpf_map_lookup_elem(fd, &i, percpu.data())) continue;
    for (uint64_t v : percpu) out[i] += v;
  }
  return out;
}

int Datapath::progFd(Program p) const {
  switch (p) {
    case Program::FromPod:
      return bpf_program__fd(skel_->progs.ferry_from_pod);
    case Program::ToPod:
      return bpf_program__fd(skel_->progs.ferry_to_pod);
    case Program::ExtIn:
      return bpf_program__fd(skel_->progs.ferry_ext_in);
    case Program::ExtOut:
      return bpf_program__fd(skel_->progs.ferry_ext_out);
    case Program::ExtXdp:
      return bpf_program__fd(skel_->progs.ferry_ext_xdp);
  }
  return -1;
}

Status Datapath::attachTc(int ifindex, TcDirection dir, Program prog, bool* createdQdisc) {
  bpf_tc_hook hook = tcHook(ifindex, dir);
  int err = bpf_tc_hook_create(&hook);
  if (err && err != -EEXIST) return Status::sys("create clsact", err);
  if (createdQdisc) *createdQdisc = (err == 0);
  bpf_tc_opts opts{};
  opts.sz = sizeof(opts);
  opts.handle = kTcHandle;
  opts.priority = kTcPriority;
  opts.prog_fd = progFd(prog);
  opts.flags = BPF_TC_F_REPLACE;
  if ((err = bpf_tc_attach(&hook, &opts))) return Status::sys("attach tc program", err);
  return Status::ok();
}

Status Datapath::detachTc(int ifindex, TcDirection dir) {
  bpf_tc_hook hook = tcHook(ifindex, dir);
  bpf_tc_opts opts{};
  opts.sz = sizeof(opts);
  opts.handle = kTcHandle;
  opts.priority = kTcPriority;
  int err = bpf_tc_detach(&hook, &opts);
  if (err && err != -ENOENT && err != -EINVAL) return Status::sys("detach tc program", err);
  return Status::ok();
}

Status Datapath::destroyClsact(int ifindex) {
  bpf_tc_hook hook = tcHook(ifindex, TcDirection::Ingress);
  hook.attach_point = static_cast<bpf_tc_attach_point>(BPF_TC_INGRESS | BPF_TC_EGRESS);
  int err = bpf_tc_hook_destroy(&hook);
  if (err && err != -ENOENT && err != -EINVAL) return Status::sys("destroy clsact", err);
  return Status::ok();
}

Status Datapath::attachXdp(int ifindex, XdpMode mode, Program prog) {
  uint32_t flags = mode == XdpMode::Native ? XDP_FLAGS_DRV_MODE : XDP_FLAGS_SKB_MODE;
  int err = bpf_xdp_attach(ifindex, progFd(prog), flags, nullptr);
  if (err) return Status::sys(std::string("attach XDP (") +
                                  (mode == XdpMode::Native ? "native" : "generic") + ")",
                              err);
  return Status::ok();
}

Status Datapath::detachXdpIfOurs(int ifindex) {
  for (uint32_t flags : {XDP_FLAGS_DRV_MODE, XDP_FLAGS_SKB_MODE}) {
    uint32_t id = 0;
    if (bpf_xdp_query_id(ifindex, flags, &id) || id == 0) continue;
    int fd = bpf_prog_get_fd_by_id(id);
    if (fd < 0) continue;
    bpf_prog_info info{};
    uint32_t len = sizeof(info);
    bool ours = bpf_obj_get_info_by_fd(fd, &info, &len) == 0 &&
                std::strncmp(info.name, "ferry_", 6) == 0;
    close(fd);
    if (ours && bpf_xdp_detach(ifindex, flags, nullptr))
      return Status::sys("detach XDP", errno);
  }
  return Status::ok();
}

Status Datapath::attachCgroup(const std::string& cgroupPath) {
  if (pinDir_.empty()) return Status::error("cgroup hooks need a pin dir");
  int cg = open(cgroupPath.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (cg < 0) return Status::sys("open cgroup " + cgroupPath, errno);
  Status result;
  for (const CgroupHook& h : kCgroupHooks) {
    std::string path = pinDir_ + "/" + h.name;
    bpf_program* prog = h.prog(skel_);
    bpf_link* existing = access(path.c_str(), F_OK) == 0 ? bpf_link__open(path.c_str()) : nullptr;
    if (bpf_link* link = existing) {
      // Already attached by an earlier run: swap in this run's program.
      int err = bpf_link__update_program(link, prog);
      bpf_link__disconnect(link);
      bpf_link__destroy(link);
      if (err) {
        result = Status::sys(std::string("update ") + h.name, err);
        break;
      }
      continue;
    }
    bpf_link* link = bpf_program__attach_cgroup(prog, cg);
    if (!link) {
      result = Status::sys(std::string("attach ") + h.name + " to " + cgroupPath, errno);
      break;
    }
    int err = bpf_link__pin(link, path.c_str());
    bpf_link__disconnect(link);  // the pin keeps it attached after we exit
    bpf_link__destroy(link);
    if (err) {
      result = Status::sys("pin " + path, err);
      break;
    }
  }
  close(cg);
  return result;
}

Status Datapath::unpinAll(const std::string& pinDir) {
  std::error_code ec;
  if (!std::filesystem::exists(pinDir, ec)) return Status::ok();
  for (const auto& entry : std::filesystem::directory_iterator(pinDir, ec)) {
    if (unlink(entry.path().c_str()) && errno != ENOENT)
      return Status::sys("unpin " + entry.path().string(), errno);
  }
  rmdir(pinDir.c_str());
  return Status::ok();
}

Status Datapath::testRun(Program prog, const std::vector<uint8_t>& in, std::vector<uint8_t>* out,
                         uint32_t* retval, uint32_t repeat, uint32_t* durationNs,
                         uint32_t ingressIfindex) const {
  out->assign(in.size() + 512, 0);
  LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = in.data(), .data_out = out->data(),
              .data_size_in = static_cast<uint32_t>(in.size()),
              .data_size_out = static_cast<uint32_t>(out->size()), .repeat = static_cast<int>(repeat));
  xdp_md xctx{};
  __sk_buff sctx{};
  if (prog == Program::ExtXdp) {
    xctx.data_end = static_cast<uint32_t>(in.size());
    xctx.ingress_ifindex = ingressIfindex;
    opts.ctx_in = &xctx;
    opts.ctx_size_in = sizeof(xctx);
  } else if (ingressIfindex) {
    sctx.ifindex = ingressIfindex;
    opts.ctx_in = &sctx;
    opts.ctx_size_in = sizeof(sctx);
  }
  int err = bpf_prog_test_run_opts(progFd(prog), &opts);
  if (err) return Status::sys("BPF_PROG_TEST_RUN", errno);
  out->resize(opts.data_size_out);
  *retval = opts.retval;
  if (durationNs) *durationNs = opts.duration;
  return Status::ok();
}

Status Datapath::testRunBaseline(bool xdp, const std::vector<uint8_t>& in, uint32_t repeat,
                                 uint32_t* durationNs) {
  // Loaded once per process and kept: benchmarks call this per packet.
  static ::xdp_pass_bpf* skel = xdp_pass_bpf__open_and_load();
  if (!skel) return Status::sys("load empty programs", errno);
  std::vector<uint8_t> out(in.size() + 512, 0);
  LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = in.data(), .data_out = out.data(),
              .data_size_in = static_cast<uint32_t>(in.size()),
              .data_size_out = static_cast<uint32_t>(out.size()), .repeat = static_cast<int>(repeat));
  int fd = bpf_program__fd(xdp ? skel->progs.xdp_pass : skel->progs.tc_pass);
  if (bpf_prog_test_run_opts(fd, &opts)) return Status::sys("BPF_PROG_TEST_RUN", errno);
  if (durationNs) *durationNs = opts.duration;
  return Status::ok();
}

}  // namespace ferry
