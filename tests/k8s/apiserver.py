#!/usr/bin/python3
"""ferry's test Kubernetes API server (tests only, Python 3 standard library).

There is no kube-apiserver in Debian 12, so ferry's Kubernetes-source tests run
against this one. It speaks the real wire protocol as kubectl and client-go
see it (checked by tests/k8s/kubectl_fidelity_test.sh with the real kubectl):

- discovery: /api, /apis, /api/v1, /apis/<group>, /apis/<group>/<version>,
  /version, /healthz; no OpenAPI (404: kubectl needs --validate=false);
- list with resourceVersion, labelSelector, fieldSelector (metadata.name,
  metadata.namespace), limit/continue over a consistent snapshot (410 Expired
  when the snapshot was compacted), items without kind/apiVersion as the real
  server sends them;
- watch (?watch=1) as a chunked stream of {"type","object"} lines from a
  resourceVersion, allowWatchBookmarks (BOOKMARK events every
  --bookmark-interval seconds), timeoutSeconds, and a bounded event history
  (--history events): a watch from before it gets one ERROR event carrying an
  "Expired" Status with code 410, then the stream ends, as the watch cache does;
- get, create (POST), update (PUT, resourceVersion-conditional: 409 Conflict),
  patch (merge-patch, strategic-merge-patch for the kinds used, JSON patch),
  delete; the status subresource of Services, Nodes, Pods and ServiceCIDRs;
- Service defaults as the apiserver sets them: ClusterIP (from
  --service-cidr), NodePorts, healthCheckNodePort, kept across updates;
- auth over TLS: bearer tokens (--token TOKEN=USER, repeatable) and client
  certificates signed by --client-ca (user = CN, groups = O); 401 otherwise;
  --forbid USER:VERB:RESOURCE gives the real 403 message.

Fault injection (only with --faults), plain HTTP requests on the same port
(no auth), each answering {"ok": true}:
  POST /_test/restart?down=SECONDS   close the listener and every connection,
                                     keep the state, listen again after SECONDS
  POST /_test/cut-watches            cut every open watch stream mid-chunk
  POST /_test/expire-next-watch      the next watch gets 410 Expired
  POST /_test/compact                drop the event history (older
                                     resourceVersions and continue tokens: 410)
  POST /_test/revoke-token?token=T   T is rejected with 401 from now on
  POST /_test/allow-token?token=T&user=U
  POST /_test/forbid?user=U&verb=V&resource=R     (403 from now on)
  POST /_test/unforbid?user=U&verb=V&resource=R
  GET  /_test/requests               recent requests (method, path, query,
                                     content type, user, code, client
                                     address) as JSON
  GET  /_test/watchers               number of open watch streams

--state FILE: the store is saved there on SIGTERM/SIGINT and loaded at start,
so a test can also restart the process itself and keep every object and the
resourceVersion sequence (as etcd would).
"""

import argparse
import base64
import copy
import datetime
import ipaddress
import json
import os
import random
import signal
import socket
import ssl
import string
import sys
import threading
import time
import uuid
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

VERBS = ["create", "delete", "get", "list", "patch", "update", "watch"]


class Res:
    """One served resource (what discovery lists)."""

    def __init__(self, group, version, plural, singular, kind, namespaced,
                 short=(), status=False):
        self.group, self.version, self.plural = group, version, plural
        self.singular, self.kind, self.namespaced = singular, kind, namespaced
        self.short, self.status = list(short), status

    @property
    def gv(self):
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def key(self):
        return (self.group, self.plural)


def resources(args):
    rs = [
        Res("", "v1", "namespaces", "namespace", "Namespace", False, ["ns"], True),
        Res("", "v1", "services", "service", "Service", True, ["svc"], True),
        Res("", "v1", "endpoints", "endpoints", "Endpoints", True, ["ep"]),
        Res("", "v1", "nodes", "node", "Node", False, ["no"], True),
        Res("", "v1", "pods", "pod", "Pod", True, ["po"], True),
        Res("discovery.k8s.io", "v1", "endpointslices", "endpointslice",
            "EndpointSlice", True),
        Res("coordination.k8s.io", "v1", "leases", "lease", "Lease", True),
        # what deploy/ holds, so kubectl apply (and --dry-run=client) can map it
        Res("", "v1", "serviceaccounts", "serviceaccount", "ServiceAccount", True, ["sa"]),
        Res("", "v1", "configmaps", "configmap", "ConfigMap", True, ["cm"]),
        Res("apps", "v1", "daemonsets", "daemonset", "DaemonSet", True, ["ds"], True),
        Res("rbac.authorization.k8s.io", "v1", "clusterroles", "clusterrole", "ClusterRole", False),
        Res("rbac.authorization.k8s.io", "v1", "clusterrolebindings", "clusterrolebinding",
            "ClusterRoleBinding", False),
        Res("rbac.authorization.k8s.io", "v1", "roles", "role", "Role", True),
        Res("rbac.authorization.k8s.io", "v1", "rolebindings", "rolebinding", "RoleBinding", True),
    ]
    if args.metallb:
        rs.append(Res("metallb.io", "v1beta1", "ipaddresspools", "ipaddresspool",
                      "IPAddressPool", True))
    if args.servicecidr:
        rs.append(Res("networking.k8s.io", "v1", "servicecidrs", "servicecidr",
                      "ServiceCIDR", False, [], True))
    return rs


def now_rfc3339():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def status_obj(code, reason, message, details=None):
    s = {"kind": "Status", "apiVersion": "v1", "metadata": {},
         "status": "Failure" if code >= 300 else "Success",
         "message": message, "reason": reason, "code": code}
    if details:
        s["details"] = details
    return s


class ApiError(Exception):
    def __init__(self, code, reason, message, details=None):
        super().__init__(message)
        self.status = status_obj(code, reason, message, details)
        self.code = code


def not_found(res, name):
    gr = f"{res.plural}.{res.group}" if res.group else res.plural
    return ApiError(404, "NotFound", f'{gr} "{name}" not found',
                    {"name": name, "group": res.group, "kind": res.plural})


def expired(msg):
    return ApiError(410, "Expired", msg)


# ------------------------------------------------------------------ patches

def merge_patch(target, patch):
    """RFC 7386 JSON merge patch."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = copy.deepcopy(target) if isinstance(target, dict) else {}
    for k, v in patch.items():
        if v is None:
            out.pop(k, None)
        else:
            out[k] = merge_patch(out.get(k), v)
    return out


# Merge keys of the lists that strategic merge patch merges (from the Go types'
# patchMergeKey tags) for the kinds served here; every other list is replaced.
SMP_MERGE_KEYS = {
    ("spec", "ports"): "port",                  # Service
    ("spec", "containers"): "name",             # Pod
    ("spec", "initContainers"): "name",
    ("spec", "volumes"): "name",
    ("status", "conditions"): "type",           # Pod, Node
    ("status", "addresses"): "type",            # Node
    ("metadata", "ownerReferences"): "uid",
    ("spec", "taints"): "key",                  # Node
    ("containers", "env"): "name",
    ("containers", "ports"): "containerPort",
    ("containers", "volumeMounts"): "mountPath",
}
SMP_PRIMITIVE_MERGE = {("metadata", "finalizers")}


def strategic_merge(target, patch, path=()):
    """Strategic merge patch (the subset kubectl apply emits): maps merge,
    lists with a known merge key merge by it ($patch: delete/replace,
    $setElementOrder, $retainKeys, $deleteFromPrimitiveList honoured), other
    lists are replaced."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    if patch.get("$patch") == "replace":
        p = {k: v for k, v in patch.items() if k != "$patch"}
        return copy.deepcopy(p)
    if patch.get("$patch") == "delete":
        return None
    out = copy.deepcopy(target) if isinstance(target, dict) else {}
    retain = patch.get("$retainKeys")
    for k, v in patch.items():
        if k.startswith("$setElementOrder/") or k in ("$retainKeys", "$patch"):
            continue
        if k.startswith("$deleteFromPrimitiveList/"):
            name = k.split("/", 1)[1]
            if isinstance(out.get(name), list):
                out[name] = [x for x in out[name] if x not in v]
            continue
        sub = path[-1:] + (k,)
        if v is None:
            out.pop(k, None)
        elif isinstance(v, dict):
            r = strategic_merge(out.get(k), v, path + (k,))
            if r is None:
                out.pop(k, None)
            else:
                out[k] = r
        elif isinstance(v, list) and sub in SMP_MERGE_KEYS:
            out[k] = merge_list(out.get(k) or [], v, SMP_MERGE_KEYS[sub],
                                patch.get(f"$setElementOrder/{k}"), path + (k,))
        elif isinstance(v, list) and sub in SMP_PRIMITIVE_MERGE:
            cur = list(out.get(k) or [])
            out[k] = cur + [x for x in v if x not in cur]
        else:
            out[k] = copy.deepcopy(v)
    if isinstance(retain, list):
        out = {k: v for k, v in out.items() if k in retain}
    return out


def merge_list(cur, patch, key, order, path):
    items = [copy.deepcopy(x) for x in cur]

    def find(kv):
        for i, x in enumerate(items):
            if isinstance(x, dict) and x.get(key) == kv:
                return i
        return -1

    for p in patch:
        if not isinstance(p, dict):
            continue
        i = find(p.get(key))
        if p.get("$patch") == "delete":
            if i >= 0:
                items.pop(i)
            continue
        if i >= 0:
            items[i] = strategic_merge(items[i], p, path)
        else:
            items.append(strategic_merge({}, p, path))
    if isinstance(order, list):
        rank = {json.dumps(o.get(key)): n for n, o in enumerate(order) if isinstance(o, dict)}
        items.sort(key=lambda x: rank.get(json.dumps(x.get(key)), len(rank)))
    return items


def json_patch(target, ops):
    """RFC 6902 JSON patch (add, remove, replace, test)."""
    doc = copy.deepcopy(target)

    def walk(path):
        parts = [p.replace("~1", "/").replace("~0", "~") for p in path.split("/")[1:]]
        cur = doc
        for p in parts[:-1]:
            cur = cur[int(p)] if isinstance(cur, list) else cur[p]
        return cur, parts[-1]

    for op in ops:
        parent, last = walk(op["path"])
        kind = op["op"]
        if isinstance(parent, list):
            idx = len(parent) if last == "-" else int(last)
            if kind == "add":
                parent.insert(idx, op["value"])
            elif kind == "remove":
                parent.pop(idx)
            elif kind == "replace":
                parent[idx] = op["value"]
            elif kind == "test" and parent[idx] != op["value"]:
                raise ApiError(422, "Invalid", f"test failed at {op['path']}")
        else:
            if kind in ("add", "replace"):
                parent[last] = op["value"]
            elif kind == "remove":
                del parent[last]
            elif kind == "test" and parent.get(last) != op["value"]:
                raise ApiError(422, "Invalid", f"test failed at {op['path']}")
    return doc


# ------------------------------------------------------------------ selectors

def parse_label_selector(sel):
    reqs = []
    for term in filter(None, (t.strip() for t in (sel or "").split(","))):
        if "!=" in term:
            k, v = term.split("!=", 1)
            reqs.append(lambda l, k=k.strip(), v=v.strip(): l.get(k) != v)
        elif "==" in term or "=" in term:
            k, v = term.split("==", 1) if "==" in term else term.split("=", 1)
            reqs.append(lambda l, k=k.strip(), v=v.strip(): l.get(k) == v)
        elif term.startswith("!"):
            reqs.append(lambda l, k=term[1:].strip(): k not in l)
        else:
            reqs.append(lambda l, k=term: k in l)
    return lambda labels: all(r(labels or {}) for r in reqs)


def parse_field_selector(sel):
    reqs = []
    for term in filter(None, (t.strip() for t in (sel or "").split(","))):
        neg = "!=" in term
        k, v = term.split("!=" if neg else ("==" if "==" in term else "="), 1)
        k = k.strip()
        if k not in ("metadata.name", "metadata.namespace"):
            raise ApiError(400, "BadRequest",
                           f'"{k}" is not a known field selector: only "metadata.name", "metadata.namespace"')
        f = k.split(".")[1]
        reqs.append(lambda m, f=f, v=v.strip(), neg=neg: (m.get(f, "") == v) != neg)
    return lambda meta: all(r(meta) for r in reqs)


# ------------------------------------------------------------------ tables

def human_age(ts):
    """kubectl's duration.HumanDuration, to the precision tests need."""
    try:
        t = datetime.datetime.strptime(ts, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=datetime.timezone.utc)
    except (TypeError, ValueError):
        return "<unknown>"
    sec = int((datetime.datetime.now(datetime.timezone.utc) - t).total_seconds())
    if sec < 120:
        return f"{max(sec, 0)}s"
    if sec < 3600 * 3:
        return f"{sec // 60}m"
    if sec < 86400 * 2:
        return f"{sec // 3600}h"
    return f"{sec // 86400}d"


def col(name, typ="string", fmt="", priority=0):
    return {"name": name, "type": typ, "format": fmt, "description": "", "priority": priority}


def service_row(o):
    spec, st = o.get("spec", {}), o.get("status", {})
    t = spec.get("type", "ClusterIP")
    ext = list(spec.get("externalIPs") or [])
    if t == "LoadBalancer":
        ing = [i.get("ip") or i.get("hostname") for i in st.get("loadBalancer", {}).get("ingress") or []]
        ext = ing + ext if ing else (ext or ["<pending>"])
    elif t == "ExternalName":
        ext = [spec.get("externalName", "")]
    ports = []
    for p in spec.get("ports") or []:
        pp = f"{p['port']}:{p['nodePort']}" if p.get("nodePort") else f"{p.get('port')}"
        ports.append(f"{pp}/{p.get('protocol', 'TCP')}")
    sel = ",".join(f"{k}={v}" for k, v in sorted((spec.get("selector") or {}).items()))
    return [t, spec.get("clusterIP", "<none>") if t != "ExternalName" else "<none>",
            ",".join(ext) if ext else "<none>", ",".join(ports) or "<none>"], sel


def table(res, objs, rv):
    """A meta.k8s.io/v1 Table, what `kubectl get` asks for (Accept: ...;as=Table)."""
    if res.kind == "Service":
        cols = [col("Name", fmt="name"), col("Type"), col("Cluster-IP"), col("External-IP"),
                col("Port(s)"), col("Age"), col("Selector", priority=1)]
    else:
        cols = [col("Name", fmt="name"), col("Age")]
    rows = []
    for o in objs:
        m = o["metadata"]
        if res.kind == "Service":
            mid, sel = service_row(o)
            cells = [m["name"]] + mid + [human_age(m.get("creationTimestamp")), sel or "<none>"]
        else:
            cells = [m["name"], human_age(m.get("creationTimestamp"))]
        rows.append({"cells": cells, "object": {"kind": "PartialObjectMetadata",
                                                "apiVersion": "meta.k8s.io/v1",
                                                "metadata": copy.deepcopy(m)}})
    return {"kind": "Table", "apiVersion": "meta.k8s.io/v1",
            "metadata": {"resourceVersion": str(rv)}, "columnDefinitions": cols, "rows": rows}


def wants_table(accept):
    return "as=Table" in (accept or "") and "g=meta.k8s.io" in accept and "v=v1" in accept


# ------------------------------------------------------------------ store

class Event:
    __slots__ = ("rv", "gr", "type", "obj", "prev")

    def __init__(self, rv, gr, type_, obj, prev):
        self.rv, self.gr, self.type, self.obj, self.prev = rv, gr, type_, obj, prev


class Store:
    """Objects by (group, plural) -> "ns/name" -> object, one resourceVersion
    sequence for all (as etcd's revision), and a bounded event history."""

    def __init__(self, args, res_list):
        self.cond = threading.Condition()
        self.args = args
        self.res = {r.key: r for r in res_list}
        self.objs = {r.key: {} for r in res_list}
        self.rv = 1
        self.history = deque()
        self.compacted = 0     # events with rv <= compacted are gone
        self.cut_gen = 0       # bumped to cut every open watch
        self.expire_next = False
        self.watchers = 0
        self.svc_net = ipaddress.ip_network(args.service_cidr)
        self.next_ip = 10 if args.service_cidr.endswith("/16") else 2
        self.next_port = 30000
        with self.cond:
            for ns in ("default", "kube-system", "kube-public", "kube-node-lease"):
                self._create(self.res[("", "namespaces")], None, {"metadata": {"name": ns}})

    # -- persistence
    def save(self, path):
        with self.cond:
            data = {"rv": self.rv, "compacted": self.compacted,
                    "objs": {f"{g}|{p}": v for (g, p), v in self.objs.items()},
                    "history": [[e.rv, list(e.gr), e.type, e.obj, e.prev] for e in self.history],
                    "next_ip": self.next_ip, "next_port": self.next_port}
        tmp = path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(data, f)
        os.replace(tmp, path)

    def load(self, path):
        with open(path) as f:
            data = json.load(f)
        self.rv, self.compacted = data["rv"], data["compacted"]
        for k, v in data["objs"].items():
            g, p = k.split("|")
            if (g, p) in self.objs:
                self.objs[(g, p)] = v
        self.history = deque(Event(e[0], tuple(e[1]), e[2], e[3], e[4]) for e in data["history"])
        self.next_ip, self.next_port = data["next_ip"], data["next_port"]

    # -- events
    def _record(self, res, type_, obj, prev):
        self.history.append(Event(self.rv, res.key, type_, copy.deepcopy(obj), prev))
        while len(self.history) > self.args.history:
            self.compacted = self.history.popleft().rv
        self.cond.notify_all()

    def compact(self):
        with self.cond:
            self.history.clear()
            self.compacted = self.rv

    def _bump(self, obj):
        self.rv += 1
        obj["metadata"]["resourceVersion"] = str(self.rv)

    # -- objects
    @staticmethod
    def okey(ns, name):
        return f"{ns or ''}/{name}"

    def snapshot_at(self, res, rv):
        """The objects of res as they were at resourceVersion rv (undoing the
        history newer than rv)."""
        if rv < self.compacted:
            raise expired("The provided continue parameter is too old to display a consistent list "
                          "result. You can start a new list without the continue parameter, or use "
                          "the continue token in this response to retrieve the remainder of the "
                          "results. Continuing with the provided token results in an inconsistent "
                          "list - objects that were created, modified, or deleted between the time "
                          "the first chunk was returned and now may show up in the list.")
        objs = dict(self.objs[res.key])
        for e in reversed(self.history):
            if e.rv <= rv:
                break
            if e.gr != res.key:
                continue
            m = e.obj["metadata"]
            k = self.okey(m.get("namespace"), m["name"])
            if e.type == "ADDED":
                objs.pop(k, None)
            else:
                objs[k] = e.prev
        return objs

    def _defaults(self, res, obj, old):
        kind = res.kind
        spec = obj.setdefault("spec", {}) if kind in ("Service", "Namespace", "Lease") else obj.get("spec")
        if kind == "Service":
            self._service_defaults(spec, old.get("spec", {}) if old else None)
            obj.setdefault("status", {"loadBalancer": {}})
        elif kind == "Namespace":
            spec.setdefault("finalizers", ["kubernetes"])
            obj["status"] = {"phase": "Active"}
        elif kind == "EndpointSlice":
            if "addressType" not in obj:
                raise ApiError(422, "Invalid",
                               f'EndpointSlice.discovery.k8s.io "{obj["metadata"]["name"]}" is invalid: '
                               "addressType: Required value")
            for ep in obj.get("endpoints") or []:
                ep.setdefault("conditions", {}).setdefault("ready", True)

    def _alloc_ip(self):
        while True:
            ip = self.svc_net.network_address + self.next_ip
            self.next_ip += 1
            if ip not in self.svc_net:
                raise ApiError(500, "InternalError", "service CIDR exhausted")
            used = {c for o in self.objs[("", "services")].values()
                    for c in o.get("spec", {}).get("clusterIPs", [])}
            if str(ip) not in used:
                return str(ip)

    def _alloc_port(self):
        used = {p.get("nodePort") for o in self.objs[("", "services")].values()
                for p in o.get("spec", {}).get("ports", [])}
        for _ in range(2768):
            port = self.next_port
            self.next_port = 30000 + (self.next_port - 30000 + 1) % 2768
            if port not in used:
                return port
        raise ApiError(500, "InternalError", "node port range exhausted")

    def _service_defaults(self, spec, old):
        spec.setdefault("type", "ClusterIP")
        spec.setdefault("sessionAffinity", "None")
        t = spec["type"]
        if old:  # patchAllocatedValues: what was allocated stays
            if not spec.get("clusterIP") and old.get("clusterIP"):
                spec["clusterIP"] = old["clusterIP"]
                spec["clusterIPs"] = old.get("clusterIPs", [old["clusterIP"]])
            oldports = {(p.get("port"), p.get("protocol", "TCP")): p.get("nodePort")
                        for p in old.get("ports", [])}
            for p in spec.get("ports") or []:
                np = oldports.get((p.get("port"), p.get("protocol", "TCP")))
                if np and not p.get("nodePort") and t in ("NodePort", "LoadBalancer"):
                    p["nodePort"] = np
            if old.get("healthCheckNodePort") and not spec.get("healthCheckNodePort"):
                spec["healthCheckNodePort"] = old["healthCheckNodePort"]
        if t != "ExternalName":
            if not spec.get("clusterIP"):
                spec["clusterIP"] = spec["clusterIPs"][0] if spec.get("clusterIPs") else self._alloc_ip()
            spec.setdefault("clusterIPs", [spec["clusterIP"]])
            if spec["clusterIP"] != "None":
                spec.setdefault("ipFamilies",
                                ["IPv6" if ":" in c else "IPv4" for c in spec["clusterIPs"]])
                spec.setdefault("ipFamilyPolicy", "SingleStack")
            spec.setdefault("internalTrafficPolicy", "Cluster")
        for p in spec.get("ports") or []:
            p.setdefault("protocol", "TCP")
            if t != "ExternalName":
                p.setdefault("targetPort", p.get("port"))
            if t in ("NodePort", "LoadBalancer") and not p.get("nodePort"):
                p["nodePort"] = self._alloc_port()
        if t in ("NodePort", "LoadBalancer"):
            spec.setdefault("externalTrafficPolicy", "Cluster")
        if t == "LoadBalancer" and spec.get("externalTrafficPolicy") == "Local" \
                and not spec.get("healthCheckNodePort"):
            spec["healthCheckNodePort"] = self._alloc_port()

    def _create(self, res, ns, obj):
        meta = obj.setdefault("metadata", {})
        if not meta.get("name"):
            if meta.get("generateName"):
                meta["name"] = meta["generateName"] + "".join(
                    random.choice(string.ascii_lowercase + string.digits) for _ in range(5))
            else:
                raise ApiError(422, "Invalid", f"{res.kind} is invalid: metadata.name: "
                               "Required value: name or generateName is required")
        if res.namespaced:
            if meta.get("namespace") and ns and meta["namespace"] != ns:
                raise ApiError(400, "BadRequest", "the namespace of the provided object does "
                               "not match the namespace sent on the request")
            meta["namespace"] = ns
            nso = self.objs[("", "namespaces")].get(self.okey(None, ns))
            if nso is None:
                raise not_found(self.res[("", "namespaces")], ns)
            if nso["metadata"].get("deletionTimestamp"):
                raise ApiError(403, "Forbidden",
                               f'{res.plural} "{meta["name"]}" is forbidden: unable to create new '
                               f"content in namespace {ns} because it is being terminated")
        else:
            meta.pop("namespace", None)
        k = self.okey(meta.get("namespace"), meta["name"])
        store = self.objs[res.key]
        if k in store:
            gr = f"{res.plural}.{res.group}" if res.group else res.plural
            raise ApiError(409, "AlreadyExists", f'{gr} "{meta["name"]}" already exists',
                           {"name": meta["name"], "group": res.group, "kind": res.plural})
        obj["apiVersion"], obj["kind"] = res.gv, res.kind
        meta["uid"] = str(uuid.uuid4())
        meta["creationTimestamp"] = now_rfc3339()
        for f in ("resourceVersion", "deletionTimestamp", "managedFields", "selfLink"):
            meta.pop(f, None)
        if "spec" in obj or res.kind == "Service":
            meta["generation"] = 1
        self._defaults(res, obj, None)
        self._bump(obj)
        store[k] = obj
        self._record(res, "ADDED", obj, None)
        return obj

    def create(self, res, ns, obj):
        with self.cond:
            return copy.deepcopy(self._create(res, ns, obj))

    def get(self, res, ns, name):
        with self.cond:
            o = self.objs[res.key].get(self.okey(ns, name))
            if o is None:
                raise not_found(res, name)
            return copy.deepcopy(o)

    def update(self, res, ns, name, new, sub=None, check_rv=True):
        """PUT semantics: the whole object; status writes change only status,
        main-resource writes keep the old status."""
        with self.cond:
            store = self.objs[res.key]
            k = self.okey(ns, name)
            old = store.get(k)
            if old is None:
                raise not_found(res, name)
            meta = new.setdefault("metadata", {})
            if meta.get("name", name) != name:
                raise ApiError(400, "BadRequest", "the name of the object does not match the "
                               "name on the URL")
            want = meta.get("resourceVersion")
            if check_rv and want and want != old["metadata"]["resourceVersion"]:
                gr = f"{res.plural}.{res.group}" if res.group else res.plural
                raise ApiError(409, "Conflict",
                               f'Operation cannot be fulfilled on {gr} "{name}": the object has '
                               "been modified; please apply your changes to the latest version "
                               "and try again",
                               {"name": name, "group": res.group, "kind": res.plural})
            if sub == "status":
                obj = copy.deepcopy(old)
                obj["status"] = new.get("status", {})
            else:
                obj = new
                if res.status and "status" in old:
                    obj["status"] = copy.deepcopy(old["status"])
                m, om = obj["metadata"], old["metadata"]
                for f in ("uid", "creationTimestamp", "generation"):
                    if f in om:
                        m[f] = om[f]
                m["name"] = name
                if res.namespaced:
                    m["namespace"] = ns
                else:
                    m.pop("namespace", None)
                obj["apiVersion"], obj["kind"] = res.gv, res.kind
                self._defaults(res, obj, old)
                if "generation" in om and obj.get("spec") != old.get("spec"):
                    m["generation"] = om["generation"] + 1
            cmp_new = {k2: v for k2, v in obj.items() if k2 != "metadata"}
            cmp_old = {k2: v for k2, v in old.items() if k2 != "metadata"}
            mn = {k2: v for k2, v in obj["metadata"].items() if k2 != "resourceVersion"}
            mo = {k2: v for k2, v in old["metadata"].items() if k2 != "resourceVersion"}
            if cmp_new == cmp_old and mn == mo:
                return copy.deepcopy(old)   # no-op writes do not bump resourceVersion
            self._bump(obj)
            store[k] = obj
            self._record(res, "MODIFIED", obj, old)
            return copy.deepcopy(obj)

    def patch(self, res, ns, name, ctype, body, sub=None):
        with self.cond:
            old = self.get(res, ns, name)
            if ctype.startswith("application/merge-patch+json"):
                new = merge_patch(old, body)
            elif ctype.startswith("application/strategic-merge-patch+json"):
                if res.group not in ("", "discovery.k8s.io", "coordination.k8s.io",
                                     "networking.k8s.io", "apps", "rbac.authorization.k8s.io"):
                    raise ApiError(415, "UnsupportedMediaType",
                                   "strategic merge patch is not supported for custom resources")
                new = strategic_merge(old, body)
            elif ctype.startswith("application/json-patch+json"):
                new = json_patch(old, body)
            else:
                raise ApiError(415, "UnsupportedMediaType",
                               f'the body of the request was in an unknown format - accepted '
                               'media types include: application/json-patch+json, '
                               'application/merge-patch+json, application/strategic-merge-patch+json')
            if not isinstance(new, dict):
                raise ApiError(400, "BadRequest", "patch result is not an object")
            rvp = (body.get("metadata") or {}).get("resourceVersion") if isinstance(body, dict) else None
            if not rvp:
                new["metadata"]["resourceVersion"] = old["metadata"]["resourceVersion"]
            return self.update(res, ns, name, new, sub, check_rv=bool(rvp))

    def delete(self, res, ns, name):
        """Deletes at once, except a Namespace: it turns Terminating
        (deletionTimestamp, phase) and its contents and itself go a moment
        later, as the namespace controller does, so `kubectl delete -f` of a
        manifest that lists the namespace first still deletes the rest."""
        with self.cond:
            store = self.objs[res.key]
            k = self.okey(ns, name)
            old = store.get(k)
            if old is None:
                raise not_found(res, name)
            if res.kind == "Namespace":
                if old["metadata"].get("deletionTimestamp"):
                    return copy.deepcopy(old)
                obj = copy.deepcopy(old)
                obj["metadata"]["deletionTimestamp"] = now_rfc3339()
                obj["status"] = {"phase": "Terminating"}
                self._bump(obj)
                store[k] = obj
                self._record(res, "MODIFIED", obj, old)
                t = threading.Timer(self.args.namespace_delay, self._finish_namespace, (res, name))
                t.daemon = True
                t.start()
                return copy.deepcopy(obj)
            return self._delete(res, k)

    def _delete(self, res, k):
        old = self.objs[res.key].pop(k)
        obj = copy.deepcopy(old)
        self._bump(obj)
        self._record(res, "DELETED", obj, old)
        return obj

    def _finish_namespace(self, res, name):
        with self.cond:
            for r in self.res.values():
                if r.namespaced:
                    for k2 in [k2 for k2, o in self.objs[r.key].items()
                               if o["metadata"].get("namespace") == name]:
                        self._delete(r, k2)
            if self.okey(None, name) in self.objs[res.key]:
                self._delete(res, self.okey(None, name))


# ------------------------------------------------------------------ HTTP

class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "ferry-test-apiserver/1"

    def log_message(self, fmt, *a):
        if self.server.app.args.verbose:
            sys.stderr.write("apiserver: " + (fmt % a) + "\n")

    # -- plumbing
    @property
    def app(self):
        return self.server.app

    def send_json(self, code, obj, extra_headers=()):
        data = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-cache, private")
        for h, v in extra_headers:
            self.send_header(h, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)
        self.app.note(self, code)

    def send_error_status(self, e):
        self.send_json(e.code, e.status)

    def read_body(self):
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            data = b""
            while True:
                size = int(self.rfile.readline().strip().split(b";")[0], 16)
                if size == 0:
                    self.rfile.readline()
                    break
                data += self.rfile.read(size)
                self.rfile.readline()
        else:
            data = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if not data:
            raise ApiError(400, "BadRequest", "the request body is empty")
        try:
            return json.loads(data)
        except ValueError as e:
            raise ApiError(400, "BadRequest", f"the request body is not JSON: {e}")

    def user(self):
        """Authenticate: bearer token, else the verified client certificate."""
        auth = self.headers.get("Authorization", "")
        if auth.startswith("Bearer "):
            tok = auth[7:].strip()
            u = self.app.tokens.get(tok)
            if u is None:
                raise ApiError(401, "Unauthorized", "Unauthorized")
            return u
        cert = self.connection.getpeercert() if isinstance(self.connection, ssl.SSLSocket) else None
        if cert:
            subj = dict(x[0] for x in cert.get("subject", ()))
            if subj.get("commonName"):
                return subj["commonName"]
        if self.app.args.anonymous:
            return "system:anonymous"
        raise ApiError(401, "Unauthorized", "Unauthorized")

    def authorize(self, user, verb, res, ns, sub=None):
        r = f"{res.plural}/{sub}" if sub else res.plural
        if (user, verb, r) in self.app.forbidden or (user, "*", r) in self.app.forbidden:
            where = f'in the namespace "{ns}"' if ns else "at the cluster scope"
            rname = f'resource "{res.plural}"' + (f' in API group "{res.group}"')
            subtxt = f'/{sub}' if sub else ""
            rname = f'resource "{res.plural}{subtxt}" in API group "{res.group}"'
            gr = f"{res.plural}.{res.group}" if res.group else res.plural
            raise ApiError(403, "Forbidden",
                           f'{gr} is forbidden: User "{user}" cannot {verb} {rname} {where}',
                           {"group": res.group, "kind": res.plural})

    def do_GET(self):
        self.dispatch("GET")

    def do_HEAD(self):
        self.dispatch("GET")

    def do_POST(self):
        self.dispatch("POST")

    def do_PUT(self):
        self.dispatch("PUT")

    def do_PATCH(self):
        self.dispatch("PATCH")

    def do_DELETE(self):
        self.dispatch("DELETE")

    def dispatch(self, method):
        u = urlsplit(self.path)
        self.q = {k: v[-1] for k, v in parse_qs(u.query, keep_blank_values=True).items()}
        self.u_path = u.path
        self.user_name = ""
        self.table = wants_table(self.headers.get("Accept"))
        try:
            if u.path.startswith("/_test/") and self.app.args.faults:
                return self.fault(u.path[7:])
            if u.path in ("/healthz", "/livez", "/readyz"):
                data = b"ok"
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; charset=utf-8")
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(data)
                self.app.note(self, 200)
                return
            self.user_name = self.user()
            self.route(method, u.path.rstrip("/") or "/")
        except ApiError as e:
            if method in ("POST", "PUT", "PATCH"):
                self.drain()
            self.send_error_status(e)
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError, OSError):
            self.close_connection = True

    def drain(self):
        try:
            n = int(self.headers.get("Content-Length") or 0)
            if n and not getattr(self, "_body_read", False):
                self.rfile.read(n)
        except (ValueError, OSError):
            pass

    # -- discovery and routes
    def route(self, method, path):
        app = self.app
        if path == "/version":
            return self.send_json(200, {"major": "1", "minor": "32", "gitVersion": "v1.32.0-ferry-test",
                                        "gitCommit": "0", "gitTreeState": "clean",
                                        "buildDate": "2025-01-01T00:00:00Z", "goVersion": "go1.23",
                                        "compiler": "gc", "platform": "linux/amd64"})
        if path == "/api":
            return self.send_json(200, {"kind": "APIVersions", "versions": ["v1"],
                                        "serverAddressByClientCIDRs": [
                                            {"clientCIDR": "0.0.0.0/0",
                                             "serverAddress": f"{app.args.listen}:{app.args.port}"}]})
        if path == "/apis":
            return self.send_json(200, {"kind": "APIGroupList", "apiVersion": "v1",
                                        "groups": [app.group_obj(g) for g in app.groups()]})
        parts = path.strip("/").split("/")
        if parts[0] == "api" and len(parts) >= 2:
            group, version, rest = "", parts[1], parts[2:]
        elif parts[0] == "apis" and len(parts) >= 2:
            group = parts[1]
            if len(parts) == 2:
                if group not in app.groups():
                    raise ApiError(404, "NotFound", "the server could not find the requested resource")
                return self.send_json(200, dict(app.group_obj(group), kind="APIGroup", apiVersion="v1"))
            version, rest = parts[2], parts[3:]
        else:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        rs = [r for r in app.res_list if r.group == group and r.version == version]
        if not rs:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        if not rest:
            if method != "GET":
                raise ApiError(405, "MethodNotAllowed", "method not allowed")
            return self.send_json(200, app.resource_list(group, version))
        by_plural = {r.plural: r for r in rs}
        ns = None
        if rest[0] == "namespaces" and len(rest) >= 3 and rest[2] in by_plural \
                and by_plural[rest[2]].namespaced:
            ns, rest = rest[1], rest[2:]
        res = by_plural.get(rest[0])
        if res is None or len(rest) > 3:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        name = rest[1] if len(rest) >= 2 else None
        sub = rest[2] if len(rest) == 3 else None
        if sub is not None and not (sub == "status" and res.status):
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        if res.namespaced and ns is None and name is not None:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        self.serve_resource(method, res, ns, name, sub)

    def serve_resource(self, method, res, ns, name, sub):
        st = self.app.store
        user = self.user_name
        if name is None:
            if method == "GET":
                if self.q.get("watch") in ("1", "true"):
                    self.authorize(user, "watch", res, ns)
                    return self.watch(res, ns)
                self.authorize(user, "list", res, ns)
                return self.list(res, ns)
            if method == "POST":
                self.authorize(user, "create", res, ns)
                if res.namespaced and ns is None:
                    raise ApiError(404, "NotFound", "the server could not find the requested resource")
                body = self.read_body()
                self._body_read = True
                if self.q.get("dryRun"):
                    return self.send_json(201, body)
                return self.send_json(201, st.create(res, ns, body))
            raise ApiError(405, "MethodNotAllowed", f"{method} is not supported on a collection")
        if method == "GET":
            self.authorize(user, "get", res, ns, sub)
            o = st.get(res, ns, name)
            if self.table:
                return self.send_json(200, table(res, [o], o["metadata"]["resourceVersion"]))
            return self.send_json(200, o)
        if method == "PUT":
            self.authorize(user, "update", res, ns, sub)
            body = self.read_body()
            self._body_read = True
            return self.send_json(200, st.update(res, ns, name, body, sub))
        if method == "PATCH":
            self.authorize(user, "patch", res, ns, sub)
            body = self.read_body()
            self._body_read = True
            return self.send_json(200, st.patch(res, ns, name,
                                                self.headers.get("Content-Type", ""), body, sub))
        if method == "DELETE":
            if sub:
                raise ApiError(405, "MethodNotAllowed", "delete of a subresource")
            self.authorize(user, "delete", res, ns)
            if int(self.headers.get("Content-Length") or 0):
                self.rfile.read(int(self.headers["Content-Length"]))
            return self.send_json(200, st.delete(res, ns, name))
        raise ApiError(405, "MethodNotAllowed", f"{method} is not supported")

    def selectors(self):
        ls = parse_label_selector(self.q.get("labelSelector"))
        fs = parse_field_selector(self.q.get("fieldSelector"))
        return lambda o: ls(o["metadata"].get("labels")) and fs(o["metadata"])

    def list(self, res, ns):
        st = self.app.store
        match = self.selectors()
        limit = int(self.q.get("limit") or 0)
        cont = self.q.get("continue")
        with st.cond:
            if cont:
                try:
                    tok = json.loads(base64.b64decode(cont))
                    rv, start = int(tok["rv"]), tok["start"]
                except (ValueError, KeyError, TypeError):
                    raise ApiError(400, "BadRequest", "continue key is not valid")
                objs = st.snapshot_at(res, rv)
            else:
                rv, start = st.rv, ""
                objs = st.objs[res.key]
            keys = sorted(k for k in objs if k > start)
            items = []
            nxt = None
            for i, k in enumerate(keys):
                o = objs[k]
                if ns and o["metadata"].get("namespace") != ns:
                    continue
                if not match(o):
                    continue
                if limit and len(items) == limit:
                    nxt = keys[i - 1]
                    break
                items.append({k2: v for k2, v in o.items() if k2 not in ("kind", "apiVersion")})
            meta = {"resourceVersion": str(rv)}
            if nxt is not None:
                meta["continue"] = base64.b64encode(
                    json.dumps({"rv": rv, "start": nxt}).encode()).decode()
                rest = [k for k in keys if k > nxt]
                if not self.q.get("labelSelector") and not self.q.get("fieldSelector") and not ns:
                    meta["remainingItemCount"] = len(rest)
            out = {"kind": res.kind + "List", "apiVersion": res.gv, "metadata": meta, "items": items}
            if self.table:
                t = table(res, items, rv)
                t["metadata"] = meta
                out = t
        self.send_json(200, copy.deepcopy(out))

    # -- watch
    def chunk(self, obj):
        data = (json.dumps(obj) + "\n").encode()
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def watch(self, res, ns):
        st = self.app.store
        args = self.app.args
        match = self.selectors()
        rv_param = self.q.get("resourceVersion", "")
        bookmarks = self.q.get("allowWatchBookmarks") in ("1", "true")
        timeout = float(self.q.get("timeoutSeconds") or 0) or args.watch_timeout
        deadline = time.monotonic() + timeout
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("Cache-Control", "no-cache, private")
        self.end_headers()
        self.app.note(self, 200)
        self.close_connection = True

        def visible(o):
            return (not ns or o["metadata"].get("namespace") == ns) and match(o)

        with st.cond:
            gen = st.cut_gen
            if st.expire_next or (rv_param not in ("", "0") and int(rv_param) < st.compacted):
                st.expire_next = False
                e = status_obj(410, "Expired",
                               f"too old resource version: {rv_param} ({st.compacted + 1})")
                self.chunk({"type": "ERROR", "object": e})
                self.wfile.write(b"0\r\n\r\n")
                return
            st.watchers += 1
            pending = []
            if rv_param in ("", "0"):
                for o in sorted(st.objs[res.key].values(),
                                key=lambda o: int(o["metadata"]["resourceVersion"])):
                    if visible(o):
                        pending.append({"type": "ADDED", "object": copy.deepcopy(o)})
                last = st.rv
            else:
                last = int(rv_param)
        try:
            next_bm = time.monotonic() + args.bookmark_interval
            while True:
                for ev in pending:
                    if self.table and ev["type"] != "ERROR":
                        ev = {"type": ev["type"], "object": table(
                            res, [ev["object"]], ev["object"]["metadata"]["resourceVersion"])}
                    self.chunk(ev)
                pending = []
                nowt = time.monotonic()
                if nowt >= deadline:
                    self.wfile.write(b"0\r\n\r\n")
                    self.wfile.flush()
                    return
                if bookmarks and nowt >= next_bm:
                    # every event up to `last` has been scanned and sent
                    self.chunk({"type": "BOOKMARK", "object": {
                        "kind": res.kind, "apiVersion": res.gv,
                        "metadata": {"resourceVersion": str(last)}}})
                    next_bm = nowt + args.bookmark_interval
                with st.cond:
                    if st.cut_gen != gen:
                        raise ConnectionAbortedError
                    if last < st.compacted:   # fell behind the history: close, as a slow watcher
                        self.wfile.write(b"0\r\n\r\n")
                        return
                    new = [e for e in st.history if e.rv > last]
                    if not new:
                        st.cond.wait(min(0.5, max(0.01, deadline - time.monotonic()),
                                         max(0.01, next_bm - time.monotonic())))
                        if st.cut_gen != gen:
                            raise ConnectionAbortedError
                        new = [e for e in st.history if e.rv > last]
                    for e in new:
                        last = e.rv
                        if e.gr == res.key and visible(e.obj):
                            pending.append({"type": e.type, "object": copy.deepcopy(e.obj)})
                        elif e.gr == res.key and e.type == "MODIFIED" and e.prev is not None \
                                and visible(e.prev):
                            # left the selector: a watcher sees it deleted
                            pending.append({"type": "DELETED", "object": copy.deepcopy(e.obj)})
        except ConnectionAbortedError:
            # a cut mid-stream: half a chunk, then the connection drops
            try:
                self.wfile.write(b"40\r\n{\"type\":\"MODIF")
                self.wfile.flush()
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        finally:
            with st.cond:
                st.watchers -= 1

    # -- faults
    def fault(self, op):
        app, st = self.app, self.app.store
        if self.command == "POST" and int(self.headers.get("Content-Length") or 0):
            self.rfile.read(int(self.headers["Content-Length"]))
        q = self.q
        if op == "restart":
            self.send_json(200, {"ok": True})
            threading.Thread(target=app.restart, args=(float(q.get("down", "1")),),
                             daemon=True).start()
        elif op == "cut-watches":
            with st.cond:
                st.cut_gen += 1
                st.cond.notify_all()
            self.send_json(200, {"ok": True})
        elif op == "expire-next-watch":
            with st.cond:
                st.expire_next = True
            self.send_json(200, {"ok": True})
        elif op == "compact":
            st.compact()
            self.send_json(200, {"ok": True, "compacted": st.compacted})
        elif op == "revoke-token":
            app.tokens.pop(q.get("token"), None)
            self.send_json(200, {"ok": True})
        elif op == "allow-token":
            app.tokens[q["token"]] = q.get("user", "test")
            self.send_json(200, {"ok": True})
        elif op == "forbid":
            app.forbidden.add((q["user"], q["verb"], q["resource"]))
            self.send_json(200, {"ok": True})
        elif op == "unforbid":
            app.forbidden.discard((q["user"], q["verb"], q["resource"]))
            self.send_json(200, {"ok": True})
        elif op == "requests":
            with app.log_lock:
                reqs = list(app.requests)
            self.send_json(200, reqs)
        elif op == "watchers":
            with st.cond:
                w = {"watchers": st.watchers, "rv": st.rv}
            self.send_json(200, w)
        else:
            raise ApiError(404, "NotFound", f"unknown fault {op}")


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 64

    def __init__(self, app, addr):
        self.app = app
        self.conns = set()
        self.conns_lock = threading.Lock()
        fam = socket.AF_INET6 if ":" in addr[0] else socket.AF_INET
        self.address_family = fam
        super().__init__(addr, Handler)

    def get_request(self):
        sock, addr = self.socket.accept()
        if self.app.tls is not None:
            # the handshake runs in the request's thread (finish_request), so
            # a client that connects and stalls never blocks accept()
            sock = self.app.tls.wrap_socket(sock, server_side=True,
                                            do_handshake_on_connect=False)
        with self.conns_lock:
            self.conns.add(sock)
        return sock, addr

    def finish_request(self, request, client_address):
        if isinstance(request, ssl.SSLSocket):
            request.settimeout(10)
            try:
                request.do_handshake()
            except (ssl.SSLError, OSError) as e:
                if self.app.args.verbose:
                    sys.stderr.write(f"apiserver: TLS handshake from {client_address}: {e}\n")
                return
            request.settimeout(None)
        super().finish_request(request, client_address)

    def shutdown_request(self, request):
        with self.conns_lock:
            self.conns.discard(request)
        super().shutdown_request(request)

    def handle_error(self, request, client_address):
        if self.app.args.verbose:
            super().handle_error(request, client_address)

    def drop_all(self):
        with self.conns_lock:
            conns = list(self.conns)
        for c in conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class App:
    def __init__(self, args):
        self.args = args
        self.res_list = resources(args)
        self.store = Store(args, self.res_list)
        if args.state and os.path.exists(args.state):
            self.store.load(args.state)
        self.tokens = {}
        for t in args.token:
            tok, _, user = t.partition("=")
            self.tokens[tok] = user or "test"
        self.forbidden = set()
        for f in args.forbid:
            u, v, r = f.split(":")
            self.forbidden.add((u, v, r))
        self.requests = deque(maxlen=2000)
        self.log_lock = threading.Lock()
        self.tls = None
        if args.cert:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(args.cert, args.key)
            if args.client_ca:
                ctx.load_verify_locations(args.client_ca)
                ctx.verify_mode = ssl.CERT_OPTIONAL
            self.tls = ctx
        self.server = None
        self.stopping = threading.Event()
        self.lock = threading.Lock()

    def note(self, h, code):
        with self.log_lock:
            self.requests.append({"method": h.command, "path": h.u_path, "query": h.q,
                                  "contentType": h.headers.get("Content-Type", ""),
                                  "accept": h.headers.get("Accept", ""),
                                  "user": getattr(h, "user_name", ""), "code": code,
                                  "client": h.client_address[0]})

    def groups(self):
        out = []
        for r in self.res_list:
            if r.group and r.group not in out:
                out.append(r.group)
        return out

    def group_obj(self, g):
        vs = [{"groupVersion": f"{g}/{r.version}", "version": r.version}
              for r in self.res_list if r.group == g]
        uniq = list({v["groupVersion"]: v for v in vs}.values())
        return {"name": g, "versions": uniq, "preferredVersion": uniq[0]}

    def resource_list(self, group, version):
        out = []
        for r in self.res_list:
            if r.group != group or r.version != version:
                continue
            d = {"name": r.plural, "singularName": r.singular, "namespaced": r.namespaced,
                 "kind": r.kind, "verbs": VERBS}
            if r.short:
                d["shortNames"] = r.short
            out.append(d)
            if r.status:
                out.append({"name": f"{r.plural}/status", "singularName": "",
                            "namespaced": r.namespaced, "kind": r.kind,
                            "verbs": ["get", "patch", "update"]})
        gv = f"{group}/{version}" if group else version
        return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": out}

    def start(self):
        self.server = Server(self, (self.args.listen, self.args.port))
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.1},
                         daemon=True).start()

    def restart(self, down):
        with self.lock:
            srv = self.server
            srv.shutdown()
            srv.server_close()
            srv.drop_all()
            with self.store.cond:
                self.store.cut_gen += 1
                self.store.cond.notify_all()
            time.sleep(down)
            if self.stopping.is_set():
                return
            for _ in range(50):
                try:
                    self.start()
                    return
                except OSError:
                    time.sleep(0.1)
            sys.stderr.write("apiserver: could not listen again after restart\n")
            os._exit(1)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--listen", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=6443)
    ap.add_argument("--cert", help="server certificate (PEM); without it plain HTTP")
    ap.add_argument("--key", help="server key (PEM)")
    ap.add_argument("--client-ca", help="CA that signs accepted client certificates")
    ap.add_argument("--token", action="append", default=[], help="TOKEN[=USER], repeatable")
    ap.add_argument("--forbid", action="append", default=[], help="USER:VERB:RESOURCE")
    ap.add_argument("--anonymous", action="store_true", help="accept unauthenticated requests")
    ap.add_argument("--history", type=int, default=1000, help="events kept for watch resumption")
    ap.add_argument("--bookmark-interval", type=float, default=60.0, help="seconds")
    ap.add_argument("--watch-timeout", type=float, default=1800.0,
                    help="seconds a watch without timeoutSeconds lasts")
    ap.add_argument("--namespace-delay", type=float, default=0.5,
                    help="seconds a deleted namespace stays Terminating")
    ap.add_argument("--service-cidr", default="198.19.0.0/16")
    ap.add_argument("--metallb", action="store_true", help="serve metallb.io/v1beta1 IPAddressPools")
    ap.add_argument("--servicecidr", action="store_true",
                    help="serve networking.k8s.io/v1 ServiceCIDRs")
    ap.add_argument("--faults", action="store_true", help="serve the /_test/ fault endpoints")
    ap.add_argument("--state", help="save the store here on SIGTERM, load it at start")
    ap.add_argument("--ready-file", help="written once listening")
    ap.add_argument("--verbose", action="store_true")
    args = ap.parse_args()

    # Every thread inherits the blocked signals; the main thread takes them
    # with sigwait, so a stop is immediate.
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGINT})
    app = App(args)
    app.start()
    if args.ready_file:
        with open(args.ready_file, "w") as f:
            f.write(f"{os.getpid()}\n")
    signal.sigwait({signal.SIGTERM, signal.SIGINT})
    app.stopping.set()
    if args.state:
        app.store.save(args.state)
    os._exit(0)


if __name__ == "__main__":
    main()
