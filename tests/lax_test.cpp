// loom::lax: conv_general_dilated and reduce_window against NumPy references, dot_general,
// finite-difference gradients (float64) and error messages.
//
// Golden values: tests/data/lax_golden.txt, written by tests/data/lax_golden.py (an explicit
// NumPy implementation of XLA's ConvGeneralDilated / ReduceWindow / SelectAndScatter semantics).
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "loom/loom.hpp"
#include "test_util.hpp"

namespace jnp = loom::numpy;
namespace lax = loom::lax;
using loom::Array;
using loom::DType;
using loom::Shape;
using loom::testing::allclose;
using loom::testing::grad_matches_fd;
using loom::testing::throws_error;
using loom::testing::wave;

namespace {

// ---- fixture file -------------------------------------------------------------------------

using Case = std::map<std::string, std::vector<std::string>>;

const std::map<std::string, Case>& golden() {
  static const std::map<std::string, Case> cases =
      loom::testing::read_fixture_cases("lax_golden.txt");
  return cases;
}

const Case& get_case(const std::string& name) {
  auto it = golden().find(name);
  if (it == golden().end()) throw std::runtime_error("missing golden case " + name);
  return it->second;
}

std::vector<std::int64_t> ints(const Case& c, const std::string& key) {
  std::vector<std::int64_t> v;
  for (const auto& t : c.at(key)) v.push_back(std::stoll(t));
  return v;
}

Array array(const Case& c, const std::string& key, DType dtype) {
  std::vector<double> v;
  for (const auto& t : c.at(key))
    v.push_back(t == "inf" ? INFINITY : t == "-inf" ? -INFINITY : std::stod(t));
  return Array(v, Shape(ints(c, key + "_shape")), dtype);
}

lax::Padding padding(const Case& c) {
  const auto& p = c.at("padding");
  if (p[0] == "same") return lax::Padding::same();
  if (p[0] == "valid") return lax::Padding::valid();
  std::vector<std::pair<std::int64_t, std::int64_t>> pairs;
  for (std::size_t i = 1; i + 1 < p.size(); i += 2)
    pairs.emplace_back(std::stoll(p[i]), std::stoll(p[i + 1]));
  return lax::Padding::explicit_(pairs);
}

Array conv_of_case(const Case& c, const Array& x, const Array& w) {
  return lax::conv_general_dilated(x, w, ints(c, "strides"), padding(c), ints(c, "lhs_dil"),
                                   ints(c, "rhs_dil"), ints(c, "groups")[0]);
}

const std::vector<std::string> kConvCases = {"conv_same_3x3",         "conv_same_stride2_even",
                                             "conv_same_stride2_4x4", "conv_valid_rect",
                                             "conv_explicit_asym",    "conv_negative_pad",
                                             "conv_rhs_dilation",     "conv_lhs_dilation",
                                             "conv_groups2",          "conv_depthwise",
                                             "conv_conv1x1",          "conv_conv1x1_stride2",
                                             "conv_conv1d",           "conv_conv3d"};

}  // namespace

// ---- conv_general_dilated: values ---------------------------------------------------------

TEST(Conv, MatchesNumpyReferenceFloat64) {
  for (const auto& name : kConvCases) {
    SCOPED_TRACE(name);
    const Case& c = get_case(name);
    Array y = conv_of_case(c, array(c, "lhs", DType::float64), array(c, "rhs", DType::float64));
    EXPECT_EQ(y.dtype(), DType::float64);
    EXPECT_TRUE(allclose(y, array(c, "out", DType::float64), 1e-12, 1e-12));
  }
}

TEST(Conv, MatchesNumpyReferenceFloat32) {
  for (const auto& name : kConvCases) {
    SCOPED_TRACE(name);
    const Case& c = get_case(name);
    Array y = conv_of_case(c, array(c, "lhs", DType::float32), array(c, "rhs", DType::float32));
    EXPECT_EQ(y.dtype(), DType::float32);
    EXPECT_TRUE(allclose(y, array(c, "out", DType::float64), 1e-5, 1e-4));
  }
}

TEST(Conv, HandComputedSamePadding) {
  // 1-D: x = [1, 2, 3], kernel [1, 10, 100] (one channel), SAME stride 1 pads (1, 1):
  // out[0] = 0*1 + 1*10 + 2*100 = 210, out[1] = 1 + 20 + 300 = 321, out[2] = 2 + 30 + 0 = 32.
  Array x(std::vector<float>{1, 2, 3}, Shape{1, 3, 1});
  Array w(std::vector<float>{1, 10, 100}, Shape{3, 1, 1});
  Array y = lax::conv_general_dilated(x, w, {1}, lax::Padding::same());
  EXPECT_EQ(y.to_vector<float>(), (std::vector<float>{210, 321, 32}));
  // Stride 2 on length 4, window 3: out = ceil(4/2) = 2, total = max(2 + 3 - 4, 0) = 1,
  // low = 0, high = 1: out[0] = x0 + 10 x1 + 100 x2, out[1] = x2 + 10 x3 + 0.
  Array x4(std::vector<float>{1, 2, 3, 4}, Shape{1, 4, 1});
  Array y4 = lax::conv_general_dilated(x4, w, {2}, lax::Padding::same());
  EXPECT_EQ(y4.to_vector<float>(), (std::vector<float>{321, 43}));
}

TEST(Conv, MixedDtypesPromoteAndBigBatchMatchesSmallBatch) {
  // A batch large enough to span several im2col chunks and threads must equal per-image results.
  // (Per image 32*32 rows of 9*32 columns: the batch splits into several per-thread tasks.)
  Array x = wave(Shape{7, 32, 32, 32}, 0.2, DType::float32);
  Array w = wave(Shape{3, 3, 32, 5}, 0.9, DType::float64);
  Array y = lax::conv_general_dilated(x, w, {1, 1}, lax::Padding::same());
  EXPECT_EQ(y.dtype(), DType::float64);
  for (int n : {0, 3, 6}) {
    Array xn = jnp::slice(x, {{n, n + 1}});
    Array yn = lax::conv_general_dilated(xn, w, {1, 1}, lax::Padding::same());
    EXPECT_TRUE(allclose(jnp::slice(y, {{n, n + 1}}), yn, 1e-12, 1e-12));
  }
}

TEST(Conv, EmptyOutputWhenWindowDoesNotFit) {
  Array y = lax::conv_general_dilated(jnp::ones({1, 2, 2, 1}), jnp::ones({3, 3, 1, 4}), {1, 1},
                                      lax::Padding::valid());
  EXPECT_EQ(y.shape(), (Shape{1, 0, 0, 4}));
}

// ---- conv_general_dilated: gradients ------------------------------------------------------

namespace {

// Checks d/dx and d/dw of sum(conv(x, w) * weights) against finite differences.
void check_conv_grads(Shape xs, Shape ws, std::vector<std::int64_t> strides, lax::Padding pad,
                      std::vector<std::int64_t> ld = {}, std::vector<std::int64_t> rd = {},
                      std::int64_t groups = 1) {
  Array x = wave(xs, 0.1), w = wave(ws, 1.3);
  Array y0 = lax::conv_general_dilated(x, w, strides, pad, ld, rd, groups);
  Array weights = wave(y0.shape(), 2.1);
  EXPECT_TRUE(grad_matches_fd(
      [&](const Array& xv) {
        return jnp::sum(lax::conv_general_dilated(xv, w, strides, pad, ld, rd, groups) * weights);
      },
      x));
  EXPECT_TRUE(grad_matches_fd(
      [&](const Array& wv) {
        return jnp::sum(lax::conv_general_dilated(x, wv, strides, pad, ld, rd, groups) * weights);
      },
      w));
}

}  // namespace

TEST(ConvGrad, Same3x3) {
  check_conv_grads({2, 4, 4, 2}, {3, 3, 2, 3}, {1, 1}, lax::Padding::same());
}
TEST(ConvGrad, Stride2Same) {
  check_conv_grads({1, 5, 6, 2}, {3, 3, 2, 2}, {2, 2}, lax::Padding::same());
}
TEST(ConvGrad, ValidStrided) {
  check_conv_grads({2, 5, 5, 1}, {2, 3, 1, 2}, {2, 1}, lax::Padding::valid());
}
TEST(ConvGrad, ExplicitAndNegativePadding) {
  check_conv_grads({1, 5, 5, 2}, {3, 2, 2, 2}, {1, 2}, lax::Padding::explicit_({{2, -1}, {1, 3}}));
}
TEST(ConvGrad, RhsDilation) {
  check_conv_grads({1, 6, 6, 2}, {3, 2, 2, 2}, {1, 1}, lax::Padding::same(), {}, {2, 3});
}
TEST(ConvGrad, LhsDilationTransposedConv) {
  check_conv_grads({1, 3, 3, 2}, {3, 3, 2, 2}, {1, 1}, lax::Padding::explicit_({{2, 2}, {1, 2}}),
                   {2, 2});
}
TEST(ConvGrad, FeatureGroups) {
  check_conv_grads({1, 4, 4, 4}, {3, 3, 2, 6}, {1, 1}, lax::Padding::same(), {}, {}, 2);
  check_conv_grads({1, 4, 4, 3}, {3, 3, 1, 3}, {2, 2}, lax::Padding::same(), {}, {}, 3);
}
TEST(ConvGrad, OneByOne) {
  check_conv_grads({2, 3, 3, 3}, {1, 1, 3, 2}, {1, 1}, lax::Padding::valid());
  check_conv_grads({1, 3, 3, 4}, {1, 1, 2, 4}, {1, 1}, lax::Padding::valid(), {}, {}, 2);
}
TEST(ConvGrad, OneAndThreeSpatialDims) {
  check_conv_grads({2, 7, 2}, {3, 2, 3}, {2}, lax::Padding::same(), {}, {2});
  check_conv_grads({1, 3, 4, 3, 2}, {2, 2, 2, 2, 2}, {1, 2, 1}, lax::Padding::same());
}

TEST(ConvGrad, Float32KernelGradientOfLargerBatchMatchesFloat64) {
  // Exercises the per-thread partial kernel gradients (several tasks) in float32.
  Array x = wave(Shape{7, 32, 32, 32}, 0.4), w = wave(Shape{3, 3, 32, 4}, 0.8);
  auto loss = [](const Array& xv, const Array& wv) {
    Array y = lax::conv_general_dilated(xv, wv, {1, 1}, lax::Padding::same());
    return jnp::sum(y * y);
  };
  Array g64 = loom::grad([&](const Array& wv) { return loss(x, wv); })(w);
  Array x32 = x.astype(DType::float32);
  Array g32 = loom::grad([&](const Array& wv) { return loss(x32, wv); })(w.astype(DType::float32));
  EXPECT_TRUE(allclose(g32, g64, 1e-4, 1e-3));
  Array gx64 = loom::grad([&](const Array& xv) { return loss(xv, w); })(x);
  Array gx32 = loom::grad([&](const Array& xv) { return loss(xv, w.astype(DType::float32)); })(x32);
  EXPECT_TRUE(allclose(gx32, gx64, 1e-4, 1e-3));
}

// ---- conv_general_dilated: errors ---------------------------------------------------------

TEST(ConvErrors, ShapesAndArguments) {
  Array x = jnp::ones({1, 4, 4, 3});
  EXPECT_TRUE(throws_error(
      [&] {
        lax::conv_general_dilated(x, jnp::ones({3, 3, 2, 4}), {1, 1}, lax::Padding::same());
      },
      {"conv_general_dilated", "(1, 4, 4, 3)", "(3, 3, 2, 4)", "channel mismatch"}));
  EXPECT_TRUE(throws_error(
      [&] {
        lax::conv_general_dilated(x, jnp::ones({3, 3, 1, 4}), {1, 1}, lax::Padding::same(), {}, {},
                                  2);
      },
      {"conv_general_dilated", "feature_group_count 2", "3 input channels"}));
  EXPECT_TRUE(throws_error(
      [&] {
        lax::conv_general_dilated(x, jnp::ones({3, 3, 1, 4}), {1, 1}, lax::Padding::same(), {}, {},
                                  3);
      },
      {"feature_group_count 3", "4 output channels"}));
  EXPECT_TRUE(throws_error(
      [&] {
        lax::conv_general_dilated(x, jnp::ones({3, 3, 3, 4}), {1}, lax::Padding::same());
      },
      {"window_strides (1,)", "one entry per spatial dimension (2)"}));
  EXPECT_TRUE(throws_error(
      [&] {
        lax::conv_general_dilated(x, jnp::ones({3, 3, 3, 4}), {0, 1}, lax::Padding::same());
      },
      {"window_strides", "positive"}));
  EXPECT_TRUE(throws_error(
      [&] {
        lax::conv_general_dilated(x, jnp::ones({3, 3, 4}), {1, 1}, lax::Padding::same());
      },
      {"rhs", "same rank"}));
  EXPECT_TRUE(throws_error(
      [&] {
        lax::conv_general_dilated(jnp::ones({4, 3}), jnp::ones({3, 3}), {1}, lax::Padding::same());
      },
      {"lhs must be (N, spatial..., C)", "(4, 3)"}));
  EXPECT_TRUE(throws_error(
      [&] {
        lax::conv_general_dilated(x, jnp::ones({3, 3, 3, 4}), {1, 1},
                                  lax::Padding::explicit_({{1, 1}}));
      },
      {"explicit padding has 1", "need one each"}));
  EXPECT_TRUE(throws_error(
      [&] {
        lax::conv_general_dilated(x, jnp::ones({3, 3, 3, 4}), {1, 1}, lax::Padding::same(), {2, 2});
      },
      {"SAME padding", "lhs_dilation (2, 2)"}));
  EXPECT_TRUE(throws_error(
      [&] {
        lax::conv_general_dilated(jnp::ones({1, 4, 4, 3}, DType::int32),
                                  jnp::ones({3, 3, 3, 4}, DType::int32), {1, 1},
                                  lax::Padding::same());
      },
      {"int32", "floating"}));
  EXPECT_TRUE(throws_error(
      [&] {
        lax::conv_general_dilated(Array(), x, {1, 1}, lax::Padding::same());
      },
      {"conv_general_dilated"}));
}

// ---- reduce_window ------------------------------------------------------------------------

namespace {

lax::ReduceOp op_of(const Case& c) {
  const std::string& s = c.at("op")[0];
  return s == "max" ? lax::ReduceOp::max : s == "min" ? lax::ReduceOp::min : lax::ReduceOp::sum;
}

const std::vector<std::string> kPoolCases = {"pool_max_2x2",         "pool_max_3x3_s2_same",
                                             "pool_min_3x3_s1_same", "pool_sum_3x3_s2_same",
                                             "pool_sum_1d_explicit", "pool_max_all_dims"};

}  // namespace

TEST(ReduceWindow, MatchesNumpyReference) {
  for (const auto& name : kPoolCases) {
    SCOPED_TRACE(name);
    const Case& c = get_case(name);
    for (DType dt : {DType::float32, DType::float64}) {
      Array y = lax::reduce_window(array(c, "x", dt), op_of(c), ints(c, "window"),
                                   ints(c, "strides"), padding(c));
      EXPECT_EQ(y.dtype(), dt);
      EXPECT_TRUE(allclose(y, array(c, "out", DType::float64), 1e-6, 1e-6));
    }
  }
}

TEST(ReduceWindow, GradientRoutesToFirstExtremeLikeSelectAndScatter) {
  // The inputs hold ties (values rounded to 0.5); the reference picks the first maximum in
  // row-major window order and never a padded position.
  for (const auto& name : kPoolCases) {
    SCOPED_TRACE(name);
    const Case& c = get_case(name);
    Array x = array(c, "x", DType::float64);
    const auto window = ints(c, "window"), strides = ints(c, "strides");
    const lax::Padding pad = padding(c);
    const lax::ReduceOp op = op_of(c);
    Array y0 = lax::reduce_window(x, op, window, strides, pad);
    std::vector<double> wv(static_cast<std::size_t>(y0.size()));
    for (std::size_t i = 0; i < wv.size(); ++i) wv[i] = std::cos(double(i) * 0.7) + 1.5;
    Array weights(wv, y0.shape());
    Array g = loom::grad([&](const Array& xv) {
      return jnp::sum(lax::reduce_window(xv, op, window, strides, pad) * weights);
    })(x);
    EXPECT_TRUE(allclose(g, array(c, "grad", DType::float64), 1e-12, 1e-12));
  }
}

TEST(ReduceWindow, HandComputedTieBreakAndPadding) {
  // Window 2, stride 1 over [3, 3, 1]: both windows' maxima tie at the first 3 for window 0
  // (positions 0 and 1 -> position 0), and window 1 = [3, 1] -> position 1.
  Array x(std::vector<double>{3, 3, 1}, Shape{3});
  Array g = loom::grad([](const Array& v) {
    return jnp::sum(lax::reduce_window(v, lax::ReduceOp::max, {2}, {1}, lax::Padding::valid()));
  })(x);
  EXPECT_EQ(g.to_vector<double>(), (std::vector<double>{1, 1, 0}));
  // All-negative input with padding: padding (-inf) never wins, never takes the gradient.
  Array neg(std::vector<double>{-5, -7}, Shape{2});
  Array y =
      lax::reduce_window(neg, lax::ReduceOp::max, {2}, {1}, lax::Padding::explicit_({{1, 1}}));
  EXPECT_EQ(y.to_vector<double>(), (std::vector<double>{-5, -5, -7}));
  // A window entirely in padding yields the identity.
  Array yi =
      lax::reduce_window(neg, lax::ReduceOp::max, {1}, {1}, lax::Padding::explicit_({{1, 0}}));
  EXPECT_EQ(yi.to_vector<double>()[0], -INFINITY);
  Array ys =
      lax::reduce_window(neg, lax::ReduceOp::sum, {1}, {1}, lax::Padding::explicit_({{1, 0}}));
  EXPECT_EQ(ys.to_vector<double>(), (std::vector<double>{0, -5, -7}));
}

TEST(ReduceWindow, NanPropagatesThroughMax) {
  Array x(std::vector<float>{1, NAN, 3, 2}, Shape{4});
  auto y =
      lax::reduce_window(x, lax::ReduceOp::max, {2}, {2}, lax::Padding::valid()).to_vector<float>();
  EXPECT_TRUE(std::isnan(y[0]));
  EXPECT_EQ(y[1], 3.f);
}

TEST(ReduceWindow, IntegerOperands) {
  Array x({4, -2, 7, 1, 0, 9}, DType::int32);
  Array m = lax::reduce_window(x, lax::ReduceOp::max, {3}, {3}, lax::Padding::valid());
  EXPECT_EQ(m.dtype(), DType::int32);
  EXPECT_EQ(m.to_vector<int>(), (std::vector<int>{7, 9}));
  Array s = lax::reduce_window(x, lax::ReduceOp::sum, {2}, {2}, lax::Padding::valid());
  EXPECT_EQ(s.to_vector<int>(), (std::vector<int>{2, 8, 9}));
  Array mn = lax::reduce_window(x, lax::ReduceOp::min, {2}, {1}, lax::Padding::same());
  EXPECT_EQ(mn.to_vector<int>(), (std::vector<int>{-2, -2, 1, 0, 0, 9}));
}

TEST(ReduceWindowGrad, FiniteDifferences) {
  // Distinct values (no ties), so max/min are differentiable and FD applies.
  Array x = wave(Shape{2, 5, 6, 3}, 0.5);
  struct Cfg {
    lax::ReduceOp op;
    std::vector<std::int64_t> w, s;
    lax::Padding p;
  };
  const std::vector<Cfg> cfgs = {
      {lax::ReduceOp::max, {1, 3, 3, 1}, {1, 2, 2, 1}, lax::Padding::same()},
      {lax::ReduceOp::min, {1, 2, 2, 1}, {1, 1, 2, 1}, lax::Padding::valid()},
      {lax::ReduceOp::sum, {1, 3, 2, 1}, {1, 2, 1, 1}, lax::Padding::same()},
      {lax::ReduceOp::sum,
       {2, 2, 3, 2},
       {1, 2, 2, 1},
       lax::Padding::explicit_({{0, 1}, {1, 0}, {1, 1}, {0, 0}})},
      {lax::ReduceOp::max,
       {2, 1, 2, 3},
       {1, 1, 3, 1},
       lax::Padding::explicit_({{0, 0}, {1, 1}, {0, 2}, {1, 1}})},
  };
  for (std::size_t i = 0; i < cfgs.size(); ++i) {
    SCOPED_TRACE(i);
    const Cfg& c = cfgs[i];
    Array y0 = lax::reduce_window(x, c.op, c.w, c.s, c.p);
    Array weights = wave(y0.shape(), 1.7);
    EXPECT_TRUE(grad_matches_fd(
        [&](const Array& v) {
          return jnp::sum(lax::reduce_window(v, c.op, c.w, c.s, c.p) * weights);
        },
        x));
  }
}

TEST(ReduceWindowErrors, Arguments) {
  Array x = jnp::ones({2, 4, 4, 3});
  EXPECT_TRUE(throws_error(
      [&] {
        lax::reduce_window(x, lax::ReduceOp::max, {2, 2}, {2, 2}, lax::Padding::valid());
      },
      {"reduce_window(max)", "(2, 4, 4, 3)", "window (2, 2)",
       "one entry per dimension of the operand (4)"}));
  EXPECT_TRUE(throws_error(
      [&] {
        lax::reduce_window(x, lax::ReduceOp::sum, {1, 2, 2, 1}, {1, 0, 2, 1},
                           lax::Padding::valid());
      },
      {"reduce_window(sum)", "positive"}));
  EXPECT_TRUE(throws_error(
      [&] {
        lax::reduce_window(x, lax::ReduceOp::sum, {1, 2, 2, 1}, {1, 2, 2, 1},
                           lax::Padding::explicit_({{0, 1}}));
      },
      {"reduce_window", "explicit padding has 1", "need one each"}));
  EXPECT_TRUE(throws_error(
      [&] {
        lax::reduce_window(jnp::ones({3}, DType::bool_), lax::ReduceOp::max, {2}, {1},
                           lax::Padding::valid());
      },
      {"reduce_window(max)", "bool"}));
}

// ---- dot_general --------------------------------------------------------------------------

TEST(DotGeneral, BatchAndContractingDims) {
  // (2, 2, 3) x (2, 4, 3) contracting the last dims, batch 0: z[b] = x[b] @ y[b]^T.
  // Values from numpy: x = arange(12).reshape(2,2,3), y = arange(24).reshape(2,4,3) - 5,
  // np.einsum("bik,bjk->bij", x, y).
  Array x = jnp::reshape(jnp::arange(0, 12, 1, DType::float32), {2, 2, 3});
  Array y = jnp::reshape(jnp::arange(-5, 19, 1, DType::float32), {2, 4, 3});
  Array z = lax::dot_general(
      x, y, {.lhs_contracting = {2}, .rhs_contracting = {2}, .lhs_batch = {0}, .rhs_batch = {0}});
  EXPECT_EQ(z.shape(), (Shape{2, 2, 4}));
  EXPECT_EQ(z.to_vector<float>(), (std::vector<float>{-10, -1, 8, 17, -46, -10, 26, 62, 170, 233,
                                                      296, 359, 242, 332, 422, 512}));
}

TEST(DotGeneral, ResultOrderIsBatchLhsFreeRhsFree) {
  // lhs (3, 2, 4) with batch dim 2 and contracting dim 0; rhs (4, 3, 5) with batch 0,
  // contracting 1.
  Array x = wave(Shape{3, 2, 4}, 0.1), y = wave(Shape{4, 3, 5}, 0.7);
  Array z = lax::dot_general(
      x, y, {.lhs_contracting = {0}, .rhs_contracting = {1}, .lhs_batch = {2}, .rhs_batch = {0}});
  ASSERT_EQ(z.shape(), (Shape{4, 2, 5}));
  auto xv = x.to_vector<double>(), yv = y.to_vector<double>(), zv = z.to_vector<double>();
  for (int b = 0; b < 4; ++b)
    for (int i = 0; i < 2; ++i)
      for (int j = 0; j < 5; ++j) {
        double acc = 0;
        for (int k = 0; k < 3; ++k)
          acc += xv[std::size_t((k * 2 + i) * 4 + b)] * yv[std::size_t((b * 3 + k) * 5 + j)];
        EXPECT_NEAR(zv[std::size_t((b * 2 + i) * 5 + j)], acc, 1e-12);
      }
}

TEST(DotGeneral, GradientsBothOperands) {
  Array x = wave(Shape{3, 2, 4}, 0.1), y = wave(Shape{4, 3, 5}, 0.7);
  const lax::DotDimensionNumbers d{
      .lhs_contracting = {0}, .rhs_contracting = {1}, .lhs_batch = {2}, .rhs_batch = {0}};
  Array weights = wave(Shape{4, 2, 5}, 1.9);
  EXPECT_TRUE(grad_matches_fd(
      [&](const Array& v) { return jnp::sum(lax::dot_general(v, y, d) * weights); }, x));
  EXPECT_TRUE(grad_matches_fd(
      [&](const Array& v) { return jnp::sum(lax::dot_general(x, v, d) * weights); }, y));
  // Two contracting dims, no batch.
  Array a = wave(Shape{2, 3, 4}, 0.3), b = wave(Shape{4, 5, 3}, 0.6);
  const lax::DotDimensionNumbers d2{.lhs_contracting = {1, 2}, .rhs_contracting = {2, 0}};
  Array w2 = wave(Shape{2, 5}, 2.2);
  EXPECT_TRUE(grad_matches_fd(
      [&](const Array& v) { return jnp::sum(lax::dot_general(v, b, d2) * w2); }, a));
  EXPECT_TRUE(grad_matches_fd(
      [&](const Array& v) { return jnp::sum(lax::dot_general(a, v, d2) * w2); }, b));
}

TEST(DotGeneral, Errors) {
  Array x = jnp::ones({2, 3}), y = jnp::ones({4, 3});
  EXPECT_TRUE(throws_error(
      [&] { lax::dot_general(x, y, {.lhs_contracting = {1}, .rhs_contracting = {0}}); },
      {"dot_general", "(2, 3)", "(4, 3)", "contracting dimensions have sizes 3 and 4"}));
  EXPECT_TRUE(throws_error(
      [&] { lax::dot_general(x, y, {.lhs_contracting = {2}, .rhs_contracting = {1}}); },
      {"dot_general", "lhs dimension 2 is out of range for rank 2"}));
  EXPECT_TRUE(
      throws_error([&] { lax::dot_general(x, y, {.lhs_contracting = {1}, .rhs_contracting = {}}); },
                   {"dot_general", "equally many"}));
  EXPECT_TRUE(throws_error(
      [&] {
        lax::dot_general(x, y, {.lhs_contracting = {1, 1}, .rhs_contracting = {1, 0}});
      },
      {"dot_general", "lhs dimension 1 is named more than once"}));
  EXPECT_TRUE(throws_error(
      [&] {
        lax::dot_general(
            x, y,
            {.lhs_contracting = {1}, .rhs_contracting = {1}, .lhs_batch = {0}, .rhs_batch = {0}});
      },
      {"dot_general", "batch dimensions have sizes 2 and 4"}));
}

// Absurd window arguments are errors, not int64 overflow (which would size tables wrongly).
TEST(WindowErrors, HugeArgumentsAreRejected) {
  const std::int64_t huge = std::int64_t{1} << 62;
  EXPECT_TRUE(throws_error(
      [&] {
        lax::reduce_window(jnp::ones({4}), lax::ReduceOp::sum, {huge}, {1}, lax::Padding::same());
      },
      {"reduce_window", "window"}));
  EXPECT_TRUE(throws_error(
      [&] {
        lax::reduce_window(jnp::ones({4}), lax::ReduceOp::sum, {1}, {1},
                           lax::Padding::explicit_({{INT64_MAX, 1}}));
      },
      {"reduce_window", "padding"}));
  EXPECT_TRUE(throws_error(
      [&] {
        lax::conv_general_dilated(jnp::ones({1, 4, 1}), jnp::ones({1, 1, 1}), {INT64_MAX},
                                  lax::Padding::same());
      },
      {"conv_general_dilated", "window_strides"}));
  EXPECT_TRUE(throws_error(
      [&] {
        lax::conv_general_dilated(jnp::ones({1, 4, 1}), jnp::ones({3, 1, 1}), {1},
                                  lax::Padding::valid(), {}, {INT64_MAX});
      },
      {"conv_general_dilated", "rhs_dilation"}));
}
