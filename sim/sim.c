/* sim.c — the simulator's event queue and env implementation; see sim.h. */
#include "sim.h"

#include <stdlib.h>
#include <string.h>
#include <gsl/gsl_randist.h>

static inline bool before(const nx_event *a, const nx_event *b)
{
    return a->time < b->time || (a->time == b->time && a->seq < b->seq);
}

static void heap_push(nx_sim *s, nx_event *ev)
{
    if (s->n == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 1024;
        s->heap = nx_realloc(s->heap, sizeof(nx_event *) * s->cap);
    }
    size_t i = s->n++;
    nx_event **h = s->heap;
    while (i > 0) {
        size_t p = (i - 1) >> 1;
        if (!before(ev, h[p]))
            break;
        h[i] = h[p];
        i = p;
    }
    h[i] = ev;
}

static nx_event *heap_pop(nx_sim *s)
{
    nx_event **h = s->heap;
    nx_event *top = h[0];
    nx_event *last = h[--s->n];
    size_t n = s->n, i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n)
            break;
        if (c + 1 < n && before(h[c + 1], h[c]))
            c++;
        if (!before(h[c], last))
            break;
        h[i] = h[c];
        i = c;
    }
    if (n > 0)
        h[i] = last;
    return top;
}

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
    heap_push(s, ev);
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
        heap_push(s, &m->ev);
    } else {
        m->ev.time = s->now + s->net_delay;
        fifo_push(s, &m->ev);
    }
}

nx_time nx_sim_batch_latency(nx_sim *s, const nx_profile *p, int b)
{
    NX_ASSERT(b >= 1 && b <= p->max_batch);
    double mean = p->mean_us[b], sd = p->std_us[b];
    double us = mean;
    if (sd > 0) {
        double k = (mean / sd) * (mean / sd);
        us = gsl_ran_gamma(s->rng, k, sd * sd / mean);
    }
    nx_time t = NX_US(us);
    return t > 0 ? t : 1;
}

static void env_gpu_run(nx_env *e, nx_batch *b)
{
    nx_sim *s = (nx_sim *)e;
    b->latency = nx_sim_batch_latency(s, b->prof, b->size);
    for (int i = 0; i < b->nparts; i++) /* suffixes after the shared prefix */
        b->latency += nx_sim_batch_latency(s, b->part_prof[i], b->part_n[i]);
    b->ev.time = s->now + b->latency;
    b->ev.seq = s->seq++;
    heap_push(s, &b->ev);
}

static const nx_env_ops sim_ops = {
    .now = env_now,
    .at = env_at,
    .send = env_send,
    .gpu_run = env_gpu_run,
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
    free(s->heap);
    free(s->fifo);
    gsl_rng_free(s->rng);
    memset(s, 0, sizeof *s);
}

bool nx_sim_step(nx_sim *s, nx_time until)
{
    nx_event *h = s->n ? s->heap[0] : NULL;
    nx_event *f = s->flen ? s->fifo[s->fhead] : NULL;
    nx_event *ev;
    if (h && (!f || before(h, f))) {
        if (h->time > until)
            return false;
        ev = heap_pop(s);
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
    for (size_t i = 0; i < s->n; i++)
        if (s->heap[i]->fn == deliver)
            fn(ctx, NX_CONTAINER_OF(s->heap[i], nx_msg, ev));
    for (size_t i = 0; i < s->flen; i++) {
        nx_event *ev = s->fifo[(s->fhead + i) % s->fcap];
        if (ev->fn == deliver)
            fn(ctx, NX_CONTAINER_OF(ev, nx_msg, ev));
    }
    s->n = 0;
    s->flen = 0;
}
