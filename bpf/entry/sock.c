// SPDX-License-Identifier: GPL-2.0
/* cgroup sock_addr hooks of the node's own processes (lib/sock.h):
 * connect()/sendmsg() to a frontend go to a backend, recvmsg() and
 * getpeername() show the frontend again. The IPv6 hooks also serve
 * IPv4-mapped addresses of AF_INET6 sockets (the IPv4 frontends). */
#include "lib/sock.h"

SEC("cgroup/connect4")
int ferry_sock4_connect(struct bpf_sock_addr *ctx)
{
	return sock4_xlate(ctx);
}

SEC("cgroup/sendmsg4")
int ferry_sock4_sendmsg(struct bpf_sock_addr *ctx)
{
	return sock4_xlate(ctx);
}

SEC("cgroup/recvmsg4")
int ferry_sock4_recvmsg(struct bpf_sock_addr *ctx)
{
	return sock4_revnat(ctx);
}

SEC("cgroup/getpeername4")
int ferry_sock4_getpeername(struct bpf_sock_addr *ctx)
{
	return sock4_revnat(ctx);
}

SEC("cgroup/connect6")
int ferry_sock6_connect(struct bpf_sock_addr *ctx)
{
	return sock6_xlate(ctx);
}

SEC("cgroup/sendmsg6")
int ferry_sock6_sendmsg(struct bpf_sock_addr *ctx)
{
	return sock6_xlate(ctx);
}

SEC("cgroup/recvmsg6")
int ferry_sock6_recvmsg(struct bpf_sock_addr *ctx)
{
	return sock6_revnat(ctx);
}

SEC("cgroup/getpeername6")
int ferry_sock6_getpeername(struct bpf_sock_addr *ctx)
{
	return sock6_revnat(ctx);
}
