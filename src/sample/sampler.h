/*
 * sampler.h: choosing the next token from a row of logits.
 *
 * Model of use
 * ------------
 * An ig_sampler is a chain of stages applied in order to a candidate array
 * (one {id, logit, p} per vocabulary entry). Filtering stages edit logits or
 * drop candidates; the last stage selects a token. Most callers build the
 * usual chain from an ig_sampler_params with ig_sampler_new(), which uses
 * llama.cpp's common order:
 *
 *     logit bias -> penalties -> top-k -> top-p -> min-p -> temperature -> dist
 *
 * and, when temperature == 0, logit bias -> penalties -> greedy (the filters
 * never remove the most likely token, so they cannot change an argmax).
 *
 * Per generated token:
 *
 *     ig_sampler_sample(s, logits, &tok, &err);   // logits: float[n_vocab]
 *     ig_sampler_accept(s, tok, &err);            // feed the choice back
 *
 * Sampling does not record the token by itself, so a caller that rejects a
 * choice (e.g. speculative decoding) simply does not accept it.
 *
 * Token history and penalties
 * ---------------------------
 * The chain keeps the history its penalties need, with two kinds of token:
 *   - ig_sampler_accept_prompt(): prompt tokens. They enter the repetition
 *     window only (llama.cpp counts the prompt in its last-n window; vLLM's
 *     repetition_penalty also sees the prompt).
 *   - ig_sampler_accept(): generated tokens. They enter the repetition window
 *     and the counts behind presence and frequency penalties, which therefore
 *     follow the OpenAI API and vLLM: they count generated tokens only.
 * Feeding the prompt is optional; without it only generated tokens count.
 *
 * Formulas, for a token t with logit l (applied once per token, in this order):
 *   repetition, if t occurs in the last repeat_last_n accepted tokens
 *     (prompt and generated): l > 0 ? l / repeat_penalty : l * repeat_penalty
 *   frequency and presence, with c = times t was generated so far:
 *     l -= c * frequency_penalty + (c > 0 ? presence_penalty : 0)
 *
 * Randomness
 * ----------
 * Sampling draws from the chain's own generator (sample/rng.h: xoshiro256**
 * seeded by splitmix64), so the same seed and the same sequence of logits
 * give the same tokens on every platform. Greedy never draws.
 *
 * Ownership and threads
 * ---------------------
 * A chain owns its stages, their state and one candidate buffer sized to
 * n_vocab, all allocated when the chain is built: sampling, accepting and
 * resetting never allocate. A chain is used by one thread at a time; give
 * each request its own (ig_sampler_clone() copies one, history and RNG
 * position included).
 *
 * Errors
 * ------
 * Functions return IG_OK or a negative ig_status and fill the optional
 * ig_error. Bad parameters are IG_EINVAL with a message naming the field; a
 * NaN logit or a row where every token is banned is IG_ERANGE. On failure no
 * ownership moves and the chain keeps the state it had before the call
 * (except that a failed sample leaves the candidate view undefined).
 */
#ifndef IG_SAMPLE_SAMPLER_H
#define IG_SAMPLE_SAMPLER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ignis.h"

/* ------------------------------------------------------------------------ */
/* Candidates                                                                */

typedef struct ig_candidate {
    int32_t id;  /* token id */
    float logit; /* current (possibly biased, penalised, scaled) logit */
    float p;     /* probability; set by the selecting "dist" stage and by
                    ig_candidates_softmax(), otherwise stale */
} ig_candidate;

/*
 * The working set a stage edits. Stages may reorder and shrink data[0..n) but
 * never grow it. Two facts stages may rely on and must keep true:
 *   - n_sorted: data[0..n_sorted) are the n_sorted highest logits in
 *     descending order (ties: lower id first), and every later entry is
 *     ordered after data[n_sorted-1] by that rule. 0 means "nothing known".
 *   - is_vocab_order: data[i].id == i for every i < n (only true before any
 *     stage reorders or drops; lets stages index by token id).
 */
typedef struct ig_candidates {
    ig_candidate *data;  /* [n] borrowed from the chain */
    size_t n;            /* candidates still in play */
    size_t n_sorted;     /* see above */
    bool is_vocab_order; /* see above */
    int32_t selected;    /* token chosen by a selecting stage, -1 before */
} ig_candidates;

/* Set p = softmax(logit) over data[0..n). A +inf logit takes all the mass
 * (shared equally among +inf entries). IG_ERANGE if n == 0 or every logit is
 * -inf (nothing can be chosen); p is then left unchanged. */
ig_status ig_candidates_softmax(ig_candidates *cur);

/* Make data[0..m) the m best candidates in descending order (see n_sorted),
 * m clamped to n; raises cur->n_sorted to at least m. Expected O(n + m log m):
 * a partial selection, never a full sort unless m == n. */
void ig_candidates_sort_top(ig_candidates *cur, size_t m);

/* ------------------------------------------------------------------------ */
/* Stages: the seam                                                          */

/*
 * A stage is a table of functions plus a state pointer that the chain owns
 * once the stage is added. Only `apply` is required.
 */
typedef struct ig_sampler_stage_ops {
    const char *name; /* for messages, e.g. "top_p" */
    /* Edit `cur` (and, for a selecting stage, set cur->selected). Returns
     * IG_OK or a status with `err` filled. Required. */
    ig_status (*apply)(void *state, ig_candidates *cur, ig_error *err);
    /* Record an accepted token. `is_prompt` tells prompt from generated
     * tokens (see "Token history"). The chain has already checked the id is
     * in [0, n_vocab). Optional; default: nothing. */
    void (*accept)(void *state, int32_t token, bool is_prompt);
    /* Return to the state just after creation. Optional; default: nothing. */
    void (*reset)(void *state);
    /* Make an independent copy of the state in *out. Optional: a stage
     * without it can only be cloned if its state is NULL (stateless). */
    ig_status (*clone)(const void *state, void **out);
    /* Release the state. Optional; default: nothing. */
    void (*free)(void *state);
} ig_sampler_stage_ops;

/* ------------------------------------------------------------------------ */
/* Parameters                                                                */

typedef struct ig_logit_bias {
    int32_t token; /* id in [0, n_vocab) */
    float bias;    /* added to the logit; -INFINITY bans the token; not NaN.
                      Repeated ids add up. */
} ig_logit_bias;

/* seed value meaning "draw a seed from the OS" (see ig_sampler_seed()). */
#define IG_SAMPLER_SEED_RANDOM UINT64_MAX
/* Largest repeat_last_n accepted (the window is preallocated). */
#define IG_SAMPLER_MAX_LAST_N (1 << 20)

typedef struct ig_sampler_params {
    float temperature;               /* >= 0; 0 = greedy (argmax, lowest id on ties). Default 1 */
    int32_t top_k;                   /* keep the k most likely; <= 0 = off. Default 0 */
    float top_p;                     /* (0, 1]: keep the smallest most-likely set whose mass
                                        reaches top_p; 1 = off. Default 1 */
    float min_p;                     /* [0, 1]: drop tokens with p < min_p * p_max; 0 = off.
                                        Default 0 */
    float repeat_penalty;            /* > 0; 1 = off. Default 1 */
    int32_t repeat_last_n;           /* repetition window in tokens, [0, IG_SAMPLER_MAX_LAST_N];
                                        0 = no window (repeat_penalty has no effect). Default 64 */
    float presence_penalty;          /* finite; 0 = off. Default 0 (OpenAI allows [-2, 2]) */
    float frequency_penalty;         /* finite; 0 = off. Default 0 (OpenAI allows [-2, 2]) */
    const ig_logit_bias *logit_bias; /* [n_logit_bias] borrowed; copied by ig_sampler_new */
    size_t n_logit_bias;
    uint64_t seed; /* RNG seed; IG_SAMPLER_SEED_RANDOM = from the OS. Default RANDOM */
} ig_sampler_params;

/*
 * The defaults above: sample from the model's own distribution (OpenAI's
 * defaults), random seed. A zeroed struct is NOT valid (top_p and
 * repeat_penalty 0); start from this. llama.cpp's CLI defaults, for
 * comparison, are temperature 0.8, top_k 40, top_p 0.95, min_p 0.05.
 */
ig_sampler_params ig_sampler_params_default(void);

/* Check every field against n_vocab. IG_EINVAL naming the first bad field
 * ("top_p must be in (0, 1], got 1.5"). */
ig_status ig_sampler_params_validate(const ig_sampler_params *params, int32_t n_vocab,
                                     ig_error *err);

/* ------------------------------------------------------------------------ */
/* Chains                                                                    */

typedef struct ig_sampler ig_sampler;

/*
 * Build the standard chain (see the top of this file) for a vocabulary of
 * n_vocab tokens. Validates params first. Stages whose parameter is neutral
 * are left out. On success *out is the caller's, to ig_sampler_free().
 * Errors: IG_EINVAL (params, n_vocab <= 0), IG_ENOMEM.
 */
ig_status ig_sampler_new(const ig_sampler_params *params, int32_t n_vocab, ig_sampler **out,
                         ig_error *err);

/* An empty chain, to be filled with ig_sampler_add*(). Errors: IG_EINVAL
 * (n_vocab <= 0), IG_ENOMEM. `seed` as in ig_sampler_params (used by dist). */
ig_status ig_sampler_new_empty(int32_t n_vocab, uint64_t seed, ig_sampler **out, ig_error *err);

/* Free the chain and every stage's state. NULL is fine. */
void ig_sampler_free(ig_sampler *s);

/*
 * Append a stage. On success the chain owns `state` (freed through
 * ops->free); on failure (IG_EINVAL: ops or ops->apply NULL; IG_ENOMEM)
 * the caller still owns it. `ops` is borrowed and must outlive the chain.
 */
ig_status ig_sampler_add(ig_sampler *s, const ig_sampler_stage_ops *ops, void *state,
                         ig_error *err);

/* The built-in stages, appended to the chain. Each validates its argument as
 * ig_sampler_params_validate does (IG_EINVAL) and may fail with IG_ENOMEM. */
ig_status ig_sampler_add_logit_bias(ig_sampler *s, const ig_logit_bias *bias, size_t n_bias,
                                    ig_error *err);
ig_status ig_sampler_add_penalties(ig_sampler *s, int32_t repeat_last_n, float repeat_penalty,
                                   float frequency_penalty, float presence_penalty, ig_error *err);
ig_status ig_sampler_add_top_k(ig_sampler *s, int32_t k, ig_error *err);     /* k <= 0: no-op */
ig_status ig_sampler_add_top_p(ig_sampler *s, float p, ig_error *err);       /* p in (0, 1] */
ig_status ig_sampler_add_min_p(ig_sampler *s, float p, ig_error *err);       /* p in [0, 1] */
ig_status ig_sampler_add_temperature(ig_sampler *s, float t, ig_error *err); /* t > 0 */
/* Selecting stages. greedy: argmax, lowest id on ties. dist: draw from the
 * softmax of the remaining candidates with the chain's RNG; sets p. */
ig_status ig_sampler_add_greedy(ig_sampler *s, ig_error *err);
ig_status ig_sampler_add_dist(ig_sampler *s, ig_error *err);

/*
 * Choose a token from logits[0..n_vocab) (borrowed, not modified). Runs every
 * stage; the last selection wins. Does not record the token: call
 * ig_sampler_accept() for that. Errors: IG_ERANGE (a NaN logit, or every
 * candidate banned), IG_EINVAL (no selecting stage in the chain), or a custom
 * stage's status. *out_token is written only on success.
 */
ig_status ig_sampler_sample(ig_sampler *s, const float *logits, int32_t *out_token, ig_error *err);

/* The candidate set as the last ig_sampler_sample() left it (after every
 * stage; p is set when the chain ends in dist). Borrowed; valid until the
 * next call on the chain. Before any sample, n == 0. */
const ig_candidates *ig_sampler_candidates(const ig_sampler *s);

/* Record one generated token (see "Token history"). IG_EINVAL if out of
 * [0, n_vocab); nothing is recorded then. */
ig_status ig_sampler_accept(ig_sampler *s, int32_t token, ig_error *err);

/* Record prompt tokens (repetition window only). All ids are checked before
 * any is recorded: IG_EINVAL leaves the history unchanged. */
ig_status ig_sampler_accept_prompt(ig_sampler *s, const int32_t *tokens, size_t n_tokens,
                                   ig_error *err);

/* Forget the history and rewind the RNG to its initial seed, so the chain
 * behaves exactly as just after creation (a random seed is not redrawn). */
void ig_sampler_reset(ig_sampler *s);

/* An independent copy: same stages, same history, same RNG position, so both
 * continue identically on the same logits. Errors: IG_ENOMEM,
 * IG_EUNSUPPORTED (a custom stage with state but no clone). */
ig_status ig_sampler_clone(const ig_sampler *s, ig_sampler **out, ig_error *err);

/* The seed in use (the drawn one if IG_SAMPLER_SEED_RANDOM was asked), so a
 * random run can be reported and reproduced. */
uint64_t ig_sampler_seed(const ig_sampler *s);

int32_t ig_sampler_n_vocab(const ig_sampler *s);

/* ------------------------------------------------------------------------ */
/* Log-probabilities (for "logprobs" in responses)                           */

typedef struct ig_token_logprob {
    int32_t id;
    float logprob; /* natural log of the softmax probability */
} ig_token_logprob;

/* out[i] = logits[i] - logsumexp(logits), n >= 1; out may equal logits.
 * IG_ERANGE if a logit is NaN or all are -inf (out untouched). */
ig_status ig_log_softmax(const float *logits, size_t n, float *out);

/* The n_top most likely tokens of a logits row with their log-probabilities,
 * best first (ties: lower id first), written to out[0..min(n_top, n)).
 * *n_out receives that count. No allocation: O(n log n_top).
 * IG_ERANGE as ig_log_softmax. */
ig_status ig_logits_top_n(const float *logits, size_t n, size_t n_top, ig_token_logprob *out,
                          size_t *n_out);

#endif
