/* run.c — one simulated run (see run.h): builds the session catalog from the
 * experiment's apps, instantiates the engine's scheduler, F frontends and one
 * backend per GPU on a fresh simulator, drives client arrivals from the
 * workload generators, and reduces the per-request records to metrics.
 *
 * Arrivals: one generator per app (Poisson, Gamma with a CV, uniform,
 * piecewise-rate Poisson), or one shared trace generator that maps each trace
 * arrival onto the apps whose workload is `trace`. App i is served by frontend
 * i mod F. Arrivals stop at `duration`; the run then drains until every request
 * is answered or until 2 x the largest SLO + 1 s have passed (requests still
 * queued then, long past their deadlines, count as late and "unanswered").
 *
 * Metrics count requests that arrived in [warmup, duration). */
#include "run.h"
#include "sim.h"
#include "backend.h"
#include "frontend.h"
#include "scheduler.h"
#include "split.h"
#include "policies.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <gsl/gsl_randist.h>
#include <gsl/gsl_rng.h>

#define CHUNK_SHIFT 16
#define CHUNK (1u << CHUNK_SHIFT)

typedef struct run run;

typedef struct gen {
    nx_event ev;
    run *r;
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
} gen;

/* A profile's interference curve (gpu_sharing: concurrent). */
typedef struct ifx_map {
    const nx_profile *p;
    nx_ifx_curve c;
} ifx_map;

struct run {
    const nx_experiment *x;
    nx_sim sim;
    nx_session *sess;
    int ns, ng, nf;
    nx_scheduler sched;
    nx_backend *be;
    nx_frontend *fe;
    gen *gens;
    int ngens;
    gsl_rng *wrng;          /* workload randomness, separate from the sim's */
    double scale;
    nx_time end_arrivals, window_start, window_end;
    int *app_sess;          /* app a's stage v is session app_sess[a] + v */
    /* queries (client requests) */
    nx_query **chunks;
    size_t nchunks, nreqs;
    uint64_t done;
    /* trace mapping */
    int *trace_apps;
    int ntrace_apps;
    double *trace_cdf;
    uint64_t trace_rr;
    /* timeline */
    nx_run_result *res;
    int captl;
    struct fail_ev *fails;
    ifx_map *ifx;           /* concurrent GPUs: the curve of every profile a batch runs */
    int nifx;
    /* progress */
    const nx_run_opts *o;
    struct timespec t0;
    double last_progress;
};

static double wall_since(const struct timespec *t0)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)(t.tv_sec - t0->tv_sec) + (double)(t.tv_nsec - t0->tv_nsec) * 1e-9;
}

static nx_query *new_query(run *r)
{
    size_t i = r->nreqs;
    if ((i >> CHUNK_SHIFT) >= r->nchunks) {
        r->chunks = nx_realloc(r->chunks, sizeof(nx_query *) * (r->nchunks + 1));
        r->chunks[r->nchunks++] = nx_calloc(CHUNK, sizeof(nx_query));
    }
    nx_query *q = &r->chunks[i >> CHUNK_SHIFT][i & (CHUNK - 1)];
    memset(q, 0, sizeof *q);
    q->id = i;
    r->nreqs++;
    return q;
}

static inline nx_query *req_at(const run *r, size_t i)
{
    return &r->chunks[i >> CHUNK_SHIFT][i & (CHUNK - 1)];
}

static void submit(run *r, int app)
{
    nx_query *q = new_query(r);
    q->app = app;
    nx_frontend_submit(&r->fe[app % r->nf], q);
}

/* ---- arrival generators ------------------------------------------------------ */

static double gap_s(gen *g)
{
    const nx_workload *w = &g->r->x->apps[g->app].wl;
    switch (w->kind) {
    case NX_WL_POISSON:
        return gsl_ran_exponential(g->r->wrng, 1.0 / g->rate);
    case NX_WL_GAMMA:
        return gsl_ran_gamma(g->r->wrng, g->gshape, g->gscale);
    case NX_WL_UNIFORM:
        return 1.0 / g->rate;
    default:
        NX_ASSERT(!"gap_s: bad workload kind");
        return 0;
    }
}

/* Arm the generator for t_s (seconds; kept in double in g->t so rounding to
 * ns never accumulates). Two arrivals closer than 1 ns share a time. */
static void arm(gen *g, double t_s)
{
    g->t = t_s;
    if (!isfinite(t_s) || t_s >= NX_TO_SEC(g->r->end_arrivals))
        return; /* no further arrival (e.g. a last rate step of 0) */
    nx_time t = (nx_time)llround(t_s * 1e9);
    if (t < g->r->sim.now)
        t = g->r->sim.now;
    if (t >= g->r->end_arrivals)
        return;
    nx_at(&g->r->sim.env, &g->ev, t);
}

/* Next arrival of a piecewise-rate Poisson process after time t (memoryless:
 * a draw that crosses a step boundary restarts at the boundary). */
static double piecewise_next(gen *g, double t)
{
    const nx_workload *w = &g->r->x->apps[g->app].wl;
    for (;;) {
        double rate = w->steps[g->step].rate * g->r->scale;
        double bound = g->step + 1 < w->nsteps ? w->steps[g->step + 1].at_s : INFINITY;
        if (rate > 0) {
            double nt = t + gsl_ran_exponential(g->r->wrng, 1.0 / rate);
            if (nt < bound)
                return nt;
        }
        if (bound == INFINITY)
            return INFINITY;
        t = bound;
        g->step++;
    }
}

static void app_fire(nx_event *ev)
{
    gen *g = NX_CONTAINER_OF(ev, gen, ev);
    run *r = g->r;
    submit(r, g->app);
    double t = g->t;
    if (r->x->apps[g->app].wl.kind == NX_WL_PIECEWISE)
        arm(g, piecewise_next(g, t));
    else
        arm(g, t + gap_s(g));
}

static int trace_pick_app(run *r, size_t idx)
{
    const nx_trace_cfg *tc = &r->x->trace;
    int n = r->ntrace_apps;
    switch (tc->map) {
    case NX_TRACE_MAP_ROUND_ROBIN:
        return r->trace_apps[r->trace_rr++ % (uint64_t)n];
    case NX_TRACE_MAP_HASH: {
        uint64_t z = idx * 0x9e3779b97f4a7c15ULL;
        z ^= z >> 29;
        z *= 0xbf58476d1ce4e5b9ULL;
        z ^= z >> 32;
        return r->trace_apps[z % (uint64_t)n];
    }
    default: { /* zipf, weight: sample the CDF */
        double u = gsl_rng_uniform(r->wrng);
        for (int i = 0; i < n - 1; i++)
            if (u < r->trace_cdf[i])
                return r->trace_apps[i];
        return r->trace_apps[n - 1];
    }
    }
}

static double trace_time(gen *g)
{
    const nx_trace_cfg *tc = &g->r->x->trace;
    return g->toff + tc->trace.t_s[g->ti] * tc->time_scale;
}

static int trace_copies(gen *g)
{
    double s = g->r->x->trace.rate_scale * g->r->scale;
    double fl = floor(s);
    int k = (int)fl;
    if (gsl_rng_uniform(g->r->wrng) < s - fl)
        k++;
    return k;
}

/* Time until the trace's next arrival after row g->ti (s, scaled). */
static double trace_gap(gen *g)
{
    const nx_trace_cfg *tc = &g->r->x->trace;
    if (g->ti + 1 < tc->trace.n)
        return (tc->trace.t_s[g->ti + 1] - tc->trace.t_s[g->ti]) * tc->time_scale;
    return g->toff + g->tperiod - trace_time(g);
}

/* Advance to the next trace arrival that yields at least one request. Its
 * copies are spread over the gap to the following arrival, one per equal
 * slice at a uniform point of the slice, the first exactly at the arrival:
 * rate scaling multiplies the rate at every time scale above one
 * inter-arrival gap and keeps the trace's burst structure, without creating
 * bursts of simultaneous requests that the trace does not have. */
static void trace_arm_next(gen *g)
{
    const nx_trace_cfg *tc = &g->r->x->trace;
    for (;;) {
        if (g->ti >= tc->trace.n) {
            if (!tc->loop)
                return;
            g->ti = 0;
            g->toff += g->tperiod;
        }
        g->copies_left = trace_copies(g);
        if (g->copies_left > 0)
            break;
        g->ti++;
    }
    g->copy = 0;
    g->base = trace_time(g);
    g->gap = trace_gap(g);
    arm(g, g->base);
}

static void trace_fire(nx_event *ev)
{
    gen *g = NX_CONTAINER_OF(ev, gen, ev);
    run *r = g->r;
    submit(r, trace_pick_app(r, r->nreqs));
    if (++g->copy < g->copies_left) {
        double u = gsl_rng_uniform(r->wrng);
        arm(g, g->base + g->gap * (g->copy + u) / g->copies_left);
        return;
    }
    g->ti++;
    trace_arm_next(g);
}

static void setup_trace(run *r)
{
    const nx_experiment *x = r->x;
    r->trace_apps = nx_malloc(sizeof(int) * (size_t)x->napps);
    r->trace_cdf = nx_malloc(sizeof(double) * (size_t)x->napps);
    double tot = 0;
    for (int a = 0; a < x->napps; a++) {
        if (x->apps[a].wl.kind != NX_WL_TRACE)
            continue;
        int k = r->ntrace_apps++;
        r->trace_apps[k] = a;
        double w = x->trace.map == NX_TRACE_MAP_ZIPF ? 1.0 / pow(k + 1, x->trace.zipf_s)
                                                      : x->apps[a].wl.rate;
        tot += w;
        r->trace_cdf[k] = tot;
    }
    for (int k = 0; k < r->ntrace_apps; k++)
        r->trace_cdf[k] = tot > 0 ? r->trace_cdf[k] / tot : (k + 1.0) / r->ntrace_apps;
}

/* Mean calls of a stage per call of its (first) parent. */
static double mean_fanout(const nx_experiment *x, const nx_stage *st)
{
    if (st->fanout.kind != NX_FANOUT_TRACE)
        return st->fanout.value;
    const nx_trace *t = &x->trace.trace;
    double sum = 0;
    for (size_t i = 0; i < t->n && t->size; i++)
        sum += t->size[i];
    return t->n ? sum / (double)t->n * st->fanout.value : 0;
}

/* Mean rate an app is expected to see, for the scheduler's first plan. */
static double expected_rate(const run *r, int a)
{
    const nx_experiment *x = r->x;
    const nx_workload *w = &x->apps[a].wl;
    switch (w->kind) {
    case NX_WL_PIECEWISE:
        return w->steps[0].rate * r->scale;
    case NX_WL_TRACE: {
        const nx_trace *t = &x->trace.trace;
        double span = t->n > 1 ? t->t_s[t->n - 1] * x->trace.time_scale : 1.0;
        double total = (double)t->n / (span > 0 ? span : 1.0) * x->trace.rate_scale * r->scale;
        double share = 0;
        for (int k = 0; k < r->ntrace_apps; k++)
            if (r->trace_apps[k] == a)
                share = r->trace_cdf[k] - (k ? r->trace_cdf[k - 1] : 0);
        return total * share;
    }
    default:
        return w->rate * r->scale;
    }
}

static void start_generators(run *r)
{
    const nx_experiment *x = r->x;
    r->gens = nx_calloc((size_t)x->napps + 1, sizeof(gen));
    for (int a = 0; a < x->napps; a++) {
        const nx_workload *w = &x->apps[a].wl;
        if (w->kind == NX_WL_TRACE)
            continue;
        gen *g = &r->gens[r->ngens++];
        g->r = r;
        g->app = a;
        g->ev.fn = app_fire;
        g->rate = w->rate * r->scale;
        if (w->kind == NX_WL_PIECEWISE) {
            arm(g, piecewise_next(g, 0));
            continue;
        }
        if (!(g->rate > 0))
            continue;
        if (w->kind == NX_WL_GAMMA) {
            g->gshape = 1.0 / (w->cv * w->cv);
            g->gscale = 1.0 / (g->rate * g->gshape);
        }
        /* uniform arrivals start at a random phase; the others draw a gap */
        double first = w->kind == NX_WL_UNIFORM ? gsl_rng_uniform(r->wrng) / g->rate : gap_s(g);
        arm(g, first);
    }
    if (r->ntrace_apps > 0 && x->trace.trace.n > 0) {
        gen *g = &r->gens[r->ngens++];
        g->r = r;
        g->app = -1;
        g->ev.fn = trace_fire;
        const nx_trace *t = &x->trace.trace;
        double span = t->t_s[t->n - 1];
        double meangap = t->n > 1 ? span / (double)(t->n - 1) : 1.0;
        g->tperiod = (span + meangap) * x->trace.time_scale;
        trace_arm_next(g);
    }
}

/* ---- failure injection ------------------------------------------------------------ */

typedef struct fail_ev {
    nx_event ev;
    run *r;
    int gpu;
    bool revive;
} fail_ev;

static void fail_fire(nx_event *ev)
{
    fail_ev *f = NX_CONTAINER_OF(ev, fail_ev, ev);
    if (f->revive)
        nx_backend_revive(&f->r->be[f->gpu]);
    else
        nx_backend_kill(&f->r->be[f->gpu]);
}

static void start_failures(run *r)
{
    const nx_experiment *x = r->x;
    if (x->nfailures == 0)
        return;
    r->fails = nx_calloc((size_t)x->nfailures * 2, sizeof(fail_ev));
    for (int i = 0; i < x->nfailures; i++) {
        fail_ev *k = &r->fails[2 * i], *v = &r->fails[2 * i + 1];
        *k = (fail_ev){.ev = {.fn = fail_fire}, .r = r, .gpu = x->failures[i].gpu};
        nx_at(&r->sim.env, &k->ev, NX_SEC(x->failures[i].at_s));
        if (x->failures[i].down_s > 0) {
            *v = (fail_ev){.ev = {.fn = fail_fire}, .r = r, .gpu = x->failures[i].gpu,
                           .revive = true};
            nx_at(&r->sim.env, &v->ev, NX_SEC(x->failures[i].at_s + x->failures[i].down_s));
        }
    }
}

/* ---- concurrent GPU sharing -------------------------------------------------------- */

static double slowdown(void *ctx, const nx_batch *b, int k)
{
    run *r = ctx;
    for (int i = 0; i < r->nifx; i++)
        if (r->ifx[i].p == b->prof)
            return nx_ifx_slowdown(&r->ifx[i].c, b->size, k);
    NX_ASSERT(!"slowdown: a batch of a profile without a curve");
    return 1;
}

/* The interference curve of every profile a batch can run (a session's model,
 * or its prefix group's prefix); a profile the table lacks is an error. */
static int setup_sharing(run *r, nx_errbuf *eb)
{
    const nx_experiment *x = r->x;
    r->ifx = nx_calloc((size_t)r->ns, sizeof *r->ifx);
    for (int i = 0; i < r->ns; i++) {
        const nx_session *s = &r->sess[i];
        const nx_profile *p = s->group >= 0 ? s->prefix : s->prof;
        int k = 0;
        while (k < r->nifx && r->ifx[k].p != p)
            k++;
        if (k < r->nifx)
            continue;
        r->ifx[k].p = p;
        if (!nx_interference_curve(&x->ifx, p->model, p->precision, &r->ifx[k].c)) {
            nx_err_set(eb, NX_ERR_NOTFOUND,
                       "%s: gpu_sharing: concurrent: the interference table %s has no entry for "
                       "model '%s' precision '%s' (session '%s')",
                       x->path, x->interference, p->model, p->precision, s->name);
            return NX_ERR_NOTFOUND;
        }
        r->nifx++;
    }
    nx_sim_share(&r->sim, r->ng, slowdown, r);
    return 0;
}

/* ---- wiring -------------------------------------------------------------------- */

static void deliver(void *ctx, int dst, nx_msg *m)
{
    run *r = ctx;
    if (dst == NX_NODE_SCHEDULER)
        nx_scheduler_recv(&r->sched, m);
    else if (dst <= r->ng)
        nx_backend_recv(&r->be[dst - 1], m);
    else
        nx_frontend_recv(&r->fe[dst - 1 - r->ng], m);
}

/* Control messages are owned by their receiver; free those never received. */
static void free_ctrl_msg(void *ctx, nx_msg *m)
{
    (void)ctx;
    if (m->type != NX_MSG_QUERY && m->type != NX_MSG_REPLY)
        free(m);
}

static void on_done(void *ctx, nx_query *q)
{
    run *r = ctx;
    r->done++;
}

static void on_epoch(void *ctx, const nx_plan *plan, const double *tput, const double *slo_us,
                     nx_time now, const char *why)
{
    run *r = ctx;
    nx_run_result *res = r->res;
    if (res->ntimeline == r->captl) {
        r->captl = r->captl ? r->captl * 2 : 16;
        res->timeline = nx_realloc(res->timeline, sizeof(nx_timeline_pt) * (size_t)r->captl);
    }
    nx_timeline_pt *p = &res->timeline[res->ntimeline++];
    p->t_s = NX_TO_SEC(now);
    p->used = plan->used;
    p->planned = 0;
    for (int s = 0; s < plan->nsess; s++)
        p->planned += tput[s];
    snprintf(p->why, sizeof p->why, "%s", why);
    p->slo_ms = nx_malloc(sizeof(double) * (size_t)r->ns);
    for (int s = 0; s < r->ns; s++)
        p->slo_ms[s] = slo_us[s] / 1000.0;
}

static void progress(run *r, bool final)
{
    if (!r->o->progress)
        return;
    double w = wall_since(&r->t0);
    if (!final && w - r->last_progress < 0.5)
        return;
    if (!final && w < 2.0)
        return;
    r->last_progress = w;
    fprintf(stderr, "\r  %s: t=%.0f/%.0f s simulated, %zu requests, %.1f s wall%s",
            r->o->label ? r->o->label : "run", NX_TO_SEC(r->sim.now), r->x->duration_s,
            r->nreqs, w, final ? "\n" : "");
}

/* ---- metrics ---------------------------------------------------------------------- */

static void reduce(run *r, nx_run_result *res)
{
    const nx_experiment *x = r->x;
    nx_stats st;
    nx_stats_init(&st, x->napps, r->window_start, r->window_end);
    for (size_t i = 0; i < r->nreqs; i++) {
        nx_query *q = req_at(r, i);
        if (q->status == NX_REQ_PENDING) { /* still queued at the end of the drain */
            q->status = NX_REQ_UNANSWERED;
            q->finish = 0;
        }
        nx_stats_add(&st, q);
    }
    nx_metrics m;
    nx_stats_finish(&st, &m);
    res->window_s = m.window_s;
    res->sent = m.sent;
    res->ok = m.ok;
    res->late = m.late;
    res->dropped = m.dropped;
    res->unanswered = m.unanswered;
    res->offered_rate = m.offered_rate;
    res->goodput = m.goodput;
    res->bad_rate = m.bad_rate;
    res->lat_p50_ms = m.lat_p50_ms;
    res->lat_p90_ms = m.lat_p90_ms;
    res->lat_p99_ms = m.lat_p99_ms;
    res->lat_max_ms = m.lat_max_ms;
    res->lat_mean_ms = m.lat_mean_ms;
    res->napps = x->napps;
    res->apps = st.apps; /* taken over */
    st.apps = NULL;
    res->lat_sorted = st.lat_ms; /* sorted: the latency CDF */
    res->nlat = st.nlat;
    st.lat_ms = NULL;
    nx_stats_free(&st);

    /* GPUs used, time-weighted over the window, from the epoch timeline (a
     * plan counts from the epoch that made it) */
    double *t = nx_malloc(sizeof(double) * (size_t)(res->ntimeline + 1));
    double *v = nx_malloc(sizeof(double) * (size_t)(res->ntimeline + 1));
    for (int k = 0; k < res->ntimeline; k++) {
        t[k] = res->timeline[k].t_s;
        v[k] = res->timeline[k].used;
    }
    res->gpus_used_avg = nx_stats_step_mean(t, v, res->ntimeline, NX_TO_SEC(r->window_start),
                                            NX_TO_SEC(r->window_end));
    free(t);
    free(v);
    res->ngpu = r->ng;
    res->util = nx_calloc((size_t)r->ng, sizeof(double));
    int nused = 0;
    double usum = 0;
    for (int g = 0; g < r->ng; g++) {
        res->util[g] = NX_TO_SEC(r->be[g].busy_in_window) / res->window_s;
        if (r->be[g].busy_in_window > 0) {
            usum += res->util[g];
            nused++;
        }
    }
    res->util_mean = nused ? usum / nused : 0;
}

int nx_run(const nx_experiment *x, const nx_combo *combo, const nx_run_opts *o,
           nx_run_result *res, nx_errbuf *eb)
{
    memset(res, 0, sizeof *res);
    const nx_placement_ops *place = nx_placement_find(combo->placement);
    const nx_batching_ops *bops = nx_batching_find(combo->batching);
    const nx_lb_ops *lb = nx_lb_find(combo->lb);
    char names[256];
    if (!place) {
        nx_placement_list(names, sizeof names);
        nx_err_set(eb, NX_ERR_NOTFOUND, "%s: policy '%s': unknown placement '%s' (known: %s)",
                   x->path, combo->name, combo->placement, names);
        return NX_ERR_NOTFOUND;
    }
    if (!bops) {
        nx_batching_list(names, sizeof names);
        nx_err_set(eb, NX_ERR_NOTFOUND, "%s: policy '%s': unknown batching '%s' (known: %s)",
                   x->path, combo->name, combo->batching, names);
        return NX_ERR_NOTFOUND;
    }
    if (strcmp(combo->split, "dp") != 0 && strcmp(combo->split, "even") != 0) {
        nx_err_set(eb, NX_ERR_NOTFOUND, "%s: policy '%s': unknown split '%s' (known: dp, even)",
                   x->path, combo->name, combo->split);
        return NX_ERR_NOTFOUND;
    }
    if (!lb) {
        nx_lb_list(names, sizeof names);
        nx_err_set(eb, NX_ERR_NOTFOUND, "%s: policy '%s': unknown lb '%s' (known: %s)", x->path,
                   combo->name, combo->lb, names);
        return NX_ERR_NOTFOUND;
    }

    run *r = nx_calloc(1, sizeof *r);
    r->x = x;
    r->o = o;
    r->res = res;
    r->scale = o->scale;
    clock_gettime(CLOCK_MONOTONIC, &r->t0);
    res->scale = o->scale;
    r->app_sess = nx_malloc(sizeof(int) * (size_t)x->napps);
    r->ns = 0;
    for (int a = 0; a < x->napps; a++) {
        r->app_sess[a] = r->ns;
        r->ns += x->apps[a].nstages;
    }
    r->ng = x->gpus;
    /* min(apps, 8) frontends; a central batching policy (Symphony) has one
     * dispatcher that sees every session and every GPU: one frontend */
    r->nf = bops->central ? 1 : (x->napps < 8 ? x->napps : 8);
    r->end_arrivals = NX_SEC(x->duration_s);
    r->window_start = NX_SEC(x->warmup_s);
    r->window_end = NX_SEC(x->duration_s);
    r->wrng = gsl_rng_alloc(gsl_rng_mt19937);
    gsl_rng_set(r->wrng, (unsigned long)(o->seed * 2654435761u + 1));
    nx_sim_init(&r->sim, o->seed, x->net_delay_us, x->net_jitter_us, deliver, r);
    nx_env *env = &r->sim.env;

    if (x->has_trace)
        setup_trace(r);
    double max_slo_us = 0;
    r->sess = nx_calloc((size_t)r->ns, sizeof(nx_session));
    for (int a = 0; a < x->napps; a++) {
        const nx_app *app = &x->apps[a];
        double calls[NX_APP_MAX_STAGES], rate[NX_APP_MAX_STAGES];
        double app_rate = expected_rate(r, a);
        for (int v = 0; v < app->nstages; v++) {
            const nx_stage *st = &app->stages[v];
            calls[v] = (st->nparents == 0 ? 1 : calls[st->parents[0]]) * mean_fanout(x, st);
            rate[v] = app_rate * calls[v];
        }
        /* before the scheduler's first split: the even split (safe on every path) */
        nx_split_in in = {.app = app, .rate = rate, .multiplier = x->sched.profile_multiplier,
                          .net_allowance_us = 2 * (x->net_delay_us + x->net_jitter_us),
                          .steps = x->sched.split_steps};
        nx_split_out ev;
        nx_split_even(&in, &ev);
        for (int v = 0; v < app->nstages; v++) {
            nx_session *s = &r->sess[r->app_sess[a] + v];
            s->id = r->app_sess[a] + v;
            s->app = a;
            s->stage = v;
            if (app->nstages == 1)
                snprintf(s->name, sizeof s->name, "%s", app->name);
            else
                snprintf(s->name, sizeof s->name, "%.30s/%.30s", app->name, app->stages[v].name);
            s->prof = app->stages[v].profile;
            s->group = combo->prefix ? app->stages[v].group : -1;
            s->prefix = app->stages[v].prefix;
            s->suffix = app->stages[v].suffix;
            s->slo_us = app->nstages == 1 ? app->slo_ms * 1000.0 : ev.budget_us[v];
            s->est_rate = rate[v];
        }
        if (app->slo_ms * 1000.0 > max_slo_us)
            max_slo_us = app->slo_ms * 1000.0;
    }

    r->be = nx_calloc((size_t)r->ng, sizeof(nx_backend));
    for (int g = 0; g < r->ng; g++) {
        nx_backend_cfg bc = {
            .gpu = g,
            .sessions = r->sess,
            .nsess = r->ns,
            .batching = bops,
            .bp = &x->batch,
            .multiplier = x->sched.profile_multiplier,
            .reply_ns = NX_US(x->net_delay_us + x->net_jitter_us),
            .keepalive_s = x->sched.keepalive_timeout_s > 0 ? x->sched.beacon_s : 0,
            .window_start = r->window_start,
            .window_end = r->window_end,
            .cpu_cores = x->cpu_cores,
            .no_overlap = !combo->overlap,
            .concurrent = combo->gpu_sharing == NX_GPU_CONCURRENT,
        };
        nx_backend_init(&r->be[g], env, &bc);
    }
    r->fe = nx_calloc((size_t)r->nf, sizeof(nx_frontend));
    for (int f = 0; f < r->nf; f++) {
        nx_frontend_cfg fc = {
            .index = f,
            .node = 1 + r->ng + f,
            .sessions = r->sess,
            .nsess = r->ns,
            .apps = x->apps,
            .napps = x->napps,
            .app_sess = r->app_sess,
            .fanout_trace = x->has_trace ? x->trace.trace.size : NULL,
            .nfanout_trace = x->has_trace && x->trace.trace.size ? x->trace.trace.n : 0,
            .ngpu = r->ng,
            .lb = lb,
            .seed = o->seed * 1000003u + (uint64_t)f,
            .beacon_s = x->sched.beacon_s,
            .report_s = x->sched.report_s,
            .on_done = on_done,
            .on_done_ctx = r,
            .central = bops->central,
            .multiplier = x->sched.profile_multiplier,
            .net_ns = NX_US(x->net_delay_us + x->net_jitter_us),
            .dispatch_slack_ns = NX_US(x->batch.dispatch_slack_us),
        };
        nx_frontend_init(&r->fe[f], env, &fc);
    }
    nx_scheduler_cfg sc = {
        .sessions = r->sess,
        .nsess = r->ns,
        .ngpu = r->ng,
        .nfrontends = r->nf,
        .first_frontend_node = 1 + r->ng,
        .gpu_mem_mb = x->gpu_mem_mb,
        .net_allowance_us = 2 * (x->net_delay_us + x->net_jitter_us),
        .placement = place,
        .p = x->sched,
        .apps = x->apps,
        .napps = x->napps,
        .app_sess = r->app_sess,
        .split = strcmp(combo->split, "even") == 0 ? NX_SPLIT_EVEN : NX_SPLIT_DP,
        .keepalive_timeout_s = x->sched.keepalive_timeout_s,
        .on_epoch = on_epoch,
        .on_epoch_ctx = r,
    };
    nx_scheduler_init(&r->sched, env, &sc);
    int rc = combo->gpu_sharing == NX_GPU_CONCURRENT ? setup_sharing(r, eb) : 0;
    if (rc < 0) {
        /* the message is set */
    } else if ((rc = nx_scheduler_start(&r->sched)) < 0) {
        nx_err_set(eb, rc, "%s: placement '%s' failed: %s", x->path, place->name,
                   nx_strerror(rc));
    } else {
        for (int f = 0; f < r->nf; f++)
            nx_frontend_start(&r->fe[f]);
        for (int g = 0; g < r->ng; g++)
            nx_backend_start(&r->be[g]);
        start_failures(r);
        start_generators(r);

        /* run: arrivals until `duration`, then drain */
        nx_time hard_end = r->end_arrivals + NX_US(2 * max_slo_us) + NX_SEC(1);
        uint64_t k = 0;
        for (;;) {
            if (r->sim.now >= r->end_arrivals && r->done == r->nreqs)
                break;
            if (!nx_sim_step(&r->sim, hard_end))
                break;
            if ((++k & 0xffff) == 0)
                progress(r, false);
        }
        if (r->last_progress > 0)
            progress(r, true);
        nx_scheduler_stop(&r->sched);
        for (int f = 0; f < r->nf; f++)
            nx_frontend_stop(&r->fe[f]);

        res->epochs = r->sched.epochs;
        res->failures = r->sched.failures;
        res->recoveries = r->sched.recoveries;
        for (int f = 0; f < r->nf; f++) {
            res->retried += r->fe[f].retried;
            res->failed_over += r->fe[f].failed_over;
        }
        res->splits = r->sched.splits;
        res->sessions = r->sess;
        res->nsess = r->ns;
        res->triggers = r->sched.triggers;
        nx_plan_init(&res->final_plan, r->ng, r->ns);
        nx_plan_copy(&res->final_plan, &r->sched.eplan);
        reduce(r, res);
        res->events = r->sim.events;
        res->total_requests = r->nreqs;
        if (o->keep_requests) {
            res->reqs = nx_malloc(sizeof(nx_query) * (r->nreqs ? r->nreqs : 1));
            for (size_t i = 0; i < r->nreqs; i++)
                res->reqs[i] = *req_at(r, i);
            res->nreqs = r->nreqs;
        }
    }
    res->wall_s = wall_since(&r->t0);
    nx_sim_discard(&r->sim, free_ctrl_msg, NULL);

    nx_scheduler_free(&r->sched);
    for (int f = 0; f < r->nf; f++)
        nx_frontend_free(&r->fe[f]);
    for (int g = 0; g < r->ng; g++)
        nx_backend_free(&r->be[g]);
    free(r->fe);
    free(r->be);
    free(r->app_sess);
    if (res->sessions != r->sess)
        free(r->sess);
    free(r->gens);
    free(r->fails);
    free(r->ifx);
    free(r->trace_apps);
    free(r->trace_cdf);
    for (size_t c = 0; c < r->nchunks; c++)
        free(r->chunks[c]);
    free(r->chunks);
    nx_sim_free(&r->sim);
    gsl_rng_free(r->wrng);
    free(r);
    return rc;
}

void nx_run_result_free(nx_run_result *r)
{
    free(r->util);
    for (int k = 0; k < r->ntimeline; k++)
        free(r->timeline[k].slo_ms);
    free(r->timeline);
    free(r->sessions);
    free(r->apps);
    free(r->lat_sorted);
    free(r->reqs);
    if (r->final_plan.gpu)
        nx_plan_free(&r->final_plan);
    memset(r, 0, sizeof *r);
}
