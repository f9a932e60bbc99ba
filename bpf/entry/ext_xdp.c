// SPDX-License-Identifier: GPL-2.0
/* XDP on the external device: NodePort and externalIP traffic, decided
 * by ext4_plan (lib/nodeport.h) and rewritten in place. What XDP cannot
 * finish it passes on untouched, and tc (ext_in.c) does it: an ICMP
 * reject, a next hop without a neighbour entry, ICMP errors, and frames
 * whose checksum may be partial. IPv6 frames take the same steps
 * (ext6_plan, an AF_INET6 FIB lookup). */
#include "lib/nodeport.h"
#include "lib/verdict.h"

/* XDP cannot see an skb's ip_summed. A frame that a local stack built
 * with TX checksum offload (a veth from a container's netns, as on kind
 * nodes) arrives CHECKSUM_PARTIAL: its L4 checksum field holds only the
 * folded pseudo-header sum, and rewriting it as a full checksum (then
 * XDP_TX) sends a bad one. Such a frame is recognized by that very value;
 * a complete checksum equals it only when the segment's own sum is zero
 * (about 1 in 65536), and then handing it to tc costs a little time,
 * never correctness: tc's helpers handle both kinds. Both families:
 * addr_sum is the sum of the 16-bit words of both addresses, len the
 * L4 length (RFC 793 / RFC 8200 8.1 pseudo-headers). */
static __always_inline int xdp_csum_maybe_partial(struct xdp_md *ctx, __u32 l4_off, __u8 proto,
						  __u32 addr_sum, __u16 len)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	__u16 *check;
	__u32 sum;

	check = data + (l4_off & 0x3ff) + (proto == IPPROTO_TCP ? offsetof(struct tcphdr, check)
								: offsetof(struct udphdr, check));
	if ((void *)(check + 1) > data_end)
		return 1;
	sum = addr_sum + bpf_htons(proto) + bpf_htons(len);
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return *check == (__u16)sum;
}

static __always_inline __u32 addr_words_sum(__be32 w)
{
	return (w & 0xffff) + (w >> 16);
}

static __always_inline int eth_is_ipv6(struct xdp_md *ctx)
{
	struct ethhdr *eth = (void *)(long)ctx->data;

	if ((void *)(eth + 1) > (void *)(long)ctx->data_end)
		return 0;
	return eth->h_proto == bpf_htons(ETH_P_IPV6);
}

/* The next hop of a FIB lookup: what sending needs of it. */
struct xdp_next_hop {
	__u8 dmac[ETH_ALEN];
	__u8 smac[ETH_ALEN];
	__u32 ifindex;
};

/* A rewritten frame out towards a next hop. */
static __always_inline int xdp_send(struct xdp_md *ctx, const __u8 *dmac, const __u8 *smac,
				    __u32 ifindex)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;

	if ((void *)(eth + 1) > data_end)
		return XDP_DROP;
	__builtin_memcpy(eth->h_dest, dmac, ETH_ALEN);
	__builtin_memcpy(eth->h_source, smac, ETH_ALEN);
	if (ifindex == ctx->ingress_ifindex)
		return XDP_TX;
	return bpf_redirect(ifindex, 0);
}

/* The AF_INET6 FIB lookup towards x->daddr, in a frame of its own (the
 * 64-byte bpf_fib_lookup does not fit beside ext6_plan's frame). Returns
 * the lookup's BPF_FIB_LKUP_RET_*, *nh filled on success. */
static __noinline int xdp_fib6(struct xdp_md *ctx, const struct xlate6 *x, __u8 proto,
			       struct xdp_next_hop *nh)
{
	struct bpf_fib_lookup fib;
	int rc;

	fib6_params(&fib, proto, &x->saddr, &x->daddr, x->sport, x->dport, ctx->ingress_ifindex);
	rc = bpf_fib_lookup(ctx, &fib, sizeof(fib), 0);
	if (rc != BPF_FIB_LKUP_RET_SUCCESS)
		return rc;
	__builtin_memcpy(nh->dmac, fib.dmac, ETH_ALEN);
	__builtin_memcpy(nh->smac, fib.smac, ETH_ALEN);
	nh->ifindex = fib.ifindex;
	return rc;
}

/* The IPv6 frame: ext6_plan, then as for IPv4. ext6_plan, ext6_commit
 * and xdp_fib6 are subprograms: inlined, the stack would not hold them. */
static __noinline int ext6_xdp(struct xdp_md *ctx, const struct ferry_config *cfg)
{
	void *data, *data_end;
	struct xdp_next_hop nh;
	struct ext6_plan e;
	struct ip6hdr *ip6;
	struct pkt6 p;
	__u32 sum = 0;
	__u64 now;
	int stat, i;

	stat = PKT6_PARSE(ctx, &p);
	if (stat != FERRY_STAT_FWD_NEW) {
		stat_inc(FERRY_HOOK_EXT_XDP, stat);
		return XDP_PASS;
	}
	now = ferry_now(cfg);
	/* the returned action, not e.action: a static function's unused
	 * return value is dropped by clang, leaving r0 undefined */
	switch (ext6_plan(&p, cfg, now, &e)) {
	case EXT_PASS:
		stat_inc(FERRY_HOOK_EXT_XDP, e.stat);
		return XDP_PASS;
	case EXT_REJECT:
		stat_inc(FERRY_HOOK_EXT_XDP, FERRY_STAT_TO_TC);
		return XDP_PASS;
	case EXT_DROP:
		stat_inc(FERRY_HOOK_EXT_XDP, e.stat);
		return XDP_DROP;
	case EXT_FORWARD:
		if (xdp_fib6(ctx, &e.x, p.proto, &nh) != BPF_FIB_LKUP_RET_SUCCESS) {
			stat_inc(FERRY_HOOK_EXT_XDP, FERRY_STAT_TO_TC);
			return XDP_PASS;
		}
		break;
	default:
		break;
	}
	data = (void *)(long)ctx->data;
	data_end = (void *)(long)ctx->data_end;
	ip6 = data + sizeof(struct ethhdr);
	if ((void *)(ip6 + 1) > data_end)
		return XDP_PASS;
#pragma unroll
	for (i = 0; i < 4; i++)
		sum += addr_words_sum(p.saddr.w[i]) + addr_words_sum(p.daddr.w[i]);
	if (xdp_csum_maybe_partial(ctx, p.l4_off, p.proto, sum,
				   bpf_ntohs(ip6->payload_len) -
					   (__u16)(p.l4_off - p.l3_off - sizeof(*ip6)))) {
		stat_inc(FERRY_HOOK_EXT_XDP, FERRY_STAT_TO_TC);
		return XDP_PASS;
	}
	stat = ext6_commit(&p, &e, now);
	if (stat) {
		stat_inc(FERRY_HOOK_EXT_XDP, stat);
		return XDP_DROP;
	}
	if (xdp_nat6_apply(ctx, &p, &e.x)) {
		stat_inc(FERRY_HOOK_EXT_XDP, FERRY_STAT_DROP_REWRITE);
		return XDP_DROP;
	}
	stat_inc(FERRY_HOOK_EXT_XDP, e.stat);
	if (e.action == EXT_LOCAL)
		return XDP_PASS;
	return xdp_send(ctx, nh.dmac, nh.smac, nh.ifindex);
}

/* An IPv4 frame (or anything else, which parse4 passes). */
static __noinline int ext4_xdp(struct xdp_md *ctx, const struct ferry_config *cfg)
{
	struct bpf_fib_lookup fib;
	struct ext4_plan e;
	struct pkt4 p;
	void *data, *data_end;
	struct iphdr *ip;
	__u64 now;
	int stat, rc;

	stat = PKT4_PARSE(ctx, &p);
	if (stat == PARSE4_ICMP)
		stat = FERRY_STAT_PASS; /* ICMP errors are translated by tc */
	if (stat != FERRY_STAT_FWD_NEW) {
		stat_inc(FERRY_HOOK_EXT_XDP, stat);
		return XDP_PASS;
	}
	now = ferry_now(cfg);
	ext4_plan(&p, cfg, now, &e);
	switch (e.action) {
	case EXT_PASS:
		stat_inc(FERRY_HOOK_EXT_XDP, e.stat);
		return XDP_PASS;
	case EXT_REJECT:
		stat_inc(FERRY_HOOK_EXT_XDP, FERRY_STAT_TO_TC);
		return XDP_PASS;
	case EXT_DROP:
		stat_inc(FERRY_HOOK_EXT_XDP, e.stat);
		return XDP_DROP;
	case EXT_FORWARD:
		fib4_params(&fib, p.proto, e.x.saddr, e.x.daddr, e.x.sport, e.x.dport,
			    ctx->ingress_ifindex);
		rc = bpf_fib_lookup(ctx, &fib, sizeof(fib), 0);
		if (rc != BPF_FIB_LKUP_RET_SUCCESS) {
			stat_inc(FERRY_HOOK_EXT_XDP, FERRY_STAT_TO_TC);
			return XDP_PASS;
		}
		break;
	default:
		break;
	}
	data = (void *)(long)ctx->data;
	data_end = (void *)(long)ctx->data_end;
	ip = data + sizeof(struct ethhdr);
	if ((void *)(ip + 1) > data_end)
		return XDP_PASS;
	if (xdp_csum_maybe_partial(ctx, p.l4_off, p.proto,
				   addr_words_sum(p.saddr) + addr_words_sum(p.daddr),
				   bpf_ntohs(ip->tot_len) - (__u16)(p.ihl * 4))) {
		stat_inc(FERRY_HOOK_EXT_XDP, FERRY_STAT_TO_TC);
		return XDP_PASS;
	}
	stat = ext4_commit(&p, &e, now);
	if (stat) {
		stat_inc(FERRY_HOOK_EXT_XDP, stat);
		return XDP_DROP;
	}
	if (xdp_nat4_apply(ctx, &p, &e.x)) {
		stat_inc(FERRY_HOOK_EXT_XDP, FERRY_STAT_DROP_REWRITE);
		return XDP_DROP;
	}
	stat_inc(FERRY_HOOK_EXT_XDP, e.stat);
	if (e.action == EXT_LOCAL)
		return XDP_PASS;
	return xdp_send(ctx, fib.dmac, fib.smac, fib.ifindex);
}

/* IPv4 in a subprogram with a stack frame of its own (both families
 * inlined would exceed the 512-byte BPF stack). */
SEC("xdp")
int ferry_ext_xdp(struct xdp_md *ctx)
{
	const struct ferry_config *cfg = config_get();

	if (eth_is_ipv6(ctx))
		return ext6_xdp(ctx, cfg);
	return ext4_xdp(ctx, cfg);
}
