/*
 * test_sampler.c: the sampler chain, its stages, the RNG and the logprob
 * helpers. Expected sets and values come from the formulas (recomputed here
 * independently) or from published reference vectors, never from the code
 * under test.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "sample/rng.h"
#include "sample/sampler.h"

/* ------------------------------------------------------------------------ */
/* helpers                                                                   */

static ig_sampler *make(const ig_sampler_params *p, int32_t n_vocab) {
    ig_sampler *s = NULL;
    ig_error err = {0};
    ig_status st = ig_sampler_new(p, n_vocab, &s, &err);
    cr_assert_eq(st, IG_OK, "ig_sampler_new: %s", err.message);
    return s;
}

static int32_t draw(ig_sampler *s, const float *logits) {
    int32_t tok = -1;
    ig_error err = {0};
    ig_status st = ig_sampler_sample(s, logits, &tok, &err);
    cr_assert_eq(st, IG_OK, "ig_sampler_sample: %s", err.message);
    return tok;
}

/* Deterministic test data independent of the code under test. */
static uint64_t lcg_state = 12345;
static double lcg_uniform(void) {
    lcg_state = lcg_state * 6364136223846793005ull + 1442695040888963407ull;
    return (double)(lcg_state >> 11) * 0x1.0p-53;
}

static int32_t argmax_lowest(const float *l, int32_t n) {
    int32_t best = 0;
    for (int32_t i = 1; i < n; i++)
        if (l[i] > l[best]) best = i;
    return best;
}

/* The set of ids a sampler kept, as a bitmap over n_vocab. */
static void kept_set(const ig_sampler *s, bool *kept, int32_t n_vocab) {
    memset(kept, 0, (size_t)n_vocab * sizeof *kept);
    const ig_candidates *c = ig_sampler_candidates(s);
    for (size_t i = 0; i < c->n; i++) kept[c->data[i].id] = true;
}

/* Sample `n_seeds` chains with different seeds, `n_draws` each; every token
 * drawn must be in `allowed`, and every allowed token must show up. */
static void check_only_allowed(ig_sampler_params p, const float *logits, int32_t n_vocab,
                               const bool *allowed) {
    int hits[64] = {0};
    cr_assert(n_vocab <= 64);
    for (uint64_t seed = 1; seed <= 20; seed++) {
        p.seed = seed;
        ig_sampler *s = make(&p, n_vocab);
        for (int i = 0; i < 200; i++) {
            int32_t t = draw(s, logits);
            cr_assert(t >= 0 && t < n_vocab);
            cr_assert(allowed[t], "token %d drawn but should have been filtered", t);
            hits[t]++;
        }
        ig_sampler_free(s);
    }
    for (int32_t t = 0; t < n_vocab; t++)
        if (allowed[t]) cr_assert(hits[t] > 0, "allowed token %d never drawn", t);
}

/* ------------------------------------------------------------------------ */
/* RNG: published reference outputs                                          */

Test(rng, splitmix64_reference) {
    /* splitmix64 from state 0 (Vigna's splitmix64.c). */
    const uint64_t want[4] = {0xE220A8397B1DCDAFu, 0x6E789E6AA1B965F4u, 0x06C45D188009454Fu,
                              0xF88BB8A8724C81ECu};
    uint64_t st = 0;
    for (int i = 0; i < 4; i++) cr_assert_eq(ig_splitmix64_next(&st), want[i], "output %d", i);
    ig_rng r;
    ig_rng_seed(&r, 0);
    for (int i = 0; i < 4; i++) cr_assert_eq(r.s[i], want[i]);
}

Test(rng, xoshiro256starstar_reference) {
    /* xoshiro256** 1.0 from state {1, 2, 3, 4} (reference C implementation). */
    const uint64_t want[10] = {11520u,
                               0u,
                               1509978240u,
                               1215971899390074240u,
                               1216172134540287360u,
                               607988272756665600u,
                               16172922978634559625u,
                               8476171486693032832u,
                               10595114339597558777u,
                               2904607092377533576u};
    ig_rng r;
    ig_rng_set_state(&r, (const uint64_t[4]){1, 2, 3, 4});
    for (int i = 0; i < 10; i++) cr_assert_eq(ig_rng_next(&r), want[i], "output %d", i);
}

Test(rng, uniform_in_unit_interval) {
    ig_rng r;
    ig_rng_seed(&r, 7);
    double sum = 0;
    for (int i = 0; i < 100000; i++) {
        double u = ig_rng_uniform(&r);
        cr_assert(u >= 0.0 && u < 1.0);
        sum += u;
    }
    cr_assert(fabs(sum / 100000 - 0.5) < 0.01);
}

/* ------------------------------------------------------------------------ */
/* Greedy and top-k                                                          */

Test(sampler, greedy_picks_argmax_lowest_id_on_ties) {
    ig_sampler_params p = ig_sampler_params_default();
    p.temperature = 0.0f;
    ig_sampler *s = make(&p, 6);
    const float tie[6] = {1.0f, 3.0f, 0.0f, 3.0f, -2.0f, 3.0f};
    cr_assert_eq(draw(s, tie), 1);
    const float neg[6] = {-5.0f, -4.0f, -1.5f, -9.0f, -1.6f, -3.0f};
    cr_assert_eq(draw(s, neg), 2);
    ig_sampler_free(s);

    /* Random rows, several seeds: always the argmax, whatever the seed. */
    enum { V = 1001 };
    static float l[V];
    for (int row = 0; row < 20; row++) {
        for (int i = 0; i < V; i++) l[i] = (float)(lcg_uniform() * 20 - 10);
        p.seed = (uint64_t)row;
        s = make(&p, V);
        cr_assert_eq(draw(s, l), argmax_lowest(l, V));
        ig_sampler_free(s);
    }
}

Test(sampler, top_k_1_equals_greedy_at_any_temperature) {
    enum { V = 777 };
    static float l[V];
    const float temps[] = {0.05f, 0.7f, 1.0f, 3.0f, 100.0f};
    for (int row = 0; row < 10; row++) {
        for (int i = 0; i < V; i++) l[i] = (float)(lcg_uniform() * 4);
        if (row % 2) l[0] = l[V - 1] = l[argmax_lowest(l, V)]; /* ties at both ends */
        int32_t want = argmax_lowest(l, V);
        for (size_t t = 0; t < sizeof temps / sizeof temps[0]; t++) {
            ig_sampler_params p = ig_sampler_params_default();
            p.temperature = temps[t];
            p.top_k = 1;
            p.seed = (uint64_t)(row * 10 + (int)t);
            ig_sampler *s = make(&p, V);
            for (int k = 0; k < 5; k++) cr_assert_eq(draw(s, l), want, "T=%g", (double)temps[t]);
            ig_sampler_free(s);
        }
    }
}

Test(sampler, top_k_keeps_k_best_ties_by_id) {
    ig_sampler_params p = ig_sampler_params_default();
    p.top_k = 2;
    p.seed = 3;
    const float l[5] = {5.0f, 1.0f, 5.0f, 3.0f, 5.0f};
    ig_sampler *s = make(&p, 5);
    draw(s, l);
    bool kept[5];
    kept_set(s, kept, 5);
    cr_assert(kept[0] && kept[2] && !kept[1] && !kept[3] && !kept[4]);
    ig_sampler_free(s);
    check_only_allowed(p, l, 5, (const bool[5]){true, false, true, false, false});
}

/* ------------------------------------------------------------------------ */
/* Top-p and min-p on hand-made distributions                                */

/* Probabilities placed on scattered ids: id -> p. */
static const float hand_p[8] = {0.05f, 0.0f, 0.5f, 0.1f, 0.0f, 0.2f, 0.15f, 0.0f};

static void hand_logits(float *l) {
    for (int i = 0; i < 8; i++) l[i] = hand_p[i] > 0 ? logf(hand_p[i]) : -INFINITY;
}

Test(sampler, top_p_keeps_smallest_set_reaching_p) {
    float l[8];
    hand_logits(l);
    struct {
        float top_p;
        bool allowed[8];
    } cases[] = {
        /* sorted: .5 (id2) .2 (id5) .15 (id6) .1 (id3) .05 (id0) */
        {0.40f, {0, 0, 1, 0, 0, 0, 0, 0}}, /* .5 >= .4 */
        {0.60f, {0, 0, 1, 0, 0, 1, 0, 0}}, /* .7 >= .6 */
        {0.75f, {0, 0, 1, 0, 0, 1, 1, 0}}, /* .85 >= .75 */
        {0.90f, {0, 0, 1, 1, 0, 1, 1, 0}}, /* .95 >= .9 */
        {0.97f, {1, 0, 1, 1, 0, 1, 1, 0}}, /* everything with p > 0 */
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        ig_sampler_params p = ig_sampler_params_default();
        p.top_p = cases[c].top_p;
        p.seed = 11;
        ig_sampler *s = make(&p, 8);
        draw(s, l);
        bool kept[8];
        kept_set(s, kept, 8);
        for (int i = 0; i < 8; i++) {
            /* -inf tokens may stay in the candidate set at top_p ~ 1; they carry no mass. */
            if (hand_p[i] > 0)
                cr_assert_eq(kept[i], cases[c].allowed[i], "top_p=%g id %d", (double)cases[c].top_p,
                             i);
        }
        ig_sampler_free(s);
        check_only_allowed(p, l, 8, cases[c].allowed);
    }
}

Test(sampler, min_p_keeps_tokens_above_fraction_of_max) {
    float l[8];
    hand_logits(l);
    struct {
        float min_p;
        bool allowed[8];
    } cases[] = {
        {0.50f, {0, 0, 1, 0, 0, 0, 0, 0}}, /* p >= .25 */
        {0.35f, {0, 0, 1, 0, 0, 1, 0, 0}}, /* p >= .175 */
        {0.25f, {0, 0, 1, 0, 0, 1, 1, 0}}, /* p >= .125 */
        {0.15f, {0, 0, 1, 1, 0, 1, 1, 0}}, /* p >= .075 */
        {0.05f, {1, 0, 1, 1, 0, 1, 1, 0}}, /* p >= .025 */
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        ig_sampler_params p = ig_sampler_params_default();
        p.min_p = cases[c].min_p;
        p.seed = 5;
        ig_sampler *s = make(&p, 8);
        draw(s, l);
        bool kept[8];
        kept_set(s, kept, 8);
        for (int i = 0; i < 8; i++)
            cr_assert_eq(kept[i], cases[c].allowed[i], "min_p=%g id %d", (double)cases[c].min_p, i);
        ig_sampler_free(s);
        check_only_allowed(p, l, 8, cases[c].allowed);
    }
}

static int cmp_desc_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x < y) - (x > y);
}

/* A large vocabulary, so top-p has to grow its sorted prefix several times. */
Test(sampler, top_p_large_vocab_exact_count) {
    enum { V = 5000 };
    static float l[V];
    static double prob[V], cum[V];
    for (int i = 0; i < V; i++) l[i] = (float)(lcg_uniform() * 3);
    double mx = -INFINITY, z = 0;
    for (int i = 0; i < V; i++) mx = fmax(mx, l[i]);
    for (int i = 0; i < V; i++) z += exp((double)l[i] - mx);
    for (int i = 0; i < V; i++) prob[i] = exp((double)l[i] - mx) / z;
    qsort(prob, V, sizeof prob[0], cmp_desc_double);
    double acc = 0;
    for (int i = 0; i < V; i++) cum[i] = (acc += prob[i]);
    /* Put p halfway between two cumulative sums so rounding cannot move the cut. */
    const int cut = 1234; /* keep cut+1 tokens */
    ig_sampler_params p = ig_sampler_params_default();
    p.top_p = (float)((cum[cut - 1] + cum[cut]) / 2);
    cr_assert((double)p.top_p > cum[cut - 1] + 1e-7 && (double)p.top_p < cum[cut] - 1e-7);
    p.seed = 9;
    ig_sampler *s = make(&p, V);
    draw(s, l);
    const ig_candidates *c = ig_sampler_candidates(s);
    cr_assert_eq(c->n, (size_t)cut + 1);
    /* Exactly the best cut+1: every kept logit >= every dropped one. */
    static bool kept[V];
    kept_set(s, kept, V);
    float min_kept = INFINITY, max_dropped = -INFINITY;
    for (int i = 0; i < V; i++) {
        if (kept[i])
            min_kept = fminf(min_kept, l[i]);
        else
            max_dropped = fmaxf(max_dropped, l[i]);
    }
    cr_assert(min_kept >= max_dropped);
    ig_sampler_free(s);
}

/* ------------------------------------------------------------------------ */
/* Temperature: frequencies follow softmax(l / T)                            */

static double chi_square_run(float temperature, uint64_t seed, int n_draws) {
    enum { V = 6 };
    const float l[V] = {1.0f, 0.5f, 0.0f, -0.5f, -1.0f, 2.0f};
    ig_sampler_params p = ig_sampler_params_default();
    p.temperature = temperature;
    p.seed = seed;
    ig_sampler *s = make(&p, V);
    int count[V] = {0};
    for (int i = 0; i < n_draws; i++) count[draw(s, l)]++;
    ig_sampler_free(s);
    double z = 0, e[V];
    for (int i = 0; i < V; i++) z += exp(l[i] / (double)temperature);
    double chi2 = 0;
    for (int i = 0; i < V; i++) {
        e[i] = n_draws * exp(l[i] / (double)temperature) / z;
        chi2 += (count[i] - e[i]) * (count[i] - e[i]) / e[i];
    }
    return chi2;
}

Test(sampler, temperature_frequencies_match_softmax) {
    /* 5 degrees of freedom: P(chi2 > 20.52) = 0.001. The seeds are fixed, so
     * the result is deterministic; a wrong temperature gives chi2 in the
     * hundreds at this many draws (checked below). */
    const float temps[] = {0.5f, 1.0f, 1.7f};
    for (size_t t = 0; t < 3; t++) {
        double chi2 = chi_square_run(temps[t], 1000 + t, 30000);
        cr_assert(chi2 < 20.52, "T=%g chi2=%g", (double)temps[t], chi2);
    }
}

Test(sampler, chi_square_detects_wrong_temperature) {
    /* Sanity check of the statistic: draws at T=1 judged against T=0.7 fail. */
    enum { V = 6 };
    const float l[V] = {1.0f, 0.5f, 0.0f, -0.5f, -1.0f, 2.0f};
    ig_sampler_params p = ig_sampler_params_default();
    p.seed = 77;
    ig_sampler *s = make(&p, V);
    int count[V] = {0};
    for (int i = 0; i < 30000; i++) count[draw(s, l)]++;
    ig_sampler_free(s);
    double z = 0, chi2 = 0;
    for (int i = 0; i < V; i++) z += exp(l[i] / 0.7);
    for (int i = 0; i < V; i++) {
        double e = 30000 * exp(l[i] / 0.7) / z;
        chi2 += (count[i] - e) * (count[i] - e) / e;
    }
    cr_assert(chi2 > 100, "chi2=%g", chi2);
}

/* ------------------------------------------------------------------------ */
/* Seeds, reset, clone                                                       */

static void random_row(float *l, int n) {
    for (int i = 0; i < n; i++) l[i] = (float)(lcg_uniform() * 6);
}

Test(sampler, same_seed_same_sequence_different_seed_differs) {
    enum { V = 300, STEPS = 200 };
    static float rows[STEPS][V];
    for (int t = 0; t < STEPS; t++) random_row(rows[t], V);
    ig_sampler_params p = ig_sampler_params_default();
    p.top_p = 0.95f;
    p.seed = 42;
    ig_sampler *a = make(&p, V), *b = make(&p, V);
    p.seed = 43;
    ig_sampler *c = make(&p, V);
    int differ = 0;
    for (int t = 0; t < STEPS; t++) {
        int32_t ta = draw(a, rows[t]), tb = draw(b, rows[t]), tc = draw(c, rows[t]);
        cr_assert_eq(ta, tb, "step %d", t);
        differ += ta != tc;
    }
    cr_assert(differ > STEPS / 2, "seeds 42 and 43 agreed on %d of %d steps", STEPS - differ,
              STEPS);
    ig_sampler_free(a);
    ig_sampler_free(b);
    ig_sampler_free(c);
}

Test(sampler, random_seed_is_reported_and_reproducible) {
    enum { V = 50 };
    float l[V];
    random_row(l, V);
    ig_sampler_params p = ig_sampler_params_default();
    p.seed = IG_SAMPLER_SEED_RANDOM;
    ig_sampler *a = make(&p, V);
    cr_assert_neq(ig_sampler_seed(a), IG_SAMPLER_SEED_RANDOM);
    p.seed = ig_sampler_seed(a);
    ig_sampler *b = make(&p, V);
    for (int i = 0; i < 100; i++) cr_assert_eq(draw(a, l), draw(b, l));
    ig_sampler_free(a);
    ig_sampler_free(b);
}

Test(sampler, reset_replays_from_the_start) {
    enum { V = 40 };
    float l[V];
    random_row(l, V);
    ig_sampler_params p = ig_sampler_params_default();
    p.seed = 8;
    p.repeat_penalty = 1.3f;
    p.frequency_penalty = 0.4f;
    ig_sampler *s = make(&p, V);
    int32_t first[60];
    for (int i = 0; i < 60; i++) {
        first[i] = draw(s, l);
        cr_assert_eq(ig_sampler_accept(s, first[i], NULL), IG_OK);
    }
    ig_sampler_reset(s);
    for (int i = 0; i < 60; i++) {
        int32_t t = draw(s, l);
        cr_assert_eq(t, first[i], "step %d", i);
        ig_sampler_accept(s, t, NULL);
    }
    ig_sampler_free(s);
}

Test(sampler, clone_continues_identically) {
    enum { V = 64 };
    float l[V];
    ig_sampler_params p = ig_sampler_params_default();
    p.seed = 1234;
    p.temperature = 0.9f;
    p.top_k = 20;
    p.min_p = 0.02f;
    p.repeat_penalty = 1.2f;
    p.presence_penalty = 0.3f;
    p.frequency_penalty = 0.2f;
    ig_sampler *a = make(&p, V);
    const int32_t prompt[] = {1, 2, 3, 5, 8, 13};
    cr_assert_eq(ig_sampler_accept_prompt(a, prompt, 6, NULL), IG_OK);
    for (int i = 0; i < 20; i++) {
        random_row(l, V);
        ig_sampler_accept(a, draw(a, l), NULL);
    }
    ig_sampler *b = NULL;
    cr_assert_eq(ig_sampler_clone(a, &b, NULL), IG_OK);
    cr_assert_eq(ig_sampler_seed(b), ig_sampler_seed(a));
    for (int i = 0; i < 100; i++) {
        random_row(l, V);
        int32_t ta = draw(a, l), tb = draw(b, l);
        cr_assert_eq(ta, tb, "step %d", i);
        ig_sampler_accept(a, ta, NULL);
        ig_sampler_accept(b, tb, NULL);
    }
    /* Independent: resetting the clone leaves the original's history alone. */
    ig_sampler_reset(b);
    ig_sampler_free(b);
    ig_sampler_free(a);
}

/* ------------------------------------------------------------------------ */
/* Penalties: exact formulas                                                 */

/* Expected logit under the documented formulas, computed here in float. */
static float expect_pen(float l, bool in_window, int gen_count, float rep, float freq, float pres) {
    if (in_window) l = l > 0 ? l / rep : l * rep;
    if (gen_count > 0) l -= (float)gen_count * freq + pres;
    return l;
}

static void penalised_logits(ig_sampler *s, const float *l, float *out, int32_t n) {
    draw(s, l);
    const ig_candidates *c = ig_sampler_candidates(s);
    for (int32_t i = 0; i < n; i++) out[i] = NAN;
    for (size_t i = 0; i < c->n; i++) out[c->data[i].id] = c->data[i].logit;
}

Test(sampler, penalties_follow_formulas) {
    enum { V = 7 };
    const float l[V] = {2.0f, -1.0f, 0.5f, 3.0f, -2.0f, 1.0f, 0.25f};
    const float rep = 1.5f, freq = 0.25f, pres = 0.5f;
    /* Build bias-free chains by hand: penalties then greedy (which does not
     * touch logits), and a second one with top-k first so the penalties see
     * candidates out of vocabulary order. */
    for (int variant = 0; variant < 2; variant++) {
        ig_sampler *s = NULL;
        cr_assert_eq(ig_sampler_new_empty(V, 1, &s, NULL), IG_OK);
        if (variant == 1) cr_assert_eq(ig_sampler_add_top_k(s, 6, NULL), IG_OK); /* drops id 4 */
        cr_assert_eq(ig_sampler_add_penalties(s, 4, rep, freq, pres, NULL), IG_OK);
        cr_assert_eq(ig_sampler_add_greedy(s, NULL), IG_OK);
        /* History: prompt 1, 6; generated 3, 3, 0, 4. Window (last 4): 3, 3, 0, 4. */
        cr_assert_eq(ig_sampler_accept_prompt(s, (const int32_t[]){1, 6}, 2, NULL), IG_OK);
        const int32_t gen[] = {3, 3, 0, 4};
        for (int i = 0; i < 4; i++) cr_assert_eq(ig_sampler_accept(s, gen[i], NULL), IG_OK);
        float got[V];
        penalised_logits(s, l, got, V);
        const bool in_window[V] = {1, 0, 0, 1, 1, 0, 0};
        const int count[V] = {1, 0, 0, 2, 1, 0, 0};
        for (int i = 0; i < V; i++) {
            if (variant == 1 && i == 4) continue; /* removed by top-k */
            float want = expect_pen(l[i], in_window[i], count[i], rep, freq, pres);
            cr_assert_float_eq(got[i], want, 1e-6, "variant %d id %d: %g vs %g", variant, i,
                               (double)got[i], (double)want);
        }
        /* Spelled out for two tokens, to pin the formulas themselves. */
        cr_assert_float_eq(got[3], 3.0f / 1.5f - (2 * 0.25f + 0.5f), 1e-6);
        cr_assert_float_eq(got[1], -1.0f, 1e-6); /* prompt token outside the window */
        if (variant == 0) cr_assert_float_eq(got[4], -2.0f * 1.5f - (0.25f + 0.5f), 1e-6);
        ig_sampler_free(s);
    }
}

Test(sampler, prompt_tokens_count_for_repetition_only) {
    enum { V = 4 };
    const float l[V] = {1.0f, -1.0f, 2.0f, 0.5f};
    ig_sampler_params p = ig_sampler_params_default();
    p.temperature = 0;
    p.repeat_penalty = 2.0f;
    p.presence_penalty = 1.0f;
    p.frequency_penalty = 1.0f;
    ig_sampler *s = make(&p, V);
    cr_assert_eq(ig_sampler_accept_prompt(s, (const int32_t[]){0, 1, 1}, 3, NULL), IG_OK);
    float got[V];
    penalised_logits(s, l, got, V);
    cr_assert_float_eq(got[0], 0.5f, 1e-6);  /* 1 / 2, no presence/frequency */
    cr_assert_float_eq(got[1], -2.0f, 1e-6); /* -1 * 2 once, though it occurs twice */
    cr_assert_float_eq(got[2], 2.0f, 1e-6);
    /* Reset forgets it all. */
    ig_sampler_reset(s);
    penalised_logits(s, l, got, V);
    for (int i = 0; i < V; i++) cr_assert_float_eq(got[i], l[i], 0);
    ig_sampler_free(s);
}

Test(sampler, repetition_window_slides) {
    enum { V = 3 };
    const float l[V] = {1.0f, 1.0f, 1.0f};
    ig_sampler *s = NULL;
    cr_assert_eq(ig_sampler_new_empty(V, 1, &s, NULL), IG_OK);
    cr_assert_eq(ig_sampler_add_penalties(s, 2, 2.0f, 0.0f, 0.0f, NULL), IG_OK);
    cr_assert_eq(ig_sampler_add_greedy(s, NULL), IG_OK);
    const int32_t seq[] = {0, 1, 2, 2};
    for (int i = 0; i < 4; i++) ig_sampler_accept(s, seq[i], NULL);
    /* Window of 2 holds {2, 2}: only token 2 penalised; 0 is the greedy pick. */
    float got[V];
    penalised_logits(s, l, got, V);
    cr_assert_float_eq(got[0], 1.0f, 0);
    cr_assert_float_eq(got[1], 1.0f, 0);
    cr_assert_float_eq(got[2], 0.5f, 1e-7);
    ig_sampler_free(s);
}

/* ------------------------------------------------------------------------ */
/* Logit bias                                                                */

Test(sampler, logit_bias_adds_and_bans) {
    enum { V = 5 };
    const float l[V] = {0.0f, 1.0f, 4.0f, 3.9f, -1.0f};
    const ig_logit_bias bias[] = {{2, -INFINITY}, {4, 2.0f}, {4, 0.5f}};
    ig_sampler_params p = ig_sampler_params_default();
    p.temperature = 0;
    p.logit_bias = bias;
    p.n_logit_bias = 3;
    ig_sampler *s = make(&p, V);
    cr_assert_eq(draw(s, l), 3);
    float got[V];
    penalised_logits(s, l, got, V);
    cr_assert_float_eq(got[4], 1.5f, 1e-6); /* repeats add up */
    cr_assert(isinf(got[2]) && got[2] < 0);
    ig_sampler_free(s);

    /* Sampling never returns a banned token. */
    p.temperature = 1.0f;
    const float flat[V] = {0, 0, 0, 0, 0};
    check_only_allowed(p, flat, V, (const bool[V]){1, 1, 0, 1, 1});

    /* Banning everything is an error, not a token. */
    const ig_logit_bias all[] = {
        {0, -INFINITY}, {1, -INFINITY}, {2, -INFINITY}, {3, -INFINITY}, {4, -INFINITY}};
    p.logit_bias = all;
    p.n_logit_bias = 5;
    for (int greedy = 0; greedy < 2; greedy++) {
        p.temperature = greedy ? 0.0f : 1.0f;
        s = make(&p, V);
        int32_t tok = 77;
        ig_error err = {0};
        cr_assert_eq(ig_sampler_sample(s, l, &tok, &err), IG_ERANGE);
        cr_assert_eq(tok, 77);
        ig_sampler_free(s);
    }
}

/* ------------------------------------------------------------------------ */
/* Validation                                                                */

static void expect_invalid(ig_sampler_params p, int32_t n_vocab, const char *field) {
    ig_sampler *s = (ig_sampler *)0x1;
    ig_error err = {0};
    cr_assert_eq(ig_sampler_new(&p, n_vocab, &s, &err), IG_EINVAL, "%s accepted", field);
    cr_assert_eq(s, (ig_sampler *)0x1, "out written on failure");
    cr_assert(strstr(err.message, field), "message '%s' does not name %s", err.message, field);
}

Test(sampler, invalid_params_rejected) {
    const ig_sampler_params d = ig_sampler_params_default();
    ig_sampler_params p;
    p = d, p.temperature = -0.1f, expect_invalid(p, 10, "temperature");
    p = d, p.temperature = NAN, expect_invalid(p, 10, "temperature");
    p = d, p.top_p = 0.0f, expect_invalid(p, 10, "top_p");
    p = d, p.top_p = 1.5f, expect_invalid(p, 10, "top_p");
    p = d, p.top_p = NAN, expect_invalid(p, 10, "top_p");
    p = d, p.min_p = -0.1f, expect_invalid(p, 10, "min_p");
    p = d, p.min_p = 1.01f, expect_invalid(p, 10, "min_p");
    p = d, p.repeat_penalty = 0.0f, expect_invalid(p, 10, "repeat_penalty");
    p = d, p.repeat_last_n = -1, expect_invalid(p, 10, "repeat_last_n");
    p = d, p.presence_penalty = INFINITY, expect_invalid(p, 10, "presence_penalty");
    p = d, p.frequency_penalty = NAN, expect_invalid(p, 10, "frequency_penalty");
    const ig_logit_bias hi = {10, 1.0f}, lo = {-1, 1.0f}, nan_bias = {3, NAN};
    p = d, p.logit_bias = &hi, p.n_logit_bias = 1, expect_invalid(p, 10, "logit_bias");
    p = d, p.logit_bias = &lo, p.n_logit_bias = 1, expect_invalid(p, 10, "logit_bias");
    p = d, p.logit_bias = &nan_bias, p.n_logit_bias = 1, expect_invalid(p, 10, "logit_bias");
    expect_invalid(d, 0, "n_vocab");
    /* A zeroed struct is invalid (documented): top_p is 0. */
    expect_invalid((ig_sampler_params){0}, 10, "top_p");

    /* Off values are fine. */
    p = d, p.top_k = -5, p.min_p = 0, p.top_p = 1, p.seed = 1;
    ig_sampler *s = make(&p, 10);
    ig_sampler_free(s);
}

Test(sampler, bad_input_rows_and_tokens) {
    ig_sampler_params p = ig_sampler_params_default();
    p.seed = 2;
    ig_sampler *s = make(&p, 4);
    ig_error err = {0};
    int32_t tok = -1;
    const float bad[4] = {0, NAN, 1, 2};
    cr_assert_eq(ig_sampler_sample(s, bad, &tok, &err), IG_ERANGE);
    cr_assert(strstr(err.message, "NaN"));
    cr_assert_eq(ig_sampler_accept(s, 4, NULL), IG_EINVAL);
    cr_assert_eq(ig_sampler_accept(s, -1, NULL), IG_EINVAL);
    cr_assert_eq(ig_sampler_accept_prompt(s, (const int32_t[]){0, 9}, 2, NULL), IG_EINVAL);
    ig_sampler_free(s);

    /* A chain without a selecting stage says so. */
    cr_assert_eq(ig_sampler_new_empty(4, 1, &s, NULL), IG_OK);
    cr_assert_eq(ig_sampler_add_top_k(s, 2, NULL), IG_OK);
    const float ok[4] = {0, 1, 2, 3};
    memset(&err, 0, sizeof err);
    cr_assert_eq(ig_sampler_sample(s, ok, &tok, &err), IG_EINVAL);
    ig_sampler_free(s);
}

/* ------------------------------------------------------------------------ */
/* Custom stages through the ops table                                       */

static ig_status ban_odd_apply(void *state, ig_candidates *cur, ig_error *err) {
    for (size_t i = 0; i < cur->n; i++)
        if (cur->data[i].id % 2) cur->data[i].logit = -INFINITY;
    cur->n_sorted = 0;
    return IG_OK;
}

static const ig_sampler_stage_ops ban_odd_ops = {.name = "ban_odd", .apply = ban_odd_apply};

static void noop_free(void *state) {
    free(state);
}
static const ig_sampler_stage_ops uncloneable_ops = {
    .name = "uncloneable", .apply = ban_odd_apply, .free = noop_free};

Test(sampler, custom_stage_and_clone_rules) {
    enum { V = 10 };
    ig_sampler *s = NULL;
    cr_assert_eq(ig_sampler_new_empty(V, 3, &s, NULL), IG_OK);
    cr_assert_eq(ig_sampler_add(s, &ban_odd_ops, NULL, NULL), IG_OK);
    cr_assert_eq(ig_sampler_add_dist(s, NULL), IG_OK);
    const float flat[V] = {0};
    for (int i = 0; i < 200; i++) cr_assert_eq(draw(s, flat) % 2, 0);
    ig_sampler *c = NULL;
    cr_assert_eq(ig_sampler_clone(s, &c, NULL), IG_OK); /* stateless custom stage: fine */
    ig_sampler_free(c);

    cr_assert_eq(ig_sampler_add(s, &uncloneable_ops, malloc(4), NULL), IG_OK);
    ig_error err = {0};
    cr_assert_eq(ig_sampler_clone(s, &c, &err), IG_EUNSUPPORTED);
    cr_assert(strstr(err.message, "uncloneable"));
    cr_assert_eq(ig_sampler_add(s, NULL, NULL, NULL), IG_EINVAL);
    ig_sampler_free(s);
}

/* ------------------------------------------------------------------------ */
/* Candidate helpers                                                         */

static int cmp_ref(const void *pa, const void *pb) {
    const ig_candidate *a = pa, *b = pb;
    if (a->logit != b->logit) return a->logit > b->logit ? -1 : 1;
    return (a->id > b->id) - (a->id < b->id);
}

Test(candidates, sort_top_matches_full_sort) {
    const size_t sizes[] = {1, 2, 3, 7, 63, 64, 65, 1000, 4097};
    static ig_candidate a[4097], ref[4097];
    for (size_t si = 0; si < sizeof sizes / sizeof sizes[0]; si++) {
        size_t n = sizes[si];
        for (size_t m = 0; m <= n; m = m ? m * 3 + 1 : 1) {
            for (size_t i = 0; i < n; i++) {
                /* Coarse values force many ties. */
                a[i] = (ig_candidate){(int32_t)i, (float)(int)(lcg_uniform() * 20), 0};
            }
            memcpy(ref, a, n * sizeof a[0]);
            qsort(ref, n, sizeof ref[0], cmp_ref);
            ig_candidates c = {.data = a, .n = n, .is_vocab_order = true, .selected = -1};
            ig_candidates_sort_top(&c, m);
            cr_assert_geq(c.n_sorted, m);
            for (size_t i = 0; i < m; i++)
                cr_assert_eq(a[i].id, ref[i].id, "n=%zu m=%zu i=%zu", n, m, i);
            /* Everything after the prefix ranks after its last entry. */
            for (size_t i = m; i < n && m > 0; i++) cr_assert_gt(cmp_ref(&a[i], &ref[m - 1]), 0);
        }
    }
}

/* ------------------------------------------------------------------------ */
/* Logprobs                                                                  */

Test(logprobs, log_softmax_known_values) {
    const float l[3] = {0.0f, logf(3.0f), -INFINITY};
    float out[3];
    cr_assert_eq(ig_log_softmax(l, 3, out), IG_OK);
    cr_assert_float_eq(out[0], logf(0.25f), 1e-6);
    cr_assert_float_eq(out[1], logf(0.75f), 1e-6);
    cr_assert(isinf(out[2]) && out[2] < 0);
    /* Large logits: stable, sums to one. */
    enum { V = 2000 };
    static float big[V], lp[V];
    for (int i = 0; i < V; i++) big[i] = 1000.0f + (float)(lcg_uniform() * 50);
    cr_assert_eq(ig_log_softmax(big, V, lp), IG_OK);
    double sum = 0;
    for (int i = 0; i < V; i++) sum += exp(lp[i]);
    cr_assert(fabs(sum - 1.0) < 1e-4, "sum %g", sum);
    const float nan_row[2] = {0, NAN}, dead[2] = {-INFINITY, -INFINITY};
    cr_assert_eq(ig_log_softmax(nan_row, 2, out), IG_ERANGE);
    cr_assert_eq(ig_log_softmax(dead, 2, out), IG_ERANGE);
}

Test(logprobs, top_n_matches_brute_force) {
    enum { V = 3001 };
    static float l[V], lp[V];
    for (int i = 0; i < V; i++) l[i] = (float)(int)(lcg_uniform() * 200) / 10.0f; /* ties */
    cr_assert_eq(ig_log_softmax(l, V, lp), IG_OK);
    const size_t tops[] = {0, 1, 5, 20};
    for (size_t ti = 0; ti < 4; ti++) {
        ig_token_logprob out[20];
        size_t n_out = 99;
        cr_assert_eq(ig_logits_top_n(l, V, tops[ti], out, &n_out), IG_OK);
        cr_assert_eq(n_out, tops[ti]);
        static bool used[V];
        memset(used, 0, sizeof used);
        for (size_t k = 0; k < n_out; k++) {
            int best = -1; /* brute force: best unused, lowest id on ties */
            for (int i = 0; i < V; i++)
                if (!used[i] && (best < 0 || l[i] > l[best])) best = i;
            used[best] = true;
            cr_assert_eq(out[k].id, best, "rank %zu", k);
            cr_assert_float_eq(out[k].logprob, lp[best], 1e-5);
        }
    }
    ig_token_logprob small[8];
    size_t n_out = 0;
    const float three[3] = {1, 2, 3};
    cr_assert_eq(ig_logits_top_n(three, 3, 8, small, &n_out), IG_OK);
    cr_assert_eq(n_out, 3);
    cr_assert_eq(small[0].id, 2);
}

/* ------------------------------------------------------------------------ */
/* Order and edge cases                                                      */

Test(sampler, filters_see_logits_before_temperature) {
    /* llama.cpp's order: top-p and min-p judge the untempered distribution.
     * At T = 0.5 the tempered ratio 0.2/0.5 becomes 0.16 < 0.35, so applying
     * temperature first would drop id 5; it must stay. */
    float l[8];
    hand_logits(l);
    ig_sampler_params p = ig_sampler_params_default();
    p.temperature = 0.5f;
    p.min_p = 0.35f;
    p.seed = 4;
    check_only_allowed(p, l, 8, (const bool[8]){0, 0, 1, 0, 0, 1, 0, 0});
    p.min_p = 0.0f;
    p.top_p = 0.75f; /* tempered, the top two alone would already hold 0.86 */
    check_only_allowed(p, l, 8, (const bool[8]){0, 0, 1, 0, 0, 1, 1, 0});
}

Test(sampler, positive_infinite_bias_forces_token) {
    enum { V = 6 };
    const float l[V] = {5, 4, 3, 2, 1, 0};
    const ig_logit_bias force[] = {{4, INFINITY}};
    ig_sampler_params p = ig_sampler_params_default();
    p.logit_bias = force;
    p.n_logit_bias = 1;
    p.top_p = 0.9f;
    p.min_p = 0.1f;
    for (int greedy = 0; greedy < 2; greedy++) {
        p.temperature = greedy ? 0.0f : 0.8f;
        p.seed = 6;
        ig_sampler *s = make(&p, V);
        for (int i = 0; i < 50; i++) cr_assert_eq(draw(s, l), 4);
        ig_sampler_free(s);
    }
    const ig_logit_bias two[] = {{1, INFINITY}, {5, INFINITY}};
    p.logit_bias = two;
    p.n_logit_bias = 2;
    p.temperature = 1.0f;
    p.top_p = 1.0f;
    p.min_p = 0.0f;
    check_only_allowed(p, l, V, (const bool[V]){0, 1, 0, 0, 0, 1});
}

Test(sampler, bias_after_reordering_stage) {
    /* top-k first leaves candidates out of vocabulary order; the bias must
     * still find its tokens by id. */
    enum { V = 6 };
    const float l[V] = {0.0f, 1.0f, 2.0f, 3.0f, 4.0f, 5.0f};
    const ig_logit_bias bias[] = {{3, 10.0f}, {0, 100.0f}};
    ig_sampler *s = NULL;
    cr_assert_eq(ig_sampler_new_empty(V, 1, &s, NULL), IG_OK);
    cr_assert_eq(ig_sampler_add_top_k(s, 3, NULL), IG_OK); /* keeps 5, 4, 3 */
    cr_assert_eq(ig_sampler_add_logit_bias(s, bias, 2, NULL), IG_OK);
    cr_assert_eq(ig_sampler_add_greedy(s, NULL), IG_OK);
    cr_assert_eq(draw(s, l), 3); /* 3 + 10 beats 5; token 0 was already gone */
    float got[V];
    penalised_logits(s, l, got, V);
    cr_assert_float_eq(got[3], 13.0f, 1e-6);
    cr_assert_float_eq(got[5], 5.0f, 1e-6);
    cr_assert(isnan(got[0]));
    ig_error err = {0};
    cr_assert_eq(ig_sampler_add_logit_bias(s, (const ig_logit_bias[]){{6, 1}}, 1, &err), IG_EINVAL);
    cr_assert(strstr(err.message, "logit_bias"));
    ig_sampler_free(s);
}
