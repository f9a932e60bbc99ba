/* SPDX-License-Identifier: Apache-2.0
 *
 * Bob Jenkins' lookup3 hash as the kernel's include/linux/jhash.h has it,
 * compiled by both clang -target bpf and the C++ compiler: the BPF flow
 * hash that indexes a Maglev table and the agent's tests must agree bit
 * for bit, and every node must hash a flow the same way (fixed seed).
 */
#ifndef FERRY_JHASH_H
#define FERRY_JHASH_H

#include <linux/types.h>

#define FERRY_JHASH_INITVAL 0xdeadbeefU
/* Fixed seed of the Maglev flow hash: the same on every node. */
#define FERRY_MAGLEV_SEED 0x6d61676cU /* "magl" */

static inline __u32 ferry_rol32(__u32 w, unsigned s) { return (w << s) | (w >> (32 - s)); }

#define FERRY_JHASH_MIX(a, b, c)                                              \
	do {                                                                  \
		a -= c; a ^= ferry_rol32(c, 4); c += b;                       \
		b -= a; b ^= ferry_rol32(a, 6); a += c;                       \
		c -= b; c ^= ferry_rol32(b, 8); b += a;                       \
		a -= c; a ^= ferry_rol32(c, 16); c += b;                      \
		b -= a; b ^= ferry_rol32(a, 19); a += c;                      \
		c -= b; c ^= ferry_rol32(b, 4); b += a;                       \
	} while (0)

#define FERRY_JHASH_FINAL(a, b, c)                                            \
	do {                                                                  \
		c ^= b; c -= ferry_rol32(b, 14);                              \
		a ^= c; a -= ferry_rol32(c, 11);                              \
		b ^= a; b -= ferry_rol32(a, 25);                              \
		c ^= b; c -= ferry_rol32(b, 16);                              \
		a ^= c; a -= ferry_rol32(c, 4);                               \
		b ^= a; b -= ferry_rol32(a, 14);                              \
		c ^= b; c -= ferry_rol32(b, 24);                              \
	} while (0)

/* jhash_3words() of the kernel. */
static inline __u32 ferry_jhash_3words(__u32 a, __u32 b, __u32 c, __u32 initval)
{
	initval += FERRY_JHASH_INITVAL + (3 << 2);
	a += initval;
	b += initval;
	c += initval;
	FERRY_JHASH_FINAL(a, b, c);
	return c;
}

/* jhash2() of the kernel: n 32-bit words (userspace: Maglev permutations). */
static inline __u32 ferry_jhash2(const __u32 *k, __u32 n, __u32 initval)
{
	__u32 a, b, c;

	a = b = c = FERRY_JHASH_INITVAL + (n << 2) + initval;
	while (n > 3) {
		a += k[0];
		b += k[1];
		c += k[2];
		FERRY_JHASH_MIX(a, b, c);
		n -= 3;
		k += 3;
	}
	switch (n) {
	case 3:
		c += k[2]; /* fall through */
	case 2:
		b += k[1]; /* fall through */
	case 1:
		a += k[0];
		FERRY_JHASH_FINAL(a, b, c);
		break;
	default:
		break;
	}
	return c;
}

/* The Maglev hash of an IPv4 flow: client address and port, the
 * frontend's address (0.0.0.0 for a NodePort, so every node hashes the
 * same) and port, protocol. Addresses and ports as they sit in memory
 * (network order); sport 0 when session affinity leaves it out. */
static inline __u32 ferry_flow_hash4(__u32 saddr, __u32 faddr, __u16 sport, __u16 fport,
				     __u8 proto)
{
	return ferry_jhash_3words(saddr, faddr, ((__u32)sport << 16) | fport,
				  FERRY_MAGLEV_SEED ^ proto);
}

/* The Maglev hash of an IPv6 flow: every word of both 128-bit addresses
 * (the frontend's is :: for a NodePort), then the ports, with the same seed
 * and protocol as ferry_flow_hash4. Equal to ferry_jhash2() over the nine
 * words {saddr, faddr, sport << 16 | fport}, written out so the BPF code
 * has no loop. IPv4 flows (IPv4-mapped addresses) keep ferry_flow_hash4. */
static inline __u32 ferry_flow_hash6(const __u32 *saddr, const __u32 *faddr, __u16 sport,
				     __u16 fport, __u8 proto)
{
	__u32 a, b, c;

	a = b = c = FERRY_JHASH_INITVAL + (9 << 2) + (FERRY_MAGLEV_SEED ^ proto);
	a += saddr[0];
	b += saddr[1];
	c += saddr[2];
	FERRY_JHASH_MIX(a, b, c);
	a += saddr[3];
	b += faddr[0];
	c += faddr[1];
	FERRY_JHASH_MIX(a, b, c);
	a += faddr[2];
	b += faddr[3];
	c += ((__u32)sport << 16) | fport;
	FERRY_JHASH_FINAL(a, b, c);
	return c;
}

#endif /* FERRY_JHASH_H */
