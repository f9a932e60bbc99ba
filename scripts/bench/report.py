#!/usr/bin/env python3
"""report.py DIR: turns scripts/bench.sh's raw TSVs in DIR (machine.tsv,
traffic.tsv, programming.tsv, bpf.tsv) into DIR/results.md (Markdown tables,
every figure also as a ratio to the direct path of the same run) and PNG
plots drawn with gnuplot."""
import csv
import os
import subprocess
import sys

DPS = ["direct", "ferry", "iptables", "nft"]
PATHS = [("local", "pod -> service, endpoints on the same node"),
         ("remote", "pod -> service, endpoints on another node"),
         ("nodeport", "external client -> NodePort, endpoints on another node")]
# Paths with IPv6 twins (bench.sh's local6 / remote6): their rows follow the
# IPv4 rows of the same table, each with its ratio to IPv6 direct.
V6_PATHS = {"local": "local6", "remote": "remote6"}
BPF_CASES = ["empty_xdp", "empty_tc", "clusterip_new", "clusterip_established", "clusterip_reply",
             "nodeport_xdp_new", "nodeport_xdp_established", "nodeport_tc_new",
             "nodeport_tc_established"]


def read(path):
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return list(csv.DictReader(f, delimiter="\t"))


def num(v):
    try:
        return float(v)
    except (TypeError, ValueError):
        return None


def fmt(v, digits=0):
    x = num(v)
    if x is None:
        return v if v else "-"
    if digits == 0:
        return "{:,.0f}".format(x)
    return "{:,.{}f}".format(x, digits)


def scale_label(n):
    return "-" if n == "0" else "{:,}".format(int(n))


class Report:
    def __init__(self, d):
        self.d = d
        self.machine = [(r[0], r[1]) for r in csv.reader(open(os.path.join(d, "machine.tsv")), delimiter="\t")]
        self.traffic = {}
        for r in read(os.path.join(d, "traffic.tsv")):
            self.traffic[(r["dataplane"], r["services"], r["path"], r["metric"])] = r["value"]
        self.prog = {}
        for r in read(os.path.join(d, "programming.tsv")):
            self.prog[(r["dataplane"], r["services"], r["metric"])] = r["value"]
        self.bpf = {}
        for r in read(os.path.join(d, "bpf.tsv")):
            self.bpf[(r["case"], r["services"])] = r
        self.scales = sorted({int(k[1]) for k in self.traffic if k[0] != "direct"} |
                             {int(k[1]) for k in self.prog} | {int(k[1]) for k in self.bpf})

    def t(self, dp, n, path, metric):
        return self.traffic.get((dp, "0" if dp == "direct" else str(n), path, metric))

    def ratio(self, dp, n, path, metric):
        v, base = num(self.t(dp, n, path, metric)), num(self.t("direct", 0, path, metric))
        if v is None or not base:
            return None
        return v / base

    def cell(self, dp, n, path, metric, digits=0):
        v = self.t(dp, n, path, metric)
        if v is None:
            return None
        r = self.ratio(dp, n, path, metric)
        s = fmt(v, digits)
        if r is not None and dp != "direct":
            s += " (%.2fx)" % r
        return s

    def traffic_table(self, path):
        out = ["| dataplane | services | connections/s (x direct) | connect p50 / p99 us | "
               "TCP 1 stream Gbit/s | TCP 4 streams Gbit/s | UDP 64 B kpps |",
               "|---|---:|---:|---:|---:|---:|---:|"]
        rows = [("direct", 0, path)] + [(dp, n, path) for n in self.scales for dp in DPS[1:]]
        if path in V6_PATHS:
            p6 = V6_PATHS[path]
            rows += [("direct", 0, p6)] + [(dp, n, p6) for n in self.scales for dp in DPS[1:]]
        for dp, n, path in rows:
            v6 = path.endswith("6")
            label = dp + (" IPv6" if v6 else "")
            # kube-proxy's IPv6 table is loaded on its own (program6_all_ms)
            pk = "program6_all_ms" if v6 and dp in ("iptables", "nft") else "program_all_ms"
            crr = self.cell(dp, n, path, "crr_rate")
            if crr is None and self.prog.get((dp, str(n), pk)) not in ("timeout", "fail"):
                continue
            if crr is None:
                crr = "not run: programming %s" % self.prog.get((dp, str(n), pk))
            lat = "%s / %s" % (fmt(self.t(dp, n, path, "crr_connect_p50_us")),
                               fmt(self.t(dp, n, path, "crr_connect_p99_us")))
            out.append("| %s | %s | %s | %s | %s | %s | %s |" % (
                label, scale_label(str(n)), crr, lat,
                self.cell(dp, n, path, "tcp1_gbps", 2) or "-",
                self.cell(dp, n, path, "tcp4_gbps", 2) or "-",
                self.cell(dp, n, path, "udp64_kpps", 1) or "-"))
        return out

    def prog_table(self):
        out = ["| dataplane | services | all services programmed, ms | single endpoint change, ms | "
               "agent RSS MiB | BPF map memory MiB |", "|---|---:|---:|---:|---:|---:|"]
        for n in self.scales:
            for dp in DPS[1:]:
                p = self.prog.get((dp, str(n), "program_all_ms"))
                if p is None:
                    continue
                if dp == "ferry":
                    ch = [self.prog.get((dp, str(n), "endpoint_change_ms_%d" % k)) for k in (1, 2, 3, 4)]
                    ag = [self.prog.get((dp, str(n), "endpoint_change_agent_ms_%d" % k)) for k in (1, 2, 3, 4)]
                    ch = " / ".join(fmt(c) for c in ch if c is not None) or "-"
                    ag = [a for a in ag if num(a) is not None]
                    if ag:
                        ch += " (agent sync %s)" % " / ".join(fmt(a, 2) for a in ag)
                    inner = self.prog.get((dp, str(n), "program_all_agent_ms"))
                    p = fmt(p) + (" (agent sync %s)" % fmt(inner, 1) if inner else "")
                    rss = fmt(self.prog.get((dp, str(n), "agent_rss_mb")), 1)
                    mem = fmt(self.prog.get((dp, str(n), "bpf_map_mb")), 1)
                else:
                    p, ch, rss, mem = fmt(p), "-", "-", "-"
                out.append("| %s | %s | %s | %s | %s | %s |" % (dp, scale_label(str(n)), p, ch, rss, mem))
                p6 = self.prog.get((dp, str(n), "program6_all_ms"))
                if p6 is not None:  # kube-proxy's IPv6 table of the same services
                    out.append("| %s, IPv6 table | %s | %s | - | - | - |" % (dp, scale_label(str(n)), fmt(p6)))
        return out

    # Issue 12's "now" column (measured on main before the event-driven
    # control plane) and its targets, beside this run's figures.
    EVENT_ROWS = [
        ("one endpoint edit -> maps written, agent p50 / p99 ms", "change_agent_ms",
         {"10000": "800-1,400", "100000": "18,000-21,000"}, {"10000": "< 2 / < 5", "100000": "p99 < 10"}),
        ("one endpoint edit -> control socket sees it, p50 / p99 ms", "change_outside_ms",
         {"10000": "median 2,250 (traffic)"}, {"10000": "< 2 / < 5", "100000": "p99 < 10"}),
        ("1,000 slices added in a burst -> all applied, ms", "burst_add_all_applied_ms",
         {"100000": "each batch waits 18,000-21,000"}, {"100000": "< 1,000"}),
        ("control request round trip during the burst, p50 / p99 ms", "burst_add_control_rtt_ms",
         {"10000": "DNS stalled 2,800"}, {"*": "p99 < 10"}),
        ("control request round trip during initial programming, p50 / p99 ms", "program_control_rtt_ms",
         {}, {"*": "p99 < 10"}),
        ("initial programming (files moved in -> last service synced), ms", "program_all_ms",
         {"10000": "2,200", "100000": "10,000"}, {"10000": "< 500", "100000": "< 5,000"}),
        ("agent CPU during initial programming (all its threads), s", "program_all_cpu_s", {}, {}),
        ("agent RSS, MiB", "agent_rss_mb", {"100000": "1,600"}, {"100000": "< 400"}),
    ]

    def event_table(self):
        out = ["| measure | services | before (issue 12) | this run | target |", "|---|---:|---:|---:|---:|"]
        for label, metric, before, target in self.EVENT_ROWS:
            for n in self.scales:
                k = str(n)
                if metric.endswith("_ms") and metric not in ("program_all_ms", "burst_add_all_applied_ms"):
                    p50 = self.prog.get(("ferry", k, metric + "_p50"))
                    p99 = self.prog.get(("ferry", k, metric + "_p99"))
                    if p50 is None:
                        continue
                    now = "%s / %s" % (fmt(p50, 2), fmt(p99, 2))
                else:
                    v = self.prog.get(("ferry", k, metric))
                    if v is None:
                        continue
                    now = fmt(v, 1)
                out.append("| %s | %s | %s | %s | %s |" % (
                    label, scale_label(k), before.get(k, "-"), now, target.get(k, target.get("*", "-"))))
        return out

    def bpf_table(self):
        scales = sorted({int(k[1]) for k in self.bpf})
        out = ["| case | " + " | ".join(scale_label(str(n)) + " services" for n in scales) + " |",
               "|---|" + "---:|" * len(scales)]
        for c in BPF_CASES:
            cells = []
            for n in scales:
                r = self.bpf.get((c, str(n)))
                if not r:
                    cells.append("-")
                    continue
                s = "%s ns" % r["median_ns"]
                if r["ok"] != "1":
                    s += " (wrong path!)"
                cells.append(s)
            if len(scales) > 1:
                a, b = num(self.bpf.get((c, str(scales[0])), {}).get("median_ns")), \
                    num(self.bpf.get((c, str(scales[-1])), {}).get("median_ns"))
                if a and b:
                    cells[-1] += " (%+.0f%%)" % ((b / a - 1) * 100)
            out.append("| %s | %s |" % (c, " | ".join(cells)))
        return out

    # ------------------------------------------------------------ plots
    def plot(self):
        data = os.path.join(self.d, "plot-data")
        os.makedirs(data, exist_ok=True)
        gp = ["set terminal pngcairo size 900,540 font 'sans,10'", "set logscale x 10",
              "set key outside right", "set grid", "set xlabel 'services'", "set offsets graph 0.05, graph 0.05, 0, 0"]
        files = []
        metrics = [("crr_rate", "connection rate, x direct"), ("tcp1_gbps", "TCP 1 stream, x direct"),
                   ("tcp4_gbps", "TCP 4 streams, x direct"), ("udp64_kpps", "UDP 64 B packet rate, x direct")]
        for m, title in metrics:
            series = []
            for dp in DPS[1:]:
                for path in [p for p, _ in PATHS] + list(V6_PATHS.values()):
                    pts = [(n, self.ratio(dp, n, path, m)) for n in self.scales]
                    pts = [(n, r) for n, r in pts if r is not None]
                    if not pts:
                        continue
                    fn = os.path.join(data, "%s-%s-%s.dat" % (m, dp, path))
                    with open(fn, "w") as f:
                        f.writelines("%d %.4f\n" % p for p in pts)
                    series.append("'%s' using 1:2 with linespoints title '%s %s'" % (fn, dp, path))
            if series:
                png = "%s.png" % m
                gp += ["set output '%s'" % os.path.join(self.d, png), "set title '%s'" % title,
                       "set ylabel 'x direct'", "set yrange [0:*]", "plot " + ", ".join(series)]
                files.append(png)
        series = []
        for dp in DPS[1:]:
            pts = [(n, num(self.prog.get((dp, str(n), "program_all_ms")))) for n in self.scales]
            pts = [(n, v) for n, v in pts if v]
            if pts:
                fn = os.path.join(data, "program-%s.dat" % dp)
                with open(fn, "w") as f:
                    f.writelines("%d %.1f\n" % p for p in pts)
                series.append("'%s' using 1:2 with linespoints title '%s'" % (fn, dp))
        if series:
            gp += ["set output '%s'" % os.path.join(self.d, "programming.png"),
                   "set title 'time to program all services (10 endpoints each)'",
                   "set ylabel 'ms'", "set logscale y 10", "set yrange [*:*]", "plot " + ", ".join(series),
                   "unset logscale y"]
            files.append("programming.png")
        series = []
        for c in BPF_CASES:
            pts = [(int(k[1]), num(r["median_ns"])) for k, r in self.bpf.items() if k[0] == c]
            if pts:
                fn = os.path.join(data, "bpf-%s.dat" % c)
                with open(fn, "w") as f:
                    f.writelines("%d %.1f\n" % p for p in sorted(pts))
                series.append("'%s' using 1:2 with linespoints title '%s'" % (fn, c))
        if series:
            gp += ["set output '%s'" % os.path.join(self.d, "bpf_per_packet.png"),
                   "set title 'per-packet cost, BPF\\_PROG\\_TEST\\_RUN (median)'",
                   "set ylabel 'ns'", "set yrange [0:*]", "plot " + ", ".join(series)]
            files.append("bpf_per_packet.png")
        with open(os.path.join(data, "plots.gp"), "w") as f:
            f.write("\n".join(gp) + "\n")
        subprocess.run(["gnuplot", os.path.join(data, "plots.gp")], check=True)
        return files

    def write(self):
        try:
            pngs = self.plot()
        except (OSError, subprocess.CalledProcessError) as e:
            print("plots failed: %s" % e, file=sys.stderr)
            pngs = []
        m = dict(self.machine)
        L = ["# ferry benchmark results", "",
             "Machine: %s, %s CPUs, %s; kernel %s; %s. %s, %s, %s. ferry %s, run %s, %s." % (
                 m.get("cpu"), m.get("cpus"), m.get("memory"), m.get("kernel"), m.get("os"),
                 m.get("iperf3"), m.get("iptables"), m.get("nft"), m.get("ferry"), m.get("date_utc"),
                 m.get("mode")), "",
             "Every figure is measured in the same run; the ratio in parentheses is to the direct "
             "path (the client dials the pod address, no translation) of that run.", ""]
        for path, title in PATHS:
            L += ["## %s" % title, ""] + self.traffic_table(path) + [""]
        L += ["Each scale has N services with 10 endpoints each; the measured service is the last one "
              "written (the worst case for iptables, whose KUBE-SERVICES chain is walked rule by rule "
              "for every new connection: the measured service's rule is the last before the NodePort "
              "jump). Scale 1 has the two measured services (same-node and other-node endpoints). "
              "ferry's fillers past 60,000 are IPv6 services (198.19.0.0/16 holds fewer than 65,536 "
              "ClusterIPs); the kube-proxy layouts stop at 10,000. Connection rate: ferry-crr, "
              "%s threads, connect + 1-byte request + 1-byte response + close per connection. "
              "Rows marked IPv6: the same paths over IPv6 (IPv6 ClusterIPs, the pods' IPv6 "
              "addresses as endpoints), their ratio to IPv6 direct in the same run. ferry serves "
              "them beside its N IPv4 services; kube-proxy's IPv6 tables (ip6tables-restore, nft "
              "table ip6) hold the IPv6 twins of the N services, as in a dual-stack cluster, with "
              "the measured ones last." %
              m.get("mode", "").split(", ")[-1].split(" ")[0], ""]
        L += ["## Programming", ""] + self.prog_table() + [""]
        L += ["ferry: from the manifests moved into the watched directory to the agent's log line "
              "`synced N services` (maps written), in ms of its log clock; in parentheses the agent's "
              "own figure for its last change (notification to last map write). Single endpoint "
              "change: the measured service's file rewritten with one endpoint removed, then restored "
              "(four changes). Baselines: `iptables-restore` / `nft -f` of the same set into "
              "an empty node netns (IPv6 rows: `ip6tables-restore` / `nft -f` of the IPv6 twins, "
              "after the IPv4 table); `timeout` means the tool did not finish in the run's limit (the "
              "traffic rows of that scale are then not measured).", ""]
        L += ["## Event-driven control plane (issue 12)", ""] + self.event_table() + [""]
        L += ["Agent: from the inotify notification to the last map write of that change (its log "
              "line `... in N us`). Outside: from the rename of the edited file into the watched "
              "directory until the control socket ({\"cmd\": \"service\"}) shows the new endpoint "
              "count; the agent answers between changes, so the maps are written by then. Changes "
              "are one at a time (scripts/bench/churn.py changes). Burst: that many EndpointSlice "
              "files for distinct services renamed in as fast as possible, until the agent's log "
              "counts them all; a client meanwhile sends a control request every 2 ms "
              "(scripts/bench/churn.py burst).", ""]
        L += ["## Per-packet cost (BPF_PROG_TEST_RUN)", ""] + self.bpf_table() + [""]
        L += ["Median time of one run of the program on one crafted packet (repeat = 1, so each "
              "call starts from the crafted packet; the per-call timer overhead is in every row, "
              "including the empty programs). `new`: a SYN of a new flow (backend choice and "
              "conntrack inserts; NodePort also SNAT port); `established`: a packet of a tracked "
              "flow; `reply`: the endpoint's reply translated back. The percentage is the change "
              "from the smallest to the largest scale.", ""]
        for p in pngs:
            L.append("![%s](%s)" % (p[:-4], p))
        with open(os.path.join(self.d, "results.md"), "w") as f:
            f.write("\n".join(L) + "\n")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    Report(sys.argv[1]).write()
