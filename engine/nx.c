/* nx.c — error strings, the error buffer, assertion failure and the
 * allocation wrappers that abort with the size they wanted. */
#include "nx.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *nx_strerror(int rc)
{
    switch (rc) {
    case NX_OK: return "ok";
    case NX_ERR_NOMEM: return "out of memory";
    case NX_ERR_IO: return "I/O error";
    case NX_ERR_PARSE: return "parse error";
    case NX_ERR_CONFIG: return "configuration error";
    case NX_ERR_NOTFOUND: return "not found";
    case NX_ERR_INFEASIBLE: return "infeasible";
    case NX_ERR_EMPTY: return "empty input";
    case NX_ERR_NOTSUP: return "not supported";
    case NX_ERR_INVAL: return "invalid argument";
    default: return "unknown error";
    }
}

void nx_err_set(nx_errbuf *eb, int rc, const char *fmt, ...)
{
    if (!eb || eb->rc != 0)
        return;
    eb->rc = rc;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(eb->msg, sizeof eb->msg, fmt, ap);
    va_end(ap);
}

void nx_assert_fail(const char *expr, const char *file, int line)
{
    fprintf(stderr, "nexus: assertion failed: %s (%s:%d)\n", expr, file, line);
    abort();
}

static void oom(size_t n)
{
    fprintf(stderr, "nexus: out of memory allocating %zu bytes\n", n);
    abort();
}

void *nx_malloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p)
        oom(n);
    return p;
}

void *nx_calloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (!p)
        oom(n * size);
    return p;
}

void *nx_realloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (!q)
        oom(n);
    return q;
}

char *nx_strdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = nx_malloc(n);
    memcpy(d, s, n);
    return d;
}
