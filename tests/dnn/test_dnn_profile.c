/* test_dnn_profile.c — CUnit suite for nexus-profile: it profiles the zoo's LeNet on the CPU
 * over a sparse batch list and the file it writes must load with the simulator's own profile
 * parser (engine/config_profile.c) with the right model, shape, batches and positive costs; bad
 * arguments exit 2 naming the option; --gpu without a CUDA build exits non-zero saying so.
 * The binary is $NX_BUILD/bin/nexus-profile (NX_BUILD is set by `make test`). */
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "dnntest.h"
#include "experiment.h"
#include "profile.h"

static char tmp[256], bin[1024], lenet[1024];

static int suite_init(void)
{
    const char *b = getenv("NX_BUILD");
    snprintf(bin, sizeof bin, "%s/bin/nexus-profile", b && *b ? b : "build");
    snprintf(lenet, sizeof lenet, "%s/models/lenet.onnx", nx_dt_root());
    snprintf(tmp, sizeof tmp, "/tmp/nx-dnn-prof-XXXXXX");
    return mkdtemp(tmp) ? 0 : -1;
}

static int suite_clean(void)
{
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmp);
    return system(cmd) == 0 ? 0 : -1;
}

/* Run nexus-profile with args; stderr+stdout into out; the exit status. */
static int run(const char *args, char *out, size_t n)
{
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "%s %s 2>&1", bin, args);
    FILE *p = popen(cmd, "r");
    if (!p)
        return -1;
    size_t len = fread(out, 1, n - 1, p);
    out[len] = 0;
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    *len = (size_t)ftell(f);
    rewind(f);
    char *s = malloc(*len + 1);
    if (fread(s, 1, *len, f) != *len) {
        free(s);
        fclose(f);
        return NULL;
    }
    s[*len] = 0;
    fclose(f);
    return s;
}

/* Run nexus-profile with `opts` on lenet into tmp/file, load the result with the simulator's
 * parser into p (print it when show). 0, or -1 after reporting the failure. */
static int profile_lenet(const char *opts, const char *file, bool show, nx_profile *p)
{
    char args[2048], out[8192], yml[512];
    snprintf(yml, sizeof yml, "%s/%s", tmp, file);
    snprintf(args, sizeof args, "%s %s --out %s", lenet, opts, yml);
    int st = run(args, out, sizeof out);
    DT_CHECK(st == 0, "nexus-profile exited %d: %s", st, out);
    size_t len;
    char *text = slurp(yml, &len);
    DT_CHECK(text != NULL, "%s was not written", yml);
    if (!text)
        return -1;
    if (show)
        printf("\n%s", text);
    nx_errbuf eb = {0};
    nx_profile_init(p);
    int rc = nx_profile_parse(p, text, len, yml, &eb);
    DT_CHECK(rc == 0, "the simulator rejects the profile: %s", eb.msg);
    free(text);
    if (rc)
        nx_profile_free(p);
    return rc ? -1 : 0;
}

static void test_cpu_profile(void)
{
    nx_profile p;
    int rc = profile_lenet("--cpu --precision fp32 --batches 1-3,5 --reps 3 --warmup 1",
                           "lenet.yml", true, &p);
    if (rc == 0) {
        DT_CHECK(!strcmp(p.model, "lenet"), "model '%s'", p.model);
        DT_CHECK(!strcmp(p.gpu, "cpu"), "gpu '%s'", p.gpu);
        DT_CHECK(!strcmp(p.precision, "fp32"), "precision '%s'", p.precision);
        DT_INT(p.input_ndim, 3);
        DT_INT(p.input_shape[0], 1);
        DT_INT(p.input_shape[1], 28);
        DT_INT(p.npoints, 4);
        int want[4] = {1, 2, 3, 5};
        for (int i = 0; i < p.npoints && i < 4; i++) {
            DT_INT(p.points[i].batch, want[i]);
            DT_CHECK(p.points[i].mean_us > 0 && p.points[i].mem_mb > 0, "point %d: %g us %g MB",
                     i, p.points[i].mean_us, p.points[i].mem_mb);
        }
        DT_CHECK(p.pre_us > 0 && p.post_us > 0, "pre %g us, post %g us", p.pre_us, p.post_us);
        DT_CHECK(p.provenance && strstr(p.provenance, "nexus-profile"), "provenance '%s'",
                 p.provenance ? p.provenance : "");
        DT_INT(p.max_batch, 5);
        nx_profile_free(&p);
    }
}

/* --part suffix: lenet's last layer alone, from its 500 features */
static void test_suffix_profile(void)
{
    nx_profile p;
    int rc = profile_lenet("--part suffix --name lenet_fc --batches 1,8 --reps 3 --warmup 1",
                           "lenet_fc.yml", false, &p);
    if (rc == 0) {
        DT_CHECK(!strcmp(p.model, "lenet_fc"), "model '%s'", p.model);
        DT_INT(p.input_ndim, 1);
        DT_INT(p.input_shape[0], 500);
        DT_INT(p.npoints, 2);
        DT_CHECK(p.pre_us == 0 && p.post_us > 0, "pre %g us, post %g us", p.pre_us, p.post_us);
        DT_HAS(p.provenance, "the suffix of");
        nx_profile_free(&p);
    }
}

static void test_bad_args(void)
{
    char args[2048], out[8192];
    struct { const char *args, *want; } c[] = {
        {"--batches 0 --out /tmp/x.yml", "--batches"},
        {"--batches 4-2 --out /tmp/x.yml", "--batches"},
        {"--batches 1,x --out /tmp/x.yml", "--batches"},
        {"--precision fp8 --out /tmp/x.yml", "--precision"},
        {"--gpu abc --out /tmp/x.yml", "--gpu"},
        {"--frob --out /tmp/x.yml", "unknown option '--frob'"},
        {"--part middle --out /tmp/x.yml", "--part"},
        {"", "--out"},
    };
    for (size_t i = 0; i < sizeof c / sizeof *c; i++) {
        snprintf(args, sizeof args, "%s %s", lenet, c[i].args);
        int st = run(args, out, sizeof out);
        DT_CHECK(st == 2, "'%s' exited %d, expected 2: %s", c[i].args, st, out);
        DT_HAS(out, c[i].want);
    }
    int st = run("/nonexistent.onnx --out /tmp/x.yml", out, sizeof out);
    DT_CHECK(st == 1, "a missing model exited %d: %s", st, out);
    DT_HAS(out, "/nonexistent.onnx");
}

static void test_gpu_plain_build(void)
{
    /* this build's CUDA executor: the stub says "not supported" at init */
    nx_exec *e = NULL;
    nx_errbuf eb = {0};
    nx_graph g;
    nx_graph_init(&g);
    int rc = nx_exec_cuda_ops.init(&e, &g, NX_PREC_FP32, 0, &eb);
    if (rc != NX_ERR_NOTSUP) {
        if (e)
            nx_exec_cuda_ops.free(e);
        printf("\n  (CUDA build: skipped)");
        return;
    }
    char args[2048], out[8192];
    snprintf(args, sizeof args, "%s --gpu 0 --batches 1 --out %s/g.yml", lenet, tmp);
    int st = run(args, out, sizeof out);
    DT_CHECK(st != 0, "nexus-profile --gpu exited 0 in a build without CUDA: %s", out);
    DT_HAS(out, "not supported");
    DT_HAS(out, "USE_CUDA=1");
    printf("\n  %s", out);
}

int main(void)
{
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    CU_pSuite su = CU_add_suite("dnn_profile", suite_init, suite_clean);
    if (!su || !CU_add_test(su, "CPU profile of lenet loads in the simulator", test_cpu_profile) ||
        !CU_add_test(su, "--part suffix: the last layer alone", test_suffix_profile) ||
        !CU_add_test(su, "bad arguments exit 2 naming the option", test_bad_args) ||
        !CU_add_test(su, "--gpu in a build without CUDA", test_gpu_plain_build)) {
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
