/* wire.c — engine control messages <-> protobuf, with checks (see wire.h). */
#include "wire.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

_Static_assert(sizeof(int) == sizeof(int32_t), "routes arrays are sent as int32 in place");

#define MAX_SAMPLES 4096   /* rate rows per report: far more than a report period holds */

void nx_wire_table_to(const nx_table_msg *m, Nexus__ModelTable *t)
{
    nexus__model_table__init(t);
    t->epoch = m->epoch;
    t->duty_us = m->duty_us;
    t->n_entries = (size_t)m->n;
    if (m->n == 0)
        return;
    Nexus__TableEntry *e = nx_malloc(sizeof *e * (size_t)m->n);
    t->entries = nx_malloc(sizeof *t->entries * (size_t)m->n);
    for (int i = 0; i < m->n; i++) {
        nexus__table_entry__init(&e[i]);
        e[i].session = m->e[i].session;
        e[i].batch = m->e[i].batch;
        t->entries[i] = &e[i];
    }
}

void nx_wire_table_done(Nexus__ModelTable *t)
{
    if (t->n_entries > 0) {
        free(t->entries[0]);
        free(t->entries);
    }
    t->entries = NULL;
    t->n_entries = 0;
}

int nx_wire_table_from(const Nexus__ModelTable *t, const nx_session *sess, int nsess,
                       nx_table_msg **out, char *why, size_t n)
{
    *out = NULL;
    if (t->n_entries > (size_t)nsess) {
        snprintf(why, n, "model table: %zu entries for %d sessions", t->n_entries, nsess);
        return NX_ERR_INVAL;
    }
    if (!isfinite(t->duty_us) || t->duty_us < 0) {
        snprintf(why, n, "model table: duty cycle %g us", t->duty_us);
        return NX_ERR_INVAL;
    }
    for (size_t i = 0; i < t->n_entries; i++) {
        int s = t->entries[i]->session, b = t->entries[i]->batch;
        if (s < 0 || s >= nsess) {
            snprintf(why, n, "model table: entry %zu: session %d out of [0, %d)", i, s, nsess);
            return NX_ERR_INVAL;
        }
        if (b < 1 || b > sess[s].prof->max_batch) {
            snprintf(why, n, "model table: session %d: batch %d out of [1, %d]", s, b,
                     sess[s].prof->max_batch);
            return NX_ERR_INVAL;
        }
        for (size_t j = 0; j < i; j++)
            if (t->entries[j]->session == s) {
                snprintf(why, n, "model table: session %d listed twice", s);
                return NX_ERR_INVAL;
            }
    }
    nx_table_msg *m = nx_table_msg_new((int)t->n_entries);
    m->m.type = NX_MSG_TABLE;
    m->epoch = t->epoch;
    m->duty_us = t->duty_us;
    for (size_t i = 0; i < t->n_entries; i++) {
        m->e[i].session = t->entries[i]->session;
        m->e[i].batch = t->entries[i]->batch;
    }
    *out = m;
    return 0;
}

void nx_wire_routes_to(const nx_routes_msg *m, Nexus__Routes *r)
{
    nexus__routes__init(r);
    r->epoch = m->epoch;
    r->nsess = m->nsess;
    r->n_off = (size_t)m->nsess + 1;
    r->off = (int32_t *)m->off;
    r->n_gpu = (size_t)m->off[m->nsess];
    r->gpu = (int32_t *)m->gpu;
    r->n_weight = r->n_gpu;
    r->weight = m->w;
    r->n_slo_us = (size_t)m->nsess;
    r->slo_us = m->slo_us;
}

int nx_wire_routes_from(const Nexus__Routes *r, int nsess, int ngpu, nx_routes_msg **out,
                        char *why, size_t n)
{
    *out = NULL;
    if (r->nsess != nsess || r->n_off != (size_t)nsess + 1) {
        snprintf(why, n, "routes: %d sessions and %zu offsets, expected %d and %d", r->nsess,
                 r->n_off, nsess, nsess + 1);
        return NX_ERR_INVAL;
    }
    if (r->off[0] != 0 || r->n_gpu != r->n_weight || (size_t)r->off[nsess] != r->n_gpu) {
        snprintf(why, n, "routes: offsets do not cover the %zu routes", r->n_gpu);
        return NX_ERR_INVAL;
    }
    if (r->n_slo_us != (size_t)nsess) {
        snprintf(why, n, "routes: %zu SLOs for %d sessions", r->n_slo_us, nsess);
        return NX_ERR_INVAL;
    }
    for (int s = 0; s < nsess; s++) {
        if (!isfinite(r->slo_us[s]) || r->slo_us[s] <= 0) {
            snprintf(why, n, "routes: session %d: SLO %g us", s, r->slo_us[s]);
            return NX_ERR_INVAL;
        }
        if (r->off[s + 1] < r->off[s]) {
            snprintf(why, n, "routes: offsets decrease at session %d", s);
            return NX_ERR_INVAL;
        }
        for (int k = r->off[s]; k < r->off[s + 1]; k++) {
            if (r->gpu[k] < 0 || r->gpu[k] >= ngpu) {
                snprintf(why, n, "routes: session %d: backend %d out of [0, %d)", s, r->gpu[k],
                         ngpu);
                return NX_ERR_INVAL;
            }
            if (k > r->off[s] && r->gpu[k] <= r->gpu[k - 1]) {
                snprintf(why, n, "routes: session %d: backends not strictly increasing", s);
                return NX_ERR_INVAL;
            }
            if (!isfinite(r->weight[k]) || r->weight[k] <= 0) {
                snprintf(why, n, "routes: session %d: weight %g", s, r->weight[k]);
                return NX_ERR_INVAL;
            }
        }
    }
    nx_routes_msg *m = nx_routes_msg_new(nsess, (int)r->n_gpu);
    m->m.type = NX_MSG_ROUTES;
    m->epoch = r->epoch;
    memcpy(m->off, r->off, sizeof(int) * ((size_t)nsess + 1));
    if (r->n_gpu > 0) { /* a plan that routes nothing: protobuf-c leaves the arrays NULL */
        memcpy(m->gpu, r->gpu, sizeof(int) * r->n_gpu);
        memcpy(m->w, r->weight, sizeof(double) * r->n_gpu);
    }
    memcpy(m->slo_us, r->slo_us, sizeof(double) * (size_t)nsess);
    *out = m;
    return 0;
}

nx_routes_msg *nx_wire_routes_filter(const nx_routes_msg *m, const bool *keep)
{
    int total = 0;
    for (int k = 0; k < m->off[m->nsess]; k++)
        total += !keep || keep[m->gpu[k]];
    nx_routes_msg *f = nx_routes_msg_new(m->nsess, total);
    f->m.type = NX_MSG_ROUTES;
    f->epoch = m->epoch;
    int j = 0;
    for (int s = 0; s < m->nsess; s++) {
        f->off[s] = j;
        for (int k = m->off[s]; k < m->off[s + 1]; k++)
            if (!keep || keep[m->gpu[k]]) {
                f->gpu[j] = m->gpu[k];
                f->w[j++] = m->w[k];
            }
    }
    f->off[m->nsess] = j;
    memcpy(f->slo_us, m->slo_us, sizeof(double) * (size_t)m->nsess);
    return f;
}

void nx_wire_rates_to(const nx_rates_msg *m, Nexus__Rates *r)
{
    nexus__rates__init(r);
    r->nsess = m->nsess;
    r->nsamples = m->nsamples;
    r->n_counts = (size_t)m->nsess * (size_t)m->nsamples;
    r->counts = (uint32_t *)m->counts;
}

int nx_wire_rates_from(const Nexus__Rates *r, int nsess, nx_rates_msg **out, char *why,
                       size_t n)
{
    *out = NULL;
    if (r->nsess != nsess || r->nsamples < 0 || r->nsamples > MAX_SAMPLES ||
        r->n_counts != (size_t)nsess * (size_t)r->nsamples) {
        snprintf(why, n, "rates: %d sessions x %d samples with %zu counts (expected %d sessions)",
                 r->nsess, r->nsamples, r->n_counts, nsess);
        return NX_ERR_INVAL;
    }
    nx_rates_msg *m = nx_rates_msg_new(nsess, r->nsamples);
    m->m.type = NX_MSG_RATES;
    if (r->n_counts > 0)
        memcpy(m->counts, r->counts, sizeof(uint32_t) * r->n_counts);
    *out = m;
    return 0;
}
