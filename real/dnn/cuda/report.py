#!/usr/bin/env python3
"""report.py — the GPU tables of real/dnn/README.md from a GPU run's files.

  report.py PROFILE_DIR REFERENCE_JSON [CHECK_JSONL]

PROFILE_DIR holds nexus-profile's MODEL-PRECISION.yml (device-only latency per batch, CUDA-graph
replays); REFERENCE_JSON is ../shared/data/h100-pytorch-cudagraph.json (PyTorch 2.11 CUDA-graph
replay on the same card type); CHECK_JSONL is nexus-dnn-check --json output (GPU vs CPU
errors). Prints markdown: per model and precision the ratio ours/PyTorch at every batch size
of the reference (<= 1.0 is the goal; misses are marked), the latencies, and the error table.
Reads the profiles' `batches:` lines directly (no YAML library needed)."""
import json
import os
import re
import sys

MODELS = ["lenet", "resnet18", "resnet50", "vgg16", "inception_v3", "googlenet", "squeezenet1_0",
          "mobilenet_v2", "densenet121", "ssd300_vgg16_core"]
ROW = re.compile(r"\{batch: (\d+), mean_us: ([\d.]+), std_us: ([\d.]+), mem_mb: ([\d.]+)\}")


def profile(path):
    out = {}
    with open(path) as f:
        for line in f:
            m = ROW.search(line)
            if m:
                out[int(m.group(1))] = (float(m.group(2)), float(m.group(3)), float(m.group(4)))
    return out


def main():
    pdir, refpath = sys.argv[1], sys.argv[2]
    ref = json.load(open(refpath))
    batches = [r["batch"] for r in ref["models"]["resnet50"]["fp32"]]
    print("Ratio of our latency to PyTorch's (CUDA-graph replay), both on an %s:\n" % ref["gpu"])
    print("| model | prec | " + " | ".join("b%d" % b for b in batches) + " | max |")
    print("|---|---|" + "---:|" * (len(batches) + 1))
    worst = []
    lat = []
    for m in MODELS:
        for p in ("fp32", "fp16"):
            path = os.path.join(pdir, "%s-%s.yml" % (m, p))
            if not os.path.exists(path):
                continue
            ours = profile(path)
            theirs = {r["batch"]: r["mean_us"] for r in ref["models"][m][p] if "mean_us" in r}
            cells, rs = [], []
            for b in batches:
                if b in ours and b in theirs:
                    r = ours[b][0] / theirs[b]
                    rs.append(r)
                    cells.append(("**%.2f**" if r > 1.0 else "%.2f") % r)
                else:
                    cells.append("-")
            mx = max(rs) if rs else float("nan")
            worst.append((mx, m, p))
            print("| %s | %s | %s | %s |" % (m, p, " | ".join(cells),
                                           ("**%.2f**" if mx > 1.0 else "%.2f") % mx))
            lat.append((m, p, ours, theirs))
    print("\nLatency (us, mean of 40 replays; PyTorch in parentheses) at batch 1, 16, 64, 256:\n")
    print("| model | prec | b1 | b16 | b64 | b256 | GPU memory at b256 (MB) |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for m, p, ours, theirs in lat:
        cells = []
        for b in (1, 16, 64, 256):
            cells.append("%.0f (%.0f)" % (ours[b][0], theirs[b]) if b in ours and b in theirs else "-")
        print("| %s | %s | %s | %.0f |" % (m, p, " | ".join(cells), ours.get(256, (0, 0, 0))[2]))
    misses = [w for w in worst if w[0] > 1.0]
    print("\n%d of %d model/precision rows stay <= 1.0x at every batch size%s" %
          (len(worst) - len(misses), len(worst),
           "" if not misses else "; misses: " + ", ".join("%s %s (%.2f)" % (m, p, r) for r, m, p in misses)))
    if len(sys.argv) > 3:
        errs = {}
        for line in open(sys.argv[3]):
            r = json.loads(line)
            if "check" in r:
                errs.setdefault((r["model"], r["precision"]), []).append(r)
        print("\nGPU against the CPU executor (normalized max error max|gpu-cpu|/max|cpu|, worst of "
              "batch 1 and 4; fp16 against the CPU's fp16 emulation, and against CPU fp32):\n")
        print("| model | fp32 (TF32) | fp16 vs CPU fp16 | fp16 vs CPU fp32 | all within tolerance |")
        print("|---|---:|---:|---:|---|")
        for m in MODELS:
            a = errs.get((m, "fp32"), [])
            b = errs.get((m, "fp16"), [])
            if not a and not b:
                continue
            e32 = max(x["check"]["err"] for x in a) if a else float("nan")
            e16 = max(x["check"]["err"] for x in b) if b else float("nan")
            e16f = max(x["check"]["err_vs_fp32"] for x in b) if b else float("nan")
            ok = all(x["check"]["ok"] for x in a + b)
            print("| %s | %.1e | %.1e | %.1e | %s |" % (m, e32, e16, e16f, "yes" if ok else "**NO**"))


if __name__ == "__main__":
    main()
