/* backend.h — the backend state machine: one GPU, one deadline-ordered queue per
 * session, batches formed by the batching policy, sessions served round-robin,
 * model tables applied from the scheduler's plans.
 *
 * CPU: with cfg.cpu_cores >= 1 a request's pre- and post-processing are jobs
 * on the node's cores, served first come first served; with cfg.no_overlap
 * they are done per batch while the GPU waits. With cfg.concurrent every
 * session runs its own batches as soon as they form, several at once on the
 * one GPU (TF Serving, Clipper), instead of Nexus's round robin.
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
    int cpu_cores;        /* cores for pre/post-processing, served FIFO (0: unlimited, each
                             request's pre/post a pure delay) */
    bool no_overlap;      /* the GPU waits for its batch's pre- and post-processing on the
                             cores (the paper's -OL; needs cpu_cores >= 1) */
    bool concurrent;      /* one model server per session: their batches run on the GPU at
                             the same time (the env models the interference) */
} nx_backend_cfg;

typedef struct nx_backend nx_backend;

/* A batch in progress: its CPU phases (no overlap) and its GPU run. Pooled
 * per backend, never moved (the env holds b.ev while it runs). */
typedef struct nx_brun {
    nx_batch b;
    nx_req **buf;         /* b.reqs */
    int cap;
    nx_backend *be;
    uint64_t life;        /* the backend's life it started in */
    int cpu_left;         /* CPU jobs of the current phase still to finish (no overlap) */
    bool in_use, on_gpu;
} nx_brun;

/* A job for a CPU core: a request's pre- or post-processing. */
typedef struct nx_cpujob {
    nx_req *r;
    nx_brun *run;         /* no overlap: the batch the job belongs to */
    int kind;
    nx_time cost;
} nx_cpujob;

typedef struct nx_core {
    nx_event ev;
    nx_backend *be;
    nx_cpujob job;
    uint64_t life;
    bool busy;
} nx_core;

struct nx_backend {
    nx_env *env;
    nx_backend_cfg cfg;
    int node;
    nx_bsess *slots;      /* sessions in the table (planned) or still draining */
    int nslots, capslots;
    int cursor;           /* round robin position */
    bool busy;            /* exclusive: a batch is in progress */
    nx_brun **runs;       /* batches in progress or free (pool) */
    int nruns;
    uint8_t *running;     /* per session id: its slot has a batch in progress */
    int gpu_running;      /* batches on the GPU now */
    nx_time gpu_since;    /* since when the GPU has had one */
    nx_core *cores;       /* cpu_cores of them */
    int cores_idle;
    nx_cpujob *cq;        /* jobs waiting for a core, FIFO ring */
    size_t cq_head, cq_len, cq_cap;
    nx_event wake;
    bool wake_armed;
    double duty_us;
    uint64_t table_epoch;
    nx_event keepalive;
    bool keepalive_armed;
    bool dead;                 /* killed: ignores everything until revived */
    uint64_t life;             /* incremented by kill: stale events are ignored */
    /* stats */
    nx_time busy_in_window;    /* GPU time with at least one batch on it */
    nx_time cpu_in_window;     /* core time spent on pre/post-processing (cpu_cores >= 1) */
    uint64_t batches, served, dropped, no_session;
};

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
