/* rpc.h — gRPC for the daemons, on the gRPC core C API, without exposing it:
 * no gRPC type appears here, messages are protobuf-c messages, and every
 * callback runs on the daemon's loop thread (loop.h). The rules (threads,
 * ownership, shutdown) are written once at the top of rpc.c.
 *
 * Three kinds of call:
 *   - server unary:  the method's handler gets the unpacked request and must
 *     answer exactly once, now or later, with nx_rpc_reply() or nx_rpc_fail().
 *   - client unary:  nx_rpc_unary(); done() fires exactly once.
 *   - streams (server or client side alike): on_msg() per message, on_drain()
 *     when the send queue empties, on_close() once when the stream ends by the
 *     peer's or the transport's doing; a client also hears on_accepted() once
 *     the server has taken the stream. nx_rpc_close() ends it from our side;
 *     no callback fires for it after that.
 *
 * A request or message that does not unpack is answered INVALID_ARGUMENT (a
 * unary call) or ends the stream with INVALID_ARGUMENT (on_close says so);
 * it never reaches a handler. Messages are limited to cfg.max_msg bytes both
 * ways (RESOURCE_EXHAUSTED beyond). */
#ifndef NX_RPC_H
#define NX_RPC_H

#include <protobuf-c/protobuf-c.h>

#include "loop.h"

/* The gRPC status codes, by their numbers. */
enum nx_rpc_code {
    NX_RPC_OK = 0,
    NX_RPC_CANCELLED = 1,
    NX_RPC_UNKNOWN = 2,
    NX_RPC_INVALID_ARGUMENT = 3,
    NX_RPC_DEADLINE_EXCEEDED = 4,
    NX_RPC_NOT_FOUND = 5,
    NX_RPC_PERMISSION_DENIED = 7,
    NX_RPC_RESOURCE_EXHAUSTED = 8,
    NX_RPC_FAILED_PRECONDITION = 9,
    NX_RPC_UNIMPLEMENTED = 12,
    NX_RPC_INTERNAL = 13,
    NX_RPC_UNAVAILABLE = 14,
    NX_RPC_UNAUTHENTICATED = 16,
};
const char *nx_rpc_code_name(int code);

typedef struct nx_rpc nx_rpc;
typedef struct nx_rpc_call nx_rpc_call;
typedef struct nx_rpc_channel nx_rpc_channel;

typedef struct nx_rpc_cfg {
    size_t max_msg;          /* bytes per message, both ways; 0: 64 MiB */
    int keepalive_ms;        /* HTTP/2 pings on client channels; 0: none */
    /* Security (all PEM text, copied; NULL: off). TLS: the server serves TLS
     * when tls_cert and tls_key are set; client channels speak TLS when
     * tls_ca or tls_cert is set, verifying servers against tls_ca (NULL: the
     * system's roots) and presenting tls_cert/tls_key (mutual TLS).
     * tls_verify_clients: the server requires a client certificate signed by
     * tls_ca. tls_server_name: the name client channels expect in servers'
     * certificates (NULL: the target's host). token: every incoming call must
     * carry "authorization: Bearer TOKEN" (else UNAUTHENTICATED; methods
     * marked open are exempt), and every outgoing call carries it. */
    const char *tls_cert, *tls_key, *tls_ca, *tls_server_name;
    bool tls_verify_clients;
    const char *token;
} nx_rpc_cfg;

/* A completion queue, its poller thread, and the channels and server on it.
 * The loop must have been created first (loop.h: signal mask). */
int nx_rpc_init(nx_rpc **out, nx_loop *loop, const nx_rpc_cfg *cfg, nx_errbuf *eb);
/* Begin shutting down: the server stops accepting, every call is cancelled
 * (their on_close / done callbacks still fire, with CANCELLED), channels are
 * destroyed. The caller must first have answered every server unary call it
 * holds. done(ctx) fires on the loop when the poller thread has exited; then
 * call nx_rpc_free(). */
void nx_rpc_shutdown(nx_rpc *r, void (*done)(void *ctx), void *ctx);
void nx_rpc_free(nx_rpc *r);
nx_loop *nx_rpc_loop(const nx_rpc *r);

/* ---- streams ------------------------------------------------------------------ */

typedef struct nx_rpc_stream_ops {
    const ProtobufCMessageDescriptor *in;   /* what this side receives */
    /* m is freed when on_msg returns; copy what must outlive it, or take a
     * bytes field over (set its data to NULL: it was malloc'd, free() it) */
    void (*on_msg)(nx_rpc_call *c, ProtobufCMessage *m);
    void (*on_drain)(nx_rpc_call *c);       /* optional: nothing left to write */
    /* the end (code: gRPC status; OK when the peer finished cleanly);
     * c is invalid after this returns */
    void (*on_close)(nx_rpc_call *c, int code, const char *why);
    /* client streams, optional: the server accepted the stream (its method
     * has it; the connection, TLS and token checks are behind it). A call
     * the server refuses, or one that never connects, ends with on_close
     * and never gets this. */
    void (*on_accepted)(nx_rpc_call *c);
    /* server streams, optional: the client half-closed (it sends no more);
     * the stream stays open for us to write (a server-streaming method).
     * Without it, the server finishes the stream with OK at the half-close. */
    void (*on_half_close)(nx_rpc_call *c);
} nx_rpc_stream_ops;

/* Queue m for writing (packed now, so m may be freed at once). NX_ERR_IO once
 * the stream has ended; NX_ERR_INVAL if m exceeds the size limit. */
int nx_rpc_send(nx_rpc_call *c, const ProtobufCMessage *m);
/* Messages queued and not yet written (the one being written included). */
size_t nx_rpc_queued(const nx_rpc_call *c);
/* End the stream now with a status (a server: sent to the client; a client:
 * the call is cancelled). What is still queued is discarded. */
void nx_rpc_close(nx_rpc_call *c, int code, const char *why);
void nx_rpc_set_user(nx_rpc_call *c, void *user);
void *nx_rpc_user(const nx_rpc_call *c);
/* "ipv4:127.0.0.1:40000"-style peer, into buf. */
void nx_rpc_peer(const nx_rpc_call *c, char *buf, size_t n);

/* ---- server ---------------------------------------------------------------------- */

typedef struct nx_rpc_method {
    const char *path;                           /* "/package.Service/Method" */
    /* unary: the request type and the handler */
    const ProtobufCMessageDescriptor *req;
    void (*on_unary)(void *ctx, nx_rpc_call *c, ProtobufCMessage *req); /* req freed after */
    /* bidirectional stream (when on_unary is NULL): its callbacks, and
     * on_open, which sets the user pointer */
    const nx_rpc_stream_ops *stream;
    void (*on_open)(void *ctx, nx_rpc_call *c);
    void *ctx;
    bool open;          /* served without the bearer token (health checks) */
} nx_rpc_method;

/* Listen on addr ("127.0.0.1:0" picks a port, returned in *port) and serve
 * the n methods (the array must outlive the server). Others get
 * UNIMPLEMENTED. One server per nx_rpc. */
int nx_rpc_serve(nx_rpc *r, const char *addr, const nx_rpc_method *m, int n, int *port,
                 nx_errbuf *eb);

/* Answer a unary call (exactly one of these, exactly once). */
void nx_rpc_reply(nx_rpc_call *c, const ProtobufCMessage *resp);
void nx_rpc_fail(nx_rpc_call *c, int code, const char *why);

/* ---- client ------------------------------------------------------------------------ */

nx_rpc_channel *nx_rpc_connect(nx_rpc *r, const char *target);
/* Calls on it go on until they end; do not use ch afterwards. */
void nx_rpc_channel_free(nx_rpc_channel *ch);

/* resp: unpacked response when code is OK (freed after done returns), else NULL */
typedef void (*nx_rpc_done_fn)(void *ctx, int code, const char *why, ProtobufCMessage *resp);

/* Unary call. timeout <= 0: none. wait_ready: wait for the channel to connect
 * instead of failing fast (UNAVAILABLE) when the server is not up. Returns 0
 * (done will fire) or a negative nx_err (it will not). */
int nx_rpc_unary(nx_rpc_channel *ch, const char *path, const ProtobufCMessage *req,
                 const ProtobufCMessageDescriptor *resp, nx_time timeout, bool wait_ready,
                 nx_rpc_done_fn done, void *ctx);
/* The same with raw request bytes (tests: malformed requests). */
int nx_rpc_unary_bytes(nx_rpc_channel *ch, const char *path, const void *buf, size_t len,
                       const ProtobufCMessageDescriptor *resp, nx_time timeout, bool wait_ready,
                       nx_rpc_done_fn done, void *ctx);

/* Open a bidirectional stream. */
int nx_rpc_open(nx_rpc_channel *ch, const char *path, const nx_rpc_stream_ops *ops, void *user,
                bool wait_ready, nx_rpc_call **out);

/* ---- counters --------------------------------------------------------------------- */

typedef struct nx_rpc_stats {
    uint64_t calls_in, calls_out, msgs_in, msgs_out, bytes_in, bytes_out, bad_msgs;
    uint64_t live_calls;
    uint64_t unauthenticated;   /* calls refused for a missing or wrong token */
} nx_rpc_stats;
void nx_rpc_get_stats(const nx_rpc *r, nx_rpc_stats *st);

#endif
