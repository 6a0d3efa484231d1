#!/bin/bash
# fidelity.sh — the same experiment in nexus-sim and in nexus-cluster
# (emulated executors, loopback): a markdown table of goodput, bad rate and
# p50/p99 latency, simulated against real, and where the real run's time went.
#
#   real/fidelity.sh [EXPERIMENT.yml] [OUT_DIR] [nexus-cluster options...]
#
# The simulated figures are nexus-cluster's prediction (DIR/sim/summary.json:
# nexus-sim on the very queries the load generator sent — both take them from
# engine/workload's arrival iterator for the same seed), so every difference
# is the real system's. Latency "client" is what the load
# generator measured (send -> answer, the client <-> frontend hop included);
# "frontend" is what the frontend measured (arrival -> answer), the
# simulator's own definition.
set -euo pipefail
cd "$(dirname "$0")/.."
E=${1:-experiments/real_fidelity.yml}
OUT=${2:-results/real_fidelity}
shift $(( $# > 2 ? 2 : $# )) || true
B=${NX_BUILD:-build}/bin
$B/nexus-cluster "$E" --out "$OUT" --quiet --no-requests "$@" 2>"$OUT.log" || {
    tail -20 "$OUT.log"; exit 1; }
mv "$OUT.log" "$OUT/cluster.log"
/usr/bin/python3 - "$OUT" <<'PY'
import glob, json, re, sys
d = sys.argv[1]
real = json.load(open(d + "/real.json"))
sims = {r["policy"]: r for r in json.load(open(d + "/sim/summary.json"))["results"]}
def flat(r):  # a summary.json entry in real.json's shape
    return dict(goodput=r["goodput"], bad_rate=r["bad_rate"], p50_ms=r["latency_ms"]["p50"],
                p99_ms=r["latency_ms"]["p99"])
print("| policy | goodput sim | goodput real | diff | bad rate sim | bad rate real | diff (points) "
      "| p50 sim | p50 real client / frontend | p99 sim | p99 real client / frontend |")
print("|---|---|---|---|---|---|---|---|---|---|---|")
for r in real["runs"]:
    s, x = flat(sims[r["policy"]]), r["real"]
    pct = lambda a, b: 100 * (a - b) / b if b else 0
    print("| %s | %.1f | %.1f | %+.2f %% | %.2f %% | %.2f %% | %+.2f | %.2f ms | %.2f / %.2f ms (%+.1f / %+.1f %%) "
          "| %.2f ms | %.2f / %.2f ms (%+.1f / %+.1f %%) |"
          % (r["policy"], s["goodput"], x["goodput"], pct(x["goodput"], s["goodput"]),
             100 * s["bad_rate"], 100 * x["bad_rate"], 100 * (x["bad_rate"] - s["bad_rate"]),
             s["p50_ms"], x["p50_ms"], r["frontend_ms"]["p50"], pct(x["p50_ms"], s["p50_ms"]),
             pct(r["frontend_ms"]["p50"], s["p50_ms"]),
             s["p99_ms"], x["p99_ms"], r["frontend_ms"]["p99"], pct(x["p99_ms"], s["p99_ms"]),
             pct(r["frontend_ms"]["p99"], s["p99_ms"])))
print()
for r in real["runs"]:
    late = []
    for f in glob.glob("%s/logs/%s/backend*.log" % (d, r["policy"])):
        m = re.search(r"(\d+) batches, each ([\d.]+) us longer than drawn on average \(at most (\d+) us\)",
                      open(f).read())
        if m and int(m.group(1)) > 0:
            late.append((int(m.group(1)), float(m.group(2)), int(m.group(3))))
    nb = sum(b for b, _, _ in late)
    mean_late = sum(b * l for b, l, _ in late) / nb if nb else 0
    print("%s: client - frontend latency (the client<->frontend hop and the client): p50 %.2f ms; "
          "load generator behind schedule: p99 %.0f us, max %.0f us; emulated batches ran %.0f us "
          "longer than drawn on average (max %.1f ms, %d batches): the host woke the backend late"
          % (r["policy"], r["real"]["p50_ms"] - r["frontend_ms"]["p50"], r["send_lag_us"]["p99"],
             r["send_lag_us"]["max"], mean_late, max([m for _, _, m in late] or [0]) / 1000, nb))
PY
