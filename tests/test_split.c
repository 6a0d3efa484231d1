/* test_split.c — CUnit suite for the query SLO split (engine/split.c): the
 * Nexus tree DP and the frontier DP for DAGs against exhaustive search over
 * random instances, the even split, and a hand-checked two-stage case. */
#include <CUnit/Basic.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "split.h"

/* l(b) = alpha*b + beta (µs), measured at 1 and 256. */
static void mk_linear(nx_profile *p, double alpha, double beta)
{
    nx_profile_init(p);
    snprintf(p->model, sizeof p->model, "lin");
    p->npoints = 2;
    p->points = nx_calloc(2, sizeof *p->points);
    p->points[0] = (nx_profile_point){1, alpha + beta, 0, 100};
    p->points[1] = (nx_profile_point){256, alpha * 256 + beta, 0, 1000};
    nx_errbuf eb;
    nx_err_clear(&eb);
    CU_ASSERT_EQUAL_FATAL(nx_profile_finish(p, &eb), 0);
}

static uint64_t rng_next(uint64_t *s)
{
    *s = *s * 6364136223846793005ULL + 1442695040888963407ULL;
    return *s >> 33;
}

/* A random app of n stages; tree: one parent each; otherwise 1-2 parents. */
static void random_app(nx_app *a, nx_stage *st, nx_profile *prof, int n, bool tree, uint64_t *s)
{
    memset(a, 0, sizeof *a);
    a->stages = st;
    a->nstages = n;
    a->slo_ms = 100 + (double)(rng_next(s) % 300);
    for (int v = 0; v < n; v++) {
        memset(&st[v], 0, sizeof st[v]);
        st[v].profile = &prof[v];
        if (v == 0)
            continue;
        int np = tree ? 1 : 1 + (int)(rng_next(s) % (v >= 2 ? 2 : 1));
        st[v].nparents = 0;
        while (st[v].nparents < np) {
            int p = (int)(rng_next(s) % (uint64_t)v);
            bool dup = false;
            for (int k = 0; k < st[v].nparents; k++)
                dup |= st[v].parents[k] == p;
            if (!dup)
                st[v].parents[st[v].nparents++] = p;
        }
    }
}

static void compare_random(bool tree)
{
    uint64_t s = tree ? 11 : 23;
    int checked = 0, joins = 0;
    for (int it = 0; it < 300; it++) {
        int n = 2 + (int)(rng_next(&s) % 4); /* 2..5 stages */
        nx_profile prof[6];
        nx_stage st[6];
        nx_app a;
        for (int v = 0; v < n; v++)
            mk_linear(&prof[v], 200 + (double)(rng_next(&s) % 2000),
                      1000 + (double)(rng_next(&s) % 20000));
        random_app(&a, st, prof, n, tree, &s);
        double rate[6];
        for (int v = 0; v < n; v++)
            rate[v] = 10 + (double)(rng_next(&s) % 2000);
        nx_split_in in = {.app = &a, .rate = rate, .multiplier = 1, .net_allowance_us = 0,
                          .steps = 8 + (int)(rng_next(&s) % 5)};
        nx_split_out dp, bf;
        int rc1 = nx_split_dp(&in, &dp);
        int rc2 = nx_split_brute(&in, &bf);
        CU_ASSERT_EQUAL(rc1, rc2);
        if (rc2 == 0) {
            checked++;
            CU_ASSERT_DOUBLE_EQUAL(dp.gpus, bf.gpus, 1e-9 * (1 + bf.gpus));
            if (fabs(dp.gpus - bf.gpus) > 1e-9 * (1 + bf.gpus))
                printf("\n    instance %d: dp %.6f brute %.6f", it, dp.gpus, bf.gpus);
            /* the DP's budgets respect every path: finish times within the SLO */
            double fin[6];
            for (int v = 0; v < n; v++) {
                double start = 0;
                for (int k = 0; k < st[v].nparents; k++)
                    start = fmax(start, fin[st[v].parents[k]]);
                fin[v] = start + dp.budget_us[v];
                CU_ASSERT(fin[v] <= a.slo_ms * 1000 * (1 + 1e-12));
                joins += st[v].nparents > 1;
            }
        }
        for (int v = 0; v < n; v++)
            nx_profile_free(&prof[v]);
    }
    printf("\n    %s: %d feasible instances match brute force", tree ? "trees" : "DAGs", checked);
    if (!tree)
        printf(" (%d join stages)", joins);
    CU_ASSERT(checked > 100);
    if (!tree)
        CU_ASSERT(joins > 50);
}

static void test_tree_vs_brute(void) { compare_random(true); }
static void test_dag_vs_brute(void) { compare_random(false); }

/* Two stages X -> Y, SLO 100 ms, rates R_X = 100, R_Y = gamma * 100. With
 * gamma large, Y deserves the larger share (the paper's Fig. 3/4 argument). */
static void test_fanout_moves_budget(void)
{
    nx_profile px, py;
    mk_linear(&px, 1000, 10000); /* l(b) = b + 10 ms */
    mk_linear(&py, 1000, 10000);
    nx_stage st[2];
    memset(st, 0, sizeof st);
    st[0].profile = &px;
    st[1].profile = &py;
    st[1].nparents = 1;
    st[1].parents[0] = 0;
    nx_app a = {.slo_ms = 100, .stages = st, .nstages = 2};
    double r1[2] = {100, 10}, r2[2] = {100, 1000};
    nx_split_in in = {.app = &a, .rate = r1, .multiplier = 1, .steps = 100};
    nx_split_out lo, hi, ev;
    CU_ASSERT_EQUAL_FATAL(nx_split_dp(&in, &lo), 0);
    in.rate = r2;
    CU_ASSERT_EQUAL_FATAL(nx_split_dp(&in, &hi), 0);
    CU_ASSERT(lo.budget_us[0] > lo.budget_us[1]);   /* gamma 0.1: X gets more */
    CU_ASSERT(hi.budget_us[1] > hi.budget_us[0]);   /* gamma 10: Y gets more */
    CU_ASSERT_DOUBLE_EQUAL(lo.budget_us[0] + lo.budget_us[1], 100000, 1e-6);
    CU_ASSERT_EQUAL_FATAL(nx_split_even(&in, &ev), 0);
    CU_ASSERT_DOUBLE_EQUAL(ev.budget_us[0], 50000, 1e-9);
    CU_ASSERT(hi.gpus < ev.gpus);
    printf("\n    gamma 0.1: X %.0f / Y %.0f ms; gamma 10: X %.0f / Y %.0f ms (%.2f vs even %.2f GPUs)",
           lo.budget_us[0] / 1000, lo.budget_us[1] / 1000, hi.budget_us[0] / 1000,
           hi.budget_us[1] / 1000, hi.gpus, ev.gpus);
    nx_profile_free(&px);
    nx_profile_free(&py);
}

int main(void)
{
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 2;
    CU_pSuite s = CU_add_suite("split", NULL, NULL);
    CU_add_test(s, "tree DP = brute force (random trees)", test_tree_vs_brute);
    CU_add_test(s, "frontier DP = brute force (random DAGs)", test_dag_vs_brute);
    CU_add_test(s, "fan-out moves the budget; DP beats even", test_fanout_moves_budget);
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    unsigned fails = CU_get_number_of_failures() + CU_get_number_of_tests_failed();
    CU_cleanup_registry();
    return fails ? 1 : 0;
}
