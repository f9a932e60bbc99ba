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

#endif
