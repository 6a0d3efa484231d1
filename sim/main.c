/* main.c — nexus-sim: replay an experiment in the discrete-event simulator for
 * every policy combination it lists, and write DIR/summary.json,
 * DIR/requests.csv and the gnuplot data files. With --max-rate, each
 * combination's throughput at <= 1 % bad rate is found by bisection over the
 * workload's rate scale. */
#include "load.h"
#include "report.h"
#include "run.h"
#include "search.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void usage(FILE *f)
{
    fprintf(f,
            "usage: nexus-sim EXPERIMENT.yml --out DIR [options]\n"
            "\n"
            "Replays EXPERIMENT.yml in the simulator once per policy combination and writes\n"
            "DIR/summary.json, DIR/requests.csv, DIR/{latency_cdf,sweep,timeline}.dat.\n"
            "\n"
            "options:\n"
            "  --out DIR        output directory (created if needed; required)\n"
            "  --seed N         override the experiment's seed\n"
            "  --scale S        multiply every workload rate by S (default 1)\n"
            "  --max-rate       per policy, find the highest offered rate with bad rate <= 1 %%\n"
            "  --policy NAME    run only the policy combination called NAME\n"
            "  --no-requests    do not write requests.csv\n"
            "  --quiet          no progress or table on stderr/stdout\n"
            "  --help           this text\n");
}

static int parse_u64(const char *s, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s || *end || s[0] == '-')
        return -1;
    *out = v;
    return 0;
}

int main(int argc, char **argv)
{
    const char *path = NULL, *out = NULL, *only = NULL;
    uint64_t seed = 0;
    bool have_seed = false, max_rate = false, requests = true, quiet = false;
    double scale = 1.0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "--out") && i + 1 < argc) {
            out = argv[++i];
        } else if (!strcmp(a, "--seed") && i + 1 < argc) {
            if (parse_u64(argv[++i], &seed) < 0) {
                fprintf(stderr, "nexus-sim: --seed: '%s' is not an unsigned integer\n", argv[i]);
                return 2;
            }
            have_seed = true;
        } else if (!strcmp(a, "--scale") && i + 1 < argc) {
            char *end;
            scale = strtod(argv[++i], &end);
            if (end == argv[i] || *end || !(scale > 0) || scale > 1e6) {
                fprintf(stderr, "nexus-sim: --scale: '%s' is not a positive number\n", argv[i]);
                return 2;
            }
        } else if (!strcmp(a, "--max-rate")) {
            max_rate = true;
        } else if (!strcmp(a, "--policy") && i + 1 < argc) {
            only = argv[++i];
        } else if (!strcmp(a, "--no-requests")) {
            requests = false;
        } else if (!strcmp(a, "--quiet")) {
            quiet = true;
        } else if (a[0] == '-') {
            fprintf(stderr, "nexus-sim: unknown or incomplete option '%s'\n", a);
            usage(stderr);
            return 2;
        } else if (!path) {
            path = a;
        } else {
            fprintf(stderr, "nexus-sim: more than one experiment file ('%s', '%s')\n", path, a);
            return 2;
        }
    }
    if (!path || !out) {
        usage(stderr);
        return 2;
    }

    nx_experiment x;
    nx_modeldb db;
    nx_errbuf eb;
    nx_err_clear(&eb);
    nx_experiment_init(&x);
    nx_modeldb_init(&db);
    int rc = nx_load_experiment(&x, &db, path, &eb);
    if (rc < 0) {
        fprintf(stderr, "nexus-sim: %s\n", eb.msg[0] ? eb.msg : nx_strerror(rc));
        nx_experiment_free(&x);
        nx_modeldb_free(&db);
        return 1;
    }
    if (have_seed)
        x.seed = seed;

    nx_combo_report *reps = nx_calloc((size_t)x.ncombos, sizeof(nx_combo_report));
    int n = 0;
    for (int c = 0; c < x.ncombos && rc >= 0; c++) {
        const nx_combo *combo = &x.combos[c];
        if (only && strcmp(only, combo->name) != 0)
            continue;
        if (max_rate) {
            nx_search_opts so = {.seed = x.seed, .progress = !quiet, .keep_requests = requests};
            rc = nx_search_max_rate(&x, combo, &so, &reps[n], &eb);
        } else {
            nx_run_opts ro = {.scale = scale, .seed = x.seed, .keep_requests = requests,
                              .progress = !quiet, .label = combo->name};
            reps[n].combo = combo;
            rc = nx_run(&x, combo, &ro, &reps[n].run, &eb);
        }
        if (rc >= 0)
            n++;
    }
    if (rc >= 0 && only && n == 0) {
        nx_err_set(&eb, NX_ERR_NOTFOUND, "%s: no policy combination is called '%s'", path, only);
        rc = NX_ERR_NOTFOUND;
    }
    if (rc >= 0)
        rc = nx_report_write(out, &x, reps, n, x.seed, requests, &eb);
    if (rc >= 0 && !quiet) {
        printf("%-16s %-16s %-12s %-16s %12s %10s %9s %9s %9s%s\n", "policy", "placement",
               "batching", "lb", max_rate ? "max_rate" : "offered", "goodput", "bad_rate",
               "p99_ms", "gpus_used", max_rate ? "  gpus@lo" : "");
        for (int i = 0; i < n; i++) {
            const nx_run_result *r = &reps[i].run;
            printf("%-16s %-16s %-12s %-16s %11.1f%s %10.1f %8.2f%% %9.2f %9.2f", reps[i].combo->name,
                   reps[i].combo->placement, reps[i].combo->batching, reps[i].combo->lb,
                   max_rate ? reps[i].max_rate : r->offered_rate,
                   reps[i].max_rate_capped ? "+" : " ", r->goodput, 100 * r->bad_rate,
                   r->lat_p99_ms, r->gpus_used_avg);
            if (max_rate && reps[i].nsweep > 0)
                printf(" %8.2f", reps[i].sweep[0].gpus_used);
            printf("\n");
        }
        if (max_rate)
            printf("(max_rate: highest offered queries/s with bad rate <= 1 %%, '+' if the search's upper\n"
                   " bound still passed; gpus_used: at that rate; gpus@lo: at the search's lowest scale)\n");
        printf("wrote %s/summary.json\n", out);
    }
    if (rc < 0)
        fprintf(stderr, "nexus-sim: %s\n", eb.msg[0] ? eb.msg : nx_strerror(rc));
    for (int i = 0; i < x.ncombos; i++)
        nx_combo_report_free(&reps[i]);
    free(reps);
    nx_experiment_free(&x);
    nx_modeldb_free(&db);
    return rc < 0 ? 1 : 0;
}
