/* SPDX-License-Identifier: Apache-2.0
 *
 * The ABI between ferry's BPF programs and the agent: map keys and values.
 * This header is the only code compiled by both clang -target bpf and the
 * C++ compiler. Rules: fixed-width types, every byte named (explicit pad
 * fields), sizes and offsets asserted, addresses always 16 bytes so IPv6
 * needs no new layout (IPv4 is stored IPv4-mapped, ::ffff:a.b.c.d).
 * Addresses and ports are in network byte order; everything else is host
 * order. Callers zero keys and values before filling them.
 */
#ifndef FERRY_ABI_H
#define FERRY_ABI_H

#include <linux/types.h>

#ifdef __cplusplus
#define FERRY_STATIC_ASSERT static_assert
#else
#define FERRY_STATIC_ASSERT _Static_assert
#endif

#define FERRY_OFFSETOF(t, f) __builtin_offsetof(t, f)

union ferry_addr {
	__u8 b[16];
	__be32 w[4];
};

/* Scope of a service frontend: ClusterIPs are reachable only from inside
 * the cluster; external frontends (NodePort, externalIPs, LoadBalancer)
 * come with the NodePort work and use the same maps. */
enum ferry_scope {
	FERRY_SCOPE_CLUSTER = 0,
	FERRY_SCOPE_EXTERNAL = 1,
};

/* Service map. One "master" entry (slot 0) per frontend carries the
 * number of backend slots; slots 1..count map to backend ids. A new flow
 * picks a slot; the selection step reads only the master and one slot, so
 * another algorithm (Maglev table, affinity) plugs in without changing
 * this layout. Shrinking writes the moved slot before lowering count, so a
 * concurrent reader never sees a hole. */
struct ferry_svc_key {
	union ferry_addr addr;
	__be16 port;
	__u8 proto; /* IPPROTO_TCP, IPPROTO_UDP */
	__u8 scope; /* enum ferry_scope */
	__u16 slot; /* 0: master entry */
	__u16 pad;
};

enum ferry_svc_flags {
	FERRY_SVC_F_NONE = 0,
	/* externalTrafficPolicy: Local. Only this node's endpoints are
	 * programmed, the client address is kept (no SNAT), and without a
	 * local endpoint traffic is dropped rather than rejected. */
	FERRY_SVC_F_LOCAL = 1 << 0,
	/* loadBalancerSourceRanges: only sources in ferry_src_ranges under
	 * this frontend's svc_id are served. */
	FERRY_SVC_F_SRC_RANGES = 1 << 1,
	/* External frontends: new flows pick the backend from the frontend's
	 * Maglev table (ferry_maglev[svc_id]) by a hash of the flow, so every
	 * node picks the same one (bpf/lib/lb.h). */
	FERRY_SVC_F_MAGLEV = 1 << 7,
};

/* LPM key of ferry_src_ranges: prefixlen counts the bits of svc_id (32)
 * plus the address bits that matter (96 + n for an IPv4 /n). */
struct ferry_src_range_key {
	__u32 prefixlen;
	__u32 svc_id;
	union ferry_addr addr;
};

struct ferry_svc_value {
	__u32 backend_id; /* slot > 0: the backend; master: 0 */
	__u32 svc_id;     /* stable service id (stats, affinity, later) */
	__u16 count;      /* master: number of backend slots; 0 rejects */
	__u16 flags;      /* enum ferry_svc_flags */
	/* master: sessionAffinity ClientIP timeout in seconds; 0: none */
	__u32 affinity_timeout_s;
};

/* Backend map: id -> endpoint address. Ids are allocated by the agent and
 * not reused while it runs, so a conntrack entry that names an id whose
 * backend is gone is detected and the flow re-balanced. */
enum ferry_backend_flags {
	FERRY_BE_F_NONE = 0,
	FERRY_BE_F_LOCAL = 1 << 0, /* endpoint on this node */
};

struct ferry_backend {
	union ferry_addr addr;
	__be16 port;
	__u8 proto;
	__u8 flags; /* enum ferry_backend_flags */
	__u32 pad;
};

/* Service membership: (service id, backend id) -> 1 while the backend is
 * one of the frontend's current backends. A conntrack entry names both
 * ids; every packet of an established flow checks the pair here, so a
 * flow leaves a backend that left its service even when the backend
 * stays in another service (netfilter flushes such flows too). */
struct ferry_member_key {
	__u32 svc_id;
	__u32 backend_id;
};

/* ferry_members values. NEW: the backend takes new flows (it has a slot),
 * so a session-affinity entry or Maglev position naming it may be used.
 * KEEP: only its established flows stay (e.g. a terminating endpoint);
 * new flows, affinity included, go elsewhere. Conntrack accepts both. */
enum ferry_member_flags {
	FERRY_MEMBER_NEW = 1 << 0,
	FERRY_MEMBER_KEEP = 1 << 1,
};

/* Connection tracking, shaped like netfilter's two tuple hashes. A
 * translated flow has two entries: FWD keyed by the client's original
 * tuple (client -> frontend) and REV keyed by the reply tuple the backend
 * sends (backend -> the flow's source towards it: the client, or the
 * node under SNAT, with a remapped port after a clash). Both entries
 * hold the whole other tuple, so a rewrite never keeps a field from the
 * packet. */
enum ferry_ct_dir {
	FERRY_CT_FWD = 0,
	FERRY_CT_REV = 1,
};

struct ferry_ct_key {
	union ferry_addr saddr;
	union ferry_addr daddr;
	__be16 sport;
	__be16 dport;
	__u8 proto;
	__u8 dir; /* enum ferry_ct_dir */
	__u16 pad;
};

enum ferry_ct_flags {
	FERRY_CT_F_NONE = 0,
	FERRY_CT_F_HAIRPIN = 1 << 0,  /* client is its own backend: sent back out */
	FERRY_CT_F_CLOSING = 1 << 1,  /* FIN or RST seen: short timeout */
	FERRY_CT_F_SNAT = 1 << 2,     /* source NATed to the node (hairpin, remote backend) */
	FERRY_CT_F_EXTERNAL = 1 << 3, /* entered through an external frontend */
	FERRY_CT_F_REMAP = 1 << 4,    /* source port remapped: the reply tuple clashed */
	FERRY_CT_F_NULLBIND = 1 << 5, /* no service: a direct flow given its own reply
				       * tuple (netfilter's null binding) */
};

struct ferry_ct_value {
	/* FWD: backend address (new destination). REV: frontend (new source). */
	union ferry_addr nat_addr;
	/* FWD: source address used towards the backend (the client's own
	 * unless SNAT). REV: the client's address (new destination). */
	union ferry_addr alt_addr;
	__u64 expires_ns; /* bpf_ktime_get_ns() time */
	__be16 nat_port;  /* FWD: backend port. REV: frontend port. */
	__u16 flags;      /* enum ferry_ct_flags */
	__u32 backend_id; /* 0 for a null binding */
	__u32 svc_id;     /* the frontend's service id; 0 for a null binding */
	__be16 alt_port;  /* FWD: source port towards the backend. REV: client port. */
	__u16 pad;
};

/* Socket-level load balancing (cgroup connect/sendmsg hooks) for
 * processes of the node itself: remembers which frontend a socket's
 * backend stands for, so getpeername() and recvmsg() show the frontend. */
struct ferry_sock_key {
	__u64 cookie;
	union ferry_addr addr; /* backend */
	__be16 port;           /* backend */
	__u8 proto;
	__u8 pad[5];
};

struct ferry_sock_value {
	union ferry_addr addr; /* frontend */
	__be16 port;           /* frontend */
	__u16 pad;
	__u32 backend_id;      /* the one picked; 0 = unknown (older agent) */
};

/* Runtime settings that the agent may change without reloading programs
 * (array map, one entry). */
struct ferry_config {
	/* The node's address, used as source where a flow must be source
	 * NATed: hairpin (a pod reaching itself) and external traffic sent
	 * on to another node's endpoint. */
	union ferry_addr snat4;
	union ferry_addr snat6;
	/* When non-zero, the programs use it as "now" (tests only). */
	__u64 now_override_ns;
	__u64 pad;
};

/* Node addresses (hash: address -> flags): where NodePorts are served. */
struct ferry_node_addr {
	__u32 flags;
};

/* The hooks, each with its own row of counters, so the counters show
 * which path (XDP or tc) handled a flow. */
enum ferry_hook {
	FERRY_HOOK_FROM_POD = 0, /* tc ingress, pod's host-side veth */
	FERRY_HOOK_TO_POD,       /* tc egress, pod's host-side veth */
	FERRY_HOOK_EXT_XDP,      /* XDP, external device */
	FERRY_HOOK_EXT_TC_IN,    /* tc ingress, external device */
	FERRY_HOOK_EXT_TC_OUT,   /* tc egress, external device */
	FERRY_HOOK_SOCK,         /* cgroup socket hooks */
	FERRY_HOOK_MAX,
};

#define FERRY_HOOK_NAMES "from_pod", "to_pod", "ext_xdp", "ext_tc_in", "ext_tc_out", "sock"

/* Per-CPU counters, indexed by hook * FERRY_STAT_MAX + reason. Every
 * verdict a program takes is counted under exactly one reason. */
enum ferry_stat {
	FERRY_STAT_PASS = 0,          /* not for a service: untouched */
	FERRY_STAT_MALFORMED,         /* truncated / bad header: untouched */
	FERRY_STAT_FRAGMENT,          /* IP fragment: untouched */
	FERRY_STAT_FWD_NEW,           /* new flow, backend chosen */
	FERRY_STAT_FWD_ESTABLISHED,   /* translated using conntrack */
	FERRY_STAT_FWD_RESELECT,      /* conntrack named a removed backend */
	FERRY_STAT_REVNAT,            /* reply translated back */
	FERRY_STAT_HAIRPIN,           /* pod reached itself */
	FERRY_STAT_REJECT_NO_BACKEND, /* ICMP port unreachable sent */
	FERRY_STAT_DROP_NO_BACKEND,   /* could not build the reject */
	FERRY_STAT_DROP_CT_FULL,      /* conntrack insert failed */
	FERRY_STAT_DROP_REWRITE,      /* a helper failed while rewriting */
	FERRY_STAT_SOCK_LB,           /* node socket connect translated */
	FERRY_STAT_SOCK_REJECT,       /* node socket refused: no backend */
	FERRY_STAT_DROP_NO_LOCAL,     /* policy Local, no local endpoint */
	FERRY_STAT_TO_TC,             /* XDP left the packet to tc (reject, no neighbour) */
	FERRY_STAT_DROP_NO_ROUTE,     /* no route towards the backend */
	FERRY_STAT_DROP_SNAT_PORTS,   /* no free source port for SNAT */
	FERRY_STAT_DROP_SRC_RANGE,    /* source outside loadBalancerSourceRanges */
	FERRY_STAT_ICMP_RELATED,      /* ICMP error about a tracked flow translated */
	FERRY_STAT_CT_REPLACED,       /* a new flow took a closed flow's tuple */
	FERRY_STAT_NULLBIND,          /* direct flow remapped off a translated reply tuple */
	FERRY_STAT_MAX,
};

#define FERRY_STAT_NAMES                                                       \
	"pass", "malformed", "fragment", "fwd_new",                            \
	    "fwd_established", "fwd_reselect", "revnat", "hairpin",            \
	    "reject_no_backend", "drop_no_backend", "drop_ct_full",            \
	    "drop_rewrite", "sock_lb", "sock_reject", "drop_no_local", "to_tc", \
	    "drop_no_route", "drop_snat_ports", "drop_src_range",              \
	    "icmp_related", "ct_replaced", "nullbind"

/* sessionAffinity: ClientIP (ferry_affinity, LRU hash): the backend a
 * client address last reached through a frontend, and when (the clock of
 * ferry_now()). Younger than the master's affinity_timeout_s and still a
 * member: new flows go there, and the time is refreshed (kube-proxy's
 * `recent` match). */
struct ferry_affinity_key {
	__u32 svc_id;
	__u32 pad;
	union ferry_addr client;
};

struct ferry_affinity_value {
	__u32 backend_id;
	__u32 pad;
	__u64 last_used_ns;
};

/* Maglev lookup tables (ferry_maglev, hash: svc_id -> __u32 backend id
 * per table position; the value is the whole table, replaced at once).
 * The size M is a prime, set at load (--maglev-table-size). */
#define FERRY_MAGLEV_TABLE_DEFAULT 16381
#define FERRY_MAGLEV_TABLE_MAX 131071

FERRY_STATIC_ASSERT(sizeof(union ferry_addr) == 16, "ferry_addr");
FERRY_STATIC_ASSERT(sizeof(struct ferry_svc_key) == 24, "svc_key");
FERRY_STATIC_ASSERT(FERRY_OFFSETOF(struct ferry_svc_key, slot) == 20, "svc_key.slot");
FERRY_STATIC_ASSERT(sizeof(struct ferry_svc_value) == 16, "svc_value");
FERRY_STATIC_ASSERT(sizeof(struct ferry_backend) == 24, "backend");
FERRY_STATIC_ASSERT(sizeof(struct ferry_ct_key) == 40, "ct_key");
FERRY_STATIC_ASSERT(FERRY_OFFSETOF(struct ferry_ct_key, proto) == 36, "ct_key.proto");
FERRY_STATIC_ASSERT(sizeof(struct ferry_ct_value) == 56, "ct_value");
FERRY_STATIC_ASSERT(FERRY_OFFSETOF(struct ferry_ct_value, expires_ns) == 32, "ct_value.expires");
FERRY_STATIC_ASSERT(sizeof(struct ferry_sock_key) == 32, "sock_key");
FERRY_STATIC_ASSERT(sizeof(struct ferry_sock_value) == 24, "sock_value");
FERRY_STATIC_ASSERT(sizeof(struct ferry_config) == 48, "config");
FERRY_STATIC_ASSERT(sizeof(struct ferry_src_range_key) == 24, "src_range_key");
FERRY_STATIC_ASSERT(sizeof(struct ferry_member_key) == 8, "member_key");
FERRY_STATIC_ASSERT(sizeof(struct ferry_affinity_key) == 24, "affinity_key");
FERRY_STATIC_ASSERT(sizeof(struct ferry_affinity_value) == 16, "affinity_value");

#endif /* FERRY_ABI_H */
