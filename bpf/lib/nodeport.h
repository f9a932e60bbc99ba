/* SPDX-License-Identifier: GPL-2.0 */
/* The external path: NodePort and externalIP traffic arriving on the
 * node's external device, decided once and applied by the XDP or the tc
 * program (each with its own rewrite and forwarding helpers).
 *
 *   local endpoint (or policy Local): DNAT only, the stack delivers it;
 *     the reply is translated back on the way out (tc egress);
 *   remote endpoint: DNAT + SNAT to the node, sent on to the endpoint's
 *     node, whose reply comes back here and is sent to the client. */
#ifndef FERRY_BPF_NODEPORT_H
#define FERRY_BPF_NODEPORT_H

#include "lib/common.h"
#include "lib/conntrack.h"
#include "lib/lb.h"
#include "lib/maps.h"
#include "lib/parse.h"
#include "lib/svc_tc.h"

/* loadBalancerSourceRanges of a frontend. */
static __always_inline int src_range4_allowed(__u32 svc_id, __be32 saddr)
{
	struct ferry_src_range_key key;

	__builtin_memset(&key, 0, sizeof(key));
	key.prefixlen = 32 + 128;
	key.svc_id = svc_id;
	addr_set_v4(&key.addr, saddr);
	return bpf_map_lookup_elem(&ferry_src_ranges, &key) != NULL;
}

enum ext_action {
	EXT_PASS = 0, /* not ours: untouched */
	EXT_LOCAL,    /* rewrite, then the stack delivers it */
	EXT_FORWARD,  /* rewrite, then send it out towards x.daddr */
	EXT_REJECT,   /* no endpoint: refuse (ICMP, built by tc) */
	EXT_DROP,
};

struct ext4_plan {
	int action;
	int stat;
	int create; /* a new flow: conntrack entries to write */
	struct flow4 f;
	struct xlate4 x;
};

static __always_inline void ext4_plan(const struct pkt4 *p, const struct ferry_config *cfg,
				      __u64 now, struct ext4_plan *e)
{
	const struct ferry_svc_value *svc;
	const struct ferry_backend *be;
	struct ferry_ct_value *rev;
	struct frontend fe;

	__builtin_memset(e, 0, sizeof(*e));
	/* The reply of a flow we sent on to another node. */
	rev = ct4_lookup_rev(p, now);
	if (rev && (rev->flags & FERRY_CT_F_EXTERNAL) && (rev->flags & FERRY_CT_F_SNAT)) {
		ct4_use_rev(p, rev, now);
		xlate4_reply(&e->x, rev);
		e->action = EXT_FORWARD;
		e->stat = FERRY_STAT_REVNAT;
		return;
	}

	svc = svc4_lookup_frontend(p->daddr, p->dport, p->proto, 0, &fe);
	if (!svc) {
		e->stat = FERRY_STAT_PASS;
		return;
	}
	if ((svc->flags & FERRY_SVC_F_SRC_RANGES) && !src_range4_allowed(svc->svc_id, p->saddr)) {
		e->action = EXT_DROP;
		e->stat = FERRY_STAT_DROP_SRC_RANGE;
		return;
	}
	if (!ct4_lookup_fwd(p, now, svc->svc_id, &e->f, &e->stat)) {
		/* a FIN or RST of a flow we no longer track starts nothing */
		if (p->tcp_flags & (TCP_FLAG_FIN | TCP_FLAG_RST)) {
			e->stat = FERRY_STAT_PASS;
			return;
		}
		if (!svc->count) {
			if (svc->flags & FERRY_SVC_F_LOCAL) {
				e->action = EXT_DROP;
				e->stat = FERRY_STAT_DROP_NO_LOCAL;
			} else {
				e->action = EXT_REJECT;
				e->stat = FERRY_STAT_REJECT_NO_BACKEND;
			}
			return;
		}
		struct lb_flow fl = { .sport = p->sport, .now = now };

		addr_set_v4(&fl.client, p->saddr);
		be = lb_select(&fe, p->dport, p->proto, svc, &fl, &e->f.backend_id);
		if (!be) {
			e->action = EXT_DROP;
			e->stat = FERRY_STAT_DROP_NO_BACKEND;
			return;
		}
		e->f.baddr = be->addr.w[3];
		e->f.bport = be->port;
		e->f.svc_id = svc->svc_id;
		e->f.flags = FERRY_CT_F_EXTERNAL;
		if ((be->flags & FERRY_BE_F_LOCAL) || (svc->flags & FERRY_SVC_F_LOCAL) ||
		    node_addr4(be->addr.w[3])) {
			e->f.saddr = p->saddr;
			e->f.sport = p->sport;
		} else {
			e->f.saddr = snat4_addr(cfg);
			if (!e->f.saddr) {
				e->action = EXT_DROP;
				e->stat = FERRY_STAT_DROP_NO_BACKEND;
				return;
			}
			e->f.sport = p->sport; /* kept if free (ct4_create) */
			e->f.flags |= FERRY_CT_F_SNAT;
		}
		e->create = 1;
	}
	xlate4_forward(&e->x, &e->f);
	e->action = (e->f.flags & FERRY_CT_F_SNAT) ? EXT_FORWARD : EXT_LOCAL;
}

/* Writes the conntrack entries of a new flow; under SNAT the client's
 * port is kept when its reply tuple is free (as iptables' MASQUERADE
 * does: a client does not reuse a port while its side is in TIME_WAIT,
 * so the endpoint never sees a SYN land on its TIME_WAIT socket), else
 * a random one. Returns 0 or a drop reason. */
static __always_inline int ext4_commit(const struct pkt4 *p, struct ext4_plan *e, __u64 now)
{
	int stat;

	if (!e->create)
		return 0;
	stat = ct4_create(p, &e->f, now);
	if (stat)
		return stat;
	e->x.sport = e->f.sport;
	return 0;
}

#endif
