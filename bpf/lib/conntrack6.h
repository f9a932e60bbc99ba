/* SPDX-License-Identifier: GPL-2.0 */
/* Connection tracking of IPv6 translated flows: the model of
 * conntrack.h (FWD and REV entries holding each other's tuple, the
 * membership check on every packet, a unique reply tuple with a remapped
 * source port on a clash, a closed flow replaced by a new SYN) on 128-bit
 * addresses, in the same ferry_ct map, and the null bindings of direct
 * flows from pods (ct6_direct, as ct4_direct). */
#ifndef FERRY_BPF_CONNTRACK6_H
#define FERRY_BPF_CONNTRACK6_H

#include "lib/common.h"
#include "lib/conntrack.h"
#include "lib/maps.h"
#include "lib/parse.h"

static __always_inline int addr_eq(const union ferry_addr *a, const union ferry_addr *b)
{
	return a->w[0] == b->w[0] && a->w[1] == b->w[1] && a->w[2] == b->w[2] &&
	       a->w[3] == b->w[3];
}

static __always_inline void ct6_key(struct ferry_ct_key *k, const union ferry_addr *saddr,
				    const union ferry_addr *daddr, __be16 sport, __be16 dport,
				    __u8 proto, __u8 dir)
{
	__builtin_memset(k, 0, sizeof(*k));
	k->saddr = *saddr;
	k->daddr = *daddr;
	k->sport = sport;
	k->dport = dport;
	k->proto = proto;
	k->dir = dir;
}

/* A flow: the backend, and the source it is sent from (see flow4). */
struct flow6 {
	union ferry_addr baddr;
	union ferry_addr saddr; /* source address towards the backend */
	__be16 bport;
	__be16 sport; /* source port towards the backend */
	__u32 backend_id;
	__u32 svc_id;
	__u16 flags; /* enum ferry_ct_flags */
};

/* A packet's new tuple (see xlate4). */
struct xlate6 {
	union ferry_addr saddr;
	union ferry_addr daddr;
	__be16 sport;
	__be16 dport;
};

static __always_inline int tcp6_bare_syn(const struct pkt6 *p)
{
	return tcp_flags_bare_syn(p->proto, p->tcp_flags);
}

static __always_inline void xlate6_forward(struct xlate6 *x, const struct flow6 *f)
{
	x->saddr = f->saddr;
	x->sport = f->sport;
	x->daddr = f->baddr;
	x->dport = f->bport;
}

/* Reply: back to the frontend and the client's own tuple (xlate4_reply). */
static __always_inline void xlate6_reply(struct xlate6 *x, const struct ferry_ct_value *ct)
{
	x->saddr = ct->nat_addr;
	x->sport = ct->nat_port;
	x->daddr = ct->alt_addr;
	x->dport = ct->alt_port;
}

static __always_inline void ct6_value(struct ferry_ct_value *v, const union ferry_addr *nat_addr,
				      __be16 nat_port, const union ferry_addr *alt_addr,
				      __be16 alt_port, const struct flow6 *f, __u64 expires)
{
	__builtin_memset(v, 0, sizeof(*v));
	v->nat_addr = *nat_addr;
	v->nat_port = nat_port;
	v->alt_addr = *alt_addr;
	v->alt_port = alt_port;
	v->expires_ns = expires;
	v->flags = f->flags;
	v->backend_id = f->backend_id;
	v->svc_id = f->svc_id;
}

/* Does entry v (FWD or REV) name this tuple as its other side? */
static __always_inline int ct6_names(const struct ferry_ct_value *v, const union ferry_addr *nat,
				     __be16 nat_port, const union ferry_addr *alt, __be16 alt_port)
{
	return v->nat_port == nat_port && v->alt_port == alt_port &&
	       addr_eq(&v->nat_addr, nat) && addr_eq(&v->alt_addr, alt);
}

/* Removes a flow given its REV entry (see ct4_kill_rev). */
static __always_inline void ct6_kill_rev(const struct ferry_ct_key *rkey,
					 const struct ferry_ct_value *rev)
{
	struct ferry_ct_value *fwd;
	struct ferry_ct_key key;

	ct6_key(&key, &rev->alt_addr, &rev->nat_addr, rev->alt_port, rev->nat_port, rkey->proto,
		FERRY_CT_FWD);
	fwd = bpf_map_lookup_elem(&ferry_ct, &key);
	if (fwd && ct6_names(fwd, &rkey->saddr, rkey->sport, &rkey->daddr, rkey->dport))
		bpf_map_delete_elem(&ferry_ct, &key);
	bpf_map_delete_elem(&ferry_ct, rkey);
}

/* Removes a flow given the packet that hit its FWD entry. */
static __always_inline void ct6_kill_fwd(const struct pkt6 *p, const struct ferry_ct_value *fwd)
{
	struct ferry_ct_value *rev;
	struct ferry_ct_key key;

	ct6_key(&key, &fwd->nat_addr, &fwd->alt_addr, fwd->nat_port, fwd->alt_port, p->proto,
		FERRY_CT_REV);
	rev = bpf_map_lookup_elem(&ferry_ct, &key);
	if (rev && ct6_names(rev, &p->daddr, p->dport, &p->saddr, p->sport))
		bpf_map_delete_elem(&ferry_ct, &key);
	ct6_key(&key, &p->saddr, &p->daddr, p->sport, p->dport, p->proto, FERRY_CT_FWD);
	bpf_map_delete_elem(&ferry_ct, &key);
}

/* Can a new flow for p use this reply tuple? (see ct4_reply_tuple_free) */
static __always_inline int ct6_reply_tuple_free(const struct pkt6 *p,
						const struct ferry_ct_key *rkey, __u64 now)
{
	struct ferry_ct_value *old = bpf_map_lookup_elem(&ferry_ct, rkey);

	if (!old || !ct_alive(old, now))
		return 1;
	if (ct6_names(old, &p->daddr, p->dport, &p->saddr, p->sport))
		return 1;
	if (old->flags & FERRY_CT_F_CLOSING) {
		ct6_kill_rev(rkey, old);
		return 1;
	}
	return 0;
}

/* Records both directions of a new flow, REV first (see ct4_create).
 * Returns 0 or a drop reason. */
static __always_inline int ct6_create(const struct pkt6 *p, struct flow6 *f, __u64 now)
{
	__u32 range = (__u32)snat_port_max - snat_port_min + 1;
	struct ferry_ct_value v;
	struct ferry_ct_key key;
	__u64 expires = now + ct_timeout(p->proto, 0);
	__be16 first = f->sport;
	int i;

	for (i = 0; i < SNAT_PORT_TRIES; i++) {
		if (i)
			f->sport = bpf_htons(snat_port_min + bpf_get_prandom_u32() % range);
		ct6_key(&key, &f->baddr, &f->saddr, f->bport, f->sport, p->proto, FERRY_CT_REV);
		if (ct6_reply_tuple_free(p, &key, now))
			break;
	}
	if (i == SNAT_PORT_TRIES)
		return FERRY_STAT_DROP_SNAT_PORTS;
	if (f->sport != first && !(f->flags & FERRY_CT_F_SNAT))
		f->flags |= FERRY_CT_F_REMAP;

	ct6_value(&v, &p->daddr, p->dport, &p->saddr, p->sport, f, expires);
	if (bpf_map_update_elem(&ferry_ct, &key, &v, BPF_ANY))
		return FERRY_STAT_DROP_CT_FULL;
	ct6_value(&v, &f->baddr, f->bport, &f->saddr, f->sport, f, expires);
	ct6_key(&key, &p->saddr, &p->daddr, p->sport, p->dport, p->proto, FERRY_CT_FWD);
	if (bpf_map_update_elem(&ferry_ct, &key, &v, BPF_ANY))
		return FERRY_STAT_DROP_CT_FULL;
	return 0;
}

/* Uses a live FWD entry for packet p: refreshes both directions (see
 * ct4_use_fwd). */
static __always_inline void ct6_use_fwd(const struct pkt6 *p, struct ferry_ct_value *ct,
					struct flow6 *f, __u64 now)
{
	__u64 old_expiry = ct->expires_ns;
	__u16 old_flags = ct->flags;

	ct_refresh(ct, p->proto, p->tcp_flags, now);
	f->baddr = ct->nat_addr;
	f->bport = ct->nat_port;
	f->saddr = ct->alt_addr;
	f->sport = ct->alt_port;
	f->backend_id = ct->backend_id;
	f->svc_id = ct->svc_id;
	f->flags = ct->flags;
	if (ct->expires_ns != old_expiry || ct->flags != old_flags) {
		/* keep the reply direction alive with the forward one */
		struct ferry_ct_value *rev;
		struct ferry_ct_key key;

		ct6_key(&key, &f->baddr, &f->saddr, f->bport, f->sport, p->proto, FERRY_CT_REV);
		rev = bpf_map_lookup_elem(&ferry_ct, &key);
		if (rev) {
			rev->expires_ns = ct->expires_ns;
			rev->flags = ct->flags;
		}
	}
}

/* Forward lookup (see ct4_lookup_fwd): 1 with *f filled when an
 * established flow of svc_id goes on; *stat names what was found. */
static __always_inline int ct6_lookup_fwd(const struct pkt6 *p, __u64 now, __u32 svc_id,
					  struct flow6 *f, int *stat)
{
	struct ferry_ct_value *ct;
	struct ferry_ct_key key;

	*stat = FERRY_STAT_FWD_NEW;
	ct6_key(&key, &p->saddr, &p->daddr, p->sport, p->dport, p->proto, FERRY_CT_FWD);
	ct = bpf_map_lookup_elem(&ferry_ct, &key);
	if (!ct || !ct_alive(ct, now))
		return 0;
	if ((ct->flags & FERRY_CT_F_CLOSING) && tcp6_bare_syn(p)) {
		ct6_kill_fwd(p, ct);
		*stat = FERRY_STAT_CT_REPLACED;
		return 0;
	}
	if (!ct_member_valid(ct, svc_id)) {
		ct6_kill_fwd(p, ct);
		*stat = FERRY_STAT_FWD_RESELECT;
		return 0;
	}
	ct6_use_fwd(p, ct, f, now);
	*stat = FERRY_STAT_FWD_ESTABLISHED;
	return 1;
}

/* Reverse lookup: the reply translation for p, if alive. */
static __always_inline struct ferry_ct_value *ct6_lookup_rev(const struct pkt6 *p, __u64 now)
{
	struct ferry_ct_value *ct;
	struct ferry_ct_key key;

	ct6_key(&key, &p->saddr, &p->daddr, p->sport, p->dport, p->proto, FERRY_CT_REV);
	ct = bpf_map_lookup_elem(&ferry_ct, &key);
	if (!ct || !ct_alive(ct, now))
		return NULL;
	return ct;
}

/* Uses a live REV entry for reply p; a moved expiry or closing state is
 * copied to its FWD entry (see ct4_use_rev). */
static __always_inline void ct6_use_rev(const struct pkt6 *p, struct ferry_ct_value *rev,
					__u64 now)
{
	__u64 old_expiry = rev->expires_ns;
	__u16 old_flags = rev->flags;
	struct ferry_ct_value *fwd;
	struct ferry_ct_key key;

	ct_refresh(rev, p->proto, p->tcp_flags, now);
	if (rev->expires_ns == old_expiry && rev->flags == old_flags)
		return;
	ct6_key(&key, &rev->alt_addr, &rev->nat_addr, rev->alt_port, rev->nat_port, p->proto,
		FERRY_CT_FWD);
	fwd = bpf_map_lookup_elem(&ferry_ct, &key);
	if (fwd && ct6_names(fwd, &p->saddr, p->sport, &p->daddr, p->dport)) {
		fwd->expires_ns = rev->expires_ns;
		fwd->flags = rev->flags;
	}
}

/* A direct IPv6 flow from a pod (aimed at no frontend): identity entries
 * and, when its reply tuple is held by a live translated flow, a null
 * binding with a remapped source port. The rules and returns of
 * ct4_direct. */
static __always_inline int ct6_direct(const struct pkt6 *p, __u64 now, struct xlate6 *x)
{
	struct ferry_ct_value *ct;
	struct ferry_ct_key key;
	struct flow6 f;
	int stat, result = FERRY_STAT_PASS;

	ct6_key(&key, &p->saddr, &p->daddr, p->sport, p->dport, p->proto, FERRY_CT_FWD);
	ct = bpf_map_lookup_elem(&ferry_ct, &key);
	if (ct && ct_alive(ct, now) && (ct->flags & FERRY_CT_F_NULLBIND)) {
		if (!((ct->flags & FERRY_CT_F_CLOSING) && tcp6_bare_syn(p))) {
			ct6_use_fwd(p, ct, &f, now);
			xlate6_forward(x, &f);
			return f.sport == p->sport ? FERRY_STAT_PASS : FERRY_STAT_NULLBIND;
		}
		ct6_kill_fwd(p, ct);
	}
	if (p->proto == IPPROTO_TCP && !tcp6_bare_syn(p))
		return FERRY_STAT_PASS;
	/* this packet's reply tuple */
	ct6_key(&key, &p->daddr, &p->saddr, p->dport, p->sport, p->proto, FERRY_CT_REV);
	ct = bpf_map_lookup_elem(&ferry_ct, &key);
	if (ct && (!ct_alive(ct, now) || (ct->flags & FERRY_CT_F_CLOSING))) {
		ct6_kill_rev(&key, ct);
		result = FERRY_STAT_CT_REPLACED;
	}
	__builtin_memset(&f, 0, sizeof(f));
	f.baddr = p->daddr;
	f.bport = p->dport;
	f.saddr = p->saddr;
	f.sport = p->sport;
	f.flags = FERRY_CT_F_NULLBIND;
	stat = ct6_create(p, &f, now);
	if (stat)
		return stat;
	xlate6_forward(x, &f);
	return f.sport == p->sport ? result : FERRY_STAT_NULLBIND;
}

#endif
