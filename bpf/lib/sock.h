/* SPDX-License-Identifier: GPL-2.0 */
/* Socket-level load balancing for the node's own processes (cgroup
 * sock_addr hooks; the programs are in bpf/entry/sock.c): connect()/sendmsg() to a service address is turned
 * into the backend's address before any packet exists, so no per-packet
 * translation or conntrack is needed; getpeername()/recvmsg() show the
 * service address again. */
#ifndef FERRY_BPF_SOCK_H
#define FERRY_BPF_SOCK_H

#include "lib/common.h"
#include "lib/lb.h"
#include "lib/maps.h"

#ifndef ECONNREFUSED
#define ECONNREFUSED 111
#endif

#define SOCK_ALLOW 1
#define SOCK_DENY 0

static __always_inline __u8 sock_proto(const struct bpf_sock_addr *ctx)
{
	if (ctx->type == 1 /* SOCK_STREAM */)
		return IPPROTO_TCP;
	if (ctx->type == 2 /* SOCK_DGRAM */)
		return IPPROTO_UDP;
	return 0;
}

static __always_inline void sock_key(struct ferry_sock_key *k, __u64 cookie,
				     const union ferry_addr *addr, __be16 port, __u8 proto)
{
	__builtin_memset(k, 0, sizeof(*k));
	k->cookie = cookie;
	k->addr = *addr;
	k->port = port;
	k->proto = proto;
}

/* The hooks of both families share the two functions below; they work on
 * the address as the maps hold it (IPv4 as ::ffff:a.b.c.d). An AF_INET6
 * socket aimed at an IPv4-mapped address (a dual-stack application
 * connecting to an IPv4 service) thus gets the IPv4 frontend and an
 * IPv4-mapped backend address, as Cilium's sock6 hooks do. */
#define SOCK_XLATE_NONE 0  /* not a frontend: leave the address alone */
#define SOCK_XLATE_DONE 1  /* *daddr, *dport now name the backend */
#define SOCK_XLATE_DENY -1 /* no usable endpoint: ECONNREFUSED is set */

/* connect / sendmsg: a frontend address -> a backend address, remembered
 * under the socket's cookie for recvmsg / getpeername. */
static __always_inline int sock_xlate(struct bpf_sock_addr *ctx, union ferry_addr *daddr,
				      __be16 *dport, __u8 proto)
{
	const struct ferry_svc_value *svc;
	const struct ferry_backend *be;
	struct ferry_sock_value rev;
	struct ferry_sock_key key;
	const struct ferry_config *cfg;
	struct frontend fe;
	struct lb_flow fl;
	__u32 backend_id;
	int v4 = addr_is_v4(daddr);

	svc = svc_lookup_frontend(daddr, *dport, proto, 1, &fe);
	if (!svc)
		return SOCK_XLATE_NONE;
	/* the node's own sockets: the client is the node's address */
	cfg = config_get();
	__builtin_memset(&fl, 0, sizeof(fl));
	if (cfg)
		fl.client = v4 ? cfg->snat4 : cfg->snat6;
	fl.now = ferry_now(cfg);
	be = lb_select(&fe, *dport, proto, svc, &fl, &backend_id);
	/* A frontend's backends are of its family (planner.cpp); one that is
	 * not could not be reached from this socket. */
	if (!be || addr_is_v4(&be->addr) != v4) {
		stat_inc(FERRY_HOOK_SOCK, FERRY_STAT_SOCK_REJECT);
		bpf_set_retval(-ECONNREFUSED);
		return SOCK_XLATE_DENY;
	}

	__builtin_memset(&rev, 0, sizeof(rev));
	rev.addr = *daddr;
	rev.port = *dport;
	rev.backend_id = backend_id; /* for the stale-socket sweep (entry/sock_iter.c) */
	sock_key(&key, bpf_get_socket_cookie(ctx), &be->addr, be->port, proto);
	bpf_map_update_elem(&ferry_sock_revnat, &key, &rev, BPF_ANY);

	*daddr = be->addr;
	*dport = be->port;
	stat_inc(FERRY_HOOK_SOCK, FERRY_STAT_SOCK_LB);
	return SOCK_XLATE_DONE;
}

/* recvmsg / getpeername: a backend address this socket was translated to
 * -> its frontend address. Returns whether *addr, *port were rewritten. */
static __always_inline int sock_revnat(struct bpf_sock_addr *ctx, union ferry_addr *addr,
				       __be16 *port, __u8 proto)
{
	const struct ferry_sock_value *rev;
	struct ferry_sock_key key;

	sock_key(&key, bpf_get_socket_cookie(ctx), addr, *port, proto);
	rev = bpf_map_lookup_elem(&ferry_sock_revnat, &key);
	if (!rev)
		return 0;
	*addr = rev->addr;
	*port = rev->port;
	return 1;
}

/* connect4 / sendmsg4: service address -> backend address. */
static __always_inline int sock4_xlate(struct bpf_sock_addr *ctx)
{
	union ferry_addr a;
	__be16 port = (__be16)ctx->user_port;
	__u8 proto = sock_proto(ctx);
	int r;

	if (!proto)
		return SOCK_ALLOW;
	addr_set_v4(&a, ctx->user_ip4);
	r = sock_xlate(ctx, &a, &port, proto);
	if (r == SOCK_XLATE_DENY)
		return SOCK_DENY;
	if (r == SOCK_XLATE_DONE) {
		ctx->user_ip4 = a.w[3];
		ctx->user_port = port;
	}
	return SOCK_ALLOW;
}

/* recvmsg4 / getpeername4: backend address -> service address. */
static __always_inline int sock4_revnat(struct bpf_sock_addr *ctx)
{
	union ferry_addr a;
	__be16 port = (__be16)ctx->user_port;
	__u8 proto = sock_proto(ctx);

	if (!proto)
		return SOCK_ALLOW;
	addr_set_v4(&a, ctx->user_ip4);
	if (sock_revnat(ctx, &a, &port, proto)) {
		ctx->user_ip4 = a.w[3];
		ctx->user_port = port;
	}
	return SOCK_ALLOW;
}

/* The IPv6 socket address of a sock_addr hook (32-bit context accesses
 * only, as the verifier allows for user_ip6). */
static __always_inline void sock6_addr_get(const struct bpf_sock_addr *ctx, union ferry_addr *a)
{
	a->w[0] = ctx->user_ip6[0];
	a->w[1] = ctx->user_ip6[1];
	a->w[2] = ctx->user_ip6[2];
	a->w[3] = ctx->user_ip6[3];
}

static __always_inline void sock6_addr_set(struct bpf_sock_addr *ctx, const union ferry_addr *a)
{
	ctx->user_ip6[0] = a->w[0];
	ctx->user_ip6[1] = a->w[1];
	ctx->user_ip6[2] = a->w[2];
	ctx->user_ip6[3] = a->w[3];
}

/* connect6 / sendmsg6: as sock4_xlate, for IPv6 and IPv4-mapped
 * addresses. */
static __always_inline int sock6_xlate(struct bpf_sock_addr *ctx)
{
	union ferry_addr a;
	__be16 port = (__be16)ctx->user_port;
	__u8 proto = sock_proto(ctx);
	int r;

	if (!proto)
		return SOCK_ALLOW;
	sock6_addr_get(ctx, &a);
	r = sock_xlate(ctx, &a, &port, proto);
	if (r == SOCK_XLATE_DENY)
		return SOCK_DENY;
	if (r == SOCK_XLATE_DONE) {
		sock6_addr_set(ctx, &a);
		ctx->user_port = port;
	}
	return SOCK_ALLOW;
}

/* recvmsg6 / getpeername6: as sock4_revnat. */
static __always_inline int sock6_revnat(struct bpf_sock_addr *ctx)
{
	union ferry_addr a;
	__be16 port = (__be16)ctx->user_port;
	__u8 proto = sock_proto(ctx);

	if (!proto)
		return SOCK_ALLOW;
	sock6_addr_get(ctx, &a);
	if (sock_revnat(ctx, &a, &port, proto)) {
		sock6_addr_set(ctx, &a);
		ctx->user_port = port;
	}
	return SOCK_ALLOW;
}

#endif
