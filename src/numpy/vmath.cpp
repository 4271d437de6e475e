// Vectorizable float32 exp/log/tanh (see vmath.hpp). The polynomials are Cephes' (S. Moshier)
// single-precision minimax fits, evaluated without branches so the loops vectorize. CMakeLists
// compiles this file with -fno-trapping-math -fno-math-errno: nothing here reads floating-point
// flags or errno, and without them GCC if-converts the selects (rounding is unaffected).
#include "numpy/vmath.hpp"

#include <bit>
#include <cstdint>
#include <limits>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__)) && \
    !defined(__SANITIZE_ADDRESS__)
#define LOOM_VMATH_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define LOOM_VMATH_CLONES
#endif

namespace loom::numpy::vmath {
namespace {

[[gnu::always_inline]] inline float exp_one(float x) {
  // exp(x) = 2^n * exp(r), n = round(x / ln 2), r = x - n ln 2 (ln 2 split in two for accuracy).
  const float kMax = 88.72283935546875f;  // largest x with finite expf
  const float kMin = -103.97208f;         // below this expf rounds to 0
  const float xc = x > kMax ? kMax : (x < kMin ? kMin : x);
  // Round to nearest by adding and removing 1.5 * 2^23 (vectorizes without SSE4.1's roundps).
  const float kRound = 12582912.0f;
  const float n = (xc * 1.44269504088896341f + kRound) - kRound;
  const float r = (xc - n * 0.693359375f) + n * 2.12194440e-4f;
  const float r2 = r * r;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  const float er = p * r2 + r + 1.0f;
  // 2^n in two halves so that n down to -150 (denormal results) stays representable.
  const std::int32_t ni = static_cast<std::int32_t>(n);
  const std::int32_t n1 = ni / 2, n2 = ni - n1;
  const float s1 = __builtin_bit_cast(float, static_cast<std::uint32_t>(n1 + 127) << 23);
  const float s2 = __builtin_bit_cast(float, static_cast<std::uint32_t>(n2 + 127) << 23);
  float y = er * s1 * s2;
  y = x > kMax ? std::numeric_limits<float>::infinity() : y;
  y = x < kMin ? 0.0f : y;
  return x != x ? x : y;
}

[[gnu::always_inline]] inline float log_one(float x) {
  // x = m * 2^e with m in [sqrt(1/2), sqrt(2)); log(x) = log1p(m - 1) + e ln 2.
  const bool denormal = x < 1.17549435e-38f;
  const float xs = denormal ? x * 8388608.0f : x;  // 2^23
  const std::uint32_t bits = __builtin_bit_cast(std::uint32_t, xs);
  std::int32_t e = static_cast<std::int32_t>((bits >> 23) & 0xff) - 126;
  float m = __builtin_bit_cast(float, (bits & 0x007fffffu) | 0x3f000000u);  // [0.5, 1)
  const bool small = m < 0.707106781186547524f;
  e = small ? e - 1 : e;
  m = small ? m + m - 1.0f : m - 1.0f;
  const float fe = static_cast<float>(e) - (denormal ? 23.0f : 0.0f);
  const float z = m * m;
  float p = 7.0376836292e-2f;
  p = p * m - 1.1514610310e-1f;
  p = p * m + 1.1676998740e-1f;
  p = p * m - 1.2420140846e-1f;
  p = p * m + 1.4249322787e-1f;
  p = p * m - 1.6668057665e-1f;
  p = p * m + 2.0000714765e-1f;
  p = p * m - 2.4999993993e-1f;
  p = p * m + 3.3333331174e-1f;
  float y = p * m * z;
  y += -2.12194440e-4f * fe;
  y += -0.5f * z;
  float r = m + y + 0.693359375f * fe;
  r = x == std::numeric_limits<float>::infinity() ? x : r;
  r = x == 0.0f ? -std::numeric_limits<float>::infinity() : r;
  r = x < 0.0f ? std::numeric_limits<float>::quiet_NaN() : r;
  return x != x ? x : r;
}

[[gnu::always_inline]] inline float tanh_one(float x) {
  const float ax = x < 0 ? -x : x;
  // |x| < 0.625: odd polynomial; otherwise 1 - 2 / (exp(2|x|) + 1), which saturates to 1.
  const float z = x * x;
  float p = -5.70498872745e-3f;
  p = p * z + 2.06390887954e-2f;
  p = p * z - 5.37397155531e-2f;
  p = p * z + 1.33314422036e-1f;
  p = p * z - 3.33332819422e-1f;
  const float small = p * z * x + x;
  const float e = exp_one(2.0f * (ax < 44.0f ? ax : 44.0f));
  float big = 1.0f - 2.0f / (e + 1.0f);
  big = x < 0 ? -big : big;
  float r = ax < 0.625f ? small : big;
  r = x == 0.0f ? x : r;  // keeps the sign of zero
  return x != x ? x : r;
}

}  // namespace

LOOM_VMATH_CLONES void exp_f32(const float* in, float* out, std::int64_t n) {
  for (std::int64_t i = 0; i < n; ++i) out[i] = exp_one(in[i]);
}

LOOM_VMATH_CLONES void log_f32(const float* in, float* out, std::int64_t n) {
  for (std::int64_t i = 0; i < n; ++i) out[i] = log_one(in[i]);
}

LOOM_VMATH_CLONES void tanh_f32(const float* in, float* out, std::int64_t n) {
  for (std::int64_t i = 0; i < n; ++i) out[i] = tanh_one(in[i]);
}

}  // namespace loom::numpy::vmath
