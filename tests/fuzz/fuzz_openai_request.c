/*
 * fuzz_openai_request.c: libFuzzer driver for OpenAI request parsing
 * (server/openai.c). The first byte picks the endpoint (even: completions,
 * odd: chat), the rest is the body. Parsing must succeed or refuse with a
 * 400 naming a reason; an accepted request must hold values in their
 * documented ranges; the error JSON and the UTF-8 sanitizer must produce
 * valid output for any input.
 */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "server/openai.h"

#define N_VOCAB 512

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    ig_oai_kind kind = (data[0] & 1) ? IG_OAI_KIND_CHAT : IG_OAI_KIND_COMPLETION;
    const char *body = (const char *)data + 1;
    size_t len = size - 1;
    ig_oai_request r = {0};
    ig_oai_error e = {0};
    ig_status st = ig_oai_parse(kind, body, len, N_VOCAB, &r, &e);
    if (st == IG_OK) {
        if (r.n < 1 || r.n > IG_OAI_MAX_N || r.max_tokens < 0 || r.n_stop > IG_OAI_MAX_STOP ||
            r.top_logprobs < 0 || r.top_logprobs > IG_OAI_MAX_TOP_LOGPROBS)
            abort();
        if (!(r.sampling.temperature >= 0 && r.sampling.temperature <= 2)) abort();
        for (size_t i = 0; i < r.sampling.n_logit_bias; i++)
            if (r.bias[i].token < 0 || r.bias[i].token >= N_VOCAB) abort();
        for (size_t i = 0; i < r.n_prompt_ids; i++)
            if (r.prompt_ids[i] < 0 || r.prompt_ids[i] >= N_VOCAB) abort();
        for (size_t i = 0; i < r.n_stop; i++)
            if (!r.stop[i][0]) abort();
        if (kind == IG_OAI_KIND_CHAT &&
            (!json_is_array(r.messages) || !json_array_size(r.messages)))
            abort();
        if (kind == IG_OAI_KIND_COMPLETION && !r.prompt && !r.prompt_ids) abort();
    } else if (st == IG_EINVAL) {
        if (e.http_status != 400 || !e.message[0]) abort();
        char *j = ig_oai_error_json(&e);
        json_error_t jerr;
        json_t *back = j ? json_loads(j, 0, &jerr) : NULL;
        if (!back) abort();
        json_decref(back);
        free(j);
    }
    ig_oai_request_free(&r);
    /* The sanitizer: output is valid UTF-8 (jansson accepts it) for any bytes. */
    size_t out_len;
    char *clean = ig_oai_utf8_sanitize(body, len, &out_len);
    if (clean) {
        json_t *s = json_stringn(clean, out_len);
        if (!s) abort();
        json_decref(s);
        free(clean);
    }
    return 0;
}
