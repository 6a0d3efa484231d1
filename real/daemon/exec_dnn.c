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
 * Concurrent GPU sharing (cfg->concurrent: TF Serving's and Clipper's model
 * servers): every server (a session, or a prefix group) gets a lane of its
 * own, an executor thread with its own model instances (CUDA: its own stream
 * and CUDA graphs), so batches of several servers run on the GPU at once and
 * slow each other down as the device does. Otherwise one lane serves all.
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

typedef struct dnn dnn;

/* One executor thread and the models it runs: every session's (exclusive) or one model
 * server's (concurrent). */
typedef struct lane {
    dnn *d;
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
    /* prefix batching: the parts of the running batch */
    int nparts;
    model *part_m[NX_BATCH_MAX_PARTS];
    int *part_of;                    /* per good row: its part */
    float *fout;                     /* per good row: the suffix's output (max_batch x max out) */
    size_t fout_elems;               /* per row */
    bool job;                        /* handed to the thread, not yet taken */
    int rc;
    char err[256];
    nx_time exec_ns;
    nx_post done;
} lane;

struct dnn {
    nx_bexec_cfg cfg;
    const nx_exec_ops *ops;
    int rows;                        /* the largest batch of any session (buffer rows) */
    lane *lanes;
    int nlanes;
    int *lane_of;                    /* per session: its lane */
};

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
static int run_rows(const dnn *d, model *m, const float *in0, float *out0, int n, nx_errbuf *eb)
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
    lane *L = arg;
    dnn *d = L->d;
    pthread_mutex_lock(&L->mu);
    for (;;) {
        while (!L->job && !L->quit)
            pthread_cond_wait(&L->cv, &L->mu);
        if (L->quit)
            break;
        L->job = false;
        pthread_mutex_unlock(&L->mu);
        model *m = L->m;
        nx_time t0 = mono();
        nx_errbuf eb;
        nx_err_clear(&eb);
        int rc = run_rows(d, m, m->in, m->out, L->n, &eb);
        for (int k = 0; k < L->nparts && rc == 0; k++) { /* each member's suffix on its rows */
            model *sm = L->part_m[k];
            int r = 0;
            for (int j = 0; j < L->n; j++)
                if (L->part_of[j] == k)
                    memcpy(sm->in + (size_t)r++ * sm->in_elems, m->out + (size_t)j * m->out_elems,
                           sm->in_elems * sizeof(float));
            rc = run_rows(d, sm, sm->in, sm->out, r, &eb);
            r = 0;
            for (int j = 0; j < L->n && rc == 0; j++)
                if (L->part_of[j] == k)
                    memcpy(L->fout + (size_t)j * L->fout_elems, sm->out + (size_t)r++ * sm->out_elems,
                           sm->out_elems * sizeof(float));
        }
        L->exec_ns = mono() - t0;
        L->rc = rc;
        if (rc < 0)
            snprintf(L->err, sizeof L->err, "%s", eb.msg);
        nx_loop_post(d->cfg.loop, &L->done);
        pthread_mutex_lock(&L->mu);
    }
    pthread_mutex_unlock(&L->mu);
    return NULL;
}

/* Loop thread: the batch is back; scatter the outputs. */
static void batch_back(nx_post *p)
{
    lane *L = p->ctx;
    dnn *d = L->d;
    nx_batch *b = L->b;
    model *m = L->m;
    if (L->rc < 0)
        fprintf(stderr, "nexus-backend: executor: %s\n", L->err);
    for (int j = 0; j < L->n; j++) {
        nx_xreq *x = L->x[L->idx[j]];
        if (L->rc < 0) {
            x->bad = 1;
            continue;
        }
        const float *src = L->nparts ? L->fout + (size_t)j * L->fout_elems
                                     : m->out + (size_t)j * m->out_elems;
        size_t elems = L->nparts ? L->part_m[L->part_of[j]]->out_elems : m->out_elems;
        x->nout = elems * sizeof(float);
        x->out = nx_malloc(x->nout);
        memcpy(x->out, src, x->nout);
    }
    L->b = NULL;
    d->cfg.done(d->cfg.ctx, b, L->exec_ns);
}

static model *find_model(lane *L, const nx_profile *p)
{
    for (int i = 0; i < L->nmodels; i++)
        if (L->models[i].prof == p)
            return &L->models[i];
    return NULL;
}

static void dnn_run(void *state, nx_batch *b, nx_xreq *const *x)
{
    dnn *d = state;
    NX_ASSERT(b->session >= 0 && b->session < d->cfg.cat->nsess);
    lane *L = &d->lanes[d->lane_of[b->session]];
    NX_ASSERT(!L->b);
    model *m = find_model(L, b->prof);
    NX_ASSERT(m);
    L->b = b;
    L->x = x;
    L->m = m;
    L->n = 0;
    L->nparts = b->nparts;
    for (int k = 0; k < b->nparts; k++) {
        L->part_m[k] = find_model(L, b->part_prof[k]);
        NX_ASSERT(L->part_m[k]);
    }
    size_t want = m->in_elems * sizeof(float);
    for (int i = 0; i < b->size; i++) { /* gather the inputs */
        if (!d->cfg.synthetic && x[i]->nin != want) {
            x[i]->bad = 1;
            continue;
        }
        if (!d->cfg.synthetic)
            memcpy(m->in + (size_t)L->n * m->in_elems, x[i]->in, want);
        if (b->nparts) {
            int k = 0;
            while (k < b->nparts && b->part_session[k] != b->reqs[i]->session)
                k++;
            NX_ASSERT(k < b->nparts);
            L->part_of[L->n] = k;
        }
        L->idx[L->n++] = i;
    }
    if (L->n == 0) { /* nothing to run: answer at once, through the loop */
        L->exec_ns = 0;
        L->rc = 0;
        nx_loop_post(d->cfg.loop, &L->done);
        return;
    }
    pthread_mutex_lock(&L->mu);
    L->job = true;
    pthread_cond_signal(&L->cv);
    pthread_mutex_unlock(&L->mu);
}

static void lane_free(dnn *d, lane *L)
{
    if (L->th_on) {
        pthread_mutex_lock(&L->mu);
        L->quit = true;
        pthread_cond_signal(&L->cv);
        pthread_mutex_unlock(&L->mu);
        pthread_join(L->th, NULL);
    }
    for (int i = 0; i < L->nmodels; i++) {
        model *m = &L->models[i];
        if (m->e)
            d->ops->free(m->e);
        nx_graph_free(&m->g);
        free(m->in);
        free(m->out);
    }
    free(L->models);
    free(L->idx);
    free(L->part_of);
    free(L->fout);
    pthread_mutex_destroy(&L->mu);
    pthread_cond_destroy(&L->cv);
}

static void dnn_free(void *state)
{
    dnn *d = state;
    if (!d)
        return;
    for (int i = 0; i < d->nlanes; i++)
        lane_free(d, &d->lanes[i]);
    free(d->lanes);
    free(d->lane_of);
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

/* The model of profile p in lane L (loaded once per profile and lane). */
static int need_model(dnn *d, lane *L, const nx_profile *p, const char *onnx, int part, bool cpu,
                      nx_errbuf *eb)
{
    if (!p || find_model(L, p))
        return 0;
    return load_model(d, &L->models[L->nmodels++], p, onnx, part, cpu, eb);
}

/* Lane li: the models of the sessions whose lane it is, its buffers and its thread. */
static int lane_init(dnn *d, lane *L, int li, nx_errbuf *eb)
{
    const nx_catalog *cat = d->cfg.cat;
    bool cpu = d->ops == &nx_exec_cpu_ops;
    L->models = nx_calloc((size_t)cat->nsess * 3, sizeof(model)); /* full, prefix, suffix */
    int rc = 0;
    for (int s = 0; s < cat->nsess && rc == 0; s++) {
        if (d->lane_of[s] != li)
            continue;
        const nx_session *ss = &cat->sess[s];
        const nx_profile *p = ss->prof;
        rc = need_model(d, L, p, p->model, 0, cpu, eb);
        if (ss->group >= 0 && rc == 0) { /* prefix batching: the trunk and this member's head */
            rc = need_model(d, L, ss->prefix, p->model, 1, cpu, eb);
            if (rc == 0)
                rc = need_model(d, L, ss->suffix, p->model, 2, cpu, eb);
        }
    }
    size_t fo = 1;
    for (int i = 0; i < L->nmodels; i++)
        if (L->models[i].out_elems > fo)
            fo = L->models[i].out_elems;
    L->fout_elems = fo;
    L->idx = nx_malloc(sizeof(int) * (size_t)d->rows);
    L->part_of = nx_malloc(sizeof(int) * (size_t)d->rows);
    L->fout = nx_malloc(sizeof(float) * (size_t)d->rows * fo);
    if (rc == 0 && pthread_create(&L->th, NULL, worker, L) != 0) {
        nx_err_set(eb, NX_ERR_IO, "executor: cannot start its thread");
        rc = NX_ERR_IO;
    }
    L->th_on = rc == 0;
    return rc;
}

static int dnn_init_with(void **state, const nx_bexec_cfg *cfg, const nx_exec_ops *ops,
                         nx_errbuf *eb)
{
    *state = NULL;
    dnn *d = nx_calloc(1, sizeof *d);
    d->cfg = *cfg;
    d->ops = ops;
    const nx_catalog *cat = cfg->cat;
    int maxb = 1;
    for (int s = 0; s < cat->nsess; s++) {
        const nx_session *ss = &cat->sess[s];
        if (ss->prof->max_batch > maxb)
            maxb = ss->prof->max_batch;
        if (ss->group >= 0 && ss->prefix->max_batch > maxb)
            maxb = ss->prefix->max_batch;
    }
    d->rows = maxb;
    /* lanes: one for all, or (concurrent) one per model server: a session, or a prefix group
     * (whose batches may be any member's) */
    d->lane_of = nx_calloc((size_t)cat->nsess + 1, sizeof *d->lane_of);
    d->nlanes = 1;
    for (int s = 0; cfg->concurrent && s < cat->nsess; s++) {
        int g = cat->sess[s].group, t = 0;
        while (t < s && !(g >= 0 && cat->sess[t].group == g))
            t++;
        d->lane_of[s] = t < s ? d->lane_of[t] : (s == 0 ? 0 : d->nlanes++);
    }
    d->lanes = nx_calloc((size_t)d->nlanes, sizeof *d->lanes);
    for (int i = 0; i < d->nlanes; i++) { /* (all set up first: dnn_free frees every lane) */
        lane *L = &d->lanes[i];
        L->d = d;
        pthread_mutex_init(&L->mu, NULL);
        pthread_cond_init(&L->cv, NULL);
        L->done.fn = batch_back;
        L->done.ctx = L;
    }
    int rc = 0;
    for (int i = 0; i < d->nlanes && rc == 0; i++)
        rc = lane_init(d, &d->lanes[i], i, eb);
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
