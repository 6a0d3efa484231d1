/* catalog.h — what the engine derives from an experiment before anything
 * runs, the same in the simulator and in every real daemon: the session
 * catalog (one session per app, one per stage of a DAG app, with its profile,
 * prefix group, initial SLO — the app's, or the even split's stage budget —
 * and its planning rate), the chosen policies, and the engine configs filled
 * from them (nx_backend_cfg_fill, nx_frontend_cfg_fill,
 * nx_scheduler_cfg_fill), so no caller fills a config by hand.
 *
 * The hash covers the experiment's name, the scale, the policies, every
 * session and every field the cfg_fill functions take from the experiment:
 * a real node started with another experiment, scale, policy or tuning has
 * another hash, and the scheduler refuses it at registration. */
#ifndef NX_CATALOG_H
#define NX_CATALOG_H

#include "backend.h"
#include "experiment.h"
#include "frontend.h"
#include "ops.h"
#include "plan.h"
#include "scheduler.h"

/* The policies of one combination, resolved by name (policies/registry.c's
 * nx_policies_resolve). */
typedef struct nx_policy_set {
    const nx_placement_ops *placement;
    const nx_batching_ops *batching;
    const nx_lb_ops *lb;
    nx_split_mode split;
} nx_policy_set;

typedef struct nx_catalog {
    const nx_experiment *x;    /* not owned */
    const nx_combo *combo;     /* not owned */
    nx_policy_set pol;
    double scale;              /* workload rate scale */
    uint64_t seed;             /* the run's seed (frontend RNGs derive from it) */
    nx_session *sess;          /* nsess sessions (owned) */
    int nsess;
    int *app_sess;             /* app a's stage v is session app_sess[a] + v; [napps] = nsess */
    int nfrontends;            /* the simulator's: min(apps, 8), one for central dispatch */
    double max_slo_us;         /* the largest app SLO */
    uint64_t hash;
} nx_catalog;

/* Build the catalog of x under combination combo (its policies in pol), at
 * rate scale `scale` and seed `seed`. x must outlive the catalog. */
void nx_catalog_init(nx_catalog *c, const nx_experiment *x, const nx_combo *combo,
                     const nx_policy_set *pol, double scale, uint64_t seed);
void nx_catalog_free(nx_catalog *c);
/* The app called name, or -1. */
int nx_catalog_app(const nx_catalog *c, const char *name);

/* Engine configs as the simulator runs them. A caller sets afterwards only
 * what is its own: callbacks, and in real mode the measurement window and
 * the keep-alive period the scheduler announced. */
void nx_backend_cfg_fill(nx_backend_cfg *bc, const nx_catalog *c, int gpu);

/* gpu_sharing: concurrent: the interference curve of every profile a batch of c
 * can run (a session's model, or its prefix group's prefix), from the
 * experiment's table; a profile the table lacks is NX_ERR_NOTFOUND naming it.
 * Used by the simulator's shared GPU and the emulated executor alike. */
typedef struct nx_ifx_map {
    const nx_profile *p;
    nx_ifx_curve c;
} nx_ifx_map;
int nx_catalog_ifx(const nx_catalog *c, nx_ifx_map **out, int *n, nx_errbuf *eb);
/* The slowdown of batch b (its profile one of map's) when k batches share its GPU. */
double nx_ifx_map_slowdown(const nx_ifx_map *map, int n, const nx_batch *b, int k);
/* Frontend `index` at node id `node`, routing over ngpu GPU slots. */
void nx_frontend_cfg_fill(nx_frontend_cfg *fc, const nx_catalog *c, int index, int node,
                          int ngpu);
/* ngpu GPU slots, nfrontends frontends at nodes first_frontend_node... */
void nx_scheduler_cfg_fill(nx_scheduler_cfg *sc, const nx_catalog *c, int ngpu, int nfrontends,
                           int first_frontend_node);

#endif
