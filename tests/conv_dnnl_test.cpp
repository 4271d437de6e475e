// conv_general_dilated's float32 oneDNN path (src/lax/dnnl_conv.cpp) against its im2col + sgemm
// path, which conv_test.cpp checks against Flax's and NumPy's values and float64 finite
// differences. Forward, d(input) and d(kernel) on many geometries: strides, SAME/VALID/explicit
// (asymmetric, wider than the kernel) padding, rhs dilation, feature groups (depthwise too),
// batch 1, odd sizes, 1-D and 3-D; and under jit and vmap.
//
// Tolerance: the two paths sum the K * C_in products of every output in different orders
// (oneDNN blocks over channels and vectorizes over outputs, im2col's GEMM over K * C_in), so
// they agree to float32 rounding of those sums only: relative and absolute 1e-4 for sums of at
// most ~2000 terms of magnitude <= 1 (float32 epsilon 1.2e-7 times sqrt(terms) times the sum's
// magnitude, with a wide margin).
#include <gtest/gtest.h>

#include <string>

#include "lax/dnnl_conv.hpp"
#include "loom/loom.hpp"
#include "test_util.hpp"

namespace lax = loom::lax;
namespace jnp = loom::numpy;
namespace dc = loom::lax::dnnl_conv;
using loom::Array;
using loom::DType;
using loom::Shape;
using loom::Tree;
using loom::testing::allclose;
using loom::testing::wave;

namespace {

struct ConvCase {
  std::string name;
  Shape x, w;
  std::vector<std::int64_t> strides;
  lax::Padding padding;
  std::vector<std::int64_t> rhs_dilation;
  std::int64_t groups = 1;
};

std::vector<ConvCase> cases() {
  using P = lax::Padding;
  return {
      {"same3x3", {2, 9, 9, 5}, {3, 3, 5, 7}, {1, 1}, P::same(), {}},
      {"valid3x3", {2, 9, 9, 5}, {3, 3, 5, 7}, {1, 1}, P::valid(), {}},
      {"stride2_same_odd", {3, 11, 7, 4}, {3, 3, 4, 6}, {2, 2}, P::same(), {}},
      {"stride2_valid_even", {2, 10, 12, 3}, {3, 3, 3, 8}, {2, 2}, P::valid(), {}},
      {"stem7x7_s2", {2, 16, 16, 3}, {7, 7, 3, 16}, {2, 2}, P::same(), {}},
      {"stride3_kernel2", {2, 10, 11, 4}, {2, 2, 4, 5}, {3, 3}, P::valid(), {}},
      {"mixed_strides", {2, 9, 10, 4}, {3, 2, 4, 5}, {1, 2}, P::same(), {}},
      {"explicit_asym", {2, 8, 9, 3}, {3, 3, 3, 4}, {1, 1}, P::explicit_({{0, 2}, {1, 0}}), {}},
      {"explicit_wide", {2, 6, 7, 3}, {3, 3, 3, 4}, {2, 1}, P::explicit_({{4, 3}, {2, 5}}), {}},
      {"dilation2", {2, 12, 12, 4}, {3, 3, 4, 6}, {1, 1}, P::same(), {2, 2}},
      {"dilation_mixed_stride", {2, 13, 11, 3}, {3, 2, 3, 5}, {2, 1}, P::valid(), {2, 3}},
      {"groups2", {2, 9, 9, 8}, {3, 3, 4, 6}, {1, 1}, P::same(), {}, 2},
      {"groups4_stride2", {2, 10, 9, 8}, {3, 3, 2, 8}, {2, 2}, P::same(), {}, 4},
      {"depthwise", {2, 9, 9, 6}, {3, 3, 1, 6}, {1, 1}, P::same(), {}, 6},
      {"depthwise_mult2", {2, 9, 8, 4}, {3, 3, 1, 8}, {1, 1}, P::valid(), {}, 4},
      {"batch1", {1, 13, 13, 5}, {3, 3, 5, 9}, {1, 1}, P::same(), {}},
      {"one_by_one", {2, 7, 9, 6}, {1, 1, 6, 10}, {1, 1}, P::valid(), {}},
      {"one_by_one_s2", {2, 9, 9, 6}, {1, 1, 6, 10}, {2, 2}, P::valid(), {}},
      {"in_channels1", {4, 11, 11, 1}, {3, 3, 1, 8}, {1, 1}, P::same(), {}},
      {"kernel_is_input", {2, 5, 5, 3}, {5, 5, 3, 4}, {1, 1}, P::valid(), {}},
      {"wide_channels", {2, 5, 5, 40}, {3, 3, 40, 24}, {1, 1}, P::same(), {}},
      {"conv1d_same", {3, 17, 5}, {3, 5, 7}, {1}, P::same(), {}},
      {"conv1d_stride_dil", {2, 23, 4}, {4, 4, 6}, {2}, P::explicit_({{1, 3}}), {2}},
      {"conv1d_groups", {2, 15, 6}, {5, 2, 9}, {1}, P::valid(), {}, 3},
      {"conv3d_same", {2, 5, 6, 7, 3}, {3, 3, 3, 3, 4}, {1, 1, 1}, P::same(), {}},
      {"conv3d_stride", {1, 7, 6, 5, 2}, {3, 2, 3, 2, 5}, {2, 1, 2}, P::valid(), {1, 2, 1}},
  };
}

Array conv_of(const ConvCase& c, const Array& x, const Array& w) {
  return lax::conv_general_dilated(x, w, c.strides, c.padding, {}, c.rhs_dilation, c.groups);
}

struct Results {
  Array y, dx, dw;
};

// y, and the cotangents of x and w at a fixed cotangent of y, on the forced path.
Results run(const ConvCase& c, dc::Path path) {
  const dc::ForcePath force(path);
  const Array x = wave(c.x, 0.1, DType::float32), w = wave(c.w, 0.7, DType::float32);
  Tree params = {{"x", x}, {"w", w}};
  auto [y, pullback] = loom::vjp(
      [&](const Tree& p) { return conv_of(c, p.dict().at("x").leaf(), p.dict().at("w").leaf()); },
      params);
  const Tree g = pullback(wave(y.shape(), 1.3, DType::float32));
  return {y, g.dict().at("x").leaf(), g.dict().at("w").leaf()};
}

TEST(ConvDnnl, ForwardAndBothGradientsMatchIm2col) {
  for (const ConvCase& c : cases()) {
    SCOPED_TRACE(c.name);
    const std::int64_t before = dc::executions();
    const Results d = run(c, dc::Path::dnnl);
    // The forward and both backward kernels all ran on oneDNN.
    EXPECT_EQ(dc::executions() - before, 3);
    const std::int64_t mid = dc::executions();
    const Results r = run(c, dc::Path::im2col);
    EXPECT_EQ(dc::executions(), mid);
    ASSERT_EQ(d.y.dtype(), DType::float32);
    EXPECT_TRUE(allclose(d.y, r.y, 1e-4, 1e-4));
    EXPECT_TRUE(allclose(d.dx, r.dx, 1e-4, 1e-4));
    EXPECT_TRUE(allclose(d.dw, r.dw, 1e-4, 1e-4));
  }
}

// The automatic choice (usable()) gives the same values whichever path it takes.
TEST(ConvDnnl, AutomaticPathMatchesIm2col) {
  for (const ConvCase& c : cases()) {
    SCOPED_TRACE(c.name);
    const Results a = run(c, dc::Path::automatic), r = run(c, dc::Path::im2col);
    EXPECT_TRUE(allclose(a.y, r.y, 1e-4, 1e-4));
    EXPECT_TRUE(allclose(a.dx, r.dx, 1e-4, 1e-4));
    EXPECT_TRUE(allclose(a.dw, r.dw, 1e-4, 1e-4));
  }
}

TEST(ConvDnnl, AutomaticPathPicksOnednnForLargeConvsOnly) {
  const ConvCase big{"cnn_like", {8, 14, 14, 8}, {3, 3, 8, 16}, {1, 1}, lax::Padding::same(), {}};
  std::int64_t before = dc::executions();
  (void)run(big, dc::Path::automatic);
  EXPECT_EQ(dc::executions() - before, 3);  // 1568 output pixels: all three kernels
  // ResNet's last stage (8x2x2 outputs): the kernel reorder would dominate, im2col runs.
  const ConvCase deep{"deep", {8, 2, 2, 16}, {3, 3, 16, 16}, {1, 1}, lax::Padding::same(), {}};
  before = dc::executions();
  (void)run(deep, dc::Path::automatic);
  EXPECT_EQ(dc::executions(), before);
}

// Negative padding (cropping), lhs dilation and float64 stay on im2col, and agree with it.
TEST(ConvDnnl, FallbacksAgreeWithIm2col) {
  const Array x = wave({2, 9, 9, 3}, 0.2, DType::float32),
              w = wave({3, 3, 3, 4}, 0.5, DType::float32);
  const dc::ForcePath force(dc::Path::dnnl);
  std::int64_t before = dc::executions();
  Array crop = lax::conv_general_dilated(x, w, {1, 1}, lax::Padding::explicit_({{-1, 2}, {1, -2}}));
  Array dil =
      lax::conv_general_dilated(x, w, {1, 1}, lax::Padding::explicit_({{2, 2}, {2, 2}}), {2, 2});
  Array f64 = lax::conv_general_dilated(x.astype(DType::float64), w.astype(DType::float64), {1, 1},
                                        lax::Padding::same());
  EXPECT_EQ(dc::executions(), before);
  EXPECT_EQ(f64.dtype(), DType::float64);
  const dc::ForcePath im2col(dc::Path::im2col);
  EXPECT_TRUE(allclose(
      crop, lax::conv_general_dilated(x, w, {1, 1}, lax::Padding::explicit_({{-1, 2}, {1, -2}})), 0,
      0));
  EXPECT_TRUE(allclose(
      dil,
      lax::conv_general_dilated(x, w, {1, 1}, lax::Padding::explicit_({{2, 2}, {2, 2}}), {2, 2}), 0,
      0));
  // float32 oneDNN vs float64 im2col: float32 rounding.
  EXPECT_TRUE(allclose(
      f64.astype(DType::float32),
      [&] {
        const dc::ForcePath on(dc::Path::dnnl);
        return lax::conv_general_dilated(x, w, {1, 1}, lax::Padding::same());
      }(),
      1e-5, 1e-5));
}

// Second order: the VJP's kernels are themselves differentiated through oneDNN. Both float32
// paths are compared with the float64 (im2col) value: sin() of the inner gradient (values ~10)
// amplifies each path's rounding alike.
TEST(ConvDnnl, SecondOrderMatchesFloat64) {
  auto hvp = [](dc::Path path, DType dt) {
    const dc::ForcePath force(path);
    const Array x = wave({2, 8, 8, 3}, 0.3, dt), w = wave({3, 3, 3, 5}, 0.9, dt);
    auto inner = loom::grad([&](const Array& xi) {
      return jnp::sum(jnp::square(lax::conv_general_dilated(xi, w, {1, 1}, lax::Padding::same())));
    });
    return loom::grad([&](const Array& xi) { return jnp::sum(jnp::sin(inner(xi))); })(x);
  };
  const Array ref = hvp(dc::Path::im2col, DType::float64).astype(DType::float32);
  const std::int64_t before = dc::executions();
  const Array d = hvp(dc::Path::dnnl, DType::float32);
  EXPECT_GE(dc::executions() - before, 4);
  EXPECT_TRUE(allclose(d, ref, 2e-3, 2e-3));
  EXPECT_TRUE(allclose(hvp(dc::Path::im2col, DType::float32), ref, 2e-3, 2e-3));
}

TEST(ConvDnnl, JitAndVmapMatchEager) {
  const Array x = wave({4, 10, 10, 3}, 0.4, DType::float32),
              w = wave({3, 3, 3, 6}, 0.8, DType::float32);
  const dc::ForcePath force(dc::Path::dnnl);
  auto loss = [](const Array& xi, const Array& wi) {
    return jnp::sum(jnp::tanh(lax::conv_general_dilated(xi, wi, {2, 2}, lax::Padding::same())));
  };
  auto grad_w = [&](const Array& xi, const Array& wi) {
    return loom::grad([&](const Array& wj) { return loss(xi, wj); })(wi);
  };
  const Array eager = grad_w(x, w);
  auto jitted = loom::jit([&](const Array& xi, const Array& wi) { return grad_w(xi, wi); });
  EXPECT_TRUE(allclose(jitted(x, w), eager, 1e-5, 1e-5));
  EXPECT_TRUE(allclose(jitted(x, w), eager, 1e-5, 1e-5));  // the replay
  // vmap over a batch of 2 kernels: each row equals its own eager conv.
  const Array ws = jnp::stack({w, w * 0.5});
  const Array ys = loom::vmap([&](const Array& wi) {
    return lax::conv_general_dilated(x, wi, {1, 1}, lax::Padding::same());
  })(ws);
  for (int i = 0; i < 2; ++i) {
    const Array yi =
        lax::conv_general_dilated(x, i == 0 ? w : w * 0.5, {1, 1}, lax::Padding::same());
    EXPECT_TRUE(allclose(jnp::take(ys, Array::scalar(i), 0), yi, 1e-4, 1e-4));
  }
}

}  // namespace
