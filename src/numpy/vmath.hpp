// Private: float32 exp, log and tanh over arrays, written branch-free (selects only) so that the
// compiler vectorizes them; libm's scalar calls do not vectorize. Accuracy: within 2 ulp of the
// correctly rounded result over the whole float range (tests/vmath_test.cpp sweeps it), with
// libm's special values (inf, nan, 0, denormals).
//
// Each function is compiled for baseline x86-64 and for AVX2 and chosen at load
// time (GCC/clang target_clones), so no -march flag is needed.
#pragma once

#include <cstdint>

namespace loom::numpy::vmath {

void exp_f32(const float* in, float* out, std::int64_t n);
void log_f32(const float* in, float* out, std::int64_t n);
void tanh_f32(const float* in, float* out, std::int64_t n);

}  // namespace loom::numpy::vmath
