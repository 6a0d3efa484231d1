/* testutil.c — fixture helpers for the CUnit suites (see testutil.h). */
#include "testutil.h"
#include "load.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

char *nx_tu_tmpdir(void)
{
    char *d = nx_strdup("/tmp/nxtest-XXXXXX");
    if (!mkdtemp(d)) {
        perror("mkdtemp");
        abort();
    }
    return d;
}

void nx_tu_rmdir(char *dir)
{
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "warning: could not remove %s\n", dir);
    free(dir);
}

char *nx_tu_write(const char *dir, const char *name, const char *text)
{
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = nx_malloc(n);
    snprintf(p, n, "%s/%s", dir, name);
    FILE *f = fopen(p, "w");
    if (!f) {
        perror(p);
        abort();
    }
    fputs(text, f);
    fclose(f);
    return p;
}

char *nx_tu_read(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = nx_malloc((size_t)n + 1);
    size_t got = fread(b, 1, (size_t)n, f);
    fclose(f);
    b[got] = 0;
    if (len)
        *len = got;
    return b;
}

const char *nx_tu_root(void)
{
    const char *r = getenv("NX_ROOT");
    return r && *r ? r : ".";
}

const char *nx_tu_build(void)
{
    const char *r = getenv("NX_BUILD");
    return r && *r ? r : "build";
}

int nx_tu_load(nx_experiment *x, nx_modeldb *db, const char *path)
{
    nx_errbuf eb;
    nx_err_clear(&eb);
    nx_experiment_init(x);
    nx_modeldb_init(db);
    int rc = nx_load_experiment(x, db, path, &eb);
    if (rc < 0)
        fprintf(stderr, "load %s: %s\n", path, eb.msg);
    return rc;
}

int nx_tu_sh(const char *cmd, char *out, size_t n)
{
    char full[4096];
    snprintf(full, sizeof full, "%s 2>&1", cmd);
    FILE *p = popen(full, "r");
    if (!p)
        return -1;
    size_t got = fread(out, 1, n - 1, p);
    out[got] = 0;
    while (fgetc(p) != EOF) {
    }
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}
