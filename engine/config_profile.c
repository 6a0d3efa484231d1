/* config_profile.c — the profile and model DB parsers.
 *
 * nx_profile_parse reads one model's profile (model, GPU, precision, input
 * shape, pre/post-processing cost and the latency of each measured batch size)
 * with the generic walker of config_walk.c, refuses a batch size given twice and
 * hands the points to nx_profile_finish (profile.c), which fills the dense
 * per-batch tables. nx_modeldb_parse reads modeldb.yml, the shared-prefix
 * groups of a profile directory (a prefix model and, for each variant, its full
 * and suffix models). No I/O (io/load.c reads the files). */
#include "config_int.h"

#include <stdio.h>
#include <stdlib.h>

#define MAX_BATCH 65536       /* a profile's batch sizes: dense tables are this long at most */

/* ------------------------------------------------------------------------ */
/* Profiles                                                                   */

static int set_input_shape(cfg *c, yaml_node_t *v, void *obj, const char *field)
{
    static const row dim = { .key = "", .type = F_INT, .min = 1, .max = 1 << 20 };
    nx_profile *p = obj;
    if (v->type != YAML_SEQUENCE_NODE)
        return nx_cfg_fail(c, NX_ERR_CONFIG, v, field, "expected a list of dimensions");
    int n = (int)(v->data.sequence.items.top - v->data.sequence.items.start);
    int cap = (int)(sizeof p->input_shape / sizeof p->input_shape[0]);
    if (n < 1 || n > cap)
        return nx_cfg_fail(c, NX_ERR_CONFIG, v, field, "expected 1 to %d dimensions, got %d", cap,
                           n);
    for (int i = 0; i < n; i++) {
        char sub[FIELD_MAX];
        nx_cfg_field(sub, "%s[%d]", field, i);
        yaml_node_t *d = nx_cfg_item(c, v, i);
        int rc = nx_cfg_want_scalar(c, d, sub, "an integer");
        if (!rc)
            rc = nx_cfg_set_number(c, d, &dim, &p->input_shape[i], sub);
        if (rc)
            return rc;
    }
    p->input_ndim = n;
    return 0;
}

static int check_profile(cfg *c, yaml_node_t *n, void *obj, const table *t, uint64_t seen,
                         const char *field)
{
    nx_profile *p = obj;
    int *line = nx_calloc(MAX_BATCH + 1, sizeof *line);   /* batch -> line it was given on */
    yaml_node_t *batches = nx_cfg_find_key(c, n, "batches", false);
    int rc = 0;
    for (int i = 0; i < p->npoints && !rc; i++) {
        int b = p->points[i].batch;
        yaml_node_t *item = nx_cfg_item(c, batches, i);
        if (line[b]) {
            char sub[FIELD_MAX];
            nx_cfg_field(sub, "batches[%d].batch", i);
            rc = nx_cfg_fail(c, NX_ERR_CONFIG, item, sub,
                             "batch %d is given twice (also at line %d)", b, line[b]);
        }
        line[b] = nx_cfg_line(item);
    }
    free(line);
    return rc;
}

static const row point_rows[] = {
    R_INT("batch", nx_profile_point, batch, 1, MAX_BATCH, REQ),
    R_DBL("mean_us", nx_profile_point, mean_us, 0, NOLIM, REQ | XMIN),
    R_DBL("std_us", nx_profile_point, std_us, 0, NOLIM, 0),
    R_DBL("mem_mb", nx_profile_point, mem_mb, 0, NOLIM, 0),
};
static const table point_table = TABLE(point_rows);

static const row profile_rows[] = {
    R_STR("model", nx_profile, model, REQ),
    R_STR("gpu", nx_profile, gpu, REQ),
    R_STR("precision", nx_profile, precision, REQ),
    R_CUSTOM("input_shape", set_input_shape),
    R_DBL("preprocess_us", nx_profile, pre_us, 0, NOLIM, 0),
    R_DBL("postprocess_us", nx_profile, post_us, 0, NOLIM, 0),
    R_BOOL("padded", nx_profile, padded),
    R_STRDUP("provenance", nx_profile, provenance),
    R_LIST("batches", nx_profile, points, npoints, nx_profile_point, &point_table),
};
static const table profile_table = TABLE(profile_rows, .check = check_profile);

int nx_profile_parse(nx_profile *p, const char *text, size_t len, const char *path,
                     nx_errbuf *eb)
{
    cfg c;
    int rc = nx_cfg_load(&c, text, len, path, eb);
    if (!rc)
        rc = nx_cfg_walk(&c, yaml_document_get_root_node(&c.doc), &profile_table, p, "");
    nx_cfg_unload(&c);
    if (!rc) {
        nx_errbuf local;
        nx_err_clear(&local);
        if ((rc = nx_profile_finish(p, &local)))
            nx_err_set(eb, rc, "%s: %s", c.path, local.msg);
    }
    if (rc)
        nx_profile_free(p);
    return rc;
}

/* ------------------------------------------------------------------------ */
/* The model DB (modeldb.yml)                                                 */

static const row member_rows[] = {
    R_STR("model", nx_prefix_member, model, REQ),
    R_STR("full", nx_prefix_member, full, REQ),
    R_STR("suffix", nx_prefix_member, suffix, REQ),
};
static const table member_table = TABLE(member_rows, .unique = "model",
                                        .unique_off = offsetof(nx_prefix_member, model));

static const row group_rows[] = {
    R_STR("name", nx_prefix_group, name, REQ),
    R_STR("prefix", nx_prefix_group, prefix, REQ),
    R_LIST("models", nx_prefix_group, models, nmodels, nx_prefix_member, &member_table),
};
static const table group_table = TABLE(group_rows, .unique = "group",
                                       .unique_off = offsetof(nx_prefix_group, name));

static const row modeldb_rows[] = {
    R_LIST("share_prefix", nx_modeldb, groups, ngroups, nx_prefix_group, &group_table),
};
static const table modeldb_table = TABLE(modeldb_rows);

int nx_modeldb_parse(nx_modeldb *db, const char *text, size_t len, const char *path,
                     nx_errbuf *eb)
{
    cfg c;
    int rc = nx_cfg_load(&c, text, len, path, eb);
    if (!rc)
        rc = nx_cfg_walk(&c, yaml_document_get_root_node(&c.doc), &modeldb_table, db, "");
    nx_cfg_unload(&c);
    return rc;
}
