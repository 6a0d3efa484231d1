/* backend.c — the backend (one GPU) state machine; see backend.h.
 *
 * Execution model, as in Nexus's GpuExecutorMultiBatching: the GPU thread walks
 * the sessions of its model table round-robin; each turn asks the batching
 * policy for a batch of the session's planned size from what is queued and
 * runs it; a session with nothing to run is skipped. There is no timer that
 * enforces the duty cycle: it emerges from batch sizes and arrival rates.
 *
 * CPU pre- and post-processing run on worker threads that overlap the GPU
 * (Nexus keeps 4-5 cores per GPU): a request enters its queue pre_us after it
 * arrives, and its reply leaves post_us after its batch finishes.
 *
 * Deadlines are the request's own end-to-end deadline set by the frontend. The
 * original Nexus backend restarted the clock at backend arrival (deadline =
 * receive time + SLO), ignoring the time already spent in the frontend and the
 * network (reference/nexus.md §5); that is fixed here.
 *
 * A session removed from the table keeps its slot until its queue drains, so
 * a re-plan never loses queued requests. A request for a session that is not
 * in the table (a frontend's route is a network delay behind the scheduler's
 * tables) is served from an unplanned slot that drains the same way; Nexus
 * answered it with MODEL_SESSION_NOT_LOADED. */
#include "backend.h"

#include <stdlib.h>
#include <string.h>

static void kick(nx_backend *be);

void nx_backend_init(nx_backend *be, nx_env *env, const nx_backend_cfg *cfg)
{
    memset(be, 0, sizeof *be);
    be->env = env;
    be->cfg = *cfg;
    be->node = nx_node_backend(cfg->gpu);
    be->bufcap = 16;
    be->buf = nx_malloc(sizeof(nx_req *) * (size_t)be->bufcap);
}

void nx_backend_free(nx_backend *be)
{
    for (int i = 0; i < be->nslots; i++)
        nx_rq_free(&be->slots[i].q);
    free(be->slots);
    free(be->buf);
    memset(be, 0, sizeof *be);
}

uint32_t nx_backend_queued(const nx_backend *be)
{
    uint32_t n = 0;
    for (int i = 0; i < be->nslots; i++)
        n += nx_rq_len(&be->slots[i].q);
    return n;
}

/* The slot a session's requests queue in: its own, or its prefix group's. */
static nx_bsess *find_slot(nx_backend *be, int session)
{
    int g = be->cfg.sessions[session].group;
    for (int i = 0; i < be->nslots; i++) {
        nx_bsess *bs = &be->slots[i];
        if (g >= 0 ? bs->group == g : bs->s->id == session)
            return bs;
    }
    return NULL;
}

static void reply(nx_backend *be, nx_req *r)
{
    r->msg.type = NX_MSG_REPLY;
    r->msg.src = be->node;
    r->msg.dst = r->frontend;
    nx_send(be->env, r->frontend, &r->msg);
}

static void drop_req(void *ctx, nx_req *r)
{
    nx_backend *be = ctx;
    r->status = NX_REQ_DROPPED;
    r->gpu = be->cfg.gpu;
    be->dropped++;
    reply(be, r);
}

static nx_bsess *add_slot(nx_backend *be, int sid, int batch)
{
    if (be->nslots == be->capslots) {
        be->capslots = be->capslots ? be->capslots * 2 : 4;
        be->slots = nx_realloc(be->slots, sizeof(nx_bsess) * (size_t)be->capslots);
    }
    nx_bsess *bs = &be->slots[be->nslots++];
    memset(bs, 0, sizeof *bs);
    bs->s = &be->cfg.sessions[sid];
    bs->group = bs->s->group;
    bs->prof = bs->group >= 0 ? bs->s->prefix : bs->s->prof;
    bs->suffix = bs->group >= 0 ? bs->s->suffix : NULL;
    nx_rq_init(&bs->q);
    bs->multiplier = be->cfg.multiplier;
    bs->reply_ns = be->cfg.reply_ns;
    bs->bp = be->cfg.bp;
    bs->target_batch = batch;
    bs->slo_us = bs->s->slo_us;
    be->cfg.batching->init(bs);
    return bs;
}

/* The batch a session not in the table runs at: the saturated rule, the
 * largest b whose worst case 2 x l(b) fits its SLO (at least 1). */
static int default_batch(const nx_bsess *probe)
{
    nx_time slo = NX_US(probe->slo_us);
    int b = 1;
    while (b < probe->prof->max_batch && 2 * nx_bsess_lat(probe, b + 1) <= slo)
        b++;
    return b;
}

/* Queue r in its session's slot. A request for a session not in the table
 * (a stale route: the session left this GPU's table a moment ago, or one
 * that outran its table) is served from an unplanned slot, which drains and
 * disappears, rather than dropped. */
static void queue_req(nx_backend *be, nx_req *r)
{
    nx_bsess *bs = find_slot(be, r->session);
    if (!bs) {
        be->no_session++;
        bs = add_slot(be, r->session, 1);
        bs->planned = false;
        bs->target_batch = default_batch(bs);
    }
    r->ready = nx_now(be->env);
    nx_rq_push(&bs->q, r);
}

static void enqueue(nx_backend *be, nx_req *r)
{
    queue_req(be, r);
    kick(be);
}

static void pre_done(nx_event *ev)
{
    nx_req *r = NX_CONTAINER_OF(ev, nx_req, msg.ev);
    nx_backend *be = ev->ctx;
    if (!be->dead) /* else lost with the process */
        enqueue(be, r);
}

static void post_done(nx_event *ev)
{
    nx_req *r = NX_CONTAINER_OF(ev, nx_req, msg.ev);
    nx_backend *be = ev->ctx;
    if (!be->dead)
        reply(be, r);
}

static void add_busy(nx_backend *be, nx_time a, nx_time b)
{
    if (a < be->cfg.window_start)
        a = be->cfg.window_start;
    if (b > be->cfg.window_end)
        b = be->cfg.window_end;
    if (b > a)
        be->busy_in_window += b - a;
}

static void batch_done(nx_event *ev)
{
    nx_backend *be = ev->ctx;
    if (be->dead || be->batch_life != be->life)
        return; /* the process that ran it died */
    nx_batch *b = &be->batch;
    nx_time now = nx_now(be->env);
    add_busy(be, b->start, now);
    nx_bsess *bs = find_slot(be, b->session);
    NX_ASSERT(bs);
    if (be->cfg.batching->done)
        be->cfg.batching->done(bs, b->size, b->latency);
    double post = bs->s->prof->post_us;
    for (int i = 0; i < b->size; i++) {
        nx_req *r = b->reqs[i];
        r->gpu = be->cfg.gpu;
        r->batch = b->size;
        if (post > 0) {
            r->msg.ev.fn = post_done;
            r->msg.ev.ctx = be;
            nx_at(be->env, &r->msg.ev, now + NX_US(post));
        } else {
            reply(be, r);
        }
    }
    be->served += (uint64_t)b->size;
    bs->served += (uint64_t)b->size;
    be->busy = false;
    kick(be);
}

static void wake_fired(nx_event *ev)
{
    nx_backend *be = ev->ctx;
    be->wake_armed = false;
    if (!be->dead)
        kick(be);
}

static void send_keepalive(nx_backend *be)
{
    nx_gpu_msg *m = nx_gpu_msg_new(NX_MSG_KEEPALIVE, be->cfg.gpu);
    m->m.src = be->node;
    m->m.dst = NX_NODE_SCHEDULER;
    nx_send(be->env, NX_NODE_SCHEDULER, &m->m);
}

static void keepalive_fired(nx_event *ev)
{
    nx_backend *be = ev->ctx;
    be->keepalive_armed = false;
    if (be->dead)
        return; /* revive re-arms it */
    send_keepalive(be);
    be->keepalive_armed = true;
    nx_at(be->env, &be->keepalive, ev->time + NX_SEC(be->cfg.keepalive_s));
}

void nx_backend_start(nx_backend *be)
{
    if (!(be->cfg.keepalive_s > 0))
        return;
    be->keepalive.fn = keepalive_fired;
    be->keepalive.ctx = be;
    be->keepalive_armed = true;
    nx_at(be->env, &be->keepalive, nx_now(be->env) + NX_SEC(be->cfg.keepalive_s));
}

void nx_backend_kill(nx_backend *be)
{
    be->dead = true;
    be->life++;
    for (int i = 0; i < be->nslots; i++)
        nx_rq_free(&be->slots[i].q);
    be->nslots = 0;
    be->busy = false;
    be->cursor = 0;
}

void nx_backend_revive(nx_backend *be)
{
    be->dead = false;
    send_keepalive(be); /* registers again; the scheduler re-plans */
    if (be->cfg.keepalive_s > 0 && !be->keepalive_armed) {
        be->keepalive_armed = true;
        nx_at(be->env, &be->keepalive, nx_now(be->env) + NX_SEC(be->cfg.keepalive_s));
    }
}

static void remove_slot(nx_backend *be, int i)
{
    nx_rq_free(&be->slots[i].q);
    memmove(&be->slots[i], &be->slots[i + 1],
            sizeof(nx_bsess) * (size_t)(be->nslots - i - 1));
    be->nslots--;
    if (be->cursor > i)
        be->cursor--;
    if (be->cursor >= be->nslots)
        be->cursor = 0;
}

/* A prefix group's batch: the prefix runs on all n inputs, then each member
 * session's suffix on its own inputs (Nexus's SharePrefixModel). */
static void split_parts(nx_backend *be, nx_batch *b, int n)
{
    for (int i = 0; i < n; i++) {
        int sid = be->buf[i]->session, k = 0;
        while (k < b->nparts && b->part_session[k] != sid)
            k++;
        if (k == b->nparts) {
            NX_ASSERT(k < NX_BATCH_MAX_PARTS);
            b->nparts++;
            b->part_session[k] = sid;
            b->part_prof[k] = be->cfg.sessions[sid].suffix;
            b->part_n[k] = 0;
        }
        b->part_n[k]++;
    }
    for (int k = 0; k < b->nparts; k++)
        if (b->part_n[k] > b->part_prof[k]->max_batch)
            b->part_n[k] = b->part_prof[k]->max_batch; /* cost capped at the measured range */
}

/* If the GPU is idle, give every session one turn, starting at the cursor,
 * until one produces a batch. */
static void kick(nx_backend *be)
{
    if (be->busy || be->nslots == 0)
        return;
    nx_time now = nx_now(be->env);
    nx_time wake = NX_TIME_NEVER;
    for (int k = 0; k < be->nslots; k++) {
        int i = (be->cursor + k) % be->nslots;
        nx_bsess *bs = &be->slots[i];
        if (nx_rq_len(&bs->q) == 0) {
            if (!bs->planned) { /* drained: forget it */
                remove_slot(be, i);
                k--;
                if (be->nslots == 0)
                    break;
            }
            continue;
        }
        int maxb = bs->prof->max_batch;
        if (maxb > be->bufcap) {
            be->bufcap = maxb;
            be->buf = nx_realloc(be->buf, sizeof(nx_req *) * (size_t)maxb);
        }
        nx_time w = NX_TIME_NEVER;
        int n = be->cfg.batching->form(bs, now, be->buf, maxb, drop_req, be, &w);
        NX_ASSERT(n >= 0 && n <= maxb);
        if (n > 0) {
            be->cursor = (i + 1) % be->nslots;
            nx_batch *b = &be->batch;
            b->ev.fn = batch_done;
            b->ev.ctx = be;
            b->gpu = be->cfg.gpu;
            b->session = bs->s->id;
            b->prof = bs->prof;
            b->nparts = 0;
            if (bs->group >= 0)
                split_parts(be, b, n);
            b->size = n;
            b->reqs = be->buf;
            b->start = now;
            b->latency = 0;
            be->busy = true;
            be->batch_life = be->life;
            be->batches++;
            nx_gpu_run(be->env, b);
            return;
        }
        if (w < wake)
            wake = w;
    }
    /* One wake-up at a time: a later kick recomputes the next one. A new
     * request can only make a session's wake-up later, never earlier. */
    if (wake != NX_TIME_NEVER && !be->wake_armed) {
        be->wake.fn = wake_fired;
        be->wake.ctx = be;
        be->wake_armed = true;
        nx_at(be->env, &be->wake, wake);
    }
}

static void apply_table(nx_backend *be, nx_table_msg *t)
{
    be->duty_us = t->duty_us;
    be->table_epoch = t->epoch;
    for (int i = 0; i < be->nslots; i++)
        be->slots[i].planned = false;
    for (int k = 0; k < t->n; k++) {
        int sid = t->e[k].session;
        NX_ASSERT(sid >= 0 && sid < be->cfg.nsess);
        nx_bsess *bs = find_slot(be, sid);
        if (!bs)
            bs = add_slot(be, sid, t->e[k].batch);
        bs->planned = true;
        bs->target_batch = t->e[k].batch;
        bs->slo_us = t->e[k].slo_us;
    }
    free(t);
    kick(be);
}

void nx_backend_recv(nx_backend *be, nx_msg *m)
{
    if (be->dead) { /* a dead process reads nothing: requests are lost */
        if (m->type != NX_MSG_QUERY)
            free(m);
        return;
    }
    switch (m->type) {
    case NX_MSG_QUERY: {
        nx_req *r = NX_CONTAINER_OF(m, nx_req, msg);
        double pre = be->cfg.sessions[r->session].prof->pre_us;
        if (pre > 0) {
            r->msg.ev.fn = pre_done;
            r->msg.ev.ctx = be;
            nx_at(be->env, &r->msg.ev, nx_now(be->env) + NX_US(pre));
        } else {
            enqueue(be, r);
        }
        break;
    }
    case NX_MSG_TABLE:
        apply_table(be, (nx_table_msg *)m);
        break;
    case NX_MSG_BATCH: { /* a centrally formed batch: queue it whole, then run */
        nx_batch_msg *bm = (nx_batch_msg *)m;
        for (int i = 0; i < bm->n; i++)
            queue_req(be, bm->reqs[i]);
        free(bm);
        kick(be);
        break;
    }
    default:
        NX_ASSERT(!"backend: unexpected message type");
    }
}
