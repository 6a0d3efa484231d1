/* test_rpc.c — CUnit suite for the real cluster's building blocks: the event
 * loop (timer order, cancellation, cross-thread posts, signals), the gRPC
 * layer (unary and streaming calls, deferred replies, malformed, truncated
 * and oversized messages, unknown methods, deadlines, closes from either side,
 * shutdown with calls in flight), the engine-message <-> protobuf conversions and
 * their checks, KServe v2 input checks, and the catalog's hash. */
#include <CUnit/Basic.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "setup.h"
#include "kserve.h"
#include "load.h"
#include "loop.h"
#include "nexus.pb-c.h"
#include "rpc.h"
#include "statefile.h"
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
    int accepted;              /* client streams the server accepted (on_accepted) */
    int replies_at_accept;     /* replies heard before the last on_accepted */
    Nexus__QueryBatch *echoed;   /* the last echo's reply, unpacked (NULL if none) */
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

/* /nexus.Test/Echo: the request as the server decoded it, packed back as the reply. */
static void echo_handler(void *ctx, nx_rpc_call *c, ProtobufCMessage *pm)
{
    nx_rpc_reply(c, pm);
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

#define NMETHODS 3
static const nx_rpc_method test_methods[NMETHODS] = {
    {.path = "/nexus.Scheduler/Status", .req = &nexus__status_request__descriptor,
     .on_unary = status_handler},
    {.path = "/nexus.Backend/Serve", .stream = &srv_stream_ops, .on_open = srv_stream_open},
    {.path = "/nexus.Test/Echo", .req = &nexus__query_batch__descriptor,
     .on_unary = echo_handler},
};

static void svc_up(svc *s, size_t max_msg, nx_rpc_method *m)
{
    memset(s, 0, sizeof *s);
    CU_ASSERT_EQUAL_FATAL(nx_loop_init(&s->l, NULL), 0);
    nx_rpc_cfg cfg = {.max_msg = max_msg};
    CU_ASSERT_EQUAL_FATAL(nx_rpc_init(&s->srv, s->l, &cfg, NULL), 0);
    CU_ASSERT_EQUAL_FATAL(nx_rpc_init(&s->cli, s->l, &cfg, NULL), 0);
    memcpy(m, test_methods, sizeof test_methods);
    for (int i = 0; i < NMETHODS; i++)
        m[i].ctx = s;
    nx_errbuf eb;
    nx_err_clear(&eb);
    CU_ASSERT_EQUAL_FATAL(nx_rpc_serve(s->srv, "127.0.0.1:0", m, NMETHODS, &s->port, &eb), 0);
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

static void echo_done(void *ctx, int code, const char *why, ProtobufCMessage *pm)
{
    svc *s = ctx;
    s->done++;
    s->code = code;
    snprintf(s->why, sizeof s->why, "%s", why);
    if (s->echoed)
        protobuf_c_message_free_unpacked(&s->echoed->base, NULL);
    s->echoed = NULL;
    if (pm) { /* a copy: the rpc layer frees pm when this returns */
        uint8_t buf[1024];
        size_t n = protobuf_c_message_get_packed_size(pm);
        CU_ASSERT_FATAL(n <= sizeof buf);
        protobuf_c_message_pack(pm, buf);
        s->echoed = nexus__query_batch__unpack(NULL, n, buf);
    }
    bump(s);
}

/* Whether echoed query e equals q field by field. */
static bool query_eq(const Nexus__Query *e, const Nexus__Query *q)
{
    return e->id == q->id && e->session == q->session && e->slack_ns == q->slack_ns &&
           e->input.len == q->input.len &&
           (q->input.len == 0 || memcmp(e->input.data, q->input.data, q->input.len) == 0);
}

/* Every truncation of a non-empty request. Protobuf has no end marker, so a prefix
 * that ends between two top-level fields is a valid, shorter message; every other
 * prefix (inside a tag, a varint, a length or a nested message) must be refused.
 * The boundaries are computed by packing the first j queries, not by decoding. */
static void check_truncations(svc *s, nx_rpc_channel *ch)
{
    static uint8_t blob[130];
    for (size_t i = 0; i < sizeof blob; i++)
        blob[i] = (uint8_t)(i * 7 + 1);
    Nexus__Query q[3], *qp[3];
    for (int i = 0; i < 3; i++) {
        nexus__query__init(&q[i]);
        qp[i] = &q[i];
    }
    q[0].id = 1, q[0].session = 2, q[0].slack_ns = -5;   /* a 10-byte varint */
    q[0].input.data = (uint8_t *)"abc", q[0].input.len = 3;
    q[1].id = 300, q[1].slack_ns = 1000000000;            /* session 0, no input: omitted */
    q[2].id = 1ull << 40, q[2].session = 7;
    q[2].input.data = blob, q[2].input.len = sizeof blob; /* a 2-byte nested length */
    Nexus__QueryBatch qb = NEXUS__QUERY_BATCH__INIT;
    qb.queries = qp;
    size_t bound[4];   /* bound[j]: the packed size of the first j queries alone */
    for (int j = 0; j <= 3; j++) {
        qb.n_queries = (size_t)j;
        bound[j] = protobuf_c_message_get_packed_size(&qb.base);
    }
    qb.whole = 1;
    uint8_t buf[512];
    size_t len = protobuf_c_message_pack(&qb.base, buf);
    CU_ASSERT_EQUAL(bound[0], 0);
    CU_ASSERT(bound[1] > 12 && bound[2] > bound[1] && bound[3] > bound[2] + 130);
    CU_ASSERT_EQUAL(len, bound[3] + 2);   /* whole = true: tag and one byte, last */
    int accepted = 0, refused = 0;
    for (size_t k = 0; k <= len; k++) {
        int j = -1;   /* queries in a valid prefix; -1: not a field boundary */
        for (int b = 0; b <= 3; b++)
            if (k == bound[b])
                j = b;
        if (k == len)
            j = 3;
        s->code = -1;
        nx_rpc_unary_bytes(ch, "/nexus.Test/Echo", buf, k, &nexus__query_batch__descriptor,
                           NX_SEC(5), true, echo_done, s);
        svc_run(s, 1);
        if (j < 0) {
            if (s->code != NX_RPC_INVALID_ARGUMENT || !strstr(s->why, "does not parse"))
                fprintf(stderr, "\n  truncation to %zu of %zu bytes: code %d (%s), want %d\n", k,
                        len, s->code, s->why, NX_RPC_INVALID_ARGUMENT);
            CU_ASSERT_EQUAL(s->code, NX_RPC_INVALID_ARGUMENT);
            CU_ASSERT_PTR_NOT_NULL(strstr(s->why, "does not parse"));
            refused += s->code == NX_RPC_INVALID_ARGUMENT;
            continue;
        }
        if (s->code != NX_RPC_OK)
            fprintf(stderr, "\n  prefix of %zu bytes (%d queries): code %d (%s), want OK\n", k, j,
                    s->code, s->why);
        CU_ASSERT_EQUAL(s->code, NX_RPC_OK);
        CU_ASSERT_PTR_NOT_NULL_FATAL(s->echoed);
        CU_ASSERT_EQUAL(s->echoed->n_queries, (size_t)j);
        for (int i = 0; i < j && i < (int)s->echoed->n_queries; i++)
            CU_ASSERT_TRUE(query_eq(s->echoed->queries[i], &q[i]));
        CU_ASSERT_EQUAL(s->echoed->whole, k == len);
        accepted++;
    }
    CU_ASSERT_EQUAL(accepted, 5);   /* 0, 1, 2 and 3 queries, and the whole message */
    CU_ASSERT_EQUAL(refused, (int)len + 1 - 5);
    if (s->echoed)
        protobuf_c_message_free_unpacked(&s->echoed->base, NULL);
    s->echoed = NULL;
}

static void test_rpc_unary(void)
{
    svc s;
    nx_rpc_method m[NMETHODS];
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
    /* every truncation of a non-empty request: refused, or a shorter valid message */
    check_truncations(&s, ch);
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

static void cli_accepted(nx_rpc_call *c)
{
    svc *s = nx_rpc_user(c);
    s->accepted++;
    s->replies_at_accept = s->replies;
}

static const nx_rpc_stream_ops cli_ops = {
    .in = &nexus__reply_batch__descriptor,
    .on_msg = cli_msg,
    .on_close = cli_close,
    .on_accepted = cli_accepted,
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
    nx_rpc_method m[NMETHODS];
    svc_up(&s, 0, m);
    nx_rpc_channel *ch = nx_rpc_connect(s.cli, s.addr);
    nx_rpc_call *c;
    CU_ASSERT_EQUAL_FATAL(nx_rpc_open(ch, "/nexus.Backend/Serve", &cli_ops, &s, true, &c), 0);
    /* 100 messages of 4 queries each, queued at once: 400 replies in order */
    for (int k = 0; k < 100; k++)
        send_batch(c, (uint64_t)k * 4, 4);
    CU_ASSERT(nx_rpc_queued(c) > 0);
    CU_ASSERT_EQUAL(s.accepted, 0); /* nothing can have arrived yet */
    svc_run(&s, 100);
    CU_ASSERT_EQUAL(s.replies, 400);
    CU_ASSERT_EQUAL(s.stream_msgs, 100);
    CU_ASSERT_EQUAL(s.accepted, 1); /* once, before the first reply */
    CU_ASSERT_EQUAL(s.replies_at_accept, 0);
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
    /* streams the server refuses (a status alone: gRPC completes the client's initial
     * metadata for it too, hence the accept marker) or nobody answers: never accepted */
    s.accepted = s.client_closes = 0;
    CU_ASSERT_EQUAL_FATAL(nx_rpc_open(ch, "/nexus.Backend/Nope", &cli_ops, &s, true, &c), 0);
    send_batch(c, 1, 1);
    svc_run(&s, 1);
    CU_ASSERT_EQUAL(s.client_close_code, NX_RPC_UNIMPLEMENTED);
    nx_rpc_channel *dead = nx_rpc_connect(s.cli, "127.0.0.1:1");
    CU_ASSERT_EQUAL_FATAL(nx_rpc_open(dead, "/nexus.Backend/Serve", &cli_ops, &s, false, &c), 0);
    svc_run(&s, 1);
    CU_ASSERT_EQUAL(s.client_close_code, NX_RPC_UNAVAILABLE);
    CU_ASSERT_EQUAL(s.client_closes, 2);
    CU_ASSERT_EQUAL(s.accepted, 0);
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
    /* a plan that routes nothing (every backend gone): no arrays on the wire */
    rm = nx_routes_msg_new(2, 0);
    rm->slo_us[0] = 5000, rm->slo_us[1] = 7000;
    nx_wire_routes_to(rm, &pr);
    len = protobuf_c_message_pack(&pr.base, buf);
    back = nexus__routes__unpack(NULL, len, buf);
    CU_ASSERT_PTR_NOT_NULL_FATAL(back);
    CU_ASSERT_EQUAL(nx_wire_routes_from(back, 2, 4, &r2, why, sizeof why), 0);
    CU_ASSERT_EQUAL(r2->off[2], 0);
    free(r2);
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
    ra.n_counts = 0, ra.nsamples = 0, ra.counts = NULL; /* no interval yet */
    CU_ASSERT_EQUAL(nx_wire_rates_from(&ra, 2, &rt, why, sizeof why), 0);
    CU_ASSERT_EQUAL(rt->nsamples, 0);
    free(rt);
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
    nx_setup a, b, c;
    nx_errbuf eb;
    nx_err_clear(&eb);
    CU_ASSERT_EQUAL_FATAL(nx_setup_load(&a, path, NULL, 1.0, &eb), 0);
    CU_ASSERT_EQUAL(a.cat.nsess, 2);
    CU_ASSERT_PTR_EQUAL(a.cat.x, &a.x);
    CU_ASSERT_EQUAL(nx_catalog_app(&a.cat, "scenes"), 1);
    CU_ASSERT_EQUAL(nx_catalog_app(&a.cat, "nope"), -1);
    CU_ASSERT_DOUBLE_EQUAL(a.cat.sess[0].est_rate, 300, 1e-9);
    CU_ASSERT_DOUBLE_EQUAL(a.cat.sess[0].slo_us, 50000, 0);   /* classify: the app's SLO */
    CU_ASSERT_DOUBLE_EQUAL(a.cat.sess[1].slo_us, 40000, 0);   /* scenes */
    CU_ASSERT_STRING_EQUAL(a.cat.sess[1].prof->model, "googlenet");
    CU_ASSERT_STRING_EQUAL(a.cat.combo->name, "nexus");   /* NULL: the first combination */
    CU_ASSERT_EQUAL_FATAL(nx_setup_load(&b, path, "deferred", 1.0, &eb), 0);
    CU_ASSERT_STRING_EQUAL(b.cat.combo->name, "deferred");
    CU_ASSERT_STRING_EQUAL(b.cat.pol.batching->name, "deferred");
    CU_ASSERT_EQUAL(b.cat.nfrontends, 1);                 /* central dispatch: one frontend */
    CU_ASSERT_NOT_EQUAL(a.cat.hash, b.cat.hash);          /* another policy: refused */
    CU_ASSERT_EQUAL_FATAL(nx_setup_load(&c, path, NULL, 2.0, &eb), 0);
    CU_ASSERT_DOUBLE_EQUAL(c.cat.sess[0].est_rate, 600, 1e-9);
    CU_ASSERT_NOT_EQUAL(a.cat.hash, c.cat.hash);          /* another scale plans other rates */
    nx_setup_free(&c);
    CU_ASSERT_EQUAL_FATAL(nx_setup_load(&c, path, "nexus", 1.0, &eb), 0);
    CU_ASSERT_EQUAL(a.cat.hash, c.cat.hash);              /* the same file and policy: accepted */
    nx_setup_free(&a);
    nx_setup_free(&b);
    nx_setup_free(&c);
    nx_err_clear(&eb);
    CU_ASSERT_EQUAL(nx_setup_load(&a, path, "nope", 1.0, &eb), NX_ERR_NOTFOUND);
    CU_ASSERT_PTR_NOT_NULL(strstr(eb.msg, "nope"));
    nx_setup_free(&a);
}

/* The scheduler's state file: an exact round trip, every truncation and
 * 3,000 random corruptions refused or read without a crash (ASan), foreign
 * and missing files told apart. */
static void test_statefile(void)
{
    char *d = nx_tu_tmpdir();
    char path[1024], trunc[1024];
    snprintf(path, sizeof path, "%s/state", d);
    snprintf(trunc, sizeof trunc, "%s/bad", d);
    nx_sched_state st, got;
    nx_sched_state_init(&st, 3, 2, 4);
    st.epoch = 12345678901ull;
    for (int s = 0; s < 3; s++) {
        st.plan_rate[s] = 100.0 / (s + 3);
        st.rate[s] = s == 2 ? 0 : 1e-7 + s;
        st.hist[s] = 7 * s;
        st.budget[s] = 25000.5 + s;
        st.ewma[s * 2 + 1] = st.rate[s] / 3;
        st.seen[s * 2 + 1] = (uint8_t)(s != 1);
    }
    nx_plan_add(&st.plan, 0, 0, 8, 33.25, 41.5);
    nx_plan_add(&st.plan, 3, 4, 1, 0.1, 1.0 / 7); /* a prefix unit (id >= nsess) */
    nx_plan_add(&st.plan, 3, 2, 64, 1e6 / 3, 2e6 / 3);
    nx_statefile_node nodes[4] = {{0}}, gotn[4];
    st.alive[1] = st.alive[3] = 1; /* backends on slots 1 and 3 (slot 2: one gone since) */
    nodes[1] = (nx_statefile_node){.incarnation = 0xfedcba9876543210ull, .addr = "10.1.2.3:7001"};
    nodes[2] = (nx_statefile_node){.incarnation = 5, .addr = "gone:1"};
    nodes[3] = (nx_statefile_node){.incarnation = 0, .addr = "[::1]:40000"};
    nx_statefile_id id = {.experiment = "exp", .policy = "nexus", .catalog = 0xfedcba9876543210ull};
    nx_errbuf eb;
    nx_err_clear(&eb);
    CU_ASSERT_EQUAL_FATAL(nx_statefile_write(path, &id, &st, nodes, 99, 7, &eb), 0);
    nx_sched_state_init(&got, 3, 2, 4);
    uint64_t ep = 0, tr = 0;
    CU_ASSERT_EQUAL_FATAL(nx_statefile_read(path, &id, &got, gotn, &ep, &tr, &eb), 0);
    CU_ASSERT_EQUAL(ep, 99);
    CU_ASSERT_EQUAL(tr, 7);
    CU_ASSERT_EQUAL(got.epoch, st.epoch);
    for (int s = 0; s < 3; s++) {
        CU_ASSERT_EQUAL(got.plan_rate[s], st.plan_rate[s]); /* bit for bit */
        CU_ASSERT_EQUAL(got.rate[s], st.rate[s]);
        CU_ASSERT_EQUAL(got.hist[s], st.hist[s]);
        CU_ASSERT_EQUAL(got.budget[s], st.budget[s]);
        for (int f = 0; f < 2; f++) {
            CU_ASSERT_EQUAL(got.seen[s * 2 + f], st.seen[s * 2 + f]);
            CU_ASSERT_EQUAL(got.ewma[s * 2 + f], st.seen[s * 2 + f] ? st.ewma[s * 2 + f] : 0);
        }
    }
    CU_ASSERT_EQUAL(got.plan.used, 2);
    for (int g = 0; g < 4; g++) {
        CU_ASSERT_EQUAL(got.alive[g], st.alive[g]);
        CU_ASSERT_EQUAL(gotn[g].incarnation, st.alive[g] ? nodes[g].incarnation : 0);
        CU_ASSERT_STRING_EQUAL(gotn[g].addr, st.alive[g] ? nodes[g].addr : "");
    }
    for (int g = 0; g < 4; g++) {
        CU_ASSERT_EQUAL_FATAL(got.plan.gpu[g].n, st.plan.gpu[g].n);
        for (int i = 0; i < st.plan.gpu[g].n; i++) {
            CU_ASSERT_EQUAL(got.plan.gpu[g].a[i].session, st.plan.gpu[g].a[i].session);
            CU_ASSERT_EQUAL(got.plan.gpu[g].a[i].batch, st.plan.gpu[g].a[i].batch);
            CU_ASSERT_EQUAL(got.plan.gpu[g].a[i].rate, st.plan.gpu[g].a[i].rate);
            CU_ASSERT_EQUAL(got.plan.gpu[g].a[i].throughput, st.plan.gpu[g].a[i].throughput);
        }
    }
    char tmp[1100];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    CU_ASSERT_NOT_EQUAL(access(tmp, F_OK), 0); /* renamed over, nothing left */
    size_t len;
    char *text = nx_tu_read(path, &len);
    CU_ASSERT_PTR_NOT_NULL_FATAL(text);
    /* every truncation: refused naming PATH:LINE (the last newline alone may go) */
    int refused = 0;
    for (size_t n = 0; n < len; n++) {
        FILE *f = fopen(trunc, "w");
        fwrite(text, 1, n, f);
        fclose(f);
        nx_err_clear(&eb);
        int rc = nx_statefile_read(trunc, &id, &got, gotn, &ep, &tr, &eb);
        if (n + 1 < len) {
            /* a name or the hash cut short reads as another experiment's */
            refused += rc == NX_ERR_PARSE || rc == NX_ERR_CONFIG;
            if (rc != NX_ERR_PARSE && rc != NX_ERR_CONFIG)
                printf("\ntruncated at %zu of %zu: rc %d\n", n, len, rc);
            CU_ASSERT_PTR_NOT_NULL(strstr(eb.msg, trunc));
        } else {
            CU_ASSERT_EQUAL(rc, 0);
        }
    }
    CU_ASSERT_EQUAL(refused, (int)len - 1);
    /* random corruptions: a byte changed, inserted or removed */
    uint64_t seed = 42;
    int ok = 0, bad = 0;
    for (int k = 0; k < 3000; k++) {
        char *m = nx_malloc(len + 2);
        memcpy(m, text, len);
        size_t n = len;
        seed = seed * 6364136223846793005ull + 1442695040888963407ull;
        size_t at = (size_t)(seed >> 33) % len;
        char c = (char)(seed >> 20);
        int how = (int)(seed >> 60) % 3;
        if (how == 0) {
            m[at] = c;
        } else if (how == 1) {
            memmove(m + at + 1, m + at, n - at);
            m[at] = c;
            n++;
        } else {
            memmove(m + at, m + at + 1, n - at - 1);
            n--;
        }
        FILE *f = fopen(trunc, "w");
        fwrite(m, 1, n, f);
        fclose(f);
        free(m);
        int rc = nx_statefile_read(trunc, &id, &got, gotn, &ep, &tr, &eb);
        rc == 0 ? ok++ : bad++;
        CU_ASSERT(rc == 0 || rc == NX_ERR_PARSE || rc == NX_ERR_CONFIG);
    }
    CU_ASSERT(bad > 2000); /* most corruptions are caught; a digit changed reads as a number */
    /* a file written before the 'backend' lines: read, no backend taken back */
    char *bk = strstr(text, "backend 1 ");
    char *end = strstr(text, "end\n");
    CU_ASSERT_FATAL(bk && end && bk < end);
    FILE *f = fopen(trunc, "w");
    fwrite(text, 1, (size_t)(bk - text), f);
    fputs("end\n", f);
    fclose(f);
    CU_ASSERT_EQUAL(nx_statefile_read(trunc, &id, &got, gotn, &ep, &tr, &eb), 0);
    CU_ASSERT(!got.alive[0] && !got.alive[1] && !got.alive[2] && !got.alive[3]);
    CU_ASSERT_EQUAL(got.plan.used, 2);
    /* a slot twice: refused, naming the line */
    f = fopen(trunc, "w");
    fwrite(text, 1, (size_t)(end - text), f);
    fputs("backend 3 9 other:1\nend\n", f);
    fclose(f);
    nx_err_clear(&eb);
    CU_ASSERT_EQUAL(nx_statefile_read(trunc, &id, &got, gotn, &ep, &tr, &eb), NX_ERR_PARSE);
    CU_ASSERT_PTR_NOT_NULL(strstr(eb.msg, ":17: a backend slot listed twice"));
    free(text);
    /* another experiment, another slot count; no file */
    nx_statefile_id other = id;
    other.experiment = "other";
    nx_err_clear(&eb);
    CU_ASSERT_EQUAL(nx_statefile_read(path, &other, &got, gotn, &ep, &tr, &eb), NX_ERR_CONFIG);
    CU_ASSERT_PTR_NOT_NULL(strstr(eb.msg, "experiment 'exp'"));
    nx_sched_state small;
    nx_sched_state_init(&small, 3, 2, 2);
    nx_err_clear(&eb);
    CU_ASSERT_EQUAL(nx_statefile_read(path, &id, &small, gotn, &ep, &tr, &eb), NX_ERR_CONFIG);
    CU_ASSERT_PTR_NOT_NULL(strstr(eb.msg, "--max-backends"));
    nx_sched_state_free(&small);
    snprintf(tmp, sizeof tmp, "%s/none", d);
    CU_ASSERT_EQUAL(nx_statefile_read(tmp, &id, &got, gotn, &ep, &tr, &eb), NX_ERR_NOTFOUND);
    nx_sched_state_free(&st);
    nx_sched_state_free(&got);
    nx_tu_rmdir(d);
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
        !CU_add_test(su, "setup: the engine's catalog of the file, hash", test_catalog) ||
        !CU_add_test(su, "statefile: round trip, truncations, corruptions", test_statefile)) {
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
