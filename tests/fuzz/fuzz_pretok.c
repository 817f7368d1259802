/*
 * fuzz_pretok.c: libFuzzer driver for the BPE pre-tokenizers.
 *
 * The first input byte picks a pre-tokenizer, the rest is the text (any
 * bytes). The split must succeed (or give up with IG_ERANGE on a pathological
 * input), its pieces must be non-empty and cover the normalized text exactly,
 * and text in canonical UTF-8 must come back unchanged.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tokenizer/pretok.h"

static const char *const names[] = {
    "default",        "llama3",     "dbrx",       "jais-2",    "deepseek-llm", "deepseek-v3",
    "deepseek-coder", "falcon",     "starcoder",  "gpt-2",     "qwen2",        "qwen35",
    "poro-chat",      "viking",     "tekken",     "chameleon", "gpt-4o",       "inkling",
    "superbpe",       "bailingmoe", "seed-coder", "minicpm5",  "laguna",       "exaone-moe"};
#define N_NAMES (sizeof names / sizeof names[0])

static ig_pretok *pretoks[N_NAMES];

/* Whether every character re-encodes to its own bytes (no bad bytes, no overlong forms). */
static bool canonical_utf8(const uint8_t *s, size_t len) {
    for (size_t i = 0; i < len;) {
        uint32_t cp;
        char enc[4];
        size_t n = ig__utf8_decode(s + i, len - i, &cp);
        if (ig__utf8_encode(cp, enc) != n || memcmp(enc, s + i, n) != 0) return false;
        i += n;
    }
    return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    size_t which = data[0] % N_NAMES;
    if (!pretoks[which] && ig__pretok_new(names[which], &pretoks[which], NULL) != IG_OK) abort();
    const char *text = (const char *)data + 1;
    size_t len = size - 1;

    ig_pretok_pieces pc = {0};
    ig_status st = ig__pretok_split(pretoks[which], text, len, &pc);
    if (st == IG_ERANGE) {
        ig__pretok_pieces_free(&pc);
        return 0;
    }
    if (st != IG_OK) abort();
    size_t prev = 0;
    for (size_t k = 0; k < pc.n; k++) {
        if (pc.ends[k] <= prev) abort();
        prev = pc.ends[k];
    }
    if (prev != pc.text_len) abort();
    if (canonical_utf8(data + 1, len) && (pc.text_len != len || memcmp(pc.text, text, len) != 0))
        abort();
    ig__pretok_pieces_free(&pc);
    return 0;
}
