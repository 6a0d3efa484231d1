/* setup.c — the experiment as every real node sees it (see setup.h): read
 * through io/load.c's file layer, policies resolved by the registry, the
 * catalog built by engine/catalog.c exactly as nx_run() builds it. */
#include "setup.h"

#include <stdio.h>
#include <string.h>

#include "load.h"
#include "policies.h"

int nx_setup_load(nx_setup *s, const char *path, const char *policy, double scale,
                  nx_errbuf *eb)
{
    memset(s, 0, sizeof *s);
    nx_experiment_init(&s->x);
    nx_modeldb_init(&s->db);
    int rc = nx_load_experiment(&s->x, &s->db, path, eb);
    if (rc < 0)
        return rc;
    const nx_combo *combo = NULL;
    for (int i = 0; i < s->x.ncombos && !combo; i++)
        if (!policy || strcmp(s->x.combos[i].name, policy) == 0)
            combo = &s->x.combos[i];
    if (!combo) {
        nx_err_set(eb, NX_ERR_NOTFOUND, "%s: no policy combination is called '%s'", path,
                   policy ? policy : "(any)");
        return NX_ERR_NOTFOUND;
    }
    nx_policy_set pol;
    rc = nx_policies_resolve(combo, path, &pol, eb);
    if (rc < 0)
        return rc;
    nx_catalog_init(&s->cat, &s->x, combo, &pol, scale, s->x.seed);
    return 0;
}

void nx_setup_free(nx_setup *s)
{
    nx_catalog_free(&s->cat);
    nx_experiment_free(&s->x);
    nx_modeldb_free(&s->db);
    memset(s, 0, sizeof *s);
}
