/*
 * threadpool.h: a fixed set of worker threads that run one parallel-for at a
 * time. The calling thread takes part as worker 0, so a pool of 1 thread runs
 * everything inline.
 *
 * Threads: one thread (the owner, e.g. the engine thread) calls ig_pool_run;
 * workers exist only to help inside that call and hold no state between
 * calls. The fast-kernels work may replace the wake-up mechanism; the
 * interface stays.
 */
#ifndef IG_BASE_THREADPOOL_H
#define IG_BASE_THREADPOOL_H

#include "ignis.h"

typedef struct ig_pool ig_pool;

/* fn(ctx, ith, nth): worker ith of nth does its share (ith in [0, nth)). */
typedef void (*ig_pool_fn)(void *ctx, int ith, int nth);

/* Start n_threads - 1 workers (n_threads <= 0 means the number of online CPUs). */
ig_status ig_pool_new(int n_threads, ig_pool **out, ig_error *err);
void ig_pool_free(ig_pool *p);
int ig_pool_size(const ig_pool *p);

/* Run fn on every thread and return when all are done. p may be NULL: runs inline, nth = 1. */
void ig_pool_run(ig_pool *p, ig_pool_fn fn, void *ctx);

/* Split [0, n) into nth near-equal contiguous ranges; range ith is [*lo, *hi). */
static inline void ig_pool_range(long n, int ith, int nth, long *lo, long *hi) {
    long per = n / nth, rem = n % nth;
    *lo = ith * per + (ith < rem ? ith : rem);
    *hi = *lo + per + (ith < rem ? 1 : 0);
}

#endif
