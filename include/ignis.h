/*
 * ignis.h: the public C API of Ignis, an LLM inference engine.
 *
 * Model of use
 * ------------
 * Every fallible function returns an ig_status: 0 (IG_OK) on success, a
 * negative code on failure. Functions that can fail for reasons worth telling
 * a person also take an optional `ig_error *` (may be NULL) which receives a
 * human-readable message. On failure no ownership moves: anything the caller
 * passed in is still the caller's, and no out-parameter is written.
 *
 * Handles are opaque; each has a matching _free. Unless a function says
 * otherwise, a handle may be used by one thread at a time.
 */
#ifndef IGNIS_H
#define IGNIS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* X(name, value, message): the single list of status codes. */
#define IG_STATUS_MAP(X)                                                                           \
    X(OK, 0, "ok")                                                                                 \
    X(EINVAL, -1, "invalid argument")                                                              \
    X(ENOMEM, -2, "out of memory")                                                                 \
    X(EIO, -3, "input/output error")                                                               \
    X(EFORMAT, -4, "malformed data")                                                               \
    X(EUNSUPPORTED, -5, "not supported")                                                           \
    X(ERANGE, -6, "value out of range")                                                            \
    X(ENOTFOUND, -7, "not found")                                                                  \
    X(ETYPE, -8, "wrong type")                                                                     \
    X(ECONTEXT, -9, "context length exceeded")                                                     \
    X(EOVERLOADED, -10, "overloaded")                                                              \
    X(ECANCELLED, -11, "cancelled")                                                                \
    X(ETIMEDOUT, -12, "timed out")                                                                 \
    X(EINTERNAL, -13, "internal error")

typedef enum ig_status {
#define IG__STATUS_ENUM(name, value, msg) IG_##name = value,
    IG_STATUS_MAP(IG__STATUS_ENUM)
#undef IG__STATUS_ENUM
} ig_status;

/* A failure's code and message. Zero-initialise (`ig_error err = {0};`). */
typedef struct ig_error {
    ig_status code;   /* IG_OK until something fails */
    char message[512]; /* NUL-terminated, human readable */
} ig_error;

/* The fixed message for a code ("out of memory"); never NULL. */
const char *ig_strerror(ig_status status);
/* The code's name ("IG_ENOMEM"); never NULL. */
const char *ig_errname(ig_status status);


/* ======================================================================== */
/* The serving engine                                                        */
/* ======================================================================== */
/*
 * Model of use
 * ------------
 * An ig_engine serves one model to many concurrent requests: continuous
 * batching over a paged KV cache with prefix caching. Create it with
 * ig_engine_new(), submit requests with ig_engine_submit() (non-blocking; an
 * id comes back), and receive each request's events either through the
 * config's callback or by ig_engine_poll(). A request produces zero or more
 * IG_EVENT_TOKEN events and then exactly one IG_EVENT_FINISHED event, whose
 * reason is stop, length, cancelled, timeout or error (errors are reported
 * this way, with a status and a message: there is no separate error event),
 * and which carries the request's telemetry. An end-of-generation token gets
 * no TOKEN event (it ends the request with STOP; n_generated_tokens counts
 * it). After its FINISHED event has been delivered an id is forgotten.
 *
 * Scheduling: each engine step runs one forward pass over a ragged batch of
 * at most max_batch_tokens tokens from at most max_seqs sequences: running
 * decodes first, then chunked prefills, then waiting requests by priority
 * (higher first) and arrival. When KV blocks run out the lowest-priority,
 * newest running request is preempted and later recomputed (the client only
 * waits); a waiting request preempts running ones of strictly lower
 * priority. Prompts reuse the longest cached prefix (whole blocks).
 *
 * Outputs do not depend on load: a request's tokens and log-probabilities are
 * the same whether it runs alone or beside others, after a prefix-cache hit,
 * chunked, or after being preempted and recomputed (given a fixed seed).
 *
 * Threads
 * -------
 * One engine thread per engine owns the scheduler, the KV cache and every
 * request's sampler; it runs the model. Other threads talk to it through a
 * locked queue:
 *   - ig_engine_submit, ig_engine_cancel, ig_engine_poll, ig_engine_stats,
 *     ig_engine_state, ig_engine_drain: any thread, concurrently.
 *   - ig_engine_stop and ig_engine_free: one thread, once; no other call may
 *     be in progress or follow on that engine.
 *   - The event callback runs on the engine thread with no lock held. It must
 *     not block; it may call ig_engine_submit and ig_engine_cancel (never
 *     poll, drain, stop or free).
 *
 * Handles borrowed by the config (model, pool) must outlive the engine.
 */

#include <stdbool.h>

struct ig_model;          /* src/model/model.h */
struct ig_pool;           /* src/base/threadpool.h */
struct ig_sampler_params; /* src/sample/sampler.h */

typedef struct ig_engine ig_engine;
typedef uint64_t ig_request_id; /* never 0; 0 means "any" where an id is asked */

typedef enum ig_engine_state {
    IG_ENGINE_STATE_LOADING = 0, /* being created */
    IG_ENGINE_STATE_READY,       /* idle, accepting requests */
    IG_ENGINE_STATE_BUSY,        /* running or holding requests */
    IG_ENGINE_STATE_DRAINING,    /* finishing what it has; refuses new requests */
    IG_ENGINE_STATE_STOPPED,     /* thread ended; only ig_engine_free remains useful */
} ig_engine_state;

/* How free blocks that still hold cached prefixes are chosen for reuse. */
typedef enum ig_engine_eviction {
    IG_ENGINE_EVICTION_LRU = 0, /* least recently used first (default) */
    IG_ENGINE_EVICTION_LFU,     /* least frequently used first */
    IG_ENGINE_EVICTION_FIFO,    /* oldest cached first */
} ig_engine_eviction;

typedef enum ig_event_type {
    IG_EVENT_TOKEN = 1,    /* one generated token and the text it releases */
    IG_EVENT_FINISHED = 2, /* the request's last event */
} ig_event_type;

typedef enum ig_finish_kind {
    IG_FINISH_KIND_NONE = 0,  /* not finished */
    IG_FINISH_KIND_STOP,      /* end-of-generation token or stop string */
    IG_FINISH_KIND_LENGTH,    /* max_tokens, the context length, or a full KV cache */
    IG_FINISH_KIND_CANCELLED, /* ig_engine_cancel, or the engine stopped */
    IG_FINISH_KIND_TIMEOUT,   /* past its timeout or deadline */
    IG_FINISH_KIND_ERROR,     /* see the event's status and message */
} ig_finish_kind;

/* "stop", "length", "cancelled", "timeout", "error" ("none" for NONE). */
const char *ig_finish_kind_name(ig_finish_kind kind);

typedef struct ig_event_logprob {
    int32_t token;   /* token id */
    float logprob;   /* natural log of its probability under the model's raw logits */
} ig_event_logprob;

/* What one request cost, carried by its FINISHED event. Times are µs of
 * CLOCK_MONOTONIC. */
typedef struct ig_request_stats {
    ig_request_id id;
    uintptr_t user_data;        /* the request's user_data, as given */
    int64_t arrival_us;         /* submitted */
    int64_t queue_us;           /* arrival to first scheduled (-1: never scheduled) */
    int64_t ttft_us;            /* arrival to first token (-1: no token) */
    int64_t total_us;           /* arrival to finish */
    int32_t n_prompt_tokens;    /* prompt length */
    int32_t n_cached_tokens;    /* prompt tokens served from the prefix cache (first admission) */
    int32_t n_generated_tokens; /* tokens sampled (an end-of-generation token included) */
    int32_t n_preemptions;      /* times it was preempted and later recomputed */
    ig_finish_kind finish;
    const float *itl_ms;        /* [n_itl] gaps between consecutive tokens, ms */
    int32_t n_itl;
} ig_request_stats;

/*
 * One event. In callback mode every pointer is borrowed for the duration of
 * the callback. From ig_engine_poll the event owns them (one allocation per
 * event, made on the engine thread): release it with ig_event_release().
 */
typedef struct ig_event {
    ig_event_type type;
    ig_request_id id;
    uintptr_t user_data;        /* the request's user_data */
    /* TOKEN */
    int32_t token;              /* the sampled token id */
    float logprob;              /* its log-probability (0 unless the request asked for logprobs) */
    const ig_event_logprob *top; /* [n_top] most likely tokens, best first */
    int32_t n_top;
    /* TOKEN and FINISHED: text released now (complete UTF-8, stop strings
     * cut; text that may begin a stop string is held back until it is known
     * not to). NUL-terminated at text_len; may be empty; may itself hold NUL
     * bytes if the model produced them. A FINISHED event for STOP or LENGTH
     * carries the text still held back or buffered. */
    const char *text;
    size_t text_len;
    /* FINISHED */
    ig_finish_kind finish;
    ig_status status;            /* IG_OK for STOP/LENGTH, IG_ECANCELLED, IG_ETIMEDOUT, or the error */
    const char *message;         /* "" or what went wrong */
    const ig_request_stats *stats;
    void *owned__;               /* poll: the event's memory; private */
} ig_event;

/* Free what a polled event owns; the struct itself is the caller's. NULL or
 * a zeroed event is fine. */
void ig_event_release(ig_event *ev);

typedef void (*ig_event_fn)(void *user, const ig_event *ev);

typedef struct ig_engine_config {
    struct ig_model *model;      /* borrowed; required */
    struct ig_pool *pool;        /* borrowed kernel threads; NULL: own pool of n_threads */
    int n_threads;               /* for the own pool; <= 0: all CPUs */
    size_t kv_cache_mb;          /* KV pool size; default 256 */
    int32_t kv_blocks;           /* > 0: exactly this many blocks (overrides kv_cache_mb) */
    int32_t block_size;          /* tokens per KV block; default 16 */
    ig_engine_eviction eviction; /* default LRU */
    bool prefix_caching;         /* reuse cached prompt prefixes; default true */
    int32_t max_batch_tokens;    /* tokens per step; default 512 */
    int32_t max_seqs;            /* sequences per step; default 64 */
    int32_t max_queue;           /* waiting requests before submit says IG_EOVERLOADED; default 256 */
    int32_t n_ctx;               /* per-sequence context; 0: the model's training context */
    double target_step_ms;       /* > 0: adaptive step budget: a PID controller moves the
                                    per-step token budget within [min(max_seqs,
                                    max_batch_tokens), max_batch_tokens] to hold each step
                                    (= the inter-token gap) near this many ms. 0: off
                                    (default) */
    bool coalesce;               /* request coalescing: a deterministic request (temperature 0)
                                    arriving while an identical one (same prompt tokens,
                                    sampling parameters, max_tokens, stop strings,
                                    n_logprobs) runs is not computed: it receives the running
                                    one's events (those already emitted replayed first). Its
                                    own cancel and timeout stay its own; if the running one
                                    ends otherwise than by STOP/LENGTH, a waiting one is
                                    scheduled in its place. Counted in n_coalesced.
                                    Default false */
    int32_t response_cache;      /* > 0: keep this many finished deterministic responses
                                    (temperature 0, ended by STOP or LENGTH; key as for
                                    coalesce) and answer an identical later request from
                                    them at once, its events replayed with its own id,
                                    without computing it (least recently used one dropped
                                    first). Counted in n_response_cache_hits. 0: off
                                    (default) */
    ig_event_fn on_event;        /* NULL: events are queued for ig_engine_poll */
    void *on_event_user;
} ig_engine_config;

ig_engine_config ig_engine_config_default(void);

typedef struct ig_request {
    const int32_t *prompt;            /* [n_prompt] token ids; copied */
    size_t n_prompt;                  /* >= 1, < the context length */
    const struct ig_sampler_params *sampling; /* copied; NULL: ig_sampler_params_default() */
    int32_t max_tokens;               /* most tokens to generate; <= 0: until the context is full */
    const char *const *stop;          /* [n_stop] stop strings, non-empty; copied */
    size_t n_stop;
    int32_t priority;                 /* higher runs first; FCFS within a level */
    int64_t timeout_ms;               /* > 0: end with TIMEOUT this long after submit */
    int64_t deadline_us;              /* > 0: CLOCK_MONOTONIC µs after which it ends with TIMEOUT */
    int32_t n_logprobs;               /* top log-probabilities per token, [0, 20] */
    uintptr_t user_data;              /* carried to every event, never touched */
} ig_request;

typedef struct ig_engine_stats {
    ig_engine_state state;
    int32_t n_waiting;        /* submitted, not running (queue depth) */
    int32_t n_running;        /* holding KV blocks */
    int32_t kv_blocks_total;
    int32_t kv_blocks_used;   /* held by running sequences */
    int32_t kv_blocks_cached; /* free but holding reusable prefixes */
    double kv_usage;          /* used / total */
    double prefix_hit_rate;   /* cached prompt tokens / prompt tokens looked up */
    uint64_t n_requests;      /* submitted and accepted */
    uint64_t n_finished;
    uint64_t n_rejected;      /* submit said IG_EOVERLOADED */
    uint64_t n_preemptions;
    uint64_t n_coalesced;     /* requests served by an identical running one (coalesce) */
    uint64_t n_response_cache_hits; /* requests answered from the response cache */
    uint64_t n_steps;
    uint64_t n_prompt_tokens;    /* computed by the model (cache hits excluded) */
    uint64_t n_generated_tokens;
    double tokens_per_s;      /* generated tokens per second over the last ~1 s of steps */
    double step_ms_last;      /* the last step's duration */
    double step_ms_avg;       /* mean over all steps */
    int32_t step_budget_tokens; /* the per-step token budget in force */
    double budget_pid_error;    /* adaptive budget: last relative error (target - step) / target */
    double budget_pid_integral; /* adaptive budget: its integral term */
} ig_engine_stats;

/*
 * Start an engine: allocate the KV pool, start the engine thread. On success
 * *out is the caller's, to ig_engine_free(). Errors: IG_EINVAL (a bad config
 * field, named in the message), IG_ENOMEM, IG_EINTERNAL (thread creation).
 */
ig_status ig_engine_new(const ig_engine_config *config, ig_engine **out, ig_error *err);

/*
 * Queue a request; never blocks on the model. Everything the request points
 * to is copied before return. *id_out receives the id (also in every event).
 * Errors (no event follows): IG_EINVAL (bad field), IG_ECONTEXT (prompt
 * empty or too long), IG_EOVERLOADED (the waiting queue is full, or the
 * engine drains or stopped), IG_ENOMEM.
 */
ig_status ig_engine_submit(ig_engine *e, const ig_request *req, ig_request_id *id_out,
                           ig_error *err);

/*
 * Ask that a request end: it finishes with CANCELLED at the engine's next
 * step, its blocks freed then (its FINISHED event still arrives). Errors:
 * IG_ENOTFOUND (unknown, or already finished).
 */
ig_status ig_engine_cancel(ig_engine *e, ig_request_id id);

/*
 * Take up to `cap` queued events of request `id` (0: of any request) into
 * out[], waiting up to timeout_ms for the first (0: don't wait, < 0: wait
 * for ever). *n_out receives the count. Only for an engine without a
 * callback. Each event must be released with ig_event_release(). Events of
 * one request come in order. Errors: IG_ETIMEDOUT (nothing came in time),
 * IG_ENOTFOUND (id is not a live request), IG_EINVAL (callback mode),
 * IG_ECANCELLED (the engine stopped and nothing is left for this id).
 */
ig_status ig_engine_poll(ig_engine *e, ig_request_id id, ig_event *out, size_t cap,
                         size_t *n_out, int64_t timeout_ms);

/* A snapshot of the counters (as of the last step). */
void ig_engine_stats_get(ig_engine *e, ig_engine_stats *out);

ig_engine_state ig_engine_get_state(ig_engine *e);

/*
 * Stop accepting requests (submit says IG_EOVERLOADED) and wait until every
 * accepted one has finished, at most timeout_ms (< 0: for ever). The engine
 * stays in DRAINING. Errors: IG_ETIMEDOUT (requests remain).
 */
ig_status ig_engine_drain(ig_engine *e, int64_t timeout_ms);

/* Cancel everything left (their FINISHED events are delivered) and end the
 * engine thread. State becomes STOPPED. Safe to call twice. */
void ig_engine_stop(ig_engine *e);

/* Stop if needed, then free the engine and any events never polled. NULL is fine. */
void ig_engine_free(ig_engine *e);

#ifdef __cplusplus
}
#endif
#endif /* IGNIS_H */
