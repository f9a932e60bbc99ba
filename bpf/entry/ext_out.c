// SPDX-License-Identifier: GPL-2.0
/* tc egress on the external device: replies of external flows served by
 * this node's endpoints get their frontend address back, and so do ICMP
 * errors about them (the node's own "fragmentation needed" towards the
 * client, an endpoint's port unreachable). */
#include "lib/nodeport.h"
#include "lib/verdict.h"

SEC("tc")
int ferry_ext_out(struct __sk_buff *skb)
{
	const struct ferry_config *cfg = config_get();
	struct ferry_ct_value *ct;
	struct xlate4 x;
	struct pkt4 p;
	__be32 daddr;
	__u64 now;
	int stat;

	now = ferry_now(cfg);
	if (skb->protocol == bpf_htons(ETH_P_IPV6))
		return tc_verdict(FERRY_HOOK_EXT_TC_OUT, ext6_out(skb, now));
	stat = frag4_ports(&p, PKT4_PARSE(skb, &p));
	if (stat == PARSE4_ICMP)
		return tc_verdict(FERRY_HOOK_EXT_TC_OUT,
				  icmp4_xlate_skb(skb, &p, ICMP4_REPLY, FERRY_CT_F_EXTERNAL,
						  FERRY_CT_F_EXTERNAL | FERRY_CT_F_SNAT, now,
						  &daddr));
	if (stat != FERRY_STAT_FWD_NEW)
		return tc_verdict(FERRY_HOOK_EXT_TC_OUT, stat);
	ct = ct4_lookup_rev(&p, now);
	if (!ct || !(ct->flags & FERRY_CT_F_EXTERNAL) || (ct->flags & FERRY_CT_F_SNAT))
		return tc_verdict(FERRY_HOOK_EXT_TC_OUT, FERRY_STAT_PASS);
	ct4_use_rev(&p, ct, now);
	xlate4_reply(&x, ct);
	if (nat4_apply(skb, &p, &x))
		return tc_verdict(FERRY_HOOK_EXT_TC_OUT, FERRY_STAT_DROP_REWRITE);
	return tc_verdict(FERRY_HOOK_EXT_TC_OUT, FERRY_STAT_REVNAT);
}
