// lax::conv_general_dilated_bias (conv + bias as one primitive; oneDNN adds the bias inside the
// float32 conv) against the general two-step path conv_general_dilated(...) + bias, on both
// float32 paths (dnnl_conv::ForcePath), float64 finite-difference gradients, second order,
// jit, vmap and nn::Conv.
#include <gtest/gtest.h>

#include "lax/dnnl_conv.hpp"
#include "loom/loom.hpp"
#include "loom/nn.hpp"
#include "test_util.hpp"

namespace lax = loom::lax;
namespace jnp = loom::numpy;
namespace nn = loom::nn;
namespace dc = loom::lax::dnnl_conv;
using loom::Array;
using loom::DType;
using loom::testing::allclose;
using loom::testing::grad_matches_fd;
using loom::testing::throws_error;
using loom::testing::wave;

namespace {

struct Case {
  loom::Shape x, w;
  std::vector<std::int64_t> strides;
  lax::Padding pad;
  std::int64_t groups = 1;
};

// The MNIST CNN's two convs (batch reduced), a strided one and a grouped one.
std::vector<Case> cases() {
  return {{{4, 28, 28, 1}, {3, 3, 1, 32}, {1, 1}, lax::Padding::same()},
          {{4, 14, 14, 32}, {3, 3, 32, 64}, {1, 1}, lax::Padding::same()},
          {{3, 11, 9, 6}, {3, 2, 6, 8}, {2, 1}, lax::Padding::valid()},
          {{2, 9, 9, 6}, {3, 3, 2, 9}, {1, 1}, lax::Padding::same(), 3}};
}

Array fused(const Array& x, const Array& w, const Array& b, const Case& c) {
  return lax::conv_general_dilated_bias(x, w, b, c.strides, c.pad, {}, {}, c.groups);
}
Array two_step(const Array& x, const Array& w, const Array& b, const Case& c) {
  return lax::conv_general_dilated(x, w, c.strides, c.pad, {}, {}, c.groups) + b;
}

void expect_identical(const Array& a, const Array& b) {
  ASSERT_EQ(a.shape(), b.shape());
  ASSERT_EQ(a.dtype(), b.dtype());
  EXPECT_EQ(a.to_vector<double>(), b.to_vector<double>());
}

TEST(ConvBias, EqualsConvThenAddBitForBitOnEveryPath) {
  for (dc::Path path : {dc::Path::automatic, dc::Path::dnnl, dc::Path::im2col}) {
    const dc::ForcePath force(path);
    for (const Case& c : cases()) {
      for (DType dt : {DType::float32, DType::float64}) {
        const Array x = wave(c.x, 0.3, dt), w = wave(c.w, 0.7, dt),
                    b = wave({c.w[3]}, 1.1, dt) * 3.0;
        const std::int64_t before = dc::executions();
        const Array y = fused(x, w, b, c);
        if (path == dc::Path::dnnl && dt == DType::float32) {
          EXPECT_EQ(dc::executions() - before, 1);  // the fused oneDNN primitive ran
        }
        if (dt == DType::float32 && path != dc::Path::im2col) {
          // oneDNN's fused bias is not added to the finished sum (its kernels start or fold
          // the accumulation with it), so float32 values differ from conv + bias in the last
          // bits (at the tolerance conv_dnnl_test uses); im2col and float64 are exact.
          EXPECT_TRUE(allclose(y, two_step(x, w, b, c), 1e-5, 1e-5));
        } else {
          expect_identical(y, two_step(x, w, b, c));
        }
        // Gradients: the same conv kernels, and db = unbroadcast(gy) as add's VJP.
        const Array gy = wave(y.shape(), 0.2, dt);
        auto grads = [&](auto f) {
          return std::vector<Array>{
              loom::grad([&](const Array& xi) { return jnp::sum(f(xi, w, b, c) * gy); })(x),
              loom::grad([&](const Array& wi) { return jnp::sum(f(x, wi, b, c) * gy); })(w),
              loom::grad([&](const Array& bi) { return jnp::sum(f(x, w, bi, c) * gy); })(b)};
        };
        const auto g1 = grads(fused), g2 = grads(two_step);
        for (std::size_t i = 0; i < 3; ++i) expect_identical(g1[i], g2[i]);
      }
    }
  }
}

TEST(ConvBias, Float64GradientsMatchFiniteDifferences) {
  const Case c{{2, 6, 5, 3}, {3, 3, 3, 4}, {1, 1}, lax::Padding::same()};
  const Array x = wave(c.x, 0.3), w = wave(c.w, 0.7), b = wave({4}, 1.1);
  const Array gy = wave({2, 6, 5, 4}, 0.5);
  EXPECT_TRUE(grad_matches_fd(
      [&](const Array& xi) { return jnp::sum(jnp::sin(fused(xi, w, b, c)) * gy); }, x));
  EXPECT_TRUE(grad_matches_fd(
      [&](const Array& wi) { return jnp::sum(jnp::sin(fused(x, wi, b, c)) * gy); }, w));
  EXPECT_TRUE(grad_matches_fd(
      [&](const Array& bi) { return jnp::sum(jnp::sin(fused(x, w, bi, c)) * gy); }, b));
}

TEST(ConvBias, SecondOrderJitAndVmap) {
  const Case c{{3, 10, 10, 3}, {3, 3, 3, 6}, {2, 2}, lax::Padding::same()};
  const Array x = wave(c.x, 0.4, DType::float32), w = wave(c.w, 0.8, DType::float32),
              b = wave({6}, 0.1, DType::float32);
  const dc::ForcePath force(dc::Path::dnnl);
  auto hess = [&](auto f) {
    auto inner = loom::grad([&](const Array& bi) { return jnp::sum(jnp::square(f(x, w, bi, c))); });
    return loom::grad([&](const Array& bi) { return jnp::sum(jnp::sin(inner(bi))); })(b);
  };
  EXPECT_TRUE(allclose(hess(fused), hess(two_step), 1e-3, 1e-3));  // sin amplifies rounding
  auto grad_w = [&](const Array& xi, const Array& wi) {
    return loom::grad([&](const Array& wj) { return jnp::sum(jnp::tanh(fused(xi, wj, b, c))); })(
        wi);
  };
  auto jitted = loom::jit([&](const Array& xi, const Array& wi) { return grad_w(xi, wi); });
  EXPECT_TRUE(allclose(jitted(x, w), grad_w(x, w), 1e-5, 1e-5));
  EXPECT_TRUE(allclose(jitted(x * 0.5, w), grad_w(x * 0.5, w), 1e-5, 1e-5));  // the replay
  // vmap over inputs (folded into N) and over biases (a loop): each row its own eager value.
  const Array xs = jnp::stack({x, x * 0.5});
  const Array ys = loom::vmap([&](const Array& xi) { return fused(xi, w, b, c); })(xs);
  const Array bs = jnp::stack({b, b * 2.0});
  const Array zs = loom::vmap([&](const Array& bi) { return fused(x, w, bi, c); })(bs);
  for (int i = 0; i < 2; ++i) {
    EXPECT_TRUE(allclose(jnp::take(ys, Array::scalar(i), 0),
                         two_step(i == 0 ? x : x * 0.5, w, b, c), 1e-6, 1e-6));
    EXPECT_TRUE(allclose(jnp::take(zs, Array::scalar(i), 0),
                         two_step(x, w, i == 0 ? b : b * 2.0, c), 1e-6, 1e-6));
  }
}

TEST(ConvBias, NnConvWithBiasEqualsConvPlusBias) {
  const Array x = wave({2, 12, 12, 3}, 0.3, DType::float32);
  nn::Conv conv{.features = 8, .kernel_size = {3, 3}};
  // A non-zero bias (the default init is zeros, which would hide the add).
  loom::Tree vars = conv.init(loom::random::key(0), x);
  const Array k = vars.at("params").at("kernel").leaf(), b = wave({8}, 0.6, DType::float32);
  const Array y = conv.apply(loom::Tree{{"params", loom::Tree{{"kernel", k}, {"bias", b}}}}, x);
  // oneDNN's fused bias: float32 rounding of another order (see the first test).
  EXPECT_TRUE(
      allclose(y, lax::conv_general_dilated(x, k, {1, 1}, lax::Padding::same()) + b, 1e-6, 1e-6));
}

TEST(ConvBias, Errors) {
  const Array x = jnp::zeros({1, 5, 5, 2}), w = jnp::zeros({3, 3, 2, 4});
  EXPECT_TRUE(throws_error(
      [&] {
        lax::conv_general_dilated_bias(x, w, jnp::zeros({3}), {1, 1}, lax::Padding::same());
      },
      {"conv_general_dilated_bias", "(3,)", "4 output channels"}));
  EXPECT_TRUE(throws_error(
      [&] {
        lax::conv_general_dilated_bias(x, w, jnp::zeros({1, 4}), {1, 1}, lax::Padding::same());
      },
      {"conv_general_dilated_bias", "bias"}));
  EXPECT_TRUE(throws_error(
      [&] {
        lax::conv_general_dilated_bias(x, jnp::zeros({3, 3, 3, 4}), jnp::zeros({4}), {1, 1},
                                       lax::Padding::same());
      },
      {"conv_general_dilated", "channel mismatch"}));
}

}  // namespace
