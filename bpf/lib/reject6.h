/* SPDX-License-Identifier: GPL-2.0 */
/* Refusing an IPv6 flow to a service without endpoints: ICMPv6
 * destination unreachable, code 4 port unreachable (RFC 4443 3.1), from
 * the service address, turned around in place as reject4 does. Linux
 * reports it to a TCP connect() and a connected UDP socket as
 * ECONNREFUSED. */
#ifndef FERRY_BPF_REJECT6_H
#define FERRY_BPF_REJECT6_H

#include "lib/common.h"
#include "lib/nat.h"
#include "lib/parse.h"
#include "lib/reject.h"

#define IPPROTO_ICMPV6 58
#define ICMPV6_DEST_UNREACH 1
#define ICMPV6_PORT_UNREACH 4

/* ICMPv6 header, the offending IPv6 header and its first 8 bytes of
 * TCP/UDP (ports, and TCP's sequence number the stack checks). */
struct icmp6_error {
	__u8 type;
	__u8 code;
	__sum16 checksum;
	__be32 unused;
	struct ip6hdr orig_ip;
	__u8 orig_l4[8];
};

struct icmp6_error_pkt {
	struct ip6hdr ip;
	struct icmp6_error err;
};

/* The pseudo-header the ICMPv6 checksum covers (RFC 8200 8.1). */
struct ip6_pseudo {
	union ferry_addr saddr;
	union ferry_addr daddr;
	__be32 len;
	__u8 zero[3];
	__u8 nexthdr;
};

_Static_assert(sizeof(struct icmp6_error) == 56, "icmp6_error");
_Static_assert(sizeof(struct icmp6_error_pkt) == 96, "icmp6_error_pkt");
_Static_assert(sizeof(struct ip6_pseudo) == 40, "ip6_pseudo");

/* Rewrites the packet into an ICMPv6 port unreachable for its sender and
 * redirects it back out of the device it came from. The quote is the
 * fixed IPv6 header and 8 bytes: a packet with extension headers would
 * need them quoted too (the receiver walks them), so it is dropped. */
static __always_inline int reject6(struct __sk_buff *skb, const struct pkt6 *p)
{
	struct icmp6_error_pkt out;
	struct ip6_pseudo ph;
	__s64 csum;

	if (p->l4_off != p->l3_off + sizeof(struct ip6hdr))
		return FERRY_STAT_DROP_NO_BACKEND;

	__builtin_memset(&out, 0, sizeof(out));
	if (bpf_skb_load_bytes(skb, p->l3_off, &out.err.orig_ip, sizeof(out.err.orig_ip)))
		return FERRY_STAT_DROP_NO_BACKEND;
	if (bpf_skb_load_bytes(skb, p->l4_off, out.err.orig_l4, sizeof(out.err.orig_l4)))
		return FERRY_STAT_DROP_NO_BACKEND;
	out.err.type = ICMPV6_DEST_UNREACH;
	out.err.code = ICMPV6_PORT_UNREACH;

	out.ip.vtc = 0x60;
	out.ip.payload_len = bpf_htons(sizeof(out.err));
	out.ip.nexthdr = IPPROTO_ICMPV6;
	out.ip.hop_limit = 64;
	out.ip.saddr = p->daddr;
	out.ip.daddr = p->saddr;

	__builtin_memset(&ph, 0, sizeof(ph));
	ph.saddr = out.ip.saddr;
	ph.daddr = out.ip.daddr;
	ph.len = bpf_htonl(sizeof(out.err));
	ph.nexthdr = IPPROTO_ICMPV6;
	csum = bpf_csum_diff(0, 0, (__be32 *)&ph, sizeof(ph), 0);
	if (csum < 0)
		return FERRY_STAT_DROP_NO_BACKEND;
	csum = bpf_csum_diff(0, 0, (__be32 *)&out.err, sizeof(out.err), (__u32)csum);
	if (csum < 0)
		return FERRY_STAT_DROP_NO_BACKEND;
	out.err.checksum = csum_fold(csum);

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
