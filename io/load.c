/* load.c — reads experiments, profile directories and traces from disk and
 * hands the bytes to the engine's parsers (engine/config_*.c), which never touch
 * files themselves. Errors name the path and the system's reason (strerror). */
#include "load.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define LOAD_MAX ((size_t)1 << 30)   /* the largest file we read: 1 GiB */

/* read() that retries when interrupted. */
static ssize_t read_retry(int fd, char *buf, size_t n)
{
    ssize_t r;
    do
        r = read(fd, buf, n);
    while (r < 0 && errno == EINTR);
    return r;
}

static int load_fail(int fd, char *b, nx_errbuf *eb, const char *path, const char *why)
{
    nx_err_set(eb, NX_ERR_IO, "%s: cannot read: %s", path, why);
    free(b);
    close(fd);
    return NX_ERR_IO;
}

int nx_load_file(const char *path, char **buf, size_t *len, nx_errbuf *eb)
{
    *buf = NULL;
    *len = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        nx_err_set(eb, NX_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
        return NX_ERR_IO;
    }
    struct stat st;
    if (fstat(fd, &st) != 0)
        return load_fail(fd, NULL, eb, path, strerror(errno));
    if (S_ISDIR(st.st_mode))
        return load_fail(fd, NULL, eb, path, strerror(EISDIR));
    if (S_ISREG(st.st_mode) && (size_t)st.st_size > LOAD_MAX)
        return load_fail(fd, NULL, eb, path, "larger than 1 GiB");
    /* Read to EOF rather than trusting st_size (pipes, files that change):
     * when the buffer is full, one byte more tells whether it must grow. */
    size_t cap = S_ISREG(st.st_mode) ? (size_t)st.st_size + 1 : 65536;
    size_t n = 0;
    char *b = nx_malloc(cap);
    for (;;) {
        ssize_t r;
        if (n + 1 < cap) {
            r = read_retry(fd, b + n, cap - 1 - n);
        } else {
            char more;
            r = read_retry(fd, &more, 1);
            if (r > 0) {
                if (n >= LOAD_MAX)
                    return load_fail(fd, b, eb, path, "larger than 1 GiB");
                cap = NX_MIN(2 * cap, LOAD_MAX + 1);
                b = nx_realloc(b, cap);
                b[n] = more;
            }
        }
        if (r == 0)
            break;
        if (r < 0)
            return load_fail(fd, b, eb, path, strerror(errno));
        n += (size_t)r;
    }
    close(fd);
    b[n] = 0;
    *buf = b;
    *len = n;
    return 0;
}

static bool is_profile_name(const char *name)
{
    size_t n = strlen(name);
    if (name[0] == '.')
        return false;
    return (n > 4 && strcmp(name + n - 4, ".yml") == 0) ||
           (n > 5 && strcmp(name + n - 5, ".yaml") == 0);
}

static int cmp_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The model DB file of a profile directory (prefix sharing), not a profile. */
#define MODELDB_NAME "modeldb.yml"
/* A profile directory's GPU interference table (an experiment names it with
 * cluster.interference); not a profile either, and skipped here. */
#define INTERFERENCE_NAME "interference.yml"

/* Read, parse and add one profile file (or the directory's modeldb.yml). */
static int load_profile(nx_modeldb *db, const char *path, nx_errbuf *eb)
{
    char *text;
    size_t len;
    int rc = nx_load_file(path, &text, &len, eb);
    if (rc)
        return rc;
    const char *base = strrchr(path, '/');
    if (strcmp(base ? base + 1 : path, MODELDB_NAME) == 0) {
        if (db->ngroups > 0) {
            nx_err_set(eb, NX_ERR_CONFIG, "%s: a second model DB in the same directory", path);
            rc = NX_ERR_CONFIG;
        } else {
            rc = nx_modeldb_parse(db, text, len, path, eb);
        }
        free(text);
        return rc;
    }
    nx_profile p;
    nx_profile_init(&p);
    rc = nx_profile_parse(&p, text, len, path, eb);
    free(text);
    if (rc)
        return rc;
    nx_errbuf local;
    nx_err_clear(&local);
    if ((rc = nx_modeldb_add(db, &p, &local))) {
        nx_err_set(eb, rc, "%s: %s", path, local.msg);
        nx_profile_free(&p);
    }
    return rc;
}

int nx_load_profile_dir(nx_modeldb *db, const char *dir, nx_errbuf *eb)
{
    DIR *d = opendir(dir);
    if (!d) {
        nx_err_set(eb, NX_ERR_IO, "%s: cannot open the profile directory: %s", dir, strerror(errno));
        return NX_ERR_IO;
    }
    char **names = NULL;
    size_t n = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!is_profile_name(e->d_name) || strcmp(e->d_name, INTERFERENCE_NAME) == 0)
            continue;
        if (n == cap) {
            cap = cap ? 2 * cap : 32;
            names = nx_realloc(names, cap * sizeof *names);
        }
        names[n++] = nx_strdup(e->d_name);
    }
    closedir(d);
    if (n == 0) {
        nx_err_set(eb, NX_ERR_EMPTY, "%s: no profiles (*.yml, *.yaml) in this directory", dir);
        return NX_ERR_EMPTY;
    }
    qsort(names, n, sizeof *names, cmp_name);
    int rc = 0;
    for (size_t i = 0; i < n && !rc; i++) {
        size_t size = strlen(dir) + strlen(names[i]) + 2;
        char *path = nx_malloc(size);
        snprintf(path, size, "%s/%s", dir, names[i]);
        rc = load_profile(db, path, eb);
        free(path);
    }
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    return rc;
}

int nx_load_experiment(nx_experiment *x, nx_modeldb *db, const char *path, nx_errbuf *eb)
{
    char *text;
    size_t len;
    int rc = nx_load_file(path, &text, &len, eb);
    if (rc)
        return rc;
    rc = nx_experiment_parse(x, text, len, path, eb);
    free(text);
    if (!rc)
        rc = nx_load_profile_dir(db, x->profile_dir, eb);
    if (!rc && x->cpu_profile[0]) {
        if (!(rc = nx_load_file(x->cpu_profile, &text, &len, eb))) {
            rc = nx_prepost_parse(&x->prepost, text, len, x->cpu_profile, eb);
            free(text);
        }
        if (!rc)
            nx_prepost_apply(&x->prepost, db);
    }
    if (!rc && x->interference[0]) {
        if (!(rc = nx_load_file(x->interference, &text, &len, eb))) {
            rc = nx_interference_parse(&x->ifx, text, len, x->interference, eb);
            free(text);
        }
    }
    if (!rc && x->has_trace) {
        if (!(rc = nx_load_file(x->trace.file, &text, &len, eb))) {
            rc = nx_trace_parse(&x->trace.trace, text, len, x->trace.file, eb);
            free(text);
        }
    }
    if (!rc)
        rc = nx_experiment_resolve(x, db, eb);
    return rc;
}
