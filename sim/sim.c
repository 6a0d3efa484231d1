/* sim.c — the simulator's event queue and env implementation; see sim.h. */
#include "sim.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "latency.h"

static void fifo_push(nx_sim *s, nx_event *ev)
{
    if (s->flen == s->fcap) {
        size_t ncap = s->fcap ? s->fcap * 2 : 1024;
        nx_event **nb = nx_malloc(sizeof(nx_event *) * ncap);
        for (size_t i = 0; i < s->flen; i++)
            nb[i] = s->fifo[(s->fhead + i) % s->fcap];
        free(s->fifo);
        s->fifo = nb;
        s->fcap = ncap;
        s->fhead = 0;
    }
    s->fifo[(s->fhead + s->flen) % s->fcap] = ev;
    s->flen++;
}

static nx_time env_now(nx_env *e)
{
    return ((nx_sim *)e)->now;
}

static void env_at(nx_env *e, nx_event *ev)
{
    nx_sim *s = (nx_sim *)e;
    NX_ASSERT(ev->time >= s->now);
    ev->seq = s->seq++;
    nx_heap_push(&s->heap, ev);
}

static void deliver(nx_event *ev)
{
    nx_sim *s = ev->ctx;
    nx_msg *m = NX_CONTAINER_OF(ev, nx_msg, ev);
    s->deliver(s->deliver_ctx, m->dst, m);
}

static void env_send(nx_env *e, int dst, nx_msg *m)
{
    nx_sim *s = (nx_sim *)e;
    m->dst = dst;
    m->ev.fn = deliver;
    m->ev.ctx = s;
    m->ev.seq = s->seq++;
    if (s->net_jitter > 0) {
        m->ev.time = s->now + s->net_delay +
                     (nx_time)(gsl_rng_uniform(s->rng) * (double)s->net_jitter);
        nx_heap_push(&s->heap, &m->ev);
    } else {
        m->ev.time = s->now + s->net_delay;
        fifo_push(s, &m->ev);
    }
}

nx_time nx_sim_batch_latency(nx_sim *s, const nx_profile *p, int b)
{
    return nx_latency_draw(p, b, s->rng);
}

/* ---- processor-sharing GPUs (nx_sim_share) ------------------------------------------ */

typedef struct ps_job {
    nx_batch *b;
    double rem;        /* work left: ns of running alone */
    double sd;         /* its slowdown at the GPU's current k */
} ps_job;

typedef struct ps_tick {
    nx_event ev;
    nx_ps_gpu *g;
    bool armed;
} ps_tick;

/* One GPU: the batches on it, when their work was last brought up to date, and
 * the wake-ups armed for it. A wake-up cannot be moved once armed, so one that
 * became early fires, finds nothing done and arms the next. */
struct nx_ps_gpu {
    nx_sim *s;
    ps_job *jobs;
    int n, cap;
    nx_time last;
    ps_tick **ticks;   /* allocated one by one: armed ones are in the heap */
    int nticks;
};

static void ps_advance(nx_ps_gpu *g, nx_time now)
{
    double dt = (double)(now - g->last);
    if (dt > 0)
        for (int i = 0; i < g->n; i++)
            g->jobs[i].rem -= dt / g->jobs[i].sd;
    g->last = now;
}

static void ps_rates(nx_ps_gpu *g)
{
    for (int i = 0; i < g->n; i++)
        g->jobs[i].sd = g->s->slowdown(g->s->slowdown_ctx, g->jobs[i].b, g->n);
}

static void ps_tick_fire(nx_event *ev);

/* Make sure a wake-up is armed at or before the earliest completion. */
static void ps_arm(nx_ps_gpu *g)
{
    nx_sim *s = g->s;
    if (g->n == 0)
        return;
    double m = HUGE_VAL;
    for (int i = 0; i < g->n; i++) {
        double t = g->jobs[i].rem * g->jobs[i].sd;
        if (t < m)
            m = t;
    }
    /* round up to whole ns, forgiving float error below 1e-3 ns (a batch is done
     * when less than 1 ns of its time is left) */
    nx_time due = s->now + (m > 1e-3 ? (nx_time)ceil(m - 1e-3) : 0);
    ps_tick *free_tick = NULL;
    for (int i = 0; i < g->nticks; i++) {
        if (g->ticks[i]->armed && g->ticks[i]->ev.time <= due)
            return;
        if (!g->ticks[i]->armed && !free_tick)
            free_tick = g->ticks[i];
    }
    if (!free_tick) {
        g->ticks = nx_realloc(g->ticks, sizeof *g->ticks * (size_t)(g->nticks + 1));
        free_tick = nx_calloc(1, sizeof *free_tick);
        free_tick->g = g;
        free_tick->ev.fn = ps_tick_fire;
        g->ticks[g->nticks++] = free_tick;
    }
    free_tick->armed = true;
    free_tick->ev.time = due;
    free_tick->ev.seq = s->seq++;
    nx_heap_push(&s->heap, &free_tick->ev);
}

/* Batches whose work is done (less than 1 ns left) leave, in the order they
 * came; their done events fire next, at this time; the others are re-timed. */
static void ps_tick_fire(nx_event *ev)
{
    ps_tick *t = NX_CONTAINER_OF(ev, ps_tick, ev);
    nx_ps_gpu *g = t->g;
    nx_sim *s = g->s;
    t->armed = false;
    ps_advance(g, s->now);
    int kept = 0;
    for (int i = 0; i < g->n; i++) {
        ps_job *j = &g->jobs[i];
        if (j->rem * j->sd < 1.0) {
            j->b->latency = s->now - j->b->start;
            j->b->ev.time = s->now;
            j->b->ev.seq = s->seq++;
            nx_heap_push(&s->heap, &j->b->ev);
        } else {
            g->jobs[kept++] = *j;
        }
    }
    if (kept != g->n) {
        g->n = kept;
        ps_rates(g);
    }
    ps_arm(g);
}

static void ps_add(nx_ps_gpu *g, nx_batch *b, nx_time work)
{
    ps_advance(g, g->s->now);
    if (g->n == g->cap) {
        g->cap = g->cap ? 2 * g->cap : 8;
        g->jobs = nx_realloc(g->jobs, sizeof *g->jobs * (size_t)g->cap);
    }
    g->jobs[g->n++] = (ps_job){.b = b, .rem = (double)work, .sd = 1};
    ps_rates(g);
    ps_arm(g);
}

void nx_sim_share(nx_sim *s, int ngpu, nx_slowdown_fn fn, void *ctx)
{
    NX_ASSERT(!s->ps && ngpu > 0 && fn);
    s->ps = nx_calloc((size_t)ngpu, sizeof *s->ps);
    s->nps = ngpu;
    for (int i = 0; i < ngpu; i++)
        s->ps[i].s = s;
    s->slowdown = fn;
    s->slowdown_ctx = ctx;
}

void nx_sim_switch_cost(nx_sim *s, int ngpu, double frac)
{
    NX_ASSERT(!s->last_prof && ngpu > 0 && frac >= 0);
    if (frac == 0)
        return;
    s->last_prof = nx_calloc((size_t)ngpu, sizeof *s->last_prof);
    s->nlast = ngpu;
    s->switch_overhead = frac;
}

static void env_gpu_run(nx_env *e, nx_batch *b)
{
    nx_sim *s = (nx_sim *)e;
    b->latency = nx_sim_batch_latency(s, b->prof, b->size);
    for (int i = 0; i < b->nparts; i++) /* suffixes after the shared prefix */
        b->latency += nx_sim_batch_latency(s, b->part_prof[i], b->part_n[i]);
    if (s->last_prof) {
        NX_ASSERT(b->gpu >= 0 && b->gpu < s->nlast);
        if (s->last_prof[b->gpu] != b->prof)
            b->latency = (nx_time)llround((double)b->latency * (1 + s->switch_overhead));
        s->last_prof[b->gpu] = b->prof;
    }
    b->latency += s->batch_overhead;
    if (s->ps) {
        NX_ASSERT(b->gpu >= 0 && b->gpu < s->nps);
        ps_add(&s->ps[b->gpu], b, b->latency);
        return;
    }
    b->ev.time = s->now + b->latency;
    b->ev.seq = s->seq++;
    nx_heap_push(&s->heap, &b->ev);
}

/* Timers are in the heap (the FIFO holds messages only). */
static bool env_cancel(nx_env *e, nx_event *ev)
{
    return nx_heap_remove(&((nx_sim *)e)->heap, ev);
}

static const nx_env_ops sim_ops = {
    .now = env_now,
    .at = env_at,
    .send = env_send,
    .gpu_run = env_gpu_run,
    .cancel = env_cancel,
};

void nx_sim_init(nx_sim *s, uint64_t seed, double net_delay_us, double net_jitter_us,
                 nx_deliver_fn deliver_fn, void *ctx)
{
    memset(s, 0, sizeof *s);
    s->env.ops = &sim_ops;
    s->net_delay = NX_US(net_delay_us);
    s->net_jitter = NX_US(net_jitter_us);
    s->rng = gsl_rng_alloc(gsl_rng_mt19937);
    NX_ASSERT(s->rng);
    gsl_rng_set(s->rng, (unsigned long)(seed ^ 0x5bd1e995u));
    s->deliver = deliver_fn;
    s->deliver_ctx = ctx;
}

void nx_sim_free(nx_sim *s)
{
    for (int i = 0; i < s->nps; i++) {
        for (int k = 0; k < s->ps[i].nticks; k++)
            free(s->ps[i].ticks[k]);
        free(s->ps[i].ticks);
        free(s->ps[i].jobs);
    }
    free(s->ps);
    free(s->last_prof);
    nx_heap_free(&s->heap);
    free(s->fifo);
    gsl_rng_free(s->rng);
    memset(s, 0, sizeof *s);
}

bool nx_sim_step(nx_sim *s, nx_time until)
{
    nx_event *h = nx_heap_top(&s->heap);
    nx_event *f = s->flen ? s->fifo[s->fhead] : NULL;
    nx_event *ev;
    if (h && (!f || nx_event_before(h, f))) {
        if (h->time > until)
            return false;
        ev = nx_heap_pop(&s->heap);
    } else if (f) {
        if (f->time > until)
            return false;
        ev = f;
        s->fhead = (s->fhead + 1) % s->fcap;
        s->flen--;
    } else {
        return false;
    }
    s->now = ev->time;
    s->events++;
    ev->fn(ev);
    return true;
}

void nx_sim_discard(nx_sim *s, void (*fn)(void *ctx, nx_msg *m), void *ctx)
{
    for (size_t i = 0; i < s->heap.n; i++)
        if (s->heap.a[i]->fn == deliver)
            fn(ctx, NX_CONTAINER_OF(s->heap.a[i], nx_msg, ev));
    for (size_t i = 0; i < s->flen; i++) {
        nx_event *ev = s->fifo[(s->fhead + i) % s->fcap];
        if (ev->fn == deliver)
            fn(ctx, NX_CONTAINER_OF(ev, nx_msg, ev));
    }
    s->heap.n = 0;
    s->flen = 0;
}
