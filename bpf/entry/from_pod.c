// SPDX-License-Identifier: GPL-2.0
/* tc ingress on the host side of a pod's veth: packets from the pod. */
#include "lib/frag.h"
#include "lib/svc_tc.h"
#include "lib/svc6_tc.h"
#include "lib/verdict.h"

/* An IPv4 frame (or anything else, which parse4 passes). */
static __noinline int from_pod4(struct __sk_buff *skb)
{
	const struct ferry_config *cfg = config_get();
	struct pkt4 p;
	__be32 daddr;
	int stat;

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

/* An IPv6 frame; POD6_ICMP for ICMPv6, POD6_DIRECT for no frontend. */
static __noinline int from_pod6(struct __sk_buff *skb)
{
	return pod6_from(skb, config_get());
}

/* An IPv6 frame for no frontend. */
static __noinline int from_pod6_direct(struct __sk_buff *skb)
{
	return pod6_direct(skb, config_get());
}

/* An ICMPv6 frame. */
static __noinline int from_pod6_icmp(struct __sk_buff *skb)
{
	return pod6_icmp(skb, config_get(), ICMP4_REPLY | ICMP4_ORIG);
}

/* Each family, and IPv6's ICMPv6 errors, in a subprogram of its own, so
 * that each has the 512-byte stack to itself (in one frame they came
 * within a few bytes of it). */
SEC("tc")
int ferry_from_pod(struct __sk_buff *skb)
{
	int stat;

	if (skb->protocol != bpf_htons(ETH_P_IPV6))
		return from_pod4(skb);
	stat = from_pod6(skb);
	if (stat == POD6_ICMP)
		stat = from_pod6_icmp(skb);
	else if (stat == POD6_DIRECT)
		stat = from_pod6_direct(skb);
	return tc_verdict(FERRY_HOOK_FROM_POD, stat);
}
