#!/bin/bash
# fidelity.sh — real/fidelity_sweep.sh, real/fidelity_report.py and real/switch_cost.py on a
# short emulated sweep
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
# real/switch_cost.py: the sweep has one model, so every batch after a GPU's first follows the
# same model; a hand-made log (A 1000->1100 first, A 1000->1050, B 2000->2500, A 1000->1200)
# has one same (+5 %) and two switches, (2500 + 1200 - 3000) / 3000 = 0.233 of the prediction.
real/switch_cost.py $T/sweep >$T/switch.txt
grep -Eq '^lenet +same +[0-9]+ ' $T/switch.txt && ! grep -q switch_overhead $T/switch.txt ||
    { cat $T/switch.txt; echo "fidelity: FAILED: switch_cost.py on one model"; exit 1; }
mkdir -p $T/sw/x/p0100/logs/nexus
printf 't_s,model,size,parts,pred_us,exec_us,session\n0,A,1,,1000,1100,a\n0.01,A,1,,1000,1050,a\n0.02,B,2,,2000,2500,b\n0.03,A,1,,1000,1200,a\n' \
    >$T/sw/x/p0100/logs/nexus/backend0.batches.csv
real/switch_cost.py $T/sw >$T/sw.txt
for want in '^A +same +1 +\+5\.0% +\+5\.0%$' '^A +switch +1 +\+20\.0% +\+20\.0%$' \
            '^B +switch +1 +\+25\.0% +\+25\.0%$' 'p0100: switch  \+23\.3% \( 66\.7% of batches\)' \
            'switched batches\): 0\.233$'; do
    grep -Eq "$want" $T/sw.txt || { cat $T/sw.txt; echo "fidelity: FAILED: switch_cost.py: no '$want'"; exit 1; }
done
printf 't_s,model,size\n0,A,x\n' >$T/sw/x/p0100/logs/nexus/backend0.batches.csv
if real/switch_cost.py $T/sw >$T/sw.txt 2>&1 || ! grep -q 'backend0.batches.csv:2: bad batch line' $T/sw.txt; then
    cat $T/sw.txt; echo "fidelity: FAILED: switch_cost.py accepted a bad line"; exit 1
fi
echo "fidelity: switch_cost.py: one model all same; a hand-made log 0.233 as computed"
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
