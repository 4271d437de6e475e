// loom::numpy shape manipulation and indexing: values (NumPy 1.24 or by construction), errors,
// gradients. Expected values marked "NumPy" were computed with Debian's python3-numpy 1.24 from
// the same inputs (t = np.arange(24).reshape(2, 3, 4), x = np.arange(12).reshape(3, 4)).
#include <gtest/gtest.h>

#include "loom/loom.hpp"
#include "test_util.hpp"

namespace jnp = loom::numpy;
using loom::Array;
using loom::DType;
using loom::Shape;
using loom::testing::allclose;
using loom::testing::f64;
using loom::testing::grad_matches_fd;
using loom::testing::throws_error;

namespace {

std::vector<int> ints(const Array& a) {
  return a.to_vector<int>();
}

Array t234() {
  return jnp::reshape(jnp::arange(24), {2, 3, 4});
}
Array x34() {
  return jnp::reshape(jnp::arange(12), {3, 4});
}
// A float64 array with distinct, irregular values.
Array r64(Shape s) {
  return jnp::reshape(
      jnp::cos(jnp::arange(0, static_cast<double>(s.numel()), 1, DType::float64) * 1.7),
      s.to_vector());
}
// sum(y * w) with fixed distinct weights: a scalar that depends on every element of y.
Array weighted(const Array& y) {
  Array w = jnp::sin(jnp::arange(1, static_cast<double>(y.size()) + 1, 1, DType::float64));
  return jnp::sum(y * jnp::reshape(w, y.shape().to_vector()));
}

}  // namespace

// ---- broadcast_shapes, reshape, ravel ----------------------------------------------------------

TEST(BroadcastShapes, RulesAndErrors) {
  EXPECT_EQ(jnp::broadcast_shapes(Shape{2, 1, 4}, Shape{3, 1}), (Shape{2, 3, 4}));
  EXPECT_EQ(jnp::broadcast_shapes(Shape{}, Shape{5}), (Shape{5}));
  EXPECT_EQ(jnp::broadcast_shapes(Shape{0, 1}, Shape{1, 3}), (Shape{0, 3}));
  EXPECT_EQ(jnp::broadcast_shapes(Shape{1}, Shape{0}), (Shape{0}));
  EXPECT_TRUE(throws_error(
      [] {
        jnp::broadcast_shapes(Shape{2, 3}, Shape{4}, "add");
      },
      {"add", "(2, 3)", "(4,)"}));
  EXPECT_TRUE(throws_error([] { jnp::broadcast_shapes(Shape{2}, Shape{0}); },
                           {"broadcast_shapes", "(2,)", "(0,)"}));
}

TEST(Reshape, InferenceAndSharedBuffer) {
  Array t = t234();
  Array r = jnp::reshape(t, {4, -1});
  EXPECT_EQ(r.shape(), (Shape{4, 6}));
  EXPECT_EQ(r.raw_data(), t.raw_data());  // no copy
  EXPECT_EQ(ints(r), ints(t));
  EXPECT_EQ(jnp::reshape(t, {-1}).shape(), (Shape{24}));
  EXPECT_EQ(jnp::reshape(Array::scalar(3), {1, 1}).shape(), (Shape{1, 1}));
  EXPECT_EQ(jnp::reshape(jnp::zeros({0, 4}), {-1, 2}).shape(), (Shape{0, 2}));
  EXPECT_EQ(jnp::ravel(t).shape(), (Shape{24}));
  EXPECT_EQ(jnp::ravel(Array::scalar(1.f)).shape(), (Shape{1}));
}

TEST(Reshape, Errors) {
  Array t = t234();
  EXPECT_TRUE(throws_error([&] { jnp::reshape(t, {5, 5}); }, {"reshape", "(2, 3, 4)", "(5, 5)"}));
  EXPECT_TRUE(throws_error([&] { jnp::reshape(t, {5, -1}); }, {"reshape", "(2, 3, 4)", "(5, -1)"}));
  EXPECT_TRUE(throws_error([&] { jnp::reshape(t, {-1, -1}); }, {"reshape", "one unknown"}));
  EXPECT_TRUE(throws_error([&] { jnp::reshape(t, {-2, -12}); }, {"reshape", "-2"}));
  EXPECT_TRUE(throws_error(
      [] {
        jnp::reshape(jnp::zeros({0, 4}), {0, -1});
      },
      {"reshape", "(0, -1)"}));
  EXPECT_TRUE(throws_error([] { jnp::reshape(Array(), {1}); }, {"reshape", "empty"}));
}

// ---- transpose, swapaxes, moveaxis ------------------------------------------------------------

TEST(Transpose, ValuesMatchNumpy) {
  Array t = t234();
  // NumPy: t.T
  Array tt = jnp::transpose(t);
  EXPECT_EQ(tt.shape(), (Shape{4, 3, 2}));
  EXPECT_EQ(ints(tt), (std::vector<int>{0, 12, 4, 16, 8,  20, 1, 13, 5, 17, 9,  21,
                                        2, 14, 6, 18, 10, 22, 3, 15, 7, 19, 11, 23}));
  // NumPy: t.transpose(1, 2, 0)
  EXPECT_EQ(ints(jnp::transpose(t, std::vector<int>{1, 2, 0})),
            (std::vector<int>{0, 12, 1, 13, 2, 14, 3, 15, 4,  16, 5,  17,
                              6, 18, 7, 19, 8, 20, 9, 21, 10, 22, 11, 23}));
  EXPECT_EQ(ints(jnp::transpose(t, std::vector<int>{-2, -1, 0})),
            ints(jnp::transpose(t, std::vector<int>{1, 2, 0})));
  // NumPy: np.swapaxes(t, 0, 2) == t.T; np.moveaxis(t, 0, 2); np.moveaxis(t, -1, 0)
  EXPECT_EQ(ints(jnp::swapaxes(t, 0, 2)), ints(tt));
  EXPECT_EQ(ints(jnp::moveaxis(t, 0, 2)), ints(jnp::transpose(t, std::vector<int>{1, 2, 0})));
  Array m = jnp::moveaxis(t, -1, 0);
  EXPECT_EQ(m.shape(), (Shape{4, 2, 3}));
  EXPECT_EQ(ints(m), (std::vector<int>{0, 4, 8,  12, 16, 20, 1, 5, 9,  13, 17, 21,
                                       2, 6, 10, 14, 18, 22, 3, 7, 11, 15, 19, 23}));
  // Identity and size-1 moves are views.
  EXPECT_EQ(jnp::transpose(t, std::vector<int>{0, 1, 2}).raw_data(), t.raw_data());
  Array c = jnp::reshape(t, {2, 1, 12});
  EXPECT_EQ(jnp::transpose(c, std::vector<int>{1, 0, 2}).raw_data(), c.raw_data());
  EXPECT_EQ(jnp::transpose(Array::scalar(1.f)).shape(), Shape{});
}

TEST(Transpose, LargeBlockedCopiesByConstruction) {
  // out[j, i] = in[i, j] for in = arange: element (j, i) of the result is i * cols + j.
  for (auto [rows, cols] :
       {std::pair<std::int64_t, std::int64_t>{1000, 777}, {33, 5}, {3, 70000}}) {
    Array in = jnp::reshape(jnp::arange(0, static_cast<double>(rows * cols), 1, DType::float32),
                            {rows, cols});
    std::vector<float> out = jnp::transpose(in).to_vector<float>();
    bool ok = true;
    for (std::int64_t j = 0; j < cols && ok; ++j) {
      for (std::int64_t i = 0; i < rows && ok; ++i) {
        ok = out[std::size_t(j * rows + i)] == static_cast<float>(i * cols + j);
      }
    }
    EXPECT_TRUE(ok) << rows << "x" << cols;
  }
  // A batched 2-D transpose (B, M, N) -> (B, N, M), in float64 (8-byte elements).
  Array b = jnp::reshape(jnp::arange(0, 4 * 50 * 60, 1, DType::float64), {4, 50, 60});
  std::vector<double> bt = jnp::transpose(b, std::vector<int>{0, 2, 1}).to_vector<double>();
  bool ok = true;
  for (int k = 0; k < 4; ++k) {
    for (int n = 0; n < 60; ++n) {
      for (int m = 0; m < 50; ++m)
        ok = ok && bt[std::size_t((k * 60 + n) * 50 + m)] == (k * 50 + m) * 60 + n;
    }
  }
  EXPECT_TRUE(ok);
  // bool (1-byte elements).
  Array bb = jnp::transpose(Array({{true, false, false}, {true, true, false}}));
  EXPECT_EQ(bb.to_vector<bool>(), (std::vector<bool>{true, true, false, true, false, false}));
}

TEST(Transpose, Errors) {
  Array t = t234();
  EXPECT_TRUE(throws_error(
      [&] {
        jnp::transpose(t, std::vector<int>{0, 1});
      },
      {"transpose", "(0, 1)", "rank 3", "(2, 3, 4)"}));
  EXPECT_TRUE(throws_error(
      [&] {
        jnp::transpose(t, std::vector<int>{0, 1, 1});
      },
      {"transpose", "repeated axis 1"}));
  EXPECT_TRUE(throws_error(
      [&] {
        jnp::transpose(t, std::vector<int>{0, 1, 3});
      },
      {"transpose", "axis 3"}));
  EXPECT_TRUE(throws_error([&] { jnp::swapaxes(t, 0, 3); }, {"swapaxes", "axis 3"}));
  EXPECT_TRUE(throws_error([&] { jnp::moveaxis(t, -4, 0); }, {"moveaxis", "axis -4"}));
}

// ---- expand_dims, squeeze, broadcast_to -------------------------------------------------------

TEST(ExpandSqueeze, ShapesAndErrors) {
  Array x = x34();
  EXPECT_EQ(jnp::expand_dims(x, 0).shape(), (Shape{1, 3, 4}));
  EXPECT_EQ(jnp::expand_dims(x, -1).shape(), (Shape{3, 4, 1}));
  EXPECT_EQ(jnp::expand_dims(x, {0, 3}).shape(), (Shape{1, 3, 4, 1}));
  EXPECT_EQ(jnp::expand_dims(x, {1, -1}).shape(), (Shape{3, 1, 4, 1}));
  EXPECT_EQ(jnp::expand_dims(x, 1).raw_data(), x.raw_data());
  EXPECT_TRUE(throws_error([&] { jnp::expand_dims(x, 3); }, {"expand_dims", "axis 3"}));
  EXPECT_TRUE(throws_error([&] { jnp::expand_dims(x, {0, 0}); }, {"expand_dims", "repeated"}));
  Array y = jnp::zeros({1, 3, 1, 2});
  EXPECT_EQ(jnp::squeeze(y).shape(), (Shape{3, 2}));
  EXPECT_EQ(jnp::squeeze(y, 2).shape(), (Shape{1, 3, 2}));
  EXPECT_EQ(jnp::squeeze(y, {0, -2}).shape(), (Shape{3, 2}));
  EXPECT_EQ(jnp::squeeze(jnp::zeros({1, 1})).shape(), Shape{});
  EXPECT_TRUE(throws_error([&] { jnp::squeeze(y, 1); },
                           {"squeeze", "axis 1", "(1, 3, 1, 2)", "size is 3"}));
  EXPECT_TRUE(throws_error([&] { jnp::squeeze(y, 4); }, {"squeeze", "axis 4"}));
  EXPECT_TRUE(throws_error([&] { jnp::squeeze(y, {0, 0}); }, {"squeeze", "repeated"}));
}

TEST(BroadcastTo, ValuesAndErrors) {
  Array r = jnp::broadcast_to(Array({1, 2, 3}), Shape{2, 3});
  EXPECT_EQ(ints(r), (std::vector<int>{1, 2, 3, 1, 2, 3}));
  Array c = jnp::broadcast_to(Array({{1}, {2}}), Shape{2, 1, 2, 3});
  EXPECT_EQ(ints(c), (std::vector<int>{1, 1, 1, 2, 2, 2, 1, 1, 1, 2, 2, 2}));
  EXPECT_EQ(ints(jnp::broadcast_to(Array::scalar(7), Shape{2, 2})), (std::vector<int>{7, 7, 7, 7}));
  EXPECT_EQ(jnp::broadcast_to(jnp::zeros({3, 1}), Shape{3, 0}).shape(), (Shape{3, 0}));
  EXPECT_TRUE(throws_error(
      [] {
        jnp::broadcast_to(jnp::zeros({2, 3}), Shape{4, 3});
      },
      {"broadcast_to", "(2, 3)", "(4, 3)"}));
  EXPECT_TRUE(throws_error(
      [] {
        jnp::broadcast_to(jnp::zeros({2, 3}), Shape{3});
      },
      {"broadcast_to", "(2, 3)", "(3,)"}));
}

// ---- concatenate, stack, split ------------------------------------------------------------------

TEST(Concatenate, ValuesPromotionAndErrors) {
  Array a = {{1, 2}, {3, 4}};
  Array b = {{5, 6}};
  EXPECT_EQ(ints(jnp::concatenate({a, b})), (std::vector<int>{1, 2, 3, 4, 5, 6}));
  Array c = jnp::concatenate({a, Array({{7.5f}, {8.5f}})}, -1);
  EXPECT_EQ(c.dtype(), DType::float32);
  EXPECT_EQ(c.shape(), (Shape{2, 3}));
  EXPECT_EQ(c.to_vector<double>(), (std::vector<double>{1, 2, 7.5, 3, 4, 8.5}));
  EXPECT_EQ(jnp::concatenate({a, jnp::zeros({0, 2}, DType::int32)}).shape(), (Shape{2, 2}));
  EXPECT_EQ(ints(jnp::concatenate({a})), ints(a));
  EXPECT_TRUE(throws_error([] { jnp::concatenate({}); }, {"concatenate", "at least one"}));
  EXPECT_TRUE(throws_error(
      [&] {
        jnp::concatenate({a, b}, 1);
      },
      {"concatenate", "(2, 2)", "(1, 2)", "axis 1"}));
  EXPECT_TRUE(throws_error(
      [&] {
        jnp::concatenate({a, Array({1, 2})});
      },
      {"concatenate", "(2, 2)", "(2,)"}));
  EXPECT_TRUE(throws_error([&] { jnp::concatenate({a, a}, 2); }, {"concatenate", "axis 2"}));
  EXPECT_TRUE(throws_error(
      [] {
        jnp::concatenate({Array::scalar(1), Array::scalar(2)});
      },
      {"concatenate", "zero-dimensional"}));
}

TEST(Stack, ValuesAndErrors) {
  Array a = {1, 2, 3}, b = {4, 5, 6};
  EXPECT_EQ(jnp::stack({a, b}).shape(), (Shape{2, 3}));
  EXPECT_EQ(ints(jnp::stack({a, b})), (std::vector<int>{1, 2, 3, 4, 5, 6}));
  EXPECT_EQ(ints(jnp::stack({a, b}, 1)), (std::vector<int>{1, 4, 2, 5, 3, 6}));
  EXPECT_EQ(ints(jnp::stack({a, b}, -1)), (std::vector<int>{1, 4, 2, 5, 3, 6}));
  EXPECT_EQ(jnp::stack({Array::scalar(1.f), Array::scalar(2.f)}).shape(), (Shape{2}));
  EXPECT_TRUE(throws_error([&] { jnp::stack({a, Array({1, 2})}); }, {"stack", "(3,)", "(2,)"}));
  EXPECT_TRUE(throws_error([&] { jnp::stack({a, b}, 2); }, {"stack", "axis 2"}));
  EXPECT_TRUE(throws_error([] { jnp::stack({}); }, {"stack", "at least one"}));
}

TEST(Split, SectionsAndIndices) {
  Array t = t234();
  auto parts = jnp::split(t, 2, 2);
  ASSERT_EQ(parts.size(), 2u);
  EXPECT_EQ(parts[0].shape(), (Shape{2, 3, 2}));
  EXPECT_EQ(ints(parts[1]), (std::vector<int>{2, 3, 6, 7, 10, 11, 14, 15, 18, 19, 22, 23}));
  EXPECT_EQ(ints(jnp::split(t, 3, -2)[1]), (std::vector<int>{4, 5, 6, 7, 16, 17, 18, 19}));
  // NumPy: np.split(np.arange(10), [3, -2, 20]) -> shapes (3,), (5,), (2,), (0,)
  auto p = jnp::split(jnp::arange(10), std::vector<std::int64_t>{3, -2, 20}, 0);
  ASSERT_EQ(p.size(), 4u);
  EXPECT_EQ(ints(p[0]), (std::vector<int>{0, 1, 2}));
  EXPECT_EQ(ints(p[1]), (std::vector<int>{3, 4, 5, 6, 7}));
  EXPECT_EQ(ints(p[2]), (std::vector<int>{8, 9}));
  EXPECT_EQ(p[3].shape(), (Shape{0}));
  // NumPy: np.split(np.arange(10), [6, 2]) -> shapes (6,), (0,), (8,)
  auto q = jnp::split(jnp::arange(10), std::vector<std::int64_t>{6, 2}, 0);
  EXPECT_EQ(q[1].shape(), (Shape{0}));
  EXPECT_EQ(q[2].shape(), (Shape{8}));
  EXPECT_TRUE(throws_error([&] { jnp::split(t, 3, 2); },
                           {"split", "equal division", "(2, 3, 4)", "3 sections"}));
  EXPECT_TRUE(throws_error([&] { jnp::split(t, 0, 2); }, {"split", "0 sections"}));
  EXPECT_TRUE(throws_error([&] { jnp::split(t, 2, 3); }, {"split", "axis 3"}));
}

// ---- slice, index, pad -------------------------------------------------------------------------

TEST(Slice, PythonSemantics) {
  Array t = t234();
  using jnp::kEnd;
  // NumPy: t[:, ::-1, 1:3]
  Array s1 = jnp::slice(t, {{}, {.step = -1}, {1, 3}});
  EXPECT_EQ(s1.shape(), (Shape{2, 3, 2}));
  EXPECT_EQ(ints(s1), (std::vector<int>{9, 10, 5, 6, 1, 2, 21, 22, 17, 18, 13, 14}));
  // NumPy: t[1:2, -2:, ::-2] (as a slice: keeps the first axis)
  Array s2 = jnp::slice(t, {{1, 2}, {-2, kEnd}, {std::nullopt, std::nullopt, -2}});
  EXPECT_EQ(s2.shape(), (Shape{1, 2, 2}));
  EXPECT_EQ(ints(s2), (std::vector<int>{19, 17, 23, 21}));
  // NumPy: t[::-1, 5:0:-2, -1:-5:-3]
  Array s3 = jnp::slice(t, {{.step = -1}, {5, 0, -2}, {-1, -5, -3}});
  EXPECT_EQ(s3.shape(), (Shape{2, 1, 2}));
  EXPECT_EQ(ints(s3), (std::vector<int>{23, 20, 11, 8}));
  // NumPy: t[:, 1:100:2], t[:, 2:1]
  EXPECT_EQ(ints(jnp::slice(t, {{}, {1, 100, 2}})), (std::vector<int>{4, 5, 6, 7, 16, 17, 18, 19}));
  EXPECT_EQ(jnp::slice(t, {{}, {2, 1}}).shape(), (Shape{2, 0, 4}));
  EXPECT_EQ(jnp::slice(t, {{-100, 100}}).raw_data(), t.raw_data());  // the whole array
  EXPECT_EQ(ints(jnp::slice(jnp::arange(5), {{kEnd, std::nullopt, -1}})),
            (std::vector<int>{4, 3, 2, 1, 0}));
  EXPECT_TRUE(throws_error([&] { jnp::slice(t, {{0, 1, 0}}); }, {"slice", "step", "zero"}));
  EXPECT_TRUE(throws_error(
      [&] {
        jnp::slice(t, {{}, {}, {}, {}});
      },
      {"slice", "too many indices", "(2, 3, 4)"}));
}

TEST(Index, DropsTheAxis) {
  Array t = t234();
  EXPECT_EQ(ints(jnp::index(t, 1)),
            (std::vector<int>{12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23}));
  EXPECT_EQ(ints(jnp::index(t, -1, 2)), (std::vector<int>{3, 7, 11, 15, 19, 23}));
  EXPECT_EQ(jnp::index(t, 2, 1).shape(), (Shape{2, 4}));
  EXPECT_EQ(jnp::index(jnp::arange(3), 1).shape(), Shape{});
  EXPECT_TRUE(throws_error([&] { jnp::index(t, 2); }, {"index", "index 2", "size 2", "(2, 3, 4)"}));
  EXPECT_TRUE(throws_error([&] { jnp::index(t, -5, 2); }, {"index", "-5"}));
  EXPECT_TRUE(throws_error([&] { jnp::index(t, 0, 3); }, {"index", "axis 3"}));
}

TEST(Pad, Constant) {
  // NumPy: np.pad([[1, 2], [3, 4]], ((1, 0), (0, 2)), constant_values=9)
  Array p = jnp::pad(Array({{1, 2}, {3, 4}}), {{1, 0}, {0, 2}}, 9);
  EXPECT_EQ(p.shape(), (Shape{3, 4}));
  EXPECT_EQ(ints(p), (std::vector<int>{9, 9, 9, 9, 1, 2, 9, 9, 3, 4, 9, 9}));
  Array q = jnp::pad(Array({1.f, 2.f}), {{2, 1}});
  EXPECT_EQ(q.to_vector<float>(), (std::vector<float>{0, 0, 1, 2, 0}));
  EXPECT_EQ(jnp::pad(jnp::zeros({2, 2}), {{1, 1}}).shape(), (Shape{4, 4}));
  EXPECT_TRUE(throws_error(
      [] {
        jnp::pad(jnp::zeros({2, 2}), {{1, 1}, {1, 1}, {1, 1}});
      },
      {"pad", "3", "(2, 2)"}));
  EXPECT_TRUE(throws_error(
      [] {
        jnp::pad(jnp::zeros({2}), {{-1, 0}});
      },
      {"pad", "non-negative", "-1"}));
}

// ---- take, take_along_axis, one_hot -----------------------------------------------------------

TEST(Take, AxisAndFlattened) {
  Array x = x34();
  // NumPy: np.take(x, [[2, 0], [-1, 1]], axis=1)
  Array t1 = jnp::take(x, Array({{2, 0}, {-1, 1}}), 1);
  EXPECT_EQ(t1.shape(), (Shape{3, 2, 2}));
  EXPECT_EQ(ints(t1), (std::vector<int>{2, 0, 3, 1, 6, 4, 7, 5, 10, 8, 11, 9}));
  // NumPy: np.take(x, [11, -12, 5])
  EXPECT_EQ(ints(jnp::take(x, Array({11, -12, 5}))), (std::vector<int>{11, 0, 5}));
  // NumPy: np.take(x, [2, 2, 0], axis=0)
  EXPECT_EQ(ints(jnp::take(x, Array({2, 2, 0}), 0)),
            (std::vector<int>{8, 9, 10, 11, 8, 9, 10, 11, 0, 1, 2, 3}));
  EXPECT_EQ(jnp::take(x, Array::scalar(1), 0).shape(), (Shape{4}));
  EXPECT_TRUE(throws_error(
      [&] {
        jnp::take(x, Array({0, 4}), 1);
      },
      {"take", "index 4", "axis 1", "size 4", "(3, 4)"}));
  EXPECT_TRUE(throws_error([&] { jnp::take(x, Array({-13})); }, {"take", "-13", "size 12"}));
  EXPECT_TRUE(throws_error([&] { jnp::take(x, Array({0.f})); }, {"take", "integer", "float32"}));
  EXPECT_TRUE(throws_error([&] { jnp::take(x, Array({0}), 2); }, {"take", "axis 2"}));
}

TEST(TakeAlongAxis, Values) {
  Array x = x34();
  // NumPy: np.take_along_axis(x, [[0, 3], [2, 2], [1, 0]], 1)
  EXPECT_EQ(ints(jnp::take_along_axis(x, Array({{0, 3}, {2, 2}, {1, 0}}), 1)),
            (std::vector<int>{0, 3, 6, 6, 9, 8}));
  // NumPy: np.take_along_axis(x, [[2, 0, 1, 1]], 0)
  EXPECT_EQ(ints(jnp::take_along_axis(x, Array({{2, 0, 1, 1}}), 0)),
            (std::vector<int>{8, 1, 6, 7}));
  // Broadcasting of the other axes: indices (1, 1) against x (3, 4) along axis 1.
  EXPECT_EQ(ints(jnp::take_along_axis(x, Array({{-1}}), 1)), (std::vector<int>{3, 7, 11}));
  EXPECT_TRUE(throws_error(
      [&] {
        jnp::take_along_axis(x, Array({0, 1}), 0);
      },
      {"take_along_axis", "(2,)", "(3, 4)"}));
  EXPECT_TRUE(throws_error([&] { jnp::take_along_axis(x, Array({{4}}), 1); },
                           {"take_along_axis", "index 4"}));
  EXPECT_TRUE(throws_error(
      [&] {
        jnp::take_along_axis(x, Array({{0, 1}, {0, 1}}), 1);
      },
      {"take_along_axis", "(3, 1)", "(2, 1)"}));
}

TEST(OneHot, MatchesJaxNn) {
  // jax.nn.one_hot: indices outside [0, num_classes) give all-zero rows.
  Array h = jnp::one_hot(Array({0, 2, 3, -1}), 3);
  EXPECT_EQ(h.dtype(), DType::float32);
  EXPECT_EQ(h.shape(), (Shape{4, 3}));
  EXPECT_EQ(h.to_vector<float>(), (std::vector<float>{1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0}));
  Array h2 = jnp::one_hot(Array({{1}, {0}}), 2, DType::int32);
  EXPECT_EQ(h2.shape(), (Shape{2, 1, 2}));
  EXPECT_EQ(ints(h2), (std::vector<int>{0, 1, 1, 0}));
  EXPECT_TRUE(throws_error([] { jnp::one_hot(Array({1}), -1); }, {"one_hot", "-1"}));
}

// ---- gradients ------------------------------------------------------------------------------

TEST(ManipulationGrads, MatchFiniteDifferences) {
  Array x = r64({2, 3, 4});
  using V = std::vector<int>;
  const std::vector<std::function<Array(const Array&)>> fns = {
      [](const Array& a) {
        return weighted(jnp::reshape(a, {4, -1}));
      },
      [](const Array& a) { return weighted(jnp::ravel(a)); },
      [](const Array& a) { return weighted(jnp::transpose(a)); },
      [](const Array& a) {
        return weighted(jnp::transpose(a, V{1, 2, 0}));
      },
      [](const Array& a) { return weighted(jnp::swapaxes(a, 0, 1)); },
      [](const Array& a) { return weighted(jnp::moveaxis(a, 2, 0)); },
      [](const Array& a) {
        return weighted(jnp::expand_dims(a, {0, 2}));
      },
      [](const Array& a) {
        return weighted(jnp::squeeze(jnp::reshape(a, {2, 1, 3, 4}), 1));
      },
      [](const Array& a) {
        return weighted(jnp::broadcast_to(jnp::reshape(a, {2, 1, 3, 4}), Shape{5, 2, 2, 3, 4}));
      },
      [](const Array& a) {
        return weighted(jnp::concatenate({a, jnp::sin(a), a}, 1));
      },
      [](const Array& a) {
        return weighted(jnp::stack({a, a * a}, 3));
      },
      [](const Array& a) {
        return weighted(jnp::split(a, 2, 2)[1]) + 3.0 * weighted(jnp::split(a, 2, 2)[0]);
      },
      [](const Array& a) {
        auto p = jnp::split(a, std::vector<std::int64_t>{1, 3}, 2);
        return weighted(p[0]) + weighted(p[1] * p[1]) + weighted(p[2]);
      },
      [](const Array& a) {
        return weighted(jnp::slice(a, {{.step = -1}, {2, 0, -2}, {1, jnp::kEnd, 2}}));
      },
      [](const Array& a) { return weighted(jnp::index(a, -1, 1)); },
      [](const Array& a) {
        return weighted(jnp::pad(a, {{1, 0}, {0, 0}, {2, 3}}, 1.5));
      },
      [](const Array& a) {
        return weighted(jnp::take(a, Array({{2, 0}, {2, -3}}), 1));
      },
      [](const Array& a) {
        return weighted(jnp::take(a, Array({23, 0, 23, 5})));
      },
      [](const Array& a) {
        return weighted(jnp::take_along_axis(a, Array({{{0, 3, 3}}, {{1, 1, 2}}}), 2));
      },
  };
  for (std::size_t k = 0; k < fns.size(); ++k)
    EXPECT_TRUE(grad_matches_fd(fns[k], x)) << "case " << k;
}

TEST(ManipulationGrads, TakeScatterAddsRepeatedIndices) {
  // d/dx sum(take(x, [1, 1, 2])) = [0, 2, 1]: repeated indices accumulate.
  Array g = loom::grad([](const Array& a) {
    return jnp::sum(jnp::take(a, Array({1, 1, 2})));
  })(f64({5, 6, 7}, {3}));
  EXPECT_EQ(g.to_vector<double>(), (std::vector<double>{0, 2, 1}));
  // Broadcast back: d/dx sum(broadcast_to(x, (4, 3))) = 4.
  Array gb = loom::grad([](const Array& a) {
    return jnp::sum(jnp::broadcast_to(a, Shape{4, 3}));
  })(f64({5, 6, 7}, {3}));
  EXPECT_EQ(gb.to_vector<double>(), (std::vector<double>{4, 4, 4}));
}

TEST(Manipulation, ExtremeStepsAndPadsStayDefined) {
  // Python: list(range(5))[::-(2**63)] == [4] and list(range(5))[::2**63 - 1] == [0].
  EXPECT_EQ(jnp::slice(jnp::arange(5), {{jnp::Slice{{}, {}, INT64_MIN}}}).to_vector<int>(),
            (std::vector<int>{4}));
  EXPECT_EQ(jnp::slice(jnp::arange(5), {{jnp::Slice{{}, {}, INT64_MAX}}}).to_vector<int>(),
            (std::vector<int>{0}));
  EXPECT_TRUE(throws_error(
      [] {
        jnp::pad(jnp::ones({2}), {{INT64_MAX, 1}});
      },
      {"pad", "overflow"}));
}
