#!/bin/bash
# ops.sh — what an operator sees of the daemons (issue 10, items 3-4): the
# standard gRPC health service on every daemon (NOT_SERVING until registered
# or planning, then SERVING; Watch streams the change), KServe's ServerReady
# saying the same; a frontend that has routes but no data stream to their
# backend (frozen) NOT_SERVING in health, /readyz and ServerReady, SERVING
# once the stream opens; and each daemon's Prometheus endpoint: `promtool check
# metrics` passes and the values match what the run did (the frontend's
# success count is the queries answered, the backend's served requests are
# the frontend's, the scheduler's epochs are its Status's). Clients: Debian's
# python3-grpcio with stubs generated here, Python's HTTP client, promtool.
set -euo pipefail
cd "$(dirname "$0")/../.."
B=${NX_BUILD:-build}/bin
T=$(mktemp -d)
. tests/real/lib.sh
trap 'kill ${PIDS[@]} 2>/dev/null || true; rm -rf "$T"' EXIT
PY=/usr/bin/python3
C="$PY tests/real/ops_client.py"
$PY -m grpc_tools.protoc -I real/proto --python_out=$T --grpc_python_out=$T \
    real/proto/health.proto real/proto/inference.proto
EXP=tests/real/e2e.yml
metrics_of() { sed -n 's|.*metrics on http://\([^/]*\)/metrics.*|\1|p' $T/$1.log | head -1; }

# the scheduler serves (nodes may attach) but does not plan before 1 backend
# (--timeout 60: the backend frozen below is not declared dead meanwhile)
start sched $B/nexus-scheduler $EXP --listen 127.0.0.1:0 --backends 1 --max-backends 2 \
    --metrics 127.0.0.1:0 --timeout 60
SCHED=$READY; SM=$(metrics_of sched)
$C check $T $SCHED "" NOT_SERVING
$C check $T $SCHED nexus.Scheduler SERVING
$C check $T $SCHED no.such.Service NOT_FOUND
# the same over HTTP, for probes that cannot speak gRPC (TLS ports): /readyz/NAME
$C status http://$SM/readyz 503
$C status http://$SM/readyz/nexus.Scheduler 200
$C status http://$SM/readyz/no.such.Service 404
$C watch $T $SCHED "" $T/watch.txt &
WATCH=$!
# the watcher's first update (NOT_SERVING) is on its way before planning can start
for i in $(seq 100); do [ -s $T/watch.txt ] && break; sleep 0.1; done
start be0 $B/nexus-backend $EXP --scheduler $SCHED --metrics 127.0.0.1:0
BM=$(metrics_of be0); BEPID=$LASTPID
wait $WATCH
[ "$(tr '\n' ' ' < $T/watch.txt)" = "NOT_SERVING SERVING " ] || {
    echo "ops.sh: Watch saw: $(cat $T/watch.txt)"; exit 1; }
$C check $T $SCHED "" SERVING
BE=$(grep -o 'serving data on [0-9.:]*' $T/be0.log | awk '{print $4}')
$C check $T $BE "" SERVING
$C check $T $BE nexus.Backend SERVING

# A frontend is ready only once its data streams are: with the backend frozen
# (SIGSTOP: the kernel still accepts the TCP connection, nobody answers on it)
# it gets the scheduler's routes, which name that backend, and stays NOT_SERVING
# in health, /readyz and ServerReady (ModelInfer refused), without --ready-fd;
# the backend thawed, its stream opens and the frontend serves.
kill -STOP $BEPID
mkfifo $T/fe0.ready
(read -t 60 line < $T/fe0.ready && echo "$line" > $T/fe0.readyline) &
READER=$!
$B/nexus-frontend $EXP --scheduler $SCHED --listen 127.0.0.1:0 --metrics 127.0.0.1:0 \
    --ready-fd 3 3>$T/fe0.ready 2>$T/fe0.log &
PIDS+=($!)
for i in $(seq 300); do grep -q "routes (epoch" $T/fe0.log && break; sleep 0.1; done
grep -q "routes (epoch" $T/fe0.log || { echo "ops.sh: the frontend got no routes"; cat $T/fe0.log; exit 1; }
FE=$(sed -n 's|.*KServe v2 on \([0-9.:]*\) .*|\1|p' $T/fe0.log); FM=$(metrics_of fe0)
$C check $T $FE "" NOT_SERVING
$C check $T $FE inference.GRPCInferenceService NOT_SERVING
$C status http://$FM/readyz 503
$C status http://$FM/healthz 200
$C ready $T $FE false
$C scrape http://$FM/metrics $T/fe0-frozen.prom
grep -qx "nexus_backend_streams_up 0" $T/fe0-frozen.prom || {
    echo "ops.sh: streams up while the backend is frozen:"; grep streams_up $T/fe0-frozen.prom; exit 1; }
[ ! -s $T/fe0.readyline ] || { echo "ops.sh: --ready-fd fired before the data stream opened"; exit 1; }
$C watch $T $FE "" $T/fe-watch.txt &
WATCH=$!
for i in $(seq 100); do [ -s $T/fe-watch.txt ] && break; sleep 0.1; done
kill -CONT $BEPID
wait $WATCH
[ "$(tr '\n' ' ' < $T/fe-watch.txt)" = "NOT_SERVING SERVING " ] || {
    echo "ops.sh: the frontend's Watch saw: $(cat $T/fe-watch.txt)"; exit 1; }
wait $READER
[ "$(cat $T/fe0.readyline)" = "ready $FE" ] || { echo "ops.sh: --ready-fd: $(cat $T/fe0.readyline)"; exit 1; }
grep -q "stream open" $T/fe0.log
echo "ops.sh: frontend NOT_SERVING with routes but its backend frozen, SERVING once the stream opened"
$C check $T $FE "" SERVING
$C check $T $FE inference.GRPCInferenceService SERVING
$C ready $T $FE true
# HTTP readiness agrees; the port's error handling
$C scrape http://$FM/readyz $T/readyz
$C http $FM

# a short run, then every daemon's metrics
$B/nexus-loadgen $EXP --frontend $FE --scheduler $SCHED --out $T/run --quiet
# promtool: exit 1 is a format error; exit 3 lists naming-convention
# complaints, which only Triton's own names may draw (kept for Triton
# dashboards: counters without _total, units in names); Nexus's are clean.
TRITON='^nv_inference_(request_success|request_failure|count|exec_count|request_duration_us|queue_duration_us|compute_infer_duration_us) '
for d in sched:$SM be0:$BM fe0:$FM; do
    $C scrape http://${d#*:}/metrics $T/${d%%:*}.prom
    rc=0; promtool check metrics < $T/${d%%:*}.prom > $T/lint 2>&1 || rc=$?
    if [ $rc = 3 ] && ! grep -Evq "$TRITON" $T/lint; then rc=0; fi
    [ $rc = 0 ] || { echo "ops.sh: promtool check metrics (${d%%:*}): exit $rc"; cat $T/lint; exit 1; }
done
echo "ops.sh: promtool check metrics: scheduler, backend, frontend ok (lint: Triton's names only)"
$PY - $T <<'PYEOF'
import csv, re, sys
T = sys.argv[1]
def prom(name):
    out = {}
    for line in open("%s/%s.prom" % (T, name)):
        m = re.match(r'^([a-z_:]+)(\{[^}]*\})? (\S+)$', line)
        if m:
            key = (m.group(1), m.group(2) or "")
            if key in out:
                fail("%s: the series %s%s appears twice" % (name, key[0], key[1]))
            out[key] = float(m.group(3))
        elif not line.startswith("#"):
            fail("%s: not a sample line: %r" % (name, line))
    return out
def total(p, name):
    return sum(v for (n, _), v in p.items() if n == name)
def fail(msg):
    print("ops.sh: FAILED:", msg); sys.exit(1)
fe, be, sc = prom("fe0"), prom("be0"), prom("sched")
rows = list(csv.DictReader(open(T + "/run/requests.csv")))
answered = sum(r["status"] in ("ok", "late") for r in rows)
dropped = sum(r["status"] == "dropped" for r in rows)
succ, fail_ = total(fe, "nv_inference_request_success"), total(fe, "nv_inference_request_failure")
print("ops.sh: requests.csv: %d answered, %d dropped; frontend metrics: %d success, %d failure"
      % (answered, dropped, succ, fail_))
# + 1: the ModelInfer refused before the frontend was ready
if succ != answered or fail_ != dropped + 1:
    fail("the frontend's counters do not match requests.csv")
for app in ("classify", "scenes"):
    n = sum(r["status"] in ("ok", "late") for r in rows if r["app"] == app)
    if fe[("nv_inference_request_success", '{model="%s",version="1"}' % app)] != n:
        fail("frontend success count of %s != %d" % (app, n))
# (late differs: the load generator judges lateness at the client, the
# frontend at its own answer)
bsucc = total(be, "nv_inference_request_success")
print("ops.sh: backend: %d requests served in %d batches, queue %.0f us, compute %.0f us in all"
      % (bsucc, total(be, "nv_inference_exec_count"), total(be, "nv_inference_queue_duration_us"),
         total(be, "nv_inference_compute_infer_duration_us")))
if bsucc != answered:   # one backend, single-model apps: every answer went through it
    fail("backend served %d, the frontend answered %d" % (bsucc, answered))
if not 0 < total(be, "nv_inference_exec_count") <= bsucc:
    fail("batches executed")
if total(be, "nv_inference_compute_infer_duration_us") <= 0:
    fail("compute time")
u = total(be, "nv_gpu_utilization")   # the last keep-alive period's: may be idle by now
if not 0 <= u <= 1:
    fail("nv_gpu_utilization %s not in [0, 1]" % u)
busy = be[("nexus_backend_busy_seconds_total", "")] * 1e6
# every batch's time counts once in busy, once per request in compute
if not 0 < busy <= total(be, "nv_inference_compute_infer_duration_us") + 1:
    fail("busy %.0f us vs compute %.0f us" % (busy, total(be, "nv_inference_compute_infer_duration_us")))
ep = sc[("nexus_epochs_total", "")]
if ep < 2 or sc[("nexus_plan_gpus", "")] != 1 or sc[("nexus_planning", "")] != 1:
    fail("scheduler: epochs %s, plan gpus %s" % (ep, sc[("nexus_plan_gpus", "")]))
for app in ("classify", "scenes"):
    lab = '{session="%s",model="%s"}' % (app, "resnet50" if app == "classify" else "googlenet")
    pr, mr = sc[("nexus_session_planned_rate", lab)], sc[("nexus_session_measured_rate", lab)]
    print("ops.sh: scheduler: %s planned %.1f req/s, measured %.1f req/s" % (app, pr, mr))
    if not (pr > 0 and mr > 0):
        fail("rates of " + app)
print("ops.sh: metrics match the run (%d epochs, executor busy %.2f s, utilisation now %.3f)"
      % (ep, busy / 1e6, u))
PYEOF
# the only backend killed: its stream ends, the plan routes nothing, the frontend
# is NOT_SERVING again (health, /readyz) and says why
kill -KILL $BEPID; wait $BEPID 2>/dev/null || true
PIDS=(${PIDS[@]/$BEPID})
for i in $(seq 100); do $C check $T $FE "" NOT_SERVING > /dev/null 2>&1 && break; sleep 0.1; done
$C check $T $FE "" NOT_SERVING
$C status http://$FM/readyz 503
grep "NOT_SERVING: " $T/fe0.log | sed 's/^/ops.sh: frontend log: /'
# shutting down: NOT_SERVING at once, then a clean exit
stop_all
echo "ops.sh: ok"
