/* dispatch.c — central dispatch (Symphony's deferred batching); see dispatch.h.
 *
 * Per session, calls wait in a deadline-ordered queue; the frontend that owns
 * the dispatcher is the one dispatcher of its sessions (the simulator gives a
 * central policy a single frontend, so it sees every session and GPU). A GPU
 * is free when none of our calls is on it. For a free GPU, every session
 * routed to it with calls waiting has a latest start: the last moment a batch
 * of its queue (plus one more call) can start and still answer its earliest
 * call in time; a full batch (2 l(B) within the budget) must start now.
 * Taking the sessions in order of latest start (EDF), the GPU must start the
 * first by T = min over k of (latest_k - the run times of the batches before
 * k); until then it waits and batches grow (deferral). At T, the session with
 * the earliest latest start gets the GPU. A call that could not be served
 * even alone is dropped here, before it costs the GPU anything.
 *
 * Wake-ups: one live timer per GPU at most, identified by a generation; an
 * earlier wake-up supersedes a later one, and a superseded timer that fires
 * does nothing. Timers come from a pool owned by the dispatcher. */
#include "dispatch.h"
#include "latency.h"

#include <stdlib.h>
#include <string.h>

#define TIMER_CHUNK 256

struct nx_dispatch_timer {
    nx_event ev;
    nx_dispatch *d;
    int gpu;
    uint64_t gen;
    bool armed;               /* pending in the env */
    nx_dispatch_timer *next_free;
};

void nx_dispatch_init(nx_dispatch *d, nx_env *env, const nx_dispatch_cfg *cfg)
{
    memset(d, 0, sizeof *d);
    d->env = env;
    d->cfg = *cfg;
    int ns = cfg->nsess, ng = cfg->ngpu;
    d->cq = nx_calloc((size_t)ns, sizeof(nx_rq));
    for (int s = 0; s < ns; s++)
        nx_rq_init(&d->cq[s]);
    d->gen = nx_calloc((size_t)ng, sizeof(uint64_t));
    d->armed = nx_malloc(sizeof(nx_time) * (size_t)ng);
    for (int g = 0; g < ng; g++)
        d->armed[g] = NX_TIME_NEVER;
    d->gsess_off = nx_calloc((size_t)ng + 1, sizeof(int));
    d->busy_until = nx_calloc((size_t)ng, sizeof(nx_time));
    d->batch_run = nx_calloc((size_t)ns, sizeof(nx_time));
    d->piped = nx_calloc((size_t)ng, 1);
}

void nx_dispatch_free(nx_dispatch *d)
{
    for (int i = 0; i < d->ntchunks; i++) {
        for (int k = 0; k < TIMER_CHUNK; k++)
            if (d->tchunks[i][k].armed)
                nx_cancel(d->env, &d->tchunks[i][k].ev);
        free(d->tchunks[i]);
    }
    free(d->tchunks);
    if (d->cq)
        for (int s = 0; s < d->cfg.nsess; s++)
            nx_rq_free(&d->cq[s]);
    free(d->cq);
    free(d->gen);
    free(d->armed);
    free(d->gsess_off);
    free(d->gsess);
    free(d->busy_until);
    free(d->batch_run);
    free(d->piped);
    memset(d, 0, sizeof *d);
}

static nx_time est(const nx_dispatch *d, const nx_profile *p, int b)
{
    return NX_US(nx_latency_est_us(p, b, d->cfg.multiplier));
}

static void dispatch_gpu(nx_dispatch *d, int g);

static void timer_fire(nx_event *ev)
{
    nx_dispatch_timer *t = NX_CONTAINER_OF(ev, nx_dispatch_timer, ev);
    nx_dispatch *d = t->d;
    int g = t->gpu;
    bool live = t->gen == d->gen[g];
    t->armed = false;
    t->next_free = d->free_timers;
    d->free_timers = t;
    if (!live)
        return;
    d->armed[g] = NX_TIME_NEVER;
    dispatch_gpu(d, g);
}

static void arm_timer(nx_dispatch *d, int g, nx_time at)
{
    if (d->armed[g] != NX_TIME_NEVER && d->armed[g] <= at)
        return; /* an earlier wake-up is pending and will re-evaluate */
    if (!d->free_timers) {
        d->tchunks = nx_realloc(d->tchunks,
                                sizeof(nx_dispatch_timer *) * (size_t)(d->ntchunks + 1));
        nx_dispatch_timer *c = nx_calloc(TIMER_CHUNK, sizeof(nx_dispatch_timer));
        d->tchunks[d->ntchunks++] = c;
        for (int i = TIMER_CHUNK - 1; i >= 0; i--) {
            c[i].next_free = d->free_timers;
            d->free_timers = &c[i];
        }
    }
    nx_dispatch_timer *t = d->free_timers;
    d->free_timers = t->next_free;
    t->d = d;
    t->gpu = g;
    t->gen = ++d->gen[g];
    t->ev.fn = timer_fire;
    t->ev.ctx = d;
    d->armed[g] = at;
    t->armed = true;
    nx_time now = nx_now(d->env);
    nx_at(d->env, &t->ev, at > now ? at : now);
}

static void drop(nx_dispatch *d, nx_req *r)
{
    d->drops++;
    r->status = NX_REQ_DROPPED;
    d->cfg.on_drop(d->cfg.ctx, r);
}

/* Session s's batch if it started on a GPU at t0: its size, run time and
 * latest start. As early drop does, calls at the head that a batch of that
 * size would finish too late for are dropped; returns false if none is left. */
static bool session_batch(nx_dispatch *d, int s, nx_time now, nx_time t0, int *size,
                          nx_time *run, nx_time *latest)
{
    nx_rq *cq = &d->cq[s];
    const nx_profile *p = d->cfg.sessions[s].prof;
    nx_time net = d->cfg.net_ns, post = NX_US(p->post_us);
    /* the largest batch: a call may wait one batch and run in the next */
    nx_time budget = NX_US(d->cfg.budget_us[s]) - 2 * net - NX_US(p->pre_us) - post;
    int B = 1;
    while (B < p->max_batch && 2 * est(d, p, B + 1) <= budget)
        B++;
    int n = (int)nx_rq_len(cq);
    while (n > 0 && nx_rq_front(cq)->deadline <
                        t0 + 2 * net + post + est(d, p, n < B ? n : B)) {
        drop(d, nx_rq_pop(cq));
        n--;
    }
    if (n == 0)
        return false;
    *size = n < B ? n : B;
    d->batch_run[s] = est(d, p, B);
    *run = est(d, p, *size);
    *latest = n >= B ? now
                     : nx_rq_front(cq)->deadline - 2 * net - post - est(d, p, n + 1) -
                           d->cfg.slack_ns; /* a late timer must still find it feasible */
    return true;
}

static void send_batch(nx_dispatch *d, int s, int g, int b)
{
    nx_rq *cq = &d->cq[s];
    nx_batch_msg *m = nx_batch_msg_new(b);
    for (int i = 0; i < b; i++) {
        nx_req *r = nx_rq_pop(cq);
        r->gpu = g;
        r->msg.src = d->cfg.node;
        r->msg.dst = nx_node_backend(g);
        r->inflight = 1;
        r->attempts++;
        m->reqs[i] = r;
    }
    nx_time now = nx_now(d->env), start = now + d->cfg.net_ns;
    const nx_profile *p = d->cfg.sessions[s].prof;
    if (d->cfg.outstanding[g] > 0) { /* pipelined behind the batch that runs */
        d->piped[g] = 1;
        if (d->busy_until[g] > start)
            start = d->busy_until[g];
    }
    d->busy_until[g] = start + est(d, p, b);
    d->cfg.outstanding[g] += b;
    d->batches++;
    m->m.src = d->cfg.node;
    m->m.dst = nx_node_backend(g);
    nx_send(d->env, m->m.dst, &m->m);
}

static void dispatch_gpu(nx_dispatch *d, int g)
{
    nx_time now = nx_now(d->env);
    /* free, or about to be: one more batch may be sent so that it arrives
     * as the running one ends (no idle round trip); a reply or the timer
     * brings us back otherwise */
    nx_time t0 = now;
    if (d->cfg.outstanding[g] > 0) {
        if (d->piped[g])
            return;
        nx_time ready = d->busy_until[g] - d->cfg.net_ns;
        if (now < ready) {
            arm_timer(d, g, ready);
            return;
        }
        t0 = d->busy_until[g] - d->cfg.net_ns;
    }
    enum { MAXS = 64 };
    int ss[MAXS], size[MAXS], ns = 0;
    nx_time run[MAXS], latest[MAXS];
    for (int k = d->gsess_off[g]; k < d->gsess_off[g + 1] && ns < MAXS; k++) {
        int s = d->gsess[k];
        if (nx_rq_len(&d->cq[s]) == 0)
            continue;
        if (session_batch(d, s, now, t0, &size[ns], &run[ns], &latest[ns]))
            ss[ns++] = s;
    }
    if (ns == 0)
        return;
    /* EDF order by latest start (insertion sort: few sessions share a GPU) */
    for (int i = 1; i < ns; i++)
        for (int j = i; j > 0 && latest[j] < latest[j - 1]; j--) {
            int ts = ss[j], tz = size[j];
            nx_time tr = run[j], tl = latest[j];
            ss[j] = ss[j - 1], size[j] = size[j - 1], run[j] = run[j - 1], latest[j] = latest[j - 1];
            ss[j - 1] = ts, size[j - 1] = tz, run[j - 1] = tr, latest[j - 1] = tl;
        }
    nx_time T = NX_TIME_NEVER, before = t0 - now;
    for (int k = 0; k < ns; k++) {
        nx_time t = latest[k] - before;
        if (t < T)
            T = t;
        before += run[k];
    }
    /* when other sessions share the GPU, a call of theirs may arrive while
     * this batch runs: keep room for one batch of the slowest of them */
    nx_time reserve = 0;
    for (int k = d->gsess_off[g]; k < d->gsess_off[g + 1]; k++) {
        int s = d->gsess[k];
        if (s == ss[0])
            continue;
        nx_time l = d->batch_run[s];
        if (l > reserve)
            reserve = l;
    }
    if (T != NX_TIME_NEVER)
        T -= reserve;
    if (now < T) {
        arm_timer(d, g, T);
        return;
    }
    send_batch(d, ss[0], g, size[0]);
}

void nx_dispatch_push(nx_dispatch *d, nx_req *r)
{
    r->gpu = -1;
    nx_rq_push(&d->cq[r->session], r);
}

void nx_dispatch_session(nx_dispatch *d, int s)
{
    const nx_route *rt = &d->cfg.routes[s];
    if (rt->n == 0) { /* no route (yet): nothing can serve them */
        while (nx_rq_len(&d->cq[s]) > 0)
            drop(d, nx_rq_pop(&d->cq[s]));
        return;
    }
    for (int k = 0; k < rt->n && nx_rq_len(&d->cq[s]) > 0; k++)
        dispatch_gpu(d, rt->gpu[k]);
}

void nx_dispatch_routes(nx_dispatch *d)
{
    int ng = d->cfg.ngpu, ns = d->cfg.nsess;
    const nx_route *routes = d->cfg.routes;
    memset(d->gsess_off, 0, sizeof(int) * (size_t)(ng + 1));
    for (int s = 0; s < ns; s++)
        for (int k = 0; k < routes[s].n; k++)
            d->gsess_off[routes[s].gpu[k] + 1]++;
    for (int g = 0; g < ng; g++)
        d->gsess_off[g + 1] += d->gsess_off[g];
    d->gsess = nx_realloc(d->gsess, sizeof(int) * (size_t)(d->gsess_off[ng] + 1));
    int *fill = nx_malloc(sizeof(int) * (size_t)(ng + 1));
    memcpy(fill, d->gsess_off, sizeof(int) * (size_t)(ng + 1));
    for (int s = 0; s < ns; s++)
        for (int k = 0; k < routes[s].n; k++)
            d->gsess[fill[routes[s].gpu[k]]++] = s;
    free(fill);
}

void nx_dispatch_replied(nx_dispatch *d, int g)
{
    if (d->cfg.outstanding[g] > 0)
        return;
    d->piped[g] = 0;
    dispatch_gpu(d, g);
}
