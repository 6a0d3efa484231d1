/* scheduler.c — the global scheduler state machine; see scheduler.h.
 *
 * Rate estimation follows Nexus (scheduler.cpp, sch_info.cpp): one EWMA per
 * (session, frontend), one sample per beacon interval, alpha = 1 - exp(-beacon
 * / avg_interval); a session's rate is the sum over frontends. A session takes
 * part in triggers and its planned rate is updated only once `history` beacons
 * have measured it (Nexus: 30 samples). Trigger: rate r = max(rate, 0.1) below
 * low*T or above high*T, T = planned throughput. Epoch when triggered and
 * min_epoch has passed, or every epoch_s.
 *
 * The placement policy re-packs from scratch; the scheduler then maps the
 * policy's GPUs onto physical ones, greedily keeping the pairs that share the
 * most planned rate, so that sessions move only when the plan really changes.
 * Every GPU whose table changed gets a new one; every frontend gets routes. */
#include "scheduler.h"
#include "split.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Nexus plans and tests triggers with at least this rate (req/s): an idle
 * session keeps a slot, and its trigger test is not always true. */
#define MIN_PLAN_RATE 0.1

void nx_scheduler_init(nx_scheduler *sc, nx_env *env, const nx_scheduler_cfg *cfg)
{
    memset(sc, 0, sizeof *sc);
    sc->env = env;
    sc->cfg = *cfg;
    int ns = cfg->nsess, nf = cfg->nfrontends;
    /* plans the policy sees hold sessions 0..ns-1 and prefix units ns.. */
    nx_plan_init(&sc->plan, cfg->ngpu, 2 * ns);
    nx_plan_init(&sc->next, cfg->ngpu, 2 * ns);
    nx_plan_init(&sc->mapped, cfg->ngpu, 2 * ns);
    nx_plan_init(&sc->eplan, cfg->ngpu, ns);
    nx_plan_init(&sc->enext, cfg->ngpu, ns);
    sc->specs = nx_calloc((size_t)ns * 2, sizeof(nx_sess_spec));
    sc->unit_of = nx_malloc(sizeof(int) * (size_t)ns);
    sc->units = nx_calloc((size_t)ns, sizeof(nx_prefix_unit));
    sc->ewma = nx_calloc((size_t)ns * (size_t)nf, sizeof(double));
    sc->seen = nx_calloc((size_t)ns * (size_t)nf, 1);
    sc->rate = nx_calloc((size_t)ns, sizeof(double));
    sc->plan_rate = nx_calloc((size_t)ns, sizeof(double));
    sc->hist = nx_calloc((size_t)ns, sizeof(int));
    sc->tput = nx_calloc((size_t)ns, sizeof(double));
    sc->budget = nx_calloc((size_t)ns, sizeof(double));
    sc->plan_rate_floor = nx_calloc((size_t)ns, sizeof(double));
    sc->map_tmp = nx_calloc((size_t)cfg->ngpu * 2 + 2, sizeof(int));
    sc->alive = nx_malloc((size_t)cfg->ngpu);
    memset(sc->alive, 1, (size_t)cfg->ngpu);
    sc->unconfirmed = nx_calloc((size_t)cfg->ngpu, 1);
    sc->nalive = cfg->ngpu;
    sc->last_seen = nx_calloc((size_t)cfg->ngpu, sizeof(nx_time));
    sc->alpha = 1.0 - exp(-cfg->p.beacon_s / cfg->p.avg_interval_s);
    for (int s = 0; s < ns; s++) {
        sc->specs[s].id = s;
        sc->specs[s].prof = cfg->sessions[s].prof;
        sc->specs[s].slo_us = cfg->sessions[s].slo_us;
        sc->specs[s].cpu_us = nx_session_cpu_us(&cfg->sessions[s], true) +
                              nx_session_cpu_us(&cfg->sessions[s], false);
        sc->budget[s] = cfg->sessions[s].slo_us;
        sc->plan_rate[s] = cfg->sessions[s].est_rate;
    }
}

void nx_scheduler_free(nx_scheduler *sc)
{
    if (sc->env)
        nx_cancel(sc->env, &sc->beacon);
    nx_plan_free(&sc->plan);
    nx_plan_free(&sc->next);
    nx_plan_free(&sc->mapped);
    nx_plan_free(&sc->eplan);
    nx_plan_free(&sc->enext);
    for (int u = 0; u < sc->cfg.nsess; u++) {
        free(sc->units[u].members);
        nx_profile_free(&sc->units[u].prof);
    }
    free(sc->units);
    free(sc->unit_of);
    free(sc->specs);
    free(sc->ewma);
    free(sc->seen);
    free(sc->rate);
    free(sc->plan_rate);
    free(sc->hist);
    free(sc->tput);
    free(sc->budget);
    free(sc->plan_rate_floor);
    free(sc->map_tmp);
    free(sc->alive);
    free(sc->unconfirmed);
    free(sc->last_seen);
    memset(sc, 0, sizeof *sc);
}

/* ---- mapping the policy's GPUs onto physical GPUs ---------------------------- */

typedef struct pair {
    double score;
    int bin, gpu;
} pair;

static int cmp_pair(const void *a, const void *b)
{
    const pair *x = a, *y = b;
    if (x->score != y->score)
        return x->score > y->score ? -1 : 1;
    if (x->bin != y->bin)
        return x->bin - y->bin;
    return x->gpu - y->gpu;
}

/* Map sc->next onto physical GPUs into sc->mapped. */
static void map_plan(nx_scheduler *sc)
{
    int ng = sc->cfg.ngpu;
    int *bin_to = sc->map_tmp;          /* ng */
    int *gpu_taken = sc->map_tmp + ng;  /* ng */
    for (int i = 0; i < ng; i++) {
        bin_to[i] = -1;
        gpu_taken[i] = !sc->alive[i]; /* a dead GPU takes nothing */
    }
    /* candidate pairs: a new bin and an old GPU that hold a common session,
     * found through a session -> old GPUs index (CSR), so the cost is the
     * number of allocations times the GPUs a session spans, not G^2 */
    int ns = sc->plan.nsess;
    int *off = nx_calloc((size_t)ns + 1, sizeof(int));
    for (int g = 0; g < ng; g++)
        for (int i = 0; i < sc->plan.gpu[g].n; i++)
            off[sc->plan.gpu[g].a[i].session + 1]++;
    for (int s = 0; s < ns; s++)
        off[s + 1] += off[s];
    int *fill = nx_malloc(sizeof(int) * (size_t)(ns + 1));
    memcpy(fill, off, sizeof(int) * (size_t)(ns + 1));
    int *og = nx_malloc(sizeof(int) * (size_t)(off[ns] ? off[ns] : 1));
    double *orate = nx_malloc(sizeof(double) * (size_t)(off[ns] ? off[ns] : 1));
    for (int g = 0; g < ng; g++)
        for (int i = 0; i < sc->plan.gpu[g].n; i++) {
            int k = fill[sc->plan.gpu[g].a[i].session]++;
            og[k] = g;
            orate[k] = sc->plan.gpu[g].a[i].rate;
        }
    double *score = nx_calloc((size_t)ng, sizeof(double));
    int *touched = nx_malloc(sizeof(int) * (size_t)ng);
    size_t np = 0, cap = 64;
    pair *pairs = nx_malloc(sizeof(pair) * cap);
    for (int b = 0; b < ng; b++) {
        const nx_gpu_plan *nb = &sc->next.gpu[b];
        int nt = 0;
        for (int i = 0; i < nb->n; i++) {
            int s = nb->a[i].session;
            for (int k = off[s]; k < off[s + 1]; k++) {
                if (score[og[k]] == 0)
                    touched[nt++] = og[k];
                score[og[k]] += 1.0 + fmin(orate[k], nb->a[i].rate);
            }
        }
        for (int t = 0; t < nt; t++) {
            if (np == cap) {
                cap *= 2;
                pairs = nx_realloc(pairs, sizeof(pair) * cap);
            }
            pairs[np++] = (pair){score[touched[t]], b, touched[t]};
            score[touched[t]] = 0;
        }
    }
    free(off);
    free(fill);
    free(og);
    free(orate);
    free(score);
    free(touched);
    qsort(pairs, np, sizeof(pair), cmp_pair);
    for (size_t k = 0; k < np; k++) {
        if (bin_to[pairs[k].bin] >= 0 || gpu_taken[pairs[k].gpu])
            continue;
        bin_to[pairs[k].bin] = pairs[k].gpu;
        gpu_taken[pairs[k].gpu] = 1;
    }
    free(pairs);
    /* the rest go to free GPUs: first those idle in the old plan, in order */
    int g = 0;
    for (int pass = 0; pass < 2; pass++) {
        g = 0;
        for (int b = 0; b < ng; b++) {
            if (sc->next.gpu[b].n == 0 || bin_to[b] >= 0)
                continue;
            while (g < ng && (gpu_taken[g] || (pass == 0 && sc->plan.gpu[g].n > 0)))
                g++;
            if (g == ng)
                break;
            bin_to[b] = g;
            gpu_taken[g] = 1;
        }
    }
    nx_plan_clear(&sc->mapped);
    for (int b = 0; b < ng; b++) {
        const nx_gpu_plan *nb = &sc->next.gpu[b];
        if (nb->n == 0)
            continue;
        NX_ASSERT(bin_to[b] >= 0);
        int to = bin_to[b];
        for (int i = 0; i < nb->n; i++)
            nx_plan_add(&sc->mapped, to, nb->a[i].session, nb->a[i].batch, nb->a[i].rate,
                        nb->a[i].throughput);
        sc->mapped.gpu[to].duty_us = nb->duty_us;
        sc->mapped.gpu[to].exec_us = nb->exec_us;
        sc->mapped.gpu[to].mem_mb = nb->mem_mb;
        sc->mapped.gpu[to].overcommitted = nb->overcommitted;
    }
    memcpy(sc->mapped.unassigned, sc->next.unassigned, sizeof(double) * (size_t)sc->next.nsess);
    nx_plan_count_used(&sc->mapped);
}

static bool table_equal(const nx_gpu_plan *a, const nx_gpu_plan *b)
{
    if (a->n != b->n || a->duty_us != b->duty_us)
        return false;
    for (int i = 0; i < a->n; i++)
        if (a->a[i].session != b->a[i].session || a->a[i].batch != b->a[i].batch)
            return false;
    return true;
}

static void send_table(nx_scheduler *sc, int g, const nx_gpu_plan *np)
{
    nx_table_msg *t = nx_table_msg_new(np->n);
    t->epoch = sc->epoch;
    t->duty_us = np->duty_us;
    for (int i = 0; i < np->n; i++) {
        t->e[i].session = np->a[i].session;
        t->e[i].batch = np->a[i].batch;
        t->e[i].slo_us = sc->budget[np->a[i].session];
    }
    t->m.src = NX_NODE_SCHEDULER;
    t->m.dst = nx_node_backend(g);
    nx_send(sc->env, t->m.dst, &t->m);
}

static void push_tables(nx_scheduler *sc, bool all)
{
    for (int g = 0; g < sc->cfg.ngpu; g++) {
        const nx_gpu_plan *np = &sc->enext.gpu[g];
        if (all || !table_equal(np, &sc->eplan.gpu[g]))
            send_table(sc, g, np);
    }
}

static void push_routes(nx_scheduler *sc)
{
    int ns = sc->cfg.nsess;
    const nx_plan *p = &sc->eplan;
    int total = 0;
    for (int g = 0; g < p->ngpu; g++)
        total += p->gpu[g].n;
    for (int f = 0; f < sc->cfg.nfrontends; f++) {
        nx_routes_msg *m = nx_routes_msg_new(ns, total);
        m->epoch = sc->epoch;
        /* count, then fill in GPU order so each session's routes are sorted */
        for (int g = 0; g < p->ngpu; g++)
            for (int i = 0; i < p->gpu[g].n; i++)
                m->off[p->gpu[g].a[i].session + 1]++;
        for (int s = 0; s < ns; s++)
            m->off[s + 1] += m->off[s];
        int *fill = sc->map_tmp; /* reuse: needs ns ints; map_tmp has 2*ngpu+2 */
        int *own = NULL;
        if (ns > 2 * sc->cfg.ngpu + 2)
            fill = own = nx_malloc(sizeof(int) * (size_t)ns);
        memcpy(fill, m->off, sizeof(int) * (size_t)ns);
        for (int g = 0; g < p->ngpu; g++)
            for (int i = 0; i < p->gpu[g].n; i++) {
                const nx_alloc *a = &p->gpu[g].a[i];
                int k = fill[a->session]++;
                m->gpu[k] = g;
                m->w[k] = a->throughput > 0 ? a->throughput : 1e-9;
            }
        memcpy(m->slo_us, sc->budget, sizeof(double) * (size_t)ns);
        free(own);
        m->m.src = NX_NODE_SCHEDULER;
        m->m.dst = sc->cfg.first_frontend_node + f;
        nx_send(sc->env, m->m.dst, &m->m);
    }
}

/* Re-split every multi-stage app's SLO from the rates the plan is for;
 * adopt a split on the first epoch, or when it needs at least split_gain
 * fewer GPUs than the current budgets at the same rates. */
static int run_epoch(nx_scheduler *sc, const char *why, bool first);

static bool resplit(nx_scheduler *sc, bool first)
{
    bool any = false;
    for (int a = 0; a < sc->cfg.napps; a++) {
        const nx_app *app = &sc->cfg.apps[a];
        if (app->nstages < 2)
            continue;
        int base = sc->cfg.app_sess[a];
        double rate[NX_APP_MAX_STAGES];
        for (int v = 0; v < app->nstages; v++)
            rate[v] = NX_MAX(sc->plan_rate[base + v], MIN_PLAN_RATE);
        nx_split_in in = {
            .app = app,
            .rate = rate,
            .multiplier = sc->cfg.p.profile_multiplier,
            .net_allowance_us = sc->cfg.net_allowance_us,
            .steps = sc->cfg.p.split_steps,
        };
        nx_split_out out;
        int rc = sc->cfg.split == NX_SPLIT_EVEN ? nx_split_even(&in, &out) : nx_split_dp(&in, &out);
        if (rc < 0)
            continue; /* infeasible at these rates: keep the current budgets */
        double cur = nx_split_cost(&in, &sc->budget[base]);
        if (!first && !(out.gpus <= (1 - sc->cfg.p.split_gain) * cur))
            continue;
        bool changed = false;
        for (int v = 0; v < app->nstages; v++) {
            changed |= fabs(sc->budget[base + v] - out.budget_us[v]) > 1e-6;
            sc->budget[base + v] = out.budget_us[v];
        }
        if (changed && !first)
            sc->splits++;
        any |= changed;
    }
    for (int s = 0; s < sc->cfg.nsess; s++)
        sc->specs[s].slo_us = sc->budget[s];
    return any;
}

/* Sessions that share a model prefix and have the same SLO are planned as one
 * unit (Nexus gives them one SessionInfo): rate = the sum of theirs, latency
 * l(b) = prefix(b) + sum over members of suffix(ceil(b r_m / R)), memory the
 * prefix once plus each suffix. The unit is session nsess + u in the plan
 * the placement policy sees. */
static void build_units(nx_scheduler *sc)
{
    int ns = sc->cfg.nsess;
    for (int u = 0; u < sc->nunits; u++)
        sc->units[u].n = 0;
    sc->nunits = 0;
    for (int s = 0; s < ns; s++) {
        sc->unit_of[s] = -1;
        const nx_session *se = &sc->cfg.sessions[s];
        if (se->group < 0)
            continue;
        int u = 0;
        while (u < sc->nunits && !(sc->units[u].group == se->group &&
                                   fabs(sc->units[u].slo_us - sc->budget[s]) < 1e-6))
            u++;
        nx_prefix_unit *pu = &sc->units[u];
        if (u == sc->nunits) {
            sc->nunits++;
            pu->group = se->group;
            pu->slo_us = sc->budget[s];
            pu->n = 0;
        }
        if (!pu->members)
            pu->members = nx_malloc(sizeof(int) * (size_t)ns);
        pu->members[pu->n++] = s;
        sc->unit_of[s] = u;
    }
    for (int u = 0; u < sc->nunits; u++) {
        nx_prefix_unit *pu = &sc->units[u];
        pu->rate = 0;
        double cpu = 0; /* the members' CPU per request, weighted by their rates */
        for (int i = 0; i < pu->n; i++) {
            const nx_sess_spec *m = &sc->specs[pu->members[i]];
            pu->rate += m->rate;
            cpu += m->rate * m->cpu_us;
        }
        const nx_session *first = &sc->cfg.sessions[pu->members[0]];
        const nx_profile *pre = first->prefix;
        nx_profile *p = &pu->prof;
        if (p->max_batch != pre->max_batch) {
            nx_profile_free(p);
            nx_profile_init(p);
            p->max_batch = pre->max_batch;
            p->mean_us = nx_calloc((size_t)pre->max_batch + 1, sizeof(double));
            p->std_us = nx_calloc((size_t)pre->max_batch + 1, sizeof(double));
            p->mem_mb = nx_calloc((size_t)pre->max_batch + 1, sizeof(double));
        }
        snprintf(p->model, sizeof p->model, "%s", pre->model);
        p->pre_us = first->prof->pre_us;
        p->post_us = first->prof->post_us;
        for (int b = 1; b <= p->max_batch; b++) {
            double mean = pre->mean_us[b], var = pre->std_us[b] * pre->std_us[b],
                   mem = pre->mem_mb[b];
            for (int i = 0; i < pu->n; i++) {
                const nx_profile *sp = sc->cfg.sessions[pu->members[i]].suffix;
                double share = sc->specs[pu->members[i]].rate / pu->rate;
                int k = (int)ceil(b * share - 1e-9);
                if (k < 1)
                    k = 1;
                if (k > sp->max_batch)
                    k = sp->max_batch;
                mean += sp->mean_us[k];
                var += sp->std_us[k] * sp->std_us[k];
                mem += sp->mem_mb[k];
            }
            p->mean_us[b] = mean;
            p->std_us[b] = sqrt(var);
            p->mem_mb[b] = mem;
        }
        nx_sess_spec *spec = &sc->specs[ns + u];
        spec->id = ns + u;
        spec->prof = p;
        spec->slo_us = pu->slo_us;
        spec->rate = pu->rate;
        spec->cpu_us = cpu / pu->rate;
    }
    for (int u = 0; u < sc->nunits; u++)
        for (int i = 0; i < sc->units[u].n; i++)
            sc->specs[sc->units[u].members[i]].rate = 0; /* planned through the unit */
}

/* The plan in real sessions: a unit's allocation becomes one per member with
 * the unit's batch (the merged batch the prefix runs on) and the member's
 * share of the rate and throughput. */
static void expand(nx_scheduler *sc, const nx_plan *src, nx_plan *dst)
{
    int ns = sc->cfg.nsess;
    nx_plan_clear(dst);
    for (int g = 0; g < src->ngpu; g++) {
        const nx_gpu_plan *gp = &src->gpu[g];
        for (int i = 0; i < gp->n; i++) {
            const nx_alloc *a = &gp->a[i];
            if (a->session < ns) {
                nx_plan_add(dst, g, a->session, a->batch, a->rate, a->throughput);
                continue;
            }
            const nx_prefix_unit *pu = &sc->units[a->session - ns];
            for (int m = 0; m < pu->n; m++) {
                int s = pu->members[m];
                double share = sc->plan_rate_floor[s] / pu->rate_floor;
                nx_plan_add(dst, g, s, a->batch, a->rate * share, a->throughput * share);
            }
        }
        dst->gpu[g].duty_us = gp->duty_us;
        dst->gpu[g].exec_us = gp->exec_us;
        dst->gpu[g].mem_mb = gp->mem_mb;
        dst->gpu[g].overcommitted = gp->overcommitted;
    }
    for (int s = 0; s < ns; s++)
        dst->unassigned[s] = src->unassigned[s];
    for (int u = 0; u < sc->nunits; u++)
        for (int m = 0; m < sc->units[u].n; m++) {
            int s = sc->units[u].members[m];
            dst->unassigned[s] = src->unassigned[ns + u] * sc->plan_rate_floor[s] /
                                 sc->units[u].rate_floor;
        }
    nx_plan_count_used(dst);
}

static int run_epoch(nx_scheduler *sc, const char *why, bool first)
{
    bool resplit_changed = resplit(sc, first);
    /* as Nexus, plan for at least 0.1 req/s: an idle session keeps a slot,
     * and its trigger test (against 0.1) is not always true */
    for (int s = 0; s < sc->cfg.nsess; s++) {
        sc->specs[s].rate = NX_MAX(sc->plan_rate[s], MIN_PLAN_RATE);
        sc->plan_rate_floor[s] = sc->specs[s].rate;
    }
    build_units(sc);
    for (int u = 0; u < sc->nunits; u++)
        sc->units[u].rate_floor = sc->units[u].rate;
    nx_place_ctx ctx = {
        .sess = sc->specs,
        .nsess = sc->cfg.nsess + sc->nunits,
        .ngpus = sc->nalive,
        .gpu_mem_mb = sc->cfg.gpu_mem_mb,
        .multiplier = sc->cfg.p.profile_multiplier,
        .net_allowance_us = sc->cfg.net_allowance_us,
        .cpu_cores = sc->cfg.cpu_cores,
        .no_overlap = sc->cfg.no_overlap,
    };
    nx_plan_clear(&sc->next);
    int rc = sc->cfg.placement->place(&ctx, &sc->next);
    if (rc < 0)
        return rc;
    sc->epoch++;
    map_plan(sc);
    expand(sc, &sc->mapped, &sc->enext);
    push_tables(sc, first || resplit_changed);
    nx_plan_copy(&sc->plan, &sc->mapped);
    nx_plan_copy(&sc->eplan, &sc->enext);
    for (int s = 0; s < sc->cfg.nsess; s++)
        sc->tput[s] = 0;
    for (int g = 0; g < sc->eplan.ngpu; g++)
        for (int i = 0; i < sc->eplan.gpu[g].n; i++)
            sc->tput[sc->eplan.gpu[g].a[i].session] += sc->eplan.gpu[g].a[i].throughput;
    push_routes(sc);
    sc->epochs++;
    sc->last_epoch = nx_now(sc->env);
    if (sc->cfg.on_epoch)
        sc->cfg.on_epoch(sc->cfg.on_epoch_ctx, &sc->eplan, sc->tput, sc->budget, sc->last_epoch,
                         why);
    return 0;
}

/* GPU g is dead: forget it and tell every frontend (they resend or drop the
 * calls caught there). The caller re-plans. */
static void mark_dead(nx_scheduler *sc, int g)
{
    if (sc->unconfirmed[g]) { /* restored, and never heard from since */
        sc->unconfirmed[g] = 0;
        sc->restored_lost++;
    }
    sc->alive[g] = 0;
    sc->nalive--;
    sc->failures++;
    for (int f = 0; f < sc->cfg.nfrontends; f++) {
        nx_gpu_msg *m = nx_gpu_msg_new(NX_MSG_GPU_DOWN, g);
        m->m.src = NX_NODE_SCHEDULER;
        m->m.dst = sc->cfg.first_frontend_node + f;
        nx_send(sc->env, m->m.dst, &m->m);
    }
}

int nx_scheduler_gpu_down(nx_scheduler *sc, int gpu)
{
    if (gpu < 0 || gpu >= sc->cfg.ngpu)
        return NX_ERR_INVAL;
    if (!sc->alive[gpu])
        return 0;
    mark_dead(sc, gpu);
    return run_epoch(sc, "failure", false);
}

int nx_scheduler_set_alive(nx_scheduler *sc, int gpu, bool alive)
{
    if (gpu < 0 || gpu >= sc->cfg.ngpu)
        return NX_ERR_INVAL;
    if (alive != (sc->alive[gpu] != 0))
        sc->nalive += alive ? 1 : -1;
    sc->alive[gpu] = alive;
    sc->unconfirmed[gpu] = 0;
    sc->last_seen[gpu] = nx_now(sc->env);
    return 0;
}

int nx_scheduler_set_unconfirmed(nx_scheduler *sc, int gpu, nx_time since)
{
    int rc = nx_scheduler_set_alive(sc, gpu, true);
    if (rc == 0) {
        sc->unconfirmed[gpu] = 1;
        sc->last_seen[gpu] = since;
    }
    return rc;
}

int nx_scheduler_frontend_gone(nx_scheduler *sc, int f)
{
    int nf = sc->cfg.nfrontends;
    if (f < 0 || f >= nf)
        return NX_ERR_INVAL;
    for (int s = 0; s < sc->cfg.nsess; s++) {
        sc->ewma[(size_t)s * nf + f] = 0;
        sc->seen[(size_t)s * nf + f] = 0;
    }
    return 0;
}

static void beacon(nx_event *ev)
{
    nx_scheduler *sc = ev->ctx;
    if (sc->stopped)
        return;
    nx_time now = nx_now(sc->env);
    int ns = sc->cfg.nsess, nf = sc->cfg.nfrontends;
    bool trigger = false;
    if (sc->cfg.keepalive_timeout_s > 0) { /* Nexus: 3 missed beacons */
        bool lost = false;
        for (int g = 0; g < sc->cfg.ngpu; g++)
            if (sc->alive[g] && now - sc->last_seen[g] > NX_SEC(sc->cfg.keepalive_timeout_s)) {
                mark_dead(sc, g);
                lost = true;
            }
        if (lost)
            run_epoch(sc, "failure", false); /* at once, not at the next epoch */
    }
    for (int s = 0; s < ns; s++) {
        double r = 0;
        bool any = false;
        for (int f = 0; f < nf; f++) {
            r += sc->ewma[(size_t)s * nf + f];
            any |= sc->seen[(size_t)s * nf + f] != 0;
        }
        sc->rate[s] = r;
        if (any)
            sc->hist[s]++;
        if (sc->hist[s] >= sc->cfg.p.history) {
            sc->plan_rate[s] = r;
            double t = sc->tput[s];
            double rr = NX_MAX(r, MIN_PLAN_RATE);
            if (rr < sc->cfg.p.low * t || rr > sc->cfg.p.high * t)
                trigger = true;
        }
    }
    if (sc->cfg.p.adaptive) {
        double since = NX_TO_SEC(now - sc->last_epoch);
        if (trigger && since >= sc->cfg.p.min_epoch_s - 1e-9) {
            sc->triggers++;
            run_epoch(sc, "trigger", false);
        } else if (since >= sc->cfg.p.epoch_s - 1e-9) {
            run_epoch(sc, "periodic", false);
        }
    }
    nx_at(sc->env, &sc->beacon, ev->time + NX_SEC(sc->cfg.p.beacon_s));
}

int nx_scheduler_start(nx_scheduler *sc)
{
    int rc = run_epoch(sc, "initial", true);
    if (rc < 0)
        return rc;
    sc->beacon.fn = beacon;
    sc->beacon.ctx = sc;
    nx_at(sc->env, &sc->beacon, nx_now(sc->env) + NX_SEC(sc->cfg.p.beacon_s));
    return 0;
}

void nx_scheduler_stop(nx_scheduler *sc) { sc->stopped = true; }

void nx_scheduler_recv(nx_scheduler *sc, nx_msg *m)
{
    if (m->type == NX_MSG_KEEPALIVE) {
        int g = ((nx_gpu_msg *)m)->gpu;
        free(m);
        NX_ASSERT(g >= 0 && g < sc->cfg.ngpu);
        sc->last_seen[g] = nx_now(sc->env);
        if (sc->unconfirmed[g]) { /* a restored GPU's backend is back: its work stays where
                                     it is; it gets its table (sent while it was away) */
            sc->unconfirmed[g] = 0;
            sc->restored_back++;
            send_table(sc, g, &sc->eplan.gpu[g]);
        } else if (!sc->alive[g]) { /* a restarted backend registers again */
            sc->alive[g] = 1;
            sc->nalive++;
            sc->recoveries++;
            run_epoch(sc, "recovery", false); /* its new table differs from the empty one */
        }
        return;
    }
    NX_ASSERT(m->type == NX_MSG_RATES);
    nx_rates_msg *r = (nx_rates_msg *)m;
    int nf = sc->cfg.nfrontends, f = r->frontend;
    NX_ASSERT(f >= 0 && f < nf && r->nsess == sc->cfg.nsess);
    double per_s = 1.0 / sc->cfg.p.beacon_s;
    for (int k = 0; k < r->nsamples; k++)
        for (int s = 0; s < r->nsess; s++) {
            double x = r->counts[(size_t)k * r->nsess + s] * per_s;
            size_t i = (size_t)s * nf + f;
            if (!sc->seen[i]) {
                sc->seen[i] = 1;
                sc->ewma[i] = x;
            } else {
                sc->ewma[i] += sc->alpha * (x - sc->ewma[i]);
            }
        }
    free(r);
}
