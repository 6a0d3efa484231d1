/* plan.h — what the scheduler decides each epoch, and the placement-policy
 * interface that decides it.
 *
 * A plan says, per GPU, which sessions run there with which batch size and
 * the GPU's duty cycle; per session, the routes (GPU, weight) frontends use.
 * Placement policies (policies/place_*.c) fill a plan from session specs.
 *
 * Latency model used for planning (all in µs):
 *   l(b)     = multiplier * (mean(b) + std(b))        nx_plan_lat() (latency.h)
 *   budget   = slo - pre - post - net_allowance       nx_plan_budget()
 * A session fits at batch b with duty cycle d iff d + l(b) <= budget.
 *
 * The node's CPU (cpu_cores > 0; 0 = unlimited, the pre/post a pure delay):
 * every request costs its node cpu_us of one core (pre + post,
 * nx_session_cpu_us() in ops.h, what the backend charges), so a GPU's planned
 * rates must have Σ rate·cpu_us <= cores·1e6 (policies keep a fill factor
 * below 1 of it). Without overlap (the paper's -OL) the GPU waits while its
 * batch is pre- and post-processed in ⌈b/cores⌉ rounds, so the CPU time is
 * part of the batch's latency on the GPU:
 *   l(b)     = multiplier * (mean + std) + ⌈b/cores⌉ * (pre + post)
 *   budget   = slo - net_allowance
 * (as nx_bsess_lat() estimates it on the backend); the core limit is then
 * implied by Σ l(b) <= d. */
#ifndef NX_PLAN_H
#define NX_PLAN_H

#include "nx.h"
#include "profile.h"

typedef struct nx_sess_spec {
    int id;                  /* index of the session, 0..nsess-1 */
    const nx_profile *prof;
    double slo_us;           /* the session's latency SLO */
    double rate;             /* req/s to plan for */
    double cpu_us;           /* CPU time per request on its node's cores, µs (pre + post;
                                only read when the context has cpu_cores > 0) */
} nx_sess_spec;

typedef struct nx_place_ctx {
    const nx_sess_spec *sess;
    int nsess;
    int ngpus;               /* GPUs in the cluster: never use more */
    double gpu_mem_mb;       /* memory per GPU */
    double multiplier;       /* profile multiplier for l(b) */
    double net_allowance_us; /* subtracted from every SLO (request + reply network time) */
    int cpu_cores;           /* cores per GPU's node for pre/post-processing (0: unlimited) */
    bool no_overlap;         /* the GPU waits for its batch's pre/post (needs cpu_cores > 0) */
} nx_place_ctx;

typedef struct nx_alloc {
    int session;
    int batch;               /* target batch size on this GPU */
    double rate;             /* req/s of this session this GPU is planned to serve */
    double throughput;       /* capacity: batch / duty (route weight) */
} nx_alloc;

typedef struct nx_gpu_plan {
    nx_alloc *a;
    int n, cap;
    double duty_us;          /* duty cycle d */
    double exec_us;          /* sum of l(batch) over sessions (<= duty when feasible) */
    double mem_mb;           /* sum of memory at each session's batch */
    bool overcommitted;      /* placed without the latency checks (a baseline
                                that ran out of GPUs): SLOs will be missed */
} nx_gpu_plan;

typedef struct nx_plan {
    nx_gpu_plan *gpu;        /* ngpu entries; a GPU with n == 0 is idle */
    int ngpu;
    int used;                /* GPUs with at least one session */
    double *unassigned;      /* per session: req/s the plan could not place */
    int nsess;
} nx_plan;

void nx_plan_init(nx_plan *p, int ngpu, int nsess);
void nx_plan_free(nx_plan *p);
void nx_plan_clear(nx_plan *p);           /* empty every GPU, zero unassigned */
void nx_plan_copy(nx_plan *dst, const nx_plan *src); /* dst must be init'ed */
nx_alloc *nx_plan_add(nx_plan *p, int gpu, int session, int batch, double rate,
                      double throughput);
void nx_plan_count_used(nx_plan *p);
/* Total planned throughput (sum of route weights) of a session. */
double nx_plan_session_throughput(const nx_plan *p, int session);

/* Latency helpers (µs). */
/* l(b): with no_overlap, including the batch's ⌈b/cores⌉ rounds of CPU. */
double nx_plan_lat(const nx_place_ctx *c, const nx_profile *prof, int b);
double nx_plan_budget(const nx_place_ctx *c, const nx_sess_spec *s);
/* Largest b with 2*l(b) <= budget (the saturated rule), 0 if even b=1 fails. */
int nx_plan_sat_batch(const nx_place_ctx *c, const nx_sess_spec *s);
/* The saturated batch lowered until its memory fits on a GPU, 0 if none. */
int nx_plan_sat_batch_mem(const nx_place_ctx *c, const nx_sess_spec *s);
/* Check a placement call's arguments: NX_ERR_INVAL for a session without a
 * profile, an id out of range, a negative or non-finite rate, or more GPUs or
 * sessions than the plan holds. */
int nx_plan_check_ctx(const nx_place_ctx *ctx, const nx_plan *out);
/* Single-GPU peak throughput of a session under the saturated rule (req/s). */
double nx_plan_max_throughput(const nx_place_ctx *c, const nx_sess_spec *s);
/* The most req/s of session s one GPU's node may be planned at, a share
 * `fill` of its cores (fill·cores·1e6 / cpu_us); INFINITY when the cores are
 * not modelled or the session costs no CPU. */
double nx_plan_cpu_rate(const nx_place_ctx *c, const nx_sess_spec *s, double fill);

/* Placement policy: fill `out` (already init'ed with ctx->ngpus GPUs and
 * ctx->nsess sessions, and cleared) from the sessions in `ctx`. Must be
 * deterministic. Load that does not fit in ctx->ngpus GPUs goes to
 * out->unassigned. Returns 0, or a negative nx_err. */
typedef struct nx_placement_ops {
    const char *name;
    const char *summary;
    int (*place)(const nx_place_ctx *ctx, nx_plan *out);
} nx_placement_ops;

#endif
