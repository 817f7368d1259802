/*
 * test_engine_rcache.c: the response cache (ig_engine_config.response_cache)
 * on the fake model: a finished greedy request's events answer an identical
 * later one without a forward pass (same events, its own id, user data and
 * telemetry, counted in n_response_cache_hits); different, sampled,
 * cancelled or uncached requests are computed; the cache keeps the most
 * recently used entries; off by default; poll and callback modes.
 */
#include <criterion/criterion.h>
#include <time.h>

#include "engine_testutil.h"
#include "fake_model.h"
#include "ignis.h"

#define V 64

static void prompt_of(int32_t *p, int32_t n, int32_t seed) {
    for (int32_t i = 0; i < n; i++) p[i] = (int32_t)((seed * 31 + i * 7 + 3) % V);
}

static ig_engine *mk_engine(ig_model *m, int32_t response_cache, bool coalesce, ig_event_fn cb,
                            void *user) {
    ig_engine_config c = ig_engine_config_default();
    c.model = m;
    c.n_threads = 1;
    c.kv_blocks = 128;
    c.block_size = 4;
    c.max_batch_tokens = 32;
    c.max_seqs = 8;
    c.prefix_caching = false; /* so the fake's call count is exactly the computed work */
    c.response_cache = response_cache;
    c.coalesce = coalesce;
    c.on_event = cb;
    c.on_event_user = user;
    ig_engine *e = NULL;
    ig_error err = {0};
    cr_assert_eq(ig_engine_new(&c, &e, &err), IG_OK, "%s", err.message);
    return e;
}

static ig_request_id submit(ig_engine *e, const int32_t *p, int32_t n, int32_t max_tokens,
                            float temperature, uintptr_t tag) {
    ig_sampler_params sp = ig_sampler_params_default();
    sp.temperature = temperature;
    sp.seed = 7;
    ig_request r = {.prompt = p,
                    .n_prompt = (size_t)n,
                    .sampling = &sp,
                    .max_tokens = max_tokens,
                    .n_logprobs = 2,
                    .user_data = tag};
    ig_request_id id = 0;
    ig_error err = {0};
    cr_assert_eq(ig_engine_submit(e, &r, &id, &err), IG_OK, "%s", err.message);
    return id;
}

/* Poll request id's events into the sink until it finishes. */
static void poll_done(ig_engine *e, sink *k, ig_request_id id) {
    while (sink_find(k, id)->n_finished == 0) {
        ig_event ev[8];
        size_t n = 0;
        cr_assert_eq(ig_engine_poll(e, id, ev, 8, &n, 10000), IG_OK);
        for (size_t i = 0; i < n; i++) {
            sink_on_event(k, &ev[i]);
            ig_event_release(&ev[i]);
        }
    }
}

/* Submit, then poll to the end; returns the id. */
static ig_request_id run_one(ig_engine *e, sink *k, const int32_t *p, int32_t n, int32_t max_tokens,
                             float temperature, uintptr_t tag) {
    ig_request_id id = submit(e, p, n, max_tokens, temperature, tag);
    poll_done(e, k, id);
    return id;
}

static int32_t n_calls(ig_model *m) {
    return fake_of(m)->n_calls;
}

/* Hits, once the stats of every finished request are out (FINISHED events are
 * published before the stats of their step). */
static uint64_t n_hits(ig_engine *e) {
    ig_engine_stats st;
    for (int i = 0; i < 10000; i++) {
        ig_engine_stats_get(e, &st);
        if (st.n_finished == st.n_requests) return st.n_response_cache_hits;
        struct timespec ts = {0, 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    cr_assert_fail("%llu of %llu requests finished in the stats", (unsigned long long)st.n_finished,
                   (unsigned long long)st.n_requests);
    return 0;
}

static void expect_same_events(const rec *a, const rec *b) {
    cr_assert_eq(a->n_tokens, b->n_tokens);
    for (int32_t i = 0; i < a->n_tokens; i++) {
        cr_assert_eq(a->tokens[i], b->tokens[i]);
        cr_assert_eq(a->logprob[i], b->logprob[i]);
        cr_assert_eq(a->top0[i], b->top0[i]);
        cr_assert_eq(a->top0_lp[i], b->top0_lp[i]);
    }
    cr_assert_eq(a->text_len, b->text_len);
    cr_assert_eq(memcmp(a->text, b->text, a->text_len), 0);
    cr_assert_eq(a->finish, b->finish);
    cr_assert_eq(a->status, b->status);
}

/* r got exactly the greedy continuation of prompt, n tokens, finishing by LENGTH. */
static void expect_result(ig_model *m, const rec *r, const int32_t *prompt, int32_t n_prompt,
                          int32_t n) {
    int32_t want[REC_MAX_TOKENS];
    cr_assert_eq(r->n_finished, 1);
    cr_assert_eq(r->n_after_finish, 0);
    cr_assert_eq(r->finish, IG_FINISH_KIND_LENGTH);
    cr_assert_eq(r->n_tokens, n);
    fake_greedy(fake_of(m), prompt, n_prompt, n, want);
    for (int32_t i = 0; i < n; i++) cr_assert_eq(r->tokens[i], want[i], "token %d", i);
}

Test(engine_rcache, hit_replays_without_computing) {
    ig_model *m = fake_model_new(V, NULL);
    ig_engine *e = mk_engine(m, 4, false, NULL, NULL);
    static sink k;
    memset(&k, 0, sizeof k);
    int32_t p[9];
    prompt_of(p, 9, 1);
    ig_request_id a = run_one(e, &k, p, 9, 6, 0, 11);
    int32_t calls = n_calls(m);
    cr_assert_gt(calls, 0);
    cr_assert_eq(n_hits(e), 0);
    ig_request_id b = run_one(e, &k, p, 9, 6, 0, 22);
    cr_assert_eq(n_calls(m), calls, "a cache hit ran the model");
    cr_assert_eq(n_hits(e), 1);
    rec *ra = sink_find(&k, a), *rb = sink_find(&k, b);
    expect_result(m, ra, p, 9, 6);
    expect_result(m, rb, p, 9, 6);
    expect_same_events(ra, rb);
    cr_assert_eq(rb->user_data, 22);
    cr_assert_eq(rb->stats.id, b);
    cr_assert_eq(rb->stats.user_data, 22);
    cr_assert_eq(rb->stats.n_generated_tokens, 6);
    cr_assert_eq(rb->stats.n_prompt_tokens, 9);
    cr_assert_eq(rb->stats.n_cached_tokens, 9);
    cr_assert_eq(rb->stats.queue_us, 0);
    cr_assert_geq(rb->stats.ttft_us, 0);
    cr_assert_leq(rb->stats.ttft_us, rb->stats.total_us);
    /* a third identical one hits too; the engine counts every request finished */
    run_one(e, &k, p, 9, 6, 0, 33);
    cr_assert_eq(n_hits(e), 2);
    cr_assert_eq(ig_engine_drain(e, 10000), IG_OK);
    ig_engine_stats st;
    ig_engine_stats_get(e, &st);
    cr_assert_eq(st.n_requests, 3);
    cr_assert_eq(st.n_finished, 3);
    ig_engine_free(e);
    fake_model_free(m);
}

/* An identical request already past its deadline is not answered from the cache: it times out. */
Test(engine_rcache, past_deadline_times_out_instead_of_hitting) {
    ig_model *m = fake_model_new(V, NULL);
    ig_engine *e = mk_engine(m, 4, false, NULL, NULL);
    static sink k;
    memset(&k, 0, sizeof k);
    int32_t p[9];
    prompt_of(p, 9, 5);
    run_one(e, &k, p, 9, 6, 0, 1);
    ig_sampler_params sp = ig_sampler_params_default();
    sp.temperature = 0;
    sp.seed = 7;
    ig_request r = {.prompt = p,
                    .n_prompt = 9,
                    .sampling = &sp,
                    .max_tokens = 6,
                    .n_logprobs = 2,
                    .user_data = 2,
                    .deadline_us = 1}; /* 1 µs after the monotonic clock's start: long past */
    ig_request_id id = 0;
    ig_error err = {0};
    cr_assert_eq(ig_engine_submit(e, &r, &id, &err), IG_OK, "%s", err.message);
    poll_done(e, &k, id);
    cr_assert_eq(sink_find(&k, id)->finish, IG_FINISH_KIND_TIMEOUT);
    cr_assert_eq(n_hits(e), 0);
    ig_engine_free(e);
    fake_model_free(m);
}

Test(engine_rcache, off_by_default) {
    cr_assert_eq(ig_engine_config_default().response_cache, 0);
    ig_model *m = fake_model_new(V, NULL);
    ig_engine *e = mk_engine(m, 0, false, NULL, NULL);
    static sink k;
    memset(&k, 0, sizeof k);
    int32_t p[9];
    prompt_of(p, 9, 2);
    run_one(e, &k, p, 9, 5, 0, 1);
    int32_t calls = n_calls(m);
    run_one(e, &k, p, 9, 5, 0, 2);
    cr_assert_eq(n_calls(m), 2 * calls);
    cr_assert_eq(n_hits(e), 0);
    ig_engine_free(e);
    fake_model_free(m);
}

Test(engine_rcache, different_sampled_or_cancelled_are_computed) {
    ig_model *m = fake_model_new(V, NULL);
    ig_engine *e = mk_engine(m, 4, false, NULL, NULL);
    static sink k;
    memset(&k, 0, sizeof k);
    int32_t p[9], q[9];
    prompt_of(p, 9, 3);
    prompt_of(q, 9, 4);
    run_one(e, &k, p, 9, 5, 0, 1);
    int32_t calls = n_calls(m);
    run_one(e, &k, q, 9, 5, 0, 2); /* other prompt */
    cr_assert_gt(n_calls(m), calls);
    calls = n_calls(m);
    run_one(e, &k, p, 9, 4, 0, 3); /* other max_tokens */
    cr_assert_gt(n_calls(m), calls);
    calls = n_calls(m);
    run_one(e, &k, p, 9, 5, 0.8f, 4); /* sampled: never cached */
    cr_assert_gt(n_calls(m), calls);
    calls = n_calls(m);
    run_one(e, &k, p, 9, 5, 0.8f, 5);
    cr_assert_gt(n_calls(m), calls);
    cr_assert_eq(n_hits(e), 0);
    /* a cancelled request leaves nothing to serve */
    int32_t r[9];
    prompt_of(r, 9, 5);
    fake_gate(m, 1);
    ig_request_id c = submit(e, r, 9, 8, 0, 6);
    cr_assert(fake_wait_at_gate(m));
    cr_assert_eq(ig_engine_cancel(e, c), IG_OK);
    fake_gate(m, 0);
    poll_done(e, &k, c);
    cr_assert_eq(sink_find(&k, c)->finish, IG_FINISH_KIND_CANCELLED);
    calls = n_calls(m);
    ig_request_id d = run_one(e, &k, r, 9, 8, 0, 7);
    cr_assert_gt(n_calls(m), calls);
    expect_result(m, sink_find(&k, d), r, 9, 8);
    cr_assert_eq(n_hits(e), 0);
    ig_engine_free(e);
    fake_model_free(m);
}

Test(engine_rcache, keeps_the_most_recently_used) {
    ig_model *m = fake_model_new(V, NULL);
    ig_engine *e = mk_engine(m, 2, false, NULL, NULL);
    static sink k;
    memset(&k, 0, sizeof k);
    int32_t a[7], b[7], c[7];
    prompt_of(a, 7, 6);
    prompt_of(b, 7, 7);
    prompt_of(c, 7, 8);
    run_one(e, &k, a, 7, 3, 0, 1);
    run_one(e, &k, b, 7, 3, 0, 2);
    run_one(e, &k, a, 7, 3, 0, 3); /* hit: a is now the most recent */
    cr_assert_eq(n_hits(e), 1);
    run_one(e, &k, c, 7, 3, 0, 4); /* full: drops b */
    int32_t calls = n_calls(m);
    run_one(e, &k, a, 7, 3, 0, 5);
    run_one(e, &k, c, 7, 3, 0, 6);
    cr_assert_eq(n_calls(m), calls);
    cr_assert_eq(n_hits(e), 3);
    ig_request_id x = run_one(e, &k, b, 7, 3, 0, 7); /* dropped: computed again */
    cr_assert_gt(n_calls(m), calls);
    cr_assert_eq(n_hits(e), 3);
    expect_result(m, sink_find(&k, x), b, 7, 3);
    ig_engine_free(e);
    fake_model_free(m);
}

typedef struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    sink k;
} cb_ctx;

static void on_event(void *user, const ig_event *ev) {
    cb_ctx *c = user;
    pthread_mutex_lock(&c->mu);
    sink_on_event(&c->k, ev);
    pthread_cond_broadcast(&c->cv);
    pthread_mutex_unlock(&c->mu);
}

static void cb_wait_finished(cb_ctx *c, ig_request_id id) {
    pthread_mutex_lock(&c->mu);
    while (sink_find(&c->k, id)->n_finished == 0) pthread_cond_wait(&c->cv, &c->mu);
    pthread_mutex_unlock(&c->mu);
}

/* Callback mode, with coalescing on too: a hit is answered before any join. */
Test(engine_rcache, callback_mode_with_coalescing) {
    ig_model *m = fake_model_new(V, NULL);
    static cb_ctx c;
    memset(&c, 0, sizeof c);
    pthread_mutex_init(&c.mu, NULL);
    pthread_cond_init(&c.cv, NULL);
    ig_engine *e = mk_engine(m, 4, true, on_event, &c);
    int32_t p[9];
    prompt_of(p, 9, 9);
    ig_request_id a = submit(e, p, 9, 6, 0, 1);
    cb_wait_finished(&c, a);
    int32_t calls = n_calls(m);
    ig_request_id d = submit(e, p, 9, 6, 0, 3);
    cb_wait_finished(&c, d);
    cr_assert_eq(ig_engine_drain(e, 10000), IG_OK); /* the stats are published */
    cr_assert_eq(n_calls(m), calls);
    cr_assert_eq(n_hits(e), 1);
    pthread_mutex_lock(&c.mu);
    expect_result(m, sink_find(&c.k, a), p, 9, 6);
    expect_result(m, sink_find(&c.k, d), p, 9, 6);
    expect_same_events(sink_find(&c.k, a), sink_find(&c.k, d));
    cr_assert_eq(sink_find(&c.k, d)->user_data, 3);
    pthread_mutex_unlock(&c.mu);
    ig_engine_free(e);
    fake_model_free(m);
    pthread_cond_destroy(&c.cv);
    pthread_mutex_destroy(&c.mu);
}
