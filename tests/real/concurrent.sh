#!/bin/bash
# concurrent.sh — a backend whose policy shares the GPU concurrently (gpu_sharing: concurrent,
# TF Serving's model servers) runs several sessions' batches at once: with emulated executors
# (Fig. 14's three Inception-v3 copies, the H100 interference table) batches of different
# sessions overlap and the overlapped ones run longer than their profile says, the real
# goodput is the simulator's within 5 %, and Nexus's exclusive round robin on the same
# experiment never overlaps two batches; the CPU executor runs two LeNet sessions on two
# executor threads at once; an interference table without the model is refused at start.
set -euo pipefail
cd "$(dirname "$0")/../.."
B=${NX_BUILD:-build}/bin
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
$B/nexus-cluster tests/real/concurrent.yml --out $T/emu --batch-logs --quiet >$T/emu.log 2>&1 ||
    { cat $T/emu.log; exit 1; }
grep -q "executor emulated, sessions concurrent" $T/emu/logs/tf-serving-concurrent/backend0.log ||
    { echo "concurrent: FAILED: the backend did not run sessions concurrently"; exit 1; }
if grep -q "sessions concurrent" $T/emu/logs/nexus/backend0.log; then
    echo "concurrent: FAILED: nexus (exclusive) ran sessions concurrently"; exit 1
fi
ran_cpu=0
if [ -f models/lenet.onnx ]; then
    $B/nexus-cluster tests/real/concurrent_lenet.yml --out $T/cpu --executor cpu --models models \
        --payload 16 --backend-arg=--synthetic-input --batch-logs --no-predict --quiet \
        >$T/cpu.log 2>&1 || { cat $T/cpu.log; exit 1; }
    ran_cpu=1
else
    echo "concurrent: models/lenet.onnx missing (make models): cpu executor not tried"
fi
/usr/bin/python3 - $T $ran_cpu <<'PY'
import csv, json, sys
t, ran_cpu = sys.argv[1], sys.argv[2] == "1"

def batches(path):
    """(start_us, end_us, session, exec/pred) per logged batch, by start"""
    out = []
    for r in csv.DictReader(open(path)):
        end = float(r["t_s"]) * 1e6
        ex = float(r["exec_us"])
        out.append((end - ex, end, r["session"], ex / float(r["pred_us"])))
    return sorted(out)

def overlapped(bs):
    """per batch: does another session's batch run during it (by more than 1 us)?"""
    flags = []
    for i, (a, b, s, _) in enumerate(bs):
        flags.append(any(a2 < b - 1 and b2 > a + 1 and s2 != s
                         for a2, b2, s2, _ in bs[max(0, i - 64):i + 64]))
    return flags

def fail(msg):
    sys.exit("concurrent: FAILED: " + msg)

runs = {r["policy"]: r for r in json.load(open(t + "/emu/real.json"))["runs"]}
sim = {r["policy"]: r for r in json.load(open(t + "/emu/sim/summary.json"))["results"]}
c = batches(t + "/emu/logs/tf-serving-concurrent/backend0.batches.csv")
fl = overlapped(c)
ov = [x[3] for x, f in zip(c, fl) if f]
alone = [x[3] for x, f in zip(c, fl) if not f]
if len(c) < 200 or len(ov) < 0.2 * len(c) or not alone:
    fail("%d batches, %d overlapped another session's" % (len(c), len(ov)))
if len(set(x[2] for x in c)) != 3:
    fail("batches of %d sessions, not 3" % len(set(x[2] for x in c)))
m_ov, m_alone = sum(ov) / len(ov), sum(alone) / len(alone)
if m_ov < m_alone + 0.1:
    fail("overlapped batches ran %.2fx their profile, alone %.2fx: no slowdown" % (m_ov, m_alone))
x, s = runs["tf-serving-concurrent"]["real"], sim["tf-serving-concurrent"]
if x["unanswered"] != 0 or abs(x["goodput"] - s["goodput"]) > 0.05 * s["goodput"]:
    fail("goodput real %.1f vs sim %.1f, %d unanswered" % (x["goodput"], s["goodput"], x["unanswered"]))
print("concurrent: emulated, tf-serving-concurrent: %d batches, %d overlapped another session's "
      "(%.2fx their profile's mean, alone %.2fx); goodput real %.1f, sim %.1f"
      % (len(c), len(ov), m_ov, m_alone, x["goodput"], s["goodput"]))
e = batches(t + "/emu/logs/nexus/backend0.batches.csv")
n_ov = sum(1 for i in range(1, len(e)) if e[i][0] < e[i - 1][1] - 1)
if len(e) < 100 or n_ov:
    fail("nexus (exclusive): %d batches, %d started before the previous ended" % (len(e), n_ov))
print("concurrent: emulated, nexus (exclusive): %d batches, none overlapping" % len(e))
if ran_cpu:
    x = json.load(open(t + "/cpu/real.json"))["runs"][0]["real"]
    c = batches(t + "/cpu/logs/tf-serving-concurrent/backend0.batches.csv")
    n_ov = sum(overlapped(c))
    if x["ok"] < 100 or x["unanswered"] != 0 or n_ov == 0 or len(set(b[2] for b in c)) != 2:
        fail("cpu: %d ok, %d unanswered, %d batches, %d overlapped" % (x["ok"], x["unanswered"], len(c), n_ov))
    print("concurrent: cpu executor, 2 LeNet sessions: %d of %d queries ok, %d of %d batches ran "
          "beside the other session's" % (x["ok"], x["sent"], n_ov, len(c)))
PY
# the emulated executor needs the interference table's curve of every model it serves
if $B/nexus-backend tests/real/concurrent_lenet.yml --scheduler 127.0.0.1:1 >$T/bad.log 2>&1; then
    echo "concurrent: FAILED: a concurrent emulated backend without LeNet's curve started"; exit 1
fi
grep -q "interference table .*has no entry for model 'lenet'" $T/bad.log ||
    { echo "concurrent: FAILED: unclear error:"; cat $T/bad.log; exit 1; }
echo "concurrent: refused: $(head -1 $T/bad.log)"
