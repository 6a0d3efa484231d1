/* config_experiment.c — the experiment file: its tables, defaults and the model lookup.
 *
 * nx_experiment_parse walks an experiment YAML (cluster, apps and their
 * workloads or DAG stages, trace, policy combinations, run, scheduler, batching,
 * search) with the generic walker of config_walk.c; the rows below give every
 * key's type, range and place in nx_experiment, and the check hooks hold what a
 * row cannot say (the keys each workload type takes, increasing steps, stage
 * parents, warmup < duration, failures on existing GPUs). nx_experiment_init
 * sets the defaults a file may leave out. nx_experiment_resolve then binds each
 * app's stages to profiles of the model DB (shared-prefix groups included) and
 * refuses an app whose SLO no batch size can meet. No I/O (io/load.c reads
 * the files). */
#include "config_int.h"
#include "latency.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------------ */
/* The experiment                                                             */

static const char *const wl_names[] = { "poisson", "gamma", "uniform", "piecewise", "trace", NULL };
static const char *const map_names[] = { "round_robin", "zipf", "hash", "weight", NULL };

/* Which of rate, cv, steps each workload type takes: 0 no, 1 optional, 2 required. */
static const char *const wl_opt_keys[3] = { "rate", "cv", "steps" };
static const unsigned char wl_opt_use[][3] = {
    [NX_WL_POISSON] = { 2, 0, 0 },
    [NX_WL_GAMMA] = { 2, 2, 0 },
    [NX_WL_UNIFORM] = { 2, 0, 0 },
    [NX_WL_PIECEWISE] = { 0, 0, 2 },
    [NX_WL_TRACE] = { 1, 0, 0 },
};

static int check_workload(cfg *c, yaml_node_t *n, void *obj, const table *t, uint64_t seen,
                          const char *field)
{
    nx_workload *wl = obj;
    const char *type = wl_names[wl->kind];
    for (int i = 0; i < 3; i++) {
        const char *key = wl_opt_keys[i];
        bool given = nx_cfg_seen(t, seen, key);
        if (given && wl_opt_use[wl->kind][i] == 0)
            return nx_cfg_fail_key(c, n, field, key, true,
                                   "'%s' does not apply to a %s workload", key, type);
        if (!given && wl_opt_use[wl->kind][i] == 2)
            return nx_cfg_fail_key(c, n, field, key, true,
                                   "missing required field '%s' (a %s workload needs it)", key,
                                   type);
    }
    if (wl->kind == NX_WL_TRACE && !nx_cfg_seen(t, seen, "rate"))
        wl->rate = 1.0;   /* the app's share weight */
    yaml_node_t *steps = nx_cfg_find_key(c, n, "steps", false);
    for (int i = 0; i < wl->nsteps; i++) {
        double at = wl->steps[i].at_s;
        char sub[FIELD_MAX];
        nx_cfg_field(sub, "%s.steps[%d].at_s", field, i);
        if (i == 0 && at != 0)
            return nx_cfg_fail(c, NX_ERR_CONFIG, nx_cfg_item(c, steps, i), sub,
                               "the first step must be at 0 s, got %g", at);
        if (i > 0 && at <= wl->steps[i - 1].at_s)
            return nx_cfg_fail(c, NX_ERR_CONFIG, nx_cfg_item(c, steps, i), sub,
                               "steps must have strictly increasing at_s (%g after %g)", at,
                               wl->steps[i - 1].at_s);
    }
    return 0;
}

static void init_combo(void *obj)
{
    nx_combo *k = obj;
    strcpy(k->placement, "squishy");
    strcpy(k->batching, "early_drop");
    strcpy(k->lb, "drr");
    strcpy(k->split, "dp");
    k->prefix = true;
    k->overlap = true;
}

static int check_combo(cfg *c, yaml_node_t *n, void *obj, const table *t, uint64_t seen,
                       const char *field)
{
    nx_combo *k = obj;
    if (nx_cfg_seen(t, seen, "name"))
        return 0;
    if (snprintf(k->name, sizeof k->name, "%s+%s+%s", k->placement, k->batching, k->lb) >=
        (int)sizeof k->name)
        return nx_cfg_fail(c, NX_ERR_CONFIG, n, field,
                           "the default name placement+batching+lb is too long; give a name");
    return 0;
}

static int check_run(cfg *c, yaml_node_t *n, void *obj, const table *t, uint64_t seen,
                     const char *field)
{
    nx_experiment *x = obj;
    if (x->warmup_s < x->duration_s)
        return 0;
    return nx_cfg_fail_key(c, n, field,
                           nx_cfg_seen(t, seen, "warmup_s") ? "warmup_s" : "duration_s", false,
                           "warmup_s (%g) must be less than duration_s (%g)", x->warmup_s,
                           x->duration_s);
}

static int check_search(cfg *c, yaml_node_t *n, void *obj, const table *t, uint64_t seen,
                        const char *field)
{
    nx_experiment *x = obj;
    if (x->search_hi > x->search_lo)
        return 0;
    return nx_cfg_fail_key(c, n, field, nx_cfg_seen(t, seen, "hi") ? "hi" : "lo", false,
                           "hi (%g) must be greater than lo (%g)", x->search_hi, x->search_lo);
}

static int check_experiment(cfg *c, yaml_node_t *n, void *obj, const table *t, uint64_t seen,
                            const char *field)
{
    nx_experiment *x = obj;
    x->has_trace = nx_cfg_seen(t, seen, "trace");
    for (int i = 0; i < x->ncombos; i++) {
        const nx_combo *k = &x->combos[i];
        yaml_node_t *item = nx_cfg_item(c, nx_cfg_find_key(c, n, "policies", false), i);
        char sub[FIELD_MAX];
        nx_cfg_field(sub, "policies[%d]", i);
        if (!k->overlap && x->cpu_cores < 1)
            return nx_cfg_fail_key(c, item, sub, "overlap", false,
                                   "policy '%s': overlap: false needs cluster.cpu_cores (the "
                                   "cores the GPU waits for)", k->name);
        if (k->gpu_sharing == NX_GPU_CONCURRENT && !x->interference[0])
            return nx_cfg_fail_key(c, item, sub, "gpu_sharing", false,
                                   "policy '%s': gpu_sharing: concurrent needs "
                                   "cluster.interference (a table of concurrent-stream "
                                   "latencies)", k->name);
    }
    for (int i = 0; i < x->nfailures; i++)
        if (x->failures[i].gpu >= x->gpus) {
            char sub[FIELD_MAX];
            nx_cfg_field(sub, "run.failures[%d].gpu", i);
            yaml_node_t *list =
                nx_cfg_find_key(c, nx_cfg_find_key(c, n, "run", false), "failures", false);
            return nx_cfg_fail(c, NX_ERR_CONFIG, nx_cfg_item(c, list, i), sub,
                               "GPU %d does not exist (the cluster has %d)", x->failures[i].gpu,
                               x->gpus);
        }
    for (int i = 0; i < x->napps && !x->has_trace; i++) {
        if (x->apps[i].wl.kind != NX_WL_TRACE)
            continue;
        yaml_node_t *app = nx_cfg_item(c, nx_cfg_find_key(c, n, "apps", false), i);
        char sub[FIELD_MAX];
        nx_cfg_field(sub, "apps[%d].workload", i);
        return nx_cfg_fail_key(c, nx_cfg_find_key(c, app, "workload", false), sub, "type", false,
                               "app '%s' uses the trace workload but the experiment has no trace "
                               "section", x->apps[i].name);
    }
    return 0;
}

static const row step_rows[] = {
    R_DBL("at_s", nx_wl_step, at_s, 0, NOLIM, REQ),
    R_DBL("rate", nx_wl_step, rate, 0, NOLIM, REQ),
};
static const table step_table = TABLE(step_rows);

static const row wl_rows[] = {
    R_ENUM("type", nx_workload, kind, wl_names, REQ),
    R_DBL("rate", nx_workload, rate, 0, NOLIM, 0),
    R_DBL("cv", nx_workload, cv, 0, NOLIM, XMIN),
    R_LIST("steps", nx_workload, steps, nsteps, nx_wl_step, &step_table),
};
static const table wl_table = TABLE(wl_rows, .check = check_workload);

static const char *const fanout_names[] = { "constant", "poisson", "trace", NULL };

static const row fanout_rows[] = {
    R_ENUM("type", nx_fanout, kind, fanout_names, REQ),
    R_DBL("value", nx_fanout, value, 0, 1e6, 0),
};
static const table fanout_table = TABLE(fanout_rows);

/* `after: a` or `after: [a, b]`: the parent stages, by name. */
static int set_after(cfg *c, yaml_node_t *v, void *obj, const char *field)
{
    nx_stage *st = obj;
    int n = v->type == YAML_SEQUENCE_NODE
                ? (int)(v->data.sequence.items.top - v->data.sequence.items.start)
                : 1;
    if (v->type != YAML_SEQUENCE_NODE && v->type != YAML_SCALAR_NODE)
        return nx_cfg_fail(c, NX_ERR_CONFIG, v, field, "expected a stage name or a list of them");
    if (n < 1 || n > NX_STAGE_MAX_PARENTS)
        return nx_cfg_fail(c, NX_ERR_CONFIG, v, field, "a stage has 1 to %d parents, not %d",
                           NX_STAGE_MAX_PARENTS, n);
    for (int i = 0; i < n; i++) {
        yaml_node_t *item = v->type == YAML_SEQUENCE_NODE ? nx_cfg_item(c, v, i) : v;
        int rc = nx_cfg_want_scalar(c, item, field, "a stage name");
        if (rc)
            return rc;
        if (strlen(nx_cfg_scalar(item)) >= NX_NAME_MAX)
            return nx_cfg_fail(c, NX_ERR_CONFIG, item, field, "name too long");
        strcpy(st->after[i], nx_cfg_scalar(item));
    }
    st->nparents = n;
    return 0;
}

static void init_stage(void *obj)
{
    nx_stage *st = obj;
    st->group = -1;
    st->fanout.kind = NX_FANOUT_CONST;
    st->fanout.value = 1;
}

static const row stage_rows[] = {
    R_STR("name", nx_stage, name, REQ),
    R_STR("model", nx_stage, model, REQ),
    R_STR("precision", nx_stage, precision, 0),
    R_CUSTOM("after", set_after),
    { .key = "fanout", .type = F_MAP, .off = offsetof(nx_stage, fanout), .sub = &fanout_table },
};
static const table stage_table = TABLE(stage_rows, .init = init_stage,
                                       .unique = "stage", .unique_off = offsetof(nx_stage, name));

/* An app is one model (model/precision) or a DAG of stages, not both. Stages
 * list parents before children; `after` names resolve to indices here. A
 * single-model app becomes one stage named like the app. */
static int check_app(cfg *c, yaml_node_t *n, void *obj, const table *t, uint64_t seen,
                     const char *field)
{
    nx_app *a = obj;
    bool model = nx_cfg_seen(t, seen, "model"), stages = nx_cfg_seen(t, seen, "stages");
    if (model == stages)
        return nx_cfg_fail(c, NX_ERR_CONFIG, n, field,
                           model ? "an app has either 'model' or 'stages', not both"
                          : "missing required field 'model' (or 'stages' for a DAG app)");
    if (model) {
        if (nx_cfg_seen(t, seen, "stages"))
            return 0;
        a->stages = nx_calloc(1, sizeof(nx_stage));
        a->nstages = 1;
        init_stage(&a->stages[0]);
        a->stages[0].group = -1;
        snprintf(a->stages[0].name, sizeof a->stages[0].name, "%s", a->name);
        snprintf(a->stages[0].model, sizeof a->stages[0].model, "%s", a->model);
        snprintf(a->stages[0].precision, sizeof a->stages[0].precision, "%s", a->precision);
        return 0;
    }
    if (nx_cfg_seen(t, seen, "precision"))
        return nx_cfg_fail_key(c, n, field, "precision", true,
                               "'precision' belongs to each stage of a DAG app");
    if (a->nstages > NX_APP_MAX_STAGES)
        return nx_cfg_fail_key(c, n, field, "stages", true, "at most %d stages", NX_APP_MAX_STAGES);
    yaml_node_t *list = nx_cfg_find_key(c, n, "stages", false);
    for (int i = 0; i < a->nstages; i++) {
        nx_stage *st = &a->stages[i];
        char sub[FIELD_MAX];
        nx_cfg_field(sub, "%s.stages[%d].after", field, i);
        for (int k = 0; k < st->nparents; k++) {
            int j = 0;
            while (j < i && strcmp(a->stages[j].name, st->after[k]) != 0)
                j++;
            if (j == i)
                return nx_cfg_fail(c, NX_ERR_CONFIG, nx_cfg_item(c, list, i), sub,
                                   "'%s' is not an earlier stage of app '%s' (list parents first)",
                                   st->after[k], a->name);
            for (int q = 0; q < k; q++)
                if (st->parents[q] == j)
                    return nx_cfg_fail(c, NX_ERR_CONFIG, nx_cfg_item(c, list, i), sub,
                                       "parent '%s' listed twice", st->after[k]);
            st->parents[k] = j;
        }
    }
    if (a->stages[0].nparents != 0)
        return nx_cfg_fail(c, NX_ERR_CONFIG, nx_cfg_item(c, list, 0), field,
                           "the first stage must be a root");
    return 0;
}

static const row app_rows[] = {
    R_STR("name", nx_app, name, REQ),
    R_STR("model", nx_app, model, 0),
    R_STR("precision", nx_app, precision, 0),
    R_DBL("slo_ms", nx_app, slo_ms, 0, NOLIM, REQ | XMIN),
    R_MAP("workload", offsetof(nx_app, wl), &wl_table, REQ),
    R_LIST("stages", nx_app, stages, nstages, nx_stage, &stage_table),
};
static const table app_table = TABLE(app_rows, .check = check_app, .unique = "app",
                                     .unique_off = offsetof(nx_app, name));

static const row cluster_rows[] = {
    R_INT("gpus", nx_experiment, gpus, 1, 100000, REQ),
    R_STR("gpu_type", nx_experiment, gpu_type, 0),
    R_DBLX("gpu_mem_gb", nx_experiment, gpu_mem_mb, 0, NOLIM, XMIN, 1024),
    R_PATH("profiles", nx_experiment, profile_dir, REQ),
    R_INT("cpu_cores", nx_experiment, cpu_cores, 0, 4096, 0),
    R_PATH("cpu_profile", nx_experiment, cpu_profile, 0),
    R_PATH("interference", nx_experiment, interference, 0),
    R_DBL("batch_overhead_us", nx_experiment, batch_overhead_us, 0, 1e6, 0),
    R_DBL("switch_overhead", nx_experiment, switch_overhead, 0, 10, 0),
};
static const table cluster_table = TABLE(cluster_rows);

static const row trace_rows[] = {
    R_PATH("file", nx_trace_cfg, file, REQ),
    R_DBL("time_scale", nx_trace_cfg, time_scale, 0, NOLIM, XMIN),
    R_DBL("rate_scale", nx_trace_cfg, rate_scale, 0, NOLIM, XMIN),
    R_ENUM("map", nx_trace_cfg, map, map_names, 0),
    R_DBL("zipf_s", nx_trace_cfg, zipf_s, 0, NOLIM, XMIN),
    R_BOOL("loop", nx_trace_cfg, loop),
};
static const table trace_table = TABLE(trace_rows);

static const char *const sharing_names[] = { "exclusive", "concurrent", NULL };

static const row combo_rows[] = {
    R_STR("name", nx_combo, name, 0),
    R_STR("placement", nx_combo, placement, 0),
    R_STR("batching", nx_combo, batching, 0),
    R_STR("lb", nx_combo, lb, 0),
    R_STR("split", nx_combo, split, 0),
    R_BOOL("prefix_batching", nx_combo, prefix),
    R_BOOL("overlap", nx_combo, overlap),
    R_ENUM("gpu_sharing", nx_combo, gpu_sharing, sharing_names, 0),
};
static const table combo_table = TABLE(combo_rows, .init = init_combo, .check = check_combo,
                                       .unique = "policy", .unique_off = offsetof(nx_combo, name));

static const row failure_rows[] = {
    R_INT("gpu", nx_failure, gpu, 0, 100000, REQ),
    R_DBL("at_s", nx_failure, at_s, 0, NOLIM, REQ),
    R_DBL("down_s", nx_failure, down_s, 0, NOLIM, 0),
};
static const table failure_table = TABLE(failure_rows);

static const row run_rows[] = {
    R_DBL("duration_s", nx_experiment, duration_s, 0, NOLIM, XMIN),
    R_DBL("warmup_s", nx_experiment, warmup_s, 0, NOLIM, 0),
    R_U64("seed", nx_experiment, seed),
    R_DBL("net_delay_us", nx_experiment, net_delay_us, 0, NOLIM, 0),
    R_DBL("net_jitter_us", nx_experiment, net_jitter_us, 0, NOLIM, 0),
    R_LIST("failures", nx_experiment, failures, nfailures, nx_failure, &failure_table),
};
static const table run_table = TABLE(run_rows, .check = check_run);

static const row sched_rows[] = {
    R_DBL("epoch_s", nx_sched_params, epoch_s, 0, NOLIM, XMIN),
    R_DBL("min_epoch_s", nx_sched_params, min_epoch_s, 0, NOLIM, 0),
    R_DBL("beacon_s", nx_sched_params, beacon_s, 0, NOLIM, XMIN),
    R_DBL("report_s", nx_sched_params, report_s, 0, NOLIM, XMIN),
    R_DBL("avg_interval_s", nx_sched_params, avg_interval_s, 0, NOLIM, XMIN),
    R_INT("history", nx_sched_params, history, 1, 1000000, 0),
    R_DBL("trigger_low", nx_sched_params, low, 0, 1, XMIN),
    R_DBL("trigger_high", nx_sched_params, high, 1, NOLIM, 0),
    R_DBL("profile_multiplier", nx_sched_params, profile_multiplier, 0, NOLIM, XMIN),
    R_BOOL("adaptive", nx_sched_params, adaptive),
    R_DBL("split_gain", nx_sched_params, split_gain, 0, 1, XMAX),
    R_INT("split_steps", nx_sched_params, split_steps, 2, 100000, 0),
    R_DBL("keepalive_timeout_s", nx_sched_params, keepalive_timeout_s, 0, NOLIM, 0),
};
static const table sched_table = TABLE(sched_rows);

static const row batch_rows[] = {
    R_DBL("tf_timeout_ms", nx_batch_params, tf_timeout_ms, 0, NOLIM, 0),
    R_INT("aimd_step", nx_batch_params, aimd_step, 1, 1000000, 0),
    R_DBL("aimd_backoff", nx_batch_params, aimd_backoff, 0, 1, XMIN | XMAX),
    R_DBL("dispatch_slack_us", nx_batch_params, dispatch_slack_us, 0, NOLIM, 0),
};
static const table batch_table = TABLE(batch_rows);

static const row search_rows[] = {
    R_DBL("lo", nx_experiment, search_lo, 0, NOLIM, XMIN),
    R_DBL("hi", nx_experiment, search_hi, 0, NOLIM, XMIN),
    R_INT("iters", nx_experiment, search_iters, 1, 100, 0),
};
static const table search_table = TABLE(search_rows, .check = check_search);

static const row experiment_rows[] = {
    R_STR("name", nx_experiment, name, REQ),
    R_MAP("cluster", 0, &cluster_table, REQ),
    R_LIST("apps", nx_experiment, apps, napps, nx_app, &app_table),
    R_MAP("trace", offsetof(nx_experiment, trace), &trace_table, 0),
    R_LIST("policies", nx_experiment, combos, ncombos, nx_combo, &combo_table),
    R_MAP("run", 0, &run_table, 0),
    R_MAP("scheduler", offsetof(nx_experiment, sched), &sched_table, 0),
    R_MAP("batching", offsetof(nx_experiment, batch), &batch_table, 0),
    R_MAP("search", 0, &search_table, 0),
};
static const table experiment_table = TABLE(experiment_rows, .check = check_experiment);

void nx_experiment_init(nx_experiment *x)
{
    memset(x, 0, sizeof *x);
    x->gpu_mem_mb = 80 * 1024;
    x->trace.time_scale = 1;
    x->trace.rate_scale = 1;
    x->trace.map = NX_TRACE_MAP_ROUND_ROBIN;
    x->trace.zipf_s = 0.9;
    x->trace.loop = true;
    x->duration_s = 60;
    x->warmup_s = 10;
    x->seed = 1;
    x->net_delay_us = 100;
    x->net_jitter_us = 0;
    x->sched = (nx_sched_params){
        .epoch_s = 30, .min_epoch_s = 10, .beacon_s = 1, .report_s = 2, .avg_interval_s = 10,
        .history = 30, .low = 0.8, .high = 1.1, .profile_multiplier = 1.15, .adaptive = true,
        .split_gain = 0.1, .split_steps = 100, .keepalive_timeout_s = 3,
    };
    x->batch = (nx_batch_params){ .tf_timeout_ms = 1, .aimd_step = 2, .aimd_backoff = 0.9,
                                  .dispatch_slack_us = 100 };
    x->search_lo = 0.05;
    x->search_hi = 4;
    x->search_iters = 10;
}

void nx_experiment_free(nx_experiment *x)
{
    for (int i = 0; i < x->napps; i++) {
        free(x->apps[i].wl.steps);
        free(x->apps[i].stages);
    }
    free(x->apps);
    free(x->combos);
    free(x->failures);
    nx_trace_free(&x->trace.trace);
    nx_prepost_free(&x->prepost);
    nx_interference_free(&x->ifx);
    nx_experiment_init(x);
}

int nx_experiment_parse(nx_experiment *x, const char *text, size_t len, const char *path,
                        nx_errbuf *eb)
{
    cfg c;
    int rc = nx_cfg_load(&c, text, len, path, eb);
    snprintf(x->path, sizeof x->path, "%s", c.path);
    if (!rc)
        rc = nx_cfg_walk(&c, yaml_document_get_root_node(&c.doc), &experiment_table, x, "");
    nx_cfg_unload(&c);
    return rc;
}

/* ------------------------------------------------------------------------ */
/* Resolving apps against the model DB                                        */

/* "a (fp16, fp32), b (fp32)" : the models in db, with their precisions. */
static void list_models(char *buf, size_t size, const nx_modeldb *db)
{
    size_t used = 0;
    buf[0] = 0;
    for (int i = 0; i < db->n && used < size; i++) {
        const nx_profile *p = &db->profiles[i];
        if (nx_modeldb_find(db, p->model, NULL) != p)
            continue;   /* listed with its first profile */
        used += (size_t)snprintf(buf + used, size - used, "%s%s (", used ? ", " : "", p->model);
        for (int j = i; j < db->n && used < size; j++)
            if (strcmp(db->profiles[j].model, p->model) == 0)
                used += (size_t)snprintf(buf + used, size - used, "%s%s", j > i ? ", " : "",
                                         db->profiles[j].precision);
        if (used < size)
            used += (size_t)snprintf(buf + used, size - used, ")");
    }
    if (used >= size && size > 4)
        strcpy(buf + size - 4, "...");
}

/* Earliest finish (µs) of each stage of an app if every call ran alone at
 * batch 1 with the saturated rule's 2 x l(1), plus CPU and network time: the
 * least SLO the app can have. */
static double min_path_us(const nx_experiment *x, const nx_app *a, int *worst)
{
    double fin[NX_APP_MAX_STAGES], mult = x->sched.profile_multiplier, best = 0;
    for (int v = 0; v < a->nstages; v++) {
        const nx_stage *st = &a->stages[v];
        const nx_profile *p = st->profile;
        double start = 0;
        for (int k = 0; k < st->nparents; k++)
            if (fin[st->parents[k]] > start)
                start = fin[st->parents[k]];
        fin[v] = start + 2 * nx_latency_est_us(p, 1, mult) + p->pre_us + p->post_us +
                 2 * x->net_delay_us;
        if (fin[v] > best) {
            best = fin[v];
            *worst = v;
        }
    }
    return best;
}

int nx_experiment_resolve(nx_experiment *x, const nx_modeldb *db, nx_errbuf *eb)
{
    for (int i = 0; i < x->napps; i++) {
        nx_app *a = &x->apps[i];
        for (int v = 0; v < a->nstages; v++) {
            nx_stage *st = &a->stages[v];
            const nx_profile *p = nx_modeldb_find(db, st->model, st->precision);
            int member = -1, g = p ? -1 : nx_modeldb_find_member(db, st->model, &member);
            st->group = g;
            if (g >= 0) { /* a shared-prefix variant: its profiles come from the group */
                const nx_prefix_group *pg = &db->groups[g];
                const char *need[3] = {pg->models[member].full, pg->prefix,
                                       pg->models[member].suffix};
                const nx_profile *got[3];
                for (int k = 0; k < 3; k++) {
                    got[k] = nx_modeldb_find(db, need[k], st->precision);
                    if (!got[k]) {
                        nx_err_set(eb, NX_ERR_NOTFOUND,
                                   "%s: app '%s': model '%s' of prefix group '%s' needs profile '%s'%s%s "
                                   "in %s, which is missing",
                                   x->path, a->name, st->model, pg->name, need[k],
                                   st->precision[0] ? " precision " : "", st->precision,
                                   x->profile_dir);
                        return NX_ERR_NOTFOUND;
                    }
                }
                p = got[0];
                st->prefix = got[1];
                st->suffix = got[2];
            }
            if (!p) {
                char have[300];
                list_models(have, sizeof have, db);
                nx_err_set(eb, NX_ERR_NOTFOUND,
                           "%s: app '%s'%s%s%s: unknown model '%s'%s%s%s; profiles in %s have: %s",
                           x->path, a->name, a->nstages > 1 ? " (stage '" : "",
                           a->nstages > 1 ? st->name : "", a->nstages > 1 ? "')" : "", st->model,
                           st->precision[0] ? " (precision " : "", st->precision,
                           st->precision[0] ? ")" : "", x->profile_dir, db->n ? have : "nothing");
                return NX_ERR_NOTFOUND;
            }
            st->profile = p;
            if (x->prepost.n > 0) { /* a cost table replaces the profiles': it must cover the app */
                int k = 0;
                while (k < x->prepost.n && strcmp(x->prepost.e[k].model, p->model) != 0)
                    k++;
                if (k == x->prepost.n) {
                    nx_err_set(eb, NX_ERR_NOTFOUND,
                               "%s: app '%s': model '%s' has no row in cluster.cpu_profile %s",
                               x->path, a->name, p->model, x->cpu_profile);
                    return NX_ERR_NOTFOUND;
                }
            }
            if (nx_profile_mem(p, 1) > x->gpu_mem_mb) {
                nx_err_set(eb, NX_ERR_INFEASIBLE,
                           "%s: app '%s': model '%s' needs %g MB at batch 1; a GPU has %g MB",
                           x->path, a->name, st->model, nx_profile_mem(p, 1), x->gpu_mem_mb);
                return NX_ERR_INFEASIBLE;
            }
            if (st->fanout.kind == NX_FANOUT_TRACE &&
                (!x->has_trace || !x->trace.trace.size)) {
                nx_err_set(eb, NX_ERR_CONFIG,
                           "%s: app '%s' stage '%s': a trace fan-out needs a trace section whose "
                           "file has a numeric second column",
                           x->path, a->name, st->name);
                return NX_ERR_CONFIG;
            }
        }
        a->profile = a->stages[0].profile;
        int worst = 0;
        double need = min_path_us(x, a, &worst);
        if (need > a->slo_ms * 1000.0) {
            const nx_stage *st = &a->stages[worst];
            const nx_profile *p = st->profile;
            double l1 = nx_latency_est_us(p, 1, x->sched.profile_multiplier);
            if (a->nstages == 1)
                nx_err_set(eb, NX_ERR_INFEASIBLE,
                           "%s: app '%s': no batch size of model '%s' fits its %g ms SLO (batch 1 "
                           "needs 2 x %.3g ms on the GPU + %.3g ms pre/post-processing + %.3g ms "
                           "network = %.4g ms)",
                           x->path, a->name, st->model, a->slo_ms, l1 / 1000,
                           (p->pre_us + p->post_us) / 1000, 2 * x->net_delay_us / 1000, need / 1000);
            else
                nx_err_set(eb, NX_ERR_INFEASIBLE,
                           "%s: app '%s': its %g ms SLO is too short: the path to stage '%s' needs "
                           "%.4g ms at batch 1 (2 x l(1) per stage + CPU + network)",
                           x->path, a->name, a->slo_ms, st->name, need / 1000);
            return NX_ERR_INFEASIBLE;
        }
        if (a->wl.kind == NX_WL_TRACE && (!x->has_trace || x->trace.trace.n == 0)) {
            nx_err_set(eb, NX_ERR_CONFIG, "%s: app '%s' uses the trace workload but %s", x->path,
                       a->name, x->has_trace ? "no trace was loaded" : "there is no trace section");
            return NX_ERR_CONFIG;
        }
    }
    return 0;
}
