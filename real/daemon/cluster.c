/* cluster.c — nexus-cluster: a whole real cluster on this host, for one
 * command. For each policy combination of the experiment (or --policy) it
 * starts a scheduler, N backends and M frontends on loopback, each on a free
 * port, waits until each says it is ready (a line on an inherited pipe:
 * listening, registered, and for a frontend routes received; never a sleep),
 * runs the load generator in-process (or --run CMD), collects the results and
 * tears everything down — also when a daemon dies, a readiness wait times
 * out, or the user interrupts. Daemons get SIGTERM and must exit 0 within
 * 10 s (else SIGKILL, and the run fails); each one's log is DIR/logs/.
 *
 * Fault injection (hooks at times after the run's t = 0): --kill-backend
 * SLOT@T (SIGKILL), --restart-backend SLOT@T (a new process asking for the
 * same slot), --stop-backend SLOT@T / --cont-backend SLOT@T (SIGSTOP/SIGCONT:
 * a hung node, found by the keep-alive timeout). The experiment's own
 * run.failures become kills and restarts at the same times, so a failure
 * scenario runs in nexus-sim and here alike (a killed process is found at once
 * here, when its stream ends; the simulator's backends die silently and are
 * found by the keep-alive timeout).
 *
 * Writes DIR/summary.json, DIR/requests.csv (as nexus-sim), DIR/sim/ (the
 * simulator's prediction: nexus-sim run as a process on the same queries,
 * unless --no-predict) and DIR/real.json (failures, kill-to-detection and
 * kill-to-re-plan times). Children get PR_SET_PDEATHSIG, so none outlives a
 * killed nexus-cluster. */
#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "loadgen.h"
#include "report.h"
#include "serve.h"
#include "setup.h"
#include "util.h"

#define MAX_CHILDREN 80
#define MAX_HOOKS 32

typedef struct cl cl;

typedef struct child {
    cl *c;
    char name[32];
    char log[1200];
    pid_t pid;
    int rfd;                  /* readiness pipe, -1 once closed */
    char buf[256];
    size_t nbuf;
    bool ready, exited, expected_exit, stopped;
    bool awaited;             /* the cluster waits for its readiness */
    bool tail_shown;          /* its log's last lines were printed */
    int status;
    char addr[160];
    int slot;                 /* backends */
} child;

typedef struct hook {
    char what[16];            /* kill, restart, stop, cont */
    bool frontend;            /* else a backend */
    int slot;
    double at_s;
    cl *c;
    nx_time fired_ns;
} hook;

struct cl {
    const char *prog;
    nx_loop *loop;
    char bin[PATH_MAX];
    const char *path, *out;
    nx_catalog *cat;
    int nb, nf;
    double scale, keepalive, timeout, ready_timeout;
    long seed;
    const char *executor, *models, *run_cmd;
    const char *be_args[8], *fe_args[8], *sc_args[8]; /* passed through to every backend /
                                                          frontend / the scheduler */
    int nbe_args, nfe_args, nsc_args;
    const char *sv_args[32];   /* serving options (TLS, token, metrics...): to every daemon */
    char sv_names[16][32];     /* their "--name"s */
    int nsv_args, nsv_names;
    nx_rpc_cfg rpc_cfg;        /* the same for this program's own calls */
    int payload;
    bool quiet, requests, predict;
    bool batch_logs;          /* --batch-logs: each backend's --batch-log in logdir */
    child ch[MAX_CHILDREN];
    int nch;
    child *sched;
    child *be[64], *fe[64];
    hook hooks[MAX_HOOKS];
    int nhooks;
    bool interrupted, failed;
    char fail_msg[600];
    int waiting;              /* children whose readiness is awaited */
    nx_event timeout_ev;
    bool timed_out;
    pid_t run_pid;
    int run_status;
    bool run_done;
    char logdir[1100];
};

static void failf(cl *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void failf(cl *c, const char *fmt, ...)
{
    if (c->failed)
        return;
    c->failed = true;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->fail_msg, sizeof c->fail_msg, fmt, ap);
    va_end(ap);
    nx_log(c->prog, "%s", c->fail_msg);
}

static void print_log_tail(child *ch)
{
    if (ch->tail_shown)
        return;
    ch->tail_shown = true;
    FILE *f = fopen(ch->log, "r");
    if (!f)
        return;
    char lines[8][512];
    int n = 0;
    while (fgets(lines[n % 8], sizeof lines[0], f))
        n++;
    fclose(f);
    fprintf(stderr, "--- last lines of %s:\n", ch->log);
    for (int i = n > 8 ? n - 8 : 0; i < n; i++)
        fputs(lines[i % 8], stderr);
}

/* In a forked child before exec: the signals as a fresh process has them
 * (the loop blocked some and ignored SIGPIPE; both would be inherited). */
static void child_signals(void)
{
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    struct sigaction dfl;
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    sigaction(SIGPIPE, &dfl, NULL);
}

/* ---- children ------------------------------------------------------------------------------- */

static void on_ready_fd(void *ctx, int fd, uint32_t events)
{
    child *ch = ctx;
    cl *c = ch->c;
    (void)events;
    for (;;) {
        ssize_t r = read(fd, ch->buf + ch->nbuf, sizeof ch->buf - 1 - ch->nbuf);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0 && errno == EAGAIN)
            return;
        if (r <= 0) { /* EOF: ready line written and closed, or the process died */
            nx_loop_unwatch(c->loop, fd);
            close(fd);
            ch->rfd = -1;
            if (!ch->ready) {
                failf(c, "%s exited or closed its readiness pipe before it was ready (log: %s)",
                      ch->name, ch->log);
                print_log_tail(ch);
                if (ch->awaited) {
                    c->waiting--;
                    nx_loop_stop(c->loop);
                }
            }
            return;
        }
        ch->nbuf += (size_t)r;
        ch->buf[ch->nbuf] = 0;
        char *nl = strchr(ch->buf, '\n');
        if (nl && !ch->ready) {
            *nl = 0;
            if (strncmp(ch->buf, "ready ", 6) == 0) {
                snprintf(ch->addr, sizeof ch->addr, "%s", ch->buf + 6);
                ch->ready = true;
                if (ch->awaited && --c->waiting == 0)
                    nx_loop_stop(c->loop);
                nx_log(c->prog, "%s ready (%s)", ch->name, ch->addr);
            }
        }
    }
}

static child *spawn(cl *c, const char *name, int slot, char **argv, bool awaited)
{
    if (c->nch == MAX_CHILDREN) {
        failf(c, "too many processes");
        return NULL;
    }
    child *ch = &c->ch[c->nch++];
    memset(ch, 0, sizeof *ch);
    ch->c = c;
    ch->slot = slot;
    snprintf(ch->name, sizeof ch->name, "%s", name);
    snprintf(ch->log, sizeof ch->log, "%s/%s.log", c->logdir, name);
    int p[2];
    if (pipe2(p, O_CLOEXEC) != 0) {
        failf(c, "pipe: %s", strerror(errno));
        return NULL;
    }
    int logfd = open(ch->log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (logfd < 0) {
        failf(c, "%s: %s", ch->log, strerror(errno));
        close(p[0]);
        close(p[1]);
        return NULL;
    }
    pid_t pid = fork();
    if (pid == 0) {
        child_signals();
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        dup2(logfd, 1);
        dup2(logfd, 2);
        dup2(p[1], 3);
        execv(argv[0], argv);
        _exit(127);
    }
    close(p[1]);
    close(logfd);
    if (pid < 0) {
        close(p[0]);
        failf(c, "fork: %s", strerror(errno));
        return NULL;
    }
    ch->pid = pid;
    ch->rfd = p[0];
    fcntl(ch->rfd, F_SETFL, fcntl(ch->rfd, F_GETFL) | O_NONBLOCK);
    nx_loop_watch(c->loop, ch->rfd, EPOLLIN, on_ready_fd, ch);
    ch->awaited = awaited;
    c->waiting += awaited;
    return ch;
}

/* Reap every child that exited. */
static void reap(cl *c)
{
    int st;
    pid_t pid;
    while ((pid = waitpid(-1, &st, WNOHANG)) > 0) {
        if (pid == c->run_pid) {
            c->run_done = true;
            c->run_status = st;
            nx_loop_stop(c->loop);
            continue;
        }
        for (int i = 0; i < c->nch; i++) {
            child *ch = &c->ch[i];
            if (ch->pid != pid || ch->exited)
                continue;
            ch->exited = true;
            ch->status = st;
            if (!ch->expected_exit) {
                char how[64];
                if (WIFSIGNALED(st))
                    snprintf(how, sizeof how, "killed by signal %d", WTERMSIG(st));
                else
                    snprintf(how, sizeof how, "exited with status %d", WEXITSTATUS(st));
                failf(c, "%s %s unexpectedly (log: %s)", ch->name, how, ch->log);
                print_log_tail(ch);
            }
        }
    }
}

static void on_signal(void *ctx, int signo)
{
    cl *c = ctx;
    if (signo == SIGCHLD) {
        reap(c);
        return;
    }
    if (!c->interrupted)
        nx_log(c->prog, "signal %d: stopping the run and the cluster", signo);
    c->interrupted = true;
    if (c->waiting > 0 || c->run_pid > 0)
        nx_loop_stop(c->loop);
}

static void on_timeout(nx_event *ev)
{
    cl *c = ev->ctx;
    c->timed_out = true;
    nx_loop_stop(c->loop);
}

/* Run the loop until every spawned child is ready (or something fails). */
static bool wait_ready(cl *c)
{
    if (c->waiting == 0 || c->failed)
        return !c->failed;
    c->timed_out = false;
    c->timeout_ev.fn = on_timeout;
    c->timeout_ev.ctx = c;
    c->timeout_ev.time = nx_loop_now(c->loop) + NX_SEC(c->ready_timeout);
    nx_loop_at(c->loop, &c->timeout_ev);
    while (c->waiting > 0 && !c->failed && !c->interrupted && !c->timed_out)
        nx_loop_run(c->loop);
    nx_loop_cancel(c->loop, &c->timeout_ev);
    if (c->timed_out && c->waiting > 0) {
        for (int i = 0; i < c->nch; i++)
            if (!c->ch[i].ready && !c->ch[i].exited && c->ch[i].rfd >= 0) {
                failf(c, "%s not ready after %.0f s (log: %s)", c->ch[i].name, c->ready_timeout,
                      c->ch[i].log);
                print_log_tail(&c->ch[i]);
            }
    }
    if (c->interrupted)
        failf(c, "interrupted");
    return !c->failed;
}

/* SIGTERM every live child of the group, wait up to 10 s, SIGKILL the rest. */
static void stop_children(cl *c, const char *prefix)
{
    int n = 0;
    for (int i = 0; i < c->nch; i++) {
        child *ch = &c->ch[i];
        if (ch->exited || strncmp(ch->name, prefix, strlen(prefix)) != 0)
            continue;
        if (ch->rfd >= 0) {
            nx_loop_unwatch(c->loop, ch->rfd);
            close(ch->rfd);
            ch->rfd = -1;
        }
        ch->expected_exit = true;
        if (ch->stopped)
            kill(ch->pid, SIGCONT);
        kill(ch->pid, SIGTERM);
        n++;
    }
    if (n == 0)
        return;
    sigset_t chld;
    sigemptyset(&chld);
    sigaddset(&chld, SIGCHLD);
    struct timespec deadline, now;
    clock_gettime(CLOCK_MONOTONIC, &deadline);
    deadline.tv_sec += 10;
    for (;;) {
        reap(c);
        bool left = false;
        for (int i = 0; i < c->nch; i++)
            left |= !c->ch[i].exited && strncmp(c->ch[i].name, prefix, strlen(prefix)) == 0;
        if (!left)
            break;
        clock_gettime(CLOCK_MONOTONIC, &now);
        if (now.tv_sec > deadline.tv_sec ||
            (now.tv_sec == deadline.tv_sec && now.tv_nsec >= deadline.tv_nsec)) {
            for (int i = 0; i < c->nch; i++) {
                child *ch = &c->ch[i];
                if (!ch->exited && strncmp(ch->name, prefix, strlen(prefix)) == 0) {
                    failf(c, "%s did not exit within 10 s of SIGTERM: killed", ch->name);
                    kill(ch->pid, SIGKILL);
                }
            }
            deadline.tv_sec += 5;
            continue;
        }
        struct timespec wait = {0, 100 * 1000 * 1000};
        sigtimedwait(&chld, NULL, &wait);
    }
    for (int i = 0; i < c->nch; i++) {
        child *ch = &c->ch[i];
        if (strncmp(ch->name, prefix, strlen(prefix)) != 0 || !ch->exited || !ch->expected_exit)
            continue;
        bool killed_by_us = WIFSIGNALED(ch->status) && WTERMSIG(ch->status) == SIGKILL;
        if (!killed_by_us && !(WIFEXITED(ch->status) && WEXITSTATUS(ch->status) == 0)) {
            failf(c, "%s did not exit cleanly on SIGTERM (status %d; log: %s)", ch->name,
                  ch->status, ch->log);
            print_log_tail(ch);
        }
    }
}

/* ---- daemons ------------------------------------------------------------------------------------ */

typedef struct argv_b {
    char *v[48];
    char store[48][1200];
    int n;
} argv_b;

static void arg(argv_b *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void arg(argv_b *a, const char *fmt, ...)
{
    NX_ASSERT(a->n < 46);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(a->store[a->n], sizeof a->store[0], fmt, ap);
    va_end(ap);
    a->v[a->n] = a->store[a->n];
    a->v[++a->n] = NULL;
}

static void common_args(cl *c, argv_b *a, const char *bin)
{
    arg(a, "%s/%s", c->bin, bin);
    arg(a, "%s", c->path);
    arg(a, "--policy");
    arg(a, "%s", c->cat->combo->name);
    arg(a, "--scale");
    arg(a, "%.17g", c->scale);
    arg(a, "--ready-fd");
    arg(a, "3");
    for (int i = 0; i < c->nsv_args; i++)
        arg(a, "%s", c->sv_args[i]);
}

static child *start_backend(cl *c, int slot, bool awaited)
{
    argv_b a = {.n = 0};
    common_args(c, &a, "nexus-backend");
    arg(&a, "--scheduler");
    arg(&a, "%s", c->sched->addr);
    arg(&a, "--slot");
    arg(&a, "%d", slot);
    arg(&a, "--executor");
    arg(&a, "%s", c->executor);
    if (!strcmp(c->executor, "cuda")) { /* one GPU per backend (a --backend-arg --gpu overrides) */
        arg(&a, "--gpu");
        arg(&a, "%d", slot);
    }
    if (c->models) {
        arg(&a, "--models");
        arg(&a, "%s", c->models);
    }
    for (int i = 0; i < c->nbe_args; i++)
        arg(&a, "%s", c->be_args[i]);
    if (c->batch_logs) {
        arg(&a, "--batch-log");
        arg(&a, "%s/backend%d.batches.csv", c->logdir, slot);
    }
    char name[32];
    snprintf(name, sizeof name, "backend%d", slot);
    child *ch = spawn(c, name, slot, a.v, awaited);
    if (ch && slot < 64)
        c->be[slot] = ch;
    return ch;
}

/* A frontend on `listen` (a restarted one takes its old address back, so
 * clients reconnect to it). */
static child *start_frontend(cl *c, int slot, const char *listen, bool awaited)
{
    argv_b a = {.n = 0};
    common_args(c, &a, "nexus-frontend");
    arg(&a, "--scheduler");
    arg(&a, "%s", c->sched->addr);
    arg(&a, "--listen");
    arg(&a, "%s", listen);
    arg(&a, "--slot");
    arg(&a, "%d", slot);
    for (int i = 0; i < c->nfe_args; i++)
        arg(&a, "%s", c->fe_args[i]);
    char name[32];
    snprintf(name, sizeof name, "frontend%d", slot);
    child *ch = spawn(c, name, slot, a.v, awaited);
    if (ch && slot < 64)
        c->fe[slot] = ch;
    return ch;
}

static void hook_fire(void *ctx, nx_time now)
{
    hook *h = ctx;
    cl *c = h->c;
    const char *role = h->frontend ? "frontend" : "backend";
    child *ch = h->slot < 64 ? (h->frontend ? c->fe : c->be)[h->slot] : NULL;
    h->fired_ns = now;
    if (strcmp(h->what, "restart") == 0) {
        if (!ch || !ch->exited) {
            nx_log(c->prog, "t=%.1f s: %s %d is %s: not restarted", h->at_s, role, h->slot,
                   ch ? "still running" : "unknown");
            return;
        }
        nx_log(c->prog, "t=%.1f s: restarting %s %d", h->at_s, role, h->slot);
        /* the run goes on; the log says when it is back */
        if (h->frontend) {
            char addr[160];
            snprintf(addr, sizeof addr, "%s", ch->addr);
            start_frontend(c, h->slot, addr, false);
        } else {
            start_backend(c, h->slot, false);
        }
        return;
    }
    if (!ch || ch->exited) {
        nx_log(c->prog, "t=%.1f s: %s %d is not running: cannot %s it", h->at_s, role, h->slot,
               h->what);
        return;
    }
    if (strcmp(h->what, "kill") == 0) {
        nx_log(c->prog, "t=%.1f s: killing %s %d (pid %d) with SIGKILL", h->at_s, role, h->slot,
               (int)ch->pid);
        ch->expected_exit = true;
        kill(ch->pid, SIGKILL);
    } else if (strcmp(h->what, "stop") == 0) {
        nx_log(c->prog, "t=%.1f s: freezing %s %d (SIGSTOP)", h->at_s, role, h->slot);
        ch->stopped = true;
        kill(ch->pid, SIGSTOP);
    } else {
        nx_log(c->prog, "t=%.1f s: resuming %s %d (SIGCONT)", h->at_s, role, h->slot);
        ch->stopped = false;
        kill(ch->pid, SIGCONT);
    }
}

/* One policy combination: bring the cluster up, run, tear it down. */
static int run_combo(cl *c, nx_loadgen_result *res, nx_errbuf *eb)
{
    c->nch = 0;
    c->failed = false;
    c->waiting = 0;
    memset(c->be, 0, sizeof c->be);
    memset(c->fe, 0, sizeof c->fe);
    snprintf(c->logdir, sizeof c->logdir, "%s/logs/%s", c->out, c->cat->combo->name);
    char tmp[1200];
    snprintf(tmp, sizeof tmp, "mkdir -p '%s'", c->logdir);
    if (strchr(c->logdir, '\'') || system(tmp) != 0) {
        nx_err_set(eb, NX_ERR_IO, "%s: cannot create", c->logdir);
        return NX_ERR_IO;
    }
    int rc = 0;
    /* scheduler */
    argv_b a = {.n = 0};
    common_args(c, &a, "nexus-scheduler");
    arg(&a, "--listen");
    arg(&a, "127.0.0.1:0");
    arg(&a, "--backends");
    arg(&a, "%d", c->nb);
    arg(&a, "--max-backends");
    arg(&a, "%d", c->nb);
    if (c->keepalive > 0) {
        arg(&a, "--keepalive");
        arg(&a, "%g", c->keepalive);
    }
    if (c->timeout > 0) {
        arg(&a, "--timeout");
        arg(&a, "%g", c->timeout);
    }
    for (int i = 0; i < c->nsc_args; i++)
        arg(&a, "%s", c->sc_args[i]);
    c->sched = spawn(c, "scheduler", -1, a.v, true);
    bool ok = c->sched && wait_ready(c);
    for (int b = 0; ok && b < c->nb; b++)
        ok = start_backend(c, b, true) != NULL;
    ok = ok && wait_ready(c);
    child *fes[64];
    for (int f = 0; ok && f < c->nf; f++)
        ok = (fes[f] = start_frontend(c, f, "127.0.0.1:0", true)) != NULL;
    ok = ok && wait_ready(c);
    if (ok) {
        const char *addrs[64];
        char list[64 * 170] = "";
        for (int f = 0; f < c->nf; f++) {
            addrs[f] = fes[f]->addr;
            snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", f ? "," : "",
                     fes[f]->addr);
        }
        nx_log(c->prog, "cluster up: scheduler %s, %d backend(s), frontend(s) %s", c->sched->addr,
               c->nb, list);
        if (c->run_cmd) {
            setenv("NEXUS_FRONTENDS", list, 1);
            setenv("NEXUS_SCHEDULER", c->sched->addr, 1);
            setenv("NEXUS_OUT", c->out, 1);
            char *ra[] = {"/bin/sh", "-c", (char *)c->run_cmd, NULL};
            c->run_done = false;
            c->run_pid = fork();
            if (c->run_pid == 0) {
                child_signals();
                execv(ra[0], ra);
                _exit(127);
            }
            while (!c->run_done && !c->interrupted && c->run_pid > 0)
                nx_loop_run(c->loop);
            if (!c->run_done && c->run_pid > 0) {
                kill(c->run_pid, SIGTERM);
                waitpid(c->run_pid, &c->run_status, 0);
            }
            c->run_pid = 0;
            if (!WIFEXITED(c->run_status) || WEXITSTATUS(c->run_status) != 0)
                failf(c, "--run command failed (status %d)", c->run_status);
        } else {
            nx_lg_hook lh[MAX_HOOKS];
            for (int k = 0; k < c->nhooks; k++) {
                c->hooks[k].c = c;
                c->hooks[k].fired_ns = 0;
                lh[k] = (nx_lg_hook){.at_s = c->hooks[k].at_s, .fn = hook_fire,
                                     .ctx = &c->hooks[k]};
            }
            nx_loadgen_opts lo = {
                .cat = c->cat,
                .seed = c->seed >= 0 ? (uint64_t)c->seed : c->cat->x->seed,
                .loop = c->loop,
                .frontends = addrs,
                .nfrontends = c->nf,
                .scheduler = c->sched->addr,
                .payload = c->payload,
                .ready_timeout_s = c->ready_timeout,
                .hooks = lh,
                .nhooks = c->nhooks,
                .progress = !c->quiet,
                .interrupted = &c->interrupted,
                .rpc_cfg = &c->rpc_cfg,
            };
            rc = nx_loadgen_run(&lo, res, eb);
            if (rc == 0 && c->interrupted)
                failf(c, "interrupted");
            for (int k = 0; k < c->nhooks; k++)
                if (strcmp(c->hooks[k].what, "kill") == 0 && !c->hooks[k].frontend &&
                    c->hooks[k].fired_ns &&
                    res->nkills < NX_LG_MAX_KILLS) {
                    res->kill_slot[res->nkills] = c->hooks[k].slot;
                    res->kill_ns[res->nkills++] = c->hooks[k].fired_ns;
                }
        }
    }
    stop_children(c, "frontend");
    stop_children(c, "backend");
    stop_children(c, "scheduler");
    for (int i = 0; i < c->nch; i++)
        if (c->ch[i].rfd >= 0) {
            nx_loop_unwatch(c->loop, c->ch[i].rfd);
            close(c->ch[i].rfd);
        }
    if (rc == 0 && c->failed) {
        nx_err_set(eb, NX_ERR_IO, "%s", c->fail_msg);
        rc = NX_ERR_IO;
    }
    return rc;
}

/* ---- main ------------------------------------------------------------------------------------------- */

static int parse_hook(cl *c, const char *what, const char *s, bool frontend)
{
    if (c->nhooks == MAX_HOOKS) {
        fprintf(stderr, "%s: at most %d fault injections\n", c->prog, MAX_HOOKS);
        return -1;
    }
    char *at = strchr(s, '@');
    long slot;
    double t;
    char num[32];
    if (!at || at - s >= (long)sizeof num) {
        fprintf(stderr, "%s: --%s-%s: '%s' is not SLOT@SECONDS\n", c->prog, what,
                frontend ? "frontend" : "backend", s);
        return -1;
    }
    memcpy(num, s, (size_t)(at - s));
    num[at - s] = 0;
    if (nx_cli_long(c->prog, what, num, 0, 63, &slot) < 0 ||
        nx_cli_double(c->prog, what, at + 1, 0, 1e6, &t) < 0)
        return -1;
    hook *h = &c->hooks[c->nhooks++];
    snprintf(h->what, sizeof h->what, "%s", what);
    h->frontend = frontend;
    h->slot = (int)slot;
    h->at_s = t;
    return 0;
}

/* The simulator's prediction of the same queries: nexus-sim (beside the
 * daemons) on the same experiment, policy, seed and scale, into DIR/sim/ — a
 * process of its own, as real mode never links the simulator. Its table goes
 * to stdout unless --quiet. */
static int predict(cl *c, const char *policy, uint64_t seed, nx_errbuf *eb)
{
    char sim[PATH_MAX + 16], out[1100], seeds[32], scale[64];
    snprintf(sim, sizeof sim, "%s/nexus-sim", c->bin);
    snprintf(out, sizeof out, "%s/sim", c->out);
    snprintf(seeds, sizeof seeds, "%llu", (unsigned long long)seed);
    snprintf(scale, sizeof scale, "%.17g", c->scale);
    char *argv[16];
    int n = 0;
    argv[n++] = sim;
    argv[n++] = (char *)c->path;
    argv[n++] = "--out";
    argv[n++] = out;
    argv[n++] = "--seed";
    argv[n++] = seeds;
    argv[n++] = "--scale";
    argv[n++] = scale;
    if (!c->requests)
        argv[n++] = "--no-requests";
    if (c->quiet)
        argv[n++] = "--quiet";
    if (policy) {
        argv[n++] = "--policy";
        argv[n++] = (char *)policy;
    }
    argv[n] = NULL;
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        child_signals();
        execv(argv[0], argv);
        fprintf(stderr, "%s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    if (pid < 0) {
        nx_err_set(eb, NX_ERR_IO, "fork: %s", strerror(errno));
        return NX_ERR_IO;
    }
    int st;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        nx_err_set(eb, NX_ERR_IO, "the prediction (%s) failed (status %d); --no-predict skips it",
                   sim, WIFEXITED(st) ? WEXITSTATUS(st) : -1);
        return NX_ERR_IO;
    }
    return 0;
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: nexus-cluster EXPERIMENT.yml --out DIR [options]\n"
            "\n"
            "Starts a scheduler, N backends and M frontends on loopback, waits until all are\n"
            "ready, runs the load generator (the experiment's queries, as nexus-sim generates\n"
            "them), and tears the cluster down; once per policy combination. Writes\n"
            "DIR/summary.json, DIR/requests.csv (as nexus-sim), DIR/real.json and DIR/logs/.\n"
            "\n"
            "options:\n"
            "  --out DIR              output directory (required)\n"
            "  --policy NAME          only this policy combination\n"
            "  --backends N           backends (default: cluster.gpus)\n"
            "  --frontends M          frontends (default 1)\n"
            "  --scale S              workload rate scale (default 1)\n"
            "  --seed N               the experiment's seed unless given\n"
            "  --executor E           emulated (default), cpu or cuda (backend N on GPU N)\n"
            "  --models DIR           ONNX models for cpu/cuda\n"
            "  --payload N|auto       FP32 values per request (default 16; auto: each app's\n"
            "                         model input, for the cpu/cuda executors)\n"
            "  --keepalive S          keep-alive period (default: scheduler.beacon_s)\n"
            "  --timeout S            keep-alive timeout (default: scheduler.keepalive_timeout_s)\n"
            "  --kill-backend SLOT@T  SIGKILL backend SLOT T seconds into the run (repeatable)\n"
            "  --restart-backend SLOT@T   start it again (it asks for its old slot)\n"
            "  --stop-backend SLOT@T  SIGSTOP it (hung: found by the keep-alive timeout)\n"
            "  --cont-backend SLOT@T  SIGCONT it\n"
            "  --kill-frontend SLOT@T, --restart-frontend SLOT@T   the same for a frontend (it\n"
            "                         comes back on its old address)\n"
            "  --run CMD              run CMD (sh -c) instead of the load generator, with\n"
            "                         NEXUS_FRONTENDS, NEXUS_SCHEDULER, NEXUS_OUT set\n"
            "  --ready-timeout S      readiness wait per step (default 30)\n"
            "  --bin DIR              the daemons' directory (default: this program's)\n"
            "  --backend-arg ARG      pass ARG to every backend (repeatable), e.g.\n"
            "                         --backend-arg=--max-queue=64\n"
            "  --frontend-arg ARG     pass ARG to every frontend (repeatable)\n"
            "  --scheduler-arg ARG    pass ARG to the scheduler (repeatable), e.g.\n"
            "                         --scheduler-arg=--state=/var/lib/nexus/state\n"
            "  --metrics, --tls-cert, --tls-key, --tls-ca, --tls-verify-clients,\n"
            "  --tls-server-name, --token-file, --max-msg-mb   passed to every daemon (see their\n"
            "                         --help; --metrics wants port 0); this program's own calls\n"
            "                         use the TLS options and the token too\n"
            "  --batch-logs           each backend logs its batches (predicted and measured time)\n"
            "                         to DIR/logs/POLICY/backendN.batches.csv\n"
            "  --no-requests          do not write requests.csv\n"
            "  --no-predict           no simulator prediction (by default nexus-sim runs the\n"
            "                         same queries into DIR/sim/)\n"
            "  --quiet                no progress line, no table\n"
            "  --help                 this text\n");
}

int main(int argc, char **argv)
{
    cl *c = nx_calloc(1, sizeof *c);
    c->prog = "nexus-cluster";
    c->nb = -1;
    c->nf = 1;
    c->scale = 1;
    c->seed = -1;
    c->executor = "emulated";
    c->payload = 16;
    c->ready_timeout = 30;
    c->requests = true;
    c->predict = true;
    const char *policy = NULL, *bin = NULL;
    static const struct option opts[] = {
        {"out", 1, 0, 'o'}, {"policy", 1, 0, 'p'}, {"backends", 1, 0, 'b'},
        {"frontends", 1, 0, 'f'}, {"scale", 1, 0, 's'}, {"seed", 1, 0, 'e'},
        {"executor", 1, 0, 'x'}, {"models", 1, 0, 'm'}, {"payload", 1, 0, 'y'},
        {"keepalive", 1, 0, 'k'}, {"timeout", 1, 0, 't'}, {"kill-backend", 1, 0, 'K'},
        {"restart-backend", 1, 0, 'R'}, {"kill-frontend", 1, 0, 'k' + 256},
        {"restart-frontend", 1, 0, 'r' + 256}, {"stop-backend", 1, 0, 'T'}, {"cont-backend", 1, 0, 'C'},
        {"run", 1, 0, 'c'}, {"ready-timeout", 1, 0, 'r'}, {"bin", 1, 0, 'B'},
        {"no-requests", 0, 0, 'N'}, {"batch-logs", 0, 0, 'L'}, {"quiet", 0, 0, 'q'},
        {"backend-arg", 1, 0, 'A'},
        {"frontend-arg", 1, 0, 'F'}, {"scheduler-arg", 1, 0, 'G'}, {"no-predict", 0, 0, 'P'},
        {"help", 0, 0, 'h'}, NX_SERVE_LONGOPTS, {0, 0, 0, 0},
    };
    int o;
    long v;
    nx_serve_opts so = {0};
    int li = -1;
    while ((o = getopt_long(argc, argv, "h", opts, &li)) != -1) {
        int bad = 0;
        switch (o) {
        case 'o': c->out = optarg; break;
        case 'p': policy = optarg; break;
        case 'b': bad = nx_cli_long(c->prog, "--backends", optarg, 1, 64, &v); c->nb = (int)v; break;
        case 'f': bad = nx_cli_long(c->prog, "--frontends", optarg, 1, 64, &v); c->nf = (int)v; break;
        case 's': bad = nx_cli_double(c->prog, "--scale", optarg, 1e-9, 1e6, &c->scale); break;
        case 'e': bad = nx_cli_long(c->prog, "--seed", optarg, 0, 1L << 62, &c->seed); break;
        case 'x': c->executor = optarg; break;
        case 'm': c->models = optarg; break;
        case 'y':
            if (strcmp(optarg, "auto") == 0)
                c->payload = -1;
            else if (!(bad = nx_cli_long(c->prog, "--payload", optarg, 0, 1 << 24, &v)))
                c->payload = (int)v;
            break;
        case 'k': bad = nx_cli_double(c->prog, "--keepalive", optarg, 0.01, 60, &c->keepalive); break;
        case 't': bad = nx_cli_double(c->prog, "--timeout", optarg, 0.05, 600, &c->timeout); break;
        case 'K': bad = parse_hook(c, "kill", optarg, false); break;
        case 'R': bad = parse_hook(c, "restart", optarg, false); break;
        case 'k' + 256: bad = parse_hook(c, "kill", optarg, true); break;
        case 'r' + 256: bad = parse_hook(c, "restart", optarg, true); break;
        case 'T': bad = parse_hook(c, "stop", optarg, false); break;
        case 'C': bad = parse_hook(c, "cont", optarg, false); break;
        case 'c': c->run_cmd = optarg; break;
        case 'r': bad = nx_cli_double(c->prog, "--ready-timeout", optarg, 0.1, 3600, &c->ready_timeout); break;
        case 'B': bin = optarg; break;
        case 'N': c->requests = false; break;
        case 'P': c->predict = false; break;
        case 'L': c->batch_logs = true; break;
        case 'A':
        case 'F':
        case 'G': {
            const char **v = o == 'A' ? c->be_args : o == 'F' ? c->fe_args : c->sc_args;
            int *n = o == 'A' ? &c->nbe_args : o == 'F' ? &c->nfe_args : &c->nsc_args;
            if (*n == 8) {
                fprintf(stderr, "%s: at most 8 --%s-arg\n", c->prog,
                        o == 'A' ? "backend" : o == 'F' ? "frontend" : "scheduler");
                bad = 1;
            } else {
                v[(*n)++] = optarg;
            }
            break;
        }
        case 'q': c->quiet = true; break;
        case 'h': usage(stdout); free(c); return 0;
        default:
            if (li < 0 || c->nsv_names >= 16 ||
                (bad = nx_serve_opt(&so, c->prog, o, optarg)) < 0) {
                usage(stderr);
                free(c);
                return 2;
            }
            char *name = c->sv_names[c->nsv_names++];
            snprintf(name, sizeof c->sv_names[0], "--%s", opts[li].name);
            c->sv_args[c->nsv_args++] = name;
            if (opts[li].has_arg)
                c->sv_args[c->nsv_args++] = optarg;
        }
        li = -1;
        if (bad) {
            free(c);
            return 2;
        }
    }
    if (optind + 1 != argc || !c->out) {
        usage(stderr);
        free(c);
        return 2;
    }
    c->path = argv[optind];
    if (bin) {
        snprintf(c->bin, sizeof c->bin, "%s", bin);
    } else { /* the directory of this executable */
        ssize_t n = readlink("/proc/self/exe", c->bin, sizeof c->bin - 1);
        c->bin[n > 0 ? n : 0] = 0;
        char *slash = strrchr(c->bin, '/');
        if (slash)
            *slash = 0;
        else
            snprintf(c->bin, sizeof c->bin, ".");
    }
    nx_errbuf eb;
    nx_err_clear(&eb);
    int rc = nx_serve_load(&so, &c->rpc_cfg, &eb);
    if (rc == 0)
        rc = nx_loop_init(&c->loop, &eb); /* first: it sets the threads' signal mask */
    nx_setup probe;
    memset(&probe, 0, sizeof probe);
    if (rc == 0)
        rc = nx_setup_load(&probe, c->path, policy, c->scale, &eb);
    int ncombo = 0;
    const nx_combo **combos = NULL;
    if (rc == 0) {
        combos = nx_calloc((size_t)probe.x.ncombos, sizeof *combos);
        for (int i = 0; i < probe.x.ncombos; i++)
            if (!policy || strcmp(probe.x.combos[i].name, policy) == 0)
                combos[ncombo++] = &probe.x.combos[i];
        if (c->nb < 0)
            c->nb = probe.x.gpus;
        char tmp[1200];
        snprintf(tmp, sizeof tmp, "mkdir -p '%s'", c->out);
        if (strchr(c->out, '\'') || system(tmp) != 0) {
            nx_err_set(&eb, NX_ERR_IO, "%s: cannot create the output directory", c->out);
            rc = NX_ERR_IO;
        }
    }
    /* the experiment's own failures (run.failures), as the simulator injects them */
    for (int i = 0; rc == 0 && i < probe.x.nfailures; i++) {
        const nx_failure *f = &probe.x.failures[i];
        char spec[64];
        snprintf(spec, sizeof spec, "%d@%.6f", f->gpu, f->at_s);
        if (parse_hook(c, "kill", spec, false) < 0)
            rc = NX_ERR_INVAL;
        snprintf(spec, sizeof spec, "%d@%.6f", f->gpu, f->at_s + f->down_s);
        if (rc == 0 && f->down_s > 0 && parse_hook(c, "restart", spec, false) < 0)
            rc = NX_ERR_INVAL;
    }
    nx_loop_on_signal(c->loop, on_signal, c);
    nx_setup *cats = nx_calloc((size_t)ncombo + 1, sizeof *cats);
    nx_loadgen_result *res = nx_calloc((size_t)ncombo + 1, sizeof *res);
    nx_combo_report *reps = nx_calloc((size_t)ncombo + 1, sizeof *reps);
    int done = 0;
    for (int k = 0; k < ncombo && rc == 0 && !c->interrupted; k++) {
        rc = nx_setup_load(&cats[k], c->path, combos[k]->name, c->scale, &eb);
        if (rc < 0)
            break;
        c->cat = &cats[k].cat;
        nx_log(c->prog, "policy '%s': %d backend(s), %d frontend(s)", combos[k]->name, c->nb,
               c->nf);
        rc = run_combo(c, &res[k], &eb);
        done = k + 1;
    }
    if (rc == 0 && !c->run_cmd && done > 0) {
        const nx_loadgen_result *rp[64];
        const char *labels[64];
        int n = 0;
        for (int k = 0; k < done && k < 64; k++, n++) {
            reps[k].combo = cats[k].cat.combo;
            reps[k].run = res[k].run;
            rp[k] = &res[k];
            labels[k] = cats[k].cat.combo->name;
        }
        rc = nx_report_write(c->out, &probe.x, reps, n,
                             c->seed >= 0 ? (uint64_t)c->seed : probe.x.seed, c->requests, &eb);
        if (rc == 0)
            rc = nx_loadgen_write_json(c->out, &probe.cat, rp, labels, n, &eb);
        if (rc == 0 && !c->quiet) {
            printf("%-16s %-5s %10s %10s %9s %9s %9s %7s %7s\n", "policy", "mode", "offered",
                   "goodput", "bad_rate", "p50_ms", "p99_ms", "lost", "gpus");
            for (int k = 0; k < n; k++)
                {
                    const nx_run_result *r = &res[k].run;
                    printf("%-16s %-5s %10.1f %10.1f %8.2f%% %9.2f %9.2f %7llu %7.2f\n",
                           labels[k], "real", r->offered_rate, r->goodput,
                           100 * r->bad_rate, r->lat_p50_ms, r->lat_p99_ms,
                           (unsigned long long)r->unanswered, r->gpus_used_avg);
                }
            for (int k = 0; k < n; k++)
                for (int i = 0; i < res[k].nfailures; i++) {
                    const nx_lg_failure *x = &res[k].failures[i];
                    printf("%s: %s %d gone at t=%.2f s (%s): silent %.0f ms before detection, "
                           "re-planned in %.2f ms\n",
                           labels[k], x->kind == 1 ? "backend" : "frontend", x->slot, x->t_s,
                           x->how, x->silent_ms, x->replan_ms);
                }
            printf("wrote %s/summary.json and %s/real.json\n", c->out, c->out);
        }
        if (rc == 0 && c->predict) {
            if (!c->quiet)
                printf("the simulator's prediction of the same queries (nexus-sim):\n");
            rc = predict(c, policy, c->seed >= 0 ? (uint64_t)c->seed : probe.x.seed, &eb);
            if (rc == 0 && !c->quiet)
                printf("wrote %s/sim/summary.json\n", c->out);
        }
    }
    if (rc < 0)
        fprintf(stderr, "%s: %s\n", c->prog, eb.msg[0] ? eb.msg : nx_strerror(rc));
    for (int k = 0; k < ncombo; k++) {
        nx_loadgen_result_free(&res[k]);
        nx_setup_free(&cats[k]);
    }
    free(res);
    free(reps);
    free(cats);
    free(combos);
    nx_setup_free(&probe);
    nx_loop_free(c->loop);
    nx_serve_free(&so);
    bool intr = c->interrupted;
    free(c);
    return rc < 0 ? 1 : (intr ? 130 : 0);
}
