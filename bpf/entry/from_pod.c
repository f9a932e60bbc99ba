// SPDX-License-Identifier: GPL-2.0
/* tc ingress on the host side of a pod's veth: packets from the pod. */
#include "lib/frag.h"
#include "lib/svc_tc.h"
#include "lib/svc6_tc.h"
#include "lib/verdict.h"

SEC("tc")
int ferry_from_pod(struct __sk_buff *skb)
{
	const struct ferry_config *cfg = config_get();
	struct pkt4 p;
	__be32 daddr;
	int stat;

	if (skb->protocol == bpf_htons(ETH_P_IPV6))
		return tc_verdict(FERRY_HOOK_FROM_POD, pod6_from(skb, cfg));
	stat = frag4_ports(&p, PKT4_PARSE(skb, &p));
	if (stat == PARSE4_ICMP)
		/* the pod's own errors: about a flow it served (a backend's
		 * port unreachable), or about a reply it got (a client's) */
		return tc_verdict(FERRY_HOOK_FROM_POD,
				  icmp4_xlate_skb(skb, &p, ICMP4_REPLY | ICMP4_ORIG, 0, 0,
						  ferry_now(cfg), &daddr));
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
