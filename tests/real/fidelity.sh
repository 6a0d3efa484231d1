#!/bin/bash
# fidelity.sh — real/fidelity_sweep.sh and real/fidelity_report.py on a short emulated sweep
# (LeNet, padded profile, batch_overhead_us): two load points run, their tables come out, and
# every backend batch-log line predicts exactly the padded profile's mean at the next measured
# batch size; then a backend with the CPU executor and --synthetic-input serves 16-value
# payloads with LeNet (its model input is 784 values) and logs its measured batches.
set -euo pipefail
cd "$(dirname "$0")/../.."
B=${NX_BUILD:-build}/bin
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
E=tests/real/fidelity.yml
NX_BUILD=${NX_BUILD:-build} real/fidelity_sweep.sh $E $T/sweep --points 30,60 --bisect 0 >$T/sweep.log 2>&1 ||
    { cat $T/sweep.log; exit 1; }
real/fidelity_report.py $T/rep t=$T/sweep >$T/report.txt
/usr/bin/python3 - $T profiles/h100-serving/lenet-fp32.yml <<'PY'
import csv, glob, re, sys
t, prof = sys.argv[1], open(sys.argv[2]).read()
runs = [l for l in open(t + "/sweep/sweep.txt") if l.startswith("run ")]
if len(runs) != 2 or any("FAILED" in l for l in runs):
    sys.exit("fidelity: FAILED: expected 2 runs: %r" % runs)
rows = [l for l in open(t + "/rep/tables.md") if re.match(r"\| (30|60)\.0 \|", l)]
if len(rows) != 2:
    sys.exit("fidelity: FAILED: the report has %d load rows, not 2" % len(rows))
assert "padded: true" in prof
pts = [(int(b), float(m)) for b, m in re.findall(r"batch: (\d+), mean_us: ([\d.]+)", prof)]
n = 0
for f in glob.glob(t + "/sweep/p*/logs/*/backend*.batches.csv"):
    for r in csv.DictReader(open(f)):
        size = int(r["size"])
        want = next(m for b, m in pts if b >= size)
        if abs(float(r["pred_us"]) - want) > 0.05 or float(r["exec_us"]) <= 0:
            sys.exit("fidelity: FAILED: batch of %d predicted %s us, the profile says %.1f"
                     % (size, r["pred_us"], want))
        n += 1
if n < 50:
    sys.exit("fidelity: FAILED: only %d batches logged" % n)
print("fidelity: 2 sweep points, %d batches logged, each predicted as the padded profile says" % n)
PY
if [ ! -f models/lenet.onnx ]; then
    echo "fidelity: models/lenet.onnx missing (make models): cpu executor not tried"
    exit 0
fi
$B/nexus-cluster $E --out $T/cpu --quiet --executor cpu --models models --payload 16 \
    --backend-arg=--synthetic-input --batch-logs --no-requests 2>$T/cpu.log ||
    { cat $T/cpu.log; exit 1; }
/usr/bin/python3 - $T/cpu <<'PY'
import csv, json, sys
d = sys.argv[1]
x = json.load(open(d + "/real.json"))["runs"][0]["real"]
rows = list(csv.DictReader(open(d + "/logs/nexus/backend0.batches.csv")))
if x["ok"] < 100 or not rows or any(r["model"] != "lenet" or float(r["exec_us"]) <= 0 for r in rows):
    sys.exit("fidelity: FAILED: cpu + synthetic input: %d ok, %d batches" % (x["ok"], len(rows)))
print("fidelity: cpu executor, synthetic inputs: %d of %d queries ok, %d batches logged"
      % (x["ok"], x["sent"], len(rows)))
PY
