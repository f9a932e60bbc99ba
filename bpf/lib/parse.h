/* SPDX-License-Identifier: GPL-2.0 */
/* Packet parsing for tc programs: Ethernet, IPv4, TCP/UDP ports.
 * Every header is bounds-checked before use; anything we do not
 * understand is reported, never guessed at, so the caller passes it on
 * untouched. */
#ifndef FERRY_BPF_PARSE_H
#define FERRY_BPF_PARSE_H

#include "lib/common.h"

#define IP_MF 0x2000
#define IP_OFFSET 0x1FFF

/* A parsed IPv4 TCP/UDP packet. Offsets are from the start of the frame. */
struct pkt4 {
	__u32 l3_off;
	__u32 l4_off;
	__be32 saddr;
	__be32 daddr;
	__be16 sport;
	__be16 dport;
	__u8 proto;
	__u8 ihl;       /* in 32-bit words */
	__u8 tcp_flags; /* byte 13 of the TCP header (FIN/SYN/RST/...) */
	__u8 frag;      /* enum pkt_frag */
	__be32 frag_id; /* a fragment's identification (frag.h) */
};

/* Which fragment of a datagram a packet is (frag.h). A later fragment
 * has no L4 header: its ports come from the first one's, and only its
 * addresses are rewritten. */
enum pkt_frag {
	PKT_FRAG_NONE = 0,
	PKT_FRAG_FIRST = 1,
	PKT_FRAG_LATER = 2,
};

#define TCP_FLAG_FIN 0x01
#define TCP_FLAG_SYN 0x02
#define TCP_FLAG_RST 0x04
#define TCP_FLAG_ACK 0x10

/* An unfragmented ICMP packet: p has addresses and offsets only. */
#define PARSE4_ICMP (-1)

/* Returns FERRY_STAT_FWD_NEW as "parsed TCP/UDP, go on", PARSE4_ICMP, or
 * the reason to stop: PASS (not IPv4 TCP/UDP/ICMP), MALFORMED, FRAGMENT.
 * A TCP/UDP FRAGMENT has p filled (p->frag, p->frag_id; ports too for a
 * first fragment) for frag.h, which tracks it; callers that do not call
 * frag4_ports leave fragments untouched. Works on XDP and tc frames. */
static __always_inline int parse4(void *data, void *data_end, struct pkt4 *p)
{
	struct ethhdr *eth = data;
	struct iphdr *ip;
	__u32 ihl_bytes;

	p->frag = PKT_FRAG_NONE;
	p->frag_id = 0;
	p->sport = 0;
	p->dport = 0;
	if ((void *)(eth + 1) > data_end)
		return FERRY_STAT_MALFORMED;
	if (eth->h_proto != bpf_htons(ETH_P_IP))
		return FERRY_STAT_PASS;
	ip = (void *)(eth + 1);
	if ((void *)(ip + 1) > data_end)
		return FERRY_STAT_MALFORMED;
	if (ip->version != 4 || ip->ihl < 5)
		return FERRY_STAT_MALFORMED;
	if (ip->protocol != IPPROTO_TCP && ip->protocol != IPPROTO_UDP &&
	    ip->protocol != IPPROTO_ICMP)
		return FERRY_STAT_PASS;
	if (bpf_ntohs(ip->tot_len) < (__u32)ip->ihl * 4)
		return FERRY_STAT_MALFORMED;

	ihl_bytes = (ip->ihl & 0xf) * 4;
	p->l3_off = sizeof(*eth);
	p->l4_off = sizeof(*eth) + ihl_bytes;
	p->saddr = ip->saddr;
	p->daddr = ip->daddr;
	p->proto = ip->protocol;
	p->ihl = ip->ihl;
	p->tcp_flags = 0;
	if (ip->frag_off & bpf_htons(IP_MF | IP_OFFSET)) {
		/* ICMP errors are never fragmented in practice: untouched */
		if (p->proto == IPPROTO_ICMP)
			return FERRY_STAT_FRAGMENT;
		p->frag_id = ip->id;
		if (ip->frag_off & bpf_htons(IP_OFFSET)) {
			p->frag = PKT_FRAG_LATER;
			return FERRY_STAT_FRAGMENT;
		}
		p->frag = PKT_FRAG_FIRST;
	}
	/* ICMP: addresses and offsets only; icmp.h reads the rest. */
	if (p->proto == IPPROTO_ICMP)
		return PARSE4_ICMP;

	/* One pointer for both protocols: ports are the first 4 bytes of
	 * TCP and UDP alike (the compiler merges the two reads otherwise,
	 * which the verifier cannot follow). */
	__u8 *l4 = data + p->l4_off;

	if ((void *)(l4 + sizeof(struct udphdr)) > data_end)
		return FERRY_STAT_MALFORMED;
	p->sport = *(__be16 *)l4;
	p->dport = *(__be16 *)(l4 + 2);
	if (p->proto == IPPROTO_TCP) {
		if ((void *)(l4 + sizeof(struct tcphdr)) > data_end)
			return FERRY_STAT_MALFORMED;
		if ((l4[12] >> 4) < 5) /* data offset */
			return FERRY_STAT_MALFORMED;
		p->tcp_flags = l4[13];
	}
	return p->frag ? FERRY_STAT_FRAGMENT : FERRY_STAT_FWD_NEW;
}

/* ---- IPv6 ---- */

#ifndef ETH_P_IPV6
#define ETH_P_IPV6 0x86DD
#endif
#define IPV6_NH_HOP 0
#define IPV6_NH_ROUTING 43
#define IPV6_NH_FRAGMENT 44
#define IPV6_NH_DSTOPTS 60
#ifndef IPPROTO_ICMPV6
#define IPPROTO_ICMPV6 58
#endif
/* Extension headers walked before giving up (RFC 8200 4.1 recommends at
 * most one of each, destination options twice), and the most bytes of
 * IPv6 and extension headers looked at: a packet beyond either passes
 * untouched. */
#define IPV6_EXT_MAX 6
#define IPV6_HDRS_MAX 512

/* The fixed IPv6 header (RFC 8200 3); linux/ipv6.h is not used so this
 * builds for -target bpf without libc headers. */
struct ip6hdr {
	__u8 vtc;      /* version (4 bits), traffic class high bits */
	__u8 tc_flow;
	__be16 flow_lo;
	__be16 payload_len;
	__u8 nexthdr;
	__u8 hop_limit;
	union ferry_addr saddr;
	union ferry_addr daddr;
};

_Static_assert(sizeof(struct ip6hdr) == 40, "ip6hdr");

/* A parsed IPv6 TCP/UDP packet. l4_off is past every extension header. */
struct pkt6 {
	__u32 l3_off;
	__u32 l4_off;
	union ferry_addr saddr;
	union ferry_addr daddr;
	__be16 sport;
	__be16 dport;
	__u8 proto;
	__u8 tcp_flags;
	__u8 frag; /* enum pkt_frag */
	__u8 pad;
	__be32 frag_id; /* a fragment's identification (frag.h) */
};

/* parse6: like parse4 for an IPv6 frame. Hop-by-hop, routing and
 * destination options headers are skipped (at most IPV6_EXT_MAX, within
 * IPV6_HDRS_MAX bytes, else PASS). A fragment header makes the packet a
 * FRAGMENT unless it is an atomic fragment (offset 0, no more
 * fragments: RFC 6946), with p filled for frag.h as parse4 does (a later
 * fragment's proto is its fragment header's next header; a first one is
 * parsed through to its ports). A header cut short, or one
 * that reaches past the payload length, is MALFORMED; so is a UDP
 * checksum of 0, which IPv6 forbids (RFC 8200 8.1). ICMPv6 and other
 * protocols PASS; for ICMPv6 p has addresses, offsets and proto
 * (IPPROTO_ICMPV6) filled (icmp6.h reads the rest), else p->proto is 0. */
static __always_inline int parse6(void *data, void *data_end, struct pkt6 *p)
{
	struct ethhdr *eth = data;
	struct ip6hdr *ip6;
	__u32 off = sizeof(*eth) + sizeof(*ip6), end;
	__u8 nexthdr, *ext, *l4;
	int i;

	p->proto = 0;
	p->frag = PKT_FRAG_NONE;
	if ((void *)(eth + 1) > data_end)
		return FERRY_STAT_MALFORMED;
	if (eth->h_proto != bpf_htons(ETH_P_IPV6))
		return FERRY_STAT_PASS;
	ip6 = (void *)(eth + 1);
	if ((void *)(ip6 + 1) > data_end)
		return FERRY_STAT_MALFORMED;
	if ((ip6->vtc >> 4) != 6)
		return FERRY_STAT_MALFORMED;
	nexthdr = ip6->nexthdr;
	end = off + bpf_ntohs(ip6->payload_len);
	for (i = 0; i < IPV6_EXT_MAX; i++) {
		if (nexthdr != IPV6_NH_HOP && nexthdr != IPV6_NH_ROUTING &&
		    nexthdr != IPV6_NH_DSTOPTS && nexthdr != IPV6_NH_FRAGMENT)
			break;
		if (off > IPV6_HDRS_MAX)
			return FERRY_STAT_PASS;
		ext = data + off;
		if ((void *)(ext + 8) > data_end || off + 8 > end)
			return FERRY_STAT_MALFORMED;
		if (nexthdr == IPV6_NH_FRAGMENT) {
			/* offset (13 bits), 2 reserved bits, M */
			__be16 fo = *(__be16 *)(ext + 2);

			if (fo & bpf_htons(0xfff9)) {
				p->frag_id = *(__be32 *)(ext + 4);
				p->frag = PKT_FRAG_FIRST;
			}
			if (fo & bpf_htons(0xfff8)) {
				p->l3_off = sizeof(*eth);
				p->l4_off = off + 8;
				p->saddr = ip6->saddr;
				p->daddr = ip6->daddr;
				p->proto = ext[0];
				p->tcp_flags = 0;
				p->frag = PKT_FRAG_LATER;
				return FERRY_STAT_FRAGMENT;
			}
			off += 8;
		} else {
			off += ((__u32)ext[1] + 1) * 8;
		}
		nexthdr = ext[0];
	}
	if (off > IPV6_HDRS_MAX)
		return FERRY_STAT_PASS;
	if (nexthdr == IPPROTO_ICMPV6) {
		if (p->frag) {
			p->frag = PKT_FRAG_NONE;
			return FERRY_STAT_FRAGMENT;
		}
		p->l3_off = sizeof(*eth);
		p->l4_off = off;
		p->saddr = ip6->saddr;
		p->daddr = ip6->daddr;
		p->proto = nexthdr;
		return FERRY_STAT_PASS;
	}
	if (nexthdr != IPPROTO_TCP && nexthdr != IPPROTO_UDP) {
		if (p->frag) {
			p->frag = PKT_FRAG_NONE; /* untouched: not tracked */
			return FERRY_STAT_FRAGMENT;
		}
		return FERRY_STAT_PASS;
	}

	l4 = data + off;
	if ((void *)(l4 + sizeof(struct udphdr)) > data_end || off + sizeof(struct udphdr) > end)
		return FERRY_STAT_MALFORMED;
	p->l3_off = sizeof(*eth);
	p->l4_off = off;
	p->saddr = ip6->saddr;
	p->daddr = ip6->daddr;
	p->proto = nexthdr;
	p->tcp_flags = 0;
	p->pad = 0;
	p->sport = *(__be16 *)l4;
	p->dport = *(__be16 *)(l4 + 2);
	if (nexthdr == IPPROTO_TCP) {
		if ((void *)(l4 + sizeof(struct tcphdr)) > data_end ||
		    off + sizeof(struct tcphdr) > end)
			return FERRY_STAT_MALFORMED;
		if ((l4[12] >> 4) < 5) /* data offset */
			return FERRY_STAT_MALFORMED;
		p->tcp_flags = l4[13];
	} else if (*(__u16 *)(l4 + 6) == 0) {
		return FERRY_STAT_MALFORMED;
	}
	return p->frag ? FERRY_STAT_FRAGMENT : FERRY_STAT_FWD_NEW;
}

#define PKT6_PARSE(ctx, p) parse6((void *)(long)(ctx)->data, (void *)(long)(ctx)->data_end, (p))

#endif
