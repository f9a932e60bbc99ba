/* SPDX-License-Identifier: GPL-2.0 */
/* Connection tracking for translated flows, after netfilter's model:
 *
 *  - A flow has two entries: FWD keyed by its original tuple (client ->
 *    frontend) and REV keyed by its reply tuple (backend -> the source the
 *    backend sees). Each holds the other side's whole tuple.
 *  - A flow belongs to a service (its frontend's svc_id) and a backend;
 *    every packet checks the pair against ferry_members, so a membership
 *    change re-balances the flow (or refuses it when none is left).
 *  - A reply tuple is unique: when a new flow's reply tuple is held by
 *    another live flow, its source port is remapped (nf_nat's unique
 *    tuple); a closed (FIN/RST) holder is replaced.
 *  - A SYN on a closed tuple starts a new flow; a direct flow whose reply
 *    tuple a translated flow holds gets a null binding with its own port
 *    (or takes the tuple over when the translated flow is closed).
 */
#ifndef FERRY_BPF_CONNTRACK_H
#define FERRY_BPF_CONNTRACK_H

#include "lib/common.h"
#include "lib/maps.h"
#include "lib/parse.h"

/* Ports tried for a remapped source (reply-tuple clash, SNAT): above
 * Linux's default ephemeral range (32768-60999), so a remapped tuple
 * does not collide with a client's own later direct connection. */
const volatile __u16 snat_port_min = 61000;
const volatile __u16 snat_port_max = 65535;
#define SNAT_PORT_TRIES 8

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

/* A TCP SYN without ACK or RST: the only packet that opens a flow. */
static __always_inline int tcp_flags_bare_syn(__u8 proto, __u8 tcp_flags)
{
	return proto == IPPROTO_TCP &&
	       (tcp_flags & (TCP_FLAG_SYN | TCP_FLAG_ACK | TCP_FLAG_RST)) == TCP_FLAG_SYN;
}

static __always_inline int tcp_bare_syn(const struct pkt4 *p)
{
	return tcp_flags_bare_syn(p->proto, p->tcp_flags);
}

/* Extends an entry's life, at most once per ct_refresh_ns; a FIN or RST
 * moves it to the short closing timeout. */
static __always_inline void ct_refresh(struct ferry_ct_value *v, __u8 proto, __u8 tcp_flags,
				       __u64 now)
{
	__u64 timeout;

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

/* Is the entry's backend still the one programmed under its id, and
 * still a member of the service the packet is aimed at? */
static __always_inline int ct_member_valid(const struct ferry_ct_value *v, __u32 svc_id)
{
	const struct ferry_backend *be;
	struct ferry_member_key mk;

	if (v->svc_id != svc_id)
		return 0;
	mk.svc_id = v->svc_id;
	mk.backend_id = v->backend_id;
	if (!bpf_map_lookup_elem(&ferry_members, &mk))
		return 0;
	be = bpf_map_lookup_elem(&ferry_backends, &v->backend_id);
	if (!be)
		return 0;
	return be->port == v->nat_port && be->addr.w[3] == v->nat_addr.w[3] &&
	       be->addr.w[2] == v->nat_addr.w[2] && be->addr.w[1] == v->nat_addr.w[1] &&
	       be->addr.w[0] == v->nat_addr.w[0];
}

/* A flow: the backend, and the source it is sent from (the client's
 * own, the node's under SNAT, a remapped port after a clash). */
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

/* Removes a flow given its REV entry: the FWD entry it names goes too,
 * if it still names this reply tuple. */
static __always_inline void ct4_kill_rev(const struct ferry_ct_key *rkey,
					 const struct ferry_ct_value *rev)
{
	struct ferry_ct_value *fwd;
	struct ferry_ct_key key;

	ct4_key(&key, rev->alt_addr.w[3], rev->nat_addr.w[3], rev->alt_port, rev->nat_port,
		rkey->proto, FERRY_CT_FWD);
	fwd = bpf_map_lookup_elem(&ferry_ct, &key);
	if (fwd && fwd->nat_addr.w[3] == rkey->saddr.w[3] && fwd->nat_port == rkey->sport &&
	    fwd->alt_addr.w[3] == rkey->daddr.w[3] && fwd->alt_port == rkey->dport)
		bpf_map_delete_elem(&ferry_ct, &key);
	bpf_map_delete_elem(&ferry_ct, rkey);
}

/* Removes a flow given the packet that hit its FWD entry. */
static __always_inline void ct4_kill_fwd(const struct pkt4 *p, const struct ferry_ct_value *fwd)
{
	struct ferry_ct_value *rev;
	struct ferry_ct_key key;

	ct4_key(&key, fwd->nat_addr.w[3], fwd->alt_addr.w[3], fwd->nat_port, fwd->alt_port,
		p->proto, FERRY_CT_REV);
	rev = bpf_map_lookup_elem(&ferry_ct, &key);
	if (rev && rev->alt_addr.w[3] == p->saddr && rev->alt_port == p->sport &&
	    rev->nat_addr.w[3] == p->daddr && rev->nat_port == p->dport)
		bpf_map_delete_elem(&ferry_ct, &key);
	ct4_key(&key, p->saddr, p->daddr, p->sport, p->dport, p->proto, FERRY_CT_FWD);
	bpf_map_delete_elem(&ferry_ct, &key);
}

/* Can a new flow for packet p use this reply tuple? Free, expired, its
 * own (the same original tuple re-created), or held by a closed flow,
 * which is replaced. */
static __always_inline int ct4_reply_tuple_free(const struct pkt4 *p, const struct ferry_ct_key *rkey,
					       __u64 now)
{
	struct ferry_ct_value *old = bpf_map_lookup_elem(&ferry_ct, rkey);

	if (!old || !ct_alive(old, now))
		return 1;
	if (old->alt_addr.w[3] == p->saddr && old->alt_port == p->sport &&
	    old->nat_addr.w[3] == p->daddr && old->nat_port == p->dport)
		return 1;
	if (old->flags & FERRY_CT_F_CLOSING) {
		ct4_kill_rev(rkey, old);
		return 1;
	}
	return 0;
}

/* Records both directions of a new flow. The source port towards the
 * backend is f->sport when its reply tuple is free, else a random one
 * (FERRY_CT_F_REMAP unless the flow is SNATed anyway). The reverse entry
 * goes first: a reply must never beat its translation. Returns 0 or a
 * drop reason. */
static __always_inline int ct4_create(const struct pkt4 *p, struct flow4 *f, __u64 now)
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
		ct4_rev_key(&key, p, f);
		if (ct4_reply_tuple_free(p, &key, now))
			break;
	}
	if (i == SNAT_PORT_TRIES)
		return FERRY_STAT_DROP_SNAT_PORTS;
	if (f->sport != first && !(f->flags & FERRY_CT_F_SNAT))
		f->flags |= FERRY_CT_F_REMAP;

	ct4_value(&v, p->daddr, p->dport, p->saddr, p->sport, f, expires);
	if (bpf_map_update_elem(&ferry_ct, &key, &v, BPF_ANY))
		return FERRY_STAT_DROP_CT_FULL;
	ct4_value(&v, f->baddr, f->bport, f->saddr, f->sport, f, expires);
	ct4_key(&key, p->saddr, p->daddr, p->sport, p->dport, p->proto, FERRY_CT_FWD);
	if (bpf_map_update_elem(&ferry_ct, &key, &v, BPF_ANY))
		return FERRY_STAT_DROP_CT_FULL;
	return 0;
}

/* The flow an established forward entry describes. */
static __always_inline void flow4_from_ct(struct flow4 *f, const struct ferry_ct_value *ct)
{
	f->baddr = ct->nat_addr.w[3];
	f->bport = ct->nat_port;
	f->saddr = ct->alt_addr.w[3];
	f->sport = ct->alt_port;
	f->backend_id = ct->backend_id;
	f->svc_id = ct->svc_id;
	f->flags = ct->flags;
}

/* Uses a live FWD entry for packet p: refreshes both directions. */
static __always_inline void ct4_use_fwd(const struct pkt4 *p, struct ferry_ct_value *ct,
					struct flow4 *f, __u64 now)
{
	__u64 old_expiry = ct->expires_ns;
	__u16 old_flags = ct->flags;

	ct_refresh(ct, p->proto, p->tcp_flags, now);
	flow4_from_ct(f, ct);
	if (ct->expires_ns != old_expiry || ct->flags != old_flags) {
		/* keep the reply direction alive with the forward one */
		struct ferry_ct_value *rev;
		struct ferry_ct_key key;

		ct4_rev_key(&key, p, f);
		rev = bpf_map_lookup_elem(&ferry_ct, &key);
		if (rev) {
			rev->expires_ns = ct->expires_ns;
			rev->flags = ct->flags;
		}
	}
}

/* Forward lookup for a packet aimed at the frontend of service svc_id:
 * the established flow, if alive, still a member, and not a SYN on a
 * closed tuple. Returns 1 with *f filled, else 0; `*stat` names what was
 * found (FWD_NEW, FWD_RESELECT, CT_REPLACED, FWD_ESTABLISHED). */
static __always_inline int ct4_lookup_fwd(const struct pkt4 *p, __u64 now, __u32 svc_id,
					  struct flow4 *f, int *stat)
{
	struct ferry_ct_value *ct;
	struct ferry_ct_key key;

	*stat = FERRY_STAT_FWD_NEW;
	ct4_key(&key, p->saddr, p->daddr, p->sport, p->dport, p->proto, FERRY_CT_FWD);
	ct = bpf_map_lookup_elem(&ferry_ct, &key);
	if (!ct || !ct_alive(ct, now))
		return 0;
	if ((ct->flags & FERRY_CT_F_CLOSING) && tcp_bare_syn(p)) {
		ct4_kill_fwd(p, ct);
		*stat = FERRY_STAT_CT_REPLACED;
		return 0;
	}
	if (!ct_member_valid(ct, svc_id)) {
		ct4_kill_fwd(p, ct);
		*stat = FERRY_STAT_FWD_RESELECT;
		return 0;
	}
	ct4_use_fwd(p, ct, f, now);
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

/* Uses a live REV entry for reply p: refreshes it, and its FWD entry
 * when the expiry or the closing state moved, so a FIN or RST from the
 * backend closes the flow for both directions. */
static __always_inline void ct4_use_rev(const struct pkt4 *p, struct ferry_ct_value *rev,
					__u64 now)
{
	__u64 old_expiry = rev->expires_ns;
	__u16 old_flags = rev->flags;
	struct ferry_ct_value *fwd;
	struct ferry_ct_key key;

	ct_refresh(rev, p->proto, p->tcp_flags, now);
	if (rev->expires_ns == old_expiry && rev->flags == old_flags)
		return;
	ct4_key(&key, rev->alt_addr.w[3], rev->nat_addr.w[3], rev->alt_port, rev->nat_port,
		p->proto, FERRY_CT_FWD);
	fwd = bpf_map_lookup_elem(&ferry_ct, &key);
	if (fwd && fwd->nat_addr.w[3] == p->saddr && fwd->nat_port == p->sport &&
	    fwd->alt_addr.w[3] == p->daddr && fwd->alt_port == p->dport) {
		fwd->expires_ns = rev->expires_ns;
		fwd->flags = rev->flags;
	}
}

/* A packet's new tuple: the one description of a rewrite that the tc
 * and XDP appliers (nat.h) both execute. */
struct xlate4 {
	__be32 saddr;
	__be32 daddr;
	__be16 sport;
	__be16 dport;
};

/* Reply: source back to the frontend, destination back to the client
 * (the same address and port unless SNAT or a remapped port). */
static __always_inline void xlate4_reply(struct xlate4 *x, const struct ferry_ct_value *ct)
{
	x->saddr = ct->nat_addr.w[3];
	x->sport = ct->nat_port;
	x->daddr = ct->alt_addr.w[3];
	x->dport = ct->alt_port;
}

static __always_inline void xlate4_forward(struct xlate4 *x, const struct flow4 *f)
{
	x->saddr = f->saddr;
	x->sport = f->sport;
	x->daddr = f->baddr;
	x->dport = f->bport;
}

/* A packet that is aimed at no frontend (a direct flow, e.g. a pod to
 * another pod's address). Netfilter tracks every flow, and so does this
 * for flows from pods: a direct TCP SYN or UDP packet records an
 * identity entry pair (FERRY_CT_F_NULLBIND), so that a later translated
 * flow whose reply tuple it holds gets a remapped port, as nf_nat would
 * give it. And when the direct flow's own reply tuple is held:
 *   - by a closed translated flow (FIN/RST seen) or an expired one: the
 *     direct flow takes the tuple, the old entries go (CT_REPLACED);
 *   - by a live translated flow: the direct flow's source port is
 *     remapped (NULLBIND), so replies of both stay apart.
 * Packets of a tracked direct flow find its FWD entry; other TCP packets
 * (flows older than the agent) pass untracked. Returns PASS (untouched),
 * CT_REPLACED (untouched, old flow removed), NULLBIND with *x filled, or
 * a drop reason. */
static __always_inline int ct4_direct(const struct pkt4 *p, __u64 now, struct xlate4 *x)
{
	struct ferry_ct_value *ct;
	struct ferry_ct_key key;
	struct flow4 f;
	int stat, result = FERRY_STAT_PASS;

	ct4_key(&key, p->saddr, p->daddr, p->sport, p->dport, p->proto, FERRY_CT_FWD);
	ct = bpf_map_lookup_elem(&ferry_ct, &key);
	if (ct && ct_alive(ct, now) && (ct->flags & FERRY_CT_F_NULLBIND)) {
		if (!((ct->flags & FERRY_CT_F_CLOSING) && tcp_bare_syn(p))) {
			ct4_use_fwd(p, ct, &f, now);
			xlate4_forward(x, &f);
			return f.sport == p->sport ? FERRY_STAT_PASS : FERRY_STAT_NULLBIND;
		}
		ct4_kill_fwd(p, ct);
	}
	if (p->proto == IPPROTO_TCP && !tcp_bare_syn(p))
		return FERRY_STAT_PASS;
	/* this packet's reply tuple */
	ct4_key(&key, p->daddr, p->saddr, p->dport, p->sport, p->proto, FERRY_CT_REV);
	ct = bpf_map_lookup_elem(&ferry_ct, &key);
	if (ct && (!ct_alive(ct, now) || (ct->flags & FERRY_CT_F_CLOSING))) {
		ct4_kill_rev(&key, ct);
		result = FERRY_STAT_CT_REPLACED;
	}
	__builtin_memset(&f, 0, sizeof(f));
	f.baddr = p->daddr;
	f.bport = p->dport;
	f.saddr = p->saddr;
	f.sport = p->sport;
	f.flags = FERRY_CT_F_NULLBIND;
	stat = ct4_create(p, &f, now);
	if (stat)
		return stat;
	xlate4_forward(x, &f);
	return f.sport == p->sport ? result : FERRY_STAT_NULLBIND;
}

#endif
