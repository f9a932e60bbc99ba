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

static __always_inline void sock_key(struct ferry_sock_key *k, __u64 cookie, __be32 addr,
				     __be16 port, __u8 proto)
{
	__builtin_memset(k, 0, sizeof(*k));
	k->cookie = cookie;
	addr_set_v4(&k->addr, addr);
	k->port = port;
	k->proto = proto;
}

/* connect4 / sendmsg4: service address -> backend address. */
static __always_inline int sock4_xlate(struct bpf_sock_addr *ctx)
{
	const struct ferry_svc_value *svc;
	const struct ferry_backend *be;
	struct ferry_sock_value rev;
	struct ferry_sock_key key;
	const struct ferry_config *cfg;
	struct frontend fe;
	struct lb_flow fl;
	__u32 backend_id;
	__be32 daddr = ctx->user_ip4;
	__be16 dport = (__be16)ctx->user_port;
	__u8 proto = sock_proto(ctx);

	if (!proto)
		return SOCK_ALLOW;
	svc = svc4_lookup_frontend(daddr, dport, proto, 1, &fe);
	if (!svc)
		return SOCK_ALLOW;
	/* the node's own sockets: the client is the node's address */
	cfg = config_get();
	__builtin_memset(&fl, 0, sizeof(fl));
	if (cfg)
		fl.client = cfg->snat4;
	fl.now = ferry_now(cfg);
	be = lb_select(&fe, dport, proto, svc, &fl, &backend_id);
	if (!be) {
		stat_inc(FERRY_HOOK_SOCK, FERRY_STAT_SOCK_REJECT);
		bpf_set_retval(-ECONNREFUSED);
		return SOCK_DENY;
	}

	__builtin_memset(&rev, 0, sizeof(rev));
	addr_set_v4(&rev.addr, daddr);
	rev.port = dport;
	rev.backend_id = backend_id; /* for the stale-socket sweep (entry/sock_iter.c) */
	sock_key(&key, bpf_get_socket_cookie(ctx), be->addr.w[3], be->port, proto);
	bpf_map_update_elem(&ferry_sock_revnat, &key, &rev, BPF_ANY);

	ctx->user_ip4 = be->addr.w[3];
	ctx->user_port = be->port;
	stat_inc(FERRY_HOOK_SOCK, FERRY_STAT_SOCK_LB);
	return SOCK_ALLOW;
}

/* recvmsg4 / getpeername4: backend address -> service address. */
static __always_inline int sock4_revnat(struct bpf_sock_addr *ctx)
{
	const struct ferry_sock_value *rev;
	struct ferry_sock_key key;
	__u8 proto = sock_proto(ctx);

	if (!proto)
		return SOCK_ALLOW;
	sock_key(&key, bpf_get_socket_cookie(ctx), ctx->user_ip4, (__be16)ctx->user_port, proto);
	rev = bpf_map_lookup_elem(&ferry_sock_revnat, &key);
	if (!rev)
		return SOCK_ALLOW;
	ctx->user_ip4 = rev->addr.w[3];
	ctx->user_port = rev->port;
	return SOCK_ALLOW;
}

#endif
