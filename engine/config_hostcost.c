/* config_hostcost.c — the parsers of the two tables that describe a backend
 * node beyond its GPU's profiles: the CPU cost table (cluster.cpu_profile:
 * pre- and post-processing per request of each model on one host, as written
 * by nexus-profile --prepost-only) and the GPU interference table
 * (cluster.interference: the latency of one stream while k = 1..n streams of
 * the same model and batch run concurrently). Both use the generic walker of
 * config_walk.c (unknown key = error with PATH:LINE); hostcost.c has what the
 * simulator does with them. No I/O (io/load.c reads the files). */
#include "config_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define IFX_MAX_BATCH 65536

/* ---- CPU cost tables --------------------------------------------------------------- */

static const row prepost_rows[] = {
    R_STR("model", nx_prepost_entry, model, REQ),
    R_DBL("preprocess_us", nx_prepost_entry, pre_us, 0, NOLIM, REQ),
    R_DBL("postprocess_us", nx_prepost_entry, post_us, 0, NOLIM, REQ),
};
static const table prepost_entry_table = TABLE(prepost_rows, .unique = "model",
                                               .unique_off = offsetof(nx_prepost_entry, model));

static const row prepost_top_rows[] = {
    R_STR("host", nx_prepost, host, REQ),
    R_LIST("models", nx_prepost, e, n, nx_prepost_entry, &prepost_entry_table),
};
static const table prepost_table = TABLE(prepost_top_rows);

int nx_prepost_parse(nx_prepost *t, const char *text, size_t len, const char *path,
                     nx_errbuf *eb)
{
    cfg c;
    memset(t, 0, sizeof *t);
    int rc = nx_cfg_load(&c, text, len, path, eb);
    yaml_node_t *root = rc ? NULL : yaml_document_get_root_node(&c.doc);
    if (!rc)
        rc = nx_cfg_walk(&c, root, &prepost_table, t, "");
    if (!rc && t->n == 0)
        rc = nx_cfg_fail(&c, NX_ERR_CONFIG, root, "models", "missing required field 'models'");
    nx_cfg_unload(&c);
    if (rc)
        nx_prepost_free(t);
    return rc;
}

void nx_prepost_free(nx_prepost *t)
{
    free(t->e);
    memset(t, 0, sizeof *t);
}

/* ---- interference tables ------------------------------------------------------------ */

/* latency_us: [l1, ..., lk], each > 0, 1 <= k <= NX_IFX_MAX_K. */
static int set_ifx_latency(cfg *c, yaml_node_t *v, void *obj, const char *field)
{
    static const row lat = { .key = "", .type = F_DOUBLE, .flags = XMIN, .min = 0, .max = NOLIM };
    nx_ifx_entry *e = obj;
    if (v->type != YAML_SEQUENCE_NODE)
        return nx_cfg_fail(c, NX_ERR_CONFIG, v, field,
                           "expected a list of latencies (us) for k = 1, 2, ... concurrent streams");
    int n = (int)(v->data.sequence.items.top - v->data.sequence.items.start);
    if (n < 1 || n > NX_IFX_MAX_K)
        return nx_cfg_fail(c, NX_ERR_CONFIG, v, field, "expected 1 to %d latencies, got %d",
                           NX_IFX_MAX_K, n);
    for (int i = 0; i < n; i++) {
        char sub[FIELD_MAX];
        nx_cfg_field(sub, "%s[%d]", field, i);
        yaml_node_t *d = nx_cfg_item(c, v, i);
        int rc = nx_cfg_want_scalar(c, d, sub, "a number");
        if (!rc)
            rc = nx_cfg_set_number(c, d, &lat, &e->lat_us[i], sub);
        if (rc)
            return rc;
    }
    e->nk = n;
    return 0;
}

static const row ifx_entry_rows[] = {
    R_STR("model", nx_ifx_entry, model, REQ),
    R_STR("precision", nx_ifx_entry, precision, REQ),
    R_INT("batch", nx_ifx_entry, batch, 1, IFX_MAX_BATCH, REQ),
    { .key = "latency_us", .type = F_CUSTOM, .flags = REQ, .custom = set_ifx_latency },
};
static const table ifx_entry_table = TABLE(ifx_entry_rows);

static const row ifx_rows[] = {
    R_STR("gpu", nx_interference, gpu, REQ),
    R_LIST("entries", nx_interference, e, n, nx_ifx_entry, &ifx_entry_table),
};
static const table ifx_table = TABLE(ifx_rows);

static int cmp_ifx(const void *a, const void *b)
{
    const nx_ifx_entry *x = a, *y = b;
    int d = strcmp(x->model, y->model);
    if (!d)
        d = strcmp(x->precision, y->precision);
    return d ? d : (x->batch > y->batch) - (x->batch < y->batch);
}

int nx_interference_parse(nx_interference *t, const char *text, size_t len, const char *path,
                          nx_errbuf *eb)
{
    cfg c;
    memset(t, 0, sizeof *t);
    int rc = nx_cfg_load(&c, text, len, path, eb);
    yaml_node_t *root = rc ? NULL : yaml_document_get_root_node(&c.doc);
    if (!rc)
        rc = nx_cfg_walk(&c, root, &ifx_table, t, "");
    if (!rc && t->n == 0)
        rc = nx_cfg_fail(&c, NX_ERR_CONFIG, root, "entries", "missing required field 'entries'");
    if (!rc) { /* a row given twice names both lines: look before sorting */
        yaml_node_t *list = nx_cfg_find_key(&c, root, "entries", false);
        for (int i = 0; i < t->n && !rc; i++)
            for (int j = 0; j < i && !rc; j++)
                if (cmp_ifx(&t->e[i], &t->e[j]) == 0) {
                    char sub[FIELD_MAX];
                    nx_cfg_field(sub, "entries[%d]", i);
                    rc = nx_cfg_fail(&c, NX_ERR_CONFIG, nx_cfg_item(&c, list, i), sub,
                                     "%s %s batch %d is given twice (also at line %d)",
                                     t->e[i].model, t->e[i].precision, t->e[i].batch,
                                     nx_cfg_line(nx_cfg_item(&c, list, j)));
                }
    }
    nx_cfg_unload(&c);
    if (rc) {
        nx_interference_free(t);
        return rc;
    }
    qsort(t->e, (size_t)t->n, sizeof *t->e, cmp_ifx);
    return 0;
}

void nx_interference_free(nx_interference *t)
{
    free(t->e);
    memset(t, 0, sizeof *t);
}
