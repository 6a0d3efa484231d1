#!/bin/bash
# e2e.sh — the loopback end-to-end test: nexus-cluster starts a real scheduler,
# two backends (emulated executors) and a frontend on loopback, waits for each
# to be ready, replays a short workload through the KServe v2 API, and stops
# them with SIGTERM (each must exit 0). Every query must be accounted for;
# the same with DAG apps (several model calls per query).
# Also: every daemon's --help, and bad command lines and files fail cleanly.
set -euo pipefail
cd "$(dirname "$0")/../.."
B=${NX_BUILD:-build}/bin
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT

for d in nexus-scheduler nexus-backend nexus-frontend nexus-loadgen nexus-cluster; do
    $B/$d --help | grep -q usage || { echo "$d --help: no usage"; exit 1; }
    rc=0; $B/$d --no-such-option >/dev/null 2>&1 || rc=$?
    [ $rc = 2 ] || { echo "$d --no-such-option: exit $rc, expected 2"; exit 1; }
done
rc=0; $B/nexus-scheduler /nonexistent.yml --listen 127.0.0.1:0 2>$T/err || rc=$?
[ $rc = 1 ] && grep -q "nonexistent.yml" $T/err || { echo "missing file: exit $rc"; cat $T/err; exit 1; }
rc=0; $B/nexus-backend tests/real/e2e.yml --scheduler 127.0.0.1:1 --executor tpu 2>$T/err || rc=$?
[ $rc = 2 ] || { echo "bad executor: exit $rc"; exit 1; }
rc=0; $B/nexus-scheduler tests/real/e2e.yml --policy nope --listen 127.0.0.1:0 2>$T/err || rc=$?
[ $rc = 1 ] && grep -q "nope" $T/err || { echo "unknown policy: exit $rc"; exit 1; }

$B/nexus-cluster tests/real/e2e.yml --out $T/out --quiet
/usr/bin/python3 tests/real/check.py $T/out --min-ok 1000 --max-bad 0.05
grep -q "backend 0 registered" $T/out/logs/nexus/scheduler.log
grep -q "backend 1 registered" $T/out/logs/nexus/scheduler.log
grep -q "frontend 0 registered" $T/out/logs/nexus/scheduler.log
for l in $T/out/logs/nexus/*.log; do grep -q "stopped" $l || { echo "$l: no clean stop"; exit 1; }; done
# DAG apps: fan-outs and a join, several model calls per query
$B/nexus-cluster tests/real/dag.yml --out $T/dag --quiet
/usr/bin/python3 tests/real/check.py $T/dag --min-ok 300 --max-bad 0.25
/usr/bin/python3 -c "
import csv, sys
calls = [int(r['calls']) for r in csv.DictReader(open('$T/dag/requests.csv')) if r['status'] == 'ok']
print('e2e: DAG queries made %.2f model calls each on average' % (sum(calls) / len(calls)))
sys.exit(0 if sum(calls) > 2 * len(calls) else 1)"
echo "e2e: ok"
