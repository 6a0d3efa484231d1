/* test_hostcost.c — CUnit suite for what a backend node costs besides its GPU
 * alone: the CPU model (pre/post-processing jobs on cpu_cores, FIFO, with and
 * without CPU/GPU overlap), concurrent GPU sharing (interference tables,
 * processor-sharing GPUs in the simulator, one server per session in the
 * backend), the cost and interference table parsers, and the experiment keys
 * that turn them on. Timings are checked exactly against hand computations
 * written next to each case (profiles with std 0, no network delay). */
#include <CUnit/Basic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "backend.h"
#include "load.h"
#include "policies.h"
#include "run.h"
#include "sim.h"
#include "testutil.h"

/* ---- fixtures -------------------------------------------------------------------- */

/* l(b) = 1000 + 1000 b us (measured at 1 and 4), std 0; pre 3000 us, post 500 us. */
static const char prof_text[] =
    "model: %s\ngpu: test\nprecision: fp32\npreprocess_us: %g\npostprocess_us: %g\n"
    "batches:\n"
    "  - {batch: 1, mean_us: 2000, std_us: 0, mem_mb: 100}\n"
    "  - {batch: 4, mean_us: 5000, std_us: 0, mem_mb: 130}\n";

static void make_profile(nx_profile *p, const char *model, double pre, double post)
{
    char text[512];
    snprintf(text, sizeof text, prof_text, model, pre, post);
    nx_errbuf eb;
    nx_err_clear(&eb);
    nx_profile_init(p);
    CU_ASSERT_EQUAL_FATAL(nx_profile_parse(p, text, strlen(text), "test.yml", &eb), 0);
}

/* A backend on a simulator with no network delay; replies are recorded. */
typedef struct bench {
    nx_sim sim;
    nx_backend be;
    nx_profile prof[2];
    nx_session sess[2];
    nx_req req[8];
    nx_time reply_at[8];
    int replies;
} bench;

static void bench_deliver(void *ctx, int dst, nx_msg *m)
{
    bench *t = ctx;
    (void)dst;
    CU_ASSERT_EQUAL(m->type, NX_MSG_REPLY);
    nx_req *r = NX_CONTAINER_OF(m, nx_req, msg);
    t->reply_at[r->id] = t->sim.now;
    t->replies++;
}

static void bench_init(bench *t, int cores, bool no_overlap, bool concurrent, double pre,
                       double post)
{
    memset(t, 0, sizeof *t);
    nx_sim_init(&t->sim, 1, 0, 0, bench_deliver, t);
    for (int i = 0; i < 2; i++) {
        make_profile(&t->prof[i], i ? "m1" : "m0", pre, post);
        t->sess[i] = (nx_session){.id = i, .group = -1, .prof = &t->prof[i], .slo_us = 1e6};
        snprintf(t->sess[i].name, sizeof t->sess[i].name, "s%d", i);
    }
    static const nx_batch_params bp = {.tf_timeout_ms = 1, .aimd_step = 2, .aimd_backoff = 0.9};
    nx_backend_cfg bc = {
        .gpu = 0, .sessions = t->sess, .nsess = 2,
        .batching = nx_batching_find("early_drop"), .bp = &bp, .multiplier = 1,
        .window_start = 0, .window_end = NX_SEC(100),
        .cpu_cores = cores, .no_overlap = no_overlap, .concurrent = concurrent,
    };
    nx_backend_init(&t->be, &t->sim.env, &bc);
}

/* Request i of session s arrives at the backend now. */
static void bench_send(bench *t, int i, int s)
{
    nx_req *r = &t->req[i];
    *r = (nx_req){.id = (uint64_t)i, .session = s, .frontend = 99, .gpu = -1,
                  .deadline = NX_SEC(50)};
    r->msg.type = NX_MSG_QUERY;
    nx_backend_recv(&t->be, &r->msg);
}

static void bench_run(bench *t)
{
    while (nx_sim_step(&t->sim, NX_SEC(10)))
        ;
}

static void bench_free(bench *t)
{
    nx_backend_free(&t->be);
    nx_sim_free(&t->sim);
    for (int i = 0; i < 2; i++)
        nx_profile_free(&t->prof[i]);
}

#define CHECK_TIME(t, ms) CU_ASSERT_EQUAL((t), NX_US((ms) * 1000))

/* ---- CPU model -------------------------------------------------------------------- */

/* 2 cores, overlap. Four requests at 0: pre r0, r1 on the cores 0-3 ms, r2, r3
 * 3-6 ms. r0 queues at 3 and runs alone (l(1) = 2) 3-5; r1 runs 5-7. r0's post
 * waits for a core until 6 (FIFO behind r2, r3's pre): 6-6.5. r2, r3 queue at
 * 6; r1's post 7-7.5; batch {r2, r3} (l(2) = 3) 7-10, posts 10-10.5 on both
 * cores. GPU busy 2 + 2 + 3 = 7 ms; cores 4 x 3 + 4 x 0.5 = 14 ms. */
static void test_cpu_overlap(void)
{
    bench t;
    bench_init(&t, 2, false, false, 3000, 500);
    for (int i = 0; i < 4; i++)
        bench_send(&t, i, 0);
    bench_run(&t);
    CU_ASSERT_EQUAL(t.replies, 4);
    CHECK_TIME(t.reply_at[0], 6.5);
    CHECK_TIME(t.reply_at[1], 7.5);
    CHECK_TIME(t.reply_at[2], 10.5);
    CHECK_TIME(t.reply_at[3], 10.5);
    CU_ASSERT_EQUAL(t.req[2].batch, 2);
    CHECK_TIME(t.be.busy_in_window, 7);
    CHECK_TIME(t.be.cpu_in_window, 14);
    CU_ASSERT_EQUAL(t.be.batches, 3);
    bench_free(&t);
}

/* 2 cores, no overlap (-OL). Requests queue unprocessed. r0 forms a batch at 0:
 * pre 0-3, GPU 3-5, post 5-5.5 (reply r0). Then {r1, r2, r3}: pre r1, r2 5.5-8.5,
 * r3 8.5-11.5, GPU l(3) = 4: 11.5-15.5, post r1, r2 15.5-16, r3 16-16.5. The
 * batching policy's estimate for b = 3 includes the two rounds of pre (6 ms) and
 * a second round of post: 4 + 0.5 + 6 + 0.5 = 11 ms. */
static void test_cpu_no_overlap(void)
{
    bench t;
    bench_init(&t, 2, true, false, 3000, 500);
    for (int i = 0; i < 4; i++)
        bench_send(&t, i, 0);
    bench_run(&t);
    CU_ASSERT_EQUAL(t.replies, 4);
    CHECK_TIME(t.reply_at[0], 5.5);
    CHECK_TIME(t.reply_at[1], 16);
    CHECK_TIME(t.reply_at[2], 16);
    CHECK_TIME(t.reply_at[3], 16.5);
    CHECK_TIME(t.be.busy_in_window, 6);
    CHECK_TIME(t.be.cpu_in_window, 14);
    nx_bsess probe = {.s = &t.sess[0], .prof = &t.prof[0], .group = -1, .multiplier = 1,
                      .serial_cores = 2};
    CHECK_TIME(nx_bsess_lat(&probe, 3), 11);
    probe.serial_cores = 0;
    CHECK_TIME(nx_bsess_lat(&probe, 3), 4.5);
    bench_free(&t);
}

/* cpu_cores 0 keeps the old model: every request's pre and post are pure
 * delays. r0..r3 queue at 3; {r0} 3-5 (r1..r3 arrive while it runs), then
 * {r1, r2, r3} 5-9; replies 0.5 ms after their batch. */
static void test_cpu_unlimited(void)
{
    bench t;
    bench_init(&t, 0, false, false, 3000, 500);
    for (int i = 0; i < 4; i++)
        bench_send(&t, i, 0);
    bench_run(&t);
    CHECK_TIME(t.reply_at[0], 5.5);
    CHECK_TIME(t.reply_at[1], 9.5);
    CHECK_TIME(t.reply_at[3], 9.5);
    CHECK_TIME(t.be.cpu_in_window, 0);
    bench_free(&t);
}

/* ---- GPU sharing -------------------------------------------------------------------- */

static const char ifx_text[] =
    "# test fixture: made-up numbers\n"
    "gpu: test\n"
    "entries:\n"
    "  - {model: m0, precision: fp32, batch: 3, latency_us: [3000, 3600, 4200]}\n"
    "  - {model: m0, precision: fp32, batch: 1, latency_us: [1000, 1500, 2100]}\n"
    "  - {model: m1, precision: fp32, batch: 1, latency_us: [2000, 4000]}\n";

static void test_ifx_table(void)
{
    nx_interference t;
    nx_errbuf eb;
    nx_err_clear(&eb);
    CU_ASSERT_EQUAL_FATAL(nx_interference_parse(&t, ifx_text, strlen(ifx_text), "i.yml", &eb), 0);
    CU_ASSERT_EQUAL(t.n, 3);
    CU_ASSERT_EQUAL(t.e[0].batch, 1); /* sorted */
    nx_ifx_curve c;
    CU_ASSERT_FATAL(nx_interference_curve(&t, "m0", "fp32", &c));
    CU_ASSERT_EQUAL(c.n, 2);
    CU_ASSERT_DOUBLE_EQUAL(nx_ifx_slowdown(&c, 1, 1), 1.0, 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(nx_ifx_slowdown(&c, 1, 2), 1.5, 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(nx_ifx_slowdown(&c, 3, 2), 1.2, 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(nx_ifx_slowdown(&c, 2, 2), 1.35, 1e-12);  /* halfway in b */
    CU_ASSERT_DOUBLE_EQUAL(nx_ifx_slowdown(&c, 8, 3), 1.4, 1e-12);   /* beyond: last row */
    CU_ASSERT_DOUBLE_EQUAL(nx_ifx_slowdown(&c, 1, 4), 2.7, 1e-12);   /* k: +600 per stream */
    CU_ASSERT_FALSE(nx_interference_curve(&t, "m0", "fp16", &c));
    nx_interference_free(&t);

    static const struct { const char *text, *needle; } bad[] = {
        {"gpu: x\nentries:\n  - {model: a, precision: fp32, batch: 1, latency_us: [1], k: 2}\n",
         "b.yml:3: unknown key 'k'"},
        {"gpu: x\nentries:\n  - {model: a, precision: fp32, batch: 1, latency_us: [1, 0]}\n",
         "b.yml:3: must be > 0"},
        {"gpu: x\nentries:\n  - {model: a, precision: fp32, batch: 1, latency_us: [1]}\n"
         "  - {model: a, precision: fp32, batch: 1, latency_us: [2]}\n",
         "b.yml:4: a fp32 batch 1 is given twice (also at line 3)"},
        {"gpu: x\n", "missing required field 'entries'"},
        {"gpu: x\nentries:\n  - {model: a, precision: fp32, batch: 1, latency_us: 5}\n",
         "b.yml:3: expected a list of latencies"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        nx_err_clear(&eb);
        CU_ASSERT_EQUAL(nx_interference_parse(&t, bad[i].text, strlen(bad[i].text), "b.yml", &eb),
                        NX_ERR_CONFIG);
        if (!strstr(eb.msg, bad[i].needle))
            fprintf(stderr, "\n  case %zu: '%s' lacks '%s'\n", i, eb.msg, bad[i].needle);
        CU_ASSERT_PTR_NOT_NULL(strstr(eb.msg, bad[i].needle));
    }
}

typedef struct ps_bench {
    nx_sim sim;
    nx_ifx_curve c[2];
    nx_profile prof[2];
    nx_batch b[3];
    nx_time done_at[3];
} ps_bench;

static double ps_slowdown(void *ctx, const nx_batch *b, int k)
{
    ps_bench *t = ctx;
    return nx_ifx_slowdown(&t->c[b->prof == &t->prof[1]], b->size, k);
}

static void ps_done(nx_event *ev)
{
    nx_batch *b = NX_CONTAINER_OF(ev, nx_batch, ev);
    ps_bench *t = ev->ctx;
    t->done_at[b - t->b] = t->sim.now;
}

/* Processor sharing with the fixture's table (m0 batch 1: slowdown 1.5 at k = 2,
 * 2.1 at k = 3; m0 batch 3: 1.2, 1.4; m1 batch 1: 2 at k = 2, 3 at k = 3 by
 * extension):
 *   A = m0 b1 (alone 2 ms) at 0; B = m0 b3 (alone 4 ms) at 1 ms; C = m1 b1 (2 ms) at 2 ms.
 *   0-1: A alone, 1 ms of work done, 1 left.
 *   1-2: k = 2: A at 1/1.5, B at 1/1.2: A 1/1.5 done (1/3 left), B 1/1.2 (3.1667 left).
 *   2-: k = 3: A at 1/2.1 needs 0.7 ms -> 2.7; B at 1/1.4; C at 1/3.
 *   2-2.7: B does 0.5 (2.6667 left), C 0.2333 (1.7667 left).
 *   2.7-: k = 2: B at 1/1.2 needs 3.2 ms, C at 1/2 needs 3.5333 -> B ends at 5.9;
 *   by then C has done 1.6 (0.1667 left), alone -> 6.0667 ms. */
static void test_ps_gpu(void)
{
    ps_bench t;
    memset(&t, 0, sizeof t);
    nx_sim_init(&t.sim, 1, 0, 0, NULL, NULL);
    nx_interference tab;
    nx_errbuf eb;
    nx_err_clear(&eb);
    CU_ASSERT_EQUAL_FATAL(nx_interference_parse(&tab, ifx_text, strlen(ifx_text), "i.yml", &eb), 0);
    nx_interference_curve(&tab, "m0", "fp32", &t.c[0]);
    nx_interference_curve(&tab, "m1", "fp32", &t.c[1]);
    /* m0: l(1) = 2 ms, l(3) = 4 ms */
    make_profile(&t.prof[0], "m0", 0, 0);
    make_profile(&t.prof[1], "m1", 0, 0);
    nx_sim_share(&t.sim, 1, ps_slowdown, &t);
    int size[3] = {1, 3, 1};
    double at_ms[3] = {0, 1, 2};
    for (int i = 0; i < 3; i++) {
        t.b[i] = (nx_batch){.ev = {.fn = ps_done, .ctx = &t}, .gpu = 0, .size = size[i],
                            .prof = &t.prof[i == 2]};
        while (t.sim.now < NX_MS(at_ms[i]) && nx_sim_step(&t.sim, NX_MS(at_ms[i])))
            ;
        t.sim.now = NX_MS(at_ms[i]);
        t.b[i].start = t.sim.now;
        nx_gpu_run(&t.sim.env, &t.b[i]);
    }
    while (nx_sim_step(&t.sim, NX_SEC(1)))
        ;
    CU_ASSERT_EQUAL(t.done_at[0], NX_US(2700));
    CU_ASSERT_EQUAL(t.done_at[1], NX_US(5900));
    /* 6.0667 ms, to the ns (the wake-ups round up to whole ns) */
    CU_ASSERT(llabs(t.done_at[2] - 6066667) <= 1);
    CU_ASSERT_EQUAL(t.b[0].latency, NX_US(2700));
    CU_ASSERT_EQUAL(t.b[1].latency, NX_US(4900));
    nx_sim_free(&t.sim);
    nx_interference_free(&tab);
    for (int i = 0; i < 2; i++)
        nx_profile_free(&t.prof[i]);
}

/* The backend with concurrent servers on a sharing GPU: r0 (session 0, m0) at
 * 0 and r1 (session 1, m1) at 1 ms each run at once as a batch of 1 (alone 2
 * ms). 0-1: r0 alone (1 ms left). Then k = 2: m0 at 1/1.5 ends at 2.5; r1 has
 * done 1.5 / 2 = 0.75 by then (1.25 left), alone -> 3.75 ms. An exclusive
 * backend runs r1 after r0: 2-4 ms. */
static void test_concurrent_backend(void)
{
    nx_interference tab;
    nx_errbuf eb;
    nx_err_clear(&eb);
    CU_ASSERT_EQUAL_FATAL(nx_interference_parse(&tab, ifx_text, strlen(ifx_text), "i.yml", &eb), 0);
    for (int conc = 0; conc < 2; conc++) {
        bench t;
        bench_init(&t, 0, false, conc, 0, 0);
        ps_bench ctx; /* only its curves and profiles are used by ps_slowdown */
        memset(&ctx, 0, sizeof ctx);
        nx_interference_curve(&tab, "m0", "fp32", &ctx.c[0]);
        nx_interference_curve(&tab, "m1", "fp32", &ctx.c[1]);
        ctx.prof[0] = t.prof[0];
        ctx.prof[1] = t.prof[1];
        t.sess[0].prof = &ctx.prof[0];
        t.sess[1].prof = &ctx.prof[1];
        if (conc)
            nx_sim_share(&t.sim, 1, ps_slowdown, &ctx);
        bench_send(&t, 0, 0);
        while (nx_sim_step(&t.sim, NX_MS(1)))
            ;
        t.sim.now = NX_MS(1);
        bench_send(&t, 1, 1);
        bench_run(&t);
        CU_ASSERT_EQUAL(t.replies, 2);
        CHECK_TIME(t.reply_at[0], conc ? 2.5 : 2);
        CHECK_TIME(t.reply_at[1], conc ? 3.75 : 4);
        CHECK_TIME(t.be.busy_in_window, conc ? 3.75 : 4);
        bench_free(&t);
    }
    nx_interference_free(&tab);
}

/* ---- experiment keys ----------------------------------------------------------------- */

static char *fixture(char *pdir, size_t n)
{
    char *d = nx_tu_tmpdir();
    snprintf(pdir, n, "%s/profiles", d);
    CU_ASSERT_EQUAL_FATAL(mkdir(pdir, 0755), 0);
    char text[512];
    snprintf(text, sizeof text, prof_text, "m0", 0.0, 0.0);
    free(nx_tu_write(pdir, "m0.yml", text));
    snprintf(text, sizeof text, prof_text, "m1", 0.0, 0.0);
    free(nx_tu_write(pdir, "m1.yml", text));
    free(nx_tu_write(d, "ifx.yml", ifx_text));
    free(nx_tu_write(pdir, "interference.yml", ifx_text)); /* skipped by the profile loader */
    free(nx_tu_write(d, "cpu.yml",
                     "host: test fixture\nmodels:\n"
                     "  - {model: m0, preprocess_us: 700, postprocess_us: 20}\n"));
    return d;
}

static int load_exp(const char *d, const char *text, nx_experiment *x, nx_modeldb *db,
                    nx_errbuf *eb)
{
    char *path = nx_tu_write(d, "e.yml", text);
    nx_experiment_init(x);
    nx_modeldb_init(db);
    nx_err_clear(eb);
    int rc = nx_load_experiment(x, db, path, eb);
    free(path);
    return rc;
}

static void test_experiment_keys(void)
{
    char pdir[512];
    char *d = fixture(pdir, sizeof pdir);
    nx_experiment x;
    nx_modeldb db;
    nx_errbuf eb;
    /* the cost table replaces the profile's pre/post; an app model it lacks is an error;
     * the profile directory's interference.yml is not taken for a profile */
    CU_ASSERT_EQUAL(load_exp(d, "name: e\ncluster: {gpus: 1, profiles: profiles, cpu_cores: 4, "
                                "cpu_profile: cpu.yml, interference: ifx.yml}\n"
                                "apps: [{name: a, model: m0, slo_ms: 50, workload: {type: uniform, rate: 100}}]\n"
                                "policies: [{name: n}, {name: ol, overlap: false}, "
                                "{name: tf, gpu_sharing: concurrent, batching: tf_serving}]\n",
                             &x, &db, &eb), 0);
    CU_ASSERT_EQUAL(x.cpu_cores, 4);
    CU_ASSERT_DOUBLE_EQUAL(x.apps[0].profile->pre_us, 700, 0);
    CU_ASSERT_DOUBLE_EQUAL(x.apps[0].profile->post_us, 20, 0);
    CU_ASSERT_TRUE(x.combos[0].overlap);
    CU_ASSERT_FALSE(x.combos[1].overlap);
    CU_ASSERT_EQUAL(x.combos[0].gpu_sharing, NX_GPU_EXCLUSIVE);
    CU_ASSERT_EQUAL(x.combos[2].gpu_sharing, NX_GPU_CONCURRENT);
    /* every combo runs, and the concurrent one within its SLO at this light load */
    for (int k = 0; k < 3; k++) {
        nx_run_result r;
        nx_run_opts o = {.scale = 1, .seed = 1};
        nx_err_clear(&eb);
        CU_ASSERT_EQUAL(nx_run(&x, &x.combos[k], &o, &r, &eb), 0);
        CU_ASSERT(r.sent > 0);
        CU_ASSERT_DOUBLE_EQUAL(r.bad_rate, 0, 0.001);
        nx_run_result_free(&r);
    }
    nx_experiment_free(&x);
    nx_modeldb_free(&db);

    static const struct { const char *text, *needle; } bad[] = {
        {"name: e\ncluster: {gpus: 1, profiles: profiles}\n"
         "apps: [{name: a, model: m0, slo_ms: 50, workload: {type: uniform, rate: 100}}]\n"
         "policies: [{name: ol, overlap: false}]\n",
         "e.yml:4: policy 'ol': overlap: false needs cluster.cpu_cores"},
        {"name: e\ncluster: {gpus: 1, profiles: profiles, cpu_cores: 2}\n"
         "apps: [{name: a, model: m0, slo_ms: 50, workload: {type: uniform, rate: 100}}]\n"
         "policies: [{name: tf, gpu_sharing: concurrent}]\n",
         "policy 'tf': gpu_sharing: concurrent needs cluster.interference"},
        {"name: e\ncluster: {gpus: 1, profiles: profiles}\n"
         "apps: [{name: a, model: m0, slo_ms: 50, workload: {type: uniform, rate: 100}}]\n"
         "policies: [{name: tf, gpu_sharing: sometimes}]\n",
         "e.yml:4: unknown value 'sometimes'; valid: exclusive, concurrent"},
        {"name: e\ncluster: {gpus: 1, profiles: profiles, cpu_cores: -1}\n"
         "apps: [{name: a, model: m0, slo_ms: 50, workload: {type: uniform, rate: 100}}]\n",
         "e.yml:2: must be in [0, 4096]"},
        {"name: e\ncluster: {gpus: 1, profiles: profiles, cpu_profile: cpu.yml}\n"
         "apps: [{name: a, model: m1, slo_ms: 50, workload: {type: uniform, rate: 100}}]\n",
         "model 'm1' has no row in cluster.cpu_profile"},
        {"name: e\ncluster: {gpus: 1, profiles: profiles, cpu_profile: nothere.yml}\n"
         "apps: [{name: a, model: m0, slo_ms: 50, workload: {type: uniform, rate: 100}}]\n",
         "nothere.yml: cannot open"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        CU_ASSERT_NOT_EQUAL(load_exp(d, bad[i].text, &x, &db, &eb), 0);
        if (!strstr(eb.msg, bad[i].needle))
            fprintf(stderr, "\n  case %zu: '%s' lacks '%s'\n", i, eb.msg, bad[i].needle);
        CU_ASSERT_PTR_NOT_NULL(strstr(eb.msg, bad[i].needle));
        nx_experiment_free(&x);
        nx_modeldb_free(&db);
    }
    /* a bad cost table names its own file and line */
    free(nx_tu_write(d, "cpu.yml", "host: h\nmodels:\n  - {model: m0, preprocess_us: 1}\n"));
    CU_ASSERT_NOT_EQUAL(load_exp(d, "name: e\ncluster: {gpus: 1, profiles: profiles, cpu_profile: cpu.yml}\n"
                                    "apps: [{name: a, model: m0, slo_ms: 50, workload: {type: uniform, rate: 100}}]\n",
                                 &x, &db, &eb), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(eb.msg, "cpu.yml:3: missing required field 'postprocess_us'"));
    nx_experiment_free(&x);
    nx_modeldb_free(&db);
    /* a concurrent policy whose model the interference table lacks fails at run time */
    free(nx_tu_write(d, "ifx.yml", "gpu: t\nentries:\n  - {model: m1, precision: fp32, batch: 1, latency_us: [1, 2]}\n"));
    CU_ASSERT_EQUAL(load_exp(d, "name: e\ncluster: {gpus: 1, profiles: profiles, interference: ifx.yml}\n"
                                "apps: [{name: a, model: m0, slo_ms: 50, workload: {type: uniform, rate: 100}}]\n"
                                "policies: [{name: tf, gpu_sharing: concurrent}]\n",
                             &x, &db, &eb), 0);
    nx_run_result r;
    nx_run_opts o = {.scale = 1, .seed = 1};
    nx_err_clear(&eb);
    CU_ASSERT_EQUAL(nx_run(&x, &x.combos[0], &o, &r, &eb), NX_ERR_NOTFOUND);
    CU_ASSERT_PTR_NOT_NULL(strstr(eb.msg, "has no entry for model 'm0' precision 'fp32'"));
    nx_run_result_free(&r);
    nx_experiment_free(&x);
    nx_modeldb_free(&db);
    nx_tu_rmdir(d);
}

int main(void)
{
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    CU_pSuite s = CU_add_suite("hostcost", NULL, NULL);
    CU_add_test(s, "CPU: 2 cores, FIFO, overlapped with the GPU", test_cpu_overlap);
    CU_add_test(s, "CPU: no overlap, the GPU waits (-OL)", test_cpu_no_overlap);
    CU_add_test(s, "CPU: cpu_cores 0 keeps pure delays", test_cpu_unlimited);
    CU_add_test(s, "interference table: parse, sort, interpolate, errors", test_ifx_table);
    CU_add_test(s, "processor-sharing GPU: three batches by hand", test_ps_gpu);
    CU_add_test(s, "backend: concurrent servers vs exclusive", test_concurrent_backend);
    CU_add_test(s, "experiment keys: cpu_cores, cpu_profile, overlap, gpu_sharing", test_experiment_keys);
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    unsigned failed = CU_get_number_of_failures();
    CU_cleanup_registry();
    return failed ? 1 : 0;
}
