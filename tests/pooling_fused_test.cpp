// lax::reduce_window_mean (the one-pass avg_pool) against the general two-step path,
// reduce_window(sum) / prod(window): bit-identical values and gradients, float64 FD gradients,
// second order, jit and vmap.
#include <gtest/gtest.h>

#include "loom/loom.hpp"
#include "loom/nn.hpp"
#include "test_util.hpp"

namespace jnp = loom::numpy;
namespace lax = loom::lax;
namespace nn = loom::nn;
using loom::Array;
using loom::DType;
using loom::testing::allclose;
using loom::testing::grad_matches_fd;
using loom::testing::wave;

namespace {

struct Case {
  std::vector<std::int64_t> win, stride;
  lax::Padding pad;
};

std::vector<Case> cases() {
  return {{{1, 2, 2, 1}, {1, 2, 2, 1}, lax::Padding::valid()},  // the CNN's pool (divisor 4)
          {{1, 3, 3, 1}, {1, 2, 2, 1}, lax::Padding::same()},   // divisor 9: not a power of 2
          {{1, 3, 2, 1}, {1, 1, 1, 1}, lax::Padding::explicit_({{0, 0}, {1, 2}, {0, 1}, {0, 0}})}};
}

Array two_step(const Array& x, const Case& c) {
  double div = 1;
  for (std::int64_t w : c.win) div *= double(w);
  return lax::reduce_window(x, lax::ReduceOp::sum, c.win, c.stride, c.pad) / div;
}

// Exact equality (both paths divide the same float sums by the same float divisor).
void expect_identical(const Array& a, const Array& b) {
  ASSERT_EQ(a.shape(), b.shape());
  ASSERT_EQ(a.dtype(), b.dtype());
  EXPECT_EQ(a.to_vector<double>(), b.to_vector<double>());
}

TEST(PoolingFused, MeanEqualsSumThenDivideBitForBit) {
  for (const Case& c : cases()) {
    for (DType dt : {DType::float32, DType::float64}) {
      const Array x = wave({3, 9, 7, 5}, 0.7, dt);
      expect_identical(lax::reduce_window_mean(x, c.win, c.stride, c.pad), two_step(x, c));
      const Array gy = wave(two_step(x, c).shape(), 1.3, dt);
      const Array g1 = loom::grad([&](const Array& xi) {
        return jnp::sum(lax::reduce_window_mean(xi, c.win, c.stride, c.pad) * gy);
      })(x);
      const Array g2 =
          loom::grad([&](const Array& xi) { return jnp::sum(two_step(xi, c) * gy); })(x);
      expect_identical(g1, g2);
    }
  }
}

TEST(PoolingFused, AvgPoolEqualsSumThenDivide) {
  const Array x = wave({2, 8, 8, 4}, 0.2, DType::float32);
  const Array y = nn::avg_pool(x, {2, 2}, {2, 2});
  expect_identical(y, lax::reduce_window(x, lax::ReduceOp::sum, {1, 2, 2, 1}, {1, 2, 2, 1},
                                         lax::Padding::valid()) /
                          4.0);
}

TEST(PoolingFused, Float64GradientsMatchFiniteDifferences) {
  for (const Case& c : cases()) {
    const Array x = wave({2, 6, 5, 3}, 0.4);
    const Array gy = wave(two_step(x, c).shape(), 0.9);
    EXPECT_TRUE(grad_matches_fd(
        [&](const Array& xi) {
          return jnp::sum(jnp::sin(lax::reduce_window_mean(xi, c.win, c.stride, c.pad)) * gy);
        },
        x));
  }
}

TEST(PoolingFused, SecondOrderJitAndVmap) {
  const Case c = cases()[1];
  const Array x = wave({2, 6, 6, 3}, 0.5);
  // Second order through the transpose's own VJP (the mean again).
  auto hess = [&](auto pool) {
    auto inner = loom::grad([&](const Array& xi) { return jnp::sum(jnp::square(pool(xi))); });
    return loom::grad([&](const Array& xi) { return jnp::sum(jnp::sin(inner(xi))); })(x);
  };
  const Array h1 =
      hess([&](const Array& xi) { return lax::reduce_window_mean(xi, c.win, c.stride, c.pad); });
  const Array h2 = hess([&](const Array& xi) { return two_step(xi, c); });
  EXPECT_TRUE(allclose(h1, h2, 1e-12, 1e-12));
  auto loss = [&](const Array& xi) {
    return loom::grad([&](const Array& xj) {
      return jnp::sum(jnp::tanh(lax::reduce_window_mean(xj, c.win, c.stride, c.pad)));
    })(xi);
  };
  auto jitted = loom::jit([&](const Array& xi) { return loss(xi); });
  EXPECT_TRUE(allclose(jitted(x), loss(x), 1e-12, 1e-12));
  EXPECT_TRUE(allclose(jitted(x * 2.0), loss(x * 2.0), 1e-12, 1e-12));  // the replay
  const Array xs = jnp::stack({x, x * 0.5});
  const Array ys = loom::vmap(
      [&](const Array& xi) { return lax::reduce_window_mean(xi, c.win, c.stride, c.pad); })(xs);
  for (int i = 0; i < 2; ++i) {
    EXPECT_TRUE(allclose(jnp::take(ys, Array::scalar(i), 0), two_step(i == 0 ? x : x * 0.5, c),
                         1e-12, 1e-12));
  }
}

TEST(PoolingFused, Errors) {
  const Array xi = jnp::zeros({1, 4, 4, 1}).astype(DType::int32);
  EXPECT_TRUE(loom::testing::throws_error(
      [&] {
        lax::reduce_window_mean(xi, {1, 2, 2, 1}, {1, 2, 2, 1}, lax::Padding::valid());
      },
      {"reduce_window_mean", "floating"}));
  EXPECT_TRUE(loom::testing::throws_error(
      [&] {
        lax::reduce_window_mean(jnp::zeros({1, 4, 4, 1}), {2, 2}, {2, 2}, lax::Padding::valid());
      },
      {"reduce_window_mean", "one entry per dimension"}));
}

}  // namespace
