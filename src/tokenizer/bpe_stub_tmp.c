/*
 * bpe_stub_tmp.c: TEMPORARY placeholder for the byte-level BPE (bpe.c, written
 * in branch `bpe`). It only lets the tokenizer link before bpe.c lands: every
 * gpt2-model vocab fails to load with IG_EUNSUPPORTED. The `bpe` branch deletes
 * this file when it adds bpe.c.
 */
#include <string.h>

#include "base/error.h"
#include "tokenizer/vocab.h"

ig_status ig__bpe_init(ig_vocab *v, const ig_gguf *g, ig_error *err) {
    (void)v;
    (void)g;
    return ig_errorf(err, IG_EUNSUPPORTED,
                     "byte-level BPE is not built yet (placeholder bpe_stub_tmp.c)");
}

void ig__bpe_free(ig_bpe_data *b) {
    (void)b;
}

ig_status ig__bpe_encode(const ig_vocab *v, const char *text, size_t len, ig_tokens *out) {
    (void)v;
    (void)text;
    (void)len;
    (void)out;
    return IG_EUNSUPPORTED;
}

size_t ig__bpe_unmap(const char *text, size_t len, char *out, size_t cap) {
    if (out) memcpy(out, text, len < cap ? len : cap);
    return len;
}
