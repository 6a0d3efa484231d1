/* registry.c — name → ops-table lookup for every kind of policy. Each kind has
 * one static table of pointers, in the order their names are listed in
 * messages; nothing here knows what a policy does. */
#include "policies.h"

#include <stdio.h>
#include <string.h>

/* Append the names of a NULL-free table to buf as "a, b, c" (truncated safely). */
#define LIST_NAMES(table, buf, n)                                               \
    do {                                                                        \
        size_t off_ = 0;                                                        \
        if ((n) > 0)                                                            \
            (buf)[0] = 0;                                                       \
        for (size_t i_ = 0; i_ < sizeof(table) / sizeof((table)[0]); i_++) {    \
            if (off_ >= (n))                                                    \
                break;                                                          \
            int w_ = snprintf((buf) + off_, (n) - off_, "%s%s", i_ ? ", " : "", \
                              (table)[i_]->name);                               \
            if (w_ < 0)                                                         \
                break;                                                          \
            off_ += (size_t)w_;                                                 \
        }                                                                       \
    } while (0)

/* ---- placement ---------------------------------------------------------------- */

static const nx_placement_ops *const placement_table[] = {
    &nx_place_squishy_ops,
    &nx_place_oblivious_ops,
};

const nx_placement_ops *nx_placement_find(const char *name)
{
    if (!name)
        return NULL;
    for (size_t i = 0; i < sizeof placement_table / sizeof placement_table[0]; i++)
        if (strcmp(placement_table[i]->name, name) == 0)
            return placement_table[i];
    return NULL;
}

void nx_placement_list(char *buf, size_t n)
{
    LIST_NAMES(placement_table, buf, n);
}

/* ---- batching ------------------------------------------------------------------ */

static const nx_batching_ops *const batching_table[] = {
    &nx_batch_early_drop_ops,
    &nx_batch_lazy_drop_ops,
    &nx_batch_clipper_ops,
    &nx_batch_tf_serving_ops,
    &nx_batch_deferred_ops,
};

const nx_batching_ops *nx_batching_find(const char *name)
{
    if (!name)
        return NULL;
    for (size_t i = 0; i < sizeof batching_table / sizeof batching_table[0]; i++)
        if (strcmp(batching_table[i]->name, name) == 0)
            return batching_table[i];
    return NULL;
}

void nx_batching_list(char *buf, size_t n)
{
    LIST_NAMES(batching_table, buf, n);
}

/* ---- load balancing ------------------------------------------------------------ */

static const nx_lb_ops *const lb_table[] = {
    &nx_lb_drr_ops,
    &nx_lb_drr_runs_ops,
    &nx_lb_weighted_random_ops,
    &nx_lb_power_of_two_ops,
};

const nx_lb_ops *nx_lb_find(const char *name)
{
    if (!name)
        return NULL;
    for (size_t i = 0; i < sizeof lb_table / sizeof lb_table[0]; i++)
        if (strcmp(lb_table[i]->name, name) == 0)
            return lb_table[i];
    return NULL;
}

void nx_lb_list(char *buf, size_t n)
{
    LIST_NAMES(lb_table, buf, n);
}

/* ---- query SLO split (the engine's split.c; the mode tells the scheduler which) --- */

typedef struct split_policy {
    const char *name;
    nx_split_mode mode;
} split_policy;

static const split_policy split_rows[] = {
    {"dp", NX_SPLIT_DP},
    {"even", NX_SPLIT_EVEN},
};
static const split_policy *const split_table[] = {&split_rows[0], &split_rows[1]};

int nx_split_find(const char *name, nx_split_mode *mode)
{
    for (size_t i = 0; name && i < sizeof split_table / sizeof split_table[0]; i++)
        if (strcmp(split_table[i]->name, name) == 0) {
            *mode = split_table[i]->mode;
            return 0;
        }
    return NX_ERR_NOTFOUND;
}

void nx_split_list(char *buf, size_t n)
{
    LIST_NAMES(split_table, buf, n);
}

/* ---- a whole combination ------------------------------------------------------- */

int nx_policies_resolve(const nx_combo *combo, const char *path, nx_policy_set *out,
                        nx_errbuf *eb)
{
    char names[256];
    memset(out, 0, sizeof *out);
    out->placement = nx_placement_find(combo->placement);
    out->batching = nx_batching_find(combo->batching);
    out->lb = nx_lb_find(combo->lb);
    const char *kind = NULL, *name = NULL;
    if (!out->placement) {
        nx_placement_list(names, sizeof names);
        kind = "placement", name = combo->placement;
    } else if (!out->batching) {
        nx_batching_list(names, sizeof names);
        kind = "batching", name = combo->batching;
    } else if (nx_split_find(combo->split, &out->split) < 0) {
        nx_split_list(names, sizeof names);
        kind = "split", name = combo->split;
    } else if (!out->lb) {
        nx_lb_list(names, sizeof names);
        kind = "lb", name = combo->lb;
    }
    if (kind) {
        nx_err_set(eb, NX_ERR_NOTFOUND, "%s: policy '%s': unknown %s '%s' (known: %s)", path,
                   combo->name, kind, name, names);
        return NX_ERR_NOTFOUND;
    }
    return 0;
}
