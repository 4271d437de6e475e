// nn::pool, nn::avg_pool, nn::max_pool, nn::min_pool.
//
// Golden values: (1) flax tests/linen/linen_test.py PoolTest (test_avg_pool,
// test_avg_pool_no_batch, test_max_pool, test_avg_pool_padding_same,
// test_pooling_variable_batch_dims, test_pooling_no_batch_dims), values and gradients as
// printed there; (2) NumPy fixtures tests/data/conv_golden.txt ("pool_" cases), written by
// tests/data/conv_golden.py by direct window enumeration.
#include <gtest/gtest.h>

#include <string>

#include "conv_golden.hpp"
#include "loom/loom.hpp"
#include "loom/nn.hpp"
#include "test_util.hpp"

namespace nn = loom::nn;
namespace jnp = loom::numpy;
namespace lax = loom::lax;
using loom::Array;
using loom::DType;
using loom::Shape;
using loom::testing::allclose;
using loom::testing::golden_array;
using loom::testing::golden_ints;
using loom::testing::golden_names;
using loom::testing::golden_padding;
using loom::testing::grad_matches_fd;
using loom::testing::throws_error;
using loom::testing::wave;

namespace {

Array f32(std::vector<double> v, Shape s) {
  return Array(v, s, DType::float32);
}

Array full(Shape shape, double v) {
  return jnp::full_like(jnp::zeros(shape), v);
}

Array run_case(const loom::testing::GoldenCase& c, const Array& x) {
  const std::string op = c.at("op")[0];
  const auto window = golden_ints(c, "window");
  const auto strides = golden_ints(c, "strides");
  const nn::PaddingLike padding = golden_padding(c);
  const std::string init = c.at("init")[0];
  if (op == "avg") {
    return nn::avg_pool(x, window, strides, padding, golden_ints(c, "count_include_pad")[0] == 1);
  }
  const lax::ReduceOp rop = op == "max"   ? lax::ReduceOp::max
                            : op == "min" ? lax::ReduceOp::min
                                          : lax::ReduceOp::sum;
  if (init != "none") return nn::pool(x, std::stod(init), rop, window, strides, padding);
  if (op == "max") return nn::max_pool(x, window, strides, padding);
  if (op == "min") return nn::min_pool(x, window, strides, padding);
  return nn::pool(x, 0.0, rop, window, strides, padding);
}

TEST(PoolingGolden, AvgMaxMinPoolAndInitValues) {
  const auto names = golden_names("pool_");
  ASSERT_EQ(names.size(), 9u);
  for (const auto& name : names) {
    SCOPED_TRACE(name);
    const auto& c = loom::testing::conv_golden().at(name);
    const Array x = golden_array(c, "x", DType::float64);
    const Array y = run_case(c, x);
    EXPECT_EQ(y.dtype(), DType::float64);
    EXPECT_TRUE(allclose(y, golden_array(c, "out", DType::float64), 1e-12, 1e-12));
    // Differentiable: FD on a tie-free input of the same shape.
    const Array xs = wave(x.shape(), 0.7);
    const Array gy = wave(y.shape(), 1.1);
    EXPECT_TRUE(
        grad_matches_fd([&](const Array& xi) { return jnp::sum(run_case(c, xi) * gy); }, xs));
  }
}

// PoolTest.test_avg_pool and test_avg_pool_no_batch (count_include_pad True/False).
TEST(Pooling, FlaxAvgPool) {
  const Array expected_grad = f32({0.25, 0.5, 0.25, 0.5, 1.0, 0.5, 0.25, 0.5, 0.25}, {3, 3});
  for (bool cip : {true, false}) {
    for (bool batched : {true, false}) {
      SCOPED_TRACE(std::to_string(cip) + std::to_string(batched));
      const Shape s = batched ? Shape{1, 3, 3, 1} : Shape{3, 3, 1};
      auto pool = [&](const Array& x) { return nn::avg_pool(x, {2, 2}, {}, "VALID", cip); };
      const Array x = full(s, 2.0);
      EXPECT_TRUE(allclose(pool(x), full(batched ? Shape{1, 2, 2, 1} : Shape{2, 2, 1}, 2.0)));
      const Array g = loom::grad([&](const Array& xi) { return jnp::sum(pool(xi)); })(x);
      EXPECT_TRUE(allclose(g, jnp::reshape(expected_grad, s.to_vector())));
    }
  }
}

// PoolTest.test_max_pool: arange(9) in a 3x3 image.
TEST(Pooling, FlaxMaxPool) {
  const Array x = f32({0, 1, 2, 3, 4, 5, 6, 7, 8}, {1, 3, 3, 1});
  auto pool = [](const Array& xi) { return nn::max_pool(xi, {2, 2}); };
  EXPECT_TRUE(allclose(pool(x), f32({4, 5, 7, 8}, {1, 2, 2, 1})));
  const Array g = loom::grad([&](const Array& xi) { return jnp::sum(pool(xi)); })(x);
  EXPECT_TRUE(allclose(g, f32({0, 0, 0, 0, 1, 1, 0, 1, 1}, {1, 3, 3, 1})));
}

// PoolTest.test_avg_pool_padding_same.
TEST(Pooling, FlaxAvgPoolPaddingSame) {
  const Array x = f32({1, 2, 3, 4}, {1, 2, 2, 1});
  EXPECT_TRUE(allclose(nn::avg_pool(x, {2, 2}, {}, "SAME", true),
                       f32({10.0 / 4, 6.0 / 4, 7.0 / 4, 4.0 / 4}, {1, 2, 2, 1})));
  EXPECT_TRUE(allclose(nn::avg_pool(x, {2, 2}, {}, "SAME", false),
                       f32({10.0 / 4, 6.0 / 2, 7.0 / 2, 4.0 / 1}, {1, 2, 2, 1})));
}

// PoolTest.test_pooling_variable_batch_dims and test_pooling_no_batch_dims.
TEST(Pooling, FlaxBatchDims) {
  EXPECT_EQ(nn::max_pool(jnp::zeros({1, 8, 32, 32, 3}), {2, 2}, {2, 2}).shape(),
            (Shape{1, 8, 16, 16, 3}));
  EXPECT_EQ(nn::max_pool(jnp::zeros({32, 32, 3}), {2, 2}, {2, 2}).shape(), (Shape{16, 16, 3}));
  EXPECT_EQ(nn::min_pool(jnp::zeros({2, 3, 9, 4}), {3}, {2}, "SAME").shape(), (Shape{2, 3, 5, 4}));
}

// Analytic: min_pool is -max_pool(-x); a window-1 pool is the identity.
TEST(Pooling, AnalyticIdentities) {
  const Array x = wave({2, 5, 4, 3}, 0.2);
  EXPECT_TRUE(allclose(nn::min_pool(x, {2, 3}, {1, 2}, "SAME"),
                       -nn::max_pool(-x, {2, 3}, {1, 2}, "SAME"), 0, 0));
  EXPECT_TRUE(allclose(nn::avg_pool(x, {1, 1}), x, 0, 0));
}

struct BadPool : nn::Module<BadPool> {
  Array call(const Array& x) const { return nn::max_pool(x, {2, 2}, {}, "CIRCULAR"); }
};
struct Outer : nn::Module<Outer> {
  Array call(const Array& x) const { return BadPool{}(x); }
};

TEST(Pooling, Errors) {
  // Inside a module, the error names the module's path.
  EXPECT_TRUE(throws_error(
      [] {
        Outer{}.init(loom::random::key(0), jnp::ones({1, 4, 4, 1}));
      },
      {"max_pool", "padding 'CIRCULAR'", "/BadPool_0"}));
  const Array x = jnp::ones({1, 4, 4, 2});
  EXPECT_TRUE(throws_error(
      [&] {
        nn::max_pool(x, {2, 2}, {1});
      },
      {"max_pool", "len((2, 2)) must equal len((1,))"}));
  EXPECT_TRUE(throws_error(
      [&] {
        nn::avg_pool(jnp::ones({4, 2}), {2, 2});
      },
      {"avg_pool", "(4, 2)", "rank >= 3"}));
  EXPECT_TRUE(throws_error(
      [&] {
        nn::max_pool(x, {2, 2}, {}, {{1, 1}});
      },
      {"padding ((1, 1),)", "2 (low, high) pairs"}));
  EXPECT_TRUE(throws_error(
      [&] {
        nn::max_pool(x, {2, 2}, {}, "CIRCULAR");
      },
      {"padding 'CIRCULAR'", "'SAME', 'VALID'"}));
  EXPECT_TRUE(throws_error([&] { nn::max_pool(x, {2, 2}, {}, 1); }, {"padding 1"}));
  EXPECT_TRUE(throws_error([&] { nn::min_pool(x, {}); }, {"window_shape must not be empty"}));
  EXPECT_TRUE(throws_error([&] { nn::avg_pool(x, {0, 2}); }, {"window", "positive"}));
}

}  // namespace
