/* check_main.c — nexus-dnn-check: the CUDA executor against the CPU reference on one model,
 * and its device-only latency per batch size.
 *
 *   nexus-dnn-check MODEL.onnx [--precision fp32|fp16|both] [--batches 1,4] [--bench LIST]
 *                   [--warmup N] [--reps N] [--tol-fp32 X] [--tol-fp16 X] [--device N]
 *                   [--seed N] [--json FILE] [--no-check]
 *
 * Check: for every batch of --batches, one seeded N(0,1) input; the CPU executor runs it in
 * fp32 and (for fp16) in its fp16 emulation (every tensor rounded to half), the CUDA executor
 * in the precision under test. The error is normalized: max|gpu - cpu| / max|cpu| over each
 * output; NaN counts as infinite. The GPU passes when its error against the CPU executor of
 * the same precision is within the tolerance (defaults: fp32 with TF32 tensor cores 1e-2,
 * fp16 2e-2); the error against CPU fp32 is printed too (what fp16 costs).
 *
 * Bench: per batch of LIST (e.g. 1,2,4-8,256), `--warmup` untimed and `--reps` timed
 * replays of the batch's CUDA graph with the input already on the GPU, as
 * ../shared/data/h100-pytorch-cudagraph.py measures PyTorch (5 and 40 by default). The
 * first use of a batch size tunes and captures it; that time is reported as tune_s.
 *
 * Streams (--streams K, with --bench LIST): GPU sharing as the paper's baselines do it, several
 * model servers launching on one GPU at once. K executors of the model (each its own CUDA
 * stream, memory and CUDA graphs, tuned one after the other) replay the batch's graph
 * concurrently, k = 1..K of them at a time, one host thread each, started together; each
 * replay is timed with events on its own stream, so a stream's time includes what it waits for
 * the others. Per k: the mean per-batch latency over every stream's timed replays, written as
 * one `interference` line (and a YAML entry for profiles/<gpu>/interference.yml, see
 * real/dnn/cuda/README.md) with the k = 1..K latencies.
 *
 * Every result is one line on stdout and, with --json, one JSON object per line appended to
 * FILE. Exit status: 0 when every check passed, 1 when one is over tolerance, 2 on errors
 * (including "CUDA backend not built" in a build without USE_CUDA=1). */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "graph.h"

#define MAX_LIST 512

typedef struct opts {
    const char *model, *json;
    int prec_mask;               /* bit 0: fp32, bit 1: fp16 */
    int batches[MAX_LIST], nbatches;
    int bench[MAX_LIST], nbench;
    int warmup, reps, device;
    unsigned long seed;
    double tol[2];
    int check;
    int streams;                 /* --streams K: concurrent replays, k = 1..K (0: off) */
} opts;

static const char *const prec_name[2] = {"fp32", "fp16"};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: nexus-dnn-check MODEL.onnx [--precision fp32|fp16|both] [--batches 1,4]\n"
               "       [--bench LIST] [--warmup N] [--reps N] [--tol-fp32 X] [--tol-fp16 X]\n"
               "       [--device N] [--seed N] [--json FILE] [--no-check] [--streams K]\n"
               "--streams K: with --bench, the latency of k = 1..K executors replaying\n"
               "             concurrently on their own streams (GPU sharing)\n"
               "LIST: comma-separated batch sizes and ranges, e.g. 1,2,4-8,256\n");
}

static int parse_long(const char *s, long lo, long hi, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi)
        return -1;
    *out = v;
    return 0;
}

static int parse_list(const char *s, int *out, int *n)
{
    char buf[4096];
    snprintf(buf, sizeof buf, "%s", s);
    *n = 0;
    for (char *tok = strtok(buf, ","); tok; tok = strtok(NULL, ",")) {
        char *dash = strchr(tok, '-');
        long a, b;
        if (dash) {
            *dash = 0;
            if (parse_long(tok, 1, 1 << 20, &a) || parse_long(dash + 1, 1, 1 << 20, &b) || b < a)
                return -1;
        } else {
            if (parse_long(tok, 1, 1 << 20, &a))
                return -1;
            b = a;
        }
        for (long v = a; v <= b; v++) {
            if (*n >= MAX_LIST)
                return -1;
            out[(*n)++] = (int)v;
        }
    }
    return *n > 0 ? 0 : -1;
}

static int parse_args(opts *o, int argc, char **argv)
{
    memset(o, 0, sizeof *o);
    o->prec_mask = 3;
    o->batches[0] = 1;
    o->batches[1] = 4;
    o->nbatches = 2;
    o->warmup = 5;
    o->reps = 40;
    o->seed = 7;
    o->tol[0] = 1e-2;
    o->tol[1] = 2e-2;
    o->check = 1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        long l;
        char *end;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            exit(0);
        } else if (!strcmp(a, "--no-check")) {
            o->check = 0;
        } else if (a[0] == '-' && a[1] == '-' && !v) {
            fprintf(stderr, "nexus-dnn-check: %s needs a value\n", a);
            return -1;
        } else if (!strcmp(a, "--precision")) {
            i++;
            if (!strcmp(v, "fp32"))
                o->prec_mask = 1;
            else if (!strcmp(v, "fp16"))
                o->prec_mask = 2;
            else if (!strcmp(v, "both"))
                o->prec_mask = 3;
            else {
                fprintf(stderr, "nexus-dnn-check: --precision must be fp32, fp16 or both, not '%s'\n", v);
                return -1;
            }
        } else if (!strcmp(a, "--batches") || !strcmp(a, "--bench")) {
            i++;
            bool b = !strcmp(a, "--bench");
            if (parse_list(v, b ? o->bench : o->batches, b ? &o->nbench : &o->nbatches)) {
                fprintf(stderr, "nexus-dnn-check: bad batch list '%s' for %s\n", v, a);
                return -1;
            }
        } else if (!strcmp(a, "--streams")) {
            i++;
            if (parse_long(v, 1, 16, &l)) {
                fprintf(stderr, "nexus-dnn-check: bad value '%s' for --streams (1..16)\n", v);
                return -1;
            }
            o->streams = (int)l;
        } else if (!strcmp(a, "--warmup") || !strcmp(a, "--reps") || !strcmp(a, "--device") ||
                   !strcmp(a, "--seed")) {
            i++;
            if (parse_long(v, !strcmp(a, "--reps") ? 1 : 0, 1000000, &l)) {
                fprintf(stderr, "nexus-dnn-check: bad value '%s' for %s\n", v, a);
                return -1;
            }
            if (!strcmp(a, "--warmup"))
                o->warmup = (int)l;
            else if (!strcmp(a, "--reps"))
                o->reps = (int)l;
            else if (!strcmp(a, "--device"))
                o->device = (int)l;
            else
                o->seed = (unsigned long)l;
        } else if (!strcmp(a, "--tol-fp32") || !strcmp(a, "--tol-fp16")) {
            i++;
            double d = strtod(v, &end);
            if (end == v || *end || !(d > 0)) {
                fprintf(stderr, "nexus-dnn-check: bad tolerance '%s' for %s\n", v, a);
                return -1;
            }
            o->tol[!strcmp(a, "--tol-fp16")] = d;
        } else if (!strcmp(a, "--json")) {
            o->json = argv[++i];
        } else if (a[0] == '-') {
            fprintf(stderr, "nexus-dnn-check: unknown option '%s'\n", a);
            usage(stderr);
            return -1;
        } else if (!o->model) {
            o->model = a;
        } else {
            fprintf(stderr, "nexus-dnn-check: more than one model ('%s', '%s')\n", o->model, a);
            return -1;
        }
    }
    if (!o->model) {
        usage(stderr);
        return -1;
    }
    if (o->streams)
        o->check = 0;   /* --streams measures only */
    if (o->streams && !o->nbench) {
        fprintf(stderr, "nexus-dnn-check: --streams needs --bench LIST\n");
        return -1;
    }
    if (!o->check && !o->nbench) {
        fprintf(stderr, "nexus-dnn-check: --no-check without --bench does nothing\n");
        return -1;
    }
    return 0;
}

/* ---- seeded inputs and errors ---- */

static unsigned long long rng_next(unsigned long long *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static void fill_normal(float *x, size_t n, unsigned long long *s)
{
    for (size_t i = 0; i < n; i += 2) {
        double u1 = ((double)(rng_next(s) >> 11) + 1.0) / 9007199254740993.0;
        double u2 = (double)(rng_next(s) >> 11) / 9007199254740992.0;
        double r = sqrt(-2.0 * log(u1));
        x[i] = (float)(r * cos(6.283185307179586 * u2));
        if (i + 1 < n)
            x[i + 1] = (float)(r * sin(6.283185307179586 * u2));
    }
}

static double norm_err(const float *a, const float *b, size_t n)
{
    double num = 0.0, den = 0.0;
    for (size_t i = 0; i < n; i++) {
        if (isnan(a[i]) || isnan(b[i]) || isinf(a[i]))
            return INFINITY;
        double d = fabs((double)a[i] - (double)b[i]);
        if (d > num)
            num = d;
        if (fabs((double)b[i]) > den)
            den = fabs((double)b[i]);
    }
    return den > 0 ? num / den : num;
}

static const char *model_name(const char *path, char *buf, size_t n)
{
    const char *b = strrchr(path, '/');
    snprintf(buf, n, "%s", b ? b + 1 : path);
    char *dot = strrchr(buf, '.');
    if (dot)
        *dot = 0;
    return buf;
}

typedef struct io {
    int nin, nout;
    float **in, **out;
    size_t *nin_e, *nout_e;
} io;

static void io_alloc(io *x, const nx_graph *g, int batch)
{
    x->nin = g->ninputs;
    x->nout = g->noutputs;
    x->in = nx_calloc((size_t)x->nin, sizeof *x->in);
    x->out = nx_calloc((size_t)x->nout, sizeof *x->out);
    x->nin_e = nx_calloc((size_t)x->nin, sizeof *x->nin_e);
    x->nout_e = nx_calloc((size_t)x->nout, sizeof *x->nout_e);
    for (int i = 0; i < x->nin; i++) {
        x->nin_e[i] = nx_tensor_elems(&g->t[g->inputs[i]], batch);
        x->in[i] = nx_malloc(x->nin_e[i] * sizeof(float));
    }
    for (int i = 0; i < x->nout; i++) {
        x->nout_e[i] = nx_tensor_elems(&g->t[g->outputs[i]], batch);
        x->out[i] = nx_malloc(x->nout_e[i] * sizeof(float));
    }
}

static void io_free(io *x)
{
    for (int i = 0; i < x->nin; i++)
        free(x->in[i]);
    for (int i = 0; i < x->nout; i++)
        free(x->out[i]);
    free(x->in);
    free(x->out);
    free(x->nin_e);
    free(x->nout_e);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* ---- --streams: concurrent replays ---- */

typedef struct gate {            /* the streams start together (or not at all) */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int state;                   /* 0 wait, 1 go, -1 abandon */
} gate;

typedef struct sworker {
    nx_exec *e;
    int batch, warmup, reps;
    double *us;
    gate *start;
    int rc;
    char err[256];
} sworker;

static void *stream_main(void *arg)
{
    sworker *w = arg;
    nx_errbuf eb;
    nx_err_clear(&eb);
    pthread_mutex_lock(&w->start->mu);
    while (w->start->state == 0)
        pthread_cond_wait(&w->start->cv, &w->start->mu);
    int go = w->start->state > 0;
    pthread_mutex_unlock(&w->start->mu);
    if (!go)
        return NULL;
    w->rc = nx_exec_cuda_ops.bench(w->e, w->batch, w->warmup, w->reps, w->us, &eb);
    if (w->rc)
        snprintf(w->err, sizeof w->err, "%s", eb.msg);
    return NULL;
}

/* K executors of g at precision p; for each bench batch, k = 1..K of them replaying at once. */
static int run_streams(const opts *o, const nx_graph *g, const char *name, int p, FILE *jf)
{
    int K = o->streams, rc = 0;
    nx_exec **ex = nx_calloc((size_t)K, sizeof *ex);
    nx_errbuf eb;
    nx_err_clear(&eb);
    for (int i = 0; i < K && !rc; i++)
        if ((rc = nx_exec_cuda_ops.init(&ex[i], g, p ? NX_PREC_FP16 : NX_PREC_FP32, o->device, &eb)))
            fprintf(stderr, "nexus-dnn-check: %s: CUDA %s executor %d of %d: %s\n", name,
                    prec_name[p], i + 1, K, eb.msg);
    sworker *w = nx_calloc((size_t)K, sizeof *w);
    pthread_t *th = nx_calloc((size_t)K, sizeof *th);
    for (int i = 0; i < K; i++)
        w[i].us = nx_malloc((size_t)o->reps * sizeof(double));
    for (int bi = 0; bi < o->nbench && !rc; bi++) {
        int b = o->bench[bi];
        double t0 = now_s();
        for (int i = 0; i < K && !rc; i++)   /* tune + capture, one at a time */
            if ((rc = nx_exec_cuda_ops.bench(ex[i], b, 0, 1, w[i].us, &eb)))
                fprintf(stderr, "nexus-dnn-check: %s: CUDA %s batch %d: %s\n", name, prec_name[p],
                        b, eb.msg);
        double tune = now_s() - t0;
        double lat[16] = {0};
        for (int k = 1; k <= K && !rc; k++) {
            gate start = {.state = 0};
            pthread_mutex_init(&start.mu, NULL);
            pthread_cond_init(&start.cv, NULL);
            int started = 0;
            for (int i = 0; i < k; i++) {
                w[i] = (sworker){.e = ex[i], .batch = b, .warmup = o->warmup, .reps = o->reps,
                                 .us = w[i].us, .start = &start};
                if (pthread_create(&th[i], NULL, stream_main, &w[i])) {
                    fprintf(stderr, "nexus-dnn-check: cannot start a thread\n");
                    rc = NX_ERR_IO;
                    break;
                }
                started++;
            }
            pthread_mutex_lock(&start.mu);
            start.state = rc ? -1 : 1;
            pthread_cond_broadcast(&start.cv);
            pthread_mutex_unlock(&start.mu);
            double sum = 0, mx = 0;
            for (int i = 0; i < started; i++) {
                pthread_join(th[i], NULL);
                if (w[i].rc && !rc) {
                    rc = w[i].rc;
                    fprintf(stderr, "nexus-dnn-check: %s: stream %d: %s\n", name, i, w[i].err);
                }
                for (int r = 0; r < o->reps; r++) {
                    sum += w[i].us[r];
                    mx = w[i].us[r] > mx ? w[i].us[r] : mx;
                }
            }
            pthread_mutex_destroy(&start.mu);
            pthread_cond_destroy(&start.cv);
            if (rc)
                break;
            lat[k - 1] = sum / ((double)k * o->reps);
            if (!rc)
                printf("streams %-16s %s batch %3d  k %d  mean %10.1f us per batch  (x%.2f of k=1)"
                       "  max %10.1f  throughput %.0f/s\n", name, prec_name[p], b, k, lat[k - 1],
                       lat[k - 1] / lat[0], mx, k * b * 1e6 / lat[k - 1]);
            fflush(stdout);
        }
        if (rc)
            break;
        printf("interference:   - {model: %s, precision: %s, batch: %d, latency_us: [", name,
               prec_name[p], b);
        for (int k = 0; k < K; k++)
            printf("%s%.1f", k ? ", " : "", lat[k]);
        printf("]}\n");
        if (jf) {
            fprintf(jf, "{\"model\": \"%s\", \"precision\": \"%s\", \"batch\": %d, \"streams\": "
                        "{\"reps\": %d, \"tune_s\": %.3f, \"latency_us\": [", name, prec_name[p], b,
                    o->reps, tune);
            for (int k = 0; k < K; k++)
                fprintf(jf, "%s%.1f", k ? ", " : "", lat[k]);
            fprintf(jf, "]}}\n");
        }
    }
    for (int i = 0; i < K; i++) {
        free(w[i].us);
        if (ex[i])
            nx_exec_cuda_ops.free(ex[i]);
    }
    free(w);
    free(th);
    free(ex);
    return rc ? 2 : 0;
}

int main(int argc, char **argv)
{
    opts o;
    if (parse_args(&o, argc, argv))
        return 2;
    char name[256];
    model_name(o.model, name, sizeof name);
    FILE *jf = NULL;
    if (o.json && !(jf = fopen(o.json, "a"))) {
        fprintf(stderr, "nexus-dnn-check: cannot open %s: %s\n", o.json, strerror(errno));
        return 2;
    }
    int max_batch = 1;
    for (int i = 0; o.check && i < o.nbatches; i++)
        max_batch = o.batches[i] > max_batch ? o.batches[i] : max_batch;
    for (int i = 0; i < o.nbench; i++)
        max_batch = o.bench[i] > max_batch ? o.bench[i] : max_batch;

    nx_errbuf eb;
    nx_err_clear(&eb);
    nx_graph g;
    double t0 = now_s();
    if (nx_onnx_load(&g, o.model, &eb) || nx_graph_prepare(&g, max_batch, &eb)) {
        fprintf(stderr, "nexus-dnn-check: %s: %s\n", o.model, eb.msg);
        nx_graph_free(&g);
        return 2;
    }
    fprintf(stderr, "nexus-dnn-check: %s loaded and prepared for batch %d in %.2f s\n", name,
            max_batch, now_s() - t0);

    int status = 0;
    /* CPU references per check batch: [batch][0 fp32 / 1 fp16] */
    io *ref = o.check ? nx_calloc((size_t)o.nbatches * 2, sizeof *ref) : NULL;
    io *inp = o.check ? nx_calloc((size_t)o.nbatches, sizeof *inp) : NULL;
    for (int bi = 0; o.check && bi < o.nbatches; bi++) {
        int b = o.batches[bi];
        io_alloc(&inp[bi], &g, b);
        unsigned long long s = o.seed * 0x9e3779b97f4a7c15ULL + (unsigned long long)b;
        for (int i = 0; i < inp[bi].nin; i++)
            fill_normal(inp[bi].in[i], inp[bi].nin_e[i], &s);
        for (int p = 0; p < 2; p++) {
            if (p == 1 && !(o.prec_mask & 2))
                continue;
            nx_exec *cpu = NULL;
            io_alloc(&ref[bi * 2 + p], &g, b);
            t0 = now_s();
            if (nx_exec_cpu_ops.init(&cpu, &g, p ? NX_PREC_FP16 : NX_PREC_FP32, 0, &eb) ||
                nx_exec_cpu_ops.run(cpu, b, (const float *const *)inp[bi].in, ref[bi * 2 + p].out,
                                    &eb)) {
                fprintf(stderr, "nexus-dnn-check: %s: CPU %s batch %d: %s\n", name, prec_name[p], b,
                        eb.msg);
                nx_exec_cpu_ops.free(cpu);
                return 2;
            }
            nx_exec_cpu_ops.free(cpu);
            fprintf(stderr, "nexus-dnn-check: %s CPU %s batch %d: %.2f s\n", name, prec_name[p], b,
                    now_s() - t0);
        }
    }

    for (int p = 0; p < 2 && o.streams; p++) {
        if (!(o.prec_mask & (1 << p)) || status == 2)
            continue;
        status = run_streams(&o, &g, name, p, jf);
    }
    for (int p = 0; p < 2 && !o.streams; p++) {
        if (!(o.prec_mask & (1 << p)))
            continue;
        nx_exec *gpu = NULL;
        t0 = now_s();
        if (nx_exec_cuda_ops.init(&gpu, &g, p ? NX_PREC_FP16 : NX_PREC_FP32, o.device, &eb)) {
            fprintf(stderr, "nexus-dnn-check: %s: CUDA %s: %s\n", name, prec_name[p], eb.msg);
            status = 2;
            break;
        }
        double mem_mb = (double)nx_exec_cuda_ops.memory(gpu) / (1024.0 * 1024.0);
        fprintf(stderr, "nexus-dnn-check: %s CUDA %s loaded in %.2f s, %.1f MB on the GPU\n", name,
                prec_name[p], now_s() - t0, mem_mb);
        for (int bi = 0; o.check && bi < o.nbatches; bi++) {
            int b = o.batches[bi];
            io got;
            io_alloc(&got, &g, b);
            t0 = now_s();
            if (nx_exec_cuda_ops.run(gpu, b, (const float *const *)inp[bi].in, got.out, &eb)) {
                fprintf(stderr, "nexus-dnn-check: %s: CUDA %s batch %d: %s\n", name, prec_name[p],
                        b, eb.msg);
                io_free(&got);
                status = 2;
                break;
            }
            double dt = now_s() - t0;
            double worst = 0.0, worst32 = 0.0;
            for (int k = 0; k < got.nout; k++) {
                double e = norm_err(got.out[k], ref[bi * 2 + p].out[k], got.nout_e[k]);
                double e32 = norm_err(got.out[k], ref[bi * 2].out[k], got.nout_e[k]);
                worst = e > worst ? e : worst;
                worst32 = e32 > worst32 ? e32 : worst32;
            }
            bool ok = worst <= o.tol[p];
            if (!ok)
                status = status ? status : 1;
            printf("check %-18s %s batch %3d  err %.3e (vs CPU %s)  err_vs_fp32 %.3e  tol %.0e  %s"
                   "  (first run %.2f s)\n", name, prec_name[p], b, worst, prec_name[p], worst32,
                   o.tol[p], ok ? "ok" : "OVER TOLERANCE", dt);
            if (jf)
                fprintf(jf, "{\"model\": \"%s\", \"precision\": \"%s\", \"batch\": %d, \"check\": "
                        "{\"err\": %.4e, \"err_vs_fp32\": %.4e, \"tol\": %.1e, \"ok\": %s}}\n",
                        name, prec_name[p], b, isfinite(worst) ? worst : 1e30,
                        isfinite(worst32) ? worst32 : 1e30, o.tol[p], ok ? "true" : "false");
            io_free(&got);
        }
        double *us = nx_malloc((size_t)(o.reps > 0 ? o.reps : 1) * sizeof *us);
        for (int bi = 0; bi < o.nbench && status != 2; bi++) {
            int b = o.bench[bi];
            if (!nx_exec_cuda_ops.bench) {
                fprintf(stderr, "nexus-dnn-check: this executor has no bench\n");
                status = 2;
                break;
            }
            t0 = now_s();
            if (nx_exec_cuda_ops.bench(gpu, b, 0, 1, us, &eb)) {   /* tune + capture */
                fprintf(stderr, "nexus-dnn-check: %s: CUDA %s bench batch %d: %s\n", name,
                        prec_name[p], b, eb.msg);
                status = 2;
                break;
            }
            double tune = now_s() - t0;
            if (nx_exec_cuda_ops.bench(gpu, b, o.warmup, o.reps, us, &eb)) {
                fprintf(stderr, "nexus-dnn-check: %s: CUDA %s bench batch %d: %s\n", name,
                        prec_name[p], b, eb.msg);
                status = 2;
                break;
            }
            double mean = 0, sd = 0;
            for (int r = 0; r < o.reps; r++)
                mean += us[r];
            mean /= o.reps;
            for (int r = 0; r < o.reps; r++)
                sd += (us[r] - mean) * (us[r] - mean);
            sd = sqrt(sd / o.reps);
            qsort(us, (size_t)o.reps, sizeof *us, cmp_double);
            printf("bench %-18s %s batch %3d  mean %10.1f us  std %7.1f  p50 %10.1f  min %10.1f"
                   "  max %10.1f  (tune+capture %.2f s)\n", name, prec_name[p], b, mean, sd,
                   us[o.reps / 2], us[0], us[o.reps - 1], tune);
            if (jf)
                fprintf(jf, "{\"model\": \"%s\", \"precision\": \"%s\", \"batch\": %d, \"bench\": "
                        "{\"mean_us\": %.1f, \"std_us\": %.1f, \"p50_us\": %.1f, \"min_us\": %.1f, "
                        "\"max_us\": %.1f, \"reps\": %d, \"tune_s\": %.3f, \"mem_mb\": %.1f, "
                        "\"max_batch\": %d}}\n", name, prec_name[p], b, mean, sd, us[o.reps / 2],
                        us[0], us[o.reps - 1], o.reps, tune, mem_mb, max_batch);
            fflush(stdout);
        }
        free(us);
        nx_exec_cuda_ops.free(gpu);
        if (status == 2)
            break;
    }
    for (int bi = 0; o.check && bi < o.nbatches; bi++) {
        io_free(&inp[bi]);
        for (int p = 0; p < 2; p++)
            if (ref[bi * 2 + p].out)
                io_free(&ref[bi * 2 + p]);
    }
    free(ref);
    free(inp);
    if (jf)
        fclose(jf);
    nx_graph_free(&g);
    return status;
}
