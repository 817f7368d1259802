/*
 * sampler.c: the sampler chain (stage list, candidate buffer, history
 * plumbing), parameter defaults and validation, and the standard chain built
 * from ig_sampler_params. The built-in stages live in sampler_stages.c.
 *
 * Invariant: a chain's candidate buffer has exactly n_vocab entries and is
 * allocated at creation; nothing here allocates after ig_sampler_new*()
 * and ig_sampler_add*() return. A chain belongs to one thread at a time.
 */
#include "sample/sampler.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "sample/rng.h"
#include "sample/sampler_internal.h"

typedef struct stage {
    const ig_sampler_stage_ops *ops; /* borrowed, static tables for built-ins */
    void *state;                     /* owned, may be NULL */
} stage;

struct ig_sampler {
    int32_t n_vocab;   /* candidates per row */
    uint64_t seed;     /* resolved seed (never IG_SAMPLER_SEED_RANDOM) */
    stage *stages;     /* [n_stages] applied in order */
    size_t n_stages;   /* stages in use */
    size_t cap_stages; /* allocated entries of `stages` */
    ig_candidate *buf; /* [n_vocab] working storage behind `cur` */
    ig_candidates cur; /* view left by the last sample */
};

ig_sampler_params ig_sampler_params_default(void) {
    return (ig_sampler_params){
        .temperature = 1.0f,
        .top_k = 0,
        .top_p = 1.0f,
        .min_p = 0.0f,
        .repeat_penalty = 1.0f,
        .repeat_last_n = 64,
        .presence_penalty = 0.0f,
        .frequency_penalty = 0.0f,
        .logit_bias = NULL,
        .n_logit_bias = 0,
        .seed = IG_SAMPLER_SEED_RANDOM,
    };
}

ig_status ig__sampler_check_bias(const ig_logit_bias *bias, size_t n_bias, int32_t n_vocab,
                                 ig_error *err) {
    if (n_bias > 0 && !bias)
        return ig_errorf(err, IG_EINVAL, "logit_bias is NULL with %zu entries", n_bias);
    for (size_t i = 0; i < n_bias; i++) {
        if (bias[i].token < 0 || bias[i].token >= n_vocab)
            return ig_errorf(err, IG_EINVAL,
                             "logit_bias[%zu].token %d is outside the vocabulary [0, %d)", i,
                             (int)bias[i].token, (int)n_vocab);
        if (isnan(bias[i].bias))
            return ig_errorf(err, IG_EINVAL, "logit_bias[%zu].bias (token %d) is NaN", i,
                             (int)bias[i].token);
    }
    return IG_OK;
}

ig_status ig__sampler_check_penalties(int32_t repeat_last_n, float repeat_penalty,
                                      float frequency_penalty, float presence_penalty,
                                      ig_error *err) {
    if (!(repeat_penalty > 0.0f) || isinf(repeat_penalty))
        return ig_errorf(err, IG_EINVAL, "repeat_penalty must be a finite number > 0, got %g",
                         (double)repeat_penalty);
    if (repeat_last_n < 0 || repeat_last_n > IG_SAMPLER_MAX_LAST_N)
        return ig_errorf(err, IG_EINVAL, "repeat_last_n must be in [0, %d], got %d",
                         IG_SAMPLER_MAX_LAST_N, (int)repeat_last_n);
    if (!isfinite(presence_penalty))
        return ig_errorf(err, IG_EINVAL, "presence_penalty must be finite, got %g",
                         (double)presence_penalty);
    if (!isfinite(frequency_penalty))
        return ig_errorf(err, IG_EINVAL, "frequency_penalty must be finite, got %g",
                         (double)frequency_penalty);
    return IG_OK;
}

ig_status ig_sampler_params_validate(const ig_sampler_params *p, int32_t n_vocab, ig_error *err) {
    if (!p) return ig_errorf(err, IG_EINVAL, "sampler params are NULL");
    if (n_vocab <= 0) return ig_errorf(err, IG_EINVAL, "n_vocab must be > 0, got %d", (int)n_vocab);
    if (!(p->temperature >= 0.0f) || isinf(p->temperature))
        return ig_errorf(err, IG_EINVAL, "temperature must be a finite number >= 0, got %g",
                         (double)p->temperature);
    if (!(p->top_p > 0.0f && p->top_p <= 1.0f))
        return ig_errorf(err, IG_EINVAL, "top_p must be in (0, 1], got %g", (double)p->top_p);
    if (!(p->min_p >= 0.0f && p->min_p <= 1.0f))
        return ig_errorf(err, IG_EINVAL, "min_p must be in [0, 1], got %g", (double)p->min_p);
    ig_status st = ig__sampler_check_penalties(p->repeat_last_n, p->repeat_penalty,
                                               p->frequency_penalty, p->presence_penalty, err);
    if (st != IG_OK) return st;
    return ig__sampler_check_bias(p->logit_bias, p->n_logit_bias, n_vocab, err);
}

ig_status ig_sampler_new_empty(int32_t n_vocab, uint64_t seed, ig_sampler **out, ig_error *err) {
    if (n_vocab <= 0) return ig_errorf(err, IG_EINVAL, "n_vocab must be > 0, got %d", (int)n_vocab);
    ig_sampler *s = calloc(1, sizeof *s);
    if (!s) goto oom;
    s->buf = malloc((size_t)n_vocab * sizeof *s->buf);
    if (!s->buf) goto oom;
    s->n_vocab = n_vocab;
    s->seed = seed == IG_SAMPLER_SEED_RANDOM ? ig_rng_entropy_seed() : seed;
    s->cur = (ig_candidates){.data = s->buf, .n = 0, .selected = -1};
    *out = s;
    return IG_OK;
oom:
    ig_sampler_free(s);
    return ig_errorf(err, IG_ENOMEM, "out of memory allocating a sampler for %d tokens",
                     (int)n_vocab);
}

void ig_sampler_free(ig_sampler *s) {
    if (!s) return;
    for (size_t i = s->n_stages; i-- > 0;) {
        if (s->stages[i].ops->free) s->stages[i].ops->free(s->stages[i].state);
    }
    free(s->stages);
    free(s->buf);
    free(s);
}

ig_status ig_sampler_add(ig_sampler *s, const ig_sampler_stage_ops *ops, void *state,
                         ig_error *err) {
    if (!s || !ops || !ops->apply)
        return ig_errorf(err, IG_EINVAL, "sampler stage needs a chain, ops and ops->apply");
    if (s->n_stages == s->cap_stages) {
        size_t cap = s->cap_stages ? s->cap_stages * 2 : 8;
        stage *grown = realloc(s->stages, cap * sizeof *grown);
        if (!grown) return ig_errorf(err, IG_ENOMEM, "out of memory adding sampler stage");
        s->stages = grown;
        s->cap_stages = cap;
    }
    s->stages[s->n_stages++] = (stage){ops, state};
    return IG_OK;
}

ig_status ig_sampler_new(const ig_sampler_params *p, int32_t n_vocab, ig_sampler **out,
                         ig_error *err) {
    ig_sampler *s = NULL;
    ig_status st = ig_sampler_params_validate(p, n_vocab, err);
    if (st != IG_OK) goto fail;
    st = ig_sampler_new_empty(n_vocab, p->seed, &s, err);
    if (st != IG_OK) goto fail;
    if (p->n_logit_bias > 0) {
        st = ig_sampler_add_logit_bias(s, p->logit_bias, p->n_logit_bias, err);
        if (st != IG_OK) goto fail;
    }
    bool rep_on = p->repeat_penalty != 1.0f && p->repeat_last_n > 0;
    if (rep_on || p->frequency_penalty != 0.0f || p->presence_penalty != 0.0f) {
        st = ig_sampler_add_penalties(s, rep_on ? p->repeat_last_n : 0, p->repeat_penalty,
                                      p->frequency_penalty, p->presence_penalty, err);
        if (st != IG_OK) goto fail;
    }
    if (p->temperature == 0.0f) {
        /* Top-k/p and min-p always keep the most likely token, and
         * temperature does not move it, so greedy needs none of them. */
        st = ig_sampler_add_greedy(s, err);
        if (st != IG_OK) goto fail;
        *out = s;
        return IG_OK;
    }
    if (p->top_k > 0 && p->top_k < n_vocab) {
        st = ig_sampler_add_top_k(s, p->top_k, err);
        if (st != IG_OK) goto fail;
    }
    if (p->top_p < 1.0f) {
        st = ig_sampler_add_top_p(s, p->top_p, err);
        if (st != IG_OK) goto fail;
    }
    if (p->min_p > 0.0f) {
        st = ig_sampler_add_min_p(s, p->min_p, err);
        if (st != IG_OK) goto fail;
    }
    if (p->temperature != 1.0f) {
        st = ig_sampler_add_temperature(s, p->temperature, err);
        if (st != IG_OK) goto fail;
    }
    st = ig_sampler_add_dist(s, err);
    if (st != IG_OK) goto fail;
    *out = s;
    return IG_OK;
fail:
    ig_sampler_free(s);
    return st;
}

ig_status ig_sampler_sample(ig_sampler *s, const float *logits, int32_t *out_token, ig_error *err) {
    ig_candidates *cur = &s->cur;
    for (int32_t i = 0; i < s->n_vocab; i++) {
        if (isnan(logits[i])) {
            cur->n = 0;
            return ig_errorf(err, IG_ERANGE, "logit of token %d is NaN", (int)i);
        }
        s->buf[i] = (ig_candidate){.id = i, .logit = logits[i], .p = 0.0f};
    }
    *cur = (ig_candidates){.data = s->buf,
                           .n = (size_t)s->n_vocab,
                           .n_sorted = 0,
                           .is_vocab_order = true,
                           .selected = -1};
    for (size_t i = 0; i < s->n_stages; i++) {
        ig_status st = s->stages[i].ops->apply(s->stages[i].state, cur, err);
        if (st != IG_OK) return st;
    }
    if (cur->selected < 0)
        return ig_errorf(err, IG_EINVAL,
                         "sampler chain selected no token (it needs a greedy or dist stage)");
    *out_token = cur->selected;
    return IG_OK;
}

const ig_candidates *ig_sampler_candidates(const ig_sampler *s) {
    return &s->cur;
}

static void feed(ig_sampler *s, int32_t token, bool is_prompt) {
    for (size_t i = 0; i < s->n_stages; i++) {
        if (s->stages[i].ops->accept)
            s->stages[i].ops->accept(s->stages[i].state, token, is_prompt);
    }
}

ig_status ig_sampler_accept(ig_sampler *s, int32_t token, ig_error *err) {
    if (token < 0 || token >= s->n_vocab)
        return ig_errorf(err, IG_EINVAL, "accepted token %d is outside the vocabulary [0, %d)",
                         (int)token, (int)s->n_vocab);
    feed(s, token, false);
    return IG_OK;
}

ig_status ig_sampler_accept_prompt(ig_sampler *s, const int32_t *tokens, size_t n_tokens,
                                   ig_error *err) {
    if (n_tokens > 0 && !tokens)
        return ig_errorf(err, IG_EINVAL, "prompt tokens are NULL with n_tokens %zu", n_tokens);
    for (size_t i = 0; i < n_tokens; i++) {
        if (tokens[i] < 0 || tokens[i] >= s->n_vocab)
            return ig_errorf(err, IG_EINVAL,
                             "prompt token %zu (%d) is outside the vocabulary [0, %d)", i,
                             (int)tokens[i], (int)s->n_vocab);
    }
    for (size_t i = 0; i < n_tokens; i++) feed(s, tokens[i], true);
    return IG_OK;
}

void ig_sampler_reset(ig_sampler *s) {
    for (size_t i = 0; i < s->n_stages; i++) {
        if (s->stages[i].ops->reset) s->stages[i].ops->reset(s->stages[i].state);
    }
    s->cur.n = 0;
    s->cur.n_sorted = 0;
    s->cur.selected = -1;
}

ig_status ig_sampler_clone(const ig_sampler *s, ig_sampler **out, ig_error *err) {
    ig_sampler *c = NULL;
    ig_status st = ig_sampler_new_empty(s->n_vocab, s->seed, &c, err);
    if (st != IG_OK) return st;
    for (size_t i = 0; i < s->n_stages; i++) {
        const stage *src = &s->stages[i];
        void *state = NULL;
        if (src->state) {
            if (!src->ops->clone) {
                st = ig_errorf(err, IG_EUNSUPPORTED, "sampler stage '%s' cannot be cloned",
                               src->ops->name ? src->ops->name : "?");
                goto fail;
            }
            st = src->ops->clone(src->state, &state);
            if (st != IG_OK) {
                ig_errorf(err, st, "cloning sampler stage '%s' failed",
                          src->ops->name ? src->ops->name : "?");
                goto fail;
            }
        }
        st = ig_sampler_add(c, src->ops, state, err);
        if (st != IG_OK) {
            if (state && src->ops->free) src->ops->free(state);
            goto fail;
        }
    }
    *out = c;
    return IG_OK;
fail:
    ig_sampler_free(c);
    return st;
}

uint64_t ig_sampler_seed(const ig_sampler *s) {
    return s->seed;
}

int32_t ig_sampler_n_vocab(const ig_sampler *s) {
    return s->n_vocab;
}
