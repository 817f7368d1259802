/*
 * detok.c: from token ids back to text: one token's bytes
 * (ig_token_to_piece), a whole sequence (ig_detokenize) and the streaming
 * detokenizer that never emits half a UTF-8 character (ig_detok).
 *
 * A piece is never longer than its token text (U+2581 -> ' ' shrinks,
 * "<0xNN>" -> one byte, byte-level BPE text unmaps to at most as many bytes),
 * so v->max_token_len bounds every piece.
 *
 * Streaming works on the held-back bytes followed by the new piece. Each
 * valid UTF-8 sequence is copied out; each maximal invalid subpart (a byte
 * that cannot start a sequence, or a sequence prefix cut short by a byte that
 * cannot continue it, including overlong and surrogate prefixes such as E0 80
 * or ED A0) becomes one U+FFFD; a valid prefix at the very end is held back
 * for the next piece. To avoid scratch memory the input is first placed at
 * the tail of the caller's buffer: every input byte yields at most 3 output
 * bytes, so with cap >= 3 * input length the output, written from the front,
 * never overtakes the input still to be read.
 */
#include <stdlib.h>
#include <string.h>

#include "tokenizer/vocab.h"

/* Output of one piece: counts every byte, stores those that fit, may drop one leading space. */
typedef struct sink {
    char *buf;
    size_t cap, n;
    bool strip;     /* drop the next byte if it is the piece's first and a space */
    bool had_bytes; /* the piece had at least one byte before stripping */
} sink;

static void put(sink *s, const char *p, size_t n) {
    if (n == 0) return;
    s->had_bytes = true;
    if (s->strip) {
        s->strip = false;
        if (*p == ' ') p++, n--;
    }
    for (size_t i = 0; i < n; i++, s->n++)
        if (s->n < s->cap) s->buf[s->n] = p[i];
}

static int hexval(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
}

static void piece(const ig_vocab *v, int32_t id, bool render_special, sink *s) {
    if (!v || id < 0 || id >= v->n_tokens) return;
    const char *t = v->text[id];
    size_t n = v->text_len[id];
    switch (v->attr[id]) {
    case IG_TOKEN_CONTROL:
    case IG_TOKEN_UNKNOWN:
        if (render_special) put(s, t, n);
        return;
    case IG_TOKEN_USER_DEFINED:
        put(s, t, n);
        return;
    case IG_TOKEN_BYTE:
        if (v->type == IG_VOCAB_SPM) {
            int hi = n == 6 ? hexval(t[3]) : -1, lo = n == 6 ? hexval(t[4]) : -1;
            if (hi >= 0 && lo >= 0 && memcmp(t, "<0x", 3) == 0 && t[5] == '>') {
                char b = (char)(hi * 16 + lo);
                put(s, &b, 1);
            } else {
                put(s, t, n);
            }
        }
        return;
    case IG_TOKEN_NORMAL:
        if (v->type == IG_VOCAB_BPE) {
            /* Unmap into the sink's free space; count only when it does not fit. */
            size_t room = s->n < s->cap ? s->cap - s->n : 0;
            char *dst = s->buf ? s->buf + (s->n < s->cap ? s->n : s->cap) : NULL;
            size_t m = ig__bpe_unmap(t, n, room ? dst : NULL, room);
            if (m == 0) return;
            s->had_bytes = true;
            if (m <= room) {
                size_t skip = s->strip && dst[0] == ' ';
                memmove(dst, dst + skip, m - skip);
                s->n += m - skip;
            } else {
                char first = 0;
                if (s->strip) ig__bpe_unmap(t, n, &first, 1);
                s->n += m - (first == ' ');
            }
            s->strip = false;
            return;
        }
        for (size_t i = 0; i < n;) { /* SPM, WPM: U+2581 -> ' ' */
            if (i + 3 <= n && memcmp(t + i, "\xe2\x96\x81", 3) == 0) {
                put(s, " ", 1);
                i += 3;
            } else {
                size_t j = i;
                while (j < n && !(j + 3 <= n && memcmp(t + j, "\xe2\x96\x81", 3) == 0)) j++;
                put(s, t + i, j - i);
                i = j;
            }
        }
        return;
    default: /* UNUSED, UNDEFINED */
        return;
    }
}

size_t ig_token_to_piece(const ig_vocab *v, int32_t id, bool render_special, char *buf,
                         size_t cap) {
    sink s = {buf, buf ? cap : 0, 0, false, false};
    piece(v, id, render_special, &s);
    return s.n;
}

/* Whether detokenizing drops the leading space of the first piece. */
static bool strips_first_space(const ig_vocab *v) {
    return v->add_space_prefix || v->type == IG_VOCAB_WPM;
}

ig_status ig_detokenize(const ig_vocab *v, const int32_t *ids, size_t n, bool render_special,
                        char **out, size_t *out_len) {
    if (!v || !out || (!ids && n)) return IG_EINVAL;
    size_t cap = 64 + (size_t)v->max_token_len, len = 0;
    char *buf = malloc(cap);
    if (!buf) return IG_ENOMEM;
    bool at_start = strips_first_space(v);
    for (size_t i = 0; i < n; i++) {
        if (cap - len < (size_t)v->max_token_len + 1) {
            size_t ncap = cap * 2 + v->max_token_len;
            char *nb = realloc(buf, ncap);
            if (!nb) {
                free(buf);
                return IG_ENOMEM;
            }
            buf = nb;
            cap = ncap;
        }
        sink s = {buf + len, cap - len - 1, 0, at_start, false};
        piece(v, ids[i], render_special, &s);
        if (s.n > cap - len - 1) { /* cannot happen: pieces are bounded by max_token_len */
            free(buf);
            return IG_EINTERNAL;
        }
        len += s.n;
        if (s.had_bytes) at_start = false;
    }
    buf[len] = '\0';
    *out = buf;
    if (out_len) *out_len = len;
    return IG_OK;
}

void ig_detok_init(ig_detok *d, const ig_vocab *v, bool render_special) {
    memset(d, 0, sizeof *d);
    d->vocab = v;
    d->render_special = render_special;
    d->at_start = v && strips_first_space(v);
}

size_t ig_detok_bound(const ig_vocab *v) {
    return 3 * (3 + (size_t)(v ? v->max_token_len : 0));
}

static const char REPLACEMENT[3] = {(char)0xEF, (char)0xBF, (char)0xBD}; /* U+FFFD */

/* Length of the sequence a lead byte starts (0: cannot start one) and the range of its 2nd byte. */
static size_t lead_info(unsigned char c, unsigned char *lo, unsigned char *hi) {
    *lo = 0x80, *hi = 0xBF;
    if (c < 0x80) return 1;
    if (c >= 0xC2 && c <= 0xDF) return 2;
    if (c == 0xE0) return *lo = 0xA0, 3; /* no overlongs */
    if (c == 0xED) return *hi = 0x9F, 3; /* no surrogates */
    if (c >= 0xE1 && c <= 0xEF) return 3;
    if (c == 0xF0) return *lo = 0x90, 4; /* no overlongs */
    if (c == 0xF4) return *hi = 0x8F, 4; /* nothing above U+10FFFF */
    if (c >= 0xF1 && c <= 0xF3) return 4;
    return 0;
}

size_t ig_detok_push(ig_detok *d, int32_t id, char *buf, size_t cap) {
    sink probe = {NULL, 0, 0, d->at_start, false};
    piece(d->vocab, id, d->render_special, &probe);
    size_t total = d->n_pending + probe.n;
    if (total == 0) {
        if (probe.had_bytes) d->at_start = false;
        return 0;
    }
    if (!buf || cap < 3 * total) return 3 * total;

    /* Input = held-back bytes + the piece, at the tail of buf. */
    size_t in = cap - total;
    memcpy(buf + in, d->pending, d->n_pending);
    sink s = {buf + in + d->n_pending, probe.n, 0, d->at_start, false};
    piece(d->vocab, id, d->render_special, &s);
    if (s.had_bytes) d->at_start = false;
    d->n_pending = 0;

    const unsigned char *p = (const unsigned char *)buf;
    size_t o = 0, r = in, end = in + total;
    while (r < end) {
        unsigned char lo, hi;
        size_t need = lead_info(p[r], &lo, &hi);
        if (need == 0) {
            memcpy(buf + o, REPLACEMENT, 3), o += 3, r++;
            continue;
        }
        size_t k = 1;
        for (; k < need && r + k < end; k++) {
            unsigned char c = p[r + k];
            if (k == 1 ? (c < lo || c > hi) : (c < 0x80 || c > 0xBF)) break;
        }
        if (k == need) {
            for (size_t i = 0; i < need; i++) buf[o++] = buf[r++];
        } else if (r + k == end) { /* a valid prefix cut by the end of input: hold it back */
            memcpy(d->pending, buf + r, k);
            d->n_pending = k;
            r = end;
        } else { /* cut short by a byte that cannot continue it */
            memcpy(buf + o, REPLACEMENT, 3), o += 3, r += k;
        }
    }
    return o;
}

size_t ig_detok_flush(ig_detok *d, char *buf, size_t cap) {
    if (d->n_pending == 0) return 0;
    if (!buf || cap < 3) return 3;
    memcpy(buf, REPLACEMENT, 3);
    d->n_pending = 0;
    return 3;
}
