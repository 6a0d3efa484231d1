/* place_squishy.c — Nexus's squishy bin packing (SOSP'19 §6.1, Algorithm 1),
 * the "squishy" placement policy, with a duty cycle that is searched rather
 * than fixed, so that the load it can place is monotone in the rates, and
 * proportional shedding past capacity.
 *
 * Every epoch the whole plan is re-packed from scratch, deterministically.
 * ℓ(b) below is the planner's latency, multiplier·(mean + std), made monotone
 * (the largest ℓ of any batch up to b: the backend may run any smaller batch
 * than the planned one, so this is also what it may cost); memory likewise.
 *
 *  1. Saturated phase. Each session gets its saturated batch B (the largest
 *     with 2·ℓ(B) <= budget whose memory fits a GPU), whose throughput is
 *     T = min(B/ℓ(B), u·C/c) (C the node's cores, c the session's CPU time
 *     per request: a GPU is worth no more requests than its node's cores can
 *     pre- and post-process), and ⌊rate/T⌋ dedicated GPUs that run batch B
 *     back to back, or as fast as the CPU lets them.
 *     What is left over, ρ = rate − n·T < T, is the session's residual.
 *  2. Residual phase. A set S of residuals fits one GPU iff SOME duty cycle d
 *     has, with b_i = max(1, ⌈d·ρ_i⌉):
 *        Σ ℓ(b_i) <= u·d,  d + ℓ(b_i) <= budget_i (worst case: wait d, run
 *        b_i),  Σ mem(b_i) <= GPU memory,  Σ ρ_i·c_i <= u·C,
 *     where u <= 1 is the share of the cycle the plan may fill (below); the
 *     cores get the same headroom as the GPU (a queue of pre/post jobs at
 *     100 % of its cores has no bound on its waits). The CPU condition does
 *     not depend on d; with C = 0 (cores not modelled) it is absent.
 *     The paper (and the earlier version of this file) tested one d only, the
 *     smallest of the sessions' lone ones; that made the feasible load
 *     non-monotone (experiments/repro/squishy_nonmonotone.yml: five Inception
 *     copies fitted one GPU at 120 req/s each but not at 100).
 *     The test here is exact and cheap. Let E(d) = Σ ℓ(b_i(d)); E is a
 *     non-decreasing step function. The latency condition holds on an
 *     interval (0, U] (U = min over S of each session's own bound: both d and
 *     ℓ(b_i(d)) grow with d), memory on an interval too. Let d* be the least
 *     d with E(d) <= u·d; iterating d ← E(d)/u from any lower bound reaches
 *     it. Then S fits iff d* <= U and mem(d*) fits: every feasible d is
 *     >= d*, and memory only grows with d.
 *     Residuals are taken biggest first (by d* / U alone) and merged best-fit
 *     (the GPU whose merged d* / U is largest, i.e. the tightest fit); if none
 *     fits, a GPU is opened.
 *  3. Each residual GPU then gets the d in its feasible set that leaves the
 *     most slack on both sides: max over d of min(d − E(d), U' − d) where
 *     U' − d is the smallest latency slack budget_i − d − ℓ(b_i) — the GPU
 *     time left in a cycle for arrivals beyond the batch, against the time a
 *     request could still wait. (Spending the whole SLO, d + ℓ(b) = budget,
 *     as Nexus's code does, collapsed the demo under Poisson load; spending
 *     the whole cycle, E(d) = d, leaves no room for bursts either.)
 *  The fill u is 0.8 while the cluster has GPUs to spare, and is raised (by
 *  bisection, to the smallest u that fits) up to 1 only when it does not.
 *  Planned at u = 1, the demo packed its 44 Poisson sessions onto one GPU at
 *  98 % of a 45 ms cycle, where small sessions' batches (3-4 for 2.7 expected
 *  arrivals) overflowed: 1 % bad at 5,400 queries/s, with 7 GPUs idle;
 *  at 0.8 it spreads over 2 GPUs (0.005 % bad) and reaches the cluster's
 *  capacity. The price is GPUs while they are free: the paper's toy takes 6
 *  GPUs on a 16-GPU cluster and its 5 on a 5-GPU one.
 *
 * Why the feasible load is monotone (tests/test_place.c checks each claim):
 *  - One GPU (at any fixed u): if d witnesses that S fits at rates ρ, the
 *    same d witnesses it at any ρ' <= ρ: every b_i = ⌈d·ρ_i⌉ can only
 *    shrink, and every condition above only gets easier when a batch shrinks
 *    (ℓ and memory are monotone by construction); Σ ρ_i·c_i is linear in the
 *    rates. Subsets of a fitting S fit too. Whether the cluster suffices is
 *    decided at u = 1.
 *  - Saturated part: n = ⌊r/T⌋ never grows as r falls. When it drops, the
 *    new residual ρ' < T always fits a GPU alone (d = ℓ(B): batch <= B,
 *    ℓ <= d, d + ℓ <= 2ℓ(B) <= budget; ρ'·c < T·c <= u·C), so the lost
 *    dedicated GPU is replaced by at most one residual GPU.
 *  Hence the optimal packing never needs more GPUs at lower rates. The
 *  best-fit heuristic's GPU count is not guaranteed monotone (bin-packing
 *  anomalies: smaller items can change the greedy's choices); the property
 *  test measures how often and by how much.
 *
 * Past capacity (the plan needs more GPUs than the cluster has at u = 1),
 * every session's rate is scaled by one factor f < 1, the largest (bisected) for
 * which the plan fits, and each session's unplaced (1 − f)·rate goes to
 * out->unassigned: every session keeps a share, instead of whole sessions
 * losing their GPUs (the old cliff: 100 % bad in the game past capacity).
 * A session whose batch of 1 misses its SLO or memory is unassigned whole.
 *
 * Without overlap (the paper's -OL) ℓ includes the batch's ⌈b/C⌉ rounds of
 * pre/post on the cores, during which the GPU waits, and the budget no longer
 * subtracts them (nx_plan_lat, nx_plan_budget); the core condition is then
 * implied by Σ ℓ(b_i) <= u·d, and stays for simplicity.
 *
 * Differences from the original code (reference/nexus.md §2a):
 *  - Nexus (the paper and its code) plans GPUs only; on a node with few cores
 *    it packed sessions onto GPUs whose CPUs then could not keep up
 *    (experiments/README.md, "Paper-era settings"). The core condition above
 *    is ours.
 *  - Nexus's scheduler is online and incremental; here the plan is re-packed
 *    globally from scratch per the paper's Algorithm 1, so the same rates
 *    give the same plan whatever the history.
 *  - The residual rule: Nexus's code takes the largest b with
 *    (b−1)/r + ℓ(b) <= budget and d = min(budget − ℓ(b), b/r) and merges at
 *    the smallest d; here the duty cycle is searched as above.
 *  - Every throughput (route weight) is batch / duty of the final plan.
 *
 * Cost: O(Σ max_batch) for the envelopes and saturated batches; per merge
 * candidate O(1) to reject by a lower bound on d*, else O(|S|) per step of
 * d ← E(d)/u (a handful). The packing runs once while the plan fits at
 * u = 0.8, up to 10 more times when u must rise, and ~20 more past capacity. */
#include "plan.h"
#include "policies.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Slack for "<=" on latencies (µs) and on batch rounding (requests): exact
 * fits (the paper's toy example is made of them) must survive rounding. */
#define LAT_EPS_US 1e-6
#define BATCH_EPS 1e-9
/* Residual load below this (req/s) is noise left by the saturated phase. */
#define MIN_RATE 1e-6
/* Bisection steps for the shedding factor: 2^-20 of the rates. */
#define SHED_STEPS 20
/* Planned Σℓ may fill this much of a residual GPU's duty cycle while the
 * cluster has GPUs to spare; up to all of it (bisected) before load is shed.
 * Why 0.8, and not 1: see the top. */
#define UTIL_TARGET 0.8
#define UTIL_STEPS 8

typedef struct sq_env {        /* monotone envelopes of one profile */
    const nx_profile *prof;
    double *l, *m;             /* [1..max_batch]: µs (with multiplier), MB */
} sq_env;

typedef struct sq_sess {
    int id;          /* session id written into the plan */
    int maxb;        /* saturated batch B; 0: unplaceable */
    const double *l, *m;
    double budget;   /* µs */
    double rate;     /* req/s asked for */
    double cpu;      /* CPU µs per request on its node's cores */
    double tg;       /* B / ℓ(B), req/s: what the GPU alone allows */
    double t;        /* T = min(tg, u·C/cpu) at the fill being packed, req/s */
    bool in;         /* admitted (see place()) */
    /* for the factor being packed */
    int nded;        /* dedicated GPUs */
    double r;        /* residual rate (0: none) */
    double u;        /* latency bound U of the residual alone, µs */
    double fill;     /* d* / U alone: its size */
    int batch;       /* on its residual GPU, once the duty is chosen */
    int next;        /* next session on the same residual GPU, -1 ends */
} sq_sess;

typedef struct sq_gpu {
    int head, tail;  /* intrusive list of sessions, in arrival order */
    double u;        /* min U of its sessions */
    double dstar;    /* least d with E(d) <= d */
    double e;        /* E(dstar) */
    double cpu;      /* Σ ρ·cpu of its sessions: core µs per second */
    double duty, exec, mem;
} sq_gpu;

typedef struct sq {
    const nx_place_ctx *ctx;
    double util;     /* a GPU's planned Σℓ may fill this much of its cycle */
    sq_sess *sess;
    int *order;      /* residual sessions, biggest first */
    int nres;
    sq_gpu *gpu;     /* residual GPUs, in opening order */
    int ngpu, capgpu;
    sq_env *env;
    int nenv;
} sq;

/* ---- envelopes ------------------------------------------------------------ */

/* The envelope of profile p, built on first use (linear probing on the
 * pointer into a table of 2·nsess slots). */
static const sq_env *env_of(sq *q, const nx_profile *p)
{
    size_t cap = 2 * (size_t)q->ctx->nsess + 1;
    size_t h = ((uintptr_t)p >> 4) * 0x9E3779B97F4A7C15ULL % cap;
    while (q->env[h].prof && q->env[h].prof != p)
        h = (h + 1) % cap;
    sq_env *e = &q->env[h];
    if (!e->prof) {
        int n = p->max_batch;
        e->prof = p;
        e->l = nx_malloc(sizeof(double) * (size_t)(n + 1));
        e->m = nx_malloc(sizeof(double) * (size_t)(n + 1));
        e->l[0] = e->m[0] = 0;
        for (int b = 1; b <= n; b++) {
            e->l[b] = NX_MAX(e->l[b - 1], nx_plan_lat(q->ctx, p, b));
            e->m[b] = NX_MAX(e->m[b - 1], nx_profile_mem(p, b));
        }
    }
    return e;
}

/* ---- one session at a duty cycle -------------------------------------------- */

/* Batch a session needs at duty cycle d: ⌈d·r⌉, at least 1; maxb + 1
 * (infeasible) rather than overflow for absurd products. Monotone in d and r. */
static int batch_at(const sq_sess *s, double d_us)
{
    double x = d_us * s->r * 1e-6 - BATCH_EPS;
    if (x >= s->maxb)
        return s->maxb + 1;
    if (x <= 1)
        return 1;
    int b = (int)x;              /* ⌈x⌉ without libm: x is in (1, maxb) */
    return b < x ? b + 1 : b;
}

/* U: the largest d with batch_at(d) <= B and d + ℓ(batch_at(d)) <= budget.
 * Batch k covers d in ((k−1)/r, k/r]; the condition holds on a prefix of the
 * k (both terms grow), so the last k whose piece is not empty is found by
 * bisection, and U is the right end of its feasible part. 0: none. */
static double u_bound(const sq_sess *s)
{
    if (s->l[1] >= s->budget + LAT_EPS_US)
        return 0;
    int lo = 1, hi = s->maxb;    /* piece lo is not empty */
    while (lo < hi) {
        int k = (lo + hi + 1) / 2;
        if ((k - 1) * 1e6 / s->r + s->l[k] < s->budget + LAT_EPS_US)
            lo = k;
        else
            hi = k - 1;
    }
    return NX_MIN(lo * 1e6 / s->r, s->budget - s->l[lo]);
}

/* ---- one GPU ---------------------------------------------------------------- */

/* Do residuals needing `cpu` core µs per second fit a node's cores at the
 * fill being packed? Always, when the cores are not modelled. */
static bool cpu_fits(const sq *q, double cpu)
{
    return q->ctx->cpu_cores <= 0 || cpu <= q->util * q->ctx->cpu_cores * 1e6 * (1 + 1e-12);
}

/* Least d >= d0 with E(d) <= d over the sessions of g (g may be NULL) plus
 * session `add` (-1: none), given d0 <= that least d. Fails (returns false)
 * when their residuals do not fit the node's cores, or once d exceeds u or
 * memory at d does not fit. *e gets E(d). */
static bool least_duty(const sq *q, const sq_gpu *g, int add, double d0, double u,
                       double *d, double *e)
{
    if (!cpu_fits(q, (g ? g->cpu : 0) + (add >= 0 ? q->sess[add].r * q->sess[add].cpu : 0)))
        return false;
    double x = d0;
    for (;;) {
        if (x > u + LAT_EPS_US)
            return false;
        double sum = 0, mem = 0;
        if (g)
            for (int i = g->head; i >= 0; i = q->sess[i].next) {
                const sq_sess *s = &q->sess[i];
                int b = batch_at(s, x);
                if (b > s->maxb)
                    return false;
                sum += s->l[b];
                mem += s->m[b];
            }
        if (add >= 0) {
            const sq_sess *s = &q->sess[add];
            int b = batch_at(s, x);
            if (b > s->maxb)
                return false;
            sum += s->l[b];
            mem += s->m[b];
        }
        if (sum <= q->util * x + LAT_EPS_US) {
            if (mem > q->ctx->gpu_mem_mb)
                return false;
            *d = x;
            *e = sum;
            return true;
        }
        x = sum / q->util;   /* E(x) > u·x: the least fixed point is at least E(x)/u */
    }
}

/* Would g accept session s? On success, the merged d* and d* / U. O(1) reject:
 * adding s can only raise d*, so d*' >= E_g(d*_g) + ℓ_s(b_s(d*_g)). */
static bool merge_eval(const sq *q, const sq_gpu *g, int s, double *dstar, double *e,
                       double *fill)
{
    const sq_sess *x = &q->sess[s];
    if (!cpu_fits(q, g->cpu + x->r * x->cpu))
        return false;
    double u = NX_MIN(g->u, x->u);
    int b = batch_at(x, g->dstar);
    if (b > x->maxb)
        return false;
    double lb = (g->e + x->l[b]) / q->util;
    if (lb > u + LAT_EPS_US)
        return false;
    if (!least_duty(q, g, s, NX_MAX(lb, g->dstar), u, dstar, e))
        return false;
    *fill = *dstar / u;
    return true;
}

/* The duty cycle of g: over its feasible d in [d*, U], the one maximising
 * min(d − E(d), min_i(budget_i − ℓ(b_i)) − d). Between two batch steps E and
 * the latency slack are constant, so each piece's best d is where the two
 * slacks meet, clamped into the piece. Sets duty, exec, mem and batches. */
static void choose_duty(sq *q, sq_gpu *g)
{
    double lo = g->dstar, best_d = g->dstar, best = -INFINITY;
    for (int i = g->head; i >= 0; i = q->sess[i].next)
        q->sess[i].batch = batch_at(&q->sess[i], lo);
    for (;;) {
        double e = 0, mem = 0, lat = INFINITY, hi = g->u;
        bool ok = true;
        for (int i = g->head; i >= 0; i = q->sess[i].next) {
            const sq_sess *s = &q->sess[i];
            if (s->batch > s->maxb) {
                ok = false;
                break;
            }
            e += s->l[s->batch];
            mem += s->m[s->batch];
            lat = NX_MIN(lat, s->budget - s->l[s->batch]);
            hi = NX_MIN(hi, s->batch * 1e6 / s->r);   /* this batch lasts to here */
        }
        if (!ok || mem > q->ctx->gpu_mem_mb)
            break;
        double lo_u = NX_MAX(lo, e / q->util);   /* E <= u·d */
        double d = NX_MIN(NX_MAX((e + lat) / 2, lo_u), hi);
        double v = NX_MIN(d - e, lat - d);
        if (lo_u <= hi && lo_u <= lat + LAT_EPS_US && v > best + 1e-9) {
            best = v;
            best_d = d;
        }
        if (hi >= g->u || lat < hi)   /* past U, or latency fails from here on */
            break;
        for (int i = g->head; i >= 0; i = q->sess[i].next) {   /* next piece */
            sq_sess *s = &q->sess[i];
            if (s->batch * 1e6 / s->r <= hi * (1 + 1e-12))
                s->batch++;
        }
        lo = hi;
    }
    NX_ASSERT(best >= -LAT_EPS_US);   /* d* itself is feasible */
    g->duty = best_d;
    g->exec = g->mem = 0;
    for (int i = g->head; i >= 0; i = q->sess[i].next) {
        sq_sess *s = &q->sess[i];
        s->batch = batch_at(s, best_d);
        g->exec += s->l[s->batch];
        g->mem += s->m[s->batch];
    }
}

/* ---- packing ---------------------------------------------------------------- */

static int cmp_fill(const void *pa, const void *pb, void *arg)
{
    const sq_sess *ss = arg;
    const sq_sess *a = &ss[*(const int *)pa], *b = &ss[*(const int *)pb];
    if (a->fill != b->fill)
        return a->fill > b->fill ? -1 : 1;
    return (a->id > b->id) - (a->id < b->id);
}

static int cmp_rate(const void *pa, const void *pb, void *arg)
{
    const sq_sess *ss = arg;
    const sq_sess *a = &ss[*(const int *)pa], *b = &ss[*(const int *)pb];
    if (a->rate != b->rate)
        return a->rate > b->rate ? -1 : 1;
    return (a->id > b->id) - (a->id < b->id);
}

/* Pack every admitted session at f × its rate, with no limit on GPUs. Returns the GPUs
 * it takes (dedicated + residual). */
static int pack(sq *q, double f)
{
    int need = 0;
    q->nres = 0;
    q->ngpu = 0;
    for (int i = 0; i < q->ctx->nsess; i++) {
        sq_sess *s = &q->sess[i];
        s->nded = 0;
        s->r = 0;
        s->next = -1;
        if (!s->in)
            continue;
        double r = f * s->rate;
        s->t = NX_MIN(s->tg, nx_plan_cpu_rate(q->ctx, &q->ctx->sess[i], q->util));
        s->nded = (int)floor(r / s->t + 1e-9);
        need += s->nded;
        s->r = r - s->nded * s->t;
        if (s->r < MIN_RATE) {
            s->r = 0;
            continue;
        }
        s->u = u_bound(s);
        double d, e;
        /* At u = 1, ρ < T always fits alone (see the top) and this fails only
         * by rounding; at u < 1 a residual close to T may not fit in u of a
         * cycle. Either way it gets a GPU of its own, run like a saturated one
         * (batch B back to back), which covers ρ < T. */
        if (s->u <= 0 || !least_duty(q, NULL, i, s->l[1], s->u, &d, &e)) {
            s->nded++;
            need++;
            s->r = 0;
            continue;
        }
        s->fill = d / s->u;
        q->order[q->nres++] = i;
    }
    qsort_r(q->order, (size_t)q->nres, sizeof *q->order, cmp_fill, q->sess);
    for (int k = 0; k < q->nres; k++) {
        int si = q->order[k];
        sq_sess *s = &q->sess[si];
        int best = -1;
        double best_fill = -1, best_d = 0, best_e = 0;
        for (int g = 0; g < q->ngpu; g++) {
            double d, e, fill;
            if (merge_eval(q, &q->gpu[g], si, &d, &e, &fill) && fill > best_fill) {
                best = g;
                best_fill = fill;
                best_d = d;
                best_e = e;
            }
        }
        sq_gpu *g;
        if (best >= 0) {
            g = &q->gpu[best];
            q->sess[g->tail].next = si;
            g->tail = si;
            g->u = NX_MIN(g->u, s->u);
            g->cpu += s->r * s->cpu;
        } else {
            if (q->ngpu == q->capgpu) {
                q->capgpu = q->capgpu ? 2 * q->capgpu : 16;
                q->gpu = nx_realloc(q->gpu, sizeof *q->gpu * (size_t)q->capgpu);
            }
            g = &q->gpu[q->ngpu++];
            g->head = g->tail = si;
            g->u = s->u;
            g->cpu = s->r * s->cpu;
            NX_ASSERT(least_duty(q, NULL, si, s->l[1], s->u, &best_d, &best_e));
        }
        s->next = -1;
        g->dstar = best_d;
        g->e = best_e;
    }
    return need + q->ngpu;
}

static int place(const nx_place_ctx *ctx, nx_plan *out)
{
    int rc = nx_plan_check_ctx(ctx, out);
    if (rc < 0)
        return rc;
    nx_plan_clear(out);
    int ns = ctx->nsess;
    sq q = {
        .ctx = ctx,
        .sess = nx_calloc((size_t)ns + 1, sizeof(sq_sess)),
        .order = nx_calloc((size_t)ns + 1, sizeof(int)),
        .env = nx_calloc(2 * (size_t)ns + 1, sizeof(sq_env)),
    };

    /* Saturated batches; unplaceable sessions are unassigned whole. */
    for (int i = 0; i < ns; i++) {
        const nx_sess_spec *sp = &ctx->sess[i];
        sq_sess *s = &q.sess[i];
        s->id = sp->id;
        s->rate = sp->rate;
        s->cpu = sp->cpu_us;
        s->budget = nx_plan_budget(ctx, sp);
        if (sp->rate <= 0)
            continue;
        const sq_env *e = env_of(&q, sp->prof);
        s->l = e->l;
        s->m = e->m;
        for (int b = sp->prof->max_batch; b >= 1 && !s->maxb; b--)
            if (2.0 * s->l[b] <= s->budget + LAT_EPS_US && s->m[b] <= ctx->gpu_mem_mb)
                s->maxb = b;
        if (s->maxb == 0) {
            out->unassigned[s->id] += sp->rate;
            continue;
        }
        s->tg = s->maxb * 1e6 / s->l[s->maxb];
    }

    /* Past capacity: the largest factor f (bisected) whose plan fits. If
     * even the tiniest rates do not fit (more sessions than the GPUs can hold
     * at batch 1), only the sessions with the highest rates that do fit are
     * admitted, and the others are unassigned whole. */
    int nin = 0;
    for (int i = 0; i < ns; i++) {
        q.sess[i].in = q.sess[i].maxb > 0 && q.sess[i].rate > 0;
        if (q.sess[i].in)
            q.order[nin++] = i;
    }
    /* `used` is what the last pack() took: q holds that packing, which is
     * the plan written below unless a later pack() replaces it. */
    q.util = UTIL_TARGET;
    int used = pack(&q, 1);
    if (used > ctx->ngpus) {
        double lo = UTIL_TARGET, hi = 1;
        q.util = 1;
        used = pack(&q, 1);
        if (used <= ctx->ngpus) {
            for (int k = 0; k < UTIL_STEPS; k++) {
                q.util = (lo + hi) / 2;
                if (pack(&q, 1) <= ctx->ngpus)
                    hi = q.util;
                else
                    lo = q.util;
            }
            q.util = hi;
            used = pack(&q, 1);
        }
    }
    if (used > ctx->ngpus) {
        const double fmin = 1.0 / (1 << SHED_STEPS);
        if (pack(&q, fmin) > ctx->ngpus) {
            int *by_rate = nx_malloc(sizeof(int) * (size_t)(nin + 1));
            memcpy(by_rate, q.order, sizeof(int) * (size_t)nin);
            qsort_r(by_rate, (size_t)nin, sizeof(int), cmp_rate, q.sess);
            int lo = 0, hi = nin;   /* the first lo fit, the first hi do not */
            while (hi - lo > 1) {
                int mid = (lo + hi) / 2;
                for (int k = 0; k < nin; k++)
                    q.sess[by_rate[k]].in = k < mid;
                if (pack(&q, fmin) <= ctx->ngpus)
                    lo = mid;
                else
                    hi = mid;
            }
            for (int k = 0; k < nin; k++) {
                sq_sess *s = &q.sess[by_rate[k]];
                s->in = k < lo;
                if (!s->in)
                    out->unassigned[s->id] += s->rate;
            }
            free(by_rate);
        }
        used = pack(&q, 1);
    }
    if (used > ctx->ngpus) {
        double lo = 0, hi = 1;
        for (int k = 0; k < SHED_STEPS; k++) {
            double mid = (lo + hi) / 2;
            if (pack(&q, mid) <= ctx->ngpus)
                lo = mid;
            else
                hi = mid;
        }
        NX_ASSERT(pack(&q, lo) <= ctx->ngpus);
        for (int i = 0; i < ns; i++)
            if (q.sess[i].in)
                out->unassigned[q.sess[i].id] += (1 - lo) * q.sess[i].rate;
    }

    /* Write: dedicated GPUs first, in session order, then residual GPUs. */
    int g0 = 0;
    for (int i = 0; i < ns; i++) {
        const sq_sess *s = &q.sess[i];
        for (int k = 0; k < s->nded; k++) {
            nx_plan_add(out, g0, s->id, s->maxb, s->t, s->t);
            nx_gpu_plan *gp = &out->gpu[g0++];
            gp->duty_us = gp->exec_us = s->l[s->maxb];
            gp->mem_mb = s->m[s->maxb];
        }
    }
    for (int g = 0; g < q.ngpu; g++) {
        sq_gpu *rg = &q.gpu[g];
        choose_duty(&q, rg);
        nx_gpu_plan *gp = &out->gpu[g0 + g];
        for (int i = rg->head; i >= 0; i = q.sess[i].next) {
            const sq_sess *s = &q.sess[i];
            nx_plan_add(out, g0 + g, s->id, s->batch, s->r, s->batch * 1e6 / rg->duty);
        }
        gp->duty_us = rg->duty;
        gp->exec_us = rg->exec;
        gp->mem_mb = rg->mem;
    }
    nx_plan_count_used(out);

    for (int h = 0; h < 2 * ns + 1; h++) {
        free(q.env[h].l);
        free(q.env[h].m);
    }
    free(q.env);
    free(q.sess);
    free(q.order);
    free(q.gpu);
    return 0;
}

const nx_placement_ops nx_place_squishy_ops = {
    "squishy",
    "Nexus squishy bin packing: saturated GPUs, then residuals merged best-fit onto "
    "GPUs where some duty cycle fits them all; past capacity every session is cut in proportion",
    place,
};
