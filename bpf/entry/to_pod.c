// SPDX-License-Identifier: GPL-2.0
/* tc egress on the host side of a pod's veth: packets to the pod, where
 * replies of every backend (local, remote, host network) pass, and ICMP
 * errors about the pod's translated flows (PMTU, port unreachable). */
#include "lib/frag.h"
#include "lib/svc_tc.h"
#include "lib/svc6_tc.h"
#include "lib/verdict.h"

SEC("tc")
int ferry_to_pod(struct __sk_buff *skb)
{
	const struct ferry_config *cfg = config_get();
	struct pkt4 p;
	__be32 daddr;
	int stat;

	if (skb->protocol == bpf_htons(ETH_P_IPV6))
		return tc_verdict(FERRY_HOOK_TO_POD, pod6_to(skb, cfg));
	stat = frag4_ports(&p, PKT4_PARSE(skb, &p));
	if (stat == PARSE4_ICMP)
		return tc_verdict(FERRY_HOOK_TO_POD, icmp4_xlate_skb(skb, &p, ICMP4_REPLY, 0, 0,
								     ferry_now(cfg), &daddr));
	if (stat != FERRY_STAT_FWD_NEW)
		return tc_verdict(FERRY_HOOK_TO_POD, stat);
	return tc_verdict(FERRY_HOOK_TO_POD, lb4_reverse(skb, &p, cfg, 0));
}
