/*
 * scheduler.h: the engine core, a steppable state machine (schedule ->
 * execute -> update) with no threads of its own.
 *
 * Model of use
 * ------------
 * ig_sched owns the KV cache (data and block manager), the waiting queue and
 * the running set. Requests come in with ig_sched_add (an ig_req built by
 * ig__req_new); each ig_sched_step(now):
 *
 *   1. ends requests that were cancelled (CANCELLED) or are past their
 *      deadline (TIMEOUT), freeing their blocks;
 *   2. schedules a ragged batch under max_batch_tokens and max_seqs:
 *        a. running sequences that decode (one token each), in order of
 *           priority (higher first) then arrival;
 *        b. running sequences still in a chunked prefill, same order;
 *        c. waiting requests, same order: prefix lookup, then a prefill
 *           chunk of what the budget leaves. Admission stops at the first
 *           request that does not fit (no overtaking within the order).
 *      When a running sequence cannot get its blocks, the lowest-priority,
 *      newest running sequence is preempted: its blocks are released (full
 *      ones stay in the prefix cache) and it goes back to waiting with every
 *      token it generated kept, to be recomputed later. A waiting request
 *      preempts running ones only if they have strictly lower priority (so
 *      equal priorities never thrash). A sequence alone in the pool that
 *      cannot grow ends with LENGTH.
 *   3. runs one forward pass over the whole batch; logits only for
 *      sequences whose last token is in the batch (prefill done, or decode);
 *   4. commits KV (publishing full blocks), samples each such sequence's
 *      next token with its own sampler, detokenizes, checks EOG, stop
 *      strings, max_tokens and the context, emits TOKEN / FINISHED events,
 *      and releases finished sequences' blocks.
 *
 * Batch invariance: what a sequence computes (its tokens, positions, blocks'
 * contents) and how it samples (its own logits row, its own RNG) never
 * depends on other sequences; the model's per-row invariance does the rest.
 *
 * Events go to cfg.emit on the calling thread, during add (never) and step;
 * pointers in an event are valid only during the call.
 *
 * Time is passed in (now_us, CLOCK_MONOTONIC µs), so tests drive deadlines
 * exactly: now_us times the step's start (expiry, admission: queue_us). A
 * token is timed when it is emitted, after the forward pass: the step reads
 * cfg.clock once after the forward and uses that for every token and end of
 * its update phase (first_token_us, inter-token times, total_us), so
 * time-to-first-token includes the compute. With no clock, now_us is used
 * throughout (tests).
 *
 * Threads: none. One thread at a time calls everything (the engine thread).
 */
#ifndef IG_ENGINE_SCHEDULER_H
#define IG_ENGINE_SCHEDULER_H

#include <stdbool.h>
#include <stdint.h>

#include "base/threadpool.h"
#include "engine/request.h"
#include "ignis.h"
#include "kv/kv_manager.h"
#include "model/model.h"

typedef void (*ig_sched_emit_fn)(void *ctx, const ig_event *ev);

/* The time now (CLOCK_MONOTONIC µs, or the test's own clock). */
typedef int64_t (*ig_sched_clock_fn)(void *ctx);

typedef struct ig_sched_config {
    ig_model *model;    /* borrowed */
    ig_pool *pool;      /* borrowed; may be NULL (inline) */
    int32_t n_blocks;   /* KV pool blocks (> 0) */
    int32_t block_size; /* tokens per block (> 0) */
    ig_evict_policy eviction;
    bool prefix_caching;
    int32_t max_batch_tokens; /* > 0 */
    int32_t max_seqs;         /* > 0 */
    int32_t max_waiting;      /* ig_sched_add refuses beyond it; <= 0: unbounded */
    int32_t n_ctx;            /* per-sequence context; capped at n_blocks * block_size */
    ig_sched_emit_fn emit;    /* required */
    void *emit_ctx;
    ig_sched_clock_fn clock; /* read once per step after the forward; NULL: now_us */
    void *clock_ctx;
} ig_sched_config;

typedef struct ig_sched ig_sched;

/* What one step did (for tests and stats). */
typedef struct ig_sched_step_info {
    int32_t n_tokens;         /* tokens in the batch (0: nothing ran) */
    int32_t n_seqs;           /* sequences in the batch */
    int32_t n_decode;         /* of them, decoding one token */
    int32_t n_prefill_tokens; /* tokens of prefill chunks */
    int32_t n_admitted;       /* waiting requests that started running */
    int32_t n_preempted;
    int32_t n_sampled;  /* tokens sampled */
    int32_t n_finished; /* requests that ended this step (any reason) */
} ig_sched_step_info;

/* Counters over the scheduler's life. */
typedef struct ig_sched_counters {
    uint64_t n_steps;
    uint64_t n_prompt_tokens; /* tokens computed in prefill chunks (recompute included) */
    uint64_t n_generated;     /* tokens sampled */
    uint64_t n_preemptions;
    uint64_t n_finished;
    uint64_t n_admitted;        /* requests admitted for the first time */
    uint64_t n_admitted_prompt; /* their prompt tokens */
    uint64_t n_admitted_cached; /* of those, served by the prefix cache */
} ig_sched_counters;

/*
 * Allocate the KV cache and block manager and the step's scratch (nothing is
 * allocated per step afterwards, except text and telemetry growth).
 * Errors: IG_EINVAL (a bad field), IG_ENOMEM. *out is the caller's.
 */
ig_status ig_sched_new(const ig_sched_config *cfg, ig_sched **out, ig_error *err);

/* Free every request without emitting events, then the scheduler. NULL is fine. */
void ig_sched_free(ig_sched *s);

/* The context length in effect (config capped by the pool). */
int32_t ig_sched_n_ctx(const ig_sched *s);

/*
 * Queue a request (the scheduler takes it on success). Errors: IG_EOVERLOADED
 * (max_waiting reached), IG_EINVAL (a request whose prompt needs more blocks
 * than the pool has). On failure the caller still owns q.
 */
ig_status ig_sched_add(ig_sched *s, ig_req *q, ig_error *err);

/* Mark a request cancelled; it ends at the next step. IG_ENOTFOUND if unknown. */
ig_status ig_sched_cancel(ig_sched *s, ig_request_id id);

/* Mark every request cancelled. */
void ig_sched_cancel_all(ig_sched *s);

/*
 * One step (see the top of this file). info may be NULL. Returns IG_OK, or
 * the forward pass's error, in which case every sequence in that batch has
 * ended with ERROR (the others are untouched and the scheduler stays usable).
 */
ig_status ig_sched_step(ig_sched *s, int64_t now_us, ig_sched_step_info *info, ig_error *err);

int32_t ig_sched_n_waiting(const ig_sched *s);
int32_t ig_sched_n_running(const ig_sched *s);
bool ig_sched_has_work(const ig_sched *s);
void ig_sched_get_counters(const ig_sched *s, ig_sched_counters *out);

/* Tokens a step may plan from now on, clamped to [1, max_batch_tokens] (the
 * adaptive step budget moves it; it starts at max_batch_tokens). */
void ig_sched_set_token_budget(ig_sched *s, int32_t n_tokens);
int32_t ig_sched_token_budget(const ig_sched *s);

/* The block manager (for stats and the invariant checker). */
ig_kv_manager *ig_sched_kv(ig_sched *s);

#endif
