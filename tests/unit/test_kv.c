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
#include "model/model.h"
#include "testutil.h"

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

Test(kv, multi_turn_hits_prompt_and_answer_blocks) {
    ig_kv_manager *m = mk(32, 16, IG_EVICT_LRU);
    ig_error err = {0};
    int32_t conv[72];
    iota(conv, 72, 300);
    /* Turn 1: 37 prompt tokens, then 20 generated one at a time. */
    ig_kv_seq *s = seq_new(m);
    cr_assert_eq(run_prompt(m, s, conv, 37), 0);
    cr_assert_eq(stats(m).n_blocks_published, 2);
    /* Each decode step feeds the previous token: KV of the last sampled one is never computed. */
    for (int32_t n = 38; n <= 56; n++) {
        cr_assert_eq(ig_kv_reserve(m, s, n, &err), IG_OK, "%s", err.message);
        cr_assert_eq(ig_kv_commit(m, s, conv, n, &err), IG_OK, "%s", err.message);
    }
    check(m);
    cr_assert_eq(stats(m).n_blocks_published, 3); /* tokens 32..47 mix prompt and answer */
    int32_t turn1[4];
    memcpy(turn1, s->blocks, 4 * sizeof *turn1);
    ig_kv_release(m, s);
    /* Turn 2: prompt = turn 1 prompt + answer (57 tokens) + 15 new ones. */
    ig_kv_seq *t = seq_new(m);
    cr_assert_eq(run_prompt(m, t, conv, 72), 48);
    for (int i = 0; i < 3; i++) cr_assert_eq(t->blocks[i], turn1[i]);
    /* Turn 2 commits 72 tokens: blocks 3 (48..63) is new, 4 is partial. */
    cr_assert_eq(stats(m).n_blocks_published, 4);
    ig_kv_seq_free(s);
    ig_kv_seq_free(t);
    check(m);
    ig_kv_manager_free(m);
}

Test(kv, duplicate_block_keeps_first_published_and_chain_continues) {
    ig_kv_manager *m = mk(16, 4, IG_EVICT_LRU);
    ig_error err = {0};
    int32_t p[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
    int32_t q[9] = {1, 2, 3, 4, 50, 60, 70, 80, 90};
    ig_kv_seq *a = seq_new(m), *b = seq_new(m);
    /* Both look up before either commits: no hits. */
    int32_t ca = -1, cb = -1;
    cr_assert_eq(ig_kv_match_prefix(m, a, p, 9, &ca, &err), IG_OK);
    cr_assert_eq(ig_kv_match_prefix(m, b, q, 9, &cb, &err), IG_OK);
    cr_assert_eq(ca + cb, 0);
    cr_assert_eq(ig_kv_reserve(m, a, 9, &err), IG_OK);
    cr_assert_eq(ig_kv_reserve(m, b, 9, &err), IG_OK);
    cr_assert_eq(ig_kv_commit(m, a, p, 9, &err), IG_OK);
    cr_assert_eq(ig_kv_commit(m, b, q, 9, &err), IG_OK);
    check(m);
    /* a published [1..4] and [5..8]; b's [1..4] is a duplicate (stays private),
     * b's [50..80] is published as the child of a's first block. */
    cr_assert_eq(stats(m).n_blocks_published, 3);
    cr_assert_eq(stats(m).n_published, 3);
    ig_kv_seq *c = seq_new(m);
    int32_t r[9] = {1, 2, 3, 4, 50, 60, 70, 80, 0};
    cr_assert_eq(run_prompt(m, c, r, 9), 8);
    cr_assert_eq(c->blocks[0], a->blocks[0]);
    cr_assert_eq(c->blocks[1], b->blocks[1]);
    /* Releasing b: its private duplicate goes to the free list, not the cache. */
    int32_t free_before = stats(m).n_free;
    ig_kv_release(m, b);
    cr_assert_eq(stats(m).n_free, free_before + 2); /* duplicate + partial last block */
    check(m);
    ig_kv_seq_free(a);
    ig_kv_seq_free(b);
    ig_kv_seq_free(c);
    check(m);
    ig_kv_manager_free(m);
}

/* ---- collisions ---- */

static uint64_t const_hash(uint64_t parent, const int32_t *t, int32_t n) {
    return 42;
}

Test(kv, forced_collisions_never_return_wrong_blocks) {
    ig_kv_manager_config c = ig_kv_manager_config_default();
    c.n_blocks = 16;
    c.block_size = 4;
    c.hash_fn = const_hash; /* every block of every prompt has the same key */
    ig_kv_manager *m = NULL;
    cr_assert_eq(ig_kv_manager_new(&c, &m, NULL), IG_OK);
    int32_t a[9] = {1, 2, 3, 4, 7, 7, 7, 7, 0};
    int32_t b[9] = {9, 9, 9, 9, 7, 7, 7, 7, 0};
    ig_kv_seq *sa = seq_new(m), *sb = seq_new(m), *sc = seq_new(m);
    cr_assert_eq(run_prompt(m, sa, a, 9), 0);
    /* b's first block collides with a's but its tokens differ: no hit. */
    cr_assert_eq(run_prompt(m, sb, b, 9), 0);
    cr_assert_gt(stats(m).n_collisions, 0);
    /* Both chains are published; their second blocks hold the same tokens
     * under different parents. A lookup of a must get a's blocks only. */
    cr_assert_eq(stats(m).n_published, 4);
    cr_assert_eq(run_prompt(m, sc, a, 9), 8);
    cr_assert_eq(sc->blocks[0], sa->blocks[0]);
    cr_assert_eq(sc->blocks[1], sa->blocks[1]);
    ig_kv_release(m, sc);
    cr_assert_eq(run_prompt(m, sc, b, 9), 8);
    cr_assert_eq(sc->blocks[0], sb->blocks[0]);
    cr_assert_eq(sc->blocks[1], sb->blocks[1]);
    /* A prompt whose first block is nowhere: nothing, even though block 2 exists. */
    int32_t d[9] = {5, 5, 5, 5, 7, 7, 7, 7, 0};
    cr_assert_eq(ig_kv_probe_prefix(m, d, 9), 0);
    ig_kv_seq_free(sa);
    ig_kv_seq_free(sb);
    ig_kv_seq_free(sc);
    check(m);
    ig_kv_manager_free(m);
}

Test(kv, child_of_an_evicted_parent_is_not_reused) {
    /* A child block C stays cached while its parent H is evicted and reused
     * for other tokens. A lookup through the new H must not reach C: its KV
     * was computed after H's old tokens. Keys all collide, so only the
     * parent's identity (block id and generation) can tell. */
    ig_kv_manager_config c = ig_kv_manager_config_default();
    c.n_blocks = 3;
    c.block_size = 2;
    c.policy = IG_EVICT_FIFO; /* evicts the head H before its child */
    c.hash_fn = const_hash;
    ig_kv_manager *m = NULL;
    cr_assert_eq(ig_kv_manager_new(&c, &m, NULL), IG_OK);
    ig_error err = {0};
    int32_t a[5] = {1, 1, 2, 2, 0};
    ig_kv_seq *s = seq_new(m), *t = seq_new(m);
    cr_assert_eq(run_prompt(m, s, a, 5), 0); /* H [1 1], C [2 2], partial */
    int32_t h = s->blocks[0], child = s->blocks[1];
    ig_kv_release(m, s);
    cr_assert_eq(ig_kv_reserve(m, t, 1, &err), IG_OK); /* t holds the free block */
    int32_t b[3] = {5, 5, 0};
    cr_assert_eq(run_prompt(m, s, b, 2), 0); /* evicts H, publishes it as [5 5] */
    cr_assert_eq(s->blocks[0], h);
    cr_assert_eq(stats(m).n_evictions, 1);
    ig_kv_release(m, s);
    check(m);
    int32_t probe[5] = {5, 5, 2, 2, 0};
    cr_assert_eq(ig_kv_probe_prefix(m, probe, 5), 2);
    int32_t n_cached = -1;
    cr_assert_eq(ig_kv_match_prefix(m, s, probe, 5, &n_cached, &err), IG_OK);
    cr_assert_eq(n_cached, 2);
    cr_assert_eq(s->blocks[0], h);
    cr_assert_neq(stats(m).n_published, 0);
    (void)child;
    ig_kv_seq_free(s);
    ig_kv_seq_free(t);
    check(m);
    ig_kv_manager_free(m);
}

/* ---- eviction order ---- */

/*
 * Three one-block prompts X, Y, Z (block size 4) are published and released
 * in that order; X is then hit twice and Z once (each hit: match, one extra
 * block, release). Stamps: Y < X < Z; hits: X 2, Y 0, Z 1; publication:
 * X < Y < Z. The pool has 4 blocks, so after one free block, every new block
 * is an eviction. Returns the evicted blocks in order, as indices 0=X 1=Y 2=Z.
 */
static void eviction_order(ig_evict_policy policy, int out[3]) {
    ig_kv_manager *m = mk(4, 4, policy);
    ig_error err = {0};
    int32_t p[3][5] = {{1, 1, 1, 1, 0}, {2, 2, 2, 2, 0}, {3, 3, 3, 3, 0}};
    int32_t id[3];
    ig_kv_seq *s = seq_new(m);
    for (int i = 0; i < 3; i++) {
        cr_assert_eq(run_prompt(m, s, p[i], 4), 0);
        id[i] = s->blocks[0];
        ig_kv_release(m, s);
    }
    cr_assert_eq(stats(m).n_cached_free, 3);
    int hits[] = {0, 0, 2};
    for (int h = 0; h < 3; h++) {
        cr_assert_eq(run_prompt(m, s, p[hits[h]], 5), 4);
        ig_kv_release(m, s);
    }
    check(m);
    cr_assert_eq(stats(m).n_free, 1);
    cr_assert_eq(ig_kv_reserve(m, s, 4, &err), IG_OK); /* the free block */
    cr_assert_eq(stats(m).n_evictions, 0);
    for (int k = 0; k < 3; k++) {
        cr_assert_eq(ig_kv_reserve(m, s, 8 + 4 * k, &err), IG_OK);
        cr_assert_eq(stats(m).n_evictions, (uint64_t)k + 1);
        int32_t victim = s->blocks[k + 1];
        out[k] = -1;
        for (int i = 0; i < 3; i++)
            if (id[i] == victim) out[k] = i;
        check(m);
    }
    cr_assert_eq(stats(m).n_published, 0);
    cr_assert_eq(ig_kv_reserve(m, s, 17, &err), IG_EOVERLOADED);
    ig_kv_seq_free(s);
    ig_kv_manager_free(m);
}

Test(kv, eviction_order_lru) {
    int o[3];
    eviction_order(IG_EVICT_LRU, o);
    cr_assert(o[0] == 1 && o[1] == 0 && o[2] == 2, "got %d %d %d", o[0], o[1], o[2]);
}

Test(kv, eviction_order_lfu) {
    int o[3];
    eviction_order(IG_EVICT_LFU, o);
    cr_assert(o[0] == 1 && o[1] == 2 && o[2] == 0, "got %d %d %d", o[0], o[1], o[2]);
}

Test(kv, eviction_order_fifo) {
    int o[3];
    eviction_order(IG_EVICT_FIFO, o);
    cr_assert(o[0] == 0 && o[1] == 1 && o[2] == 2, "got %d %d %d", o[0], o[1], o[2]);
}

Test(kv, lru_evicts_a_chain_from_its_tail) {
    ig_kv_manager *m = mk(4, 4, IG_EVICT_LRU);
    ig_error err = {0};
    int32_t p[13];
    iota(p, 13, 1);
    ig_kv_seq *s = seq_new(m);
    cr_assert_eq(run_prompt(m, s, p, 13), 0); /* 3 full blocks + 1 partial */
    int32_t chain[3] = {s->blocks[0], s->blocks[1], s->blocks[2]};
    ig_kv_release(m, s);
    cr_assert_eq(ig_kv_reserve(m, s, 4, &err), IG_OK); /* free block */
    cr_assert_eq(ig_kv_reserve(m, s, 8, &err), IG_OK);
    cr_assert_eq(s->blocks[1], chain[2]);
    cr_assert_eq(ig_kv_probe_prefix(m, p, 13), 8); /* head of the chain still there */
    cr_assert_eq(ig_kv_reserve(m, s, 12, &err), IG_OK);
    cr_assert_eq(s->blocks[2], chain[1]);
    cr_assert_eq(ig_kv_probe_prefix(m, p, 13), 4);
    ig_kv_seq_free(s);
    check(m);
    ig_kv_manager_free(m);
}

/* ---- reserve failure ---- */

Test(kv, reserve_failure_is_all_or_nothing) {
    ig_kv_manager *m = mk(5, 4, IG_EVICT_LRU);
    ig_error err = {0};
    int32_t p[8] = {1, 2, 3, 4, 5, 6, 7, 8}, q[5] = {1, 2, 3, 4, 9};
    ig_kv_seq *a = seq_new(m), *b = seq_new(m);
    cr_assert_eq(run_prompt(m, a, p, 8), 0); /* 2 blocks, both published */
    ig_kv_release(m, a);
    cr_assert_eq(run_prompt(m, a, q, 5), 4); /* holds block 0 + 1 new; block [5..8] evictable */
    ig_kv_stats before = stats(m);
    cr_assert_eq(before.n_used, 2);
    cr_assert_eq(before.n_cached_free, 1);
    cr_assert_eq(before.n_free, 2);
    cr_assert_eq(ig_kv_n_available(m), 3);
    cr_assert_eq(ig_kv_reserve(m, b, 13, &err), IG_EOVERLOADED); /* 4 blocks */
    cr_assert(strstr(err.message, "4 blocks needed"), "%s", err.message);
    ig_kv_stats after = stats(m);
    cr_assert_eq(b->n_blocks, 0);
    cr_assert_eq(after.n_free, before.n_free);
    cr_assert_eq(after.n_cached_free, before.n_cached_free);
    cr_assert_eq(after.n_evictions, 0);
    cr_assert_eq(ig_kv_probe_prefix(m, p, 9), 8); /* cached block untouched */
    check(m);
    /* Growing an existing table fails the same way and keeps what it had. */
    cr_assert_eq(ig_kv_reserve(m, a, 5 + 4 * 4, NULL), IG_EOVERLOADED);
    cr_assert_eq(a->n_blocks, 2);
    cr_assert_eq(ig_kv_reserve(m, b, 12, &err), IG_OK); /* exactly 3: evicts one */
    cr_assert_eq(stats(m).n_evictions, 1);
    cr_assert_eq(ig_kv_n_available(m), 0);
    check(m);
    ig_kv_seq_free(a);
    ig_kv_seq_free(b);
    check(m);
    ig_kv_manager_free(m);
}

/* ---- misuse and options ---- */

Test(kv, bad_calls_are_rejected_cleanly) {
    ig_kv_manager *m = mk(8, 4, IG_EVICT_LRU);
    ig_error err = {0};
    int32_t p[6] = {1, 2, 3, 4, 5, 6};
    ig_kv_seq *s = seq_new(m);
    cr_assert_eq(run_prompt(m, s, p, 6), 0);
    cr_assert_eq(ig_kv_match_prefix(m, s, p, 6, NULL, &err), IG_EINVAL); /* not empty */
    cr_assert_eq(ig_kv_commit(m, s, p, 5, NULL), IG_EINVAL);             /* goes backwards */
    cr_assert_eq(ig_kv_commit(m, s, p, 9, NULL), IG_EINVAL);             /* past the table */
    cr_assert_eq(ig_kv_reserve(m, s, -1, NULL), IG_EINVAL);
    ig_kv_release(m, s);
    cr_assert_eq(ig_kv_match_prefix(m, s, NULL, 3, NULL, NULL), IG_EINVAL);
    cr_assert_eq(ig_kv_match_prefix(m, s, p, 0, NULL, NULL), IG_OK);
    ig_kv_seq_free(s);
    check(m);
    ig_kv_manager_free(m);
}

Test(kv, prefix_caching_off_caches_nothing) {
    ig_kv_manager_config c = ig_kv_manager_config_default();
    c.n_blocks = 8;
    c.block_size = 4;
    c.prefix_caching = false;
    ig_kv_manager *m = NULL;
    cr_assert_eq(ig_kv_manager_new(&c, &m, NULL), IG_OK);
    int32_t p[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
    ig_kv_seq *s = seq_new(m);
    cr_assert_eq(run_prompt(m, s, p, 9), 0);
    ig_kv_release(m, s);
    cr_assert_eq(run_prompt(m, s, p, 9), 0);
    ig_kv_stats st = stats(m);
    cr_assert_eq(st.n_published, 0);
    cr_assert_eq(st.n_lookups, 0);
    ig_kv_seq_free(s);
    cr_assert_eq(stats(m).n_free, 8);
    ig_kv_manager_free(m);
}

/* ---- randomized simulation ---- */

/*
 * A model-free simulation of the engine's use: sequences start (match,
 * reserve, chunked "prefill"), step, get preempted when reserve fails
 * (released, later matched again), and finish at random. The "KV" is a
 * shadow array: each slot holds a hash of the whole token prefix that
 * produced it, written when a sequence computes that position. Every
 * matched prefix and every sequence at release must find its own prefix
 * hashes in its blocks: a wrong reuse or a write into a shared block shows
 * up as a mismatch. ig_kv_check runs after every operation.
 */
#define SIM_SEQS       12
#define SIM_MAX_TOKENS 160

typedef struct {
    ig_kv_seq *s;
    int32_t toks[SIM_MAX_TOKENS];
    uint64_t ph[SIM_MAX_TOKENS]; /* ph[i]: hash of toks[0..i] */
    int32_t n_prompt, n_total;   /* prompt length, prompt + generated */
    bool active;                 /* has a request */
    bool matched;                /* matched since its last release */
} sim_seq;

static uint64_t rng_state;
static uint32_t rnd(uint32_t n) {
    rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
    return (uint32_t)(rng_state >> 33) % n;
}

static uint64_t weak_hash(uint64_t parent, const int32_t *t, int32_t n) {
    return parent * 3 + (uint64_t)(t[0] & 1); /* collides all the time */
}

static void sim_verify(const ig_kv_manager *m, const sim_seq *q, const uint64_t *shadow,
                       int32_t n) {
    int32_t bs = ig_kv_manager_get_config(m)->block_size;
    for (int32_t p = 0; p < n; p++) {
        int32_t b = q->s->blocks[p / bs];
        cr_assert_eq(shadow[(size_t)b * bs + p % bs], q->ph[p],
                     "position %d (block %d) holds another prefix's KV", p, b);
    }
}

static void simulate(ig_evict_policy policy, bool caching, ig_kv_hash_fn hash, uint64_t seed) {
    enum { BS = 4, N_BLOCKS = 48, N_OPS = 4000 };
    ig_kv_manager_config c = ig_kv_manager_config_default();
    c.n_blocks = N_BLOCKS;
    c.block_size = BS;
    c.policy = policy;
    c.prefix_caching = caching;
    c.hash_fn = hash;
    ig_kv_manager *m = NULL;
    ig_error err = {0};
    cr_assert_eq(ig_kv_manager_new(&c, &m, &err), IG_OK, "%s", err.message);
    uint64_t *shadow = calloc((size_t)N_BLOCKS * BS, sizeof *shadow);
    sim_seq *q = calloc(SIM_SEQS, sizeof *q);
    rng_state = seed;
    int32_t base[4][64];
    for (int b = 0; b < 4; b++)
        for (int i = 0; i < 64; i++) base[b][i] = (int32_t)rnd(1000);
    uint64_t tally_lookup = 0, tally_hit = 0, n_preempt = 0, n_hits = 0;
    for (int i = 0; i < SIM_SEQS; i++) q[i].s = seq_new(m);

    for (int op = 0; op < N_OPS; op++) {
        sim_seq *x = &q[rnd(SIM_SEQS)];
        uint32_t kind = rnd(10);
        if (!x->active) {
            /* New request: a shared base prefix, then a few tokens from a tiny vocabulary. */
            int b = (int)rnd(4), l = (int)rnd(49);
            x->n_prompt = l + 1 + (int32_t)rnd(24);
            x->n_total = x->n_prompt + (int32_t)rnd(30);
            for (int i = 0; i < x->n_total; i++) x->toks[i] = i < l ? base[b][i] : (int32_t)rnd(3);
            uint64_t h = 1469598103934665603ull;
            for (int i = 0; i < x->n_total; i++) {
                h = (h ^ (uint64_t)x->toks[i]) * 1099511628211ull;
                x->ph[i] = h;
            }
            x->active = true;
            x->matched = false;
        } else if (kind < 2) {
            /* Finish or cancel. */
            sim_verify(m, x, shadow, x->s->n_tokens);
            ig_kv_release(m, x->s);
            x->active = false;
        } else {
            if (!x->matched) {
                int32_t probe = ig_kv_probe_prefix(m, x->toks, x->n_prompt), n_cached = -1;
                cr_assert_eq(ig_kv_match_prefix(m, x->s, x->toks, x->n_prompt, &n_cached, &err),
                             IG_OK, "%s", err.message);
                cr_assert_eq(n_cached, probe);
                cr_assert_eq(n_cached % BS, 0);
                cr_assert_lt(n_cached, x->n_prompt);
                sim_verify(m, x, shadow, n_cached);
                x->matched = true;
                if (caching) tally_lookup += (uint64_t)x->n_prompt;
                tally_hit += (uint64_t)n_cached;
                n_hits += n_cached > 0;
            }
            int32_t done = x->s->n_tokens;
            /* Prefill in chunks, then one token per step. */
            int32_t chunk = done < x->n_prompt ? 1 + (int32_t)rnd(16) : 1;
            int32_t upto = done + chunk;
            if (upto > x->n_total) upto = x->n_total;
            if (upto == done) {
                ig_kv_release(m, x->s); /* generated everything */
                x->active = false;
            } else {
                ig_kv_stats before = stats(m);
                ig_status st = ig_kv_reserve(m, x->s, upto, &err);
                if (st == IG_EOVERLOADED) {
                    ig_kv_stats after = stats(m);
                    cr_assert_eq(after.n_free, before.n_free);
                    cr_assert_eq(after.n_cached_free, before.n_cached_free);
                    /* Preempt: drop everything, recompute later. */
                    sim_verify(m, x, shadow, x->s->n_tokens);
                    ig_kv_release(m, x->s);
                    x->matched = false;
                    n_preempt++;
                } else {
                    cr_assert_eq(st, IG_OK, "%s", err.message);
                    for (int32_t p = done; p < upto; p++) {
                        int32_t blk = x->s->blocks[p / BS];
                        shadow[(size_t)blk * BS + p % BS] = x->ph[p];
                    }
                    cr_assert_eq(ig_kv_commit(m, x->s, x->toks, upto, &err), IG_OK, "%s",
                                 err.message);
                }
            }
        }
        ig_error cerr = {0};
        cr_assert_eq(ig_kv_check(m, &cerr), IG_OK, "op %d: %s", op, cerr.message);
    }
    ig_kv_stats st = stats(m);
    cr_assert_eq(st.lookup_tokens, tally_lookup);
    cr_assert_eq(st.hit_tokens, tally_hit);
    if (caching) {
        cr_assert_gt(n_hits, 50, "the workload should hit the cache (hits %lu)",
                     (unsigned long)n_hits);
        cr_assert_gt(st.n_evictions, 0);
    } else {
        cr_assert_eq(tally_hit, 0);
        cr_assert_eq(st.n_published, 0);
    }
    cr_assert_gt(n_preempt, 0, "the workload should run out of blocks sometimes");
    for (int i = 0; i < SIM_SEQS; i++) {
        if (q[i].active) sim_verify(m, &q[i], shadow, q[i].s->n_tokens);
        ig_kv_seq_free(q[i].s);
    }
    check(m);
    st = stats(m);
    cr_assert_eq(st.n_used, 0);
    cr_assert_eq(st.n_free + st.n_cached_free, N_BLOCKS);
    cr_assert_eq(st.n_cached_free, st.n_published);
    free(q);
    free(shadow);
    ig_kv_manager_free(m);
}

Test(kv_sim, lru) {
    simulate(IG_EVICT_LRU, true, NULL, 1);
}
Test(kv_sim, lfu) {
    simulate(IG_EVICT_LFU, true, NULL, 2);
}
Test(kv_sim, fifo) {
    simulate(IG_EVICT_FIFO, true, NULL, 3);
}
Test(kv_sim, colliding_keys) {
    simulate(IG_EVICT_LRU, true, weak_hash, 4);
}
Test(kv_sim, caching_off) {
    simulate(IG_EVICT_LRU, false, NULL, 5);
}

/* ---- end to end with a real model ---- */

/* Forward tokens[from, to) of one sequence; logits of every one of them into out. */
static void forward_range(ig_model *m, ig_kv_cache *kv, const int32_t *table, int32_t n_blocks,
                          const int32_t *toks, int32_t from, int32_t to, float *out) {
    int32_t n = to - from, pos[64], seq[64];
    uint8_t want[64];
    cr_assert_leq(n, 64);
    for (int32_t i = 0; i < n; i++) {
        pos[i] = from + i;
        seq[i] = 0;
        want[i] = 1;
    }
    ig_batch_seq bs = {table, n_blocks};
    ig_batch b = {.n_tokens = n,
                  .tokens = toks + from,
                  .pos = pos,
                  .seq = seq,
                  .want_logits = want,
                  .n_seqs = 1,
                  .seqs = &bs};
    ig_error err = {0};
    cr_assert_eq(ig_model_forward(m, &b, kv, NULL, out, &err), IG_OK, "%s", err.message);
}

/*
 * Sequence A computes a 40-token prompt; sequence B shares its first 36
 * tokens, reuses A's two full blocks from the prefix cache (while A still
 * holds them) and computes only positions 32..45, then decodes greedily. Its
 * logits must be bit-identical to computing B's whole prompt from scratch in
 * a cache of its own.
 */
Test(kv_model, prefix_hit_gives_bit_identical_logits) {
    ig_model *model = NULL;
    ig_error err = {0};
    cr_assert_eq(ig_model_load(ig_test_path("models/stories260K.gguf"), &model, &err), IG_OK, "%s",
                 err.message);
    const int32_t nv = model->desc.n_vocab, nl = model->desc.n_layer;
    const int32_t kv_dim = model->desc.n_head_kv * model->desc.head_dim;
    enum { BS = 16, NA = 40, NB = 46, SHARED = 36, DECODE = 4, NMAX = NB + DECODE };
    int32_t ta[NA], tb[NMAX];
    for (int i = 0; i < NA; i++) ta[i] = (int32_t)((i * 37 + 11) % nv);
    for (int i = 0; i < NB; i++) tb[i] = i < SHARED ? ta[i] : (int32_t)((i * 53 + 5) % nv);

    ig_kv_cache *kv = NULL, *ref_kv = NULL;
    cr_assert_eq(ig_kv_cache_new(nl, kv_dim, BS, 16, &kv, &err), IG_OK, "%s", err.message);
    cr_assert_eq(ig_kv_cache_new(nl, kv_dim, BS, 4, &ref_kv, &err), IG_OK, "%s", err.message);
    ig_kv_manager *m = mk(16, BS, IG_EVICT_LRU);
    float *lg = malloc((size_t)64 * nv * sizeof *lg), *ref = malloc((size_t)64 * nv * sizeof *ref);

    /* A: whole prompt, committed. */
    ig_kv_seq *a = seq_new(m), *b = seq_new(m);
    int32_t cached = -1;
    cr_assert_eq(ig_kv_match_prefix(m, a, ta, NA, &cached, &err), IG_OK);
    cr_assert_eq(ig_kv_reserve(m, a, NA, &err), IG_OK);
    forward_range(model, kv, a->blocks, a->n_blocks, ta, 0, NA, lg);
    cr_assert_eq(ig_kv_commit(m, a, ta, NA, &err), IG_OK);

    /* B: hits A's two full blocks, computes the rest. */
    cr_assert_eq(ig_kv_match_prefix(m, b, tb, NB, &cached, &err), IG_OK);
    cr_assert_eq(cached, 32);
    cr_assert_eq(b->blocks[0], a->blocks[0]);
    cr_assert_eq(ig_kv_reserve(m, b, NB, &err), IG_OK);
    forward_range(model, kv, b->blocks, b->n_blocks, tb, cached, NB, lg);
    cr_assert_eq(ig_kv_commit(m, b, tb, NB, &err), IG_OK);
    check(m);

    /* Reference: B's prompt from scratch in its own cache. */
    int32_t ref_table[4] = {0, 1, 2, 3};
    forward_range(model, ref_kv, ref_table, 4, tb, 0, NB, ref);
    for (int i = cached; i < NB; i++)
        cr_assert(memcmp(&lg[(size_t)(i - cached) * nv], &ref[(size_t)i * nv],
                         (size_t)nv * sizeof *lg) == 0,
                  "position %d: logits after a prefix hit differ from computing from scratch", i);

    /* Greedy decode a few tokens both ways. */
    float *last = &lg[(size_t)(NB - 1 - cached) * nv];
    for (int step = 0; step < DECODE; step++) {
        int32_t n = NB + step, best = 0;
        for (int32_t v = 1; v < nv; v++)
            if (last[v] > last[best]) best = v;
        tb[n] = best;
        cr_assert_eq(ig_kv_reserve(m, b, n + 1, &err), IG_OK);
        forward_range(model, kv, b->blocks, b->n_blocks, tb, n, n + 1, lg);
        cr_assert_eq(ig_kv_commit(m, b, tb, n + 1, &err), IG_OK);
        forward_range(model, ref_kv, ref_table, 4, tb, n, n + 1, ref);
        cr_assert(memcmp(lg, ref, (size_t)nv * sizeof *lg) == 0, "decode step %d differs", step);
        last = lg;
    }
    ig_kv_seq_free(a);
    ig_kv_seq_free(b);
    check(m);
    ig_kv_manager_free(m);
    free(lg);
    free(ref);
    ig_kv_cache_free(kv);
    ig_kv_cache_free(ref_kv);
    ig_model_free(model);
}
