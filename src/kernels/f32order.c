/* f32order.c: F32 matmul in llama.cpp's summation orders (see f32order.h). */
#include "kernels/f32order.h"

#include <math.h>

#include "base/cpu.h"
#include "base/error.h"
#include "tensor/types.h"

/* The AVX-512 horizontal sum: halves added pairwise, 16 -> 8 -> 4 -> 2 -> 1. */
static float sum_lanes16(const float *a) {
    float h8[8], h4[4];
    for (int i = 0; i < 8; i++) h8[i] = a[i] + a[i + 8];
    for (int i = 0; i < 4; i++) h4[i] = h8[i] + h8[i + 4];
    return (h4[0] + h4[2]) + (h4[1] + h4[3]);
}

float ig_dot_f32_lanes(const float *w, const float *x, int64_t n) {
    float acc[16] = {0};
    for (int64_t i = 0; i < n; i += 16)
        for (int l = 0; l < 16; l++) acc[l] = fmaf(w[i + l], x[i + l], acc[l]);
    return sum_lanes16(acc);
}

float ig_dot_f32_blocks(const float *w, const float *x, int64_t n) {
    float acc[4][16] = {{0}};
    const int64_t nb = n & ~(int64_t)63;
    for (int64_t i = 0; i < nb; i += 64)
        for (int j = 0; j < 4; j++)
            for (int l = 0; l < 16; l++)
                acc[j][l] = fmaf(w[i + 16 * j + l], x[i + 16 * j + l], acc[j][l]);
    for (int l = 0; l < 16; l++) {
        acc[0][l] += acc[2][l];
        acc[1][l] += acc[3][l];
    }
    for (int l = 0; l < 16; l++) acc[0][l] += acc[1][l];
    float s = sum_lanes16(acc[0]);
    /* leftovers: GCC vectorises the scalar loop's products in runs of 16 and 8
     * (rounded products added in order) and fuses the last < 8 */
    const int64_t left = n - nb;
    const int64_t plain = (left / 16) * 16 + (left % 16 >= 8 ? 8 : 0);
    int64_t i = nb;
    for (; i < nb + plain; i++) s += w[i] * x[i];
    for (; i < n; i++) s = fmaf(w[i], x[i], s);
    return s;
}

typedef float (*dot_fn)(const float *w, const float *x, int64_t n);

typedef struct {
    dot_fn lanes, blocks; /* the fastest exact versions this CPU has */
    const ig_matrix *w;
    const float *x;
    int n_tokens;
    const uint8_t *batched;
    bool lanes_ok;
    float *y;
} f32_job;

static void f32_worker(void *ctx, int ith, int nth) {
    const f32_job *j = ctx;
    long lo, hi;
    ig_pool_range((long)j->w->n_rows, ith, nth, &lo, &hi);
    const int64_t n_cols = j->w->n_cols, n_rows = j->w->n_rows;
    for (long r = lo; r < hi; r++) {
        const float *row =
            (const float *)((const uint8_t *)j->w->data + (size_t)r * j->w->row_bytes);
        for (int t = 0; t < j->n_tokens; t++) {
            const float *xt = j->x + (size_t)t * n_cols;
            const bool lanes = j->lanes_ok && j->batched && j->batched[t];
            j->y[(size_t)t * n_rows + r] =
                lanes ? j->lanes(row, xt, n_cols) : j->blocks(row, xt, n_cols);
        }
    }
}

void ig_matmul_f32_ordered(ig_pool *pool, const ig_matrix *w, const float *x, int n_tokens,
                           const uint8_t *batched, float *y) {
    IG_ASSERT(w->type == IG_TYPE_F32);
    f32_job j = {ig_dot_f32_lanes,
                 ig_dot_f32_blocks,
                 w,
                 x,
                 n_tokens,
                 batched,
                 w->n_cols % 16 == 0 && w->n_rows % 4 == 0,
                 y};
#ifdef IG_HAVE_X86_KERNELS
    if (ig_cpu_level_get() >= IG_CPU_AVX2) {
        j.lanes = ig__dot_f32_lanes_avx2;
        j.blocks = ig__dot_f32_blocks_avx2;
    }
#endif
    ig_pool_run(pool, f32_worker, &j);
}
