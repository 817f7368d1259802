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
