/* frontend.c — the frontend state machine; see frontend.h.
 *
 * Query execution: the root stages' calls go out at submission. When a call
 * of stage v answers, each child of v with v as its only parent gets its
 * fan-out of calls at once (pipelined per call, as Nexus's dataflow runs a
 * block as soon as its input is ready); a join stage (several parents) gets
 * its calls once all its parents are complete, fan-out per call of its first
 * parent. A stage is complete when its parents are and its calls have all
 * answered. A dropped call makes the query bad: no further calls go out, the
 * ones in flight are awaited, and the query is answered as dropped.
 *
 * Rate reports follow Nexus: a counter per session per beacon interval (1 s),
 * all intervals since the last report sent every report period (2 s). The
 * scheduler folds each interval into an EWMA.
 *
 * A call with no route (its session is not placed anywhere yet) is a dropped
 * call at once; every query submitted gets exactly one on_done. Calls come
 * from a pool owned by the frontend and are recycled on reply.
 *
 * With a central batching policy the calls do not go out one by one: they
 * wait in the frontend's dispatcher (dispatch.c), which the frontend tells of
 * new calls, routes and replies, and which hands back the calls it drops. */
#include "frontend.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define CALL_CHUNK 1024

static void on_reply(nx_frontend *fe, nx_req *r, bool redispatch);
static void central_drop(void *ctx, nx_req *r);

static void recompute_cum(nx_frontend *fe)
{
    for (int a = 0; a < fe->cfg.napps; a++) {
        const nx_app *app = &fe->cfg.apps[a];
        int base = fe->cfg.app_sess[a];
        for (int v = 0; v < app->nstages; v++) {
            double start = 0;
            for (int k = 0; k < app->stages[v].nparents; k++) {
                double c = fe->cum_us[base + app->stages[v].parents[k]];
                if (c > start)
                    start = c;
            }
            fe->cum_us[base + v] = start + fe->budget_us[base + v];
        }
    }
}

void nx_frontend_init(nx_frontend *fe, nx_env *env, const nx_frontend_cfg *cfg)
{
    memset(fe, 0, sizeof *fe);
    fe->env = env;
    fe->cfg = *cfg;
    int ns = cfg->nsess;
    fe->routes = nx_calloc((size_t)ns, sizeof(nx_route));
    fe->budget_us = nx_calloc((size_t)ns, sizeof(double));
    fe->cum_us = nx_calloc((size_t)ns, sizeof(double));
    for (int s = 0; s < ns; s++)
        fe->budget_us[s] = cfg->sessions[s].slo_us;
    recompute_cum(fe);
    fe->outstanding = nx_calloc((size_t)cfg->ngpu, sizeof(int));
    fe->cur = nx_calloc((size_t)ns, sizeof(uint32_t));
    fe->rng = cfg->seed ^ 0x6a09e667f3bcc909ULL;
    int tpr = (int)(cfg->report_s / cfg->beacon_s + 0.5);
    fe->ticks_per_report = tpr < 1 ? 1 : tpr;
    if (cfg->central) {
        nx_dispatch_cfg dc = {
            .node = cfg->node,
            .sessions = cfg->sessions,
            .nsess = ns,
            .ngpu = cfg->ngpu,
            .multiplier = cfg->multiplier,
            .net_ns = cfg->net_ns,
            .slack_ns = cfg->dispatch_slack_ns,
            .routes = fe->routes,
            .budget_us = fe->budget_us,
            .outstanding = fe->outstanding,
            .on_drop = central_drop,
            .ctx = fe,
        };
        nx_dispatch_init(&fe->dispatch, env, &dc);
    }
}

static void route_free(const nx_frontend *fe, nx_route *r)
{
    free(r->gpu);
    free(r->w);
    free(r->cum);
    if (fe->cfg.lb->fini)
        fe->cfg.lb->fini(r);
    memset(r, 0, sizeof *r);
}

void nx_frontend_free(nx_frontend *fe)
{
    if (fe->env) /* its timer; the dispatcher's are its own */
        nx_cancel(fe->env, &fe->beacon);
    nx_dispatch_free(&fe->dispatch);
    for (int s = 0; s < fe->cfg.nsess; s++)
        route_free(fe, &fe->routes[s]);
    free(fe->routes);
    free(fe->budget_us);
    free(fe->cum_us);
    free(fe->outstanding);
    free(fe->cur);
    free(fe->pending);
    for (int i = 0; i < fe->nchunks; i++)
        free(fe->chunks[i]);
    free(fe->chunks);
    memset(fe, 0, sizeof *fe);
}

/* ---- rate reports ------------------------------------------------------------------ */

static void send_report(nx_frontend *fe)
{
    if (fe->npending == 0)
        return;
    int ns = fe->cfg.nsess;
    nx_rates_msg *m = nx_rates_msg_new(ns, fe->npending);
    memcpy(m->counts, fe->pending, sizeof(uint32_t) * (size_t)ns * (size_t)fe->npending);
    m->frontend = fe->cfg.index;
    m->m.src = fe->cfg.node;
    m->m.dst = NX_NODE_SCHEDULER;
    fe->npending = 0;
    nx_send(fe->env, NX_NODE_SCHEDULER, &m->m);
}

static void beacon(nx_event *ev)
{
    nx_frontend *fe = ev->ctx;
    if (fe->stopped)
        return;
    int ns = fe->cfg.nsess;
    if (fe->npending == fe->cappending) {
        fe->cappending = fe->cappending ? fe->cappending * 2 : 4;
        fe->pending = nx_realloc(fe->pending, sizeof(uint32_t) * (size_t)ns *
                                                  (size_t)fe->cappending);
    }
    memcpy(fe->pending + (size_t)fe->npending * (size_t)ns, fe->cur,
           sizeof(uint32_t) * (size_t)ns);
    fe->npending++;
    memset(fe->cur, 0, sizeof(uint32_t) * (size_t)ns);
    if (++fe->tick >= fe->ticks_per_report) {
        fe->tick = 0;
        send_report(fe);
    }
    nx_at(fe->env, &fe->beacon, ev->time + NX_SEC(fe->cfg.beacon_s));
}

void nx_frontend_start(nx_frontend *fe)
{
    fe->beacon.fn = beacon;
    fe->beacon.ctx = fe;
    nx_at(fe->env, &fe->beacon, nx_now(fe->env) + NX_SEC(fe->cfg.beacon_s));
}

void nx_frontend_stop(nx_frontend *fe) { fe->stopped = true; }

/* ---- the call pool ------------------------------------------------------------------- */

static nx_req *call_alloc(nx_frontend *fe)
{
    if (!fe->free_calls) {
        fe->chunks = nx_realloc(fe->chunks, sizeof(nx_req *) * (size_t)(fe->nchunks + 1));
        nx_req *c = nx_calloc(CALL_CHUNK, sizeof(nx_req));
        fe->chunks[fe->nchunks++] = c;
        for (int i = CALL_CHUNK - 1; i >= 0; i--) {
            c[i].next_free = fe->free_calls;
            fe->free_calls = &c[i];
        }
    }
    nx_req *r = fe->free_calls;
    fe->free_calls = r->next_free;
    memset(r, 0, sizeof *r);
    return r;
}

static void call_release(nx_frontend *fe, nx_req *r)
{
    r->next_free = fe->free_calls;
    fe->free_calls = r;
}

/* ---- queries ------------------------------------------------------------------------- */

/* A count with mean x: floor(x), plus one with probability frac(x). */
static int stochastic_round(nx_frontend *fe, double x)
{
    if (!(x > 0))
        return 0;
    double f = floor(x);
    return (int)f + (nx_rng_uniform(&fe->rng) < x - f ? 1 : 0);
}

static int fanout_sample(nx_frontend *fe, const nx_stage *st)
{
    switch (st->fanout.kind) {
    case NX_FANOUT_POISSON: {
        double mean = st->fanout.value;
        if (mean > 500) /* normal approximation; exp(-mean) would underflow */
            return stochastic_round(fe, mean + sqrt(mean) * (nx_rng_uniform(&fe->rng) +
                                                             nx_rng_uniform(&fe->rng) +
                                                             nx_rng_uniform(&fe->rng) - 1.5) * 2);
        double l = exp(-mean), p = 1;
        int k = -1;
        do {
            k++;
            p *= nx_rng_uniform(&fe->rng);
        } while (p > l);
        return k;
    }
    case NX_FANOUT_TRACE: {
        if (!fe->cfg.nfanout_trace)
            return 0;
        double x = fe->cfg.fanout_trace[fe->fanout_cursor++ % fe->cfg.nfanout_trace];
        return stochastic_round(fe, x * st->fanout.value);
    }
    default:
        return stochastic_round(fe, st->fanout.value);
    }
}

static void finish(nx_frontend *fe, nx_query *q)
{
    q->finish = nx_now(fe->env);
    q->status = q->failed ? NX_REQ_DROPPED
                          : (q->finish <= q->deadline ? NX_REQ_OK : NX_REQ_LATE);
    fe->cfg.on_done(fe->cfg.on_done_ctx, q);
}

/* Send k calls of stage v of query q. */
static void issue(nx_frontend *fe, nx_query *q, int v, int k)
{
    int s = fe->cfg.app_sess[q->app] + v;
    nx_route *rt = &fe->routes[s];
    nx_time now = nx_now(fe->env);
    for (int i = 0; i < k; i++) {
        fe->cur[s]++;
        fe->calls++;
        q->calls++;
        q->ncalls[v]++;
        if (rt->n == 0) {
            fe->no_route++;
            q->failed = 1;
            continue;
        }
        nx_req *r = call_alloc(fe);
        r->id = fe->next_call_id++;
        r->session = s;
        r->stage = (int16_t)v;
        r->query = q;
        r->frontend = fe->cfg.node;
        r->arrival = now;
        r->deadline = q->arrival + NX_US(fe->cum_us[s]);
        r->status = NX_REQ_PENDING;
        if (fe->cfg.central) { /* wait for a batch */
            q->out[v]++;
            q->pending++;
            nx_dispatch_push(&fe->dispatch, r);
            continue;
        }
        int j = rt->n == 1 ? 0 : fe->cfg.lb->pick(rt, fe->outstanding, &fe->rng);
        int gpu = rt->gpu[j];
        fe->outstanding[gpu]++;
        r->gpu = gpu;
        r->msg.type = NX_MSG_QUERY;
        r->msg.src = fe->cfg.node;
        r->msg.dst = nx_node_backend(gpu);
        q->out[v]++;
        q->pending++;
        r->inflight = 1;
        r->attempts = 1;
        nx_send(fe->env, r->msg.dst, &r->msg);
    }
}

/* Mark complete stages, start join stages whose parents are complete, and
 * finish the query when every stage is complete. */
static void settle(nx_frontend *fe, nx_query *q)
{
    const nx_app *app = &fe->cfg.apps[q->app];
    uint32_t all = app->nstages >= 32 ? 0xffffffffu : (1u << app->nstages) - 1;
    for (int v = 0; v < app->nstages; v++) {
        uint32_t bit = 1u << v;
        if (q->done_mask & bit)
            continue;
        const nx_stage *st = &app->stages[v];
        bool parents_done = true;
        for (int k = 0; k < st->nparents; k++)
            parents_done &= (q->done_mask >> st->parents[k]) & 1u;
        if (!parents_done)
            continue;
        if (st->nparents > 1 && !(q->issued_mask & bit)) {
            q->issued_mask |= bit;
            if (!q->failed) {
                int k = 0;
                for (uint16_t i = 0; i < q->ncalls[st->parents[0]]; i++)
                    k += fanout_sample(fe, st);
                issue(fe, q, v, k);
            }
        }
        if (q->out[v] == 0)
            q->done_mask |= bit;
    }
    if (q->pending == 0 && (q->done_mask == all || q->failed) && q->status == NX_REQ_PENDING)
        finish(fe, q);
}

void nx_frontend_submit(nx_frontend *fe, nx_query *q)
{
    const nx_app *app = &fe->cfg.apps[q->app];
    nx_time now = nx_now(fe->env);
    q->frontend = fe->cfg.node;
    q->arrival = now;
    q->deadline = now + NX_MS(app->slo_ms);
    q->status = NX_REQ_PENDING;
    q->failed = 0;
    q->gpu = -1;
    q->batch = 0;
    q->calls = q->pending = q->done_mask = q->issued_mask = 0;
    memset(q->out, 0, sizeof q->out);
    memset(q->ncalls, 0, sizeof q->ncalls);
    fe->submitted++;
    for (int v = 0; v < app->nstages; v++)
        if (app->stages[v].nparents == 0)
            issue(fe, q, v, fanout_sample(fe, &app->stages[v]));
    settle(fe, q);
    if (fe->cfg.central)
        for (int v = 0; v < app->nstages; v++)
            if (app->stages[v].nparents == 0)
                nx_dispatch_session(&fe->dispatch, fe->cfg.app_sess[q->app] + v);
}

/* A call's reply (or its drop). With central dispatch and `redispatch`, the
 * app's queues are looked at again: a GPU may have freed, children queued. */
static void on_reply(nx_frontend *fe, nx_req *r, bool redispatch)
{
    nx_query *q = r->query;
    int v = r->stage;
    r->inflight = 0;
    r->finish = nx_now(fe->env);
    NX_ASSERT(q->out[v] > 0 && q->pending > 0);
    q->out[v]--;
    q->pending--;
    if (r->status == NX_REQ_DROPPED) {
        q->failed = 1;
    } else {
        if (q->gpu < 0) {
            q->gpu = r->gpu;
            q->batch = r->batch;
        }
        const nx_app *app = &fe->cfg.apps[q->app];
        for (int c = v + 1; c < app->nstages && !q->failed; c++) {
            const nx_stage *st = &app->stages[c];
            if (st->nparents == 1 && st->parents[0] == v)
                issue(fe, q, c, fanout_sample(fe, st));
        }
    }
    call_release(fe, r);
    int app_idx = q->app;
    settle(fe, q); /* may finish q: do not touch it after this */
    if (fe->cfg.central && redispatch) { /* a GPU may have freed, children queued */
        const nx_app *app = &fe->cfg.apps[app_idx];
        for (int c = 0; c < app->nstages; c++)
            nx_dispatch_session(&fe->dispatch, fe->cfg.app_sess[app_idx] + c);
    }
}

/* The dispatcher dropped a call: answer it as any dropped call (the
 * dispatcher goes on dispatching, so no redispatch from here). */
static void central_drop(void *ctx, nx_req *r) { on_reply(ctx, r, false); }

static void apply_routes(nx_frontend *fe, nx_routes_msg *m)
{
    NX_ASSERT(m->nsess == fe->cfg.nsess);
    fe->epoch = m->epoch;
    for (int s = 0; s < m->nsess; s++) {
        nx_route *r = &fe->routes[s];
        int n = m->off[s + 1] - m->off[s];
        if (n != r->n) {
            route_free(fe, r);
            r->n = n;
            if (n > 0) {
                r->gpu = nx_malloc(sizeof(int) * (size_t)n);
                r->w = nx_malloc(sizeof(double) * (size_t)n);
                r->cum = nx_malloc(sizeof(double) * (size_t)n);
            }
        }
        r->wsum = 0;
        r->wmin = r->wmax = n > 0 ? m->w[m->off[s]] : 0;
        for (int k = 0; k < n; k++) {
            r->gpu[k] = m->gpu[m->off[s] + k];
            r->w[k] = m->w[m->off[s] + k];
            r->wsum += r->w[k];
            r->cum[k] = r->wsum;
            r->wmin = NX_MIN(r->wmin, r->w[k]);
            r->wmax = NX_MAX(r->wmax, r->w[k]);
        }
        if (n > 0 && fe->cfg.lb->reset)
            fe->cfg.lb->reset(r);
        fe->budget_us[s] = m->slo_us[s];
    }
    recompute_cum(fe);
    if (fe->cfg.central)
        nx_dispatch_routes(&fe->dispatch);
    free(m);
}

/* A backend died: every call in flight there is answered — sent again to
 * another GPU of its session if its deadline still allows, else dropped. The
 * original Nexus lost them (no frontend timeouts, reference/nexus.md §1.11). */
static void gpu_down(nx_frontend *fe, int g)
{
    nx_time now = nx_now(fe->env);
    for (int c = 0; c < fe->nchunks; c++)
        for (int i = 0; i < CALL_CHUNK; i++) {
            nx_req *r = &fe->chunks[c][i];
            if (!r->inflight || r->gpu != g)
                continue;
            r->inflight = 0;
            fe->outstanding[g]--;
            nx_route *rt = &fe->routes[r->session];
            const nx_profile *p = fe->cfg.sessions[r->session].prof;
            /* a retry is worth it while a lone call can still make it on
             * average: the profile's mean, not the planning estimate */
            nx_time need = NX_US(p->mean_us[1] + p->pre_us + p->post_us) + 2 * fe->cfg.net_ns;
            int alt = -1;
            for (int k = 0; k < rt->n; k++) /* the least loaded other GPU */
                if (rt->gpu[k] != g && (alt < 0 || fe->outstanding[rt->gpu[k]] <
                                                       fe->outstanding[alt]))
                    alt = rt->gpu[k];
            if (alt >= 0 && r->deadline - now > need && r->attempts < 4) {
                fe->retried++;
                r->attempts++;
                r->gpu = alt;
                r->inflight = 1;
                fe->outstanding[alt]++;
                r->msg.type = NX_MSG_QUERY;
                r->msg.src = fe->cfg.node;
                r->msg.dst = nx_node_backend(alt);
                nx_send(fe->env, r->msg.dst, &r->msg);
            } else {
                fe->failed_over++;
                r->status = NX_REQ_DROPPED;
                on_reply(fe, r, true);
            }
        }
}

void nx_frontend_recv(nx_frontend *fe, nx_msg *m)
{
    switch (m->type) {
    case NX_MSG_GPU_DOWN: {
        int g = ((nx_gpu_msg *)m)->gpu;
        free(m);
        NX_ASSERT(g >= 0 && g < fe->cfg.ngpu);
        gpu_down(fe, g);
        break;
    }
    case NX_MSG_REPLY: {
        nx_req *r = NX_CONTAINER_OF(m, nx_req, msg);
        int gpu = m->src - nx_node_backend(0);
        NX_ASSERT(gpu >= 0 && gpu < fe->cfg.ngpu);
        if (!r->inflight || r->gpu != gpu)
            break; /* a stale reply from a backend given up on: already answered */
        fe->outstanding[gpu]--;
        on_reply(fe, r, true);
        if (fe->cfg.central)
            nx_dispatch_replied(&fe->dispatch, gpu);
        break;
    }
    case NX_MSG_ROUTES:
        apply_routes(fe, (nx_routes_msg *)m);
        break;
    default:
        NX_ASSERT(!"frontend: unexpected message type");
    }
}
