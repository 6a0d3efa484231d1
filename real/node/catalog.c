/* catalog.c — the experiment as every real node sees it (see catalog.h).
 *
 * The session catalog is the simulator's own: it comes out of a simulated run
 * of the same experiment, policy and scale cut to a millisecond (nx_run
 * returns its sessions), so sessions, stage budgets and planning rates are
 * identical in both modes by construction and follow the simulator when it
 * changes. (Wanted from the simulator: its catalog builder as a function of
 * its own; see real/NEEDS-FROM-ENGINE.md.) */
#include "catalog.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "load.h"
#include "policies.h"
#include "run.h"

static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++) {
        h ^= b[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}

int nx_catalog_load(nx_catalog *c, const char *path, const char *policy, double scale,
                    nx_errbuf *eb)
{
    memset(c, 0, sizeof *c);
    nx_experiment_init(&c->x);
    nx_modeldb_init(&c->db);
    c->scale = scale;
    int rc = nx_load_experiment(&c->x, &c->db, path, eb);
    if (rc < 0)
        return rc;
    for (int i = 0; i < c->x.ncombos && !c->combo; i++)
        if (!policy || strcmp(c->x.combos[i].name, policy) == 0)
            c->combo = &c->x.combos[i];
    if (!c->combo) {
        nx_err_set(eb, NX_ERR_NOTFOUND, "%s: no policy combination is called '%s'", path,
                   policy ? policy : "(any)");
        return NX_ERR_NOTFOUND;
    }
    c->placement = nx_placement_find(c->combo->placement);
    c->batching = nx_batching_find(c->combo->batching);
    c->lb = nx_lb_find(c->combo->lb);
    c->split = strcmp(c->combo->split, "even") == 0 ? NX_SPLIT_EVEN : NX_SPLIT_DP;

    /* the simulator's catalog: a run of one simulated millisecond */
    nx_experiment brief = c->x;
    brief.duration_s = 1e-3;
    brief.warmup_s = 0;
    nx_run_opts o = {.scale = scale, .seed = c->x.seed};
    nx_run_result res;
    rc = nx_run(&brief, c->combo, &o, &res, eb); /* also checks the policy names */
    if (rc < 0) {
        nx_run_result_free(&res);
        return rc;
    }
    c->sess = res.sessions;
    c->nsess = res.nsess;
    res.sessions = NULL;
    nx_run_result_free(&res);

    c->app_sess = nx_malloc(sizeof(int) * (size_t)(c->x.napps + 1));
    uint64_t h = 0xcbf29ce484222325ULL;
    h = fnv(h, c->x.name, strlen(c->x.name) + 1);
    h = fnv(h, &scale, sizeof scale);
    for (int a = 0, s = 0; a < c->x.napps; a++) {
        c->app_sess[a] = s;
        s += c->x.apps[a].nstages;
        double slo = c->x.apps[a].slo_ms * 1000.0;
        if (slo > c->max_slo_us)
            c->max_slo_us = slo;
    }
    c->app_sess[c->x.napps] = c->nsess;
    for (int i = 0; i < c->nsess; i++) {
        const nx_session *s = &c->sess[i];
        h = fnv(h, s->name, strlen(s->name) + 1);
        h = fnv(h, s->prof->model, strlen(s->prof->model) + 1);
        h = fnv(h, s->prof->precision, strlen(s->prof->precision) + 1);
        h = fnv(h, &s->slo_us, sizeof s->slo_us);
        h = fnv(h, &s->prof->max_batch, sizeof s->prof->max_batch);
        h = fnv(h, s->prof->mean_us + 1, sizeof(double) * (size_t)s->prof->max_batch);
    }
    c->hash = h ? h : 1;
    return 0;
}

void nx_catalog_free(nx_catalog *c)
{
    free(c->sess);
    free(c->app_sess);
    nx_experiment_free(&c->x);
    nx_modeldb_free(&c->db);
    memset(c, 0, sizeof *c);
}

int nx_catalog_app(const nx_catalog *c, const char *name)
{
    for (int a = 0; a < c->x.napps; a++)
        if (strcmp(c->x.apps[a].name, name) == 0)
            return a;
    return -1;
}
