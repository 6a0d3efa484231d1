/* renv.h — the engine's environment (env.h) on a real daemon: now() is
 * CLOCK_MONOTONIC, at() a timer on the daemon's loop, and send() / gpu_run()
 * go to the daemon, which turns them into gRPC messages and executor runs.
 * Everything runs on the loop thread. */
#ifndef NX_RENV_H
#define NX_RENV_H

#include "env.h"
#include "loop.h"

typedef struct nx_renv {
    nx_env env;
    nx_loop *loop;
    void (*send)(void *ctx, int dst, nx_msg *m);
    void (*gpu_run)(void *ctx, nx_batch *b);   /* NULL on nodes without a GPU */
    void *ctx;
} nx_renv;

void nx_renv_init(nx_renv *e, nx_loop *loop, void (*send)(void *, int, nx_msg *),
                  void (*gpu_run)(void *, nx_batch *), void *ctx);

#endif
