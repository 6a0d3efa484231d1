/* config_trace.c — the request trace parser (CSV).
 *
 * A trace is a CSV file whose first column is each request's arrival, as a
 * timestamp ("YYYY-MM-DD HH:MM:SS[.frac]", like the Azure Functions traces) or
 * as seconds; an optional second numeric column is a size (a DAG stage's
 * fan-out can follow it). An optional header line, a UTF-8 byte order mark and
 * CRLF line ends are accepted; times are made relative to the first row and
 * must not go backwards. Errors name file:line. From a memory buffer: no I/O
 * (io/load.c reads the file). */
#include "experiment.h"

#include <ctype.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

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
