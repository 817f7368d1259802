/*
 * bench.c: speed and bandwidth measurements (see bench.h). Single-threaded
 * apart from the pool's workers inside ig_bench_membw and the forward pass.
 */
#include "engine/bench.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include "base/error.h"
#include "ignis.h"
#include "sample/sampler.h"
#include "tensor/types.h"
#include "tokenizer/vocab.h"

#define KV_BLOCK 16

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* ---- memory bandwidth ---- */

/*
 * 16 bytes: one SSE2/NEON register on every 64-bit target, so eight
 * accumulators stay in registers without any ISA flags (a 32-byte vector
 * built without AVX is spilled to the stack on every add).
 */
typedef uint64_t v2u64 __attribute__((vector_size(16)));

typedef struct {
    v2u64 *buf;
    size_t n_vec;   /* vectors in buf (a multiple of 8) */
    uint64_t *sums; /* [nth]: keeps the reads from being optimised away */
} membw_job;

static volatile uint64_t membw_sink;

static void membw_fill(void *ctx, int ith, int nth) {
    membw_job *j = ctx;
    long lo, hi;
    ig_pool_range((long)j->n_vec, ith, nth, &lo, &hi);
    for (long i = lo; i < hi; i++) j->buf[i] = (v2u64){(uint64_t)i, 1};
}

/*
 * Sum the thread's slice, 128 bytes (two cache lines) per step into eight
 * independent accumulators, so loads are not serialised behind one add chain.
 */
static void membw_read(void *ctx, int ith, int nth) {
    membw_job *j = ctx;
    long lo, hi;
    ig_pool_range((long)(j->n_vec / 8), ith, nth, &lo, &hi);
    const v2u64 *p = j->buf;
    v2u64 a0 = {0}, a1 = {0}, a2 = {0}, a3 = {0}, a4 = {0}, a5 = {0}, a6 = {0}, a7 = {0};
    for (long i = lo * 8; i < hi * 8; i += 8) {
        a0 += p[i];
        a1 += p[i + 1];
        a2 += p[i + 2];
        a3 += p[i + 3];
        a4 += p[i + 4];
        a5 += p[i + 5];
        a6 += p[i + 6];
        a7 += p[i + 7];
    }
    v2u64 s = a0 + a1 + a2 + a3 + a4 + a5 + a6 + a7;
    j->sums[ith] = s[0] + s[1];
}

ig_status ig_bench_membw(ig_pool *pool, size_t bytes, int n_passes, double *gb_per_s,
                         ig_error *err) {
    ig_status st = IG_OK;
    membw_job j = {0};
    bytes &= ~(size_t)4095;
    if (bytes < (1u << 20) || n_passes < 1)
        return ig_errorf(err, IG_EINVAL, "membw: need at least 1 MiB and one pass");
    const int nth = pool ? ig_pool_size(pool) : 1;
    j.buf = aligned_alloc(4096, bytes);
    j.sums = calloc((size_t)nth, sizeof *j.sums);
    if (!j.buf || !j.sums) {
        st = ig_errorf(err, IG_ENOMEM, "membw: cannot allocate %zu MiB", bytes >> 20);
        goto done;
    }
    j.n_vec = bytes / sizeof(v2u64);
    /* huge pages where the kernel allows them: fewer TLB misses, as a weight mapping may get */
    (void)madvise(j.buf, bytes, MADV_HUGEPAGE);
    ig_pool_run(pool, membw_fill, &j);
    double best = 0;
    for (int pass = 0; pass < n_passes; pass++) {
        uint64_t t0 = now_ns();
        ig_pool_run(pool, membw_read, &j);
        uint64_t dt = now_ns() - t0;
        double gbs = dt ? (double)bytes / (double)dt : 0; /* bytes per ns = GB/s */
        if (gbs > best) best = gbs;
    }
    /* publish the sums so the reads cannot be optimised away */
    uint64_t total = 0;
    for (int i = 0; i < nth; i++) total += j.sums[i];
    membw_sink = total;
    *gb_per_s = best;
done:
    free(j.sums);
    free(j.buf);
    return st;
}

/* ---- model sizes ---- */

void ig_bench_model_size(const ig_model *m, uint64_t *bytes, uint64_t *n_params) {
    uint64_t b = 0, n = 0;
    for (int64_t i = 0; m->gguf && i < ig_gguf_n_tensors(m->gguf); i++) {
        const ig_gguf_tensor *t = ig_gguf_tensor_at(m->gguf, i);
        b += t->nbytes;
        n += (uint64_t)(t->ne[0] * t->ne[1] * t->ne[2] * t->ne[3]);
    }
    if (!m->gguf) {
        b = m->desc.weight_bytes;
        n = (uint64_t)m->desc.n_params;
    }
    *bytes = b;
    *n_params = n;
}

size_t ig_bench_weight_bytes_per_token(const ig_model *m) {
    if (!m->gguf) return m->desc.weight_bytes;
    size_t total = 0;
    const ig_gguf_tensor *embd = NULL;
    for (int64_t i = 0; i < ig_gguf_n_tensors(m->gguf); i++) {
        const ig_gguf_tensor *t = ig_gguf_tensor_at(m->gguf, i);
        if (ig_str_eq(t->name, "token_embd.weight"))
            embd = t;
        else
            total += t->nbytes;
    }
    if (embd) {
        if (!ig_gguf_find_tensor(m->gguf, "output.weight"))
            total += embd->nbytes;
        else if (embd->ne[1] > 0)
            total += embd->nbytes / (size_t)embd->ne[1];
    }
    return total;
}

/* ---- timed runs ---- */

static uint64_t splitmix64(uint64_t *s) {
    uint64_t z = (*s += UINT64_C(0x9E3779B97F4A7C15));
    z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
    return z ^ (z >> 31);
}

ig_status ig_bench_run(ig_model *m, ig_pool *pool, int32_t n_prompt, int32_t n_gen, uint64_t seed,
                       uint64_t *ns, ig_error *err) {
    ig_status st = IG_OK;
    ig_kv_cache *kv = NULL;
    int32_t *table = NULL, *toks = NULL, *pos = NULL, *seq = NULL;
    float *logits = NULL;
    if ((n_prompt > 0) == (n_gen > 0) || n_prompt < 0 || n_gen < 0)
        return ig_errorf(err, IG_EINVAL, "bench: a run is either pp (n_prompt) or tg (n_gen)");
    const ig_model_desc *d = &m->desc;
    const int32_t n_tokens = n_prompt > 0 ? n_prompt : n_gen;
    const int32_t n_blocks = (n_tokens + KV_BLOCK - 1) / KV_BLOCK;
    if ((st =
             ig_kv_cache_new(d->n_layer, d->n_head_kv * d->head_dim, KV_BLOCK, n_blocks, &kv, err)))
        goto done;
    /* touch the cache now, so its page faults are not timed */
    const size_t kv_values = (size_t)n_blocks * d->n_layer * KV_BLOCK * (size_t)kv->kv_dim;
    memset(kv->k, 0, kv_values * sizeof *kv->k);
    memset(kv->v, 0, kv_values * sizeof *kv->v);
    table = malloc((size_t)n_blocks * sizeof *table);
    toks = malloc((size_t)n_tokens * sizeof *toks);
    pos = malloc((size_t)n_tokens * sizeof *pos);
    seq = calloc((size_t)n_tokens, sizeof *seq);
    logits = malloc((size_t)d->n_vocab * sizeof *logits);
    if (!table || !toks || !pos || !seq || !logits) {
        st = ig_errorf(err, IG_ENOMEM, "bench: out of memory");
        goto done;
    }
    for (int32_t i = 0; i < n_blocks; i++) table[i] = i;
    /* BOS first (when the vocabulary has one), then random ids, as llama-bench */
    uint64_t s = seed;
    for (int32_t i = 0; i < n_tokens; i++) {
        toks[i] = (int32_t)(((splitmix64(&s) >> 32) * (uint64_t)d->n_vocab) >> 32);
        pos[i] = i;
    }
    if (m->vocab && m->vocab->bos_id >= 0 && m->vocab->bos_id < d->n_vocab)
        toks[0] = m->vocab->bos_id;
    ig_batch_seq bseq = {table, n_blocks};
    uint64_t t0 = now_ns();
    if (n_prompt > 0) {
        ig_batch b = {.n_tokens = n_prompt,
                      .tokens = toks,
                      .pos = pos,
                      .seq = seq,
                      .want_logits = NULL,
                      .n_seqs = 1,
                      .seqs = &bseq};
        if ((st = ig_model_forward(m, &b, kv, pool, logits, err))) goto done;
    } else {
        for (int32_t i = 0; i < n_gen; i++) {
            ig_batch b = {.n_tokens = 1,
                          .tokens = toks + i,
                          .pos = pos + i,
                          .seq = seq,
                          .want_logits = NULL,
                          .n_seqs = 1,
                          .seqs = &bseq};
            if ((st = ig_model_forward(m, &b, kv, pool, logits, err))) goto done;
        }
    }
    *ns = now_ns() - t0;
done:
    free(logits);
    free(seq);
    free(pos);
    free(toks);
    free(table);
    ig_kv_cache_free(kv);
    return st;
}

/* ---- percentiles ---- */

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

double ig_bench_percentile(double *x, size_t n, double p) {
    if (n == 0) return 0;
    qsort(x, n, sizeof *x, cmp_double);
    if (!(p > 0)) p = 0; /* NaN too */
    if (p > 100) p = 100;
    double rank = p / 100.0 * (double)(n - 1);
    size_t lo = (size_t)rank;
    if (lo >= n - 1) return x[n - 1];
    double frac = rank - (double)lo;
    return x[lo] + (x[lo + 1] - x[lo]) * frac;
}

/* ---- the engine under concurrent load ---- */

static int32_t random_token(const ig_model *m, uint64_t *s) {
    return (int32_t)(((splitmix64(s) >> 32) * (uint64_t)m->desc.n_vocab) >> 32);
}

/* Submit one request; greedy, end-of-generation tokens banned so it runs to max_tokens. */
static ig_status bench_submit(ig_engine *e, const int32_t *prompt, int32_t n_prompt,
                              int32_t max_tokens, const ig_sampler_params *sp, uintptr_t tag,
                              ig_request_id *id, ig_error *err) {
    ig_request r = {.prompt = prompt,
                    .n_prompt = (size_t)n_prompt,
                    .sampling = sp,
                    .max_tokens = max_tokens,
                    .user_data = tag};
    return ig_engine_submit(e, &r, id, err);
}

typedef struct {
    double *v;
    size_t n, cap;
} dvec;

static bool dvec_push(dvec *d, double x) {
    if (d->n == d->cap) {
        size_t c = d->cap ? d->cap * 2 : 256;
        double *nv = realloc(d->v, c * sizeof *nv);
        if (!nv) return false;
        d->v = nv;
        d->cap = c;
    }
    d->v[d->n++] = x;
    return true;
}

/* Client-side times of the measured requests, indexed by user_data - 1. */
typedef struct {
    uint64_t *submit_ns; /* just before its submit */
    uint64_t *last_ns;   /* when its last TOKEN event was taken (0: none yet) */
} bench_clock;

/*
 * Poll until n_expect FINISHED events came. With bc, record for each request
 * (by user_data - 1) the time to its first TOKEN event and the gaps between
 * its TOKEN events, as the polling client sees them; the time of the last
 * FINISHED event goes to *t_end_ns.
 */
static ig_status bench_collect(ig_engine *e, int32_t n_expect, bench_clock *bc, dvec *ttft,
                               dvec *itl, int64_t *n_cached, uint64_t *t_end_ns, ig_error *err) {
    ig_status st = IG_OK;
    ig_event evs[64];
    int32_t n_done = 0;
    while (n_done < n_expect) {
        size_t n = 0;
        ig_status pst = ig_engine_poll(e, 0, evs, sizeof evs / sizeof evs[0], &n, -1);
        if (pst != IG_OK) return ig_errorf(err, pst, "bench: polling the engine failed");
        const uint64_t t = now_ns();
        for (size_t i = 0; i < n; i++) {
            const ig_event *ev = &evs[i];
            size_t k = (size_t)ev->user_data - 1;
            if (ev->type == IG_EVENT_TOKEN && bc && st == IG_OK) {
                bool ok = bc->last_ns[k] == 0
                              ? dvec_push(ttft, (double)(t - bc->submit_ns[k]) / 1e6)
                              : dvec_push(itl, (double)(t - bc->last_ns[k]) / 1e6);
                bc->last_ns[k] = t;
                if (!ok) st = ig_errorf(err, IG_ENOMEM, "bench: out of memory");
            } else if (ev->type == IG_EVENT_FINISHED) {
                n_done++;
                *t_end_ns = t;
                if (st == IG_OK && ev->finish != IG_FINISH_KIND_LENGTH)
                    st = ig_errorf(err, IG_EINTERNAL, "bench: a request ended early: %s",
                                   ev->message && ev->message[0] ? ev->message : "not by length");
                if (n_cached && ev->stats) *n_cached += ev->stats->n_cached_tokens;
            }
            ig_event_release(&evs[i]);
        }
    }
    return st;
}

ig_status ig_bench_engine(ig_model *m, ig_pool *pool, const ig_bench_engine_params *p,
                          ig_bench_engine_result *out, ig_error *err) {
    ig_status st = IG_OK;
    ig_engine *e = NULL;
    int32_t *prompts = NULL;
    ig_logit_bias *bans = NULL;
    dvec ttft = {0}, itl = {0};
    bench_clock bc = {0};
    const ig_model_desc *d = &m->desc;
    memset(out, 0, sizeof *out);
    if (p->n_parallel < 1 || p->n_gen < 1 || p->prompt_len < 1 || p->shared_prefix < 0 ||
        p->shared_prefix >= p->prompt_len)
        return ig_errorf(err, IG_EINVAL,
                         "bench: need n_parallel, n_gen, prompt_len >= 1 and shared_prefix in "
                         "[0, prompt_len)");
    if ((int64_t)p->prompt_len + p->n_gen > d->n_ctx_train)
        return ig_errorf(err, IG_EINVAL,
                         "bench: prompt (%d) + generated (%d) tokens exceed the context of %d",
                         p->prompt_len, p->n_gen, d->n_ctx_train);
    const int32_t L = p->prompt_len, N = p->n_parallel;

    /* prompts: BOS, the shared prefix, then each its own random ids */
    prompts = malloc((size_t)N * (size_t)L * sizeof *prompts);
    const ig_vocab *v = m->vocab;
    bans = calloc(v && v->n_eog > 0 ? (size_t)v->n_eog : 1, sizeof *bans);
    bc.submit_ns = calloc((size_t)N, sizeof *bc.submit_ns);
    bc.last_ns = calloc((size_t)N, sizeof *bc.last_ns);
    if (!prompts || !bans || !bc.submit_ns || !bc.last_ns) {
        st = ig_errorf(err, IG_ENOMEM, "bench: out of memory");
        goto done;
    }
    uint64_t shared_seed = p->seed;
    for (int32_t i = 0; i < N; i++) {
        uint64_t s = shared_seed, own = p->seed + 1000003u * (uint64_t)(i + 1);
        for (int32_t k = 0; k < L; k++)
            prompts[(size_t)i * L + k] = random_token(m, k < p->shared_prefix ? &s : &own);
        if (v && v->bos_id >= 0 && v->bos_id < d->n_vocab) prompts[(size_t)i * L] = v->bos_id;
    }
    ig_sampler_params sp = ig_sampler_params_default();
    sp.temperature = 0;
    sp.seed = 1;
    size_t n_bans = 0;
    for (int32_t k = 0; v && k < v->n_eog; k++)
        if (v->eog_ids[k] >= 0 && v->eog_ids[k] < d->n_vocab)
            bans[n_bans++] = (ig_logit_bias){v->eog_ids[k], -INFINITY};
    sp.logit_bias = bans;
    sp.n_logit_bias = n_bans;

    /* room for every sequence at full length, plus the warm-up: no preemption */
    ig_engine_config c = ig_engine_config_default();
    c.model = m;
    c.pool = pool;
    c.prefix_caching = p->prefix_cache;
    const int32_t per_seq = (L + p->n_gen + c.block_size - 1) / c.block_size + 1;
    c.kv_blocks = (N + 1) * per_seq;
    if (c.max_seqs < N) c.max_seqs = N;
    if (c.max_queue < N + 1) c.max_queue = N + 1;
    if ((st = ig_engine_new(&c, &e, err))) goto done;

    ig_request_id id;
    uint64_t t_end = 0;
    if (p->warmup) {
        /* the shared prefix (or BOS alone) plus one random id */
        const int32_t wl = p->shared_prefix > 0 ? p->shared_prefix + 1 : 2;
        int32_t *w = malloc((size_t)wl * sizeof *w);
        if (!w) {
            st = ig_errorf(err, IG_ENOMEM, "bench: out of memory");
            goto done;
        }
        uint64_t s = p->seed ^ UINT64_C(0x5bd1e995);
        memcpy(w, prompts, (size_t)(wl - 1) * sizeof *w);
        w[wl - 1] = random_token(m, &s);
        st = bench_submit(e, w, wl, 2, &sp, 0, &id, err);
        free(w);
        if (st) goto done;
        if ((st = bench_collect(e, 1, NULL, NULL, NULL, NULL, &t_end, err))) goto done;
    }

    const uint64_t t0 = now_ns();
    int32_t n_submitted = 0;
    for (; n_submitted < N; n_submitted++) {
        bc.submit_ns[n_submitted] = now_ns();
        if ((st = bench_submit(e, prompts + (size_t)n_submitted * L, L, p->n_gen, &sp,
                               (uintptr_t)n_submitted + 1, &id, err)))
            break;
    }
    ig_error err2 = {0};
    ig_status st2 = bench_collect(e, n_submitted, &bc, &ttft, &itl, &out->n_cached_tokens, &t_end,
                                  st ? &err2 : err);
    if (st) goto done;
    if ((st = st2)) goto done;
    out->n_generated = (int64_t)N * p->n_gen;
    out->wall_ms = (double)(t_end - t0) / 1e6;
    out->avg_ts = out->wall_ms > 0 ? (double)out->n_generated * 1000.0 / out->wall_ms : 0;
    double sum = 0;
    for (size_t i = 0; i < ttft.n; i++) sum += ttft.v[i];
    out->ttft_ms_mean = ttft.n ? sum / (double)ttft.n : 0;
    out->ttft_ms_p50 = ig_bench_percentile(ttft.v, ttft.n, 50);
    out->ttft_ms_p95 = ig_bench_percentile(ttft.v, ttft.n, 95);
    out->itl_ms_p50 = ig_bench_percentile(itl.v, itl.n, 50);
    out->itl_ms_p95 = ig_bench_percentile(itl.v, itl.n, 95);
    out->itl_ms_p99 = ig_bench_percentile(itl.v, itl.n, 99);
done:
    ig_engine_free(e);
    free(bc.last_ns);
    free(bc.submit_ns);
    free(itl.v);
    free(ttft.v);
    free(bans);
    free(prompts);
    return st;
}
