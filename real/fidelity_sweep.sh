#!/bin/bash
# fidelity_sweep.sh — sim against real over a load sweep, for one experiment and policy:
# nexus-sim's max-rate search gives the rate scale S at which the simulated cluster just
# keeps its bad rate <= 1 %; nexus-cluster then runs the experiment for real at POINTS per
# cent of S (each run also replays it in the simulator: real.json has both), and bisects the
# real max rate between the highest passing point and the next failing one. The tables,
# the per-batch predicted-vs-measured errors and the plot data come from
# real/fidelity_report.py.
#
#   real/fidelity_sweep.sh EXPERIMENT.yml OUT_DIR [options] [-- nexus-cluster options...]
#     --policy NAME     the policy combination (default: the experiment's first)
#     --points LIST     per cent of the simulated max rate (default 30,60,90,100,110,120)
#     --bisect N        bisection steps for the real max rate (default 2)
#     --executor E      emulated (default), cpu or cuda; cpu/cuda add --payload 16
#                       --backend-arg=--synthetic-input (see real/README.md, "On a GPU")
#     --models DIR      the ONNX models for cpu/cuda (default models)
#
# Every run writes OUT_DIR/pNNN/ (NNN: per mille of S; real.json, summary.json, logs/ with
# each backend's batches.csv); OUT_DIR/sweep.txt lists the runs. Exit 0 when every run ran.
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -ge 2 ] || { sed -n 2,21p "$0" >&2; exit 2; }
E=$1 OUT=$2
shift 2
POLICY="" POINTS=30,60,90,100,110,120 BISECT=2 EXECUTOR=emulated MODELS=models
while [ $# -gt 0 ]; do
    case $1 in
    --policy) POLICY=$2; shift 2 ;;
    --points) POINTS=$2; shift 2 ;;
    --bisect) BISECT=$2; shift 2 ;;
    --executor) EXECUTOR=$2; shift 2 ;;
    --models) MODELS=$2; shift 2 ;;
    --) shift; break ;;
    *) echo "fidelity_sweep.sh: unknown option '$1'" >&2; exit 2 ;;
    esac
done
B=${NX_BUILD:-build}/bin
PY=/usr/bin/python3
[ -x $PY ] || PY=python3
mkdir -p "$OUT"
pol=()
[ -n "$POLICY" ] && pol=(--policy "$POLICY")
cargs=(--executor "$EXECUTOR" --batch-logs --quiet --no-requests)
if [ "$EXECUTOR" != emulated ]; then
    # (the CUDA backend tunes and captures every batch size before it registers)
    cargs+=(--models "$MODELS" --payload 16 --backend-arg=--synthetic-input --ready-timeout 240)
fi

# 1. the simulated max rate
$B/nexus-sim "$E" --out "$OUT/sim-max" --max-rate --no-requests --quiet "${pol[@]}"
read -r S SMAX < <($PY -c '
import json, sys
r = json.load(open(sys.argv[1]))["results"][0]
print(r["rate_scale"], r["max_rate"])' "$OUT/sim-max/summary.json")
echo "fidelity_sweep: $E: simulated max rate $SMAX queries/s at scale $S" | tee "$OUT/sweep.txt"

# one real run at PERMILLE of S; prints its real bad rate (fraction)
run_at() {
    local pm=$1 d
    shift
    d=$(printf "%s/p%04d" "$OUT" "$pm")
    local scale
    scale=$($PY -c "print('%.6g' % ($S * $pm / 1000.0))")
    rm -rf "$d"
    mkdir -p "$d"
    local t0=$SECONDS
    if ! $B/nexus-cluster "$E" --out "$d" --scale "$scale" "${pol[@]}" "${cargs[@]}" "$@" \
            >"$d/cluster.log" 2>&1; then
        echo "fidelity_sweep: run at $pm per mille (scale $scale) failed:" >&2
        tail -15 "$d/cluster.log" >&2
        echo "run $pm $scale FAILED" >>"$OUT/sweep.txt"
        echo 1
        return 0
    fi
    $PY - "$d/real.json" "$pm" "$scale" $((SECONDS - t0)) >>"$OUT/sweep.txt" <<'PY'
import json, os, sys
r = json.load(open(sys.argv[1]))["runs"][0]
x = r["real"]
if "sim" in r:
    s = r["sim"]
else:  # the prediction nexus-cluster runs into DIR/sim/
    s = json.load(open(os.path.join(os.path.dirname(sys.argv[1]), "sim", "summary.json")))["results"][0]
    s = dict(s, p99_ms=s["latency_ms"]["p99"])
print("run %s %s offered %.1f sim: goodput %.1f bad %.4f p99 %.2f ms | real: goodput %.1f "
      "bad %.4f p99 %.2f ms (frontend %.2f) | %s s"
      % (sys.argv[2], sys.argv[3], x["offered_rate"], s["goodput"], s["bad_rate"], s["p99_ms"],
         x["goodput"], x["bad_rate"], x["p99_ms"], r["frontend_ms"]["p99"], sys.argv[4]))
PY
    tail -1 "$OUT/sweep.txt" >&2
    $PY -c 'import json,sys; print(json.load(open(sys.argv[1]))["runs"][0]["real"]["bad_rate"])' \
        "$d/real.json"
}

# 2. the sweep
lo=0 hi=0
for p in ${POINTS//,/ }; do
    pm=$((p * 10))
    bad=$(run_at $pm "$@")
    if $PY -c "import sys; sys.exit(0 if float('$bad') <= 0.01 else 1)"; then
        [ $hi -eq 0 ] && lo=$pm
    else
        [ $hi -eq 0 ] && hi=$pm
    fi
done
# 3. the real max rate: bisect between the highest passing point and the first failing one
for _ in $(seq 1 "$BISECT"); do
    [ $hi -gt 0 ] && [ $lo -gt 0 ] && [ $((hi - lo)) -gt 10 ] || break
    mid=$(((lo + hi) / 2))
    bad=$(run_at $mid "$@")
    if $PY -c "import sys; sys.exit(0 if float('$bad') <= 0.01 else 1)"; then lo=$mid; else hi=$mid; fi
done
echo "fidelity_sweep: real max rate between $lo and ${hi} per mille of the simulated one" \
    "(0: none passed / none failed)" | tee -a "$OUT/sweep.txt"
echo "real_max $lo $hi" >>"$OUT/sweep.txt"
