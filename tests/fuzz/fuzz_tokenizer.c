/*
 * fuzz_tokenizer.c: libFuzzer driver for the tokenizer and detokenizer.
 *
 * The vocabs come from the test data (IGNIS_TEST_DATA, default ../shared):
 * llama-spm (SPM), bert-bge (WPM) and gpt-2 (BPE) where present. Each input
 * is tokenized with every option combination by each vocab; the ids must be
 * in range and detokenize without error. The input is also read as a stream
 * of token ids (2 bytes each) for the streaming detokenizer, whose output
 * must always be valid UTF-8, whatever the ids.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "format/gguf.h"
#include "tokenizer/vocab.h"

static ig_vocab *vocabs[3];
static int n_vocabs;

static void load(const char *name) {
    const char *root = getenv("IGNIS_TEST_DATA");
    char path[4096];
    snprintf(path, sizeof path, "%s/vocab/ggml-vocab-%s.gguf", root && *root ? root : "../shared",
             name);
    ig_gguf *g = NULL;
    if (ig_gguf_open(path, &g, NULL) != IG_OK) return;
    ig_vocab *v = NULL;
    if (ig_vocab_load(g, &v, NULL) == IG_OK) vocabs[n_vocabs++] = v;
    ig_gguf_free(g);
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    load("llama-spm");
    load("bert-bge");
    load("gpt-2");
    if (n_vocabs == 0) {
        fprintf(stderr, "fuzz_tokenizer: no vocab found; set IGNIS_TEST_DATA\n");
        abort();
    }
    return 0;
}

/* Whether s[0..n) is valid UTF-8 (no overlongs, surrogates, or values above U+10FFFF). */
static int valid_utf8(const unsigned char *s, size_t n) {
    for (size_t i = 0; i < n;) {
        unsigned char c = s[i];
        size_t k;
        unsigned char lo = 0x80, hi = 0xBF;
        if (c < 0x80)
            k = 1;
        else if (c >= 0xC2 && c <= 0xDF)
            k = 2;
        else if (c == 0xE0)
            k = 3, lo = 0xA0;
        else if (c == 0xED)
            k = 3, hi = 0x9F;
        else if (c >= 0xE1 && c <= 0xEF)
            k = 3;
        else if (c == 0xF0)
            k = 4, lo = 0x90;
        else if (c == 0xF4)
            k = 4, hi = 0x8F;
        else if (c >= 0xF1 && c <= 0xF3)
            k = 4;
        else
            return 0;
        if (i + k > n) return 0;
        for (size_t j = 1; j < k; j++) {
            unsigned char b = s[i + j];
            if (j == 1 ? (b < lo || b > hi) : (b < 0x80 || b > 0xBF)) return 0;
        }
        i += k;
    }
    return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    for (int k = 0; k < n_vocabs; k++) {
        const ig_vocab *v = vocabs[k];
        for (int opt = 0; opt < 4; opt++) {
            ig_tokens t = {0};
            ig_tokenize_opts o = {.add_special = opt & 1, .parse_special = (opt & 2) != 0};
            ig_error err = {0};
            if (ig_tokenize(v, (const char *)data, size, o, &t, &err) != IG_OK) __builtin_trap();
            for (size_t i = 0; i < t.n; i++)
                if (t.ids[i] < 0 || t.ids[i] >= v->n_tokens) __builtin_trap();
            char *text = NULL;
            size_t len = 0;
            if (ig_detokenize(v, t.ids, t.n, opt & 1, &text, &len) != IG_OK) __builtin_trap();
            if (strlen(text) > len) __builtin_trap(); /* NUL-terminated at len */
            free(text);
            ig_tokens_free(&t);
        }

        /* The input as raw ids: the streaming output is always valid UTF-8. */
        size_t bound = ig_detok_bound(v);
        char *buf = malloc(bound);
        ig_detok d;
        ig_detok_init(&d, v, size & 1);
        for (size_t i = 0; i + 1 < size; i += 2) {
            int32_t id = (int32_t)((data[i] | data[i + 1] << 8) % (unsigned)(v->n_tokens + 2)) - 1;
            size_t n = ig_detok_push(&d, id, buf, bound);
            if (n > bound || !valid_utf8((const unsigned char *)buf, n)) __builtin_trap();
        }
        size_t n = ig_detok_flush(&d, buf, bound);
        if (n > 3 || !valid_utf8((const unsigned char *)buf, n)) __builtin_trap();
        free(buf);
    }
    return 0;
}
