/* SPDX-License-Identifier: GPL-2.0 */
/* Rewriting in XDP: direct packet writes with incremental checksum
 * updates (RFC 1624). XDP frames carry complete checksums, unlike tc's
 * CHECKSUM_PARTIAL skbs, which is why tc uses the kernel helpers. */
#ifndef FERRY_BPF_XDP_NAT_H
#define FERRY_BPF_XDP_NAT_H

#include "lib/common.h"
#include "lib/conntrack.h"
#include "lib/parse.h"

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

/* Applies the new tuple to an XDP frame. */
static __always_inline int xdp_nat4_apply(struct xdp_md *ctx, const struct pkt4 *p,
					  const struct xlate4 *x)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct iphdr *ip = data + sizeof(struct ethhdr);
	__u16 *l4sum = NULL;
	__be16 *ports;
	__u16 l4_off = p->l4_off & 0x7f; /* at most 14 + 60 */
	int udp_nocsum = 0;

	if ((void *)(ip + 1) > data_end)
		return -1;
	ports = data + l4_off;
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
		udp_nocsum = udp->check == 0;
	}
	if ((void *)(ports + 2) > data_end)
		return -1;

	if (x->saddr != p->saddr) {
		csum32_replace((__u16 *)&ip->check, p->saddr, x->saddr);
		if (!udp_nocsum)
			csum32_replace(l4sum, p->saddr, x->saddr);
		ip->saddr = x->saddr;
	}
	if (x->daddr != p->daddr) {
		csum32_replace((__u16 *)&ip->check, p->daddr, x->daddr);
		if (!udp_nocsum)
			csum32_replace(l4sum, p->daddr, x->daddr);
		ip->daddr = x->daddr;
	}
	if (x->sport != p->sport) {
		if (!udp_nocsum)
			csum16_replace(l4sum, p->sport, x->sport);
		ports[0] = x->sport;
	}
	if (x->dport != p->dport) {
		if (!udp_nocsum)
			csum16_replace(l4sum, p->dport, x->dport);
		ports[1] = x->dport;
	}
	if (p->proto == IPPROTO_UDP && !udp_nocsum && *l4sum == 0)
		*l4sum = 0xffff;
	return 0;
}

#endif
