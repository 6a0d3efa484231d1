/* serve.h — what every daemon's command line says about how it serves,
 * beside its own service: the metrics port, TLS (server certificate, the
 * roots it trusts, mutual TLS), the bearer token, the message size limit.
 * The daemons add NX_SERVE_LONGOPTS to their getopt table, hand unknown
 * codes to nx_serve_opt(), print NX_SERVE_USAGE in --help, and build their
 * gRPC configuration with nx_serve_load() (which reads the files). */
#ifndef NX_SERVE_H
#define NX_SERVE_H

#include <stdbool.h>

#include "health.h"
#include "metrics.h"
#include "rpc.h"

typedef struct nx_serve_opts {
    const char *metrics;            /* --metrics ADDR (NULL: no metrics port) */
    const char *tls_cert, *tls_key, *tls_ca, *tls_server_name;
    bool tls_verify_clients;
    const char *token_file;
    long max_msg_mb;                /* 0: the rpc layer's default (64) */
    /* read by nx_serve_load(), freed by nx_serve_free() */
    char *cert_pem, *key_pem, *ca_pem, *token;
} nx_serve_opts;

#define NX_SERVE_OPT0 0x1000
#define NX_SERVE_LONGOPTS                                                                    \
    {"metrics", 1, 0, NX_SERVE_OPT0}, {"tls-cert", 1, 0, NX_SERVE_OPT0 + 1},                 \
        {"tls-key", 1, 0, NX_SERVE_OPT0 + 2}, {"tls-ca", 1, 0, NX_SERVE_OPT0 + 3},           \
        {"tls-verify-clients", 0, 0, NX_SERVE_OPT0 + 4},                                     \
        {"tls-server-name", 1, 0, NX_SERVE_OPT0 + 5}, {"token-file", 1, 0, NX_SERVE_OPT0 + 6}, \
        {"max-msg-mb", 1, 0, NX_SERVE_OPT0 + 7}

#define NX_SERVE_USAGE                                                                        \
    "  --metrics ADDR          Prometheus /metrics (and /healthz, /readyz) over HTTP on ADDR\n" \
    "                          (host:port; port 0: any; default: off)\n"                      \
    "  --tls-cert FILE         PEM certificate chain: serve TLS; also presented to the\n"    \
    "                          daemons this one calls (mutual TLS)\n"                         \
    "  --tls-key FILE          PEM private key of --tls-cert\n"                               \
    "  --tls-ca FILE           PEM roots: verify the servers this daemon calls (TLS on its\n" \
    "                          calls); with --tls-verify-clients, the clients' certificates\n" \
    "  --tls-verify-clients    require a client certificate signed by --tls-ca (mutual TLS)\n" \
    "  --tls-server-name NAME  expect NAME in servers' certificates (default: the host)\n"   \
    "  --token-file FILE       bearer token (first line of FILE): required on every call\n"  \
    "                          (UNAUTHENTICATED without it; health checks exempt) and sent\n" \
    "                          on every call this daemon makes\n"                             \
    "  --max-msg-mb N          largest gRPC message either way, MiB (default 64)\n"

/* code: getopt_long's return. 0: taken; 2: a bad value (printed); -1: not
 * one of these options. */
int nx_serve_opt(nx_serve_opts *o, const char *prog, int code, const char *arg);
/* Check the combination and read the files into cfg (which points into o).
 * Errors name the file or the option. */
int nx_serve_load(nx_serve_opts *o, nx_rpc_cfg *cfg, nx_errbuf *eb);
void nx_serve_free(nx_serve_opts *o);

/* A daemon's health service and metrics port. */
typedef struct nx_serving {
    nx_health *health;
    nx_metrics *metrics;        /* NULL without --metrics */
    char metrics_addr[160];
} nx_serving;

/* Before nx_rpc_serve(): the health service, its two methods appended to
 * methods[*n] (room for them is the caller's), *n grown by 2. */
void nx_serving_init(nx_serving *sv, nx_rpc_method *methods, int *n);
/* With --metrics: open the port (logged as who). 0 without it. */
int nx_serving_metrics(nx_serving *sv, const nx_serve_opts *o, nx_loop *loop, nx_rpc *rpc,
                       nx_metrics_fn fn, void *ctx, const char *who, nx_errbuf *eb);
/* After the rpc layer's shutdown completed. */
void nx_serving_free(nx_serving *sv);

#endif
