/*
 * evict.c: the eviction policies and the heap of evictable blocks.
 *
 * Evictable blocks (refcount 0, content still published) sit in one binary
 * min-heap ordered by the policy's `before` relation, so taking a victim,
 * inserting a released block and pulling a block out on a prefix hit are all
 * O(log n). Each block remembers its heap position (heap_idx).
 *
 * Policies (a table, one row each):
 *   lru   smallest last_use (release stamp) first;
 *   lfu   fewest hits first, ties by smallest last_use;
 *   fifo  smallest published_at (publication stamp) first.
 * Stamps come from one manager clock that advances by one per stamp, so no
 * two blocks tie on a stamp and the order is total and deterministic.
 */
#include "base/error.h"
#include "kv/kv_internal.h"

static bool lru_before(const ig__kv_block *a, const ig__kv_block *b) {
    return a->last_use < b->last_use;
}

static bool lfu_before(const ig__kv_block *a, const ig__kv_block *b) {
    if (a->hits != b->hits) return a->hits < b->hits;
    return a->last_use < b->last_use;
}

static bool fifo_before(const ig__kv_block *a, const ig__kv_block *b) {
    return a->published_at < b->published_at;
}

const ig__evict_ops ig__evict_policies[IG_EVICT_COUNT_] = {
    [IG_EVICT_LRU] = {"lru", lru_before},
    [IG_EVICT_LFU] = {"lfu", lfu_before},
    [IG_EVICT_FIFO] = {"fifo", fifo_before},
};

static bool less(const ig_kv_manager *m, int32_t i, int32_t j) {
    return m->evict->before(&m->blocks[m->heap[i]], &m->blocks[m->heap[j]]);
}

static void place(ig_kv_manager *m, int32_t i, int32_t b) {
    m->heap[i] = b;
    m->blocks[b].heap_idx = i;
}

static void swap(ig_kv_manager *m, int32_t i, int32_t j) {
    int32_t bi = m->heap[i], bj = m->heap[j];
    place(m, i, bj);
    place(m, j, bi);
}

static void sift_up(ig_kv_manager *m, int32_t i) {
    while (i > 0) {
        int32_t p = (i - 1) / 2;
        if (!less(m, i, p)) break;
        swap(m, i, p);
        i = p;
    }
}

static void sift_down(ig_kv_manager *m, int32_t i) {
    for (;;) {
        int32_t l = 2 * i + 1, r = l + 1, s = i;
        if (l < m->n_heap && less(m, l, s)) s = l;
        if (r < m->n_heap && less(m, r, s)) s = r;
        if (s == i) break;
        swap(m, i, s);
        i = s;
    }
}

void ig__evict_push(ig_kv_manager *m, int32_t b) {
    IG_ASSERT(m->blocks[b].heap_idx < 0 && m->n_heap < m->n_blocks);
    place(m, m->n_heap++, b);
    sift_up(m, m->n_heap - 1);
}

void ig__evict_remove(ig_kv_manager *m, int32_t b) {
    int32_t i = m->blocks[b].heap_idx;
    IG_ASSERT(i >= 0 && i < m->n_heap && m->heap[i] == b);
    m->blocks[b].heap_idx = -1;
    int32_t last = m->heap[--m->n_heap];
    if (i == m->n_heap) return;
    place(m, i, last);
    /* The moved block may belong above or below its new spot. */
    sift_up(m, i);
    sift_down(m, m->blocks[last].heap_idx);
}

int32_t ig__evict_pop(ig_kv_manager *m) {
    if (m->n_heap == 0) return -1;
    int32_t b = m->heap[0];
    ig__evict_remove(m, b);
    return b;
}

ig_status ig__evict_check(const ig_kv_manager *m, ig_error *err) {
    for (int32_t i = 0; i < m->n_heap; i++) {
        int32_t b = m->heap[i];
        if (b < 0 || b >= m->n_blocks || m->blocks[b].heap_idx != i)
            return ig_errorf(err, IG_EINTERNAL, "evict heap slot %d: block %d has heap_idx %d", i,
                             b, b >= 0 && b < m->n_blocks ? m->blocks[b].heap_idx : -2);
        if (i > 0 && less(m, i, (i - 1) / 2))
            return ig_errorf(err, IG_EINTERNAL, "evict heap order broken at slot %d", i);
    }
    return IG_OK;
}
