/*
 * kv_manager.c: the KV manager's public face — creating the manager and
 * sequence tables, and the match / reserve / commit / release life cycle
 * described in kv_manager.h, plus counters and the invariant checker.
 * State is owned by one thread (the engine thread); nothing is locked.
 */
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "kv/kv_internal.h"

ig_status ig_kv_manager_new(const ig_kv_manager_config *cfg, ig_kv_manager **out, ig_error *err) {
    ig_status st = IG_OK;
    ig_kv_manager *m = NULL;
    if (!cfg || !out) return ig_errorf(err, IG_EINVAL, "kv manager: NULL argument");
    int32_t bs = cfg->block_size == 0 ? IG_KV_DEFAULT_BLOCK_SIZE : cfg->block_size;
    if (cfg->n_blocks <= 0)
        return ig_errorf(err, IG_EINVAL, "kv manager: n_blocks must be > 0 (got %d)",
                         cfg->n_blocks);
    if (bs <= 0)
        return ig_errorf(err, IG_EINVAL, "kv manager: block_size must be > 0 (got %d)", bs);
    if ((int)cfg->policy < 0 || cfg->policy >= IG_EVICT_COUNT_)
        return ig_errorf(err, IG_EINVAL, "kv manager: unknown eviction policy %d",
                         (int)cfg->policy);
    if ((int64_t)cfg->n_blocks * bs > INT32_MAX)
        return ig_errorf(err, IG_EINVAL, "kv manager: %d blocks of %d tokens is too many",
                         cfg->n_blocks, bs);

    m = calloc(1, sizeof *m);
    if (!m) goto oom;
    m->cfg = *cfg;
    m->cfg.block_size = bs;
    m->bs = bs;
    m->n_blocks = cfg->n_blocks;
    m->evict = &ig__evict_policies[cfg->policy];
    uint32_t n_buckets = 16;
    while (n_buckets < (uint32_t)cfg->n_blocks && n_buckets < (1u << 30)) n_buckets <<= 1;
    m->bucket_mask = n_buckets - 1;
    m->blocks = calloc((size_t)m->n_blocks, sizeof *m->blocks);
    m->block_tokens = calloc((size_t)m->n_blocks * bs, sizeof *m->block_tokens);
    m->free_stack = malloc((size_t)m->n_blocks * sizeof *m->free_stack);
    m->heap = malloc((size_t)m->n_blocks * sizeof *m->heap);
    m->buckets = malloc((size_t)n_buckets * sizeof *m->buckets);
    if (!m->blocks || !m->block_tokens || !m->free_stack || !m->heap || !m->buckets) goto oom;
    for (uint32_t i = 0; i < n_buckets; i++) m->buckets[i] = -1;
    for (int32_t b = 0; b < m->n_blocks; b++) {
        m->blocks[b] = (ig__kv_block){.parent = -1, .hash_next = -1, .heap_idx = -1};
        /* Stack top is the end: push in reverse so block 0 is handed out first. */
        m->free_stack[b] = m->n_blocks - 1 - b;
    }
    m->n_free = m->n_blocks;
    *out = m;
    return IG_OK;

oom:
    st = ig_errorf(err, IG_ENOMEM, "kv manager: out of memory for %d blocks", cfg->n_blocks);
    ig_kv_manager_free(m);
    return st;
}

void ig_kv_manager_free(ig_kv_manager *m) {
    if (!m) return;
    IG_ASSERT(m->seqs == NULL && m->n_used == 0);
    free(m->buckets);
    free(m->heap);
    free(m->free_stack);
    free(m->block_tokens);
    free(m->blocks);
    free(m);
}

const ig_kv_manager_config *ig_kv_manager_get_config(const ig_kv_manager *m) {
    return &m->cfg;
}

void ig_kv_stats_get(const ig_kv_manager *m, ig_kv_stats *out) {
    *out = (ig_kv_stats){
        .n_blocks = m->n_blocks,
        .block_size = m->bs,
        .n_free = m->n_free,
        .n_cached_free = m->n_heap,
        .n_used = m->n_used,
        .n_published = m->n_published,
        .usage = (double)m->n_used / (double)m->n_blocks,
        .n_lookups = m->n_lookups,
        .lookup_tokens = m->lookup_tokens,
        .hit_tokens = m->hit_tokens,
        .hit_rate = m->lookup_tokens ? (double)m->hit_tokens / (double)m->lookup_tokens : 0.0,
        .n_evictions = m->n_evictions,
        .n_blocks_published = m->n_blocks_published,
        .n_collisions = m->n_collisions,
    };
}

int32_t ig_kv_n_available(const ig_kv_manager *m) {
    return m->n_free + m->n_heap;
}

/* ---- sequences ---- */

ig_status ig_kv_seq_new(ig_kv_manager *m, ig_kv_seq **out, ig_error *err) {
    if (!m || !out) return ig_errorf(err, IG_EINVAL, "kv seq: NULL argument");
    ig_kv_seq *s = calloc(1, sizeof *s);
    if (!s) return ig_errorf(err, IG_ENOMEM, "kv seq: out of memory");
    s->mgr = m;
    s->next = m->seqs;
    if (m->seqs) m->seqs->prev = s;
    m->seqs = s;
    *out = s;
    return IG_OK;
}

void ig_kv_seq_free(ig_kv_seq *s) {
    if (!s) return;
    ig_kv_manager *m = s->mgr;
    ig_kv_release(m, s);
    if (s->prev)
        s->prev->next = s->next;
    else
        m->seqs = s->next;
    if (s->next) s->next->prev = s->prev;
    free(s->blocks);
    free(s->keys);
    free(s->canon);
    free(s->canon_gen);
    free(s);
}

/* Make room for n blocks in the table's arrays. Nothing changes on failure. */
static ig_status seq_grow(ig_kv_seq *s, int32_t n, ig_error *err) {
    if (n <= s->cap_blocks) return IG_OK;
    int32_t cap = s->cap_blocks ? s->cap_blocks : 8;
    while (cap < n) cap = cap > INT32_MAX / 2 ? n : cap * 2;
    /* Each realloc that succeeds is kept even if a later one fails: the
     * arrays are only larger, and cap_blocks moves only when all succeed. */
    int32_t *blocks = realloc(s->blocks, (size_t)cap * sizeof *blocks);
    if (!blocks) goto oom;
    s->blocks = blocks;
    uint64_t *keys = realloc(s->keys, (size_t)cap * sizeof *keys);
    if (!keys) goto oom;
    s->keys = keys;
    int32_t *canon = realloc(s->canon, (size_t)cap * sizeof *canon);
    if (!canon) goto oom;
    s->canon = canon;
    uint32_t *canon_gen = realloc(s->canon_gen, (size_t)cap * sizeof *canon_gen);
    if (!canon_gen) goto oom;
    s->canon_gen = canon_gen;
    s->cap_blocks = cap;
    return IG_OK;

oom:
    return ig_errorf(err, IG_ENOMEM, "kv seq: out of memory for %d blocks", cap);
}

/*
 * Walk the index along tokens' full blocks (at most max_blocks), writing the
 * matched blocks and keys when the arrays are given. Returns the count.
 */
static int32_t walk_prefix(const ig_kv_manager *m, const int32_t *tokens, int32_t max_blocks,
                           int32_t *blocks, uint64_t *keys, uint64_t *n_collisions) {
    uint64_t parent_key = 0;
    int32_t parent = -1;
    uint32_t parent_gen = 0;
    int32_t k = 0;
    for (; k < max_blocks; k++) {
        const int32_t *t = tokens + (size_t)k * m->bs;
        uint64_t key = ig__kv_key(m, parent_key, t);
        int32_t b = ig__prefix_find(m, key, t, parent, parent_gen, n_collisions);
        if (b < 0) break;
        if (blocks) blocks[k] = b;
        if (keys) keys[k] = key;
        parent_key = key;
        parent = b;
        parent_gen = m->blocks[b].gen;
    }
    return k;
}

/* Full blocks a prompt of n tokens may take from the cache (last token recomputed). */
static int32_t max_match_blocks(const ig_kv_manager *m, int32_t n_tokens) {
    return n_tokens <= 1 ? 0 : (n_tokens - 1) / m->bs;
}

int32_t ig_kv_probe_prefix(const ig_kv_manager *m, const int32_t *tokens, int32_t n_tokens) {
    if (!m->cfg.prefix_caching || !tokens || n_tokens <= 1) return 0;
    return walk_prefix(m, tokens, max_match_blocks(m, n_tokens), NULL, NULL, NULL) * m->bs;
}

ig_status ig_kv_match_prefix(ig_kv_manager *m, ig_kv_seq *s, const int32_t *tokens,
                             int32_t n_tokens, int32_t *n_cached, ig_error *err) {
    if (!m || !s || s->mgr != m)
        return ig_errorf(err, IG_EINVAL, "kv match: sequence does not belong to this manager");
    if (s->n_blocks != 0 || s->n_tokens != 0)
        return ig_errorf(err, IG_EINVAL, "kv match: sequence already holds %d blocks", s->n_blocks);
    if (n_tokens < 0 || (n_tokens > 0 && !tokens))
        return ig_errorf(err, IG_EINVAL, "kv match: bad prompt (%d tokens)", n_tokens);
    s->n_cached_tokens = 0;
    if (n_cached) *n_cached = 0;
    if (!m->cfg.prefix_caching) return IG_OK;

    int32_t max_k = max_match_blocks(m, n_tokens);
    ig_status st = seq_grow(s, max_k, err);
    if (st != IG_OK) return st;
    int32_t k = walk_prefix(m, tokens, max_k, s->blocks, s->keys, &m->n_collisions);
    for (int32_t i = 0; i < k; i++) {
        int32_t b = s->blocks[i];
        ig__pool_ref(m, b);
        m->blocks[b].hits++;
        s->canon[i] = b;
        s->canon_gen[i] = m->blocks[b].gen;
    }
    s->n_blocks = s->n_keyed = k;
    s->n_tokens = s->n_cached_tokens = k * m->bs;
    m->n_lookups++;
    m->lookup_tokens += (uint64_t)n_tokens;
    m->hit_tokens += (uint64_t)s->n_tokens;
    if (n_cached) *n_cached = s->n_tokens;
    return IG_OK;
}

int32_t ig_kv_blocks_needed(const ig_kv_manager *m, const ig_kv_seq *s, int32_t n_tokens_total) {
    if (n_tokens_total <= 0) return 0;
    int32_t want = (int32_t)(((int64_t)n_tokens_total + m->bs - 1) / m->bs);
    return want > s->n_blocks ? want - s->n_blocks : 0;
}

ig_status ig_kv_reserve(ig_kv_manager *m, ig_kv_seq *s, int32_t n_tokens_total, ig_error *err) {
    if (!m || !s || s->mgr != m)
        return ig_errorf(err, IG_EINVAL, "kv reserve: sequence does not belong to this manager");
    if (n_tokens_total < 0)
        return ig_errorf(err, IG_EINVAL, "kv reserve: negative length %d", n_tokens_total);
    int32_t need = ig_kv_blocks_needed(m, s, n_tokens_total);
    if (need == 0) return IG_OK;
    if (need > m->n_free + m->n_heap)
        return ig_errorf(err, IG_EOVERLOADED,
                         "kv reserve: %d blocks needed, %d free and %d evictable", need, m->n_free,
                         m->n_heap);
    ig_status st = seq_grow(s, s->n_blocks + need, err);
    if (st != IG_OK) return st;
    for (int32_t i = 0; i < need; i++) {
        int32_t b = ig__pool_take(m);
        IG_ASSERT(b >= 0); /* counted above */
        s->blocks[s->n_blocks++] = b;
    }
    return IG_OK;
}

ig_status ig_kv_commit(ig_kv_manager *m, ig_kv_seq *s, const int32_t *tokens, int32_t n_computed,
                       ig_error *err) {
    if (!m || !s || s->mgr != m)
        return ig_errorf(err, IG_EINVAL, "kv commit: sequence does not belong to this manager");
    if (n_computed < s->n_tokens || (int64_t)n_computed > (int64_t)s->n_blocks * m->bs)
        return ig_errorf(err, IG_EINVAL,
                         "kv commit: %d tokens computed, but %d were valid and the table holds %d",
                         n_computed, s->n_tokens, s->n_blocks * m->bs);
    if (n_computed > 0 && !tokens) return ig_errorf(err, IG_EINVAL, "kv commit: no tokens");

    /* The blocks just written must be private: shared blocks are immutable. */
    int32_t first = s->n_tokens / m->bs, end = (n_computed + m->bs - 1) / m->bs;
    for (int32_t i = first; i < end; i++) {
        const ig__kv_block *blk = &m->blocks[s->blocks[i]];
        IG_ASSERT(blk->refcount == 1 && !blk->is_published);
    }

    int32_t n_full = n_computed / m->bs;
    for (int32_t i = s->n_keyed; i < n_full; i++) {
        const int32_t *t = tokens + (size_t)i * m->bs;
        uint64_t parent_key = i > 0 ? s->keys[i - 1] : 0;
        s->keys[i] = ig__kv_key(m, parent_key, t);
        s->canon[i] = -1;
        s->canon_gen[i] = 0;
        if (!m->cfg.prefix_caching) continue;
        int32_t parent = i > 0 ? s->canon[i - 1] : -1;
        uint32_t parent_gen = i > 0 ? s->canon_gen[i - 1] : 0;
        if (i > 0 && parent < 0) continue; /* the chain is already broken */
        int32_t b = ig__prefix_find(m, s->keys[i], t, parent, parent_gen, NULL);
        if (b < 0) {
            /* First of its kind: publish ours. */
            b = s->blocks[i];
            ig__prefix_publish(m, b, s->keys[i], parent_key, t, parent, parent_gen);
        }
        /* Else an identical block (same tokens, same parent content) is
         * already published: it stays, ours stays private. */
        s->canon[i] = b;
        s->canon_gen[i] = m->blocks[b].gen;
    }
    s->n_keyed = n_full > s->n_keyed ? n_full : s->n_keyed;
    s->n_tokens = n_computed;
    return IG_OK;
}

void ig_kv_release(ig_kv_manager *m, ig_kv_seq *s) {
    IG_ASSERT(m && s && s->mgr == m);
    /* Last block first: deeper blocks get older release stamps, so LRU
     * evicts a chain from its tail and keeps its reusable head longest. */
    for (int32_t i = s->n_blocks - 1; i >= 0; i--) ig__pool_unref(m, s->blocks[i]);
    s->n_blocks = 0;
    s->n_tokens = 0;
    s->n_keyed = 0;
}

/* ---- invariant checker ---- */

ig_status ig_kv_check(const ig_kv_manager *m, ig_error *err) {
    ig_status st = IG_OK;
    int32_t *refs = NULL;
    uint8_t *seen = NULL;
    if (!m) return ig_errorf(err, IG_EINVAL, "kv check: no manager");
    refs = calloc((size_t)m->n_blocks, sizeof *refs);
    seen = calloc((size_t)m->n_blocks, 1); /* bit 0: free list, 1: heap, 2: index */
    if (!refs || !seen) {
        st = ig_errorf(err, IG_ENOMEM, "kv check: out of memory");
        goto done;
    }
#define FAIL(...)                                                                                  \
    do {                                                                                           \
        st = ig_errorf(err, IG_EINTERNAL, __VA_ARGS__);                                            \
        goto done;                                                                                 \
    } while (0)

    if (m->n_free < 0 || m->n_heap < 0 || m->n_free + m->n_heap + m->n_used != m->n_blocks)
        FAIL("counts: %d free + %d evictable + %d used != %d blocks", m->n_free, m->n_heap,
             m->n_used, m->n_blocks);
    for (int32_t i = 0; i < m->n_free; i++) {
        int32_t b = m->free_stack[i];
        if (b < 0 || b >= m->n_blocks) FAIL("free list holds bad block %d", b);
        if (seen[b] & 1) FAIL("block %d twice on the free list", b);
        seen[b] |= 1;
    }
    for (int32_t i = 0; i < m->n_heap; i++) {
        int32_t b = m->heap[i];
        if (b < 0 || b >= m->n_blocks) FAIL("evict heap holds bad block %d", b);
        if (seen[b] & 2) FAIL("block %d twice in the evict heap", b);
        seen[b] |= 2;
    }
    if ((st = ig__evict_check(m, err)) != IG_OK) goto done;

    /* Index: every entry is a published block in the right bucket with its key. */
    int32_t n_indexed = 0;
    for (uint32_t h = 0; h <= m->bucket_mask; h++) {
        for (int32_t b = m->buckets[h]; b >= 0; b = m->blocks[b].hash_next) {
            if (b >= m->n_blocks) FAIL("index bucket %u holds bad block %d", h, b);
            const ig__kv_block *blk = &m->blocks[b];
            if (seen[b] & 4) FAIL("block %d twice in the index", b);
            seen[b] |= 4;
            if (!blk->is_published) FAIL("index holds unpublished block %d", b);
            if ((blk->key & m->bucket_mask) != h) FAIL("block %d in the wrong bucket", b);
            uint64_t key = ig__kv_key(m, blk->parent_key, &m->block_tokens[(size_t)b * m->bs]);
            if (key != blk->key) FAIL("block %d: stored key does not match its tokens", b);
            if (++n_indexed > m->n_blocks) FAIL("index has a cycle");
        }
    }
    if (n_indexed != m->n_published)
        FAIL("index holds %d blocks, n_published says %d", n_indexed, m->n_published);

    /* Tables: count references, check each table's shape. */
    for (const ig_kv_seq *s = m->seqs; s; s = s->next) {
        if (s->mgr != m) FAIL("a table in the list belongs to another manager");
        if (s->n_blocks < 0 || s->n_blocks > s->cap_blocks || s->n_tokens < 0 ||
            (int64_t)s->n_tokens > (int64_t)s->n_blocks * m->bs)
            FAIL("table with %d blocks (cap %d) claims %d tokens", s->n_blocks, s->cap_blocks,
                 s->n_tokens);
        if (s->n_keyed != s->n_tokens / m->bs)
            FAIL("table keyed %d blocks for %d tokens", s->n_keyed, s->n_tokens);
        for (int32_t i = 0; i < s->n_blocks; i++) {
            int32_t b = s->blocks[i];
            if (b < 0 || b >= m->n_blocks) FAIL("table holds bad block %d", b);
            refs[b]++;
            const ig__kv_block *blk = &m->blocks[b];
            if (i >= s->n_keyed && (blk->refcount != 1 || blk->is_published))
                FAIL("block %d (table slot %d, not full) is shared or published", b, i);
            if (i < s->n_keyed && blk->is_published && s->canon[i] == b && blk->key != s->keys[i])
                FAIL("block %d: published key differs from the table's key", b);
        }
    }

    for (int32_t b = 0; b < m->n_blocks; b++) {
        const ig__kv_block *blk = &m->blocks[b];
        uint8_t where = seen[b] & 3;
        if (blk->refcount != refs[b])
            FAIL("block %d: refcount %d but %d tables hold it", b, blk->refcount, refs[b]);
        if (blk->is_published != ((seen[b] & 4) != 0))
            FAIL("block %d: published flag disagrees with the index", b);
        switch (blk->state) {
        case IG__BLK_FREE:
            if (where != 1 || blk->refcount != 0 || blk->is_published)
                FAIL("free block %d: on lists %u, refcount %d, published %d", b, where,
                     blk->refcount, blk->is_published);
            break;
        case IG__BLK_EVICTABLE:
            if (where != 2 || blk->refcount != 0 || !blk->is_published)
                FAIL("evictable block %d: on lists %u, refcount %d, published %d", b, where,
                     blk->refcount, blk->is_published);
            break;
        case IG__BLK_USED:
            if (where != 0 || blk->refcount <= 0)
                FAIL("used block %d: on lists %u, refcount %d", b, where, blk->refcount);
            if (blk->refcount > 1 && !blk->is_published)
                FAIL("block %d shared by %d tables but not published", b, blk->refcount);
            break;
        default:
            FAIL("block %d in unknown state %u", b, blk->state);
        }
        if (blk->state != IG__BLK_EVICTABLE && blk->heap_idx != -1)
            FAIL("block %d not evictable but has heap_idx %d", b, blk->heap_idx);
    }
#undef FAIL

done:
    free(seen);
    free(refs);
    return st;
}
