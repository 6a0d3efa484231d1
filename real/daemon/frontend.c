/* frontend.c — nexus-frontend: hosts the apps of an experiment and answers
 * clients over the KServe v2 / Open Inference Protocol (inference.
 * GRPCInferenceService: ServerLive, ServerReady, ServerMetadata, ModelReady,
 * ModelMetadata, ModelInfer; a "model" is an app). Each ModelInfer is one
 * query of the engine's frontend state machine (engine/frontend.c): it runs
 * the app's DAG, routes every model call with the load-balancing policy, and
 * classifies the query when its last call answers.
 *
 * Calls travel to backends on one Serve stream per backend; the calls ready
 * in one loop iteration leave in one QueryBatch. Every call in flight is in a
 * table keyed by its id, with the backend it is at.
 *
 * Failures. When a backend's stream ends, or the scheduler says the backend
 * is gone, it leaves the routes given to the engine (until the scheduler's
 * next routes, which no longer name it, arrive) and the engine hears "GPU
 * down": it resends every call in flight there to another backend of the
 * call's session if the deadline still allows, else answers it as dropped
 * (engine/frontend.c, as in the simulator). A call a backend rejects (its
 * bounded queue is full) is dropped, and calls that heard nothing for
 * --call-timeout past their deadline are dropped, so a hung backend cannot
 * hold a query forever. Every query is answered exactly once: OK (good or
 * late, with parameters saying which), or an error status: UNAVAILABLE
 * (dropped), RESOURCE_EXHAUSTED (over --max-inflight queries, or rejected
 * by full backends), INVALID_ARGUMENT, NOT_FOUND.
 *
 * The KServe service itself (request checks, metadata, the response and its
 * parameters) is frontend_kserve.c; this file owns the queries.
 *
 * Threads: the loop thread owns the engine, the streams and the tables; the
 * rpc poller only hands completions over. SIGTERM/SIGINT: answer every
 * pending query UNAVAILABLE, close the streams, shut gRPC down, exit 0. */
#include <getopt.h>
#include <sys/resource.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "setup.h"
#include "daemon.h"
#include "frontend.h"
#include "frontend_kserve.h"
#include "link.h"
#include "renv.h"
#include "rpc.h"
#include "serve.h"
#include "util.h"
#include "wire.h"

#define FE_NODE0 1000000
#define CONN_MAX_QUEUED 256      /* query messages unwritten to one backend: it is stuck */

typedef struct fe fe;

typedef struct fquery {           /* one ModelInfer */
    nx_query q;
    nx_rpc_call *call;            /* NULL once answered (or at shutdown) */
    uint8_t *in;
    size_t nin;
    uint8_t *out;                 /* the output of the last call answered */
    size_t nout;
    char id[72];
    int64_t exec_ns, queue_ns;
    int app;
    bool bad_input, rejected, active;
    struct fquery *next_free;
} fquery;

typedef struct ent {              /* a call in flight */
    uint64_t key;
    nx_req *r;                    /* NULL: empty slot */
    int slot;                     /* the backend it is at */
    int attempts;
} ent;

typedef struct fconn {            /* a backend as this frontend sees it */
    fe *f;
    int slot;
    bool listed;                  /* alive according to the scheduler */
    bool up;                      /* a stream is open (calls may go on it) */
    bool accepted;                /* ... and the backend has taken it (health) */
    uint64_t incarnation;
    char addr[160];
    nx_rpc_channel *ch;
    char ch_addr[160];
    nx_rpc_call *st;
    uint64_t *pend;               /* keys of the calls for the next write */
    int npend, cappend;
    bool flush_armed;
    nx_post flush;
    nx_event retry;
    bool retry_armed;
} fconn;

struct fe {
    char who[48];
    nx_loop *loop;
    nx_rpc *rpc;
    nx_renv env;
    nx_setup setup;
    nx_frontend engine;
    nx_fe_kserve api;             /* the client API (frontend_kserve.c) */
    bool engine_on, serving, stopping;
    bool ready;                   /* health "" has been SERVING once: ModelInfer accepted */
    bool healthy;                 /* health "" is SERVING now (update_health) */
    int slot, maxb;
    /* queries */
    fquery *pool, *free_list;
    int max_inflight, active;
    uint64_t next_qid;
    /* calls in flight: open addressing, linear probing */
    ent *map;
    size_t mapcap, mapn;
    uint64_t *later;              /* keys of calls to retry or drop after the current event */
    int nlater, caplater;
    nx_post later_post;
    bool later_armed;
    /* backends */
    fconn *conns;
    nx_routes_msg *routes;        /* the scheduler's latest, unfiltered */
    bool *keep;
    /* the scheduler */
    nx_link link;
    double keepalive_s;
    nx_event ka, sweep;
    nx_time call_timeout;
    char kserve_addr[160];
    int ready_fd, exit_code;
    /* counters */
    uint64_t queries, ok, late, dropped, stale_replies, timeouts, overload;
    uint64_t drop_deadline, drop_full, drop_bad;
    /* per app (metrics(): Triton's names) */
    uint64_t *m_ok, *m_fail;
    double *m_request_us, *m_queue_us, *m_compute_us;
    nx_serving sv;                /* health: "" and the KServe service once ready */
};

/* ---- the call table ---------------------------------------------------------------------- */

static size_t hash_key(uint64_t k, size_t cap)
{
    k ^= k >> 33;
    k *= 0xff51afd7ed558ccdULL;
    k ^= k >> 33;
    return (size_t)k & (cap - 1);
}

static ent *map_find(fe *f, uint64_t key)
{
    for (size_t i = hash_key(key, f->mapcap);; i = (i + 1) & (f->mapcap - 1)) {
        if (!f->map[i].r)
            return NULL;
        if (f->map[i].key == key)
            return &f->map[i];
    }
}

static ent *map_put(fe *f, uint64_t key, nx_req *r);

static void map_grow(fe *f)
{
    ent *old = f->map;
    size_t oc = f->mapcap;
    f->mapcap = oc ? 2 * oc : 1024;
    f->map = nx_calloc(f->mapcap, sizeof(ent));
    f->mapn = 0;
    for (size_t i = 0; i < oc; i++)
        if (old[i].r) {
            ent *e = map_put(f, old[i].key, old[i].r);
            e->slot = old[i].slot;
            e->attempts = old[i].attempts;
        }
    free(old);
}

static ent *map_put(fe *f, uint64_t key, nx_req *r)
{
    if (2 * (f->mapn + 1) > f->mapcap)
        map_grow(f);
    size_t i = hash_key(key, f->mapcap);
    while (f->map[i].r)
        i = (i + 1) & (f->mapcap - 1);
    f->map[i] = (ent){.key = key, .r = r, .slot = -1};
    f->mapn++;
    return &f->map[i];
}

/* Remove e (backward-shift deletion: no tombstones). */
static void map_del(fe *f, ent *e)
{
    size_t i = (size_t)(e - f->map), mask = f->mapcap - 1;
    f->map[i].r = NULL;
    f->mapn--;
    for (size_t j = (i + 1) & mask; f->map[j].r; j = (j + 1) & mask) {
        size_t h = hash_key(f->map[j].key, f->mapcap);
        /* move j back to i if its home h is not in (i, j] (cyclically) */
        bool in_between = i <= j ? (h > i && h <= j) : (h > i || h <= j);
        if (!in_between) {
            f->map[i] = f->map[j];
            f->map[j].r = NULL;
            i = j;
        }
    }
}

static void update_health(fe *f);

/* ---- routes -------------------------------------------------------------------------------- */

/* Give the engine the scheduler's routes minus the backends without a stream. */
static void apply_routes(fe *f)
{
    if (!f->routes || !f->engine_on)
        return;
    for (int b = 0; b < f->maxb; b++)
        f->keep[b] = f->conns[b].up;
    nx_routes_msg *m = nx_wire_routes_filter(f->routes, f->keep);
    m->m.src = NX_NODE_SCHEDULER;
    m->m.dst = f->engine.cfg.node;
    nx_frontend_recv(&f->engine, &m->m);
}

/* ---- calls: sending, retrying, dropping ---------------------------------------------------- */

static void conn_flush(nx_post *p);

static void conn_enqueue(fe *f, fconn *cn, uint64_t key)
{
    if (cn->npend == cn->cappend) {
        cn->cappend = cn->cappend ? 2 * cn->cappend : 64;
        cn->pend = nx_realloc(cn->pend, sizeof *cn->pend * (size_t)cn->cappend);
    }
    cn->pend[cn->npend++] = key;
    if (!cn->flush_armed) {
        cn->flush_armed = true;
        nx_loop_defer(f->loop, &cn->flush);
    }
}

/* Answer call e's query as dropped by its backend (the engine releases the call). */
static void call_drop(fe *f, ent *e)
{
    nx_req *r = e->r;
    int from = e->slot;
    map_del(f, e);
    r->status = NX_REQ_DROPPED;
    r->msg.type = NX_MSG_REPLY;
    r->msg.src = nx_node_backend(from);
    nx_frontend_recv(&f->engine, &r->msg);
}

static void run_later(nx_post *p)
{
    fe *f = p->ctx;
    f->later_armed = false;
    for (int i = 0; i < f->nlater; i++) {
        ent *e = map_find(f, f->later[i]);
        if (e) {
            f->overload++;
            call_drop(f, e);
        }
    }
    f->nlater = 0;
}

/* Backend slot is gone (its stream ended, or the scheduler says so): the
 * engine resends every call in flight there to another backend of its
 * session if its deadline allows, else answers it as dropped. */
static void gpu_down(fe *f, int slot)
{
    for (size_t i = 0; i < f->mapcap;) { /* forget them here: resends come back through send */
        if (f->map[i].r && f->map[i].slot == slot)
            map_del(f, &f->map[i]); /* shifts a later entry into i: look at i again */
        else
            i++;
    }
    nx_gpu_msg *m = nx_gpu_msg_new(NX_MSG_GPU_DOWN, slot);
    m->m.src = NX_NODE_SCHEDULER;
    m->m.dst = f->engine.cfg.node;
    nx_frontend_recv(&f->engine, &m->m);
}

/* Drop call `key` after the current event: not inside the engine's issue(). */
static void drop_later(fe *f, uint64_t key)
{
    if (f->nlater == f->caplater) {
        f->caplater = f->caplater ? 2 * f->caplater : 64;
        f->later = nx_realloc(f->later, sizeof *f->later * (size_t)f->caplater);
    }
    f->later[f->nlater++] = key;
    if (!f->later_armed) {
        f->later_armed = true;
        nx_loop_defer(f->loop, &f->later_post);
    }
}

static void fill_query(fe *f, Nexus__Query *q, const nx_req *r, nx_time now)
{
    fquery *fq = NX_CONTAINER_OF(r->query, fquery, q);
    (void)f;
    nexus__query__init(q);
    q->id = r->id;
    q->session = r->session;
    q->slack_ns = r->deadline - now;
    q->input.data = fq->in;
    q->input.len = fq->nin;
}

/* A batch formed here (central dispatch) goes out at once, as one message. */
static void send_whole(fe *f, fconn *cn, const nx_batch_msg *bm)
{
    nx_time now = nx_loop_now(f->loop);
    Nexus__Query *qs = nx_malloc(sizeof *qs * (size_t)(bm->n + 1));
    Nexus__Query **qp = nx_malloc(sizeof *qp * (size_t)(bm->n + 1));
    for (int i = 0; i < bm->n; i++) {
        fill_query(f, &qs[i], bm->reqs[i], now);
        qp[i] = &qs[i];
    }
    Nexus__QueryBatch qb = NEXUS__QUERY_BATCH__INIT;
    qb.n_queries = (size_t)bm->n;
    qb.queries = qp;
    qb.whole = 1;
    nx_rpc_send(cn->st, &qb.base); /* if the stream just ended, its close fails these over */
    free(qs);
    free(qp);
}

/* The engine's send: calls (or whole batches) to backends, rate reports to the scheduler. */
static void engine_send(void *ctx, int dst, nx_msg *m)
{
    fe *f = ctx;
    if (m->type == NX_MSG_RATES) {
        nx_rates_msg *rm = (nx_rates_msg *)m;
        Nexus__Rates pr;
        nx_wire_rates_to(rm, &pr);
        Nexus__NodeMsg nm = NEXUS__NODE_MSG__INIT;
        nm.msg_case = NEXUS__NODE_MSG__MSG_RATES;
        nm.rates = &pr;
        nx_link_send(&f->link, &nm);
        free(m);
        return;
    }
    int g = dst - nx_node_backend(0);
    fconn *cn = &f->conns[g];
    bool can = cn->up && nx_rpc_queued(cn->st) < CONN_MAX_QUEUED;
    if (m->type == NX_MSG_BATCH) { /* central dispatch: a whole batch, one message */
        nx_batch_msg *bm = (nx_batch_msg *)m;
        for (int i = 0; i < bm->n; i++)
            map_put(f, bm->reqs[i]->id, bm->reqs[i])->slot = g;
        if (can)
            send_whole(f, cn, bm);
        else
            for (int i = 0; i < bm->n; i++)
                drop_later(f, bm->reqs[i]->id);
        free(bm);
        return;
    }
    NX_ASSERT(m->type == NX_MSG_QUERY);
    nx_req *r = NX_CONTAINER_OF(m, nx_req, msg);
    map_put(f, r->id, r)->slot = g;
    if (can)
        conn_enqueue(f, cn, r->id);
    else
        drop_later(f, r->id);
}

static void conn_flush(nx_post *p)
{
    fconn *cn = p->ctx;
    fe *f = cn->f;
    cn->flush_armed = false;
    if (cn->npend == 0)
        return;
    if (!cn->up) { /* conn_down() failed these over already */
        cn->npend = 0;
        return;
    }
    nx_time now = nx_loop_now(f->loop);
    Nexus__Query *qs = nx_malloc(sizeof *qs * (size_t)cn->npend);
    Nexus__Query **qp = nx_malloc(sizeof *qp * (size_t)cn->npend);
    size_t n = 0;
    for (int i = 0; i < cn->npend; i++) {
        ent *e = map_find(f, cn->pend[i]);
        if (!e || e->slot != cn->slot) /* answered or moved since */
            continue;
        fill_query(f, &qs[n], e->r, now);
        qp[n] = &qs[n];
        n++;
    }
    Nexus__QueryBatch qb = NEXUS__QUERY_BATCH__INIT;
    qb.n_queries = n;
    qb.queries = qp;
    int rc = nx_rpc_send(cn->st, &qb.base);
    free(qs);
    free(qp);
    if (rc < 0) { /* ended under us: the close callback fails them over */
        nx_log(f->who, "backend %d: cannot send %d call(s): %s", cn->slot, cn->npend,
               nx_strerror(rc));
    }
    cn->npend = 0;
}

/* ---- backend streams ---------------------------------------------------------------------- */

static void conn_open(fe *f, fconn *cn);

static void conn_retry(nx_event *ev)
{
    fconn *cn = ev->ctx;
    cn->retry_armed = false;
    if (cn->listed && !cn->up && !cn->f->stopping) {
        conn_open(cn->f, cn);
        if (cn->up) /* back in the engine's routes (conn_down took it out) */
            apply_routes(cn->f);
    }
}

static void conn_down(fe *f, fconn *cn, const char *why, bool close)
{
    if (!cn->up)
        return;
    cn->up = false;
    cn->accepted = false;
    cn->npend = 0; /* failover_all() below handles them through the call table */
    nx_rpc_call *st = cn->st;
    cn->st = NULL;
    if (close && st)
        nx_rpc_close(st, NX_RPC_CANCELLED, why);
    nx_log(f->who, "backend %d (%s): stream down (%s)", cn->slot, cn->addr, why);
    if (f->stopping)
        return;
    apply_routes(f); /* first, so that resends go elsewhere */
    gpu_down(f, cn->slot);
    update_health(f);
    if (cn->listed && !cn->retry_armed) { /* still alive for the scheduler: reconnect */
        cn->retry_armed = true;
        nx_at(&f->env.env, &cn->retry, nx_loop_now(f->loop) + NX_MS(200));
    }
}

static void data_msg(nx_rpc_call *c, ProtobufCMessage *pm)
{
    fconn *cn = nx_rpc_user(c);
    fe *f = cn->f;
    Nexus__ReplyBatch *rb = (Nexus__ReplyBatch *)pm;
    for (size_t i = 0; i < rb->n_replies; i++) {
        const Nexus__Reply *rp = rb->replies[i];
        ent *e = map_find(f, rp->id);
        if (!e || e->slot != cn->slot) { /* answered already (retried or timed out) */
            f->stale_replies++;
            continue;
        }
        if (rp->status == NEXUS__REPLY_STATUS__REPLY_REJECTED) { /* its queue is full */
            NX_CONTAINER_OF(e->r->query, fquery, q)->rejected = true;
            call_drop(f, e);
            continue;
        }
        nx_req *r = e->r;
        fquery *fq = NX_CONTAINER_OF(r->query, fquery, q);
        map_del(f, e);
        r->gpu = cn->slot;
        r->batch = rp->batch;
        if (rp->status == NEXUS__REPLY_STATUS__REPLY_OK) {
            r->status = NX_REQ_OK;
            if (rp->output.len > 0) {
                free(fq->out);
                fq->out = nx_malloc(rp->output.len);
                memcpy(fq->out, rp->output.data, rp->output.len);
                fq->nout = rp->output.len;
            }
            fq->exec_ns += rp->exec_ns;
            fq->queue_ns += rp->queue_ns;
        } else {
            r->status = NX_REQ_DROPPED;
            fq->bad_input |= rp->status == NEXUS__REPLY_STATUS__REPLY_BAD_REQUEST;
        }
        r->msg.type = NX_MSG_REPLY;
        r->msg.src = nx_node_backend(cn->slot);
        nx_frontend_recv(&f->engine, &r->msg);
    }
}

static void data_close(nx_rpc_call *c, int code, const char *why)
{
    fconn *cn = nx_rpc_user(c);
    char reason[200];
    snprintf(reason, sizeof reason, "%s%s%.150s", nx_rpc_code_name(code), why[0] ? ": " : "",
             why);
    if (cn->st == c)
        conn_down(cn->f, cn, reason, false);
}

/* The backend took the stream: connected (TLS, token and all) and served. */
static void data_accepted(nx_rpc_call *c)
{
    fconn *cn = nx_rpc_user(c);
    if (cn->st != c)
        return;
    cn->accepted = true;
    nx_log(cn->f->who, "backend %d (%s): stream open", cn->slot, cn->addr);
    update_health(cn->f);
}

static const nx_rpc_stream_ops data_ops = {
    .in = &nexus__reply_batch__descriptor,
    .on_msg = data_msg,
    .on_close = data_close,
    .on_accepted = data_accepted,
};

static void conn_open(fe *f, fconn *cn)
{
    if (cn->up || f->stopping)
        return;
    if (cn->ch && strcmp(cn->ch_addr, cn->addr) != 0) {
        nx_rpc_channel_free(cn->ch);
        cn->ch = NULL;
    }
    if (!cn->ch) {
        cn->ch = nx_rpc_connect(f->rpc, cn->addr);
        snprintf(cn->ch_addr, sizeof cn->ch_addr, "%s", cn->addr);
    }
    if (nx_rpc_open(cn->ch, "/nexus.Backend/Serve", &data_ops, cn, false, &cn->st) < 0)
        return;
    cn->up = true;
    cn->accepted = false;
}

static void on_backends(fe *f, const Nexus__Backends *bk)
{
    bool *now = nx_calloc((size_t)f->maxb, sizeof(bool));
    for (size_t i = 0; i < bk->n_alive; i++) {
        const Nexus__BackendInfo *bi = bk->alive[i];
        if (bi->slot < 0 || bi->slot >= f->maxb || strlen(bi->addr) >= sizeof f->conns[0].addr)
            continue;
        now[bi->slot] = true;
        fconn *cn = &f->conns[bi->slot];
        if (cn->listed && cn->incarnation == bi->incarnation && strcmp(cn->addr, bi->addr) == 0)
            continue;
        if (cn->up)
            conn_down(f, cn, "a new incarnation registered", true);
        cn->listed = true;
        cn->incarnation = bi->incarnation;
        snprintf(cn->addr, sizeof cn->addr, "%s", bi->addr);
        conn_open(f, cn);
    }
    for (int b = 0; b < f->maxb; b++) {
        fconn *cn = &f->conns[b];
        if (cn->listed && !now[b]) {
            cn->listed = false;
            conn_down(f, cn, "the scheduler says it is gone", true);
        }
    }
    free(now);
    apply_routes(f);
    update_health(f);
}

/* ---- queries ---------------------------------------------------------------------------------- */

static void fquery_release(fe *f, fquery *fq)
{
    free(fq->in);
    free(fq->out);
    fq->in = fq->out = NULL;
    fq->active = false;
    fq->call = NULL;
    fq->next_free = f->free_list;
    f->free_list = fq;
    f->active--;
}

static void answer(fe *f, fquery *fq)
{
    nx_query *q = &fq->q;
    nx_rpc_call *c = fq->call;
    fq->call = NULL;
    if (!c)
        return;
    if (q->status == NX_REQ_DROPPED) {
        f->dropped++;
        f->m_fail[fq->app]++;
        if (fq->bad_input) {
            f->drop_bad++;
            nx_rpc_fail(c, NX_RPC_INVALID_ARGUMENT, "the model cannot take this input");
        } else if (fq->rejected) {
            f->drop_full++;
            nx_rpc_fail(c, NX_RPC_RESOURCE_EXHAUSTED, "dropped: the backends' queues are full");
        } else {
            f->drop_deadline++;
            nx_rpc_fail(c, NX_RPC_UNAVAILABLE, "dropped: the query cannot meet its SLO");
        }
        return;
    }
    bool good = q->status == NX_REQ_OK;
    good ? f->ok++ : f->late++;
    f->m_ok[fq->app]++;
    f->m_request_us[fq->app] += (double)(q->finish - q->arrival) / 1e3;
    f->m_queue_us[fq->app] += (double)fq->queue_ns / 1e3;
    f->m_compute_us[fq->app] += (double)fq->exec_ns / 1e3;
    nx_fe_answer an = {
        .app = fq->app, .id = fq->id, .good = good, .gpu = q->gpu, .batch = q->batch,
        .exec_us = fq->exec_ns / 1000, .queue_us = fq->queue_ns / 1000,
        .server_us = (q->finish - q->arrival) / 1000, .calls = q->calls,
        .out = fq->out, .nout = fq->nout,
    };
    nx_fe_kserve_reply(&f->api, c, &an);
}

/* The engine's on_done: once per query. */
static void query_done(void *ctx, nx_query *q)
{
    fe *f = ctx;
    fquery *fq = NX_CONTAINER_OF(q, fquery, q);
    answer(f, fq);
    fquery_release(f, fq);
}

/* The KServe service's hooks (frontend_kserve.c checked the request). */
static bool fe_ready(void *ctx)
{
    fe *f = ctx;
    return nx_health_get(f->sv.health, "") == NX_HEALTH_SERVING;
}

static bool fe_accepting(void *ctx)
{
    fe *f = ctx;
    return f->ready && !f->stopping;
}

static bool fe_app_routed(void *ctx, int a)
{
    fe *f = ctx;
    for (int v = 0; v < f->setup.x.apps[a].nstages; v++)
        if (f->engine.routes[f->setup.cat.app_sess[a] + v].n == 0)
            return false;
    return true;
}

static void fe_refused(void *ctx, int a, int code)
{
    fe *f = ctx;
    f->m_fail[a]++;
    if (code == NX_RPC_INVALID_ARGUMENT)
        f->drop_bad++;
}

static void fe_infer(void *ctx, nx_rpc_call *c, int a, const char *id, const uint8_t *data,
                     size_t len)
{
    fe *f = ctx;
    char why[200];
    if (!f->free_list) { /* bounded: reject, never queue without limit */
        f->m_fail[a]++;
        f->overload++;
        snprintf(why, sizeof why, "overloaded: %d queries in flight (--max-inflight)",
                 f->max_inflight);
        nx_rpc_fail(c, NX_RPC_RESOURCE_EXHAUSTED, why);
        return;
    }
    fquery *fq = f->free_list;
    f->free_list = fq->next_free;
    memset(fq, 0, sizeof *fq);
    fq->active = true;
    f->active++;
    f->queries++;
    fq->call = c;
    fq->app = a;
    snprintf(fq->id, sizeof fq->id, "%.64s", id);
    if (len > 0) {
        fq->in = nx_malloc(len);
        memcpy(fq->in, data, len);
        fq->nin = len;
    }
    fq->q.app = a;
    fq->q.id = f->next_qid++;
    nx_frontend_submit(&f->engine, &fq->q);
}

/* ---- the scheduler link ---------------------------------------------------------------------- */

/* Why this frontend cannot serve now (NULL: it can). It can once it listens,
 * the scheduler's routes arrived and route at least one session, and every
 * session they route has a backend whose data stream that backend accepted:
 * every call it takes then has a connected backend to go to. Sessions the
 * plan leaves without routes do not count (ModelReady tells of them). */
static const char *unready(fe *f, char *buf, size_t n)
{
    if (!f->serving || !f->routes)
        return "no routes from the scheduler yet";
    const nx_routes_msg *r = f->routes;
    int routed = 0;
    for (int s = 0; s < r->nsess; s++) {
        if (r->off[s] == r->off[s + 1])
            continue;
        routed++;
        bool ok = false;
        for (int k = r->off[s]; k < r->off[s + 1] && !ok; k++)
            ok = f->conns[r->gpu[k]].accepted;
        if (!ok) {
            snprintf(buf, n, "no data stream open to a backend of session %s",
                     f->setup.cat.sess[s].name);
            return buf;
        }
    }
    return routed ? NULL : "the plan routes no session";
}

/* Health "" and the KServe service follow unready(), in both directions; the
 * first SERVING is the frontend's readiness (--ready-fd, ModelInfer taken). */
static void update_health(fe *f)
{
    char buf[200];
    const char *why = f->stopping ? "shutting down" : unready(f, buf, sizeof buf);
    if (f->healthy == !why)
        return;
    f->healthy = !why;
    nx_health_set(f->sv.health, "", f->healthy);
    nx_health_set(f->sv.health, "inference.GRPCInferenceService", f->healthy);
    if (f->stopping)
        return;
    if (!f->healthy) {
        nx_log(f->who, "NOT_SERVING: %s", why);
    } else if (!f->ready) {
        f->ready = true;
        nx_log(f->who, "ready: serving %d app(s) on %s", f->setup.x.napps, f->kserve_addr);
        nx_ready(&f->ready_fd, f->kserve_addr);
    } else {
        nx_log(f->who, "SERVING again");
    }
}

static void keepalive(nx_event *ev)
{
    fe *f = ev->ctx;
    if (f->stopping)
        return;
    {
        Nexus__KeepAlive ka = NEXUS__KEEP_ALIVE__INIT;
        ka.served = f->ok + f->late;
        ka.dropped = f->dropped;
        ka.rejected = f->overload;
        ka.queued = (uint32_t)f->active;
        Nexus__NodeMsg m = NEXUS__NODE_MSG__INIT;
        m.msg_case = NEXUS__NODE_MSG__MSG_KEEP_ALIVE;
        m.keep_alive = &ka;
        nx_link_send(&f->link, &m);
    }
    nx_at(&f->env.env, &f->ka, nx_loop_now(f->loop) + NX_SEC(f->keepalive_s));
}

static void start_engine(fe *f, int maxb)
{
    f->maxb = maxb;
    f->conns = nx_calloc((size_t)maxb, sizeof(fconn));
    f->keep = nx_calloc((size_t)maxb, sizeof(bool));
    for (int b = 0; b < maxb; b++) {
        fconn *cn = &f->conns[b];
        cn->f = f;
        cn->slot = b;
        cn->flush.fn = conn_flush;
        cn->flush.ctx = cn;
        cn->retry.fn = conn_retry;
        cn->retry.ctx = cn;
    }
    nx_frontend_cfg fc;
    nx_frontend_cfg_fill(&fc, &f->setup.cat, f->slot, FE_NODE0 + f->slot, maxb);
    fc.on_done = query_done;
    fc.on_done_ctx = f;
    nx_frontend_init(&f->engine, &f->env.env, &fc);
    nx_frontend_start(&f->engine);
    f->engine_on = true;
}

static void on_registered(void *ctx, const Nexus__Registered *rg)
{
    fe *f = ctx;
    if (rg->max_backends < 1 || rg->max_backends > 4096 ||
        (f->engine_on && (rg->slot != f->slot || rg->max_backends != f->maxb))) {
        nx_log(f->who, "the scheduler gave slot %d of %d backends; this frontend is %d of %d: "
                       "exiting",
               rg->slot, rg->max_backends, f->slot, f->maxb);
        f->exit_code = 1;
        raise(SIGTERM);
        return;
    }
    f->slot = rg->slot;
    if (rg->keepalive_s > 0)
        f->keepalive_s = rg->keepalive_s;
    snprintf(f->who, sizeof f->who, "nexus-frontend[%d]", f->slot);
    if (!f->engine_on)
        start_engine(f, rg->max_backends);
    nx_log(f->who, "registered with the scheduler at %s as frontend %d", f->link.cfg.sched_addr,
           f->slot);
    nx_loop_cancel(f->loop, &f->ka);
    keepalive(&f->ka);
}

static void on_sched_msg(void *ctx, const Nexus__SchedMsg *m)
{
    fe *f = ctx;
    char why[200];
    if (m->msg_case == NEXUS__SCHED_MSG__MSG_BACKENDS) {
        on_backends(f, m->backends);
    } else if (m->msg_case == NEXUS__SCHED_MSG__MSG_ROUTES) {
        nx_routes_msg *r;
        if (nx_wire_routes_from(m->routes, f->setup.cat.nsess, f->maxb, &r, why, sizeof why) < 0) {
            nx_log(f->who, "bad routes ignored: %s", why);
            return;
        }
        free(f->routes);
        f->routes = r;
        nx_log(f->who, "routes (epoch %llu): %d route(s) for %d session(s)",
               (unsigned long long)r->epoch, r->off[r->nsess], r->nsess);
        apply_routes(f);
        update_health(f);
    }
}

static void on_refused(void *ctx, const char *why)
{
    fe *f = ctx;
    (void)why;
    f->exit_code = 1;
    raise(SIGTERM);
}

/* Calls silent for call_timeout past their deadline: their backend is stuck. */
static void sweep(nx_event *ev)
{
    fe *f = ev->ctx;
    if (f->stopping)
        return;
    nx_time now = nx_loop_now(f->loop);
    uint64_t *keys = NULL;
    size_t n = 0, cap = 0;
    for (size_t i = 0; i < f->mapcap; i++)
        if (f->map[i].r && now > f->map[i].r->deadline + f->call_timeout) {
            if (n == cap) {
                cap = cap ? 2 * cap : 64;
                keys = nx_realloc(keys, sizeof *keys * cap);
            }
            keys[n++] = f->map[i].key;
        }
    for (size_t i = 0; i < n; i++) {
        ent *e = map_find(f, keys[i]);
        if (e) {
            f->timeouts++;
            call_drop(f, e);
        }
    }
    if (n)
        nx_log(f->who, "%zu call(s) unanswered %.0f ms past their deadline: dropped", n,
               NX_TO_MS(f->call_timeout));
    free(keys);
    nx_at(&f->env.env, &f->sweep, now + NX_MS(100));
}

/* ---- metrics --------------------------------------------------------------------------------- */

static void metrics(void *ctx, nx_prom *p)
{
    fe *f = ctx;
    static const struct {
        const char *name, *help;
    } fam[] = {
        {"nv_inference_request_success",
         "ModelInfer calls answered with an output (in time or late; see nexus_queries_late_total)."},
        {"nv_inference_request_failure",
         "ModelInfer calls of the model answered with an error (dropped, bad input, overload, "
         "not ready, shutting down)."},
        {"nv_inference_request_duration_us",
         "Cumulative frontend arrival-to-answer time of successful calls, microseconds."},
        {"nv_inference_queue_duration_us",
         "Cumulative backend queueing time of successful calls (their last model call), "
         "microseconds."},
        {"nv_inference_compute_infer_duration_us",
         "Cumulative executor time of successful calls (their last model call's batch), "
         "microseconds."},
    };
    for (int k = 0; k < 5; k++) {
        nx_prom_family(p, fam[k].name, "counter", fam[k].help);
        for (int a = 0; a < f->setup.x.napps; a++) {
            double v = k == 0 ? (double)f->m_ok[a] : k == 1 ? (double)f->m_fail[a]
                     : k == 2 ? f->m_request_us[a] : k == 3 ? f->m_queue_us[a]
                              : f->m_compute_us[a];
            nx_prom_sample(p, fam[k].name, v, "model", f->setup.x.apps[a].name, "version", "1");
        }
    }
    nx_prom_one(p, "nexus_queries_late_total", "counter",
                "Queries answered after their deadline (counted as successes too).",
                (double)f->late);
    nx_prom_one(p, "nexus_queries_inflight", "gauge", "Queries held now (--max-inflight at most).",
                f->active);
    nx_prom_family(p, "nexus_queries_dropped_total", "counter",
                   "Queries answered with an error instead of an output, by reason.");
    const char *why[] = {"deadline", "backend_full", "bad_input", "inflight_limit"};
    uint64_t n[] = {f->drop_deadline, f->drop_full, f->drop_bad, f->overload};
    for (int i = 0; i < 4; i++)
        nx_prom_sample(p, "nexus_queries_dropped_total", (double)n[i], "reason", why[i], NULL,
                       NULL);
    const nx_frontend *en = &f->engine;
    nx_prom_family(p, "nexus_calls_dropped_total", "counter",
                   "Model calls given up, by reason (a query with a dropped call is dropped).");
    const char *cwhy[] = {"backend_failure", "no_route", "central_dispatch", "call_timeout"};
    uint64_t cn[] = {f->engine_on ? en->failed_over : 0, f->engine_on ? en->no_route : 0,
                     f->engine_on ? en->dispatch.drops : 0, f->timeouts};
    for (int i = 0; i < 4; i++)
        nx_prom_sample(p, "nexus_calls_dropped_total", (double)cn[i], "reason", cwhy[i], NULL,
                       NULL);
    nx_prom_one(p, "nexus_calls_resent_total", "counter",
                "Model calls caught on a failed backend and resent to another.",
                (double)(f->engine_on ? en->retried : 0));
    int up = 0;
    for (int b = 0; b < f->maxb; b++)
        up += f->conns[b].accepted;
    nx_prom_one(p, "nexus_backend_streams_up", "gauge",
                "Data streams to backends open now (accepted by the backend).", up);
}

/* ---- shutdown, main ------------------------------------------------------------------------- */

static void rpc_down(void *ctx) { nx_loop_stop(((fe *)ctx)->loop); }

static void on_signal(void *ctx, int signo)
{
    fe *f = ctx;
    if (signo == SIGCHLD || f->stopping)
        return;
    nx_log(f->who, "signal %d: shutting down", signo);
    nx_link_leave(&f->link);
    f->stopping = true;
    f->ready = false;
    f->healthy = false;
    nx_health_set_all(f->sv.health, false);
    if (f->engine_on)
        nx_frontend_stop(&f->engine);
    nx_loop_cancel(f->loop, &f->ka);
    nx_loop_cancel(f->loop, &f->sweep);
    for (int i = 0; i < f->max_inflight; i++) { /* rpc.h: answer every unary call first */
        fquery *fq = &f->pool[i];
        if (fq->active && fq->call) {
            f->m_fail[fq->app]++;
            nx_rpc_fail(fq->call, NX_RPC_UNAVAILABLE, "the frontend is shutting down");
            fq->call = NULL;
        }
    }
    for (int b = 0; b < f->maxb; b++) {
        fconn *cn = &f->conns[b];
        if (cn->retry_armed)
            nx_loop_cancel(f->loop, &cn->retry);
        conn_down(f, cn, "shutting down", true);
    }
    nx_rpc_shutdown(f->rpc, rpc_down, f);
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: nexus-frontend EXPERIMENT.yml --scheduler ADDR [options]\n"
            "\n"
            "A frontend of a real Nexus cluster: hosts the experiment's apps and serves them over\n"
            "the KServe v2 / Open Inference Protocol (inference.GRPCInferenceService; a model is\n"
            "an app), routing every model call to the backends the scheduler names.\n"
            "\n"
            "options:\n"
            "  --scheduler ADDR     the scheduler (host:port; required)\n"
            "  --listen ADDR        KServe address (default 127.0.0.1:8001; port 0: any)\n"
            "  --policy NAME        the experiment's policy combination (default: the first)\n"
            "  --scale S            workload rate scale, as the scheduler's (default 1)\n"
            "  --max-inflight N     queries in flight at most; beyond, RESOURCE_EXHAUSTED\n"
            "                       (default 16384)\n"
            "  --call-timeout MS    drop a call silent this long past its deadline (default 2000)\n"
            "  --slot N             ask for this slot (a restarted frontend: its old one)\n"
            "  --ready-fd FD        write 'ready KSERVE_ADDR' to FD once first SERVING (below),\n"
            "                       then close it\n"
            NX_SERVE_USAGE
            "  --help               this text\n"
            "\n"
            "Health (grpc.health.v1.Health): \"\" and inference.GRPCInferenceService are SERVING\n"
            "while the scheduler's routes route a session and every session they route has a\n"
            "backend whose data stream it accepted (KServe ServerReady and --metrics' /readyz say\n"
            "the same); NOT_SERVING before, whenever that stops holding, and while shutting down.\n"
            "ModelInfer is taken from the first SERVING on.\n");
}

int main(int argc, char **argv)
{
    const char *prog = "nexus-frontend";
    const char *sched = NULL, *listen = "127.0.0.1:8001", *policy = NULL, *path;
    double scale = 1;
    long maxq = 16384, slot = -1, ready_fd = -1, timeout_ms = 2000;
    static const struct option opts[] = {
        {"scheduler", 1, 0, 'S'}, {"listen", 1, 0, 'l'}, {"policy", 1, 0, 'p'},
        {"scale", 1, 0, 's'}, {"max-inflight", 1, 0, 'q'}, {"call-timeout", 1, 0, 't'},
        {"slot", 1, 0, 'n'}, {"ready-fd", 1, 0, 'r'}, {"help", 0, 0, 'h'},
        NX_SERVE_LONGOPTS, {0, 0, 0, 0},
    };
    nx_serve_opts so = {0};
    int o;
    while ((o = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        int bad = 0;
        switch (o) {
        case 'S': sched = optarg; break;
        case 'l': listen = optarg; break;
        case 'p': policy = optarg; break;
        case 's': bad = nx_cli_double(prog, "--scale", optarg, 1e-9, 1e6, &scale); break;
        case 'q': bad = nx_cli_long(prog, "--max-inflight", optarg, 1, 1 << 22, &maxq); break;
        case 't': bad = nx_cli_long(prog, "--call-timeout", optarg, 1, 3600000, &timeout_ms); break;
        case 'n': bad = nx_cli_long(prog, "--slot", optarg, 0, 1023, &slot); break;
        case 'r': bad = nx_cli_long(prog, "--ready-fd", optarg, 0, 65535, &ready_fd); break;
        case 'h': usage(stdout); return 0;
        default:
            if ((bad = nx_serve_opt(&so, prog, o, optarg)) < 0) {
                usage(stderr);
                return 2;
            }
        }
        if (bad)
            return 2;
    }
    if (optind + 1 != argc || !sched) {
        usage(stderr);
        return 2;
    }
    path = argv[optind];
    fe *f = nx_calloc(1, sizeof *f);
    snprintf(f->who, sizeof f->who, "%s", prog);
    f->ready_fd = (int)ready_fd;
    f->slot = -1;
    f->keepalive_s = 0.5;
    f->max_inflight = (int)maxq;
    f->call_timeout = NX_MS(timeout_ms);
    nx_errbuf eb;
    nx_err_clear(&eb);
    nx_rpc_cfg rcfg;
    int rc = nx_serve_load(&so, &rcfg, &eb);
    if (rc == 0)
        rc = nx_daemon_open(&f->loop, &f->setup, &f->rpc, path, policy, scale, &rcfg, &eb);
    if (rc < 0) {
        fprintf(stderr, "%s: %s\n", prog, eb.msg[0] ? eb.msg : nx_strerror(rc));
        nx_serve_free(&so);
        free(f);
        return 1;
    }
    size_t na = (size_t)f->setup.x.napps;
    f->m_ok = nx_calloc(na, sizeof *f->m_ok);
    f->m_fail = nx_calloc(na, sizeof *f->m_fail);
    f->m_request_us = nx_calloc(na, sizeof *f->m_request_us);
    f->m_queue_us = nx_calloc(na, sizeof *f->m_queue_us);
    f->m_compute_us = nx_calloc(na, sizeof *f->m_compute_us);
    f->pool = nx_calloc((size_t)f->max_inflight, sizeof(fquery));
    for (int i = f->max_inflight - 1; i >= 0; i--) {
        f->pool[i].next_free = f->free_list;
        f->free_list = &f->pool[i];
    }
    map_grow(f);
    f->later_post.fn = run_later;
    f->later_post.ctx = f;
    nx_renv_init(&f->env, f->loop, engine_send, NULL, f);
    nx_loop_on_signal(f->loop, on_signal, f);
    f->ka.fn = keepalive;
    f->ka.ctx = f;
    f->sweep.fn = sweep;
    f->sweep.ctx = f;

    f->api = (nx_fe_kserve){.cat = &f->setup.cat, .ctx = f, .ready = fe_ready,
                            .accepting = fe_accepting, .app_routed = fe_app_routed,
                            .refused = fe_refused, .infer = fe_infer};
    nx_rpc_method methods[NX_FE_KSERVE_METHODS + 2]; /* + nx_serving_init's */
    nx_fe_kserve_methods(&f->api, methods);
    int nmethods = NX_FE_KSERVE_METHODS, port = 0;
    nx_serving_init(&f->sv, methods, &nmethods);
    nx_health_set(f->sv.health, "", false);
    nx_health_set(f->sv.health, "inference.GRPCInferenceService", false);
    rc = nx_rpc_serve(f->rpc, listen, methods, nmethods, &port, &eb);
    if (rc == 0)
        rc = nx_serving_metrics(&f->sv, &so, f->loop, f->rpc, metrics, f, f->who, &eb);
    if (rc < 0) {
        fprintf(stderr, "%s: %s\n", prog, eb.msg);
        nx_rpc_shutdown(f->rpc, rpc_down, f);
    } else {
        f->serving = true;
        nx_addr_with_port(f->kserve_addr, sizeof f->kserve_addr, listen, port);
        nx_log(f->who, "KServe v2 on %s (%d app(s)); attaching to the scheduler at %s",
               f->kserve_addr, f->setup.x.napps, sched);
        nx_link_cfg lc = {
            .who = f->who,
            .kind = NEXUS__NODE_KIND__NODE_FRONTEND,
            .cat = &f->setup.cat,
            .sched_addr = sched,
            .incarnation = nx_incarnation(),
            .want_slot = (int)slot,
            .on_registered = on_registered,
            .on_msg = on_sched_msg,
            .on_refused = on_refused,
            .ctx = f,
        };
        nx_link_init(&f->link, f->rpc, &lc);
        nx_at(&f->env.env, &f->sweep, nx_loop_now(f->loop) + NX_MS(100));
    }
    nx_loop_run(f->loop);
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    nx_log(f->who, "stopped (%llu queries: %llu ok, %llu late, %llu dropped; calls caught on "
                   "a dead backend: %llu resent, %llu dropped; %llu overload rejections, %llu "
                   "calls timed out; %llu calls without a route, %llu dropped by central dispatch; "
                   "peak RSS %ld MB)",
           (unsigned long long)f->queries, (unsigned long long)f->ok, (unsigned long long)f->late,
           (unsigned long long)f->dropped,
           (unsigned long long)(f->engine_on ? f->engine.retried : 0),
           (unsigned long long)(f->engine_on ? f->engine.failed_over : 0),
           (unsigned long long)f->overload, (unsigned long long)f->timeouts,
           (unsigned long long)(f->engine_on ? f->engine.no_route : 0),
           (unsigned long long)(f->engine_on ? f->engine.dispatch.drops : 0), ru.ru_maxrss / 1024);
    if (f->engine_on)
        nx_frontend_free(&f->engine);
    for (int i = 0; i < f->max_inflight; i++) {
        free(f->pool[i].in);
        free(f->pool[i].out);
    }
    for (int b = 0; b < f->maxb; b++)
        free(f->conns[b].pend);
    free(f->conns);
    free(f->keep);
    free(f->pool);
    free(f->map);
    free(f->later);
    free(f->routes);
    free(f->m_ok);
    free(f->m_fail);
    free(f->m_request_us);
    free(f->m_queue_us);
    free(f->m_compute_us);
    nx_serving_free(&f->sv);
    nx_daemon_close(f->loop, &f->setup, f->rpc);
    nx_serve_free(&so);
    int code = rc < 0 ? 1 : f->exit_code;
    free(f);
    return code;
}
