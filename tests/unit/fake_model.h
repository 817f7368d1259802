/*
 * fake_model.h: a tiny deterministic model behind ig_model_ops, for testing
 * the scheduler and the engine exactly.
 *
 * The fake writes each token's id and position into the KV cache (K slot 0 =
 * id, slot 1 = position, through the sequence's block table) and computes a
 * token's logits from a hash of every (id, position) it reads back from the
 * cache for positions 0..p. So its output depends on the whole history, and
 * a wrong block table, a stale prefix-cache block or a position written to
 * the wrong place changes (or, for a misplaced position, fails) the result.
 *
 * fake_logits_of(tokens, n) computes the same row straight from a token list
 * with no cache: the oracle the tests compare against.
 *
 * It logs every forward call (tokens per sequence, in batch order) and can
 * be told to fail, or to block inside forward until released (to hold the
 * engine thread still while a test fills the queue).
 */
#ifndef IG_TEST_FAKE_MODEL_H
#define IG_TEST_FAKE_MODEL_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/error.h"
#include "model/model.h"

#define FAKE_LOG_MAX  256
#define FAKE_LOG_SEQS 16

typedef struct fake_call {
    int32_t n_tokens;
    int32_t n_seqs;
    int32_t seq_tokens[FAKE_LOG_SEQS]; /* tokens of batch sequence j */
    int32_t seq_first_pos[FAKE_LOG_SEQS];
} fake_call;

typedef struct fake_impl {
    int32_t n_vocab;
    float peak; /* logit added to the favoured token */
    fake_call log[FAKE_LOG_MAX];
    int32_t n_calls; /* may exceed FAKE_LOG_MAX; the log keeps the first ones */
    int fail_next;   /* > 0: the next forward fails with IG_EINTERNAL */
    /* gate: while is_gated, forward waits (engine tests) */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int is_gated;
    int n_waiting_at_gate;
} fake_impl;

static inline uint64_t fake_mix(uint64_t x) {
    x += 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

static inline uint64_t fake_step_hash(uint64_t h, int32_t tok, int32_t pos) {
    return fake_mix(h ^ ((uint64_t)(uint32_t)tok << 20) ^ (uint64_t)(uint32_t)pos);
}

static inline void fake_row(uint64_t h, int32_t n_vocab, float peak, float *out) {
    for (int32_t v = 0; v < n_vocab; v++)
        out[v] =
            (float)(fake_mix(h ^ ((uint64_t)v * 0x2545F4914F6CDD1Dull)) >> 40) / (float)(1 << 24);
    out[h % (uint64_t)n_vocab] += peak;
}

/* The oracle: logits after tokens[0..n). */
static inline void fake_logits_of(const fake_impl *f, const int32_t *tokens, int32_t n,
                                  float *out) {
    uint64_t h = 0x12345;
    for (int32_t p = 0; p < n; p++) h = fake_step_hash(h, tokens[p], p);
    fake_row(h, f->n_vocab, f->peak, out);
}

static inline uint16_t *fake_slot(ig_kv_cache *kv, const ig_batch_seq *s, int32_t pos) {
    int32_t b = s->block_table[pos / kv->block_size];
    return kv->k + ig_kv_offset(kv, b, 0, pos % kv->block_size);
}

static ig_status fake_forward(void *impl, const ig_batch *b, ig_kv_cache *kv, ig_pool *pool,
                              float *logits, ig_error *err) {
    (void)pool;
    fake_impl *f = impl;
    pthread_mutex_lock(&f->mu);
    f->n_waiting_at_gate++;
    pthread_cond_broadcast(&f->cv);
    while (f->is_gated) pthread_cond_wait(&f->cv, &f->mu);
    f->n_waiting_at_gate--;
    int fail = f->fail_next > 0;
    if (fail) f->fail_next--;
    if (f->n_calls < FAKE_LOG_MAX) {
        fake_call *c = &f->log[f->n_calls];
        memset(c, 0, sizeof *c);
        c->n_tokens = b->n_tokens;
        c->n_seqs = b->n_seqs;
        for (int32_t i = b->n_tokens - 1; i >= 0; i--)
            if (b->seq[i] < FAKE_LOG_SEQS) {
                c->seq_tokens[b->seq[i]]++;
                c->seq_first_pos[b->seq[i]] = b->pos[i];
            }
    }
    f->n_calls++;
    pthread_mutex_unlock(&f->mu);
    if (fail) return ig_errorf(err, IG_EINTERNAL, "fake: injected failure");

    /* write every token's (id, position) first: later tokens may read them */
    for (int32_t i = 0; i < b->n_tokens; i++) {
        uint16_t *slot = fake_slot(kv, &b->seqs[b->seq[i]], b->pos[i]);
        slot[0] = (uint16_t)b->tokens[i];
        slot[1] = (uint16_t)b->pos[i];
    }
    int32_t row = 0;
    for (int32_t i = 0; i < b->n_tokens; i++) {
        int want = b->want_logits ? b->want_logits[i] : (i == b->n_tokens - 1);
        if (!want) continue;
        const ig_batch_seq *s = &b->seqs[b->seq[i]];
        uint64_t h = 0x12345;
        for (int32_t p = 0; p <= b->pos[i]; p++) {
            const uint16_t *slot = fake_slot(kv, s, p);
            if (slot[1] != (uint16_t)p)
                return ig_errorf(err, IG_EINTERNAL, "fake: cache slot of position %d holds %d", p,
                                 slot[1]);
            h = fake_step_hash(h, slot[0], p);
        }
        fake_row(h, f->n_vocab, f->peak, logits + (size_t)row * f->n_vocab);
        row++;
    }
    return IG_OK;
}

static void fake_free(void *impl) {
    fake_impl *f = impl;
    pthread_mutex_destroy(&f->mu);
    pthread_cond_destroy(&f->cv);
    free(f);
}

static const ig_model_ops FAKE_OPS = {"fake", fake_forward, fake_free};

/* A fake model of n_vocab tokens; vocab (borrowed, may be NULL) must have n_vocab tokens. */
static inline ig_model *fake_model_new(int32_t n_vocab, ig_vocab *vocab) {
    ig_model *m = calloc(1, sizeof *m);
    fake_impl *f = calloc(1, sizeof *f);
    f->n_vocab = n_vocab;
    f->peak = 3.0f;
    pthread_mutex_init(&f->mu, NULL);
    pthread_cond_init(&f->cv, NULL);
    m->ops = &FAKE_OPS;
    m->impl = f;
    strcpy(m->desc.arch, "fake");
    strcpy(m->desc.name, "fake");
    m->desc.n_vocab = n_vocab;
    m->desc.n_layer = 1;
    m->desc.n_embd = 2;
    m->desc.n_head = 1;
    m->desc.n_head_kv = 1;
    m->desc.head_dim = 2;
    m->desc.n_ctx_train = 4096;
    m->vocab = vocab;
    return m;
}

static inline fake_impl *fake_of(ig_model *m) {
    return m->impl;
}

/* Free the fake (not the borrowed vocab). */
static inline void fake_model_free(ig_model *m) {
    if (!m) return;
    m->ops->free(m->impl);
    free(m);
}

static inline void fake_gate(ig_model *m, int on) {
    fake_impl *f = fake_of(m);
    pthread_mutex_lock(&f->mu);
    f->is_gated = on;
    pthread_cond_broadcast(&f->cv);
    pthread_mutex_unlock(&f->mu);
}

/* Wait (at most 10 s) until the engine thread sits inside forward at the gate. */
static inline bool fake_wait_at_gate(ig_model *m) {
    fake_impl *f = fake_of(m);
    struct timespec dl;
    clock_gettime(CLOCK_REALTIME, &dl);
    dl.tv_sec += 10;
    pthread_mutex_lock(&f->mu);
    int rc = 0;
    while (f->n_waiting_at_gate == 0 && rc == 0) rc = pthread_cond_timedwait(&f->cv, &f->mu, &dl);
    bool ok = f->n_waiting_at_gate > 0;
    pthread_mutex_unlock(&f->mu);
    return ok;
}

/* Greedy oracle: n_gen tokens after prompt (no EOG handling). out has room for n_gen. */
static inline void fake_greedy(const fake_impl *f, const int32_t *prompt, int32_t n_prompt,
                               int32_t n_gen, int32_t *out) {
    int32_t *all = malloc((size_t)(n_prompt + n_gen) * sizeof *all);
    float *row = malloc((size_t)f->n_vocab * sizeof *row);
    memcpy(all, prompt, (size_t)n_prompt * sizeof *all);
    for (int32_t g = 0; g < n_gen; g++) {
        fake_logits_of(f, all, n_prompt + g, row);
        int32_t best = 0;
        for (int32_t v = 1; v < f->n_vocab; v++)
            if (row[v] > row[best]) best = v;
        all[n_prompt + g] = best;
        out[g] = best;
    }
    free(row);
    free(all);
}

#endif
