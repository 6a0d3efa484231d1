/* test_config.c — CUnit suite for the parsers (engine/config_*.c) and the loading
 * layer (io/load.c): the committed H100 and toy profiles, the Azure code trace,
 * experiment files with every field and with defaults, and bad input of every
 * kind, each checked for its error code and for a message that names the file
 * and the line (or the field). Fixtures are written to a fresh temporary
 * directory; the repository root is $NX_ROOT or the current directory. */
#include <CUnit/Basic.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "experiment.h"
#include "load.h"

/* Suite state (CUnit tests take no arguments). */
static char root[PATH_MAX];   /* the repository root, absolute */
static char tmp[PATH_MAX];    /* this run's fixture directory */

/* ---- assertions that print both values ---- */

static void check(bool ok, int line, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void check(bool ok, int line, const char *fmt, ...)
{
    char msg[1024] = "";
    if (!ok) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof msg, fmt, ap);
        va_end(ap);
        fprintf(stderr, "\n  test_config.c:%d: %s\n", line, msg);
    }
    CU_assertImplementation(ok, (unsigned)line, msg, __FILE__, "", CU_FALSE);
}

#define CHECK_INT(a, b) do { long long a_ = (a), b_ = (b); \
    check(a_ == b_, __LINE__, "%s = %lld, expected %lld", #a, a_, b_); } while (0)
#define CHECK_DBL(a, b, tol) do { double a_ = (a), b_ = (b); \
    check(fabs(a_ - b_) <= (tol), __LINE__, "%s = %.12g, expected %.12g (tolerance %g)", #a, a_, b_, \
          (double)(tol)); } while (0)
#define CHECK_STR(a, b) do { const char *a_ = (a), *b_ = (b); \
    check(a_ && strcmp(a_, b_) == 0, __LINE__, "%s = '%s', expected '%s'", #a, a_ ? a_ : "(null)", b_); \
    } while (0)
#define CHECK_HAS(msg, sub) do { const char *m_ = (msg), *s_ = (sub); \
    check(strstr(m_, s_) != NULL, __LINE__, "message '%s' does not contain '%s'", m_, s_); } while (0)
#define CHECK_TRUE(e) check((e), __LINE__, "%s is false", #e)

/* ---- fixtures ---- */

/* Write text to tmp/name; the full path goes to path (and is returned). */
static const char *fixture(char *path, size_t size, const char *name, const char *text)
{
    snprintf(path, size, "%s/%s", tmp, name);
    FILE *f = fopen(path, "w");
    CU_ASSERT_FATAL(f != NULL);
    fputs(text, f);
    fclose(f);
    return path;
}

/* text with every "@TOY@" replaced by the absolute toy profile directory (malloc'd). */
static char *with_toy(const char *text)
{
    char toy[PATH_MAX + 16];
    snprintf(toy, sizeof toy, "%s/profiles/toy", root);
    size_t n = strlen(text) + 1;
    for (const char *p = text; (p = strstr(p, "@TOY@")); p += 5)
        n += strlen(toy);
    char *out = malloc(n), *o = out;
    for (const char *p = text; *p;) {
        if (strncmp(p, "@TOY@", 5) == 0) {
            o = stpcpy(o, toy);
            p += 5;
        } else {
            *o++ = *p++;
        }
    }
    *o = 0;
    return out;
}

static int suite_init(void)
{
    const char *r = getenv("NX_ROOT");
    if (!realpath(r && *r ? r : ".", root))
        return -1;
    snprintf(tmp, sizeof tmp, "/tmp/nx-test-config-XXXXXX");
    return mkdtemp(tmp) ? 0 : -1;
}

static int suite_clean(void)
{
    char cmd[PATH_MAX + 16];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
    return system(cmd) == 0 ? 0 : -1;
}

/* ---- profiles ---- */

/* A fresh db with the committed profiles/<sub>; fails the test on an error. */
static void load_profiles(nx_modeldb *db, const char *sub)
{
    char dir[PATH_MAX + 32];
    snprintf(dir, sizeof dir, "%s/profiles/%s", root, sub);
    nx_modeldb_init(db);
    nx_errbuf eb;
    nx_err_clear(&eb);
    int rc = nx_load_profile_dir(db, dir, &eb);
    check(rc == 0, __LINE__, "nx_load_profile_dir(%s): %s", sub, eb.msg);
}

static void test_h100_profiles(void)
{
    nx_modeldb db;
    /* the project's own measurements by nexus-profile: 10 models x 2 precisions, and the
     * ResNet-50 trunk and head (fp32) */
    load_profiles(&db, "h100");
    CHECK_INT(db.n, 22);
    for (int i = 0; i < db.n; i++) {
        CHECK_INT(db.profiles[i].max_batch, 256);
        CHECK_TRUE(db.profiles[i].provenance && strstr(db.profiles[i].provenance, "nexus-profile"));
    }
    nx_modeldb_free(&db);
    /* the converted PyTorch measurements the tests pin */
    load_profiles(&db, "h100-pytorch");
    CHECK_INT(db.n, 24); /* 10 models x 2 precisions + the ResNet-50 trunk and head */
    CHECK_INT(db.ngroups, 1);
    for (int i = 0; i < db.n; i++) {
        CHECK_INT(db.profiles[i].max_batch, 256);
        CHECK_STR(db.profiles[i].gpu, "H100");
        CHECK_TRUE(db.profiles[i].provenance != NULL);
    }
    const nx_profile *p = nx_modeldb_find(&db, "resnet50", "fp16");
    CU_ASSERT_FATAL(p != NULL);
    /* values from shared/data/h100-pytorch-cudagraph.json */
    CHECK_DBL(nx_profile_mean(p, 1), 905.9, 0);
    CHECK_DBL(nx_profile_std(p, 1), 2.6, 0);
    CHECK_DBL(nx_profile_mem(p, 1), 1117.1, 0);
    CHECK_DBL(nx_profile_mean(p, 256), 18258.1, 0);
    CHECK_DBL(nx_profile_mean(p, 4), 1032.8, 0);
    CHECK_DBL(nx_profile_mean(p, 6), 1099.2, 0);
    CHECK_DBL(nx_profile_mean(p, 5), (1032.8 + 1099.2) / 2, 1e-9);
    CHECK_DBL(nx_profile_std(p, 5), (1.4 + 1.6) / 2, 1e-9);
    CHECK_DBL(nx_profile_mean(p, 200), 13920 + (18258.1 - 13920) * 8 / 64, 1e-9);
    CHECK_INT(p->max_batch, 256);
    CHECK_INT(p->npoints, 16);
    CHECK_INT(p->input_ndim, 3);
    CHECK_INT(p->input_shape[0], 3);
    CHECK_INT(p->input_shape[1], 224);
    CHECK_DBL(p->pre_us, 0, 0);
    CHECK_DBL(p->post_us, 0, 0);
    const nx_profile *l = nx_modeldb_find(&db, "lenet", "fp32");
    CU_ASSERT_FATAL(l != NULL);
    CHECK_INT(l->input_shape[0], 1);
    CHECK_INT(l->input_shape[2], 28);
    CHECK_DBL(nx_profile_mean(l, 1), 39.2, 0);
    const nx_profile *inc = nx_modeldb_find(&db, "inception_v3", "fp32");
    CU_ASSERT_FATAL(inc != NULL);
    CHECK_INT(inc->input_shape[1], 299);
    /* name order: densenet121-fp16.yml comes first, so precision "" finds fp16 */
    CHECK_STR(db.profiles[0].model, "densenet121");
    CHECK_STR(nx_modeldb_find(&db, "resnet50", NULL)->precision, "fp16");
    nx_modeldb_free(&db);
}

static void test_toy_profiles(void)
{
    nx_modeldb db;
    load_profiles(&db, "toy");
    CHECK_INT(db.n, 3);
    const nx_profile *a = nx_modeldb_find(&db, "A", NULL);
    const nx_profile *b = nx_modeldb_find(&db, "B", "fp32");
    const nx_profile *c = nx_modeldb_find(&db, "C", NULL);
    CU_ASSERT_FATAL(a && b && c);
    CHECK_DBL(nx_profile_mean(a, 1), nx_profile_mean(a, 4), 0);   /* padded up to batch 4 */
    CHECK_DBL(nx_profile_mean(a, 4), 50000, 0);
    CHECK_DBL(nx_profile_mean(a, 8), 75000, 0);
    CHECK_DBL(nx_profile_mean(a, 16), 100000, 0);
    CHECK_DBL(nx_profile_mean(a, 6), 62500, 1e-9);
    CHECK_DBL(nx_profile_mean(b, 8), 90000, 0);
    CHECK_DBL(nx_profile_mean(b, 16), 125000, 0);
    CHECK_DBL(nx_profile_mean(c, 4), 60000, 0);
    CHECK_DBL(nx_profile_mean(c, 8), 95000, 0);
    CHECK_DBL(nx_profile_mem(c, 16), 1000, 0);
    CHECK_DBL(nx_profile_std(c, 16), 0, 0);
    CHECK_INT(a->max_batch, 16);
    CHECK_STR(a->gpu, "toy");
    CHECK_STR(a->provenance, "Nexus paper (SOSP'19) Table 2 toy example");
    nx_modeldb_free(&db);
}

/* padded: true -- a batch costs the next measured batch (step), not the interpolation. */
static void test_padded_profile(void)
{
    static const char *const text[2] = {
        "model: m\ngpu: g\nprecision: fp32\nbatches:\n  - {batch: 2, mean_us: 100, std_us: 2}\n"
        "  - {batch: 4, mean_us: 200, std_us: 4}\n  - {batch: 8, mean_us: 600, std_us: 8}\n",
        "model: m\ngpu: g\nprecision: fp32\npadded: true\nbatches:\n  - {batch: 2, mean_us: 100, std_us: 2}\n"
        "  - {batch: 4, mean_us: 200, std_us: 4}\n  - {batch: 8, mean_us: 600, std_us: 8}\n",
    };
    nx_profile p[2];
    for (int k = 0; k < 2; k++) {
        nx_profile_init(&p[k]);
        nx_errbuf eb;
        nx_err_clear(&eb);
        CU_ASSERT_FATAL(nx_profile_parse(&p[k], text[k], strlen(text[k]), "p.yml", &eb) == 0);
        CHECK_INT(p[k].max_batch, 8);
    }
    CHECK_TRUE(!p[0].padded && p[1].padded);
    CHECK_DBL(nx_profile_mean(&p[0], 5), 300, 1e-9);   /* linear between 4 and 8 */
    CHECK_DBL(nx_profile_mean(&p[1], 5), 600, 0);      /* padded up to 8 */
    CHECK_DBL(nx_profile_std(&p[1], 5), 8, 0);
    CHECK_DBL(nx_profile_mean(&p[1], 1), 100, 0);
    CHECK_DBL(nx_profile_mean(&p[1], 3), 200, 0);
    CHECK_DBL(nx_profile_mean(&p[1], 4), 200, 0);
    CHECK_DBL(nx_profile_mean(&p[1], 8), 600, 0);
    for (int k = 0; k < 2; k++)
        nx_profile_free(&p[k]);
}

/* A profile with problems: the message names the file, the line and the field. */
static void test_bad_profiles(void)
{
    static const struct {
        const char *text, *want1, *want2;
        int rc;
    } cases[] = {
        { "model: m\ngpu: g\nprecision: fp16\nbatches:\n  - {batch: 1, mean_us: 10}\n"
          "  - {batch: 1, mean_us: 12}\n", "p.yml:6:", "given twice", NX_ERR_CONFIG },
        { "model: m\ngpu: g\nprecision: fp16\nbatches:\n  - {batch: 0, mean_us: 10}\n",
          "p.yml:5:", "batches[0].batch", NX_ERR_CONFIG },
        { "model: m\ngpu: g\nprecision: fp16\nbatches:\n  - {batch: 2, mean_us: -1}\n",
          "p.yml:5:", "must be > 0", NX_ERR_CONFIG },
        { "model: m\ngpu: g\nprecision: fp16\nbatches: []\n", "p.yml:4:", "must not be empty",
          NX_ERR_CONFIG },
        { "model: m\ngpu: g\nbatches:\n  - {batch: 1, mean_us: 10}\n", "p.yml:1:",
          "missing required field 'precision'", NX_ERR_CONFIG },
        { "model: m\ngpu: g\nprecision: fp16\ninput_shape: [3, x]\nbatches:\n  - {batch: 1, mean_us: 10}\n",
          "p.yml:4:", "input_shape[1]", NX_ERR_CONFIG },
        { "model: m\ngpu: g\nprecision: fp16\nbatches:\n  - {batch: 1, mean_us: 10, p99: 3}\n",
          "p.yml:5:", "unknown key 'p99'", NX_ERR_CONFIG },
        { "model: [m\n", "p.yml:", "YAML syntax error", NX_ERR_PARSE },
        { "", "p.yml:1:", "empty", NX_ERR_CONFIG },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        nx_profile p;
        nx_profile_init(&p);
        nx_errbuf eb;
        nx_err_clear(&eb);
        int rc = nx_profile_parse(&p, cases[i].text, strlen(cases[i].text), "dir/p.yml", &eb);
        CHECK_INT(rc, cases[i].rc);
        CHECK_INT(eb.rc, cases[i].rc);
        CHECK_HAS(eb.msg, cases[i].want1);
        CHECK_HAS(eb.msg, cases[i].want2);
        CHECK_TRUE(p.points == NULL && p.mean_us == NULL);   /* freed on error */
    }
}

/* ---- traces ---- */

/* Seconds between two "YYYY-MM-DD HH:MM:SS.fffffff" stamps of the same day. */
static double stamp_diff(const char *a, const char *b)
{
    int da[3], db[3], ha, ma, sa, hb, mb, sb;
    char fa[16] = "", fb[16] = "";
    CU_ASSERT_FATAL(sscanf(a, "%d-%d-%d %d:%d:%d.%15[0-9]", &da[0], &da[1], &da[2], &ha, &ma, &sa, fa) == 7);
    CU_ASSERT_FATAL(sscanf(b, "%d-%d-%d %d:%d:%d.%15[0-9]", &db[0], &db[1], &db[2], &hb, &mb, &sb, fb) == 7);
    CU_ASSERT_FATAL(memcmp(da, db, sizeof da) == 0);
    CU_ASSERT_FATAL(strlen(fa) == 7 && strlen(fb) == 7);   /* 100 ns units */
    long long ta = (ha * 3600LL + ma * 60 + sa) * 10000000LL + atoll(fa);
    long long tb = (hb * 3600LL + mb * 60 + sb) * 10000000LL + atoll(fb);
    return (double)(tb - ta) / 1e7;
}

static void test_trace_azure_code(void)
{
    static const char *const where[] = {
        "traces/azure-llm-2023/code.csv",
        "shared/traces/azure-llm-2023/code.csv",
        "../shared/traces/azure-llm-2023/code.csv",
    };
    char path[PATH_MAX + 64];
    for (size_t i = 0; i < sizeof where / sizeof where[0]; i++) {
        snprintf(path, sizeof path, "%s/%s", root, where[i]);
        if (access(path, R_OK) == 0)
            break;
    }
    char *text;
    size_t len;
    nx_errbuf eb;
    nx_err_clear(&eb);
    int rc = nx_load_file(path, &text, &len, &eb);
    check(rc == 0, __LINE__, "code.csv: %s", eb.msg);
    if (rc)
        return;
    nx_trace t;
    rc = nx_trace_parse(&t, text, len, path, &eb);
    check(rc == 0, __LINE__, "nx_trace_parse: %s", eb.msg);
    /* 8819 rows after the header (shared/traces/README.md; the last line has no newline) */
    CHECK_INT(t.n, 8819);
    CHECK_DBL(t.t_s[0], 0, 0);
    bool sorted = true;
    for (size_t i = 1; i < t.n; i++)
        sorted = sorted && t.t_s[i] >= t.t_s[i - 1];
    CHECK_TRUE(sorted);
    CU_ASSERT_FATAL(t.size != NULL);
    CHECK_DBL(t.size[0], 4808, 0);
    /* the first and last rows' stamps, straight from the text */
    const char *first = strchr(text, '\n') + 1;
    CHECK_TRUE(strncmp(first, "2023-11-16 18:17:03.9799600,", 28) == 0);
    const char *end = text + len;
    while (end > text && (end[-1] == '\n' || end[-1] == '\r'))
        end--;
    const char *last = end;
    while (last > text && last[-1] != '\n')
        last--;
    char a[32], b[32];
    snprintf(a, sizeof a, "%.27s", first);
    snprintf(b, sizeof b, "%.27s", last);
    CHECK_DBL(t.t_s[t.n - 1], stamp_diff(a, b), 1e-9);
    nx_trace_free(&t);
    free(text);
}

static void test_trace_formats(void)
{
    nx_errbuf eb;
    nx_trace t;
    /* seconds, no header, no second column, CRLF and blank trailing lines */
    const char *s1 = "10.5\r\n10.75\r\n12\r\n\r\n\n";
    nx_err_clear(&eb);
    CHECK_INT(nx_trace_parse(&t, s1, strlen(s1), "s1.csv", &eb), 0);
    CHECK_INT(t.n, 3);
    CHECK_TRUE(t.size == NULL);
    CHECK_DBL(t.t_s[1], 0.25, 0);
    CHECK_DBL(t.t_s[2], 1.5, 0);
    nx_trace_free(&t);
    /* header, sizes, no final newline */
    const char *s2 = "time,size\n0,5\n0.5,6\n0.5,7";
    CHECK_INT(nx_trace_parse(&t, s2, strlen(s2), "s2.csv", &eb), 0);
    CHECK_INT(t.n, 3);
    CU_ASSERT_FATAL(t.size != NULL);
    CHECK_DBL(t.size[2], 7, 0);
    CHECK_DBL(t.t_s[2], 0.5, 0);
    nx_trace_free(&t);
    /* stamps across a year boundary and a leap day, few and many fraction digits */
    const char *s3 = "2023-12-31 23:59:59.5\n2024-01-01 00:00:00.25\n2024-02-28T23:59:59.123456789012\n"
                     "2024-03-01 00:00:00\n";
    CHECK_INT(nx_trace_parse(&t, s3, strlen(s3), "s3.csv", &eb), 0);
    check(eb.rc == 0, __LINE__, "%s", eb.msg);
    CHECK_INT(t.n, 4);
    CHECK_DBL(t.t_s[1], 0.75, 1e-12);
    double feb28 = (31 + 27) * 86400.0 + 0.5 + 86399.123456789;
    CHECK_DBL(t.t_s[2], feb28, 1e-9);
    CHECK_DBL(t.t_s[3], (31 + 29) * 86400.0 + 0.5, 1e-9);
    nx_trace_free(&t);
}

static void test_trace_errors(void)
{
    static const struct {
        const char *text, *want1, *want2;
        int rc;
    } cases[] = {
        { "TIMESTAMP,ContextTokens,GeneratedTokens\n", "t.csv: trace is empty", "", NX_ERR_EMPTY },
        { "", "t.csv: trace is empty", "", NX_ERR_EMPTY },
        { "TIMESTAMP,A,B\n2023-11-16 18:17:03.9799600,1,2\n2023-11-16 18:17:0x,1,2\n", "t.csv:3:",
          "cannot read the time", NX_ERR_PARSE },
        { "TIMESTAMP,A,B\n2023-11-16 18:17:03.9799600,1,2\n2023-11-16 18:17:04.1\n", "t.csv:3:",
          "1 fields where the first row has 3", NX_ERR_PARSE },
        { "1\n2\n1.5\n", "t.csv:3:", "backwards", NX_ERR_PARSE },
        { "1,4\n2,x\n", "t.csv:2:", "not a number", NX_ERR_PARSE },
        { "1\n\n2\n", "t.csv:2:", "blank line", NX_ERR_PARSE },
        { "2023-02-29 00:00:00\n", "t.csv: trace is empty", "", NX_ERR_EMPTY },   /* no such day: a header */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        nx_trace t;
        nx_errbuf eb;
        nx_err_clear(&eb);
        int rc = nx_trace_parse(&t, cases[i].text, strlen(cases[i].text), "t.csv", &eb);
        CHECK_INT(rc, cases[i].rc);
        CHECK_HAS(eb.msg, cases[i].want1);
        CHECK_HAS(eb.msg, cases[i].want2);
        CHECK_TRUE(t.t_s == NULL && t.n == 0);
    }
}

/* ---- experiments ---- */

static const char full_yaml[] =
    "name: demo\n"
    "cluster:\n"
    "  gpus: 16\n"
    "  gpu_type: H100\n"
    "  gpu_mem_gb: 40\n"
    "  profiles: ../profiles/h100-pytorch\n"
    "apps:\n"
    "  - name: digits\n"
    "    model: lenet\n"
    "    precision: fp16\n"
    "    slo_ms: 50\n"
    "    workload: {type: poisson, rate: 1000}\n"
    "  - name: faces\n"
    "    model: resnet50\n"
    "    slo_ms: 100.5\n"
    "    workload:\n"
    "      type: gamma\n"
    "      rate: 200\n"
    "      cv: 2\n"
    "  - name: frames\n"
    "    model: vgg16\n"
    "    slo_ms: 200\n"
    "    workload: {type: uniform, rate: 30}\n"
    "  - name: steps\n"
    "    model: googlenet\n"
    "    slo_ms: 80\n"
    "    workload:\n"
    "      type: piecewise\n"
    "      steps: [{at_s: 0, rate: 100}, {at_s: 60, rate: 300}, {at_s: 90.5, rate: 0}]\n"
    "  - name: replay\n"
    "    model: resnet18\n"
    "    slo_ms: 60\n"
    "    workload: {type: trace, rate: 3}\n"
    "  - name: replay2\n"
    "    model: resnet18\n"
    "    slo_ms: 60\n"
    "    workload: {type: trace}\n"
    "trace:\n"
    "  file: ../traces/azure-llm-2023/code.csv\n"
    "  time_scale: 0.5\n"
    "  rate_scale: 2.5\n"
    "  map: zipf\n"
    "  zipf_s: 1.2\n"
    "  loop: no\n"
    "policies:\n"
    "  - {name: nexus, placement: squishy, batching: early_drop, lb: drr}\n"
    "  - {placement: batch_oblivious, batching: clipper_aimd, lb: power_of_two}\n"
    "  - {}\n"
    "run:\n"
    "  duration_s: 120\n"
    "  warmup_s: 20\n"
    "  seed: 18446744073709551615\n"
    "  net_delay_us: 250\n"
    "  net_jitter_us: 50\n"
    "scheduler:\n"
    "  epoch_s: 20\n"
    "  min_epoch_s: 5\n"
    "  beacon_s: 0.5\n"
    "  report_s: 1\n"
    "  avg_interval_s: 8\n"
    "  history: 12\n"
    "  trigger_low: 0.7\n"
    "  trigger_high: 1.2\n"
    "  profile_multiplier: 1.15\n"
    "  adaptive: false\n"
    "batching:\n"
    "  tf_timeout_ms: 2.5\n"
    "  aimd_step: 4\n"
    "  aimd_backoff: 0.5\n"
    "search:\n"
    "  lo: 0.1\n"
    "  hi: 8\n"
    "  iters: 12\n";

static void test_experiment_full(void)
{
    nx_experiment x;
    nx_experiment_init(&x);
    nx_errbuf eb;
    nx_err_clear(&eb);
    int rc = nx_experiment_parse(&x, full_yaml, strlen(full_yaml), "experiments/full.yml", &eb);
    check(rc == 0, __LINE__, "parse: %s", eb.msg);
    CHECK_STR(x.name, "demo");
    CHECK_STR(x.path, "experiments/full.yml");
    CHECK_INT(x.gpus, 16);
    CHECK_STR(x.gpu_type, "H100");
    CHECK_DBL(x.gpu_mem_mb, 40 * 1024, 0);
    CHECK_STR(x.profile_dir, "experiments/../profiles/h100-pytorch");
    CU_ASSERT_FATAL(x.napps == 6);
    CHECK_STR(x.apps[0].name, "digits");
    CHECK_STR(x.apps[0].model, "lenet");
    CHECK_STR(x.apps[0].precision, "fp16");
    CHECK_DBL(x.apps[0].slo_ms, 50, 0);
    CHECK_INT(x.apps[0].wl.kind, NX_WL_POISSON);
    CHECK_DBL(x.apps[0].wl.rate, 1000, 0);
    CHECK_STR(x.apps[1].precision, "");
    CHECK_DBL(x.apps[1].slo_ms, 100.5, 0);
    CHECK_INT(x.apps[1].wl.kind, NX_WL_GAMMA);
    CHECK_DBL(x.apps[1].wl.rate, 200, 0);
    CHECK_DBL(x.apps[1].wl.cv, 2, 0);
    CHECK_INT(x.apps[2].wl.kind, NX_WL_UNIFORM);
    CHECK_DBL(x.apps[2].wl.rate, 30, 0);
    CHECK_INT(x.apps[3].wl.kind, NX_WL_PIECEWISE);
    CU_ASSERT_FATAL(x.apps[3].wl.nsteps == 3);
    CHECK_DBL(x.apps[3].wl.steps[1].at_s, 60, 0);
    CHECK_DBL(x.apps[3].wl.steps[1].rate, 300, 0);
    CHECK_DBL(x.apps[3].wl.steps[2].at_s, 90.5, 0);
    CHECK_INT(x.apps[4].wl.kind, NX_WL_TRACE);
    CHECK_DBL(x.apps[4].wl.rate, 3, 0);
    CHECK_DBL(x.apps[5].wl.rate, 1, 0);   /* the default trace weight */
    CHECK_TRUE(x.apps[0].profile == NULL);
    CHECK_TRUE(x.has_trace);
    CHECK_STR(x.trace.file, "experiments/../traces/azure-llm-2023/code.csv");
    CHECK_DBL(x.trace.time_scale, 0.5, 0);
    CHECK_DBL(x.trace.rate_scale, 2.5, 0);
    CHECK_INT(x.trace.map, NX_TRACE_MAP_ZIPF);
    CHECK_DBL(x.trace.zipf_s, 1.2, 0);
    CHECK_TRUE(!x.trace.loop);
    CHECK_INT(x.trace.trace.n, 0);   /* parsing does not load it */
    CU_ASSERT_FATAL(x.ncombos == 3);
    CHECK_STR(x.combos[0].name, "nexus");
    CHECK_STR(x.combos[1].name, "batch_oblivious+clipper_aimd+power_of_two");
    CHECK_STR(x.combos[1].placement, "batch_oblivious");
    CHECK_STR(x.combos[1].batching, "clipper_aimd");
    CHECK_STR(x.combos[1].lb, "power_of_two");
    CHECK_STR(x.combos[2].name, "squishy+early_drop+drr");
    CHECK_DBL(x.duration_s, 120, 0);
    CHECK_DBL(x.warmup_s, 20, 0);
    CHECK_TRUE(x.seed == UINT64_MAX);
    CHECK_DBL(x.net_delay_us, 250, 0);
    CHECK_DBL(x.net_jitter_us, 50, 0);
    CHECK_DBL(x.sched.epoch_s, 20, 0);
    CHECK_DBL(x.sched.min_epoch_s, 5, 0);
    CHECK_DBL(x.sched.beacon_s, 0.5, 0);
    CHECK_DBL(x.sched.report_s, 1, 0);
    CHECK_DBL(x.sched.avg_interval_s, 8, 0);
    CHECK_INT(x.sched.history, 12);
    CHECK_DBL(x.sched.low, 0.7, 0);
    CHECK_DBL(x.sched.high, 1.2, 0);
    CHECK_DBL(x.sched.profile_multiplier, 1.15, 0);
    CHECK_TRUE(!x.sched.adaptive);
    CHECK_DBL(x.batch.tf_timeout_ms, 2.5, 0);
    CHECK_INT(x.batch.aimd_step, 4);
    CHECK_DBL(x.batch.aimd_backoff, 0.5, 0);
    CHECK_DBL(x.search_lo, 0.1, 0);
    CHECK_DBL(x.search_hi, 8, 0);
    CHECK_INT(x.search_iters, 12);
    nx_experiment_free(&x);
    CHECK_TRUE(x.apps == NULL && x.napps == 0);
}

static void test_experiment_defaults(void)
{
    const char *yaml = "name: small\n"
                       "cluster: {gpus: 1, profiles: /abs/profiles}\n"
                       "apps: [{name: a, model: A, slo_ms: 200, workload: {type: poisson, rate: 0}}]\n"
                       "policies: [{}]\n";
    nx_experiment x;
    nx_experiment_init(&x);
    nx_errbuf eb;
    nx_err_clear(&eb);
    int rc = nx_experiment_parse(&x, yaml, strlen(yaml), "small.yml", &eb);
    check(rc == 0, __LINE__, "parse: %s", eb.msg);
    CHECK_STR(x.profile_dir, "/abs/profiles");
    CHECK_STR(x.gpu_type, "");
    CHECK_DBL(x.gpu_mem_mb, 80 * 1024, 0);
    CHECK_TRUE(!x.has_trace);
    CHECK_DBL(x.trace.time_scale, 1, 0);
    CHECK_DBL(x.trace.rate_scale, 1, 0);
    CHECK_INT(x.trace.map, NX_TRACE_MAP_ROUND_ROBIN);
    CHECK_DBL(x.trace.zipf_s, 0.9, 0);
    CHECK_TRUE(x.trace.loop);
    CHECK_STR(x.combos[0].name, "squishy+early_drop+drr");
    CHECK_DBL(x.duration_s, 60, 0);
    CHECK_DBL(x.warmup_s, 10, 0);
    CHECK_TRUE(x.seed == 1);
    CHECK_DBL(x.net_delay_us, 100, 0);
    CHECK_DBL(x.net_jitter_us, 0, 0);
    CHECK_DBL(x.sched.epoch_s, 30, 0);
    CHECK_DBL(x.sched.min_epoch_s, 10, 0);
    CHECK_DBL(x.sched.beacon_s, 1, 0);
    CHECK_DBL(x.sched.report_s, 2, 0);
    CHECK_DBL(x.sched.avg_interval_s, 10, 0);
    CHECK_INT(x.sched.history, 30);
    CHECK_DBL(x.sched.low, 0.8, 0);
    CHECK_DBL(x.sched.high, 1.1, 0);
    CHECK_DBL(x.sched.profile_multiplier, 1.15, 0);  /* Nexus's default */
    CHECK_TRUE(x.sched.adaptive);
    CHECK_DBL(x.batch.tf_timeout_ms, 1, 0);
    CHECK_INT(x.batch.aimd_step, 2);
    CHECK_DBL(x.batch.aimd_backoff, 0.9, 0);
    CHECK_DBL(x.search_lo, 0.05, 0);
    CHECK_DBL(x.search_hi, 4, 0);
    CHECK_INT(x.search_iters, 10);
    nx_experiment_free(&x);
}

/* A whole experiment from disk: toy profiles, a trace relative to the file. */
static void test_load_experiment(void)
{
    char tpath[PATH_MAX + 64], xpath[PATH_MAX + 64];
    fixture(tpath, sizeof tpath, "ok-trace.csv", "t\n0\n0.5\n1.5\n");
    char *yaml = with_toy("name: toy\n"
                          "cluster: {gpus: 2, profiles: @TOY@}\n"
                          "apps:\n"
                          "  - {name: a, model: A, slo_ms: 200, workload: {type: trace}}\n"
                          "  - {name: b, model: B, precision: fp32, slo_ms: 250, workload: {type: poisson, rate: 32}}\n"
                          "trace: {file: ok-trace.csv, map: weight}\n"
                          "policies: [{name: nexus}]\n");
    fixture(xpath, sizeof xpath, "ok.yml", yaml);
    free(yaml);
    nx_experiment x;
    nx_modeldb db;
    nx_experiment_init(&x);
    nx_modeldb_init(&db);
    nx_errbuf eb;
    nx_err_clear(&eb);
    int rc = nx_load_experiment(&x, &db, xpath, &eb);
    check(rc == 0, __LINE__, "load: %s", eb.msg);
    CHECK_INT(db.n, 3);
    CHECK_TRUE(x.apps[0].profile == nx_modeldb_find(&db, "A", NULL));
    CHECK_TRUE(x.apps[1].profile == nx_modeldb_find(&db, "B", NULL));
    CHECK_STR(x.trace.file, tpath);
    CHECK_INT(x.trace.trace.n, 3);
    CHECK_DBL(x.trace.trace.t_s[2], 1.5, 0);
    CHECK_INT(x.trace.map, NX_TRACE_MAP_WEIGHT);
    nx_experiment_free(&x);
    nx_modeldb_free(&db);
}

/* Bad experiments: code, file name with line (or field), and what is wrong. */
static void test_bad_experiments(void)
{
#define APP0 "apps:\n  - name: digits\n    model: A\n    slo_ms: 200\n"
#define HEAD "name: bad\ncluster:\n  gpus: 1\n  profiles: @TOY@\n"
#define POL "policies: [{}]\n"
    static const struct {
        const char *file, *text, *want1, *want2;
        int rc;
    } cases[] = {
        { "bad-yaml.yml", HEAD APP0 "    workload: {type: poisson, rate: [1, 2\n" POL, "bad-yaml.yml:10:",
          "YAML syntax error: did not find expected ',' or ']' while parsing a flow sequence that starts at line 9",
          NX_ERR_PARSE },
        { "unknown-key.yml", HEAD "apps:\n  - name: digits\n    model: A\n    slo_msec: 200\n", "unknown-key.yml:8:",
          "unknown key 'slo_msec' in apps[0]; valid keys: name, model, precision, slo_ms, workload",
          NX_ERR_CONFIG },
        { "wrong-type.yml", HEAD APP0 "    workload:\n      type: poisson\n      rate: abc\n" POL,
          "wrong-type.yml:11:", "expected a number, got 'abc' (field 'apps[0].workload.rate')", NX_ERR_CONFIG },
        { "neg-rate.yml", HEAD APP0 "    workload:\n      type: poisson\n      rate: -5\n" POL,
          "neg-rate.yml:11:", "must be >= 0, got -5 (field 'apps[0].workload.rate')", NX_ERR_CONFIG },
        { "warmup.yml", HEAD APP0 "    workload: {type: poisson, rate: 1}\n" POL "run:\n  duration_s: 30\n  warmup_s: 30\n",
          "warmup.yml:13:", "warmup_s (30) must be less than duration_s (30) (field 'run.warmup_s')",
          NX_ERR_CONFIG },
        { "warmup2.yml", HEAD APP0 "    workload: {type: poisson, rate: 1}\n" POL "run: {duration_s: 5}\n",
          "warmup2.yml:11:", "field 'run.duration_s'", NX_ERR_CONFIG },
        { "slo.yml", HEAD "apps:\n  - name: digits\n    model: A\n    slo_ms: 10\n    workload: {type: poisson, rate: 1}\n" POL,
          "slo.yml: app 'digits': no batch size of model 'A' fits its 10 ms SLO", "2 x 57.5 ms", NX_ERR_INFEASIBLE },
        { "model.yml", HEAD "apps:\n  - name: digits\n    model: lenet\n    precision: fp16\n    slo_ms: 50\n"
          "    workload: {type: poisson, rate: 1}\n" POL,
          "model.yml: app 'digits': unknown model 'lenet' (precision fp16); profiles in", "have: A (fp32), B (fp32), C (fp32)",
          NX_ERR_NOTFOUND },
        { "dup.yml", HEAD APP0 "    workload: {type: poisson, rate: 1}\n"
          "  - name: digits\n    model: B\n    slo_ms: 250\n    workload: {type: poisson, rate: 1}\n" POL,
          "dup.yml:10:", "duplicate app name 'digits' (also at line 6) (field 'apps[1]')", NX_ERR_CONFIG },
        { "steps.yml", HEAD APP0 "    workload:\n      type: piecewise\n      steps:\n        - {at_s: 0, rate: 1}\n"
          "        - {at_s: 60, rate: 2}\n        - {at_s: 60, rate: 3}\n" POL,
          "steps.yml:14:", "strictly increasing at_s (60 after 60) (field 'apps[0].workload.steps[2].at_s')",
          NX_ERR_CONFIG },
        { "steps0.yml", HEAD APP0 "    workload: {type: piecewise, steps: [{at_s: 1, rate: 1}]}\n" POL,
          "steps0.yml:9:", "the first step must be at 0 s", NX_ERR_CONFIG },
        { "gpus.yml", "name: bad\ncluster:\n  gpus: 0\n  profiles: x\n", "gpus.yml:3:",
          "must be in [1, 100000], got 0 (field 'cluster.gpus')", NX_ERR_CONFIG },
        { "switch.yml", HEAD "  switch_overhead: 11\n" APP0 "    workload: {type: poisson, rate: 1}\n" POL,
          "switch.yml:5:", "must be in [0, 10], got 11 (field 'cluster.switch_overhead')", NX_ERR_CONFIG },
        { "cv.yml", HEAD APP0 "    workload: {type: gamma, rate: 1, cv: 0}\n" POL, "cv.yml:9:",
          "must be > 0, got 0 (field 'apps[0].workload.cv')", NX_ERR_CONFIG },
        { "nocv.yml", HEAD APP0 "    workload: {type: gamma, rate: 1}\n" POL, "nocv.yml:9:",
          "missing required field 'cv' (a gamma workload needs it)", NX_ERR_CONFIG },
        { "cvpois.yml", HEAD APP0 "    workload:\n      type: poisson\n      rate: 1\n      cv: 2\n" POL,
          "cvpois.yml:12:", "'cv' does not apply to a poisson workload", NX_ERR_CONFIG },
        { "slo0.yml", HEAD "apps:\n  - {name: d, model: A, slo_ms: 0, workload: {type: poisson, rate: 1}}\n" POL,
          "slo0.yml:6:", "field 'apps[0].slo_ms'", NX_ERR_CONFIG },
        { "noname.yml", "cluster: {gpus: 1, profiles: x}\n", "noname.yml:1:", "missing required field 'name'",
          NX_ERR_CONFIG },
        { "noapps.yml", HEAD "apps: []\n" POL, "noapps.yml:5:", "must not be empty (field 'apps')", NX_ERR_CONFIG },
        { "notrace.yml", HEAD APP0 "    workload:\n      type: trace\n" POL, "notrace.yml:10:",
          "app 'digits' uses the trace workload but the experiment has no trace section", NX_ERR_CONFIG },
        { "enum.yml", HEAD APP0 "    workload: {type: bursty, rate: 1}\n" POL, "enum.yml:9:",
          "unknown value 'bursty'; valid: poisson, gamma, uniform, piecewise, trace", NX_ERR_CONFIG },
        { "bool.yml", HEAD APP0 "    workload: {type: poisson, rate: 1}\n" POL "scheduler: {adaptive: maybe}\n",
          "bool.yml:11:", "expected true/false/yes/no", NX_ERR_CONFIG },
        { "twice.yml", HEAD "name: again\n", "twice.yml:5:", "key 'name' given twice", NX_ERR_CONFIG },
        { "map.yml", "name: [a, b]\n", "map.yml:1:", "expected a string, found a list (field 'name')", NX_ERR_CONFIG },
        { "low.yml", HEAD APP0 "    workload: {type: poisson, rate: 1}\n" POL "scheduler: {trigger_low: 1.5}\n",
          "low.yml:11:", "must be in (0, 1], got 1.5 (field 'scheduler.trigger_low')", NX_ERR_CONFIG },
        { "search.yml", HEAD APP0 "    workload: {type: poisson, rate: 1}\n" POL "search: {lo: 2, hi: 1}\n",
          "search.yml:11:", "hi (1) must be greater than lo (2)", NX_ERR_CONFIG },
        { "int.yml", HEAD APP0 "    workload: {type: poisson, rate: 1}\n" POL "batching: {aimd_step: 1.5}\n",
          "int.yml:11:", "expected an integer, got '1.5'", NX_ERR_CONFIG },
        { "top.yml", HEAD "polices: []\n", "top.yml:5:", "unknown key 'polices' in the top level", NX_ERR_CONFIG },
        { "profiles.yml", "name: bad\ncluster: {gpus: 1, profiles: no-such-dir}\n"
          "apps: [{name: a, model: A, slo_ms: 200, workload: {type: poisson, rate: 1}}]\n" POL,
          "no-such-dir: cannot open the profile directory: No such file or directory", "", NX_ERR_IO },
        { "trace-empty.yml", HEAD APP0 "    workload: {type: trace}\ntrace: {file: empty.csv}\n" POL,
          "empty.csv: trace is empty", "", NX_ERR_EMPTY },
        { "trace-bad.yml", HEAD APP0 "    workload: {type: trace}\ntrace: {file: garbled.csv}\n" POL,
          "garbled.csv:3:", "cannot read the time", NX_ERR_PARSE },
    };
    char path[PATH_MAX + 64];
    fixture(path, sizeof path, "empty.csv", "TIMESTAMP,ContextTokens,GeneratedTokens\n");
    fixture(path, sizeof path, "garbled.csv",
            "TIMESTAMP,ContextTokens,GeneratedTokens\n2023-11-16 18:17:03.9799600,4808,10\n2023-11-16 18:1#,1,2\n");
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *text = with_toy(cases[i].text);
        fixture(path, sizeof path, cases[i].file, text);
        free(text);
        nx_experiment x;
        nx_modeldb db;
        nx_experiment_init(&x);
        nx_modeldb_init(&db);
        nx_errbuf eb;
        nx_err_clear(&eb);
        int rc = nx_load_experiment(&x, &db, path, &eb);
        check(rc == cases[i].rc, __LINE__, "%s: rc %d (%s), expected %d; message: %s", cases[i].file,
              rc, nx_strerror(rc), cases[i].rc, eb.msg);
        CHECK_INT(eb.rc, rc);
        if (getenv("NX_TEST_VERBOSE"))
            fprintf(stderr, "\n    %s", eb.msg);
        CHECK_HAS(eb.msg, cases[i].want1);
        CHECK_HAS(eb.msg, cases[i].want2);
        nx_experiment_free(&x);
        nx_modeldb_free(&db);
    }
#undef APP0
#undef HEAD
#undef POL
}

static void test_missing_file(void)
{
    char path[PATH_MAX + 64];
    snprintf(path, sizeof path, "%s/no-such-experiment.yml", tmp);
    nx_experiment x;
    nx_modeldb db;
    nx_experiment_init(&x);
    nx_modeldb_init(&db);
    nx_errbuf eb;
    nx_err_clear(&eb);
    CHECK_INT(nx_load_experiment(&x, &db, path, &eb), NX_ERR_IO);
    CHECK_HAS(eb.msg, path);
    CHECK_HAS(eb.msg, "No such file or directory");
    char empty[PATH_MAX + 64];
    snprintf(empty, sizeof empty, "%s/empty-dir", tmp);
    CU_ASSERT_FATAL(mkdir(empty, 0700) == 0);
    fixture(path, sizeof path, "empty-dir/.hidden.yml", "model: x\n");
    fixture(path, sizeof path, "empty-dir/notes.txt", "not a profile\n");
    nx_err_clear(&eb);
    CHECK_INT(nx_load_profile_dir(&db, empty, &eb), NX_ERR_EMPTY);
    CHECK_HAS(eb.msg, empty);
    nx_err_clear(&eb);
    CHECK_INT(nx_load_profile_dir(&db, path, &eb), NX_ERR_IO);   /* a file, not a directory */
    CHECK_HAS(eb.msg, "notes.txt");
    nx_experiment_free(&x);
    nx_modeldb_free(&db);
    char *buf;
    size_t len;
    nx_err_clear(&eb);
    CHECK_INT(nx_load_file(tmp, &buf, &len, &eb), NX_ERR_IO);
    CHECK_HAS(eb.msg, "Is a directory");
    CHECK_TRUE(buf == NULL);
}

/* Every prefix of a good file is parsed without a crash or a leak (the suite
 * runs under ASan/UBSan too): a truncated file is either valid or an error. */
static void test_truncated_inputs(void)
{
    size_t n = strlen(full_yaml);
    int errors = 0;
    for (size_t len = 0; len <= n; len++) {
        nx_experiment x;
        nx_experiment_init(&x);
        nx_errbuf eb;
        nx_err_clear(&eb);
        char *copy = malloc(len ? len : 1);   /* exactly len bytes: no NUL to lean on */
        memcpy(copy, full_yaml, len);
        int rc = nx_experiment_parse(&x, copy, len, "cut.yml", &eb);
        errors += rc != 0;
        if (rc)
            CHECK_TRUE(strncmp(eb.msg, "cut.yml:", 8) == 0);
        nx_experiment_free(&x);
        free(copy);
    }
    CHECK_TRUE(errors > 0);
    const char *csv = "TIMESTAMP,A,B\n2023-11-16 18:17:03.9799600,4808,10\n2023-11-16 18:17:04.0319600,3180,8\n";
    for (size_t len = 0; len <= strlen(csv); len++) {
        nx_trace t;
        nx_errbuf eb;
        nx_err_clear(&eb);
        char *copy = malloc(len ? len : 1);
        memcpy(copy, csv, len);
        if (nx_trace_parse(&t, copy, len, "cut.csv", &eb) == 0)
            nx_trace_free(&t);
        free(copy);
    }
}

int main(void)
{
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 2;
    CU_pSuite s = CU_add_suite("config", suite_init, suite_clean);
    if (!s)
        return 2;
    static const struct {
        const char *name;
        void (*fn)(void);
    } tests[] = {
        { "h100 profiles", test_h100_profiles },
        { "toy profiles", test_toy_profiles },
        { "padded profile", test_padded_profile },
        { "bad profiles", test_bad_profiles },
        { "azure code trace", test_trace_azure_code },
        { "trace formats", test_trace_formats },
        { "trace errors", test_trace_errors },
        { "experiment, all fields", test_experiment_full },
        { "experiment, defaults", test_experiment_defaults },
        { "load experiment", test_load_experiment },
        { "missing files", test_missing_file },
        { "bad experiments", test_bad_experiments },
        { "truncated inputs", test_truncated_inputs },
    };
    for (size_t i = 0; i < sizeof tests / sizeof tests[0]; i++)
        if (!CU_add_test(s, tests[i].name, tests[i].fn))
            return 2;
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    unsigned failed = CU_get_number_of_failures() + CU_get_number_of_suites_failed();
    CU_cleanup_registry();
    return failed ? 1 : 0;
}
