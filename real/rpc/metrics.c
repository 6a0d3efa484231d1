/* metrics.c — the Prometheus endpoint (metrics.h): a listening socket and
 * its connections, all non-blocking and watched by the daemon's loop; the
 * page is built in memory at each request and written with as many write(2)
 * calls as the socket takes (EPOLLOUT in between). Nothing here blocks the
 * loop: accept, read and write return EAGAIN rather than wait, and a sweep
 * timer closes connections that stall. */
#include "metrics.h"

#include <errno.h>
#include <math.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_HEAD 8192
#define MAX_CONNS 32
#define IDLE_NS NX_SEC(5)

struct nx_prom {
    char *buf;
    size_t len, cap;
};

typedef struct conn {
    nx_metrics *m;
    int fd;
    nx_time born;
    char in[MAX_HEAD];
    size_t nin;
    char *out;                  /* the response, once the head is read */
    size_t nout, off;
    struct conn *prev, *next;
} conn;

struct nx_metrics {
    nx_loop *loop;
    int lfd;
    nx_metrics_fn fn;
    void *ctx;
    nx_rpc *rpc;
    nx_health *health;
    conn *conns;
    int nconns;
    nx_event sweep;
    double start_time;          /* wall clock, seconds since the epoch */
    uint64_t scrapes;
};

/* ---- the text format ------------------------------------------------------------ */

static void put(nx_prom *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(nx_prom *p, const char *fmt, ...)
{
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        size_t room = p->cap - p->len;
        int n = vsnprintf(p->buf + p->len, room, fmt, ap);
        va_end(ap);
        NX_ASSERT(n >= 0);
        if ((size_t)n < room) {
            p->len += (size_t)n;
            return;
        }
        p->cap = 2 * p->cap + (size_t)n + 1;
        p->buf = nx_realloc(p->buf, p->cap);
    }
}

void nx_prom_family(nx_prom *p, const char *name, const char *type, const char *help)
{
    put(p, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void put_label(nx_prom *p, const char *k, const char *v, bool first)
{
    put(p, "%s%s=\"", first ? "" : ",", k);
    for (const char *c = v; *c; c++) {
        if (*c == '\\')
            put(p, "\\\\");
        else if (*c == '"')
            put(p, "\\\"");
        else if (*c == '\n')
            put(p, "\\n");
        else
            put(p, "%c", *c);
    }
    put(p, "\"");
}

void nx_prom_sample(nx_prom *p, const char *name, double v, const char *k1, const char *v1,
                    const char *k2, const char *v2)
{
    put(p, "%s", name);
    if (k1) {
        put(p, "{");
        put_label(p, k1, v1, true);
        if (k2)
            put_label(p, k2, v2, false);
        put(p, "}");
    }
    if (isnan(v))
        put(p, " NaN\n");
    else if (isinf(v))
        put(p, " %sInf\n", v > 0 ? "+" : "-");
    else if (v == floor(v) && fabs(v) < 1e15)
        put(p, " %.0f\n", v);
    else
        put(p, " %.9g\n", v);
}

void nx_prom_one(nx_prom *p, const char *name, const char *type, const char *help, double v)
{
    nx_prom_family(p, name, type, help);
    nx_prom_sample(p, name, v, NULL, NULL, NULL, NULL);
}

/* What every daemon reports besides its own families. */
static void common(nx_metrics *m, nx_prom *p)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    nx_prom_one(p, "process_cpu_seconds_total", "counter", "User and system CPU time spent.",
                (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec * 1e-6 +
                    (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec * 1e-6);
    long pages = 0, rss = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (f) {
        if (fscanf(f, "%ld %ld", &pages, &rss) != 2)
            rss = 0;
        fclose(f);
    }
    nx_prom_one(p, "process_resident_memory_bytes", "gauge", "Resident memory size in bytes.",
                (double)rss * (double)sysconf(_SC_PAGESIZE));
    nx_prom_one(p, "process_start_time_seconds", "gauge",
                "Start time of the process since the Unix epoch in seconds.", m->start_time);
    nx_prom_one(p, "nexus_metrics_scrapes_total", "counter",
                "Requests for /metrics answered, this one included.", (double)m->scrapes);
    if (!m->rpc)
        return;
    nx_rpc_stats st;
    nx_rpc_get_stats(m->rpc, &st);
    nx_prom_one(p, "nexus_grpc_calls_received_total", "counter",
                "gRPC calls this daemon's server accepted (any method).", (double)st.calls_in);
    nx_prom_one(p, "nexus_grpc_calls_started_total", "counter",
                "gRPC calls this daemon started as a client.", (double)st.calls_out);
    nx_prom_one(p, "nexus_grpc_bad_messages_total", "counter",
                "gRPC messages that did not parse (answered INVALID_ARGUMENT).",
                (double)st.bad_msgs);
    nx_prom_one(p, "nexus_grpc_unauthenticated_total", "counter",
                "gRPC calls refused for a missing or wrong bearer token.",
                (double)st.unauthenticated);
    nx_prom_one(p, "nexus_grpc_live_calls", "gauge", "gRPC calls and streams open now.",
                (double)st.live_calls);
}

char *nx_metrics_render(nx_metrics *m, size_t *len)
{
    nx_prom p = {.cap = 4096};
    p.buf = nx_malloc(p.cap);
    p.buf[0] = 0;
    m->scrapes++;
    if (m->fn)
        m->fn(m->ctx, &p);
    common(m, &p);
    *len = p.len;
    return p.buf;
}

/* ---- connections -------------------------------------------------------------------- */

static void conn_close(conn *c)
{
    nx_metrics *m = c->m;
    nx_loop_unwatch(m->loop, c->fd);
    close(c->fd);
    free(c->out);
    if (c->prev)
        c->prev->next = c->next;
    else
        m->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    m->nconns--;
    free(c);
}

static void respond(conn *c, int code, const char *reason, const char *type, const char *body,
                    size_t blen, bool head_only)
{
    nx_prom p = {.cap = blen + 256};
    p.buf = nx_malloc(p.cap);
    put(&p,
        "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n",
        code, reason, type, blen);
    if (!head_only && blen) {
        if (p.len + blen > p.cap) {
            p.cap = p.len + blen;
            p.buf = nx_realloc(p.buf, p.cap);
        }
        memcpy(p.buf + p.len, body, blen);
        p.len += blen;
    }
    c->out = p.buf;
    c->nout = p.len;
    c->off = 0;
}

static void respond_text(conn *c, int code, const char *reason, const char *msg)
{
    respond(c, code, reason, "text/plain; charset=utf-8", msg, strlen(msg), false);
}

/* A whole request head is in c->in: decide the response. */
static void handle(conn *c)
{
    nx_metrics *m = c->m;
    char *eol = memchr(c->in, '\r', c->nin);
    char *sp1 = memchr(c->in, ' ', eol ? (size_t)(eol - c->in) : 0);
    char *sp2 = sp1 ? memchr(sp1 + 1, ' ', (size_t)(eol - sp1 - 1)) : NULL;
    if (!eol || !sp1 || !sp2 || eol - sp2 < 9 || strncmp(sp2 + 1, "HTTP/1.", 7) != 0) {
        respond_text(c, 400, "Bad Request", "bad request line\n");
        return;
    }
    *sp1 = 0;
    *sp2 = 0;
    const char *method = c->in, *target = sp1 + 1;
    bool head = strcmp(method, "HEAD") == 0;
    if (!head && strcmp(method, "GET") != 0) {
        respond_text(c, 405, "Method Not Allowed", "only GET and HEAD\n");
        return;
    }
    size_t plen = strcspn(target, "?");
    if (plen == 8 && strncmp(target, "/metrics", 8) == 0) {
        size_t n;
        char *body = nx_metrics_render(m, &n);
        respond(c, 200, "OK", "text/plain; version=0.0.4; charset=utf-8", body, n, head);
        free(body);
    } else if (plen == 8 && strncmp(target, "/healthz", 8) == 0) {
        respond_text(c, 200, "OK", "ok\n");
    } else if ((plen == 7 || plen > 8) && strncmp(target, "/readyz", 7) == 0 &&
               (plen == 7 || target[7] == '/')) {
        /* /readyz: health ""; /readyz/NAME: the named service (as a gRPC probe's service) */
        size_t nlen = plen == 7 ? 0 : plen - 8;
        char svc[128];
        int st = NX_HEALTH_SERVICE_UNKNOWN; /* a name too long for any service too */
        if (nlen < sizeof svc) {
            memcpy(svc, target + 8 * (nlen > 0), nlen);
            svc[nlen] = 0;
            st = m->health ? nx_health_get(m->health, svc)
                 : nlen    ? NX_HEALTH_SERVICE_UNKNOWN : NX_HEALTH_SERVING;
        }
        if (st == NX_HEALTH_SERVING)
            respond_text(c, 200, "OK", "ready\n");
        else if (st == NX_HEALTH_SERVICE_UNKNOWN)
            respond_text(c, 404, "Not Found", "no such health service\n");
        else
            respond_text(c, 503, "Service Unavailable", "not ready\n");
    } else {
        respond_text(c, 404, "Not Found", "not found (try /metrics, /healthz, /readyz)\n");
    }
}

static void conn_io(void *ctx, int fd, uint32_t events);

/* Write what the socket takes; done: close; else wait for EPOLLOUT. */
static void conn_write(conn *c)
{
    while (c->off < c->nout) {
        ssize_t n = write(c->fd, c->out + c->off, c->nout - c->off);
        if (n > 0) {
            c->off += (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            nx_loop_unwatch(c->m->loop, c->fd);
            if (nx_loop_watch(c->m->loop, c->fd, EPOLLOUT, conn_io, c) < 0)
                conn_close(c);
            return;
        }
        break; /* the peer went away */
    }
    shutdown(c->fd, SHUT_WR);
    conn_close(c);
}

static void conn_io(void *ctx, int fd, uint32_t events)
{
    conn *c = ctx;
    (void)fd;
    if (c->out) {
        if (events & (EPOLLOUT | EPOLLERR | EPOLLHUP))
            conn_write(c);
        return;
    }
    for (;;) {
        if (c->nin == sizeof c->in) {
            respond_text(c, 431, "Request Header Fields Too Large", "request head over 8 KiB\n");
            conn_write(c);
            return;
        }
        ssize_t n = read(c->fd, c->in + c->nin, sizeof c->in - c->nin);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        if (n <= 0) { /* closed before a whole head, or an error */
            conn_close(c);
            return;
        }
        size_t from = c->nin >= 3 ? c->nin - 3 : 0;
        c->nin += (size_t)n;
        if (memmem(c->in + from, c->nin - from, "\r\n\r\n", 4)) {
            handle(c);
            conn_write(c);
            return;
        }
    }
}

static void on_accept(void *ctx, int fd, uint32_t events)
{
    nx_metrics *m = ctx;
    (void)events;
    for (;;) {
        int cfd = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (cfd < 0)
            return; /* EAGAIN, or a connection that went away */
        if (m->nconns >= MAX_CONNS) {
            close(cfd);
            continue;
        }
        conn *c = nx_calloc(1, sizeof *c);
        c->m = m;
        c->fd = cfd;
        c->born = nx_loop_now(m->loop);
        if (nx_loop_watch(m->loop, cfd, EPOLLIN | EPOLLRDHUP, conn_io, c) < 0) {
            close(cfd);
            free(c);
            continue;
        }
        c->next = m->conns;
        if (m->conns)
            m->conns->prev = c;
        m->conns = c;
        m->nconns++;
    }
}

static void sweep(nx_event *ev)
{
    nx_metrics *m = ev->ctx;
    nx_time now = nx_loop_now(m->loop);
    for (conn *c = m->conns, *next; c; c = next) {
        next = c->next;
        if (now - c->born > IDLE_NS)
            conn_close(c);
    }
    ev->time = now + NX_SEC(1);
    nx_loop_at(m->loop, ev);
}

/* ---- life cycle ------------------------------------------------------------------------ */

static int listen_on(const char *addr, int *port, nx_errbuf *eb)
{
    char host[256];
    const char *colon = strrchr(addr, ':');
    if (!colon || colon == addr || (size_t)(colon - addr) >= sizeof host || !colon[1]) {
        nx_err_set(eb, NX_ERR_INVAL, "metrics: '%s' is not HOST:PORT", addr);
        return NX_ERR_INVAL;
    }
    memcpy(host, addr, (size_t)(colon - addr));
    host[colon - addr] = 0;
    char *h = host;
    if (h[0] == '[' && h[strlen(h) - 1] == ']') {
        h[strlen(h) - 1] = 0;
        h++;
    }
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *ai = NULL;
    int g = getaddrinfo(h, colon + 1, &hints, &ai);
    if (g != 0) {
        nx_err_set(eb, NX_ERR_INVAL, "metrics: '%s': %s", addr, gai_strerror(g));
        return NX_ERR_INVAL;
    }
    int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    if (fd >= 0)
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (fd < 0 || bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(fd, 64) < 0) {
        nx_err_set(eb, NX_ERR_IO, "metrics: cannot listen on %s: %s", addr, strerror(errno));
        if (fd >= 0)
            close(fd);
        freeaddrinfo(ai);
        return NX_ERR_IO;
    }
    freeaddrinfo(ai);
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    getsockname(fd, (struct sockaddr *)&ss, &sl);
    *port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                           : ((struct sockaddr_in *)&ss)->sin_port);
    return fd;
}

int nx_metrics_init(nx_metrics **out, nx_loop *loop, const char *addr, nx_metrics_fn fn,
                    void *ctx, nx_rpc *rpc, nx_health *health, int *port, nx_errbuf *eb)
{
    *out = NULL;
    int p = 0;
    int fd = listen_on(addr, &p, eb);
    if (fd < 0)
        return fd;
    nx_metrics *m = nx_calloc(1, sizeof *m);
    m->loop = loop;
    m->lfd = fd;
    m->fn = fn;
    m->ctx = ctx;
    m->rpc = rpc;
    m->health = health;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    m->start_time = (double)ts.tv_sec + ts.tv_nsec * 1e-9;
    if (nx_loop_watch(loop, fd, EPOLLIN, on_accept, m) < 0) {
        nx_err_set(eb, NX_ERR_IO, "metrics: cannot watch the listening socket");
        close(fd);
        free(m);
        return NX_ERR_IO;
    }
    m->sweep.fn = sweep;
    m->sweep.ctx = m;
    m->sweep.time = nx_loop_now(loop) + NX_SEC(1);
    nx_loop_at(loop, &m->sweep);
    if (port)
        *port = p;
    *out = m;
    return 0;
}

void nx_metrics_free(nx_metrics *m)
{
    if (!m)
        return;
    nx_loop_cancel(m->loop, &m->sweep);
    while (m->conns)
        conn_close(m->conns);
    nx_loop_unwatch(m->loop, m->lfd);
    close(m->lfd);
    free(m);
}
