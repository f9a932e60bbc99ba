// SPDX-License-Identifier: GPL-2.0
/* ferry's dataplane programs. Entry programs only dispatch: parse, call
 * the path, turn the outcome (an enum ferry_stat) into a verdict and a
 * counter. */
#include "lib/common.h"
#include "lib/maps.h"
#include "lib/nodeport.h"
#include "lib/parse.h"
#include "lib/sock.h"
#include "lib/svc_tc.h"
#include "lib/xdp_nat.h"

#ifndef AF_INET
#define AF_INET 2
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

/* tc ingress on the host side of a pod's veth: packets from the pod. */
SEC("tc")
int ferry_from_pod(struct __sk_buff *skb)
{
	const struct ferry_config *cfg = config_get();
	struct pkt4 p;
	int stat;

	stat = PKT4_PARSE(skb, &p);
	if (stat != FERRY_STAT_FWD_NEW)
		return tc_verdict(FERRY_HOOK_FROM_POD, stat);
	/* A hairpin reply is addressed to the node; catch it before the
	 * kernel delivers it locally. */
	if (p.daddr && p.daddr == snat4_addr(cfg)) {
		stat = lb4_reverse(skb, &p, cfg, 1);
		if (stat != FERRY_STAT_PASS)
			return tc_verdict(FERRY_HOOK_FROM_POD, stat);
	}
	return tc_verdict(FERRY_HOOK_FROM_POD, lb4_forward(skb, &p, cfg));
}

/* tc egress on the host side of a pod's veth: packets to the pod, where
 * replies of every backend (local, remote, host network) pass. */
SEC("tc")
int ferry_to_pod(struct __sk_buff *skb)
{
	const struct ferry_config *cfg = config_get();
	struct pkt4 p;
	int stat;

	stat = PKT4_PARSE(skb, &p);
	if (stat != FERRY_STAT_FWD_NEW)
		return tc_verdict(FERRY_HOOK_TO_POD, stat);
	return tc_verdict(FERRY_HOOK_TO_POD, lb4_reverse(skb, &p, cfg, 0));
}

static __always_inline void fib4_params(struct bpf_fib_lookup *fib, const struct pkt4 *p,
					const struct xlate4 *x, __u32 ifindex)
{
	__builtin_memset(fib, 0, sizeof(*fib));
	fib->family = AF_INET;
	fib->l4_protocol = p->proto;
	fib->sport = x->sport;
	fib->dport = x->dport;
	fib->ipv4_src = x->saddr;
	fib->ipv4_dst = x->daddr;
	fib->ifindex = ifindex;
}

/* XDP on the external device: NodePort and externalIP traffic. What XDP
 * cannot finish (an ICMP reject, a next hop without a neighbour entry)
 * it passes on untouched, and the tc program below does it. */
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
	if (stat != FERRY_STAT_FWD_NEW) {
		stat_inc(FERRY_HOOK_EXT_XDP, stat);
		return XDP_PASS;
	}
	now = ferry_now(cfg);
	ext4_plan(&p, cfg, now, &e);
	switch (e.action) {
	case EXT_PASS:
		stat_inc(FERRY_HOOK_EXT_XDP, FERRY_STAT_PASS);
		return XDP_PASS;
	case EXT_REJECT:
		stat_inc(FERRY_HOOK_EXT_XDP, FERRY_STAT_TO_TC);
		return XDP_PASS;
	case EXT_DROP:
		stat_inc(FERRY_HOOK_EXT_XDP, e.stat);
		return XDP_DROP;
	case EXT_FORWARD:
		fib4_params(&fib, &p, &e.x, ctx->ingress_ifindex);
		rc = bpf_fib_lookup(ctx, &fib, sizeof(fib), 0);
		if (rc != BPF_FIB_LKUP_RET_SUCCESS) {
			stat_inc(FERRY_HOOK_EXT_XDP, FERRY_STAT_TO_TC);
			return XDP_PASS;
		}
		break;
	default:
		break;
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

/* tc ingress on the external device: the same decisions as XDP (when XDP
 * is off or unsupported), plus what XDP left to it. */
SEC("tc")
int ferry_ext_in(struct __sk_buff *skb)
{
	const struct ferry_config *cfg = config_get();
	struct bpf_fib_lookup fib;
	struct ext4_plan e;
	struct pkt4 p;
	__u64 now;
	int stat, rc = 0;

	stat = PKT4_PARSE(skb, &p);
	if (stat != FERRY_STAT_FWD_NEW)
		return tc_verdict(FERRY_HOOK_EXT_TC_IN, stat);
	now = ferry_now(cfg);
	ext4_plan(&p, cfg, now, &e);
	switch (e.action) {
	case EXT_PASS:
		return tc_verdict(FERRY_HOOK_EXT_TC_IN, FERRY_STAT_PASS);
	case EXT_REJECT:
		return tc_verdict(FERRY_HOOK_EXT_TC_IN, reject4(skb, &p));
	case EXT_DROP:
		return tc_verdict(FERRY_HOOK_EXT_TC_IN, e.stat);
	case EXT_FORWARD:
		fib4_params(&fib, &p, &e.x, skb->ifindex);
		rc = bpf_fib_lookup(skb, &fib, sizeof(fib), 0);
		if (rc != BPF_FIB_LKUP_RET_SUCCESS && rc != BPF_FIB_LKUP_RET_NO_NEIGH)
			return tc_verdict(FERRY_HOOK_EXT_TC_IN, FERRY_STAT_DROP_NO_ROUTE);
		break;
	default:
		break;
	}
	stat = ext4_commit(&p, &e, now);
	if (stat)
		return tc_verdict(FERRY_HOOK_EXT_TC_IN, stat);
	if (nat4_apply(skb, &p, &e.x))
		return tc_verdict(FERRY_HOOK_EXT_TC_IN, FERRY_STAT_DROP_REWRITE);
	stat_inc(FERRY_HOOK_EXT_TC_IN, e.stat);
	if (e.action == EXT_LOCAL)
		return TC_ACT_OK;
	/* Its source may be the node's own address now: the stack would
	 * drop it as a martian, so it goes straight out. */
	if (rc == BPF_FIB_LKUP_RET_NO_NEIGH)
		return bpf_redirect_neigh(fib.ifindex, NULL, 0, 0);
	if (bpf_skb_store_bytes(skb, 0, fib.dmac, ETH_ALEN, 0) ||
	    bpf_skb_store_bytes(skb, ETH_ALEN, fib.smac, ETH_ALEN, 0))
		return TC_ACT_SHOT;
	return bpf_redirect(fib.ifindex, 0);
}

/* tc egress on the external device: replies of external flows served by
 * this node's endpoints get their frontend address back. */
SEC("tc")
int ferry_ext_out(struct __sk_buff *skb)
{
	const struct ferry_config *cfg = config_get();
	struct ferry_ct_value *ct;
	struct xlate4 x;
	struct pkt4 p;
	__u64 now;
	int stat;

	stat = PKT4_PARSE(skb, &p);
	if (stat != FERRY_STAT_FWD_NEW)
		return tc_verdict(FERRY_HOOK_EXT_TC_OUT, stat);
	now = ferry_now(cfg);
	ct = ct4_lookup_rev(&p, now);
	if (!ct || !(ct->flags & FERRY_CT_F_EXTERNAL) || (ct->flags & FERRY_CT_F_SNAT))
		return tc_verdict(FERRY_HOOK_EXT_TC_OUT, FERRY_STAT_PASS);
	ct_refresh(ct, p.proto, p.tcp_flags, now);
	xlate4_reply(&x, &p, ct);
	if (nat4_apply(skb, &p, &x))
		return tc_verdict(FERRY_HOOK_EXT_TC_OUT, FERRY_STAT_DROP_REWRITE);
	return tc_verdict(FERRY_HOOK_EXT_TC_OUT, FERRY_STAT_REVNAT);
}

char LICENSE[] SEC("license") = "GPL";
