/* SPDX-License-Identifier: GPL-2.0 */
/* Connection tracking for translated flows: lookups, creation, expiry. */
#ifndef FERRY_BPF_CONNTRACK_H
#define FERRY_BPF_CONNTRACK_H

#include "lib/common.h"
#include "lib/maps.h"
#include "lib/parse.h"

static __always_inline void ct4_key(struct ferry_ct_key *k, __be32 saddr, __be32 daddr,
				    __be16 sport, __be16 dport, __u8 proto, __u8 dir)
{
	__builtin_memset(k, 0, sizeof(*k));
	addr_set_v4(&k->saddr, saddr);
	addr_set_v4(&k->daddr, daddr);
	k->sport = sport;
	k->dport = dport;
	k->proto = proto;
	k->dir = dir;
}

static __always_inline __u64 ct_timeout(__u8 proto, __u16 flags)
{
	if (flags & FERRY_CT_F_CLOSING)
		return ct_timeout_closing_ns;
	return proto == IPPROTO_TCP ? ct_timeout_tcp_ns : ct_timeout_other_ns;
}

static __always_inline int ct_alive(const struct ferry_ct_value *v, __u64 now)
{
	return v->expires_ns > now;
}

/* Extends an entry's life, at most once per ct_refresh_ns; a FIN or RST
 * moves it to the short closing timeout. */
static __always_inline void ct_refresh(struct ferry_ct_value *v, __u8 proto, __u8 tcp_flags,
				       __u64 now)
{
	__u64 timeout;

	/* A bare SYN on a closing entry is a new connection reusing the
	 * tuple: it gets the full timeout again. */
	if ((tcp_flags & (TCP_FLAG_SYN | TCP_FLAG_ACK)) == TCP_FLAG_SYN)
		v->flags &= ~FERRY_CT_F_CLOSING;
	if (tcp_flags & (TCP_FLAG_FIN | TCP_FLAG_RST)) {
		if (!(v->flags & FERRY_CT_F_CLOSING))
			v->flags |= FERRY_CT_F_CLOSING;
		if (v->expires_ns > now + ct_timeout_closing_ns)
			v->expires_ns = now + ct_timeout_closing_ns;
		return;
	}
	timeout = ct_timeout(proto, v->flags);
	if (v->expires_ns + ct_refresh_ns < now + timeout)
		v->expires_ns = now + timeout;
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

/* A new flow: the backend, and the source it is sent from (the client's
 * own, or the node's under SNAT). */
struct flow4 {
	__be32 baddr;
	__be16 bport;
	__be16 sport; /* source port towards the backend */
	__be32 saddr; /* source address towards the backend */
	__u32 backend_id;
	__u32 svc_id;
	__u16 flags; /* enum ferry_ct_flags */
};

static __always_inline void ct4_rev_key(struct ferry_ct_key *k, const struct pkt4 *p,
					const struct flow4 *f)
{
	ct4_key(k, f->baddr, f->saddr, f->bport, f->sport, p->proto, FERRY_CT_REV);
}

/* One direction's entry: what the packet becomes (nat), and the other
 * end (alt). */
static __always_inline void ct4_value(struct ferry_ct_value *v, __be32 nat_addr, __be16 nat_port,
				      __be32 alt_addr, __be16 alt_port, const struct flow4 *f,
				      __u64 expires)
{
	__builtin_memset(v, 0, sizeof(*v));
	addr_set_v4(&v->nat_addr, nat_addr);
	v->nat_port = nat_port;
	addr_set_v4(&v->alt_addr, alt_addr);
	v->alt_port = alt_port;
	v->expires_ns = expires;
	v->flags = f->flags;
	v->backend_id = f->backend_id;
	v->svc_id = f->svc_id;
}

/* Records both directions of a new flow. The reverse entry goes first:
 * a reply must never beat its translation. */
static __always_inline int ct4_create(const struct pkt4 *p, const struct flow4 *f, __u64 now)
{
	struct ferry_ct_value v;
	struct ferry_ct_key key;
	__u64 expires = now + ct_timeout(p->proto, 0);

	ct4_value(&v, p->daddr, p->dport, p->saddr, p->sport, f, expires);
	ct4_rev_key(&key, p, f);
	if (bpf_map_update_elem(&ferry_ct, &key, &v, BPF_ANY))
		return -1;
	ct4_value(&v, f->baddr, f->bport, f->saddr, f->sport, f, expires);
	ct4_key(&key, p->saddr, p->daddr, p->sport, p->dport, p->proto, FERRY_CT_FWD);
	if (bpf_map_update_elem(&ferry_ct, &key, &v, BPF_ANY))
		return -1;
	return 0;
}

/* The flow an established forward entry describes. */
static __always_inline void flow4_from_ct(struct flow4 *f, const struct pkt4 *p,
					  const struct ferry_ct_value *ct)
{
	f->baddr = ct->nat_addr.w[3];
	f->bport = ct->nat_port;
	f->saddr = (ct->flags & FERRY_CT_F_SNAT) ? ct->alt_addr.w[3] : p->saddr;
	f->sport = (ct->flags & FERRY_CT_F_SNAT) ? ct->alt_port : p->sport;
	f->backend_id = ct->backend_id;
	f->svc_id = ct->svc_id;
	f->flags = ct->flags;
}

/* Forward lookup: the established flow for this packet, if alive and its
 * backend still exists. `*stat` says what was found. */
static __always_inline int ct4_lookup_fwd(const struct pkt4 *p, __u64 now, struct flow4 *f,
					  int *stat)
{
	struct ferry_ct_value *ct;
	struct ferry_ct_key key;
	__u64 old_expiry;

	*stat = FERRY_STAT_FWD_NEW;
	ct4_key(&key, p->saddr, p->daddr, p->sport, p->dport, p->proto, FERRY_CT_FWD);
	ct = bpf_map_lookup_elem(&ferry_ct, &key);
	if (!ct || !ct_alive(ct, now))
		return 0;
	if (!ct_backend_valid(ct)) {
		*stat = FERRY_STAT_FWD_RESELECT;
		return 0;
	}
	old_expiry = ct->expires_ns;
	ct_refresh(ct, p->proto, p->tcp_flags, now);
	flow4_from_ct(f, p, ct);
	if (ct->expires_ns != old_expiry) {
		/* keep the reply direction alive with the forward one */
		struct ferry_ct_value *rev;

		ct4_rev_key(&key, p, f);
		rev = bpf_map_lookup_elem(&ferry_ct, &key);
		if (rev) {
			rev->expires_ns = ct->expires_ns;
			rev->flags = ct->flags;
		}
	}
	*stat = FERRY_STAT_FWD_ESTABLISHED;
	return 1;
}

/* Reverse lookup: the reply translation for this packet, if alive. The
 * caller refreshes it once it knows the entry is its own. */
static __always_inline struct ferry_ct_value *ct4_lookup_rev(const struct pkt4 *p, __u64 now)
{
	struct ferry_ct_value *ct;
	struct ferry_ct_key key;

	ct4_key(&key, p->saddr, p->daddr, p->sport, p->dport, p->proto, FERRY_CT_REV);
	ct = bpf_map_lookup_elem(&ferry_ct, &key);
	if (!ct || !ct_alive(ct, now))
		return NULL;
	return ct;
}

/* How a reply is rewritten: source back to the frontend; under SNAT the
 * destination back to the client too. */
struct xlate4 {
	__be32 saddr;
	__be32 daddr;
	__be16 sport;
	__be16 dport;
};

static __always_inline void xlate4_reply(struct xlate4 *x, const struct pkt4 *p,
					 const struct ferry_ct_value *ct)
{
	x->saddr = ct->nat_addr.w[3];
	x->sport = ct->nat_port;
	x->daddr = (ct->flags & FERRY_CT_F_SNAT) ? ct->alt_addr.w[3] : p->daddr;
	x->dport = (ct->flags & FERRY_CT_F_SNAT) ? ct->alt_port : p->dport;
}

static __always_inline void xlate4_forward(struct xlate4 *x, const struct flow4 *f)
{
	x->saddr = f->saddr;
	x->sport = f->sport;
	x->daddr = f->baddr;
	x->dport = f->bport;
}

#endif
