#!/bin/bash
# bench.sh — `make bench` for the real cluster mode:
#  1. the backend's CPU cost per request under the emulated executor
#     (nexus-rpcbench against a real nexus-backend; goal <= 20 us), with many,
#     a few and one request outstanding: the cost is per message and per
#     batch, so it falls as load grows;
#  2. the end-to-end latency a loopback cluster adds over the executor's time
#     at p50 and p99 (client send -> answer, minus the batch's executor time),
#     at a light load (tests/real/e2e.yml, nexus-cluster).
set -euo pipefail
cd "$(dirname "$0")/../.."
B=${NX_BUILD:-build}/bin
T=$(mktemp -d)
. tests/real/lib.sh
trap 'stop_all >/dev/null 2>&1 || true; rm -rf "$T"' EXIT
E=tests/real/bench_backend.yml
start scheduler $B/nexus-scheduler $E --listen 127.0.0.1:0
SCHED=$READY
start backend $B/nexus-backend $E --scheduler $SCHED
BE=$READY
BEPID=$LASTPID
# many requests outstanding (a loaded frontend), a few, one (ping-pong)
for wbn in "1024 64 200000" "16 16 20000" "1 1 10000"; do
    set -- $wbn
    echo -n "$1 outstanding, <= $2 per message: "
    $B/nexus-rpcbench --backend $BE --pid $BEPID --requests $3 --warmup 2000 --window $1 --batch $2
done
stop_all
$B/nexus-cluster tests/real/e2e.yml --out $T/e2e --quiet --no-requests --policy nexus 2>/dev/null
/usr/bin/python3 - $T/e2e/real.json <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))["runs"][0]
a, x, f = r["added_over_exec_ms"], r["exec_ms"], r["frontend_ms"]
print("end-to-end over executor time (loopback, %d queries at %.0f req/s): p50 %.3f ms, p99 %.3f ms"
      % (r["real"]["sent"], r["real"]["offered_rate"], a["p50"], a["p99"]))
print("  (executor p50 %.3f ms, p99 %.3f ms; client latency p50 %.3f ms, p99 %.3f ms; "
      "frontend-measured p50 %.3f ms, p99 %.3f ms)"
      % (x["p50"], x["p99"], r["real"]["p50_ms"], r["real"]["p99_ms"], f["p50"], f["p99"]))
PY
