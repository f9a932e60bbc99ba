/* SPDX-License-Identifier: GPL-2.0 */
/* Service lookup and backend selection. Selection reads the master entry
 * and one slot, so another algorithm (Maglev, affinity) replaces
 * lb_select() alone. */
#ifndef FERRY_BPF_LB_H
#define FERRY_BPF_LB_H

#include "lib/common.h"
#include "lib/maps.h"

static __always_inline const struct ferry_svc_value *
svc4_lookup(__be32 addr, __be16 port, __u8 proto, __u8 scope)
{
	struct ferry_svc_key key;

	__builtin_memset(&key, 0, sizeof(key));
	addr_set_v4(&key.addr, addr);
	key.port = port;
	key.proto = proto;
	key.scope = scope;
	return bpf_map_lookup_elem(&ferry_svc, &key);
}

/* The frontend a packet is aimed at. From inside the cluster (pods, the
 * node) ClusterIPs come first; external frontends are externalIPs (and
 * load-balancer addresses) by address, and NodePorts on any address of
 * this node (stored with the family's unspecified address). */
struct frontend {
	union ferry_addr addr;
	__u8 scope;
};

static __always_inline const struct ferry_svc_value *
svc4_lookup_frontend(__be32 daddr, __be16 dport, __u8 proto, int internal, struct frontend *fe)
{
	const struct ferry_svc_value *svc;

	if (internal) {
		svc = svc4_lookup(daddr, dport, proto, FERRY_SCOPE_CLUSTER);
		if (svc) {
			addr_set_v4(&fe->addr, daddr);
			fe->scope = FERRY_SCOPE_CLUSTER;
			return svc;
		}
	}
	fe->scope = FERRY_SCOPE_EXTERNAL;
	svc = svc4_lookup(daddr, dport, proto, FERRY_SCOPE_EXTERNAL);
	if (svc) {
		addr_set_v4(&fe->addr, daddr);
		return svc;
	}
	if (!node_addr4(daddr))
		return NULL;
	/* NodePorts of IPv4 are stored with address 0.0.0.0 (IPv4-mapped) */
	addr_set_v4(&fe->addr, 0);
	return svc4_lookup(0, dport, proto, FERRY_SCOPE_EXTERNAL);
}

/* Picks a backend uniformly among the master's slots. Returns NULL when
 * the slot or backend vanished under us (agent mid-update). */
static __always_inline const struct ferry_backend *
lb_select(const union ferry_addr *addr, __be16 port, __u8 proto, __u8 scope,
	  const struct ferry_svc_value *svc, __u32 *backend_id)
{
	const struct ferry_svc_value *slot;
	const struct ferry_backend *be;
	struct ferry_svc_key key;

	if (!svc->count)
		return NULL;
	__builtin_memset(&key, 0, sizeof(key));
	key.addr = *addr;
	key.port = port;
	key.proto = proto;
	key.scope = scope;
	key.slot = (bpf_get_prandom_u32() % svc->count) + 1;
	slot = bpf_map_lookup_elem(&ferry_svc, &key);
	if (!slot)
		return NULL;
	be = bpf_map_lookup_elem(&ferry_backends, &slot->backend_id);
	if (!be)
		return NULL;
	*backend_id = slot->backend_id;
	return be;
}

#endif
