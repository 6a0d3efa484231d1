/* place_oblivious.c — the paper's batch-oblivious baseline scheduler
 * ("batch_oblivious").
 *
 * Our reading of SOSP'19 §7.2 (reference/nexus.md §7.3): each model/SLO gets
 * a share of the cluster proportional to its request rate and inversely
 * proportional to its maximum single-GPU throughput, g = rate / T, where T is
 * the throughput at the saturated batch B (largest b with 2·ℓ(b) <= budget,
 * lowered until it fits in memory). It is oblivious to how batching changes
 * with load: a session always runs its fixed batch B — the TF-Serving style
 * "maximum batch size whose SLO is not violated" — however small its share.
 *
 *  - ⌊g⌋ dedicated GPUs run batch B back to back (rate = throughput = T).
 *  - The fractional shares are packed first-fit decreasing (by fraction, ties
 *    by session id) onto shared GPUs: the fractions sum to at most 1, memory
 *    fits, and, since the sessions round-robin their fixed batches, a request
 *    can wait for every other batch on the GPU and then run in its own:
 *    Σ_j ℓ(B_j) + ℓ(B_i) <= budget_i for every session i there. The shared
 *    GPU's duty cycle is Σ_j ℓ(B_j); a session's allocation there has rate =
 *    throughput = fraction·T.
 *  - One check beyond the fraction sum (and implying it): a round robin of
 *    fixed batches serves session i at B_i / Σ_j ℓ(B_j), which must cover its
 *    share fraction_i·T_i, i.e. Σ_j ℓ(B_j) <= ℓ(B_i)/fraction_i (when the
 *    cores cap T_i below B_i/ℓ(B_i), B_i/(fraction_i·T_i): below). Without it
 *    a big share next to a slow model would be planned a throughput its GPU
 *    cannot deliver, and the baseline would lose by a planning error rather
 *    than by being batch-oblivious.
 *
 * The node's cores (ctx->cpu_cores > 0) cap a GPU as for squishy: T is at
 * most CPU_FILL · cores / (CPU per request). A shared GPU's sessions then
 * need no check of their own on the cores: each share's core load is
 * frac·T·cpu <= frac·CPU_FILL·cores, so fractions that sum to at most 1 keep
 * Σ rate·cpu <= CPU_FILL·cores (plan.h). The fill is squishy's 0.8, not 1:
 * a FIFO of pre/post jobs on cores 100 % busy has no bound on its waits;
 * planned at 1, the baseline passed 1,204 frames/s in the paper-era game at
 * 14 cores (late frames on nodes whose shares filled the cores), at 0.8
 * 10,454 (2,816 without the cap).
 *
 * With B at the saturated rule, 2·ℓ(B) is close to the budget, so sharing is
 * rare: this is what squishy bin packing improves on. GPUs beyond ctx->ngpus
 * are not used. When the cluster is too small for the SLO-safe packing, the
 * baseline still gives every session its share, as the paper's did (16
 * sessions on 8 GPUs in Fig. 16): a fraction that fits nowhere is
 * time-shared on the least-loaded shared GPU (memory permitting) without the
 * latency checks, and those sessions miss SLOs, which is how this baseline
 * fails. Only load that finds no GPU at all goes to out->unassigned. */
#include "plan.h"
#include "policies.h"

#include <math.h>
#include <stdlib.h>

#define LAT_EPS_US 1e-6
#define FRAC_EPS 1e-9
/* The share of a node's cores a plan may fill (see the top). */
#define CPU_FILL 0.8
/* A fractional share whose load is below this (req/s) is rounding noise. */
#define MIN_RATE 1e-6

typedef struct ob_item {
    int s;           /* index into ctx->sess */
    int id;
    int b;           /* fixed batch B */
    double t;        /* T, req/s */
    double frac;     /* fractional share of a GPU */
    double l;        /* ℓ(B), µs */
    double slack;    /* budget − ℓ(B): the most Σℓ on its GPU may reach */
    double cycle;    /* ℓ(B)/frac · T_gpu/T = B/(frac·T): the longest round robin
                        that serves its share (T_gpu = B/ℓ(B), T capped by the cores) */
} ob_item;

typedef struct ob_gpu {
    double frac, sum_l, mem;
    double slack;    /* min slack of the sessions on it */
    double cycle;    /* min cycle of the sessions on it */
    bool over;       /* over-committed by the fallback */
} ob_gpu;

static int cmp_item(const void *pa, const void *pb)
{
    const ob_item *a = pa, *b = pb;
    if (a->frac != b->frac)
        return a->frac > b->frac ? -1 : 1;
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
    ob_item *items = nx_calloc((size_t)ctx->nsess, sizeof *items);
    int nitems = 0, nded = 0;

    /* Dedicated GPUs 0..nded-1, in session order. */
    for (int i = 0; i < ctx->nsess; i++) {
        const nx_sess_spec *sp = &ctx->sess[i];
        if (sp->rate <= 0)
            continue;
        int b = nx_plan_sat_batch_mem(ctx, sp);
        if (b == 0) {
            out->unassigned[sp->id] += sp->rate;
            continue;
        }
        double l = nx_plan_lat(ctx, sp->prof, b);
        double tg = b * 1e6 / l;   /* what the GPU alone allows */
        double t = NX_MIN(tg, nx_plan_cpu_rate(ctx, sp, CPU_FILL));
        double g = sp->rate / t;
        double n = floor(g + FRAC_EPS);
        double give = NX_MIN(n, (double)(ctx->ngpus - nded));
        for (int k = 0; k < (int)give; k++) {
            nx_plan_add(out, nded, sp->id, b, t, t);
            nx_gpu_plan *gp = &out->gpu[nded++];
            gp->duty_us = gp->exec_us = l;
            gp->mem_mb = nx_profile_mem(sp->prof, b);
        }
        out->unassigned[sp->id] += (n - give) * t;
        double frac = g - n;
        if (frac * t >= MIN_RATE)
            items[nitems++] = (ob_item){
                .s = i, .id = sp->id, .b = b, .t = t, .frac = frac, .l = l,
                .slack = nx_plan_budget(ctx, sp) - l, .cycle = l / frac * (tg / t),
            };
    }

    /* Shared GPUs nded.., first fit decreasing; per-GPU state is five words
     * (the min slack and min cycle make the checks O(1)). */
    qsort(items, (size_t)nitems, sizeof *items, cmp_item);
    int room = ctx->ngpus - nded;
    ob_gpu *gpus = nx_calloc((size_t)(room > 0 ? room : 1), sizeof *gpus);
    int ngpu = 0;
    for (int k = 0; k < nitems; k++) {
        const ob_item *it = &items[k];
        const nx_profile *prof = ctx->sess[it->s].prof;
        double m = nx_profile_mem(prof, it->b);
        int g = 0;
        for (; g < ngpu; g++) {
            const ob_gpu *x = &gpus[g];
            double sum = x->sum_l + it->l;
            if (x->frac + it->frac <= 1 + FRAC_EPS && x->mem + m <= ctx->gpu_mem_mb &&
                sum <= NX_MIN(x->slack, it->slack) + LAT_EPS_US &&
                sum <= NX_MIN(x->cycle, it->cycle) * (1 + FRAC_EPS))
                break;
        }
        if (g == ngpu) {
            if (ngpu == room) {
                /* no SLO-safe GPU left: time-share the least-loaded shared
                 * GPU with room in memory, without the latency checks */
                g = -1;
                for (int h = 0; h < ngpu; h++)
                    if (gpus[h].mem + m <= ctx->gpu_mem_mb && (g < 0 || gpus[h].frac < gpus[g].frac))
                        g = h;
                if (g < 0) {
                    out->unassigned[it->id] += it->frac * it->t;
                    continue;
                }
            } else {
                gpus[ngpu++] = (ob_gpu){.slack = it->slack, .cycle = it->cycle};
            }
        }
        ob_gpu *x = &gpus[g];
        if (x->frac + it->frac > 1 + FRAC_EPS || x->sum_l + it->l > NX_MIN(x->slack, it->slack) + LAT_EPS_US ||
            x->sum_l + it->l > NX_MIN(x->cycle, it->cycle) * (1 + FRAC_EPS))
            x->over = true;
        x->frac += it->frac;
        x->sum_l += it->l;
        x->mem += m;
        x->slack = NX_MIN(x->slack, it->slack);
        x->cycle = NX_MIN(x->cycle, it->cycle);
        double rate = it->frac * it->t;
        nx_plan_add(out, nded + g, it->id, it->b, rate, rate);
    }
    for (int g = 0; g < ngpu; g++) {
        nx_gpu_plan *gp = &out->gpu[nded + g];
        gp->duty_us = gp->exec_us = gpus[g].sum_l;
        gp->mem_mb = gpus[g].mem;
        gp->overcommitted = gpus[g].over;
    }
    nx_plan_count_used(out);
    free(gpus);
    free(items);
    return 0;
}

const nx_placement_ops nx_place_oblivious_ops = {
    "batch_oblivious",
    "baseline: GPU share = rate / max throughput, fixed saturated batch, shares packed first fit",
    place,
};
