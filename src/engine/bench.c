/*
 * bench.c: speed and bandwidth measurements (see bench.h). Single-threaded
 * apart from the pool's workers inside ig_bench_membw and the forward pass.
 */
#include "engine/bench.h"

#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include "base/error.h"
#include "tensor/types.h"

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
