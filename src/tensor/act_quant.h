/*
 * act_quant.h: converting float activations to the format a weight type's
 * integer dot product takes (its vec_dot_type, see types.h), the way
 * llama.cpp's CPU backend does it on x86, so that our logits follow the same
 * rounding as the reference outputs we are tested against.
 *
 * These are NOT the weight quantizers of quant_ref.h: those search for the
 * best scale; these take the one-pass scale llama.cpp uses for activations.
 *
 *   f32, f16, bf16: a copy, or a round to nearest (ties to even).
 *   q8_0:  per 32 values, amax = max |x|, d = amax / 127 (stored as f16),
 *          q = round_half_even(x * (127 / amax)), computed in float.
 *   q8_1:  as q8_0, plus s = f16(d * sum(q)) with d the float (unrounded) scale.
 *   q8_K:  per 256 values, m = the value of largest magnitude (first one on
 *          ties), with its sign; iscale = -127 / m, q = min(127,
 *          round_half_even(iscale * x)), d = 1 / iscale (a float, negative when
 *          m > 0), bsums[g] = sum of q[16g .. 16g+15]. An all-zero block
 *          gives d = 0 and all-zero q and bsums.
 *
 * Rounding: llama.cpp's AVX2/AVX-512 q8_0/q8_1 quantizers round with
 * round-to-nearest-even (_mm256_round_ps), and its q8_K quantizer (scalar on
 * x86) with the nearest-even float trick; roundf (halves away from zero)
 * would differ on exact halves, which are common in real activations.
 *
 * n is a multiple of the format's block size (callers check). Non-finite
 * input gives well-defined, in-range blocks (values unspecified). Never
 * fails; no allocation; thread-safe.
 */
#ifndef IG_TENSOR_ACT_QUANT_H
#define IG_TENSOR_ACT_QUANT_H

#include <stdint.h>

void ig_quantize_act_f32(const float *x, void *dst, int64_t n);
void ig_quantize_act_f16(const float *x, void *dst, int64_t n);
void ig_quantize_act_bf16(const float *x, void *dst, int64_t n);
void ig_quantize_act_q8_0(const float *x, void *dst, int64_t n);
void ig_quantize_act_q8_1(const float *x, void *dst, int64_t n);
void ig_quantize_act_q8_K(const float *x, void *dst, int64_t n);

/* Decode q8_1 blocks: v[i] = d * q[i] (s is not used). */
void ig_to_float_q8_1(const void *src, float *dst, int64_t n);

#endif
