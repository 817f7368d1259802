/*
 * openai.h: the OpenAI request and response shapes, with no HTTP in sight.
 *
 * Model of use
 * ------------
 * ig_oai_parse() turns a request body (/v1/completions or
 * /v1/chat/completions) into an ig_oai_request: every field the server
 * understands is type- and range-checked, unknown fields are ignored (as
 * vLLM does). A refusal fills an ig_oai_error with the HTTP status, OpenAI's
 * error type, the offending parameter and a message naming it; the server
 * answers with ig_oai_error_json(). The writers below build the response
 * objects and the streaming chunks as jansson values.
 *
 * Everything here is pure (no globals, no engine), so the unit tests and the
 * fuzz target drive it directly. Any thread may call any function; an
 * ig_oai_request is used by one thread at a time.
 */
#ifndef IG_SERVER_OPENAI_H
#define IG_SERVER_OPENAI_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ignis.h"
#include "sample/sampler.h"

typedef enum ig_oai_kind {
    IG_OAI_KIND_COMPLETION = 0, /* POST /v1/completions (and /inference) */
    IG_OAI_KIND_CHAT,           /* POST /v1/chat/completions */
} ig_oai_kind;

/* Most choices per request (n). */
#define IG_OAI_MAX_N 16
/* Most stop strings per request. */
#define IG_OAI_MAX_STOP 16
/* Most top log-probabilities per token (the engine's bound). */
#define IG_OAI_MAX_TOP_LOGPROBS 20

/* A refusal: what the HTTP answer says. */
typedef struct ig_oai_error {
    int http_status;  /* 400, 401, 404, 413, 429, 503, 500 */
    const char *type; /* "invalid_request_error", "authentication_error", ... (static) */
    char param[64];   /* the offending request field, "" for none */
    char code[48];    /* "model_not_found", "context_length_exceeded", "" for none */
    char message[512];
} ig_oai_error;

/* Fill e (returns IG_EINVAL, for `return ig_oai_fail(...)`). param and code may be NULL. */
ig_status ig_oai_fail(ig_oai_error *e, int http_status, const char *param, const char *code,
                      const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* A parsed request. Zero-initialise, fill with ig_oai_parse, release with ig_oai_request_free. */
typedef struct ig_oai_request {
    ig_oai_kind kind;
    char *model;       /* requested model id; NULL when absent */
    json_t *messages;  /* chat: array of {role, content: string} (contents flattened); owned ref */
    char *prompt;      /* completion with a text prompt: the text; NULL for token ids */
    size_t prompt_len; /* bytes of prompt */
    int32_t *prompt_ids; /* completion with a token-id prompt: [n_prompt_ids]; NULL otherwise */
    size_t n_prompt_ids;
    int32_t max_tokens;  /* > 0; 0 when absent (chat: until the context is full; completion: 16) */
    bool has_max_tokens; /* the client gave max_tokens or max_completion_tokens */
    int32_t n;           /* choices, [1, IG_OAI_MAX_N] */
    bool stream;
    bool include_usage;         /* stream_options.include_usage */
    bool echo;                  /* completion: prepend the prompt to the text */
    bool logprobs;              /* return log-probabilities */
    int32_t top_logprobs;       /* alternatives per token, [0, IG_OAI_MAX_TOP_LOGPROBS] */
    ig_sampler_params sampling; /* logit_bias points into `bias` */
    ig_logit_bias *bias;        /* [sampling.n_logit_bias] owned */
    bool has_seed;              /* seed given: choice i uses seed + i */
    char **stop;                /* [n_stop] non-empty strings, owned */
    size_t n_stop;
    int32_t priority;
    char *user; /* NULL when absent */
} ig_oai_request;

/*
 * Parse and validate a request body of `len` bytes (need not be
 * NUL-terminated) for endpoint `kind`; token ids (logit_bias keys, prompt
 * ids) are checked against n_vocab. On success *out holds the request (the
 * caller frees it with ig_oai_request_free). On failure *out is left empty
 * and e says why (always a 400 here). Errors: IG_EINVAL (invalid request),
 * IG_ENOMEM (e is a 500).
 */
ig_status ig_oai_parse(ig_oai_kind kind, const char *body, size_t len, int32_t n_vocab,
                       ig_oai_request *out, ig_oai_error *e);

void ig_oai_request_free(ig_oai_request *r); /* NULL or zeroed is fine; leaves it zeroed */

/*
 * Parse a JSON object body for the small endpoints (/tokenize, /detokenize):
 * *out gets a new reference (json_decref it). A body that is not a JSON
 * object is a 400 in e.
 */
ig_status ig_oai_parse_object(const char *body, size_t len, json_t **out, ig_oai_error *e);

/* The error body {"error": {"message", "type", "param", "code"}} as a malloc'd string. */
char *ig_oai_error_json(const ig_oai_error *e);

/* A copy of bytes as valid UTF-8: every maximal invalid subpart becomes U+FFFD.
 * malloc'd, NUL-terminated; *out_len gets its length. NULL on ENOMEM. */
char *ig_oai_utf8_sanitize(const char *s, size_t len, size_t *out_len);

/* One generated token's log-probabilities, as the writers need them. */
typedef struct ig_oai_logprob {
    int32_t token;
    float logprob;
    int32_t n_top;
    ig_event_logprob top[IG_OAI_MAX_TOP_LOGPROBS];
} ig_oai_logprob;

/* The text of a token for logprobs: raw bytes (possibly invalid UTF-8) into
 * buf[cap]; returns the length (capped to cap). Provided by the caller. */
typedef size_t (*ig_oai_piece_fn)(void *user, int32_t token, char *buf, size_t cap);

/*
 * A choice's "logprobs" value: chat shape {"content": [{token, logprob,
 * bytes, top_logprobs}]} or completion shape {tokens, token_logprobs,
 * top_logprobs, text_offset} (text_offset counted from text_offset0).
 * New reference, NULL on ENOMEM.
 */
json_t *ig_oai_logprobs_json(ig_oai_kind kind, const ig_oai_logprob *lp, size_t n,
                             ig_oai_piece_fn piece, void *piece_user, size_t text_offset0);

/* usage: {prompt_tokens, completion_tokens, total_tokens, prompt_tokens_details{cached_tokens}} */
json_t *ig_oai_usage_json(int64_t n_prompt, int64_t n_completion, int64_t n_cached);

/* The OpenAI finish_reason for an engine finish: "stop", "length", or
 * "abort" (cancelled, timed out, error); NULL for NONE. */
const char *ig_oai_finish_reason(ig_finish_kind kind);

#endif
