/*
 * spm.c: SentencePiece-style BPE over token scores (tokenizer.ggml.model =
 * "llama"), matching llama.cpp's llm_tokenizer_spm.
 *
 * The fragment's spaces become U+2581 ("▁"), with one more "▁" in front when
 * the caller asks for the space prefix. The text is split into UTF-8
 * characters (a lead byte's length, cut at the end; a stray continuation byte
 * is a character of its own). Then, repeatedly, the adjacent pair whose
 * concatenation is a vocab token with the highest score is merged (ties: the
 * leftmost pair), until no adjacent pair forms a token. Each final piece is
 * its token; a piece that is no token (a character missing from the vocab) is
 * emitted as byte tokens <0xNN>, or the unknown token if even those are absent.
 *
 * Merge candidates sit in a binary max-heap; a candidate is stale once either
 * side has been merged into something else (its recorded size no longer
 * matches), and is then skipped when popped.
 *
 * Scratch is allocated per call; nothing is shared, so calls may run in parallel.
 */
#include <stdlib.h>
#include <string.h>

#include "tokenizer/vocab.h"

typedef struct spm_sym {
    int32_t prev, next; /* neighbours in the linked list, -1 at the ends */
    uint32_t off, n;    /* bytes of the escaped text; n == 0 once merged away */
} spm_sym;

typedef struct spm_bigram {
    float score;
    int32_t left, right; /* symbol indices */
    uint32_t size;       /* bytes of left + right when proposed */
} spm_bigram;

typedef struct spm_heap {
    spm_bigram *a;
    size_t n, cap;
} spm_heap;

/* a comes out of the heap before b: higher score, then the leftmost. */
static bool before(const spm_bigram *a, const spm_bigram *b) {
    return a->score > b->score || (a->score == b->score && a->left < b->left);
}

static bool heap_push(spm_heap *h, spm_bigram x) {
    if (h->n == h->cap) {
        size_t cap = h->cap ? h->cap * 2 : 64;
        spm_bigram *a = realloc(h->a, cap * sizeof *a);
        if (!a) return false;
        h->a = a;
        h->cap = cap;
    }
    size_t i = h->n++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!before(&x, &h->a[p])) break;
        h->a[i] = h->a[p];
        i = p;
    }
    h->a[i] = x;
    return true;
}

static spm_bigram heap_pop(spm_heap *h) {
    spm_bigram top = h->a[0], x = h->a[--h->n];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= h->n) break;
        if (c + 1 < h->n && before(&h->a[c + 1], &h->a[c])) c++;
        if (!before(&h->a[c], &x)) break;
        h->a[i] = h->a[c];
        i = c;
    }
    if (h->n) h->a[i] = x;
    return top;
}

/* Propose merging symbols l and r if their concatenation is a token. */
static bool try_pair(const ig_vocab *v, const char *s, const spm_sym *sym, int32_t l, int32_t r,
                     spm_heap *h) {
    if (l < 0 || r < 0) return true;
    uint32_t size = sym[l].n + sym[r].n;
    int32_t id = ig_vocab_find(v, s + sym[l].off, size);
    if (id < 0) return true;
    spm_bigram b = {v->scores[id], l, r, size};
    return heap_push(h, b);
}

static size_t utf8_len(unsigned char c) {
    static const uint8_t len[16] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4};
    return len[c >> 4];
}

ig_status ig__spm_encode(const ig_vocab *v, const char *text, size_t len, bool add_prefix,
                         ig_tokens *out) {
    static const char SPACE[] = "\xe2\x96\x81"; /* U+2581 */
    ig_status st = IG_OK;
    char *s = NULL;
    spm_sym *sym = NULL;
    spm_heap heap = {0};

    /* Escape: ' ' -> U+2581 (3 bytes), optionally one in front. */
    size_t n_spaces = 0;
    for (size_t i = 0; i < len; i++) n_spaces += text[i] == ' ';
    size_t slen = len + 2 * n_spaces + (add_prefix ? 3 : 0);
    if (slen == 0) return IG_OK;
    if (slen > UINT32_MAX) return IG_EINVAL;
    s = malloc(slen);
    sym = malloc(slen * sizeof *sym);
    if (!s || !sym) {
        st = IG_ENOMEM;
        goto done;
    }
    size_t o = 0;
    if (add_prefix) memcpy(s + o, SPACE, 3), o += 3;
    for (size_t i = 0; i < len; i++) {
        if (text[i] == ' ')
            memcpy(s + o, SPACE, 3), o += 3;
        else
            s[o++] = text[i];
    }

    /* One symbol per UTF-8 character. */
    int32_t n_sym = 0;
    for (size_t off = 0; off < slen;) {
        size_t n = utf8_len((unsigned char)s[off]);
        if (n > slen - off) n = slen - off;
        sym[n_sym] = (spm_sym){n_sym - 1, n_sym + 1, (uint32_t)off, (uint32_t)n};
        n_sym++;
        off += n;
    }
    sym[n_sym - 1].next = -1;

    for (int32_t i = 1; i < n_sym; i++) {
        if (!try_pair(v, s, sym, i - 1, i, &heap)) {
            st = IG_ENOMEM;
            goto done;
        }
    }
    while (heap.n) {
        spm_bigram b = heap_pop(&heap);
        spm_sym *l = &sym[b.left], *r = &sym[b.right];
        if (l->n == 0 || r->n == 0 || l->n + r->n != b.size) continue; /* stale */
        l->n += r->n;
        r->n = 0;
        l->next = r->next;
        if (r->next >= 0) sym[r->next].prev = b.left;
        if (!try_pair(v, s, sym, l->prev, b.left, &heap) ||
            !try_pair(v, s, sym, b.left, l->next, &heap)) {
            st = IG_ENOMEM;
            goto done;
        }
    }

    for (int32_t i = 0; i >= 0; i = sym[i].next) {
        int32_t id = ig_vocab_find(v, s + sym[i].off, sym[i].n);
        if (id >= 0) {
            if ((st = ig_tokens_push(out, id)) != IG_OK) goto done;
            continue;
        }
        for (uint32_t k = 0; k < sym[i].n; k++) {
            int32_t b = v->byte_ids[(unsigned char)s[sym[i].off + k]];
            if (b < 0) b = v->unk_id;
            if (b < 0) continue; /* a vocab without byte tokens or <unk>: drop the byte */
            if ((st = ig_tokens_push(out, b)) != IG_OK) goto done;
        }
    }

done:
    free(heap.a);
    free(sym);
    free(s);
    return st;
}
