/* exec_dnn.c — the cpu and cuda executors of a backend (see exec.h): the
 * DNN engine (real/dnn/graph.h) runs each session's ONNX model,
 * MODELS/<model>.onnx, loaded and prepared once at start for every model of
 * the catalog (the CPU executor at up to DNN_MAX_BATCH, larger batches run in
 * chunks; the CUDA executor at the profile's largest batch, run at a few
 * batch sizes only, each run once before the backend registers, since its
 * first run at a batch size tunes and captures a CUDA graph).
 *
 * One executor thread runs batches; the loop thread gathers a batch's inputs
 * into the model's input buffer before handing it over (pre-processing) and
 * scatters the outputs into the requests after it comes back (post-
 * processing), both while no batch runs on this backend's executor; queueing,
 * replies and the network go on meanwhile. The hand-over is a mutex and a
 * condition variable; the completion comes back through nx_loop_post().
 * A request whose input is not the model's input size is answered "bad
 * request" (x->bad) and takes no part in the batch; with cfg->synthetic every
 * request is accepted whatever its size and the model reads the rows of its
 * own input buffer, filled once with pseudo-random values (the copies to the
 * GPU still happen: fidelity runs at thousands of queries per second that
 * would otherwise carry 600 KB images through three gRPC hops).
 *
 * Batch sizes: a CUDA model whose profile says `padded: true` runs at its
 * profile's measured batch sizes (a batch is padded up to the next one, as
 * the simulator then charges it); otherwise at powers of two.
 *
 * Prefix batching: a batch of a shared-prefix group (b->nparts > 0) runs the
 * prefix (the full model's ONNX cut by nx_graph_cut at its default tensor, as
 * nexus-profile --part measures it) on every request, then each member
 * session's suffix on its own rows. Members whose suffix profile is the same
 * share one suffix executor: the variants differ only in weight values,
 * which do not change the time. */
#include "exec.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "graph.h"

#define CPU_MAX_BATCH 32   /* the CPU reserves activations for this batch; larger ones are chunked */
/* CUDA: the first run at a batch size tunes and captures a CUDA graph (tens to hundreds of
 * ms), so a batch runs at the next of a few sizes (the rows above it are padding, their
 * outputs ignored), and every one of those is run once before the backend serves */

#define MAX_SIZES 64

typedef struct model {
    const nx_profile *prof;
    nx_graph g;
    nx_exec *e;
    int max_batch;
    int sizes[MAX_SIZES], nsizes;    /* the batch sizes it runs (ascending; CUDA) */
    size_t in_elems, out_elems;      /* per request */
    float *in, *out;                 /* rows x elems: the largest batch of the catalog */
} model;

typedef struct dnn {
    nx_bexec_cfg cfg;
    const nx_exec_ops *ops;
    model *models;
    int nmodels;
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
    int rows;                        /* the largest batch of any session (buffer rows) */
    /* prefix batching: the parts of the running batch */
    int nparts;
    model *part_m[NX_BATCH_MAX_PARTS];
    int part_cnt[NX_BATCH_MAX_PARTS];
    int *part_of;                    /* per good row: its part */
    float *fout;                     /* per good row: the suffix's output (max_batch x max out) */
    size_t fout_elems;               /* per row */
    bool job;                        /* handed to the thread, not yet taken */
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

/* The batch size m runs k requests at: k itself (CPU), else the next size it captured. */
static int run_size(const model *m, int k)
{
    for (int i = 0; i < m->nsizes; i++)
        if (m->sizes[i] >= k)
            return m->sizes[i];
    return k;
}

/* Run n rows of `in` through m into `out` (chunks of max_batch, each padded up to a run size;
 * the buffers hold d->rows rows, and a chunk's padding rows stay inside them). */
static int run_rows(dnn *d, model *m, const float *in0, float *out0, int n, nx_errbuf *eb)
{
    int rc = 0;
    for (int off = 0; off < n && rc == 0; off += m->max_batch) {
        int k = n - off < m->max_batch ? n - off : m->max_batch;
        const float *in[1] = {in0 + (size_t)off * m->in_elems};
        float *out[1] = {out0 + (size_t)off * m->out_elems};
        rc = d->ops->run(m->e, run_size(m, k), in, out, eb);
    }
    return rc;
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
        nx_errbuf eb;
        nx_err_clear(&eb);
        int rc = run_rows(d, m, m->in, m->out, d->n, &eb);
        for (int k = 0; k < d->nparts && rc == 0; k++) { /* each member's suffix on its rows */
            model *sm = d->part_m[k];
            int r = 0;
            for (int j = 0; j < d->n; j++)
                if (d->part_of[j] == k)
                    memcpy(sm->in + (size_t)r++ * sm->in_elems, m->out + (size_t)j * m->out_elems,
                           sm->in_elems * sizeof(float));
            rc = run_rows(d, sm, sm->in, sm->out, r, &eb);
            r = 0;
            for (int j = 0; j < d->n && rc == 0; j++)
                if (d->part_of[j] == k)
                    memcpy(d->fout + (size_t)j * d->fout_elems, sm->out + (size_t)r++ * sm->out_elems,
                           sm->out_elems * sizeof(float));
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
        const float *src = d->nparts ? d->fout + (size_t)j * d->fout_elems
                                     : m->out + (size_t)j * m->out_elems;
        size_t elems = d->nparts ? d->part_m[d->part_of[j]]->out_elems : m->out_elems;
        x->nout = elems * sizeof(float);
        x->out = nx_malloc(x->nout);
        memcpy(x->out, src, x->nout);
    }
    d->b = NULL;
    d->cfg.done(d->cfg.ctx, b, d->exec_ns);
}

static model *find_model(dnn *d, const nx_profile *p)
{
    for (int i = 0; i < d->nmodels; i++)
        if (d->models[i].prof == p)
            return &d->models[i];
    return NULL;
}

static void dnn_run(void *state, nx_batch *b, nx_xreq *const *x)
{
    dnn *d = state;
    NX_ASSERT(!d->b);
    model *m = find_model(d, b->prof);
    NX_ASSERT(m);
    d->b = b;
    d->x = x;
    d->m = m;
    d->n = 0;
    d->nparts = b->nparts;
    for (int k = 0; k < b->nparts; k++) {
        d->part_m[k] = find_model(d, b->part_prof[k]);
        NX_ASSERT(d->part_m[k]);
    }
    size_t want = m->in_elems * sizeof(float);
    for (int i = 0; i < b->size; i++) { /* gather the inputs */
        if (!d->cfg.synthetic && x[i]->nin != want) {
            x[i]->bad = 1;
            continue;
        }
        if (!d->cfg.synthetic)
            memcpy(m->in + (size_t)d->n * m->in_elems, x[i]->in, want);
        if (b->nparts) {
            int k = 0;
            while (k < b->nparts && b->part_session[k] != b->reqs[i]->session)
                k++;
            NX_ASSERT(k < b->nparts);
            d->part_of[d->n] = k;
        }
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
    free(d->idx);
    free(d->part_of);
    free(d->fout);
    pthread_mutex_destroy(&d->mu);
    pthread_cond_destroy(&d->cv);
    free(d);
}

/* Load p's model: ONNX file MODELS/<onnx>.onnx, cut to its prefix (part 1) or suffix (part 2)
 * for prefix batching; CUDA: its run sizes, each tuned and captured now rather than serving. */
static int load_model(dnn *d, model *m, const nx_profile *p, const char *onnx, int part,
                      bool cpu, nx_errbuf *eb)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s.onnx", d->cfg.models, onnx);
    m->prof = p;
    nx_graph_init(&m->g);
    int rc = nx_onnx_load(&m->g, path, eb);
    if (rc == 0 && part)
        rc = nx_graph_cut(&m->g, NULL, part == 2, eb);
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
    /* rows for the largest batch, rounded up to a whole chunk (padding stays inside) */
    size_t rows = (size_t)(d->rows + m->max_batch - 1) / (size_t)m->max_batch * (size_t)m->max_batch;
    m->in = nx_calloc(rows * m->in_elems, sizeof(float));
    m->out = nx_calloc(rows * m->out_elems, sizeof(float));
    if (d->cfg.synthetic) { /* the rows every batch reads: pseudo-random in [-1, 1) */
        uint32_t r = 12345;
        for (size_t i = 0; i < rows * m->in_elems; i++) {
            r = r * 1664525u + 1013904223u;
            m->in[i] = (float)(r >> 8) / 8388608.0f - 1.0f;
        }
    }
    m->nsizes = 0;
    if (cpu)
        return 0;
    if (p->padded) { /* the profile's measured sizes */
        for (int i = 0; i < p->npoints && m->nsizes < MAX_SIZES; i++)
            if (p->points[i].batch <= m->max_batch)
                m->sizes[m->nsizes++] = p->points[i].batch;
    } else {
        for (int b = 1; b < m->max_batch && m->nsizes < MAX_SIZES - 1; b *= 2)
            m->sizes[m->nsizes++] = b;
    }
    if (m->nsizes == 0 || m->sizes[m->nsizes - 1] != m->max_batch)
        m->sizes[m->nsizes++] = m->max_batch;
    const float *in[1] = {m->in};
    float *out[1] = {m->out};
    for (int i = 0; i < m->nsizes && rc == 0; i++)
        rc = d->ops->run(m->e, m->sizes[i], in, out, eb);
    return rc;
}

/* The model of profile p (loaded once per profile). */
static int need_model(dnn *d, const nx_profile *p, const char *onnx, int part, bool cpu,
                      nx_errbuf *eb)
{
    if (!p || find_model(d, p))
        return 0;
    return load_model(d, &d->models[d->nmodels++], p, onnx, part, cpu, eb);
}

static int dnn_init_with(void **state, const nx_bexec_cfg *cfg, const nx_exec_ops *ops,
                         nx_errbuf *eb)
{
    *state = NULL;
    dnn *d = nx_calloc(1, sizeof *d);
    d->cfg = *cfg;
    d->ops = ops;
    pthread_mutex_init(&d->mu, NULL);
    pthread_cond_init(&d->cv, NULL);
    d->done.fn = batch_back;
    d->done.ctx = d;
    const nx_catalog *cat = cfg->cat;
    d->models = nx_calloc((size_t)cat->nsess * 3, sizeof(model)); /* full, prefix, suffix */
    int rc = 0, maxb = 1;
    bool cpu = ops == &nx_exec_cpu_ops;
    for (int s = 0; s < cat->nsess; s++) {
        const nx_session *ss = &cat->sess[s];
        if (ss->prof->max_batch > maxb)
            maxb = ss->prof->max_batch;
        if (ss->group >= 0 && ss->prefix->max_batch > maxb)
            maxb = ss->prefix->max_batch;
    }
    d->rows = maxb;
    for (int s = 0; s < cat->nsess && rc == 0; s++) {
        const nx_session *ss = &cat->sess[s];
        const nx_profile *p = ss->prof;
        rc = need_model(d, p, p->model, 0, cpu, eb);
        if (ss->group >= 0 && rc == 0) { /* prefix batching: the trunk and this member's head */
            rc = need_model(d, ss->prefix, p->model, 1, cpu, eb);
            if (rc == 0)
                rc = need_model(d, ss->suffix, p->model, 2, cpu, eb);
        }
    }
    size_t fo = 1;
    for (int i = 0; i < d->nmodels; i++)
        if (d->models[i].out_elems > fo)
            fo = d->models[i].out_elems;
    d->fout_elems = fo;
    d->idx = nx_malloc(sizeof(int) * (size_t)maxb);
    d->part_of = nx_malloc(sizeof(int) * (size_t)maxb);
    d->fout = nx_malloc(sizeof(float) * (size_t)maxb * fo);
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
