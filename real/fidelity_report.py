#!/usr/bin/python3
"""fidelity_report.py — tables and plot data from real/fidelity_sweep.sh runs.

    real/fidelity_report.py OUT [--profiles DIR] [--alt-profiles DIR] NAME=SWEEP_DIR...

For every sweep (NAME=DIR, written by fidelity_sweep.sh): the simulated and the real max rate,
and per load point goodput, bad rate, p50 and p99 in both (the real latency as the frontend
measures it, the simulator's definition, and at the client); then, from every backend's
batches.csv, the relative error of each batch's measured executor time against its
prediction (the profile's mean at the batch size plus each suffix part's, what the simulator
draws around): median and p99 of |error| and the median signed error, per model (with
concurrent GPU sharing, batches that ran beside another session's apart: their error is the
interference, which the prediction, the model alone, leaves out). With
--alt-profiles, the same batches are also predicted from another profile directory (as the
simulator would with it: linear interpolation at the batch size unless the profile says
`padded: true`), which shows what a profile fix changed. Writes OUT/tables.md (printed too)
and OUT/NAME.dat; plots/fidelity.gp draws OUT/fidelity.png from the .dat files.
"""
import csv
import glob
import json
import math
import os
import re
import sys


def load_profile(d, model, prec="fp32", cache={}):
    key = (d, model, prec)
    if key in cache:
        return cache[key]
    path = os.path.join(d, "%s-%s.yml" % (model, prec))
    if not os.path.exists(path):
        cache[key] = None
        return None
    text = open(path).read()
    pts = sorted((int(m.group(1)), float(m.group(2))) for m in
                 re.finditer(r"\{batch: (\d+), mean_us: ([\d.]+)", text))
    padded = re.search(r"^padded: true", text, re.M) is not None
    cache[key] = (pts, padded)
    return cache[key]


def mean_at(prof, b):
    """The simulator's mean latency at batch b (engine/profile.c's densify)."""
    pts, padded = prof
    if b > pts[-1][0]:
        b = pts[-1][0]
    if padded:
        return next(m for x, m in pts if x >= b)
    if b <= pts[0][0]:
        return pts[0][1]
    for (x0, y0), (x1, y1) in zip(pts, pts[1:]):
        if x0 <= b <= x1:
            return y0 + (y1 - y0) * (b - x0) / (x1 - x0)
    return pts[-1][1]


def quantile(xs, q):
    xs = sorted(xs)
    if not xs:
        return float("nan")
    k = (len(xs) - 1) * q
    f = math.floor(k)
    c = min(f + 1, len(xs) - 1)
    return xs[f] + (xs[c] - xs[f]) * (k - f)


def pct(a, b):
    return 100.0 * (a - b) / b if b else 0.0


def sim_of(r, pdir):
    """The simulated figures of a run: real.json's "sim" (older nexus-cluster), else the
    prediction nexus-cluster writes to DIR/sim/summary.json."""
    if "sim" in r:
        return r["sim"]
    s = json.load(open(os.path.join(pdir, "sim", "summary.json")))["results"][0]
    lat = s["latency_ms"]
    return dict(s, p50_ms=lat["p50"], p99_ms=lat["p99"])


def sweep_points(d):
    pts = []
    for rj in sorted(glob.glob(os.path.join(d, "p[0-9]*", "real.json"))):
        pm = int(os.path.basename(os.path.dirname(rj))[1:])
        r = json.load(open(rj))["runs"][0]
        r["sim"] = sim_of(r, os.path.dirname(rj))
        pts.append((pm, r, os.path.dirname(rj)))
    return pts


def batches(pdir):
    """Every backend's logged batches; with a session column (concurrent GPU sharing possible),
    each row's "beside" says whether another session's batch on its backend ran during it."""
    rows = []
    for f in glob.glob(os.path.join(pdir, "logs", "*", "backend*.batches.csv")):
        with open(f) as fh:
            mine = list(csv.DictReader(fh))
        iv = sorted(((float(r["t_s"]) * 1e6 - float(r["exec_us"]), float(r["t_s"]) * 1e6, r)
                     for r in mine if r.get("session")), key=lambda x: x[0])
        for i, (a, b, r) in enumerate(iv):
            r["beside"] = any(a2 < b - 1 and b2 > a + 1 and r2["session"] != r["session"]
                              for a2, b2, r2 in iv[max(0, i - 64):i + 64])
        rows += mine
    return rows


def parts_of(s):
    out = []
    for p in filter(None, s.split("+")):
        m, n = p.rsplit(":", 1)
        out.append((m, int(n)))
    return out


def main():
    args = sys.argv[1:]
    if len(args) < 2:
        sys.stderr.write(__doc__)
        return 2
    out = args.pop(0)
    alt = None
    prof_dir = None
    sweeps = []
    while args:
        a = args.pop(0)
        if a == "--alt-profiles":
            alt = args.pop(0)
        elif a == "--profiles":
            prof_dir = args.pop(0)
        elif "=" in a:
            sweeps.append(a.split("=", 1))
        else:
            sys.stderr.write("fidelity_report.py: bad argument %r\n" % a)
            return 2
    os.makedirs(out, exist_ok=True)
    md = []
    bmd = []
    for name, d in sweeps:
        sm = json.load(open(os.path.join(d, "sim-max", "summary.json")))["results"][0]
        pts = sweep_points(d)
        if not pts:
            sys.stderr.write("fidelity_report.py: %s: no runs in %s\n" % (name, d))
            return 1
        passing = [(pm, r) for pm, r, _ in pts if r["real"]["bad_rate"] <= 0.01]
        failing = [(pm, r) for pm, r, _ in pts if r["real"]["bad_rate"] > 0.01]
        first_fail = min((pm for pm, _ in failing), default=None)
        below = [(pm, r) for pm, r in passing if first_fail is None or pm < first_fail]
        real_max = max(below, key=lambda t: t[0])[1]["real"]["offered_rate"] if below else 0.0
        md.append("### %s (%s, policy %s)\n" % (name, sm.get("policy", ""), pts[0][1]["policy"]))
        md.append("max rate (bad rate <= 1 %%): simulated %.1f queries/s, real %.1f (%+.1f %%; "
                  "the highest real point that passed below the first that failed, of %d runs)\n"
                  % (sm["max_rate"], real_max, pct(real_max, sm["max_rate"]), len(pts)))
        md.append("| load (% of sim max) | offered | goodput sim / real | bad rate sim / real "
                  "(points) | p50 sim / real frontend / client (ms) | p99 sim / real frontend "
                  "/ client (ms) | p99 frontend vs sim |")
        md.append("|---|---|---|---|---|---|---|")
        with open(os.path.join(out, name + ".dat"), "w") as dat:
            dat.write("# load_pct offered sim_goodput real_goodput sim_bad_pct real_bad_pct "
                      "sim_p50 real_p50_fe sim_p99 real_p99_fe real_p99_client\n")
            for pm, r, _ in pts:
                s, x, fe = r["sim"], r["real"], r["frontend_ms"]
                md.append("| %.1f | %.1f | %.1f / %.1f (%+.2f %%) | %.2f / %.2f %% (%+.2f) | "
                          "%.2f / %.2f / %.2f | %.2f / %.2f / %.2f | %+.1f %% |"
                          % (pm / 10, x["offered_rate"], s["goodput"], x["goodput"],
                             pct(x["goodput"], s["goodput"]), 100 * s["bad_rate"],
                             100 * x["bad_rate"], 100 * (x["bad_rate"] - s["bad_rate"]),
                             s["p50_ms"], fe["p50"], x["p50_ms"], s["p99_ms"], fe["p99"],
                             x["p99_ms"], pct(fe["p99"], s["p99_ms"])))
                dat.write("%.1f %.1f %.1f %.1f %.3f %.3f %.3f %.3f %.3f %.3f %.3f\n"
                          % (pm / 10, x["offered_rate"], s["goodput"], x["goodput"],
                             100 * s["bad_rate"], 100 * x["bad_rate"], s["p50_ms"], fe["p50"],
                             s["p99_ms"], fe["p99"], x["p99_ms"]))
        md.append("")
        # per-batch errors
        per = {}
        for pm, r, pdir in pts:
            for row in batches(pdir):
                pred, meas = float(row["pred_us"]), float(row["exec_us"])
                if pred <= 0:
                    continue
                key = row["model"] + ("+suffixes" if row["parts"] else "") + (
                    " (beside another session's batch)" if row.get("beside") else "")
                e = per.setdefault(key, {"err": [], "alt": [], "n": 0})
                e["n"] += 1
                e["err"].append((meas - pred) / pred)
                if alt:
                    p = load_profile(alt, row["model"])
                    ok = p is not None
                    a = mean_at(p, int(row["size"])) if ok else 0
                    for m, n in parts_of(row["parts"]):
                        q = load_profile(alt, m)
                        ok = ok and q is not None
                        a += mean_at(q, n) if q else 0
                    if ok:
                        e["alt"].append((meas - a) / a)
        bmd.append("### %s: executor time per batch, measured against predicted\n" % name)
        head = ("| model | batches | median error | median abs error | p99 abs error |"
                + (" same, predicted from %s: median / median abs / p99 abs |" % alt if alt else ""))
        bmd.append(head)
        bmd.append("|---|---|---|---|---|" + ("---|" if alt else ""))
        allerr, allalt = [], []
        for k in sorted(per):
            e = per[k]
            allerr += e["err"]
            allalt += e["alt"]
            line = "| %s | %d | %+.2f %% | %.2f %% | %.2f %% |" % (
                k, e["n"], 100 * quantile(e["err"], 0.5),
                100 * quantile([abs(v) for v in e["err"]], 0.5),
                100 * quantile([abs(v) for v in e["err"]], 0.99))
            if alt:
                line += (" %+.2f / %.2f / %.2f %% |" % (
                    100 * quantile(e["alt"], 0.5), 100 * quantile([abs(v) for v in e["alt"]], 0.5),
                    100 * quantile([abs(v) for v in e["alt"]], 0.99)) if e["alt"] else " — |")
            bmd.append(line)
        line = "| all | %d | %+.2f %% | %.2f %% | %.2f %% |" % (
            len(allerr), 100 * quantile(allerr, 0.5), 100 * quantile([abs(v) for v in allerr], 0.5),
            100 * quantile([abs(v) for v in allerr], 0.99))
        if alt:
            line += (" %+.2f / %.2f / %.2f %% |" % (
                100 * quantile(allalt, 0.5), 100 * quantile([abs(v) for v in allalt], 0.5),
                100 * quantile([abs(v) for v in allalt], 0.99)) if allalt else " — |")
        bmd.append(line)
        bmd.append("")
    text = "\n".join(md) + "\n" + "\n".join(bmd)
    open(os.path.join(out, "tables.md"), "w").write(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
