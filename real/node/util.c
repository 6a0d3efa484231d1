/* util.c — log lines, command-line numbers, readiness and incarnations for the
 * daemons (see util.h). */
#include "util.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

void nx_log(const char *who, const char *fmt, ...)
{
    char line[1024];
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    localtime_r(&ts.tv_sec, &tm);
    int n = (int)strftime(line, sizeof line, "%H:%M:%S", &tm);
    n += snprintf(line + n, sizeof line - (size_t)n, ".%03ld %s: ", ts.tv_nsec / 1000000, who);
    va_list ap;
    va_start(ap, fmt);
    if (n < (int)sizeof line)
        n += vsnprintf(line + n, sizeof line - (size_t)n, fmt, ap);
    va_end(ap);
    if (n > (int)sizeof line - 2)
        n = (int)sizeof line - 2;
    line[n++] = '\n';
    ssize_t w;
    do
        w = write(2, line, (size_t)n);
    while (w < 0 && errno == EINTR);
}

int nx_cli_long(const char *prog, const char *opt, const char *s, long lo, long hi, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi) {
        fprintf(stderr, "%s: %s: '%s' is not an integer in [%ld, %ld]\n", prog, opt, s, lo, hi);
        return -1;
    }
    *out = v;
    return 0;
}

int nx_cli_double(const char *prog, const char *opt, const char *s, double lo, double hi,
                  double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !isfinite(v) || v < lo || v > hi) {
        fprintf(stderr, "%s: %s: '%s' is not a number in [%g, %g]\n", prog, opt, s, lo, hi);
        return -1;
    }
    *out = v;
    return 0;
}

void nx_ready(int *fd, const char *what)
{
    if (*fd < 0)
        return;
    char line[300];
    int n = snprintf(line, sizeof line, "ready %s\n", what);
    if (n > (int)sizeof line - 1)
        n = (int)sizeof line - 1;
    ssize_t w;
    do
        w = write(*fd, line, (size_t)n);
    while (w < 0 && errno == EINTR);
    close(*fd);
    *fd = -1;
}

uint64_t nx_incarnation(void)
{
    uint64_t v = 0;
    if (getrandom(&v, sizeof v, GRND_NONBLOCK) != (ssize_t)sizeof v) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        v = ((uint64_t)ts.tv_nsec << 20) ^ (uint64_t)ts.tv_sec ^ ((uint64_t)getpid() << 40);
    }
    return v ? v : 1;
}

void nx_addr_with_port(char *out, size_t n, const char *addr, int port)
{
    const char *colon = strrchr(addr, ':');
    int hl = colon ? (int)(colon - addr) : (int)strlen(addr);
    snprintf(out, n, "%.*s:%d", hl, addr, port);
}
