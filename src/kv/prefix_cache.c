/*
 * prefix_cache.c: block keys and the index of published blocks.
 *
 * Key layout: block i of a sequence (token ids t[i*bs .. (i+1)*bs)) has
 *   key_i = XXH3_64(bytes of those bs int32 ids, seed = key_{i-1}),  key_{-1} = 0,
 * so a key stands for the whole prefix through block i. The ids are hashed
 * as they lie in memory (host byte order): keys never leave the process.
 *
 * The index is a chained hash table with intrusive links: bucket heads in
 * m->buckets (key & mask), the chain through each block's hash_next. Each
 * block is in it at most once, so it never allocates after start-up.
 * Several blocks may share a key (a collision, or the same key under two
 * different verified parents): lookups walk the chain and accept a block
 * only if its key, its bs token ids and its parent (block id and
 * generation) all match. Checking the parent's identity, not just its key,
 * is what makes a whole matched chain exact even under forced collisions.
 */
#include <string.h>
#include <xxhash.h>

#include "base/error.h"
#include "kv/kv_internal.h"

uint64_t ig__kv_key(const ig_kv_manager *m, uint64_t parent_key, const int32_t *tokens) {
    if (m->cfg.hash_fn) return m->cfg.hash_fn(parent_key, tokens, m->bs);
    return XXH3_64bits_withSeed(tokens, (size_t)m->bs * sizeof *tokens, parent_key);
}

int32_t ig__prefix_find(const ig_kv_manager *m, uint64_t key, const int32_t *tokens, int32_t parent,
                        uint32_t parent_gen, uint64_t *n_collisions) {
    for (int32_t b = m->buckets[key & m->bucket_mask]; b >= 0; b = m->blocks[b].hash_next) {
        const ig__kv_block *blk = &m->blocks[b];
        if (blk->key != key) continue;
        bool same_parent = blk->parent == parent && (parent < 0 || blk->parent_gen == parent_gen);
        if (same_parent && memcmp(&m->block_tokens[(size_t)b * m->bs], tokens,
                                  (size_t)m->bs * sizeof *tokens) == 0)
            return b;
        if (n_collisions) (*n_collisions)++;
    }
    return -1;
}

void ig__prefix_publish(ig_kv_manager *m, int32_t b, uint64_t key, uint64_t parent_key,
                        const int32_t *tokens, int32_t parent, uint32_t parent_gen) {
    ig__kv_block *blk = &m->blocks[b];
    IG_ASSERT(!blk->is_published && blk->state == IG__BLK_USED);
    memcpy(&m->block_tokens[(size_t)b * m->bs], tokens, (size_t)m->bs * sizeof *tokens);
    blk->key = key;
    blk->parent_key = parent_key;
    blk->parent = parent;
    blk->parent_gen = parent_gen;
    blk->is_published = true;
    blk->published_at = ++m->clock;
    blk->hits = 0;
    uint32_t h = (uint32_t)(key & m->bucket_mask);
    blk->hash_next = m->buckets[h];
    m->buckets[h] = b;
    m->n_published++;
    m->n_blocks_published++;
}

void ig__prefix_unpublish(ig_kv_manager *m, int32_t b) {
    ig__kv_block *blk = &m->blocks[b];
    IG_ASSERT(blk->is_published);
    int32_t *link = &m->buckets[blk->key & m->bucket_mask];
    while (*link != b) {
        IG_ASSERT(*link >= 0);
        link = &m->blocks[*link].hash_next;
    }
    *link = blk->hash_next;
    blk->hash_next = -1;
    blk->is_published = false;
    m->n_published--;
}
