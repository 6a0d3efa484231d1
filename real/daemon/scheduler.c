/* scheduler.c — nexus-scheduler: the engine's global scheduler (engine/
 * scheduler.c, the very state machine the simulator runs) behind gRPC.
 *
 * Backends and frontends attach with one long-lived stream each (Scheduler.
 * Attach, real/proto/nexus.proto). A backend gets a slot, which is its GPU
 * index in every plan and route. Planning starts once --backends backends are
 * alive: the engine plans over every slot (--max-backends), the empty ones
 * marked dead, and pushes model tables and routes, which this daemon sends
 * down the streams.
 *
 * Liveness is the engine's (the simulator runs the same code): backends'
 * keep-alives go into it, it declares a backend silent for keepalive_timeout_s
 * dead at its next beacon, tells the frontends (GPU down) and re-plans at
 * once; a keep-alive from a dead slot brings it back with a re-plan. Two
 * things are faster here than a timeout: a backend whose stream ends (its
 * process died, or it left) and a new registration. For the first, this
 * daemon tells the frontends at once (a Backends message) and declares the
 * GPU dead in the engine (nx_scheduler_gpu_down: the same path as the
 * timeout, re-planning right away); for the second it hands the engine a
 * keep-alive at registration. Each failure's detection and re-plan times are
 * kept for Status. A dead frontend's rate estimates are forgotten
 * (nx_scheduler_frontend_gone).
 *
 * With --state FILE the plan and the rate estimates are written to FILE after
 * every epoch (real/node/statefile.c: atomically, by rename) and read back
 * at start: the first plan after a restart is made for the restored rates and
 * mapped onto the restored plan, so nodes that attach again get the plan
 * they had, not one from the experiment's initial rates. The backends the
 * state names (slot, incarnation, data address) are taken back on trust:
 * planning starts at once, with them listed to frontends and routed to as
 * before, unconfirmed until they attach again (engine/sched_state.h). One
 * that does not attach within the keep-alive timeout is declared dead then,
 * as a silent backend is. So frontends, which drop the data stream of a
 * backend their list no longer names, keep serving through the restart
 * whatever order the nodes attach in. A state file that
 * does not parse or belongs to another experiment, policy, catalog or slot
 * count is set aside (FILE.bad) with a logged reason, and planning starts
 * from the experiment's rates.
 *
 * Threads: the loop thread runs everything (engine, streams, timers); the
 * rpc layer's poller only hands completions over (real/rpc/rpc.c).
 * SIGTERM/SIGINT: stop the engine, close every stream, shut gRPC down, exit 0. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "setup.h"
#include "daemon.h"
#include "renv.h"
#include "rpc.h"
#include "scheduler.h"
#include "sched_state.h"
#include "serve.h"
#include "statefile.h"
#include "util.h"
#include "wire.h"

#define FE_NODE0 1000000    /* engine node id of frontend slot 0 */

typedef struct sched sched;
typedef struct conn conn;

typedef struct node {
    int kind;               /* Nexus__NodeKind */
    int slot;
    bool alive;
    bool pending;           /* a backend the state file names, not attached again yet */
    conn *cn;               /* its Attach stream while alive */
    char addr[128];
    char executor[64];
    uint64_t incarnation;
    int pid;
    nx_time last_seen;
    int registrations;
    Nexus__KeepAlive ka;    /* the last keep-alive's counters */
    nx_time ka_at;
} node;

struct conn {               /* one Attach stream */
    sched *s;
    nx_rpc_call *c;
    node *n;                /* NULL until it registered */
    nx_time opened;
    conn *prev, *next;
};

typedef struct epoch_pt {
    nx_time at;
    int used;
    double planned;
    char why[12];
    double *slo_ms;         /* per session */
} epoch_pt;

typedef struct failure {
    int kind, slot;
    char how[24];
    nx_time last_seen, detected, replanned;
} failure;

struct sched {
    const char *who;
    nx_loop *loop;
    nx_rpc *rpc;
    nx_renv env;
    nx_setup setup;
    int maxb, maxf, expected;
    double keepalive_s, timeout_s;
    node *be, *fe;
    conn *conns;
    nx_scheduler *sc;       /* NULL until planning starts; engine GPU g = backend slot g */
    const char *why;        /* label of the epoch engine_start() runs */
    nx_routes_msg *routes;  /* the last routes (backend slots): what a new frontend gets */
    uint64_t epochs_done, triggers_done; /* of engines already rebuilt away */
    epoch_pt *tl;
    int ntl, captl;
    failure *fails;
    int nfails, capfails;
    nx_time run_start;
    nx_event tick;
    bool stopping;
    int ready_fd;
    nx_serving sv;          /* health ("" SERVING once planning; nexus.Scheduler once
                               serving), metrics */
    const char *state_path; /* --state, or NULL */
    nx_sched_state saved;   /* read at start; imported by the first engine */
    nx_statefile_node *saved_be; /* maxb: the saved backends' incarnations and addresses */
    bool resume;
    uint64_t state_writes, state_errors;
};

static const char *kind_name(int k)
{
    return k == NEXUS__NODE_KIND__NODE_BACKEND ? "backend" : "frontend";
}

/* ---- sending to nodes ------------------------------------------------------------- */

static void send_sched_msg(sched *s, node *n, Nexus__SchedMsg *m)
{
    if (!n->alive || !n->cn)
        return;
    if (nx_rpc_send(n->cn->c, &m->base) < 0)
        nx_log(s->who, "%s %d: cannot send a message (stream ended)", kind_name(n->kind), n->slot);
}

static void send_routes(sched *s, node *n)
{
    if (!s->routes)
        return;
    Nexus__Routes r;
    nx_wire_routes_to(s->routes, &r);
    Nexus__SchedMsg m = NEXUS__SCHED_MSG__INIT;
    m.msg_case = NEXUS__SCHED_MSG__MSG_ROUTES;
    m.routes = &r;
    send_sched_msg(s, n, &m);
}

static void send_backends(sched *s, node *only)
{
    Nexus__BackendInfo *info = nx_calloc((size_t)s->maxb, sizeof *info);
    Nexus__BackendInfo **ptr = nx_calloc((size_t)s->maxb, sizeof *ptr);
    size_t n = 0;
    for (int b = 0; b < s->maxb; b++) {
        if (!s->be[b].alive && !s->be[b].pending)
            continue;
        nexus__backend_info__init(&info[n]);
        info[n].slot = b;
        info[n].addr = s->be[b].addr;
        info[n].incarnation = s->be[b].incarnation;
        ptr[n] = &info[n];
        n++;
    }
    Nexus__Backends bk = NEXUS__BACKENDS__INIT;
    bk.n_alive = n;
    bk.alive = ptr;
    Nexus__SchedMsg m = NEXUS__SCHED_MSG__INIT;
    m.msg_case = NEXUS__SCHED_MSG__MSG_BACKENDS;
    m.backends = &bk;
    for (int f = 0; f < s->maxf; f++)
        if (!only || only == &s->fe[f])
            send_sched_msg(s, &s->fe[f], &m);
    free(info);
    free(ptr);
}

static void node_gone(sched *s, node *n, const char *how, bool close_stream);
static void pending_gone(sched *s, node *n);
static void state_save(sched *s);

/* ---- the engine's environment -------------------------------------------------------- */

static void engine_send(void *ctx, int dst, nx_msg *m)
{
    sched *s = ctx;
    if (m->type == NX_MSG_TABLE) {
        nx_table_msg *t = (nx_table_msg *)m;
        int g = dst - nx_node_backend(0);
        NX_ASSERT(g >= 0 && g < s->maxb);
        node *n = &s->be[g];
        Nexus__ModelTable pt;
        nx_wire_table_to(t, &pt);
        Nexus__SchedMsg sm = NEXUS__SCHED_MSG__INIT;
        sm.msg_case = NEXUS__SCHED_MSG__MSG_TABLE;
        sm.table = &pt;
        send_sched_msg(s, n, &sm);
        nx_wire_table_done(&pt);
        nx_log(s->who, "epoch %llu: model table to backend %d: %d session(s), duty %.2f ms",
               (unsigned long long)t->epoch, n->slot, t->n, t->duty_us / 1000);
    } else if (m->type == NX_MSG_ROUTES) {
        nx_routes_msg *r = (nx_routes_msg *)m;
        int f = dst - FE_NODE0;
        NX_ASSERT(f >= 0 && f < s->maxf);
        if (!s->routes || s->routes->epoch != r->epoch) {
            free(s->routes);
            s->routes = nx_wire_routes_filter(r, NULL);
        }
        send_routes(s, &s->fe[f]);
    } else if (m->type == NX_MSG_GPU_DOWN) {
        /* the engine found a backend silent for its keep-alive timeout (one
         * message per frontend: the first one acts) */
        int g = ((nx_gpu_msg *)m)->gpu;
        NX_ASSERT(g >= 0 && g < s->maxb);
        if (s->be[g].alive)
            node_gone(s, &s->be[g], "keep-alive timeout", true);
        else if (s->be[g].pending)
            pending_gone(s, &s->be[g]);
    }
    free(m); /* owned by the receiver, which is the network */
}

static void on_epoch(void *ctx, const nx_plan *plan, const double *tput, const double *slo_us,
                     nx_time now, const char *why)
{
    sched *s = ctx;
    double planned = 0;
    for (int i = 0; i < plan->nsess; i++)
        planned += tput[i];
    const char *label = s->why ? s->why : why;
    if (s->ntl == s->captl) {
        s->captl = s->captl ? 2 * s->captl : 32;
        s->tl = nx_realloc(s->tl, sizeof *s->tl * (size_t)s->captl);
    }
    epoch_pt *p = &s->tl[s->ntl++];
    p->at = now;
    p->used = plan->used;
    p->planned = planned;
    snprintf(p->why, sizeof p->why, "%s", label);
    p->slo_ms = nx_malloc(sizeof(double) * (size_t)s->setup.cat.nsess);
    for (int i = 0; i < s->setup.cat.nsess; i++)
        p->slo_ms[i] = slo_us[i] / 1000;
    nx_log(s->who, "epoch (%s): %d of %d backend(s) used, %.1f req/s planned", label, plan->used,
           plan->ngpu, planned);
    if (s->state_path && s->sc && plan->used > 0) /* a plan for no GPU is not worth keeping
                                                      (every backend left): keep the last */
        state_save(s);
    if (strcmp(label, "failure") == 0)
        for (int i = 0; i < s->nfails; i++)
            if (s->fails[i].kind == NEXUS__NODE_KIND__NODE_BACKEND && !s->fails[i].replanned) {
                s->fails[i].replanned = now;
                nx_log(s->who, "re-planned without backend %d %.2f ms after its failure was "
                               "detected",
                       s->fails[i].slot, NX_TO_MS(now - s->fails[i].detected));
            }
}

/* ---- the state file ------------------------------------------------------------------------ */

static nx_statefile_id state_id(const sched *s)
{
    return (nx_statefile_id){.experiment = s->setup.x.name, .policy = s->setup.cat.combo->name,
                             .catalog = s->setup.cat.hash};
}

static void state_save(sched *s)
{
    nx_sched_state st;
    nx_sched_state_init(&st, s->setup.cat.nsess, s->maxf, s->maxb);
    nx_scheduler_export(s->sc, &st);
    for (int g = 0; g < s->maxb; g++) { /* the engine's alive: attached, or pending */
        s->saved_be[g].incarnation = s->be[g].incarnation;
        snprintf(s->saved_be[g].addr, sizeof s->saved_be[g].addr, "%s", s->be[g].addr);
    }
    nx_statefile_id id = state_id(s);
    nx_errbuf eb;
    nx_err_clear(&eb);
    if (nx_statefile_write(s->state_path, &id, &st, s->saved_be, s->epochs_done + s->sc->epochs,
                           s->triggers_done + s->sc->triggers, &eb) < 0) {
        if (s->state_errors++ == 0 || s->state_errors % 100 == 0)
            nx_log(s->who, "%s (%llu time(s))", eb.msg, (unsigned long long)s->state_errors);
    } else {
        s->state_writes++;
    }
    nx_sched_state_free(&st);
}

/* At start: the state a previous run left, if any and if it fits. */
static void state_load(sched *s)
{
    nx_sched_state_init(&s->saved, s->setup.cat.nsess, s->maxf, s->maxb);
    nx_statefile_id id = state_id(s);
    nx_errbuf eb;
    nx_err_clear(&eb);
    uint64_t epochs = 0, triggers = 0;
    int rc = nx_statefile_read(s->state_path, &id, &s->saved, s->saved_be, &epochs, &triggers,
                               &eb);
    if (rc == NX_ERR_NOTFOUND) {
        nx_log(s->who, "state: no %s yet: planning from the experiment's rates",
               s->state_path);
        return;
    }
    if (rc < 0) {
        char bad[4200];
        snprintf(bad, sizeof bad, "%s.bad", s->state_path);
        bool moved = rename(s->state_path, bad) == 0;
        nx_log(s->who, "state ignored: %s; planning from the experiment's rates (%s%s)", eb.msg,
               moved ? "the file is kept as " : "it will be overwritten", moved ? bad : "");
        return;
    }
    s->resume = true;
    s->epochs_done = epochs;
    s->triggers_done = triggers;
    double planned = 0;
    for (int i = 0; i < s->setup.cat.nsess; i++)
        planned += s->saved.plan_rate[i];
    int npending = 0;
    for (int g = 0; g < s->maxb; g++) {
        if (!s->saved.alive[g])
            continue;
        node *n = &s->be[g];
        n->kind = NEXUS__NODE_KIND__NODE_BACKEND;
        n->slot = g;
        n->pending = true;
        n->last_seen = nx_loop_now(s->loop); /* its keep-alive timeout runs from now */
        n->incarnation = s->saved_be[g].incarnation;
        snprintf(n->addr, sizeof n->addr, "%s", s->saved_be[g].addr);
        npending++;
    }
    nx_log(s->who, "state: resuming from %s: epoch %llu, %d GPU(s) in the plan, %.1f req/s "
                   "planned over %d session(s); %d backend(s) taken back until they attach "
                   "again (at most %g s)",
           s->state_path, (unsigned long long)s->saved.epoch, s->saved.plan.used, planned,
           s->setup.cat.nsess, npending, s->timeout_s);
}

/* Whether any backend is taken back from the state file. */
static bool any_pending(const sched *s)
{
    for (int g = 0; g < s->maxb; g++)
        if (s->be[g].pending)
            return true;
    return false;
}

/* ---- (re)building the engine's scheduler --------------------------------------------- */

static void engine_drop(sched *s)
{
    if (!s->sc)
        return;
    nx_scheduler_stop(s->sc);
    s->epochs_done += s->sc->epochs;
    s->triggers_done += s->sc->triggers;
    nx_scheduler_free(s->sc);
    free(s->sc);
    s->sc = NULL;
}

/* A fresh engine over every backend slot, the registered ones alive. */
static void engine_start(sched *s, const char *why)
{
    engine_drop(s);
    nx_scheduler *sc = nx_calloc(1, sizeof *sc);
    nx_scheduler_cfg cfg;
    nx_scheduler_cfg_fill(&cfg, &s->setup.cat, s->maxb, s->maxf, FE_NODE0);
    cfg.keepalive_timeout_s = s->timeout_s; /* --keepalive-timeout may override */
    cfg.on_epoch = on_epoch;
    cfg.on_epoch_ctx = s;
    nx_scheduler_init(sc, &s->env.env, &cfg);
    if (s->resume) { /* the first engine after a restart takes the saved state over */
        char why[200];
        s->resume = false;
        if (nx_scheduler_import(sc, &s->saved, why, sizeof why) < 0)
            nx_log(s->who, "state not resumed: %s", why);
        else
            nx_log(s->who, "state resumed: planning for the saved rates onto the saved plan");
    }
    for (int g = 0; g < s->maxb; g++) { /* slots without a backend get no work */
        if (s->be[g].pending) /* taken back on trust, for the keep-alive timeout from the
                                 restart (also in an engine rebuilt within it) */
            nx_scheduler_set_unconfirmed(sc, g, s->be[g].last_seen);
        else
            nx_scheduler_set_alive(sc, g, s->be[g].alive);
    }
    s->sc = sc;
    s->why = why;
    int rc = nx_scheduler_start(sc);
    s->why = NULL;
    if (rc < 0)
        nx_log(s->who, "planning failed (%s): %s", why, nx_strerror(rc));
    nx_health_set(s->sv.health, "", rc == 0);
}

/* A backend's stream ended: the engine declares it dead now rather than
 * after its keep-alive timeout, and re-plans. */
static void engine_gpu_dead(sched *s, int g)
{
    if (s->sc && nx_scheduler_gpu_down(s->sc, g) < 0)
        nx_log(s->who, "re-planning without backend %d failed", g);
}

/* A backend registered: the engine hears its first keep-alive now (a dead
 * slot coming back re-plans at once). */
static void engine_keepalive(sched *s, int g)
{
    if (!s->sc)
        return;
    nx_gpu_msg *m = nx_gpu_msg_new(NX_MSG_KEEPALIVE, g);
    m->m.src = nx_node_backend(g);
    m->m.dst = NX_NODE_SCHEDULER;
    nx_scheduler_recv(s->sc, &m->m);
}

/* ---- membership ------------------------------------------------------------------------ */

static void conn_free(conn *cn)
{
    sched *s = cn->s;
    if (cn->prev)
        cn->prev->next = cn->next;
    else
        s->conns = cn->next;
    if (cn->next)
        cn->next->prev = cn->prev;
    free(cn);
}

static failure *add_failure(sched *s, node *n, const char *how)
{
    if (s->nfails == s->capfails) {
        s->capfails = s->capfails ? 2 * s->capfails : 8;
        s->fails = nx_realloc(s->fails, sizeof *s->fails * (size_t)s->capfails);
    }
    failure *f = &s->fails[s->nfails++];
    memset(f, 0, sizeof *f);
    f->kind = n->kind;
    f->slot = n->slot;
    snprintf(f->how, sizeof f->how, "%s", how);
    f->last_seen = n->last_seen;
    f->detected = nx_loop_now(s->loop);
    return f;
}

/* A backend taken back from the state file did not attach again within the
 * keep-alive timeout: the engine declared it dead and re-plans without it;
 * the frontends stop listing it (as for any failure). */
static void pending_gone(sched *s, node *n)
{
    n->pending = false;
    add_failure(s, n, "never re-attached");
    nx_log(s->who, "backend %d (%s) did not attach again within %g s of the restart: gone", n->slot,
           n->addr, s->timeout_s);
    send_backends(s, NULL);
}

/* A node is gone (its stream ended, it timed out, it left, or a new process
 * took its slot). close_stream: end the stream from our side as well. */
static void node_gone(sched *s, node *n, const char *how, bool close_stream)
{
    if (!n->alive)
        return;
    n->alive = false;
    conn *cn = n->cn;
    n->cn = NULL;
    if (cn) {
        cn->n = NULL;
        if (close_stream) {
            nx_rpc_close(cn->c, NX_RPC_UNAVAILABLE, how);
            conn_free(cn);
        }
    }
    failure *f = add_failure(s, n, how);
    nx_log(s->who, "%s %d gone (%s), last heard %.0f ms ago", kind_name(n->kind), n->slot, how,
           NX_TO_MS(f->detected - n->last_seen));
    if (s->stopping)
        return;
    if (n->kind == NEXUS__NODE_KIND__NODE_BACKEND) {
        send_backends(s, NULL); /* frontends stop routing to it and resend its calls */
        engine_gpu_dead(s, n->slot);
    } else if (s->sc) {
        nx_scheduler_frontend_gone(s->sc, n->slot);
    }
}

static void reject(sched *s, conn *cn, int code, const char *why)
{
    char peer[128];
    nx_rpc_peer(cn->c, peer, sizeof peer);
    nx_log(s->who, "registration from %s refused: %s", peer, why);
    nx_rpc_close(cn->c, code, why);
    conn_free(cn);
}

static void do_register(sched *s, conn *cn, const Nexus__Register *r)
{
    char why[600];
    if (cn->n) {
        reject(s, cn, NX_RPC_FAILED_PRECONDITION, "registered twice on one stream");
        return;
    }
    bool be = r->kind == NEXUS__NODE_KIND__NODE_BACKEND;
    if (!be && r->kind != NEXUS__NODE_KIND__NODE_FRONTEND) {
        reject(s, cn, NX_RPC_INVALID_ARGUMENT, "register: unknown node kind");
        return;
    }
    if (strcmp(r->experiment, s->setup.x.name) != 0 || r->catalog != s->setup.cat.hash ||
        strcmp(r->policy, s->setup.cat.combo->name) != 0) {
        snprintf(why, sizeof why,
                 "register: this scheduler runs experiment '%s', policy '%s', catalog %016llx; "
                 "the node has '%.100s', '%.60s', %016llx (start it with the same file, "
                 "--policy and --scale)",
                 s->setup.x.name, s->setup.cat.combo->name, (unsigned long long)s->setup.cat.hash,
                 r->experiment, r->policy, (unsigned long long)r->catalog);
        reject(s, cn, NX_RPC_FAILED_PRECONDITION, why);
        return;
    }
    if (be && (!r->data_addr[0] || strlen(r->data_addr) >= sizeof s->be[0].addr)) {
        reject(s, cn, NX_RPC_INVALID_ARGUMENT, "register: a backend must give its data address");
        return;
    }
    node *tab = be ? s->be : s->fe;
    int max = be ? s->maxb : s->maxf;
    int slot = -1;
    if (r->want_slot >= 0 && r->want_slot < max)
        slot = r->want_slot;
    if (slot >= 0 && tab[slot].alive && tab[slot].incarnation != r->incarnation)
        node_gone(s, &tab[slot], "replaced", true); /* a restarted process takes its slot back */
    if (slot >= 0 && tab[slot].alive)
        slot = -1;
    for (int i = 0; i < max && slot < 0; i++) /* a free slot, one kept for a backend the */
        if (!tab[i].alive && !tab[i].pending)   /* state file names only if none is left */
            slot = i;
    for (int i = 0; i < max && slot < 0; i++)
        if (!tab[i].alive)
            slot = i;
    if (slot < 0) {
        snprintf(why, sizeof why, "register: every %s slot is taken (at most %d)",
                 kind_name(r->kind), max);
        reject(s, cn, NX_RPC_RESOURCE_EXHAUSTED, why);
        return;
    }
    node *n = &tab[slot];
    if (n->pending && n->incarnation != r->incarnation)
        nx_log(s->who, "backend %d: another process (incarnation %016llx) takes the slot of "
                       "the one the state file names (%016llx)",
               slot, (unsigned long long)r->incarnation, (unsigned long long)n->incarnation);
    n->kind = r->kind;
    n->slot = slot;
    n->alive = true;
    n->pending = false;
    n->cn = cn;
    cn->n = n;
    snprintf(n->addr, sizeof n->addr, "%s", r->data_addr);
    snprintf(n->executor, sizeof n->executor, "%s", r->executor);
    n->incarnation = r->incarnation;
    n->pid = r->pid;
    n->last_seen = nx_loop_now(s->loop);
    n->registrations++;
    memset(&n->ka, 0, sizeof n->ka);
    n->ka_at = 0;
    Nexus__Registered rg = NEXUS__REGISTERED__INIT;
    rg.slot = slot;
    rg.max_backends = s->maxb;
    rg.max_frontends = s->maxf;
    rg.keepalive_s = s->keepalive_s;
    Nexus__SchedMsg m = NEXUS__SCHED_MSG__INIT;
    m.msg_case = NEXUS__SCHED_MSG__MSG_REGISTERED;
    m.registered = &rg;
    send_sched_msg(s, n, &m);
    nx_log(s->who, "%s %d registered (pid %d%s%s%s%s)", kind_name(n->kind), slot, n->pid,
           be ? ", data " : "", be ? n->addr : "", be ? ", executor " : "", be ? n->executor : "");
    if (be) {
        send_backends(s, NULL);
        int alive = 0;
        for (int b = 0; b < s->maxb; b++)
            alive += s->be[b].alive;
        if (s->sc) {
            engine_keepalive(s, slot);
        } else if (alive >= s->expected) {
            nx_log(s->who, "%d backend(s) alive: planning starts", alive);
            engine_start(s, "initial");
        }
    } else {
        send_backends(s, n);
        send_routes(s, n);
    }
}

/* ---- the Attach stream ------------------------------------------------------------------- */

static void attach_msg(nx_rpc_call *c, ProtobufCMessage *pm)
{
    conn *cn = nx_rpc_user(c);
    sched *s = cn->s;
    Nexus__NodeMsg *m = (Nexus__NodeMsg *)pm;
    if (m->msg_case == NEXUS__NODE_MSG__MSG_REGISTER) {
        do_register(s, cn, m->register_);
        return;
    }
    node *n = cn->n;
    if (!n) {
        reject(s, cn, NX_RPC_FAILED_PRECONDITION, "the first message must be Register");
        return;
    }
    n->last_seen = nx_loop_now(s->loop);
    char why[200];
    switch (m->msg_case) {
    case NEXUS__NODE_MSG__MSG_KEEP_ALIVE:
        n->ka = *m->keep_alive;
        n->ka.base.unknown_fields = NULL;
        n->ka.base.n_unknown_fields = 0;
        n->ka_at = n->last_seen;
        if (n->kind == NEXUS__NODE_KIND__NODE_BACKEND)
            engine_keepalive(s, n->slot);
        break;
    case NEXUS__NODE_MSG__MSG_RATES: {
        nx_rates_msg *rm;
        if (n->kind != NEXUS__NODE_KIND__NODE_FRONTEND ||
            nx_wire_rates_from(m->rates, s->setup.cat.nsess, &rm, why, sizeof why) < 0) {
            nx_log(s->who, "frontend %d: bad rate report ignored: %s", n->slot,
                   n->kind != NEXUS__NODE_KIND__NODE_FRONTEND ? "not a frontend" : why);
            break;
        }
        rm->frontend = n->slot;
        rm->m.src = FE_NODE0 + n->slot;
        rm->m.dst = NX_NODE_SCHEDULER;
        if (s->sc)
            nx_scheduler_recv(s->sc, &rm->m);
        else
            free(rm);
        break;
    }
    case NEXUS__NODE_MSG__MSG_LEAVE:
        node_gone(s, n, "left", true);
        break;
    default:
        break;
    }
}

static void attach_close(nx_rpc_call *c, int code, const char *why)
{
    conn *cn = nx_rpc_user(c);
    sched *s = cn->s;
    if (cn->n)
        node_gone(s, cn->n, code == NX_RPC_INVALID_ARGUMENT ? "bad message" : "stream closed",
                  false);
    (void)why;
    conn_free(cn);
}

static const nx_rpc_stream_ops attach_ops = {
    .in = &nexus__node_msg__descriptor,
    .on_msg = attach_msg,
    .on_close = attach_close,
};

static void attach_open(void *ctx, nx_rpc_call *c)
{
    sched *s = ctx;
    conn *cn = nx_calloc(1, sizeof *cn);
    cn->s = s;
    cn->c = c;
    cn->opened = nx_loop_now(s->loop);
    cn->next = s->conns;
    if (s->conns)
        s->conns->prev = cn;
    s->conns = cn;
    nx_rpc_set_user(c, cn);
}

/* ---- Status ------------------------------------------------------------------------------- */

static void status_call(void *ctx, nx_rpc_call *c, ProtobufCMessage *pm)
{
    sched *s = ctx;
    Nexus__StatusRequest *rq = (Nexus__StatusRequest *)pm;
    if (rq->start_run) {
        if (s->sc) {
            s->run_start = nx_loop_now(s->loop);
            engine_start(s, "start");
        } else {
            nx_rpc_fail(c, NX_RPC_FAILED_PRECONDITION,
                        "planning has not started (too few backends registered)");
            return;
        }
    }
    Nexus__StatusReply r = NEXUS__STATUS_REPLY__INIT;
    r.now_ns = nx_loop_now(s->loop);
    r.planning = s->sc != NULL;
    r.run_start_ns = s->run_start;
    r.max_backends = s->maxb;
    r.epochs = s->epochs_done + (s->sc ? s->sc->epochs : 0);
    r.triggers = s->triggers_done + (s->sc ? s->sc->triggers : 0);
    /* timeline */
    Nexus__Epoch *ep = nx_calloc((size_t)s->ntl + 1, sizeof *ep);
    Nexus__Epoch **epp = nx_calloc((size_t)s->ntl + 1, sizeof *epp);
    for (int i = 0; i < s->ntl; i++) {
        nexus__epoch__init(&ep[i]);
        ep[i].at_ns = s->tl[i].at;
        ep[i].used = s->tl[i].used;
        ep[i].planned = s->tl[i].planned;
        ep[i].why = s->tl[i].why;
        ep[i].n_slo_ms = (size_t)s->setup.cat.nsess;
        ep[i].slo_ms = s->tl[i].slo_ms;
        epp[i] = &ep[i];
    }
    r.n_timeline = (size_t)s->ntl;
    r.timeline = epp;
    /* the plan, per backend slot */
    int ng = s->sc ? s->maxb : 0;
    Nexus__PlanGpu *pg = nx_calloc((size_t)ng + 1, sizeof *pg);
    Nexus__PlanGpu **pgp = nx_calloc((size_t)ng + 1, sizeof *pgp);
    int nalloc = 0;
    for (int g = 0; g < ng; g++)
        nalloc += s->sc->plan.gpu[g].n;
    Nexus__PlanAlloc *pa = nx_calloc((size_t)nalloc + 1, sizeof *pa);
    Nexus__PlanAlloc **pap = nx_calloc((size_t)nalloc + 1, sizeof *pap);
    int k = 0;
    for (int g = 0; g < ng; g++) {
        const nx_gpu_plan *gp = &s->sc->plan.gpu[g];
        nexus__plan_gpu__init(&pg[g]);
        pg[g].slot = g;
        pg[g].duty_us = gp->duty_us;
        pg[g].exec_us = gp->exec_us;
        pg[g].mem_mb = gp->mem_mb;
        pg[g].overcommitted = gp->overcommitted;
        pg[g].allocs = &pap[k];
        pg[g].n_allocs = (size_t)gp->n;
        for (int i = 0; i < gp->n; i++, k++) {
            nexus__plan_alloc__init(&pa[k]);
            pa[k].session = gp->a[i].session;
            pa[k].batch = gp->a[i].batch;
            pa[k].rate = gp->a[i].rate;
            pa[k].throughput = gp->a[i].throughput;
            pap[k] = &pa[k];
        }
        pgp[g] = &pg[g];
    }
    r.n_plan = (size_t)ng;
    r.plan = pgp;
    if (s->sc) {
        r.n_unassigned = (size_t)s->setup.cat.nsess;
        r.unassigned = s->sc->plan.unassigned;
    }
    /* nodes */
    int nn = s->maxb + s->maxf;
    Nexus__NodeStatus *ns = nx_calloc((size_t)nn, sizeof *ns);
    Nexus__NodeStatus **nsp = nx_calloc((size_t)nn, sizeof *nsp);
    size_t nk = 0;
    for (int i = 0; i < nn; i++) {
        node *n = i < s->maxb ? &s->be[i] : &s->fe[i - s->maxb];
        if (n->registrations == 0)
            continue;
        nexus__node_status__init(&ns[nk]);
        ns[nk].kind = n->kind;
        ns[nk].slot = n->slot;
        ns[nk].alive = n->alive;
        ns[nk].addr = n->addr;
        ns[nk].incarnation = n->incarnation;
        ns[nk].registrations = n->registrations;
        ns[nk].busy_ns = n->ka.busy_ns;
        ns[nk].report_ns = n->ka_at;
        ns[nk].served = n->ka.served;
        ns[nk].dropped = n->ka.dropped;
        ns[nk].rejected = n->ka.rejected;
        ns[nk].batches = n->ka.batches;
        nsp[nk] = &ns[nk];
        nk++;
        if (n->alive && i < s->maxb)
            r.backends_alive++;
        else if (n->alive)
            r.frontends_alive++;
    }
    r.n_nodes = nk;
    r.nodes = nsp;
    /* failures */
    Nexus__Failure *fl = nx_calloc((size_t)s->nfails + 1, sizeof *fl);
    Nexus__Failure **flp = nx_calloc((size_t)s->nfails + 1, sizeof *flp);
    for (int i = 0; i < s->nfails; i++) {
        nexus__failure__init(&fl[i]);
        fl[i].kind = s->fails[i].kind;
        fl[i].slot = s->fails[i].slot;
        fl[i].how = s->fails[i].how;
        fl[i].last_seen_ns = s->fails[i].last_seen;
        fl[i].detected_ns = s->fails[i].detected;
        fl[i].replanned_ns = s->fails[i].replanned;
        flp[i] = &fl[i];
    }
    r.n_failures = (size_t)s->nfails;
    r.failures = flp;
    nx_rpc_reply(c, &r.base);
    free(ep);
    free(epp);
    free(pg);
    free(pgp);
    free(pa);
    free(pap);
    free(ns);
    free(nsp);
    free(fl);
    free(flp);
}

/* ---- metrics ---------------------------------------------------------------------------------- */

static void metrics(void *ctx, nx_prom *p)
{
    sched *s = ctx;
    const nx_scheduler *sc = s->sc;
    nx_prom_one(p, "nexus_planning", "gauge",
                "1 once enough backends registered and the scheduler plans.", sc != NULL);
    nx_prom_one(p, "nexus_epochs_total", "counter",
                "Plans made (initial, periodic, triggered, failure, recovery).",
                (double)(s->epochs_done + (sc ? sc->epochs : 0)));
    nx_prom_one(p, "nexus_epoch_triggers_total", "counter",
                "Epochs triggered early by a rate leaving its band.",
                (double)(s->triggers_done + (sc ? sc->triggers : 0)));
    nx_prom_one(p, "nexus_plan_gpus", "gauge", "GPUs (backend slots) the current plan uses.",
                sc ? sc->eplan.used : 0);
    nx_prom_one(p, "nexus_backend_slots", "gauge", "Backend slots planned over (--max-backends).",
                s->maxb);
    nx_prom_one(p, "nexus_state_writes_total", "counter",
                "State files written (--state), one per epoch.", (double)s->state_writes);
    nx_prom_one(p, "nexus_state_write_errors_total", "counter",
                "State files that could not be written.", (double)s->state_errors);
    int ab = 0, af = 0;
    for (int i = 0; i < s->maxb; i++)
        ab += s->be[i].alive;
    for (int i = 0; i < s->maxf; i++)
        af += s->fe[i].alive;
    nx_prom_family(p, "nexus_nodes_alive", "gauge", "Nodes attached and alive, by kind.");
    nx_prom_sample(p, "nexus_nodes_alive", ab, "kind", "backend", NULL, NULL);
    nx_prom_sample(p, "nexus_nodes_alive", af, "kind", "frontend", NULL, NULL);
    int fb = 0, ff = 0;
    for (int i = 0; i < s->nfails; i++)
        s->fails[i].kind == NEXUS__NODE_KIND__NODE_BACKEND ? fb++ : ff++;
    nx_prom_family(p, "nexus_node_failures_total", "counter",
                   "Nodes gone (stream ended, keep-alive timeout, left, replaced), by kind.");
    nx_prom_sample(p, "nexus_node_failures_total", fb, "kind", "backend", NULL, NULL);
    nx_prom_sample(p, "nexus_node_failures_total", ff, "kind", "frontend", NULL, NULL);
    if (!sc)
        return;
    static const struct {
        const char *name, *help;
    } fam[] = {
        {"nexus_session_planned_rate", "Request rate the current plan is made for (req/s)."},
        {"nexus_session_measured_rate", "Request rate measured by the frontends, summed (req/s)."},
        {"nexus_session_capacity", "Throughput the current plan provides (req/s)."},
        {"nexus_session_slo_seconds", "The session's latency budget (its SLO, or its stage's)."},
    };
    for (int k = 0; k < 4; k++) {
        nx_prom_family(p, fam[k].name, "gauge", fam[k].help);
        for (int i = 0; i < s->setup.cat.nsess; i++) {
            double v = k == 0 ? sc->plan_rate[i] : k == 1 ? sc->rate[i]
                     : k == 2 ? sc->tput[i] : sc->budget[i] / 1e6;
            nx_prom_sample(p, fam[k].name, v, "session", s->setup.cat.sess[i].name, "model",
                           s->setup.cat.sess[i].prof->model);
        }
    }
}

/* ---- timers, signals, main -------------------------------------------------------------- */

static void tick(nx_event *ev)
{
    sched *s = ev->ctx;
    if (s->stopping)
        return;
    nx_time now = nx_loop_now(s->loop);
    nx_time limit = NX_SEC(s->timeout_s);
    /* frontends; backends too until the engine runs (then it judges them) */
    for (int i = s->sc ? s->maxb : 0; i < s->maxb + s->maxf; i++) {
        node *n = i < s->maxb ? &s->be[i] : &s->fe[i - s->maxb];
        if (n->alive && now - n->last_seen > limit)
            node_gone(s, n, "keep-alive timeout", true);
    }
    for (conn *cn = s->conns, *next; cn; cn = next) { /* attached but never registered */
        next = cn->next;
        if (!cn->n && now - cn->opened > limit) {
            nx_rpc_close(cn->c, NX_RPC_DEADLINE_EXCEEDED, "no Register within the timeout");
            conn_free(cn);
        }
    }
    nx_at(&s->env.env, &s->tick, now + NX_SEC(s->timeout_s / 8));
}

static void rpc_down(void *ctx) { nx_loop_stop(((sched *)ctx)->loop); }

static void on_signal(void *ctx, int signo)
{
    sched *s = ctx;
    if (signo == SIGCHLD || s->stopping)
        return;
    s->stopping = true;
    nx_log(s->who, "signal %d: shutting down", signo);
    nx_health_set_all(s->sv.health, false);
    engine_drop(s);
    nx_loop_cancel(s->loop, &s->tick);
    while (s->conns) {
        conn *cn = s->conns;
        if (cn->n)
            cn->n->alive = false;
        nx_rpc_close(cn->c, NX_RPC_UNAVAILABLE, "the scheduler is shutting down");
        conn_free(cn);
    }
    nx_rpc_shutdown(s->rpc, rpc_down, s);
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: nexus-scheduler EXPERIMENT.yml [options]\n"
            "\n"
            "The global scheduler of a real Nexus cluster: backends and frontends attach to it;\n"
            "it plans with the experiment's placement policy every epoch and pushes model tables\n"
            "and routes. Service nexus.Scheduler (real/proto/nexus.proto).\n"
            "\n"
            "options:\n"
            "  --listen ADDR           address to serve on (default 127.0.0.1:10001; port 0: any)\n"
            "  --policy NAME           the experiment's policy combination (default: the first)\n"
            "  --scale S               workload rate scale (planning rates; default 1)\n"
            "  --backends N            plan once N backends are alive (default: cluster.gpus)\n"
            "  --max-backends N        backend slots (default: max(cluster.gpus, --backends))\n"
            "  --max-frontends N       frontend slots (default 8)\n"
            "  --keepalive S           nodes send a keep-alive every S seconds (default: the\n"
            "                          experiment's scheduler.beacon_s)\n"
            "  --timeout S             a node silent this long is dead (default: the experiment's\n"
            "                          scheduler.keepalive_timeout_s)\n"
            "  --ready-fd FD           write 'ready ADDR' to FD once serving, then close it\n"
            "  --state FILE            keep the plan and rate estimates in FILE (written\n"
            "                          atomically after every epoch) and resume them at start:\n"
            "                          planning at once, the backends FILE names kept until\n"
            "                          they attach again or the keep-alive timeout passes\n"
            NX_SERVE_USAGE
            "  --help                  this text\n"
            "\n"
            "Health (grpc.health.v1.Health): service nexus.Scheduler is SERVING once the\n"
            "scheduler serves (nodes may attach); \"\" once it plans.\n");
}

int main(int argc, char **argv)
{
    const char *prog = "nexus-scheduler";
    const char *listen = "127.0.0.1:10001", *policy = NULL, *path = NULL, *state_path = NULL;
    double scale = 1, keepalive = -1, timeout = -1;
    long backends = -1, maxb = -1, maxf = 8, ready_fd = -1;
    static const struct option opts[] = {
        {"listen", 1, 0, 'l'}, {"policy", 1, 0, 'p'}, {"scale", 1, 0, 's'},
        {"backends", 1, 0, 'b'}, {"max-backends", 1, 0, 'B'}, {"max-frontends", 1, 0, 'F'},
        {"keepalive", 1, 0, 'k'}, {"timeout", 1, 0, 't'}, {"ready-fd", 1, 0, 'r'},
        {"state", 1, 0, 'X'},
        {"help", 0, 0, 'h'}, NX_SERVE_LONGOPTS, {0, 0, 0, 0},
    };
    nx_serve_opts so = {0};
    int o;
    while ((o = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        int bad = 0;
        switch (o) {
        case 'l': listen = optarg; break;
        case 'p': policy = optarg; break;
        case 's': bad = nx_cli_double(prog, "--scale", optarg, 1e-9, 1e6, &scale); break;
        case 'b': bad = nx_cli_long(prog, "--backends", optarg, 0, 4096, &backends); break;
        case 'B': bad = nx_cli_long(prog, "--max-backends", optarg, 1, 4096, &maxb); break;
        case 'F': bad = nx_cli_long(prog, "--max-frontends", optarg, 1, 1024, &maxf); break;
        case 'k': bad = nx_cli_double(prog, "--keepalive", optarg, 0.01, 60, &keepalive); break;
        case 't': bad = nx_cli_double(prog, "--timeout", optarg, 0.05, 600, &timeout); break;
        case 'r': bad = nx_cli_long(prog, "--ready-fd", optarg, 0, 65535, &ready_fd); break;
        case 'X': state_path = optarg; break;
        case 'h': usage(stdout); return 0;
        default:
            if ((bad = nx_serve_opt(&so, prog, o, optarg)) < 0) {
                usage(stderr);
                return 2;
            }
        }
        if (bad)
            return 2;
    }
    if (optind + 1 != argc) {
        usage(stderr);
        return 2;
    }
    path = argv[optind];
    nx_errbuf eb;
    nx_err_clear(&eb);
    sched *s = nx_calloc(1, sizeof *s);
    s->who = prog;
    s->ready_fd = (int)ready_fd;
    nx_rpc_cfg rcfg;
    int rc = nx_serve_load(&so, &rcfg, &eb);
    if (rc == 0)
        rc = nx_daemon_open(&s->loop, &s->setup, &s->rpc, path, policy, scale, &rcfg, &eb);
    if (rc < 0) {
        fprintf(stderr, "%s: %s\n", prog, eb.msg[0] ? eb.msg : nx_strerror(rc));
        nx_serve_free(&so);
        free(s);
        return 1;
    }
    s->expected = backends >= 0 ? (int)backends : s->setup.x.gpus;
    s->maxb = maxb > 0 ? (int)maxb : NX_MAX(s->setup.x.gpus, s->expected);
    if (s->maxb < s->expected)
        s->maxb = s->expected;
    s->maxf = (int)maxf;
    const nx_sched_params *sp = &s->setup.x.sched;
    s->keepalive_s = keepalive > 0 ? keepalive : sp->beacon_s;
    s->timeout_s = timeout > 0 ? timeout
                   : sp->keepalive_timeout_s > 0 ? sp->keepalive_timeout_s : 3 * s->keepalive_s;
    if (s->timeout_s <= s->keepalive_s) {
        fprintf(stderr, "%s: the keep-alive timeout (%g s) must exceed the keep-alive period "
                        "(%g s)\n", prog, s->timeout_s, s->keepalive_s);
        rc = NX_ERR_INVAL;
    }
    s->be = nx_calloc((size_t)s->maxb, sizeof(node));
    s->fe = nx_calloc((size_t)s->maxf, sizeof(node));
    s->state_path = state_path;
    s->saved_be = nx_calloc((size_t)s->maxb, sizeof *s->saved_be);
    if (rc == 0 && state_path) {
        if ((rc = nx_statefile_check(state_path, &eb)) < 0)
            fprintf(stderr, "%s: %s\n", prog, eb.msg);
        else
            state_load(s);
    }
    nx_renv_init(&s->env, s->loop, engine_send, NULL, s);
    nx_loop_on_signal(s->loop, on_signal, s);

    nx_rpc_method methods[4] = {
        {.path = "/nexus.Scheduler/Attach", .stream = &attach_ops, .on_open = attach_open,
         .ctx = s},
        {.path = "/nexus.Scheduler/Status", .req = &nexus__status_request__descriptor,
         .on_unary = status_call, .ctx = s},
    };
    int nmethods = 2, port = 0;
    nx_serving_init(&s->sv, methods, &nmethods);
    nx_health_set(s->sv.health, "", false);
    nx_health_set(s->sv.health, "nexus.Scheduler", false);
    if (rc == 0 && ((rc = nx_rpc_serve(s->rpc, listen, methods, nmethods, &port, &eb)) < 0 ||
                    (rc = nx_serving_metrics(&s->sv, &so, s->loop, s->rpc, metrics, s, prog,
                                             &eb)) < 0)) {
        fprintf(stderr, "%s: %s\n", prog, eb.msg);
    } else if (rc == 0) {
        nx_health_set(s->sv.health, "nexus.Scheduler", true);
        char addr[160];
        nx_addr_with_port(addr, sizeof addr, listen, port);
        nx_log(prog, "serving on %s: experiment '%s', policy '%s', %d session(s); planning "
                     "once %d backend(s) are alive (slots: %d backends, %d frontends; "
                     "keep-alive %g s, timeout %g s)",
               addr, s->setup.x.name, s->setup.cat.combo->name, s->setup.cat.nsess, s->expected, s->maxb,
               s->maxf, s->keepalive_s, s->timeout_s);
        nx_ready(&s->ready_fd, addr);
        s->tick.fn = tick;
        s->tick.ctx = s;
        nx_at(&s->env.env, &s->tick, nx_loop_now(s->loop) + NX_SEC(s->timeout_s / 8));
        if (s->resume && any_pending(s)) {
            nx_log(prog, "planning at once from the state file, not waiting for --backends");
            engine_start(s, "restart");
        } else if (s->expected == 0) {
            nx_log(prog, "--backends 0: planning starts with the first backend");
        }
    }
    if (rc == 0) {
        rc = nx_loop_run(s->loop);
        nx_log(prog, "stopped");
    } else {
        nx_rpc_shutdown(s->rpc, rpc_down, s);
        nx_loop_run(s->loop);
    }
    engine_drop(s);
    free(s->routes);
    for (int i = 0; i < s->ntl; i++)
        free(s->tl[i].slo_ms);
    free(s->tl);
    free(s->fails);
    if (state_path)
        nx_sched_state_free(&s->saved);
    free(s->saved_be);
    free(s->be);
    free(s->fe);
    nx_serving_free(&s->sv);
    nx_daemon_close(s->loop, &s->setup, s->rpc);
    nx_serve_free(&so);
    free(s);
    return rc < 0 ? 1 : 0;
}
