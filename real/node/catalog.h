/* catalog.h — what every node of a real cluster derives from the experiment
 * file: the session catalog (one session per app, one per stage of a DAG
 * app, exactly as the simulator builds it, with its planning rates and
 * initial stage budgets), the chosen policy combination and its ops tables,
 * and a hash of the catalog that the scheduler compares at registration, so
 * that a node started with another experiment or scale is refused instead of
 * misrouting. */
#ifndef NX_CATALOG_H
#define NX_CATALOG_H

#include "experiment.h"
#include "ops.h"
#include "plan.h"
#include "scheduler.h"

typedef struct nx_catalog {
    nx_experiment x;
    nx_modeldb db;
    const nx_combo *combo;
    const nx_placement_ops *placement;
    const nx_batching_ops *batching;
    const nx_lb_ops *lb;
    nx_split_mode split;
    nx_session *sess;      /* nsess sessions (owned) */
    int nsess;
    int *app_sess;         /* app a's stage v is session app_sess[a] + v */
    double scale;          /* workload rate scale */
    double max_slo_us;     /* the largest app SLO */
    uint64_t hash;
} nx_catalog;

/* Load path, pick the combination called policy (NULL: the first), resolve
 * its policies, build the catalog for rate scale `scale`. On error the
 * message names the file, the policy or the field; nx_catalog_free() is
 * still safe. */
int nx_catalog_load(nx_catalog *c, const char *path, const char *policy, double scale,
                    nx_errbuf *eb);
void nx_catalog_free(nx_catalog *c);
/* The app called name, or -1. */
int nx_catalog_app(const nx_catalog *c, const char *name);

#endif
