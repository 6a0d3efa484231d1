/* profile_main.c — nexus-profile: measure a model on one device and write its profile in the
 * simulator's format (README "Profile").
 *
 *   nexus-profile MODEL.onnx [--gpu N | --cpu] --precision fp32|fp16 --batches 1-256 --out FILE
 *
 * Like Nexus's profiler: the model is loaded once for the largest requested batch that fits
 * (if loading fails for lack of memory, the largest batch that loads is searched for among
 * the requested ones and the rest are skipped); each batch size then gets warm-up passes and
 * timed passes (the executor's device-side `bench` where it has one, else wall-clock `run`
 * calls on host buffers), and its mean and standard deviation, by default with host stalls
 * set aside (--stats robust: engine/stats.h's nx_stats_robust; --rounds R interleaves the
 * batch sizes' timed passes so that one stall cannot take all of one size's). With
 * --from-logs the profile comes from a backend's own batch logs instead (the serving path's
 * measured executor time per batch size). Memory is the executor's
 * reserved memory, measured loaded for batch 1 and for the largest batch, linear between.
 * The CPU cost of a request around the model is measured too: pre-processing decodes a
 * synthetic 640x480 JPEG and resizes and normalises it into the model's input; post-
 * processing is softmax + top-5 for a classifier, and box decoding + per-class NMS
 * (prepost.c) for SSD's two outputs. A progress bar goes to stderr when it is a terminal. */
#include <errno.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jpeglib.h>   /* after stdio.h and stddef.h, which it needs */

#include "dnn_int.h"
#include "prepost.h"
#include "experiment.h"
#include "profile.h"
#include "stats.h"

#define MAX_BATCH 4096

typedef struct opts {
    const char *model, *out, *name, *gpu_name;
    bool prepost_only;   /* only the CPU's pre/post cost of each model: a cost table */
    const char *host;    /* --host: the cost table's host line */
    const char *models[256]; /* every MODEL.onnx given (--prepost-only takes several) */
    int nmodels;
    int part;            /* 0 the whole model, 1 its prefix, 2 its suffix (nx_graph_cut) */
    const char *split;   /* the tensor to cut at (NULL: auto) */
    bool gpu;
    int device;
    nx_precision prec;
    int batches[MAX_BATCH], nbatches;
    int warmup, reps;
    double budget_s;    /* per batch size: stop repeating after this much (min 3 passes) */
    int progress;       /* -1 auto (tty), 0 off, 1 on */
    bool host_io;       /* time run() from host buffers even where the executor has bench */
    bool padded;        /* write `padded: true`: the server pads to the measured sizes */
    double stall_k;     /* --stats robust: stall cut in MADs above the median (0: --stats mean) */
    int rounds;         /* --rounds: the timed passes in this many interleaved rounds */
    const char *from_logs; /* --from-logs BASE.yml: a profile from batch logs (the positionals) */
} opts;

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: nexus-profile MODEL.onnx [--gpu N | --cpu] [--precision fp32|fp16]\n"
            "                     [--batches SPEC] --out FILE [options]\n"
            "  --gpu N          run on GPU N with the CUDA executor (needs make USE_CUDA=1)\n"
            "  --cpu            run on the CPU executor (default)\n"
            "  --precision P    fp32 (default) or fp16\n"
            "  --batches SPEC   batch sizes: ranges and lists, e.g. 1-256 or 1,2,4,8-16 (default 1-16)\n"
            "  --out FILE       the profile to write (YAML)\n"
            "  --name NAME      model name in the profile (default: the file name without .onnx)\n"
            "  --gpu-name NAME  the profile's gpu field (default: from the device's name; CPU: cpu)\n"
            "  --part P         full (default), prefix or suffix: the model before or after --split\n"
            "                   (prefix batching: the shared trunk and a variant's own last layers)\n"
            "  --split TENSOR   where --part cuts (default: the input of the last node)\n"
            "  --warmup N       untimed passes per batch size (default 3)\n"
            "  --reps N         timed passes per batch size (default 20)\n"
            "  --budget S       stop a batch size's timed passes after S seconds, at least 3 (default 30)\n"
            "  --host-io        time run() (host input -> host output, the copies included, as a\n"
            "                   backend runs a batch) instead of the executor's device-side bench\n"
            "  --padded         write `padded: true`: a batch costs the next measured batch (the\n"
            "                   CUDA backend pads to the sizes it captured)\n"
            "  --stats S        robust (default): per batch size, timed passes above the median +\n"
            "                   5 x 1.4826 MAD are host stalls and dropped before the mean and std;\n"
            "                   mean: every pass counts\n"
            "  --rounds R       time the batch sizes in R interleaved rounds of reps/R passes\n"
            "                   each (default 1), so a stall of tens of ms hits many sizes a little\n"
            "  --progress / --quiet   force the progress bar on / everything on stderr off\n"
            "\n"
            "       nexus-profile --from-logs BASE.yml --out FILE [--stats S] BATCHES.csv...\n"
            "  a profile from backends' --batch-log files (the serving path's executor time): for\n"
            "  each batch size of BASE's model run alone (no prefix parts), the executor times\n"
            "  logged (a padded BASE: counted at the measured size they ran at), reduced as --stats\n"
            "  says; sizes with fewer than 5 logged batches keep BASE's numbers. Use logs of\n"
            "  exclusive GPUs (concurrent batches are slowed by each other)\n"
            "\n"
            "       nexus-profile --prepost-only --out FILE [--host TEXT] MODEL.onnx...\n"
            "  measure only the CPU's pre/post-processing per request of each model on this\n"
            "  machine (one core) and write them as a cost table (cluster.cpu_profile)\n");
}

static int parse_int(const char *s, long lo, long hi, long *v)
{
    char *end;
    errno = 0;
    long x = strtol(s, &end, 10);
    if (errno || end == s || *end || x < lo || x > hi)
        return -1;
    *v = x;
    return 0;
}

/* "1-256", "1,2,4,8-16": sorted, unique, each in 1..MAX_BATCH. */
static int parse_batches(const char *spec, opts *o)
{
    bool want[MAX_BATCH + 1] = {0};
    char *s = nx_strdup(spec), *save = NULL;
    int rc = 0;
    for (char *tok = strtok_r(s, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        char *dash = strchr(tok, '-');
        long a, b;
        if (dash) {
            *dash = 0;
            if (parse_int(tok, 1, MAX_BATCH, &a) || parse_int(dash + 1, 1, MAX_BATCH, &b) || b < a) {
                rc = -1;
                break;
            }
        } else if (parse_int(tok, 1, MAX_BATCH, &a)) {
            rc = -1;
            break;
        } else {
            b = a;
        }
        for (long i = a; i <= b; i++)
            want[i] = true;
    }
    free(s);
    o->nbatches = 0;
    for (int i = 1; i <= MAX_BATCH; i++)
        if (want[i])
            o->batches[o->nbatches++] = i;
    return rc || o->nbatches == 0 ? -1 : 0;
}

static int parse_args(int argc, char **argv, opts *o)
{
    *o = (opts){.prec = NX_PREC_FP32, .warmup = 3, .reps = 20, .budget_s = 30, .progress = -1,
                .stall_k = 5, .rounds = 1};
    const char *batches = "1-16";
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        long x;
#define NEED_ARG do { if (!v) { fprintf(stderr, "nexus-profile: %s needs a value\n", a); \
        return -1; } i++; } while (0)
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            exit(0);
        } else if (!strcmp(a, "--cpu")) {
            o->gpu = false;
        } else if (!strcmp(a, "--gpu")) {
            NEED_ARG;
            if (parse_int(v, 0, 255, &x)) {
                fprintf(stderr, "nexus-profile: --gpu: '%s' is not a GPU index (0..255)\n", v);
                return -1;
            }
            o->gpu = true;
            o->device = (int)x;
        } else if (!strcmp(a, "--precision")) {
            NEED_ARG;
            if (!strcmp(v, "fp32"))
                o->prec = NX_PREC_FP32;
            else if (!strcmp(v, "fp16"))
                o->prec = NX_PREC_FP16;
            else {
                fprintf(stderr, "nexus-profile: --precision must be fp32 or fp16, not '%s'\n", v);
                return -1;
            }
        } else if (!strcmp(a, "--batches")) {
            NEED_ARG;
            batches = v;
        } else if (!strcmp(a, "--out")) {
            NEED_ARG;
            o->out = v;
        } else if (!strcmp(a, "--name")) {
            NEED_ARG;
            o->name = v;
        } else if (!strcmp(a, "--part")) {
            NEED_ARG;
            if (!strcmp(v, "full"))
                o->part = 0;
            else if (!strcmp(v, "prefix"))
                o->part = 1;
            else if (!strcmp(v, "suffix"))
                o->part = 2;
            else {
                fprintf(stderr, "nexus-profile: --part must be full, prefix or suffix, not '%s'\n", v);
                return -1;
            }
        } else if (!strcmp(a, "--split")) {
            NEED_ARG;
            o->split = v;
        } else if (!strcmp(a, "--gpu-name")) {
            NEED_ARG;
            o->gpu_name = v;
        } else if (!strcmp(a, "--warmup") || !strcmp(a, "--reps")) {
            NEED_ARG;
            if (parse_int(v, !strcmp(a, "--reps"), 100000, &x)) {
                fprintf(stderr, "nexus-profile: %s: '%s' is not a count\n", a, v);
                return -1;
            }
            *(!strcmp(a, "--reps") ? &o->reps : &o->warmup) = (int)x;
        } else if (!strcmp(a, "--budget")) {
            NEED_ARG;
            char *end;
            o->budget_s = strtod(v, &end);
            if (end == v || *end || !(o->budget_s > 0)) {
                fprintf(stderr, "nexus-profile: --budget: '%s' is not a positive number\n", v);
                return -1;
            }
        } else if (!strcmp(a, "--prepost-only")) {
            o->prepost_only = true;
        } else if (!strcmp(a, "--host")) {
            NEED_ARG;
            o->host = v;
        } else if (!strcmp(a, "--host-io")) {
            o->host_io = true;
        } else if (!strcmp(a, "--padded")) {
            o->padded = true;
        } else if (!strcmp(a, "--stats")) {
            NEED_ARG;
            if (strcmp(v, "robust") && strcmp(v, "mean")) {
                fprintf(stderr, "nexus-profile: --stats must be robust or mean, not '%s'\n", v);
                return -1;
            }
            o->stall_k = strcmp(v, "robust") ? 0 : 5;
        } else if (!strcmp(a, "--rounds")) {
            NEED_ARG;
            if (parse_int(v, 1, 1000, &x)) {
                fprintf(stderr, "nexus-profile: --rounds: '%s' is not a count (1..1000)\n", v);
                return -1;
            }
            o->rounds = (int)x;
        } else if (!strcmp(a, "--from-logs")) {
            NEED_ARG;
            o->from_logs = v;
        } else if (!strcmp(a, "--progress")) {
            o->progress = 1;
        } else if (!strcmp(a, "--quiet")) {
            o->progress = 0;
        } else if (a[0] == '-') {
            fprintf(stderr, "nexus-profile: unknown option '%s'\n", a);
            usage(stderr);
            return -1;
        } else {
            if (o->nmodels == (int)(sizeof o->models / sizeof o->models[0])) {
                fprintf(stderr, "nexus-profile: at most %d models\n", o->nmodels);
                return -1;
            }
            o->models[o->nmodels++] = a;
            o->model = o->models[0];
        }
#undef NEED_ARG
    }
    if (o->nmodels > 1 && !o->prepost_only && !o->from_logs) {
        fprintf(stderr, "nexus-profile: more than one model given ('%s', '%s'); only "
                "--prepost-only takes several\n", o->models[0], o->models[1]);
        return -1;
    }
    if (!o->model || !o->out) {
        fprintf(stderr, "nexus-profile: %s is required\n",
                o->out ? (o->from_logs ? "a batch log" : "MODEL.onnx") : "--out FILE");
        usage(stderr);
        return -1;
    }
    if (parse_batches(batches, o)) {
        fprintf(stderr, "nexus-profile: --batches: bad list '%s' (ranges and lists of 1..%d, "
                "e.g. 1-256 or 1,2,4,8-16)\n", batches, MAX_BATCH);
        return -1;
    }
    if (o->progress < 0)
        o->progress = isatty(2);
    return 0;
}

static void progress(const opts *o, int done, int total, int batch, double ms)
{
    if (!o->progress)
        return;
    int width = 30, fill = total ? done * width / total : width;
    fprintf(stderr, "\r[");
    for (int i = 0; i < width; i++)
        fputc(i < fill ? '=' : i == fill ? '>' : ' ', stderr);
    fprintf(stderr, "] %d/%d batch %d: %.3f ms   ", done, total, batch, ms);
    if (done == total)
        fputc('\n', stderr);
    fflush(stderr);
}

/* ---- pre/post-processing cost ---------------------------------------------------------- */

/* A deterministic 640x480 photo-like image (gradients, shapes, noise) as JPEG (quality 90). */
static uint8_t *synthetic_jpeg(size_t *len)
{
    enum { W = 640, H = 480 };
    uint8_t *px = nx_malloc((size_t)W * H * 3);
    uint32_t rng = 12345;
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++) {
            rng = rng * 1664525u + 1013904223u;
            int noise = (int)(rng >> 28) - 8;
            int cx = x - 320, cy = y - 240;
            bool disc = cx * cx + cy * cy < 120 * 120;
            uint8_t *p = px + ((size_t)y * W + x) * 3;
            int v[3] = {x * 255 / W, y * 255 / H, disc ? 220 : (x ^ y) & 0x7f};
            for (int k = 0; k < 3; k++) {
                int c = v[k] + noise;
                p[k] = (uint8_t)(c < 0 ? 0 : c > 255 ? 255 : c);
            }
        }
    struct jpeg_compress_struct ci;
    struct jpeg_error_mgr jerr;
    ci.err = jpeg_std_error(&jerr);
    jpeg_create_compress(&ci);
    unsigned char *buf = NULL;
    unsigned long n = 0;
    jpeg_mem_dest(&ci, &buf, &n);
    ci.image_width = W;
    ci.image_height = H;
    ci.input_components = 3;
    ci.in_color_space = JCS_RGB;
    jpeg_set_defaults(&ci);
    jpeg_set_quality(&ci, 90, TRUE);
    jpeg_start_compress(&ci, TRUE);
    while (ci.next_scanline < ci.image_height) {
        JSAMPROW row = px + (size_t)ci.next_scanline * W * 3;
        jpeg_write_scanlines(&ci, &row, 1);
    }
    jpeg_finish_compress(&ci);
    jpeg_destroy_compress(&ci);
    free(px);
    *len = n;
    return buf;
}

static double clock_s(clockid_t clk)
{
    struct timespec t;
    clock_gettime(clk, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

/* Repeat f until 0.3 s or 500 calls have passed on clock clk (CLOCK_MONOTONIC:
 * wall time; CLOCK_THREAD_CPUTIME_ID: this thread's CPU time, which other
 * processes on a busy machine do not inflate); mean microseconds per call. */
#define TIME_LOOP(clk, out_us, body) do { \
        int calls_ = 0; double t0_ = clock_s(clk), t_ = 0; \
        do { body; calls_++; t_ = clock_s(clk) - t0_; } while (t_ < 0.3 && calls_ < 500); \
        (out_us) = calls_ ? t_ / calls_ * 1e6 : 0; } while (0)

static int measure_pre(const nx_graph *g, clockid_t clk, double *us, char *what, size_t n,
                       nx_errbuf *eb)
{
    const nx_tensor *x = &g->t[g->inputs[0]];
    if (g->ninputs != 1 || x->ndim != 4 || (x->dims[1] != 1 && x->dims[1] != 3)) {
        *us = 0;
        snprintf(what, n, "none (the input is not an image)");
        return 0;
    }
    int c = (int)x->dims[1], h = (int)x->dims[2], w = (int)x->dims[3];
    size_t len;
    uint8_t *jpeg = synthetic_jpeg(&len);
    size_t sl = nx_pre_scratch_size(jpeg, len);
    void *scratch = nx_malloc(sl);
    float *out = nx_malloc((size_t)c * h * w * sizeof *out);
    int rc = 0;
    TIME_LOOP(clk, *us, if (!rc) rc = nx_pre_image(jpeg, len, c, h, w, out, scratch, sl, eb));
    snprintf(what, n, "decode a synthetic 640x480 JPEG (%zu bytes, libjpeg), bilinear resize "
             "to %dx%d, normalise to %d channels", len, h, w, c);
    free(out);
    free(scratch);
    free(jpeg);
    return rc;
}

static void measure_post(const nx_graph *g, clockid_t clk, bool prefix, double *us, char *what,
                         size_t n)
{
    const nx_tensor *o0 = &g->t[g->outputs[0]];
    if (prefix) {
        *us = 0;
        snprintf(what, n, "none (a prefix: its suffixes post-process)");
        return;
    }
    uint32_t rng = 777;
#define RND() ((rng = rng * 1664525u + 1013904223u), (float)(rng >> 8) / 16777216.0f - 0.5f)
    if (g->noutputs == 1 && o0->ndim == 2) {
        int k = (int)o0->dims[1], idx[5];
        float prob[5], *logits = nx_malloc((size_t)k * sizeof *logits);
        for (int i = 0; i < k; i++)
            logits[i] = 4 * RND();
        TIME_LOOP(clk, *us, nx_post_classify(logits, k, k < 5 ? k : 5, idx, prob));
        snprintf(what, n, "softmax over %d classes + top-%d", k, k < 5 ? k : 5);
        free(logits);
        return;
    }
    const nx_tensor *o1 = g->noutputs == 2 ? &g->t[g->outputs[1]] : NULL;
    if (o1 && o0->ndim == 3 && o1->ndim == 3 && o0->dims[2] == 4 && o0->dims[1] == 8732 &&
        o1->dims[1] == 8732) {
        int a = 8732, classes = (int)o1->dims[2];
        float *anchors = nx_malloc(4 * (size_t)a * sizeof(float));
        float *boxes = nx_malloc(4 * (size_t)a * sizeof(float));
        float *logits = nx_malloc((size_t)a * classes * sizeof(float));
        nx_ssd300_anchors(anchors, a);
        /* a trained detector's output: background dominates, ~30 confident anchors */
        for (int i = 0; i < 4 * a; i++)
            boxes[i] = RND();
        for (int i = 0; i < a; i++)
            for (int k = 0; k < classes; k++)
                logits[(size_t)i * classes + k] = k == 0 ? 6.0f : 2 * RND();
        for (int j = 0; j < 30; j++)
            logits[(size_t)(j * 277 % a) * classes + 1 + j % (classes - 1)] = 10.0f;
        void *work = nx_malloc(nx_post_ssd_work_size(a, classes));
        nx_detection det[200];
        TIME_LOOP(clk, *us, nx_post_ssd(boxes, logits, anchors, a, classes, det, 200, work));
        snprintf(what, n, "SSD: softmax over %d classes x %d anchors, box decoding, per-class "
                 "top-400 above 0.01, NMS at IoU 0.45, best 200 (synthetic output with 30 "
                 "confident anchors)", classes, a);
        free(work);
        free(logits);
        free(boxes);
        free(anchors);
        return;
    }
    size_t total = 0;
    for (int i = 0; i < g->noutputs; i++)
        total += nx_tensor_elems(&g->t[g->outputs[i]], 1);
    float *a = nx_calloc(total, sizeof *a), *b = nx_malloc(total * sizeof *b);
    TIME_LOOP(clk, *us, memcpy(b, a, total * sizeof *b); a[0] += b[total - 1]);
    snprintf(what, n, "copying the %zu output values", total);
    free(a);
    free(b);
#undef RND
}

/* ---- measuring ------------------------------------------------------------------------- */

typedef struct point {
    int batch;
    double mean_us, std_us, mem_mb;
} point;

typedef struct session {
    const opts *o;
    const nx_exec_ops *ops;
    nx_graph *g;
    nx_exec *e;
    float **in, **out;
} session;

static void session_close(session *s)
{
    if (s->e)
        s->ops->free(s->e);
    s->e = NULL;
    for (int i = 0; s->in && i < s->g->ninputs; i++)
        free(s->in[i]);
    for (int i = 0; s->out && i < s->g->noutputs; i++)
        free(s->out[i]);
    free(s->in);
    free(s->out);
    s->in = s->out = NULL;
}

/* Prepare and load for max batch b. */
static int session_open(session *s, int b, nx_errbuf *eb)
{
    int rc = nx_graph_prepare(s->g, b, eb);
    if (rc)
        return rc;
    if ((rc = s->ops->init(&s->e, s->g, s->o->prec, s->o->device, eb)))
        return rc;
    s->in = nx_calloc((size_t)s->g->ninputs, sizeof *s->in);
    s->out = nx_calloc((size_t)s->g->noutputs, sizeof *s->out);
    uint32_t rng = 99;
    for (int i = 0; i < s->g->ninputs; i++) {
        size_t n = nx_tensor_elems(&s->g->t[s->g->inputs[i]], b);
        s->in[i] = nx_malloc(n * sizeof(float));
        for (size_t k = 0; k < n; k++) {
            rng = rng * 1664525u + 1013904223u;
            s->in[i][k] = (float)(rng >> 8) / 8388608.0f - 1.0f;
        }
    }
    for (int i = 0; i < s->g->noutputs; i++)
        s->out[i] = nx_malloc(nx_tensor_elems(&s->g->t[s->g->outputs[i]], b) * sizeof(float));
    return 0;
}

/* n timed passes at batch b into us[] (fewer if a round's share of --budget runs out); returns
 * the count or an error. */
static int time_batch(session *s, int b, int n, double *us, nx_errbuf *eb)
{
    const opts *o = s->o;
    if (s->ops->bench && !o->host_io)
        return s->ops->bench(s->e, b, o->warmup, n, us, eb) ? eb->rc : n;
    for (int i = 0; i < o->warmup; i++)
        if (s->ops->run(s->e, b, (const float *const *)s->in, s->out, eb))
            return eb->rc;
    double start = now_s();
    int k = 0;
    while (k < n && (k < 3 || now_s() - start < o->budget_s / o->rounds)) {
        double t0 = now_s();
        if (s->ops->run(s->e, b, (const float *const *)s->in, s->out, eb))
            return eb->rc;
        us[k++] = (now_s() - t0) * 1e6;
    }
    return k;
}

/* The provenance's words for the statistic. */
static void stats_what(char *buf, size_t n, double k, int dropped, int total)
{
    if (k > 0)
        snprintf(buf, n, "robust mean and sample std: passes above the median + %g x 1.4826 MAD "
                         "dropped as host stalls (%d of %d)", k, dropped, total);
    else
        snprintf(buf, n, "mean and sample std of every pass");
}

static void short_gpu_name(const char *dev, char *out, size_t n)
{
    if (!strncmp(dev, "NVIDIA ", 7))
        dev += 7;
    size_t l = strcspn(dev, " ");
    snprintf(out, n, "%.*s", (int)(l < n ? l : n - 1), dev);
}

static void yaml_escape(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"' || *s == '\\')
            fputc('\\', f);
        fputc(*s == '\n' ? ' ' : *s, f);
    }
    fputc('"', f);
}

/* --prepost-only: the pre/post cost of each model on this machine's CPU, as a
 * cost table (engine/experiment.h nx_prepost) written to FILE.tmp, then renamed. */
static int prepost_only(const opts *o)
{
    char tmp[4096], cpu[256] = "unknown CPU";
    snprintf(tmp, sizeof tmp, "%s.tmp", o->out);
    FILE *ci = fopen("/proc/cpuinfo", "r");
    char line[512];
    while (ci && fgets(line, sizeof line, ci)) {
        char *colon = strchr(line, ':');
        if (!strncmp(line, "model name", 10) && colon) {
            snprintf(cpu, sizeof cpu, "%s", colon + 2);
            cpu[strcspn(cpu, "\n")] = 0;
            break;
        }
    }
    if (ci)
        fclose(ci);
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    FILE *f = fopen(tmp, "w");
    if (!f) {
        fprintf(stderr, "nexus-profile: cannot write %s: %s\n", tmp, strerror(errno));
        return 1;
    }
    time_t t = time(NULL);
    char date[32];
    strftime(date, sizeof date, "%Y-%m-%d", gmtime(&t));
    fprintf(f, "# written by nexus-profile --prepost-only on %s (%ld cores), %s; do not edit by "
            "hand.\n# per request, one core: mean CPU time of the thread over repeated calls (0.3 s "
            "or 500 calls)\n", cpu, ncpu, date);
    char host[512];
    snprintf(host, sizeof host, "%s%s%s (%ld cores)", o->host ? o->host : "",
             o->host ? ": " : "", cpu, ncpu);
    fprintf(f, "host: ");
    yaml_escape(f, host);
    fprintf(f, "\nmodels:\n");
    int rc = 0;
    for (int i = 0; i < o->nmodels && !rc; i++) {
        nx_errbuf eb = {0};
        nx_graph g;
        if (nx_onnx_load(&g, o->models[i], &eb)) {
            fprintf(stderr, "nexus-profile: %s\n", eb.msg);
            rc = 1;
            break;
        }
        double pre = 0, post = 0;
        char pre_what[256], post_what[320], name[64];
        if (measure_pre(&g, CLOCK_THREAD_CPUTIME_ID, &pre, pre_what, sizeof pre_what, &eb)) {
            fprintf(stderr, "nexus-profile: %s: pre-processing: %s\n", o->models[i], eb.msg);
            rc = 1;
        }
        measure_post(&g, CLOCK_THREAD_CPUTIME_ID, false, &post, post_what, sizeof post_what);
        const char *base = strrchr(o->models[i], '/') ? strrchr(o->models[i], '/') + 1 : o->models[i];
        size_t l = strlen(base);
        if (l > 5 && !strcmp(base + l - 5, ".onnx"))
            l -= 5;
        snprintf(name, sizeof name, "%.*s", (int)NX_MIN(l, 60), base);
        fprintf(f, "  - {model: %s, preprocess_us: %.1f, postprocess_us: %.1f}   # %s; %s\n",
                name, pre, post, pre_what, post_what);
        if (o->progress)
            fprintf(stderr, "nexus-profile: %s: pre %.1f us, post %.1f us\n", name, pre, post);
        nx_graph_free(&g);
    }
    bool ok = fclose(f) == 0 && !rc && rename(tmp, o->out) == 0;
    if (!ok && !rc)
        fprintf(stderr, "nexus-profile: cannot write %s: %s\n", o->out, strerror(errno));
    if (!ok)
        remove(tmp);
    return ok ? 0 : 1;
}

/* Write a profile to FILE.tmp, then rename it to FILE: a failed run never leaves half of one. */
static int write_profile(const opts *o, const char *out, const char *head, const char *name,
                         const char *gpu, const char *prec, const int *shape, int nshape,
                         double pre_us, double post_us, bool padded, const char *prov,
                         const point *pts, int npts)
{
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp", out);
    FILE *f = fopen(tmp, "w");
    if (!f) {
        fprintf(stderr, "nexus-profile: cannot write %s: %s\n", tmp, strerror(errno));
        return 1;
    }
    fprintf(f, "# %s; do not edit by hand.\n", head);
    fprintf(f, "model: %s\ngpu: %s\nprecision: %s\ninput_shape: [", name, gpu, prec);
    for (int i = 0; i < nshape; i++)
        fprintf(f, "%s%d", i ? ", " : "", shape[i]);
    fprintf(f, "]\npreprocess_us: %.1f\npostprocess_us: %.1f\n", pre_us, post_us);
    if (padded)
        fprintf(f, "padded: true\n");
    fprintf(f, "provenance: ");
    yaml_escape(f, prov);
    fprintf(f, "\nbatches:\n");
    for (int i = 0; i < npts; i++)
        fprintf(f, "  - {batch: %d, mean_us: %.1f, std_us: %.1f, mem_mb: %.1f}\n", pts[i].batch,
                pts[i].mean_us, pts[i].std_us, pts[i].mem_mb);
    bool ok = fclose(f) == 0 && rename(tmp, out) == 0;
    if (!ok) {
        fprintf(stderr, "nexus-profile: cannot write %s: %s\n", out, strerror(errno));
        remove(tmp);
    } else if (o->progress) {
        fprintf(stderr, "nexus-profile: wrote %s (%d batch sizes, largest %d)\n", out, npts,
                pts[npts - 1].batch);
    }
    return ok ? 0 : 1;
}

/* ---- --from-logs: a profile from backends' batch logs ------------------------------------ */

#define LOG_MIN_SAMPLES 5

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *buf = NULL;
    size_t cap = 0;
    *len = 0;
    for (;;) {
        if (*len + 65536 + 1 > cap) {
            cap = cap ? 2 * cap : 131072;
            buf = nx_realloc(buf, cap);
        }
        size_t r = fread(buf + *len, 1, cap - *len - 1, f);
        *len += r;
        if (r == 0)
            break;
    }
    bool bad = ferror(f);
    fclose(f);
    if (bad) {
        free(buf);
        return NULL;
    }
    buf[*len] = 0;
    return buf;
}

/* Split a CSV line (no quoting: the batch log has none) in place; returns the field count. */
static int csv_split(char *line, char **f, int max)
{
    int n = 0;
    for (char *p = line; n < max;) {
        f[n++] = p;
        p = strchr(p, ',');
        if (!p)
            break;
        *p++ = 0;
    }
    return n;
}

typedef struct samples {
    double *x;
    int n, cap;
} samples;

/* Read one batch log's lines of model `model` run alone into per-size samples (the size as
 * run: a padded base's next measured size). */
static int read_log(const char *path, const nx_profile *base, samples *by, int *rows)
{
    size_t len;
    char *text = slurp(path, &len);
    if (!text) {
        fprintf(stderr, "nexus-profile: --from-logs: cannot read %s: %s\n", path, strerror(errno));
        return 1;
    }
    int col[4] = {-1, -1, -1, -1}, line = 0, rc = 0;
    static const char *const want[4] = {"model", "size", "parts", "exec_us"};
    for (char *p = text, *nl; p && *p && !rc; p = nl) {
        nl = strchr(p, '\n');
        if (nl)
            *nl++ = 0;
        line++;
        char *f[16];
        int nf = csv_split(p, f, 16);
        if (line == 1) {
            for (int i = 0; i < nf; i++)
                for (int k = 0; k < 4; k++)
                    if (!strcmp(f[i], want[k]))
                        col[k] = i;
            for (int k = 0; k < 4 && !rc; k++)
                if (col[k] < 0) {
                    fprintf(stderr, "nexus-profile: %s:1: not a batch log: no column '%s'\n", path,
                            want[k]);
                    rc = 1;
                }
            continue;
        }
        if (nf == 1 && !f[0][0])
            continue; /* a blank line */
        int need = col[0] > col[1] ? col[0] : col[1];
        need = need > col[2] ? need : col[2];
        need = need > col[3] ? need : col[3];
        char *end1, *end2;
        long size = nf > need ? strtol(f[col[1]], &end1, 10) : 0;
        double us = nf > need ? strtod(f[col[3]], &end2) : 0;
        if (nf <= need || *end1 || *end2 || size < 1 || !(us >= 0)) {
            fprintf(stderr, "nexus-profile: %s:%d: bad batch log line (%d fields; size and "
                            "exec_us must be numbers)\n", path, line, nf);
            rc = 1;
            break;
        }
        if (strcmp(f[col[0]], base->model) || f[col[2]][0] || size > base->max_batch)
            continue; /* another model's, a prefix group's (suffixes inside), or out of range */
        int b = (int)size;
        if (base->padded) {
            int k = 0;
            while (k < base->npoints && base->points[k].batch < b)
                k++;
            if (k == base->npoints)
                continue;
            b = base->points[k].batch;
        }
        samples *sm = &by[b];
        if (sm->n == sm->cap) {
            sm->cap = sm->cap ? 2 * sm->cap : 64;
            sm->x = nx_realloc(sm->x, sizeof *sm->x * (size_t)sm->cap);
        }
        sm->x[sm->n++] = us;
        (*rows)++;
    }
    free(text);
    return rc;
}

static int from_logs(const opts *o)
{
    size_t len;
    char *text = slurp(o->from_logs, &len);
    if (!text) {
        fprintf(stderr, "nexus-profile: --from-logs: cannot read %s: %s\n", o->from_logs,
                strerror(errno));
        return 1;
    }
    nx_profile base;
    nx_errbuf eb = {0};
    int rc = nx_profile_parse(&base, text, len, o->from_logs, &eb);
    free(text);
    if (rc) {
        fprintf(stderr, "nexus-profile: %s\n", eb.msg);
        return 1;
    }
    samples *by = nx_calloc((size_t)base.max_batch + 1, sizeof *by);
    int rows = 0;
    rc = 0;
    for (int i = 0; i < o->nmodels && !rc; i++)
        rc = read_log(o->models[i], &base, by, &rows);
    point *pts = nx_calloc((size_t)base.max_batch + 1, sizeof *pts);
    int npts = 0, nlog = 0, kept_all = 0, n_all = 0;
    char sizes[600] = "";
    size_t sl = 0;
    for (int b = 1; b <= base.max_batch && !rc; b++) {
        bool measured = false;
        for (int k = 0; k < base.npoints; k++)
            measured |= base.points[k].batch == b;
        if (!measured && by[b].n < LOG_MIN_SAMPLES)
            continue;
        point *p = &pts[npts++];
        p->batch = b;
        p->mem_mb = nx_profile_mem(&base, b);
        if (by[b].n >= LOG_MIN_SAMPLES) {
            kept_all += nx_stats_robust(by[b].x, by[b].n, o->stall_k, &p->mean_us, &p->std_us);
            n_all += by[b].n;
            nlog++;
            if (sl < sizeof sizes)
                sl += (size_t)snprintf(sizes + sl, sizeof sizes - sl, "%s%d (%d)", nlog > 1 ? ", " : "",
                                       b, by[b].n);
        } else {
            p->mean_us = nx_profile_mean(&base, b);
            p->std_us = nx_profile_std(&base, b);
        }
    }
    if (!rc && nlog == 0) {
        fprintf(stderr, "nexus-profile: --from-logs: no batch size of model '%s' has %d or more "
                        "batches run alone in the %d log(s)\n", base.model, LOG_MIN_SAMPLES,
                o->nmodels);
        rc = 1;
    }
    if (!rc) {
        time_t t = time(NULL);
        char date[32], stat_what[200], head[300];
        strftime(date, sizeof date, "%Y-%m-%d", gmtime(&t));
        stats_what(stat_what, sizeof stat_what, o->stall_k, n_all - kept_all, n_all);
        char *prov = nx_malloc(4096 + (base.provenance ? strlen(base.provenance) : 0));
        sprintf(prov, "nexus-profile --from-logs, %s: the executor time per batch of %d logged "
                      "batches of %s run alone, from %d backend batch log(s)%s; %s; measured "
                      "there at batch (batches): %s; the other sizes, mem_mb, pre/post: %s, "
                      "whose provenance: %s",
                date, rows, base.model, o->nmodels,
                base.padded ? " (a batch counted at the measured size it ran at)" : "",
                stat_what, sizes, o->from_logs, base.provenance ? base.provenance : "none");
        snprintf(head, sizeof head, "%s %s from backend batch logs\n# written by nexus-profile "
                                    "--from-logs on %s", base.model, base.precision, date);
        rc = write_profile(o, o->out, head, base.model, base.gpu, base.precision, base.input_shape,
                           base.input_ndim, base.pre_us, base.post_us, base.padded, prov, pts,
                           npts);
        free(prov);
    }
    for (int b = 0; b <= base.max_batch; b++)
        free(by[b].x);
    free(by);
    free(pts);
    nx_profile_free(&base);
    return rc ? 1 : 0;
}

int main(int argc, char **argv)
{
    opts o;
    if (parse_args(argc, argv, &o))
        return 2;
    if (o.prepost_only)
        return prepost_only(&o);
    if (o.from_logs)
        return from_logs(&o);
    nx_errbuf eb = {0};
    nx_graph g;
    if (nx_onnx_load(&g, o.model, &eb)) {
        fprintf(stderr, "nexus-profile: %s\n", eb.msg);
        return 1;
    }
    char name[64], part_what[400] = "";
    if (o.part && nx_graph_cut(&g, o.split, o.part == 2, &eb)) {
        fprintf(stderr, "nexus-profile: %s: %s\n", o.model, eb.msg);
        nx_graph_free(&g);
        return 1;
    }
    if (o.part) {
        const nx_tensor *cut = &g.t[o.part == 1 ? g.outputs[0] : g.inputs[0]];
        snprintf(part_what, sizeof part_what, "; the %s of %s %s tensor '%s'",
                 o.part == 1 ? "prefix" : "suffix", o.model, o.part == 1 ? "up to" : "from",
                 cut->name);
    }
    if (o.name) {
        snprintf(name, sizeof name, "%s", o.name);
    } else {
        const char *base = strrchr(o.model, '/') ? strrchr(o.model, '/') + 1 : o.model;
        size_t l = strlen(base);
        if (l > 5 && !strcmp(base + l - 5, ".onnx"))
            l -= 5;
        snprintf(name, sizeof name, "%.*s%s", (int)NX_MIN(l, 40), base,
                 o.part == 1 ? "_prefix" : o.part == 2 ? "_suffix" : "");
    }
    session s = {.o = &o, .ops = o.gpu ? &nx_exec_cuda_ops : &nx_exec_cpu_ops, .g = &g};
    int rc = 0;
    /* batch 1 first: it must load, and it gives the fixed part of the memory */
    if ((rc = session_open(&s, 1, &eb))) {
        fprintf(stderr, "nexus-profile: %s: %s executor: %s\n", o.model, s.ops->name, eb.msg);
        session_close(&s);
        nx_graph_free(&g);
        return rc == NX_ERR_NOTSUP ? 3 : 1;
    }
    size_t mem1 = s.ops->memory(s.e);
    char device[160] = "", gpu[64];
    snprintf(device, sizeof device, "%s", s.ops->device ? s.ops->device(s.e) : s.ops->name);
    session_close(&s);
    /* the largest requested batch that loads: the largest first, else bisect */
    int last = o.nbatches - 1, fit = -1;
    nx_err_clear(&eb);
    rc = session_open(&s, o.batches[last], &eb);
    if (rc == 0) {
        fit = last;
    } else if (rc == NX_ERR_NOMEM) {
        session_close(&s);
        for (int lo = 0, hi = last - 1; lo <= hi;) {
            int mid = (lo + hi) / 2;
            nx_err_clear(&eb);
            rc = session_open(&s, o.batches[mid], &eb);
            session_close(&s);
            if (rc == 0) {
                fit = mid;
                lo = mid + 1;
            } else if (rc == NX_ERR_NOMEM) {
                hi = mid - 1;
            } else {
                break;
            }
        }
        if (fit >= 0) {
            nx_err_clear(&eb);
            rc = session_open(&s, o.batches[fit], &eb);
        }
    }
    if (rc) {
        if (fit < 0 && rc == NX_ERR_NOMEM)
            fprintf(stderr, "nexus-profile: %s: not even batch %d fits in memory\n", o.model,
                    o.batches[0]);
        else
            fprintf(stderr, "nexus-profile: %s: %s\n", o.model, eb.msg);
        session_close(&s);
        nx_graph_free(&g);
        return 1;
    }
    int bmax = o.batches[fit];
    size_t memmax = s.ops->memory(s.e);
    if (fit < o.nbatches - 1 && o.progress)
        fprintf(stderr, "nexus-profile: batches above %d do not fit; profiling up to %d\n", bmax,
                bmax);
    double pre_us = 0, post_us = 0;
    char pre_what[256], post_what[320];
    if (measure_pre(&g, CLOCK_MONOTONIC, &pre_us, pre_what, sizeof pre_what, &eb)) {
        fprintf(stderr, "nexus-profile: pre-processing: %s\n", eb.msg);
        session_close(&s);
        nx_graph_free(&g);
        return 1;
    }
    measure_post(&g, CLOCK_MONOTONIC, o.part == 1, &post_us, post_what, sizeof post_what);
    point *pts = nx_calloc((size_t)fit + 1, sizeof *pts);
    int stride = o.reps + 1;
    double *us = nx_malloc((size_t)(fit + 1) * (size_t)stride * sizeof *us);
    int *cnt = nx_calloc((size_t)fit + 1, sizeof *cnt);
    int npts = 0, lim = fit + 1, kept_all = 0, n_all = 0;
    /* R rounds, each visiting every batch size in turn with its share of the passes */
    for (int r = 0; r < o.rounds && !rc; r++) {
        for (int i = 0; i < lim && !rc; i++) {
            int b = o.batches[i], want = o.reps / o.rounds + (r < o.reps % o.rounds);
            if (want == 0)
                continue;
            nx_err_clear(&eb);
            int n = time_batch(&s, b, want, us + (size_t)i * (size_t)stride + cnt[i], &eb);
            if (n == NX_ERR_NOMEM) {
                lim = i;   /* a run-time workspace did not fit: this is the limit */
                break;
            }
            if (n < 0) {
                fprintf(stderr, "%snexus-profile: %s: batch %d: %s\n", o.progress ? "\n" : "",
                        o.model, b, eb.msg);
                rc = 1;
                break;
            }
            cnt[i] += n;
            double m = 0;
            for (int k = 0; k < n; k++)
                m += us[(size_t)i * (size_t)stride + cnt[i] - n + k] / n;
            progress(&o, r * (fit + 1) + i + 1, o.rounds * (fit + 1), b, m / 1000);
        }
    }
    for (int i = 0; i < lim && !rc; i++) {
        if (cnt[i] == 0)
            continue;
        int b = o.batches[i];
        point *p = &pts[npts++];
        p->batch = b;
        kept_all += nx_stats_robust(us + (size_t)i * (size_t)stride, cnt[i], o.stall_k,
                                    &p->mean_us, &p->std_us);
        n_all += cnt[i];
        double frac = bmax > 1 ? (double)(b - 1) / (bmax - 1) : 0;
        p->mem_mb = ((double)mem1 + ((double)memmax - (double)mem1) * frac) / 1048576.0;
    }
    free(cnt);
    session_close(&s);
    if (rc || npts == 0) {
        free(pts);
        free(us);
        nx_graph_free(&g);
        return 1;
    }
    if (o.gpu_name)
        snprintf(gpu, sizeof gpu, "%s", o.gpu_name);
    else if (o.gpu)
        short_gpu_name(device, gpu, sizeof gpu);
    else
        snprintf(gpu, sizeof gpu, "cpu");
    time_t t = time(NULL);
    char date[32];
    strftime(date, sizeof date, "%Y-%m-%d", gmtime(&t));
    const char *prec = o.prec == NX_PREC_FP16 ? "fp16" : "fp32";
    const nx_tensor *x = &g.t[g.inputs[0]];
    char prov[2048], stat_what[200], head[400];
    stats_what(stat_what, sizeof stat_what, o.stall_k, n_all - kept_all, n_all);
    snprintf(prov, sizeof prov,
             "nexus-profile on %s (%s executor), %s, %s; per batch size: %d warm-up passes, then "
             "up to %d timed passes (%s) in %d interleaved round(s); %s; mem_mb: the executor's "
             "reserved memory (weights, activation buffers, workspace) loaded for batch 1 (%.1f MB) "
             "and for batch %d (%.1f MB), linear between; largest batch that fits: %s%d; "
             "preprocess: %s; postprocess: %s%s",
             device, s.ops->name, prec, date, o.warmup, o.reps,
             s.ops->bench && !o.host_io
                 ? "device time of the executor's bench: inputs on the device"
                 : "wall time of run(): host input to host output",
             o.rounds, stat_what,
             mem1 / 1048576.0, bmax, memmax / 1048576.0,
             fit == o.nbatches - 1 ? "every requested batch, up to " : "", bmax, pre_what,
             post_what, part_what);
    snprintf(head, sizeof head, "%s %s on %s\n# written by nexus-profile on %s", name, prec, device,
             date);
    int shape[8], nshape = 0;
    for (int i = 1; i < x->ndim && nshape < 8; i++)
        shape[nshape++] = (int)x->dims[i];
    bool ok = write_profile(&o, o.out, head, name, gpu, prec, shape, nshape, pre_us, post_us,
                            o.padded, prov, pts, npts) == 0;
    free(pts);
    free(us);
    nx_graph_free(&g);
    return ok ? 0 : 1;
}
