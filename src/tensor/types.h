/*
 * types.h: tensor element types and their traits.
 *
 * Type ids are GGML's (they are what GGUF files store). Every id GGML has ever
 * defined that can appear in a file has a row here with its block size and
 * bytes per block, so the GGUF reader can validate any tensor's extent. A row
 * whose `vec_dot` is NULL is a type Ignis cannot use as weights yet: the
 * model loader reports it as unsupported, by name. (q8_1 has a `to_float`
 * and a `quantize_act` but no dot product: it exists as an activation format.)
 *
 * The function pointers are the portable reference kernels. Faster per-ISA
 * kernels are chosen at start-up (src/kernels/dot.h) and must agree with these.
 *
 * Two dot products per weight type:
 *   vec_dot    row . float vector, exact (in double): the oracle for tests;
 *   vec_dot_q  row . activations already converted to the type's
 *              vec_dot_type by that type's quantize_act: what the matmul
 *              runs, with llama.cpp's arithmetic (8-bit activations for the
 *              quantized types, f16/bf16 activations for f16/bf16 weights).
 * So a matmul over weights of type T converts each activation row once with
 * ig_type_get(T->vec_dot_type)->quantize_act, then calls T->vec_dot_q per
 * output.
 */
#ifndef IG_TENSOR_TYPES_H
#define IG_TENSOR_TYPES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum ig_type {
    IG_TYPE_F32 = 0,
    IG_TYPE_F16 = 1,
    IG_TYPE_Q4_0 = 2,
    IG_TYPE_Q4_1 = 3,
    IG_TYPE_Q5_0 = 6,
    IG_TYPE_Q5_1 = 7,
    IG_TYPE_Q8_0 = 8,
    IG_TYPE_Q8_1 = 9,
    IG_TYPE_Q2_K = 10,
    IG_TYPE_Q3_K = 11,
    IG_TYPE_Q4_K = 12,
    IG_TYPE_Q5_K = 13,
    IG_TYPE_Q6_K = 14,
    IG_TYPE_Q8_K = 15,
    IG_TYPE_IQ2_XXS = 16,
    IG_TYPE_IQ2_XS = 17,
    IG_TYPE_IQ3_XXS = 18,
    IG_TYPE_IQ1_S = 19,
    IG_TYPE_IQ4_NL = 20,
    IG_TYPE_IQ3_S = 21,
    IG_TYPE_IQ2_S = 22,
    IG_TYPE_IQ4_XS = 23,
    IG_TYPE_I8 = 24,
    IG_TYPE_I16 = 25,
    IG_TYPE_I32 = 26,
    IG_TYPE_I64 = 27,
    IG_TYPE_F64 = 28,
    IG_TYPE_IQ1_M = 29,
    IG_TYPE_BF16 = 30,
    IG_TYPE_TQ1_0 = 34,
    IG_TYPE_TQ2_0 = 35,
    IG_TYPE_MXFP4 = 39,
    IG_TYPE_COUNT = 40 /* one past the largest id */
} ig_type;

/* Dequantize n values (n a multiple of the block size) from src into dst. */
typedef void (*ig_to_float_fn)(const void *src, float *dst, int64_t n);
/* Quantize n floats (n a multiple of the block size) into dst. */
typedef void (*ig_from_float_fn)(const float *src, void *dst, int64_t n);
/* Dot product of one row of n values of this type with n floats. */
typedef float (*ig_vec_dot_fn)(const void *row, const float *x, int64_t n);
/* Convert n activation floats into this (activation) type: see tensor/act_quant.h. */
typedef void (*ig_quantize_act_fn)(const float *x, void *dst, int64_t n);
/* Dot product of one row of n values of this type with n values of its vec_dot_type. */
typedef float (*ig_vec_dot_q_fn)(const void *row, const void *xq, int64_t n);

typedef struct ig_type_traits {
    const char *name;              /* "q4_K"-style lower-case name as GGML prints it */
    int64_t blck_size;             /* values per block */
    size_t type_size;              /* bytes per block */
    bool is_quantized;             /* block-quantized (not a plain float/int type) */
    ig_to_float_fn to_float;       /* NULL: not supported for compute */
    ig_from_float_fn from_float;   /* NULL: no reference quantizer */
    ig_vec_dot_fn vec_dot;         /* NULL: not supported for compute */
    uint32_t vec_dot_type;         /* ig_type vec_dot_q takes its activations in (if vec_dot_q) */
    ig_vec_dot_q_fn vec_dot_q;     /* NULL exactly when vec_dot is NULL */
    ig_quantize_act_fn quantize_act; /* set on the types that serve as a vec_dot_type */
} ig_type_traits;

/* The traits of a type id, or NULL if the id is not one GGML defines. */
const ig_type_traits *ig_type_get(uint32_t type);

/* Name of a type id ("unknown" for ids without a row). */
const char *ig_type_name(uint32_t type);

/*
 * Bytes taken by a row of n elements of type `type`. Returns false (and leaves
 * *out alone) when the id is unknown or n is not a multiple of the block size.
 */
bool ig_type_row_size(uint32_t type, int64_t n, size_t *out);

#endif
