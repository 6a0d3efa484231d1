/* split.c — the query SLO split: Nexus's tree DP, the exact frontier DP for
 * DAGs, the even split and a brute-force reference (see split.h). */
#include "split.h"
#include "latency.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

double nx_split_stage_cost(const nx_split_in *in, int v, double budget_us)
{
    const nx_stage *st = &in->app->stages[v];
    const nx_profile *p = st->profile;
    double eff = budget_us - p->pre_us - p->post_us - in->net_allowance_us;
    double best = 0;
    for (int b = 1; b <= p->max_batch; b++) {
        double l = nx_latency_est_us(p, b, in->multiplier);
        if (2 * l > eff)
            break; /* latency grows with the batch: no larger b fits */
        double tp = b * 1e6 / l;
        if (tp > best)
            best = tp;
    }
    if (best == 0)
        return INFINITY;
    return in->rate[v] / best;
}

double nx_split_cost(const nx_split_in *in, const double *budget_us)
{
    double c = 0;
    for (int v = 0; v < in->app->nstages; v++)
        c += nx_split_stage_cost(in, v, budget_us[v]);
    return c;
}

bool nx_split_is_tree(const nx_app *app)
{
    for (int v = 0; v < app->nstages; v++)
        if (app->stages[v].nparents > 1)
            return false;
    return true;
}

/* cost[v * (S+1) + k] = c_v(k steps); k = 0 is infeasible. */
static double *cost_table(const nx_split_in *in, int S)
{
    int n = in->app->nstages;
    double step = in->app->slo_ms * 1000.0 / S;
    double *c = nx_malloc(sizeof(double) * (size_t)n * (size_t)(S + 1));
    for (int v = 0; v < n; v++) {
        c[v * (S + 1)] = INFINITY;
        for (int k = 1; k <= S; k++)
            c[v * (S + 1) + k] = nx_split_stage_cost(in, v, k * step);
    }
    return c;
}

static void finish_out(const nx_split_in *in, nx_split_out *out, const int *steps_of, int S)
{
    double step = in->app->slo_ms * 1000.0 / S;
    for (int v = 0; v < in->app->nstages; v++)
        out->budget_us[v] = steps_of[v] * step;
    out->steps_used = S;
    out->gpus = nx_split_cost(in, out->budget_us);
}

/* ---- trees: Nexus's DP ------------------------------------------------------------ */

static int split_tree(const nx_split_in *in, nx_split_out *out)
{
    const nx_app *a = in->app;
    int n = a->nstages, S = in->steps, W = S + 1;
    double *c = cost_table(in, S);
    double *f = nx_malloc(sizeof(double) * (size_t)n * (size_t)W);
    int *choice = nx_calloc((size_t)n * (size_t)W, sizeof(int));
    double *sumc = nx_malloc(sizeof(double) * (size_t)W);
    /* children of v are the later stages whose parent is v: visit in reverse */
    for (int v = n - 1; v >= 0; v--) {
        for (int t = 0; t <= S; t++) {
            sumc[t] = 0;
            for (int u = v + 1; u < n; u++)
                if (a->stages[u].nparents == 1 && a->stages[u].parents[0] == v)
                    sumc[t] += f[u * W + t];
        }
        f[v * W] = INFINITY;
        for (int t = 1; t <= S; t++) {
            double best = INFINITY;
            int bk = t;
            for (int k = t; k >= 1; k--) { /* largest own budget first on ties */
                double x = c[v * W + k] + sumc[t - k];
                if (x < best) {
                    best = x;
                    bk = k;
                }
            }
            f[v * W + t] = best;
            choice[v * W + t] = bk;
        }
    }
    /* backtrack: every root has the whole SLO */
    int avail[NX_APP_MAX_STAGES] = {0}, steps_of[NX_APP_MAX_STAGES] = {0};
    for (int v = 0; v < n; v++) {
        int t = a->stages[v].nparents == 0 ? S : avail[a->stages[v].parents[0]];
        steps_of[v] = choice[v * W + t];
        if (steps_of[v] < 1)
            steps_of[v] = 1;
        avail[v] = t - steps_of[v];
    }
    bool feasible = true;
    for (int v = 0; v < n; v++)
        if (a->stages[v].nparents == 0 && !isfinite(f[v * W + S]))
            feasible = false;
    finish_out(in, out, steps_of, S);
    free(c);
    free(f);
    free(choice);
    free(sumc);
    return feasible ? 0 : NX_ERR_INFEASIBLE;
}

/* ---- DAGs: the frontier DP ---------------------------------------------------------- */

static double frontier_work(const nx_app *a, const int *lastchild, int S)
{
    double work = 0;
    int open = 0;
    for (int v = 0; v < a->nstages; v++) {
        work += pow(S + 1, open) * S;
        for (int u = 0; u < v; u++)
            if (lastchild[u] == v)
                open--;
        if (lastchild[v] > v)
            open++;
    }
    return work;
}

static int split_dag(const nx_split_in *in, nx_split_out *out)
{
    const nx_app *a = in->app;
    int n = a->nstages;
    int lastchild[NX_APP_MAX_STAGES];
    for (int v = 0; v < n; v++) {
        lastchild[v] = -1;
        for (int u = v + 1; u < n; u++)
            for (int k = 0; k < a->stages[u].nparents; k++)
                if (a->stages[u].parents[k] == v)
                    lastchild[v] = u;
    }
    int S = in->steps;
    while (S > 2 && frontier_work(a, lastchild, S) > NX_SPLIT_MAX_WORK)
        S = S * 9 / 10;
    int W = S + 1;
    double *c = cost_table(in, S);

    /* open[v][i]: the i-th open stage before visiting v */
    int open[NX_APP_MAX_STAGES + 1][NX_APP_MAX_STAGES], nopen[NX_APP_MAX_STAGES + 1];
    nopen[0] = 0;
    for (int v = 0; v < n; v++) {
        int m = 0;
        for (int i = 0; i < nopen[v]; i++)
            if (lastchild[open[v][i]] != v)
                open[v + 1][m++] = open[v][i];
        if (lastchild[v] > v)
            open[v + 1][m++] = v;
        nopen[v + 1] = m;
    }
    size_t size[NX_APP_MAX_STAGES + 1] = {0};
    for (int v = 0; v <= n; v++)
        size[v] = (size_t)pow(W, nopen[v]);
    double *cur = nx_malloc(sizeof(double) * size[0]);
    cur[0] = 0;
    int *bp_prev[NX_APP_MAX_STAGES];
    int *bp_f[NX_APP_MAX_STAGES];
    for (int v = 0; v < n; v++) {
        size_t ns = size[v + 1];
        double *nxt = nx_malloc(sizeof(double) * ns);
        bp_prev[v] = nx_malloc(sizeof(int) * ns);
        bp_f[v] = nx_malloc(sizeof(int) * ns);
        for (size_t i = 0; i < ns; i++)
            nxt[i] = INFINITY;
        int Fo[NX_APP_MAX_STAGES];
        for (size_t si = 0; si < size[v]; si++) {
            if (!isfinite(cur[si]))
                continue;
            size_t x = si;
            for (int i = 0; i < nopen[v]; i++) { /* decode: open[v][0] is the lowest digit */
                Fo[open[v][i]] = (int)(x % (size_t)W);
                x /= (size_t)W;
            }
            int start = 0;
            for (int k = 0; k < a->stages[v].nparents; k++)
                if (Fo[a->stages[v].parents[k]] > start)
                    start = Fo[a->stages[v].parents[k]];
            for (int F = start + 1; F <= S; F++) {
                double val = cur[si] + c[v * W + (F - start)];
                if (!isfinite(val))
                    continue;
                Fo[v] = F;
                size_t ni = 0;
                for (int i = nopen[v + 1] - 1; i >= 0; i--)
                    ni = ni * (size_t)W + (size_t)Fo[open[v + 1][i]];
                if (val < nxt[ni]) {
                    nxt[ni] = val;
                    bp_prev[v][ni] = (int)si;
                    bp_f[v][ni] = F;
                }
            }
        }
        free(cur);
        cur = nxt;
    }
    int rc = 0;
    int F[NX_APP_MAX_STAGES] = {0}, steps_of[NX_APP_MAX_STAGES] = {0};
    if (!isfinite(cur[0])) {
        rc = NX_ERR_INFEASIBLE;
        for (int v = 0; v < n; v++)
            steps_of[v] = 1;
    } else {
        size_t si = 0;
        for (int v = n - 1; v >= 0; v--) {
            F[v] = bp_f[v][si];
            si = (size_t)bp_prev[v][si];
        }
        for (int v = 0; v < n; v++) {
            int start = 0;
            for (int k = 0; k < a->stages[v].nparents; k++)
                if (F[a->stages[v].parents[k]] > start)
                    start = F[a->stages[v].parents[k]];
            steps_of[v] = F[v] - start;
        }
    }
    finish_out(in, out, steps_of, S);
    for (int v = 0; v < n; v++) {
        free(bp_prev[v]);
        free(bp_f[v]);
    }
    free(cur);
    free(c);
    return rc;
}

int nx_split_dp(const nx_split_in *in, nx_split_out *out)
{
    memset(out, 0, sizeof *out);
    NX_ASSERT(in->app->nstages >= 1 && in->app->nstages <= NX_APP_MAX_STAGES && in->steps >= 2);
    return nx_split_is_tree(in->app) ? split_tree(in, out) : split_dag(in, out);
}

int nx_split_even(const nx_split_in *in, nx_split_out *out)
{
    memset(out, 0, sizeof *out);
    const nx_app *a = in->app;
    int n = a->nstages, up[NX_APP_MAX_STAGES], down[NX_APP_MAX_STAGES];
    for (int v = 0; v < n; v++) {
        up[v] = 1;
        for (int k = 0; k < a->stages[v].nparents; k++)
            if (up[a->stages[v].parents[k]] + 1 > up[v])
                up[v] = up[a->stages[v].parents[k]] + 1;
    }
    for (int v = n - 1; v >= 0; v--) {
        down[v] = 1;
        for (int u = v + 1; u < n; u++)
            for (int k = 0; k < a->stages[u].nparents; k++)
                if (a->stages[u].parents[k] == v && down[u] + 1 > down[v])
                    down[v] = down[u] + 1;
    }
    for (int v = 0; v < n; v++)
        out->budget_us[v] = a->slo_ms * 1000.0 / (up[v] + down[v] - 1);
    out->steps_used = 0;
    out->gpus = nx_split_cost(in, out->budget_us);
    return isfinite(out->gpus) ? 0 : NX_ERR_INFEASIBLE;
}

int nx_split_brute(const nx_split_in *in, nx_split_out *out)
{
    memset(out, 0, sizeof *out);
    const nx_app *a = in->app;
    int n = a->nstages, S = in->steps, W = S + 1;
    double *c = cost_table(in, S);
    int F[NX_APP_MAX_STAGES], best_steps[NX_APP_MAX_STAGES];
    double best = INFINITY;
    for (int v = 0; v < n; v++)
        F[v] = 1;
    for (;;) {
        double tot = 0;
        int steps_of[NX_APP_MAX_STAGES];
        for (int v = 0; v < n && isfinite(tot); v++) {
            int start = 0;
            for (int k = 0; k < a->stages[v].nparents; k++)
                if (F[a->stages[v].parents[k]] > start)
                    start = F[a->stages[v].parents[k]];
            steps_of[v] = F[v] - start;
            tot = steps_of[v] >= 1 ? tot + c[v * W + steps_of[v]] : INFINITY;
        }
        if (tot < best) {
            best = tot;
            memcpy(best_steps, steps_of, sizeof(int) * (size_t)n);
        }
        int v = 0;
        while (v < n && ++F[v] > S)
            F[v++] = 1;
        if (v == n)
            break;
    }
    free(c);
    if (!isfinite(best)) {
        for (int v = 0; v < n; v++)
            best_steps[v] = 1;
        finish_out(in, out, best_steps, S);
        return NX_ERR_INFEASIBLE;
    }
    finish_out(in, out, best_steps, S);
    return 0;
}
