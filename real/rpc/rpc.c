/* rpc.c — the daemons' gRPC layer over the gRPC core C API; the only file in
 * the project that includes <grpc/grpc.h>. Its interface is rpc.h.
 *
 * THREADS. One completion queue per nx_rpc (per daemon) and one poller
 * thread that does nothing but grpc_completion_queue_next() and post each
 * completion's tag to the daemon's loop (nx_loop_post). Every tag callback,
 * every grpc_call_start_batch(), every piece of call state and all of the
 * engine run on the loop thread, so nothing here needs a lock and a call's
 * batches are naturally serialised. No queue or thread per call.
 *
 * TAGS. Every tag is a small struct: an nx_post (the mailbox node the poller
 * posts, with the completion's success flag in post.arg), a `pending` state
 * and a callback. A call embeds its tags: t_recv (RECV_MESSAGE), t_md (a
 * client stream's RECV_INITIAL_METADATA, in a batch of its own so that it
 * tells when the server accepted the stream), t_send (SEND_MESSAGE, with
 * SEND_INITIAL_METADATA on the first one; a unary call's whole batch),
 * t_close (RECV_CLOSE_ON_SERVER / RECV_STATUS_ON_CLIENT) and t_status (a
 * server stream's SEND_STATUS_FROM_SERVER). Each has at most one batch in
 * flight.
 *
 * ACCEPTED STREAMS. A server stream sends its initial metadata as soon as
 * the call is dispatched to its method, with one entry, ACCEPT_KEY; a
 * refused call (unknown method, token) is answered with a status alone.
 * The client's t_md completes in both cases, so on_accepted fires only when
 * the entry is there. The server keeps NACCEPT accept slots (grpc_server_request_call),
 * each a tag too, and one tag for its shutdown notification.
 *
 * OWNERSHIP.
 *   - A call is reference-counted: one reference per batch in flight, and one
 *     "app" reference that the application holds while it may use the call:
 *     a stream until on_close() is delivered or nx_rpc_close() is called; a
 *     server unary call until nx_rpc_reply()/nx_rpc_fail(); a client unary call
 *     until done() has run. At zero the grpc_call is unreffed and the struct
 *     freed, so a completion can never see a freed call.
 *   - Byte buffers we send are created here (one malloc'd slice, packed in
 *     place, the slice's own ref dropped at once: the buffer holds it) and
 *     destroyed here when their SEND_MESSAGE completes, or when the queue is
 *     discarded. Received buffers are read into one slice, unpacked, and
 *     destroyed before the callback returns.
 *   - An unpacked message handed to a callback is freed right after the
 *     callback returns (protobuf_c_message_free_unpacked): callbacks copy what
 *     they keep, or take a bytes field over by setting its data to NULL (it
 *     was malloc'd by protobuf-c's default allocator; the taker free()s it). Messages given to nx_rpc_send()/nx_rpc_reply() stay the
 *     caller's: they are packed before the function returns.
 *   - Status details we receive are a slice owned by the call struct,
 *     unreffed when it is freed; details we send are copied by gRPC during
 *     grpc_call_start_batch. Metadata arrays and call details are destroyed
 *     with the call (or, for accept slots, before each re-arm).
 *   - Channels are owned by the nx_rpc and freed by nx_rpc_channel_free() or at
 *     shutdown; calls keep their channel alive inside gRPC.
 *   - A request that does not unpack never reaches a handler: the call is
 *     answered INVALID_ARGUMENT (streams end with it, and on_close says so).
 *
 * SECURITY. Server and channel credentials are built once from nx_rpc_cfg's
 * PEM text (grpc_ssl_server_credentials_create_ex / grpc_ssl_credentials_
 * create; gRPC verifies certificates, mutual TLS included, before a call
 * reaches us). The bearer token is checked in dispatch() against the accept
 * slot's metadata, before the call gets a kind: a refused call is answered
 * UNAUTHENTICATED like an unknown method, never reaching a handler. Outgoing
 * calls carry it in their initial metadata: one grpc_metadata whose key and
 * value slices the nx_rpc owns (unreffed in nx_rpc_free).
 *
 * SHUTDOWN ORDER (nx_rpc_shutdown):
 *   1. the application has answered every server unary call it holds;
 *   2. stopping = true: no new call may start (they return NX_ERR_IO);
 *   3. grpc_server_shutdown_and_notify() and grpc_server_cancel_all_calls();
 *      every live call is cancelled; channels are destroyed;
 *   4. completions keep arriving and are handled as usual (callbacks see
 *      CANCELLED), dropping references; accept slots come back failed;
 *   5. when no call is left, no accept slot is pending and the server's
 *      shutdown tag has fired: grpc_completion_queue_shutdown();
 *   6. the poller sees GRPC_QUEUE_SHUTDOWN, posts its exit and returns; the
 *      loop joins it and calls done();
 *   7. nx_rpc_free(): grpc_server_destroy(), grpc_completion_queue_destroy(),
 *      grpc_shutdown_blocking().
 */
#include "rpc.h"

#include <grpc/byte_buffer.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/slice.h>
#include <grpc/support/alloc.h>
#include <grpc/support/time.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define NACCEPT 8
#define ACCEPT_KEY "nexus-stream" /* value "accepted" */
#define DEFAULT_MAX_MSG ((size_t)64 << 20)

typedef struct tag tag;
typedef void (*tag_fn)(tag *t, bool ok);
struct tag {
    nx_post post;    /* first: the poller posts &tag->post */
    tag_fn fn;
    bool pending;
};

typedef enum kind {
    K_SERVER_UNARY = 0,
    K_SERVER_STREAM,
    K_CLIENT_UNARY,
    K_CLIENT_STREAM,
} kind;

struct nx_rpc_call {
    nx_rpc *r;
    grpc_call *call;
    kind kind;
    int refs;
    bool ended;                  /* the app reference is gone */
    nx_rpc_call *prev, *next;    /* live list */
    const nx_rpc_method *method; /* server calls */
    const nx_rpc_stream_ops *ops;
    void *user;
    tag t_recv, t_md, t_send, t_close, t_status;
    grpc_byte_buffer *recv_buf;
    grpc_byte_buffer *send_buf;  /* the buffer of the SEND_MESSAGE in flight */
    grpc_byte_buffer **q;        /* send queue (ring) */
    size_t qhead, qlen, qcap;
    bool md_sent;
    uint32_t md_flags;           /* client: wait-for-ready */
    grpc_metadata_array md_in, md_trail;
    grpc_status_code status;
    grpc_slice details;
    bool have_details;
    int cancelled;
    /* client unary */
    nx_rpc_done_fn done;
    void *done_ctx;
    const ProtobufCMessageDescriptor *resp;
};

typedef struct method_handle {
    char *path;
    void *handle;
} method_handle;

struct nx_rpc_channel {
    nx_rpc *r;
    grpc_channel *ch;
    nx_rpc_channel *prev, *next;
    method_handle *mh;
    int nmh;
};

typedef struct accept_slot {
    tag t;
    nx_rpc *r;
    grpc_call *call;
    grpc_call_details details;
    grpc_metadata_array md;
} accept_slot;

struct nx_rpc {
    nx_loop *loop;
    grpc_completion_queue *cq;
    pthread_t poller;
    bool poller_running;
    nx_post poller_exit;
    grpc_server *server;
    const nx_rpc_method *methods;
    int nmethods;
    accept_slot acc[NACCEPT];
    int acc_pending;
    tag t_server_down;
    bool server_down_pending;
    nx_rpc_call *calls;
    nx_rpc_channel *chans;
    size_t max_msg;
    int keepalive_ms;
    grpc_server_credentials *server_creds;   /* NULL: plaintext */
    grpc_channel_credentials *chan_creds;    /* NULL: plaintext */
    char *server_name;                       /* TLS target name override */
    char *token;                             /* NULL: no token */
    grpc_metadata auth_md;                   /* "authorization: Bearer TOKEN" */
    grpc_metadata accept_md;                 /* ACCEPT_KEY: a server stream's first metadata */
    bool stopping, cq_shut;
    void (*done)(void *ctx);
    void *done_ctx;
    nx_rpc_stats st;
};

const char *nx_rpc_code_name(int code)
{
    static const char *names[] = {
        "OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND",
        "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION",
        "ABORTED", "OUT_OF_RANGE", "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS",
        "UNAUTHENTICATED",
    };
    return code >= 0 && code < (int)(sizeof names / sizeof names[0]) ? names[code] : "?";
}

nx_loop *nx_rpc_loop(const nx_rpc *r) { return r->loop; }

void nx_rpc_get_stats(const nx_rpc *r, nx_rpc_stats *st) { *st = r->st; }

/* ---- tags and the poller --------------------------------------------------------- */

static void tag_run(nx_post *p)
{
    tag *t = (tag *)p;
    t->pending = false;
    t->fn(t, p->arg != 0);
}

static void tag_init(tag *t, tag_fn fn)
{
    memset(t, 0, sizeof *t);
    t->post.fn = tag_run;
    t->fn = fn;
}

static void *poller_main(void *arg)
{
    nx_rpc *r = arg;
    for (;;) {
        grpc_event ev = grpc_completion_queue_next(r->cq, gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL);
        if (ev.type == GRPC_QUEUE_SHUTDOWN)
            break;
        if (ev.type != GRPC_OP_COMPLETE)
            continue;
        tag *t = ev.tag;
        t->post.arg = ev.success;
        nx_loop_post(r->loop, &t->post);
    }
    nx_loop_post(r->loop, &r->poller_exit);
    return NULL;
}

static void poller_exited(nx_post *p)
{
    nx_rpc *r = p->ctx;
    pthread_join(r->poller, NULL);
    r->poller_running = false;
    if (r->done)
        r->done(r->done_ctx);
}

/* Shutdown step 5: everything released -> shut the queue down. */
static void maybe_finish(nx_rpc *r)
{
    if (!r->stopping || r->cq_shut || r->calls || r->acc_pending > 0 || r->server_down_pending)
        return;
    r->cq_shut = true;
    grpc_completion_queue_shutdown(r->cq);
}

/* ---- byte buffers ------------------------------------------------------------------ */

static grpc_byte_buffer *pack(nx_rpc *r, const ProtobufCMessage *m)
{
    size_t n = protobuf_c_message_get_packed_size(m);
    if (n > r->max_msg)
        return NULL;
    grpc_slice s = grpc_slice_malloc(n);
    protobuf_c_message_pack(m, GRPC_SLICE_START_PTR(s));
    grpc_byte_buffer *bb = grpc_raw_byte_buffer_create(&s, 1);
    grpc_slice_unref(s);
    r->st.msgs_out++;
    r->st.bytes_out += n;
    return bb;
}

static ProtobufCMessage *unpack(nx_rpc *r, const ProtobufCMessageDescriptor *d,
                                grpc_byte_buffer *bb)
{
    grpc_byte_buffer_reader rd;
    if (!grpc_byte_buffer_reader_init(&rd, bb)) {
        r->st.bad_msgs++;
        return NULL;
    }
    grpc_slice s = grpc_byte_buffer_reader_readall(&rd);
    grpc_byte_buffer_reader_destroy(&rd);
    ProtobufCMessage *m = protobuf_c_message_unpack(d, NULL, GRPC_SLICE_LENGTH(s),
                                                    GRPC_SLICE_START_PTR(s));
    r->st.msgs_in++;
    r->st.bytes_in += GRPC_SLICE_LENGTH(s);
    grpc_slice_unref(s);
    if (!m)
        r->st.bad_msgs++;
    return m;
}

/* ---- calls: life cycle -------------------------------------------------------------- */

static void on_recv(tag *t, bool ok);
static void on_md(tag *t, bool ok);
static void on_send(tag *t, bool ok);
static void on_close_tag(tag *t, bool ok);
static void on_status_sent(tag *t, bool ok);

static nx_rpc_call *call_new(nx_rpc *r, kind k)
{
    nx_rpc_call *c = nx_calloc(1, sizeof *c);
    c->r = r;
    c->kind = k;
    c->refs = 1; /* the app reference */
    tag_init(&c->t_recv, on_recv);
    tag_init(&c->t_md, on_md);
    tag_init(&c->t_send, on_send);
    tag_init(&c->t_close, on_close_tag);
    tag_init(&c->t_status, on_status_sent);
    grpc_metadata_array_init(&c->md_in);
    grpc_metadata_array_init(&c->md_trail);
    c->next = r->calls;
    if (r->calls)
        r->calls->prev = c;
    r->calls = c;
    r->st.live_calls++;
    return c;
}

static void drop_queue(nx_rpc_call *c)
{
    for (size_t i = 0; i < c->qlen; i++)
        grpc_byte_buffer_destroy(c->q[(c->qhead + i) % c->qcap]);
    c->qlen = 0;
    c->qhead = 0;
}

static void call_destroy(nx_rpc_call *c)
{
    nx_rpc *r = c->r;
    drop_queue(c);
    free(c->q);
    if (c->send_buf)
        grpc_byte_buffer_destroy(c->send_buf);
    if (c->recv_buf)
        grpc_byte_buffer_destroy(c->recv_buf);
    grpc_metadata_array_destroy(&c->md_in);
    grpc_metadata_array_destroy(&c->md_trail);
    if (c->have_details)
        grpc_slice_unref(c->details);
    if (c->call)
        grpc_call_unref(c->call);
    if (c->prev)
        c->prev->next = c->next;
    else
        r->calls = c->next;
    if (c->next)
        c->next->prev = c->prev;
    r->st.live_calls--;
    free(c);
    maybe_finish(r);
}

static void unref(nx_rpc_call *c)
{
    NX_ASSERT(c->refs > 0);
    if (--c->refs == 0)
        call_destroy(c);
}

/* Start a batch; on success the batch holds a reference. */
static bool start(nx_rpc_call *c, const grpc_op *ops, size_t n, tag *t)
{
    NX_ASSERT(!t->pending);
    if (grpc_call_start_batch(c->call, ops, n, t, NULL) != GRPC_CALL_OK)
        return false;
    t->pending = true;
    c->refs++;
    return true;
}

static void op_init(grpc_op *op, grpc_op_type type)
{
    memset(op, 0, sizeof *op);
    op->op = type;
}

/* The application's reference goes: no callback fires for c after this. */
static void end_app(nx_rpc_call *c)
{
    if (c->ended)
        return;
    c->ended = true;
    drop_queue(c);
    unref(c);
}

/* Deliver on_close once (a stream ended by the peer or the transport). */
static void deliver_close(nx_rpc_call *c, int code, const char *why)
{
    if (c->ended)
        return;
    c->refs++; /* keep c alive through the callback */
    if (c->ops && c->ops->on_close)
        c->ops->on_close(c, code, why);
    end_app(c);
    unref(c);
}

/* ---- sending ---------------------------------------------------------------------------- */

static void pump(nx_rpc_call *c)
{
    if (c->t_send.pending || c->ended)
        return;
    grpc_op ops[2];
    size_t n = 0;
    if (!c->md_sent) {
        op_init(&ops[n], GRPC_OP_SEND_INITIAL_METADATA);
        ops[n].flags = c->md_flags;
        if (c->kind == K_CLIENT_STREAM && c->r->token) {
            ops[n].data.send_initial_metadata.count = 1;
            ops[n].data.send_initial_metadata.metadata = &c->r->auth_md;
        } else if (c->kind == K_SERVER_STREAM) {
            ops[n].data.send_initial_metadata.count = 1;
            ops[n].data.send_initial_metadata.metadata = &c->r->accept_md;
        }
        n++;
    }
    grpc_byte_buffer *bb = NULL;
    if (c->qlen > 0) {
        bb = c->q[c->qhead];
        c->qhead = (c->qhead + 1) % c->qcap;
        c->qlen--;
        op_init(&ops[n], GRPC_OP_SEND_MESSAGE);
        ops[n++].data.send_message.send_message = bb;
    }
    if (n == 0)
        return;
    if (!start(c, ops, n, &c->t_send)) {
        if (bb)
            grpc_byte_buffer_destroy(bb);
        drop_queue(c);
        return;
    }
    c->md_sent = true;
    c->send_buf = bb;
}

/* The status details a client call received, as a C string. */
static void details_str(const nx_rpc_call *c, char *buf, size_t cap)
{
    size_t n = c->have_details ? GRPC_SLICE_LENGTH(c->details) : 0;
    if (n >= cap)
        n = cap - 1;
    if (n)
        memcpy(buf, GRPC_SLICE_START_PTR(c->details), n);
    buf[n] = 0;
}

static void on_send(tag *t, bool ok)
{
    nx_rpc_call *c = NX_CONTAINER_OF(t, nx_rpc_call, t_send);
    if (c->kind == K_CLIENT_UNARY) {
        /* the whole unary exchange was this batch */
        if (c->send_buf) {
            grpc_byte_buffer_destroy(c->send_buf);
            c->send_buf = NULL;
        }
        int code = ok ? (int)c->status : NX_RPC_UNAVAILABLE;
        char why[256];
        details_str(c, why, sizeof why);
        ProtobufCMessage *m = NULL;
        if (code == NX_RPC_OK) {
            if (!c->recv_buf) {
                code = NX_RPC_INTERNAL;
                snprintf(why, sizeof why, "no response message");
            } else if (!(m = unpack(c->r, c->resp, c->recv_buf))) {
                code = NX_RPC_INTERNAL;
                snprintf(why, sizeof why, "response does not parse as %s", c->resp->name);
            }
        }
        if (c->recv_buf) {
            grpc_byte_buffer_destroy(c->recv_buf);
            c->recv_buf = NULL;
        }
        c->done(c->done_ctx, code, why, m);
        if (m)
            protobuf_c_message_free_unpacked(m, NULL);
        end_app(c);
        unref(c);
        return;
    }
    if (c->send_buf) {
        grpc_byte_buffer_destroy(c->send_buf);
        c->send_buf = NULL;
    }
    if (c->kind == K_SERVER_UNARY) { /* the reply went (or not): done */
        unref(c);
        return;
    }
    if (!ok) {
        drop_queue(c); /* the stream is failing; its close tag will tell */
    } else if (!c->ended) {
        if (c->qlen > 0)
            pump(c);
        else if (c->ops->on_drain) {
            c->refs++;
            c->ops->on_drain(c);
            unref(c);
        }
    }
    unref(c);
}

int nx_rpc_send(nx_rpc_call *c, const ProtobufCMessage *m)
{
    if (c->ended || c->r->stopping)
        return NX_ERR_IO;
    grpc_byte_buffer *bb = pack(c->r, m);
    if (!bb)
        return NX_ERR_INVAL;
    if (c->qlen == c->qcap) {
        size_t ncap = c->qcap ? 2 * c->qcap : 8;
        grpc_byte_buffer **nq = nx_malloc(sizeof *nq * ncap);
        for (size_t i = 0; i < c->qlen; i++)
            nq[i] = c->q[(c->qhead + i) % c->qcap];
        free(c->q);
        c->q = nq;
        c->qcap = ncap;
        c->qhead = 0;
    }
    c->q[(c->qhead + c->qlen) % c->qcap] = bb;
    c->qlen++;
    pump(c);
    return 0;
}

size_t nx_rpc_queued(const nx_rpc_call *c) { return c->qlen + (c->send_buf ? 1 : 0); }

void nx_rpc_set_user(nx_rpc_call *c, void *user) { c->user = user; }
void *nx_rpc_user(const nx_rpc_call *c) { return c->user; }

void nx_rpc_peer(const nx_rpc_call *c, char *buf, size_t n)
{
    char *p = c->call ? grpc_call_get_peer(c->call) : NULL;
    snprintf(buf, n, "%s", p ? p : "?");
    if (p)
        gpr_free(p);
}

void nx_rpc_close(nx_rpc_call *c, int code, const char *why)
{
    if (c->ended)
        return;
    grpc_call_cancel_with_status(c->call, (grpc_status_code)code, why ? why : "", NULL);
    end_app(c);
}

/* ---- receiving ------------------------------------------------------------------------- */

static void arm_recv(nx_rpc_call *c)
{
    grpc_op op;
    op_init(&op, GRPC_OP_RECV_MESSAGE);
    op.data.recv_message.recv_message = &c->recv_buf;
    if (!start(c, &op, 1, &c->t_recv))
        deliver_close(c, NX_RPC_INTERNAL, "cannot start a read");
}

/* A client stream's initial metadata: the server accepted it if ACCEPT_KEY
 * is there (a refusal's status alone completes this too, without it). */
static void on_md(tag *t, bool ok)
{
    nx_rpc_call *c = NX_CONTAINER_OF(t, nx_rpc_call, t_md);
    bool accepted = false;
    for (size_t i = 0; ok && i < c->md_in.count; i++)
        accepted |= grpc_slice_str_cmp(c->md_in.metadata[i].key, ACCEPT_KEY) == 0;
    if (accepted && !c->ended && c->ops->on_accepted)
        c->ops->on_accepted(c);
    unref(c);
}

static void server_unary_recv(nx_rpc_call *c, bool ok)
{
    if (!ok || !c->recv_buf) {
        nx_rpc_fail(c, NX_RPC_INVALID_ARGUMENT, "no request message");
        return;
    }
    ProtobufCMessage *m = unpack(c->r, c->method->req, c->recv_buf);
    grpc_byte_buffer_destroy(c->recv_buf);
    c->recv_buf = NULL;
    if (!m) {
        char why[160];
        snprintf(why, sizeof why, "request does not parse as %s", c->method->req->name);
        nx_rpc_fail(c, NX_RPC_INVALID_ARGUMENT, why);
        return;
    }
    c->method->on_unary(c->method->ctx, c, m);
    protobuf_c_message_free_unpacked(m, NULL);
}

/* A server stream whose client stopped sending: finish it with OK. */
static void server_stream_finish(nx_rpc_call *c)
{
    grpc_op op;
    op_init(&op, GRPC_OP_SEND_STATUS_FROM_SERVER);
    op.data.send_status_from_server.status = GRPC_STATUS_OK;
    if (!start(c, &op, 1, &c->t_status))
        grpc_call_cancel(c->call, NULL);
}

static void on_recv(tag *t, bool ok)
{
    nx_rpc_call *c = NX_CONTAINER_OF(t, nx_rpc_call, t_recv);
    if (c->kind == K_SERVER_UNARY) {
        server_unary_recv(c, ok);
        unref(c);
        return;
    }
    if (c->ended) {
        if (c->recv_buf) {
            grpc_byte_buffer_destroy(c->recv_buf);
            c->recv_buf = NULL;
        }
        unref(c);
        return;
    }
    if (ok && c->recv_buf) {
        ProtobufCMessage *m = unpack(c->r, c->ops->in, c->recv_buf);
        grpc_byte_buffer_destroy(c->recv_buf);
        c->recv_buf = NULL;
        if (!m) {
            char why[160];
            snprintf(why, sizeof why, "a message does not parse as %s", c->ops->in->name);
            grpc_call_cancel_with_status(c->call, GRPC_STATUS_INVALID_ARGUMENT, why, NULL);
            deliver_close(c, NX_RPC_INVALID_ARGUMENT, why);
        } else {
            c->ops->on_msg(c, m);
            protobuf_c_message_free_unpacked(m, NULL);
            if (!c->ended)
                arm_recv(c);
        }
    } else if (c->kind == K_SERVER_STREAM && ok && c->ops->on_half_close) {
        /* a server-streaming method: the client sent all it will; we go on
         * writing until we close (or it cancels: the close tag tells) */
        c->refs++;
        c->ops->on_half_close(c);
        unref(c);
    } else if (c->kind == K_SERVER_STREAM && ok) {
        /* the client half-closed, or cancelled: finish our side; the close
         * tag says which (cancelled or not) and delivers on_close */
        server_stream_finish(c);
    }
    /* otherwise the close tag (RECV_CLOSE_ON_SERVER / RECV_STATUS_ON_CLIENT)
     * tells how the stream ended */
    unref(c);
}

static void on_status_sent(tag *t, bool ok)
{
    (void)ok;
    unref(NX_CONTAINER_OF(t, nx_rpc_call, t_status));
}

static void on_close_tag(tag *t, bool ok)
{
    (void)ok;
    nx_rpc_call *c = NX_CONTAINER_OF(t, nx_rpc_call, t_close);
    if (c->kind == K_SERVER_STREAM) {
        deliver_close(c, c->cancelled ? NX_RPC_CANCELLED : NX_RPC_OK,
                      c->cancelled ? "the call was cancelled" : "the call ended");
    } else if (c->kind == K_CLIENT_STREAM) {
        char why[256];
        details_str(c, why, sizeof why);
        deliver_close(c, (int)c->status, why);
    }
    unref(c);
}

/* ---- server --------------------------------------------------------------------------------- */

static void on_accept(tag *t, bool ok);

static void accept_arm(accept_slot *a)
{
    nx_rpc *r = a->r;
    grpc_call_details_init(&a->details);
    grpc_metadata_array_init(&a->md);
    a->call = NULL;
    if (grpc_server_request_call(r->server, &a->call, &a->details, &a->md, r->cq, r->cq, &a->t) ==
        GRPC_CALL_OK) {
        a->t.pending = true;
        r->acc_pending++;
    } else {
        grpc_call_details_destroy(&a->details);
        grpc_metadata_array_destroy(&a->md);
    }
}

static const nx_rpc_method *find_method(nx_rpc *r, grpc_slice path)
{
    for (int i = 0; i < r->nmethods; i++)
        if (grpc_slice_str_cmp(path, r->methods[i].path) == 0)
            return &r->methods[i];
    return NULL;
}

static void start_close_on_server(nx_rpc_call *c)
{
    grpc_op op;
    op_init(&op, GRPC_OP_RECV_CLOSE_ON_SERVER);
    op.data.recv_close_on_server.cancelled = &c->cancelled;
    start(c, &op, 1, &c->t_close);
}

/* Whether the call's metadata carries "authorization: Bearer TOKEN"
 * (compared in time independent of where they differ). */
static bool authorized(const nx_rpc *r, const grpc_metadata_array *md)
{
    size_t tl = strlen(r->token);
    for (size_t i = 0; i < md->count; i++) {
        if (grpc_slice_str_cmp(md->metadata[i].key, "authorization") != 0)
            continue;
        const uint8_t *v = GRPC_SLICE_START_PTR(md->metadata[i].value);
        size_t n = GRPC_SLICE_LENGTH(md->metadata[i].value);
        if (n != tl + 7 || strncasecmp((const char *)v, "Bearer ", 7) != 0)
            return false;
        unsigned diff = 0;
        for (size_t k = 0; k < tl; k++)
            diff |= (unsigned)(v[7 + k] ^ (uint8_t)r->token[k]);
        return diff == 0;
    }
    return false;
}

static void dispatch(nx_rpc *r, grpc_call *gc, grpc_slice path, const grpc_metadata_array *md)
{
    const nx_rpc_method *m = find_method(r, path);
    r->st.calls_in++;
    bool refused = m && r->token && !m->open && !authorized(r, md);
    nx_rpc_call *c =
        call_new(r, m && !m->on_unary && !refused ? K_SERVER_STREAM : K_SERVER_UNARY);
    c->call = gc;
    c->method = m;
    start_close_on_server(c);
    if (refused) {
        r->st.unauthenticated++;
        nx_rpc_fail(c, NX_RPC_UNAUTHENTICATED, "a bearer token is required (authorization "
                                               "metadata missing or wrong)");
        return;
    }
    if (!m) {
        char *p = grpc_slice_to_c_string(path);
        char why[300];
        snprintf(why, sizeof why, "unknown method %s", p);
        gpr_free(p);
        nx_rpc_fail(c, NX_RPC_UNIMPLEMENTED, why);
        return;
    }
    if (m->on_unary) {
        arm_recv(c);
        return;
    }
    c->ops = m->stream;
    pump(c); /* initial metadata */
    c->refs++;
    if (m->on_open)
        m->on_open(m->ctx, c);
    if (!c->ended)
        arm_recv(c);
    unref(c);
}

static void on_accept(tag *t, bool ok)
{
    accept_slot *a = (accept_slot *)t;
    nx_rpc *r = a->r;
    r->acc_pending--;
    if (ok && a->call) {
        if (r->stopping) {
            grpc_call_cancel(a->call, NULL);
            grpc_call_unref(a->call);
        } else {
            dispatch(r, a->call, a->details.method, &a->md);
        }
    }
    grpc_call_details_destroy(&a->details);
    grpc_metadata_array_destroy(&a->md);
    if (!r->stopping)
        accept_arm(a);
    maybe_finish(r);
}

static void on_server_down(tag *t, bool ok)
{
    (void)ok;
    nx_rpc *r = NX_CONTAINER_OF(t, nx_rpc, t_server_down);
    r->server_down_pending = false;
    maybe_finish(r);
}

/* Channel/server arguments: message limits, fast reconnects, no retries. */
static int make_args(const nx_rpc *r, grpc_arg *a, bool server)
{
    int n = 0;
    a[n++] = (grpc_arg){.type = GRPC_ARG_INTEGER, .key = GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH,
                        .value.integer = (int)r->max_msg};
    a[n++] = (grpc_arg){.type = GRPC_ARG_INTEGER, .key = GRPC_ARG_MAX_SEND_MESSAGE_LENGTH,
                        .value.integer = (int)r->max_msg};
    a[n++] = (grpc_arg){.type = GRPC_ARG_INTEGER, .key = GRPC_ARG_ENABLE_RETRIES, .value.integer = 0};
    if (server) {
        a[n++] = (grpc_arg){.type = GRPC_ARG_INTEGER,
                            .key = GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS,
                            .value.integer = 1000};
        a[n++] = (grpc_arg){.type = GRPC_ARG_INTEGER, .key = GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS,
                            .value.integer = 1};
    } else {
        a[n++] = (grpc_arg){.type = GRPC_ARG_INTEGER, .key = GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS,
                            .value.integer = 100};
        a[n++] = (grpc_arg){.type = GRPC_ARG_INTEGER, .key = GRPC_ARG_MIN_RECONNECT_BACKOFF_MS,
                            .value.integer = 100};
        a[n++] = (grpc_arg){.type = GRPC_ARG_INTEGER, .key = GRPC_ARG_MAX_RECONNECT_BACKOFF_MS,
                            .value.integer = 1000};
        if (r->keepalive_ms > 0) {
            a[n++] = (grpc_arg){.type = GRPC_ARG_INTEGER, .key = GRPC_ARG_KEEPALIVE_TIME_MS,
                                .value.integer = r->keepalive_ms};
            a[n++] = (grpc_arg){.type = GRPC_ARG_INTEGER, .key = GRPC_ARG_KEEPALIVE_TIMEOUT_MS,
                                .value.integer = r->keepalive_ms};
        }
    }
    return n;
}

int nx_rpc_serve(nx_rpc *r, const char *addr, const nx_rpc_method *m, int n, int *port,
                 nx_errbuf *eb)
{
    if (r->server) {
        nx_err_set(eb, NX_ERR_INVAL, "rpc: one server per daemon");
        return NX_ERR_INVAL;
    }
    grpc_arg a[8];
    int na = make_args(r, a, true);
    grpc_channel_args args = {.num_args = (size_t)na, .args = a};
    r->server = grpc_server_create(&args, NULL);
    grpc_server_register_completion_queue(r->server, r->cq, NULL);
    grpc_server_credentials *cr =
        r->server_creds ? r->server_creds : grpc_insecure_server_credentials_create();
    int p = grpc_server_add_http2_port(r->server, addr, cr);
    if (!r->server_creds)
        grpc_server_credentials_release(cr);
    if (p <= 0) {
        nx_err_set(eb, NX_ERR_IO, "rpc: cannot listen on %s (in use, or not an address of this host)",
                   addr);
        grpc_server_destroy(r->server);
        r->server = NULL;
        return NX_ERR_IO;
    }
    r->methods = m;
    r->nmethods = n;
    grpc_server_start(r->server);
    for (int i = 0; i < NACCEPT; i++) {
        tag_init(&r->acc[i].t, on_accept);
        r->acc[i].r = r;
        accept_arm(&r->acc[i]);
    }
    if (port)
        *port = p;
    return 0;
}

static void reply_batch(nx_rpc_call *c, grpc_byte_buffer *bb, int code, const char *why)
{
    NX_ASSERT(c->kind == K_SERVER_UNARY && !c->ended);
    grpc_op ops[3];
    size_t n = 0;
    op_init(&ops[n++], GRPC_OP_SEND_INITIAL_METADATA);
    if (bb) {
        op_init(&ops[n], GRPC_OP_SEND_MESSAGE);
        ops[n++].data.send_message.send_message = bb;
    }
    grpc_slice details = grpc_slice_from_copied_string(why ? why : "");
    op_init(&ops[n], GRPC_OP_SEND_STATUS_FROM_SERVER);
    ops[n].data.send_status_from_server.status = (grpc_status_code)code;
    ops[n++].data.send_status_from_server.status_details = why ? &details : NULL;
    if (start(c, ops, n, &c->t_send))
        c->send_buf = bb;
    else if (bb)
        grpc_byte_buffer_destroy(bb);
    grpc_slice_unref(details);
    end_app(c);
}

void nx_rpc_reply(nx_rpc_call *c, const ProtobufCMessage *resp)
{
    grpc_byte_buffer *bb = pack(c->r, resp);
    if (!bb) {
        reply_batch(c, NULL, NX_RPC_RESOURCE_EXHAUSTED, "response larger than the message limit");
        return;
    }
    reply_batch(c, bb, NX_RPC_OK, NULL);
}

void nx_rpc_fail(nx_rpc_call *c, int code, const char *why)
{
    reply_batch(c, NULL, code == NX_RPC_OK ? NX_RPC_UNKNOWN : code, why ? why : "");
}

/* ---- client ---------------------------------------------------------------------------------- */

nx_rpc_channel *nx_rpc_connect(nx_rpc *r, const char *target)
{
    grpc_arg a[12];
    int na = make_args(r, a, false);
    if (r->chan_creds && r->server_name)
        a[na++] = (grpc_arg){.type = GRPC_ARG_STRING, .key = GRPC_SSL_TARGET_NAME_OVERRIDE_ARG,
                             .value.string = r->server_name};
    grpc_channel_args args = {.num_args = (size_t)na, .args = a};
    grpc_channel_credentials *cr =
        r->chan_creds ? r->chan_creds : grpc_insecure_credentials_create();
    nx_rpc_channel *ch = nx_calloc(1, sizeof *ch);
    ch->r = r;
    ch->ch = grpc_channel_create(target, cr, &args);
    if (!r->chan_creds)
        grpc_channel_credentials_release(cr);
    ch->next = r->chans;
    if (r->chans)
        r->chans->prev = ch;
    r->chans = ch;
    return ch;
}

static void channel_destroy(nx_rpc_channel *ch)
{
    grpc_channel_destroy(ch->ch);
    for (int i = 0; i < ch->nmh; i++)
        free(ch->mh[i].path);
    free(ch->mh);
    free(ch);
}

void nx_rpc_channel_free(nx_rpc_channel *ch)
{
    if (!ch)
        return;
    nx_rpc *r = ch->r;
    if (ch->prev)
        ch->prev->next = ch->next;
    else
        r->chans = ch->next;
    if (ch->next)
        ch->next->prev = ch->prev;
    channel_destroy(ch);
}

static void *method_handle_of(nx_rpc_channel *ch, const char *path)
{
    for (int i = 0; i < ch->nmh; i++)
        if (strcmp(ch->mh[i].path, path) == 0)
            return ch->mh[i].handle;
    ch->mh = nx_realloc(ch->mh, sizeof *ch->mh * (size_t)(ch->nmh + 1));
    method_handle *h = &ch->mh[ch->nmh++];
    h->path = nx_strdup(path);
    h->handle = grpc_channel_register_call(ch->ch, h->path, NULL, NULL);
    return h->handle;
}

static gpr_timespec deadline_of(nx_time timeout)
{
    if (timeout <= 0)
        return gpr_inf_future(GPR_CLOCK_MONOTONIC);
    return gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC),
                        gpr_time_from_nanos(timeout, GPR_TIMESPAN));
}

static int unary_start(nx_rpc_channel *ch, const char *path, grpc_byte_buffer *bb,
                       const ProtobufCMessageDescriptor *resp, nx_time timeout, bool wait_ready,
                       nx_rpc_done_fn done, void *ctx)
{
    nx_rpc *r = ch->r;
    nx_rpc_call *c = call_new(r, K_CLIENT_UNARY);
    r->st.calls_out++;
    c->call = grpc_channel_create_registered_call(ch->ch, NULL, GRPC_PROPAGATE_DEFAULTS, r->cq,
                                                  method_handle_of(ch, path),
                                                  deadline_of(timeout), NULL);
    c->done = done;
    c->done_ctx = ctx;
    c->resp = resp;
    grpc_op ops[6];
    op_init(&ops[0], GRPC_OP_SEND_INITIAL_METADATA);
    ops[0].flags = wait_ready ? GRPC_INITIAL_METADATA_WAIT_FOR_READY |
                                    GRPC_INITIAL_METADATA_WAIT_FOR_READY_EXPLICITLY_SET
                              : 0;
    if (r->token) {
        ops[0].data.send_initial_metadata.count = 1;
        ops[0].data.send_initial_metadata.metadata = &r->auth_md;
    }
    op_init(&ops[1], GRPC_OP_SEND_MESSAGE);
    ops[1].data.send_message.send_message = bb;
    op_init(&ops[2], GRPC_OP_SEND_CLOSE_FROM_CLIENT);
    op_init(&ops[3], GRPC_OP_RECV_INITIAL_METADATA);
    ops[3].data.recv_initial_metadata.recv_initial_metadata = &c->md_in;
    op_init(&ops[4], GRPC_OP_RECV_MESSAGE);
    ops[4].data.recv_message.recv_message = &c->recv_buf;
    op_init(&ops[5], GRPC_OP_RECV_STATUS_ON_CLIENT);
    ops[5].data.recv_status_on_client.trailing_metadata = &c->md_trail;
    ops[5].data.recv_status_on_client.status = &c->status;
    ops[5].data.recv_status_on_client.status_details = &c->details;
    c->have_details = true;
    c->details = grpc_empty_slice();
    if (!start(c, ops, 6, &c->t_send)) {
        grpc_byte_buffer_destroy(bb);
        end_app(c);
        return NX_ERR_IO;
    }
    c->send_buf = bb;
    return 0;
}

int nx_rpc_unary(nx_rpc_channel *ch, const char *path, const ProtobufCMessage *req,
                 const ProtobufCMessageDescriptor *resp, nx_time timeout, bool wait_ready,
                 nx_rpc_done_fn done, void *ctx)
{
    if (ch->r->stopping)
        return NX_ERR_IO;
    grpc_byte_buffer *bb = pack(ch->r, req);
    if (!bb)
        return NX_ERR_INVAL;
    return unary_start(ch, path, bb, resp, timeout, wait_ready, done, ctx);
}

int nx_rpc_unary_bytes(nx_rpc_channel *ch, const char *path, const void *buf, size_t len,
                       const ProtobufCMessageDescriptor *resp, nx_time timeout, bool wait_ready,
                       nx_rpc_done_fn done, void *ctx)
{
    if (ch->r->stopping)
        return NX_ERR_IO;
    grpc_slice s = grpc_slice_from_copied_buffer(buf, len);
    grpc_byte_buffer *bb = grpc_raw_byte_buffer_create(&s, 1);
    grpc_slice_unref(s);
    return unary_start(ch, path, bb, resp, timeout, wait_ready, done, ctx);
}

int nx_rpc_open(nx_rpc_channel *ch, const char *path, const nx_rpc_stream_ops *ops, void *user,
                bool wait_ready, nx_rpc_call **out)
{
    nx_rpc *r = ch->r;
    *out = NULL;
    if (r->stopping)
        return NX_ERR_IO;
    nx_rpc_call *c = call_new(r, K_CLIENT_STREAM);
    r->st.calls_out++;
    c->ops = ops;
    c->user = user;
    c->md_flags = wait_ready ? GRPC_INITIAL_METADATA_WAIT_FOR_READY |
                                   GRPC_INITIAL_METADATA_WAIT_FOR_READY_EXPLICITLY_SET
                             : 0;
    c->call = grpc_channel_create_registered_call(ch->ch, NULL, GRPC_PROPAGATE_DEFAULTS, r->cq,
                                                  method_handle_of(ch, path),
                                                  gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL);
    grpc_op op;
    op_init(&op, GRPC_OP_RECV_STATUS_ON_CLIENT);
    op.data.recv_status_on_client.trailing_metadata = &c->md_trail;
    op.data.recv_status_on_client.status = &c->status;
    op.data.recv_status_on_client.status_details = &c->details;
    c->have_details = true;
    c->details = grpc_empty_slice();
    if (!start(c, &op, 1, &c->t_close)) {
        end_app(c);
        return NX_ERR_IO;
    }
    pump(c);     /* initial metadata */
    op_init(&op, GRPC_OP_RECV_INITIAL_METADATA);
    op.data.recv_initial_metadata.recv_initial_metadata = &c->md_in;
    start(c, &op, 1, &c->t_md); /* if it cannot start, on_accepted never fires */
    arm_recv(c);
    *out = c;
    return 0;
}

/* ---- life cycle -------------------------------------------------------------------------------- */

static void creds_free(nx_rpc *r)
{
    if (r->server_creds)
        grpc_server_credentials_release(r->server_creds);
    if (r->chan_creds)
        grpc_channel_credentials_release(r->chan_creds);
    if (r->token) {
        grpc_slice_unref(r->auth_md.value);
        free(r->token);
    }
    free(r->server_name);
}

int nx_rpc_init(nx_rpc **out, nx_loop *loop, const nx_rpc_cfg *cfg, nx_errbuf *eb)
{
    *out = NULL;
    grpc_init();
    nx_rpc *r = nx_calloc(1, sizeof *r);
    r->loop = loop;
    r->max_msg = cfg && cfg->max_msg ? cfg->max_msg : DEFAULT_MAX_MSG;
    if (r->max_msg > (size_t)INT32_MAX)
        r->max_msg = (size_t)INT32_MAX;
    r->keepalive_ms = cfg ? cfg->keepalive_ms : 0;
    if (cfg && cfg->tls_cert && cfg->tls_key) {
        grpc_ssl_pem_key_cert_pair pair = {.private_key = cfg->tls_key,
                                           .cert_chain = cfg->tls_cert};
        r->server_creds = grpc_ssl_server_credentials_create_ex(
            cfg->tls_ca, &pair, 1,
            cfg->tls_verify_clients ? GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY
                                    : GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE,
            NULL);
    }
    if (cfg && (cfg->tls_ca || cfg->tls_cert)) {
        grpc_ssl_pem_key_cert_pair pair = {.private_key = cfg->tls_key,
                                           .cert_chain = cfg->tls_cert};
        r->chan_creds = grpc_ssl_credentials_create(
            cfg->tls_ca, cfg->tls_cert && cfg->tls_key ? &pair : NULL, NULL, NULL);
    }
    if ((cfg && cfg->tls_cert && cfg->tls_key && !r->server_creds) ||
        (cfg && (cfg->tls_ca || cfg->tls_cert) && !r->chan_creds)) {
        nx_err_set(eb, NX_ERR_INVAL, "rpc: gRPC refused the TLS certificates or key");
        creds_free(r);
        free(r);
        grpc_shutdown_blocking();
        return NX_ERR_INVAL;
    }
    if (cfg && cfg->tls_server_name)
        r->server_name = nx_strdup(cfg->tls_server_name);
    if (cfg && cfg->token) {
        r->token = nx_strdup(cfg->token);
        size_t n = strlen(cfg->token) + 8;
        char *v = nx_malloc(n);
        snprintf(v, n, "Bearer %s", cfg->token);
        r->auth_md.key = grpc_slice_from_static_string("authorization");
        r->auth_md.value = grpc_slice_from_copied_string(v);
        free(v);
    }
    r->accept_md.key = grpc_slice_from_static_string(ACCEPT_KEY); /* static: no unref */
    r->accept_md.value = grpc_slice_from_static_string("accepted");
    r->cq = grpc_completion_queue_create_for_next(NULL);
    tag_init(&r->t_server_down, on_server_down);
    r->poller_exit.fn = poller_exited;
    r->poller_exit.ctx = r;
    if (pthread_create(&r->poller, NULL, poller_main, r) != 0) {
        nx_err_set(eb, NX_ERR_IO, "rpc: cannot start the poller thread");
        grpc_completion_queue_shutdown(r->cq);
        grpc_completion_queue_destroy(r->cq);
        creds_free(r);
        free(r);
        grpc_shutdown_blocking();
        return NX_ERR_IO;
    }
    r->poller_running = true;
    *out = r;
    return 0;
}

void nx_rpc_shutdown(nx_rpc *r, void (*done)(void *ctx), void *ctx)
{
    if (r->stopping)
        return;
    r->stopping = true;
    r->done = done;
    r->done_ctx = ctx;
    if (r->server) {
        r->server_down_pending = true;
        grpc_server_shutdown_and_notify(r->server, r->cq, &r->t_server_down);
        grpc_server_cancel_all_calls(r->server);
    }
    for (nx_rpc_call *c = r->calls; c; c = c->next)
        if (c->call)
            grpc_call_cancel(c->call, NULL);
    while (r->chans) {
        nx_rpc_channel *ch = r->chans;
        r->chans = ch->next;
        channel_destroy(ch);
    }
    maybe_finish(r);
}

void nx_rpc_free(nx_rpc *r)
{
    if (!r)
        return;
    NX_ASSERT(!r->poller_running); /* nx_rpc_shutdown() and its done() first */
    if (r->server)
        grpc_server_destroy(r->server);
    grpc_completion_queue_destroy(r->cq);
    creds_free(r);
    free(r);
    grpc_shutdown_blocking();
}
