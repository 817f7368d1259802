/*
 * test_matmul_stress.c: ig_matmul / ig_matmul_n split over many threads
 * (more than the machine's cores, so threads run dry and take chunks from
 * the others' regions, kernels/ops.c) give, bit for bit, what one thread
 * gives: q4_0 weights in the file layout and repacked (r16), 1 and 7
 * tokens, one matrix and three sharing the input, many repetitions. Meant
 * for `make check-tsan` too (the chunk regions are shared atomics); as in
 * test_engine_stress.c, a TSan build has its own main() because Criterion's
 * runner cannot start under ThreadSanitizer.
 */
#include <criterion/criterion.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/threadpool.h"
#include "kernels/ops.h"
#include "tensor/pack.h"
#include "tensor/types.h"
#include "testutil.h"

enum { COLS = 256, MAX_TOK = 7, N_MAT = 3 };
static const int ROWS[N_MAT] = {208, 48, 100}; /* q, k, v: whole and partial r16 groups */

typedef struct {
    ig_matrix w[N_MAT];
    float *x;
} problem;

static bool make_problem(problem *p, bool packed, uint64_t *s) {
    const ig_type_traits *tr = ig_type_get(IG_TYPE_Q4_0);
    size_t rb;
    if (!tr || !ig_type_row_size(IG_TYPE_Q4_0, COLS, &rb)) return false;
    float *row = malloc(COLS * sizeof *row);
    p->x = malloc((size_t)MAX_TOK * COLS * sizeof *p->x);
    if (!row || !p->x) return false;
    for (int i = 0; i < MAX_TOK * COLS; i++) p->x[i] = (float)ig_test_rng_gauss(s);
    for (int m = 0; m < N_MAT; m++) {
        uint8_t *data = malloc((size_t)ROWS[m] * rb);
        if (!data) return false;
        for (int r = 0; r < ROWS[m]; r++) {
            for (int c = 0; c < COLS; c++) row[c] = (float)ig_test_rng_gauss(s);
            tr->from_float(row, data + (size_t)r * rb, COLS);
        }
        p->w[m] = (ig_matrix){
            .type = IG_TYPE_Q4_0, .n_cols = COLS, .n_rows = ROWS[m], .row_bytes = rb, .data = data};
        if (packed) {
            uint8_t *dst = malloc((size_t)ROWS[m] * rb);
            if (!dst) return false;
            ig_pack_r16(IG_TYPE_Q4_0, data, rb, ROWS[m], dst);
            free(data);
            p->w[m].data = dst;
            p->w[m].packed = true;
        }
    }
    free(row);
    return true;
}

static void free_problem(problem *p) {
    for (int m = 0; m < N_MAT; m++) free((void *)p->w[m].data);
    free(p->x);
}

/* y[m] for n_w matrices (one job when n_w > 1) on `pool`. */
static void run(ig_pool *pool, const problem *p, int n_w, int n_tok, float *const *y,
                void *scratch) {
    const ig_matrix *ws[N_MAT] = {&p->w[0], &p->w[1], &p->w[2]};
    if (n_w == 1)
        ig_matmul(pool, ws[0], p->x, n_tok, y[0], scratch);
    else
        ig_matmul_n(pool, n_w, ws, p->x, n_tok, y, scratch);
}

/* Count of outputs that differ from the one-thread results, over every case. */
static long stress(int reps) {
    long bad = 0;
    uint64_t s = 99;
    static const int threads[] = {2, 3, 5};
    for (int packed = 0; packed <= 1; packed++) {
        problem p;
        if (!make_problem(&p, packed, &s)) return -1;
        size_t sb = 0;
        for (int m = 0; m < N_MAT; m++) {
            const size_t b = ig_matmul_scratch_bytes(&p.w[m], MAX_TOK);
            if (b > sb) sb = b;
        }
        void *scratch = malloc(sb);
        float *want[N_MAT], *got[N_MAT];
        for (int m = 0; m < N_MAT; m++) {
            want[m] = malloc((size_t)MAX_TOK * ROWS[m] * sizeof(float));
            got[m] = malloc((size_t)MAX_TOK * ROWS[m] * sizeof(float));
        }
        ig_pool *one = NULL;
        ig_error err;
        if (ig_pool_new(1, &one, &err) != IG_OK) return -1;
        for (size_t ti = 0; ti < sizeof threads / sizeof threads[0]; ti++) {
            ig_pool *pool = NULL;
            if (ig_pool_new(threads[ti], &pool, &err) != IG_OK) return -1;
            for (int n_w = 1; n_w <= N_MAT; n_w += N_MAT - 1)
                for (int n_tok = 1; n_tok <= MAX_TOK; n_tok += MAX_TOK - 1) {
                    run(one, &p, n_w, n_tok, want, scratch);
                    for (int r = 0; r < reps; r++) {
                        for (int m = 0; m < n_w; m++)
                            memset(got[m], 0xff, (size_t)n_tok * ROWS[m] * sizeof(float));
                        run(pool, &p, n_w, n_tok, got, scratch);
                        for (int m = 0; m < n_w; m++)
                            for (int i = 0; i < n_tok * ROWS[m]; i++)
                                bad += memcmp(&got[m][i], &want[m][i], sizeof(float)) != 0;
                    }
                }
            ig_pool_free(pool);
        }
        ig_pool_free(one);
        for (int m = 0; m < N_MAT; m++) {
            free(want[m]);
            free(got[m]);
        }
        free(scratch);
        free_problem(&p);
    }
    return bad;
}

#ifndef IG_TSAN
Test(matmul_stress, many_threads_give_one_threads_bits) {
    const long bad = stress(40);
    cr_assert_eq(bad, 0, "%ld outputs differ from one thread's", bad);
}
#else
int main(void) {
    const long bad = stress(10);
    printf("matmul stress (TSan build): %ld outputs differ from one thread's: %s\n", bad,
           bad == 0 ? "ok" : "FAILED");
    return bad == 0 ? 0 : 1;
}
#endif
