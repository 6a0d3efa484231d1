#!/usr/bin/python3
"""k8s_check.py — the deploy check's helper (deploy/check.sh), on rendered manifests
(`kubectl kustomize` output) and on the running pods.

  validate FILE [--gpu] [--tls]
                          the manifests hang together: every Service selects a
                          Deployment's pods and names a port they declare, every
                          ConfigMap a pod mounts exists, every Nexus daemon has
                          startup/readiness/liveness probes on a port it declares and
                          a metrics port matching its prometheus.io annotations, the
                          daemons find the scheduler by its Service's name and port,
                          one scheduler, backends = the experiment's cluster.gpus,
                          and with --gpu one nvidia.com/gpu per backend (none without).
                          Startup/readiness probes: gRPC health on the gRPC port; with
                          --tls, HTTP /readyz on the metrics port (the kubelet's gRPC
                          probes cannot speak TLS), and every daemon has the TLS,
                          mutual-TLS and token options, each file in a mounted Secret
  aliases FILE            for podman kube play, which has no Services: one line per
                          pod, "POD SERVICE...", the Services whose selector matches
                          the pod (podman names a Deployment's pods NAME-pod-I)
  podman FILE OUT [--secrets DIR]
                          OUT = FILE as podman 4.3's kube play should get it: no
                          container ports (it would publish every one on the host,
                          so two replicas collide) and no probes (it runs no gRPC
                          probes, and HTTP ones only through systemd timers; the
                          deploy check runs them itself); with --secrets, every
                          Secret (or projected Secrets) volume a hostPath volume of
                          DIR (podman 4.3's kube play crashes on Secret volumes)
  replacement FILE DEPLOYMENT NAME OUT
                          OUT = one more pod of DEPLOYMENT, as the ReplicaSet would
                          start for a deleted one: the Deployment renamed NAME (podman
                          names pods after it) with 1 replica, and its ConfigMaps
  probes FILE POD=IP...   each pod's startup and readiness probes as FILE declares
                          them (its Deployment: POD less "-pod-N"), run against IP as
                          the kubelet would: httpGet (200-399), tcpSocket, grpc
  health ADDR[/SERVICE]...  grpc.health.v1.Health/Check (service "" unless named)
                          on each ADDR, as the kubelet's grpc probe; exit 0 when
                          all are SERVING
  served ADDR...          each backend's requests served so far (the sum of
                          nv_inference_request_success on http://ADDR/metrics)
  targets URL JOB=N...    Prometheus at URL: every target up and JOB has N of them
Exit status 0 when the check holds, 1 with a message naming what does not.
"""
import json
import socket
import sys
import urllib.error
import urllib.request

import yaml

DAEMONS = ("nexus-scheduler", "nexus-backend", "nexus-frontend")


def fail(msg):
    print(f"k8s_check: {msg}", file=sys.stderr)
    sys.exit(1)


def load(path):
    with open(path) as f:
        docs = [d for d in yaml.safe_load_all(f) if d]
    return docs


def by_kind(docs, kind):
    return [d for d in docs if d.get("kind") == kind]


def selects(selector, labels):
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def arg_value(args, flag):
    for i, a in enumerate(args):
        if a.startswith(flag + "="):
            return a.split("=", 1)[1].split()[0]
        if a == flag and i + 1 < len(args):
            return args[i + 1]
    return None


TLS_FILES = ("--tls-cert", "--tls-key", "--tls-ca", "--token-file")


def secret_volume(v):
    """The Secrets a volume projects: {file name: (secret, key)}, or None."""
    if "secret" in v:
        items = v["secret"].get("items")
        return {i["path"]: (v["secret"]["secretName"], i["key"]) for i in items} if items else {}
    if "projected" in v:
        out = {}
        for src in v["projected"]["sources"]:
            if "secret" not in src:
                return None
            for i in src["secret"].get("items", []):
                out[i["path"]] = (src["secret"]["name"], i["key"])
        return out
    return None


def validate(path, gpu, tls):
    docs = load(path)
    deps = {d["metadata"]["name"]: d for d in by_kind(docs, "Deployment")}
    svcs = {d["metadata"]["name"]: d for d in by_kind(docs, "Service")}
    cms = {d["metadata"]["name"]: d for d in by_kind(docs, "ConfigMap")}
    for name in DAEMONS:
        if name not in deps:
            fail(f"{path}: no Deployment {name}")
    for sname, s in svcs.items():
        sel = s["spec"].get("selector") or {}
        matched = [d for d in deps.values() if selects(sel, d["spec"]["template"]["metadata"]["labels"])]
        if not matched:
            fail(f"{path}: Service {sname} selects no Deployment's pods ({sel})")
        for d in matched:
            if not selects(d["spec"]["selector"]["matchLabels"], d["spec"]["template"]["metadata"]["labels"]):
                fail(f"{path}: Deployment {d['metadata']['name']}: selector does not match its template")
            ports = [p for c in d["spec"]["template"]["spec"]["containers"] for p in c.get("ports", [])]
            for sp in s["spec"]["ports"]:
                tp = sp.get("targetPort", sp["port"])
                if not any(p.get("name") == tp or p["containerPort"] == tp for p in ports):
                    fail(f"{path}: Service {sname} port {sp['port']}: target {tp} is no port of "
                         f"Deployment {d['metadata']['name']}")
    sched_svc = svcs.get("nexus-scheduler")
    if not sched_svc:
        fail(f"{path}: no Service nexus-scheduler (the daemons' only way to the scheduler)")
    sched_port = sched_svc["spec"]["ports"][0]["port"]
    if deps["nexus-scheduler"]["spec"].get("replicas", 1) != 1:
        fail(f"{path}: the scheduler must have 1 replica")
    experiment = None
    for dname, d in deps.items():
        pod = d["spec"]["template"]["spec"]
        vols = {v["name"]: v for v in pod.get("volumes", [])}
        pvcs = {d["metadata"]["name"] for d in by_kind(docs, "PersistentVolumeClaim")}
        for v in vols.values():
            # nexus-models is the operator's (filled with the ONNX models beforehand)
            claim = v.get("persistentVolumeClaim", {}).get("claimName")
            if claim and claim not in pvcs and claim != "nexus-models":
                fail(f"{path}: Deployment {dname} mounts PersistentVolumeClaim {claim}, which is not there")
            if "configMap" in v and v["configMap"]["name"] not in cms:
                fail(f"{path}: Deployment {dname} mounts ConfigMap {v['configMap']['name']}, which is not there")
        for c in pod["containers"]:
            if c["image"] in ("nexus", "nexus-prometheus"):
                fail(f"{path}: Deployment {dname}: image '{c['image']}' was not replaced (kustomize images:)")
            for m in c.get("volumeMounts", []):
                if m["name"] not in vols:
                    fail(f"{path}: Deployment {dname}: volumeMount {m['name']} has no volume")
            if dname not in DAEMONS:
                continue
            ports = {p.get("name"): p["containerPort"] for p in c.get("ports", [])}
            for probe in ("startupProbe", "readinessProbe"):
                p = c.get(probe)
                # the Service routes to ready pods only: a scheduler that is ready only
                # once backends attached would never be reached by them
                service = "nexus.Scheduler" if dname == "nexus-scheduler" else ""
                if tls:
                    # the kubelet's gRPC probes speak plaintext: on a TLS port they fail
                    want = "/readyz" + ("/" + service if service else "")
                    h = (p or {}).get("httpGet", {})
                    if not p or "grpc" in p or h.get("path") != want or \
                            h.get("port") not in ("metrics", ports.get("metrics")):
                        fail(f"{path}: Deployment {dname}: {probe} is not GET {want} on the metrics port")
                    continue
                if not p or "grpc" not in p:
                    fail(f"{path}: Deployment {dname}: no gRPC {probe}")
                if p["grpc"]["port"] != ports.get("grpc"):
                    fail(f"{path}: Deployment {dname}: {probe} on port {p['grpc']['port']}, not its grpc port")
                if p["grpc"].get("service", "") != service:
                    fail(f"{path}: the {dname}'s {probe} must ask for service '{service}'")
            if tls:
                for flag in ("--tls-verify-clients", "--tls-server-name") + TLS_FILES:
                    if not any(a == flag or a.startswith(flag + "=") for a in c["args"]):
                        fail(f"{path}: Deployment {dname}: no {flag}")
                for flag in TLS_FILES:
                    f = arg_value(c["args"], flag)
                    m = next((m for m in c.get("volumeMounts", []) if f.startswith(m["mountPath"] + "/")), None)
                    files = secret_volume(vols[m["name"]]) if m else None
                    if files is None or f[len(m["mountPath"]) + 1:] not in files:
                        fail(f"{path}: Deployment {dname}: {flag} {f} is not a file of a mounted Secret")
            live = c.get("livenessProbe", {}).get("httpGet", {})
            if live.get("path") != "/healthz" or live.get("port") not in ("metrics", ports.get("metrics")):
                fail(f"{path}: Deployment {dname}: livenessProbe is not GET /healthz on the metrics port")
            ann = d["spec"]["template"]["metadata"].get("annotations", {})
            metrics = arg_value(c["args"], "--metrics")
            if ann.get("prometheus.io/scrape") != "true" or not metrics:
                fail(f"{path}: Deployment {dname}: no --metrics port or prometheus.io/scrape annotation")
            mport = int(metrics.rsplit(":", 1)[1])
            if int(ann.get("prometheus.io/port", -1)) != mport or ports.get("metrics") != mport:
                fail(f"{path}: Deployment {dname}: --metrics port {mport}, annotation "
                     f"{ann.get('prometheus.io/port')}, declared metrics port {ports.get('metrics')}")
            if dname != "nexus-scheduler":
                sched = arg_value(c["args"], "--scheduler")
                if sched != f"nexus-scheduler:{sched_port}":
                    fail(f"{path}: Deployment {dname}: --scheduler {sched}, want the Service nexus-scheduler:{sched_port}")
            else:
                listen = arg_value(c["args"], "--listen")
                if not listen or int(listen.rsplit(":", 1)[1]) != ports.get("grpc"):
                    fail(f"{path}: the scheduler listens on {listen}, not its grpc port {ports.get('grpc')}")
            exp_path = c["args"][1]
            mount = next((m for m in c.get("volumeMounts", []) if exp_path.startswith(m["mountPath"] + "/")), None)
            if not mount or "configMap" not in vols[mount["name"]]:
                fail(f"{path}: Deployment {dname}: experiment {exp_path} is not in a mounted ConfigMap")
            cm = cms[vols[mount["name"]]["configMap"]["name"]]
            key = exp_path[len(mount["mountPath"]) + 1:]
            if key not in cm.get("data", {}):
                fail(f"{path}: ConfigMap {cm['metadata']['name']} has no {key}")
            experiment = yaml.safe_load(cm["data"][key])
            if dname == "nexus-backend":
                gpus = c.get("resources", {}).get("limits", {}).get("nvidia.com/gpu")
                if gpu and str(gpus) != "1":
                    fail(f"{path}: a backend must ask for one nvidia.com/gpu (has {gpus})")
                if not gpu and gpus is not None:
                    fail(f"{path}: emulated backends ask for nvidia.com/gpu {gpus}")
    want = experiment["cluster"]["gpus"]
    if deps["nexus-backend"]["spec"]["replicas"] != want:
        fail(f"{path}: {deps['nexus-backend']['spec']['replicas']} backend replicas, the experiment's cluster.gpus is {want}")
    print(f"k8s_check: {path}: {len(deps)} Deployments, {len(svcs)} Services, {len(cms)} ConfigMaps hang together"
          + (" (TLS, mutual TLS and the token on every daemon, HTTP probes)" if tls else ""))


def aliases(path):
    docs = load(path)
    svcs = by_kind(docs, "Service")
    for d in by_kind(docs, "Deployment"):
        labels = d["spec"]["template"]["metadata"]["labels"]
        names = [s["metadata"]["name"] for s in svcs if selects(s["spec"].get("selector"), labels)]
        for i in range(d["spec"].get("replicas", 1)):
            print(f"{d['metadata']['name']}-pod-{i}", *names)


def for_podman(path, out, secrets):
    docs = load(path)
    for d in by_kind(docs, "Deployment"):
        for c in d["spec"]["template"]["spec"]["containers"]:
            for k in ("ports", "startupProbe", "readinessProbe", "livenessProbe"):
                c.pop(k, None)
        for v in d["spec"]["template"]["spec"].get("volumes", []):
            if secret_volume(v) is not None:
                if not secrets:
                    fail(f"{path}: Deployment {d['metadata']['name']}: Secret volume {v['name']} needs --secrets DIR")
                v.pop("secret", None)
                v.pop("projected", None)
                v["hostPath"] = {"path": secrets, "type": "Directory"}
    with open(out, "w") as f:
        yaml.safe_dump_all(docs, f, sort_keys=False)


def replacement(path, deployment, name, out):
    docs = load(path)
    dep = next((d for d in by_kind(docs, "Deployment") if d["metadata"]["name"] == deployment), None)
    if not dep:
        fail(f"{path}: no Deployment {deployment}")
    dep["metadata"]["name"] = name
    dep["spec"]["replicas"] = 1
    with open(out, "w") as f:
        yaml.safe_dump_all(by_kind(docs, "ConfigMap") + [dep], f, sort_keys=False)


def probes(path, pods):
    docs = load(path)
    deps = {d["metadata"]["name"]: d for d in by_kind(docs, "Deployment")}
    bad, kinds = [], set()
    for spec in pods:
        pod, ip = spec.split("=")
        dep = deps.get(pod.rsplit("-pod-", 1)[0])
        if not dep:
            fail(f"{path}: no Deployment for pod {pod}")
        for c in dep["spec"]["template"]["spec"]["containers"]:
            ports = {p.get("name"): p["containerPort"] for p in c.get("ports", [])}
            for probe in ("startupProbe", "readinessProbe"):
                p = c.get(probe)
                if not p:
                    continue
                kind = next(k for k in ("httpGet", "tcpSocket", "grpc") if k in p)
                port = ports.get(p[kind]["port"], p[kind]["port"])
                what = f"{pod} {probe} {kind}"
                try:
                    if kind == "httpGet":
                        what += " " + p[kind]["path"]
                        with urllib.request.urlopen(f"http://{ip}:{port}{p[kind]['path']}", timeout=3) as r:
                            ok = 200 <= r.status < 400
                    elif kind == "tcpSocket":
                        socket.create_connection((ip, port), timeout=3).close()
                        ok = True
                    else:
                        ok = grpc_serving(f"{ip}:{port}", p[kind].get("service", "")) is None
                except (OSError, urllib.error.URLError) as e:
                    ok, what = False, f"{what}: {e}"
                kinds.add(f"{kind} {p[kind].get('path', '')}".strip())
                if not ok:
                    bad.append(what)
    if bad:
        fail("probes fail: " + ", ".join(bad))
    print(f"k8s_check: {len(pods)} pods pass their startup and readiness probes ({', '.join(sorted(kinds))})")


def grpc_serving(addr, service):
    """None when grpc.health.v1.Health/Check says SERVING (plaintext, as the kubelet
    asks), else what it said."""
    import grpc
    # HealthCheckRequest{service = 1 (string)}
    req = b"\x0a" + bytes([len(service)]) + service.encode() if service else b""
    with grpc.insecure_channel(addr) as ch:
        check = ch.unary_unary("/grpc.health.v1.Health/Check",
                               request_serializer=lambda b: b, response_deserializer=lambda b: b)
        try:
            resp = check(req, timeout=3)
        except grpc.RpcError as e:
            return e.code().name
    # HealthCheckResponse{status = 1}: field 1, varint; SERVING is 1
    status = resp[1] if len(resp) >= 2 and resp[0] == 0x08 else 0
    return None if status == 1 else f"status {status}"


def health(addrs):
    bad = []
    for spec in addrs:
        addr, _, service = spec.partition("/")
        why = grpc_serving(addr, service)
        if why:
            bad.append(f"{spec}: {why}")
    if bad:
        fail("not serving: " + ", ".join(bad))
    print(f"k8s_check: {len(addrs)} daemons SERVING (grpc.health.v1)")


def served(addrs):
    for addr in addrs:
        total = 0
        with urllib.request.urlopen(f"http://{addr}/metrics", timeout=5) as r:
            for line in r.read().decode().splitlines():
                if line.startswith("nv_inference_request_success"):
                    total += float(line.rsplit(" ", 1)[1])
        print(addr, int(total))


def targets(url, wants):
    with urllib.request.urlopen(url.rstrip("/") + "/api/v1/targets", timeout=5) as r:
        active = json.load(r)["data"]["activeTargets"]
    counts = {}
    for t in active:
        job = t["labels"]["job"]
        if t["health"] != "up":
            fail(f"target {t['scrapeUrl']} ({job}) is {t['health']}: {t.get('lastError')}")
        counts[job] = counts.get(job, 0) + 1
    for w in wants:
        job, n = w.split("=")
        if counts.get(job, 0) != int(n):
            fail(f"job {job}: {counts.get(job, 0)} targets up, want {n}")
    print("k8s_check: Prometheus scrapes " + ", ".join(f"{j}: {n} up" for j, n in sorted(counts.items())))


def main(argv):
    if len(argv) < 2 or argv[1] in ("-h", "--help"):
        print(__doc__)
        return 0 if len(argv) >= 2 else 2
    cmd, rest = argv[1], argv[2:]
    if cmd == "validate" and rest:
        validate(rest[0], "--gpu" in rest[1:], "--tls" in rest[1:])
    elif cmd == "aliases" and len(rest) == 1:
        aliases(rest[0])
    elif cmd == "podman" and len(rest) in (2, 4) and (len(rest) == 2 or rest[2] == "--secrets"):
        for_podman(rest[0], rest[1], rest[3] if len(rest) == 4 else None)
    elif cmd == "probes" and len(rest) >= 2:
        probes(rest[0], rest[1:])
    elif cmd == "replacement" and len(rest) == 4:
        replacement(*rest)
    elif cmd == "health" and rest:
        health(rest)
    elif cmd == "served" and rest:
        served(rest)
    elif cmd == "targets" and rest:
        targets(rest[0], rest[1:])
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
