/* sched_state.c — copying a global scheduler's resumable state out and in
 * (sched_state.h). Import checks every value before it changes anything, so
 * a state that does not fit leaves the scheduler as nx_scheduler_init() made
 * it. */
#include "sched_state.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void nx_sched_state_init(nx_sched_state *st, int nsess, int nfrontends, int ngpu)
{
    memset(st, 0, sizeof *st);
    st->nsess = nsess;
    st->nfrontends = nfrontends;
    st->ngpu = ngpu;
    size_t ns = (size_t)nsess, nsf = (size_t)nsess * (size_t)nfrontends;
    st->plan_rate = nx_calloc(ns + 1, sizeof(double));
    st->rate = nx_calloc(ns + 1, sizeof(double));
    st->hist = nx_calloc(ns + 1, sizeof(int));
    st->budget = nx_calloc(ns + 1, sizeof(double));
    st->ewma = nx_calloc(nsf + 1, sizeof(double));
    st->seen = nx_calloc(nsf + 1, 1);
    st->alive = nx_calloc((size_t)ngpu + 1, 1);
    nx_plan_init(&st->plan, ngpu, 2 * nsess);
}

void nx_sched_state_free(nx_sched_state *st)
{
    free(st->plan_rate);
    free(st->rate);
    free(st->hist);
    free(st->budget);
    free(st->ewma);
    free(st->seen);
    free(st->alive);
    nx_plan_free(&st->plan);
    memset(st, 0, sizeof *st);
}

static bool same_dims(const nx_scheduler *sc, const nx_sched_state *st)
{
    return st->nsess == sc->cfg.nsess && st->nfrontends == sc->cfg.nfrontends &&
           st->ngpu == sc->cfg.ngpu && st->plan.ngpu == sc->plan.ngpu &&
           st->plan.nsess == sc->plan.nsess;
}

int nx_scheduler_export(const nx_scheduler *sc, nx_sched_state *st)
{
    if (!same_dims(sc, st))
        return NX_ERR_INVAL;
    size_t ns = (size_t)st->nsess, nsf = ns * (size_t)st->nfrontends;
    st->epoch = sc->epoch;
    memcpy(st->plan_rate, sc->plan_rate, ns * sizeof(double));
    memcpy(st->rate, sc->rate, ns * sizeof(double));
    memcpy(st->hist, sc->hist, ns * sizeof(int));
    memcpy(st->budget, sc->budget, ns * sizeof(double));
    memcpy(st->ewma, sc->ewma, nsf * sizeof(double));
    memcpy(st->seen, sc->seen, nsf);
    memcpy(st->alive, sc->alive, (size_t)st->ngpu);
    nx_plan_copy(&st->plan, &sc->plan);
    return 0;
}

static bool rate_ok(double r) { return isfinite(r) && r >= 0 && r < 1e12; }

int nx_scheduler_import(nx_scheduler *sc, const nx_sched_state *st, char *why, size_t n)
{
    if (!same_dims(sc, st)) {
        snprintf(why, n, "the state is for %d sessions, %d frontends and %d GPUs; this "
                         "scheduler has %d, %d and %d",
                 st->nsess, st->nfrontends, st->ngpu, sc->cfg.nsess, sc->cfg.nfrontends,
                 sc->cfg.ngpu);
        return NX_ERR_INVAL;
    }
    size_t ns = (size_t)st->nsess, nsf = ns * (size_t)st->nfrontends;
    for (size_t s = 0; s < ns; s++)
        if (!rate_ok(st->plan_rate[s]) || !rate_ok(st->rate[s]) || st->hist[s] < 0 ||
            !isfinite(st->budget[s]) || st->budget[s] <= 0) {
            snprintf(why, n, "session %zu: a rate, history or budget out of range", s);
            return NX_ERR_INVAL;
        }
    for (size_t i = 0; i < nsf; i++)
        if (!rate_ok(st->ewma[i]) || st->seen[i] > 1) {
            snprintf(why, n, "rate estimate %zu (session %zu, frontend %zu) out of range", i,
                     i / (size_t)st->nfrontends, i % (size_t)st->nfrontends);
            return NX_ERR_INVAL;
        }
    for (int g = 0; g < st->ngpu; g++)
        if (st->alive[g] > 1) {
            snprintf(why, n, "GPU %d: alive is %d, not 0 or 1", g, st->alive[g]);
            return NX_ERR_INVAL;
        }
    for (int g = 0; g < st->plan.ngpu; g++)
        for (int i = 0; i < st->plan.gpu[g].n; i++) {
            const nx_alloc *a = &st->plan.gpu[g].a[i];
            if (a->session < 0 || a->session >= st->plan.nsess || a->batch < 1 ||
                !rate_ok(a->rate) || !rate_ok(a->throughput)) {
                snprintf(why, n, "plan: GPU %d allocation %d out of range", g, i);
                return NX_ERR_INVAL;
            }
        }
    sc->epoch = st->epoch;
    memcpy(sc->plan_rate, st->plan_rate, ns * sizeof(double));
    memcpy(sc->rate, st->rate, ns * sizeof(double));
    memcpy(sc->hist, st->hist, ns * sizeof(int));
    memcpy(sc->budget, st->budget, ns * sizeof(double));
    for (size_t s = 0; s < ns; s++)
        sc->specs[s].slo_us = st->budget[s];
    memcpy(sc->ewma, st->ewma, nsf * sizeof(double));
    memcpy(sc->seen, st->seen, nsf);
    nx_plan_copy(&sc->plan, &st->plan);
    for (int g = 0; g < st->ngpu; g++)
        if (st->alive[g])
            nx_scheduler_set_unconfirmed(sc, g, nx_now(sc->env));
    return 0;
}
