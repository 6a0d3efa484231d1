/* renv.c — the engine's env vtable over a daemon's loop (see renv.h). */
#include "renv.h"

static nx_time renv_now(nx_env *e) { return nx_loop_now(((nx_renv *)e)->loop); }

static void renv_at(nx_env *e, nx_event *ev) { nx_loop_at(((nx_renv *)e)->loop, ev); }

static void renv_send(nx_env *e, int dst, nx_msg *m)
{
    nx_renv *r = (nx_renv *)e;
    r->send(r->ctx, dst, m);
}

static void renv_gpu_run(nx_env *e, nx_batch *b)
{
    nx_renv *r = (nx_renv *)e;
    NX_ASSERT(r->gpu_run);
    r->gpu_run(r->ctx, b);
}

static bool renv_cancel(nx_env *e, nx_event *ev) { return nx_loop_cancel(((nx_renv *)e)->loop, ev); }

static const nx_env_ops renv_ops = {
    .now = renv_now,
    .at = renv_at,
    .send = renv_send,
    .gpu_run = renv_gpu_run,
    .cancel = renv_cancel,
};

void nx_renv_init(nx_renv *e, nx_loop *loop, void (*send)(void *, int, nx_msg *),
                  void (*gpu_run)(void *, nx_batch *), void *ctx)
{
    e->env.ops = &renv_ops;
    e->loop = loop;
    e->send = send;
    e->gpu_run = gpu_run;
    e->ctx = ctx;
}
