/* test_dnn_models.c — CUnit suite: every zoo model (`make models`: models/NAME.onnx and
 * PyTorch's outputs for it in models/NAME.ref) at batch 1 and 4 on the CPU executor, against
 * PyTorch's own output for the same weights and inputs.
 *
 * Tolerances, as normalized max errors (max|cpu - torch| / max|torch| over each output):
 * 1e-4 in fp32; 2e-2 with fp16 emulated (weights, inputs and every activation rounded to
 * half precision, compared with PyTorch's fp32). The achieved errors are printed as a table
 * (real/dnn/README.md carries it). The ResNet-50 variant family is checked to share every
 * weight except the final fc, and each variant runs in fp32. A missing model is a failure that
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

int main(void)
{
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    CU_pSuite su = CU_add_suite("dnn_models", NULL, NULL);
    if (!su || !CU_add_test(su, "zoo models at batch 1 and 4 against PyTorch (CPU fp32, fp16)",
                            test_zoo) ||
        !CU_add_test(su, "resnet50 variants: shared trunk, own fc, against PyTorch", test_variants)) {
        CU_cleanup_registry();
        return 1;
    }
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    unsigned fails = CU_get_number_of_failures(), tfail = CU_get_number_of_tests_failed();
    CU_cleanup_registry();
    return fails || tfail ? 1 : 0;
}
