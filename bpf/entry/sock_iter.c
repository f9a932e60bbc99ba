// SPDX-License-Identifier: GPL-2.0
/* Stale connected UDP sockets of the node's processes (issue 14,
 * kubernetes#125467): connect() on a UDP socket to a frontend was turned
 * into its backend's address by the socket hooks (lib/sock.h), and no
 * later packet passes a hook again. When that backend leaves the
 * frontend (its (service id, backend id) pair is gone from
 * ferry_members), the agent runs this iterator over the node's UDP
 * sockets of both families and destroys each such socket with
 * bpf_sock_destroy (kernel >= 6.5): the application sees ECONNABORTED
 * and connects again, to a live backend. Sockets the hooks did not
 * translate, and those whose backend is still a member (a terminating
 * endpoint keeps its flows), are left alone. Writes one byte per
 * destroyed socket to the seq file, so the agent can count them.
 *
 * Kernel types are declared here with only the fields read, relocated
 * against the kernel's BTF (CO-RE). */
#include "lib/sock.h"

struct seq_file;

struct bpf_iter_meta {
	struct seq_file *seq;
} __attribute__((preserve_access_index));

/* struct in6_addr (a CO-RE flavour: linux/in6.h may define it too) */
struct in6_addr___ferry {
	union {
		__be32 u6_addr32[4];
	} in6_u;
} __attribute__((preserve_access_index));

struct sock_common {
	__be32 skc_daddr;
	__be16 skc_dport;
	unsigned short skc_family;
	struct in6_addr___ferry skc_v6_daddr;
} __attribute__((preserve_access_index));

struct sock {
	struct sock_common __sk_common;
} __attribute__((preserve_access_index));

struct udp_sock;

struct bpf_iter__udp {
	struct bpf_iter_meta *meta;
	struct udp_sock *udp_sk;
} __attribute__((preserve_access_index));

extern int bpf_sock_destroy(struct sock_common *sk) __ksym;

/* Is the (frontend, backend) pair behind this translated socket gone? */
static __always_inline int sock_stale(const struct ferry_sock_value *rev)
{
	const struct ferry_svc_value *svc;
	struct ferry_member_key mk;
	struct frontend fe;

	if (!rev->backend_id)
		return 0; /* written by an older agent: unknown, leave it */
	svc = svc_lookup_frontend(&rev->addr, rev->port, IPPROTO_UDP, 1, &fe);
	if (!svc)
		return 1; /* the frontend is gone */
	mk.svc_id = svc->svc_id;
	mk.backend_id = rev->backend_id;
	return !bpf_map_lookup_elem(&ferry_members, &mk);
}

SEC("iter/udp")
int ferry_sock_udp_sweep(struct bpf_iter__udp *ctx)
{
	struct sock *sk = (struct sock *)ctx->udp_sk;
	const struct ferry_sock_value *rev;
	struct ferry_sock_key key;
	union ferry_addr daddr;
	static const char one = 1;

	if (!sk)
		return 0;
	if (sk->__sk_common.skc_family == 2 /* AF_INET */) {
		addr_set_v4(&daddr, sk->__sk_common.skc_daddr);
	} else if (sk->__sk_common.skc_family == 10 /* AF_INET6 */) {
		/* IPv6, or IPv4-mapped when connected to an IPv4 address: the
		 * form the socket hooks keyed it by either way */
		daddr.w[0] = sk->__sk_common.skc_v6_daddr.in6_u.u6_addr32[0];
		daddr.w[1] = sk->__sk_common.skc_v6_daddr.in6_u.u6_addr32[1];
		daddr.w[2] = sk->__sk_common.skc_v6_daddr.in6_u.u6_addr32[2];
		daddr.w[3] = sk->__sk_common.skc_v6_daddr.in6_u.u6_addr32[3];
	} else {
		return 0;
	}
	if (!(daddr.w[0] | daddr.w[1] | daddr.w[3]))
		return 0; /* not connected (0.0.0.0, ::ffff:0.0.0.0 or ::) */
	sock_key(&key, bpf_get_socket_cookie(sk), &daddr, sk->__sk_common.skc_dport, IPPROTO_UDP);
	rev = bpf_map_lookup_elem(&ferry_sock_revnat, &key);
	if (!rev || !sock_stale(rev))
		return 0;
	if (bpf_sock_destroy(&sk->__sk_common))
		return 0;
	bpf_map_delete_elem(&ferry_sock_revnat, &key);
	bpf_seq_write(ctx->meta->seq, &one, 1);
	return 0;
}
