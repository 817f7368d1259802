/*
 * f32order_avx2.c: AVX2 + FMA versions of the two llama.cpp summation orders
 * of kernels/f32order.h, bit for bit the same as the portable ones there:
 * every lane is the same chain of fused multiply-adds (a 16-lane
 * accumulator is two 8-lane registers), the horizontal sums and leftovers
 * are the same scalar operations in the same order. The portable versions
 * call fmaf per element, which without -mfma is a library call (about 1 ns
 * each: all of stories260K's decode time); here it is one instruction per 8
 * products. Compiled with the AVX2 flags (CMakeLists.txt); reached through
 * ig_matmul_f32_ordered when the CPU level is AVX2 or better.
 */
#include <immintrin.h>
#include <stdint.h>

#include "kernels/f32order.h"

/* The same pairwise tree as f32order.c's sum_lanes16, in registers:
 * h8[i] = a[i] + a[i + 8], h4[i] = h8[i] + h8[i + 4], then
 * (h4[0] + h4[2]) + (h4[1] + h4[3]); every addition is the scalar one. */
static float sum_lanes16(__m256 lo, __m256 hi) {
    const __m256 h8 = _mm256_add_ps(lo, hi);
    const __m128 h4 = _mm_add_ps(_mm256_castps256_ps128(h8), _mm256_extractf128_ps(h8, 1));
    const __m128 h2 = _mm_add_ps(h4, _mm_movehl_ps(h4, h4)); /* [h4[0]+h4[2], h4[1]+h4[3]] */
    return _mm_cvtss_f32(_mm_add_ss(h2, _mm_movehdup_ps(h2)));
}

float ig__dot_f32_lanes_avx2(const float *w, const float *x, int64_t n) {
    __m256 lo = _mm256_setzero_ps(), hi = _mm256_setzero_ps();
    for (int64_t i = 0; i < n; i += 16) {
        lo = _mm256_fmadd_ps(_mm256_loadu_ps(w + i), _mm256_loadu_ps(x + i), lo);
        hi = _mm256_fmadd_ps(_mm256_loadu_ps(w + i + 8), _mm256_loadu_ps(x + i + 8), hi);
    }
    return sum_lanes16(lo, hi);
}

float ig__dot_f32_blocks_avx2(const float *w, const float *x, int64_t n) {
    __m256 acc[4][2];
    for (int j = 0; j < 4; j++) acc[j][0] = acc[j][1] = _mm256_setzero_ps();
    const int64_t nb = n & ~(int64_t)63;
    for (int64_t i = 0; i < nb; i += 64)
        for (int j = 0; j < 4; j++)
            for (int h = 0; h < 2; h++) {
                const int64_t k = i + 16 * j + 8 * h;
                acc[j][h] =
                    _mm256_fmadd_ps(_mm256_loadu_ps(w + k), _mm256_loadu_ps(x + k), acc[j][h]);
            }
    for (int h = 0; h < 2; h++) {
        acc[0][h] = _mm256_add_ps(acc[0][h], acc[2][h]);
        acc[1][h] = _mm256_add_ps(acc[1][h], acc[3][h]);
        acc[0][h] = _mm256_add_ps(acc[0][h], acc[1][h]);
    }
    float s = sum_lanes16(acc[0][0], acc[0][1]);
    /* leftovers exactly as the portable version: rounded products added in
     * order for the runs of 16 and 8, then fused (separate statements, so no
     * compiler contracts the product into the add) */
    const int64_t left = n - nb;
    const int64_t plain = (left / 16) * 16 + (left % 16 >= 8 ? 8 : 0);
    int64_t i = nb;
    for (; i < nb + plain; i++) {
        const float p = w[i] * x[i];
        s += p;
    }
    for (; i < n; i++)
        s = _mm_cvtss_f32(_mm_fmadd_ss(_mm_set_ss(w[i]), _mm_set_ss(x[i]), _mm_set_ss(s)));
    return s;
}
