/*
 * kv_manager.h: the paged KV cache's bookkeeping — which block is free, which
 * sequence holds which block, reference counts, and the prefix cache that
 * lets a new sequence reuse the KV of a prompt prefix computed before.
 *
 * Model of use
 * ------------
 * The KV *data* lives in an ig_kv_cache (src/model/model.h): n_blocks blocks
 * of block_size token slots for every layer. This module owns only the
 * *metadata* about those blocks; it never touches K/V values and does not
 * depend on the model. Make one ig_kv_manager per ig_kv_cache with the same
 * n_blocks and block_size; block ids it hands out index that cache.
 *
 * A sequence (one request) owns an ig_kv_seq: its block table. The engine
 * drives it through this life cycle:
 *
 *   ig_kv_seq_new                  empty table
 *   ig_kv_match_prefix(prompt)     table = longest cached run of full prompt
 *                                  blocks; seq->n_tokens = tokens whose KV is
 *                                  already there (a multiple of block_size,
 *                                  never the whole prompt)
 *   repeat:
 *     ig_kv_reserve(n_total)       table covers positions [0, n_total)
 *                                  (IG_EOVERLOADED: preempt someone, retry)
 *     forward pass over positions [seq->n_tokens, n_total) with
 *       ig_batch_seq{seq->blocks, seq->n_blocks}
 *     ig_kv_commit(tokens, n_total) KV of [0, n_total) is valid; newly full
 *                                  blocks are published in the prefix cache
 *   ig_kv_release                  references dropped; table empty again (the
 *                                  seq may be matched again, e.g. to recompute
 *                                  after preemption)
 *   ig_kv_seq_free                 releases (if needed) and frees the table
 *
 * Block states. Every block is in exactly one of:
 *   free       no references, no cached content; on the free list.
 *   used       refcount > 0: held by that many sequence tables.
 *   evictable  refcount 0 but published in the prefix cache: its KV can still
 *              be reused by a later match; ig_kv_reserve takes it when the free
 *              list is empty, in the order of the eviction policy, and then
 *              removes it from the prefix cache.
 *
 * Sharing without copy-on-write. Only *full* blocks are ever published, and a
 * published block is immutable (nobody writes its slots again until it is
 * evicted and reallocated). A sequence writes only into blocks past its
 * matched prefix, which it allocated itself: the partially filled last block
 * of every table is private (refcount 1, unpublished). Shared blocks
 * (refcount > 1) are therefore always full, immutable prefix blocks. Both
 * facts are asserted.
 *
 * Prefix cache keys. Block i of a token sequence has the key
 *   key_i = H(key_{i-1}, tokens[i*bs .. (i+1)*bs))     key_{-1} = 0
 * with H = XXH3-64 of the block's int32 token ids seeded by the parent key
 * (or the hook in the config). A key identifies the whole prefix up to and
 * including the block. Keys are only an index: a hit is accepted only when
 * the stored block's token ids equal the block's tokens AND its recorded
 * parent is exactly the block matched just before (block id and generation),
 * so a hash collision can shorten a match but never return wrong KV.
 *
 * Threads: none of this is synchronised. One thread (the engine thread) owns
 * a manager and all of its sequences.
 *
 * Errors: functions returning ig_status leave the manager and the sequence
 * unchanged on failure (all-or-nothing) unless said otherwise. Misuse by our
 * own code (a broken invariant) trips IG_ASSERT.
 */
#ifndef IG_KV_KV_MANAGER_H
#define IG_KV_KV_MANAGER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ignis.h"

#define IG_KV_DEFAULT_BLOCK_SIZE 16

/* Which evictable block ig_kv_reserve takes first when the free list is empty. */
typedef enum ig_evict_policy {
    IG_EVICT_LRU = 0, /* least recently released first (default) */
    IG_EVICT_LFU,     /* fewest prefix hits first; ties: least recently released */
    IG_EVICT_FIFO,    /* earliest published first */
    IG_EVICT_COUNT_
} ig_evict_policy;

/* Parse "lru", "lfu" or "fifo" (case-insensitive). Errors: IG_EINVAL for other names. */
ig_status ig_evict_policy_parse(const char *name, ig_evict_policy *out, ig_error *err);

/* "lru", "lfu", "fifo"; "?" for a value out of range. Never NULL. */
const char *ig_evict_policy_name(ig_evict_policy policy);

/*
 * Block key hook: key of a block from its parent's key and its token ids.
 * Optional (NULL: XXH3-64 seeded by parent). Tests use it to force collisions.
 */
typedef uint64_t (*ig_kv_hash_fn)(uint64_t parent_key, const int32_t *tokens, int32_t n_tokens);

typedef struct ig_kv_manager_config {
    int32_t n_blocks;       /* blocks in the pool (> 0) */
    int32_t block_size;     /* token slots per block; 0: IG_KV_DEFAULT_BLOCK_SIZE */
    ig_evict_policy policy; /* eviction policy for cached free blocks */
    bool prefix_caching;    /* publish full blocks and match prompts against them */
    ig_kv_hash_fn hash_fn;  /* optional key hook; NULL: XXH3-64 */
} ig_kv_manager_config;

/* The defaults: n_blocks 0 (caller must set), block_size 16, LRU, prefix caching on. */
ig_kv_manager_config ig_kv_manager_config_default(void);

/*
 * Bytes one block takes in an ig_kv_cache: K and V, F16, every layer:
 * 2 * n_layer * block_size * kv_dim * 2. 0 if any argument is <= 0.
 */
size_t ig_kv_block_bytes(int32_t n_layer, int32_t kv_dim, int32_t block_size);

/*
 * How many whole blocks fit in `bytes` (capped at INT32_MAX). 0 if any
 * argument is <= 0 or the budget is smaller than one block.
 */
int32_t ig_kv_blocks_for_bytes(int32_t n_layer, int32_t kv_dim, int32_t block_size, size_t bytes);

/* The manager: opaque. */
typedef struct ig_kv_manager ig_kv_manager;

/*
 * One sequence's block table. Fields are READ-ONLY for callers: only this
 * module changes them. Feed a forward pass with
 * ig_batch_seq{seq->blocks, seq->n_blocks}; the pointer `blocks` may change
 * after ig_kv_reserve (it grows), so take it afresh each step.
 */
typedef struct ig_kv_seq {
    int32_t *blocks;  /* [n_blocks] block ids; blocks[i] holds positions [i*bs, (i+1)*bs) */
    int32_t n_blocks; /* blocks held (each with one reference from this table) */
    int32_t n_tokens; /* positions [0, n_tokens) hold valid KV (committed or matched) */
    int32_t
        n_cached_tokens; /* tokens the last ig_kv_match_prefix found cached (kept after release) */
    /* internal */
    int32_t cap_blocks;  /* allocated length of blocks/keys/canon/canon_gen */
    int32_t n_keyed;     /* full blocks whose key is in keys[] (= n_tokens / bs after commit) */
    uint64_t *keys;      /* [n_keyed] chained key of each full block */
    int32_t *canon;      /* [n_keyed] published block holding this block's content, or -1 */
    uint32_t *canon_gen; /* [n_keyed] generation of canon[i] when recorded */
    ig_kv_manager *mgr;  /* owner */
    struct ig_kv_seq *prev, *next; /* the manager's list of live tables */
} ig_kv_seq;

/* Counters and gauges (a snapshot; see ig_kv_stats_get). */
typedef struct ig_kv_stats {
    int32_t n_blocks;            /* pool size */
    int32_t block_size;          /* token slots per block */
    int32_t n_free;              /* blocks on the free list (no content) */
    int32_t n_cached_free;       /* evictable blocks: refcount 0, content cached */
    int32_t n_used;              /* blocks with refcount > 0 */
    int32_t n_published;         /* blocks currently in the prefix index (used or evictable) */
    double usage;                /* n_used / n_blocks, in [0, 1] */
    uint64_t n_lookups;          /* ig_kv_match_prefix calls (with prefix caching on) */
    uint64_t lookup_tokens;      /* prompt tokens looked up */
    uint64_t hit_tokens;         /* of those, tokens served from the cache */
    double hit_rate;             /* hit_tokens / lookup_tokens; 0 when nothing looked up */
    uint64_t n_evictions;        /* cached blocks reclaimed by ig_kv_reserve */
    uint64_t n_blocks_published; /* blocks ever published in the prefix index */
    uint64_t n_collisions;       /* key hits whose tokens or parent did not verify */
} ig_kv_stats;

/*
 * Create a manager for cfg->n_blocks blocks, all free. Borrows cfg.
 * Errors: IG_EINVAL (n_blocks <= 0, block_size < 0, bad policy), IG_ENOMEM.
 * On failure *out is untouched.
 */
ig_status ig_kv_manager_new(const ig_kv_manager_config *cfg, ig_kv_manager **out, ig_error *err);

/*
 * Free the manager. Every ig_kv_seq made from it must have been freed first
 * (asserted: no block may still be used). NULL is a no-op.
 */
void ig_kv_manager_free(ig_kv_manager *mgr);

/* The configuration in effect (block_size resolved). */
const ig_kv_manager_config *ig_kv_manager_get_config(const ig_kv_manager *mgr);

/* Fill *out with the current counters. */
void ig_kv_stats_get(const ig_kv_manager *mgr, ig_kv_stats *out);

/* Blocks reserve can still take: free + evictable. */
int32_t ig_kv_n_available(const ig_kv_manager *mgr);

/*
 * A new, empty sequence table. The caller owns it and frees it with
 * ig_kv_seq_free before freeing the manager. Errors: IG_ENOMEM.
 */
ig_status ig_kv_seq_new(ig_kv_manager *mgr, ig_kv_seq **out, ig_error *err);

/* Release the sequence's blocks (as ig_kv_release) and free it. NULL is a no-op. */
void ig_kv_seq_free(ig_kv_seq *seq);

/*
 * Prefix lookup for a new sequence. `seq` must be empty (fresh, or after
 * ig_kv_release): else IG_EINVAL. Finds the longest run of full blocks
 * 0..k-1 of tokens[0, n_tokens) that is in the prefix cache, capped so that
 * at least the last prompt token is recomputed: k*bs <= n_tokens - 1. Takes
 * one reference on each matched block (an evictable block becomes used and
 * leaves the eviction index) and appends them to the table.
 * After: seq->n_blocks = k, seq->n_tokens = seq->n_cached_tokens = k*bs,
 * *n_cached (may be NULL) = k*bs. With prefix caching off: k = 0, nothing
 * counted. Counts n_lookups, lookup_tokens += n_tokens, hit_tokens += k*bs.
 * Errors: IG_EINVAL (seq not empty, n_tokens < 0, tokens NULL with n > 0),
 * IG_ENOMEM (table growth; nothing taken).
 */
ig_status ig_kv_match_prefix(ig_kv_manager *mgr, ig_kv_seq *seq, const int32_t *tokens,
                             int32_t n_tokens, int32_t *n_cached, ig_error *err);

/*
 * What ig_kv_match_prefix would return for these tokens, without taking
 * references, changing any order or counting anything. 0 with caching off.
 */
int32_t ig_kv_probe_prefix(const ig_kv_manager *mgr, const int32_t *tokens, int32_t n_tokens);

/* Blocks ig_kv_reserve(seq, n_tokens_total) would need to take (0 if covered). */
int32_t ig_kv_blocks_needed(const ig_kv_manager *mgr, const ig_kv_seq *seq, int32_t n_tokens_total);

/*
 * Grow seq's table to cover positions [0, n_tokens_total): new blocks come
 * from the free list, else from the evictable blocks in policy order (each
 * evicted block leaves the prefix index; n_evictions counts it). New blocks
 * are private (refcount 1, unpublished). A table that already covers
 * n_tokens_total is left as it is (never shrinks).
 * Errors: IG_EOVERLOADED when free + evictable blocks are too few: nothing
 * is allocated or evicted, so the caller may preempt another sequence and
 * retry; IG_EINVAL (n_tokens_total < 0); IG_ENOMEM. All-or-nothing.
 */
ig_status ig_kv_reserve(ig_kv_manager *mgr, ig_kv_seq *seq, int32_t n_tokens_total, ig_error *err);

/*
 * Record that KV of positions [0, n_computed) is now valid; tokens[0,
 * n_computed) are the sequence's token ids (prompt then generated). Every
 * block that became full gets its chained key and, with prefix caching on,
 * is published in the prefix index. If an identical block (same tokens,
 * same verified parent) is already published, the existing one stays
 * published and ours stays private (it is freed on release); the chain of
 * later blocks then continues from the existing one. Blocks remain owned by
 * the seq either way. Generated tokens count like prompt tokens, so a later
 * turn whose prompt repeats this turn's prompt and answer hits them.
 * After: seq->n_tokens = n_computed.
 * Errors: IG_EINVAL when n_computed < seq->n_tokens, n_computed exceeds the
 * table (n_blocks * bs), or tokens is NULL with n_computed > 0.
 */
ig_status ig_kv_commit(ig_kv_manager *mgr, ig_kv_seq *seq, const int32_t *tokens,
                       int32_t n_computed, ig_error *err);

/*
 * Drop the sequence's references, last block first. A block whose refcount
 * reaches 0 goes to the free list if it is unpublished, else into the
 * eviction index (stamped with the release time for LRU; released last
 * block first, so the deepest blocks of a chain are the least recent and are
 * evicted before their parents). After: the seq is empty (n_blocks = 0,
 * n_tokens = 0) and may be matched/reserved again. Never fails.
 */
void ig_kv_release(ig_kv_manager *mgr, ig_kv_seq *seq);

/*
 * Invariant checker for tests: every block in exactly one state; free-list,
 * evictable and used counts consistent; each refcount equals the number of
 * live tables holding the block; every index entry points to a published
 * block whose stored key matches; published blocks are full and unchanged;
 * each table's partial last block is private. Returns IG_OK or IG_EINTERNAL
 * with a message naming the first broken invariant. O(n_blocks + tables).
 */
ig_status ig_kv_check(const ig_kv_manager *mgr, ig_error *err);

#endif
