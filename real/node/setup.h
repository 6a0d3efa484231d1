/* setup.h — what every node of a real cluster derives from the experiment
 * file: the experiment and its model DB (read from disk), and the engine's
 * catalog of it (engine/catalog.h: sessions, policies, hash, and the engine
 * configs through the *_cfg_fill functions) for the chosen policy
 * combination and rate scale — the simulator's catalog, built by the same
 * function, with no simulation run. The scheduler compares the catalog's
 * hash at registration, so that a node started with another experiment,
 * scale or policy is refused instead of misrouting. */
#ifndef NX_SETUP_H
#define NX_SETUP_H

#include "catalog.h"
#include "experiment.h"
#include "profile.h"

typedef struct nx_setup {
    nx_experiment x;
    nx_modeldb db;
    nx_catalog cat;        /* cat.x is &x: an nx_setup is never moved once loaded */
} nx_setup;

/* Load path, pick the combination called policy (NULL: the first), resolve
 * its policies, build the catalog for rate scale `scale` (the experiment's
 * seed). On error the message names the file, the policy or the field;
 * nx_setup_free() is still safe. */
int nx_setup_load(nx_setup *s, const char *path, const char *policy, double scale,
                  nx_errbuf *eb);
void nx_setup_free(nx_setup *s);

#endif
