/*
 * kv_config.c: the KV manager's configuration helpers — defaults, policy
 * names, and sizing the block pool from a memory budget. Pure functions.
 */
#include <limits.h>
#include <strings.h>

#include "base/error.h"
#include "kv/kv_manager.h"

static const char *const policy_names[IG_EVICT_COUNT_] = {"lru", "lfu", "fifo"};

ig_status ig_evict_policy_parse(const char *name, ig_evict_policy *out, ig_error *err) {
    if (!name) return ig_errorf(err, IG_EINVAL, "eviction policy: no name");
    for (int i = 0; i < IG_EVICT_COUNT_; i++) {
        if (strcasecmp(name, policy_names[i]) == 0) {
            *out = (ig_evict_policy)i;
            return IG_OK;
        }
    }
    return ig_errorf(err, IG_EINVAL, "unknown eviction policy '%s' (expected lru, lfu or fifo)",
                     name);
}

const char *ig_evict_policy_name(ig_evict_policy policy) {
    if ((int)policy < 0 || policy >= IG_EVICT_COUNT_) return "?";
    return policy_names[policy];
}

ig_kv_manager_config ig_kv_manager_config_default(void) {
    return (ig_kv_manager_config){
        .n_blocks = 0,
        .block_size = IG_KV_DEFAULT_BLOCK_SIZE,
        .policy = IG_EVICT_LRU,
        .prefix_caching = true,
        .hash_fn = NULL,
    };
}

size_t ig_kv_block_bytes(int32_t n_layer, int32_t kv_dim, int32_t block_size) {
    if (n_layer <= 0 || kv_dim <= 0 || block_size <= 0) return 0;
    /* K and V, 2 bytes (F16) each value. */
    return (size_t)2 * (size_t)n_layer * (size_t)block_size * (size_t)kv_dim * 2;
}

int32_t ig_kv_blocks_for_bytes(int32_t n_layer, int32_t kv_dim, int32_t block_size, size_t bytes) {
    size_t per = ig_kv_block_bytes(n_layer, kv_dim, block_size);
    if (per == 0) return 0;
    size_t n = bytes / per;
    return n > (size_t)INT32_MAX ? INT32_MAX : (int32_t)n;
}
