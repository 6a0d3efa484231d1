/* catalog.c — the session catalog, its hash and the engine configs filled
 * from an experiment (see catalog.h). Before the scheduler's first split a
 * DAG app's stages get the even split (safe on every path); planning rates
 * are the workload's mean rates (engine/workload.c) times each stage's mean
 * calls per query. */
#include "catalog.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "split.h"
#include "workload.h"

static void build_sessions(nx_catalog *c)
{
    const nx_experiment *x = c->x;
    c->app_sess = nx_malloc(sizeof(int) * (size_t)(x->napps + 1));
    c->nsess = 0;
    for (int a = 0; a < x->napps; a++) {
        c->app_sess[a] = c->nsess;
        c->nsess += x->apps[a].nstages;
    }
    c->app_sess[x->napps] = c->nsess;
    c->sess = nx_calloc((size_t)c->nsess + 1, sizeof(nx_session));
    for (int a = 0; a < x->napps; a++) {
        const nx_app *app = &x->apps[a];
        double calls[NX_APP_MAX_STAGES], rate[NX_APP_MAX_STAGES];
        double app_rate = nx_workload_rate(x, a, c->scale);
        for (int v = 0; v < app->nstages; v++) {
            const nx_stage *st = &app->stages[v];
            calls[v] = (st->nparents == 0 ? 1 : calls[st->parents[0]]) *
                       nx_workload_mean_fanout(x, st);
            rate[v] = app_rate * calls[v];
        }
        nx_split_in in = {.app = app, .rate = rate, .multiplier = x->sched.profile_multiplier,
                          .net_allowance_us = 2 * (x->net_delay_us + x->net_jitter_us),
                          .steps = x->sched.split_steps};
        nx_split_out ev;
        nx_split_even(&in, &ev);
        for (int v = 0; v < app->nstages; v++) {
            nx_session *s = &c->sess[c->app_sess[a] + v];
            s->id = c->app_sess[a] + v;
            s->app = a;
            s->stage = v;
            if (app->nstages == 1)
                snprintf(s->name, sizeof s->name, "%s", app->name);
            else
                snprintf(s->name, sizeof s->name, "%.30s/%.30s", app->name, app->stages[v].name);
            s->prof = app->stages[v].profile;
            s->group = c->combo->prefix ? app->stages[v].group : -1;
            s->prefix = app->stages[v].prefix;
            s->suffix = app->stages[v].suffix;
            s->slo_us = app->nstages == 1 ? app->slo_ms * 1000.0 : ev.budget_us[v];
            s->est_rate = rate[v];
        }
        if (app->slo_ms * 1000.0 > c->max_slo_us)
            c->max_slo_us = app->slo_ms * 1000.0;
    }
}

static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++) {
        h ^= b[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}

static uint64_t fnv_str(uint64_t h, const char *s)
{
    return fnv(h, s ? s : "", strlen(s ? s : "") + 1);
}

static uint64_t fnv_d(uint64_t h, double v)
{
    return fnv(h, &v, sizeof v);
}

static uint64_t fnv_i(uint64_t h, int64_t v)
{
    return fnv(h, &v, sizeof v);
}

/* The hash: sessions and every experiment-derived field of the filled
 * configs (field by field: struct padding is not hashed). */
static uint64_t catalog_hash(const nx_catalog *c)
{
    const nx_experiment *x = c->x;
    uint64_t h = 0xcbf29ce484222325ULL;
    h = fnv_str(h, x->name);
    h = fnv_d(h, c->scale);
    h = fnv_str(h, c->pol.placement ? c->pol.placement->name : "");
    h = fnv_str(h, c->pol.batching ? c->pol.batching->name : "");
    h = fnv_str(h, c->pol.lb ? c->pol.lb->name : "");
    h = fnv_i(h, c->pol.split);
    for (int i = 0; i < c->nsess; i++) {
        const nx_session *s = &c->sess[i];
        h = fnv_str(h, s->name);
        h = fnv_str(h, s->prof->model);
        h = fnv_str(h, s->prof->precision);
        h = fnv_d(h, s->slo_us);
        h = fnv_d(h, s->est_rate);
        h = fnv_i(h, s->group);
        h = fnv_i(h, s->prof->max_batch);
        h = fnv(h, s->prof->mean_us + 1, sizeof(double) * (size_t)s->prof->max_batch);
    }
    nx_backend_cfg bc;
    nx_backend_cfg_fill(&bc, c, 0);
    h = fnv_d(h, bc.multiplier);
    h = fnv_i(h, bc.reply_ns);
    h = fnv_d(h, bc.bp->tf_timeout_ms);
    h = fnv_i(h, bc.bp->aimd_step);
    h = fnv_d(h, bc.bp->aimd_backoff);
    h = fnv_d(h, bc.bp->dispatch_slack_us);
    h = fnv_i(h, bc.cpu_cores);
    h = fnv_i(h, bc.no_overlap);
    h = fnv_i(h, bc.concurrent);
    nx_frontend_cfg fc;
    nx_frontend_cfg_fill(&fc, c, 0, 0, 1);
    h = fnv_d(h, fc.beacon_s);
    h = fnv_d(h, fc.report_s);
    h = fnv_i(h, fc.central);
    h = fnv_i(h, fc.net_ns);
    h = fnv_i(h, fc.dispatch_slack_ns);
    h = fnv_i(h, (int64_t)fc.nfanout_trace);
    nx_scheduler_cfg sc;
    nx_scheduler_cfg_fill(&sc, c, 1, 1, 0);
    const nx_sched_params *p = &sc.p;
    h = fnv_d(h, sc.gpu_mem_mb);
    h = fnv_d(h, sc.net_allowance_us);
    double pd[] = {p->epoch_s, p->min_epoch_s, p->beacon_s, p->report_s, p->avg_interval_s,
                   p->low, p->high, p->profile_multiplier, p->split_gain,
                   p->keepalive_timeout_s};
    h = fnv(h, pd, sizeof pd);
    h = fnv_i(h, p->history);
    h = fnv_i(h, p->adaptive);
    h = fnv_i(h, p->split_steps);
    return h ? h : 1;
}

void nx_catalog_init(nx_catalog *c, const nx_experiment *x, const nx_combo *combo,
                     const nx_policy_set *pol, double scale, uint64_t seed)
{
    memset(c, 0, sizeof *c);
    c->x = x;
    c->combo = combo;
    c->pol = *pol;
    c->scale = scale;
    c->seed = seed;
    /* min(apps, 8) frontends; a central batching policy (Symphony) has one
     * dispatcher that sees every session and every GPU: one frontend */
    c->nfrontends = pol->batching->central ? 1 : (x->napps < 8 ? x->napps : 8);
    build_sessions(c);
    c->hash = catalog_hash(c);
}

void nx_catalog_free(nx_catalog *c)
{
    free(c->sess);
    free(c->app_sess);
    memset(c, 0, sizeof *c);
}

int nx_catalog_app(const nx_catalog *c, const char *name)
{
    for (int a = 0; a < c->x->napps; a++)
        if (strcmp(c->x->apps[a].name, name) == 0)
            return a;
    return -1;
}

void nx_backend_cfg_fill(nx_backend_cfg *bc, const nx_catalog *c, int gpu)
{
    const nx_experiment *x = c->x;
    *bc = (nx_backend_cfg){
        .gpu = gpu,
        .sessions = c->sess,
        .nsess = c->nsess,
        .batching = c->pol.batching,
        .bp = &x->batch,
        .multiplier = x->sched.profile_multiplier,
        .reply_ns = NX_US(x->net_delay_us + x->net_jitter_us),
        .keepalive_s = x->sched.keepalive_timeout_s > 0 ? x->sched.beacon_s : 0,
        .window_start = NX_SEC(x->warmup_s),
        .window_end = NX_SEC(x->duration_s),
        .cpu_cores = x->cpu_cores,
        .no_overlap = !c->combo->overlap,
        .concurrent = c->combo->gpu_sharing == NX_GPU_CONCURRENT,
    };
}

void nx_frontend_cfg_fill(nx_frontend_cfg *fc, const nx_catalog *c, int index, int node,
                          int ngpu)
{
    const nx_experiment *x = c->x;
    *fc = (nx_frontend_cfg){
        .index = index,
        .node = node,
        .sessions = c->sess,
        .nsess = c->nsess,
        .apps = x->apps,
        .napps = x->napps,
        .app_sess = c->app_sess,
        .fanout_trace = x->has_trace ? x->trace.trace.size : NULL,
        .nfanout_trace = x->has_trace && x->trace.trace.size ? x->trace.trace.n : 0,
        .ngpu = ngpu,
        .lb = c->pol.lb,
        .seed = c->seed * 1000003u + (uint64_t)index,
        .beacon_s = x->sched.beacon_s,
        .report_s = x->sched.report_s,
        .central = c->pol.batching->central,
        .multiplier = x->sched.profile_multiplier,
        .net_ns = NX_US(x->net_delay_us + x->net_jitter_us),
        .dispatch_slack_ns = NX_US(x->batch.dispatch_slack_us),
    };
}

void nx_scheduler_cfg_fill(nx_scheduler_cfg *sc, const nx_catalog *c, int ngpu, int nfrontends,
                           int first_frontend_node)
{
    const nx_experiment *x = c->x;
    *sc = (nx_scheduler_cfg){
        .sessions = c->sess,
        .nsess = c->nsess,
        .ngpu = ngpu,
        .nfrontends = nfrontends,
        .first_frontend_node = first_frontend_node,
        .gpu_mem_mb = x->gpu_mem_mb,
        .net_allowance_us = 2 * (x->net_delay_us + x->net_jitter_us),
        .cpu_cores = x->cpu_cores,
        .no_overlap = !c->combo->overlap,
        .placement = c->pol.placement,
        .p = x->sched,
        .apps = x->apps,
        .napps = x->napps,
        .app_sess = c->app_sess,
        .split = c->pol.split,
        .keepalive_timeout_s = x->sched.keepalive_timeout_s,
    };
}

int nx_catalog_ifx(const nx_catalog *c, nx_ifx_map **out, int *n, nx_errbuf *eb)
{
    const nx_experiment *x = c->x;
    nx_ifx_map *m = nx_calloc((size_t)c->nsess + 1, sizeof *m);
    int nm = 0;
    for (int i = 0; i < c->nsess; i++) {
        const nx_session *s = &c->sess[i];
        const nx_profile *p = s->group >= 0 ? s->prefix : s->prof;
        int k = 0;
        while (k < nm && m[k].p != p)
            k++;
        if (k < nm)
            continue;
        m[k].p = p;
        if (!nx_interference_curve(&x->ifx, p->model, p->precision, &m[k].c)) {
            nx_err_set(eb, NX_ERR_NOTFOUND,
                       "%s: gpu_sharing: concurrent: the interference table %s has no entry for "
                       "model '%s' precision '%s' (session '%s')",
                       x->path, x->interference, p->model, p->precision, s->name);
            free(m);
            *out = NULL;
            *n = 0;
            return NX_ERR_NOTFOUND;
        }
        nm++;
    }
    *out = m;
    *n = nm;
    return 0;
}

double nx_ifx_map_slowdown(const nx_ifx_map *map, int n, const nx_batch *b, int k)
{
    for (int i = 0; i < n; i++)
        if (map[i].p == b->prof)
            return nx_ifx_slowdown(&map[i].c, b->size, k);
    NX_ASSERT(!"slowdown: a batch of a profile without a curve");
    return 1;
}
