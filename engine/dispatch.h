/* dispatch.h — central dispatch: the dispatcher a frontend runs for a
 * batching policy with `central` (Symphony's deferred batching,
 * policies/batch_deferred.c). Calls wait here, per session in deadline order,
 * and go to a backend as whole batches (NX_MSG_BATCH), as late as the waiting
 * sessions' deadlines allow, so that batches grow.
 *
 * The dispatcher works on its owner's routing state and never answers a call
 * itself: it reads the owner's routes and stage budgets, adds the batches it
 * sends to the owner's per-GPU count of calls in flight (the owner subtracts
 * replies), and hands every call it drops (status NX_REQ_DROPPED) to on_drop.
 * The owner tells it of new calls (nx_dispatch_push, then nx_dispatch_session),
 * new routes (nx_dispatch_routes) and replies (nx_dispatch_replied). Its only
 * other input is its own wake-up timers. */
#ifndef NX_DISPATCH_H
#define NX_DISPATCH_H

#include "msg.h"
#include "ops.h"
#include "rq.h"

typedef void (*nx_dispatch_drop_fn)(void *ctx, nx_req *r);

typedef struct nx_dispatch_cfg {
    int node;                   /* the owner's node id: the batches' source */
    const nx_session *sessions;
    int nsess;
    int ngpu;
    double multiplier;          /* profile multiplier for latency estimates */
    nx_time net_ns;             /* one-way network time to a backend (delay + jitter) */
    nx_time slack_ns;           /* dispatch this much before the latest start */
    /* the owner's state, which outlives the dispatcher */
    const nx_route *routes;     /* per session: the GPUs it is routed to */
    const double *budget_us;    /* per session: its current stage budget */
    int *outstanding;           /* per GPU: the owner's calls in flight there */
    nx_dispatch_drop_fn on_drop;
    void *ctx;
} nx_dispatch_cfg;

typedef struct nx_dispatch_timer nx_dispatch_timer;

typedef struct nx_dispatch {
    nx_env *env;
    nx_dispatch_cfg cfg;
    nx_rq *cq;                  /* per session: calls waiting for a batch */
    uint64_t *gen;              /* per GPU: the live timer's generation */
    nx_time *armed;             /* per GPU: when the live timer fires (NEVER: none) */
    int *gsess_off, *gsess;     /* per GPU: the sessions routed to it (CSR) */
    nx_time *busy_until;        /* per GPU: when our batches there should end */
    nx_time *batch_run;         /* per session: run time of its largest batch */
    uint8_t *piped;             /* per GPU: a second batch is already on its way */
    nx_dispatch_timer *free_timers;
    nx_dispatch_timer **tchunks;
    int ntchunks;
    uint64_t drops, batches;    /* calls dropped here, batches sent */
} nx_dispatch;

void nx_dispatch_init(nx_dispatch *d, nx_env *env, const nx_dispatch_cfg *cfg);
/* Cancels its pending timers. Safe on a zeroed nx_dispatch. The calls still
 * waiting are the owner's (they come from its pool). */
void nx_dispatch_free(nx_dispatch *d);
/* Call r (of session r->session) waits for a batch. */
void nx_dispatch_push(nx_dispatch *d, nx_req *r);
/* Session s has new calls waiting: offer them to its GPUs (all dropped if it
 * has no route). */
void nx_dispatch_session(nx_dispatch *d, int s);
/* The owner's routes changed (after it rewrote cfg.routes). */
void nx_dispatch_routes(nx_dispatch *d);
/* A reply from GPU g was accounted for (outstanding[g] decremented): when
 * none of our calls is left there, g takes its next batch. */
void nx_dispatch_replied(nx_dispatch *d, int g);

#endif
