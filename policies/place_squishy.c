/* place_squishy.c — Nexus's squishy bin packing (SOSP'19 §6.1, Algorithm 1),
 * the "squishy" placement policy.
 *
 * Every epoch the whole plan is re-packed from scratch, deterministically:
 *
 *  1. Saturated phase. Each session gets its saturated batch B (the largest
 *     with 2·ℓ(B) <= budget, lowered until it fits in GPU memory), whose
 *     single-GPU throughput is T = B/ℓ(B), and ⌊rate/T⌋ dedicated GPUs that
 *     run batch B back to back (duty = exec = ℓ(B)). What is left over,
 *     r = rate − n·T, is the session's residual load.
 *  2. Residual phase. Each residual alone gets the largest batch b with
 *     b/r + ℓ(b) <= budget, i.e. the longest duty cycle d = b/r it tolerates;
 *     its occupancy is ℓ(b)/d. Residuals are taken by occupancy, highest
 *     first, and merged best-fit onto the residual GPUs opened so far: a merge
 *     runs the GPU at d = min(d_gpu, d_new), every session on it shrinks its
 *     batch to ⌈d·r_i⌉, and it is feasible if Σℓ(b_i) <= d, memory fits and
 *     every session still meets d + ℓ(b_i) <= budget_i. The feasible merge
 *     with the highest resulting occupancy wins; if none, a new GPU is opened.
 *
 * Differences from the original code (reference/nexus.md §2a):
 *  - Nexus's scheduler is online and incremental: each backend keeps its
 *    instances, and an epoch shrinks, grows, spills and re-allocates only
 *    what changed. Here we re-pack globally from scratch per the paper's
 *    Algorithm 1, so the same rates give the same plan whatever the history
 *    (and routes may move more between epochs than in the original).
 *  - Residual batches follow the paper's b/r + ℓ(b) <= budget, not the
 *    code's (b−1)/r + ℓ(b) <= budget with d = min(budget − ℓ(b), b/r);
 *    memory counts at each session's actual batch. The code's rule uses all
 *    of the SLO (d + ℓ(b) = budget), which under Poisson arrivals leaves no
 *    room for a cycle with more arrivals than the batch: tried here, it
 *    packed the demo's 44 sessions onto one GPU and its throughput at 1 %
 *    bad fell from ~75,000 to 5,600 queries/s. The paper's rule has a known
 *    cost: the feasible load is not monotone in the rate (five Inception
 *    copies at 100 req/s each do not fit one GPU where 120 req/s each do:
 *    experiments/repro/squishy_nonmonotone.yml).
 *  - After a merge shrinks batches, every throughput (route weight) is
 *    recomputed from the final batch and duty (see step 3 in place()).
 *  - A residual alone never gets a cycle its batch cannot keep up with
 *    (ℓ(b) > d); see lone_cfg().
 *
 * Load that does not fit (a session whose batch of 1 misses its SLO or
 * memory, or a cluster with too few GPUs) goes to out->unassigned. Saturated
 * GPUs are handed out first, in session order; residual GPUs come after.
 *
 * Cost: O(Σ max_batch) to size configurations, plus the best-fit scan over
 * open residual GPUs, O(sessions on the GPU) per candidate and O(1) in the
 * common cases (see merge_eval()). Per-GPU state is a few words and the
 * sessions on a GPU form an intrusive list, so nothing is allocated per
 * merge; 1000 sessions on 1000 GPUs take a few ms. */
#include "plan.h"
#include "policies.h"

#include <math.h>
#include <stdlib.h>

/* Slack for "<=" on latencies (µs) and on batch rounding (requests): exact
 * fits (the paper's toy example is made of them) must survive rounding. */
#define LAT_EPS_US 1e-6
#define BATCH_EPS 1e-9
/* Residual load below this (req/s) is noise left by the saturated phase. */
#define MIN_RATE 1e-6

typedef struct sq_sess {
    const nx_profile *prof;
    int id;          /* session id written into the plan */
    int maxb;        /* saturated batch B (memory-capped); 0: unplaceable */
    double budget;   /* µs */
    double r;        /* residual rate, req/s */
    double lmin;     /* min ℓ(b) over 1..maxb: a lower bound on its cost anywhere */
    /* state on its residual GPU */
    int batch;
    int next;        /* next session on the same residual GPU, -1 ends */
} sq_sess;

typedef struct sq_cfg {
    int s;           /* index into the session array */
    int id;          /* its session id (tie-break) */
    int b;           /* batch when alone */
    double d;        /* duty cycle when alone, µs */
    double occ;      /* ℓ(b)/d */
} sq_cfg;

typedef struct sq_gpu {
    double duty, exec, mem;
    double lmin;     /* Σ lmin of its sessions: a merge needs lmin + lmin_new <= d */
    int head, tail;  /* intrusive list of sessions, in arrival order */
    bool canon;      /* every batch on it is batch_at(duty): see merge_eval() */
} sq_gpu;

typedef struct sq {
    const nx_place_ctx *ctx;
    sq_sess *sess;
    sq_cfg *cfg;
    int ncfg;
    sq_gpu *gpu;     /* residual GPUs, in opening order */
    int ngpu;
} sq;

/* nx_plan_lat(), inlined: this is the inner loop of the best-fit scan. */
static inline double lat(const sq *q, const sq_sess *s, int b)
{
    NX_ASSERT(b >= 1 && b <= s->prof->max_batch);
    return q->ctx->multiplier * (s->prof->mean_us[b] + s->prof->std_us[b]);
}

static double mem(const sq_sess *s, int b)
{
    return nx_profile_mem(s->prof, b);
}

/* Batch a session needs at duty cycle d: ⌈d·r⌉, at least 1. Returns maxb+1
 * (infeasible) rather than overflow for absurd products. */
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

/* Session s on a GPU with duty d, on its own terms: its batch ⌈d·r⌉ must
 * exist and d + ℓ(b) must meet its budget. Gives ℓ(b) and memory. */
static bool sess_at(const sq *q, const sq_sess *s, double d, double *l, double *m)
{
    int b = batch_at(s, d);
    if (b > s->maxb)
        return false;
    *l = lat(q, s, b);
    *m = mem(s, b);
    return d + *l <= s->budget + LAT_EPS_US;
}

/* Add session s at duty d to a running (exec, mem) total; false if s cannot
 * run on a GPU with duty d, or the totals overflow the GPU. */
static bool fit_one(const sq *q, const sq_sess *s, double d, double *exec, double *m)
{
    double l, mm;
    if (!sess_at(q, s, d, &l, &mm))
        return false;
    *exec += l;
    *m += mm;
    return *exec <= d + LAT_EPS_US && *m <= q->ctx->gpu_mem_mb;
}

/* Would GPU g accept session s (alone: duty d_new)? On success *exec is the
 * merged Σℓ and *duty the merged cycle.
 *
 * O(sessions on g) in general, O(1) when the duty does not shrink and the
 * GPU's batches are already ⌈duty·r_i⌉ (canon): then the members' batches,
 * Σℓ and memory stay what they are and only the newcomer needs checking.
 * Both paths add up Σℓ in the same order (members, then the newcomer), so
 * they give bit-identical answers. Cheap rejects come first: the Σ lmin
 * bound, then the newcomer on its own. */
static bool merge_eval(const sq *q, const sq_gpu *g, int s, double d_new,
                       double *duty, double *exec)
{
    double d = NX_MIN(g->duty, d_new), e = 0, m = 0, ln, mn;
    if (g->lmin + q->sess[s].lmin > d + LAT_EPS_US)
        return false;
    if (!sess_at(q, &q->sess[s], d, &ln, &mn))
        return false;
    if (g->canon && d == g->duty) {
        e = g->exec;
        m = g->mem;
    } else {
        for (int i = g->head; i >= 0; i = q->sess[i].next)
            if (!fit_one(q, &q->sess[i], d, &e, &m))
                return false;
    }
    e += ln;
    m += mn;
    if (e > d + LAT_EPS_US || m > q->ctx->gpu_mem_mb)
        return false;
    *duty = d;
    *exec = e;
    return true;
}

/* Commit the merge merge_eval() accepted: rewrite every batch for duty d. */
static void merge_commit(sq *q, sq_gpu *g, int s, double d)
{
    q->sess[s].next = -1;
    q->sess[g->tail].next = s;
    g->tail = s;
    g->duty = d;
    g->canon = true;
    g->lmin += q->sess[s].lmin;
    g->exec = g->mem = 0;
    for (int i = g->head; i >= 0; i = q->sess[i].next) {
        sq_sess *x = &q->sess[i];
        x->batch = batch_at(x, d);
        g->exec += lat(q, x, x->batch);
        g->mem += mem(x, x->batch);
    }
}

/* The configuration of a residual alone on a GPU (the paper's rule: the
 * largest b <= B with b/r + ℓ(b) <= budget, d = b/r).
 *
 * Two cases need a different duty, d = budget − ℓ(b) with the smallest b
 * above the paper's that satisfies 2·ℓ(b) <= budget (B always does):
 *  - no b qualifies (a low rate: even b=1 waits too long to fill) — this
 *    gives the brief's b = 1, d = budget − ℓ(1);
 *  - the residual is close to T and the qualifying b runs slower than r
 *    arrives (ℓ(b) > b/r, possible when ℓ has a fixed cost β): d = b/r would
 *    make exec exceed the duty cycle, which the paper's rule does not check.
 * In both, d < b/r, so the throughput b/d still covers r. */
static sq_cfg lone_cfg(const sq *q, int si)
{
    const sq_sess *s = &q->sess[si];
    double gm = q->ctx->gpu_mem_mb;
    /* b/r <= budget bounds the scan for low rates. */
    double cap = s->budget * s->r * 1e-6 + 1;
    int top = cap < s->maxb ? (int)cap : s->maxb;
    int b1 = 0;
    for (int b = top; b >= 1; b--) {
        if (mem(s, b) <= gm && b * 1e6 / s->r + lat(q, s, b) <= s->budget + LAT_EPS_US) {
            b1 = b;
            break;
        }
    }
    sq_cfg c = {.s = si, .id = s->id};
    if (b1 > 0 && lat(q, s, b1) <= b1 * 1e6 / s->r + LAT_EPS_US) {
        c.b = b1;
        c.d = b1 * 1e6 / s->r;
    } else {
        int b = b1 + 1;
        while (b < s->maxb && !(2.0 * lat(q, s, b) <= s->budget + LAT_EPS_US &&
                                mem(s, b) <= gm))
            b++;
        if (b > s->maxb)    /* b1 == B failed only by rounding: r ≈ T */
            b = s->maxb;
        c.b = b;
        c.d = NX_MIN(s->budget - lat(q, s, b), b * 1e6 / s->r);
        /* d < b/r here, so ⌈d·r⌉ may be a smaller batch that still serves r:
         * take it when it fits (it does unless ℓ is not monotone). */
        double e = 0, m = 0;
        if (fit_one(q, s, c.d, &e, &m))
            c.b = batch_at(s, c.d);
    }
    c.occ = lat(q, s, c.b) / c.d;
    return c;
}

static int cmp_cfg(const void *pa, const void *pb)
{
    const sq_cfg *a = pa, *b = pb;
    if (a->occ != b->occ)
        return a->occ > b->occ ? -1 : 1;
    if (a->id != b->id)
        return (a->id > b->id) - (a->id < b->id);
    return (a->s > b->s) - (a->s < b->s);
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
        .sess = nx_calloc((size_t)ns, sizeof(sq_sess)),
        .cfg = nx_calloc((size_t)ns, sizeof(sq_cfg)),
        .gpu = nx_calloc((size_t)(ctx->ngpus > 0 ? ctx->ngpus : 1), sizeof(sq_gpu)),
    };

    /* 1. Saturated phase: dedicated GPUs 0..nded-1, in session order. */
    int nded = 0;
    for (int i = 0; i < ns; i++) {
        const nx_sess_spec *sp = &ctx->sess[i];
        sq_sess *s = &q.sess[i];
        s->prof = sp->prof;
        s->id = sp->id;
        s->budget = nx_plan_budget(ctx, sp);
        s->next = -1;
        if (sp->rate <= 0)
            continue;
        s->maxb = nx_plan_sat_batch_mem(ctx, sp);
        if (s->maxb == 0) {
            out->unassigned[s->id] += sp->rate;
            continue;
        }
        double lb = lat(&q, s, s->maxb);
        double t = s->maxb * 1e6 / lb;
        double n = floor(sp->rate / t + 1e-9);
        double give = NX_MIN(n, (double)(ctx->ngpus - nded));
        for (int k = 0; k < (int)give; k++) {
            nx_plan_add(out, nded, s->id, s->maxb, t, t);
            nx_gpu_plan *gp = &out->gpu[nded++];
            gp->duty_us = gp->exec_us = lb;
            gp->mem_mb = mem(s, s->maxb);
        }
        out->unassigned[s->id] += (n - give) * t;
        s->r = sp->rate - n * t;
        if (s->r >= MIN_RATE) {
            s->lmin = lb;
            for (int b = 1; b < s->maxb; b++)
                s->lmin = NX_MIN(s->lmin, lat(&q, s, b));
            q.cfg[q.ncfg++] = lone_cfg(&q, i);
        } else
            s->r = 0;
    }

    /* 2. Residual phase: best fit by occupancy onto GPUs nded.. */
    qsort(q.cfg, (size_t)q.ncfg, sizeof *q.cfg, cmp_cfg);
    for (int k = 0; k < q.ncfg; k++) {
        const sq_cfg *c = &q.cfg[k];
        int best = -1;
        double best_occ = -1, best_d = 0;
        for (int g = 0; g < q.ngpu; g++) {
            double d, e;
            if (merge_eval(&q, &q.gpu[g], c->s, c->d, &d, &e) && e / d > best_occ) {
                best = g;
                best_occ = e / d;
                best_d = d;
            }
        }
        sq_sess *s = &q.sess[c->s];
        if (best >= 0) {
            merge_commit(&q, &q.gpu[best], c->s, best_d);
        } else if (nded + q.ngpu < ctx->ngpus) {
            sq_gpu *g = &q.gpu[q.ngpu++];
            s->batch = c->b;
            s->next = -1;
            g->head = g->tail = c->s;
            g->duty = c->d;
            g->canon = c->b == batch_at(s, c->d);
            g->lmin = s->lmin;
            g->exec = lat(&q, s, c->b);
            g->mem = mem(s, c->b);
        } else {
            out->unassigned[s->id] += s->r;
        }
    }

    /* 3. Write residual GPUs. Every session's throughput comes from its FINAL
     * batch and its GPU's FINAL duty cycle: the original code left the
     * throughputs (route weights) of instances whose batch a later merge had
     * shrunk stale (reference/nexus.md §5); here they are recomputed. */
    for (int g = 0; g < q.ngpu; g++) {
        const sq_gpu *rg = &q.gpu[g];
        nx_gpu_plan *gp = &out->gpu[nded + g];
        for (int i = rg->head; i >= 0; i = q.sess[i].next) {
            const sq_sess *s = &q.sess[i];
            nx_plan_add(out, nded + g, s->id, s->batch, s->r, s->batch * 1e6 / rg->duty);
        }
        gp->duty_us = rg->duty;
        gp->exec_us = rg->exec;
        gp->mem_mb = rg->mem;
    }
    nx_plan_count_used(out);

    free(q.sess);
    free(q.cfg);
    free(q.gpu);
    return 0;
}

const nx_placement_ops nx_place_squishy_ops = {
    "squishy",
    "Nexus squishy bin packing: saturated GPUs, then residuals merged best-fit by occupancy",
    place,
};
