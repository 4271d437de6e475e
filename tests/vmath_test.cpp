// The vectorized float32 exp/log/tanh behind jnp::exp/log/tanh: within 2 ulp of libm's float64
// result rounded to float32 (the reference) over a sweep of every 97th float32 bit pattern, and
// libm's special values.
#include "numpy/vmath.hpp"

#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "loom/loom.hpp"

namespace {

using Kernel = void (*)(const float*, float*, std::int64_t);

// Distance in units in the last place between two finite floats of the same sign.
std::int64_t ulp_distance(float a, float b) {
  auto key = [](float f) {
    const auto u = std::bit_cast<std::int32_t>(f);
    return u < 0 ? std::int64_t{INT32_MIN} - u : std::int64_t{u};
  };
  return std::llabs(key(a) - key(b));
}

// Largest ulp error of `kernel` against `reference` over inputs in [lo, hi].
std::int64_t max_ulp_error(Kernel kernel, double (*reference)(double), float lo, float hi) {
  std::vector<float> in;
  for (std::uint64_t u = 0; u <= 0xffffffffu; u += 97) {
    const float f = std::bit_cast<float>(static_cast<std::uint32_t>(u));
    if (std::isfinite(f) && f >= lo && f <= hi) in.push_back(f);
  }
  std::vector<float> out(in.size());
  kernel(in.data(), out.data(), static_cast<std::int64_t>(in.size()));
  std::int64_t worst = 0;
  for (std::size_t i = 0; i < in.size(); ++i) {
    const float ref = static_cast<float>(reference(static_cast<double>(in[i])));
    if (std::isinf(ref) || std::isinf(out[i])) {
      EXPECT_EQ(ref, out[i]) << "input " << in[i];
      continue;
    }
    const std::int64_t d = ulp_distance(out[i], ref);
    if (d > worst) worst = d;
    if (d > 2) ADD_FAILURE() << "input " << in[i] << ": got " << out[i] << ", libm " << ref;
    if (d > 2 && worst > 2) break;
  }
  return worst;
}

double exp_ref(double x) {
  return std::exp(x);
}
double log_ref(double x) {
  return std::log(x);
}
double tanh_ref(double x) {
  return std::tanh(x);
}

}  // namespace

TEST(Vmath, ExpWithin2UlpEverywhere) {
  EXPECT_LE(max_ulp_error(loom::numpy::vmath::exp_f32, exp_ref, -104.0f, 89.0f), 2);
}

TEST(Vmath, LogWithin2UlpOnPositiveFloatsIncludingDenormals) {
  EXPECT_LE(
      max_ulp_error(loom::numpy::vmath::log_f32, log_ref, 0.0f, std::numeric_limits<float>::max()),
      2);
}

TEST(Vmath, TanhWithin2UlpEverywhere) {
  EXPECT_LE(max_ulp_error(loom::numpy::vmath::tanh_f32, tanh_ref, -100.0f, 100.0f), 2);
}

TEST(Vmath, SpecialValuesAsLibm) {
  const float inf = std::numeric_limits<float>::infinity();
  const float nan = std::numeric_limits<float>::quiet_NaN();
  std::vector<float> in = {inf, -inf, nan, 0.0f, -0.0f, 1.0f, -1.0f, 89.0f, -104.0f};
  std::vector<float> out(in.size());
  loom::numpy::vmath::exp_f32(in.data(), out.data(), std::int64_t(in.size()));
  EXPECT_EQ(out[0], inf);
  EXPECT_EQ(out[1], 0.0f);
  EXPECT_TRUE(std::isnan(out[2]));
  EXPECT_EQ(out[3], 1.0f);
  EXPECT_EQ(out[7], inf);
  EXPECT_EQ(out[8], 0.0f);
  loom::numpy::vmath::log_f32(in.data(), out.data(), std::int64_t(in.size()));
  EXPECT_EQ(out[0], inf);
  EXPECT_TRUE(std::isnan(out[1]));
  EXPECT_TRUE(std::isnan(out[2]));
  EXPECT_EQ(out[3], -inf);
  EXPECT_EQ(out[4], -inf);
  EXPECT_EQ(out[5], 0.0f);
  EXPECT_TRUE(std::isnan(out[6]));
  loom::numpy::vmath::tanh_f32(in.data(), out.data(), std::int64_t(in.size()));
  EXPECT_EQ(out[0], 1.0f);
  EXPECT_EQ(out[1], -1.0f);
  EXPECT_TRUE(std::isnan(out[2]));
  EXPECT_EQ(out[3], 0.0f);
  EXPECT_TRUE(std::signbit(out[4]));  // tanh(-0) = -0
}
