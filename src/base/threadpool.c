/*
 * threadpool.c: see threadpool.h. Workers sleep on a condition variable
 * between runs and are woken by a generation counter; the caller waits for a
 * countdown of finished workers. Good enough for the reference path; the
 * fast-kernels work measures a spinning alternative.
 */
#include "base/threadpool.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <unistd.h>

#include "base/error.h"

struct ig_pool {
    int n_threads; /* including the caller */
    pthread_t *threads;
    pthread_mutex_t mu;
    pthread_cond_t wake; /* workers wait for a new generation */
    pthread_cond_t done; /* the caller waits for n_pending == 0 */
    unsigned long generation;
    int n_pending;
    bool stop;
    ig_pool_fn fn;
    void *ctx;
};

typedef struct {
    ig_pool *pool;
    int ith;
} worker_arg;

static void *worker_main(void *arg_) {
    worker_arg *arg = arg_;
    ig_pool *p = arg->pool;
    int ith = arg->ith;
    free(arg);
    unsigned long seen = 0;
    pthread_mutex_lock(&p->mu);
    for (;;) {
        while (!p->stop && p->generation == seen) pthread_cond_wait(&p->wake, &p->mu);
        if (p->stop) break;
        seen = p->generation;
        ig_pool_fn fn = p->fn;
        void *ctx = p->ctx;
        pthread_mutex_unlock(&p->mu);
        fn(ctx, ith, p->n_threads);
        pthread_mutex_lock(&p->mu);
        if (--p->n_pending == 0) pthread_cond_signal(&p->done);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

ig_status ig_pool_new(int n_threads, ig_pool **out, ig_error *err) {
    if (n_threads <= 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        n_threads = n > 0 ? (int)n : 1;
    }
    if (n_threads > 512) return ig_errorf(err, IG_EINVAL, "threads: %d is too many", n_threads);
    ig_pool *p = calloc(1, sizeof *p);
    if (!p) return ig_errorf(err, IG_ENOMEM, "threads: out of memory");
    p->n_threads = n_threads;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->wake, NULL);
    pthread_cond_init(&p->done, NULL);
    p->threads = calloc((size_t)n_threads, sizeof *p->threads);
    if (!p->threads) goto fail;
    for (int i = 1; i < n_threads; i++) {
        worker_arg *a = malloc(sizeof *a);
        if (a) {
            a->pool = p;
            a->ith = i;
        }
        if (!a || pthread_create(&p->threads[i], NULL, worker_main, a) != 0) {
            free(a);
            p->n_threads = i; /* only workers 1..i-1 exist: stop and join those */
            ig_pool_free(p);
            return ig_errorf(err, IG_ENOMEM, "threads: could not start worker %d", i);
        }
    }
    *out = p;
    return IG_OK;
fail:
    free(p->threads);
    free(p);
    return ig_errorf(err, IG_ENOMEM, "threads: out of memory");
}

void ig_pool_free(ig_pool *p) {
    if (!p) return;
    pthread_mutex_lock(&p->mu);
    p->stop = true;
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->mu);
    for (int i = 1; i < p->n_threads; i++) pthread_join(p->threads[i], NULL);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->wake);
    pthread_cond_destroy(&p->done);
    free(p->threads);
    free(p);
}

int ig_pool_size(const ig_pool *p) { return p ? p->n_threads : 1; }

void ig_pool_run(ig_pool *p, ig_pool_fn fn, void *ctx) {
    if (!p || p->n_threads == 1) {
        fn(ctx, 0, 1);
        return;
    }
    pthread_mutex_lock(&p->mu);
    p->fn = fn;
    p->ctx = ctx;
    p->n_pending = p->n_threads - 1;
    p->generation++;
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->mu);
    fn(ctx, 0, p->n_threads);
    pthread_mutex_lock(&p->mu);
    while (p->n_pending > 0) pthread_cond_wait(&p->done, &p->mu);
    pthread_mutex_unlock(&p->mu);
}
