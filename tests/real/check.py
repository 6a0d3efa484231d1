#!/usr/bin/python3
"""check.py — assertions on a nexus-cluster / nexus-loadgen output directory,
for the shell tests in tests/real. Usage:

  check.py DIR [--lost 0] [--min-ok N] [--max-bad F] [--kills K] [--rejoined SLOT]
           [--keepalive-failure] [--workers W]

Every query must be accounted for: requests.csv has one row per query the
experiment generated, each ok, late, dropped or unanswered; summary.json's
counts add up; no answer carried a wrong output. The simulator's prediction
(DIR/sim/, nexus-sim run by nexus-cluster) must have sent the same queries:
the same count in the window and, where both wrote requests.csv, the same
(id, app, arrival) rows. Prints what it checked."""
import argparse, csv, json, os, sys

ap = argparse.ArgumentParser()
ap.add_argument("dir")
ap.add_argument("--lost", type=int, default=0, help="unanswered queries allowed")
ap.add_argument("--min-ok", type=int, default=1)
ap.add_argument("--max-bad", type=float, default=1.0)
ap.add_argument("--kills", type=int, default=0, help="backend kills expected in real.json")
ap.add_argument("--rejoined", type=int, default=-1, help="slot that must have registered twice and served")
ap.add_argument("--keepalive-failure", action="store_true")
ap.add_argument("--frontend-rejoined", type=int, default=-1,
                help="frontend slot that must have registered twice and answered queries")
a = ap.parse_args()

def fail(msg):
    print("check.py: FAILED:", msg)
    sys.exit(1)

summ = json.load(open(a.dir + "/summary.json"))
real = json.load(open(a.dir + "/real.json"))
if not os.path.exists(a.dir + "/sim/summary.json"):
    fail("no simulator prediction in %s/sim/ (nexus-cluster without --no-predict writes it)" % a.dir)
sim = {r["policy"]: r for r in json.load(open(a.dir + "/sim/summary.json"))["results"]}
sim_csv = a.dir + "/sim/requests.csv"
sim_rows = list(csv.DictReader(open(sim_csv))) if os.path.exists(sim_csv) else None
for res, run in zip(summ["results"], real["runs"]):
    pol = res["policy"]
    sent, ok, late, dropped, un = (res[k] for k in ("sent", "ok", "late", "dropped", "unanswered"))
    if ok + late + dropped != sent:
        fail("%s: ok %d + late %d + dropped %d != sent %d" % (pol, ok, late, dropped, sent))
    if pol not in sim:
        fail("%s: not in the simulator's prediction" % pol)
    total = sim[pol]["sent"]
    if sent != total:
        fail("%s: %d queries in the window, the simulator generated %d" % (pol, sent, total))
    rows = [r for r in csv.DictReader(open(a.dir + "/requests.csv")) if r["policy"] == pol]
    if sim_rows is not None:
        key = lambda r: (int(r["id"]), r["app"], r["arrival_us"])
        mine = sorted(key(r) for r in rows)
        theirs = sorted(key(r) for r in sim_rows if r["policy"] == pol)
        if mine != theirs:
            diff = next((x, y) for x, y in zip(mine + [None], theirs + [None]) if x != y)
            fail("%s: the queries sent differ from the simulator's (%d against %d rows; first: %s / %s)"
                 % (pol, len(mine), len(theirs), diff[0], diff[1]))
        print("%s: the same %d queries (id, app, arrival) as the simulator's" % (pol, len(mine)))
    ids = sorted(int(r["id"]) for r in rows)
    if ids != list(range(len(ids))):
        fail("%s: requests.csv ids are not 0..%d" % (pol, len(ids) - 1))
    bad_status = [r for r in rows if r["status"] not in ("ok", "late", "dropped", "unanswered")]
    if bad_status:
        fail("%s: %d rows with status %s" % (pol, len(bad_status), bad_status[0]["status"]))
    lost = sum(1 for r in rows if r["status"] == "unanswered")
    if lost > a.lost or run["unanswered"] > a.lost:
        fail("%s: %d queries never answered (allowed %d)" % (pol, lost, a.lost))
    if run["wrong_outputs"]:
        fail("%s: %d answers with a wrong output" % (pol, run["wrong_outputs"]))
    if ok < a.min_ok:
        fail("%s: only %d good queries" % (pol, ok))
    if res["bad_rate"] > a.max_bad:
        fail("%s: bad rate %.4f > %.4f" % (pol, res["bad_rate"], a.max_bad))
    kills = run["kills"]
    if len(kills) != a.kills:
        fail("%s: %d kills recorded, expected %d" % (pol, len(kills), a.kills))
    for k in kills:
        if k["detected_after_ms"] < 0 or k["replanned_after_ms"] < 0:
            fail("%s: backend %d killed but no detection/re-plan recorded" % (pol, k["slot"]))
        print("%s: backend %d killed: detected after %.1f ms, re-planned after %.1f ms"
              % (pol, k["slot"], k["detected_after_ms"], k["replanned_after_ms"]))
    if a.rejoined >= 0:
        b = [x for x in run["backends"] if x["slot"] == a.rejoined][0]
        if b["registrations"] < 2 or b["served"] <= 0:
            fail("%s: backend %d: %d registrations, %d served after restart"
                 % (pol, a.rejoined, b["registrations"], b["served"]))
        print("%s: backend %d re-registered and served %d requests" % (pol, a.rejoined, b["served"]))
    if a.frontend_rejoined >= 0:
        fr = [x for x in run["frontends"] if x["slot"] == a.frontend_rejoined][0]
        if fr["registrations"] < 2 or fr["answered"] <= 0:
            fail("%s: frontend %d: %d registrations, %d answered after restart"
                 % (pol, a.frontend_rejoined, fr["registrations"], fr["answered"]))
        print("%s: frontend %d re-registered and answered %d queries"
              % (pol, a.frontend_rejoined, fr["answered"]))
    if a.keepalive_failure:
        ka = [f for f in run["failures"] if f["how"] == "keep-alive timeout"]
        if not ka:
            fail("%s: no keep-alive timeout detected" % pol)
        for f in ka:
            print("%s: backend %d hung: found by the keep-alive timeout after %.0f ms of silence, "
                  "re-planned in %.2f ms" % (pol, f["slot"], f["silent_ms"], f["replan_ms"]))
    print("%s: %d queries, %d rows: %d ok, %d late, %d dropped, %d unanswered; p99 %.2f ms"
          % (pol, sent, len(rows), ok, late, dropped, un, res["latency_ms"]["p99"]))
print("check.py: ok")
