/* loadgen_main.c — nexus-loadgen: replay an experiment's workload open loop
 * against running frontends (KServe v2 ModelInfer) and write the same
 * DIR/summary.json and DIR/requests.csv as nexus-sim, plus DIR/real.json
 * (send lag, latency added over executor time, failures). See loadgen.h;
 * `nexus-sim EXPERIMENT --policy P --seed N --scale S` predicts the same
 * queries. */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "loadgen.h"
#include "report.h"
#include "serve.h"
#include "setup.h"
#include "util.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: nexus-loadgen EXPERIMENT.yml --frontend ADDR[,ADDR...] --out DIR [options]\n"
            "\n"
            "Sends the experiment's queries (exactly those nexus-sim generates for the same\n"
            "seed and scale) open loop to the frontends as KServe v2 ModelInfer calls (app a to\n"
            "frontend a mod F) and writes DIR/summary.json, DIR/requests.csv (as nexus-sim) and\n"
            "DIR/real.json (send lag, executor time, failures). nexus-sim with the same\n"
            "--policy, --seed and --scale predicts the same queries.\n"
            "\n"
            "options:\n"
            "  --frontend LIST      frontends' KServe addresses, comma-separated (required)\n"
            "  --out DIR            output directory (required)\n"
            "  --scheduler ADDR     re-plan at t = 0, and read the plan, timeline and failures\n"
            "  --policy NAME        the policy combination the cluster runs (default: the first)\n"
            "  --scale S            workload rate scale (default 1)\n"
            "  --seed N             the experiment's seed unless given\n"
            "  --payload N|auto     FP32 values per request (default 16; 0: no input tensor;\n"
            "                       auto: each app's model input, for the cpu/cuda executors)\n"
            "  --ready-timeout S    wait this long for the frontends (default 30)\n"
            "  --no-requests        do not write requests.csv\n"
            "  --quiet              no progress line, no table\n"
            "  --tls-cert, --tls-key, --tls-ca, --tls-server-name, --token-file, --max-msg-mb:\n"
            "                       as the daemons' (TLS, mutual TLS and the token on its calls)\n"
            "  --help               this text\n");
}

static void on_signal(void *ctx, int signo)
{
    if (signo != SIGCHLD)
        *(bool *)ctx = true;
}

int main(int argc, char **argv)
{
    const char *prog = "nexus-loadgen";
    const char *out = NULL, *sched = NULL, *policy = NULL, *list = NULL;
    double scale = 1, ready = 30;
    long seed = -1, payload = 16;
    bool requests = true, quiet = false;
    static const struct option opts[] = {
        {"frontend", 1, 0, 'f'}, {"out", 1, 0, 'o'}, {"scheduler", 1, 0, 'S'},
        {"policy", 1, 0, 'p'}, {"scale", 1, 0, 's'}, {"seed", 1, 0, 'e'},
        {"payload", 1, 0, 'y'}, {"ready-timeout", 1, 0, 'r'}, {"no-requests", 0, 0, 'N'},
        {"quiet", 0, 0, 'q'}, {"help", 0, 0, 'h'}, NX_SERVE_LONGOPTS, {0, 0, 0, 0},
    };
    nx_serve_opts so = {0};
    int o;
    while ((o = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        int bad = 0;
        switch (o) {
        case 'f': list = optarg; break;
        case 'o': out = optarg; break;
        case 'S': sched = optarg; break;
        case 'p': policy = optarg; break;
        case 's': bad = nx_cli_double(prog, "--scale", optarg, 1e-9, 1e6, &scale); break;
        case 'e': bad = nx_cli_long(prog, "--seed", optarg, 0, 1L << 62, &seed); break;
        case 'y':
            if (strcmp(optarg, "auto") == 0)
                payload = -1;
            else
                bad = nx_cli_long(prog, "--payload", optarg, 0, 1 << 24, &payload);
            break;
        case 'r': bad = nx_cli_double(prog, "--ready-timeout", optarg, 0.1, 3600, &ready); break;
        case 'N': requests = false; break;
        case 'q': quiet = true; break;
        case 'h': usage(stdout); return 0;
        default:
            if ((bad = nx_serve_opt(&so, prog, o, optarg)) < 0 || so.metrics ||
                so.tls_verify_clients) {
                if (!bad)
                    fprintf(stderr, "%s: --metrics and --tls-verify-clients are for daemons\n",
                            prog);
                usage(stderr);
                return 2;
            }
        }
        if (bad)
            return 2;
    }
    if (optind + 1 != argc || !out || !list) {
        usage(stderr);
        return 2;
    }
    char *copy = nx_strdup(list);
    const char *fes[256];
    int nfe = 0;
    for (char *save = NULL, *t = strtok_r(copy, ",", &save); t && nfe < 256;
         t = strtok_r(NULL, ",", &save))
        fes[nfe++] = t;
    nx_errbuf eb;
    nx_err_clear(&eb);
    nx_loop *loop = NULL;
    nx_setup setup;
    memset(&setup, 0, sizeof setup);
    nx_rpc_cfg rcfg;
    int rc = nx_serve_load(&so, &rcfg, &eb);
    if (rc == 0)
        rc = nx_loop_init(&loop, &eb); /* first: it sets the threads' signal mask */
    if (rc == 0)
        rc = nx_setup_load(&setup, argv[optind], policy, scale, &eb);
    bool interrupted = false;
    nx_loadgen_result res;
    memset(&res, 0, sizeof res);
    if (rc == 0 && nfe == 0) {
        nx_err_set(&eb, NX_ERR_INVAL, "--frontend: no address");
        rc = NX_ERR_INVAL;
    }
    if (rc == 0) {
        nx_loop_on_signal(loop, on_signal, &interrupted);
        nx_loadgen_opts lo = {
            .cat = &setup.cat,
            .seed = seed >= 0 ? (uint64_t)seed : setup.x.seed,
            .loop = loop,
            .frontends = fes,
            .nfrontends = nfe,
            .scheduler = sched,
            .payload = (int)payload,
            .ready_timeout_s = ready,
            .progress = !quiet,
            .interrupted = &interrupted,
            .rpc_cfg = &rcfg,
        };
        rc = nx_loadgen_run(&lo, &res, &eb);
    }
    if (rc == 0) {
        nx_combo_report rep = {.combo = setup.cat.combo, .run = res.run};
        rc = nx_report_write(out, &setup.x, &rep, 1, seed >= 0 ? (uint64_t)seed : setup.x.seed,
                             requests, &eb);
        const nx_loadgen_result *rp = &res;
        const char *label = setup.cat.combo->name;
        if (rc == 0)
            rc = nx_loadgen_write_json(out, &setup.cat, &rp, &label, 1, &eb);
    }
    if (rc == 0 && !quiet) {
        const nx_run_result *r = &res.run;
        printf("%-10s %10s %10s %9s %9s %9s %6s %6s %6s %6s\n", "", "offered", "goodput",
               "bad_rate", "p50_ms", "p99_ms", "sent", "ok", "late", "drop");
        printf("%-10s %10.1f %10.1f %8.2f%% %9.2f %9.2f %6llu %6llu %6llu %6llu\n", "real",
               r->offered_rate, r->goodput, 100 * r->bad_rate, r->lat_p50_ms, r->lat_p99_ms,
               (unsigned long long)r->sent, (unsigned long long)r->ok,
               (unsigned long long)r->late, (unsigned long long)r->dropped);
        printf("unanswered %llu, rejected %llu, wrong outputs %llu; latency over executor time "
               "p50 %.3f ms, p99 %.3f ms\nwrote %s/summary.json\n",
               (unsigned long long)res.unanswered, (unsigned long long)res.rejected,
               (unsigned long long)res.wrong_outputs, res.added_p50_ms, res.added_p99_ms, out);
    }
    if (rc < 0)
        fprintf(stderr, "%s: %s\n", prog, eb.msg[0] ? eb.msg : nx_strerror(rc));
    nx_loadgen_result_free(&res);
    nx_setup_free(&setup);
    nx_loop_free(loop);
    free(copy);
    nx_serve_free(&so);
    return rc < 0 ? 1 : (interrupted ? 130 : 0);
}
