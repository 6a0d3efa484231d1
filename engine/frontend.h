/* frontend.h — the frontend state machine: takes client requests, stamps their
 * end-to-end deadline, routes each to a backend with the load-balancing policy,
 * classifies replies (good, late, dropped), and reports per-session request
 * counts to the scheduler.
 *
 * Inputs: nx_frontend_submit() for a client request; nx_frontend_recv() for
 * REPLY and ROUTES messages; its own beacon timer. Output: QUERY and RATES
 * messages, and the on_done callback once per request (exactly once). */
#ifndef NX_FRONTEND_H
#define NX_FRONTEND_H

#include "ops.h"
#include "msg.h"

typedef void (*nx_req_done_fn)(void *ctx, nx_req *r);

typedef struct nx_frontend_cfg {
    int index;                  /* 0..F-1; its node id is set by the caller */
    int node;
    const nx_session *sessions;
    int nsess;
    int ngpu;
    const nx_lb_ops *lb;
    uint64_t seed;
    double beacon_s;            /* count interval */
    double report_s;            /* report period (a multiple of beacon_s) */
    nx_req_done_fn on_done;
    void *on_done_ctx;
} nx_frontend_cfg;

typedef struct nx_frontend {
    nx_env *env;
    nx_frontend_cfg cfg;
    nx_route *routes;           /* per session */
    int *outstanding;           /* per GPU: requests in flight */
    uint64_t rng;
    uint32_t *cur;              /* per session: count in the current interval */
    uint32_t *pending;          /* nsamples x nsess counts not yet reported */
    int npending, cappending;
    int ticks_per_report, tick;
    nx_event beacon;
    bool stopped;
    uint64_t epoch;             /* of the last routes applied */
    uint64_t submitted, no_route;
} nx_frontend;

void nx_frontend_init(nx_frontend *fe, nx_env *env, const nx_frontend_cfg *cfg);
void nx_frontend_free(nx_frontend *fe);
/* Start the beacon timer (rate counting and reports). */
void nx_frontend_start(nx_frontend *fe);
/* Stop reporting (the timer is not re-armed). */
void nx_frontend_stop(nx_frontend *fe);
/* A client request arrived now: r->session and r->id set by the caller. */
void nx_frontend_submit(nx_frontend *fe, nx_req *r);
void nx_frontend_recv(nx_frontend *fe, nx_msg *m);

#endif
