// jax.nn activations in loom::nn and the PReLU module. Expected values: NumPy (float64) from
// tests/data/activation_golden.py (printed and pasted below), analytic values, and loops written
// here in plain C++ double arithmetic; gradients against finite differences in float64.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include "loom/loom.hpp"
#include "loom/nn.hpp"
#include "test_util.hpp"

namespace nn = loom::nn;
namespace jnp = loom::numpy;
using loom::Array;
using loom::DType;
using loom::Shape;
using loom::testing::allclose;
using loom::testing::f64;
using loom::testing::grad_matches_fd;
using loom::testing::throws_error;
using loom::testing::wave;

namespace {

using Fn = std::function<Array(const Array&)>;

const std::vector<double> kX = {-20.0, -3.0, -1.0, -0.5, 0.0, 0.5, 1.0, 3.0, 20.0};

struct Golden {
  const char* name;
  Fn fn;
  std::vector<double> expected;  // tests/data/activation_golden.py
  double f32_atol = 1e-7;
};

std::vector<Golden> goldens() {
  return {
      {"sigmoid",
       [](const Array& x) { return nn::sigmoid(x); },
       {2.0611536181902037e-09, 0.047425873177566781, 0.2689414213699951, 0.37754066879814541, 0.5,
        0.62245933120185459, 0.7310585786300049, 0.95257412682243336, 0.99999999793884631}},
      {"log_sigmoid",
       [](const Array& x) { return nn::log_sigmoid(x); },
       {-20.000000002061153, -3.0485873515737421, -1.3132616875182228, -0.97407698418010669,
        -0.69314718055994529, -0.47407698418010669, -0.31326168751822286, -0.048587351573742062,
        -2.0611536203143808e-09}},
      {"softplus",
       [](const Array& x) { return nn::softplus(x); },
       {2.0611536203143808e-09, 0.048587351573742062, 0.31326168751822286, 0.47407698418010669,
        0.69314718055994529, 0.97407698418010669, 1.3132616875182228, 3.0485873515737421,
        20.000000002061153}},
      {"silu",
       [](const Array& x) { return nn::silu(x); },
       {-4.1223072363804073e-08, -0.14227761953270035, -0.2689414213699951, -0.1887703343990727, 0,
        0.3112296656009273, 0.7310585786300049, 2.8577223804673002, 19.999999958776925}},
      {"swish",
       [](const Array& x) { return nn::swish(x); },
       {-4.1223072363804073e-08, -0.14227761953270035, -0.2689414213699951, -0.1887703343990727, 0,
        0.3112296656009273, 0.7310585786300049, 2.8577223804673002, 19.999999958776925}},
      {"gelu_tanh",
       [](const Array& x) { return nn::gelu(x); },
       {-0.0, -0.0036373920817729943, -0.15880800939172329, -0.15428599017485606, 0,
        0.34571400982514394, 0.84119199060827676, 2.9963626079182268, 20}},
      {"gelu_exact",
       [](const Array& x) { return nn::gelu(x, false); },
       {-0.0, -0.0040496940948903104, -0.15865525393145707, -0.15426876936299344, 0,
        0.34573123063700656, 0.84134474606854293, 2.9959503059051098, 20},
       // float32 erf is XLA's rational approximation (3e-7 absolute), scaled by |x| / 2.
       1e-6},
      {"elu",
       [](const Array& x) { return nn::elu(x); },
       {-0.99999999793884631, -0.95021293163213605, -0.63212055882855767, -0.39346934028736658, 0,
        0.5, 1, 3, 20}},
      {"celu_alpha2",
       [](const Array& x) { return nn::celu(x, 2.0); },
       {-1.999909200140475, -1.5537396797031404, -0.78693868057473315, -0.44239843385719024, 0, 0.5,
        1, 3, 20}},
      {"selu",
       [](const Array& x) { return nn::selu(x); },
       {-1.7580993372236637, -1.6705687287671118, -1.1113307378125625, -0.69175818780287135, 0,
        0.52535049367774023, 1.0507009873554805, 3.1521029620664414, 21.014019747109607}},
      {"hard_silu",
       [](const Array& x) { return nn::hard_silu(x); },
       {-0.0, -0.0, -0.33333333333333331, -0.20833333333333334, 0, 0.29166666666666669,
        0.66666666666666663, 3, 20}},
      // Analytic: piecewise-linear functions.
      {"relu", [](const Array& x) { return nn::relu(x); }, {0, 0, 0, 0, 0, 0.5, 1, 3, 20}},
      {"relu6", [](const Array& x) { return nn::relu6(x); }, {0, 0, 0, 0, 0, 0.5, 1, 3, 6}},
      {"leaky_relu",
       [](const Array& x) { return nn::leaky_relu(x); },
       {-0.2, -0.03, -0.01, -0.005, 0, 0.5, 1, 3, 20}},
      {"leaky_relu_0.2",
       [](const Array& x) { return nn::leaky_relu(x, 0.2); },
       {-4, -0.6, -0.2, -0.1, 0, 0.5, 1, 3, 20}},
      {"hard_sigmoid",
       [](const Array& x) { return nn::hard_sigmoid(x); },
       {0, 0, 1.0 / 3, 2.5 / 6, 0.5, 3.5 / 6, 4.0 / 6, 1, 1}},
      {"hard_tanh",
       [](const Array& x) { return nn::hard_tanh(x); },
       {-1, -1, -1, -0.5, 0, 0.5, 1, 1, 1}},
      {"tanh",
       [](const Array& x) { return nn::tanh(x); },
       {std::tanh(-20.0), std::tanh(-3.0), std::tanh(-1.0), std::tanh(-0.5), 0, std::tanh(0.5),
        std::tanh(1.0), std::tanh(3.0), std::tanh(20.0)}},
  };
}

TEST(Activation, ValuesMatchNumPyInFloat64AndFloat32) {
  for (const Golden& g : goldens()) {
    SCOPED_TRACE(g.name);
    const Array want = f64(g.expected, Shape{9});
    Array y64 = g.fn(f64(kX, Shape{9}));
    EXPECT_EQ(y64.dtype(), DType::float64);
    EXPECT_TRUE(allclose(y64, want, 1e-13, 1e-15));
    Array y32 = g.fn(Array(kX, Shape{9}, DType::float32));
    EXPECT_EQ(y32.dtype(), DType::float32);
    EXPECT_TRUE(allclose(y32, want, 3e-6, g.f32_atol));
  }
}

TEST(Activation, LargeBlocksAndThreadsMatchSmallOnes) {
  // 100000 elements: several blocks and (with OpenMP) several threads; element i of the big
  // array must equal the same value computed alone.
  const std::int64_t n = 100000;
  Array big = wave(Shape{n}, 0.3, DType::float32) * 25.0;
  for (const Golden& g : goldens()) {
    SCOPED_TRACE(g.name);
    std::vector<float> yb = g.fn(big).to_vector<float>();
    std::vector<float> xb = big.to_vector<float>();
    for (std::int64_t i :
         {std::int64_t{0}, std::int64_t{255}, std::int64_t{256}, std::int64_t{40001}, n - 1}) {
      const float alone = g.fn(Array({xb[std::size_t(i)]})).to_vector<float>()[0];
      EXPECT_EQ(yb[std::size_t(i)], alone) << "element " << i;
    }
  }
}

TEST(Activation, StableAtLargeMagnitudes) {
  for (DType dt : {DType::float32, DType::float64}) {
    Array x = Array({-1000.0, -100.0, 100.0, 1000.0}, dt);
    const double denormal = dt == DType::float32 ? 1e-44 : 0;  // float32's e^-100 is denormal
    EXPECT_TRUE(
        allclose(nn::sigmoid(x), f64({0, std::exp(-100.0), 1, 1}, Shape{4}), 1e-5, denormal));
    EXPECT_TRUE(
        allclose(nn::softplus(x), f64({0, std::exp(-100.0), 100, 1000}, Shape{4}), 1e-5, denormal));
    EXPECT_TRUE(allclose(nn::log_sigmoid(x), f64({-1000, -100, -std::exp(-100.0), 0}, Shape{4}),
                         1e-5, denormal));
    EXPECT_TRUE(
        allclose(nn::silu(x), f64({0, -100 * std::exp(-100.0), 100, 1000}, Shape{4}), 1e-5, 1e-40));
    EXPECT_TRUE(allclose(nn::elu(x), f64({-1, -1, 100, 1000}, Shape{4})));
    EXPECT_TRUE(allclose(nn::gelu(x), f64({0, 0, 100, 1000}, Shape{4})));
    EXPECT_TRUE(allclose(nn::gelu(x, false), f64({0, 0, 100, 1000}, Shape{4})));
    EXPECT_TRUE(
        allclose(nn::softmax(Array({1000.0, 1000.0, -1000.0}, dt)), f64({0.5, 0.5, 0}, Shape{3})));
    EXPECT_TRUE(allclose(nn::log_softmax(Array({1000.0, 1000.0}, dt)),
                         f64({-std::log(2.0), -std::log(2.0)}, Shape{2})));
    // Gradients stay finite too: sigmoid' and softplus' at +-1000.
    Array gs = loom::grad([](const Array& v) { return jnp::sum(nn::softplus(v)); })(x);
    EXPECT_TRUE(allclose(gs, f64({0, std::exp(-100.0), 1, 1}, Shape{4}), 1e-5, 1e-40));
  }
  // log1p/expm1 accuracy near 0 (float32 goes through the corrected vmath forms).
  Array tiny = Array({-1e-6f, 1e-6f});
  EXPECT_TRUE(allclose(nn::elu(tiny), f64({std::expm1(-1e-6), 1e-6}, Shape{2}), 1e-6, 0));
  EXPECT_TRUE(allclose(nn::softplus(Array({-30.0f})), f64({std::exp(-30.0)}, Shape{1}), 1e-6, 0));
}

TEST(Activation, ExactGeluFloat32TracksTheCLibrarysErf) {
  // Reference: x (1 + erf(x / sqrt 2)) / 2 with std::erf in double, over [-6, 6].
  std::vector<double> xs, want;
  for (int i = 0; i <= 1200; ++i) {
    const double v = double(float(-6.0 + 0.01 * i));
    xs.push_back(v);
    want.push_back(v * (1 + std::erf(v / std::sqrt(2.0))) / 2);
  }
  const Shape s{std::int64_t(xs.size())};
  EXPECT_TRUE(allclose(nn::gelu(Array(xs, s, DType::float32), false), f64(want, s), 3e-6, 1e-6));
  EXPECT_TRUE(allclose(nn::gelu(f64(xs, s), false), f64(want, s), 1e-12, 1e-16));
}

// ---- gradients ------------------------------------------------------------------------------

TEST(Activation, GradientsMatchFiniteDifferences) {
  // Inputs in [-3.5, 3.5] away from the kinks (0, +-1, +-3, 6); a weighted sum so that
  // softmax's gradient is not trivially zero.
  const Array x = wave(Shape{2, 3, 4}, 0.1) * 3.5 + 0.013;
  const std::vector<std::pair<const char*, Fn>> fns = {
      {"relu", [](const Array& v) { return nn::relu(v); }},
      {"relu6", [](const Array& v) { return nn::relu6(v * 2.0); }},
      {"sigmoid", [](const Array& v) { return nn::sigmoid(v); }},
      {"log_sigmoid", [](const Array& v) { return nn::log_sigmoid(v); }},
      {"softplus", [](const Array& v) { return nn::softplus(v); }},
      {"silu", [](const Array& v) { return nn::silu(v); }},
      {"swish", [](const Array& v) { return nn::swish(v); }},
      {"tanh", [](const Array& v) { return nn::tanh(v); }},
      {"gelu", [](const Array& v) { return nn::gelu(v); }},
      {"gelu_exact", [](const Array& v) { return nn::gelu(v, false); }},
      {"elu", [](const Array& v) { return nn::elu(v, 1.5); }},
      {"celu", [](const Array& v) { return nn::celu(v, 0.7); }},
      {"selu", [](const Array& v) { return nn::selu(v); }},
      {"leaky_relu", [](const Array& v) { return nn::leaky_relu(v, 0.3); }},
      {"hard_sigmoid", [](const Array& v) { return nn::hard_sigmoid(v); }},
      {"hard_silu", [](const Array& v) { return nn::hard_silu(v); }},
      {"hard_tanh", [](const Array& v) { return nn::hard_tanh(v); }},
      {"glu", [](const Array& v) { return nn::glu(v, 0); }},  // size 2
      {"glu_last", [](const Array& v) { return nn::glu(v); }},
      {"softmax", [](const Array& v) { return nn::softmax(v); }},
      {"softmax_axis1", [](const Array& v) { return nn::softmax(v, 1); }},
      {"softmax_02",
       [](const Array& v) {
         return nn::softmax(v, {0, 2});
       }},
      {"softmax_all", [](const Array& v) { return nn::softmax(v, loom::numpy::Axes()); }},
      {"log_softmax", [](const Array& v) { return nn::log_softmax(v); }},
      {"log_softmax_axis0", [](const Array& v) { return nn::log_softmax(v, 0); }},
      {"standardize", [](const Array& v) { return nn::standardize(v); }},
      {"standardize_axis1", [](const Array& v) { return nn::standardize(v, 1); }},
      {"standardize_12",
       [](const Array& v) {
         return nn::standardize(v, {1, 2});
       }},
      {"logsumexp", [](const Array& v) { return nn::logsumexp(v, -1, true); }},
  };
  for (const auto& [name, fn] : fns) {
    SCOPED_TRACE(name);
    auto loss = [&](const Array& v) {
      Array y = fn(v);
      return jnp::sum(y * wave(y.shape(), 1.7));
    };
    EXPECT_TRUE(grad_matches_fd(loss, x, 1e-6));
  }
}

// relu's VJP on a float32 array spanning many blocks and threads (the vectorized select):
// exactly where(x > 0, g, 0), NaN inputs included (x > 0 is false for NaN, as jax.nn.relu's
// derivative), against a plain loop.
TEST(Activation, ReluVjpLargeFloat32IsExactSelect) {
  const std::int64_t n = 100003;
  std::vector<float> xs(static_cast<std::size_t>(n)), gs(static_cast<std::size_t>(n));
  for (std::int64_t i = 0; i < n; ++i) {
    xs[std::size_t(i)] = float(std::sin(0.37 * double(i)) * (i % 7 == 0 ? 0.0 : 1.0));
    gs[std::size_t(i)] = float(1.0 + std::cos(0.11 * double(i)));
  }
  xs[5] = std::nanf("");
  const Array x(xs, Shape{n}, DType::float32), g(gs, Shape{n}, DType::float32);
  auto [y, vjp] = loom::vjp([](const Array& v) { return nn::relu(v); }, x);
  const std::vector<float> d = vjp(g).to_vector<float>();
  ASSERT_EQ(std::int64_t(d.size()), n);
  for (std::int64_t i = 0; i < n; ++i) {
    const std::size_t u = std::size_t(i);
    ASSERT_EQ(d[u], xs[u] > 0.0f ? gs[u] : 0.0f) << "at " << i;
  }
}

TEST(Activation, GradientsAtKinksFollowJax) {
  auto g = [](Fn f, double at) {
    return loom::grad([&](const Array& v) { return jnp::sum(f(v)); })(f64({at}, Shape{1}))
        .to_vector<double>()[0];
  };
  EXPECT_EQ(g([](const Array& v) { return nn::relu(v); }, 0.0), 0.0);  // jax.nn.relu: 0 at 0
  EXPECT_EQ(g([](const Array& v) { return nn::relu6(v); }, 0.0), 0.0);
  EXPECT_EQ(g([](const Array& v) { return nn::relu6(v); }, 6.0), 0.0);
  EXPECT_EQ(g([](const Array& v) { return nn::leaky_relu(v); }, 0.0), 1.0);  // where(x >= 0)
  EXPECT_EQ(g([](const Array& v) { return nn::hard_tanh(v); }, 1.0), 1.0);
  EXPECT_EQ(g([](const Array& v) { return nn::hard_tanh(v); }, -1.0), 1.0);
  EXPECT_EQ(g([](const Array& v) { return nn::elu(v, 2.0); }, 0.0), 2.0);  // where(x > 0)
  EXPECT_EQ(g([](const Array& v) { return nn::celu(v); }, 0.0), 1.0);
  EXPECT_EQ(g([](const Array& v) { return nn::sigmoid(v); }, 0.0), 0.25);
  EXPECT_EQ(g([](const Array& v) { return nn::gelu(v); }, 0.0), 0.5);
  EXPECT_EQ(g([](const Array& v) { return nn::silu(v); }, 0.0), 0.5);
}

// ---- softmax family -------------------------------------------------------------------------

TEST(Softmax, ValuesMatchNumPy) {
  // tests/data/activation_golden.py
  Array z = Array({{1.0, 2.0, 3.0}, {-1.0, 0.0, 1000.0}}, DType::float64);
  EXPECT_TRUE(allclose(
      nn::softmax(z),
      f64({0.090030573170380435, 0.24472847105479767, 0.66524095577482178, 0, 0, 1}, Shape{2, 3}),
      1e-14, 1e-300));
  EXPECT_TRUE(allclose(
      nn::log_softmax(z),
      f64({-2.4076059644443806, -1.4076059644443804, -0.40760596444438035, -1001, -1000, 0},
          Shape{2, 3}),
      1e-14, 1e-14));
  EXPECT_TRUE(allclose(nn::softmax(z, 0),
                       f64({0.88079707797788254, 0.88079707797788254, 0, 0.11920292202211755,
                            0.11920292202211755, 1},
                           Shape{2, 3}),
                       1e-14, 1e-300));
  Array z32 = z.astype(DType::float32);
  EXPECT_TRUE(allclose(
      nn::softmax(z32),
      f64({0.090030573170380435, 0.24472847105479767, 0.66524095577482178, 0, 0, 1}, Shape{2, 3}),
      2e-6, 1e-30));
}

// Softmax over `axes` of a (2, 3, 4) array in plain double loops.
std::vector<double> reference_softmax(const std::vector<double>& x, std::vector<bool> reduced,
                                      bool log) {
  const int dims[3] = {2, 3, 4};
  std::vector<double> out(x.size());
  auto key = [&](int i, int j, int k) {  // the index of the group an element belongs to
    int idx[3] = {i, j, k}, g = 0;
    for (int d = 0; d < 3; ++d) g = g * dims[d] + (reduced[std::size_t(d)] ? 0 : idx[d]);
    return g;
  };
  std::vector<double> mx(24, -INFINITY), sum(24, 0.0);
  for (int i = 0; i < 2; ++i)
    for (int j = 0; j < 3; ++j)
      for (int k = 0; k < 4; ++k)
        mx[std::size_t(key(i, j, k))] =
            std::max(mx[std::size_t(key(i, j, k))], x[std::size_t(i * 12 + j * 4 + k)]);
  for (int i = 0; i < 2; ++i)
    for (int j = 0; j < 3; ++j)
      for (int k = 0; k < 4; ++k)
        sum[std::size_t(key(i, j, k))] +=
            std::exp(x[std::size_t(i * 12 + j * 4 + k)] - mx[std::size_t(key(i, j, k))]);
  for (int i = 0; i < 2; ++i)
    for (int j = 0; j < 3; ++j)
      for (int k = 0; k < 4; ++k) {
        const auto g = std::size_t(key(i, j, k));
        const double s = x[std::size_t(i * 12 + j * 4 + k)] - mx[g];
        out[std::size_t(i * 12 + j * 4 + k)] = log ? s - std::log(sum[g]) : std::exp(s) / sum[g];
      }
  return out;
}

TEST(Softmax, EveryAxisChoiceMatchesAReferenceLoop) {
  const Array x = wave(Shape{2, 3, 4}, 0.4) * 4.0;
  const std::vector<double> xv = x.to_vector<double>();
  const std::vector<std::pair<loom::numpy::Axes, std::vector<bool>>> cases = {
      {-1, {false, false, true}},
      {0, {true, false, false}},
      {1, {false, true, false}},
      {{0, 1}, {true, true, false}},
      {{0, 2}, {true, false, true}},
      {{-1, 1}, {false, true, true}},
      {loom::numpy::Axes(), {true, true, true}},
  };
  for (const auto& [axes, reduced] : cases) {
    for (bool log : {false, true}) {
      const Array want = f64(reference_softmax(xv, reduced, log), Shape{2, 3, 4});
      const Array got = log ? nn::log_softmax(x, axes) : nn::softmax(x, axes);
      EXPECT_TRUE(allclose(got, want, 1e-13, 1e-15));
    }
  }
}

TEST(Softmax, IntegerInputsComputeInFloat32) {
  Array y = nn::softmax(Array({0, 0}));
  EXPECT_EQ(y.dtype(), DType::float32);
  EXPECT_TRUE(allclose(y, f64({0.5, 0.5}, Shape{2})));
  EXPECT_EQ(nn::log_softmax(Array({1, 2})).dtype(), DType::float32);
}

TEST(Softmax, BadAxisIsAnError) {
  Array x = jnp::ones({2, 3});
  EXPECT_TRUE(throws_error([&] { nn::softmax(x, 2); }, {"softmax", "axis 2", "(2, 3)"}));
  EXPECT_TRUE(throws_error([&] { nn::log_softmax(x, -3); }, {"log_softmax", "axis -3"}));
  EXPECT_TRUE(throws_error([&] { nn::softmax(x, {1, -1}); }, {"softmax", "repeated"}));
  EXPECT_TRUE(throws_error([&] { nn::standardize(x, 5); }, {"standardize", "axis 5"}));
  EXPECT_TRUE(throws_error([&] { nn::glu(x, 2); }, {"glu", "axis 2"}));
  EXPECT_TRUE(throws_error([&] { nn::glu(x); }, {"glu", "even", "float32(2, 3)"}));
  EXPECT_TRUE(throws_error([&] { nn::sigmoid(Array()); }, {"sigmoid"}));
}

TEST(Standardize, ValuesMatchNumPy) {
  // tests/data/activation_golden.py: (x - mean) / sqrt(mean(x^2) - mean^2 + 1e-5).
  Array z = Array({{1.0, 2.0, 3.0}, {-1.0, 0.0, 1000.0}}, DType::float64);
  EXPECT_TRUE(allclose(nn::standardize(z),
                       f64({-1.22473568590839, 0, 1.22473568590839, -0.70816664598027701,
                            -0.70604638656117436, 1.4142130325414515},
                           Shape{2, 3}),
                       1e-12, 1e-12));
  // epsilon: the variance of {0, 2} is 1, so (x - 1) / sqrt(1 + 3) = -0.5, 0.5.
  EXPECT_TRUE(allclose(nn::standardize(Array({0.0, 2.0}), -1, 3.0), f64({-0.5, 0.5}, Shape{2})));
  // axis 0 of a (2, 1) column; all axes.
  EXPECT_TRUE(allclose(nn::standardize(Array({{0.0}, {2.0}}), 0, 0.0), f64({-1, 1}, Shape{2, 1})));
  EXPECT_TRUE(allclose(nn::standardize(Array({{0.0, 2.0}, {0.0, 2.0}}), loom::numpy::Axes(), 0.0),
                       f64({-1, 1, -1, 1}, Shape{2, 2})));
}

// ---- glu, one_hot, logsumexp, integer inputs ---------------------------------------------

TEST(Glu, SplitsInHalvesAlongTheAxis) {
  Array x = Array({{1.0, 2.0, 0.5, -1.0}, {3.0, -2.0, 0.0, 4.0}}, DType::float64);
  auto s = [](double v) { return 1.0 / (1.0 + std::exp(-v)); };
  EXPECT_TRUE(
      allclose(nn::glu(x), f64({1 * s(0.5), 2 * s(-1), 3 * s(0), -2 * s(4)}, Shape{2, 2}), 1e-14));
  EXPECT_TRUE(allclose(nn::glu(x, 0),
                       f64({1 * s(3), 2 * s(-2), 0.5 * s(0), -1 * s(4)}, Shape{1, 4}), 1e-14));
}

TEST(OneHot, AsJaxNnOneHot) {
  Array labels = Array({0, 2, -1, 3});
  Array y = nn::one_hot(labels, 3);
  EXPECT_EQ(y.dtype(), DType::float32);
  EXPECT_TRUE(allclose(y, f64({1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0}, Shape{4, 3})));
  Array t = nn::one_hot(labels, 3, DType::int32, 0);
  EXPECT_EQ(t.dtype(), DType::int32);
  EXPECT_TRUE(allclose(t, f64({1, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0}, Shape{3, 4})));
  // axis 1 of a (2, 2) input: shape (2, 3, 2).
  EXPECT_EQ(nn::one_hot(Array({{0, 1}, {2, 1}}), 3, DType::float32, 1).shape(), (Shape{2, 3, 2}));
  EXPECT_TRUE(throws_error([&] { nn::one_hot(labels, 3, DType::float32, 2); },
                           {"one_hot", "axis 2", "rank 2"}));
  EXPECT_TRUE(throws_error([&] { nn::one_hot(labels, -1); }, {"one_hot", "num_classes"}));
}

TEST(Logsumexp, ForwardsToJnp) {
  Array x = Array({{0.0, std::log(3.0)}, {1000.0, 1000.0}}, DType::float64);
  EXPECT_TRUE(
      allclose(nn::logsumexp(x, -1), f64({std::log(4.0), 1000 + std::log(2.0)}, Shape{2}), 1e-14));
  EXPECT_EQ(nn::logsumexp(x).shape(), Shape{});
}

TEST(Activation, IntegerInputsFollowJax) {
  Array i = Array({-2, 0, 3, 8});
  EXPECT_EQ(nn::relu(i).dtype(), DType::int32);
  EXPECT_EQ(nn::relu(i).to_vector<int>(), (std::vector<int>{0, 0, 3, 8}));
  // jax.nn.relu6 is jnp.minimum(jnp.maximum(x, 0), 6.): the float 6. promotes to float32.
  EXPECT_EQ(nn::relu6(i).dtype(), DType::float32);
  EXPECT_EQ(nn::relu6(i).to_vector<float>(), (std::vector<float>{0, 0, 3, 6}));
  EXPECT_EQ(nn::hard_tanh(i).dtype(), DType::int32);
  EXPECT_EQ(nn::hard_tanh(i).to_vector<int>(), (std::vector<int>{-1, 0, 1, 1}));
  for (const Golden& g : goldens()) {
    const std::string name = g.name;
    if (name == "relu" || name == "hard_tanh") continue;
    SCOPED_TRACE(name);
    EXPECT_EQ(g.fn(i).dtype(), DType::float32);
  }
  EXPECT_TRUE(allclose(nn::sigmoid(Array({0})), f64({0.5}, Shape{1})));
  EXPECT_TRUE(allclose(nn::leaky_relu(Array({-100})), f64({-1}, Shape{1})));
}

// ---- PReLU ----------------------------------------------------------------------------------

TEST(PReLU, ParamTreeAndValuesAsFlax) {
  nn::PReLU layer;
  Array x = Array({{-2.0f, 3.0f}});
  loom::Tree v = layer.init(loom::random::key(0), x);
  const Array slope = v.at("params").at("negative_slope").leaf();
  EXPECT_EQ(slope.shape(), Shape{});
  EXPECT_EQ(slope.dtype(), DType::float32);
  EXPECT_FLOAT_EQ(slope.item<float>(), 0.01f);
  EXPECT_TRUE(allclose(layer.apply(v, x), f64({-0.02, 3}, Shape{1, 2})));

  nn::PReLU p64{.param_dtype = DType::float64, .negative_slope_init = 0.25};
  loom::Tree v64 = p64.init(loom::random::key(0), x);
  EXPECT_EQ(v64.at("params").at("negative_slope").leaf().dtype(), DType::float64);
  // The slope is cast to the input's dtype (float32 here).
  Array y = p64.apply(v64, x);
  EXPECT_EQ(y.dtype(), DType::float32);
  EXPECT_TRUE(allclose(y, f64({-0.5, 3}, Shape{1, 2})));
}

TEST(PReLU, GradientsInInputAndSlope) {
  nn::PReLU layer{.param_dtype = DType::float64, .negative_slope_init = 0.3};
  const Array x = wave(Shape{2, 3}, 0.2);
  loom::Tree v = layer.init(loom::random::key(0), x);
  EXPECT_TRUE(grad_matches_fd([&](const Array& in) { return jnp::sum(layer.apply(v, in)); }, x));
  // d/d slope sum(where(x >= 0, x, a x)) = sum of the negative x.
  double neg = 0;
  for (double e : x.to_vector<double>()) neg += e < 0 ? e : 0;
  auto loss = [&](const Array& a) {
    loom::Tree w = v;
    w.at("params").at("negative_slope") = loom::Tree(a);
    return jnp::sum(layer.apply(w, x));
  };
  EXPECT_NEAR(loom::grad(loss)(f64({0.3}, Shape{})).item<double>(), neg, 1e-12);
}

}  // namespace
