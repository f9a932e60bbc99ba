#!/usr/bin/env python3
"""Generates one benchmark scale for scripts/bench.sh, the same service set
in three forms:

  gen.py manifests N DIR    Services + Endpoints (kind: List, a few large JSON
                            files) for ferry; the two measured services go in
                            their own file, written last (99-measured.json)
  gen.py iptables N FILE    iptables-restore input in kube-proxy's iptables-mode
                            layout (nat table: KUBE-SERVICES -> KUBE-SVC-* with
                            `statistic` -> KUBE-SEP-* DNAT; KUBE-NODEPORTS)
  gen.py nft N FILE         nft -f input in kube-proxy's nftables-mode layout
                            (verdict map on daddr . l4proto . dport, service
                            chains with numgen to endpoint chains)
  gen.py iptables6 N FILE   the same for the IPv6 family: ip6tables-restore
  gen.py nft6 N FILE        input, and nft -f input (table ip6 kube-proxy),
                            holding the IPv6 twins of the N services (as
                            kube-proxy's IPv6 tables in a dual-stack cluster)
  gen.py endpoints-change DIR OUT   writes to OUT DIR's 99-measured.json with
                            one endpoint of the same-node service removed (or, if
                            already removed, restored)

N counts every service: N-2 fillers and the 2 measured services (scale 1 has
just the 2 measured ones). Each service has 10 endpoints. Fillers point at
unique address:port pairs in pod CIDRs of nodes that do not exist
(198.18.131.0 and up), so no packet is ever sent to them. ClusterIPs: fillers
198.19.1.0 and up (IPv4 for the first 60,000, 2001:db8:ffff::/112 after that:
198.19.0.0/16 holds fewer than 65,536), measured 198.19.255.250 (endpoints
on node1, the client's node) and 198.19.255.251 (endpoints on node2, also
NodePort 30080/30201). ferry's manifests also hold their IPv6 twins beyond
N, measured-local6 2001:db8:ffff::fffa and measured-remote6
2001:db8:ffff::fffb (the same ports, endpoints the pods' IPv6 addresses),
for the IPv6 rows. The kube-proxy IPv6 tables hold the IPv6 twins of every
service: fillers 2001:db8:ffff::100 and up with endpoints in 2001:db8:1:3::/64
(a node that does not exist), and the two measured ones. Every address is
from TESTNET.md's plan.
"""
import ipaddress
import json
import os
import sys

EPS = 10
V4_FILLERS = 60000
NS = "bench"
LOCAL_VIP = "198.19.255.250"
REMOTE_VIP = "198.19.255.251"
LOCAL_EPS = ["198.18.129.%d" % (10 + i) for i in range(EPS)]
REMOTE_EPS = ["198.18.130.%d" % (10 + i) for i in range(EPS)]
LOCAL_VIP6 = "2001:db8:ffff::fffa"
REMOTE_VIP6 = "2001:db8:ffff::fffb"
LOCAL_EPS6 = ["2001:db8:1:1::%d" % (10 + i) for i in range(EPS)]
REMOTE_EPS6 = ["2001:db8:1:2::%d" % (10 + i) for i in range(EPS)]
NODEPORT_CRR = 30080
NODEPORT_IPERF = 30201
NODE1_IP = "198.18.0.11"
NODE1_IP6 = "2001:db8::11"
# pods of every node (the masquerade rules' "not from a pod")
CLUSTER_CIDR, CLUSTER_CIDR6 = "198.18.128.0/17", "2001:db8:1::/48"
POD_CIDRS = ["198.18.129.0/24", "198.18.130.0/24"]
# measured service ports: (name, protocol, port, targetPort, nodePort)
MEASURED_PORTS = [
    ("crr", "TCP", 80, 8080, NODEPORT_CRR),
    ("iperf", "TCP", 5201, 5201, NODEPORT_IPERF),
    ("iperf-udp", "UDP", 5201, 5201, NODEPORT_IPERF),
]


def filler_vip(i):
    if i < V4_FILLERS:
        return str(ipaddress.IPv4Address("198.19.0.0") + 256 + i)
    return str(ipaddress.IPv6Address("2001:db8:ffff::") + 256 + (i - V4_FILLERS))


def filler_eps(i):
    """10 unique (ip, port) endpoints of filler service i."""
    out = []
    for e in range(EPS):
        k = i * EPS + e
        if i < V4_FILLERS:
            ip = str(ipaddress.IPv4Address("198.18.131.0") + (k % 32000))
            port = 8000 + k // 32000
        else:
            ip = str(ipaddress.IPv6Address("2001:db8:1:3::") + k)
            port = 8080
        out.append((ip, port))
    return out


def fillers(n):
    return max(0, n - 2)


def filler_twin6(i):
    """The IPv6 twin of IPv4 filler i (i < V4_FILLERS) for the kube-proxy IPv6
    tables: (vip, [(ip, port)])."""
    vip = str(ipaddress.IPv6Address("2001:db8:ffff::") + 256 + i)
    return vip, [(str(ipaddress.IPv6Address("2001:db8:1:3::") + i * EPS + e), 8080)
                 for e in range(EPS)]


# ---------------------------------------------------------------- manifests
def svc_obj(name, vip, ports, nodeport=False):
    spec = {"clusterIP": vip, "ports": []}
    if nodeport:
        spec["type"] = "NodePort"
    for pname, proto, port, target, np in ports:
        p = {"name": pname, "protocol": proto, "port": port, "targetPort": target}
        if nodeport:
            p["nodePort"] = np
        spec["ports"].append(p)
    return {"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": name, "namespace": NS}, "spec": spec}


def eps_obj(name, addrs, node, ports):
    """Endpoints with one subset per target port (addresses x ports)."""
    by_port = {}
    for ip, port in addrs:
        by_port.setdefault(port, []).append(ip)
    subsets = []
    for port, ips in sorted(by_port.items()):
        subsets.append({
            "addresses": [{"ip": ip, "nodeName": node} for ip in ips],
            "ports": [{"name": pn, "port": port if pt is None else pt, "protocol": proto}
                      for pn, proto, pt in ports],
        })
    return {"apiVersion": "v1", "kind": "Endpoints",
            "metadata": {"name": name, "namespace": NS}, "subsets": subsets}


def measured_objs(drop_one=False):
    local_eps = LOCAL_EPS[:-1] if drop_one else LOCAL_EPS
    ports = [(p[0], p[1], p[3]) for p in MEASURED_PORTS]
    objs = [svc_obj("measured-local", LOCAL_VIP, MEASURED_PORTS),
            svc_obj("measured-remote", REMOTE_VIP, MEASURED_PORTS, nodeport=True)]
    for name, eps, node in (("measured-local", local_eps, "node1"),
                            ("measured-remote", REMOTE_EPS, "node2")):
        subsets = []
        for addrs, pts in ((eps, [p for p in ports if p[1] == "TCP"]),
                           (eps[:1], [p for p in ports if p[1] == "UDP"])):
            subsets.append({"addresses": [{"ip": ip, "nodeName": node} for ip in addrs],
                            "ports": [{"name": pn, "port": pt, "protocol": proto} for pn, proto, pt in pts]})
        objs.append({"apiVersion": "v1", "kind": "Endpoints",
                     "metadata": {"name": name, "namespace": NS}, "subsets": subsets})
    # the IPv6 twins (after the IPv4 objects: endpoints_change reads items[2])
    for name, vip, eps, node in (("measured-local6", LOCAL_VIP6, LOCAL_EPS6, "node1"),
                                 ("measured-remote6", REMOTE_VIP6, REMOTE_EPS6, "node2")):
        objs.append(svc_obj(name, vip, MEASURED_PORTS))
        subsets = []
        for addrs, pts in ((eps, [p for p in ports if p[1] == "TCP"]),
                           (eps[:1], [p for p in ports if p[1] == "UDP"])):
            subsets.append({"addresses": [{"ip": ip, "nodeName": node} for ip in addrs],
                            "ports": [{"name": pn, "port": pt, "protocol": proto} for pn, proto, pt in pts]})
        objs.append({"apiVersion": "v1", "kind": "Endpoints",
                     "metadata": {"name": name, "namespace": NS}, "subsets": subsets})
    return objs


def measured_eps(pname, eps):
    """The UDP port has one endpoint, the pod's primary address: iperf3's
    UDP server answers from the address routing picks, so only that address
    can be translated back."""
    return eps[:1] if pname == "iperf-udp" else eps


def write_list(path, items):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump({"apiVersion": "v1", "kind": "List", "items": items}, f, separators=(",", ":"))
    os.rename(tmp, path)


def gen_manifests(n, d):
    """Writes into d: fillers-NNN.json (2,000 services each: under the agent's
    limits of 3 MiB and 10,000 items per file) then 99-measured.json."""
    os.makedirs(d, exist_ok=True)
    chunk = 2000
    nf = fillers(n)
    for c, start in enumerate(range(0, nf, chunk)):
        items = []
        for i in range(start, min(nf, start + chunk)):
            name = "svc-%06d" % i
            items.append(svc_obj(name, filler_vip(i), [("http", "TCP", 80, 8080, 0)]))
            eps = filler_eps(i)
            items.append(eps_obj(name, eps, "node-x", [("http", "TCP", None)]))
        write_list(os.path.join(d, "fillers-%03d.json" % c), items)
    write_list(os.path.join(d, "99-measured.json"), measured_objs())


def endpoints_change(d, out):
    """Writes to `out` the measured services' file of `d` with one endpoint
    of the same-node service removed (or restored, if it is missing)."""
    with open(os.path.join(d, "99-measured.json")) as f:
        cur = json.load(f)
    n_local = len(cur["items"][2]["subsets"][0]["addresses"])
    write_list(out, measured_objs(drop_one=(n_local == EPS)))


# ---------------------------------------------------------------- iptables
def chain_hash(s):
    import base64
    import hashlib
    return base64.b32encode(hashlib.sha256(s.encode()).digest()).decode()[:16]


def all_services(n, v6=False):
    """(name, vip, [(portname, proto, port, nodePort)], [(ip, targetPort)] per port)
    of one family's table: IPv4, or (v6) the IPv6 twins, without node ports."""
    out = []
    for i in range(fillers(n)):
        if i >= V4_FILLERS:
            continue  # the IPv4 tables hold IPv4 services only (as kube-proxy's per-family tables)
        vip, eps = filler_twin6(i) if v6 else (filler_vip(i), filler_eps(i))
        out.append(("svc-%06d" % i, vip, [("http", "tcp", 80, 0)], {"http": eps}))
    measured = ((("measured-local6", LOCAL_VIP6, LOCAL_EPS6), ("measured-remote6", REMOTE_VIP6, REMOTE_EPS6))
                if v6 else (("measured-local", LOCAL_VIP, LOCAL_EPS), ("measured-remote", REMOTE_VIP, REMOTE_EPS)))
    for name, vip, eps in measured:
        ports = [(p[0], p[1].lower(), p[2], p[4] if name == "measured-remote" else 0)
                 for p in MEASURED_PORTS]
        out.append((name, vip, ports,
                    {p[0]: [(ip, p[3]) for ip in measured_eps(p[0], eps)] for p in MEASURED_PORTS}))
    return out


def gen_iptables(n, path, v6=False):
    # family: host prefix length, the pods' CIDR, DNAT's address:port form
    plen, cluster = ("128", CLUSTER_CIDR6) if v6 else ("32", CLUSTER_CIDR)
    hostport = (lambda ip, p: "[%s]:%d" % (ip, p)) if v6 else (lambda ip, p: "%s:%d" % (ip, p))
    L = []
    chains = [":KUBE-SERVICES - [0:0]", ":KUBE-NODEPORTS - [0:0]", ":KUBE-POSTROUTING - [0:0]",
              ":KUBE-MARK-MASQ - [0:0]"]
    rules = [
        "-A PREROUTING -m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES",
        "-A OUTPUT -m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES",
        "-A POSTROUTING -m comment --comment \"kubernetes postrouting rules\" -j KUBE-POSTROUTING",
        "-A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN",
        "-A KUBE-POSTROUTING -j MARK --set-xmark 0x4000/0x0",
        "-A KUBE-POSTROUTING -m comment --comment \"kubernetes service traffic requiring SNAT\" "
        "-j MASQUERADE --random-fully",
        "-A KUBE-MARK-MASQ -j MARK --set-xmark 0x4000/0x4000",
    ]
    svc_rules = []
    for name, vip, ports, eps in all_services(n, v6):
        for pname, proto, port, nodeport in ports:
            sp = "%s/%s:%s" % (NS, name, pname)
            svc = "KUBE-SVC-" + chain_hash(sp + proto)
            chains.append(":%s - [0:0]" % svc)
            svc_rules.append("-A KUBE-SERVICES -d %s/%s -p %s -m comment --comment \"%s cluster IP\" "
                             "-m %s --dport %d -j %s" % (vip, plen, proto, sp, proto, port, svc))
            rules.append("-A %s ! -s %s -d %s/%s -p %s -m comment --comment \"%s cluster IP\" "
                         "-m %s --dport %d -j KUBE-MARK-MASQ" % (svc, cluster, vip, plen, proto, sp, proto, port))
            if nodeport:
                ext = "KUBE-EXT-" + chain_hash(sp + proto)
                chains.append(":%s - [0:0]" % ext)
                rules.append("-A KUBE-NODEPORTS -p %s -m comment --comment \"%s\" -m %s --dport %d -j %s"
                             % (proto, sp, proto, nodeport, ext))
                rules.append("-A %s -m comment --comment \"masquerade traffic for %s external destinations\" "
                             "-j KUBE-MARK-MASQ" % (ext, sp))
                rules.append("-A %s -j %s" % (ext, svc))
            endpoints = eps[pname]
            k = len(endpoints)
            for j, (ip, tport) in enumerate(endpoints):
                sep = "KUBE-SEP-" + chain_hash(sp + proto + ip + str(tport))
                chains.append(":%s - [0:0]" % sep)
                stat = ""
                if j < k - 1:
                    stat = " -m statistic --mode random --probability %.11f" % (1.0 / (k - j))
                rules.append("-A %s -m comment --comment \"%s -> %s\"%s -j %s"
                             % (svc, sp, hostport(ip, tport), stat, sep))
                rules.append("-A %s -s %s/%s -m comment --comment \"%s\" -j KUBE-MARK-MASQ"
                             % (sep, ip, plen, sp))
                rules.append("-A %s -p %s -m comment --comment \"%s\" -m %s -j DNAT --to-destination %s"
                             % (sep, proto, sp, proto, hostport(ip, tport)))
    svc_rules.append("-A KUBE-SERVICES -m comment --comment \"kubernetes service nodeports; NOTE: this must "
                     "be the last rule in this chain\" -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS")
    L.append("*nat")
    L.extend(chains)
    L.extend(rules[:7])
    L.extend(svc_rules)
    L.extend(rules[7:])
    L.append("COMMIT")
    with open(path, "w") as f:
        f.write("\n".join(L) + "\n")


# ---------------------------------------------------------------- nftables
def gen_nft(n, path, v6=False):
    # family: table family, address type and match, the pods' CIDR, dnat's address:port form
    fam, atype, ip, cluster, node_ip = (("ip6", "ipv6_addr", "ip6", CLUSTER_CIDR6, NODE1_IP6) if v6 else
                                        ("ip", "ipv4_addr", "ip", CLUSTER_CIDR, NODE1_IP))
    hostport = (lambda a, p: "[%s]:%d" % (a, p)) if v6 else (lambda a, p: "%s:%d" % (a, p))
    T = "%s kube-proxy" % fam
    L = ["table %s {" % T,
         "  comment \"rules for kube-proxy\"",
         "  set cluster-ips { type %s; }" % atype,
         "  set nodeport-ips { type %s; elements = { %s }; }" % (atype, node_ip),
         "  map service-ips { type %s . inet_proto . inet_service : verdict; }" % atype,
         "  map service-nodeports { type inet_proto . inet_service : verdict; }",
         "  chain mark-for-masquerade {",
         "    meta mark set meta mark | 0x4000",
         "  }",
         "  chain masquerading {",
         "    meta mark & 0x4000 == 0 return",
         "    meta mark set meta mark ^ 0x4000",
         "    masquerade fully-random",
         "  }",
         "  chain services {",
         "    %s daddr . meta l4proto . th dport vmap @service-ips" % ip,
         "    %s daddr @nodeport-ips meta l4proto . th dport vmap @service-nodeports" % ip,
         "  }",
         "  chain nat-prerouting {",
         "    type nat hook prerouting priority dstnat; policy accept;",
         "    jump services",
         "  }",
         "  chain nat-output {",
         "    type nat hook output priority -100; policy accept;",
         "    jump services",
         "  }",
         "  chain nat-postrouting {",
         "    type nat hook postrouting priority srcnat; policy accept;",
         "    jump masquerading",
         "  }",
         "}"]
    elems_ips, elems_svc, elems_np = [], [], []
    for name, vip, ports, eps in all_services(n, v6):
        elems_ips.append(vip)
        for pname, proto, port, nodeport in ports:
            sp = "%s/%s/%s/p%d" % (NS, name, proto, port)
            h = chain_hash(sp)
            svc = "service-%s-%s" % (h[:8], sp.replace("/", "/"))
            endpoints = eps[pname]
            ep_chains = []
            for eip, tport in endpoints:
                ep = "endpoint-%s-%s/%s/%s__%s/%d" % (chain_hash(sp + eip + str(tport))[:8], NS, name, proto,
                                                     eip.replace(":", "-"), tport)  # no ':' in a name
                ep_chains.append(ep)
                L.append("add chain %s %s" % (T, ep))
                L.append("add rule %s %s %s saddr %s jump mark-for-masquerade" % (T, ep, ip, eip))
                L.append("add rule %s %s meta l4proto %s dnat to %s"
                         % (T, ep, proto, hostport(eip, tport)))
            L.append("add chain %s %s" % (T, svc))
            L.append("add rule %s %s %s daddr %s %s dport %d %s saddr != %s "
                     "jump mark-for-masquerade" % (T, svc, ip, vip, proto, port, ip, cluster))
            vm = ", ".join("%d : goto %s" % (j, c) for j, c in enumerate(ep_chains))
            L.append("add rule %s %s numgen random mod %d vmap { %s }"
                     % (T, svc, len(ep_chains), vm))
            elems_svc.append("%s . %s . %d : goto %s" % (vip, proto, port, svc))
            if nodeport:
                ext = "external-%s-%s" % (h[:8], sp)
                L.append("add chain %s %s" % (T, ext))
                L.append("add rule %s %s jump mark-for-masquerade" % (T, ext))
                L.append("add rule %s %s goto %s" % (T, ext, svc))
                elems_np.append("%s . %d : goto %s" % (proto, nodeport, ext))
    for chunk in range(0, len(elems_ips), 1000):
        L.append("add element %s cluster-ips { %s }" % (T, ", ".join(elems_ips[chunk:chunk + 1000])))
    for chunk in range(0, len(elems_svc), 1000):
        L.append("add element %s service-ips { %s }" % (T, ", ".join(elems_svc[chunk:chunk + 1000])))
    if elems_np:
        L.append("add element %s service-nodeports { %s }" % (T, ", ".join(elems_np)))
    with open(path, "w") as f:
        f.write("\n".join(L) + "\n")


def main():
    if len(sys.argv) == 4 and sys.argv[1] == "endpoints-change":
        endpoints_change(sys.argv[2], sys.argv[3])
        return
    gens = {"manifests": gen_manifests, "iptables": gen_iptables, "nft": gen_nft,
            "iptables6": lambda n, f: gen_iptables(n, f, v6=True), "nft6": lambda n, f: gen_nft(n, f, v6=True)}
    if len(sys.argv) != 4 or sys.argv[1] not in gens:
        sys.exit(__doc__)
    gens[sys.argv[1]](int(sys.argv[2]), sys.argv[3])


if __name__ == "__main__":
    main()
