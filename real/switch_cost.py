#!/usr/bin/python3
"""switch_cost.py — does a model switch explain the serving path's extra time per batch?

    real/switch_cost.py RUN [EXP...]

RUN is a fidelity run: a directory holding EXP/pLOAD/logs/*/backend*.batches.csv (what
real/dnn/cuda/device_fidelity.sh writes under out/; one real/fidelity_sweep.sh sweep is one EXP)
or its tarball (results/fidelity-h100/raw/run4.tar.gz, read in place). For each backend's batch log (one line per batch in the order the GPU ran them: t_s,
model, size, parts, pred_us, exec_us, session) every batch is classed by the batch before it on
the same backend: "switch" when that one ran another model (the profile a batch runs: a prefix
group counts as its prefix model), "same" when it ran the same model (another session of it
included). Prints, per experiment: per model and class the batches, the median and the
GPU-time-weighted error of the measured executor time against the prediction (the profile's mean
at the batch size plus each suffix part's); per model, padded batch size and class the median
error in µs and %; per load point the switched batches' weighted error; and the fraction
sum(exec - pred) / sum(pred) over all switched batches, the value cluster.switch_overhead
takes (the simulator multiplies a switched batch's drawn time by 1 + it).
"""
import collections
import csv
import glob
import io
import os
import re
import statistics
import sys
import tarfile


def logs(run):
    """(exp, load, where the log is, text) for every batch log of RUN."""
    pat = re.compile(r"(?:^|/)([^/]+)/p(\d+)/logs/[^/]+/(backend\d+)\.batches\.csv$")
    if not os.path.exists(run):
        sys.exit("switch_cost.py: %s: no such file or directory" % run)
    if os.path.isdir(run):
        for path in sorted(glob.glob(os.path.join(run, "**", "*.batches.csv"), recursive=True)):
            m = pat.search(path)
            if m:
                yield m.group(1), int(m.group(2)), path, open(path).read()
        return
    try:
        with tarfile.open(run) as t:
            for mem in sorted(t.getmembers(), key=lambda x: x.name):
                m = pat.search(mem.name)
                if m and mem.isfile():
                    text = t.extractfile(mem).read().decode()
                    yield m.group(1), int(m.group(2)), "%s:%s" % (run, mem.name), text
    except (tarfile.TarError, OSError, EOFError) as e:
        sys.exit("switch_cost.py: %s: not a run directory or a readable tarball (%s)" % (run, e))


def padded(b):
    p = 1
    while p < b:
        p *= 2
    return p


def weighted(rows):
    pred = sum(r[0] for r in rows)
    return (sum(r[1] for r in rows) - pred) / pred if pred else float("nan")


def median_rel(rows):
    return statistics.median(r[1] / r[0] - 1 for r in rows)


def main(argv):
    if len(argv) < 2:
        sys.exit("usage: real/switch_cost.py RUN [EXP...]")
    want = set(argv[2:])
    data = collections.defaultdict(list)  # exp -> [(load, model, size, cls, pred, exec)]
    for exp, load, where, text in logs(argv[1]):
        if want and exp not in want:
            continue
        prev = None
        for n, line in enumerate(csv.DictReader(io.StringIO(text)), 2):
            try:
                model = line["model"]
                size, pred, ex = int(line["size"]), float(line["pred_us"]), float(line["exec_us"])
                if not model or size < 1 or pred <= 0:
                    raise ValueError("model, size >= 1 and pred_us > 0 needed")
            except (KeyError, TypeError, ValueError) as e:
                sys.exit("switch_cost.py: %s:%d: bad batch line (%s; columns t_s, model, size, "
                         "parts, pred_us, exec_us, session)" % (where, n, e))
            cls = "first" if prev is None else ("same" if prev == model else "switch")
            prev = model
            if cls == "first":
                continue
            data[exp].append((load, model, size, cls, pred, ex))
    if not data:
        sys.exit("switch_cost.py: %s: no batch logs (EXP/pLOAD/logs/*/backend*.batches.csv)"
                 % argv[1])
    for exp in sorted(data):
        rows = data[exp]
        print("== %s: %d batches" % (exp, len(rows)))
        print("%-14s %-6s %7s %9s %9s" % ("model", "class", "batches", "median", "weighted"))
        by = collections.defaultdict(list)
        for load, model, size, cls, pred, ex in rows:
            by[(model, cls)].append((pred, ex))
        for (model, cls), v in sorted(by.items()):
            print("%-14s %-6s %7d %+8.1f%% %+8.1f%%" % (model, cls, len(v), 100 * median_rel(v),
                                                       100 * weighted(v)))
        print("per padded batch size (median; at least 20 batches):")
        print("%-14s %5s  %-26s %-26s %s" % ("model", "batch", "same: n, us, %",
                                              "switch: n, us, %", "switch - same, us"))
        bs = collections.defaultdict(lambda: collections.defaultdict(list))
        for load, model, size, cls, pred, ex in rows:
            bs[(model, padded(size))][cls].append((pred, ex))
        for (model, b), d in sorted(bs.items()):
            cells, meds = [], {}
            for cls in ("same", "switch"):
                v = d.get(cls, [])
                if len(v) >= 20:
                    meds[cls] = statistics.median(e - p for p, e in v)
                    cells.append("%6d %+6.0f %+6.1f%%" % (len(v), meds[cls], 100 * median_rel(v)))
                else:
                    cells.append("%6d      -       -" % len(v))
            if len(d.get("same", [])) < 20 and len(d.get("switch", [])) < 20:
                continue
            diff = "%+.0f" % (meds["switch"] - meds["same"]) if len(meds) == 2 else "-"
            print("%-14s %5d  %-26s %-26s %s" % (model, b, cells[0], cells[1], diff))
        print("per load point (weighted error; switched share of batches):")
        bl = collections.defaultdict(lambda: collections.defaultdict(list))
        for load, model, size, cls, pred, ex in rows:
            bl[load][cls].append((pred, ex))
        for load in sorted(bl):
            d = bl[load]
            n = sum(len(v) for v in d.values())
            print("  p%04d: switch %+6.1f%% (%5.1f%% of batches), same %s" % (
                load, 100 * weighted(d["switch"]) if d["switch"] else float("nan"),
                100 * len(d["switch"]) / n,
                "%+6.1f%%" % (100 * weighted(d["same"])) if len(d["same"]) >= 20 else "  -"))
        sw = [(p, e) for _, _, _, c, p, e in rows if c == "switch"]
        if sw:
            print("switch_overhead (sum(exec - pred) / sum(pred), switched batches): %.3f" %
                  weighted(sw))
        print()


if __name__ == "__main__":
    main(sys.argv)
