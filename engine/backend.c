/* backend.c — the backend (one GPU) state machine; see backend.h.
 *
 * Execution model, as in Nexus's GpuExecutorMultiBatching: the GPU thread walks
 * the sessions of its model table round-robin; each turn asks the batching
 * policy for a batch of the session's planned size from what is queued and
 * runs it; a session with nothing to run is skipped. There is no timer that
 * enforces the duty cycle: it emerges from batch sizes and arrival rates.
 *
 * CPU pre- and post-processing run on worker threads that overlap the GPU
 * (Nexus keeps 4-5 cores per GPU). With cpu_cores = 0 the cores are not
 * modelled: a request enters its queue pre_us after it arrives, and its reply
 * leaves post_us after its batch finishes. With cpu_cores = C every pre and
 * post job waits in one FIFO for one of C cores, so a node whose requests need
 * more than C cores' worth of processing falls behind. Without overlap (the
 * fork branch `nooverlap` behind the paper's -OL bar) requests queue as they
 * arrive and the GPU thread waits while its batch is pre-processed on the
 * cores, runs it, and waits again while it is post-processed; the batching
 * policies' latency estimate (nx_bsess_lat) then includes both CPU phases.
 *
 * GPU sharing: exclusive (Nexus) runs one batch at a time, round-robin over
 * the sessions; concurrent gives each session its own server that launches a
 * batch whenever it has none in progress, so batches of several sessions run
 * on the GPU at once and the env slows them down (sim: the interference table).
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

enum { JOB_PRE, JOB_POST, JOB_BATCH_PRE, JOB_BATCH_POST };

static void kick(nx_backend *be);
static void core_done(nx_event *ev);

void nx_backend_init(nx_backend *be, nx_env *env, const nx_backend_cfg *cfg)
{
    NX_ASSERT(cfg->cpu_cores >= 0 && (!cfg->no_overlap || cfg->cpu_cores > 0));
    memset(be, 0, sizeof *be);
    be->env = env;
    be->cfg = *cfg;
    be->node = nx_node_backend(cfg->gpu);
    be->running = nx_calloc((size_t)(cfg->nsess > 0 ? cfg->nsess : 1), 1);
    if (cfg->cpu_cores > 0) {
        be->cores = nx_calloc((size_t)cfg->cpu_cores, sizeof *be->cores);
        for (int i = 0; i < cfg->cpu_cores; i++) {
            be->cores[i].ev.fn = core_done;
            be->cores[i].be = be;
        }
        be->cores_idle = cfg->cpu_cores;
    }
}

/* A slot leaves: its queue and its policy state. */
static void slot_release(nx_backend *be, nx_bsess *bs)
{
    nx_rq_free(&bs->q);
    if (be->cfg.batching->fini)
        be->cfg.batching->fini(bs);
    bs->state = NULL;
}

void nx_backend_free(nx_backend *be)
{
    if (be->env) { /* its timers (a batch on the GPU is the executor's to finish) */
        nx_cancel(be->env, &be->wake);
        nx_cancel(be->env, &be->keepalive);
        for (int i = 0; i < be->cfg.cpu_cores && be->cores; i++)
            if (be->cores[i].busy)
                nx_cancel(be->env, &be->cores[i].ev);
    }
    for (int i = 0; i < be->nslots; i++)
        slot_release(be, &be->slots[i]);
    free(be->slots);
    for (int i = 0; i < be->nruns; i++) {
        free(be->runs[i]->buf);
        free(be->runs[i]);
    }
    free(be->runs);
    free(be->running);
    free(be->cores);
    free(be->cq);
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
    bs->serial_cores = be->cfg.no_overlap ? be->cfg.cpu_cores : 0;
    if (be->cfg.batching->init)
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

/* The part of [a, b) inside the measurement window. */
static nx_time in_window(const nx_backend *be, nx_time a, nx_time b)
{
    if (a < be->cfg.window_start)
        a = be->cfg.window_start;
    if (b > be->cfg.window_end)
        b = be->cfg.window_end;
    return b > a ? b - a : 0;
}

static void add_busy(nx_backend *be, nx_time a, nx_time b)
{
    be->busy_in_window += in_window(be, a, b);
}

/* ---- CPU cores: one FIFO of pre/post jobs ---------------------------------------- */

static void core_start(nx_backend *be, nx_core *c, const nx_cpujob *job)
{
    c->busy = true;
    c->job = *job;
    c->life = be->life;
    be->cores_idle--;
    nx_time now = nx_now(be->env);
    be->cpu_in_window += in_window(be, now, now + job->cost);
    nx_at(be->env, &c->ev, now + job->cost);
}

static void cpu_submit(nx_backend *be, int kind, nx_req *r, nx_brun *run)
{
    bool pre = kind == JOB_PRE || kind == JOB_BATCH_PRE;
    nx_cpujob job = {.r = r, .run = run, .kind = kind,
                     .cost = NX_US(nx_session_cpu_us(&be->cfg.sessions[r->session], pre))};
    if (be->cores_idle > 0) {
        int i = 0;
        while (be->cores[i].busy)
            i++;
        core_start(be, &be->cores[i], &job);
        return;
    }
    if (be->cq_len == be->cq_cap) { /* grow the ring (amortised; never per job) */
        size_t ncap = be->cq_cap ? 2 * be->cq_cap : 64;
        nx_cpujob *nq = nx_malloc(sizeof *nq * ncap);
        for (size_t i = 0; i < be->cq_len; i++)
            nq[i] = be->cq[(be->cq_head + i) % be->cq_cap];
        free(be->cq);
        be->cq = nq;
        be->cq_cap = ncap;
        be->cq_head = 0;
    }
    be->cq[(be->cq_head + be->cq_len) % be->cq_cap] = job;
    be->cq_len++;
}

static void gpu_start(nx_backend *be, nx_brun *run);
static void run_finish(nx_backend *be, nx_brun *run);

/* A core finished its job: it takes the next waiting one, then the job's
 * request moves on. A job of a process that died since is forgotten. */
static void core_done(nx_event *ev)
{
    nx_core *c = NX_CONTAINER_OF(ev, nx_core, ev);
    nx_backend *be = c->be;
    nx_cpujob job = c->job;
    bool stale = be->dead || c->life != be->life;
    c->busy = false;
    be->cores_idle++;
    if (!be->dead && be->cq_len > 0) {
        nx_cpujob next = be->cq[be->cq_head];
        be->cq_head = (be->cq_head + 1) % be->cq_cap;
        be->cq_len--;
        core_start(be, c, &next);
    }
    if (stale)
        return;
    switch (job.kind) {
    case JOB_PRE:
        enqueue(be, job.r);
        break;
    case JOB_POST:
        reply(be, job.r);
        break;
    case JOB_BATCH_PRE:
        if (--job.run->cpu_left == 0)
            gpu_start(be, job.run);
        break;
    case JOB_BATCH_POST:
        reply(be, job.r);
        if (--job.run->cpu_left == 0)
            run_finish(be, job.run);
        break;
    }
}

/* ---- batches ------------------------------------------------------------------------ */

/* A free batch with room for n requests (the pool grows to the most batches
 * ever in progress at once). */
static nx_brun *get_run(nx_backend *be, int n)
{
    nx_brun *run = NULL;
    for (int i = 0; i < be->nruns && !run; i++)
        if (!be->runs[i]->in_use)
            run = be->runs[i];
    if (!run) {
        be->runs = nx_realloc(be->runs, sizeof *be->runs * (size_t)(be->nruns + 1));
        run = nx_calloc(1, sizeof *run);
        run->be = be;
        be->runs[be->nruns++] = run;
    }
    if (n > run->cap) {
        run->cap = n > 16 ? n : 16;
        run->buf = nx_realloc(run->buf, sizeof(nx_req *) * (size_t)run->cap);
    }
    return run;
}

static void batch_done(nx_event *ev);

static void gpu_start(nx_backend *be, nx_brun *run)
{
    nx_batch *b = &run->b;
    nx_time now = nx_now(be->env);
    b->start = now;
    b->latency = 0;
    b->ev.fn = batch_done;
    b->ev.ctx = run;
    run->on_gpu = true;
    if (be->gpu_running++ == 0)
        be->gpu_since = now;
    nx_gpu_run(be->env, b);
}

/* The batch is over (after its post-processing, without overlap): its
 * session, and with an exclusive GPU the backend, may start the next. */
static void run_finish(nx_backend *be, nx_brun *run)
{
    run->in_use = false;
    be->running[run->b.session] = 0;
    if (!be->cfg.concurrent)
        be->busy = false;
    kick(be);
}

static void batch_done(nx_event *ev)
{
    nx_brun *run = ev->ctx;
    nx_backend *be = run->be;
    run->on_gpu = false;
    if (be->dead || run->life != be->life) {
        run->in_use = false;
        return; /* the process that ran it died */
    }
    nx_batch *b = &run->b;
    nx_time now = nx_now(be->env);
    if (--be->gpu_running == 0)
        add_busy(be, be->gpu_since, now);
    nx_bsess *bs = find_slot(be, b->session);
    NX_ASSERT(bs);
    if (be->cfg.batching->done)
        be->cfg.batching->done(bs, b->size, b->latency);
    double post = bs->s->prof->post_us;
    for (int i = 0; i < b->size; i++) {
        nx_req *r = b->reqs[i];
        r->gpu = be->cfg.gpu;
        r->batch = b->size;
        if (be->cfg.no_overlap) {
            cpu_submit(be, JOB_BATCH_POST, r, run);
        } else if (be->cfg.cpu_cores > 0) {
            if (nx_session_cpu_us(&be->cfg.sessions[r->session], false) > 0)
                cpu_submit(be, JOB_POST, r, NULL);
            else
                reply(be, r);
        } else if (post > 0) {
            r->msg.ev.fn = post_done;
            r->msg.ev.ctx = be;
            nx_at(be->env, &r->msg.ev, now + NX_US(post));
        } else {
            reply(be, r);
        }
    }
    be->served += (uint64_t)b->size;
    bs->served += (uint64_t)b->size;
    if (be->cfg.no_overlap) {
        run->cpu_left = b->size; /* the GPU waits for the post-processing */
        return;
    }
    run_finish(be, run);
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
        slot_release(be, &be->slots[i]);
    be->nslots = 0;
    be->busy = false;
    be->cursor = 0;
    be->cq_len = 0;         /* waiting CPU jobs are lost; busy cores finish stale ones */
    be->gpu_running = 0;
    memset(be->running, 0, (size_t)(be->cfg.nsess > 0 ? be->cfg.nsess : 1));
    for (int i = 0; i < be->nruns; i++)
        if (!be->runs[i]->on_gpu) /* a batch on the GPU is freed when its stale end fires */
            be->runs[i]->in_use = false;
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
    slot_release(be, &be->slots[i]);
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
static void split_parts(nx_backend *be, nx_batch *b, nx_req **buf, int n)
{
    for (int i = 0; i < n; i++) {
        int sid = buf[i]->session, k = 0;
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

/* Start a formed batch of n requests (in run->buf) from slot bs. */
static void launch(nx_backend *be, nx_brun *run, nx_bsess *bs, int n)
{
    nx_batch *b = &run->b;
    b->gpu = be->cfg.gpu;
    b->session = bs->s->id;
    b->prof = bs->prof;
    b->nparts = 0;
    if (bs->group >= 0)
        split_parts(be, b, run->buf, n);
    b->size = n;
    b->reqs = run->buf;
    run->in_use = true;
    run->life = be->life;
    be->running[b->session] = 1;
    be->busy = true;
    be->batches++;
    if (be->cfg.no_overlap) { /* the GPU waits for the batch's pre-processing */
        run->cpu_left = n;
        for (int i = 0; i < n; i++)
            cpu_submit(be, JOB_BATCH_PRE, run->buf[i], run);
        return;
    }
    gpu_start(be, run);
}

/* Exclusive: if the GPU is idle, give every session one turn, starting at the
 * cursor, until one produces a batch. Concurrent: every session without a
 * batch in progress gets a turn, and each that produces one starts it. */
static void kick(nx_backend *be)
{
    if ((be->busy && !be->cfg.concurrent) || be->nslots == 0)
        return;
    nx_time now = nx_now(be->env);
    nx_time wake = NX_TIME_NEVER;
    for (int k = 0; k < be->nslots; k++) {
        int i = (be->cursor + k) % be->nslots;
        nx_bsess *bs = &be->slots[i];
        if (be->running[bs->s->id])
            continue; /* concurrent: its server is busy */
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
        nx_brun *run = get_run(be, maxb);
        nx_time w = NX_TIME_NEVER;
        int n = be->cfg.batching->form(bs, now, run->buf, maxb, drop_req, be, &w);
        NX_ASSERT(n >= 0 && n <= maxb);
        if (n > 0) {
            if (!be->cfg.concurrent) {
                be->cursor = (i + 1) % be->nslots;
                launch(be, run, bs, n);
                return;
            }
            launch(be, run, bs, n);
            continue;
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
        double pre = nx_session_cpu_us(&be->cfg.sessions[r->session], true);
        if (be->cfg.no_overlap || pre <= 0) {
            enqueue(be, r); /* no overlap: pre-processed with its batch */
        } else if (be->cfg.cpu_cores > 0) {
            cpu_submit(be, JOB_PRE, r, NULL);
        } else {
            r->msg.ev.fn = pre_done;
            r->msg.ev.ctx = be;
            nx_at(be->env, &r->msg.ev, nx_now(be->env) + NX_US(pre));
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
