/* bench.c — nexus-bench: the figures `make bench` prints.
 *
 *  1. simulator speed: simulated requests per wall-clock second on the
 *     100-GPU experiment experiments/bench100.yml (Nexus policies), one core;
 *  2. the event heap alone: push/pop pairs per second, for reference;
 *  3. placement time: squishy bin packing of 1,000 sessions on 1,000 GPUs
 *     (the goal is 10 ms; 1,000 ms or more fails the benchmark);
 *  4. scale: a 10 s simulation of 1,000 GPUs and 10,000 sessions. */
#include "load.h"
#include "run.h"
#include "sim.h"
#include "plan.h"
#include "policies.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static void nop(nx_event *ev) { (void)ev; }

static void bench_heap(void)
{
    enum { LIVE = 4096, PAIRS = 20000000 };
    nx_sim s;
    nx_sim_init(&s, 1, 0, 0, NULL, NULL);
    nx_event *ev = nx_calloc(LIVE, sizeof(nx_event));
    uint64_t x = 88172645463325252ULL;
    for (int i = 0; i < LIVE; i++) {
        ev[i].fn = nop;
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        nx_at(&s.env, &ev[i], (nx_time)(x % 1000000));
    }
    double t0 = now_s();
    for (int i = 0; i < PAIRS; i++) {
        nx_event *e = nx_heap_top(&s.heap);
        nx_sim_step(&s, NX_TIME_NEVER);
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        nx_at(&s.env, e, s.now + (nx_time)(x % 1000000));
    }
    double dt = now_s() - t0;
    printf("event heap:       %.2f M push/pop pairs per second (%d live events)\n",
           PAIRS / dt / 1e6, LIVE);
    free(ev);
    nx_sim_free(&s);
}

static int bench_sim(const char *path)
{
    nx_experiment x;
    nx_modeldb db;
    nx_errbuf eb;
    nx_err_clear(&eb);
    nx_experiment_init(&x);
    nx_modeldb_init(&db);
    int rc = nx_load_experiment(&x, &db, path, &eb);
    if (rc < 0) {
        fprintf(stderr, "nexus-bench: %s\n", eb.msg);
        return 1;
    }
    nx_run_result r;
    nx_run_opts o = {.scale = 1, .seed = x.seed};
    double best = 0;
    for (int rep = 0; rep < 3; rep++) {
        rc = nx_run(&x, &x.combos[0], &o, &r, &eb);
        if (rc < 0) {
            fprintf(stderr, "nexus-bench: %s\n", eb.msg);
            return 1;
        }
        double rps = (double)r.total_requests / r.wall_s;
        if (rps > best)
            best = rps;
        if (rep == 2)
            printf("simulator:        %.2f M simulated requests per second (best of 3) on %s:\n"
                   "                  %d GPUs, %.0f req/s offered, %.0f s simulated, %llu requests,\n"
                   "                  %llu events, %.2f s wall; goodput %.0f req/s, bad rate %.3f %%\n",
                   best / 1e6, path, x.gpus, r.offered_rate, x.duration_s,
                   (unsigned long long)r.total_requests, (unsigned long long)r.events, r.wall_s,
                   r.goodput, 100 * r.bad_rate);
        nx_run_result_free(&r);
    }
    nx_experiment_free(&x);
    nx_modeldb_free(&db);
    return 0;
}

/* 1,000 sessions over 10 linear model shapes with SLOs 50-200 ms and rates
 * that make each need between a sliver and a few GPUs. Non-zero when the best
 * of 5 takes PLACE_BOUND_MS or more: planning that slow would stall an epoch. */
#define PLACE_BOUND_MS 1000.0

static int bench_placement(void)
{
    enum { NS = 1000, NG = 1000, NMOD = 10 };
    nx_profile prof[NMOD];
    nx_errbuf eb;
    for (int m = 0; m < NMOD; m++) {
        nx_profile_init(&prof[m]);
        snprintf(prof[m].model, sizeof prof[m].model, "m%d", m);
        prof[m].npoints = 2;
        prof[m].points = nx_calloc(2, sizeof(nx_profile_point));
        double alpha = 100 + 40 * m, beta = 500 + 300 * m;
        prof[m].points[0] = (nx_profile_point){1, alpha + beta, 0, 300};
        prof[m].points[1] = (nx_profile_point){256, alpha * 256 + beta, 0, 3000};
        nx_err_clear(&eb);
        nx_profile_finish(&prof[m], &eb);
    }
    nx_sess_spec *ss = nx_calloc(NS, sizeof(nx_sess_spec));
    uint64_t x = 12345;
    for (int i = 0; i < NS; i++) {
        x = x * 6364136223846793005ULL + 1442695040888963407ULL;
        ss[i].id = i;
        ss[i].prof = &prof[i % NMOD];
        ss[i].slo_us = 50000.0 + 50000.0 * (double)((x >> 33) % 4);
        ss[i].rate = 20.0 + (double)((x >> 20) % 4000);
    }
    nx_place_ctx c = {.sess = ss, .nsess = NS, .ngpus = NG, .gpu_mem_mb = 80000,
                      .multiplier = 1.0, .net_allowance_us = 400};
    nx_plan p;
    nx_plan_init(&p, NG, NS);
    double best = 1e9;
    for (int rep = 0; rep < 5; rep++) {
        nx_plan_clear(&p);
        double t0 = now_s();
        nx_place_squishy_ops.place(&c, &p);
        double dt = now_s() - t0;
        if (dt < best)
            best = dt;
    }
    double un = 0;
    for (int i = 0; i < NS; i++)
        un += p.unassigned[i];
    printf("placement:        squishy packs %d sessions on %d GPUs in %.2f ms (best of 5; %d GPUs used, %.0f req/s unplaced)\n",
           NS, NG, best * 1e3, p.used, un);
    nx_plan_free(&p);
    for (int m = 0; m < NMOD; m++)
        nx_profile_free(&prof[m]);
    free(ss);
    if (best * 1e3 < PLACE_BOUND_MS)
        return 0;
    fprintf(stderr, "nexus-bench: placement took %.1f ms, over the %.0f ms bound\n", best * 1e3,
            PLACE_BOUND_MS);
    return 1;
}

/* 1,000 GPUs and 10,000 sessions (8 models, fp16/fp32, SLOs 50-200 ms, 5-60
 * req/s each, ~325,000 req/s): the experiment is written in memory. */
static int bench_scale(void)
{
    size_t cap = 2 << 20, off = 0;
    char *y = nx_malloc(cap);
    off += (size_t)snprintf(y + off, cap - off,
                            "name: scale\ncluster: {gpus: 1000, profiles: profiles/h100-pytorch}\napps:\n");
    static const char *const models[] = {"resnet50", "inception_v3", "googlenet", "mobilenet_v2",
                                         "resnet18", "squeezenet1_0", "densenet121", "vgg16"};
    uint64_t x = 7;
    for (int i = 0; i < 10000; i++) {
        x = x * 6364136223846793005ULL + 1442695040888963407ULL;
        off += (size_t)snprintf(y + off, cap - off,
                                "  - {name: s%05d, model: %s, precision: %s, slo_ms: %d, workload: {type: poisson, rate: %.1f}}\n",
                                i, models[(x >> 33) % 8], (x >> 40) & 1 ? "fp16" : "fp32",
                                50 * (int)(1 + (x >> 45) % 4), 5.0 + (double)((x >> 20) % 550) / 10);
    }
    off += (size_t)snprintf(y + off, cap - off,
                            "policies: [{name: nexus}]\nrun: {duration_s: 10, warmup_s: 2, seed: 1}\n"
                            "scheduler: {epoch_s: 5, min_epoch_s: 5, history: 3}\n");
    nx_experiment xp;
    nx_modeldb db;
    nx_errbuf eb;
    nx_err_clear(&eb);
    nx_experiment_init(&xp);
    nx_modeldb_init(&db);
    int rc = nx_experiment_parse(&xp, y, off, "scale.yml", &eb);
    if (!rc)
        rc = nx_load_profile_dir(&db, xp.profile_dir, &eb);
    if (!rc)
        rc = nx_experiment_resolve(&xp, &db, &eb);
    nx_run_result r;
    nx_run_opts o = {.scale = 1, .seed = 1};
    if (!rc)
        rc = nx_run(&xp, &xp.combos[0], &o, &r, &eb);
    if (rc < 0) {
        fprintf(stderr, "nexus-bench: scale: %s\n", eb.msg);
    } else {
        printf("scale:            %d GPUs, %d sessions, %.0f s simulated: %llu requests (%.0f req/s offered), "
               "%llu epochs, %.1f s wall (%.2f M requests/s); bad rate %.3f %%, %.0f GPUs used\n",
               xp.gpus, xp.napps, xp.duration_s, (unsigned long long)r.total_requests,
               r.offered_rate, (unsigned long long)r.epochs, r.wall_s,
               (double)r.total_requests / r.wall_s / 1e6, 100 * r.bad_rate, r.gpus_used_avg);
        nx_run_result_free(&r);
    }
    nx_experiment_free(&xp);
    nx_modeldb_free(&db);
    free(y);
    return rc < 0 ? 1 : 0;
}

int main(int argc, char **argv)
{
    const char *path = argc > 1 ? argv[1] : "experiments/bench100.yml";
    bench_heap();
    if (bench_sim(path) != 0)
        return 1;
    if (bench_placement() != 0)
        return 1;
    return bench_scale();
}
