/* serve.c — the serving options every daemon shares (serve.h): parsing,
 * their combinations, and reading the certificate, key, roots and token
 * files (bounded: 1 MiB each) into the rpc layer's configuration. */
#include "serve.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

#define MAX_FILE (1 << 20)

int nx_serve_opt(nx_serve_opts *o, const char *prog, int code, const char *arg)
{
    switch (code - NX_SERVE_OPT0) {
    case 0: o->metrics = arg; return 0;
    case 1: o->tls_cert = arg; return 0;
    case 2: o->tls_key = arg; return 0;
    case 3: o->tls_ca = arg; return 0;
    case 4: o->tls_verify_clients = true; return 0;
    case 5: o->tls_server_name = arg; return 0;
    case 6: o->token_file = arg; return 0;
    case 7: return nx_cli_long(prog, "--max-msg-mb", arg, 1, 2047, &o->max_msg_mb) ? 2 : 0;
    default: return -1;
    }
}

static int slurp(const char *path, const char *what, char **out, nx_errbuf *eb)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        nx_err_set(eb, NX_ERR_IO, "%s: cannot open %s: %s", what, path, strerror(errno));
        return NX_ERR_IO;
    }
    char *buf = nx_malloc(MAX_FILE + 1);
    size_t n = fread(buf, 1, MAX_FILE + 1, f);
    bool err = ferror(f);
    fclose(f);
    if (err || n == 0 || n > MAX_FILE) {
        nx_err_set(eb, NX_ERR_INVAL, "%s: %s is %s", what, path,
                   err ? "unreadable" : n == 0 ? "empty" : "larger than 1 MiB");
        free(buf);
        return NX_ERR_INVAL;
    }
    buf[n] = 0;
    *out = buf;
    return 0;
}

static int pem(const char *path, const char *what, const char *marker, char **out,
               nx_errbuf *eb)
{
    int rc = slurp(path, what, out, eb);
    if (rc == 0 && !strstr(*out, marker)) {
        nx_err_set(eb, NX_ERR_INVAL, "%s: %s holds no '%s' (PEM expected)", what, path, marker);
        free(*out);
        *out = NULL;
        return NX_ERR_INVAL;
    }
    return rc;
}

int nx_serve_load(nx_serve_opts *o, nx_rpc_cfg *cfg, nx_errbuf *eb)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->max_msg = (size_t)o->max_msg_mb << 20;
    if (!o->tls_cert != !o->tls_key) {
        nx_err_set(eb, NX_ERR_INVAL, "--tls-cert and --tls-key go together");
        return NX_ERR_INVAL;
    }
    if (o->tls_verify_clients && (!o->tls_ca || !o->tls_cert)) {
        nx_err_set(eb, NX_ERR_INVAL, "--tls-verify-clients needs --tls-ca (the clients' roots) "
                                     "and --tls-cert/--tls-key");
        return NX_ERR_INVAL;
    }
    if (o->tls_server_name && !o->tls_ca && !o->tls_cert) {
        nx_err_set(eb, NX_ERR_INVAL, "--tls-server-name needs TLS (--tls-ca or --tls-cert)");
        return NX_ERR_INVAL;
    }
    int rc = 0;
    if (o->tls_cert && ((rc = pem(o->tls_cert, "--tls-cert", "-----BEGIN CERTIFICATE-----",
                                  &o->cert_pem, eb)) < 0 ||
                        (rc = pem(o->tls_key, "--tls-key", "PRIVATE KEY-----", &o->key_pem,
                                  eb)) < 0))
        return rc;
    if (o->tls_ca && (rc = pem(o->tls_ca, "--tls-ca", "-----BEGIN CERTIFICATE-----", &o->ca_pem,
                               eb)) < 0)
        return rc;
    if (o->token_file) {
        if ((rc = slurp(o->token_file, "--token-file", &o->token, eb)) < 0)
            return rc;
        o->token[strcspn(o->token, "\r\n")] = 0;
        size_t n = strlen(o->token);
        while (n > 0 && isspace((unsigned char)o->token[n - 1]))
            o->token[--n] = 0;
        for (size_t i = 0; i < n; i++)
            if (!isgraph((unsigned char)o->token[i])) {
                nx_err_set(eb, NX_ERR_INVAL, "--token-file: %s: the token's character %zu is "
                                             "not printable ASCII (no spaces)",
                           o->token_file, i + 1);
                return NX_ERR_INVAL;
            }
        if (n < 16) {
            nx_err_set(eb, NX_ERR_INVAL, "--token-file: %s: the token on its first line has %zu "
                                         "characters; at least 16 are required",
                       o->token_file, n);
            return NX_ERR_INVAL;
        }
    }
    cfg->tls_cert = o->cert_pem;
    cfg->tls_key = o->key_pem;
    cfg->tls_ca = o->ca_pem;
    cfg->tls_server_name = o->tls_server_name;
    cfg->tls_verify_clients = o->tls_verify_clients;
    cfg->token = o->token;
    return 0;
}

void nx_serve_free(nx_serve_opts *o)
{
    free(o->cert_pem);
    free(o->key_pem);
    free(o->ca_pem);
    if (o->token)
        memset(o->token, 0, strlen(o->token));
    free(o->token);
    o->cert_pem = o->key_pem = o->ca_pem = o->token = NULL;
}

void nx_serving_init(nx_serving *sv, nx_rpc_method *methods, int *n)
{
    memset(sv, 0, sizeof *sv);
    nx_health_init(&sv->health);
    nx_health_methods(sv->health, &methods[*n]);
    *n += 2;
}

int nx_serving_metrics(nx_serving *sv, const nx_serve_opts *o, nx_loop *loop, nx_rpc *rpc,
                       nx_metrics_fn fn, void *ctx, const char *who, nx_errbuf *eb)
{
    if (!o->metrics)
        return 0;
    int port = 0;
    int rc = nx_metrics_init(&sv->metrics, loop, o->metrics, fn, ctx, rpc, sv->health, &port, eb);
    if (rc < 0)
        return rc;
    nx_addr_with_port(sv->metrics_addr, sizeof sv->metrics_addr, o->metrics, port);
    nx_log(who, "metrics on http://%s/metrics", sv->metrics_addr);
    return 0;
}

void nx_serving_free(nx_serving *sv)
{
    nx_metrics_free(sv->metrics);
    nx_health_free(sv->health);
    memset(sv, 0, sizeof *sv);
}
