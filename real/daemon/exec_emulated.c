/* exec_emulated.c — the emulated executor (see exec.h): a batch takes the
 * latency the simulator would draw for it (engine/latency.h's nx_latency_draw
 * on a private RNG, plus each suffix part's), waited out on a loop timer, so a
 * real cluster on machines without GPUs can be compared with its simulation.
 * Outputs are FP32 [sum of the input floats, their count].
 *
 * Concurrent GPU sharing (cfg->concurrent): batches of several sessions are in
 * flight at once and share the emulated GPU as the simulator's does: each has
 * its drawn latency as work done at rate 1 / slowdown(batch, k) while k batches
 * run (the experiment's interference table, engine/hostcost.c), brought up to
 * date whenever one starts or ends; one loop timer at the earliest end. */
#include "exec.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "latency.h"

typedef struct ejob {
    nx_batch *b;
    nx_xreq *const *x;
    nx_time want;           /* the drawn latency (alone) */
    double rem;             /* work left: ns of running alone */
    double sd;              /* its slowdown at the current k */
} ejob;

typedef struct emu {
    nx_bexec_cfg cfg;
    gsl_rng *rng;
    nx_event ev;
    bool armed;
    ejob *jobs;             /* batches in flight (one unless concurrent) */
    int n, cap;
    nx_time last;           /* when the jobs' work was last brought up to date */
    nx_ifx_map *curves;     /* concurrent: every profile's interference curve */
    int ncurves;
    uint64_t batches, shared;
    double late_sum_us, late_max_us;   /* ran longer than drawn: timer lateness (concurrent:
                                          and the slowdown) */
} emu;

/* Bring every job's work up to now, then set their slowdowns for the k in flight. */
static void advance(emu *e, nx_time now)
{
    double dt = (double)(now - e->last);
    for (int i = 0; i < e->n && dt > 0; i++)
        e->jobs[i].rem -= dt / e->jobs[i].sd;
    e->last = now;
    for (int i = 0; i < e->n; i++)
        e->jobs[i].sd = e->cfg.concurrent ? nx_ifx_map_slowdown(e->curves, e->ncurves,
                                                                e->jobs[i].b, e->n)
                                         : 1;
}

static void arm(emu *e)
{
    if (e->armed)
        nx_loop_cancel(e->cfg.loop, &e->ev);
    e->armed = false;
    if (e->n == 0)
        return;
    double m = HUGE_VAL;
    for (int i = 0; i < e->n; i++)
        if (e->jobs[i].rem * e->jobs[i].sd < m)
            m = e->jobs[i].rem * e->jobs[i].sd;
    e->ev.time = e->last + (m > 0 ? (nx_time)ceil(m) : 0);
    e->armed = true;
    nx_loop_at(e->cfg.loop, &e->ev);
}

static void outputs(const ejob *j)
{
    for (int i = 0; i < j->b->size; i++) {
        nx_xreq *x = j->x[i];
        float v[2] = {0, 0};
        size_t n = x->nin / sizeof(float);
        for (size_t k = 0; k < n; k++) {
            float f;
            memcpy(&f, x->in + k * sizeof f, sizeof f);
            v[0] += f;
        }
        v[1] = (float)n;
        x->out = nx_malloc(sizeof v);
        memcpy(x->out, v, sizeof v);
        x->nout = sizeof v;
    }
}

/* The earliest end (or later: timers fire late): every job whose work is done
 * leaves, the others are re-timed, then the done ones are handed back (which
 * may start new batches: run() re-enters). */
static void fire(nx_event *ev)
{
    emu *e = ev->ctx;
    e->armed = false;
    nx_time now = nx_loop_now(e->cfg.loop);
    advance(e, now);
    ejob done[64];
    int nd = 0, kept = 0;
    for (int i = 0; i < e->n; i++) {
        if (e->jobs[i].rem * e->jobs[i].sd < 1.0 && nd < 64)
            done[nd++] = e->jobs[i];
        else
            e->jobs[kept++] = e->jobs[i];
    }
    e->n = kept;
    advance(e, now);
    arm(e);
    for (int i = 0; i < nd; i++) {
        nx_batch *b = done[i].b;
        nx_time exec = now - b->start;
        double late = NX_TO_US(exec - done[i].want);
        e->batches++;
        e->late_sum_us += late;
        if (late > e->late_max_us)
            e->late_max_us = late;
        outputs(&done[i]);
        e->cfg.done(e->cfg.ctx, b, exec);
    }
}

static void emu_run(void *state, nx_batch *b, nx_xreq *const *x)
{
    emu *e = state;
    NX_ASSERT(e->n == 0 || e->cfg.concurrent);
    nx_time lat = nx_latency_draw(b->prof, b->size, e->rng);
    for (int i = 0; i < b->nparts; i++) /* suffixes after the shared prefix */
        lat += nx_latency_draw(b->part_prof[i], b->part_n[i], e->rng);
    nx_time now = nx_loop_now(e->cfg.loop);
    if (b->start > now)
        now = b->start;
    advance(e, now);
    if (e->n == e->cap) {
        e->cap = e->cap ? 2 * e->cap : 4;
        e->jobs = nx_realloc(e->jobs, sizeof *e->jobs * (size_t)e->cap);
    }
    /* the work counts from the batch's start (the engine's clock, read just before) */
    e->jobs[e->n++] = (ejob){.b = b, .x = x, .want = lat,
                             .rem = (double)lat - (double)(now - b->start), .sd = 1};
    e->shared += e->n > 1;
    advance(e, now);
    arm(e);
}

static void emu_free(void *state);

static int emu_init(void **state, const nx_bexec_cfg *cfg, nx_errbuf *eb)
{
    *state = NULL;
    emu *e = nx_calloc(1, sizeof *e);
    e->cfg = *cfg;
    e->ev.fn = fire;
    e->ev.ctx = e;
    /* seeded as the simulator seeds its own (sim/sim.c) */
    e->rng = gsl_rng_alloc(gsl_rng_mt19937);
    NX_ASSERT(e->rng);
    gsl_rng_set(e->rng, (unsigned long)(cfg->seed ^ 0x5bd1e995u));
    if (cfg->concurrent) { /* (a model the table lacks is refused, as in the simulator) */
        int rc = nx_catalog_ifx(cfg->cat, &e->curves, &e->ncurves, eb);
        if (rc < 0) {
            emu_free(e);
            return rc;
        }
    }
    *state = e;
    return 0;
}

static void emu_free(void *state)
{
    emu *e = state;
    if (!e)
        return;
    if (e->armed)
        nx_loop_cancel(e->cfg.loop, &e->ev);
    gsl_rng_free(e->rng);
    free(e->jobs);
    free(e->curves);
    free(e);
}

static void emu_report(void *state, char *buf, size_t n)
{
    emu *e = state;
    int k = snprintf(buf, n, "%llu batches, each %.1f us longer than drawn on average (at most "
                             "%.0f us)",
                     (unsigned long long)e->batches,
                     e->batches ? e->late_sum_us / (double)e->batches : 0, e->late_max_us);
    if (e->cfg.concurrent && k > 0 && (size_t)k < n)
        snprintf(buf + k, n - (size_t)k, "; concurrent: %llu started beside another",
                 (unsigned long long)e->shared);
}

const nx_bexec_ops nx_bexec_emulated_ops = {
    .name = "emulated",
    .init = emu_init,
    .run = emu_run,
    .free = emu_free,
    .report = emu_report,
};

const nx_bexec_ops *nx_bexec_find(const char *name)
{
    static const nx_bexec_ops *const all[] = {&nx_bexec_emulated_ops, &nx_bexec_cpu_ops,
                                              &nx_bexec_cuda_ops};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        if (name && strcmp(all[i]->name, name) == 0)
            return all[i];
    return NULL;
}
