/* statefile.c — reading and writing the scheduler's state file (format in
 * statefile.h). Reading is strict: every line is one known record with
 * exactly its fields, numbers parsed with strtod/strtoull and range-checked,
 * the sessions complete and in order, the file ended by "end"; anything
 * else is an error naming PATH:LINE. */
#include "statefile.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_LINE 512
#define MAX_FIELDS 8

static int fsync_dir(const char *path)
{
    char *copy = nx_strdup(path);
    int fd = open(dirname(copy), O_RDONLY | O_DIRECTORY);
    free(copy);
    if (fd < 0)
        return -1;
    int rc = fsync(fd);
    close(fd);
    return rc;
}

int nx_statefile_check(const char *path, nx_errbuf *eb)
{
    char *copy = nx_strdup(path);
    int ok = access(dirname(copy), W_OK | X_OK);
    free(copy);
    if (ok != 0) {
        nx_err_set(eb, NX_ERR_IO, "--state: cannot write in the directory of %s: %s", path,
                   strerror(errno));
        return NX_ERR_IO;
    }
    return 0;
}

int nx_statefile_write(const char *path, const nx_statefile_id *id, const nx_sched_state *st,
                       const nx_statefile_node *nodes, uint64_t epochs, uint64_t triggers,
                       nx_errbuf *eb)
{
    size_t n = strlen(path) + 16;
    char *tmp = nx_malloc(n);
    snprintf(tmp, n, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f) {
        nx_err_set(eb, NX_ERR_IO, "state: cannot create %s: %s", tmp, strerror(errno));
        free(tmp);
        return NX_ERR_IO;
    }
    fprintf(f, "nexus-scheduler-state 1\nexperiment %s\npolicy %s\ncatalog %016" PRIx64 "\n",
            id->experiment, id->policy, id->catalog);
    fprintf(f, "dims %d %d %d\nepochs %" PRIu64 " %" PRIu64 " %" PRIu64 "\n", st->nsess,
            st->nfrontends, st->ngpu, st->epoch, epochs, triggers);
    for (int s = 0; s < st->nsess; s++)
        fprintf(f, "session %d %.17g %.17g %d %.17g\n", s, st->plan_rate[s], st->rate[s],
                st->hist[s], st->budget[s]);
    for (int s = 0; s < st->nsess; s++)
        for (int fe = 0; fe < st->nfrontends; fe++) {
            size_t i = (size_t)s * (size_t)st->nfrontends + (size_t)fe;
            if (st->seen[i])
                fprintf(f, "ewma %d %d %.17g\n", s, fe, st->ewma[i]);
        }
    for (int g = 0; g < st->plan.ngpu; g++)
        for (int i = 0; i < st->plan.gpu[g].n; i++) {
            const nx_alloc *a = &st->plan.gpu[g].a[i];
            fprintf(f, "alloc %d %d %d %.17g %.17g\n", g, a->session, a->batch, a->rate,
                    a->throughput);
        }
    for (int g = 0; g < st->ngpu; g++)
        if (st->alive[g])
            fprintf(f, "backend %d %" PRIu64 " %s\n", g, nodes[g].incarnation,
                    nodes[g].addr[0] ? nodes[g].addr : "-");
    fprintf(f, "end\n");
    bool bad = fflush(f) != 0 || fsync(fileno(f)) != 0;
    bad |= fclose(f) != 0;
    if (bad || rename(tmp, path) != 0) {
        nx_err_set(eb, NX_ERR_IO, "state: cannot write %s: %s", path, strerror(errno));
        unlink(tmp);
        free(tmp);
        return NX_ERR_IO;
    }
    free(tmp);
    fsync_dir(path);
    return 0;
}

/* ---- reading ------------------------------------------------------------------------- */

typedef struct rd {
    const char *path;
    int line;
    char *f[MAX_FIELDS];
    int nf;
    nx_errbuf *eb;
} rd;

static int bad(rd *r, const char *what)
{
    nx_err_set(r->eb, NX_ERR_PARSE, "%s:%d: %s", r->path, r->line, what);
    return NX_ERR_PARSE;
}

static int num(rd *r, int i, double lo, double hi, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(r->f[i], &end);
    if (errno || end == r->f[i] || *end || !(v >= lo && v <= hi)) {
        char msg[160];
        snprintf(msg, sizeof msg, "field %d of '%s': '%.40s' is not a number in [%g, %g]", i,
                 r->f[0], r->f[i], lo, hi);
        return bad(r, msg);
    }
    *out = v;
    return 0;
}

static int inum(rd *r, int i, long lo, long hi, long *out)
{
    double v;
    int rc = num(r, i, (double)lo, (double)hi, &v);
    if (rc == 0 && v != (double)(long)v)
        return bad(r, "an integer expected");
    *out = (long)v;
    return rc;
}

static int u64(rd *r, int i, uint64_t *out, int base)
{
    char *end;
    errno = 0;
    if (r->f[i][0] == '-')
        return bad(r, "a negative count");
    unsigned long long v = strtoull(r->f[i], &end, base);
    if (errno || end == r->f[i] || *end)
        return bad(r, "a count expected");
    *out = v;
    return 0;
}

static int expect(rd *r, const char *key, int nf)
{
    if (r->nf == 0 || strcmp(r->f[0], key) != 0 || r->nf != nf) {
        char msg[160];
        snprintf(msg, sizeof msg, "expected '%s' with %d field(s)", key, nf - 1);
        return bad(r, msg);
    }
    return 0;
}

int nx_statefile_read(const char *path, const nx_statefile_id *id, nx_sched_state *st,
                      nx_statefile_node *nodes, uint64_t *epochs, uint64_t *triggers,
                      nx_errbuf *eb)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        int e = errno;
        nx_err_set(eb, e == ENOENT ? NX_ERR_NOTFOUND : NX_ERR_IO, "state: cannot open %s: %s",
                   path, strerror(e));
        return e == ENOENT ? NX_ERR_NOTFOUND : NX_ERR_IO;
    }
    rd r = {.path = path, .eb = eb};
    char buf[MAX_LINE + 2];
    int rc = 0, stage = 0, nsess_seen = 0;
    bool ended = false;
    for (int g = 0; g < st->plan.ngpu; g++)
        st->plan.gpu[g].n = 0;
    memset(st->seen, 0, (size_t)st->nsess * (size_t)st->nfrontends);
    memset(st->alive, 0, (size_t)st->ngpu);
    memset(nodes, 0, sizeof *nodes * (size_t)st->ngpu);
    while (rc == 0 && fgets(buf, sizeof buf, f)) {
        r.line++;
        size_t len = strlen(buf);
        if (len > MAX_LINE || (len && buf[len - 1] != '\n' && !feof(f))) {
            rc = bad(&r, "line too long");
            break;
        }
        if (ended) {
            rc = bad(&r, "text after 'end'");
            break;
        }
        r.nf = 0;
        for (char *save = NULL, *t = strtok_r(buf, " \t\r\n", &save); t;
             t = strtok_r(NULL, " \t\r\n", &save)) {
            if (r.nf == MAX_FIELDS) {
                rc = bad(&r, "too many fields");
                break;
            }
            r.f[r.nf++] = t;
        }
        if (rc)
            break;
        char msg[300];
        long a, b, c;
        double x, y, z;
        switch (stage) {
        case 0:
            if ((rc = expect(&r, "nexus-scheduler-state", 2)) == 0 && strcmp(r.f[1], "1") != 0)
                rc = bad(&r, "version 1 expected");
            stage++;
            continue;
        case 1:
            if ((rc = expect(&r, "experiment", 2)) == 0 && strcmp(r.f[1], id->experiment) != 0) {
                snprintf(msg, sizeof msg, "the state is for experiment '%.100s', this scheduler "
                                          "runs '%.100s'", r.f[1], id->experiment);
                nx_err_set(eb, NX_ERR_CONFIG, "%s:%d: %s", path, r.line, msg);
                rc = NX_ERR_CONFIG;
            }
            stage++;
            continue;
        case 2:
            if ((rc = expect(&r, "policy", 2)) == 0 && strcmp(r.f[1], id->policy) != 0) {
                nx_err_set(eb, NX_ERR_CONFIG, "%s:%d: the state is for policy '%.100s', this "
                                              "scheduler runs '%.100s'",
                           path, r.line, r.f[1], id->policy);
                rc = NX_ERR_CONFIG;
            }
            stage++;
            continue;
        case 3: {
            uint64_t h;
            if ((rc = expect(&r, "catalog", 2)) == 0 && (rc = u64(&r, 1, &h, 16)) == 0 &&
                h != id->catalog) {
                nx_err_set(eb, NX_ERR_CONFIG, "%s:%d: the state is for catalog %016" PRIx64
                                              ", this scheduler's is %016" PRIx64
                                              " (another --scale or experiment file)",
                           path, r.line, h, id->catalog);
                rc = NX_ERR_CONFIG;
            }
            stage++;
            continue;
        }
        case 4:
            if ((rc = expect(&r, "dims", 4)) == 0 && (rc = inum(&r, 1, 0, 1 << 20, &a)) == 0 &&
                (rc = inum(&r, 2, 0, 1 << 20, &b)) == 0 &&
                (rc = inum(&r, 3, 0, 1 << 20, &c)) == 0 &&
                (a != st->nsess || b != st->nfrontends || c != st->ngpu)) {
                nx_err_set(eb, NX_ERR_CONFIG, "%s:%d: the state has %ld sessions, %ld frontend "
                                              "and %ld backend slots; this scheduler %d, %d and "
                                              "%d (--max-frontends, --max-backends)",
                           path, r.line, a, b, c, st->nsess, st->nfrontends, st->ngpu);
                rc = NX_ERR_CONFIG;
            }
            stage++;
            continue;
        case 5:
            if ((rc = expect(&r, "epochs", 4)) == 0 && (rc = u64(&r, 1, &st->epoch, 10)) == 0 &&
                (rc = u64(&r, 2, epochs, 10)) == 0)
                rc = u64(&r, 3, triggers, 10);
            stage++;
            continue;
        default:
            break;
        }
        if (r.nf == 0) {
            rc = bad(&r, "an empty line");
        } else if (strcmp(r.f[0], "session") == 0) {
            if ((rc = expect(&r, "session", 6)) || (rc = inum(&r, 1, 0, st->nsess - 1, &a)))
                break;
            if (a != nsess_seen) {
                rc = bad(&r, "sessions must come in order, each once");
                break;
            }
            if ((rc = num(&r, 2, 0, 1e12, &x)) || (rc = num(&r, 3, 0, 1e12, &y)) ||
                (rc = inum(&r, 4, 0, 1L << 40, &b)) || (rc = num(&r, 5, 1e-3, 1e12, &z)))
                break;
            st->plan_rate[a] = x;
            st->rate[a] = y;
            st->hist[a] = (int)NX_MIN(b, 1L << 30);
            st->budget[a] = z;
            nsess_seen++;
        } else if (strcmp(r.f[0], "ewma") == 0) {
            if ((rc = expect(&r, "ewma", 4)) || (rc = inum(&r, 1, 0, st->nsess - 1, &a)) ||
                (rc = inum(&r, 2, 0, st->nfrontends - 1, &b)) || (rc = num(&r, 3, 0, 1e12, &x)))
                break;
            size_t i = (size_t)a * (size_t)st->nfrontends + (size_t)b;
            st->ewma[i] = x;
            st->seen[i] = 1;
        } else if (strcmp(r.f[0], "alloc") == 0) {
            long g, sess, batch;
            if ((rc = expect(&r, "alloc", 6)) || (rc = inum(&r, 1, 0, st->ngpu - 1, &g)) ||
                (rc = inum(&r, 2, 0, st->plan.nsess - 1, &sess)) ||
                (rc = inum(&r, 3, 1, 1 << 20, &batch)) || (rc = num(&r, 4, 0, 1e12, &x)) ||
                (rc = num(&r, 5, 0, 1e12, &y)))
                break;
            if (st->plan.gpu[g].n >= st->plan.nsess) {
                rc = bad(&r, "more allocations on one GPU than sessions");
                break;
            }
            nx_plan_add(&st->plan, (int)g, (int)sess, (int)batch, x, y);
        } else if (strcmp(r.f[0], "backend") == 0) {
            uint64_t inc;
            if ((rc = expect(&r, "backend", 4)) || (rc = inum(&r, 1, 0, st->ngpu - 1, &a)) ||
                (rc = u64(&r, 2, &inc, 10)))
                break;
            if (st->alive[a]) {
                rc = bad(&r, "a backend slot listed twice");
                break;
            }
            if (strlen(r.f[3]) >= sizeof nodes->addr) {
                rc = bad(&r, "a backend address too long");
                break;
            }
            st->alive[a] = 1;
            nodes[a].incarnation = inc;
            snprintf(nodes[a].addr, sizeof nodes->addr, "%s", r.f[3]);
        } else if (strcmp(r.f[0], "end") == 0 && r.nf == 1) {
            ended = true;
        } else {
            snprintf(msg, sizeof msg, "unknown record '%.40s'", r.f[0]);
            rc = bad(&r, msg);
        }
    }
    bool ferr = ferror(f);
    fclose(f);
    if (rc == 0 && ferr) {
        nx_err_set(eb, NX_ERR_IO, "state: cannot read %s", path);
        rc = NX_ERR_IO;
    }
    if (rc == 0 && (!ended || nsess_seen != st->nsess)) {
        r.line++;
        rc = bad(&r, !ended ? "the file ends without 'end' (truncated)"
                            : "not every session has its 'session' line");
    }
    if (rc == 0)
        nx_plan_count_used(&st->plan);
    return rc;
}
