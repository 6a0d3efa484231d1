/* config_int.h — internal to engine/config_*.c: the table-driven YAML walker.
 *
 * A parser describes its struct with rows ({key, type, offset, range, flags})
 * grouped in tables, loads the text with nx_cfg_load and hands the root to
 * nx_cfg_walk, which sets every field and runs each table's check hook; the
 * remaining calls are what check hooks and custom setters need to find nodes
 * and report errors as "PATH:LINE: what (field 'F')". config_walk.c implements
 * them; config_experiment.c and config_profile.c hold the tables. Nothing here
 * is part of the engine's public interface. */
#ifndef NX_CONFIG_INT_H
#define NX_CONFIG_INT_H

#include "experiment.h"

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <yaml.h>

#define NOLIM HUGE_VAL
#define FIELD_MAX 256

/* The parse context of one document. */
typedef struct cfg {
    yaml_document_t doc;
    bool loaded;           /* doc holds a document to delete */
    const char *path;      /* for messages */
    char dir[512];         /* directory of path, for relative paths ("" = none) */
    long budget;           /* node visits left: bounds the work aliases can cause */
    nx_errbuf *eb;
} cfg;

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

/* ------------------------------------------------------------------------ */
/* The walker (config_walk.c)                                                 */

static inline int nx_cfg_line(const yaml_node_t *n)
{
    return (int)n->start_mark.line + 1;
}

static inline const char *nx_cfg_scalar(const yaml_node_t *v)
{
    return (const char *)v->data.scalar.value;
}

/* Load text into c->doc. Exactly one document with a mapping at its root. */
int nx_cfg_load(cfg *c, const char *text, size_t len, const char *path, nx_errbuf *eb);
void nx_cfg_unload(cfg *c);
/* Set obj's fields from mapping n by table t (field: the path of n, "" at the top). */
int nx_cfg_walk(cfg *c, yaml_node_t *n, const table *t, void *obj, const char *field);

/* Record "PATH:LINE: <what> (field 'F')" and return rc. */
int nx_cfg_fail(cfg *c, int rc, const yaml_node_t *n, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
/* A config error about `key` of section n (at field): at the key's line when
 * it is given (its key node with at_key, else its value), else at the section's. */
int nx_cfg_fail_key(cfg *c, yaml_node_t *n, const char *field, const char *key, bool at_key,
                    const char *fmt, ...) __attribute__((format(printf, 6, 7)));
/* A field path such as "apps[2].workload" into dst[FIELD_MAX] (truncated if longer). */
void nx_cfg_field(char *dst, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The value node of `key` in mapping n (or its key node with want_key), or NULL. */
yaml_node_t *nx_cfg_find_key(cfg *c, yaml_node_t *n, const char *key, bool want_key);
/* Item i of sequence n, or NULL. */
yaml_node_t *nx_cfg_item(cfg *c, yaml_node_t *n, int i);
/* Whether the table's row `key` was given (`seen` as passed to a check hook). */
bool nx_cfg_seen(const table *t, uint64_t seen, const char *key);
/* 0 if v is a scalar without NUL bytes, else an error expecting `what`. */
int nx_cfg_want_scalar(cfg *c, yaml_node_t *v, const char *field, const char *what);
/* Scalar v into dst by row r (F_DOUBLE, F_INT or F_U64), range-checked. */
int nx_cfg_set_number(cfg *c, yaml_node_t *v, const row *r, void *dst, const char *field);

#endif
