/*
 * test_bpe.c: byte-level BPE. The byte alphabet (a bijection, known fixed
 * points), each pre-tokenizer on hand-written strings whose expected pieces
 * were worked out from the model's regex, and every byte-level BPE vocabulary
 * in the test data against llama.cpp's tokenizer vectors (vocab/NAME.gguf.inp
 * and .out), plus detokenize(tokenize(x)) == x on them.
 */
#include <criterion/criterion.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "format/gguf.h"
#include "tokenizer/pretok.h"
#include "tokenizer/vocab.h"
#include "testutil.h"

/* ---- byte alphabet ---- */

Test(bpe_bytes, map_is_a_bijection) {
    char seen[256][4];
    size_t seen_len[256];
    for (int b = 0; b < 256; b++) {
        char byte = (char)b, out[8];
        size_t n = ig__bpe_map(&byte, 1, out, sizeof out);
        cr_assert(n >= 1 && n <= 2, "byte %d maps to %zu bytes", b, n);
        memcpy(seen[b], out, n);
        seen_len[b] = n;
        for (int c = 0; c < b; c++)
            cr_assert(!(seen_len[c] == n && memcmp(seen[c], out, n) == 0),
                      "bytes %d and %d map to the same text", c, b);
        char back[8];
        cr_assert_eq(ig__bpe_unmap(out, n, back, sizeof back), 1);
        cr_assert_eq((unsigned char)back[0], b);
    }
}

Test(bpe_bytes, known_points) {
    /* GPT-2's alphabet: printable bytes stand for themselves, ' ' is U+0120, '\n' U+010A. */
    char out[8];
    cr_assert_eq(ig__bpe_map(" ", 1, out, sizeof out), 2);
    cr_assert_eq(memcmp(out, "\xC4\xA0", 2), 0);
    cr_assert_eq(ig__bpe_map("\n", 1, out, sizeof out), 2);
    cr_assert_eq(memcmp(out, "\xC4\x8A", 2), 0);
    cr_assert_eq(ig__bpe_map("a", 1, out, sizeof out), 1);
    cr_assert_eq(out[0], 'a');
    cr_assert_eq(ig__bpe_map("\xAD", 1, out, sizeof out), 2); /* the last remapped byte: U+0143 */
    cr_assert_eq(memcmp(out, "\xC5\x83", 2), 0);
    cr_assert_eq(ig__bpe_map("\xE9", 1, out, sizeof out), 2); /* 0xE9 stands for U+00E9 */
    cr_assert_eq(memcmp(out, "\xC3\xA9", 2), 0);
}

Test(bpe_bytes, random_roundtrip_and_truncation) {
    srand(12345);
    for (int iter = 0; iter < 200; iter++) {
        size_t n = (size_t)(rand() % 300);
        char bytes[300], mapped[600], back[300];
        for (size_t i = 0; i < n; i++) bytes[i] = (char)(rand() & 0xFF);
        size_t m = ig__bpe_map(bytes, n, mapped, sizeof mapped);
        cr_assert(m <= sizeof mapped);
        cr_assert_eq(ig__bpe_unmap(mapped, m, back, sizeof back), n);
        cr_assert_eq(memcmp(bytes, back, n), 0);
        /* a short buffer gets a prefix and the full length */
        char small[7];
        cr_assert_eq(ig__bpe_unmap(mapped, m, small, sizeof small), n);
        cr_assert_eq(memcmp(small, bytes, n < 7 ? n : 7), 0);
    }
}

Test(bpe_bytes, unmap_keeps_foreign_characters) {
    /* an added token's text in plain Unicode ("é" as U+00E9 is in the alphabet, "€" is not) */
    char out[16];
    size_t n = ig__bpe_unmap("\xE2\x82\xAC!", 4, out, sizeof out);
    cr_assert_eq(n, 4);
    cr_assert_eq(memcmp(out, "\xE2\x82\xAC!", 4), 0);
}

/* ---- pre-tokenizers ---- */

static void check_split(const char *pre, const char *text, const char *const *expect) {
    ig_pretok *p = NULL;
    ig_error err = {0};
    cr_assert_eq(ig__pretok_new(pre, &p, &err), IG_OK, "%s: %s", pre, err.message);
    ig_pretok_pieces pc = {0};
    cr_assert_eq(ig__pretok_split(p, text, strlen(text), &pc), IG_OK);
    size_t n_expect = 0;
    while (expect[n_expect]) n_expect++;
    size_t start = 0;
    for (size_t i = 0; i < pc.n && i < n_expect; i++) {
        size_t len = pc.ends[i] - start;
        cr_assert(len == strlen(expect[i]) && memcmp(pc.text + start, expect[i], len) == 0,
                  "%s on \"%s\": piece %zu is \"%.*s\", expected \"%s\"", pre, text, i, (int)len,
                  pc.text + start, expect[i]);
        start = pc.ends[i];
    }
    cr_assert_eq(pc.n, n_expect, "%s on \"%s\": %zu pieces, expected %zu", pre, text, pc.n,
                 n_expect);
    ig__pretok_pieces_free(&pc);
    ig__pretok_free(p);
}

#define SPLIT(pre, text, ...) check_split(pre, text, (const char *const[]){__VA_ARGS__, NULL})

Test(pretok, gpt2) {
    SPLIT("gpt-2", "Hello world's 123", "Hello", " world", "'s", " 123");
    SPLIT("gpt-2", "  Hello", " ", " Hello");
    SPLIT("gpt-2", "a  \n b", "a", "  \n", " b");
    SPLIT("gpt-2", "hello!!! 3.14", "hello", "!!!", " 3", ".", "14");
    SPLIT("gpt-2", "don'T I'm", "don", "'", "T", " I", "'m"); /* case-sensitive 's */
    SPLIT("gpt-2",
          "caf\xC3\xA9 \xC3\xBC"
          "ber",
          "caf\xC3\xA9",
          " \xC3\xBC"
          "ber");                                       /* café über */
    SPLIT("gpt-2", "x\xC2\xA0y", "x", "\xC2\xA0", "y"); /* NBSP is whitespace */
    SPLIT("gpt-2",
          "a\xFF"
          "b",
          "a", "\xEF\xBF\xBD", "b"); /* a bad byte becomes U+FFFD */
    SPLIT("mpt", "end  ", "end", "  ");
}

Test(pretok, llama3) {
    SPLIT("llama-bpe", "Hello world's 1234567", "Hello", " world", "'s", " ", "123", "456", "7");
    SPLIT("llama3", "I'M", "I", "'M"); /* contractions ignore case */
    SPLIT("llama3", "hi!\n\nthere", "hi", "!\n\n", "there");
    SPLIT("llama3", "a \n\n  b", "a", " \n\n", " ", " b");
}

Test(pretok, qwen2_digits_one_by_one) {
    SPLIT("qwen2", "abc 12345", "abc", " ", "1", "2", "3", "4", "5");
}

Test(pretok, deepseek_coder) {
    SPLIT("deepseek-coder", "foo(x) 42\n", "foo", "(", "x", ")", " ", "4", "2", "\n");
}

Test(pretok, deepseek_llm) {
    /* "Hello, 世界 42!" */
    SPLIT("deepseek-llm", "Hello, \xE4\xB8\x96\xE7\x95\x8C 42!", "Hello", ",", " ",
          "\xE4\xB8\x96\xE7\x95\x8C", " ", "42", "!");
}

Test(pretok, falcon_and_default) {
    SPLIT("falcon", "a+b=12345!", "a", "+", "b", "=", "123", "45", "!");
    /* default (no tokenizer.ggml.pre): punctuation is cut first, so "'s" does not survive */
    SPLIT("default", "it's 12345.", "it", "'", "s", " ", "123", "45", ".");
}

Test(pretok, starcoder_family) {
    SPLIT("starcoder", "x=123", "x", "=", "1", "2", "3");
    SPLIT("refact", "x=123", "x", "=", "1", "2", "3");
    SPLIT("command-r", "x=123", "x", "=", "1", "2", "3");
}

Test(pretok, poro_and_bloom) {
    SPLIT("bloom", "Hello, world! (x)", "Hello", ",", " world", "! (", "x", ")");
}

Test(pretok, superbpe_groups_digits_from_the_right) {
    /* empty lookahead matches cut "1234567" into 1|234|567 */
    SPLIT("superbpe", "ab 1234567", "ab ", "1", "234", "567");
}

Test(pretok, tekken_case_runs) {
    SPLIT("tekken", "HelloWorld ABC", "Hello", "World", " ABC");
}

Test(pretok, chameleon) {
    SPLIT("chameleon", "<sentinel:12>ab12", "<", "sentinel", ":", "1", "2", ">", "ab", "1", "2");
}

Test(pretok, unknown_name_is_unsupported) {
    ig_pretok *p = NULL;
    ig_error err = {0};
    cr_assert_eq(ig__pretok_new("no-such-pre", &p, &err), IG_EUNSUPPORTED);
    cr_assert_null(p);
    cr_assert_str_eq(err.message, "pre-tokenizer 'no-such-pre' is not supported");
}

Test(pretok, every_known_name_compiles_and_partitions) {
    static const char *names[] = {"default",
                                  "llama3",
                                  "dbrx",
                                  "jais-2",
                                  "deepseek-llm",
                                  "deepseek-v3",
                                  "deepseek-coder",
                                  "falcon",
                                  "starcoder",
                                  "gpt-2",
                                  "qwen2",
                                  "qwen35",
                                  "poro-chat",
                                  "viking",
                                  "tekken",
                                  "chameleon",
                                  "gpt-4o",
                                  "inkling",
                                  "granite-embed-multi-97m",
                                  "superbpe",
                                  "bailingmoe",
                                  "seed-coder",
                                  "minicpm5",
                                  "laguna",
                                  "exaone-moe"};
    static const char text[] = "Hello, World! It's 2024-01-01\r\n\t  x  \xE4\xB8\x96\xE7\x95\x8C"
                               "\xC2\xA0\xF0\x9F\x98\x80 caf\xC3\xA9 ~~~ 1234567  ";
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        ig_pretok *p = NULL;
        ig_error err = {0};
        cr_assert_eq(ig__pretok_new(names[i], &p, &err), IG_OK, "%s: %s", names[i], err.message);
        ig_pretok_pieces pc = {0};
        cr_assert_eq(ig__pretok_split(p, text, sizeof text - 1, &pc), IG_OK, "%s", names[i]);
        cr_assert_eq(pc.text_len, sizeof text - 1);
        cr_assert_eq(memcmp(pc.text, text, pc.text_len), 0);
        size_t prev = 0;
        for (size_t k = 0; k < pc.n; k++) {
            cr_assert_gt(pc.ends[k], prev, "%s: empty piece %zu", names[i], k);
            prev = pc.ends[k];
        }
        cr_assert_eq(prev, pc.text_len, "%s: pieces do not cover the text", names[i]);
        ig__pretok_pieces_free(&pc);
        ig__pretok_free(p);
    }
}
