/* SPDX-License-Identifier: GPL-2.0 */
/* ICMPv6 errors RELATED to a tracked IPv6 flow (RFC 4443: destination
 * unreachable, packet too big, time exceeded, parameter problem),
 * translated as icmp.h does for IPv4 (netfilter's
 * nf_nat_icmp_reply_translation): the embedded IPv6 header and ports get
 * the translation that side saw undone, and the outer header becomes a
 * packet of the flow's other direction. The flow lookup, the embedded
 * field rewrites and their checksum arithmetic are icmp.h's.
 *
 * IPv6 has no header checksum; the ICMPv6 checksum covers a
 * pseudo-header of the outer addresses (RFC 4443 2.3, RFC 8200 8.1), and
 * the embedded TCP/UDP checksum one of the embedded addresses: every
 * address and port change reaches both, and the ICMPv6 checksum follows
 * the embedded checksum's own change. The embedded TCP checksum is kept
 * right when the whole TCP header is quoted (Linux quotes as much as
 * fits in 1280 bytes); UDP's is always within the 8 bytes quoted.
 *
 * The quoted packet's extension headers (hop-by-hop, routing,
 * destination options, fragment) are skipped as parse6 skips the outer
 * ones, bounded the same way, and left as they are. A quoted first
 * fragment (offset 0, M set) carries the ports: it is translated like
 * any other quote. A quoted later fragment carries none, and is left
 * untouched: ferry_frags (frag.h) could lend it its ports, but its
 * entries are keyed by the fragments' addresses before translation, and
 * a quote holds them after it (client -> backend, frontend -> client),
 * so a lookup would need the frontend the quote does not name; routers
 * quote a later fragment only for packet too big on a later fragment,
 * which the sender's PMTU cache handles from the first one's error.
 *
 * Only errors whose outer header is followed directly by ICMPv6 are
 * translated; others, quotes cut inside their extension headers or
 * shorter than 8 bytes of TCP/UDP, pass untouched. */
#ifndef FERRY_BPF_ICMP6_H
#define FERRY_BPF_ICMP6_H

#include "lib/common.h"
#include "lib/conntrack6.h"
#include "lib/icmp.h"
#include "lib/parse.h"
#include "lib/reject6.h"

#define ICMPV6_PKT_TOOBIG 2
#define ICMPV6_TIME_EXCEED 3
#define ICMPV6_PARAMPROB 4

/* The headers a translation reads and writes, as one block from the
 * outer IPv6 header on. */
struct icmp6_err {
	struct ip6hdr ip;
	struct icmphdr icmp; /* type, code, checksum, MTU / pointer / unused */
	struct ip6hdr in_ip;
	__u8 in_l4[20]; /* ports, then UDP length/checksum or TCP seq... checksum */
};

#define ICMP6_ERR_MIN (sizeof(struct icmp6_err) - 12) /* 8 bytes of L4 */

_Static_assert(sizeof(struct icmp6_err) == 108, "icmp6_err");

/* The embedded flow: its tuple as quoted. */
struct icmp6_inner {
	union ferry_addr saddr;
	union ferry_addr daddr;
	__be16 sport;
	__be16 dport;
	__u8 proto;
	__u8 l4_full; /* the whole TCP header (with its checksum) is quoted */
};

/* Is this an ICMPv6 error we translate, and what flow does it quote?
 * in->proto is the quoted L4 protocol (past its extension headers). */
static __always_inline int icmp6_err_inner(const struct icmp6_err *h, struct icmp6_inner *in)
{
	if (h->icmp.type < ICMPV6_DEST_UNREACH || h->icmp.type > ICMPV6_PARAMPROB)
		return 0;
	if ((h->in_ip.vtc >> 4) != 6)
		return 0;
	if (in->proto != IPPROTO_TCP && in->proto != IPPROTO_UDP)
		return 0;
	in->saddr = h->in_ip.saddr;
	in->daddr = h->in_ip.daddr;
	in->sport = *(__be16 *)&h->in_l4[0];
	in->dport = *(__be16 *)&h->in_l4[2];
	return 1;
}

/* Skips the quoted packet's extension headers from offset off (just past
 * its IPv6 header) as parse6 does: at most IPV6_EXT_MAX of them, within
 * IPV6_HDRS_MAX bytes, none past `end` (the last byte quoted + 1).
 * Returns the offset of the quoted L4 header with *proto its protocol,
 * or 0: cut short, too many or too long, or a later fragment (no
 * ports). */
static __always_inline __u32 icmp6_in_l4_off(struct __sk_buff *skb, __u32 off, __u32 end,
					     __u8 *proto)
{
	__u32 first = off;
	__u8 nh = *proto, ext[4];
	int i;

	for (i = 0; i < IPV6_EXT_MAX; i++) {
		if (nh != IPV6_NH_HOP && nh != IPV6_NH_ROUTING && nh != IPV6_NH_DSTOPTS &&
		    nh != IPV6_NH_FRAGMENT)
			break;
		if (off - first > IPV6_HDRS_MAX - sizeof(struct ip6hdr) || off + 8 > end ||
		    bpf_skb_load_bytes(skb, off, ext, sizeof(ext)))
			return 0;
		if (nh == IPV6_NH_FRAGMENT) {
			if (ext[2] || (ext[3] & 0xf8)) /* fragment offset */
				return 0;
			off += 8;
		} else {
			off += ((__u32)ext[1] + 1) * 8;
		}
		nh = ext[0];
	}
	*proto = nh;
	return off;
}

/* One address of the outer header: only the ICMPv6 checksum (its
 * pseudo-header) follows. */
static __always_inline void icmp6_out_rw(__u16 *icmpsum, union ferry_addr *field,
					 const union ferry_addr *new)
{
	int i;

#pragma unroll
	for (i = 0; i < 4; i++) {
		if (field->w[i] != new->w[i]) {
			csum32_replace(icmpsum, field->w[i], new->w[i]);
			field->w[i] = new->w[i];
		}
	}
}

/* One address of the embedded header, word by word (icmp.h). */
static __always_inline void icmp6_in_rw(__u16 *icmpsum, __u16 *l4sum, union ferry_addr *field,
					const union ferry_addr *new)
{
	int i;

#pragma unroll
	for (i = 0; i < 4; i++)
		icmp_in_rw32(icmpsum, 0, l4sum, &field->w[i], new->w[i]);
}

/* Rewrites the block: outer addresses to `outer`, the embedded tuple to
 * its reverse (the quoted packet went the other way). Pure: works on a
 * copy. */
static __always_inline void icmp6_err_rewrite(struct icmp6_err *h, const struct icmp6_inner *in,
					      const struct xlate6 *outer)
{
	__u16 *icmpsum = (__u16 *)&h->icmp.checksum;
	__u16 *l4sum = icmp_in_l4sum(h->in_l4, in->proto, in->l4_full);

	icmp6_out_rw(icmpsum, &h->ip.saddr, &outer->saddr);
	icmp6_out_rw(icmpsum, &h->ip.daddr, &outer->daddr);
	icmp6_in_rw(icmpsum, l4sum, &h->in_ip.saddr, &outer->daddr);
	icmp6_in_rw(icmpsum, l4sum, &h->in_ip.daddr, &outer->saddr);
	icmp_in_rw16(icmpsum, l4sum, (__be16 *)&h->in_l4[0], outer->dport);
	icmp_in_rw16(icmpsum, l4sum, (__be16 *)&h->in_l4[2], outer->sport);
	icmp_in_udp0(icmpsum, l4sum, in->proto);
}

/* icmp_err_flow for IPv6: fills the outer translation (the embedded
 * one is its reverse). */
static __always_inline struct ferry_ct_value *
icmp6_err_lookup(const struct icmp6_inner *in, int dirs, __u16 want, __u16 want_mask, __u64 now,
		 struct xlate6 *outer)
{
	struct ferry_ct_value *ct;
	struct ferry_ct_key key;

	ct6_key(&key, &in->daddr, &in->saddr, in->dport, in->sport, in->proto, FERRY_CT_REV);
	ct = icmp_err_flow(&key, dirs, want, want_mask, now);
	if (!ct)
		return NULL;
	if (key.dir == FERRY_CT_REV) {
		outer->saddr = ct->nat_addr;
		outer->sport = ct->nat_port;
		outer->daddr = ct->alt_addr;
		outer->dport = ct->alt_port;
	} else {
		outer->saddr = ct->alt_addr;
		outer->sport = ct->alt_port;
		outer->daddr = ct->nat_addr;
		outer->dport = ct->nat_port;
	}
	return ct;
}

/* tc: translates an ICMPv6 error about a tracked flow in place. p is
 * parse6's result for an ICMPv6 packet (PASS with proto ICMPv6).
 * Returns ICMP_RELATED (translated; *out_daddr is the new outer
 * destination), PASS, or DROP_REWRITE. The headers up to the quoted
 * IPv6 header are read and written as one block, the quoted L4 header
 * (8 bytes, or the 20 of a whole TCP header) as another, past any
 * quoted extension headers. */
static __always_inline int icmp6_xlate_skb(struct __sk_buff *skb, const struct pkt6 *p, int dirs,
					   __u16 want, __u16 want_mask, __u64 now,
					   union ferry_addr *out_daddr)
{
	const __u32 head = offsetof(struct icmp6_err, in_l4);
	struct icmp6_inner in = {};
	struct xlate6 outer;
	struct icmp6_err h;
	__u32 end, l4;

	if (p->proto != IPPROTO_ICMPV6 || p->l4_off != p->l3_off + sizeof(struct ip6hdr) ||
	    skb->len < p->l3_off + ICMP6_ERR_MIN)
		return FERRY_STAT_PASS;
	__builtin_memset(&h, 0, sizeof(h));
	if (bpf_skb_load_bytes(skb, p->l3_off, &h, head))
		return FERRY_STAT_PASS;
	end = p->l3_off + sizeof(h.ip) + bpf_ntohs(h.ip.payload_len);
	if (end > skb->len)
		end = skb->len;
	in.proto = h.in_ip.nexthdr;
	l4 = icmp6_in_l4_off(skb, p->l3_off + head, end, &in.proto);
	if (!l4 || l4 + 8 > end)
		return FERRY_STAT_PASS;
	in.l4_full = l4 + sizeof(h.in_l4) <= end;
	if (in.l4_full) {
		if (bpf_skb_load_bytes(skb, l4, h.in_l4, sizeof(h.in_l4)))
			return FERRY_STAT_PASS;
	} else if (bpf_skb_load_bytes(skb, l4, h.in_l4, 8)) {
		return FERRY_STAT_PASS;
	}
	if (!icmp6_err_inner(&h, &in))
		return FERRY_STAT_PASS;
	/* A TCP header is whole only if its data offset fits what is quoted. */
	if (in.proto == IPPROTO_TCP && in.l4_full && (h.in_l4[12] >> 4) < 5)
		in.l4_full = 0;
	if (!icmp6_err_lookup(&in, dirs, want, want_mask, now, &outer))
		return FERRY_STAT_PASS;
	icmp6_err_rewrite(&h, &in, &outer);
	if (bpf_skb_store_bytes(skb, p->l3_off, &h, head, 0))
		return FERRY_STAT_DROP_REWRITE;
	if (in.l4_full) {
		if (bpf_skb_store_bytes(skb, l4, h.in_l4, sizeof(h.in_l4), 0))
			return FERRY_STAT_DROP_REWRITE;
	} else if (bpf_skb_store_bytes(skb, l4, h.in_l4, 8, 0)) {
		return FERRY_STAT_DROP_REWRITE;
	}
	*out_daddr = h.ip.daddr;
	return FERRY_STAT_ICMP_RELATED;
}

#endif
