/*
 * wpm.c: WordPiece (tokenizer.ggml.model = "bert"), matching llama.cpp's
 * llm_tokenizer_wpm.
 *
 * In GGUF, BERT's vocab is stored with word-initial pieces prefixed by U+2581
 * ("▁hello") and continuation pieces bare ("ing", BERT's "##ing").
 *
 * Pre-processing (BERT's BasicTokenizer as llama.cpp does it), per code point:
 * - decode UTF-8 leniently (a byte that starts no valid sequence is U+FFFD);
 * - replace the code point by the first code point of its canonical
 *   decomposition (NFD), which drops the accents of precomposed letters
 *   ("Ä" -> "A"; a stand-alone combining mark stays);
 * - White_Space ends the current word; NUL, U+FFFD and control/format/
 *   private-use/surrogate (C*) code points are dropped;
 * - punctuation (P*), ASCII symbols (S* below U+007F) and CJK ideographs
 *   become one-character words;
 * - everything is lowercased (simple case mapping).
 * Then each word, with "▁" in front, is cut greedily into the longest vocab
 * tokens from the left (byte positions, at most max_token_len long); if some
 * position matches nothing, the whole word becomes the unknown token.
 */
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#include "tokenizer/vocab.h"

/* One code point from s[*i..n), as llama.cpp decodes: lenient, no overlong/surrogate checks. */
static uint32_t next_cpt(const unsigned char *s, size_t n, size_t *i) {
    unsigned char c = s[*i];
    size_t need;
    uint32_t cp;
    if (c < 0x80) {
        *i += 1;
        return c;
    } else if ((c & 0xE0) == 0xC0) {
        need = 1, cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
        need = 2, cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
        need = 3, cp = c & 0x07;
    } else {
        *i += 1;
        return 0xFFFD;
    }
    if (*i + need >= n) { /* not enough bytes left */
        *i += 1;
        return 0xFFFD;
    }
    for (size_t k = 1; k <= need; k++) {
        if ((s[*i + k] & 0xC0) != 0x80) {
            *i += 1;
            return 0xFFFD;
        }
        cp = (cp << 6) | (s[*i + k] & 0x3F);
    }
    *i += need + 1;
    return cp;
}

static bool is_white_space(uint32_t c) {
    return (c >= 0x09 && c <= 0x0D) || c == 0x20 || c == 0x85 || c == 0xA0 || c == 0x1680 ||
           (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F ||
           c == 0x205F || c == 0x3000;
}

/* The CJK ideograph blocks BERT treats as words of their own (its published list). */
static bool is_cjk(uint32_t c) {
    return (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF) ||
           (c >= 0x20000 && c <= 0x2A6DF) || (c >= 0x2A700 && c <= 0x2B73F) ||
           (c >= 0x2B740 && c <= 0x2B81F) || (c >= 0x2B920 && c <= 0x2CEAF) ||
           (c >= 0xF900 && c <= 0xFAFF) || (c >= 0x2F800 && c <= 0x2FA1F);
}

static uint32_t nfd_first(uint32_t c) {
    if (c < 0xC0 || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF)) return c;
    utf8proc_int32_t buf[8];
    int last_boundclass = 0;
    utf8proc_ssize_t n =
        utf8proc_decompose_char((utf8proc_int32_t)c, buf, 8, UTF8PROC_DECOMPOSE, &last_boundclass);
    return n >= 1 ? (uint32_t)buf[0] : c;
}

/* Word buffer: "▁" + the word's bytes. */
typedef struct wbuf {
    char *a;
    size_t n, cap;
} wbuf;

static bool wb_put(wbuf *w, const char *s, size_t n) {
    if (w->n + n > w->cap) {
        size_t cap = w->cap ? w->cap : 64;
        while (cap < w->n + n) cap *= 2;
        char *a = realloc(w->a, cap);
        if (!a) return false;
        w->a = a;
        w->cap = cap;
    }
    memcpy(w->a + w->n, s, n);
    w->n += n;
    return true;
}

static const char WORD_START[] = "\xe2\x96\x81";

/* Cut the word in w (with its "▁") into tokens; the unknown token if any part fails. */
static ig_status emit_word(const ig_vocab *v, wbuf *w, ig_tokens *out) {
    ig_status st = IG_OK;
    size_t n = w->n;
    if (n <= 3) return IG_OK; /* empty word */
    size_t start = out->n;
    for (size_t i = 0; i < n;) {
        size_t hi = i + v->max_token_len + 1;
        if (hi > n) hi = n;
        int32_t id = -1;
        size_t j = hi;
        for (; j > i; j--)
            if ((id = ig_vocab_find(v, w->a + i, j - i)) >= 0) break;
        if (id < 0) {
            out->n = start; /* discard the word's pieces */
            break;
        }
        if ((st = ig_tokens_push(out, id)) != IG_OK) return st;
        i = j;
    }
    if (out->n == start && v->unk_id >= 0) st = ig_tokens_push(out, v->unk_id);
    w->n = 3; /* keep "▁" */
    return st;
}

ig_status ig__wpm_encode(const ig_vocab *v, const char *text, size_t len, ig_tokens *out) {
    ig_status st = IG_OK;
    wbuf w = {0};
    if (!wb_put(&w, WORD_START, 3)) return IG_ENOMEM;
    const unsigned char *s = (const unsigned char *)text;
    for (size_t i = 0; i < len;) {
        uint32_t c = nfd_first(next_cpt(s, len, &i));
        if (is_white_space(c)) {
            if ((st = emit_word(v, &w, out)) != IG_OK) goto done;
            continue;
        }
        utf8proc_category_t cat =
            c <= 0x10FFFF ? utf8proc_category((utf8proc_int32_t)c) : UTF8PROC_CATEGORY_CN;
        if (c == 0 || c == 0xFFFD || cat == UTF8PROC_CATEGORY_CC || cat == UTF8PROC_CATEGORY_CF ||
            cat == UTF8PROC_CATEGORY_CS || cat == UTF8PROC_CATEGORY_CO)
            continue;
        bool punct = cat >= UTF8PROC_CATEGORY_PC && cat <= UTF8PROC_CATEGORY_PO;
        bool symbol = cat >= UTF8PROC_CATEGORY_SM && cat <= UTF8PROC_CATEGORY_SO;
        uint32_t lc = (uint32_t)utf8proc_tolower((utf8proc_int32_t)c);
        utf8proc_uint8_t enc[4];
        utf8proc_ssize_t k = utf8proc_encode_char((utf8proc_int32_t)lc, enc);
        if (punct || (c < 0x7F && symbol) || is_cjk(c)) {
            if ((st = emit_word(v, &w, out)) != IG_OK) goto done;
            if (!wb_put(&w, (const char *)enc, (size_t)k)) {
                st = IG_ENOMEM;
                goto done;
            }
            if ((st = emit_word(v, &w, out)) != IG_OK) goto done;
        } else if (!wb_put(&w, (const char *)enc, (size_t)k)) {
            st = IG_ENOMEM;
            goto done;
        }
    }
    st = emit_word(v, &w, out);

done:
    free(w.a);
    return st;
}
