#!/bin/bash
# restart.sh — the scheduler resumes its plan and rate estimates after a
# restart (issue 10, item 6). A cluster (scheduler with --state, two
# backends, a frontend) serves a short run, which moves the planned rates
# away from the experiment's; the frontend is then frozen (SIGSTOP: no more
# rate reports, so the estimates hold still) and the scheduler killed with
# SIGKILL. Restarted on its address with the same --state, it must serve
# from its first epoch, made at once (the backends of the state taken back
# on trust) and before any rate report, the plan of the saved state (the same sessions, batches and rates on the same
# slots), not one planned from the experiment's rates.
#
# Then the scheduler is SIGKILLed and restarted again under load, backend 1
# frozen meanwhile so that it attaches again only after the frontend has:
# the restarted scheduler takes the backends of its state file back on trust
# and lists them to the frontend, which must keep both data streams (no
# "stream down", no NOT_SERVING) and answer every query. Then backend 1 is
# killed while the scheduler is down, and the scheduler restarted with a 1 s
# keep-alive timeout: backend 1 never attaches, so it is declared gone after
# the timeout and the plan made without it.
#
# Then: a corrupt state file is set aside with a message naming FILE:LINE and
# planning starts from the experiment's rates; a state of another experiment
# is refused alike.
set -euo pipefail
cd "$(dirname "$0")/../.."
B=${NX_BUILD:-build}/bin
T=$(mktemp -d)
. tests/real/lib.sh
trap 'kill -CONT ${PIDS[@]} 2>/dev/null || true; kill ${PIDS[@]} 2>/dev/null || true; rm -rf "$T"' EXIT
PY=/usr/bin/python3
EXP=tests/real/restart.yml
$PY -m grpc_tools.protoc -I real/proto --python_out=$T real/proto/nexus.proto
ST=$T/state
SOPT="--backends 2 --max-backends 2 --max-frontends 2 --timeout 60 --state $ST"
forget() { local p q=(); for p in "${PIDS[@]}"; do [ $p = $1 ] || q+=($p); done; PIDS=("${q[@]}"); }
# the plan a scheduler serves, or a state file's, as "slot session batch rate" lines
plan_of() {
    $PY - "$T" "$@" <<'PYEOF'
import sys, time
sys.path.insert(0, sys.argv[1])
if sys.argv[2] == "file":
    for l in open(sys.argv[3]):
        f = l.split()
        if f[0] == "alloc":
            print(f[1], f[2], f[3], "%.9g" % float(f[4]))
        elif f[0] == "epochs":
            print("epochs", f[2], file=sys.stderr)
    sys.exit(0)
import grpc, nexus_pb2 as nx
ch = grpc.insecure_channel(sys.argv[3])
status = ch.unary_unary("/nexus.Scheduler/Status", request_serializer=nx.StatusRequest.SerializeToString,
                        response_deserializer=nx.StatusReply.FromString)
for _ in range(300):   # wait for both backends to attach and the first plan (30 s at most)
    st = status(nx.StatusRequest(), timeout=10)
    if st.planning and st.backends_alive == 2:
        break
    time.sleep(0.1)
else:
    sys.exit("the scheduler did not plan again")
for g in st.plan:
    for a in g.allocs:
        print(g.slot, a.session, a.batch, "%.9g" % a.rate)
print("epochs", st.epochs, "last", st.timeline[-1].why, file=sys.stderr)
PYEOF
}

start sched $B/nexus-scheduler $EXP --listen 127.0.0.1:0 $SOPT --metrics 127.0.0.1:0
SCHED=$READY; SPID=$LASTPID
start be0 $B/nexus-backend $EXP --scheduler $SCHED --slot 0
start be1 $B/nexus-backend $EXP --scheduler $SCHED --slot 1
BE1PID=$LASTPID
start fe0 $B/nexus-frontend $EXP --scheduler $SCHED --listen 127.0.0.1:0
FE=$READY; FPID=$LASTPID
$B/nexus-loadgen $EXP --frontend $FE --out $T/run --quiet
kill -STOP $FPID
# no rate reports now: wait for the next epoch to save the estimates as they stand
epochs() { awk '$1 == "epochs" {print $3}' $ST; }
E0=$(epochs)
for i in $(seq 300); do [ "$(epochs)" -gt "$E0" ] && break; sleep 0.1; done
[ "$(epochs)" -gt "$E0" ] || { echo "restart.sh: no epoch saved the state in 30 s"; exit 1; }
kill -STOP $SPID
cp $ST $T/saved
[ ! -e $ST.tmp ] || { echo "restart.sh: a temporary state file was left behind"; exit 1; }
kill -KILL $SPID; wait $SPID 2>/dev/null || true; forget $SPID
plan_of file $T/saved > $T/plan.saved 2> $T/epochs.saved
echo "restart.sh: saved plan ($(cat $T/epochs.saved) epochs):"; sed 's/^/  /' $T/plan.saved
# the saved rates are the measured ones, not the experiment's 300 and 200 req/s
$PY - $T/saved <<'PYEOF'
import sys
s = [l.split() for l in open(sys.argv[1]) if l.startswith("session ")]
pr = [float(f[2]) for f in s]
print("restart.sh: saved planned rates %.2f and %.2f req/s (declared: 300 and 200)" % tuple(pr))
if abs(pr[0] - 300) < 0.5 or abs(pr[1] - 200) < 0.5:
    sys.exit("restart.sh: FAILED: the saved rates are the declared ones: nothing to tell apart")
PYEOF

# restarted on its address with the same state; the backends attach again
start sched2 $B/nexus-scheduler $EXP --listen $SCHED $SOPT
SPID2=$LASTPID
grep -q "state: resuming from $ST" $T/sched2.log || { cat $T/sched2.log; exit 1; }
plan_of status $SCHED > $T/plan.restarted 2> $T/epochs.restarted
echo "restart.sh: restarted scheduler's plan ($(cat $T/epochs.restarted)):"; sed 's/^/  /' $T/plan.restarted
diff $T/plan.saved $T/plan.restarted || { echo "restart.sh: FAILED: another plan"; exit 1; }
grep -q "state resumed: planning for the saved rates onto the saved plan" $T/sched2.log
echo "restart.sh: the restarted scheduler serves the saved plan"
kill -CONT $FPID
wait_log() { # FILE PATTERN: 10 s at most
    for i in $(seq 100); do grep -q "$2" $1 && return 0; sleep 0.1; done
    echo "restart.sh: no '$2' in $1"; cat $1; exit 1
}
wait_log $T/sched2.log "frontend 0 registered"
wait_log $T/fe0.log "routes (epoch"

# under load: the scheduler killed, restarted while backend 1 is frozen
L=$(wc -l < $T/fe0.log)
$B/nexus-loadgen $EXP --frontend $FE --out $T/run2 --quiet & LG=$!
sleep 1 # a second into the 4-s run
kill -STOP $BE1PID
kill -KILL $SPID2; wait $SPID2 2>/dev/null || true; forget $SPID2
L2=$(wc -l < $T/fe0.log)
start sched2b $B/nexus-scheduler $EXP --listen $SCHED $SOPT
SPID2=$LASTPID
wait_log $T/sched2b.log "frontend 0 registered"
# the frontend has its backend list, then the routes, before backend 1 is back
for i in $(seq 100); do tail -n +$((L2 + 1)) $T/fe0.log | grep -q "routes (epoch" && break; sleep 0.1; done
kill -CONT $BE1PID
wait_log $T/sched2b.log "backend 1 registered"
wait $LG
if tail -n +$((L + 1)) $T/fe0.log | grep -E "stream down|NOT_SERVING|gone"; then
    echo "restart.sh: FAILED: the frontend dropped a data stream over the scheduler's restart"
    tail -n +$((L + 1)) $T/fe0.log; cat $T/sched2b.log; exit 1
fi
$PY - $T/run2/requests.csv <<'PYEOF'
import csv, sys, collections
n = collections.Counter(r["status"] for r in csv.DictReader(open(sys.argv[1])))
print("restart.sh: queries through the restart: %s" % dict(n))
if sum(n.values()) < 1000 or set(n) - {"ok", "late"}:
    sys.exit("restart.sh: FAILED: queries lost over the scheduler's restart")
PYEOF
grep -q "planning at once from the state file" $T/sched2b.log || { cat $T/sched2b.log; exit 1; }
echo "restart.sh: the frontend kept both data streams and answered every query through the restart"

# backend 1 killed while the scheduler is down: gone after the keep-alive timeout
kill -KILL $SPID2; wait $SPID2 2>/dev/null || true; forget $SPID2
kill -KILL $BE1PID; wait $BE1PID 2>/dev/null || true; forget $BE1PID
start sched2c $B/nexus-scheduler $EXP --listen $SCHED $SOPT --timeout 1
wait_log $T/sched2c.log "backend 1 (.*) did not attach again within 1 s of the restart: gone"
wait_log $T/sched2c.log "epoch (failure)"
wait_log $T/sched2c.log "re-planned without backend 1"
grep -q "backend 0 registered" $T/sched2c.log
echo "restart.sh: a backend that never attaches again is gone after the timeout, re-planned without"
stop_all

# a corrupt state file: set aside with a message, planning from the experiment's rates
sed '3s/.*/policy nexus extra/' $T/saved > $ST
start sched3 $B/nexus-scheduler $EXP --listen 127.0.0.1:0 $SOPT --backends 0
grep -q "state ignored: $ST:3: expected 'policy' with 1 field(s); planning from the experiment's rates (the file is kept as $ST.bad)" $T/sched3.log || {
    cat $T/sched3.log; exit 1; }
[ -f $ST.bad ] && [ ! -e $ST ]
head -c 300 $T/saved > $ST    # truncated: no 'end'
start sched4 $B/nexus-scheduler $EXP --listen 127.0.0.1:0 $SOPT --backends 0
grep -q "state ignored: $ST:.*truncated\|state ignored: $ST:.*expected" $T/sched4.log || { cat $T/sched4.log; exit 1; }
sed 's/^experiment .*/experiment other/' $T/saved > $ST
start sched5 $B/nexus-scheduler $EXP --listen 127.0.0.1:0 $SOPT --backends 0
grep -q "state ignored: $ST:2: the state is for experiment 'other', this scheduler runs 'real_restart'" $T/sched5.log || {
    cat $T/sched5.log; exit 1; }
rc=0; $B/nexus-scheduler $EXP --state /nonexistent/dir/state 2>$T/err || rc=$?
[ $rc = 1 ] && grep -q -- "--state: cannot write in the directory of /nonexistent/dir/state" $T/err
stop_all
echo "restart.sh: corrupt, truncated and foreign state files set aside with file:line messages"
echo "restart.sh: ok"
