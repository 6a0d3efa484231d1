/* sim.h — the discrete-event core: virtual clock, event queue ordered by
 * (time, seq), simulated network and simulated GPUs, behind the engine's env
 * vtable.
 *
 * Events live in a binary min-heap keyed by (time, seq). Messages with the
 * constant network delay (no jitter) are due in the order they were sent, so
 * they bypass the heap through a FIFO that is merged with it at pop time; the
 * order of events is exactly the (time, seq) order either way.
 *
 * GPU batch latency is drawn from a Gamma distribution with the profile's mean
 * and standard deviation at that batch size (shape (mean/std)^2, scale
 * std^2/mean): positive, right-skewed like measured kernel times, and exact
 * to the profile's first two moments. A std of 0 gives the mean exactly.
 * Batches on one GPU run one after another unless nx_sim_share() makes the GPUs
 * processor-sharing (concurrent model servers, slowed down by interference). */
#ifndef NX_SIM_H
#define NX_SIM_H

#include "env.h"
#include "heap.h"
#include <gsl/gsl_rng.h>

typedef void (*nx_deliver_fn)(void *ctx, int dst, nx_msg *m);
/* The slowdown of batch b while k batches (itself included) share its GPU. */
typedef double (*nx_slowdown_fn)(void *ctx, const nx_batch *b, int k);

typedef struct nx_ps_gpu nx_ps_gpu;

typedef struct nx_sim {
    nx_env env;
    nx_time now;
    uint64_t seq;
    nx_heap heap;             /* engine/heap.h */
    nx_event **fifo;          /* constant-delay messages, due in order */
    size_t fhead, flen, fcap;
    nx_time net_delay;
    nx_time net_jitter;
    nx_time batch_overhead;   /* added to every batch's latency (cluster.batch_overhead_us) */
    double switch_overhead;   /* cluster.switch_overhead: a batch whose model (profile) differs
                                 from the previous batch's on its GPU runs 1 + this times longer */
    const nx_profile **last_prof; /* per GPU: the profile its last batch ran (nlast of them) */
    int nlast;
    gsl_rng *rng;             /* network jitter and GPU latency */
    nx_deliver_fn deliver;
    void *deliver_ctx;
    uint64_t events;
    /* concurrent GPUs (nx_sim_share): NULL = a GPU runs what it is given alone */
    nx_ps_gpu *ps;
    int nps;
    nx_slowdown_fn slowdown;
    void *slowdown_ctx;
} nx_sim;

void nx_sim_init(nx_sim *s, uint64_t seed, double net_delay_us, double net_jitter_us,
                 nx_deliver_fn deliver, void *ctx);
void nx_sim_free(nx_sim *s);
/* Pop and fire the next event if it is due at or before `until`; returns
 * false when there is none. */
bool nx_sim_step(nx_sim *s, nx_time until);
/* Call fn for every message still in flight (at the end of a run), so the
 * owner can free what it must; the queue is left empty. */
void nx_sim_discard(nx_sim *s, void (*fn)(void *ctx, nx_msg *m), void *ctx);
/* Let batches share GPUs 0..ngpu-1: a batch whose drawn (alone) latency is L
 * needs L of work; while k batches are on its GPU it does 1/slowdown(k) of
 * work per unit of time (processor sharing, each batch at its own slowdown),
 * and every arrival or departure re-times the others. Its batch->latency is
 * then the time it really took. Without this call the GPUs are exclusive (a
 * batch's latency is its drawn one, whatever else runs). */
void nx_sim_share(nx_sim *s, int ngpu, nx_slowdown_fn fn, void *ctx);

/* A model switch costs: on each of the ngpu GPUs, a batch whose profile differs from the one
 * the GPU's previous batch ran (suffix parts aside: a prefix group's batch is its prefix) takes
 * 1 + frac times its drawn latency (cluster.switch_overhead; the first batch on a GPU too).
 * Without this call (or frac 0) batches cost what their profiles say. */
void nx_sim_switch_cost(nx_sim *s, int ngpu, double frac);
/* Draw a batch latency (ns) from the profile (exposed for tests). */
nx_time nx_sim_batch_latency(nx_sim *s, const nx_profile *p, int b);

#endif
