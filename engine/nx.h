/* nx.h — basic types shared by every module: time, error codes, assertions,
 * allocation helpers and the error buffer that parsers fill with "file:line: what".
 *
 * Time is an int64 count of nanoseconds (nx_time). Profiles and configs speak
 * microseconds or milliseconds; convert at the edge with NX_US / NX_MS. */
#ifndef NX_H
#define NX_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

typedef int64_t nx_time;

#define NX_US(x) ((nx_time)((x) * 1000.0))
#define NX_MS(x) ((nx_time)((x) * 1000000.0))
#define NX_SEC(x) ((nx_time)((x) * 1000000000.0))
#define NX_TIME_NEVER INT64_MAX
#define NX_TO_US(t) ((double)(t) / 1000.0)
#define NX_TO_MS(t) ((double)(t) / 1000000.0)
#define NX_TO_SEC(t) ((double)(t) / 1000000000.0)

/* Error codes: functions return 0 or one of these (negative). */
enum nx_err {
    NX_OK = 0,
    NX_ERR_NOMEM = -1,
    NX_ERR_IO = -2,      /* a file could not be read or written */
    NX_ERR_PARSE = -3,   /* malformed input (YAML syntax, CSV) */
    NX_ERR_CONFIG = -4,  /* well-formed but wrong: unknown key, bad type, out of range */
    NX_ERR_NOTFOUND = -5,/* unknown model, profile, policy name */
    NX_ERR_INFEASIBLE = -6, /* e.g. no batch size fits a session's SLO */
    NX_ERR_EMPTY = -7,   /* empty trace */
    NX_ERR_NOTSUP = -8,  /* not supported in this build */
    NX_ERR_INVAL = -9,   /* bad argument */
};

const char *nx_strerror(int rc);

/* Error buffer: the first error wins; later ones are ignored so the
 * message names the root cause. */
typedef struct nx_errbuf {
    char msg[512];
    int rc;
} nx_errbuf;

void nx_err_set(nx_errbuf *eb, int rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static inline void nx_err_clear(nx_errbuf *eb) { eb->msg[0] = 0; eb->rc = 0; }

/* Invariants: abort loudly with expression, file and line. Never for bad input. */
#define NX_ASSERT(e) \
    ((e) ? (void)0 : nx_assert_fail(#e, __FILE__, __LINE__))
void nx_assert_fail(const char *expr, const char *file, int line)
    __attribute__((noreturn));

/* Allocation that aborts with the size it wanted on OOM. */
void *nx_malloc(size_t n);
void *nx_calloc(size_t n, size_t size);
void *nx_realloc(void *p, size_t n);
char *nx_strdup(const char *s);

#define NX_CONTAINER_OF(ptr, type, member) \
    ((type *)((char *)(ptr) - offsetof(type, member)))

#define NX_MIN(a, b) ((a) < (b) ? (a) : (b))
#define NX_MAX(a, b) ((a) > (b) ? (a) : (b))

#endif
