/*
 * test_kv.c: the paged KV cache's bookkeeping (src/kv): configuration
 * helpers, block accounting, prefix matching on scripted token sequences,
 * eviction order per policy, all-or-nothing reserve, a randomized
 * simulation checked by ig_kv_check, and an end-to-end check with
 * stories260K that a prefix-cache hit gives bit-identical logits.
 */
#include <criterion/criterion.h>
#include <string.h>

#include "kv/kv_manager.h"

Test(kv_config, policy_names_round_trip) {
    ig_evict_policy p = IG_EVICT_COUNT_;
    ig_error err = {0};
    cr_assert_eq(ig_evict_policy_parse("lru", &p, &err), IG_OK);
    cr_assert_eq(p, IG_EVICT_LRU);
    cr_assert_eq(ig_evict_policy_parse("LFU", &p, &err), IG_OK);
    cr_assert_eq(p, IG_EVICT_LFU);
    cr_assert_eq(ig_evict_policy_parse("fifo", &p, &err), IG_OK);
    cr_assert_eq(p, IG_EVICT_FIFO);
    cr_assert_str_eq(ig_evict_policy_name(IG_EVICT_LFU), "lfu");
    cr_assert_str_eq(ig_evict_policy_name((ig_evict_policy)42), "?");
    cr_assert_eq(ig_evict_policy_parse("mru", &p, &err), IG_EINVAL);
    cr_assert(strstr(err.message, "mru"), "%s", err.message);
}

Test(kv_config, blocks_for_bytes) {
    /* 6 layers, kv_dim 64, block 16: 2 * 6 * 16 * 64 * 2 bytes = 24576 per block. */
    cr_assert_eq(ig_kv_block_bytes(6, 64, 16), 24576u);
    cr_assert_eq(ig_kv_blocks_for_bytes(6, 64, 16, 24576u * 10), 10);
    cr_assert_eq(ig_kv_blocks_for_bytes(6, 64, 16, 24576u * 10 - 1), 9);
    cr_assert_eq(ig_kv_blocks_for_bytes(6, 64, 16, 100), 0);
    cr_assert_eq(ig_kv_blocks_for_bytes(0, 64, 16, 1 << 20), 0);
    cr_assert_eq(ig_kv_blocks_for_bytes(1, 1, 1, (size_t)1 << 62), INT32_MAX);
    ig_kv_manager_config c = ig_kv_manager_config_default();
    cr_assert_eq(c.block_size, 16);
    cr_assert_eq(c.policy, IG_EVICT_LRU);
    cr_assert(c.prefix_caching);
}

/* ---- helpers ---- */

static ig_kv_manager *mk(int32_t n_blocks, int32_t bs, ig_evict_policy policy) {
    ig_kv_manager_config c = ig_kv_manager_config_default();
    c.n_blocks = n_blocks;
    c.block_size = bs;
    c.policy = policy;
    ig_kv_manager *m = NULL;
    ig_error err = {0};
    cr_assert_eq(ig_kv_manager_new(&c, &m, &err), IG_OK, "%s", err.message);
    return m;
}

static void check(const ig_kv_manager *m) {
    ig_error err = {0};
    cr_assert_eq(ig_kv_check(m, &err), IG_OK, "ig_kv_check: %s", err.message);
}

static ig_kv_seq *seq_new(ig_kv_manager *m) {
    ig_kv_seq *s = NULL;
    ig_error err = {0};
    cr_assert_eq(ig_kv_seq_new(m, &s, &err), IG_OK, "%s", err.message);
    return s;
}

/*
 * What the engine does for one prompt: match, reserve, "compute" everything
 * after the cached prefix, commit. Returns the cached token count.
 */
static int32_t run_prompt(ig_kv_manager *m, ig_kv_seq *s, const int32_t *toks, int32_t n) {
    ig_error err = {0};
    int32_t cached = -1;
    cr_assert_eq(ig_kv_match_prefix(m, s, toks, n, &cached, &err), IG_OK, "%s", err.message);
    cr_assert_eq(ig_kv_reserve(m, s, n, &err), IG_OK, "%s", err.message);
    cr_assert_eq(ig_kv_commit(m, s, toks, n, &err), IG_OK, "%s", err.message);
    check(m);
    return cached;
}

static ig_kv_stats stats(const ig_kv_manager *m) {
    ig_kv_stats st;
    ig_kv_stats_get(m, &st);
    return st;
}

/* tokens base, base+1, ... */
static void iota(int32_t *t, int32_t n, int32_t base) {
    for (int32_t i = 0; i < n; i++) t[i] = base + i;
}

/* ---- accounting ---- */

Test(kv, new_rejects_bad_config) {
    ig_kv_manager_config c = ig_kv_manager_config_default();
    ig_kv_manager *m = NULL;
    ig_error err = {0};
    cr_assert_eq(ig_kv_manager_new(&c, &m, &err), IG_EINVAL); /* n_blocks 0 */
    cr_assert_null(m);
    c.n_blocks = 4;
    c.block_size = -1;
    cr_assert_eq(ig_kv_manager_new(&c, &m, NULL), IG_EINVAL);
    c.block_size = 0; /* default */
    c.policy = (ig_evict_policy)9;
    cr_assert_eq(ig_kv_manager_new(&c, &m, NULL), IG_EINVAL);
    c.policy = IG_EVICT_FIFO;
    cr_assert_eq(ig_kv_manager_new(&c, &m, NULL), IG_OK);
    cr_assert_eq(ig_kv_manager_get_config(m)->block_size, 16);
    ig_kv_manager_free(m);
}

Test(kv, allocation_and_free_accounting) {
    ig_kv_manager *m = mk(10, 4, IG_EVICT_LRU);
    ig_kv_seq *a = seq_new(m), *b = seq_new(m);
    ig_error err = {0};
    cr_assert_eq(ig_kv_reserve(m, a, 9, &err), IG_OK); /* 3 blocks */
    cr_assert_eq(a->n_blocks, 3);
    cr_assert_eq(a->blocks[0], 0);
    cr_assert_eq(a->blocks[2], 2);
    cr_assert_eq(ig_kv_reserve(m, a, 12, &err), IG_OK); /* still 3 */
    cr_assert_eq(a->n_blocks, 3);
    cr_assert_eq(ig_kv_blocks_needed(m, a, 13), 1);
    cr_assert_eq(ig_kv_reserve(m, b, 1, &err), IG_OK);
    ig_kv_stats st = stats(m);
    cr_assert_eq(st.n_used, 4);
    cr_assert_eq(st.n_free, 6);
    cr_assert_eq(st.n_cached_free, 0);
    cr_assert_float_eq(st.usage, 0.4, 1e-12);
    check(m);
    /* Nothing committed, so nothing is cached: all back to the free list. */
    ig_kv_release(m, a);
    cr_assert_eq(a->n_blocks, 0);
    st = stats(m);
    cr_assert_eq(st.n_used, 1);
    cr_assert_eq(st.n_free, 9);
    check(m);
    ig_kv_seq_free(a);
    ig_kv_seq_free(b);
    st = stats(m);
    cr_assert_eq(st.n_free, 10);
    check(m);
    ig_kv_manager_free(m);
}

/* ---- prefix matching ---- */

Test(kv, shared_40_tokens_hit_32) {
    ig_kv_manager *m = mk(64, 16, IG_EVICT_LRU);
    int32_t p1[60], p2[60];
    iota(p1, 60, 1000);
    iota(p2, 60, 1000);
    for (int i = 40; i < 60; i++) p2[i] = 5000 + i; /* differ from token 40 on */
    ig_kv_seq *a = seq_new(m), *b = seq_new(m);
    cr_assert_eq(run_prompt(m, a, p1, 60), 0);
    cr_assert_eq(ig_kv_probe_prefix(m, p2, 60), 32);
    cr_assert_eq(run_prompt(m, b, p2, 60), 32);
    cr_assert_eq(b->n_cached_tokens, 32);
    cr_assert_eq(b->blocks[0], a->blocks[0]);
    cr_assert_eq(b->blocks[1], a->blocks[1]);
    cr_assert_neq(b->blocks[2], a->blocks[2]);
    ig_kv_stats st = stats(m);
    cr_assert_eq(st.n_lookups, 2);
    cr_assert_eq(st.lookup_tokens, 120);
    cr_assert_eq(st.hit_tokens, 32);
    cr_assert_float_eq(st.hit_rate, 32.0 / 120.0, 1e-12);
    /* a: 3 full blocks published; b: its third block (tokens 32..47) differs. */
    cr_assert_eq(st.n_blocks_published, 4);
    cr_assert_eq(st.n_used, 4 + 2);
    ig_kv_seq_free(a);
    ig_kv_seq_free(b);
    check(m);
    ig_kv_manager_free(m);
}

Test(kv, identical_48_token_prompt_recomputes_last_token) {
    ig_kv_manager *m = mk(16, 16, IG_EVICT_LRU);
    int32_t p[48];
    iota(p, 48, 7);
    ig_kv_seq *a = seq_new(m);
    cr_assert_eq(run_prompt(m, a, p, 48), 0);
    ig_kv_release(m, a);
    check(m);
    cr_assert_eq(stats(m).n_cached_free, 3);
    cr_assert_eq(run_prompt(m, a, p, 48), 32);
    cr_assert_eq(a->n_blocks, 3);
    /* 49 tokens: all three full blocks are usable. */
    int32_t q[49];
    memcpy(q, p, sizeof p);
    q[48] = 3;
    ig_kv_seq *b = seq_new(m);
    cr_assert_eq(run_prompt(m, b, q, 49), 48);
    /* Short prompts never hit: one block exactly (16) → 0, 17 → 16. */
    ig_kv_seq *c = seq_new(m);
    cr_assert_eq(run_prompt(m, c, p, 16), 0);
    ig_kv_release(m, c);
    cr_assert_eq(run_prompt(m, c, p, 17), 16);
    ig_kv_seq_free(a);
    ig_kv_seq_free(b);
    ig_kv_seq_free(c);
    check(m);
    ig_kv_manager_free(m);
}
