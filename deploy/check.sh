#!/bin/bash
# `make deploy-check`: the Kubernetes manifests, run for real on this machine with
# podman kube play (deploy/README.md). Needs root; not part of `make test`.
#
#  1. renders deploy/k8s/base (GPU) and deploy/k8s/emulated with Debian's kubectl
#     (deploy/kubectl.sh) and checks that they hang together (deploy/k8s_check.py)
#  2. builds the images (deploy/image.sh; SKIP_IMAGE=1 reuses them)
#  3. plays the emulated overlay on its own podman network: a scheduler, two emulated
#     backends, two frontends and Prometheus. podman has no Services (nor kube-proxy):
#     each pod gets the names of the Services that select it as DNS aliases on the
#     network, so `nexus-scheduler` and `nexus-frontend` resolve as in a cluster
#     (to the pods, not to a virtual IP). podman runs no gRPC probes either: the check
#     asks every daemon's grpc.health.v1.Health itself, as the kubelet would. podman
#     gets the manifests without container ports (podman 4.3 would publish each on the
#     host, and two replicas collide) and without probes (k8s_check.py podman).
#  4. waits until every daemon is SERVING and Prometheus scrapes all five
#  5. a KServe client (nexus-loadgen, in a container on the network) sends the
#     experiment's queries to nexus-frontend:8001; 6 s in, the backend pod that has
#     served most is deleted.
#     Passes when every query is answered (none unanswered), answers are ok, the
#     scheduler saw the backend go and re-planned, and the surviving backend served.
#  6. starts the replacement backend pod the Deployment would (podman does not): it
#     registers, is SERVING, and Prometheus scrapes it
#  7. deletes the scheduler pod and starts its replacement: it resumes the state file
#     on the PersistentVolumeClaim, every daemon is SERVING again (the nodes re-attach
#     through the Service name), and Prometheus scrapes all five.
#  8. TLS: the pods go, and deploy/k8s/tls's patches over the emulated layout are played
#     with certificates and a token made here (tools/test-pki.sh; podman 4.3 crashes on
#     Secret volumes, so the Secrets are a host directory): every pod passes the probes
#     the overlay declares (HTTP /readyz on the metrics port) while a plaintext gRPC
#     probe fails on the TLS port; KServe clients of a frontend are refused without TLS,
#     a client certificate or the token, and served with them; a load generator with
#     them gets every query answered through nexus-frontend:8001; Prometheus scrapes all.
# Output: build/deploy-check/ (rendered manifests, the client's summary.json, every
# container's log; logs-tls/, load-tls/ for step 8). KEEP=1 leaves the pods running.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
export CONTAINERS_CONF=${CONTAINERS_CONF:-$here/deploy/containers.conf}
PY=/usr/bin/python3
NET=nexus-deploy-check
out=$here/build/deploy-check
T0=$SECONDS
say() { echo "deploy-check: [$((SECONDS - T0)) s] $*"; }
die() { echo "deploy-check: FAILED: $*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "needs root (rootful podman)"
missing=""
for p in python3-yaml python3-grpcio python3-grpc-tools podman openssl; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
  say "installing$missing"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing > /dev/null
fi
rm -rf "$out" && mkdir -p "$out/logs" "$out/load" "$out/load-tls" "$out/logs-tls"
LOGDIR=$out/logs

# --- 1. render and validate ---------------------------------------------------------
deploy/kubectl.sh kustomize deploy/k8s/base > "$out/base.yaml"
deploy/kubectl.sh kustomize deploy/k8s/emulated > "$out/emulated.yaml"
$PY deploy/k8s_check.py validate "$out/base.yaml" --gpu
$PY deploy/k8s_check.py validate "$out/emulated.yaml"
# the TLS overlay, and its patches over the emulated layout (what step 8 plays): its
# files with their base pointed at ../emulated (kustomize 2.0.3 loads no patch file
# from outside an overlay's directory, so the overlay cannot be written twice otherwise)
deploy/kubectl.sh kustomize deploy/k8s/tls > "$out/tls.yaml"
etls=$out/k8s-emulated-tls
mkdir -p "$etls" && cp deploy/k8s/tls/*.yaml "$etls/"
sed -i "s|^  - ../base\$|  - $(realpath --relative-to="$etls" deploy/k8s/emulated)|" "$etls/kustomization.yaml"
grep -q "k8s/emulated$" "$etls/kustomization.yaml" || die "deploy/k8s/tls/kustomization.yaml: no '  - ../base' line"
deploy/kubectl.sh kustomize "$etls" > "$out/emulated-tls.yaml"
$PY deploy/k8s_check.py validate "$out/tls.yaml" --gpu --tls
$PY deploy/k8s_check.py validate "$out/emulated-tls.yaml" --tls
for f in deploy/k8s/base/profiles/*.yml; do   # the ConfigMap's copies of the measured profiles
  cmp -s "$f" "profiles/h100/$(basename "$f")" || die "$f differs from profiles/h100/$(basename "$f")"
done

# --- 2. images -------------------------------------------------------------------------
if [ "${SKIP_IMAGE:-0}" != 1 ]; then deploy/image.sh; fi
for i in localhost/nexus:latest localhost/nexus-prometheus:latest; do
  podman image exists "$i" || die "no image $i (make image)"
done
# both Prometheus configurations (Kubernetes, compose), by Debian's promtool
for f in deploy/k8s/prometheus/prometheus.yml deploy/compose-prometheus.yml; do
  podman run --rm --network none --entrypoint promtool -v "$here/$f:/p.yml:ro" \
    localhost/nexus-prometheus:latest check config /p.yml > "$out/promtool.log" 2>&1 \
    || { cat "$out/promtool.log" >&2; die "promtool check config $f"; }
done
say "rendered manifests hang together; promtool accepts both Prometheus configurations"

# --- 3. play ------------------------------------------------------------------------------
logs() {
  for c in $(podman ps -a --format '{{.Names}}' | grep -E '^nexus-(scheduler|backend|backend-new|frontend|prometheus)-pod-'); do
    podman logs "$c" > "$LOGDIR/$c.log" 2>&1 || true
  done
}
pods_down() {   # every pod played, and their volumes
  podman rm -f nexus-check-client > /dev/null 2>&1 || true
  # (by name: podman 4.3's kube play --down stops at a pod deleted already)
  for p in $(podman pod ps --format '{{.Name}}' | grep -E '^nexus-(scheduler|backend|backend-new|frontend|prometheus)-pod-'); do
    podman pod rm -f "$p" > /dev/null 2>&1 || true
  done
  # the claim's volume and the ConfigMaps' (podman 4.3's --down leaves them)
  for v in $(podman volume ls --format '{{.Name}}' | grep '^nexus-'); do
    podman volume rm -f "$v" > /dev/null 2>&1 || true
  done
}
teardown() {
  logs
  if [ "${KEEP:-0}" = 1 ]; then
    say "KEEP=1: pods left running (podman pod rm -f them)"
    return
  fi
  pods_down
  podman network rm -f "$NET" > /dev/null 2>&1 || true
}
$PY deploy/k8s_check.py podman "$out/emulated.yaml" "$out/podman.yaml"
alias_pod() {   # alias_pod POD SERVICE...: the Services' names for POD on the network
  local pod=$1 infra s args=()
  shift
  infra=$(podman pod inspect "$pod" --format '{{.InfraContainerID}}')
  for s in "$@"; do args+=(--alias "$s"); done
  podman network disconnect "$NET" "$infra"
  podman network connect "${args[@]}" "$NET" "$infra"
}
pods_down   # what an earlier run (KEEP=1) left
podman network rm -f "$NET" > /dev/null 2>&1 || true
podman network create "$NET" > /dev/null
trap teardown EXIT
podman volume rm -f nexus-scheduler-state > /dev/null 2>&1 || true   # no state from an earlier run
play() {   # play MANIFESTS PODMAN_YAML: its pods on the network, started
  podman kube play --start=false --network "$NET" "$2" > /dev/null
  # what fsGroup: 10001 does on Kubernetes (podman ignores it): the unprivileged daemons
  # may write the PersistentVolumeClaims' volumes
  for v in $(podman volume ls --format '{{.Name}}' | grep '^nexus-'); do
    chown 10001:10001 "$(podman volume inspect "$v" --format '{{.Mountpoint}}')"
  done
  # the Services, as DNS names on the network
  $PY deploy/k8s_check.py aliases "$1" > "$out/aliases"
  while read -r pod svcs; do
    alias_pod "$pod" $svcs
  done < "$out/aliases"
  # scheduler first (the others would retry until it serves), then the rest
  podman pod start nexus-scheduler-pod-0 > /dev/null
  for p in nexus-backend-pod-0 nexus-backend-pod-1 nexus-frontend-pod-0 nexus-frontend-pod-1 \
           nexus-prometheus-pod-0; do
    podman pod start "$p" > /dev/null
  done
  say "pods started: $(podman pod ps --format '{{.Name}}' | grep -c '^nexus-')"
  S=$(ip_of nexus-scheduler-pod-0)
  B0=$(ip_of nexus-backend-pod-0); B1=$(ip_of nexus-backend-pod-1)
  F0=$(ip_of nexus-frontend-pod-0); F1=$(ip_of nexus-frontend-pod-1)
  P=$(ip_of nexus-prometheus-pod-0)
}
ip_of() {
  local infra ip="" i
  infra=$(podman pod inspect "$1" --format '{{.InfraContainerID}}')
  for i in $(seq 20); do
    ip=$(podman inspect "$infra" --format "{{(index .NetworkSettings.Networks \"$NET\").IPAddress}}")
    [ -n "$ip" ] && break
    sleep 0.5
  done
  [ -n "$ip" ] || die "pod $1 has no address on $NET"
  echo "$ip"
}
play "$out/emulated.yaml" "$out/podman.yaml"

# --- 4. probes and scraping ---------------------------------------------------------------
health=("$S:10001" "$B0:7001" "$B1:7001" "$F0:8001" "$F1:8001")
wait_for() {   # wait_for SECONDS WHAT COMMAND...
  local limit=$1 what=$2; shift 2
  local t=$SECONDS
  until "$@" > "$out/last-wait" 2>&1; do
    if [ $((SECONDS - t)) -ge "$limit" ]; then
      cat "$out/last-wait" >&2
      die "$what: not within $limit s"
    fi
    sleep 1
  done
  cat "$out/last-wait"
}
wait_for 90 "every daemon SERVING" $PY deploy/k8s_check.py health "${health[@]}"
say "probes pass (the kubelet's grpc probes: scheduler, 2 backends, 2 frontends)"
wait_for 60 "Prometheus scraping every daemon" \
  $PY deploy/k8s_check.py targets "http://$P:9090" nexus-scheduler=1 nexus-backend=2 nexus-frontend=2

# --- 5. queries through the Service, a backend pod deleted ------------------------------
client() {   # client OUT [PODMAN_ARGS... --] [LOADGEN_ARGS...]: nexus-loadgen in a container
  local dir=$1 pargs=() largs=()
  shift
  while [ $# -gt 0 ] && [ "$1" != -- ]; do pargs+=("$1"); shift; done
  [ $# -gt 0 ] && shift
  largs=("$@")
  chmod 0777 "$dir"
  podman run -d --name nexus-check-client --network "$NET" \
    -v "$here/deploy/k8s/emulated/experiment.yml:/etc/nexus/experiment/experiment.yml:ro" \
    -v "$here/deploy/k8s/base/profiles:/etc/nexus/profiles:ro" \
    -v "$dir:/out" "${pargs[@]}" localhost/nexus:latest \
    nexus-loadgen /etc/nexus/experiment/experiment.yml --frontend nexus-frontend:8001 \
    --scheduler nexus-scheduler:10001 --out /out --quiet "${largs[@]}" > /dev/null
  say "client started: nexus-loadgen -> nexus-frontend:8001 (KServe v2)"
}
client_done() {   # client_done OUT: wait for the client; every query answered, most ok
  local rc
  rc=$(podman wait nexus-check-client)
  podman logs nexus-check-client > "$LOGDIR/nexus-check-client.log" 2>&1 || true
  podman rm nexus-check-client > /dev/null
  [ "$rc" = 0 ] || { tail -20 "$LOGDIR/nexus-check-client.log" >&2; die "nexus-loadgen exited $rc"; }
  $PY - "$1/summary.json" <<'EOF'
import json, sys
s = json.load(open(sys.argv[1]))
run = s["results"][0]
keys = ("sent", "ok", "late", "dropped", "unanswered")
c = {k: run[k] for k in keys}
print("deploy-check: queries " + ", ".join(f"{k} {v}" for k, v in c.items()))
if c["sent"] == 0 or c["ok"] < 0.5 * c["sent"]:
    sys.exit("deploy-check: FAILED: too few queries answered ok")
if c["unanswered"] != 0 or c["ok"] + c["late"] + c["dropped"] != c["sent"]:
    sys.exit("deploy-check: FAILED: queries lost")
EOF
}
client "$out/load"
sleep 6
# delete the backend pod that serves (the load fits one GPU, so the plan may use one)
$PY deploy/k8s_check.py served "$B0:9400" "$B1:9400" > "$out/served-before"
read -r _ n0 < <(sed -n 1p "$out/served-before"); read -r _ n1 < <(sed -n 2p "$out/served-before")
if [ "$n1" -ge "$n0" ]; then victim=nexus-backend-pod-1 vn=$n1 survivor=$B0 sn=$n0
else victim=nexus-backend-pod-0 vn=$n0 survivor=$B1 sn=$n1; fi
[ "$vn" -gt 0 ] || die "no backend has served a request 6 s into the run"
podman pod rm -f "$victim" > /dev/null
say "backend pod $victim deleted (it had served $vn requests, the other $sn)"
client_done "$out/load"
logs
slog=$(ls "$out"/logs/nexus-scheduler-pod-0-*.log)
gone=$(grep -m1 -E "backend [0-9]+ gone" "$slog") || die "the scheduler never saw the deleted backend go ($slog)"
replan=$(grep -m1 -E "re-planned without backend [0-9]+" "$slog") || die "the scheduler did not re-plan without the deleted backend ($slog)"
say "scheduler: ${gone#*: }"
say "scheduler: ${replan#*: }"
read -r _ after < <($PY deploy/k8s_check.py served "$survivor:9400")
[ "$after" -gt "$sn" ] || die "the surviving backend served nothing after the deletion ($sn before, $after after)"
say "the surviving backend served $((after - sn)) requests after the deletion"

# --- 6. the Deployment's replacement pod registers ----------------------------------------
# (Kubernetes' ReplicaSet starts it by itself; podman does not, so the check does)
$PY deploy/k8s_check.py replacement "$out/podman.yaml" nexus-backend nexus-backend-new "$out/replacement.yaml"
podman kube play --start=false --network "$NET" "$out/replacement.yaml" > /dev/null
alias_pod nexus-backend-new-pod-0 nexus-backend-metrics
podman pod start nexus-backend-new-pod-0 > /dev/null
BN=$(ip_of nexus-backend-new-pod-0)
wait_for 60 "the replacement backend SERVING" $PY deploy/k8s_check.py health "$BN:7001"
logs
reg=$(grep -E "backend [0-9]+ registered" "$slog" | tail -1)
say "replacement backend pod: ${reg#*: }"
wait_for 30 "Prometheus scraping the replacement" \
  $PY deploy/k8s_check.py targets "http://$P:9090" nexus-scheduler=1 nexus-backend=2 nexus-frontend=2

# --- 7. the scheduler pod deleted: its replacement resumes the state file -----------------
podman pod rm -f nexus-scheduler-pod-0 > /dev/null
$PY deploy/k8s_check.py replacement "$out/podman.yaml" nexus-scheduler nexus-scheduler "$out/scheduler.yaml"
podman kube play --start=false --network "$NET" "$out/scheduler.yaml" > /dev/null
alias_pod nexus-scheduler-pod-0 $(sed -n 's/^nexus-scheduler-pod-0 //p' "$out/aliases")
podman pod start nexus-scheduler-pod-0 > /dev/null
S=$(ip_of nexus-scheduler-pod-0)
wait_for 60 "the daemons SERVING after the scheduler's restart" \
  $PY deploy/k8s_check.py health "$S:10001" "$survivor:7001" "$BN:7001" "$F0:8001" "$F1:8001"
logs
resumed=$(grep -E "state: resuming from" "$slog" | tail -1) || die "the restarted scheduler did not resume its state file"
say "replacement scheduler pod: ${resumed#*: }"
wait_for 30 "Prometheus scraping every daemon" \
  $PY deploy/k8s_check.py targets "http://$P:9090" nexus-scheduler=1 nexus-backend=2 nexus-frontend=2

# --- 8. TLS: deploy/k8s/tls's patches over the emulated layout ---------------------------
logs
pods_down
LOGDIR=$out/logs-tls
tools/test-pki.sh "$out/pki" DNS:nexus,DNS:nexus-scheduler,DNS:nexus-frontend
# the Secrets nexus-tls and nexus-token as the pods see them (files of the pods' group on
# Kubernetes: fsGroup 10001, mode 0440); podman 4.3's kube play crashes on Secret volumes,
# so they reach it as a host directory (k8s_check.py podman --secrets)
sec=$out/tls-secret
mkdir -p "$sec"
cp "$out/pki/node.pem" "$sec/tls.crt"; cp "$out/pki/node.key" "$sec/tls.key"
cp "$out/pki/ca.pem" "$sec/ca.crt"; cp "$out/pki/token" "$sec/token"
chown -R 10001:10001 "$sec" && chmod 0500 "$sec" && chmod 0400 "$sec"/*
$PY deploy/k8s_check.py podman "$out/emulated-tls.yaml" "$out/podman-tls.yaml" --secrets "$sec"
play "$out/emulated-tls.yaml" "$out/podman-tls.yaml"
wait_for 90 "the TLS pods' probes" $PY deploy/k8s_check.py probes "$out/emulated-tls.yaml" \
  nexus-scheduler-pod-0="$S" nexus-backend-pod-0="$B0" nexus-backend-pod-1="$B1" \
  nexus-frontend-pod-0="$F0" nexus-frontend-pod-1="$F1"
say "TLS pods pass the overlay's probes (HTTP /readyz on the metrics ports)"
# what the base's probe would do: the kubelet's gRPC probe speaks plaintext
if $PY deploy/k8s_check.py health "$S:10001/nexus.Scheduler" "$F0:8001" > "$out/grpc-probe.log" 2>&1; then
  die "a plaintext gRPC health probe passed on a TLS port"
fi
say "a plaintext gRPC probe on the TLS ports fails: $(sed 's/^k8s_check: //' "$out/grpc-probe.log")"
wait_for 60 "Prometheus scraping every TLS daemon" \
  $PY deploy/k8s_check.py targets "http://$P:9090" nexus-scheduler=1 nexus-backend=2 nexus-frontend=2
# KServe clients of a frontend pod (Debian's python3-grpcio): refused over plaintext,
# without a client certificate, with one from another CA, without or with a wrong
# token; served with the CA, the client certificate and the token
mkdir -p "$out/stubs"
$PY -m grpc_tools.protoc -I real/proto --python_out="$out/stubs" --grpc_python_out="$out/stubs" \
  real/proto/health.proto real/proto/inference.proto
$PY tests/real/ops_client.py secure "$out/stubs" "$F0:8001" "$out/pki" "$(cat "$out/pki/token")" 1 nexus \
  > "$out/secure.log" 2>&1 || { cat "$out/secure.log" >&2; die "KServe clients of the TLS frontend"; }
sed 's/^ops_client: ok: /deploy-check: KServe client: /' "$out/secure.log"
# a load through the Service with the certificates and the token
t="/etc/nexus/tls"
client "$out/load-tls" -v "$sec:$t:ro" -- --tls-cert=$t/tls.crt --tls-key=$t/tls.key \
  --tls-ca=$t/ca.crt --tls-server-name=nexus --token-file=$t/token
client_done "$out/load-tls"
logs
say "passed: pods up, probes SERVING, KServe queries answered through the Service, a deleted backend pod lost nothing, the scheduler resumed its state, Prometheus scrapes every daemon; with TLS, mutual TLS and the token: probes pass over HTTP, clients without them refused, with them served"
