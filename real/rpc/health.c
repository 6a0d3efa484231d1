/* health.c — grpc.health.v1.Health on the rpc layer (health.h): a small
 * table of named services and their status, Check as a unary method, Watch
 * as a server-streaming one (a stream whose client half-closes after its one
 * request; rpc.h's on_half_close keeps it open for our updates). Watchers
 * live in a list; each is freed in its on_close, which the rpc layer
 * delivers for every stream it ends, shutdown included. */
#include "health.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "health.pb-c.h"

#define MAX_SERVICES 32
#define MAX_NAME 128
#define WATCH_MAX_QUEUED 8

typedef struct svc {
    char name[MAX_NAME];
    int status;
} svc;

typedef struct watcher {
    nx_health *h;
    nx_rpc_call *c;
    bool asked;                 /* its request arrived */
    char name[MAX_NAME];
    int sent;                   /* the last status sent */
    struct watcher *prev, *next;
} watcher;

struct nx_health {
    svc svc[MAX_SERVICES];
    int nsvc;
    watcher *watchers;
    int nwatch;
};

int nx_health_init(nx_health **out)
{
    *out = nx_calloc(1, sizeof **out);
    return 0;
}

void nx_health_free(nx_health *h)
{
    if (!h)
        return;
    NX_ASSERT(!h->watchers); /* rpc shutdown closed them all */
    free(h);
}

static svc *find(const nx_health *h, const char *name)
{
    for (int i = 0; i < h->nsvc; i++)
        if (strcmp(h->svc[i].name, name) == 0)
            return (svc *)&h->svc[i];
    return NULL;
}

int nx_health_get(const nx_health *h, const char *service)
{
    const svc *s = find(h, service);
    return s ? s->status : NX_HEALTH_SERVICE_UNKNOWN;
}

int nx_health_watchers(const nx_health *h) { return h->nwatch; }

static void watcher_free(watcher *w)
{
    nx_health *h = w->h;
    if (w->prev)
        w->prev->next = w->next;
    else
        h->watchers = w->next;
    if (w->next)
        w->next->prev = w->prev;
    h->nwatch--;
    free(w);
}

/* Send w its service's status if it changed since the last one sent. */
static void notify(watcher *w)
{
    int st = nx_health_get(w->h, w->name);
    if (!w->asked || st == w->sent)
        return;
    if (nx_rpc_queued(w->c) >= WATCH_MAX_QUEUED) {
        nx_rpc_close(w->c, NX_RPC_RESOURCE_EXHAUSTED, "health watcher does not read its updates");
        watcher_free(w);
        return;
    }
    Grpc__Health__V1__HealthCheckResponse r = GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__INIT;
    r.status = (Grpc__Health__V1__HealthCheckResponse__ServingStatus)st;
    w->sent = st;
    nx_rpc_send(w->c, &r.base); /* a stream that ended is closed by its on_close */
}

static void notify_all(nx_health *h)
{
    for (watcher *w = h->watchers, *next; w; w = next) {
        next = w->next;
        notify(w);
    }
}

void nx_health_set(nx_health *h, const char *service, bool serving)
{
    int st = serving ? NX_HEALTH_SERVING : NX_HEALTH_NOT_SERVING;
    svc *s = find(h, service);
    if (!s) {
        NX_ASSERT(h->nsvc < MAX_SERVICES && strlen(service) < MAX_NAME);
        s = &h->svc[h->nsvc++];
        snprintf(s->name, sizeof s->name, "%s", service);
        s->status = -1;
    }
    if (s->status == st)
        return;
    s->status = st;
    notify_all(h);
}

void nx_health_set_all(nx_health *h, bool serving)
{
    for (int i = 0; i < h->nsvc; i++)
        h->svc[i].status = serving ? NX_HEALTH_SERVING : NX_HEALTH_NOT_SERVING;
    notify_all(h);
}

/* ---- Check ------------------------------------------------------------------------ */

static void check_call(void *ctx, nx_rpc_call *c, ProtobufCMessage *pm)
{
    nx_health *h = ctx;
    const Grpc__Health__V1__HealthCheckRequest *rq = (Grpc__Health__V1__HealthCheckRequest *)pm;
    const svc *s = find(h, rq->service);
    if (!s) {
        char why[200];
        snprintf(why, sizeof why, "health: unknown service '%.100s'", rq->service);
        nx_rpc_fail(c, NX_RPC_NOT_FOUND, why);
        return;
    }
    Grpc__Health__V1__HealthCheckResponse r = GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__INIT;
    r.status = (Grpc__Health__V1__HealthCheckResponse__ServingStatus)s->status;
    nx_rpc_reply(c, &r.base);
}

/* ---- Watch ------------------------------------------------------------------------ */

static void watch_msg(nx_rpc_call *c, ProtobufCMessage *pm)
{
    watcher *w = nx_rpc_user(c);
    const Grpc__Health__V1__HealthCheckRequest *rq = (Grpc__Health__V1__HealthCheckRequest *)pm;
    if (w->asked || strlen(rq->service) >= MAX_NAME) {
        nx_rpc_close(c, NX_RPC_INVALID_ARGUMENT,
                     w->asked ? "health: Watch takes one request"
                              : "health: service name too long");
        watcher_free(w);
        return;
    }
    w->asked = true;
    snprintf(w->name, sizeof w->name, "%s", rq->service);
    w->sent = -1;
    notify(w);
}

static void watch_half_close(nx_rpc_call *c)
{
    watcher *w = nx_rpc_user(c);
    if (!w->asked) {
        nx_rpc_close(c, NX_RPC_INVALID_ARGUMENT, "health: Watch without a request");
        watcher_free(w);
    }
}

static void watch_close(nx_rpc_call *c, int code, const char *why)
{
    (void)code;
    (void)why;
    watcher_free(nx_rpc_user(c));
}

static const nx_rpc_stream_ops watch_ops = {
    .in = &grpc__health__v1__health_check_request__descriptor,
    .on_msg = watch_msg,
    .on_close = watch_close,
    .on_half_close = watch_half_close,
};

static void watch_open(void *ctx, nx_rpc_call *c)
{
    nx_health *h = ctx;
    if (h->nwatch >= NX_HEALTH_MAX_WATCH) {
        nx_rpc_close(c, NX_RPC_RESOURCE_EXHAUSTED, "health: too many watchers");
        return;
    }
    watcher *w = nx_calloc(1, sizeof *w);
    w->h = h;
    w->c = c;
    w->next = h->watchers;
    if (h->watchers)
        h->watchers->prev = w;
    h->watchers = w;
    h->nwatch++;
    nx_rpc_set_user(c, w);
}

void nx_health_methods(nx_health *h, nx_rpc_method out[2])
{
    out[0] = (nx_rpc_method){.path = "/grpc.health.v1.Health/Check",
                             .req = &grpc__health__v1__health_check_request__descriptor,
                             .on_unary = check_call, .ctx = h, .open = true};
    out[1] = (nx_rpc_method){.path = "/grpc.health.v1.Health/Watch", .stream = &watch_ops,
                             .on_open = watch_open, .ctx = h, .open = true};
}
