/* registry_exec.c — the tables that map batching and load-balancing policy
 * names (as written in experiment files) to their ops. Adding a policy is one
 * file with its ops and one row here. */
#include "exec_policies.h"

#include <stdio.h>
#include <string.h>

extern const nx_batching_ops nx_batch_early_drop_ops, nx_batch_lazy_drop_ops,
    nx_batch_clipper_ops, nx_batch_tf_serving_ops;
extern const nx_lb_ops nx_lb_drr_ops, nx_lb_weighted_random_ops, nx_lb_power_of_two_ops;

static const nx_batching_ops *const batching[] = {
    &nx_batch_early_drop_ops,
    &nx_batch_lazy_drop_ops,
    &nx_batch_clipper_ops,
    &nx_batch_tf_serving_ops,
};

static const nx_lb_ops *const lbs[] = {
    &nx_lb_drr_ops,
    &nx_lb_weighted_random_ops,
    &nx_lb_power_of_two_ops,
};

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

const nx_batching_ops *nx_batching_find(const char *name)
{
    for (size_t i = 0; i < NELEM(batching); i++)
        if (strcmp(batching[i]->name, name) == 0)
            return batching[i];
    return NULL;
}

const nx_lb_ops *nx_lb_find(const char *name)
{
    for (size_t i = 0; i < NELEM(lbs); i++)
        if (strcmp(lbs[i]->name, name) == 0)
            return lbs[i];
    return NULL;
}

void nx_batching_list(char *buf, size_t n)
{
    size_t off = 0;
    buf[0] = 0;
    for (size_t i = 0; i < NELEM(batching) && off < n; i++)
        off += (size_t)snprintf(buf + off, n - off, "%s%s", i ? ", " : "", batching[i]->name);
}

void nx_lb_list(char *buf, size_t n)
{
    size_t off = 0;
    buf[0] = 0;
    for (size_t i = 0; i < NELEM(lbs) && off < n; i++)
        off += (size_t)snprintf(buf + off, n - off, "%s%s", i ? ", " : "", lbs[i]->name);
}
