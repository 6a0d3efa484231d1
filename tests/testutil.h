/* testutil.h — helpers shared by the CUnit suites: temp dirs, writing fixture
 * files, loading an experiment from a YAML string, the repo root. */
#ifndef NX_TESTUTIL_H
#define NX_TESTUTIL_H

#include <stddef.h>

#include "experiment.h"
#include "profile.h"

/* A fresh directory under /tmp (removed by nx_tu_rmdir). */
char *nx_tu_tmpdir(void);
void nx_tu_rmdir(char *dir);
/* Write text to dir/name; returns the malloc'd full path. */
char *nx_tu_write(const char *dir, const char *name, const char *text);
/* Read a whole file; NULL if it cannot. */
char *nx_tu_read(const char *path, size_t *len);
/* The repository root: $NX_ROOT, else ".". */
const char *nx_tu_root(void);
/* The build dir: $NX_BUILD, else "build". */
const char *nx_tu_build(void);
/* Load an experiment file; prints the error and returns its rc on failure. */
int nx_tu_load(nx_experiment *x, nx_modeldb *db, const char *path);
/* Run a shell command, capturing stderr+stdout into out (up to n bytes);
 * returns the exit status (or -1). */
int nx_tu_sh(const char *cmd, char *out, size_t n);

#endif
