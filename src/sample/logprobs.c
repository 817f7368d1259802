/*
 * logprobs.c: log-softmax of a logits row and its top-N tokens, for the
 * "logprobs" field of completions. Pure functions; no allocation, no state.
 */
#include <math.h>
#include <stdlib.h>

#include "sample/sampler.h"

/* Log of the softmax normaliser, computed stably around the maximum. With a
 * +inf maximum the limit is used: each +inf entry gets log(1/count), the
 * others -inf; *n_inf receives that count (0 otherwise). */
static ig_status log_normaliser(const float *logits, size_t n, double *lse, size_t *n_inf) {
    float mx = -INFINITY;
    *n_inf = 0;
    for (size_t i = 0; i < n; i++) {
        if (isnan(logits[i])) return IG_ERANGE;
        if (logits[i] > mx) mx = logits[i];
        if (logits[i] == INFINITY) (*n_inf)++;
    }
    if (n == 0 || mx == -INFINITY) return IG_ERANGE;
    if (*n_inf > 0) {
        *lse = INFINITY;
        return IG_OK;
    }
    double sum = 0.0;
    for (size_t i = 0; i < n; i++) sum += exp((double)logits[i] - (double)mx);
    *lse = (double)mx + log(sum);
    return IG_OK;
}

static inline float logprob_of(float logit, double lse, size_t n_inf) {
    if (n_inf > 0) return logit == INFINITY ? (float)-log((double)n_inf) : -INFINITY;
    return (float)((double)logit - lse);
}

ig_status ig_log_softmax(const float *logits, size_t n, float *out) {
    double lse;
    size_t n_inf;
    ig_status st = log_normaliser(logits, n, &lse, &n_inf);
    if (st != IG_OK) return st;
    for (size_t i = 0; i < n; i++) out[i] = logprob_of(logits[i], lse, n_inf);
    return IG_OK;
}

/* a ranks before b: higher value, then lower id. */
static inline int before(const ig_token_logprob *a, const ig_token_logprob *b) {
    return a->logprob > b->logprob || (a->logprob == b->logprob && a->id < b->id);
}

static int cmp_before(const void *pa, const void *pb) {
    const ig_token_logprob *a = pa, *b = pb;
    return before(a, b) ? -1 : before(b, a) ? 1 : 0;
}

/* Restore the heap (root = the entry ranking last) below index i. */
static void sift_down(ig_token_logprob *h, size_t n, size_t i) {
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, worst = i;
        if (l < n && before(&h[worst], &h[l])) worst = l;
        if (r < n && before(&h[worst], &h[r])) worst = r;
        if (worst == i) return;
        ig_token_logprob t = h[i];
        h[i] = h[worst];
        h[worst] = t;
        i = worst;
    }
}

static void sift_up(ig_token_logprob *h, size_t i) {
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!before(&h[parent], &h[i])) return;
        ig_token_logprob t = h[i];
        h[i] = h[parent];
        h[parent] = t;
        i = parent;
    }
}

ig_status ig_logits_top_n(const float *logits, size_t n, size_t n_top, ig_token_logprob *out,
                          size_t *n_out) {
    double lse;
    size_t n_inf;
    ig_status st = log_normaliser(logits, n, &lse, &n_inf);
    if (st != IG_OK) return st;
    if (n_top > n) n_top = n;
    /* A bounded heap of the best seen so far, ranked by raw logit (same order
     * as logprob); its root is the weakest, replaced when something beats it. */
    size_t h = 0;
    for (size_t i = 0; i < n && n_top > 0; i++) {
        ig_token_logprob c = {.id = (int32_t)i, .logprob = logits[i]};
        if (h < n_top) {
            out[h] = c;
            sift_up(out, h++);
        } else if (before(&c, &out[0])) {
            out[0] = c;
            sift_down(out, h, 0);
        }
    }
    qsort(out, h, sizeof *out, cmp_before);
    for (size_t i = 0; i < h; i++) out[i].logprob = logprob_of(out[i].logprob, lse, n_inf);
    *n_out = h;
    return IG_OK;
}
