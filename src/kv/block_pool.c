/*
 * block_pool.c: moving blocks between the three states — free (free_stack),
 * used (refcount > 0) and evictable (published, refcount 0, in the eviction
 * heap).
 *
 * The free list is a stack: the manager starts with blocks 0, 1, 2, ... on
 * top in that order, and a released block is reused first (its memory is
 * the most likely to be warm). A block is taken from the eviction heap only
 * when the free list is empty; eviction unpublishes it first, so no lookup
 * can find a block whose slots are about to be overwritten.
 */
#include "base/error.h"
#include "kv/kv_internal.h"

int32_t ig__pool_take(ig_kv_manager *m) {
    int32_t b;
    if (m->n_free > 0) {
        b = m->free_stack[--m->n_free];
        IG_ASSERT(m->blocks[b].state == IG__BLK_FREE && !m->blocks[b].is_published);
    } else {
        b = ig__evict_pop(m);
        if (b < 0) return -1;
        IG_ASSERT(m->blocks[b].state == IG__BLK_EVICTABLE);
        ig__prefix_unpublish(m, b);
        m->n_evictions++;
    }
    ig__kv_block *blk = &m->blocks[b];
    IG_ASSERT(blk->refcount == 0);
    blk->state = IG__BLK_USED;
    blk->refcount = 1;
    blk->gen++;
    blk->hits = 0;
    m->n_used++;
    return b;
}

void ig__pool_ref(ig_kv_manager *m, int32_t b) {
    ig__kv_block *blk = &m->blocks[b];
    IG_ASSERT(blk->is_published);
    if (blk->state == IG__BLK_EVICTABLE) {
        ig__evict_remove(m, b);
        blk->state = IG__BLK_USED;
        m->n_used++;
    }
    IG_ASSERT(blk->state == IG__BLK_USED);
    blk->refcount++;
}

void ig__pool_unref(ig_kv_manager *m, int32_t b) {
    ig__kv_block *blk = &m->blocks[b];
    IG_ASSERT(blk->state == IG__BLK_USED && blk->refcount > 0);
    if (--blk->refcount > 0) return;
    m->n_used--;
    if (blk->is_published) {
        blk->state = IG__BLK_EVICTABLE;
        blk->last_use = ++m->clock;
        ig__evict_push(m, b);
    } else {
        blk->state = IG__BLK_FREE;
        m->free_stack[m->n_free++] = b;
    }
}
