// SPDX-License-Identifier: GPL-2.0
/* tc egress on the host side of a pod's veth: packets to the pod, where
 * replies of every backend (local, remote, host network) pass, and ICMP
 * errors about the pod's translated flows (PMTU, port unreachable). */
#include "lib/frag.h"
#include "lib/svc_tc.h"
#include "lib/svc6_tc.h"
#include "lib/verdict.h"

/* An IPv4 frame (or anything else, which parse4 passes). */
static __noinline int to_pod4(struct __sk_buff *skb)
{
	const struct ferry_config *cfg = config_get();
	struct pkt4 p;
	__be32 daddr;
	int stat;

	stat = frag4_ports(&p, PKT4_PARSE(skb, &p));
	if (stat == PARSE4_ICMP)
		return tc_verdict(FERRY_HOOK_TO_POD, icmp4_xlate_skb(skb, &p, ICMP4_REPLY, 0, 0,
								     ferry_now(cfg), &daddr));
	if (stat != FERRY_STAT_FWD_NEW)
		return tc_verdict(FERRY_HOOK_TO_POD, stat);
	return tc_verdict(FERRY_HOOK_TO_POD, lb4_reverse(skb, &p, cfg, 0));
}

/* An IPv6 frame; POD6_ICMP for ICMPv6. */
static __noinline int to_pod6(struct __sk_buff *skb)
{
	return pod6_to(skb, config_get());
}

/* An ICMPv6 frame. */
static __noinline int to_pod6_icmp(struct __sk_buff *skb)
{
	return pod6_icmp(skb, config_get(), ICMP4_REPLY);
}

/* Each family, and IPv6's ICMPv6 errors, in a subprogram of its own
 * (ferry_from_pod). */
SEC("tc")
int ferry_to_pod(struct __sk_buff *skb)
{
	int stat;

	if (skb->protocol != bpf_htons(ETH_P_IPV6))
		return to_pod4(skb);
	stat = to_pod6(skb);
	if (stat == POD6_ICMP)
		stat = to_pod6_icmp(skb);
	return tc_verdict(FERRY_HOOK_TO_POD, stat);
}
