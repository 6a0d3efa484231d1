/* loop.h — the event loop each daemon runs on its one engine thread.
 *
 * It owns: a timer heap of the engine's intrusive nx_events ordered by (time,
 * arming sequence), so equal times fire in the order they were armed, as in
 * the simulator; a timerfd armed to the earliest timer (nanosecond
 * resolution, timer slack set to 1 ns); a mailbox that other threads (the
 * gRPC poller, executor threads) post intrusive nx_post nodes to, woken by an
 * eventfd; "deferred" posts that run once after the events of the current
 * iteration (to coalesce writes); file descriptors watched through epoll; and
 * SIGTERM/SIGINT read from a signalfd.
 *
 * Threads: everything here runs on the thread that calls nx_loop_run(),
 * except nx_loop_post(), which any thread may call. nx_loop_init() blocks
 * SIGTERM, SIGINT and SIGCHLD in the calling thread and ignores SIGPIPE:
 * call it before any other thread is created (gRPC's included), so that
 * every thread inherits the mask and the signals reach only the signalfd.
 * No process-wide flag or global is needed for signals.
 *
 * Time is CLOCK_MONOTONIC in nanoseconds (nx_time), the same clock in every
 * process of a host. Timers sleep in epoll_pwait2 (Linux 5.11); on older
 * kernels, or with NX_LOOP_TIMERFD=1 in the environment, in a timerfd. */
#ifndef NX_LOOP_H
#define NX_LOOP_H

#include <stdint.h>

#include "env.h"

/* A node posted to the loop: fn(p) runs on the loop thread. Intrusive and
 * caller-owned; must not be posted again before fn has started. */
typedef struct nx_post nx_post;
typedef void (*nx_post_fn)(nx_post *p);
struct nx_post {
    nx_post *next;
    nx_post_fn fn;
    void *ctx;
    int arg;            /* set by the poster (e.g. a completion's success flag) */
};

typedef struct nx_loop nx_loop;
typedef void (*nx_signal_fn)(void *ctx, int signo);
typedef void (*nx_fd_fn)(void *ctx, int fd, uint32_t events);

int nx_loop_init(nx_loop **out, nx_errbuf *eb);
/* Timers still armed are forgotten (their owners free them); watched fds are
 * not closed. */
void nx_loop_free(nx_loop *l);

nx_time nx_loop_now(const nx_loop *l);

/* Fire ev->fn(ev) at ev->time (at once if it is past). ev must not be pending. */
void nx_loop_at(nx_loop *l, nx_event *ev);
/* Remove a pending timer; false if it was not pending. O(number of timers). */
bool nx_loop_cancel(nx_loop *l, nx_event *ev);
size_t nx_loop_timers(const nx_loop *l);

/* Any thread: run p->fn(p) on the loop thread soon. */
void nx_loop_post(nx_loop *l, nx_post *p);
/* Loop thread: run p->fn(p) once the events being handled now are done,
 * before the loop sleeps again. */
void nx_loop_defer(nx_loop *l, nx_post *p);

/* Watch fd (EPOLLIN/EPOLLOUT/...): fn(ctx, fd, events) on the loop thread.
 * Returns 0 or NX_ERR_IO. */
int nx_loop_watch(nx_loop *l, int fd, uint32_t events, nx_fd_fn fn, void *ctx);
void nx_loop_unwatch(nx_loop *l, int fd);

/* SIGTERM, SIGINT and SIGCHLD are delivered to fn (default: none, the
 * signal is read and ignored). */
void nx_loop_on_signal(nx_loop *l, nx_signal_fn fn, void *ctx);

/* Run until nx_loop_stop(); may be called again afterwards. Returns 0, or
 * NX_ERR_IO if epoll fails. */
int nx_loop_run(nx_loop *l);
void nx_loop_stop(nx_loop *l);

/* Counters (for benchmarks). */
typedef struct nx_loop_stats {
    uint64_t iterations, timers_fired, posts, wakeups;
} nx_loop_stats;
void nx_loop_get_stats(const nx_loop *l, nx_loop_stats *st);

#endif
