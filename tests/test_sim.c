/* test_sim.c — CUnit suite for the simulator and the engine's state machines
 * running in it: event ordering, the GPU latency distribution, request
 * accounting, early against lazy drop, squishy against batch-oblivious at a
 * fixed cluster size, determinism, adaptation to a rate step, and the
 * nexus-sim command line on bad input. */
#include <CUnit/Basic.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <gsl/gsl_randist.h>
#include <gsl/gsl_statistics_double.h>

#include "load.h"
#include "run.h"
#include "search.h"
#include "sim.h"
#include "backend.h"
#include "catalog.h"
#include "policies.h"
#include "workload.h"
#include "stats.h"
#include "testutil.h"

/* ---- event ordering --------------------------------------------------------- */

typedef struct probe_ev {
    nx_event ev;
    int id;
    int *log;
    int *nlog;
} probe_ev;

static void probe_fire(nx_event *ev)
{
    probe_ev *p = NX_CONTAINER_OF(ev, probe_ev, ev);
    p->log[(*p->nlog)++] = p->id;
}

typedef struct msg_ev {
    nx_msg m;
    int id;
} msg_ev;

typedef struct sink {
    int *log;
    int *nlog;
} sink;

static void deliver_probe(void *ctx, int dst, nx_msg *m)
{
    sink *k = ctx;
    msg_ev *e = (msg_ev *)m;
    k->log[(*k->nlog)++] = e->id;
}

static void test_event_order(void)
{
    int log[64], nlog = 0;
    sink k = {log, &nlog};
    nx_sim s;
    nx_sim_init(&s, 1, 10, 0, deliver_probe, &k);
    probe_ev ev[6];
    /* times (us): 30, 10, 30, 20, 10, 30 -> order 1,4 (10), 3 (20), 0,2,5 (30) */
    int t[6] = {30, 10, 30, 20, 10, 30};
    for (int i = 0; i < 6; i++) {
        ev[i] = (probe_ev){.ev = {.fn = probe_fire}, .id = i, .log = log, .nlog = &nlog};
        nx_at(&s.env, &ev[i].ev, NX_US(t[i]));
    }
    /* a message sent at t=0 with 10 us delay is due at 10 us, after the two
     * timers armed earlier for 10 us (ties break by arming order) */
    msg_ev m = {.id = 100};
    nx_send(&s.env, 5, &m.m);
    while (nx_sim_step(&s, NX_TIME_NEVER)) {
    }
    int want[7] = {1, 4, 100, 3, 0, 2, 5};
    CU_ASSERT_EQUAL(nlog, 7);
    for (int i = 0; i < 7 && i < nlog; i++)
        CU_ASSERT_EQUAL(log[i], want[i]);
    CU_ASSERT_EQUAL(s.now, NX_US(30));
    nx_sim_free(&s);
}

/* The GPU latency draw has the profile's mean and std (Gamma). */
static void test_latency_distribution(void)
{
    nx_profile p;
    nx_profile_init(&p);
    snprintf(p.model, sizeof p.model, "m");
    p.points = nx_calloc(1, sizeof *p.points);
    p.npoints = 1;
    p.points[0] = (nx_profile_point){.batch = 8, .mean_us = 2000, .std_us = 300, .mem_mb = 1};
    nx_errbuf eb;
    nx_err_clear(&eb);
    CU_ASSERT_EQUAL_FATAL(nx_profile_finish(&p, &eb), 0);
    nx_sim s;
    nx_sim_init(&s, 7, 0, 0, NULL, NULL);
    enum { N = 200000 };
    double *x = nx_malloc(sizeof(double) * N);
    for (int i = 0; i < N; i++)
        x[i] = NX_TO_US(nx_sim_batch_latency(&s, &p, 8));
    double mean = gsl_stats_mean(x, 1, N), sd = gsl_stats_sd(x, 1, N);
    /* standard error of the mean is 300/sqrt(2e5) = 0.7 us: 1 % is ~30 sigma */
    CU_ASSERT_DOUBLE_EQUAL(mean, 2000, 20);
    CU_ASSERT_DOUBLE_EQUAL(sd, 300, 15);
    for (int i = 0; i < N; i++)
        if (x[i] <= 0) {
            CU_FAIL("non-positive latency");
            break;
        }
    /* std 0: exactly the mean */
    p.std_us[8] = 0;
    CU_ASSERT_EQUAL(nx_sim_batch_latency(&s, &p, 8), NX_US(2000));
    free(x);
    nx_sim_free(&s);
    nx_profile_free(&p);
}

/* A one-point profile with std 0 (every draw is its mean). */
static void const_profile(nx_profile *p, const char *model, int batch, double mean_us)
{
    nx_profile_init(p);
    snprintf(p->model, sizeof p->model, "%s", model);
    p->points = nx_calloc(1, sizeof *p->points);
    p->npoints = 1;
    p->points[0] = (nx_profile_point){.batch = batch, .mean_us = mean_us, .mem_mb = 1};
    nx_errbuf eb;
    nx_err_clear(&eb);
    CU_ASSERT_EQUAL_FATAL(nx_profile_finish(p, &eb), 0);
}

/* cluster.switch_overhead: a batch whose model differs from its GPU's previous batch's runs
 * 1 + frac times its drawn latency (then batch_overhead is added); the GPUs are tracked apart;
 * a prefix batch counts as its prefix model, its suffix parts scaled along. Models A (1,000 us)
 * and B (3,000 us), frac 0.25, batch overhead 40 us. */
static void test_switch_overhead(void)
{
    nx_profile a, b;
    const_profile(&a, "A", 1, 1000);
    const_profile(&b, "B", 1, 3000);
    for (int on = 0; on < 2; on++) {
        nx_sim s;
        nx_sim_init(&s, 1, 0, 0, NULL, NULL);
        s.batch_overhead = NX_US(40);
        nx_sim_switch_cost(&s, 2, on ? 0.25 : 0);
        /* GPU 0: A A B B A; GPU 1: A (its first: a switch from nothing), then B + A suffix */
        const struct { int gpu; const nx_profile *p; const nx_profile *part; double us[2]; } c[] = {
            {0, &a, NULL, {1040, 1290}},  /* first batch on GPU 0: 1000 x 1.25 + 40 */
            {0, &a, NULL, {1040, 1040}},  /* same model */
            {0, &b, NULL, {3040, 3790}},  /* switch: 3000 x 1.25 + 40 */
            {0, &b, NULL, {3040, 3040}},
            {1, &a, NULL, {1040, 1290}},  /* GPU 1 has its own previous batch */
            {0, &a, NULL, {1040, 1290}},  /* GPU 0 last ran B */
            {1, &b, &a, {4040, 5040}},    /* prefix B + suffix A: (3000 + 1000) x 1.25 + 40 */
            {1, &b, NULL, {3040, 3040}},  /* the previous batch's prefix was B */
        };
        enum { N = sizeof c / sizeof c[0] };
        nx_batch bt[N];
        memset(bt, 0, sizeof bt);
        for (int i = 0; i < N; i++) {
            bt[i].gpu = c[i].gpu;
            bt[i].prof = c[i].p;
            bt[i].size = 1;
            if (c[i].part) {
                bt[i].nparts = 1;
                bt[i].part_prof[0] = c[i].part;
                bt[i].part_n[0] = 1;
            }
            nx_gpu_run(&s.env, &bt[i]);
            CU_ASSERT_EQUAL(bt[i].latency, NX_US(c[i].us[on]));
        }
        nx_sim_free(&s);
    }
    nx_profile_free(&a);
    nx_profile_free(&b);
}

/* ---- fixtures ------------------------------------------------------------------ */

/* A linear profile l(b) = alpha*b + beta (ms), measured at 1 and maxb. */
static void write_linear_profile(const char *dir, const char *model, double alpha_ms,
                                 double beta_ms, int maxb)
{
    char name[128], text[1024];
    snprintf(name, sizeof name, "%s.yml", model);
    snprintf(text, sizeof text,
             "model: %s\ngpu: test\nprecision: fp32\nprovenance: linear test model\n"
             "batches:\n"
             "  - {batch: 1, mean_us: %.3f, std_us: 0, mem_mb: 500}\n"
             "  - {batch: %d, mean_us: %.3f, std_us: 0, mem_mb: %d}\n",
             model, (alpha_ms + beta_ms) * 1000, maxb, (alpha_ms * maxb + beta_ms) * 1000,
             500 + 10 * maxb);
    free(nx_tu_write(dir, name, text));
}

/* A fresh temp dir with an empty profiles/ in it (its path in pdir). */
static char *fixture_dir(char *pdir, size_t n)
{
    char *d = nx_tu_tmpdir();
    snprintf(pdir, n, "%s/profiles", d);
    CU_ASSERT_EQUAL_FATAL(mkdir(pdir, 0755), 0);
    return d;
}

/* ---- accounting ---------------------------------------------------------------- */

static void test_accounting(void)
{
    char pdir[512];
    char *d = fixture_dir(pdir, sizeof pdir);
    write_linear_profile(pdir, "m1", 1.0, 20, 64);
    write_linear_profile(pdir, "m2", 0.5, 10, 64);
    char *exp = nx_tu_write(d, "e.yml",
                            "name: acct\ncluster: {gpus: 2, profiles: profiles}\n"
                            "apps:\n"
                            "  - {name: a, model: m1, slo_ms: 100, workload: {type: poisson, rate: 700}}\n"
                            "  - {name: b, model: m2, slo_ms: 60, workload: {type: gamma, rate: 400, cv: 3}}\n"
                            "policies: [{name: nexus}]\n"
                            "run: {duration_s: 20, warmup_s: 5, seed: 3}\n");
    nx_experiment x;
    nx_modeldb db;
    CU_ASSERT_EQUAL_FATAL(nx_tu_load(&x, &db, exp), 0);
    nx_run_result r;
    nx_errbuf eb;
    nx_err_clear(&eb);
    nx_run_opts o = {.scale = 1, .seed = 3, .keep_requests = true};
    CU_ASSERT_EQUAL_FATAL(nx_run(&x, &x.combos[0], &o, &r, &eb), 0);
    /* every request is accounted for exactly once */
    CU_ASSERT_EQUAL(r.sent, r.ok + r.late + r.dropped);
    CU_ASSERT_EQUAL(r.nreqs, r.total_requests);
    size_t pending = 0, inwin = 0;
    for (size_t i = 0; i < r.nreqs; i++) {
        pending += r.reqs[i].status == NX_REQ_PENDING;
        inwin += r.reqs[i].arrival >= NX_SEC(5) && r.reqs[i].arrival < NX_SEC(20);
        if (r.reqs[i].status == NX_REQ_OK)
            CU_ASSERT(r.reqs[i].finish <= r.reqs[i].deadline);
    }
    CU_ASSERT_EQUAL(pending, 0);
    CU_ASSERT_EQUAL(inwin, r.sent);
    /* offered rate: 1100 req/s; Poisson over 15 s: sd = sqrt(16500)/15 = 8.6 */
    CU_ASSERT_DOUBLE_EQUAL(r.offered_rate, 1100, 50);
    CU_ASSERT_DOUBLE_EQUAL(r.goodput, r.ok / 15.0, 1e-9);
    CU_ASSERT_DOUBLE_EQUAL(r.bad_rate, (double)(r.late + r.dropped) / (double)r.sent, 1e-12);
    CU_ASSERT_EQUAL(r.apps[0].sent + r.apps[1].sent, r.sent);
    nx_run_result_free(&r);
    nx_experiment_free(&x);
    nx_modeldb_free(&db);
    free(exp);
    nx_tu_rmdir(d);
}

/* nx_stats_robust: stalls (a run of samples 2-4x the model's time) are dropped, the model's own
 * spread is kept; with k = 0 every sample counts. */
static void test_robust_stats(void)
{
    gsl_rng *g = gsl_rng_alloc(gsl_rng_mt19937);
    gsl_rng_set(g, 7);
    double x[40], y[40];
    for (int i = 0; i < 40; i++) /* the model: 1000 us +- 20; samples 10-17 hit a stall */
        x[i] = 1000 + gsl_ran_gaussian(g, 20) + (i >= 10 && i < 18 ? 1000 + 100 * (i - 10) : 0);
    memcpy(y, x, sizeof x);
    double m, sd, m0, sd0;
    int kept = nx_stats_robust(x, 40, 5, &m, &sd);
    CU_ASSERT_EQUAL(kept, 32);
    CU_ASSERT(fabs(m - 1000) < 15 && sd > 10 && sd < 30);
    CU_ASSERT(x[0] <= x[39]); /* sorted */
    CU_ASSERT_EQUAL(nx_stats_robust(y, 40, 0, &m0, &sd0), 40);
    CU_ASSERT(m0 > 1200 && sd0 > 400); /* what the stall did to the plain mean (+27 %) and std */
    /* no stall: nothing dropped (a normal sample's largest is < 5 sigma above its median) */
    for (int i = 0; i < 40; i++)
        x[i] = 500 + gsl_ran_gaussian(g, 10);
    CU_ASSERT_EQUAL(nx_stats_robust(x, 40, 5, &m, &sd), 40);
    CU_ASSERT_DOUBLE_EQUAL(m, gsl_stats_mean(x, 1, 40), 1e-9);
    /* identical samples: MAD 0, floored at 1 % of the median; a 2 % one is dropped */
    double c[5] = {100, 100, 100, 100, 102};
    CU_ASSERT_EQUAL(nx_stats_robust(c, 5, 1, &m, &sd), 4);
    CU_ASSERT_DOUBLE_EQUAL(m, 100, 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(sd, 0, 1e-12);
    double one = 7;
    CU_ASSERT_EQUAL(nx_stats_robust(&one, 1, 5, &m, &sd), 1);
    CU_ASSERT_DOUBLE_EQUAL(m, 7, 0);
    CU_ASSERT_DOUBLE_EQUAL(sd, 0, 0);
    gsl_rng_free(g);
}

/* cluster.batch_overhead_us: every batch takes that much longer. One session, a
 * constant 21 ms batch of one, uniform arrivals 10 per second (never two in a
 * batch, never waiting): each latency is 21 ms + two network hops, plus 2 ms
 * with the overhead; cluster.switch_overhead changes nothing for one model. */
static void test_batch_overhead(void)
{
    char pdir[512];
    char *d = fixture_dir(pdir, sizeof pdir);
    write_linear_profile(pdir, "m1", 1.0, 20, 16);
    double p50[3];
    static const char *const extra[3] = {"", ", batch_overhead_us: 2000",
                                         ", switch_overhead: 0.5"};
    for (int k = 0; k < 3; k++) {
        char text[512];
        snprintf(text, sizeof text,
                 "name: ovh\ncluster: {gpus: 1, profiles: profiles%s}\n"
                 "apps:\n"
                 "  - {name: a, model: m1, slo_ms: 200, workload: {type: uniform, rate: 10}}\n"
                 "policies: [{name: nexus}]\n"
                 "run: {duration_s: 10, warmup_s: 2, seed: 3, net_delay_us: 100}\n",
                 extra[k]);
        char *exp = nx_tu_write(d, "e.yml", text);
        nx_experiment x;
        nx_modeldb db;
        CU_ASSERT_EQUAL_FATAL(nx_tu_load(&x, &db, exp), 0);
        CU_ASSERT_DOUBLE_EQUAL(x.batch_overhead_us, k == 1 ? 2000 : 0, 0);
        CU_ASSERT_DOUBLE_EQUAL(x.switch_overhead, k == 2 ? 0.5 : 0, 0);
        nx_run_result r;
        nx_errbuf eb;
        nx_err_clear(&eb);
        nx_run_opts o = {.scale = 1, .seed = 3};
        CU_ASSERT_EQUAL_FATAL(nx_run(&x, &x.combos[0], &o, &r, &eb), 0);
        CU_ASSERT_EQUAL(r.late + r.dropped, 0);
        p50[k] = r.lat_p50_ms;
        CU_ASSERT_DOUBLE_EQUAL(r.lat_max_ms - r.lat_p50_ms, 0, 1e-3);   /* every one alike */
        nx_run_result_free(&r);
        nx_experiment_free(&x);
        nx_modeldb_free(&db);
        free(exp);
    }
    CU_ASSERT_DOUBLE_EQUAL(p50[0], 21.2, 1e-3);
    CU_ASSERT_DOUBLE_EQUAL(p50[1] - p50[0], 2.0, 1e-3);
    /* one model: only the GPU's first batch (in the warm-up) is a switch */
    CU_ASSERT_DOUBLE_EQUAL(p50[2], p50[0], 1e-9);
    nx_tu_rmdir(d);
}

/* A last rate step of 0 ends the arrivals (it once re-armed the generator at
 * the same instant forever), and an idle session keeps a slot: when its load
 * appears it is served from the first request, not dropped for want of a
 * route (Nexus plans every session for at least 0.1 req/s). */
static void test_zero_rate_steps(void)
{
    char pdir[512];
    char *d = fixture_dir(pdir, sizeof pdir);
    write_linear_profile(pdir, "m", 1.0, 10, 64);
    char *exp = nx_tu_write(d, "e.yml",
                            "name: zero\ncluster: {gpus: 4, profiles: profiles}\n"
                            "apps:\n"
                            "  - {name: stops, model: m, slo_ms: 100, workload: {type: piecewise, steps: [{at_s: 0, rate: 100}, {at_s: 5, rate: 0}]}}\n"
                            "  - {name: starts, model: m, slo_ms: 100, workload: {type: piecewise, steps: [{at_s: 0, rate: 0}, {at_s: 10, rate: 50}]}}\n"
                            "policies: [{name: nexus}]\n"
                            "run: {duration_s: 20, warmup_s: 0, seed: 9}\n");
    nx_experiment x;
    nx_modeldb db;
    CU_ASSERT_EQUAL_FATAL(nx_tu_load(&x, &db, exp), 0);
    nx_run_result r;
    nx_errbuf eb;
    nx_err_clear(&eb);
    nx_run_opts o = {.scale = 1, .seed = 9};
    CU_ASSERT_EQUAL_FATAL(nx_run(&x, &x.combos[0], &o, &r, &eb), 0);
    /* ~500 then ~500 requests; Poisson sd ~22 each */
    CU_ASSERT(r.apps[0].sent > 400 && r.apps[0].sent < 600);
    CU_ASSERT(r.apps[1].sent > 400 && r.apps[1].sent < 600);
    CU_ASSERT_EQUAL(r.apps[1].dropped, 0);
    CU_ASSERT_EQUAL(r.bad_rate, 0);
    nx_run_result_free(&r);
    nx_experiment_free(&x);
    nx_modeldb_free(&db);
    free(exp);
    nx_tu_rmdir(d);
}

/* ---- early drop against lazy drop (paper Fig. 9) --------------------------------
 *
 * One GPU, SLO 100 ms, l(b) = alpha*b + beta with alpha = 1 ms and the batch
 * of 2*l(B) = SLO at B = 25, so beta = 25 ms and the optimal throughput is
 * 25/50 ms = 500 req/s, Poisson arrivals; Nexus's default profile
 * multiplier 1.15. Measured here (seed 1, 60 s runs, 10 s warm-up, scan + 12
 * bisection steps): early drop 362.9 req/s, lazy drop 289.5 req/s at <= 1 %
 * bad rate: +25.4 % (the paper: up to +25 % at alpha = 1 ms; lazy ~355 and
 * early ~445 read off its figure). Both sit below the paper's because the
 * planner and the drop test use 1.15 x l(b), and the squishy plan sizes the
 * batch to the rate (b/r + 1.15 l(b) <= 100 ms), not to the optimal 25 the
 * paper's simulation fixed. */
static void test_early_vs_lazy(void)
{
    char pdir[512];
    char *d = fixture_dir(pdir, sizeof pdir);
    write_linear_profile(pdir, "fig9", 1.0, 25.0, 64);
    char *exp = nx_tu_write(d, "e.yml",
                            "name: fig9\ncluster: {gpus: 1, profiles: profiles}\n"
                            "apps: [{name: a, model: fig9, slo_ms: 100, workload: {type: poisson, rate: 500}}]\n"
                            "policies:\n"
                            "  - {name: early, batching: early_drop}\n"
                            "  - {name: lazy, batching: lazy_drop}\n"
                            "run: {duration_s: 60, warmup_s: 10, seed: 1, net_delay_us: 0}\n"
                            "search: {lo: 0.5, hi: 1.0, iters: 12}\n");
    nx_experiment x;
    nx_modeldb db;
    CU_ASSERT_EQUAL_FATAL(nx_tu_load(&x, &db, exp), 0);
    nx_combo_report early, lazy;
    nx_errbuf eb;
    nx_err_clear(&eb);
    nx_search_opts so = {.seed = 1};
    CU_ASSERT_EQUAL_FATAL(nx_search_max_rate(&x, &x.combos[0], &so, &early, &eb), 0);
    CU_ASSERT_EQUAL_FATAL(nx_search_max_rate(&x, &x.combos[1], &so, &lazy, &eb), 0);
    printf("\n    early drop %.1f req/s, lazy drop %.1f req/s (+%.1f %%)\n", early.max_rate,
           lazy.max_rate, 100 * (early.max_rate / lazy.max_rate - 1));
    CU_ASSERT(early.max_rate > 1.05 * lazy.max_rate);
    CU_ASSERT(early.max_rate <= 505); /* cannot beat the optimum (500 + Poisson noise) */
    CU_ASSERT(early.run.bad_rate <= 0.01);
    CU_ASSERT(lazy.run.bad_rate <= 0.01);
    nx_combo_report_free(&early);
    nx_combo_report_free(&lazy);
    nx_experiment_free(&x);
    nx_modeldb_free(&db);
    free(exp);
    nx_tu_rmdir(d);
}

/* ---- squishy against batch-oblivious at a fixed cluster --------------------------
 *
 * The paper's Fig. 16 set-up: 16 sessions on 8 GPUs, Zipf(0.9) rates, SLOs of
 * 50-200 ms, six model shapes; uniform inter-arrivals as the paper used unless
 * it says otherwise. Both use Nexus's early drop and DRR; only the placement
 * differs (the paper compares squishy against batch-oblivious Nexus). */
static void test_squishy_vs_oblivious(void)
{
    char pdir[512];
    char *d = fixture_dir(pdir, sizeof pdir);
    static const double shape[6][2] = {{1.0, 20}, {0.5, 15}, {2.0, 10}, {0.8, 30}, {0.3, 8}, {1.5, 25}};
    for (int m = 0; m < 6; m++) {
        char name[8];
        snprintf(name, sizeof name, "m%d", m);
        write_linear_profile(pdir, name, shape[m][0], shape[m][1], 128);
    }
    char text[4096];
    int off = snprintf(text, sizeof text, "name: zipf16\ncluster: {gpus: 8, profiles: profiles}\napps:\n");
    double wsum = 0;
    for (int i = 0; i < 16; i++)
        wsum += 1.0 / pow(i + 1, 0.9);
    static const int slo[4] = {50, 200, 150, 100};
    for (int i = 0; i < 16; i++)
        off += snprintf(text + off, sizeof text - (size_t)off,
                        "  - {name: s%02d, model: m%d, slo_ms: %d, workload: {type: uniform, rate: %.3f}}\n",
                        i, i % 6, slo[i % 4], 2400.0 / pow(i + 1, 0.9) / wsum);
    snprintf(text + off, sizeof text - (size_t)off,
             "policies:\n"
             "  - {name: squishy, placement: squishy}\n"
             "  - {name: oblivious, placement: batch_oblivious}\n"
             "run: {duration_s: 40, warmup_s: 10, seed: 2}\n"
             "scheduler: {profile_multiplier: 1.0}\n"  /* exact latencies, as in the paper */
             "search: {lo: 0.1, hi: 4, iters: 10}\n");
    char *exp = nx_tu_write(d, "e.yml", text);
    nx_experiment x;
    nx_modeldb db;
    CU_ASSERT_EQUAL_FATAL(nx_tu_load(&x, &db, exp), 0);
    nx_combo_report sq, ob;
    nx_errbuf eb;
    nx_err_clear(&eb);
    nx_search_opts so = {.seed = 2};
    CU_ASSERT_EQUAL_FATAL(nx_search_max_rate(&x, &x.combos[0], &so, &sq, &eb), 0);
    CU_ASSERT_EQUAL_FATAL(nx_search_max_rate(&x, &x.combos[1], &so, &ob, &eb), 0);
    printf("\n    squishy %.1f req/s, batch-oblivious %.1f req/s on 8 GPUs (+%.1f %%)\n",
           sq.max_rate, ob.max_rate, 100 * (sq.max_rate / ob.max_rate - 1));
    CU_ASSERT(sq.max_rate > 1.11 * ob.max_rate); /* the paper's smallest gain */
    CU_ASSERT(!sq.max_rate_capped);
    CU_ASSERT(sq.run.bad_rate <= 0.01 && ob.run.bad_rate <= 0.01);
    nx_combo_report_free(&sq);
    nx_combo_report_free(&ob);
    nx_experiment_free(&x);
    nx_modeldb_free(&db);
    free(exp);
    nx_tu_rmdir(d);
}

/* ---- trace replay: nexus-tracegen's output through a trace workload ------------ */

static void test_trace_replay(void)
{
    char *d = nx_tu_tmpdir();
    char root[1024], cmd[4096], out[256];
    if (!realpath(nx_tu_root(), root))
        CU_FAIL_FATAL("realpath");
    snprintf(cmd, sizeof cmd, "%s/%s/bin/nexus-tracegen --rate 400 --cv 2 --duration 30 --seed 5 > %s/t.csv",
             root, nx_tu_build(), d);
    CU_ASSERT_EQUAL_FATAL(nx_tu_sh(cmd, out, sizeof out), 0);
    char pdir[512];
    snprintf(pdir, sizeof pdir, "%s/profiles", d);
    CU_ASSERT_EQUAL_FATAL(mkdir(pdir, 0755), 0);
    write_linear_profile(pdir, "m", 0.5, 5, 64);
    /* rate_scale 1, no loop: exactly the trace's arrivals, round robin over 2 apps */
    char *exp = nx_tu_write(d, "e.yml",
                            "name: tr\ncluster: {gpus: 4, profiles: profiles}\n"
                            "apps:\n"
                            "  - {name: a, model: m, slo_ms: 100, workload: {type: trace}}\n"
                            "  - {name: b, model: m, slo_ms: 100, workload: {type: trace}}\n"
                            "trace: {file: t.csv, map: round_robin, loop: false}\n"
                            "policies: [{name: nexus}]\n"
                            "run: {duration_s: 40, warmup_s: 0, seed: 1}\n");
    nx_experiment x;
    nx_modeldb db;
    CU_ASSERT_EQUAL_FATAL(nx_tu_load(&x, &db, exp), 0);
    size_t ntrace = x.trace.trace.n;
    CU_ASSERT(ntrace > 10000 && ntrace < 14000); /* 400/s x 30 s */
    nx_run_result r;
    nx_errbuf eb;
    nx_err_clear(&eb);
    nx_run_opts o = {.scale = 1, .seed = 1, .keep_requests = true};
    CU_ASSERT_EQUAL_FATAL(nx_run(&x, &x.combos[0], &o, &r, &eb), 0);
    CU_ASSERT_EQUAL(r.total_requests, ntrace);
    CU_ASSERT_EQUAL(r.sent, ntrace);
    CU_ASSERT(r.apps[0].sent == r.apps[1].sent || r.apps[0].sent == r.apps[1].sent + 1);
    /* arrival times are the trace's, relative to its first row */
    for (size_t i = 0; i < r.nreqs && i < 100; i++)
        CU_ASSERT_EQUAL(r.reqs[i].arrival, (nx_time)llround(x.trace.trace.t_s[i] * 1e9));
    nx_run_result_free(&r);
    /* rate_scale 3 (with scale 1): three requests per trace arrival */
    x.trace.rate_scale = 3;
    CU_ASSERT_EQUAL_FATAL(nx_run(&x, &x.combos[0], &o, &r, &eb), 0);
    CU_ASSERT_EQUAL(r.total_requests, 3 * ntrace);
    nx_run_result_free(&r);
    nx_experiment_free(&x);
    nx_modeldb_free(&db);
    free(exp);
    nx_tu_rmdir(d);
}

/* ---- env cancel: engine objects freed while the event loop goes on ------------------
 *
 * A backend with a keep-alive timer and a frontend with its beacon are freed in the
 * middle of a simulation: their free functions take their timers back through the
 * env's cancel, so nothing of theirs is left to fire (under ASan a stale timer would
 * be a use after free); the simulation's own event still fires. */
static void drop_msg(void *ctx, int dst, nx_msg *m)
{
    (void)ctx, (void)dst;
    free(m);
}

static void drop_msg_ctx(void *ctx, nx_msg *m)
{
    (void)ctx;
    free(m);
}

static void count_fire(nx_event *ev) { (*(int *)ev->ctx)++; }

static void test_env_cancel(void)
{
    nx_sim s;
    nx_sim_init(&s, 1, 10, 0, drop_msg, NULL);
    nx_batch_params bp = {.dispatch_slack_us = 100};
    nx_backend_cfg bc = {.gpu = 0, .batching = nx_batching_find("clipper_aimd"), .bp = &bp,
                         .multiplier = 1, .keepalive_s = 1, .window_end = NX_TIME_NEVER};
    nx_backend be;
    nx_backend_init(&be, &s.env, &bc);
    nx_backend_start(&be);
    int fired = 0;
    nx_event mine = {.fn = count_fire, .ctx = &fired};
    nx_at(&s.env, &mine, NX_SEC(5));
    while (s.now < NX_SEC(2) && nx_sim_step(&s, NX_SEC(2)))
        ;
    CU_ASSERT_EQUAL(s.heap.n, 2);           /* the keep-alive timer and ours */
    CU_ASSERT_FALSE(nx_cancel(&s.env, &(nx_event){0})); /* never armed: not pending */
    nx_backend_free(&be);
    CU_ASSERT_EQUAL(s.heap.n, 1);           /* ours only */
    while (nx_sim_step(&s, NX_TIME_NEVER)) /* a keep-alive message may still be in flight */
        ;
    CU_ASSERT_EQUAL(fired, 1);
    CU_ASSERT_EQUAL(s.now, NX_SEC(5));      /* nothing after ours: no keep-alive re-armed */
    nx_sim_discard(&s, drop_msg_ctx, NULL);
    nx_sim_free(&s);
}

/* ---- engine/workload + engine/catalog: what the real daemons take instead of a run -----
 *
 * Every workload kind at once (Poisson, Gamma, uniform, piecewise, a Zipf-mapped
 * trace): the arrival iterator must give exactly the queries nx_run() submits
 * (time and app, in order), and the catalog exactly its sessions. The hash must
 * follow what the cfg_fill functions take from the experiment. */
static void test_workload_and_catalog(void)
{
    char *d = nx_tu_tmpdir();
    char pdir[512], csv[64 * 1024];
    snprintf(pdir, sizeof pdir, "%s/profiles", d);
    CU_ASSERT_EQUAL_FATAL(mkdir(pdir, 0755), 0);
    write_linear_profile(pdir, "m", 0.5, 5, 64);
    size_t off = (size_t)snprintf(csv, sizeof csv, "time_s\n");
    for (int i = 0; i < 2000; i++) /* 200/s, bunched in pairs */
        off += (size_t)snprintf(csv + off, sizeof csv - off, "%.6f\n", (i / 2) * 0.01 + (i % 2) * 1e-4);
    free(nx_tu_write(d, "t.csv", csv));
    char *exp = nx_tu_write(d, "e.yml",
        "name: wl\ncluster: {gpus: 4, profiles: profiles}\n"
        "apps:\n"
        "  - {name: p, model: m, slo_ms: 100, workload: {type: poisson, rate: 150}}\n"
        "  - {name: g, model: m, slo_ms: 80, workload: {type: gamma, rate: 100, cv: 2}}\n"
        "  - {name: u, model: m, slo_ms: 100, workload: {type: uniform, rate: 50}}\n"
        "  - {name: s, model: m, slo_ms: 100, workload: {type: piecewise, steps: [{at_s: 0, rate: 40}, {at_s: 3, rate: 120}]}}\n"
        "  - {name: t1, model: m, slo_ms: 100, workload: {type: trace}}\n"
        "  - {name: t2, model: m, slo_ms: 100, workload: {type: trace}}\n"
        "trace: {file: t.csv, map: zipf, zipf_s: 1.0, rate_scale: 1.5, loop: true}\n"
        "policies: [{name: nexus}]\n"
        "run: {duration_s: 8, warmup_s: 1, seed: 3}\n");
    nx_experiment x;
    nx_modeldb db;
    CU_ASSERT_EQUAL_FATAL(nx_tu_load(&x, &db, exp), 0);
    nx_run_result r;
    nx_errbuf eb;
    nx_err_clear(&eb);
    nx_run_opts o = {.scale = 1.3, .seed = 7, .keep_requests = true};
    CU_ASSERT_EQUAL_FATAL(nx_run(&x, &x.combos[0], &o, &r, &eb), 0);
    /* (150 + 100 + 50 + 40..120 + 1.5 x 200) x 1.3 x 8 s: thousands of queries */
    CU_ASSERT(r.nreqs > 5000);

    nx_arrivals a;
    nx_arrivals_init(&a, &x, 1.3, 7);
    size_t n = 0, wrong = 0;
    int seen[6] = {0};
    nx_time t;
    int app;
    while (nx_arrivals_next(&a, &t, &app)) {
        if (n < r.nreqs && (r.reqs[n].arrival != t || r.reqs[n].app != app))
            wrong++;
        if (app >= 0 && app < 6)
            seen[app]++;
        n++;
    }
    nx_arrivals_free(&a);
    CU_ASSERT_EQUAL(n, r.nreqs);
    CU_ASSERT_EQUAL(wrong, 0);
    for (int i = 0; i < 6; i++)
        CU_ASSERT(seen[i] > 50); /* every generator ran, both trace apps got their share */
    CU_ASSERT(seen[4] > seen[5]); /* Zipf: the first trace app gets twice the second's */

    nx_policy_set pol;
    CU_ASSERT_EQUAL_FATAL(nx_policies_resolve(&x.combos[0], x.path, &pol, &eb), 0);
    nx_catalog c;
    nx_catalog_init(&c, &x, &x.combos[0], &pol, 1.3, 7);
    CU_ASSERT_EQUAL_FATAL(c.nsess, r.nsess);
    for (int i = 0; i < c.nsess; i++) {
        CU_ASSERT_STRING_EQUAL(c.sess[i].name, r.sessions[i].name);
        CU_ASSERT_DOUBLE_EQUAL(c.sess[i].est_rate, r.sessions[i].est_rate, 0);
        CU_ASSERT_DOUBLE_EQUAL(c.sess[i].slo_us, r.sessions[i].slo_us, 0);
    }
    CU_ASSERT_DOUBLE_EQUAL(c.sess[0].est_rate, 150 * 1.3, 1e-9);
    CU_ASSERT_DOUBLE_EQUAL(c.sess[3].est_rate, 40 * 1.3, 1e-9); /* the first step */
    CU_ASSERT_EQUAL(c.nfrontends, 6);
    CU_ASSERT_DOUBLE_EQUAL(c.max_slo_us, 100000, 0);
    nx_frontend_cfg fc;
    nx_frontend_cfg_fill(&fc, &c, 2, 9, 4);
    CU_ASSERT_EQUAL(fc.dispatch_slack_ns, NX_US(x.batch.dispatch_slack_us));
    CU_ASSERT_EQUAL(fc.seed, 7 * 1000003u + 2);
    CU_ASSERT_EQUAL(fc.node, 9);
    nx_backend_cfg bc;
    nx_backend_cfg_fill(&bc, &c, 3);
    CU_ASSERT_EQUAL(bc.window_start, NX_SEC(1));
    CU_ASSERT_EQUAL(bc.window_end, NX_SEC(8));
    uint64_t h = c.hash;
    nx_catalog_free(&c);
    /* the same inputs, the same hash; a tuning the configs carry, another */
    nx_catalog_init(&c, &x, &x.combos[0], &pol, 1.3, 99);
    CU_ASSERT_EQUAL(c.hash, h); /* the seed is each node's own */
    nx_catalog_free(&c);
    x.batch.dispatch_slack_us += 1;
    nx_catalog_init(&c, &x, &x.combos[0], &pol, 1.3, 7);
    CU_ASSERT_NOT_EQUAL(c.hash, h);
    nx_catalog_free(&c);
    x.batch.dispatch_slack_us -= 1;
    x.sched.beacon_s *= 2;
    nx_catalog_init(&c, &x, &x.combos[0], &pol, 1.3, 7);
    CU_ASSERT_NOT_EQUAL(c.hash, h);
    nx_catalog_free(&c);

    nx_run_result_free(&r);
    nx_experiment_free(&x);
    nx_modeldb_free(&db);
    free(exp);
    nx_tu_rmdir(d);
}

/* ---- DAG apps: a fan-out change moves the split, the plan follows ---------------
 *
 * X -> Y, SLO 200 ms, X's calls fan out to Y by the trace's second column x
 * 0.1: 1 for the first 60 s (gamma = 0.1), 100 after (gamma = 10). */
static void test_fanout_change_resplits(void)
{
    char pdir[512];
    char *d = fixture_dir(pdir, sizeof pdir);
    write_linear_profile(pdir, "mx", 1.0, 10, 128);
    write_linear_profile(pdir, "my", 1.0, 10, 128);
    /* 100 queries/s for 120 s, uniform */
    size_t cap = 64 + 120 * 100 * 24;
    char *csv = nx_malloc(cap);
    size_t off = (size_t)snprintf(csv, cap, "time_s,size\n");
    for (int i = 0; i < 120 * 100; i++)
        off += (size_t)snprintf(csv + off, cap - off, "%.4f,%d\n", i / 100.0, i < 6000 ? 1 : 100);
    free(nx_tu_write(d, "t.csv", csv));
    free(csv);
    char *exp = nx_tu_write(
        d, "e.yml",
        "name: dag\ncluster: {gpus: 16, profiles: profiles}\n"
        "apps:\n"
        "  - name: q\n"
        "    slo_ms: 200\n"
        "    workload: {type: trace}\n"
        "    stages:\n"
        "      - {name: x, model: mx}\n"
        "      - {name: y, model: my, after: x, fanout: {type: trace, value: 0.1}}\n"
        "trace: {file: t.csv, loop: false}\n"
        "policies: [{name: nexus}, {name: even, split: even}]\n"
        "run: {duration_s: 120, warmup_s: 5, seed: 5}\n"
        "scheduler: {epoch_s: 1000, min_epoch_s: 10, history: 10, avg_interval_s: 3}\n");
    nx_experiment x;
    nx_modeldb db;
    CU_ASSERT_EQUAL_FATAL(nx_tu_load(&x, &db, exp), 0);
    nx_run_result r;
    nx_errbuf eb;
    nx_err_clear(&eb);
    nx_run_opts o = {.scale = 1, .seed = 5, .keep_requests = true};
    CU_ASSERT_EQUAL_FATAL(nx_run(&x, &x.combos[0], &o, &r, &eb), 0);
    CU_ASSERT_EQUAL_FATAL(r.nsess, 2);
    CU_ASSERT_FATAL(r.ntimeline >= 2);
    /* the first epoch plans from the configured mean fan-out (5.05); once
     * 10 s of measurements show gamma = 0.1, x (the busier stage) gets the
     * larger budget; after the change at 60 s, y does, and the plan follows */
    int k1 = -1, k2 = -1;
    for (int k = 1; k < r.ntimeline; k++) {
        const nx_timeline_pt *t = &r.timeline[k];
        if (k1 < 0 && t->t_s < 60 && t->slo_ms[0] > t->slo_ms[1])
            k1 = k;
        if (k2 < 0 && t->t_s > 60 && t->slo_ms[1] > t->slo_ms[0])
            k2 = k;
    }
    CU_ASSERT_FATAL(k1 > 0 && k2 > 0);
    const nx_timeline_pt *t1 = &r.timeline[k1], *t2 = &r.timeline[k2];
    printf("\n    split at %.0f s: x %.0f / y %.0f ms (%.0f req/s planned); at %.0f s: x %.0f / y %.0f ms (%.0f req/s planned); %llu re-splits",
           t1->t_s, t1->slo_ms[0], t1->slo_ms[1], t1->planned, t2->t_s, t2->slo_ms[0], t2->slo_ms[1],
           t2->planned, (unsigned long long)r.splits);
    CU_ASSERT_DOUBLE_EQUAL(t1->slo_ms[0] + t1->slo_ms[1], 200, 1e-6);
    CU_ASSERT_DOUBLE_EQUAL(t2->slo_ms[0] + t2->slo_ms[1], 200, 1e-6);
    CU_ASSERT(t2->t_s < 60 + 10 + 15); /* min_epoch plus the EWMA's lag */
    CU_ASSERT(t2->planned > 5 * t1->planned);
    CU_ASSERT(r.splits >= 2);
    /* after the re-plan has settled, queries are served */
    size_t late_n = 0, bad = 0;
    for (size_t i = 0; i < r.nreqs; i++)
        if (r.reqs[i].arrival > NX_SEC(t2->t_s + 10)) {
            late_n++;
            bad += r.reqs[i].status != NX_REQ_OK;
        }
    CU_ASSERT(late_n > 1000);
    CU_ASSERT(bad < late_n / 100);
    printf("\n    after %.0f s: %zu of %zu queries bad", t2->t_s + 10, bad, late_n);
    double dp_good = r.goodput;
    nx_run_result_free(&r);
    /* the even split keeps 100 / 100 throughout */
    CU_ASSERT_EQUAL_FATAL(nx_run(&x, &x.combos[1], &o, &r, &eb), 0);
    for (int k = 0; k < r.ntimeline; k++)
        CU_ASSERT_DOUBLE_EQUAL(r.timeline[k].slo_ms[0], 100, 1e-9);
    CU_ASSERT_EQUAL(r.splits, 0);
    printf("\n    goodput: dp %.1f, even %.1f queries/s", dp_good, r.goodput);
    nx_run_result_free(&r);
    nx_experiment_free(&x);
    nx_modeldb_free(&db);
    free(exp);
    nx_tu_rmdir(d);
}

/* ---- prefix batching: 10 ResNet-50 variants on one GPU (paper Fig. 15) -------- */

static void test_prefix_batching(void)
{
    char *d = nx_tu_tmpdir();
    char root[1024], text[4096];
    if (!realpath(nx_tu_root(), root))
        CU_FAIL_FATAL("realpath");
    int off = snprintf(text, sizeof text,
                       "name: pb\ncluster: {gpus: 1, profiles: %s/profiles/h100-pytorch}\napps:\n", root);
    for (int i = 0; i < 10; i++)
        off += snprintf(text + off, sizeof text - (size_t)off,
                        "  - {name: v%d, model: resnet50_v%d, precision: fp16, slo_ms: 50, "
                        "workload: {type: poisson, rate: 500}}\n", i, i);
    snprintf(text + off, sizeof text - (size_t)off,
             "policies:\n"
             "  - {name: prefix, prefix_batching: true}\n"
             "  - {name: separate, prefix_batching: false}\n"
             "run: {duration_s: 30, warmup_s: 5, seed: 3}\n"
             "search: {lo: 0.5, hi: 8, iters: 8}\n");
    char *exp = nx_tu_write(d, "pb.yml", text);
    nx_experiment x;
    nx_modeldb db;
    CU_ASSERT_EQUAL_FATAL(nx_tu_load(&x, &db, exp), 0);
    CU_ASSERT_EQUAL(x.apps[0].stages[0].group, 0);
    nx_combo_report pb, sep;
    nx_errbuf eb;
    nx_err_clear(&eb);
    nx_search_opts so = {.seed = 3};
    CU_ASSERT_EQUAL_FATAL(nx_search_max_rate(&x, &x.combos[0], &so, &pb, &eb), 0);
    CU_ASSERT_EQUAL_FATAL(nx_search_max_rate(&x, &x.combos[1], &so, &sep, &eb), 0);
    printf("\n    10 ResNet-50 variants on one H100 (fp16, 50 ms): prefix batching %.0f req/s, separate %.0f req/s (+%.0f %%)",
           pb.max_rate, sep.max_rate, 100 * (pb.max_rate / sep.max_rate - 1));
    /* +29 % before squishy searched the duty cycle (separate: 10,933 req/s,
     * the first rate where the ten no longer fitted one cycle left a whole
     * session out); +12 % since (12,631) */
    CU_ASSERT(pb.max_rate > 1.1 * sep.max_rate);
    CU_ASSERT(!pb.max_rate_capped);
    /* with prefix batching the ten sessions share one merged batch on the GPU */
    const nx_plan *p = &pb.run.final_plan;
    CU_ASSERT_EQUAL(p->gpu[0].n, 10);
    for (int i = 1; i < p->gpu[0].n; i++)
        CU_ASSERT_EQUAL(p->gpu[0].a[i].batch, p->gpu[0].a[0].batch);
    nx_combo_report_free(&pb);
    nx_combo_report_free(&sep);
    nx_experiment_free(&x);
    nx_modeldb_free(&db);
    free(exp);
    nx_tu_rmdir(d);
}

/* ---- a backend dies mid-run: re-plan, retries, nothing lost -------------------- */

static void test_backend_failure(void)
{
    char pdir[512];
    char *d = fixture_dir(pdir, sizeof pdir);
    write_linear_profile(pdir, "m", 1.0, 10, 64);
    /* 2,000 req/s of a model that serves 800 req/s per GPU at most: 3 GPUs of
     * 5; GPU 0 dies at 20 s and restarts at 40 s */
    char *exp = nx_tu_write(
        d, "e.yml",
        "name: fail\ncluster: {gpus: 5, profiles: profiles}\n"
        "apps: [{name: a, model: m, slo_ms: 100, workload: {type: poisson, rate: 2000}}]\n"
        "policies: [{name: nexus}]\n"
        "run: {duration_s: 60, warmup_s: 5, seed: 8, failures: [{gpu: 0, at_s: 20, down_s: 20}]}\n");
    nx_experiment x;
    nx_modeldb db;
    CU_ASSERT_EQUAL_FATAL(nx_tu_load(&x, &db, exp), 0);
    nx_run_result r;
    nx_errbuf eb;
    nx_err_clear(&eb);
    nx_run_opts o = {.scale = 1, .seed = 8, .keep_requests = true};
    CU_ASSERT_EQUAL_FATAL(nx_run(&x, &x.combos[0], &o, &r, &eb), 0);
    CU_ASSERT_EQUAL(r.failures, 1);
    CU_ASSERT_EQUAL(r.recoveries, 1);
    /* every query answered: nothing pending, nothing left unanswered */
    size_t pending = 0;
    for (size_t i = 0; i < r.nreqs; i++)
        pending += r.reqs[i].status == NX_REQ_PENDING || r.reqs[i].status == NX_REQ_UNANSWERED;
    CU_ASSERT_EQUAL(pending, 0);
    CU_ASSERT_EQUAL(r.sent, r.ok + r.late + r.dropped);
    CU_ASSERT(r.retried + r.failed_over > 0);
    int kf = -1, kr = -1;
    for (int k = 0; k < r.ntimeline; k++) {
        if (kf < 0 && strcmp(r.timeline[k].why, "failure") == 0)
            kf = k;
        if (kr < 0 && strcmp(r.timeline[k].why, "recovery") == 0)
            kr = k;
    }
    CU_ASSERT_FATAL(kf > 0 && kr > kf);
    double replan = r.timeline[kf].t_s - 20;
    /* noticed within the keep-alive timeout (3 s) plus one beacon */
    CU_ASSERT(replan > 2 && replan <= 3 + 1 + 1e-6);
    CU_ASSERT(r.timeline[kr].t_s >= 40 && r.timeline[kr].t_s < 41.5);
    size_t after = 0, bad = 0;
    for (size_t i = 0; i < r.nreqs; i++)
        if (r.reqs[i].arrival > NX_SEC(r.timeline[kf].t_s + 1) && r.reqs[i].arrival < NX_SEC(40)) {
            after++;
            bad += r.reqs[i].status != NX_REQ_OK;
        }
    CU_ASSERT(after > 20000 && bad < after / 100);
    printf("\n    GPU 0 dies at 20 s: re-plan after %.2f s (%d GPUs), %llu calls retried, %llu dropped; "
           "back at %.2f s; %zu of %zu queries bad once re-planned",
           replan, r.timeline[kf].used, (unsigned long long)r.retried,
           (unsigned long long)r.failed_over, r.timeline[kr].t_s, bad, after);
    nx_run_result_free(&r);
    nx_experiment_free(&x);
    nx_modeldb_free(&db);
    free(exp);
    nx_tu_rmdir(d);
}

/* ---- adaptation: a rate step triggers an epoch and the plan grows ----------------- */

static void test_rate_step(void)
{
    char pdir[512];
    char *d = fixture_dir(pdir, sizeof pdir);
    /* T at the saturated batch: l(B) <= 50 ms with l = b + 10 -> B = 40, 800 req/s */
    write_linear_profile(pdir, "m", 1.0, 10, 64);
    char *exp = nx_tu_write(
        d, "e.yml",
        "name: step\ncluster: {gpus: 8, profiles: profiles}\n"
        "apps: [{name: a, model: m, slo_ms: 100, workload: {type: piecewise, steps: [{at_s: 0, rate: 600}, {at_s: 40, rate: 2000}]}}]\n"
        "policies: [{name: nexus}]\n"
        "run: {duration_s: 90, warmup_s: 5, seed: 4}\n"
        "scheduler: {epoch_s: 1000, min_epoch_s: 10, history: 10, avg_interval_s: 3}\n");
    nx_experiment x;
    nx_modeldb db;
    CU_ASSERT_EQUAL_FATAL(nx_tu_load(&x, &db, exp), 0);
    nx_run_result r;
    nx_errbuf eb;
    nx_err_clear(&eb);
    nx_run_opts o = {.scale = 1, .seed = 4};
    CU_ASSERT_EQUAL_FATAL(nx_run(&x, &x.combos[0], &o, &r, &eb), 0);
    /* initial plan: 600 req/s fits one GPU */
    CU_ASSERT_FATAL(r.ntimeline >= 2);
    CU_ASSERT_EQUAL(r.timeline[0].used, 1);
    /* no trigger before the step; the first after it comes within
     * min_epoch + EWMA lag, and the plan then covers 2000 req/s with 3 GPUs */
    int k = 1;
    CU_ASSERT(r.timeline[k].t_s > 40);
    CU_ASSERT(r.timeline[k].t_s < 40 + 10);
    CU_ASSERT_STRING_EQUAL(r.timeline[k].why, "trigger");
    int last = r.ntimeline - 1;
    CU_ASSERT_EQUAL(r.timeline[last].used, 3);
    CU_ASSERT(r.timeline[last].planned >= 0.95 * 2000);
    /* epochs are at least min_epoch apart */
    for (int i = 2; i < r.ntimeline; i++)
        CU_ASSERT(r.timeline[i].t_s - r.timeline[i - 1].t_s >= 10 - 1e-6);
    printf("\n    step at 40 s: epochs at");
    for (int i = 0; i < r.ntimeline; i++)
        printf(" %.0f s (%d GPUs, %s)", r.timeline[i].t_s, r.timeline[i].used, r.timeline[i].why);
    printf("\n");
    nx_run_result_free(&r);
    nx_experiment_free(&x);
    nx_modeldb_free(&db);
    free(exp);
    nx_tu_rmdir(d);
}

/* ---- determinism and the command line ---------------------------------------------- */

static char g_exp_small[] =
    "name: det\ncluster: {gpus: 3, profiles: %s/profiles/h100-pytorch}\n"
    "apps:\n"
    "  - {name: icon, model: resnet50, precision: fp16, slo_ms: 50, workload: {type: poisson, rate: 3000}}\n"
    "  - {name: obj, model: inception_v3, precision: fp16, slo_ms: 100, workload: {type: gamma, rate: 2000, cv: 2}}\n"
    "policies:\n"
    "  - {name: nexus}\n"
    "  - {name: clipper, placement: batch_oblivious, batching: clipper_aimd, lb: weighted_random}\n"
    "run: {duration_s: 10, warmup_s: 2, seed: 11, net_jitter_us: 50}\n";

static void test_determinism(void)
{
    char *d = nx_tu_tmpdir();
    char root[1024], text[2048], cmd[4096], out[8192];
    if (!realpath(nx_tu_root(), root))
        CU_FAIL_FATAL("realpath");
    snprintf(text, sizeof text, g_exp_small, root);
    char *exp = nx_tu_write(d, "det.yml", text);
    const char *outs[3] = {"o1", "o2", "o3"};
    const char *seeds[3] = {"", "", "--seed 12"};
    for (int i = 0; i < 3; i++) {
        snprintf(cmd, sizeof cmd, "%s/%s/bin/nexus-sim %s --out %s/%s --quiet %s", root,
                 nx_tu_build(), exp, d, outs[i], seeds[i]);
        CU_ASSERT_EQUAL(nx_tu_sh(cmd, out, sizeof out), 0);
    }
    char p[1200];
    size_t n1, n2, n3;
    snprintf(p, sizeof p, "%s/o1/summary.json", d);
    char *a = nx_tu_read(p, &n1);
    snprintf(p, sizeof p, "%s/o2/summary.json", d);
    char *b = nx_tu_read(p, &n2);
    snprintf(p, sizeof p, "%s/o3/summary.json", d);
    char *c = nx_tu_read(p, &n3);
    CU_ASSERT_FATAL(a && b && c);
    CU_ASSERT(n1 > 1000);
    CU_ASSERT_EQUAL(n1, n2);
    CU_ASSERT(memcmp(a, b, n1 < n2 ? n1 : n2) == 0);
    CU_ASSERT(n1 != n3 || memcmp(a, c, n1) != 0); /* another seed, other bytes */
    snprintf(p, sizeof p, "%s/o1/requests.csv", d);
    char *ra = nx_tu_read(p, &n1);
    snprintf(p, sizeof p, "%s/o2/requests.csv", d);
    char *rb = nx_tu_read(p, &n2);
    CU_ASSERT_FATAL(ra && rb);
    CU_ASSERT(n1 == n2 && memcmp(ra, rb, n1) == 0);
    free(a), free(b), free(c), free(ra), free(rb), free(exp);
    nx_tu_rmdir(d);
}

/* Bad input: non-zero exit and a message naming the file:line or the field. */
static void expect_fail(const char *args, const char *needle1, const char *needle2)
{
    char cmd[4096], out[8192], root[1024];
    if (!realpath(nx_tu_root(), root))
        CU_FAIL_FATAL("realpath");
    snprintf(cmd, sizeof cmd, "%s/%s/bin/nexus-sim %s", root, nx_tu_build(), args);
    int st = nx_tu_sh(cmd, out, sizeof out);
    CU_ASSERT(st != 0 && st != -1);
    CU_ASSERT(strstr(out, needle1) != NULL);
    if (needle2)
        CU_ASSERT(strstr(out, needle2) != NULL);
    if (st == 0 || !strstr(out, needle1) || (needle2 && !strstr(out, needle2)))
        fprintf(stderr, "\n    cmd: %s\n    exit %d, output: %s\n", cmd, st, out);
}

static void test_cli_bad_input(void)
{
    char *d = nx_tu_tmpdir();
    char root[1024], text[2048], args[2048], path[1200];
    if (!realpath(nx_tu_root(), root))
        CU_FAIL_FATAL("realpath");
    /* missing file */
    snprintf(args, sizeof args, "%s/nope.yml --out %s/o", d, d);
    expect_fail(args, "nope.yml", NULL);
    /* malformed YAML: line 3 */
    char *e = nx_tu_write(d, "bad1.yml", "name: x\ncluster: {gpus: 2\napps: [\n");
    snprintf(args, sizeof args, "%s --out %s/o", e, d);
    expect_fail(args, "bad1.yml:", NULL);
    free(e);
    /* unknown key on line 4 */
    snprintf(text, sizeof text,
             "name: x\ncluster: {gpus: 2, profiles: %s/profiles/h100-pytorch}\napps:\n"
             "  - {name: a, model: resnet50, slo_msec: 50, workload: {type: poisson, rate: 10}}\n"
             "policies: [{name: n}]\n", root);
    e = nx_tu_write(d, "bad2.yml", text);
    snprintf(args, sizeof args, "%s --out %s/o", e, d);
    expect_fail(args, "bad2.yml:4", "slo_msec");
    free(e);
    /* negative rate on line 4 */
    snprintf(text, sizeof text,
             "name: x\ncluster: {gpus: 2, profiles: %s/profiles/h100-pytorch}\napps:\n"
             "  - {name: a, model: resnet50, slo_ms: 50, workload: {type: poisson, rate: -5}}\n"
             "policies: [{name: n}]\n", root);
    e = nx_tu_write(d, "bad3.yml", text);
    snprintf(args, sizeof args, "%s --out %s/o", e, d);
    expect_fail(args, "bad3.yml:4", "rate");
    free(e);
    /* no batch fits the SLO: toy A needs 2 x 50 ms at batch 1 */
    snprintf(text, sizeof text,
             "name: x\ncluster: {gpus: 2, profiles: %s/profiles/toy}\napps:\n"
             "  - {name: tight, model: A, slo_ms: 60, workload: {type: poisson, rate: 10}}\n"
             "policies: [{name: n}]\n", root);
    e = nx_tu_write(d, "bad4.yml", text);
    snprintf(args, sizeof args, "%s --out %s/o", e, d);
    expect_fail(args, "tight", "SLO");
    free(e);
    /* empty trace */
    free(nx_tu_write(d, "empty.csv", "TIMESTAMP,ContextTokens,GeneratedTokens\n"));
    snprintf(text, sizeof text,
             "name: x\ncluster: {gpus: 2, profiles: %s/profiles/h100-pytorch}\napps:\n"
             "  - {name: a, model: resnet50, slo_ms: 50, workload: {type: trace}}\n"
             "trace: {file: empty.csv}\npolicies: [{name: n}]\n", root);
    e = nx_tu_write(d, "bad5.yml", text);
    snprintf(args, sizeof args, "%s --out %s/o", e, d);
    expect_fail(args, "empty.csv", "empty");
    free(e);
    /* unknown policy name */
    snprintf(text, sizeof text,
             "name: x\ncluster: {gpus: 2, profiles: %s/profiles/h100-pytorch}\napps:\n"
             "  - {name: a, model: resnet50, slo_ms: 50, workload: {type: poisson, rate: 10}}\n"
             "policies: [{name: n, batching: eager_drop}]\n", root);
    e = nx_tu_write(d, "bad6.yml", text);
    snprintf(args, sizeof args, "%s --out %s/o", e, d);
    expect_fail(args, "eager_drop", "early_drop");
    free(e);
    /* unknown model */
    snprintf(text, sizeof text,
             "name: x\ncluster: {gpus: 2, profiles: %s/profiles/h100-pytorch}\napps:\n"
             "  - {name: a, model: resnet51, slo_ms: 50, workload: {type: poisson, rate: 10}}\n"
             "policies: [{name: n}]\n", root);
    e = nx_tu_write(d, "bad7.yml", text);
    snprintf(args, sizeof args, "%s --out %s/o", e, d);
    expect_fail(args, "resnet51", NULL);
    free(e);
    /* bad flag value */
    snprintf(path, sizeof path, "%s/experiments/demo.yml --out %s/o --seed -3", root, d);
    expect_fail(path, "--seed", NULL);
    nx_tu_rmdir(d);
}

int main(void)
{
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 2;
    CU_pSuite s = CU_add_suite("sim", NULL, NULL);
    CU_add_test(s, "event order: (time, seq), FIFO merged", test_event_order);
    CU_add_test(s, "GPU latency: Gamma with the profile's mean and std", test_latency_distribution);
    CU_add_test(s, "every request accounted for", test_accounting);
    CU_add_test(s, "cluster.batch_overhead_us adds to every batch", test_batch_overhead);
    CU_add_test(s, "cluster.switch_overhead: a model switch costs a fraction",
                test_switch_overhead);
    CU_add_test(s, "robust profile statistics drop stalls", test_robust_stats);
    CU_add_test(s, "rate steps to and from 0", test_zero_rate_steps);
    CU_add_test(s, "early drop beats lazy drop (Fig. 9)", test_early_vs_lazy);
    CU_add_test(s, "squishy beats batch-oblivious: 16 Zipf sessions, 8 GPUs", test_squishy_vs_oblivious);
    CU_add_test(s, "trace replay: nexus-tracegen -> trace workload", test_trace_replay);
    CU_add_test(s, "env cancel: a backend freed mid-run leaves no timer behind", test_env_cancel);
    CU_add_test(s, "workload iterator = the run's queries; catalog = its sessions; hash",
                test_workload_and_catalog);
    CU_add_test(s, "DAG app: a fan-out change re-splits the SLO", test_fanout_change_resplits);
    CU_add_test(s, "prefix batching beats separate models (Fig. 15)", test_prefix_batching);
    CU_add_test(s, "a backend dies: re-plan, retries, nothing lost", test_backend_failure);
    CU_add_test(s, "rate step triggers an epoch, plan grows", test_rate_step);
    CU_add_test(s, "same seed, same bytes", test_determinism);
    CU_add_test(s, "nexus-sim: bad input exits non-zero with file:line", test_cli_bad_input);
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    unsigned fails = CU_get_number_of_failures() + CU_get_number_of_tests_failed();
    CU_cleanup_registry();
    return fails ? 1 : 0;
}
