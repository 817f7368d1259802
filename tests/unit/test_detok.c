/*
 * test_detok.c: ig_token_to_piece and the streaming detokenizer, on the
 * llama-spm vocab (whose byte tokens <0xNN> let a test feed any bytes).
 */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "format/gguf.h"
#include "testutil.h"
#include "tokenizer/vocab.h"

static ig_vocab *V;

static void setup(void) {
    ig_gguf *g = NULL;
    ig_error err = {0};
    cr_assert_eq(ig_gguf_open(ig_test_path("vocab/ggml-vocab-llama-spm.gguf"), &g, &err), IG_OK,
                 "%s", err.message);
    cr_assert_eq(ig_vocab_load(g, &V, &err), IG_OK, "%s", err.message);
    ig_gguf_free(g);
}

static void teardown(void) {
    ig_vocab_free(V);
}

TestSuite(detok, .init = setup, .fini = teardown);

/* The byte token for b. */
static int32_t B(unsigned b) {
    return V->byte_ids[b & 0xFF];
}

/* Stream ids (no space stripping) and flush; returns what came out, NUL-terminated, in out. */
static size_t stream(const int32_t *ids, size_t n, char *out, size_t *per_push) {
    ig_detok d;
    ig_detok_init(&d, V, false);
    d.at_start = false;
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        size_t k = ig_detok_push(&d, ids[i], out + o, ig_detok_bound(V));
        if (per_push) per_push[i] = k;
        o += k;
    }
    o += ig_detok_flush(&d, out + o, 3);
    out[o] = '\0';
    return o;
}

#define FFFD "\xef\xbf\xbd"

Test(detok, multibyte_char_split_over_byte_tokens) {
    int32_t ids[] = {B(0xC3), B(0xA9), B(0xF0), B(0x9F), B(0xA6), B(0x99)}; /* é 🦙 */
    size_t k[6];
    char out[256];
    size_t n = stream(ids, 6, out, k);
    cr_expect_str_eq(out, "\xc3\xa9\xf0\x9f\xa6\x99");
    cr_expect_eq(n, 6);
    size_t want[] = {0, 2, 0, 0, 0, 4}; /* nothing comes out until a character is whole */
    for (int i = 0; i < 6; i++) cr_expect_eq(k[i], want[i], "push %d gave %zu bytes", i, k[i]);
}

Test(detok, invalid_bytes_become_replacement_chars) {
    struct {
        unsigned bytes[4];
        size_t n;
        const char *want;
    } cases[] = {
        {{0xFF}, 1, FFFD},                                  /* can never start a sequence */
        {{0x80}, 1, FFFD},                                  /* stray continuation byte */
        {{0xC0, 0xAF}, 2, FFFD FFFD},                       /* overlong lead */
        {{0xE0, 0x80, 0x80}, 3, FFFD FFFD FFFD},            /* overlong 3-byte form */
        {{0xED, 0xA0, 0x80}, 3, FFFD FFFD FFFD},            /* a UTF-16 surrogate */
        {{0xF4, 0x90, 0x80, 0x80}, 4, FFFD FFFD FFFD FFFD}, /* above U+10FFFF */
        {{0xE2, 0x82, 0x41}, 3, FFFD "A"}, /* cut short: one U+FFFD, then the byte */
        {{0xF0, 0x9F, 0x98}, 3, FFFD},     /* incomplete at the end: flushed as one */
        {{0x41, 0xC3}, 2, "A" FFFD},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        int32_t ids[4];
        for (size_t i = 0; i < cases[c].n; i++) ids[i] = B(cases[c].bytes[i]);
        char out[256];
        stream(ids, cases[c].n, out, NULL);
        cr_expect_str_eq(out, cases[c].want, "case %zu", c);
    }
}

Test(detok, flush_behaviour) {
    ig_detok d;
    ig_detok_init(&d, V, false);
    char buf[256];
    cr_expect_eq(ig_detok_flush(&d, buf, sizeof buf), 0); /* nothing held */
    cr_expect_eq(ig_detok_push(&d, B(0xE2), buf, sizeof buf), 0);
    cr_expect_eq(ig_detok_push(&d, B(0x82), buf, sizeof buf), 0);
    cr_expect_eq(ig_detok_flush(&d, buf, 2), 3); /* too small: nothing changes */
    cr_expect_eq(d.n_pending, 2);
    cr_expect_eq(ig_detok_flush(&d, buf, 3), 3);
    cr_expect(memcmp(buf, FFFD, 3) == 0);
    cr_expect_eq(ig_detok_flush(&d, buf, 3), 0); /* once only */
    /* After a flush the stream starts clean: a full char passes straight through. */
    cr_expect_eq(ig_detok_push(&d, B(0x41), buf, sizeof buf), 1);
    cr_expect_eq(buf[0], 'A');
}

Test(detok, small_buffer_changes_nothing) {
    ig_detok d;
    ig_detok_init(&d, V, false);
    d.at_start = false;
    int32_t hello = ig_vocab_find(V, "\xe2\x96\x81Hello", 8);
    cr_assert(hello >= 0);
    char buf[64];
    cr_expect_eq(ig_detok_push(&d, B(0xC3), buf, sizeof buf), 0);
    size_t need = ig_detok_push(&d, hello, buf, 4); /* " Hello" plus a held byte: too big */
    cr_expect_gt(need, 4);
    cr_expect_eq(d.n_pending, 1);
    size_t n = ig_detok_push(&d, hello, buf, need);
    cr_expect_eq(n, 3 + 6);
    cr_expect(memcmp(buf, FFFD " Hello", 9) == 0);
}

Test(detok, leading_space_of_first_piece) {
    int32_t hello = ig_vocab_find(V, "\xe2\x96\x81Hello", 8);
    int32_t world = ig_vocab_find(V, "\xe2\x96\x81world", 8);
    cr_assert(hello >= 0 && world >= 0);
    int32_t ids[] = {V->bos_id, hello, world};
    char buf[256];
    ig_detok d;
    ig_detok_init(&d, V, false);
    size_t o = 0;
    for (int i = 0; i < 3; i++) o += ig_detok_push(&d, ids[i], buf + o, ig_detok_bound(V));
    buf[o] = '\0';
    cr_expect_str_eq(buf, "Hello world"); /* the unrendered BOS does not count as first */

    char *s = NULL;
    size_t len = 0;
    cr_assert_eq(ig_detokenize(V, ids, 3, false, &s, &len), IG_OK);
    cr_expect_str_eq(s, "Hello world");
    free(s);
    cr_assert_eq(ig_detokenize(V, ids, 3, true, &s, &len), IG_OK);
    cr_expect_str_eq(s, "<s> Hello world"); /* rendered BOS is the first piece */
    free(s);
}

Test(detok, token_to_piece) {
    char buf[16];
    cr_expect_eq(ig_token_to_piece(V, B(0x0A), false, buf, sizeof buf), 1);
    cr_expect_eq(buf[0], '\n');
    cr_expect_eq(ig_token_to_piece(V, V->bos_id, false, buf, sizeof buf), 0);
    cr_expect_eq(ig_token_to_piece(V, V->bos_id, true, buf, sizeof buf), 3);
    cr_expect(memcmp(buf, "<s>", 3) == 0);
    cr_expect_eq(ig_token_to_piece(V, V->unk_id, false, buf, sizeof buf), 0);
    int32_t hello = ig_vocab_find(V, "\xe2\x96\x81Hello", 8);
    memset(buf, 'x', sizeof buf);
    cr_expect_eq(ig_token_to_piece(V, hello, false, buf, 3), 6); /* cut: full length returned */
    cr_expect(memcmp(buf, " Hexxx", 6) == 0);
    cr_expect_eq(ig_token_to_piece(V, -1, true, buf, sizeof buf), 0);
    cr_expect_eq(ig_token_to_piece(V, V->n_tokens, true, buf, sizeof buf), 0);
    cr_expect_eq(ig_token_to_piece(V, hello, false, NULL, 0), 6);
}

/* Streaming and whole-sequence detokenizing agree on every llama.cpp vector (all valid UTF-8). */
Test(detok, stream_matches_whole_on_vectors) {
    size_t len = 0;
    char *outs = ig_test_read_file(ig_test_path("vocab/ggml-vocab-llama-spm.gguf.out"), &len);
    cr_assert_not_null(outs);
    size_t n_lines = 0;
    for (char *line = outs, *eol; line < outs + len; line = eol + 1, n_lines++) {
        eol = memchr(line, '\n', (size_t)(outs + len - line));
        if (!eol) eol = outs + len;
        int32_t ids[1024];
        size_t n = 0;
        for (char *p = line, *q; p < eol && n < 1024; p = q) {
            long x = strtol(p, &q, 10);
            if (q == p) break;
            ids[n++] = (int32_t)x;
        }
        char *whole = NULL;
        size_t wl = 0;
        cr_assert_eq(ig_detokenize(V, ids, n, false, &whole, &wl), IG_OK);
        char *streamed = malloc(n * ig_detok_bound(V) + 8);
        ig_detok d;
        ig_detok_init(&d, V, false);
        size_t o = 0;
        for (size_t i = 0; i < n; i++)
            o += ig_detok_push(&d, ids[i], streamed + o, ig_detok_bound(V));
        o += ig_detok_flush(&d, streamed + o, 3);
        cr_expect(o == wl && memcmp(streamed, whole, wl) == 0, "line %zu differs", n_lines);
        free(streamed);
        free(whole);
    }
    cr_expect_gt(n_lines, 40);
    free(outs);
}
