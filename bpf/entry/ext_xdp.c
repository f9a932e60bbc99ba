// SPDX-License-Identifier: GPL-2.0
/* XDP on the external device: NodePort and externalIP traffic, decided
 * by ext4_plan (lib/nodeport.h) and rewritten in place. What XDP cannot
 * finish it passes on untouched, and tc (ext_in.c) does it: an ICMP
 * reject, a next hop without a neighbour entry, ICMP errors, and frames
 * whose checksum may be partial. */
#include "lib/nodeport.h"
#include "lib/verdict.h"

/* XDP cannot see an skb's ip_summed. A frame that a local stack built
 * with TX checksum offload (a veth from a container's netns, as on kind
 * nodes) arrives CHECKSUM_PARTIAL: its L4 checksum field holds only the
 * folded pseudo-header sum, and rewriting it as a full checksum (then
 * XDP_TX) sends a bad one. Such a frame is recognized by that very value;
 * a complete checksum equals it only when the segment's own sum is zero
 * (about 1 in 65536), and then handing it to tc costs a little time,
 * never correctness: tc's helpers handle both kinds. */
static __always_inline int xdp_csum_maybe_partial(struct xdp_md *ctx, const struct pkt4 *p)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct iphdr *ip = data + sizeof(struct ethhdr);
	__u32 l4_off = p->l4_off & 0x7f;
	__u16 *check, len;
	__u32 sum;

	if ((void *)(ip + 1) > data_end)
		return 1;
	check = data + l4_off + (p->proto == IPPROTO_TCP ? offsetof(struct tcphdr, check)
							 : offsetof(struct udphdr, check));
	if ((void *)(check + 1) > data_end)
		return 1;
	len = bpf_ntohs(ip->tot_len) - (__u16)(p->ihl * 4);
	sum = (p->saddr & 0xffff) + (p->saddr >> 16) + (p->daddr & 0xffff) + (p->daddr >> 16) +
	      bpf_htons(p->proto) + bpf_htons(len);
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return *check == (__u16)sum;
}

SEC("xdp")
int ferry_ext_xdp(struct xdp_md *ctx)
{
	const struct ferry_config *cfg = config_get();
	struct bpf_fib_lookup fib;
	struct ext4_plan e;
	struct pkt4 p;
	void *data, *data_end;
	struct ethhdr *eth;
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
	if (xdp_csum_maybe_partial(ctx, &p)) {
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
	data = (void *)(long)ctx->data;
	data_end = (void *)(long)ctx->data_end;
	eth = data;
	if ((void *)(eth + 1) > data_end)
		return XDP_DROP;
	__builtin_memcpy(eth->h_dest, fib.dmac, ETH_ALEN);
	__builtin_memcpy(eth->h_source, fib.smac, ETH_ALEN);
	if (fib.ifindex == ctx->ingress_ifindex)
		return XDP_TX;
	return bpf_redirect(fib.ifindex, 0);
}
