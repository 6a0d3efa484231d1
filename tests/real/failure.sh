#!/bin/bash
# failure.sh — failures during a run on a loopback cluster (two backends,
# both in use): backend 1 is killed with SIGKILL at 3 s and restarted at 6 s;
# backend 0 is frozen with SIGSTOP at 8 s (only the keep-alive timeout, 2 s here, can
# find it) and resumed at 11.5 s. Required: no query is lost (every one is
# answered: served, retried elsewhere, or dropped), the scheduler notices both
# failures and re-plans (the times are printed), and both backends register
# again and get work. Then a frontend is killed and restarted.
set -euo pipefail
cd "$(dirname "$0")/../.."
B=${NX_BUILD:-build}/bin
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
$B/nexus-cluster tests/real/failure.yml --out $T/out --quiet \
    --keepalive 0.5 --timeout 2 \
    --kill-backend 1@3 --restart-backend 1@6 --stop-backend 0@8 --cont-backend 0@11.5
/usr/bin/python3 tests/real/check.py $T/out --kills 1 --rejoined 1 --keepalive-failure \
    --min-ok 2000
grep -h "gone\|re-planned" $T/out/logs/nexus/scheduler.log | head -4
# a frontend killed mid-run and restarted on its address: the queries it held
# are answered UNAVAILABLE by gRPC (dropped, not lost); it registers again and serves
$B/nexus-cluster tests/real/e2e.yml --out $T/fe --quiet --policy nexus --kill-frontend 0@1.5 \
    --restart-frontend 0@2
/usr/bin/python3 tests/real/check.py $T/fe --frontend-rejoined 0 --min-ok 500
echo "failure: ok"
