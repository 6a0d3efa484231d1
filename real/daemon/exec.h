/* exec.h — a backend's executor: what runs a batch the engine formed.
 *
 *   emulated   waits out a latency drawn from the session's profile exactly as
 *              the simulator draws it (Gamma with the profile's mean and std
 *              at the batch size, suffix parts added), on a loop timer: no
 *              thread, no GPU; the output of each request is a checksum of its
 *              input (FP32 [sum, count]) so clients can check the data path.
 *   cpu, cuda  run the session's ONNX model (MODELS/<model>.onnx) with the
 *              DNN engine's executors (real/dnn/graph.h) on an executor thread;
 *              the loop thread gathers inputs into the batch before it starts
 *              and scatters outputs after it ends, while the next batch runs.
 *
 * run() is called on the loop thread with a batch whose requests are x[0..
 * b->size); done() is called on the loop thread when the batch is over, with
 * each x[i]->out filled (malloc'd; the backend frees it) and the executor's
 * time. One batch at a time, unless cfg->concurrent (the policy's
 * gpu_sharing: concurrent, TF Serving's and Clipper's model servers): then
 * run() may be called again before an earlier batch is done, with at most one
 * batch per model server (a session, or a prefix group) in flight; emulated
 * shares its emulated GPU as the simulator does (the interference table), cpu
 * and cuda give every server its own executor thread and model instances
 * (cuda: its own stream and CUDA graphs), so the slowdown is the device's. */
#ifndef NX_EXEC_H
#define NX_EXEC_H

#include "catalog.h"
#include "env.h"
#include "loop.h"

typedef struct nx_xreq {
    const uint8_t *in;      /* the request's input bytes (FP32 for cpu/cuda) */
    size_t nin;
    uint8_t *out;           /* filled by the executor (malloc'd) */
    size_t nout;
    int bad;                /* the input did not fit the model: no output */
} nx_xreq;

typedef void (*nx_exec_done_fn)(void *ctx, nx_batch *b, nx_time exec_ns);

typedef struct nx_bexec_cfg {
    const nx_catalog *cat;
    nx_loop *loop;
    const char *models;     /* directory of <model>.onnx (cpu, cuda) */
    int device;             /* GPU index (cuda) */
    uint64_t seed;          /* emulated: the latency draws */
    bool synthetic;         /* cpu, cuda: ignore request inputs, run the model's own rows */
    bool concurrent;        /* batches of different servers run at once (see above) */
    nx_exec_done_fn done;
    void *ctx;
} nx_bexec_cfg;

typedef struct nx_bexec_ops {
    const char *name;
    int (*init)(void **state, const nx_bexec_cfg *cfg, nx_errbuf *eb);
    void (*run)(void *state, nx_batch *b, nx_xreq *const *x);
    void (*free)(void *state);
    /* Optional: a line about the executor's work so far (for the stop log). */
    void (*report)(void *state, char *buf, size_t n);
} nx_bexec_ops;

extern const nx_bexec_ops nx_bexec_emulated_ops, nx_bexec_cpu_ops, nx_bexec_cuda_ops;

/* The executor called name ("emulated", "cpu", "cuda"), or NULL. */
const nx_bexec_ops *nx_bexec_find(const char *name);

#endif
