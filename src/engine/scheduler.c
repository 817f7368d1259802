/*
 * scheduler.c: the engine core (see scheduler.h for the model).
 *
 * State: `waiting` and `running` are arrays of requests kept sorted by
 * (priority descending, arrival order ascending); the preemption victim is
 * therefore always the last running entry. A step's plan is the `entries`
 * array (request, first position, token count), built before any token is
 * laid out, so that preempting a request that was already planned only
 * removes its entry and refunds its tokens. Requests that finish during a
 * step go to `done` and are freed at the end of the step, so a pointer in
 * the plan never dangles.
 *
 * Invariants (asserted where cheap):
 *   - a WAITING request holds no blocks (its kv table is empty);
 *   - a RUNNING request's table covers at least kv->n_tokens positions, and
 *     kv->n_tokens < n_tokens (there is always a token left to compute: the
 *     last sampled one, or the rest of the prompt);
 *   - at most one entry per request per step.
 */
#include "engine/scheduler.h"

#include <stdlib.h>
#include <string.h>

#include "base/error.h"

typedef struct {
    ig_req *q;
    int32_t start; /* first position computed this step */
    int32_t n;     /* tokens computed this step */
    bool is_decode;
} sched_entry;

typedef struct {
    ig_req **v;
    int32_t n, cap;
} req_list;

struct ig_sched {
    ig_sched_config cfg;
    int32_t n_ctx;
    int32_t n_vocab;
    ig_kv_cache *kv;
    ig_kv_manager *mgr;
    req_list waiting, running, done;
    ig_req **snap; /* scratch copy of a list to iterate while it changes */
    int32_t cap_snap;
    uint64_t next_order;
    int32_t step_no;
    ig_sched_counters counters;

    /* per-step scratch, sized at creation */
    sched_entry *entries; /* [max_seqs] */
    int32_t n_entries;
    int32_t budget;                    /* tokens left to plan in this step */
    int32_t token_budget;              /* tokens a step may plan, <= max_batch_tokens */
    int32_t *b_tokens, *b_pos, *b_seq; /* [max_batch_tokens] */
    uint8_t *b_want;                   /* [max_batch_tokens] */
    ig_batch_seq *b_seqs;              /* [max_seqs] */
    float *logits;                     /* [max_seqs][n_vocab] */
    float *lsm;                        /* [n_vocab] log-softmax scratch */
    ig_token_logprob top[IG_REQ_MAX_LOGPROBS];
    ig_event_logprob ev_top[IG_REQ_MAX_LOGPROBS];
    char *piece; /* detokenizer output */
    size_t piece_cap;
    ig_sched_step_info *info;
};

/* ---- sorted request lists ---- */

static bool ranks_before(const ig_req *a, const ig_req *b) {
    return a->priority > b->priority || (a->priority == b->priority && a->order < b->order);
}

static ig_status list_reserve(req_list *l, int32_t n) {
    if (n <= l->cap) return IG_OK;
    int32_t cap = l->cap ? l->cap : 16;
    while (cap < n) cap *= 2;
    ig_req **v = realloc(l->v, (size_t)cap * sizeof *v);
    if (!v) return IG_ENOMEM;
    l->v = v;
    l->cap = cap;
    return IG_OK;
}

/* Insert keeping the order; the caller reserved room. */
static void list_insert_sorted(req_list *l, ig_req *q) {
    IG_ASSERT(l->n < l->cap);
    int32_t i = l->n;
    while (i > 0 && ranks_before(q, l->v[i - 1])) {
        l->v[i] = l->v[i - 1];
        i--;
    }
    l->v[i] = q;
    l->n++;
}

static void list_remove(req_list *l, const ig_req *q) {
    for (int32_t i = 0; i < l->n; i++)
        if (l->v[i] == q) {
            memmove(&l->v[i], &l->v[i + 1], (size_t)(l->n - i - 1) * sizeof *l->v);
            l->n--;
            return;
        }
    IG_ASSERT(!"request not in list");
}

/* Copy a list into the snapshot buffer; returns its length (or -1: no memory). */
static int32_t snapshot(ig_sched *s, const req_list *l) {
    if (l->n > s->cap_snap) {
        int32_t cap = s->cap_snap ? s->cap_snap : 16;
        while (cap < l->n) cap *= 2;
        ig_req **v = realloc(s->snap, (size_t)cap * sizeof *v);
        if (!v) return -1;
        s->snap = v;
        s->cap_snap = cap;
    }
    if (l->n) memcpy(s->snap, l->v, (size_t)l->n * sizeof *l->v);
    return l->n;
}

/* ---- life cycle ---- */

ig_status ig_sched_new(const ig_sched_config *cfg, ig_sched **out, ig_error *err) {
    ig_status st = IG_OK;
    if (!cfg || !cfg->model || !cfg->emit)
        return ig_errorf(err, IG_EINVAL, "scheduler: model and emit are required");
    if (cfg->n_blocks <= 0 || cfg->block_size <= 0)
        return ig_errorf(err, IG_EINVAL, "scheduler: bad KV pool (%d blocks of %d tokens)",
                         cfg->n_blocks, cfg->block_size);
    if (cfg->max_batch_tokens <= 0 || cfg->max_seqs <= 0)
        return ig_errorf(err, IG_EINVAL, "scheduler: max_batch_tokens and max_seqs must be > 0");
    const ig_model_desc *d = &cfg->model->desc;
    if (d->n_vocab <= 0 || d->n_layer <= 0 || d->n_head_kv * d->head_dim <= 0)
        return ig_errorf(err, IG_EINVAL, "scheduler: the model describes no vocabulary or KV");

    ig_sched *s = calloc(1, sizeof *s);
    if (!s) return ig_errorf(err, IG_ENOMEM, "scheduler: out of memory");
    s->cfg = *cfg;
    s->n_vocab = d->n_vocab;
    s->token_budget = cfg->max_batch_tokens;
    int64_t pool_tokens = (int64_t)cfg->n_blocks * cfg->block_size;
    int64_t n_ctx = cfg->n_ctx > 0 ? cfg->n_ctx : d->n_ctx_train;
    if (n_ctx <= 0 || n_ctx > pool_tokens) n_ctx = pool_tokens;
    s->n_ctx = (int32_t)(n_ctx < INT32_MAX ? n_ctx : INT32_MAX);

    if ((st = ig_kv_cache_new(d->n_layer, d->n_head_kv * d->head_dim, cfg->block_size,
                              cfg->n_blocks, &s->kv, err)) != IG_OK)
        goto fail;
    ig_kv_manager_config mc = ig_kv_manager_config_default();
    mc.n_blocks = cfg->n_blocks;
    mc.block_size = cfg->block_size;
    mc.policy = cfg->eviction;
    mc.prefix_caching = cfg->prefix_caching;
    if ((st = ig_kv_manager_new(&mc, &s->mgr, err)) != IG_OK) goto fail;

    size_t nbt = (size_t)cfg->max_batch_tokens, ns = (size_t)cfg->max_seqs;
    s->entries = malloc(ns * sizeof *s->entries);
    s->b_tokens = malloc(nbt * sizeof *s->b_tokens);
    s->b_pos = malloc(nbt * sizeof *s->b_pos);
    s->b_seq = malloc(nbt * sizeof *s->b_seq);
    s->b_want = malloc(nbt * sizeof *s->b_want);
    s->b_seqs = malloc(ns * sizeof *s->b_seqs);
    s->logits = malloc(ns * (size_t)s->n_vocab * sizeof *s->logits);
    s->lsm = malloc((size_t)s->n_vocab * sizeof *s->lsm);
    s->piece_cap = cfg->model->vocab ? ig_detok_bound(cfg->model->vocab) : 16;
    s->piece = malloc(s->piece_cap);
    if (!s->entries || !s->b_tokens || !s->b_pos || !s->b_seq || !s->b_want || !s->b_seqs ||
        !s->logits || !s->lsm || !s->piece || list_reserve(&s->running, cfg->max_seqs) ||
        list_reserve(&s->waiting, 16) || list_reserve(&s->done, 16)) {
        st = ig_errorf(err, IG_ENOMEM, "scheduler: out of memory for %d tokens x %d sequences",
                       cfg->max_batch_tokens, cfg->max_seqs);
        goto fail;
    }
    *out = s;
    return IG_OK;
fail:
    ig_sched_free(s);
    return st;
}

static void free_list(req_list *l) {
    for (int32_t i = 0; i < l->n; i++) ig__req_free(l->v[i]);
    free(l->v);
}

void ig_sched_free(ig_sched *s) {
    if (!s) return;
    free_list(&s->waiting);
    free_list(&s->running);
    free_list(&s->done);
    ig_kv_manager_free(s->mgr);
    ig_kv_cache_free(s->kv);
    free(s->snap);
    free(s->entries);
    free(s->b_tokens);
    free(s->b_pos);
    free(s->b_seq);
    free(s->b_want);
    free(s->b_seqs);
    free(s->logits);
    free(s->lsm);
    free(s->piece);
    free(s);
}

int32_t ig_sched_n_ctx(const ig_sched *s) {
    return s->n_ctx;
}
int32_t ig_sched_n_waiting(const ig_sched *s) {
    return s->waiting.n;
}
int32_t ig_sched_n_running(const ig_sched *s) {
    return s->running.n;
}
bool ig_sched_has_work(const ig_sched *s) {
    return s->waiting.n > 0 || s->running.n > 0;
}
void ig_sched_get_counters(const ig_sched *s, ig_sched_counters *out) {
    *out = s->counters;
}
ig_kv_manager *ig_sched_kv(ig_sched *s) {
    return s->mgr;
}
int32_t ig_sched_token_budget(const ig_sched *s) {
    return s->token_budget;
}

void ig_sched_set_token_budget(ig_sched *s, int32_t n_tokens) {
    if (n_tokens < 1) n_tokens = 1;
    if (n_tokens > s->cfg.max_batch_tokens) n_tokens = s->cfg.max_batch_tokens;
    s->token_budget = n_tokens;
}

ig_status ig_sched_add(ig_sched *s, ig_req *q, ig_error *err) {
    if (s->cfg.max_waiting > 0 && s->waiting.n >= s->cfg.max_waiting)
        return ig_errorf(err, IG_EOVERLOADED, "scheduler: %d requests are already waiting",
                         s->waiting.n);
    if (q->n_tokens >= s->n_ctx)
        return ig_errorf(err, IG_ECONTEXT,
                         "scheduler: prompt of %d tokens does not fit the %d-token context",
                         q->n_tokens, s->n_ctx);
    if (list_reserve(&s->waiting, s->waiting.n + 1) != IG_OK ||
        list_reserve(&s->done, s->waiting.n + s->running.n + 1) != IG_OK)
        return ig_errorf(err, IG_ENOMEM, "scheduler: out of memory");
    if (!q->kv) {
        ig_status st = ig_kv_seq_new(s->mgr, &q->kv, err);
        if (st != IG_OK) return st;
    }
    q->order = s->next_order++;
    q->state = IG_REQ_STATE_WAITING;
    list_insert_sorted(&s->waiting, q);
    return IG_OK;
}

ig_status ig_sched_cancel(ig_sched *s, ig_request_id id) {
    for (int32_t i = 0; i < s->running.n; i++)
        if (s->running.v[i]->id == id) return s->running.v[i]->is_cancelled = true, IG_OK;
    for (int32_t i = 0; i < s->waiting.n; i++)
        if (s->waiting.v[i]->id == id) return s->waiting.v[i]->is_cancelled = true, IG_OK;
    return IG_ENOTFOUND;
}

void ig_sched_cancel_all(ig_sched *s) {
    for (int32_t i = 0; i < s->running.n; i++) s->running.v[i]->is_cancelled = true;
    for (int32_t i = 0; i < s->waiting.n; i++) s->waiting.v[i]->is_cancelled = true;
}

/* ---- events ---- */

/* Emit text[0..n) of q's held-back buffer as one event, then drop it from the buffer. */
static void emit_text_event(ig_sched *s, ig_req *q, ig_event *ev, size_t n) {
    char saved = 0;
    if (q->text) {
        saved = q->text[n];
        q->text[n] = '\0';
    }
    ev->text = q->text ? q->text : "";
    ev->text_len = n;
    s->cfg.emit(s->cfg.emit_ctx, ev);
    if (q->text) {
        q->text[n] = saved;
        memmove(q->text, q->text + n, q->text_len - n);
        q->text_len -= n;
        q->text[q->text_len] = '\0';
    }
}

/*
 * End a request: release its blocks (full ones stay cached), take it out of
 * its list, emit FINISHED, and park it in `done` until the step ends. With
 * STOP or LENGTH (and no stop string seen) the detokenizer's tail and all
 * held-back text are delivered in the event; otherwise held text is dropped.
 */
static void finish(ig_sched *s, ig_req *q, ig_finish_kind kind, ig_status status,
                   const char *message, int64_t now_us, bool deliver_tail) {
    IG_ASSERT(q->state != IG_REQ_STATE_FINISHED);
    if (deliver_tail && q->vocab) {
        size_t n = ig_detok_flush(&q->detok, s->piece, s->piece_cap);
        if (n > 0 && n <= s->piece_cap) ig__req_text_append(q, s->piece, n);
        long at = ig__req_find_stop(q);
        if (at >= 0) {
            q->text_len = (size_t)at;
            kind = IG_FINISH_KIND_STOP;
        }
    } else {
        q->text_len = 0;
    }
    if (q->kv) ig_kv_release(s->mgr, q->kv);
    list_remove(q->state == IG_REQ_STATE_RUNNING ? &s->running : &s->waiting, q);
    q->state = IG_REQ_STATE_FINISHED;
    IG_ASSERT(s->done.n < s->done.cap);
    s->done.v[s->done.n++] = q;
    s->counters.n_finished++;
    if (s->info) s->info->n_finished++;

    ig_request_stats st = {
        .id = q->id,
        .user_data = q->user_data,
        .arrival_us = q->arrival_us,
        .queue_us = q->first_sched_us >= 0 ? q->first_sched_us - q->arrival_us : -1,
        .ttft_us = q->first_token_us >= 0 ? q->first_token_us - q->arrival_us : -1,
        .total_us = now_us - q->arrival_us,
        .n_prompt_tokens = q->n_prompt,
        .n_cached_tokens = q->n_cached,
        .n_generated_tokens = q->n_gen,
        .n_preemptions = q->n_preempt,
        .finish = kind,
        .itl_ms = q->itl_ms,
        .n_itl = q->n_itl,
    };
    ig_event ev = {.type = IG_EVENT_FINISHED,
                   .id = q->id,
                   .user_data = q->user_data,
                   .token = -1,
                   .finish = kind,
                   .status = status,
                   .message = message ? message : "",
                   .stats = &st};
    emit_text_event(s, q, &ev, q->text_len);
}

/* Free requests that finished during the step. */
static void reap(ig_sched *s) {
    for (int32_t i = 0; i < s->done.n; i++) ig__req_free(s->done.v[i]);
    s->done.n = 0;
}

/* ---- scheduling ---- */

static sched_entry *find_entry(ig_sched *s, const ig_req *q) {
    for (int32_t i = 0; i < s->n_entries; i++)
        if (s->entries[i].q == q) return &s->entries[i];
    return NULL;
}

/* Release a running request's blocks and put it back to waiting, tokens kept. */
static void preempt(ig_sched *s, ig_req *q) {
    IG_ASSERT(q->state == IG_REQ_STATE_RUNNING);
    sched_entry *e = find_entry(s, q);
    if (e) {
        s->budget += e->n;
        memmove(e, e + 1, (size_t)(s->entries + s->n_entries - e - 1) * sizeof *e);
        s->n_entries--;
    }
    ig_kv_release(s->mgr, q->kv);
    list_remove(&s->running, q);
    q->state = IG_REQ_STATE_WAITING;
    q->preempted_at_step = s->step_no;
    q->n_preempt++;
    list_insert_sorted(&s->waiting, q); /* room: reserved by plan() */
    s->counters.n_preemptions++;
    if (s->info) s->info->n_preempted++;
}

static void add_entry(ig_sched *s, ig_req *q, int32_t n, bool is_decode) {
    IG_ASSERT(s->n_entries < s->cfg.max_seqs && n > 0 && n <= s->budget);
    s->entries[s->n_entries++] = (sched_entry){q, q->kv->n_tokens, n, is_decode};
    s->budget -= n;
}

/* Plan up to want_n tokens for a running request, preempting on block shortage. */
static void schedule_running(ig_sched *s, ig_req *q, int32_t want_n, bool is_decode,
                             int64_t now_us) {
    if (s->n_entries == s->cfg.max_seqs || s->budget == 0) return;
    int32_t n = want_n < s->budget ? want_n : s->budget;
    for (;;) {
        ig_error e = {0};
        ig_status st = ig_kv_reserve(s->mgr, q->kv, q->kv->n_tokens + n, &e);
        if (st == IG_OK) {
            add_entry(s, q, n, is_decode);
            return;
        }
        if (st != IG_EOVERLOADED) {
            finish(s, q, IG_FINISH_KIND_ERROR, st, e.message, now_us, false);
            return;
        }
        ig_req *victim = s->running.v[s->running.n - 1];
        if (victim == q) {
            if (s->running.n == 1)
                finish(s, q, IG_FINISH_KIND_LENGTH, IG_OK, "the KV cache cannot hold the sequence",
                       now_us, true);
            else
                preempt(s, q);
            return;
        }
        preempt(s, victim);
    }
}

/*
 * Could preempting every running request of lower priority than q free
 * enough blocks for q's next n tokens? Counts their whole tables, so shared
 * prefix blocks may be over-counted: a rough filter that avoids preempting
 * when it clearly cannot help.
 */
static bool lower_priority_could_make_room(ig_sched *s, const ig_req *q, int32_t n) {
    int64_t room = ig_kv_n_available(s->mgr);
    for (int32_t i = s->running.n - 1; i >= 0 && s->running.v[i]->priority < q->priority; i--)
        room += s->running.v[i]->kv->n_blocks;
    return room > 0 && room >= ig_kv_blocks_needed(s->mgr, q->kv, q->kv->n_tokens + n);
}

/*
 * Try to start a waiting request: prefix lookup, then blocks for its first
 * chunk, preempting running requests of strictly lower priority if that is
 * what it takes. Returns false when admission must stop.
 */
static bool admit(ig_sched *s, ig_req *q, int64_t now_us) {
    ig_error e = {0};
    IG_ASSERT(q->kv->n_blocks == 0);
    ig_status st = ig_kv_match_prefix(s->mgr, q->kv, q->tokens, q->n_tokens, NULL, &e);
    if (st == IG_OK) {
        int32_t n = q->n_tokens - q->kv->n_tokens;
        if (n > s->budget) n = s->budget;
        st = ig_kv_reserve(s->mgr, q->kv, q->kv->n_tokens + n, &e);
        if (st == IG_EOVERLOADED && lower_priority_could_make_room(s, q, n)) {
            /* a higher-priority arrival takes blocks from lower-priority runners */
            while (st == IG_EOVERLOADED && s->running.n > 0 &&
                   s->running.v[s->running.n - 1]->priority < q->priority) {
                preempt(s, s->running.v[s->running.n - 1]);
                st = ig_kv_reserve(s->mgr, q->kv, q->kv->n_tokens + n, &e);
            }
        }
        if (st == IG_OK) {
            if (!q->is_admitted_once) {
                q->is_admitted_once = true;
                q->n_cached = q->kv->n_tokens;
                q->first_sched_us = now_us;
                s->counters.n_admitted++;
                s->counters.n_admitted_prompt += (uint64_t)q->n_prompt;
                s->counters.n_admitted_cached += (uint64_t)q->n_cached;
            }
            list_remove(&s->waiting, q);
            q->state = IG_REQ_STATE_RUNNING;
            list_insert_sorted(&s->running, q);
            add_entry(s, q, n, false);
            if (s->info) s->info->n_admitted++;
            return true;
        }
    }
    ig_kv_release(s->mgr, q->kv);
    if (st == IG_EOVERLOADED) return false;
    finish(s, q, IG_FINISH_KIND_ERROR, st, e.message, now_us, false);
    return true;
}

static ig_status plan(ig_sched *s, int64_t now_us) {
    s->n_entries = 0;
    s->budget = s->token_budget;
    if (list_reserve(&s->running, s->running.n + s->waiting.n) != IG_OK ||
        list_reserve(&s->waiting, s->running.n + s->waiting.n) != IG_OK)
        return IG_ENOMEM;
    int32_t n = snapshot(s, &s->running);
    if (n < 0) return IG_ENOMEM;
    /* a. decodes */
    for (int32_t i = 0; i < n; i++) {
        ig_req *q = s->snap[i];
        if (q->state == IG_REQ_STATE_RUNNING && q->kv->n_tokens == q->n_tokens - 1 &&
            !find_entry(s, q))
            schedule_running(s, q, 1, true, now_us);
    }
    /* b. running prefills (chunked) */
    for (int32_t i = 0; i < n; i++) {
        ig_req *q = s->snap[i];
        if (q->state == IG_REQ_STATE_RUNNING && q->kv->n_tokens < q->n_tokens - 1 &&
            !find_entry(s, q))
            schedule_running(s, q, q->n_tokens - q->kv->n_tokens, false, now_us);
    }
    /* c. admission, in order, stopping at the first that does not fit */
    n = snapshot(s, &s->waiting);
    if (n < 0) return IG_ENOMEM;
    for (int32_t i = 0; i < n; i++) {
        if (s->n_entries == s->cfg.max_seqs || s->budget == 0) break;
        ig_req *q = s->snap[i];
        if (q->state != IG_REQ_STATE_WAITING) continue;
        if (q->preempted_at_step == s->step_no) break;
        if (!admit(s, q, now_us)) break;
    }
    return IG_OK;
}

/* ---- update ---- */

/* Sample q's next token from its logits row and handle text and limits. */
static void on_logits(ig_sched *s, ig_req *q, const float *row, int64_t now_us) {
    ig_error e = {0};
    int32_t tok;
    ig_status st = ig_sampler_sample(q->sampler, row, &tok, &e);
    if (st == IG_OK) st = ig_sampler_accept(q->sampler, tok, &e);
    if (st != IG_OK) {
        finish(s, q, IG_FINISH_KIND_ERROR, st, e.message, now_us, false);
        return;
    }
    ig_event ev = {.type = IG_EVENT_TOKEN, .id = q->id, .user_data = q->user_data, .token = tok};
    if (q->n_logprobs > 0) {
        size_t n_top = 0;
        if (ig_logits_top_n(row, (size_t)s->n_vocab, (size_t)q->n_logprobs, s->top, &n_top) ==
                IG_OK &&
            ig_log_softmax(row, (size_t)s->n_vocab, s->lsm) == IG_OK) {
            ev.logprob = s->lsm[tok];
            for (size_t i = 0; i < n_top; i++)
                s->ev_top[i] = (ig_event_logprob){s->top[i].id, s->top[i].logprob};
            ev.top = s->ev_top;
            ev.n_top = (int32_t)n_top;
        }
    }
    IG_ASSERT(q->n_tokens < q->cap_tokens);
    q->tokens[q->n_tokens++] = tok;
    q->n_gen++;
    s->counters.n_generated++;
    if (s->info) s->info->n_sampled++;
    ig__req_note_token_time(q, now_us);

    if (q->vocab && ig_vocab_is_eog(q->vocab, tok)) {
        finish(s, q, IG_FINISH_KIND_STOP, IG_OK, NULL, now_us, true);
        return;
    }
    size_t release = 0;
    bool is_stopped = false;
    if (q->vocab) {
        size_t n = ig_detok_push(&q->detok, tok, s->piece, s->piece_cap);
        if (n > s->piece_cap) n = 0; /* cannot happen with piece_cap = ig_detok_bound */
        if (n > 0 && ig__req_text_append(q, s->piece, n) != IG_OK) {
            finish(s, q, IG_FINISH_KIND_ERROR, IG_ENOMEM, "out of memory", now_us, false);
            return;
        }
        long at = ig__req_find_stop(q);
        if (at >= 0) {
            q->text_len = (size_t)at;
            release = q->text_len;
            is_stopped = true;
        } else {
            release = q->text_len - ig__req_held_suffix(q);
        }
    }
    emit_text_event(s, q, &ev, release);
    if (is_stopped)
        finish(s, q, IG_FINISH_KIND_STOP, IG_OK, NULL, now_us, false);
    else if ((q->max_tokens > 0 && q->n_gen >= q->max_tokens) || q->n_tokens >= q->cap_tokens ||
             q->n_tokens >= s->n_ctx)
        finish(s, q, IG_FINISH_KIND_LENGTH, IG_OK, NULL, now_us, true);
}

/* End cancelled requests and those past their deadline. */
static void expire(ig_sched *s, int64_t now_us) {
    for (int pass = 0; pass < 2; pass++) {
        req_list *l = pass == 0 ? &s->running : &s->waiting;
        for (int32_t i = 0; i < l->n;) {
            ig_req *q = l->v[i];
            if (q->is_cancelled)
                finish(s, q, IG_FINISH_KIND_CANCELLED, IG_ECANCELLED, "cancelled", now_us, false);
            else if (q->deadline_us > 0 && now_us >= q->deadline_us)
                finish(s, q, IG_FINISH_KIND_TIMEOUT, IG_ETIMEDOUT,
                       "the request passed its timeout or deadline", now_us, false);
            else
                i++;
        }
    }
}

ig_status ig_sched_step(ig_sched *s, int64_t now_us, ig_sched_step_info *info, ig_error *err) {
    ig_sched_step_info scratch;
    ig_status st = IG_OK;
    s->info = info ? info : &scratch;
    memset(s->info, 0, sizeof *s->info);
    s->step_no++;
    expire(s, now_us);
    if ((st = plan(s, now_us)) != IG_OK) {
        st = ig_errorf(err, st, "scheduler: out of memory while planning a step");
        goto done;
    }
    if (s->n_entries == 0) goto done;

    /* lay out the batch */
    int32_t k = 0;
    for (int32_t j = 0; j < s->n_entries; j++) {
        const sched_entry *e = &s->entries[j];
        ig_req *q = e->q;
        IG_ASSERT(q->state == IG_REQ_STATE_RUNNING && e->start == q->kv->n_tokens);
        s->b_seqs[j] = (ig_batch_seq){q->kv->blocks, q->kv->n_blocks};
        for (int32_t i = 0; i < e->n; i++, k++) {
            s->b_tokens[k] = q->tokens[e->start + i];
            s->b_pos[k] = e->start + i;
            s->b_seq[k] = j;
            s->b_want[k] = (i == e->n - 1 && e->start + e->n == q->n_tokens);
        }
        if (e->is_decode)
            s->info->n_decode++;
        else
            s->info->n_prefill_tokens += e->n;
    }
    s->info->n_tokens = k;
    s->info->n_seqs = s->n_entries;
    s->counters.n_steps++;
    ig_batch b = {.n_tokens = k,
                  .tokens = s->b_tokens,
                  .pos = s->b_pos,
                  .seq = s->b_seq,
                  .want_logits = s->b_want,
                  .n_seqs = s->n_entries,
                  .seqs = s->b_seqs};
    ig_error fe = {0};
    st = ig_model_forward(s->cfg.model, &b, s->kv, s->cfg.pool, s->logits, &fe);
    /* tokens and ends of the update are timed when emitted: after the forward */
    int64_t t_done = s->cfg.clock ? s->cfg.clock(s->cfg.clock_ctx) : now_us;
    if (t_done < now_us) t_done = now_us;
    if (st != IG_OK) {
        for (int32_t j = 0; j < s->n_entries; j++)
            finish(s, s->entries[j].q, IG_FINISH_KIND_ERROR, st, fe.message, t_done, false);
        ig_errorf(err, st, "%s", fe.message);
        goto done;
    }

    /* update: commit KV, sample, emit */
    int32_t row = 0;
    for (int32_t j = 0; j < s->n_entries; j++) {
        const sched_entry *e = &s->entries[j];
        ig_req *q = e->q;
        bool wants = e->start + e->n == q->n_tokens;
        if (!e->is_decode) s->counters.n_prompt_tokens += (uint64_t)e->n;
        ig_error ce = {0};
        ig_status cst = ig_kv_commit(s->mgr, q->kv, q->tokens, e->start + e->n, &ce);
        if (cst != IG_OK)
            finish(s, q, IG_FINISH_KIND_ERROR, cst, ce.message, t_done, false);
        else if (wants)
            on_logits(s, q, s->logits + (size_t)row * s->n_vocab, t_done);
        if (wants) row++;
    }
done:
    reap(s);
    s->info = NULL;
    return st;
}
