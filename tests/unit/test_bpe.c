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
#include <unistd.h>

#include "format/gguf.h"
#include "format/gguf_writer.h"
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

/*
 * Rewritten regexes against llama.cpp's original spelling: the o200k-style
 * letter classes and superbpe's digit grouping are run in a faster form (see
 * pretok.c); on random text both must cut identically.
 */
#define ORIG_CONTR "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])"
#define ORIG_O200K(LM)                                                                             \
    "[^\\r\\n\\p{L}\\p{N}]?((?=[" LM "])([^a-z]))*((?=[" LM "])([^A-Z]))+" ORIG_CONTR              \
    "?|[^\\r\\n\\p{L}\\p{N}]?((?=[" LM "])([^a-z]))+((?=[" LM "])([^A-Z]))*" ORIG_CONTR            \
    "?|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"

static void random_text(char *buf, size_t cap, size_t *len) {
    static const char *const atoms[] = {"a",
                                        "b",
                                        "Z",
                                        "Q",
                                        "s",
                                        "S",
                                        "t",
                                        "T",
                                        "l",
                                        "L",
                                        "e",
                                        "E",
                                        "r",
                                        "R",
                                        "v",
                                        "V",
                                        "m",
                                        "d",
                                        "'",
                                        "0",
                                        "7",
                                        "1",
                                        " ",
                                        " ",
                                        "  ",
                                        "\n",
                                        "\r\n",
                                        "\t",
                                        "/",
                                        ".",
                                        ",",
                                        "!",
                                        "~",
                                        "$",
                                        "-",
                                        "\xC3\xA9" /* é */,
                                        "\xC3\x89" /* É */,
                                        "\xE4\xB8\x96" /* 世 */,
                                        "\xCC\x81" /* U+0301 */,
                                        "\xD9\xA3" /* Arabic-Indic 3 */,
                                        "\xC2\xA0" /* NBSP */,
                                        "\xF0\x9F\x98\x80" /* emoji */};
    size_t n_atoms = sizeof atoms / sizeof atoms[0], o = 0;
    size_t want = (size_t)(rand() % 40);
    for (size_t i = 0; i < want; i++) {
        const char *a = atoms[rand() % (int)n_atoms];
        size_t l = strlen(a);
        if (o + l >= cap) break;
        memcpy(buf + o, a, l);
        o += l;
    }
    *len = o;
}

static void check_same_cuts(const char *name_a, const char *const *ra, const char *name_b,
                            const char *const *rb) {
    ig_pretok *a = NULL, *b = NULL;
    ig_error err = {0};
    if (name_a)
        cr_assert_eq(ig__pretok_new(name_a, &a, &err), IG_OK, "%s", err.message);
    else
        cr_assert_eq(ig__pretok_new_regexes("a", ra, 0, &a, &err), IG_OK, "%s", err.message);
    if (name_b)
        cr_assert_eq(ig__pretok_new(name_b, &b, &err), IG_OK, "%s", err.message);
    else
        cr_assert_eq(ig__pretok_new_regexes("b", rb, 0, &b, &err), IG_OK, "%s", err.message);
    ig_pretok_pieces pa = {0}, pb = {0};
    srand(777);
    for (int iter = 0; iter < 2000; iter++) {
        char text[256];
        size_t len;
        random_text(text, sizeof text, &len);
        cr_assert_eq(ig__pretok_split(a, text, len, &pa), IG_OK);
        cr_assert_eq(ig__pretok_split(b, text, len, &pb), IG_OK);
        bool same = pa.n == pb.n && memcmp(pa.ends, pb.ends, pa.n * sizeof *pa.ends) == 0;
        cr_assert(same, "%s: cuts differ on \"%.*s\" (%zu vs %zu pieces)", name_a ? name_a : name_b,
                  (int)len, text, pa.n, pb.n);
    }
    ig__pretok_pieces_free(&pa);
    ig__pretok_pieces_free(&pb);
    ig__pretok_free(a);
    ig__pretok_free(b);
}

Test(pretok, rewritten_o200k_classes_cut_like_the_original) {
    static const char *const gpt4o[] = {ORIG_O200K("\\p{L}"), NULL};
    static const char *const inkling[] = {ORIG_O200K("\\p{L}\\p{M}"), NULL};
    static const char *const tekken[] = {
        "[^\\r\\n\\p{L}\\p{N}]?((?=[\\p{L}])([^a-z]))*((?=[\\p{L}])([^A-Z]))+|"
        "[^\\r\\n\\p{L}\\p{N}]?((?=[\\p{L}])([^a-z]))+((?=[\\p{L}])([^A-Z]))*|"
        "\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
        NULL};
    check_same_cuts("gpt-4o", NULL, NULL, gpt4o);
    check_same_cuts("inkling", NULL, NULL, inkling);
    check_same_cuts("tekken", NULL, NULL, tekken);
}

Test(pretok, digit_threes_cut_like_the_lookahead_regex) {
    /* a different spelling of superbpe's regex, so that it runs through PCRE2 */
    static const char *const superbpe[] = {"\\p{N}+", "(?=(?:\\d{3})+(?!\\d))", NULL};
    check_same_cuts("superbpe", NULL, NULL, superbpe);
}

Test(pretok, regex_error_is_reported) {
    static const char *const bad[] = {"[a-", NULL};
    ig_pretok *p = NULL;
    ig_error err = {0};
    cr_assert_eq(ig__pretok_new_regexes("bad", bad, 0, &p, &err), IG_EINTERNAL);
    cr_assert_null(p);
    cr_assert(strstr(err.message, "regex 0") != NULL, "%s", err.message);
}

/* ---- the byte-level BPE vocabularies in the test data ---- */

static const char *const bpe_vocabs[] = {"gpt-2",  "falcon",         "mpt",         "starcoder",
                                         "refact", "deepseek-coder", "deepseek-llm"};

static ig_vocab *load_vocab(const char *name) {
    char rel[128];
    snprintf(rel, sizeof rel, "vocab/ggml-vocab-%s.gguf", name);
    ig_gguf *g = NULL;
    ig_vocab *v = NULL;
    ig_error err = {0};
    cr_assert_eq(ig_gguf_open(ig_test_path(rel), &g, &err), IG_OK, "%s: %s", name, err.message);
    cr_assert_eq(ig_vocab_load(g, &v, &err), IG_OK, "%s: %s", name, err.message);
    ig_gguf_free(g);
    cr_assert_eq(v->type, IG_VOCAB_BPE, "%s is not byte-level BPE", name);
    return v;
}

/* The next test string of an .inp file (cases end with "\n__ggml_vocab_test__\n"). */
static bool next_case(char **cur, char *end, char **text, size_t *len) {
    static const char sep[] = "\n__ggml_vocab_test__\n";
    if (*cur >= end) return false;
    char *m = memmem(*cur, (size_t)(end - *cur), sep, sizeof sep - 1);
    *text = *cur;
    *len = m ? (size_t)(m - *cur) : (size_t)(end - *cur);
    *cur = m ? m + sizeof sep - 1 : end;
    return true;
}

/* detokenize(tokenize(text)) == text */
static void check_roundtrip(const ig_vocab *v, const char *name, const char *text, size_t len) {
    ig_tokens t = {0};
    ig_error err = {0};
    ig_tokenize_opts opts = {.add_special = false, .parse_special = false};
    cr_assert_eq(ig_tokenize(v, text, len, opts, &t, &err), IG_OK, "%s: %s", name, err.message);
    char *back = NULL;
    size_t back_len = 0;
    cr_assert_eq(ig_detokenize(v, t.ids, t.n, false, &back, &back_len), IG_OK);
    cr_assert(back_len == len && memcmp(back, text, len) == 0, "%s: \"%.*s\" detokenizes to \"%s\"",
              name, (int)(len < 200 ? len : 200), text, back);
    free(back);
    ig_tokens_free(&t);
}

Test(bpe_vectors, llama_cpp_vectors_and_roundtrip) {
    for (size_t i = 0; i < sizeof bpe_vocabs / sizeof bpe_vocabs[0]; i++) {
        const char *name = bpe_vocabs[i];
        ig_vocab *v = load_vocab(name);
        char rel[128];
        size_t inp_len = 0, out_len = 0;
        snprintf(rel, sizeof rel, "vocab/ggml-vocab-%s.gguf.inp", name);
        char *inp = ig_test_read_file(ig_test_path(rel), &inp_len);
        snprintf(rel, sizeof rel, "vocab/ggml-vocab-%s.gguf.out", name);
        char *outs = ig_test_read_file(ig_test_path(rel), &out_len);
        cr_assert(inp && outs, "%s: cannot read the vectors", name);

        char *cur = inp, *text, *line = outs;
        size_t len, n_cases = 0;
        while (next_case(&cur, inp + inp_len, &text, &len)) {
            char *eol = strchr(line, '\n');
            cr_assert_not_null(eol, "%s: .out has fewer lines than cases", name);
            *eol = '\0';
            ig_tokens t = {0};
            ig_error err = {0};
            ig_tokenize_opts opts = {.add_special = false, .parse_special = false};
            cr_assert_eq(ig_tokenize(v, text, len, opts, &t, &err), IG_OK, "%s", err.message);
            char got[4096];
            size_t o = 0;
            got[0] = '\0';
            for (size_t k = 0; k < t.n && o + 16 < sizeof got; k++)
                o += (size_t)snprintf(got + o, sizeof got - o, "%s%d", k ? " " : "", t.ids[k]);
            char *want = line;
            while (*want == ' ') want++;
            size_t wl = strlen(want);
            while (wl > 0 && want[wl - 1] == ' ') want[--wl] = '\0';
            cr_expect_str_eq(got, want, "%s case %zu \"%.*s\"", name, n_cases, (int)len, text);
            ig_tokens_free(&t);
            check_roundtrip(v, name, text, len);
            line = eol + 1;
            n_cases++;
        }
        cr_expect_eq(n_cases, 46, "%s: %zu cases", name, n_cases);
        free(inp);
        free(outs);
        ig_vocab_free(v);
    }
}

Test(bpe_vectors, gpt_neox_default_pre_roundtrips) {
    /* no tokenizer.ggml.pre: the "default" regex list; no vectors, so check losslessness */
    ig_vocab *v = load_vocab("gpt-neox");
    cr_assert_str_eq(v->pre, "default");
    size_t inp_len = 0;
    char *inp = ig_test_read_file(ig_test_path("vocab/ggml-vocab-gpt-2.gguf.inp"), &inp_len);
    cr_assert_not_null(inp);
    char *cur = inp, *text;
    size_t len;
    while (next_case(&cur, inp + inp_len, &text, &len)) check_roundtrip(v, "gpt-neox", text, len);
    free(inp);
    ig_vocab_free(v);
}

Test(bpe_vectors, long_runs_and_odd_bytes_roundtrip) {
    const size_t n = 100000;
    char *s = malloc(n + 1);
    cr_assert_not_null(s);
    ig_vocab *v = load_vocab("gpt-2");
    memset(s, ' ', n); /* one long whitespace piece */
    check_roundtrip(v, "spaces", s, n);
    for (size_t i = 0; i < n; i++) s[i] = (char)('0' + i % 10); /* one long number piece */
    check_roundtrip(v, "digits", s, n);
    for (size_t i = 0; i < n; i++) s[i] = 'a'; /* one long word: every pair merges alike */
    check_roundtrip(v, "letters", s, n);
    ig_vocab_free(v);

    /*
     * Every ASCII byte, controls included, in vocabularies that hold all 256 byte
     * tokens (falcon's lacks some control bytes, which then vanish, as in llama.cpp).
     */
    char ascii[128];
    for (int i = 0; i < 128; i++) ascii[i] = (char)(127 - i);
    const char *names[] = {"gpt-2", "deepseek-llm", "starcoder", "mpt"};
    for (size_t k = 0; k < sizeof names / sizeof names[0]; k++) {
        v = load_vocab(names[k]);
        check_roundtrip(v, names[k], ascii, sizeof ascii);
        check_roundtrip(v, names[k], s, 5000);
        ig_vocab_free(v);
    }
    free(s);
}

/* ---- a tiny hand-made vocabulary: merge order, ties, fallback, ignore_merges, BOS defaults ----
 */

static const char *const tiny_tokens[] = {"a", "b", "c", "ab", "bc", "abc", "x", "y", "ca", "aa"};
enum { T_A, T_B, T_C, T_AB, T_BC, T_ABC, T_X, T_Y, T_CA, T_AA };
/* "x y" makes "xy", which is no token; "aa" comes from the tie rule */
static const char *const tiny_merges[] = {"b c", "a b", "a bc", "x y", "a a"};

static ig_gguf_value str_array(const char *const *s, size_t n, ig_gguf_value *items) {
    for (size_t i = 0; i < n; i++)
        items[i] = (ig_gguf_value){.type = IG_GGUF_STRING, .v.str = {s[i], strlen(s[i])}};
    ig_gguf_value v = {.type = IG_GGUF_ARRAY};
    v.v.arr.elem_type = IG_GGUF_STRING;
    v.v.arr.n = n;
    v.v.arr.items = items;
    return v;
}

static ig_vocab *tiny_vocab(const char *pre) {
    char path[] = "/tmp/ignis_test_bpe_XXXXXX";
    int fd = mkstemp(path);
    cr_assert(fd >= 0);
    close(fd);
    ig_error err = {0};
    ig_gguf_writer *w = NULL;
    ig_gguf_value items[16];
    cr_assert_eq(ig_gguf_writer_new(&w, &err), IG_OK, "%s", err.message);
    cr_assert_eq(ig_gguf_writer_add_str(w, "tokenizer.ggml.model", "gpt2", &err), IG_OK);
    cr_assert_eq(ig_gguf_writer_add_str(w, "tokenizer.ggml.pre", pre, &err), IG_OK);
    ig_gguf_value toks = str_array(tiny_tokens, sizeof tiny_tokens / sizeof *tiny_tokens, items);
    cr_assert_eq(ig_gguf_writer_add_value(w, "tokenizer.ggml.tokens", &toks, &err), IG_OK, "%s",
                 err.message);
    ig_gguf_value merges = str_array(tiny_merges, sizeof tiny_merges / sizeof *tiny_merges, items);
    cr_assert_eq(ig_gguf_writer_add_value(w, "tokenizer.ggml.merges", &merges, &err), IG_OK, "%s",
                 err.message);
    cr_assert_eq(ig_gguf_writer_open(w, path, &err), IG_OK, "%s", err.message);
    cr_assert_eq(ig_gguf_writer_close(w, &err), IG_OK, "%s", err.message);
    ig_gguf_writer_free(w);

    ig_gguf *g = NULL;
    ig_vocab *v = NULL;
    cr_assert_eq(ig_gguf_open(path, &g, &err), IG_OK, "%s", err.message);
    cr_assert_eq(ig_vocab_load(g, &v, &err), IG_OK, "%s", err.message);
    ig_gguf_free(g);
    unlink(path);
    return v;
}

static void expect_ids(const ig_vocab *v, const char *text, const int32_t *want, size_t n_want) {
    ig_tokens t = {0};
    cr_assert_eq(ig__bpe_encode(v, text, strlen(text), &t), IG_OK);
    bool same = t.n == n_want && memcmp(t.ids, want, n_want * sizeof *want) == 0;
    cr_assert(same, "%s on \"%s\": got %zu ids (first %d), want %zu", v->pre, text, t.n,
              t.n ? t.ids[0] : -1, n_want);
    ig_tokens_free(&t);
}

#define IDS(v, text, ...)                                                                          \
    expect_ids(v, text, (const int32_t[]){__VA_ARGS__},                                            \
               sizeof((const int32_t[]){__VA_ARGS__}) / sizeof(int32_t))

Test(bpe_tiny, merge_order_ties_and_fallback) {
    ig_vocab *v = tiny_vocab("gpt-2");
    IDS(v, "abc", T_ABC); /* "b c" (rank 0) before "a b" (rank 1), then "a bc" */
    IDS(v, "ab", T_AB);
    IDS(v, "aaa", T_AA, T_A); /* equal ranks: the leftmost pair merges first */
    IDS(v, "xy", T_X, T_Y);   /* "xy" is no token: its characters' tokens instead */
    IDS(v, "ca", T_C, T_A);   /* "ca" is a token but no merge makes it */
    cr_assert_not(v->add_bos);
    ig_vocab_free(v);
}

Test(bpe_tiny, ignore_merges_and_bos_defaults_follow_the_pre_tokenizer) {
    ig_vocab *v = tiny_vocab("llama-bpe"); /* llama3: a piece that is a token is taken whole */
    IDS(v, "ca", T_CA);
    IDS(v, "xy", T_X, T_Y);
    cr_assert(v->add_bos);
    ig_vocab_free(v);
    v = tiny_vocab("dbrx"); /* same regex, merges not skipped */
    IDS(v, "ca", T_C, T_A);
    cr_assert_not(v->add_bos);
    ig_vocab_free(v);
    v = tiny_vocab("chatglm-bpe");
    cr_assert_eq(v->bos_id, -1);
    ig_vocab_free(v);
}

Test(bpe_tiny, unknown_pre_fails_the_load) {
    char path[] = "/tmp/ignis_test_bpe_XXXXXX";
    int fd = mkstemp(path);
    cr_assert(fd >= 0);
    close(fd);
    ig_error err = {0};
    ig_gguf_writer *w = NULL;
    ig_gguf_value items[16];
    cr_assert_eq(ig_gguf_writer_new(&w, &err), IG_OK);
    cr_assert_eq(ig_gguf_writer_add_str(w, "tokenizer.ggml.model", "gpt2", &err), IG_OK);
    cr_assert_eq(ig_gguf_writer_add_str(w, "tokenizer.ggml.pre", "martian", &err), IG_OK);
    ig_gguf_value toks = str_array(tiny_tokens, sizeof tiny_tokens / sizeof *tiny_tokens, items);
    cr_assert_eq(ig_gguf_writer_add_value(w, "tokenizer.ggml.tokens", &toks, &err), IG_OK);
    ig_gguf_value merges = str_array(tiny_merges, sizeof tiny_merges / sizeof *tiny_merges, items);
    cr_assert_eq(ig_gguf_writer_add_value(w, "tokenizer.ggml.merges", &merges, &err), IG_OK);
    cr_assert_eq(ig_gguf_writer_open(w, path, &err), IG_OK);
    cr_assert_eq(ig_gguf_writer_close(w, &err), IG_OK);
    ig_gguf_writer_free(w);
    ig_gguf *g = NULL;
    ig_vocab *v = NULL;
    cr_assert_eq(ig_gguf_open(path, &g, &err), IG_OK);
    cr_assert_eq(ig_vocab_load(g, &v, &err), IG_EUNSUPPORTED);
    cr_assert_null(v);
    cr_assert(strstr(err.message, "pre-tokenizer 'martian' is not supported"), "%s", err.message);
    ig_gguf_free(g);
    unlink(path);
}
