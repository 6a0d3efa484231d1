/* loadgen.c — the load generator (see loadgen.h): an asynchronous state
 * machine on the caller's loop.
 *
 *   ready      ServerReady on every frontend (waiting for each to connect)
 *   start      Status{start_run} on the scheduler: it re-plans from scratch,
 *              which is the run's t = 0 (as the simulator plans at t = 0)
 *   send       one timer walks the schedule; every query due is sent as a
 *              ModelInfer with a deadline of 2 x SLO + 2 s; hooks fire at
 *              their times; Status snapshots at warmup and at duration give
 *              each backend's busy time over the measured window
 *   drain      until every query is answered or its call has expired
 *   status     the scheduler's timeline, plan and failures
 *
 * Every query is accounted for: its call's done() always fires (answer,
 * error, deadline, or cancellation at shutdown). */
#include "loadgen.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "inference.pb-c.h"
#include "kserve.h"
#include "nexus.pb-c.h"
#include "rpc.h"
#include "stats.h"
#include "workload.h"
#include "util.h"

#define INFER "/inference.GRPCInferenceService/ModelInfer"
#define READY "/inference.GRPCInferenceService/ServerReady"
#define STATUS "/nexus.Scheduler/Status"

typedef struct lg lg;

typedef struct lcall {
    lg *g;
    uint32_t i;
} lcall;

typedef struct lready {
    lg *g;
    int f;
    nx_event retry;
} lready;

typedef struct lhook {
    nx_event ev;
    lg *g;
    const nx_lg_hook *h;
} lhook;

typedef struct snap {            /* a Status snapshot: busy time per backend slot */
    bool have;
    uint64_t *busy;
    nx_time *at;
} snap;

enum { PH_READY, PH_START, PH_SEND, PH_DRAIN, PH_STATUS, PH_DONE };

struct lg {
    const nx_loadgen_opts *o;
    nx_loadgen_result *res;
    const nx_catalog *cat;
    nx_loop *loop;
    nx_rpc *rpc;
    nx_rpc_channel **fe;
    nx_rpc_channel *sch;
    lready *rd;
    int nready;
    /* the schedule and its records */
    size_t n, next, outstanding;
    nx_time *arr;                /* relative to t0 */
    nx_query *rec;
    lcall *calls;
    nx_time *lag, *exec, *server;
    float *payload;
    int *app_payload;            /* FP32 values per request of each app */
    nx_time t0, hard_end;
    nx_event send_ev, progress_ev, snap_ev[2];
    lhook *hk;
    int phase;
    int rc;
    nx_errbuf *eb;
    snap win[2];
    int maxb;
    bool down;                   /* gRPC shut down: the run is over */
    int snaps_pending;           /* window snapshots asked and not answered */
    bool snap_end_asked;
    uint64_t errors;
    int printed_errors;
    double last_progress;
};

static void fail(lg *g, int rc, const char *fmt, const char *a, const char *b)
{
    if (g->rc == 0) {
        g->rc = rc;
        nx_err_set(g->eb, rc, fmt, a, b);
    }
}

static void rpc_down(void *ctx)
{
    lg *g = ctx;
    g->down = true;
    nx_loop_stop(g->loop);
}

static void finish(lg *g)
{
    if (g->phase == PH_DONE)
        return;
    g->phase = PH_DONE;
    nx_loop_cancel(g->loop, &g->send_ev);
    nx_loop_cancel(g->loop, &g->progress_ev);
    for (int k = 0; k < 2; k++)
        nx_loop_cancel(g->loop, &g->snap_ev[k]);
    for (int k = 0; k < g->o->nhooks; k++)
        nx_loop_cancel(g->loop, &g->hk[k].ev);
    for (int f = 0; f < g->o->nfrontends; f++)
        nx_loop_cancel(g->loop, &g->rd[f].retry);
    nx_rpc_shutdown(g->rpc, rpc_down, g);
}

/* ---- the final Status: timeline, plan, failures ------------------------------------------- */

static void status_final(void *ctx, int code, const char *why, ProtobufCMessage *pm)
{
    lg *g = ctx;
    nx_run_result *r = &g->res->run;
    if (code != NX_RPC_OK || !pm) {
        nx_log("nexus-loadgen", "the scheduler's status is unavailable (%s: %s): no plan or "
                                "timeline in the summary",
               nx_rpc_code_name(code), why);
        finish(g);
        return;
    }
    Nexus__StatusReply *st = (Nexus__StatusReply *)pm;
    nx_time now = nx_loop_now(g->loop);
    /* scheduler clock -> seconds after t0 */
#define REL_S(ns) (NX_TO_SEC((ns) - st->now_ns + (now - g->t0)))
    int ns = g->cat->nsess;
    r->timeline = nx_calloc(st->n_timeline + 1, sizeof(nx_timeline_pt));
    for (size_t i = 0; i < st->n_timeline; i++) {
        const Nexus__Epoch *e = st->timeline[i];
        if (e->at_ns < st->run_start_ns)
            continue;
        nx_timeline_pt *p = &r->timeline[r->ntimeline++];
        p->t_s = fmax(0, REL_S(e->at_ns));
        p->used = e->used;
        p->planned = e->planned;
        snprintf(p->why, sizeof p->why, "%s", e->why);
        p->slo_ms = nx_calloc((size_t)ns, sizeof(double));
        for (int s = 0; s < ns && (size_t)s < e->n_slo_ms; s++)
            p->slo_ms[s] = e->slo_ms[s];
    }
    r->epochs = st->epochs;
    r->triggers = st->triggers;
    int maxb = g->maxb;
    nx_plan_init(&r->final_plan, maxb, ns);
    for (size_t i = 0; i < st->n_plan; i++) {
        const Nexus__PlanGpu *pg = st->plan[i];
        if (pg->slot < 0 || pg->slot >= maxb)
            continue;
        for (size_t k = 0; k < pg->n_allocs; k++)
            if (pg->allocs[k]->session >= 0 && pg->allocs[k]->session < ns)
                nx_plan_add(&r->final_plan, pg->slot, pg->allocs[k]->session,
                            pg->allocs[k]->batch, pg->allocs[k]->rate, pg->allocs[k]->throughput);
        r->final_plan.gpu[pg->slot].duty_us = pg->duty_us;
        r->final_plan.gpu[pg->slot].exec_us = pg->exec_us;
        r->final_plan.gpu[pg->slot].mem_mb = pg->mem_mb;
        r->final_plan.gpu[pg->slot].overcommitted = pg->overcommitted;
    }
    for (size_t s = 0; s < st->n_unassigned && (int)s < ns; s++)
        r->final_plan.unassigned[s] = st->unassigned[s];
    nx_plan_count_used(&r->final_plan);
    nx_loadgen_result *res = g->res;
    res->failures = nx_calloc(st->n_failures + 1, sizeof(nx_lg_failure));
    for (size_t i = 0; i < st->n_failures; i++) {
        const Nexus__Failure *fl = st->failures[i];
        if (fl->detected_ns < st->run_start_ns)
            continue;
        nx_lg_failure *x = &res->failures[res->nfailures++];
        x->kind = fl->kind;
        x->slot = fl->slot;
        snprintf(x->how, sizeof x->how, "%s", fl->how);
        x->t_s = REL_S(fl->detected_ns);
        x->silent_ms = NX_TO_MS(fl->detected_ns - fl->last_seen_ns);
        x->replan_ms = fl->replanned_ns ? NX_TO_MS(fl->replanned_ns - fl->detected_ns) : -1;
        x->detected_ns = fl->detected_ns;
    }
#undef REL_S
    res->nslots = maxb;
    res->registrations = nx_calloc((size_t)maxb, sizeof(int));
    res->served = nx_calloc((size_t)maxb, sizeof(uint64_t));
    for (size_t i = 0; i < st->n_nodes; i++) {
        const Nexus__NodeStatus *nd = st->nodes[i];
        if (nd->kind == NEXUS__NODE_KIND__NODE_BACKEND && nd->slot >= 0 && nd->slot < maxb) {
            res->registrations[nd->slot] = nd->registrations;
            res->served[nd->slot] = nd->served;
        } else if (nd->kind == NEXUS__NODE_KIND__NODE_FRONTEND && nd->slot >= 0 &&
                   nd->slot < NX_LG_MAX_FRONTENDS) {
            res->fe_registrations[nd->slot] = nd->registrations;
            res->fe_answered[nd->slot] = nd->served;
            if (nd->slot >= res->nfe_slots)
                res->nfe_slots = nd->slot + 1;
        }
    }
    finish(g);
}

/* ---- sending ---------------------------------------------------------------------------------- */

static void maybe_drained(lg *g)
{
    if (g->phase != PH_DRAIN || g->outstanding > 0)
        return;
    if (g->sch && (!g->snap_end_asked || g->snaps_pending > 0))
        return; /* the window's busy times first */
    g->phase = PH_STATUS;
    if (g->o->progress && g->last_progress > 0)
        fprintf(stderr, "\n");
    if (!g->sch) {
        finish(g);
        return;
    }
    Nexus__StatusRequest rq = NEXUS__STATUS_REQUEST__INIT;
    if (nx_rpc_unary(g->sch, STATUS, &rq.base, &nexus__status_reply__descriptor, NX_SEC(10),
                     true, status_final, g) < 0)
        finish(g);
}

static void infer_done(void *ctx, int code, const char *why, ProtobufCMessage *pm)
{
    lcall *lc = ctx;
    lg *g = lc->g;
    size_t i = lc->i;
    nx_query *q = &g->rec[i];
    nx_time now = nx_loop_now(g->loop);
    q->finish = now - g->t0;
    if (code == NX_RPC_OK) {
        Inference__ModelInferResponse *r = (Inference__ModelInferResponse *)pm;
        q->status = q->finish <= q->deadline ? NX_REQ_OK : NX_REQ_LATE;
        int64_t v;
        if (nx_kserve_param(r, "nexus_gpu", &v))
            q->gpu = (int32_t)v;
        if (nx_kserve_param(r, "nexus_batch", &v))
            q->batch = (int32_t)v;
        if (nx_kserve_param(r, "nexus_calls", &v))
            q->calls = (uint32_t)v;
        if (nx_kserve_param(r, "nexus_exec_us", &v))
            g->exec[i] = NX_US((double)v);
        if (nx_kserve_param(r, "nexus_server_us", &v))
            g->server[i] = NX_US((double)v);
        int p = g->app_payload[q->app];
        if (p > 0 && r->n_raw_output_contents == 1 && r->raw_output_contents[0].len == 8) {
            float out[2], sum = 0;
            memcpy(out, r->raw_output_contents[0].data, sizeof out);
            for (int k = 0; k < p; k++)
                sum += (float)((i + (size_t)k) % 13);
            if (out[0] != sum || out[1] != (float)p)
                g->res->wrong_outputs++;
        }
    } else if (code == NX_RPC_DEADLINE_EXCEEDED || code == NX_RPC_CANCELLED) {
        q->status = NX_REQ_UNANSWERED; /* lost */
        q->finish = 0;
        g->res->unanswered++;
    } else {
        q->status = NX_REQ_DROPPED;
        if (code == NX_RPC_RESOURCE_EXHAUSTED) {
            g->res->rejected++;
        } else if (code != NX_RPC_UNAVAILABLE) {
            g->errors++;
            if (g->printed_errors++ < 5)
                nx_log("nexus-loadgen", "query %zu (%s): %s: %s", i,
                       g->cat->x->apps[q->app].name, nx_rpc_code_name(code), why);
        }
    }
    g->outstanding--;
    maybe_drained(g);
}

static void send_one(lg *g, size_t i, nx_time now)
{
    nx_query *q = &g->rec[i];
    const nx_app *app = &g->cat->x->apps[q->app];
    g->lag[i] = now - (g->t0 + g->arr[i]);
    int p = g->app_payload[q->app];
    for (int k = 0; k < p; k++)
        g->payload[k] = (float)((i + (size_t)k) % 13);
    int64_t shape[2] = {1, p};
    Inference__ModelInferRequest__InferInputTensor in =
        INFERENCE__MODEL_INFER_REQUEST__INFER_INPUT_TENSOR__INIT;
    in.name = "INPUT0";
    in.datatype = "FP32";
    in.n_shape = 2;
    in.shape = shape;
    Inference__ModelInferRequest__InferInputTensor *inp = &in;
    ProtobufCBinaryData raw = {.len = sizeof(float) * (size_t)p, .data = (uint8_t *)g->payload};
    Inference__ModelInferRequest rq = INFERENCE__MODEL_INFER_REQUEST__INIT;
    rq.model_name = (char *)app->name;
    if (p > 0) {
        rq.n_inputs = 1;
        rq.inputs = &inp;
        rq.n_raw_input_contents = 1;
        rq.raw_input_contents = &raw;
    }
    g->calls[i] = (lcall){g, (uint32_t)i};
    nx_time timeout = NX_MS(2 * app->slo_ms) + NX_SEC(2);
    int rc = nx_rpc_unary(g->fe[q->app % g->o->nfrontends], INFER, &rq.base,
                          &inference__model_infer_response__descriptor, timeout, false,
                          infer_done, &g->calls[i]);
    if (rc < 0) { /* never sent: an error answer */
        q->status = NX_REQ_DROPPED;
        q->finish = now - g->t0;
        g->errors++;
        return;
    }
    g->outstanding++;
}

static void arm(lg *g, nx_event *ev, nx_time t)
{
    ev->time = t;
    nx_loop_at(g->loop, ev);
}

static void send_tick(nx_event *ev)
{
    lg *g = ev->ctx;
    nx_time now = nx_loop_now(g->loop);
    if (g->o->interrupted && *g->o->interrupted && g->next < g->n) {
        nx_log("nexus-loadgen", "interrupted: %zu of %zu queries sent", g->next, g->n);
        for (size_t i = g->next; i < g->n; i++) { /* never sent: outside the run */
            g->rec[i].status = NX_REQ_DROPPED;
            g->rec[i].arrival = NX_TIME_NEVER / 2;
        }
        g->next = g->n;
    }
    while (g->next < g->n && g->t0 + g->arr[g->next] <= now + NX_US(20)) {
        send_one(g, g->next, now);
        g->next++;
    }
    if (g->next < g->n) {
        arm(g, ev, g->t0 + g->arr[g->next]);
        return;
    }
    g->phase = PH_DRAIN;
    maybe_drained(g);
}

static void progress_tick(nx_event *ev)
{
    lg *g = ev->ctx;
    nx_time now = nx_loop_now(g->loop);
    double t = NX_TO_SEC(now - g->t0);
    g->last_progress = t;
    fprintf(stderr, "\r  %s: t=%.0f/%.0f s, %zu sent, %zu in flight   ", g->cat->combo->name, t,
            g->cat->x->duration_s, g->next, g->outstanding);
    if (g->phase == PH_SEND || g->phase == PH_DRAIN)
        arm(g, ev, now + NX_SEC(1));
}

static void hook_fire(nx_event *ev)
{
    lhook *h = NX_CONTAINER_OF(ev, lhook, ev);
    h->h->fn(h->h->ctx, nx_loop_now(h->g->loop));
}

/* ---- window snapshots: busy time per backend --------------------------------------------- */

static void snap_done(lg *g, snap *w, int code, ProtobufCMessage *pm)
{
    g->snaps_pending--;
    if (code != NX_RPC_OK || !pm) {
        maybe_drained(g);
        return;
    }
    Nexus__StatusReply *st = (Nexus__StatusReply *)pm;
    w->have = true;
    for (size_t i = 0; i < st->n_nodes; i++) {
        const Nexus__NodeStatus *nd = st->nodes[i];
        if (nd->kind == NEXUS__NODE_KIND__NODE_BACKEND && nd->slot >= 0 && nd->slot < g->maxb &&
            nd->alive) {
            w->busy[nd->slot] = nd->busy_ns;
            w->at[nd->slot] = nd->report_ns;
        }
    }
    maybe_drained(g);
}

static void snap0_done(void *ctx, int code, const char *why, ProtobufCMessage *pm)
{
    (void)why;
    lg *g = ctx;
    snap_done(g, &g->win[0], code, pm);
}

static void snap1_done(void *ctx, int code, const char *why, ProtobufCMessage *pm)
{
    (void)why;
    lg *g = ctx;
    snap_done(g, &g->win[1], code, pm);
}

static void snap_fire(nx_event *ev)
{
    lg *g = ev->ctx;
    Nexus__StatusRequest rq = NEXUS__STATUS_REQUEST__INIT;
    bool first = ev == &g->snap_ev[0];
    if (!first)
        g->snap_end_asked = true;
    if (nx_rpc_unary(g->sch, STATUS, &rq.base, &nexus__status_reply__descriptor, NX_SEC(5),
                     false, first ? snap0_done : snap1_done, g) == 0)
        g->snaps_pending++;
    else
        maybe_drained(g);
}

/* ---- readiness and the start ---------------------------------------------------------------- */

static void start_sending(lg *g)
{
    g->phase = PH_SEND;
    g->t0 = nx_loop_now(g->loop);
    nx_log("nexus-loadgen", "t = 0: %zu queries over %.1f s to %d frontend(s), policy '%s'",
           g->n, g->cat->x->duration_s, g->o->nfrontends, g->cat->combo->name);
    g->send_ev.fn = send_tick;
    g->send_ev.ctx = g;
    if (g->n > 0) {
        arm(g, &g->send_ev, g->t0 + g->arr[0]);
    } else {
        g->phase = PH_DRAIN;
        maybe_drained(g);
        return;
    }
    for (int k = 0; k < g->o->nhooks; k++) {
        g->hk[k].g = g;
        g->hk[k].h = &g->o->hooks[k];
        g->hk[k].ev.fn = hook_fire;
        arm(g, &g->hk[k].ev, g->t0 + NX_SEC(g->o->hooks[k].at_s));
    }
    if (g->sch) {
        double at[2] = {g->cat->x->warmup_s, g->cat->x->duration_s};
        for (int k = 0; k < 2; k++) {
            g->snap_ev[k].fn = snap_fire;
            g->snap_ev[k].ctx = g;
            arm(g, &g->snap_ev[k], g->t0 + NX_SEC(at[k]));
        }
    }
    if (g->o->progress) {
        g->progress_ev.fn = progress_tick;
        g->progress_ev.ctx = g;
        arm(g, &g->progress_ev, g->t0 + NX_SEC(1));
    }
}

static void alloc_snaps(lg *g)
{
    for (int k = 0; k < 2; k++) {
        free(g->win[k].busy);
        free(g->win[k].at);
        g->win[k].busy = nx_calloc((size_t)g->maxb + 1, sizeof(uint64_t));
        g->win[k].at = nx_calloc((size_t)g->maxb + 1, sizeof(nx_time));
    }
}

static void started(void *ctx, int code, const char *why, ProtobufCMessage *pm)
{
    lg *g = ctx;
    if (code == NX_RPC_OK && ((Nexus__StatusReply *)pm)->max_backends > 0) {
        g->maxb = ((Nexus__StatusReply *)pm)->max_backends;
        alloc_snaps(g);
    }
    if (code != NX_RPC_OK) {
        fail(g, NX_ERR_IO, "the scheduler did not start the run: %s: %s", nx_rpc_code_name(code),
             why);
        finish(g);
        return;
    }
    start_sending(g);
}

static void all_ready(lg *g)
{
    if (!g->sch) {
        start_sending(g);
        return;
    }
    g->phase = PH_START;
    Nexus__StatusRequest rq = NEXUS__STATUS_REQUEST__INIT;
    rq.start_run = 1;
    if (nx_rpc_unary(g->sch, STATUS, &rq.base, &nexus__status_reply__descriptor, NX_SEC(10), true,
                     started, g) < 0) {
        fail(g, NX_ERR_IO, "cannot call the scheduler%s%s", "", "");
        finish(g);
    }
}

static void ask_ready(lready *r);

static void ready_done(void *ctx, int code, const char *why, ProtobufCMessage *pm)
{
    lready *r = ctx;
    lg *g = r->g;
    if (g->phase != PH_READY)
        return;
    if (code == NX_RPC_OK && ((Inference__ServerReadyResponse *)pm)->ready) {
        if (++g->nready == g->o->nfrontends)
            all_ready(g);
        return;
    }
    if (nx_loop_now(g->loop) > g->hard_end) {
        fail(g, NX_ERR_IO, "frontend %s is not ready (%s)", g->o->frontends[r->f],
             code == NX_RPC_OK ? "ServerReady: false" : why);
        finish(g);
        return;
    }
    arm(g, &r->retry, nx_loop_now(g->loop) + NX_MS(50));
}

static void ready_retry(nx_event *ev) { ask_ready(ev->ctx); }

static void ask_ready(lready *r)
{
    lg *g = r->g;
    Inference__ServerReadyRequest rq = INFERENCE__SERVER_READY_REQUEST__INIT;
    nx_time left = g->hard_end - nx_loop_now(g->loop);
    if (nx_rpc_unary(g->fe[r->f], READY, &rq.base, &inference__server_ready_response__descriptor,
                     left > NX_MS(100) ? left : NX_MS(100), true, ready_done, r) < 0) {
        fail(g, NX_ERR_IO, "cannot call frontend %s%s", g->o->frontends[r->f], "");
        finish(g);
    }
}

/* ---- results ------------------------------------------------------------------------------------ */

static int cmp_time(const void *a, const void *b)
{
    nx_time x = *(const nx_time *)a, y = *(const nx_time *)b;
    return (x > y) - (x < y);
}

/* p-quantile of v[0..n) (sorted in place), in ms. */
static double quant_ms(nx_time *v, size_t n, double p)
{
    if (n == 0)
        return 0;
    qsort(v, n, sizeof *v, cmp_time);
    size_t k = (size_t)(p * (double)(n - 1) + 0.5);
    return NX_TO_MS(v[k]);
}

static void reduce(lg *g)
{
    const nx_experiment *x = g->cat->x;
    nx_run_result *r = &g->res->run;
    nx_stats st;
    nx_stats_init(&st, x->napps, NX_SEC(x->warmup_s), NX_SEC(x->duration_s));
    nx_time *lag = nx_malloc(sizeof(nx_time) * (g->n + 1));
    nx_time *added = nx_malloc(sizeof(nx_time) * (g->n + 1));
    nx_time *ex = nx_malloc(sizeof(nx_time) * (g->n + 1));
    nx_time *sv = nx_malloc(sizeof(nx_time) * (g->n + 1));
    size_t nl = 0, na = 0;
    for (size_t i = 0; i < g->n; i++) {
        nx_query *q = &g->rec[i];
        if (q->status == NX_REQ_PENDING) { /* cannot happen: every call ends */
            q->status = NX_REQ_UNANSWERED;
            q->finish = 0;
            g->res->unanswered++;
        }
        nx_stats_add(&st, q);
        if (q->arrival >= NX_TIME_NEVER / 2)
            continue;
        lag[nl++] = g->lag[i];
        bool in_window = q->arrival >= NX_SEC(x->warmup_s) && q->arrival < NX_SEC(x->duration_s);
        if (in_window && (q->status == NX_REQ_OK || q->status == NX_REQ_LATE)) {
            added[na] = (q->finish - q->arrival) - g->exec[i];
            ex[na] = g->exec[i];
            sv[na++] = g->server[i];
        }
    }
    nx_metrics m;
    nx_stats_finish(&st, &m);
    nx_run_result_set_metrics(r, &m);
    r->napps = x->napps;
    r->apps = st.apps;
    st.apps = NULL;
    r->lat_sorted = st.lat_ms; /* sorted by nx_stats_finish: the latency CDF */
    r->nlat = st.nlat;
    st.lat_ms = NULL;
    nx_stats_free(&st);
    nx_loadgen_result *res = g->res;
    res->lag_p99_us = quant_ms(lag, nl, 0.99) * 1000;
    res->lag_max_us = nl ? NX_TO_US(lag[nl - 1]) : 0;
    res->added_p50_ms = quant_ms(added, na, 0.50);
    res->added_p99_ms = quant_ms(added, na, 0.99);
    res->exec_p50_ms = quant_ms(ex, na, 0.50);
    res->exec_p99_ms = quant_ms(ex, na, 0.99);
    res->server_p50_ms = quant_ms(sv, na, 0.50);
    res->server_p99_ms = quant_ms(sv, na, 0.99);
    free(lag);
    free(added);
    free(ex);
    free(sv);

    /* GPUs used (time-weighted over the window) and utilisation per backend slot */
    double *t = nx_malloc(sizeof(double) * (size_t)(r->ntimeline + 1));
    double *v = nx_malloc(sizeof(double) * (size_t)(r->ntimeline + 1));
    for (int k = 0; k < r->ntimeline; k++) {
        t[k] = r->timeline[k].t_s;
        v[k] = r->timeline[k].used;
    }
    r->gpus_used_avg = nx_stats_step_mean(t, v, r->ntimeline, x->warmup_s, x->duration_s);
    free(t);
    free(v);
    r->ngpu = g->maxb;
    r->util = nx_calloc((size_t)g->maxb, sizeof(double));
    int nused = 0;
    double usum = 0;
    for (int b = 0; b < g->maxb && g->win[0].have && g->win[1].have; b++) {
        nx_time dt = g->win[1].at[b] - g->win[0].at[b];
        if (g->win[0].at[b] == 0 || dt <= 0)
            continue;
        double u = (double)(g->win[1].busy[b] - g->win[0].busy[b]) / (double)dt;
        r->util[b] = u;
        if (u > 0) {
            usum += u;
            nused++;
        }
    }
    r->util_mean = nused ? usum / nused : 0;
    r->sessions = nx_malloc(sizeof(nx_session) * (size_t)g->cat->nsess);
    memcpy(r->sessions, g->cat->sess, sizeof(nx_session) * (size_t)g->cat->nsess);
    r->nsess = g->cat->nsess;
    r->reqs = g->rec; /* taken over */
    r->nreqs = g->n;
    r->total_requests = g->n;
    g->rec = NULL;
}

int nx_loadgen_run(const nx_loadgen_opts *o, nx_loadgen_result *res, nx_errbuf *eb)
{
    memset(res, 0, sizeof *res);
    if (o->nfrontends < 1) {
        nx_err_set(eb, NX_ERR_INVAL, "loadgen: no frontend to send to");
        return NX_ERR_INVAL;
    }
    const nx_catalog *cat = o->cat;
    lg *g = nx_calloc(1, sizeof *g);
    g->o = o;
    g->res = res;
    g->cat = cat;
    g->loop = o->loop;
    g->eb = eb;
    g->maxb = cat->x->gpus;
    /* the queries: the workload's arrivals, as nexus-sim submits them */
    nx_arrivals arr;
    nx_arrivals_init(&arr, cat->x, cat->scale, o->seed);
    size_t cap = 1024;
    g->arr = nx_malloc(sizeof(nx_time) * cap);
    g->rec = nx_malloc(sizeof(nx_query) * cap);
    nx_time t;
    int app;
    while (nx_arrivals_next(&arr, &t, &app)) {
        if (g->n + 1 >= cap) {
            cap *= 2;
            g->arr = nx_realloc(g->arr, sizeof(nx_time) * cap);
            g->rec = nx_realloc(g->rec, sizeof(nx_query) * cap);
        }
        size_t i = g->n++;
        g->arr[i] = t;
        nx_query *q = &g->rec[i];
        memset(q, 0, sizeof *q);
        q->id = i;
        q->app = app;
        q->arrival = t;
        q->deadline = t + NX_MS(cat->x->apps[app].slo_ms);
        q->status = NX_REQ_PENDING;
        q->gpu = -1;
    }
    nx_arrivals_free(&arr);
    g->calls = nx_calloc(g->n + 1, sizeof(lcall));
    g->lag = nx_calloc(g->n + 1, sizeof(nx_time));
    g->exec = nx_calloc(g->n + 1, sizeof(nx_time));
    g->server = nx_calloc(g->n + 1, sizeof(nx_time));
    /* payload < 0: each app's model input (its first stage's profile input_shape) */
    g->app_payload = nx_malloc(sizeof(int) * (size_t)cat->x->napps);
    int pmax = 1;
    for (int a = 0; a < cat->x->napps; a++) {
        int p = o->payload;
        if (p < 0) {
            const nx_profile *pr = cat->sess[cat->app_sess[a]].prof;
            p = 1;
            for (int k = 0; k < pr->input_ndim; k++)
                p *= pr->input_shape[k];
        }
        g->app_payload[a] = p;
        if (p > pmax)
            pmax = p;
    }
    g->payload = nx_calloc((size_t)pmax, sizeof(float));
    g->rd = nx_calloc((size_t)o->nfrontends, sizeof(lready));
    g->hk = nx_calloc((size_t)o->nhooks + 1, sizeof(lhook));
    alloc_snaps(g);
    nx_time t_start = nx_loop_now(g->loop);
    int rc = nx_rpc_init(&g->rpc, g->loop, o->rpc_cfg ? o->rpc_cfg : &(nx_rpc_cfg){0}, eb);
    if (rc == 0) {
        g->fe = nx_calloc((size_t)o->nfrontends, sizeof *g->fe);
        for (int f = 0; f < o->nfrontends; f++)
            g->fe[f] = nx_rpc_connect(g->rpc, o->frontends[f]);
        if (o->scheduler)
            g->sch = nx_rpc_connect(g->rpc, o->scheduler);
        g->hard_end = t_start + NX_SEC(o->ready_timeout_s > 0 ? o->ready_timeout_s : 30);
        g->phase = PH_READY;
        for (int f = 0; f < o->nfrontends; f++) {
            g->rd[f].g = g;
            g->rd[f].f = f;
            g->rd[f].retry.fn = ready_retry;
            g->rd[f].retry.ctx = &g->rd[f];
            ask_ready(&g->rd[f]);
        }
        while (!g->down) /* the caller's own events may stop the loop: go on */
            nx_loop_run(g->loop);
        nx_rpc_free(g->rpc);
        rc = g->rc;
    }
    if (rc == 0)
        reduce(g);
    res->wall_s = NX_TO_SEC(nx_loop_now(g->loop) - t_start);
    res->run.scale = cat->scale;
    free(g->arr);
    free(g->rec);
    free(g->calls);
    free(g->lag);
    free(g->exec);
    free(g->server);
    free(g->payload);
    free(g->app_payload);
    free(g->rd);
    free(g->hk);
    free(g->fe);
    for (int k = 0; k < 2; k++) {
        free(g->win[k].busy);
        free(g->win[k].at);
    }
    free(g);
    return rc;
}

void nx_loadgen_result_free(nx_loadgen_result *res)
{
    nx_run_result_free(&res->run);
    free(res->failures);
    free(res->registrations);
    free(res->served);
    memset(res, 0, sizeof *res);
}

/* ---- real.json ---------------------------------------------------------------------------------- */

static void metrics_json(FILE *f, const nx_run_result *r)
{
    fprintf(f,
            "{\"offered_rate\": %.3f, \"goodput\": %.3f, \"bad_rate\": %.6f, \"sent\": %llu, "
            "\"ok\": %llu, \"late\": %llu, \"dropped\": %llu, \"unanswered\": %llu, "
            "\"p50_ms\": %.4f, \"p90_ms\": %.4f, \"p99_ms\": %.4f, \"max_ms\": %.4f, "
            "\"gpus_used_avg\": %.4f, \"epochs\": %llu}",
            r->offered_rate, r->goodput, r->bad_rate, (unsigned long long)r->sent,
            (unsigned long long)r->ok, (unsigned long long)r->late,
            (unsigned long long)r->dropped, (unsigned long long)r->unanswered, r->lat_p50_ms,
            r->lat_p90_ms, r->lat_p99_ms, r->lat_max_ms, r->gpus_used_avg,
            (unsigned long long)r->epochs);
}

int nx_loadgen_write_json(const char *dir, const nx_catalog *cat,
                          const nx_loadgen_result *const *res, const char *const *labels,
                          int n, nx_errbuf *eb)
{
    char path[1100];
    snprintf(path, sizeof path, "%s/real.json", dir);
    FILE *f = fopen(path, "w");
    if (!f) {
        nx_err_set(eb, NX_ERR_IO, "%s: cannot write: %s", path, strerror(errno));
        return NX_ERR_IO;
    }
    fprintf(f, "{\n  \"experiment\": \"%s\",\n  \"scale\": %.6f,\n  \"runs\": [", cat->x->name,
            cat->scale);
    for (int k = 0; k < n; k++) {
        const nx_loadgen_result *r = res[k];
        fprintf(f, "%s\n    {\n      \"policy\": \"%s\",\n      \"real\": ", k ? "," : "",
                labels[k]);
        metrics_json(f, &r->run);
        fprintf(f, ",\n");
        fprintf(f,
                "      \"wrong_outputs\": %llu, \"rejected\": %llu, \"unanswered\": %llu,\n"
                "      \"send_lag_us\": {\"p99\": %.1f, \"max\": %.1f},\n"
                "      \"exec_ms\": {\"p50\": %.4f, \"p99\": %.4f},\n"
                "      \"added_over_exec_ms\": {\"p50\": %.4f, \"p99\": %.4f},\n"
                "      \"frontend_ms\": {\"p50\": %.4f, \"p99\": %.4f},\n"
                "      \"wall_s\": %.2f,\n      \"failures\": [",
                (unsigned long long)r->wrong_outputs, (unsigned long long)r->rejected,
                (unsigned long long)r->unanswered, r->lag_p99_us, r->lag_max_us, r->exec_p50_ms,
                r->exec_p99_ms, r->added_p50_ms, r->added_p99_ms, r->server_p50_ms,
                r->server_p99_ms, r->wall_s);
        for (int i = 0; i < r->nfailures; i++) {
            const nx_lg_failure *x = &r->failures[i];
            fprintf(f,
                    "%s{\"kind\": \"%s\", \"slot\": %d, \"how\": \"%s\", \"t_s\": %.3f, "
                    "\"silent_ms\": %.3f, \"replan_ms\": %.3f}",
                    i ? ", " : "", x->kind == 1 ? "backend" : "frontend", x->slot, x->how,
                    x->t_s, x->silent_ms, x->replan_ms);
        }
        fprintf(f, "],\n      \"kills\": [");
        for (int i = 0; i < r->nkills; i++) { /* the first failure of that slot after the kill */
            const nx_lg_failure *x = NULL;
            for (int j = 0; j < r->nfailures && !x; j++)
                if (r->failures[j].kind == 1 && r->failures[j].slot == r->kill_slot[i] &&
                    r->failures[j].detected_ns >= r->kill_ns[i])
                    x = &r->failures[j];
            fprintf(f, "%s{\"slot\": %d, \"detected_after_ms\": %.3f, \"replanned_after_ms\": %.3f}",
                    i ? ", " : "", r->kill_slot[i], x ? NX_TO_MS(x->detected_ns - r->kill_ns[i]) : -1,
                    x && x->replan_ms >= 0 ? NX_TO_MS(x->detected_ns - r->kill_ns[i]) + x->replan_ms
                                           : -1);
        }
        fprintf(f, "],\n      \"backends\": [");
        for (int b = 0; b < r->nslots; b++)
            fprintf(f, "%s{\"slot\": %d, \"registrations\": %d, \"served\": %llu}", b ? ", " : "",
                    b, r->registrations[b], (unsigned long long)r->served[b]);
        fprintf(f, "],\n      \"frontends\": [");
        for (int k2 = 0; k2 < r->nfe_slots; k2++)
            fprintf(f, "%s{\"slot\": %d, \"registrations\": %d, \"answered\": %llu}",
                    k2 ? ", " : "", k2, r->fe_registrations[k2],
                    (unsigned long long)r->fe_answered[k2]);
        fprintf(f, "]\n    }");
    }
    fprintf(f, "\n  ]\n}\n");
    bool bad = ferror(f);
    if (fclose(f) != 0 || bad) {
        nx_err_set(eb, NX_ERR_IO, "%s: write failed", path);
        return NX_ERR_IO;
    }
    return 0;
}
