/*
 * test_engine_stress.c: many threads submitting, polling and cancelling at
 * random against one engine (fake model, small KV pool so that preemption
 * happens too). Meant for `make check-tsan`; in a normal build it checks
 * the bookkeeping: every accepted request gets exactly one FINISHED event,
 * events come in order, completed requests have the oracle's tokens, and
 * the KV pool ends with nothing in use.
 *
 * The coalescing run does the same with ig_engine_config.coalesce on and
 * prompts drawn from a set of three, so that many identical greedy requests
 * run at once: followers join running leaders, leaders are cancelled or time
 * out and followers are promoted, all while other threads submit and poll;
 * the response cache (4 entries) answers some of them at intake.
 *
 * Criterion's runner cannot start under ThreadSanitizer (its shared arena
 * collides with TSan's memory layout: Criterion issue #274), so a TSan build
 * of this file has its own main() that runs the same check without the
 * runner; other builds use Criterion as usual.
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>

#include "fake_model.h"
#include "ignis.h"
#include "sample/sampler.h"
#include "testutil.h"

#define V            64
#define N_THREADS    6
#define N_PER_THREAD 40

typedef struct worker {
    ig_engine *e;
    ig_model *m;
    uint64_t seed;
    bool is_coalesce; /* prompts from a set of three, fewer lengths: many identical requests */
    int n_ok, n_overloaded, n_cancel_ok, n_bad;
} worker;

static atomic_int g_overloaded;

/* Count a problem and say which check saw it (tests print nothing otherwise). */
#define BAD(w)                                                                                     \
    do {                                                                                           \
        (w)->n_bad++;                                                                              \
        fprintf(stderr, "stress: the check at line %d failed\n", __LINE__);                        \
    } while (0)

static void *work(void *arg) {
    worker *w = arg;
    uint64_t r = w->seed;
    for (int i = 0; i < N_PER_THREAD; i++) {
        r = fake_mix(r);
        int32_t p[24];
        int32_t np = 2 + (int32_t)(r % 20);
        if (w->is_coalesce) np = 6 + 2 * (int32_t)(r % 3);
        for (int32_t j = 0; j < np; j++) p[j] = (int32_t)((r >> 8) % 3 + (uint64_t)j * 5) % V;
        ig_sampler_params sp = ig_sampler_params_default();
        sp.temperature = 0;
        int32_t max_tokens = 1 + (int32_t)((r >> 16) % 12);
        if (w->is_coalesce) max_tokens = (r >> 16) % 2 ? 6 : 10;
        ig_request req = {.prompt = p,
                          .n_prompt = (size_t)np,
                          .sampling = &sp,
                          .max_tokens = max_tokens,
                          .priority = (int32_t)((r >> 24) % 3),
                          .timeout_ms = (r >> 28) % 11 == 0 ? 1 : 0,
                          .user_data = (uintptr_t)i};
        ig_request_id id;
        ig_status st = ig_engine_submit(w->e, &req, &id, NULL);
        if (st == IG_EOVERLOADED) {
            w->n_overloaded++;
            atomic_fetch_add(&g_overloaded, 1);
            continue;
        }
        if (st != IG_OK) {
            BAD(w);
            continue;
        }
        w->n_ok++;
        bool do_cancel = (r >> 32) % 4 == 0;
        int cancel_after = (int)((r >> 36) % 4);
        int32_t toks[64];
        int n_tok = 0, n_events = 0;
        bool finished = false;
        ig_finish_kind kind = IG_FINISH_KIND_NONE;
        if (do_cancel && cancel_after == 0 && ig_engine_cancel(w->e, id) == IG_OK) w->n_cancel_ok++;
        while (!finished) {
            ig_event ev[4];
            size_t n = 0;
            st = ig_engine_poll(w->e, id, ev, 4, &n, 10000);
            if (st != IG_OK) {
                BAD(w);
                break;
            }
            for (size_t k = 0; k < n; k++) {
                if (ev[k].id != id || ev[k].user_data != (uintptr_t)i || finished) BAD(w);
                if (ev[k].type == IG_EVENT_TOKEN && n_tok < 64) toks[n_tok++] = ev[k].token;
                if (ev[k].type == IG_EVENT_FINISHED) {
                    finished = true;
                    kind = ev[k].finish;
                    const ig_request_stats *rs = ev[k].stats;
                    if (rs->n_generated_tokens != n_tok) BAD(w);
                    /* times: queued <= first token <= finished */
                    if (rs->ttft_us >= 0 && (rs->queue_us > rs->ttft_us || rs->queue_us < 0))
                        BAD(w);
                    if (rs->total_us < rs->ttft_us || rs->total_us < rs->queue_us) BAD(w);
                    if ((rs->ttft_us >= 0) != (n_tok > 0)) BAD(w);
                }
                n_events++;
                ig_event_release(&ev[k]);
            }
            if (do_cancel && n_events >= cancel_after && cancel_after > 0) {
                ig_status cs = ig_engine_cancel(w->e, id);
                if (cs == IG_OK) w->n_cancel_ok++;
                do_cancel = false;
            }
        }
        if (kind == IG_FINISH_KIND_LENGTH) {
            int32_t want[64];
            fake_greedy(fake_of(w->m), p, np, n_tok, want);
            if (n_tok != max_tokens) BAD(w);
            for (int k = 0; k < n_tok; k++)
                if (toks[k] != want[k]) BAD(w);
        }
        ig_engine_stats es;
        ig_engine_stats_get(w->e, &es); /* racing reads of the stats */
    }
    return NULL;
}

typedef struct stress_result {
    int n_ok, n_bad, n_overloaded;
    ig_engine_stats stats;
    ig_status new_status, drain_status;
} stress_result;

/*
 * With coalescing, two identical requests are submitted while the first is
 * held inside its first forward (the fake's gate), so at least one request
 * is coalesced whatever the threads do; they are polled after the workers.
 */
static int seed_coalesced_pair(ig_engine *e, ig_model *m, ig_request_id ids[2]) {
    static const int32_t p[8] = {1, 6, 11, 16, 21, 26, 31, 36};
    ig_sampler_params sp = ig_sampler_params_default();
    sp.temperature = 0;
    ig_request req = {.prompt = p, .n_prompt = 8, .sampling = &sp, .max_tokens = 8};
    fake_gate(m, 1);
    int bad = ig_engine_submit(e, &req, &ids[0], NULL) != IG_OK;
    bad += !fake_wait_at_gate(m);
    bad += ig_engine_submit(e, &req, &ids[1], NULL) != IG_OK;
    fake_gate(m, 0);
    return bad;
}

/* Poll the pair to the end: both get the same 8 tokens, the oracle's. */
static int finish_coalesced_pair(ig_engine *e, ig_model *m, const ig_request_id ids[2]) {
    static const int32_t p[8] = {1, 6, 11, 16, 21, 26, 31, 36};
    int32_t want[8];
    fake_greedy(fake_of(m), p, 8, 8, want);
    int bad = 0;
    for (int i = 0; i < 2; i++) {
        int n_tok = 0;
        bool finished = false;
        while (!finished) {
            ig_event ev[4];
            size_t n = 0;
            if (ig_engine_poll(e, ids[i], ev, 4, &n, 10000) != IG_OK) return bad + 1;
            for (size_t k = 0; k < n; k++) {
                if (ev[k].type == IG_EVENT_TOKEN) {
                    bad += n_tok >= 8 || ev[k].token != want[n_tok];
                    n_tok++;
                } else {
                    finished = true;
                    bad += ev[k].finish != IG_FINISH_KIND_LENGTH;
                }
                ig_event_release(&ev[k]);
            }
        }
        bad += n_tok != 8;
    }
    return bad;
}

static void run_stress(stress_result *res, bool is_coalesce) {
    memset(res, 0, sizeof *res);
    atomic_store(&g_overloaded, 0);
    ig_model *m = fake_model_new(V, NULL);
    ig_engine_config c = ig_engine_config_default();
    c.model = m;
    c.n_threads = 1;
    c.kv_blocks = 12;
    c.block_size = 4;
    c.max_batch_tokens = 16;
    c.max_seqs = 4;
    c.max_queue = is_coalesce ? 8 : 4;
    c.coalesce = is_coalesce;
    c.response_cache = is_coalesce ? 4 : 0; /* and the response cache beside it */
    ig_engine *e = NULL;
    res->new_status = ig_engine_new(&c, &e, NULL);
    if (res->new_status != IG_OK) {
        fake_model_free(m);
        return;
    }
    ig_request_id pair[2];
    if (is_coalesce) {
        res->n_bad += seed_coalesced_pair(e, m, pair);
        res->n_ok += 2;
    }
    pthread_t th[N_THREADS];
    worker w[N_THREADS];
    for (int i = 0; i < N_THREADS; i++) {
        w[i] = (worker){.e = e, .m = m, .seed = 1000 + (uint64_t)i, .is_coalesce = is_coalesce};
        pthread_create(&th[i], NULL, work, &w[i]);
    }
    for (int i = 0; i < N_THREADS; i++) {
        pthread_join(th[i], NULL);
        res->n_bad += w[i].n_bad;
        res->n_ok += w[i].n_ok;
    }
    if (is_coalesce) res->n_bad += finish_coalesced_pair(e, m, pair);
    res->drain_status = ig_engine_drain(e, -1);
    ig_engine_stats_get(e, &res->stats);
    res->n_overloaded = atomic_load(&g_overloaded);
    ig_engine_free(e);
    fake_model_free(m);
}

/* ---- callback mode: the callback runs on the engine thread ---- */

typedef struct cb_state {
    atomic_int n_finished;
    atomic_int n_tokens;
    atomic_int n_bad;
} cb_state;

static void on_event(void *user, const ig_event *ev) {
    cb_state *c = user;
    if (ev->type == IG_EVENT_FINISHED) {
        atomic_fetch_add(&c->n_finished, 1);
        if (!ev->stats || ev->stats->id != ev->id) atomic_fetch_add(&c->n_bad, 1);
    } else {
        atomic_fetch_add(&c->n_tokens, 1);
    }
}

typedef struct cb_worker {
    ig_engine *e;
    uint64_t seed;
    int n_ok;
} cb_worker;

static void *cb_work(void *arg) {
    cb_worker *w = arg;
    uint64_t r = w->seed;
    ig_request_id mine[N_PER_THREAD];
    int n_mine = 0;
    for (int i = 0; i < N_PER_THREAD; i++) {
        r = fake_mix(r);
        int32_t p[8];
        for (int j = 0; j < 8; j++) p[j] = (int32_t)((r >> (j * 4)) % V);
        ig_request req = {.prompt = p, .n_prompt = 8, .max_tokens = 1 + (int32_t)((r >> 40) % 6)};
        ig_request_id id;
        if (ig_engine_submit(w->e, &req, &id, NULL) == IG_OK) {
            w->n_ok++;
            mine[n_mine++] = id;
        }
        if (n_mine > 0 && (r >> 50) % 3 == 0)
            ig_engine_cancel(w->e, mine[(r >> 52) % (uint64_t)n_mine]); /* may be finished */
    }
    return NULL;
}

/* Returns the number of problems found. */
static int run_callback_stress(int *n_ok_out) {
    static cb_state cs;
    atomic_store(&cs.n_finished, 0);
    atomic_store(&cs.n_bad, 0);
    ig_model *m = fake_model_new(V, NULL);
    ig_engine_config c = ig_engine_config_default();
    c.model = m;
    c.n_threads = 1;
    c.kv_blocks = 12;
    c.block_size = 4;
    c.max_batch_tokens = 16;
    c.max_seqs = 4;
    c.max_queue = 8;
    c.on_event = on_event;
    c.on_event_user = &cs;
    ig_engine *e = NULL;
    if (ig_engine_new(&c, &e, NULL) != IG_OK) return 1;
    pthread_t th[N_THREADS];
    cb_worker w[N_THREADS];
    for (int i = 0; i < N_THREADS; i++) {
        w[i] = (cb_worker){.e = e, .seed = 5000 + (uint64_t)i};
        pthread_create(&th[i], NULL, cb_work, &w[i]);
    }
    int n_ok = 0;
    for (int i = 0; i < N_THREADS; i++) {
        pthread_join(th[i], NULL);
        n_ok += w[i].n_ok;
    }
    int bad = ig_engine_drain(e, -1) != IG_OK;
    ig_engine_stats st;
    ig_engine_stats_get(e, &st);
    bad += atomic_load(&cs.n_finished) != n_ok;
    bad += atomic_load(&cs.n_bad);
    bad += st.kv_blocks_used != 0;
    ig_engine_free(e);
    fake_model_free(m);
    *n_ok_out = n_ok;
    return bad;
}

/* Every check of a run, for the TSan main (Criterion's tests spell them out). */
static bool stress_ok(const stress_result *r, bool is_coalesce) {
    return r->new_status == IG_OK && r->n_bad == 0 && r->drain_status == IG_OK &&
           r->stats.n_requests == (uint64_t)r->n_ok && r->stats.n_finished == (uint64_t)r->n_ok &&
           r->stats.kv_blocks_used == 0 && r->stats.n_running == 0 && r->stats.n_waiting == 0 &&
           r->stats.n_rejected == (uint64_t)r->n_overloaded &&
           (!is_coalesce || r->stats.n_coalesced >= 1);
}

#ifndef IG_TSAN
Test(engine_stress, threads_submit_poll_cancel) {
    stress_result r;
    run_stress(&r, false);
    cr_assert_eq(r.new_status, IG_OK);
    cr_expect_eq(r.n_bad, 0, "workers saw %d bad things", r.n_bad);
    cr_assert_eq(r.drain_status, IG_OK);
    cr_assert_eq(r.stats.n_requests, (uint64_t)r.n_ok);
    cr_assert_eq(r.stats.n_finished, (uint64_t)r.n_ok);
    cr_assert_eq(r.stats.kv_blocks_used, 0);
    cr_assert_eq(r.stats.n_running, 0);
    cr_assert_eq(r.stats.n_waiting, 0);
    cr_assert_eq(r.stats.n_rejected, (uint64_t)r.n_overloaded);
    cr_log_info("%d requests, %d refused as overloaded, %llu preemptions", r.n_ok, r.n_overloaded,
                (unsigned long long)r.stats.n_preemptions);
}

Test(engine_stress, threads_submit_identical_requests_with_coalescing) {
    stress_result r;
    run_stress(&r, true);
    cr_assert_eq(r.new_status, IG_OK);
    cr_expect_eq(r.n_bad, 0, "workers saw %d bad things", r.n_bad);
    cr_assert_eq(r.drain_status, IG_OK);
    cr_assert_eq(r.stats.n_requests, (uint64_t)r.n_ok);
    cr_assert_eq(r.stats.n_finished, (uint64_t)r.n_ok);
    cr_assert_eq(r.stats.kv_blocks_used, 0);
    cr_assert_eq(r.stats.n_running, 0);
    cr_assert_eq(r.stats.n_waiting, 0);
    cr_assert_eq(r.stats.n_rejected, (uint64_t)r.n_overloaded);
    cr_assert_geq(r.stats.n_coalesced, 1);
    cr_assert(stress_ok(&r, true));
    cr_log_info("%d requests, %llu coalesced, %llu response cache hits, %d refused as overloaded, "
                "%llu preemptions",
                r.n_ok, (unsigned long long)r.stats.n_coalesced,
                (unsigned long long)r.stats.n_response_cache_hits, r.n_overloaded,
                (unsigned long long)r.stats.n_preemptions);
}

Test(engine_stress, threads_submit_cancel_with_callback) {
    int n_ok = 0;
    cr_assert_eq(run_callback_stress(&n_ok), 0);
    cr_assert_gt(n_ok, 0);
}
#else
int main(void) {
    stress_result r;
    run_stress(&r, false);
    bool ok = stress_ok(&r, false);
    printf("engine stress (TSan build): %d requests, %d overloaded, %llu preemptions, %d bad: %s\n",
           r.n_ok, r.n_overloaded, (unsigned long long)r.stats.n_preemptions, r.n_bad,
           ok ? "ok" : "FAILED");
    run_stress(&r, true);
    bool co_ok = stress_ok(&r, true);
    printf("engine stress, coalescing (TSan build): %d requests, %llu coalesced, %llu response "
           "cache hits, %d overloaded, %llu preemptions, %d bad: %s\n",
           r.n_ok, (unsigned long long)r.stats.n_coalesced,
           (unsigned long long)r.stats.n_response_cache_hits, r.n_overloaded,
           (unsigned long long)r.stats.n_preemptions, r.n_bad, co_ok ? "ok" : "FAILED");
    ok = ok && co_ok;
    int n_cb = 0;
    int cb_bad = run_callback_stress(&n_cb);
    printf("engine stress, callback mode (TSan build): %d requests, %d problems: %s\n", n_cb,
           cb_bad, cb_bad == 0 ? "ok" : "FAILED");
    return ok && cb_bad == 0 ? 0 : 1;
}
#endif
