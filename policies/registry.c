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
