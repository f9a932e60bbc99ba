/* SPDX-License-Identifier: GPL-2.0 */
/* Service lookup and backend selection. Selection reads the master entry
 * and one slot (or its Maglev table, or the client's affinity entry):
 * lb_select() is the one place where a backend is chosen. */
#ifndef FERRY_BPF_LB_H
#define FERRY_BPF_LB_H

#include "lib/common.h"
#include "lib/maps.h"
#include <ferry/jhash.h>

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

/* svc4_lookup_frontend() for an address of either family, as the maps
 * hold it (IPv4 as ::ffff:a.b.c.d, so an IPv4-mapped IPv6 address finds
 * the IPv4 frontend); NodePorts of IPv6 are stored with ::. */
static __always_inline const struct ferry_svc_value *
svc_lookup_frontend(const union ferry_addr *daddr, __be16 dport, __u8 proto, int internal,
		    struct frontend *fe)
{
	const struct ferry_svc_value *svc;
	struct ferry_svc_key key;

	__builtin_memset(&key, 0, sizeof(key));
	key.addr = *daddr;
	key.port = dport;
	key.proto = proto;
	fe->addr = *daddr;
	if (internal) {
		key.scope = fe->scope = FERRY_SCOPE_CLUSTER;
		svc = bpf_map_lookup_elem(&ferry_svc, &key);
		if (svc)
			return svc;
	}
	key.scope = fe->scope = FERRY_SCOPE_EXTERNAL;
	svc = bpf_map_lookup_elem(&ferry_svc, &key);
	if (svc)
		return svc;
	if (!bpf_map_lookup_elem(&ferry_node_addrs, daddr))
		return NULL;
	if (addr_is_v4(daddr))
		addr_set_v4(&key.addr, 0);
	else
		__builtin_memset(&key.addr, 0, sizeof(key.addr));
	fe->addr = key.addr;
	return bpf_map_lookup_elem(&ferry_svc, &key);
}

/* The new flow a backend is selected for. */
struct lb_flow {
	union ferry_addr client; /* source address (the node's for its own sockets) */
	__be16 sport;            /* source port; 0 when not known (socket hooks) */
	__u64 now;               /* ferry_now() */
};

/* The backend `id` when it is still one of the service's members for new
 * flows (an affinity entry or Maglev position naming a removed one, or
 * one kept only for its established flows, is ignored). */
static __always_inline const struct ferry_backend *lb_member(__u32 svc_id, __u32 id)
{
	struct ferry_member_key mk = { .svc_id = svc_id, .backend_id = id };
	const __u8 *m = bpf_map_lookup_elem(&ferry_members, &mk);

	if (!m || !(*m & FERRY_MEMBER_NEW))
		return NULL;
	return bpf_map_lookup_elem(&ferry_backends, &id);
}

/* Uniformly among the master's slots; 0 when the slot vanished under us
 * (agent mid-update). */
static __always_inline __u32 lb_pick_random(const struct frontend *fe, __be16 port, __u8 proto,
					    const struct ferry_svc_value *svc)
{
	const struct ferry_svc_value *slot;
	struct ferry_svc_key key;

	__builtin_memset(&key, 0, sizeof(key));
	key.addr = fe->addr;
	key.port = port;
	key.proto = proto;
	key.scope = fe->scope;
	key.slot = (bpf_get_prandom_u32() % svc->count) + 1;
	slot = bpf_map_lookup_elem(&ferry_svc, &key);
	return slot ? slot->backend_id : 0;
}

/* Maglev (Eisenbud et al., NSDI 2016): the table position is a fixed-seed
 * hash of the flow, so every node holding the same table picks the same
 * backend. The frontend's own address is hashed (0.0.0.0 or :: for
 * NodePorts), all 128 bits of both addresses for IPv6. With session
 * affinity the source port is left out. 0: no table. */
static __always_inline __u32 lb_pick_maglev(const struct frontend *fe, __be16 port, __u8 proto,
					    const struct ferry_svc_value *svc,
					    const struct lb_flow *fl)
{
	__u32 key = svc->svc_id, idx;
	const __u32 *table = bpf_map_lookup_elem(&ferry_maglev, &key);
	__be16 sport = svc->affinity_timeout_s ? 0 : fl->sport;

	if (!table)
		return 0;
	/* IPv6: all 128 bits, or clients sharing their low 32 bits collide.
	 * The frontend gives the family (IPv4-mapped, NodePorts included). */
	if (addr_is_v4(&fe->addr))
		idx = ferry_flow_hash4(fl->client.w[3], fe->addr.w[3], sport, port, proto);
	else
		idx = ferry_flow_hash6(fl->client.w, fe->addr.w, sport, port, proto);
	idx %= maglev_table_size;
	if (idx >= maglev_table_size)
		return 0;
	return table[idx];
}

/* Picks the backend of a new flow: the client's affinity entry while it
 * is young and its backend a member, else Maglev (external frontends that
 * ask for it) or a uniform pick; with affinity, the pick is remembered.
 * Returns NULL when nothing usable was found (agent mid-update). */
static __always_inline const struct ferry_backend *
lb_select(const struct frontend *fe, __be16 port, __u8 proto, const struct ferry_svc_value *svc,
	  const struct lb_flow *fl, __u32 *backend_id)
{
	const struct ferry_backend *be = NULL;
	struct ferry_affinity_value *av, nv;
	struct ferry_affinity_key ak;
	__u32 id = 0;

	if (!svc->count)
		return NULL;
	if (svc->affinity_timeout_s) {
		__builtin_memset(&ak, 0, sizeof(ak));
		ak.svc_id = svc->svc_id;
		ak.client = fl->client;
		av = bpf_map_lookup_elem(&ferry_affinity, &ak);
		if (av && fl->now - av->last_used_ns < (__u64)svc->affinity_timeout_s * NSEC_PER_SEC) {
			id = av->backend_id;
			be = lb_member(svc->svc_id, id);
			if (be) {
				av->last_used_ns = fl->now;
				*backend_id = id;
				return be;
			}
		}
	}
	if ((svc->flags & FERRY_SVC_F_MAGLEV) && fe->scope == FERRY_SCOPE_EXTERNAL) {
		id = lb_pick_maglev(fe, port, proto, svc, fl);
		be = id ? lb_member(svc->svc_id, id) : NULL;
	}
	if (!be) {
		id = lb_pick_random(fe, port, proto, svc);
		be = id ? bpf_map_lookup_elem(&ferry_backends, &id) : NULL;
	}
	if (!be)
		return NULL;
	if (svc->affinity_timeout_s) {
		__builtin_memset(&nv, 0, sizeof(nv));
		nv.backend_id = id;
		nv.last_used_ns = fl->now;
		bpf_map_update_elem(&ferry_affinity, &ak, &nv, BPF_ANY);
	}
	*backend_id = id;
	return be;
}

#endif
