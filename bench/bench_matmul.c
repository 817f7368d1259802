/*
 * bench_matmul.c: micro-benchmark of ig_matmul for every weight type, at
 * batch 1 (decode: bound by reading the weights) and batch 32 (prefill: bound
 * by arithmetic), on a TinyLlama-sized matrix (ffn_up: 5632 rows of 2048
 * values by default). Prints milliseconds per call, the weight bytes read per
 * second (GB/s, 1e9 bytes) and GFLOP/s (2 x rows x cols x batch per call).
 *
 * Not a test: nothing is asserted. The matrix is 64 quantized random rows
 * repeated (speed does not depend on the values; quantizing 11 M values with
 * the reference quantizers would take longer than the measurement).
 *
 * Caches: one such matrix (3-46 MB) may fit in the last-level cache, which
 * would flatter batch 1. So by default the calls rotate over enough copies to
 * span 256 MiB, and every call reads its weights from memory, as in a real
 * forward pass; --in-cache times one copy over and over instead.
 *
 * usage: bench_matmul [-t THREADS] [-b BATCH,..] [--rows R] [--cols C]
 *                     [--types q4_0,q8_0,..] [--min-ms MS] [--in-cache] [--packed]
 *
 * --packed: weights in the r16 layout (tensor/pack.h) where the type has one,
 * as the model loader packs them.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/threadpool.h"
#include "kernels/ops.h"
#include "tensor/pack.h"
#include "tensor/types.h"

#define TEMPLATE_ROWS 64
#define SPAN_BYTES    (256.0 * 1048576.0) /* weights the calls rotate over */

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static uint64_t rng_state = 0x853c49e6748fea9bULL;
static float frand(void) {
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (float)((rng_state >> 40) * 0x1p-24) * 2.0f - 1.0f;
}

static const uint32_t ALL_TYPES[] = {
    IG_TYPE_F32,  IG_TYPE_F16,  IG_TYPE_BF16, IG_TYPE_Q8_0, IG_TYPE_Q4_0,
    IG_TYPE_Q4_1, IG_TYPE_Q5_0, IG_TYPE_Q5_1, IG_TYPE_Q2_K, IG_TYPE_Q3_K,
    IG_TYPE_Q4_K, IG_TYPE_Q5_K, IG_TYPE_Q6_K,
};
#define N_ALL (sizeof ALL_TYPES / sizeof ALL_TYPES[0])

static int usage(const char *msg) {
    fprintf(
        stderr,
        "bench_matmul: %s\nusage: bench_matmul [-t THREADS] [-b BATCH,..] [--rows R] [--cols C] "
        "[--types q4_0,q8_0,..] [--min-ms MS] [--in-cache] [--packed]\n",
        msg);
    return 2;
}

int main(int argc, char **argv) {
    int n_threads = 0, batches[8] = {1, 32}, n_batches = 2;
    long rows = 5632, cols = 2048;
    double min_ms = 300;
    bool in_cache = false, packed = false;
    uint32_t types[N_ALL];
    size_t n_types = N_ALL;
    memcpy(types, ALL_TYPES, sizeof ALL_TYPES);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage("time ig_matmul per weight type");
            return 0;
        }
        if (!strcmp(a, "--packed")) {
            packed = true;
            continue;
        }
        if (!strcmp(a, "--in-cache")) {
            in_cache = true;
            continue;
        }
        if (!v) return usage("an option needs a value");
        i++;
        if (!strcmp(a, "-t"))
            n_threads = atoi(v);
        else if (!strcmp(a, "--rows"))
            rows = atol(v);
        else if (!strcmp(a, "--cols"))
            cols = atol(v);
        else if (!strcmp(a, "--min-ms"))
            min_ms = atof(v);
        else if (!strcmp(a, "-b")) {
            n_batches = 0;
            for (char *p = strtok(argv[i], ","); p && n_batches < 8; p = strtok(NULL, ","))
                batches[n_batches++] = atoi(p);
        } else if (!strcmp(a, "--types")) {
            n_types = 0;
            for (char *p = strtok(argv[i], ","); p; p = strtok(NULL, ",")) {
                size_t k = 0;
                while (k < N_ALL && strcasecmp(ig_type_name(ALL_TYPES[k]), p)) k++;
                if (k == N_ALL) return usage("unknown type in --types");
                types[n_types++] = ALL_TYPES[k];
            }
        } else
            return usage("unknown option");
    }
    if (rows < 1 || cols < 256 || cols % 256 || n_threads < 0 || n_batches < 1)
        return usage("bad sizes (cols must be a multiple of 256)");
    for (int b = 0; b < n_batches; b++)
        if (batches[b] < 1) return usage("bad batch");

    ig_pool *pool = NULL;
    ig_error err = {0};
    if (ig_pool_new(n_threads, &pool, &err) != IG_OK) {
        fprintf(stderr, "bench_matmul: %s\n", err.message);
        return 1;
    }
    int max_batch = 1;
    for (int b = 0; b < n_batches; b++)
        if (batches[b] > max_batch) max_batch = batches[b];
    float *tmpl = malloc((size_t)TEMPLATE_ROWS * cols * sizeof *tmpl);
    float *x = malloc((size_t)max_batch * cols * sizeof *x);
    float *y = malloc((size_t)max_batch * rows * sizeof *y);
    if (!tmpl || !x || !y) {
        fprintf(stderr, "bench_matmul: out of memory\n");
        return 1;
    }
    for (long i = 0; i < TEMPLATE_ROWS * cols; i++) tmpl[i] = frand() * 0.05f;
    for (long i = 0; i < max_batch * cols; i++) x[i] = frand();

    printf("ig_matmul, %ld x %ld weights, %d threads, %s\n", rows, cols, ig_pool_size(pool),
           in_cache ? "one copy (in cache if it fits)" : "rotating over 256 MiB of copies");
    printf("| type | batch | ms/call | GB/s | GFLOP/s |\n|---|---:|---:|---:|---:|\n");
    for (size_t ti = 0; ti < n_types; ti++) {
        const ig_type_traits *tr = ig_type_get(types[ti]);
        size_t row_bytes;
        if (!ig_type_row_size(types[ti], cols, &row_bytes)) continue;
        const size_t mat_bytes = (size_t)rows * row_bytes;
        const int n_copies = in_cache ? 1 : (int)(SPAN_BYTES / (double)mat_bytes) + 1;
        uint8_t *w = malloc(mat_bytes * (size_t)n_copies);
        if (!w) {
            fprintf(stderr, "bench_matmul: out of memory\n");
            return 1;
        }
        for (long r = 0; r < TEMPLATE_ROWS && r < rows; r++)
            tr->from_float(tmpl + r * cols, w + (size_t)r * row_bytes, cols);
        for (long r = TEMPLATE_ROWS; r < rows; r++)
            memcpy(w + (size_t)r * row_bytes, w + (size_t)(r % TEMPLATE_ROWS) * row_bytes,
                   row_bytes);
        for (int k = 1; k < n_copies; k++) memcpy(w + (size_t)k * mat_bytes, w, mat_bytes);
        ig_matrix m = {
            .type = types[ti], .n_cols = cols, .n_rows = rows, .row_bytes = row_bytes, .data = w};
        if (packed && ig_pack_r16_supported(m.type)) {
            uint8_t *tmp = malloc(mat_bytes);
            if (!tmp) {
                fprintf(stderr, "bench_matmul: out of memory\n");
                return 1;
            }
            ig_pack_r16(m.type, w, row_bytes, rows, tmp);
            for (int k = 0; k < n_copies; k++) memcpy(w + (size_t)k * mat_bytes, tmp, mat_bytes);
            free(tmp);
            m.packed = true;
        }
        for (int b = 0; b < n_batches; b++) {
            size_t sb = ig_matmul_scratch_bytes(&m, batches[b]);
            void *scratch = sb ? malloc(sb) : NULL;
            if (sb && !scratch) {
                fprintf(stderr, "bench_matmul: out of memory\n");
                return 1;
            }
            int copy = 0;
            ig_matmul(pool, &m, x, batches[b], y, scratch); /* warm-up */
            double best = 1e300, t_all = 0;
            int reps = 0;
            while (t_all < min_ms || reps < 2) {
                copy = (copy + 1) % n_copies;
                m.data = w + (size_t)copy * mat_bytes;
                double t0 = now_ms();
                ig_matmul(pool, &m, x, batches[b], y, scratch);
                double dt = now_ms() - t0;
                t_all += dt;
                if (dt < best) best = dt;
                if (++reps >= 200) break;
            }
            double bytes = (double)rows * row_bytes;
            double flops = 2.0 * rows * cols * batches[b];
            printf("| %s | %d | %.3f | %.2f | %.2f |\n", tr->name, batches[b], best,
                   bytes / (best * 1e6), flops / (best * 1e6));
            fflush(stdout);
            free(scratch);
        }
        free(w);
    }
    free(y);
    free(x);
    free(tmpl);
    ig_pool_free(pool);
    return 0;
}
