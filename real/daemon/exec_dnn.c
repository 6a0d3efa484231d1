/* exec_dnn.c — the cpu and cuda executors of a backend (see exec.h): the
 * DNN engine (real/dnn/graph.h) runs each session's ONNX model,
 * MODELS/<model>.onnx, loaded and prepared once at start for every model of
 * the catalog (the CPU executor at up to DNN_MAX_BATCH, larger batches run in
 * chunks; the CUDA executor at the profile's largest batch, run at power-of-
 * two batch sizes only, each run once before the backend registers, since its
 * first run at a batch size tunes and captures a CUDA graph).
 *
 * One executor thread runs batches; the loop thread gathers a batch's inputs
 * into the model's input buffer before handing it over (pre-processing) and
 * scatters the outputs into the requests after it comes back (post-
 * processing), both while no batch runs on this backend's executor; queueing,
 * replies and the network go on meanwhile. The hand-over is a mutex and a
 * condition variable; the completion comes back through nx_loop_post().
 * A request whose input is not the model's input size is answered "bad
 * request" (x->bad) and takes no part in the batch. */
#include "exec.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "graph.h"

#define CPU_MAX_BATCH 32   /* the CPU reserves activations for this batch; larger ones are chunked */
/* CUDA: the first run at a batch size tunes and captures a CUDA graph (tens to hundreds of
 * ms), so batches run at power-of-two sizes only (the rows above the batch are padding and
 * their outputs are ignored) and every one of those is run once before the backend serves */

typedef struct model {
    const nx_profile *prof;
    nx_graph g;
    nx_exec *e;
    int max_batch;
    size_t in_elems, out_elems;      /* per request */
    float *in, *out;                 /* max_batch x elems */
} model;

typedef struct dnn {
    nx_bexec_cfg cfg;
    const nx_exec_ops *ops;
    model *models;
    int nmodels;
    int *model_of;                   /* per session */
    pthread_t th;
    bool th_on;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool quit;
    /* the batch being run */
    nx_batch *b;
    nx_xreq *const *x;
    model *m;
    int n;                           /* requests with a good input */
    int *idx;                        /* their positions in the batch */
    bool job;                        /* handed to the thread, not yet taken */
    bool pow2;                       /* run power-of-two batch sizes only (CUDA) */
    int rc;
    char err[256];
    nx_time exec_ns;
    nx_post done;
} dnn;

static nx_time mono(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (nx_time)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Executor thread: run what the loop handed over, post the completion. */
static void *worker(void *arg)
{
    dnn *d = arg;
    pthread_mutex_lock(&d->mu);
    for (;;) {
        while (!d->job && !d->quit)
            pthread_cond_wait(&d->cv, &d->mu);
        if (d->quit)
            break;
        d->job = false;
        pthread_mutex_unlock(&d->mu);
        model *m = d->m;
        nx_time t0 = mono();
        int rc = 0;
        nx_errbuf eb;
        nx_err_clear(&eb);
        for (int off = 0; off < d->n && rc == 0; off += m->max_batch) {
            int k = d->n - off < m->max_batch ? d->n - off : m->max_batch;
            if (d->pow2) { /* pad up to a captured size */
                int p = 1;
                while (p < k)
                    p *= 2;
                k = p < m->max_batch ? p : m->max_batch;
            }
            const float *in[1] = {m->in + (size_t)off * m->in_elems};
            float *out[1] = {m->out + (size_t)off * m->out_elems};
            rc = d->ops->run(m->e, k, in, out, &eb);
        }
        d->exec_ns = mono() - t0;
        d->rc = rc;
        if (rc < 0)
            snprintf(d->err, sizeof d->err, "%s", eb.msg);
        nx_loop_post(d->cfg.loop, &d->done);
        pthread_mutex_lock(&d->mu);
    }
    pthread_mutex_unlock(&d->mu);
    return NULL;
}

/* Loop thread: the batch is back; scatter the outputs. */
static void batch_back(nx_post *p)
{
    dnn *d = p->ctx;
    nx_batch *b = d->b;
    model *m = d->m;
    if (d->rc < 0)
        fprintf(stderr, "nexus-backend: executor: %s\n", d->err);
    for (int j = 0; j < d->n; j++) {
        nx_xreq *x = d->x[d->idx[j]];
        if (d->rc < 0) {
            x->bad = 1;
            continue;
        }
        x->nout = m->out_elems * sizeof(float);
        x->out = nx_malloc(x->nout);
        memcpy(x->out, m->out + (size_t)j * m->out_elems, x->nout);
    }
    d->b = NULL;
    d->cfg.done(d->cfg.ctx, b, d->exec_ns);
}

static void dnn_run(void *state, nx_batch *b, nx_xreq *const *x)
{
    dnn *d = state;
    NX_ASSERT(!d->b);
    model *m = &d->models[d->model_of[b->session]];
    d->b = b;
    d->x = x;
    d->m = m;
    d->n = 0;
    size_t want = m->in_elems * sizeof(float);
    for (int i = 0; i < b->size; i++) { /* gather the inputs */
        if (x[i]->nin != want) {
            x[i]->bad = 1;
            continue;
        }
        memcpy(m->in + (size_t)d->n * m->in_elems, x[i]->in, want);
        d->idx[d->n++] = i;
    }
    if (d->n == 0) { /* nothing to run: answer at once, through the loop */
        d->exec_ns = 0;
        d->rc = 0;
        nx_loop_post(d->cfg.loop, &d->done);
        return;
    }
    pthread_mutex_lock(&d->mu);
    d->job = true;
    pthread_cond_signal(&d->cv);
    pthread_mutex_unlock(&d->mu);
}

static void dnn_free(void *state)
{
    dnn *d = state;
    if (!d)
        return;
    if (d->th_on) {
        pthread_mutex_lock(&d->mu);
        d->quit = true;
        pthread_cond_signal(&d->cv);
        pthread_mutex_unlock(&d->mu);
        pthread_join(d->th, NULL);
    }
    for (int i = 0; i < d->nmodels; i++) {
        model *m = &d->models[i];
        if (m->e)
            d->ops->free(m->e);
        nx_graph_free(&m->g);
        free(m->in);
        free(m->out);
    }
    free(d->models);
    free(d->model_of);
    free(d->idx);
    pthread_mutex_destroy(&d->mu);
    pthread_cond_destroy(&d->cv);
    free(d);
}

static int load_model(dnn *d, model *m, const nx_profile *p, bool cpu, nx_errbuf *eb)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s.onnx", d->cfg.models, p->model);
    m->prof = p;
    nx_graph_init(&m->g);
    int rc = nx_onnx_load(&m->g, path, eb);
    m->max_batch = cpu && p->max_batch > CPU_MAX_BATCH ? CPU_MAX_BATCH : p->max_batch;
    if (rc == 0)
        rc = nx_graph_prepare(&m->g, m->max_batch, eb);
    if (rc == 0 && (m->g.ninputs != 1 || m->g.noutputs != 1)) {
        nx_err_set(eb, NX_ERR_NOTSUP, "%s: %d inputs and %d outputs; the backend serves models "
                                      "of one input and one output",
                   path, m->g.ninputs, m->g.noutputs);
        rc = NX_ERR_NOTSUP;
    }
    if (rc == 0) {
        nx_precision prec = strcmp(p->precision, "fp16") == 0 ? NX_PREC_FP16 : NX_PREC_FP32;
        rc = d->ops->init(&m->e, &m->g, prec, d->cfg.device, eb);
    }
    if (rc < 0)
        return rc;
    m->in_elems = nx_tensor_elems(&m->g.t[m->g.inputs[0]], 1);
    m->out_elems = nx_tensor_elems(&m->g.t[m->g.outputs[0]], 1);
    m->in = nx_calloc((size_t)m->max_batch * m->in_elems, sizeof(float));
    m->out = nx_calloc((size_t)m->max_batch * m->out_elems, sizeof(float));
    if (!cpu) { /* tune and capture every size a batch will run at, now rather than serving */
        const float *in[1] = {m->in};
        float *out[1] = {m->out};
        for (int b = 1; rc == 0; b *= 2) {
            int k = b < m->max_batch ? b : m->max_batch;
            rc = d->ops->run(m->e, k, in, out, eb);
            if (k == m->max_batch)
                break;
        }
    }
    return rc;
}

static int dnn_init_with(void **state, const nx_bexec_cfg *cfg, const nx_exec_ops *ops,
                         nx_errbuf *eb)
{
    *state = NULL;
    dnn *d = nx_calloc(1, sizeof *d);
    d->cfg = *cfg;
    d->ops = ops;
    d->pow2 = ops != &nx_exec_cpu_ops;
    pthread_mutex_init(&d->mu, NULL);
    pthread_cond_init(&d->cv, NULL);
    d->done.fn = batch_back;
    d->done.ctx = d;
    const nx_catalog *cat = cfg->cat;
    d->model_of = nx_malloc(sizeof(int) * (size_t)cat->nsess);
    d->models = nx_calloc((size_t)cat->nsess, sizeof(model));
    int rc = 0, maxb = 1;
    bool cpu = ops == &nx_exec_cpu_ops;
    for (int s = 0; s < cat->nsess && rc == 0; s++) {
        const nx_profile *p = cat->sess[s].prof;
        int k = 0;
        while (k < d->nmodels && d->models[k].prof != p)
            k++;
        if (k == d->nmodels)
            rc = load_model(d, &d->models[d->nmodels++], p, cpu, eb);
        d->model_of[s] = k;
        if (p->max_batch > maxb)
            maxb = p->max_batch;
    }
    d->idx = nx_malloc(sizeof(int) * (size_t)maxb);
    if (rc == 0 && pthread_create(&d->th, NULL, worker, d) != 0) {
        nx_err_set(eb, NX_ERR_IO, "executor: cannot start its thread");
        rc = NX_ERR_IO;
    }
    d->th_on = rc == 0;
    if (rc < 0) {
        dnn_free(d);
        return rc;
    }
    *state = d;
    return 0;
}

static int cpu_init(void **state, const nx_bexec_cfg *cfg, nx_errbuf *eb)
{
    return dnn_init_with(state, cfg, &nx_exec_cpu_ops, eb);
}

static int cuda_init(void **state, const nx_bexec_cfg *cfg, nx_errbuf *eb)
{
    return dnn_init_with(state, cfg, &nx_exec_cuda_ops, eb);
}

const nx_bexec_ops nx_bexec_cpu_ops = {
    .name = "cpu", .init = cpu_init, .run = dnn_run, .free = dnn_free};
const nx_bexec_ops nx_bexec_cuda_ops = {
    .name = "cuda", .init = cuda_init, .run = dnn_run, .free = dnn_free};
