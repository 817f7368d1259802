/*
 * chat_template.h: turning a conversation into a prompt with the model's own
 * chat template, as Hugging Face's tokenizer.apply_chat_template does.
 *
 * Model of use
 * ------------
 * A chat template is a Jinja2 program (GGUF key `tokenizer.chat_template`, or
 * "chat_template" in a tokenizer_config.json). ig_chat_template_new() parses
 * it once; ig_chat_template_render() runs it on an OpenAI-style message list:
 *
 *     ig_chat_template *t;
 *     if (ig_chat_template_new(src, strlen(src), &t, &err)) ...;
 *     char *prompt; size_t prompt_len;
 *     if (ig_chat_template_render(t, messages, true, "<s>", "</s>", NULL,
 *                                 &prompt, &prompt_len, &err)) ...;
 *     ...; free(prompt); ig_chat_template_free(t);
 *
 * The renderer implements the Jinja2 subset real templates use, with the
 * environment HF sets up: trim_blocks and lstrip_blocks on, jinja2's default
 * Undefined (missing things are falsy and print as ""), the loopcontrols
 * extension (break/continue), `{% generation %}`, and the globals
 * raise_exception(msg), strftime_now(fmt) and the tojson filter as
 * json.dumps(ensure_ascii=False). The variables a template sees: messages,
 * add_generation_prompt, bos_token, eos_token, tools (none), documents (none)
 * and every key of extra_kwargs (which may override those).
 *
 * Safety: a template comes from a model file and is not trusted. Rendering is
 * bounded in output bytes, memory, steps (statements + loop iterations +
 * calls) and nesting (ig_chat_template_limits); breaking a bound is an error,
 * never a crash or a hang.
 *
 * Threads: a template is immutable after ig_chat_template_new() (apart from
 * the setters below, which must not race with rendering), so any number of
 * threads may render with it at once.
 */
#ifndef IG_TOKENIZER_CHAT_TEMPLATE_H
#define IG_TOKENIZER_CHAT_TEMPLATE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ignis.h"

typedef struct ig_chat_template ig_chat_template;

typedef struct ig_chat_template_limits {
    size_t max_output_len; /* bytes of rendered text; default 32 MiB */
    size_t max_memory;     /* bytes of working memory per render; default 256 MiB */
    uint64_t max_steps;    /* statements + loop iterations + calls; default 10,000,000 */
    int max_depth;         /* nesting of expressions, blocks and macro calls; default 400 */
} ig_chat_template_limits;

/*
 * Parse a template. `source` is borrowed (need not be NUL-terminated). On
 * success *out is the caller's, for ig_chat_template_free(). Errors:
 * IG_EFORMAT (syntax; the message names line and column), IG_EINVAL (NULL
 * arguments), IG_ENOMEM.
 */
ig_status ig_chat_template_new(const char *source, size_t len, ig_chat_template **out,
                               ig_error *err);

/*
 * Render `messages` (a JSON array of objects with "role" and "content", where
 * content may be a string, null or a list of parts such as
 * {"type": "text", "text": ...}; other keys such as tool_calls pass through).
 * `bos` / `eos` may be NULL (then bos_token / eos_token are undefined).
 * `extra_kwargs` (a JSON object, or NULL) adds or overrides variables, e.g.
 * {"enable_thinking": false} or {"tools": [...]}. All JSON is borrowed.
 *
 * On success *out is a malloc'd, NUL-terminated string of *out_len bytes that
 * the caller frees. Errors (nothing is written to *out):
 *   IG_EINVAL  the template failed on this input: raise_exception(msg) (the
 *              message is msg itself), or a runtime error such as an
 *              undefined attribute or a type mismatch (line and column given);
 *              also bad arguments (messages not an array, extra not an object).
 *   IG_ERANGE  a limit was passed (output size, steps, nesting).
 *   IG_ENOMEM  out of memory or past the memory limit.
 *   IG_EUNSUPPORTED  a Jinja feature this renderer lacks.
 */
ig_status ig_chat_template_render(const ig_chat_template *tmpl, const json_t *messages,
                                  bool add_generation_prompt, const char *bos, const char *eos,
                                  const json_t *extra_kwargs, char **out, size_t *out_len,
                                  ig_error *err);

/*
 * The source of a built-in fallback template by name: "chatml", "llama2",
 * "llama3", "mistral" or "zephyr". NULL for an unknown name. The string is
 * static. ig_chat_template_builtin_names() lists the names, NULL-terminated.
 */
const char *ig_chat_template_builtin(const char *name);
const char *const *ig_chat_template_builtin_names(void);

/* Fix the time strftime_now() reports (Unix seconds, formatted in local time);
 * 0 goes back to the current time. For tests. */
void ig_chat_template_set_time(ig_chat_template *tmpl, int64_t unix_time);

/* Replace the limits (fields left 0 keep their defaults). */
void ig_chat_template_set_limits(ig_chat_template *tmpl, const ig_chat_template_limits *limits);

/* Free a template; NULL is fine. */
void ig_chat_template_free(ig_chat_template *tmpl);

#endif
