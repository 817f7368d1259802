/* types.c: the type-traits table (see types.h). */
#include "tensor/types.h"

#include "tensor/act_quant.h"
#include "tensor/quant_ref.h"
#include "tensor/vec_dot_q.h"

#define REF(t)                                                                                     \
    .to_float = ig_to_float_##t, .from_float = ig_from_float_##t, .vec_dot = ig_vec_dot_##t
/* weights of type t take activations in type a (llama.cpp's vec_dot_type) */
#define DOT(t, a) .vec_dot_type = IG_TYPE_##a, .vec_dot_q = ig_vec_dot_q_##t
#define ACT(t)    .quantize_act = ig_quantize_act_##t

static const ig_type_traits TRAITS[IG_TYPE_COUNT] = {
    [IG_TYPE_F32] = {.name = "f32",
                     .blck_size = 1,
                     .type_size = 4,
                     .is_quantized = false,
                     REF(f32),
                     DOT(f32, F32),
                     ACT(f32)},
    [IG_TYPE_F16] = {.name = "f16",
                     .blck_size = 1,
                     .type_size = 2,
                     .is_quantized = false,
                     REF(f16),
                     DOT(f16, F16),
                     ACT(f16)},
    [IG_TYPE_BF16] = {.name = "bf16",
                      .blck_size = 1,
                      .type_size = 2,
                      .is_quantized = false,
                      REF(bf16),
                      DOT(bf16, BF16),
                      ACT(bf16)},
    [IG_TYPE_Q4_0] = {.name = "q4_0",
                      .blck_size = 32,
                      .type_size = 18,
                      .is_quantized = true,
                      REF(q4_0),
                      DOT(q4_0, Q8_0)},
    [IG_TYPE_Q4_1] = {.name = "q4_1",
                      .blck_size = 32,
                      .type_size = 20,
                      .is_quantized = true,
                      REF(q4_1),
                      DOT(q4_1, Q8_1)},
    [IG_TYPE_Q5_0] = {.name = "q5_0",
                      .blck_size = 32,
                      .type_size = 22,
                      .is_quantized = true,
                      REF(q5_0),
                      DOT(q5_0, Q8_0)},
    [IG_TYPE_Q5_1] = {.name = "q5_1",
                      .blck_size = 32,
                      .type_size = 24,
                      .is_quantized = true,
                      REF(q5_1),
                      DOT(q5_1, Q8_1)},
    [IG_TYPE_Q8_0] = {.name = "q8_0",
                      .blck_size = 32,
                      .type_size = 34,
                      .is_quantized = true,
                      REF(q8_0),
                      DOT(q8_0, Q8_0),
                      ACT(q8_0)},
    [IG_TYPE_Q8_1] = {.name = "q8_1",
                      .blck_size = 32,
                      .type_size = 36,
                      .is_quantized = true,
                      .to_float = ig_to_float_q8_1,
                      ACT(q8_1)},
    [IG_TYPE_Q2_K] = {.name = "q2_K",
                      .blck_size = 256,
                      .type_size = 84,
                      .is_quantized = true,
                      REF(q2_K),
                      DOT(q2_K, Q8_K)},
    [IG_TYPE_Q3_K] = {.name = "q3_K",
                      .blck_size = 256,
                      .type_size = 110,
                      .is_quantized = true,
                      REF(q3_K),
                      DOT(q3_K, Q8_K)},
    [IG_TYPE_Q4_K] = {.name = "q4_K",
                      .blck_size = 256,
                      .type_size = 144,
                      .is_quantized = true,
                      REF(q4_K),
                      DOT(q4_K, Q8_K)},
    [IG_TYPE_Q5_K] = {.name = "q5_K",
                      .blck_size = 256,
                      .type_size = 176,
                      .is_quantized = true,
                      REF(q5_K),
                      DOT(q5_K, Q8_K)},
    [IG_TYPE_Q6_K] = {.name = "q6_K",
                      .blck_size = 256,
                      .type_size = 210,
                      .is_quantized = true,
                      REF(q6_K),
                      DOT(q6_K, Q8_K)},
    [IG_TYPE_Q8_K] = {.name = "q8_K",
                      .blck_size = 256,
                      .type_size = 292,
                      .is_quantized = true,
                      REF(q8_K),
                      DOT(q8_K, Q8_K),
                      ACT(q8_K)},
    [IG_TYPE_IQ2_XXS] = {.name = "iq2_xxs",
                         .blck_size = 256,
                         .type_size = 66,
                         .is_quantized = true},
    [IG_TYPE_IQ2_XS] = {.name = "iq2_xs", .blck_size = 256, .type_size = 74, .is_quantized = true},
    [IG_TYPE_IQ3_XXS] = {.name = "iq3_xxs",
                         .blck_size = 256,
                         .type_size = 98,
                         .is_quantized = true},
    [IG_TYPE_IQ1_S] = {.name = "iq1_s", .blck_size = 256, .type_size = 50, .is_quantized = true},
    [IG_TYPE_IQ4_NL] = {.name = "iq4_nl", .blck_size = 32, .type_size = 18, .is_quantized = true},
    [IG_TYPE_IQ3_S] = {.name = "iq3_s", .blck_size = 256, .type_size = 110, .is_quantized = true},
    [IG_TYPE_IQ2_S] = {.name = "iq2_s", .blck_size = 256, .type_size = 82, .is_quantized = true},
    [IG_TYPE_IQ4_XS] = {.name = "iq4_xs", .blck_size = 256, .type_size = 136, .is_quantized = true},
    [IG_TYPE_I8] = {.name = "i8", .blck_size = 1, .type_size = 1, .is_quantized = false},
    [IG_TYPE_I16] = {.name = "i16", .blck_size = 1, .type_size = 2, .is_quantized = false},
    [IG_TYPE_I32] = {.name = "i32", .blck_size = 1, .type_size = 4, .is_quantized = false},
    [IG_TYPE_I64] = {.name = "i64", .blck_size = 1, .type_size = 8, .is_quantized = false},
    [IG_TYPE_F64] = {.name = "f64", .blck_size = 1, .type_size = 8, .is_quantized = false},
    [IG_TYPE_IQ1_M] = {.name = "iq1_m", .blck_size = 256, .type_size = 56, .is_quantized = true},
    [IG_TYPE_TQ1_0] = {.name = "tq1_0", .blck_size = 256, .type_size = 54, .is_quantized = true},
    [IG_TYPE_TQ2_0] = {.name = "tq2_0", .blck_size = 256, .type_size = 66, .is_quantized = true},
    [IG_TYPE_MXFP4] = {.name = "mxfp4", .blck_size = 32, .type_size = 17, .is_quantized = true},
};

const ig_type_traits *ig_type_get(uint32_t type) {
    if (type >= IG_TYPE_COUNT || TRAITS[type].name == NULL) return NULL;
    return &TRAITS[type];
}

const char *ig_type_name(uint32_t type) {
    const ig_type_traits *t = ig_type_get(type);
    return t ? t->name : "unknown";
}

bool ig_type_row_size(uint32_t type, int64_t n, size_t *out) {
    const ig_type_traits *t = ig_type_get(type);
    if (!t || n < 0 || n % t->blck_size != 0) return false;
    *out = (size_t)(n / t->blck_size) * t->type_size;
    return true;
}
