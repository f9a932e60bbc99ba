/* SPDX-License-Identifier: GPL-2.0 */
/* Applying an IPv6 NAT decision (struct xlate6) to a tc packet. IPv6 has
 * no header checksum; an address change reaches the TCP/UDP checksum
 * through the pseudo-header (RFC 8200 8.1), given to the kernel's helper
 * as a checksum difference, as nat4_apply gives it the old and new
 * values (the helper also handles CHECKSUM_PARTIAL skbs). */
#ifndef FERRY_BPF_NAT6_H
#define FERRY_BPF_NAT6_H

#include "lib/common.h"
#include "lib/conntrack6.h"
#include "lib/nat.h"
#include "lib/parse.h"

static __always_inline __u32 l4_csum_off6(const struct pkt6 *p)
{
	return p->l4_off + (p->proto == IPPROTO_TCP ? offsetof(struct tcphdr, check)
						    : offsetof(struct udphdr, check));
}

/* One address of the IPv6 header (off from the frame start). */
static __always_inline int nat6_addr(struct __sk_buff *skb, __u32 off, __u32 csum_off,
				     __u64 l4flags, const union ferry_addr *old,
				     const union ferry_addr *new)
{
	union ferry_addr o = *old, n = *new;
	__s64 diff;

	if (addr_eq(&o, &n))
		return 0;
	if (csum_off) { /* 0: a later fragment, no L4 header (frag.h) */
		diff = bpf_csum_diff(o.w, sizeof(o), n.w, sizeof(n), 0);
		if (diff < 0)
			return -1;
		if (bpf_l4_csum_replace(skb, csum_off, 0, diff, l4flags | BPF_F_PSEUDO_HDR))
			return -1;
	}
	return bpf_skb_store_bytes(skb, off, &n, sizeof(n), 0);
}

/* One port of the TCP/UDP header. */
static __always_inline int nat6_port(struct __sk_buff *skb, __u32 off, __u32 csum_off,
				     __u64 l4flags, __be16 old, __be16 new)
{
	if (old == new)
		return 0;
	if (bpf_l4_csum_replace(skb, csum_off, old, new, l4flags | 2))
		return -1;
	return bpf_skb_store_bytes(skb, off, &new, sizeof(new), 0);
}

/* tc: rewrites the whole tuple; unchanged fields cost nothing. A
 * computed UDP checksum of 0 is sent as 0xffff (BPF_F_MARK_MANGLED_0);
 * parse6 already refused a zero one. A later fragment (frag.h) has no
 * L4 header: only its addresses change. */
static __always_inline int nat6_apply(struct __sk_buff *skb, const struct pkt6 *p,
				      const struct xlate6 *x)
{
	__u64 l4flags = p->proto == IPPROTO_UDP ? BPF_F_MARK_MANGLED_0 : 0;
	__u32 csum_off = l4_csum_off6(p);

	if (p->frag == PKT_FRAG_LATER)
		return nat6_addr(skb, p->l3_off + offsetof(struct ip6hdr, saddr), 0, 0, &p->saddr,
				 &x->saddr) ||
		       nat6_addr(skb, p->l3_off + offsetof(struct ip6hdr, daddr), 0, 0, &p->daddr,
				 &x->daddr);

	if (nat6_addr(skb, p->l3_off + offsetof(struct ip6hdr, saddr), csum_off, l4flags,
		      &p->saddr, &x->saddr) ||
	    nat6_addr(skb, p->l3_off + offsetof(struct ip6hdr, daddr), csum_off, l4flags,
		      &p->daddr, &x->daddr) ||
	    nat6_port(skb, p->l4_off, csum_off, l4flags, p->sport, x->sport) ||
	    nat6_port(skb, p->l4_off + 2, csum_off, l4flags, p->dport, x->dport))
		return -1;
	return 0;
}

/* XDP: the same rewrite written in place, the L4 checksum updated word
 * by word (RFC 1624) as xdp_nat4_apply does; ext_xdp.c leaves frames
 * whose checksum looks partial to tc. l4_off is at most IPV6_HDRS_MAX. */
static __always_inline int xdp_nat6_apply(struct xdp_md *ctx, const struct pkt6 *p,
					  const struct xlate6 *x)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ip6hdr *ip = data + sizeof(struct ethhdr);
	__u8 *l4 = data + (p->l4_off & 0x3ff);
	__u16 *l4sum;
	int i;

	if ((void *)(ip + 1) > data_end)
		return -1;
	if (p->proto == IPPROTO_TCP) {
		if ((void *)(l4 + sizeof(struct tcphdr)) > data_end)
			return -1;
		l4sum = (__u16 *)(l4 + offsetof(struct tcphdr, check));
	} else {
		if ((void *)(l4 + sizeof(struct udphdr)) > data_end)
			return -1;
		l4sum = (__u16 *)(l4 + offsetof(struct udphdr, check));
	}
#pragma unroll
	for (i = 0; i < 4; i++) {
		if (p->saddr.w[i] != x->saddr.w[i])
			csum32_replace(l4sum, p->saddr.w[i], x->saddr.w[i]);
		if (p->daddr.w[i] != x->daddr.w[i])
			csum32_replace(l4sum, p->daddr.w[i], x->daddr.w[i]);
	}
	if (p->sport != x->sport)
		csum16_replace(l4sum, p->sport, x->sport);
	if (p->dport != x->dport)
		csum16_replace(l4sum, p->dport, x->dport);
	ip->saddr = x->saddr;
	ip->daddr = x->daddr;
	*(__be16 *)l4 = x->sport;
	*(__be16 *)(l4 + 2) = x->dport;
	if (p->proto == IPPROTO_UDP && *l4sum == 0)
		*l4sum = 0xffff;
	return 0;
}

#endif
