/* env.h — the engine's only window on the world: a small vtable implemented
 * once by the simulator (sim/) and once by the real daemons (real/).
 *
 *   now()              current time (virtual clock, or CLOCK_MONOTONIC)
 *   at(ev)             fire ev->fn(ev) at ev->time (event heap, or a timer)
 *   send(dst, msg)     deliver msg to node dst (after a simulated network delay,
 *                      or over gRPC); the receiver owns msg afterwards
 *   gpu_run(batch)     run a batch on the batch's GPU and fire batch->ev when
 *                      done (latency drawn from the profile, or a real executor)
 *   cancel(ev)         take a pending timer (armed with at()) back; false if it
 *                      was not pending. The engine's free functions cancel their
 *                      own timers, so an engine object can be freed while the
 *                      simulation or the daemon's loop goes on.
 *
 * Events are intrusive and owned by the caller: no allocation per event. An
 * event must not be re-armed while it is pending. Ties in time fire in the
 * order the events were armed. */
#ifndef NX_ENV_H
#define NX_ENV_H

#include "nx.h"
#include "profile.h"

typedef struct nx_event nx_event;
typedef void (*nx_event_fn)(nx_event *ev);

struct nx_event {
    nx_time time;
    uint64_t seq;       /* set by the env when armed */
    nx_event_fn fn;
    void *ctx;          /* the env's or the owner's context, as the arming code wants */
};

/* Node addressing: the scheduler is node 0, backends are 1..G (GPU g is
 * node g+1), frontends follow. */
#define NX_NODE_SCHEDULER 0
static inline int nx_node_backend(int gpu) { return 1 + gpu; }

typedef enum nx_msg_type {
    NX_MSG_QUERY = 1,   /* frontend -> backend: one request (nx_req) */
    NX_MSG_REPLY,       /* backend -> frontend: the request, answered or dropped */
    NX_MSG_RATES,       /* frontend -> scheduler: per-session request counts */
    NX_MSG_TABLE,       /* scheduler -> backend: model table (sessions, batches, duty) */
    NX_MSG_ROUTES,      /* scheduler -> frontend: routes per session */
    NX_MSG_BATCH,       /* frontend -> backend: a batch formed centrally (nx_batch_msg) */
    NX_MSG_KEEPALIVE,   /* backend -> scheduler: alive (nx_gpu_msg); also registers */
    NX_MSG_GPU_DOWN,    /* scheduler -> frontend: a backend died (nx_gpu_msg) */
} nx_msg_type;

typedef struct nx_msg {
    nx_event ev;        /* used by the env to deliver it */
    int type;           /* nx_msg_type */
    int src, dst;
} nx_msg;

typedef struct nx_batch nx_batch;
typedef struct nx_env nx_env;

typedef struct nx_env_ops {
    nx_time (*now)(nx_env *env);
    void (*at)(nx_env *env, nx_event *ev);
    void (*send)(nx_env *env, int dst, nx_msg *msg);
    void (*gpu_run)(nx_env *env, nx_batch *batch);
    bool (*cancel)(nx_env *env, nx_event *ev);
} nx_env_ops;

struct nx_env {
    const nx_env_ops *ops;
};

static inline nx_time nx_now(nx_env *e) { return e->ops->now(e); }
static inline void nx_at(nx_env *e, nx_event *ev, nx_time t)
{
    ev->time = t;
    e->ops->at(e, ev);
}
static inline void nx_send(nx_env *e, int dst, nx_msg *m) { e->ops->send(e, dst, m); }
static inline void nx_gpu_run(nx_env *e, nx_batch *b) { e->ops->gpu_run(e, b); }
static inline bool nx_cancel(nx_env *e, nx_event *ev) { return e->ops->cancel(e, ev); }

/* A request: one model call of one client query. Owned by whoever created it
 * (the simulator's run, or the frontend daemon); travels by pointer. */
typedef enum nx_req_status {
    NX_REQ_PENDING = 0,
    NX_REQ_OK,          /* answered within its deadline */
    NX_REQ_LATE,        /* answered after its deadline */
    NX_REQ_DROPPED,     /* dropped by a batching policy, or no route */
    NX_REQ_UNANSWERED,  /* still queued when the run ended, long past its deadline:
                           counted as late, with no latency */
} nx_req_status;

typedef struct nx_query nx_query;

/* A model call: what a frontend sends a backend for one stage of a query.
 * Owned by the frontend (a pool), travels by pointer. */
typedef struct nx_req {
    nx_msg msg;          /* QUERY / REPLY travel in this */
    uint64_t id;
    int32_t session;
    int32_t frontend;    /* node id of the frontend that owns it */
    int32_t gpu;         /* GPU that served it, -1 if none */
    int32_t batch;       /* size of the batch it ran in, 0 if none */
    uint8_t status;      /* nx_req_status */
    int16_t stage;       /* stage of the query's app */
    nx_time arrival;     /* sent by the frontend */
    nx_time deadline;    /* the call's absolute deadline (the query's arrival plus
                            the cumulative stage budgets up to this stage) */
    nx_time ready;       /* in the backend's queue (after pre-processing) */
    nx_time finish;      /* reply back at the frontend */
    nx_query *query;
    struct nx_req *next_free;
    uint8_t inflight;    /* sent to a backend, no reply yet */
    uint8_t attempts;    /* backends tried (retries after a backend died) */
} nx_req;

#define NX_QUERY_MAX_STAGES 16

/* A client request of an app: one DAG of model calls under one SLO. Owned by
 * whoever submits it (the simulator's run, or the frontend daemon). */
struct nx_query {
    uint64_t id;
    int32_t app;
    int32_t frontend;
    uint8_t status;      /* nx_req_status: OK, LATE or DROPPED when done */
    uint8_t failed;      /* a call was dropped: the query is bad */
    nx_time arrival, deadline, finish;
    int32_t gpu, batch;  /* of its first call (for per-request records) */
    uint32_t calls;      /* model calls issued */
    uint32_t pending;    /* calls in flight */
    uint32_t done_mask;  /* stages complete */
    uint32_t issued_mask;/* join stages whose calls went out */
    uint16_t out[NX_QUERY_MAX_STAGES];     /* calls in flight per stage */
    uint16_t ncalls[NX_QUERY_MAX_STAGES];  /* calls issued per stage */
};

#define NX_BATCH_MAX_PARTS 32

/* A batch handed to gpu_run. A prefix-batched batch runs `prof` (the shared
 * prefix) on all `size` inputs, then each part's suffix on its own slice. */
struct nx_batch {
    nx_event ev;             /* fired by the env when the batch is done */
    int gpu;
    int session;
    const nx_profile *prof;
    int nparts;              /* 0: a plain batch of one model */
    const nx_profile *part_prof[NX_BATCH_MAX_PARTS];
    int part_n[NX_BATCH_MAX_PARTS];
    int part_session[NX_BATCH_MAX_PARTS];
    int size;
    nx_req **reqs;           /* size entries, owned by the backend */
    nx_time start;
    nx_time latency;         /* filled by the env before ev fires */
};

#endif
