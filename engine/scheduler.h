/* scheduler.h — the global scheduler state machine.
 *
 * Folds per-session request counts from frontends into EWMAs, decides when an
 * epoch runs (every `epoch_s`, or after `min_epoch_s` when a session's rate
 * leaves [low, high] x its planned throughput, as in Nexus), asks the placement
 * policy for a plan, maps the plan onto physical GPUs so that sessions stay
 * where they were when possible, and pushes model tables to backends and
 * routes to frontends.
 *
 * Apps with several stages have their SLO split among the stages (split.h):
 * at every epoch the split is recomputed from the measured per-stage rates
 * (which carry the fan-outs), and adopted — the stage sessions re-registered
 * with their new SLOs — when it needs at least `split_gain` fewer GPUs than
 * the current one (the original Nexus never wired its DP into scheduling).
 *
 * Inputs: nx_scheduler_recv() for RATES; its own beacon timer. Outputs: TABLE
 * and ROUTES messages; on_epoch() after each plan. */
#ifndef NX_SCHEDULER_H
#define NX_SCHEDULER_H

#include "ops.h"
#include "msg.h"
#include "plan.h"

/* After each epoch: the plan, each session's planned throughput and SLO
 * (its stage budget). */
typedef void (*nx_epoch_fn)(void *ctx, const nx_plan *plan, const double *tput,
                            const double *slo_us, nx_time now, const char *why);

typedef enum nx_split_mode {
    NX_SPLIT_DP = 0,     /* Nexus's DP, re-run every epoch */
    NX_SPLIT_EVEN,       /* the paper's baseline */
} nx_split_mode;

typedef struct nx_scheduler_cfg {
    const nx_session *sessions;
    int nsess;
    int ngpu;
    int nfrontends;
    int first_frontend_node;   /* frontends are nodes first..first+nfrontends-1 */
    double gpu_mem_mb;
    double net_allowance_us;   /* subtracted from SLOs when planning */
    int cpu_cores;             /* per backend node, as the backends have (0: unlimited) */
    bool no_overlap;           /* the backends' GPUs wait for pre/post (needs cpu_cores) */
    const nx_placement_ops *placement;
    nx_sched_params p;
    const nx_app *apps;        /* the apps' DAGs */
    int napps;
    const int *app_sess;       /* app a's stage v is session app_sess[a] + v */
    nx_split_mode split;
    double keepalive_timeout_s;/* a backend silent this long is dead (0: never) */
    nx_epoch_fn on_epoch;
    void *on_epoch_ctx;
} nx_scheduler_cfg;

/* Sessions that share a model prefix and an SLO, planned as one. */
typedef struct nx_prefix_unit {
    int group;
    double slo_us;
    int *members;              /* session ids */
    int n;
    double rate, rate_floor;
    nx_profile prof;           /* the unit's latency and memory, rebuilt every epoch */
} nx_prefix_unit;

typedef struct nx_scheduler {
    nx_env *env;
    nx_scheduler_cfg cfg;
    nx_plan plan;              /* current, on physical GPUs (prefix units as sessions) */
    nx_plan next;              /* scratch: the policy's output */
    nx_plan mapped;            /* scratch: next after mapping onto GPUs */
    nx_plan eplan;             /* current, in real sessions (units expanded) */
    nx_plan enext;             /* scratch: mapped, expanded */
    nx_prefix_unit *units;     /* up to nsess */
    int nunits;
    int *unit_of;              /* per session: its unit, or -1 */
    double *plan_rate_floor;   /* per session: the rate planned for, at least 0.1 */
    nx_sess_spec *specs;
    double *ewma;              /* nsess x nfrontends */
    uint8_t *seen;             /* nsess x nfrontends: EWMA initialised */
    double *rate;              /* per session: sum of EWMAs at the last beacon */
    double *plan_rate;         /* per session: the rate the current plan is for */
    int *hist;                 /* per session: beacons with a rate measured */
    double *tput;              /* per session: planned throughput of the current plan */
    double *budget;            /* per session: current SLO (stage budget), µs */
    uint64_t splits;           /* epochs that adopted a new split */
    uint8_t *alive;            /* per GPU */
    uint8_t *unconfirmed;      /* per GPU: alive on a restored state's word, no keep-alive
                                  heard since (sched_state.h) */
    nx_time *last_seen;        /* per GPU: last keep-alive */
    int nalive;
    uint64_t failures, recoveries;
    uint64_t restored_back, restored_lost; /* unconfirmed GPUs confirmed, declared dead */
    double alpha;
    nx_time last_epoch;
    uint64_t epoch;
    nx_event beacon;
    bool stopped;
    uint64_t epochs, triggers;
    int *map_tmp;              /* scratch for mapping */
} nx_scheduler;

void nx_scheduler_init(nx_scheduler *sc, nx_env *env, const nx_scheduler_cfg *cfg);
void nx_scheduler_free(nx_scheduler *sc);
/* Plan from each session's est_rate, push it, start the beacon timer. */
int nx_scheduler_start(nx_scheduler *sc);
void nx_scheduler_stop(nx_scheduler *sc);
/* A backend is known dead now (its connection ended): as the keep-alive
 * timeout would, mark it, tell the frontends and re-plan at once. */
int nx_scheduler_gpu_down(nx_scheduler *sc, int gpu);
/* Before nx_scheduler_start(): whether a GPU slot has a backend (every slot
 * is alive by default). Also refreshes its keep-alive clock, and settles a
 * GPU an imported state left unconfirmed (sched_state.h) either way. */
int nx_scheduler_set_alive(nx_scheduler *sc, int gpu, bool alive);
/* Before nx_scheduler_start(): GPU slot g has a backend not heard from since
 * `since` (one a restored state names, sched_state.h): alive but unconfirmed
 * until its first keep-alive, declared dead if none comes within the
 * keep-alive timeout of `since`. */
int nx_scheduler_set_unconfirmed(nx_scheduler *sc, int gpu, nx_time since);
/* A frontend is gone: forget its rate estimates (frontend index f). */
int nx_scheduler_frontend_gone(nx_scheduler *sc, int f);
void nx_scheduler_recv(nx_scheduler *sc, nx_msg *m);

#endif
