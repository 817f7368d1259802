/*
 * tokenize.c: ig_tokenize, the front of every tokenizer.
 *
 * 1. Partition: the text is cut into fragments, each either a special token
 *    or raw text. Special tokens are taken in the vocab's order (longest text
 *    first); each one splits every raw fragment at all its occurrences, left
 *    to right, before the next token is tried. This is llama.cpp's order, and
 *    it is not the same as a leftmost-longest scan: with tokens "bcd" and
 *    "ab", "abcd" becomes "a" + <bcd>. A token flagged LSTRIP/RSTRIP also eats
 *    the ASCII whitespace before/after it. Without parse_special only
 *    USER_DEFINED tokens take part.
 * 2. Each raw fragment goes to the model's tokenizer (spm.c, bpe.c, wpm.c);
 *    special tokens are emitted as they are.
 * 3. BOS/EOS (WPM: CLS/SEP) are added when asked for and the vocab wants them.
 */
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "tokenizer/vocab.h"

typedef struct frag {
    int32_t id;      /* the special token, or -1 for raw text */
    size_t off, len; /* raw text: bytes of the input */
} frag;

typedef struct frag_list {
    frag *a;
    size_t n, cap;
} frag_list;

static bool frag_push(frag_list *l, frag f) {
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 16;
        frag *a = realloc(l->a, cap * sizeof *a);
        if (!a) return false;
        l->a = a;
        l->cap = cap;
    }
    l->a[l->n++] = f;
    return true;
}

static bool is_space(char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}

/* Split one raw fragment at every occurrence of token `id`, appending the pieces to `dst`. */
static bool split_raw(const ig_vocab *v, const char *text, frag f, int32_t id, frag_list *dst) {
    const char *tok = v->text[id];
    size_t tl = v->text_len[id];
    uint8_t strip = v->strip[id];
    size_t base = f.off, blen = f.len;
    while (blen >= tl) {
        const char *m = memmem(text + base, blen, tok, tl);
        if (!m) break;
        size_t at = (size_t)(m - text);
        size_t left = at - base;
        if (strip & IG_TOKEN_LSTRIP)
            while (left > 0 && is_space(text[base + left - 1])) left--;
        if (left > 0 && !frag_push(dst, (frag){-1, base, left})) return false;
        if (!frag_push(dst, (frag){id, 0, 0})) return false;
        size_t r_off = at + tl, r_len = base + blen - r_off;
        if (strip & IG_TOKEN_RSTRIP)
            while (r_len > 0 && is_space(text[r_off])) r_off++, r_len--;
        base = r_off;
        blen = r_len;
    }
    return blen == 0 || frag_push(dst, (frag){-1, base, blen});
}

static ig_status partition(const ig_vocab *v, const char *text, size_t len, bool parse_special,
                           frag_list *out) {
    frag_list cur = {0}, next = {0};
    ig_status st = IG_OK;
    bool present[256] = {false}; /* which bytes occur at all: a cheap filter */
    for (size_t i = 0; i < len; i++) present[(unsigned char)text[i]] = true;
    if (!frag_push(&cur, (frag){-1, 0, len})) {
        st = IG_ENOMEM;
        goto done;
    }

    for (int32_t k = 0; k < v->n_special; k++) {
        int32_t id = v->special_ids[k];
        uint8_t a = v->attr[id];
        if (!parse_special && a != IG_TOKEN_USER_DEFINED) continue;
        size_t tl = v->text_len[id];
        if (tl == 0 || tl > len || !present[(unsigned char)v->text[id][0]]) continue;
        bool found = false;
        for (size_t i = 0; i < cur.n && !found; i++)
            found = cur.a[i].id < 0 && cur.a[i].len >= tl &&
                    memmem(text + cur.a[i].off, cur.a[i].len, v->text[id], tl);
        if (!found) continue;
        next.n = 0;
        for (size_t i = 0; i < cur.n; i++) {
            bool ok = cur.a[i].id >= 0 ? frag_push(&next, cur.a[i])
                                       : split_raw(v, text, cur.a[i], id, &next);
            if (!ok) {
                st = IG_ENOMEM;
                goto done;
            }
        }
        frag_list t = cur;
        cur = next;
        next = t;
    }
    *out = cur;
    cur.a = NULL;

done:
    free(cur.a);
    free(next.a);
    return st;
}

ig_status ig_tokenize(const ig_vocab *v, const char *text, size_t len, ig_tokenize_opts opts,
                      ig_tokens *out, ig_error *err) {
    frag_list frags = {0};
    ig_status st = IG_OK;
    if (!v || !out || (!text && len)) return ig_errorf(err, IG_EINVAL, "ig_tokenize: bad argument");

    bool want_bos = opts.add_special && v->add_bos;
    bool want_eos = opts.add_special && (v->type == IG_VOCAB_WPM ? v->add_sep : v->add_eos);
    int32_t eos = v->type == IG_VOCAB_WPM ? v->sep_id : v->eos_id;
    if ((want_bos && v->bos_id < 0) || (want_eos && eos < 0)) {
        return ig_errorf(err, IG_EINVAL, "the vocab asks for a %s token it does not have",
                         want_bos && v->bos_id < 0 ? "BOS" : "EOS/SEP");
    }

    if (len > 0 && (st = partition(v, text, len, opts.parse_special, &frags)) != IG_OK) {
        ig_errorf(err, st, "out of memory tokenizing");
        goto done;
    }

    if (want_bos && (st = ig_tokens_push(out, v->bos_id)) != IG_OK) {
        ig_errorf(err, st, "out of memory tokenizing");
        goto done;
    }
    bool prev_special = true; /* SPM: the first fragment gets the space prefix too */
    for (size_t i = 0; i < frags.n; i++) {
        frag f = frags.a[i];
        if (f.id >= 0) {
            if ((st = ig_tokens_push(out, f.id)) != IG_OK) {
                ig_errorf(err, st, "out of memory tokenizing");
                goto done;
            }
            prev_special = true;
            continue;
        }
        switch (v->type) {
        case IG_VOCAB_SPM:
            st = ig__spm_encode(v, text + f.off, f.len, v->add_space_prefix && prev_special, out);
            break;
        case IG_VOCAB_BPE:
            st = ig__bpe_encode(v, text + f.off, f.len, out);
            break;
        case IG_VOCAB_WPM:
            st = ig__wpm_encode(v, text + f.off, f.len, out);
            break;
        }
        if (st != IG_OK) {
            ig_errorf(err, st, "tokenizing a %zu-byte fragment failed: %s", f.len, ig_strerror(st));
            goto done;
        }
        prev_special = false;
    }
    if (want_eos && (st = ig_tokens_push(out, eos)) != IG_OK) {
        ig_errorf(err, st, "out of memory tokenizing");
        goto done;
    }

done:
    free(frags.a);
    return st;
}
