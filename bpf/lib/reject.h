/* SPDX-License-Identifier: GPL-2.0 */
/* Refusing a flow to a service without endpoints, as kube-proxy's REJECT
 * rule does: ICMP port unreachable from the service address, turned
 * around in place. Linux reports it to a TCP connect() and to a connected
 * UDP socket as ECONNREFUSED. */
#ifndef FERRY_BPF_REJECT_H
#define FERRY_BPF_REJECT_H

#include "lib/common.h"
#include "lib/nat.h"
#include "lib/parse.h"

/* ICMP header, the offending IP header and its first 8 bytes (RFC 792). */
struct icmp4_error {
	struct icmphdr icmp;
	struct iphdr orig_ip;
	__u8 orig_l4[8];
};

struct icmp4_error_pkt {
	struct iphdr ip;
	struct icmp4_error err;
};

_Static_assert(sizeof(struct icmp4_error) == 36, "icmp4_error");
_Static_assert(sizeof(struct icmp4_error_pkt) == 56, "icmp4_error_pkt");

static __always_inline __u16 csum_fold(__s64 csum)
{
	__u32 sum = (__u32)csum;

	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return (__u16)~sum;
}

/* Rewrites the packet into an ICMP port unreachable for its sender and
 * redirects it back out of the device it came from. */
static __always_inline int reject4(struct __sk_buff *skb, const struct pkt4 *p)
{
	struct icmp4_error_pkt out;
	__s64 csum;

	/* The quoted header is copied as is; with options it would not fit
	 * the fixed layout, so such packets are dropped instead. */
	if (p->ihl != 5)
		return FERRY_STAT_DROP_NO_BACKEND;

	__builtin_memset(&out, 0, sizeof(out));
	if (bpf_skb_load_bytes(skb, p->l3_off, &out.err.orig_ip, sizeof(out.err.orig_ip)))
		return FERRY_STAT_DROP_NO_BACKEND;
	if (bpf_skb_load_bytes(skb, p->l4_off, out.err.orig_l4, sizeof(out.err.orig_l4)))
		return FERRY_STAT_DROP_NO_BACKEND;

	out.err.icmp.type = ICMP_DEST_UNREACH;
	out.err.icmp.code = ICMP_PORT_UNREACH;
	csum = bpf_csum_diff(0, 0, (__be32 *)&out.err, sizeof(out.err), 0);
	if (csum < 0)
		return FERRY_STAT_DROP_NO_BACKEND;
	out.err.icmp.checksum = csum_fold(csum);

	out.ip.version = 4;
	out.ip.ihl = 5;
	out.ip.tos = 0xc0; /* as Linux sends ICMP errors */
	out.ip.tot_len = bpf_htons(sizeof(out));
	out.ip.ttl = 64;
	out.ip.protocol = IPPROTO_ICMP;
	out.ip.saddr = p->daddr;
	out.ip.daddr = p->saddr;
	csum = bpf_csum_diff(0, 0, (__be32 *)&out.ip, sizeof(out.ip), 0);
	if (csum < 0)
		return FERRY_STAT_DROP_NO_BACKEND;
	out.ip.check = csum_fold(csum);

	if (bpf_skb_change_tail(skb, p->l3_off + sizeof(out), 0))
		return FERRY_STAT_DROP_NO_BACKEND;
	if (bpf_skb_store_bytes(skb, p->l3_off, &out, sizeof(out), 0))
		return FERRY_STAT_DROP_NO_BACKEND;
	if (eth_swap(skb))
		return FERRY_STAT_DROP_NO_BACKEND;
	bpf_redirect(skb->ifindex, 0);
	return FERRY_STAT_REJECT_NO_BACKEND;
}

#endif
