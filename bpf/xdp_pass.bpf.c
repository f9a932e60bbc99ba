// SPDX-License-Identifier: GPL-2.0
/* For the test LAN's switch ports: a veth drops frames sent into it with
 * XDP_TX unless its peer runs an XDP program; this one accepts all, as a
 * real switch port would. tc_pass is its tc twin: the empty programs that
 * the benchmark's per-packet figures are compared with. */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>

SEC("xdp")
int xdp_pass(struct xdp_md *ctx)
{
	return XDP_PASS;
}

SEC("tc")
int tc_pass(struct __sk_buff *skb)
{
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
