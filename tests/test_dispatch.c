/* test_dispatch.c — engine/dispatch (central dispatch, Symphony's deferred
 * batching) on its own, driven by the simulator's env: when a batch goes out,
 * how big, to which GPU, what is dropped and when the dispatcher wakes up.
 *
 * The fixture: one profile l(b) = 900 + 100 b µs (std 0, batches 1..16),
 * multiplier 1, no pre/post-processing, no network, 100 µs dispatch slack,
 * stage budgets of 20 ms, so a session's largest batch B is 16 (2 l(16) =
 * 5 ms) and a queue of n < 16 calls whose earliest deadline is D has its
 * latest start at D - l(n + 1) - 100 µs. */
#include "dispatch.h"
#include "sim.h"

#include <CUnit/Basic.h>
#include <stdlib.h>
#include <string.h>

enum { NSESS = 2, NGPU = 2, MAXSENT = 16 };

typedef struct sent {
    nx_time at;
    int dst, n, session;
} sent;

typedef struct fixture {
    nx_sim sim;
    nx_profile prof;
    nx_session sess[NSESS];
    nx_route routes[NSESS];
    int route_gpu[NSESS][NGPU];
    double budget_us[NSESS];
    int outstanding[NGPU];
    nx_dispatch d;
    sent sent[MAXSENT];
    int nsent;
    nx_req *dropped[MAXSENT];
    int ndropped;
    nx_req reqs[64];
    int nreqs;
} fixture;

static void deliver(void *ctx, int dst, nx_msg *m)
{
    fixture *f = ctx;
    CU_ASSERT_EQUAL_FATAL(m->type, NX_MSG_BATCH);
    nx_batch_msg *b = (nx_batch_msg *)m;
    CU_ASSERT_FATAL(f->nsent < MAXSENT);
    f->sent[f->nsent++] = (sent){.at = f->sim.now, .dst = dst, .n = b->n,
                                 .session = b->n ? b->reqs[0]->session : -1};
    for (int i = 0; i < b->n; i++) { /* one session per batch, all marked in flight there */
        CU_ASSERT_EQUAL(b->reqs[i]->session, b->reqs[0]->session);
        CU_ASSERT_EQUAL(nx_node_backend(b->reqs[i]->gpu), dst);
        CU_ASSERT_EQUAL(b->reqs[i]->inflight, 1);
    }
    free(m);
}

static void on_drop(void *ctx, nx_req *r)
{
    fixture *f = ctx;
    CU_ASSERT_EQUAL(r->status, NX_REQ_DROPPED);
    CU_ASSERT_FATAL(f->ndropped < MAXSENT);
    f->dropped[f->ndropped++] = r;
}

/* Session s routed to the GPUs gpus[0..n). */
static void route(fixture *f, int s, const int *gpus, int n)
{
    f->routes[s].n = n;
    f->routes[s].gpu = f->route_gpu[s];
    for (int k = 0; k < n; k++)
        f->route_gpu[s][k] = gpus[k];
}

static void setup(fixture *f)
{
    memset(f, 0, sizeof *f);
    nx_sim_init(&f->sim, 1, 0, 0, deliver, f);
    nx_profile_init(&f->prof);
    snprintf(f->prof.model, sizeof f->prof.model, "m");
    f->prof.points = nx_calloc(2, sizeof *f->prof.points);
    f->prof.npoints = 2;
    f->prof.points[0] = (nx_profile_point){.batch = 1, .mean_us = 1000, .mem_mb = 1};
    f->prof.points[1] = (nx_profile_point){.batch = 16, .mean_us = 2500, .mem_mb = 1};
    nx_errbuf eb;
    nx_err_clear(&eb);
    CU_ASSERT_EQUAL_FATAL(nx_profile_finish(&f->prof, &eb), 0);
    CU_ASSERT_DOUBLE_EQUAL_FATAL(f->prof.mean_us[5], 1400, 1e-9); /* linear between points */
    for (int s = 0; s < NSESS; s++) {
        f->sess[s] = (nx_session){.id = s, .prof = &f->prof, .group = -1, .slo_us = 20000};
        f->budget_us[s] = 20000;
    }
    nx_dispatch_cfg dc = {.node = 1 + NGPU, .sessions = f->sess, .nsess = NSESS, .ngpu = NGPU,
                          .multiplier = 1, .net_ns = 0, .slack_ns = NX_US(100),
                          .routes = f->routes, .budget_us = f->budget_us,
                          .outstanding = f->outstanding, .on_drop = on_drop, .ctx = f};
    nx_dispatch_init(&f->d, &f->sim.env, &dc);
}

static void teardown(fixture *f)
{
    nx_dispatch_free(&f->d); /* takes back its timers still pending */
    CU_ASSERT_EQUAL(f->sim.heap.n, 0);
    nx_sim_free(&f->sim);
    nx_profile_free(&f->prof);
}

/* A call of session s, arrived now, due `deadline_us` from time zero. */
static nx_req *call(fixture *f, int s, double deadline_us)
{
    nx_req *r = &f->reqs[f->nreqs++];
    *r = (nx_req){.id = (uint64_t)f->nreqs, .session = s, .arrival = f->sim.now,
                  .deadline = NX_US(deadline_us), .status = NX_REQ_PENDING};
    nx_dispatch_push(&f->d, r);
    return r;
}

static void run_until(fixture *f, double us)
{
    while (nx_sim_step(&f->sim, NX_US(us)))
        ;
    f->sim.now = NX_US(us);
}

/* A lone call waits for its latest start; calls that join it make the batch
 * bigger and the start earlier; the superseded wake-up does nothing. */
static void test_deferral(void)
{
    fixture f;
    setup(&f);
    route(&f, 0, (int[]){0}, 1);
    nx_dispatch_routes(&f.d);
    call(&f, 0, 20000);
    nx_dispatch_session(&f.d, 0);
    CU_ASSERT_EQUAL(f.nsent, 0);                /* deferred: latest start 20000 - l(2) - 100 */
    CU_ASSERT_EQUAL(f.d.armed[0], NX_US(18800));
    run_until(&f, 5000);
    CU_ASSERT_EQUAL(f.nsent, 0);
    call(&f, 0, 25000);
    call(&f, 0, 25000);
    nx_dispatch_session(&f.d, 0);               /* n = 3: 20000 - l(4) - 100 */
    CU_ASSERT_EQUAL(f.d.armed[0], NX_US(18600));
    run_until(&f, 30000);
    CU_ASSERT_EQUAL_FATAL(f.nsent, 1);          /* the 18.8 ms timer was superseded */
    CU_ASSERT_EQUAL(f.sent[0].at, NX_US(18600));
    CU_ASSERT_EQUAL(f.sent[0].n, 3);
    CU_ASSERT_EQUAL(f.sent[0].dst, nx_node_backend(0));
    CU_ASSERT_EQUAL(f.outstanding[0], 3);
    CU_ASSERT_EQUAL(f.d.batches, 1);
    CU_ASSERT_EQUAL(f.d.busy_until[0], NX_US(18600 + 1200)); /* l(3) */
    CU_ASSERT_EQUAL(f.reqs[0].attempts, 1);
    CU_ASSERT_EQUAL(f.ndropped, 0);
    teardown(&f);
}

/* A full batch (B = 16 calls) goes at once; the next one is sent to arrive as
 * the first ends (pipelined), and no third one until a reply. */
static void test_full_batch_and_pipelining(void)
{
    fixture f;
    setup(&f);
    route(&f, 0, (int[]){1}, 1);
    nx_dispatch_routes(&f.d);
    for (int i = 0; i < 20; i++)
        call(&f, 0, 20000);
    nx_dispatch_session(&f.d, 0);
    run_until(&f, 1);
    CU_ASSERT_EQUAL_FATAL(f.nsent, 1);
    CU_ASSERT_EQUAL(f.sent[0].at, 0);
    CU_ASSERT_EQUAL(f.sent[0].n, 16);
    CU_ASSERT_EQUAL(f.sent[0].dst, nx_node_backend(1));
    CU_ASSERT_EQUAL(f.outstanding[1], 16);
    for (int i = 0; i < 16; i++)
        call(&f, 0, 20000);                     /* 20 waiting: a full batch again */
    nx_dispatch_session(&f.d, 0);
    CU_ASSERT_EQUAL(f.d.armed[1], NX_US(2500)); /* when the running batch ends */
    run_until(&f, 10000);
    CU_ASSERT_EQUAL_FATAL(f.nsent, 2);
    CU_ASSERT_EQUAL(f.sent[1].at, NX_US(2500));
    CU_ASSERT_EQUAL(f.sent[1].n, 16);
    CU_ASSERT_EQUAL(f.d.piped[1], 1);
    CU_ASSERT_EQUAL(f.outstanding[1], 32);
    CU_ASSERT_EQUAL(f.d.busy_until[1], NX_US(5000));
    /* the owner takes the replies: only when none is left does the GPU take more */
    f.outstanding[1] = 16;
    nx_dispatch_replied(&f.d, 1);
    CU_ASSERT_EQUAL(f.nsent, 2);
    f.outstanding[1] = 0;
    nx_dispatch_replied(&f.d, 1);               /* 4 left, deadline 20 ms: deferred again */
    CU_ASSERT_EQUAL(f.d.piped[1], 0);
    CU_ASSERT_EQUAL(f.d.armed[1], NX_US(20000 - 1400 - 100));
    run_until(&f, 30000);
    CU_ASSERT_EQUAL_FATAL(f.nsent, 3);
    CU_ASSERT_EQUAL(f.sent[2].n, 4);
    CU_ASSERT_EQUAL(f.ndropped, 0);
    teardown(&f);
}

/* Two sessions share GPU 0: the one with the earlier latest start goes first
 * (EDF), early enough to leave room for one batch of the other's largest. */
static void test_edf_and_reserve(void)
{
    fixture f;
    setup(&f);
    route(&f, 0, (int[]){0}, 1);
    route(&f, 1, (int[]){0}, 1);
    nx_dispatch_routes(&f.d);
    call(&f, 0, 20000);
    nx_dispatch_session(&f.d, 0);
    CU_ASSERT_EQUAL(f.d.armed[0], NX_US(18800));
    run_until(&f, 1000);
    call(&f, 1, 15000);
    nx_dispatch_session(&f.d, 1);
    /* session 1 first: 15000 - l(2) - 100 = 13800, less session 0's l(16) */
    CU_ASSERT_EQUAL(f.d.armed[0], NX_US(13800 - 2500));
    run_until(&f, 12300);
    CU_ASSERT_EQUAL_FATAL(f.nsent, 1);
    CU_ASSERT_EQUAL(f.sent[0].at, NX_US(11300));
    CU_ASSERT_EQUAL(f.sent[0].session, 1);
    CU_ASSERT_EQUAL(f.sent[0].n, 1);
    f.outstanding[0] = 0;                        /* its reply */
    nx_dispatch_replied(&f.d, 0);
    CU_ASSERT_EQUAL(f.d.armed[0], NX_US(18800 - 2500));
    run_until(&f, 30000);
    CU_ASSERT_EQUAL_FATAL(f.nsent, 2);
    CU_ASSERT_EQUAL(f.sent[1].at, NX_US(16300));
    CU_ASSERT_EQUAL(f.sent[1].session, 0);
    teardown(&f);
}

/* A call that could not be served even alone is dropped before it costs the
 * GPU anything, and so is every call of a session without a route. */
static void test_drops(void)
{
    fixture f;
    setup(&f);
    route(&f, 0, (int[]){0}, 1);
    nx_dispatch_routes(&f.d);
    run_until(&f, 1000);
    nx_req *late = call(&f, 0, 1900);           /* l(1) = 1000 ends at 2000 */
    nx_req *ok = call(&f, 0, 2000);             /* ends exactly in time */
    nx_dispatch_session(&f.d, 0);
    CU_ASSERT_EQUAL_FATAL(f.ndropped, 1);
    CU_ASSERT_PTR_EQUAL(f.dropped[0], late);
    CU_ASSERT_EQUAL(ok->status, NX_REQ_PENDING);
    run_until(&f, 1001);                         /* its latest start has passed: now */
    CU_ASSERT_EQUAL_FATAL(f.nsent, 1);
    CU_ASSERT_EQUAL(f.sent[0].at, NX_US(1000));
    CU_ASSERT_EQUAL(f.sent[0].n, 1);
    call(&f, 1, 20000);
    call(&f, 1, 20000);
    nx_dispatch_session(&f.d, 1);                /* session 1 has no route */
    CU_ASSERT_EQUAL(f.ndropped, 3);
    CU_ASSERT_EQUAL(f.d.drops, 3);
    CU_ASSERT_EQUAL(nx_rq_len(&f.d.cq[1]), 0);
    CU_ASSERT_EQUAL(f.nsent, 1);
    call(&f, 0, 50000);                          /* deferred: a wake-up pending at free */
    nx_dispatch_session(&f.d, 0);
    CU_ASSERT_EQUAL(f.sim.heap.n, 1);
    teardown(&f);
}

int main(void)
{
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 2;
    CU_pSuite s = CU_add_suite("dispatch", NULL, NULL);
    CU_add_test(s, "a lone call waits for its latest start; joiners bring it forward",
                test_deferral);
    CU_add_test(s, "a full batch goes at once; one more pipelined until a reply",
                test_full_batch_and_pipelining);
    CU_add_test(s, "sessions sharing a GPU: EDF, room kept for the other", test_edf_and_reserve);
    CU_add_test(s, "hopeless calls and unrouted sessions are dropped", test_drops);
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    unsigned fails = CU_get_number_of_failures() + CU_get_number_of_tests_failed();
    CU_cleanup_registry();
    return fails ? 1 : 0;
}
