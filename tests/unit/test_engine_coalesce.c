/*
 * test_engine_coalesce.c: request coalescing (ig_engine_config.coalesce) on
 * the fake model: identical greedy requests that arrive while one runs share
 * its result (same events, the model computes it once, counted in
 * n_coalesced); different or sampled ones do not; a follower's cancel ends it
 * alone; a cancelled leader's followers still get the whole result; poll and
 * callback modes. The fake's gate holds the engine thread inside a forward
 * pass so requests join a running one deterministically.
 */
#include <criterion/criterion.h>
#include <pthread.h>

#include "engine_testutil.h"
#include "fake_model.h"
#include "ignis.h"

#define V 64

static void prompt_of(int32_t *p, int32_t n, int32_t seed) {
    for (int32_t i = 0; i < n; i++) p[i] = (int32_t)((seed * 31 + i * 7 + 3) % V);
}

static ig_engine *mk_engine(ig_model *m, bool coalesce, ig_event_fn cb, void *user) {
    ig_engine_config c = ig_engine_config_default();
    c.model = m;
    c.n_threads = 1;
    c.kv_blocks = 128;
    c.block_size = 4;
    c.max_batch_tokens = 32;
    c.max_seqs = 8;
    c.prefix_caching = false; /* so the fake's token count is exactly the computed work */
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

/* Poll every event into the sink until n_finished requests have finished. */
static void poll_until(ig_engine *e, sink *k, int n_finished) {
    int done = 0;
    for (int i = 0; i < k->n; i++) done += k->recs[i].n_finished;
    while (done < n_finished) {
        ig_event ev[8];
        size_t n = 0;
        ig_status st = ig_engine_poll(e, 0, ev, 8, &n, 10000);
        cr_assert_eq(st, IG_OK, "poll: %s", ig_errname(st));
        for (size_t i = 0; i < n; i++) {
            sink_on_event(k, &ev[i]);
            if (ev[i].type == IG_EVENT_FINISHED) done++;
            ig_event_release(&ev[i]);
        }
    }
}

/* Poll request id until it has at least n TOKEN events in the sink. */
static void poll_tokens(ig_engine *e, sink *k, ig_request_id id, int32_t n) {
    while (sink_find(k, id)->n_tokens < n) {
        ig_event ev;
        size_t got = 0;
        cr_assert_eq(ig_engine_poll(e, id, &ev, 1, &got, 10000), IG_OK);
        sink_on_event(k, &ev);
        ig_event_release(&ev);
    }
}

/* Tokens the fake computed over all forward calls. */
static int64_t fake_tokens(ig_model *m) {
    fake_impl *f = fake_of(m);
    cr_assert_lt(f->n_calls, FAKE_LOG_MAX);
    int64_t n = 0;
    for (int32_t i = 0; i < f->n_calls; i++) n += f->log[i].n_tokens;
    return n;
}

/* r got exactly the greedy continuation of prompt, n tokens, finishing by LENGTH. */
static void expect_result(ig_model *m, const rec *r, const int32_t *prompt, int32_t n_prompt,
                          int32_t n) {
    int32_t want[REC_MAX_TOKENS];
    cr_assert_eq(r->n_finished, 1);
    cr_assert_eq(r->n_after_finish, 0);
    cr_assert_eq(r->finish, IG_FINISH_KIND_LENGTH, "finish %d", r->finish);
    cr_assert_eq(r->n_tokens, n, "%d tokens, want %d", r->n_tokens, n);
    fake_greedy(fake_of(m), prompt, n_prompt, n, want);
    for (int32_t i = 0; i < n; i++) cr_assert_eq(r->tokens[i], want[i], "token %d", i);
}

/* Same TOKEN events (ids, log-probabilities, top lists) and text. */
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
}

static uint64_t n_coalesced(ig_engine *e) {
    ig_engine_stats st;
    ig_engine_stats_get(e, &st);
    return st.n_coalesced;
}

Test(engine_coalesce, identical_share_others_dont_poll) {
    ig_model *m = fake_model_new(V, NULL);
    ig_engine *e = mk_engine(m, true, NULL, NULL);
    static sink k;
    memset(&k, 0, sizeof k);
    int32_t p[10], q[10];
    prompt_of(p, 10, 1);
    prompt_of(q, 10, 2);
    fake_gate(m, 1);
    ig_request_id a = submit(e, p, 10, 6, 0, 1);
    cr_assert(fake_wait_at_gate(m)); /* a runs (held inside its first forward) */
    ig_request_id b = submit(e, p, 10, 6, 0, 2);
    ig_request_id c = submit(e, p, 10, 6, 0, 3);
    ig_request_id d = submit(e, p, 10, 5, 0, 4);    /* other max_tokens */
    ig_request_id x = submit(e, q, 10, 6, 0, 5);    /* other prompt */
    ig_request_id s = submit(e, p, 10, 6, 0.7f, 6); /* sampled: never coalesced */
    fake_gate(m, 0);
    poll_until(e, &k, 6);
    cr_assert_eq(n_coalesced(e), 2);
    const rec *ra = sink_find(&k, a), *rb = sink_find(&k, b), *rc = sink_find(&k, c);
    expect_result(m, ra, p, 10, 6);
    expect_same_events(ra, rb);
    expect_same_events(ra, rc);
    cr_assert_eq(rb->user_data, 2);
    cr_assert_eq(rc->user_data, 3);
    cr_assert_eq(rb->stats.id, b);
    cr_assert_eq(rb->stats.n_generated_tokens, 6);
    expect_result(m, sink_find(&k, d), p, 10, 5);
    expect_result(m, sink_find(&k, x), q, 10, 6);
    cr_assert_eq(sink_find(&k, s)->n_finished, 1);
    /* computed once: a, d, x, s each feed prompt + generated - 1 tokens; b and c nothing */
    cr_assert_eq(fake_tokens(m), 4 * 10 + 5 + 4 + 5 + 5);
    /* FINISHED events are published at once, the stats when the step ends:
     * after drain both are in */
    cr_assert_eq(ig_engine_drain(e, 10000), IG_OK);
    ig_engine_stats st;
    ig_engine_stats_get(e, &st);
    cr_assert_eq(st.n_finished, 6);
    ig_engine_free(e);
    fake_model_free(m);
}

Test(engine_coalesce, off_by_default) {
    ig_model *m = fake_model_new(V, NULL);
    cr_assert_eq(ig_engine_config_default().coalesce, false);
    ig_engine *e = mk_engine(m, false, NULL, NULL);
    static sink k;
    memset(&k, 0, sizeof k);
    int32_t p[10];
    prompt_of(p, 10, 1);
    fake_gate(m, 1);
    ig_request_id a = submit(e, p, 10, 6, 0, 1);
    cr_assert(fake_wait_at_gate(m));
    ig_request_id b = submit(e, p, 10, 6, 0, 2);
    fake_gate(m, 0);
    poll_until(e, &k, 2);
    cr_assert_eq(n_coalesced(e), 0);
    expect_same_events(sink_find(&k, a), sink_find(&k, b));
    cr_assert_eq(fake_tokens(m), 2 * (10 + 5));
    ig_engine_free(e);
    fake_model_free(m);
}

typedef struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    sink k;
    ig_request_id hold_id; /* the callback holds the engine thread at this request's */
    int32_t hold_at;       /* hold_at-th token until the test releases it */
    bool is_held;
} cb_ctx;

static void on_event(void *user, const ig_event *ev) {
    cb_ctx *c = user;
    pthread_mutex_lock(&c->mu);
    sink_on_event(&c->k, ev);
    if (ev->type == IG_EVENT_TOKEN && ev->id == c->hold_id &&
        sink_find(&c->k, ev->id)->n_tokens == c->hold_at) {
        c->is_held = true;
        pthread_cond_broadcast(&c->cv);
        while (c->is_held) pthread_cond_wait(&c->cv, &c->mu);
    }
    pthread_mutex_unlock(&c->mu);
}

static void cb_init(cb_ctx *c) {
    memset(c, 0, sizeof *c);
    pthread_mutex_init(&c->mu, NULL);
    pthread_cond_init(&c->cv, NULL);
}

/* Hold the engine thread when request id emits its n-th token (set before it can). */
static void cb_hold(cb_ctx *c, ig_request_id id, int32_t n) {
    pthread_mutex_lock(&c->mu);
    c->hold_id = id;
    c->hold_at = n;
    pthread_mutex_unlock(&c->mu);
}

static void cb_wait_held(cb_ctx *c) {
    pthread_mutex_lock(&c->mu);
    while (!c->is_held) pthread_cond_wait(&c->cv, &c->mu);
    pthread_mutex_unlock(&c->mu);
}

static void cb_release(cb_ctx *c) {
    pthread_mutex_lock(&c->mu);
    c->is_held = false;
    c->hold_id = 0;
    pthread_cond_broadcast(&c->cv);
    pthread_mutex_unlock(&c->mu);
}

/* A follower joining after tokens were emitted gets them replayed, then the live ones. */
Test(engine_coalesce, late_follower_gets_replay) {
    ig_model *m = fake_model_new(V, NULL);
    static cb_ctx c;
    cb_init(&c);
    ig_engine *e = mk_engine(m, true, on_event, &c);
    int32_t p[8];
    prompt_of(p, 8, 3);
    fake_gate(m, 1);
    ig_request_id a = submit(e, p, 8, 40, 0, 1);
    cb_hold(&c, a, 3);
    fake_gate(m, 0);
    cb_wait_held(&c); /* a has emitted 3 tokens */
    ig_request_id b = submit(e, p, 8, 40, 0, 2);
    cb_release(&c);
    cr_assert_eq(ig_engine_drain(e, 10000), IG_OK);
    cr_assert_eq(n_coalesced(e), 1);
    pthread_mutex_lock(&c.mu);
    expect_result(m, sink_find(&c.k, a), p, 8, 40);
    expect_same_events(sink_find(&c.k, a), sink_find(&c.k, b));
    pthread_mutex_unlock(&c.mu);
    cr_assert_eq(fake_tokens(m), 8 + 39);
    ig_engine_free(e);
    fake_model_free(m);
}

Test(engine_coalesce, cancel_follower_keeps_leader) {
    ig_model *m = fake_model_new(V, NULL);
    ig_engine *e = mk_engine(m, true, NULL, NULL);
    static sink k;
    memset(&k, 0, sizeof k);
    int32_t p[8];
    prompt_of(p, 8, 4);
    fake_gate(m, 1);
    ig_request_id a = submit(e, p, 8, 10, 0, 1);
    cr_assert(fake_wait_at_gate(m));
    ig_request_id b = submit(e, p, 8, 10, 0, 2);
    ig_request_id c = submit(e, p, 8, 10, 0, 3);
    cr_assert_eq(ig_engine_cancel(e, b), IG_OK);
    fake_gate(m, 0);
    poll_until(e, &k, 3);
    cr_assert_eq(n_coalesced(e), 2);
    const rec *rb = sink_find(&k, b);
    cr_assert_eq(rb->n_finished, 1);
    cr_assert_eq(rb->finish, IG_FINISH_KIND_CANCELLED);
    cr_assert_eq(rb->status, IG_ECANCELLED);
    expect_result(m, sink_find(&k, a), p, 8, 10);
    expect_same_events(sink_find(&k, a), sink_find(&k, c));
    cr_assert_eq(fake_tokens(m), 8 + 9);
    cr_assert_eq(ig_engine_cancel(e, b), IG_ENOTFOUND);
    ig_engine_free(e);
    fake_model_free(m);
}

/* The leader cancelled before any token: a follower is scheduled in its place. */
Test(engine_coalesce, cancel_leader_promotes_follower) {
    ig_model *m = fake_model_new(V, NULL);
    ig_engine *e = mk_engine(m, true, NULL, NULL);
    static sink k;
    memset(&k, 0, sizeof k);
    int32_t p[8];
    prompt_of(p, 8, 5);
    fake_gate(m, 1);
    ig_request_id a = submit(e, p, 8, 10, 0, 1);
    cr_assert(fake_wait_at_gate(m));
    ig_request_id b = submit(e, p, 8, 10, 0, 2);
    ig_request_id c = submit(e, p, 8, 10, 0, 3);
    cr_assert_eq(ig_engine_cancel(e, a), IG_OK);
    fake_gate(m, 0);
    poll_until(e, &k, 3);
    cr_assert_eq(sink_find(&k, a)->finish, IG_FINISH_KIND_CANCELLED);
    expect_result(m, sink_find(&k, b), p, 8, 10);
    expect_result(m, sink_find(&k, c), p, 8, 10);
    expect_same_events(sink_find(&k, b), sink_find(&k, c));
    ig_engine_free(e);
    fake_model_free(m);
}

/* The leader cancelled after tokens went out: the promoted follower recomputes and gets no
 * token twice. */
Test(engine_coalesce, cancel_leader_midway_no_duplicates) {
    ig_model *m = fake_model_new(V, NULL);
    static cb_ctx c;
    cb_init(&c);
    ig_engine *e = mk_engine(m, true, on_event, &c);
    int32_t p[8];
    prompt_of(p, 8, 6);
    fake_gate(m, 1);
    ig_request_id a = submit(e, p, 8, 30, 0, 1);
    cb_hold(&c, a, 3);
    fake_gate(m, 0);
    cb_wait_held(&c);
    ig_request_id b = submit(e, p, 8, 30, 0, 2);
    ig_request_id d = submit(e, p, 8, 30, 0, 3);
    cr_assert_eq(ig_engine_cancel(e, a), IG_OK);
    cb_release(&c);
    cr_assert_eq(ig_engine_drain(e, 10000), IG_OK);
    cr_assert_eq(n_coalesced(e), 2);
    pthread_mutex_lock(&c.mu);
    cr_assert_eq(sink_find(&c.k, a)->finish, IG_FINISH_KIND_CANCELLED);
    expect_result(m, sink_find(&c.k, b), p, 8, 30);
    expect_result(m, sink_find(&c.k, d), p, 8, 30);
    expect_same_events(sink_find(&c.k, b), sink_find(&c.k, d));
    pthread_mutex_unlock(&c.mu);
    ig_engine_free(e);
    fake_model_free(m);
}

/* A request's FINISHED telemetry agrees with what it was handed: tokens counted, and
 * queued <= first token <= finished. */
static void expect_consistent_stats(const rec *r) {
    cr_assert_eq(r->stats.n_generated_tokens, r->n_tokens, "stats say %d tokens, it got %d",
                 (int)r->stats.n_generated_tokens, r->n_tokens);
    if (r->n_tokens > 0) {
        cr_assert_geq(r->stats.ttft_us, 0);
        cr_assert_geq(r->stats.queue_us, 0);
        cr_assert_leq(r->stats.queue_us, r->stats.ttft_us);
    }
    cr_assert_leq(r->stats.ttft_us, r->stats.total_us);
}

/* A promoted follower cancelled before its recompute caught up: its stats count the tokens
 * it got as a follower (and time its first token then), not the recompute's. */
Test(engine_coalesce, promoted_then_cancelled_keeps_its_telemetry) {
    ig_model *m = fake_model_new(V, NULL);
    static cb_ctx c;
    cb_init(&c);
    ig_engine *e = mk_engine(m, true, on_event, &c);
    int32_t p[8];
    prompt_of(p, 8, 7);
    fake_gate(m, 1);
    ig_request_id a = submit(e, p, 8, 30, 0, 1);
    cb_hold(&c, a, 3);
    fake_gate(m, 0);
    cb_wait_held(&c); /* a emitted 3 tokens; the engine thread waits in the callback */
    ig_request_id b = submit(e, p, 8, 30, 0, 2);
    ig_request_id d = submit(e, p, 8, 30, 0, 3);
    cr_assert_eq(ig_engine_cancel(e, a), IG_OK);
    fake_gate(m, 1);
    cb_release(&c);
    cr_assert(fake_wait_at_gate(m)); /* b, promoted, is inside its first recompute forward */
    cr_assert_eq(ig_engine_cancel(e, b), IG_OK);
    fake_gate(m, 0);
    cr_assert_eq(ig_engine_drain(e, 10000), IG_OK);
    pthread_mutex_lock(&c.mu);
    cr_assert_eq(sink_find(&c.k, a)->finish, IG_FINISH_KIND_CANCELLED);
    rec *rb = sink_find(&c.k, b);
    cr_assert_eq(rb->finish, IG_FINISH_KIND_CANCELLED);
    cr_assert_geq(rb->n_tokens, 3);
    expect_consistent_stats(rb);
    expect_result(m, sink_find(&c.k, d), p, 8, 30);
    expect_consistent_stats(sink_find(&c.k, d));
    expect_consistent_stats(sink_find(&c.k, a));
    pthread_mutex_unlock(&c.mu);
    ig_engine_free(e);
    fake_model_free(m);
}

/* Stopping the engine ends leader and followers alike. */
Test(engine_coalesce, stop_ends_followers) {
    ig_model *m = fake_model_new(V, NULL);
    ig_engine *e = mk_engine(m, true, NULL, NULL);
    static sink k;
    memset(&k, 0, sizeof k);
    int32_t p[8];
    prompt_of(p, 8, 7);
    fake_gate(m, 1);
    ig_request_id a = submit(e, p, 8, 1000, 0, 1);
    cr_assert(fake_wait_at_gate(m));
    ig_request_id b = submit(e, p, 8, 1000, 0, 2);
    fake_gate(m, 0);
    poll_tokens(e, &k, b, 2);
    ig_engine_stop(e);
    poll_until(e, &k, 2);
    /* cancelled by the stop, or (if it ran out of KV first) LENGTH: b ends as a does */
    const rec *ra = sink_find(&k, a), *rb = sink_find(&k, b);
    cr_assert(ra->finish == IG_FINISH_KIND_CANCELLED || ra->finish == IG_FINISH_KIND_LENGTH);
    cr_assert_eq(rb->n_finished, 1);
    cr_assert_eq(rb->n_after_finish, 0);
    expect_same_events(ra, rb);
    ig_engine_free(e);
    fake_model_free(m);
}

Test(engine_coalesce, callback_mode) {
    ig_model *m = fake_model_new(V, NULL);
    static cb_ctx c;
    cb_init(&c);
    ig_engine *e = mk_engine(m, true, on_event, &c);
    int32_t p[9];
    prompt_of(p, 9, 8);
    fake_gate(m, 1);
    ig_request_id a = submit(e, p, 9, 7, 0, 1);
    cr_assert(fake_wait_at_gate(m));
    ig_request_id b = submit(e, p, 9, 7, 0, 2);
    ig_request_id d = submit(e, p, 9, 7, 0, 3);
    cr_assert_eq(ig_engine_cancel(e, d), IG_OK);
    fake_gate(m, 0);
    cr_assert_eq(ig_engine_drain(e, 10000), IG_OK);
    pthread_mutex_lock(&c.mu);
    expect_result(m, sink_find(&c.k, a), p, 9, 7);
    expect_same_events(sink_find(&c.k, a), sink_find(&c.k, b));
    cr_assert_eq(sink_find(&c.k, b)->user_data, 2);
    cr_assert_eq(sink_find(&c.k, d)->finish, IG_FINISH_KIND_CANCELLED);
    pthread_mutex_unlock(&c.mu);
    cr_assert_eq(n_coalesced(e), 2);
    cr_assert_eq(fake_tokens(m), 9 + 6);
    ig_engine_free(e);
    fake_model_free(m);
}
