#!/bin/bash
# netns.sh — several hosts: the scheduler, two backends, a frontend and the
# load generator each in its own network namespace (ip netns), joined by veth
# pairs to a bridge in a sixth namespace, on 10.77.N.0/24. Every daemon
# listens on its namespace's address and reports readiness on a FIFO (no
# sleeps); the load generator replays tests/real/e2e.yml and every query must
# be accounted for. Needs root (CI runs as root); skipped otherwise.
set -euo pipefail
cd "$(dirname "$0")/../.."
B=$(realpath ${NX_BUILD:-build}/bin)
if [ "$(id -u)" != 0 ] || ! command -v ip >/dev/null; then
    echo "netns: SKIP (needs root and iproute2)"; exit 0
fi
T=$(mktemp -d)
s=$(( $$ % 200 + 20 ))          # this run's subnet and name suffix
NET=10.77.$s
HUB=nxhub$s
NODES=(sch be0 be1 fe cl)
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill -TERM $p 2>/dev/null || true; done
    for p in "${PIDS[@]}"; do wait $p 2>/dev/null || true; done
    for n in "${NODES[@]}"; do ip netns del nx$n$s 2>/dev/null || true; done
    ip netns del $HUB 2>/dev/null || true
    rm -rf "$T"
}
trap cleanup EXIT
ip netns add $HUB
ip -n $HUB link add br0 type bridge
ip -n $HUB link set br0 up
i=1
for n in "${NODES[@]}"; do
    ns=nx$n$s
    ip netns add $ns
    ip link add v$n$s type veth peer name h$n$s
    ip link set v$n$s netns $ns
    ip link set h$n$s netns $HUB
    ip -n $HUB link set h$n$s master br0
    ip -n $HUB link set h$n$s up
    ip -n $ns link set lo up
    ip -n $ns addr add $NET.$i/24 dev v$n$s
    ip -n $ns link set v$n$s up
    i=$((i + 1))
done
# start a daemon in a namespace; its "ready ADDR" line comes through a FIFO
start() { # name ns args...
    local name=$1 ns=$2; shift 2
    mkfifo $T/$name.ready
    ip netns exec $ns "$@" --ready-fd 3 3>$T/$name.ready 2>$T/$name.log &
    PIDS+=($!)
    local line=""
    if ! read -t 30 line < $T/$name.ready || [ "${line%% *}" != ready ]; then
        echo "netns: $name did not become ready"; cat $T/$name.log; exit 1
    fi
    READY=${line#ready }
    echo "netns: $name ready at $READY (namespace $ns)"
}
E=tests/real/e2e.yml
start scheduler nxsch$s $B/nexus-scheduler $E --listen $NET.1:0
SCHED=$READY
start backend0 nxbe0$s $B/nexus-backend $E --scheduler $SCHED --listen $NET.2:0 --slot 0
start backend1 nxbe1$s $B/nexus-backend $E --scheduler $SCHED --listen $NET.3:0 --slot 1
start frontend nxfe$s $B/nexus-frontend $E --scheduler $SCHED --listen $NET.4:0
FE=$READY
ip netns exec nxcl$s $B/nexus-loadgen $E --frontend $FE --scheduler $SCHED --out $T/out --quiet
$B/nexus-sim $E --out $T/out/sim --quiet   # the prediction check.py compares the queries with
/usr/bin/python3 tests/real/check.py $T/out --min-ok 1000 --max-bad 0.05
# the frontend reached both backends across the bridge
grep -q "backend 0 ($NET.2:.*stream open" $T/frontend.log
grep -q "backend 1 ($NET.3:.*stream open" $T/frontend.log
for p in "${PIDS[@]}"; do kill -TERM $p; done
for p in "${PIDS[@]}"; do wait $p || { echo "netns: a daemon did not exit cleanly"; exit 1; }; done
PIDS=()
echo "netns: ok"
