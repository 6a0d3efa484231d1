/* hostcost.c — what a backend node costs besides its GPU's exclusive batch
 * latency: the CPU's pre/post-processing per request (a cost table measured on
 * one host replaces the profiles' own numbers) and the slowdown of batches that
 * share a GPU concurrently (an interference table measured with k concurrent
 * streams). Pure functions over the parsed tables (engine/config.c parses
 * them); the simulator's GPU and the backend's CPU model use them. */
#include "experiment.h"

#include <string.h>

void nx_prepost_apply(const nx_prepost *t, nx_modeldb *db)
{
    for (int i = 0; i < db->n; i++) {
        nx_profile *p = &db->profiles[i];
        for (int k = 0; k < t->n; k++)
            if (strcmp(t->e[k].model, p->model) == 0) {
                p->pre_us = t->e[k].pre_us;
                p->post_us = t->e[k].post_us;
                break;
            }
    }
}

bool nx_interference_curve(const nx_interference *t, const char *model, const char *precision,
                           nx_ifx_curve *c)
{
    c->e = NULL;
    c->n = 0;
    for (int i = 0; i < t->n; i++) {
        const nx_ifx_entry *e = &t->e[i];
        if (strcmp(e->model, model) != 0 || strcmp(e->precision, precision) != 0)
            continue;
        if (!c->e)
            c->e = e;
        c->n++;
    }
    return c->n > 0;
}

/* The slowdown of one row at k (k >= 1). */
static double row_slowdown(const nx_ifx_entry *e, int k)
{
    if (k <= e->nk)
        return e->lat_us[k - 1] / e->lat_us[0];
    if (e->nk == 1)
        return 1.0;
    double last = e->lat_us[e->nk - 1], prev = e->lat_us[e->nk - 2];
    return (last + (last - prev) * (double)(k - e->nk)) / e->lat_us[0];
}

double nx_ifx_slowdown(const nx_ifx_curve *c, int b, int k)
{
    if (k <= 1 || c->n == 0)
        return 1.0;
    const nx_ifx_entry *e = c->e;
    if (b <= e[0].batch)
        return row_slowdown(&e[0], k);
    if (b >= e[c->n - 1].batch)
        return row_slowdown(&e[c->n - 1], k);
    int i = 1;
    while (e[i].batch < b)
        i++;
    double lo = row_slowdown(&e[i - 1], k), hi = row_slowdown(&e[i], k);
    double f = (double)(b - e[i - 1].batch) / (double)(e[i].batch - e[i - 1].batch);
    return lo + (hi - lo) * f;
}
