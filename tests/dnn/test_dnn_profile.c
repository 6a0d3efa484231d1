/* test_dnn_profile.c — CUnit suite for nexus-profile: it profiles the zoo's LeNet on the CPU
 * over a sparse batch list and the file it writes must load with the simulator's own profile
 * parser (engine/config_profile.c) with the right model, shape, batches and positive costs; bad
 * arguments exit 2 naming the option; --gpu without a CUDA build exits non-zero saying so;
 * --stats/--rounds are written into the provenance; --from-logs turns batch logs into a
 * profile (the logged sizes from the logs, the rest from the base) and refuses bad logs.
 * The binary is $NX_BUILD/bin/nexus-profile (NX_BUILD is set by `make test`). */
#include <math.h>
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


/* --stats mean and --rounds 2: every pass counted, the rounds said in the provenance */
static void test_stats_rounds(void)
{
    nx_profile p;
    if (profile_lenet("--batches 1,2 --reps 4 --rounds 2 --warmup 1 --stats mean", "mean.yml",
                      false, &p) == 0) {
        DT_INT(p.npoints, 2);
        DT_HAS(p.provenance, "in 2 interleaved round(s)");
        DT_HAS(p.provenance, "mean and sample std of every pass");
        nx_profile_free(&p);
    }
    if (profile_lenet("--batches 1 --reps 6 --warmup 1", "robust.yml", false, &p) == 0) {
        DT_HAS(p.provenance, "dropped as host stalls");
        nx_profile_free(&p);
    }
}

static void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    DT_CHECK(f != NULL, "cannot write %s", path);
    if (f) {
        fputs(text, f);
        fclose(f);
    }
}

/* --from-logs: a padded base (batches 1, 4, 8) and two logs: sizes 3 and 4 count at 4 (6 batches:
 * 200 us x 5 and one 900 us stall, dropped), size 1 has 3 batches (too few: the base's), a
 * prefix group's and another model's lines are ignored */
static void test_from_logs(void)
{
    char base[512], l1[512], l2[512], out[512], args[4096], msg[8192];
    snprintf(base, sizeof base, "%s/base.yml", tmp);
    snprintf(l1, sizeof l1, "%s/b0.csv", tmp);
    snprintf(l2, sizeof l2, "%s/b1.csv", tmp);
    snprintf(out, sizeof out, "%s/fromlogs.yml", tmp);
    write_text(base, "model: m\ngpu: H100\nprecision: fp32\ninput_shape: [3]\npreprocess_us: 5\n"
                     "postprocess_us: 1\npadded: true\nprovenance: \"the base\"\nbatches:\n"
                     "  - {batch: 1, mean_us: 100, std_us: 1, mem_mb: 10}\n"
                     "  - {batch: 4, mean_us: 150, std_us: 2, mem_mb: 12}\n"
                     "  - {batch: 8, mean_us: 300, std_us: 3, mem_mb: 14}\n");
    write_text(l1, "t_s,model,size,parts,pred_us,exec_us,session\n"
                   "0.1,m,3,,150,199,a\n0.2,m,4,,150,201,a\n0.3,m,3,,150,900,a\n"
                   "0.4,m,1,,100,120,a\n0.5,other,4,,1,5000,b\n0.6,m,4,m_fc:4,160,7000,a\n");
    write_text(l2, "t_s,model,size,parts,pred_us,exec_us,session\n"
                   "0.1,m,4,,150,200,a\n0.2,m,2,,150,198,a\n0.3,m,4,,150,202,a\n"
                   "0.4,m,1,,100,121,a\n0.5,m,1,,100,122,a\n");
    snprintf(args, sizeof args, "%s --from-logs %s --out %s %s %s", bin, base, out, l1, l2);
    FILE *pp = popen(args, "r");
    int st = pp ? pclose(pp) : -1;
    DT_CHECK(st == 0, "nexus-profile --from-logs exited %d", st);
    size_t len;
    char *text = slurp(out, &len);
    DT_CHECK(text != NULL, "%s was not written", out);
    if (!text)
        return;
    nx_profile p;
    nx_errbuf eb = {0};
    nx_profile_init(&p);
    int rc = nx_profile_parse(&p, text, len, out, &eb);
    DT_CHECK(rc == 0, "the simulator rejects it: %s", eb.msg);
    free(text);
    if (rc)
        return;
    DT_INT(p.npoints, 3);
    DT_CHECK(p.padded && p.pre_us == 5 && p.post_us == 1, "padded %d, pre %g, post %g", p.padded,
             p.pre_us, p.post_us);
    DT_CHECK(fabs(p.points[0].mean_us - 100) < 1e-9, "batch 1: %g us (the base's)", p.points[0].mean_us);
    DT_CHECK(fabs(p.points[1].mean_us - 200) < 1e-9, "batch 4: %g us", p.points[1].mean_us);
    DT_CHECK(fabs(p.points[1].std_us - 1.6) < 0.05, "batch 4: std %g us", p.points[1].std_us);
    DT_CHECK(fabs(p.points[1].mem_mb - 12) < 1e-9, "batch 4: %g MB", p.points[1].mem_mb);
    DT_CHECK(fabs(p.points[2].mean_us - 300) < 1e-9, "batch 8: %g us", p.points[2].mean_us);
    DT_HAS(p.provenance, "1 of 6");
    DT_HAS(p.provenance, "the base");
    nx_profile_free(&p);
    /* bad logs: a missing column, a bad number, nothing usable */
    write_text(l2, "t_s,model,size,pred_us\n0.1,m,4,1\n");
    snprintf(args, sizeof args, "%s --from-logs %s --out %s %s", bin, base, out, l2);
    DT_INT(run(args + strlen(bin) + 1, msg, sizeof msg), 1);
    DT_HAS(msg, "b1.csv:1: not a batch log: no column 'parts'");
    write_text(l2, "t_s,model,size,parts,pred_us,exec_us\n0.1,m,4,,1,2\n0.2,m,x,,1,2\n");
    DT_INT(run(args + strlen(bin) + 1, msg, sizeof msg), 1);
    DT_HAS(msg, "b1.csv:3: bad batch log line");
    write_text(l2, "t_s,model,size,parts,pred_us,exec_us\n0.1,m,4,,1,2\n");
    DT_INT(run(args + strlen(bin) + 1, msg, sizeof msg), 1);
    DT_HAS(msg, "no batch size of model 'm' has 5 or more");
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
        {"--stats median --out /tmp/x.yml", "--stats must be robust or mean"},
        {"--rounds 0 --out /tmp/x.yml", "--rounds"},
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
        !CU_add_test(su, "--stats mean, --rounds", test_stats_rounds) ||
        !CU_add_test(su, "--from-logs: a profile from batch logs", test_from_logs) ||
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
