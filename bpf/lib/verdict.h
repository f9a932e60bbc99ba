/* SPDX-License-Identifier: GPL-2.0 */
/* What the entry programs share: an outcome (enum ferry_stat) becomes a
 * counter and a verdict in one place; FIB lookup parameters. */
#ifndef FERRY_BPF_VERDICT_H
#define FERRY_BPF_VERDICT_H

#include "lib/common.h"
#include "lib/conntrack.h"
#include "lib/maps.h"
#include "lib/parse.h"

#ifndef AF_INET
#define AF_INET 2
#endif
#ifndef AF_INET6
#define AF_INET6 10
#endif

static __always_inline int tc_verdict(__u32 hook, int stat)
{
	stat_inc(hook, stat);
	switch (stat) {
	case FERRY_STAT_HAIRPIN:
	case FERRY_STAT_REJECT_NO_BACKEND:
		return TC_ACT_REDIRECT;
	case FERRY_STAT_DROP_NO_BACKEND:
	case FERRY_STAT_DROP_CT_FULL:
	case FERRY_STAT_DROP_REWRITE:
	case FERRY_STAT_DROP_NO_LOCAL:
	case FERRY_STAT_DROP_NO_ROUTE:
	case FERRY_STAT_DROP_SNAT_PORTS:
	case FERRY_STAT_DROP_SRC_RANGE:
		return TC_ACT_SHOT;
	default:
		return TC_ACT_OK;
	}
}

#define PKT4_PARSE(ctx, p) parse4((void *)(long)(ctx)->data, (void *)(long)(ctx)->data_end, (p))

static __always_inline void fib4_params(struct bpf_fib_lookup *fib, __u8 proto, __be32 saddr,
					__be32 daddr, __be16 sport, __be16 dport, __u32 ifindex)
{
	__builtin_memset(fib, 0, sizeof(*fib));
	fib->family = AF_INET;
	fib->l4_protocol = proto;
	fib->sport = sport;
	fib->dport = dport;
	fib->ipv4_src = saddr;
	fib->ipv4_dst = daddr;
	fib->ifindex = ifindex;
}

/* fib4_params for IPv6 addresses. */
static __always_inline void fib6_params(struct bpf_fib_lookup *fib, __u8 proto,
					const union ferry_addr *saddr,
					const union ferry_addr *daddr, __be16 sport, __be16 dport,
					__u32 ifindex)
{
	__builtin_memset(fib, 0, sizeof(*fib));
	fib->family = AF_INET6;
	fib->l4_protocol = proto;
	fib->sport = sport;
	fib->dport = dport;
	__builtin_memcpy(fib->ipv6_src, saddr, 16);
	__builtin_memcpy(fib->ipv6_dst, daddr, 16);
	fib->ifindex = ifindex;
}

#endif
