/*
 * test_engine_model.c: batch invariance of the scheduler on real models
 * (stories260K and a synth model). Several requests run together, with
 * prefix-cache hits, chunked prefill, preemption in a tiny KV pool and
 * seeded sampling, must give bit-identical tokens and log-probabilities to
 * each request run alone. The alone run itself is checked against
 * ig_generate (the separate single-sequence path) by its text.
 */
#include <criterion/criterion.h>
#include <string.h>

#include "engine/generate.h"
#include "engine_testutil.h"
#include "testutil.h"

#define N_REQ 5
#define N_GEN 24

typedef struct scenario {
    const char *name;
    int32_t n_blocks, block_size, max_batch_tokens, max_seqs;
    bool prefix_caching;
    bool expect_preemption;
} scenario;

static ig_model *load(const char *rel) {
    ig_model *m = NULL;
    ig_error err = {0};
    cr_assert_eq(ig_model_load(ig_test_path(rel), &m, &err), IG_OK, "%s: %s", rel, err.message);
    return m;
}

/* Prompts sharing prefixes: a base text, the same text extended, and others. */
static const char *PROMPTS[N_REQ] = {
    "Once upon a time, there was a little girl named Lily.",
    "Once upon a time, there was a little girl named Lily. She loved to play",
    "Once upon a time, there was a big dog",
    "Tom and Sam went to the park.",
    "Once upon a time, there was a little girl named Lily. She loved to play",
};

typedef struct prompts {
    int32_t ids[N_REQ][128];
    int32_t n[N_REQ];
} prompts;

static void tokenize_all(ig_model *m, prompts *p) {
    for (int i = 0; i < N_REQ; i++) {
        ig_tokens t = {0};
        ig_tokenize_opts o = {.add_special = true, .parse_special = false};
        cr_assert_eq(ig_tokenize(m->vocab, PROMPTS[i], strlen(PROMPTS[i]), o, &t, NULL), IG_OK);
        cr_assert_leq(t.n, 128);
        memcpy(p->ids[i], t.ids, t.n * sizeof *t.ids);
        p->n[i] = (int32_t)t.n;
        ig_tokens_free(&t);
    }
}

static req_opts opts_for(int i, bool sampled) {
    req_opts o = {.max_tokens = N_GEN, .n_logprobs = 3, .priority = i % 2};
    if (sampled) {
        o.temperature = 0.9f;
        o.seed = 77 + (uint64_t)i;
    }
    return o;
}

static void run_alone(ig_model *m, const prompts *p, int i, bool sampled, rec *out) {
    sink k = {0};
    ig_sched *s = mk_sched(m, 64, 16, 512, 8, 0, true, &k);
    add_req(s, m, 1, p->ids[i], p->n[i], opts_for(i, sampled));
    int64_t now = 0;
    run_all(s, &now, 200);
    *out = *sink_find(&k, 1);
    cr_assert_eq(out->n_finished, 1);
    ig_sched_free(s);
}

static void expect_same(const rec *a, const rec *b, const char *what, int i) {
    cr_assert_eq(a->n_tokens, b->n_tokens, "%s: request %d: %d tokens vs %d alone", what, i,
                 a->n_tokens, b->n_tokens);
    for (int j = 0; j < a->n_tokens; j++) {
        cr_assert_eq(a->tokens[j], b->tokens[j], "%s: request %d token %d", what, i, j);
        cr_assert_eq(memcmp(&a->logprob[j], &b->logprob[j], sizeof(float)), 0,
                     "%s: request %d token %d: logprob %.9g vs %.9g alone (must be bit-identical)",
                     what, i, j, a->logprob[j], b->logprob[j]);
        cr_assert_eq(a->top0[j], b->top0[j]);
        cr_assert_eq(memcmp(&a->top0_lp[j], &b->top0_lp[j], sizeof(float)), 0);
    }
    cr_assert_eq(a->text_len, b->text_len, "%s: request %d text length", what, i);
    cr_assert_eq(memcmp(a->text, b->text, a->text_len), 0, "%s: request %d text", what, i);
    cr_assert_eq(a->finish, b->finish);
}

typedef struct text_out {
    char buf[8192];
    size_t len; /* the text may hold NUL bytes (byte tokens) */
} text_out;

static bool gen_text(void *user, const char *text, size_t len) {
    text_out *t = user;
    cr_assert_lt(t->len + len, sizeof t->buf);
    memcpy(t->buf + t->len, text, len);
    t->len += len;
    return true;
}

static void check_model(const char *rel, int n_modes) {
    ig_model *m = load(rel);
    prompts p;
    tokenize_all(m, &p);
    static const scenario SC[] = {
        {"together", 128, 16, 512, 8, true, false},
        {"no prefix cache", 128, 16, 512, 8, false, false},
        {"chunked prefill", 128, 16, 7, 3, true, false},
        {"tiny pool (preemption)", 9, 8, 64, 5, true, true},
        {"tiny blocks, chunks, preemption", 24, 2, 5, 4, true, true},
    };
    for (int sampled = 0; sampled < n_modes; sampled++) {
        rec alone[N_REQ];
        for (int i = 0; i < N_REQ; i++) run_alone(m, &p, i, sampled, &alone[i]);
        if (!sampled) {
            /* the alone run against the single-sequence generator */
            for (int i = 0; i < N_REQ; i++) {
                ig_gen_params gp = ig_gen_params_default();
                gp.n_predict = N_GEN;
                gp.sampling.temperature = 0;
                static text_out text;
                text.len = 0;
                ig_gen_result res;
                ig_error err = {0};
                cr_assert_eq(ig_generate(m, NULL, p.ids[i], (size_t)p.n[i], &gp, gen_text, &text,
                                         &res, &err),
                             IG_OK, "%s", err.message);
                cr_assert_eq(alone[i].text_len, text.len, "%s request %d: engine vs ig_generate",
                             rel, i);
                cr_assert_eq(memcmp(alone[i].text, text.buf, text.len), 0,
                             "%s request %d: engine vs ig_generate", rel, i);
            }
        }
        for (size_t c = 0; c < sizeof SC / sizeof SC[0]; c++) {
            sink k = {0};
            ig_sched *s = mk_sched(m, SC[c].n_blocks, SC[c].block_size, SC[c].max_batch_tokens,
                                   SC[c].max_seqs, 0, SC[c].prefix_caching, &k);
            int64_t now = 0;
            /* the first two start at once; the rest join while they run */
            add_req(s, m, 1, p.ids[0], p.n[0], opts_for(0, sampled));
            add_req(s, m, 2, p.ids[1], p.n[1], opts_for(1, sampled));
            ig_error err = {0};
            for (int st = 0; st < 3; st++)
                cr_assert_eq(ig_sched_step(s, now++, NULL, &err), IG_OK, "%s", err.message);
            for (int i = 2; i < N_REQ; i++)
                add_req(s, m, (ig_request_id)i + 1, p.ids[i], p.n[i], opts_for(i, sampled));
            run_all(s, &now, 2000);
            ig_sched_counters cnt;
            ig_sched_get_counters(s, &cnt);
            if (SC[c].expect_preemption)
                cr_assert_gt(cnt.n_preemptions, 0, "%s: the pool was meant to run out", SC[c].name);
            char what[128];
            snprintf(what, sizeof what, "%s, %s, %s", rel, SC[c].name,
                     sampled ? "seeded sampling" : "greedy");
            for (int i = 0; i < N_REQ; i++)
                expect_same(sink_find(&k, (ig_request_id)i + 1), &alone[i], what, i);
            if (SC[c].prefix_caching && SC[c].n_blocks >= 64)
                cr_assert_gt(sink_find(&k, 5)->stats.n_cached_tokens, 0,
                             "%s: the repeated prompt should hit the cache", what);
            check_blocks_idle(s);
            ig_sched_free(s);
        }
    }
    ig_model_free(m);
}

Test(engine_model, stories260K_batched_equals_alone) {
    check_model("models/stories260K.gguf", 2);
}

Test(engine_model, synth_q8_0_batched_equals_alone) {
    check_model("models/synth/synth-q8_0.gguf", 1); /* greedy only: keeps the test short */
}
