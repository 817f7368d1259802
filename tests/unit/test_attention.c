/*
 * test_attention.c: the attention kernels over an F16 KV cache
 * (src/kernels/attention.c and x86/attention_*.c).
 *
 * - every CPU level this machine supports gives the scalar reference's
 *   output bit for bit (attention.h: same rounding points; the double sum's
 *   order is the one freedom, and on these inputs it never shows), for head
 *   sizes that are and are not multiples of the vector width, 1..11 query
 *   heads per KV head, 1..300 positions spread over shuffled cache blocks,
 *   and scores that rise (every step rescales the accumulator), fall, or are
 *   large (softmax close to one-hot);
 * - the reference itself on hand-checkable cases: one position gives v
 *   exactly (rounded to F16), two equal scores give the mean of two rows.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/cpu.h"
#include "kernels/attention.h"
#include "tensor/fp16.h"
#include "testutil.h"

/* The highest level to test: the machine's, or IGNIS_CPU's cap (each test runs in its own process).
 */
static int max_level(void) {
    return (int)ig_cpu_level_get();
}

/* A cache of n_blocks blocks x n_layer layers x bs slots x kv_dim, filled at random. */
typedef struct {
    uint16_t *k, *v;
    int32_t *table;
    int n_blocks, n_layer, bs, kv_dim;
} cache;

enum { MODE_RANDOM, MODE_RISING, MODE_SHARP };

static void cache_make(cache *c, int n_pos, int n_layer, int bs, int kv_dim, int hd, int mode,
                       uint64_t *s) {
    c->n_layer = n_layer;
    c->bs = bs;
    c->kv_dim = kv_dim;
    const int used = (n_pos + bs - 1) / bs;
    c->n_blocks = used + 3;
    const size_t n = (size_t)c->n_blocks * n_layer * bs * kv_dim;
    c->k = malloc(n * 2);
    c->v = malloc(n * 2);
    c->table = malloc((size_t)used * sizeof *c->table);
    cr_assert(c->k && c->v && c->table);
    for (size_t i = 0; i < n; i++) {
        c->k[i] = ig_fp32_to_fp16((float)ig_test_rng_gauss(s));
        c->v[i] = ig_fp32_to_fp16((float)ig_test_rng_gauss(s));
    }
    /* a shuffled choice of blocks: positions do not sit in block order */
    int32_t *perm = malloc((size_t)c->n_blocks * sizeof *perm);
    for (int i = 0; i < c->n_blocks; i++) perm[i] = i;
    for (int i = c->n_blocks - 1; i > 0; i--) {
        const int j = (int)(ig_test_rng_next(s) % (uint64_t)(i + 1));
        const int32_t t = perm[i];
        perm[i] = perm[j];
        perm[j] = t;
    }
    memcpy(c->table, perm, (size_t)used * sizeof *c->table);
    free(perm);
    if (mode == MODE_RISING || mode == MODE_SHARP) {
        /* scale each position's K rows: rising scores (a new maximum at most steps) or large ones
         */
        for (int j = 0; j < n_pos; j++) {
            const float f = mode == MODE_RISING ? 0.05f * (float)(j + 1) : 8.0f;
            for (int l = 0; l < n_layer; l++) {
                uint16_t *row =
                    c->k + (((size_t)c->table[j / bs] * n_layer + l) * bs + j % bs) * kv_dim;
                for (int i = 0; i < kv_dim; i++) {
                    const float base = mode == MODE_RISING ? 1.0f : ig_fp16_to_fp32(row[i]);
                    row[i] = ig_fp32_to_fp16(base * f);
                }
            }
        }
    }
    (void)hd;
}

static void cache_free(cache *c) {
    free(c->k);
    free(c->v);
    free(c->table);
}

static ig_attn_kv view_of(const cache *c, int layer, int kv_head, int hd) {
    return (ig_attn_kv){
        .k = c->k,
        .v = c->v,
        .block_table = c->table,
        .block_size = c->bs,
        .block_stride = (size_t)c->n_layer * c->bs * c->kv_dim,
        .offset = (size_t)layer * c->bs * c->kv_dim + (size_t)kv_head * hd,
        .slot_stride = (size_t)c->kv_dim,
    };
}

Test(attention, every_level_equals_the_reference_bit_for_bit) {
    static const int head_dims[] = {64, 128, 48, 100, 7, 16};
    static const int n_qs[] = {1, 3, 8, 11};
    static const int n_poss[] = {1, 2, 17, 300};
    const int hw = max_level();
    uint64_t s = 2024;
    int n_cases = 0;
    for (size_t a = 0; a < sizeof head_dims / sizeof head_dims[0]; a++) {
        const int hd = head_dims[a], n_kv_head = 2, kv_dim = n_kv_head * hd;
        for (size_t c = 0; c < sizeof n_poss / sizeof n_poss[0]; c++) {
            const int n_pos = n_poss[c];
            for (int mode = MODE_RANDOM; mode <= MODE_SHARP; mode++) {
                cache kc;
                cache_make(&kc, n_pos, 3, 16, kv_dim, hd, mode, &s);
                for (size_t b = 0; b < sizeof n_qs / sizeof n_qs[0]; b++) {
                    const int n_q = n_qs[b];
                    float *q = malloc((size_t)n_q * hd * sizeof *q);
                    float *ref = malloc((size_t)n_q * hd * sizeof *ref);
                    float *got = malloc((size_t)(n_q * hd + 1) * sizeof *got);
                    for (int i = 0; i < n_q * hd; i++)
                        q[i] = (float)(ig_test_rng_gauss(&s) * (mode == MODE_RISING ? 0.2 : 1));
                    if (mode == MODE_RISING)
                        for (int i = 0; i < n_q * hd; i++)
                            q[i] = fabsf(q[i]); /* q . k grows with the position */
                    const ig_attn_kv kv = view_of(&kc, 1, 1, hd);
                    ig_attend_f16_level(IG_CPU_SCALAR, &kv, hd, n_pos, q, n_q, ref);
                    for (int l = IG_CPU_SCALAR + 1; l <= hw; l++) {
                        got[n_q * hd] = 4321.0f;
                        ig_attend_f16_level((ig_cpu_level)l, &kv, hd, n_pos, q, n_q, got);
                        cr_expect_eq(got[n_q * hd], 4321.0f,
                                     "level %d hd=%d: wrote past the output", l, hd);
                        for (int i = 0; i < n_q * hd; i++)
                            if (memcmp(&got[i], &ref[i], sizeof got[i]) != 0) {
                                cr_expect(0,
                                          "level %d hd=%d n_q=%d n_pos=%d mode=%d: out[%d] = %.9g, "
                                          "reference %.9g",
                                          l, hd, n_q, n_pos, mode, i, got[i], ref[i]);
                                break;
                            }
                        n_cases++;
                    }
                    free(q);
                    free(ref);
                    free(got);
                }
                cache_free(&kc);
            }
        }
    }
    cr_log_info("%d (level, shape) cases compared", n_cases);
}

Test(attention, reference_one_position_gives_v_and_two_equal_scores_the_mean) {
    uint64_t s = 1;
    const int hd = 8;
    cache kc;
    cache_make(&kc, 2, 1, 4, hd, hd, MODE_RANDOM, &s);
    /* make position 1's K equal position 0's: equal scores */
    uint16_t *k0 = kc.k + (size_t)kc.table[0] * 4 * hd, *k1 = k0 + hd;
    memcpy(k1, k0, hd * 2);
    const ig_attn_kv kv = view_of(&kc, 0, 0, hd);
    float q[8], out[8];
    for (int i = 0; i < hd; i++) q[i] = (float)ig_test_rng_gauss(&s);
    const uint16_t *v0 = kc.v + (size_t)kc.table[0] * 4 * hd, *v1 = v0 + hd;
    for (int l = IG_CPU_SCALAR; l <= max_level(); l++) {
        ig_attend_f16_level((ig_cpu_level)l, &kv, hd, 1, q, 1, out);
        for (int i = 0; i < hd; i++)
            cr_expect_eq(out[i], ig_fp16_to_fp32(v0[i]), "level %d: one position", l);
        ig_attend_f16_level((ig_cpu_level)l, &kv, hd, 2, q, 1, out);
        for (int i = 0; i < hd; i++) {
            /* acc = f16(v0 + v1) (weights 1 each), S = 2 */
            const float want =
                ig_fp16_to_fp32(ig_fp32_to_fp16(ig_fp16_to_fp32(v0[i]) + ig_fp16_to_fp32(v1[i]))) *
                0.5f;
            cr_expect_eq(out[i], want, "level %d: two equal scores, [%d] %.9g vs %.9g", l, i,
                         out[i], want);
        }
    }
    cache_free(&kc);
}
