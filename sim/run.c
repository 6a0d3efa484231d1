/* run.c — one simulated run (see run.h): builds the session catalog from the
 * experiment's apps, instantiates the engine's scheduler, F frontends and one
 * backend per GPU on a fresh simulator, drives client arrivals from the
 * workload generators, and reduces the per-request records to metrics.
 *
 * The catalog and the engine configs come from engine/catalog.c, the client
 * arrivals from engine/workload.c's iterator, wrapped here in one event that
 * submits an arrival and arms itself for the next. App i is served by frontend
 * i mod F. Arrivals stop at `duration`; the run then drains until every request
 * is answered or until 2 x the largest SLO + 1 s have passed (requests still
 * queued then, long past their deadlines, count as late and "unanswered").
 *
 * Metrics count requests that arrived in [warmup, duration). */
#include "run.h"
#include "sim.h"
#include "backend.h"
#include "catalog.h"
#include "frontend.h"
#include "scheduler.h"
#include "policies.h"
#include "workload.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#define CHUNK_SHIFT 16
#define CHUNK (1u << CHUNK_SHIFT)

typedef struct run run;

struct run {
    const nx_experiment *x;
    nx_sim sim;
    nx_catalog cat;
    int ns, ng, nf;
    nx_scheduler sched;
    nx_backend *be;
    nx_frontend *fe;
    nx_arrivals arr;        /* the workload (its own randomness) */
    nx_event arrive;        /* the next arrival, at its time */
    int arrive_app;
    nx_time end_arrivals, window_start, window_end;
    /* queries (client requests) */
    nx_query **chunks;
    size_t nchunks, nreqs;
    uint64_t done;
    /* timeline */
    nx_run_result *res;
    int captl;
    struct fail_ev *fails;
    nx_ifx_map *ifx;        /* concurrent GPUs: the curve of every profile a batch runs */
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

/* A chunk of query records (~9 MB), on 2 MB pages where the kernel allows it
 * (transparent huge pages in "madvise" mode, as on Debian): a run touches every
 * record once, and on 4 KB pages the page faults cost the bench100 run about
 * as much as the simulation itself on this project's VM. Not zeroed: new_query
 * clears each record as it is handed out. */
static nx_query *chunk_alloc(void)
{
    const size_t huge = (size_t)2 << 20;
    size_t n = (CHUNK * sizeof(nx_query) + huge - 1) & ~(huge - 1);
    nx_query *c = aligned_alloc(huge, n);
    if (!c)
        c = nx_malloc(CHUNK * sizeof(nx_query));
    else
        (void)madvise(c, n, MADV_HUGEPAGE);   /* a hint: 4 KB pages if refused */
    return c;
}

static nx_query *new_query(run *r)
{
    size_t i = r->nreqs;
    if ((i >> CHUNK_SHIFT) >= r->nchunks) {
        r->chunks = nx_realloc(r->chunks, sizeof(nx_query *) * (r->nchunks + 1));
        r->chunks[r->nchunks++] = chunk_alloc();
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

/* ---- arrivals: the workload iterator in one event --------------------------- */

static void arrive_fire(nx_event *ev)
{
    run *r = NX_CONTAINER_OF(ev, run, arrive);
    submit(r, r->arrive_app);
    nx_time t;
    if (nx_arrivals_next(&r->arr, &t, &r->arrive_app))
        nx_at(&r->sim.env, &r->arrive, t);
}

static void start_arrivals(run *r)
{
    nx_time t;
    r->arrive.fn = arrive_fire;
    if (nx_arrivals_next(&r->arr, &t, &r->arrive_app))
        nx_at(&r->sim.env, &r->arrive, t);
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
    return nx_ifx_map_slowdown(r->ifx, r->nifx, b, k);
}

static int setup_sharing(run *r, nx_errbuf *eb)
{
    int rc = nx_catalog_ifx(&r->cat, &r->ifx, &r->nifx, eb);
    if (rc == 0)
        nx_sim_share(&r->sim, r->ng, slowdown, r);
    return rc;
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
    nx_run_result_set_metrics(res, &m);
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
    nx_policy_set pol;
    int rc = nx_policies_resolve(combo, x->path, &pol, eb);
    if (rc < 0)
        return rc;

    run *r = nx_calloc(1, sizeof *r);
    r->x = x;
    r->o = o;
    r->res = res;
    clock_gettime(CLOCK_MONOTONIC, &r->t0);
    res->scale = o->scale;
    nx_catalog_init(&r->cat, x, combo, &pol, o->scale, o->seed);
    r->ns = r->cat.nsess;
    r->ng = x->gpus;
    r->nf = r->cat.nfrontends;
    r->end_arrivals = NX_SEC(x->duration_s);
    r->window_start = NX_SEC(x->warmup_s);
    r->window_end = NX_SEC(x->duration_s);
    nx_arrivals_init(&r->arr, x, o->scale, o->seed);
    nx_sim_init(&r->sim, o->seed, x->net_delay_us, x->net_jitter_us, deliver, r);
    r->sim.batch_overhead = NX_US(x->batch_overhead_us);
    nx_sim_switch_cost(&r->sim, r->ng, x->switch_overhead);
    nx_env *env = &r->sim.env;

    r->be = nx_calloc((size_t)r->ng, sizeof(nx_backend));
    for (int g = 0; g < r->ng; g++) {
        nx_backend_cfg bc;
        nx_backend_cfg_fill(&bc, &r->cat, g);
        nx_backend_init(&r->be[g], env, &bc);
    }
    r->fe = nx_calloc((size_t)r->nf, sizeof(nx_frontend));
    for (int f = 0; f < r->nf; f++) {
        nx_frontend_cfg fc;
        nx_frontend_cfg_fill(&fc, &r->cat, f, 1 + r->ng + f, r->ng);
        fc.on_done = on_done;
        fc.on_done_ctx = r;
        nx_frontend_init(&r->fe[f], env, &fc);
    }
    nx_scheduler_cfg sc;
    nx_scheduler_cfg_fill(&sc, &r->cat, r->ng, r->nf, 1 + r->ng);
    sc.on_epoch = on_epoch;
    sc.on_epoch_ctx = r;
    nx_scheduler_init(&r->sched, env, &sc);
    rc = combo->gpu_sharing == NX_GPU_CONCURRENT ? setup_sharing(r, eb) : 0;
    if (rc < 0) {
        /* the message is set */
    } else if ((rc = nx_scheduler_start(&r->sched)) < 0) {
        nx_err_set(eb, rc, "%s: placement '%s' failed: %s", x->path, pol.placement->name,
                   nx_strerror(rc));
    } else {
        for (int f = 0; f < r->nf; f++)
            nx_frontend_start(&r->fe[f]);
        for (int g = 0; g < r->ng; g++)
            nx_backend_start(&r->be[g]);
        start_failures(r);
        start_arrivals(r);

        /* run: arrivals until `duration`, then drain */
        nx_time hard_end = r->end_arrivals + NX_US(2 * r->cat.max_slo_us) + NX_SEC(1);
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
        res->sessions = r->cat.sess; /* taken over */
        r->cat.sess = NULL;
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
    nx_catalog_free(&r->cat);
    nx_arrivals_free(&r->arr);
    free(r->fails);
    free(r->ifx);
    for (size_t c = 0; c < r->nchunks; c++)
        free(r->chunks[c]);
    free(r->chunks);
    nx_sim_free(&r->sim);
    free(r);
    return rc;
}
