/*
 * test_threadpool.c: the thread pool (src/base/threadpool.c).
 *
 * - every index of a parallel-for over [0, n) is visited exactly once, for
 *   many sizes and thread counts, with ig_pool_range's split;
 * - every worker id 0..nth-1 runs exactly once per ig_pool_run, and nth is
 *   the pool size;
 * - thousands of back-to-back runs (the decode pattern: short regions with
 *   no gap) and runs separated by sleeps longer than the spin time (workers
 *   and the caller go through the sleeping path), with IGNIS_SPIN_US=0 too;
 * - a worker's writes are visible to the caller after the run;
 * - free right after creation, while idle, and after the workers fell asleep.
 *
 * Criterion's runner cannot start under ThreadSanitizer (see
 * test_engine_stress.c), so a TSan build runs the same checks from its own
 * main() without the runner.
 */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/threadpool.h"
#include "testutil.h"

#ifndef IG_TSAN
#include <criterion/criterion.h>
#define CHECK(cond, ...) cr_assert(cond, __VA_ARGS__)
#else
static int g_failed;
#define CHECK(cond, ...)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "FAILED %s:%d: ", __FILE__, __LINE__);                                 \
            fprintf(stderr, __VA_ARGS__);                                                          \
            fprintf(stderr, "\n");                                                                 \
            g_failed = 1;                                                                          \
            return;                                                                                \
        }                                                                                          \
    } while (0)
#endif

static ig_pool *make_pool(int n) {
    ig_pool *p = NULL;
    ig_error err;
    ig_status st = ig_pool_new(n, &p, &err);
    return st == IG_OK ? p : NULL;
}

/* ---------------------------------------------------------- coverage */

typedef struct {
    long n;
    atomic_int *hits;      /* [n] */
    atomic_int *by_thread; /* [nth] runs per worker id */
    atomic_int bad_nth;
    int want_nth;
} cover_job;

static void cover_fn(void *ctx, int ith, int nth) {
    cover_job *j = ctx;
    if (nth != j->want_nth || ith < 0 || ith >= nth) {
        atomic_fetch_add(&j->bad_nth, 1);
        return;
    }
    atomic_fetch_add(&j->by_thread[ith], 1);
    long lo, hi;
    ig_pool_range(j->n, ith, nth, &lo, &hi);
    for (long i = lo; i < hi; i++) atomic_fetch_add_explicit(&j->hits[i], 1, memory_order_relaxed);
}

static void check_cover(ig_pool *p, long n, int n_runs) {
    const int nth = ig_pool_size(p);
    cover_job j = {.n = n, .want_nth = nth};
    j.hits = calloc((size_t)n + 1, sizeof *j.hits);
    j.by_thread = calloc((size_t)nth, sizeof *j.by_thread);
    CHECK(j.hits && j.by_thread, "out of memory");
    for (int r = 0; r < n_runs; r++) ig_pool_run(p, cover_fn, &j);
    CHECK(atomic_load(&j.bad_nth) == 0, "fn saw a wrong (ith, nth)");
    for (int t = 0; t < nth; t++)
        CHECK(atomic_load(&j.by_thread[t]) == n_runs,
              "n=%ld nth=%d: worker %d ran %d times, want %d", n, nth, t,
              atomic_load(&j.by_thread[t]), n_runs);
    for (long i = 0; i < n; i++)
        CHECK(atomic_load(&j.hits[i]) == n_runs,
              "n=%ld nth=%d: index %ld visited %d times, want %d", n, nth, i,
              atomic_load(&j.hits[i]), n_runs);
    free(j.hits);
    free(j.by_thread);
}

static void every_index_once(void) {
    static const int threads[] = {1, 2, 3, 4, 7, 16};
    static const long sizes[] = {0, 1, 2, 3, 5, 7, 15, 16, 17, 63, 64, 65, 1000, 4099};
    for (size_t a = 0; a < sizeof threads / sizeof threads[0]; a++) {
        ig_pool *p = make_pool(threads[a]);
        CHECK(p, "ig_pool_new(%d) failed", threads[a]);
        CHECK(ig_pool_size(p) == threads[a], "size %d, want %d", ig_pool_size(p), threads[a]);
        for (size_t b = 0; b < sizeof sizes / sizeof sizes[0]; b++) check_cover(p, sizes[b], 3);
        ig_pool_free(p);
    }
    /* NULL pool: runs inline as worker 0 of 1 */
    cover_job j = {.n = 10, .want_nth = 1};
    j.hits = calloc(10, sizeof *j.hits);
    j.by_thread = calloc(1, sizeof *j.by_thread);
    ig_pool_run(NULL, cover_fn, &j);
    for (int i = 0; i < 10; i++) CHECK(atomic_load(&j.hits[i]) == 1, "NULL pool: index %d", i);
    CHECK(ig_pool_size(NULL) == 1, "NULL pool size");
    free(j.hits);
    free(j.by_thread);
}

/* ---------------------------------------------------- repeated runs */

typedef struct {
    long *slots; /* [nth]: plain (non-atomic) writes, read by the caller after the run */
    long round;
} visible_job;

static void visible_fn(void *ctx, int ith, int nth) {
    visible_job *j = ctx;
    j->slots[ith] = j->round * 1000 + ith;
}

static void sleep_us(long us) {
    struct timespec ts = {us / 1000000, (us % 1000000) * 1000};
    nanosleep(&ts, NULL);
}

/* Back-to-back runs, then runs with pauses longer than the spin bound. */
static void repeated_runs(void) {
    for (int nth = 2; nth <= 4; nth++) {
        ig_pool *p = make_pool(nth);
        CHECK(p, "ig_pool_new");
        long slots[4];
        visible_job j = {slots, 0};
        for (long r = 0; r < 5000; r++) {
            j.round = r;
            ig_pool_run(p, visible_fn, &j);
            for (int t = 0; t < nth; t++)
                CHECK(slots[t] == r * 1000 + t, "run %ld: worker %d's write not visible", r, t);
        }
        for (long r = 0; r < 4; r++) {
            sleep_us(3000); /* > the default spin bound: workers are asleep */
            j.round = r;
            ig_pool_run(p, visible_fn, &j);
            for (int t = 0; t < nth; t++)
                CHECK(slots[t] == r * 1000 + t, "after sleep %ld: worker %d's write not visible", r,
                      t);
            check_cover(p, 33, 2);
        }
        ig_pool_free(p);
    }
}

/* A slow worker: the caller outlasts its spin bound and sleeps until the last one signals. */
static void slow_fn(void *ctx, int ith, int nth) {
    atomic_int *n = ctx;
    if (ith == nth - 1) sleep_us(3000);
    atomic_fetch_add(n, 1);
}

static void caller_waits_for_slow_worker(void) {
    ig_pool *p = make_pool(3);
    CHECK(p, "ig_pool_new");
    atomic_int n = 0;
    for (int r = 1; r <= 5; r++) {
        ig_pool_run(p, slow_fn, &n);
        CHECK(atomic_load(&n) == 3 * r, "run %d: %d calls finished, want %d", r, atomic_load(&n),
              3 * r);
    }
    ig_pool_free(p);
}

/* Runs of one pool from inside another pool's workers (each pool has one owner). */
typedef struct {
    ig_pool **inner; /* [nth] one pool per outer worker */
    atomic_int total;
} nested_job;

static void inner_fn(void *ctx, int ith, int nth) {
    atomic_int *t = ctx;
    atomic_fetch_add(t, 1);
}

static void outer_fn(void *ctx, int ith, int nth) {
    nested_job *j = ctx;
    for (int r = 0; r < 50; r++) ig_pool_run(j->inner[ith], inner_fn, &j->total);
}

static void nested_pools(void) {
    ig_pool *outer = make_pool(2);
    ig_pool *inner[2] = {make_pool(2), make_pool(3)};
    CHECK(outer && inner[0] && inner[1], "ig_pool_new");
    nested_job j = {inner, 0};
    for (int r = 0; r < 10; r++) ig_pool_run(outer, outer_fn, &j);
    CHECK(atomic_load(&j.total) == 10 * 50 * (2 + 3), "nested: %d inner calls, want %d",
          atomic_load(&j.total), 10 * 50 * 5);
    ig_pool_free(inner[0]);
    ig_pool_free(inner[1]);
    ig_pool_free(outer);
}

/* ------------------------------------------------------------- free */

static void free_while_idle(void) {
    for (int nth = 1; nth <= 8; nth++) {
        ig_pool *p = make_pool(nth); /* never ran: workers may still be starting */
        CHECK(p, "ig_pool_new");
        ig_pool_free(p);
    }
    ig_pool *p = make_pool(4);
    CHECK(p, "ig_pool_new");
    check_cover(p, 100, 1);
    ig_pool_free(p); /* right after a run: workers spinning */
    p = make_pool(4);
    CHECK(p, "ig_pool_new");
    check_cover(p, 100, 1);
    sleep_us(5000);
    ig_pool_free(p); /* workers asleep */
    ig_pool_free(NULL);
}

/* The sleep-at-once policy (IGNIS_SPIN_US=0) is read when a pool is made. */
static void no_spin_policy(void) {
    setenv("IGNIS_SPIN_US", "0", 1);
    ig_pool *p = make_pool(3);
    unsetenv("IGNIS_SPIN_US");
    CHECK(p, "ig_pool_new");
    check_cover(p, 1001, 500);
    ig_pool_free(p);
}

#ifndef IG_TSAN
Test(threadpool, every_index_once) {
    every_index_once();
}
Test(threadpool, repeated_runs) {
    repeated_runs();
}
Test(threadpool, caller_waits_for_slow_worker) {
    caller_waits_for_slow_worker();
}
Test(threadpool, nested_pools) {
    nested_pools();
}
Test(threadpool, free_while_idle) {
    free_while_idle();
}
Test(threadpool, no_spin_policy) {
    no_spin_policy();
}
#else
int main(void) {
    every_index_once();
    repeated_runs();
    caller_waits_for_slow_worker();
    nested_pools();
    free_while_idle();
    no_spin_policy();
    printf("threadpool (TSan build): %s\n", g_failed ? "FAILED" : "ok");
    return g_failed;
}
#endif
