// SPDX-License-Identifier: GPL-2.0
/* tc ingress on the external device: the same decisions as XDP (when XDP
 * is off or unsupported), plus what XDP left to it: ICMP rejects, next
 * hops without a neighbour entry, frames with a partial checksum, and
 * ICMP errors about flows sent on to another node (SNAT). */
#include "lib/nodeport.h"
#include "lib/reject.h"
#include "lib/reject6.h"
#include "lib/verdict.h"

/* Sends a rewritten packet on towards daddr (FIB lookup); its source
 * may be the node's own address now, so it skips the stack, which would
 * drop it as a martian. */
static __always_inline int ext_in_send(struct __sk_buff *skb, struct bpf_fib_lookup *fib, int rc)
{
	if (rc == BPF_FIB_LKUP_RET_NO_NEIGH)
		return bpf_redirect_neigh(fib->ifindex, NULL, 0, 0);
	if (bpf_skb_store_bytes(skb, 0, fib->dmac, ETH_ALEN, 0) ||
	    bpf_skb_store_bytes(skb, ETH_ALEN, fib->smac, ETH_ALEN, 0))
		return TC_ACT_SHOT;
	return bpf_redirect(fib->ifindex, 0);
}

/* An ICMP error about a flow this node source-NATed towards another
 * node's endpoint: back to the client, translated. */
static __always_inline int ext_in_icmp(struct __sk_buff *skb, struct pkt4 *p, __u64 now)
{
	struct bpf_fib_lookup fib;
	__be32 daddr = 0;
	int stat, rc;

	stat = icmp4_xlate_skb(skb, p, ICMP4_REPLY, FERRY_CT_F_EXTERNAL | FERRY_CT_F_SNAT,
			       FERRY_CT_F_EXTERNAL | FERRY_CT_F_SNAT, now, &daddr);
	if (stat != FERRY_STAT_ICMP_RELATED)
		return tc_verdict(FERRY_HOOK_EXT_TC_IN, stat);
	fib4_params(&fib, IPPROTO_ICMP, 0, daddr, 0, 0, skb->ifindex);
	rc = bpf_fib_lookup(skb, &fib, sizeof(fib), 0);
	if (rc != BPF_FIB_LKUP_RET_SUCCESS && rc != BPF_FIB_LKUP_RET_NO_NEIGH)
		return tc_verdict(FERRY_HOOK_EXT_TC_IN, FERRY_STAT_DROP_NO_ROUTE);
	stat_inc(FERRY_HOOK_EXT_TC_IN, stat);
	return ext_in_send(skb, &fib, rc);
}

/* reject6 in a frame of its own (ext6_in's locals and the ICMPv6 error
 * it builds would not fit in one 512-byte stack). */
static __noinline int ext6_reject(struct __sk_buff *skb, const struct pkt6 *p)
{
	return reject6(skb, p);
}

/* An ICMPv6 error about a flow this node source-NATed towards another
 * node's endpoint: back to the client, translated (ext_in_icmp for
 * IPv6). Called by ferry_ext_in itself when ext6_in found ICMPv6
 * (EXT6_IN_ICMP), not by ext6_in: its frame is too large to sit on top
 * of ext6_in's within the 512-byte stack, so it parses the frame again. */
static __noinline int ext6_in_icmp(struct __sk_buff *skb)
{
	union ferry_addr saddr = {}, daddr = {};
	__u64 now = ferry_now(config_get());
	struct bpf_fib_lookup fib;
	struct pkt6 p;
	int stat, rc;

	/* p is filled only for ICMPv6 (reading the rest would be undefined) */
	if (PKT6_PARSE(skb, &p) != FERRY_STAT_PASS || p.proto != IPPROTO_ICMPV6)
		return tc_verdict(FERRY_HOOK_EXT_TC_IN, FERRY_STAT_PASS);
	stat = icmp6_xlate_skb(skb, &p, ICMP4_REPLY, FERRY_CT_F_EXTERNAL | FERRY_CT_F_SNAT,
			       FERRY_CT_F_EXTERNAL | FERRY_CT_F_SNAT, now, &daddr);
	if (stat != FERRY_STAT_ICMP_RELATED)
		return tc_verdict(FERRY_HOOK_EXT_TC_IN, stat);
	fib6_params(&fib, IPPROTO_ICMPV6, &saddr, &daddr, 0, 0, skb->ifindex);
	rc = bpf_fib_lookup(skb, &fib, sizeof(fib), 0);
	if (rc != BPF_FIB_LKUP_RET_SUCCESS && rc != BPF_FIB_LKUP_RET_NO_NEIGH)
		return tc_verdict(FERRY_HOOK_EXT_TC_IN, FERRY_STAT_DROP_NO_ROUTE);
	stat_inc(FERRY_HOOK_EXT_TC_IN, stat);
	return ext_in_send(skb, &fib, rc);
}

/* frag6_ports in a frame of its own (its key would not fit next to
 * ext6_in's locals on the ext6_in_apply chain). Returns parse6's stat,
 * or FWD_NEW for a fragment whose ports are known (frag.h). */
static __noinline int ext6_frag(struct pkt6 *p, int stat)
{
	return frag6_ports(p, stat);
}

/* The second half of ext6_in, in a frame of its own (the stack has no
 * room for it next to ext6_plan's): the FIB lookup of a forwarded flow,
 * the conntrack entries, the rewrite, and the verdict. */
static __noinline int ext6_in_apply(struct __sk_buff *skb, const struct pkt6 *p,
				    struct ext6_plan *e, __u64 now)
{
	struct bpf_fib_lookup fib;
	int stat, rc = 0;

	if (e->action == EXT_FORWARD) {
		fib6_params(&fib, p->proto, &e->x.saddr, &e->x.daddr, e->x.sport, e->x.dport,
			    skb->ifindex);
		rc = bpf_fib_lookup(skb, &fib, sizeof(fib), 0);
		if (rc != BPF_FIB_LKUP_RET_SUCCESS && rc != BPF_FIB_LKUP_RET_NO_NEIGH)
			return tc_verdict(FERRY_HOOK_EXT_TC_IN, FERRY_STAT_DROP_NO_ROUTE);
	}
	stat = ext6_commit(p, e, now);
	if (stat)
		return tc_verdict(FERRY_HOOK_EXT_TC_IN, stat);
	if (nat6_apply(skb, p, &e->x))
		return tc_verdict(FERRY_HOOK_EXT_TC_IN, FERRY_STAT_DROP_REWRITE);
	stat_inc(FERRY_HOOK_EXT_TC_IN, e->stat);
	if (e->action == EXT_LOCAL)
		return TC_ACT_OK;
	return ext_in_send(skb, &fib, rc);
}

/* ext6_in's answer for an ICMPv6 packet: ext6_in_icmp's to handle. No
 * tc verdict has this value. */
#define EXT6_IN_ICMP (-100)

/* An IPv6 frame: ext6_plan, then as for IPv4 (ICMPv6 errors about
 * SNATed flows go back to the client translated: EXT6_IN_ICMP). */
static __noinline int ext6_in(struct __sk_buff *skb)
{
	const struct ferry_config *cfg = config_get();
	struct ext6_plan e;
	struct pkt6 p;
	__u64 now;
	int stat;

	stat = ext6_frag(&p, PKT6_PARSE(skb, &p));
	if (stat == FERRY_STAT_PASS && p.proto == IPPROTO_ICMPV6)
		return EXT6_IN_ICMP;
	if (stat != FERRY_STAT_FWD_NEW)
		return tc_verdict(FERRY_HOOK_EXT_TC_IN, stat);
	now = ferry_now(cfg);
	/* the returned action, not e.action: a static function's unused
	 * return value is dropped by clang, leaving r0 undefined */
	switch (ext6_plan(&p, cfg, now, &e)) {
	case EXT_PASS:
	case EXT_DROP:
		return tc_verdict(FERRY_HOOK_EXT_TC_IN, e.stat);
	case EXT_REJECT:
		return tc_verdict(FERRY_HOOK_EXT_TC_IN, ext6_reject(skb, &p));
	default:
		return ext6_in_apply(skb, &p, &e, now);
	}
}

/* An IPv4 frame (or anything else, which parse4 passes). */
static __noinline int ext4_in(struct __sk_buff *skb)
{
	const struct ferry_config *cfg = config_get();
	struct bpf_fib_lookup fib;
	struct ext4_plan e;
	struct pkt4 p;
	__u64 now;
	int stat, rc = 0;

	stat = frag4_ports(&p, PKT4_PARSE(skb, &p));
	now = ferry_now(cfg);
	if (stat == PARSE4_ICMP)
		return ext_in_icmp(skb, &p, now);
	if (stat != FERRY_STAT_FWD_NEW)
		return tc_verdict(FERRY_HOOK_EXT_TC_IN, stat);
	ext4_plan(&p, cfg, now, &e);
	switch (e.action) {
	case EXT_PASS:
		return tc_verdict(FERRY_HOOK_EXT_TC_IN, e.stat);
	case EXT_REJECT:
		return tc_verdict(FERRY_HOOK_EXT_TC_IN, reject4(skb, &p));
	case EXT_DROP:
		return tc_verdict(FERRY_HOOK_EXT_TC_IN, e.stat);
	case EXT_FORWARD:
		fib4_params(&fib, p.proto, e.x.saddr, e.x.daddr, e.x.sport, e.x.dport,
			    skb->ifindex);
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
	return ext_in_send(skb, &fib, rc);
}

/* Each family in its own subprogram: each has a stack frame of its own
 * (both inlined would exceed the 512-byte BPF stack). The entry itself
 * keeps no stack (config_get's key lives in the callees' frames): the
 * IPv6 chain ext6_in -> ext6_in_apply -> ext6_commit needs all of it. */
SEC("tc")
int ferry_ext_in(struct __sk_buff *skb)
{
	int verdict;

	if (skb->protocol == bpf_htons(ETH_P_IPV6)) {
		verdict = ext6_in(skb);
		return verdict == EXT6_IN_ICMP ? ext6_in_icmp(skb) : verdict;
	}
	return ext4_in(skb);
}
