// SPDX-License-Identifier: GPL-2.0
/* ferry's dataplane programs. Entry programs only dispatch: parse, call
 * the path, turn the outcome (an enum ferry_stat) into a verdict and a
 * counter. */
#include "lib/common.h"
#include "lib/maps.h"
#include "lib/parse.h"
#include "lib/svc_tc.h"
#include "lib/sock.h"

static __always_inline int tc_verdict(int stat)
{
	stat_inc(stat);
	switch (stat) {
	case FERRY_STAT_HAIRPIN:
	case FERRY_STAT_REJECT_NO_BACKEND:
		return TC_ACT_REDIRECT;
	case FERRY_STAT_DROP_NO_BACKEND:
	case FERRY_STAT_DROP_CT_FULL:
	case FERRY_STAT_DROP_REWRITE:
		return TC_ACT_SHOT;
	default:
		return TC_ACT_OK;
	}
}

/* tc ingress on the host side of a pod's veth: packets from the pod. */
SEC("tc")
int ferry_from_pod(struct __sk_buff *skb)
{
	const struct ferry_config *cfg = config_get();
	struct pkt4 p;
	int stat;

	stat = parse4(skb, &p);
	if (stat != FERRY_STAT_FWD_NEW)
		return tc_verdict(stat);
	/* A hairpin reply is addressed to the node; catch it before the
	 * kernel delivers it locally. */
	if (p.daddr && p.daddr == hairpin_snat4(cfg)) {
		stat = lb4_reverse(skb, &p, cfg, 1);
		if (stat != FERRY_STAT_PASS)
			return tc_verdict(stat);
	}
	return tc_verdict(lb4_forward(skb, &p, cfg));
}

/* tc egress on the host side of a pod's veth: packets to the pod, where
 * replies of every backend (local, remote, host network) pass. */
SEC("tc")
int ferry_to_pod(struct __sk_buff *skb)
{
	const struct ferry_config *cfg = config_get();
	struct pkt4 p;
	int stat;

	stat = parse4(skb, &p);
	if (stat != FERRY_STAT_FWD_NEW)
		return tc_verdict(stat);
	return tc_verdict(lb4_reverse(skb, &p, cfg, 0));
}

char LICENSE[] SEC("license") = "GPL";
