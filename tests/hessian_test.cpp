// Second derivatives: hessian (= jacfwd(jacrev(f)), as JAX), jacfwd/jacrev, grad of grad with
// has_aux, against analytic second derivatives and float64 finite differences of the gradient.
#include <gtest/gtest.h>

#include <cmath>

#include "loom/loom.hpp"
#include "test_util.hpp"

using loom::Array;
using loom::DType;
using loom::Tree;
using loom::testing::allclose;
using loom::testing::f64;
using loom::testing::wave;
namespace jnp = loom::numpy;

namespace {

// Central finite differences of loom::grad(f): an independent (numerical) Hessian.
Array fd_hessian(const std::function<Array(const Array&)>& f, const Array& x, double h = 1e-5) {
  const auto n = static_cast<std::size_t>(x.shape().numel());
  auto base = x.to_vector<double>();
  std::vector<double> H(n * n);
  auto g = loom::grad(f);
  for (std::size_t j = 0; j < n; ++j) {
    auto plus = base, minus = base;
    plus[j] += h;
    minus[j] -= h;
    auto gp = g(Array(plus, x.shape(), DType::float64)).to_vector<double>();
    auto gm = g(Array(minus, x.shape(), DType::float64)).to_vector<double>();
    for (std::size_t i = 0; i < n; ++i) H[i * n + j] = (gp[i] - gm[i]) / (2 * h);
  }
  return Array(H, {std::int64_t(n), std::int64_t(n)}, DType::float64);
}

TEST(Hessian, SumOfCubesIsDiagonalSixX) {
  Array x = f64({0.5, -1.5, 2.0}, {3});
  Array H = loom::hessian([](const Array& v) { return jnp::sum(v * v * v); })(x);
  ASSERT_EQ(H.shape(), (loom::Shape{3, 3}));
  EXPECT_TRUE(allclose(H, f64({3, 0, 0, 0, -9, 0, 0, 0, 12}, {3, 3}), 1e-13, 1e-13));
}

TEST(Hessian, QuadraticFormIsAPlusATransposed) {
  Array A = f64({1, 2, 0, -1, 3, 0.5, 4, -2, 1}, {3, 3});
  Array x = f64({0.3, -0.7, 1.1}, {3});
  auto f = [A](const Array& v) { return jnp::sum(v * jnp::matmul(A, v)); };
  Array H = loom::hessian(f)(x);
  EXPECT_TRUE(allclose(H, f64({2, 1, 4, 1, 6, -1.5, 4, -1.5, 2}, {3, 3}), 1e-13, 1e-13));
}

TEST(Hessian, LogSumExpIsDiagPMinusPPt) {
  Array x = f64({0.2, -1.0, 0.7, 1.5}, {4});
  Array H = loom::hessian([](const Array& v) { return jnp::logsumexp(v); })(x);
  auto xv = x.to_vector<double>();
  double z = 0;
  for (double v : xv) z += std::exp(v);
  std::vector<double> expected(16);
  for (std::size_t i = 0; i < 4; ++i) {
    for (std::size_t j = 0; j < 4; ++j) {
      const double pi = std::exp(xv[i]) / z, pj = std::exp(xv[j]) / z;
      expected[i * 4 + j] = (i == j ? pi : 0.0) - pi * pj;
    }
  }
  EXPECT_TRUE(allclose(H, Array(expected, {4, 4}, DType::float64), 1e-12, 1e-13));
}

TEST(Hessian, TanhOfTanhMatchesTheChainRule) {
  Array x = f64({0.4, -0.9, 1.3}, {3});
  Array H = loom::hessian([](const Array& v) { return jnp::sum(jnp::tanh(jnp::tanh(v))); })(x);
  std::vector<double> expected(9, 0.0);
  auto xv = x.to_vector<double>();
  for (std::size_t i = 0; i < 3; ++i) {
    // u = tanh x, v = tanh u: v' = (1 - v^2)(1 - u^2),
    // v'' = -2 v v' (1 - u^2) - 2 u (1 - u^2)(1 - v^2).
    const double u = std::tanh(xv[i]), v = std::tanh(u);
    const double d1 = (1 - v * v) * (1 - u * u);
    expected[i * 4] = -2 * v * d1 * (1 - u * u) - 2 * u * (1 - u * u) * (1 - v * v);
  }
  EXPECT_TRUE(allclose(H, Array(expected, {3, 3}, DType::float64), 1e-12, 1e-13));
}

TEST(Hessian, TanhLayersMatchFiniteDifferencesOfTheGradient) {
  Array W1 = wave({4, 3}, 0.2), W2 = wave({2, 4}, 1.4);
  auto f = [&](const Array& v) {
    return jnp::sum(jnp::tanh(jnp::matmul(W2, jnp::tanh(jnp::matmul(W1, v)))));
  };
  Array x = f64({0.3, -0.2, 0.8}, {3});
  Array H = loom::hessian(f)(x);
  EXPECT_TRUE(allclose(H, fd_hessian(f, x), 1e-6, 1e-7));
  // jacrev of jacrev agrees with jacfwd of jacrev.
  EXPECT_TRUE(allclose(loom::jacrev(loom::jacrev(f))(x), H, 1e-12, 1e-13));
  EXPECT_TRUE(allclose(loom::jacfwd(loom::jacfwd(f))(x), H, 1e-12, 1e-13));
}

TEST(Jacobian, ForwardAndReverseAgreeWithAnalytic) {
  // f(x) = [x0 x1, sin(x2), x0 + 2 x2] (3 -> 3, through slicing and concatenation).
  auto f = [](const Array& x) {
    Array a = jnp::slice(x, {{0, 1}}), b = jnp::slice(x, {{1, 2}}), c = jnp::slice(x, {{2, 3}});
    return jnp::concatenate({a * b, jnp::sin(c), a + c * 2.0}, 0);
  };
  Array x = f64({0.5, -2.0, 0.9}, {3});
  const double s = std::cos(0.9);
  Array expected = f64({-2.0, 0.5, 0, 0, 0, s, 1, 0, 2}, {3, 3});
  EXPECT_TRUE(allclose(loom::jacrev(f)(x), expected, 1e-14, 1e-14));
  EXPECT_TRUE(allclose(loom::jacfwd(f)(x), expected, 1e-14, 1e-14));
  // Output and input shapes are concatenated: (2, 2) -> (2,) gives (2, 2, 2).
  Array m = f64({1, 2, 3, 4}, {2, 2});
  Array J = loom::jacfwd([](const Array& v) { return jnp::sum(v * v, {1}); })(m);
  EXPECT_EQ(J.shape(), (loom::Shape{2, 2, 2}));
  EXPECT_TRUE(allclose(J, f64({2, 4, 0, 0, 0, 0, 6, 8}, {2, 2, 2}), 0, 0));
}

TEST(Hessian, GradOfGradWithAux) {
  // f(x) = (sin x, x^2 as aux); grad(grad(f, has_aux), has_aux) -> (-sin x, aux).
  auto f = [](const Array& x) { return std::make_pair(jnp::sin(x), x * x); };
  auto inner = loom::grad(f, {.has_aux = true});
  auto outer = loom::grad(inner, {.has_aux = true});
  Array x = Array::scalar(0.6, DType::float64);
  auto [g2, aux] = outer(x);
  EXPECT_NEAR(g2.item<double>(), -std::sin(0.6), 1e-14);
  EXPECT_NEAR(aux.item<double>(), 0.36, 1e-14);
  EXPECT_EQ(aux.node(), nullptr);
  auto [value_aux, g] = loom::value_and_grad(inner, {.has_aux = true})(x);
  EXPECT_NEAR(value_aux.first.item<double>(), std::cos(0.6), 1e-14);
  EXPECT_NEAR(g.item<double>(), -std::sin(0.6), 1e-14);
}

TEST(Hessian, GradOfGradOverATree) {
  // d/da of (d/da sum(a^2 b)) . 1 = d/da sum(2 a b) = 2 b;  with respect to b: 2 a.
  Tree p = {{"a", f64({1.0, -2.0}, {2})}, {"b", f64({0.5, 3.0}, {2})}};
  auto f = [](const Tree& t) {
    return jnp::sum(t.at("a").leaf() * t.at("a").leaf() * t.at("b").leaf());
  };
  auto g_sum = [&](const Tree& t) { return jnp::sum(loom::grad(f)(t).at("a").leaf()); };
  Tree gg = loom::grad(g_sum)(p);
  EXPECT_TRUE(allclose(gg.at("a").leaf(), f64({1.0, 6.0}, {2}), 0, 0));
  EXPECT_TRUE(allclose(gg.at("b").leaf(), f64({2.0, -4.0}, {2}), 0, 0));
}

}  // namespace
