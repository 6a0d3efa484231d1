/* report.c — writes summary.json, requests.csv and the gnuplot data files of a
 * set of runs (see report.h). Output is a pure function of the results: no
 * wall-clock figures go into these files, so equal seeds give equal bytes. */
#include "report.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static int mkdir_p(const char *dir, nx_errbuf *eb)
{
    char tmp[1024];
    snprintf(tmp, sizeof tmp, "%s", dir);
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = 0;
        mkdir(tmp, 0755);
        *p = '/';
    }
    if (mkdir(tmp, 0755) != 0 && errno != EEXIST) {
        nx_err_set(eb, NX_ERR_IO, "%s: cannot create directory: %s", dir, strerror(errno));
        return NX_ERR_IO;
    }
    return 0;
}

static FILE *open_out(const char *dir, const char *name, nx_errbuf *eb)
{
    char path[1100];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    if (!f)
        nx_err_set(eb, NX_ERR_IO, "%s: cannot write: %s", path, strerror(errno));
    return f;
}

static int close_out(FILE *f, const char *dir, const char *name, nx_errbuf *eb)
{
    int bad = ferror(f);
    if (fclose(f) != 0 || bad) {
        nx_err_set(eb, NX_ERR_IO, "%s/%s: write failed", dir, name);
        return NX_ERR_IO;
    }
    return 0;
}

/* JSON string with the few escapes names can need. */
static void jstr(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"' || *s == '\\')
            fprintf(f, "\\%c", *s);
        else if ((unsigned char)*s < 0x20)
            fprintf(f, "\\u%04x", *s);
        else
            fputc(*s, f);
    }
    fputc('"', f);
}

static void write_plan(FILE *f, const nx_run_result *r, const nx_plan *p)
{
    fprintf(f, "      \"plan\": {\n        \"gpus_used\": %d,\n        \"gpus\": [", p->used);
    bool first = true;
    for (int g = 0; g < p->ngpu; g++) {
        const nx_gpu_plan *gp = &p->gpu[g];
        if (gp->n == 0)
            continue;
        fprintf(f, "%s\n          {\"gpu\": %d, \"duty_ms\": %.4f, \"exec_ms\": %.4f, \"mem_mb\": %.1f, \"overcommitted\": %s, \"sessions\": [",
                first ? "" : ",", g, gp->duty_us / 1000, gp->exec_us / 1000, gp->mem_mb,
                gp->overcommitted ? "true" : "false");
        first = false;
        for (int i = 0; i < gp->n; i++) {
            const nx_alloc *a = &gp->a[i];
            fprintf(f, "%s{\"session\": ", i ? ", " : "");
            jstr(f, r->sessions[a->session].name);
            fprintf(f, ", \"batch\": %d, \"rate\": %.3f, \"throughput\": %.3f}", a->batch, a->rate,
                    a->throughput);
        }
        fprintf(f, "]}");
    }
    fprintf(f, "\n        ],\n        \"unassigned_rps\": {");
    first = true;
    for (int s = 0; s < p->nsess; s++) {
        if (p->unassigned[s] <= 1e-9)
            continue;
        fprintf(f, "%s", first ? "" : ", ");
        jstr(f, r->sessions[s].name);
        fprintf(f, ": %.3f", p->unassigned[s]);
        first = false;
    }
    fprintf(f, "}\n      }");
}

static void write_result(FILE *f, const nx_experiment *x, const nx_combo_report *cr)
{
    const nx_run_result *r = &cr->run;
    const nx_combo *c = cr->combo;
    fprintf(f, "    {\n      \"policy\": ");
    jstr(f, c->name);
    fprintf(f, ",\n      \"placement\": ");
    jstr(f, c->placement);
    fprintf(f, ",\n      \"batching\": ");
    jstr(f, c->batching);
    fprintf(f, ",\n      \"lb\": ");
    jstr(f, c->lb);
    fprintf(f, ",\n      \"rate_scale\": %.6f,\n", r->scale);
    if (cr->searched) {
        fprintf(f, "      \"max_rate\": %.3f,\n      \"max_rate_capped\": %s,\n", cr->max_rate,
                cr->max_rate_capped ? "true" : "false");
        fprintf(f, "      \"search\": [");
        for (int i = 0; i < cr->nsweep; i++)
            fprintf(f, "%s{\"scale\": %.6f, \"offered_rate\": %.3f, \"goodput\": %.3f, \"bad_rate\": %.6f, \"gpus_used\": %.3f}",
                    i ? ", " : "", cr->sweep[i].scale, cr->sweep[i].offered, cr->sweep[i].goodput,
                    cr->sweep[i].bad_rate, cr->sweep[i].gpus_used);
        fprintf(f, "],\n");
    }
    fprintf(f,
            "      \"offered_rate\": %.3f,\n      \"goodput\": %.3f,\n      \"bad_rate\": %.6f,\n"
            "      \"sent\": %llu,\n      \"ok\": %llu,\n      \"late\": %llu,\n      \"dropped\": %llu,\n"
            "      \"unanswered\": %llu,\n",
            r->offered_rate, r->goodput, r->bad_rate, (unsigned long long)r->sent,
            (unsigned long long)r->ok, (unsigned long long)r->late, (unsigned long long)r->dropped,
            (unsigned long long)r->unanswered);
    fprintf(f,
            "      \"latency_ms\": {\"p50\": %.4f, \"p90\": %.4f, \"p99\": %.4f, \"max\": %.4f, \"mean\": %.4f},\n",
            r->lat_p50_ms, r->lat_p90_ms, r->lat_p99_ms, r->lat_max_ms, r->lat_mean_ms);
    fprintf(f, "      \"gpus_used_avg\": %.4f,\n      \"util_mean\": %.4f,\n      \"gpu_util\": [",
            r->gpus_used_avg, r->util_mean);
    for (int g = 0; g < r->ngpu; g++)
        fprintf(f, "%s%.4f", g ? ", " : "", r->util[g]);
    fprintf(f, "],\n      \"epochs\": %llu,\n      \"triggers\": %llu,\n",
            (unsigned long long)r->epochs, (unsigned long long)r->triggers);
    fprintf(f, "      \"backend_failures\": %llu,\n      \"backend_recoveries\": %llu,\n"
               "      \"calls_retried\": %llu,\n      \"calls_dropped_on_failure\": %llu,\n"
               "      \"timeline\": [",
            (unsigned long long)r->failures, (unsigned long long)r->recoveries,
            (unsigned long long)r->retried, (unsigned long long)r->failed_over);
    bool dag = r->nsess > r->napps;
    for (int k = 0; k < r->ntimeline; k++) {
        fprintf(f, "%s{\"t_s\": %.3f, \"gpus_used\": %d, \"planned_rps\": %.3f, \"why\": \"%s\"",
                k ? ", " : "", r->timeline[k].t_s, r->timeline[k].used, r->timeline[k].planned,
                r->timeline[k].why);
        if (dag) { /* the stage budgets, when some app has several stages */
            fprintf(f, ", \"slo_ms\": [");
            for (int s = 0; s < r->nsess; s++)
                fprintf(f, "%s%.3f", s ? ", " : "", r->timeline[k].slo_ms[s]);
            fprintf(f, "]");
        }
        fprintf(f, "}");
    }
    fprintf(f, "],\n      \"apps\": [");
    for (int a = 0; a < r->napps; a++) {
        const nx_app_stats *as = &r->apps[a];
        fprintf(f, "%s\n        {\"name\": ", a ? "," : "");
        jstr(f, x->apps[a].name);
        fprintf(f, ", \"model\": ");
        jstr(f, x->apps[a].model);
        fprintf(f,
                ", \"slo_ms\": %.3f, \"sent\": %llu, \"ok\": %llu, \"late\": %llu, \"dropped\": %llu, \"bad_rate\": %.6f}",
                x->apps[a].slo_ms, (unsigned long long)as->sent, (unsigned long long)as->ok,
                (unsigned long long)as->late, (unsigned long long)as->dropped,
                as->sent ? (double)(as->late + as->dropped) / (double)as->sent : 0.0);
    }
    fprintf(f, "\n      ],\n");
    fprintf(f, "      \"sessions\": [");
    for (int s = 0; s < r->nsess; s++) {
        const nx_session *se = &r->sessions[s];
        double slo = r->ntimeline ? r->timeline[r->ntimeline - 1].slo_ms[s] : se->slo_us / 1000;
        fprintf(f, "%s\n        {\"name\": ", s ? "," : "");
        jstr(f, se->name);
        fprintf(f, ", \"model\": ");
        jstr(f, se->prof->model);
        fprintf(f, ", \"precision\": ");
        jstr(f, se->prof->precision);
        fprintf(f, ", \"slo_ms\": %.3f}", slo);
    }
    fprintf(f, "\n      ],\n      \"splits\": %llu,\n", (unsigned long long)r->splits);
    write_plan(f, r, &r->final_plan);
    fprintf(f, "\n    }");
}

/* latency_cdf.dat: one block per policy (separated by two blank lines, for
 * gnuplot's `index`): latency_ms fraction, 201 points per policy, over the
 * requests that arrived in the measured window. The fraction is of all of
 * them, so the curve tops out at the answered fraction. */
static void write_cdf(FILE *f, const nx_combo_report *cr)
{
    const nx_run_result *r = &cr->run;
    fprintf(f, "# policy %s\n", cr->combo->name);
    size_t n = r->nlat;
    for (int k = 0; k <= 200 && n > 0; k++) {
        size_t i = (size_t)((double)k / 200.0 * (double)(n - 1));
        fprintf(f, "%.4f %.4f\n", r->lat_sorted[i], (double)(i + 1) / (double)r->sent);
    }
    fprintf(f, "\n\n");
}

int nx_report_write(const char *dir, const nx_experiment *x, const nx_combo_report *reps,
                    int n, uint64_t seed, bool write_requests, nx_errbuf *eb)
{
    int rc = mkdir_p(dir, eb);
    if (rc < 0)
        return rc;
    FILE *f = open_out(dir, "summary.json", eb);
    if (!f)
        return NX_ERR_IO;
    fprintf(f, "{\n  \"experiment\": ");
    jstr(f, x->name);
    fprintf(f, ",\n  \"seed\": %llu,\n  \"gpus\": %d,\n  \"gpu_type\": ", (unsigned long long)seed,
            x->gpus);
    jstr(f, x->gpu_type);
    fprintf(f, ",\n  \"duration_s\": %.3f,\n  \"warmup_s\": %.3f,\n  \"results\": [\n",
            x->duration_s, x->warmup_s);
    for (int i = 0; i < n; i++) {
        write_result(f, x, &reps[i]);
        fprintf(f, "%s\n", i + 1 < n ? "," : "");
    }
    fprintf(f, "  ]\n}\n");
    if ((rc = close_out(f, dir, "summary.json", eb)) < 0)
        return rc;

    /* gnuplot data */
    if (!(f = open_out(dir, "latency_cdf.dat", eb)))
        return NX_ERR_IO;
    for (int i = 0; i < n; i++)
        write_cdf(f, &reps[i]);
    if ((rc = close_out(f, dir, "latency_cdf.dat", eb)) < 0)
        return rc;
    if (!(f = open_out(dir, "timeline.dat", eb)))
        return NX_ERR_IO;
    for (int i = 0; i < n; i++) {
        const nx_run_result *r = &reps[i].run;
        fprintf(f, "# policy %s: t_s gpus_used planned_rps\n", reps[i].combo->name);
        for (int k = 0; k < r->ntimeline; k++) {
            /* step function: hold the previous value until the epoch */
            if (k > 0)
                fprintf(f, "%.3f %d %.3f\n", r->timeline[k].t_s, r->timeline[k - 1].used,
                        r->timeline[k - 1].planned);
            fprintf(f, "%.3f %d %.3f\n", r->timeline[k].t_s, r->timeline[k].used,
                    r->timeline[k].planned);
        }
        if (r->ntimeline > 0)
            fprintf(f, "%.3f %d %.3f\n", x->duration_s, r->timeline[r->ntimeline - 1].used,
                    r->timeline[r->ntimeline - 1].planned);
        fprintf(f, "\n\n");
    }
    if ((rc = close_out(f, dir, "timeline.dat", eb)) < 0)
        return rc;
    if (!(f = open_out(dir, "sweep.dat", eb)))
        return NX_ERR_IO;
    for (int i = 0; i < n; i++) {
        fprintf(f, "# policy %s: scale offered_rps goodput_rps bad_rate\n", reps[i].combo->name);
        for (int k = 0; k < reps[i].nsweep; k++)
            fprintf(f, "%.6f %.3f %.3f %.6f\n", reps[i].sweep[k].scale, reps[i].sweep[k].offered,
                    reps[i].sweep[k].goodput, reps[i].sweep[k].bad_rate);
        if (reps[i].nsweep == 0)
            fprintf(f, "%.6f %.3f %.3f %.6f\n", reps[i].run.scale, reps[i].run.offered_rate,
                    reps[i].run.goodput, reps[i].run.bad_rate);
        fprintf(f, "\n\n");
    }
    if ((rc = close_out(f, dir, "sweep.dat", eb)) < 0)
        return rc;
    if (!(f = open_out(dir, "policies.txt", eb)))
        return NX_ERR_IO;
    for (int i = 0; i < n; i++)
        fprintf(f, "%s\n", reps[i].combo->name);
    if ((rc = close_out(f, dir, "policies.txt", eb)) < 0)
        return rc;

    if (!write_requests)
        return 0;
    if (!(f = open_out(dir, "requests.csv", eb)))
        return NX_ERR_IO;
    fprintf(f, "policy,id,app,arrival_us,deadline_us,finish_us,latency_us,status,gpu,batch,calls\n");
    static const char *st[] = {"pending", "ok", "late", "dropped", "unanswered"};
    for (int i = 0; i < n; i++) {
        const nx_run_result *r = &reps[i].run;
        for (size_t k = 0; k < r->nreqs; k++) {
            const nx_query *q = &r->reqs[k];
            bool answered = q->status == NX_REQ_OK || q->status == NX_REQ_LATE;
            fprintf(f, "%s,%llu,%s,%.3f,%.3f,", reps[i].combo->name, (unsigned long long)q->id,
                    x->apps[q->app].name, NX_TO_US(q->arrival), NX_TO_US(q->deadline));
            if (q->finish > 0)
                fprintf(f, "%.3f,", NX_TO_US(q->finish));
            else
                fprintf(f, ",");
            if (answered)
                fprintf(f, "%.3f,", NX_TO_US(q->finish - q->arrival));
            else
                fprintf(f, ",");
            fprintf(f, "%s,%d,%d,%u\n", st[q->status], q->gpu, q->batch, q->calls);
        }
    }
    return close_out(f, dir, "requests.csv", eb);
}
