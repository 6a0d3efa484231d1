/* loop.c — a daemon's event loop (see loop.h): epoll over an eventfd (the
 * cross-thread mailbox), a signalfd (SIGTERM, SIGINT, SIGCHLD) and whatever
 * fds the daemon watches, with the earliest engine timer as epoll_pwait2's
 * nanosecond timeout (or, on kernels without it, a timerfd re-armed only when
 * the earliest deadline changes).
 *
 * One iteration: fire every timer that is due (in (time, seq) order), run the
 * posts taken from the mailbox in the order they were posted, run the
 * deferred posts, then sleep until an fd is ready or the next timer is due.
 * The mailbox is a mutex-protected intrusive list; a poster writes the
 * eventfd only when the loop is asleep and nobody has woken it yet, so a busy
 * loop takes posts without a system call and a burst costs one wake-up. */
#include "loop.h"
#include "heap.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

typedef struct watcher {
    struct watcher *next;
    int fd;
    nx_fd_fn fn;
    void *ctx;
    bool dead;               /* unwatched while its event may still be in hand */
} watcher;

struct nx_loop {
    int epfd, evfd, tfd, sfd;
    nx_heap heap;            /* timers */
    uint64_t seq;
    nx_time armed;           /* what the timerfd is armed for; NX_TIME_NEVER: disarmed */
    bool pwait2;             /* epoll_pwait2 works: timers need no timerfd */
    /* mailbox (any thread) */
    pthread_mutex_t mu;
    nx_post *head, *tail;
    bool sleeping;           /* in epoll: a post must write the eventfd */
    bool signalled;          /* the eventfd was written since the loop last read it */
    /* deferred (loop thread) */
    nx_post *dhead, *dtail;
    watcher *watchers;
    watcher *graveyard;      /* unwatched this iteration: freed after it */
    watcher internal[3];     /* eventfd, timerfd, signalfd */
    nx_signal_fn on_signal;
    void *sig_ctx;
    bool stop;
    nx_loop_stats st;
};

nx_time nx_loop_now(const nx_loop *l)
{
    (void)l;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (nx_time)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* ---- timers: engine/heap.h's (time, seq) heap ------------------------------- */

void nx_loop_at(nx_loop *l, nx_event *ev)
{
    ev->seq = l->seq++;
    nx_heap_push(&l->heap, ev);
}

bool nx_loop_cancel(nx_loop *l, nx_event *ev)
{
    return nx_heap_remove(&l->heap, ev);
}

size_t nx_loop_timers(const nx_loop *l) { return l->heap.n; }

/* ---- mailbox and deferred posts ---------------------------------------------- */

void nx_loop_post(nx_loop *l, nx_post *p)
{
    p->next = NULL;
    pthread_mutex_lock(&l->mu);
    if (l->tail)
        l->tail->next = p;
    else
        l->head = p;
    l->tail = p;
    bool wake = l->sleeping && !l->signalled;
    if (wake)
        l->signalled = true;
    pthread_mutex_unlock(&l->mu);
    if (wake) {
        uint64_t one = 1;
        ssize_t w;
        do
            w = write(l->evfd, &one, sizeof one);
        while (w < 0 && errno == EINTR);
    }
}

void nx_loop_defer(nx_loop *l, nx_post *p)
{
    p->next = NULL;
    if (l->dtail)
        l->dtail->next = p;
    else
        l->dhead = p;
    l->dtail = p;
}

static void run_mailbox(nx_loop *l)
{
    pthread_mutex_lock(&l->mu);
    nx_post *p = l->head;
    l->head = l->tail = NULL;
    pthread_mutex_unlock(&l->mu);
    while (p) {
        nx_post *next = p->next;
        l->st.posts++;
        p->fn(p);
        p = next;
    }
}

static void run_deferred(nx_loop *l)
{
    while (l->dhead) {
        nx_post *p = l->dhead;
        l->dhead = p->next;
        if (!l->dhead)
            l->dtail = NULL;
        p->fn(p);
    }
}

/* ---- timers --------------------------------------------------------------------- */

static void fire_due(nx_loop *l)
{
    nx_time now = nx_loop_now(l);
    nx_event *top;
    while ((top = nx_heap_top(&l->heap)) && top->time <= now) {
        nx_event *ev = nx_heap_pop(&l->heap);
        l->st.timers_fired++;
        ev->fn(ev);
        if ((top = nx_heap_top(&l->heap)) && top->time > now)
            now = nx_loop_now(l); /* handlers take time: look again */
    }
}

static void arm_timerfd(nx_loop *l)
{
    nx_time want = l->heap.n > 0 ? nx_heap_top(&l->heap)->time : NX_TIME_NEVER;
    if (want == l->armed)
        return;
    struct itimerspec its;
    memset(&its, 0, sizeof its);
    if (want != NX_TIME_NEVER) {
        if (want <= 0)
            want = 1; /* 0 would disarm */
        its.it_value.tv_sec = want / 1000000000;
        its.it_value.tv_nsec = want % 1000000000;
    }
    if (timerfd_settime(l->tfd, TFD_TIMER_ABSTIME, &its, NULL) == 0)
        l->armed = want;
}

/* ---- fds and signals ---------------------------------------------------------- */

static void on_evfd(void *ctx, int fd, uint32_t events)
{
    (void)events;
    nx_loop *l = ctx;
    uint64_t v;
    ssize_t r;
    do
        r = read(fd, &v, sizeof v);
    while (r < 0 && errno == EINTR);
    pthread_mutex_lock(&l->mu);
    l->signalled = false;
    pthread_mutex_unlock(&l->mu);
    run_mailbox(l);
}

/* Before sleeping: false if posts arrived (run them instead); else the loop
 * is marked asleep, so the next post wakes it. */
static bool may_sleep(nx_loop *l)
{
    pthread_mutex_lock(&l->mu);
    bool empty = l->head == NULL;
    l->sleeping = empty;
    pthread_mutex_unlock(&l->mu);
    return empty;
}

static void awake(nx_loop *l)
{
    pthread_mutex_lock(&l->mu);
    l->sleeping = false;
    pthread_mutex_unlock(&l->mu);
}

static void on_tfd(void *ctx, int fd, uint32_t events)
{
    (void)events;
    nx_loop *l = ctx;
    uint64_t v;
    ssize_t r;
    do
        r = read(fd, &v, sizeof v);
    while (r < 0 && errno == EINTR);
    l->armed = NX_TIME_NEVER; /* expired: re-arm on the next pass */
}

static void on_sfd(void *ctx, int fd, uint32_t events)
{
    (void)events;
    nx_loop *l = ctx;
    struct signalfd_siginfo si;
    while (read(fd, &si, sizeof si) == (ssize_t)sizeof si)
        if (l->on_signal)
            l->on_signal(l->sig_ctx, (int)si.ssi_signo);
}

static int add_fd(nx_loop *l, watcher *w, uint32_t events)
{
    struct epoll_event ee;
    memset(&ee, 0, sizeof ee);
    ee.events = events;
    ee.data.ptr = w;
    return epoll_ctl(l->epfd, EPOLL_CTL_ADD, w->fd, &ee);
}

int nx_loop_watch(nx_loop *l, int fd, uint32_t events, nx_fd_fn fn, void *ctx)
{
    watcher *w = nx_calloc(1, sizeof *w);
    w->fd = fd;
    w->fn = fn;
    w->ctx = ctx;
    if (add_fd(l, w, events) != 0) {
        free(w);
        return NX_ERR_IO;
    }
    w->next = l->watchers;
    l->watchers = w;
    return 0;
}

void nx_loop_unwatch(nx_loop *l, int fd)
{
    for (watcher **pw = &l->watchers; *pw; pw = &(*pw)->next)
        if ((*pw)->fd == fd) {
            watcher *w = *pw;
            *pw = w->next;
            epoll_ctl(l->epfd, EPOLL_CTL_DEL, fd, NULL);
            w->dead = true;
            w->next = l->graveyard;
            l->graveyard = w;
            return;
        }
}

void nx_loop_on_signal(nx_loop *l, nx_signal_fn fn, void *ctx)
{
    l->on_signal = fn;
    l->sig_ctx = ctx;
}

static void free_watchers(watcher *w)
{
    while (w) {
        watcher *next = w->next;
        free(w);
        w = next;
    }
}

/* ---- life cycle ------------------------------------------------------------------ */

int nx_loop_init(nx_loop **out, nx_errbuf *eb)
{
    *out = NULL;
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGCHLD);
    if (pthread_sigmask(SIG_BLOCK, &set, NULL) != 0) {
        nx_err_set(eb, NX_ERR_IO, "loop: cannot block signals");
        return NX_ERR_IO;
    }
    signal(SIGPIPE, SIG_IGN);
    prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0); /* timers within ns, not the 50 us default */
    nx_loop *l = nx_calloc(1, sizeof *l);
    l->armed = NX_TIME_NEVER;
    pthread_mutex_init(&l->mu, NULL);
    l->epfd = epoll_create1(EPOLL_CLOEXEC);
    l->evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    l->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    l->sfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
    l->internal[0] = (watcher){.fd = l->evfd, .fn = on_evfd, .ctx = l};
    l->internal[1] = (watcher){.fd = l->tfd, .fn = on_tfd, .ctx = l};
    l->internal[2] = (watcher){.fd = l->sfd, .fn = on_sfd, .ctx = l};
    if (l->epfd < 0 || l->evfd < 0 || l->tfd < 0 || l->sfd < 0 ||
        add_fd(l, &l->internal[0], EPOLLIN) || add_fd(l, &l->internal[1], EPOLLIN) ||
        add_fd(l, &l->internal[2], EPOLLIN)) {
        nx_err_set(eb, NX_ERR_IO, "loop: cannot create epoll/eventfd/timerfd/signalfd: %s",
                   strerror(errno));
        nx_loop_free(l);
        return NX_ERR_IO;
    }
    struct epoll_event ev;
    struct timespec zero = {0, 0};
    /* NX_LOOP_TIMERFD=1 forces the timerfd path (tests it where epoll_pwait2 works) */
    const char *force = getenv("NX_LOOP_TIMERFD");
    l->pwait2 = !(force && force[0] == '1') && epoll_pwait2(l->epfd, &ev, 1, &zero, NULL) >= 0;
    *out = l;
    return 0;
}

void nx_loop_free(nx_loop *l)
{
    if (!l)
        return;
    free_watchers(l->watchers);
    free_watchers(l->graveyard);
    int fds[4] = {l->epfd, l->evfd, l->tfd, l->sfd};
    for (int i = 0; i < 4; i++)
        if (fds[i] >= 0)
            close(fds[i]);
    pthread_mutex_destroy(&l->mu);
    nx_heap_free(&l->heap);
    free(l);
}

void nx_loop_stop(nx_loop *l) { l->stop = true; }

void nx_loop_get_stats(const nx_loop *l, nx_loop_stats *st) { *st = l->st; }

int nx_loop_run(nx_loop *l)
{
    l->stop = false;
    struct epoll_event evs[32];
    while (!l->stop) {
        l->st.iterations++;
        fire_due(l);
        run_mailbox(l);
        run_deferred(l);
        if (l->stop)
            break;
        if (!may_sleep(l))
            continue;
        int n;
        if (l->pwait2) {
            struct timespec ts, *tp = NULL;
            if (l->heap.n > 0) {
                nx_time d = nx_heap_top(&l->heap)->time - nx_loop_now(l);
                if (d < 0)
                    d = 0;
                ts.tv_sec = d / 1000000000;
                ts.tv_nsec = d % 1000000000;
                tp = &ts;
            }
            n = epoll_pwait2(l->epfd, evs, 32, tp, NULL);
        } else {
            arm_timerfd(l);
            n = epoll_wait(l->epfd, evs, 32, -1);
        }
        awake(l);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return NX_ERR_IO;
        }
        l->st.wakeups++;
        for (int i = 0; i < n; i++) {
            watcher *w = evs[i].data.ptr;
            if (!w->dead)
                w->fn(w->ctx, w->fd, evs[i].events);
        }
        free_watchers(l->graveyard);
        l->graveyard = NULL;
        run_deferred(l);
    }
    return 0;
}
