/*
 * sampler_stages.c: the built-in sampler stages (logit bias, penalties,
 * top-k, top-p, min-p, temperature, greedy, dist) and the candidate helpers
 * they share. Each stage's state belongs to the chain that holds it.
 *
 * Ordering rule used everywhere: candidate a comes before b when its logit is
 * higher, or the logits are equal and its id is lower. Ids are unique, so
 * this is a total order and every result is deterministic.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "sample/rng.h"
#include "sample/sampler.h"
#include "sample/sampler_internal.h"

/* ------------------------------------------------------------------------ */
/* Candidate helpers                                                         */

static inline bool better(const ig_candidate *a, const ig_candidate *b) {
    return a->logit > b->logit || (a->logit == b->logit && a->id < b->id);
}

static int cmp_better(const void *pa, const void *pb) {
    const ig_candidate *a = pa, *b = pb;
    return better(a, b) ? -1 : better(b, a) ? 1 : 0;
}

static inline void swap_cand(ig_candidate *a, ig_candidate *b) {
    ig_candidate t = *a;
    *a = *b;
    *b = t;
}

/* Rearrange a[0..n) so that a[0..k) hold the k best (in no order), 0 < k < n.
 * Quickselect with a median-of-three pivot: expected O(n), but its partition
 * branch is a coin flip on random logits (about half mispredicted). */
static void quickselect_top(ig_candidate *a, size_t n, size_t k) {
    size_t lo = 0, hi = n;
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2, last = hi - 1;
        /* Median of a[lo], a[mid], a[last] ends up in a[last] as the pivot. */
        if (better(&a[mid], &a[lo])) swap_cand(&a[mid], &a[lo]);
        if (better(&a[last], &a[lo])) swap_cand(&a[last], &a[lo]);
        if (better(&a[mid], &a[last])) swap_cand(&a[mid], &a[last]);
        size_t store = lo;
        for (size_t i = lo; i < last; i++) {
            if (better(&a[i], &a[last])) swap_cand(&a[i], &a[store++]);
        }
        swap_cand(&a[store], &a[last]);
        /* Now a[lo..store) beat the pivot at a[store], which beats a[store+1..hi). */
        if (store == k || store + 1 == k) return;
        if (k < store)
            hi = store;
        else
            lo = store + 1;
    }
}

/* Heap of a[0..k) whose root is the weakest entry: restore below index i. */
static void sift_weakest(ig_candidate *a, size_t k, size_t i) {
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, w = i;
        if (l < k && better(&a[w], &a[l])) w = l;
        if (r < k && better(&a[w], &a[r])) w = r;
        if (w == i) return;
        swap_cand(&a[i], &a[w]);
        i = w;
    }
}

/* Same contract as quickselect_top, for k much smaller than n: a bounded
 * heap in a[0..k). Each later entry costs one comparison with the root,
 * which almost always says "no" (on random order about k ln(n/k) entries
 * get in), so the branch predicts well. */
static void heapselect_top(ig_candidate *a, size_t n, size_t k) {
    for (size_t i = k / 2; i-- > 0;) sift_weakest(a, k, i);
    for (size_t i = k; i < n; i++) {
        if (better(&a[i], &a[0])) {
            swap_cand(&a[i], &a[0]);
            sift_weakest(a, k, 0);
        }
    }
}

/*
 * Why two selections: on a 128256-token row (gaussian logits plus a few
 * peaks; shared 2-core machine, best of 15 batches) the whole llama.cpp
 * default chain (top-k 40, top-p .95, min-p .05, T .8) took 2.29 ms per token
 * with quickselect alone (mostly branch mispredictions) and 0.16 ms with the
 * heap. The heap loses once k is a sizeable fraction of n (k log k sifts per
 * insertion), hence the cut at n/16.
 */
static void select_top(ig_candidate *a, size_t n, size_t k) {
    if (k * 16 <= n)
        heapselect_top(a, n, k);
    else
        quickselect_top(a, n, k);
}

void ig_candidates_sort_top(ig_candidates *cur, size_t m) {
    if (m > cur->n) m = cur->n;
    if (m <= cur->n_sorted) return;
    ig_candidate *rest = cur->data + cur->n_sorted;
    size_t n_rest = cur->n - cur->n_sorted, need = m - cur->n_sorted;
    if (need < n_rest) select_top(rest, n_rest, need);
    qsort(rest, need, sizeof *rest, cmp_better);
    cur->n_sorted = m;
    if (m > 0) cur->is_vocab_order = false;
}

static float max_logit(const ig_candidates *cur) {
    if (cur->n_sorted > 0) return cur->data[0].logit;
    float mx = -INFINITY;
    for (size_t i = 0; i < cur->n; i++) {
        if (cur->data[i].logit > mx) mx = cur->data[i].logit;
    }
    return mx;
}

/* Unnormalised weight exp(l - mx), where a +inf maximum gives every +inf
 * entry weight 1 and the rest 0 (the limit of the softmax). */
static inline double weight(float l, float mx) {
    if (isinf(mx) && mx > 0) return l == mx ? 1.0 : 0.0;
    return expf(l - mx); /* float is plenty for a weight in [0, 1]; sums are in double */
}

ig_status ig_candidates_softmax(ig_candidates *cur) {
    float mx = max_logit(cur);
    if (cur->n == 0 || mx == -INFINITY) return IG_ERANGE;
    double sum = 0.0;
    if (mx == INFINITY) {
        for (size_t i = 0; i < cur->n; i++)
            sum += cur->data[i].p = (float)weight(cur->data[i].logit, mx);
    } else {
        for (size_t i = 0; i < cur->n; i++) sum += cur->data[i].p = expf(cur->data[i].logit - mx);
    }
    float inv = (float)(1.0 / sum);
    for (size_t i = 0; i < cur->n; i++) cur->data[i].p *= inv;
    return IG_OK;
}

/* Keep only candidates with logit >= threshold, in order; fixes the flags. */
static void compact_min(ig_candidates *cur, float threshold) {
    size_t w = 0, kept_sorted = 0;
    for (size_t i = 0; i < cur->n; i++) {
        if (cur->data[i].logit >= threshold) {
            if (i < cur->n_sorted) kept_sorted++;
            cur->data[w++] = cur->data[i];
        }
    }
    if (w != cur->n) cur->is_vocab_order = false;
    cur->n = w;
    /* A threshold keeps a prefix of the sorted run, so it stays sorted and
     * everything after it still ranks below it. */
    cur->n_sorted = kept_sorted;
}

/* ------------------------------------------------------------------------ */
/* Small parameter-only state shared by top-k, top-p, min-p, temperature      */

typedef struct scalar_state {
    float f;   /* top_p, min_p or temperature */
    int32_t i; /* top_k */
} scalar_state;

static ig_status scalar_clone(const void *state, void **out) {
    scalar_state *c = malloc(sizeof *c);
    if (!c) return IG_ENOMEM;
    *c = *(const scalar_state *)state;
    *out = c;
    return IG_OK;
}

static void plain_free(void *state) {
    free(state);
}

static ig_status add_scalar(ig_sampler *s, const ig_sampler_stage_ops *ops, float f, int32_t i,
                            ig_error *err) {
    scalar_state *st = malloc(sizeof *st);
    if (!st) return ig_errorf(err, IG_ENOMEM, "out of memory adding sampler stage '%s'", ops->name);
    *st = (scalar_state){f, i};
    ig_status rc = ig_sampler_add(s, ops, st, err);
    if (rc != IG_OK) free(st);
    return rc;
}

/* ------------------------------------------------------------------------ */
/* Logit bias                                                                */

typedef struct bias_state {
    size_t n;            /* distinct biased tokens */
    ig_logit_bias *item; /* [n] sorted by token, repeats summed */
} bias_state;

static int cmp_bias(const void *pa, const void *pb) {
    const ig_logit_bias *a = pa, *b = pb;
    return (a->token > b->token) - (a->token < b->token);
}

static ig_status bias_apply(void *state, ig_candidates *cur, ig_error *err) {
    const bias_state *b = state;
    if (cur->is_vocab_order) {
        for (size_t j = 0; j < b->n; j++) {
            if ((size_t)b->item[j].token < cur->n)
                cur->data[b->item[j].token].logit += b->item[j].bias;
        }
    } else {
        for (size_t i = 0; i < cur->n; i++) {
            ig_logit_bias key = {.token = cur->data[i].id};
            const ig_logit_bias *hit = bsearch(&key, b->item, b->n, sizeof key, cmp_bias);
            if (hit) cur->data[i].logit += hit->bias;
        }
    }
    cur->n_sorted = 0;
    return IG_OK;
}

static ig_status bias_clone(const void *state, void **out) {
    const bias_state *b = state;
    bias_state *c = malloc(sizeof *c);
    if (!c) return IG_ENOMEM;
    c->n = b->n;
    c->item = malloc(b->n * sizeof *c->item);
    if (!c->item) {
        free(c);
        return IG_ENOMEM;
    }
    memcpy(c->item, b->item, b->n * sizeof *c->item);
    *out = c;
    return IG_OK;
}

static void bias_free(void *state) {
    bias_state *b = state;
    if (!b) return;
    free(b->item);
    free(b);
}

static const ig_sampler_stage_ops bias_ops = {
    .name = "logit_bias", .apply = bias_apply, .clone = bias_clone, .free = bias_free};

ig_status ig_sampler_add_logit_bias(ig_sampler *s, const ig_logit_bias *bias, size_t n_bias,
                                    ig_error *err) {
    ig_status st = ig__sampler_check_bias(bias, n_bias, ig_sampler_n_vocab(s), err);
    if (st != IG_OK) return st;
    if (n_bias == 0) return IG_OK;
    bias_state *b = calloc(1, sizeof *b);
    if (!b) goto oom;
    b->item = malloc(n_bias * sizeof *b->item);
    if (!b->item) goto oom;
    memcpy(b->item, bias, n_bias * sizeof *b->item);
    qsort(b->item, n_bias, sizeof *b->item, cmp_bias);
    for (size_t i = 0; i < n_bias; i++) {
        if (b->n > 0 && b->item[b->n - 1].token == b->item[i].token)
            b->item[b->n - 1].bias += b->item[i].bias;
        else
            b->item[b->n++] = b->item[i];
    }
    st = ig_sampler_add(s, &bias_ops, b, err);
    if (st != IG_OK) bias_free(b);
    return st;
oom:
    bias_free(b);
    return ig_errorf(err, IG_ENOMEM, "out of memory copying %zu logit biases", n_bias);
}

/* ------------------------------------------------------------------------ */
/* Penalties                                                                 */

/*
 * History for the penalties: a ring of the last `last_n` accepted tokens
 * (prompt and generated) with per-token counts inside the window, and the
 * count of each generated token with the list of distinct generated ids. The
 * lists let apply and reset touch only tokens that occurred, not the vocab.
 */
typedef struct penalties {
    int32_t n_vocab;
    int32_t last_n; /* window capacity, 0 = no window */
    float repeat, freq, presence;
    int32_t *ring;         /* [last_n] window tokens; ring[0..ring_len) valid */
    size_t ring_len;       /* tokens in the window */
    size_t ring_head;      /* next slot to overwrite */
    int32_t *window_count; /* [n_vocab] occurrences inside the window */
    int32_t *gen_count;    /* [n_vocab] generated occurrences */
    int32_t *gen_ids;      /* [n_vocab] distinct generated ids, first n_gen valid */
    size_t n_gen;
    uint32_t *mark; /* [n_vocab] == stamp when already penalised this step */
    uint32_t stamp;
} penalties;

static void penalties_free(void *state) {
    penalties *p = state;
    if (!p) return;
    free(p->mark);
    free(p->gen_ids);
    free(p->gen_count);
    free(p->window_count);
    free(p->ring);
    free(p);
}

static penalties *penalties_alloc(int32_t n_vocab, int32_t last_n) {
    penalties *p = calloc(1, sizeof *p);
    if (!p) return NULL;
    size_t nv = (size_t)n_vocab;
    p->n_vocab = n_vocab;
    p->last_n = last_n;
    p->ring = malloc((last_n > 0 ? (size_t)last_n : 1) * sizeof *p->ring);
    p->window_count = calloc(nv, sizeof *p->window_count);
    p->gen_count = calloc(nv, sizeof *p->gen_count);
    p->gen_ids = malloc(nv * sizeof *p->gen_ids);
    p->mark = calloc(nv, sizeof *p->mark);
    if (!p->ring || !p->window_count || !p->gen_count || !p->gen_ids || !p->mark) {
        penalties_free(p);
        return NULL;
    }
    return p;
}

static inline float penalise(const penalties *p, int32_t id, float l) {
    if (p->window_count[id] > 0) l = l > 0.0f ? l / p->repeat : l * p->repeat;
    int32_t c = p->gen_count[id];
    if (c > 0) l -= (float)c * p->freq + p->presence;
    return l;
}

static ig_status penalties_apply(void *state, ig_candidates *cur, ig_error *err) {
    penalties *p = state;
    if (p->ring_len == 0 && p->n_gen == 0) return IG_OK;
    if (cur->is_vocab_order) {
        /* Sparse: visit each token of the history once, found by index. */
        if (++p->stamp == 0) {
            memset(p->mark, 0, (size_t)p->n_vocab * sizeof *p->mark);
            p->stamp = 1;
        }
        for (size_t k = 0; k < p->ring_len + p->n_gen; k++) {
            int32_t id = k < p->ring_len ? p->ring[k] : p->gen_ids[k - p->ring_len];
            if (p->mark[id] == p->stamp || (size_t)id >= cur->n) continue;
            p->mark[id] = p->stamp;
            cur->data[id].logit = penalise(p, id, cur->data[id].logit);
        }
    } else {
        for (size_t i = 0; i < cur->n; i++)
            cur->data[i].logit = penalise(p, cur->data[i].id, cur->data[i].logit);
    }
    cur->n_sorted = 0;
    return IG_OK;
}

static void penalties_accept(void *state, int32_t token, bool is_prompt) {
    penalties *p = state;
    if (p->last_n > 0) {
        if (p->ring_len == (size_t)p->last_n)
            p->window_count[p->ring[p->ring_head]]--;
        else
            p->ring_len++;
        p->ring[p->ring_head] = token;
        p->window_count[token]++;
        p->ring_head = (p->ring_head + 1) % (size_t)p->last_n;
    }
    if (!is_prompt && p->gen_count[token]++ == 0) p->gen_ids[p->n_gen++] = token;
}

static void penalties_reset(void *state) {
    penalties *p = state;
    for (size_t i = 0; i < p->ring_len; i++) p->window_count[p->ring[i]] = 0;
    for (size_t i = 0; i < p->n_gen; i++) p->gen_count[p->gen_ids[i]] = 0;
    p->ring_len = p->ring_head = p->n_gen = 0;
}

static ig_status penalties_clone(const void *state, void **out) {
    const penalties *p = state;
    penalties *c = penalties_alloc(p->n_vocab, p->last_n);
    if (!c) return IG_ENOMEM;
    size_t nv = (size_t)p->n_vocab;
    c->repeat = p->repeat;
    c->freq = p->freq;
    c->presence = p->presence;
    if (p->last_n > 0) memcpy(c->ring, p->ring, (size_t)p->last_n * sizeof *c->ring);
    c->ring_len = p->ring_len;
    c->ring_head = p->ring_head;
    memcpy(c->window_count, p->window_count, nv * sizeof *c->window_count);
    memcpy(c->gen_count, p->gen_count, nv * sizeof *c->gen_count);
    memcpy(c->gen_ids, p->gen_ids, p->n_gen * sizeof *c->gen_ids);
    c->n_gen = p->n_gen;
    *out = c;
    return IG_OK;
}

static const ig_sampler_stage_ops penalties_ops = {.name = "penalties",
                                                   .apply = penalties_apply,
                                                   .accept = penalties_accept,
                                                   .reset = penalties_reset,
                                                   .clone = penalties_clone,
                                                   .free = penalties_free};

ig_status ig_sampler_add_penalties(ig_sampler *s, int32_t repeat_last_n, float repeat_penalty,
                                   float frequency_penalty, float presence_penalty, ig_error *err) {
    ig_status st = ig__sampler_check_penalties(repeat_last_n, repeat_penalty, frequency_penalty,
                                               presence_penalty, err);
    if (st != IG_OK) return st;
    penalties *p = penalties_alloc(ig_sampler_n_vocab(s), repeat_last_n);
    if (!p) return ig_errorf(err, IG_ENOMEM, "out of memory allocating penalty history");
    p->repeat = repeat_penalty;
    p->freq = frequency_penalty;
    p->presence = presence_penalty;
    st = ig_sampler_add(s, &penalties_ops, p, err);
    if (st != IG_OK) penalties_free(p);
    return st;
}

/* ------------------------------------------------------------------------ */
/* Top-k                                                                     */

static ig_status top_k_apply(void *state, ig_candidates *cur, ig_error *err) {
    size_t k = (size_t)((const scalar_state *)state)->i;
    if (k >= cur->n) return IG_OK;
    ig_candidates_sort_top(cur, k);
    cur->n = k;
    cur->n_sorted = k;
    cur->is_vocab_order = false;
    return IG_OK;
}

static const ig_sampler_stage_ops top_k_ops = {
    .name = "top_k", .apply = top_k_apply, .clone = scalar_clone, .free = plain_free};

ig_status ig_sampler_add_top_k(ig_sampler *s, int32_t k, ig_error *err) {
    if (k <= 0) return IG_OK;
    return add_scalar(s, &top_k_ops, 0.0f, k, err);
}

/* ------------------------------------------------------------------------ */
/* Top-p (nucleus)                                                           */

/*
 * Keep the shortest best-first prefix whose probability mass reaches p. The
 * normaliser needs one pass over all candidates; the prefix is then sorted in
 * growing chunks (64, 128, 256, ...), so a peaked distribution costs O(n)
 * rather than a full O(n log n) sort. Mass is summed in double.
 */
static ig_status top_p_apply(void *state, ig_candidates *cur, ig_error *err) {
    float p = ((const scalar_state *)state)->f;
    if (p >= 1.0f || cur->n <= 1) return IG_OK;
    float mx = max_logit(cur);
    if (mx == -INFINITY) return IG_OK; /* nothing selectable; the selector reports it */
    double total = 0.0;
    if (mx == INFINITY) {
        for (size_t i = 0; i < cur->n; i++) total += weight(cur->data[i].logit, mx);
    } else {
        for (size_t i = 0; i < cur->n; i++) total += expf(cur->data[i].logit - mx);
    }
    double cum = 0.0;
    size_t sorted = cur->n_sorted;
    for (size_t i = 0; i < cur->n; i++) {
        if (i == sorted) {
            size_t want = sorted < 32 ? 64 : sorted * 2;
            ig_candidates_sort_top(cur, want);
            sorted = cur->n_sorted;
        }
        cum += weight(cur->data[i].logit, mx) / total;
        if (cum >= (double)p) {
            if (i + 1 < cur->n) cur->is_vocab_order = false;
            cur->n = i + 1;
            cur->n_sorted = i + 1;
            break;
        }
    }
    return IG_OK;
}

static const ig_sampler_stage_ops top_p_ops = {
    .name = "top_p", .apply = top_p_apply, .clone = scalar_clone, .free = plain_free};

ig_status ig_sampler_add_top_p(ig_sampler *s, float p, ig_error *err) {
    if (!(p > 0.0f && p <= 1.0f))
        return ig_errorf(err, IG_EINVAL, "top_p must be in (0, 1], got %g", (double)p);
    return add_scalar(s, &top_p_ops, p, 0, err);
}

/* ------------------------------------------------------------------------ */
/* Min-p                                                                     */

/* p_i >= min_p * p_max  <=>  l_i - l_max >= log(min_p): no softmax needed. */
static ig_status min_p_apply(void *state, ig_candidates *cur, ig_error *err) {
    float min_p = ((const scalar_state *)state)->f;
    if (min_p <= 0.0f || cur->n == 0) return IG_OK;
    float mx = max_logit(cur);
    if (mx == -INFINITY) return IG_OK;
    compact_min(cur, mx + logf(min_p));
    return IG_OK;
}

static const ig_sampler_stage_ops min_p_ops = {
    .name = "min_p", .apply = min_p_apply, .clone = scalar_clone, .free = plain_free};

ig_status ig_sampler_add_min_p(ig_sampler *s, float p, ig_error *err) {
    if (!(p >= 0.0f && p <= 1.0f))
        return ig_errorf(err, IG_EINVAL, "min_p must be in [0, 1], got %g", (double)p);
    return add_scalar(s, &min_p_ops, p, 0, err);
}

/* ------------------------------------------------------------------------ */
/* Temperature                                                               */

static ig_status temperature_apply(void *state, ig_candidates *cur, ig_error *err) {
    float t = ((const scalar_state *)state)->f;
    /* Dividing by t > 0 keeps the order, so n_sorted stays valid. */
    for (size_t i = 0; i < cur->n; i++) cur->data[i].logit /= t;
    return IG_OK;
}

static const ig_sampler_stage_ops temperature_ops = {
    .name = "temperature", .apply = temperature_apply, .clone = scalar_clone, .free = plain_free};

ig_status ig_sampler_add_temperature(ig_sampler *s, float t, ig_error *err) {
    if (!(t > 0.0f) || isinf(t))
        return ig_errorf(err, IG_EINVAL, "temperature stage needs a finite t > 0, got %g",
                         (double)t);
    return add_scalar(s, &temperature_ops, t, 0, err);
}

/* ------------------------------------------------------------------------ */
/* Greedy                                                                    */

static ig_status greedy_apply(void *state, ig_candidates *cur, ig_error *err) {
    if (cur->n == 0) return ig_errorf(err, IG_ERANGE, "no candidate token left to choose from");
    const ig_candidate *best = &cur->data[0];
    if (cur->n_sorted == 0) {
        for (size_t i = 1; i < cur->n; i++) {
            if (better(&cur->data[i], best)) best = &cur->data[i];
        }
    }
    if (best->logit == -INFINITY)
        return ig_errorf(err, IG_ERANGE, "every candidate token has logit -inf (all banned)");
    cur->selected = best->id;
    return IG_OK;
}

static const ig_sampler_stage_ops greedy_ops = {.name = "greedy", .apply = greedy_apply};

ig_status ig_sampler_add_greedy(ig_sampler *s, ig_error *err) {
    return ig_sampler_add(s, &greedy_ops, NULL, err);
}

/* ------------------------------------------------------------------------ */
/* Dist: draw from the softmax                                               */

typedef struct dist_state {
    uint64_t seed; /* to rewind on reset */
    ig_rng rng;
} dist_state;

static ig_status dist_apply(void *state, ig_candidates *cur, ig_error *err) {
    dist_state *d = state;
    if (ig_candidates_softmax(cur) != IG_OK)
        return ig_errorf(err, IG_ERANGE, "every candidate token has logit -inf (all banned)");
    /* Inverse CDF over the candidates in their current order; float p sums to
     * 1 only up to rounding, so a u past the end takes the last p > 0. */
    double u = ig_rng_uniform(&d->rng), cum = 0.0;
    size_t pick = cur->n;
    for (size_t i = 0; i < cur->n; i++) {
        if (cur->data[i].p <= 0.0f) continue;
        pick = i;
        cum += cur->data[i].p;
        if (u < cum) break;
    }
    IG_ASSERT(pick < cur->n);
    cur->selected = cur->data[pick].id;
    return IG_OK;
}

static void dist_reset(void *state) {
    dist_state *d = state;
    ig_rng_seed(&d->rng, d->seed);
}

static ig_status dist_clone(const void *state, void **out) {
    dist_state *c = malloc(sizeof *c);
    if (!c) return IG_ENOMEM;
    *c = *(const dist_state *)state;
    *out = c;
    return IG_OK;
}

static const ig_sampler_stage_ops dist_ops = {.name = "dist",
                                              .apply = dist_apply,
                                              .reset = dist_reset,
                                              .clone = dist_clone,
                                              .free = plain_free};

ig_status ig_sampler_add_dist(ig_sampler *s, ig_error *err) {
    dist_state *d = malloc(sizeof *d);
    if (!d) return ig_errorf(err, IG_ENOMEM, "out of memory adding sampler stage 'dist'");
    d->seed = ig_sampler_seed(s);
    ig_rng_seed(&d->rng, d->seed);
    ig_status st = ig_sampler_add(s, &dist_ops, d, err);
    if (st != IG_OK) free(d);
    return st;
}
