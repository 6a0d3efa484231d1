/* backend.h — the backend state machine: one GPU, one deadline-ordered queue per
 * session, batches formed by the batching policy, sessions served round-robin,
 * model tables applied from the scheduler's plans.
 *
 * Inputs: nx_backend_recv() for QUERY and TABLE messages; the env fires the
 * batch and wake-up events it armed. Outputs: REPLY messages (answered or
 * dropped: every request that reaches a backend gets a reply) and gpu_run(). */
#ifndef NX_BACKEND_H
#define NX_BACKEND_H

#include "ops.h"
#include "msg.h"

typedef struct nx_backend_cfg {
    int gpu;
    const nx_session *sessions;   /* the catalog */
    int nsess;
    const nx_batching_ops *batching;
    const nx_batch_params *bp;
    double multiplier;
    nx_time reply_ns;                  /* allowance for the reply's network trip */
    double keepalive_s;                /* keep-alive period to the scheduler (0: none) */
    nx_time window_start, window_end;  /* utilization is measured inside this */
} nx_backend_cfg;

typedef struct nx_backend {
    nx_env *env;
    nx_backend_cfg cfg;
    int node;
    nx_bsess *slots;      /* sessions in the table (planned) or still draining */
    int nslots, capslots;
    int cursor;           /* round robin position */
    bool busy;
    nx_batch batch;
    nx_req **buf;
    int bufcap;
    nx_event wake;
    bool wake_armed;
    double duty_us;
    uint64_t table_epoch;
    nx_event keepalive;
    bool keepalive_armed;
    bool dead;                 /* killed: ignores everything until revived */
    uint64_t life;             /* incremented by kill: stale events are ignored */
    uint64_t batch_life;       /* life of the running batch */
    /* stats */
    nx_time busy_in_window;
    uint64_t batches, served, dropped, no_session;
} nx_backend;

void nx_backend_init(nx_backend *be, nx_env *env, const nx_backend_cfg *cfg);
void nx_backend_free(nx_backend *be);
/* Deliver a message (QUERY or TABLE). Takes ownership of TABLE messages. */
void nx_backend_recv(nx_backend *be, nx_msg *m);
/* Requests still queued (for accounting at the end of a run). */
uint32_t nx_backend_queued(const nx_backend *be);
/* Start the keep-alive timer (the first keep-alive registers the backend). */
void nx_backend_start(nx_backend *be);
/* Failure injection: the process dies (its queued and running requests are
 * lost, as in a crash; their frontends recover them) / restarts empty and
 * registers again. */
void nx_backend_kill(nx_backend *be);
void nx_backend_revive(nx_backend *be);

#endif
