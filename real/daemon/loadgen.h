/* loadgen.h — the load generator of a real cluster, as a library: nexus-loadgen
 * runs it once; nexus-cluster runs it once per policy combination on the
 * cluster it started, with hooks that kill and restart backends mid-run.
 *
 * It sends, open loop, exactly the client queries that nexus-sim submits for
 * the same experiment, scale and seed (engine/workload.h's arrival iterator,
 * the one the simulator runs), as KServe v2 ModelInfer calls against the
 * frontends (app a on frontend a mod F), and records every query: arrival
 * (its scheduled time), deadline, finish, status, GPU, batch. The result is an
 * nx_run_result (engine/result.h), so io/report.c writes the same summary.json
 * and requests.csv as for a simulated run; with the scheduler's address it
 * also holds the plan timeline, the final plan, per-backend utilisation and
 * the failures the scheduler saw. The simulator's prediction of the same
 * queries is nexus-sim's own run (nexus-cluster runs it into DIR/sim/).
 *
 * Status of a query: OK or late by the client's own clock against the app's
 * SLO; an error answer is dropped; no answer by 2 x SLO + 2 s is unanswered
 * (lost: counted as late, as the simulator counts requests it never answered). */
#ifndef NX_LOADGEN_H
#define NX_LOADGEN_H

#include "catalog.h"
#include "loop.h"
#include "rpc.h"
#include "result.h"

typedef struct nx_lg_hook {
    double at_s;              /* seconds after the run's t = 0 */
    void (*fn)(void *ctx, nx_time now);
    void *ctx;
} nx_lg_hook;

typedef struct nx_loadgen_opts {
    const nx_catalog *cat;    /* experiment, policy, scale */
    uint64_t seed;
    nx_loop *loop;            /* created by the caller, before any thread */
    const char *const *frontends;
    int nfrontends;
    const char *scheduler;    /* NULL: no re-plan at t = 0, no plan or failures */
    int payload;              /* FP32 values per request (16 by default; 0: no input; < 0:
                                 each app's model input, its profile's input_shape) */
    double ready_timeout_s;   /* waiting for the frontends (default 30) */
    const nx_lg_hook *hooks;
    int nhooks;
    bool progress;            /* a progress line on stderr */
    bool *interrupted;        /* set by the caller's signal handler: stop sending now */
    const nx_rpc_cfg *rpc_cfg;/* TLS and token for its calls (NULL: plaintext, none) */
} nx_loadgen_opts;

typedef struct nx_lg_failure {
    int kind;                 /* 1 backend, 2 frontend */
    int slot;
    char how[24];
    double t_s;               /* detected, seconds after t = 0 */
    double silent_ms;         /* last heard -> detected */
    double replan_ms;         /* detected -> new tables and routes sent (-1: none) */
    nx_time detected_ns;      /* the scheduler's clock */
} nx_lg_failure;

typedef struct nx_loadgen_result {
    nx_run_result run;        /* the real run, in the simulator's shape */
    uint64_t wrong_outputs;   /* answers whose output does not match the input's checksum */
    uint64_t rejected;        /* RESOURCE_EXHAUSTED answers (of dropped) */
    uint64_t unanswered;      /* no answer at all (of late) */
    double lag_p99_us, lag_max_us;        /* sending behind schedule */
    /* over the queries answered in the measured window: */
    double added_p50_ms, added_p99_ms;    /* client latency minus executor time */
    double exec_p50_ms, exec_p99_ms;      /* executor time of answered queries */
    double server_p50_ms, server_p99_ms;  /* frontend arrival -> answer, as it reports: the
                                             simulator's definition of latency */
    nx_lg_failure *failures;
    int nfailures;
    int *registrations;       /* per backend slot (max_backends entries) */
    uint64_t *served;         /* per backend slot, from its last keep-alive */
    int nslots;
#define NX_LG_MAX_FRONTENDS 64
    int fe_registrations[NX_LG_MAX_FRONTENDS];   /* per frontend slot */
    uint64_t fe_answered[NX_LG_MAX_FRONTENDS];   /* queries answered, its last keep-alive */
    int nfe_slots;
    double wall_s;
    /* filled by the caller that killed backends (nexus-cluster), for real.json */
#define NX_LG_MAX_KILLS 16
    int kill_slot[NX_LG_MAX_KILLS];
    nx_time kill_ns[NX_LG_MAX_KILLS];   /* CLOCK_MONOTONIC, the scheduler's host */
    int nkills;
} nx_loadgen_result;

int nx_loadgen_run(const nx_loadgen_opts *o, nx_loadgen_result *res, nx_errbuf *eb);
void nx_loadgen_result_free(nx_loadgen_result *res);

/* Write DIR/real.json: the real figures and the extras above, for each of n
 * results (label = policy). */
int nx_loadgen_write_json(const char *dir, const nx_catalog *cat,
                          const nx_loadgen_result *const *res, const char *const *labels,
                          int n, nx_errbuf *eb);

#endif
