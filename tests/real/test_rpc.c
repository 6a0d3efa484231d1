/* test_rpc.c — CUnit suite for the real cluster's building blocks: the event
 * loop (timer order, cancellation, cross-thread posts, signals), the gRPC
 * layer (unary and streaming calls, deferred replies, malformed and oversized
 * messages, unknown methods, deadlines, closes from either side, shutdown
 * with calls in flight), the engine-message <-> protobuf conversions and
 * their checks, KServe v2 input checks, and the catalog's hash. */
#include <CUnit/Basic.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "catalog.h"
#include "kserve.h"
#include "loop.h"
#include "nexus.pb-c.h"
#include "rpc.h"
#include "testutil.h"
#include "wire.h"

/* ---- loop ---------------------------------------------------------------------------------- */

typedef struct tev {
    nx_event ev;
    int id;
    int *log, *n;
    nx_loop *l;
    int stop_after;
} tev;

static void tev_fire(nx_event *ev)
{
    tev *t = NX_CONTAINER_OF(ev, tev, ev);
    t->log[(*t->n)++] = t->id;
    if (*t->n == t->stop_after)
        nx_loop_stop(t->l);
}

static void test_loop_timers(void)
{
    nx_loop *l;
    CU_ASSERT_EQUAL_FATAL(nx_loop_init(&l, NULL), 0);
    int log[8], n = 0;
    nx_time now = nx_loop_now(l);
    /* ms offsets: 3, 1, 3, 2, 1, 4(cancelled) -> order 1, 4 (1 ms), 3 (2 ms), 0, 2 (3 ms) */
    int at[6] = {3, 1, 3, 2, 1, 4};
    tev t[6];
    for (int i = 0; i < 6; i++) {
        t[i] = (tev){.id = i, .log = log, .n = &n, .l = l, .stop_after = 5};
        t[i].ev.fn = tev_fire;
        t[i].ev.time = now + NX_MS(at[i]);
        nx_loop_at(l, &t[i].ev);
    }
    CU_ASSERT_TRUE(nx_loop_cancel(l, &t[5].ev));
    CU_ASSERT_FALSE(nx_loop_cancel(l, &t[5].ev));
    CU_ASSERT_EQUAL(nx_loop_timers(l), 5);
    CU_ASSERT_EQUAL(nx_loop_run(l), 0);
    int want[5] = {1, 4, 3, 0, 2};
    CU_ASSERT_EQUAL(n, 5);
    for (int i = 0; i < 5; i++)
        CU_ASSERT_EQUAL(log[i], want[i]);
    CU_ASSERT(nx_loop_now(l) - now >= NX_MS(3));
    nx_loop_free(l);
}

/* The same through the timerfd fallback (kernels without epoll_pwait2). */
static void test_loop_timers_timerfd(void)
{
    setenv("NX_LOOP_TIMERFD", "1", 1);
    test_loop_timers();
    unsetenv("NX_LOOP_TIMERFD");
}

typedef struct poster {
    nx_loop *l;
    nx_post posts[1000];
    int *count;
} poster;

static void post_fn(nx_post *p)
{
    poster *ps = p->ctx;
    if (++*ps->count == 1000)
        nx_loop_stop(ps->l);
}

static void *post_thread(void *arg)
{
    poster *ps = arg;
    for (int i = 0; i < 1000; i++) {
        ps->posts[i].fn = post_fn;
        ps->posts[i].ctx = ps;
        nx_loop_post(ps->l, &ps->posts[i]);
    }
    return NULL;
}

static void sig_fn(void *ctx, int signo)
{
    if (signo == SIGTERM) {
        *(int *)((void **)ctx)[1] = 1;
        nx_loop_stop(((void **)ctx)[0]);
    }
}

static void test_loop_posts_and_signals(void)
{
    nx_loop *l;
    CU_ASSERT_EQUAL_FATAL(nx_loop_init(&l, NULL), 0);
    int count = 0;
    poster *ps = calloc(1, sizeof *ps);
    ps->l = l;
    ps->count = &count;
    pthread_t th;
    pthread_create(&th, NULL, post_thread, ps);
    nx_loop_run(l);
    pthread_join(th, NULL);
    CU_ASSERT_EQUAL(count, 1000);
    /* SIGTERM reaches the loop through its signalfd, not a handler */
    int got = 0;
    void *ctx[2] = {l, &got};
    nx_loop_on_signal(l, sig_fn, ctx);
    kill(getpid(), SIGTERM);
    nx_loop_run(l);
    CU_ASSERT_EQUAL(got, 1);
    free(ps);
    nx_loop_free(l);
}

/* ---- rpc: a test service -------------------------------------------------------------------- */

typedef struct svc {
    nx_loop *l;
    nx_rpc *srv, *cli;
    int port;
    char addr[64];
    nx_rpc_call *deferred;     /* a unary call answered later */
    nx_event later;
    int stream_msgs, stream_closes, last_close_code;
    nx_rpc_call *server_stream;
    /* client side */
    int done, code;
    char why[256];
    bool planning;
    int replies;
    int client_closes, client_close_code;
    char client_close_why[256];
    int want;                  /* stop the loop after this many events */
    int events;
    nx_event guard;
    bool timed_out;
} svc;

static void bump(svc *s)
{
    if (++s->events >= s->want)
        nx_loop_stop(s->l);
}

static void reply_later(nx_event *ev)
{
    svc *s = ev->ctx;
    Nexus__StatusReply r = NEXUS__STATUS_REPLY__INIT;
    r.now_ns = 7;
    nx_rpc_reply(s->deferred, &r.base);
    s->deferred = NULL;
}

static void status_handler(void *ctx, nx_rpc_call *c, ProtobufCMessage *pm)
{
    svc *s = ctx;
    Nexus__StatusRequest *rq = (Nexus__StatusRequest *)pm;
    if (rq->start_run) { /* answer 100 ms later */
        s->deferred = c;
        s->later.fn = reply_later;
        s->later.ctx = s;
        s->later.time = nx_loop_now(s->l) + NX_MS(100);
        nx_loop_at(s->l, &s->later);
        return;
    }
    Nexus__StatusReply r = NEXUS__STATUS_REPLY__INIT;
    r.planning = 1;
    r.now_ns = 42;
    nx_rpc_reply(c, &r.base);
}

static void srv_stream_msg(nx_rpc_call *c, ProtobufCMessage *pm)
{
    svc *s = nx_rpc_user(c);
    Nexus__QueryBatch *qb = (Nexus__QueryBatch *)pm;
    s->stream_msgs++;
    Nexus__Reply *rp = calloc(qb->n_queries + 1, sizeof *rp);
    Nexus__Reply **pp = calloc(qb->n_queries + 1, sizeof *pp);
    for (size_t i = 0; i < qb->n_queries; i++) {
        nexus__reply__init(&rp[i]);
        rp[i].id = qb->queries[i]->id;
        rp[i].output = qb->queries[i]->input;
        pp[i] = &rp[i];
    }
    Nexus__ReplyBatch rb = NEXUS__REPLY_BATCH__INIT;
    rb.n_replies = qb->n_queries;
    rb.replies = pp;
    if (qb->n_queries == 1 && qb->queries[0]->id == 999) /* "close on me" */
        nx_rpc_close(c, NX_RPC_FAILED_PRECONDITION, "told to close");
    else
        CU_ASSERT_EQUAL(nx_rpc_send(c, &rb.base), 0);
    free(rp);
    free(pp);
}

static void srv_stream_close(nx_rpc_call *c, int code, const char *why)
{
    svc *s = nx_rpc_user(c);
    (void)why;
    s->stream_closes++;
    s->last_close_code = code;
    if (s->server_stream == c)
        s->server_stream = NULL;
    bump(s);
}

static const nx_rpc_stream_ops srv_stream_ops = {
    .in = &nexus__query_batch__descriptor,
    .on_msg = srv_stream_msg,
    .on_close = srv_stream_close,
};

static void srv_stream_open(void *ctx, nx_rpc_call *c)
{
    svc *s = ctx;
    s->server_stream = c;
    nx_rpc_set_user(c, s);
}

static void guard_fire(nx_event *ev)
{
    svc *s = ev->ctx;
    s->timed_out = true;
    nx_loop_stop(s->l);
}

static const nx_rpc_method test_methods[2] = {
    {.path = "/nexus.Scheduler/Status", .req = &nexus__status_request__descriptor,
     .on_unary = status_handler},
    {.path = "/nexus.Backend/Serve", .stream = &srv_stream_ops, .on_open = srv_stream_open},
};

static void svc_up(svc *s, size_t max_msg, nx_rpc_method *m)
{
    memset(s, 0, sizeof *s);
    CU_ASSERT_EQUAL_FATAL(nx_loop_init(&s->l, NULL), 0);
    nx_rpc_cfg cfg = {.max_msg = max_msg};
    CU_ASSERT_EQUAL_FATAL(nx_rpc_init(&s->srv, s->l, &cfg, NULL), 0);
    CU_ASSERT_EQUAL_FATAL(nx_rpc_init(&s->cli, s->l, &cfg, NULL), 0);
    memcpy(m, test_methods, sizeof test_methods);
    m[0].ctx = m[1].ctx = s;
    nx_errbuf eb;
    nx_err_clear(&eb);
    CU_ASSERT_EQUAL_FATAL(nx_rpc_serve(s->srv, "127.0.0.1:0", m, 2, &s->port, &eb), 0);
    snprintf(s->addr, sizeof s->addr, "127.0.0.1:%d", s->port);
}

/* Run until `want` more events, or 10 s. */
static void svc_run(svc *s, int want)
{
    s->events = 0;
    s->want = want;
    s->guard.fn = guard_fire;
    s->guard.ctx = s;
    s->guard.time = nx_loop_now(s->l) + NX_SEC(10);
    nx_loop_at(s->l, &s->guard);
    nx_loop_run(s->l);
    nx_loop_cancel(s->l, &s->guard);
    CU_ASSERT_FALSE(s->timed_out);
}

typedef struct downctx {
    int n;
    nx_loop *l;
} downctx;

static void rpc_stopped(void *ctx)
{
    downctx *d = ctx;
    if (++d->n == 2)
        nx_loop_stop(d->l);
}

static void svc_down(svc *s)
{
    downctx d = {0, s->l};
    s->events = 0;
    s->want = 1 << 30; /* callbacks during the shutdown must not stop the loop */
    nx_rpc_shutdown(s->cli, rpc_stopped, &d);
    nx_rpc_shutdown(s->srv, rpc_stopped, &d);
    s->guard.fn = guard_fire;
    s->guard.ctx = s;
    s->guard.time = nx_loop_now(s->l) + NX_SEC(10);
    nx_loop_at(s->l, &s->guard);
    nx_loop_run(s->l);
    nx_loop_cancel(s->l, &s->guard);
    CU_ASSERT_EQUAL(d.n, 2);
    nx_rpc_free(s->cli);
    nx_rpc_free(s->srv);
    nx_loop_free(s->l);
}

static void unary_done(void *ctx, int code, const char *why, ProtobufCMessage *pm)
{
    svc *s = ctx;
    s->done++;
    s->code = code;
    snprintf(s->why, sizeof s->why, "%s", why);
    if (pm) {
        Nexus__StatusReply *r = (Nexus__StatusReply *)pm;
        s->planning = r->planning;
        s->replies = (int)r->now_ns;
    }
    bump(s);
}

static void test_rpc_unary(void)
{
    svc s;
    nx_rpc_method m[2];
    svc_up(&s, 4096, m);
    nx_rpc_channel *ch = nx_rpc_connect(s.cli, s.addr);
    Nexus__StatusRequest rq = NEXUS__STATUS_REQUEST__INIT;
    /* a plain call */
    CU_ASSERT_EQUAL(nx_rpc_unary(ch, "/nexus.Scheduler/Status", &rq.base,
                                 &nexus__status_reply__descriptor, NX_SEC(5), true, unary_done,
                                 &s), 0);
    svc_run(&s, 1);
    CU_ASSERT_EQUAL(s.code, NX_RPC_OK);
    CU_ASSERT_TRUE(s.planning);
    CU_ASSERT_EQUAL(s.replies, 42);
    /* answered later, from a timer */
    rq.start_run = 1;
    nx_rpc_unary(ch, "/nexus.Scheduler/Status", &rq.base, &nexus__status_reply__descriptor,
                 NX_SEC(5), true, unary_done, &s);
    svc_run(&s, 1);
    CU_ASSERT_EQUAL(s.code, NX_RPC_OK);
    CU_ASSERT_EQUAL(s.replies, 7);
    /* the same, but the client gives up first: DEADLINE_EXCEEDED; the late answer is harmless */
    nx_rpc_unary(ch, "/nexus.Scheduler/Status", &rq.base, &nexus__status_reply__descriptor,
                 NX_MS(20), true, unary_done, &s);
    svc_run(&s, 1);
    CU_ASSERT_EQUAL(s.code, NX_RPC_DEADLINE_EXCEEDED);
    /* malformed bytes: a bad request, not a crash */
    const uint8_t junk[] = {0xff, 0xff, 0xff, 0xff, 0x0f, 0x08};
    nx_rpc_unary_bytes(ch, "/nexus.Scheduler/Status", junk, sizeof junk,
                       &nexus__status_reply__descriptor, NX_SEC(5), true, unary_done, &s);
    svc_run(&s, 1);
    CU_ASSERT_EQUAL(s.code, NX_RPC_INVALID_ARGUMENT);
    CU_ASSERT_PTR_NOT_NULL(strstr(s.why, "does not parse"));
    /* every truncation of a valid request: OK or INVALID_ARGUMENT, never a crash */
    Nexus__StatusRequest big = NEXUS__STATUS_REQUEST__INIT;
    uint8_t buf[64];
    size_t len = protobuf_c_message_pack(&big.base, buf);
    for (size_t k = 0; k <= len; k++) {
        nx_rpc_unary_bytes(ch, "/nexus.Scheduler/Status", buf, k,
                           &nexus__status_reply__descriptor, NX_SEC(5), true, unary_done, &s);
        svc_run(&s, 1);
        CU_ASSERT(s.code == NX_RPC_OK || s.code == NX_RPC_INVALID_ARGUMENT);
    }
    /* unknown method */
    nx_rpc_unary(ch, "/nexus.Scheduler/Nope", &rq.base, &nexus__status_reply__descriptor,
                 NX_SEC(5), true, unary_done, &s);
    svc_run(&s, 1);
    CU_ASSERT_EQUAL(s.code, NX_RPC_UNIMPLEMENTED);
    /* over the message limit (4 KiB here) */
    uint8_t *huge = calloc(1, 8192);
    nx_rpc_unary_bytes(ch, "/nexus.Scheduler/Status", huge, 8192,
                       &nexus__status_reply__descriptor, NX_SEC(5), true, unary_done, &s);
    svc_run(&s, 1);
    CU_ASSERT_EQUAL(s.code, NX_RPC_RESOURCE_EXHAUSTED);
    free(huge);
    /* nobody listening: fails fast */
    nx_rpc_channel *dead = nx_rpc_connect(s.cli, "127.0.0.1:1");
    rq.start_run = 0;
    nx_rpc_unary(dead, "/nexus.Scheduler/Status", &rq.base, &nexus__status_reply__descriptor,
                 NX_SEC(5), false, unary_done, &s);
    svc_run(&s, 1);
    CU_ASSERT_EQUAL(s.code, NX_RPC_UNAVAILABLE);
    svc_down(&s);
}

static void cli_msg(nx_rpc_call *c, ProtobufCMessage *pm)
{
    svc *s = nx_rpc_user(c);
    Nexus__ReplyBatch *rb = (Nexus__ReplyBatch *)pm;
    for (size_t i = 0; i < rb->n_replies; i++) {
        CU_ASSERT_EQUAL(rb->replies[i]->output.len, 3);
        s->replies++;
    }
    bump(s);
}

static void cli_close(nx_rpc_call *c, int code, const char *why)
{
    svc *s = nx_rpc_user(c);
    s->client_closes++;
    s->client_close_code = code;
    snprintf(s->client_close_why, sizeof s->client_close_why, "%s", why);
    bump(s);
}

static const nx_rpc_stream_ops cli_ops = {
    .in = &nexus__reply_batch__descriptor,
    .on_msg = cli_msg,
    .on_close = cli_close,
};

static void send_batch(nx_rpc_call *c, uint64_t first, int n)
{
    Nexus__Query q[8], *qp[8];
    for (int i = 0; i < n; i++) {
        nexus__query__init(&q[i]);
        q[i].id = first + (uint64_t)i;
        q[i].input.data = (uint8_t *)"abc";
        q[i].input.len = 3;
        qp[i] = &q[i];
    }
    Nexus__QueryBatch qb = NEXUS__QUERY_BATCH__INIT;
    qb.n_queries = (size_t)n;
    qb.queries = qp;
    CU_ASSERT_EQUAL(nx_rpc_send(c, &qb.base), 0);
}

static void test_rpc_stream(void)
{
    svc s;
    nx_rpc_method m[2];
    svc_up(&s, 0, m);
    nx_rpc_channel *ch = nx_rpc_connect(s.cli, s.addr);
    nx_rpc_call *c;
    CU_ASSERT_EQUAL_FATAL(nx_rpc_open(ch, "/nexus.Backend/Serve", &cli_ops, &s, true, &c), 0);
    /* 100 messages of 4 queries each, queued at once: 400 replies in order */
    for (int k = 0; k < 100; k++)
        send_batch(c, (uint64_t)k * 4, 4);
    CU_ASSERT(nx_rpc_queued(c) > 0);
    svc_run(&s, 100);
    CU_ASSERT_EQUAL(s.replies, 400);
    CU_ASSERT_EQUAL(s.stream_msgs, 100);
    /* the server ends it with a status: the client hears code and reason */
    send_batch(c, 999, 1);
    svc_run(&s, 1);
    CU_ASSERT_EQUAL(s.client_closes, 1);
    CU_ASSERT_EQUAL(s.client_close_code, NX_RPC_FAILED_PRECONDITION);
    CU_ASSERT_STRING_EQUAL(s.client_close_why, "told to close");
    /* a client that goes away: the server's on_close fires */
    s.stream_closes = 0;
    CU_ASSERT_EQUAL_FATAL(nx_rpc_open(ch, "/nexus.Backend/Serve", &cli_ops, &s, true, &c), 0);
    send_batch(c, 1, 1);
    svc_run(&s, 1); /* its reply */
    nx_rpc_close(c, NX_RPC_CANCELLED, "bye");
    svc_run(&s, 1);
    CU_ASSERT_EQUAL(s.stream_closes, 1);
    CU_ASSERT_EQUAL(s.last_close_code, NX_RPC_CANCELLED);
    /* shutdown with a live stream and its queued messages */
    CU_ASSERT_EQUAL_FATAL(nx_rpc_open(ch, "/nexus.Backend/Serve", &cli_ops, &s, true, &c), 0);
    for (int k = 0; k < 10; k++)
        send_batch(c, 5000, 8);
    svc_down(&s);
}

/* ---- wire and kserve checks -------------------------------------------------------------------- */

static void test_wire(void)
{
    nx_profile p;
    memset(&p, 0, sizeof p);
    p.max_batch = 8;
    nx_session sess[2] = {{.id = 0, .prof = &p}, {.id = 1, .prof = &p}};
    char why[200];
    /* tables */
    Nexus__TableEntry e[3], *ep[3] = {&e[0], &e[1], &e[2]};
    for (int i = 0; i < 3; i++)
        nexus__table_entry__init(&e[i]);
    Nexus__ModelTable t = NEXUS__MODEL_TABLE__INIT;
    t.entries = ep;
    t.n_entries = 2;
    e[0].session = 0, e[0].batch = 4, e[1].session = 1, e[1].batch = 8;
    nx_table_msg *tm;
    CU_ASSERT_EQUAL(nx_wire_table_from(&t, sess, 2, &tm, why, sizeof why), 0);
    CU_ASSERT_EQUAL(tm->n, 2);
    CU_ASSERT_EQUAL(tm->e[1].batch, 8);
    free(tm);
    e[1].batch = 9;
    CU_ASSERT_EQUAL(nx_wire_table_from(&t, sess, 2, &tm, why, sizeof why), NX_ERR_INVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(why, "batch 9"));
    e[1].batch = 1, e[1].session = 2;
    CU_ASSERT_EQUAL(nx_wire_table_from(&t, sess, 2, &tm, why, sizeof why), NX_ERR_INVAL);
    e[1].session = 0;
    CU_ASSERT_EQUAL(nx_wire_table_from(&t, sess, 2, &tm, why, sizeof why), NX_ERR_INVAL);
    t.n_entries = 3;
    CU_ASSERT_EQUAL(nx_wire_table_from(&t, sess, 2, &tm, why, sizeof why), NX_ERR_INVAL);
    /* routes: round trip, then every kind of damage */
    nx_routes_msg *rm = nx_routes_msg_new(2, 3);
    int off[3] = {0, 2, 3}, gpu[3] = {0, 3, 1};
    double w[3] = {1, 2, 3};
    memcpy(rm->off, off, sizeof off);
    memcpy(rm->gpu, gpu, sizeof gpu);
    memcpy(rm->w, w, sizeof w);
    rm->slo_us[0] = 5000, rm->slo_us[1] = 7000;
    Nexus__Routes pr;
    nx_wire_routes_to(rm, &pr);
    uint8_t buf[512];
    size_t len = protobuf_c_message_pack(&pr.base, buf);
    Nexus__Routes *back = nexus__routes__unpack(NULL, len, buf);
    CU_ASSERT_PTR_NOT_NULL_FATAL(back);
    nx_routes_msg *r2;
    CU_ASSERT_EQUAL(nx_wire_routes_from(back, 2, 4, &r2, why, sizeof why), 0);
    CU_ASSERT_EQUAL(r2->off[2], 3);
    CU_ASSERT_EQUAL(r2->gpu[1], 3);
    CU_ASSERT_DOUBLE_EQUAL(r2->slo_us[1], 7000, 1e-9);
    bool keep[4] = {true, false, true, true};
    nx_routes_msg *f = nx_wire_routes_filter(r2, keep);
    CU_ASSERT_EQUAL(f->off[1], 2); /* session 0 keeps GPUs 0 and 3 ... */
    CU_ASSERT_EQUAL(f->off[2], 2); /* ... session 1 loses its only one, GPU 1 */
    CU_ASSERT_EQUAL(f->gpu[1], 3);
    free(f);
    free(r2);
    CU_ASSERT_EQUAL(nx_wire_routes_from(back, 2, 3, &r2, why, sizeof why), NX_ERR_INVAL); /* gpu 3 */
    CU_ASSERT_EQUAL(nx_wire_routes_from(back, 3, 4, &r2, why, sizeof why), NX_ERR_INVAL);
    back->gpu[1] = 0; /* not increasing */
    CU_ASSERT_EQUAL(nx_wire_routes_from(back, 2, 4, &r2, why, sizeof why), NX_ERR_INVAL);
    back->gpu[1] = 3;
    back->weight[0] = -1;
    CU_ASSERT_EQUAL(nx_wire_routes_from(back, 2, 4, &r2, why, sizeof why), NX_ERR_INVAL);
    back->weight[0] = 1;
    back->off[1] = 4; /* past the end, and decreasing after */
    CU_ASSERT_EQUAL(nx_wire_routes_from(back, 2, 4, &r2, why, sizeof why), NX_ERR_INVAL);
    back->off[1] = 2;
    back->n_slo_us = 1;
    CU_ASSERT_EQUAL(nx_wire_routes_from(back, 2, 4, &r2, why, sizeof why), NX_ERR_INVAL);
    nexus__routes__free_unpacked(back, NULL);
    free(rm);
    /* rates */
    Nexus__Rates ra = NEXUS__RATES__INIT;
    uint32_t counts[6] = {1, 2, 3, 4, 5, 6};
    ra.nsess = 2, ra.nsamples = 3, ra.counts = counts, ra.n_counts = 6;
    nx_rates_msg *rt;
    CU_ASSERT_EQUAL(nx_wire_rates_from(&ra, 2, &rt, why, sizeof why), 0);
    CU_ASSERT_EQUAL(rt->counts[5], 6);
    free(rt);
    ra.n_counts = 5;
    CU_ASSERT_EQUAL(nx_wire_rates_from(&ra, 2, &rt, why, sizeof why), NX_ERR_INVAL);
    ra.n_counts = 6, ra.nsamples = -3;
    CU_ASSERT_EQUAL(nx_wire_rates_from(&ra, 2, &rt, why, sizeof why), NX_ERR_INVAL);
}

static void test_kserve_input(void)
{
    Inference__ModelInferRequest rq = INFERENCE__MODEL_INFER_REQUEST__INIT;
    Inference__ModelInferRequest__InferInputTensor t =
        INFERENCE__MODEL_INFER_REQUEST__INFER_INPUT_TENSOR__INIT;
    Inference__ModelInferRequest__InferInputTensor *tp[2] = {&t, &t};
    Inference__InferTensorContents ct = INFERENCE__INFER_TENSOR_CONTENTS__INIT;
    int64_t shape[2] = {2, 3};
    float vals[6] = {1, 2, 3, 4, 5, 6};
    ProtobufCBinaryData raw = {.len = sizeof vals, .data = (uint8_t *)vals};
    const uint8_t *data;
    size_t len;
    char why[200];
    /* no input at all: fine (an empty input) */
    CU_ASSERT_EQUAL(nx_kserve_input(&rq, &data, &len, why, sizeof why), 0);
    CU_ASSERT_EQUAL(len, 0);
    rq.n_inputs = 1, rq.inputs = tp;
    t.datatype = "FP32", t.n_shape = 2, t.shape = shape;
    rq.n_raw_input_contents = 1, rq.raw_input_contents = &raw;
    CU_ASSERT_EQUAL(nx_kserve_input(&rq, &data, &len, why, sizeof why), 0);
    CU_ASSERT_EQUAL(len, 24);
    raw.len = 20;
    CU_ASSERT_EQUAL(nx_kserve_input(&rq, &data, &len, why, sizeof why), NX_ERR_INVAL);
    raw.len = 24;
    t.datatype = "INT8";
    CU_ASSERT_EQUAL(nx_kserve_input(&rq, &data, &len, why, sizeof why), NX_ERR_INVAL);
    t.datatype = "FP32";
    shape[0] = -1;
    CU_ASSERT_EQUAL(nx_kserve_input(&rq, &data, &len, why, sizeof why), NX_ERR_INVAL);
    shape[0] = (int64_t)1 << 40; /* overflow */
    CU_ASSERT_EQUAL(nx_kserve_input(&rq, &data, &len, why, sizeof why), NX_ERR_INVAL);
    shape[0] = 2;
    rq.n_inputs = 2;
    CU_ASSERT_EQUAL(nx_kserve_input(&rq, &data, &len, why, sizeof why), NX_ERR_INVAL);
    rq.n_inputs = 1;
    /* typed contents */
    rq.n_raw_input_contents = 0;
    t.contents = &ct;
    ct.fp32_contents = vals, ct.n_fp32_contents = 6;
    CU_ASSERT_EQUAL(nx_kserve_input(&rq, &data, &len, why, sizeof why), 0);
    CU_ASSERT_PTR_EQUAL(data, (const uint8_t *)vals);
    ct.n_fp32_contents = 5;
    CU_ASSERT_EQUAL(nx_kserve_input(&rq, &data, &len, why, sizeof why), NX_ERR_INVAL);
    ct.n_fp32_contents = 6;
    rq.n_raw_input_contents = 1; /* both */
    CU_ASSERT_EQUAL(nx_kserve_input(&rq, &data, &len, why, sizeof why), NX_ERR_INVAL);
}

static void test_catalog(void)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/tests/real/e2e.yml", nx_tu_root());
    nx_catalog a, b, c;
    nx_errbuf eb;
    nx_err_clear(&eb);
    CU_ASSERT_EQUAL_FATAL(nx_catalog_load(&a, path, NULL, 1.0, &eb), 0);
    CU_ASSERT_EQUAL(a.nsess, 2);
    CU_ASSERT_EQUAL(nx_catalog_app(&a, "scenes"), 1);
    CU_ASSERT_EQUAL(nx_catalog_app(&a, "nope"), -1);
    CU_ASSERT_DOUBLE_EQUAL(a.sess[0].est_rate, 300, 1e-9);
    CU_ASSERT_EQUAL_FATAL(nx_catalog_load(&b, path, "nexus", 1.0, &eb), 0);
    CU_ASSERT_EQUAL(a.hash, b.hash);
    CU_ASSERT_EQUAL_FATAL(nx_catalog_load(&c, path, NULL, 2.0, &eb), 0);
    CU_ASSERT_NOT_EQUAL(a.hash, c.hash); /* another scale plans other rates: refused */
    nx_catalog_free(&a);
    nx_catalog_free(&b);
    nx_catalog_free(&c);
    nx_err_clear(&eb);
    CU_ASSERT_EQUAL(nx_catalog_load(&a, path, "nope", 1.0, &eb), NX_ERR_NOTFOUND);
    CU_ASSERT_PTR_NOT_NULL(strstr(eb.msg, "nope"));
    nx_catalog_free(&a);
}

int main(void)
{
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    CU_pSuite su = CU_add_suite("real", NULL, NULL);
    if (!su || !CU_add_test(su, "loop: timers in (time, seq) order, cancel", test_loop_timers) ||
        !CU_add_test(su, "loop: the same with a timerfd", test_loop_timers_timerfd) ||
        !CU_add_test(su, "loop: posts from a thread, SIGTERM", test_loop_posts_and_signals) ||
        !CU_add_test(su, "rpc: unary calls, bad and oversized requests, deadlines",
                     test_rpc_unary) ||
        !CU_add_test(su, "rpc: streams, closes from both sides, shutdown", test_rpc_stream) ||
        !CU_add_test(su, "wire: engine messages and their checks", test_wire) ||
        !CU_add_test(su, "kserve: input tensor checks", test_kserve_input) ||
        !CU_add_test(su, "catalog: the simulator's sessions, hash", test_catalog)) {
        CU_cleanup_registry();
        return 1;
    }
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    unsigned fails = CU_get_number_of_failures();
    unsigned tfail = CU_get_number_of_tests_failed();
    CU_cleanup_registry();
    return fails || tfail ? 1 : 0;
}
