/* msg.h — control-plane messages between the engine's state machines.
 *
 * Each is one allocation (nx_*_msg_new), owned by the receiver after nx_send();
 * the receiver frees it with free(). QUERY and REPLY are the request itself
 * (nx_req embeds its nx_msg) and are never freed by the engine. In real mode
 * real/rpc/ serialises these same structs. */
#ifndef NX_MSG_H
#define NX_MSG_H

#include "env.h"

typedef struct nx_table_entry {
    int session;
    int batch;
    double slo_us;      /* the session's current SLO (its stage budget) */
} nx_table_entry;

/* scheduler -> backend: the GPU's model table. */
typedef struct nx_table_msg {
    nx_msg m;
    uint64_t epoch;
    double duty_us;
    int n;
    nx_table_entry e[];
} nx_table_msg;

/* scheduler -> frontend: every session's routes (GPU, weight) and current
 * SLO (stage budget). Session s's routes are gpu[off[s] .. off[s+1]) with
 * weights w[...]. */
typedef struct nx_routes_msg {
    nx_msg m;
    uint64_t epoch;
    int nsess;
    int *off;     /* nsess + 1, points into this allocation */
    int *gpu;
    double *w;
    double *slo_us; /* nsess */
} nx_routes_msg;

/* frontend -> scheduler: per-session request counts, one per beacon interval
 * since the last report. counts[k * nsess + s] is interval k of session s. */
typedef struct nx_rates_msg {
    nx_msg m;
    int frontend;     /* frontend index (0..F-1) */
    int nsess;
    int nsamples;
    uint32_t counts[];
} nx_rates_msg;

/* frontend -> backend: a batch a central dispatcher formed; the backend runs
 * it as one batch. The message is freed by the receiver, the calls are not. */
typedef struct nx_batch_msg {
    nx_msg m;
    int n;
    nx_req *reqs[];
} nx_batch_msg;

/* backend -> scheduler keep-alive, scheduler -> frontend GPU down. */
typedef struct nx_gpu_msg {
    nx_msg m;
    int gpu;
} nx_gpu_msg;

nx_gpu_msg *nx_gpu_msg_new(int type, int gpu);
nx_batch_msg *nx_batch_msg_new(int n);
nx_table_msg *nx_table_msg_new(int n);
nx_routes_msg *nx_routes_msg_new(int nsess, int nroutes);
nx_rates_msg *nx_rates_msg_new(int nsess, int nsamples);

#endif
