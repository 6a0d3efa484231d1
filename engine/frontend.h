/* frontend.h — the frontend state machine: takes client queries, runs each
 * query's app as a DAG of model calls (a stage's calls go out when its
 * parents' replies arrive), stamps every call with its deadline, routes it to
 * a backend with the load-balancing policy, classifies the query when its
 * last stage finishes (good, late, dropped), and reports per-session call
 * counts to the scheduler.
 *
 * Deadlines and slack: a call of stage v must be answered by
 * arrival + C_v, C_v = max over parents C_p + budget_v (the stage budgets the
 * scheduler's SLO split chose). Budget a stage leaves unused therefore
 * extends the deadlines of the stages after it (Nexus's slack propagation),
 * and the last stage's deadline is the app's SLO. A query is good only if it
 * finishes within the app SLO and none of its calls was dropped.
 *
 * Inputs: nx_frontend_submit() for a client query; nx_frontend_recv() for
 * REPLY, ROUTES and GPU_DOWN messages; its own beacon timer. Output: QUERY and
 * RATES messages, and on_done once per query (exactly once). With a central
 * batching policy (cfg.central) the calls go to the frontend's dispatcher
 * instead (dispatch.h), which sends them as whole batches (BATCH messages). */
#ifndef NX_FRONTEND_H
#define NX_FRONTEND_H

#include "dispatch.h"
#include "msg.h"
#include "ops.h"

typedef void (*nx_query_done_fn)(void *ctx, nx_query *q);

typedef struct nx_frontend_cfg {
    int index;                  /* 0..F-1 */
    int node;                   /* its node id */
    const nx_session *sessions;
    int nsess;
    const nx_app *apps;         /* the apps' DAGs (stages with parents and fan-outs) */
    int napps;
    const int *app_sess;        /* app a's stage v is session app_sess[a] + v */
    const double *fanout_trace; /* values for trace fan-outs (cycled), or NULL */
    size_t nfanout_trace;
    int ngpu;
    const nx_lb_ops *lb;
    uint64_t seed;
    double beacon_s;            /* count interval */
    double report_s;            /* report period (a multiple of beacon_s) */
    nx_query_done_fn on_done;
    void *on_done_ctx;
    /* central dispatch (a batching policy with `central`, e.g. Symphony's
     * deferred batching): calls wait in the frontend's dispatcher
     * (dispatch.h) and go out as whole batches */
    bool central;
    double multiplier;          /* profile multiplier for latency estimates */
    nx_time net_ns;             /* one-way network time to a backend (delay + jitter) */
    nx_time dispatch_slack_ns;  /* dispatch this much before the latest start */
} nx_frontend_cfg;

typedef struct nx_frontend {
    nx_env *env;
    nx_frontend_cfg cfg;
    nx_route *routes;           /* per session */
    double *budget_us;          /* per session: current stage budget */
    double *cum_us;             /* per session: cumulative budget up to its stage */
    int *outstanding;           /* per GPU: calls in flight */
    uint64_t rng;
    size_t fanout_cursor;
    uint32_t *cur;              /* per session: calls in the current interval */
    uint32_t *pending;          /* nsamples x nsess counts not yet reported */
    int npending, cappending;
    int ticks_per_report, tick;
    nx_event beacon;
    bool stopped;
    uint64_t epoch;             /* of the last routes applied */
    /* the call pool */
    nx_req *free_calls;
    nx_req **chunks;
    int nchunks;
    uint64_t next_call_id;
    nx_dispatch dispatch;       /* central dispatch (zeroed unless cfg.central) */
    /* stats */
    uint64_t submitted, calls, no_route; /* central dispatch's drops: dispatch.drops */
    uint64_t retried, failed_over; /* calls caught on a dead backend: sent again / dropped */
} nx_frontend;

void nx_frontend_init(nx_frontend *fe, nx_env *env, const nx_frontend_cfg *cfg);
void nx_frontend_free(nx_frontend *fe);
/* Start the beacon timer (rate counting and reports). */
void nx_frontend_start(nx_frontend *fe);
/* Stop reporting (the timer is not re-armed). */
void nx_frontend_stop(nx_frontend *fe);
/* A client query arrived now: q->app and q->id set by the caller; the
 * frontend fills the rest. */
void nx_frontend_submit(nx_frontend *fe, nx_query *q);
void nx_frontend_recv(nx_frontend *fe, nx_msg *m);

#endif
