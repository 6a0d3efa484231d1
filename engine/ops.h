/* ops.h — the session catalog every node shares, and the two per-request policy
 * interfaces the engine's state machines call: batching (on backends) and load
 * balancing (on frontends). Implementations live in policies/; the engine
 * never names one. Placement's interface is in plan.h.
 *
 * Latency estimates that batching policies use come from nx_bsess_lat():
 * multiplier * (mean(b) + std(b)) + post-processing + the reply's network
 * trip, in ns (+ the batch's CPU rounds when the GPU waits for them), from
 * latency.h's nx_latency_est_us(). */
#ifndef NX_OPS_H
#define NX_OPS_H

#include "env.h"
#include "rq.h"
#include "experiment.h"
#include "latency.h"

/* A session: (model, SLO). The unit the scheduler places. Read-only, shared. */
typedef struct nx_session {
    int id;
    char name[NX_NAME_MAX];   /* app, or app/stage for DAG apps */
    int app, stage;
    const nx_profile *prof;   /* the whole model */
    int group;                /* prefix-sharing group (-1: none): its sessions with the same
                                 SLO are planned as one and batched together */
    const nx_profile *prefix; /* group members: the shared prefix's profile ... */
    const nx_profile *suffix; /* ... and this model's suffix */
    double slo_us;     /* the initial SLO: the app's, or the stage's initial budget */
    double est_rate;   /* the rate to plan for before any measurement (req/s) */
} nx_session;

/* CPU time (µs of one core) a request of session s costs its backend node:
 * its pre-processing job (pre = true) or its post-processing job. The backend
 * charges exactly these; the scheduler plans each GPU's node for their sum
 * (nx_sess_spec.cpu_us), so the two cannot disagree. */
static inline double nx_session_cpu_us(const nx_session *s, bool pre)
{
    return pre ? s->prof->pre_us : s->prof->post_us;
}

/* ---- batching -------------------------------------------------------------- */

/* A backend's state for one session: its queue, its planned batch, and a few
 * words of policy state. */
typedef struct nx_bsess {
    const nx_session *s;      /* the session (a group slot: its first member) */
    const nx_profile *prof;   /* what a batch runs: the model, or a group's prefix */
    const nx_profile *suffix; /* a group slot: a member's suffix (latency estimates) */
    int group;                /* -1, or the prefix group this slot batches together */
    nx_rq q;
    int target_batch;    /* from the plan (the scheduler's batch size) */
    double slo_us;       /* the session's current SLO, from the plan */
    bool planned;        /* in the current model table (false: draining) */
    double multiplier;
    int serial_cores;    /* > 0: no CPU/GPU overlap; the batch's pre- and post-processing
                            run on this many cores while the GPU waits */
    nx_time reply_ns;    /* the reply's trip back to the frontend */
    const nx_batch_params *bp;
    void *state;         /* the batching policy's own (its init allocates, its fini frees) */
    uint64_t served, dropped;
} nx_bsess;

/* Estimated time from now until the reply of a batch of b started now is back
 * at the frontend (ns): run, post-process, return trip. b is clamped to the
 * profile's max batch. */
static inline nx_time nx_bsess_lat(const nx_bsess *bs, int b)
{
    b = b > bs->prof->max_batch ? bs->prof->max_batch : b < 1 ? 1 : b;
    /* the estimate at multiplier 1, the multiplier applied once to prefix +
     * suffix: mult * (a + b) rounds differently from mult * a + mult * b, and
     * the golden runs were made this way */
    double us = nx_latency_est_us(bs->prof, b, 1.0);
    if (bs->suffix) /* prefix on the whole batch, then suffixes (bounded by one at b) */
        us += nx_latency_est_us(bs->suffix, b, 1.0);
    nx_time t = NX_US(bs->multiplier * us + bs->s->prof->post_us) + bs->reply_ns;
    if (bs->serial_cores > 0) { /* no overlap: ceil(b / cores) rounds of pre and of post */
        int rounds = (b + bs->serial_cores - 1) / bs->serial_cores;
        t += NX_US(rounds * bs->s->prof->pre_us + (rounds - 1) * bs->s->prof->post_us);
    }
    return t;
}

/* Called by a policy for each request it drops. */
typedef void (*nx_drop_fn)(void *ctx, nx_req *r);

typedef struct nx_batching_ops {
    const char *name;
    const char *summary;
    /* true: batches are formed centrally at the frontend, deferred within
     * the window the earliest deadline allows, and dispatched whole to the
     * session's first free GPU (Symphony); the backend runs them as they come */
    bool central;
    /* Set up bs->state when the session enters a backend's table, and free it
     * when the session leaves (both optional: NULL for a stateless policy). */
    void (*init)(nx_bsess *bs);
    void (*fini)(nx_bsess *bs);
    /* Form the next batch at `now`: move up to `max` requests from bs->q to
     * out[] and return how many. Requests that cannot make their deadline may
     * be dropped through drop(). Returning 0 with *wake < NX_TIME_NEVER asks to
     * be asked again at *wake (a batching timeout). */
    int (*form)(nx_bsess *bs, nx_time now, nx_req **out, int max, nx_drop_fn drop,
                void *drop_ctx, nx_time *wake);
    /* Feedback after a batch of `size` ran for `latency` (may be NULL). */
    void (*done)(nx_bsess *bs, int size, nx_time latency);
} nx_batching_ops;

/* ---- load balancing ------------------------------------------------------------ */

/* A session's routes on a frontend: GPUs with weights (planned throughput),
 * and the policy's state. */
typedef struct nx_route {
    int n;
    int *gpu;            /* sorted ascending */
    double *w;
    double *cum;         /* cum[i] = w[0] + ... + w[i] (weighted random: binary search) */
    double wsum, wmin;
    double wmax;
    void *state;         /* the load balancer's own (its reset sets it up, its fini frees) */
} nx_route;

typedef struct nx_lb_ops {
    const char *name;
    const char *summary;
    /* Pick an index into r->gpu for the next request. `outstanding[g]` is the
     * number of requests this frontend has in flight at GPU g; `rng` is the
     * frontend's PRNG state (use nx_rng_uniform). */
    int (*pick)(nx_route *r, const int *outstanding, uint64_t *rng);
    /* The route's GPUs or weights changed: (re)set r->state for its r->n
     * entries; and free it. Both optional (NULL: a stateless policy). */
    void (*reset)(nx_route *r);
    void (*fini)(nx_route *r);
} nx_lb_ops;

/* splitmix64-based uniform in [0,1): deterministic, no globals. */
static inline double nx_rng_uniform(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    z ^= z >> 31;
    return (double)(z >> 11) * (1.0 / 9007199254740992.0);
}

#endif
