/* test_dnn_models.c — CUnit suite: every zoo model (`make models`: models/NAME.onnx and
 * PyTorch's outputs for it in models/NAME.ref) at batch 1 and 4 on the CPU executor, against
 * PyTorch's own output for the same weights and inputs.
 *
 * Tolerances, as normalized max errors (max|cpu - torch| / max|torch| over each output):
 * 1e-4 in fp32; 2e-2 with fp16 emulated (weights, inputs and every activation rounded to
 * half precision, compared with PyTorch's fp32). The achieved errors are printed as a table
 * (real/dnn/README.md carries it). The ResNet-50 variant family is checked to share every
 * weight except the final fc, and each variant runs in fp32; one variant's prefix (nx_graph_cut)
 * followed by another's suffix must give the other's output. A missing model is a failure that
 * says to run `make models`. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dnn_int.h"
#include "dnntest.h"

#define TOL_FP32 1e-4
#define TOL_FP16 2e-2

static const char *const zoo[] = {
    "lenet", "resnet18", "resnet50", "vgg16", "inception_v3", "googlenet", "squeezenet1_0",
    "mobilenet_v2", "densenet121", "ssd300_vgg16_core",
};
#define NVARIANTS 10

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

/* Run NAME's reference cases at fp32 (and fp16 when both is set); print a table row. */
static void check_model(const char *name, bool both)
{
    char model[1024], refp[1024], err[256];
    snprintf(model, sizeof model, "%s/models/%s.onnx", nx_dt_root(), name);
    snprintf(refp, sizeof refp, "%s/models/%s.ref", nx_dt_root(), name);
    nx_ref ref;
    if (nx_ref_load(&ref, refp, err, sizeof err)) {
        DT_CHECK(false, "%s (run `make models` first)", err);
        return;
    }
    double t0 = now_s(), e32, e16 = NAN, c32[4] = {NAN, NAN, NAN, NAN}, c16[4] = {NAN, NAN, NAN, NAN};
    nx_errbuf eb = {0};
    int rc = nx_dt_run_ref(model, &ref, &nx_exec_cpu_ops, NX_PREC_FP32, 4, &e32, c32, 4, &eb);
    DT_CHECK(rc == 0, "%s fp32: %s", name, eb.msg);
    if (both) {
        nx_err_clear(&eb);
        rc = nx_dt_run_ref(model, &ref, &nx_exec_cpu_ops, NX_PREC_FP16, 4, &e16, c16, 4, &eb);
        DT_CHECK(rc == 0, "%s fp16: %s", name, eb.msg);
    }
    printf("  %-20s", name);
    for (int c = 0; c < ref.ncases && c < 4; c++) {
        printf("  b%d fp32 %9.3g", ref.cases[c].batch, c32[c]);
        if (both)
            printf(" fp16 %9.3g", c16[c]);
    }
    printf("  (%.1f s)\n", now_s() - t0);
    DT_CHECK(e32 <= TOL_FP32, "%s: fp32 normalized max error %.3g > %.0e", name, e32, TOL_FP32);
    if (both)
        DT_CHECK(e16 <= TOL_FP16, "%s: fp16 normalized max error %.3g > %.0e", name, e16, TOL_FP16);
    DT_CHECK(ref.ncases == 2 && ref.cases[0].batch == 1 && ref.cases[1].batch == 4,
             "%s: the reference should hold batch 1 and 4", name);
    nx_ref_free(&ref);
}

static void test_zoo(void)
{
    printf("\n  normalized max error against PyTorch (tolerance fp32 %.0e, fp16 %.0e)\n", TOL_FP32,
           TOL_FP16);
    for (size_t i = 0; i < sizeof zoo / sizeof *zoo; i++)
        check_model(zoo[i], true);
}

static void test_variants(void)
{
    char path[1024];
    nx_graph base;
    nx_errbuf eb = {0};
    snprintf(path, sizeof path, "%s/models/resnet50.onnx", nx_dt_root());
    int rc = nx_onnx_load(&base, path, &eb);
    DT_CHECK(rc == 0, "%s (run `make models` first)", eb.msg);
    if (rc)
        return;
    printf("\n");
    for (int v = 0; v < NVARIANTS; v++) {
        char name[64];
        snprintf(name, sizeof name, "resnet50_v%d", v);
        snprintf(path, sizeof path, "%s/models/%s.onnx", nx_dt_root(), name);
        nx_graph g;
        nx_err_clear(&eb);
        rc = nx_onnx_load(&g, path, &eb);
        DT_CHECK(rc == 0, "%s", eb.msg);
        if (rc)
            continue;
        /* every constant of the variant: identical to resnet50's, except the fc layer's */
        int same = 0, differ = 0;
        for (int i = 0; i < g.nt; i++) {
            const nx_tensor *t = &g.t[i];
            if (!t->is_const || t->dtype != NX_F32 || !t->name[0])
                continue;
            const nx_tensor *b = NULL;
            for (int j = 0; j < base.nt && !b; j++)
                if (base.t[j].is_const && !strcmp(base.t[j].name, t->name))
                    b = &base.t[j];
            size_t n = nx_dims_elems(t->dims, t->ndim);
            bool eq = b && nx_dims_elems(b->dims, b->ndim) == n && !memcmp(b->data, t->data, n * 4);
            bool fc = !strncmp(t->name, "fc.", 3);
            DT_CHECK(eq != fc, "%s: '%s' %s resnet50's", name, t->name,
                     eq ? "is identical to" : "differs from");
            same += eq;
            differ += !eq;
        }
        printf("  %s: %d weights shared with resnet50, %d own (fc)\n", name, same, differ);
        DT_INT(differ, 2);
        nx_graph_free(&g);
    }
    nx_graph_free(&base);
    for (int v = 0; v < NVARIANTS; v++) {
        char name[64];
        snprintf(name, sizeof name, "resnet50_v%d", v);
        check_model(name, false);
    }
}

/* Load name, cut (part 0 none, 1 prefix, 2 suffix) at `at`, prepare for batch 4, init CPU. */
static int open_part(nx_graph *g, nx_exec **e, const char *name, int part, const char *at,
                     nx_errbuf *eb)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/models/%s.onnx", nx_dt_root(), name);
    int rc = nx_onnx_load(g, path, eb);
    if (rc)
        return rc;
    if ((part && (rc = nx_graph_cut(g, at, part == 2, eb))) || (rc = nx_graph_prepare(g, 4, eb)) ||
        (rc = nx_exec_cpu_ops.init(e, g, NX_PREC_FP32, 0, eb)))
        nx_graph_free(g);
    return rc;
}

/* Prefix batching: the prefix of one variant then the suffix of another is that other
 * variant; prefixes of all variants compute the same features; a cut inside a residual
 * block is refused. */
static void test_prefix_suffix(void)
{
    char refp[1024], err[256];
    nx_ref ref;
    snprintf(refp, sizeof refp, "%s/models/resnet50_v7.ref", nx_dt_root());
    if (nx_ref_load(&ref, refp, err, sizeof err)) {
        DT_CHECK(false, "%s (run `make models` first)", err);
        return;
    }
    nx_graph gp, gs, gq;
    nx_exec *ep, *es, *eq;
    nx_errbuf eb = {0};
    int rc = open_part(&gp, &ep, "resnet50_v2", 1, NULL, &eb);
    DT_CHECK(rc == 0, "%s", eb.msg);
    CU_ASSERT_FATAL(rc == 0);
    rc = open_part(&gs, &es, "resnet50_v7", 2, NULL, &eb);
    DT_CHECK(rc == 0, "%s", eb.msg);
    CU_ASSERT_FATAL(rc == 0);
    rc = open_part(&gq, &eq, "resnet50", 1, "auto", &eb);
    DT_CHECK(rc == 0, "%s", eb.msg);
    CU_ASSERT_FATAL(rc == 0);
    DT_INT(gp.t[gp.outputs[0]].dims[1], 2048);
    DT_INT(gs.t[gs.inputs[0]].dims[1], 2048);
    DT_CHECK(!strcmp(gp.t[gp.outputs[0]].name, gs.t[gs.inputs[0]].name), "cut at '%s' and '%s'",
             gp.t[gp.outputs[0]].name, gs.t[gs.inputs[0]].name);
    for (int c = 0; c < ref.ncases; c++) {
        const nx_ref_case *k = &ref.cases[c];
        size_t nf = (size_t)k->batch * 2048;
        float *feat = malloc(nf * sizeof(float)), *feat2 = malloc(nf * sizeof(float));
        float *out = malloc(k->out[0].n * sizeof(float));
        const float *in[1] = {k->in[0].data}, *fin[1] = {feat};
        DT_INT(nx_exec_cpu_ops.run(ep, k->batch, in, &feat, &eb), 0);
        DT_INT(nx_exec_cpu_ops.run(eq, k->batch, in, &feat2, &eb), 0);
        DT_INT(nx_exec_cpu_ops.run(es, k->batch, fin, &out, &eb), 0);
        double e = nx_norm_err(out, k->out[0].data, k->out[0].n);
        printf("\n  prefix(resnet50_v2) + suffix(resnet50_v7) at batch %d vs PyTorch's "
               "resnet50_v7: %.3g; prefixes of resnet50 and _v2 identical: %s", k->batch, e,
               memcmp(feat, feat2, nf * sizeof(float)) ? "no" : "yes");
        DT_CHECK(e <= TOL_FP32, "batch %d: normalized error %.3g", k->batch, e);
        DT_CHECK(!memcmp(feat, feat2, nf * sizeof(float)), "the prefixes differ at batch %d",
                 k->batch);
        free(feat);
        free(feat2);
        free(out);
    }
    nx_exec_cpu_ops.free(ep);
    nx_exec_cpu_ops.free(es);
    nx_exec_cpu_ops.free(eq);
    nx_graph_free(&gp);
    nx_graph_free(&gs);
    nx_graph_free(&gq);
    nx_ref_free(&ref);
    /* a cut inside a residual block (the downsample branch still reads the block's input) */
    nx_err_clear(&eb);
    rc = open_part(&gp, &ep, "resnet50", 2, "/layer1/layer1.0/relu/Relu_output_0", &eb);
    DT_INT(rc, NX_ERR_CONFIG);
    DT_HAS(eb.msg, "not a cut point");
    if (rc == 0) {
        nx_exec_cpu_ops.free(ep);
        nx_graph_free(&gp);
    }
    nx_err_clear(&eb);
    rc = open_part(&gp, &ep, "resnet50", 1, "no-such-tensor", &eb);
    DT_INT(rc, NX_ERR_NOTFOUND);
    DT_HAS(eb.msg, "no-such-tensor");
    if (rc == 0) {
        nx_exec_cpu_ops.free(ep);
        nx_graph_free(&gp);
    }
}

int main(void)
{
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    CU_pSuite su = CU_add_suite("dnn_models", NULL, NULL);
    if (!su || !CU_add_test(su, "zoo models at batch 1 and 4 against PyTorch (CPU fp32, fp16)",
                            test_zoo) ||
        !CU_add_test(su, "resnet50 variants: shared trunk, own fc, against PyTorch", test_variants) ||
        !CU_add_test(su, "prefix and suffix: a shared trunk then a variant's head", test_prefix_suffix)) {
        CU_cleanup_registry();
        return 1;
    }
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    unsigned fails = CU_get_number_of_failures(), tfail = CU_get_number_of_tests_failed();
    CU_cleanup_registry();
    return fails || tfail ? 1 : 0;
}
