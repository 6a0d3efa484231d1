/* rpcbench.c — nexus-rpcbench: the backend's CPU cost per request. It plays a
 * frontend on the data plane: one Serve stream to a running nexus-backend
 * (emulated executor), closed loop with --window requests outstanding, at
 * most --batch per QueryBatch, and reads the backend process's CPU time
 * (utime + stime in /proc/PID/stat) before and after --requests requests,
 * after a warm-up. Every request must come back answered (served, not
 * dropped or rejected), else the figure is not reported. tests/real/bench.sh
 * starts the scheduler and the backend and runs it (make bench). */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "nexus.pb-c.h"
#include "rpc.h"
#include "util.h"

typedef struct bench {
    nx_loop *l;
    nx_rpc *rpc;
    nx_rpc_call *st;
    long window, batch, total, warmup, session;
    long sent, answered, served, dropped, other;
    uint64_t batch_sum;
    int pid;
    double cpu0, cpu1;
    nx_time t0, t1;
    bool failed, done, down;
    char why[256];
    nx_event guard;
} bench;

static double cpu_seconds(int pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    char *p = strrchr(buf, ')'); /* the command may hold spaces */
    unsigned long ut = 0, stt = 0;
    if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &stt) != 2)
        return -1;
    return (double)(ut + stt) / (double)sysconf(_SC_CLK_TCK);
}

static void fill(bench *b)
{
    Nexus__Query q[256], *qp[256];
    while (b->sent < b->total + b->warmup && b->sent - b->answered < b->window) {
        long n = b->batch;
        if (n > 256)
            n = 256;
        if (n > b->window - (b->sent - b->answered))
            n = b->window - (b->sent - b->answered);
        if (n > b->total + b->warmup - b->sent)
            n = b->total + b->warmup - b->sent;
        for (long i = 0; i < n; i++) {
            nexus__query__init(&q[i]);
            q[i].id = (uint64_t)(b->sent + i);
            q[i].session = (int32_t)b->session;
            q[i].slack_ns = NX_SEC(10);
            qp[i] = &q[i];
        }
        Nexus__QueryBatch qb = NEXUS__QUERY_BATCH__INIT;
        qb.n_queries = (size_t)n;
        qb.queries = qp;
        if (nx_rpc_send(b->st, &qb.base) < 0)
            return;
        b->sent += n;
    }
}

static void on_msg(nx_rpc_call *c, ProtobufCMessage *pm)
{
    bench *b = nx_rpc_user(c);
    Nexus__ReplyBatch *rb = (Nexus__ReplyBatch *)pm;
    for (size_t i = 0; i < rb->n_replies; i++) {
        const Nexus__Reply *r = rb->replies[i];
        b->answered++;
        if (r->status == NEXUS__REPLY_STATUS__REPLY_OK) {
            b->served++;
            b->batch_sum += (uint64_t)r->batch;
        } else if (r->status == NEXUS__REPLY_STATUS__REPLY_DROPPED) {
            b->dropped++;
        } else {
            b->other++;
        }
        if (b->answered == b->warmup) { /* the measured part starts */
            b->cpu0 = cpu_seconds(b->pid);
            b->t0 = nx_loop_now(b->l);
            b->served = b->dropped = b->other = 0;
            b->batch_sum = 0;
        }
    }
    if (b->answered >= b->total + b->warmup) {
        b->cpu1 = cpu_seconds(b->pid);
        b->t1 = nx_loop_now(b->l);
        b->done = true;
        nx_loop_stop(b->l);
        return;
    }
    fill(b);
}

static void on_close(nx_rpc_call *c, int code, const char *why)
{
    bench *b = nx_rpc_user(c);
    b->st = NULL;
    if (b->done)
        return; /* the shutdown's cancellation */
    b->failed = true;
    snprintf(b->why, sizeof b->why, "the stream ended: %s %s", nx_rpc_code_name(code), why);
    nx_loop_stop(b->l);
}

static const nx_rpc_stream_ops ops = {
    .in = &nexus__reply_batch__descriptor,
    .on_msg = on_msg,
    .on_close = on_close,
};

static void guard(nx_event *ev)
{
    bench *b = ev->ctx;
    b->failed = true;
    snprintf(b->why, sizeof b->why, "no progress for 60 s (%ld of %ld answered)", b->answered,
             b->total + b->warmup);
    nx_loop_stop(b->l);
}

static void stopped(void *ctx)
{
    bench *b = ctx;
    b->down = true;
    nx_loop_stop(b->l);
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: nexus-rpcbench --backend ADDR --pid PID [options]\n"
            "\n"
            "Measures a running nexus-backend's CPU time per request on its data plane.\n"
            "\n"
            "options:\n"
            "  --backend ADDR     the backend's data address (required)\n"
            "  --pid PID          its process id, for /proc/PID/stat (required)\n"
            "  --session S        the session to send to (default 0)\n"
            "  --requests N       measured requests (default 200000)\n"
            "  --warmup N         requests before measuring (default 20000)\n"
            "  --window W         requests outstanding (default 1024)\n"
            "  --batch B          requests per QueryBatch message at most (default 64)\n"
            "  --help             this text\n");
}

int main(int argc, char **argv)
{
    const char *prog = "nexus-rpcbench", *addr = NULL;
    bench *b = nx_calloc(1, sizeof *b);
    long pid = 0;
    b->window = 1024;
    b->batch = 64;
    b->total = 200000;
    b->warmup = 20000;
    static const struct option opts[] = {
        {"backend", 1, 0, 'b'}, {"pid", 1, 0, 'p'}, {"session", 1, 0, 's'},
        {"requests", 1, 0, 'n'}, {"warmup", 1, 0, 'w'}, {"window", 1, 0, 'W'},
        {"batch", 1, 0, 'B'}, {"help", 0, 0, 'h'}, {0, 0, 0, 0},
    };
    int o, bad = 0;
    while ((o = getopt_long(argc, argv, "h", opts, NULL)) != -1 && !bad) {
        switch (o) {
        case 'b': addr = optarg; break;
        case 'p': bad = nx_cli_long(prog, "--pid", optarg, 1, 1L << 30, &pid); break;
        case 's': bad = nx_cli_long(prog, "--session", optarg, 0, 1 << 20, &b->session); break;
        case 'n': bad = nx_cli_long(prog, "--requests", optarg, 1, 1L << 32, &b->total); break;
        case 'w': bad = nx_cli_long(prog, "--warmup", optarg, 1, 1L << 32, &b->warmup); break;
        case 'W': bad = nx_cli_long(prog, "--window", optarg, 1, 1 << 20, &b->window); break;
        case 'B': bad = nx_cli_long(prog, "--batch", optarg, 1, 256, &b->batch); break;
        case 'h': usage(stdout); free(b); return 0;
        default: usage(stderr); free(b); return 2;
        }
    }
    if (bad || !addr || !pid || optind != argc) {
        if (!bad)
            usage(stderr);
        free(b);
        return 2;
    }
    b->pid = (int)pid;
    nx_errbuf eb;
    nx_err_clear(&eb);
    int rc = nx_loop_init(&b->l, &eb);
    if (rc == 0)
        rc = nx_rpc_init(&b->rpc, b->l, &(nx_rpc_cfg){0}, &eb);
    if (rc == 0 && cpu_seconds(b->pid) < 0) {
        nx_err_set(&eb, NX_ERR_IO, "/proc/%ld/stat: cannot read", pid);
        rc = NX_ERR_IO;
    }
    if (rc == 0) {
        nx_rpc_channel *ch = nx_rpc_connect(b->rpc, addr);
        if (nx_rpc_open(ch, "/nexus.Backend/Serve", &ops, b, true, &b->st) == 0) {
            b->guard = (nx_event){.fn = guard, .ctx = b, .time = nx_loop_now(b->l) + NX_SEC(60)};
            nx_loop_at(b->l, &b->guard);
            fill(b);
            nx_loop_run(b->l);
            nx_loop_cancel(b->l, &b->guard);
        }
        b->done = true;
        nx_rpc_shutdown(b->rpc, stopped, b);
        while (!b->down)
            nx_loop_run(b->l);
    }
    if (b->rpc)
        nx_rpc_free(b->rpc);
    nx_loop_free(b->l);
    if (rc < 0) {
        fprintf(stderr, "%s: %s\n", prog, eb.msg);
        free(b);
        return 1;
    }
    if (b->failed || b->t1 == 0 || b->served != b->total) {
        fprintf(stderr, "%s: %s (%ld served, %ld dropped, %ld other of %ld)\n", prog,
                b->why[0] ? b->why : "not every request was served", b->served, b->dropped,
                b->other, b->total);
        free(b);
        return 1;
    }
    double wall = NX_TO_SEC(b->t1 - b->t0), cpu = b->cpu1 - b->cpu0;
    printf("backend CPU per request:  %.2f us  (%ld requests in %.2f s: %.0f req/s, mean batch "
           "%.1f, %ld outstanding, up to %ld per message; goal <= 20 us)\n",
           cpu / (double)b->total * 1e6, b->total, wall, (double)b->total / wall,
           (double)b->batch_sum / (double)b->served, b->window, b->batch);
    free(b);
    return 0;
}
