/*
 * test_engine.c: the scheduler state machine (src/engine/scheduler.h),
 * driven step by step with the fake model (fake_model.h) and no threads:
 * batch composition, token budget, chunked prefill, priorities and FCFS,
 * preemption and recompute, cancel, timeout, overload, stop strings, EOG,
 * errors, and block accounting after every mix. Expected tokens come from
 * the fake's oracle (logits computed from the token list, no cache).
 */
#include <criterion/criterion.h>
#include <math.h>

#include "engine_testutil.h"
#include "fake_model.h"
#include "testutil.h"

#define V 64 /* fake vocabulary without a tokenizer */

static void prompt_of(int32_t *p, int32_t n, int32_t seed) {
    for (int32_t i = 0; i < n; i++) p[i] = (int32_t)((seed * 31 + i * 7 + 3) % V);
}

/* The request's recorded tokens equal the oracle's greedy continuation. */
static void expect_oracle(ig_model *m, const rec *r, const int32_t *prompt, int32_t n_prompt) {
    int32_t want[REC_MAX_TOKENS];
    fake_greedy(fake_of(m), prompt, n_prompt, r->n_tokens, want);
    for (int32_t i = 0; i < r->n_tokens; i++)
        cr_assert_eq(r->tokens[i], want[i], "request %llu token %d: %d, oracle %d",
                     (unsigned long long)r->id, i, r->tokens[i], want[i]);
}

Test(sched, single_request_matches_oracle) {
    sink k = {0};
    ig_model *m = fake_model_new(V, NULL);
    ig_sched *s = mk_sched(m, 64, 4, 32, 8, 0, true, &k);
    int32_t p[10];
    prompt_of(p, 10, 1);
    add_req(s, m, 1, p, 10, (req_opts){.max_tokens = 12});
    int64_t now = 0;
    run_all(s, &now, 100);
    rec *r = sink_find(&k, 1);
    cr_assert_eq(r->n_finished, 1);
    cr_assert_eq(r->n_after_finish, 0);
    cr_assert_eq(r->finish, IG_FINISH_KIND_LENGTH);
    cr_assert_eq(r->n_tokens, 12);
    cr_assert_eq(r->stats.n_generated_tokens, 12);
    cr_assert_eq(r->stats.n_prompt_tokens, 10);
    cr_assert_eq(r->user_data, 10);
    expect_oracle(m, r, p, 10);
    check_blocks_idle(s);
    ig_sched_free(s);
    fake_model_free(m);
}

Test(sched, decode_first_budget_and_chunks) {
    sink k = {0};
    ig_model *m = fake_model_new(V, NULL);
    ig_sched *s = mk_sched(m, 64, 4, 8, 4, 0, true, &k);
    fake_impl *f = fake_of(m);
    int32_t a[10], b[6], c[20];
    prompt_of(a, 10, 1);
    prompt_of(b, 6, 2);
    prompt_of(c, 20, 3);
    add_req(s, m, 1, a, 10, (req_opts){.max_tokens = 5});
    add_req(s, m, 2, b, 6, (req_opts){.max_tokens = 5});
    ig_sched_step_info in;
    ig_error err = {0};

    /* step 1: A's first chunk fills the budget; B waits */
    cr_assert_eq(ig_sched_step(s, 1, &in, &err), IG_OK);
    cr_assert_eq(in.n_tokens, 8);
    cr_assert_eq(in.n_seqs, 1);
    cr_assert_eq(in.n_sampled, 0);
    cr_assert_eq(ig_sched_n_waiting(s), 1);
    /* step 2: A's remaining 2 prompt tokens, then B's 6 */
    cr_assert_eq(ig_sched_step(s, 2, &in, &err), IG_OK);
    cr_assert_eq(f->log[1].n_seqs, 2);
    cr_assert_eq(f->log[1].seq_tokens[0], 2);
    cr_assert_eq(f->log[1].seq_first_pos[0], 8);
    cr_assert_eq(f->log[1].seq_tokens[1], 6);
    cr_assert_eq(in.n_sampled, 2);
    /* C arrives: step 3 runs both decodes first, then 6 tokens of C's prefill */
    add_req(s, m, 3, c, 20, (req_opts){.max_tokens = 5});
    cr_assert_eq(ig_sched_step(s, 3, &in, &err), IG_OK);
    cr_assert_eq(in.n_decode, 2);
    cr_assert_eq(in.n_prefill_tokens, 6);
    cr_assert_eq(in.n_tokens, 8);
    cr_assert_eq(f->log[2].seq_tokens[0], 1);
    cr_assert_eq(f->log[2].seq_tokens[1], 1);
    cr_assert_eq(f->log[2].seq_tokens[2], 6);
    /* step 4: decodes, then C continues with the remaining budget */
    cr_assert_eq(ig_sched_step(s, 4, &in, &err), IG_OK);
    cr_assert_eq(in.n_decode, 2);
    cr_assert_eq(in.n_prefill_tokens, 6);
    cr_assert_eq(f->log[3].seq_first_pos[2], 6);
    int64_t now = 5;
    run_all(s, &now, 100);
    for (int i = 0; i < f->n_calls && i < FAKE_LOG_MAX; i++)
        cr_assert_leq(f->log[i].n_tokens, 8, "step %d ran %d tokens over the budget", i,
                      f->log[i].n_tokens);
    expect_oracle(m, sink_find(&k, 1), a, 10);
    expect_oracle(m, sink_find(&k, 2), b, 6);
    expect_oracle(m, sink_find(&k, 3), c, 20);
    check_blocks_idle(s);
    ig_sched_free(s);
    fake_model_free(m);
}

Test(sched, max_seqs_caps_the_batch) {
    sink k = {0};
    ig_model *m = fake_model_new(V, NULL);
    ig_sched *s = mk_sched(m, 64, 4, 64, 2, 0, true, &k);
    int32_t p[3][4];
    for (int i = 0; i < 3; i++) {
        prompt_of(p[i], 4, i);
        add_req(s, m, (ig_request_id)i + 1, p[i], 4, (req_opts){.max_tokens = 3});
    }
    ig_sched_step_info in;
    ig_error err = {0};
    cr_assert_eq(ig_sched_step(s, 1, &in, &err), IG_OK);
    cr_assert_eq(in.n_seqs, 2);
    cr_assert_eq(ig_sched_n_running(s), 2);
    cr_assert_eq(ig_sched_n_waiting(s), 1);
    int64_t now = 2;
    run_all(s, &now, 100);
    for (int i = 0; i < 3; i++) expect_oracle(m, sink_find(&k, (ig_request_id)i + 1), p[i], 4);
    ig_sched_free(s);
    fake_model_free(m);
}

Test(sched, priority_then_fcfs) {
    sink k = {0};
    ig_model *m = fake_model_new(V, NULL);
    /* one sequence at a time: the admission order is the finishing order */
    ig_sched *s = mk_sched(m, 64, 4, 64, 1, 0, true, &k);
    int32_t p[5];
    prompt_of(p, 5, 9);
    int prio[6] = {0, 5, 0, 5, -1, 2};
    for (int i = 0; i < 6; i++)
        add_req(s, m, (ig_request_id)i + 1, p, 5, (req_opts){.max_tokens = 2, .priority = prio[i]});
    ig_request_id order[6];
    int n_order = 0;
    int64_t now = 0;
    ig_error err = {0};
    while (ig_sched_has_work(s)) {
        int before = 0;
        for (int i = 0; i < k.n; i++) before += k.recs[i].n_finished;
        cr_assert_eq(ig_sched_step(s, now++, NULL, &err), IG_OK);
        for (int i = 0; i < k.n; i++)
            if (k.recs[i].n_finished) {
                bool seen = false;
                for (int j = 0; j < n_order; j++) seen |= order[j] == k.recs[i].id;
                if (!seen) order[n_order++] = k.recs[i].id;
            }
        cr_assert_lt(now, 100);
        (void)before;
    }
    ig_request_id want[6] = {2, 4, 6, 1, 3, 5};
    cr_assert_eq(n_order, 6);
    for (int i = 0; i < 6; i++) cr_assert_eq(order[i], want[i], "position %d", i);
    ig_sched_free(s);
    fake_model_free(m);
}

/* Chunk size, prefix caching and neighbours never change a request's tokens. */
Test(sched, chunked_and_prefix_hit_match_alone) {
    int32_t p[37];
    prompt_of(p, 37, 4);
    int32_t budgets[] = {1, 3, 8, 64};
    for (size_t bi = 0; bi < 4; bi++) {
        sink k = {0};
        ig_model *m = fake_model_new(V, NULL);
        ig_sched *s = mk_sched(m, 64, 4, budgets[bi], 8, 0, true, &k);
        add_req(s, m, 1, p, 37, (req_opts){.max_tokens = 6, .n_logprobs = 2});
        int64_t now = 0;
        run_all(s, &now, 200);
        /* the same prompt again: a prefix hit of 36 tokens (9 full blocks) */
        add_req(s, m, 2, p, 37, (req_opts){.max_tokens = 6, .n_logprobs = 2});
        /* a prompt sharing 20 tokens */
        int32_t q[30];
        memcpy(q, p, 20 * sizeof *q);
        prompt_of(q + 20, 10, 7);
        add_req(s, m, 3, q, 30, (req_opts){.max_tokens = 6});
        run_all(s, &now, 200);
        rec *r1 = sink_find(&k, 1), *r2 = sink_find(&k, 2), *r3 = sink_find(&k, 3);
        cr_assert_eq(r1->stats.n_cached_tokens, 0);
        cr_assert_eq(r2->stats.n_cached_tokens, 36, "budget %d: cached %d", budgets[bi],
                     r2->stats.n_cached_tokens);
        cr_assert_eq(r3->stats.n_cached_tokens, 20);
        expect_oracle(m, r1, p, 37);
        expect_oracle(m, r3, q, 30);
        cr_assert_eq(r2->n_tokens, r1->n_tokens);
        for (int i = 0; i < r1->n_tokens; i++) {
            cr_assert_eq(r2->tokens[i], r1->tokens[i]);
            cr_assert_eq(r2->logprob[i], r1->logprob[i], "logprobs must be bit-identical");
        }
        check_blocks_idle(s);
        ig_sched_free(s);
        fake_model_free(m);
    }
}

Test(sched, logprobs_follow_the_row) {
    sink k = {0};
    ig_model *m = fake_model_new(V, NULL);
    ig_sched *s = mk_sched(m, 64, 4, 32, 8, 0, true, &k);
    int32_t p[7];
    prompt_of(p, 7, 5);
    add_req(s, m, 1, p, 7, (req_opts){.max_tokens = 4, .n_logprobs = 3});
    int64_t now = 0;
    run_all(s, &now, 50);
    rec *r = sink_find(&k, 1);
    int32_t all[16];
    memcpy(all, p, sizeof p);
    float row[V], lsm[V];
    for (int i = 0; i < r->n_tokens; i++) {
        fake_logits_of(fake_of(m), all, 7 + i, row);
        cr_assert_eq(ig_log_softmax(row, V, lsm), IG_OK);
        cr_assert_eq(r->top0[i], r->tokens[i], "greedy picks the top token");
        cr_assert_eq(r->logprob[i], lsm[r->tokens[i]]);
        cr_assert_eq(r->top0_lp[i], lsm[r->tokens[i]]);
        all[7 + i] = r->tokens[i];
    }
    ig_sched_free(s);
    fake_model_free(m);
}

/* A pool too small for everyone: preemption and recompute lose nothing. */
Test(sched, preemption_recomputes_the_same_tokens) {
    sink k = {0};
    ig_model *m = fake_model_new(V, NULL);
    /* 10 blocks of 4 = 40 slots; 4 requests needing 5+14 = 19 tokens (5 blocks) each */
    ig_sched *s = mk_sched(m, 10, 4, 64, 8, 0, true, &k);
    int32_t p[4][5];
    for (int i = 0; i < 4; i++) {
        prompt_of(p[i], 5, 20 + i);
        add_req(s, m, (ig_request_id)i + 1, p[i], 5,
                (req_opts){.max_tokens = 14, .n_logprobs = 1, .priority = i == 0 ? 1 : 0});
    }
    int64_t now = 0;
    run_all(s, &now, 500);
    ig_sched_counters c;
    ig_sched_get_counters(s, &c);
    cr_assert_gt(c.n_preemptions, 0, "the pool was meant to run out");
    int n_preempted = 0;
    for (int i = 0; i < 4; i++) {
        rec *r = sink_find(&k, (ig_request_id)i + 1);
        cr_assert_eq(r->finish, IG_FINISH_KIND_LENGTH);
        cr_assert_eq(r->n_tokens, 14);
        expect_oracle(m, r, p[i], 5);
        n_preempted += r->stats.n_preemptions;
    }
    cr_assert_eq(sink_find(&k, 1)->stats.n_preemptions, 0,
                 "the high-priority one is never the victim");
    cr_assert_eq((uint64_t)n_preempted, c.n_preemptions);
    check_blocks_idle(s);
    ig_sched_free(s);
    fake_model_free(m);
}

Test(sched, a_sequence_alone_that_outgrows_the_pool_ends_with_length) {
    sink k = {0};
    ig_model *m = fake_model_new(V, NULL);
    ig_sched *s = mk_sched(m, 3, 4, 64, 8, 0, true, &k);
    int32_t p[5];
    prompt_of(p, 5, 1);
    add_req(s, m, 1, p, 5, (req_opts){.max_tokens = 100});
    int64_t now = 0;
    run_all(s, &now, 100);
    rec *r = sink_find(&k, 1);
    cr_assert_eq(r->finish, IG_FINISH_KIND_LENGTH);
    cr_assert_eq(r->n_tokens, 12 - 5, "the context is capped at the pool's 12 slots");
    check_blocks_idle(s);
    ig_sched_free(s);
    fake_model_free(m);
}

/* Cancel one request after every possible number of steps. */
Test(sched, cancel_at_any_step) {
    int32_t p[3][9];
    for (int i = 0; i < 3; i++) prompt_of(p[i], 9, 40 + i);
    for (int at = 0; at < 14; at++) {
        for (int victim = 1; victim <= 3; victim++) {
            sink k = {0};
            ig_model *m = fake_model_new(V, NULL);
            ig_sched *s = mk_sched(m, 12, 4, 6, 2, 0, true, &k);
            for (int i = 0; i < 3; i++)
                add_req(s, m, (ig_request_id)i + 1, p[i], 9, (req_opts){.max_tokens = 6});
            int64_t now = 0;
            ig_error err = {0};
            for (int st = 0; st < at && ig_sched_has_work(s); st++)
                cr_assert_eq(ig_sched_step(s, now++, NULL, &err), IG_OK);
            ig_status cs = ig_sched_cancel(s, (ig_request_id)victim);
            run_all(s, &now, 200);
            for (int i = 0; i < 3; i++) {
                rec *r = sink_find(&k, (ig_request_id)i + 1);
                cr_assert_eq(r->n_finished, 1);
                cr_assert_eq(r->n_after_finish, 0);
                if (i + 1 == victim && cs == IG_OK) {
                    cr_assert_eq(r->finish, IG_FINISH_KIND_CANCELLED);
                    cr_assert_eq(r->status, IG_ECANCELLED);
                } else {
                    cr_assert_eq(r->finish, IG_FINISH_KIND_LENGTH);
                    cr_assert_eq(r->n_tokens, 6);
                }
                expect_oracle(m, r, p[i], 9);
            }
            cr_assert_eq(ig_sched_cancel(s, 99), IG_ENOTFOUND);
            check_blocks_idle(s);
            ig_sched_free(s);
            fake_model_free(m);
        }
    }
}

Test(sched, deadlines_end_waiting_and_running_requests) {
    sink k = {0};
    ig_model *m = fake_model_new(V, NULL);
    ig_sched *s = mk_sched(m, 64, 4, 64, 1, 0, true, &k);
    int32_t p[4];
    prompt_of(p, 4, 3);
    add_req(s, m, 1, p, 4, (req_opts){.max_tokens = 50, .deadline_us = 5});
    add_req(s, m, 2, p, 4, (req_opts){.max_tokens = 50, .deadline_us = 3}); /* waits behind 1 */
    add_req(s, m, 3, p, 4, (req_opts){.max_tokens = 9});
    ig_error err = {0};
    for (int64_t t = 0; t < 5; t++) cr_assert_eq(ig_sched_step(s, t, NULL, &err), IG_OK);
    rec *r2 = sink_find(&k, 2);
    cr_assert_eq(r2->finish, IG_FINISH_KIND_TIMEOUT);
    cr_assert_eq(r2->status, IG_ETIMEDOUT);
    cr_assert_eq(r2->stats.queue_us, -1, "it never ran");
    cr_assert_eq(sink_find(&k, 1)->n_finished, 0);
    cr_assert_eq(ig_sched_step(s, 5, NULL, &err), IG_OK);
    rec *r1 = sink_find(&k, 1);
    cr_assert_eq(r1->finish, IG_FINISH_KIND_TIMEOUT);
    cr_assert_eq(r1->n_tokens, 5, "it ran steps 0..4");
    int64_t now = 6;
    run_all(s, &now, 100);
    cr_assert_eq(sink_find(&k, 3)->finish, IG_FINISH_KIND_LENGTH);
    check_blocks_idle(s);
    ig_sched_free(s);
    fake_model_free(m);
}

Test(sched, bounded_waiting_queue) {
    sink k = {0};
    ig_model *m = fake_model_new(V, NULL);
    ig_sched *s = mk_sched(m, 64, 4, 64, 4, 2, true, &k);
    int32_t p[4];
    prompt_of(p, 4, 3);
    add_req(s, m, 1, p, 4, (req_opts){.max_tokens = 2});
    add_req(s, m, 2, p, 4, (req_opts){.max_tokens = 2});
    ig_request r = {.prompt = p, .n_prompt = 4, .max_tokens = 2};
    ig_req *q = NULL;
    ig_error err = {0};
    cr_assert_eq(ig__req_new(&r, 3, 0, V, NULL, ig_sched_n_ctx(s), &q, &err), IG_OK);
    cr_assert_eq(ig_sched_add(s, q, &err), IG_EOVERLOADED);
    ig__req_free(q);
    int64_t now = 0;
    run_all(s, &now, 50);
    ig_sched_free(s);
    fake_model_free(m);
}

Test(sched, bad_requests_are_refused) {
    sink k = {0};
    ig_model *m = fake_model_new(V, NULL);
    ig_sched *s = mk_sched(m, 4, 4, 64, 4, 0, true, &k);
    int32_t p[20] = {0};
    ig_req *q = NULL;
    ig_error err = {0};
    int32_t n_ctx = ig_sched_n_ctx(s);
    cr_assert_eq(n_ctx, 16);
    ig_request r = {.prompt = p, .n_prompt = 16};
    cr_assert_eq(ig__req_new(&r, 1, 0, V, NULL, n_ctx, &q, &err), IG_ECONTEXT);
    r.n_prompt = 0;
    cr_assert_eq(ig__req_new(&r, 1, 0, V, NULL, n_ctx, &q, &err), IG_ECONTEXT);
    r.n_prompt = 3;
    p[1] = V;
    cr_assert_eq(ig__req_new(&r, 1, 0, V, NULL, n_ctx, &q, &err), IG_EINVAL);
    p[1] = 0;
    r.n_logprobs = 21;
    cr_assert_eq(ig__req_new(&r, 1, 0, V, NULL, n_ctx, &q, &err), IG_EINVAL);
    r.n_logprobs = 0;
    const char *stop[] = {"x"};
    r.stop = stop;
    r.n_stop = 1;
    cr_assert_eq(ig__req_new(&r, 1, 0, V, NULL, n_ctx, &q, &err), IG_EINVAL, "no vocab");
    r.n_stop = 0;
    ig_sampler_params sp = ig_sampler_params_default();
    sp.top_p = 2;
    r.sampling = &sp;
    cr_assert_eq(ig__req_new(&r, 1, 0, V, NULL, n_ctx, &q, &err), IG_EINVAL);
    cr_assert_null(q);
    ig_sched_free(s);
    fake_model_free(m);
}

Test(sched, forward_failure_ends_only_that_batch) {
    sink k = {0};
    ig_model *m = fake_model_new(V, NULL);
    ig_sched *s = mk_sched(m, 64, 4, 64, 1, 0, true, &k);
    int32_t p[4];
    prompt_of(p, 4, 3);
    add_req(s, m, 1, p, 4, (req_opts){.max_tokens = 5});
    add_req(s, m, 2, p, 4, (req_opts){.max_tokens = 5});
    fake_of(m)->fail_next = 1;
    ig_error err = {0};
    cr_assert_eq(ig_sched_step(s, 0, NULL, &err), IG_EINTERNAL);
    cr_assert_eq(sink_find(&k, 1)->finish, IG_FINISH_KIND_ERROR);
    cr_assert_eq(sink_find(&k, 1)->status, IG_EINTERNAL);
    int64_t now = 1;
    run_all(s, &now, 50);
    rec *r2 = sink_find(&k, 2);
    cr_assert_eq(r2->finish, IG_FINISH_KIND_LENGTH);
    expect_oracle(m, r2, p, 4);
    check_blocks_idle(s);
    ig_sched_free(s);
    fake_model_free(m);
}

/* A seeded sampler gives the same tokens alone and in company. */
Test(sched, seeded_sampling_is_batch_invariant) {
    int32_t p[4][6];
    rec alone[4];
    for (int i = 0; i < 4; i++) prompt_of(p[i], 6, 60 + i);
    for (int i = 0; i < 4; i++) {
        sink k = {0};
        ig_model *m = fake_model_new(V, NULL);
        ig_sched *s = mk_sched(m, 64, 4, 64, 8, 0, true, &k);
        add_req(s, m, 1, p[i], 6,
                (req_opts){.max_tokens = 10, .temperature = 1.5f, .seed = 100 + (uint64_t)i});
        int64_t now = 0;
        run_all(s, &now, 50);
        alone[i] = *sink_find(&k, 1);
        ig_sched_free(s);
        fake_model_free(m);
    }
    sink k = {0};
    ig_model *m = fake_model_new(V, NULL);
    ig_sched *s = mk_sched(m, 9, 4, 5, 3, 0, true, &k); /* tiny: chunks and preemption */
    for (int i = 0; i < 4; i++)
        add_req(s, m, (ig_request_id)i + 1, p[i], 6,
                (req_opts){.max_tokens = 10, .temperature = 1.5f, .seed = 100 + (uint64_t)i});
    int64_t now = 0;
    run_all(s, &now, 500);
    bool differs_from_greedy = false;
    for (int i = 0; i < 4; i++) {
        rec *r = sink_find(&k, (ig_request_id)i + 1);
        cr_assert_eq(r->n_tokens, alone[i].n_tokens);
        for (int j = 0; j < r->n_tokens; j++) cr_assert_eq(r->tokens[j], alone[i].tokens[j]);
        int32_t g[10];
        fake_greedy(fake_of(m), p[i], 6, 10, g);
        for (int j = 0; j < 10; j++) differs_from_greedy |= g[j] != r->tokens[j];
    }
    cr_assert(differs_from_greedy, "temperature 1.5 should leave greedy somewhere");
    ig_sched_free(s);
    fake_model_free(m);
}

/* A scripted random mix: shared prefixes, cancels, deadlines, a small pool. */
Test(sched, block_accounting_after_a_random_mix) {
    uint64_t rng = 7;
    for (int round = 0; round < 6; round++) {
        sink k = {0};
        ig_model *m = fake_model_new(V, NULL);
        ig_sched *s = mk_sched(m, 14 + round, 4, 7 + round, 3, 0, round % 2 == 0, &k);
        enum { N = 12 };
        int32_t p[N][24], np[N];
        int64_t now = 0;
        ig_error err = {0};
        int added = 0;
        while (added < N || ig_sched_has_work(s)) {
            rng = fake_mix(rng);
            if (added < N && rng % 3 == 0) {
                np[added] = 3 + (int32_t)((rng >> 8) % 20);
                prompt_of(p[added], np[added], (int32_t)((rng >> 16) % 3)); /* shared prefixes */
                p[added][np[added] - 1] = (int32_t)((rng >> 24) % V);
                req_opts o = {.max_tokens = 2 + (int32_t)((rng >> 32) % 9),
                              .priority = (int32_t)((rng >> 40) % 3)};
                if ((rng >> 44) % 7 == 0) o.deadline_us = now + (int64_t)((rng >> 48) % 10);
                add_req(s, m, (ig_request_id)added + 1, p[added], np[added], o);
                added++;
            }
            if (added > 0 && (rng >> 52) % 9 == 0)
                ig_sched_cancel(s, (ig_request_id)((rng >> 56) % (uint64_t)added) + 1);
            cr_assert_eq(ig_sched_step(s, now++, NULL, &err), IG_OK, "%s", err.message);
            cr_assert_eq(ig_kv_check(ig_sched_kv(s), &err), IG_OK, "%s", err.message);
            cr_assert_lt(now, 2000);
        }
        for (int i = 0; i < N; i++) {
            rec *r = sink_find(&k, (ig_request_id)i + 1);
            cr_assert_eq(r->n_finished, 1);
            cr_assert_eq(r->n_after_finish, 0);
            expect_oracle(m, r, p[i], np[i]);
        }
        check_blocks_idle(s);
        ig_sched_free(s);
        fake_model_free(m);
    }
}

/* ---- with a real tokenizer: text, stop strings, EOG ---- */

static ig_model *g_tok_model; /* stories260K, for its vocabulary */

static ig_model *fake_with_vocab(void) {
    ig_error err = {0};
    cr_assert_eq(ig_model_load(ig_test_path("models/stories260K.gguf"), &g_tok_model, &err), IG_OK,
                 "%s", err.message);
    return fake_model_new(g_tok_model->vocab->n_tokens, g_tok_model->vocab);
}

static void free_with_vocab(ig_model *m) {
    fake_model_free(m);
    ig_model_free(g_tok_model);
}

/* Reference text: the detokenizer fed the same tokens, then flushed. */
static size_t ref_text(const ig_vocab *v, const int32_t *toks, int32_t n, char *out) {
    ig_detok d;
    ig_detok_init(&d, v, false);
    d.at_start = false;
    size_t len = 0;
    for (int32_t i = 0; i < n; i++) len += ig_detok_push(&d, toks[i], out + len, 4096);
    len += ig_detok_flush(&d, out + len, 4096);
    out[len] = '\0';
    return len;
}

Test(sched, text_and_stop_strings) {
    ig_model *m = fake_with_vocab();
    const ig_vocab *v = m->vocab;
    int32_t p[6] = {1, 100, 200, 300, 400, 450};
    enum { N = 40 };
    int32_t g[N];
    fake_greedy(fake_of(m), p, 6, N, g);
    int32_t n_gen = N;
    for (int32_t i = 0; i < N; i++)
        if (ig_vocab_is_eog(v, g[i])) {
            n_gen = i;
            break;
        }
    cr_assert_gt(n_gen, 10, "pick another prompt: the fake ends too soon");
    char full[8192];
    size_t full_len = ref_text(v, g, n_gen, full);
    cr_assert_gt(full_len, 12);

    /* no stop string: all the text */
    {
        sink k = {0};
        ig_sched *s = mk_sched(m, 64, 4, 64, 4, 0, true, &k);
        add_req(s, m, 1, p, 6, (req_opts){.max_tokens = n_gen});
        int64_t now = 0;
        run_all(s, &now, 100);
        rec *r = sink_find(&k, 1);
        cr_assert_str_eq(r->text, full);
        ig_sched_free(s);
    }
    /* a stop string taken from the middle of the text: cut there, never partly streamed */
    {
        char stop[8];
        size_t at = full_len / 2;
        memcpy(stop, full + at, 4);
        stop[4] = '\0';
        const char *first = strstr(full, stop);
        size_t cut = (size_t)(first - full);
        const char *stops[] = {"never-in-the-text", stop};
        sink k = {0};
        ig_sched *s = mk_sched(m, 64, 4, 64, 4, 0, true, &k);
        add_req(s, m, 1, p, 6, (req_opts){.max_tokens = n_gen, .stop = stops, .n_stop = 2});
        int64_t now = 0;
        run_all(s, &now, 100);
        rec *r = sink_find(&k, 1);
        cr_assert_eq(r->finish, IG_FINISH_KIND_STOP);
        cr_assert_eq(r->text_len, cut, "text '%s', want the first %zu bytes of '%s'", r->text, cut,
                     full);
        cr_assert_eq(memcmp(r->text, full, cut), 0);
        ig_sched_free(s);
    }
    free_with_vocab(m);
}

Test(sched, eog_ends_with_stop) {
    ig_model *m = fake_with_vocab();
    int32_t eog = m->vocab->eos_id;
    cr_assert_geq(eog, 0);
    ig_logit_bias bias = {eog, 100.0f};
    ig_sampler_params sp = ig_sampler_params_default();
    sp.temperature = 0;
    sp.logit_bias = &bias;
    sp.n_logit_bias = 1;
    sink k = {0};
    ig_sched *s = mk_sched(m, 64, 4, 64, 4, 0, true, &k);
    int32_t p[3] = {1, 50, 60};
    ig_request r = {.prompt = p, .n_prompt = 3, .sampling = &sp, .max_tokens = 10};
    ig_req *q = NULL;
    ig_error err = {0};
    cr_assert_eq(ig__req_new(&r, 1, 0, m->desc.n_vocab, m->vocab, ig_sched_n_ctx(s), &q, &err),
                 IG_OK);
    cr_assert_eq(ig_sched_add(s, q, &err), IG_OK);
    int64_t now = 0;
    run_all(s, &now, 10);
    rec *rc = sink_find(&k, 1);
    cr_assert_eq(rc->finish, IG_FINISH_KIND_STOP);
    cr_assert_eq(rc->n_tokens, 0, "no TOKEN event for the end-of-generation token");
    cr_assert_eq(rc->stats.n_generated_tokens, 1);
    check_blocks_idle(s);
    ig_sched_free(s);
    free_with_vocab(m);
}

/* A waiting request that does not fit waits (it never preempts a running
 * one), and the smaller request behind it does not overtake it. */
Test(sched, admission_stops_at_the_first_that_does_not_fit) {
    sink k = {0};
    ig_model *m = fake_model_new(V, NULL);
    ig_sched *s = mk_sched(m, 6, 4, 64, 8, 0, true, &k);
    int32_t a[17], b[8], c[2];
    prompt_of(a, 17, 1);
    prompt_of(b, 8, 2);
    prompt_of(c, 2, 3);
    add_req(s, m, 1, a, 17, (req_opts){.max_tokens = 3, .priority = 1});
    add_req(s, m, 2, b, 8, (req_opts){.max_tokens = 2});
    add_req(s, m, 3, c, 2, (req_opts){.max_tokens = 2});
    ig_sched_step_info in;
    ig_error err = {0};
    for (int64_t t = 0; t < 3; t++) {
        cr_assert_eq(ig_sched_step(s, t, &in, &err), IG_OK);
        cr_assert_eq(ig_sched_n_running(s) + in.n_finished, 1, "step %d", (int)t);
        cr_assert_eq(ig_sched_n_waiting(s), 2, "step %d", (int)t);
        cr_assert_eq(in.n_preempted, 0);
    }
    cr_assert_eq(sink_find(&k, 1)->finish, IG_FINISH_KIND_LENGTH);
    cr_assert_eq(ig_sched_step(s, 3, &in, &err), IG_OK);
    cr_assert_eq(in.n_admitted, 2);
    int64_t now = 4;
    run_all(s, &now, 50);
    expect_oracle(m, sink_find(&k, 2), b, 8);
    expect_oracle(m, sink_find(&k, 3), c, 2);
    check_blocks_idle(s);
    ig_sched_free(s);
    fake_model_free(m);
}

/* A higher-priority arrival preempts lower-priority runners to get blocks;
 * the preempted one resumes afterwards with the same tokens. */
Test(sched, higher_priority_arrival_preempts_lower) {
    sink k = {0};
    ig_model *m = fake_model_new(V, NULL);
    ig_sched *s = mk_sched(m, 6, 4, 64, 8, 0, true, &k);
    int32_t a[17], b[8];
    prompt_of(a, 17, 1);
    prompt_of(b, 8, 2);
    add_req(s, m, 1, a, 17, (req_opts){.max_tokens = 3, .priority = 0});
    ig_sched_step_info in;
    ig_error err = {0};
    cr_assert_eq(ig_sched_step(s, 0, &in, &err), IG_OK);
    add_req(s, m, 2, b, 8, (req_opts){.max_tokens = 2, .priority = 3});
    cr_assert_eq(ig_sched_step(s, 1, &in, &err), IG_OK);
    cr_assert_eq(in.n_preempted, 1);
    cr_assert_eq(in.n_admitted, 1);
    cr_assert_eq(in.n_seqs, 1, "only the arrival runs this step");
    int64_t now = 2;
    run_all(s, &now, 50);
    rec *ra = sink_find(&k, 1), *rb = sink_find(&k, 2);
    cr_assert_eq(ra->stats.n_preemptions, 1);
    cr_assert_eq(ra->n_tokens, 3);
    expect_oracle(m, ra, a, 17);
    expect_oracle(m, rb, b, 8);
    /* equal priority: no preemption by an arrival */
    add_req(s, m, 3, a, 17, (req_opts){.max_tokens = 3});
    cr_assert_eq(ig_sched_step(s, now++, &in, &err), IG_OK);
    add_req(s, m, 4, b, 8, (req_opts){.max_tokens = 2});
    cr_assert_eq(ig_sched_step(s, now++, &in, &err), IG_OK);
    cr_assert_eq(in.n_preempted, 0);
    run_all(s, &now, 50);
    check_blocks_idle(s);
    ig_sched_free(s);
    fake_model_free(m);
}

/* The adaptive budget's knob: a lowered token budget bounds the next steps. */
Test(sched, token_budget_can_be_lowered_and_raised) {
    sink k = {0};
    ig_model *m = fake_model_new(V, NULL);
    ig_sched *s = mk_sched(m, 64, 4, 32, 8, 0, true, &k);
    int32_t p[30];
    prompt_of(p, 30, 2);
    add_req(s, m, 1, p, 30, (req_opts){.max_tokens = 4});
    ig_sched_set_token_budget(s, 5);
    cr_assert_eq(ig_sched_token_budget(s), 5);
    ig_sched_step_info in;
    ig_error err = {0};
    cr_assert_eq(ig_sched_step(s, 0, &in, &err), IG_OK);
    cr_assert_eq(in.n_tokens, 5);
    ig_sched_set_token_budget(s, 1000);
    cr_assert_eq(ig_sched_token_budget(s), 32, "clamped to max_batch_tokens");
    cr_assert_eq(ig_sched_step(s, 1, &in, &err), IG_OK);
    cr_assert_eq(in.n_tokens, 25);
    ig_sched_set_token_budget(s, 0);
    cr_assert_eq(ig_sched_token_budget(s), 1);
    int64_t now = 2;
    run_all(s, &now, 50);
    expect_oracle(m, sink_find(&k, 1), p, 30);
    ig_sched_free(s);
    fake_model_free(m);
}

/* A test clock for the scheduler: the time the step reads after its forward. */
typedef struct test_clock {
    int64_t t;
} test_clock;

static int64_t test_clock_read(void *ctx) {
    return ((test_clock *)ctx)->t;
}

typedef struct itl_sink {
    sink k;
    float itl[8];
    int32_t n_itl;
} itl_sink;

static void itl_sink_on_event(void *ctx, const ig_event *ev) {
    itl_sink *t = ctx;
    sink_on_event(&t->k, ev);
    if (ev->type == IG_EVENT_FINISHED && ev->stats)
        for (int32_t i = 0; i < ev->stats->n_itl && t->n_itl < 8; i++)
            t->itl[t->n_itl++] = ev->stats->itl_ms[i];
}

/*
 * A token is timed when it is emitted (the clock read after the forward
 * pass), not when its step started: queue_us from the step's start,
 * ttft_us, inter-token times and total_us from the clock after the forward.
 */
Test(sched, tokens_are_timed_after_the_forward_pass) {
    itl_sink t = {0};
    test_clock clk = {0};
    ig_model *m = fake_model_new(V, NULL);
    ig_sched_config c = {.model = m,
                         .n_blocks = 64,
                         .block_size = 4,
                         .eviction = IG_EVICT_LRU,
                         .prefix_caching = true,
                         .max_batch_tokens = 32,
                         .max_seqs = 4,
                         .emit = itl_sink_on_event,
                         .emit_ctx = &t,
                         .clock = test_clock_read,
                         .clock_ctx = &clk};
    ig_sched *s = NULL;
    ig_error err = {0};
    cr_assert_eq(ig_sched_new(&c, &s, &err), IG_OK, "%s", err.message);
    int32_t p[6];
    prompt_of(p, 6, 4);
    add_req(s, m, 1, p, 6, (req_opts){.max_tokens = 3}); /* arrives at 0 */
    clk.t = 1000;                                        /* the forward of step 10 ends at 1000 */
    cr_assert_eq(ig_sched_step(s, 10, NULL, &err), IG_OK);
    clk.t = 1500;
    cr_assert_eq(ig_sched_step(s, 1100, NULL, &err), IG_OK);
    clk.t = 2250;
    cr_assert_eq(ig_sched_step(s, 1600, NULL, &err), IG_OK);
    rec *r = sink_find(&t.k, 1);
    cr_assert_eq(r->n_finished, 1);
    cr_assert_eq(r->finish, IG_FINISH_KIND_LENGTH);
    cr_assert_eq(r->stats.queue_us, 10);
    cr_assert_eq(r->stats.ttft_us, 1000);
    cr_assert_eq(r->stats.total_us, 2250);
    cr_assert_eq(t.n_itl, 2);
    cr_assert_float_eq(t.itl[0], 0.5f, 1e-6);
    cr_assert_float_eq(t.itl[1], 0.75f, 1e-6);
    /* a clock behind the step's start never makes a token earlier than it */
    add_req(s, m, 2, p, 6, (req_opts){.max_tokens = 1});
    clk.t = 0;
    cr_assert_eq(ig_sched_step(s, 3000, NULL, &err), IG_OK);
    r = sink_find(&t.k, 2);
    cr_assert_eq(r->stats.ttft_us, 3000);
    cr_assert_geq(r->stats.total_us, r->stats.ttft_us);
    ig_sched_free(s);
    fake_model_free(m);
}
