/*
 * chat_template.c: the public chat-template API (chat_template.h) over the
 * Jinja renderer (jinja.h), and the built-in fallback templates.
 *
 * JSON from the caller becomes Jinja values without copying strings: the
 * values point into jansson's storage, which the caller keeps alive for the
 * length of the render.
 */
#include "tokenizer/chat_template.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/error.h"
#include "tokenizer/jinja.h"

struct ig_chat_template {
    ig__jprog *prog;
    ig__jlimits limits;
    int64_t fixed_time; /* 0: use the clock */
};

static const ig__jlimits default_limits = {
    .max_output_len = 32u << 20,
    .max_memory = 256u << 20,
    .max_steps = 10000000,
    .max_depth = 400,
};

/* ---- built-in templates --------------------------------------------------------------- */

/* Every built-in renders content given as a string or as a list of text parts. */
#define IG_TEXT_MACRO                                                                              \
    "{%- macro text(c) -%}"                                                                        \
    "{%- if c is string -%}{{ c }}"                                                                \
    "{%- elif c is iterable -%}{%- for p in c -%}"                                                 \
    "{%- if p is mapping and p['type'] == 'text' -%}{{ p['text'] }}{%- endif -%}"                  \
    "{%- endfor -%}{%- endif -%}"                                                                  \
    "{%- endmacro -%}"

static const char chatml[] = IG_TEXT_MACRO
    "{%- for m in messages -%}"
    "{{- '<|im_start|>' + m['role'] + '\\n' + text(m['content']) + '<|im_end|>\\n' -}}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{- '<|im_start|>assistant\\n' -}}{%- endif -%}";

static const char llama2[] = IG_TEXT_MACRO
    "{%- if messages and messages[0]['role'] == 'system' -%}"
    "{%- set sys = '<<SYS>>\\n' + text(messages[0]['content']) + '\\n<</SYS>>\\n\\n' -%}"
    "{%- set msgs = messages[1:] -%}"
    "{%- else -%}{%- set sys = '' -%}{%- set msgs = messages -%}{%- endif -%}"
    "{%- for m in msgs -%}"
    "{%- if m['role'] == 'user' -%}"
    "{{- (bos_token or '') + '[INST] ' + (sys if loop.first else '') + text(m['content']) | trim"
    " + ' [/INST]' -}}"
    "{%- elif m['role'] == 'assistant' -%}"
    "{{- ' ' + text(m['content']) | trim + ' ' + (eos_token or '') -}}"
    "{%- endif -%}"
    "{%- endfor -%}";

static const char llama3[] = IG_TEXT_MACRO
    "{{- bos_token or '' -}}"
    "{%- for m in messages -%}"
    "{{- '<|start_header_id|>' + m['role'] + '<|end_header_id|>\\n\\n' + text(m['content']) | trim"
    " + '<|eot_id|>' -}}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}"
    "{{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' -}}"
    "{%- endif -%}";

static const char mistral[] = IG_TEXT_MACRO
    "{{- bos_token or '' -}}"
    "{%- if messages and messages[0]['role'] == 'system' -%}"
    "{%- set sys = text(messages[0]['content']) + '\\n\\n' -%}{%- set msgs = messages[1:] -%}"
    "{%- else -%}{%- set sys = '' -%}{%- set msgs = messages -%}{%- endif -%}"
    "{%- for m in msgs -%}"
    "{%- if m['role'] == 'user' -%}"
    "{{- '[INST] ' + (sys if loop.first else '') + text(m['content']) + ' [/INST]' -}}"
    "{%- elif m['role'] == 'assistant' -%}"
    "{{- text(m['content']) + (eos_token or '') -}}"
    "{%- endif -%}"
    "{%- endfor -%}";

static const char zephyr[] = IG_TEXT_MACRO
    "{%- for m in messages -%}"
    "{{- '<|' + m['role'] + '|>\\n' + text(m['content']) + (eos_token or '') + '\\n' -}}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{- '<|assistant|>\\n' -}}{%- endif -%}";

static const char *const builtin_names[] = {"chatml",  "llama2", "llama3",
                                            "mistral", "zephyr", NULL};
static const char *const builtin_sources[] = {chatml, llama2, llama3, mistral, zephyr};

const char *ig_chat_template_builtin(const char *name) {
    if (!name) return NULL;
    for (size_t i = 0; builtin_names[i]; i++)
        if (!strcmp(builtin_names[i], name)) return builtin_sources[i];
    return NULL;
}

const char *const *ig_chat_template_builtin_names(void) {
    return builtin_names;
}

/* ---- API ------------------------------------------------------------------------------ */

ig_status ig_chat_template_new(const char *source, size_t len, ig_chat_template **out,
                               ig_error *err) {
    if (!out || (!source && len))
        return ig_errorf(err, IG_EINVAL, "ig_chat_template_new: NULL argument");
    ig_chat_template *t = calloc(1, sizeof *t);
    if (!t) return ig_errorf(err, IG_ENOMEM, "out of memory");
    ig_status st = ig__jinja_parse(source ? source : "", len, &t->prog, err);
    if (st) {
        free(t);
        return st;
    }
    t->limits = default_limits;
    *out = t;
    return IG_OK;
}

void ig_chat_template_free(ig_chat_template *tmpl) {
    if (!tmpl) return;
    ig__jinja_prog_free(tmpl->prog);
    free(tmpl);
}

void ig_chat_template_set_time(ig_chat_template *tmpl, int64_t unix_time) {
    tmpl->fixed_time = unix_time;
}

void ig_chat_template_set_limits(ig_chat_template *tmpl, const ig_chat_template_limits *limits) {
    ig__jlimits l = default_limits;
    if (limits->max_output_len) l.max_output_len = limits->max_output_len;
    if (limits->max_memory) l.max_memory = limits->max_memory;
    if (limits->max_steps) l.max_steps = limits->max_steps;
    if (limits->max_depth > 0) l.max_depth = limits->max_depth;
    tmpl->limits = l;
}

#define IG_JSON_MAX_DEPTH 256

static int from_json(ig__jctx *c, const json_t *j, int depth, ig__jv *out) {
    if (depth > IG_JSON_MAX_DEPTH)
        return ig__jfail(c, NULL, IG_EINVAL, "JSON input nested deeper than %d levels",
                         IG_JSON_MAX_DEPTH);
    switch (json_typeof(j)) {
    case JSON_NULL:
        *out = ig__jv_none();
        return 0;
    case JSON_TRUE:
        *out = ig__jv_bool(true);
        return 0;
    case JSON_FALSE:
        *out = ig__jv_bool(false);
        return 0;
    case JSON_INTEGER:
        *out = ig__jv_int(json_integer_value(j));
        return 0;
    case JSON_REAL:
        *out = ig__jv_float(json_real_value(j));
        return 0;
    case JSON_STRING:
        *out = ig__jv_str(json_string_value(j), json_string_length(j));
        return 0;
    case JSON_ARRAY: {
        size_t n = json_array_size(j);
        ig__jlist *l = ig__jlist_new(c, n);
        if (!l) return -1;
        for (size_t i = 0; i < n; i++)
            if (from_json(c, json_array_get(j, i), depth + 1, &l->items[i])) return -1;
        l->n = n;
        *out = ig__jv_list(l);
        return 0;
    }
    case JSON_OBJECT: {
        ig__jdict *d = ig__jdict_new(c, json_object_size(j));
        if (!d) return -1;
        const char *key;
        json_t *val;
        /* jansson keeps insertion order, as Python's dict does. */
        json_object_foreach((json_t *)j, key, val) {
            ig__jv v;
            if (from_json(c, val, depth + 1, &v)) return -1;
            /* Keys are distinct, so append without the lookup ig__jdict_set does. */
            d->keys[d->n] = ig__jv_str(key, strlen(key));
            d->vals[d->n] = v;
            d->n++;
        }
        *out = ig__jv_dict(d);
        return 0;
    }
    }
    return ig__jfail(c, NULL, IG_EINVAL, "unknown JSON type");
}

ig_status ig_chat_template_render(const ig_chat_template *tmpl, const json_t *messages,
                                  bool add_generation_prompt, const char *bos, const char *eos,
                                  const json_t *extra_kwargs, char **out, size_t *out_len,
                                  ig_error *err) {
    if (!tmpl || !out || !out_len)
        return ig_errorf(err, IG_EINVAL, "ig_chat_template_render: NULL argument");
    if (messages && !json_is_array(messages))
        return ig_errorf(err, IG_EINVAL, "chat template: messages must be a JSON array");
    if (extra_kwargs && !json_is_object(extra_kwargs))
        return ig_errorf(err, IG_EINVAL, "chat template: extra arguments must be a JSON object");
    ig__jctx c = {.limits = &tmpl->limits, .err = err};
    c.arena.limit = tmpl->limits.max_memory;
    c.now = tmpl->fixed_time ? (time_t)tmpl->fixed_time : time(NULL);
    ig__jv v;
    ig_status st = IG_OK;

    ig__jlist *empty = NULL;
    if (messages) {
        if (from_json(&c, messages, 0, &v)) goto fail;
    } else {
        if (!(empty = ig__jlist_new(&c, 0))) goto fail;
        v = ig__jv_list(empty);
    }
    if (ig__jctx_set_global(&c, "messages", v) || ig__jctx_set_global(&c, "tools", ig__jv_none()) ||
        ig__jctx_set_global(&c, "documents", ig__jv_none()) ||
        ig__jctx_set_global(&c, "add_generation_prompt", ig__jv_bool(add_generation_prompt)))
        goto fail;
    if (bos && ig__jctx_set_global(&c, "bos_token", ig__jv_str(bos, strlen(bos)))) goto fail;
    if (eos && ig__jctx_set_global(&c, "eos_token", ig__jv_str(eos, strlen(eos)))) goto fail;
    if (extra_kwargs) {
        const char *key;
        json_t *val;
        json_object_foreach((json_t *)extra_kwargs, key, val) {
            if (from_json(&c, val, 0, &v) || ig__jctx_set_global(&c, key, v)) goto fail;
        }
    }
    if (ig__jinja_render(&c, tmpl->prog)) goto fail;
    /* NUL-terminate (past the output limit, which counts text only) and hand over. */
    if (c.out_len + 1 > c.out_cap) {
        char *p = realloc(c.out, c.out_len + 1);
        if (!p) {
            ig__jfail(&c, NULL, IG_ENOMEM, "out of memory");
            goto fail;
        }
        c.out = p;
    }
    c.out[c.out_len] = '\0';
    *out = c.out;
    *out_len = c.out_len;
    c.out = NULL;
    ig__ja_free(&c.arena);
    return IG_OK;
fail:
    st = c.status ? c.status : IG_EINTERNAL;
    if (!c.status) ig_errorf(err, st, "chat template: rendering failed");
    free(c.out);
    ig__ja_free(&c.arena);
    return st;
}
