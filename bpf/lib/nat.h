/* SPDX-License-Identifier: GPL-2.0 */
/* Applying a NAT decision (struct xlate4) to a packet. The rewrite is
 * described once, as a table of fields (nat4_field: where each of the
 * four tuple fields sits and whether it is in the pseudo-header), and
 * executed by one applier per packet-access model:
 *   - tc (nat4_apply): the kernel's checksum helpers, which also handle
 *     CHECKSUM_PARTIAL skbs (locally built packets: only the
 *     pseudo-header part is updated then);
 *   - XDP (xdp_nat4_apply): direct writes with RFC 1624 incremental
 *     updates. XDP cannot see ip_summed; ext_xdp.c leaves frames whose
 *     L4 checksum looks partial to tc (see xdp_csum_maybe_partial).
 */
#ifndef FERRY_BPF_NAT_H
#define FERRY_BPF_NAT_H

#include "lib/common.h"
#include "lib/parse.h"
#include "lib/conntrack.h"

/* RFC 1624 incremental checksum arithmetic on a 16-bit field. */
static __always_inline __u16 csum16_add(__u16 csum, __u16 addend)
{
	__u32 r = (__u32)csum + addend;

	return (__u16)(r + (r >> 16));
}

static __always_inline void csum16_replace(__u16 *sum, __u16 old, __u16 new)
{
	*sum = ~csum16_add(csum16_add((__u16)~*sum, (__u16)~old), new);
}

static __always_inline void csum32_replace(__u16 *sum, __u32 old, __u32 new)
{
	csum16_replace(sum, (__u16)old, (__u16)new);
	csum16_replace(sum, (__u16)(old >> 16), (__u16)(new >> 16));
}

enum nat4_field_id { NAT4_SADDR = 0, NAT4_DADDR, NAT4_SPORT, NAT4_DPORT, NAT4_FIELDS };

/* One field of the rewrite. */
struct nat4_field {
	__u32 off;   /* from the start of the frame */
	__u32 old;   /* network order, in the low bytes for ports */
	__u32 new;
	__u8 size;   /* 4: address (in the IP header and the pseudo-header), 2: port */
	__u8 change; /* old != new */
};

/* The one description of a rewrite: field i of packet p under x. */
static __always_inline void nat4_field(const struct pkt4 *p, const struct xlate4 *x, int i,
				       struct nat4_field *f)
{
	switch (i) {
	case NAT4_SADDR:
		f->off = p->l3_off + offsetof(struct iphdr, saddr);
		f->old = p->saddr;
		f->new = x->saddr;
		f->size = 4;
		break;
	case NAT4_DADDR:
		f->off = p->l3_off + offsetof(struct iphdr, daddr);
		f->old = p->daddr;
		f->new = x->daddr;
		f->size = 4;
		break;
	case NAT4_SPORT: /* ports sit at the same offsets in TCP and UDP */
		f->off = p->l4_off;
		f->old = p->sport;
		f->new = x->sport;
		f->size = 2;
		break;
	default:
		f->off = p->l4_off + 2;
		f->old = p->dport;
		f->new = x->dport;
		f->size = 2;
		break;
	}
	f->change = f->old != f->new;
}

static __always_inline __u32 l4_csum_off(const struct pkt4 *p)
{
	return p->l4_off + (p->proto == IPPROTO_TCP ? offsetof(struct tcphdr, check)
						    : offsetof(struct udphdr, check));
}

/* tc: rewrites the whole tuple; unchanged fields cost nothing. A later
 * fragment (frag.h) has no L4 header: only its addresses change. */
static __always_inline int nat4_apply(struct __sk_buff *skb, const struct pkt4 *p,
				      const struct xlate4 *x)
{
	/* A UDP checksum of 0 means "none": keep it so, and never produce
	 * a computed 0 (it becomes 0xffff). */
	__u64 l4flags = p->proto == IPPROTO_UDP ? BPF_F_MARK_MANGLED_0 : 0;
	__u32 csum_off = l4_csum_off(p);
	struct nat4_field f;
	int i;

	for (i = 0; i < NAT4_FIELDS; i++) {
		nat4_field(p, x, i, &f);
		if (!f.change || (f.size != 4 && p->frag == PKT_FRAG_LATER))
			continue;
		if (f.size == 4) {
			__be32 v = f.new;

			if (p->frag != PKT_FRAG_LATER &&
			    bpf_l4_csum_replace(skb, csum_off, f.old, f.new,
						l4flags | BPF_F_PSEUDO_HDR | 4))
				return -1;
			if (bpf_l3_csum_replace(skb, p->l3_off + offsetof(struct iphdr, check),
						f.old, f.new, 4))
				return -1;
			if (bpf_skb_store_bytes(skb, f.off, &v, sizeof(v), 0))
				return -1;
		} else {
			__be16 v = (__be16)f.new;

			if (bpf_l4_csum_replace(skb, csum_off, f.old, f.new, l4flags | 2))
				return -1;
			if (bpf_skb_store_bytes(skb, f.off, &v, sizeof(v), 0))
				return -1;
		}
	}
	return 0;
}

/* XDP: the same fields, written in place. */
static __always_inline int xdp_nat4_apply(struct xdp_md *ctx, const struct pkt4 *p,
					  const struct xlate4 *x)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct iphdr *ip = data + sizeof(struct ethhdr);
	__u32 l4_off = p->l4_off & 0x7f; /* at most 14 + 60 */
	__u16 *l4sum;
	__u8 *field;
	struct nat4_field f;
	int i, nocsum;

	if ((void *)(ip + 1) > data_end)
		return -1;
	if (p->proto == IPPROTO_TCP) {
		struct tcphdr *tcp = data + l4_off;

		if ((void *)(tcp + 1) > data_end)
			return -1;
		l4sum = (__u16 *)&tcp->check;
	} else {
		struct udphdr *udp = data + l4_off;

		if ((void *)(udp + 1) > data_end)
			return -1;
		l4sum = (__u16 *)&udp->check;
	}
	nocsum = p->proto == IPPROTO_UDP && *l4sum == 0;
	for (i = 0; i < NAT4_FIELDS; i++) {
		nat4_field(p, x, i, &f);
		if (!f.change)
			continue;
		if (f.size == 4) {
			csum32_replace((__u16 *)&ip->check, f.old, f.new);
			if (!nocsum)
				csum32_replace(l4sum, f.old, f.new);
			field = i == NAT4_SADDR ? (__u8 *)&ip->saddr : (__u8 *)&ip->daddr;
			*(__u32 *)field = f.new;
		} else {
			if (!nocsum)
				csum16_replace(l4sum, (__u16)f.old, (__u16)f.new);
			field = data + l4_off + (i == NAT4_SPORT ? 0 : 2);
			if ((void *)(field + 2) > data_end)
				return -1;
			*(__u16 *)field = (__u16)f.new;
		}
	}
	if (p->proto == IPPROTO_UDP && !nocsum && *l4sum == 0)
		*l4sum = 0xffff;
	return 0;
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
