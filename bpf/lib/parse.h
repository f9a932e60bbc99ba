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
	__u8 pad;
};

#define TCP_FLAG_FIN 0x01
#define TCP_FLAG_SYN 0x02
#define TCP_FLAG_RST 0x04
#define TCP_FLAG_ACK 0x10

/* An unfragmented ICMP packet: p has addresses and offsets only. */
#define PARSE4_ICMP (-1)

/* Returns FERRY_STAT_FWD_NEW as "parsed TCP/UDP, go on", PARSE4_ICMP, or
 * the reason to stop: PASS (not IPv4 TCP/UDP/ICMP), MALFORMED, FRAGMENT.
 * Works on XDP and tc frames alike. */
static __always_inline int parse4(void *data, void *data_end, struct pkt4 *p)
{
	struct ethhdr *eth = data;
	struct iphdr *ip;
	__u32 ihl_bytes;

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
	/* Non-first fragments carry no ports; first ones would need the
	 * rest tracked too. Both pass untouched (see README). */
	if (ip->frag_off & bpf_htons(IP_MF | IP_OFFSET))
		return FERRY_STAT_FRAGMENT;

	ihl_bytes = (ip->ihl & 0xf) * 4;
	p->l3_off = sizeof(*eth);
	p->l4_off = sizeof(*eth) + ihl_bytes;
	p->saddr = ip->saddr;
	p->daddr = ip->daddr;
	p->proto = ip->protocol;
	p->ihl = ip->ihl;
	p->tcp_flags = 0;
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
	return FERRY_STAT_FWD_NEW;
}

#endif
