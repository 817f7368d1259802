/*
 * generate.h: one sequence, start to finish: prefill the prompt, then sample
 * token after token until an end-of-generation token, a stop string or the
 * token limit. This is what `ignis run` uses; the serving engine (many
 * sequences, paged cache, scheduler) is built separately on the same model
 * and sampler interfaces.
 *
 * Text is streamed through a callback in complete UTF-8 characters, and text
 * that could still turn out to be the start of a stop string is held back
 * until it is known not to be (so a stop string is never partly printed).
 */
#ifndef IG_ENGINE_GENERATE_H
#define IG_ENGINE_GENERATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "model/model.h"
#include "sample/sampler.h"

typedef enum ig_finish_reason {
    IG_FINISH_NONE = 0,
    IG_FINISH_STOP,    /* end-of-generation token or stop string */
    IG_FINISH_LENGTH,  /* n_predict reached, or the context is full */
    IG_FINISH_ABORTED, /* the callback asked to stop */
} ig_finish_reason;

typedef struct ig_gen_params {
    int32_t n_predict;          /* most new tokens; < 0: until the context is full */
    int32_t n_ctx;              /* context length; 0: the model's trained context */
    int32_t n_batch;            /* prompt tokens per forward pass; 0: 512 */
    const char *const *stop;    /* [n_stop] stop strings (borrowed) */
    size_t n_stop;
    ig_sampler_params sampling; /* see sampler.h */
} ig_gen_params;

ig_gen_params ig_gen_params_default(void);

typedef struct ig_gen_result {
    ig_finish_reason finish;
    int32_t n_prompt;    /* prompt tokens evaluated */
    int32_t n_gen;       /* tokens generated (sampled) */
    double prompt_ms;    /* prompt processing time */
    double gen_ms;       /* generation time (first sampled token to the end) */
    uint64_t seed;       /* the sampler's seed (the drawn one if random) */
} ig_gen_result;

/* Receives generated text (complete UTF-8, stop strings cut); return false to stop. */
typedef bool (*ig_gen_text_fn)(void *user, const char *text, size_t len);

/*
 * Generate from prompt tokens. `on_text` may be NULL. Errors: IG_EINVAL (bad
 * params), IG_ECONTEXT (the prompt does not fit the context, or is empty),
 * IG_ENOMEM, and model errors. On error *res is still filled as far as it got.
 */
ig_status ig_generate(ig_model *m, ig_pool *pool, const int32_t *prompt, size_t n_prompt,
                      const ig_gen_params *params, ig_gen_text_fn on_text, void *user,
                      ig_gen_result *res, ig_error *err);

#endif
