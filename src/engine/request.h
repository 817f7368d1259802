/*
 * request.h: one request inside the engine (ig_req): the validated, owned
 * copy of what a caller submitted (ig_request), its sampler, its streaming
 * detokenizer and held-back text, its KV block table, and its telemetry.
 *
 * Ownership and threads: ig__req_new runs on the submitting thread (so
 * validation and the allocations it needs happen there, outside the engine's
 * step); the finished object then moves to the engine thread through the
 * engine's locked queue, and from then on only the engine thread (the
 * scheduler) touches it. Internal to src/engine/.
 */
#ifndef IG_ENGINE_REQUEST_H
#define IG_ENGINE_REQUEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ignis.h"
#include "kv/kv_manager.h"
#include "sample/sampler.h"
#include "tokenizer/vocab.h"

#define IG_REQ_MAX_LOGPROBS 20 /* most top log-probabilities a request may ask for */

typedef enum ig_req_state {
    IG_REQ_STATE_WAITING = 0, /* in the waiting queue, holding no blocks */
    IG_REQ_STATE_RUNNING,     /* admitted: holds a block table (maybe partly computed) */
    IG_REQ_STATE_FINISHED,    /* its FINISHED event was emitted; about to be freed */
} ig_req_state;

typedef struct ig_req {
    ig_request_id id;
    uintptr_t user_data;
    int32_t priority;    /* higher first */
    uint64_t order;      /* arrival order within the scheduler, for FCFS */
    int64_t arrival_us;  /* submit time */
    int64_t deadline_us; /* 0: none; else the earlier of timeout and deadline */
    int32_t max_tokens;  /* <= 0: until the context is full */
    int32_t n_logprobs;  /* [0, IG_REQ_MAX_LOGPROBS] */

    int32_t *tokens;    /* [cap_tokens] prompt then generated ids */
    int32_t n_tokens;   /* prompt + generated */
    int32_t cap_tokens; /* the most tokens this request can ever hold */
    int32_t n_prompt;

    char **stop; /* [n_stop] owned stop strings */
    size_t n_stop;

    ig_sampler *sampler;   /* owned; seeded, used only for this request */
    const ig_vocab *vocab; /* borrowed from the model; NULL: no text, no EOG */
    ig_detok detok;
    char *text; /* text produced but not yet released (may begin a stop string) */
    size_t text_len, text_cap;

    ig_kv_seq *kv; /* owned block table; NULL until first scheduled */
    ig_req_state state;
    bool is_cancelled;         /* set by cancel; acted on at the next step */
    bool is_admitted_once;     /* n_cached_tokens recorded */
    int32_t preempted_at_step; /* step number of the last preemption (-1: never) */

    /* telemetry */
    int64_t first_sched_us; /* -1 until first scheduled */
    int64_t first_token_us; /* -1 until the first token */
    int64_t last_token_us;
    float *itl_ms; /* [n_itl] inter-token gaps */
    int32_t n_itl, cap_itl;
    int32_t n_cached; /* prompt tokens found in the prefix cache at first admission */
    int32_t n_gen;    /* tokens sampled */
    int32_t n_preempt;

    /* request coalescing (engine.c): the canonical bytes of everything that
     * decides a deterministic request's output; owned; NULL: not coalescable */
    char *ckey;
    size_t ckey_len;
} ig_req;

/*
 * Validate `r` and build an ig_req from it (everything copied). n_vocab and
 * vocab describe the model (vocab may be NULL: then stop strings are refused
 * and no text is produced); n_ctx is the per-sequence context and
 * n_ctx_blocks the most tokens one sequence can ever hold in the KV pool.
 * Errors: IG_EINVAL (a bad field, named), IG_ECONTEXT (prompt empty or not
 * fitting), IG_ENOMEM. On failure *out is untouched.
 */
ig_status ig__req_new(const ig_request *r, ig_request_id id, int64_t now_us, int32_t n_vocab,
                      const ig_vocab *vocab, int32_t n_ctx, ig_req **out, ig_error *err);

/* Free everything the request owns (its block table included). NULL is fine. */
void ig__req_free(ig_req *q);

/* Append text to the held-back buffer. IG_ENOMEM leaves it unchanged. */
ig_status ig__req_text_append(ig_req *q, const char *s, size_t n);

/* Offset of the first complete stop string in the held-back text, or -1. */
long ig__req_find_stop(const ig_req *q);

/* Bytes at the end of the held-back text that could begin a stop string. */
size_t ig__req_held_suffix(const ig_req *q);

/* Record a token time for TTFT / inter-token telemetry. */
void ig__req_note_token_time(ig_req *q, int64_t now_us);

#endif
