/* exec_policies.h — registry of the per-request policies: batching (backends)
 * and load balancing (frontends). See registry_exec.c. */
#ifndef NX_EXEC_POLICIES_H
#define NX_EXEC_POLICIES_H

#include "ops.h"

const nx_batching_ops *nx_batching_find(const char *name);
const nx_lb_ops *nx_lb_find(const char *name);
/* Comma-separated names, for error messages. */
void nx_batching_list(char *buf, size_t n);
void nx_lb_list(char *buf, size_t n);

#endif
