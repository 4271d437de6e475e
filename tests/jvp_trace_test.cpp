// The forward trace (src/autodiff/jvp_trace.cpp) as a transformation among the others: jvp records
// no backward pass, composes with grad both ways against analytic second derivatives, nests
// without perturbation confusion, and gives under jit and vmap what it gives eagerly.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "detail/tape.hpp"
#include "loom/loom.hpp"
#include "test_util.hpp"

using loom::Array;
using loom::DType;
using loom::Tree;
using loom::testing::allclose;
using loom::testing::f64;
using loom::testing::wave;
namespace jnp = loom::numpy;
namespace nn = loom::nn;

namespace {

Array scalar(double v) {
  return Array::scalar(v, DType::float64);
}

// A two-layer net on fixed data, built only from primitives with their own forward rules
// (contract, add, tanh, softmax, multiply, sum).
struct Net {
  Array x = wave({4, 3}, 0.1);
  Tree params = Tree{{"w", wave({3, 5}, 0.4)}, {"b", wave({5}, 0.8)}};
  Tree tangents = Tree{{"w", wave({3, 5}, 1.7)}, {"b", wave({5}, 2.9)}};
  Array operator()(const Tree& p) const {
    Array h = jnp::tanh(jnp::matmul(x, p.at("w").leaf()) + p.at("b").leaf());
    return jnp::sum(nn::softmax(h, -1) * h);
  }
};

TEST(JvpTrace, RecordsNoBackwardPass) {
  Net f;
  const std::uint64_t before = loom::detail::recorded_nodes();
  auto [y, y_dot] = loom::jvp(f, f.params, f.tangents);
  EXPECT_EQ(loom::detail::recorded_nodes(), before) << "jvp recorded a backward graph";
  // The same value as reverse mode transposed (linearize), which does record f.
  auto [y2, f_jvp] = loom::linearize(f, f.params);
  EXPECT_GT(loom::detail::recorded_nodes(), before);
  EXPECT_TRUE(allclose(y_dot, f_jvp(f.tangents), 1e-12, 1e-14));
  // The counter sees the derived rule's local VJP (logsumexp has no rule of its own).
  const std::uint64_t mid = loom::detail::recorded_nodes();
  loom::jvp([](const Array& v) { return jnp::logsumexp(v); }, f.x, wave({4, 3}, 0.5));
  EXPECT_GT(loom::detail::recorded_nodes(), mid);
}

TEST(JvpTrace, JvpOfGradIsTheHessianVectorProduct) {
  // f(x) = sum(tanh(A x)): H = A^T diag(-2 tanh(z) (1 - tanh(z)^2)) A with z = A x.
  const Array A = wave({3, 4}, 0.6), x = wave({4}, 0.2), v = wave({4}, 1.4);
  auto f = [&A](const Array& u) { return jnp::sum(jnp::tanh(jnp::matmul(A, u))); };
  Array hvp = loom::jvp(loom::grad(f), x, v).second;
  auto a = A.to_vector<double>(), xv = x.to_vector<double>(), vv = v.to_vector<double>();
  std::vector<double> expected(4, 0.0);
  for (int i = 0; i < 3; ++i) {
    double z = 0, av = 0;
    for (int j = 0; j < 4; ++j) {
      z += a[std::size_t(i * 4 + j)] * xv[std::size_t(j)];
      av += a[std::size_t(i * 4 + j)] * vv[std::size_t(j)];
    }
    const double th = std::tanh(z), s = -2 * th * (1 - th * th);
    for (int j = 0; j < 4; ++j) expected[std::size_t(j)] += a[std::size_t(i * 4 + j)] * s * av;
  }
  EXPECT_TRUE(allclose(hvp, f64(expected, {4}), 1e-12, 1e-14));
}

TEST(JvpTrace, GradOfJvp) {
  // h(x) = sum(d/dx (sin(x) x) . v) = sum((cos x x + sin x) v); grad h = (2 cos x - x sin x) v.
  const Array x = wave({5}, 0.3), v = wave({5}, 1.1);
  auto h = [&v](const Array& u) {
    return jnp::sum(loom::jvp([](const Array& w) { return jnp::sin(w) * w; }, u, v).second);
  };
  Array g = loom::grad(h)(x);
  auto xv = x.to_vector<double>(), vv = v.to_vector<double>();
  std::vector<double> expected;
  for (std::size_t i = 0; i < xv.size(); ++i)
    expected.push_back((2 * std::cos(xv[i]) - xv[i] * std::sin(xv[i])) * vv[i]);
  EXPECT_TRUE(allclose(g, f64(expected, {5}), 1e-12, 1e-14));
  // Rules that read the op's output (tanh's explicit rule, sigmoid's VJP) under the grad trace:
  // d/dx sum(tanh'(x) v) = -2 tanh (1 - tanh^2) v; d/dx sum(s'(x) v) = s (1 - s) (1 - 2 s) v.
  auto h_tanh = [&v](const Array& u) {
    return jnp::sum(loom::jvp([](const Array& w) { return jnp::tanh(w); }, u, v).second);
  };
  auto h_sigmoid = [&v](const Array& u) {
    return jnp::sum(loom::jvp([](const Array& w) { return nn::sigmoid(w); }, u, v).second);
  };
  auto gt = loom::grad(h_tanh)(x).to_vector<double>();
  auto gs = loom::grad(h_sigmoid)(x).to_vector<double>();
  for (std::size_t i = 0; i < xv.size(); ++i) {
    const double th = std::tanh(xv[i]), s = 1 / (1 + std::exp(-xv[i]));
    EXPECT_NEAR(gt[i], -2 * th * (1 - th * th) * vv[i], 1e-13);
    EXPECT_NEAR(gs[i], s * (1 - s) * (1 - 2 * s) * vv[i], 1e-13);
  }
}

TEST(JvpTrace, NestedJvpHasNoPerturbationConfusion) {
  // JAX's classic: d/dx (x * d/dy (x + y)) = 1 (a confused tangent gives 2).
  auto outer = [](const Array& x) {
    auto inner = [&x](const Array& y) { return x + y; };
    return x * loom::jvp(inner, scalar(1.0), scalar(1.0)).second;
  };
  EXPECT_DOUBLE_EQ(loom::jvp(outer, scalar(2.0), scalar(1.0)).second.item<double>(), 1.0);
  // And the inner tangent depending on x: d/dx (x * d/dy (x y)) = d/dx x^2 = 2x.
  auto outer2 = [](const Array& x) {
    auto inner = [&x](const Array& y) { return x * y; };
    return x * loom::jvp(inner, scalar(3.0), scalar(1.0)).second;
  };
  EXPECT_DOUBLE_EQ(loom::jvp(outer2, scalar(2.5), scalar(1.0)).second.item<double>(), 5.0);
}

TEST(JvpTrace, JvpOfJvpIsTheSecondDerivative) {
  const Array x = wave({6}, 0.4, DType::float64) * 2.0;
  const Array one = jnp::ones_like(x);
  auto second = [&](Array (*fn)(const Array&)) {
    auto d = [fn, &one](const Array& u) { return loom::jvp(fn, u, one).second; };
    return loom::jvp(d, x, one).second.to_vector<double>();
  };
  auto xv = x.to_vector<double>();
  // Explicit rules (tanh reads its output), the symmetric rule (sigmoid's own VJP, composite at
  // the inner level) and a bilinear one (x * x).
  auto d2_tanh = second([](const Array& u) { return jnp::tanh(u); });
  auto d2_sigmoid = second([](const Array& u) { return nn::sigmoid(u); });
  auto d2_cube = second([](const Array& u) { return u * u * u; });
  for (std::size_t i = 0; i < xv.size(); ++i) {
    const double th = std::tanh(xv[i]), s = 1 / (1 + std::exp(-xv[i]));
    EXPECT_NEAR(d2_tanh[i], -2 * th * (1 - th * th), 1e-13);
    EXPECT_NEAR(d2_sigmoid[i], s * (1 - s) * (1 - 2 * s), 1e-13);
    EXPECT_NEAR(d2_cube[i], 6 * xv[i], 1e-13);
  }
}

// Uses a derived-rule primitive (logsumexp) and a symmetric one (softmax) besides the others.
Array mixed(const Array& x) {
  return jnp::logsumexp(nn::softmax(jnp::exp(x) * x, -1) + jnp::sin(x), -1);
}

TEST(JvpTrace, JitOfJvpEqualsEagerJvp) {
  auto jf = loom::jit([](const Array& x, const Array& t) { return loom::jvp(mixed, x, t); });
  for (double phase : {0.1, 0.9}) {  // the first call traces, the second replays
    const Array x = wave({3, 4}, phase), t = wave({3, 4}, phase + 2.0);
    auto [y, y_dot] = jf(x, t);
    auto [ye, ye_dot] = loom::jvp(mixed, x, t);
    EXPECT_TRUE(allclose(y, ye, 1e-14, 1e-15));
    EXPECT_TRUE(allclose(y_dot, ye_dot, 1e-12, 1e-14));
  }
  EXPECT_EQ(jf.cache_hits(), 1);
}

TEST(JvpTrace, VmapOfJvpEqualsEagerJvp) {
  std::vector<Array> xs, ts;
  for (int i = 0; i < 5; ++i) {
    xs.push_back(wave({4}, 0.3 * i));
    ts.push_back(wave({4}, 1.0 + 0.7 * i));
  }
  auto per = [](const Array& x, const Array& t) { return loom::jvp(mixed, x, t).second; };
  Array batched = loom::vmap(per)(jnp::stack(xs), jnp::stack(ts));
  ASSERT_EQ(batched.ndim(), 1);
  ASSERT_EQ(batched.size(), 5);
  auto bv = batched.to_vector<double>();
  for (std::size_t i = 0; i < xs.size(); ++i) {
    EXPECT_NEAR(bv[i], per(xs[i], ts[i]).item<double>(), 1e-12) << "example " << i;
  }
}

}  // namespace
