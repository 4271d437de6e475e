// loom::nn::initializers: fans, variance against the analytic target, orthogonality, errors, and
// bit-exact values against the docstrings of jax-ml/jax jax/_src/nn/initializers.py ([JI]:
// init(jax.random.key(42), (2, 3), float32), printed in shortest round-trip form; those were made
// with the original threefry layout).
#include "loom/nn/initializers.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <vector>

#include "loom/random.hpp"
#include "test_util.hpp"

namespace loom {
namespace {

namespace rnd = loom::random;
namespace init = loom::nn::initializers;
using loom::testing::throws_error;

std::uint32_t bits_of(float f) {
  std::uint32_t b;
  std::memcpy(&b, &f, sizeof b);
  return b;
}

::testing::AssertionResult same_f32_bits(const Array& a, const std::vector<float>& expected) {
  const auto v = a.to_vector<float>();
  if (a.dtype() != DType::float32 || v.size() != expected.size()) {
    return ::testing::AssertionFailure() << "dtype/size mismatch";
  }
  for (std::size_t i = 0; i < v.size(); ++i) {
    if (bits_of(v[i]) != bits_of(expected[i])) {
      return ::testing::AssertionFailure()
             << "element " << i << ": got " << v[i] << ", expected " << expected[i];
    }
  }
  return ::testing::AssertionSuccess();
}

// ---- fans
// ----------------------------------------------------------------------------------------

TEST(Fans, DenseAndConvKernels) {
  init::Fans f = init::compute_fans({784, 128});
  EXPECT_EQ(f.fan_in, 784);
  EXPECT_EQ(f.fan_out, 128);
  f = init::compute_fans({3, 3, 16, 32});  // HWIO conv kernel: receptive field 9
  EXPECT_EQ(f.fan_in, 144);
  EXPECT_EQ(f.fan_out, 288);
  f = init::compute_fans({5, 7, 3, 4}, {-2}, {-1}, {0});  // a batch axis is ignored
  EXPECT_EQ(f.fan_in, 21);
  EXPECT_EQ(f.fan_out, 28);
  f = init::compute_fans({10, 6}, {-2}, {0});  // nn.Embed: in and out are the same axis
  EXPECT_EQ(f.fan_in, 6);
  f = init::compute_fans({2, 3, 4}, {0, 1}, {2});  // several in axes
  EXPECT_EQ(f.fan_in, 6);
  EXPECT_EQ(f.fan_out, 4);
}

TEST(Fans, Errors) {
  EXPECT_TRUE(
      throws_error([] { init::compute_fans({5}); }, {"compute_fans", "1-dimensional", "(5,)"}));
  EXPECT_TRUE(throws_error([] { init::compute_fans({5, 4}, {3}); }, {"in_axis 3", "(5, 4)"}));
  EXPECT_TRUE(throws_error([] { init::compute_fans({0, 4}); }, {"zero-sized", "(0, 4)"}));
}

// ---- variance against the analytic target
// ---------------------------------------------------------

struct VarianceCase {
  const char* mode;
  const char* distribution;
  double scale;
};

class VarianceScaling : public ::testing::TestWithParam<VarianceCase> {};

TEST_P(VarianceScaling, MatchesTarget) {
  const VarianceCase c = GetParam();
  const Shape shape{3, 3, 40, 120};  // fan_in 360, fan_out 1080
  const double fan_in = 360, fan_out = 1080;
  double n = fan_in;
  if (std::string(c.mode) == "fan_out") n = fan_out;
  if (std::string(c.mode) == "fan_avg") n = (fan_in + fan_out) / 2;
  if (std::string(c.mode) == "fan_geo_avg") n = std::sqrt(fan_in * fan_out);
  const double target = c.scale / n;
  for (DType dt : {DType::float32, DType::float64}) {
    const Array w = init::variance_scaling(c.scale, c.mode, c.distribution)(rnd::key(1), shape, dt);
    ASSERT_EQ(w.shape(), shape);
    ASSERT_EQ(w.dtype(), dt);
    const auto v = w.to_vector<double>();
    double m = 0, m2 = 0, maxabs = 0;
    for (double x : v) m += x, m2 += x * x, maxabs = std::max(maxabs, std::abs(x));
    m /= v.size();
    const double var = m2 / v.size() - m * m;
    // 432000 samples: the sample variance is within ~0.5% of the truth (4 sigma ~ 1%).
    EXPECT_NEAR(var / target, 1.0, 0.015) << c.mode << " " << c.distribution;
    EXPECT_NEAR(m, 0.0, 4 * std::sqrt(target / v.size()));
    if (std::string(c.distribution) == "uniform") {
      EXPECT_LE(maxabs, std::sqrt(3 * target) * 1.0001);
    }
    if (std::string(c.distribution) == "truncated_normal") {
      EXPECT_LE(maxabs, 2 * std::sqrt(target) / 0.87962566103423978 * 1.0001);
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Init, VarianceScaling,
                         ::testing::Values(VarianceCase{"fan_in", "truncated_normal", 1.0},
                                           VarianceCase{"fan_out", "truncated_normal", 2.0},
                                           VarianceCase{"fan_avg", "normal", 1.0},
                                           VarianceCase{"fan_in", "normal", 2.0},
                                           VarianceCase{"fan_geo_avg", "normal", 1.0},
                                           VarianceCase{"fan_avg", "uniform", 1.0},
                                           VarianceCase{"fan_out", "uniform", 3.0}));

TEST(NamedInitializers, AreVarianceScalingSpecialCases) {
  const rnd::Key k = rnd::key(3);
  const Shape s{30, 20};
  auto same = [&](const init::Initializer& a, const init::Initializer& b) {
    return a(k, s, DType::float32).to_vector<float>() == b(k, s, DType::float32).to_vector<float>();
  };
  EXPECT_TRUE(same(init::lecun_normal(), init::variance_scaling(1, "fan_in", "truncated_normal")));
  EXPECT_TRUE(same(init::lecun_uniform(), init::variance_scaling(1, "fan_in", "uniform")));
  EXPECT_TRUE(
      same(init::glorot_normal(), init::variance_scaling(1, "fan_avg", "truncated_normal")));
  EXPECT_TRUE(same(init::xavier_uniform(), init::variance_scaling(1, "fan_avg", "uniform")));
  EXPECT_TRUE(same(init::he_normal(), init::variance_scaling(2, "fan_in", "truncated_normal")));
  EXPECT_TRUE(same(init::kaiming_uniform(), init::variance_scaling(2, "fan_in", "uniform")));
  EXPECT_FALSE(same(init::he_normal(), init::lecun_normal()));
}

TEST(SimpleInitializers, ConstantsAndScales) {
  const rnd::Key k = rnd::key(0);
  EXPECT_EQ(init::zeros_init()(k, {2, 3}, DType::float32).to_vector<float>(),
            std::vector<float>(6, 0.f));
  EXPECT_EQ(init::ones_init()(k, {3}, DType::float64).to_vector<double>(),
            std::vector<double>(3, 1.0));
  EXPECT_EQ(init::constant(-7)(k, {2}, DType::int32).to_vector<std::int32_t>(),
            (std::vector<std::int32_t>{-7, -7}));
  const auto u = init::uniform(0.5)(k, {10000}, DType::float32).to_vector<float>();
  for (float x : u) ASSERT_TRUE(x >= 0.f && x < 0.5f);
  const auto n = init::normal(0.01)(k, {10000}, DType::float32).to_vector<double>();
  double m2 = 0;
  for (double x : n) m2 += x * x;
  EXPECT_NEAR(std::sqrt(m2 / n.size()), 0.01, 0.0005);
  const auto t =
      init::truncated_normal(1.0, -0.5, 0.5)(k, {10000}, DType::float32).to_vector<float>();
  for (float x : t) ASSERT_TRUE(x > -0.5f && x < 0.5f);
}

// ---- JAX's docstring values (original layout)
// -------------------------------------------------------

class DocstringValues : public ::testing::Test {
 protected:
  rnd::ModeGuard guard_{rnd::ThreefryMode::original};
  rnd::Key key_ = rnd::key(42);
  Array run(const init::Initializer& f) { return f(key_, {2, 3}, DType::float32); }
};

TEST_F(DocstringValues, BitExact) {
  EXPECT_TRUE(same_f32_bits(run(init::uniform(10.0)), {7.298188f, 8.691938f, 8.7230015f, 2.0818567f,
                                                       1.8662417f, 5.5022564f}));
  EXPECT_TRUE(
      same_f32_bits(run(init::truncated_normal(5.0)),
                    {2.9047365f, 5.2338114f, 5.29852f, -3.836303f, -4.192359f, 0.6022964f}));
  EXPECT_TRUE(same_f32_bits(run(init::glorot_uniform()), {0.50350785f, 0.8088631f, 0.81566876f,
                                                          -0.6393332f, -0.6865721f, 0.11003882f}));
  EXPECT_TRUE(same_f32_bits(run(init::lecun_uniform()), {0.56293887f, 0.90433645f, 0.9119454f,
                                                         -0.71479625f, -0.7676109f, 0.12302713f}));
  EXPECT_TRUE(same_f32_bits(run(init::he_uniform()), {0.79611576f, 1.2789248f, 1.2896855f,
                                                      -1.0108745f, -1.0855657f, 0.17398663f}));
}

// These docstrings predate XLA's log1p-based erfinv (it used -log((1-u)(1+u))): the
// erfinv-based ones agree to a few float32 ulps only. The current formula is checked bit for bit
// against Flax's docs in random_test (Partitionable.NormalMatchesFlaxDocs) and against
// truncated_normal(5.0) above.
TEST_F(DocstringValues, TruncatedNormalKernelsWithinUlps) {
  auto near = [](const Array& a, std::vector<float> e) {
    return loom::testing::allclose(a, Array(e, Shape{2, 3}), 2.5e-7, 0.0);
  };
  EXPECT_TRUE(near(run(init::glorot_normal()),
                   {0.41770416f, 0.75262755f, 0.7619329f, -0.5516644f, -0.6028657f, 0.08661086f}));
  EXPECT_TRUE(near(run(init::lecun_normal()),
                   {0.46700746f, 0.8414632f, 0.8518669f, -0.61677957f, -0.67402434f, 0.09683388f}));
  EXPECT_TRUE(near(run(init::he_normal()),
                   {0.6604483f, 1.1900088f, 1.2047218f, -0.87225807f, -0.95321447f, 0.1369438f}));
}

// The normal(5.0) docstring predates XLA's log1p-based erfinv (it used -log((1-u)(1+u))), so it
// agrees to a few float32 ulps only; the current formula is checked bit for bit against Flax's
// docs in random_test (Partitionable.NormalMatchesFlaxDocs).
TEST_F(DocstringValues, NormalWithinUlps) {
  EXPECT_TRUE(loom::testing::allclose(
      run(init::normal(5.0)),
      Array({{3.0613258f, 5.6129413f, 5.6866574f}, {-4.063663f, -4.4520254f, 0.63115686f}}), 1e-6,
      1e-6));
}

// Orthogonal goes through a QR decomposition (loom: Householder in float64; JAX: LAPACK in
// float32), so it agrees to float32 rounding, not bit for bit.
TEST_F(DocstringValues, OrthogonalWithinRounding) {
  EXPECT_TRUE(loom::testing::allclose(run(init::orthogonal()),
                                      Array({{3.9026976e-01f, 7.2495741e-01f, -5.6756169e-01f},
                                             {8.8047469e-01f, -4.7409311e-01f, -1.3157725e-04f}}),
                                      1e-5, 1e-6));
  const Array d = init::delta_orthogonal()(key_, {3, 3, 3}, DType::float32);
  std::vector<float> expected(27, 0.f);
  const std::vector<float> centre{0.27858758f, -0.7949833f,  -0.53887904f, 0.9120717f, 0.04322892f,
                                  0.40774566f, -0.30085585f, -0.6050892f,  0.73712474f};
  std::copy(centre.begin(), centre.end(), expected.begin() + 9);
  EXPECT_TRUE(loom::testing::allclose(d, Array(expected, Shape{3, 3, 3}), 1e-5, 1e-6));
}

// ---- orthogonal
// --------------------------------------------------------------------------------------

::testing::AssertionResult is_orthonormal(const std::vector<double>& q, std::int64_t rows,
                                          std::int64_t cols, double scale, double tol) {
  // Columns orthonormal when rows >= cols (Q^T Q = scale^2 I), rows orthonormal otherwise.
  const bool by_cols = rows >= cols;
  const std::int64_t k = by_cols ? cols : rows, len = by_cols ? rows : cols;
  for (std::int64_t a = 0; a < k; ++a)
    for (std::int64_t b = 0; b < k; ++b) {
      double dot = 0;
      for (std::int64_t i = 0; i < len; ++i) {
        dot += by_cols ? q[i * cols + a] * q[i * cols + b] : q[a * cols + i] * q[b * cols + i];
      }
      const double want = a == b ? scale * scale : 0.0;
      if (std::abs(dot - want) > tol) {
        return ::testing::AssertionFailure() << "(" << a << ", " << b << "): " << dot;
      }
    }
  return ::testing::AssertionSuccess();
}

TEST(Orthogonal, QtQIsIdentity) {
  for (auto [r, c] : {std::pair<int, int>{6, 4}, {4, 6}, {5, 5}}) {
    const Array q = init::orthogonal()(rnd::key(r * 10 + c), {r, c}, DType::float64);
    EXPECT_TRUE(is_orthonormal(q.to_vector<double>(), r, c, 1.0, 1e-12)) << r << "x" << c;
    const Array q32 = init::orthogonal(2.0)(rnd::key(1), {r, c}, DType::float32);
    EXPECT_TRUE(is_orthonormal(q32.to_vector<double>(), r, c, 2.0, 1e-5));
  }
}

TEST(Orthogonal, ConvShapeAndColumnAxis) {
  // (3, 3, 4, 8): a 36 x 8 matrix whose 8 columns (the last axis) are orthonormal.
  const auto q = init::orthogonal()(rnd::key(2), {3, 3, 4, 8}, DType::float64).to_vector<double>();
  EXPECT_TRUE(is_orthonormal(q, 36, 8, 1.0, 1e-12));
  // column_axis 0: the slices along axis 0 are the columns.
  const auto p = init::orthogonal(1.0, 0)(rnd::key(2), {4, 6}, DType::float64).to_vector<double>();
  std::vector<double> t(24);  // transpose to (6, 4)
  for (int i = 0; i < 4; ++i)
    for (int j = 0; j < 6; ++j) t[j * 4 + i] = p[i * 6 + j];
  EXPECT_TRUE(is_orthonormal(t, 6, 4, 1.0, 1e-12));
}

TEST(DeltaOrthogonal, CentreTapOnly) {
  const Shape s{3, 5, 4, 6};
  const auto w = init::delta_orthogonal()(rnd::key(4), s, DType::float64).to_vector<double>();
  std::vector<double> centre(24);
  for (int h = 0; h < 3; ++h)
    for (int x = 0; x < 5; ++x)
      for (int i = 0; i < 24; ++i) {
        const double v = w[(h * 5 + x) * 24 + i];
        if (h == 1 && x == 2) {
          centre[i] = v;
        } else {
          ASSERT_EQ(v, 0.0);
        }
      }
  EXPECT_TRUE(is_orthonormal(centre, 4, 6, 1.0, 1e-12));
}

TEST(InitializerErrors, ClearMessages) {
  const rnd::Key k = rnd::key(0);
  EXPECT_TRUE(throws_error([] { init::variance_scaling(1, "fan_sideways", "normal"); },
                           {"variance_scaling", "fan_sideways", "fan_in"}));
  EXPECT_TRUE(throws_error([] { init::variance_scaling(1, "fan_in", "cauchy"); },
                           {"variance_scaling", "cauchy", "truncated_normal"}));
  EXPECT_TRUE(
      throws_error([] { init::variance_scaling(-1, "fan_in", "normal"); }, {"positive", "-1"}));
  EXPECT_TRUE(throws_error(
      [&] {
        init::lecun_normal()(k, {4, 4}, DType::int32);
      },
      {"variance_scaling", "float32 or float64", "int32"}));
  EXPECT_TRUE(throws_error([&] { init::lecun_normal()(k, {4}, DType::float32); },
                           {"compute_fans", "(4,)"}));
  EXPECT_TRUE(throws_error([&] { init::orthogonal()(k, {4}, DType::float32); },
                           {"orthogonal", "2-D", "(4,)"}));
  EXPECT_EQ(init::delta_orthogonal()(k, {3, 4, 4}, DType::float32).shape(), (Shape{3, 4, 4}));
  EXPECT_TRUE(throws_error(
      [&] {
        init::delta_orthogonal()(k, {3, 6, 4}, DType::float32);
      },
      {"delta_orthogonal", "fan_in must be <= fan_out", "(3, 6, 4)"}));
  EXPECT_TRUE(throws_error(
      [&] {
        init::delta_orthogonal()(k, {4, 4}, DType::float32);
      },
      {"delta_orthogonal", "3-D, 4-D or 5-D", "(4, 4)"}));
}

TEST(InitializerErrors, DeltaOrthogonalNeedsNonEmptySpatialDims) {
  EXPECT_TRUE(throws_error(
      [] {
        init::delta_orthogonal()(rnd::key(0), Shape{0, 3, 3}, DType::float32);
      },
      {"delta_orthogonal", "(0, 3, 3)"}));
}

}  // namespace
}  // namespace loom
