/* SPDX-License-Identifier: GPL-2.0 */
/* Every map of ferry's dataplane. The agent pins them under --bpffs and
 * sizes them before load; tests load them unpinned. */
#ifndef FERRY_BPF_MAPS_H
#define FERRY_BPF_MAPS_H

#include "lib/common.h"

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 262144);
	__type(key, struct ferry_svc_key);
	__type(value, struct ferry_svc_value);
	__uint(map_flags, BPF_F_NO_PREALLOC);
} ferry_svc SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 262144);
	__type(key, __u32);
	__type(value, struct ferry_backend);
	__uint(map_flags, BPF_F_NO_PREALLOC);
} ferry_backends SEC(".maps");

/* (service id, backend id) pairs of every frontend's current backends. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 262144);
	__type(key, struct ferry_member_key);
	__type(value, __u8);
	__uint(map_flags, BPF_F_NO_PREALLOC);
} ferry_members SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 262144);
	__type(key, struct ferry_ct_key);
	__type(value, struct ferry_ct_value);
} ferry_ct SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct ferry_sock_key);
	__type(value, struct ferry_sock_value);
} ferry_sock_revnat SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct ferry_config);
} ferry_config SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, union ferry_addr);
	__type(value, struct ferry_node_addr);
} ferry_node_addrs SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 65536);
	__type(key, struct ferry_src_range_key);
	__type(value, __u8);
	__uint(map_flags, BPF_F_NO_PREALLOC);
} ferry_src_ranges SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, FERRY_HOOK_MAX * FERRY_STAT_MAX);
	__type(key, __u32);
	__type(value, __u64);
} ferry_stats SEC(".maps");

/* sessionAffinity: ClientIP: (svc id, client) -> backend, last use. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 262144);
	__type(key, struct ferry_affinity_key);
	__type(value, struct ferry_affinity_value);
} ferry_affinity SEC(".maps");

/* Maglev tables: svc id -> __u32[maglev_table_size] of backend ids. The
 * value size is set with the table size at load (no BTF type for it). */
const volatile __u32 maglev_table_size = FERRY_MAGLEV_TABLE_DEFAULT;

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(__u32) * FERRY_MAGLEV_TABLE_DEFAULT);
	__uint(map_flags, BPF_F_NO_PREALLOC);
} ferry_maglev SEC(".maps");

static __always_inline const struct ferry_config *config_get(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&ferry_config, &zero);
}

static __always_inline __u64 ferry_now(const struct ferry_config *cfg)
{
	if (cfg && cfg->now_override_ns)
		return cfg->now_override_ns;
	return bpf_ktime_get_ns();
}

static __always_inline void stat_inc(__u32 hook, __u32 reason)
{
	__u32 key = hook * FERRY_STAT_MAX + reason;
	__u64 *v = bpf_map_lookup_elem(&ferry_stats, &key);

	if (v)
		*v += 1;
}

static __always_inline int node_addr4(__be32 addr)
{
	union ferry_addr a;

	addr_set_v4(&a, addr);
	return bpf_map_lookup_elem(&ferry_node_addrs, &a) != NULL;
}

#endif
