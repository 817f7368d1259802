/*
 * bpe.c: byte-level BPE (tokenizer.ggml.model = "gpt2"), as GPT-2 defined it
 * and llama.cpp runs it.
 *
 * Encoding one fragment of text:
 *  1. the pre-tokenizer (pretok.c, chosen by tokenizer.ggml.pre) cuts it into
 *     pieces;
 *  2. each piece's bytes are mapped to printable code points (the byte map
 *     below), since token texts and merges are written in that alphabet;
 *  3. if the pre-tokenizer says so (ignore_merges) and the whole mapped piece
 *     is a token, that token is the answer;
 *  4. otherwise the piece starts as one symbol per mapped character, and the
 *     adjacent pair whose merge has the lowest rank (its line number in
 *     tokenizer.ggml.merges) is merged, again and again, ties going to the
 *     leftmost pair, until no adjacent pair has a merge;
 *  5. each final symbol becomes its token; one that is not in the vocabulary
 *     falls back to the tokens of its characters (one per byte), and a
 *     character that has no token is dropped, as llama.cpp drops it.
 *
 * The byte map: bytes '!'..'~', 0xA1..0xAC and 0xAE..0xFF stand for
 * themselves (as code points U+0021.. etc.); the other 68 bytes, in
 * increasing order, become U+0100, U+0101, ... U+0143. So ' ' is U+0120 'Ġ'
 * and '\n' is U+010A 'Ċ'.
 *
 * Merge ranks live in an open-addressing hash table keyed by the pair of
 * texts (FNV-1a), built once at load. The merge loop keeps symbols in a
 * linked list and candidate pairs in a binary heap with lazy deletion (a
 * popped pair whose symbols have changed since it was pushed is skipped), so
 * a piece of n characters costs O(n log n), not O(n^2): long runs of spaces
 * or digits stay cheap.
 *
 * The loaded ig_bpe_data is immutable; encode allocates its own scratch.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "tokenizer/pretok.h"
#include "tokenizer/vocab.h"

typedef struct merge_slot {
    uint32_t off;  /* left text at arena + off, right text right after it */
    uint32_t llen; /* bytes of the left text */
    uint32_t rlen; /* bytes of the right text */
    uint32_t hash;
    int32_t rank; /* line in tokenizer.ggml.merges; -1 = empty slot */
} merge_slot;

struct ig_bpe_data {
    ig_pretok *pretok;
    bool ignore_merges; /* whole-piece tokens skip the merges */
    char *arena;        /* merge texts */
    merge_slot *slots;  /* [cap], cap a power of two, at most half full */
    size_t cap;
    size_t n_merges; /* distinct pairs */
};

/* ---- byte map ---- */

static uint32_t byte_to_cp(uint8_t b) {
    if ((b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE) return b;
    if (b <= 0x20) return 0x100 + b;               /* 0x00..0x20 -> U+0100..U+0120 */
    if (b <= 0xA0) return 0x100 + 33 + (b - 0x7F); /* 0x7F..0xA0 -> U+0121..U+0142 */
    return 0x143;                                  /* 0xAD */
}

/* The byte a mapped code point stands for, or -1. */
static int cp_to_byte(uint32_t cp) {
    if (cp < 0x100)
        return ((cp >= 0x21 && cp <= 0x7E) || (cp >= 0xA1 && cp <= 0xAC) || cp >= 0xAE) ? (int)cp
                                                                                        : -1;
    if (cp <= 0x120) return (int)(cp - 0x100);
    if (cp <= 0x142) return (int)(cp - 0x100 - 33 + 0x7F);
    if (cp == 0x143) return 0xAD;
    return -1;
}

size_t ig__bpe_map(const char *bytes, size_t len, char *out, size_t cap) {
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        char enc[4];
        size_t n = ig__utf8_encode(byte_to_cp((uint8_t)bytes[i]), enc);
        for (size_t k = 0; k < n; k++, o++)
            if (o < cap) out[o] = enc[k];
    }
    return o;
}

size_t ig__bpe_unmap(const char *text, size_t len, char *out, size_t cap) {
    size_t o = 0;
    for (size_t i = 0; i < len;) {
        uint32_t cp;
        size_t n = ig__utf8_decode((const unsigned char *)text + i, len - i, &cp);
        int b = n == 1 && cp == 0xFFFD ? -1 : cp_to_byte(cp);
        if (b >= 0) {
            if (o < cap) out[o] = (char)b;
            o++;
        } else {
            /* outside the alphabet (an added token's own text, or a stray byte): copy it */
            for (size_t k = 0; k < n; k++, o++)
                if (o < cap) out[o] = text[i + k];
        }
        i += n;
    }
    return o;
}

/* ---- merge ranks ---- */

static uint32_t pair_hash(const char *l, size_t ll, const char *r, size_t rl) {
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < ll; i++) h = (h ^ (uint8_t)l[i]) * 16777619u;
    h = (h ^ 0xFFu) * 16777619u; /* a byte no UTF-8 text holds, between the halves */
    for (size_t i = 0; i < rl; i++) h = (h ^ (uint8_t)r[i]) * 16777619u;
    return h;
}

/* The slot holding the pair, or the empty slot where it would go. */
static merge_slot *find_slot(const ig_bpe_data *b, const char *l, size_t ll, const char *r,
                             size_t rl, uint32_t h) {
    size_t mask = b->cap - 1;
    for (size_t i = h & mask;; i = (i + 1) & mask) {
        merge_slot *s = &b->slots[i];
        if (s->rank < 0) return s;
        if (s->hash == h && s->llen == ll && s->rlen == rl &&
            memcmp(b->arena + s->off, l, ll) == 0 && memcmp(b->arena + s->off + ll, r, rl) == 0)
            return s;
    }
}

static int32_t merge_rank(const ig_bpe_data *b, const char *l, size_t ll, const char *r,
                          size_t rl) {
    if (b->cap == 0) return -1;
    return find_slot(b, l, ll, r, rl, pair_hash(l, ll, r, rl))->rank;
}

void ig__bpe_free(ig_bpe_data *b) {
    if (!b) return;
    ig__pretok_free(b->pretok);
    free(b->arena);
    free(b->slots);
    free(b);
}

ig_status ig__bpe_init(ig_vocab *v, const ig_gguf *g, ig_error *err) {
    ig_status st;
    const ig_gguf_value *arr = NULL;
    ig_bpe_data *b = calloc(1, sizeof *b);
    if (!b) return ig_errorf(err, IG_ENOMEM, "out of memory loading BPE merges");

    st = ig__pretok_new(v->pre, &b->pretok, err);
    if (st != IG_OK) goto fail;
    unsigned flags = ig__pretok_flags(b->pretok);
    b->ignore_merges = flags & IG_PRETOK_IGNORE_MERGES;

    st = ig_gguf_get_arr(g, "tokenizer.ggml.merges", &arr);
    if (st == IG_ENOTFOUND) {
        st = ig_errorf(err, IG_EFORMAT, "BPE vocabulary has no tokenizer.ggml.merges");
        goto fail;
    }
    if (st != IG_OK || arr->v.arr.elem_type != IG_GGUF_STRING) {
        st = ig_errorf(err, IG_ETYPE, "tokenizer.ggml.merges is not an array of strings");
        goto fail;
    }
    uint64_t n = arr->v.arr.n, total = 0;
    for (uint64_t i = 0; i < n; i++) total += arr->v.arr.items[i].v.str.len;
    if (n > INT32_MAX || total > UINT32_MAX) {
        st = ig_errorf(err, IG_ERANGE, "tokenizer.ggml.merges is too large (%llu merges)",
                       (unsigned long long)n);
        goto fail;
    }
    size_t cap = 16;
    while (cap < 2 * n) cap *= 2;
    b->arena = malloc(total ? total : 1);
    b->slots = malloc(cap * sizeof *b->slots);
    if (!b->arena || !b->slots) {
        st = ig_errorf(err, IG_ENOMEM, "out of memory loading %llu BPE merges",
                       (unsigned long long)n);
        goto fail;
    }
    b->cap = cap;
    for (size_t i = 0; i < cap; i++) b->slots[i].rank = -1;

    /* "left right": split at the first space after the first byte, as llama.cpp does */
    uint32_t used = 0;
    for (uint64_t i = 0; i < n; i++) {
        ig_str s = arr->v.arr.items[i].v.str;
        const char *sp = s.len > 1 ? memchr(s.ptr + 1, ' ', s.len - 1) : NULL;
        if (!sp) continue; /* not a pair: can never match */
        size_t ll = (size_t)(sp - s.ptr), rl = s.len - ll - 1;
        uint32_t h = pair_hash(s.ptr, ll, sp + 1, rl);
        merge_slot *slot = find_slot(b, s.ptr, ll, sp + 1, rl, h);
        if (slot->rank >= 0) continue; /* a repeated pair keeps its first (lowest) rank */
        memcpy(b->arena + used, s.ptr, ll);
        memcpy(b->arena + used + ll, sp + 1, rl);
        *slot = (merge_slot){
            .off = used, .llen = (uint32_t)ll, .rlen = (uint32_t)rl, .hash = h, .rank = (int32_t)i};
        used += (uint32_t)(ll + rl);
        b->n_merges++;
    }
    /* defaults llama.cpp ties to the pre-tokenizer; the GGUF's own keys are read after us */
    if (flags & IG_PRETOK_ADD_BOS) v->add_bos = true;
    if (flags & IG_PRETOK_NO_BOS) v->bos_id = -1;
    v->bpe = b;
    return IG_OK;

fail:
    ig__bpe_free(b);
    return st;
}

/* ---- merging ---- */

typedef struct symbol {
    uint32_t start; /* byte offset in the mapped piece */
    uint32_t len;   /* bytes; 0 once merged into its left neighbour */
    int32_t prev, next;
} symbol;

typedef struct pair {
    int32_t rank;
    int32_t left, right; /* symbol indices */
    uint32_t llen, rlen; /* the symbols' lengths when pushed (stale if they changed) */
} pair;

typedef struct scratch {
    char *mapped;
    size_t mapped_cap;
    symbol *syms;
    pair *heap;
    size_t sym_cap; /* heap holds 3 * sym_cap */
} scratch;

static bool pair_less(const pair *a, const pair *b) {
    return a->rank < b->rank || (a->rank == b->rank && a->left < b->left);
}

static void heap_push(pair *h, size_t *n, pair p) {
    size_t i = (*n)++;
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!pair_less(&p, &h[parent])) break;
        h[i] = h[parent];
        i = parent;
    }
    h[i] = p;
}

static pair heap_pop(pair *h, size_t *n) {
    pair top = h[0], last = h[--*n];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= *n) break;
        if (c + 1 < *n && pair_less(&h[c + 1], &h[c])) c++;
        if (!pair_less(&h[c], &last)) break;
        h[i] = h[c];
        i = c;
    }
    if (*n > 0) h[i] = last;
    return top;
}

static void try_pair(const ig_bpe_data *b, const char *m, const symbol *syms, int32_t l, int32_t r,
                     pair *heap, size_t *n_heap) {
    if (l < 0 || r < 0) return;
    const symbol *sl = &syms[l], *sr = &syms[r];
    int32_t rank = merge_rank(b, m + sl->start, sl->len, m + sr->start, sr->len);
    if (rank < 0) return;
    heap_push(heap, n_heap, (pair){rank, l, r, sl->len, sr->len});
}

/* Emit the token of one final symbol, or its characters' tokens. */
static ig_status emit_symbol(const ig_vocab *v, const char *text, size_t len, ig_tokens *out) {
    int32_t id = ig_vocab_find(v, text, len);
    if (id >= 0) return ig_tokens_push(out, id);
    for (size_t i = 0; i < len;) {
        uint32_t cp;
        size_t n = ig__utf8_decode((const unsigned char *)text + i, len - i, &cp);
        id = ig_vocab_find(v, text + i, n);
        if (id >= 0) {
            ig_status st = ig_tokens_push(out, id);
            if (st != IG_OK) return st;
        }
        i += n;
    }
    return IG_OK;
}

/* Merge one mapped piece m[0..mlen) and emit its tokens. */
static ig_status bpe_piece(const ig_vocab *v, const char *m, size_t mlen, scratch *w,
                           ig_tokens *out) {
    const ig_bpe_data *b = v->bpe;
    symbol *syms = w->syms;
    int32_t n_syms = 0;
    for (size_t i = 0; i < mlen;) {
        uint32_t cp;
        size_t n = ig__utf8_decode((const unsigned char *)m + i, mlen - i, &cp);
        syms[n_syms] = (symbol){(uint32_t)i, (uint32_t)n, n_syms - 1, n_syms + 1};
        n_syms++;
        i += n;
    }
    if (n_syms == 0) return IG_OK;
    syms[n_syms - 1].next = -1;

    size_t n_heap = 0;
    for (int32_t i = 1; i < n_syms; i++) try_pair(b, m, syms, i - 1, i, w->heap, &n_heap);
    while (n_heap > 0) {
        pair p = heap_pop(w->heap, &n_heap);
        symbol *l = &syms[p.left], *r = &syms[p.right];
        if (l->len != p.llen || r->len != p.rlen || l->next != p.right) continue; /* stale */
        l->len += r->len;
        r->len = 0;
        l->next = r->next;
        if (r->next >= 0) syms[r->next].prev = p.left;
        try_pair(b, m, syms, l->prev, p.left, w->heap, &n_heap);
        try_pair(b, m, syms, p.left, l->next, w->heap, &n_heap);
    }

    /* symbol 0 is never merged away: merges fold the right symbol into the left */
    for (int32_t i = 0; i >= 0; i = syms[i].next) {
        ig_status st = emit_symbol(v, m + syms[i].start, syms[i].len, out);
        if (st != IG_OK) return st;
    }
    return IG_OK;
}

static bool scratch_reserve(scratch *w, size_t piece_len) {
    size_t mapped = piece_len * 2; /* every mapped code point is below U+0800 */
    if (mapped > w->mapped_cap) {
        char *p = realloc(w->mapped, mapped);
        if (!p) return false;
        w->mapped = p;
        w->mapped_cap = mapped;
    }
    if (piece_len > w->sym_cap) {
        symbol *s = realloc(w->syms, piece_len * sizeof *s);
        if (!s) return false;
        w->syms = s;
        pair *h = realloc(w->heap, 3 * piece_len * sizeof *h);
        if (!h) return false;
        w->heap = h;
        w->sym_cap = piece_len;
    }
    return true;
}

ig_status ig__bpe_encode(const ig_vocab *v, const char *text, size_t len, ig_tokens *out) {
    if (!v || !v->bpe || (!text && len > 0) || !out) return IG_EINVAL;
    const ig_bpe_data *b = v->bpe;
    const size_t n_before = out->n;
    ig_pretok_pieces pieces = {0};
    scratch w = {0};

    ig_status st = ig__pretok_split(b->pretok, text, len, &pieces);
    if (st != IG_OK) goto done;

    size_t start = 0;
    for (size_t k = 0; k < pieces.n; k++) {
        const char *piece = pieces.text + start;
        size_t plen = pieces.ends[k] - start;
        start = pieces.ends[k];
        if (plen > UINT32_MAX / 2) {
            st = IG_ERANGE; /* symbol offsets are 32-bit */
            goto done;
        }
        if (!scratch_reserve(&w, plen)) {
            st = IG_ENOMEM;
            goto done;
        }
        size_t mlen = ig__bpe_map(piece, plen, w.mapped, w.mapped_cap);
        int32_t whole = b->ignore_merges ? ig_vocab_find(v, w.mapped, mlen) : -1;
        st = whole >= 0 ? ig_tokens_push(out, whole) : bpe_piece(v, w.mapped, mlen, &w, out);
        if (st != IG_OK) goto done;
    }

done:
    if (st != IG_OK) out->n = n_before;
    free(w.mapped);
    free(w.syms);
    free(w.heap);
    ig__pretok_pieces_free(&pieces);
    return st;
}
