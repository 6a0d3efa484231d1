/* config.c — the experiment, profile and trace parsers, from memory buffers.
 *
 * YAML is loaded with libyaml into its document tree (mappings, sequences and
 * scalars, each with its line), then walked with tables in the nginx-directive
 * style: a row per key gives the type, where the value goes in the struct, the
 * accepted range and whether the key is required, and a handful of generic
 * setters do the rest. A nested section is a row whose sub-table describes it; a
 * list is a row whose sub-table describes each element. What one row cannot say
 * (warmup < duration, the keys each workload type takes, increasing steps) is a
 * table's check hook, run after its keys are set.
 *
 * Every error goes to the nx_errbuf as "PATH:LINE: what is wrong (field 'a[2].b')"
 * and returns a negative nx_err; the walk stops at the first one. Arrays are
 * attached to their owner as soon as they are allocated, so the owner's free
 * function releases everything after a failure at any point.
 *
 * The trace CSV parser and nx_experiment_resolve (model lookup and the SLO
 * feasibility check) live here too; none of this does I/O (sim/load.c reads files). */
#include "experiment.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <yaml.h>

#define NOLIM HUGE_VAL
#define FIELD_MAX 256
#define MAX_BATCH 65536       /* a profile's batch sizes: dense tables are this long at most */
#define ALIAS_FACTOR 16       /* a walk may visit each YAML node this many times (aliases) */

/* ------------------------------------------------------------------------ */
/* The parse context                                                          */

typedef struct cfg {
    yaml_document_t doc;
    bool loaded;           /* doc holds a document to delete */
    const char *path;      /* for messages */
    char dir[512];         /* directory of path, for relative paths ("" = none) */
    long budget;           /* node visits left: bounds the work aliases can cause */
    nx_errbuf *eb;
} cfg;

static int line_of(const yaml_node_t *n)
{
    return (int)n->start_mark.line + 1;
}

static yaml_node_t *node_at(cfg *c, int id)
{
    return yaml_document_get_node(&c->doc, id);
}

/* Record "PATH:LINE: <what> (field 'F')" and return rc. */
static int vfail(cfg *c, int rc, const yaml_node_t *n, const char *field, const char *fmt,
                 va_list ap)
{
    char what[400];
    vsnprintf(what, sizeof what, fmt, ap);
    if (field && field[0])
        nx_err_set(c->eb, rc, "%s:%d: %s (field '%s')", c->path, n ? line_of(n) : 1, what, field);
    else
        nx_err_set(c->eb, rc, "%s:%d: %s", c->path, n ? line_of(n) : 1, what);
    return rc;
}

static int fail(cfg *c, int rc, const yaml_node_t *n, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
static int fail(cfg *c, int rc, const yaml_node_t *n, const char *field, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vfail(c, rc, n, field, fmt, ap);
    va_end(ap);
    return rc;
}

/* A field path such as "apps[2].workload" into dst[FIELD_MAX] (truncated if longer). */
static void field_fmt(char *dst, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void field_fmt(char *dst, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(dst, FIELD_MAX, fmt, ap);
    va_end(ap);
}

/* "a.b" or "b" at the top level. */
static void join_field(char *dst, const char *field, const char *key)
{
    field_fmt(dst, "%s%s%s", field, field[0] ? "." : "", key);
}

/* The value node of `key` in mapping n (or its key node with want_key), or NULL. */
static yaml_node_t *find_key(cfg *c, yaml_node_t *n, const char *key, bool want_key)
{
    if (!n || n->type != YAML_MAPPING_NODE)
        return NULL;
    for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
        yaml_node_t *k = node_at(c, p->key);
        if (k && k->type == YAML_SCALAR_NODE && strcmp((char *)k->data.scalar.value, key) == 0)
            return want_key ? k : node_at(c, p->value);
    }
    return NULL;
}

/* A config error about `key` of section n (at field): at the key's line when
 * it is given (its key node with at_key, else its value), else at the section's. */
static int fail_key(cfg *c, yaml_node_t *n, const char *field, const char *key, bool at_key,
                    const char *fmt, ...) __attribute__((format(printf, 6, 7)));
static int fail_key(cfg *c, yaml_node_t *n, const char *field, const char *key, bool at_key,
                    const char *fmt, ...)
{
    char sub[FIELD_MAX];
    join_field(sub, field, key);
    yaml_node_t *at = find_key(c, n, key, at_key);
    va_list ap;
    va_start(ap, fmt);
    int rc = vfail(c, NX_ERR_CONFIG, at ? at : n, sub, fmt, ap);
    va_end(ap);
    return rc;
}

/* Item i of sequence n, or NULL. */
static yaml_node_t *seq_item(cfg *c, yaml_node_t *n, int i)
{
    if (!n || n->type != YAML_SEQUENCE_NODE || i >= n->data.sequence.items.top - n->data.sequence.items.start)
        return NULL;
    return node_at(c, n->data.sequence.items.start[i]);
}

static int visit(cfg *c, yaml_node_t *n, const char *field)
{
    if (--c->budget < 0)
        return fail(c, NX_ERR_CONFIG, n, field, "the document expands too much through aliases");
    return 0;
}

/* libyaml's complaint: where it noticed, and where the construct it was in began. */
static void syntax_error(cfg *c, const yaml_parser_t *p)
{
    char ctx[160] = "";
    if (p->context)
        snprintf(ctx, sizeof ctx, " %s that starts at line %zu", p->context,
                 p->context_mark.line + 1);
    nx_err_set(c->eb, NX_ERR_PARSE, "%s:%zu: YAML syntax error: %s%s", c->path,
               p->problem_mark.line + 1, p->problem ? p->problem : "malformed input", ctx);
}

/* Load text into c->doc. Exactly one document with a mapping at its root. */
static int load_yaml(cfg *c, const char *text, size_t len, const char *path, nx_errbuf *eb)
{
    memset(c, 0, sizeof *c);
    c->path = path ? path : "<input>";
    c->eb = eb;
    const char *slash = strrchr(c->path, '/');
    if (slash)
        snprintf(c->dir, sizeof c->dir, "%.*s", slash == c->path ? 1 : (int)(slash - c->path), c->path);

    yaml_parser_t p;
    if (!yaml_parser_initialize(&p)) {
        nx_err_set(eb, NX_ERR_NOMEM, "%s: cannot initialize the YAML parser", c->path);
        return NX_ERR_NOMEM;
    }
    yaml_parser_set_input_string(&p, (const unsigned char *)text, len);
    int rc = 0;
    if (!yaml_parser_load(&p, &c->doc)) {
        syntax_error(c, &p);
        rc = NX_ERR_PARSE;
    } else {
        c->loaded = true;
        yaml_document_t extra;
        if (!yaml_parser_load(&p, &extra)) {
            syntax_error(c, &p);
            rc = NX_ERR_PARSE;
        } else {
            yaml_node_t *second = yaml_document_get_root_node(&extra);
            if (second) {
                nx_err_set(eb, NX_ERR_PARSE, "%s:%d: a second YAML document; one file holds one",
                           c->path, line_of(second));
                rc = NX_ERR_PARSE;
            }
            yaml_document_delete(&extra);
        }
    }
    yaml_parser_delete(&p);
    if (rc)
        return rc;
    yaml_node_t *root = yaml_document_get_root_node(&c->doc);
    if (!root || root->type != YAML_MAPPING_NODE) {
        nx_err_set(eb, NX_ERR_CONFIG, "%s:%d: expected a mapping of keys at the top level%s",
                   c->path, root ? line_of(root) : 1, root ? "" : " (the document is empty)");
        return NX_ERR_CONFIG;
    }
    c->budget = ALIAS_FACTOR * (long)(c->doc.nodes.top - c->doc.nodes.start) + 1024;
    return 0;
}

static void unload_yaml(cfg *c)
{
    if (c->loaded)
        yaml_document_delete(&c->doc);
    c->loaded = false;
}

/* ------------------------------------------------------------------------ */
/* Tables                                                                     */

typedef enum ftype {
    F_STR,      /* char[size] */
    F_PATH,     /* char[size], relative to the file's directory */
    F_STRDUP,   /* char *, malloc'd */
    F_DOUBLE,   /* double, stored times `scale` when scale != 0 */
    F_INT,      /* int */
    F_U64,      /* uint64_t */
    F_BOOL,     /* bool: true/false/yes/no */
    F_ENUM,     /* an enum (int-sized) named by `names` */
    F_MAP,      /* a section: `sub` describes the struct at `off` */
    F_LIST,     /* a non-empty list: pointer at `off`, int count at `count_off`,
                   elements of `size` bytes described by `sub` */
    F_CUSTOM,   /* `custom` sets it (gets the whole object) */
} ftype;

enum {
    REQ = 1,    /* the key must be present */
    XMIN = 2,   /* the minimum is excluded: value > min */
    XMAX = 4,   /* the maximum is excluded: value < max */
};

typedef struct table table;

typedef struct row {
    const char *key;
    ftype type;
    unsigned flags;
    size_t off;
    size_t size;
    double min, max;
    double scale;
    const char *const *names;
    const table *sub;
    size_t count_off;
    int (*custom)(cfg *c, yaml_node_t *v, void *obj, const char *field);
} row;

struct table {
    const row *rows;
    int n;
    void (*init)(void *obj);  /* list elements: defaults before the walk */
    /* after the keys are set; `seen` has bit i set when rows[i] was given */
    int (*check)(cfg *c, yaml_node_t *n, void *obj, const table *t, uint64_t seen,
                 const char *field);
    const char *unique;       /* list elements: their char[] name at unique_off is unique */
    size_t unique_off;
};

#define TABLE(rows_, ...) { .rows = rows_, .n = (int)(sizeof rows_ / sizeof rows_[0]), __VA_ARGS__ }
#define FSIZE(T, f) sizeof(((T *)0)->f)
#define R_STR(k, T, f, fl) { .key = k, .type = F_STR, .flags = fl, .off = offsetof(T, f), .size = FSIZE(T, f) }
#define R_PATH(k, T, f, fl) { .key = k, .type = F_PATH, .flags = fl, .off = offsetof(T, f), .size = FSIZE(T, f) }
#define R_STRDUP(k, T, f) { .key = k, .type = F_STRDUP, .off = offsetof(T, f) }
#define R_DBL(k, T, f, lo, hi, fl) \
    { .key = k, .type = F_DOUBLE, .flags = fl, .off = offsetof(T, f), .min = lo, .max = hi }
#define R_DBLX(k, T, f, lo, hi, fl, sc) \
    { .key = k, .type = F_DOUBLE, .flags = fl, .off = offsetof(T, f), .min = lo, .max = hi, .scale = sc }
#define R_INT(k, T, f, lo, hi, fl) \
    { .key = k, .type = F_INT, .flags = fl, .off = offsetof(T, f), .min = lo, .max = hi }
#define R_U64(k, T, f) { .key = k, .type = F_U64, .off = offsetof(T, f) }
#define R_BOOL(k, T, f) { .key = k, .type = F_BOOL, .off = offsetof(T, f) }
#define R_ENUM(k, T, f, nm, fl) { .key = k, .type = F_ENUM, .flags = fl, .off = offsetof(T, f), .names = nm }
#define R_MAP(k, off_, tbl, fl) { .key = k, .type = F_MAP, .flags = fl, .off = off_, .sub = tbl }
#define R_LIST(k, T, f, cnt, ET, tbl) \
    { .key = k, .type = F_LIST, .off = offsetof(T, f), .count_off = offsetof(T, cnt), \
      .size = sizeof(ET), .sub = tbl }
#define R_CUSTOM(k, fn) { .key = k, .type = F_CUSTOM, .custom = fn }

static int walk_map(cfg *c, yaml_node_t *n, const table *t, void *obj, const char *field);

static bool seen_key(const table *t, uint64_t seen, const char *key)
{
    for (int i = 0; i < t->n; i++)
        if (strcmp(t->rows[i].key, key) == 0)
            return seen & (1ull << i);
    NX_ASSERT(!"key not in table");
    return false;
}

/* "a, b, c" into buf. */
static void list_keys(char *buf, size_t size, const char *const *keys, size_t stride, int n)
{
    size_t used = 0;
    buf[0] = 0;
    for (int i = 0; i < n && used < size; i++) {
        const char *k = *(const char *const *)((const char *)keys + (size_t)i * stride);
        used += (size_t)snprintf(buf + used, size - used, "%s%s", i ? ", " : "", k);
    }
}

/* ------------------------------------------------------------------------ */
/* Scalars                                                                    */

static const char *scalar(const yaml_node_t *v)
{
    return (const char *)v->data.scalar.value;
}

static int want_scalar(cfg *c, yaml_node_t *v, const char *field, const char *what)
{
    if (v->type != YAML_SCALAR_NODE)
        return fail(c, NX_ERR_CONFIG, v, field, "expected %s, found a %s", what,
                    v->type == YAML_MAPPING_NODE ? "mapping" : "list");
    if (strlen(scalar(v)) != v->data.scalar.length)
        return fail(c, NX_ERR_CONFIG, v, field, "a NUL byte inside a value");
    return 0;
}

static bool in_range(const row *r, double v)
{
    return !(v < r->min || v > r->max || ((r->flags & XMIN) && v == r->min) ||
             ((r->flags & XMAX) && v == r->max));
}

static int range_error(cfg *c, yaml_node_t *v, const row *r, const char *field)
{
    if (r->max == NOLIM)
        return fail(c, NX_ERR_CONFIG, v, field, "must be %s %g, got %s",
                    (r->flags & XMIN) ? ">" : ">=", r->min, scalar(v));
    return fail(c, NX_ERR_CONFIG, v, field, "must be in %c%g, %g%c, got %s",
                (r->flags & XMIN) ? '(' : '[', r->min, r->max, (r->flags & XMAX) ? ')' : ']',
                scalar(v));
}

static int set_number(cfg *c, yaml_node_t *v, const row *r, void *dst, const char *field)
{
    const char *s = scalar(v);
    char *end;
    errno = 0;
    if (r->type == F_DOUBLE) {
        double d = strtod(s, &end);
        if (!*s || *end || isspace((unsigned char)*s) || !isfinite(d))
            return fail(c, NX_ERR_CONFIG, v, field, "expected a number, got '%.40s'", s);
        if (!in_range(r, d))
            return range_error(c, v, r, field);
        *(double *)dst = d * (r->scale != 0 ? r->scale : 1.0);
    } else if (r->type == F_INT) {
        long long i = strtoll(s, &end, 10);
        if (!*s || *end || isspace((unsigned char)*s) || errno == ERANGE)
            return fail(c, NX_ERR_CONFIG, v, field, "expected an integer, got '%.40s'", s);
        if (!in_range(r, (double)i))
            return range_error(c, v, r, field);
        *(int *)dst = (int)i;
    } else {
        unsigned long long u = strtoull(s, &end, 10);
        if (!isdigit((unsigned char)*s) || *end || errno == ERANGE)
            return fail(c, NX_ERR_CONFIG, v, field,
                        "expected an unsigned 64-bit integer, got '%.40s'", s);
        *(uint64_t *)dst = u;
    }
    return 0;
}

static int set_string(cfg *c, yaml_node_t *v, const row *r, char *dst, const char *field)
{
    const char *s = scalar(v);
    if ((r->flags & REQ) && !*s)
        return fail(c, NX_ERR_CONFIG, v, field, "must not be empty");
    if (r->type == F_PATH && s[0] != '/' && c->dir[0]) {
        if (snprintf(dst, r->size, "%s%s%s", c->dir, strcmp(c->dir, "/") ? "/" : "", s) >=
            (int)r->size)
            return fail(c, NX_ERR_CONFIG, v, field, "path longer than %zu characters",
                        r->size - 1);
        return 0;
    }
    if (strlen(s) >= r->size)
        return fail(c, NX_ERR_CONFIG, v, field, "longer than %zu characters", r->size - 1);
    strcpy(dst, s);
    return 0;
}

static int set_bool(cfg *c, yaml_node_t *v, bool *dst, const char *field)
{
    const char *s = scalar(v);
    if (!strcasecmp(s, "true") || !strcasecmp(s, "yes"))
        *dst = true;
    else if (!strcasecmp(s, "false") || !strcasecmp(s, "no"))
        *dst = false;
    else
        return fail(c, NX_ERR_CONFIG, v, field, "expected true/false/yes/no, got '%.40s'", s);
    return 0;
}

static int set_enum(cfg *c, yaml_node_t *v, const row *r, int *dst, const char *field)
{
    int n = 0;
    for (; r->names[n]; n++) {
        if (strcmp(scalar(v), r->names[n]) == 0) {
            *dst = n;
            return 0;
        }
    }
    char valid[200];
    list_keys(valid, sizeof valid, r->names, sizeof r->names[0], n);
    return fail(c, NX_ERR_CONFIG, v, field, "unknown value '%.40s'; valid: %s", scalar(v), valid);
}

/* ------------------------------------------------------------------------ */
/* Lists and sections                                                         */

static int walk_list(cfg *c, yaml_node_t *v, const row *r, void *obj, const char *field)
{
    if (v->type != YAML_SEQUENCE_NODE)
        return fail(c, NX_ERR_CONFIG, v, field, "expected a list");
    int n = (int)(v->data.sequence.items.top - v->data.sequence.items.start);
    if (n == 0)
        return fail(c, NX_ERR_CONFIG, v, field, "must not be empty");
    const table *t = r->sub;
    char *arr = nx_calloc((size_t)n, r->size);
    memcpy((char *)obj + r->off, &arr, sizeof arr);   /* owned by obj from here on */
    *(int *)((char *)obj + r->count_off) = n;
    for (int i = 0; i < n; i++) {
        char *elem = arr + (size_t)i * r->size;
        char sub[FIELD_MAX];
        field_fmt(sub, "%s[%d]", field, i);
        yaml_node_t *item = seq_item(c, v, i);
        int rc = visit(c, item, sub);
        if (t->init)
            t->init(elem);
        if (!rc)
            rc = walk_map(c, item, t, elem, sub);
        if (rc)
            return rc;
        for (int j = 0; t->unique && j < i; j++) {
            const char *name = elem + t->unique_off;
            if (strcmp(name, arr + (size_t)j * r->size + t->unique_off) == 0)
                return fail(c, NX_ERR_CONFIG, item, sub, "duplicate %s name '%s' (also at line %d)",
                            t->unique, name, line_of(seq_item(c, v, j)));
        }
    }
    return 0;
}

static int set_field(cfg *c, yaml_node_t *v, const row *r, void *obj, const char *field)
{
    void *dst = (char *)obj + r->off;
    int rc;
    switch (r->type) {
    case F_MAP:
        return walk_map(c, v, r->sub, dst, field);
    case F_LIST:
        return walk_list(c, v, r, obj, field);
    case F_CUSTOM:
        return r->custom(c, v, obj, field);
    case F_STR:
    case F_PATH:
    case F_STRDUP:
        if ((rc = want_scalar(c, v, field, "a string")))
            return rc;
        if (r->type != F_STRDUP)
            return set_string(c, v, r, dst, field);
        *(char **)dst = nx_strdup(scalar(v));
        return 0;
    case F_DOUBLE:
    case F_INT:
    case F_U64:
        if ((rc = want_scalar(c, v, field, "a number")))
            return rc;
        return set_number(c, v, r, dst, field);
    case F_BOOL:
        if ((rc = want_scalar(c, v, field, "true or false")))
            return rc;
        return set_bool(c, v, dst, field);
    case F_ENUM:
        if ((rc = want_scalar(c, v, field, "a name")))
            return rc;
        return set_enum(c, v, r, dst, field);
    }
    NX_ASSERT(!"bad row type");
    return NX_ERR_INVAL;
}

static int walk_map(cfg *c, yaml_node_t *n, const table *t, void *obj, const char *field)
{
    char valid[300];
    NX_ASSERT(t->n <= 64);
    list_keys(valid, sizeof valid, &t->rows[0].key, sizeof t->rows[0], t->n);
    if (n->type != YAML_MAPPING_NODE)
        return fail(c, NX_ERR_CONFIG, n, field, "expected a mapping with keys %s", valid);
    uint64_t seen = 0;
    for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
        yaml_node_t *k = node_at(c, p->key), *v = node_at(c, p->value);
        int rc = visit(c, v, field);
        if (rc)
            return rc;
        if (k->type != YAML_SCALAR_NODE)
            return fail(c, NX_ERR_CONFIG, k, field, "a key must be a plain name");
        char sub[FIELD_MAX];
        join_field(sub, field, scalar(k));
        int i = 0;
        while (i < t->n && strcmp(t->rows[i].key, scalar(k)) != 0)
            i++;
        if (i == t->n)
            return fail(c, NX_ERR_CONFIG, k, sub, "unknown key '%.60s' in %s; valid keys: %s",
                        scalar(k), field[0] ? field : "the top level", valid);
        if (seen & (1ull << i))
            return fail(c, NX_ERR_CONFIG, k, sub, "key '%s' given twice", scalar(k));
        seen |= 1ull << i;
        if ((rc = set_field(c, v, &t->rows[i], obj, sub)))
            return rc;
    }
    for (int i = 0; i < t->n; i++) {
        if ((t->rows[i].flags & REQ) && !(seen & (1ull << i))) {
            char sub[FIELD_MAX];
            join_field(sub, field, t->rows[i].key);
            return fail(c, NX_ERR_CONFIG, n, sub, "missing required field '%s'", t->rows[i].key);
        }
    }
    return t->check ? t->check(c, n, obj, t, seen, field) : 0;
}

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
        bool given = seen_key(t, seen, key);
        if (given && wl_opt_use[wl->kind][i] == 0)
            return fail_key(c, n, field, key, true, "'%s' does not apply to a %s workload", key,
                            type);
        if (!given && wl_opt_use[wl->kind][i] == 2)
            return fail_key(c, n, field, key, true,
                            "missing required field '%s' (a %s workload needs it)", key, type);
    }
    if (wl->kind == NX_WL_TRACE && !seen_key(t, seen, "rate"))
        wl->rate = 1.0;   /* the app's share weight */
    yaml_node_t *steps = find_key(c, n, "steps", false);
    for (int i = 0; i < wl->nsteps; i++) {
        double at = wl->steps[i].at_s;
        char sub[FIELD_MAX];
        field_fmt(sub, "%s.steps[%d].at_s", field, i);
        if (i == 0 && at != 0)
            return fail(c, NX_ERR_CONFIG, seq_item(c, steps, i), sub,
                        "the first step must be at 0 s, got %g", at);
        if (i > 0 && at <= wl->steps[i - 1].at_s)
            return fail(c, NX_ERR_CONFIG, seq_item(c, steps, i), sub,
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
}

static int check_combo(cfg *c, yaml_node_t *n, void *obj, const table *t, uint64_t seen,
                       const char *field)
{
    nx_combo *k = obj;
    if (seen_key(t, seen, "name"))
        return 0;
    if (snprintf(k->name, sizeof k->name, "%s+%s+%s", k->placement, k->batching, k->lb) >=
        (int)sizeof k->name)
        return fail(c, NX_ERR_CONFIG, n, field,
                    "the default name placement+batching+lb is too long; give a name");
    return 0;
}

static int check_run(cfg *c, yaml_node_t *n, void *obj, const table *t, uint64_t seen,
                     const char *field)
{
    nx_experiment *x = obj;
    if (x->warmup_s < x->duration_s)
        return 0;
    return fail_key(c, n, field, seen_key(t, seen, "warmup_s") ? "warmup_s" : "duration_s", false,
                    "warmup_s (%g) must be less than duration_s (%g)", x->warmup_s, x->duration_s);
}

static int check_search(cfg *c, yaml_node_t *n, void *obj, const table *t, uint64_t seen,
                        const char *field)
{
    nx_experiment *x = obj;
    if (x->search_hi > x->search_lo)
        return 0;
    return fail_key(c, n, field, seen_key(t, seen, "hi") ? "hi" : "lo", false,
                    "hi (%g) must be greater than lo (%g)", x->search_hi, x->search_lo);
}

static int check_experiment(cfg *c, yaml_node_t *n, void *obj, const table *t, uint64_t seen,
                            const char *field)
{
    nx_experiment *x = obj;
    x->has_trace = seen_key(t, seen, "trace");
    for (int i = 0; i < x->nfailures; i++)
        if (x->failures[i].gpu >= x->gpus) {
            char sub[FIELD_MAX];
            field_fmt(sub, "run.failures[%d].gpu", i);
            yaml_node_t *list = find_key(c, find_key(c, n, "run", false), "failures", false);
            return fail(c, NX_ERR_CONFIG, seq_item(c, list, i), sub,
                        "GPU %d does not exist (the cluster has %d)", x->failures[i].gpu, x->gpus);
        }
    for (int i = 0; i < x->napps && !x->has_trace; i++) {
        if (x->apps[i].wl.kind != NX_WL_TRACE)
            continue;
        yaml_node_t *app = seq_item(c, find_key(c, n, "apps", false), i);
        char sub[FIELD_MAX];
        field_fmt(sub, "apps[%d].workload", i);
        return fail_key(c, find_key(c, app, "workload", false), sub, "type", false,
                        "app '%s' uses the trace workload but the experiment has no trace section",
                        x->apps[i].name);
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
        return fail(c, NX_ERR_CONFIG, v, field, "expected a stage name or a list of them");
    if (n < 1 || n > NX_STAGE_MAX_PARENTS)
        return fail(c, NX_ERR_CONFIG, v, field, "a stage has 1 to %d parents, not %d",
                    NX_STAGE_MAX_PARENTS, n);
    for (int i = 0; i < n; i++) {
        yaml_node_t *item = v->type == YAML_SEQUENCE_NODE ? seq_item(c, v, i) : v;
        int rc = want_scalar(c, item, field, "a stage name");
        if (rc)
            return rc;
        if (strlen(scalar(item)) >= NX_NAME_MAX)
            return fail(c, NX_ERR_CONFIG, item, field, "name too long");
        strcpy(st->after[i], scalar(item));
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
    bool model = seen_key(t, seen, "model"), stages = seen_key(t, seen, "stages");
    if (model == stages)
        return fail(c, NX_ERR_CONFIG, n, field,
                    model ? "an app has either 'model' or 'stages', not both"
                          : "missing required field 'model' (or 'stages' for a DAG app)");
    if (model) {
        if (seen_key(t, seen, "stages"))
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
    if (seen_key(t, seen, "precision"))
        return fail_key(c, n, field, "precision", true,
                        "'precision' belongs to each stage of a DAG app");
    if (a->nstages > NX_APP_MAX_STAGES)
        return fail_key(c, n, field, "stages", true, "at most %d stages", NX_APP_MAX_STAGES);
    yaml_node_t *list = find_key(c, n, "stages", false);
    for (int i = 0; i < a->nstages; i++) {
        nx_stage *st = &a->stages[i];
        char sub[FIELD_MAX];
        field_fmt(sub, "%s.stages[%d].after", field, i);
        for (int k = 0; k < st->nparents; k++) {
            int j = 0;
            while (j < i && strcmp(a->stages[j].name, st->after[k]) != 0)
                j++;
            if (j == i)
                return fail(c, NX_ERR_CONFIG, seq_item(c, list, i), sub,
                            "'%s' is not an earlier stage of app '%s' (list parents first)",
                            st->after[k], a->name);
            for (int q = 0; q < k; q++)
                if (st->parents[q] == j)
                    return fail(c, NX_ERR_CONFIG, seq_item(c, list, i), sub,
                                "parent '%s' listed twice", st->after[k]);
            st->parents[k] = j;
        }
    }
    if (a->stages[0].nparents != 0)
        return fail(c, NX_ERR_CONFIG, seq_item(c, list, 0), field, "the first stage must be a root");
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

static const row combo_rows[] = {
    R_STR("name", nx_combo, name, 0),
    R_STR("placement", nx_combo, placement, 0),
    R_STR("batching", nx_combo, batching, 0),
    R_STR("lb", nx_combo, lb, 0),
    R_STR("split", nx_combo, split, 0),
    R_BOOL("prefix_batching", nx_combo, prefix),
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

/* ---- modeldb.yml --------------------------------------------------------- */

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
    int rc = load_yaml(&c, text, len, path, eb);
    if (!rc)
        rc = walk_map(&c, yaml_document_get_root_node(&c.doc), &modeldb_table, db, "");
    unload_yaml(&c);
    return rc;
}

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
    nx_experiment_init(x);
}

int nx_experiment_parse(nx_experiment *x, const char *text, size_t len, const char *path,
                        nx_errbuf *eb)
{
    cfg c;
    int rc = load_yaml(&c, text, len, path, eb);
    snprintf(x->path, sizeof x->path, "%s", c.path);
    if (!rc)
        rc = walk_map(&c, yaml_document_get_root_node(&c.doc), &experiment_table, x, "");
    unload_yaml(&c);
    return rc;
}

/* ------------------------------------------------------------------------ */
/* Profiles                                                                   */

static int set_input_shape(cfg *c, yaml_node_t *v, void *obj, const char *field)
{
    static const row dim = { .key = "", .type = F_INT, .min = 1, .max = 1 << 20 };
    nx_profile *p = obj;
    if (v->type != YAML_SEQUENCE_NODE)
        return fail(c, NX_ERR_CONFIG, v, field, "expected a list of dimensions");
    int n = (int)(v->data.sequence.items.top - v->data.sequence.items.start);
    int cap = (int)(sizeof p->input_shape / sizeof p->input_shape[0]);
    if (n < 1 || n > cap)
        return fail(c, NX_ERR_CONFIG, v, field, "expected 1 to %d dimensions, got %d", cap, n);
    for (int i = 0; i < n; i++) {
        char sub[FIELD_MAX];
        field_fmt(sub, "%s[%d]", field, i);
        yaml_node_t *d = seq_item(c, v, i);
        int rc = want_scalar(c, d, sub, "an integer");
        if (!rc)
            rc = set_number(c, d, &dim, &p->input_shape[i], sub);
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
    yaml_node_t *batches = find_key(c, n, "batches", false);
    int rc = 0;
    for (int i = 0; i < p->npoints && !rc; i++) {
        int b = p->points[i].batch;
        yaml_node_t *item = seq_item(c, batches, i);
        if (line[b]) {
            char sub[FIELD_MAX];
            field_fmt(sub, "batches[%d].batch", i);
            rc = fail(c, NX_ERR_CONFIG, item, sub, "batch %d is given twice (also at line %d)", b,
                      line[b]);
        }
        line[b] = line_of(item);
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
    R_STRDUP("provenance", nx_profile, provenance),
    R_LIST("batches", nx_profile, points, npoints, nx_profile_point, &point_table),
};
static const table profile_table = TABLE(profile_rows, .check = check_profile);

int nx_profile_parse(nx_profile *p, const char *text, size_t len, const char *path,
                     nx_errbuf *eb)
{
    cfg c;
    int rc = load_yaml(&c, text, len, path, eb);
    if (!rc)
        rc = walk_map(&c, yaml_document_get_root_node(&c.doc), &profile_table, p, "");
    unload_yaml(&c);
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
/* Traces                                                                     */

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm). */
static int64_t days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static bool digits(const char *s, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (!isdigit((unsigned char)s[i]))
            return false;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return true;
}

/* "YYYY-MM-DD HH:MM:SS[.fraction]" (or with 'T') -> seconds since the epoch and
 * nanoseconds (fraction digits past the ninth are dropped). No time zone: the
 * trace's own clock, only differences matter. */
static bool parse_timestamp(const char *s, size_t n, int64_t *sec, int64_t *nsec)
{
    int y, mo, d, h, mi, se;
    if (n < 19 || !digits(s, 4, &y) || s[4] != '-' || !digits(s + 5, 2, &mo) || s[7] != '-' ||
        !digits(s + 8, 2, &d) || (s[10] != ' ' && s[10] != 'T') || !digits(s + 11, 2, &h) ||
        s[13] != ':' || !digits(s + 14, 2, &mi) || s[16] != ':' || !digits(s + 17, 2, &se))
        return false;
    static const int mdays[] = { 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    if (mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] || (mo == 2 && d == 29 && !leap) ||
        h > 23 || mi > 59 || se > 60)
        return false;
    int64_t ns = 0;
    size_t i = 19;
    if (i < n && s[i] == '.') {
        if (++i == n)
            return false;
        int k = 0;
        for (; i < n; i++, k++) {
            if (!isdigit((unsigned char)s[i]))
                return false;
            if (k < 9)
                ns = ns * 10 + (s[i] - '0');
        }
        for (; k < 9; k++)   /* fewer than 9 digits: scale up to nanoseconds */
            ns *= 10;
    }
    if (i != n)
        return false;
    *sec = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + se;
    *nsec = ns;
    return true;
}

static bool parse_double(const char *s, size_t n, double *out)
{
    char buf[64];
    if (n == 0 || n >= sizeof buf || isspace((unsigned char)s[0]))
        return false;
    memcpy(buf, s, n);
    buf[n] = 0;
    char *end;
    *out = strtod(buf, &end);
    return *end == 0 && isfinite(*out);
}

typedef struct span {
    const char *s;
    size_t n;
} span;

/* Split a line at commas into at most max fields (trimmed, outer quotes removed);
 * returns the number of fields in the line, which may be more than max. */
static int split_csv(const char *s, size_t n, span *f, int max)
{
    int nf = 0;
    size_t start = 0;
    for (size_t i = 0; i <= n; i++) {
        if (i < n && s[i] != ',')
            continue;
        if (nf < max) {
            size_t a = start, b = i;
            while (a < b && (s[a] == ' ' || s[a] == '\t'))
                a++;
            while (b > a && (s[b - 1] == ' ' || s[b - 1] == '\t'))
                b--;
            if (b - a >= 2 && s[a] == '"' && s[b - 1] == '"')
                a++, b--;
            f[nf] = (span){ s + a, b - a };
        }
        nf++;
        start = i + 1;
    }
    return nf;
}

void nx_trace_free(nx_trace *t)
{
    free(t->t_s);
    free(t->size);
    memset(t, 0, sizeof *t);
}

int nx_trace_parse(nx_trace *t, const char *text, size_t len, const char *path, nx_errbuf *eb)
{
    path = path ? path : "<input>";
    memset(t, 0, sizeof *t);
    size_t pos = 0, cap = 0;
    if (len >= 3 && memcmp(text, "\xEF\xBB\xBF", 3) == 0)
        pos = 3;   /* UTF-8 byte order mark */
    int lineno = 0, blank = 0, ncols = 0;
    bool stamps = false, first = true;
    int64_t sec0 = 0, nsec0 = 0;
    double v0 = 0;
    int rc = 0;
    while (pos < len && !rc) {
        const char *s = text + pos;
        const char *nl = memchr(s, '\n', len - pos);
        size_t n = nl ? (size_t)(nl - s) : len - pos;
        pos += n + 1;
        lineno++;
        if (n > 0 && s[n - 1] == '\r')
            n--;
        size_t k = 0;
        while (k < n && (s[k] == ' ' || s[k] == '\t'))
            k++;
        if (k == n) {
            blank = blank ? blank : lineno;
            continue;
        }
        if (blank && !first) {
            nx_err_set(eb, NX_ERR_PARSE, "%s:%d: blank line inside the trace", path, blank);
            rc = NX_ERR_PARSE;
            break;
        }
        span f[2];
        int nf = split_csv(s, n, f, 2);
        int64_t sec = 0, nsec = 0;
        double v = 0;
        bool is_stamp = parse_timestamp(f[0].s, f[0].n, &sec, &nsec);
        bool is_num = !is_stamp && parse_double(f[0].s, f[0].n, &v);
        if (first) {
            first = false;
            if (!is_stamp && !is_num)
                continue;   /* a header */
        }
        if (t->n == 0) {
            ncols = nf;
            stamps = is_stamp;
            sec0 = sec, nsec0 = nsec, v0 = v;
        }
        if (nf != ncols) {
            nx_err_set(eb, NX_ERR_PARSE, "%s:%d: %d fields where the first row has %d (truncated or garbled line?)",
                       path, lineno, nf, ncols);
            rc = NX_ERR_PARSE;
            break;
        }
        if (stamps ? !is_stamp : !is_num) {
            nx_err_set(eb, NX_ERR_PARSE, "%s:%d: cannot read the time '%.*s' (expected %s, like the first row)",
                       path, lineno, (int)NX_MIN(f[0].n, 40), f[0].s,
                       stamps ? "YYYY-MM-DD HH:MM:SS[.frac]" : "seconds");
            rc = NX_ERR_PARSE;
            break;
        }
        double tv = stamps ? (double)(sec - sec0) + (double)(nsec - nsec0) * 1e-9 : v - v0;
        if (t->n > 0 && tv < t->t_s[t->n - 1]) {
            nx_err_set(eb, NX_ERR_PARSE, "%s:%d: time goes backwards (%.7f s after %.7f s); the trace must be sorted",
                       path, lineno, tv, t->t_s[t->n - 1]);
            rc = NX_ERR_PARSE;
            break;
        }
        if (t->n == cap) {
            cap = cap ? 2 * cap : 1024;
            t->t_s = nx_realloc(t->t_s, cap * sizeof(double));
            if (ncols >= 2)
                t->size = nx_realloc(t->size, cap * sizeof(double));
        }
        if (ncols >= 2 && !parse_double(f[1].s, f[1].n, &t->size[t->n])) {
            nx_err_set(eb, NX_ERR_PARSE, "%s:%d: the second field '%.*s' is not a number", path,
                       lineno, (int)NX_MIN(f[1].n, 40), f[1].s);
            rc = NX_ERR_PARSE;
            break;
        }
        t->t_s[t->n++] = tv;
    }
    if (!rc && t->n == 0) {
        nx_err_set(eb, NX_ERR_EMPTY, "%s: trace is empty", path);
        rc = NX_ERR_EMPTY;
    }
    if (rc)
        nx_trace_free(t);
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
        fin[v] = start + 2 * mult * (nx_profile_mean(p, 1) + nx_profile_std(p, 1)) + p->pre_us +
                 p->post_us + 2 * x->net_delay_us;
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
            double l1 = x->sched.profile_multiplier * (nx_profile_mean(p, 1) + nx_profile_std(p, 1));
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
