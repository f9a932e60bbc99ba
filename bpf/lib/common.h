/* SPDX-License-Identifier: GPL-2.0 */
/* Common includes and small helpers for ferry's BPF programs. */
#ifndef FERRY_BPF_COMMON_H
#define FERRY_BPF_COMMON_H

#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/tcp.h>
#include <linux/udp.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include <ferry/abi.h>

#ifndef __always_inline
#define __always_inline inline __attribute__((always_inline))
#endif

/* linux/icmp.h pulls in libc headers that do not build for -target bpf */
#define ICMP_DEST_UNREACH 3
#define ICMP_PORT_UNREACH 3
struct icmphdr {
	__u8 type;
	__u8 code;
	__sum16 checksum;
	__be32 un;
};

#define NSEC_PER_SEC 1000000000ULL

/* Load-time settings (set on the skeleton's rodata before load). */
const volatile __u64 ct_timeout_tcp_ns = 6 * 3600 * NSEC_PER_SEC;
const volatile __u64 ct_timeout_closing_ns = 10 * NSEC_PER_SEC;
const volatile __u64 ct_timeout_other_ns = 60 * NSEC_PER_SEC;
/* Minimum time between two refreshes of a conntrack entry's expiry:
 * writing it on every packet would bounce its cache line between CPUs. */
const volatile __u64 ct_refresh_ns = NSEC_PER_SEC;

static __always_inline void addr_set_v4(union ferry_addr *a, __be32 v4)
{
	a->w[0] = 0;
	a->w[1] = 0;
	a->w[2] = bpf_htonl(0x0000ffff);
	a->w[3] = v4;
}

static __always_inline int addr_is_v4(const union ferry_addr *a)
{
	return a->w[0] == 0 && a->w[1] == 0 && a->w[2] == bpf_htonl(0x0000ffff);
}

#endif
