/* types.c: the type-traits table (see types.h). */
#include "tensor/types.h"

#include "tensor/act_quant.h"
#include "tensor/quant_ref.h"
#include "tensor/vec_dot_q.h"

#define REF(t) .to_float = ig_to_float_##t, .from_float = ig_from_float_##t, .vec_dot = ig_vec_dot_##t
/* weights of type t take activations in type a (llama.cpp's vec_dot_type) */
#define DOT(t, a) .vec_dot_type = IG_TYPE_##a, .vec_dot_q = ig_vec_dot_q_##t
#define ACT(t)    .quantize_act = ig_quantize_act_##t

static const ig_type_traits TRAITS[IG_TYPE_COUNT] = {
    [IG_TYPE_F32] = {"f32", 1, 4, false, REF(f32), DOT(f32, F32), ACT(f32)},
    [IG_TYPE_F16] = {"f16", 1, 2, false, REF(f16), DOT(f16, F16), ACT(f16)},
    [IG_TYPE_BF16] = {"bf16", 1, 2, false, REF(bf16), DOT(bf16, BF16), ACT(bf16)},
    [IG_TYPE_Q4_0] = {"q4_0", 32, 18, true, REF(q4_0), DOT(q4_0, Q8_0)},
    [IG_TYPE_Q4_1] = {"q4_1", 32, 20, true, REF(q4_1), DOT(q4_1, Q8_1)},
    [IG_TYPE_Q5_0] = {"q5_0", 32, 22, true, REF(q5_0), DOT(q5_0, Q8_0)},
    [IG_TYPE_Q5_1] = {"q5_1", 32, 24, true, REF(q5_1), DOT(q5_1, Q8_1)},
    [IG_TYPE_Q8_0] = {"q8_0", 32, 34, true, REF(q8_0), DOT(q8_0, Q8_0), ACT(q8_0)},
    [IG_TYPE_Q8_1] = {"q8_1", 32, 36, true, .to_float = ig_to_float_q8_1, ACT(q8_1)},
    [IG_TYPE_Q2_K] = {"q2_K", 256, 84, true, REF(q2_K), DOT(q2_K, Q8_K)},
    [IG_TYPE_Q3_K] = {"q3_K", 256, 110, true, REF(q3_K), DOT(q3_K, Q8_K)},
    [IG_TYPE_Q4_K] = {"q4_K", 256, 144, true, REF(q4_K), DOT(q4_K, Q8_K)},
    [IG_TYPE_Q5_K] = {"q5_K", 256, 176, true, REF(q5_K), DOT(q5_K, Q8_K)},
    [IG_TYPE_Q6_K] = {"q6_K", 256, 210, true, REF(q6_K), DOT(q6_K, Q8_K)},
    [IG_TYPE_Q8_K] = {"q8_K", 256, 292, true, REF(q8_K), DOT(q8_K, Q8_K), ACT(q8_K)},
    [IG_TYPE_IQ2_XXS] = {"iq2_xxs", 256, 66, true, 0, 0, 0},
    [IG_TYPE_IQ2_XS] = {"iq2_xs", 256, 74, true, 0, 0, 0},
    [IG_TYPE_IQ3_XXS] = {"iq3_xxs", 256, 98, true, 0, 0, 0},
    [IG_TYPE_IQ1_S] = {"iq1_s", 256, 50, true, 0, 0, 0},
    [IG_TYPE_IQ4_NL] = {"iq4_nl", 32, 18, true, 0, 0, 0},
    [IG_TYPE_IQ3_S] = {"iq3_s", 256, 110, true, 0, 0, 0},
    [IG_TYPE_IQ2_S] = {"iq2_s", 256, 82, true, 0, 0, 0},
    [IG_TYPE_IQ4_XS] = {"iq4_xs", 256, 136, true, 0, 0, 0},
    [IG_TYPE_I8] = {"i8", 1, 1, false, 0, 0, 0},
    [IG_TYPE_I16] = {"i16", 1, 2, false, 0, 0, 0},
    [IG_TYPE_I32] = {"i32", 1, 4, false, 0, 0, 0},
    [IG_TYPE_I64] = {"i64", 1, 8, false, 0, 0, 0},
    [IG_TYPE_F64] = {"f64", 1, 8, false, 0, 0, 0},
    [IG_TYPE_IQ1_M] = {"iq1_m", 256, 56, true, 0, 0, 0},
    [IG_TYPE_TQ1_0] = {"tq1_0", 256, 54, true, 0, 0, 0},
    [IG_TYPE_TQ2_0] = {"tq2_0", 256, 66, true, 0, 0, 0},
    [IG_TYPE_MXFP4] = {"mxfp4", 32, 17, true, 0, 0, 0},
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
