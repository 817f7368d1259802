/*
 * engine_testutil.h: helpers shared by the scheduler and engine tests: an
 * event sink that records each request's tokens, log-probabilities, text and
 * finish, and builders for requests and schedulers.
 */
#ifndef IG_TEST_ENGINE_TESTUTIL_H
#define IG_TEST_ENGINE_TESTUTIL_H

#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "engine/request.h"
#include "engine/scheduler.h"
#include "sample/sampler.h"

#define REC_MAX_TOKENS 512
#define SINK_MAX       128

typedef struct rec {
    ig_request_id id;
    int32_t tokens[REC_MAX_TOKENS]; /* from TOKEN events */
    float logprob[REC_MAX_TOKENS];
    int32_t top0[REC_MAX_TOKENS]; /* best token of the top list (-1 if none) */
    float top0_lp[REC_MAX_TOKENS];
    int32_t n_tokens;
    char text[8192];
    size_t text_len;
    int n_finished;     /* must end as 1 */
    int n_after_finish; /* events after FINISHED: must stay 0 */
    ig_finish_kind finish;
    ig_status status;
    ig_request_stats stats;
    uintptr_t user_data;
} rec;

typedef struct sink {
    rec recs[SINK_MAX];
    int n;
} sink;

static inline rec *sink_find(sink *k, ig_request_id id) {
    for (int i = 0; i < k->n; i++)
        if (k->recs[i].id == id) return &k->recs[i];
    cr_assert_lt(k->n, SINK_MAX);
    rec *r = &k->recs[k->n++];
    memset(r, 0, sizeof *r);
    r->id = id;
    return r;
}

static inline void sink_on_event(void *ctx, const ig_event *ev) {
    sink *k = ctx;
    rec *r = sink_find(k, ev->id);
    if (r->n_finished) r->n_after_finish++;
    r->user_data = ev->user_data;
    cr_assert_leq(r->text_len + ev->text_len, sizeof r->text - 1);
    cr_assert_eq(ev->text[ev->text_len], '\0', "event text must be NUL-terminated at text_len");
    memcpy(r->text + r->text_len, ev->text, ev->text_len);
    r->text_len += ev->text_len;
    r->text[r->text_len] = '\0';
    if (ev->type == IG_EVENT_TOKEN) {
        cr_assert_lt(r->n_tokens, REC_MAX_TOKENS);
        r->tokens[r->n_tokens] = ev->token;
        r->logprob[r->n_tokens] = ev->logprob;
        r->top0[r->n_tokens] = ev->n_top > 0 ? ev->top[0].token : -1;
        r->top0_lp[r->n_tokens] = ev->n_top > 0 ? ev->top[0].logprob : 0.0f;
        r->n_tokens++;
    } else {
        cr_assert_eq(ev->type, IG_EVENT_FINISHED);
        r->n_finished++;
        r->finish = ev->finish;
        r->status = ev->status;
        r->stats = *ev->stats;
        r->stats.itl_ms = NULL; /* borrowed: not kept */
    }
}

static inline ig_sched *mk_sched(ig_model *m, int32_t n_blocks, int32_t block_size,
                                 int32_t max_batch_tokens, int32_t max_seqs, int32_t max_waiting,
                                 bool prefix_caching, sink *k) {
    ig_sched_config c = {.model = m,
                         .n_blocks = n_blocks,
                         .block_size = block_size,
                         .eviction = IG_EVICT_LRU,
                         .prefix_caching = prefix_caching,
                         .max_batch_tokens = max_batch_tokens,
                         .max_seqs = max_seqs,
                         .max_waiting = max_waiting,
                         .emit = sink_on_event,
                         .emit_ctx = k};
    ig_sched *s = NULL;
    ig_error err = {0};
    cr_assert_eq(ig_sched_new(&c, &s, &err), IG_OK, "%s", err.message);
    return s;
}

typedef struct req_opts {
    int32_t max_tokens;
    int32_t priority;
    int64_t deadline_us;
    int32_t n_logprobs;
    float temperature; /* < 0 in opts means greedy default; see mk_req */
    uint64_t seed;
    const char *const *stop;
    size_t n_stop;
} req_opts;

/* Build and add a request; asserts success. temperature 0 unless opts say > 0. */
static inline ig_req *add_req(ig_sched *s, ig_model *m, ig_request_id id, const int32_t *prompt,
                              int32_t n_prompt, req_opts o) {
    ig_sampler_params sp = ig_sampler_params_default();
    sp.temperature = o.temperature > 0 ? o.temperature : 0.0f;
    sp.seed = o.seed ? o.seed : 1234;
    ig_request r = {.prompt = prompt,
                    .n_prompt = (size_t)n_prompt,
                    .sampling = &sp,
                    .max_tokens = o.max_tokens,
                    .stop = o.stop,
                    .n_stop = o.n_stop,
                    .priority = o.priority,
                    .deadline_us = o.deadline_us,
                    .n_logprobs = o.n_logprobs,
                    .user_data = (uintptr_t)id * 10};
    ig_req *q = NULL;
    ig_error err = {0};
    cr_assert_eq(ig__req_new(&r, id, 0, m->desc.n_vocab, m->vocab, ig_sched_n_ctx(s), &q, &err),
                 IG_OK, "%s", err.message);
    cr_assert_eq(ig_sched_add(s, q, &err), IG_OK, "%s", err.message);
    return q;
}

/* Every block free or cached, nothing used, invariants hold. */
static inline void check_blocks_idle(ig_sched *s) {
    ig_error err = {0};
    cr_assert_eq(ig_kv_check(ig_sched_kv(s), &err), IG_OK, "%s", err.message);
    ig_kv_stats st;
    ig_kv_stats_get(ig_sched_kv(s), &st);
    cr_assert_eq(st.n_used, 0, "%d blocks still used", st.n_used);
    cr_assert_eq(st.n_free + st.n_cached_free, st.n_blocks);
}

/* Step until nothing is left (at most max_steps), checking block invariants each step. */
static inline int run_all(ig_sched *s, int64_t *now, int max_steps) {
    int steps = 0;
    ig_error err = {0};
    while (ig_sched_has_work(s)) {
        cr_assert_lt(steps, max_steps, "scheduler did not finish in %d steps", max_steps);
        cr_assert_eq(ig_sched_step(s, (*now)++, NULL, &err), IG_OK, "%s", err.message);
        cr_assert_eq(ig_kv_check(ig_sched_kv(s), &err), IG_OK, "%s", err.message);
        steps++;
    }
    return steps;
}

#endif
