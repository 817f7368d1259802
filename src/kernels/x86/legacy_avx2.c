/*
 * legacy_avx2.c: AVX2 kernels for the legacy block types (q4_0, q4_1, q5_0,
 * q5_1, q8_0 weights with q8_0 / q8_1 activations). Compiled with
 * -mavx2 -mfma -mf16c (CMakeLists.txt); only reached through kernels/dot.c.
 */
#include "kernels/dot.h"

void ig__dot_register_legacy_avx2(ig_dot_kernel *table) {
    (void)table;
}
