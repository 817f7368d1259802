/*
 * openai.c: parsing and validating OpenAI completion / chat requests, and
 * writing the response pieces (errors, usage, logprobs) as JSON.
 *
 * Validation follows the OpenAI reference where it states ranges
 * (temperature [0, 2], penalties [-2, 2], logit_bias [-100, 100], top_p
 * [0, 1]) and vLLM for the extensions (top_k, min_p, repetition_penalty,
 * priority). A wrong type or an out-of-range value is a 400 naming the
 * field; unknown fields are ignored. Numbers that are whole may be written
 * as reals (10.0), as Python clients sometimes send them.
 */
#include "server/openai.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

ig_status ig_oai_fail(ig_oai_error *e, int http_status, const char *param, const char *code,
                      const char *fmt, ...) {
    if (!e) return IG_EINVAL;
    e->http_status = http_status;
    switch (http_status) {
    case 401:
        e->type = "authentication_error";
        break;
    case 404:
        e->type = "not_found_error";
        break;
    case 429:
        e->type = "rate_limit_error";
        break;
    case 503:
        e->type = "service_unavailable_error";
        break;
    case 500:
        e->type = "server_error";
        break;
    default:
        e->type = "invalid_request_error";
        break;
    }
    snprintf(e->param, sizeof e->param, "%s", param ? param : "");
    snprintf(e->code, sizeof e->code, "%s", code ? code : "");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->message, sizeof e->message, fmt, ap);
    va_end(ap);
    return http_status == 500 ? IG_ENOMEM : IG_EINVAL;
}

#define BAD(param, ...) ig_oai_fail(e, 400, param, NULL, __VA_ARGS__)

/* ---- typed field readers: absent or null leave *out unchanged ---- */

static bool is_absent(const json_t *v) {
    return !v || json_is_null(v);
}

static ig_status get_bool(const json_t *obj, const char *key, bool *out, ig_oai_error *e) {
    const json_t *v = json_object_get(obj, key);
    if (is_absent(v)) return IG_OK;
    if (!json_is_boolean(v)) return BAD(key, "'%s' must be a boolean", key);
    *out = json_is_true(v);
    return IG_OK;
}

/* A number in [lo, hi]. */
static ig_status get_num(const json_t *obj, const char *key, double lo, double hi, double *out,
                         bool *present, ig_oai_error *e) {
    const json_t *v = json_object_get(obj, key);
    if (is_absent(v)) return IG_OK;
    if (!json_is_number(v)) return BAD(key, "'%s' must be a number", key);
    double d = json_number_value(v);
    if (!isfinite(d) || d < lo || d > hi)
        return BAD(key, "'%s' must be in [%g, %g], got %g", key, lo, hi, d);
    *out = d;
    if (present) *present = true;
    return IG_OK;
}

/* A whole number in [lo, hi] (a real is accepted when it is whole). */
static ig_status get_int(const json_t *obj, const char *key, int64_t lo, int64_t hi, int64_t *out,
                         bool *present, ig_oai_error *e) {
    const json_t *v = json_object_get(obj, key);
    if (is_absent(v)) return IG_OK;
    int64_t x;
    if (json_is_integer(v)) {
        x = (int64_t)json_integer_value(v);
    } else if (json_is_real(v)) {
        double d = json_real_value(v);
        if (!(d == floor(d))) return BAD(key, "'%s' must be an integer, got %g", key, d);
        if (d < (double)lo || d > (double)hi)
            return BAD(key, "'%s' must be in [%lld, %lld], got %g", key, (long long)lo,
                       (long long)hi, d);
        x = (int64_t)d;
    } else {
        return BAD(key, "'%s' must be an integer", key);
    }
    if (x < lo || x > hi)
        return BAD(key, "'%s' must be in [%lld, %lld], got %lld", key, (long long)lo, (long long)hi,
                   (long long)x);
    *out = x;
    if (present) *present = true;
    return IG_OK;
}

static ig_status get_str(const json_t *obj, const char *key, char **out, ig_oai_error *e) {
    const json_t *v = json_object_get(obj, key);
    if (is_absent(v)) return IG_OK;
    if (!json_is_string(v)) return BAD(key, "'%s' must be a string", key);
    char *s = strdup(json_string_value(v));
    if (!s) return ig_oai_fail(e, 500, NULL, NULL, "out of memory");
    free(*out);
    *out = s;
    return IG_OK;
}

/* ---- composite fields ---- */

static ig_status add_stop(ig_oai_request *r, const json_t *s, ig_oai_error *e) {
    size_t len = json_string_length(s);
    if (len == 0) return IG_OK; /* an empty stop string can never match: ignore it */
    if (r->n_stop >= IG_OAI_MAX_STOP)
        return BAD("stop", "'stop' may hold at most %d strings", IG_OAI_MAX_STOP);
    char *c = malloc(len + 1);
    if (!c) return ig_oai_fail(e, 500, NULL, NULL, "out of memory");
    memcpy(c, json_string_value(s), len + 1);
    r->stop[r->n_stop++] = c;
    return IG_OK;
}

static ig_status parse_stop(const json_t *root, ig_oai_request *r, ig_oai_error *e) {
    const json_t *v = json_object_get(root, "stop");
    if (is_absent(v)) return IG_OK;
    r->stop = calloc(IG_OAI_MAX_STOP, sizeof *r->stop);
    if (!r->stop) return ig_oai_fail(e, 500, NULL, NULL, "out of memory");
    if (json_is_string(v)) return add_stop(r, v, e);
    if (!json_is_array(v)) return BAD("stop", "'stop' must be a string or a list of strings");
    size_t i;
    const json_t *s;
    json_array_foreach(v, i, s) {
        if (!json_is_string(s)) return BAD("stop", "'stop[%zu]' must be a string", i);
        ig_status st = add_stop(r, s, e);
        if (st) return st;
    }
    return IG_OK;
}

static ig_status parse_logit_bias(const json_t *root, int32_t n_vocab, ig_oai_request *r,
                                  ig_oai_error *e) {
    const json_t *v = json_object_get(root, "logit_bias");
    if (is_absent(v)) return IG_OK;
    if (!json_is_object(v)) return BAD("logit_bias", "'logit_bias' must be an object");
    size_t n = json_object_size(v);
    if (n == 0) return IG_OK;
    if (n > (size_t)n_vocab)
        return BAD("logit_bias", "'logit_bias' has %zu entries, more than the %d tokens", n,
                   n_vocab);
    r->bias = calloc(n, sizeof *r->bias);
    if (!r->bias) return ig_oai_fail(e, 500, NULL, NULL, "out of memory");
    const char *key;
    const json_t *val;
    size_t k = 0;
    json_object_foreach((json_t *)v, key, val) {
        char *end;
        long id = strtol(key, &end, 10);
        if (end == key || *end || id < 0 || id >= n_vocab)
            return BAD("logit_bias", "'logit_bias' key '%.40s' is not a token id in [0, %d)", key,
                       n_vocab);
        if (!json_is_number(val))
            return BAD("logit_bias", "'logit_bias' value for token %ld must be a number", id);
        double b = json_number_value(val);
        if (!(b >= -100 && b <= 100))
            return BAD("logit_bias", "'logit_bias' value for token %ld must be in [-100, 100]", id);
        r->bias[k].token = (int32_t)id;
        r->bias[k].bias = (float)b;
        k++;
    }
    r->sampling.logit_bias = r->bias;
    r->sampling.n_logit_bias = k;
    return IG_OK;
}

/* Join the text parts of a content list; other part types are refused. */
static ig_status flatten_content(const json_t *content, size_t idx, json_t **out, ig_oai_error *e) {
    if (json_is_string(content)) {
        *out = json_incref((json_t *)content);
        return IG_OK;
    }
    if (json_is_null(content)) {
        *out = json_string("");
        return *out ? IG_OK : ig_oai_fail(e, 500, NULL, NULL, "out of memory");
    }
    if (!json_is_array(content))
        return BAD("messages", "'messages[%zu].content' must be a string or a list of parts", idx);
    size_t total = 0, i;
    const json_t *part;
    json_array_foreach(content, i, part) {
        const json_t *type = json_object_get(part, "type");
        const json_t *text = json_object_get(part, "text");
        if (!json_is_object(part) || !json_is_string(type))
            return BAD("messages", "'messages[%zu].content[%zu]' must be an object with a 'type'",
                       idx, i);
        if (strcmp(json_string_value(type), "text") != 0)
            return BAD("messages",
                       "'messages[%zu].content[%zu]': content of type '%.40s' is not "
                       "supported (text only)",
                       idx, i, json_string_value(type));
        if (!json_is_string(text))
            return BAD("messages", "'messages[%zu].content[%zu].text' must be a string", idx, i);
        total += json_string_length(text);
    }
    char *buf = malloc(total + 1);
    if (!buf) return ig_oai_fail(e, 500, NULL, NULL, "out of memory");
    size_t off = 0;
    json_array_foreach(content, i, part) {
        const json_t *text = json_object_get(part, "text");
        memcpy(buf + off, json_string_value(text), json_string_length(text));
        off += json_string_length(text);
    }
    *out = json_stringn(buf, off);
    free(buf);
    return *out ? IG_OK : ig_oai_fail(e, 500, NULL, NULL, "out of memory");
}

static ig_status parse_messages(const json_t *root, ig_oai_request *r, ig_oai_error *e) {
    static const char *const roles[] = {"system", "user",      "assistant",
                                        "tool",   "developer", "function"};
    const json_t *v = json_object_get(root, "messages");
    if (is_absent(v)) return BAD("messages", "'messages' is required");
    if (!json_is_array(v)) return BAD("messages", "'messages' must be a list");
    if (json_array_size(v) == 0) return BAD("messages", "'messages' must not be empty");
    r->messages = json_array();
    if (!r->messages) return ig_oai_fail(e, 500, NULL, NULL, "out of memory");
    size_t i;
    const json_t *m;
    json_array_foreach(v, i, m) {
        if (!json_is_object(m)) return BAD("messages", "'messages[%zu]' must be an object", i);
        const json_t *role = json_object_get(m, "role");
        if (!json_is_string(role))
            return BAD("messages", "'messages[%zu].role' must be a string", i);
        bool known = false;
        for (size_t k = 0; k < sizeof roles / sizeof *roles; k++)
            known |= strcmp(json_string_value(role), roles[k]) == 0;
        if (!known)
            return BAD("messages",
                       "'messages[%zu].role' '%.40s' is not one of system, user, "
                       "assistant, tool, developer",
                       i, json_string_value(role));
        const json_t *content = json_object_get(m, "content");
        if (!content && strcmp(json_string_value(role), "assistant") != 0)
            return BAD("messages", "'messages[%zu].content' is required", i);
        json_t *flat = NULL;
        ig_status st = flatten_content(content ? content : json_null(), i, &flat, e);
        if (st) return st;
        /* Keep the message's other keys (name, tool_calls...) for templates that use them. */
        json_t *copy = json_copy((json_t *)m);
        if (!copy || json_object_set_new(copy, "content", flat) ||
            json_array_append_new(r->messages, copy)) {
            json_decref(copy);
            return ig_oai_fail(e, 500, NULL, NULL, "out of memory");
        }
    }
    return IG_OK;
}

static ig_status parse_prompt_ids(const json_t *arr, int32_t n_vocab, ig_oai_request *r,
                                  ig_oai_error *e) {
    size_t n = json_array_size(arr);
    if (n == 0) return BAD("prompt", "'prompt' must not be an empty list");
    r->prompt_ids = malloc(n * sizeof *r->prompt_ids);
    if (!r->prompt_ids) return ig_oai_fail(e, 500, NULL, NULL, "out of memory");
    for (size_t i = 0; i < n; i++) {
        const json_t *t = json_array_get(arr, i);
        if (!json_is_integer(t) || json_integer_value(t) < 0 || json_integer_value(t) >= n_vocab)
            return BAD("prompt", "'prompt[%zu]' is not a token id in [0, %d)", i, n_vocab);
        r->prompt_ids[i] = (int32_t)json_integer_value(t);
    }
    r->n_prompt_ids = n;
    return IG_OK;
}

static ig_status parse_prompt(const json_t *root, int32_t n_vocab, ig_oai_request *r,
                              ig_oai_error *e) {
    const json_t *v = json_object_get(root, "prompt");
    if (is_absent(v)) return BAD("prompt", "'prompt' is required");
    if (json_is_array(v) && json_array_size(v) == 1 &&
        (json_is_string(json_array_get(v, 0)) || json_is_array(json_array_get(v, 0))))
        v = json_array_get(v, 0); /* a batch of one */
    if (json_is_string(v)) {
        r->prompt_len = json_string_length(v);
        r->prompt = malloc(r->prompt_len + 1);
        if (!r->prompt) return ig_oai_fail(e, 500, NULL, NULL, "out of memory");
        memcpy(r->prompt, json_string_value(v), r->prompt_len + 1);
        return IG_OK;
    }
    if (json_is_array(v)) {
        const json_t *first = json_array_get(v, 0);
        if (json_is_string(first) || json_is_array(first))
            return BAD("prompt",
                       "batched prompts (a list of %zu prompts) are not supported; send "
                       "one request per prompt",
                       json_array_size(v));
        return parse_prompt_ids(v, n_vocab, r, e);
    }
    return BAD("prompt",
               "'prompt' must be a string, a list of token ids, or a list of one of those");
}

ig_status ig_oai_parse(ig_oai_kind kind, const char *body, size_t len, int32_t n_vocab,
                       ig_oai_request *out, ig_oai_error *e) {
    ig_oai_request r = {0};
    r.kind = kind;
    r.n = 1;
    r.sampling = ig_sampler_params_default();
    r.sampling.repeat_last_n = 64;
    ig_status st = IG_OK;
    json_error_t jerr;
    json_t *root = json_loadb(body, len, 0, &jerr);
    if (!root) {
        st = BAD(NULL, "the body is not valid JSON: %s (line %d, column %d)", jerr.text, jerr.line,
                 jerr.column);
        goto fail;
    }
    if (!json_is_object(root)) {
        st = BAD(NULL, "the body must be a JSON object");
        goto fail;
    }
    int64_t iv;
    double dv;
    bool has;
#define TRY(x)                                                                                     \
    do {                                                                                           \
        if ((st = (x)) != IG_OK) goto fail;                                                        \
    } while (0)
    TRY(get_str(root, "model", &r.model, e));
    if (kind == IG_OAI_KIND_CHAT)
        TRY(parse_messages(root, &r, e));
    else
        TRY(parse_prompt(root, n_vocab, &r, e));

    /* max_completion_tokens wins over the deprecated max_tokens. */
    iv = 0;
    has = false;
    TRY(get_int(root, "max_tokens", 1, INT32_MAX, &iv, &has, e));
    TRY(get_int(root, "max_completion_tokens", 1, INT32_MAX, &iv, &has, e));
    r.has_max_tokens = has;
    r.max_tokens = has ? (int32_t)iv : (kind == IG_OAI_KIND_COMPLETION ? 16 : 0);

    iv = 1;
    TRY(get_int(root, "n", 1, IG_OAI_MAX_N, &iv, NULL, e));
    r.n = (int32_t)iv;
    iv = 1;
    TRY(get_int(root, "best_of", 1, IG_OAI_MAX_N, &iv, &has, e));
    if (iv != 1 && iv != r.n) {
        st = BAD("best_of", "'best_of' other than n is not supported");
        goto fail;
    }

    dv = 1;
    TRY(get_num(root, "temperature", 0, 2, &dv, NULL, e));
    r.sampling.temperature = (float)dv;
    dv = 1;
    TRY(get_num(root, "top_p", 0, 1, &dv, NULL, e));
    r.sampling.top_p = dv > 0 ? (float)dv : 1e-9f; /* 0: only the most likely token */
    iv = 0;
    TRY(get_int(root, "top_k", -1, INT32_MAX, &iv, NULL, e));
    r.sampling.top_k = iv > 0 ? (int32_t)iv : 0;
    dv = 0;
    TRY(get_num(root, "min_p", 0, 1, &dv, NULL, e));
    r.sampling.min_p = (float)dv;
    dv = 1;
    TRY(get_num(root, "repetition_penalty", 1e-6, 100, &dv, NULL, e));
    r.sampling.repeat_penalty = (float)dv;
    dv = 0;
    TRY(get_num(root, "presence_penalty", -2, 2, &dv, NULL, e));
    r.sampling.presence_penalty = (float)dv;
    dv = 0;
    TRY(get_num(root, "frequency_penalty", -2, 2, &dv, NULL, e));
    r.sampling.frequency_penalty = (float)dv;
    iv = 0;
    has = false;
    TRY(get_int(root, "seed", INT64_MIN, INT64_MAX, &iv, &has, e));
    r.has_seed = has;
    if (has) {
        r.sampling.seed = (uint64_t)iv;
        if (r.sampling.seed == IG_SAMPLER_SEED_RANDOM) r.sampling.seed = 0x5eed;
    }
    TRY(parse_logit_bias(root, n_vocab, &r, e));
    TRY(parse_stop(root, &r, e));
    iv = 0;
    TRY(get_int(root, "priority", INT32_MIN, INT32_MAX, &iv, NULL, e));
    r.priority = (int32_t)iv;
    TRY(get_str(root, "user", &r.user, e));

    TRY(get_bool(root, "stream", &r.stream, e));
    const json_t *so = json_object_get(root, "stream_options");
    if (!is_absent(so)) {
        if (!json_is_object(so)) {
            st = BAD("stream_options", "'stream_options' must be an object");
            goto fail;
        }
        if (!r.stream) {
            st = BAD("stream_options", "'stream_options' is only allowed when 'stream' is true");
            goto fail;
        }
        TRY(get_bool(so, "include_usage", &r.include_usage, e));
    }

    if (kind == IG_OAI_KIND_CHAT) {
        TRY(get_bool(root, "logprobs", &r.logprobs, e));
        iv = 0;
        has = false;
        TRY(get_int(root, "top_logprobs", 0, IG_OAI_MAX_TOP_LOGPROBS, &iv, &has, e));
        if (has && !r.logprobs) {
            st = BAD("top_logprobs", "'top_logprobs' needs 'logprobs' set to true");
            goto fail;
        }
        r.top_logprobs = (int32_t)iv;
        const json_t *tools = json_object_get(root, "tools");
        if (!is_absent(tools) && (!json_is_array(tools) || json_array_size(tools) > 0)) {
            st = BAD("tools", "'tools' (function calling) is not supported");
            goto fail;
        }
    } else {
        iv = 0;
        has = false;
        TRY(get_int(root, "logprobs", 0, IG_OAI_MAX_TOP_LOGPROBS, &iv, &has, e));
        r.logprobs = has;
        r.top_logprobs = (int32_t)iv;
        TRY(get_bool(root, "echo", &r.echo, e));
        const json_t *suffix = json_object_get(root, "suffix");
        if (!is_absent(suffix) && (!json_is_string(suffix) || json_string_length(suffix) > 0)) {
            st = BAD("suffix", "'suffix' is not supported");
            goto fail;
        }
    }
    const json_t *rf = json_object_get(root, "response_format");
    if (!is_absent(rf)) {
        const json_t *type = json_object_get(rf, "type");
        if (!json_is_object(rf) || !json_is_string(type)) {
            st = BAD("response_format", "'response_format' must be an object with a 'type'");
            goto fail;
        }
        if (strcmp(json_string_value(type), "text") != 0) {
            st = BAD("response_format", "'response_format' of type '%.40s' is not supported",
                     json_string_value(type));
            goto fail;
        }
    }
#undef TRY
    json_decref(root);
    *out = r;
    return IG_OK;
fail:
    json_decref(root);
    ig_oai_request_free(&r);
    return st ? st : IG_EINVAL;
}

void ig_oai_request_free(ig_oai_request *r) {
    if (!r) return;
    free(r->model);
    json_decref(r->messages);
    free(r->prompt);
    free(r->prompt_ids);
    free(r->bias);
    for (size_t i = 0; i < r->n_stop; i++) free(r->stop[i]);
    free(r->stop);
    free(r->user);
    memset(r, 0, sizeof *r);
}

ig_status ig_oai_parse_object(const char *body, size_t len, json_t **out, ig_oai_error *e) {
    json_error_t jerr;
    json_t *root = json_loadb(body, len, 0, &jerr);
    if (!root)
        return BAD(NULL, "the body is not valid JSON: %s (line %d, column %d)", jerr.text,
                   jerr.line, jerr.column);
    if (!json_is_object(root)) {
        json_decref(root);
        return BAD(NULL, "the body must be a JSON object");
    }
    *out = root;
    return IG_OK;
}

char *ig_oai_error_json(const ig_oai_error *e) {
    size_t n;
    char *msg = ig_oai_utf8_sanitize(e->message, strlen(e->message), &n);
    json_t *err = json_pack("{s:{s:s?,s:s,s:s?,s:s?}}", "error", "message", msg, "type",
                            e->type ? e->type : "server_error", "param",
                            e->param[0] ? e->param : NULL, "code", e->code[0] ? e->code : NULL);
    free(msg);
    char *s = err ? json_dumps(err, JSON_COMPACT) : NULL;
    json_decref(err);
    return s;
}

/* Length of the valid UTF-8 sequence at s[0..n), or 0 when s[0] starts an
 * invalid subpart; *skip gets the bytes of that maximal invalid subpart. */
static size_t utf8_seq(const unsigned char *s, size_t n, size_t *skip) {
    unsigned char c = s[0];
    size_t need;
    unsigned char lo = 0x80, hi = 0xBF;
    if (c < 0x80) return 1;
    if (c >= 0xC2 && c <= 0xDF)
        need = 1;
    else if (c == 0xE0)
        need = 2, lo = 0xA0;
    else if (c == 0xED)
        need = 2, hi = 0x9F;
    else if (c >= 0xE1 && c <= 0xEF)
        need = 2;
    else if (c == 0xF0)
        need = 3, lo = 0x90;
    else if (c == 0xF4)
        need = 3, hi = 0x8F;
    else if (c >= 0xF1 && c <= 0xF3)
        need = 3;
    else {
        *skip = 1;
        return 0;
    }
    size_t i = 1;
    for (; i <= need; i++) {
        if (i >= n) break;
        unsigned char b = s[i];
        unsigned char l = i == 1 ? lo : 0x80, h = i == 1 ? hi : 0xBF;
        if (b < l || b > h) break;
    }
    if (i == need + 1) return need + 1;
    *skip = i;
    return 0;
}

char *ig_oai_utf8_sanitize(const char *s, size_t len, size_t *out_len) {
    char *out = malloc(len * 3 + 1);
    if (!out) return NULL;
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0, o = 0;
    while (i < len) {
        size_t skip = 0, k = utf8_seq(p + i, len - i, &skip);
        if (k) {
            memcpy(out + o, p + i, k);
            o += k;
            i += k;
        } else {
            memcpy(out + o, "\xEF\xBF\xBD", 3);
            o += 3;
            i += skip;
        }
    }
    out[o] = '\0';
    if (out_len) *out_len = o;
    return out;
}

static json_t *piece_string(ig_oai_piece_fn piece, void *user, int32_t token, json_t **bytes_out) {
    char buf[256];
    size_t n = piece(user, token, buf, sizeof buf);
    if (n > sizeof buf) n = sizeof buf;
    if (bytes_out) {
        *bytes_out = json_array();
        for (size_t i = 0; *bytes_out && i < n; i++)
            json_array_append_new(*bytes_out, json_integer((unsigned char)buf[i]));
    }
    size_t sl;
    char *s = ig_oai_utf8_sanitize(buf, n, &sl);
    json_t *j = s ? json_stringn(s, sl) : NULL;
    free(s);
    return j;
}

/* -inf is not JSON: vLLM's -9999.0 convention. */
static json_t *lp_real(float lp) {
    return json_real(isfinite(lp) ? lp : -9999.0);
}

json_t *ig_oai_logprobs_json(ig_oai_kind kind, const ig_oai_logprob *lp, size_t n,
                             ig_oai_piece_fn piece, void *user, size_t text_offset0) {
    if (kind == IG_OAI_KIND_CHAT) {
        json_t *content = json_array();
        for (size_t i = 0; content && i < n; i++) {
            json_t *bytes = NULL;
            json_t *tok = piece_string(piece, user, lp[i].token, &bytes);
            json_t *top = json_array();
            for (int32_t k = 0; top && k < lp[i].n_top; k++) {
                json_t *tb = NULL;
                json_t *ts = piece_string(piece, user, lp[i].top[k].token, &tb);
                json_array_append_new(top, json_pack("{s:o?,s:o,s:o?}", "token", ts, "logprob",
                                                     lp_real(lp[i].top[k].logprob), "bytes", tb));
            }
            json_array_append_new(content, json_pack("{s:o?,s:o,s:o?,s:o?}", "token", tok,
                                                     "logprob", lp_real(lp[i].logprob), "bytes",
                                                     bytes, "top_logprobs", top));
        }
        return json_pack("{s:o?}", "content", content);
    }
    json_t *tokens = json_array(), *lps = json_array(), *tops = json_array(), *offs = json_array();
    size_t off = text_offset0;
    for (size_t i = 0; i < n; i++) {
        char buf[256];
        size_t pl = piece(user, lp[i].token, buf, sizeof buf);
        json_array_append_new(tokens, piece_string(piece, user, lp[i].token, NULL));
        json_array_append_new(lps, lp_real(lp[i].logprob));
        json_t *top = json_object();
        for (int32_t k = 0; top && k < lp[i].n_top; k++) {
            json_t *ts = piece_string(piece, user, lp[i].top[k].token, NULL);
            if (ts) json_object_set_new(top, json_string_value(ts), lp_real(lp[i].top[k].logprob));
            json_decref(ts);
        }
        json_array_append_new(tops, top);
        json_array_append_new(offs, json_integer((json_int_t)off));
        off += pl < sizeof buf ? pl : sizeof buf;
    }
    return json_pack("{s:o?,s:o?,s:o?,s:o?}", "tokens", tokens, "token_logprobs", lps,
                     "top_logprobs", tops, "text_offset", offs);
}

json_t *ig_oai_usage_json(int64_t n_prompt, int64_t n_completion, int64_t n_cached) {
    return json_pack("{s:I,s:I,s:I,s:{s:I}}", "prompt_tokens", (json_int_t)n_prompt,
                     "completion_tokens", (json_int_t)n_completion, "total_tokens",
                     (json_int_t)(n_prompt + n_completion), "prompt_tokens_details",
                     "cached_tokens", (json_int_t)n_cached);
}

const char *ig_oai_finish_reason(ig_finish_kind kind) {
    switch (kind) {
    case IG_FINISH_KIND_NONE:
        return NULL;
    case IG_FINISH_KIND_STOP:
        return "stop";
    case IG_FINISH_KIND_LENGTH:
        return "length";
    default:
        return "abort";
    }
}
