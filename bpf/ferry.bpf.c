// SPDX-License-Identifier: GPL-2.0
/* ferry's dataplane: one BPF object (one skeleton for the agent) built
 * from one entry file per attach point, as Cilium's bpf_*.c files. Entry
 * programs only dispatch: parse, call the path (bpf/lib), turn the
 * outcome (an enum ferry_stat) into a verdict and a counter. */
#include "entry/from_pod.c"
#include "entry/to_pod.c"
#include "entry/ext_xdp.c"
#include "entry/ext_in.c"
#include "entry/ext_out.c"
#include "entry/sock.c"
#include "entry/sock_iter.c"

char LICENSE[] SEC("license") = "GPL";
