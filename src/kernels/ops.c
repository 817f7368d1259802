/* ops.c: reference transformer ops (see ops.h). */
#include "kernels/ops.h"

#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "base/cpu.h"
#include "base/error.h"
#include "kernels/dot.h"
#include "tensor/pack.h"
#include "tensor/types.h"

/* Bytes of one token's converted activations, padded to a cache line. */
static size_t act_stride(const ig_dot_kernel *k, int64_t n_cols) {
    size_t bytes = 0;
    bool ok = ig_type_row_size(k->act_type, n_cols, &bytes);
    IG_ASSERT(ok); /* weight rows are whole blocks, and every vec_dot_type's block divides them */
    return (bytes + 63) & ~(size_t)63;
}

enum { MAX_W = 3 }; /* matrices one job may cover (ig_matmul_n) */

/*
 * Phase 2's chunks (runs of consecutive rows) are dealt out as one contiguous
 * region per thread, [next, end) packed in one atomic word: the owner takes
 * chunks from the front, in memory order, so its weights stream as one run
 * (each jump to a chunk elsewhere restarts the prefetchers). Decode on 2
 * threads, TinyLlama shape, 6 runs each interleaved A B B A, median tokens/s
 * (and share of the read bandwidth): Q4_0 78.5 (75%) with chunks dealt
 * round-robin, 84.3 (84%) with regions; Q8_0 47 (72%) -> 49.6 (76%); Q4_K_M
 * 84 (75%) -> 90 (81%); pp512 unchanged. A thread whose region is empty
 * takes chunks from the back of the others' (a machine shared with other
 * work can stall one thread).
 */
enum { MAX_REGIONS = 64 };
typedef struct {
    _Alignas(64) _Atomic uint64_t span; /* next << 32 | end */
} chunk_region;

static bool region_take(chunk_region *r, bool own, long *c) {
    uint64_t v = atomic_load_explicit(&r->span, memory_order_relaxed);
    for (;;) {
        const uint32_t next = (uint32_t)(v >> 32), end = (uint32_t)v;
        if (next >= end) return false;
        const uint64_t want =
            own ? (uint64_t)(next + 1) << 32 | end : (uint64_t)next << 32 | (end - 1);
        if (atomic_compare_exchange_weak_explicit(&r->span, &v, want, memory_order_relaxed,
                                                  memory_order_relaxed)) {
            *c = own ? (long)next : (long)end - 1;
            return true;
        }
    }
}

typedef struct {
    const ig_dot_kernel *k;
    uint32_t type;  /* every matrix's type */
    int64_t n_cols; /* every matrix's width */
    const float *x; /* [n_tokens][n_cols] */
    int n_tokens;
    const void *xq; /* [n_tokens] rows of `stride` bytes in k->act_type */
    void *scratch;  /* where phase 1 writes them (NULL for f32: xq is x) */
    size_t stride;
    uint8_t *aux; /* some w packed: [n_tokens] rows of aux_stride bytes of ig_pack_aux */
    size_t aux_stride;
    int n_w;
    const ig_matrix *w[MAX_W];
    float *y[MAX_W];             /* [n_tokens][w->n_rows] each */
    long chunk_rows[MAX_W];      /* rows per work item of phase 2 */
    long first_chunk[MAX_W + 1]; /* matrix m's chunks are first_chunk[m] .. [m + 1] - 1 */
    int n_regions;               /* threads with a region below (0: all share `next`) */
    atomic_long next;            /* next unclaimed chunk, when n_regions == 0 */
    chunk_region *regions;       /* [n_regions] */
} matmul_job;

/* Phase 1: threads split the tokens and convert their activations. */
static void quantize_worker(void *ctx, int ith, int nth) {
    const matmul_job *j = ctx;
    long lo, hi;
    ig_pool_range(j->n_tokens, ith, nth, &lo, &hi);
    for (long t = lo; t < hi; t++) {
        uint8_t *xq = (uint8_t *)j->scratch + (size_t)t * j->stride;
        j->k->quantize_act(j->x + (size_t)t * j->n_cols, xq, j->n_cols);
        if (j->aux)
            ig_pack_r16_act_aux(j->type, xq, j->n_cols,
                                (ig_pack_aux *)(j->aux + (size_t)t * j->aux_stride));
    }
}

/*
 * Packed rows at a level with no r16 kernel (the level was lowered after the
 * weights were packed): each row unpacked into a buffer, then the plain dot.
 * Slow but exact; never the path a model loaded at this level takes.
 */
static void packed_rows_slow(const matmul_job *j, int m, long lo, long hi) {
    const ig_matrix *w = j->w[m];
    uint8_t *row = malloc(w->row_bytes);
    IG_ASSERT(row); /* a few KiB; there is no error path out of a matmul */
    for (long r = lo; r < hi; r++) {
        ig_pack_r16_get_row(w->type, w->data, w->row_bytes, w->n_rows, r, row);
        for (int t = 0; t < j->n_tokens; t++)
            j->y[m][(size_t)t * w->n_rows + r] =
                j->k->vec_dot_q(row, (const uint8_t *)j->xq + (size_t)t * j->stride, w->n_cols);
    }
    free(row);
}

/* Tokens per gemm_q call: one call's activations (a few hundred KiB at most) stay in L2. */
enum { TOKENS_PER_TILE = 64 };

/*
 * Phase 2: threads take chunks of consecutive rows (from their own region,
 * then from the others': a thread that falls behind takes fewer); a chunk's
 * weights are read from memory once and stay in cache while every token
 * passes over them, TOKENS_PER_TILE at a time. Each output depends only on
 * its row and its token (the kernels guarantee it for any tile shape), so
 * how chunks fall to threads does not change any value.
 */
static void run_chunk(const matmul_job *j, int m, long c) {
    const ig_matrix *w = j->w[m];
    float *y = j->y[m];
    const uint8_t *base = w->data;
    const uint8_t *xq = j->xq;
    const int64_t n_cols = w->n_cols, n_rows = w->n_rows;
    const int64_t n_packed = w->packed ? n_rows / IG_PACK_ROWS * IG_PACK_ROWS : 0;
    const size_t rb = w->row_bytes;
    const ig_gemm_q_fn gemm = j->k->gemm_q;
    const ig_vec_dot_q_fn dot = j->k->vec_dot_q;
    long lo = c * j->chunk_rows[m];
    const long hi = lo + j->chunk_rows[m] < n_rows ? lo + j->chunk_rows[m] : n_rows;
    if (lo < n_packed) { /* lo is a multiple of 16: whole groups */
        const long phi = hi < n_packed ? hi : (long)n_packed;
        const ig_gemm_r16_fn r16 = j->k->gemm_r16;
        if (!r16) {
            packed_rows_slow(j, m, lo, phi);
        } else {
            for (int t0 = 0; t0 < j->n_tokens; t0 += TOKENS_PER_TILE) {
                const int nc =
                    j->n_tokens - t0 < TOKENS_PER_TILE ? j->n_tokens - t0 : TOKENS_PER_TILE;
                r16(n_cols, base + (size_t)lo * rb, IG_PACK_ROWS * rb,
                    (int)((phi - lo) / IG_PACK_ROWS), xq + (size_t)t0 * j->stride, j->stride,
                    j->aux + (size_t)t0 * j->aux_stride, j->aux_stride, nc,
                    y + (size_t)t0 * n_rows + lo, (size_t)n_rows);
            }
        }
        lo = phi;
        if (lo >= hi) return;
    }
    if (gemm) {
        for (int t0 = 0; t0 < j->n_tokens; t0 += TOKENS_PER_TILE) {
            const int nc = j->n_tokens - t0 < TOKENS_PER_TILE ? j->n_tokens - t0 : TOKENS_PER_TILE;
            gemm(n_cols, base + (size_t)lo * rb, rb, (int)(hi - lo), xq + (size_t)t0 * j->stride,
                 j->stride, nc, y + (size_t)t0 * n_rows + lo, (size_t)n_rows);
        }
    } else {
        for (long r = lo; r < hi; r++) {
            const void *row = base + (size_t)r * rb;
            for (int t = 0; t < j->n_tokens; t++)
                y[(size_t)t * n_rows + r] = dot(row, xq + (size_t)t * j->stride, n_cols);
        }
    }
}

static void run_global_chunk(matmul_job *j, long c) {
    int m = 0;
    while (c >= j->first_chunk[m + 1]) m++;
    run_chunk(j, m, c - j->first_chunk[m]);
}

static void dot_worker(void *ctx, int ith, int nth) {
    matmul_job *j = ctx;
    long c;
    if (j->n_regions == 0) {
        while ((c = atomic_fetch_add_explicit(&j->next, 1, memory_order_relaxed)) <
               j->first_chunk[j->n_w])
            run_global_chunk(j, c);
        return;
    }
    while (region_take(&j->regions[ith], true, &c)) run_global_chunk(j, c);
    for (int k = 1; k < nth; k++)
        while (region_take(&j->regions[(ith + k) % nth], false, &c)) run_global_chunk(j, c);
}

/*
 * Rows per chunk: a multiple of 16 (every kernel's row blocking divides it),
 * enough chunks for balance (8 per thread), and with a batch, few enough
 * rows that a chunk's weights stay in L2 (about 128 KiB) while the tokens pass.
 */
static long chunk_rows_for(int64_t n_rows, size_t row_bytes, int n_tokens, int nth) {
    long rows = (long)(n_rows / ((long)nth * 8));
    if (n_tokens > 1) {
        const long l2_rows = (long)((128u << 10) / (row_bytes ? row_bytes : 1));
        if (rows > l2_rows) rows = l2_rows;
    }
    rows &= ~15L;
    return rows < 16 ? 16 : rows;
}

/* Bytes of one token's ig_pack_aux terms, padded to a cache line. */
static size_t aux_stride(const ig_matrix *w) {
    return ((size_t)(w->n_cols / 32) * sizeof(ig_pack_aux) + 63) & ~(size_t)63;
}

size_t ig_matmul_scratch_bytes(const ig_matrix *w, int n_tokens) {
    const ig_dot_kernel *k = ig_dot_kernel_get(w->type, IG_CPU_SCALAR);
    IG_ASSERT(k);
    if (k->act_type == IG_TYPE_F32 || n_tokens <= 0) return 0;
    size_t per = act_stride(k, w->n_cols);
    if (w->packed) per += aux_stride(w);
    return (size_t)n_tokens * per;
}

bool ig_matrix_pack_pays(const ig_matrix *w) {
    if (!ig_pack_r16_supported(w->type) || w->n_rows < IG_PACK_ROWS) return false;
    const ig_dot_kernel *k = ig_dot_kernel_get(w->type, ig_cpu_level_get());
    return k && k->gemm_r16;
}

void ig_matmul_n(ig_pool *pool, int n_w, const ig_matrix *const *ws, const float *x, int n_tokens,
                 float *const *ys, void *scratch) {
    IG_ASSERT(n_w >= 1 && n_w <= MAX_W);
    bool same = true;
    for (int i = 1; i < n_w; i++)
        same = same && ws[i]->type == ws[0]->type && ws[i]->n_cols == ws[0]->n_cols;
    if (!same) {
        for (int i = 0; i < n_w; i++) ig_matmul_n(pool, 1, &ws[i], x, n_tokens, &ys[i], scratch);
        return;
    }
    const ig_matrix *w0 = ws[0];
    const ig_dot_kernel *k = ig_dot_kernel_get(w0->type, ig_cpu_level_get());
    IG_ASSERT(k);
    matmul_job j = {.k = k,
                    .type = w0->type,
                    .n_cols = w0->n_cols,
                    .x = x,
                    .n_tokens = n_tokens,
                    .xq = scratch,
                    .scratch = scratch,
                    .n_w = n_w};
    bool any_packed = false;
    for (int i = 0; i < n_w; i++) any_packed = any_packed || ws[i]->packed;
    if (k->act_type == IG_TYPE_F32) {
        /* f32 activations are used as they are: no conversion, no scratch */
        j.xq = x;
        j.stride = (size_t)w0->n_cols * sizeof(float);
    } else {
        IG_ASSERT(scratch && ((uintptr_t)scratch & 3) == 0);
        j.stride = act_stride(k, w0->n_cols);
        if (any_packed) {
            j.aux = (uint8_t *)scratch + (size_t)n_tokens * j.stride;
            j.aux_stride = aux_stride(w0);
        }
        if (n_tokens == 1)
            quantize_worker(&j, 0, 1); /* not worth waking the pool */
        else
            ig_pool_run(pool, quantize_worker, &j);
    }
    const int nth = pool ? ig_pool_size(pool) : 1;
    /* one chunk size for the whole job (its matrices share the row size), from its total rows:
     * per-matrix sizes made Q/K/V's small K and V matrices many tiny chunks */
    int64_t total_rows = 0;
    for (int i = 0; i < n_w; i++) total_rows += ws[i]->n_rows;
    const long rows_per_chunk = chunk_rows_for(total_rows, w0->row_bytes, n_tokens, nth);
    j.first_chunk[0] = 0;
    for (int i = 0; i < n_w; i++) {
        j.w[i] = ws[i];
        j.y[i] = ys[i];
        j.chunk_rows[i] = rows_per_chunk;
        j.first_chunk[i + 1] =
            j.first_chunk[i] + (long)((ws[i]->n_rows + rows_per_chunk - 1) / rows_per_chunk);
    }
    atomic_init(&j.next, 0);
    chunk_region regions[MAX_REGIONS];
    const long n_chunks = j.first_chunk[n_w];
    if (nth <= MAX_REGIONS && n_chunks < UINT32_MAX) {
        /* region boundaries at equal shares of the rows (a matrix's last chunk is short) */
        j.n_regions = nth;
        j.regions = regions;
        long c = 0;
        int64_t before = 0; /* rows in chunks 0 .. c-1 */
        int m = 0;
        uint64_t lo = 0;
        for (int t = 0; t < nth; t++) {
            const int64_t target = total_rows * (t + 1) / nth;
            while (c < n_chunks && before < target) {
                while (c >= j.first_chunk[m + 1]) m++;
                const int64_t start = (int64_t)(c - j.first_chunk[m]) * rows_per_chunk;
                const int64_t left = ws[m]->n_rows - start;
                before += left < rows_per_chunk ? left : rows_per_chunk;
                c++;
            }
            const uint64_t hi = t == nth - 1 ? (uint64_t)n_chunks : (uint64_t)c;
            atomic_init(&regions[t].span, lo << 32 | hi);
            lo = hi;
        }
    }
    ig_pool_run(pool, dot_worker, &j);
}

void ig_matmul(ig_pool *pool, const ig_matrix *w, const float *x, int n_tokens, float *y,
               void *scratch) {
    ig_matmul_n(pool, 1, &w, x, n_tokens, &y, scratch);
}

void ig_matrix_get_row(const ig_matrix *w, int64_t row, float *dst) {
    const ig_type_traits *tr = ig_type_get(w->type);
    IG_ASSERT(tr && tr->to_float && row >= 0 && row < w->n_rows);
    if (!w->packed) {
        tr->to_float((const uint8_t *)w->data + (size_t)row * w->row_bytes, dst, w->n_cols);
        return;
    }
    uint8_t block[256]; /* the largest packable block is q6_K's 210 bytes */
    IG_ASSERT(tr->type_size <= sizeof block);
    const int64_t bs = tr->blck_size;
    for (int64_t b = 0; b < w->n_cols / bs; b++) {
        ig_pack_r16_get_block(w->type, w->data, w->row_bytes, w->n_rows, row, b, block);
        tr->to_float(block, dst + b * bs, bs);
    }
}

void ig_rmsnorm(float *out, const float *x, const float *weight, int n, float eps) {
    /*
     * Rounding points as in ggml's rms_norm (the reference outputs come from
     * it, and activations are quantized to 8 bits right after, so a one-ulp
     * difference here can flip a code and move a random model's logits by
     * 1e-2): squares in float, summed in double, the mean and scale in float.
     * Measured: synth-q2_k's prompt logits went from 1.5e-2 to 1.3e-6 of
     * llama.cpp's (relative L2) with this change alone.
     */
    double ss = 0.0;
    for (int i = 0; i < n; i++) ss += (double)(x[i] * x[i]);
    const float mean = (float)(ss / n);
    const float scale = 1.0f / sqrtf(mean + eps);
    for (int i = 0; i < n; i++) out[i] = (x[i] * scale) * weight[i];
}

void ig_rope_table(float *cs, int n_rot, int pos, float freq_base, float freq_scale,
                   const float *freq_factors) {
    IG_ASSERT(n_rot % 2 == 0 && n_rot <= IG_ROPE_MAX_ROT);
    /* ggml's order: theta advances by repeated multiplication; each value is
     * stored twice (both lanes of its pair) for the vector code */
    const float theta_scale = powf(freq_base, -2.0f / (float)n_rot);
    float theta = (float)pos;
    for (int i = 0; i < n_rot / 2; i++) {
        const float t = freq_scale * (freq_factors ? theta / freq_factors[i] : theta);
        cs[2 * i] = cs[2 * i + 1] = cosf(t);
        cs[n_rot + 2 * i] = cs[n_rot + 2 * i + 1] = sinf(t);
        theta *= theta_scale;
    }
}

#ifdef IG_HAVE_X86_KERNELS
int ig__rope_pairs_avx512(float *x, int n_rot, const float *cs); /* x86/act_avx512.c */
int ig__rope_pairs_avx2(float *x, int n_rot, const float *cs);   /* x86/act_avx2.c */
#endif

void ig_rope_apply(float *x, int head_dim, int n_rot, const float *cs, int is_neox) {
    IG_ASSERT(n_rot <= head_dim && n_rot % 2 == 0);
    int i = 0; /* pairs done */
#ifdef IG_HAVE_X86_KERNELS
    if (!is_neox) {
        const ig_cpu_level level = ig_cpu_level_get();
        if (level >= IG_CPU_AVX512)
            i = ig__rope_pairs_avx512(x, n_rot, cs);
        else if (level == IG_CPU_AVX2)
            i = ig__rope_pairs_avx2(x, n_rot, cs);
    }
#endif
    /* the rotation's first product of each output is fused (how GCC compiles ggml's rope) */
    for (; i < n_rot / 2; i++) {
        const float c = cs[2 * i], s = cs[n_rot + 2 * i];
        const int a = is_neox ? i : 2 * i;
        const int b = is_neox ? i + n_rot / 2 : 2 * i + 1;
        const float x0 = x[a], x1 = x[b];
        x[a] = fmaf(x0, c, -(x1 * s));
        x[b] = fmaf(x0, s, x1 * c);
    }
}

/*
 * ggml's vectorised exp (AVX-512 ggml_v_expf: an ARM optimized-routines
 * polynomial, max error ~1.5 ulp), computed element by element.
 */
static float v_expf(float x) {
    const float shift = 0x1.8p23f;
    const float z = fmaf(x, 0x1.715476p+0f, shift);
    const float n = z - shift; /* round(x / ln 2) */
    const float b = fmaf(-n, 0x1.7f7d1cp-20f, fmaf(-n, 0x1.62e4p-1f, x));
    const float u = b * b;
    const float j = fmaf(
        fmaf(fmaf(0x1.0e4020p-7f, b, 0x1.573e2ep-5f), u, fmaf(0x1.555e66p-3f, b, 0x1.fffdb6p-2f)),
        u, fmaf(0x1.ffffecp-1f, b, 1.0f));
    if (fabsf(n) > 192.0f) return n <= 0.0f ? 0.0f : INFINITY;
    return ldexpf(j, (int)n);
}

#ifdef IG_HAVE_X86_KERNELS
void ig__silu_mul_avx512(float *a, const float *b, int n); /* x86/act_avx512.c */
void ig__silu_mul_avx2(float *a, const float *b, int n);   /* x86/act_avx2.c */
#endif

float ig__silu_mul_one(float a, float b) {
    return a / (1.0f + v_expf(0.0f - a)) * b;
}

void ig_silu_mul(float *a, const float *b, int n) {
    /* as ggml_vec_swiglu_f32: blocks of 16 use the vector exp, the tail expf */
    const int nb = n - n % 16;
    int i = 0;
#ifdef IG_HAVE_X86_KERNELS
    if (ig_cpu_level_get() >= IG_CPU_AVX512) {
        ig__silu_mul_avx512(a, b, nb); /* the same bits, 16 at a time */
        i = nb;
    } else if (ig_cpu_level_get() == IG_CPU_AVX2) {
        ig__silu_mul_avx2(a, b, nb); /* the same bits, 8 at a time */
        i = nb;
    }
#endif
    for (; i < nb; i++) a[i] = ig__silu_mul_one(a[i], b[i]);
    for (; i < n; i++) a[i] = a[i] / (1.0f + expf(-a[i])) * b[i];
}
