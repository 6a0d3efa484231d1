/* config_walk.c — the generic half of the config parsers: YAML in, struct fields out.
 *
 * YAML is loaded with libyaml into its document tree (mappings, sequences and
 * scalars, each with its line), then walked with tables in the nginx-directive
 * style (config_int.h): a row per key gives the type, where the value goes in
 * the struct, the accepted range and whether the key is required, and a handful
 * of generic setters here do the rest. A nested section is a row whose sub-table
 * describes it; a list is a row whose sub-table describes each element. What one
 * row cannot say (warmup < duration, the keys each workload type takes,
 * increasing steps) is a table's check hook, run after its keys are set; the
 * tables and hooks live with their documents (config_experiment.c,
 * config_profile.c).
 *
 * Every error goes to the nx_errbuf as "PATH:LINE: what is wrong (field 'a[2].b')"
 * and returns a negative nx_err; the walk stops at the first one. Arrays are
 * attached to their owner as soon as they are allocated, so the owner's free
 * function releases everything after a failure at any point. None of this does
 * I/O (io/load.c reads files). */
#include "config_int.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define ALIAS_FACTOR 16       /* a walk may visit each YAML node this many times (aliases) */

/* ------------------------------------------------------------------------ */
/* The document and its errors                                                */

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
        nx_err_set(c->eb, rc, "%s:%d: %s (field '%s')", c->path, n ? nx_cfg_line(n) : 1, what,
                   field);
    else
        nx_err_set(c->eb, rc, "%s:%d: %s", c->path, n ? nx_cfg_line(n) : 1, what);
    return rc;
}

int nx_cfg_fail(cfg *c, int rc, const yaml_node_t *n, const char *field, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vfail(c, rc, n, field, fmt, ap);
    va_end(ap);
    return rc;
}

/* A field path such as "apps[2].workload" into dst[FIELD_MAX] (truncated if longer). */
void nx_cfg_field(char *dst, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(dst, FIELD_MAX, fmt, ap);
    va_end(ap);
}

/* "a.b" or "b" at the top level. */
static void join_field(char *dst, const char *field, const char *key)
{
    nx_cfg_field(dst, "%s%s%s", field, field[0] ? "." : "", key);
}

/* The value node of `key` in mapping n (or its key node with want_key), or NULL. */
yaml_node_t *nx_cfg_find_key(cfg *c, yaml_node_t *n, const char *key, bool want_key)
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
int nx_cfg_fail_key(cfg *c, yaml_node_t *n, const char *field, const char *key, bool at_key,
                    const char *fmt, ...)
{
    char sub[FIELD_MAX];
    join_field(sub, field, key);
    yaml_node_t *at = nx_cfg_find_key(c, n, key, at_key);
    va_list ap;
    va_start(ap, fmt);
    int rc = vfail(c, NX_ERR_CONFIG, at ? at : n, sub, fmt, ap);
    va_end(ap);
    return rc;
}

/* Item i of sequence n, or NULL. */
yaml_node_t *nx_cfg_item(cfg *c, yaml_node_t *n, int i)
{
    if (!n || n->type != YAML_SEQUENCE_NODE || i >= n->data.sequence.items.top - n->data.sequence.items.start)
        return NULL;
    return node_at(c, n->data.sequence.items.start[i]);
}

static int visit(cfg *c, yaml_node_t *n, const char *field)
{
    if (--c->budget < 0)
        return nx_cfg_fail(c, NX_ERR_CONFIG, n, field,
                           "the document expands too much through aliases");
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
int nx_cfg_load(cfg *c, const char *text, size_t len, const char *path, nx_errbuf *eb)
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
                           c->path, nx_cfg_line(second));
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
                   c->path, root ? nx_cfg_line(root) : 1, root ? "" : " (the document is empty)");
        return NX_ERR_CONFIG;
    }
    c->budget = ALIAS_FACTOR * (long)(c->doc.nodes.top - c->doc.nodes.start) + 1024;
    return 0;
}

void nx_cfg_unload(cfg *c)
{
    if (c->loaded)
        yaml_document_delete(&c->doc);
    c->loaded = false;
}

/* ------------------------------------------------------------------------ */
/* Tables                                                                     */

bool nx_cfg_seen(const table *t, uint64_t seen, const char *key)
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

int nx_cfg_want_scalar(cfg *c, yaml_node_t *v, const char *field, const char *what)
{
    if (v->type != YAML_SCALAR_NODE)
        return nx_cfg_fail(c, NX_ERR_CONFIG, v, field, "expected %s, found a %s", what,
                           v->type == YAML_MAPPING_NODE ? "mapping" : "list");
    if (strlen(nx_cfg_scalar(v)) != v->data.scalar.length)
        return nx_cfg_fail(c, NX_ERR_CONFIG, v, field, "a NUL byte inside a value");
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
        return nx_cfg_fail(c, NX_ERR_CONFIG, v, field, "must be %s %g, got %s",
                           (r->flags & XMIN) ? ">" : ">=", r->min, nx_cfg_scalar(v));
    return nx_cfg_fail(c, NX_ERR_CONFIG, v, field, "must be in %c%g, %g%c, got %s",
                       (r->flags & XMIN) ? '(' : '[', r->min, r->max, (r->flags & XMAX) ? ')' : ']',
                       nx_cfg_scalar(v));
}

int nx_cfg_set_number(cfg *c, yaml_node_t *v, const row *r, void *dst, const char *field)
{
    const char *s = nx_cfg_scalar(v);
    char *end;
    errno = 0;
    if (r->type == F_DOUBLE) {
        double d = strtod(s, &end);
        if (!*s || *end || isspace((unsigned char)*s) || !isfinite(d))
            return nx_cfg_fail(c, NX_ERR_CONFIG, v, field, "expected a number, got '%.40s'", s);
        if (!in_range(r, d))
            return range_error(c, v, r, field);
        *(double *)dst = d * (r->scale != 0 ? r->scale : 1.0);
    } else if (r->type == F_INT) {
        long long i = strtoll(s, &end, 10);
        if (!*s || *end || isspace((unsigned char)*s) || errno == ERANGE)
            return nx_cfg_fail(c, NX_ERR_CONFIG, v, field, "expected an integer, got '%.40s'", s);
        if (!in_range(r, (double)i))
            return range_error(c, v, r, field);
        *(int *)dst = (int)i;
    } else {
        unsigned long long u = strtoull(s, &end, 10);
        if (!isdigit((unsigned char)*s) || *end || errno == ERANGE)
            return nx_cfg_fail(c, NX_ERR_CONFIG, v, field,
                               "expected an unsigned 64-bit integer, got '%.40s'", s);
        *(uint64_t *)dst = u;
    }
    return 0;
}

static int set_string(cfg *c, yaml_node_t *v, const row *r, char *dst, const char *field)
{
    const char *s = nx_cfg_scalar(v);
    if ((r->flags & REQ) && !*s)
        return nx_cfg_fail(c, NX_ERR_CONFIG, v, field, "must not be empty");
    if (r->type == F_PATH && s[0] != '/' && c->dir[0]) {
        if (snprintf(dst, r->size, "%s%s%s", c->dir, strcmp(c->dir, "/") ? "/" : "", s) >=
            (int)r->size)
            return nx_cfg_fail(c, NX_ERR_CONFIG, v, field, "path longer than %zu characters",
                               r->size - 1);
        return 0;
    }
    if (strlen(s) >= r->size)
        return nx_cfg_fail(c, NX_ERR_CONFIG, v, field, "longer than %zu characters", r->size - 1);
    strcpy(dst, s);
    return 0;
}

static int set_bool(cfg *c, yaml_node_t *v, bool *dst, const char *field)
{
    const char *s = nx_cfg_scalar(v);
    if (!strcasecmp(s, "true") || !strcasecmp(s, "yes"))
        *dst = true;
    else if (!strcasecmp(s, "false") || !strcasecmp(s, "no"))
        *dst = false;
    else
        return nx_cfg_fail(c, NX_ERR_CONFIG, v, field, "expected true/false/yes/no, got '%.40s'",
                           s);
    return 0;
}

static int set_enum(cfg *c, yaml_node_t *v, const row *r, int *dst, const char *field)
{
    int n = 0;
    for (; r->names[n]; n++) {
        if (strcmp(nx_cfg_scalar(v), r->names[n]) == 0) {
            *dst = n;
            return 0;
        }
    }
    char valid[200];
    list_keys(valid, sizeof valid, r->names, sizeof r->names[0], n);
    return nx_cfg_fail(c, NX_ERR_CONFIG, v, field, "unknown value '%.40s'; valid: %s",
                       nx_cfg_scalar(v), valid);
}

/* ------------------------------------------------------------------------ */
/* Lists and sections                                                         */

static int walk_list(cfg *c, yaml_node_t *v, const row *r, void *obj, const char *field)
{
    if (v->type != YAML_SEQUENCE_NODE)
        return nx_cfg_fail(c, NX_ERR_CONFIG, v, field, "expected a list");
    int n = (int)(v->data.sequence.items.top - v->data.sequence.items.start);
    if (n == 0)
        return nx_cfg_fail(c, NX_ERR_CONFIG, v, field, "must not be empty");
    const table *t = r->sub;
    char *arr = nx_calloc((size_t)n, r->size);
    memcpy((char *)obj + r->off, &arr, sizeof arr);   /* owned by obj from here on */
    *(int *)((char *)obj + r->count_off) = n;
    for (int i = 0; i < n; i++) {
        char *elem = arr + (size_t)i * r->size;
        char sub[FIELD_MAX];
        nx_cfg_field(sub, "%s[%d]", field, i);
        yaml_node_t *item = nx_cfg_item(c, v, i);
        int rc = visit(c, item, sub);
        if (t->init)
            t->init(elem);
        if (!rc)
            rc = nx_cfg_walk(c, item, t, elem, sub);
        if (rc)
            return rc;
        for (int j = 0; t->unique && j < i; j++) {
            const char *name = elem + t->unique_off;
            if (strcmp(name, arr + (size_t)j * r->size + t->unique_off) == 0)
                return nx_cfg_fail(c, NX_ERR_CONFIG, item, sub,
                                   "duplicate %s name '%s' (also at line %d)", t->unique, name,
                                   nx_cfg_line(nx_cfg_item(c, v, j)));
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
        return nx_cfg_walk(c, v, r->sub, dst, field);
    case F_LIST:
        return walk_list(c, v, r, obj, field);
    case F_CUSTOM:
        return r->custom(c, v, obj, field);
    case F_STR:
    case F_PATH:
    case F_STRDUP:
        if ((rc = nx_cfg_want_scalar(c, v, field, "a string")))
            return rc;
        if (r->type != F_STRDUP)
            return set_string(c, v, r, dst, field);
        *(char **)dst = nx_strdup(nx_cfg_scalar(v));
        return 0;
    case F_DOUBLE:
    case F_INT:
    case F_U64:
        if ((rc = nx_cfg_want_scalar(c, v, field, "a number")))
            return rc;
        return nx_cfg_set_number(c, v, r, dst, field);
    case F_BOOL:
        if ((rc = nx_cfg_want_scalar(c, v, field, "true or false")))
            return rc;
        return set_bool(c, v, dst, field);
    case F_ENUM:
        if ((rc = nx_cfg_want_scalar(c, v, field, "a name")))
            return rc;
        return set_enum(c, v, r, dst, field);
    }
    NX_ASSERT(!"bad row type");
    return NX_ERR_INVAL;
}

int nx_cfg_walk(cfg *c, yaml_node_t *n, const table *t, void *obj, const char *field)
{
    char valid[300];
    NX_ASSERT(t->n <= 64);
    list_keys(valid, sizeof valid, &t->rows[0].key, sizeof t->rows[0], t->n);
    if (n->type != YAML_MAPPING_NODE)
        return nx_cfg_fail(c, NX_ERR_CONFIG, n, field, "expected a mapping with keys %s", valid);
    uint64_t seen = 0;
    for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
        yaml_node_t *k = node_at(c, p->key), *v = node_at(c, p->value);
        int rc = visit(c, v, field);
        if (rc)
            return rc;
        if (k->type != YAML_SCALAR_NODE)
            return nx_cfg_fail(c, NX_ERR_CONFIG, k, field, "a key must be a plain name");
        char sub[FIELD_MAX];
        join_field(sub, field, nx_cfg_scalar(k));
        int i = 0;
        while (i < t->n && strcmp(t->rows[i].key, nx_cfg_scalar(k)) != 0)
            i++;
        if (i == t->n)
            return nx_cfg_fail(c, NX_ERR_CONFIG, k, sub,
                               "unknown key '%.60s' in %s; valid keys: %s", nx_cfg_scalar(k),
                               field[0] ? field : "the top level", valid);
        if (seen & (1ull << i))
            return nx_cfg_fail(c, NX_ERR_CONFIG, k, sub, "key '%s' given twice", nx_cfg_scalar(k));
        seen |= 1ull << i;
        if ((rc = set_field(c, v, &t->rows[i], obj, sub)))
            return rc;
    }
    for (int i = 0; i < t->n; i++) {
        if ((t->rows[i].flags & REQ) && !(seen & (1ull << i))) {
            char sub[FIELD_MAX];
            join_field(sub, field, t->rows[i].key);
            return nx_cfg_fail(c, NX_ERR_CONFIG, n, sub, "missing required field '%s'",
                               t->rows[i].key);
        }
    }
    return t->check ? t->check(c, n, obj, t, seen, field) : 0;
}
