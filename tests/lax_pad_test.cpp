// lax::pad (jax.lax.pad): low/high/interior padding, negative (cropping) padding, gradients in
// both operands. Expected values are written by hand from lax.pad's definition, and a reference
// loop here maps each output position back to the operand (the kernel maps the other way).
#include <gtest/gtest.h>

#include <vector>

#include "loom/lax.hpp"
#include "loom/loom.hpp"
#include "test_util.hpp"

namespace jnp = loom::numpy;
namespace lax = loom::lax;
using loom::Array;
using loom::DType;
using loom::Shape;
using loom::testing::allclose;
using loom::testing::f64;
using loom::testing::grad_matches_fd;
using loom::testing::throws_error;
using loom::testing::wave;

namespace {

// Reference: out[j] = x[i] where j = low + i * (interior + 1) for an operand index i, else pv.
// Row-major (a, b) operand, 2-D only.
std::vector<double> reference_pad(const std::vector<double>& x, std::int64_t a, std::int64_t b,
                                  double pv, const std::vector<lax::PadConfig>& c, Shape& shape) {
  auto size = [](std::int64_t n, const lax::PadConfig& p) {
    return p.low + p.high + (n == 0 ? 0 : (n - 1) * (p.interior + 1) + 1);
  };
  const std::int64_t ra = size(a, c[0]), rb = size(b, c[1]);
  shape = Shape{ra, rb};
  auto source = [](std::int64_t j, std::int64_t n, const lax::PadConfig& p) -> std::int64_t {
    const std::int64_t k = j - p.low;
    if (k < 0 || k % (p.interior + 1) != 0 || k / (p.interior + 1) >= n) return -1;
    return k / (p.interior + 1);
  };
  std::vector<double> out;
  for (std::int64_t i = 0; i < ra; ++i) {
    for (std::int64_t j = 0; j < rb; ++j) {
      const std::int64_t si = source(i, a, c[0]), sj = source(j, b, c[1]);
      out.push_back(si < 0 || sj < 0 ? pv : x[std::size_t(si * b + sj)]);
    }
  }
  return out;
}

TEST(LaxPad, LowHighAndInteriorByHand) {
  Array x = Array({1.0f, 2.0f, 3.0f});
  Array y = lax::pad(x, Array::scalar(0.0f), {{1, 2, 1}});
  EXPECT_EQ(y.dtype(), DType::float32);
  EXPECT_EQ(y.to_vector<float>(), (std::vector<float>{0, 1, 0, 2, 0, 3, 0, 0}));
  Array m = Array({{1, 2}, {3, 4}});
  Array p = lax::pad(m, 9.0, {{1, 0, 0}, {0, 1, 1}});
  EXPECT_EQ(p.dtype(), DType::int32);
  EXPECT_EQ(p.shape(), (Shape{3, 4}));
  EXPECT_EQ(p.to_vector<int>(), (std::vector<int>{9, 9, 9, 9, 1, 9, 2, 9, 3, 9, 4, 9}));
}

TEST(LaxPad, NegativePaddingCrops) {
  Array x = Array({1.0, 2.0, 3.0}, DType::float64);
  EXPECT_EQ(lax::pad(x, 0.0, {{-1, 0, 0}}).to_vector<double>(), (std::vector<double>{2, 3}));
  // dilated [1, 0, 2, 0, 3], two cropped on the left and one on the right: [2, 0].
  EXPECT_EQ(lax::pad(x, 0.0, {{-2, -1, 1}}).to_vector<double>(), (std::vector<double>{2, 0}));
  EXPECT_EQ(lax::pad(x, 0.0, {{-3, 0, 0}}).shape(), (Shape{0}));
  EXPECT_EQ(lax::pad(x, 7.0, {{-3, 2, 0}}).to_vector<double>(), (std::vector<double>{7, 7}));
  EXPECT_EQ(lax::pad(x, 0.0, {{2, -4, 0}}).to_vector<double>(), (std::vector<double>{0}));
  // Empty operand: only the padding remains; a scalar operand needs an empty config.
  EXPECT_EQ(lax::pad(jnp::zeros({0}), 5.0, {{1, 1, 3}}).to_vector<float>(),
            (std::vector<float>{5, 5}));
  EXPECT_EQ(lax::pad(Array::scalar(4.0f), 0.0, {}).to_vector<float>(), (std::vector<float>{4}));
}

TEST(LaxPad, MatchesAReferenceLoop) {
  const Array x = wave(Shape{3, 4}, 0.2);
  const std::vector<double> xv = x.to_vector<double>();
  const std::vector<std::vector<lax::PadConfig>> configs = {
      {{0, 0, 0}, {0, 0, 0}},    {{2, 1, 0}, {1, 3, 2}},   {{-1, -1, 0}, {0, 0, 1}},
      {{-2, 3, 2}, {-3, -2, 1}}, {{0, -5, 1}, {-1, 4, 0}}, {{1, 1, 4}, {-6, 0, 3}},
  };
  for (const auto& c : configs) {
    Shape shape;
    const std::vector<double> want = reference_pad(xv, 3, 4, -0.5, c, shape);
    const Array got = lax::pad(x, -0.5, c);
    if (want.empty()) {  // (Array from an empty std::vector trips UBSan in array.cpp's memcpy)
      EXPECT_EQ(got.shape(), shape);
      continue;
    }
    EXPECT_TRUE(allclose(got, f64(want, shape), 0, 0));
  }
}

TEST(LaxPad, GradientsInOperandAndPaddingValue) {
  const Array x = wave(Shape{3, 4}, 0.2);
  const std::vector<lax::PadConfig> c = {{-1, 2, 1}, {1, -2, 2}};
  EXPECT_TRUE(grad_matches_fd(
      [&](const Array& v) {
        Array y = lax::pad(v, 0.5, c);
        return jnp::sum(y * wave(y.shape(), 1.1));
      },
      x));
  // d/dpv sum(pad(x, pv)) = the number of padded positions: 6 * 9 minus the 2 * 3 operand elements
  // kept.
  Array y = lax::pad(x, 0.0, c);
  EXPECT_EQ(y.shape(), (Shape{6, 9}));
  Array gv =
      loom::grad([&](const Array& pv) { return jnp::sum(lax::pad(x, pv, c)); })(Array::scalar(0.0));
  EXPECT_DOUBLE_EQ(gv.item<double>(), 6 * 9 - 2 * 3);
}

TEST(LaxPad, Errors) {
  Array x = jnp::ones({2, 3});
  EXPECT_TRUE(throws_error(
      [&] {
        lax::pad(x, 0.0, {{0, 0, 0}});
      },
      {"lax.pad", "one (low, high, interior) per operand dimension", "(2, 3)"}));
  EXPECT_TRUE(throws_error(
      [&] {
        lax::pad(x, 0.0, {{0, 0, -1}, {0, 0, 0}});
      },
      {"lax.pad", "interior", "-1"}));
  EXPECT_TRUE(throws_error(
      [&] {
        lax::pad(x, 0.0, {{-3, 0, 0}, {0, 0, 0}});
      },
      {"lax.pad", "negative size", "-1"}));
  EXPECT_TRUE(throws_error(
      [&] {
        lax::pad(x, jnp::zeros({1}), {{0, 0, 0}, {0, 0, 0}});
      },
      {"lax.pad", "scalar", "(1,)"}));
  EXPECT_TRUE(throws_error(
      [&] {
        lax::pad(x, jnp::zeros({}, DType::float64), {{0, 0, 0}, {0, 0, 0}});
      },
      {"lax.pad", "dtype", "float64"}));
  EXPECT_TRUE(throws_error([&] { lax::pad(Array(), 0.0, {}); }, {"lax.pad"}));
}

}  // namespace
