/* SPDX-License-Identifier: GPL-2.0 */
/* Address and port rewriting with incremental checksum updates. The
 * kernel helpers handle CHECKSUM_PARTIAL packets (locally generated, as
 * from a pod's stack) as well as fully checksummed ones. */
#ifndef FERRY_BPF_NAT_H
#define FERRY_BPF_NAT_H

#include "lib/common.h"
#include "lib/parse.h"
#include "lib/conntrack.h"

static __always_inline __u32 l4_csum_off(const struct pkt4 *p)
{
	return p->l4_off + (p->proto == IPPROTO_TCP ? offsetof(struct tcphdr, check)
						    : offsetof(struct udphdr, check));
}

static __always_inline __u64 l4_csum_flags(const struct pkt4 *p)
{
	/* A UDP checksum of 0 means "none": keep it so, and never produce
	 * a computed 0 (it becomes 0xffff). */
	return p->proto == IPPROTO_UDP ? BPF_F_MARK_MANGLED_0 : 0;
}

/* Rewrite the source (is_src) or destination address and port. */
static __always_inline int nat4_rewrite(struct __sk_buff *skb, const struct pkt4 *p, int is_src,
					__be32 old_addr, __be32 new_addr, __be16 old_port,
					__be16 new_port)
{
	__u32 addr_off = p->l3_off + (is_src ? offsetof(struct iphdr, saddr)
					     : offsetof(struct iphdr, daddr));
	/* source/dest ports sit at the same offsets in TCP and UDP */
	__u32 port_off = p->l4_off + (is_src ? 0 : 2);
	__u32 csum_off = l4_csum_off(p);
	__u64 flags = l4_csum_flags(p);

	if (old_addr != new_addr) {
		if (bpf_l4_csum_replace(skb, csum_off, old_addr, new_addr,
					flags | BPF_F_PSEUDO_HDR | sizeof(new_addr)))
			return -1;
		if (bpf_l3_csum_replace(skb, p->l3_off + offsetof(struct iphdr, check), old_addr,
					new_addr, sizeof(new_addr)))
			return -1;
		if (bpf_skb_store_bytes(skb, addr_off, &new_addr, sizeof(new_addr), 0))
			return -1;
	}
	if (old_port != new_port) {
		if (bpf_l4_csum_replace(skb, csum_off, old_port, new_port, flags | sizeof(new_port)))
			return -1;
		if (bpf_skb_store_bytes(skb, port_off, &new_port, sizeof(new_port), 0))
			return -1;
	}
	return 0;
}

/* Rewrites the whole tuple; unchanged fields cost nothing. */
static __always_inline int nat4_apply(struct __sk_buff *skb, const struct pkt4 *p,
				      const struct xlate4 *x)
{
	if (nat4_rewrite(skb, p, 1, p->saddr, x->saddr, p->sport, x->sport))
		return -1;
	return nat4_rewrite(skb, p, 0, p->daddr, x->daddr, p->dport, x->dport);
}

/* Swap Ethernet addresses so the frame can go back out of the device it
 * came in on (hairpin, reject). */
static __always_inline int eth_swap(struct __sk_buff *skb)
{
	__u8 macs[2 * ETH_ALEN];
	__u8 swapped[2 * ETH_ALEN];

	if (bpf_skb_load_bytes(skb, 0, macs, sizeof(macs)))
		return -1;
	__builtin_memcpy(swapped, macs + ETH_ALEN, ETH_ALEN);
	__builtin_memcpy(swapped + ETH_ALEN, macs, ETH_ALEN);
	return bpf_skb_store_bytes(skb, 0, swapped, sizeof(swapped), 0);
}

#endif
