#!/usr/bin/env python3
"""Event-to-map benchmarks for scripts/bench.sh (issue 12), run against a live
ferryd programmed with `gen.py manifests N`:

  churn.py changes MANIFESTS STAGE SOCKET LOG COUNT
      COUNT single-endpoint edits of the measured same-node service, one at a
      time (99-measured.json renamed into place). Per change, outside: from
      the rename until the control socket shows the new endpoint count
      ({"cmd": "service"} polled; the agent answers it between changes, so it
      sees the maps already written); inside: the agent's own figure, from
      the notification to the last map write ("... in N us" of its log line).
  churn.py burst MANIFESTS STAGE SOCKET LOG COUNT SERVICES
      COUNT EndpointSlice files (distinct names), each for another filler service (one endpoint
      fewer than its Endpoints object), renamed into place as fast as
      possible; then the same files removed. Time until the agent's log shows
      COUNT objects changed; meanwhile a client measures control-socket round
      trips every 2 ms (the event loop's stall).
  churn.py ping SOCKET SECONDS
      Control-socket round trips every 2 ms for SECONDS (or until killed).

Prints `metric<TAB>value` lines (ms unless named otherwise).
"""
import json
import os
import re
import signal
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gen  # noqa: E402

SYNCED = re.compile(r"synced \d+ services: (\d+) objects changed.* in (\d+) us")


def ask(sock_path, req, timeout=5.0):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        s.connect(sock_path)
        s.sendall((json.dumps(req) + "\n").encode())
        data = b""
        while True:
            b = s.recv(65536)
            if not b:
                break
            data += b
    finally:
        s.close()
    return json.loads(data)


def local_count(sock_path):
    for attempt in range(100):
        try:
            r = ask(sock_path, {"cmd": "service", "namespace": gen.NS, "name": "measured-local"})
            break
        except (OSError, ValueError):
            time.sleep(0.001)
    else:
        raise RuntimeError("control socket keeps failing")
    # endpoints are grouped by port sets (the UDP port has one address): count addresses
    subsets = r.get("endpoints", {}).get("subsets", [])
    return len({a.get("ip") for s in subsets for a in s.get("addresses", [])})


def pct(values, p):
    if not values:
        return "none"
    v = sorted(values)
    return "%.3f" % v[min(len(v) - 1, int(round(p / 100.0 * (len(v) - 1))))]


def log_lines_from(path, offset):
    with open(path, errors="replace") as f:
        f.seek(offset)
        return f.read()


def emit(name, values):
    print("%s_p50\t%s" % (name, pct(values, 50)))
    print("%s_p99\t%s" % (name, pct(values, 99)))
    print("%s_max\t%s" % (name, pct(values, 100)))


class Pinger(threading.Thread):
    def __init__(self, sock_path):
        super().__init__(daemon=True)
        self.sock_path, self.stop, self.ms, self.fail = sock_path, False, [], 0

    def run(self):
        while not self.stop:
            t = time.monotonic()
            try:
                ask(self.sock_path, {"cmd": "ping"}, timeout=10)
                self.ms.append((time.monotonic() - t) * 1000)
            except (OSError, ValueError):
                self.fail += 1
            time.sleep(0.002)


def changes(manifests, stage, sock_path, log, count):
    offset = os.path.getsize(log)
    outside = []
    target = os.path.join(manifests, "99-measured.json")
    for k in range(count):
        want = gen.EPS if local_count(sock_path) < gen.EPS else gen.EPS - 1
        staged = os.path.join(stage, "99-measured.json")
        gen.write_list(staged, gen.measured_objs(drop_one=(want < gen.EPS)))
        t0 = time.monotonic()
        os.rename(staged, target)
        deadline = t0 + 30
        while local_count(sock_path) != want:
            if time.monotonic() > deadline:
                print("changes_timeout\t%d" % k)
                return
        outside.append((time.monotonic() - t0) * 1000)
    time.sleep(0.2)
    inside = [int(m.group(2)) / 1000.0 for m in SYNCED.finditer(log_lines_from(log, offset))]
    print("changes\t%d" % count)
    emit("change_outside_ms", outside)
    emit("change_agent_ms", inside[-count:])


def burst(manifests, stage, sock_path, log, count, services):
    fillers = gen.fillers(services)
    os.makedirs(stage, exist_ok=True)
    names = []
    for j in range(count):
        i = (j * max(1, fillers // count)) % max(1, fillers)
        name = "svc-%06d" % i
        eps = gen.filler_eps(i)[:-1]
        sl = {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
              "metadata": {"name": "burst-%04d" % j, "namespace": gen.NS,
                           "labels": {"kubernetes.io/service-name": name}},
              "addressType": "IPv4" if i < gen.V4_FILLERS else "IPv6",
              "endpoints": [{"addresses": [ip], "nodeName": "node-x"} for ip, _ in eps],
              "ports": [{"name": "http", "port": eps[0][1], "protocol": "TCP"}]}
        fn = "burst-%04d.json" % j
        gen.write_list(os.path.join(stage, fn), [sl])
        names.append(fn)
    for phase in ("add", "remove"):
        offset = os.path.getsize(log)
        p = Pinger(sock_path)
        p.start()
        time.sleep(0.05)
        t0 = time.monotonic()
        for fn in names:
            if phase == "add":
                os.rename(os.path.join(stage, fn), os.path.join(manifests, fn))
            else:
                os.unlink(os.path.join(manifests, fn))
        t_written = time.monotonic()
        seen, t_done = 0, None
        while time.monotonic() < t0 + 120:
            seen = sum(int(m.group(1)) for m in SYNCED.finditer(log_lines_from(log, offset)))
            if seen >= count:
                t_done = time.monotonic()
                break
            time.sleep(0.001)
        time.sleep(0.1)
        p.stop = True
        p.join()
        syncs = len(SYNCED.findall(log_lines_from(log, offset)))
        print("burst_%s_files_written_ms\t%.1f" % (phase, (t_written - t0) * 1000))
        print("burst_%s_all_applied_ms\t%s" % (phase, "%.1f" % ((t_done - t0) * 1000) if t_done else "timeout"))
        print("burst_%s_batches\t%d" % (phase, syncs))
        emit("burst_%s_control_rtt_ms" % phase, p.ms)
        print("burst_%s_control_failures\t%d" % (phase, p.fail))


def ping(sock_path, seconds):
    # bench.sh stops it with SIGTERM (background jobs of a script ignore SIGINT)
    def stop(*_):
        raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, stop)
    p = Pinger(sock_path)
    p.start()
    try:
        time.sleep(seconds)
    except KeyboardInterrupt:
        pass
    p.stop = True
    p.join()
    emit("control_rtt_ms", p.ms)
    print("control_failures\t%d" % p.fail)


def main():
    cmd = sys.argv[1] if len(sys.argv) > 1 else ""
    a = sys.argv[2:]
    if cmd == "changes" and len(a) == 5:
        changes(a[0], a[1], a[2], a[3], int(a[4]))
    elif cmd == "burst" and len(a) == 6:
        burst(a[0], a[1], a[2], a[3], int(a[4]), int(a[5]))
    elif cmd == "ping" and len(a) == 2:
        ping(a[0], float(a[1]))
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
