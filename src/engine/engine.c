/*
 * engine.c: the engine thread and the public engine API (include/ignis.h).
 *
 * The engine thread is a thin loop around the scheduler (scheduler.h): take
 * what submitters queued (new requests, cancels, stop), step, publish events
 * and stats, and sleep on a condition variable when there is nothing to do.
 *
 * Threads and locking. One mutex `mu` guards everything shared: the inbox of
 * new requests and cancels, the live-request table, the event queue (poll
 * mode), the published stats and the state. The engine thread owns the
 * scheduler (and through it the KV cache, the samplers and every request
 * once taken from the inbox) and never holds `mu` while stepping, so a
 * forward pass never blocks a submitter. Two condition variables: `cv_work`
 * wakes the engine thread; `cv_events` wakes pollers and drainers.
 *
 * An ig_req is built (validated, copied, sampler allocated) on the
 * submitting thread before the lock is taken, and moves to the engine thread
 * through the inbox: the mutex orders its writes before the engine's reads.
 *
 * Events are produced during a step into a private list (poll mode: deep
 * copies, one allocation each) and spliced into the shared queue under the
 * lock after the step; in callback mode they go straight to the callback on
 * the engine thread, with no lock held.
 *
 * The live table holds every accepted request until its FINISHED event is
 * handed over (polled, or passed to the callback): cancel and poll-by-id use
 * it to answer IG_ENOTFOUND, drain uses its count of unfinished requests.
 *
 * Request coalescing (config.coalesce), all on the engine thread: a
 * coalescable request (temperature 0; its key, built at submit, holds every
 * input that decides its output) that finds a running group with the same
 * key becomes a follower: it never reaches the scheduler. The group's leader
 * is an ordinary scheduled request whose TOKEN events are logged and copied
 * to every follower (a new follower first gets the log replayed). When the
 * leader ends naturally (STOP, LENGTH) or the engine stops, its FINISHED is
 * copied too. When it ends otherwise (its own cancel, timeout, an error),
 * the first follower is scheduled in its place after the step: it
 * recomputes from the start and the TOKEN events it already received (the
 * log's length) are dropped; by batch invariance they are bit-identical.
 * A follower's cancel or timeout finishes it alone. A follower's FINISHED
 * telemetry is its own: queue_us 0, ttft from its first TOKEN event, the
 * tokens it was handed (the leader's count when it ends with the leader's
 * result); a promoted leader keeps those too (its FINISHED counts at least
 * the tokens it got as a follower, and its inter-token times are the ones
 * of tokens it emitted itself).
 *
 * The response cache (config.response_cache > 0), also on the engine thread:
 * keyed requests always lead a group (coalescing or not), so the group's log
 * holds a leader's TOKEN events; when the leader ends with STOP or LENGTH the
 * key, the log and a copy of the FINISHED event move into the cache (an
 * array in least-recently-used order, bounded). A new request whose key is
 * there is answered at intake, before any step: the events are replayed with
 * its id and user data, and its FINISHED telemetry is its own (queue 0, no
 * prompt token computed, no inter-token times).
 */
#include <pthread.h>
#include <stdalign.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/error.h"
#include "engine/budget.h"
#include "engine/request.h"
#include "engine/scheduler.h"
#include "ignis.h"
#include "kv/kv_manager.h"
#include "model/model.h"

typedef struct ev_node {
    struct ev_node *next;
    ig_event ev; /* ev.owned__ points back to this node */
} ev_node;

typedef struct live_entry {
    ig_request_id id;
    bool is_finished; /* FINISHED emitted; entry stays until it is polled */
} live_entry;

typedef struct co_follower {
    ig_req *q;              /* owned by the group until its FINISHED */
    int64_t first_token_us; /* -1 until its first TOKEN event */
    int32_t n_tokens;       /* TOKEN events it was handed */
} co_follower;

typedef struct co_group {
    char *key; /* owned */
    size_t key_len;
    ig_request_id leader;         /* the scheduled request (0 while orphaned) */
    ev_node *log_head, *log_tail; /* the leader's TOKEN events so far (deep copies) */
    int32_t n_log;
    int32_t n_skip; /* TOKEN events of the (promoted) leader to drop: it already had them */
    int32_t n_seen; /* TOKEN events the current leader emitted */
    int64_t lead_first_token_us; /* a promoted leader's first token as a follower (-1: none) */
    bool is_log_lossy;           /* a TOKEN event could not be logged (out of memory) */
    co_follower *f;
    int32_t n_f, cap_f;
} co_group;

typedef struct rc_entry {
    char *key; /* owned */
    size_t key_len;
    ev_node *log_head; /* TOKEN events (deep copies), owned */
    int32_t n_log;
    ev_node *fin; /* the FINISHED event (deep copy), owned */
} rc_entry;

struct ig_engine {
    ig_engine_config cfg;
    ig_pool *own_pool;
    ig_sched *sched; /* engine thread only (after start) */
    int32_t n_ctx, n_vocab;
    pthread_t thread;
    bool has_thread;

    pthread_mutex_t mu;
    pthread_cond_t cv_work;
    pthread_cond_t cv_events;
    /* --- guarded by mu --- */
    ig_req **inbox;
    int32_t n_inbox, cap_inbox;
    ig_request_id *cancels;
    int32_t n_cancels, cap_cancels;
    bool is_stop_requested;
    ig_engine_state state;
    ig_request_id next_id;
    live_entry *live;
    int32_t n_live, cap_live;
    int32_t n_unfinished;       /* accepted, FINISHED not yet published with the stats */
    int32_t n_finished_in_step; /* FINISHED during the current step */
    int32_t n_sched_waiting;    /* published after each step */
    ev_node *ev_head, *ev_tail;
    ig_engine_stats stats;

    /* --- engine thread only --- */
    ev_node *pend_head, *pend_tail; /* events of the current step (poll mode) */
    int64_t tps_window_start_us;
    uint64_t tps_window_tokens0;
    double step_ms_total;
    ig_budget_pid pid; /* adaptive step budget (when target_step_ms > 0) */
    co_group **groups; /* coalescing groups */
    int32_t n_groups, cap_groups;
    bool co_stopping;       /* the engine stops: a cancelled leader's followers end too */
    uint64_t n_coalesced;   /* published under mu */
    uint64_t n_co_finished; /* followers finished (not counted by the scheduler) */
    rc_entry **rc;          /* response cache, least recently used first */
    int32_t n_rc, cap_rc;
    uint64_t n_rc_hits; /* published under mu */
};

/* Monotonic time in ms with ns resolution (step durations). */
static double now_ms_precise(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int64_t now_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* The scheduler's clock: tokens are timed after the forward pass. */
static int64_t sched_clock(void *ctx) {
    (void)ctx;
    return now_us();
}

const char *ig_finish_kind_name(ig_finish_kind kind) {
    switch (kind) {
    case IG_FINISH_KIND_NONE:
        return "none";
    case IG_FINISH_KIND_STOP:
        return "stop";
    case IG_FINISH_KIND_LENGTH:
        return "length";
    case IG_FINISH_KIND_CANCELLED:
        return "cancelled";
    case IG_FINISH_KIND_TIMEOUT:
        return "timeout";
    case IG_FINISH_KIND_ERROR:
        return "error";
    }
    return "?";
}

ig_engine_config ig_engine_config_default(void) {
    ig_engine_config c = {0};
    c.kv_cache_mb = 256;
    c.block_size = IG_KV_DEFAULT_BLOCK_SIZE;
    c.eviction = IG_ENGINE_EVICTION_LRU;
    c.prefix_caching = true;
    c.max_batch_tokens = 512;
    c.max_seqs = 64;
    c.max_queue = 256;
    return c;
}

void ig_event_release(ig_event *ev) {
    if (!ev) return;
    free(ev->owned__);
    memset(ev, 0, sizeof *ev);
}

/* ---- growable arrays ---- */

static bool grow(void **v, int32_t *cap, int32_t need, size_t elem) {
    if (need <= *cap) return true;
    int32_t c = *cap ? *cap : 16;
    while (c < need) c *= 2;
    void *nv = realloc(*v, (size_t)c * elem);
    if (!nv) return false;
    *v = nv;
    *cap = c;
    return true;
}

static live_entry *live_find(ig_engine *e, ig_request_id id) {
    for (int32_t i = 0; i < e->n_live; i++)
        if (e->live[i].id == id) return &e->live[i];
    return NULL;
}

static void live_remove(ig_engine *e, ig_request_id id) {
    for (int32_t i = 0; i < e->n_live; i++)
        if (e->live[i].id == id) {
            e->live[i] = e->live[--e->n_live];
            return;
        }
}

/* ---- events (engine thread) ---- */

static size_t align8(size_t n) {
    return (n + 7) & ~(size_t)7;
}

/* A deep copy of ev in one allocation; NULL when out of memory. */
static ev_node *copy_event(const ig_event *ev, bool is_minimal) {
    size_t text_len = is_minimal ? 0 : ev->text_len;
    size_t msg_len = ev->message && !is_minimal ? strlen(ev->message) : 0;
    int32_t n_top = is_minimal ? 0 : ev->n_top;
    int32_t n_itl = ev->stats && !is_minimal ? ev->stats->n_itl : 0;
    size_t off_stats = align8(sizeof(ev_node));
    size_t off_top = align8(off_stats + (ev->stats ? sizeof(ig_request_stats) : 0));
    size_t off_itl = align8(off_top + (size_t)n_top * sizeof(ig_event_logprob));
    size_t off_text = off_itl + (size_t)n_itl * sizeof(float);
    size_t off_msg = off_text + text_len + 1;
    size_t total = off_msg + msg_len + 1;
    char *mem = malloc(total);
    if (!mem) return NULL;
    ev_node *n = (ev_node *)mem;
    n->next = NULL;
    n->ev = *ev;
    n->ev.owned__ = mem;
    if (ev->stats) {
        ig_request_stats *st = (ig_request_stats *)(mem + off_stats);
        *st = *ev->stats;
        float *itl = (float *)(mem + off_itl);
        if (n_itl) memcpy(itl, ev->stats->itl_ms, (size_t)n_itl * sizeof *itl);
        st->itl_ms = itl;
        st->n_itl = n_itl;
        n->ev.stats = st;
    }
    ig_event_logprob *top = (ig_event_logprob *)(mem + off_top);
    if (n_top) memcpy(top, ev->top, (size_t)n_top * sizeof *top);
    n->ev.top = n_top ? top : NULL;
    n->ev.n_top = n_top;
    char *text = mem + off_text;
    if (text_len) memcpy(text, ev->text, text_len);
    text[text_len] = '\0';
    n->ev.text = text;
    n->ev.text_len = text_len;
    char *msg = mem + off_msg;
    if (msg_len) memcpy(msg, ev->message, msg_len);
    msg[msg_len] = '\0';
    n->ev.message = msg;
    return n;
}

/* Move this step's pending events to the shared queue. Caller holds mu. */
static void splice_pending(ig_engine *e) {
    if (!e->pend_head) return;
    if (e->ev_tail)
        e->ev_tail->next = e->pend_head;
    else
        e->ev_head = e->pend_head;
    e->ev_tail = e->pend_tail;
    e->pend_head = e->pend_tail = NULL;
}

static void append_pending(ig_engine *e, ev_node *n) {
    if (e->pend_tail)
        e->pend_tail->next = n;
    else
        e->pend_head = n;
    e->pend_tail = n;
}

/*
 * The scheduler's emit: runs on the engine thread during a step. TOKEN
 * events wait in the pending list until the step ends (one lock per step);
 * a FINISHED event takes the lock at once, publishing the request's pending
 * events before it (order kept) and retiring it from the live table, so no
 * memory is needed to remember which requests finished.
 */
static void deliver(ig_engine *e, const ig_event *ev) {
    bool is_finished = ev->type == IG_EVENT_FINISHED;
    if (e->cfg.on_event) {
        e->cfg.on_event(e->cfg.on_event_user, ev);
    } else {
        ev_node *n = copy_event(ev, false);
        if (!n && is_finished) n = copy_event(ev, true);
        if (n) append_pending(e, n); /* else out of memory: a TOKEN event is lost */
    }
    if (!is_finished) return;
    pthread_mutex_lock(&e->mu);
    splice_pending(e);
    live_entry *le = live_find(e, ev->id);
    if (le && !le->is_finished) {
        e->n_finished_in_step++; /* leaves n_unfinished after the step's stats are out */
        if (e->cfg.on_event)
            live_remove(e, ev->id);
        else
            le->is_finished = true;
    }
    pthread_cond_broadcast(&e->cv_events);
    pthread_mutex_unlock(&e->mu);
}

static void emit_refused(ig_engine *e, ig_req *q, ig_status st, const char *msg);

/* ---- request coalescing (engine thread) ---- */

static void key_put(char **buf, size_t *len, size_t *cap, const void *p, size_t n, bool *ok) {
    if (!*ok) return;
    if (*len + n > *cap) {
        size_t c = *cap ? *cap * 2 : 256;
        while (c < *len + n) c *= 2;
        char *nb = realloc(*buf, c);
        if (!nb) {
            *ok = false;
            return;
        }
        *buf = nb;
        *cap = c;
    }
    memcpy(*buf + *len, p, n);
    *len += n;
}

/*
 * The coalescing key of a request: NULL (not coalescable) unless greedy.
 * Every field that decides a greedy request's tokens and events goes in:
 * prompt, max_tokens, n_logprobs, stop strings, and the sampling parameters
 * that shape the logits. Out of memory: NULL too (it just runs alone).
 */
static char *coalesce_key(const ig_request *r, size_t *len_out) {
    ig_sampler_params sp = r->sampling ? *r->sampling : ig_sampler_params_default();
    if (sp.temperature != 0.0f) return NULL;
    char *b = NULL;
    size_t len = 0, cap = 0;
    bool ok = true;
    uint64_t n = r->n_prompt;
    key_put(&b, &len, &cap, &n, sizeof n, &ok);
    key_put(&b, &len, &cap, r->prompt, r->n_prompt * sizeof *r->prompt, &ok);
    key_put(&b, &len, &cap, &r->max_tokens, sizeof r->max_tokens, &ok);
    key_put(&b, &len, &cap, &r->n_logprobs, sizeof r->n_logprobs, &ok);
    n = r->n_stop;
    key_put(&b, &len, &cap, &n, sizeof n, &ok);
    for (size_t i = 0; i < r->n_stop; i++) {
        n = strlen(r->stop[i]);
        key_put(&b, &len, &cap, &n, sizeof n, &ok);
        key_put(&b, &len, &cap, r->stop[i], n, &ok);
    }
    const float fl[] = {sp.top_p, sp.min_p, sp.repeat_penalty, sp.presence_penalty,
                        sp.frequency_penalty};
    const int32_t in[] = {sp.top_k, sp.repeat_last_n};
    key_put(&b, &len, &cap, fl, sizeof fl, &ok);
    key_put(&b, &len, &cap, in, sizeof in, &ok);
    n = sp.n_logit_bias;
    key_put(&b, &len, &cap, &n, sizeof n, &ok);
    for (size_t i = 0; i < sp.n_logit_bias; i++) {
        key_put(&b, &len, &cap, &sp.logit_bias[i].token, sizeof(int32_t), &ok);
        key_put(&b, &len, &cap, &sp.logit_bias[i].bias, sizeof(float), &ok);
    }
    if (!ok) {
        free(b);
        return NULL;
    }
    *len_out = len;
    return b;
}

static co_group *group_of_leader(ig_engine *e, ig_request_id id) {
    for (int32_t i = 0; i < e->n_groups; i++)
        if (e->groups[i]->leader == id) return e->groups[i];
    return NULL;
}

static void group_free(co_group *g) {
    if (!g) return;
    for (ev_node *n = g->log_head; n;) {
        ev_node *next = n->next;
        free(n);
        n = next;
    }
    for (int32_t i = 0; i < g->n_f; i++) ig__req_free(g->f[i].q);
    free(g->f);
    free(g->key);
    free(g);
}

static void group_remove(ig_engine *e, co_group *g) {
    for (int32_t i = 0; i < e->n_groups; i++)
        if (e->groups[i] == g) {
            e->groups[i] = e->groups[--e->n_groups];
            break;
        }
    group_free(g);
}

/* A TOKEN event (of the leader, or from the log) handed to follower f as its own. */
static void follower_token(ig_engine *e, co_follower *f, const ig_event *ev) {
    ig_event c = *ev;
    c.id = f->q->id;
    c.user_data = f->q->user_data;
    if (f->first_token_us < 0) f->first_token_us = now_us();
    f->n_tokens++;
    deliver(e, &c);
}

/*
 * Finish follower i of g: FINISHED like `ev` (the leader's, or NULL for one
 * built from kind/status/message), with the follower's own id, user data and
 * times; then free it and drop it from the group.
 */
static void follower_finish(ig_engine *e, co_group *g, int32_t i, const ig_event *ev,
                            ig_finish_kind kind, ig_status status, const char *message) {
    co_follower *f = &g->f[i];
    ig_req *q = f->q;
    int64_t t = now_us();
    ig_request_stats st = {.finish = kind};
    ig_event c = {.type = IG_EVENT_FINISHED,
                  .token = -1,
                  .text = "",
                  .finish = kind,
                  .status = status,
                  .message = message};
    if (ev) {
        c = *ev; /* the leader's result: its token count (an end-of-generation token too) */
        if (ev->stats) st = *ev->stats;
    } else {
        st.n_prompt_tokens = q->n_prompt;
        st.n_generated_tokens = f->n_tokens; /* what it was handed */
    }
    st.id = q->id;
    st.user_data = q->user_data;
    st.arrival_us = q->arrival_us;
    st.queue_us = 0;
    st.ttft_us = f->first_token_us >= 0 ? f->first_token_us - q->arrival_us : -1;
    st.total_us = t - q->arrival_us;
    st.n_cached_tokens = q->n_prompt; /* nothing of it was computed for this request */
    st.n_preemptions = 0;
    c.id = q->id;
    c.user_data = q->user_data;
    c.stats = &st;
    memmove(&g->f[i], &g->f[i + 1], (size_t)(g->n_f - 1 - i) * sizeof *g->f);
    g->n_f--; /* order kept: the first is promoted first (FCFS) */
    e->n_co_finished++;
    deliver(e, &c);
    ig__req_free(q);
}

/*
 * Take a new request: join an identical running group as a follower (true),
 * or not (false: schedule it as usual).
 */
static bool coalesce_join(ig_engine *e, ig_req *q) {
    if (!q->ckey || !e->cfg.coalesce) return false;
    co_group *g = NULL;
    for (int32_t i = 0; i < e->n_groups && !g; i++) {
        co_group *c = e->groups[i];
        if (c->leader != 0 && c->key_len == q->ckey_len && !memcmp(c->key, q->ckey, c->key_len))
            g = c;
    }
    if (!g || !grow((void **)&g->f, &g->cap_f, g->n_f + 1, sizeof *g->f)) return false;
    co_follower *f = &g->f[g->n_f++];
    *f = (co_follower){q, -1, 0};
    e->n_coalesced++;
    for (ev_node *n = g->log_head; n; n = n->next) follower_token(e, f, &n->ev);
    return true;
}

/* A new leader, just scheduled: start its group (out of memory: it runs alone). With
 * only the response cache on, the group just logs the leader's events. */
static void coalesce_lead(ig_engine *e, ig_req *q) {
    if (!q->ckey) return;
    co_group *g = calloc(1, sizeof *g);
    if (!g || !grow((void **)&e->groups, &e->cap_groups, e->n_groups + 1, sizeof *e->groups)) {
        free(g);
        return;
    }
    g->key = q->ckey;
    g->key_len = q->ckey_len;
    q->ckey = NULL;
    g->leader = q->id;
    g->lead_first_token_us = -1;
    e->groups[e->n_groups++] = g;
}

/* A follower's cancel: true when id was one (it is finished now). */
static bool coalesce_cancel(ig_engine *e, ig_request_id id) {
    for (int32_t i = 0; i < e->n_groups; i++) {
        co_group *g = e->groups[i];
        for (int32_t k = 0; k < g->n_f; k++)
            if (g->f[k].q->id == id) {
                follower_finish(e, g, k, NULL, IG_FINISH_KIND_CANCELLED, IG_ECANCELLED,
                                "cancelled");
                return true;
            }
    }
    return false;
}

/* Followers past their own timeout or deadline end with TIMEOUT. */
static void coalesce_expire(ig_engine *e, int64_t now) {
    for (int32_t i = 0; i < e->n_groups; i++) {
        co_group *g = e->groups[i];
        for (int32_t k = 0; k < g->n_f;) {
            ig_req *q = g->f[k].q;
            if (q->deadline_us > 0 && now >= q->deadline_us)
                follower_finish(e, g, k, NULL, IG_FINISH_KIND_TIMEOUT, IG_ETIMEDOUT, "timed out");
            else
                k++;
        }
    }
}

/*
 * After a step: a group whose leader ended without its result gets its
 * first follower scheduled as the new leader (one the scheduler refuses
 * ends with that error, and the next is tried); a group left empty goes.
 */
static void coalesce_promote(ig_engine *e) {
    for (int32_t i = 0; i < e->n_groups;) {
        co_group *g = e->groups[i];
        while (g->leader == 0 && g->n_f > 0) {
            co_follower f = g->f[0];
            ig_error err = {0};
            ig_status st = ig_sched_add(e->sched, f.q, &err);
            if (st != IG_OK) {
                follower_finish(e, g, 0, NULL, IG_FINISH_KIND_ERROR, st, err.message);
                continue;
            }
            memmove(&g->f[0], &g->f[1], (size_t)(g->n_f - 1) * sizeof *g->f);
            g->n_f--;
            g->leader = f.q->id;
            g->n_skip = f.n_tokens;
            g->n_seen = 0;
            g->lead_first_token_us = f.first_token_us;
        }
        if (g->leader == 0) {
            group_remove(e, g);
            continue;
        }
        i++;
    }
}

/* ---- the response cache (engine thread) ---- */

static void rc_entry_free(rc_entry *r) {
    if (!r) return;
    for (ev_node *n = r->log_head; n;) {
        ev_node *next = n->next;
        free(n);
        n = next;
    }
    free(r->fin);
    free(r->key);
    free(r);
}

static int32_t rc_find(ig_engine *e, const char *key, size_t key_len) {
    for (int32_t i = 0; i < e->n_rc; i++)
        if (e->rc[i]->key_len == key_len && !memcmp(e->rc[i]->key, key, key_len)) return i;
    return -1;
}

static void rc_drop(ig_engine *e, int32_t i) {
    rc_entry_free(e->rc[i]);
    memmove(&e->rc[i], &e->rc[i + 1], (size_t)(e->n_rc - 1 - i) * sizeof *e->rc);
    e->n_rc--;
}

/* A leader's result (fin: STOP or LENGTH): its key and log move into the cache. */
static void rc_put(ig_engine *e, co_group *g, const ig_event *fin) {
    if (e->cfg.response_cache <= 0 || !g->key || g->is_log_lossy || !fin->stats) return;
    int32_t old = rc_find(e, g->key, g->key_len);
    if (old >= 0) rc_drop(e, old); /* the same answer, computed again: keep the newer */
    rc_entry *r = calloc(1, sizeof *r);
    ev_node *f = copy_event(fin, false);
    if (!r || !f || !grow((void **)&e->rc, &e->cap_rc, e->n_rc + 1, sizeof *e->rc)) {
        free(r);
        free(f);
        return; /* out of memory: not cached */
    }
    f->ev.owned__ = NULL;
    *r = (rc_entry){g->key, g->key_len, g->log_head, g->n_log, f};
    g->key = NULL;
    g->log_head = g->log_tail = NULL;
    g->n_log = 0;
    if (e->n_rc >= e->cfg.response_cache) rc_drop(e, 0); /* least recently used */
    e->rc[e->n_rc++] = r;
}

/* A new request: answer it from the cache (true: it is finished) or not. */
static bool rc_serve(ig_engine *e, ig_req *q) {
    if (e->cfg.response_cache <= 0 || !q->ckey) return false;
    /* past its deadline already: the scheduler ends it with a timeout, as any other */
    if (q->deadline_us > 0 && now_us() >= q->deadline_us) return false;
    int32_t i = rc_find(e, q->ckey, q->ckey_len);
    if (i < 0) return false;
    rc_entry *r = e->rc[i];
    memmove(&e->rc[i], &e->rc[i + 1], (size_t)(e->n_rc - 1 - i) * sizeof *e->rc);
    e->rc[e->n_rc - 1] = r; /* most recently used */
    int64_t t_first = -1;
    for (ev_node *n = r->log_head; n; n = n->next) {
        ig_event c = n->ev;
        c.id = q->id;
        c.user_data = q->user_data;
        if (t_first < 0) t_first = now_us();
        deliver(e, &c);
    }
    ig_request_stats st = *r->fin->ev.stats;
    int64_t t = now_us();
    st.id = q->id;
    st.user_data = q->user_data;
    st.arrival_us = q->arrival_us;
    st.queue_us = 0;
    st.ttft_us = t_first >= 0 ? t_first - q->arrival_us : -1;
    st.total_us = t - q->arrival_us;
    st.n_prompt_tokens = q->n_prompt;
    st.n_cached_tokens = q->n_prompt; /* nothing of it was computed for this request */
    st.n_preemptions = 0;
    st.itl_ms = NULL; /* its tokens came all at once */
    st.n_itl = 0;
    ig_event c = r->fin->ev;
    c.id = q->id;
    c.user_data = q->user_data;
    c.stats = &st;
    e->n_co_finished++;
    e->n_rc_hits++;
    deliver(e, &c);
    ig__req_free(q);
    return true;
}

/*
 * The scheduler's emit (see deliver): with coalescing, a leader's events are
 * logged and copied to its followers first.
 */
static void engine_emit(void *ctx, const ig_event *ev) {
    ig_engine *e = ctx;
    co_group *g = e->n_groups ? group_of_leader(e, ev->id) : NULL;
    ig_event pev;
    ig_request_stats pst;
    if (g && ev->type == IG_EVENT_FINISHED && g->n_skip > 0 && ev->stats) {
        /* a promoted leader: its client had n_skip tokens as a follower, from then on */
        pst = *ev->stats;
        if (pst.n_generated_tokens < g->n_skip) pst.n_generated_tokens = g->n_skip;
        pst.queue_us = 0;
        if (g->lead_first_token_us >= 0) pst.ttft_us = g->lead_first_token_us - pst.arrival_us;
        int32_t off = g->n_skip < pst.n_itl ? g->n_skip : pst.n_itl; /* gaps it was shown */
        pst.itl_ms = pst.itl_ms ? pst.itl_ms + off : NULL;
        pst.n_itl -= off;
        pev = *ev;
        pev.stats = &pst;
        ev = &pev;
    }
    if (g && ev->type == IG_EVENT_TOKEN) {
        if (g->n_seen++ < g->n_skip) return; /* a promoted leader had these already */
        ev_node *n = copy_event(ev, false);
        if (n) {
            n->ev.owned__ = NULL; /* replayed events must not point into the log */
            if (g->log_tail)
                g->log_tail->next = n;
            else
                g->log_head = n;
            g->log_tail = n;
            g->n_log++;
        } else {
            g->is_log_lossy = true;
        }
        for (int32_t i = 0; i < g->n_f; i++) follower_token(e, &g->f[i], ev);
    } else if (g && ev->type == IG_EVENT_FINISHED) {
        bool is_result = ev->finish == IG_FINISH_KIND_STOP || ev->finish == IG_FINISH_KIND_LENGTH;
        if (is_result || e->co_stopping) {
            while (g->n_f > 0) follower_finish(e, g, 0, ev, ev->finish, ev->status, ev->message);
            if (is_result) rc_put(e, g, ev);
            group_remove(e, g);
        } else {
            g->leader = 0; /* orphaned: coalesce_promote after the step */
        }
    }
    deliver(e, ev);
}

/* FINISHED with ERROR for a request the scheduler refused. */
static void emit_refused(ig_engine *e, ig_req *q, ig_status st, const char *msg) {
    ig_request_stats stats = {.id = q->id,
                              .user_data = q->user_data,
                              .arrival_us = q->arrival_us,
                              .queue_us = -1,
                              .ttft_us = -1,
                              .total_us = now_us() - q->arrival_us,
                              .n_prompt_tokens = q->n_prompt,
                              .finish = IG_FINISH_KIND_ERROR};
    ig_event ev = {.type = IG_EVENT_FINISHED,
                   .id = q->id,
                   .user_data = q->user_data,
                   .token = -1,
                   .text = "",
                   .finish = IG_FINISH_KIND_ERROR,
                   .status = st,
                   .message = msg,
                   .stats = &stats};
    engine_emit(e, &ev);
}

/* ---- the engine thread ---- */

static void publish_stats(ig_engine *e, double step_ms, bool did_run) {
    ig_engine_stats *s = &e->stats;
    ig_sched_counters c;
    ig_sched_get_counters(e->sched, &c);
    ig_kv_stats kv;
    ig_kv_stats_get(ig_sched_kv(e->sched), &kv);
    s->n_waiting = e->n_inbox + ig_sched_n_waiting(e->sched);
    s->n_running = ig_sched_n_running(e->sched);
    s->kv_blocks_total = kv.n_blocks;
    s->kv_blocks_used = kv.n_used;
    s->kv_blocks_cached = kv.n_cached_free;
    s->kv_usage = kv.usage;
    s->prefix_hit_rate =
        c.n_admitted_prompt ? (double)c.n_admitted_cached / (double)c.n_admitted_prompt : 0.0;
    s->n_preemptions = c.n_preemptions;
    s->n_steps = c.n_steps;
    s->n_prompt_tokens = c.n_prompt_tokens;
    s->n_generated_tokens = c.n_generated;
    s->n_finished = c.n_finished + e->n_co_finished;
    s->n_coalesced = e->n_coalesced;
    s->n_response_cache_hits = e->n_rc_hits;
    s->step_budget_tokens = ig_sched_token_budget(e->sched);
    s->budget_pid_error = e->pid.error;
    s->budget_pid_integral = e->pid.integral;
    if (did_run) {
        s->step_ms_last = step_ms;
        s->step_ms_avg = c.n_steps ? e->step_ms_total / (double)c.n_steps : 0.0;
    }
    int64_t t = now_us();
    if (t - e->tps_window_start_us >= 1000000) {
        s->tokens_per_s = (double)(c.n_generated - e->tps_window_tokens0) * 1e6 /
                          (double)(t - e->tps_window_start_us);
        e->tps_window_start_us = t;
        e->tps_window_tokens0 = c.n_generated;
    }
    e->n_sched_waiting = ig_sched_n_waiting(e->sched);
}

static void *engine_main(void *arg) {
    ig_engine *e = arg;
    ig_req **spare_in = NULL; /* the inbox buffer not in use by submitters */
    int32_t spare_in_cap = 0;
    ig_request_id *spare_cn = NULL;
    int32_t spare_cn_cap = 0;
    pthread_mutex_lock(&e->mu);
    for (;;) {
        while (!e->is_stop_requested && e->n_inbox == 0 && e->n_cancels == 0 &&
               !ig_sched_has_work(e->sched)) {
            if (e->state == IG_ENGINE_STATE_BUSY) e->state = IG_ENGINE_STATE_READY;
            pthread_cond_broadcast(&e->cv_events);
            pthread_cond_wait(&e->cv_work, &e->mu);
        }
        bool is_stop = e->is_stop_requested;
        /* take the inbox and cancels: swap buffers so submitters never wait on a step */
        ig_req **in = e->inbox;
        int32_t n_in = e->n_inbox, cap_taken = e->cap_inbox;
        e->inbox = spare_in;
        e->cap_inbox = spare_in_cap;
        e->n_inbox = 0;
        spare_in = in;
        spare_in_cap = cap_taken;
        ig_request_id *cn = e->cancels;
        int32_t n_cn = e->n_cancels;
        cap_taken = e->cap_cancels;
        e->cancels = spare_cn;
        e->cap_cancels = spare_cn_cap;
        e->n_cancels = 0;
        spare_cn = cn;
        spare_cn_cap = cap_taken;
        if (e->state == IG_ENGINE_STATE_READY) e->state = IG_ENGINE_STATE_BUSY;
        pthread_mutex_unlock(&e->mu);

        if (is_stop) e->co_stopping = true;
        for (int32_t i = 0; i < n_in; i++) {
            ig_req *q = in[i];
            if (rc_serve(e, q) || coalesce_join(e, q)) continue;
            ig_error err = {0};
            ig_status st = ig_sched_add(e->sched, q, &err);
            if (st != IG_OK) {
                emit_refused(e, q, st, err.message);
                ig__req_free(q);
            } else {
                coalesce_lead(e, q);
            }
        }
        for (int32_t i = 0; i < n_cn; i++)
            if (!coalesce_cancel(e, cn[i])) ig_sched_cancel(e->sched, cn[i]);
        if (is_stop) ig_sched_cancel_all(e->sched);
        if (e->n_groups) coalesce_expire(e, now_us());

        int64_t t0 = now_us();
        double t0_ms = now_ms_precise();
        ig_sched_step_info info;
        ig_sched_step(e->sched, t0, &info, NULL); /* a failed batch ends with ERROR events */
        double step_ms = now_ms_precise() - t0_ms;
        if (info.n_tokens > 0) {
            e->step_ms_total += step_ms;
            if (e->cfg.target_step_ms > 0)
                ig_sched_set_token_budget(e->sched, ig_budget_pid_update(&e->pid, step_ms));
        }
        if (e->n_groups) coalesce_promote(e);

        pthread_mutex_lock(&e->mu);
        splice_pending(e);
        publish_stats(e, step_ms, info.n_tokens > 0);
        e->n_unfinished -= e->n_finished_in_step; /* drain sees these stats */
        e->n_finished_in_step = 0;
        pthread_cond_broadcast(&e->cv_events);
        if (is_stop && !ig_sched_has_work(e->sched) && e->n_inbox == 0) break;
    }
    e->state = IG_ENGINE_STATE_STOPPED;
    pthread_cond_broadcast(&e->cv_events);
    pthread_mutex_unlock(&e->mu);
    free(spare_in);
    free(spare_cn);
    return NULL;
}

/* ---- the API ---- */

static ig_evict_policy policy_of(ig_engine_eviction ev) {
    switch (ev) {
    case IG_ENGINE_EVICTION_LFU:
        return IG_EVICT_LFU;
    case IG_ENGINE_EVICTION_FIFO:
        return IG_EVICT_FIFO;
    default:
        return IG_EVICT_LRU;
    }
}

ig_status ig_engine_new(const ig_engine_config *config, ig_engine **out, ig_error *err) {
    ig_status st = IG_OK;
    if (!config || !out) return ig_errorf(err, IG_EINVAL, "engine: config and out are required");
    const ig_engine_config *c = config;
    if (!c->model) return ig_errorf(err, IG_EINVAL, "engine: config.model is required");
    if (c->block_size <= 0)
        return ig_errorf(err, IG_EINVAL, "engine: block_size must be > 0, got %d", c->block_size);
    if (c->max_batch_tokens <= 0)
        return ig_errorf(err, IG_EINVAL, "engine: max_batch_tokens must be > 0, got %d",
                         c->max_batch_tokens);
    if (c->max_seqs <= 0)
        return ig_errorf(err, IG_EINVAL, "engine: max_seqs must be > 0, got %d", c->max_seqs);
    if (c->max_queue <= 0)
        return ig_errorf(err, IG_EINVAL, "engine: max_queue must be > 0, got %d", c->max_queue);
    if (c->n_ctx < 0) return ig_errorf(err, IG_EINVAL, "engine: n_ctx is negative");
    if (c->response_cache < 0)
        return ig_errorf(err, IG_EINVAL, "engine: response_cache must be >= 0, got %d",
                         c->response_cache);
    if (!(c->target_step_ms >= 0))
        return ig_errorf(err, IG_EINVAL, "engine: target_step_ms must be >= 0");
    if ((unsigned)c->eviction > IG_ENGINE_EVICTION_FIFO)
        return ig_errorf(err, IG_EINVAL, "engine: unknown eviction policy %d", (int)c->eviction);
    const ig_model_desc *d = &c->model->desc;
    int32_t kv_dim = d->n_head_kv * d->head_dim;
    int32_t n_blocks = c->kv_blocks > 0 ? c->kv_blocks
                                        : ig_kv_blocks_for_bytes(d->n_layer, kv_dim, c->block_size,
                                                                 c->kv_cache_mb << 20);
    if (n_blocks <= 0)
        return ig_errorf(err, IG_EINVAL, "engine: kv_cache_mb %zu holds no %d-token block",
                         c->kv_cache_mb, c->block_size);

    ig_engine *e = calloc(1, sizeof *e);
    if (!e) return ig_errorf(err, IG_ENOMEM, "engine: out of memory");
    e->cfg = *c;
    e->state = IG_ENGINE_STATE_LOADING;
    e->next_id = 1;
    e->n_vocab = d->n_vocab;
    pthread_mutex_init(&e->mu, NULL);
    pthread_cond_init(&e->cv_work, NULL);
    pthread_cond_init(&e->cv_events, NULL);
    if (!c->pool) {
        if ((st = ig_pool_new(c->n_threads, &e->own_pool, err)) != IG_OK) goto fail;
    }
    ig_sched_config sc = {.model = c->model,
                          .pool = c->pool ? c->pool : e->own_pool,
                          .n_blocks = n_blocks,
                          .block_size = c->block_size,
                          .eviction = policy_of(c->eviction),
                          .prefix_caching = c->prefix_caching,
                          .max_batch_tokens = c->max_batch_tokens,
                          .max_seqs = c->max_seqs,
                          .max_waiting = 0, /* the engine bounds its queue at submit */
                          .n_ctx = c->n_ctx,
                          .emit = engine_emit,
                          .emit_ctx = e,
                          .clock = sched_clock};
    if ((st = ig_sched_new(&sc, &e->sched, err)) != IG_OK) goto fail;
    e->n_ctx = ig_sched_n_ctx(e->sched);
    ig_budget_pid_init(&e->pid, c->target_step_ms,
                       c->max_seqs < c->max_batch_tokens ? c->max_seqs : c->max_batch_tokens,
                       c->max_batch_tokens);
    e->tps_window_start_us = now_us();
    publish_stats(e, 0, false);
    e->state = IG_ENGINE_STATE_READY;
    if (pthread_create(&e->thread, NULL, engine_main, e) != 0) {
        st = ig_errorf(err, IG_EINTERNAL, "engine: cannot start the engine thread");
        goto fail;
    }
    e->has_thread = true;
    *out = e;
    return IG_OK;
fail:
    ig_sched_free(e->sched);
    ig_pool_free(e->own_pool);
    pthread_cond_destroy(&e->cv_events);
    pthread_cond_destroy(&e->cv_work);
    pthread_mutex_destroy(&e->mu);
    free(e);
    return st;
}

ig_status ig_engine_submit(ig_engine *e, const ig_request *req, ig_request_id *id_out,
                           ig_error *err) {
    if (!e || !req || !id_out)
        return ig_errorf(err, IG_EINVAL, "engine: submit needs an engine, a request and id_out");
    ig_req *q = NULL;
    ig_status st =
        ig__req_new(req, 0, now_us(), e->n_vocab, e->cfg.model->vocab, e->n_ctx, &q, err);
    if (st != IG_OK) return st;
    if (e->cfg.coalesce || e->cfg.response_cache > 0) q->ckey = coalesce_key(req, &q->ckey_len);
    pthread_mutex_lock(&e->mu);
    if (e->is_stop_requested || e->state == IG_ENGINE_STATE_STOPPED ||
        e->state == IG_ENGINE_STATE_DRAINING) {
        st = ig_errorf(err, IG_EOVERLOADED, "engine: %s, not accepting requests",
                       e->state == IG_ENGINE_STATE_DRAINING ? "draining" : "stopped");
        e->stats.n_rejected++;
        goto unlock;
    }
    if (e->n_inbox + e->n_sched_waiting >= e->cfg.max_queue) {
        st = ig_errorf(err, IG_EOVERLOADED, "engine: %d requests are waiting (max_queue)",
                       e->n_inbox + e->n_sched_waiting);
        e->stats.n_rejected++;
        goto unlock;
    }
    if (!grow((void **)&e->inbox, &e->cap_inbox, e->n_inbox + 1, sizeof *e->inbox) ||
        !grow((void **)&e->live, &e->cap_live, e->n_live + 1, sizeof *e->live)) {
        st = ig_errorf(err, IG_ENOMEM, "engine: out of memory");
        goto unlock;
    }
    q->id = e->next_id++;
    e->inbox[e->n_inbox++] = q;
    e->live[e->n_live++] = (live_entry){q->id, false};
    e->n_unfinished++;
    e->stats.n_requests++;
    *id_out = q->id;
    q = NULL;
    pthread_cond_signal(&e->cv_work);
unlock:
    pthread_mutex_unlock(&e->mu);
    ig__req_free(q);
    return st;
}

ig_status ig_engine_cancel(ig_engine *e, ig_request_id id) {
    ig_status st = IG_OK;
    pthread_mutex_lock(&e->mu);
    live_entry *le = live_find(e, id);
    if (!le || le->is_finished || e->state == IG_ENGINE_STATE_STOPPED) {
        st = IG_ENOTFOUND;
    } else if (!grow((void **)&e->cancels, &e->cap_cancels, e->n_cancels + 1, sizeof *e->cancels)) {
        st = IG_ENOMEM;
    } else {
        e->cancels[e->n_cancels++] = id;
        pthread_cond_signal(&e->cv_work);
    }
    pthread_mutex_unlock(&e->mu);
    return st;
}

static void deadline_of(struct timespec *ts, int64_t timeout_ms) {
    clock_gettime(CLOCK_REALTIME, ts);
    ts->tv_sec += timeout_ms / 1000;
    ts->tv_nsec += (timeout_ms % 1000) * 1000000;
    if (ts->tv_nsec >= 1000000000) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000;
    }
}

ig_status ig_engine_poll(ig_engine *e, ig_request_id id, ig_event *out, size_t cap, size_t *n_out,
                         int64_t timeout_ms) {
    if (!e || !out || !n_out || cap == 0) return IG_EINVAL;
    *n_out = 0;
    if (e->cfg.on_event) return IG_EINVAL;
    ig_status st = IG_OK;
    struct timespec dl;
    if (timeout_ms > 0) deadline_of(&dl, timeout_ms);
    pthread_mutex_lock(&e->mu);
    for (;;) {
        if (id != 0 && !live_find(e, id)) {
            st = IG_ENOTFOUND;
            break;
        }
        size_t n = 0;
        ev_node *prev = NULL;
        for (ev_node *nd = e->ev_head; nd && n < cap;) {
            ev_node *next = nd->next;
            if (id == 0 || nd->ev.id == id) {
                if (prev)
                    prev->next = next;
                else
                    e->ev_head = next;
                if (e->ev_tail == nd) e->ev_tail = prev;
                out[n++] = nd->ev;
                if (nd->ev.type == IG_EVENT_FINISHED) live_remove(e, nd->ev.id);
            } else {
                prev = nd;
            }
            nd = next;
        }
        if (n > 0) {
            *n_out = n;
            break;
        }
        if (e->state == IG_ENGINE_STATE_STOPPED) {
            st = IG_ECANCELLED;
            break;
        }
        if (timeout_ms == 0) {
            st = IG_ETIMEDOUT;
            break;
        }
        if (timeout_ms < 0) {
            pthread_cond_wait(&e->cv_events, &e->mu);
        } else if (pthread_cond_timedwait(&e->cv_events, &e->mu, &dl) != 0) {
            timeout_ms = 0; /* one last look, then time out */
        }
    }
    pthread_mutex_unlock(&e->mu);
    return st;
}

void ig_engine_stats_get(ig_engine *e, ig_engine_stats *out) {
    pthread_mutex_lock(&e->mu);
    *out = e->stats;
    out->state = e->state;
    out->n_waiting = e->n_inbox + e->n_sched_waiting;
    pthread_mutex_unlock(&e->mu);
}

ig_engine_state ig_engine_get_state(ig_engine *e) {
    pthread_mutex_lock(&e->mu);
    ig_engine_state s = e->state;
    pthread_mutex_unlock(&e->mu);
    return s;
}

ig_status ig_engine_drain(ig_engine *e, int64_t timeout_ms) {
    ig_status st = IG_OK;
    struct timespec dl;
    if (timeout_ms > 0) deadline_of(&dl, timeout_ms);
    pthread_mutex_lock(&e->mu);
    if (e->state != IG_ENGINE_STATE_STOPPED) e->state = IG_ENGINE_STATE_DRAINING;
    pthread_cond_signal(&e->cv_work);
    while (e->n_unfinished > 0 && e->state != IG_ENGINE_STATE_STOPPED) {
        if (timeout_ms == 0) {
            st = IG_ETIMEDOUT;
            break;
        }
        if (timeout_ms < 0)
            pthread_cond_wait(&e->cv_events, &e->mu);
        else if (pthread_cond_timedwait(&e->cv_events, &e->mu, &dl) != 0)
            timeout_ms = 0;
    }
    pthread_mutex_unlock(&e->mu);
    return st;
}

void ig_engine_stop(ig_engine *e) {
    if (!e || !e->has_thread) return;
    pthread_mutex_lock(&e->mu);
    e->is_stop_requested = true;
    pthread_cond_signal(&e->cv_work);
    pthread_mutex_unlock(&e->mu);
    pthread_join(e->thread, NULL);
    e->has_thread = false;
}

void ig_engine_free(ig_engine *e) {
    if (!e) return;
    ig_engine_stop(e);
    for (ev_node *n = e->ev_head; n;) {
        ev_node *next = n->next;
        free(n);
        n = next;
    }
    for (int32_t i = 0; i < e->n_inbox; i++) ig__req_free(e->inbox[i]);
    free(e->inbox);
    free(e->cancels);
    free(e->live);
    for (int32_t i = 0; i < e->n_groups; i++) group_free(e->groups[i]);
    free(e->groups);
    for (int32_t i = 0; i < e->n_rc; i++) rc_entry_free(e->rc[i]);
    free(e->rc);
    ig_sched_free(e->sched);
    ig_pool_free(e->own_pool);
    pthread_cond_destroy(&e->cv_events);
    pthread_cond_destroy(&e->cv_work);
    pthread_mutex_destroy(&e->mu);
    free(e);
}
