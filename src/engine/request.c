/*
 * request.c: building, validating and freeing an engine request (ig_req),
 * and the held-back text buffer that keeps a stop string from being partly
 * streamed. See request.h for ownership and threads.
 */
#include "engine/request.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"

ig_status ig__req_new(const ig_request *r, ig_request_id id, int64_t now_us, int32_t n_vocab,
                      const ig_vocab *vocab, int32_t n_ctx, ig_req **out, ig_error *err) {
    ig_status st = IG_OK;
    if (!r) return ig_errorf(err, IG_EINVAL, "request: NULL");
    if (r->n_prompt == 0 || !r->prompt)
        return ig_errorf(err, IG_ECONTEXT, "request: the prompt is empty");
    if (r->n_prompt >= (size_t)n_ctx)
        return ig_errorf(err, IG_ECONTEXT,
                         "request: prompt of %zu tokens does not fit the context of %d tokens "
                         "(at least one token must be generated)",
                         r->n_prompt, n_ctx);
    for (size_t i = 0; i < r->n_prompt; i++)
        if (r->prompt[i] < 0 || r->prompt[i] >= n_vocab)
            return ig_errorf(err, IG_EINVAL,
                             "request: prompt token %zu is %d, outside the vocabulary of %d", i,
                             r->prompt[i], n_vocab);
    if (r->n_logprobs < 0 || r->n_logprobs > IG_REQ_MAX_LOGPROBS)
        return ig_errorf(err, IG_EINVAL, "request: n_logprobs must be in [0, %d], got %d",
                         IG_REQ_MAX_LOGPROBS, r->n_logprobs);
    if (r->timeout_ms < 0) return ig_errorf(err, IG_EINVAL, "request: timeout_ms is negative");
    if (r->deadline_us < 0) return ig_errorf(err, IG_EINVAL, "request: deadline_us is negative");
    if (r->n_stop > 0 && !r->stop) return ig_errorf(err, IG_EINVAL, "request: stop is NULL");
    if (r->n_stop > 0 && !vocab)
        return ig_errorf(err, IG_EINVAL, "request: stop strings need a model with a vocabulary");
    for (size_t i = 0; i < r->n_stop; i++)
        if (!r->stop[i] || !r->stop[i][0])
            return ig_errorf(err, IG_EINVAL, "request: stop string %zu is empty", i);

    ig_req *q = calloc(1, sizeof *q);
    if (!q) return ig_errorf(err, IG_ENOMEM, "request: out of memory");
    q->id = id;
    q->user_data = r->user_data;
    q->priority = r->priority;
    q->arrival_us = now_us;
    q->deadline_us = r->deadline_us;
    if (r->timeout_ms > 0 && r->timeout_ms < (INT64_MAX - now_us) / 1000) {
        int64_t t = now_us + r->timeout_ms * 1000; /* larger timeouts: none */
        if (q->deadline_us == 0 || t < q->deadline_us) q->deadline_us = t;
    }
    q->max_tokens = r->max_tokens;
    q->n_logprobs = r->n_logprobs;
    q->n_prompt = (int32_t)r->n_prompt;
    q->cap_tokens = n_ctx;
    if (r->max_tokens > 0 && (int64_t)r->n_prompt + r->max_tokens < n_ctx)
        q->cap_tokens = (int32_t)r->n_prompt + r->max_tokens;
    q->first_sched_us = -1;
    q->first_token_us = -1;
    q->preempted_at_step = -1;
    q->vocab = vocab;
    q->tokens = malloc((size_t)q->cap_tokens * sizeof *q->tokens);
    if (!q->tokens) {
        st = ig_errorf(err, IG_ENOMEM, "request: out of memory");
        goto fail;
    }
    memcpy(q->tokens, r->prompt, r->n_prompt * sizeof *q->tokens);
    q->n_tokens = q->n_prompt;
    if (r->n_stop > 0) {
        q->stop = calloc(r->n_stop, sizeof *q->stop);
        if (!q->stop) {
            st = ig_errorf(err, IG_ENOMEM, "request: out of memory");
            goto fail;
        }
        q->n_stop = r->n_stop;
        for (size_t i = 0; i < r->n_stop; i++)
            if (!(q->stop[i] = strdup(r->stop[i]))) {
                st = ig_errorf(err, IG_ENOMEM, "request: out of memory");
                goto fail;
            }
    }
    ig_sampler_params sp = r->sampling ? *r->sampling : ig_sampler_params_default();
    if ((st = ig_sampler_new(&sp, n_vocab, &q->sampler, err)) != IG_OK) goto fail;
    if ((st = ig_sampler_accept_prompt(q->sampler, r->prompt, r->n_prompt, err)) != IG_OK)
        goto fail;
    if (vocab) {
        ig_detok_init(&q->detok, vocab, false);
        q->detok.at_start = false; /* generated text continues the prompt */
    }
    *out = q;
    return IG_OK;
fail:
    ig__req_free(q);
    return st;
}

void ig__req_free(ig_req *q) {
    if (!q) return;
    ig_kv_seq_free(q->kv);
    free(q->ckey);
    ig_sampler_free(q->sampler);
    for (size_t i = 0; i < q->n_stop; i++) free(q->stop[i]);
    free(q->stop);
    free(q->tokens);
    free(q->text);
    free(q->itl_ms);
    free(q);
}

ig_status ig__req_text_append(ig_req *q, const char *s, size_t n) {
    if (q->text_len + n + 1 > q->text_cap) {
        size_t cap = q->text_cap ? q->text_cap : 128;
        while (cap < q->text_len + n + 1) cap *= 2;
        char *nb = realloc(q->text, cap);
        if (!nb) return IG_ENOMEM;
        q->text = nb;
        q->text_cap = cap;
    }
    memcpy(q->text + q->text_len, s, n);
    q->text_len += n;
    q->text[q->text_len] = '\0';
    return IG_OK;
}

long ig__req_find_stop(const ig_req *q) {
    long first = -1;
    for (size_t s = 0; s < q->n_stop; s++) {
        size_t sl = strlen(q->stop[s]);
        if (sl > q->text_len) continue;
        for (size_t i = 0; i + sl <= q->text_len; i++)
            if (memcmp(q->text + i, q->stop[s], sl) == 0) {
                if (first < 0 || (long)i < first) first = (long)i;
                break;
            }
    }
    return first;
}

size_t ig__req_held_suffix(const ig_req *q) {
    size_t best = 0;
    for (size_t s = 0; s < q->n_stop; s++) {
        size_t sl = strlen(q->stop[s]);
        for (size_t k = sl - 1; k > best; k--)
            if (k <= q->text_len && memcmp(q->text + q->text_len - k, q->stop[s], k) == 0) {
                best = k;
                break;
            }
    }
    return best;
}

void ig__req_note_token_time(ig_req *q, int64_t now_us) {
    if (q->first_token_us < 0) {
        q->first_token_us = now_us;
    } else {
        if (q->n_itl == q->cap_itl) {
            int32_t cap = q->cap_itl ? q->cap_itl * 2 : 64;
            float *nb = realloc(q->itl_ms, (size_t)cap * sizeof *nb);
            if (!nb) goto done; /* telemetry only: drop the sample rather than fail */
            q->itl_ms = nb;
            q->cap_itl = cap;
        }
        q->itl_ms[q->n_itl++] = (float)((double)(now_us - q->last_token_us) / 1000.0);
    }
done:
    q->last_token_us = now_us;
}
