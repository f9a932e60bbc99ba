/* SPDX-License-Identifier: GPL-2.0 */
/* ICMP errors RELATED to a tracked flow (RFC 792 destination
 * unreachable, including fragmentation needed, time exceeded, parameter
 * problem), translated as netfilter's nf_nat_icmp_reply_translation
 * does: the embedded header is the flow's packet as one side sent it, so
 * it gets the translation that side sees undone, and the outer header
 * becomes one packet of the flow's other direction. Every checksum is
 * kept right: the outer IP header's, the embedded IP header's, the
 * embedded TCP/UDP checksum when the error carries it (UDP's is within
 * the 8 bytes RFC 792 guarantees; TCP's only when the whole TCP header
 * is quoted, as Linux does; a zero UDP checksum stays zero), and the ICMP
 * checksum over all of these changes.
 *
 * Only errors whose outer and embedded IP headers carry no options are
 * translated; others pass untouched. A quoted first fragment (offset 0,
 * MF set) carries the ports and is translated like any quote; a quoted
 * later fragment carries none and passes untouched (why ferry_frags
 * cannot lend them: icmp6.h). */
#ifndef FERRY_BPF_ICMP_H
#define FERRY_BPF_ICMP_H

#include "lib/common.h"
#include "lib/conntrack.h"
#include "lib/nat.h"
#include "lib/parse.h"

#define ICMP_TIME_EXCEEDED 11
#define ICMP_PARAMETERPROB 12

/* The headers an ICMP error translation reads and writes, as one block
 * from the outer IP header on. */
struct icmp4_err {
	struct iphdr ip;
	struct icmphdr icmp;
	struct iphdr in_ip;
	__u8 in_l4[20]; /* ports, then UDP length/checksum or TCP seq... checksum */
};

#define ICMP4_ERR_MIN (sizeof(struct icmp4_err) - 12) /* 8 bytes of L4 */

_Static_assert(sizeof(struct icmp4_err) == 68, "icmp4_err");

/* The embedded flow: its tuple as quoted. */
struct icmp4_inner {
	__be32 saddr;
	__be32 daddr;
	__be16 sport;
	__be16 dport;
	__u8 proto;
	__u8 l4_full; /* the whole TCP header (with its checksum) is quoted */
};

/* Is this an ICMP error we translate, and what flow does it quote? */
static __always_inline int icmp4_err_inner(const struct icmp4_err *h, struct icmp4_inner *in)
{
	if (h->ip.ihl != 5 || h->in_ip.ihl != 5 || h->in_ip.version != 4)
		return 0;
	if (h->icmp.type != ICMP_DEST_UNREACH && h->icmp.type != ICMP_TIME_EXCEEDED &&
	    h->icmp.type != ICMP_PARAMETERPROB)
		return 0;
	if (h->in_ip.protocol != IPPROTO_TCP && h->in_ip.protocol != IPPROTO_UDP)
		return 0;
	if (h->in_ip.frag_off & bpf_htons(IP_OFFSET))
		return 0;
	in->saddr = h->in_ip.saddr;
	in->daddr = h->in_ip.daddr;
	in->sport = *(__be16 *)&h->in_l4[0];
	in->dport = *(__be16 *)&h->in_l4[2];
	in->proto = h->in_ip.protocol;
	return 1;
}

/* One embedded 32-bit field (an address, or a word of an IPv6 one): the
 * embedded IPv4 header checksum (ipsum; NULL for IPv6, which has none),
 * the embedded L4 checksum (pseudo-header) and the ICMP checksum
 * follow. Shared by icmp6.h. */
static __always_inline void icmp_in_rw32(__u16 *icmpsum, __u16 *ipsum, __u16 *l4sum,
					 __be32 *field, __be32 new)
{
	__u16 before;
	__be32 old = *field;

	if (old == new)
		return;
	csum32_replace(icmpsum, old, new);
	if (ipsum) {
		before = *ipsum;
		csum32_replace(ipsum, old, new);
		csum16_replace(icmpsum, before, *ipsum);
	}
	if (l4sum) {
		before = *l4sum;
		csum32_replace(l4sum, old, new);
		csum16_replace(icmpsum, before, *l4sum);
	}
	*field = new;
}

/* One embedded port. */
static __always_inline void icmp_in_rw16(__u16 *icmpsum, __u16 *l4sum, __be16 *field, __be16 new)
{
	__u16 before;
	__be16 old = *field;

	if (old == new)
		return;
	csum16_replace(icmpsum, old, new);
	if (l4sum) {
		before = *l4sum;
		csum16_replace(l4sum, old, new);
		csum16_replace(icmpsum, before, *l4sum);
	}
	*field = new;
}

/* The embedded L4 checksum when the error carries it: UDP's (within the
 * first 8 bytes) unless it is 0 ("none"), TCP's only when the whole
 * header is quoted. NULL: nothing to keep right. */
static __always_inline __u16 *icmp_in_l4sum(__u8 *in_l4, __u8 proto, __u8 l4_full)
{
	if (proto == IPPROTO_UDP)
		return *(__u16 *)&in_l4[6] ? (__u16 *)&in_l4[6] : 0;
	return l4_full ? (__u16 *)&in_l4[16] : 0;
}

/* A computed UDP checksum of 0 is sent as 0xffff (RFC 768). */
static __always_inline void icmp_in_udp0(__u16 *icmpsum, __u16 *l4sum, __u8 proto)
{
	if (proto == IPPROTO_UDP && l4sum && *l4sum == 0) {
		*l4sum = 0xffff;
		csum16_replace(icmpsum, 0, 0xffff);
	}
}

/* Rewrites the block: outer addresses to `outer`, the embedded tuple to
 * `inner`. Pure: works on a copy (tc) or on the packet itself. */
static __always_inline void icmp4_err_rewrite(struct icmp4_err *h, const struct icmp4_inner *in,
					      const struct xlate4 *outer, const struct xlate4 *inner)
{
	__u16 *icmpsum = (__u16 *)&h->icmp.checksum;
	__u16 *l4sum = icmp_in_l4sum(h->in_l4, in->proto, in->l4_full);

	if (h->ip.saddr != outer->saddr) {
		csum32_replace((__u16 *)&h->ip.check, h->ip.saddr, outer->saddr);
		h->ip.saddr = outer->saddr;
	}
	if (h->ip.daddr != outer->daddr) {
		csum32_replace((__u16 *)&h->ip.check, h->ip.daddr, outer->daddr);
		h->ip.daddr = outer->daddr;
	}
	icmp_in_rw32(icmpsum, (__u16 *)&h->in_ip.check, l4sum, &h->in_ip.saddr, inner->saddr);
	icmp_in_rw32(icmpsum, (__u16 *)&h->in_ip.check, l4sum, &h->in_ip.daddr, inner->daddr);
	icmp_in_rw16(icmpsum, l4sum, (__be16 *)&h->in_l4[0], inner->sport);
	icmp_in_rw16(icmpsum, l4sum, (__be16 *)&h->in_l4[2], inner->dport);
	icmp_in_udp0(icmpsum, l4sum, in->proto);
}

enum icmp4_dir {
	ICMP4_REPLY = 1, /* about a packet the client sent: sent towards the client */
	ICMP4_ORIG = 2,  /* about a reply: sent by the client towards the frontend */
};

/* Finds the flow a quoted packet belongs to, for both families. key: the
 * quoted tuple reversed (ct4_key/ct6_key, any dir). `dirs` says which
 * directions to try; `want`/`want_mask` filter REV entries on their
 * flags. On a hit key->dir names the entry found:
 *   REV: the quoted packet went client -> backend, translated (its reply
 *        tuple is a REV key); the error goes towards the client;
 *   FWD: the quoted packet is a reply as the client saw it (frontend ->
 *        client); the error goes from the client towards the backend.
 * Either way the outer header becomes a packet of the entry's own
 * translation (xlate4_reply for REV, the forward one for FWD) and the
 * embedded tuple its reverse. Returns the entry or NULL. */
static __always_inline struct ferry_ct_value *icmp_err_flow(struct ferry_ct_key *key, int dirs,
							    __u16 want, __u16 want_mask, __u64 now)
{
	struct ferry_ct_value *ct;

	if (dirs & ICMP4_REPLY) {
		key->dir = FERRY_CT_REV;
		ct = bpf_map_lookup_elem(&ferry_ct, key);
		if (ct && ct_alive(ct, now) && (ct->flags & want_mask) == want)
			return ct;
	}
	if (dirs & ICMP4_ORIG) {
		key->dir = FERRY_CT_FWD;
		ct = bpf_map_lookup_elem(&ferry_ct, key);
		if (ct && ct_alive(ct, now))
			return ct;
	}
	return NULL;
}

/* icmp_err_flow for IPv4: fills outer and inner translations. */
static __always_inline struct ferry_ct_value *
icmp4_err_lookup(const struct icmp4_inner *in, int dirs, __u16 want, __u16 want_mask, __u64 now,
		 struct xlate4 *outer, struct xlate4 *inner)
{
	struct ferry_ct_value *ct;
	struct ferry_ct_key key;

	ct4_key(&key, in->daddr, in->saddr, in->dport, in->sport, in->proto, FERRY_CT_REV);
	ct = icmp_err_flow(&key, dirs, want, want_mask, now);
	if (!ct)
		return NULL;
	if (key.dir == FERRY_CT_REV) {
		xlate4_reply(outer, ct);
	} else {
		outer->saddr = ct->alt_addr.w[3];
		outer->sport = ct->alt_port;
		outer->daddr = ct->nat_addr.w[3];
		outer->dport = ct->nat_port;
	}
	inner->saddr = outer->daddr;
	inner->sport = outer->dport;
	inner->daddr = outer->saddr;
	inner->dport = outer->sport;
	return ct;
}

/* tc: translates an ICMP error about a tracked flow in place. Returns
 * ICMP_RELATED (translated; *out_daddr is the new outer destination),
 * PASS, or DROP_REWRITE. */
static __always_inline int icmp4_xlate_skb(struct __sk_buff *skb, const struct pkt4 *p, int dirs,
					   __u16 want, __u16 want_mask, __u64 now, __be32 *out_daddr)
{
	struct icmp4_inner in = {};
	struct xlate4 outer, inner;
	struct icmp4_err h;
	__u32 len = skb->len;

	if (p->ihl != 5 || len < p->l3_off + ICMP4_ERR_MIN)
		return FERRY_STAT_PASS;
	__builtin_memset(&h, 0, sizeof(h));
	if (len >= p->l3_off + sizeof(h)) {
		if (bpf_skb_load_bytes(skb, p->l3_off, &h, sizeof(h)))
			return FERRY_STAT_PASS;
		in.l4_full = bpf_ntohs(h.ip.tot_len) >= sizeof(h);
	} else if (bpf_skb_load_bytes(skb, p->l3_off, &h, ICMP4_ERR_MIN)) {
		return FERRY_STAT_PASS;
	}
	if (!icmp4_err_inner(&h, &in))
		return FERRY_STAT_PASS;
	/* A TCP header is whole only if its data offset fits what is quoted. */
	if (in.proto == IPPROTO_TCP && in.l4_full && (h.in_l4[12] >> 4) < 5)
		in.l4_full = 0;
	if (!icmp4_err_lookup(&in, dirs, want, want_mask, now, &outer, &inner))
		return FERRY_STAT_PASS;
	icmp4_err_rewrite(&h, &in, &outer, &inner);
	if (in.l4_full) {
		if (bpf_skb_store_bytes(skb, p->l3_off, &h, sizeof(h), 0))
			return FERRY_STAT_DROP_REWRITE;
	} else if (bpf_skb_store_bytes(skb, p->l3_off, &h, ICMP4_ERR_MIN, 0)) {
		return FERRY_STAT_DROP_REWRITE;
	}
	*out_daddr = h.ip.daddr;
	return FERRY_STAT_ICMP_RELATED;
}

#endif
