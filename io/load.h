/* load.h — the file-reading layer between the disk and the engine's parsers:
 * whole files into memory, a directory of profiles into a model DB, and an
 * experiment with everything it names (profiles, trace), resolved. */
#ifndef NX_LOAD_H
#define NX_LOAD_H

#include <stddef.h>

#include "experiment.h"
#include "profile.h"

/* Read a whole file (at most 1 GiB) into a malloc'd, NUL-terminated *buf of
 * *len bytes (the NUL not counted). On error *buf is NULL and the message names
 * the path and the system's reason. */
int nx_load_file(const char *path, char **buf, size_t *len, nx_errbuf *eb);

/* Parse every *.yml / *.yaml file of dir (in name order, so the DB's order is
 * deterministic; hidden files are skipped) and add each profile to db; a file
 * named modeldb.yml is the model DB (share_prefix groups) instead. A missing
 * directory or one without profiles is an error naming it. */
int nx_load_profile_dir(nx_modeldb *db, const char *dir, nx_errbuf *eb);

/* Read and parse the experiment at path (x from nx_experiment_init), load its
 * profile directory into db (from nx_modeldb_init), load its trace if it has a
 * trace section, and resolve its apps against db. On error x and db stay
 * consistent: the caller still calls nx_experiment_free and nx_modeldb_free. */
int nx_load_experiment(nx_experiment *x, nx_modeldb *db, const char *path, nx_errbuf *eb);

#endif
