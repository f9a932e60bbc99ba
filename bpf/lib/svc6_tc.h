/* SPDX-License-Identifier: GPL-2.0 */
/* The pod-side path of the tc programs for IPv6 (see svc_tc.h): a pod's
 * packet to a ClusterIP or externalIP translated to a backend chosen by
 * lb_select (the same selection as IPv4), replies translated back,
 * hairpin through the node's IPv6 address (ferry_config.snat6), and
 * "no endpoints" refused with ICMPv6 port unreachable, and ICMPv6 errors
 * about translated flows translated back (icmp6.h), and direct flows
 * kept apart from translated ones (null bindings, ct6_direct). */
#ifndef FERRY_BPF_SVC6_TC_H
#define FERRY_BPF_SVC6_TC_H

#include "lib/common.h"
#include "lib/conntrack6.h"
#include "lib/frag.h"
#include "lib/icmp6.h"
#include "lib/lb.h"
#include "lib/maps.h"
#include "lib/nat.h"
#include "lib/nat6.h"
#include "lib/parse.h"
#include "lib/reject6.h"

/* The node's IPv6 address for SNAT (hairpin); NULL when unset. */
static __always_inline const union ferry_addr *snat6_addr(const struct ferry_config *cfg)
{
	if (!cfg || addr_is_v4(&cfg->snat6) ||
	    !(cfg->snat6.w[0] | cfg->snat6.w[1] | cfg->snat6.w[2] | cfg->snat6.w[3]))
		return NULL;
	return &cfg->snat6;
}

/* Hairpin: the translated packet goes straight back out to the pod. */
static __always_inline int lb6_hairpin(struct __sk_buff *skb)
{
	if (eth_swap(skb))
		return FERRY_STAT_DROP_REWRITE;
	bpf_redirect(skb->ifindex, 0);
	return FERRY_STAT_HAIRPIN;
}

/* A packet for no frontend (lb4_direct for IPv6): untouched, unless it
 * is a direct flow whose reply tuple a translated flow holds. */
static __always_inline int lb6_direct(struct __sk_buff *skb, const struct pkt6 *p, __u64 now)
{
	struct xlate6 x;
	int stat;

	/* a null binding remaps the source port, which a later fragment
	 * does not carry; and a later fragment never starts a flow */
	if (p->frag == PKT_FRAG_LATER)
		return FERRY_STAT_FRAGMENT;
	stat = ct6_direct(p, now, &x);
	if (stat != FERRY_STAT_NULLBIND)
		return stat; /* untouched (identity entries) or dropped */
	if (nat6_apply(skb, p, &x))
		return FERRY_STAT_DROP_REWRITE;
	return stat;
}

/* Answers of the pod paths that the entry program hands to a subprogram
 * of its own, each with its own stack frame (no tc verdict and no stat
 * has these values): an ICMPv6 packet (pod6_icmp), a packet for no
 * frontend (pod6_direct). The subprogram parses the frame again. */
#define POD6_ICMP (-100)
#define POD6_DIRECT (-101)

/* Pod -> service (IPv6); POD6_DIRECT for a packet aimed at no
 * frontend. Returns the stat that names the outcome. */
static __always_inline int lb6_forward(struct __sk_buff *skb, const struct pkt6 *p,
				       const struct ferry_config *cfg)
{
	const struct ferry_svc_value *svc;
	const struct ferry_backend *be;
	const union ferry_addr *snat;
	struct frontend fe;
	struct xlate6 x;
	struct flow6 f;
	__u64 now = ferry_now(cfg);
	int stat, err;

	/* a ClusterIP, then an externalIP / load-balancer address, then a
	 * NodePort on an address of this node (svc_lookup_frontend) */
	svc = svc_lookup_frontend(&p->daddr, p->dport, p->proto, 1, &fe);
	if (!svc)
		return POD6_DIRECT;
	__builtin_memset(&f, 0, sizeof(f));
	if (!ct6_lookup_fwd(p, now, svc->svc_id, &f, &stat)) {
		/* a FIN or RST of an untracked flow starts nothing, nor does
		 * a later fragment */
		if (p->tcp_flags & (TCP_FLAG_FIN | TCP_FLAG_RST))
			return FERRY_STAT_PASS;
		if (p->frag == PKT_FRAG_LATER)
			return FERRY_STAT_FRAGMENT;
		if (!svc->count) {
			if (svc->flags & FERRY_SVC_F_LOCAL)
				return FERRY_STAT_DROP_NO_LOCAL;
			return reject6(skb, p);
		}
		struct lb_flow fl = { .client = p->saddr, .sport = p->sport, .now = now };

		be = lb_select(&fe, p->dport, p->proto, svc, &fl, &f.backend_id);
		/* an IPv4 backend behind an IPv6 frontend cannot be reached
		 * by rewriting addresses (that would be NAT64) */
		if (!be || addr_is_v4(&be->addr))
			return FERRY_STAT_DROP_NO_BACKEND;
		f.baddr = be->addr;
		f.bport = be->port;
		f.saddr = p->saddr;
		f.sport = p->sport;
		f.svc_id = svc->svc_id;
		if (addr_eq(&f.baddr, &p->saddr)) {
			/* the pod reaches itself: source NAT to the node */
			snat = snat6_addr(cfg);
			if (!snat)
				return FERRY_STAT_DROP_NO_BACKEND;
			f.saddr = *snat;
			f.flags = FERRY_CT_F_HAIRPIN | FERRY_CT_F_SNAT;
		}
		err = ct6_create(p, &f, now);
		if (err)
			return err;
	}
	xlate6_forward(&x, &f);
	if (nat6_apply(skb, p, &x))
		return FERRY_STAT_DROP_REWRITE;
	if (f.flags & FERRY_CT_F_HAIRPIN)
		return lb6_hairpin(skb);
	return stat;
}

/* Backend -> client reply (IPv6): source back to the service address,
 * destination back to the client's own address and port. */
static __always_inline int lb6_reverse(struct __sk_buff *skb, const struct pkt6 *p,
				       const struct ferry_config *cfg, int hairpin_only)
{
	struct ferry_ct_value *ct;
	struct xlate6 x;
	__u64 now = ferry_now(cfg);
	int hairpin;

	ct = ct6_lookup_rev(p, now);
	if (!ct)
		return FERRY_STAT_PASS;
	hairpin = ct->flags & FERRY_CT_F_HAIRPIN;
	if (hairpin_only && !hairpin)
		return FERRY_STAT_PASS;
	ct6_use_rev(p, ct, now);
	if ((ct->flags & (FERRY_CT_F_NULLBIND | FERRY_CT_F_REMAP)) == FERRY_CT_F_NULLBIND)
		return FERRY_STAT_PASS;
	xlate6_reply(&x, ct);
	if (nat6_apply(skb, p, &x))
		return FERRY_STAT_DROP_REWRITE;
	if (hairpin)
		return lb6_hairpin(skb);
	return FERRY_STAT_REVNAT;
}

/* from_pod for an IPv6 frame: a hairpin reply (addressed to the node)
 * is caught before the stack would deliver it locally; a packet for no
 * frontend is POD6_DIRECT, ICMPv6 POD6_ICMP. Returns a stat. */
static __always_inline int pod6_from(struct __sk_buff *skb, const struct ferry_config *cfg)
{
	const union ferry_addr *snat;
	struct pkt6 p;
	int stat;

	stat = frag6_ports(&p, PKT6_PARSE(skb, &p));
	if (stat == FERRY_STAT_PASS && p.proto == IPPROTO_ICMPV6)
		return POD6_ICMP;
	if (stat != FERRY_STAT_FWD_NEW)
		return stat;
	snat = snat6_addr(cfg);
	if (snat && addr_eq(&p.daddr, snat)) {
		stat = lb6_reverse(skb, &p, cfg, 1);
		if (stat != FERRY_STAT_PASS)
			return stat;
	}
	return lb6_forward(skb, &p, cfg);
}

/* to_pod for an IPv6 frame: replies of every backend; ICMPv6 is
 * POD6_ICMP. Returns a stat. */
static __always_inline int pod6_to(struct __sk_buff *skb, const struct ferry_config *cfg)
{
	struct pkt6 p;
	int stat;

	stat = frag6_ports(&p, PKT6_PARSE(skb, &p));
	if (stat == FERRY_STAT_PASS && p.proto == IPPROTO_ICMPV6)
		return POD6_ICMP;
	if (stat != FERRY_STAT_FWD_NEW)
		return stat;
	return lb6_reverse(skb, &p, cfg, 0);
}

/* A packet from a pod for no frontend (POD6_DIRECT): lb6_direct. */
static __always_inline int pod6_direct(struct __sk_buff *skb, const struct ferry_config *cfg)
{
	struct pkt6 p;

	if (frag6_ports(&p, PKT6_PARSE(skb, &p)) != FERRY_STAT_FWD_NEW)
		return FERRY_STAT_PASS;
	return lb6_direct(skb, &p, ferry_now(cfg));
}

/* An ICMPv6 packet on a pod's veth: an error about a translated flow is
 * translated back (icmp6.h). From the pod (dirs ICMP4_REPLY |
 * ICMP4_ORIG) it is about a flow it served (a backend's port
 * unreachable) or about a reply it got (a client's); to the pod
 * (ICMP4_REPLY) it is about its own translated flow (packet too big,
 * port unreachable). Parses the frame again (see POD6_ICMP). Returns a
 * stat. */
static __always_inline int pod6_icmp(struct __sk_buff *skb, const struct ferry_config *cfg,
				     int dirs)
{
	union ferry_addr daddr;
	struct pkt6 p;

	/* p is filled only for ICMPv6: clang takes a read of the rest as
	 * undefined, which the verifier refuses */
	if (PKT6_PARSE(skb, &p) != FERRY_STAT_PASS || p.proto != IPPROTO_ICMPV6)
		return FERRY_STAT_PASS;
	return icmp6_xlate_skb(skb, &p, dirs, 0, 0, ferry_now(cfg), &daddr);
}

#endif
