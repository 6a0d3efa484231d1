/* util.h — what every daemon needs besides the engine: log lines, command-line
 * numbers with range checks, the readiness signal, and a random incarnation.
 *
 * Logging: one line per state change, "TIME WHO: what", to stderr, written
 * with one write(2) so lines from concurrent processes sharing a file do not
 * interleave. */
#ifndef NX_UTIL_H
#define NX_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

void nx_log(const char *who, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Parse a whole string as a number in [lo, hi]; on failure print
 * "PROG: OPT: 'S' is not ..." to stderr and return -1. */
int nx_cli_long(const char *prog, const char *opt, const char *s, long lo, long hi, long *out);
int nx_cli_double(const char *prog, const char *opt, const char *s, double lo, double hi,
                  double *out);

/* Readiness: write "ready WHAT\n" to fd and close it (fd < 0: nothing). */
void nx_ready(int *fd, const char *what);

/* A random 64-bit number, never 0 (getrandom, else time and pid). */
uint64_t nx_incarnation(void);

/* "host:port" with the port replaced: nx_addr_with_port("127.0.0.1:0", 4000). */
void nx_addr_with_port(char *out, size_t n, const char *addr, int port);

#endif
