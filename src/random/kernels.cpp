// Instantiates kernels.inc twice (baseline and AVX2+FMA) and picks one at run time. No -march
// flag is involved: the AVX2 copy is confined to functions compiled under a target pragma and
// only called when the CPU reports AVX2 and FMA.
#include "random/kernels.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

// sqrt of a negative number never happens here and nothing reads FP exception flags: without
// errno and trapping-math the branch-free selects below vectorize (rounding is unaffected).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("no-math-errno", "no-trapping-math")
#endif

#define LOOM_INLINE inline __attribute__((always_inline))
#define LOOM_RESTRICT __restrict
#define LOOM_FMAF(a, b, c) __builtin_fmaf((a), (b), (c))
#define LOOM_SQRTF(x) __builtin_sqrtf(x)

namespace loom::random::detail {

namespace baseline {
#if defined(__x86_64__) || defined(__i386__)
typedef float SqrtVec __attribute__((vector_size(16)));
constexpr std::int64_t kSqrtLanes = 4;
#define LOOM_SQRT_VEC(v) __builtin_ia32_sqrtps(v)
#else  // other processors: one lane, still correctly rounded
typedef float SqrtVec __attribute__((vector_size(4)));
constexpr std::int64_t kSqrtLanes = 1;
#define LOOM_SQRT_VEC(v)    \
  SqrtVec {                 \
    __builtin_sqrtf((v)[0]) \
  }
#endif
#include "random/kernels.inc"
#undef LOOM_SQRT_VEC
}  // namespace baseline

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define LOOM_HAVE_AVX2_KERNELS 1
#pragma GCC push_options
#pragma GCC target("avx2,fma")
namespace avx2 {
typedef float SqrtVec __attribute__((vector_size(32)));
constexpr std::int64_t kSqrtLanes = 8;
#define LOOM_SQRT_VEC(v) __builtin_ia32_sqrtps256(v)
#include "random/kernels.inc"
#undef LOOM_SQRT_VEC
}  // namespace avx2
#pragma GCC pop_options
#endif

namespace {

#define LOOM_KERNEL_TABLE(NS, NAME)                                                         \
  KernelTable {                                                                             \
    NAME, &NS::hash_pairs, &NS::bits32_partitionable, &NS::bits64_partitionable,            \
        &NS::keys_partitionable, &NS::pairs_original, &NS::uniform_f32, &NS::erfinv_f32,    \
        &NS::gumbel_f32, &NS::log_f32_scalar, &NS::log1p_f32_scalar, &NS::erfinv_f32_scalar \
  }

const KernelTable kBaseline = LOOM_KERNEL_TABLE(baseline, "baseline");
#ifdef LOOM_HAVE_AVX2_KERNELS
const KernelTable kAvx2 = LOOM_KERNEL_TABLE(avx2, "avx2+fma");
#endif

const KernelTable& pick() {
#ifdef LOOM_HAVE_AVX2_KERNELS
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return kAvx2;
#endif
  return kBaseline;
}

}  // namespace

const KernelTable& kernels() {
  static const KernelTable& table = pick();
  return table;
}

const KernelTable& baseline_kernels() {
  return kBaseline;
}

float xla_erf_f32(float x) {
  // |x| >= erfinv(1 - 2^-24) rounds to +-1 in float32.
  constexpr float kErfInvOneMinusHalfUlp = 3.832506856900711f;
  const float x2 = x * x;
  float p = std::fma(x2, 0.00022905065861350646f, 0.0034082910107109506f);
  p = std::fma(x2, p, 0.050955695062380861f);
  p = std::fma(x2, p, 0.18520832239976145f);
  p = std::fma(x2, p, 1.128379143519084f);
  p = x * p;
  float q = std::fma(x2, -1.1791602954361697e-7f, 0.000023547966471313185f);
  q = std::fma(x2, q, 0.0010179625278914885f);
  q = std::fma(x2, q, 0.014070470171167667f);
  q = std::fma(x2, q, 0.11098505178285362f);
  q = std::fma(x2, q, 0.49746925110067538f);
  q = std::fma(x2, q, 1.0f);
  if (std::fabs(x) >= kErfInvOneMinusHalfUlp) return std::copysign(1.0f, x);
  return p / q;
}

}  // namespace loom::random::detail
