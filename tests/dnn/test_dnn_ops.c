/* test_dnn_ops.c — CUnit suite for the inference engine's pieces, below whole models:
 *
 *  - every operator against PyTorch: tools/dnn_cases.py exports ~50 small modules (each
 *    operator and attribute combination the zoo uses, and the GEMM past its block sizes) with
 *    PyTorch's own outputs at batch 1 and 3; the CPU executor must match them within a
 *    normalized max error (max|cpu - torch| / max|torch|) of 1e-4 in fp32 and 1e-2 with fp16
 *    emulated, and the achieved errors are printed;
 *  - the importer's errors: an unknown operator, attribute or attribute value names the node
 *    and its op type; every truncated prefix of a model file fails cleanly; missing and empty
 *    files; 2,000 randomly mutated model files fail cleanly or run;
 *  - graph preparation: BatchNormalization folding, activation fusion, Pad folding, buffer
 *    reuse;
 *  - the GEMM against a naive double-precision product (strides, biases, activations), fp16
 *    rounding, the executor's argument checks, pre/post-processing; SSD300's anchors and
 *    detection post-processing against torchvision's.
 * Cases are generated into a fresh temporary directory with Debian's python3 ($NX_PYTHON). */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cpu_ops.h"
#include "dnn_int.h"
#include "dnntest.h"
#include "gemm.h"
#include "prepost.h"

#define TOL_FP32 1e-4
#define TOL_FP16 1e-2

static char tmp[512];

static int suite_init(void)
{
    snprintf(tmp, sizeof tmp, "/tmp/nx-dnn-ops-XXXXXX");
    if (!mkdtemp(tmp))
        return -1;
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "%s -W ignore %s/tools/dnn_cases.py %s > %s/gen.log 2>&1",
             nx_dt_python(), nx_dt_root(), tmp, tmp);
    if (system(cmd) != 0) {
        fprintf(stderr, "test_dnn_ops: generating cases failed: %s (log: %s/gen.log)\n", cmd, tmp);
        return -1;
    }
    return 0;
}

static int suite_clean(void)
{
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmp);
    return system(cmd) == 0 ? 0 : -1;
}

static char *path_of(char *buf, size_t n, const char *name, const char *ext)
{
    snprintf(buf, n, "%s/%s%s", tmp, name, ext);
    return buf;
}

/* ---- every operator against PyTorch ---- */

static void test_ops_vs_torch(void)
{
    char list[600], line[128];
    FILE *f = fopen(path_of(list, sizeof list, "cases", ".txt"), "r");
    CU_ASSERT_FATAL(f != NULL);
    int ncases = 0;
    double worst32 = 0, worst16 = 0;
    printf("\n  %-22s %12s %12s\n", "case", "fp32 err", "fp16 err");
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = 0;
        if (!line[0])
            continue;
        char model[700], refp[700], err[256];
        nx_ref ref;
        path_of(model, sizeof model, line, ".onnx");
        int rrc = nx_ref_load(&ref, path_of(refp, sizeof refp, line, ".ref"), err, sizeof err);
        DT_CHECK(rrc == 0, "%s", err);
        if (rrc)
            continue;
        double e32 = -1, e16 = -1;
        nx_errbuf eb = {0};
        int rc = nx_dt_run_ref(model, &ref, &nx_exec_cpu_ops, NX_PREC_FP32, 3, &e32, NULL, 0, &eb);
        DT_CHECK(rc == 0, "%s fp32: %s", line, eb.msg);
        nx_err_clear(&eb);
        rc = nx_dt_run_ref(model, &ref, &nx_exec_cpu_ops, NX_PREC_FP16, 3, &e16, NULL, 0, &eb);
        DT_CHECK(rc == 0, "%s fp16: %s", line, eb.msg);
        printf("  %-22s %12.3g %12.3g\n", line, e32, e16);
        DT_CHECK(e32 <= TOL_FP32, "%s: fp32 normalized max error %.3g > %.0e", line, e32, TOL_FP32);
        DT_CHECK(e16 <= TOL_FP16, "%s: fp16 normalized max error %.3g > %.0e", line, e16, TOL_FP16);
        worst32 = fmax(worst32, e32);
        worst16 = fmax(worst16, e16);
        nx_ref_free(&ref);
        ncases++;
    }
    fclose(f);
    printf("  %d cases; worst fp32 %.3g (tolerance %.0e), fp16 %.3g (tolerance %.0e)\n", ncases,
           worst32, TOL_FP32, worst16, TOL_FP16);
    DT_CHECK(ncases >= 40, "only %d cases", ncases);
}

/* ---- importer errors ---- */

static void expect_error(const char *name, int code, const char *s1, const char *s2)
{
    char p[700];
    nx_graph g;
    nx_errbuf eb = {0};
    int rc = nx_onnx_load(&g, path_of(p, sizeof p, name, ".onnx"), &eb);
    DT_INT(rc, code);
    DT_HAS(eb.msg, s1);
    DT_HAS(eb.msg, s2);
    DT_HAS(eb.msg, p);
    printf("\n  %s: %s", name, eb.msg);
}

static void test_unsupported(void)
{
    expect_error("bad_op", NX_ERR_NOTSUP, "node 'mystery' (Hardmax)", "unsupported operator");
    expect_error("bad_attr", NX_ERR_NOTSUP, "node 'conv_x' (Conv)",
                 "unsupported attribute 'frobnicate'");
    expect_error("bad_value", NX_ERR_NOTSUP, "node 'pad_r' (Pad)", "mode='reflect'");
}

static void test_truncated(void)
{
    char p[700];
    size_t len;
    FILE *f = fopen(path_of(p, sizeof p, "conv_bn_relu", ".onnx"), "rb");
    CU_ASSERT_FATAL(f != NULL);
    fseek(f, 0, SEEK_END);
    len = (size_t)ftell(f);
    rewind(f);
    uint8_t *buf = malloc(len);
    CU_ASSERT_FATAL(fread(buf, 1, len, f) == len);
    fclose(f);
    /* every proper prefix fails with a message, never a crash (ASan watches the reads) */
    int parse = 0, other = 0;
    for (size_t n = 0; n < len; n++) {
        uint8_t *cut = malloc(n ? n : 1);   /* exact size: reading past it is caught */
        memcpy(cut, buf, n);
        nx_graph g;
        nx_errbuf eb = {0};
        int rc = nx_onnx_import(&g, cut, n, "cut.onnx", &eb);
        DT_CHECK(rc != 0, "a %zu-byte prefix of %zu was accepted", n, len);
        DT_CHECK(rc == 0 || strstr(eb.msg, "cut.onnx") != NULL, "message '%s' names no file",
                 eb.msg);
        if (rc == 0)
            nx_graph_free(&g);
        parse += rc == NX_ERR_PARSE;
        other += rc != 0 && rc != NX_ERR_PARSE;
        free(cut);
    }
    printf("\n  %zu prefixes: %d protobuf errors, %d model errors", len, parse, other);
    /* the whole file is fine */
    nx_graph g;
    nx_errbuf eb = {0};
    DT_INT(nx_onnx_import(&g, buf, len, "whole.onnx", &eb), 0);
    nx_graph_free(&g);
    /* a truncated file on disk names the file and says so */
    char tp[700];
    f = fopen(path_of(tp, sizeof tp, "truncated", ".onnx"), "wb");
    CU_ASSERT_FATAL(f != NULL);
    fwrite(buf, 1, len / 2, f);
    fclose(f);
    nx_err_clear(&eb);
    DT_INT(nx_onnx_load(&g, tp, &eb), NX_ERR_PARSE);
    DT_HAS(eb.msg, "truncated");
    DT_HAS(eb.msg, tp);
    free(buf);
    /* missing and empty files */
    nx_err_clear(&eb);
    DT_INT(nx_onnx_load(&g, "/nonexistent/model.onnx", &eb), NX_ERR_IO);
    DT_HAS(eb.msg, "/nonexistent/model.onnx");
    f = fopen(path_of(tp, sizeof tp, "empty", ".onnx"), "wb");
    CU_ASSERT_FATAL(f != NULL);
    fclose(f);
    nx_err_clear(&eb);
    DT_INT(nx_onnx_load(&g, tp, &eb), NX_ERR_PARSE);
    DT_HAS(eb.msg, "empty");
}

/* Random byte mutations of small models: import, prepare and a run must fail cleanly or
 * work, never crash or read out of bounds (the SAN build watches). */
static void test_mutations(void)
{
    static const char *const names[] = {"conv_bn_relu", "ssd_head", "l2norm", "concat",
                                        "avgpool_pad", "pad", "linear", "reshape"};
    uint32_t seed = 1;
    for (size_t c = 0; c < sizeof names / sizeof *names; c++) {
        char p[700];
        FILE *f = fopen(path_of(p, sizeof p, names[c], ".onnx"), "rb");
        CU_ASSERT_FATAL(f != NULL);
        fseek(f, 0, SEEK_END);
        size_t len = (size_t)ftell(f);
        rewind(f);
        uint8_t *buf = malloc(len), *m = malloc(len);
        CU_ASSERT_FATAL(fread(buf, 1, len, f) == len);
        fclose(f);
        int imported = 0, ran = 0;
        for (int it = 0; it < 250; it++) {
            memcpy(m, buf, len);
            for (int k = 0; k <= it % 3; k++) {
                seed = seed * 1103515245u + 12345u;
                size_t pos = (seed >> 8) % len;
                seed = seed * 1103515245u + 12345u;
                m[pos] = it & 1 ? (uint8_t)(seed >> 16) : m[pos] ^ (uint8_t)(1u << ((seed >> 16) % 8));
            }
            nx_graph g;
            nx_errbuf eb = {0};
            if (nx_onnx_import(&g, m, len, "m.onnx", &eb) != 0) {
                DT_CHECK(eb.msg[0] != 0, "%s mutant %d: an error without a message", names[c], it);
                continue;
            }
            imported++;
            nx_exec *e;
            if (nx_graph_prepare(&g, 2, &eb) == 0 &&
                nx_exec_cpu_ops.init(&e, &g, NX_PREC_FP32, 0, &eb) == 0) {
                float *in[NX_DNN_MAX_IO] = {0}, *out[NX_DNN_MAX_IO] = {0};
                for (int i = 0; i < g.ninputs && i < NX_DNN_MAX_IO; i++)
                    in[i] = calloc(nx_tensor_elems(&g.t[g.inputs[i]], 2) + 1, sizeof(float));
                for (int i = 0; i < g.noutputs && i < NX_DNN_MAX_IO; i++)
                    out[i] = calloc(nx_tensor_elems(&g.t[g.outputs[i]], 2) + 1, sizeof(float));
                nx_exec_cpu_ops.run(e, 2, (const float *const *)in, out, &eb);
                ran++;
                for (int i = 0; i < NX_DNN_MAX_IO; i++) {
                    free(in[i]);
                    free(out[i]);
                }
                nx_exec_cpu_ops.free(e);
            }
            nx_graph_free(&g);
        }
        printf("\n  %-14s 250 mutants: %3d imported, %3d ran", names[c], imported, ran);
        free(buf);
        free(m);
    }
}

/* ---- graph preparation ---- */

static int live(const nx_graph *g, nx_op op)
{
    int n = 0;
    for (int i = 0; i < g->nn; i++)
        n += !g->n[i].dead && (op == NX_OP_COUNT_BASE || g->n[i].op == op);
    return n;
}

static void load_prepared(nx_graph *g, const char *name, int max_batch)
{
    char p[700];
    nx_errbuf eb = {0};
    int rc = nx_onnx_load(g, path_of(p, sizeof p, name, ".onnx"), &eb);
    DT_CHECK(rc == 0, "%s", eb.msg);
    CU_ASSERT_FATAL(rc == 0);
    rc = nx_graph_prepare(g, max_batch, &eb);
    DT_CHECK(rc == 0, "%s", eb.msg);
    CU_ASSERT_FATAL(rc == 0);
}

static void test_prepare(void)
{
    nx_graph g;
    /* Conv -> BN -> ReLU is one Conv with act = relu */
    load_prepared(&g, "conv_bn_relu", 2);
    DT_INT(live(&g, NX_OP_COUNT_BASE), 1);
    DT_INT(live(&g, NX_OP_CONV), 1);
    for (int i = 0; i < g.nn; i++)
        if (!g.n[i].dead)
            DT_INT(g.n[i].act, NX_ACT_RELU);
    nx_graph_free(&g);
    /* a bias-less Conv gets one from the BN */
    load_prepared(&g, "conv_nobias_bn", 2);
    DT_INT(live(&g, NX_OP_COUNT_BASE), 1);
    for (int i = 0; i < g.nn; i++)
        if (!g.n[i].dead)
            DT_INT(g.n[i].ninputs, 3);
    nx_graph_free(&g);
    /* ReLU6 is a Clip fused into the Conv */
    load_prepared(&g, "conv_relu6", 2);
    DT_INT(live(&g, NX_OP_COUNT_BASE), 1);
    for (int i = 0; i < g.nn; i++)
        if (!g.n[i].dead) {
            DT_INT(g.n[i].act, NX_ACT_CLIP);
            DT_CHECK(g.n[i].act_min == 0 && g.n[i].act_max == 6, "clip [%g, %g]", g.n[i].act_min,
                     g.n[i].act_max);
        }
    nx_graph_free(&g);
    /* a BN that follows no Conv stays, with the ReLU fused into it */
    load_prepared(&g, "bn_relu", 2);
    DT_INT(live(&g, NX_OP_BATCHNORM), 1);
    DT_INT(live(&g, NX_OP_RELU), 0);
    nx_graph_free(&g);
    /* Identity and Dropout go; the graph output becomes the Relu's */
    load_prepared(&g, "identity_dropout", 2);
    DT_INT(live(&g, NX_OP_COUNT_BASE), 1);
    DT_INT(live(&g, NX_OP_RELU), 1);
    for (int i = 0; i < g.nn; i++)
        if (!g.n[i].dead)
            DT_INT(g.n[i].outputs[0], g.outputs[0]);
    nx_graph_free(&g);
    /* Add + ReLU fuse */
    load_prepared(&g, "add_relu", 2);
    DT_INT(live(&g, NX_OP_RELU), 0);
    nx_graph_free(&g);
    /* the exporter's Pad before AveragePool(count_include_pad) becomes the pool's padding */
    load_prepared(&g, "avgpool_pad", 2);
    DT_INT(live(&g, NX_OP_PAD), 0);
    DT_INT(live(&g, NX_OP_AVGPOOL), 1);
    nx_graph_free(&g);
    /* buffers: a chain of 4 nodes ping-pongs between 2 buffers */
    load_prepared(&g, "ssd_head", 5);
    DT_INT(live(&g, NX_OP_COUNT_BASE), 4);
    DT_INT(g.nbuffers, 2);
    nx_graph_free(&g);
    /* concat_many: 12 Muls all alive until the Concat; every buffer is sized for the max
     * batch, and no two tensors alive at once share one */
    load_prepared(&g, "concat_many", 5);
    DT_INT(g.nbuffers, live(&g, NX_OP_COUNT_BASE));
    for (int i = 0; i < g.nt; i++) {
        const nx_tensor *t = &g.t[i];
        if (t->buffer >= 0)
            DT_CHECK(g.buffer_elems[t->buffer] >= nx_tensor_elems(t, 5),
                     "tensor '%s' does not fit its buffer", t->name);
    }
    /* no two tensors alive at once share a buffer */
    for (int i = 0; i < g.nt; i++)
        for (int j = i + 1; j < g.nt; j++) {
            const nx_tensor *a = &g.t[i], *b = &g.t[j];
            if (a->buffer < 0 || a->buffer != b->buffer)
                continue;
            bool overlap = a->first_use <= b->last_use && b->first_use <= a->last_use &&
                           !(a->last_use == b->first_use || b->last_use == a->first_use);
            DT_CHECK(!overlap, "'%s' [%d, %d] and '%s' [%d, %d] share buffer %d", a->name,
                     a->first_use, a->last_use, b->name, b->first_use, b->last_use, a->buffer);
        }
    nx_graph_free(&g);
    /* the batch range is checked, and an unprepared graph is refused */
    load_prepared(&g, "relu", 2);
    nx_exec *e;
    nx_errbuf eb = {0};
    CU_ASSERT_FATAL(nx_exec_cpu_ops.init(&e, &g, NX_PREC_FP32, 0, &eb) == 0);
    float in[3 * 4 * 5 * 3] = {0}, out[3 * 4 * 5 * 3];
    const float *ins[1] = {in};
    float *outs[1] = {out};
    DT_INT(nx_exec_cpu_ops.run(e, 3, ins, outs, &eb), NX_ERR_INVAL);
    DT_HAS(eb.msg, "batch 3");
    nx_err_clear(&eb);
    DT_INT(nx_exec_cpu_ops.run(e, 0, ins, outs, &eb), NX_ERR_INVAL);
    nx_err_clear(&eb);
    DT_INT(nx_exec_cpu_ops.run(e, 2, ins, outs, &eb), 0);
    nx_exec_cpu_ops.free(e);
    DT_INT(nx_graph_prepare(&g, 0, &eb), NX_ERR_INVAL);
    nx_graph_free(&g);
    char p[700];
    nx_err_clear(&eb);
    CU_ASSERT_FATAL(nx_onnx_load(&g, path_of(p, sizeof p, "relu", ".onnx"), &eb) == 0);
    DT_INT(nx_exec_cpu_ops.init(&e, &g, NX_PREC_FP32, 0, &eb), NX_ERR_INVAL);
    DT_HAS(eb.msg, "not prepared");
    nx_graph_free(&g);
}

/* ---- GEMM ---- */

static uint32_t rng_state = 1;
static float frand(void)
{
    rng_state = rng_state * 1664525u + 1013904223u;
    return (float)(rng_state >> 8) / 8388608.0f - 1.0f;
}

static void gemm_case(int m, int k, int n, bool trans_c, nx_act act)
{
    float *a = malloc(sizeof(float) * (size_t)(m * k + 1)), *b = malloc(sizeof(float) * (size_t)(k * n + 1));
    float *c = malloc(sizeof(float) * (size_t)(m * n + 1)), *bias = malloc(sizeof(float) * (size_t)(m + 1));
    float *bcol = malloc(sizeof(float) * (size_t)(n + 1));
    double *ref = malloc(sizeof(double) * (size_t)(m * n + 1));
    for (int i = 0; i < m * k; i++)
        a[i] = frand();
    for (int i = 0; i < k * n; i++)
        b[i] = frand();
    for (int i = 0; i < m; i++)
        bias[i] = frand();
    for (int i = 0; i < n; i++)
        bcol[i] = frand();
    /* A stored transposed (column-major) to exercise the packing strides */
    float *at = malloc(sizeof(float) * (size_t)(m * k + 1));
    for (int i = 0; i < m; i++)
        for (int kk = 0; kk < k; kk++)
            at[kk * m + i] = a[i * k + kk];
    nx_gemm_a pa;
    nx_gemm_pack_a(&pa, at, m, k, 1, m, 0.5f);
    nx_gemm_b src = {.p = b, .rs = n, .cs = 1};
    nx_gemm_epi epi = {.bias_row = bias, .bias_col = bcol, .act = act, .lo = -0.3f, .hi = 0.4f};
    float *work = aligned_alloc(64, nx_gemm_work_size());
    nx_gemm(&pa, &src, n, c, trans_c ? 1 : n, trans_c ? m : 1, &epi, work);
    double md = 0, mr = 0;
    for (int i = 0; i < m; i++)
        for (int j = 0; j < n; j++) {
            double s = 0;
            for (int kk = 0; kk < k; kk++)
                s += 0.5 * (double)a[i * k + kk] * b[kk * n + j];
            s += bias[i] + bcol[j];
            if (act == NX_ACT_RELU)
                s = s > 0 ? s : 0;
            if (act == NX_ACT_CLIP)
                s = s < -0.3 ? -0.3 : s > 0.4 ? 0.4 : s;
            double got = trans_c ? c[j * m + i] : c[i * n + j];
            md = fmax(md, fabs(got - s));
            mr = fmax(mr, fabs(s));
        }
    double e = mr > 0 ? md / mr : md;
    printf("\n  gemm %4d x %4d x %4d%s act %d: normalized error %.3g", m, k, n,
           trans_c ? " (C transposed)" : "", (int)act, e);
    DT_CHECK(e <= 1e-5, "gemm %dx%dx%d: normalized error %.3g > 1e-5", m, k, n, e);
    nx_gemm_a_free(&pa);
    free(work);
    free(a);
    free(at);
    free(b);
    free(c);
    free(bias);
    free(bcol);
    free(ref);
}

static void test_gemm(void)
{
    gemm_case(1, 1, 1, false, NX_ACT_NONE);
    gemm_case(5, 3, 17, false, NX_ACT_RELU);
    gemm_case(7, 300, 33, true, NX_ACT_CLIP);
    gemm_case(150, 513, 2100, false, NX_ACT_NONE);   /* past MC, KC and NC */
    gemm_case(13, 40, 3, true, NX_ACT_RELU);
    gemm_case(12, 70, 40, false, NX_ACT_CLIP);    /* full tiles merged by the kernel */
    gemm_case(18, 300, 64, false, NX_ACT_RELU);
}

/* ---- fp16 rounding ---- */

static void test_half(void)
{
    struct { float in, out; } c[] = {
        {1.0f, 1.0f}, {-2.5f, -2.5f}, {65504.0f, 65504.0f}, {65519.0f, 65504.0f},
        {65520.0f, INFINITY}, {-1e6f, -INFINITY},
        {1.0f + 0x1p-11f, 1.0f},                  /* a tie: to even */
        {1.0f + 3 * 0x1p-11f, 1.0f + 0x1p-9f},    /* a tie: to even, upwards */
        {1.0f + 0x1p-11f + 0x1p-20f, 1.0f + 0x1p-10f},
        {0x1p-24f, 0x1p-24f}, {0x1p-25f, 0.0f}, {3 * 0x1p-25f, 0x1p-23f}, {0x1p-14f, 0x1p-14f},
        {0.1f, 0.0999755859375f},
    };
    for (size_t i = 0; i < sizeof c / sizeof *c; i++) {
        float r = nx_half_round(c[i].in);
        DT_CHECK(r == c[i].out, "half(%a) = %a, expected %a", (double)c[i].in, (double)r,
                 (double)c[i].out);
    }
    DT_CHECK(isnan(nx_half_round(NAN)), "NaN stays NaN");
}

/* ---- pre/post-processing ---- */

static void test_prepost(void)
{
    /* top-n is sorted, and the probabilities are a softmax */
    float logits[6] = {0.5f, 3.0f, -1.0f, 3.5f, 0.0f, 2.0f};
    int idx[3];
    float prob[3];
    nx_post_classify(logits, 6, 3, idx, prob);
    DT_INT(idx[0], 3);
    DT_INT(idx[1], 1);
    DT_INT(idx[2], 5);
    double z = 0;
    for (int i = 0; i < 6; i++)
        z += exp(logits[i]);
    DT_CHECK(fabs(prob[0] - exp(3.5) / z) < 1e-6, "p0 = %g", prob[0]);
    /* SSD300 default boxes: 8732, the first one as torchvision makes it */
    float *anchors = malloc(4 * 8800 * sizeof(float));
    DT_INT(nx_ssd300_anchors(anchors, 8800), 8732);
    DT_CHECK(fabs(anchors[0] - 0.5 / 37.5) < 1e-6 && fabs(anchors[2] - 0.07) < 1e-6,
             "anchor 0 = (%g, %g, %g, %g)", anchors[0], anchors[1], anchors[2], anchors[3]);
    /* one confident anchor with zero regression comes back as its own box */
    int a = 8732, classes = 5;
    float *boxes = calloc((size_t)a * 4, sizeof(float)), *lg = calloc((size_t)a * classes, sizeof(float));
    for (int i = 0; i < a; i++)
        lg[(size_t)i * classes] = 8.0f;
    lg[(size_t)100 * classes + 2] = 12.0f;
    void *work = malloc(nx_post_ssd_work_size(a, classes));
    nx_detection det[10];
    int nd = nx_post_ssd(boxes, lg, anchors, a, classes, det, 10, work);
    DT_INT(nd, 1);
    if (nd == 1) {
        DT_INT(det[0].label, 2);
        const float *an = anchors + 400;
        DT_CHECK(fabs(det[0].x0 - fmaxf(an[0] - an[2] / 2, 0)) < 1e-5, "x0 = %g", det[0].x0);
    }
    free(work);
    free(boxes);
    free(lg);
    free(anchors);
    /* a corrupt JPEG is an error, not an exit */
    uint8_t junk[64] = {0xff, 0xd8, 0xff, 0xe0, 1, 2, 3};
    float out[3 * 8 * 8];
    nx_errbuf eb = {0};
    DT_INT(nx_pre_image(junk, sizeof junk, 3, 8, 8, out, NULL, 0, &eb), NX_ERR_PARSE);
    DT_HAS(eb.msg, "JPEG");
}

/* SSD300 post-processing against torchvision's (tools/dnn_cases.py: ssd_post): the same
 * anchors, and the same detections (boxes within 0.01 px, scores within 1e-5 relative). */
static void test_ssd_vs_torchvision(void)
{
    char p[700], err[256];
    nx_ref ref;
    int rc = nx_ref_load(&ref, path_of(p, sizeof p, "ssd_post", ".ref"), err, sizeof err);
    DT_CHECK(rc == 0, "%s", err);
    if (rc)
        return;
    const nx_ref_case *k = &ref.cases[0];
    CU_ASSERT_FATAL(k->nin == 3 && k->nout == 3);
    int a = (int)k->in[0].dims[0], classes = (int)k->in[1].dims[1];
    DT_INT(a, 8732);
    float *anchors = malloc(4 * (size_t)a * sizeof(float));
    DT_INT(nx_ssd300_anchors(anchors, a), a);
    double worst = 0;
    for (int i = 0; i < a; i++) {   /* ours (cx, cy, w, h) in [0, 1]; theirs xyxy in pixels */
        const float *o = anchors + 4 * i, *t = k->in[2].data + 4 * i;
        double x0 = (o[0] - o[2] / 2) * 300, y0 = (o[1] - o[3] / 2) * 300;
        double x1 = (o[0] + o[2] / 2) * 300, y1 = (o[1] + o[3] / 2) * 300;
        worst = fmax(worst, fmax(fmax(fabs(x0 - t[0]), fabs(y0 - t[1])),
                                 fmax(fabs(x1 - t[2]), fabs(y1 - t[3]))));
    }
    DT_CHECK(worst < 1e-3, "anchors differ from torchvision's by %.3g px", worst);
    void *work = malloc(nx_post_ssd_work_size(a, classes));
    nx_detection det[200];
    int nd = nx_post_ssd(k->in[0].data, k->in[1].data, anchors, a, classes, det, 200, work);
    int want = (int)k->out[1].n;
    DT_INT(nd, want);
    double box_err = 0, score_err = 0;
    int label_bad = 0;
    for (int i = 0; i < nd && i < want; i++) {
        const float *tb = k->out[0].data + 4 * i;
        float b[4] = {det[i].x0 * 300, det[i].y0 * 300, det[i].x1 * 300, det[i].y1 * 300};
        for (int c = 0; c < 4; c++)
            box_err = fmax(box_err, fabs(b[c] - tb[c]));
        score_err = fmax(score_err, fabs(det[i].score - k->out[1].data[i]) / k->out[1].data[i]);
        label_bad += det[i].label != (int)k->out[2].data[i];
    }
    printf("\n  %d detections (torchvision %d); anchors within %.2g px, boxes within %.2g px, "
           "scores within %.2g relative, %d labels differ", nd, want, worst, box_err, score_err,
           label_bad);
    DT_CHECK(box_err < 1e-2, "boxes differ by %.3g px", box_err);
    DT_CHECK(score_err < 1e-5, "scores differ by %.3g relative", score_err);
    DT_INT(label_bad, 0);
    free(work);
    free(anchors);
    nx_ref_free(&ref);
}

/* JPEG pre-processing against PIL's decoder + torch's bilinear resize (jpeg_pre in
 * tools/dnn_cases.py): RGB normalised, and grey. Both decoders are libjpeg(-turbo); the
 * tolerance allows a 1-level difference in a decoded pixel. */
static void test_jpeg_vs_torch(void)
{
    char p[700], err[256];
    nx_ref ref;
    int rc = nx_ref_load(&ref, path_of(p, sizeof p, "jpeg_pre", ".ref"), err, sizeof err);
    DT_CHECK(rc == 0, "%s", err);
    if (rc)
        return;
    FILE *f = fopen(path_of(p, sizeof p, "photo", ".jpg"), "rb");
    CU_ASSERT_FATAL(f != NULL);
    fseek(f, 0, SEEK_END);
    size_t len = (size_t)ftell(f);
    rewind(f);
    uint8_t *jpeg = malloc(len);
    CU_ASSERT_FATAL(fread(jpeg, 1, len, f) == len);
    fclose(f);
    DT_INT(nx_pre_scratch_size(jpeg, len), 203 * 150 * 3);
    for (int i = 0; i < 2; i++) {
        const nx_ref_tensor *t = &ref.cases[0].out[i];
        int c = (int)t->dims[0], h = (int)t->dims[1], w = (int)t->dims[2];
        float *out = malloc(t->n * sizeof(float));
        nx_errbuf eb = {0};
        DT_INT(nx_pre_image(jpeg, len, c, h, w, out, NULL, 0, &eb), 0);
        double md = 0;
        for (size_t k = 0; k < t->n; k++)
            md = fmax(md, fabs(out[k] - t->data[k]));
        /* one grey level: 1/255, / 0.224 after normalisation */
        double tol = c == 3 ? 1.01 / 255 / 0.224 : 1.01 / 255;
        printf("\n  %dx%dx%d: max difference %.3g (tolerance %.3g)", c, h, w, md, tol);
        DT_CHECK(md <= tol, "%dx%dx%d: max difference %.3g > %.3g", c, h, w, md, tol);
        free(out);
    }
    free(jpeg);
    nx_ref_free(&ref);
}

int main(void)
{
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    CU_pSuite su = CU_add_suite("dnn_ops", suite_init, suite_clean);
    if (!su || !CU_add_test(su, "every operator against PyTorch (CPU, fp32 and fp16)",
                            test_ops_vs_torch) ||
        !CU_add_test(su, "unsupported operator, attribute, value: named errors", test_unsupported) ||
        !CU_add_test(su, "truncated, empty and missing model files", test_truncated) ||
        !CU_add_test(su, "mutated model files fail cleanly or run", test_mutations) ||
        !CU_add_test(su, "prepare: folding, fusion, buffer plan, argument checks", test_prepare) ||
        !CU_add_test(su, "gemm against a naive product", test_gemm) ||
        !CU_add_test(su, "fp16 rounding", test_half) ||
        !CU_add_test(su, "pre/post-processing", test_prepost) ||
        !CU_add_test(su, "SSD post-processing against torchvision", test_ssd_vs_torchvision) ||
        !CU_add_test(su, "JPEG pre-processing against PIL + torch", test_jpeg_vs_torch)) {
        CU_cleanup_registry();
        return 1;
    }
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    unsigned fails = CU_get_number_of_failures(), tfail = CU_get_number_of_tests_failed();
    unsigned sfail = CU_get_number_of_suites_failed();
    CU_cleanup_registry();
    return fails || tfail || sfail ? 1 : 0;
}
