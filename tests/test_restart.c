/* test_restart.c — the global scheduler resuming from its exported state
 * (engine/sched_state.h), driven by the simulator's env: the GPUs alive in
 * the state are taken back on trust, alive but unconfirmed, for the
 * keep-alive timeout. One whose backend's keep-alive comes within it keeps
 * its work and its routes, gets its table again and nothing is re-planned;
 * one never heard from is declared dead when the timeout has run out (GPU
 * down to the frontend, a "failure" re-plan without it), exactly as a
 * backend gone silent.
 *
 * The fixture: tests/real/restart.yml (two sessions, quarter-second beacons)
 * at rate scale 30, so the plan needs both of its two GPUs, one frontend, a
 * keep-alive timeout of 1 s. */
#include <CUnit/Basic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "catalog.h"
#include "policies.h"
#include "sched_state.h"
#include "sim.h"
#include "testutil.h"

enum { NGPU = 2, FE_NODE = 100, MAXEP = 16 };

typedef struct fixture {
    nx_sim sim;
    nx_experiment x;
    nx_modeldb db;
    nx_catalog cat;
    nx_scheduler_cfg cfg;
    int tables[NGPU];          /* TABLE messages per GPU */
    int table_n[NGPU];         /* the last one's entries */
    int gpu_down[NGPU];        /* GPU_DOWN messages to the frontend */
    int nroutes;               /* ROUTES messages */
    int routed[NGPU];          /* the last routes: entries naming each GPU */
    char why[MAXEP][16];       /* each epoch's reason */
    int nep;
    nx_time ep_at[MAXEP];
} fixture;

static void deliver(void *ctx, int dst, nx_msg *m)
{
    fixture *f = ctx;
    if (m->type == NX_MSG_TABLE) {
        int g = dst - nx_node_backend(0);
        CU_ASSERT_FATAL(g >= 0 && g < NGPU);
        f->tables[g]++;
        f->table_n[g] = ((nx_table_msg *)m)->n;
    } else if (m->type == NX_MSG_ROUTES) {
        CU_ASSERT_EQUAL(dst, FE_NODE);
        nx_routes_msg *r = (nx_routes_msg *)m;
        f->nroutes++;
        memset(f->routed, 0, sizeof f->routed);
        for (int k = 0; k < r->off[r->nsess]; k++)
            f->routed[r->gpu[k]]++;
    } else {
        CU_ASSERT_EQUAL_FATAL(m->type, NX_MSG_GPU_DOWN);
        CU_ASSERT_EQUAL(dst, FE_NODE);
        f->gpu_down[((nx_gpu_msg *)m)->gpu]++;
    }
    free(m);
}

static void on_epoch(void *ctx, const nx_plan *plan, const double *tput, const double *slo_us,
                     nx_time now, const char *why)
{
    fixture *f = ctx;
    (void)plan, (void)tput, (void)slo_us;
    CU_ASSERT_FATAL(f->nep < MAXEP);
    snprintf(f->why[f->nep], sizeof f->why[0], "%s", why);
    f->ep_at[f->nep++] = now;
}

static void setup(fixture *f)
{
    memset(f, 0, sizeof *f);
    char path[1024];
    snprintf(path, sizeof path, "%s/tests/real/restart.yml", nx_tu_root());
    CU_ASSERT_EQUAL_FATAL(nx_tu_load(&f->x, &f->db, path), 0);
    nx_policy_set pol;
    nx_errbuf eb;
    nx_err_clear(&eb);
    CU_ASSERT_EQUAL_FATAL(nx_policies_resolve(&f->x.combos[0], f->x.path, &pol, &eb), 0);
    nx_catalog_init(&f->cat, &f->x, &f->x.combos[0], &pol, 30, 1);
    nx_scheduler_cfg_fill(&f->cfg, &f->cat, NGPU, 1, FE_NODE);
    f->cfg.keepalive_timeout_s = 1;
    f->cfg.on_epoch = on_epoch;
    f->cfg.on_epoch_ctx = f;
    nx_sim_init(&f->sim, 1, 0, 0, deliver, f);
}

static void teardown(fixture *f)
{
    nx_sim_free(&f->sim);
    nx_catalog_free(&f->cat);
    nx_experiment_free(&f->x);
    nx_modeldb_free(&f->db);
}

static void nothing(nx_event *ev) { (void)ev; }

/* Run every event up to time s, and the clock to s. */
static void run_until(fixture *f, double s)
{
    nx_event stop = {.fn = nothing};
    nx_at(&f->sim.env, &stop, NX_SEC(s));
    while (nx_sim_step(&f->sim, NX_SEC(s)))
        ;
    CU_ASSERT_EQUAL(f->sim.now, NX_SEC(s));
}

/* A backend's keep-alive at time `at`, every beacon from then on. */
typedef struct ka_ev {
    nx_event ev;
    nx_scheduler *sc;
    int gpu;
    double every_s;
} ka_ev;

static void ka_fire(nx_event *ev)
{
    ka_ev *k = NX_CONTAINER_OF(ev, ka_ev, ev);
    nx_gpu_msg *m = nx_gpu_msg_new(NX_MSG_KEEPALIVE, k->gpu);
    m->m.src = nx_node_backend(k->gpu);
    m->m.dst = NX_NODE_SCHEDULER;
    nx_scheduler_recv(k->sc, &m->m);
    nx_at(k->sc->env, ev, ev->time + NX_SEC(k->every_s));
}

static bool plans_equal(const nx_plan *a, const nx_plan *b)
{
    for (int g = 0; g < a->ngpu; g++) {
        if (a->gpu[g].n != b->gpu[g].n)
            return false;
        for (int i = 0; i < a->gpu[g].n; i++)
            if (a->gpu[g].a[i].session != b->gpu[g].a[i].session ||
                a->gpu[g].a[i].batch != b->gpu[g].a[i].batch)
                return false;
    }
    return true;
}

/* The scheduler before the restart: started now, both GPUs planned, its
 * state exported into st and its plan (in sessions) into before. */
static void saved_state(fixture *f, nx_sched_state *st, nx_plan *before)
{
    nx_scheduler a;
    nx_scheduler_init(&a, &f->sim.env, &f->cfg);
    CU_ASSERT_EQUAL_FATAL(nx_scheduler_start(&a), 0);
    CU_ASSERT_EQUAL_FATAL(a.plan.used, NGPU); /* each GPU holds work */
    nx_sched_state_init(st, f->cat.nsess, 1, NGPU);
    CU_ASSERT_EQUAL_FATAL(nx_scheduler_export(&a, st), 0);
    CU_ASSERT(st->alive[0] == 1 && st->alive[1] == 1);
    nx_plan_init(before, NGPU, f->cat.nsess);
    nx_plan_copy(before, &a.eplan);
    nx_scheduler_stop(&a);
    nx_scheduler_free(&a);
}

static void test_restart_grace(void)
{
    fixture *f = nx_calloc(1, sizeof *f);
    setup(f);
    nx_sched_state st;
    nx_plan before;
    saved_state(f, &st, &before);
    run_until(f, 10); /* its beacon, cancelled, fires no more */

    /* restarted at t = 10 s: nothing attached yet, both GPUs unconfirmed */
    memset(f->tables, 0, sizeof f->tables);
    f->nroutes = 0;
    f->nep = 0;
    nx_scheduler b;
    nx_scheduler_init(&b, &f->sim.env, &f->cfg);
    char why[200];
    CU_ASSERT_EQUAL_FATAL(nx_scheduler_import(&b, &st, why, sizeof why), 0);
    CU_ASSERT(b.unconfirmed[0] == 1 && b.unconfirmed[1] == 1);
    CU_ASSERT_EQUAL(b.nalive, NGPU);
    ka_ev k0 = {.ev = {.fn = ka_fire}, .sc = &b, .gpu = 0, .every_s = f->x.sched.beacon_s};
    k0.ev.ctx = &k0;
    nx_at(&f->sim.env, &k0.ev, NX_SEC(10.5)); /* backend 0 attaches again after 0.5 s */
    CU_ASSERT_EQUAL_FATAL(nx_scheduler_start(&b), 0);
    run_until(f, 10);
    CU_ASSERT_EQUAL(f->nep, 1);
    CU_ASSERT_STRING_EQUAL(f->why[0], "initial");
    CU_ASSERT(plans_equal(&b.eplan, &before)); /* the saved plan, on both GPUs */
    CU_ASSERT_EQUAL(f->nroutes, 1);
    CU_ASSERT(f->routed[0] > 0 && f->routed[1] > 0); /* routes name both */
    CU_ASSERT_EQUAL(f->tables[0], 1);
    CU_ASSERT_EQUAL(f->tables[1], 1);

    /* until the timeout: backend 0 confirmed (its table again, no epoch),
     * backend 1 still unconfirmed and routed to, nobody told it is down */
    run_until(f, 10.99);
    CU_ASSERT_EQUAL(b.unconfirmed[0], 0);
    CU_ASSERT_EQUAL(b.unconfirmed[1], 1);
    CU_ASSERT_EQUAL(b.restored_back, 1);
    CU_ASSERT_EQUAL(f->tables[0], 2);
    CU_ASSERT_EQUAL(f->table_n[0], before.gpu[0].n);
    CU_ASSERT_EQUAL(f->tables[1], 1);
    CU_ASSERT_EQUAL(f->nep, 1);
    CU_ASSERT_EQUAL(f->nroutes, 1);
    CU_ASSERT(f->routed[0] > 0 && f->routed[1] > 0);
    CU_ASSERT(f->gpu_down[0] == 0 && f->gpu_down[1] == 0);
    CU_ASSERT_EQUAL(b.failures, 0);

    /* the first beacon past 1 s without a word from backend 1: dead, re-planned
     * without it (at 11.25 s: beacons every 0.25 s from 10 s) */
    run_until(f, 11.5);
    CU_ASSERT_EQUAL(b.unconfirmed[1], 0);
    CU_ASSERT_EQUAL(b.alive[1], 0);
    CU_ASSERT_EQUAL(b.alive[0], 1);
    CU_ASSERT_EQUAL(b.restored_lost, 1);
    CU_ASSERT_EQUAL(b.failures, 1);
    CU_ASSERT_EQUAL(f->gpu_down[1], 1);
    CU_ASSERT_EQUAL(f->gpu_down[0], 0);
    CU_ASSERT_EQUAL_FATAL(f->nep, 2);
    CU_ASSERT_STRING_EQUAL(f->why[1], "failure");
    CU_ASSERT_EQUAL(f->ep_at[1], NX_SEC(11.25));
    CU_ASSERT_EQUAL(f->nroutes, 2);
    CU_ASSERT(f->routed[0] > 0);
    CU_ASSERT_EQUAL(f->routed[1], 0); /* nothing routed to the dead GPU */
    CU_ASSERT_EQUAL(b.eplan.gpu[1].n, 0);

    nx_scheduler_stop(&b);
    nx_scheduler_free(&b);
    nx_cancel(&f->sim.env, &k0.ev);
    nx_plan_free(&before);
    nx_sched_state_free(&st);
    teardown(f);
    free(f);
}

/* set_alive() before the start settles an unconfirmed GPU either way; an
 * alive flag other than 0 or 1 is refused; set_unconfirmed()'s `since` is
 * when the window opened, whenever the engine starts. */
static void test_restart_settled(void)
{
    fixture *f = nx_calloc(1, sizeof *f);
    setup(f);
    nx_sched_state st;
    nx_plan before;
    saved_state(f, &st, &before);
    f->nep = 0;
    nx_scheduler b;
    nx_scheduler_init(&b, &f->sim.env, &f->cfg);
    char why[200];
    CU_ASSERT_EQUAL_FATAL(nx_scheduler_import(&b, &st, why, sizeof why), 0);
    nx_scheduler_set_alive(&b, 0, true);  /* its backend is attached */
    nx_scheduler_set_alive(&b, 1, false); /* its slot is empty */
    CU_ASSERT(b.unconfirmed[0] == 0 && b.unconfirmed[1] == 0);
    CU_ASSERT_EQUAL(b.nalive, 1);
    CU_ASSERT_EQUAL_FATAL(nx_scheduler_start(&b), 0);
    CU_ASSERT_EQUAL(f->nep, 1);
    CU_ASSERT_EQUAL(b.eplan.gpu[1].n, 0); /* planned without the empty slot */
    CU_ASSERT_EQUAL(b.restored_back + b.restored_lost, 0);
    run_until(f, 0.1);
    CU_ASSERT(f->routed[0] > 0);
    CU_ASSERT_EQUAL(f->routed[1], 0);
    nx_scheduler_stop(&b);
    nx_scheduler_free(&b);

    nx_scheduler c;
    nx_scheduler_init(&c, &f->sim.env, &f->cfg);
    st.alive[1] = 2;
    CU_ASSERT_EQUAL(nx_scheduler_import(&c, &st, why, sizeof why), NX_ERR_INVAL);
    CU_ASSERT_STRING_EQUAL(why, "GPU 1: alive is 2, not 0 or 1");
    CU_ASSERT(c.unconfirmed[0] == 0 && c.unconfirmed[1] == 0); /* unchanged */
    nx_scheduler_free(&c);

    /* an engine rebuilt during the window (the daemon's "start") keeps the
     * deadline: unconfirmed since 0, started at 0.1 s, dead at the beacon of
     * 1.1 s, not 1.35 s */
    nx_scheduler d;
    nx_scheduler_init(&d, &f->sim.env, &f->cfg);
    nx_scheduler_set_unconfirmed(&d, 0, 0);
    nx_scheduler_set_unconfirmed(&d, 1, 0);
    f->nep = 0;
    CU_ASSERT_EQUAL_FATAL(nx_scheduler_start(&d), 0);
    run_until(f, 1.2);
    CU_ASSERT_EQUAL_FATAL(f->nep, 2);
    CU_ASSERT_STRING_EQUAL(f->why[1], "failure");
    CU_ASSERT_EQUAL(f->ep_at[1], NX_SEC(1.1));
    CU_ASSERT_EQUAL(d.restored_lost, 2);
    CU_ASSERT_EQUAL(d.nalive, 0);
    nx_scheduler_stop(&d);
    nx_scheduler_free(&d);
    nx_plan_free(&before);
    nx_sched_state_free(&st);
    teardown(f);
    free(f);
}

int main(void)
{
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    CU_pSuite s = CU_add_suite("restart", NULL, NULL);
    CU_add_test(s, "restored GPUs: confirmed in time keep their work, silent ones re-planned",
                test_restart_grace);
    CU_add_test(s, "restored GPUs: set_alive settles them, the window runs from since",
                test_restart_settled);
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    unsigned fails = CU_get_number_of_failures();
    CU_cleanup_registry();
    return fails ? 1 : 0;
}
