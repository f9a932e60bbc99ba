/* SPDX-License-Identifier: GPL-2.0 */
/* The ClusterIP path of the tc programs: forward translation of a
 * client's packet to a backend, and reverse translation of replies. */
#ifndef FERRY_BPF_SVC_TC_H
#define FERRY_BPF_SVC_TC_H

#include "lib/common.h"
#include "lib/conntrack.h"
#include "lib/lb.h"
#include "lib/maps.h"
#include "lib/nat.h"
#include "lib/parse.h"
#include "lib/reject.h"

/* The hairpin source as an IPv4 address, 0 when unset. */
static __always_inline __be32 hairpin_snat4(const struct ferry_config *cfg)
{
	if (!cfg || !addr_is_v4(&cfg->hairpin_snat4))
		return 0;
	return cfg->hairpin_snat4.w[3];
}

/* Is this conntrack entry's backend still the one the agent programmed
 * under that id? */
static __always_inline int ct_backend_valid(const struct ferry_ct_value *v)
{
	const struct ferry_backend *be = bpf_map_lookup_elem(&ferry_backends, &v->backend_id);

	if (!be)
		return 0;
	return be->port == v->nat_port && be->addr.w[3] == v->nat_addr.w[3] &&
	       be->addr.w[2] == v->nat_addr.w[2] && be->addr.w[1] == v->nat_addr.w[1] &&
	       be->addr.w[0] == v->nat_addr.w[0];
}

/* Records both directions of a new flow. */
static __always_inline int ct4_create(const struct pkt4 *p, const struct ferry_svc_value *svc,
				      const struct ferry_backend *be, __u32 backend_id,
				      __be32 snat, __u64 now)
{
	struct ferry_ct_value fwd, rev;
	struct ferry_ct_key key;
	__u16 flags = snat ? FERRY_CT_F_HAIRPIN : FERRY_CT_F_NONE;
	__u64 expires = now + ct_timeout(p->proto, 0);

	__builtin_memset(&fwd, 0, sizeof(fwd));
	fwd.nat_addr = be->addr;
	fwd.nat_port = be->port;
	if (snat)
		addr_set_v4(&fwd.alt_addr, snat);
	fwd.expires_ns = expires;
	fwd.flags = flags;
	fwd.backend_id = backend_id;
	fwd.svc_id = svc->svc_id;

	__builtin_memset(&rev, 0, sizeof(rev));
	addr_set_v4(&rev.nat_addr, p->daddr);
	rev.nat_port = p->dport;
	addr_set_v4(&rev.alt_addr, p->saddr);
	rev.expires_ns = expires;
	rev.flags = flags;
	rev.backend_id = backend_id;
	rev.svc_id = svc->svc_id;

	/* reverse first: a reply must never beat its translation */
	ct4_key(&key, be->addr.w[3], snat ? snat : p->saddr, be->port, p->sport, p->proto,
		FERRY_CT_REV);
	if (bpf_map_update_elem(&ferry_ct, &key, &rev, BPF_ANY))
		return -1;
	ct4_key(&key, p->saddr, p->daddr, p->sport, p->dport, p->proto, FERRY_CT_FWD);
	if (bpf_map_update_elem(&ferry_ct, &key, &fwd, BPF_ANY))
		return -1;
	return 0;
}

/* Keeps the reply direction alive with the forward one. */
static __always_inline void ct4_refresh_rev(const struct pkt4 *p, const struct ferry_ct_value *fwd)
{
	struct ferry_ct_key key;
	struct ferry_ct_value *rev;
	__be32 dst = (fwd->flags & FERRY_CT_F_HAIRPIN) ? fwd->alt_addr.w[3] : p->saddr;

	ct4_key(&key, fwd->nat_addr.w[3], dst, fwd->nat_port, p->sport, p->proto, FERRY_CT_REV);
	rev = bpf_map_lookup_elem(&ferry_ct, &key);
	if (!rev)
		return;
	rev->expires_ns = fwd->expires_ns;
	rev->flags = fwd->flags;
}

/* Client -> ClusterIP:port. Returns the stat that names the outcome. */
static __always_inline int lb4_forward(struct __sk_buff *skb, const struct pkt4 *p,
				       const struct ferry_config *cfg)
{
	const struct ferry_svc_value *svc;
	const struct ferry_backend *be;
	struct ferry_ct_value *ct;
	struct ferry_ct_key key;
	union ferry_addr vip;
	__be32 baddr, snat = 0;
	__be16 bport;
	__u32 backend_id = 0;
	__u64 now, old_expiry;
	int stat = FERRY_STAT_FWD_NEW;

	svc = svc4_lookup(p->daddr, p->dport, p->proto, FERRY_SCOPE_CLUSTER);
	if (!svc)
		return FERRY_STAT_PASS;
	/* Options would shift the L4 header under the fixed-layout paths
	 * (reject, hairpin); they are legal, so plain translation handles
	 * them, only the reject path refuses them. */
	now = ferry_now(cfg);

	ct4_key(&key, p->saddr, p->daddr, p->sport, p->dport, p->proto, FERRY_CT_FWD);
	ct = bpf_map_lookup_elem(&ferry_ct, &key);
	if (ct && ct_alive(ct, now)) {
		if (ct_backend_valid(ct)) {
			old_expiry = ct->expires_ns;
			ct_refresh(ct, p->proto, p->tcp_flags, now);
			if (ct->expires_ns != old_expiry)
				ct4_refresh_rev(p, ct);
			baddr = ct->nat_addr.w[3];
			bport = ct->nat_port;
			if (ct->flags & FERRY_CT_F_HAIRPIN)
				snat = ct->alt_addr.w[3];
			stat = FERRY_STAT_FWD_ESTABLISHED;
			goto xlate;
		}
		stat = FERRY_STAT_FWD_RESELECT;
	}

	if (!svc->count)
		return reject4(skb, p);
	addr_set_v4(&vip, p->daddr);
	be = lb_select(&vip, p->dport, p->proto, FERRY_SCOPE_CLUSTER, svc, &backend_id);
	if (!be)
		return FERRY_STAT_DROP_NO_BACKEND;
	baddr = be->addr.w[3];
	bport = be->port;
	if (baddr == p->saddr) {
		snat = hairpin_snat4(cfg);
		if (!snat)
			return FERRY_STAT_DROP_NO_BACKEND;
	}
	if (ct4_create(p, svc, be, backend_id, snat, now))
		return FERRY_STAT_DROP_CT_FULL;

xlate:
	if (nat4_rewrite(skb, p, 0, p->daddr, baddr, p->dport, bport))
		return FERRY_STAT_DROP_REWRITE;
	if (snat) {
		if (nat4_rewrite(skb, p, 1, p->saddr, snat, p->sport, p->sport))
			return FERRY_STAT_DROP_REWRITE;
		/* The kernel would drop a packet whose source is its own
		 * address; send it straight back to the pod instead. */
		if (eth_swap(skb))
			return FERRY_STAT_DROP_REWRITE;
		bpf_redirect(skb->ifindex, 0);
		return FERRY_STAT_HAIRPIN;
	}
	return stat;
}

/* Backend -> client reply: source back to the service address (and, for
 * hairpin flows, destination back to the client). */
static __always_inline int lb4_reverse(struct __sk_buff *skb, const struct pkt4 *p,
				       const struct ferry_config *cfg, int hairpin_only)
{
	struct ferry_ct_value *ct;
	struct ferry_ct_key key;
	__be32 vip, client;
	__be16 vport;
	__u64 now;

	ct4_key(&key, p->saddr, p->daddr, p->sport, p->dport, p->proto, FERRY_CT_REV);
	ct = bpf_map_lookup_elem(&ferry_ct, &key);
	if (!ct)
		return FERRY_STAT_PASS;
	now = ferry_now(cfg);
	if (!ct_alive(ct, now))
		return FERRY_STAT_PASS;
	if (hairpin_only && !(ct->flags & FERRY_CT_F_HAIRPIN))
		return FERRY_STAT_PASS;
	ct_refresh(ct, p->proto, p->tcp_flags, now);
	vip = ct->nat_addr.w[3];
	vport = ct->nat_port;
	client = ct->alt_addr.w[3];

	if (nat4_rewrite(skb, p, 1, p->saddr, vip, p->sport, vport))
		return FERRY_STAT_DROP_REWRITE;
	if (ct->flags & FERRY_CT_F_HAIRPIN) {
		if (nat4_rewrite(skb, p, 0, p->daddr, client, p->dport, p->dport))
			return FERRY_STAT_DROP_REWRITE;
		if (eth_swap(skb))
			return FERRY_STAT_DROP_REWRITE;
		bpf_redirect(skb->ifindex, 0);
		return FERRY_STAT_HAIRPIN;
	}
	return FERRY_STAT_REVNAT;
}

#endif
