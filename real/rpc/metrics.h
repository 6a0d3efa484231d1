/* metrics.h — a daemon's Prometheus endpoint: a tiny HTTP/1.1 server on the
 * daemon's loop (non-blocking sockets watched by epoll, no thread) that
 * answers
 *
 *   GET /metrics   200, the Prometheus text format (version 0.0.4), built
 *                  at each scrape by the daemon's collect callback, plus the
 *                  process_* and nexus_grpc_* families every daemon has
 *   GET /healthz   200 "ok" while the process runs (liveness)
 *   GET /readyz    200 when the health service's "" is SERVING, else 503
 *                  (readiness, for probes that cannot speak gRPC or TLS)
 *   GET /readyz/NAME  the same for the health service NAME (404 if the
 *                  daemon has none of that name), as a gRPC probe's service
 *
 * and 400/404/405/431 otherwise. One request per connection (Connection:
 * close); a request head is at most 8 KiB; at most 32 connections at once
 * (more are closed at accept); a connection silent for 5 s is closed. */
#ifndef NX_METRICS_H
#define NX_METRICS_H

#include "health.h"
#include "loop.h"
#include "rpc.h"

typedef struct nx_prom nx_prom;
typedef struct nx_metrics nx_metrics;

/* "# HELP" and "# TYPE" (counter, gauge) for a family. */
void nx_prom_family(nx_prom *p, const char *name, const char *type, const char *help);
/* One sample: name{k1="v1",k2="v2"} v (k1/k2 NULL: fewer labels; values
 * are escaped). */
void nx_prom_sample(nx_prom *p, const char *name, double v, const char *k1, const char *v1,
                    const char *k2, const char *v2);
/* A family with one sample and no labels. */
void nx_prom_one(nx_prom *p, const char *name, const char *type, const char *help, double v);

typedef void (*nx_metrics_fn)(void *ctx, nx_prom *p);

/* Listen on addr ("127.0.0.1:9100", "0.0.0.0:0", "[::1]:9100"; port 0: any,
 * returned in *port). rpc and health may be NULL. */
int nx_metrics_init(nx_metrics **out, nx_loop *loop, const char *addr, nx_metrics_fn fn,
                    void *ctx, nx_rpc *rpc, nx_health *health, int *port, nx_errbuf *eb);
/* Closes the listener and every connection. */
void nx_metrics_free(nx_metrics *m);
/* Render the page as a scrape would (tests); free() the result. */
char *nx_metrics_render(nx_metrics *m, size_t *len);

#endif
