/* plan.c — the plan container (per-GPU allocation lists, per-session
 * unassigned load) and the latency helpers every placement policy shares:
 * ℓ(b), the latency budget, the saturated batch (2·ℓ(b) <= budget) and the
 * single-GPU peak throughput. Policies themselves live in policies/place_*.c. */
#include "plan.h"
#include "latency.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Slack (µs) for "<=" on latencies: profile tables are interpolated in double
 * precision, and a batch that exactly meets its budget (the paper's toy
 * example is full of them) must not fail on the last ulp. */
#define LAT_EPS_US 1e-6

void nx_plan_init(nx_plan *p, int ngpu, int nsess)
{
    NX_ASSERT(ngpu >= 0 && nsess >= 0);
    memset(p, 0, sizeof *p);
    p->ngpu = ngpu;
    p->nsess = nsess;
    p->gpu = nx_calloc((size_t)ngpu, sizeof *p->gpu);
    p->unassigned = nx_calloc((size_t)nsess, sizeof *p->unassigned);
}

void nx_plan_free(nx_plan *p)
{
    if (p->gpu)
        for (int g = 0; g < p->ngpu; g++)
            free(p->gpu[g].a);
    free(p->gpu);
    free(p->unassigned);
    memset(p, 0, sizeof *p);
}

void nx_plan_clear(nx_plan *p)
{
    for (int g = 0; g < p->ngpu; g++) {
        nx_gpu_plan *gp = &p->gpu[g];
        gp->n = 0;              /* keep the array: the next epoch reuses it */
        gp->duty_us = gp->exec_us = gp->mem_mb = 0;
        gp->overcommitted = false;
    }
    for (int s = 0; s < p->nsess; s++)
        p->unassigned[s] = 0;
    p->used = 0;
}

/* Resize an init'ed plan to (ngpu, nsess), keeping allocation arrays of GPUs
 * that survive. Contents are unspecified afterwards; callers clear or copy. */
static void plan_resize(nx_plan *p, int ngpu, int nsess)
{
    if (ngpu != p->ngpu) {
        for (int g = ngpu; g < p->ngpu; g++)
            free(p->gpu[g].a);
        p->gpu = nx_realloc(p->gpu, sizeof *p->gpu * (size_t)ngpu);
        if (ngpu > p->ngpu)
            memset(p->gpu + p->ngpu, 0, sizeof *p->gpu * (size_t)(ngpu - p->ngpu));
        p->ngpu = ngpu;
    }
    if (nsess != p->nsess) {
        p->unassigned = nx_realloc(p->unassigned, sizeof(double) * (size_t)nsess);
        p->nsess = nsess;
    }
}

void nx_plan_copy(nx_plan *dst, const nx_plan *src)
{
    if (dst == src)
        return;
    plan_resize(dst, src->ngpu, src->nsess);
    for (int g = 0; g < src->ngpu; g++) {
        const nx_gpu_plan *s = &src->gpu[g];
        nx_gpu_plan *d = &dst->gpu[g];
        if (d->cap < s->n) {
            d->cap = s->n;
            d->a = nx_realloc(d->a, sizeof *d->a * (size_t)d->cap);
        }
        if (s->n > 0)
            memcpy(d->a, s->a, sizeof *d->a * (size_t)s->n);
        d->n = s->n;
        d->duty_us = s->duty_us;
        d->overcommitted = s->overcommitted;
        d->exec_us = s->exec_us;
        d->mem_mb = s->mem_mb;
    }
    if (src->nsess > 0)
        memcpy(dst->unassigned, src->unassigned, sizeof(double) * (size_t)src->nsess);
    dst->used = src->used;
}

nx_alloc *nx_plan_add(nx_plan *p, int gpu, int session, int batch, double rate,
                      double throughput)
{
    NX_ASSERT(gpu >= 0 && gpu < p->ngpu);
    NX_ASSERT(session >= 0 && session < p->nsess);
    nx_gpu_plan *gp = &p->gpu[gpu];
    if (gp->n == gp->cap) {
        gp->cap = gp->cap ? gp->cap * 2 : 4;
        gp->a = nx_realloc(gp->a, sizeof *gp->a * (size_t)gp->cap);
    }
    nx_alloc *a = &gp->a[gp->n++];
    a->session = session;
    a->batch = batch;
    a->rate = rate;
    a->throughput = throughput;
    return a;
}

void nx_plan_count_used(nx_plan *p)
{
    int used = 0;
    for (int g = 0; g < p->ngpu; g++)
        used += p->gpu[g].n > 0;
    p->used = used;
}

double nx_plan_session_throughput(const nx_plan *p, int session)
{
    double sum = 0;
    for (int g = 0; g < p->ngpu; g++) {
        const nx_gpu_plan *gp = &p->gpu[g];
        for (int i = 0; i < gp->n; i++)
            if (gp->a[i].session == session)
                sum += gp->a[i].throughput;
    }
    return sum;
}

double nx_plan_lat(const nx_place_ctx *c, const nx_profile *prof, int b)
{
    NX_ASSERT(b >= 1 && b <= prof->max_batch);
    double l = nx_latency_est_us(prof, b, c->multiplier);
    if (c->no_overlap && c->cpu_cores > 0)
        l += ((b + c->cpu_cores - 1) / c->cpu_cores) * (prof->pre_us + prof->post_us);
    return l;
}

double nx_plan_budget(const nx_place_ctx *c, const nx_sess_spec *s)
{
    if (c->no_overlap && c->cpu_cores > 0) /* the CPU rounds are in l(b) */
        return s->slo_us - c->net_allowance_us;
    return s->slo_us - s->prof->pre_us - s->prof->post_us - c->net_allowance_us;
}

double nx_plan_cpu_rate(const nx_place_ctx *c, const nx_sess_spec *s, double fill)
{
    if (c->cpu_cores <= 0 || s->cpu_us <= 0)
        return INFINITY;
    return fill * c->cpu_cores * 1e6 / s->cpu_us;
}

int nx_plan_sat_batch(const nx_place_ctx *c, const nx_sess_spec *s)
{
    double budget = nx_plan_budget(c, s);
    /* Scan from the top: profiles need not be monotone, and we want the
     * largest batch that satisfies the rule, not the first run of them. */
    for (int b = s->prof->max_batch; b >= 1; b--)
        if (2.0 * nx_plan_lat(c, s->prof, b) <= budget + LAT_EPS_US)
            return b;
    return 0;
}

double nx_plan_max_throughput(const nx_place_ctx *c, const nx_sess_spec *s)
{
    int b = nx_plan_sat_batch(c, s);
    if (b == 0)
        return 0;
    return b * 1e6 / nx_plan_lat(c, s->prof, b);
}

int nx_plan_sat_batch_mem(const nx_place_ctx *c, const nx_sess_spec *sp)
{
    double budget = nx_plan_budget(c, sp);
    for (int b = nx_plan_sat_batch(c, sp); b >= 1; b--)
        if (2.0 * nx_plan_lat(c, sp->prof, b) <= budget + LAT_EPS_US &&
            nx_profile_mem(sp->prof, b) <= c->gpu_mem_mb)
            return b;
    return 0;
}

int nx_plan_check_ctx(const nx_place_ctx *ctx, const nx_plan *out)
{
    if (ctx->ngpus < 0 || ctx->ngpus > out->ngpu || ctx->nsess > out->nsess ||
        ctx->cpu_cores < 0 || (ctx->no_overlap && ctx->cpu_cores == 0))
        return NX_ERR_INVAL;
    for (int i = 0; i < ctx->nsess; i++) {
        const nx_sess_spec *sp = &ctx->sess[i];
        if (!sp->prof || sp->prof->max_batch < 1 || !sp->prof->mean_us || sp->id < 0 ||
            sp->id >= out->nsess || !(sp->rate >= 0) || isinf(sp->rate) ||
            !(sp->cpu_us >= 0) || isinf(sp->cpu_us))
            return NX_ERR_INVAL;
    }
    return 0;
}
