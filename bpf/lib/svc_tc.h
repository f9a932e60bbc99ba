/* SPDX-License-Identifier: GPL-2.0 */
/* The pod-side path of the tc programs: a pod's packet to a service
 * (ClusterIP, or a NodePort / externalIP reached from inside) translated
 * to a backend, replies translated back, direct flows kept apart from
 * translated ones, and ICMP errors about tracked flows translated. */
#ifndef FERRY_BPF_SVC_TC_H
#define FERRY_BPF_SVC_TC_H

#include "lib/common.h"
#include "lib/conntrack.h"
#include "lib/icmp.h"
#include "lib/lb.h"
#include "lib/maps.h"
#include "lib/nat.h"
#include "lib/parse.h"
#include "lib/reject.h"

/* The node's address for SNAT, 0 when unset. */
static __always_inline __be32 snat4_addr(const struct ferry_config *cfg)
{
	if (!cfg || !addr_is_v4(&cfg->snat4))
		return 0;
	return cfg->snat4.w[3];
}

/* A packet for no frontend: untouched, unless it is a direct flow whose
 * reply tuple a translated flow holds (ct4_direct). */
static __always_inline int lb4_direct(struct __sk_buff *skb, const struct pkt4 *p, __u64 now)
{
	struct xlate4 x;
	int stat;

	/* a direct flow's null binding only remaps the source port, which
	 * a later fragment does not carry; and it never starts a flow */
	if (p->frag == PKT_FRAG_LATER)
		return FERRY_STAT_FRAGMENT;
	stat = ct4_direct(p, now, &x);

	if (stat != FERRY_STAT_NULLBIND)
		return stat; /* untouched (identity entries) or dropped */
	if (nat4_apply(skb, p, &x))
		return FERRY_STAT_DROP_REWRITE;
	return stat;
}

/* Pod -> service. Returns the stat that names the outcome. */
static __always_inline int lb4_forward(struct __sk_buff *skb, const struct pkt4 *p,
				       const struct ferry_config *cfg)
{
	const struct ferry_svc_value *svc;
	const struct ferry_backend *be;
	struct frontend fe;
	struct xlate4 x;
	struct flow4 f;
	__u64 now = ferry_now(cfg);
	int stat, err;

	svc = svc4_lookup_frontend(p->daddr, p->dport, p->proto, 1, &fe);
	if (!svc)
		return lb4_direct(skb, p, now);
	__builtin_memset(&f, 0, sizeof(f));
	if (!ct4_lookup_fwd(p, now, svc->svc_id, &f, &stat)) {
		/* A FIN or RST of a flow we no longer track starts nothing:
		 * it would claim a reply tuple for a connection that ended. */
		if (p->tcp_flags & (TCP_FLAG_FIN | TCP_FLAG_RST))
			return FERRY_STAT_PASS;
		/* nor does a later fragment (its first one did, or failed) */
		if (p->frag == PKT_FRAG_LATER)
			return FERRY_STAT_FRAGMENT;
		if (!svc->count) {
			if (svc->flags & FERRY_SVC_F_LOCAL)
				return FERRY_STAT_DROP_NO_LOCAL;
			return reject4(skb, p);
		}
		struct lb_flow fl = { .sport = p->sport, .now = now };

		addr_set_v4(&fl.client, p->saddr);
		be = lb_select(&fe, p->dport, p->proto, svc, &fl, &f.backend_id);
		if (!be)
			return FERRY_STAT_DROP_NO_BACKEND;
		f.baddr = be->addr.w[3];
		f.bport = be->port;
		f.saddr = p->saddr;
		f.sport = p->sport;
		f.svc_id = svc->svc_id;
		if (f.baddr == p->saddr) {
			/* The kernel drops a packet whose source and
			 * destination are the receiving pod's own address:
			 * source NAT to the node, as kube-proxy does. */
			f.saddr = snat4_addr(cfg);
			if (!f.saddr)
				return FERRY_STAT_DROP_NO_BACKEND;
			f.flags = FERRY_CT_F_HAIRPIN | FERRY_CT_F_SNAT;
		}
		err = ct4_create(p, &f, now);
		if (err)
			return err;
	}

	xlate4_forward(&x, &f);
	if (nat4_apply(skb, p, &x))
		return FERRY_STAT_DROP_REWRITE;
	if (f.flags & FERRY_CT_F_HAIRPIN) {
		/* Its source is the node's address now: send it straight
		 * back to the pod rather than through the stack. */
		if (eth_swap(skb))
			return FERRY_STAT_DROP_REWRITE;
		bpf_redirect(skb->ifindex, 0);
		return FERRY_STAT_HAIRPIN;
	}
	return stat;
}

/* Backend -> client reply: source back to the service address,
 * destination back to the client's own address and port. */
static __always_inline int lb4_reverse(struct __sk_buff *skb, const struct pkt4 *p,
				       const struct ferry_config *cfg, int hairpin_only)
{
	struct ferry_ct_value *ct;
	struct xlate4 x;
	__u64 now = ferry_now(cfg);
	int hairpin;

	ct = ct4_lookup_rev(p, now);
	if (!ct)
		return FERRY_STAT_PASS;
	hairpin = ct->flags & FERRY_CT_F_HAIRPIN;
	if (hairpin_only && !hairpin)
		return FERRY_STAT_PASS;
	ct4_use_rev(p, ct, now);
	/* a direct flow's identity entries: tracked, nothing to rewrite */
	if ((ct->flags & (FERRY_CT_F_NULLBIND | FERRY_CT_F_REMAP)) == FERRY_CT_F_NULLBIND)
		return FERRY_STAT_PASS;
	xlate4_reply(&x, ct);
	if (nat4_apply(skb, p, &x))
		return FERRY_STAT_DROP_REWRITE;
	if (hairpin) {
		if (eth_swap(skb))
			return FERRY_STAT_DROP_REWRITE;
		bpf_redirect(skb->ifindex, 0);
		return FERRY_STAT_HAIRPIN;
	}
	return FERRY_STAT_REVNAT;
}

#endif
