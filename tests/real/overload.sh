#!/bin/bash
# overload.sh — three times the capacity of two backends, with a batching
# policy that never drops: the backends' bounded queues (--max-queue 64) fill
# and then reject, the frontend's bounded table of queries in flight
# (--max-inflight 256) fills and then answers RESOURCE_EXHAUSTED at once.
# Required: rejections happen and are explicit (answered, not lost), no query
# is lost, and neither process grows past a fixed memory bound.
set -euo pipefail
cd "$(dirname "$0")/../.."
B=${NX_BUILD:-build}/bin
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
$B/nexus-cluster tests/real/overload.yml --out $T/out --quiet \
    --backend-arg=--max-queue=64 --frontend-arg=--max-inflight=256
/usr/bin/python3 tests/real/check.py $T/out --min-ok 100
/usr/bin/python3 - $T/out <<'PY'
import json, re, sys
d = sys.argv[1]
run = json.load(open(d + "/real.json"))["runs"][0]
logs = {n: open("%s/logs/tf-serving/%s.log" % (d, n)).read()
        for n in ("frontend0", "backend0", "backend1")}
fe_rej = int(re.search(r"(\d+) overload rejections", logs["frontend0"]).group(1))
be_rej = sum(int(re.search(r"(\d+) rejected;", logs[b]).group(1)) for b in ("backend0", "backend1"))
rss = {n: int(re.search(r"peak RSS (\d+) MB", t).group(1)) for n, t in logs.items()}
print("overload: %d queries answered RESOURCE_EXHAUSTED (frontend full: %d, backends full: %d); "
      "peak RSS %s MB" % (run["rejected"], fe_rej, be_rej, rss))
if run["rejected"] == 0 or fe_rej + be_rej == 0:
    sys.exit("overload: FAILED: no explicit rejection")
if max(rss.values()) > 400:
    sys.exit("overload: FAILED: memory grew")
PY
echo "overload: ok"
