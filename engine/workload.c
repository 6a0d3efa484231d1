/* workload.c — the arrival generators and their merge (see workload.h).
 *
 * Each generator keeps the exact time of its armed arrival in seconds (a
 * double, so rounding to nanoseconds never accumulates) and sits in the heap
 * as an event at that time rounded to ns. nx_arrivals_next() pops the
 * earliest, draws what that arrival needs (the trace's app pick) and re-arms
 * its generator (the next gap): the draws happen in arrival order, so the
 * sequence is a pure function of (experiment, scale, seed). */
#include "workload.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <gsl/gsl_randist.h>

struct nx_wgen {
    nx_event ev;          /* in the merge heap at the armed arrival */
    int app;              /* -1: the trace generator */
    double rate;          /* scaled */
    double gshape, gscale;/* gamma */
    int step;             /* piecewise: current step */
    size_t ti;            /* trace: next index */
    double toff;          /* trace: offset of the current loop (s) */
    double tperiod;       /* trace: loop period (s) */
    int copies_left;      /* trace: copies the current arrival yields */
    int copy;             /* trace: copies sent so far */
    double base, gap;     /* trace: the arrival's time and the gap to the next (s) */
    double t;             /* exact time of the armed arrival (s) */
};

static double gap_s(nx_arrivals *a, nx_wgen *g)
{
    const nx_workload *w = &a->x->apps[g->app].wl;
    switch (w->kind) {
    case NX_WL_POISSON:
        return gsl_ran_exponential(a->rng, 1.0 / g->rate);
    case NX_WL_GAMMA:
        return gsl_ran_gamma(a->rng, g->gshape, g->gscale);
    case NX_WL_UNIFORM:
        return 1.0 / g->rate;
    default:
        NX_ASSERT(!"gap_s: bad workload kind");
        return 0;
    }
}

/* Arm g for t_s (seconds). Two arrivals closer than 1 ns share a time. */
static void arm(nx_arrivals *a, nx_wgen *g, double t_s)
{
    g->t = t_s;
    if (!isfinite(t_s) || t_s >= NX_TO_SEC(a->end))
        return; /* no further arrival (e.g. a last rate step of 0) */
    nx_time t = (nx_time)llround(t_s * 1e9);
    if (t < a->now)
        t = a->now;
    if (t >= a->end)
        return;
    g->ev.time = t;
    g->ev.seq = a->seq++;
    nx_heap_push(&a->heap, &g->ev);
}

/* Next arrival of a piecewise-rate Poisson process after time t (memoryless:
 * a draw that crosses a step boundary restarts at the boundary). */
static double piecewise_next(nx_arrivals *a, nx_wgen *g, double t)
{
    const nx_workload *w = &a->x->apps[g->app].wl;
    for (;;) {
        double rate = w->steps[g->step].rate * a->scale;
        double bound = g->step + 1 < w->nsteps ? w->steps[g->step + 1].at_s : INFINITY;
        if (rate > 0) {
            double nt = t + gsl_ran_exponential(a->rng, 1.0 / rate);
            if (nt < bound)
                return nt;
        }
        if (bound == INFINITY)
            return INFINITY;
        t = bound;
        g->step++;
    }
}

static int trace_pick_app(nx_arrivals *a, uint64_t idx)
{
    const nx_trace_cfg *tc = &a->x->trace;
    int n = a->ntrace_apps;
    switch (tc->map) {
    case NX_TRACE_MAP_ROUND_ROBIN:
        return a->trace_apps[a->trace_rr++ % (uint64_t)n];
    case NX_TRACE_MAP_HASH: {
        uint64_t z = idx * 0x9e3779b97f4a7c15ULL;
        z ^= z >> 29;
        z *= 0xbf58476d1ce4e5b9ULL;
        z ^= z >> 32;
        return a->trace_apps[z % (uint64_t)n];
    }
    default: { /* zipf, weight: sample the CDF */
        double u = gsl_rng_uniform(a->rng);
        for (int i = 0; i < n - 1; i++)
            if (u < a->trace_cdf[i])
                return a->trace_apps[i];
        return a->trace_apps[n - 1];
    }
    }
}

static double trace_time(const nx_arrivals *a, const nx_wgen *g)
{
    const nx_trace_cfg *tc = &a->x->trace;
    return g->toff + tc->trace.t_s[g->ti] * tc->time_scale;
}

static int trace_copies(nx_arrivals *a)
{
    double s = a->x->trace.rate_scale * a->scale;
    double fl = floor(s);
    int k = (int)fl;
    if (gsl_rng_uniform(a->rng) < s - fl)
        k++;
    return k;
}

/* Time until the trace's next arrival after row g->ti (s, scaled). */
static double trace_gap(const nx_arrivals *a, const nx_wgen *g)
{
    const nx_trace_cfg *tc = &a->x->trace;
    if (g->ti + 1 < tc->trace.n)
        return (tc->trace.t_s[g->ti + 1] - tc->trace.t_s[g->ti]) * tc->time_scale;
    return g->toff + g->tperiod - trace_time(a, g);
}

/* Advance to the next trace arrival that yields at least one request. Its
 * copies are spread over the gap to the following arrival, one per equal
 * slice at a uniform point of the slice, the first exactly at the arrival:
 * rate scaling multiplies the rate at every time scale above one
 * inter-arrival gap and keeps the trace's burst structure, without creating
 * bursts of simultaneous requests that the trace does not have. */
static void trace_arm_next(nx_arrivals *a, nx_wgen *g)
{
    const nx_trace_cfg *tc = &a->x->trace;
    for (;;) {
        if (g->ti >= tc->trace.n) {
            if (!tc->loop)
                return;
            g->ti = 0;
            g->toff += g->tperiod;
        }
        g->copies_left = trace_copies(a);
        if (g->copies_left > 0)
            break;
        g->ti++;
    }
    g->copy = 0;
    g->base = trace_time(a, g);
    g->gap = trace_gap(a, g);
    arm(a, g, g->base);
}

/* The apps fed by the trace and their cumulative shares (Zipf over their
 * order, or their weights); returns how many. */
static int trace_shares(const nx_experiment *x, int *apps, double *cdf)
{
    int n = 0;
    double tot = 0;
    for (int a = 0; a < x->napps; a++) {
        if (x->apps[a].wl.kind != NX_WL_TRACE)
            continue;
        int k = n++;
        apps[k] = a;
        double w = x->trace.map == NX_TRACE_MAP_ZIPF ? 1.0 / pow(k + 1, x->trace.zipf_s)
                                                      : x->apps[a].wl.rate;
        tot += w;
        cdf[k] = tot;
    }
    for (int k = 0; k < n; k++)
        cdf[k] = tot > 0 ? cdf[k] / tot : (k + 1.0) / n;
    return n;
}

void nx_arrivals_init(nx_arrivals *a, const nx_experiment *x, double scale, uint64_t seed)
{
    memset(a, 0, sizeof *a);
    a->x = x;
    a->scale = scale;
    a->end = NX_SEC(x->duration_s);
    a->rng = gsl_rng_alloc(gsl_rng_mt19937);
    NX_ASSERT(a->rng);
    gsl_rng_set(a->rng, (unsigned long)(seed * 2654435761u + 1));
    nx_heap_init(&a->heap);
    a->trace_apps = nx_malloc(sizeof(int) * (size_t)(x->napps + 1));
    a->trace_cdf = nx_malloc(sizeof(double) * (size_t)(x->napps + 1));
    if (x->has_trace)
        a->ntrace_apps = trace_shares(x, a->trace_apps, a->trace_cdf);

    a->gens = nx_calloc((size_t)x->napps + 1, sizeof(nx_wgen));
    for (int i = 0; i < x->napps; i++) {
        const nx_workload *w = &x->apps[i].wl;
        if (w->kind == NX_WL_TRACE)
            continue;
        nx_wgen *g = &a->gens[a->ngens++];
        g->app = i;
        g->rate = w->rate * scale;
        if (w->kind == NX_WL_PIECEWISE) {
            arm(a, g, piecewise_next(a, g, 0));
            continue;
        }
        if (!(g->rate > 0))
            continue;
        if (w->kind == NX_WL_GAMMA) {
            g->gshape = 1.0 / (w->cv * w->cv);
            g->gscale = 1.0 / (g->rate * g->gshape);
        }
        /* uniform arrivals start at a random phase; the others draw a gap */
        double first = w->kind == NX_WL_UNIFORM ? gsl_rng_uniform(a->rng) / g->rate : gap_s(a, g);
        arm(a, g, first);
    }
    if (a->ntrace_apps > 0 && x->trace.trace.n > 0) {
        nx_wgen *g = &a->gens[a->ngens++];
        g->app = -1;
        const nx_trace *t = &x->trace.trace;
        double span = t->t_s[t->n - 1];
        double meangap = t->n > 1 ? span / (double)(t->n - 1) : 1.0;
        g->tperiod = (span + meangap) * x->trace.time_scale;
        trace_arm_next(a, g);
    }
}

void nx_arrivals_free(nx_arrivals *a)
{
    nx_heap_free(&a->heap);
    if (a->rng)
        gsl_rng_free(a->rng);
    free(a->gens);
    free(a->trace_apps);
    free(a->trace_cdf);
    memset(a, 0, sizeof *a);
}

bool nx_arrivals_next(nx_arrivals *a, nx_time *t, int *app)
{
    if (a->heap.n == 0)
        return false;
    nx_wgen *g = NX_CONTAINER_OF(nx_heap_pop(&a->heap), nx_wgen, ev);
    a->now = g->ev.time;
    *t = g->ev.time;
    if (g->app >= 0) {
        *app = g->app;
        if (a->x->apps[g->app].wl.kind == NX_WL_PIECEWISE)
            arm(a, g, piecewise_next(a, g, g->t));
        else
            arm(a, g, g->t + gap_s(a, g));
    } else {
        *app = trace_pick_app(a, a->count);
        if (++g->copy < g->copies_left) {
            double u = gsl_rng_uniform(a->rng);
            arm(a, g, g->base + g->gap * (g->copy + u) / g->copies_left);
        } else {
            g->ti++;
            trace_arm_next(a, g);
        }
    }
    a->count++;
    return true;
}

double nx_workload_mean_fanout(const nx_experiment *x, const nx_stage *st)
{
    if (st->fanout.kind != NX_FANOUT_TRACE)
        return st->fanout.value;
    const nx_trace *t = &x->trace.trace;
    double sum = 0;
    for (size_t i = 0; i < t->n && t->size; i++)
        sum += t->size[i];
    return t->n ? sum / (double)t->n * st->fanout.value : 0;
}

double nx_workload_rate(const nx_experiment *x, int a, double scale)
{
    const nx_workload *w = &x->apps[a].wl;
    switch (w->kind) {
    case NX_WL_PIECEWISE:
        return w->steps[0].rate * scale;
    case NX_WL_TRACE: {
        if (!x->has_trace)
            return 0;
        const nx_trace *t = &x->trace.trace;
        double span = t->n > 1 ? t->t_s[t->n - 1] * x->trace.time_scale : 1.0;
        double total = (double)t->n / (span > 0 ? span : 1.0) * x->trace.rate_scale * scale;
        int *apps = nx_malloc(sizeof(int) * (size_t)(x->napps + 1));
        double *cdf = nx_malloc(sizeof(double) * (size_t)(x->napps + 1));
        int n = trace_shares(x, apps, cdf);
        double share = 0;
        for (int k = 0; k < n; k++)
            if (apps[k] == a)
                share = cdf[k] - (k ? cdf[k - 1] : 0);
        free(apps);
        free(cdf);
        return total * share;
    }
    default:
        return w->rate * scale;
    }
}
