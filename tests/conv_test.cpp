// nn::Conv, nn::ConvTranspose and lax::conv_transpose.
//
// Golden values: (1) the cases of flax tests/linen/linen_linear_test.py (LinearTest.test_conv,
// test_multibatch_input_conv, test_single_input_conv, test_single_input_masked_conv,
// test_group_conv, test_circular_conv_{1d,2d}_{constant,custom}, test_circular_conv_1d_dilation,
// test_reflect_conv_{1d,2d}_custom, test_causal_conv1d, test_conv_transpose,
// test_multibatch_input_conv_transpose, test_single_input_{masked_,}conv_transpose,
// test_circular_conv_transpose_*, test_transpose_kernel_conv_transpose), cited per test, and the
// shapes printed in the docstrings of flax/linen/linear.py (Conv, ConvTranspose); (2) NumPy
// fixtures tests/data/conv_golden.txt written by tests/data/conv_golden.py (np.pad's wrap and
// reflect modes, XLA's conv definition, a scatter-form transposed conv).
#include <gtest/gtest.h>

#include <string>

#include "conv_golden.hpp"
#include "loom/loom.hpp"
#include "loom/nn.hpp"
#include "test_util.hpp"

namespace nn = loom::nn;
namespace jnp = loom::numpy;
namespace lax = loom::lax;
namespace rnd = loom::random;
using loom::Array;
using loom::DType;
using loom::Shape;
using loom::Tree;
using loom::testing::allclose;
using loom::testing::golden_array;
using loom::testing::golden_ints;
using loom::testing::golden_names;
using loom::testing::golden_padding;
using loom::testing::grad_matches_fd;
using loom::testing::throws_error;
using loom::testing::wave;

namespace {

nn::initializers::Initializer fixed(Array value) {
  return [value](const rnd::Key&, const Shape&, DType dt) { return value.astype(dt); };
}

const nn::initializers::Initializer ones = nn::initializers::ones_init();

// Flax's `np.full(shape, v)`.
Array full(Shape shape, double v) {
  return jnp::full_like(jnp::zeros(shape), v);
}

Array iota_col(std::vector<double> v, Shape shape) {
  return Array(v, shape, DType::float32);
}

Shape kernel_shape(const Tree& v) {
  return v.at("params").at("kernel").leaf().shape();
}

// ---- NumPy fixtures ----------------------------------------------------------------------

TEST(ConvGolden, EveryPaddingModeGroupsDilationAndBatchDims) {
  const auto names = golden_names("conv_");
  ASSERT_EQ(names.size(), 12u);
  for (const auto& name : names) {
    SCOPED_TRACE(name);
    const auto& c = loom::testing::conv_golden().at(name);
    const Array x = golden_array(c, "x", DType::float64);
    const Array w = golden_array(c, "kernel", DType::float64);
    const bool has_bias = c.count("bias") > 0;
    std::vector<std::int64_t> ks;
    for (int i = 0; i < w.ndim() - 2; ++i) ks.push_back(w.shape()[i]);
    nn::Conv conv{.features = w.shape().back(),
                  .kernel_size = ks,
                  .strides = golden_ints(c, "strides"),
                  .padding = golden_padding(c),
                  .input_dilation = golden_ints(c, "input_dilation"),
                  .kernel_dilation = golden_ints(c, "kernel_dilation"),
                  .feature_group_count = golden_ints(c, "groups")[0],
                  .use_bias = has_bias,
                  .param_dtype = DType::float64};
    // init makes the kernel (and bias) shapes of the fixture.
    Tree v = conv.init(rnd::key(0), x);
    EXPECT_EQ(kernel_shape(v), w.shape());
    EXPECT_EQ(v.at("params").contains("bias"), has_bias);
    Tree params = {{"kernel", w}};
    if (has_bias) params.set("bias", golden_array(c, "bias", DType::float64));
    Array y = conv.apply(Tree{{"params", params}}, x);
    EXPECT_EQ(y.dtype(), DType::float64);
    EXPECT_TRUE(allclose(y, golden_array(c, "out", DType::float64), 1e-10, 1e-10));
  }
}

TEST(ConvTransposeGolden, SameValidExplicitCircularTransposeKernel) {
  const auto names = golden_names("convt_");
  ASSERT_EQ(names.size(), 8u);
  for (const auto& name : names) {
    SCOPED_TRACE(name);
    const auto& c = loom::testing::conv_golden().at(name);
    const Array x = golden_array(c, "x", DType::float64);
    const Array w = golden_array(c, "kernel", DType::float64);
    const bool has_bias = c.count("bias") > 0, tk = golden_ints(c, "transpose_kernel")[0] == 1;
    std::vector<std::int64_t> ks;
    for (int i = 0; i < w.ndim() - 2; ++i) ks.push_back(w.shape()[i]);
    nn::ConvTranspose layer{.features = tk ? w.shape()[w.ndim() - 2] : w.shape().back(),
                            .kernel_size = ks,
                            .strides = golden_ints(c, "strides"),
                            .padding = golden_padding(c),
                            .kernel_dilation = golden_ints(c, "kernel_dilation"),
                            .use_bias = has_bias,
                            .param_dtype = DType::float64,
                            .transpose_kernel = tk};
    Tree v = layer.init(rnd::key(0), x);
    EXPECT_EQ(kernel_shape(v), w.shape());
    Tree params = {{"kernel", w}};
    if (has_bias) params.set("bias", golden_array(c, "bias", DType::float64));
    Array y = layer.apply(Tree{{"params", params}}, x);
    EXPECT_TRUE(allclose(y, golden_array(c, "out", DType::float64), 1e-10, 1e-10));
  }
}

// ---- Flax's published tests --------------------------------------------------------------

// LinearTest.test_conv (use_bias True/False): ones (1, 8, 3), kernel (3,), VALID -> 10 / 9.
TEST(Conv, FlaxTestConv) {
  for (bool use_bias : {true, false}) {
    nn::Conv conv{.features = 4,
                  .kernel_size = {3},
                  .padding = "VALID",
                  .use_bias = use_bias,
                  .kernel_init = ones,
                  .bias_init = ones};
    auto [y, v] = conv.init_with_output(rnd::key(0), jnp::ones({1, 8, 3}));
    EXPECT_EQ(kernel_shape(v), (Shape{3, 3, 4}));
    EXPECT_TRUE(allclose(y, full({1, 6, 4}, use_bias ? 10.0 : 9.0)));
  }
}

// test_multibatch_input_conv: (2, 5, 8, 3) -> (2, 5, 6, 4); test_single_input_conv: (8, 3).
TEST(Conv, FlaxBatchDimsFlattenedAndUnbatched) {
  nn::Conv conv{.features = 4,
                .kernel_size = {3},
                .padding = "VALID",
                .kernel_init = ones,
                .bias_init = ones};
  auto [y, v] = conv.init_with_output(rnd::key(0), jnp::ones({2, 5, 8, 3}));
  EXPECT_EQ(kernel_shape(v), (Shape{3, 3, 4}));
  EXPECT_TRUE(allclose(y, full({2, 5, 6, 4}, 10.0)));
  auto [y1, v1] = conv.init_with_output(rnd::key(0), jnp::ones({8, 3}));
  EXPECT_TRUE(allclose(y1, full({6, 4}, 10.0)));
}

// test_single_input_masked_conv: mask = tril(ones((3, 3, 4))).
TEST(Conv, FlaxMaskedConv) {
  Array m = Array(std::vector<double>(36, 0.0), Shape{3, 3, 4}, DType::float32);
  std::vector<double> mv(36, 0.0);
  for (int a = 0; a < 3; ++a)
    for (int b = 0; b < 3; ++b)
      for (int c = 0; c < 4; ++c) mv[std::size_t((a * 3 + b) * 4 + c)] = c <= b ? 1.0 : 0.0;
  m = Array(mv, Shape{3, 3, 4}, DType::float32);
  nn::Conv conv{.features = 4,
                .kernel_size = {3},
                .padding = "VALID",
                .mask = m,
                .kernel_init = ones,
                .bias_init = ones};
  auto [y, v] = conv.init_with_output(rnd::key(0), jnp::ones({8, 3}));
  EXPECT_EQ(kernel_shape(v), (Shape{3, 3, 4}));
  std::vector<double> want;
  for (int r = 0; r < 6; ++r) want.insert(want.end(), {10.0, 7.0, 4.0, 1.0});
  EXPECT_TRUE(allclose(y, iota_col(want, {6, 4})));
}

// test_group_conv: (1, 8, 4), feature_group_count 2 -> kernel (3, 2, 4), all 7.
TEST(Conv, FlaxGroupConv) {
  nn::Conv conv{.features = 4,
                .kernel_size = {3},
                .padding = "VALID",
                .feature_group_count = 2,
                .kernel_init = ones,
                .bias_init = ones};
  auto [y, v] = conv.init_with_output(rnd::key(0), jnp::ones({1, 8, 4}));
  EXPECT_EQ(kernel_shape(v), (Shape{3, 2, 4}));
  EXPECT_TRUE(allclose(y, full({1, 6, 4}, 7.0)));
}

// test_circular_conv_1d_constant / 2d_constant (a subset of the parameter grid): all-ones
// kernel on all-ones input gives k * C_in (k^2 * C_in) everywhere, output size = input size.
TEST(Conv, FlaxCircularConstant) {
  for (std::int64_t k : {1, 2, 3, 9}) {
    for (std::int64_t n : {1, 8}) {
      nn::Conv conv{.features = 2,
                    .kernel_size = {k},
                    .padding = "CIRCULAR",
                    .kernel_init = ones,
                    .bias_init = nn::initializers::zeros_init()};
      auto [y, v] = conv.init_with_output(rnd::key(0), jnp::ones({3, n, 3}));
      EXPECT_EQ(kernel_shape(v), (Shape{k, 3, 2}));
      EXPECT_TRUE(allclose(y, full({3, n, 2}, double(k * 3))));
    }
    nn::Conv conv2{.features = 2,
                   .kernel_size = {k, k},
                   .padding = "CIRCULAR",
                   .kernel_init = ones,
                   .bias_init = nn::initializers::zeros_init()};
    auto [y2, v2] = conv2.init_with_output(rnd::key(0), jnp::ones({1, 14, 5, 5}));
    EXPECT_TRUE(allclose(y2, full({1, 14, 5, 2}, double(k * k * 5))));
  }
}

// test_circular_conv_1d_custom (stride 3) and test_circular_conv_1d_dilation.
TEST(Conv, FlaxCircular1dCustom) {
  Array x = iota_col({1, 2, 3, 4, 5}, {1, 5, 1});
  Array kernel = iota_col({1, 2, 1}, {3, 1, 1});
  nn::Conv conv{.features = 1,
                .kernel_size = {3},
                .strides = {3},
                .padding = "CIRCULAR",
                .kernel_init = fixed(kernel),
                .bias_init = nn::initializers::zeros_init()};
  auto [y, v] = conv.init_with_output(rnd::key(0), x);
  EXPECT_EQ(kernel_shape(v), (Shape{3, 1, 1}));
  EXPECT_TRUE(allclose(y, iota_col({5 + 2 * 1 + 2, 3 + 2 * 4 + 5}, {1, 2, 1})));

  nn::Conv dil{.features = 1,
               .kernel_size = {3},
               .padding = "CIRCULAR",
               .kernel_dilation = {3},
               .kernel_init = fixed(kernel),
               .bias_init = nn::initializers::zeros_init()};
  auto [yd, vd] = dil.init_with_output(rnd::key(0), x);
  EXPECT_TRUE(allclose(
      yd, iota_col({3 + 2 * 1 + 4, 4 + 2 * 2 + 5, 5 + 2 * 3 + 1, 1 + 2 * 4 + 2, 2 + 2 * 5 + 3},
                   {1, 5, 1})));
}

// test_circular_conv_2d_custom and test_reflect_conv_2d_custom on a 3x3 example.
TEST(Conv, FlaxCircularAndReflect2dCustom) {
  Array x = iota_col({1, 2, 3, 4, 5, 6, 7, 8, 9}, {1, 3, 3, 1});
  Array kernel = iota_col({0, 1, 0, 1, 2, 1, 0, 1, 0}, {3, 3, 1, 1});
  nn::Conv conv{.features = 1,
                .kernel_size = {3, 3},
                .padding = "CIRCULAR",
                .kernel_init = fixed(kernel),
                .bias_init = nn::initializers::zeros_init()};
  auto [y, v] = conv.init_with_output(rnd::key(0), x);
  EXPECT_EQ(kernel_shape(v), (Shape{3, 3, 1, 1}));
  EXPECT_TRUE(
      allclose(y, iota_col({2 * 1 + 7 + 2 + 4 + 3, 2 * 2 + 8 + 3 + 5 + 1, 2 * 3 + 9 + 1 + 6 + 2,
                            2 * 4 + 1 + 5 + 7 + 6, 2 * 5 + 2 + 6 + 8 + 4, 2 * 6 + 3 + 4 + 9 + 5,
                            2 * 7 + 4 + 8 + 1 + 9, 2 * 8 + 5 + 9 + 2 + 7, 2 * 9 + 6 + 7 + 3 + 8},
                           {1, 3, 3, 1})));
  nn::Conv refl = conv;
  refl.padding = "REFLECT";
  auto [yr, vr] = refl.init_with_output(rnd::key(0), x);
  EXPECT_TRUE(
      allclose(yr, iota_col({2 * 1 + 4 + 2 + 4 + 2, 2 * 2 + 5 + 3 + 5 + 1, 2 * 3 + 6 + 2 + 6 + 2,
                             2 * 4 + 1 + 5 + 7 + 5, 2 * 5 + 2 + 6 + 8 + 4, 2 * 6 + 3 + 5 + 9 + 5,
                             2 * 7 + 4 + 8 + 8 + 4, 2 * 8 + 5 + 9 + 5 + 7, 2 * 9 + 6 + 8 + 6 + 8},
                            {1, 3, 3, 1})));
}

// test_reflect_conv_1d_custom (stride 2).
TEST(Conv, FlaxReflect1dCustom) {
  nn::Conv conv{.features = 1,
                .kernel_size = {3},
                .strides = {2},
                .padding = "REFLECT",
                .kernel_init = fixed(iota_col({1, 2, 1}, {3, 1, 1})),
                .bias_init = nn::initializers::zeros_init()};
  auto [y, v] = conv.init_with_output(rnd::key(0), iota_col({1, 2, 3, 4, 5}, {1, 5, 1}));
  EXPECT_TRUE(allclose(y, iota_col({2 + 2 * 1 + 2, 2 + 2 * 3 + 4, 4 + 2 * 5 + 4}, {1, 3, 1})));
}

// test_causal_conv1d: ones (1, 8, 4), kernel 3, ones init -> 5, 9, then 13.
TEST(Conv, FlaxCausal1d) {
  nn::Conv conv{.features = 4,
                .kernel_size = {3},
                .padding = "CAUSAL",
                .kernel_init = ones,
                .bias_init = ones};
  auto [y, v] = conv.init_with_output(rnd::key(0), jnp::ones({1, 8, 4}));
  std::vector<double> want;
  for (double r : {5.0, 9.0, 13.0, 13.0, 13.0, 13.0, 13.0, 13.0})
    want.insert(want.end(), {r, r, r, r});
  EXPECT_TRUE(allclose(y, iota_col(want, {1, 8, 4})));
}

// The docstring of flax.linen.Conv: VALID (1, 8, 3) kernel (3,) -> (1, 6, 4); CIRCULAR kernel
// (3, 3) stride 2 on (1, 8, 3) (an unbatched 2-D input) -> kernel (3, 3, 3, 4), output (1, 4, 4).
TEST(Conv, FlaxDocstringShapes) {
  auto [y, v] = nn::Conv{.features = 4, .kernel_size = {3}, .padding = "VALID"}.init_with_output(
      rnd::key(0), jnp::ones({1, 8, 3}));
  EXPECT_EQ(y.shape(), (Shape{1, 6, 4}));
  EXPECT_EQ(v.str(), "params/bias: float32[4]\nparams/kernel: float32[3,3,4]\n");
  auto [y2, v2] =
      nn::Conv{.features = 4, .kernel_size = {3, 3}, .strides = {2}, .padding = "CIRCULAR"}
          .init_with_output(rnd::key(0), jnp::ones({1, 8, 3}));
  EXPECT_EQ(y2.shape(), (Shape{1, 4, 4}));
  EXPECT_EQ(kernel_shape(v2), (Shape{3, 3, 3, 4}));
}

// test_conv_transpose (use_bias True/False), test_multibatch_input_conv_transpose,
// test_single_input_conv_transpose: ones (…, 8, 3), kernel (3,), VALID -> 4, 7, 10 x6, 7, 4.
TEST(ConvTranspose, FlaxTestConvTranspose) {
  std::vector<double> col{4, 7, 10, 10, 10, 10, 10, 10, 7, 4};
  for (bool use_bias : {true, false}) {
    nn::ConvTranspose layer{.features = 4,
                            .kernel_size = {3},
                            .padding = "VALID",
                            .use_bias = use_bias,
                            .kernel_init = ones,
                            .bias_init = ones};
    std::vector<double> want;
    for (double r : col) {
      const double e = use_bias ? r : r - 1;
      want.insert(want.end(), {e, e, e, e});
    }
    auto [y, v] = layer.init_with_output(rnd::key(0), jnp::ones({1, 8, 3}));
    EXPECT_EQ(kernel_shape(v), (Shape{3, 3, 4}));
    EXPECT_TRUE(allclose(y, iota_col(want, {1, 10, 4})));
    auto [yb, vb] = layer.init_with_output(rnd::key(0), jnp::ones({2, 5, 8, 3}));
    EXPECT_TRUE(allclose(yb, jnp::broadcast_to(iota_col(want, {1, 1, 10, 4}), Shape{2, 5, 10, 4})));
    auto [y1, v1] = layer.init_with_output(rnd::key(0), jnp::ones({8, 3}));
    EXPECT_TRUE(allclose(y1, iota_col(want, {10, 4})));
  }
}

// test_single_input_masked_conv_transpose.
TEST(ConvTranspose, FlaxMasked) {
  std::vector<double> mv(36, 0.0);
  for (int a = 0; a < 3; ++a)
    for (int b = 0; b < 3; ++b)
      for (int c = 0; c < 4; ++c) mv[std::size_t((a * 3 + b) * 4 + c)] = c <= b ? 1.0 : 0.0;
  nn::ConvTranspose layer{.features = 4,
                          .kernel_size = {3},
                          .padding = "VALID",
                          .mask = Array(mv, Shape{3, 3, 4}, DType::float32),
                          .kernel_init = ones,
                          .bias_init = ones};
  auto [y, v] = layer.init_with_output(rnd::key(0), jnp::ones({8, 3}));
  std::vector<double> want = {4, 3, 2, 1, 7, 5, 3, 1};
  for (int r = 0; r < 6; ++r) want.insert(want.end(), {10, 7, 4, 1});
  want.insert(want.end(), {7, 5, 3, 1, 4, 3, 2, 1});
  EXPECT_TRUE(allclose(y, iota_col(want, {10, 4})));
}

// test_circular_conv_transpose_{1d,2d}_constant (subset): output size = input size, all
// k * C_in (k^2 * C_in).
TEST(ConvTranspose, FlaxCircularConstant) {
  for (std::int64_t k : {1, 2, 3, 9}) {
    for (std::int64_t n : {1, 8}) {
      nn::ConvTranspose layer{.features = 2,
                              .kernel_size = {k},
                              .padding = "CIRCULAR",
                              .kernel_init = ones,
                              .bias_init = nn::initializers::zeros_init()};
      auto [y, v] = layer.init_with_output(rnd::key(0), jnp::ones({3, n, 3}));
      EXPECT_EQ(kernel_shape(v), (Shape{k, 3, 2}));
      EXPECT_TRUE(allclose(y, full({3, n, 2}, double(k * 3))));
    }
    nn::ConvTranspose layer2{.features = 2,
                             .kernel_size = {k, k},
                             .padding = "CIRCULAR",
                             .kernel_init = ones,
                             .bias_init = nn::initializers::zeros_init()};
    auto [y2, v2] = layer2.init_with_output(rnd::key(0), jnp::ones({1, 14, 5, 5}));
    EXPECT_TRUE(allclose(y2, full({1, 14, 5, 2}, double(k * k * 5))));
  }
}

// test_circular_conv_transpose_1d_custom (stride 3), 2d_custom and 2d_custom_bias.
TEST(ConvTranspose, FlaxCircularCustom) {
  nn::ConvTranspose l1{.features = 1,
                       .kernel_size = {3},
                       .strides = {3},
                       .padding = "CIRCULAR",
                       .kernel_init = fixed(iota_col({1, 2, 1}, {3, 1, 1})),
                       .bias_init = nn::initializers::zeros_init()};
  auto [y1, v1] = l1.init_with_output(rnd::key(0), iota_col({1, 2, 3, 4, 5}, {1, 5, 1}));
  EXPECT_TRUE(allclose(y1, iota_col({1, 2, 1, 2, 4, 2, 3, 6, 3, 4, 8, 4, 5, 10, 5}, {1, 15, 1})));

  nn::ConvTranspose l2{.features = 1,
                       .kernel_size = {3, 3},
                       .padding = "CIRCULAR",
                       .kernel_init = fixed(iota_col({0, 1, 0, 1, 2, 1, 0, 1, 0}, {3, 3, 1, 1})),
                       .bias_init = nn::initializers::zeros_init()};
  auto [y2, v2] =
      l2.init_with_output(rnd::key(0), iota_col({1, 2, 3, 4, 5, 6, 7, 8, 9}, {1, 3, 3, 1}));
  EXPECT_TRUE(allclose(y2, iota_col({18, 21, 24, 27, 30, 33, 36, 39, 42}, {1, 3, 3, 1})));

  nn::ConvTranspose l3{.features = 1,
                       .kernel_size = {2, 2},
                       .padding = "CIRCULAR",
                       .kernel_init = fixed(iota_col({1, 2, 3, 4}, {2, 2, 1, 1})),
                       .bias_init = ones};
  auto [y3, v3] = l3.init_with_output(rnd::key(0), iota_col({1, 2, 3, 4}, {1, 2, 2, 1}));
  EXPECT_TRUE(allclose(y3, iota_col({21, 23, 29, 31}, {1, 2, 2, 1})));
}

// test_transpose_kernel_conv_transpose and the ConvTranspose docstring: (1, 15, 15, 3), kernel
// (6, 6), stride 2, CIRCULAR, transpose_kernel -> kernel (6, 6, 4, 3), output (1, 30, 30, 4);
// VALID kernel (3,) on (1, 8, 3) -> (1, 10, 4).
TEST(ConvTranspose, FlaxShapes) {
  for (bool use_bias : {true, false}) {
    auto [y, v] = nn::ConvTranspose{.features = 4,
                                    .kernel_size = {6, 6},
                                    .strides = {2},
                                    .padding = "CIRCULAR",
                                    .use_bias = use_bias,
                                    .transpose_kernel = true}
                      .init_with_output(rnd::key(0), jnp::ones({1, 15, 15, 3}));
    EXPECT_EQ(kernel_shape(v), (Shape{6, 6, 4, 3}));
    EXPECT_EQ(y.shape(), (Shape{1, 30, 30, 4}));
    EXPECT_EQ(v.at("params").contains("bias"), use_bias);
  }
  auto [y, v] =
      nn::ConvTranspose{.features = 4, .kernel_size = {3}, .padding = "VALID"}.init_with_output(
          rnd::key(0), jnp::ones({1, 8, 3}));
  EXPECT_EQ(y.shape(), (Shape{1, 10, 4}));
}

// ---- trees, dtypes -----------------------------------------------------------------------

struct TwoConvs : nn::Module<TwoConvs> {
  Array call(const Array& x) const {
    Array h = nn::Conv{.features = 8, .kernel_size = {3, 3}}(x);
    h = nn::Conv{.features = 6, .kernel_size = {1, 1}, .use_bias = false}(h);
    return child("up", nn::ConvTranspose{.features = 2, .kernel_size = {2, 2}, .strides = {2}})(h);
  }
};

TEST(Conv, TreeNamesAndKernelShapes) {
  Tree v = TwoConvs{}.init(rnd::key(0), jnp::ones({2, 5, 5, 3}));
  EXPECT_EQ(v.str(),
            "params/Conv_0/bias: float32[8]\n"
            "params/Conv_0/kernel: float32[3,3,3,8]\n"
            "params/Conv_1/kernel: float32[1,1,8,6]\n"
            "params/up/bias: float32[2]\n"
            "params/up/kernel: float32[2,2,6,2]\n");
  EXPECT_EQ(TwoConvs{}.apply(v, jnp::ones({2, 5, 5, 3})).shape(), (Shape{2, 10, 10, 2}));
}

TEST(Conv, DtypeAndParamDtype) {
  nn::Conv c64{.features = 2, .kernel_size = {2}, .param_dtype = DType::float64};
  Tree v = c64.init(rnd::key(0), jnp::ones({1, 4, 1}));
  EXPECT_EQ(v.at("params").at("kernel").leaf().dtype(), DType::float64);
  EXPECT_EQ(c64.apply(v, jnp::ones({1, 4, 1})).dtype(), DType::float64);  // promoted
  nn::Conv c32{
      .features = 2, .kernel_size = {2}, .dtype = DType::float32, .param_dtype = DType::float64};
  EXPECT_EQ(c32.apply(v, jnp::ones({1, 4, 1}, DType::float64)).dtype(), DType::float32);
}

// An int padding p is (p, p) on every spatial dim; a sequence may mix ints and pairs.
TEST(Conv, PaddingForms) {
  const Array x = wave({1, 5, 6, 2}, 0.2);
  Tree v = nn::Conv{.features = 3, .kernel_size = {3, 2}, .padding = 1}.init(rnd::key(0), x);
  auto run = [&](nn::PaddingLike p) {
    return nn::Conv{.features = 3, .kernel_size = {3, 2}, .padding = p}.apply(v, x);
  };
  EXPECT_TRUE(allclose(run(1), run({{1, 1}, {1, 1}}), 0, 0));
  EXPECT_TRUE(allclose(run({1, {0, 2}}), run({{1, 1}, {0, 2}}), 0, 0));
  EXPECT_EQ(run({1, {0, 2}}).shape(), (Shape{1, 5, 7, 3}));
  EXPECT_EQ(nn::canonicalize_padding(2, 2, "Conv").pairs,
            (std::vector<std::pair<std::int64_t, std::int64_t>>{{2, 2}, {2, 2}}));
}

// ---- gradients (float64, finite differences) ---------------------------------------------

TEST(Conv, GradientsMatchFiniteDifferences) {
  struct Cfg {
    nn::Conv conv;
    Shape x;
  };
  const std::vector<Cfg> cfgs = {
      {{.features = 2,
        .kernel_size = {3, 2},
        .strides = {2, 1},
        .padding = "CIRCULAR",
        .param_dtype = DType::float64},
       {1, 4, 3, 2}},
      {{.features = 2,
        .kernel_size = {3},
        .padding = "CAUSAL",
        .kernel_dilation = {2},
        .param_dtype = DType::float64},
       {2, 5, 2}},
      {{.features = 2, .kernel_size = {3, 3}, .padding = "REFLECT", .param_dtype = DType::float64},
       {1, 3, 4, 1}},
      {{.features = 4,
        .kernel_size = {2, 2},
        .padding = {{1, 1}, {0, 1}},
        .input_dilation = {2},
        .kernel_dilation = {1, 2},
        .feature_group_count = 2,
        .param_dtype = DType::float64},
       {1, 3, 3, 4}},
  };
  for (std::size_t i = 0; i < cfgs.size(); ++i) {
    SCOPED_TRACE(i);
    const nn::Conv& conv = cfgs[i].conv;
    const Array x = wave(cfgs[i].x, 0.4);
    Tree v = conv.init(rnd::key(1), x);
    const Array w = v.at("params").at("kernel").leaf(), b = v.at("params").at("bias").leaf();
    const Array gy = wave(conv.apply(v, x).shape(), 1.3);
    EXPECT_TRUE(
        grad_matches_fd([&](const Array& xi) { return jnp::sum(conv.apply(v, xi) * gy); }, x));
    EXPECT_TRUE(grad_matches_fd(
        [&](const Array& wi) {
          return jnp::sum(conv.apply(Tree{{"params", {{"kernel", wi}, {"bias", b}}}}, x) * gy);
        },
        w));
  }
}

TEST(ConvTranspose, GradientsMatchFiniteDifferences) {
  const std::vector<nn::ConvTranspose> layers = {
      {.features = 2, .kernel_size = {3, 2}, .strides = {2}, .param_dtype = DType::float64},
      {.features = 3,
       .kernel_size = {4},
       .strides = {2},
       .padding = "CIRCULAR",
       .param_dtype = DType::float64,
       .transpose_kernel = true},
      {.features = 2,
       .kernel_size = {2, 2},
       .strides = {1, 2},
       .padding = {{1, 0}, {0, 2}},
       .kernel_dilation = {2, 1},
       .param_dtype = DType::float64},
  };
  const std::vector<Shape> shapes = {{1, 3, 2, 2}, {2, 3, 2}, {1, 3, 3, 2}};
  for (std::size_t i = 0; i < layers.size(); ++i) {
    SCOPED_TRACE(i);
    const auto& layer = layers[i];
    const Array x = wave(shapes[i], 0.1);
    Tree v = layer.init(rnd::key(2), x);
    const Array w = v.at("params").at("kernel").leaf(), b = v.at("params").at("bias").leaf();
    const Array gy = wave(layer.apply(v, x).shape(), 0.8);
    EXPECT_TRUE(
        grad_matches_fd([&](const Array& xi) { return jnp::sum(layer.apply(v, xi) * gy); }, x));
    EXPECT_TRUE(grad_matches_fd(
        [&](const Array& wi) {
          return jnp::sum(layer.apply(Tree{{"params", {{"kernel", wi}, {"bias", b}}}}, x) * gy);
        },
        w));
  }
}

// lax::conv_transpose with transpose_kernel is the gradient of the forward conv with the same
// kernel (what Keras' Conv2DTranspose computes): <conv(x, w), y> = <x, conv_transpose(y, w)>.
TEST(ConvTranspose, TransposeKernelIsTheConvGradient) {
  const Array w = wave({3, 3, 2, 4}, 0.9);
  for (const char* mode : {"SAME", "VALID"}) {
    SCOPED_TRACE(mode);
    const bool same = std::string(mode) == "SAME";
    const lax::Padding p = same ? lax::Padding::same() : lax::Padding::valid();
    // sizes the stride-2 forward conv maps back exactly: 6 -> 3 (SAME), 7 -> 3 (VALID)
    const Array x = same ? wave({1, 6, 6, 2}, 0.3) : wave({1, 7, 7, 2}, 0.3);
    const Array y = lax::conv_general_dilated(x, w, {2, 2}, p);
    const Array g = wave(y.shape(), 1.9);
    const Array xt = lax::conv_transpose(g, w, {2, 2}, p, {}, /*transpose_kernel=*/true);
    ASSERT_EQ(xt.shape(), x.shape());
    const Array want = loom::grad([&](const Array& xi) {
      return jnp::sum(lax::conv_general_dilated(xi, w, {2, 2}, p) * g);
    })(x);
    EXPECT_TRUE(allclose(xt, want, 1e-12, 1e-12));
  }
}

// ---- errors ------------------------------------------------------------------------------

struct Net : nn::Module<Net> {
  nn::Conv conv;
  Array call(const Array& x) const { return child("conv", conv)(x); }
};

TEST(Conv, Errors) {
  auto init = [](nn::Conv c, Shape x) { return Net{.conv = c}.init(rnd::key(0), jnp::ones(x)); };
  // kernel_size rank vs input rank
  EXPECT_TRUE(throws_error(
      [&] {
        init({.features = 2, .kernel_size = {3, 3}}, {5, 2});
      },
      {"Conv", "kernel_size (3, 3)", "rank >= 3", "(5, 2)", "/conv"}));
  EXPECT_TRUE(throws_error(
      [&] {
        init({.features = 2, .kernel_size = {}}, {1, 5, 2});
      },
      {"kernel_size ()", "/conv"}));
  EXPECT_TRUE(throws_error(
      [&] {
        init({.features = 0, .kernel_size = {3}}, {1, 5, 2});
      },
      {"features must be positive", "/conv"}));
  // groups not dividing the input features / features
  EXPECT_TRUE(throws_error(
      [&] {
        init({.features = 4, .kernel_size = {3}, .feature_group_count = 3}, {1, 5, 6});
      },
      {"feature_group_count 3", "features (4)", "(1, 5, 6)", "/conv"}));
  EXPECT_TRUE(throws_error(
      [&] {
        init({.features = 6, .kernel_size = {3}, .feature_group_count = 4}, {1, 5, 6});
      },
      {"feature_group_count 4", "input features (6", "/conv"}));
  // padding
  EXPECT_TRUE(throws_error(
      [&] {
        init({.features = 2, .kernel_size = {3, 3}, .padding = "CAUSAL"}, {1, 5, 5, 1});
      },
      {"Causal padding is only implemented for 1D convolutions", "/conv"}));
  EXPECT_TRUE(throws_error(
      [&] {
        init({.features = 2, .kernel_size = {3, 3}, .padding = {{1, 1}}}, {1, 5, 5, 1});
      },
      {"Invalid padding format: ((1, 1),)", "len 2", "/conv"}));
  EXPECT_TRUE(throws_error(
      [&] {
        init({.features = 2, .kernel_size = {3}, .padding = "FULL"}, {1, 5, 1});
      },
      {"Invalid padding format: 'FULL'", "/conv"}));
  EXPECT_TRUE(throws_error(
      [&] {
        init({.features = 2, .kernel_size = {3, 3}, .strides = {1, 2, 1}}, {1, 5, 5, 1});
      },
      {"strides (1, 2, 1)", "1 or 2 entries", "/conv"}));
  // mask shape
  EXPECT_TRUE(throws_error(
      [&] {
        init({.features = 2, .kernel_size = {3}, .mask = jnp::ones({3, 2})}, {1, 5, 1});
      },
      {"Mask needs to have the same shape as weights", "(3, 2)", "(3, 1, 2)", "/conv"}));
  // feature size mismatch with stored params: Flax's ScopeParamShapeError names path and shapes
  Tree v = init({.features = 2, .kernel_size = {3}}, {1, 5, 4});
  EXPECT_TRUE(throws_error(
      [&] {
        Net{.conv = {.features = 2, .kernel_size = {3}}}.apply(v, jnp::ones({1, 5, 3}));
      },
      {"ScopeParamShapeError", "kernel", "/conv", "(3, 3, 2)", "(3, 4, 2)"}));
}

TEST(ConvTranspose, Errors) {
  struct TNet : nn::Module<TNet> {
    nn::ConvTranspose layer;
    Array call(const Array& x) const { return child("up", layer)(x); }
  };
  auto init = [](nn::ConvTranspose c, Shape x) {
    return TNet{.layer = c}.init(rnd::key(0), jnp::ones(x));
  };
  EXPECT_TRUE(throws_error(
      [&] {
        init({.features = 2, .kernel_size = {2, 2}}, {4, 1});
      },
      {"ConvTranspose", "rank >= 3", "/up"}));
  EXPECT_TRUE(throws_error(
      [&] {
        init({.features = 2, .kernel_size = {2}, .padding = "CAUSAL"}, {1, 4, 1});
      },
      {"Invalid padding format: 'CAUSAL'", "/up"}));
  EXPECT_TRUE(throws_error(
      [&] {
        init({.features = 2, .kernel_size = {2}, .mask = jnp::ones({2, 2, 1})}, {1, 4, 1});
      },
      {"Mask needs to have the same shape as weights", "(2, 1, 2)", "/up"}));
  EXPECT_TRUE(throws_error(
      [&] {
        lax::conv_transpose(jnp::ones({1, 4, 1}), jnp::ones({2, 1, 1}), {1, 1},
                            lax::Padding::same());
      },
      {"conv_transpose", "strides (1, 1)", "one entry per spatial dimension"}));
}

}  // namespace
