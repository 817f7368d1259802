/*
 * bench.h: the measurements behind `ignis bench`: prompt processing and
 * generation speed of a model, the bytes of weights a generated token reads,
 * and the machine's memory read bandwidth, which bounds generation speed
 * (every weight is read once per token, so tokens/s <= bandwidth / bytes).
 *
 * The timing runs do what llama-bench does: prompt processing ("pp") is one
 * forward pass over n_prompt tokens (BOS, then random ids) from an empty
 * cache, logits for the last token only; text generation ("tg") is n_gen
 * single-token forward passes starting from an empty cache (position 0),
 * each with logits, fed random ids. Sampling is not timed. The caller owns
 * the model and the pool; nothing here keeps state between calls.
 */
#ifndef IG_ENGINE_BENCH_H
#define IG_ENGINE_BENCH_H

#include <stddef.h>
#include <stdint.h>

#include "base/threadpool.h"
#include "model/model.h"

/*
 * Read bandwidth in GB/s (1e9 bytes/s): a buffer of `bytes` (rounded down to
 * a multiple of 4 KiB; at least 1 MiB), filled first (each thread its own
 * slice), is read n_passes times; each pass every thread of `pool` sums its
 * contiguous slice with 16-byte vector loads into eight independent
 * accumulators (two cache lines per step). The result is the best pass: bytes / wall time of the pass.
 * It is a pure streaming read, like STREAM's "sum" kernel, so it is the
 * ceiling for a kernel that reads each weight once. Errors: IG_EINVAL
 * (bytes < 1 MiB or n_passes < 1), IG_ENOMEM.
 */
ig_status ig_bench_membw(ig_pool *pool, size_t bytes, int n_passes, double *gb_per_s,
                         ig_error *err);

/*
 * Bytes of weights one single-token forward pass reads: every tensor of the
 * file except token_embd.weight, plus one row of it (the embedding lookup),
 * or all of it when the output matrix is tied to it. KV cache reads are not
 * counted (a few MB at most for a tg128 run).
 */
size_t ig_bench_weight_bytes_per_token(const ig_model *m);

/* Bytes and values of every tensor in the file (llama-bench's model_size and model_n_params). */
void ig_bench_model_size(const ig_model *m, uint64_t *bytes, uint64_t *n_params);

/*
 * Time one test run from an empty cache: n_prompt > 0 runs pp (n_gen must be
 * 0), else n_gen > 0 runs tg. Token ids come from `seed`. *ns receives the
 * wall time of the forward passes (cache allocation is not timed). Errors:
 * IG_EINVAL (both or neither of n_prompt, n_gen), IG_ENOMEM, model errors.
 */
ig_status ig_bench_run(ig_model *m, ig_pool *pool, int32_t n_prompt, int32_t n_gen, uint64_t seed,
                       uint64_t *ns, ig_error *err);

#endif
