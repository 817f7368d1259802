/*
 * kv_internal.h: the KV manager's private state, shared by the files of
 * src/kv (block_pool.c, prefix_cache.c, evict.c, kv_manager.c). Not for
 * other modules: they use kv_manager.h.
 *
 * Invariants (checked by ig_kv_check):
 * - each block is in exactly one state: FREE (on free_stack), EVICTABLE (in
 *   the eviction heap, refcount 0, published) or USED (refcount > 0);
 * - a published block is full, in the index exactly once, and never written
 *   until it is unpublished (eviction);
 * - gen changes whenever a block is handed out again, so (id, gen) names one
 *   content for the lifetime of the manager.
 */
#ifndef IG_KV_KV_INTERNAL_H
#define IG_KV_KV_INTERNAL_H

#include "kv/kv_manager.h"

enum { IG__BLK_FREE = 0, IG__BLK_USED, IG__BLK_EVICTABLE };

typedef struct ig__kv_block {
    int32_t refcount;      /* tables holding the block */
    uint8_t state;         /* IG__BLK_* */
    bool is_published;     /* in the prefix index */
    uint32_t gen;          /* bumped every time the block is handed out */
    uint64_t key;          /* chained key (valid when published) */
    uint64_t parent_key;   /* key of the parent block (0 for a first block) */
    int32_t parent;        /* published block holding the parent content, -1: none */
    uint32_t parent_gen;   /* gen of parent when this block was published */
    int32_t hash_next;     /* next block in the same index bucket, -1: end */
    int32_t heap_idx;      /* position in the eviction heap, -1: not there */
    uint64_t last_use;     /* clock stamp of the release that made it evictable */
    uint64_t published_at; /* clock stamp of publication (FIFO) */
    uint64_t hits;         /* prefix-match hits since publication (LFU) */
} ig__kv_block;

/* An eviction policy: which of two evictable blocks goes first. */
typedef struct ig__evict_ops {
    const char *name;
    bool (*before)(const ig__kv_block *a, const ig__kv_block *b); /* a evicted before b */
} ig__evict_ops;

extern const ig__evict_ops ig__evict_policies[IG_EVICT_COUNT_];

struct ig_kv_manager {
    ig_kv_manager_config cfg;   /* block_size resolved */
    int32_t bs;                 /* block size */
    int32_t n_blocks;           /* pool size */
    ig__kv_block *blocks;       /* [n_blocks] */
    int32_t *block_tokens;      /* [n_blocks * bs] token ids of published blocks */
    int32_t *free_stack;        /* [n_blocks] free blocks; top at n_free - 1 */
    int32_t n_free;             /* blocks on free_stack */
    int32_t *heap;              /* [n_blocks] evictable blocks, min-heap by policy */
    int32_t n_heap;             /* evictable blocks */
    const ig__evict_ops *evict; /* policy */
    int32_t *buckets;           /* [bucket_mask + 1] index heads, -1: empty */
    uint32_t bucket_mask;       /* buckets - 1 (a power of two minus one) */
    int32_t n_used;             /* blocks with refcount > 0 */
    int32_t n_published;        /* blocks in the index */
    uint64_t clock;             /* stamps for LRU/FIFO; increases by one per stamp */
    ig_kv_seq *seqs;            /* live tables (doubly linked) */
    /* counters */
    uint64_t n_lookups, lookup_tokens, hit_tokens;
    uint64_t n_evictions, n_blocks_published, n_collisions;
};

/* ---- evict.c: the eviction heap ---- */
void ig__evict_push(ig_kv_manager *m, int32_t b);
void ig__evict_remove(ig_kv_manager *m, int32_t b);
int32_t ig__evict_pop(ig_kv_manager *m);
/* IG_OK or IG_EINTERNAL if heap positions or order are broken. */
ig_status ig__evict_check(const ig_kv_manager *m, ig_error *err);

/* ---- prefix_cache.c: keys and the index ---- */
uint64_t ig__kv_key(const ig_kv_manager *m, uint64_t parent_key, const int32_t *tokens);
/*
 * The published block with this key, these bs tokens and this parent (id and
 * gen), or -1. Key matches that fail verification are added to *n_collisions
 * when it is not NULL.
 */
int32_t ig__prefix_find(const ig_kv_manager *m, uint64_t key, const int32_t *tokens, int32_t parent,
                        uint32_t parent_gen, uint64_t *n_collisions);
void ig__prefix_publish(ig_kv_manager *m, int32_t b, uint64_t key, uint64_t parent_key,
                        const int32_t *tokens, int32_t parent, uint32_t parent_gen);
void ig__prefix_unpublish(ig_kv_manager *m, int32_t b);

/* ---- block_pool.c: handing blocks out and taking them back ---- */
/* A private block (refcount 1): from the free list, else evicted. -1 if none. */
int32_t ig__pool_take(ig_kv_manager *m);
/* One more reference on a published block (an evictable one becomes used). */
void ig__pool_ref(ig_kv_manager *m, int32_t b);
/* One reference less; at 0 the block becomes free or evictable. */
void ig__pool_unref(ig_kv_manager *m, int32_t b);

#endif
