/* frontend.c — the frontend state machine; see frontend.h.
 *
 * Rate reports follow Nexus: a counter per session per beacon interval (1 s),
 * all intervals since the last report sent every report period (2 s). The
 * scheduler folds each interval into an EWMA.
 *
 * A request with no route (its session is not placed anywhere yet) is answered
 * as dropped at once; every request submitted gets exactly one on_done. */
#include "frontend.h"

#include <stdlib.h>
#include <string.h>

void nx_frontend_init(nx_frontend *fe, nx_env *env, const nx_frontend_cfg *cfg)
{
    memset(fe, 0, sizeof *fe);
    fe->env = env;
    fe->cfg = *cfg;
    fe->routes = nx_calloc((size_t)cfg->nsess, sizeof(nx_route));
    fe->outstanding = nx_calloc((size_t)cfg->ngpu, sizeof(int));
    fe->cur = nx_calloc((size_t)cfg->nsess, sizeof(uint32_t));
    fe->rng = cfg->seed ^ 0x6a09e667f3bcc909ULL;
    int tpr = (int)(cfg->report_s / cfg->beacon_s + 0.5);
    fe->ticks_per_report = tpr < 1 ? 1 : tpr;
}

static void route_free(nx_route *r)
{
    free(r->gpu);
    free(r->w);
    free(r->cum);
    free(r->deficit);
    memset(r, 0, sizeof *r);
}

void nx_frontend_free(nx_frontend *fe)
{
    for (int s = 0; s < fe->cfg.nsess; s++)
        route_free(&fe->routes[s]);
    free(fe->routes);
    free(fe->outstanding);
    free(fe->cur);
    free(fe->pending);
    memset(fe, 0, sizeof *fe);
}

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

static void finish(nx_frontend *fe, nx_req *r)
{
    r->finish = nx_now(fe->env);
    if (r->status != NX_REQ_DROPPED)
        r->status = r->finish <= r->deadline ? NX_REQ_OK : NX_REQ_LATE;
    fe->cfg.on_done(fe->cfg.on_done_ctx, r);
}

void nx_frontend_submit(nx_frontend *fe, nx_req *r)
{
    const nx_session *s = &fe->cfg.sessions[r->session];
    nx_time now = nx_now(fe->env);
    r->frontend = fe->cfg.node;
    r->arrival = now;
    r->deadline = now + NX_US(s->slo_us);
    r->status = NX_REQ_PENDING;
    r->gpu = -1;
    r->batch = 0;
    fe->submitted++;
    fe->cur[r->session]++;
    nx_route *rt = &fe->routes[r->session];
    if (rt->n == 0) {
        fe->no_route++;
        r->status = NX_REQ_DROPPED;
        finish(fe, r);
        return;
    }
    int i = rt->n == 1 ? 0 : fe->cfg.lb->pick(rt, fe->outstanding, &fe->rng);
    int gpu = rt->gpu[i];
    fe->outstanding[gpu]++;
    r->gpu = gpu;
    r->msg.type = NX_MSG_QUERY;
    r->msg.src = fe->cfg.node;
    r->msg.dst = nx_node_backend(gpu);
    nx_send(fe->env, r->msg.dst, &r->msg);
}

static void apply_routes(nx_frontend *fe, nx_routes_msg *m)
{
    NX_ASSERT(m->nsess == fe->cfg.nsess);
    fe->epoch = m->epoch;
    for (int s = 0; s < m->nsess; s++) {
        nx_route *r = &fe->routes[s];
        int n = m->off[s + 1] - m->off[s];
        if (n != r->n) {
            route_free(r);
            r->n = n;
            if (n > 0) {
                r->gpu = nx_malloc(sizeof(int) * (size_t)n);
                r->w = nx_malloc(sizeof(double) * (size_t)n);
                r->cum = nx_malloc(sizeof(double) * (size_t)n);
                r->deficit = nx_calloc((size_t)n, sizeof(double));
            }
        } else if (n > 0) {
            memset(r->deficit, 0, sizeof(double) * (size_t)n);
        }
        r->cursor = 0;
        r->wsum = 0;
        r->wmin = n > 0 ? m->w[m->off[s]] : 0;
        for (int k = 0; k < n; k++) {
            r->gpu[k] = m->gpu[m->off[s] + k];
            r->w[k] = m->w[m->off[s] + k];
            r->wsum += r->w[k];
            r->cum[k] = r->wsum;
            if (r->w[k] < r->wmin)
                r->wmin = r->w[k];
        }
    }
    free(m);
}

void nx_frontend_recv(nx_frontend *fe, nx_msg *m)
{
    switch (m->type) {
    case NX_MSG_REPLY: {
        nx_req *r = NX_CONTAINER_OF(m, nx_req, msg);
        int gpu = nx_node_backend(0) <= m->src ? m->src - nx_node_backend(0) : -1;
        NX_ASSERT(gpu >= 0 && gpu < fe->cfg.ngpu);
        fe->outstanding[gpu]--;
        finish(fe, r);
        break;
    }
    case NX_MSG_ROUTES:
        apply_routes(fe, (nx_routes_msg *)m);
        break;
    default:
        NX_ASSERT(!"frontend: unexpected message type");
    }
}
