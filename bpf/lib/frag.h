/* SPDX-License-Identifier: GPL-2.0 */
/* IP fragments of tracked flows, both families. Only a datagram's first
 * fragment carries the TCP/UDP header; the others would carry no ports
 * to find their flow by. So, as Cilium's ipv4_handle_fragmentation /
 * ipv6_handle_fragmentation: the first fragment's ports are recorded in
 * ferry_frags under the datagram's identity (source, destination,
 * identification, protocol; RFC 791 3.2 and RFC 8200 4.5 make it unique
 * while the datagram lives), and a later fragment takes them from there
 * and goes through the same path as an unfragmented packet: the first
 * fragment's translation (conntrack) applies to it too. A later
 * fragment has no L4 header, so only its addresses are rewritten (and
 * the IPv4 header checksum): the first fragment's L4 checksum update
 * covers the whole datagram. A later fragment never starts a flow.
 *
 * A later fragment that arrives before its first one (reordered, or the
 * entry evicted) passes untouched (FRAGMENT), as before. Entries are not
 * removed on the last fragment (a retransmission may follow); the LRU
 * keeps the map bounded. */
#ifndef FERRY_BPF_FRAG_H
#define FERRY_BPF_FRAG_H

#include "lib/common.h"
#include "lib/parse.h"

/* A datagram's identity. IPv4's 16-bit identification is kept in the
 * low-address bytes of id, IPv6's 32-bit one whole. */
struct ferry_frag_key {
	union ferry_addr saddr;
	union ferry_addr daddr;
	__be32 id;
	__u8 proto;
	__u8 pad[3];
};

struct ferry_frag_ports {
	__be16 sport;
	__be16 dport;
};

_Static_assert(sizeof(struct ferry_frag_key) == 40, "ferry_frag_key");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, struct ferry_frag_key);
	__type(value, struct ferry_frag_ports);
} ferry_frags SEC(".maps");

/* A first fragment records its ports; a later one reads them. Returns
 * FWD_NEW (ports known: go on as for any packet, p->frag says which
 * fragment it is) or FRAGMENT (a later fragment of an unknown datagram:
 * leave it untouched). */
static __always_inline int frag_ports(const struct ferry_frag_key *k, __u8 frag, __be16 *sport,
				      __be16 *dport)
{
	struct ferry_frag_ports *v, n;

	if (frag == PKT_FRAG_FIRST) {
		n.sport = *sport;
		n.dport = *dport;
		/* a full map only costs the later fragments their translation */
		bpf_map_update_elem(&ferry_frags, k, &n, BPF_ANY);
		return FERRY_STAT_FWD_NEW;
	}
	v = bpf_map_lookup_elem(&ferry_frags, k);
	if (!v)
		return FERRY_STAT_FRAGMENT;
	*sport = v->sport;
	*dport = v->dport;
	return FERRY_STAT_FWD_NEW;
}

/* After parse4: a fragment (stat FRAGMENT with p->frag set) becomes a
 * packet with ports (FWD_NEW) when its datagram is known; any other
 * outcome is returned unchanged. */
static __always_inline int frag4_ports(struct pkt4 *p, int stat)
{
	struct ferry_frag_key k;

	if (stat != FERRY_STAT_FRAGMENT || !p->frag)
		return stat;
	__builtin_memset(&k, 0, sizeof(k));
	addr_set_v4(&k.saddr, p->saddr);
	addr_set_v4(&k.daddr, p->daddr);
	k.id = p->frag_id;
	k.proto = p->proto;
	return frag_ports(&k, p->frag, &p->sport, &p->dport);
}

/* The same after parse6. */
static __always_inline int frag6_ports(struct pkt6 *p, int stat)
{
	struct ferry_frag_key k;

	if (stat != FERRY_STAT_FRAGMENT || !p->frag)
		return stat;
	__builtin_memset(&k, 0, sizeof(k));
	k.saddr = p->saddr;
	k.daddr = p->daddr;
	k.id = p->frag_id;
	k.proto = p->proto;
	return frag_ports(&k, p->frag, &p->sport, &p->dport);
}

#endif
