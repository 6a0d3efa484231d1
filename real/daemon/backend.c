/* backend.c — nexus-backend: one GPU (or its emulation) serving the model
 * table the scheduler gives it, with the engine's backend state machine
 * (engine/backend.c: per-session deadline queues, the batching policy,
 * round-robin over sessions) behind gRPC.
 *
 * It attaches to the scheduler (Register, then KeepAlive every keepalive_s;
 * ModelTable messages come back), and serves Backend.Serve: one long-lived
 * stream per frontend, each QueryBatch carrying many requests. A request
 * becomes an engine nx_req whose deadline is now + the slack the frontend
 * sent (clocks of two hosts need not agree); every request gets exactly one
 * reply — served, dropped by the policy, rejected because the bounded queue
 * (--max-queue requests held) is full, or bad — and replies are coalesced per
 * stream into one ReplyBatch per write.
 *
 * The executor (exec.h) runs one batch at a time; the loop thread meanwhile
 * keeps receiving, queueing, replying and post-processing (the engine's
 * pre/post-processing delays are loop timers), which is the overlap of CPU
 * work with the running batch. With a policy whose gpu_sharing is concurrent
 * (TF Serving, Clipper) every session's model server runs its batches as they
 * form, several at once on the one GPU (the engine's cfg.concurrent; the
 * executor runs one batch per server at a time, cuda on its own stream).
 *
 * Threads: the loop thread owns the engine, the streams and the pool; the rpc
 * poller only hands completions over; a cpu/cuda executor has its own thread
 * that touches nothing but its batch buffers. SIGTERM/SIGINT: send Leave,
 * close every stream, shut gRPC down, exit 0. */
#include <getopt.h>
#include <sys/resource.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backend.h"
#include "setup.h"
#include "daemon.h"
#include "exec.h"
#include "link.h"
#include "renv.h"
#include "rpc.h"
#include "serve.h"
#include "util.h"
#include "wire.h"

#define STREAM_MAX_QUEUED 1024   /* reply messages a frontend may leave unread */

typedef struct be be;

typedef struct bstream {         /* one Serve stream from a frontend */
    be *b;
    nx_rpc_call *c;
    int idx;                     /* its id as the engine's "frontend node" */
    int refs;                    /* requests of it held + 1 while open */
    bool open;
    struct breq **out;           /* replies for the next write */
    int nout, capout;
    bool flush_armed;
    nx_post flush;
    char peer[96];
} bstream;

typedef struct breq {
    nx_req r;                    /* the engine's view */
    nx_xreq x;                   /* the executor's view */
    uint64_t key;                /* the frontend's id */
    bstream *s;
    int status;                  /* Nexus__ReplyStatus */
    nx_time recv, start, exec;
    struct breq *next_free;
} breq;

struct be {
    char who[48];
    nx_loop *loop;
    nx_rpc *rpc;
    nx_renv env;
    nx_setup setup;
    nx_backend engine;
    bool engine_on;
    int slot;
    /* requests */
    breq *pool, *free_list;
    int max_queue, held;
    uint64_t next_id, rejected, bad, orphans;
    /* streams, by index */
    bstream **streams;
    int nstreams, capstreams;
    /* the scheduler */
    nx_link link;
    double keepalive_s;
    char data_addr[160];
    /* executor */
    const nx_bexec_ops *xops;
    void *xstate;
    nx_xreq ***xbuf;             /* per session: its batch's requests (one batch per
                                    session in flight; concurrent: several sessions') */
    int *xcap;
    const char *xname;
    FILE *blog;                  /* --batch-log: one line per batch */
    nx_time blog_t0;
    bool stopping;
    int exit_code;
    int ready_fd;
    /* metrics, per session (Triton's names: metrics()) */
    uint64_t *m_ok, *m_dropped, *m_bad, *m_batches;
    double *m_queue_us, *m_compute_us;
    nx_time busy_ns, util_t0, util_busy0;  /* executor busy time; the last window's start */
    double util;                           /* busy fraction over the last keep-alive period */
    nx_serving sv;                         /* health: "" and nexus.Backend once registered */
};

/* Count a reply (status: Nexus__ReplyStatus) in the per-session metrics. */
static void count_reply(be *b, const struct breq *q, int status);

/* ---- requests and streams -------------------------------------------------------------- */

static void stream_unref(bstream *st)
{
    if (--st->refs > 0)
        return;
    be *b = st->b;
    b->streams[st->idx] = NULL;
    free(st->out);
    free(st);
}

static void req_release(be *b, breq *q)
{
    free(q->x.out);
    q->x.out = NULL;
    free((void *)q->x.in);
    q->x.in = NULL;
    stream_unref(q->s);
    q->s = NULL;
    q->next_free = b->free_list;
    b->free_list = q;
    b->held--;
}

static void flush_stream(nx_post *p)
{
    bstream *st = p->ctx;
    be *b = st->b;
    st->flush_armed = false;
    if (st->nout == 0)
        return;
    for (int i = 0; i < st->nout; i++) {
        breq *q = st->out[i];
        count_reply(b, q, q->status != NEXUS__REPLY_STATUS__REPLY_OK ? q->status
                          : q->r.status == NX_REQ_DROPPED ? NEXUS__REPLY_STATUS__REPLY_DROPPED
                          : q->x.bad                      ? NEXUS__REPLY_STATUS__REPLY_BAD_REQUEST
                                                          : NEXUS__REPLY_STATUS__REPLY_OK);
    }
    if (st->open) {
        Nexus__Reply *rp = nx_malloc(sizeof *rp * (size_t)st->nout);
        Nexus__Reply **pp = nx_malloc(sizeof *pp * (size_t)st->nout);
        for (int i = 0; i < st->nout; i++) {
            breq *q = st->out[i];
            nexus__reply__init(&rp[i]);
            rp[i].id = q->key;
            rp[i].status = q->status != NEXUS__REPLY_STATUS__REPLY_OK ? q->status
                           : q->r.status == NX_REQ_DROPPED ? NEXUS__REPLY_STATUS__REPLY_DROPPED
                           : q->x.bad                       ? NEXUS__REPLY_STATUS__REPLY_BAD_REQUEST
                                                            : NEXUS__REPLY_STATUS__REPLY_OK;
            rp[i].batch = q->r.batch;
            rp[i].queue_ns = q->start ? q->start - q->recv : 0;
            rp[i].exec_ns = q->exec;
            rp[i].output.data = q->x.out;
            rp[i].output.len = q->x.out ? q->x.nout : 0;
            pp[i] = &rp[i];
        }
        Nexus__ReplyBatch rb = NEXUS__REPLY_BATCH__INIT;
        rb.n_replies = (size_t)st->nout;
        rb.replies = pp;
        if (nx_rpc_queued(st->c) > STREAM_MAX_QUEUED) {
            nx_log(b->who, "stream from %s: %zu reply messages unread: closing it", st->peer,
                   nx_rpc_queued(st->c));
            nx_rpc_close(st->c, NX_RPC_RESOURCE_EXHAUSTED, "replies are not being read");
            st->open = false;
            stream_unref(st);
        } else {
            nx_rpc_send(st->c, &rb.base);
        }
        free(rp);
        free(pp);
    }
    st->refs++; /* the releases below must not free st under us */
    for (int i = 0; i < st->nout; i++)
        req_release(b, st->out[i]);
    st->nout = 0;
    stream_unref(st);
}

/* Queue q's reply on its stream; it goes out after the current events. */
static void reply(be *b, breq *q)
{
    bstream *st = q->s;
    if (!st->open) {
        b->orphans++;
        req_release(b, q);
        return;
    }
    if (st->nout == st->capout) {
        st->capout = st->capout ? 2 * st->capout : 64;
        st->out = nx_realloc(st->out, sizeof *st->out * (size_t)st->capout);
    }
    st->out[st->nout++] = q;
    if (!st->flush_armed) {
        st->flush_armed = true;
        nx_loop_defer(b->loop, &st->flush);
    }
}

static void send_keepalive(be *b);

/* The engine's send: replies to frontends, keep-alives to the scheduler. */
static void engine_send(void *ctx, int dst, nx_msg *m)
{
    be *b = ctx;
    (void)dst;
    if (m->type == NX_MSG_KEEPALIVE) {
        free(m);
        send_keepalive(b);
        return;
    }
    NX_ASSERT(m->type == NX_MSG_REPLY);
    reply(b, NX_CONTAINER_OF(m, breq, r.msg));
}

static breq *req_new(be *b, bstream *st, uint64_t key)
{
    breq *q = b->free_list;
    b->free_list = q->next_free;
    b->held++;
    memset(q, 0, sizeof *q);
    q->key = key;
    q->s = st;
    st->refs++;
    q->recv = nx_loop_now(b->loop);
    return q;
}

static void serve_msg(nx_rpc_call *c, ProtobufCMessage *pm)
{
    bstream *st = nx_rpc_user(c);
    be *b = st->b;
    Nexus__QueryBatch *qb = (Nexus__QueryBatch *)pm;
    /* a batch formed at the frontend (central dispatch) is queued whole */
    nx_batch_msg *whole = qb->whole && b->engine_on ? nx_batch_msg_new((int)qb->n_queries) : NULL;
    if (whole)
        whole->n = 0;
    for (size_t i = 0; i < qb->n_queries; i++) {
        Nexus__Query *in = qb->queries[i];
        if (!b->free_list) { /* the bounded queue is full: reject, never grow */
            b->rejected++;
            Nexus__Reply rp = NEXUS__REPLY__INIT;
            rp.id = in->id;
            rp.status = NEXUS__REPLY_STATUS__REPLY_REJECTED;
            Nexus__Reply *pp = &rp;
            Nexus__ReplyBatch rb = NEXUS__REPLY_BATCH__INIT;
            rb.n_replies = 1;
            rb.replies = &pp;
            nx_rpc_send(c, &rb.base);
            continue;
        }
        breq *q = req_new(b, st, in->id);
        if (!b->engine_on || in->session < 0 || in->session >= b->setup.cat.nsess) {
            q->status = !b->engine_on ? NEXUS__REPLY_STATUS__REPLY_REJECTED
                                      : NEXUS__REPLY_STATUS__REPLY_BAD_REQUEST;
            b->bad += b->engine_on;
            b->rejected += !b->engine_on;
            reply(b, q);
            continue;
        }
        if (in->input.len > 0) { /* take the unpacked bytes over: no copy (rpc.h) */
            q->x.in = in->input.data;
            q->x.nin = in->input.len;
            qb->queries[i]->input.data = NULL;
            qb->queries[i]->input.len = 0;
        }
        nx_time slack = in->slack_ns;
        nx_time max_slack = NX_US(4 * b->setup.cat.max_slo_us) + NX_SEC(1);
        if (slack > max_slack) /* a silly slack must not keep a request forever */
            slack = max_slack;
        q->r.id = b->next_id++;
        q->r.session = in->session;
        q->r.frontend = st->idx;
        q->r.gpu = -1;
        q->r.arrival = q->recv;
        q->r.deadline = q->recv + slack;
        q->r.status = NX_REQ_PENDING;
        q->r.msg.type = NX_MSG_QUERY;
        q->r.msg.src = st->idx;
        q->r.msg.dst = b->engine.node;
        if (whole)
            whole->reqs[whole->n++] = &q->r;
        else
            nx_backend_recv(&b->engine, &q->r.msg);
    }
    if (whole && whole->n > 0) {
        whole->m.src = st->idx;
        whole->m.dst = b->engine.node;
        nx_backend_recv(&b->engine, &whole->m);
    } else {
        free(whole);
    }
}

static void serve_close(nx_rpc_call *c, int code, const char *why)
{
    bstream *st = nx_rpc_user(c);
    be *b = st->b;
    nx_log(b->who, "data stream from %s ended (%s%s%s)", st->peer, nx_rpc_code_name(code),
           why && why[0] ? ": " : "", why ? why : "");
    st->open = false;
    stream_unref(st);
}

static const nx_rpc_stream_ops serve_ops = {
    .in = &nexus__query_batch__descriptor,
    .on_msg = serve_msg,
    .on_close = serve_close,
};

static void serve_open(void *ctx, nx_rpc_call *c)
{
    be *b = ctx;
    int idx = -1;
    for (int i = 0; i < b->nstreams && idx < 0; i++)
        if (!b->streams[i])
            idx = i;
    if (idx < 0) {
        if (b->nstreams == b->capstreams) {
            b->capstreams = b->capstreams ? 2 * b->capstreams : 16;
            b->streams = nx_realloc(b->streams, sizeof *b->streams * (size_t)b->capstreams);
        }
        idx = b->nstreams++;
    }
    bstream *st = nx_calloc(1, sizeof *st);
    st->b = b;
    st->c = c;
    st->idx = idx;
    st->refs = 1;
    st->open = true;
    st->flush.fn = flush_stream;
    st->flush.ctx = st;
    nx_rpc_peer(c, st->peer, sizeof st->peer);
    b->streams[idx] = st;
    nx_rpc_set_user(c, st);
    nx_log(b->who, "data stream from %s opened", st->peer);
}

/* ---- the executor -------------------------------------------------------------------------- */

/* --batch-log: the batch's model (a prefix group's: its prefix), size, suffix parts, the
 * profile's prediction (mean at the size, plus each part's suffix at its count: what the
 * simulator draws around) and the executor's measured time. */
static void log_batch(be *b, const nx_batch *bt, nx_time exec_ns)
{
    nx_time now = nx_loop_now(b->loop);
    if (!b->blog_t0)
        b->blog_t0 = now;
    double pred = nx_profile_mean(bt->prof, bt->size);
    char parts[256] = "";
    size_t n = 0;
    for (int k = 0; k < bt->nparts; k++) {
        pred += nx_profile_mean(bt->part_prof[k], bt->part_n[k]);
        if (n < sizeof parts)
            n += (size_t)snprintf(parts + n, sizeof parts - n, "%s%s:%d", k ? "+" : "",
                                  bt->part_prof[k]->model, bt->part_n[k]);
    }
    fprintf(b->blog, "%.6f,%s,%d,%s,%.1f,%.1f,%s\n", NX_TO_US(now - b->blog_t0) * 1e-6,
            bt->prof->model, bt->size, parts, pred, NX_TO_US(exec_ns),
            b->setup.cat.sess[bt->session].name);
}

static void exec_done(void *ctx, nx_batch *bt, nx_time exec_ns)
{
    be *b = ctx;
    if (b->blog)
        log_batch(b, bt, exec_ns);
    for (int i = 0; i < bt->size; i++)
        NX_CONTAINER_OF(bt->reqs[i], breq, r)->exec = exec_ns;
    b->busy_ns += exec_ns;
    if (bt->session >= 0 && bt->session < b->setup.cat.nsess)
        b->m_batches[bt->session]++;
    bt->latency = exec_ns;
    bt->ev.fn(&bt->ev); /* the engine's batch_done: replies, next batch */
}

static void engine_gpu_run(void *ctx, nx_batch *bt)
{
    be *b = ctx;
    int s = bt->session;
    NX_ASSERT(s >= 0 && s < b->setup.cat.nsess);
    if (bt->size > b->xcap[s]) {
        b->xcap[s] = bt->size;
        b->xbuf[s] = nx_realloc(b->xbuf[s], sizeof **b->xbuf * (size_t)b->xcap[s]);
    }
    for (int i = 0; i < bt->size; i++) {
        breq *q = NX_CONTAINER_OF(bt->reqs[i], breq, r);
        q->start = bt->start;
        b->xbuf[s][i] = &q->x;
    }
    b->xops->run(b->xstate, bt, b->xbuf[s]);
}

/* ---- the scheduler link ------------------------------------------------------------------- */

/* The engine's keep-alive (every keepalive_s), with this backend's counters. */
static void send_keepalive(be *b)
{
    nx_time now = nx_loop_now(b->loop);
    if (b->util_t0 && now > b->util_t0)
        b->util = NX_MIN(1.0, (double)(b->busy_ns - b->util_busy0) / (double)(now - b->util_t0));
    b->util_t0 = now;
    b->util_busy0 = b->busy_ns;
    if (!b->stopping) {
        Nexus__KeepAlive ka = NEXUS__KEEP_ALIVE__INIT;
        if (b->engine_on) {
            ka.busy_ns = (uint64_t)b->engine.busy_in_window;
            ka.served = b->engine.served;
            ka.dropped = b->engine.dropped;
            ka.batches = b->engine.batches;
        }
        ka.rejected = b->rejected;
        ka.queued = (uint32_t)b->held;
        Nexus__NodeMsg m = NEXUS__NODE_MSG__INIT;
        m.msg_case = NEXUS__NODE_MSG__MSG_KEEP_ALIVE;
        m.keep_alive = &ka;
        nx_link_send(&b->link, &m);
    }
}

static void start_engine(be *b)
{
    nx_backend_cfg bc;
    nx_backend_cfg_fill(&bc, &b->setup.cat, b->slot);
    bc.keepalive_s = b->keepalive_s; /* the period the scheduler announced */
    bc.window_start = 0;             /* utilisation over the daemon's life */
    bc.window_end = NX_TIME_NEVER;
    /* the simulator's model of the node's cores stays there: here pre/post-processing run
     * on a host's real cores. GPU sharing is the policy's (bc.concurrent): the executor
     * then runs several sessions' batches at once */
    bc.cpu_cores = 0;
    bc.no_overlap = false;
    nx_backend_init(&b->engine, &b->env.env, &bc);
    nx_backend_start(&b->engine); /* its keep-alive timer */
    b->engine_on = true;
}

static void on_registered(void *ctx, const Nexus__Registered *rg)
{
    be *b = ctx;
    if (b->engine_on && rg->slot != b->slot) {
        nx_log(b->who, "the scheduler gave slot %d, but this backend serves as %d: exiting",
               rg->slot, b->slot);
        b->exit_code = 1;
        raise(SIGTERM);
        return;
    }
    b->slot = rg->slot;
    if (rg->keepalive_s > 0 && !b->engine_on)
        b->keepalive_s = rg->keepalive_s;
    snprintf(b->who, sizeof b->who, "nexus-backend[%d]", b->slot);
    if (!b->engine_on)
        start_engine(b);
    nx_log(b->who, "registered with the scheduler at %s as backend %d", b->link.cfg.sched_addr,
           b->slot);
    send_keepalive(b);
    nx_health_set(b->sv.health, "", true);
    nx_health_set(b->sv.health, "nexus.Backend", true);
    nx_ready(&b->ready_fd, b->data_addr);
}

static void on_sched_msg(void *ctx, const Nexus__SchedMsg *m)
{
    be *b = ctx;
    char why[200];
    if (m->msg_case != NEXUS__SCHED_MSG__MSG_TABLE)
        return;
    nx_table_msg *t;
    if (nx_wire_table_from(m->table, b->setup.cat.sess, b->setup.cat.nsess, &t, why, sizeof why) < 0) {
        nx_log(b->who, "bad model table ignored: %s", why);
        return;
    }
    nx_log(b->who, "model table (epoch %llu): %d session(s), duty %.2f ms",
           (unsigned long long)t->epoch, t->n, t->duty_us / 1000);
    t->m.dst = b->engine.node;
    nx_backend_recv(&b->engine, &t->m);
}

static void on_refused(void *ctx, const char *why)
{
    be *b = ctx;
    (void)why;
    b->exit_code = 1;
    raise(SIGTERM);
}

/* ---- metrics ------------------------------------------------------------------------------- */

static void count_reply(be *b, const breq *q, int status)
{
    int s = q->r.session;
    if (s < 0 || s >= b->setup.cat.nsess)
        return; /* a request for no session: counted in b->bad */
    if (status == NEXUS__REPLY_STATUS__REPLY_OK) {
        b->m_ok[s]++;
        b->m_queue_us[s] += q->start ? (double)(q->start - q->recv) / 1e3 : 0;
        b->m_compute_us[s] += (double)q->exec / 1e3;
    } else if (status == NEXUS__REPLY_STATUS__REPLY_DROPPED) {
        b->m_dropped[s]++;
    } else if (status == NEXUS__REPLY_STATUS__REPLY_BAD_REQUEST) {
        b->m_bad[s]++;
    }
}

static void metrics(void *ctx, nx_prom *p)
{
    be *b = ctx;
    static const struct {
        const char *name, *type, *help;
    } fam[] = {
        {"nv_inference_request_success", "counter",
         "Requests of the model served (answered with an output, in time or late)."},
        {"nv_inference_request_failure", "counter",
         "Requests of the model not served (dropped by the batching policy, or bad)."},
        {"nv_inference_count", "counter", "Inferences performed (a batch of n counts n)."},
        {"nv_inference_exec_count", "counter", "Batches executed."},
        {"nv_inference_queue_duration_us", "counter",
         "Cumulative time served requests waited in the queue, microseconds."},
        {"nv_inference_compute_infer_duration_us", "counter",
         "Cumulative executor time of served requests' batches, microseconds."},
    };
    for (int k = 0; k < 6; k++) {
        nx_prom_family(p, fam[k].name, fam[k].type, fam[k].help);
        for (int s = 0; s < b->setup.cat.nsess; s++) {
            double v = k == 0 || k == 2 ? (double)b->m_ok[s]
                     : k == 1           ? (double)(b->m_dropped[s] + b->m_bad[s])
                     : k == 3           ? (double)b->m_batches[s]
                     : k == 4           ? b->m_queue_us[s]
                                        : b->m_compute_us[s];
            nx_prom_sample(p, fam[k].name, v, "model", b->setup.cat.sess[s].name, "version", "1");
        }
    }
    char uuid[96];
    snprintf(uuid, sizeof uuid, "%s-slot%d", b->xname, b->slot);
    nx_prom_family(p, "nv_gpu_utilization", "gauge",
                   "GPU (executor) busy fraction over the last keep-alive period, 0.0 - 1.0.");
    nx_prom_sample(p, "nv_gpu_utilization", b->util, "gpu_uuid", uuid, NULL, NULL);
    uint64_t dropped = 0, bad = b->bad;
    for (int s = 0; s < b->setup.cat.nsess; s++) {
        dropped += b->m_dropped[s];
        bad += b->m_bad[s];
    }
    nx_prom_family(p, "nexus_backend_requests_dropped_total", "counter",
                   "Requests this backend did not serve, by reason.");
    nx_prom_sample(p, "nexus_backend_requests_dropped_total", (double)dropped, "reason",
                   "deadline", NULL, NULL);
    nx_prom_sample(p, "nexus_backend_requests_dropped_total", (double)b->rejected, "reason",
                   "queue_full", NULL, NULL);
    nx_prom_sample(p, "nexus_backend_requests_dropped_total", (double)bad, "reason",
                   "bad_request", NULL, NULL);
    nx_prom_one(p, "nexus_backend_queued_requests", "gauge",
                "Requests held now (queued or in a batch); at most --max-queue.", b->held);
    nx_prom_one(p, "nexus_backend_busy_seconds_total", "counter",
                "Executor busy time, seconds.", (double)b->busy_ns / 1e9);
    nx_prom_one(p, "nexus_backend_slot", "gauge", "The slot the scheduler gave (-1: none yet).",
                b->slot);
}

/* ---- shutdown, main ----------------------------------------------------------------------- */

static void rpc_down(void *ctx) { nx_loop_stop(((be *)ctx)->loop); }

static void on_signal(void *ctx, int signo)
{
    be *b = ctx;
    if (signo == SIGCHLD || b->stopping)
        return;
    nx_log(b->who, "signal %d: shutting down", signo);
    nx_health_set_all(b->sv.health, false);
    nx_link_leave(&b->link);
    b->stopping = true;
    for (int i = 0; i < b->nstreams; i++) {
        bstream *st = b->streams[i];
        if (st && st->open) {
            st->open = false;
            nx_rpc_close(st->c, NX_RPC_UNAVAILABLE, "the backend is shutting down");
            stream_unref(st);
        }
    }
    nx_rpc_shutdown(b->rpc, rpc_down, b);
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: nexus-backend EXPERIMENT.yml --scheduler ADDR [options]\n"
            "\n"
            "One GPU of a real Nexus cluster: attaches to the scheduler, serves the model table\n"
            "it gets (service nexus.Backend, real/proto/nexus.proto) with the experiment's\n"
            "batching policy.\n"
            "\n"
            "options:\n"
            "  --scheduler ADDR     the scheduler (host:port; required)\n"
            "  --listen ADDR        data address (default 127.0.0.1:0: any free port)\n"
            "  --advertise ADDR     the data address frontends use (default: --listen's)\n"
            "  --policy NAME        the experiment's policy combination (default: the first)\n"
            "  --scale S            workload rate scale, as the scheduler's (default 1)\n"
            "  --executor E         emulated (default: the profile's latency), cpu or cuda\n"
            "  --gpu N              CUDA device (default 0)\n"
            "  --models DIR         ONNX models for cpu/cuda, DIR/<model>.onnx (default models)\n"
            "  --max-queue N        requests held at most; beyond, rejected (default 8192)\n"
            "  --slot N             ask for this slot (a restarted backend: its old one)\n"
            "  --seed N             emulated latency draws (default: the experiment's + slot)\n"
            "  --synthetic-input    cpu/cuda: accept any input, run the model on its own\n"
            "                       pseudo-random rows (the host-to-GPU copy still happens)\n"
            "  --batch-log FILE     one CSV line per batch: t_s,model,size,parts,pred_us,exec_us,\n"
            "                       session (t_s: its end; pred_us: the profile's mean; exec_us:\n"
            "                       the executor's time; session: its model server's)\n"
            "  --ready-fd FD        write 'ready DATA_ADDR' to FD once registered, then close it\n"
            NX_SERVE_USAGE
            "  --help               this text\n"
            "\n"
            "Health (grpc.health.v1.Health): \"\" and nexus.Backend are SERVING once the\n"
            "backend registered with the scheduler, NOT_SERVING before and while it shuts down.\n");
}

int main(int argc, char **argv)
{
    const char *prog = "nexus-backend";
    const char *sched = NULL, *listen = "127.0.0.1:0", *adv = NULL, *policy = NULL;
    const char *xname = "emulated", *models = "models", *path, *blog = NULL;
    bool synthetic = false;
    double scale = 1;
    long gpu = 0, maxq = 8192, slot = -1, ready_fd = -1, seed = -1;
    static const struct option opts[] = {
        {"scheduler", 1, 0, 'S'}, {"listen", 1, 0, 'l'}, {"advertise", 1, 0, 'a'},
        {"policy", 1, 0, 'p'}, {"scale", 1, 0, 's'}, {"executor", 1, 0, 'x'},
        {"gpu", 1, 0, 'g'}, {"models", 1, 0, 'm'}, {"max-queue", 1, 0, 'q'},
        {"slot", 1, 0, 'n'}, {"seed", 1, 0, 'e'}, {"ready-fd", 1, 0, 'r'},
        {"synthetic-input", 0, 0, 'I'}, {"batch-log", 1, 0, 'B'},
        {"help", 0, 0, 'h'}, NX_SERVE_LONGOPTS, {0, 0, 0, 0},
    };
    nx_serve_opts so = {0};
    int o;
    while ((o = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        int bad = 0;
        switch (o) {
        case 'S': sched = optarg; break;
        case 'l': listen = optarg; break;
        case 'a': adv = optarg; break;
        case 'p': policy = optarg; break;
        case 's': bad = nx_cli_double(prog, "--scale", optarg, 1e-9, 1e6, &scale); break;
        case 'x': xname = optarg; break;
        case 'g': bad = nx_cli_long(prog, "--gpu", optarg, 0, 1023, &gpu); break;
        case 'm': models = optarg; break;
        case 'q': bad = nx_cli_long(prog, "--max-queue", optarg, 1, 1 << 24, &maxq); break;
        case 'n': bad = nx_cli_long(prog, "--slot", optarg, 0, 4095, &slot); break;
        case 'e': bad = nx_cli_long(prog, "--seed", optarg, 0, 1L << 62, &seed); break;
        case 'r': bad = nx_cli_long(prog, "--ready-fd", optarg, 0, 65535, &ready_fd); break;
        case 'I': synthetic = true; break;
        case 'B': blog = optarg; break;
        case 'h': usage(stdout); return 0;
        default:
            if ((bad = nx_serve_opt(&so, prog, o, optarg)) < 0) {
                usage(stderr);
                return 2;
            }
        }
        if (bad)
            return 2;
    }
    if (optind + 1 != argc || !sched) {
        usage(stderr);
        return 2;
    }
    path = argv[optind];
    const nx_bexec_ops *xops = nx_bexec_find(xname);
    if (!xops) {
        fprintf(stderr, "%s: --executor: '%s' is not emulated, cpu or cuda\n", prog, xname);
        return 2;
    }
    be *b = nx_calloc(1, sizeof *b);
    snprintf(b->who, sizeof b->who, "%s", prog);
    b->ready_fd = (int)ready_fd;
    b->slot = -1;
    b->xops = xops;
    b->xname = xname;
    b->keepalive_s = 1;
    b->max_queue = (int)maxq;
    if (blog) {
        b->blog = fopen(blog, "w");
        if (!b->blog) {
            fprintf(stderr, "%s: --batch-log: cannot write %s\n", prog, blog);
            free(b);
            return 1;
        }
        fprintf(b->blog, "t_s,model,size,parts,pred_us,exec_us,session\n");
    }
    nx_errbuf eb;
    nx_err_clear(&eb);
    nx_rpc_cfg rcfg;
    int rc = nx_serve_load(&so, &rcfg, &eb);
    if (rc == 0)
        rc = nx_daemon_open(&b->loop, &b->setup, &b->rpc, path, policy, scale, &rcfg, &eb);
    if (rc == 0) {
        nx_bexec_cfg xc = {
            .cat = &b->setup.cat,
            .loop = b->loop,
            .models = models,
            .device = (int)gpu,
            .seed = seed >= 0 ? (uint64_t)seed : b->setup.x.seed * 7919 + (uint64_t)(slot + 1),
            .done = exec_done,
            .ctx = b,
            .synthetic = synthetic,
            .concurrent = b->setup.cat.combo->gpu_sharing == NX_GPU_CONCURRENT,
        };
        rc = xops->init(&b->xstate, &xc, &eb);
    }
    if (rc < 0) {
        fprintf(stderr, "%s: %s\n", prog, eb.msg[0] ? eb.msg : nx_strerror(rc));
        if (b->loop) { /* the executor failed: gRPC is up, with nothing to shut down */
            nx_rpc_shutdown(b->rpc, rpc_down, b);
            nx_loop_run(b->loop);
            nx_daemon_close(b->loop, &b->setup, b->rpc);
        }
        nx_serve_free(&so);
        if (b->blog)
            fclose(b->blog);
        free(b);
        return 1;
    }
    size_t ns = (size_t)b->setup.cat.nsess;
    b->m_ok = nx_calloc(ns, sizeof *b->m_ok);
    b->m_dropped = nx_calloc(ns, sizeof *b->m_dropped);
    b->m_bad = nx_calloc(ns, sizeof *b->m_bad);
    b->m_batches = nx_calloc(ns, sizeof *b->m_batches);
    b->m_queue_us = nx_calloc(ns, sizeof *b->m_queue_us);
    b->m_compute_us = nx_calloc(ns, sizeof *b->m_compute_us);
    b->xbuf = nx_calloc(ns, sizeof *b->xbuf);
    b->xcap = nx_calloc(ns, sizeof *b->xcap);
    b->pool = nx_calloc((size_t)b->max_queue, sizeof(breq));
    for (int i = b->max_queue - 1; i >= 0; i--) {
        b->pool[i].next_free = b->free_list;
        b->free_list = &b->pool[i];
    }
    nx_renv_init(&b->env, b->loop, engine_send, engine_gpu_run, b);
    nx_loop_on_signal(b->loop, on_signal, b);

    nx_rpc_method methods[3] = {
        {.path = "/nexus.Backend/Serve", .stream = &serve_ops, .on_open = serve_open, .ctx = b},
    };
    int nmethods = 1, port = 0;
    nx_serving_init(&b->sv, methods, &nmethods);
    nx_health_set(b->sv.health, "", false);
    nx_health_set(b->sv.health, "nexus.Backend", false);
    rc = nx_rpc_serve(b->rpc, listen, methods, nmethods, &port, &eb);
    if (rc == 0)
        rc = nx_serving_metrics(&b->sv, &so, b->loop, b->rpc, metrics, b, b->who, &eb);
    if (rc < 0) {
        fprintf(stderr, "%s: %s\n", prog, eb.msg);
        nx_rpc_shutdown(b->rpc, rpc_down, b);
    } else {
        nx_addr_with_port(b->data_addr, sizeof b->data_addr, adv ? adv : listen, port);
        nx_log(b->who, "serving data on %s (executor %s%s, at most %d requests held); "
                       "attaching to the scheduler at %s",
               b->data_addr, xname,
               b->setup.cat.combo->gpu_sharing == NX_GPU_CONCURRENT ? ", sessions concurrent" : "",
               b->max_queue, sched);
        nx_link_cfg lc = {
            .who = b->who,
            .kind = NEXUS__NODE_KIND__NODE_BACKEND,
            .cat = &b->setup.cat,
            .sched_addr = sched,
            .data_addr = b->data_addr,
            .executor = xname,
            .incarnation = nx_incarnation(),
            .want_slot = (int)slot,
            .on_registered = on_registered,
            .on_msg = on_sched_msg,
            .on_refused = on_refused,
            .ctx = b,
        };
        nx_link_init(&b->link, b->rpc, &lc);
    }
    nx_loop_run(b->loop);
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    uint64_t served = b->engine_on ? b->engine.served : 0;
    double cpu = (double)ru.ru_utime.tv_sec + (double)ru.ru_stime.tv_sec +
                 ((double)ru.ru_utime.tv_usec + (double)ru.ru_stime.tv_usec) * 1e-6;
    nx_log(b->who, "stopped (%llu served, %llu dropped, %llu rejected; CPU %.2f s: %.1f us per "
                   "request served; peak RSS %ld MB)",
           (unsigned long long)served,
           (unsigned long long)(b->engine_on ? b->engine.dropped : 0),
           (unsigned long long)b->rejected, cpu, served ? cpu / (double)served * 1e6 : 0,
           ru.ru_maxrss / 1024);
    if (xops->report) {
        char line[200];
        xops->report(b->xstate, line, sizeof line);
        nx_log(b->who, "executor %s: %s", xops->name, line);
    }
    xops->free(b->xstate);
    if (b->engine_on)
        nx_backend_free(&b->engine);
    for (int i = 0; i < b->max_queue; i++) {
        free(b->pool[i].x.out);
        free((void *)b->pool[i].x.in);
    }
    for (int i = 0; i < b->nstreams; i++)
        if (b->streams[i]) {
            free(b->streams[i]->out);
            free(b->streams[i]);
        }
    free(b->streams);
    free(b->pool);
    for (size_t s = 0; s < ns && b->xbuf; s++)
        free(b->xbuf[s]);
    free(b->xbuf);
    free(b->xcap);
    free(b->m_ok);
    free(b->m_dropped);
    free(b->m_bad);
    free(b->m_batches);
    free(b->m_queue_us);
    free(b->m_compute_us);
    nx_serving_free(&b->sv);
    nx_daemon_close(b->loop, &b->setup, b->rpc);
    nx_serve_free(&so);
    if (b->blog)
        fclose(b->blog);
    int code = rc < 0 ? 1 : b->exit_code;
    free(b);
    return code;
}
