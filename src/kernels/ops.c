/* ops.c: reference transformer ops (see ops.h). */
#include "kernels/ops.h"

#include <math.h>
#include <string.h>

#include "base/error.h"
#include "tensor/types.h"

typedef struct {
    const ig_matrix *w;
    const float *x;
    int n_tokens;
    float *y;
    ig_vec_dot_fn dot;
} matmul_job;

static void matmul_worker(void *ctx, int ith, int nth) {
    const matmul_job *j = ctx;
    long lo, hi;
    ig_pool_range((long)j->w->n_rows, ith, nth, &lo, &hi);
    const uint8_t *base = j->w->data;
    const int64_t n_cols = j->w->n_cols, n_rows = j->w->n_rows;
    for (long r = lo; r < hi; r++) {
        const void *row = base + (size_t)r * j->w->row_bytes;
        for (int t = 0; t < j->n_tokens; t++)
            j->y[(size_t)t * n_rows + r] = j->dot(row, j->x + (size_t)t * n_cols, n_cols);
    }
}

void ig_matmul(ig_pool *pool, const ig_matrix *w, const float *x, int n_tokens, float *y) {
    const ig_type_traits *tr = ig_type_get(w->type);
    IG_ASSERT(tr && tr->vec_dot);
    matmul_job j = {w, x, n_tokens, y, tr->vec_dot};
    ig_pool_run(pool, matmul_worker, &j);
}

void ig_matrix_get_row(const ig_matrix *w, int64_t row, float *dst) {
    const ig_type_traits *tr = ig_type_get(w->type);
    IG_ASSERT(tr && tr->to_float && row >= 0 && row < w->n_rows);
    tr->to_float((const uint8_t *)w->data + (size_t)row * w->row_bytes, dst, w->n_cols);
}

void ig_rmsnorm(float *out, const float *x, const float *weight, int n, float eps) {
    double ss = 0.0; /* double: the one reduction here whose rounding would show in the logits */
    for (int i = 0; i < n; i++) ss += (double)x[i] * x[i];
    const float scale = (float)(1.0 / sqrt(ss / n + eps));
    for (int i = 0; i < n; i++) out[i] = x[i] * scale * weight[i];
}

void ig_rope(float *x, int head_dim, int n_rot, int pos, float freq_base, float freq_scale,
             const float *freq_factors, int is_neox) {
    IG_ASSERT(n_rot <= head_dim && n_rot % 2 == 0);
    const float theta_scale = powf(freq_base, -2.0f / (float)n_rot);
    float theta = (float)pos;
    for (int i = 0; i < n_rot / 2; i++) {
        float t = theta * freq_scale;
        if (freq_factors) t /= freq_factors[i];
        const float c = cosf(t), s = sinf(t);
        const int a = is_neox ? i : 2 * i;
        const int b = is_neox ? i + n_rot / 2 : 2 * i + 1;
        const float x0 = x[a], x1 = x[b];
        x[a] = x0 * c - x1 * s;
        x[b] = x0 * s + x1 * c;
        theta *= theta_scale;
    }
}

void ig_softmax(float *x, int n) {
    float max = -INFINITY;
    for (int i = 0; i < n; i++)
        if (x[i] > max) max = x[i];
    double sum = 0.0;
    for (int i = 0; i < n; i++) {
        x[i] = expf(x[i] - max);
        sum += x[i];
    }
    const float inv = (float)(1.0 / sum);
    for (int i = 0; i < n; i++) x[i] *= inv;
}

void ig_silu_mul(float *a, const float *b, int n) {
    for (int i = 0; i < n; i++) a[i] = a[i] / (1.0f + expf(-a[i])) * b[i];
}
