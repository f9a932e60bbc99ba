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
#include "lib/svc6_tc.h"

/* loadBalancerSourceRanges of a frontend, for a source of either family
 * (IPv4 as ::ffff:a.b.c.d, as the agent writes its prefixes). */
static __always_inline int src_range_allowed(__u32 svc_id, const union ferry_addr *saddr)
{
	struct ferry_src_range_key key;

	__builtin_memset(&key, 0, sizeof(key));
	key.prefixlen = 32 + 128;
	key.svc_id = svc_id;
	key.addr = *saddr;
	return bpf_map_lookup_elem(&ferry_src_ranges, &key) != NULL;
}

enum ext_action {
	EXT_PASS = 0, /* not ours: untouched */
	EXT_LOCAL,    /* rewrite, then the stack delivers it */
	EXT_FORWARD,  /* rewrite, then send it out towards x.daddr */
	EXT_REJECT,   /* no endpoint: refuse (ICMP, built by tc) */
	EXT_DROP,
};

/* loadBalancerSourceRanges: 0 (and *stat) when the frontend does not
 * serve this client. */
static __always_inline int ext_admitted(const struct ferry_svc_value *svc,
					const union ferry_addr *client, int *stat)
{
	if ((svc->flags & FERRY_SVC_F_SRC_RANGES) && !src_range_allowed(svc->svc_id, client)) {
		*stat = FERRY_STAT_DROP_SRC_RANGE;
		return 0;
	}
	return 1;
}

/* What both families decide alike for a new flow of an external
 * frontend: nothing for a FIN or RST, the refusal without endpoints,
 * the backend (lb_select), and whether it needs SNAT (a remote endpoint
 * under policy Cluster). fl->client is the packet's source. Returns
 * EXT_LOCAL (the client's address is kept) or EXT_FORWARD (SNAT) with
 * *be set, else EXT_PASS / EXT_DROP / EXT_REJECT with *stat set. */
static __always_inline int ext_select(const struct ferry_svc_value *svc, const struct frontend *fe,
				      __be16 dport, __u8 proto, __u8 tcp_flags,
				      const struct lb_flow *fl, const struct ferry_backend **be,
				      __u32 *backend_id, int *stat)
{
	const struct ferry_backend *b;

	/* a FIN or RST of a flow we no longer track starts nothing */
	if (tcp_flags & (TCP_FLAG_FIN | TCP_FLAG_RST)) {
		*stat = FERRY_STAT_PASS;
		return EXT_PASS;
	}
	if (!svc->count) {
		if (svc->flags & FERRY_SVC_F_LOCAL) {
			*stat = FERRY_STAT_DROP_NO_LOCAL;
			return EXT_DROP;
		}
		*stat = FERRY_STAT_REJECT_NO_BACKEND;
		return EXT_REJECT;
	}
	b = lb_select(fe, dport, proto, svc, fl, backend_id);
	/* a backend of the other family cannot be reached by rewriting
	 * addresses (that would be NAT64/NAT46) */
	if (!b || addr_is_v4(&b->addr) != addr_is_v4(&fl->client)) {
		*stat = FERRY_STAT_DROP_NO_BACKEND;
		return EXT_DROP;
	}
	*be = b;
	if ((b->flags & FERRY_BE_F_LOCAL) || (svc->flags & FERRY_SVC_F_LOCAL) ||
	    bpf_map_lookup_elem(&ferry_node_addrs, &b->addr))
		return EXT_LOCAL;
	return EXT_FORWARD;
}

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
	struct lb_flow fl = { .sport = p->sport, .now = now };

	addr_set_v4(&fl.client, p->saddr);
	if (!ext_admitted(svc, &fl.client, &e->stat)) {
		e->action = EXT_DROP;
		return;
	}
	if (!ct4_lookup_fwd(p, now, svc->svc_id, &e->f, &e->stat)) {
		/* a later fragment starts no flow (its first one did, or failed) */
		if (p->frag == PKT_FRAG_LATER) {
			e->stat = FERRY_STAT_FRAGMENT;
			return;
		}
		e->action = ext_select(svc, &fe, p->dport, p->proto, p->tcp_flags, &fl, &be,
				       &e->f.backend_id, &e->stat);
		if (e->action != EXT_LOCAL && e->action != EXT_FORWARD)
			return;
		e->f.baddr = be->addr.w[3];
		e->f.bport = be->port;
		e->f.svc_id = svc->svc_id;
		e->f.flags = FERRY_CT_F_EXTERNAL;
		e->f.saddr = p->saddr;
		e->f.sport = p->sport; /* kept if free (ct4_create) */
		if (e->action == EXT_FORWARD) {
			e->f.saddr = snat4_addr(cfg);
			if (!e->f.saddr) {
				e->action = EXT_DROP;
				e->stat = FERRY_STAT_DROP_NO_BACKEND;
				return;
			}
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

/* ---- IPv6: the same plan on 128-bit addresses (ct6, snat6) ---- */

struct ext6_plan {
	struct flow6 f;
	struct xlate6 x;
	int action;
	int stat;
	int create;
};

/* ext4_plan for an IPv6 packet; returns e->action. The NodePort of an
 * IPv6 frontend is stored with ::, externalIPs and load-balancer
 * addresses by address (svc_lookup_frontend). A subprogram of its own,
 * as is ext6_commit: the stack of the entry programs has no room for
 * both families inlined. */
static __noinline int ext6_plan(const struct pkt6 *p, const struct ferry_config *cfg,
				      __u64 now, struct ext6_plan *e)
{
	const struct ferry_svc_value *svc;
	const struct ferry_backend *be;
	const union ferry_addr *snat;
	struct ferry_ct_value *rev;
	struct frontend fe;

	__builtin_memset(e, 0, sizeof(*e));
	rev = ct6_lookup_rev(p, now);
	if (rev && (rev->flags & FERRY_CT_F_EXTERNAL) && (rev->flags & FERRY_CT_F_SNAT)) {
		ct6_use_rev(p, rev, now);
		e->x.saddr = rev->nat_addr;
		e->x.sport = rev->nat_port;
		e->x.daddr = rev->alt_addr;
		e->x.dport = rev->alt_port;
		e->action = EXT_FORWARD;
		e->stat = FERRY_STAT_REVNAT;
		return e->action;
	}
	/* an IPv4-mapped destination is no IPv6 frontend */
	if (addr_is_v4(&p->daddr)) {
		e->stat = FERRY_STAT_PASS;
		return e->action;
	}
	svc = svc_lookup_frontend(&p->daddr, p->dport, p->proto, 0, &fe);
	if (!svc) {
		e->stat = FERRY_STAT_PASS;
		return e->action;
	}
	struct lb_flow fl = { .client = p->saddr, .sport = p->sport, .now = now };

	if (!ext_admitted(svc, &fl.client, &e->stat)) {
		e->action = EXT_DROP;
		return e->action;
	}
	if (!ct6_lookup_fwd(p, now, svc->svc_id, &e->f, &e->stat)) {
		if (p->frag == PKT_FRAG_LATER) {
			e->stat = FERRY_STAT_FRAGMENT;
			return e->action;
		}
		e->action = ext_select(svc, &fe, p->dport, p->proto, p->tcp_flags, &fl, &be,
				       &e->f.backend_id, &e->stat);
		if (e->action != EXT_LOCAL && e->action != EXT_FORWARD)
			return e->action;
		e->f.baddr = be->addr;
		e->f.bport = be->port;
		e->f.svc_id = svc->svc_id;
		e->f.flags = FERRY_CT_F_EXTERNAL;
		e->f.saddr = p->saddr;
		e->f.sport = p->sport; /* kept if free (ct6_create) */
		if (e->action == EXT_FORWARD) {
			snat = snat6_addr(cfg);
			if (!snat) {
				e->action = EXT_DROP;
				e->stat = FERRY_STAT_DROP_NO_BACKEND;
				return e->action;
			}
			e->f.saddr = *snat;
			e->f.flags |= FERRY_CT_F_SNAT;
		}
		e->create = 1;
	}
	e->x.saddr = e->f.saddr;
	e->x.sport = e->f.sport;
	e->x.daddr = e->f.baddr;
	e->x.dport = e->f.bport;
	e->action = (e->f.flags & FERRY_CT_F_SNAT) ? EXT_FORWARD : EXT_LOCAL;
	return e->action;
}

/* ext4_commit for IPv6. */
static __noinline int ext6_commit(const struct pkt6 *p, struct ext6_plan *e, __u64 now)
{
	int stat;

	if (!e->create)
		return 0;
	stat = ct6_create(p, &e->f, now);
	if (stat)
		return stat;
	e->x.sport = e->f.sport;
	return 0;
}

/* The reply of an external flow served by a local endpoint, leaving
 * through the external device (tc egress): its frontend back as source. */
static __always_inline int ext6_out(struct __sk_buff *skb, __u64 now)
{
	struct ferry_ct_value *ct;
	struct xlate6 x;
	struct pkt6 p;
	int stat;

	stat = frag6_ports(&p, PKT6_PARSE(skb, &p));
	if (stat == FERRY_STAT_PASS && p.proto == IPPROTO_ICMPV6) {
		union ferry_addr daddr;

		return icmp6_xlate_skb(skb, &p, ICMP4_REPLY, FERRY_CT_F_EXTERNAL,
				       FERRY_CT_F_EXTERNAL | FERRY_CT_F_SNAT, now, &daddr);
	}
	if (stat != FERRY_STAT_FWD_NEW)
		return stat;
	ct = ct6_lookup_rev(&p, now);
	if (!ct || !(ct->flags & FERRY_CT_F_EXTERNAL) || (ct->flags & FERRY_CT_F_SNAT))
		return FERRY_STAT_PASS;
	ct6_use_rev(&p, ct, now);
	x.saddr = ct->nat_addr;
	x.sport = ct->nat_port;
	x.daddr = ct->alt_addr;
	x.dport = ct->alt_port;
	if (nat6_apply(skb, &p, &x))
		return FERRY_STAT_DROP_REWRITE;
	return FERRY_STAT_REVNAT;
}

#endif
