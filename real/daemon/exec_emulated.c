/* exec_emulated.c — the emulated executor (see exec.h): a batch takes the
 * latency the simulator would draw for it (engine/latency.h's nx_latency_draw
 * on a private RNG, plus each suffix part's), waited out on a loop timer, so a
 * real cluster on machines without GPUs can be compared with its simulation.
 * Outputs are FP32 [sum of the input floats, their count]. */
#include "exec.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "latency.h"

typedef struct emu {
    nx_bexec_cfg cfg;
    gsl_rng *rng;
    nx_event ev;
    nx_batch *b;
    nx_xreq *const *x;
    nx_time want;           /* the drawn latency of the running batch */
    uint64_t batches;
    double late_sum_us, late_max_us;   /* timer lateness: ran longer than drawn */
} emu;

static void fire(nx_event *ev)
{
    emu *e = ev->ctx;
    nx_batch *b = e->b;
    nx_time exec = nx_loop_now(e->cfg.loop) - b->start;
    double late = NX_TO_US(exec - e->want);
    e->batches++;
    e->late_sum_us += late;
    if (late > e->late_max_us)
        e->late_max_us = late;
    for (int i = 0; i < b->size; i++) {
        nx_xreq *x = e->x[i];
        float v[2] = {0, 0};
        size_t n = x->nin / sizeof(float);
        for (size_t k = 0; k < n; k++) {
            float f;
            memcpy(&f, x->in + k * sizeof f, sizeof f);
            v[0] += f;
        }
        v[1] = (float)n;
        x->out = nx_malloc(sizeof v);
        memcpy(x->out, v, sizeof v);
        x->nout = sizeof v;
    }
    e->b = NULL;
    e->cfg.done(e->cfg.ctx, b, exec);
}

static void emu_run(void *state, nx_batch *b, nx_xreq *const *x)
{
    emu *e = state;
    NX_ASSERT(!e->b);
    nx_time lat = nx_latency_draw(b->prof, b->size, e->rng);
    for (int i = 0; i < b->nparts; i++) /* suffixes after the shared prefix */
        lat += nx_latency_draw(b->part_prof[i], b->part_n[i], e->rng);
    e->b = b;
    e->x = x;
    e->want = lat;
    e->ev.fn = fire;
    e->ev.ctx = e;
    e->ev.time = b->start + lat;
    nx_loop_at(e->cfg.loop, &e->ev);
}

static int emu_init(void **state, const nx_bexec_cfg *cfg, nx_errbuf *eb)
{
    (void)eb;
    emu *e = nx_calloc(1, sizeof *e);
    e->cfg = *cfg;
    /* seeded as the simulator seeds its own (sim/sim.c) */
    e->rng = gsl_rng_alloc(gsl_rng_mt19937);
    NX_ASSERT(e->rng);
    gsl_rng_set(e->rng, (unsigned long)(cfg->seed ^ 0x5bd1e995u));
    *state = e;
    return 0;
}

static void emu_free(void *state)
{
    emu *e = state;
    if (!e)
        return;
    if (e->b)
        nx_loop_cancel(e->cfg.loop, &e->ev);
    gsl_rng_free(e->rng);
    free(e);
}

static void emu_report(void *state, char *buf, size_t n)
{
    emu *e = state;
    snprintf(buf, n, "%llu batches, each %.1f us longer than drawn on average (at most %.0f us)",
             (unsigned long long)e->batches, e->batches ? e->late_sum_us / (double)e->batches : 0,
             e->late_max_us);
}

const nx_bexec_ops nx_bexec_emulated_ops = {
    .name = "emulated",
    .init = emu_init,
    .run = emu_run,
    .free = emu_free,
    .report = emu_report,
};

const nx_bexec_ops *nx_bexec_find(const char *name)
{
    static const nx_bexec_ops *const all[] = {&nx_bexec_emulated_ops, &nx_bexec_cpu_ops,
                                              &nx_bexec_cuda_ops};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        if (name && strcmp(all[i]->name, name) == 0)
            return all[i];
    return NULL;
}
